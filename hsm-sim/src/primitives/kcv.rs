//! Key check values.
//!
//! TDES/DES: encrypt eight zero bytes under the key; show the first 3 (or 4, or all 8)
//! bytes. AES: CMAC of sixteen zero bytes (the method payment HSMs and AWS Payment
//! Cryptography use); the legacy AES-ECB of zeros is also given.

use super::cipher::{AesKey, DesKey};
use crate::Error;

/// The full 8-byte DES/TDES check value; callers show the first 3 or 4 bytes.
pub fn tdes(key: &[u8]) -> Result<[u8; 8], Error> {
    Ok(DesKey::new(key)?.encrypt([0u8; 8]))
}

/// AES check value: CMAC of 16 zero bytes (callers show the first 3 bytes).
pub fn aes_cmac(key: &[u8]) -> Result<[u8; 16], Error> {
    super::mac::aes_cmac(key, &[0u8; 16])
}

/// Legacy AES check value: AES-ECB of 16 zero bytes.
pub fn aes_ecb(key: &[u8]) -> Result<[u8; 16], Error> {
    Ok(AesKey::new(key)?.encrypt([0u8; 16]))
}
