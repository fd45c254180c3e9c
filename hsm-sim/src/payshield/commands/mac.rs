//! MACs: `MA`/`MC` (ANSI X9.9 over the data as sent, 4 bytes) and `M6`/`M8` (ISO 9797-1
//! algorithms 1 and 3, chosen padding and size).
//!
//! `M6`/`M8` message length: for binary and text input, the message's bytes; for
//! hex-encoded input, the characters sent or the bytes they stand for (either is read).
//!
//! The UnionPay POS "ECB" MAC has no command of its own; it is ISO 9797-1 algorithm 1 over
//! one 16-byte value, so `M6` computes it: the caller XORs the message's 8-byte blocks,
//! writes the result as 16 upper-case hex characters, asks `M6` (binary input, 16-hex MAC,
//! algorithm 1, no padding) for their MAC, and keeps the first 8 hex characters.

use subtle::ConstantTimeEq;

use super::Answer;
use super::pins::cipher;
use crate::payshield::reader::Reader;
use crate::payshield::variant::KeyType;
use crate::payshield::{ErrorCode, PayShield};
use crate::primitives::mac::{Padding, cbc_mac, retail_mac};

fn x99(key: &[u8], data: &[u8]) -> Result<[u8; 8], ErrorCode> {
    Ok(cbc_mac(&cipher(key)?, data, Padding::Zeros))
}

/// `MA`: TAK, data → MAC `8H`.
pub(super) fn ma(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let tak = r.key()?;
    let tak = hsm.open(&tak, KeyType::TAK, ErrorCode::SourceParity)?;
    let mac = x99(&tak, r.rest())?;
    Ok(hex::encode_upper(&mac[..4]))
}

/// `MC`: TAK, MAC `8H`, data → `00` or `01`.
pub(super) fn mc(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let tak = r.key()?;
    let tak = hsm.open(&tak, KeyType::TAK, ErrorCode::SourceParity)?;
    let given = r.hex(8)?;
    let mac = x99(&tak, r.rest())?;
    if bool::from(mac[..4].ct_eq(&given)) {
        Ok(String::new())
    } else {
        Err(ErrorCode::VerificationFailure)
    }
}

/// The fields `M6` and `M8` share, read up to the message's end, and the MAC they give.
/// `verify`: an `M8`, whose MAC follows the message.
fn compute(
    hsm: &PayShield,
    r: &mut Reader<'_>,
    verify: bool,
) -> Result<(Vec<u8>, usize), ErrorCode> {
    if r.take(1)? != b"0" {
        return Err(ErrorCode::InvalidInput);
    }
    let input = r.take(1)?[0];
    let size = match r.take(1)? {
        b"0" => 4,
        b"1" => 8,
        _ => return Err(ErrorCode::InvalidInput),
    };
    let algorithm = r.take(1)?[0];
    let padding = match r.take(1)? {
        b"0" => None,
        b"1" => Some(Padding::Zeros),
        b"2" => Some(Padding::Iso2),
        _ => return Err(ErrorCode::InvalidInput),
    };
    let t = match r.take(3)? {
        b"003" => KeyType::TAK,
        b"008" => KeyType::ZAK,
        _ => return Err(ErrorCode::InvalidKeyType),
    };
    let key = r.key()?;
    let key = hsm.open(&key, t, ErrorCode::SourceParity)?;
    let len = usize::from_str_radix(
        std::str::from_utf8(r.take(4)?).map_err(|_| ErrorCode::InvalidInput)?,
        16,
    )
    .map_err(|_| ErrorCode::InvalidInput)?;
    // For hex-encoded input the length may count the message's bytes or its characters:
    // where the rest of the command says which, both are read.
    let chars = if input == b'1' {
        let rest = r.rest();
        let left = rest
            .iter()
            .position(|b| *b == crate::payshield::TRAILER)
            .unwrap_or(rest.len());
        let tail = if verify { size * 2 } else { 0 };
        if left == len * 2 + tail { len * 2 } else { len }
    } else {
        len
    };
    let raw = r.take(chars).map_err(|_| ErrorCode::DataLength)?;
    let message = match input {
        b'0' | b'2' => raw.to_vec(),
        b'1' => hex::decode(raw).map_err(|_| ErrorCode::InvalidInput)?,
        _ => return Err(ErrorCode::InvalidInput),
    };
    let padding = match padding {
        Some(p) => p,
        None if !message.is_empty() && message.len() % 8 == 0 => Padding::Zeros,
        None => return Err(ErrorCode::DataLength),
    };
    let mac = match algorithm {
        b'1' => cbc_mac(&cipher(&key)?, &message, padding),
        b'3' => retail_mac(&key, &message, padding).map_err(|_| ErrorCode::KeyLength)?,
        _ => return Err(ErrorCode::InvalidInput),
    };
    Ok((mac[..size].to_vec(), size))
}

/// `M6` → MAC (`8H` or `16H`).
pub(super) fn m6(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let (mac, _) = compute(hsm, r, false)?;
    r.finish()?;
    Ok(hex::encode_upper(mac))
}

/// `M8` → `00` or `01`.
pub(super) fn m8(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    let (mac, size) = compute(hsm, r, true)?;
    let given = r.hex(size * 2)?;
    r.finish()?;
    if bool::from(mac.ct_eq(&given)) {
        Ok(String::new())
    } else {
        Err(ErrorCode::VerificationFailure)
    }
}
