//! Reading a command's fields left to right. Every read checks length and characters and
//! answers `15` (invalid input data) when the command is short or malformed.

use zeroize::Zeroizing;

use super::code::ErrorCode;
use super::variant::Scheme;

/// A key field as a command carries it: its scheme and its cryptogram bytes.
pub struct KeyField {
    /// The scheme (from its tag, or single length when there is none).
    pub scheme: Scheme,
    /// The encrypted key.
    pub cryptogram: Vec<u8>,
    /// A `PVK`/`CVK` pair given as two single-length keys (32 hex, no tag).
    pub split_pair: bool,
}

/// A cursor over a command body.
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.at..]
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    /// The next byte, not consumed.
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ErrorCode> {
        let end = self.at.checked_add(n).ok_or(ErrorCode::InvalidInput)?;
        let s = self.data.get(self.at..end).ok_or(ErrorCode::InvalidInput)?;
        self.at = end;
        Ok(s)
    }

    /// Consumes `b` when it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// `n` ASCII digits.
    pub fn digits(&mut self, n: usize) -> Result<&'a str, ErrorCode> {
        let s = self.take(n)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).map_err(|_| ErrorCode::InvalidInput)
        } else {
            Err(ErrorCode::InvalidInput)
        }
    }

    /// An `n`-digit decimal number.
    pub fn number(&mut self, n: usize) -> Result<usize, ErrorCode> {
        self.digits(n)?.parse().map_err(|_| ErrorCode::InvalidInput)
    }

    /// `n` hex characters as bytes (`n` even).
    pub fn hex(&mut self, n: usize) -> Result<Vec<u8>, ErrorCode> {
        hex::decode(self.take(n)?).map_err(|_| ErrorCode::InvalidInput)
    }

    /// An 8-byte block as 16 hex characters.
    pub fn block(&mut self) -> Result<[u8; 8], ErrorCode> {
        let v = self.hex(16)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&v);
        Ok(b)
    }

    /// A key: `16H`, or a scheme tag and `32H`/`48H` (`Z` + `16H` for single length).
    pub fn key(&mut self) -> Result<KeyField, ErrorCode> {
        let scheme = match self.peek() {
            Some(t @ (b'U' | b'T' | b'X' | b'Y' | b'Z')) => {
                self.at += 1;
                Scheme::from_tag(t)?
            }
            Some(_) => Scheme::Single,
            None => return Err(ErrorCode::InvalidInput),
        };
        Ok(KeyField {
            scheme,
            cryptogram: self.hex(scheme.key_len() * 2)?,
            split_pair: false,
        })
    }

    /// A double-length key that may come as two single-length cryptograms (`32H`, a PVK or
    /// CVK pair) or as one tagged key.
    pub fn key_pair(&mut self) -> Result<KeyField, ErrorCode> {
        match self.peek() {
            Some(b'U' | b'T' | b'X' | b'Y' | b'Z') => self.key(),
            Some(_) => Ok(KeyField {
                scheme: Scheme::Single,
                cryptogram: self.hex(32)?,
                split_pair: true,
            }),
            None => Err(ErrorCode::InvalidInput),
        }
    }

    /// Variable-length data up to the end, leaving `keep` bytes for the fields after it.
    pub fn until_last(&mut self, keep: usize) -> Result<&'a [u8], ErrorCode> {
        let n = self
            .data
            .len()
            .checked_sub(self.at + keep)
            .ok_or(ErrorCode::InvalidInput)?;
        self.take(n)
    }

    /// Variable-length data up to the byte `end` (not consumed).
    pub fn until(&mut self, end: u8) -> Result<&'a [u8], ErrorCode> {
        let n = self
            .rest()
            .iter()
            .position(|b| *b == end)
            .ok_or(ErrorCode::InvalidInput)?;
        self.take(n)
    }

    /// Fails unless everything was read (a trailer after `0x19` may follow).
    pub fn finish(&self) -> Result<(), ErrorCode> {
        if self.is_empty() || self.peek() == Some(super::TRAILER) {
            Ok(())
        } else {
            Err(ErrorCode::InvalidInput)
        }
    }
}

/// Upper-case hex.
pub fn hex_of(b: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(hex::encode_upper(b))
}
