//! The embedded SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk when it
//! returns), one writer.
//!
//! Operators can read it while the switch runs: `sqlite3 switch-data/journal.db`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{AccountRecord, Backend, JournalError, Op, SessionRecord, Snapshot, TxnRecord};

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
    request_digest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_terminal ON transactions (tid, batch, stan, mti);
CREATE INDEX IF NOT EXISTS transactions_by_card ON transactions (pan_hash);
CREATE TABLE IF NOT EXISTS accounts (
    pan_hash         TEXT PRIMARY KEY,
    masked_pan       TEXT NOT NULL,
    card_type        TEXT NOT NULL,
    status           TEXT NOT NULL,
    expiry           TEXT NOT NULL,
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
        Ok(Self { conn })
    }
}

fn put_txn(conn: &Connection, t: &TxnRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO transactions (rrn, time_utc, kind, mti, tid, mid, batch, stan, operator, masked_pan,
            pan_hash, card_type, amount_fen, fee_fen, currency, response_code, auth_code, request_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
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
        t.request_digest
    ])
}

fn put_account(conn: &Connection, a: &AccountRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO accounts (pan_hash, masked_pan, card_type, status, expiry, pvv, pvki,
            balance_fen, credit_limit_fen, pin_tries) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        a.pan_hash,
        a.masked_pan,
        a.card_type,
        a.status,
        a.expiry,
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
                    .prepare_cached("UPDATE accounts SET balance_fen = balance_fen + ?2, pin_tries = ?3 WHERE pan_hash = ?1")
                    .and_then(|mut s| s.execute(params![pan_hash, balance_delta_fen, pin_tries])),
                Op::PutSession(s) => put_session(&tx, s),
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
                        credit_limit_fen, pin_tries FROM accounts",
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
            .prepare(
                "SELECT t.rrn, t.time_utc, t.kind, t.mti, t.tid, t.mid, t.batch, t.stan, t.operator,
                        t.masked_pan, t.pan_hash, t.card_type, t.amount_fen, t.fee_fen, t.currency,
                        t.response_code, t.auth_code, t.request_digest
                 FROM transactions t JOIN terminal_sessions s ON s.tid = t.tid AND s.batch = t.batch",
            )
            .and_then(|mut s| s.query_map([], txn_from_row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(storage)?;
        Ok(Snapshot {
            accounts,
            sessions,
            open_batch_txns,
        })
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
