//! ISO 9564-1 PIN blocks.
//!
//! ```text
//! format 0   PIN field 0 L P P P P F F F F F F F F F F      XOR   PAN field 0000 + acct12
//! format 1   1 L P P P P r r r r r r r r r r                  (no PAN)
//! format 3   3 L P P P P f f f f f f f f f f, f in A..F  XOR   PAN field 0000 + acct12
//! format 4   PIN field 4 L P.. A.. (8 B) + 8 random B; PAN field M + PAN + 0..  (16 B each)
//!            block = E_K( E_K(PIN field) XOR PAN field )       (AES)
//! ```
//!
//! `acct12` is the 12 right-most PAN digits excluding the check digit.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::check_pan;
use super::cipher::{AesKey, xor16};
use crate::Error;

/// A clear PIN of 4 to 12 digits. Zeroized on drop; `Debug` shows nothing; equality is
/// constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClearPin {
    digits: [u8; 12],
    len: u8,
}

impl ClearPin {
    /// A PIN from 4 to 12 ASCII digits.
    pub fn new(pin: &str) -> Result<Self, Error> {
        Self::from_digits(pin.as_bytes())
    }

    /// A PIN from 4 to 12 ASCII digit bytes.
    pub fn from_digits(pin: &[u8]) -> Result<Self, Error> {
        if !(4..=12).contains(&pin.len()) || !pin.iter().all(u8::is_ascii_digit) {
            return Err(Error::BadPin);
        }
        let mut digits = [0u8; 12];
        digits[..pin.len()].copy_from_slice(pin);
        Ok(Self {
            digits,
            len: pin.len() as u8,
        })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a PIN has at least 4 digits.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The digits as values 0–9 (crate-internal: PIN digits never leave the crate's code).
    pub(crate) fn nibble(&self, i: usize) -> u8 {
        self.digits[i] - b'0'
    }
}

impl PartialEq for ClearPin {
    fn eq(&self, other: &Self) -> bool {
        let same_len = self.len.ct_eq(&other.len);
        (same_len & self.digits.ct_eq(&other.digits)).into()
    }
}

impl Eq for ClearPin {}

impl std::fmt::Debug for ClearPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClearPin(****)")
    }
}

/// ISO 9564 PIN block formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PinFormat {
    /// Format 0 (ANSI X9.8, "ISO-0"): PIN XOR PAN, TDES.
    Iso0,
    /// Format 1: PIN and random fill, no PAN.
    Iso1,
    /// Format 3: like 0 with random A–F fill.
    Iso3,
    /// Format 4: AES, 16-byte block.
    Iso4,
    /// UnionPay's SM4 block: format 0 widened to 16 bytes, SM4 (see [`super::sm4`]).
    Sm4,
}

/// The 8-byte format 0/3 PAN field: `0000` + the 12 right-most digits excluding the check
/// digit.
pub fn pan_field(pan: &str) -> Result<[u8; 8], Error> {
    let p = check_pan(pan)?;
    let body = &p[..p.len() - 1];
    let acct = &body[body.len().saturating_sub(12)..];
    let mut nibbles = [0u8; 16];
    let start = 16 - acct.len();
    for (i, d) in acct.iter().enumerate() {
        nibbles[start + i] = d - b'0';
    }
    Ok(pack16(&nibbles))
}

fn pack16(n: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for i in 0..8 {
        out[i] = (n[2 * i] << 4) | n[2 * i + 1];
    }
    out
}

fn unpack16(b: &[u8; 8]) -> [u8; 16] {
    let mut n = [0u8; 16];
    for i in 0..8 {
        n[2 * i] = b[i] >> 4;
        n[2 * i + 1] = b[i] & 0x0F;
    }
    n
}

/// A PIN field `control | L | PIN | fill(i)` as 16 nibbles.
fn pin_field(control: u8, pin: &ClearPin, fill: impl Fn(usize) -> u8) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[0] = control;
    n[1] = pin.len;
    for i in 0..pin.len() {
        n[2 + i] = pin.nibble(i);
    }
    for (i, slot) in n.iter_mut().enumerate().skip(2 + pin.len()) {
        *slot = fill(i);
    }
    n
}

fn nibble_of(block: &[u8; 8], i: usize) -> u8 {
    if i.is_multiple_of(2) {
        block[i / 2] >> 4
    } else {
        block[i / 2] & 0x0F
    }
}

/// Clear format 0 block for `pin` and `pan`.
pub fn format0(pin: &ClearPin, pan: &str) -> Result<[u8; 8], Error> {
    let p = pack16(&pin_field(0, pin, |_| 0xF));
    Ok(super::cipher::xor8(p, pan_field(pan)?))
}

/// Clear format 1 block; the fill nibbles come from `fill` in order (random, or a
/// transaction number).
pub fn format1(pin: &ClearPin, fill: &[u8; 8]) -> [u8; 8] {
    pack16(&pin_field(1, pin, |i| nibble_of(fill, i - 2 - pin.len())))
}

/// Clear format 3 block; fill nibbles come from `fill`, each mapped into `A`–`F` (a nibble
/// already in that range is kept).
pub fn format3(pin: &ClearPin, pan: &str, fill: &[u8; 8]) -> Result<[u8; 8], Error> {
    let f = |i: usize| {
        let n = nibble_of(fill, i - 2 - pin.len());
        if n >= 0xA { n } else { 0xA + n % 6 }
    };
    let p = pack16(&pin_field(3, pin, f));
    Ok(super::cipher::xor8(p, pan_field(pan)?))
}

/// Reads the PIN from a clear PIN field (after removing the PAN), checking control, length,
/// digits and fill for the format.
fn read_pin_field(field: &[u8; 16], format: PinFormat) -> Result<ClearPin, Error> {
    let control = match format {
        PinFormat::Iso0 => 0,
        PinFormat::Iso1 => 1,
        PinFormat::Iso3 => 3,
        PinFormat::Iso4 => 4,
        PinFormat::Sm4 => return Err(Error::BadPinBlock),
    };
    if field[0] != control {
        return Err(Error::BadPinBlock);
    }
    let len = usize::from(field[1]);
    if !(4..=12).contains(&len) {
        return Err(Error::BadPinBlock);
    }
    let mut digits = [0u8; 12];
    for i in 0..len {
        let d = field[2 + i];
        if d > 9 {
            digits.zeroize();
            return Err(Error::BadPinBlock);
        }
        digits[i] = b'0' + d;
    }
    let fill_ok = field[2 + len..].iter().all(|n| match format {
        PinFormat::Iso0 => *n == 0xF,
        PinFormat::Iso1 => true,
        PinFormat::Iso3 => *n >= 0xA,
        PinFormat::Iso4 => *n == 0xA,
        PinFormat::Sm4 => false,
    });
    let pin = ClearPin::from_digits(&digits[..len]);
    digits.zeroize();
    if fill_ok {
        pin
    } else {
        Err(Error::BadPinBlock)
    }
}

/// The PIN in a clear format 0, 1 or 3 block (`pan` is ignored for format 1).
pub fn parse(block: &[u8; 8], format: PinFormat, pan: &str) -> Result<ClearPin, Error> {
    let field = match format {
        PinFormat::Iso0 | PinFormat::Iso3 => super::cipher::xor8(*block, pan_field(pan)?),
        PinFormat::Iso1 => *block,
        PinFormat::Iso4 | PinFormat::Sm4 => return Err(Error::BadPinBlock),
    };
    let mut nibbles = unpack16(&field);
    let pin = read_pin_field(&nibbles, format);
    nibbles.zeroize();
    pin
}

/// The 16-byte format 4 PIN field: `4 | L | PIN | A...` (8 bytes) then 8 random bytes.
pub fn format4_pin_field(pin: &ClearPin, random: &[u8; 8]) -> [u8; 16] {
    let head = pack16(&pin_field(4, pin, |_| 0xA));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&head);
    out[8..].copy_from_slice(random);
    out
}

/// The 16-byte format 4 PAN field: `M | PAN | 0...` where `M` is the PAN length minus 12;
/// a PAN shorter than 12 digits is right-aligned in 12 with leading zeros.
pub fn format4_pan_field(pan: &str) -> Result<[u8; 16], Error> {
    let p = pan.as_bytes();
    if p.is_empty() || p.len() > 19 || !p.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadPan);
    }
    let mut n = [0u8; 32];
    let (m, start) = if p.len() >= 12 {
        (p.len() - 12, 1)
    } else {
        (0, 1 + 12 - p.len())
    };
    n[0] = m as u8;
    for (i, d) in p.iter().enumerate() {
        n[start + i] = d - b'0';
    }
    let mut out = [0u8; 16];
    for i in 0..16 {
        out[i] = (n[2 * i] << 4) | n[2 * i + 1];
    }
    Ok(out)
}

/// Enciphers a format 4 block: `E_K(E_K(PIN field) XOR PAN field)`.
pub fn format4_encipher(key: &AesKey, pin_field: &[u8; 16], pan: &str) -> Result<[u8; 16], Error> {
    Ok(key.encrypt(xor16(key.encrypt(*pin_field), format4_pan_field(pan)?)))
}

/// Deciphers a format 4 block and reads its PIN.
pub fn format4_decipher(key: &AesKey, block: &[u8; 16], pan: &str) -> Result<ClearPin, Error> {
    let mut field = key.decrypt(xor16(key.decrypt(*block), format4_pan_field(pan)?));
    let mut head = [0u8; 8];
    head.copy_from_slice(&field[..8]);
    let mut nibbles = unpack16(&head);
    let pin = read_pin_field(&nibbles, PinFormat::Iso4);
    nibbles.zeroize();
    head.zeroize();
    field.zeroize();
    pin
}
