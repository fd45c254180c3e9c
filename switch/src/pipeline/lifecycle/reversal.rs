//! Reversal (冲正): undoes the approved original with the same terminal, batch and trace.
//! Always `00` (the ISO rule): an unknown original is remembered, so that if it comes late
//! it is refused; a repeated reversal changes nothing.
//!
//! ```text
//!  0400 ─▶ hold the 0200's key (it waits, if in progress; it cannot start meanwhile)
//!       ├─ never seen ─▶ tombstone (journalled with the reversal): the original answers 12
//!       ├─ declined   ─▶ nothing to undo
//!       └─ approved   ─▶ lock it ─▶ reversed already? nothing : mark Reverse, and
//!            sale: what it still takes comes back   void: the sale stands again (taken again)
//!            pre-authorisation: its hold goes        its void: the hold again
//!            completion: the money back, the pre-authorisation open (held) again
//!            completion void: the completion stands again, the pre-authorisation completed
//!            forwarded: an 0420 to the issuer through the store-and-forward queue
//! ```
//!
//! A reversal names its original by the trace and the MTI it came with: 0100 for a
//! pre-authorisation or its void (60.1 `10`, `11`), 0200 otherwise.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::issuer::message::Upstream;
use crate::journal::{Mark, Op, PinTries, TraceFirst};
use crate::model::{FinancialKind, ResponseCode, SafKind, SafState, TxnKey, TxnKind};
use crate::pipeline::Switch;
use crate::pipeline::card::pan_of;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove, Queued};
use crate::pipeline::request::Request;
use crate::pipeline::rules::Rules;
use crate::saf::Entry;
use crate::state::Original;

/// Reverses what the request's trace names.
pub async fn reverse<'s>(
    sw: &'s Switch,
    rules: &Rules,
    req: &Request<'_>,
    now: Timestamp,
) -> Decision<'s> {
    let Some(tid) = req.tid else {
        return ResponseCode::NO_TERMINAL.into();
    };
    let key = TxnKey {
        tid,
        batch: req.batch,
        stan: req.stan,
        mti: reversed_mti(req),
    };
    let Ok((hold, answered, reversed_early)) = sw.state.recent.hold_original(key, sw).await else {
        return ResponseCode::SYSTEM_ERROR.into();
    };
    if reversed_early {
        // Reversed before, before it came: nothing more to do.
        return Decision::approved(Details::default(), Effects::default());
    }
    let Some(answered) = answered else {
        tracing::warn!(tid = %tid, stan = %req.stan, "reversal before its original");
        // With a shared journal the original may be at another node right now: this
        // commit and its take the trace's lock, and whichever comes second sees the first.
        let relies_on = if sw.shared() {
            vec![Op::Trace {
                tid,
                batch: req.batch,
                stan: req.stan,
                first: TraceFirst::Reversal,
            }]
        } else {
            Vec::new()
        };
        return Decision::approved(
            Details::default(),
            Effects {
                tombstone: Some(hold),
                relies_on,
                ..Effects::default()
            },
        );
    };
    // The original was answered: a copy of it now is a retransmission, answered alike.
    drop(hold);
    if !answered.code.is_approved() {
        return Decision::approved(Details::default(), Effects::default());
    }
    let rrn = match sw.rrn_by_trace(tid, req.batch, req.stan).await {
        Ok(Some(rrn)) => rrn,
        // Approved but not a sale or void (a balance inquiry): nothing to undo.
        Ok(None) => return Decision::approved(Details::default(), Effects::default()),
        Err(d) => return d.into(),
    };
    let locked = match sw.lock_original(rrn).await {
        Ok(Some(l)) => l,
        Ok(None) => return Decision::approved(Details::default(), Effects::default()),
        Err(d) => return d.into(),
    };
    if locked.original.reversed {
        return Decision::approved(Details::default(), Effects::default());
    }
    let o = locked.original.clone();
    let mut effects = Effects {
        marks: vec![(o.rrn, Mark::Reverse)],
        locks: vec![locked.guard],
        ..Effects::default()
    };
    let mut hold_delta = 0;
    let delta = match o.kind {
        FinancialKind::Sale => {
            if o.txn == TxnKind::Completion
                && !o.voided
                && let Some(pre) = o.sale
            {
                // The pre-authorisation is open again, and holds again.
                match reopen(sw, pre, &mut effects).await {
                    Ok(held) => hold_delta += held,
                    Err(d) => return d.into(),
                }
            }
            o.channel.credit_back(o.still_taken_fen())
        }
        FinancialKind::Void => {
            // The sale stands again: its money is taken again.
            if let Some(sale) = o.sale {
                let sale_lock = sw.state.originals.lock(sale).await;
                effects.marks.push((sale, Mark::Unvoid));
                effects.locks.push(sale_lock);
                if o.txn == TxnKind::CompletionVoid {
                    match complete_again(sw, sale, &mut effects).await {
                        Ok(released) => hold_delta -= released,
                        Err(d) => return d.into(),
                    }
                }
            }
            -o.channel.credit_back(o.amount_fen)
        }
        FinancialKind::Refund => 0,
        FinancialKind::PreAuth => {
            if o.holds() {
                hold_delta -= o.amount_fen;
            }
            0
        }
        FinancialKind::PreAuthVoid => {
            if let Some(pre) = o.sale {
                let pre_lock = sw.state.originals.lock(pre).await;
                effects.marks.push((pre, Mark::Unvoid));
                effects.locks.push(pre_lock);
                hold_delta += o.amount_fen;
            }
            0
        }
    };
    if let Some(entry) = forwarded_reversal(sw, rules, req, &o, now) {
        match entry {
            Ok(queued) => effects.queued.push(queued),
            Err(()) => return ResponseCode::SYSTEM_ERROR.into(),
        }
    }
    if (delta != 0 || hold_delta != 0) && sw.state.accounts.view(&o.account).is_some() {
        // Taking a sale's money again, or holding it again, is held like a sale's until it
        // is applied, or a sale meanwhile would count on money the journal no longer has.
        let taken = if o.kind == FinancialKind::Void {
            o.amount_fen
        } else {
            0
        };
        let held = taken + hold_delta.max(0);
        let hold = (held > 0)
            .then(|| sw.state.accounts.hold_regardless(o.account, held))
            .flatten();
        effects.funds = Some(FundsMove {
            account: o.account,
            delta_fen: delta,
            hold_delta_fen: hold_delta,
            pin: PinTries::Unchanged,
            require_fen: None,
            hold,
            failure: None,
        });
    }
    Decision::approved(
        Details {
            original_rrn: Some(o.rrn),
            ..Details::default()
        },
        effects,
    )
}

/// The MTI of the request a reversal names: 0100 when its 60.1 is a pre-authorisation's
/// or its void's, else 0200.
fn reversed_mti(req: &Request<'_>) -> u16 {
    match req.msg.get("60.1").ok().flatten().and_then(|v| v.digits()) {
        Some(d) if d == "10" || d == "11" => 100,
        _ => 200,
    }
}

/// A completion undone (reversed, or voided): its pre-authorisation, locked, is open again
/// and holds its amount again; returns that amount (0 when it was not completed).
pub(crate) async fn reopen<'s>(
    sw: &'s Switch,
    pre: crate::model::Rrn,
    effects: &mut Effects<'s>,
) -> Result<i64, crate::pipeline::decision::Decline> {
    let Some(locked) = sw.lock_original(pre).await? else {
        return Ok(0);
    };
    if !locked.original.completed {
        return Ok(0);
    }
    effects.marks.push((pre, Mark::Uncomplete));
    let amount = locked.original.amount_fen;
    effects.locks.push(locked.guard);
    Ok(amount)
}

/// A completion void reversed: the completion `completion` stands again, so its
/// pre-authorisation, locked, is completed again and its hold goes; returns the hold
/// released (0 when the pre-authorisation no longer holds: it lapsed meanwhile).
async fn complete_again<'s>(
    sw: &'s Switch,
    completion: crate::model::Rrn,
    effects: &mut Effects<'s>,
) -> Result<i64, crate::pipeline::decision::Decline> {
    let pre = match sw.state.originals.cached(&completion) {
        Some(c) if !sw.shared() => c.sale,
        _ => sw
            .journal
            .find(completion)
            .await
            .map_err(|e| {
                crate::fault_error!(
                    crate::fault_log::Fault::JournalRead,
                    e,
                    "journal look-up failed"
                );
                crate::pipeline::decision::Decline::from(ResponseCode::SYSTEM_ERROR)
            })?
            .and_then(|t| t.original_rrn),
    };
    let Some(pre) = pre else { return Ok(0) };
    let Some(locked) = sw.lock_original(pre).await? else {
        return Ok(0);
    };
    if !locked.original.holds() {
        return Ok(0);
    }
    effects.marks.push((pre, Mark::Complete));
    let amount = locked.original.amount_fen;
    effects.locks.push(locked.guard);
    Ok(amount)
}

/// A terminal's reversal of a forwarded transaction: the issuer gets an 0420 through the
/// store-and-forward queue, journalled with the reversal itself. `None` for on-us ones.
fn forwarded_reversal(
    sw: &Switch,
    rules: &Rules,
    req: &Request<'_>,
    o: &Original,
    now: Timestamp,
) -> Option<Result<Queued, ()>> {
    let u = o.upstream.as_ref()?;
    let Some(issuer) = rules.issuers.by_name(&u.issuer) else {
        tracing::error!(issuer = %u.issuer, "reversal of a transaction forwarded to an issuer no longer configured");
        return Some(Err(()));
    };
    let pan = pan_of(req.msg);
    let rrn = o.rrn.to_string();
    let up = Upstream {
        processing: match o.kind {
            FinancialKind::Sale => "000000",
            FinancialKind::Void => "020000",
            FinancialKind::Refund => "200000",
            FinancialKind::PreAuth => "030000",
            FinancialKind::PreAuthVoid => "200000",
        },
        pan: pan.as_ref().map(|p| p.as_str()),
        amount_fen: u64::try_from(o.amount_fen).ok(),
        stan: u.stan,
        time: u.time.clone(),
        entry_mode: req.msg.digits(22).map(|d| d.to_string()),
        condition: req.msg.digits(25).map(|d| d.to_string()),
        acquirer_id: &issuer.acquirer_id,
        rrn: &rrn,
        tid: req.tid_text,
        mid: req.mid,
        currency: req.msg.text(49).unwrap_or(rules.acquirer.currency.as_str()),
        ..Upstream::default()
    };
    let made = Entry::new(
        sw.hsm.inner(),
        issuer,
        format!("{rrn}:reversal"),
        SafKind::Reversal,
        &up.reversal(u, now),
        Some(o.rrn),
        SafState::Pending,
        now,
    );
    Some(
        made.map(|(entry, record)| (Arc::clone(issuer), entry, record))
            .ok_or(()),
    )
}
