//! The rest of a merchant's day (DESIGN.md §6): voids, refunds, reversals, settlement and
//! batch upload. Each works on transactions the journal holds:
//!
//! ```text
//!  void     61 = batch + trace ──▶ the sale ─┐
//!  refund   37 = RRN, 61.3 = MMDD ─▶ the sale ├─▶ lock it ─▶ read it (cache or journal)
//!  reversal 11 + 60.2 = its trace ─▶ the 0200 ┘      ─▶ check ─▶ marks + money back
//!  settle   the batch's totals, from the journal ─▶ balanced or not ─▶ the next batch
//!  upload   the terminal's items against the journal's ─▶ differences logged
//!  pre-authorisation, its void, completion, completion void, lapsed holds ─▶ [`preauth`]
//!  adjust   61 = batch + trace ─▶ the sale ─▶ new amount or a tip, fee again
//! ```
//!
//! The lock is held until the marks are applied: what a request reads under it is what
//! the one before it committed.

use super::Switch;
use super::decision::Decline;
use crate::model::{BatchNo, ResponseCode, Rrn, Stan, Tid};
use crate::state::Original;
use crate::state::locks::KeyGuard;

pub mod adjust;
pub mod preauth;
pub mod refund;
pub mod reversal;
pub mod settle;
pub mod upload;
pub mod void;

/// An original under its lock.
pub struct Locked<'s> {
    /// Its lock, held until the request's effects are applied.
    pub guard: KeyGuard<'s, Rrn>,
    /// What the journal says of it now.
    pub original: Original,
}

fn journal_failed(e: crate::journal::JournalError) -> Decline {
    crate::fault_error!(
        crate::fault_log::Fault::JournalRead,
        e,
        "journal look-up failed"
    );
    ResponseCode::SYSTEM_ERROR.into()
}

impl Switch {
    /// The RRN of the approved 0200 (sale or void) with this trace: memory, or the
    /// journal.
    pub(crate) async fn rrn_by_trace(
        &self,
        tid: Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Option<Rrn>, Decline> {
        if let Some(rrn) = self.state.originals.cached_trace(tid, batch, stan) {
            return Ok(Some(rrn));
        }
        let rows = self
            .journal
            .find_trace(tid, batch, stan)
            .await
            .map_err(journal_failed)?;
        Ok(crate::state::Originals::from_trace(&rows)
            .original
            .map(|o| o.rrn))
    }

    /// The approved transaction 61 names (61.1 batch, 61.2 trace) in the terminal's open
    /// batch, locked: what voids and adjustments work on. Another batch, or none: `25`.
    pub(crate) async fn in_open_batch<'s>(
        &'s self,
        req: &crate::pipeline::request::Request<'_>,
        inst: &crate::pipeline::card::Instrument,
        session: &crate::state::Session,
    ) -> Result<Locked<'s>, crate::pipeline::decision::Decision<'s>> {
        let tid = req
            .tid
            .ok_or_else(|| inst.decline(ResponseCode::NO_TERMINAL))?;
        let (Some(batch), Some(stan)) = (req.subfield("61.1"), req.subfield("61.2")) else {
            return Err(inst.decline(ResponseCode::FORMAT_ERROR));
        };
        let (batch, stan) = (BatchNo(batch as u32), Stan(stan as u32));
        if batch != session.batch {
            return Err(inst.decline(ResponseCode::NO_ORIGINAL));
        }
        let rrn = self
            .rrn_by_trace(tid, batch, stan)
            .await
            .map_err(|d| inst.decline(d))?
            .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
        self.lock_original(rrn)
            .await
            .map_err(|d| inst.decline(d))?
            .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))
    }

    /// Locks the original `rrn` and reads it: from memory, else from the journal (then
    /// remembered: under the lock nothing can change it meanwhile). `None` when it is not
    /// an approved sale, void or refund.
    pub(crate) async fn lock_original(&self, rrn: Rrn) -> Result<Option<Locked<'_>>, Decline> {
        let guard = self.state.originals.lock(rrn).await;
        // With a shared journal another node may have changed it: the journal's state
        // decides (the lock still keeps this node's requests on it one at a time).
        if !self.shared()
            && let Some(original) = self.state.originals.cached(&rrn)
        {
            return Ok(Some(Locked { guard, original }));
        }
        let found = self.journal.find(rrn).await.map_err(journal_failed)?;
        let Some(t) = found else { return Ok(None) };
        let Some(original) = Original::from_record(&t) else {
            return Ok(None);
        };
        self.state
            .originals
            .remember(original.clone(), t.mti.as_u16());
        Ok(Some(Locked { guard, original }))
    }
}
