//! The HSM as the pipeline calls it: one [`PaymentHsm`] interface with two implementations,
//! the in-process software HSM ([`local`]) and a network HSM speaking the payShield host
//! protocol ([`remote`]), every call timed into `switch_hsm_duration_seconds{op}`.
//!
//! ```text
//!  step ─▶ MeteredHsm::verify_mac ─┬─▶ Local:  hsm_sim::Hsm::verify_mac        (in process)
//!          (op="mac_verify")       └─▶ Remote: M8 ─▶ payShield ─▶ M9 00/01      (TCP pool)
//! ```
//!
//! Keyed digests (PAN look-up tokens, request fingerprints) and the sealing of queued
//! records stay with the in-process HSM in both cases: they protect the switch's own data
//! and need no payment key.

pub mod key;
pub mod local;
pub mod remote;

use std::sync::Arc;
use std::time::Instant;

use hsm_sim::{EncryptedPinBlock, Hsm, Ibm3624, MacAlgorithm};

pub use key::{KeyRef, LmkKey, LmkKeyType};
pub use local::LocalHsm;
pub use remote::RemoteHsm;

use crate::metrics::Metrics;

/// Why an HSM call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HsmError {
    /// The in-process HSM refused.
    #[error("{0}")]
    Local(hsm_sim::Error),
    /// The network HSM answered with an error code.
    #[error("HSM error code {0}")]
    Refused(String),
    /// No network HSM answered in time.
    #[error("no HSM answered in time")]
    Unavailable,
    /// The key is not one this HSM can use (a sealed key for a network HSM, or the
    /// reverse), or the operation has no command there.
    #[error("key or operation not supported by this HSM")]
    Unsupported,
    /// The network HSM answered something that is not a payShield response.
    #[error("malformed HSM response")]
    Malformed,
}

impl From<hsm_sim::Error> for HsmError {
    fn from(e: hsm_sim::Error) -> Self {
        Self::Local(e)
    }
}

impl HsmError {
    /// What the error says, as `switch_hsm_errors_total{kind}` labels it: `input` (a PIN
    /// block, PIN, PAN or length the request brought), `key` (a key refused), `limit` (the
    /// PIN failure limit), `unavailable` (no network HSM answered), `other`.
    pub fn kind(&self) -> &'static str {
        use hsm_sim::Error as E;
        match self {
            Self::Local(E::BadPinBlock | E::BadPin | E::BadPan | E::DataLength) => "input",
            Self::Local(
                E::SealedKeyRejected
                | E::WrongUsage { .. }
                | E::WrongAlgorithm
                | E::KeyLength
                | E::TestKeyRefused,
            ) => "key",
            Self::Local(E::FailureLimit) => "limit",
            Self::Refused(code) => match code.as_str() {
                "15" | "20" | "23" | "24" | "80" => "input",
                "04" | "05" | "10" | "11" | "26" | "27" => "key",
                _ => "other",
            },
            Self::Unavailable => "unavailable",
            Self::Unsupported => "key",
            _ => "other",
        }
    }

    /// Whether the PIN block itself was unreadable (counted as a wrong PIN).
    pub fn is_bad_pin_block(&self) -> bool {
        matches!(self, Self::Local(hsm_sim::Error::BadPinBlock))
    }

    /// Whether the PIN failure limit refused the verification.
    pub fn is_failure_limit(&self) -> bool {
        matches!(self, Self::Local(hsm_sim::Error::FailureLimit))
    }
}

/// A sign-on's working keys: handles for the switch, cryptograms under the TMK and check
/// values for the terminal.
#[derive(Clone, Debug)]
pub struct WorkingKeys {
    /// The TPK.
    pub tpk: KeyRef,
    /// The TAK.
    pub tak: KeyRef,
    /// The TPK under the TMK (ECB).
    pub tpk_under_tmk: Vec<u8>,
    /// First 4 bytes of the TPK encrypting zeros.
    pub tpk_check: [u8; 4],
    /// The TAK under the TMK (ECB).
    pub tak_under_tmk: Vec<u8>,
    /// First 4 bytes of the TAK encrypting zeros.
    pub tak_check: [u8; 4],
}

/// What a PIN is checked against.
#[derive(Clone, Copy, Debug)]
pub enum PinReference<'a> {
    /// IBM 3624: parameters, validation data (16 characters), offset.
    Ibm3624 {
        /// Decimalisation table and check length.
        params: &'a Ibm3624,
        /// Validation data, 16 hex characters.
        validation: &'a str,
        /// The offset (digits, possibly `F`-padded).
        offset: &'a str,
    },
    /// Visa PVV of `account` (a PAN) under key index `pvki`.
    VisaPvv {
        /// PVK index.
        pvki: u8,
        /// The PVV, 4 digits.
        pvv: &'a str,
        /// The PAN the PVV was made for.
        account: &'a str,
    },
}

/// A PIN verification: the block under the TPK, the PAN it was formed with, the PVK.
#[derive(Clone, Copy, Debug)]
pub struct PinVerify<'a> {
    /// The terminal's PIN key.
    pub tpk: &'a KeyRef,
    /// Field 52 (ISO 9564 format 0).
    pub block: &'a EncryptedPinBlock,
    /// The PAN the block was formed with.
    pub block_pan: &'a str,
    /// The PIN verification key.
    pub pvk: &'a KeyRef,
    /// The reference value.
    pub reference: PinReference<'a>,
}

/// What a payment HSM does for the switch. Implemented by the in-process HSM and by the
/// network (payShield) HSM; [`MeteredHsm`] times whichever is configured.
pub trait PaymentHsm: Send + Sync {
    /// A MAC over `data` (8 bytes: field 64).
    fn generate_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> impl Future<Output = Result<[u8; 8], HsmError>> + Send;

    /// Whether `mac` (all 8 bytes, or a prefix of at least 4) is the MAC of `data`.
    fn verify_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> impl Future<Output = Result<bool, HsmError>> + Send;

    /// A terminal's new TPK (double length) and TAK (single length) under its TMK.
    fn working_keys(
        &self,
        tmk: &KeyRef,
    ) -> impl Future<Output = Result<WorkingKeys, HsmError>> + Send;

    /// Whether the PIN in a block is right.
    fn verify_pin(&self, v: PinVerify<'_>) -> impl Future<Output = Result<bool, HsmError>> + Send;

    /// A PIN block from a TPK to a ZPK (format 0 both sides).
    fn translate_pin(
        &self,
        tpk: &KeyRef,
        zpk: &KeyRef,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> impl Future<Output = Result<EncryptedPinBlock, HsmError>> + Send;

    /// A key's check value (8 bytes of encrypting zeros; callers show 3 or 4).
    fn check_value(&self, key: &KeyRef) -> impl Future<Output = Result<Vec<u8>, HsmError>> + Send;
}

/// The configured HSM.
#[derive(Clone)]
pub enum Backend {
    /// In process.
    Local(LocalHsm),
    /// Across the network.
    Remote(Arc<RemoteHsm>),
}

/// The HSM, timed.
pub struct MeteredHsm {
    local: Arc<Hsm>,
    backend: Backend,
    metrics: Arc<Metrics>,
}

macro_rules! dispatch {
    ($self:ident, $h:ident => $call:expr) => {
        match &$self.backend {
            Backend::Local($h) => $call.await,
            Backend::Remote($h) => $call.await,
        }
    };
}

impl MeteredHsm {
    /// The in-process `hsm` for everything, timed into `metrics`.
    pub fn new(hsm: Arc<Hsm>, metrics: Arc<Metrics>) -> Self {
        Self {
            backend: Backend::Local(LocalHsm::new(Arc::clone(&hsm))),
            local: hsm,
            metrics,
        }
    }

    /// Payment keys on `remote`, the switch's own data under `local`.
    pub fn with_remote(local: Arc<Hsm>, remote: Arc<RemoteHsm>, metrics: Arc<Metrics>) -> Self {
        Self {
            backend: Backend::Remote(remote),
            local,
            metrics,
        }
    }

    /// The in-process HSM (keyed digests, sealing of queued records).
    pub fn inner(&self) -> &Arc<Hsm> {
        &self.local
    }

    /// The network HSM, when one is configured.
    pub fn remote(&self) -> Option<&Arc<RemoteHsm>> {
        match &self.backend {
            Backend::Remote(r) => Some(r),
            Backend::Local(_) => None,
        }
    }

    fn observe<T>(
        &self,
        op: &'static str,
        t: Instant,
        r: Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        self.metrics.hsm(op, t.elapsed());
        if let Err(e) = &r {
            self.metrics.hsm_error(op, e.kind());
        }
        r
    }

    /// Verifies a MAC (op `mac_verify`).
    pub async fn verify_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool, HsmError> {
        let t = Instant::now();
        let r = dispatch!(self, h => h.verify_mac(key, alg, data, mac));
        self.observe("mac_verify", t, r)
    }

    /// A MAC (op `mac_generate`).
    pub async fn generate_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> Result<[u8; 8], HsmError> {
        let t = Instant::now();
        let r = dispatch!(self, h => h.generate_mac(key, alg, data));
        self.observe("mac_generate", t, r)
    }

    /// A sign-on's working keys under the TMK (op `terminal_keys`).
    pub async fn terminal_keys(&self, tmk: &KeyRef) -> Result<WorkingKeys, HsmError> {
        let t = Instant::now();
        let r = dispatch!(self, h => h.working_keys(tmk));
        self.observe("terminal_keys", t, r)
    }

    /// Verifies a PIN (op `pin_verify`).
    pub async fn verify_pin(&self, v: PinVerify<'_>) -> Result<bool, HsmError> {
        let t = Instant::now();
        let r = dispatch!(self, h => h.verify_pin(v));
        self.observe("pin_verify", t, r)
    }

    /// Translates a PIN block from the TPK to an issuer's ZPK (op `pin_translate`).
    pub async fn translate_pin(
        &self,
        tpk: &KeyRef,
        zpk: &KeyRef,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> Result<EncryptedPinBlock, HsmError> {
        let t = Instant::now();
        let r = dispatch!(self, h => h.translate_pin(tpk, zpk, block, pan));
        self.observe("pin_translate", t, r)
    }

    /// A key's check value (not timed: start-up only).
    pub async fn check_value(&self, key: &KeyRef) -> Result<Vec<u8>, HsmError> {
        dispatch!(self, h => h.check_value(key))
    }

    /// The HSM's keyed digest (PAN hashes, request fingerprints, auth codes).
    pub fn digest(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        self.local.keyed_digest(domain, data)
    }

    /// [`Self::digest`] of the concatenation of `parts`, without making it.
    pub fn digest_parts(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        self.local.keyed_digest_parts(domain, parts)
    }
}
