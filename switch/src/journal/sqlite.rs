//! The embedded SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk when it
//! returns), one writer connection and one reader connection.
//!
//! Operators can read it while the switch runs: `sqlite3 switch-data/journal.db`. This is
//! the only place where the journal's records become text and back.
//!
//! ```text
//!  Op::MoveFunds { require_available_fen: Some(a) }
//!      UPDATE accounts SET balance_fen = balance_fen + Δ … WHERE pan_hash = ? AND available >= a
//!      no row changed ─▶ Stale(Account): the whole commit is rolled back
//!  Op::Mark { Void }
//!      UPDATE transactions SET voided = 1 WHERE rrn = ? AND <approved, not voided, reversed or refunded>
//! ```

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::columns::{
    ACCOUNT_COLUMNS, ColumnError, Columns, Lent, SAF_COLUMNS, SESSION_COLUMNS, TXN_COLUMN_COUNT,
    TXN_COLUMNS, Value, account_from, account_values, saf_from, saf_values, session_from,
    session_values, txn_columns, txn_from,
};
use super::{
    AccountRecord, AdminEntry, Backend, BatchItem, BatchTotals, CardChange, Condition,
    JournalError, Mark, Op, PinTries, PreauthQuery, SafRecord, SessionRecord, Snapshot, Stale,
    TraceFirst, TxnRecord, UploadRecord,
};
use crate::clock::{Timestamp, day_number};
use crate::model::{AccountId, BatchNo, FinancialKind, Rrn, SafState, Stan, Tid};

/// The schema, shared with the README.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS transactions (
    rrn            TEXT PRIMARY KEY,
    time_utc       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    mti            TEXT NOT NULL,
    tid            TEXT NOT NULL,
    mid            TEXT NOT NULL,
    batch          INTEGER NOT NULL,
    stan           INTEGER NOT NULL,
    operator       TEXT,
    masked_pan     TEXT,
    pan_hash       TEXT,
    card_type      TEXT,
    amount_fen     INTEGER NOT NULL DEFAULT 0,
    fee_fen        INTEGER NOT NULL DEFAULT 0,
    currency       TEXT,
    response_code  TEXT NOT NULL,
    auth_code      TEXT,
    request_digest TEXT NOT NULL,
    local_date     TEXT NOT NULL DEFAULT '',
    original_rrn   TEXT,
    voided         INTEGER NOT NULL DEFAULT 0,
    reversed       INTEGER NOT NULL DEFAULT 0,
    refunded_fen   INTEGER NOT NULL DEFAULT 0,
    issuer         TEXT,
    upstream       TEXT,
    stand_in       INTEGER NOT NULL DEFAULT 0,
    reply_48       TEXT,
    balance_fen    INTEGER,
    fee_category   TEXT,
    fee_channel    TEXT,
    fee_rate_ppm   INTEGER,
    fee_cap_fen    INTEGER,
    completed      INTEGER NOT NULL DEFAULT 0,
    expired        INTEGER NOT NULL DEFAULT 0,
    tip_fen        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
    tid                   TEXT NOT NULL,
    mid                   TEXT NOT NULL,
    batch                 INTEGER NOT NULL,
    closed_utc            TEXT NOT NULL,
    terminal_debit_fen    INTEGER NOT NULL,
    terminal_debit_count  INTEGER NOT NULL,
    terminal_credit_fen   INTEGER NOT NULL,
    terminal_credit_count INTEGER NOT NULL,
    switch_debit_fen      INTEGER NOT NULL,
    switch_debit_count    INTEGER NOT NULL,
    switch_credit_fen     INTEGER NOT NULL,
    switch_credit_count   INTEGER NOT NULL,
    balanced              INTEGER NOT NULL,
    PRIMARY KEY (tid, batch)
);
CREATE TABLE IF NOT EXISTS batch_uploads (
    tid        TEXT NOT NULL,
    batch      INTEGER NOT NULL,
    stan       INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (tid, batch, stan)
);
CREATE TABLE IF NOT EXISTS accounts (
    pan_hash         TEXT PRIMARY KEY,
    masked_pan       TEXT NOT NULL,
    card_type        TEXT NOT NULL,
    status           TEXT NOT NULL,
    expiry           TEXT NOT NULL,
    pin_method       TEXT NOT NULL,
    pvv              TEXT NOT NULL,
    pvki             INTEGER NOT NULL,
    balance_fen      INTEGER NOT NULL,
    credit_limit_fen INTEGER NOT NULL,
    pin_tries        INTEGER NOT NULL DEFAULT 0,
    preauth_fen      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS terminal_sessions (
    tid           TEXT PRIMARY KEY,
    mid           TEXT NOT NULL,
    tpk           TEXT NOT NULL,
    tak           TEXT NOT NULL,
    batch         INTEGER NOT NULL,
    operator      TEXT,
    signed_on_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saf_queue (
    id           TEXT PRIMARY KEY,
    issuer       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    mti          TEXT NOT NULL,
    original_rrn TEXT,
    created_utc  TEXT NOT NULL,
    state        TEXT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    updated_utc  TEXT NOT NULL,
    message      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS saf_queue_by_state ON saf_queue (state);
CREATE TABLE IF NOT EXISTS nodes (
    node          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    started_utc   TEXT NOT NULL,
    heartbeat_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saf_leases (
    issuer    TEXT PRIMARY KEY,
    node      TEXT NOT NULL,
    until_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    tid   TEXT NOT NULL,
    batch INTEGER NOT NULL,
    stan  INTEGER NOT NULL,
    first TEXT NOT NULL,
    n     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tid, batch, stan)
);
CREATE TABLE IF NOT EXISTS claims (
    tid   TEXT NOT NULL,
    batch INTEGER NOT NULL,
    stan  INTEGER NOT NULL,
    mti   TEXT NOT NULL,
    PRIMARY KEY (tid, batch, stan, mti)
);
CREATE TABLE IF NOT EXISTS journal_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    name TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS drained_issuers (
    issuer    TEXT PRIMARY KEY,
    since_utc TEXT NOT NULL,
    who       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS disabled_terminals (
    tid       TEXT PRIMARY KEY,
    since_utc TEXT NOT NULL,
    who       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS admin_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc   TEXT NOT NULL,
    who        TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL
);
";

/// The one definition, in SQL, of a sale that still stands: approved, not voided, not
/// reversed. (Rust's is `Original::stands`.) Settlement, reports and stand-in limits use it.
pub const SALE_STANDS: &str = "kind IN ('sale','qr-sale','completion') AND response_code = '00' AND voided = 0 AND reversed = 0";

/// The one definition, in SQL, of a pre-authorisation still holding money: approved, not
/// voided, reversed, completed or expired. (Rust's is `Original::holds`.)
pub const PREAUTH_HOLDS: &str = "kind = 'pre-auth' AND response_code = '00' AND voided = 0 AND reversed = 0 AND completed = 0 AND expired = 0";

/// What available means in SQL (Rust's is `Account::available_fen`): a debit card's
/// balance, or a credit card's limit less what it used; less what pre-authorisations hold.
pub const AVAILABLE: &str = "(CASE card_type WHEN 'credit' THEN credit_limit_fen - balance_fen ELSE balance_fen END) - preauth_fen";

/// A refund that counts: approved and not reversed.
pub const REFUND_COUNTS: &str = "kind = 'refund' AND response_code = '00' AND reversed = 0";

/// The SQLite backend.
pub struct Sqlite {
    conn: Connection,
    /// The writer's: its WAL's mark, fitted to the disk's free space.
    wal_fit: Option<WalFit>,
}

/// The writer's WAL mark as the disk's free space allows it: [`WRITER_CHECKPOINT_PAGES`]
/// on a disk with room, less on one that fills, so that the WAL (which under load only
/// starts over at its mark) leaves the room to the database.
///
/// ```text
///  open, then commits a second apart ─▶ statvfs ─▶ mark = wal_mark_for(free, frame)
///      ─▶ changed: wal_autocheckpoint = mark, journal_size_limit = its bytes
/// ```
struct WalFit {
    /// The journal's file (its file system is the one measured).
    path: std::path::PathBuf,
    /// A WAL frame's bytes: the page and its 24-byte header.
    frame_bytes: u64,
    /// The mark set now; 0 before the first.
    mark: i64,
    /// When free space was last looked at; `None` before the first look.
    looked: Option<std::time::Instant>,
}

/// The bytes an unprivileged writer can still put on the file system holding `path`.
pub fn disk_free_bytes(path: &Path) -> Option<u64> {
    let fs = rustix::fs::statvfs(path).ok()?;
    Some(fs.f_bavail.saturating_mul(fs.f_frsize))
}

/// How often the writer looks at the disk's free space.
const WAL_FIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The least mark the writer sets, however full the disk: 1,024 pages (SQLite's default
/// is 1,000), a megabyte of WAL with 1 KiB pages.
pub const WRITER_CHECKPOINT_PAGES_LEAST: i64 = 1_024;

/// The writer's WAL mark, in pages, on a disk with `free_bytes` left and frames of
/// `frame_bytes`: a quarter of the free space, rounded down to a power of two (so that
/// free space moving a little does not move it), between
/// [`WRITER_CHECKPOINT_PAGES_LEAST`] and [`WRITER_CHECKPOINT_PAGES`].
pub fn wal_mark_for(free_bytes: u64, frame_bytes: u64) -> i64 {
    let pages = free_bytes / 4 / frame_bytes.max(1);
    let pages = if pages == 0 { 0 } else { 1u64 << pages.ilog2() };
    i64::try_from(pages)
        .unwrap_or(i64::MAX)
        .clamp(WRITER_CHECKPOINT_PAGES_LEAST, WRITER_CHECKPOINT_PAGES)
}

/// WAL pages past which the writer checkpoints, inside a commit. Under continuous load only
/// the writer can start the WAL over (a commit always lands between the checkpointer's copy
/// and the writer's next commit, so the WAL is never wholly copied when the writer looks),
/// but by then the checkpointer has copied all but its last interval's pages: the writer's
/// checkpoint copies those few and fsyncs the database. The WAL stays near 64 MiB (1 KiB
/// pages): the writer's checkpoint is passive, and when it finds the checkpointer busy it
/// tries again at its next commit, so the WAL can pass the mark by what a few commits
/// write.
///
/// That checkpoint holds up every request queued behind its commit: 2–4 ms, the
/// database's fsync most of it, whatever the mark, since what is left to copy is one
/// checkpointer interval's pages. The mark sets how often it comes: at 8,192 pages, 2.5
/// times a second at 5,000 sales/s; at 65,536, once every three seconds, for 64 MiB of
/// WAL on disk and ~0.1 s more to read it back after a crash (PERFORMANCE.md, "The
/// eleventh round"). (SQLite's default, 1,000 pages with nothing copied before, made every
/// thirtieth group commit under load copy a megabyte and fsync the database before its
/// requests were answered.)
///
/// That is the mark on a disk with room. On one with less than four times that free, the
/// writer lowers it to a quarter of the free space ([`wal_mark_for`]), so that the WAL
/// does not take the room the database needs.
pub const WRITER_CHECKPOINT_PAGES: i64 = 65_536;

/// Copies committed WAL pages back into the database file, on a connection and thread of
/// its own, so that group commits seldom wait for a checkpoint:
///
/// ```text
///  writer:       BEGIN … COMMIT (WAL append, fsync) ─▶ ack   …   COMMIT ─▶ WAL ≥ 65,536 pages:
///                                                                copy what is left, fsync,
///                                                                next commit starts the WAL over
///  checkpointer: every 100 ms: WAL ─▶ database, fsync (PASSIVE: never blocks the writer,
///                                     copies what no reader still needs)
/// ```
///
/// A page written many times between two checkpoints is copied once.
pub struct Checkpointer {
    conn: Connection,
}

/// What one checkpoint found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpointed {
    /// Frames in the WAL.
    pub wal_frames: i64,
    /// Frames now in the database (all of them, unless a reader still needed some).
    pub copied_frames: i64,
}

impl Checkpointer {
    /// One passive checkpoint.
    pub fn checkpoint(&mut self) -> Result<Checkpointed, JournalError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(Checkpointed {
                    wal_frames: r.get(1)?,
                    copied_frames: r.get(2)?,
                })
            })
            .map_err(storage)
    }
}

fn storage(e: rusqlite::Error) -> JournalError {
    JournalError::Storage(e.to_string())
}

fn bad_row(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, its directory included: the
    /// writer's connection.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| JournalError::Storage(format!("{}: {e}", dir.display())))?;
        }
        // The writer's WAL writes go out one commit at a time (`journal_wal`): a group
        // commit's ~120 `pwrite` calls become one.
        let vfs = journal_wal::register().map_err(|e| JournalError::Storage(e.to_string()))?;
        let conn = Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)
            .map_err(storage)?;
        // A new journal's pages: 1 KiB (an existing one keeps its size). A commit writes
        // each page it dirtied to the WAL whole, and a sale dirties about one leaf per
        // index: smaller pages are fewer bytes copied, checksummed and written.
        conn.pragma_update(None, "page_size", 1024)
            .map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        let page: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(storage)?;
        let mut writer = Self::prepare(conn)?;
        // Checkpoints are mostly the checkpointer's (its own thread and connection): the
        // writer copies what is left past its mark of WAL pages, and starts the WAL over.
        writer.wal_fit = Some(WalFit {
            path: path.to_owned(),
            frame_bytes: page + 24,
            mark: 0,
            looked: None,
        });
        writer.fit_wal();
        Ok(writer)
    }

    /// Fits the WAL's mark to the disk's free space ([`WalFit`]): at once the first time,
    /// then at most once a [`WAL_FIT_EVERY`]. A file system that cannot say counts as
    /// roomy.
    fn fit_wal(&mut self) {
        let Some(fit) = &mut self.wal_fit else {
            return;
        };
        let at = std::time::Instant::now();
        if fit
            .looked
            .is_some_and(|looked| at.duration_since(looked) < WAL_FIT_EVERY)
        {
            return;
        }
        fit.looked = Some(at);
        let free = disk_free_bytes(&fit.path);
        let mark = wal_mark_for(free.unwrap_or(u64::MAX), fit.frame_bytes);
        if mark == fit.mark {
            return;
        }
        // Past the mark the writer starts the WAL over; the limit then cuts its file back
        // to the mark's size, giving the rest to the file system.
        let limit = i64::try_from(fit.frame_bytes)
            .unwrap_or(i64::MAX)
            .saturating_mul(mark)
            .saturating_add(32);
        let set = self
            .conn
            .pragma_update(None, "wal_autocheckpoint", mark)
            .and_then(|()| {
                self.conn
                    .query_row(&format!("PRAGMA journal_size_limit = {limit}"), [], |_| {
                        Ok(())
                    })
            });
        match set {
            Ok(()) => {
                // Said when the disk's room sets it: not for the usual mark at open.
                if fit.mark != 0 || mark < WRITER_CHECKPOINT_PAGES {
                    tracing::info!(
                        pages = mark,
                        free_bytes = free,
                        "journal's WAL now starts over past this many pages (a quarter of the disk's free space, at most 65,536)"
                    );
                }
                fit.mark = mark;
            }
            Err(e) => tracing::warn!(error = %e, "journal's WAL mark could not be set"),
        }
    }

    /// A connection that copies the WAL back into the database (a passive checkpoint) off
    /// the writer's thread: see [`Checkpointer`].
    pub fn open_checkpointer(path: &Path) -> Result<Checkpointer, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        Ok(Checkpointer { conn })
    }

    /// A journal in memory (tests and simulation): the same schema, gone with the process.
    pub fn in_memory() -> Result<Self, JournalError> {
        Self::prepare(Connection::open_in_memory().map_err(storage)?)
    }

    fn prepare(mut conn: Connection) -> Result<Self, JournalError> {
        // The writer's transactions take the write lock when they begin, where SQLite waits
        // out a lock another connection holds for a moment (the checkpointer or the reader
        // re-reading the WAL index under it takes it). A deferred transaction that read
        // first and then wrote would instead get "database is locked" at once: SQLite does
        // not wait while a read is open, and the whole group would be answered 96.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        migrate(&conn).map_err(storage)?;
        Ok(Self {
            conn,
            wal_fit: None,
        })
    }

    /// A second connection to the journal at `path`, for queries only (WAL lets it read
    /// while the writer writes).
    pub fn open_reader(path: &Path) -> Result<Self, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        Ok(Self {
            conn,
            wal_fit: None,
        })
    }

    /// The journal's id, created once (the first time any switch opened it).
    pub fn journal_id(&mut self) -> Result<String, JournalError> {
        let id: Option<String> = self
            .conn
            .query_row("SELECT value FROM journal_meta WHERE key = 'id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(storage)?;
        if let Some(id) = id {
            return Ok(id);
        }
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| JournalError::Storage("no randomness for the journal id".into()))?;
        let id = hex::encode(bytes);
        self.conn
            .execute(
                "INSERT INTO journal_meta (key, value) VALUES ('id', ?1)",
                [&id],
            )
            .map_err(storage)?;
        Ok(id)
    }

    /// The id of the journal at `path`, read through a connection of its own (read-only):
    /// what a watchdog compares with the id the switch opened.
    pub fn read_id(path: &Path) -> Result<Option<String>, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage)?;
        conn.query_row("SELECT value FROM journal_meta WHERE key = 'id'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(storage)
    }
}

/// The indexes a commit writes besides the key's (`rrn`) and the request's
/// (`tid, batch, stan, mti`): by day (reports, settlement windows) and, by card, only the
/// rows looked up by card: stand-in approvals (the day's stand-in total) and
/// pre-authorisations (a completion finds its hold by card and auth code). A sale is no
/// entry in either, so its commit writes one index page fewer. Journals made before these
/// had every row indexed by card: that index goes, and the first start on such a journal
/// reads its table once to build these.
pub const LOOKUP_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS transactions_by_date ON transactions (local_date);
DROP INDEX IF EXISTS transactions_by_card;
CREATE INDEX IF NOT EXISTS transactions_stand_in_by_card ON transactions (pan_hash, local_date)
    WHERE stand_in = 1;
CREATE INDEX IF NOT EXISTS transactions_preauths_by_card ON transactions (pan_hash, auth_code)
    WHERE kind = 'pre-auth';
";

/// Columns and indexes added after the first schema: added in place to an older journal.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('transactions')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (col, decl) in [
        ("local_date", "TEXT NOT NULL DEFAULT ''"),
        ("original_rrn", "TEXT"),
        ("voided", "INTEGER NOT NULL DEFAULT 0"),
        ("reversed", "INTEGER NOT NULL DEFAULT 0"),
        ("refunded_fen", "INTEGER NOT NULL DEFAULT 0"),
        ("issuer", "TEXT"),
        ("upstream", "TEXT"),
        ("stand_in", "INTEGER NOT NULL DEFAULT 0"),
        ("reply_48", "TEXT"),
        ("balance_fen", "INTEGER"),
        ("fee_category", "TEXT"),
        ("fee_channel", "TEXT"),
        ("fee_rate_ppm", "INTEGER"),
        ("fee_cap_fen", "INTEGER"),
        ("completed", "INTEGER NOT NULL DEFAULT 0"),
        ("expired", "INTEGER NOT NULL DEFAULT 0"),
        ("tip_fen", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        if !have.iter().any(|h| h == col) {
            conn.execute_batch(&format!("ALTER TABLE transactions ADD COLUMN {col} {decl}"))?;
        }
    }
    // On columns an older journal gains just above.
    conn.execute_batch(LOOKUP_INDEXES)?;
    let has_owner = conn
        .prepare("SELECT 1 FROM pragma_table_info('saf_queue') WHERE name = 'owner'")?
        .exists([])?;
    if !has_owner {
        conn.execute_batch("ALTER TABLE saf_queue ADD COLUMN owner TEXT")?;
    }
    let has_session_id = conn
        .prepare("SELECT 1 FROM pragma_table_info('terminal_sessions') WHERE name = 'session_id'")?
        .exists([])?;
    if !has_session_id {
        conn.execute_batch(
            "ALTER TABLE terminal_sessions ADD COLUMN session_id INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    let has_holds = conn
        .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'preauth_fen'")?
        .exists([])?;
    if !has_holds {
        conn.execute_batch(
            "ALTER TABLE accounts ADD COLUMN preauth_fen INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    // Accounts of journals written before IBM 3624 verification hold Visa PVVs.
    let has_method = conn
        .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'pin_method'")?
        .exists([])?;
    if !has_method {
        conn.execute_batch(
            "ALTER TABLE accounts ADD COLUMN pin_method TEXT NOT NULL DEFAULT 'visa-pvv'",
        )?;
    }
    // One request per terminal, batch, trace and MTI. Journals from before it may hold
    // repeats (refused originals written again, sign-ons): the index stays plain there.
    let unique = conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS transactions_by_key ON transactions (tid, batch, stan, mti)",
    );
    if unique.is_err() {
        tracing::warn!(
            "journal holds repeated (tid, batch, stan, mti) rows from an older version: their index stays non-unique"
        );
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS transactions_by_terminal ON transactions (tid, batch, stan, mti)",
        )?;
    } else {
        conn.execute_batch("DROP INDEX IF EXISTS transactions_by_terminal")?;
    }
    Ok(())
}

/// Statements built once from the column list.
static INSERT_TXN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let marks: Vec<String> = (1..=TXN_COLUMN_COUNT).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO transactions ({TXN_COLUMNS}) VALUES ({})",
        marks.join(", ")
    )
});
static FIND_RRN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {TXN_COLUMNS} FROM transactions WHERE rrn = ?1"));
static FIND_TRACE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TXN_COLUMNS} FROM transactions WHERE tid = ?1 AND batch = ?2 AND stan = ?3 ORDER BY rowid"
    )
});

/// The look-up of pre-authorisations `query` asks for, with `$n`-style (`prefix` `$`) or
/// `?n`-style (`?`) placeholders: one SQL for both backends.
pub fn preauth_sql(query: &PreauthQuery, prefix: char) -> (String, Vec<Value>) {
    match query {
        PreauthQuery::Card { account, auth_code } => (
            format!(
                "SELECT {TXN_COLUMNS} FROM transactions WHERE pan_hash = {prefix}1
                 AND kind = 'pre-auth' AND response_code = '00' AND auth_code = {prefix}2
                 ORDER BY time_utc"
            ),
            vec![account.to_hex().into(), auth_code.as_str().into()],
        ),
        PreauthQuery::OpenUntil(day) => (
            format!(
                "SELECT {TXN_COLUMNS} FROM transactions WHERE {PREAUTH_HOLDS}
                 AND local_date <= {prefix}1 ORDER BY time_utc"
            ),
            vec![day.clone().into()],
        ),
        PreauthQuery::Open => (
            format!(
                "SELECT {TXN_COLUMNS} FROM transactions WHERE {PREAUTH_HOLDS} ORDER BY time_utc"
            ),
            Vec::new(),
        ),
    }
}

/// A card's stand-in approvals that stand, on one China Standard Time day.
pub static STAND_IN_USED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM transactions
         WHERE pan_hash = ?1 AND local_date = ?2 AND stand_in = 1 AND {SALE_STANDS}"
    )
});

/// An account's move: balance, holds and PIN tries, on the conditions the move relies on
/// (funds available before it, PIN tries below the limit, holds never below zero).
static MOVE_FUNDS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE accounts SET balance_fen = balance_fen + ?2, preauth_fen = preauth_fen + ?6,
            pin_tries = CASE ?3 WHEN 1 THEN pin_tries + 1 WHEN 2 THEN 0 ELSE pin_tries END
         WHERE pan_hash = ?1 AND (?4 IS NULL OR {AVAILABLE} >= ?4)
            AND (?5 IS NULL OR pin_tries < ?5) AND preauth_fen + ?6 >= 0"
    )
});

/// A batch's sales that stand and its refunds, summed.
pub static BATCH_TOTALS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT
            COALESCE(SUM(CASE WHEN {SALE_STANDS} THEN amount_fen END), 0),
            COUNT(CASE WHEN {SALE_STANDS} THEN 1 END),
            COALESCE(SUM(CASE WHEN {REFUND_COUNTS} THEN amount_fen END), 0),
            COUNT(CASE WHEN {REFUND_COUNTS} THEN 1 END)
         FROM transactions WHERE tid = ?1 AND batch = ?2"
    )
});

fn batch_totals(conn: &Connection, tid: &Tid, batch: BatchNo) -> rusqlite::Result<BatchTotals> {
    conn.prepare_cached(&BATCH_TOTALS)?
        .query_row(params![tid.as_str(), batch.0], |r| {
            Ok(BatchTotals {
                debit_fen: r.get(0)?,
                debit_count: r.get(1)?,
                credit_fen: r.get(2)?,
                credit_count: r.get(3)?,
            })
        })
}

/// The statements every sale runs, each taken from the connection's statement cache once
/// per commit and used for every request in it. The cache lends a statement by its SQL,
/// hashing the text (a transaction's insert is ~600 bytes) and copying it again when it
/// is handed back: ~5,000 instructions a sale for the two, where a commit under load
/// holds ~40 sales.
#[derive(Default)]
struct SaleStatements<'c> {
    insert_txn: Option<rusqlite::CachedStatement<'c>>,
    move_funds: Option<rusqlite::CachedStatement<'c>>,
}

impl<'c> SaleStatements<'c> {
    fn insert_txn(
        &mut self,
        conn: &'c Connection,
    ) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        held(&mut self.insert_txn, conn, &INSERT_TXN)
    }

    fn move_funds(
        &mut self,
        conn: &'c Connection,
    ) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        held(&mut self.move_funds, conn, &MOVE_FUNDS)
    }
}

/// A commit's transaction, begun and ended by statements from the connection's cache.
/// rusqlite's own `Transaction` parses `BEGIN` and `COMMIT` anew every time: ~7,000
/// instructions a commit, as much as a sale's own statements when the load is light and a
/// commit holds one or two sales. Dropped without [`Group::commit`] (a refused request, a
/// failed commit, a panic), it rolls back, as rusqlite's does.
struct Group<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Group<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Self { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // A commit that failed on I/O has been rolled back by SQLite already.
        if self.open && !self.conn.is_autocommit() {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

/// `slot`'s statement, from the cache the first time.
fn held<'s, 'c>(
    slot: &'s mut Option<rusqlite::CachedStatement<'c>>,
    conn: &'c Connection,
    sql: &str,
) -> rusqlite::Result<&'s mut rusqlite::CachedStatement<'c>> {
    match slot {
        Some(s) => Ok(s),
        None => Ok(slot.insert(conn.prepare_cached(sql)?)),
    }
}

fn put_txn<'c>(
    conn: &'c Connection,
    statements: &mut SaleStatements<'c>,
    t: &TxnRecord,
) -> rusqlite::Result<usize> {
    statements
        .insert_txn(conn)?
        .execute(rusqlite::params_from_iter(txn_columns(t)))
}

fn put_account(conn: &Connection, a: &AccountRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(rusqlite::params_from_iter(account_values(a)))
}

/// An operator's action in `admin_log`.
fn log_admin(tx: &Connection, e: &AdminEntry, detail: &str) -> Result<(), JournalError> {
    tx.prepare_cached(
        "INSERT INTO admin_log (time_utc, who, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut st| st.execute(params![e.at.iso_utc(), e.who, e.action, e.subject, detail]))
    .map(drop)
    .map_err(storage)
}

fn put_session(conn: &Connection, s: &SessionRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT INTO terminal_sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tid) DO UPDATE SET mid = excluded.mid, tpk = excluded.tpk, tak = excluded.tak,
            operator = excluded.operator, signed_on_utc = excluded.signed_on_utc,
            session_id = excluded.session_id"
    ))?
    .execute(rusqlite::params_from_iter(session_values(s)))
}

fn apply_op<'c>(
    tx: &'c Connection,
    statements: &mut SaleStatements<'c>,
    op: &Op,
) -> Result<(), JournalError> {
    match op {
        Op::Txn(t) => put_txn(tx, statements, t).map(drop).map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                JournalError::Duplicate(format!(
                    "transaction {} or its terminal, batch, trace and MTI is journalled already",
                    t.rrn
                ))
            }
            e => storage(e),
        }),
        Op::PutAccount(a) => put_account(tx, a).map(drop).map_err(storage),
        Op::MoveFunds {
            account,
            delta_fen,
            pin,
            hold_delta_fen,
            require_available_fen,
            pin_tries_below,
        } => {
            let pin = match pin {
                PinTries::Unchanged => 0,
                PinTries::Failed => 1,
                PinTries::Reset => 2,
            };
            let changed = statements.move_funds(tx).and_then(|s| {
                s.execute(params![
                    account.to_hex(),
                    delta_fen,
                    pin,
                    require_available_fen,
                    pin_tries_below,
                    hold_delta_fen
                ])
            });
            match changed.map_err(storage)? {
                1 => Ok(()),
                _ => Err(JournalError::Stale(Stale::Account {
                    id: *account,
                    funds: require_available_fen.is_some(),
                })),
            }
        }
        Op::SetPinData { account, pin } => tx
            .prepare_cached(
                "UPDATE accounts SET pin_method = ?2, pvv = ?3, pvki = ?4 WHERE pan_hash = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    account.to_hex(),
                    pin.method().as_str(),
                    pin.value(),
                    pin.pvki()
                ])
            })
            .map(drop)
            .map_err(storage),
        Op::PutSession(s) => put_session(tx, s).map(drop).map_err(storage),
        Op::Mark { rrn: original, mark } => {
            let rrn = original.as_str();
            let (changed, what) = match mark {
                Mark::Void => (
                    tx.prepare_cached(
                        "UPDATE transactions SET voided = 1 WHERE rrn = ?1 AND response_code = '00'
                            AND voided = 0 AND reversed = 0 AND refunded_fen = 0
                            AND completed = 0 AND expired = 0",
                    )
                    .and_then(|mut s| s.execute([rrn])),
                    "the sale is voided, reversed or refunded already",
                ),
                Mark::Unvoid => (
                    tx.prepare_cached("UPDATE transactions SET voided = 0 WHERE rrn = ?1 AND voided = 1")
                        .and_then(|mut s| s.execute([rrn])),
                    "the sale is not voided",
                ),
                Mark::Reverse => (
                    tx.prepare_cached(
                        "UPDATE transactions SET reversed = 1 WHERE rrn = ?1 AND reversed = 0",
                    )
                    .and_then(|mut s| s.execute([rrn])),
                    "the transaction is reversed already",
                ),
                Mark::Refund { amount_fen } => (
                    tx.prepare_cached(
                        "UPDATE transactions SET refunded_fen = refunded_fen + ?2 WHERE rrn = ?1
                            AND response_code = '00' AND voided = 0 AND reversed = 0
                            AND refunded_fen + ?2 <= amount_fen",
                    )
                    .and_then(|mut s| s.execute(params![rrn, amount_fen])),
                    "the sale is voided or reversed, or refunds would exceed it",
                ),
                Mark::Complete => (
                    tx.prepare_cached(&format!(
                        "UPDATE transactions SET completed = 1 WHERE rrn = ?1 AND {PREAUTH_HOLDS}"
                    ))
                    .and_then(|mut s| s.execute([rrn])),
                    "the pre-authorisation no longer holds money",
                ),
                Mark::Uncomplete => (
                    tx.prepare_cached(
                        "UPDATE transactions SET completed = 0 WHERE rrn = ?1 AND completed = 1",
                    )
                    .and_then(|mut s| s.execute([rrn])),
                    "the pre-authorisation is not completed",
                ),
                Mark::Expire => (
                    tx.prepare_cached(&format!(
                        "UPDATE transactions SET expired = 1 WHERE rrn = ?1 AND {PREAUTH_HOLDS}"
                    ))
                    .and_then(|mut s| s.execute([rrn])),
                    "the pre-authorisation no longer holds money",
                ),
                Mark::Adjust {
                    from_fen,
                    to_fen,
                    fee_fen,
                    tip_fen,
                } => (
                    tx.prepare_cached(&format!(
                        "UPDATE transactions SET amount_fen = ?3, fee_fen = ?4, tip_fen = ?5
                         WHERE rrn = ?1 AND amount_fen = ?2 AND refunded_fen = 0 AND {SALE_STANDS}"
                    ))
                    .and_then(|mut s| s.execute(params![rrn, from_fen, to_fen, fee_fen, tip_fen])),
                    "the sale no longer stands as adjusted",
                ),
            };
            match changed.map_err(storage)? {
                1 => Ok(()),
                _ => {
                    tracing::debug!(rrn, what, "mark refused");
                    Err(JournalError::Stale(Stale::Original(*original)))
                }
            }
        }
        Op::CloseBatch(b) => tx
            .prepare_cached(
                "INSERT OR REPLACE INTO batches (tid, mid, batch, closed_utc, terminal_debit_fen,
                    terminal_debit_count, terminal_credit_fen, terminal_credit_count, switch_debit_fen,
                    switch_debit_count, switch_credit_fen, switch_credit_count, balanced)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    b.tid.as_str(),
                    b.mid,
                    b.batch.0,
                    b.closed.iso_utc(),
                    b.terminal.debit_fen,
                    b.terminal.debit_count,
                    b.terminal.credit_fen,
                    b.terminal.credit_count,
                    b.switch.debit_fen,
                    b.switch.debit_count,
                    b.switch.credit_fen,
                    b.switch.credit_count,
                    b.balanced
                ])
            })
            .map(drop)
            .map_err(storage),
        Op::PutUpload(u) => tx
            .prepare_cached(
                "INSERT OR REPLACE INTO batch_uploads (tid, batch, stan, amount_fen, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    u.tid.as_str(),
                    u.batch.0,
                    u.item.stan.0,
                    u.item.amount_fen,
                    crate::model::FinancialKind::as_item(u.item.kind)
                ])
            })
            .map(drop)
            .map_err(storage),
        Op::PutSaf(q) => tx
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO saf_queue ({SAF_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(saf_values(q))))
            .map(drop)
            .map_err(storage),
        Op::NextBatch {
            tid,
            session_id,
            batch,
        } => {
            let changed = tx
                .prepare_cached(
                    "UPDATE terminal_sessions SET batch = batch + 1
                     WHERE tid = ?1 AND session_id = ?2 AND batch = ?3",
                )
                .and_then(|mut s| s.execute(params![tid.as_str(), session_id, batch.0]))
                .map_err(storage)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(JournalError::Stale(Stale::Session(*tid)))
            }
        }
        Op::CheckSession {
            tid,
            session_id,
            batch,
        } => {
            let n: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM terminal_sessions WHERE tid = ?1 AND session_id = ?2
                        AND (?3 IS NULL OR batch = ?3)",
                )
                .and_then(|mut s| {
                    s.query_row(params![tid.as_str(), session_id, batch.map(|b| b.0)], |r| {
                        r.get(0)
                    })
                })
                .map_err(storage)?;
            if n == 1 {
                Ok(())
            } else {
                Err(JournalError::Stale(Stale::Session(*tid)))
            }
        }
        // One writer: commits are serial already.
        Op::Lock(_) => Ok(()),
        Op::Assert(c) => {
            let ok = match c {
                Condition::StandInWithin {
                    account,
                    date,
                    amount_fen,
                    limit_fen,
                } => {
                    let used: i64 = tx
                        .prepare_cached(&STAND_IN_USED)
                        .and_then(|mut s| {
                            s.query_row(params![account.to_hex(), date], |r| r.get(0))
                        })
                        .map_err(storage)?;
                    used + amount_fen <= *limit_fen
                }
                Condition::BatchTotals { tid, batch, totals } => {
                    batch_totals(tx, tid, *batch).map_err(storage)? == *totals
                }
            };
            if !ok {
                tracing::debug!(condition = ?c, "condition does not hold");
            }
            if ok {
                Ok(())
            } else {
                Err(JournalError::Stale(Stale::Other))
            }
        }
        Op::Trace {
            tid,
            batch,
            stan,
            first,
        } => {
            let found: String = tx
                .prepare_cached(
                    "INSERT INTO traces (tid, batch, stan, first) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tid, batch, stan) DO UPDATE SET n = n + 1 RETURNING first",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![tid.as_str(), batch.0, stan.0, first.as_str()],
                        |r| r.get(0),
                    )
                })
                .map_err(storage)?;
            match (found == first.as_str(), first) {
                (true, _) => Ok(()),
                (false, TraceFirst::Original) => Err(JournalError::Stale(Stale::ReversedFirst)),
                (false, TraceFirst::Reversal) => Err(JournalError::Stale(Stale::Other)),
            }
        }
        Op::Claim(k) => tx
            .prepare_cached("INSERT INTO claims (tid, batch, stan, mti) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| {
                s.execute(params![
                    k.tid.as_str(),
                    k.batch.0,
                    k.stan.0,
                    format!("{:04}", k.mti)
                ])
            })
            .map(drop)
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    JournalError::Duplicate("the request is claimed already".into())
                }
                e => storage(e),
            }),
        Op::UpdateSaf {
            id,
            state,
            tries,
            updated,
            from,
        } => {
            let changed = tx
                .prepare_cached(
                    "UPDATE saf_queue SET state = ?2, tries = COALESCE(?3, tries), updated_utc = ?4
                     WHERE id = ?1 AND (?5 IS NULL OR state = ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        state.as_str(),
                        tries,
                        updated.iso_utc(),
                        from.map(SafState::as_str)
                    ])
                })
                .map_err(storage)?;
            if changed == 1 || from.is_none() {
                Ok(())
            } else {
                Err(JournalError::Stale(Stale::ArmedTakenOver))
            }
        }
    }
}

/// A SQLite row as the shared column mapping reads it.
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl Columns for SqliteRow<'_, '_> {
    fn value(&self, i: usize) -> Result<Value, ColumnError> {
        use rusqlite::types::ValueRef;
        Ok(
            match self
                .0
                .get_ref(i)
                .map_err(|e| ColumnError::Storage(e.to_string()))?
            {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Real(_) => return Err(ColumnError::Bad("a real number")),
                ValueRef::Text(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(|_| ColumnError::Bad("text"))?
                        .to_owned(),
                ),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            },
        )
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl rusqlite::ToSql for Lent<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Lent::Null => ValueRef::Null,
            Lent::Int(n) => ValueRef::Integer(*n),
            Lent::Text(t) => ValueRef::Text(t.as_bytes()),
            Lent::Made(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// A mapping of the shared columns as rusqlite wants it (a bad row reads as a column of
/// the wrong type, which `rows` skips).
fn mapped<T>(
    f: impl Fn(&SqliteRow<'_, '_>) -> Result<T, ColumnError>,
) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T> {
    move |r| {
        f(&SqliteRow(r)).map_err(|e| match e {
            ColumnError::Bad(what) => bad_row(what),
            ColumnError::Storage(s) => rusqlite::Error::InvalidColumnName(s),
        })
    }
}

/// Rows that cannot be read back (written by hand, say) are skipped with a warning rather
/// than stopping a start-up.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, JournalError> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    let mut out = Vec::new();
    for row in stmt.query_map(params, map).map_err(storage)? {
        match row {
            Ok(v) => out.push(v),
            Err(rusqlite::Error::InvalidColumnType(_, what, _)) => {
                tracing::warn!(column = %what, "journal row that cannot be read: skipped");
            }
            Err(e) => return Err(storage(e)),
        }
    }
    Ok(out)
}

impl Backend for Sqlite {
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError> {
        let group = Group::begin(&self.conn).map_err(storage)?;
        {
            let mut statements = SaleStatements::default();
            for op in ops {
                apply_op(&self.conn, &mut statements, op)?;
            }
        }
        group.commit().map_err(storage)?;
        self.fit_wal();
        Ok(())
    }

    fn snapshot(&mut self, today: i64) -> Result<Snapshot, JournalError> {
        let c = &self.conn;
        let accounts = rows(
            c,
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts"),
            [],
            mapped(|r| account_from(r)),
        )?;
        let sessions = rows(
            c,
            &format!("SELECT {SESSION_COLUMNS} FROM terminal_sessions"),
            [],
            mapped(|r| session_from(r)),
        )?;
        let saf = rows(
            c,
            &format!(
                "SELECT {SAF_COLUMNS} FROM saf_queue WHERE state IN ('armed', 'pending') ORDER BY rowid"
            ),
            [],
            mapped(|r| saf_from(r)),
        )?;
        let stand_in = rows(
            c,
            &format!(
                "SELECT pan_hash, local_date, SUM(amount_fen) FROM transactions
                 WHERE stand_in = 1 AND {SALE_STANDS}
                   AND pan_hash IS NOT NULL AND local_date >= ?1
                 GROUP BY pan_hash, local_date"
            ),
            [Timestamp((today - 1) * 86_400_000).civil(0).date()],
            |r| {
                let hash: String = r.get(0)?;
                let date: String = r.get(1)?;
                Ok((
                    AccountId::from_hex(&hash).ok_or_else(|| bad_row("pan_hash"))?,
                    day_number(&date).ok_or_else(|| bad_row("local_date"))?,
                    r.get(2)?,
                ))
            },
        )?;
        Ok(Snapshot {
            accounts,
            sessions,
            saf,
            stand_in,
        })
    }

    fn find(&mut self, rrn: &Rrn) -> Result<Option<TxnRecord>, JournalError> {
        self.conn
            .prepare_cached(&FIND_RRN)
            .and_then(|mut s| {
                s.query_row([rrn.as_str()], mapped(|r| txn_from(r)))
                    .optional()
            })
            .map_err(storage)
    }

    fn find_trace(
        &mut self,
        tid: &Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        rows(
            &self.conn,
            &FIND_TRACE,
            params![tid.as_str(), batch.0, stan.0],
            mapped(|r| txn_from(r)),
        )
    }

    fn preauths(&mut self, query: &PreauthQuery) -> Result<Vec<TxnRecord>, JournalError> {
        let (sql, values) = preauth_sql(query, '?');
        rows(
            &self.conn,
            &sql,
            rusqlite::params_from_iter(values.iter()),
            mapped(|r| txn_from(r)),
        )
    }

    fn max_stan(&mut self, tid: &Tid, batch: BatchNo) -> Result<Option<Stan>, JournalError> {
        self.conn
            .prepare_cached("SELECT MAX(stan) FROM transactions WHERE tid = ?1 AND batch = ?2")
            .and_then(|mut s| {
                s.query_row(params![tid.as_str(), batch.0], |r| {
                    r.get::<_, Option<u32>>(0)
                })
            })
            .map(|m| m.map(Stan))
            .map_err(storage)
    }

    fn batch_totals(&mut self, tid: &Tid, batch: BatchNo) -> Result<BatchTotals, JournalError> {
        batch_totals(&self.conn, tid, batch).map_err(storage)
    }

    fn session(&mut self, tid: &Tid) -> Result<Option<SessionRecord>, JournalError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE tid = ?1"
            ))
            .and_then(|mut s| {
                s.query_row([tid.as_str()], mapped(|r| session_from(r)))
                    .optional()
            })
            .map_err(storage)
    }

    fn add_card(&mut self, card: &AccountRecord, e: &AdminEntry) -> Result<bool, JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        if put_account(&tx, card).map_err(storage)? == 0 {
            return Ok(false);
        }
        log_admin(
            &tx,
            e,
            &format!(
                "card_type={} expiry={}",
                card.card_type.as_str(),
                card.expiry
            ),
        )?;
        tx.commit().map_err(storage)?;
        Ok(true)
    }

    fn set_terminal_enabled(
        &mut self,
        tid: &Tid,
        enabled: bool,
        e: &AdminEntry,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        if enabled {
            tx.execute(
                "DELETE FROM disabled_terminals WHERE tid = ?1",
                [tid.as_str()],
            )
            .map_err(storage)?;
        } else {
            tx.execute(
                "INSERT OR REPLACE INTO disabled_terminals (tid, since_utc, who) VALUES (?1, ?2, ?3)",
                params![tid.as_str(), e.at.iso_utc(), e.who],
            )
            .map_err(storage)?;
            tx.execute(
                "DELETE FROM terminal_sessions WHERE tid = ?1",
                [tid.as_str()],
            )
            .map_err(storage)?;
        }
        log_admin(&tx, e, "")?;
        tx.commit().map_err(storage)
    }

    fn set_issuer_drained(
        &mut self,
        issuer: &str,
        drained: bool,
        e: &AdminEntry,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        if drained {
            tx.execute(
                "INSERT OR REPLACE INTO drained_issuers (issuer, since_utc, who) VALUES (?1, ?2, ?3)",
                params![issuer, e.at.iso_utc(), e.who],
            )
            .map_err(storage)?;
        } else {
            tx.execute("DELETE FROM drained_issuers WHERE issuer = ?1", [issuer])
                .map_err(storage)?;
        }
        log_admin(&tx, e, "")?;
        tx.commit().map_err(storage)
    }

    fn drained_issuers(&mut self) -> Result<Vec<String>, JournalError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT issuer FROM drained_issuers")
            .map_err(storage)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(storage)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(storage)
    }

    fn disabled_terminals(&mut self) -> Result<Vec<Tid>, JournalError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT tid FROM disabled_terminals")
            .map_err(storage)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(storage)?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(t) = Tid::parse(&r.map_err(storage)?) {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn end_session(&mut self, tid: &Tid, e: &AdminEntry) -> Result<bool, JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        let n = tx
            .execute(
                "DELETE FROM terminal_sessions WHERE tid = ?1",
                [tid.as_str()],
            )
            .map_err(storage)?;
        log_admin(&tx, e, "")?;
        tx.commit().map_err(storage)?;
        Ok(n > 0)
    }

    fn change_card(&mut self, c: &CardChange) -> Result<Option<AccountRecord>, JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        let n = tx
            .execute(
                "UPDATE accounts SET status = COALESCE(?2, status),
                    pin_tries = CASE WHEN ?3 THEN 0 ELSE pin_tries END,
                    credit_limit_fen = COALESCE(?4, credit_limit_fen)
                 WHERE pan_hash = ?1",
                params![
                    c.account.to_hex(),
                    c.status.map(|s| s.as_str()),
                    c.reset_pin_tries,
                    c.credit_limit_fen
                ],
            )
            .map_err(storage)?;
        if n == 0 {
            return Ok(None);
        }
        log_admin(
            &tx,
            &AdminEntry {
                at: c.at,
                who: c.who.clone(),
                action: c.action,
                subject: c.masked_pan.clone(),
            },
            &c.detail(),
        )?;
        let rec = tx
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE pan_hash = ?1"),
                [c.account.to_hex()],
                mapped(|r| account_from(r)),
            )
            .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(Some(rec))
    }

    fn register_node(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Result<(), String>, JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        let live: Option<String> = tx
            .query_row(
                "SELECT holder FROM nodes WHERE node = ?1 AND holder <> ?2 AND heartbeat_utc > ?3",
                params![node, holder, stale_before.iso_utc()],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        if let Some(h) = live {
            return Ok(Err(h));
        }
        tx.execute(
            "INSERT INTO nodes (node, holder, started_utc, heartbeat_utc) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (node) DO UPDATE SET holder = excluded.holder,
                started_utc = excluded.started_utc, heartbeat_utc = excluded.heartbeat_utc",
            params![node, holder, now.iso_utc()],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(Ok(()))
    }

    fn heartbeat(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        self.conn
            .execute(
                "UPDATE nodes SET heartbeat_utc = ?3 WHERE node = ?1 AND holder = ?2",
                params![node, holder, now.iso_utc()],
            )
            .map(|n| n == 1)
            .map_err(storage)
    }

    fn deregister_node(&mut self, node: &str, holder: &str) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        tx.execute(
            "UPDATE nodes SET heartbeat_utc = '' WHERE node = ?1 AND holder = ?2",
            params![node, holder],
        )
        .map_err(storage)?;
        tx.execute("DELETE FROM saf_leases WHERE node = ?1", params![holder])
            .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    fn saf_lease(
        &mut self,
        issuer: &str,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, JournalError> {
        self.conn
            .execute(
                "INSERT INTO saf_leases (issuer, node, until_utc) VALUES (?1, ?2, ?4)
                 ON CONFLICT (issuer) DO UPDATE SET node = excluded.node, until_utc = excluded.until_utc
                 WHERE saf_leases.node = excluded.node OR saf_leases.until_utc < ?3",
                params![issuer, node, now.iso_utc(), until.iso_utc()],
            )
            .map(|n| n == 1)
            .map_err(storage)
    }

    fn saf_queue(
        &mut self,
        issuer: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<SafRecord>, JournalError> {
        rows(
            &self.conn,
            &format!(
                "SELECT {SAF_COLUMNS} FROM saf_queue WHERE issuer = ?1 AND (state = 'pending'
                    OR (state = 'armed' AND (owner IS NULL OR owner NOT IN
                        (SELECT holder FROM nodes WHERE heartbeat_utc >= ?2))))
                 ORDER BY created_utc, rowid"
            ),
            params![issuer, alive_since.iso_utc()],
            mapped(|r| saf_from(r)),
        )
    }

    fn journal_id_read(&mut self) -> Result<Option<String>, JournalError> {
        self.conn
            .query_row("SELECT value FROM journal_meta WHERE key = 'id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(storage)
    }

    fn stand_in_used(&mut self, account: &AccountId, date: &str) -> Result<i64, JournalError> {
        self.conn
            .prepare_cached(&STAND_IN_USED)
            .and_then(|mut s| s.query_row(params![account.to_hex(), date], |r| r.get(0)))
            .map_err(storage)
    }

    fn open_batches(&mut self) -> Result<(i64, i64), JournalError> {
        self.conn
            .prepare_cached(super::OPEN_BATCHES_SQL)
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(storage)
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, JournalError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE pan_hash = ?1"
            ))
            .and_then(|mut s| {
                s.query_row([id.to_hex()], mapped(|r| account_from(r)))
                    .optional()
            })
            .map_err(storage)
    }

    fn batch_items(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<BatchItem>, JournalError> {
        rows(
            &self.conn,
            &format!(
                "SELECT stan, amount_fen, kind FROM transactions
                 WHERE tid = ?1 AND batch = ?2 AND (({SALE_STANDS}) OR ({REFUND_COUNTS}))
                 ORDER BY rowid"
            ),
            params![tid.as_str(), batch.0],
            |r| {
                let kind: String = r.get(2)?;
                Ok(BatchItem {
                    stan: Stan(r.get(0)?),
                    amount_fen: r.get(1)?,
                    kind: if kind == "refund" {
                        FinancialKind::Refund
                    } else {
                        FinancialKind::Sale
                    },
                })
            },
        )
    }

    fn uploads(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<UploadRecord>, JournalError> {
        let tid = *tid;
        rows(
            &self.conn,
            "SELECT stan, amount_fen, kind FROM batch_uploads WHERE tid = ?1 AND batch = ?2
             ORDER BY rowid",
            params![tid.as_str(), batch.0],
            move |r| {
                let kind: String = r.get(2)?;
                Ok(UploadRecord {
                    tid,
                    batch,
                    item: BatchItem {
                        stan: Stan(r.get(0)?),
                        amount_fen: r.get(1)?,
                        kind: if kind == "refund" {
                            FinancialKind::Refund
                        } else {
                            FinancialKind::Sale
                        },
                    },
                })
            },
        )
    }

    fn probe(&mut self) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        tx.execute(
            "INSERT OR REPLACE INTO journal_meta (key, value) VALUES ('probed_utc', ?1)",
            [Timestamp::now().iso_utc()],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    fn reserve(&mut self, name: &str, n: u64) -> Result<u64, JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        let current: Option<i64> = tx
            .query_row("SELECT next FROM sequences WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(storage)?;
        let first = current.unwrap_or(1).max(1) as u64;
        tx.execute(
            "INSERT OR REPLACE INTO sequences (name, next) VALUES (?1, ?2)",
            params![name, (first + n) as i64],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fees::{AppliedFee, Channel, FeeCategory};
    use crate::model::AuthCode;
    use std::sync::Arc;

    #[test]
    fn the_wal_mark_is_a_quarter_of_the_free_space_within_its_bounds() {
        const FRAME: u64 = 1_024 + 24;
        const MIB: u64 = 1 << 20;
        // A roomy disk: the full mark.
        assert_eq!(wal_mark_for(1 << 40, FRAME), WRITER_CHECKPOINT_PAGES);
        assert_eq!(wal_mark_for(300 * MIB, FRAME), 65_536);
        // 100 MiB free: a quarter is 25,014 frames, down to a power of two.
        assert_eq!(wal_mark_for(100 * MIB, FRAME), 16_384);
        assert_eq!(wal_mark_for(20 * MIB, FRAME), 4_096);
        // Nearly full, or full: never below the least.
        assert_eq!(wal_mark_for(6 * MIB, FRAME), WRITER_CHECKPOINT_PAGES_LEAST);
        assert_eq!(wal_mark_for(0, FRAME), WRITER_CHECKPOINT_PAGES_LEAST);
        // An older journal's 4 KiB pages: a quarter of 100 MiB is 6,362 frames.
        assert_eq!(wal_mark_for(100 * MIB, 4_096 + 24), 4_096);
    }

    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A commit's transaction: dropped without committing (a refused request, a panic) it
    /// rolls back; a commit that fails leaves no transaction open; either way the next
    /// group begins as usual.
    #[test]
    fn a_group_rolls_back_unless_committed_and_never_stays_open() {
        let dir = fresh_dir("sqlite-group");
        let j = Sqlite::open(&dir.join("journal.db")).unwrap();
        let c = &j.conn;
        let ids = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT COUNT(*) FROM journal_meta WHERE key LIKE 'group-%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let put = |c: &Connection, k: &str| {
            c.execute(
                "INSERT INTO journal_meta (key, value) VALUES (?1, 'x')",
                [k],
            )
            .unwrap();
        };
        // Committed.
        let g = Group::begin(c).unwrap();
        put(c, "group-1");
        g.commit().unwrap();
        assert_eq!(ids(c), 1);
        assert!(c.is_autocommit());
        // Dropped: rolled back.
        {
            let _g = Group::begin(c).unwrap();
            put(c, "group-2");
            assert!(!c.is_autocommit());
        }
        assert!(c.is_autocommit());
        assert_eq!(ids(c), 1);
        // A panic inside: rolled back as it unwinds.
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = Group::begin(c).unwrap();
            put(c, "group-3");
            panic!("a step failed");
        }));
        assert!(unwound.is_err());
        assert!(c.is_autocommit());
        assert_eq!(ids(c), 1);
        // A commit that fails (here: the transaction was ended under it) is an error, and
        // nothing is left open.
        let g = Group::begin(c).unwrap();
        put(c, "group-4");
        c.execute_batch("ROLLBACK").unwrap();
        assert!(g.commit().is_err());
        assert!(c.is_autocommit());
        assert_eq!(ids(c), 1);
        // And the next group works.
        let g = Group::begin(c).unwrap();
        put(c, "group-5");
        g.commit().unwrap();
        assert_eq!(ids(c), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A sales group runs the same two statements for each sale, held for the commit: every
    /// sale's row and every account's movement is there; a group refused by a duplicate
    /// leaves nothing, and the next group's statements still work.
    #[test]
    fn a_group_of_sales_reuses_its_statements_and_a_refused_group_leaves_nothing() {
        let dir = fresh_dir("sqlite-sale-statements");
        let mut j = Sqlite::open(&dir.join("journal.db")).unwrap();
        let account = |n: u8| AccountRecord {
            account: AccountId([n; 32]),
            masked_pan: "621700*********0011".into(),
            card_type: crate::model::CardType::Debit,
            status: crate::model::CardStatus::Active,
            expiry: 3012,
            pin: super::super::PinCheck::Ibm3624 {
                offset: "1234".into(),
            },
            balance_fen: 10_000,
            credit_limit_fen: 0,
            pin_tries: 0,
            preauth_fen: 0,
        };
        let debit = |n: u8, fen: i64| Op::MoveFunds {
            account: AccountId([n; 32]),
            delta_fen: -fen,
            pin: PinTries::Reset,
            hold_delta_fen: 0,
            require_available_fen: Some(fen),
            pin_tries_below: None,
        };
        let sale = |n: u64| Op::Txn(Arc::new(super::super::records::samples::sale(n)));
        let setup = [
            Op::PutAccount(Box::new(account(1))),
            Op::PutAccount(Box::new(account(2))),
        ];
        j.apply(&setup.iter().collect::<Vec<_>>()).unwrap();
        let group = [
            sale(1),
            debit(1, 100),
            sale(2),
            debit(2, 250),
            sale(3),
            debit(1, 400),
        ];
        j.apply(&group.iter().collect::<Vec<_>>()).unwrap();
        let balance =
            |j: &mut Sqlite, n: u8| j.account(&AccountId([n; 32])).unwrap().unwrap().balance_fen;
        assert_eq!(balance(&mut j, 1), 9_500);
        assert_eq!(balance(&mut j, 2), 9_750);
        for n in 1..=3 {
            assert!(
                j.find(&Rrn::from_sequence(n)).unwrap().is_some(),
                "sale {n}"
            );
        }
        // Trace 2 again, in the middle of a group: the whole group is refused.
        let refused = [sale(4), debit(1, 100), sale(2), debit(2, 100)];
        assert!(matches!(
            j.apply(&refused.iter().collect::<Vec<_>>()),
            Err(JournalError::Duplicate(_))
        ));
        assert!(j.find(&Rrn::from_sequence(4)).unwrap().is_none());
        assert!(j.conn.is_autocommit(), "the refused group is rolled back");
        assert_eq!(balance(&mut j, 1), 9_500);
        // A debit beyond the balance stops its group too.
        let short = [sale(5), debit(2, 20_000)];
        assert!(j.apply(&short.iter().collect::<Vec<_>>()).is_err());
        assert!(j.find(&Rrn::from_sequence(5)).unwrap().is_none());
        assert!(j.conn.is_autocommit());
        // The next groups run as the first did.
        let next = [sale(4), debit(1, 100), sale(5), debit(2, 50)];
        j.apply(&next.iter().collect::<Vec<_>>()).unwrap();
        assert!(j.find(&Rrn::from_sequence(5)).unwrap().is_some());
        assert_eq!(balance(&mut j, 1), 9_400);
        assert_eq!(balance(&mut j, 2), 9_700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_checkpointer_copies_the_wal_back_and_the_writer_starts_it_over() {
        let dir = fresh_dir("sqlite-checkpointer");
        let path = dir.join("journal.db");
        let mut writer = Sqlite::open(&path).unwrap();
        let backstop: i64 = writer
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(backstop, WRITER_CHECKPOINT_PAGES);
        for _ in 0..300 {
            writer.reserve("stan", 1).unwrap();
        }
        let mut checkpointer = Sqlite::open_checkpointer(&path).unwrap();
        let first = checkpointer.checkpoint().unwrap();
        // The writer left every commit in the WAL (its backstop is far off) ...
        assert!(first.wal_frames >= 300, "{first:?}");
        // ... and the checkpoint copied all of it: no reader needed an older snapshot.
        assert_eq!(first.copied_frames, first.wal_frames);
        // The next commit starts the WAL over from its beginning instead of growing it.
        writer.reserve("stan", 1).unwrap();
        let second = checkpointer.checkpoint().unwrap();
        assert!(second.wal_frames < 10, "{second:?}");
        assert_eq!(writer.reserve("stan", 1).unwrap(), 302);
        drop(writer);
        // What the checkpoints copied is in the database: a reader that only sees the
        // database file (the WAL removed) finds the last committed value.
        drop(checkpointer);
        let _ = std::fs::remove_file(dir.join("journal.db-wal"));
        let reader = Connection::open(&path).unwrap();
        let next: i64 = reader
            .query_row("SELECT next FROM sequences WHERE name = 'stan'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(next, 303);
    }

    #[test]
    fn under_continuous_commits_the_wal_stays_bounded() {
        let dir = fresh_dir("sqlite-wal-bounded");
        let path = dir.join("journal.db");
        let wal = dir.join("journal.db-wal");
        let mut writer = Sqlite::open(&path).unwrap();
        // Durability is not what this test is about: commits without fsync, many of them.
        writer
            .conn
            .pragma_update(None, "synchronous", "OFF")
            .unwrap();
        // The mechanism, not the mark: a mark of 4,096 pages is passed several times by
        // 30,000 commits, where the switch's own would need ten times as many. (Not fitted
        // to the disk's free space, which would set its own.)
        const MARK: i64 = 4_096;
        writer.wal_fit = None;
        writer
            .conn
            .pragma_update(None, "wal_autocheckpoint", MARK)
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoints = std::thread::spawn({
            let mut checkpointer = Sqlite::open_checkpointer(&path).unwrap();
            let stop = Arc::clone(&stop);
            move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    checkpointer.checkpoint().unwrap();
                    n += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                n
            }
        });
        // Commits back to back: the checkpointer never finds the WAL wholly copied. None
        // of them may fail for the checkpointer's locks ("database is locked").
        let mut largest = 0;
        for _ in 0..30_000 {
            writer.reserve("stan", 1).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(checkpoints.join().unwrap() > 0);
        // 30,000 commits of a page or two each (60,000 frames and more without a bound).
        // The writer's checkpoint is passive: while the checkpointer holds the checkpoint
        // lock, the writer's attempt gives way and the WAL starts over a little later, so
        // it may pass the writer's limit (frames of 24 + 1,024 bytes) before it does.
        let bound = 2 * MARK as u64 * (24 + 1024);
        assert!(
            largest <= bound,
            "WAL grew to {largest} bytes (bound {bound})"
        );
        assert_eq!(writer.reserve("stan", 1).unwrap(), 30_001);
    }

    #[test]
    fn housekeeping_runs_beside_the_writer_until_the_journal_closes() {
        let dir = fresh_dir("sqlite-housekeeping");
        let path = dir.join("journal.db");
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let journal = crate::journal::Journal::start(
            Sqlite::open(&path).unwrap(),
            Sqlite::open_reader(&path).unwrap(),
            8,
            Box::new(|_, _| {}),
        )
        .with_housekeeping("test-housekeeping", std::time::Duration::from_millis(5), {
            let runs = Arc::clone(&runs);
            move || {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while runs.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the job never ran three times"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        journal.close();
        let after_close = runs.load(std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), after_close);
    }

    #[test]
    fn an_older_journal_gains_the_later_columns_and_keeps_its_rows() {
        let dir = std::env::temp_dir().join(format!("sqlite-fee-columns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE transactions (rrn TEXT PRIMARY KEY, time_utc TEXT NOT NULL,
                    kind TEXT NOT NULL, mti TEXT NOT NULL, tid TEXT NOT NULL, mid TEXT NOT NULL,
                    batch INTEGER NOT NULL, stan INTEGER NOT NULL, operator TEXT, masked_pan TEXT,
                    pan_hash TEXT, card_type TEXT, amount_fen INTEGER NOT NULL DEFAULT 0,
                    fee_fen INTEGER NOT NULL DEFAULT 0, currency TEXT,
                    response_code TEXT NOT NULL, auth_code TEXT, request_digest TEXT NOT NULL);
                 CREATE INDEX transactions_by_card ON transactions (pan_hash);
                 INSERT INTO transactions VALUES ('000000000001', '2026-12-01T02:00:00.000Z',
                    'sale', '0200', '10000001', '898310048990001', 1, 1, NULL, NULL, NULL,
                    'debit', 10000, 50, '156', '00', NULL,
                    '0000000000000000000000000000000000000000000000000000000000000000');",
            )
            .unwrap();
        }
        let mut j = Sqlite::open(&path).unwrap();
        let old = j.find(&Rrn::from_sequence(1)).unwrap().unwrap();
        assert_eq!((old.fee_fen, &old.fee_rule), (50, &None));

        let mut t = old.clone();
        t.rrn = Rrn::from_sequence(2);
        t.stan = Stan(2);
        t.fee_rule = Some(AppliedFee {
            category: FeeCategory::parse("preferential").unwrap(),
            channel: Channel::Debit,
            rate_ppm: 3_800,
            cap_fen: Some(2_000),
        });
        j.apply(&[&Op::Txn(std::sync::Arc::new(t.clone()))])
            .unwrap();
        let read = j.find(&t.rrn).unwrap().unwrap();
        assert_eq!(read.fee_rule, t.fee_rule);
        // Every row was indexed by card; now only the rows looked up by card are.
        assert_eq!(
            indexes(&j.conn),
            [
                "transactions_by_date",
                "transactions_by_key",
                "transactions_preauths_by_card",
                "transactions_stand_in_by_card"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Each connection keeps a page cache of its own: the bundled SQLite is built without
    /// `SQLITE_ENABLE_MEMORY_MANAGEMENT` (`.cargo/config.toml`), which would put every
    /// connection's pages in one shared LRU. Shared, a reader's walk through more rows
    /// than its cache holds (the open batches' gauge, a report) pushes out the writer's
    /// index pages, and each sale committed meanwhile reads them back from the file.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_readers_long_query_leaves_the_writers_pages_in_its_cache() {
        use super::super::records::samples::sale;
        let built_with: bool = Connection::open_in_memory()
            .unwrap()
            .query_row(
                "SELECT sqlite_compileoption_used('ENABLE_MEMORY_MANAGEMENT')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!built_with, "SQLite is built with a shared page cache");

        let dir = fresh_dir("sqlite-own-caches");
        let path = dir.join("journal.db");
        let mut writer = Sqlite::open(&path).unwrap();
        // ~3,000 pages of rows: more than a connection's cache (SQLite's default, 2 MiB).
        let rows: Vec<Op> = (1..=12_000).map(|n| Op::Txn(Arc::new(sale(n)))).collect();
        writer.apply(&rows.iter().collect::<Vec<_>>()).unwrap();
        let reader = Sqlite::open_reader(&path).unwrap();
        // The read system calls of this thread so far (pread of the journal's files).
        let reads = || -> u64 {
            let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
            io.lines()
                .find_map(|l| l.strip_prefix("syscr: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap()
        };
        // The reads of 20 sales committed alone, then of 20 committed each after the
        // reader has walked the rows.
        let mut read = [0, 0];
        for n in 12_001..=12_040 {
            let walks = n > 12_020;
            if walks {
                let walked: i64 = reader
                    .conn
                    .query_row(
                        "SELECT COUNT(*) FROM transactions WHERE LENGTH(request_digest) = 64",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(walked, i64::try_from(n).unwrap() - 1);
            }
            let before = reads();
            writer.apply(&[&Op::Txn(Arc::new(sale(n)))]).unwrap();
            read[usize::from(walks)] += reads() - before;
        }
        // Shared, the walks made the writer read its pages back: 330 reads against 80
        // in one run, where its own cache reads as many either way.
        let [alone, after_walks] = read;
        assert!(
            after_walks <= alone + 20,
            "the writer read {after_walks} times for 20 sales after the reader's walks, {alone} without"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The named indexes on `transactions` (SQLite's own for the key left out).
    fn indexes(conn: &Connection) -> Vec<String> {
        conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions'
               AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// An approved on-us debit sale, with its card and auth code.
    fn card_sale() -> TxnRecord {
        let mut t = super::super::records::samples::sale(1);
        t.card = Some(super::super::records::CardRef {
            masked_pan: "621700*********0011".into(),
            account: AccountId([7; 32]),
            channel: Channel::Debit,
        });
        t.auth_code = Some(AuthCode::digits(123_456));
        t
    }

    /// What SQLite's plan for `sql` says it does, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        // Unbound parameters are NULL: the plan is the same.
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            steps.push(r.get::<_, String>(3).unwrap());
        }
        steps.join("; ")
    }

    #[test]
    fn lookups_by_card_search_their_own_indexes_which_a_sale_is_not_in() {
        let dir = fresh_dir("sqlite-card-indexes");
        let j = Sqlite::open(&dir.join("journal.db")).unwrap();
        let stand_in = plan(&j.conn, &STAND_IN_USED);
        assert!(
            stand_in.contains(
                "USING INDEX transactions_stand_in_by_card (pan_hash=? AND local_date=?)"
            ),
            "{stand_in}"
        );
        let (completion, _) = preauth_sql(
            &PreauthQuery::Card {
                account: AccountId([7; 32]),
                auth_code: AuthCode::digits(123_456),
            },
            '?',
        );
        let completion = plan(&j.conn, &completion);
        assert!(
            completion
                .contains("USING INDEX transactions_preauths_by_card (pan_hash=? AND auth_code=?)"),
            "{completion}"
        );
        // The day's report and settlement windows still search by day.
        let by_day = plan(
            &j.conn,
            "SELECT rrn FROM transactions WHERE local_date = ?1",
        );
        assert!(
            by_day.contains("USING INDEX transactions_by_date"),
            "{by_day}"
        );
        // A sale is in neither partial index: counting each through its index finds none.
        let mut j = j;
        j.apply(&[&Op::Txn(std::sync::Arc::new(card_sale()))])
            .unwrap();
        for (index, predicate) in [
            ("transactions_stand_in_by_card", "stand_in = 1"),
            ("transactions_preauths_by_card", "kind = 'pre-auth'"),
        ] {
            let n: i64 = j
                .conn
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM transactions INDEXED BY {index} WHERE {predicate}"
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "{index}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
