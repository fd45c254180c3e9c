//! PIN verification values.
//!
//! ```text
//! Visa PVV   TSP = 11 right-most PAN digits excl. check digit | PVKI | 4 PIN digits
//!            PVV = decimalise(TDES_PVK(TSP))[..4]   (digits first, then A-F minus 10)
//! IBM 3624   natural = decimalise_table(E_PVK(validation data))[..L]   L = check length
//!            offset  = (PIN[..L] - natural) mod 10, digit by digit
//!            L = the PIN's length (every digit counts), or a shorter check length
//! ```

use super::check_pan;
use super::cipher::DesKey;
use super::pinblock::ClearPin;
use crate::Error;

fn nibbles(b: [u8; 8]) -> [u8; 16] {
    let mut n = [0u8; 16];
    for i in 0..8 {
        n[2 * i] = b[i] >> 4;
        n[2 * i + 1] = b[i] & 0x0F;
    }
    n
}

/// Visa-style decimalisation: the decimal nibbles left to right, then, if more are needed,
/// the nibbles A–F minus 10. Returns ASCII digits.
pub(crate) fn decimalise<const N: usize>(block: [u8; 8]) -> [u8; N] {
    let n = nibbles(block);
    let mut out = [0u8; N];
    let mut k = 0;
    for pass in 0..2 {
        for &x in &n {
            if k == N {
                return out;
            }
            match (pass, x) {
                (0, 0..=9) => {
                    out[k] = b'0' + x;
                    k += 1;
                }
                (1, 10..=15) => {
                    out[k] = b'0' + (x - 10);
                    k += 1;
                }
                _ => {}
            }
        }
    }
    out
}

/// Packs ASCII hex or digit characters (16 of them) into a block.
fn block_of(chars: &[u8]) -> Result<[u8; 8], Error> {
    super::hex8(chars).ok_or(Error::DataLength)
}

/// Visa PVV for `pin` (its first four digits), `pan` and key index `pvki` (0–9).
pub fn visa_pvv(pvk: &DesKey, pan: &str, pvki: u8, pin: &ClearPin) -> Result<[u8; 4], Error> {
    let p = check_pan(pan)?;
    if pvki > 9 {
        return Err(Error::BadPvki);
    }
    let body = &p[..p.len() - 1];
    let mut tsp = [0u8; 16];
    tsp[..11].copy_from_slice(&body[body.len() - 11..]);
    tsp[11] = b'0' + pvki;
    for i in 0..4 {
        tsp[12 + i] = b'0' + pin.nibble(i);
    }
    let block = block_of(&tsp)?;
    Ok(decimalise(pvk.encrypt(block)))
}

/// IBM 3624 natural PIN of `len` digits: the validation data (16 hex characters, usually
/// PAN digits padded with `F`) encrypted under the PVK, each nibble mapped through the
/// 16-digit decimalisation table. Returns ASCII digits.
pub fn ibm3624_natural(
    pvk: &DesKey,
    decimalisation: &[u8; 16],
    validation: &str,
    len: usize,
) -> Result<Vec<u8>, Error> {
    if !(4..=12).contains(&len) || !decimalisation.iter().all(u8::is_ascii_digit) {
        return Err(Error::DataLength);
    }
    let n = nibbles(pvk.encrypt(block_of(validation.as_bytes())?));
    Ok(n[..len]
        .iter()
        .map(|x| decimalisation[usize::from(*x)])
        .collect())
}

/// IBM 3624 offset over the PIN's leftmost `natural.len()` digits (the check length):
/// `(PIN - natural) mod 10` digit by digit, ASCII digits. The PIN must be at least as long
/// as the check length.
pub fn ibm3624_offset(pin: &ClearPin, natural: &[u8]) -> Result<Vec<u8>, Error> {
    if natural.len() > pin.len() || natural.is_empty() {
        return Err(Error::DataLength);
    }
    Ok((0..natural.len())
        .map(|i| b'0' + (pin.nibble(i) + 10 - (natural[i] - b'0')) % 10)
        .collect())
}

/// How many PIN digits an IBM 3624 check covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckLength {
    /// Every digit: the PIN's length must equal the offset's (4 to 12 digits). What a switch
    /// that wants every digit to count uses.
    WholePin,
    /// The leftmost `n` digits (4 to 12), as IBM and Thales define the check length: a
    /// longer PIN's further digits are not checked.
    Digits(u8),
}

/// IBM 3624 parameters beside the PVK: the decimalisation table and the check length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ibm3624 {
    /// 16 ASCII digits mapping each nibble 0-F to a decimal digit.
    pub decimalisation: [u8; 16],
    /// Which digits are checked.
    pub check: CheckLength,
}

impl Ibm3624 {
    /// The common decimalisation table `0123456789012345`.
    pub const STANDARD_TABLE: [u8; 16] = *b"0123456789012345";

    /// Every digit checked, with `decimalisation`.
    pub fn whole_pin(decimalisation: [u8; 16]) -> Self {
        Self {
            decimalisation,
            check: CheckLength::WholePin,
        }
    }

    /// The number of digits to check for a PIN of `pin_len` digits against an offset of
    /// `offset_len` digits, or `None` when they cannot match.
    pub fn check_len(&self, pin_len: usize, offset_len: usize) -> Option<usize> {
        match self.check {
            CheckLength::WholePin => (pin_len == offset_len).then_some(pin_len),
            CheckLength::Digits(n) => {
                let n = usize::from(n);
                (offset_len == n && pin_len >= n).then_some(n)
            }
        }
    }
}

/// The offset as given: 4 to 12 digits, optionally padded on the right with `F` (Thales
/// keeps offsets as 12 characters, left-justified, `F`-filled).
pub fn offset_digits(offset: &str) -> Option<&str> {
    let o = offset.trim_end_matches(['F', 'f']);
    ((4..=12).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_digit())).then_some(o)
}

/// IBM 3624 validation data from an account number: its 12 right-most digits before the
/// check digit (the account number ISO 9564 format 0 uses; left-filled with `0` when
/// shorter), then `FFFF` to fill the block.
///
/// ```
/// use hsm_sim::primitives::pvv::validation_from_pan;
/// assert_eq!(validation_from_pan("6222021000000000017").unwrap(), "100000000001FFFF");
/// ```
pub fn validation_from_pan(pan: &str) -> Result<String, Error> {
    let p = check_pan(pan)?;
    let body = &p[..p.len() - 1];
    let acct = &body[body.len().saturating_sub(12)..];
    let mut v = String::with_capacity(16);
    v.extend(std::iter::repeat_n('0', 12 - acct.len()));
    v.extend(acct.iter().map(|b| char::from(*b)));
    v.push_str("FFFF");
    Ok(v)
}
