//! The local master key: seals every stored key with AES-256-GCM.
//!
//! Sub-keys are derived from the 32-byte LMK with HMAC-SHA256 under fixed labels: one seals
//! keys, one chains the audit log, one gives the LMK's own check value.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::Error;
use crate::key::{
    ClearKey, KeyUsage, NONCE_LEN, SEALED_HEADER, SEALED_MAGIC, SEALED_VERSION, SealedKey, TAG_LEN,
};

/// The demo LMK, **test data**: a fixed, published value so the demo configuration works out
/// of the box. An HSM refuses it unless test keys are explicitly allowed.
pub const TEST_LMK_HEX: &str = "0123456789ABCDEFFEDCBA9876543210000102030405060708090A0B0C0D0E0F";

/// A loaded LMK.
pub struct Lmk {
    seal: LessSafeKey,
    records: LessSafeKey,
    audit: hmac::Key,
    digest: hmac::Key,
    check: [u8; 3],
    test: bool,
}

impl Lmk {
    /// An LMK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != 32 {
            return Err(Error::KeyLength);
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| Zeroizing::new(hmac::sign(&root, label).as_ref().to_vec());
        let seal_key = derive(b"lmk/seal/aes-256-gcm");
        let seal = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &seal_key).map_err(|_| Error::KeyLength)?,
        );
        let records_key = derive(b"lmk/records/aes-256-gcm");
        let records = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &records_key).map_err(|_| Error::KeyLength)?,
        );
        let audit = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"lmk/audit/hmac-sha256"));
        let digest = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"lmk/keyed-digest/hmac-sha256"));
        let c = derive(b"lmk/check-value");
        let test = hex::decode(TEST_LMK_HEX).is_ok_and(|t| t == bytes);
        Ok(Self {
            seal,
            records,
            audit,
            digest,
            check: [c[0], c[1], c[2]],
            test,
        })
    }

    /// An LMK from 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(hex::decode(s.trim()).map_err(|_| Error::KeyLength)?);
        Self::from_bytes(&bytes)
    }

    /// The demo LMK ([`TEST_LMK_HEX`]), test data.
    pub fn test() -> Self {
        match Self::from_hex(TEST_LMK_HEX) {
            Ok(l) => l,
            // The constant is 64 valid hex characters; a unit test loads it.
            Err(_) => unreachable!("TEST_LMK_HEX is a valid 32-byte key"),
        }
    }

    /// A fresh random LMK and its bytes (to be written to the LMK file by a ceremony).
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), Error> {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Random)?;
        Ok((Self::from_bytes(&bytes)?, bytes))
    }

    /// Whether this is the demo LMK.
    pub fn is_test(&self) -> bool {
        self.test
    }

    /// The LMK's check value (3 bytes), to confirm which LMK is loaded without revealing it.
    pub fn check_value(&self) -> [u8; 3] {
        self.check
    }

    pub(crate) fn digest_key(&self) -> &hmac::Key {
        &self.digest
    }

    pub(crate) fn audit_key(&self) -> &hmac::Key {
        &self.audit
    }

    /// Seals a clear key with its usage.
    pub(crate) fn seal(
        &self,
        usage: KeyUsage,
        key: &ClearKey,
        rng: &SystemRandom,
    ) -> Result<SealedKey, Error> {
        let kcv = key.check_value()?;
        let header = [
            SEALED_MAGIC,
            SEALED_VERSION,
            usage.code(),
            key.alg().code(),
            kcv[0],
            kcv[1],
            kcv[2],
        ];
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| Error::Random)?;
        let mut out = Vec::with_capacity(SEALED_HEADER + NONCE_LEN + key.bytes().len() + TAG_LEN);
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        let mut body = key.bytes().to_vec();
        let tag = self
            .seal
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut body,
            )
            .map_err(|_| Error::SealedKeyRejected)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        body.iter_mut().for_each(|b| *b = 0);
        Ok(SealedKey::from_vec(out))
    }

    /// Seals a record (a message a switch must keep, say a queued reversal holding a PAN)
    /// under a separate LMK-derived key, bound to `domain`: nonce (12) | ciphertext | tag.
    pub(crate) fn seal_record(
        &self,
        domain: &str,
        data: &[u8],
        rng: &SystemRandom,
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| Error::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data);
        let tag = self
            .records
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(domain.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| Error::SealedKeyRejected)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a record sealed by [`Lmk::seal_record`] in the same `domain`.
    pub(crate) fn open_record(
        &self,
        domain: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::SealedKeyRejected);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[..NONCE_LEN]);
        let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
        let n = self
            .records
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(domain.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::SealedKeyRejected)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Opens a sealed key: checks its authenticity and returns its usage and clear value.
    pub(crate) fn unseal(&self, sealed: &SealedKey) -> Result<(KeyUsage, ClearKey), Error> {
        let b = sealed.as_bytes();
        let usage = sealed.usage()?;
        let alg = sealed.algorithm()?;
        let len = alg.len();
        if b.len() != SEALED_HEADER + NONCE_LEN + len + TAG_LEN {
            return Err(Error::SealedKeyRejected);
        }
        let mut header = [0u8; SEALED_HEADER];
        header.copy_from_slice(&b[..SEALED_HEADER]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[SEALED_HEADER..SEALED_HEADER + NONCE_LEN]);
        let mut buf = Zeroizing::new([0u8; 32 + TAG_LEN]);
        let ct = &b[SEALED_HEADER + NONCE_LEN..];
        buf[..ct.len()].copy_from_slice(ct);
        let clear = self
            .seal
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut buf[..ct.len()],
            )
            .map_err(|_| Error::SealedKeyRejected)?;
        Ok((usage, ClearKey::new(alg, clear)?))
    }
}

impl std::fmt::Debug for Lmk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lmk(check {}, test: {})",
            hex::encode_upper(self.check),
            self.test
        )
    }
}
