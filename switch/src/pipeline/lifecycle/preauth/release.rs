//! Pre-authorisation void (预授权撤销, 0100, 3 = `20xxxx`, 60.1 = `11`): the hold named by
//! the auth code (38) and 61 goes; the amount (4) must be the one held (else `64`).
//!
//! ```text
//!  38 + 61 ─▶ the pre-authorisation (locked, still holding) ─▶ amount? ─▶ mark Void, holds −= amount
//! ```

use super::{approve, find};
use crate::journal::{Mark, PinTries};
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::FundsMove;
use crate::pipeline::request::Request;

/// Releases the hold a pre-authorisation void names.
pub async fn release<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    pin: PinTries,
) -> Decision<'s> {
    let locked = match find(sw, req, inst).await {
        Ok(l) => l,
        Err(d) => return d,
    };
    let o = &locked.original;
    if req.amount() != o.amount_fen {
        return inst.decline(ResponseCode::AMOUNT_MISMATCH);
    }
    let funds = FundsMove {
        account: inst.account(),
        delta_fen: 0,
        hold_delta_fen: -o.amount_fen,
        pin,
        require_fen: None,
        hold: None,
        failure: None,
    };
    approve(inst, locked, Mark::Void, funds, Details::default())
}
