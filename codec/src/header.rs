//! The CUP POS transport header: a 5-byte TPDU and a 6-byte application header.
//!
//! ```text
//! TPDU    60 | dest 2 B | src 2 B          reply: 60 | src | dest
//! header  app type | sw version | status nibble + processing nibble | sub-version 3 B
//! ```
//!
//! In a reply, processing-requirement nibble `3` tells the terminal to sign on again.

use std::fmt;

/// Bytes of TPDU plus CUP header.
pub const CUP_HEADER_LEN: usize = TPDU_LEN + 6;
/// Bytes of a TPDU.
pub const TPDU_LEN: usize = 5;

/// Transport protocol data unit: ID `0x60`, destination and source addresses.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tpdu {
    /// Protocol ID (`0x60`).
    pub id: u8,
    /// Destination address (NII).
    pub dest: [u8; 2],
    /// Source address.
    pub src: [u8; 2],
}

impl Tpdu {
    /// Reads a TPDU from its 5 bytes.
    pub fn from_bytes(b: [u8; TPDU_LEN]) -> Self {
        Self {
            id: b[0],
            dest: [b[1], b[2]],
            src: [b[3], b[4]],
        }
    }

    /// Reads the TPDU at the start of `b`, if there are 5 bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let arr: [u8; TPDU_LEN] = b.get(..TPDU_LEN)?.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    /// The TPDU for the reply: destination and source swapped.
    pub fn reply(self) -> Self {
        Self {
            id: self.id,
            dest: self.src,
            src: self.dest,
        }
    }

    /// The 5 wire bytes.
    pub fn to_bytes(self) -> [u8; TPDU_LEN] {
        [
            self.id,
            self.dest[0],
            self.dest[1],
            self.src[0],
            self.src[1],
        ]
    }
}

impl fmt::Debug for Tpdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        write!(
            f,
            "Tpdu({:02X}{:02X}{:02X}{:02X}{:02X})",
            b[0], b[1], b[2], b[3], b[4]
        )
    }
}

/// The 6-byte CUP application header after the TPDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CupHeader(pub [u8; 6]);

impl CupHeader {
    /// Reads the header from 6 bytes, if there are 6.
    pub fn parse(b: &[u8]) -> Option<Self> {
        Some(Self(b.get(..6)?.try_into().ok()?))
    }

    /// Application type: `0x60` magstripe, `0x61` IC.
    pub fn app_type(&self) -> u8 {
        self.0[0]
    }

    /// Software version byte (`0x31`).
    pub fn software_version(&self) -> u8 {
        self.0[1]
    }

    /// Terminal status (high nibble of byte 3).
    pub fn terminal_status(&self) -> u8 {
        self.0[2] >> 4
    }

    /// Processing requirement (low nibble of byte 3); `3` in a reply means "sign on again".
    pub fn processing_requirement(&self) -> u8 {
        self.0[2] & 0x0F
    }

    /// The same header with another processing requirement nibble.
    pub fn with_processing_requirement(mut self, nibble: u8) -> Self {
        self.0[2] = (self.0[2] & 0xF0) | (nibble & 0x0F);
        self
    }
}

impl fmt::Debug for CupHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CupHeader(")?;
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        f.write_str(")")
    }
}

/// Processing requirement nibble that tells a terminal to sign on again.
pub const SIGN_ON_AGAIN: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpdu_reply_swaps_addresses() {
        let t = Tpdu::from_bytes([0x60, 0x00, 0x03, 0x00, 0x00]);
        assert_eq!(t.reply().to_bytes(), [0x60, 0x00, 0x00, 0x00, 0x03]);
        assert_eq!(t.reply().reply(), t);
    }

    #[test]
    fn header_nibbles() {
        let h = CupHeader([0x60, 0x31, 0x00, 0x31, 0x10, 0x03]);
        assert_eq!(h.app_type(), 0x60);
        assert_eq!(h.processing_requirement(), 0);
        let h = h.with_processing_requirement(SIGN_ON_AGAIN);
        assert_eq!(h.0[2], 0x03);
        assert_eq!(h.terminal_status(), 0);
    }
}
