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

use super::{approve, find};
use crate::journal::{Mark, PinTries};
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::FundsMove;
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
    let Some(funds) = FundsMove::needing(
        &sw.state.accounts,
        inst.account(),
        amount - held,
        view.account.debit_delta(amount),
        -held,
        pin,
    ) else {
        return inst.decline(ResponseCode::INSUFFICIENT_FUNDS);
    };
    let mut details = Details::default();
    (details.fee_fen, details.fee_rule) = at.rules.fee(inst, at.range, req.amount_fen);
    approve(inst, locked, Mark::Complete, funds, details)
}
