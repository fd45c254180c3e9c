//! One TCP line to an issuer: connect, reconnect with jittered exponential back-off, read
//! and write frames, and echo only when idle.
//!
//! ```text
//!  down ──connect──▶ up ──(read error, undecodable frame, failed echo, peer close)──▶ down
//!    ▲                │                                                               │
//!    └── back-off: min·2^n (≤ max), each wait a random 50–100 % of it ◀───────────────┘
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::codec::Framed;

use super::framing::LineCodec;
use super::{Issuer, MAX_FRAME};
use crate::metrics::LineLabels;

/// A line's state, shared between its task and the requests that use it.
#[derive(Debug)]
pub struct Line {
    pub(crate) index: usize,
    /// `host:port` from the configuration (also its metric label).
    pub addr: String,
    up: AtomicBool,
    tx: std::sync::Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Milliseconds since `epoch` of the last frame in or out.
    last_traffic: AtomicU64,
    epoch: Instant,
    kill: Notify,
}

impl Line {
    pub(crate) fn new(index: usize, addr: String) -> Self {
        Self {
            index,
            addr,
            up: AtomicBool::new(false),
            tx: std::sync::Mutex::new(None),
            last_traffic: AtomicU64::new(0),
            epoch: Instant::now(),
            kill: Notify::new(),
        }
    }

    /// Whether the line is connected.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        self.last_traffic
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_traffic.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Queues a frame for writing; `false` when the line is down or its queue is full.
    pub(crate) fn send(&self, frame: Vec<u8>) -> bool {
        let tx = self.tx.lock().ok().and_then(|t| t.clone());
        match tx {
            Some(tx) => tx.try_send(frame).is_ok(),
            None => false,
        }
    }
}

/// A small xorshift for back-off jitter (not for secrets).
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    0.5 + (*seed % 1_000) as f64 / 2_000.0
}

/// Keeps one line connected until `stop`.
pub(crate) async fn run(issuer: Arc<Issuer>, line: Arc<Line>, mut stop: watch::Receiver<bool>) {
    let labels = LineLabels {
        issuer: issuer.name.clone(),
        line: line.addr.clone(),
    };
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let connected = tokio::time::timeout(
            issuer.timeout.max(Duration::from_secs(1)),
            TcpStream::connect(line.addr.as_str()),
        )
        .await;
        match connected {
            Ok(Ok(stream)) => {
                failures = 0;
                let _ = stream.set_nodelay(true);
                tracing::info!(issuer = %issuer.name, line = %line.addr, "issuer line up");
                issuer.metrics.issuer_line_up.get_or_create(&labels).set(1);
                let why = session(&issuer, &line, stream, &mut stop).await;
                issuer.metrics.issuer_line_up.get_or_create(&labels).set(0);
                tracing::warn!(issuer = %issuer.name, line = %line.addr, reason = why, "issuer line down");
            }
            Ok(Err(e)) => {
                if failures == 0 {
                    tracing::warn!(issuer = %issuer.name, line = %line.addr, error = %e, "cannot connect to the issuer; retrying with back-off");
                }
                failures = failures.saturating_add(1);
            }
            Err(_) => {
                if failures == 0 {
                    tracing::warn!(issuer = %issuer.name, line = %line.addr, "issuer connect timed out; retrying with back-off");
                }
                failures = failures.saturating_add(1);
            }
        }
        let (min, max) = issuer.reconnect;
        let backoff = min
            .saturating_mul(1u32 << failures.min(16))
            .min(max)
            .mul_f64(jitter(&mut seed));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
    }
}

/// One connection's life; returns why it ended.
async fn session(
    issuer: &Arc<Issuer>,
    line: &Arc<Line>,
    stream: TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> &'static str {
    let framing = issuer.dialect.framing();
    let (mut sink, mut frames) = Framed::new(stream, LineCodec::new(framing, MAX_FRAME)).split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
    if let Ok(mut t) = line.tx.lock() {
        *t = Some(tx);
    }
    line.touch();
    line.up.store(true, Ordering::Relaxed);
    issuer.saf_wake.notify_one();
    // Our echo waits a random 0–25 % longer than the interval: a peer echoing at the same
    // interval goes first, and its echo (answered) resets our clock, so two idle ends do
    // not both echo.
    let mut seed = (line.epoch.elapsed().as_nanos() as u64) | 1;
    let mut echo_after = issuer.echo_interval.mul_f64(0.75 + jitter(&mut seed) / 2.0);
    let why = loop {
        let until_echo = echo_after.saturating_sub(line.idle_for());
        tokio::select! {
            _ = stop.changed() => break "shutdown",
            _ = line.kill.notified() => break "echo failed",
            out = rx.recv() => match out {
                Some(frame) => {
                    if sink.send(frame).await.is_err() {
                        break "write failed";
                    }
                    line.touch();
                }
                None => break "closed",
            },
            inc = frames.next() => match inc {
                Some(Ok(frame)) => {
                    line.touch();
                    if let Err(why) = issuer.on_frame(line, frame) {
                        break why;
                    }
                }
                Some(Err(_)) => break "bad frame",
                None => break "closed by the issuer",
            },
            _ = tokio::time::sleep(until_echo) => {
                if line.idle_for() >= echo_after {
                    // Counts as traffic: the next echo is a whole interval away.
                    line.touch();
                    echo_after = issuer.echo_interval.mul_f64(0.75 + jitter(&mut seed) / 2.0);
                    tokio::spawn(echo(Arc::clone(issuer), Arc::clone(line)));
                }
            }
        }
    };
    line.up.store(false, Ordering::Relaxed);
    if let Ok(mut t) = line.tx.lock() {
        *t = None;
    }
    issuer.fail_line(line.index);
    why
}

/// An 0800 echo (301) on an idle line; no answer in time closes the line.
async fn echo(issuer: Arc<Issuer>, line: Arc<Line>) {
    let mut b = codec::MessageBuilder::new(super::message::ECHO);
    b.set(7, super::message::transmission_time())
        .set(11, format!("{:06}", issuer.next_stan()))
        .set(70, "301");
    issuer.metrics.issuer_echo(&issuer.name, &line.addr, "sent");
    if issuer.exchange_on(&line, None, b).await.is_err() && line.is_up() {
        tracing::warn!(issuer = %issuer.name, line = %line.addr, "no answer to the echo: reconnecting");
        line.kill.notify_one();
    }
}
