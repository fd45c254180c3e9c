//! Pre-authorisation void (预授权撤销, 0100, 3 = `20xxxx`, 60.1 = `11`): the hold named by
//! the auth code (38) and 61 goes; the amount (4) must be the one held (else `64`).
//!
//! ```text
//!  38 + 61 ─▶ the pre-authorisation (locked, still holding) ─▶ amount? ─▶ mark Void, holds −= amount
//! ```

use super::find;
use crate::journal::{Mark, PinTries};
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
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
    let (rrn, amount, auth_code) = (o.rrn, o.amount_fen, o.auth_code);
    let mut d = Decision::approved(
        Details {
            original_rrn: Some(rrn),
            ..inst.details()
        },
        Effects {
            funds: Some(FundsMove {
                account: inst.account(),
                delta_fen: 0,
                hold_delta_fen: -amount,
                pin,
                require_fen: None,
                hold: None,
                failure: None,
            }),
            marks: vec![(rrn, Mark::Void)],
            locks: vec![locked.guard],
            ..Effects::default()
        },
    );
    d.answer.auth_code = auth_code;
    d
}
