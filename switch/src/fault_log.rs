//! Error lines of the switch's own faults, the kind every request meets while the fault
//! lasts (the journal's disk is full, the HSM does not answer): each fault is logged once a
//! second at most, and the line says how many times it came in between.
//!
//! ```text
//!  fault ─▶ its second ─┬─ the first in it ─▶ ERROR … repeated=N   (N: not written since the last)
//!                       └─ the rest ───────▶ counted in N and in
//!                                            switch_log_lines_repeated_total{fault}
//! ```
//!
//! Every request still has its own transaction line (with its `96`), and the metrics count
//! every failure; what goes is the same error written thousands of times a second to a log
//! that may share the full disk. An issuer's link is one of the switch's own (configured,
//! its replies MACed), so what an issuer sends that the switch cannot use is a fault here
//! too. Lines a terminal can cause are limited per peer instead, by
//! [`crate::security_log`].

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// A fault of the switch's own, from a fixed set (also the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The journal refused a commit.
    JournalCommit,
    /// A request answered `96` because its record could not be journalled.
    Unrecorded,
    /// A journal read failed.
    JournalRead,
    /// The journal could not hand out a block of RRNs.
    RrnBlock,
    /// An HSM command failed.
    Hsm,
    /// A network HSM did not answer a command (the next one is tried).
    HsmLink,
    /// An issuer had as many requests waiting as it may: the next was not sent.
    IssuerBusy,
    /// A message from an issuer the switch did not use: a reply late, for no request, or
    /// with a bad MAC, or a request it does not serve.
    IssuerMessage,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Self; 8] = [
        Self::JournalCommit,
        Self::Unrecorded,
        Self::JournalRead,
        Self::RrnBlock,
        Self::Hsm,
        Self::HsmLink,
        Self::IssuerBusy,
        Self::IssuerMessage,
    ];

    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JournalCommit => "journal_commit",
            Self::Unrecorded => "unrecorded",
            Self::JournalRead => "journal_read",
            Self::RrnBlock => "rrn_block",
            Self::Hsm => "hsm",
            Self::HsmLink => "hsm_link",
            Self::IssuerBusy => "issuer_busy",
            Self::IssuerMessage => "issuer_message",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A fault's metric label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabel {
    /// Which fault.
    pub fault: &'static str,
}

/// How often a fault is written at most.
const EVERY: Duration = Duration::from_secs(1);

/// One fault's second.
#[derive(Debug, Default)]
struct Slot {
    /// When the next line may be written: milliseconds after the log's start (0: now).
    next_ms: AtomicU64,
    /// Not written since the last line.
    repeated: AtomicU64,
    /// Not written ever: this fault's series of the metric.
    not_written: Counter,
}

/// The faults' seconds, and what they did not write.
#[derive(Debug)]
pub struct FaultLog {
    started: Instant,
    slots: [Slot; Fault::ALL.len()],
    repeated: Family<FaultLabel, Counter>,
}

impl Default for FaultLog {
    fn default() -> Self {
        let repeated = Family::<FaultLabel, Counter>::default();
        // Each fault's series looked up once, here, not at each line not written.
        let slots = Fault::ALL.map(|f| Slot {
            not_written: repeated
                .get_or_create(&FaultLabel { fault: f.as_str() })
                .clone(),
            ..Slot::default()
        });
        Self {
            started: Instant::now(),
            slots,
            repeated,
        }
    }
}

static FAULTS: LazyLock<FaultLog> = LazyLock::new(FaultLog::default);

/// The process's fault log.
pub fn faults() -> &'static FaultLog {
    &FAULTS
}

/// Logs an ERROR line for `fault` (its `error`, a literal message, and any more fields as
/// `name = value`), unless the same fault was logged less than a second ago: then it is
/// counted, and the next line says how often it came (`repeated`). The line's target is
/// the caller's module.
///
/// ```
/// # let e = std::io::Error::other("database or disk is full");
/// switch::fault_error!(switch::fault_log::Fault::JournalCommit, e, "journal commit failed");
/// ```
#[macro_export]
macro_rules! fault_error {
    ($fault:expr, $error:expr, $message:literal $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::fault_event!(::tracing::Level::ERROR, $fault, $error, $message $(, $k = $v)*)
    };
}

/// [`fault_error!`] at WARN: a fault the switch works around (another HSM, another line).
///
/// ```
/// switch::fault_warn!(
///     switch::fault_log::Fault::HsmLink,
///     "timeout",
///     "HSM command failed",
///     hsm = tracing::field::display("127.0.0.1:1500"),
/// );
/// ```
#[macro_export]
macro_rules! fault_warn {
    ($fault:expr, $error:expr, $message:literal $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::fault_event!(::tracing::Level::WARN, $fault, $error, $message $(, $k = $v)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! fault_event {
    ($level:expr, $fault:expr, $error:expr, $message:literal $(, $k:ident = $v:expr)*) => {{
        let fault: $crate::fault_log::Fault = $fault;
        if let Some(repeated) = $crate::fault_log::faults().admit(fault) {
            ::tracing::event!(
                $level,
                fault = fault.as_str(),
                error = %$error,
                $($k = $v,)*
                repeated,
                $message
            );
        }
    }};
}

impl FaultLog {
    /// Lines not written, by fault (registered in the metrics).
    pub fn repeated(&self) -> &Family<FaultLabel, Counter> {
        &self.repeated
    }

    /// Whether a line of `fault` is written now: `Some(lines not written before it)`.
    pub fn admit(&self, fault: Fault) -> Option<u64> {
        self.admit_at(fault, self.started.elapsed())
    }

    /// [`Self::admit`] at `now` after the log's start.
    fn admit_at(&self, fault: Fault, now: Duration) -> Option<u64> {
        let slot = &self.slots[fault.index()];
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let next = slot.next_ms.load(Ordering::Relaxed);
        let every = u64::try_from(EVERY.as_millis()).unwrap_or(u64::MAX);
        if now_ms >= next
            && slot
                .next_ms
                .compare_exchange(
                    next,
                    now_ms.saturating_add(every),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(slot.repeated.swap(0, Ordering::AcqRel));
        }
        slot.repeated.fetch_add(1, Ordering::AcqRel);
        slot.not_written.inc();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn counted(log: &FaultLog, fault: Fault) -> u64 {
        log.repeated
            .get_or_create(&FaultLabel {
                fault: fault.as_str(),
            })
            .get()
    }

    #[test]
    fn once_a_second_then_the_count_of_what_was_not_written() {
        let log = FaultLog::default();
        assert_eq!(log.admit_at(Fault::JournalCommit, at(5)), Some(0));
        let written = (0..1000)
            .filter(|i| log.admit_at(Fault::JournalCommit, at(5 + i)).is_some())
            .count();
        assert_eq!(written, 0, "the rest of that second is counted");
        assert_eq!(counted(&log, Fault::JournalCommit), 1000);
        // The next second's first line carries the count, and the count starts over.
        assert_eq!(log.admit_at(Fault::JournalCommit, at(1005)), Some(1000));
        assert_eq!(log.admit_at(Fault::JournalCommit, at(1006)), None);
        assert_eq!(log.admit_at(Fault::JournalCommit, at(2005)), Some(1));
        // After a quiet spell the first line is written at once, and says nothing came.
        assert_eq!(log.admit_at(Fault::JournalCommit, at(60_000)), Some(0));
        assert_eq!(counted(&log, Fault::JournalCommit), 1001);
    }

    #[test]
    fn each_fault_has_its_own_second() {
        let log = FaultLog::default();
        assert_eq!(log.admit_at(Fault::JournalCommit, at(0)), Some(0));
        assert_eq!(log.admit_at(Fault::JournalCommit, at(1)), None);
        for f in Fault::ALL.into_iter().skip(1) {
            assert_eq!(log.admit_at(f, at(2)), Some(0), "{f:?}");
            assert_eq!(log.admit_at(f, at(3)), None, "{f:?}");
            assert_eq!(counted(&log, f), 1, "{f:?}");
        }
    }

    #[test]
    fn threads_at_once_write_one_line_and_lose_no_count() {
        let log = FaultLog::default();
        let written: usize = std::thread::scope(|s| {
            let runs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..10_000)
                            .filter(|_| log.admit_at(Fault::Hsm, at(7)).is_some())
                            .count()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(written, 1);
        assert_eq!(log.admit_at(Fault::Hsm, at(1007)), Some(39_999));
        assert_eq!(counted(&log, Fault::Hsm), 39_999);
    }

    #[test]
    fn the_labels_are_the_faults() {
        let names: Vec<_> = Fault::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "journal_commit",
                "unrecorded",
                "journal_read",
                "rrn_block",
                "hsm",
                "hsm_link",
                "issuer_busy",
                "issuer_message"
            ]
        );
        assert!(Fault::ALL.iter().enumerate().all(|(i, f)| f.index() == i));
    }
}
