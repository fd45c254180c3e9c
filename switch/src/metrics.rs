//! Prometheus metrics. Every label value comes from a fixed set (transaction kinds, response
//! codes, reject reasons, card types): never a PAN, a TID or anything a peer chose.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `switch_transactions_total` | counter | `kind`, `rc` |
//! | `switch_request_duration_seconds` | histogram | `kind` |
//! | `switch_hsm_duration_seconds` | histogram | `op` |
//! | `switch_journal_commit_duration_seconds` | histogram | |
//! | `switch_journal_batch_size` | histogram | |
//! | `switch_connections_active` | gauge | |
//! | `switch_connections_total` | counter | |
//! | `switch_connections_refused_total` | counter | `reason` (`global_limit`, `peer_limit`) |
//! | `switch_frames_rejected_total` | counter | `reason` |
//! | `switch_auth_failures_total` | counter | `reason` (`unknown_terminal`, `wrong_merchant`, `not_signed_on`, `missing_mac`, `bad_mac`) |
//! | `switch_log_lines_suppressed_total` | counter | `event` |
//! | `switch_log_lines_dropped_total` | counter | |
//! | `switch_request_panics_total` | counter | |
//! | `switch_amount_fen_total` | counter | `card_type` |
//! | `switch_fees_fen_total` | counter | `card_type` |
//! | `switch_issuer_line_up` | gauge | `issuer`, `line` |
//! | `switch_issuer_in_flight` | gauge | `issuer` |
//! | `switch_issuer_round_trip_seconds` | histogram | `issuer` |
//! | `switch_issuer_timeouts_total` | counter | `issuer` |
//! | `switch_issuer_late_replies_total` | counter | `issuer` |
//! | `switch_issuer_saf_total` | counter | `issuer`, `event` (queued, sent, acknowledged, expired) |
//! | `switch_issuer_saf_queued` | gauge | `issuer` |
//! | `switch_issuer_stand_in_approvals_total` | counter | `issuer` |
//! | `switch_issuer_echoes_total` | counter | `issuer`, `line`, `direction` (sent, received) |
//! | `switch_issuer_events_total` | counter | `issuer`, `event` (bad_mac, undecodable, duplicate_key, breaker_opened) |
//!
//! Issuer and line label values are the names and addresses in the configuration.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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

/// A card type label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CardLabel {
    /// `debit`, `credit`, `qr`.
    pub card_type: &'static str,
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

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 20 µs to ~5 s.
    exponential_buckets(0.000_02, 2.0, 18)
}

/// The switch's metrics.
pub struct Metrics {
    registry: Registry,
    /// Transactions by kind and response code.
    pub transactions: Family<TxnLabels, Counter>,
    /// Whole-request latency by kind.
    pub request_duration: Family<KindLabel, Histogram>,
    /// HSM call latency by operation.
    pub hsm_duration: Family<OpLabel, Histogram>,
    /// Journal group-commit latency.
    pub journal_commit: Histogram,
    /// Requests per journal group commit.
    pub journal_batch: Histogram,
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
    /// Issuer lines up (1) or down (0).
    pub issuer_line_up: Family<LineLabels, Gauge>,
    /// Requests waiting for an issuer.
    pub issuer_in_flight: Family<IssuerLabel, Gauge>,
    /// Issuer round trips.
    pub issuer_round_trip: Family<IssuerLabel, Histogram>,
    /// Requests that got no reply in time.
    pub issuer_timeouts: Family<IssuerLabel, Counter>,
    /// Replies for no waiting request.
    pub issuer_late: Family<IssuerLabel, Counter>,
    /// Store-and-forward queue events.
    pub issuer_saf: Family<IssuerEvent, Counter>,
    /// Store-and-forward entries waiting.
    pub issuer_saf_queued: Family<IssuerLabel, Gauge>,
    /// Stand-in approvals.
    pub issuer_stand_in: Family<IssuerLabel, Counter>,
    /// Echoes sent and received.
    pub issuer_echoes: Family<EchoLabels, Counter>,
    /// Other issuer-link events.
    pub issuer_events: Family<IssuerEvent, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switch");
        let transactions = Family::<TxnLabels, Counter>::default();
        let request_duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets()) as Histogram
        });
        let hsm_duration = Family::<OpLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets()) as Histogram
        });
        let journal_commit = Histogram::new(latency_buckets());
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
        let issuer_line_up = Family::<LineLabels, Gauge>::default();
        let issuer_in_flight = Family::<IssuerLabel, Gauge>::default();
        let issuer_round_trip = Family::<IssuerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets()) as Histogram
        });
        let issuer_timeouts = Family::<IssuerLabel, Counter>::default();
        let issuer_late = Family::<IssuerLabel, Counter>::default();
        let issuer_saf = Family::<IssuerEvent, Counter>::default();
        let issuer_stand_in = Family::<IssuerLabel, Counter>::default();
        let issuer_saf_queued = Family::<IssuerLabel, Gauge>::default();
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
        Self {
            registry,
            transactions,
            request_duration,
            hsm_duration,
            journal_commit,
            journal_batch,
            connections_active,
            connections_total,
            connections_refused,
            auth_failures,
            log_suppressed,
            request_panics,
            frames_rejected,
            amount_fen,
            fees_fen,
            issuer_line_up,
            issuer_in_flight,
            issuer_round_trip,
            issuer_timeouts,
            issuer_late,
            issuer_saf,
            issuer_saf_queued,
            issuer_stand_in,
            issuer_echoes,
            issuer_events,
        }
    }

    /// Counts an issuer-link event.
    pub fn issuer_event(&self, issuer: &str, event: &'static str) {
        self.issuer_events
            .get_or_create(&IssuerEvent {
                issuer: issuer.to_owned(),
                event,
            })
            .inc();
    }

    /// Counts a store-and-forward event.
    pub fn saf_event(&self, issuer: &str, event: &'static str) {
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
        self.frames_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Records an HSM call's duration.
    pub fn hsm(&self, op: &'static str, d: Duration) {
        self.hsm_duration
            .get_or_create(&OpLabel { op })
            .observe(d.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
