//! Void (消费撤销): the approved sale named by 61 (batch, trace) in the terminal's open
//! batch, same card, same amount, not voided, reversed or refunded; the money and the fee
//! come back.
//!
//! ```text
//!  61.1 batch, 61.2 trace ─▶ sale ─▶ lock ─▶ checks ─▶ mark Void + the amount back
//! ```

use super::Locked;
use crate::journal::{Mark, PinTries};
use crate::model::{FinancialKind, ResponseCode, TxnKind};
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;
use crate::state::Session;

/// Finds and locks the sale a void names and checks it can be voided: shared by on-us
/// and forwarded voids, and by completion voids (`kind`), whose original is a completion
/// where a void's is a sale.
pub async fn check<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    session: &Session,
    kind: TxnKind,
) -> Result<Locked<'s>, Decision<'s>> {
    let locked = sw.in_open_batch(req, inst, session).await?;
    let o = &locked.original;
    // A sale partly refunded can no longer be voided: the refund already gave money back.
    let voids_it = match kind {
        TxnKind::CompletionVoid => o.txn == TxnKind::Completion,
        _ => o.txn != TxnKind::Completion,
    };
    if o.kind != FinancialKind::Sale || !voids_it || o.voided || o.reversed || o.refunded_fen > 0 {
        return Err(inst.decline(ResponseCode::INVALID_TXN));
    }
    if o.account != inst.account() {
        return Err(inst.decline(ResponseCode::NO_ORIGINAL));
    }
    if req.amount() != o.amount_fen {
        return Err(inst.decline(ResponseCode::AMOUNT_MISMATCH));
    }
    Ok(locked)
}

/// What an approved void changes: the sale marked voided, and for an on-us card the money
/// back (with what the PIN check did to its tries).
pub fn effects(locked: Locked<'_>, on_us: Option<PinTries>) -> (Details, Effects<'_>) {
    let o = &locked.original;
    let details = Details {
        original_rrn: Some(o.rrn),
        ..Details::default()
    };
    let funds = on_us.map(|pin| FundsMove {
        account: o.account,
        delta_fen: o.channel.credit_back(o.amount_fen),
        hold_delta_fen: 0,
        pin,
        require_fen: None,
        hold: None,
        failure: None,
    });
    let effects = Effects {
        funds,
        marks: vec![(o.rrn, Mark::Void)],
        locks: vec![locked.guard],
        ..Effects::default()
    };
    (details, effects)
}

/// An on-us void.
pub async fn void<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    session: &Session,
    pin: PinTries,
) -> Decision<'s> {
    match check(sw, req, inst, session, TxnKind::Void).await {
        Ok(locked) => {
            let (details, effects) = effects(locked, Some(pin));
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
