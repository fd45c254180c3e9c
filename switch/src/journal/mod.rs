//! The journal: the system of record, written by one thread with group commit.
//!
//! ```text
//!  pipeline tasks ──commit(ops)──▶ channel ──▶ writer thread: take 1..=N requests,
//!        ▲                                       one transaction, one fsync,
//!        └──────────── ack (durable) ◀────────── then ack every request in the group
//! ```
//!
//! A reply that says approved is sent only after its `commit` returned: its record and the
//! balance change are on disk. The storage sits behind [`Backend`], so a PostgreSQL backend
//! can take SQLite's place with the same schema; RRNs come from blocks reserved in the
//! journal ([`Journal::reserve`]), so several nodes sharing one never collide.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub mod owner;
pub mod sqlite;

/// A journal failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The storage refused or failed.
    #[error("journal storage: {0}")]
    Storage(String),
    /// The writer has stopped (shutdown or a fatal error).
    #[error("journal writer has stopped")]
    Closed,
}

/// One financial or management request and its outcome. Never holds a full PAN, a PIN
/// block or a key: the PAN is masked, plus a keyed hash for look-ups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    /// Retrieval reference number (unique).
    pub rrn: String,
    /// When the switch received it, UTC, ISO 8601.
    pub time_utc: String,
    /// Transaction kind (`sale`, `balance`, `sign-on`, ...).
    pub kind: String,
    /// Request MTI.
    pub mti: String,
    /// Terminal.
    pub tid: String,
    /// Merchant.
    pub mid: String,
    /// Batch number (60.2).
    pub batch: u32,
    /// System trace audit number (11).
    pub stan: u32,
    /// Operator number (63).
    pub operator: Option<String>,
    /// Masked PAN, `622202*********0017`.
    pub masked_pan: Option<String>,
    /// Keyed hash of the PAN (hex).
    pub pan_hash: Option<String>,
    /// `debit` / `credit`.
    pub card_type: Option<String>,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Fee in fen.
    pub fee_fen: i64,
    /// Currency code.
    pub currency: Option<String>,
    /// Response code (39).
    pub response_code: String,
    /// Authorisation code (38).
    pub auth_code: Option<String>,
    /// Keyed digest of the request (duplicate detection), hex.
    pub request_digest: String,
    /// Local (China Standard Time) date, `YYYY-MM-DD`, for reports and refund look-ups.
    pub local_date: String,
    /// The RRN of the transaction this one voids, refunds or reverses.
    pub original_rrn: Option<String>,
    /// For a sale: voided since.
    pub voided: bool,
    /// For a sale, void or refund: reversed since.
    pub reversed: bool,
    /// For a sale: amount refunded since, fen.
    pub refunded_fen: i64,
    /// The remote issuer it was forwarded to (its configured name).
    pub issuer: Option<String>,
    /// How the issuer knows it: upstream `MTI:STAN:transmission time`.
    pub upstream: Option<String>,
    /// Approved by the switch standing in for an unreachable issuer.
    pub stand_in: bool,
    /// Settlement: field 48 of the reply (the reconciliation result), so that a
    /// retransmission, also after a restart, is answered alike.
    pub reply_48: Option<String>,
}

/// A reversal or advice in the store-and-forward queue. The message (it holds a PAN) is
/// sealed under the LMK; the other columns are safe to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafRecord {
    /// Unique id: the RRN of the request it follows, and the kind.
    pub id: String,
    /// Issuer name.
    pub issuer: String,
    /// `reversal` or `advice`.
    pub kind: String,
    /// First MTI (`0420`, `0220`); repeats go as `0421`, `0221`.
    pub mti: String,
    /// The transaction it reverses or advises.
    pub original_rrn: Option<String>,
    /// When queued, UTC.
    pub created_utc: String,
    /// `armed` (written before its request went out; sent if the request's outcome is
    /// unknown), `pending`, `acknowledged`, `expired` or `cancelled`.
    pub state: String,
    /// Sends so far.
    pub tries: u32,
    /// Last change, UTC.
    pub updated_utc: String,
    /// The message without MAC, sealed under the LMK.
    pub sealed: Vec<u8>,
}

/// An on-us card account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Keyed hash of the PAN (hex): the key.
    pub pan_hash: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// `debit` / `credit`.
    pub card_type: String,
    /// `active`, `lost`, `stolen`, `blocked`.
    pub status: String,
    /// YYMM.
    pub expiry: String,
    /// How the PIN is verified: `ibm3624` (offset, every digit) or `visa-pvv` (legacy).
    pub pin_method: String,
    /// PIN verification data: the IBM 3624 offset, or the Visa PVV.
    pub pvv: String,
    /// PVK index (Visa PVV).
    pub pvki: u8,
    /// Available balance (debit) or amount used (credit), fen.
    pub balance_fen: i64,
    /// Credit limit (credit cards), fen.
    pub credit_limit_fen: i64,
    /// Consecutive wrong PINs.
    pub pin_tries: u8,
}

/// A terminal's signed-on session: working keys sealed under the LMK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Terminal.
    pub tid: String,
    /// Merchant.
    pub mid: String,
    /// TPK sealed under the LMK, hex.
    pub tpk: String,
    /// TAK sealed under the LMK, hex.
    pub tak: String,
    /// Current batch.
    pub batch: u32,
    /// Operator who signed on.
    pub operator: Option<String>,
    /// When, UTC.
    pub signed_on_utc: String,
}

/// A change to the journal; a `commit` applies its operations atomically.
#[derive(Clone, Debug)]
pub enum Op {
    /// Record a request and its outcome.
    Txn(Box<TxnRecord>),
    /// Create or replace an account (card file load).
    PutAccount(Box<AccountRecord>),
    /// Change an account's balance by a delta (so concurrent changes commute) and set its
    /// PIN-try counter.
    UpdateAccount {
        /// Account key.
        pan_hash: String,
        /// Added to the balance (debit cards) or to the amount used (credit cards).
        balance_delta_fen: i64,
        /// New counter, if it changed.
        pin_tries: Option<u8>,
    },
    /// Replace an account's PIN verification data (from the card file).
    SetPinData {
        /// Account key.
        pan_hash: String,
        /// `ibm3624` or `visa-pvv`.
        pin_method: String,
        /// Offset or PVV.
        pvv: String,
        /// PVK index.
        pvki: u8,
    },
    /// Create or replace a terminal session.
    PutSession(Box<SessionRecord>),
    /// Change a recorded transaction's later state.
    MarkTxn {
        /// The transaction.
        rrn: String,
        /// Set `voided`.
        voided: Option<bool>,
        /// Set `reversed`.
        reversed: Option<bool>,
        /// Added to `refunded_fen`.
        refunded_delta_fen: i64,
    },
    /// Record a settled batch.
    CloseBatch(Box<BatchRecord>),
    /// Record one transaction of a batch upload.
    PutUpload(Box<UploadRecord>),
    /// Queue a reversal or advice (ignored if its id is queued already).
    PutSaf(Box<SafRecord>),
    /// Change a queued entry's state and tries.
    UpdateSaf {
        /// The entry.
        id: String,
        /// New state.
        state: &'static str,
        /// New count of sends, if it changed.
        tries: Option<u32>,
        /// When, UTC.
        updated_utc: String,
    },
}

/// A settled batch: the terminal's totals and the switch's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// Terminal.
    pub tid: String,
    /// Merchant.
    pub mid: String,
    /// Batch number.
    pub batch: u32,
    /// When, UTC.
    pub closed_utc: String,
    /// Terminal's debit (sales) amount and count.
    pub terminal_debit_fen: i64,
    /// Terminal's sales count.
    pub terminal_debit_count: i64,
    /// Terminal's credit (refunds) amount.
    pub terminal_credit_fen: i64,
    /// Terminal's refunds count.
    pub terminal_credit_count: i64,
    /// Switch's sales amount.
    pub switch_debit_fen: i64,
    /// Switch's sales count.
    pub switch_debit_count: i64,
    /// Switch's refunds amount.
    pub switch_credit_fen: i64,
    /// Switch's refunds count.
    pub switch_credit_count: i64,
    /// Whether the totals agreed.
    pub balanced: bool,
}

/// One transaction a terminal uploaded after an unbalanced settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// Terminal.
    pub tid: String,
    /// Batch.
    pub batch: u32,
    /// The transaction's STAN.
    pub stan: u32,
    /// Amount, fen.
    pub amount_fen: i64,
    /// `sale` or `refund`.
    pub kind: String,
}

/// What the journal holds at start-up.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// All on-us accounts.
    pub accounts: Vec<AccountRecord>,
    /// All terminal sessions.
    pub sessions: Vec<SessionRecord>,
    /// Transactions of the sessions' current batches, and the settlement and uploads of the
    /// batch each terminal closed last (for duplicate detection).
    pub open_batch_txns: Vec<TxnRecord>,
    /// Store-and-forward entries still to send (`armed` or `pending`).
    pub saf: Vec<SafRecord>,
    /// Stand-in approvals that stand, per card and day, for the last two days (CST):
    /// (PAN hash, local date, fen).
    pub stand_in: Vec<(String, String, i64)>,
}

/// Storage for the journal. Called from the writer thread only.
pub trait Backend: Send + 'static {
    /// Applies `ops` in one durable transaction.
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError>;
    /// Reads the start-up state.
    fn snapshot(&mut self) -> Result<Snapshot, JournalError>;
    /// A small durable write: proves the storage takes writes now.
    fn probe(&mut self) -> Result<(), JournalError>;
    /// Reserves `n` numbers of sequence `name` and returns the first.
    fn reserve(&mut self, name: &str, n: u64) -> Result<u64, JournalError>;
    /// A transaction by RRN.
    fn find(&mut self, rrn: &str) -> Result<Option<TxnRecord>, JournalError>;
}

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
    Find {
        rrn: String,
        done: oneshot::Sender<Result<Option<TxnRecord>, JournalError>>,
    },
    Probe {
        done: oneshot::Sender<Result<(), JournalError>>,
    },
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

/// Observes each group commit: operations in it and how long the commit took.
pub type BatchObserver = Box<dyn Fn(usize, Duration) + Send>;

/// Handle to the journal writer.
pub struct Journal {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    health: std::sync::Arc<Health>,
}

impl Journal {
    /// Starts the writer thread over `backend`; groups take at most `max_group` requests.
    pub fn start(mut backend: impl Backend, max_group: usize, observe: BatchObserver) -> Self {
        let (tx, mut rx) = mpsc::channel::<Request>(max_group.max(1) * 4);
        let thread = std::thread::Builder::new()
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
                    write_group(&mut backend, &mut group, &observe);
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the journal writer");
                None
            }
        };
        Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            health: std::sync::Arc::default(),
        }
    }

    /// Whether the journal can take commits.
    pub fn health(&self) -> &std::sync::Arc<Health> {
        &self.health
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, JournalError> {
        self.tx
            .lock()
            .map_err(|_| JournalError::Closed)?
            .clone()
            .ok_or(JournalError::Closed)
    }

    /// Commits `ops` atomically; returns once they are durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), JournalError> {
        let (done, wait) = oneshot::channel();
        self.sender()?
            .send(Request::Commit { ops, done })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// Reserves `n` numbers of a sequence, durably; returns the first.
    pub async fn reserve(&self, name: &'static str, n: u64) -> Result<u64, JournalError> {
        let (done, wait) = oneshot::channel();
        self.sender()?
            .send(Request::Reserve { name, n, done })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// A transaction by RRN (read after every commit queued before it).
    pub async fn find(&self, rrn: &str) -> Result<Option<TxnRecord>, JournalError> {
        let (done, wait) = oneshot::channel();
        self.sender()?
            .send(Request::Find {
                rrn: rrn.to_owned(),
                done,
            })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// A small durable write through the writer: `Ok` when the storage takes writes.
    pub async fn probe(&self) -> Result<(), JournalError> {
        let (done, wait) = oneshot::channel();
        self.sender()?
            .send(Request::Probe { done })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }

    /// Stops accepting work, lets the writer finish what is queued, and waits for it.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("journal writer panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_group(backend: &mut impl Backend, group: &mut Vec<Request>, observe: &BatchObserver) {
    let started = Instant::now();
    let commits: Vec<&Op> = group
        .iter()
        .filter_map(|r| match r {
            Request::Commit { ops, .. } => Some(ops.iter()),
            Request::Reserve { .. } | Request::Find { .. } | Request::Probe { .. } => None,
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
                    tracing::error!(error = %e, "journal commit failed");
                }
                let _ = done.send(result);
            }
            Request::Reserve { name, n, done } => {
                let _ = done.send(backend.reserve(name, n));
            }
            Request::Find { rrn, done } => {
                let _ = done.send(backend.find(&rrn));
            }
            Request::Probe { done } => {
                let _ = done.send(backend.probe());
            }
        }
    }
    if n_ops > 0 {
        observe(n_requests, started.elapsed());
    }
}
