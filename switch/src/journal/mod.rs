//! The journal: the system of record, written by one thread with group commit and read by
//! another.
//!
//! ```text
//!  pipeline tasks ──commit(ops)──▶ channel ──▶ writer thread: take 1..=N requests,
//!        ▲                                       one transaction, one fsync,
//!        └──────────── ack (durable) ◀────────── then ack every request in the group
//!
//!  pipeline tasks ──read(query)──▶ channel ──▶ reader thread (its own connection): what
//!                                               was committed and acknowledged
//! ```
//!
//! A reply that says approved is sent only after its `commit` returned: its record and the
//! balance change are on disk. A commit whose conditions do not hold (a balance no longer
//! there, an original already voided) fails whole with [`JournalError::Stale`], and a
//! failed group is retried request by request, so one request never fails its neighbours.
//!
//! Reads see every commit that was acknowledged before they were asked: the switch reads a
//! transaction only after the request that wrote it was answered (a retransmission, a void
//! of a sale, a settlement of a batch).
//!
//! The storage sits behind [`Backend`]. [`Journal::inline`] runs a backend on the calling
//! task instead of threads: for deterministic simulation, where one thread runs everything.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::clock::Timestamp;
use crate::model::{AccountId, BatchNo, Rrn, Stan, Tid};

pub mod columns;
pub mod owner;
pub mod postgres;
mod records;
pub mod sqlite;

pub use records::{
    AccountRecord, AdminEntry, BatchItem, BatchRecord, BatchTotals, CardChange, CardRef, Condition,
    LockKey, Mark, Op, PinCheck, PinTries, PreauthQuery, SafChanges, SafRecord, SessionRecord,
    Snapshot, TraceFirst, TxnRecord, UploadRecord, UpstreamRef,
};

/// A journal failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The storage refused or failed.
    #[error("journal storage: {0}")]
    Storage(String),
    /// What the request read of the journal (through memory) changed before its commit:
    /// another request, maybe on another node, got there first. Nothing of the commit was
    /// applied; read that again and decide again.
    #[error("journal refused a change: {0:?} changed since it was read")]
    Stale(Stale),
    /// The transaction (its RRN, or its terminal, batch, trace and MTI) is journalled
    /// already: nothing of the commit was applied.
    #[error("journal refused a change: {0}")]
    Duplicate(String),
    /// The writer has stopped (shutdown or a fatal error).
    #[error("journal writer has stopped")]
    Closed,
}

/// The open batches' figures, as [`Backend::open_batches`] counts them (SQL both journals
/// run).
pub const OPEN_BATCHES_SQL: &str = "SELECT COUNT(DISTINCT s.tid), COUNT(t.rrn)
     FROM terminal_sessions s JOIN transactions t ON t.tid = s.tid AND t.batch = s.batch
     WHERE t.response_code = '00' AND t.kind IN ('sale', 'qr-sale', 'void', 'refund', 'completion', 'completion-void')";

/// What changed under a request between its reading and its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The account's balance or PIN tries (with `funds`: the money it relied on is gone).
    Account {
        /// The account.
        id: AccountId,
        /// The available amount the move relied on is not there.
        funds: bool,
    },
    /// The terminal's session: a sign-on or settlement elsewhere.
    Session(Tid),
    /// An earlier transaction's state (voided, reversed, refunded).
    Original(Rrn),
    /// The request's own trace was reversed first (at another node): it is refused.
    ReversedFirst,
    /// The reversal armed for a forwarded request was taken over by the node holding the
    /// queue (this node looked gone): the request stands for nothing, it is not decided
    /// again.
    ArmedTakenOver,
    /// Something else a condition named (a stand-in day, a batch's totals, an original that
    /// arrived after all).
    Other,
}

/// Storage for the journal. The writer's instance takes commits; the reader's answers
/// queries (a backend may be both).
pub trait Backend: Send + 'static {
    /// Applies `ops` in one durable transaction; a condition that does not hold fails it
    /// with [`JournalError::Stale`] and applies nothing.
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError>;
    /// Reads the start-up state; `today` is the China Standard Time day number (stand-in
    /// totals of today and yesterday).
    fn snapshot(&mut self, today: i64) -> Result<Snapshot, JournalError>;
    /// A small durable write: proves the storage takes writes now.
    fn probe(&mut self) -> Result<(), JournalError>;
    /// Reserves `n` numbers of sequence `name` and returns the first.
    fn reserve(&mut self, name: &str, n: u64) -> Result<u64, JournalError>;
    /// A transaction by RRN.
    fn find(&mut self, rrn: &Rrn) -> Result<Option<TxnRecord>, JournalError>;
    /// Every transaction with this terminal, batch and trace number (any MTI), in order.
    fn find_trace(
        &mut self,
        tid: &Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Vec<TxnRecord>, JournalError>;
    /// Pre-authorisations, as `query` asks, oldest first.
    fn preauths(&mut self, query: &PreauthQuery) -> Result<Vec<TxnRecord>, JournalError>;
    /// The highest trace number journalled for a terminal's batch.
    fn max_stan(&mut self, tid: &Tid, batch: BatchNo) -> Result<Option<Stan>, JournalError>;
    /// A batch's sales that stand and its refunds, summed.
    fn batch_totals(&mut self, tid: &Tid, batch: BatchNo) -> Result<BatchTotals, JournalError>;
    /// A batch's sales that stand and its refunds, one by one.
    fn batch_items(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<BatchItem>, JournalError>;
    /// What a terminal uploaded for a batch.
    fn uploads(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<UploadRecord>, JournalError>;
    /// A terminal's session as journalled now.
    fn session(&mut self, tid: &Tid) -> Result<Option<SessionRecord>, JournalError>;
    /// An account as journalled now.
    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, JournalError>;

    /// Applies an operator's change to a card and logs it (`admin_log`), in one
    /// transaction; the card as it is now, `None` when the journal has no such card.
    fn change_card(&mut self, change: &CardChange) -> Result<Option<AccountRecord>, JournalError>;

    /// Adds a card the journal does not hold and logs it, in one transaction; `false`
    /// when it holds one already (nothing changes).
    fn add_card(&mut self, card: &AccountRecord, entry: &AdminEntry) -> Result<bool, JournalError>;

    /// Disables a terminal (its session ended too) or enables it again, and logs it, in
    /// one transaction.
    fn set_terminal_enabled(
        &mut self,
        tid: &Tid,
        enabled: bool,
        entry: &AdminEntry,
    ) -> Result<(), JournalError>;

    /// Drains an issuer (no new requests) or takes it back, and logs it.
    fn set_issuer_drained(
        &mut self,
        issuer: &str,
        drained: bool,
        entry: &AdminEntry,
    ) -> Result<(), JournalError>;

    /// The issuers an operator drained.
    fn drained_issuers(&mut self) -> Result<Vec<String>, JournalError>;

    /// The terminals an operator disabled.
    fn disabled_terminals(&mut self) -> Result<Vec<Tid>, JournalError>;

    /// Ends a terminal's session (it must sign on again) and logs it, in one transaction;
    /// whether it had one.
    fn end_session(&mut self, tid: &Tid, entry: &AdminEntry) -> Result<bool, JournalError>;
    /// A card's stand-in approvals that stand on a China Standard Time day, fen.
    fn stand_in_used(&mut self, account: &AccountId, date: &str) -> Result<i64, JournalError>;
    /// The terminals' open batches that hold approved transactions, and those
    /// transactions (sales, voids, refunds): what the next settlements will close.
    fn open_batches(&mut self) -> Result<(i64, i64), JournalError>;
    /// Registers `node` as live, held by `holder` (host and process): refused with the
    /// holder's name while another holder's heartbeat is later than `stale_before`.
    fn register_node(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Result<(), String>, JournalError>;
    /// The node's heartbeat; `false` when another holder has the node id now (this one must
    /// stop taking money).
    fn heartbeat(&mut self, node: &str, holder: &str, now: Timestamp)
    -> Result<bool, JournalError>;
    /// `node`, held by `holder`, stopped cleanly: its id is free at once, and the queue
    /// leases it held.
    fn deregister_node(&mut self, node: &str, holder: &str) -> Result<(), JournalError> {
        let _ = (node, holder);
        Ok(())
    }
    /// Takes or keeps the lease on `issuer`'s store-and-forward queue for `node` until
    /// `until`; whether `node` holds it.
    fn saf_lease(
        &mut self,
        issuer: &str,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, JournalError>;
    /// The journal's id as stored now (`None`: none, or not known to this backend).
    fn journal_id_read(&mut self) -> Result<Option<String>, JournalError> {
        Ok(None)
    }
    /// `issuer`'s entries to send, oldest first: pending ones, and armed ones of processes
    /// with no heartbeat since `alive_since` (their requests died with them).
    fn saf_queue(
        &mut self,
        issuer: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<SafRecord>, JournalError>;
    /// `issuer`'s queue for the node holding it: all of it (`since` `None`), or what
    /// changed after the read that returned `since`. A backend that cannot tell what
    /// changed returns all of it each time, as [`Backend::saf_queue`] has it.
    fn saf_changes(
        &mut self,
        issuer: &str,
        since: Option<u64>,
        alive_since: Timestamp,
    ) -> Result<SafChanges, JournalError> {
        let _ = since;
        Ok(SafChanges {
            records: self.saf_queue(issuer, alive_since)?,
            complete: true,
            next: None,
            alive: None,
        })
    }
}

/// A query run on the reader.
type Query = Box<dyn FnOnce(&mut dyn Backend) + Send>;

enum Request {
    Commit {
        ops: Vec<Op>,
        done: oneshot::Sender<Result<(), JournalError>>,
    },
    Reserve {
        name: &'static str,
        n: u64,
        done: oneshot::Sender<Result<u64, JournalError>>,
    },
    Probe {
        done: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Anything else that writes (node registration, heartbeats, queue leases).
    Run(Query),
}

/// Whether the journal can take the next commit: what `/readyz` and the pipeline read.
///
/// *Broken* is for good (the file was deleted or replaced under the switch: only a restart,
/// after the operator has looked, clears it). *Failing* is while writes fail (a full or
/// read-only disk); the next write that works clears it.
#[derive(Debug, Default)]
pub struct Health {
    broken: std::sync::atomic::AtomicBool,
    failing: std::sync::atomic::AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    /// `Err` with the reason while the journal cannot be trusted with a commit.
    pub fn ready(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.broken.load(Relaxed) || self.failing.load(Relaxed) {
            Err(self
                .reason
                .lock()
                .map(|r| r.clone())
                .unwrap_or_else(|_| "journal unavailable".into()))
        } else {
            Ok(())
        }
    }

    /// For good: logged once.
    pub fn set_broken(&self, reason: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.broken.swap(true, Relaxed) {
            tracing::error!(
                reason,
                "journal lost: not ready, money-moving requests answer 96 until restarted"
            );
            self.set_reason(reason);
        }
    }

    /// While writes fail: logged when it starts.
    pub fn set_failing(&self, reason: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.failing.swap(true, Relaxed) {
            tracing::error!(
                reason,
                "journal not writable: not ready, money-moving requests answer 96"
            );
            if !self.broken.load(Relaxed) {
                self.set_reason(reason);
            }
        }
    }

    /// Writes work again.
    pub fn clear_failing(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.failing.swap(false, Relaxed) && !self.broken.load(Relaxed) {
            tracing::warn!("journal writable again: ready");
        }
    }

    fn set_reason(&self, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            reason.clone_into(&mut r);
        }
    }
}

/// Observes each group commit: requests in it and how long the commit took.
pub type BatchObserver = Box<dyn Fn(usize, Duration) + Send>;

enum Mode {
    /// A writer thread and a reader thread.
    Threads {
        writer: Mutex<Option<mpsc::Sender<Request>>>,
        reader: Mutex<Option<mpsc::Sender<Query>>>,
        threads: Mutex<Vec<JoinHandle<()>>>,
        /// Dropped on close: the housekeeping threads' signal to stop.
        stops: Mutex<Vec<std::sync::mpsc::Sender<()>>>,
    },
    /// One backend, run on the calling task.
    Inline(Arc<Mutex<Box<dyn Backend>>>),
}

/// Where a write goes.
enum Writer<'a> {
    Thread(mpsc::Sender<Request>),
    Inline(&'a Mutex<Box<dyn Backend>>),
}

/// Handle to the journal.
pub struct Journal {
    mode: Mode,
    health: Arc<Health>,
    shared: bool,
}

impl Journal {
    /// Starts the writer thread over `writer` and the reader thread over `reader`; groups
    /// take at most `max_group` requests.
    pub fn start(
        writer: impl Backend,
        reader: impl Backend,
        max_group: usize,
        observe: BatchObserver,
    ) -> Self {
        Self::start_pool(writer, vec![Box::new(reader)], max_group, observe)
    }

    /// Starts the writer thread over `writer` and a reader thread over each of `readers`
    /// (they take queries from one queue, each as it is free).
    pub fn start_pool(
        mut writer: impl Backend,
        readers: Vec<Box<dyn Backend>>,
        max_group: usize,
        observe: BatchObserver,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Request>(max_group.max(1) * 4);
        let (qtx, qrx) = mpsc::channel::<Query>(1024);
        let mut threads = Vec::new();
        let spawned = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                let mut group: Vec<Request> = Vec::with_capacity(max_group);
                while let Some(first) = rx.blocking_recv() {
                    group.push(first);
                    while group.len() < max_group {
                        match rx.try_recv() {
                            Ok(r) => group.push(r),
                            Err(_) => break,
                        }
                    }
                    write_group(&mut writer, &mut group, &observe);
                }
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => tracing::error!(error = %e, "cannot start the journal writer"),
        }
        let queue = Arc::new(Mutex::new(qrx));
        for (i, mut reader) in readers.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("journal-reader-{i}"))
                .spawn(move || {
                    loop {
                        // One reader waits on the queue at a time; the others wait for it.
                        let next = match queue.lock() {
                            Ok(mut q) => q.blocking_recv(),
                            Err(_) => None,
                        };
                        let Some(query) = next else { break };
                        query(reader.as_mut());
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "cannot start a journal reader"),
            }
        }
        Self {
            mode: Mode::Threads {
                writer: Mutex::new(Some(tx)),
                reader: Mutex::new(Some(qtx)),
                threads: Mutex::new(threads),
                stops: Mutex::default(),
            },
            health: Arc::default(),
            shared: false,
        }
    }

    /// Runs `job` on a thread of its own every `every` until the journal closes (a
    /// checkpointer). Without threads (inline), nothing runs.
    pub fn with_housekeeping(
        self,
        name: &str,
        every: Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> Self {
        let Mode::Threads { threads, stops, .. } = &self.mode else {
            return self;
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    job();
                }
            });
        match spawned {
            Ok(t) => {
                if let (Ok(mut threads), Ok(mut stops)) = (threads.lock(), stops.lock()) {
                    threads.push(t);
                    stops.push(stop);
                }
            }
            Err(e) => tracing::error!(error = %e, thread = name, "cannot start a journal thread"),
        }
        self
    }

    /// This journal is shared by several switch nodes: what one node keeps in memory may be
    /// behind what another committed, so the pipeline reads the journal where memory could
    /// mislead it and puts every condition it relies on into its commits.
    pub fn shared_by_nodes(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Whether several nodes share this journal.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// A journal over `backend`, every call run at once on the caller (no threads, no group
    /// commit): for simulation, where a crash must leave exactly what was committed.
    pub fn inline(backend: Arc<Mutex<Box<dyn Backend>>>) -> Self {
        Self {
            mode: Mode::Inline(backend),
            health: Arc::default(),
            shared: false,
        }
    }

    /// Whether the journal can take commits.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The writer thread's queue, or the backend itself when inline.
    fn writer(&self) -> Result<Writer<'_>, JournalError> {
        match &self.mode {
            Mode::Inline(b) => Ok(Writer::Inline(b)),
            Mode::Threads { writer, .. } => Ok(Writer::Thread(
                writer
                    .lock()
                    .map_err(|_| JournalError::Closed)?
                    .clone()
                    .ok_or(JournalError::Closed)?,
            )),
        }
    }

    async fn ask<T>(
        tx: mpsc::Sender<Request>,
        request: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Request,
    ) -> Result<T, JournalError> {
        let (done, wait) = oneshot::channel();
        tx.send(request(done))
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// Commits `ops` atomically; returns once they are durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), JournalError> {
        match self.writer()? {
            Writer::Thread(tx) => Self::ask(tx, |done| Request::Commit { ops, done }).await,
            Writer::Inline(b) => {
                // The hand-offs of the threaded journal (to the writer, and its ack back)
                // are points where a task waits: a simulation can stop it at either.
                tokio::task::yield_now().await;
                let applied = lock(b)?.apply(&ops.iter().collect::<Vec<_>>());
                tokio::task::yield_now().await;
                applied
            }
        }
    }

    /// Reserves `n` numbers of a sequence, durably; returns the first.
    pub async fn reserve(&self, name: &'static str, n: u64) -> Result<u64, JournalError> {
        match self.writer()? {
            Writer::Thread(tx) => Self::ask(tx, |done| Request::Reserve { name, n, done }).await,
            Writer::Inline(b) => lock(b)?.reserve(name, n),
        }
    }

    /// A small durable write through the writer: `Ok` when the storage takes writes.
    pub async fn probe(&self) -> Result<(), JournalError> {
        match self.writer()? {
            Writer::Thread(tx) => Self::ask(tx, |done| Request::Probe { done }).await,
            Writer::Inline(b) => lock(b)?.probe(),
        }
    }

    /// Runs `job` on the writer (between group commits) and returns its answer.
    pub async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut dyn Backend) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let tx = match self.writer()? {
            Writer::Inline(b) => {
                tokio::task::yield_now().await;
                return job(lock(b)?.as_mut());
            }
            Writer::Thread(tx) => tx,
        };
        let (done, wait) = oneshot::channel();
        let run: Query = Box::new(move |b: &mut dyn Backend| {
            let _ = done.send(job(b));
        });
        tx.send(Request::Run(run))
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs `query` on the reader and returns its answer.
    pub async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&mut dyn Backend) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let reader = match &self.mode {
            Mode::Inline(b) => {
                tokio::task::yield_now().await;
                return query(lock(b)?.as_mut());
            }
            Mode::Threads { reader, .. } => reader
                .lock()
                .map_err(|_| JournalError::Closed)?
                .clone()
                .ok_or(JournalError::Closed)?,
        };
        let (done, wait) = oneshot::channel();
        let job: Query = Box::new(move |b: &mut dyn Backend| {
            let _ = done.send(query(b));
        });
        reader.send(job).await.map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// A transaction by RRN.
    pub async fn find(&self, rrn: Rrn) -> Result<Option<TxnRecord>, JournalError> {
        self.read(move |b| b.find(&rrn)).await
    }

    /// Every transaction with this terminal, batch and trace number.
    pub async fn find_trace(
        &self,
        tid: Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        self.read(move |b| b.find_trace(&tid, batch, stan)).await
    }

    /// Pre-authorisations, as `query` asks.
    pub async fn preauths(&self, query: PreauthQuery) -> Result<Vec<TxnRecord>, JournalError> {
        self.read(move |b| b.preauths(&query)).await
    }

    /// Stops accepting work, lets the threads finish what is queued, and waits for them.
    pub fn close(&self) {
        let Mode::Threads {
            writer,
            reader,
            threads,
            stops,
        } = &self.mode
        else {
            return;
        };
        if let Ok(mut stops) = stops.lock() {
            stops.clear();
        }
        if let Ok(mut tx) = writer.lock() {
            tx.take();
        }
        if let Ok(mut tx) = reader.lock() {
            tx.take();
        }
        let handles: Vec<JoinHandle<()>> = threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for h in handles {
            if h.join().is_err() {
                tracing::error!("a journal thread panicked");
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock(
    b: &Mutex<Box<dyn Backend>>,
) -> Result<std::sync::MutexGuard<'_, Box<dyn Backend>>, JournalError> {
    b.lock().map_err(|_| JournalError::Closed)
}

fn write_group(backend: &mut impl Backend, group: &mut Vec<Request>, observe: &BatchObserver) {
    let started = Instant::now();
    let commits: Vec<&Op> = group
        .iter()
        .filter_map(|r| match r {
            Request::Commit { ops, .. } => Some(ops.iter()),
            Request::Reserve { .. } | Request::Probe { .. } | Request::Run(_) => None,
        })
        .flatten()
        .collect();
    let n_ops = commits.len();
    let group_result = if commits.is_empty() {
        Ok(())
    } else {
        backend.apply(&commits)
    };
    drop(commits);
    let mut n_requests = 0;
    for req in group.drain(..) {
        match req {
            Request::Commit { ops, done } => {
                n_requests += 1;
                let result = match &group_result {
                    Ok(()) => Ok(()),
                    // The group failed: apply this request alone, so one bad request does
                    // not fail its neighbours.
                    Err(_) => backend.apply(&ops.iter().collect::<Vec<_>>()),
                };
                if let Err(e) = &result {
                    crate::fault_error!(
                        crate::fault_log::Fault::JournalCommit,
                        e,
                        "journal commit failed"
                    );
                }
                // Let go of the request's ops before it hears back: what it shares with them
                // (its transaction's record) is then freed by its own thread, not this one.
                drop(ops);
                let _ = done.send(result);
            }
            Request::Reserve { name, n, done } => {
                let _ = done.send(backend.reserve(name, n));
            }
            Request::Probe { done } => {
                let _ = done.send(backend.probe());
            }
            Request::Run(job) => job(backend),
        }
    }
    if n_ops > 0 {
        observe(n_requests, started.elapsed());
    }
}
