//! Rate limit on PIN verification failures, as payShield's PIN attack detection: once more
//! than the allowed number of failures fall in one window, every verification is refused
//! at once (no crypto done) until the window ends.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct FailureLimiter {
    max: u32,
    window: Duration,
    origin: Instant,
    current: AtomicU64,
    count: AtomicU32,
}

impl FailureLimiter {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window: window.max(Duration::from_millis(1)),
            origin: Instant::now(),
            current: AtomicU64::new(0),
            count: AtomicU32::new(0),
        }
    }

    fn window_index(&self) -> u64 {
        (self.origin.elapsed().as_nanos() / self.window.as_nanos()) as u64
    }

    /// Whether verification may proceed now.
    pub(crate) fn allows(&self) -> bool {
        let w = self.window_index();
        self.current.load(Ordering::Relaxed) != w || self.count.load(Ordering::Relaxed) < self.max
    }

    /// Counts one failure.
    pub(crate) fn failed(&self) {
        let w = self.window_index();
        if self.current.swap(w, Ordering::Relaxed) != w {
            self.count.store(1, Ordering::Relaxed);
        } else {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}
