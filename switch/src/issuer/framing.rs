//! Length indicators on issuer lines, as a tokio-util codec.
//!
//! ```text
//! iso87-binary   [len u16 BE][MTI][bitmap][fields…]
//! iso87-ascii    ["0136"    ][MTI][bitmap][fields…]   four ASCII digits
//! ```
//!
//! A length over the maximum, or an ASCII indicator that is not four digits, is an error:
//! the line is closed and reconnected (the peer is not speaking our dialect).

use bytes::{Buf, BufMut, BytesMut};
use codec::Framing;
use tokio_util::codec::{Decoder, Encoder};

/// Cuts and writes frames for one line.
#[derive(Clone, Copy, Debug)]
pub struct LineCodec {
    framing: Framing,
    max: usize,
}

impl LineCodec {
    /// A codec for `framing` refusing frames over `max` bytes.
    pub fn new(framing: Framing, max: usize) -> Self {
        Self { framing, max }
    }

    fn indicator_len(&self) -> usize {
        match self.framing {
            Framing::U16 => 2,
            Framing::Ascii4 => 4,
            Framing::None => 0,
        }
    }
}

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

impl Decoder for LineCodec {
    type Item = Vec<u8>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, std::io::Error> {
        let n = self.indicator_len();
        if n == 0 {
            return Err(invalid("issuer lines need a length indicator"));
        }
        let Some(head) = src.get(..n) else {
            return Ok(None);
        };
        let len = match self.framing {
            Framing::U16 => usize::from(u16::from_be_bytes([head[0], head[1]])),
            _ => head.iter().try_fold(0usize, |v, b| {
                b.is_ascii_digit()
                    .then(|| v * 10 + usize::from(b - b'0'))
                    .ok_or_else(|| invalid("length indicator is not four digits"))
            })?,
        };
        if len > self.max {
            return Err(invalid("frame over the maximum size"));
        }
        if src.len() < n + len {
            src.reserve(n + len - src.len());
            return Ok(None);
        }
        src.advance(n);
        Ok(Some(src.split_to(len).to_vec()))
    }
}

impl Encoder<Vec<u8>> for LineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        if item.len() > self.max {
            return Err(invalid("frame over the maximum size"));
        }
        let mut prefix = Vec::with_capacity(4);
        codec::framing::write_len(self.framing, item.len(), &mut prefix)
            .map_err(|_| invalid("frame too long for its length indicator"))?;
        dst.reserve(prefix.len() + item.len());
        dst.put_slice(&prefix);
        dst.put_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_binary_indicators_one_byte_at_a_time() {
        for (framing, wire) in [
            (Framing::U16, b"\x00\x03abc\x00\x01d".to_vec()),
            (Framing::Ascii4, b"0003abc0001d".to_vec()),
        ] {
            let mut c = LineCodec::new(framing, 100);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for b in &wire {
                buf.put_u8(*b);
                while let Some(f) = c.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, vec![b"abc".to_vec(), b"d".to_vec()]);
            let mut out = BytesMut::new();
            c.encode(b"abc".to_vec(), &mut out).unwrap();
            c.encode(b"d".to_vec(), &mut out).unwrap();
            assert_eq!(&out[..], &wire[..]);
        }
    }

    #[test]
    fn lying_or_oversized_indicators_are_errors() {
        let mut c = LineCodec::new(Framing::Ascii4, 100);
        assert!(c.decode(&mut BytesMut::from(&b"00x1a"[..])).is_err());
        assert!(c.decode(&mut BytesMut::from(&b"0101"[..])).is_err());
        let mut c = LineCodec::new(Framing::U16, 100);
        assert!(c.decode(&mut BytesMut::from(&b"\xff\xff"[..])).is_err());
        assert!(c.encode(vec![0; 101], &mut BytesMut::new()).is_err());
    }
}
