//! Step 8 for on-us cards and wallets: the authoriser. A balance inquiry reads the
//! available balance; a sale holds the amount, and its fee comes from the MDR schedule.
//!
//! ```text
//!  balance ─▶ 54 = available (less what requests in flight hold)
//!  sale    ─▶ hold(amount) ─┬─ held ─▶ approved: balance moves by the amount once journalled,
//!                           │          on the condition that it is still there
//!                           └─ not enough ─▶ 51
//! ```

use super::Switch;
use super::card::Instrument;
use super::decision::{Answer, Decision};
use super::effects::{Effects, FundsMove};
use super::request::Request;
use super::terminal::Authenticated;
use crate::fees::AppliedFee;
use crate::journal::PinTries;
use crate::model::{ResponseCode, TxnKind};
use crate::state::AccountView;

/// Authorises a sale, QR sale or balance inquiry on an on-us account whose PIN checked out
/// (`pin` is what that did to its tries).
pub fn authorise<'s>(
    sw: &'s Switch,
    kind: TxnKind,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    inst: &Instrument,
    view: &AccountView,
    pin: PinTries,
) -> Decision<'s> {
    let pin_only =
        |pin| (pin != PinTries::Unchanged).then(|| FundsMove::pin_only(inst.account(), pin, None));
    if kind == TxnKind::Balance {
        return Decision {
            answer: Answer {
                balance_fen: Some(view.spendable_fen),
                ..Answer::approved()
            },
            details: inst.details(),
            effects: Effects {
                funds: pin_only(pin),
                ..Effects::default()
            },
        };
    }
    let amount = req.amount();
    let Some(hold) = sw.state.accounts.hold_funds(inst.account(), amount) else {
        let mut d = inst.decline(ResponseCode::INSUFFICIENT_FUNDS);
        d.effects.funds = pin_only(pin);
        return d;
    };
    let mut details = inst.details();
    (details.fee_fen, details.fee_rule) = at.rules.fee(inst, at.range, req.amount_fen);
    Decision::approved(
        details,
        Effects {
            funds: Some(FundsMove {
                hold_delta_fen: 0,
                account: inst.account(),
                delta_fen: view.account.debit_delta(amount),
                pin,
                require_fen: Some(amount),
                hold: Some(hold),
                failure: None,
            }),
            ..Effects::default()
        },
    )
}

impl super::rules::Rules {
    /// The fee of a sale on `inst` at a terminal of `range`, by its merchant's category,
    /// and the rule it was charged by (none, and no fee, when no rule prices it: the
    /// configuration refuses such a merchant).
    pub(crate) fn fee(
        &self,
        inst: &super::card::Instrument,
        range: &super::terminal::TerminalRange,
        amount_fen: u64,
    ) -> (i64, Option<AppliedFee>) {
        match self.fees.fee_for(
            &range.fee_category,
            inst.card.channel,
            &range.mcc,
            &range.mid,
            amount_fen,
        ) {
            Some((fee, applied)) => (i64::try_from(fee).unwrap_or(i64::MAX), Some(applied)),
            None => (0, None),
        }
    }
}
