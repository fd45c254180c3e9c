//! Completion (预授权完成, 0200, 3 = `00xxxx`, 60.1 = `20`; the offline advice 0220, 60.1 =
//! `24`): the pre-authorisation named by 38 and 61 becomes a debit of the completion amount
//! (4), up to `completion_tolerance_pct` of what it held (else `61`); its hold goes, the
//! MDR fee applies as to a sale on the card's channel, and it counts as a sale. One
//! completion per pre-authorisation: a second finds it completed (`12`).
//!
//! ```text
//!  38 + 61 ─▶ pre-authorisation (locked, holding P) ─▶ amount A ≤ P × tolerance? (61)
//!     ─▶ A > P: hold(A − P) of what is available? (51)
//!     ─▶ mark Complete; balance −= A (credit: used += A); holds −= P; fee(A)
//! ```

use super::find;
use crate::journal::{Mark, PinTries};
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;
use crate::pipeline::terminal::Authenticated;
use crate::state::AccountView;

/// Completes the pre-authorisation the request names.
pub async fn complete<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    inst: &Instrument,
    view: &AccountView,
    pin: PinTries,
) -> Decision<'s> {
    let locked = match find(sw, req, inst).await {
        Ok(l) => l,
        Err(d) => return d,
    };
    let o = &locked.original;
    let (amount, held) = (req.amount(), o.amount_fen);
    if amount > at.rules.acquirer.completion_limit_fen(held) {
        return inst.decline(ResponseCode::EXCEEDS_ORIGINAL);
    }
    // Above the hold, the rest must be available now.
    let extra = amount - held;
    let in_flight = if extra > 0 {
        match sw.state.accounts.hold_funds(inst.account(), extra) {
            Some(h) => Some(h),
            None => return inst.decline(ResponseCode::INSUFFICIENT_FUNDS),
        }
    } else {
        None
    };
    let (rrn, auth_code) = (o.rrn, o.auth_code);
    let mut details = Details {
        original_rrn: Some(rrn),
        ..inst.details()
    };
    (details.fee_fen, details.fee_rule) = at.rules.fee(inst, at.range, req.amount_fen);
    let mut d = Decision::approved(
        details,
        Effects {
            funds: Some(FundsMove {
                account: inst.account(),
                delta_fen: view.account.debit_delta(amount),
                hold_delta_fen: -held,
                pin,
                require_fen: (extra > 0).then_some(extra),
                hold: in_flight,
                failure: None,
            }),
            marks: vec![(rrn, Mark::Complete)],
            locks: vec![locked.guard],
            ..Effects::default()
        },
    );
    d.answer.auth_code = auth_code;
    d
}
