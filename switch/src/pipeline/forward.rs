//! Step 8 for cards of a remote issuer: translate, forward, relay the answer.
//!
//! ```text
//!  request ─▶ (void/refund/completion/pre-authorisation void/completion void: find and lock
//!             the original, as on-us) ─▶ PIN TPK → issuer ZPK (HSM)
//!          ─▶ journal: reversal armed ─▶ issuer ─┬─ reply: 39/38/54 to the terminal; reversal cancelled
//!                                                ├─ no reply in time: 98; reversal pending (sent by the queue)
//!                                                └─ not sent (issuer unreachable): stand-in within limits, or 91
//! ```

use std::sync::Arc;

use hsm_sim::EncryptedPinBlock;

use super::card::{Instrument, pan_of};
use super::decision::{Answer, Decision, Decline, Details};
use super::effects::{Armed, Effects};
use super::lifecycle::reversal::reopen;
use super::lifecycle::{preauth, refund, void};
use super::request::Request;
use super::terminal::Authenticated;
use super::{Switch, hsm_failure, stand_in};
use crate::clock::Timestamp;
use crate::issuer::message::{ADVICE, AUTHORISATION, FINANCIAL, IssuerReply, Upstream};
use crate::issuer::{Issuer, LinkError};
use crate::journal::{JournalError, Mark, Op, UpstreamRef};
use crate::model::{ResponseCode, Rrn, SafKind, SafState, Stan, TxnKind};
use crate::saf::Entry;
use crate::state::Session;

/// The upstream STAN of a forwarded request, from its RRN. RRNs come from blocks reserved
/// in the journal, so they never repeat, not even across a restart in the same second; a
/// STAN from a counter started from the clock did, and an issuer that knows a transaction
/// by STAN and transmission time mistook the new request for the old one (whose armed
/// reversal then reversed the new approval).
fn upstream_stan(rrn: &Rrn) -> Stan {
    Stan(rrn.number().map_or(1, |n| (n % 999_999) as u32 + 1))
}

/// Field 53 for an ISO format 0 PIN block under a double-length key.
const PIN_CONTROL: &str = "2600000000000000";

/// What a forwarded void, refund or pre-authorisation's follow-up found at the switch
/// first.
enum Lifecycle<'s> {
    Void(super::lifecycle::Locked<'s>),
    Refund(refund::Plan<'s>),
    /// The changes are known before the issuer answers (a completion, a pre-authorisation
    /// void, a completion void): applied if it approves.
    Prepared(Box<Prepared<'s>>),
}

/// A follow-up's changes, known before the issuer answers.
struct Prepared<'s> {
    original: crate::state::Original,
    details: Details,
    effects: Effects<'s>,
}

impl<'s> Lifecycle<'s> {
    fn original(&self) -> &crate::state::Original {
        match self {
            Self::Void(l) => &l.original,
            Self::Refund(p) => p.original(),
            Self::Prepared(p) => &p.original,
        }
    }

    fn effects(self) -> (Details, Effects<'s>) {
        match self {
            Self::Void(l) => void::effects(l, None),
            Self::Refund(p) => p.effects(false),
            Self::Prepared(p) => (p.details, p.effects),
        }
    }

    /// A pre-authorisation's follow-up: `mark` on it, under its lock.
    fn on_preauth(locked: super::lifecycle::Locked<'s>, mark: crate::journal::Mark) -> Self {
        let original = locked.original.clone();
        Self::Prepared(Box::new(Prepared {
            details: Details {
                original_rrn: Some(original.rrn),
                ..Details::default()
            },
            effects: Effects {
                marks: vec![(original.rrn, mark)],
                locks: vec![locked.guard],
                ..Effects::default()
            },
            original,
        }))
    }

    /// A completion void: the completion voided, its pre-authorisation open again.
    async fn completion_void(
        sw: &'s Switch,
        locked: super::lifecycle::Locked<'s>,
    ) -> Result<Self, Decline> {
        let original = locked.original.clone();
        let (details, mut effects) = void::effects(locked, None);
        if let Some(pre) = original.sale {
            reopen(sw, pre, &mut effects).await?;
        }
        Ok(Self::Prepared(Box::new(Prepared {
            original,
            details,
            effects,
        })))
    }
}

/// Forwards a sale, balance inquiry, void, refund, pre-authorisation, its void, a
/// completion or a completion void to the card's issuer.
#[allow(clippy::too_many_arguments)]
pub async fn forward<'s>(
    sw: &'s Switch,
    kind: TxnKind,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    session: &Session,
    inst: &Instrument,
    issuer: &Arc<Issuer>,
    now: Timestamp,
) -> Decision<'s> {
    match forward_inner(sw, kind, req, at, session, inst, issuer, now).await {
        Ok(d) | Err(d) => d,
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward_inner<'s>(
    sw: &'s Switch,
    kind: TxnKind,
    req: &Request<'_>,
    at: &Authenticated<'_>,
    session: &Session,
    inst: &Instrument,
    issuer: &Arc<Issuer>,
    now: Timestamp,
) -> Result<Decision<'s>, Decision<'s>> {
    let (processing, mti) = match kind {
        TxnKind::Sale => ("000000", FINANCIAL),
        TxnKind::Balance => ("310000", FINANCIAL),
        TxnKind::Void | TxnKind::CompletionVoid => ("020000", FINANCIAL),
        TxnKind::Refund => ("200000", ADVICE),
        TxnKind::PreAuth => ("030000", AUTHORISATION),
        TxnKind::PreAuthVoid => ("200000", AUTHORISATION),
        TxnKind::Completion => ("000000", issuer.completion_mti),
        _ => return Err(inst.decline(ResponseCode::INVALID_TXN)),
    };
    // Voids, refunds and a pre-authorisation's follow-ups find their original as on-us
    // ones do (and check it alike); it must have gone to this issuer, and field 90 names
    // it there.
    let lifecycle = match kind {
        TxnKind::Void => Some(Lifecycle::Void(
            void::check(sw, req, inst, session, TxnKind::Void).await?,
        )),
        TxnKind::Refund => Some(Lifecycle::Refund(
            refund::check(sw, &at.rules.acquirer, req, inst, now).await?,
        )),
        TxnKind::PreAuthVoid | TxnKind::Completion => {
            let locked = preauth::find(sw, req, inst).await?;
            let held = locked.original.amount_fen;
            if kind == TxnKind::PreAuthVoid && req.amount() != held {
                return Err(inst.decline(ResponseCode::AMOUNT_MISMATCH));
            }
            if kind == TxnKind::Completion
                && req.amount() > at.rules.acquirer.completion_limit_fen(held)
            {
                return Err(inst.decline(ResponseCode::EXCEEDS_ORIGINAL));
            }
            let mark = match kind {
                TxnKind::Completion => Mark::Complete,
                _ => Mark::Void,
            };
            Some(Lifecycle::on_preauth(locked, mark))
        }
        TxnKind::CompletionVoid => {
            let locked = void::check(sw, req, inst, session, kind).await?;
            Some(
                Lifecycle::completion_void(sw, locked)
                    .await
                    .map_err(|d| inst.decline(d))?,
            )
        }
        _ => None,
    };
    // A completion and a pre-authorisation void name the issuer's code of the hold.
    let original_auth = match kind {
        TxnKind::Completion | TxnKind::PreAuthVoid => lifecycle
            .as_ref()
            .and_then(|l| l.original().auth_code)
            .map(|a| a.as_str().trim_end().to_owned()),
        _ => None,
    };
    let original = match &lifecycle {
        Some(l) => Some(
            l.original()
                .upstream
                .clone()
                .filter(|u| u.issuer == issuer.name)
                .ok_or_else(|| inst.decline(ResponseCode::NO_ORIGINAL))?,
        ),
        None => None,
    };
    let rrn = sw.next_rrn().await.map_err(|d| inst.decline(d))?;
    let mut details = Details {
        rrn: Some(rrn),
        ..inst.details()
    };
    let declined = |d: Decline, details: &Details| Decision::declined(d, details.clone());
    let pan =
        pan_of(req.msg).ok_or_else(|| declined(ResponseCode::INVALID_CARD.into(), &details))?;
    let pin = match req.msg.bytes(52) {
        Some(block) => Some(
            translate_pin(sw, issuer, session, block, pan.as_str())
                .await
                .map_err(|d| declined(d, &details))?,
        ),
        None => None,
    };
    let uref = UpstreamRef {
        issuer: issuer.name.clone(),
        mti,
        stan: upstream_stan(&rrn),
        time: now.transmission_time(),
    };
    let rrn_text = rrn.to_string();
    let up = Upstream {
        processing,
        pan: Some(pan.as_str()),
        track2: req.msg.digits(35).map(|d| d.to_string()),
        amount_fen: (kind != TxnKind::Balance).then_some(req.amount_fen),
        stan: uref.stan,
        time: uref.time.clone(),
        expiry: req.msg.digits(14).map(|d| d.to_string()),
        entry_mode: req.msg.digits(22).map(|d| d.to_string()),
        condition: req.msg.digits(25).map(|d| d.to_string()),
        acquirer_id: &issuer.acquirer_id,
        rrn: &rrn_text,
        tid: req.tid_text,
        mid: req.mid,
        currency: req
            .msg
            .text(49)
            .unwrap_or(at.rules.acquirer.currency.as_str()),
        pin,
        icc_hex: req.msg.bytes(55).map(hex::encode_upper),
        original: original.as_ref().map(|o| o.field90(&issuer.acquirer_id)),
        auth_code: original_auth,
    };
    // Nothing can go out (no line up, the breaker open, too many waiting): answered at
    // once, and nothing written for a request never sent.
    if !issuer.can_send() {
        if issuer.busy() {
            issuer.note_busy();
        }
        if kind == TxnKind::Sale {
            return Ok(stand_in::approve(sw, issuer, req, at, inst, &up, uref, rrn, now).await);
        }
        return Err(declined(ResponseCode::ISSUER_UNAVAILABLE.into(), &details));
    }
    // Money-moving requests arm their reversal durably before they leave: if the switch
    // stops before the answer is journalled, the reversal goes out after the restart.
    let armed = if kind == TxnKind::Balance {
        None
    } else {
        let Some((entry, record)) = Entry::new(
            sw.hsm.inner(),
            issuer,
            format!("{rrn}:timeout-reversal"),
            SafKind::Reversal,
            &up.reversal(&uref, now),
            Some(rrn),
            SafState::Armed,
            now,
        ) else {
            return Err(declined(ResponseCode::SYSTEM_ERROR.into(), &details));
        };
        let mut arming = vec![Op::PutSaf(Box::new(record))];
        // With a shared journal another node may have the same request on its way (a
        // terminal's retransmission to another node): only one sends it.
        let claim = req.key().filter(|_| sw.shared());
        if let Some(key) = claim {
            arming.insert(0, Op::Claim(key));
        }
        match sw.journal.commit(arming).await {
            Ok(()) => {}
            Err(JournalError::Duplicate(_)) if claim.is_some() => {
                tracing::info!(tid = req.tid_text, stan = %req.stan, "the same request is on its way at another node: waiting for its answer");
                sw.await_journalled(req, issuer.timeout + std::time::Duration::from_secs(2))
                    .await;
                // Recording this finds the other node's answer and gives it again.
                return Err(declined(ResponseCode::SYSTEM_ERROR.into(), &details));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot arm a reversal: not forwarded");
                return Err(declined(ResponseCode::SYSTEM_ERROR.into(), &details));
            }
        }
        Some(entry)
    };
    let arm = |then: SafState, send_if_unrecorded: bool| {
        armed.clone().map(|entry| {
            Box::new(Armed {
                issuer: Arc::clone(issuer),
                entry,
                then,
                send_if_unrecorded,
            })
        })
    };
    let sent = issuer.exchange(&sw.hsm, up.builder(mti, now)).await;
    let reply = sent.and_then(|frame| {
        codec::decode(issuer.dialect, &frame)
            .ok()
            .as_ref()
            .and_then(IssuerReply::read)
            .ok_or(LinkError::Timeout)
    });
    match reply {
        Ok(r) => {
            // Journalled with the answer, whatever it is: the issuer's reference.
            details.upstream = Some(Box::new(uref));
            let armed = arm(SafState::Cancelled, true);
            if !r.code.is_approved() {
                tracing::info!(issuer = %issuer.name, rc = %r.code, "issuer declined");
                let mut d = declined(r.code.for_terminal().into(), &details);
                d.effects.armed = armed;
                return Err(d);
            }
            let (lifecycle_details, mut effects) = match lifecycle {
                Some(l) => l.effects(),
                None => (Details::default(), Effects::default()),
            };
            details.original_rrn = lifecycle_details.original_rrn;
            (details.fee_fen, details.fee_rule) =
                if matches!(kind, TxnKind::Sale | TxnKind::Completion) {
                    at.rules.fee(inst, at.range, req.amount_fen)
                } else {
                    (lifecycle_details.fee_fen, lifecycle_details.fee_rule)
                };
            effects.armed = armed;
            Ok(Decision {
                answer: Answer {
                    auth_code: r.auth_code,
                    balance_fen: r.balance_fen,
                    ..Answer::approved()
                },
                details,
                effects,
            })
        }
        Err(LinkError::Timeout) => {
            tracing::warn!(issuer = %issuer.name, stan = %uref.stan, "issuer time-out: answering 98 and reversing");
            details.upstream = Some(Box::new(uref));
            let mut d = declined(ResponseCode::ISSUER_TIMEOUT.into(), &details);
            d.effects.armed = arm(SafState::Pending, true);
            Err(d)
        }
        Err(not_sent) => {
            let armed = arm(SafState::Cancelled, false);
            let code = match not_sent {
                LinkError::Unavailable if kind == TxnKind::Sale => {
                    let mut d =
                        stand_in::approve(sw, issuer, req, at, inst, &up, uref, rrn, now).await;
                    d.effects.armed = armed;
                    return Ok(d);
                }
                LinkError::Unavailable => ResponseCode::ISSUER_UNAVAILABLE,
                _ => ResponseCode::SYSTEM_ERROR,
            };
            let mut d = declined(code.into(), &details);
            d.effects.armed = armed;
            Err(d)
        }
    }
}

/// The PIN block from the terminal's TPK to the issuer's ZPK, with field 53.
async fn translate_pin(
    sw: &Switch,
    issuer: &Issuer,
    session: &Session,
    block: &[u8],
    pan: &str,
) -> Result<(Vec<u8>, String), Decline> {
    let block =
        EncryptedPinBlock::new(block).map_err(|_| Decline::from(ResponseCode::FORMAT_ERROR))?;
    match sw
        .hsm
        .translate_pin(&session.tpk, &issuer.zpk, &block, pan)
        .await
    {
        Ok(b) => Ok((b.as_bytes().to_vec(), PIN_CONTROL.to_owned())),
        // The block does not hold a PIN for this card: as a wrong PIN.
        Err(crate::hsm::HsmError::Local(hsm_sim::Error::BadPinBlock | hsm_sim::Error::BadPin)) => {
            Err(ResponseCode::WRONG_PIN.into())
        }
        // A network HSM that cannot read the PIN block: as a wrong PIN too.
        Err(crate::hsm::HsmError::Refused(code)) if matches!(code.as_str(), "20" | "24") => {
            Err(ResponseCode::WRONG_PIN.into())
        }
        Err(e) => Err(hsm_failure(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_stan;
    use crate::model::{Rrn, Stan};

    #[test]
    fn upstream_stans_follow_the_rrns() {
        // Consecutive RRNs (as a restarted switch's next block gives) never repeat a STAN
        // within 999,999 requests; STANs stay within 000001-999999.
        let s = |n: &str| upstream_stan(&Rrn::parse(n).unwrap());
        let first = s("000000001000");
        assert_eq!(s("000000001001"), Stan(first.0 + 1));
        assert_eq!(s("000000999998"), Stan(999_999));
        assert_eq!(s("000000999999"), Stan(1));
        assert!((1..=999_999).contains(&s("999999999999").0));
    }
}
