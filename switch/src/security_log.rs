//! Log lines that a peer can cause without authenticating (an unknown terminal, a bad MAC,
//! an undecodable frame, a sign-on), at a bounded rate.
//!
//! ```text
//!   event (kind, peer address) ─▶ window of one second ─▶ first `per_second` lines: logged
//!                                                      └▶ the rest: counted, not logged;
//!                                                         the next logged line says
//!                                                         `suppressed = M`
//! ```
//!
//! A flood of junk frames therefore costs at most `per_second` lines per second per event
//! kind and peer address, and `GLOBAL_FACTOR` times that over all peers together (many
//! addresses do not buy more lines); what was dropped shows in
//! `switch_log_lines_suppressed_total`. The table of peers is bounded too: past `MAX_PEERS`
//! addresses, new ones share one entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::metrics::{EventLabel, Metrics};

/// Peers tracked one by one; beyond this, unknown peers share one entry.
const MAX_PEERS: usize = 4096;

/// All peers together get this many times one peer's lines per second.
const GLOBAL_FACTOR: u32 = 20;

/// What happened, from a fixed set (also the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A request from a TID the switch does not know.
    UnknownTerminal,
    /// A TID of another merchant.
    WrongMerchant,
    /// A request from a terminal that has not signed on.
    NotSignedOn,
    /// A request without the MAC its kind needs.
    MissingMac,
    /// A MAC that does not verify.
    BadMac,
    /// A terminal an operator disabled.
    TerminalDisabled,
    /// A frame the codec refused.
    Undecodable,
    /// A sign-on (it carries no MAC: anyone who knows a TID and MID can send one).
    SignOn,
    /// A connection refused at a limit.
    ConnectionRefused,
    /// A connection closed by the switch (time-outs, oversized frames, eviction).
    ConnectionClosed,
}

impl Event {
    /// Every event.
    pub const ALL: [Self; 10] = [
        Self::UnknownTerminal,
        Self::WrongMerchant,
        Self::NotSignedOn,
        Self::MissingMac,
        Self::BadMac,
        Self::TerminalDisabled,
        Self::Undecodable,
        Self::SignOn,
        Self::ConnectionRefused,
        Self::ConnectionClosed,
    ];

    /// The events that are a request failing authentication.
    pub const AUTH_FAILURES: [Self; 6] = [
        Self::UnknownTerminal,
        Self::WrongMerchant,
        Self::NotSignedOn,
        Self::MissingMac,
        Self::BadMac,
        Self::TerminalDisabled,
    ];

    /// The label and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownTerminal => "unknown_terminal",
            Self::WrongMerchant => "wrong_merchant",
            Self::NotSignedOn => "not_signed_on",
            Self::MissingMac => "missing_mac",
            Self::BadMac => "bad_mac",
            Self::TerminalDisabled => "terminal_disabled",
            Self::Undecodable => "undecodable",
            Self::SignOn => "sign_on",
            Self::ConnectionRefused => "connection_refused",
            Self::ConnectionClosed => "connection_closed",
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    lines: u32,
    /// Dropped since the last line logged.
    suppressed: u64,
}

/// Whether to write a line, and how many were dropped before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it; `suppressed` lines of this event and peer were dropped since the last.
    Log {
        /// Lines dropped before this one.
        suppressed: u64,
    },
    /// Drop it (counted).
    Drop,
}

/// The rate limit on unauthenticated log lines.
#[derive(Debug)]
pub struct SecurityLog {
    per_second: u32,
    windows: Mutex<Windows>,
}

#[derive(Debug)]
struct Windows {
    by_key: HashMap<(Event, Option<IpAddr>), Window>,
    all: Window,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            lines: 0,
            suppressed: 0,
        }
    }

    /// Counts one line against `limit` in the current second.
    fn take(&mut self, now: Instant, limit: u32) -> bool {
        if now.duration_since(self.started).as_secs() >= 1 {
            self.started = now;
            self.lines = 0;
        }
        if self.lines < limit {
            self.lines += 1;
            true
        } else {
            false
        }
    }
}

impl SecurityLog {
    /// At most `per_second` lines per second per event and peer.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: Mutex::new(Windows {
                by_key: HashMap::new(),
                all: Window::new(Instant::now()),
            }),
        }
    }

    /// Decides for one line of `event` from `peer`, and counts a dropped one.
    pub fn admit(&self, event: Event, peer: Option<IpAddr>, metrics: &Metrics) -> Admit {
        let now = Instant::now();
        let admit = {
            let Ok(mut guard) = self.windows.lock() else {
                return Admit::Drop;
            };
            let Windows { by_key, all } = &mut *guard;
            if by_key.len() >= MAX_PEERS && !by_key.contains_key(&(event, peer)) {
                by_key.retain(|_, w| now.duration_since(w.started).as_secs() < 10);
            }
            let key = if by_key.len() >= MAX_PEERS {
                (event, None)
            } else {
                (event, peer)
            };
            let w = by_key.entry(key).or_insert_with(|| Window::new(now));
            if w.take(now, self.per_second) && all.take(now, self.per_second * GLOBAL_FACTOR) {
                let suppressed = std::mem::take(&mut w.suppressed);
                Admit::Log { suppressed }
            } else {
                w.suppressed += 1;
                Admit::Drop
            }
        };
        if admit == Admit::Drop {
            metrics
                .log_suppressed
                .get_or_create(&EventLabel {
                    event: event.as_str(),
                })
                .inc();
        }
        admit
    }

    /// Logs a warning for `event` from `peer` if the rate allows.
    pub fn warn(
        &self,
        event: Event,
        peer: Option<IpAddr>,
        metrics: &Metrics,
        tid: Option<&str>,
        detail: &str,
    ) {
        if let Admit::Log { suppressed } = self.admit(event, peer, metrics) {
            let peer = peer.map(|p| p.to_string());
            tracing::warn!(
                event = event.as_str(),
                peer = peer.as_deref().unwrap_or("-"),
                tid = tid.unwrap_or("-"),
                suppressed,
                "{detail}"
            );
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_metrics_know_every_event() {
        let names = |events: &[Event]| events.iter().map(|e| e.as_str()).collect::<Vec<_>>();
        assert_eq!(names(&Event::ALL), crate::metrics::LOG_EVENTS);
        assert_eq!(
            names(&Event::AUTH_FAILURES),
            crate::metrics::AUTH_FAILURE_REASONS
        );
    }

    use super::*;

    #[test]
    fn at_most_n_lines_per_second_per_event_and_peer_then_a_count() {
        let log = SecurityLog::new(3);
        let m = Metrics::new();
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let admitted = (0..100)
            .filter(|_| log.admit(Event::BadMac, Some(a), &m) != Admit::Drop)
            .count();
        assert_eq!(admitted, 3);
        // Another peer, another event: their own allowance.
        assert_eq!(
            log.admit(Event::BadMac, Some(b), &m),
            Admit::Log { suppressed: 0 }
        );
        assert_eq!(
            log.admit(Event::UnknownTerminal, Some(a), &m),
            Admit::Log { suppressed: 0 }
        );
        let dropped = m
            .log_suppressed
            .get_or_create(&EventLabel { event: "bad_mac" })
            .get();
        assert_eq!(dropped, 97);
        // A second later the next line carries the count of those dropped.
        std::thread::sleep(std::time::Duration::from_millis(1_050));
        assert_eq!(
            log.admit(Event::BadMac, Some(a), &m),
            Admit::Log { suppressed: 97 }
        );
    }

    #[test]
    fn many_addresses_do_not_buy_more_lines() {
        let log = SecurityLog::new(2);
        let m = Metrics::new();
        let logged = (0..1_000u32)
            .filter(|i| {
                log.admit(Event::BadMac, Some(IpAddr::from(i.to_be_bytes())), &m) != Admit::Drop
            })
            .count();
        assert_eq!(logged, 2 * GLOBAL_FACTOR as usize);
    }

    #[test]
    fn the_peer_table_is_bounded() {
        let log = SecurityLog::new(1);
        let m = Metrics::new();
        for i in 0..(MAX_PEERS as u32 + 1000) {
            let _ = log.admit(Event::Undecodable, Some(IpAddr::from(i.to_be_bytes())), &m);
        }
        assert!(log.windows.lock().unwrap().by_key.len() <= MAX_PEERS + 1);
    }
}
