//! Card verification values (Visa CVV / CVV2 / iCVV; Mastercard CVC uses the same method).
//!
//! ```text
//! data  = PAN | expiry YYMM | service code, zero-padded to 32 digits = B1 | B2
//! CVV   = decimalise( TDES_{KA,KB}( E_KA(B1) XOR B2 ) )[..3]
//! ```
//! CVV2 uses service code `000`; iCVV uses `999`.

use super::check_pan;
use super::cipher::{DesKey, xor8};
use super::pvv::decimalise;
use crate::Error;

/// The three-digit CVV for `pan`, `expiry` (YYMM) and `service` code, under the 16-byte
/// CVK pair `KA | KB`.
pub fn cvv(cvk: &[u8], pan: &str, expiry: &str, service: &str) -> Result<[u8; 3], Error> {
    if cvk.len() != 16 {
        return Err(Error::KeyLength);
    }
    let p = check_pan(pan)?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(expiry, 4) || !digits(service, 3) {
        return Err(Error::DataLength);
    }
    let mut data = [b'0'; 32];
    for (k, &b) in p
        .iter()
        .chain(expiry.as_bytes())
        .chain(service.as_bytes())
        .enumerate()
    {
        data[k] = b;
    }
    let b1 = super::hex8(&data[..16]).ok_or(Error::DataLength)?;
    let b2 = super::hex8(&data[16..]).ok_or(Error::DataLength)?;
    let ka = DesKey::new(&cvk[..8])?;
    let kab = DesKey::new(cvk)?;
    Ok(decimalise(kab.encrypt(xor8(ka.encrypt(b1), b2))))
}
