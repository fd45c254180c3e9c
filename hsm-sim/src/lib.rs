//! A software payment HSM: the only place where clear keys and clear PINs exist.
//!
//! Keys live outside the HSM sealed under the local master key (LMK) with AES-256-GCM, their
//! usage and algorithm bound into the record; callers hold [`SealedKey`]s and every operation
//! checks that the key's usage fits (a TPK cannot MAC, a TAK cannot decrypt a PIN block).
//!
//! ```text
//!   switch                               Hsm
//!   ------                               ---
//!   SealedKey(TPK), PIN block, PAN  ──▶  unseal TPK ─▶ decrypt block ─▶ clear PIN ─┐
//!   SealedKey(PVK), PVKI, PVV       ──▶  unseal PVK ─▶ PVV(PAN, PVKI, PIN) ◀───────┘
//!                                   ◀──  true / false   (the clear PIN never leaves)
//! ```
//!
//! What it does: key generation, import and export under a TMK/ZMK with check values;
//! ISO 9564 PIN blocks (formats 0, 1, 3, 4) and translation; Visa PVV and IBM 3624 PIN
//! verification behind a failure limiter; UnionPay POS MAC, X9.9, X9.19, ISO 9797-1
//! algorithm 1, AES-CMAC; CVV/CVV2/iCVV; an HMAC-chained audit log of key events.
//!
//! ```
//! # fn main() -> Result<(), hsm_sim::Error> {
//! use hsm_sim::{Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, MacAlgorithm};
//!
//! let config = HsmConfig { allow_test_keys: true, ..HsmConfig::default() };
//! let hsm = Hsm::new(Lmk::test(), &config)?;
//! let tak = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Des)?;
//! let mac = hsm.generate_mac(&tak, MacAlgorithm::UnionpayEcb, b"0200...")?;
//! assert!(hsm.verify_mac(&tak, MacAlgorithm::UnionpayEcb, b"0200...", mac.as_bytes())?);
//! // A TAK cannot decrypt PIN blocks.
//! let pin = hsm_sim::ClearPin::new("123456")?;
//! assert!(hsm.encrypt_pin(&tak, &pin, "6222021000000000017", hsm_sim::PinFormat::Iso0).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! The pure algorithms over clear keys are in [`primitives`], for terminal firmware.

#![forbid(unsafe_code)]

pub mod audit;
mod error;
mod hsm;
mod key;
mod key_cache;
mod limiter;
mod lmk;
pub mod payshield;
pub mod primitives;
pub mod published;

pub use audit::{AuditEntry, AuditError, AuditEvent, AuditLog};
pub use error::Error;
pub use hsm::{
    EncryptedPinBlock, Hsm, HsmConfig, MacAlgorithm, MacValue, TerminalKeys, clear_key_check_value,
};
pub use key::{KeyAlgorithm, KeyUsage, SealedKey};
pub use lmk::{Lmk, TEST_LMK_HEX};
pub use primitives::pinblock::{ClearPin, PinFormat};
pub use primitives::pvv::{CheckLength, Ibm3624};
