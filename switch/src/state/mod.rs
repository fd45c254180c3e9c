//! What the pipeline reads and changes between requests. The journal is the record; this is
//! what memory keeps of it for speed, and what requests in flight hold:
//!
//! | part | holds | bounded by |
//! | --- | --- | --- |
//! | [`Accounts`] | on-us balances, PIN tries; funds and wrong PINs in flight | the card file |
//! | [`Sessions`] | signed-on terminals' working keys and open batch | the terminals |
//! | [`Recent`] | answers of recent requests, requests in flight | `limits.cached_transactions` |
//! | [`Originals`] | approved sales, voids and refunds, locks on them | `limits.cached_transactions` |
//! | [`StandInTotals`] | stand-in approvals per card, today and yesterday | the cards |
//!
//! Nothing here changes before the journal commit that records the change: a request
//! computes its effects, holds what it relies on, commits, and only then applies the
//! effects ([`crate::pipeline`]).

use std::sync::Arc;

use crate::hsm::KeyRef;
use dashmap::DashMap;

use crate::model::{BatchNo, Tid};

pub mod accounts;
pub mod cache;
pub mod locks;
pub mod originals;
pub mod recent;
pub mod stand_in;

pub use accounts::{Account, AccountView, Accounts, FundsHold, PinFailureHold};
pub use originals::{Original, Originals};
pub use recent::{Claim, Claimed, Lookup, Recent, Recorded};
pub use stand_in::{StandInHold, StandInTotals};

/// A signed-on terminal's working keys and open batch.
#[derive(Clone, Debug)]
pub struct Session {
    /// Which sign-on (random; the journal's commits check it).
    pub session_id: i64,
    /// Merchant ID at sign-on.
    pub mid: String,
    /// TPK sealed under the LMK.
    pub tpk: KeyRef,
    /// TAK sealed under the LMK.
    pub tak: KeyRef,
    /// Open batch.
    pub batch: BatchNo,
}

/// Signed-on terminals.
pub type Sessions = DashMap<Tid, Arc<Session>>;

/// The mutable state.
pub struct State {
    /// On-us accounts.
    pub accounts: Accounts,
    /// Signed-on terminals.
    pub sessions: Sessions,
    /// Duplicate detection.
    pub recent: Recent,
    /// Approved transactions for the lifecycle.
    pub originals: Originals,
    /// Stand-in totals.
    pub stand_in: StandInTotals,
    /// Terminals an operator disabled (the journal's list, at start and as changed here).
    pub disabled_terminals: DashMap<Tid, ()>,
}

impl State {
    /// Empty, caching up to `cached` transactions; `shared` when several nodes share the
    /// journal (memory is then only a cache of it).
    pub fn new(cached: usize, shared: bool) -> Self {
        Self {
            accounts: if shared {
                Accounts::shared()
            } else {
                Accounts::default()
            },
            sessions: Sessions::default(),
            recent: Recent::new(cached, shared),
            originals: Originals::new(cached),
            stand_in: StandInTotals::default(),
            disabled_terminals: DashMap::new(),
        }
    }
}
