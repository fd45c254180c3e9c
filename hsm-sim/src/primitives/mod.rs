//! Pure payment-crypto primitives over clear keys, for code that legitimately holds clear
//! keys outside the HSM: a terminal's firmware (its TPK and TAK after sign-on) and tests.
//!
//! The [`crate::Hsm`] is built on these; it never hands a clear key out.
//!
//! | module | what |
//! | --- | --- |
//! | [`cipher`] | DES, 2-key and 3-key TDES (EDE), AES block operations |
//! | [`kcv`] | key check values (TDES: encrypt zeros; AES: CMAC of zeros) |
//! | [`pinblock`] | ISO 9564 PIN block formats 0, 1, 3 and 4 |
//! | [`mac`] | UnionPay POS "ECB" MAC, ISO 9797-1 algorithms 1 and 3 (X9.9, X9.19), AES-CMAC |
//! | [`pvv`] | Visa PVV, IBM 3624 natural PIN and offset |
//! | [`cvv`] | Visa CVV / CVV2 / iCVV (= Mastercard CVC) |
//! | [`sm4`] | SM4 (国密): check value, the 16-byte PIN block, the UnionPay POS MAC |

pub mod cipher;
pub mod cvv;
pub mod dea;
pub mod kcv;
pub mod mac;
pub mod pinblock;
pub mod pvv;
pub mod sm4;

/// Digits of a primary account number, checked: 12 to 19 ASCII digits.
pub(crate) fn check_pan(pan: &str) -> Result<&[u8], crate::Error> {
    let b = pan.as_bytes();
    if (12..=19).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
        Ok(b)
    } else {
        Err(crate::Error::BadPan)
    }
}

/// Packs 16 hex characters (upper or lower case) into 8 bytes.
pub(crate) fn hex8(s: &[u8]) -> Option<[u8; 8]> {
    if s.len() != 16 {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = ((hi << 4) | lo) as u8;
    }
    Some(out)
}

/// Upper-case hex of 8 bytes.
pub(crate) fn hex_upper8(b: &[u8; 8]) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = [0u8; 16];
    for (i, x) in b.iter().enumerate() {
        out[i * 2] = HEX[usize::from(x >> 4)];
        out[i * 2 + 1] = HEX[usize::from(x & 0x0F)];
    }
    out
}
