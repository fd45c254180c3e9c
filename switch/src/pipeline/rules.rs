//! The rules a request is decided by: terminals and their keys, BIN routes, wallets, fees,
//! acquirer-wide rules, the on-us PVK, the remote issuers and the server's limits. They come
//! from the configuration and change as a whole when it is reloaded: each request takes the
//! snapshot current when it arrives and keeps it to its answer.
//!
//! ```text
//!  reload ─▶ Rules (new) ──swap──▶ Switch.rules ◀──load── request (one snapshot to its answer)
//!                                        └─ old snapshot: freed when its last request ends
//! ```

use crate::config::{AcquirerConfig, ServerLimits};
use crate::fees::FeeSchedule;
use crate::issuer::Issuers;

use super::card::{Routes, Wallet};
use super::pin::PinVerification;
use super::terminal::TerminalDirectory;

/// One snapshot of the configured rules.
pub struct Rules {
    /// Terminals and their TMKs.
    pub terminals: TerminalDirectory,
    /// BIN routes (their issuers are indexes into `issuers`).
    pub routes: Routes,
    /// QR wallets.
    pub wallets: Vec<Wallet>,
    /// MDR fees.
    pub fees: FeeSchedule,
    /// Acquirer-wide rules.
    pub acquirer: AcquirerConfig,
    /// The on-us issuer's PIN verification key.
    pub pin_verification: Option<PinVerification>,
    /// Remote issuers, their lines and queues.
    pub issuers: Issuers,
    /// Connection limits (new connections take them; connections up keep theirs).
    pub limits: ServerLimits,
}
