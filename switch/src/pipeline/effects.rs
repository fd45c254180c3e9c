//! What a request changes, as a value: computed by the steps, journalled with the request
//! in one commit, and applied to memory only after that commit succeeded.
//!
//! ```text
//!  steps ─▶ Effects { funds (with its hold), marks, queue entries, stand-in (with its hold),
//!                     session, batch, uploads, tombstone (a held key), locks }
//!        ─▶ record: Op list ─▶ journal commit ─┬─ ok   ─▶ apply: memory changes, holds released
//!                                              └─ fail ─▶ dropped: holds released, memory as it was
//! ```
//!
//! Nothing needs undoing: until the commit, memory only holds what requests in flight rely
//! on (funds, a wrong PIN, a stand-in amount, a key, an original's lock), and dropping the
//! effects releases those holds.

use std::sync::Arc;

use super::Switch;
use crate::clock::Timestamp;
use crate::issuer::Issuer;
use crate::journal::{
    BatchRecord, Mark, Op, PinTries, SafRecord, SessionRecord, TxnRecord, UploadRecord,
};
use crate::model::{AccountId, Rrn, SafState, Tid};
use crate::saf::Entry;
use crate::state::locks::KeyGuard;
use crate::state::{Accounts, Claim, FundsHold, Original, PinFailureHold, Session, StandInHold};

/// An on-us account's change: its balance and PIN tries, and what it holds until then.
pub struct FundsMove<'s> {
    /// The account.
    pub account: AccountId,
    /// Balance change (debit accounts) or change of the amount used (credit).
    pub delta_fen: i64,
    /// Change of what pre-authorisations hold.
    pub hold_delta_fen: i64,
    /// What the PIN check did to the tries.
    pub pin: PinTries,
    /// The available amount the move relies on (journalled as its condition).
    pub require_fen: Option<i64>,
    /// The funds held for it.
    pub hold: Option<FundsHold<'s>>,
    /// The wrong PIN held against the limit.
    pub failure: Option<PinFailureHold<'s>>,
}

impl<'s> FundsMove<'s> {
    /// A move that takes `more` beyond what the card already gave (a completion above its
    /// hold, an adjustment upwards): `more` is held now and is the commit's condition;
    /// `None` when it is not available (51). `more` of 0 or less needs nothing.
    pub fn needing(
        accounts: &'s Accounts,
        account: AccountId,
        more: i64,
        delta_fen: i64,
        hold_delta_fen: i64,
        pin: PinTries,
    ) -> Option<Self> {
        let hold = if more > 0 {
            Some(accounts.hold_funds(account, more)?)
        } else {
            None
        };
        Some(Self {
            account,
            delta_fen,
            hold_delta_fen,
            pin,
            require_fen: (more > 0).then_some(more),
            hold,
            failure: None,
        })
    }

    /// Only the PIN tries change.
    pub fn pin_only(
        account: AccountId,
        pin: PinTries,
        failure: Option<PinFailureHold<'s>>,
    ) -> Self {
        Self {
            account,
            delta_fen: 0,
            hold_delta_fen: 0,
            pin,
            require_fen: None,
            hold: None,
            failure,
        }
    }
}

/// The reversal armed before a forwarded request left: what the request's answer makes of
/// it.
pub struct Armed {
    /// The issuer.
    pub issuer: Arc<Issuer>,
    /// The entry.
    pub entry: Entry,
    /// Its state once the answer is journalled: cancelled (answered, or never sent) or
    /// pending (no answer in time: the queue sends it).
    pub then: SafState,
    /// Whether to send it when the answer cannot be journalled (the request went out, so
    /// its outcome at the issuer is unknown to the journal).
    pub send_if_unrecorded: bool,
}

/// A store-and-forward entry journalled with a request, for its issuer's queue.
pub type Queued = (Arc<Issuer>, Entry, SafRecord);

/// Everything a request changes.
#[derive(Default)]
pub struct Effects<'s> {
    /// An on-us account's balance and PIN tries.
    pub funds: Option<FundsMove<'s>>,
    /// Changes to earlier transactions.
    pub marks: Vec<(Rrn, Mark)>,
    /// Store-and-forward entries to journal, then queue for their issuer (by index).
    pub queued: Vec<Queued>,
    /// The reversal armed before the request left.
    pub armed: Option<Box<Armed>>,
    /// A stand-in approval (for the issuer by index): its amount against the card's daily
    /// limit.
    pub stand_in: Option<(Arc<Issuer>, StandInHold<'s>)>,
    /// A terminal's new session (sign-on) or its next batch (settlement).
    pub session: Option<Box<(Tid, Session)>>,
    /// A settled batch.
    pub batch: Option<Box<BatchRecord>>,
    /// Transactions uploaded after an unbalanced settlement.
    pub uploads: Vec<UploadRecord>,
    /// A reversal that came before its original: the original's key, held, to be refused
    /// from now on.
    pub tombstone: Option<Claim<'s>>,
    /// Locks on the originals the marks change, held until they are applied.
    pub locks: Vec<KeyGuard<'s, Rrn>>,
    /// What the commit relies on beyond its own changes' conditions ([`Op::Lock`],
    /// [`Op::Assert`]): checked inside it, before everything else.
    pub relies_on: Vec<Op>,
}

impl<'s> Effects<'s> {
    /// The locks and conditions the commit relies on: before the request's own row (a
    /// condition must not see the row it guards).
    pub fn conditions(&self) -> impl Iterator<Item = Op> + '_ {
        self.relies_on.iter().cloned()
    }

    /// The journal operations, after the request's own row: in the order they apply. A
    /// PIN verified relies on fewer than `pin_limit` wrong PINs journalled.
    pub fn ops(&self, operator: Option<&str>, pin_limit: u8, now: Timestamp) -> Vec<Op> {
        let mut ops =
            Vec::with_capacity(2 + self.marks.len() + self.queued.len() + self.uploads.len());
        ops.extend(
            self.queued
                .iter()
                .map(|(_, _, record)| Op::PutSaf(Box::new(record.clone()))),
        );
        if let Some(a) = &self.armed {
            ops.push(Op::UpdateSaf {
                id: a.entry.id.clone(),
                state: a.then,
                tries: None,
                updated: now,
                from: Some(SafState::Armed),
            });
        }
        if let Some(f) = &self.funds
            && (f.delta_fen != 0 || f.hold_delta_fen != 0 || f.pin != PinTries::Unchanged)
        {
            ops.push(Op::MoveFunds {
                account: f.account,
                delta_fen: f.delta_fen,
                hold_delta_fen: f.hold_delta_fen,
                pin: f.pin,
                require_available_fen: f.require_fen,
                pin_tries_below: (f.pin != PinTries::Unchanged).then_some(pin_limit),
            });
        }
        ops.extend(self.marks.iter().map(|(rrn, mark)| Op::Mark {
            rrn: *rrn,
            mark: *mark,
        }));
        if let (Some((tid, s)), Some(b)) = (self.session.as_deref(), &self.batch) {
            // A settlement moves the session to its next batch.
            ops.push(Op::NextBatch {
                tid: *tid,
                session_id: s.session_id,
                batch: b.batch,
            });
        } else if let Some((tid, s)) = self.session.as_deref() {
            ops.push(Op::PutSession(Box::new(SessionRecord {
                tid: *tid,
                session_id: s.session_id,
                mid: s.mid.clone(),
                tpk: s.tpk.clone(),
                tak: s.tak.clone(),
                batch: s.batch,
                operator: operator.map(str::to_owned),
                signed_on: now,
            })));
        }
        if let Some(b) = &self.batch {
            ops.push(Op::CloseBatch(b.clone()));
        }
        ops.extend(self.uploads.iter().map(|u| Op::PutUpload(Box::new(*u))));
        ops
    }

    /// After the commit: memory changes as the journal did, and the holds go.
    pub fn apply(self, switch: &Switch, txn: Option<&TxnRecord>) {
        let state = &switch.state;
        if let Some(f) = self.funds {
            state.accounts.apply(
                &f.account,
                f.delta_fen,
                f.hold_delta_fen,
                f.pin,
                f.hold,
                f.failure,
            );
        }
        if let Some((issuer, h)) = self.stand_in {
            state.stand_in.apply(h);
            issuer.meters.stand_in.inc();
        }
        for (rrn, mark) in &self.marks {
            state.originals.apply(rrn, *mark);
        }
        if let Some(t) = txn
            && let Some(o) = Original::from_record(t)
        {
            switch.note_approval(&o);
            state.originals.remember(o, t.mti.as_u16());
        }
        if let Some((tid, session)) = self.session.map(|s| *s) {
            state.sessions.insert(tid, Arc::new(session));
        }
        if let Some(t) = self.tombstone {
            t.tombstone();
        }
        for (issuer, entry, _) in self.queued {
            switch.enqueue(&issuer, entry);
        }
        if let Some(a) = self.armed
            && a.then == SafState::Pending
        {
            switch.enqueue(&a.issuer, a.entry);
        }
        drop(self.locks);
    }

    /// Whether the request went out to an issuer (its reversal is armed and would be sent
    /// if its answer cannot be recorded): it is not decided again.
    pub fn went_out(&self) -> bool {
        self.armed.as_ref().is_some_and(|a| a.send_if_unrecorded)
    }

    /// The commit failed: nothing is applied, the holds go; a reversal armed for a request
    /// that went out is sent after all (journalled as pending first, so that whichever
    /// node holds the queue sends it).
    pub async fn abandon(self, switch: &Switch) {
        let Some(a) = self.armed.filter(|a| a.send_if_unrecorded) else {
            return;
        };
        let pending = Op::UpdateSaf {
            id: a.entry.id.clone(),
            state: SafState::Pending,
            tries: None,
            updated: switch.clock.now(),
            from: Some(SafState::Armed),
        };
        match switch.journal.commit(vec![pending]).await {
            Ok(()) => {}
            // Taken over by the node holding the queue already.
            Err(crate::journal::JournalError::Stale(_)) => return,
            // Still armed in the journal: sent from memory now, and by whoever finds it
            // armed later (this process's restart, or another node once this one is gone).
            Err(e) => {
                tracing::warn!(error = %e, id = %a.entry.id, "cannot record a reversal as pending")
            }
        }
        switch.enqueue(&a.issuer, a.entry);
    }
}

impl Switch {
    /// An approval was journalled: the amounts and fees by card type.
    pub(crate) fn note_approval(&self, o: &Original) {
        if o.kind != crate::model::FinancialKind::Sale {
            return;
        }
        self.metrics.sale(
            o.channel.as_str(),
            u64::try_from(o.amount_fen).unwrap_or(0),
            u64::try_from(o.fee_fen).unwrap_or(0),
        );
    }

    /// Puts a journalled store-and-forward entry on its issuer's queue.
    pub(crate) fn enqueue(&self, issuer: &Issuer, entry: Entry) {
        self.saf_queue(&issuer.name).enqueue(issuer, [entry]);
    }
}
