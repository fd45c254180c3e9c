//! PIN translation: `CA` (TPK → ZPK), `CC` (ZPK → ZPK), `JC` (TPK → LMK), `JE` (ZPK → LMK).

use zeroize::Zeroizing;

use super::Answer;
use crate::payshield::pin::{self, BlockFormat};
use crate::payshield::reader::Reader;
use crate::payshield::variant::KeyType;
use crate::payshield::{ErrorCode, PayShield};
use crate::primitives::cipher::DesKey;
use crate::primitives::pinblock::ClearPin;

/// A DES cipher of a clear key.
pub(super) fn cipher(key: &[u8]) -> Result<DesKey, ErrorCode> {
    DesKey::new(key).map_err(|_| ErrorCode::KeyLength)
}

/// Reads `PIN block 16H, format 2N` … `account 12N` around whatever `between` reads, and
/// decrypts the PIN under `key`.
pub(super) fn read_pin(
    key: &[u8],
    block: [u8; 8],
    format: BlockFormat,
    account: &str,
) -> Result<ClearPin, ErrorCode> {
    let clear = Zeroizing::new(cipher(key)?.decrypt(block));
    pin::read(&clear, format, account)
}

/// `CA` and `CC`: source key, destination key, max PIN length, block, formats, account.
fn translate(hsm: &PayShield, r: &mut Reader<'_>, source: KeyType) -> Answer {
    let src = r.key()?;
    let src = hsm.open(&src, source, ErrorCode::SourceParity)?;
    let dst = r.key()?;
    let dst = hsm.open(&dst, KeyType::ZPK, ErrorCode::DestinationParity)?;
    let max = r.number(2)?;
    let block = r.block()?;
    let from = BlockFormat::parse(r.digits(2)?)?;
    let to = BlockFormat::parse(r.digits(2)?)?;
    let account = r.digits(12)?;
    r.finish()?;
    let pin = read_pin(&src, block, from, account)?;
    if pin.len() > max {
        return Err(ErrorCode::PinLength);
    }
    let out = Zeroizing::new(pin::write(&pin, to, account, &hsm.rng)?);
    let enc = cipher(&dst)?.encrypt(*out);
    Ok(format!(
        "{:02}{}{}",
        pin.len(),
        hex::encode_upper(enc),
        to.code()
    ))
}

/// `CA`: a terminal's PIN block to a zone's.
pub(super) fn ca(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    translate(hsm, r, KeyType::TPK)
}

/// `CC`: one zone's PIN block to another's.
pub(super) fn cc(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    translate(hsm, r, KeyType::ZPK)
}

fn to_lmk(hsm: &PayShield, r: &mut Reader<'_>, source: KeyType) -> Answer {
    let key = r.key()?;
    let key = hsm.open(&key, source, ErrorCode::SourceParity)?;
    let block = r.block()?;
    let format = BlockFormat::parse(r.digits(2)?)?;
    let account = r.digits(12)?;
    r.finish()?;
    let pin = read_pin(&key, block, format, account)?;
    Ok(pin::encrypt_under_lmk(hsm.lmk(), &pin, account)?.to_string())
}

/// `JC`: a terminal's PIN block to the PIN under the LMK.
pub(super) fn jc(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    to_lmk(hsm, r, KeyType::TPK)
}

/// `JE`: a zone's PIN block to the PIN under the LMK.
pub(super) fn je(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    to_lmk(hsm, r, KeyType::ZPK)
}
