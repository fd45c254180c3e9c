//! The terminal listener: TCP, framing, limits, and the hand-off to the pipeline.
//!
//! ```text
//! socket ─▶ FramedRead(codec::framing::FrameCodec: u16 big-endian, max frame) ─▶ frame
//!   frame ─▶ none served on the connection's task: Switch::serve there ─▶ write
//!         ─▶ one served there: a task ─▶ reply ─▶ channel ─▶ connection: feed..., flush once
//! ```
//!
//! Requests on one connection are processed concurrently (a concentrator pipelines many
//! terminals) up to `max_in_flight`; replies go out as they are ready, several per write. A
//! terminal that waits for each answer costs no hand-off between tasks: its request is
//! served on the connection's own task.
//! A connection with no frame for `idle_timeout`, or a frame started and not finished within
//! `read_timeout`, is closed. On shutdown the listener stops, connections stop reading,
//! in-flight requests finish and their replies are flushed.
//!
//! Floods: a connection is *trusted* once a request on it proved its terminal (a verified
//! MAC, or an approved sign-on). Until then it has `auth_timeout` to do so, then it is
//! closed. One peer address holds at most `max_connections_per_peer`, and the switch at
//! most `max_connections`: at either limit the oldest connection (of that peer, or of
//! anyone) that was never trusted is closed to make room; with none, the new one is closed.
//!
//! ```text
//! accept ─▶ peer at its limit? ─▶ close its oldest untrusted (evicted) │ none: close new (peer_limit)
//!        ─▶ table full?        ─▶ close the oldest untrusted (evicted) │ none: close new (global_limit)
//!        ─▶ serve: untrusted for auth_timeout ─▶ close (auth_timeout)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use codec::Framing;
use codec::framing::FrameCodec;
use futures_util::future::{Fuse, FusedFuture};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::ServerLimits;
use crate::metrics::ReasonLabel;
use crate::net::{Connection, Listener};
use crate::pipeline::{Handled, Served, Switch};
use crate::security_log::Event;

/// One open connection, as the accept loop sees it.
struct Conn {
    peer: IpAddr,
    trusted: AtomicBool,
    /// Ends the connection: the listener's shutdown (it is that token's child), an eviction
    /// to make room, or a request's handler closing it. One token, so that a connection
    /// waits on one thing between frames.
    end: CancellationToken,
    /// A request's handler closed it (not an eviction).
    closed: AtomicBool,
}

impl Conn {
    /// Why `end` was cancelled.
    fn end_reason(&self, stop: &CancellationToken) -> &'static str {
        if stop.is_cancelled() {
            "shutdown"
        } else if self.closed.load(Ordering::Relaxed) {
            "closed"
        } else {
            "evicted"
        }
    }

    /// Ends the connection at a request's handler's word.
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.end.cancel();
    }
}

/// The open connections, oldest first, and the count per peer address.
#[derive(Default)]
struct Table {
    conns: BTreeMap<u64, Arc<Conn>>,
    per_peer: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Table {
    /// Admits a connection from `peer`, evicting the oldest untrusted one when full; it
    /// ends when `stop` is cancelled.
    fn admit(
        &mut self,
        peer: IpAddr,
        limits: &ServerLimits,
        stop: &CancellationToken,
    ) -> Result<(u64, Arc<Conn>), &'static str> {
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= limits.max_per_peer {
            // The peer's oldest connection that never authenticated makes room: a terminal
            // behind the same address as a flood still gets in.
            self.evict_oldest_untrusted(Some(peer))
                .ok_or("peer_limit")?;
        }
        if self.conns.len() >= limits.max_connections {
            self.evict_oldest_untrusted(None).ok_or("global_limit")?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(Conn {
            peer,
            trusted: AtomicBool::new(false),
            end: stop.child_token(),
            closed: AtomicBool::new(false),
        });
        self.conns.insert(id, Arc::clone(&conn));
        *self.per_peer.entry(peer).or_insert(0) += 1;
        Ok((id, conn))
    }

    /// Closes the oldest connection (of `peer`, or of anyone) that never authenticated.
    fn evict_oldest_untrusted(&mut self, peer: Option<IpAddr>) -> Option<()> {
        let id = self
            .conns
            .iter()
            .find(|(_, c)| !c.trusted.load(Ordering::Relaxed) && peer.is_none_or(|p| p == c.peer))
            .map(|(id, _)| *id)?;
        let c = self.remove(id)?;
        c.end.cancel();
        Some(())
    }

    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let c = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&c.peer);
            }
        }
        Some(c)
    }
}

/// Accepts terminal connections until `shutdown` turns true, then waits for every
/// connection to finish its in-flight work. Each connection runs under the limits in force
/// when it was accepted (a reload changes them for the next ones).
pub async fn serve<L: Listener>(
    listener: L,
    switch: Arc<Switch>,
    mut shutdown: watch::Receiver<bool>,
) {
    let table = Arc::new(Mutex::new(Table::default()));
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let limits = switch.rules().limits;
                let admitted = match table.lock() {
                    Ok(mut t) => t.admit(peer.ip(), &limits, &stop),
                    Err(_) => Err("global_limit"),
                };
                let (id, conn) = match admitted {
                    Ok(c) => c,
                    Err(reason) => {
                        switch
                            .metrics
                            .connections_refused
                            .get_or_create(&ReasonLabel { reason })
                            .inc();
                        switch.security_log.warn(
                            Event::ConnectionRefused,
                            Some(peer.ip()),
                            &switch.metrics,
                            None,
                            &format!("connection refused ({reason})"),
                        );
                        drop(stream);
                        continue;
                    }
                };
                switch.metrics.connections_total.inc();
                let switch = Arc::clone(&switch);
                let stop = stop.clone();
                let table = Arc::clone(&table);
                tracker.spawn(async move {
                    switch.metrics.connections_active.inc();
                    connection(stream, &switch, limits, stop, &conn).await;
                    switch.metrics.connections_active.dec();
                    if let Ok(mut t) = table.lock() {
                        t.remove(id);
                    }
                });
            }
        }
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

/// Serves one frame, a panic included (answered from its record, or 96).
async fn serve_frame(switch: Arc<Switch>, peer: IpAddr, frame: Bytes) -> Served {
    guarded(
        || switch.serve(Some(peer), &frame),
        || async {
            // Counted and logged; answered from its record when it was journalled.
            switch.metrics.request_panics.inc();
            tracing::error!("a request task panicked: answered from its record, or 96");
            Served {
                handled: switch.after_panic(&frame).await,
                authenticated: false,
            }
        },
    )
    .await
}

/// Runs a request; a panic in it is caught and the request answered by `on_panic`:
/// never a silent drop.
///
/// Both futures are made here, inside: the request's and the answer's after a panic are
/// then two states of this one future and share its space. (A request future handed in by
/// value would be held twice, as an argument and as what is awaited, and copied between
/// them: a request's future is some kilobytes, moved once per request.)
async fn guarded<R, F>(request: impl FnOnce() -> R, on_panic: impl FnOnce() -> F) -> Served
where
    R: Future<Output = Served>,
    F: Future<Output = Served>,
{
    match std::panic::AssertUnwindSafe(request()).catch_unwind().await {
        Ok(served) => served,
        Err(_) => on_panic().await,
    }
}

/// A request served on a task of its own, and its share of the connection's
/// `max_in_flight`.
type Running = (
    Pin<Box<dyn Future<Output = Served> + Send>>,
    OwnedSemaphorePermit,
);

/// What a served request asks of its connection.
enum Outcome {
    Reply(Bytes),
    Nothing,
    Close,
}

/// Marks the connection trusted when the request proved its terminal; what to send.
fn outcome(served: Served, conn: &Conn) -> Outcome {
    if served.authenticated {
        conn.trusted.store(true, Ordering::Relaxed);
    }
    match served.handled {
        Handled::Reply(v) => Outcome::Reply(Bytes::from(v)),
        Handled::Ignore => Outcome::Nothing,
        Handled::Close(reason) => {
            tracing::debug!(reason, "closing connection");
            Outcome::Close
        }
    }
}

/// Runs a request on a task of its own (one is being served on the connection's task): its
/// reply goes through `replies`, a close to the connection's `end`.
fn run_apart((request, permit): Running, conn: &Arc<Conn>, replies: &mpsc::Sender<Bytes>) {
    let conn = Arc::clone(conn);
    let replies = replies.clone();
    tokio::spawn(async move {
        match outcome(request.await, &conn) {
            Outcome::Reply(v) => {
                let _ = replies.send(v).await;
            }
            Outcome::Nothing => {}
            Outcome::Close => conn.close(),
        }
        drop(permit);
    });
}

/// Writes `first` and every reply already waiting, then flushes once.
async fn write_replies<W: SinkExt<Bytes> + Unpin>(
    sink: &mut W,
    first: Bytes,
    waiting: &mut mpsc::Receiver<Bytes>,
) -> Result<(), W::Error> {
    sink.feed(first).await?;
    while let Ok(more) = waiting.try_recv() {
        sink.feed(more).await?;
    }
    sink.flush().await
}

/// One connection, on one task: it reads frames, serves one request at a time itself (a
/// terminal's request, answer, request …: no hand-off between tasks, and the request's
/// state lives in the connection's own, not in an allocation of its own), hands the
/// requests that arrive meanwhile to tasks of their own, and writes every reply.
///
/// ```text
///  frame ─▶ none served here? ─▶ served here ─────────────────────────────▶ write, flush
///        └─ one served here   ─▶ task ─▶ reply channel ─▶ here: write all ready, flush once
/// ```
async fn connection<C: Connection>(
    stream: C,
    switch: &Arc<Switch>,
    limits: ServerLimits,
    stop: CancellationToken,
    conn: &Arc<Conn>,
) {
    let accepted = tokio::time::Instant::now();
    let Ok((rd, wr)) = stream.open().await else {
        // A TLS handshake that failed or timed out (counted by the listener).
        return;
    };
    let mut frames = FramedRead::new(rd, FrameCodec::new(Framing::U16, limits.max_frame));
    let mut sink = FramedWrite::new(wr, FrameCodec::new(Framing::U16, limits.max_frame));
    let (tx, mut rx) = mpsc::channel::<Bytes>(limits.max_in_flight.max(1));
    // Made once: a connection's wait for its end is not set up and torn down per frame.
    let mut ended = std::pin::pin!(conn.end.cancelled());
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    // The request served on this task (terminated: none) and its permit.
    let mut here = std::pin::pin!(Fuse::terminated());
    let mut here_permit: Option<OwnedSemaphorePermit> = None;
    let tick = limits
        .read_timeout
        .min(limits.idle_timeout)
        .min(limits.auth_timeout);
    let mut idle = Duration::ZERO;
    let reason = loop {
        if !conn.trusted.load(Ordering::Relaxed) && accepted.elapsed() >= limits.auth_timeout {
            break "auth_timeout";
        }
        let next = tokio::select! {
            biased;
            () = &mut ended => break conn.end_reason(&stop),
            served = here.as_mut(), if !here.is_terminated() => {
                here_permit = None;
                match outcome(served, conn) {
                    Outcome::Reply(v) => {
                        if write_replies(&mut sink, v, &mut rx).await.is_err() {
                            break "closed";
                        }
                    }
                    Outcome::Nothing => {}
                    Outcome::Close => break "closed",
                }
                continue;
            }
            Some(v) = rx.recv() => {
                if write_replies(&mut sink, v, &mut rx).await.is_err() {
                    break "closed";
                }
                continue;
            }
            r = tokio::time::timeout(tick, frames.next()) => r,
        };
        let frame = match next {
            Err(_) => {
                if frames.decoder().mid_frame() {
                    break "read_timeout";
                }
                idle += tick;
                if idle >= limits.idle_timeout {
                    break "idle_timeout";
                }
                continue;
            }
            Ok(None) => break "eof",
            Ok(Some(Err(e))) => {
                break if e.kind() == io::ErrorKind::InvalidData {
                    "oversized"
                } else {
                    "io"
                };
            }
            Ok(Some(Ok(f))) => f.freeze(),
        };
        idle = Duration::ZERO;
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            // Full: refuse this request at once rather than stall the connection.
            switch.metrics.reject("in_flight_full");
            if let Handled::Reply(v) = switch.refuse_busy(&frame)
                && write_replies(&mut sink, Bytes::from(v), &mut rx)
                    .await
                    .is_err()
            {
                break "closed";
            }
            continue;
        };
        let request = serve_frame(Arc::clone(switch), conn.peer, frame);
        if here.is_terminated() {
            here.set(request.fuse());
            here_permit = Some(permit);
        } else {
            run_apart((Box::pin(request), permit), conn, &tx);
        }
    };
    match reason {
        // A handler that closed the connection counted its own reason.
        "eof" | "shutdown" | "closed" => {}
        r => {
            switch.metrics.reject(r);
            switch.security_log.warn(
                Event::ConnectionClosed,
                Some(conn.peer),
                &switch.metrics,
                None,
                &format!("connection closed ({r})"),
            );
        }
    }
    // Let requests already taken finish and their replies go out.
    let mut writable = true;
    if !here.is_terminated() {
        match outcome(here.as_mut().await, conn) {
            Outcome::Reply(v) => writable = write_replies(&mut sink, v, &mut rx).await.is_ok(),
            Outcome::Nothing | Outcome::Close => {}
        }
        drop(here_permit);
    }
    drop(tx);
    while let Some(v) = rx.recv().await {
        writable = writable && write_replies(&mut sink, v, &mut rx).await.is_ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_future_stays_small() {
        // A connection's future holds the request it serves itself, and a request served
        // apart is moved into its task's allocation, all of it. It was 13,152 bytes when the
        // panic guard held the request's steps twice and the forwarded path's were inline;
        // 6,208 since.
        let dir = std::env::temp_dir().join(format!("request-size-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = crate::Config::demo().unwrap();
        config.listen.terminals = "127.0.0.1:0".parse().unwrap();
        config.listen.metrics = "127.0.0.1:0".parse().unwrap();
        config.journal.path = dir.join("journal.db");
        let running = crate::start(config).await.unwrap();
        let request = serve_frame(
            Arc::clone(running.switch()),
            IpAddr::from([127, 0, 0, 1]),
            Bytes::new(),
        );
        let size = std::mem::size_of_val(&request);
        drop(request);
        running.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(size <= 8 * 1024, "a request's future is {size} bytes");
    }

    #[tokio::test]
    async fn a_panicking_request_is_answered_not_dropped() {
        let answer = || async {
            Served {
                handled: Handled::Reply(b"96".to_vec()),
                authenticated: false,
            }
        };
        let served = guarded(|| async { panic!("a bug in a step") }, answer).await;
        assert!(matches!(served.handled, Handled::Reply(v) if v == b"96"));
        let fine = guarded(
            || async {
                Served {
                    handled: Handled::Ignore,
                    authenticated: true,
                }
            },
            answer,
        )
        .await;
        assert!(fine.authenticated);
    }
}
