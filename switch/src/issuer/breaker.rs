//! The circuit breaker: after `threshold` request time-outs in a row on healthy lines, stop
//! sending to the issuer for a while, so terminals get `91` (or stand-in) at once instead
//! of waiting out each time-out.
//!
//! ```text
//!  closed ──N time-outs in a row──▶ open (for open_for) ──▶ closed; any reply resets the count
//! ```
//!
//! A dropped line is not a time-out of the issuer: it is one event on one line, and the
//! requests on it do not count.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One issuer's breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    consecutive: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open.
    open_until: AtomicU64,
    epoch: Instant,
}

impl Breaker {
    /// Opens after `threshold` time-outs in a row (0: never), for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold,
            open_for,
            consecutive: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether it is open now.
    pub fn is_open(&self) -> bool {
        let until = self.open_until.load(Ordering::Relaxed);
        until > 0 && self.now_ms() <= until
    }

    /// A request timed out; `Some(n)` when this opened the breaker (after `n` in a row).
    pub fn note_timeout(&self) -> Option<u32> {
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if self.threshold == 0 || n < self.threshold {
            return None;
        }
        let until = (self.epoch.elapsed() + self.open_for).as_millis() as u64;
        let was = self.open_until.swap(until, Ordering::Relaxed);
        (was == 0 || was < self.now_ms()).then_some(n)
    }

    /// A reply came: the count starts again.
    pub fn note_reply(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_time_outs_in_a_row_and_closes_after_a_while() {
        let b = Breaker::new(3, Duration::from_secs(10));
        assert_eq!(b.note_timeout(), None);
        b.note_reply();
        assert_eq!(b.note_timeout(), None);
        assert_eq!(b.note_timeout(), None);
        assert!(!b.is_open());
        assert_eq!(b.note_timeout(), Some(3));
        assert!(b.is_open());
        // Still open: a fourth does not open it again.
        assert_eq!(b.note_timeout(), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.is_open());
        let never = Breaker::new(0, Duration::from_secs(10));
        for _ in 0..10 {
            assert_eq!(never.note_timeout(), None);
        }
    }
}
