//! Block ciphers keyed by length: 8 bytes DES, 16 bytes 2-key TDES (K1 K2 K1), 24 bytes
//! 3-key TDES; 16/24/32 bytes AES. Key schedules zeroize on drop.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};

use super::dea::{Dea, Way, triple};
use crate::Error;

/// A DES-family key schedule (by tables: [`super::dea`]).
pub enum DesKey {
    /// Single DES (8-byte key).
    Single(Dea),
    /// Two-key TDES, EDE with K1 K2 K1 (16-byte key).
    Double(Dea, Dea),
    /// Three-key TDES, EDE (24-byte key).
    Triple(Dea, Dea, Dea),
}

impl DesKey {
    /// Schedules a key of 8, 16 or 24 bytes.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        let part = |i: usize| -> Result<Dea, Error> {
            let k: [u8; 8] = key
                .get(8 * i..8 * i + 8)
                .and_then(|k| k.try_into().ok())
                .ok_or(Error::KeyLength)?;
            Ok(Dea::new(k))
        };
        Ok(match key.len() {
            8 => Self::Single(part(0)?),
            16 => Self::Double(part(0)?, part(1)?),
            24 => Self::Triple(part(0)?, part(1)?, part(2)?),
            _ => return Err(Error::KeyLength),
        })
    }

    /// Encrypts one block (TDES: encrypt, decrypt, encrypt).
    #[inline]
    pub fn encrypt(&self, block: [u8; 8]) -> [u8; 8] {
        match self {
            Self::Single(k) => k.encrypt(block),
            Self::Double(k1, k2) => triple(
                [(k1, Way::Encrypt), (k2, Way::Decrypt), (k1, Way::Encrypt)],
                block,
            ),
            Self::Triple(k1, k2, k3) => triple(
                [(k1, Way::Encrypt), (k2, Way::Decrypt), (k3, Way::Encrypt)],
                block,
            ),
        }
    }

    /// Decrypts one block.
    #[inline]
    pub fn decrypt(&self, block: [u8; 8]) -> [u8; 8] {
        match self {
            Self::Single(k) => k.decrypt(block),
            Self::Double(k1, k2) => triple(
                [(k1, Way::Decrypt), (k2, Way::Encrypt), (k1, Way::Decrypt)],
                block,
            ),
            Self::Triple(k1, k2, k3) => triple(
                [(k3, Way::Decrypt), (k2, Way::Encrypt), (k1, Way::Decrypt)],
                block,
            ),
        }
    }

    /// Encrypts whole blocks in ECB mode (`data.len()` a multiple of 8).
    pub fn encrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.ecb(data, |b| self.encrypt(b))
    }

    /// Decrypts whole blocks in ECB mode (`data.len()` a multiple of 8).
    pub fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.ecb(data, |b| self.decrypt(b))
    }

    fn ecb(&self, data: &[u8], f: impl Fn([u8; 8]) -> [u8; 8]) -> Result<Vec<u8>, Error> {
        if data.is_empty() || !data.len().is_multiple_of(8) {
            return Err(Error::DataLength);
        }
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            out.extend_from_slice(&f(b));
        }
        Ok(out)
    }
}

impl std::fmt::Debug for DesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(..) => "DesKey::Single(..)",
            Self::Double(..) => "DesKey::Double(..)",
            Self::Triple(..) => "DesKey::Triple(..)",
        })
    }
}

/// An AES key schedule.
pub enum AesKey {
    /// AES-128.
    A128(Aes128),
    /// AES-192.
    A192(Aes192),
    /// AES-256.
    A256(Aes256),
}

impl AesKey {
    /// Schedules a key of 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        let bad = |_| Error::KeyLength;
        Ok(match key.len() {
            16 => Self::A128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => Self::A192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => Self::A256(Aes256::new_from_slice(key).map_err(bad)?),
            _ => return Err(Error::KeyLength),
        })
    }

    /// Encrypts one block.
    pub fn encrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        match self {
            Self::A128(c) => c.encrypt_block(&mut b),
            Self::A192(c) => c.encrypt_block(&mut b),
            Self::A256(c) => c.encrypt_block(&mut b),
        }
        b.into()
    }

    /// Decrypts one block.
    pub fn decrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        match self {
            Self::A128(c) => c.decrypt_block(&mut b),
            Self::A192(c) => c.decrypt_block(&mut b),
            Self::A256(c) => c.decrypt_block(&mut b),
        }
        b.into()
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(..)")
    }
}

/// XOR of two 8-byte blocks.
#[inline]
pub fn xor8(a: [u8; 8], b: [u8; 8]) -> [u8; 8] {
    (u64::from_be_bytes(a) ^ u64::from_be_bytes(b)).to_be_bytes()
}

/// XOR of two 16-byte blocks.
#[inline]
pub fn xor16(a: [u8; 16], b: [u8; 16]) -> [u8; 16] {
    (u128::from_be_bytes(a) ^ u128::from_be_bytes(b)).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use des::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

    /// Two- and three-key TDES (one IP and one FP a block) against the RustCrypto `des`
    /// crate's EDE, on a deterministic walk of keys and blocks.
    #[test]
    fn triple_des_agrees_with_the_rustcrypto_des_crate() {
        let mut seed = [0x5Au8; 24];
        let mut block = [0x87u8; 8];
        for i in 0..2_000 {
            let (ours, theirs_enc, theirs_dec): (DesKey, [u8; 8], [u8; 8]) = if i % 2 == 0 {
                let c = des::TdesEde2::new_from_slice(&seed[..16]).unwrap();
                let (mut e, mut d) = (block.into(), block.into());
                c.encrypt_block(&mut e);
                c.decrypt_block(&mut d);
                (DesKey::new(&seed[..16]).unwrap(), e.into(), d.into())
            } else {
                let c = des::TdesEde3::new_from_slice(&seed).unwrap();
                let (mut e, mut d) = (block.into(), block.into());
                c.encrypt_block(&mut e);
                c.decrypt_block(&mut d);
                (DesKey::new(&seed).unwrap(), e.into(), d.into())
            };
            assert_eq!(
                ours.encrypt(block),
                theirs_enc,
                "key {seed:02X?} block {block:02X?}"
            );
            assert_eq!(
                ours.decrypt(block),
                theirs_dec,
                "key {seed:02X?} block {block:02X?}"
            );
            assert_eq!(ours.decrypt(ours.encrypt(block)), block);
            // The next key and block from this one's outputs.
            seed.rotate_left(8);
            seed[16..].copy_from_slice(&theirs_enc);
            block = theirs_dec;
        }
    }
}
