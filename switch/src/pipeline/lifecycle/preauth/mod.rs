//! Pre-authorisation (预授权) and what follows it: hotels, car rental and restaurants hold
//! an amount on the card first and take the final amount later.
//!
//! ```text
//!  0100 60.1=10 pre-auth ──▶ hold(amount): available −= amount, nothing taken, 38 = auth code
//!      │
//!      ├─ 0100 60.1=11 pre-auth void ─────▶ the hold goes
//!      ├─ 0200 60.1=20 completion ────────▶ debit(amount ≤ tolerance × held), the hold goes,
//!      │  (0220 60.1=24 offline advice)       MDR fee; a sale in settlement totals
//!      │      └─ 0200 60.1=21 completion void ─▶ the debit and fee back, the hold again
//!      └─ uncompleted for `preauth_expiry_days` ─▶ expiry job: the hold goes (journalled)
//! ```
//!
//! A completion or a pre-authorisation's void names the pre-authorisation by the card,
//! the auth code (38) and field 61: original batch (61.1), trace (61.2) and date MMDD
//! (61.3). CUP terminals fill 61.1 and 61.2 with zeros when the pre-authorisation was made
//! on another terminal or day; then the card, the auth code, the merchant and the date
//! decide. No cardholder PIN is needed after the pre-authorisation (one that is sent is
//! verified).
//!
//! | step | module |
//! | --- | --- |
//! | the hold | [`hold`] |
//! | its void | [`release`] |
//! | completion | [`complete`] |
//! | completion void | [`complete_void`] |
//! | lapsed holds | [`expiry`] |

use super::Locked;
use crate::journal::{Mark, PreauthQuery};
use crate::model::{AuthCode, ResponseCode};
use crate::pipeline::Switch;
use crate::pipeline::card::Instrument;
use crate::pipeline::decision::{Decision, Details};
use crate::pipeline::effects::{Effects, FundsMove};
use crate::pipeline::request::Request;

pub mod complete;
pub mod complete_void;
pub mod expiry;
pub mod hold;
pub mod release;

/// Finds and locks the pre-authorisation a completion or void names: this card's, with
/// the auth code in 38, at this merchant, matching what 61 says (zeros say nothing). It
/// must still hold its money (else `12`); one never made is `25`.
pub async fn find<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    inst: &Instrument,
) -> Result<Locked<'s>, Decision<'s>> {
    let auth_code = req
        .msg
        .text(38)
        .and_then(AuthCode::parse)
        .ok_or_else(|| inst.decline(ResponseCode::FORMAT_ERROR))?;
    let rows = sw
        .journal
        .preauths(PreauthQuery::Card {
            account: inst.account(),
            auth_code,
        })
        .await
        .map_err(|e| {
            crate::fault_error!(
                crate::fault_log::Fault::JournalRead,
                e,
                "journal look-up failed"
            );
            inst.decline(ResponseCode::SYSTEM_ERROR)
        })?;
    let given = |path: &str| req.subfield(path).filter(|n| *n != 0);
    let (batch, stan) = (given("61.1"), given("61.2"));
    let mmdd = req.subfield_text("61.3").filter(|d| d != "0000");
    let found = rows.iter().rev().find(|t| {
        t.mid == req.mid
            && batch.is_none_or(|b| u64::from(t.batch.0) == b && Some(t.tid) == req.tid)
            && stan.is_none_or(|s| u64::from(t.stan.0) == s)
            && mmdd.as_deref().is_none_or(|d| t.time.cst_mmdd() == d)
    });
    let rrn = found
        .map(|t| t.rrn)
        .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
    let locked = sw
        .lock_original(rrn)
        .await
        .map_err(|d| inst.decline(d))?
        .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?;
    if !locked.original.holds() {
        // Voided, reversed, completed already, or lapsed.
        return Err(inst.decline(ResponseCode::INVALID_TXN));
    }
    Ok(locked)
}

/// An approved follow-up of the pre-authorisation under `locked`: `mark` on it, `funds` on
/// the card, the row naming it, the answer carrying its auth code. `details` adds a fee.
fn approve<'s>(
    inst: &Instrument,
    locked: Locked<'s>,
    mark: Mark,
    funds: FundsMove<'s>,
    details: Details,
) -> Decision<'s> {
    let (rrn, auth_code) = (locked.original.rrn, locked.original.auth_code);
    let mut d = Decision::approved(
        Details {
            original_rrn: Some(rrn),
            card: Some(inst.card.clone()),
            ..details
        },
        Effects {
            funds: Some(funds),
            marks: vec![(rrn, mark)],
            locks: vec![locked.guard],
            ..Effects::default()
        },
    );
    d.answer.auth_code = auth_code;
    d
}
