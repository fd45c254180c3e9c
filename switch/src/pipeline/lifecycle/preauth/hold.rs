//! Pre-authorisation (预授权, 0100, 3 = `03xxxx`, 60.1 = `10`): the amount is held on an on-us
//! account, nothing is taken, no fee; the reply's 38 is the auth code a completion names.
//!
//! ```text
//!  PIN verified ─▶ hold(amount): available − held in flight ≥ amount? ─┬─ 00: holds += amount
//!                                                                      └─ 51
//! ```

use crate::journal::PinTries;
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::Decision;
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;

/// Holds the request's amount on the card whose PIN checked out (`pin`).
pub fn hold<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    pin: PinTries,
) -> Decision<'s> {
    let amount = req.amount();
    let Some(held) = sw.state.accounts.hold_funds(inst.account(), amount) else {
        let mut d = inst.decline(ResponseCode::INSUFFICIENT_FUNDS);
        if pin != PinTries::Unchanged {
            d.effects.funds = Some(FundsMove::pin_only(inst.account(), pin, None));
        }
        return d;
    };
    Decision::approved(
        inst.details(),
        Effects {
            funds: Some(FundsMove {
                account: inst.account(),
                delta_fen: 0,
                hold_delta_fen: amount,
                pin,
                require_fen: Some(amount),
                hold: Some(held),
                failure: None,
            }),
            ..Effects::default()
        },
    )
}
