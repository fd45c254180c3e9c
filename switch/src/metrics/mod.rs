//! Prometheus metrics. Every label value comes from a fixed set (transaction kinds, response
//! codes, reject reasons, card types): never a PAN, a TID or anything a peer chose.
//!
//! The README's metrics table lists every family with its type and labels (a test checks it
//! against a running switch's `/metrics`).
//!
//! Issuer and line label values are the names and addresses in the configuration.

pub mod hsm_remote;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels of a transaction count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TxnLabels {
    /// Transaction kind.
    pub kind: &'static str,
    /// Response code.
    pub rc: &'static str,
}

/// A kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Transaction kind.
    pub kind: &'static str,
}

/// An HSM operation label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// Operation.
    pub op: &'static str,
}

/// An HSM operation and what its error says.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HsmErrorLabels {
    /// Operation.
    pub op: &'static str,
    /// `input`, `key`, `limit`, `other`.
    pub kind: &'static str,
}

/// A reject reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why a frame or connection was rejected.
    pub reason: &'static str,
}

/// A logged event label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// What happened.
    pub event: &'static str,
}

/// A TLS listener and a handshake's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabels {
    /// `terminals`.
    pub listener: &'static str,
    /// `ok`, `failed`, `timeout`.
    pub result: &'static str,
}

/// A card type label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CardLabel {
    /// `debit`, `credit`, `qr`.
    pub card_type: &'static str,
}

/// A journal file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabel {
    /// `database` or `wal`.
    pub file: &'static str,
}

/// An issuer, by its configured name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabel {
    /// Issuer name from the configuration.
    pub issuer: String,
}

/// One issuer line.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LineLabels {
    /// Issuer name from the configuration.
    pub issuer: String,
    /// Line address from the configuration.
    pub line: String,
}

/// An issuer and an event from a fixed set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerEvent {
    /// Issuer name from the configuration.
    pub issuer: String,
    /// Event.
    pub event: &'static str,
}

/// An echo on a line.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EchoLabels {
    /// Issuer name from the configuration.
    pub issuer: String,
    /// Line address from the configuration.
    pub line: String,
    /// `sent` or `received`.
    pub direction: &'static str,
}

/// Round edges, 1–2.5–5 per decade, from `from` until one is at least `to` (seconds).
fn round_buckets(from: f64, to: f64) -> Vec<f64> {
    let mut edges = Vec::new();
    let mut decade = from;
    'decades: loop {
        for step in [1.0, 2.5, 5.0] {
            let edge = decade * step;
            // Printed as written: 0.0025, not 0.0025000000000000005.
            let edge = (edge * 1e9).round() / 1e9;
            edges.push(edge);
            if edge >= to {
                break 'decades;
            }
        }
        decade *= 10.0;
    }
    edges
}

/// A whole request: 0.5 ms to at least twice the longest issuer time-out (a timed-out
/// request lands in a bucket, not in `+Inf`).
fn request_buckets(longest_issuer_timeout: Duration) -> Vec<f64> {
    let mut edges = vec![0.000_5];
    edges.extend(round_buckets(
        0.001,
        (2.0 * longest_issuer_timeout.as_secs_f64()).max(10.0),
    ));
    edges
}

/// An HSM call: 10 µs (in process) to 1 s (a network HSM under load).
fn hsm_buckets() -> Vec<f64> {
    round_buckets(0.000_01, 1.0)
}

/// A journal commit: 100 µs (a fast fsync) to 10 s (a database failing over).
fn commit_buckets() -> Vec<f64> {
    round_buckets(0.000_1, 10.0)
}

/// Why a frame was rejected or a connection closed, as `switch_frames_rejected_total`
/// labels it.
pub const REJECT_REASONS: &[&str] = &[
    "auth_timeout",
    "evicted",
    "read_timeout",
    "idle_timeout",
    "oversized",
    "io",
    "in_flight_full",
    "reply_encode",
    "format",
    "undecodable",
    "missing_field",
    "unexpected_response",
    "stale_retry",
];

/// Why a request failed authentication (`security_log::Event::AUTH_FAILURES`).
pub const AUTH_FAILURE_REASONS: &[&str] = &[
    "unknown_terminal",
    "wrong_merchant",
    "not_signed_on",
    "missing_mac",
    "bad_mac",
    "terminal_disabled",
];

/// The events whose log lines are rate-limited (`security_log::Event::ALL`).
pub const LOG_EVENTS: &[&str] = &[
    "unknown_terminal",
    "wrong_merchant",
    "not_signed_on",
    "missing_mac",
    "bad_mac",
    "terminal_disabled",
    "undecodable",
    "sign_on",
    "connection_refused",
    "connection_closed",
];

/// Why a connection was refused at once.
pub const REFUSED_REASONS: &[&str] = &["global_limit", "peer_limit"];

/// The HSM operations timed.
pub const HSM_OPS: &[&str] = &[
    "pin_verify",
    "pin_translate",
    "mac_verify",
    "mac_generate",
    "terminal_keys",
];

/// What HSM errors say (see `hsm::error_kind`).
pub const HSM_ERROR_KINDS: &[&str] = &["input", "key", "limit", "unavailable", "other"];

/// Store-and-forward events.
pub const SAF_EVENTS: &[&str] = &["queued", "sent", "acknowledged", "expired"];

/// Issuer-link problems.
pub const ISSUER_EVENTS: &[&str] = &[
    "bad_mac",
    "undecodable",
    "duplicate_key",
    "breaker_opened",
    "line_dropped_request",
    "too_many_waiting",
    "unknown_approval_dropped",
];

/// Card types of amounts and fees.
pub const CARD_TYPES: &[&str] = &["debit", "credit", "qr"];

/// An issuer and its lines, for the series made at start.
pub struct IssuerLines<'a> {
    /// Its configured name.
    pub name: &'a str,
    /// Its configured line addresses.
    pub lines: &'a [String],
}

/// One declined request as the status page lists it: never more of the card than the
/// masked PAN.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Declined {
    /// When it was answered (UTC, ISO 8601).
    pub time_utc: String,
    /// Its kind.
    pub kind: &'static str,
    /// The terminal.
    pub tid: String,
    /// The masked PAN or payment code, or `-`.
    pub pan: String,
    /// Amount, fen.
    pub amount_fen: u64,
    /// Response code.
    pub rc: String,
    /// The code in words.
    pub reason: &'static str,
}

/// The last declines, newest first, at most [`LastDeclines::KEPT`].
#[derive(Debug, Default)]
pub struct LastDeclines(std::sync::Mutex<std::collections::VecDeque<Declined>>);

impl LastDeclines {
    /// How many are kept.
    pub const KEPT: usize = 20;

    /// Adds one, forgetting the oldest beyond [`Self::KEPT`].
    pub fn push(&self, d: Declined) {
        if let Ok(mut q) = self.0.lock() {
            q.push_front(d);
            q.truncate(Self::KEPT);
        }
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Declined> {
        self.0
            .lock()
            .map_or_else(|_| Vec::new(), |q| q.iter().cloned().collect())
    }
}

/// The switch's metrics.
pub struct Metrics {
    root: Registry,
    /// The last declines (for the status page; not a metric).
    pub last_declines: LastDeclines,
    /// Transactions by kind and response code.
    pub transactions: Family<TxnLabels, Counter>,
    /// Whole-request latency by kind.
    pub request_duration: HistogramFamily<KindLabel>,
    /// HSM call latency by operation.
    pub hsm_duration: HistogramFamily<OpLabel>,
    /// HSM calls that failed, by operation and what the error says.
    pub hsm_errors: Family<HsmErrorLabels, Counter>,
    /// Serving (1) or not (0: starting, stopping, or the journal lost or failing).
    pub ready: Gauge,
    /// The terminal connection limit (`limits.max_connections`).
    pub connections_limit: Gauge,
    /// Free space for the journal's files, bytes (SQLite).
    pub journal_disk_free: Gauge,
    /// Journal group-commit latency.
    pub journal_commit: Histogram,
    /// Requests per journal group commit.
    pub journal_batch: Histogram,
    /// WAL checkpoints off the writer's thread (SQLite): how long each took.
    pub journal_checkpoint: Histogram,
    /// Frames in the SQLite WAL at the last checkpoint.
    pub journal_wal_frames: Gauge,
    /// Open terminal connections.
    pub connections_active: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Accepted terminal connections.
    pub connections_total: Counter,
    /// Connections refused at a limit, by which.
    pub connections_refused: Family<ReasonLabel, Counter>,
    /// Requests that failed authentication (terminal, session, MAC), by reason.
    pub auth_failures: Family<ReasonLabel, Counter>,
    /// Log lines dropped by the rate limit, by event.
    pub log_suppressed: Family<EventLabel, Counter>,
    /// Request tasks that panicked (answered from their record, or 96).
    pub request_panics: Counter,
    /// Frames rejected, or connections closed, by reason.
    pub frames_rejected: Family<ReasonLabel, Counter>,
    /// Approved amounts by card type, fen.
    pub amount_fen: Family<CardLabel, Counter<u64, AtomicU64>>,
    /// Fees by card type, fen.
    pub fees_fen: Family<CardLabel, Counter<u64, AtomicU64>>,
    /// Pre-authorisations whose holds lapsed uncompleted (the expiry job).
    pub preauths_expired: Counter,
    /// Issuer lines up (1) or down (0).
    pub issuer_line_up: Family<LineLabels, Gauge>,
    /// Requests waiting for an issuer.
    pub issuer_in_flight: Family<IssuerLabel, Gauge>,
    /// Issuer round trips.
    pub issuer_round_trip: HistogramFamily<IssuerLabel>,
    /// Requests that got no reply in time.
    pub issuer_timeouts: Family<IssuerLabel, Counter>,
    /// Replies for no waiting request.
    pub issuer_late: Family<IssuerLabel, Counter>,
    /// Store-and-forward queue events.
    pub issuer_saf: Family<IssuerEvent, Counter>,
    /// Store-and-forward entries waiting.
    pub issuer_saf_queued: Family<IssuerLabel, Gauge>,
    /// When the oldest store-and-forward entry waiting was made (Unix seconds; 0: none).
    pub issuer_saf_oldest: Family<IssuerLabel, Gauge>,
    /// Terminals signed on (sessions in memory).
    pub sessions_active: Gauge,
    /// Open batches holding approved transactions.
    pub open_batches: Gauge,
    /// Approved transactions in open batches.
    pub open_batch_transactions: Gauge,
    /// The journal's files, bytes (SQLite: the database and its write-ahead log).
    pub journal_bytes: Family<FileLabel, Gauge>,
    /// Stand-in approvals.
    pub issuer_stand_in: Family<IssuerLabel, Counter>,
    /// Echoes sent and received.
    pub issuer_echoes: Family<EchoLabels, Counter>,
    /// Other issuer-link events.
    pub issuer_events: Family<IssuerEvent, Counter>,
    /// Network HSMs: commands, latency, up.
    pub hsm_remote: hsm_remote::RemoteMetrics,
    /// TLS handshakes by listener and outcome.
    pub tls_handshakes: Family<TlsLabels, Counter>,
    /// Certificate reloads (SIGHUP) by outcome.
    pub tls_reloads: Family<ResultLabel, Counter>,
    /// Configuration reloads by outcome (`ok`, `invalid`).
    pub config_reloads: Family<ResultLabel, Counter>,
    /// Whether the last configuration reload was applied (1) or refused (0).
    pub config_last_reload_ok: Gauge,
    /// The series every sale counts, found without their families' locks.
    hot: HotSeries,
}

/// The series a request counts on its way (its kind and code, its latency, its HSM calls,
/// an approved sale's amount and fee), each made when the metrics are primed and kept
/// here as well as in its family. A family finds a series under a lock by its labels'
/// SipHash; these are found by a fixed-seed hash of the same labels with no lock, and are
/// the same series (a counter or histogram is a handle to shared state). Labels not made
/// at priming, and a switch whose metrics were never primed, go to the family.
#[derive(Default)]
struct HotSeries {
    transactions: Primed<TxnLabels, Counter>,
    requests: Primed<KindLabel, Histogram>,
    hsm: Primed<OpLabel, Histogram>,
    amounts: Primed<CardLabel, Counter<u64, AtomicU64>>,
    fees: Primed<CardLabel, Counter<u64, AtomicU64>>,
}

/// Series by label set, fixed once made.
struct Primed<L, M>(HashMap<L, M, foldhash::fast::FixedState>);

impl<L, M> Default for Primed<L, M> {
    fn default() -> Self {
        Self(HashMap::default())
    }
}

impl<L: Clone + Hash + Eq, M: Clone> Primed<L, M> {
    /// Makes the series of `labels` in `family` and keeps it.
    fn make<C: MetricConstructor<M>>(&mut self, family: &Family<L, M, C>, labels: L) {
        let series = family.get_or_create(&labels).clone();
        self.0.insert(labels, series);
    }

    /// The series of `labels`, from here or else from `family`.
    fn with<C: MetricConstructor<M>>(
        &self,
        family: &Family<L, M, C>,
        labels: &L,
        f: impl FnOnce(&M),
    ) {
        match self.0.get(labels) {
            Some(series) => f(series),
            None => f(&family.get_or_create(labels)),
        }
    }
}

/// An outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `failed` or `invalid`.
    pub result: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Bucket edges a histogram family's members are made with.
#[derive(Clone, Debug)]
pub struct Buckets(std::sync::Arc<[f64]>);

impl prometheus_client::metrics::family::MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A histogram family whose members all have the same edges.
pub type HistogramFamily<L> = Family<L, Histogram, Buckets>;

fn histograms<L: Clone + std::hash::Hash + Eq>(edges: Vec<f64>) -> HistogramFamily<L> {
    Family::new_with_constructor(Buckets(edges.into()))
}

impl Metrics {
    /// Every metric, for issuers whose time-outs are at most 5 s, with no series made
    /// yet (tests; the daemon uses [`Metrics::for_switch`]).
    pub fn new() -> Self {
        Self::with_timeout(Duration::from_secs(5))
    }

    /// Every metric, with every series of a fixed label set made at 0 (so that
    /// `increase(...)` sees the first event), the request buckets reaching twice the
    /// longest issuer time-out.
    pub fn for_switch(issuers: &[IssuerLines<'_>], longest_issuer_timeout: Duration) -> Self {
        let mut m = Self::with_timeout(longest_issuer_timeout);
        m.prime(issuers);
        m
    }

    /// Makes every series of a fixed label set, at 0.
    fn prime(&mut self, issuers: &[IssuerLines<'_>]) {
        let kinds = crate::model::TxnKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain([crate::model::TxnKind::UNKNOWN]);
        let hot = &mut self.hot;
        for kind in kinds {
            hot.requests
                .make(&self.request_duration, KindLabel { kind });
            for code in crate::model::ResponseCode::KNOWN {
                let rc = code.label();
                hot.transactions
                    .make(&self.transactions, TxnLabels { kind, rc });
            }
        }
        for op in HSM_OPS {
            hot.hsm.make(&self.hsm_duration, OpLabel { op });
            for kind in HSM_ERROR_KINDS {
                let _ = self.hsm_errors.get_or_create(&HsmErrorLabels { op, kind });
            }
        }
        for reason in REJECT_REASONS {
            let _ = self.frames_rejected.get_or_create(&ReasonLabel { reason });
        }
        for reason in REFUSED_REASONS {
            let _ = self
                .connections_refused
                .get_or_create(&ReasonLabel { reason });
        }
        for event in LOG_EVENTS {
            let _ = self.log_suppressed.get_or_create(&EventLabel { event });
        }
        for reason in AUTH_FAILURE_REASONS {
            let _ = self.auth_failures.get_or_create(&ReasonLabel { reason });
        }
        for card_type in CARD_TYPES {
            hot.amounts.make(&self.amount_fen, CardLabel { card_type });
            hot.fees.make(&self.fees_fen, CardLabel { card_type });
        }
        for result in ["ok", "invalid"] {
            let _ = self.config_reloads.get_or_create(&ResultLabel { result });
        }
        for i in issuers {
            self.prime_issuer(i);
        }
    }

    /// Makes an issuer's series, at 0 (at start, and for an issuer a reload adds).
    pub fn prime_issuer(&self, i: &IssuerLines<'_>) {
        let issuer = || IssuerLabel {
            issuer: i.name.to_owned(),
        };
        let _ = self.issuer_in_flight.get_or_create(&issuer());
        let _ = self.issuer_round_trip.get_or_create(&issuer());
        let _ = self.issuer_timeouts.get_or_create(&issuer());
        let _ = self.issuer_late.get_or_create(&issuer());
        let _ = self.issuer_saf_queued.get_or_create(&issuer());
        let _ = self.issuer_saf_oldest.get_or_create(&issuer());
        let _ = self.issuer_stand_in.get_or_create(&issuer());
        for event in SAF_EVENTS {
            let _ = self.issuer_saf.get_or_create(&IssuerEvent {
                issuer: i.name.to_owned(),
                event,
            });
        }
        for event in ISSUER_EVENTS {
            let _ = self.issuer_events.get_or_create(&IssuerEvent {
                issuer: i.name.to_owned(),
                event,
            });
        }
        for line in i.lines {
            let _ = self.issuer_line_up.get_or_create(&LineLabels {
                issuer: i.name.to_owned(),
                line: line.clone(),
            });
            for direction in ["sent", "received"] {
                let _ = self.issuer_echoes.get_or_create(&EchoLabels {
                    issuer: i.name.to_owned(),
                    line: line.clone(),
                    direction,
                });
            }
        }
    }

    /// Drops the series of a line no longer configured (a reload removed it).
    pub fn forget_line(&self, issuer: &str, line: &str) {
        let _ = self.issuer_line_up.remove(&LineLabels {
            issuer: issuer.to_owned(),
            line: line.to_owned(),
        });
        for direction in ["sent", "received"] {
            let _ = self.issuer_echoes.remove(&EchoLabels {
                issuer: issuer.to_owned(),
                line: line.to_owned(),
                direction,
            });
        }
    }

    fn with_timeout(longest_issuer_timeout: Duration) -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(crate::process_metrics::Process::new()));
        let registry = root.sub_registry_with_prefix("switch");
        let build = Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION")),
            ("revision", env!("SWITCH_REVISION")),
        ]);
        registry.register("build", "The switch's version and source revision", build);
        let transactions = Family::<TxnLabels, Counter>::default();
        let request_duration = histograms::<KindLabel>(request_buckets(longest_issuer_timeout));
        let hsm_duration = histograms::<OpLabel>(hsm_buckets());
        let journal_commit = Histogram::new(commit_buckets());
        let hsm_errors = Family::<HsmErrorLabels, Counter>::default();
        let ready = Gauge::default();
        let connections_limit = Gauge::default();
        let journal_disk_free = Gauge::default();
        registry.register(
            "hsm_errors",
            "HSM calls that failed, by operation and kind of error",
            hsm_errors.clone(),
        );
        registry.register(
            "ready",
            "Serving (1), or not (0): starting, stopping, or the journal lost or failing",
            ready.clone(),
        );
        registry.register(
            "connections_limit",
            "The terminal connection limit (limits.max_connections)",
            connections_limit.clone(),
        );
        registry.register(
            "journal_disk_free_bytes",
            "Free space on the journal's file system, bytes (SQLite)",
            journal_disk_free.clone(),
        );
        let journal_batch = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let connections_active = Gauge::default();
        let connections_total = Counter::default();
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let log_suppressed = Family::<EventLabel, Counter>::default();
        let request_panics = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log queue was full or the write failed",
            crate::log_sink::dropped().clone(),
        );
        registry.register(
            "log_lines_repeated",
            "Error lines of the switch's own faults not written: the same fault was logged less than a second before",
            crate::fault_log::faults().repeated().clone(),
        );
        registry.register(
            "request_panics",
            "Request tasks that panicked: answered from their record, or 96",
            request_panics.clone(),
        );
        let frames_rejected = Family::<ReasonLabel, Counter>::default();
        let amount_fen = Family::<CardLabel, Counter<u64, AtomicU64>>::default();
        let fees_fen = Family::<CardLabel, Counter<u64, AtomicU64>>::default();
        registry.register(
            "transactions",
            "Requests answered, by kind and response code",
            transactions.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole-request latency, frame in to reply out",
            request_duration.clone(),
        );
        registry.register(
            "hsm_duration_seconds",
            "HSM call latency by operation",
            hsm_duration.clone(),
        );
        registry.register(
            "journal_commit_duration_seconds",
            "Journal group-commit latency (one fsync)",
            journal_commit.clone(),
        );
        registry.register(
            "journal_batch_size",
            "Requests covered by one journal commit",
            journal_batch.clone(),
        );
        let journal_checkpoint = Histogram::new(commit_buckets());
        registry.register(
            "journal_checkpoint_duration_seconds",
            "SQLite WAL checkpoints (WAL to database, fsync), run beside the writer",
            journal_checkpoint.clone(),
        );
        let journal_wal_frames = Gauge::default();
        registry.register(
            "journal_wal_frames",
            "Frames in the SQLite WAL at the last checkpoint",
            journal_wal_frames.clone(),
        );
        registry.register(
            "connections_active",
            "Open terminal connections",
            connections_active.clone(),
        );
        registry.register(
            "connections",
            "Terminal connections accepted",
            connections_total.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because the limit was reached",
            connections_refused.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests that failed authentication (terminal, session, MAC), by reason",
            auth_failures.clone(),
        );
        registry.register(
            "log_lines_suppressed",
            "Log lines dropped by the per-peer rate limit, by event",
            log_suppressed.clone(),
        );
        registry.register(
            "frames_rejected",
            "Frames rejected or connections closed, by reason",
            frames_rejected.clone(),
        );
        registry.register(
            "amount_fen",
            "Approved amounts, fen, by card type",
            amount_fen.clone(),
        );
        registry.register("fees_fen", "MDR fees, fen, by card type", fees_fen.clone());
        let preauths_expired = Counter::default();
        registry.register(
            "preauths_expired",
            "Pre-authorisations whose holds lapsed uncompleted",
            preauths_expired.clone(),
        );
        let issuer_line_up = Family::<LineLabels, Gauge>::default();
        let issuer_in_flight = Family::<IssuerLabel, Gauge>::default();
        let issuer_round_trip = histograms::<IssuerLabel>(request_buckets(longest_issuer_timeout));
        let issuer_timeouts = Family::<IssuerLabel, Counter>::default();
        let issuer_late = Family::<IssuerLabel, Counter>::default();
        let issuer_saf = Family::<IssuerEvent, Counter>::default();
        let issuer_stand_in = Family::<IssuerLabel, Counter>::default();
        let issuer_saf_queued = Family::<IssuerLabel, Gauge>::default();
        let issuer_saf_oldest = Family::<IssuerLabel, Gauge>::default();
        let sessions_active = Gauge::default();
        let open_batches = Gauge::default();
        let open_batch_transactions = Gauge::default();
        registry.register(
            "open_batches",
            "Terminals' open batches that hold approved transactions (read every 15 s)",
            open_batches.clone(),
        );
        registry.register(
            "open_batch_transactions",
            "Approved sales, voids and refunds in open batches (read every 15 s)",
            open_batch_transactions.clone(),
        );
        let journal_bytes = Family::<FileLabel, Gauge>::default();
        let issuer_echoes = Family::<EchoLabels, Counter>::default();
        let issuer_events = Family::<IssuerEvent, Counter>::default();
        registry.register(
            "issuer_line_up",
            "Issuer lines connected (1) or not (0)",
            issuer_line_up.clone(),
        );
        registry.register(
            "issuer_in_flight",
            "Requests waiting for an issuer's reply",
            issuer_in_flight.clone(),
        );
        registry.register(
            "issuer_round_trip_seconds",
            "Issuer request to reply",
            issuer_round_trip.clone(),
        );
        registry.register(
            "issuer_timeouts",
            "Issuer requests without a reply in time (answered 98 and reversed)",
            issuer_timeouts.clone(),
        );
        registry.register(
            "issuer_late_replies",
            "Issuer replies for no waiting request (late or unknown)",
            issuer_late.clone(),
        );
        registry.register(
            "issuer_saf",
            "Store-and-forward reversals and advices, by event",
            issuer_saf.clone(),
        );
        registry.register(
            "issuer_saf_queued",
            "Store-and-forward reversals and advices waiting to be acknowledged",
            issuer_saf_queued.clone(),
        );
        registry.register(
            "issuer_saf_oldest_created_seconds",
            "When the oldest store-and-forward entry waiting was made, Unix seconds (0: none)",
            issuer_saf_oldest.clone(),
        );
        registry.register(
            "sessions_active",
            "Terminals signed on",
            sessions_active.clone(),
        );
        registry.register(
            "journal_size_bytes",
            "The journal's files, bytes, by file (SQLite: database, wal)",
            journal_bytes.clone(),
        );
        registry.register(
            "issuer_stand_in_approvals",
            "Approvals given on an unreachable issuer's behalf",
            issuer_stand_in.clone(),
        );
        registry.register(
            "issuer_echoes",
            "Network management echoes on issuer lines",
            issuer_echoes.clone(),
        );
        registry.register(
            "issuer_events",
            "Issuer-link problems, by event",
            issuer_events.clone(),
        );
        let tls_handshakes = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the TLS listeners, by outcome (ok, failed, timeout)",
            tls_handshakes.clone(),
        );
        let tls_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS certificate reloads (SIGHUP), by outcome",
            tls_reloads.clone(),
        );
        let config_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP, switch reload), by outcome (ok, invalid)",
            config_reloads.clone(),
        );
        let config_last_reload_ok = Gauge::default();
        config_last_reload_ok.set(1);
        registry.register(
            "config_last_reload_successful",
            "1 when the last configuration reload was applied (or none was asked), 0 when it was refused",
            config_last_reload_ok.clone(),
        );
        let hsm_remote = hsm_remote::RemoteMetrics::new();
        registry.register(
            "hsm_remote_requests",
            "Commands sent to network HSMs, by HSM, command and result (error code or link failure)",
            hsm_remote.requests.clone(),
        );
        registry.register(
            "hsm_remote_duration_seconds",
            "Network HSM command latency, by HSM",
            hsm_remote.duration.clone(),
        );
        registry.register(
            "hsm_up",
            "Network HSMs answering (1) or not (0)",
            hsm_remote.up.clone(),
        );
        Self {
            config_reloads,
            config_last_reload_ok,
            hot: HotSeries::default(),
            tls_reloads,
            tls_handshakes,
            hsm_remote,
            root,
            last_declines: LastDeclines::default(),
            transactions,
            request_duration,
            hsm_duration,
            hsm_errors,
            ready,
            connections_limit,
            journal_disk_free,
            journal_commit,
            journal_batch,
            journal_checkpoint,
            journal_wal_frames,
            connections_active,
            connections_total,
            connections_refused,
            auth_failures,
            log_suppressed,
            request_panics,
            frames_rejected,
            amount_fen,
            fees_fen,
            preauths_expired,
            issuer_line_up,
            issuer_in_flight,
            issuer_round_trip,
            issuer_timeouts,
            issuer_late,
            issuer_saf,
            issuer_saf_queued,
            issuer_saf_oldest,
            sessions_active,
            open_batches,
            open_batch_transactions,
            journal_bytes,
            issuer_stand_in,
            issuer_echoes,
            issuer_events,
        }
    }

    /// Counts a TLS handshake.
    pub fn tls_handshake(&self, listener: &'static str, result: &'static str) {
        self.tls_handshakes
            .get_or_create(&TlsLabels { listener, result })
            .inc();
    }

    /// Counts a certificate reload.
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.tls_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts a configuration reload.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "invalid" };
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
        self.config_last_reload_ok.set(i64::from(ok));
    }

    /// Both reload outcomes at zero.
    pub fn prime_tls_reloads(&self) {
        for result in ["ok", "failed"] {
            let _ = self.tls_reloads.get_or_create(&ResultLabel { result });
        }
    }

    /// Every handshake outcome of a TLS listener at zero.
    pub fn prime_tls(&self, listener: &'static str) {
        for result in ["ok", "failed", "timeout"] {
            let _ = self
                .tls_handshakes
                .get_or_create(&TlsLabels { listener, result });
        }
    }

    /// Counts an issuer-link event.
    pub fn issuer_event(&self, issuer: &str, event: &'static str) {
        debug_assert!(
            ISSUER_EVENTS.contains(&event),
            "issuer event {event} not listed"
        );
        self.issuer_events
            .get_or_create(&IssuerEvent {
                issuer: issuer.to_owned(),
                event,
            })
            .inc();
    }

    /// Counts a store-and-forward event.
    pub fn saf_event(&self, issuer: &str, event: &'static str) {
        debug_assert!(SAF_EVENTS.contains(&event), "SAF event {event} not listed");
        self.issuer_saf
            .get_or_create(&IssuerEvent {
                issuer: issuer.to_owned(),
                event,
            })
            .inc();
    }

    /// Counts an echo.
    pub fn issuer_echo(&self, issuer: &str, line: &str, direction: &'static str) {
        self.issuer_echoes
            .get_or_create(&EchoLabels {
                issuer: issuer.to_owned(),
                line: line.to_owned(),
                direction,
            })
            .inc();
    }

    /// Counts a rejected frame or closed connection.
    pub fn reject(&self, reason: &'static str) {
        debug_assert!(
            REJECT_REASONS.contains(&reason),
            "reject reason {reason} not listed"
        );
        self.frames_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Records an HSM call's duration.
    pub fn hsm(&self, op: &'static str, d: Duration) {
        debug_assert!(HSM_OPS.contains(&op), "HSM operation {op} not listed");
        self.hot.hsm.with(&self.hsm_duration, &OpLabel { op }, |h| {
            h.observe(d.as_secs_f64())
        });
    }

    /// Counts a request of `kind` answered with `rc`.
    pub fn transaction(&self, kind: &'static str, rc: &'static str) {
        self.hot
            .transactions
            .with(&self.transactions, &TxnLabels { kind, rc }, |c| {
                c.inc();
            });
    }

    /// Records a request's latency, frame in to reply out.
    pub fn request(&self, kind: &'static str, latency: Duration) {
        self.hot
            .requests
            .with(&self.request_duration, &KindLabel { kind }, |h| {
                h.observe(latency.as_secs_f64())
            });
    }

    /// Adds an approved sale's amount and fee to its card type's totals.
    pub fn sale(&self, card_type: &'static str, amount_fen: u64, fee_fen: u64) {
        let label = CardLabel { card_type };
        self.hot.amounts.with(&self.amount_fen, &label, |c| {
            c.inc_by(amount_fen);
        });
        self.hot.fees.with(&self.fees_fen, &label, |c| {
            c.inc_by(fee_fen);
        });
    }

    /// Counts a failed HSM call.
    pub fn hsm_error(&self, op: &'static str, kind: &'static str) {
        debug_assert!(
            HSM_ERROR_KINDS.contains(&kind),
            "HSM error kind {kind} not listed"
        );
        self.hsm_errors
            .get_or_create(&HsmErrorLabels { op, kind })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.root).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of `name{labels}` in the exposition, its value.
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    /// A primed switch's hot series are its families' series: what is counted through
    /// them is what `/metrics` shows, and a label set made later still counts.
    #[test]
    fn hot_series_are_the_families_series() {
        for primed in [true, false] {
            let m = if primed {
                Metrics::for_switch(&[], Duration::from_secs(5))
            } else {
                Metrics::new()
            };
            assert_eq!(m.hot.transactions.0.is_empty(), !primed);
            m.transaction("sale", "00");
            m.transaction("sale", "00");
            m.transaction("sale", "not-primed");
            m.request("sale", Duration::from_millis(3));
            m.hsm("pin_verify", Duration::from_micros(40));
            m.sale("debit", 10_000, 50);
            m.sale("debit", 2_000, 10);
            let text = m.encode();
            for (series, value) in [
                (r#"switch_transactions_total{kind="sale",rc="00"}"#, "2"),
                (
                    r#"switch_transactions_total{kind="sale",rc="not-primed"}"#,
                    "1",
                ),
                (r#"switch_request_duration_seconds_count{kind="sale"}"#, "1"),
                (r#"switch_hsm_duration_seconds_count{op="pin_verify"}"#, "1"),
                (r#"switch_amount_fen_total{card_type="debit"}"#, "12000"),
                (r#"switch_fees_fen_total{card_type="debit"}"#, "60"),
            ] {
                assert_eq!(
                    sample(&text, series).as_deref(),
                    Some(value),
                    "{series}, primed {primed}"
                );
            }
        }
    }
}
