//! Message authentication codes.
//!
//! ```text
//! UnionPay POS "ECB" MAC (CUP field 64)
//!   MAB = MTI .. field 63, zero-padded to 8-byte blocks
//!   X   = B1 ^ B2 ^ ... ^ Bn                       (8 bytes)
//!   H   = upper-case hex of X                      (16 ASCII bytes: H1 | H2)
//!   T   = E_K(H1) ^ H2 ;  R = E_K(T)
//!   MAC = first 8 characters of upper-case hex of R (8 ASCII bytes)
//!
//! ISO 9797-1 algorithm 1 (X9.9 with a single-DES key): CBC-MAC, last block
//! ISO 9797-1 algorithm 3 (X9.19 retail MAC): single-DES CBC with K, last block E_K(D_K'(.))
//! ```

use cmac::{Cmac, KeyInit, Mac};

use super::cipher::{DesKey, xor8};
use super::hex_upper8;
use crate::Error;

/// Padding for the ISO 9797-1 CBC MACs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Method 1: zero bytes up to a block boundary (none if already aligned; one zero block
    /// for empty data).
    Zeros,
    /// Method 2: one `0x80` byte, then zeros up to a block boundary.
    Iso2,
}

/// Iterates 8-byte blocks of `data` padded by `padding`.
fn blocks(data: &[u8], padding: Padding) -> impl Iterator<Item = [u8; 8]> + '_ {
    let full = data.len() / 8;
    let rest = &data[full * 8..];
    let tail: Option<[u8; 8]> = match padding {
        Padding::Zeros if rest.is_empty() && !data.is_empty() => None,
        Padding::Zeros => {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            Some(b)
        }
        Padding::Iso2 => {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            b[rest.len()] = 0x80;
            Some(b)
        }
    };
    data.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            b
        })
        .chain(tail)
}

/// XOR of all 8-byte blocks of `data`, the last one zero-padded (the UnionPay MAB fold).
pub fn xor_fold(data: &[u8]) -> [u8; 8] {
    blocks(data, Padding::Zeros).fold([0u8; 8], xor8)
}

/// UnionPay POS "ECB" MAC: 8 ASCII hex characters (the bytes of CUP field 64). With a
/// double-length key both encryptions are TDES.
pub fn unionpay_ecb(key: &DesKey, data: &[u8]) -> [u8; 8] {
    let h = hex_upper8(&xor_fold(data));
    let mut h1 = [0u8; 8];
    let mut h2 = [0u8; 8];
    h1.copy_from_slice(&h[..8]);
    h2.copy_from_slice(&h[8..]);
    let r = key.encrypt(xor8(key.encrypt(h1), h2));
    let hex = hex_upper8(&r);
    let mut mac = [0u8; 8];
    mac.copy_from_slice(&hex[..8]);
    mac
}

/// ISO 9797-1 MAC algorithm 1: CBC-MAC with the key's cipher (ANSI X9.9 when the key is
/// single DES). Returns the whole last block; callers truncate (X9.9 shows 4 bytes).
pub fn cbc_mac(key: &DesKey, data: &[u8], padding: Padding) -> [u8; 8] {
    blocks(data, padding).fold([0u8; 8], |acc, b| key.encrypt(xor8(acc, b)))
}

/// ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC) with a 16-byte key K | K': single-DES
/// CBC under K, then the last block decrypted under K' and encrypted under K.
pub fn retail_mac(key: &[u8], data: &[u8], padding: Padding) -> Result<[u8; 8], Error> {
    if key.len() != 16 {
        return Err(Error::KeyLength);
    }
    retail_mac_scheduled(&DesKey::new(key)?, data, padding)
}

/// [`retail_mac`] with the key's schedule made already (a double-length key's, as the
/// HSM keeps it for a working key): no key schedule per MAC.
pub fn retail_mac_scheduled(key: &DesKey, data: &[u8], padding: Padding) -> Result<[u8; 8], Error> {
    let DesKey::Double(k, k2) = key else {
        return Err(Error::KeyLength);
    };
    let last = blocks(data, padding).fold([0u8; 8], |acc, b| k.encrypt(xor8(acc, b)));
    Ok(k.encrypt(k2.decrypt(last)))
}

/// AES-CMAC (NIST SP 800-38B, RFC 4493) with a 16-, 24- or 32-byte key.
pub fn aes_cmac(key: &[u8], data: &[u8]) -> Result<[u8; 16], Error> {
    let bad = |_| Error::KeyLength;
    let tag: [u8; 16] = match key.len() {
        16 => {
            let mut m = <Cmac<aes::Aes128> as KeyInit>::new_from_slice(key).map_err(bad)?;
            m.update(data);
            m.finalize().into_bytes().into()
        }
        24 => {
            let mut m = <Cmac<aes::Aes192> as KeyInit>::new_from_slice(key).map_err(bad)?;
            m.update(data);
            m.finalize().into_bytes().into()
        }
        32 => {
            let mut m = <Cmac<aes::Aes256> as KeyInit>::new_from_slice(key).map_err(bad)?;
            m.update(data);
            m.finalize().into_bytes().into()
        }
        _ => return Err(Error::KeyLength),
    };
    Ok(tag)
}
