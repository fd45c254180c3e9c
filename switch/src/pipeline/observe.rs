//! The last step: what a request came to, counted and told. Its metrics (by kind and
//! code, its latency), the status page's last declines (masked cards only), and its log
//! line (rate-limited for sign-ons and echoes, which anyone can send).
//!
//! ```text
//!  answered ─▶ switch_transactions_total{kind,rc}, switch_request_duration_seconds{kind}
//!           ─▶ declined? last declines (time, kind, TID, masked card, amount, code, reason)
//!           ─▶ "transaction" log line: kind mti tid mid batch stan operator pan amount fee
//!                                      rc reason rrn auth_code issuer upstream latency
//! ```

use std::time::Duration;

use super::Switch;
use super::record::LogFacts;
use super::request::Request;
use crate::clock::Timestamp;
use crate::metrics::Declined;
use crate::model::{AuthCode, ResponseCode, Rrn, TxnKind};
use crate::security_log::{Admit, Event};

/// What a request came to, for its metrics and log line.
pub struct Outcome {
    /// The answer's code.
    pub code: ResponseCode,
    /// Field 37, when it got one.
    pub rrn: Option<Rrn>,
    /// Field 38, when approved.
    pub auth_code: Option<AuthCode>,
    /// What the decision adds.
    pub facts: LogFacts,
    /// Frame in to reply out.
    pub latency: Duration,
}

impl Switch {
    /// Counts and logs `req`'s outcome.
    pub(crate) fn observe(
        &self,
        req: &Request<'_>,
        outcome: Outcome,
        peer: Option<std::net::IpAddr>,
        now: Timestamp,
    ) {
        let Outcome {
            code,
            rrn,
            auth_code,
            facts,
            latency,
        } = outcome;
        let kind = req.label();
        self.count(kind, code);
        self.metrics.request(kind, latency);
        let unauthenticated = matches!(req.kind, Some(TxnKind::SignOn | TxnKind::Echo));
        if !code.is_approved() && !unauthenticated {
            self.metrics.last_declines.push(Declined {
                time_utc: now.iso_utc(),
                kind,
                tid: self
                    .rules
                    .load()
                    .terminals
                    .lookup(req.tid_text)
                    .map_or_else(|| "-".to_owned(), |_| req.tid_text.to_owned()),
                pan: facts.card.clone().unwrap_or_else(|| "-".into()),
                amount_fen: req.amount_fen,
                rc: code.as_str().to_owned(),
                reason: code.reason(),
            });
        }
        // Sign-ons and echoes carry no MAC: anyone can send them, so their lines are
        // rate-limited like other unauthenticated events.
        if unauthenticated
            && !matches!(
                self.security_log.admit(Event::SignOn, peer, &self.metrics),
                Admit::Log { .. }
            )
        {
            return;
        }
        tracing::info!(
            kind,
            mti = req.msg.mti().as_str(),
            tid = req.tid_text,
            mid = req.mid,
            batch = %req.batch,
            stan = %req.stan,
            operator = req.operator.unwrap_or("-"),
            pan = facts.card.as_deref().unwrap_or("-"),
            amount_fen = req.amount_fen,
            fee_fen = facts.fee_fen,
            rc = code.as_str(),
            reason = code.reason(),
            rrn = rrn.as_ref().map_or("-", |r| r.as_str()),
            auth_code = auth_code.as_ref().map_or("-", |a| a.as_str()),
            issuer = facts.issuer.as_deref().unwrap_or("-"),
            upstream = facts.upstream.as_deref().unwrap_or("-"),
            latency_us = latency.as_micros() as u64,
            "transaction"
        );
    }
}
