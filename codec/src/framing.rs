//! Message length indicators, for callers that hold whole byte strings (tests, tools).
//!
//! On a socket, framing belongs to the transport (the switch uses tokio-util's
//! `LengthDelimitedCodec`); these helpers cut or add the indicator on a buffer already in
//! memory.
//!
//! ```text
//! u16     [00 79][message: 0x79 bytes]
//! ascii4  "0136" [message: 136 bytes]
//! ```

use crate::spec::Framing;

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
}

/// Splits one message off the front of `bytes`: returns the message and what follows it.
pub fn split(framing: Framing, bytes: &[u8]) -> Result<(&[u8], &[u8]), FramingError> {
    let (len, body) = match framing {
        Framing::None => return Ok((bytes, &[])),
        Framing::U16 => {
            let (l, body) = bytes.split_at_checked(2).ok_or(FramingError::Truncated)?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), body)
        }
        Framing::Ascii4 => {
            let (l, body) = bytes.split_at_checked(4).ok_or(FramingError::Truncated)?;
            let len = l.iter().try_fold(0usize, |v, b| {
                b.is_ascii_digit()
                    .then(|| v * 10 + usize::from(b - b'0'))
                    .ok_or(FramingError::NotANumber)
            })?;
            (len, body)
        }
    };
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
    }
}
