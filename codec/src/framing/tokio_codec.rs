//! [`FrameCodec`] as a `tokio_util::codec` decoder and encoder (feature `tokio-util`).
//!
//! ```text
//! socket ─▶ FramedRead<_, FrameCodec> ─▶ BytesMut (one message, indicator removed)
//! message ─▶ FramedWrite<_, FrameCodec> ─▶ [indicator][message] ─▶ socket
//! ```
//!
//! Framing errors come out as `std::io::ErrorKind::InvalidData` wrapping the
//! [`FramingError`]: the reader closes the connection.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{FrameCodec, FramingError};

impl From<FramingError> for std::io::Error {
    fn from(e: FramingError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        Ok(self.decode_frame(src)?)
    }
}

impl<B: AsRef<[u8]>> Encoder<B> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: B, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        Ok(self.encode_frame(item.as_ref(), dst)?)
    }
}
