//! Answers given without processing a request: refused before anything is claimed (it did
//! not authenticate), refused because its connection is busy, refused because the journal
//! cannot take it, and the answer to a request whose task panicked.
//!
//! ```text
//!  forged or unknown ─▶ counted, logged at a bounded rate ─▶ its code alone (97, 03, A0, 30)
//!  too many in flight ─▶ 96            journal not ready ─▶ 96 (echoes still answered)
//!  task panicked      ─▶ its journalled answer if there is one, else 96
//! ```

use super::decision::{Answer, Decline};
use super::record::{Answered, replayed};
use super::request::Request;
use super::terminal::Refused;
use super::{Handled, Switch};
use crate::metrics::ReasonLabel;
use crate::model::ResponseCode;

impl Switch {
    /// An answer given without a journal record.
    pub(crate) fn unrecorded(&self, code: ResponseCode, mac: bool) -> Answered {
        Answered {
            answer: Decline::from(code).into(),
            rrn: None,
            mac,
            log: super::record::LogFacts::default(),
        }
    }

    /// A request that failed authentication: counted, logged at a bounded rate, answered
    /// with its code alone, nothing recorded.
    pub(crate) async fn refuse(
        &self,
        req: &Request<'_>,
        refused: Refused,
        peer: Option<std::net::IpAddr>,
    ) -> Handled {
        let now = self.clock.now();
        let d = self.refusal(req, refused, peer);
        self.count(req.label(), d.code);
        self.reply(req, &Answer::from(d), None, None, now).await
    }

    /// What a refused request is answered, counted and logged.
    fn refusal(
        &self,
        req: &Request<'_>,
        refused: Refused,
        peer: Option<std::net::IpAddr>,
    ) -> Decline {
        if req.kind.is_none() {
            // Not a kind the switch serves, and not authenticated either: 12, as to anyone.
            return ResponseCode::INVALID_TXN.into();
        }
        self.metrics
            .auth_failures
            .get_or_create(&ReasonLabel {
                reason: refused.event.as_str(),
            })
            .inc();
        // A TID is logged only when it is one of ours (a peer's junk is not echoed).
        let known = self.rules.load().terminals.lookup(req.tid_text).is_some();
        let tid = known.then_some(req.tid_text);
        self.security_log.warn(
            refused.event,
            peer,
            &self.metrics,
            tid,
            "request refused: not authenticated",
        );
        refused.decline
    }

    /// The answer to a request whose task panicked: its recorded outcome when it was
    /// journalled (the terminal hears what happened to its money), else `96`.
    pub async fn after_panic(&self, frame: &[u8]) -> Handled {
        let Ok(msg) = codec::decode(self.dialect, frame) else {
            return Handled::Close("panic");
        };
        let Ok(req) = Request::parse(&msg) else {
            return self.bare_reply(&msg, "unknown", ResponseCode::SYSTEM_ERROR.into());
        };
        let recorded = req.key().and_then(|k| self.state.recent.answered(&k));
        match recorded {
            Some(r) => {
                let tak = r
                    .mac_reply
                    .then(|| {
                        let mac = self
                            .rules
                            .load()
                            .terminals
                            .lookup(req.tid_text)?
                            .mac_algorithm();
                        let s = self.state.sessions.get(&req.tid?)?;
                        Some((s.tak.clone(), mac))
                    })
                    .flatten();
                self.reply(
                    &req,
                    &replayed(&r),
                    r.rrn,
                    tak.as_ref().map(|(k, a)| (k, *a)),
                    self.clock.now(),
                )
                .await
            }
            None => self.bare_reply(&msg, req.label(), ResponseCode::SYSTEM_ERROR.into()),
        }
    }

    /// The answer to a request refused because its connection has too many in flight: `96`
    /// when it can be read, else nothing.
    pub fn refuse_busy(&self, frame: &[u8]) -> Handled {
        match codec::decode(self.dialect, frame) {
            Ok(msg) if !msg.mti().is_response() => {
                self.bare_reply(&msg, "unknown", ResponseCode::SYSTEM_ERROR.into())
            }
            _ => Handled::Ignore,
        }
    }
}
