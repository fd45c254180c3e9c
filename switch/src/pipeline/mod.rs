//! The routing core: one request through the steps of DESIGN.md §3, in order, in
//! [`Switch::serve`] and [`Switch::process`]. Each step is a function of its own module that
//! takes what it needs and returns a value or a decision to stop; the decision (answer,
//! journal facts, effects) is journalled, then applied, then answered.
//!
//! ```text
//! frame ─▶ decode ─▶ classify (request) ─▶ terminal, session, MAC (terminal)
//!       ─▶ duplicate claim (duplicate) ─▶ batch ─▶ amount, card (card) ─▶ PIN (pin)
//!       ─▶ authorise (onus) │ forward (forward, stand_in) │ void, refund, reversal,
//!          settle, upload (lifecycle)
//!       ─▶ journal, then effects (record, effects) ─▶ reply + MAC (reply) ─▶ frame
//! ```
//!
//! | module | step |
//! | --- | --- |
//! | [`request`] | 1: what the request is, its common fields |
//! | [`terminal`] | 2–3: terminal, merchant, session, MAC; sign-on; the batch |
//! | [`duplicate`] | 4: retransmissions and conflicts |
//! | [`card`] | 5: amount, PAN or payment code, route, account |
//! | [`pin`] | 6: the PIN, in the HSM |
//! | [`onus`] | 7–8: fee, on-us authorisation |
//! | [`forward`], [`stand_in`] | 8: the card's issuer, or stand-in for it |
//! | [`lifecycle`] | voids, refunds, reversals, settlement, batch upload |
//! | [`decision`], [`effects`] | what a step returns; what a request changes |
//! | [`record`] | 9: journal, then apply |
//! | [`reply`] | 10: the reply and its MAC |
//! | [`refused`] | answers without processing: unauthenticated, busy, journal not ready, panicked |
//! | [`refresh`] | the journal read again where memory may be behind it (shared journal, stale commits) |
//!
//! Steps never touch the socket; the server hands in a frame and gets a frame back.

// A step's decision is its result, moved once or twice on its way to the journal: not
// worth a heap allocation per request (its rare parts are boxed already).
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Instant as Stopwatch;

use codec::Dialect;

use arc_swap::ArcSwap;

use crate::clock::{Clock, Timestamp};
use crate::hsm::MeteredHsm;
use crate::issuer::Issuers;
use crate::journal::{Journal, Stale};
use crate::metrics::Metrics;
use crate::model::{ResponseCode, TxnKind};
use crate::saf::Queue;
use crate::security_log::{Event, SecurityLog};
use crate::state::{Claimed, State};
use observe::Outcome;

pub mod card;
pub mod decision;
mod duplicate;
pub mod effects;
pub mod forward;
pub mod lifecycle;
pub mod observe;
pub mod onus;
pub mod pin;
pub mod record;
pub mod refresh;
pub mod refused;
pub mod reply;
pub mod request;
pub mod rules;
pub mod stand_in;
pub mod terminal;

use decision::{Decision, Decline};
use record::{Answered, Recording, RrnBlocks, replayed};
use request::Request;
use rules::Rules;
use terminal::Authenticated;

/// A frame's answer, and whether the request proved its terminal (a verified MAC, or a
/// sign-on answered): the server trusts a connection only after one that did.
#[derive(Debug)]
pub struct Served {
    /// What to do.
    pub handled: Handled,
    /// The request authenticated its terminal.
    pub authenticated: bool,
}

impl Served {
    fn unauthenticated(handled: Handled) -> Self {
        Self {
            handled,
            authenticated: false,
        }
    }
}

/// What to do with a frame.
#[derive(Debug)]
pub enum Handled {
    /// Send this reply (without the length prefix).
    Reply(Vec<u8>),
    /// Send nothing and keep the connection (a stray response).
    Ignore,
    /// Close the connection; the reason is counted.
    Close(&'static str),
}

/// Log lines per second per event and peer for what unauthenticated peers can cause.
const SECURITY_LOG_PER_SECOND: u32 = 5;

/// What a switch is made of (the daemon assembles it from the configuration).
pub struct Parts {
    /// The HSM (in process, or payment keys on a network HSM).
    pub hsm: Arc<MeteredHsm>,
    /// Terminals, routes, fees, issuers: what a reload replaces.
    pub rules: Rules,
    /// Memory, restored from the journal.
    pub state: State,
    /// The journal.
    pub journal: Arc<Journal>,
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Everything the pipeline needs.
pub struct Switch {
    pub(crate) hsm: Arc<MeteredHsm>,
    pub(crate) dialect: &'static Dialect,
    /// The rules now: each request takes the snapshot current when it arrives.
    rules: ArcSwap<Rules>,
    /// Each remote issuer's store-and-forward queue, by name: a queue outlives a reload
    /// that changes its issuer's lines.
    saf: dashmap::DashMap<String, Arc<Queue>>,
    pub(crate) state: State,
    pub(crate) journal: Arc<Journal>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    /// Rate limit on log lines that unauthenticated peers can cause.
    pub(crate) security_log: SecurityLog,
    rrns: RrnBlocks,
}

/// An HSM failure: logged, answered `96`.
pub(crate) fn hsm_failure(e: crate::hsm::HsmError) -> Decline {
    crate::fault_error!(crate::fault_log::Fault::Hsm, e, "HSM call failed");
    ResponseCode::SYSTEM_ERROR.into()
}

impl Switch {
    /// A switch of `parts`.
    pub fn new(parts: Parts) -> Self {
        Self {
            hsm: parts.hsm,
            dialect: Dialect::cup_pos(),
            rules: ArcSwap::from_pointee(parts.rules),
            saf: dashmap::DashMap::new(),
            state: parts.state,
            journal: parts.journal,
            clock: parts.clock,
            metrics: parts.metrics,
            security_log: SecurityLog::new(SECURITY_LOG_PER_SECOND),
            rrns: RrnBlocks::default(),
        }
    }

    /// The HSM.
    pub fn hsm(&self) -> &Arc<MeteredHsm> {
        &self.hsm
    }

    /// The journal (for shutdown).
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The rules now (a request keeps the snapshot it started with).
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Puts `rules` in force for the requests that arrive from now on; returns the ones
    /// they replace (requests under way keep them to their answers).
    pub fn replace_rules(&self, rules: Rules) -> Arc<Rules> {
        self.rules.swap(Arc::new(rules))
    }

    /// The store-and-forward queue of the issuer named `issuer` (made empty the first
    /// time).
    pub fn saf_queue(&self, issuer: &str) -> Arc<Queue> {
        if let Some(q) = self.saf.get(issuer) {
            return Arc::clone(q.value());
        }
        Arc::clone(self.saf.entry(issuer.to_owned()).or_default().value())
    }

    /// The issuers this switch forwards to now.
    pub fn issuers(&self) -> Issuers {
        self.rules.load().issuers.clone()
    }

    /// The memory the pipeline keeps (tests, benchmarks).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The account key of a PAN or wallet number: the HSM's keyed hash, as the journal
    /// keeps it (tests, operator tools).
    pub fn account_id(&self, number: &str) -> crate::model::AccountId {
        crate::model::AccountId(self.hsm.digest("pan", number.as_bytes()))
    }

    /// Handles one frame (the bytes after the 2-byte length).
    pub async fn handle(&self, frame: &[u8]) -> Handled {
        self.serve(None, frame).await.handled
    }

    /// Handles one frame from `peer`: the steps, the journal, the answer.
    pub async fn serve(&self, peer: Option<std::net::IpAddr>, frame: &[u8]) -> Served {
        let started = Stopwatch::now();
        let rules = self.rules.load_full();
        let msg = match request::decode(&rules, frame) {
            Ok(m) => m,
            Err(e) => {
                self.security_log.warn(
                    Event::Undecodable,
                    peer,
                    &self.metrics,
                    None,
                    &format!("undecodable frame: {e}"),
                );
                return Served::unauthenticated(self.format_error_reply(frame));
            }
        };
        if msg.mti().is_response() {
            self.metrics.reject("unexpected_response");
            return Served::unauthenticated(Handled::Ignore);
        }
        let req = match Request::parse(&msg) {
            Ok(r) => r,
            Err(code) => {
                self.metrics.reject("missing_field");
                return Served::unauthenticated(self.bare_reply(&msg, "unknown", code.into()));
            }
        };
        // Steps 2-3 before anything is claimed or written: a forged frame leaves nothing.
        let mut auth = match self.authenticate(&rules, &req).await {
            Ok(a) => a,
            Err(refused) => {
                return Served::unauthenticated(self.refuse(&req, refused, peer).await);
            }
        };
        let now = self.clock.now();
        // A journal that is gone or cannot take writes: nothing can be recorded, so nothing
        // is done (echoes still answer).
        if req.kind != Some(TxnKind::Echo)
            && let Err(why) = self.journal.health().ready()
        {
            tracing::debug!(reason = %why, "journal not ready: 96");
            let mut answered = self.unrecorded(ResponseCode::SYSTEM_ERROR, auth.session.is_some());
            let facts = std::mem::take(&mut answered.log);
            let reply = self.answer(&req, &auth, answered, now).await;
            // Its transaction line too: which terminals were turned away, and when.
            let outcome = Outcome {
                code: ResponseCode::SYSTEM_ERROR,
                rrn: None,
                auth_code: None,
                facts,
                latency: started.elapsed(),
            };
            self.observe(&req, outcome, peer, now);
            return Served::unauthenticated(reply);
        }
        // Step 4 before any work: a retransmission never moves money twice.
        let mut answered = match req.key() {
            None => {
                let decision = self.process(&req, &auth, now).await;
                self.record(&req, decision, None, auth.session.as_deref(), false, now)
                    .await
                    .answered()
            }
            Some(key) => {
                let digest = self.request_digest(&req);
                match self.state.recent.claim(key, digest, self).await {
                    Err(_) => self.unrecorded(ResponseCode::SYSTEM_ERROR, true),
                    Ok(Claimed::Replay(r)) => Answered {
                        answer: replayed(&r),
                        rrn: r.rrn,
                        mac: r.mac_reply,
                        log: record::LogFacts::default(),
                    },
                    Ok(Claimed::Conflict) => self.unrecorded(ResponseCode::DUPLICATE, true),
                    Ok(Claimed::ReversedEarly(claim)) => {
                        tracing::warn!(tid = req.tid_text, stan = %req.stan, "original arrived after its reversal: refused");
                        let refused = Decision::from(ResponseCode::INVALID_TXN);
                        let session = auth.session.as_deref();
                        self.record(&req, refused, Some((claim, digest)), session, false, now)
                            .await
                            .answered()
                    }
                    Ok(Claimed::New(claim)) => {
                        let decision = self.process(&req, &auth, now).await;
                        let session = auth.session.as_deref();
                        match self
                            .record(&req, decision, Some((claim, digest)), session, true, now)
                            .await
                        {
                            Recording::Answered(a) => a,
                            // What it read changed before its commit (another request, another
                            // node): read again, decide again, once.
                            // Its reversal came first, at another node: refused, as
                            // when it comes first here.
                            Recording::Stale(Stale::ReversedFirst, claim) => {
                                let refused = Decision::from(ResponseCode::INVALID_TXN);
                                self.record(&req, refused, claim, session, false, now)
                                    .await
                                    .answered()
                            }
                            Recording::Stale(what, claim) => {
                                self.refresh(what).await;
                                auth = match self.authenticate(&rules, &req).await {
                                    Ok(a) => a,
                                    Err(refused) => {
                                        drop(claim);
                                        return Served::unauthenticated(
                                            self.refuse(&req, refused, peer).await,
                                        );
                                    }
                                };
                                let decision = self.process(&req, &auth, now).await;
                                let session = auth.session.as_deref();
                                self.record(&req, decision, claim, session, false, now)
                                    .await
                                    .answered()
                            }
                        }
                    }
                }
            }
        };
        let code = answered.answer.code;
        let authenticated = terminal::proves_terminal(req.kind, &auth, code);
        let rrn = answered.rrn;
        let facts = std::mem::take(&mut answered.log);
        let auth_code = answered.answer.auth_code;
        let reply = self.answer(&req, &auth, answered, now).await;
        self.observe(
            &req,
            Outcome {
                code,
                rrn,
                auth_code,
                facts,
                latency: started.elapsed(),
            },
            peer,
            now,
        );
        Served {
            handled: reply,
            authenticated,
        }
    }

    /// The steps after authentication and the duplicate claim, in order.
    async fn process<'s>(
        &'s self,
        req: &Request<'_>,
        auth: &Authenticated<'s>,
        now: Timestamp,
    ) -> Decision<'s> {
        let Some(kind) = req.kind else {
            return ResponseCode::INVALID_TXN.into();
        };
        match self.steps(kind, req, auth, now).await {
            Ok(d) | Err(d) => d,
        }
    }

    async fn steps<'s>(
        &'s self,
        kind: TxnKind,
        req: &Request<'_>,
        auth: &Authenticated<'s>,
        now: Timestamp,
    ) -> Result<Decision<'s>, Decision<'s>> {
        let (range, rules) = (auth.range, auth.rules);
        let session = match kind {
            TxnKind::SignOn => {
                if self.shared()
                    && let Some(tid) = req.tid
                {
                    // The open batch the reply names is the journal's (another node may
                    // have settled), and an operator may have disabled it at another node.
                    self.reload_session(tid).await;
                    if self.disabled_in_journal(tid).await {
                        return Err(ResponseCode::NOT_PERMITTED_TERMINAL.into());
                    }
                }
                return Ok(terminal::sign_on(&self.hsm, &self.state.sessions, req, range).await?);
            }
            TxnKind::Echo => return Ok(Decision::from(ResponseCode::APPROVED)),
            _ => auth.session()?,
        };
        terminal::check_batch(req, kind, session)?;
        match kind {
            TxnKind::Settle => {
                return Ok(lifecycle::settle::settle(self, req, range, session, now).await?);
            }
            TxnKind::BatchUpload => return Ok(lifecycle::upload::upload(self, req).await?),
            TxnKind::Reversal => {
                return Ok(lifecycle::reversal::reverse(self, rules, req, now).await);
            }
            _ => {}
        }
        card::check_amount(req, kind, &rules.acquirer)?;
        let mut inst = card::instrument(req, kind, &rules.routes, &rules.wallets, &self.hsm)?;
        if let Some(issuer) = &inst.issuer {
            // Boxed: the forwarded path's future is the largest of the steps, and held
            // inline it would size (and be copied with) every request's future.
            return Ok(Box::pin(forward::forward(
                self, kind, req, auth, session, &inst, issuer, now,
            ))
            .await);
        }
        if self.shared() && self.account_may_mislead(kind, req, inst.account()) {
            // Memory would decline, or has nothing, or a balance is asked: what memory
            // holds may be behind another node's changes, so the journal's account decides.
            // (An approval needs no read: its commit checks the funds and tries itself.)
            self.reload_account(inst.account()).await;
        }
        let account = card::account(&self.state.accounts, &mut inst, req, now)?;
        let pin_required = match kind {
            TxnKind::Sale | TxnKind::Balance | TxnKind::PreAuth => true,
            TxnKind::QrSale => req.amount_fen > rules.acquirer.qr_password_free_limit_fen,
            _ => false,
        };
        let pin = match kind {
            TxnKind::Refund | TxnKind::Adjustment | TxnKind::Tip => {
                crate::journal::PinTries::Unchanged
            }
            _ => pin::verify(self, rules, req, &inst, &account, session, pin_required).await?,
        };
        Ok(match kind {
            TxnKind::Sale | TxnKind::QrSale | TxnKind::Balance => {
                onus::authorise(self, kind, req, auth, &inst, &account, pin)
            }
            TxnKind::Void => lifecycle::void::void(self, req, &inst, session, pin).await,
            TxnKind::Refund => lifecycle::refund::refund(self, rules, req, &inst, now).await,
            TxnKind::PreAuth => lifecycle::preauth::hold::hold(self, req, &inst, pin),
            TxnKind::PreAuthVoid => {
                lifecycle::preauth::release::release(self, req, &inst, pin).await
            }
            TxnKind::Completion => {
                lifecycle::preauth::complete::complete(self, req, auth, &inst, &account, pin).await
            }
            TxnKind::CompletionVoid => {
                lifecycle::preauth::complete_void::void_completion(self, req, &inst, session, pin)
                    .await
            }
            TxnKind::Adjustment | TxnKind::Tip => {
                lifecycle::adjust::adjust(self, kind, req, auth, &inst, &account, session).await
            }
            _ => inst.decline(ResponseCode::INVALID_TXN),
        })
    }

    /// The reply to an answered request, MACed under the session that authenticated it.
    async fn answer(
        &self,
        req: &Request<'_>,
        auth: &Authenticated<'_>,
        answered: Answered,
        now: Timestamp,
    ) -> Handled {
        let tak = match (&auth.session, answered.mac) {
            (Some(s), true) => Some((&s.tak, auth.range.mac_algorithm())),
            _ => None,
        };
        self.reply(req, &answered.answer, answered.rrn, tak, now)
            .await
    }

    /// Counts an answered request by kind and response code.
    pub(crate) fn count(&self, kind: &'static str, code: ResponseCode) {
        self.metrics.transaction(kind, code.label());
    }
}
