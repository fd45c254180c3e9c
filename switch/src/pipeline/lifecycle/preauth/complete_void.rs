//! Completion void (预授权完成撤销, 0200, 3 = `20xxxx`, 60.1 = `21`): the completion named by
//! 61 (batch, trace) in the terminal's open batch, as a sale void names its sale; the
//! money and the fee come back, and the pre-authorisation is open again, holding its
//! amount (CUP: a voided completion restores the pre-authorisation; it can be completed
//! again, voided, or lapse).
//!
//! ```text
//!  61.1 + 61.2 ─▶ completion (locked) ─▶ same card, same amount, not voided/refunded
//!     ─▶ mark Void; pre-authorisation (locked) mark Uncomplete; balance += A; holds += P
//! ```

use crate::journal::PinTries;
use crate::model::TxnKind;
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::lifecycle::reversal::reopen;
use crate::pipeline::lifecycle::void;
use crate::pipeline::request::Request;
use crate::state::Session;

/// Voids the completion the request names.
pub async fn void_completion<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    session: &Session,
    pin: PinTries,
) -> Decision<'s> {
    let locked = match void::check(sw, req, inst, session, TxnKind::CompletionVoid).await {
        Ok(l) => l,
        Err(d) => return d,
    };
    let pre = locked.original.sale;
    let (details, mut effects) = void::effects(locked, Some(pin));
    if let Some(pre) = pre {
        match reopen(sw, pre, &mut effects).await {
            Ok(held) => {
                if let Some(f) = effects.funds.as_mut() {
                    f.hold_delta_fen = held;
                    // Held again now, so that a sale meanwhile does not count on it.
                    f.hold = sw.state.accounts.hold_regardless(inst.account(), held);
                }
            }
            Err(d) => return inst.decline(d),
        }
    }
    Decision::approved(
        Details {
            card: Some(inst.card.clone()),
            ..details
        },
        effects,
    )
}
