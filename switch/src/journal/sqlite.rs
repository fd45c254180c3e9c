//! The embedded SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk when it
//! returns), one writer connection and one reader connection.
//!
//! Operators can read it while the switch runs: `sqlite3 switch-data/journal.db`. This is
//! the only place where the journal's records become text and back.
//!
//! ```text
//!  Op::MoveFunds { require_available_fen: Some(a) }
//!      UPDATE accounts SET balance_fen = balance_fen + Δ … WHERE pan_hash = ? AND available >= a
//!      no row changed ─▶ Conflict: the whole commit is rolled back
//!  Op::Mark { Void }
//!      UPDATE transactions SET voided = 1 WHERE rrn = ? AND <approved, not voided, reversed or refunded>
//! ```

use std::path::Path;

use codec::Mti;
use hsm_sim::SealedKey;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AccountRecord, Backend, BatchItem, BatchTotals, JournalError, Mark, Op, PinCheck, PinTries,
    SafRecord, SessionRecord, Snapshot, TxnRecord, UploadRecord, UpstreamRef,
};
use crate::clock::{Timestamp, day_number};
use crate::fees::Channel;
use crate::journal::CardRef;
use crate::model::{
    AccountId, AuthCode, BatchNo, CardStatus, CardType, FinancialKind, ResponseCode, Rrn, SafKind,
    SafState, Stan, Tid, TxnKind,
};

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
    balance_fen    INTEGER
);
CREATE INDEX IF NOT EXISTS transactions_by_card ON transactions (pan_hash);
CREATE INDEX IF NOT EXISTS transactions_by_date ON transactions (local_date);
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
    pin_tries        INTEGER NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS journal_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    name TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);
";

/// The one definition, in SQL, of a sale that still stands: approved, not voided, not
/// reversed. (Rust's is `Original::stands`.) Settlement, reports and stand-in limits use it.
pub const SALE_STANDS: &str =
    "kind IN ('sale','qr-sale') AND response_code = '00' AND voided = 0 AND reversed = 0";

/// A refund that counts: approved and not reversed.
pub const REFUND_COUNTS: &str = "kind = 'refund' AND response_code = '00' AND reversed = 0";

/// The SQLite backend.
pub struct Sqlite {
    conn: Connection,
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
        let conn = Connection::open(path).map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        Self::prepare(conn)
    }

    /// A journal in memory (tests and simulation): the same schema, gone with the process.
    pub fn in_memory() -> Result<Self, JournalError> {
        Self::prepare(Connection::open_in_memory().map_err(storage)?)
    }

    fn prepare(conn: Connection) -> Result<Self, JournalError> {
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        migrate(&conn).map_err(storage)?;
        Ok(Self { conn })
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
        Ok(Self { conn })
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
    ] {
        if !have.iter().any(|h| h == col) {
            conn.execute_batch(&format!("ALTER TABLE transactions ADD COLUMN {col} {decl}"))?;
        }
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

/// The transaction columns, in `txn_from_row` order.
const TXN_COLUMNS: &str =
    "rrn, time_utc, kind, mti, tid, mid, batch, stan, operator, masked_pan, pan_hash,
    card_type, amount_fen, fee_fen, currency, response_code, auth_code, request_digest, local_date,
    original_rrn, voided, reversed, refunded_fen, issuer, upstream, stand_in, reply_48, balance_fen";

/// Statements built once from the column list.
static INSERT_TXN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO transactions ({TXN_COLUMNS}) VALUES
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
          ?24, ?25, ?26, ?27, ?28)"
    )
});
static FIND_RRN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {TXN_COLUMNS} FROM transactions WHERE rrn = ?1"));
static FIND_TRACE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TXN_COLUMNS} FROM transactions WHERE tid = ?1 AND batch = ?2 AND stan = ?3 ORDER BY rowid"
    )
});

fn put_txn(conn: &Connection, t: &TxnRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(&INSERT_TXN)?.execute(params![
        t.rrn.as_str(),
        t.time.iso_utc(),
        TxnKind::label(t.kind),
        t.mti.as_str(),
        t.tid.as_str(),
        t.mid,
        t.batch.0,
        t.stan.0,
        t.operator,
        t.card.as_ref().map(|c| c.masked_pan.as_str()),
        t.card.as_ref().map(|c| c.account.to_hex()),
        t.card.as_ref().map(|c| c.channel.as_str()),
        t.amount_fen,
        t.fee_fen,
        t.currency,
        t.response_code.as_str(),
        t.auth_code.as_ref().map(AuthCode::as_str),
        hex::encode(t.request_digest),
        t.time.cst_date(),
        t.original_rrn.as_ref().map(Rrn::as_str),
        t.voided,
        t.reversed,
        t.refunded_fen,
        t.upstream.as_ref().map(|u| u.issuer.as_str()),
        t.upstream.as_ref().map(UpstreamRef::to_column),
        t.stand_in,
        t.reply_48,
        t.balance_fen,
    ])
}

fn txn_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TxnRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let rrn = Rrn::parse(&text(0)?).ok_or_else(|| bad_row("rrn"))?;
    let time = Timestamp::parse_iso(&text(1)?).ok_or_else(|| bad_row("time_utc"))?;
    let mti = Mti::parse(&text(3)?).ok_or_else(|| bad_row("mti"))?;
    let tid = Tid::parse(&text(4)?).ok_or_else(|| bad_row("tid"))?;
    let masked: Option<String> = r.get(9)?;
    let hash: Option<String> = r.get(10)?;
    let card_type: Option<String> = r.get(11)?;
    let card = match (masked, hash.as_deref().and_then(AccountId::from_hex)) {
        (Some(masked_pan), Some(account)) => Some(CardRef {
            masked_pan,
            account,
            channel: card_type
                .as_deref()
                .and_then(Channel::parse)
                .unwrap_or(Channel::Debit),
        }),
        _ => None,
    };
    let digest: String = r.get(17)?;
    let mut request_digest = [0u8; 32];
    hex::decode_to_slice(&digest, &mut request_digest).map_err(|_| bad_row("request_digest"))?;
    let issuer: Option<String> = r.get(23)?;
    let upstream: Option<String> = r.get(24)?;
    let original: Option<String> = r.get(19)?;
    let auth: Option<String> = r.get(16)?;
    Ok(TxnRecord {
        rrn,
        time,
        kind: TxnKind::parse(&text(2)?),
        mti,
        tid,
        mid: r.get(5)?,
        batch: BatchNo(r.get(6)?),
        stan: Stan(r.get(7)?),
        operator: r.get(8)?,
        card,
        amount_fen: r.get(12)?,
        fee_fen: r.get(13)?,
        currency: r.get(14)?,
        // Codes the switch wrote are two characters; anything else reads as a malfunction,
        // never as an approval.
        response_code: ResponseCode::parse(&text(15)?).unwrap_or(ResponseCode::SYSTEM_ERROR),
        auth_code: auth.as_deref().and_then(AuthCode::parse),
        request_digest,
        original_rrn: original.as_deref().and_then(Rrn::parse),
        voided: r.get(20)?,
        reversed: r.get(21)?,
        refunded_fen: r.get(22)?,
        upstream: issuer
            .zip(upstream)
            .and_then(|(i, u)| UpstreamRef::from_columns(&i, &u)),
        stand_in: r.get(25)?,
        reply_48: r.get(26)?,
        balance_fen: r.get(27)?,
    })
}

fn put_account(conn: &Connection, a: &AccountRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO accounts (pan_hash, masked_pan, card_type, status, expiry, pin_method,
            pvv, pvki, balance_fen, credit_limit_fen, pin_tries)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        a.account.to_hex(),
        a.masked_pan,
        a.card_type.as_str(),
        a.status.as_str(),
        format!("{:04}", a.expiry),
        a.pin.method().as_str(),
        a.pin.value(),
        a.pin.pvki(),
        a.balance_fen,
        a.credit_limit_fen,
        a.pin_tries
    ])
}

fn put_session(conn: &Connection, s: &SessionRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO terminal_sessions (tid, mid, tpk, tak, batch, operator, signed_on_utc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        s.tid.as_str(),
        s.mid,
        s.tpk.to_hex(),
        s.tak.to_hex(),
        s.batch.0,
        s.operator,
        s.signed_on.iso_utc()
    ])
}

/// Runs a conditional change: exactly one row must change, else the condition did not
/// hold.
fn conditional(changed: rusqlite::Result<usize>, what: &str) -> Result<(), JournalError> {
    match changed.map_err(storage)? {
        1 => Ok(()),
        _ => Err(JournalError::Conflict(what.to_owned())),
    }
}

fn apply_op(tx: &Connection, op: &Op) -> Result<(), JournalError> {
    match op {
        Op::Txn(t) => put_txn(tx, t).map(drop).map_err(|e| match e {
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
            require_available_fen,
        } => {
            let pin = match pin {
                PinTries::Unchanged => 0,
                PinTries::Failed => 1,
                PinTries::Reset => 2,
            };
            let changed = tx
                .prepare_cached(
                    "UPDATE accounts SET balance_fen = balance_fen + ?2,
                        pin_tries = CASE ?3 WHEN 1 THEN pin_tries + 1 WHEN 2 THEN 0 ELSE pin_tries END
                     WHERE pan_hash = ?1 AND (?4 IS NULL OR
                        (CASE card_type WHEN 'credit' THEN credit_limit_fen - balance_fen ELSE balance_fen END) >= ?4)",
                )
                .and_then(|mut s| {
                    s.execute(params![account.to_hex(), delta_fen, pin, require_available_fen])
                });
            match conditional(changed, "the account a move is for is not there") {
                Err(JournalError::Conflict(_)) if require_available_fen.is_some() => {
                    Err(JournalError::Funds)
                }
                other => other,
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
        Op::Mark { rrn, mark } => {
            let rrn = rrn.as_str();
            let (changed, what) = match mark {
                Mark::Void => (
                    tx.prepare_cached(
                        "UPDATE transactions SET voided = 1 WHERE rrn = ?1 AND response_code = '00'
                            AND voided = 0 AND reversed = 0 AND refunded_fen = 0",
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
            };
            conditional(changed, what)
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
                    item_kind(u.item.kind)
                ])
            })
            .map(drop)
            .map_err(storage),
        Op::PutSaf(q) => tx
            .prepare_cached(
                "INSERT OR IGNORE INTO saf_queue (id, issuer, kind, mti, original_rrn, created_utc, state,
                    tries, updated_utc, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    q.id,
                    q.issuer,
                    q.kind.as_str(),
                    q.mti.as_str(),
                    q.original_rrn.as_ref().map(Rrn::as_str),
                    q.created.iso_utc(),
                    q.state.as_str(),
                    q.tries,
                    q.updated.iso_utc(),
                    q.sealed
                ])
            })
            .map(drop)
            .map_err(storage),
        Op::UpdateSaf {
            id,
            state,
            tries,
            updated,
        } => tx
            .prepare_cached(
                "UPDATE saf_queue SET state = ?2, tries = COALESCE(?3, tries), updated_utc = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, state.as_str(), tries, updated.iso_utc()]))
            .map(drop)
            .map_err(storage),
    }
}

fn item_kind(k: FinancialKind) -> &'static str {
    match k {
        FinancialKind::Refund => "refund",
        FinancialKind::Sale | FinancialKind::Void => "sale",
    }
}

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    let hash: String = r.get(0)?;
    let card_type: String = r.get(2)?;
    let status: String = r.get(3)?;
    let expiry: String = r.get(4)?;
    let method: String = r.get(10)?;
    let pvv: String = r.get(5)?;
    Ok(AccountRecord {
        account: AccountId::from_hex(&hash).ok_or_else(|| bad_row("pan_hash"))?,
        masked_pan: r.get(1)?,
        card_type: CardType::parse(&card_type),
        // A status the switch does not know is treated as blocked.
        status: CardStatus::parse(&status).unwrap_or(CardStatus::Blocked),
        expiry: expiry.parse().unwrap_or(0),
        pin: PinCheck::from_columns(&method, &pvv, r.get(6)?),
        balance_fen: r.get(7)?,
        credit_limit_fen: r.get(8)?,
        pin_tries: r.get(9)?,
    })
}

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(SessionRecord {
        tid: Tid::parse(&text(0)?).ok_or_else(|| bad_row("tid"))?,
        mid: r.get(1)?,
        tpk: SealedKey::from_hex(&text(2)?).map_err(|_| bad_row("tpk"))?,
        tak: SealedKey::from_hex(&text(3)?).map_err(|_| bad_row("tak"))?,
        batch: BatchNo(r.get(4)?),
        operator: r.get(5)?,
        signed_on: Timestamp::parse_iso(&text(6)?).unwrap_or(Timestamp(0)),
    })
}

fn saf_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SafRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let original: Option<String> = r.get(4)?;
    Ok(SafRecord {
        id: r.get(0)?,
        issuer: r.get(1)?,
        kind: SafKind::parse(&text(2)?).unwrap_or(SafKind::Reversal),
        mti: Mti::parse(&text(3)?).ok_or_else(|| bad_row("mti"))?,
        original_rrn: original.as_deref().and_then(Rrn::parse),
        created: Timestamp::parse_iso(&text(5)?).unwrap_or(Timestamp(0)),
        state: SafState::parse(&text(6)?).unwrap_or(SafState::Pending),
        tries: r.get(7)?,
        updated: Timestamp::parse_iso(&text(8)?).unwrap_or(Timestamp(0)),
        sealed: r.get(9)?,
    })
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
        let tx = self.conn.transaction().map_err(storage)?;
        for op in ops {
            apply_op(&tx, op)?;
        }
        tx.commit().map_err(storage)
    }

    fn snapshot(&mut self, today: i64) -> Result<Snapshot, JournalError> {
        let c = &self.conn;
        let accounts = rows(
            c,
            "SELECT pan_hash, masked_pan, card_type, status, expiry, pvv, pvki, balance_fen,
                    credit_limit_fen, pin_tries, pin_method FROM accounts",
            [],
            account_from_row,
        )?;
        let sessions = rows(
            c,
            "SELECT tid, mid, tpk, tak, batch, operator, signed_on_utc FROM terminal_sessions",
            [],
            session_from_row,
        )?;
        let saf = rows(
            c,
            "SELECT id, issuer, kind, mti, original_rrn, created_utc, state, tries, updated_utc, message
             FROM saf_queue WHERE state IN ('armed', 'pending') ORDER BY rowid",
            [],
            saf_from_row,
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
            .and_then(|mut s| s.query_row([rrn.as_str()], txn_from_row).optional())
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
            txn_from_row,
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
        self.conn
            .prepare_cached(&format!(
                "SELECT
                    COALESCE(SUM(CASE WHEN {SALE_STANDS} THEN amount_fen END), 0),
                    COUNT(CASE WHEN {SALE_STANDS} THEN 1 END),
                    COALESCE(SUM(CASE WHEN {REFUND_COUNTS} THEN amount_fen END), 0),
                    COUNT(CASE WHEN {REFUND_COUNTS} THEN 1 END)
                 FROM transactions WHERE tid = ?1 AND batch = ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![tid.as_str(), batch.0], |r| {
                    Ok(BatchTotals {
                        debit_fen: r.get(0)?,
                        debit_count: r.get(1)?,
                        credit_fen: r.get(2)?,
                        credit_count: r.get(3)?,
                    })
                })
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
