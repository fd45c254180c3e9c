//! A network HSM speaking the payShield host command protocol: connections pooled per HSM
//! address, a deadline on every command, failover to the next HSM, health checks with `NC`.
//!
//! ```text
//!  command ─▶ pick an HSM that is up (round robin), else try them all
//!          ─▶ idle connection or a new one ─▶ [len][header "0042"][CA…] ──▶ payShield
//!          ◀─ [len][header "0042"][CB 00 …] ◀── (header checked, code = command + 1)
//!  no answer by the deadline, a broken connection, a wrong header: that HSM is marked
//!  down (switch_hsm_up{hsm}=0), the command goes to the next; every few seconds `NC` to
//!  each HSM brings a recovered one back.
//! ```
//!
//! The payment commands themselves are in [`commands`].

mod commands;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::HsmError;
pub use crate::metrics::hsm_remote::RemoteMetrics;

/// How the switch reaches its network HSMs.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// HSM addresses, `host:port`.
    pub addresses: Vec<String>,
    /// Message header length (characters) the HSMs expect.
    pub header_len: usize,
    /// Deadline for one command on one HSM.
    pub timeout: Duration,
    /// Idle connections kept per HSM.
    pub pool: usize,
    /// Time between health checks.
    pub health_interval: Duration,
}

struct Node {
    addr: String,
    idle: std::sync::Mutex<Vec<TcpStream>>,
    up: AtomicBool,
}

/// The network HSMs.
pub struct RemoteHsm {
    nodes: Vec<Node>,
    config: RemoteConfig,
    next: AtomicUsize,
    header: AtomicU32,
    metrics: RemoteMetrics,
}

impl std::fmt::Debug for RemoteHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteHsm")
            .field("addresses", &self.config.addresses)
            .finish_non_exhaustive()
    }
}

/// A frame could not be exchanged with one HSM.
#[derive(Debug)]
enum Failed {
    /// Connect, write or read failed, or the deadline passed.
    Link(&'static str),
}

impl RemoteHsm {
    /// HSMs at `config.addresses`, counted into `metrics`. Nothing is connected yet: see
    /// [`RemoteHsm::check`].
    pub fn new(config: RemoteConfig, metrics: RemoteMetrics) -> Self {
        for a in &config.addresses {
            metrics.prime(a);
        }
        Self {
            nodes: config
                .addresses
                .iter()
                .map(|a| Node {
                    addr: a.clone(),
                    idle: std::sync::Mutex::new(Vec::new()),
                    up: AtomicBool::new(true),
                })
                .collect(),
            config,
            next: AtomicUsize::new(0),
            header: AtomicU32::new(0),
            metrics,
        }
    }

    /// `Err` with the reason while no HSM is answering.
    pub fn ready(&self) -> Result<(), String> {
        if self.nodes.iter().any(|n| n.up.load(Ordering::Relaxed)) {
            Ok(())
        } else {
            Err(format!(
                "no HSM answering ({} down)",
                self.config.addresses.join(", ")
            ))
        }
    }

    /// Sends `NC` to every HSM and returns each one's LMK check value (`None`: down).
    pub async fn check(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let r = self.on_node(i, b"NC").await;
            let lmk = r.ok().and_then(|r| {
                (r.len() >= 20 && &r[..4] == b"ND00")
                    .then(|| String::from_utf8_lossy(&r[4..20]).into_owned())
            });
            self.set_up(n, lmk.is_some());
            out.push((n.addr.clone(), lmk));
        }
        out
    }

    /// Runs the health checks until the process ends.
    pub async fn health_loop(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.config.health_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            for (addr, lmk) in self.check().await {
                if lmk.is_none() {
                    tracing::warn!(hsm = %addr, "HSM health check failed");
                }
            }
        }
    }

    fn set_up(&self, n: &Node, up: bool) {
        let was = n.up.swap(up, Ordering::Relaxed);
        self.metrics.up(&n.addr, up);
        if was != up {
            if up {
                tracing::info!(hsm = %n.addr, "HSM answering again");
            } else {
                tracing::error!(hsm = %n.addr, "HSM down: commands go to the next one");
            }
        }
    }

    /// Sends `command` (code and fields) to an HSM that answers; the response after the
    /// header. Tries HSMs that are up first, then the others.
    pub(crate) async fn call(&self, command: &[u8]) -> Result<Vec<u8>, HsmError> {
        let n = self.nodes.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(|i| (first + i) % n);
        let (up, down): (Vec<usize>, Vec<usize>) =
            order.partition(|i| self.nodes[*i].up.load(Ordering::Relaxed));
        for i in up.into_iter().chain(down) {
            match self.on_node(i, command).await {
                Ok(r) => {
                    self.set_up(&self.nodes[i], true);
                    return Ok(r);
                }
                Err(Failed::Link(why)) => {
                    crate::fault_warn!(
                        crate::fault_log::Fault::HsmLink,
                        why,
                        "HSM command failed",
                        hsm = tracing::field::display(&self.nodes[i].addr),
                    );
                    self.set_up(&self.nodes[i], false);
                }
            }
        }
        Err(HsmError::Unavailable)
    }

    async fn on_node(&self, i: usize, command: &[u8]) -> Result<Vec<u8>, Failed> {
        let node = &self.nodes[i];
        let code = command.get(..2).unwrap_or(b"??");
        let started = Instant::now();
        let r = tokio::time::timeout(self.config.timeout, self.exchange(node, command))
            .await
            .unwrap_or(Err(Failed::Link("timeout")));
        let reason = match &r {
            Ok(resp) => resp.get(2..4).map_or("malformed", |c| {
                std::str::from_utf8(c).unwrap_or("malformed")
            }),
            Err(Failed::Link(why)) => why,
        };
        self.metrics
            .request(&node.addr, code, reason, started.elapsed());
        r
    }

    async fn exchange(&self, node: &Node, command: &[u8]) -> Result<Vec<u8>, Failed> {
        let pooled = node.idle.lock().ok().and_then(|mut v| v.pop());
        if let Some(conn) = pooled {
            match self.over(node, conn, command).await {
                // An idle connection the HSM closed (it restarted, or dropped idle ones):
                // the others are as stale. Once more on a new connection; every command
                // the switch sends may be repeated.
                Err(Failed::Link("write" | "read")) => {
                    if let Ok(mut idle) = node.idle.lock() {
                        idle.clear();
                    }
                }
                other => return other,
            }
        }
        let conn = TcpStream::connect(&node.addr)
            .await
            .map_err(|_| Failed::Link("connect"))?;
        let _ = conn.set_nodelay(true);
        self.over(node, conn, command).await
    }

    /// One command on `conn`, which goes back to the pool after a good answer.
    async fn over(
        &self,
        node: &Node,
        mut conn: TcpStream,
        command: &[u8],
    ) -> Result<Vec<u8>, Failed> {
        let h = self.header.fetch_add(1, Ordering::Relaxed);
        let header = format!(
            "{:0width$}",
            h % 10u32.pow(self.config.header_len.min(9) as u32),
            width = self.config.header_len
        );
        let len = header.len() + command.len();
        let len = u16::try_from(len).map_err(|_| Failed::Link("too_long"))?;
        let mut frame = Vec::with_capacity(2 + usize::from(len));
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(header.as_bytes());
        frame.extend_from_slice(command);
        conn.write_all(&frame)
            .await
            .map_err(|_| Failed::Link("write"))?;
        let mut lb = [0u8; 2];
        conn.read_exact(&mut lb)
            .await
            .map_err(|_| Failed::Link("read"))?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        conn.read_exact(&mut body)
            .await
            .map_err(|_| Failed::Link("read"))?;
        if body.get(..header.len()) != Some(header.as_bytes()) {
            return Err(Failed::Link("header"));
        }
        let resp = body.split_off(header.len());
        let want = [command[0], command.get(1).map_or(0, |c| c.wrapping_add(1))];
        if resp.get(..2) != Some(&want[..]) {
            return Err(Failed::Link("response_code"));
        }
        if let Ok(mut idle) = node.idle.lock()
            && idle.len() < self.config.pool
        {
            idle.push(conn);
        }
        Ok(resp)
    }

    /// Sends `command` and returns the fields after a `00` error code; any other code is
    /// [`HsmError::Refused`].
    pub(crate) async fn ok(&self, command: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut r = self.call(command).await?;
        match r.get(2..4) {
            Some(b"00") => Ok(r.split_off(4)),
            Some(code) => Err(HsmError::Refused(
                String::from_utf8_lossy(code).into_owned(),
            )),
            None => Err(HsmError::Malformed),
        }
    }
}
