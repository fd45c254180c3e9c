//! Card verification values: `CW` generate, `CY` verify.

use super::Answer;
use crate::payshield::reader::Reader;
use crate::payshield::variant::KeyType;
use crate::payshield::{ErrorCode, PayShield};
use crate::primitives::cvv::cvv;

/// PAN `;` expiry service code.
fn card<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a str, &'a str), ErrorCode> {
    let pan = r.until(b';')?;
    r.take(1)?;
    let expiry = r.digits(4)?;
    let service = r.digits(3)?;
    r.finish()?;
    if !(12..=19).contains(&pan.len()) || !pan.iter().all(u8::is_ascii_digit) {
        return Err(ErrorCode::InvalidInput);
    }
    let pan = std::str::from_utf8(pan).map_err(|_| ErrorCode::InvalidInput)?;
    Ok((pan, expiry, service))
}

fn compute(cvk: &[u8], pan: &str, expiry: &str, service: &str) -> Result<[u8; 3], ErrorCode> {
    if cvk.len() != 16 {
        return Err(ErrorCode::KeyLength);
    }
    cvv(cvk, pan, expiry, service).map_err(|_| ErrorCode::InvalidInput)
}

/// `CW`: CVK pair, PAN `;` expiry service → CVV.
pub(super) fn cw(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let cvk = r.key_pair()?;
    let cvk = hsm.open(&cvk, KeyType::CVK, ErrorCode::SourceParity)?;
    let (pan, expiry, service) = card(r)?;
    let v = compute(&cvk, pan, expiry, service)?;
    String::from_utf8(v.to_vec()).map_err(|_| ErrorCode::InvalidInput)
}

/// `CY`: CVK pair, CVV, PAN `;` expiry service → `00` or `01`.
pub(super) fn cy(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let cvk = r.key_pair()?;
    let cvk = hsm.open(&cvk, KeyType::CVK, ErrorCode::SourceParity)?;
    let given = r.digits(3)?;
    let (pan, expiry, service) = card(r)?;
    let v = compute(&cvk, pan, expiry, service)?;
    if subtle::ConstantTimeEq::ct_eq(&v[..], given.as_bytes()).into() {
        Ok(String::new())
    } else {
        Err(ErrorCode::VerificationFailure)
    }
}
