//! The HSM: every operation takes sealed keys, checks their usage, and returns results that
//! never include a clear key or a clear PIN.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::Error;
use crate::audit::{AuditEvent, AuditLog};
use crate::key::{ClearKey, KeyAlgorithm, KeyUsage, SealedKey};
use crate::key_cache::{KeyCache, Opened};
use crate::limiter::FailureLimiter;
use crate::lmk::Lmk;
use crate::primitives::cipher::{AesKey, DesKey};
use crate::primitives::mac::{self, Padding};
use crate::primitives::pinblock::{self, ClearPin, PinFormat};
use crate::primitives::pvv::{CheckLength, Ibm3624};
use crate::primitives::sm4::{self, Sm4Key};
use crate::primitives::{cvv, pvv};

/// How an HSM is set up.
#[derive(Clone, Debug)]
pub struct HsmConfig {
    /// Accept the demo LMK (test data). Off by default; production refuses it.
    pub allow_test_keys: bool,
    /// PIN verification failures allowed per window before verification is refused.
    pub pin_failures_per_window: u32,
    /// The failure-counting window.
    pub pin_failure_window: Duration,
    /// Audit entries kept in memory.
    pub audit_capacity: usize,
    /// Where to append audit entries, if anywhere.
    pub audit_file: Option<PathBuf>,
    /// Working keys kept unsealed (with their DES schedules) between calls; 0 unseals every
    /// key at every call.
    pub key_cache: usize,
}

impl Default for HsmConfig {
    fn default() -> Self {
        Self {
            allow_test_keys: false,
            pin_failures_per_window: 1_000,
            pin_failure_window: Duration::from_secs(60),
            audit_capacity: 10_000,
            audit_file: None,
            key_cache: 16_384,
        }
    }
}

/// A PIN block as it travels, encrypted: 8 bytes (formats 0, 1, 3) or 16 (format 4).
/// `Debug` shows only its length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncryptedPinBlock {
    bytes: [u8; 16],
    len: u8,
}

impl EncryptedPinBlock {
    /// From 8 or 16 bytes.
    pub fn new(b: &[u8]) -> Result<Self, Error> {
        if b.len() != 8 && b.len() != 16 {
            return Err(Error::DataLength);
        }
        let mut bytes = [0u8; 16];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    /// The block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn block8(&self) -> Result<[u8; 8], Error> {
        self.as_bytes().try_into().map_err(|_| Error::DataLength)
    }

    fn block16(&self) -> Result<[u8; 16], Error> {
        self.as_bytes().try_into().map_err(|_| Error::DataLength)
    }
}

impl std::fmt::Debug for EncryptedPinBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedPinBlock([{} bytes])", self.len)
    }
}

/// MAC algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacAlgorithm {
    /// UnionPay POS "ECB" MAC: 8 ASCII hex characters (CUP field 64).
    UnionpayEcb,
    /// ANSI X9.9: CBC-MAC with a single-DES key, zero padding; 8 bytes (often shown as 4).
    X99,
    /// ANSI X9.19 / ISO 9797-1 algorithm 3 with a double-length key, zero padding.
    X919,
    /// ISO 9797-1 algorithm 1 with the key's cipher and padding method 2.
    Iso9797Alg1Pad2,
    /// AES-CMAC; 16 bytes.
    AesCmac,
    /// UnionPay POS MAC with an SM4 key: 8 ASCII hex characters (CUP field 64).
    UnionpaySm4,
    /// GB/T 15852.1 (ISO/IEC 9797-1) algorithm 1 with SM4, zero padding; 16 bytes (field 64
    /// takes the first 8). Between switches, with an SM4 ZAK.
    Sm4CbcMac,
}

/// A key-encrypting key's cipher.
enum Kek {
    Des(Box<DesKey>),
    Sm4(Box<Sm4Key>),
}

impl Kek {
    fn encrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            Self::Des(k) => k.encrypt_ecb(data),
            Self::Sm4(k) => k.encrypt_ecb(data),
        }
    }

    fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            Self::Des(k) => k.decrypt_ecb(data),
            Self::Sm4(k) => k.decrypt_ecb(data),
        }
    }
}

/// A MAC value: 8 bytes (DES family) or 16 (AES-CMAC).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MacValue {
    bytes: [u8; 16],
    len: u8,
}

impl MacValue {
    fn new(b: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..b.len()].copy_from_slice(b);
        Self {
            bytes,
            len: b.len() as u8,
        }
    }

    /// The MAC's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The first 8 bytes (the width of ISO 8583 field 64).
    pub fn field64(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.bytes[..8]);
        out
    }
}

/// A terminal's fresh working keys from sign-on: sealed for the switch, and wrapped under the
/// terminal's TMK with check values for the terminal (CUP field 62).
#[derive(Clone, Debug)]
pub struct TerminalKeys {
    /// The TPK sealed under the LMK.
    pub tpk: SealedKey,
    /// The TAK sealed under the LMK.
    pub tak: SealedKey,
    /// The TPK encrypted under the TMK (ECB).
    pub tpk_under_tmk: Vec<u8>,
    /// The TPK's check value (first 4 bytes of encrypting zeros).
    pub tpk_check: [u8; 4],
    /// The TAK encrypted under the TMK (ECB).
    pub tak_under_tmk: Vec<u8>,
    /// The TAK's check value.
    pub tak_check: [u8; 4],
}

/// The software HSM.
pub struct Hsm {
    lmk: Lmk,
    rng: SystemRandom,
    audit: AuditLog,
    limiter: FailureLimiter,
    keys: KeyCache,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("lmk", &self.lmk)
            .finish_non_exhaustive()
    }
}

fn usage_in(actual: KeyUsage, allowed: &[KeyUsage], expected: &'static str) -> Result<(), Error> {
    if allowed.contains(&actual) {
        Ok(())
    } else {
        Err(Error::WrongUsage { actual, expected })
    }
}

impl Hsm {
    /// An HSM under `lmk`. The demo LMK is refused unless `config.allow_test_keys`, and then
    /// logged as a warning.
    pub fn new(lmk: Lmk, config: &HsmConfig) -> Result<Self, Error> {
        if lmk.is_test() {
            if !config.allow_test_keys {
                return Err(Error::TestKeyRefused);
            }
            tracing::warn!(
                lmk_check = %hex::encode_upper(lmk.check_value()),
                "HSM is running on the DEMO LMK: test keys only, never for real cards"
            );
        }
        let audit = AuditLog::new(
            lmk.audit_key().clone(),
            config.audit_capacity,
            config.audit_file.as_deref(),
        )
        .map_err(|_| Error::Random)?;
        audit.record(AuditEvent::LmkLoaded, None, &lmk.check_value());
        Ok(Self {
            limiter: FailureLimiter::new(config.pin_failures_per_window, config.pin_failure_window),
            lmk,
            rng: SystemRandom::new(),
            audit,
            keys: KeyCache::new(config.key_cache),
        })
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The LMK's check value.
    pub fn lmk_check_value(&self) -> [u8; 3] {
        self.lmk.check_value()
    }

    /// Whether the HSM runs on the demo LMK.
    pub fn is_test(&self) -> bool {
        self.lmk.is_test()
    }

    fn open(
        &self,
        key: &SealedKey,
        allowed: &[KeyUsage],
        expected: &'static str,
    ) -> Result<Arc<Opened>, Error> {
        usage_in(key.usage()?, allowed, expected)?;
        let opened = self.keys.open(key, || self.lmk.unseal(key))?;
        usage_in(opened.usage(), allowed, expected)?;
        Ok(opened)
    }

    /// A key-encrypting key (TMK, ZMK): DES family or SM4.
    fn kek(
        &self,
        key: &SealedKey,
        allowed: &[KeyUsage],
        expected: &'static str,
    ) -> Result<Kek, Error> {
        let clear = self.open(key, allowed, expected)?;
        match clear.alg() {
            KeyAlgorithm::Sm4 => Ok(Kek::Sm4(Box::new(Sm4Key::new(clear.bytes())?))),
            a if a.is_des() => Ok(Kek::Des(Box::new(DesKey::new(clear.bytes())?))),
            _ => Err(Error::WrongAlgorithm),
        }
    }

    fn des(
        &self,
        key: &SealedKey,
        allowed: &[KeyUsage],
        expected: &'static str,
    ) -> Result<Arc<Opened>, Error> {
        let opened = self.open(key, allowed, expected)?;
        opened.des_key()?;
        Ok(opened)
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        self.rng.fill(&mut b).map_err(|_| Error::Random)?;
        Ok(b)
    }

    fn random_key(&self, alg: KeyAlgorithm) -> Result<ClearKey, Error> {
        let mut b = zeroize::Zeroizing::new([0u8; 32]);
        self.rng
            .fill(&mut b[..alg.len()])
            .map_err(|_| Error::Random)?;
        if alg.is_des() {
            for x in b.iter_mut() {
                // Odd parity: the low bit makes the count of ones in each byte odd.
                let high = *x & 0xFE;
                *x = high | u8::from(high.count_ones() % 2 == 0);
            }
        }
        ClearKey::new(alg, &b[..alg.len()])
    }

    /// A keyed digest (HMAC-SHA256 under a key derived from the LMK) of `data` in a named
    /// domain: a look-up token for a PAN, or a fingerprint of a message, that reveals
    /// nothing without the LMK. Equal inputs give equal digests on every HSM sharing the LMK.
    pub fn keyed_digest(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        self.keyed_digest_parts(domain, &[data])
    }

    /// [`Hsm::keyed_digest`] of the concatenation of `parts`, without making it.
    pub fn keyed_digest_parts(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = ring::hmac::Context::with_key(self.lmk.digest_key());
        ctx.update(&(domain.len() as u32).to_be_bytes());
        ctx.update(domain.as_bytes());
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Seals a record the caller must store but must not keep in clear (a queued reversal
    /// that holds a PAN): AES-256-GCM under an LMK-derived key, bound to `domain`.
    pub fn seal_record(&self, domain: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.lmk.seal_record(domain, data, &self.rng)
    }

    /// Opens a record sealed by [`Hsm::seal_record`]; a record from another LMK, another
    /// domain or altered in any bit is refused.
    pub fn open_record(
        &self,
        domain: &str,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        self.lmk.open_record(domain, sealed)
    }

    // ----- keys --------------------------------------------------------------------------

    /// Generates a random key for `usage`, sealed under the LMK.
    pub fn generate_key(&self, usage: KeyUsage, alg: KeyAlgorithm) -> Result<SealedKey, Error> {
        let clear = self.random_key(alg)?;
        let sealed = self.lmk.seal(usage, &clear, &self.rng)?;
        self.audit
            .record(AuditEvent::KeyGenerated, Some(usage), &sealed.kcv());
        Ok(sealed)
    }

    /// Imports a clear key (a key ceremony: components already combined), sealed under the
    /// LMK.
    pub fn import_clear_key(
        &self,
        usage: KeyUsage,
        alg: KeyAlgorithm,
        clear: &[u8],
    ) -> Result<SealedKey, Error> {
        let clear = ClearKey::new(alg, clear)?;
        let sealed = self.lmk.seal(usage, &clear, &self.rng)?;
        self.audit
            .record(AuditEvent::KeyImported, Some(usage), &sealed.kcv());
        Ok(sealed)
    }

    /// The key-encrypting-key usages allowed to wrap a key of `usage`.
    fn kek_for(usage: KeyUsage) -> (&'static [KeyUsage], &'static str) {
        match usage {
            KeyUsage::Tpk | KeyUsage::Tak | KeyUsage::Tmk => (&[KeyUsage::Tmk], "TMK"),
            _ => (&[KeyUsage::Zmk], "ZMK"),
        }
    }

    /// Imports a key of `usage` that arrives encrypted (ECB) under a TMK or ZMK; checks it
    /// against `expected_kcv` (a prefix of its check value) when given.
    pub fn import_key(
        &self,
        kek: &SealedKey,
        usage: KeyUsage,
        encrypted: &[u8],
        expected_kcv: Option<&[u8]>,
    ) -> Result<SealedKey, Error> {
        let (allowed, name) = Self::kek_for(usage);
        let kek = self.kek(kek, allowed, name)?;
        // An SM4 key-encrypting key wraps SM4 keys; a DES one, DES-family keys.
        let alg = match kek {
            Kek::Sm4(_) if encrypted.len() == 16 => KeyAlgorithm::Sm4,
            Kek::Sm4(_) => return Err(Error::KeyLength),
            Kek::Des(_) => KeyAlgorithm::des_for_len(encrypted.len())?,
        };
        let clear = zeroize::Zeroizing::new(kek.decrypt_ecb(encrypted)?);
        let clear = ClearKey::new(alg, &clear)?;
        if let Some(want) = expected_kcv {
            let have = clear.check_value()?;
            if want.is_empty()
                || want.len() > have.len()
                || !bool::from(have[..want.len()].ct_eq(want))
            {
                return Err(Error::SealedKeyRejected);
            }
        }
        let sealed = self.lmk.seal(usage, &clear, &self.rng)?;
        self.audit
            .record(AuditEvent::KeyImported, Some(usage), &sealed.kcv());
        Ok(sealed)
    }

    /// Exports a key encrypted (ECB) under a TMK (for TPK, TAK, TMK) or ZMK (other usages).
    pub fn export_key(&self, kek: &SealedKey, key: &SealedKey) -> Result<Vec<u8>, Error> {
        let usage = key.usage()?;
        let (allowed, name) = Self::kek_for(usage);
        let kek = self.kek(kek, allowed, name)?;
        let (_, clear) = self.lmk.unseal(key)?;
        let fits = match kek {
            Kek::Sm4(_) => clear.alg() == KeyAlgorithm::Sm4,
            Kek::Des(_) => clear.alg().is_des(),
        };
        if !fits {
            return Err(Error::WrongAlgorithm);
        }
        let out = kek.encrypt_ecb(clear.bytes())?;
        self.audit
            .record(AuditEvent::KeyExported, Some(usage), &key.kcv());
        Ok(out)
    }

    /// Fresh working keys for a terminal: a TPK of `tpk_alg` and a TAK of `tak_alg`, sealed
    /// for the switch and wrapped under the terminal's TMK with 4-byte check values.
    pub fn generate_terminal_keys(
        &self,
        tmk: &SealedKey,
        tpk_alg: KeyAlgorithm,
        tak_alg: KeyAlgorithm,
    ) -> Result<TerminalKeys, Error> {
        let tpk = self.generate_key(KeyUsage::Tpk, tpk_alg)?;
        let tak = self.generate_key(KeyUsage::Tak, tak_alg)?;
        let check4 = |k: &SealedKey| -> Result<[u8; 4], Error> {
            let v = self.check_value(k)?;
            Ok([v[0], v[1], v[2], v[3]])
        };
        Ok(TerminalKeys {
            tpk_under_tmk: self.export_key(tmk, &tpk)?,
            tpk_check: check4(&tpk)?,
            tak_under_tmk: self.export_key(tmk, &tak)?,
            tak_check: check4(&tak)?,
            tpk,
            tak,
        })
    }

    /// A key's full check value (8 bytes for DES family, 16 for AES), after verifying the
    /// sealed record.
    pub fn check_value(&self, key: &SealedKey) -> Result<Vec<u8>, Error> {
        let (_, clear) = self.lmk.unseal(key)?;
        clear.check_value()
    }

    // ----- PINs --------------------------------------------------------------------------

    fn decrypt_pin(
        &self,
        key: &SealedKey,
        block: &EncryptedPinBlock,
        format: PinFormat,
        pan: &str,
    ) -> Result<ClearPin, Error> {
        let clear = self.open(key, &[KeyUsage::Tpk, KeyUsage::Zpk], "TPK or ZPK")?;
        match format {
            PinFormat::Iso4 => {
                if !clear.alg().is_aes() {
                    return Err(Error::WrongAlgorithm);
                }
                pinblock::format4_decipher(&AesKey::new(clear.bytes())?, &block.block16()?, pan)
            }
            PinFormat::Sm4 => {
                if clear.alg() != KeyAlgorithm::Sm4 {
                    return Err(Error::WrongAlgorithm);
                }
                let mut b = Sm4Key::new(clear.bytes())?.decrypt(block.block16()?);
                let pin = sm4::pin_from_block(&b, pan);
                b.iter_mut().for_each(|x| *x = 0);
                pin
            }
            _ => {
                // A key of another algorithm has no DES schedule: refused.
                let mut b = clear.des_key()?.decrypt(block.block8()?);
                let pin = pinblock::parse(&b, format, pan);
                b.iter_mut().for_each(|x| *x = 0);
                pin
            }
        }
    }

    fn encrypt_pin_with(
        &self,
        clear: &Opened,
        pin: &ClearPin,
        pan: &str,
        format: PinFormat,
    ) -> Result<EncryptedPinBlock, Error> {
        match format {
            PinFormat::Iso4 => {
                if !clear.alg().is_aes() {
                    return Err(Error::WrongAlgorithm);
                }
                let field = pinblock::format4_pin_field(pin, &self.random()?);
                let b = pinblock::format4_encipher(&AesKey::new(clear.bytes())?, &field, pan)?;
                EncryptedPinBlock::new(&b)
            }
            PinFormat::Sm4 => {
                if clear.alg() != KeyAlgorithm::Sm4 {
                    return Err(Error::WrongAlgorithm);
                }
                let mut plain = sm4::pin_block(pin, pan)?;
                let b = Sm4Key::new(clear.bytes())?.encrypt(plain);
                plain.iter_mut().for_each(|x| *x = 0);
                EncryptedPinBlock::new(&b)
            }
            _ => {
                let k = clear.des_key()?;
                let plain = match format {
                    PinFormat::Iso0 => pinblock::format0(pin, pan)?,
                    PinFormat::Iso1 => pinblock::format1(pin, &self.random()?),
                    _ => pinblock::format3(pin, pan, &self.random()?)?,
                };
                EncryptedPinBlock::new(&k.encrypt(plain))
            }
        }
    }

    /// Encrypts a PIN under a TPK or ZPK in `format` (a PIN pad's job; used by issuer
    /// simulators and tests).
    pub fn encrypt_pin(
        &self,
        key: &SealedKey,
        pin: &ClearPin,
        pan: &str,
        format: PinFormat,
    ) -> Result<EncryptedPinBlock, Error> {
        let clear = self.open(key, &[KeyUsage::Tpk, KeyUsage::Zpk], "TPK or ZPK")?;
        self.encrypt_pin_with(&clear, pin, pan, format)
    }

    /// Translates a PIN block from a TPK or ZPK to a ZPK, changing format where asked. The
    /// clear PIN exists only inside this call.
    pub fn translate_pin(
        &self,
        from: &SealedKey,
        from_format: PinFormat,
        to: &SealedKey,
        to_format: PinFormat,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> Result<EncryptedPinBlock, Error> {
        let pin = self.decrypt_pin(from, block, from_format, pan)?;
        let to = self.open(to, &[KeyUsage::Zpk], "ZPK")?;
        self.encrypt_pin_with(&to, &pin, pan, to_format)
    }

    fn limited(&self, verify: impl FnOnce() -> Result<bool, Error>) -> Result<bool, Error> {
        if !self.limiter.allows() {
            return Err(Error::FailureLimit);
        }
        let ok = verify()?;
        if !ok {
            self.limiter.failed();
        }
        Ok(ok)
    }

    /// Generates a Visa PVV for a PIN (issuance: at card personalisation or PIN change).
    pub fn generate_pvv(
        &self,
        pvk: &SealedKey,
        pan: &str,
        pvki: u8,
        pin: &ClearPin,
    ) -> Result<String, Error> {
        let pvk = self.des(pvk, &[KeyUsage::Pvk], "PVK")?;
        let v = pvv::visa_pvv(pvk.des_key()?, pan, pvki, pin)?;
        Ok(v.iter().map(|d| char::from(*d)).collect())
    }

    /// Verifies an encrypted PIN block against a card's Visa PVV. `Ok(false)` is a wrong PIN;
    /// [`Error::FailureLimit`] means too many recent failures.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_pin_pvv(
        &self,
        pin_key: &SealedKey,
        block: &EncryptedPinBlock,
        format: PinFormat,
        pan: &str,
        pvk: &SealedKey,
        pvki: u8,
        pvv_value: &str,
    ) -> Result<bool, Error> {
        self.verify_pin_pvv_for(pin_key, block, format, pan, pvk, pvki, pvv_value, pan)
    }

    /// As [`Hsm::verify_pin_pvv`], for a PIN block formed with one number (`block_pan`, say
    /// a QR payment code) and a PVV kept for another (`pvv_account`, the wallet).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_pin_pvv_for(
        &self,
        pin_key: &SealedKey,
        block: &EncryptedPinBlock,
        format: PinFormat,
        block_pan: &str,
        pvk: &SealedKey,
        pvki: u8,
        pvv_value: &str,
        pvv_account: &str,
    ) -> Result<bool, Error> {
        self.limited(|| {
            let pin = self.decrypt_pin(pin_key, block, format, block_pan)?;
            let pvk = self.des(pvk, &[KeyUsage::Pvk], "PVK")?;
            let v = pvv::visa_pvv(pvk.des_key()?, pvv_account, pvki, &pin)?;
            Ok(pvv_value.len() == 4 && bool::from(v.ct_eq(pvv_value.as_bytes())))
        })
    }

    /// Generates an IBM 3624 offset for a PIN (issuance): as many digits as the PIN with
    /// [`CheckLength::WholePin`], else the check length.
    pub fn generate_ibm3624_offset(
        &self,
        pvk: &SealedKey,
        params: &Ibm3624,
        validation: &str,
        pin: &ClearPin,
    ) -> Result<String, Error> {
        let pvk = self.des(pvk, &[KeyUsage::Pvk], "PVK")?;
        let len = match params.check {
            CheckLength::WholePin => pin.len(),
            CheckLength::Digits(n) if usize::from(n) <= pin.len() => usize::from(n),
            CheckLength::Digits(_) => return Err(Error::DataLength),
        };
        let natural =
            pvv::ibm3624_natural(pvk.des_key()?, &params.decimalisation, validation, len)?;
        let off = pvv::ibm3624_offset(pin, &natural)?;
        Ok(off.iter().map(|d| char::from(*d)).collect())
    }

    /// Verifies an encrypted PIN block against an IBM 3624 offset. With
    /// [`CheckLength::WholePin`] a PIN of another length than the offset is wrong, so every
    /// digit the cardholder types counts. The PIN block is formed with `block_pan` (the PAN,
    /// or a QR payment code); `validation` is the issuer's validation data (16 hex digits).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_pin_ibm3624(
        &self,
        pin_key: &SealedKey,
        block: &EncryptedPinBlock,
        format: PinFormat,
        block_pan: &str,
        pvk: &SealedKey,
        params: &Ibm3624,
        validation: &str,
        offset: &str,
    ) -> Result<bool, Error> {
        let offset = pvv::offset_digits(offset).ok_or(Error::DataLength)?;
        self.limited(|| {
            let pin = self.decrypt_pin(pin_key, block, format, block_pan)?;
            let pvk = self.des(pvk, &[KeyUsage::Pvk], "PVK")?;
            let Some(len) = params.check_len(pin.len(), offset.len()) else {
                return Ok(false);
            };
            let natural =
                pvv::ibm3624_natural(pvk.des_key()?, &params.decimalisation, validation, len)?;
            let off = pvv::ibm3624_offset(&pin, &natural)?;
            Ok(bool::from(off.as_slice().ct_eq(offset.as_bytes())))
        })
    }

    // ----- MACs --------------------------------------------------------------------------

    /// Generates a MAC with a TAK or ZAK.
    pub fn generate_mac(
        &self,
        key: &SealedKey,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> Result<MacValue, Error> {
        let clear = self.open(key, &[KeyUsage::Tak, KeyUsage::Zak], "TAK or ZAK")?;
        Ok(match alg {
            MacAlgorithm::AesCmac => {
                if !clear.alg().is_aes() {
                    return Err(Error::WrongAlgorithm);
                }
                MacValue::new(&mac::aes_cmac(clear.bytes(), data)?)
            }
            MacAlgorithm::UnionpaySm4 => {
                if clear.alg() != KeyAlgorithm::Sm4 {
                    return Err(Error::WrongAlgorithm);
                }
                MacValue::new(&sm4::pos_mac(&Sm4Key::new(clear.bytes())?, data))
            }
            MacAlgorithm::Sm4CbcMac => {
                if clear.alg() != KeyAlgorithm::Sm4 {
                    return Err(Error::WrongAlgorithm);
                }
                MacValue::new(&sm4::cbc_mac(&Sm4Key::new(clear.bytes())?, data))
            }
            MacAlgorithm::X919 => {
                if !clear.alg().is_des() {
                    return Err(Error::WrongAlgorithm);
                }
                MacValue::new(&mac::retail_mac_scheduled(
                    clear.des_key()?,
                    data,
                    Padding::Zeros,
                )?)
            }
            other => {
                let k = clear.des_key()?;
                MacValue::new(&match other {
                    MacAlgorithm::UnionpayEcb => mac::unionpay_ecb(k, data),
                    MacAlgorithm::X99 => mac::cbc_mac(k, data, Padding::Zeros),
                    _ => mac::cbc_mac(k, data, Padding::Iso2),
                })
            }
        })
    }

    /// Verifies a MAC (all of it, or a prefix of at least 4 bytes) in constant time.
    pub fn verify_mac(
        &self,
        key: &SealedKey,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool, Error> {
        let want = self.generate_mac(key, alg, data)?;
        let want = want.as_bytes();
        Ok(mac.len() >= 4 && mac.len() <= want.len() && bool::from(want[..mac.len()].ct_eq(mac)))
    }

    // ----- CVV ---------------------------------------------------------------------------

    fn cvk(&self, cvk: &SealedKey) -> Result<Arc<Opened>, Error> {
        let clear = self.open(cvk, &[KeyUsage::Cvk], "CVK")?;
        if clear.alg() != KeyAlgorithm::Tdes2 {
            return Err(Error::WrongAlgorithm);
        }
        Ok(clear)
    }

    /// Generates a CVV (service code `000` for CVV2, `999` for iCVV).
    pub fn generate_cvv(
        &self,
        cvk: &SealedKey,
        pan: &str,
        expiry: &str,
        service: &str,
    ) -> Result<String, Error> {
        let v = cvv::cvv(self.cvk(cvk)?.bytes(), pan, expiry, service)?;
        Ok(v.iter().map(|d| char::from(*d)).collect())
    }

    /// Verifies a CVV in constant time.
    pub fn verify_cvv(
        &self,
        cvk: &SealedKey,
        pan: &str,
        expiry: &str,
        service: &str,
        value: &str,
    ) -> Result<bool, Error> {
        let v = cvv::cvv(self.cvk(cvk)?.bytes(), pan, expiry, service)?;
        Ok(value.len() == 3 && bool::from(v.ct_eq(value.as_bytes())))
    }
}

/// The check value of a clear key, its first `n` bytes: for key ceremonies, where the clear
/// value is typed in.
pub fn clear_key_check_value(alg: KeyAlgorithm, key: &[u8], n: usize) -> Result<Vec<u8>, Error> {
    let full = ClearKey::new(alg, key)?.check_value()?;
    Ok(full[..n.min(full.len())].to_vec())
}
