//! The issuer line's reader: any bytes through the one length-prefix codec (both styles),
//! and every frame it cuts through the ISO 8583:1987 dialect and the reply reader. The
//! codec never yields a frame over its maximum and never panics.
#![no_main]

use bytes::BytesMut;
use codec::framing::FrameCodec;
use codec::{Dialect, Framing};
use libfuzzer_sys::fuzz_target;
use switch::issuer::message::IssuerReply;
use tokio_util::codec::Decoder;

const MAX: usize = 8192;

fuzz_target!(|data: &[u8]| {
    for (framing, dialect) in [
        (Framing::U16, Dialect::iso87_binary()),
        (Framing::Ascii4, Dialect::iso87_ascii()),
    ] {
        let mut lines = FrameCodec::new(framing, MAX);
        let mut buf = BytesMut::new();
        // Delivered in two pieces, as a socket may.
        let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
        for piece in [&data[..cut], &data[cut..]] {
            buf.extend_from_slice(piece);
            loop {
                match lines.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        assert!(frame.len() <= MAX);
                        if let Ok(msg) = codec::decode(dialect, &frame) {
                            let _ = IssuerReply::read(&msg);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
});
