//! PIN verification and PIN verification values: `DA`/`EA` (IBM 3624 offset), `DC`/`EC`
//! (Visa PVV), `DE` (generate an offset), `DG` (generate a PVV).
//!
//! `DA`/`EA` check the PIN's first *check length* digits; a PIN longer than the maximum PIN
//! length is refused (`24`), so a caller that wants every digit to count sends the offset's
//! length as both.

use super::Answer;
use super::pins::{cipher, read_pin};
use crate::payshield::pin::{self, BlockFormat};
use crate::payshield::reader::Reader;
use crate::payshield::variant::KeyType;
use crate::payshield::{ErrorCode, PayShield};
use crate::primitives::pinblock::ClearPin;
use crate::primitives::pvv::{ibm3624_natural, ibm3624_offset, visa_pvv};

/// The 16 characters of validation data: `N` replaced by the account's last five digits,
/// or `F`-padded when there is none.
fn validation(data: &[u8], account: &str) -> Result<String, ErrorCode> {
    if !data.iter().all(|b| b.is_ascii_hexdigit() || *b == b'N') {
        return Err(ErrorCode::InvalidInput);
    }
    let s = std::str::from_utf8(data).map_err(|_| ErrorCode::InvalidInput)?;
    let v = match s.matches('N').count() {
        0 => format!("{s}FFFF"),
        1 => s.replacen('N', &account[7..], 1),
        _ => return Err(ErrorCode::InvalidInput),
    };
    Ok(v.to_ascii_uppercase())
}

fn table(r: &mut Reader<'_>) -> Result<[u8; 16], ErrorCode> {
    let t = r.digits(16)?;
    let mut out = [0u8; 16];
    out.copy_from_slice(t.as_bytes());
    Ok(out)
}

/// The natural PIN's first `len` digits.
fn natural(pvk: &[u8], dec: &[u8; 16], validation: &str, len: usize) -> Result<Vec<u8>, ErrorCode> {
    ibm3624_natural(&cipher(pvk)?, dec, validation, len).map_err(|_| ErrorCode::InvalidInput)
}

/// Counts a verification: a failure feeds the limiter.
fn verdict(hsm: &PayShield, ok: bool) -> Answer {
    if ok {
        Ok(String::new())
    } else {
        hsm.limiter.failed();
        Err(ErrorCode::VerificationFailure)
    }
}

fn ibm_verify(hsm: &PayShield, r: &mut Reader<'_>, source: KeyType) -> Answer {
    let key = r.key()?;
    let key = hsm.open(&key, source, ErrorCode::SourceParity)?;
    let pvk = r.key()?;
    let pvk = hsm.open(&pvk, KeyType::TPK, ErrorCode::DestinationParity)?;
    let max = r.number(2)?;
    let block = r.block()?;
    let format = BlockFormat::parse(r.digits(2)?)?;
    let check = r.number(2)?;
    let account = r.digits(12)?;
    let dec = table(r)?;
    let data = r.take(12)?;
    let offset = r.take(12)?;
    r.finish()?;
    if !(4..=12).contains(&check) {
        return Err(ErrorCode::PinLength);
    }
    let offset = std::str::from_utf8(offset).map_err(|_| ErrorCode::InvalidInput)?;
    let digits = offset.trim_end_matches(['F', 'f']);
    if digits.len() < check || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorCode::InvalidInput);
    }
    let validation = validation(data, account)?;
    if !hsm.limiter.allows() {
        return Err(ErrorCode::VerificationFailure);
    }
    let pin = read_pin(&key, block, format, account)?;
    if pin.len() > max {
        return Err(ErrorCode::PinLength);
    }
    if pin.len() < check {
        return verdict(hsm, false);
    }
    let nat = natural(&pvk, &dec, &validation, check)?;
    let expected = ibm3624_offset(&pin, &nat).map_err(|_| ErrorCode::InvalidInput)?;
    let ok = subtle::ConstantTimeEq::ct_eq(&expected[..], &digits.as_bytes()[..check]).into();
    verdict(hsm, ok)
}

/// `DA`: a terminal PIN (TPK) against an IBM 3624 offset.
pub(super) fn da(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    ibm_verify(hsm, r, KeyType::TPK)
}

/// `EA`: an interchange PIN (ZPK) against an IBM 3624 offset.
pub(super) fn ea(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    ibm_verify(hsm, r, KeyType::ZPK)
}

fn pvv_of(pvk: &[u8], account: &str, pvki: u8, pin: &ClearPin) -> Result<[u8; 4], ErrorCode> {
    visa_pvv(&cipher(pvk)?, &format!("{account}0"), pvki, pin).map_err(|_| ErrorCode::InvalidInput)
}

fn pvv_verify(hsm: &PayShield, r: &mut Reader<'_>, source: KeyType) -> Answer {
    let key = r.key()?;
    let key = hsm.open(&key, source, ErrorCode::SourceParity)?;
    let pvk = r.key_pair()?;
    let pvk = hsm.open(&pvk, KeyType::TPK, ErrorCode::DestinationParity)?;
    let block = r.block()?;
    let format = BlockFormat::parse(r.digits(2)?)?;
    let account = r.digits(12)?;
    let pvki = r.number(1)? as u8;
    let pvv = r.digits(4)?;
    r.finish()?;
    if !hsm.limiter.allows() {
        return Err(ErrorCode::VerificationFailure);
    }
    let pin = read_pin(&key, block, format, account)?;
    let expected = pvv_of(&pvk, account, pvki, &pin)?;
    let ok = subtle::ConstantTimeEq::ct_eq(&expected[..], pvv.as_bytes()).into();
    verdict(hsm, ok)
}

/// `DC`: a terminal PIN (TPK) against a Visa PVV.
pub(super) fn dc(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    pvv_verify(hsm, r, KeyType::TPK)
}

/// `EC`: an interchange PIN (ZPK) against a Visa PVV.
pub(super) fn ec(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    pvv_verify(hsm, r, KeyType::ZPK)
}

/// `DE`: the IBM 3624 offset of a PIN under the LMK.
pub(super) fn de(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let pvk = r.key()?;
    let pvk = hsm.open(&pvk, KeyType::TPK, ErrorCode::SourceParity)?;
    let pin_field = r.until_last(2 + 12 + 16 + 12)?;
    let check = r.number(2)?;
    let account = r.digits(12)?;
    let dec = table(r)?;
    let data = r.take(12)?;
    r.finish()?;
    if !(4..=12).contains(&check) {
        return Err(ErrorCode::PinLength);
    }
    let pin = pin::decrypt_under_lmk(hsm.lmk(), pin_field, account)?;
    if pin.len() < check {
        return Err(ErrorCode::PinLength);
    }
    let nat = natural(&pvk, &dec, &validation(data, account)?, check)?;
    let offset = ibm3624_offset(&pin, &nat).map_err(|_| ErrorCode::InvalidInput)?;
    let mut s = String::from_utf8(offset).map_err(|_| ErrorCode::InvalidInput)?;
    while s.len() < 12 {
        s.push('F');
    }
    Ok(s)
}

/// `DG`: the Visa PVV of a PIN under the LMK.
pub(super) fn dg(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let pvk = r.key_pair()?;
    let pvk = hsm.open(&pvk, KeyType::TPK, ErrorCode::SourceParity)?;
    let pin_field = r.until_last(12 + 1)?;
    let account = r.digits(12)?;
    let pvki = r.number(1)? as u8;
    r.finish()?;
    let pin = pin::decrypt_under_lmk(hsm.lmk(), pin_field, account)?;
    let pvv = pvv_of(&pvk, account, pvki, &pin)?;
    String::from_utf8(pvv.to_vec()).map_err(|_| ErrorCode::InvalidInput)
}
