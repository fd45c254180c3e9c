//! Stand-in: the issuer cannot be reached; a sale within its limits (per sale, per card
//! per day, China Standard Time) is approved by the switch with an auth code starting `S`,
//! and an 0220 advice is queued for the issuer.
//!
//! ```text
//!  sale, issuer unreachable ─▶ enabled? ≤ max_txn_fen? card's day + amount ≤ max_card_day_fen?
//!      ─▶ yes: approved (S-code), advice journalled and queued; the day's total held until then
//!      └▶ no: 91
//! ```
//!
//! The switch cannot check a remote card's PIN in stand-in: the limits are the protection.

use std::sync::Arc;

use super::Switch;
use super::card::Instrument;
use super::decision::{Answer, Decision, Details};
use super::effects::Effects;
use super::request::Request;
use super::terminal::Authenticated;
use crate::clock::Timestamp;
use crate::issuer::Issuer;
use crate::issuer::message::{ADVICE, Upstream};
use crate::journal::{Condition, LockKey, Op, UpstreamRef};
use crate::model::{AuthCode, ResponseCode, Rrn, SafKind, SafState};
use crate::saf::Entry;

/// Approves `req` in stand-in for `issuer`, or answers `91`.
#[allow(clippy::too_many_arguments)]
pub async fn approve<'s>(
    sw: &'s Switch,
    issuer: &Arc<Issuer>,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    inst: &Instrument,
    up: &Upstream<'_>,
    mut uref: UpstreamRef,
    rrn: Rrn,
    now: Timestamp,
) -> Decision<'s> {
    let details = Details {
        rrn: Some(rrn),
        ..inst.details()
    };
    let unavailable = || Decision::declined(ResponseCode::ISSUER_UNAVAILABLE, details.clone());
    let limits = &issuer.stand_in;
    if !limits.enabled || req.amount_fen > limits.max_txn_fen {
        return unavailable();
    }
    let limit = i64::try_from(limits.max_card_day_fen).unwrap_or(i64::MAX);
    let day = now.cst_day_number();
    let mut relies_on = Vec::new();
    // Memory's total decides alone; with a shared journal the journal's does.
    let mut memory_limit = limit;
    if sw.shared() {
        // Other nodes stand in for the same card: the journal's total for the day counts,
        // and the commit checks it again under the card's day lock.
        let (account, date) = (inst.account(), now.cst_date());
        let d = date.clone();
        let used = match sw
            .journal
            .read(move |b| b.stand_in_used(&account, &d))
            .await
        {
            Ok(u) => u,
            Err(e) => {
                crate::fault_error!(
                    crate::fault_log::Fault::JournalRead,
                    e,
                    "cannot read stand-in totals"
                );
                return unavailable();
            }
        };
        if used + req.amount() > limit {
            tracing::info!(issuer = %issuer.name, "stand-in refused: the card's daily limit");
            return unavailable();
        }
        memory_limit = i64::MAX;
        relies_on.push(Op::Lock(LockKey::stand_in(&account, &date)));
        relies_on.push(Op::Assert(Condition::StandInWithin {
            account,
            date,
            amount_fen: req.amount(),
            limit_fen: limit,
        }));
    }
    let Some(hold) = sw
        .state
        .stand_in
        .hold(inst.account(), day, req.amount(), memory_limit)
    else {
        tracing::info!(issuer = %issuer.name, "stand-in refused: the card's daily limit");
        return unavailable();
    };
    uref.mti = ADVICE;
    let advice = Upstream {
        pin: None,
        track2: None,
        icc_hex: None,
        ..up.clone()
    };
    let Some((entry, record)) = Entry::new(
        sw.hsm.inner(),
        issuer,
        format!("{rrn}:advice"),
        SafKind::Advice,
        &advice.builder(ADVICE, now),
        Some(rrn),
        SafState::Pending,
        now,
    ) else {
        return Decision::declined(ResponseCode::SYSTEM_ERROR, details);
    };
    let d = sw.hsm.digest("stand-in", rrn.as_str().as_bytes());
    let (fee_fen, fee_rule) = at.rules.fee(inst, at.range, req.amount_fen);
    tracing::warn!(issuer = %issuer.name, "issuer unreachable: approved in stand-in; advice queued");
    Decision {
        answer: Answer {
            auth_code: Some(AuthCode::stand_in(u32::from_be_bytes([
                d[0], d[1], d[2], d[3],
            ]))),
            ..Answer::approved()
        },
        details: Details {
            upstream: Some(Box::new(uref)),
            stand_in: true,
            fee_fen,
            fee_rule,
            ..details
        },
        effects: Effects {
            queued: vec![(Arc::clone(issuer), entry, record)],
            stand_in: Some((Arc::clone(issuer), hold)),
            relies_on,
            ..Effects::default()
        },
    }
}
