//! The message type indicator.

use std::fmt;

/// A four-digit MTI such as `0200`, kept as ASCII digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

impl Mti {
    /// From four ASCII digits; `None` if any is not a digit.
    pub const fn new(d: [u8; 4]) -> Option<Self> {
        let mut i = 0;
        while i < 4 {
            if !d[i].is_ascii_digit() {
                return None;
            }
            i += 1;
        }
        Some(Self(d))
    }

    /// From four bytes the caller has checked are ASCII digits.
    pub(crate) const fn from_checked(d: [u8; 4]) -> Self {
        Self(d)
    }

    /// From a string such as `"0200"`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::new(s.as_bytes().try_into().ok()?)
    }

    /// The four ASCII digits.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// As `&str`.
    pub fn as_str(&self) -> &str {
        // The four bytes are ASCII digits by construction.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The MTI as a number (`0200` → 200).
    pub fn as_u16(&self) -> u16 {
        self.0
            .iter()
            .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'))
    }

    /// The response MTI: third digit plus one (`0200` → `0210`, `0820` → `0830`).
    pub fn response(&self) -> Self {
        let mut d = self.0;
        d[2] = if d[2] >= b'9' { b'9' } else { d[2] + 1 };
        Self(d)
    }

    /// Whether the MTI is a response (third digit odd).
    pub fn is_response(&self) -> bool {
        (self.0[2] - b'0') % 2 == 1
    }

    /// Two bytes of packed BCD.
    pub fn to_bcd(&self) -> [u8; 2] {
        let d = |i: usize| self.0[i] - b'0';
        [(d(0) << 4) | d(1), (d(2) << 4) | d(3)]
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_and_bcd() {
        let m = Mti::parse("0200").unwrap();
        assert_eq!(m.response().as_str(), "0210");
        assert!(!m.is_response());
        assert!(m.response().is_response());
        assert_eq!(m.to_bcd(), [0x02, 0x00]);
        assert_eq!(Mti::parse("0820").unwrap().response().as_u16(), 830);
        assert!(Mti::parse("02A0").is_none());
        assert!(Mti::parse("020").is_none());
    }
}
