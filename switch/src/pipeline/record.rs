//! Step 9, the journal: the request, its outcome and its effects in one durable commit;
//! then, and only then, the effects in memory and the answer for retransmissions.
//!
//! ```text
//!  Decision ─▶ RRN (reserved block) ─▶ auth code ─▶ TxnRecord + Effects::ops ─▶ commit
//!     ok   ─▶ Effects::apply (memory), Claim::complete (retransmissions), the answer
//!     fail ─▶ Effects::abandon (holds released), the claim dropped (a retransmission is
//!             processed afresh), 96 — nothing was applied
//!     stale (a read changed before the commit: another request, another node) ─▶ read it
//!             again, decide again, once; stale twice ─▶ 96 (funds gone ─▶ recorded as 51)
//! ```
//!
//! The one place a transaction is described for the journal: [`txn_record`].

use std::sync::Arc;
use std::time::Instant as Stopwatch;

use super::Switch;
use super::decision::{Answer, Decision, Decline, Details};
use super::request::Request;
use crate::clock::Timestamp;
use crate::fault_log::Fault;
use crate::journal::{JournalError, Op, Stale, TraceFirst, TxnRecord};
use crate::model::{AuthCode, ResponseCode, Rrn, TxnKind};
use crate::state::{Claim, Recorded, Session};

/// RRNs come from blocks reserved in the journal.
const RRN_BLOCK: u64 = 1_000;

/// The switch's reserved RRNs: taken one by one, a new block reserved when one runs out.
#[derive(Default)]
pub struct RrnBlocks {
    next: std::sync::Mutex<(u64, u64)>,
    refill: tokio::sync::Mutex<()>,
}

impl Switch {
    /// The next RRN.
    pub(crate) async fn next_rrn(&self) -> Result<Rrn, Decline> {
        let take = |b: &RrnBlocks| {
            let mut n = b.next.lock().ok()?;
            (n.0 < n.1).then(|| {
                n.0 += 1;
                Rrn::from_sequence(n.0 - 1)
            })
        };
        if let Some(r) = take(&self.rrns) {
            return Ok(r);
        }
        let _refilling = self.rrns.refill.lock().await;
        if let Some(r) = take(&self.rrns) {
            return Ok(r);
        }
        let first = self.journal.reserve("rrn", RRN_BLOCK).await.map_err(|e| {
            crate::fault_error!(Fault::RrnBlock, e, "cannot reserve RRNs");
            Decline::from(ResponseCode::SYSTEM_ERROR)
        })?;
        if let Ok(mut n) = self.rrns.next.lock() {
            *n = (first + 1, first + RRN_BLOCK);
        }
        Ok(Rrn::from_sequence(first))
    }
}

/// The journal's row for a request and its outcome.
pub fn txn_record(
    req: &Request<'_>,
    answer: &Answer,
    details: &Details,
    rrn: Rrn,
    digest: [u8; 32],
    now: Timestamp,
) -> Option<TxnRecord> {
    Some(TxnRecord {
        rrn,
        time: now,
        kind: req.kind,
        mti: req.mti(),
        tid: req.tid?,
        mid: req.mid.to_owned(),
        batch: req.batch,
        stan: req.stan,
        operator: req.operator.map(str::to_owned),
        card: details.card.clone(),
        amount_fen: req.amount(),
        fee_fen: details.fee_fen,
        fee_rule: details.fee_rule.clone(),
        currency: req.msg.text(49).map(str::to_owned),
        response_code: answer.code,
        auth_code: answer.auth_code,
        request_digest: digest,
        original_rrn: details.original_rrn,
        voided: false,
        reversed: false,
        refunded_fen: 0,
        completed: false,
        expired: false,
        tip_fen: 0,
        upstream: details.upstream.as_deref().cloned(),
        stand_in: details.stand_in,
        reply_48: answer.field48.clone(),
        balance_fen: answer.balance_fen,
    })
}

/// What recording a request came to: the answer, its RRN, whether a reply MAC is due, and
/// the masked card for the log line.
pub struct Answered {
    /// For the terminal.
    pub answer: Answer,
    /// Field 37.
    pub rrn: Option<Rrn>,
    /// Whether the reply carries a MAC.
    pub mac: bool,
    /// What the transaction's log line says beyond the request and the answer.
    pub log: LogFacts,
}

/// What a transaction's log line takes from its decision: the masked card, the fee, and
/// for a forwarded request the issuer and how it knows the request.
#[derive(Clone, Debug, Default)]
pub struct LogFacts {
    /// The masked PAN or payment code.
    pub card: Option<String>,
    /// The fee, fen.
    pub fee_fen: i64,
    /// The issuer it went to.
    pub issuer: Option<String>,
    /// The issuer's reference (MTI, STAN, transmission time).
    pub upstream: Option<String>,
}

impl LogFacts {
    fn of(details: &Details) -> Self {
        Self {
            card: details.card.as_ref().map(|c| c.masked_pan.clone()),
            fee_fen: details.fee_fen,
            issuer: details.upstream.as_ref().map(|u| u.issuer.clone()),
            upstream: details.upstream.as_ref().map(|u| u.to_column()),
        }
    }
}

/// What recording came to: an answer, or a read that went stale before the commit (the
/// request is decided again, once, on fresh reads; its claim comes back for that).
pub enum Recording<'s> {
    /// Journalled (or refused): the answer.
    Answered(Answered),
    /// Nothing was applied: `what` changed since it was read.
    Stale(Stale, Option<(Claim<'s>, [u8; 32])>),
}

impl Recording<'_> {
    /// The answer; a stale read that may not be retried is a malfunction.
    pub fn answered(self) -> Answered {
        match self {
            Self::Answered(a) => a,
            Self::Stale(..) => Answered {
                answer: Decline::from(ResponseCode::SYSTEM_ERROR).into(),
                rrn: None,
                mac: true,
                log: LogFacts::default(),
            },
        }
    }
}

impl Switch {
    /// Journals `decision` for `req` durably, then applies its effects and completes the
    /// claim. A journal failure turns it into `96` with nothing applied; a stale read comes
    /// back as [`Recording::Stale`] while `may_retry`, else is answered like a failure (or,
    /// for funds gone, `51`).
    pub(crate) async fn record<'s>(
        &'s self,
        req: &Request<'_>,
        decision: Decision<'s>,
        claim: Option<(Claim<'s>, [u8; 32])>,
        session: Option<&Session>,
        may_retry: bool,
        now: Timestamp,
    ) -> Recording<'s> {
        let mac = session.is_some();
        let Decision {
            mut answer,
            details,
            effects,
        } = decision;
        // Echoes are answered, never journalled.
        let facts = LogFacts::of(&details);
        if req.kind == Some(TxnKind::Echo) {
            return Recording::Answered(Answered {
                answer,
                rrn: None,
                mac,
                log: facts,
            });
        }
        let rrn = match details.rrn {
            Some(r) => Ok(r),
            None => self.next_rrn().await,
        };
        let rrn = match rrn {
            Ok(r) => r,
            Err(_) => {
                effects.abandon(self).await;
                return Recording::Answered(Answered {
                    answer: unrecorded(answer),
                    rrn: None,
                    mac,
                    log: facts,
                });
            }
        };
        let digest = match &claim {
            Some((_, d)) => *d,
            None => self.request_digest(req),
        };
        if answer.code.is_approved()
            && req.kind != Some(TxnKind::SignOn)
            && answer.auth_code.is_none()
        {
            // Six digits of the request's keyed digest (the HSM's HMAC of what it says):
            // unpredictable without the key, the same for a retransmission (which gets the
            // recorded answer anyway), and no second HMAC per approval.
            answer.auth_code = Some(AuthCode::digits(u32::from_be_bytes([
                digest[0], digest[1], digest[2], digest[3],
            ])));
        }
        // A sign-on carries no MAC, so anyone who knows a TID can send one: it replaces the
        // terminal's session (one row per TID) and adds no transaction row (its reply still
        // gets an RRN, as terminals expect).
        let txn = match req.kind {
            Some(TxnKind::SignOn) => None,
            _ => txn_record(req, &answer, &details, rrn, digest, now).map(Arc::new),
        };
        let mut ops: Vec<Op> = Vec::with_capacity(5);
        // With a shared journal: the session the request was authenticated under, and its
        // open batch, are still the terminal's (a sign-on or settlement at another node
        // makes this commit stale); and a request and its reversal, at two nodes at once,
        // see each other.
        if self.shared() {
            ops.extend(shared_conditions(req, &answer, session));
        }
        ops.extend(effects.conditions());
        if let Some(t) = &txn {
            ops.push(Op::Txn(Arc::clone(t)));
        }
        ops.extend(effects.ops(req.operator, self.rules.load().acquirer.pin_tries, now));
        let t = Stopwatch::now();
        let committed = self.journal.commit(ops).await;
        self.metrics
            .journal_commit
            .observe(t.elapsed().as_secs_f64());
        match committed {
            Ok(()) => {
                effects.apply(self, txn.as_deref().filter(|_| answer.code.is_approved()));
                if let Some((claim, digest)) = claim {
                    claim.complete(Recorded {
                        digest,
                        code: answer.code,
                        rrn: Some(rrn),
                        auth_code: answer.auth_code,
                        balance_fen: answer.balance_fen,
                        mac_reply: mac,
                        sign_on_again: answer.sign_on_again,
                        field48: answer.field48.clone(),
                    });
                }
                Recording::Answered(Answered {
                    answer,
                    rrn: Some(rrn),
                    mac,
                    log: facts,
                })
            }
            // A forwarded request is not sent again: its answer is 96 and its reversal goes.
            Err(JournalError::Stale(what))
                if may_retry && what != Stale::ArmedTakenOver && !effects.went_out() =>
            {
                effects.abandon(self).await;
                tracing::debug!(?what, "read went stale before the commit: deciding again");
                self.metrics.reject("stale_retry");
                Recording::Stale(what, claim)
            }
            Err(JournalError::Stale(Stale::Account { funds: true, .. }))
                if answer.code.is_approved() =>
            {
                effects.abandon(self).await;
                // The money the request was told was there went between its check and its
                // commit, twice: it is declined as it would be a moment later, and that is
                // what is recorded.
                tracing::info!(rrn = %rrn, "funds gone by the commit: declined 51");
                let declined = Decision::declined(
                    ResponseCode::INSUFFICIENT_FUNDS,
                    Details {
                        card: details.card,
                        rrn: Some(rrn),
                        ..Details::default()
                    },
                );
                Box::pin(self.record(req, declined, claim, session, false, now)).await
            }
            Err(e) => {
                effects.abandon(self).await;
                if let JournalError::Duplicate(_) = e {
                    // The journal has this key already (memory had forgotten it, or another
                    // node answered it): its first answer is the answer.
                    if let Some(r) = self.journalled_answer(req, digest).await {
                        return Recording::Answered(r);
                    }
                }
                crate::fault_error!(
                    Fault::Unrecorded,
                    e,
                    "journal commit failed: answering 96, nothing applied"
                );
                Recording::Answered(Answered {
                    answer: unrecorded(answer),
                    rrn: Some(rrn),
                    mac,
                    log: facts,
                })
            }
        }
    }

    /// Waits (up to `most`) until the journal holds an answer to `req`'s key: another node
    /// is working on the same request.
    pub(crate) async fn await_journalled(&self, req: &Request<'_>, most: std::time::Duration) {
        let Some(key) = req.key() else { return };
        let until = tokio::time::Instant::now() + most;
        while tokio::time::Instant::now() < until {
            let rows = self.journal.find_trace(key.tid, key.batch, key.stan).await;
            if rows.is_ok_and(|r| r.iter().any(|t| t.mti.as_u16() == key.mti)) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The journalled answer to a request with the same key: the same again if the
    /// content is, else `94`.
    async fn journalled_answer(&self, req: &Request<'_>, digest: [u8; 32]) -> Option<Answered> {
        let key = req.key()?;
        let rows = self
            .journal
            .find_trace(key.tid, key.batch, key.stan)
            .await
            .ok()?;
        let first = rows.iter().find(|t| t.mti.as_u16() == key.mti)?;
        let r = Recorded::from_record(first);
        Some(if r.digest == digest {
            Answered {
                rrn: r.rrn,
                mac: r.mac_reply,
                answer: replayed(&r),
                log: LogFacts::default(),
            }
        } else {
            Answered {
                answer: Decline::from(ResponseCode::DUPLICATE).into(),
                rrn: None,
                mac: true,
                log: LogFacts::default(),
            }
        })
    }
}

/// What a commit relies on when other nodes share the journal: the session (and open
/// batch) the request was authenticated under; for an approved 0200 that can be reversed,
/// that no reversal of its trace came first (at another node).
fn shared_conditions(req: &Request<'_>, answer: &Answer, session: Option<&Session>) -> Vec<Op> {
    let mut ops = Vec::with_capacity(3);
    let (Some(tid), Some(kind)) = (req.tid, req.kind) else {
        return ops;
    };
    if let Some(s) = session {
        ops.push(Op::CheckSession {
            tid,
            session_id: s.session_id,
            batch: match kind {
                TxnKind::Reversal | TxnKind::BatchUpload => None,
                _ => Some(s.batch),
            },
        });
    }
    if answer.code.is_approved()
        && matches!(req.mti().as_u16(), 100 | 200)
        && kind != TxnKind::Balance
    {
        ops.push(Op::Trace {
            tid,
            batch: req.batch,
            stan: req.stan,
            first: TraceFirst::Original,
        });
    }
    ops
}

/// The answer to a request that could not be journalled: 96, and nothing that says
/// otherwise (no keys, no settlement result, no auth code).
fn unrecorded(answer: Answer) -> Answer {
    Answer {
        code: ResponseCode::SYSTEM_ERROR,
        auth_code: None,
        field48: None,
        sign_on: None,
        balance_fen: None,
        ..answer
    }
}

/// The answer recorded for a request, given again to its retransmission.
pub fn replayed(r: &Recorded) -> Answer {
    Answer {
        code: r.code,
        sign_on_again: r.sign_on_again,
        auth_code: r.auth_code,
        balance_fen: r.balance_fen,
        field48: r.field48.clone(),
        sign_on: None,
    }
}
