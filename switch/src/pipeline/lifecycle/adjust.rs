//! Adjustments (结算调整, 0220, 60.1 = `32`; 追加小费, 60.1 = `34`): advices that change a
//! sale (or completion) of the terminal's open batch before it settles. No reversal
//! follows an advice; a retransmission is answered from the journal like any request.
//!
//! | 60.1 | field 4 | the sale afterwards |
//! | --- | --- | --- |
//! | `32` settlement adjustment | the sale's new amount | amount = 4; tips as they were (at most the amount) |
//! | `34` tip adjustment | the tip added | amount += 4, tips += 4; tips ≤ `tip_max_pct` of the amount without tips (else `61`) |
//!
//! ```text
//!  61.1 + 61.2 ─▶ sale of the open batch (locked): stands, unrefunded, same card
//!     ─▶ new amount ─▶ more? hold the difference of what is available (51)
//!     ─▶ mark Adjust(from, to, fee(to), tips) ─▶ balance by the difference
//! ```
//!
//! The fee is the MDR fee of the new amount; settlement totals and reports read the sale
//! as adjusted. The adjustment's own row keeps the amount its field 4 said.

use super::Locked;
use crate::journal::{Mark, PinTries};
use crate::model::{FinancialKind, ResponseCode, TxnKind};
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;
use crate::pipeline::terminal::Authenticated;
use crate::state::{AccountView, Session};

/// The sale an adjustment names, locked: in the open batch, standing, not refunded, this
/// card's.
async fn sale<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
    session: &Session,
) -> Result<Locked<'s>, Decision<'s>> {
    let locked = sw.in_open_batch(req, inst, session).await?;
    let o = &locked.original;
    if o.account != inst.account() {
        return Err(inst.decline(ResponseCode::NO_ORIGINAL));
    }
    let card_sale = matches!(o.txn, TxnKind::Sale | TxnKind::Completion);
    if o.kind != FinancialKind::Sale || !card_sale || !o.stands() || o.refunded_fen > 0 {
        return Err(inst.decline(ResponseCode::INVALID_TXN));
    }
    Ok(locked)
}

/// Adjusts the sale the request names (`kind`: adjustment or tip).
pub async fn adjust<'s>(
    sw: &'s Switch,
    kind: TxnKind,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    inst: &Instrument,
    view: &AccountView,
    session: &Session,
) -> Decision<'s> {
    let locked = match sale(sw, req, inst, session).await {
        Ok(l) => l,
        Err(d) => return d,
    };
    let o = &locked.original;
    let given = req.amount();
    let (to_fen, tip_fen) = if kind == TxnKind::Tip {
        let tips = o.tip_fen + given;
        if tips > at.rules.acquirer.tip_limit_fen(o.amount_fen - o.tip_fen) {
            return inst.decline(ResponseCode::EXCEEDS_ORIGINAL);
        }
        (o.amount_fen + given, tips)
    } else {
        if given < o.tip_fen {
            return inst.decline(ResponseCode::INVALID_AMOUNT);
        }
        (given, o.tip_fen)
    };
    let more = to_fen - o.amount_fen;
    let funds = if more == 0 {
        None
    } else {
        match FundsMove::needing(
            &sw.state.accounts,
            inst.account(),
            more,
            view.account.debit_delta(more),
            0,
            PinTries::Unchanged,
        ) {
            Some(f) => Some(f),
            None => return inst.decline(ResponseCode::INSUFFICIENT_FUNDS),
        }
    };
    let (fee_fen, _) = at
        .rules
        .fee(inst, at.range, u64::try_from(to_fen).unwrap_or(0));
    let mark = Mark::Adjust {
        from_fen: o.amount_fen,
        to_fen,
        fee_fen,
        tip_fen,
    };
    let rrn = o.rrn;
    Decision::approved(
        Details {
            original_rrn: Some(rrn),
            ..inst.details()
        },
        Effects {
            funds,
            marks: vec![(rrn, mark)],
            locks: vec![locked.guard],
            ..Effects::default()
        },
    )
}
