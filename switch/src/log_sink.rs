//! Where log lines go: a bounded queue and a thread of its own, so a log that fails, blocks
//! or fills up can never panic, stall or delay a request.
//!
//! ```text
//!  request task ─ tracing event ─▶ LineWriter (formats into a buffer)
//!                                   └─ drop: try_send ─▶ [queue, bounded] ─▶ log thread ─▶ stderr
//!                                      full: the line is dropped, counted    write error: dropped, counted
//! ```
//!
//! A request never waits for the log: when the queue is full (the sink is slow or blocked)
//! the line is dropped. The log thread never panics: a failed write (a closed pipe, a full
//! disk) drops the line. Both count in `switch_log_lines_dropped_total`.

use std::io::Write;
use std::sync::LazyLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use prometheus_client::metrics::counter::Counter;

/// Lines waiting for the log thread at most.
const QUEUE: usize = 4096;

static DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Log lines dropped: queue full, or the write failed. Registered in the metrics.
pub fn dropped() -> &'static Counter {
    &DROPPED
}

/// The sink: hands each formatted line to the log thread without waiting.
#[derive(Clone, Debug)]
pub struct LogSink {
    tx: SyncSender<Vec<u8>>,
}

impl LogSink {
    /// A sink writing to `out` from a thread of its own.
    pub fn new<W: Write + Send + 'static>(out: W) -> std::io::Result<Self> {
        Self::with_capacity(out, QUEUE)
    }

    /// With a queue of `capacity` lines.
    pub fn with_capacity<W: Write + Send + 'static>(
        out: W,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(capacity);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(out, rx))?;
        Ok(Self { tx })
    }

    fn send(&self, line: Vec<u8>) {
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.inc();
            }
        }
    }
}

/// How long the log thread lets lines gather before it writes them: while it waits, a
/// request's line is a push onto the queue and wakes nobody; then the lines that came go out
/// in one write. (A line waits at most this long; at shutdown the queue is drained.)
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// Lines written in one go at most.
const BATCH: usize = 512;

fn write_lines<W: Write>(mut out: W, rx: Receiver<Vec<u8>>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        let mut lines = 1;
        buf.extend_from_slice(&first);
        while lines < BATCH {
            match rx.try_recv() {
                Ok(line) => {
                    buf.extend_from_slice(&line);
                    lines += 1;
                }
                Err(_) => break,
            }
        }
        if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
            DROPPED.inc_by(lines as u64);
        }
        buf.clear();
        if lines < BATCH {
            // Quiet or moderate: gather before the next write.
            std::thread::sleep(GATHER);
        }
    }
}

/// A line's first allocation, bytes.
const LINE: usize = 512;

/// One event's line, sent when the formatter is done with it.
#[derive(Debug)]
pub struct LineWriter {
    buf: Vec<u8>,
    sink: LogSink,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.send(std::mem::take(&mut self.buf));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            // An on-us sale's line is about 330 bytes: room for it at once, not grown twice.
            buf: Vec::with_capacity(LINE),
            sink: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// A writer that fails every write.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A writer that blocks until released.
    struct Stuck(Arc<Mutex<()>>);
    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _held = self.0.lock();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(sink: &LogSink) {
        let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(sink);
        let _ = w.write_all(b"a line\n");
    }

    #[test]
    fn a_failing_writer_drops_lines_and_never_panics() {
        let sink = LogSink::new(Broken).unwrap();
        let before = dropped().get();
        for _ in 0..100 {
            line(&sink);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while dropped().get() < before + 100 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(dropped().get() >= before + 100);
    }

    #[test]
    fn a_blocked_writer_never_makes_the_caller_wait() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let sink = LogSink::with_capacity(Stuck(Arc::clone(&gate)), 8).unwrap();
        let before = dropped().get();
        let started = Instant::now();
        for _ in 0..10_000 {
            line(&sink);
        }
        assert!(started.elapsed() < Duration::from_secs(5), "logging waited");
        // Kept: the queue's 8, and what the log thread gathered into the write it is stuck
        // in (at most a batch: it drains while the lines keep coming).
        assert!(
            dropped().get() >= before + 10_000 - (BATCH as u64 + 8 + 1),
            "queue full: dropped {} of 10,000",
            dropped().get() - before
        );
        drop(held);
    }
}
