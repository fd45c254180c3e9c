//! One line to an issuer: connect, reconnect with jittered exponential back-off, read and
//! write frames, and echo only when idle.
//!
//! ```text
//!  down ──dial──▶ up ──(read error, undecodable frame, failed echo, peer close)──▶ down
//!    ▲                │                                                            │
//!    └── back-off: min·2^n (≤ max), each wait a random 50–100 % of it ◀────────────┘
//! ```
//!
//! Frames are cut by the codec's one length-prefix codec (`codec::framing::FrameCodec`);
//! the connection comes from a [`Dialer`] (TCP, or a simulated network).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use codec::framing::FrameCodec;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::{Issuer, MAX_FRAME};
use crate::clock::{Clock, Timestamp};
use crate::metrics::LineLabels;
use crate::net::{BoxStream, Dialer};

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

/// A small xorshift for back-off and echo jitter (not for secrets).
struct Jitter(u64);

impl Jitter {
    /// 0.5 to 1.0.
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.5 + (self.0 % 1_000) as f64 / 2_000.0
    }
}

/// Keeps one line connected until `stop`. Its jitter starts from the clock (a
/// simulation's clock makes it repeatable).
pub async fn run(
    issuer: Arc<Issuer>,
    line: Arc<Line>,
    dialer: Arc<dyn Dialer>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let seed = clock.now().0 as u64;
    let labels = LineLabels {
        issuer: issuer.name.clone(),
        line: line.addr.clone(),
    };
    let mut jitter = Jitter(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(line.index as u64)
            | 1,
    );
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let connected = tokio::time::timeout(
            issuer.timeout.max(Duration::from_secs(1)),
            dialer.dial(&line.addr),
        )
        .await;
        match connected {
            Ok(Ok(stream)) => {
                failures = 0;
                tracing::info!(issuer = %issuer.name, line = %line.addr, "issuer line up");
                issuer.metrics.issuer_line_up.get_or_create(&labels).set(1);
                let why = session(&issuer, &line, stream, &clock, &mut jitter, &mut stop).await;
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
            .mul_f64(jitter.next());
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// What woke a line's task.
enum Event {
    Stop,
    EchoFailed,
    In(Option<std::io::Result<bytes::BytesMut>>),
    Out(Option<Vec<u8>>),
    Idle,
}

/// One connection's life; returns why it ended.
async fn session(
    issuer: &Arc<Issuer>,
    line: &Arc<Line>,
    stream: BoxStream,
    clock: &Arc<dyn Clock>,
    jitter: &mut Jitter,
    stop: &mut watch::Receiver<bool>,
) -> &'static str {
    let codec = FrameCodec::new(issuer.dialect.framing(), MAX_FRAME);
    let (mut sink, mut frames) = Framed::new(stream, codec).split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
    if let Ok(mut t) = line.tx.lock() {
        *t = Some(tx);
    }
    line.touch();
    line.up.store(true, Ordering::Relaxed);
    issuer.line_up();
    // Our echo waits a random 0–25 % longer than the interval: a peer echoing at the same
    // interval goes first, and its echo (answered) resets our clock, so two idle ends do
    // not both echo.
    let mut echo_after = issuer.echo_interval.mul_f64(0.75 + jitter.next() / 2.0);
    // Reading and writing take turns first: each select is biased (a simulation replays
    // it the same way every time) and neither can starve the other.
    let mut reads_first = true;
    let why = loop {
        let until_echo = echo_after.saturating_sub(line.idle_for());
        let sleep = tokio::time::sleep(until_echo);
        let event = if reads_first {
            tokio::select! {
                biased;
                _ = stop.changed() => Event::Stop,
                _ = line.kill.notified() => Event::EchoFailed,
                inc = frames.next() => Event::In(inc),
                out = rx.recv() => Event::Out(out),
                _ = sleep => Event::Idle,
            }
        } else {
            tokio::select! {
                biased;
                _ = stop.changed() => Event::Stop,
                _ = line.kill.notified() => Event::EchoFailed,
                out = rx.recv() => Event::Out(out),
                inc = frames.next() => Event::In(inc),
                _ = sleep => Event::Idle,
            }
        };
        reads_first = !reads_first;
        match event {
            Event::Stop => break "shutdown",
            Event::EchoFailed => break "echo failed",
            Event::In(Some(Ok(frame))) => {
                line.touch();
                if let Err(why) = issuer.on_frame(line, frame.to_vec()) {
                    break why;
                }
            }
            Event::In(Some(Err(_))) => break "bad frame",
            Event::In(None) => break "closed by the issuer",
            Event::Out(Some(frame)) => {
                if sink.send(frame).await.is_err() {
                    break "write failed";
                }
                line.touch();
            }
            Event::Out(None) => break "closed",
            Event::Idle => {
                if line.idle_for() >= echo_after {
                    // Counts as traffic: the next echo is a whole interval away.
                    line.touch();
                    echo_after = issuer.echo_interval.mul_f64(0.75 + jitter.next() / 2.0);
                    tokio::spawn(echo(Arc::clone(issuer), Arc::clone(line), clock.now()));
                }
            }
        }
    };
    line.up.store(false, Ordering::Relaxed);
    if let Ok(mut t) = line.tx.lock() {
        *t = None;
    }
    issuer.line_down(line.index);
    why
}

/// An 0800 echo (301) on an idle line; no answer in time closes the line.
async fn echo(issuer: Arc<Issuer>, line: Arc<Line>, now: Timestamp) {
    let mut b = codec::MessageBuilder::new(super::message::ECHO);
    b.set(7, now.transmission_time())
        .set(11, format!("{:06}", issuer.next_echo_stan()))
        .set(70, "301");
    issuer.metrics.issuer_echo(&issuer.name, &line.addr, "sent");
    if issuer.exchange_on(&line, None, b).await.is_err() && line.is_up() {
        tracing::warn!(issuer = %issuer.name, line = %line.addr, "no answer to the echo: reconnecting");
        line.kill.notify_one();
    }
}
