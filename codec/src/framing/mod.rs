//! Message length indicators: the one length-prefix codec of the project.
//!
//! ```text
//! u16     [00 79][message: 0x79 bytes]          CUP POS terminals, ISO 87 binary lines
//! ascii4  "0136" [message: 136 bytes]           ISO 87 ASCII lines
//! none    [message]                              a whole buffer is one message
//! ```
//!
//! Two ways in:
//!
//! - [`split`] and [`write_len`] cut or add the indicator on a buffer already in memory
//!   (tools, tests, `describe`);
//! - [`FrameCodec`] cuts frames out of a stream as the bytes arrive, one byte at a time if
//!   need be, refusing an indicator that lies (not four digits) or announces more than the
//!   maximum. With the `tokio-util` feature it is a `tokio_util::codec::{Decoder, Encoder}`,
//!   which is how the switch's terminal listener, its issuer lines, the issuer simulator,
//!   the terminal and the benches all read and write frames.
//!
//! The codec remembers whether a frame has started and not finished
//! ([`FrameCodec::mid_frame`]): a reader uses it to tell a silent peer (idle) from one that
//! stopped half way through a frame (a read time-out).

use bytes::{Buf, BufMut, BytesMut};

use crate::spec::Framing;

#[cfg(feature = "tokio-util")]
mod tokio_codec;

/// A length indicator that is missing, not a number, or disagrees with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// Fewer bytes than the indicator itself.
    #[error("length indicator truncated")]
    Truncated,
    /// An ASCII indicator with a non-digit.
    #[error("length indicator is not a number")]
    NotANumber,
    /// The indicator announces more bytes than there are.
    #[error("length indicator says {announced} bytes, {available} follow")]
    Short {
        /// Announced length.
        announced: usize,
        /// Bytes present.
        available: usize,
    },
    /// The message is too long for the indicator.
    #[error("message of {0} bytes does not fit the length indicator")]
    TooLong(usize),
    /// The indicator announces more than the reader accepts.
    #[error("frame of {announced} bytes over the maximum of {max}")]
    Oversized {
        /// Announced length.
        announced: usize,
        /// The reader's maximum.
        max: usize,
    },
    /// A stream needs an indicator to find where messages end.
    #[error("a stream of messages needs a length indicator")]
    NoIndicator,
}

/// Bytes the indicator itself takes.
pub fn indicator_len(framing: Framing) -> usize {
    match framing {
        Framing::U16 => 2,
        Framing::Ascii4 => 4,
        Framing::None => 0,
    }
}

/// The length an indicator announces (`head` holds exactly the indicator's bytes).
fn announced(framing: Framing, head: &[u8]) -> Result<usize, FramingError> {
    match (framing, head) {
        (Framing::U16, [hi, lo]) => Ok(usize::from(u16::from_be_bytes([*hi, *lo]))),
        (Framing::Ascii4, digits) if digits.len() == 4 => digits.iter().try_fold(0usize, |v, b| {
            b.is_ascii_digit()
                .then(|| v * 10 + usize::from(b - b'0'))
                .ok_or(FramingError::NotANumber)
        }),
        (Framing::None, _) => Err(FramingError::NoIndicator),
        _ => Err(FramingError::Truncated),
    }
}

/// Splits one message off the front of `bytes`: returns the message and what follows it.
pub fn split(framing: Framing, bytes: &[u8]) -> Result<(&[u8], &[u8]), FramingError> {
    if framing == Framing::None {
        return Ok((bytes, &[]));
    }
    let (head, body) = bytes
        .split_at_checked(indicator_len(framing))
        .ok_or(FramingError::Truncated)?;
    let len = announced(framing, head)?;
    body.split_at_checked(len).ok_or(FramingError::Short {
        announced: len,
        available: body.len(),
    })
}

/// Appends the length indicator for a message of `len` bytes.
pub fn write_len(framing: Framing, len: usize, out: &mut Vec<u8>) -> Result<(), FramingError> {
    match framing {
        Framing::None => {}
        Framing::U16 => {
            let l = u16::try_from(len).map_err(|_| FramingError::TooLong(len))?;
            out.extend_from_slice(&l.to_be_bytes());
        }
        Framing::Ascii4 => {
            if len > 9999 {
                return Err(FramingError::TooLong(len));
            }
            out.extend_from_slice(format!("{len:04}").as_bytes());
        }
    }
    Ok(())
}

/// `message` with its length indicator in front.
pub fn framed(framing: Framing, message: &[u8]) -> Result<Vec<u8>, FramingError> {
    let mut out = Vec::with_capacity(message.len() + 4);
    write_len(framing, message.len(), &mut out)?;
    out.extend_from_slice(message);
    Ok(out)
}

/// Cuts frames out of a byte stream and writes them back with their indicator.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    framing: Framing,
    max: usize,
    mid_frame: bool,
}

impl FrameCodec {
    /// A codec for `framing` that refuses frames over `max` bytes (the indicator not
    /// counted).
    pub fn new(framing: Framing, max: usize) -> Self {
        Self {
            framing,
            max,
            mid_frame: false,
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether bytes of a frame not yet complete are waiting (its indicator or part of its
    /// body arrived, the rest has not).
    pub fn mid_frame(&self) -> bool {
        self.mid_frame
    }

    /// The next whole frame in `src`, without its indicator; `Ok(None)` until one is
    /// there. An error means the stream cannot be trusted any more: close it.
    pub fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        let n = indicator_len(self.framing);
        if n == 0 {
            return Err(FramingError::NoIndicator);
        }
        let Some(head) = src.get(..n) else {
            self.mid_frame = !src.is_empty();
            return Ok(None);
        };
        let len = announced(self.framing, head)?;
        if len > self.max {
            return Err(FramingError::Oversized {
                announced: len,
                max: self.max,
            });
        }
        if src.len() < n + len {
            src.reserve(n + len - src.len());
            self.mid_frame = true;
            return Ok(None);
        }
        src.advance(n);
        let frame = src.split_to(len);
        self.mid_frame = !src.is_empty();
        Ok(Some(frame))
    }

    /// Appends `frame` with its indicator to `dst`.
    pub fn encode_frame(&self, frame: &[u8], dst: &mut BytesMut) -> Result<(), FramingError> {
        if frame.len() > self.max {
            return Err(FramingError::Oversized {
                announced: frame.len(),
                max: self.max,
            });
        }
        match self.framing {
            Framing::None => return Err(FramingError::NoIndicator),
            Framing::U16 => {
                let l =
                    u16::try_from(frame.len()).map_err(|_| FramingError::TooLong(frame.len()))?;
                dst.reserve(2 + frame.len());
                dst.put_u16(l);
            }
            Framing::Ascii4 => {
                if frame.len() > 9999 {
                    return Err(FramingError::TooLong(frame.len()));
                }
                dst.reserve(4 + frame.len());
                let l = frame.len();
                for d in [l / 1000, l / 100 % 10, l / 10 % 10, l % 10] {
                    dst.put_u8(b'0' + d as u8);
                }
            }
        }
        dst.put_slice(frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_u16_and_ascii() {
        assert_eq!(
            split(Framing::U16, &[0, 2, 9, 9, 7]),
            Ok((&[9u8, 9][..], &[7u8][..]))
        );
        assert_eq!(
            split(Framing::U16, &[0, 5, 9]),
            Err(FramingError::Short {
                announced: 5,
                available: 1
            })
        );
        assert_eq!(split(Framing::U16, &[0]), Err(FramingError::Truncated));
        assert_eq!(
            split(Framing::Ascii4, b"0002ab"),
            Ok((&b"ab"[..], &b""[..]))
        );
        assert_eq!(
            split(Framing::Ascii4, b"00x2ab"),
            Err(FramingError::NotANumber)
        );
        let mut v = Vec::new();
        write_len(Framing::Ascii4, 136, &mut v).unwrap();
        assert_eq!(v, b"0136");
        assert_eq!(
            write_len(Framing::U16, 70_000, &mut v),
            Err(FramingError::TooLong(70_000))
        );
        assert_eq!(framed(Framing::U16, b"ab").unwrap(), b"\x00\x02ab");
    }

    #[test]
    fn streams_one_byte_at_a_time_in_both_indicators() {
        for (framing, wire) in [
            (Framing::U16, b"\x00\x03abc\x00\x01d".to_vec()),
            (Framing::Ascii4, b"0003abc0001d".to_vec()),
        ] {
            let mut c = FrameCodec::new(framing, 100);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut mid = Vec::new();
            for b in &wire {
                buf.put_u8(*b);
                while let Some(f) = c.decode_frame(&mut buf).unwrap() {
                    got.push(f.to_vec());
                }
                mid.push(c.mid_frame());
            }
            assert_eq!(got, vec![b"abc".to_vec(), b"d".to_vec()]);
            // Mid-frame after every byte but the last of each frame.
            assert!(!mid[mid.len() - 1] && mid[0]);
            let mut out = BytesMut::new();
            c.encode_frame(b"abc", &mut out).unwrap();
            c.encode_frame(b"d", &mut out).unwrap();
            assert_eq!(&out[..], &wire[..]);
        }
    }

    #[test]
    fn lying_or_oversized_indicators_are_errors() {
        let mut c = FrameCodec::new(Framing::Ascii4, 100);
        assert_eq!(
            c.decode_frame(&mut BytesMut::from(&b"00x1a"[..])),
            Err(FramingError::NotANumber)
        );
        assert!(matches!(
            c.decode_frame(&mut BytesMut::from(&b"0101"[..])),
            Err(FramingError::Oversized { announced: 101, .. })
        ));
        let mut c = FrameCodec::new(Framing::U16, 100);
        assert!(
            c.decode_frame(&mut BytesMut::from(&b"\xff\xff"[..]))
                .is_err()
        );
        assert!(c.encode_frame(&[0; 101], &mut BytesMut::new()).is_err());
        let mut none = FrameCodec::new(Framing::None, 100);
        assert_eq!(
            none.decode_frame(&mut BytesMut::from(&b"ab"[..])),
            Err(FramingError::NoIndicator)
        );
    }
}
