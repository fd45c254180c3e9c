//! Issuer links: what the switch does not authorise itself goes to the card's issuer over
//! ISO 8583:1987 lines, and the answer comes back to the terminal.
//!
//! ```text
//!  pipeline ── exchange(request) ──▶ Issuer ── round-robin over healthy lines ──▶ Line ──TCP──▶ issuer
//!     ▲                               │ mux: (MTI class, 41, 11) ─▶ waiting request
//!     └──── reply (MAC checked) ◀─────┘◀──────────── reader: match, or late / unknown ◀──┘
//!
//!  iso87-binary: [len u16][MTI 2 B BCD][bitmap 8/16 B][fields…][64: X9.19 MAC under the ZAK]
//!  iso87-ascii:  ["0136"  ][MTI 4 ASCII][bitmap 16/32 hex][fields…][64: 16 hex]
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`line`] | one TCP line: connect, back-off, read and write, echo when idle |
//! | [`mux`] | matching replies to requests; late and unknown replies |
//! | [`breaker`] | the circuit breaker |
//! | [`message`] | the CUP request translated to ISO 87, reversals, the reply read back |
//!
//! A request without a reply in time is answered `98` and reversed through the
//! store-and-forward queue (`crate::saf`), which this module does not know: it only tells
//! the queue's worker when a line comes up or an approval came for no request
//! ([`Issuer::changed`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use codec::{Dialect, Message, MessageBuilder};
use hsm_sim::MacAlgorithm;

use crate::hsm::{KeyRef, MeteredHsm};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{IssuerConfig, SafConfig, StandInConfig};
use crate::fault_log::Fault;
use crate::metrics::{IssuerLabel, Metrics};

pub mod breaker;
pub mod line;
pub mod message;
pub mod mux;

pub use line::Line;

use breaker::Breaker;
use mux::{Mux, Unmatched};

/// Why an exchange with an issuer gave no usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No healthy line, or too many requests waiting: the request was not sent.
    #[error("issuer unavailable")]
    Unavailable,
    /// Sent, and no (valid) reply in time, or the line dropped while waiting.
    #[error("issuer timed out")]
    Timeout,
    /// Another request with the same matching key is waiting: not sent.
    #[error("a request with the same key is in flight")]
    Duplicate,
    /// The request could not be encoded: not sent, and it never will be.
    #[error("cannot build the request")]
    Build,
    /// No HSM could MAC the request: not sent, and it may be once one can.
    #[error("no HSM to MAC the request")]
    NoMac,
}

/// Largest frame on an issuer line.
pub const MAX_FRAME: usize = 8192;

/// Approvals for no waiting request held for their MAC check at most. The store-and-forward
/// worker takes them all on each wake-up; only a flood on the line, faster than the HSM
/// checks them, fills this, and what comes beyond it is dropped unchecked and counted
/// (`event="unknown_approval_dropped"`). A request that moves money has its reversal armed
/// in the journal before it is sent, so an authentic approval dropped here is still
/// reversed by its time-out or after a restart.
pub const UNKNOWN_APPROVALS_HELD: usize = 1_024;

/// One remote issuer and its lines.
pub struct Issuer {
    /// Name from the configuration (routes, logs, metric labels, the journal).
    pub name: String,
    /// The switch process these links belong to (as the journal's node table names it):
    /// the owner of what it arms, while it lives.
    pub owner: String,
    /// Its dialect.
    pub dialect: &'static Dialect,
    /// Field 64 on its lines: X9.19 under a TDES ZAK, the SM4 CBC-MAC under an SM4 one.
    pub mac_algorithm: MacAlgorithm,
    /// Our acquiring institution id (field 32).
    pub acquirer_id: String,
    /// Zone PIN key.
    pub zpk: KeyRef,
    zak: KeyRef,
    pub(crate) timeout: Duration,
    pub(crate) echo_interval: Duration,
    pub(crate) reconnect: (Duration, Duration),
    /// Store-and-forward settings.
    pub saf_config: SafConfig,
    /// Stand-in limits.
    pub stand_in: StandInConfig,
    /// What a completion goes as: 0220 (advice) or 0200.
    pub completion_mti: codec::Mti,
    max_in_flight: usize,
    breaker: Breaker,
    lines: Vec<Arc<Line>>,
    mux: Mux,
    in_flight: AtomicUsize,
    /// Drained by an operator: no new requests (its cards answer 91, or stand-in), while
    /// what is in flight finishes and queued reversals and advices still go.
    drained: std::sync::atomic::AtomicBool,
    next_line: AtomicUsize,
    echo_stan: AtomicU32,
    /// Approvals that arrived for no waiting request, to be reversed.
    unknown_approvals: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Wakes whoever waits for a line to come up or an unknown approval.
    changed: Notify,
    pub(crate) metrics: Arc<Metrics>,
    /// This issuer's series, looked up once (no label building per request).
    pub(crate) meters: Meters,
}

/// One issuer's metric series.
#[derive(Clone, Debug)]
pub(crate) struct Meters {
    pub(crate) in_flight: Gauge,
    pub(crate) round_trip: Histogram,
    pub(crate) timeouts: Counter,
    pub(crate) late: Counter,
    pub(crate) stand_in: Counter,
    pub(crate) saf_queued: Gauge,
    pub(crate) saf_oldest: Gauge,
}

impl Meters {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let l = IssuerLabel {
            issuer: name.to_owned(),
        };
        Self {
            in_flight: metrics.issuer_in_flight.get_or_create(&l).clone(),
            round_trip: metrics.issuer_round_trip.get_or_create(&l).clone(),
            timeouts: metrics.issuer_timeouts.get_or_create(&l).clone(),
            late: metrics.issuer_late.get_or_create(&l).clone(),
            stand_in: metrics.issuer_stand_in.get_or_create(&l).clone(),
            saf_queued: metrics.issuer_saf_queued.get_or_create(&l).clone(),
            saf_oldest: metrics.issuer_saf_oldest.get_or_create(&l).clone(),
        }
    }
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// The switch process these links belong to (what it arms is its own while it lives).
    pub fn with_owner(mut self, owner: &str) -> Self {
        owner.clone_into(&mut self.owner);
        self
    }

    /// An issuer from its configuration and its zone keys (sealed under the LMK); echo
    /// trace numbers start from `seed`.
    pub fn new(
        cfg: &IssuerConfig,
        acquirer_id: &str,
        zpk: KeyRef,
        zak: KeyRef,
        metrics: Arc<Metrics>,
        seed: u64,
    ) -> Result<Self, codec::SpecError> {
        let sm4 = cfg.algorithm == crate::config::TerminalAlgorithm::Sm4;
        let (dialect, mac_algorithm) = if sm4 {
            (Dialect::builtin_sm4(&cfg.dialect)?, MacAlgorithm::Sm4CbcMac)
        } else {
            (Dialect::builtin(&cfg.dialect)?, MacAlgorithm::X919)
        };
        for l in &cfg.lines {
            // Every configured line shows in /metrics from the start, down until it connects.
            metrics
                .issuer_line_up
                .get_or_create(&crate::metrics::LineLabels {
                    issuer: cfg.name.clone(),
                    line: l.clone(),
                })
                .set(0);
        }
        Ok(Self {
            name: cfg.name.clone(),
            owner: String::new(),
            dialect,
            mac_algorithm,
            acquirer_id: cfg
                .acquirer_id
                .clone()
                .unwrap_or_else(|| acquirer_id.to_owned()),
            zpk,
            zak,
            timeout: Duration::from_millis(cfg.timeout_ms),
            echo_interval: Duration::from_secs(cfg.echo_interval_secs),
            reconnect: (
                Duration::from_millis(cfg.reconnect_min_ms),
                Duration::from_millis(cfg.reconnect_max_ms),
            ),
            saf_config: cfg.saf.clone(),
            stand_in: cfg.stand_in.clone(),
            completion_mti: match cfg.completion {
                crate::config::CompletionMessage::Advice => message::ADVICE,
                crate::config::CompletionMessage::Request => message::FINANCIAL,
            },
            max_in_flight: cfg.max_in_flight,
            breaker: Breaker::new(
                cfg.breaker_timeouts,
                Duration::from_millis(cfg.breaker_open_ms),
            ),
            lines: cfg
                .lines
                .iter()
                .enumerate()
                .map(|(i, a)| Arc::new(Line::new(i, a.clone())))
                .collect(),
            mux: Mux::new(cfg.match_fields.clone()),
            in_flight: AtomicUsize::new(0),
            drained: std::sync::atomic::AtomicBool::new(false),
            next_line: AtomicUsize::new(0),
            echo_stan: AtomicU32::new((seed % 900_000) as u32),
            unknown_approvals: std::sync::Mutex::new(Vec::new()),
            changed: Notify::new(),
            meters: Meters::new(&metrics, &cfg.name),
            metrics,
        })
    }

    /// The next STAN for network management (echoes), 000001 to 999999. Financial requests
    /// take theirs from their RRN, which never repeats.
    pub fn next_echo_stan(&self) -> u32 {
        self.echo_stan.fetch_add(1, Ordering::Relaxed) % 999_999 + 1
    }

    /// Its lines.
    pub fn lines(&self) -> &[Arc<Line>] {
        &self.lines
    }

    /// Whether any line is up.
    pub fn is_up(&self) -> bool {
        self.lines.iter().any(|l| l.is_up())
    }

    /// Whether a request sent now could go out: a line is up, the breaker is closed and
    /// there is room in flight. Checked before anything is written for a request, so one
    /// answered `91` leaves no trace.
    pub fn can_send(&self) -> bool {
        !self.breaker.is_open() && self.is_up() && !self.busy()
    }

    /// Whether `max_in_flight` requests are waiting for its answers.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.max_in_flight
    }

    /// A request not sent because the issuer was [`Issuer::busy`]: counted, and logged once
    /// a second at most (under saturation that is every request).
    pub fn note_busy(&self) {
        self.metrics.issuer_event(&self.name, "too_many_waiting");
        crate::fault_warn!(
            Fault::IssuerBusy,
            format_args!("{} waiting", self.max_in_flight),
            "too many requests waiting for the issuer",
            issuer = tracing::field::display(&self.name),
        );
    }

    /// How many requests are waiting for its answers.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the circuit breaker is open.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Waits until a line comes up or an approval came for no request.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Holds an approval for no waiting request for the store-and-forward worker, which
    /// checks its MAC and reverses it; `false` when [`UNKNOWN_APPROVALS_HELD`] already wait.
    fn hold_unknown_approval(&self, frame: Vec<u8>) -> bool {
        let Ok(mut q) = self.unknown_approvals.lock() else {
            return false;
        };
        if q.len() >= UNKNOWN_APPROVALS_HELD {
            return false;
        }
        q.push(frame);
        true
    }

    /// Approvals that came for no waiting request, since the last call.
    pub fn take_unknown_approvals(&self) -> Vec<Vec<u8>> {
        self.unknown_approvals
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }

    /// A healthy line, round-robin.
    fn pick_line(&self) -> Option<&Arc<Line>> {
        let n = self.lines.len();
        let start = self.next_line.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.lines[(start + i) % n])
            .find(|l| l.is_up())
    }

    /// Sends a request (MACed with the ZAK) on a healthy line and waits for its reply, whose
    /// MAC is checked. The reply comes back as its frame. While the circuit breaker is open
    /// nothing is sent: [`LinkError::Unavailable`].
    pub async fn exchange(
        &self,
        hsm: &MeteredHsm,
        b: MessageBuilder<'_>,
    ) -> Result<Vec<u8>, LinkError> {
        if self.breaker.is_open() || self.is_drained() {
            return Err(LinkError::Unavailable);
        }
        self.exchange_queued(hsm, b).await
    }

    /// A reply from the issuer whose MAC did not verify: counted, and logged once a second at
    /// most. One for a waiting request is treated as no reply; an approval for no request is
    /// not reversed (it may be anyone's).
    pub(crate) fn note_bad_mac(&self, waited_for: bool) {
        self.metrics.issuer_event(&self.name, "bad_mac");
        let issuer = tracing::field::display(&self.name);
        if waited_for {
            crate::fault_warn!(
                Fault::IssuerMessage,
                "bad or missing MAC",
                "issuer reply with a bad or missing MAC: treated as no reply",
                issuer = issuer,
            );
        } else {
            crate::fault_warn!(
                Fault::IssuerMessage,
                "bad or missing MAC",
                "approval for no waiting request with a bad or missing MAC: not reversed",
                issuer = issuer,
            );
        }
    }

    /// Drains the issuer (`true`) or takes it back (`false`); whether that changed anything.
    pub fn set_drained(&self, drained: bool) -> bool {
        let was = self.drained.swap(drained, Ordering::Relaxed);
        if was != drained {
            if drained {
                tracing::warn!(issuer = %self.name, "issuer drained: new requests answer 91 (or stand-in)");
            } else {
                tracing::info!(issuer = %self.name, "issuer taken back into service");
            }
        }
        was != drained
    }

    /// Whether an operator drained it.
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// As [`Issuer::exchange`] whatever the breaker says: for the store-and-forward queue,
    /// whose sends are how a recovered issuer shows itself.
    pub async fn exchange_queued(
        &self,
        hsm: &MeteredHsm,
        b: MessageBuilder<'_>,
    ) -> Result<Vec<u8>, LinkError> {
        let line = self.pick_line().ok_or(LinkError::Unavailable)?;
        self.exchange_on(line, Some(hsm), b).await
    }

    /// As [`Issuer::exchange`] on one line; without an HSM, no MAC (network management).
    pub(crate) async fn exchange_on(
        &self,
        line: &Line,
        hsm: Option<&MeteredHsm>,
        mut b: MessageBuilder<'_>,
    ) -> Result<Vec<u8>, LinkError> {
        if self.busy() {
            self.note_busy();
            return Err(LinkError::Unavailable);
        }
        let mut frame = Vec::with_capacity(256);
        let encoded = match hsm {
            Some(hsm) => match b.encode_for_mac(self.dialect, &mut frame) {
                Ok(slot) => {
                    let Ok(mac) = hsm
                        .generate_mac(&self.zak, self.mac_algorithm, slot.data(&frame))
                        .await
                    else {
                        // The HSM's own fault log says why; nothing went out.
                        return Err(LinkError::NoMac);
                    };
                    slot.fill(&mut frame, &mac).map(|()| slot.written)
                }
                Err(e) => Err(e),
            },
            None => b.encode(self.dialect, &mut frame),
        };
        if let Err(e) = encoded {
            tracing::error!(issuer = %self.name, error = %e, "cannot encode an issuer request");
            return Err(LinkError::Build);
        }
        let key = match codec::decode(self.dialect, &frame) {
            Ok(m) => self.mux.key_of(&m),
            Err(_) => return Err(LinkError::Build),
        };
        let Ok(rx) = self.mux.wait_for(key.clone(), line.index) else {
            self.metrics.issuer_event(&self.name, "duplicate_key");
            return Err(LinkError::Duplicate);
        };
        let _counted = InFlight::new(self);
        let started = Instant::now();
        if !line.send(frame) {
            self.mux.cancel(&key);
            return Err(LinkError::Unavailable);
        }
        let reply = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => {
                // The line dropped (closed, or it sent garbage) with the request on it: no
                // answer, as a time-out for the terminal (98, reversed), but one event on
                // one line, not N time-outs of the issuer: the breaker does not count it.
                self.mux.gave_up(key);
                self.metrics
                    .issuer_event(&self.name, "line_dropped_request");
                return Err(LinkError::Timeout);
            }
            Err(_) => {
                self.mux.gave_up(key);
                self.meters.timeouts.inc();
                if hsm.is_some()
                    && let Some(n) = self.breaker.note_timeout()
                {
                    tracing::warn!(issuer = %self.name, timeouts = n, "circuit breaker open: requests answered without waiting for the issuer");
                    self.metrics.issuer_event(&self.name, "breaker_opened");
                }
                return Err(LinkError::Timeout);
            }
        };
        self.breaker.note_reply();
        self.meters
            .round_trip
            .observe(started.elapsed().as_secs_f64());
        if let Some(hsm) = hsm
            && self.reply_mac(hsm, &reply).await != Some(true)
        {
            self.note_bad_mac(true);
            return Err(LinkError::Timeout);
        }
        Ok(reply)
    }

    /// Whether a reply from the issuer carries a MAC (field 64) under its ZAK that verifies;
    /// no answer when the HSM could not tell.
    pub(crate) async fn reply_mac(&self, hsm: &MeteredHsm, frame: &[u8]) -> Option<bool> {
        let Ok(msg) = codec::decode(self.dialect, frame) else {
            return Some(false);
        };
        let Some(mac) = msg.binary(64) else {
            return Some(false);
        };
        hsm.verify_mac(&self.zak, self.mac_algorithm, msg.mac_data(), &mac)
            .await
            .ok()
    }

    /// A frame from a line: a reply for a waiting request, a late or unknown reply, or an
    /// issuer's own network management request. `Err` closes the line.
    pub(crate) fn on_frame(&self, line: &Line, frame: Vec<u8>) -> Result<(), &'static str> {
        let msg = match codec::decode(self.dialect, &frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(issuer = %self.name, line = %line.addr, error = %e, "undecodable frame from the issuer: closing the line");
                self.metrics.issuer_event(&self.name, "undecodable");
                return Err("undecodable");
            }
        };
        if !msg.mti().is_response() {
            return self.on_request(line, &msg);
        }
        let unmatched = match self.mux.deliver(&msg, frame.clone()) {
            Ok(()) => return Ok(()),
            Err(u) => u,
        };
        self.meters.late.inc();
        match unmatched {
            Unmatched::Late => {
                crate::fault_warn!(
                    Fault::IssuerMessage,
                    "late",
                    "late reply after its request timed out (a timed-out request is reversed or resent)",
                    issuer = tracing::field::display(&self.name),
                    mti = tracing::field::display(msg.mti()),
                    rc = msg.text(39).unwrap_or("-"),
                );
            }
            Unmatched::UnknownApproval => {
                if self.hold_unknown_approval(frame) {
                    self.changed.notify_one();
                } else {
                    self.metrics
                        .issuer_event(&self.name, "unknown_approval_dropped");
                    crate::fault_warn!(
                        Fault::IssuerMessage,
                        format_args!("{UNKNOWN_APPROVALS_HELD} unchecked"),
                        "approval for no waiting request dropped: too many wait for their MAC check",
                        issuer = tracing::field::display(&self.name),
                    );
                }
            }
            Unmatched::Stray => {
                crate::fault_warn!(
                    Fault::IssuerMessage,
                    "no waiting request",
                    "reply for no waiting request: ignored",
                    issuer = tracing::field::display(&self.name),
                    mti = tracing::field::display(msg.mti()),
                );
            }
        }
        Ok(())
    }

    /// The issuer's own requests: an 0800 gets its 0810 (never an echo of our own).
    fn on_request(&self, line: &Line, msg: &Message<'_>) -> Result<(), &'static str> {
        if msg.mti().as_str() != "0800" {
            crate::fault_warn!(
                Fault::IssuerMessage,
                "not served",
                "request from the issuer not served: ignored",
                issuer = tracing::field::display(&self.name),
                mti = tracing::field::display(msg.mti()),
            );
            return Ok(());
        }
        self.metrics.issuer_echo(&self.name, &line.addr, "received");
        let mut b = MessageBuilder::new(msg.mti().response());
        for n in [7, 11, 70] {
            if let Some(f) = msg.field(n) {
                b.set(
                    n,
                    codec::FieldInput::Wire {
                        data: std::borrow::Cow::Borrowed(f.wire()),
                        units: f.units(),
                    },
                );
            }
        }
        b.set(39, "00");
        match b.encode_to_vec(self.dialect) {
            Ok(v) => {
                line.send(v);
                Ok(())
            }
            Err(_) => Err("reply_encode"),
        }
    }

    /// A line came up.
    pub(crate) fn line_up(&self) {
        self.changed.notify_one();
    }

    /// A line went down: its waiting requests get no answer.
    pub(crate) fn line_down(&self, line: usize) {
        self.mux.fail_line(line);
    }
}

/// Counts a request waiting for the issuer while it lives.
struct InFlight<'a>(&'a Issuer);

impl<'a> InFlight<'a> {
    fn new(i: &'a Issuer) -> Self {
        i.in_flight.fetch_add(1, Ordering::Relaxed);
        i.meters.in_flight.inc();
        Self(i)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.meters.in_flight.dec();
    }
}

/// The configured issuers.
#[derive(Clone, Debug, Default)]
pub struct Issuers {
    list: Vec<Arc<Issuer>>,
}

impl Issuers {
    /// The issuers.
    pub fn new(list: Vec<Arc<Issuer>>) -> Self {
        Self { list }
    }

    /// By index.
    pub fn get(&self, i: usize) -> Option<&Arc<Issuer>> {
        self.list.get(i)
    }

    /// By name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Issuer>> {
        self.list.iter().find(|i| i.name == name)
    }

    /// All of them.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Issuer>> {
        self.list.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(metrics: &Arc<Metrics>) -> Issuer {
        let cfg: IssuerConfig =
            toml::from_str("name = \"cup\"\nlines = [\"127.0.0.1:9\"]").expect("config");
        let zpk = KeyRef::from_text("lmk:001:U0123456789ABCDEF0123456789ABCDEF").expect("zpk");
        let zak = KeyRef::from_text("lmk:008:U0123456789ABCDEF0123456789ABCDEF").expect("zak");
        Issuer::new(&cfg, "01020000", zpk, zak, Arc::clone(metrics), 1).expect("issuer")
    }

    /// An approval (0210, `00`) for a trace nobody sent.
    fn approval(issuer: &Issuer, stan: u32) -> Vec<u8> {
        let mut b = MessageBuilder::new(codec::Mti::parse("0210").expect("mti"));
        b.set(3, "000000".to_owned())
            .set(4, "000000000100".to_owned())
            .set(11, format!("{stan:06}"))
            .set(39, "00".to_owned())
            .set(41, "10000001".to_owned());
        b.encode_to_vec(issuer.dialect).expect("encode")
    }

    #[test]
    fn approvals_for_no_request_are_held_for_their_check_up_to_a_bound_and_the_rest_counted() {
        let metrics = Arc::new(Metrics::new());
        let issuer = issuer(&metrics);
        let line = Arc::clone(&issuer.lines()[0]);
        let flood = UNKNOWN_APPROVALS_HELD + 500;
        for stan in 0..flood {
            let frame = approval(&issuer, stan as u32 + 1);
            assert_eq!(issuer.on_frame(&line, frame), Ok(()));
        }
        let dropped =
            "switch_issuer_events_total{issuer=\"cup\",event=\"unknown_approval_dropped\"}";
        let count = |text: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(dropped))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        assert_eq!(count(&metrics.encode()), Some(500));
        let held = issuer.take_unknown_approvals();
        assert_eq!(held.len(), UNKNOWN_APPROVALS_HELD);
        // The first ones are kept, in order, as they came.
        assert_eq!(held[0], approval(&issuer, 1));
        // Taken by the worker, the queue has room again.
        assert_eq!(issuer.on_frame(&line, approval(&issuer, 1)), Ok(()));
        assert_eq!(issuer.take_unknown_approvals().len(), 1);
        assert_eq!(count(&metrics.encode()), Some(500));
    }
}
