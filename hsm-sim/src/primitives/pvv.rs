//! PIN verification values.
//!
//! ```text
//! Visa PVV   TSP = 11 right-most PAN digits excl. check digit | PVKI | 4 PIN digits
//!            PVV = decimalise(TDES_PVK(TSP))[..4]   (digits first, then A-F minus 10)
//! IBM 3624   natural = decimalise_table(E_PVK(validation data))[..L]
//!            offset  = (PIN - natural) mod 10, digit by digit
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

/// IBM 3624 offset: `(PIN - natural) mod 10` digit by digit, ASCII digits.
pub fn ibm3624_offset(pin: &ClearPin, natural: &[u8]) -> Result<Vec<u8>, Error> {
    if natural.len() != pin.len() {
        return Err(Error::DataLength);
    }
    Ok((0..pin.len())
        .map(|i| b'0' + (pin.nibble(i) + 10 - (natural[i] - b'0')) % 10)
        .collect())
}
