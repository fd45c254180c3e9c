//! Refund (退货): the sale with RRN 37 made on the day 61.3 names (MMDD, China Standard
//! Time), within the refund window, same card; refunds never add up to more than the
//! sale. Allowed after settlement: the journal holds the sale.
//!
//! ```text
//!  37 RRN ─▶ lock ─▶ sale (cache or journal) ─▶ day, window, card ─▶ not voided/reversed
//!        ─▶ refunded + amount ≤ sale ─▶ mark Refund(amount) + the amount back; fee by policy
//! ```

use super::Locked;
use crate::clock::Timestamp;
use crate::config::AcquirerConfig;
use crate::journal::Mark;
use crate::model::{FinancialKind, ResponseCode, Rrn};
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;
use crate::pipeline::rules::Rules;

/// A refund that may go ahead: the sale under its lock, the amount, and the fee.
pub struct Plan<'s> {
    locked: Locked<'s>,
    amount_fen: i64,
    fee_fen: i64,
}

/// Finds and locks the sale a refund names and checks the refund fits it.
pub async fn check<'s>(
    sw: &'s Switch,
    acquirer: &AcquirerConfig,
    req: &Request<'_>,
    inst: &Instrument,
    now: Timestamp,
) -> Result<Plan<'s>, Decision<'s>> {
    let rrn = req
        .msg
        .text(37)
        .ok_or_else(|| inst.decline(ResponseCode::FORMAT_ERROR))?;
    let mmdd = req
        .subfield_text("61.3")
        .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
    let rrn = Rrn::parse(rrn).ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
    let locked = sw
        .lock_original(rrn)
        .await
        .map_err(|d| inst.decline(d))?
        .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
    let o = &locked.original;
    let age = now.cst_day_number() - o.time.cst_day_number();
    let in_window = (0..=i64::from(acquirer.refund_window_days)).contains(&age);
    if o.kind != FinancialKind::Sale
        || o.time.cst_mmdd() != mmdd
        || !in_window
        || o.account != inst.account()
    {
        return Err(inst.decline(ResponseCode::NO_ORIGINAL));
    }
    if o.voided || o.reversed {
        return Err(inst.decline(ResponseCode::INVALID_TXN));
    }
    let amount_fen = req.amount();
    if o.refunded_fen + amount_fen > o.amount_fen {
        return Err(inst.decline(ResponseCode::EXCEEDS_ORIGINAL));
    }
    let fee_fen = acquirer
        .refund_fee_policy
        .refund_fee(amount_fen, o.amount_fen, o.fee_fen);
    Ok(Plan {
        locked,
        amount_fen,
        fee_fen,
    })
}

impl<'s> Plan<'s> {
    /// The sale's issuer reference, for a forwarded refund.
    pub fn original(&self) -> &crate::state::Original {
        &self.locked.original
    }

    /// What an approved refund changes: the sale's refunded amount, and for an on-us card
    /// the money back.
    pub fn effects(self, on_us: bool) -> (Details, Effects<'s>) {
        let o = &self.locked.original;
        let details = Details {
            original_rrn: Some(o.rrn),
            fee_fen: self.fee_fen,
            fee_rule: o.fee_rule.clone(),
            ..Details::default()
        };
        let funds = on_us.then(|| FundsMove {
            hold_delta_fen: 0,
            account: o.account,
            delta_fen: o.channel.credit_back(self.amount_fen),
            pin: crate::journal::PinTries::Unchanged,
            require_fen: None,
            hold: None,
            failure: None,
        });
        let effects = Effects {
            funds,
            marks: vec![(
                o.rrn,
                Mark::Refund {
                    amount_fen: self.amount_fen,
                },
            )],
            locks: vec![self.locked.guard],
            ..Effects::default()
        };
        (details, effects)
    }
}

/// An on-us refund.
pub async fn refund<'s>(
    sw: &'s Switch,
    rules: &Rules,
    req: &Request<'_>,
    inst: &Instrument,
    now: Timestamp,
) -> Decision<'s> {
    match check(sw, &rules.acquirer, req, inst, now).await {
        Ok(plan) => {
            let (details, effects) = plan.effects(true);
            Decision::approved(
                Details {
                    card: Some(inst.card.clone()),
                    ..details
                },
                effects,
            )
        }
        Err(d) => d,
    }
}
