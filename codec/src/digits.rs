//! A view over decimal digits as they sit on the wire: packed BCD nibbles or ASCII digits.
//!
//! [`Digits`] never copies: iterating, comparing, printing and parsing to `u64` all read the
//! frame's bytes in place. Track data's separator nibble `D` reads as the character `D`
//! (the convention of the published vectors); in ASCII track data it is `=`.

use std::fmt;

/// Digits borrowed from a frame.
#[derive(Clone, Copy)]
pub struct Digits<'a> {
    repr: Repr<'a>,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// `len` nibbles starting at nibble `start` of `bytes` (high nibble first).
    Packed {
        bytes: &'a [u8],
        start: usize,
        len: usize,
    },
    /// ASCII characters.
    Text(&'a [u8]),
}

const NIBBLE_CHARS: &[u8; 16] = b"0123456789ABCDEF";

impl<'a> Digits<'a> {
    /// `len` packed nibbles starting at nibble `start` of `bytes`. The caller guarantees
    /// `start + len <= 2 * bytes.len()`.
    pub(crate) fn packed(bytes: &'a [u8], start: usize, len: usize) -> Self {
        debug_assert!(start + len <= bytes.len() * 2);
        Self {
            repr: Repr::Packed { bytes, start, len },
        }
    }

    /// ASCII digits (already validated by the decoder).
    pub(crate) fn text(bytes: &'a [u8]) -> Self {
        Self {
            repr: Repr::Text(bytes),
        }
    }

    /// Number of digits.
    #[inline]
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Packed { len, .. } => len,
            Repr::Text(t) => t.len(),
        }
    }

    /// Whether there are no digits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th digit as an ASCII character (`0`–`9`, or `D` for a packed track separator).
    #[inline]
    pub fn char_at(&self, i: usize) -> Option<u8> {
        match self.repr {
            Repr::Packed { bytes, start, len } => {
                if i >= len {
                    return None;
                }
                let n = start + i;
                let b = *bytes.get(n / 2)?;
                let nib = if n.is_multiple_of(2) {
                    b >> 4
                } else {
                    b & 0x0F
                };
                Some(NIBBLE_CHARS[nib as usize])
            }
            Repr::Text(t) => t.get(i).copied(),
        }
    }

    /// Iterates the digits as ASCII characters.
    pub fn chars(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).filter_map(move |i| self.char_at(i))
    }

    /// A sub-range of the digits, without copying; `None` when out of range.
    pub fn slice(&self, from: usize, len: usize) -> Option<Digits<'a>> {
        if from.checked_add(len)? > self.len() {
            return None;
        }
        Some(match self.repr {
            Repr::Packed { bytes, start, .. } => Digits::packed(bytes, start + from, len),
            Repr::Text(t) => Digits::text(&t[from..from + len]),
        })
    }

    /// The value as an integer; `None` if it has a non-digit or does not fit (over 19 digits).
    pub fn to_u64(&self) -> Option<u64> {
        if self.len() > 19 {
            return None;
        }
        let mut v: u64 = 0;
        for c in self.chars() {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
        }
        Some(v)
    }

    /// Whether the digits equal `s` character for character.
    pub fn eq_str(&self, s: &str) -> bool {
        s.len() == self.len() && s.bytes().zip(self.chars()).all(|(a, b)| a == b)
    }

    /// Writes the digits into `out` as ASCII (an owned copy, when one is needed).
    pub fn push_to(&self, out: &mut String) {
        out.extend(self.chars().map(char::from));
    }
}

impl PartialEq<&str> for Digits<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq for Digits<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.chars().zip(other.chars()).all(|(a, b)| a == b)
    }
}

impl fmt::Display for Digits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.chars() {
            fmt::Write::write_char(f, char::from(c))?;
        }
        Ok(())
    }
}

/// Digits are often card data: `Debug` shows only the length.
impl fmt::Debug for Digits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digits({} digits)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_right_aligned_odd() {
        // "071" left-aligned is 07 10; right-aligned "123" is 01 23.
        let d = Digits::packed(&[0x01, 0x23], 1, 3);
        assert_eq!(d.to_string(), "123");
        assert_eq!(d.to_u64(), Some(123));
        assert!(d == "123");
        assert_eq!(d.slice(1, 2).map(|s| s.to_string()).as_deref(), Some("23"));
        assert!(d.slice(2, 2).is_none());
    }

    #[test]
    fn track_separator_reads_as_d() {
        let d = Digits::packed(&[0x62, 0x2D, 0x28], 0, 5);
        assert_eq!(d.to_string(), "622D2");
        assert_eq!(d.to_u64(), None);
    }

    #[test]
    fn debug_hides_digits() {
        let d = Digits::text(b"6222021000000000017");
        assert_eq!(format!("{d:?}"), "Digits(19 digits)");
    }
}
