//! Key management: `A0` generate, `A6` import, `A8` export, `BU` check value.
//!
//! A key under a ZMK or TMK is encrypted as under the LMK, with the ZMK/TMK in place of the
//! LMK pair and no key type variant: scheme `U`/`T` apply their half variants to the
//! KEK's right key, `X`/`Y`/`Z` and single length are plain TDES-ECB.

use super::Answer;
use crate::audit::AuditEvent;
use crate::payshield::reader::Reader;
use crate::payshield::variant::{KeyType, Scheme, wrap};
use crate::payshield::{ErrorCode, PayShield, check_value, tagged};

/// The key type of a ZMK/TMK flag (`0` ZMK, `1` TMK).
fn kek_type(r: &mut Reader<'_>) -> Result<KeyType, ErrorCode> {
    if r.eat(b';') {
        match r.take(1)? {
            b"0" => Ok(KeyType::ZMK),
            b"1" => Ok(KeyType::TPK),
            _ => Err(ErrorCode::InvalidInput),
        }
    } else {
        Ok(KeyType::ZMK)
    }
}

fn kcv6(clear: &[u8]) -> String {
    hex::encode_upper(&check_value(clear)[..3])
}

/// `A0`: generate a key under the LMK, and in mode `1` under a ZMK/TMK too.
pub(super) fn a0(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let mode = r.take(1)?;
    let t = KeyType::parse(r.take(3)?)?;
    let scheme = Scheme::from_tag(r.take(1)?[0])?;
    let export = match mode {
        b"0" => None,
        b"1" => {
            let kt = kek_type(r)?;
            let kek = r.key()?;
            let kek = hsm.open(&kek, kt, ErrorCode::SourceParity)?;
            let under = Scheme::from_tag(r.take(1)?[0])?;
            Some((kek, under))
        }
        _ => return Err(ErrorCode::InvalidInput),
    };
    r.finish()?;
    let key = hsm.random_key(scheme.key_len())?;
    let mut out = hsm.seal(t, scheme, &key)?;
    if let Some((kek, under)) = export {
        if under.key_len() != key.len() {
            return Err(ErrorCode::KeyLength);
        }
        out.push_str(&tagged(under, &wrap(&kek, 0, under, &key, true)?));
        hsm.record(AuditEvent::KeyExported, t, &key);
    }
    hsm.record(AuditEvent::KeyGenerated, t, &key);
    out.push_str(&kcv6(&key));
    Ok(out)
}

/// `A6`: import a key from under a ZMK.
pub(super) fn a6(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let t = KeyType::parse(r.take(3)?)?;
    let zmk = r.key()?;
    let zmk = hsm.open(&zmk, KeyType::ZMK, ErrorCode::SourceParity)?;
    let key = r.key()?;
    let scheme = Scheme::from_tag(r.take(1)?[0])?;
    r.finish()?;
    if scheme.key_len() != key.scheme.key_len() {
        return Err(ErrorCode::KeyLength);
    }
    let clear = wrap(&zmk, 0, key.scheme, &key.cryptogram, false)?;
    if !crate::payshield::variant::odd_parity(&clear) {
        return Err(ErrorCode::DestinationParity);
    }
    hsm.record(AuditEvent::KeyImported, t, &clear);
    Ok(format!("{}{}", hsm.seal(t, scheme, &clear)?, kcv6(&clear)))
}

/// `A8`: export a key under a ZMK or TMK.
pub(super) fn a8(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let t = KeyType::parse(r.take(3)?)?;
    let kt = kek_type(r)?;
    let kek = r.key()?;
    let kek = hsm.open(&kek, kt, ErrorCode::SourceParity)?;
    let key = r.key()?;
    let clear = hsm.open(&key, t, ErrorCode::DestinationParity)?;
    let under = Scheme::from_tag(r.take(1)?[0])?;
    r.finish()?;
    if under.key_len() != clear.len() {
        return Err(ErrorCode::KeyLength);
    }
    hsm.record(AuditEvent::KeyExported, t, &clear);
    Ok(format!(
        "{}{}",
        tagged(under, &wrap(&kek, 0, under, &clear, true)?),
        kcv6(&clear)
    ))
}

/// `BU`: a key's check value, 16 hex.
pub(super) fn bu(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let code = r.take(2)?;
    let flag = r.take(1)?;
    let key = r.key()?;
    let t = if code == b"FF" {
        if !r.eat(b';') {
            return Err(ErrorCode::InvalidInput);
        }
        KeyType::parse(r.take(3)?)?
    } else {
        let pair = KeyType::pair_of(&[code[0], code[1]]).ok_or(ErrorCode::InvalidKeyType)?;
        KeyType { pair, variant: 0 }
    };
    r.finish()?;
    let len = match flag {
        b"0" => 8,
        b"1" => 16,
        b"2" => 24,
        _ => return Err(ErrorCode::InvalidKeyLengthFlag),
    };
    if key.scheme.key_len() != len {
        return Err(ErrorCode::KeyLength);
    }
    let clear = hsm.open(&key, t, ErrorCode::SourceParity)?;
    Ok(hex::encode_upper(check_value(&clear)))
}
