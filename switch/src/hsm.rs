//! The HSM as the pipeline calls it: every cryptographic operation timed into
//! `switch_hsm_duration_seconds{op}`, under one name per operation.
//!
//! ```text
//!  step ─▶ MeteredHsm::verify_mac ─▶ hsm_sim::Hsm::verify_mac   (op="mac_verify")
//! ```

use std::sync::Arc;
use std::time::Instant;

use hsm_sim::{
    EncryptedPinBlock, Error, Hsm, Ibm3624, KeyAlgorithm, MacAlgorithm, PinFormat, SealedKey,
    TerminalKeys,
};

use crate::metrics::Metrics;

/// What an HSM error says, as `switch_hsm_errors_total{kind}` labels it: `input` (a PIN
/// block, PIN, PAN or length the request brought), `key` (a key refused: tampered, another
/// LMK, wrong usage or algorithm), `limit` (the PIN failure limit), `other`.
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::BadPinBlock | Error::BadPin | Error::BadPan | Error::DataLength => "input",
        Error::SealedKeyRejected
        | Error::WrongUsage { .. }
        | Error::WrongAlgorithm
        | Error::KeyLength
        | Error::TestKeyRefused => "key",
        Error::FailureLimit => "limit",
        _ => "other",
    }
}

/// The HSM, timed.
pub struct MeteredHsm {
    hsm: Arc<Hsm>,
    metrics: Arc<Metrics>,
}

impl MeteredHsm {
    /// `hsm`, timed into `metrics`.
    pub fn new(hsm: Arc<Hsm>, metrics: Arc<Metrics>) -> Self {
        Self { hsm, metrics }
    }

    /// The HSM itself, for what is not timed (keyed digests, sealing).
    pub fn inner(&self) -> &Arc<Hsm> {
        &self.hsm
    }

    fn timed<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Hsm) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let t = Instant::now();
        let r = f(&self.hsm);
        self.metrics.hsm(op, t.elapsed());
        if let Err(e) = &r {
            self.metrics.hsm_error(op, error_kind(e));
        }
        r
    }

    /// Verifies a terminal's MAC (op `mac_verify`).
    pub fn verify_mac(
        &self,
        tak: &SealedKey,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool, Error> {
        self.timed("mac_verify", |h| h.verify_mac(tak, alg, data, mac))
    }

    /// A reply's MAC (op `mac_generate`).
    pub fn generate_mac(
        &self,
        tak: &SealedKey,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> Result<[u8; 8], Error> {
        self.timed("mac_generate", |h| {
            h.generate_mac(tak, alg, data).map(|m| m.field64())
        })
    }

    /// A sign-on's working keys under the TMK (op `terminal_keys`).
    pub fn terminal_keys(&self, tmk: &SealedKey) -> Result<TerminalKeys, Error> {
        self.timed("terminal_keys", |h| {
            h.generate_terminal_keys(tmk, KeyAlgorithm::Tdes2, KeyAlgorithm::Des)
        })
    }

    /// IBM 3624 verification of a PIN block (op `pin_verify`).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_pin_ibm3624(
        &self,
        tpk: &SealedKey,
        block: &EncryptedPinBlock,
        block_pan: &str,
        pvk: &SealedKey,
        params: &Ibm3624,
        validation: &str,
        offset: &str,
    ) -> Result<bool, Error> {
        self.timed("pin_verify", |h| {
            h.verify_pin_ibm3624(
                tpk,
                block,
                PinFormat::Iso0,
                block_pan,
                pvk,
                params,
                validation,
                offset,
            )
        })
    }

    /// Visa PVV verification of a PIN block (op `pin_verify`).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_pin_pvv(
        &self,
        tpk: &SealedKey,
        block: &EncryptedPinBlock,
        block_pan: &str,
        pvk: &SealedKey,
        pvki: u8,
        pvv: &str,
        pvv_account: &str,
    ) -> Result<bool, Error> {
        self.timed("pin_verify", |h| {
            h.verify_pin_pvv_for(
                tpk,
                block,
                PinFormat::Iso0,
                block_pan,
                pvk,
                pvki,
                pvv,
                pvv_account,
            )
        })
    }

    /// Translates a PIN block from the TPK to an issuer's ZPK (op `pin_translate`).
    pub fn translate_pin(
        &self,
        tpk: &SealedKey,
        zpk: &SealedKey,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> Result<EncryptedPinBlock, Error> {
        self.timed("pin_translate", |h| {
            h.translate_pin(tpk, PinFormat::Iso0, zpk, PinFormat::Iso0, block, pan)
        })
    }

    /// The HSM's keyed digest (PAN hashes, request fingerprints, auth codes).
    pub fn digest(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        self.hsm.keyed_digest(domain, data)
    }
}
