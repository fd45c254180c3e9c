//! The routing core: one request through the steps of DESIGN.md §3, top to bottom in
//! `Switch::process`. Each step is a small function; a step that declines returns the
//! response code, and the request goes straight to the journal and the reply.
//!
//! ```text
//! frame ─▶ decode ─▶ classify ─▶ terminal ─▶ MAC ─▶ duplicate ─▶ card ─▶ PIN ─▶ fee
//!       ─▶ authorise ─▶ journal (durable) ─▶ reply (+ MAC) ─▶ frame
//! ```
//! Steps never touch the socket; the server hands in a frame and gets a frame back.

use std::sync::Arc;
use std::time::Instant as Stopwatch;

use codec::{Dialect, Message, MessageBuilder, Mti, header::SIGN_ON_AGAIN};
use hsm_sim::{EncryptedPinBlock, Hsm, Ibm3624, KeyAlgorithm, MacAlgorithm, PinFormat, SealedKey};

use crate::clock::Instant;
use crate::config::{Acquirer, CardStatus, CardType, TerminalMac};
use crate::fees::{Channel, FeeSchedule};
use crate::issuer::message::UpstreamRef;
use crate::issuer::{Issuers, saf};
use crate::journal::{BatchRecord, Journal, Op, SafRecord, SessionRecord, TxnRecord, UploadRecord};
use crate::metrics::{CardLabel, KindLabel, Metrics, ReasonLabel, TxnLabels};
use crate::security_log::{Event, SecurityLog};
use crate::state::{
    Account, Financial, FinancialKind, PinCheck, Recorded, Session, Slot, State, TerminalDirectory,
    TerminalRange, TxnKey,
};

mod authenticate;
pub mod card;
mod forward;
mod lifecycle;
pub mod rc;
pub mod request;

use authenticate::{Authenticated, Refused, proves_terminal};
use card::Routes;
use request::{Kind, Request};

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

/// The on-us issuer's PIN verification key and IBM 3624 parameters.
#[derive(Clone, Debug)]
pub struct IssuerKeys {
    /// PVK sealed under the LMK.
    pub pvk: SealedKey,
    /// PVK index (Visa PVV).
    pub pvki: u8,
    /// IBM 3624 decimalisation table; the check covers the whole PIN.
    pub ibm3624: Ibm3624,
}

/// A QR wallet: payment codes with its prefix draw on it.
#[derive(Clone, Debug)]
pub struct Wallet {
    /// Wallet account number (its PVV and balance are in the accounts).
    pub id: String,
    /// Payment code prefix.
    pub code_prefix: String,
}

/// RRNs come from blocks reserved in the journal.
struct RrnBlock {
    next: u64,
    end: u64,
}

const RRN_BLOCK: u64 = 1_000;

/// Log lines per second per event and peer for what unauthenticated peers can cause.
const SECURITY_LOG_PER_SECOND: u32 = 5;

/// Everything the pipeline needs.
pub struct Switch {
    pub(crate) hsm: Hsm,
    pub(crate) dialect: &'static Dialect,
    pub(crate) terminals: TerminalDirectory,
    pub(crate) routes: Routes,
    pub(crate) fees: FeeSchedule,
    pub(crate) acquirer: Acquirer,
    pub(crate) issuer: Option<IssuerKeys>,
    pub(crate) wallets: Vec<Wallet>,
    pub(crate) issuers: Issuers,
    pub(crate) state: State,
    pub(crate) journal: Journal,
    pub(crate) metrics: Arc<Metrics>,
    /// Rate limit on log lines that unauthenticated peers can cause.
    pub(crate) security_log: SecurityLog,
    rrn: tokio::sync::Mutex<RrnBlock>,
}

/// A decline or a stop: the response code, and whether to ask the terminal to sign on
/// again (header processing nibble 3).
#[derive(Clone, Copy, Debug)]
pub struct Decline {
    rc: &'static str,
    sign_on_again: bool,
}

impl From<&'static str> for Decline {
    fn from(rc: &'static str) -> Self {
        Self {
            rc,
            sign_on_again: false,
        }
    }
}

fn sign_on_again(rc: &'static str) -> Decline {
    Decline {
        rc,
        sign_on_again: true,
    }
}

/// A change to an earlier transaction, journalled with the request that makes it.
#[derive(Clone, Debug)]
struct Mark {
    rrn: String,
    voided: Option<bool>,
    reversed: Option<bool>,
    refunded_delta_fen: i64,
}

impl Mark {
    fn new(rrn: String) -> Self {
        Self {
            rrn,
            voided: None,
            reversed: None,
            refunded_delta_fen: 0,
        }
    }
}

/// The outcome of a request, before it is journalled and answered.
#[derive(Debug, Default)]
struct Outcome {
    rc: &'static str,
    sign_on_again: bool,
    card: Option<CardInfo>,
    fee_fen: i64,
    balance_fen: Option<i64>,
    auth_code: Option<String>,
    /// Account change to journal with the record: (account, balance delta, PIN tries).
    account: Option<([u8; 32], i64, Option<u8>)>,
    /// Changes to earlier transactions (void, refund, reversal).
    marks: Vec<Mark>,
    /// The transaction this one voids, refunds or reverses.
    original_rrn: Option<String>,
    /// What an approval records for later voids, refunds and settlement.
    financial: Option<FinancialKind>,
    /// Sign-on: the new session, and field 62.
    sign_on: Option<(Session, Vec<u8>)>,
    /// Settlement: the batch closed, and field 48 of the reply.
    settle: Option<(BatchRecord, String)>,
    /// A retransmitted settlement: field 48 of the first reply.
    replayed_48: Option<String>,
    /// Batch upload: the transactions uploaded.
    uploads: Vec<UploadRecord>,
    /// A reversal that found no original: the original's key, now refused.
    tombstone: Option<TxnKey>,
    /// Whether the reply gets a MAC (the terminal's TAK is known and the MAC checked).
    mac_reply: bool,
    /// The RRN, when it was needed before the journal step (forwarded requests).
    rrn: Option<String>,
    /// How the issuer knows a forwarded transaction.
    upstream: Option<UpstreamRef>,
    /// Approved in stand-in for an unreachable issuer.
    stand_in: bool,
    /// Store-and-forward entries to journal with the record.
    saf_puts: Vec<SafRecord>,
    /// Store-and-forward state changes to journal with the record: (id, state).
    saf_updates: Vec<(String, &'static str)>,
    /// Store-and-forward entries to queue once the record is durable: (issuer, entry).
    saf_enqueue: Vec<(usize, saf::Entry)>,
    /// The reversal armed before a forwarded request left, cancelled by its answer: sent
    /// after all if that answer cannot be journalled.
    armed: Option<(usize, saf::Entry)>,
}

impl Outcome {
    /// The outcome of a request answered before, for its retransmission.
    fn replay(r: &Recorded) -> Self {
        Self {
            rc: rc::static_code(&r.rc),
            sign_on_again: r.sign_on_again,
            balance_fen: r.balance_fen,
            auth_code: r.auth_code.clone(),
            mac_reply: r.mac_reply,
            replayed_48: r.field48.clone(),
            ..Self::default()
        }
    }
}

/// The result of step 4.
enum Claim {
    /// First sight: process it, then complete the ticket.
    New(ClaimTicket),
    /// Seen and answered (or answered while we waited): the same answer again.
    Replay(Recorded),
    /// Same key, different content: `94`.
    Conflict,
    /// Not subject to duplicate detection (sign-on, echo, unknown kinds).
    Untracked,
    /// Its reversal came first: refused, and nothing moves.
    ReversedEarly,
}

struct ClaimTicket {
    key: TxnKey,
    digest: [u8; 32],
    done: tokio::sync::watch::Sender<Option<Recorded>>,
}

#[derive(Clone, Debug)]
struct CardInfo {
    masked: String,
    hash: [u8; 32],
    channel: Channel,
}

/// The card or wallet a request draws on.
struct Instrument {
    /// The account's key (keyed hash of the PAN or wallet number).
    hash: [u8; 32],
    /// The number the PIN block is formed with (PAN, or the QR payment code).
    block_pan: String,
    /// The number the PVV belongs to (PAN, or the wallet number).
    pvv_account: String,
    /// Whether it is a QR payment code.
    qr: bool,
    /// The remote issuer the card belongs to, or `None` for on-us.
    issuer: Option<usize>,
}

/// Money back to an account: a debit account (card or wallet) gains, a credit card's
/// amount used falls.
fn credit_back(channel: Channel, amount: i64) -> i64 {
    match channel {
        Channel::Credit => -amount,
        Channel::Debit | Channel::Qr => amount,
    }
}

fn hsm_err(e: hsm_sim::Error) -> Decline {
    tracing::error!(error = %e, "HSM call failed");
    rc::SYSTEM_ERROR.into()
}

impl Switch {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        hsm: Hsm,
        terminals: TerminalDirectory,
        routes: Routes,
        fees: FeeSchedule,
        acquirer: Acquirer,
        issuer: Option<IssuerKeys>,
        wallets: Vec<Wallet>,
        issuers: Issuers,
        state: State,
        journal: Journal,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            wallets,
            issuers,
            hsm,
            dialect: Dialect::cup_pos(),
            terminals,
            routes,
            fees,
            acquirer,
            issuer,
            state,
            journal,
            metrics,
            security_log: SecurityLog::new(SECURITY_LOG_PER_SECOND),
            rrn: tokio::sync::Mutex::new(RrnBlock { next: 0, end: 0 }),
        }
    }

    /// The journal (for shutdown).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn timed<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Stopwatch::now();
        let r = f();
        self.metrics.hsm(op, t.elapsed());
        r
    }

    /// The issuers this switch forwards to.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    async fn next_rrn(&self) -> Result<String, Decline> {
        let mut b = self.rrn.lock().await;
        if b.next == b.end {
            let first = self.journal.reserve("rrn", RRN_BLOCK).await.map_err(|e| {
                tracing::error!(error = %e, "cannot reserve RRNs");
                Decline::from(rc::SYSTEM_ERROR)
            })?;
            b.next = first;
            b.end = first + RRN_BLOCK;
        }
        let n = b.next;
        b.next += 1;
        Ok(format!("{:012}", n % 1_000_000_000_000))
    }

    /// Handles one frame (the bytes after the 2-byte length).
    pub async fn handle(&self, frame: &[u8]) -> Handled {
        self.serve(None, frame).await.handled
    }

    /// Handles one frame from `peer`: authenticate, claim, process, journal, answer.
    pub async fn serve(&self, peer: Option<std::net::IpAddr>, frame: &[u8]) -> Served {
        let started = Stopwatch::now();
        let msg = match codec::decode(self.dialect, frame) {
            Ok(m) => m,
            Err(e) => return Served::unauthenticated(self.undecodable(frame, e, peer)),
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
        let kind = req.kind.map_or("unknown", Kind::as_str);
        // Steps 2-3 before anything is claimed or written: a forged frame leaves nothing.
        let auth = match self.authenticate(&req) {
            Ok(a) => a,
            Err(refused) => return Served::unauthenticated(self.refuse(&req, kind, refused, peer)),
        };
        // A journal that is gone or cannot take writes: nothing can be recorded, so nothing
        // is done (echoes still answer).
        if req.kind != Some(Kind::Echo)
            && let Err(why) = self.journal.health().ready()
        {
            tracing::debug!(reason = %why, "journal not ready: 96");
            return Served::unauthenticated(self.unrecorded_reply(
                &req,
                kind,
                rc::SYSTEM_ERROR.into(),
                auth.session.is_some(),
            ));
        }
        let now = Instant::now();
        // Step 4 before any work: a retransmission never moves money twice.
        let (outcome, rrn) = match self.claim(&req).await {
            Claim::Replay(rec) => (Outcome::replay(&rec), rec.rrn),
            Claim::Conflict => (
                Outcome {
                    rc: rc::DUPLICATE,
                    mac_reply: true,
                    ..Outcome::default()
                },
                String::new(),
            ),
            Claim::Untracked => {
                let out = self.process(&req, &auth).await;
                self.record(&req, out, now, None).await
            }
            Claim::ReversedEarly => {
                tracing::warn!(
                    tid = req.tid,
                    stan = req.stan,
                    "original arrived after its reversal: refused"
                );
                let out = Outcome {
                    rc: rc::INVALID_TXN,
                    mac_reply: true,
                    ..Outcome::default()
                };
                self.record(&req, out, now, None).await
            }
            Claim::New(claim) => {
                let out = self.process(&req, &auth).await;
                self.record(&req, out, now, Some(claim)).await
            }
        };
        let authenticated = proves_terminal(req.kind, &auth, outcome.rc);
        let reply = self.reply(&req, &outcome, &rrn, now);
        let latency = started.elapsed();
        self.count(kind, outcome.rc);
        self.metrics
            .request_duration
            .get_or_create(&KindLabel { kind })
            .observe(latency.as_secs_f64());
        // Sign-ons and echoes carry no MAC: anyone can send them, so their lines are
        // rate-limited like other unauthenticated events.
        let log_it = match req.kind {
            Some(Kind::SignOn | Kind::Echo) => matches!(
                self.security_log.admit(Event::SignOn, peer, &self.metrics),
                crate::security_log::Admit::Log { .. }
            ),
            _ => true,
        };
        if log_it {
            tracing::info!(
                kind,
                tid = req.tid,
                pan = outcome.card.as_ref().map_or("-", |c| c.masked.as_str()),
                amount_fen = req.amount_fen,
                rc = outcome.rc,
                rrn = rrn.as_str(),
                latency_us = latency.as_micros() as u64,
                "transaction"
            );
        }
        Served {
            handled: reply,
            authenticated,
        }
    }

    /// A request that failed authentication: counted, logged at a bounded rate, answered
    /// with its code alone, nothing recorded.
    fn refuse(
        &self,
        req: &Request<'_>,
        kind: &'static str,
        refused: Refused,
        peer: Option<std::net::IpAddr>,
    ) -> Handled {
        if req.kind.is_none() {
            // Not a kind the switch serves, and not authenticated either: 12, as to anyone.
            return self.unrecorded_reply(req, kind, rc::INVALID_TXN.into(), false);
        }
        self.metrics
            .auth_failures
            .get_or_create(&ReasonLabel {
                reason: refused.event.as_str(),
            })
            .inc();
        // A TID is logged only when it is one of ours (a peer's junk is not echoed).
        let tid = self.terminals.lookup(req.tid).map(|_| req.tid);
        self.security_log.warn(
            refused.event,
            peer,
            &self.metrics,
            tid,
            "request refused: not authenticated",
        );
        self.unrecorded_reply(req, kind, refused.decline, false)
    }

    /// The reply to a request answered without being recorded: the usual fields, no RRN, a
    /// MAC when `mac` (the request was authenticated); counted.
    fn unrecorded_reply(
        &self,
        req: &Request<'_>,
        kind: &'static str,
        decline: Decline,
        mac: bool,
    ) -> Handled {
        let out = Outcome {
            rc: decline.rc,
            sign_on_again: decline.sign_on_again,
            mac_reply: mac,
            ..Outcome::default()
        };
        self.count(kind, decline.rc);
        self.reply(req, &out, "", Instant::now())
    }

    /// Counts an answered request by kind and response code.
    fn count(&self, kind: &'static str, code: &str) {
        self.metrics
            .transactions
            .get_or_create(&TxnLabels {
                kind,
                rc: rc::label(code),
            })
            .inc();
    }

    /// A keyed fingerprint of the request from the MTI on (the TPDU may differ between
    /// routes to the switch), to recognise retransmissions without keeping the request.
    fn request_digest(&self, req: &Request<'_>) -> [u8; 32] {
        let header = self.dialect.header().len();
        self.hsm
            .keyed_digest("request", req.msg.frame().get(header..).unwrap_or_default())
    }

    /// The duplicate-detection key of a tracked request (not sign-on, echo or unknown kinds).
    fn txn_key(&self, req: &Request<'_>) -> Option<TxnKey> {
        let tracked = matches!(req.kind, Some(k) if !matches!(k, Kind::SignOn | Kind::Echo));
        Some(TxnKey {
            tid: req.tid_key().filter(|_| tracked)?,
            batch: req.batch,
            stan: req.stan,
            mti: req.mti().as_u16(),
        })
    }

    /// Step 4, duplicates: claims (terminal, batch, STAN, MTI) for this request, or finds
    /// the request seen before. An identical copy of a request still in progress waits for
    /// its outcome.
    async fn claim(&self, req: &Request<'_>) -> Claim {
        let Some(key) = self.txn_key(req) else {
            return Claim::Untracked;
        };
        let digest = self.request_digest(req);
        loop {
            let mut wait = match self.state.recent.entry(key) {
                dashmap::Entry::Vacant(v) => {
                    let (done, rx) = tokio::sync::watch::channel(None);
                    v.insert(Slot::InFlight { digest, done: rx });
                    return Claim::New(ClaimTicket { key, digest, done });
                }
                dashmap::Entry::Occupied(o) => match o.get() {
                    Slot::ReversedEarly => return Claim::ReversedEarly,
                    Slot::Done(r) if r.digest == digest => return Claim::Replay(r.clone()),
                    Slot::InFlight { digest: d, done } if *d == digest => done.clone(),
                    _ => return Claim::Conflict,
                },
            };
            // The map's lock is released here, before waiting.
            if let Ok(v) = wait.wait_for(Option::is_some).await
                && let Some(r) = v.clone()
            {
                return Claim::Replay(r);
            }
            // The first copy went away without an outcome (its sender is gone): clear its
            // slot and claim again.
            self.state
                .recent
                .remove_if(&key, |_, slot| matches!(slot, Slot::InFlight { done, .. } if done.has_changed().is_err()));
        }
    }

    /// The steps after authentication and the duplicate claim, top to bottom.
    async fn process(&self, req: &Request<'_>, auth: &Authenticated<'_>) -> Outcome {
        let mut out = Outcome {
            mac_reply: auth.session.is_some(),
            ..Outcome::default()
        };
        let Some(kind) = req.kind else {
            out.rc = rc::INVALID_TXN;
            return out;
        };
        let result: Result<(), Decline> = async {
            let range = auth.range;
            let session = match (kind, &auth.session) {
                (Kind::SignOn, _) => return self.sign_on(req, range, &mut out),
                (Kind::Echo, _) => return Ok(()),
                (_, Some(s)) => Arc::clone(s),
                (_, None) => return Err(sign_on_again(rc::MAC_FAILURE)),
            };
            self.batch_check(req, kind, &session)?;
            match kind {
                Kind::Settle => return self.settle(req, range, &session, &mut out),
                Kind::BatchUpload => return self.batch_upload(req, &mut out),
                Kind::Reversal => return self.reverse(req, &mut out).await,
                _ => {}
            }
            self.amount_check(req, kind)?;
            let inst = self.instrument(req, &mut out)?;
            if let Some(ix) = inst.issuer {
                return self
                    .forward(kind, req, range, &session, &inst, ix, &mut out)
                    .await;
            }
            let mut account = self.account_check(req, &inst, &mut out)?;
            match kind {
                Kind::Sale | Kind::Balance => {
                    self.pin_check(req, &inst, &session, &mut account, &mut out, true)?
                }
                Kind::QrSale => {
                    let required = req.amount_fen > self.acquirer.qr_password_free_limit_fen;
                    self.pin_check(req, &inst, &session, &mut account, &mut out, required)?;
                }
                Kind::Void => {
                    self.pin_check(req, &inst, &session, &mut account, &mut out, false)?;
                    return self.void(req, &inst, &session, &mut out);
                }
                Kind::Refund => return self.refund(req, &inst, &mut out).await,
                _ => return Err(rc::INVALID_TXN.into()),
            }
            let fee = self.fee(kind, range, req, &out);
            self.authorise(kind, req, fee, &mut out)
        }
        .await;
        match result {
            Ok(()) => out.rc = rc::APPROVED,
            Err(d) => {
                out.rc = d.rc;
                out.sign_on_again = d.sign_on_again;
            }
        }
        out
    }

    /// The request's batch must be the terminal's open one (a batch upload may also name the
    /// batch just settled; a reversal names its original's batch).
    fn batch_check(&self, req: &Request<'_>, kind: Kind, session: &Session) -> Result<(), Decline> {
        let batch_ok = match kind {
            Kind::Reversal => true,
            Kind::BatchUpload => req.batch == session.batch || req.batch + 1 == session.batch,
            _ => req.batch == session.batch,
        };
        if batch_ok {
            Ok(())
        } else {
            Err(sign_on_again(rc::BATCH_MISMATCH))
        }
    }

    // ----- step 5: card or wallet -------------------------------------------------------

    fn amount_check(&self, req: &Request<'_>, kind: Kind) -> Result<(), Decline> {
        if req
            .msg
            .text(49)
            .is_some_and(|c| c != self.acquirer.currency)
        {
            return Err(rc::INVALID_AMOUNT.into());
        }
        let moves_money = matches!(kind, Kind::Sale | Kind::QrSale | Kind::Void | Kind::Refund);
        if moves_money && (req.amount_fen == 0 || req.amount_fen > self.acquirer.max_amount_fen) {
            return Err(rc::INVALID_AMOUNT.into());
        }
        Ok(())
    }

    /// The card (field 2 or track 2) or, for QR payment codes (field 59 `QR` + digits), the
    /// wallet the request draws on.
    fn instrument(&self, req: &Request<'_>, out: &mut Outcome) -> Result<Instrument, Decline> {
        if let Some(code) = req.msg.text(59).and_then(|t| t.strip_prefix("QR")) {
            if !(16..=24).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(rc::INVALID_CARD.into());
            }
            let wallet = self
                .wallets
                .iter()
                .find(|w| code.starts_with(w.code_prefix.as_str()))
                .ok_or(Decline::from(rc::NO_ISSUER))?;
            let hash = self.hsm.keyed_digest("pan", wallet.id.as_bytes());
            out.card = Some(CardInfo {
                masked: codec::mask::pan(code),
                hash,
                channel: Channel::Qr,
            });
            return Ok(Instrument {
                hash,
                block_pan: code.to_owned(),
                pvv_account: wallet.id.clone(),
                qr: true,
                issuer: None,
            });
        }
        if req.kind == Some(Kind::QrSale) {
            return Err(rc::FORMAT_ERROR.into());
        }
        let pan = card::pan_of(req.msg).ok_or(Decline::from(rc::INVALID_CARD))?;
        let route = self.routes.route(pan.as_str());
        let hash = self.hsm.keyed_digest("pan", pan.as_str().as_bytes());
        out.card = Some(CardInfo {
            masked: pan.masked(),
            hash,
            channel: if route.map(|r| r.card_type) == Some(CardType::Credit) {
                Channel::Credit
            } else {
                Channel::Debit
            },
        });
        if !card::luhn_ok(pan.as_str()) {
            return Err(rc::INVALID_CARD.into());
        }
        let route = route.ok_or(Decline::from(rc::NO_ISSUER))?;
        Ok(Instrument {
            hash,
            block_pan: pan.as_str().to_owned(),
            pvv_account: pan.as_str().to_owned(),
            qr: false,
            issuer: route.issuer,
        })
    }

    fn account_check(
        &self,
        req: &Request<'_>,
        inst: &Instrument,
        out: &mut Outcome,
    ) -> Result<Account, Decline> {
        let account = self
            .state
            .accounts
            .get(&inst.hash)
            .map(|a| a.clone())
            .ok_or(Decline::from(rc::INVALID_CARD))?;
        if let Some(c) = out.card.as_mut()
            && !inst.qr
        {
            c.channel = match account.card_type {
                CardType::Debit => Channel::Debit,
                CardType::Credit => Channel::Credit,
            };
        }
        match account.status {
            CardStatus::Active => {}
            CardStatus::Lost => return Err(rc::LOST_CARD.into()),
            CardStatus::Stolen => return Err(rc::STOLEN_CARD.into()),
            CardStatus::Blocked => return Err(rc::DO_NOT_HONOUR.into()),
        }
        let today = Instant::now().cst_yymm();
        if account.expiry < today
            || (!inst.qr && card::expiry_of(req.msg).is_some_and(|e| e != account.expiry))
        {
            return Err(rc::EXPIRED_CARD.into());
        }
        Ok(account)
    }

    // ----- step 6: PIN -------------------------------------------------------------------

    /// Verifies field 52 against the account's PIN data (IBM 3624 offset: every digit; Visa
    /// PVV on legacy ranges: the first four); without 52, `required` decides.
    fn pin_check(
        &self,
        req: &Request<'_>,
        inst: &Instrument,
        session: &Session,
        account: &mut Account,
        out: &mut Outcome,
        required: bool,
    ) -> Result<(), Decline> {
        let Some(block) = req.msg.bytes(52) else {
            return if required {
                Err(rc::WRONG_PIN.into())
            } else {
                Ok(())
            };
        };
        let block = EncryptedPinBlock::new(block).map_err(|_| Decline::from(rc::FORMAT_ERROR))?;
        let issuer = self.issuer.as_ref().ok_or(Decline::from(rc::NO_ISSUER))?;
        let limit = self.acquirer.pin_tries;
        if account.pin_tries >= limit {
            return Err(rc::PIN_TRIES_EXCEEDED.into());
        }
        let verified = self.timed("pin_verify", || match &account.pin_check {
            PinCheck::Ibm3624 { offset } => {
                let validation = hsm_sim::primitives::pvv::validation_from_pan(&inst.pvv_account)?;
                self.hsm.verify_pin_ibm3624(
                    &session.tpk,
                    &block,
                    PinFormat::Iso0,
                    &inst.block_pan,
                    &issuer.pvk,
                    &issuer.ibm3624,
                    &validation,
                    offset,
                )
            }
            PinCheck::VisaPvv { pvv, pvki } => self.hsm.verify_pin_pvv_for(
                &session.tpk,
                &block,
                PinFormat::Iso0,
                &inst.block_pan,
                &issuer.pvk,
                *pvki,
                pvv,
                &inst.pvv_account,
            ),
        });
        let ok = match verified {
            Ok(ok) => ok,
            Err(hsm_sim::Error::BadPinBlock) => false,
            Err(hsm_sim::Error::FailureLimit) => {
                tracing::warn!("HSM PIN failure limit reached: verification refused");
                return Err(rc::SYSTEM_ERROR.into());
            }
            Err(e) => return Err(hsm_err(e)),
        };
        // Count under the account's lock: concurrent wrong PINs each count.
        let tries = match self.state.accounts.get_mut(&inst.hash) {
            Some(mut a) => {
                a.pin_tries = if ok { 0 } else { a.pin_tries.saturating_add(1) };
                a.pin_tries
            }
            None => return Err(rc::INVALID_CARD.into()),
        };
        account.pin_tries = tries;
        out.account = Some((inst.hash, 0, Some(tries)));
        match (ok, tries >= limit) {
            (true, _) => Ok(()),
            (false, true) => Err(rc::PIN_TRIES_EXCEEDED.into()),
            (false, false) => Err(rc::WRONG_PIN.into()),
        }
    }

    // ----- step 7: fee -------------------------------------------------------------------

    fn fee(&self, kind: Kind, range: &TerminalRange, req: &Request<'_>, out: &Outcome) -> i64 {
        match (kind, &out.card) {
            (Kind::Sale | Kind::QrSale, Some(card)) => {
                let fee = self
                    .fees
                    .fee_for(card.channel, &range.mcc, &range.mid, req.amount_fen);
                i64::try_from(fee).unwrap_or(i64::MAX)
            }
            _ => 0,
        }
    }

    // ----- step 8: authorise (on-us) -----------------------------------------------------

    fn authorise(
        &self,
        kind: Kind,
        req: &Request<'_>,
        fee: i64,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let hash = out
            .card
            .as_ref()
            .map(|c| c.hash)
            .ok_or(Decline::from(rc::INVALID_CARD))?;
        let mut a = self
            .state
            .accounts
            .get_mut(&hash)
            .ok_or(Decline::from(rc::INVALID_CARD))?;
        if kind == Kind::Balance {
            out.balance_fen = Some(a.available_fen());
            return Ok(());
        }
        let amount =
            i64::try_from(req.amount_fen).map_err(|_| Decline::from(rc::INVALID_AMOUNT))?;
        if a.available_fen() < amount {
            return Err(rc::INSUFFICIENT_FUNDS.into());
        }
        // Debit (card or wallet): the balance drops. Credit: the amount used rises.
        let delta = match a.card_type {
            CardType::Debit => -amount,
            CardType::Credit => amount,
        };
        a.balance_fen += delta;
        out.account = Some((hash, delta, Some(a.pin_tries)));
        out.fee_fen = fee;
        out.financial = Some(FinancialKind::Sale);
        Ok(())
    }

    // ----- sign-on -----------------------------------------------------------------------

    fn sign_on(
        &self,
        req: &Request<'_>,
        range: &TerminalRange,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let keys = self
            .timed("terminal_keys", || {
                self.hsm
                    .generate_terminal_keys(&range.tmk, KeyAlgorithm::Tdes2, KeyAlgorithm::Des)
            })
            .map_err(hsm_err)?;
        let tid = req.tid_key().ok_or(Decline::from(rc::NO_TERMINAL))?;
        // The batch stays across sign-ons; a new terminal starts at batch 1.
        let batch = self.state.sessions.get(&tid).map_or(1, |s| s.batch);
        let mut f62 = Vec::with_capacity(40);
        f62.extend_from_slice(&keys.tpk_under_tmk);
        f62.extend_from_slice(&keys.tpk_check);
        f62.extend_from_slice(&keys.tak_under_tmk);
        f62.extend_from_slice(&[0u8; 8]);
        f62.extend_from_slice(&keys.tak_check);
        out.sign_on = Some((
            Session {
                mid: range.mid.clone(),
                tpk: keys.tpk,
                tak: keys.tak,
                batch,
            },
            f62,
        ));
        Ok(())
    }

    // ----- step 9: the journal ----------------------------------------------------------

    /// Journals the request and its outcome durably, then makes it visible (sessions,
    /// lifecycle state, duplicate detection) and completes the claim. Returns the outcome to
    /// answer and its RRN; a journal failure turns it into `96` with nothing applied.
    async fn record(
        &self,
        req: &Request<'_>,
        mut out: Outcome,
        now: Instant,
        claim: Option<ClaimTicket>,
    ) -> (Outcome, String) {
        let durable = match req.kind {
            Some(Kind::Echo) => Ok(String::new()),
            kind => {
                self.journal_outcome(kind, req, &mut out, now, claim.as_ref().map(|c| c.digest))
                    .await
            }
        };
        let journalled = durable.is_ok();
        let rrn = match durable {
            Ok(rrn) => rrn,
            Err(rrn) => {
                self.undo(&out);
                out.rc = rc::SYSTEM_ERROR;
                out.sign_on = None;
                out.settle = None;
                out.auth_code = None;
                rrn
            }
        };
        let ok = out.rc != rc::SYSTEM_ERROR;
        if ok {
            self.publish(req, &out, &rrn, now);
        }
        // Queued reversals and advices go to their issuers once durable. A reversal armed
        // before its request went out is in the journal already: it goes out when the
        // request timed out, and also when the answer could not be journalled.
        if !journalled
            && let Some((ix, entry)) = out.armed.take()
            && let Some(issuer) = self.issuers.get(ix)
        {
            saf::enqueue(issuer, [entry]);
        }
        for (ix, entry) in std::mem::take(&mut out.saf_enqueue) {
            let armed = out
                .saf_updates
                .iter()
                .any(|(id, st)| *id == entry.id && *st == "pending");
            if (journalled || armed)
                && let Some(issuer) = self.issuers.get(ix)
            {
                saf::enqueue(issuer, [entry]);
            }
        }
        if let Some(claim) = claim {
            let recorded = Recorded {
                digest: claim.digest,
                rc: out.rc.to_owned(),
                rrn: rrn.clone(),
                auth_code: out.auth_code.clone(),
                balance_fen: out.balance_fen,
                mac_reply: out.mac_reply,
                sign_on_again: out.sign_on_again,
                field48: out.settle.as_ref().map(|(_, f48)| f48.clone()),
            };
            if ok {
                self.state
                    .recent
                    .insert(claim.key, Slot::Done(recorded.clone()));
            } else {
                // Not journalled: a retransmission is processed afresh.
                self.state.recent.remove(&claim.key);
            }
            let _ = claim.done.send(Some(recorded));
        }
        (out, rrn)
    }

    /// After a durable commit: the new session or batch, the approved transaction for later
    /// voids, refunds, reversals and settlement, and the metrics.
    fn publish(&self, req: &Request<'_>, out: &Outcome, rrn: &str, now: Instant) {
        let Some(tid) = req.tid_key() else { return };
        if let Some((session, _)) = &out.sign_on {
            self.state.sessions.insert(tid, Arc::new(session.clone()));
        }
        if let Some((batch, _)) = &out.settle {
            self.after_settlement(tid, batch);
        }
        if out.rc != rc::APPROVED {
            return;
        }
        if let (Some(kind), Some(card)) = (out.financial, &out.card) {
            self.state.financial.insert(
                rrn.to_owned(),
                Financial {
                    kind,
                    tid,
                    batch: req.batch,
                    stan: req.stan,
                    account: card.hash,
                    channel: card.channel,
                    amount_fen: i64::try_from(req.amount_fen).unwrap_or(i64::MAX),
                    fee_fen: out.fee_fen,
                    local_date: now.cst_date(),
                    original_rrn: out.original_rrn.clone(),
                    voided: false,
                    reversed: false,
                    refunded_fen: 0,
                    upstream: out.upstream.clone(),
                },
            );
            if req.mti().as_u16() == 200 {
                self.state
                    .by_trace
                    .insert((tid, req.batch, req.stan), rrn.to_owned());
            }
            if kind == FinancialKind::Sale {
                let label = CardLabel {
                    card_type: card.channel.as_str(),
                };
                self.metrics
                    .amount_fen
                    .get_or_create(&label)
                    .inc_by(req.amount_fen);
                self.metrics
                    .fees_fen
                    .get_or_create(&label)
                    .inc_by(u64::try_from(out.fee_fen).unwrap_or(0));
            }
        }
    }

    /// Writes the record (and the balance, session, batch or earlier transactions' changes)
    /// and waits until it is on disk. `Err` carries the RRN, if one was assigned, of a
    /// request that was not journalled.
    async fn journal_outcome(
        &self,
        kind: Option<Kind>,
        req: &Request<'_>,
        out: &mut Outcome,
        now: Instant,
        digest: Option<[u8; 32]>,
    ) -> Result<String, String> {
        // A sign-on carries no MAC, so anyone who knows a TID can send one: it replaces the
        // terminal's session (one row per TID) and adds no transaction row (its reply still
        // gets an RRN, as terminals expect).
        let sign_on = kind == Some(Kind::SignOn);
        let rrn = match out.rrn.clone() {
            Some(r) => r,
            None => self.next_rrn().await.map_err(|_| String::new())?,
        };
        if out.rc == rc::APPROVED && kind != Some(Kind::SignOn) && out.auth_code.is_none() {
            let d = self.hsm.keyed_digest("auth", rrn.as_bytes());
            let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 1_000_000;
            out.auth_code = Some(format!("{n:06}"));
        }
        let digest = digest.unwrap_or_else(|| self.request_digest(req));
        let mut ops = Vec::with_capacity(4 + out.marks.len() + out.uploads.len());
        let txn = Op::Txn(Box::new(TxnRecord {
            rrn: rrn.clone(),
            time_utc: now.iso_utc(),
            kind: kind.map_or("unknown", Kind::as_str).to_owned(),
            mti: req.mti().to_string(),
            tid: req.tid.to_owned(),
            mid: req.mid.to_owned(),
            batch: req.batch,
            stan: req.stan,
            operator: req.operator.map(str::to_owned),
            masked_pan: out.card.as_ref().map(|c| c.masked.clone()),
            pan_hash: out.card.as_ref().map(|c| hex::encode(c.hash)),
            card_type: out.card.as_ref().map(|c| c.channel.as_str().to_owned()),
            amount_fen: i64::try_from(req.amount_fen).unwrap_or(i64::MAX),
            fee_fen: out.fee_fen,
            currency: req.msg.text(49).map(str::to_owned),
            response_code: out.rc.to_owned(),
            auth_code: out.auth_code.clone(),
            request_digest: hex::encode(digest),
            local_date: now.cst_date(),
            original_rrn: out.original_rrn.clone(),
            voided: false,
            reversed: false,
            refunded_fen: 0,
            issuer: out
                .upstream
                .as_ref()
                .and_then(|u| self.issuers.get(u.issuer))
                .map(|i| i.name.clone()),
            upstream: out.upstream.as_ref().map(UpstreamRef::to_record),
            stand_in: out.stand_in,
            reply_48: out.settle.as_ref().map(|(_, f48)| f48.clone()),
        }));
        if !sign_on {
            ops.push(txn);
        }
        ops.extend(out.saf_puts.iter().map(|q| Op::PutSaf(Box::new(q.clone()))));
        ops.extend(out.saf_updates.iter().map(|(id, state)| Op::UpdateSaf {
            id: id.clone(),
            state,
            tries: None,
            updated_utc: now.iso_utc(),
        }));
        if let Some((hash, delta, tries)) = out.account {
            ops.push(Op::UpdateAccount {
                pan_hash: hex::encode(hash),
                balance_delta_fen: delta,
                pin_tries: tries,
            });
        }
        for m in &out.marks {
            ops.push(Op::MarkTxn {
                rrn: m.rrn.clone(),
                voided: m.voided,
                reversed: m.reversed,
                refunded_delta_fen: m.refunded_delta_fen,
            });
        }
        let session = out.sign_on.as_ref().map(|(s, _)| s.clone()).or_else(|| {
            out.settle
                .as_ref()
                .and_then(|(b, _)| self.next_batch_session(req, b.batch))
        });
        if let Some(session) = session {
            ops.push(Op::PutSession(Box::new(SessionRecord {
                tid: req.tid.to_owned(),
                mid: session.mid.clone(),
                tpk: session.tpk.to_hex(),
                tak: session.tak.to_hex(),
                batch: session.batch,
                operator: req.operator.map(str::to_owned),
                signed_on_utc: now.iso_utc(),
            })));
        }
        if let Some((batch, _)) = &out.settle {
            ops.push(Op::CloseBatch(Box::new(batch.clone())));
        }
        ops.extend(
            out.uploads
                .iter()
                .map(|u| Op::PutUpload(Box::new(u.clone()))),
        );
        let t = Stopwatch::now();
        let committed = self.journal.commit(ops).await;
        self.metrics
            .journal_commit
            .observe(t.elapsed().as_secs_f64());
        match committed {
            Ok(()) => Ok(rrn),
            Err(e) => {
                tracing::error!(error = %e, "journal commit failed: answering 96, nothing applied");
                Err(rrn)
            }
        }
    }

    /// Reverts the in-memory changes of a request that will not be journalled.
    fn undo(&self, out: &Outcome) {
        if let Some((hash, delta, _)) = out.account
            && delta != 0
            && let Some(mut a) = self.state.accounts.get_mut(&hash)
        {
            a.balance_fen -= delta;
        }
        for m in &out.marks {
            if let Some(mut f) = self.state.financial.get_mut(&m.rrn) {
                if let Some(v) = m.voided {
                    f.voided = !v;
                }
                if let Some(r) = m.reversed {
                    f.reversed = !r;
                }
                f.refunded_fen -= m.refunded_delta_fen;
            }
        }
    }

    // ----- step 10: reply ----------------------------------------------------------------

    fn reply_header(&self, msg: &Message<'_>, sign_on_again: bool) -> Vec<u8> {
        let mut h = Vec::with_capacity(11);
        match (msg.tpdu(), msg.cup_header()) {
            (Some(t), Some(c)) => {
                h.extend_from_slice(&t.reply().to_bytes());
                let c = if sign_on_again {
                    c.with_processing_requirement(SIGN_ON_AGAIN)
                } else {
                    c
                };
                h.extend_from_slice(&c.0);
            }
            _ => h.extend_from_slice(msg.header()),
        }
        h
    }

    fn reply(&self, req: &Request<'_>, out: &Outcome, rrn: &str, now: Instant) -> Handled {
        let msg = req.msg;
        let mut b = MessageBuilder::new(msg.mti().response());
        b.header(self.reply_header(msg, out.sign_on_again));
        let (time, date) = now.cst_fields();
        // Echoed from the request; the builder keeps fields in number order.
        for n in [2, 3, 4, 11, 14, 25, 41, 42, 49, 60] {
            if let Some(v) = echo(msg, n) {
                b.set(n, v);
            }
        }
        b.set(12, time.as_str()).set(13, date.as_str());
        b.set(32, self.acquirer.institution_id.as_str());
        if !rrn.is_empty() {
            b.set(37, rrn);
        }
        if let Some(a) = &out.auth_code {
            b.set(38, a.as_str());
        }
        b.set(39, out.rc);
        let balance_field;
        if let Some(f48) = out
            .settle
            .as_ref()
            .map(|(_, f)| f)
            .or(out.replayed_48.as_ref())
        {
            b.set(48, f48.as_str());
        }
        if let Some(bal) = out.balance_fen {
            // Account type 10, amount type 02 (available), CNY, sign, 12 digits.
            balance_field = format!(
                "1002{}{}{:012}",
                self.acquirer.currency,
                if bal < 0 { 'D' } else { 'C' },
                bal.unsigned_abs()
            );
            b.set(54, balance_field.as_str());
        }
        if let Some((session, f62)) = &out.sign_on {
            // 60: type 00, the current batch, management code as asked.
            let code = msg
                .get("60.3")
                .ok()
                .flatten()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "003".into());
            b.set(60, format!("00{:06}{}", session.batch, code));
            b.set(62, f62.as_slice());
        }
        let mut buf = Vec::with_capacity(256);
        let tak_alg = req
            .tid_key()
            .and_then(|tid| self.state.sessions.get(&tid).map(|s| s.tak.clone()))
            .zip(self.terminals.lookup(req.tid).map(|r| mac_alg(r.mac)));
        let encoded = match (out.mac_reply, tak_alg) {
            (true, Some((tak, alg))) => b.encode_with_mac(self.dialect, &mut buf, |data| {
                self.timed("mac_generate", || self.hsm.generate_mac(&tak, alg, data))
                    .ok()
                    .map(|m| m.field64())
            }),
            _ => b.encode(self.dialect, &mut buf),
        };
        match encoded {
            Ok(_) => Handled::Reply(buf),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a reply");
                self.metrics.reject("reply_encode");
                Handled::Close("reply_encode")
            }
        }
    }

    /// The answer to a request whose task panicked: its recorded outcome when it was
    /// journalled (the terminal hears what happened to its money), else `96`.
    pub fn after_panic(&self, frame: &[u8]) -> Handled {
        let Ok(msg) = codec::decode(self.dialect, frame) else {
            return Handled::Close("panic");
        };
        let Ok(req) = Request::parse(&msg) else {
            return self.bare_reply(&msg, "unknown", rc::SYSTEM_ERROR.into());
        };
        let recorded = self.txn_key(&req).and_then(|key| {
            self.state
                .recent
                .get(&key)
                .and_then(|slot| match slot.value() {
                    Slot::Done(r) => Some(r.clone()),
                    _ => None,
                })
        });
        match recorded {
            Some(r) => self.reply(&req, &Outcome::replay(&r), &r.rrn, Instant::now()),
            None => self.bare_reply(
                &msg,
                req.kind.map_or("unknown", Kind::as_str),
                rc::SYSTEM_ERROR.into(),
            ),
        }
    }

    /// The answer to a request refused because its connection has too many in flight: `96`
    /// when it can be read, else nothing.
    pub fn refuse_busy(&self, frame: &[u8]) -> Handled {
        match codec::decode(self.dialect, frame) {
            Ok(msg) if !msg.mti().is_response() => {
                self.bare_reply(&msg, "unknown", rc::SYSTEM_ERROR.into())
            }
            _ => Handled::Ignore,
        }
    }

    /// A reply with only 39 (and the fields that identify the request), for requests that
    /// cannot go through the pipeline.
    fn bare_reply(&self, msg: &Message<'_>, kind: &'static str, decline: Decline) -> Handled {
        let mut b = MessageBuilder::new(msg.mti().response());
        b.header(self.reply_header(msg, decline.sign_on_again));
        for n in [3, 4, 11] {
            if let Some(v) = echo(msg, n) {
                b.set(n, v);
            }
        }
        b.set(39, decline.rc);
        for n in [41, 42] {
            if let Some(t) = msg.text(n) {
                b.set(n, t);
            }
        }
        self.count(kind, decline.rc);
        match b.encode_to_vec(self.dialect) {
            Ok(v) => Handled::Reply(v),
            Err(_) => Handled::Close("reply_encode"),
        }
    }

    /// A frame the codec refused: answered `30` when its header and MTI can be read, else
    /// the connection is closed.
    fn undecodable(
        &self,
        frame: &[u8],
        e: codec::WireError,
        peer: Option<std::net::IpAddr>,
    ) -> Handled {
        self.security_log.warn(
            Event::Undecodable,
            peer,
            &self.metrics,
            None,
            &format!("undecodable frame: {e}"),
        );
        let header_len = self.dialect.header().len();
        let mti = frame.get(header_len..header_len + 2).and_then(|m| {
            let d = [
                b'0' + (m[0] >> 4),
                b'0' + (m[0] & 15),
                b'0' + (m[1] >> 4),
                b'0' + (m[1] & 15),
            ];
            Mti::new(d)
        });
        match (frame.get(..header_len), mti) {
            (Some(header), Some(mti)) if !mti.is_response() => {
                self.metrics.reject("format");
                let mut h = Vec::with_capacity(header_len);
                match (
                    codec::Tpdu::parse(header),
                    codec::CupHeader::parse(&header[5..]),
                ) {
                    (Some(t), Some(c)) => {
                        h.extend_from_slice(&t.reply().to_bytes());
                        h.extend_from_slice(&c.0);
                    }
                    _ => h.extend_from_slice(header),
                }
                let mut b = MessageBuilder::new(mti.response());
                b.header(h).set(39, rc::FORMAT_ERROR);
                self.metrics
                    .transactions
                    .get_or_create(&TxnLabels {
                        kind: "unknown",
                        rc: rc::FORMAT_ERROR,
                    })
                    .inc();
                match b.encode_to_vec(self.dialect) {
                    Ok(v) => Handled::Reply(v),
                    Err(_) => Handled::Close("undecodable"),
                }
            }
            _ => {
                self.metrics.reject("undecodable");
                Handled::Close("undecodable")
            }
        }
    }
}

/// Field `n` of a request, to be echoed in the reply byte for byte.
fn echo<'m>(msg: &Message<'m>, n: u8) -> Option<codec::FieldInput<'m>> {
    msg.field(n).map(|f| codec::FieldInput::Wire {
        data: std::borrow::Cow::Borrowed(f.wire()),
        units: f.units(),
    })
}

fn mac_alg(m: TerminalMac) -> MacAlgorithm {
    match m {
        TerminalMac::UnionpayEcb => MacAlgorithm::UnionpayEcb,
        TerminalMac::X99 => MacAlgorithm::X99,
    }
}
