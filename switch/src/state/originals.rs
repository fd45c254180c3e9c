//! Approved sales, voids and refunds, as later voids, refunds and reversals find them.
//!
//! ```text
//!  void / refund / reversal ─▶ lock(rrn) ─▶ cache ─(miss)─▶ journal ─▶ Original
//!      ─▶ check, compute the marks ─▶ commit (conditional on the state read) ─▶ apply to
//!         the cache ─▶ unlock
//! ```
//!
//! The journal is the record; memory keeps a bounded cache. Every change to an original
//! happens under its lock and is applied to the cache only after it is journalled, so what
//! a request reads under the lock (from the cache or the journal) is what was last
//! committed, and two voids of one sale cannot both pass.

use super::cache::BoundedCache;
use super::locks::{KeyGuard, KeyedLocks};
use crate::clock::Timestamp;
use crate::fees::Channel;
use crate::journal::{Mark, TxnRecord, UpstreamRef};
use crate::model::{AccountId, AuthCode, BatchNo, FinancialKind, Rrn, Stan, Tid, TxnKind};

/// An approved sale, void or refund: the one description the lifecycle works from, read
/// from its journal record ([`Original::from_record`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    /// Its RRN.
    pub rrn: Rrn,
    /// What it moved.
    pub kind: FinancialKind,
    /// What it was (a completion is a sale that completes a pre-authorisation).
    pub txn: TxnKind,
    /// Its authorisation code (a completion names its pre-authorisation by it).
    pub auth_code: Option<AuthCode>,
    /// Terminal.
    pub tid: Tid,
    /// Batch.
    pub batch: BatchNo,
    /// Trace number.
    pub stan: Stan,
    /// When (its China Standard Time date is the refund's 61.3).
    pub time: Timestamp,
    /// The account moved (keyed PAN or wallet hash).
    pub account: AccountId,
    /// Fee channel.
    pub channel: Channel,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Fee, fen.
    pub fee_fen: i64,
    /// The rule the fee was charged by.
    pub fee_rule: Option<crate::fees::AppliedFee>,
    /// For voids and refunds: the sale; for a completion: its pre-authorisation; for a
    /// pre-authorisation's void: the pre-authorisation.
    pub sale: Option<Rrn>,
    /// Voided (sales).
    pub voided: bool,
    /// Reversed.
    pub reversed: bool,
    /// Refunded so far (sales), fen.
    pub refunded_fen: i64,
    /// Completed (pre-authorisations).
    pub completed: bool,
    /// Lapsed (pre-authorisations).
    pub expired: bool,
    /// Tips added (sales), fen, in the amount.
    pub tip_fen: i64,
    /// For a forwarded transaction: how the issuer knows it.
    pub upstream: Option<UpstreamRef>,
}

impl Original {
    /// An approved sale, void or refund from its journal record; `None` for anything else.
    pub fn from_record(t: &TxnRecord) -> Option<Self> {
        let card = t.card.as_ref()?;
        Some(Self {
            rrn: t.rrn,
            kind: t.financial()?,
            txn: t.kind?,
            auth_code: t.auth_code,
            tid: t.tid,
            batch: t.batch,
            stan: t.stan,
            time: t.time,
            account: card.account,
            channel: card.channel,
            amount_fen: t.amount_fen,
            fee_fen: t.fee_fen,
            fee_rule: t.fee_rule.clone(),
            sale: t.original_rrn,
            voided: t.voided,
            reversed: t.reversed,
            refunded_fen: t.refunded_fen,
            completed: t.completed,
            expired: t.expired,
            tip_fen: t.tip_fen,
            upstream: t.upstream.clone(),
        })
    }

    /// The one definition, in Rust, of a sale that still stands: a sale, not voided, not
    /// reversed (approved, as every `Original` is). SQL's is `sqlite::SALE_STANDS`.
    pub fn stands(&self) -> bool {
        self.kind == FinancialKind::Sale && !self.voided && !self.reversed
    }

    /// The one definition, in Rust, of a pre-authorisation still holding money: not
    /// voided, reversed, completed or expired. SQL's is `sqlite::PREAUTH_HOLDS`.
    pub fn holds(&self) -> bool {
        self.kind == FinancialKind::PreAuth
            && !self.voided
            && !self.reversed
            && !self.completed
            && !self.expired
    }

    /// What a sale still takes from the cardholder: nothing once voided, the unrefunded
    /// part otherwise.
    pub fn still_taken_fen(&self) -> i64 {
        if self.voided {
            0
        } else {
            self.amount_fen - self.refunded_fen
        }
    }

    /// The change a journalled mark made.
    pub fn apply(&mut self, mark: Mark) {
        match mark {
            Mark::Void => self.voided = true,
            Mark::Unvoid => self.voided = false,
            Mark::Reverse => self.reversed = true,
            Mark::Refund { amount_fen } => self.refunded_fen += amount_fen,
            Mark::Complete => self.completed = true,
            Mark::Uncomplete => self.completed = false,
            Mark::Expire => self.expired = true,
            Mark::Adjust {
                to_fen,
                fee_fen,
                tip_fen,
                ..
            } => {
                self.amount_fen = to_fen;
                self.fee_fen = fee_fen;
                self.tip_fen = tip_fen;
            }
        }
    }
}

/// What a look-up by terminal, batch and trace found.
#[derive(Debug, Default)]
pub struct ByTrace {
    /// The approved 0100 or 0200 (sale, void, pre-authorisation, completion) with that
    /// trace.
    pub original: Option<Original>,
}

/// The approved transactions the lifecycle works on.
pub struct Originals {
    by_rrn: BoundedCache<Rrn, Original>,
    by_trace: BoundedCache<(Tid, BatchNo, Stan), Rrn>,
    locks: KeyedLocks<Rrn>,
}

impl Originals {
    /// Empty, caching up to `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            by_rrn: BoundedCache::new(capacity),
            by_trace: BoundedCache::new(capacity),
            locks: KeyedLocks::default(),
        }
    }

    /// Waits for the lock of the original `rrn`: its voids, refunds and reversals one at a
    /// time.
    pub async fn lock(&self, rrn: Rrn) -> KeyGuard<'_, Rrn> {
        self.locks.lock(rrn).await
    }

    /// The cached original, if memory has it.
    pub fn cached(&self, rrn: &Rrn) -> Option<Original> {
        self.by_rrn.get(rrn)
    }

    /// The RRN of the approved 0200 with this trace, if memory has it.
    pub fn cached_trace(&self, tid: Tid, batch: BatchNo, stan: Stan) -> Option<Rrn> {
        self.by_trace.get(&(tid, batch, stan))
    }

    /// Remembers a journalled approval (just made, or read back).
    pub fn remember(&self, o: Original, mti: u16) {
        if matches!(mti, 100 | 200) {
            self.by_trace.insert((o.tid, o.batch, o.stan), o.rrn);
        }
        self.by_rrn.insert(o.rrn, o);
    }

    /// Forgets a cached original (the journal has changed it behind memory's back).
    pub fn forget(&self, rrn: &Rrn) {
        self.by_rrn.remove(rrn);
    }

    /// After a commit: a mark on an original, in the cache if it is there (else the
    /// journal alone has it, which is where a look-up will find it).
    pub fn apply(&self, rrn: &Rrn, mark: Mark) {
        self.by_rrn.update(rrn, |o| o.apply(mark));
    }

    /// From a journal's rows for one trace: the approved 0200.
    pub fn from_trace(rows: &[TxnRecord]) -> ByTrace {
        ByTrace {
            original: rows
                .iter()
                .filter(|t| matches!(t.mti.as_u16(), 100 | 200) && t.kind != Some(TxnKind::Balance))
                .find_map(Original::from_record),
        }
    }

    /// Originals locked or waited for now.
    pub fn locked(&self) -> usize {
        self.locks.len()
    }

    /// Originals cached.
    pub fn cached_count(&self) -> usize {
        self.by_rrn.len()
    }
}
