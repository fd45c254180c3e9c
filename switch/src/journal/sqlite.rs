//! The embedded SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk when it
//! returns), one writer.
//!
//! Operators can read it while the switch runs: `sqlite3 switch-data/journal.db`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AccountRecord, Backend, JournalError, Op, SafRecord, SessionRecord, Snapshot, TxnRecord,
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
    reply_48       TEXT
);
CREATE INDEX IF NOT EXISTS transactions_by_terminal ON transactions (tid, batch, stan, mti);
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

/// The SQLite backend.
pub struct Sqlite {
    conn: Connection,
}

fn storage(e: rusqlite::Error) -> JournalError {
    JournalError::Storage(e.to_string())
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, its directory included.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| JournalError::Storage(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        migrate(&conn).map_err(storage)?;
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

/// Columns added after the first schema: added in place to an older journal.
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
    Ok(())
}

/// The transaction columns, in `TxnRecord` order.
const TXN_COLUMNS: &str =
    "rrn, time_utc, kind, mti, tid, mid, batch, stan, operator, masked_pan, pan_hash,
    card_type, amount_fen, fee_fen, currency, response_code, auth_code, request_digest, local_date,
    original_rrn, voided, reversed, refunded_fen, issuer, upstream, stand_in, reply_48";

fn put_txn(conn: &Connection, t: &TxnRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT INTO transactions ({TXN_COLUMNS}) VALUES
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
          ?24, ?25, ?26, ?27)"
    ))?
    .execute(params![
        t.rrn,
        t.time_utc,
        t.kind,
        t.mti,
        t.tid,
        t.mid,
        t.batch,
        t.stan,
        t.operator,
        t.masked_pan,
        t.pan_hash,
        t.card_type,
        t.amount_fen,
        t.fee_fen,
        t.currency,
        t.response_code,
        t.auth_code,
        t.request_digest,
        t.local_date,
        t.original_rrn,
        t.voided,
        t.reversed,
        t.refunded_fen,
        t.issuer,
        t.upstream,
        t.stand_in,
        t.reply_48
    ])
}

fn put_account(conn: &Connection, a: &AccountRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO accounts (pan_hash, masked_pan, card_type, status, expiry, pin_method,
            pvv, pvki, balance_fen, credit_limit_fen, pin_tries)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        a.pan_hash,
        a.masked_pan,
        a.card_type,
        a.status,
        a.expiry,
        a.pin_method,
        a.pvv,
        a.pvki,
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
    .execute(params![s.tid, s.mid, s.tpk, s.tak, s.batch, s.operator, s.signed_on_utc])
}

fn txn_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TxnRecord> {
    Ok(TxnRecord {
        rrn: r.get(0)?,
        time_utc: r.get(1)?,
        kind: r.get(2)?,
        mti: r.get(3)?,
        tid: r.get(4)?,
        mid: r.get(5)?,
        batch: r.get(6)?,
        stan: r.get(7)?,
        operator: r.get(8)?,
        masked_pan: r.get(9)?,
        pan_hash: r.get(10)?,
        card_type: r.get(11)?,
        amount_fen: r.get(12)?,
        fee_fen: r.get(13)?,
        currency: r.get(14)?,
        response_code: r.get(15)?,
        auth_code: r.get(16)?,
        request_digest: r.get(17)?,
        local_date: r.get(18)?,
        original_rrn: r.get(19)?,
        voided: r.get(20)?,
        reversed: r.get(21)?,
        refunded_fen: r.get(22)?,
        issuer: r.get(23)?,
        upstream: r.get(24)?,
        stand_in: r.get(25)?,
        reply_48: r.get(26)?,
    })
}

impl Backend for Sqlite {
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        for op in ops {
            match op {
                Op::Txn(t) => put_txn(&tx, t),
                Op::PutAccount(a) => put_account(&tx, a),
                Op::UpdateAccount {
                    pan_hash,
                    balance_delta_fen,
                    pin_tries,
                } => tx
                    .prepare_cached("UPDATE accounts SET balance_fen = balance_fen + ?2, pin_tries = COALESCE(?3, pin_tries) WHERE pan_hash = ?1")
                    .and_then(|mut s| s.execute(params![pan_hash, balance_delta_fen, pin_tries])),
                Op::SetPinData {
                    pan_hash,
                    pin_method,
                    pvv,
                    pvki,
                } => tx
                    .prepare_cached(
                        "UPDATE accounts SET pin_method = ?2, pvv = ?3, pvki = ?4 WHERE pan_hash = ?1",
                    )
                    .and_then(|mut s| s.execute(params![pan_hash, pin_method, pvv, pvki])),
                Op::PutSession(s) => put_session(&tx, s),
                Op::MarkTxn {
                    rrn,
                    voided,
                    reversed,
                    refunded_delta_fen,
                } => tx
                    .prepare_cached(
                        "UPDATE transactions SET voided = COALESCE(?2, voided), reversed = COALESCE(?3, reversed),
                            refunded_fen = refunded_fen + ?4 WHERE rrn = ?1",
                    )
                    .and_then(|mut s| s.execute(params![rrn, voided, reversed, refunded_delta_fen])),
                Op::CloseBatch(b) => tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO batches (tid, mid, batch, closed_utc, terminal_debit_fen,
                            terminal_debit_count, terminal_credit_fen, terminal_credit_count, switch_debit_fen,
                            switch_debit_count, switch_credit_fen, switch_credit_count, balanced)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            b.tid,
                            b.mid,
                            b.batch,
                            b.closed_utc,
                            b.terminal_debit_fen,
                            b.terminal_debit_count,
                            b.terminal_credit_fen,
                            b.terminal_credit_count,
                            b.switch_debit_fen,
                            b.switch_debit_count,
                            b.switch_credit_fen,
                            b.switch_credit_count,
                            b.balanced
                        ])
                    }),
                Op::PutUpload(u) => tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO batch_uploads (tid, batch, stan, amount_fen, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut s| s.execute(params![u.tid, u.batch, u.stan, u.amount_fen, u.kind])),
                Op::PutSaf(q) => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO saf_queue (id, issuer, kind, mti, original_rrn, created_utc, state,
                            tries, updated_utc, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            q.id,
                            q.issuer,
                            q.kind,
                            q.mti,
                            q.original_rrn,
                            q.created_utc,
                            q.state,
                            q.tries,
                            q.updated_utc,
                            q.sealed
                        ])
                    }),
                Op::UpdateSaf {
                    id,
                    state,
                    tries,
                    updated_utc,
                } => tx
                    .prepare_cached(
                        "UPDATE saf_queue SET state = ?2, tries = COALESCE(?3, tries), updated_utc = ?4 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![id, state, tries, updated_utc])),
            }
            .map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    fn snapshot(&mut self) -> Result<Snapshot, JournalError> {
        let c = &self.conn;
        let accounts = c
            .prepare(
                "SELECT pan_hash, masked_pan, card_type, status, expiry, pvv, pvki, balance_fen,
                        credit_limit_fen, pin_tries, pin_method FROM accounts",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(AccountRecord {
                        pan_hash: r.get(0)?,
                        masked_pan: r.get(1)?,
                        card_type: r.get(2)?,
                        status: r.get(3)?,
                        expiry: r.get(4)?,
                        pvv: r.get(5)?,
                        pvki: r.get(6)?,
                        balance_fen: r.get(7)?,
                        credit_limit_fen: r.get(8)?,
                        pin_tries: r.get(9)?,
                        pin_method: r.get(10)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage)?;
        let sessions = c
            .prepare(
                "SELECT tid, mid, tpk, tak, batch, operator, signed_on_utc FROM terminal_sessions",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(SessionRecord {
                        tid: r.get(0)?,
                        mid: r.get(1)?,
                        tpk: r.get(2)?,
                        tak: r.get(3)?,
                        batch: r.get(4)?,
                        operator: r.get(5)?,
                        signed_on_utc: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage)?;
        let open_batch_txns = c
            .prepare(&format!(
                "SELECT {} FROM transactions t JOIN terminal_sessions s ON s.tid = t.tid
                   AND (s.batch = t.batch OR (s.batch = t.batch + 1 AND t.mti IN ('0500', '0320')))
                 ORDER BY t.rowid",
                TXN_COLUMNS
                    .split(',')
                    .map(|c| format!("t.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .and_then(|mut s| {
                s.query_map([], txn_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage)?;
        let saf = c
            .prepare(
                "SELECT id, issuer, kind, mti, original_rrn, created_utc, state, tries, updated_utc, message
                 FROM saf_queue WHERE state IN ('armed', 'pending') ORDER BY rowid",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(SafRecord {
                        id: r.get(0)?,
                        issuer: r.get(1)?,
                        kind: r.get(2)?,
                        mti: r.get(3)?,
                        original_rrn: r.get(4)?,
                        created_utc: r.get(5)?,
                        state: r.get(6)?,
                        tries: r.get(7)?,
                        updated_utc: r.get(8)?,
                        sealed: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage)?;
        let stand_in = c
            .prepare(
                "SELECT pan_hash, local_date, SUM(amount_fen) FROM transactions
                 WHERE stand_in = 1 AND response_code = '00' AND reversed = 0 AND voided = 0
                   AND pan_hash IS NOT NULL AND local_date >= date('now', '+8 hours', '-1 day')
                 GROUP BY pan_hash, local_date",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage)?;
        Ok(Snapshot {
            accounts,
            sessions,
            open_batch_txns,
            saf,
            stand_in,
        })
    }

    fn find(&mut self, rrn: &str) -> Result<Option<TxnRecord>, JournalError> {
        self.conn
            .query_row(
                &format!("SELECT {TXN_COLUMNS} FROM transactions WHERE rrn = ?1"),
                [rrn],
                txn_from_row,
            )
            .optional()
            .map_err(storage)
    }

    fn probe(&mut self) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(storage)?;
        tx.execute(
            "INSERT OR REPLACE INTO journal_meta (key, value) VALUES ('probed_utc', ?1)",
            [crate::clock::Instant::now().iso_utc()],
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
