//! The PostgreSQL journal: several switch nodes share one database, which holds the
//! authoritative state (balances, sessions, batches, duplicate keys, the store-and-forward
//! queue and its leases). SQL stays within what CockroachDB and YugabyteDB accept, except
//! the migration lock (`pg_advisory_xact_lock`; on those, run `switch journal migrate` from
//! one place before starting nodes).
//!
//! ```text
//!  writer thread ── one connection ── group commit: BEGIN
//!      ├─ locks, in one order for every node: lock buckets, sessions, accounts (FOR UPDATE)
//!      ├─ every request's statements, pipelined (one round trip for the group)
//!      ├─ each result checked: a condition that does not hold ─▶ ROLLBACK, Stale
//!      └─ COMMIT (serialization failure or deadlock: the whole group again)
//!  reader threads ── a connection each ── queries, one at a time each
//! ```
//!
//! A connection that breaks is made again at the next call (the call in between fails,
//! and the pipeline answers `96` while `/readyz` says why).

use std::collections::HashMap;

use bytes::BytesMut;
use futures_util::future::join_all;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::columns::{
    ACCOUNT_COLUMNS, ColumnError, Columns, SAF_COLUMNS, SESSION_COLUMNS, TXN_COLUMN_COUNT,
    TXN_COLUMNS, Value, account_from, account_values, saf_from, saf_values, session_from,
    session_values, txn_from, txn_values,
};
use super::{
    AccountRecord, AdminEntry, Backend, BatchItem, BatchTotals, CardChange, Condition,
    JournalError, Mark, Op, PinTries, PreauthQuery, SafChanges, SafRecord, SessionRecord, Snapshot,
    Stale, TraceFirst, TxnRecord, UploadRecord,
};
use crate::clock::{Timestamp, day_number};
use crate::model::{AccountId, BatchNo, FinancialKind, Rrn, SafState, Stan, Tid};

/// The schema's versions, applied in order, each once (`schema_migrations`).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "
CREATE TABLE IF NOT EXISTS transactions (
    rrn            TEXT PRIMARY KEY,
    seq            BIGSERIAL,
    time_utc       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    mti            TEXT NOT NULL,
    tid            TEXT NOT NULL,
    mid            TEXT NOT NULL,
    batch          BIGINT NOT NULL,
    stan           BIGINT NOT NULL,
    operator       TEXT,
    masked_pan     TEXT,
    pan_hash       TEXT,
    card_type      TEXT,
    amount_fen     BIGINT NOT NULL DEFAULT 0,
    fee_fen        BIGINT NOT NULL DEFAULT 0,
    currency       TEXT,
    response_code  TEXT NOT NULL,
    auth_code      TEXT,
    request_digest TEXT NOT NULL,
    local_date     TEXT NOT NULL DEFAULT '',
    original_rrn   TEXT,
    voided         BIGINT NOT NULL DEFAULT 0,
    reversed       BIGINT NOT NULL DEFAULT 0,
    refunded_fen   BIGINT NOT NULL DEFAULT 0,
    issuer         TEXT,
    upstream       TEXT,
    stand_in       BIGINT NOT NULL DEFAULT 0,
    reply_48       TEXT,
    balance_fen    BIGINT,
    UNIQUE (tid, batch, stan, mti)
);
CREATE INDEX IF NOT EXISTS transactions_by_card ON transactions (pan_hash);
CREATE INDEX IF NOT EXISTS transactions_by_date ON transactions (local_date);
CREATE TABLE IF NOT EXISTS batches (
    tid                   TEXT NOT NULL,
    mid                   TEXT NOT NULL,
    batch                 BIGINT NOT NULL,
    closed_utc            TEXT NOT NULL,
    terminal_debit_fen    BIGINT NOT NULL,
    terminal_debit_count  BIGINT NOT NULL,
    terminal_credit_fen   BIGINT NOT NULL,
    terminal_credit_count BIGINT NOT NULL,
    switch_debit_fen      BIGINT NOT NULL,
    switch_debit_count    BIGINT NOT NULL,
    switch_credit_fen     BIGINT NOT NULL,
    switch_credit_count   BIGINT NOT NULL,
    balanced              BIGINT NOT NULL,
    PRIMARY KEY (tid, batch)
);
CREATE TABLE IF NOT EXISTS batch_uploads (
    tid        TEXT NOT NULL,
    batch      BIGINT NOT NULL,
    stan       BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    seq        BIGSERIAL,
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
    pvki             BIGINT NOT NULL,
    balance_fen      BIGINT NOT NULL,
    credit_limit_fen BIGINT NOT NULL,
    pin_tries        BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS terminal_sessions (
    tid           TEXT PRIMARY KEY,
    mid           TEXT NOT NULL,
    tpk           TEXT NOT NULL,
    tak           TEXT NOT NULL,
    batch         BIGINT NOT NULL,
    operator      TEXT,
    signed_on_utc TEXT NOT NULL,
    session_id    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS saf_queue (
    id           TEXT PRIMARY KEY,
    seq          BIGSERIAL,
    issuer       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    mti          TEXT NOT NULL,
    original_rrn TEXT,
    created_utc  TEXT NOT NULL,
    state        TEXT NOT NULL,
    tries        BIGINT NOT NULL DEFAULT 0,
    updated_utc  TEXT NOT NULL,
    message      BYTEA NOT NULL,
    owner        TEXT
);
CREATE INDEX IF NOT EXISTS saf_queue_by_state ON saf_queue (issuer, state);
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
    batch BIGINT NOT NULL,
    stan  BIGINT NOT NULL,
    first TEXT NOT NULL,
    n     BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (tid, batch, stan)
);
CREATE TABLE IF NOT EXISTS claims (
    tid   TEXT NOT NULL,
    batch BIGINT NOT NULL,
    stan  BIGINT NOT NULL,
    mti   TEXT NOT NULL,
    PRIMARY KEY (tid, batch, stan, mti)
);
CREATE TABLE IF NOT EXISTS lock_buckets (
    bucket BIGINT PRIMARY KEY,
    n      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS journal_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
",
    ),
    (
        2,
        "
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS fee_category TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS fee_channel TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS fee_rate_ppm BIGINT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS fee_cap_fen BIGINT;
",
    ),
    (
        3,
        "
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
    id         BIGSERIAL PRIMARY KEY,
    time_utc   TEXT NOT NULL,
    who        TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL
);
",
    ),
    (
        4,
        "
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS completed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS expired BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS tip_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS preauth_fen BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS transactions_preauths ON transactions (kind, local_date);
",
    ),
    (
        5,
        // Only the rows looked up by card, or as open pre-authorisations, are indexed so:
        // a sale's commit writes none of these (see `sqlite::LOOKUP_INDEXES`). The new
        // indexes are built under the migration's lock: on a large journal, a pause of the
        // table's writes while they are (once).
        "
DROP INDEX IF EXISTS transactions_by_card;
DROP INDEX IF EXISTS transactions_preauths;
CREATE INDEX IF NOT EXISTS transactions_stand_in_by_card ON transactions (pan_hash, local_date)
    WHERE stand_in = 1;
CREATE INDEX IF NOT EXISTS transactions_preauths_by_card ON transactions (pan_hash, auth_code)
    WHERE kind = 'pre-auth';
CREATE INDEX IF NOT EXISTS transactions_preauths_by_day ON transactions (local_date)
    WHERE kind = 'pre-auth';
",
    ),
    (
        6,
        // Each queued entry names the transaction that last wrote it, so the node holding
        // an issuer's queue reads only what changed since its last read (`saf_changes`),
        // not the whole queue each second. Set by a trigger, so no statement can forget it.
        "
ALTER TABLE saf_queue ADD COLUMN IF NOT EXISTS xact xid8;
UPDATE saf_queue SET xact = pg_current_xact_id() WHERE xact IS NULL;
ALTER TABLE saf_queue ALTER COLUMN xact SET NOT NULL;
CREATE OR REPLACE FUNCTION saf_queue_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.xact := pg_current_xact_id();
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS saf_queue_written ON saf_queue;
CREATE TRIGGER saf_queue_written BEFORE INSERT OR UPDATE ON saf_queue
    FOR EACH ROW EXECUTE FUNCTION saf_queue_written();
CREATE INDEX IF NOT EXISTS saf_queue_by_change ON saf_queue (issuer, xact);
",
    ),
];

/// The sales that stand and the refunds that count, as `sqlite` defines them.
use super::sqlite::{AVAILABLE, PREAUTH_HOLDS, REFUND_COUNTS, SALE_STANDS, preauth_sql};

/// How often a group whose transaction lost a serialization race or a deadlock is tried.
const TRIES: usize = 4;

/// A PostgreSQL connection as the journal's writer or one of its readers.
pub struct Postgres {
    url: String,
    runtime: tokio::runtime::Runtime,
    conn: Option<Conn>,
}

struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

fn storage(e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(e.to_string())
}

/// `?N` placeholders (the SQLite spelling of shared SQL) as PostgreSQL's `$N`.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// What a statement must come to for its commit to stand.
enum Expect {
    /// Anything.
    Any,
    /// One row changed (a conditional update or insert), else stale.
    One(Stale),
    /// One row changed, else a duplicate.
    Inserted,
    /// A condition computed by the query (a boolean), else stale.
    Holds(Stale),
    /// This text back, else stale.
    Text(&'static str, Stale),
    /// Rows `(tid, session_id, batch)` back (the sessions locked) in which every check
    /// holds, else stale.
    Sessions(Vec<SessionCheck>),
    /// Rows `(tid, batch, stan, first)` back (traces inserted) with each trace's first as
    /// wanted, else stale.
    Traces(Vec<TraceCheck>),
}

/// A terminal's session as a request relied on it (its batch too, unless `None`).
struct SessionCheck {
    tid: Tid,
    session_id: i64,
    batch: Option<i64>,
}

/// A trace as a request marks it, and what comes of it when another came first.
struct TraceCheck {
    key: (String, i64, i64),
    first: TraceFirst,
}

/// A statement's parameter: a column's value, or (PostgreSQL only) an array of them.
enum Param {
    /// One value.
    One(Value),
    /// Integers (`BIGINT[]`).
    Ints(Vec<i64>),
    /// Texts (`TEXT[]`).
    Texts(Vec<String>),
}

impl<T: Into<Value>> From<T> for Param {
    fn from(v: T) -> Self {
        Self::One(v.into())
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("param")
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::One(v) => v.to_sql(ty, out),
            Param::Ints(v) => v.to_sql(ty, out),
            Param::Texts(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <Value as ToSql>::accepts(ty)
            || <Vec<i64> as ToSql>::accepts(ty)
            || <Vec<String> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

fn values(v: Vec<Value>) -> Vec<Param> {
    v.into_iter().map(Param::One).collect()
}

/// One statement of a commit.
struct Step {
    sql: String,
    params: Vec<Param>,
    expect: Expect,
    /// A query (rows back) rather than a change (a count back).
    query: bool,
}

impl Step {
    fn change(sql: impl Into<String>, params: Vec<Param>, expect: Expect) -> Self {
        Self {
            sql: sql.into(),
            params,
            expect,
            query: false,
        }
    }

    fn query(sql: impl Into<String>, params: Vec<Param>, expect: Expect) -> Self {
        Self {
            sql: sql.into(),
            params,
            expect,
            query: true,
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Text(t) => t.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty) || <&[u8] as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A PostgreSQL row as the shared column mapping reads it.
struct PgRow<'r>(&'r Row);

impl Columns for PgRow<'_> {
    fn value(&self, i: usize) -> Result<Value, ColumnError> {
        let bad = |e: tokio_postgres::Error| ColumnError::Storage(e.to_string());
        let column = self.0.columns().get(i).ok_or(ColumnError::Bad("column"))?;
        let t = column.type_();
        Ok(if *t == Type::INT8 {
            self.0.try_get::<_, Option<i64>>(i).map_err(bad)?.into()
        } else if *t == Type::INT4 {
            self.0
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(i64::from)
                .into()
        } else if *t == Type::BYTEA {
            self.0
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Blob)
        } else if *t == Type::TEXT || *t == Type::VARCHAR {
            self.0.try_get::<_, Option<String>>(i).map_err(bad)?.into()
        } else if *t == Type::BOOL {
            self.0.try_get::<_, Option<bool>>(i).map_err(bad)?.into()
        } else {
            return Err(ColumnError::Bad("a column of an unknown type"));
        })
    }
}

/// Rows that cannot be read back are skipped with a warning, as `sqlite` does.
fn mapped<T>(
    rows: &[Row],
    f: impl Fn(&PgRow<'_>) -> Result<T, ColumnError>,
) -> Result<Vec<T>, JournalError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        match f(&PgRow(r)) {
            Ok(v) => out.push(v),
            Err(ColumnError::Bad(what)) => {
                tracing::warn!(column = what, "journal row that cannot be read: skipped");
            }
            Err(ColumnError::Storage(e)) => return Err(JournalError::Storage(e)),
        }
    }
    Ok(out)
}

fn params<P: ToSql + Sync>(values: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// What a database error means to the pipeline.
fn classify(e: &tokio_postgres::Error) -> Failure {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            Failure::Again
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => Failure::Duplicate,
        _ if e.is_closed() || e.code().is_none() => Failure::Connection,
        _ => Failure::Other,
    }
}

enum Failure {
    /// Lost a race with another transaction: try the whole transaction again.
    Again,
    /// A unique key is taken.
    Duplicate,
    /// The connection is gone.
    Connection,
    /// Anything else.
    Other,
}

/// `conn`, made (again) if there is none or it broke.
fn ensure<'c>(
    conn: &'c mut Option<Conn>,
    runtime: &tokio::runtime::Runtime,
    url: &str,
) -> Result<&'c mut Conn, JournalError> {
    if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        let client = runtime.block_on(async {
            let (client, connection) = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio_postgres::connect(url, NoTls),
            )
            .await
            .map_err(|_| storage("connecting to PostgreSQL timed out"))?
            .map_err(|e| storage(format!("connecting to PostgreSQL: {e}")))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection closed");
                }
            });
            Ok::<_, JournalError>(client)
        })?;
        *conn = Some(Conn {
            client,
            statements: HashMap::new(),
        });
    }
    conn.as_mut()
        .ok_or_else(|| storage("no PostgreSQL connection"))
}

/// What a transaction body returns.
type TxFuture<'a, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>,
>;

impl Postgres {
    /// A connection to the database at `url` (`postgres://user@host:port/dbname`), made
    /// now.
    pub fn connect(url: &str) -> Result<Self, JournalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(storage)?;
        let mut pg = Self {
            url: url.to_owned(),
            runtime,
            conn: None,
        };
        pg.conn()?;
        Ok(pg)
    }

    /// The connection, made again if it broke.
    fn conn(&mut self) -> Result<&mut Conn, JournalError> {
        ensure(&mut self.conn, &self.runtime, &self.url)
    }

    /// Applies the schema's migrations not applied yet, under a lock that makes nodes
    /// starting together take turns.
    pub fn migrate(&mut self) -> Result<Vec<i64>, JournalError> {
        let mut applied = Vec::new();
        let result = self.transaction(|client| {
            Box::pin(async move {
                client
                    .batch_execute(
                        "SELECT pg_advisory_xact_lock(7303823438); CREATE TABLE IF NOT EXISTS schema_migrations (
                            version BIGINT PRIMARY KEY, applied_utc TEXT NOT NULL)",
                    )
                    .await?;
                let done: Vec<i64> = client
                    .query("SELECT version FROM schema_migrations", &[])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut now = Vec::new();
                for (version, sql) in MIGRATIONS {
                    if done.contains(version) {
                        continue;
                    }
                    client.batch_execute(sql).await?;
                    client
                        .execute(
                            "INSERT INTO schema_migrations (version, applied_utc) VALUES ($1, $2)",
                            &[version, &Timestamp::now().iso_utc()],
                        )
                        .await?;
                    now.push(*version);
                }
                Ok(now)
            })
        });
        match result {
            Ok(v) => applied.extend(v),
            Err(e) => return Err(e),
        }
        Ok(applied)
    }

    /// The database's journal id, created once (by the first node that ever started on
    /// it).
    pub fn journal_id(&mut self) -> Result<String, JournalError> {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| storage("no randomness for the journal id"))?;
        let fresh = hex::encode(bytes);
        self.transaction(move |client| {
            let fresh = fresh.clone();
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO journal_meta (key, value) VALUES ('id', $1) ON CONFLICT (key) DO NOTHING",
                        &[&fresh],
                    )
                    .await?;
                let row = client
                    .query_one("SELECT value FROM journal_meta WHERE key = 'id'", &[])
                    .await?;
                Ok(row.get::<_, String>(0))
            })
        })
    }

    /// Runs `body` in one transaction, again when it loses a serialization race.
    fn transaction<T>(
        &mut self,
        body: impl for<'a> Fn(&'a tokio_postgres::Transaction<'a>) -> TxFuture<'a, T>,
    ) -> Result<T, JournalError> {
        for attempt in 1..=TRIES {
            let conn = ensure(&mut self.conn, &self.runtime, &self.url)?;
            let result = self.runtime.block_on(async {
                let tx = conn.client.transaction().await?;
                let v = body(&tx).await?;
                tx.commit().await?;
                Ok::<T, tokio_postgres::Error>(v)
            });
            match result {
                Ok(v) => return Ok(v),
                Err(e) => match classify(&e) {
                    Failure::Again if attempt < TRIES => continue,
                    Failure::Connection => {
                        self.conn = None;
                        return Err(storage(e));
                    }
                    _ => return Err(storage(e)),
                },
            }
        }
        Err(storage("gave up after serialization failures"))
    }

    /// Prepares what `steps` need that this connection has not prepared yet.
    fn prepare(&mut self, sqls: &[&str]) -> Result<(), JournalError> {
        let conn = ensure(&mut self.conn, &self.runtime, &self.url)?;
        let missing: Vec<String> = sqls
            .iter()
            .filter(|s| !conn.statements.contains_key(**s))
            .map(|s| (*s).to_owned())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let client = &conn.client;
        let prepared = self
            .runtime
            .block_on(async { join_all(missing.iter().map(|s| client.prepare(s))).await });
        for (sql, p) in missing.into_iter().zip(prepared) {
            match p {
                Ok(stmt) => {
                    conn.statements.insert(sql, stmt);
                }
                Err(e) => {
                    if matches!(classify(&e), Failure::Connection) {
                        self.conn = None;
                    }
                    return Err(storage(e));
                }
            }
        }
        Ok(())
    }

    /// Runs `steps` in one transaction, pipelined: every statement is sent, then every
    /// result read; the first that does not come to what it must rolls it all back.
    fn run(&mut self, steps: &[Step]) -> Result<(), JournalError> {
        let sqls: Vec<&str> = steps.iter().map(|s| s.sql.as_str()).collect();
        self.prepare(&sqls)?;
        for attempt in 1..=TRIES {
            let conn = ensure(&mut self.conn, &self.runtime, &self.url)?;
            let statements = &conn.statements;
            let client = &mut conn.client;
            let outcome = self.runtime.block_on(async {
                // BEGIN goes out with the statements: one round trip before the commit.
                let client = &*client;
                let (begun, results) = futures_util::join!(
                    client.batch_execute("BEGIN"),
                    join_all(steps.iter().map(|s| {
                        let stmt = &statements[&s.sql];
                        async move {
                            let p = params(&s.params);
                            if s.query {
                                client.query(stmt, &p).await.map(Ok)
                            } else {
                                client.execute(stmt, &p).await.map(Err)
                            }
                        }
                    }))
                );
                let settled = async {
                    begun?;
                    for (s, r) in steps.iter().zip(results) {
                        if let Some(failed) = check(&s.expect, r?) {
                            return Ok(Err(failed));
                        }
                    }
                    Ok::<_, tokio_postgres::Error>(Ok(()))
                }
                .await;
                match settled {
                    Ok(Ok(())) => client.batch_execute("COMMIT").await.map_err(Err),
                    Ok(Err(failed)) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        Err(Ok(failed))
                    }
                    Err(e) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        Err(Err(e))
                    }
                }
            });
            match outcome {
                Ok(()) => return Ok(()),
                // A condition that does not hold: nothing applied.
                Err(Ok(e)) => return Err(e),
                Err(Err(e)) => match classify(&e) {
                    Failure::Again if attempt < TRIES => continue,
                    Failure::Duplicate => {
                        return Err(JournalError::Duplicate(
                            "the transaction or its key is journalled already".into(),
                        ));
                    }
                    Failure::Connection => {
                        self.conn = None;
                        return Err(storage(e));
                    }
                    _ => return Err(storage(e)),
                },
            }
        }
        Err(storage("gave up after serialization failures"))
    }

    /// One query's rows.
    fn rows(&mut self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>, JournalError> {
        self.prepare(&[sql])?;
        let conn = ensure(&mut self.conn, &self.runtime, &self.url)?;
        let stmt = conn.statements[sql].clone();
        let client = &conn.client;
        let result = self
            .runtime
            .block_on(async { client.query(&stmt, &params(&values)).await });
        result.map_err(|e| {
            if matches!(classify(&e), Failure::Connection) {
                self.conn = None;
            }
            storage(e)
        })
    }

    /// The rows of `sql` (written with SQLite's `?N` placeholders), each column a value:
    /// for reports, which run the same SQL on both journals.
    pub fn query_values(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, JournalError> {
        let rows = self.rows(&dollars(sql), params.to_vec())?;
        rows.iter()
            .map(|r| {
                let row = PgRow(r);
                (0..r.len())
                    .map(|i| {
                        row.value(i).map_err(|e| match e {
                            ColumnError::Bad(what) => storage(what),
                            ColumnError::Storage(s) => JournalError::Storage(s),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// One number (a count or a sum).
    fn number(&mut self, sql: &str, values: Vec<Value>) -> Result<i64, JournalError> {
        let rows = self.rows(sql, values)?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, Option<i64>>(0).ok().flatten())
            .unwrap_or(0))
    }
}

/// What a statement's result says of its commit: `None` when it may stand.
fn check(expect: &Expect, r: Result<Vec<Row>, u64>) -> Option<JournalError> {
    let stale = |s| Some(JournalError::Stale(s));
    match (expect, r) {
        (Expect::Any, _) => None,
        (Expect::One(s), Err(n)) => (n != 1).then_some(JournalError::Stale(*s)),
        (Expect::Inserted, Err(n)) => {
            (n != 1).then(|| JournalError::Duplicate("the request is claimed already".into()))
        }
        (Expect::Holds(s), Ok(rows)) => {
            let holds: bool = rows
                .first()
                .and_then(|r| r.try_get(0).ok())
                .unwrap_or(false);
            if holds { None } else { stale(*s) }
        }
        (Expect::Text(want, s), Ok(rows)) => {
            let got: Option<String> = rows.first().and_then(|r| r.try_get(0).ok());
            if got.as_deref() == Some(*want) {
                None
            } else {
                stale(*s)
            }
        }
        (Expect::Sessions(checks), Ok(rows)) => {
            let found: HashMap<String, (i64, i64)> = rows
                .iter()
                .filter_map(|r| {
                    Some((r.try_get(0).ok()?, (r.try_get(1).ok()?, r.try_get(2).ok()?)))
                })
                .collect();
            checks
                .iter()
                .find(|c| match found.get(c.tid.as_str()) {
                    Some(&(sid, batch)) => {
                        sid != c.session_id || c.batch.is_some_and(|b| b != batch)
                    }
                    None => true,
                })
                .and_then(|c| stale(Stale::Session(c.tid)))
        }
        (Expect::Traces(checks), Ok(rows)) => {
            let found: HashMap<(String, i64, i64), String> = rows
                .iter()
                .filter_map(|r| {
                    let key = (r.try_get(0).ok()?, r.try_get(1).ok()?, r.try_get(2).ok()?);
                    Some((key, r.try_get(3).ok()?))
                })
                .collect();
            checks
                .iter()
                .find(|c| found.get(&c.key).map(String::as_str) != Some(c.first.as_str()))
                .and_then(|c| stale(trace_stale(c.first)))
        }
        (Expect::One(s) | Expect::Holds(s) | Expect::Text(_, s), _) => stale(*s),
        (Expect::Sessions(_) | Expect::Traces(_), Err(_)) => stale(Stale::Other),
        (Expect::Inserted, Ok(_)) => None,
    }
}

/// What it means when a trace's first is not the one a request marks.
fn trace_stale(first: TraceFirst) -> Stale {
    match first {
        TraceFirst::Original => Stale::ReversedFirst,
        TraceFirst::Reversal => Stale::Other,
    }
}

/// The insert of a transaction row.
fn insert_txn() -> String {
    let marks: Vec<String> = (1..=TXN_COLUMN_COUNT).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO transactions ({TXN_COLUMNS}) VALUES ({})",
        marks.join(", ")
    )
}

/// A card's stand-in approvals that stand on a day.
fn stand_in_used_sql() -> String {
    format!(
        "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM transactions
         WHERE pan_hash = $1 AND local_date = $2 AND stand_in = 1 AND {SALE_STANDS}"
    )
}

/// A batch's totals.
fn batch_totals_sql() -> String {
    format!(
        "SELECT
            COALESCE(SUM(CASE WHEN {SALE_STANDS} THEN amount_fen END), 0)::BIGINT,
            COUNT(CASE WHEN {SALE_STANDS} THEN 1 END)::BIGINT,
            COALESCE(SUM(CASE WHEN {REFUND_COUNTS} THEN amount_fen END), 0)::BIGINT,
            COUNT(CASE WHEN {REFUND_COUNTS} THEN 1 END)::BIGINT
         FROM transactions WHERE tid = $1 AND batch = $2"
    )
}

fn trace_params(tid: &Tid, batch: BatchNo, stan: Stan) -> Vec<Value> {
    vec![tid.as_str().into(), batch.0.into(), stan.0.into()]
}

/// A group as statements, in three parts:
///
/// ```text
///   locks     lock buckets, terminal sessions (the sessions' checks read off the lock)
///   changes   in the group's order; transaction rows and traces inserted many per
///             statement (rows go in before anything that reads them)
///   accounts  locked, then moved, in the group's order
/// ```
///
/// An account row (a busy card's above all) is held only for its own updates and the
/// commit, not while the rest of the group runs; nothing else in a group reads an account.
/// Locks go in one order on every node (buckets, sessions, traces by key, accounts by key),
/// so two nodes' groups never wait for each other in a circle.
fn plan(ops: &[&Op]) -> Vec<Step> {
    let touches_account = |op: &&&Op| matches!(op, Op::MoveFunds { .. } | Op::SetPinData { .. });
    // The sessions' checks ride on their lock unless the group changes a session itself.
    let fold_checks = !ops
        .iter()
        .any(|op| matches!(op, Op::PutSession(_) | Op::NextBatch { .. }));
    let (mut steps, account_lock) = locks(ops, fold_checks);
    let mut txns: Vec<&TxnRecord> = Vec::new();
    let mut traces: Vec<TraceCheck> = Vec::new();
    for op in ops.iter().filter(|op| !touches_account(op)) {
        match op {
            Op::Lock(_) => {}
            Op::CheckSession { .. } if fold_checks => {}
            Op::Txn(t) => txns.push(t),
            Op::Trace {
                tid,
                batch,
                stan,
                first,
            } => {
                let key = (
                    tid.as_str().to_owned(),
                    i64::from(batch.0),
                    i64::from(stan.0),
                );
                if traces.iter().any(|t| t.key == key) {
                    // The same trace twice: the first statement's row is the second's.
                    steps.extend(insert_traces(std::mem::take(&mut traces)));
                }
                traces.push(TraceCheck { key, first: *first });
            }
            Op::Mark { .. } | Op::Assert(_) => {
                steps.extend(insert_txns(std::mem::take(&mut txns)));
                steps.push(step(op));
            }
            _ => steps.push(step(op)),
        }
    }
    steps.extend(insert_txns(txns));
    steps.extend(insert_traces(traces));
    steps.extend(account_lock);
    steps.extend(ops.iter().filter(touches_account).map(|op| step(op)));
    steps
}

/// `n` rows of `width` placeholders each: `($1, $2), ($3, $4)`.
fn placeholders(width: usize, n: usize) -> String {
    (0..n)
        .map(|r| {
            let row: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows split into runs of a power of two: a handful of statement shapes to prepare,
/// whatever the group's size.
fn runs<T>(mut rows: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while !rows.is_empty() {
        let n = 1usize << rows.len().ilog2();
        let rest = rows.split_off(n);
        out.push(rows);
        rows = rest;
    }
    out
}

/// Transaction rows, several per statement.
fn insert_txns(txns: Vec<&TxnRecord>) -> Vec<Step> {
    runs(txns)
        .into_iter()
        .map(|run| {
            Step::change(
                format!(
                    "INSERT INTO transactions ({TXN_COLUMNS}) VALUES {}",
                    placeholders(TXN_COLUMN_COUNT, run.len())
                ),
                run.into_iter()
                    .flat_map(|t| values(txn_values(t)))
                    .collect(),
                Expect::Any,
            )
        })
        .collect()
}

/// Traces, several per statement, in key order; each comes back with its first.
fn insert_traces(mut traces: Vec<TraceCheck>) -> Vec<Step> {
    traces.sort_by(|a, b| a.key.cmp(&b.key));
    runs(traces)
        .into_iter()
        .map(|run| {
            let params = run
                .iter()
                .flat_map(|t| {
                    [
                        t.key.0.clone().into(),
                        t.key.1.into(),
                        t.key.2.into(),
                        t.first.as_str().into(),
                    ]
                })
                .collect();
            Step::query(
                format!(
                    "INSERT INTO traces (tid, batch, stan, first) VALUES {}
                     ON CONFLICT (tid, batch, stan) DO UPDATE SET n = traces.n + 1
                     RETURNING tid, batch, stan, first",
                    placeholders(4, run.len())
                ),
                params,
                Expect::Traces(run),
            )
        })
        .collect()
}

/// The group's locks: buckets and sessions (first), accounts (the second value, last).
/// With `fold_checks`, the sessions' lock checks the group's `CheckSession`s.
fn locks(ops: &[&Op], fold_checks: bool) -> (Vec<Step>, Option<Step>) {
    let mut buckets = Vec::new();
    let mut sessions = Vec::new();
    let mut checks = Vec::new();
    let mut accounts = Vec::new();
    for op in ops {
        match op {
            Op::Lock(k) => buckets.push(k.0),
            Op::CheckSession {
                tid,
                session_id,
                batch,
            } => {
                sessions.push(tid.as_str().to_owned());
                checks.push(SessionCheck {
                    tid: *tid,
                    session_id: *session_id,
                    batch: batch.map(|b| i64::from(b.0)),
                });
            }
            Op::NextBatch { tid, .. } => sessions.push(tid.as_str().to_owned()),
            Op::PutSession(s) => sessions.push(s.tid.as_str().to_owned()),
            Op::MoveFunds { account, .. } | Op::SetPinData { account, .. } => {
                accounts.push(account.to_hex());
            }
            _ => {}
        }
    }
    let mut steps = Vec::new();
    buckets.sort_unstable();
    buckets.dedup();
    if !buckets.is_empty() {
        steps.push(Step::query(
            "INSERT INTO lock_buckets (bucket, n) SELECT b, 1 FROM unnest($1::BIGINT[]) AS b ORDER BY b
             ON CONFLICT (bucket) DO UPDATE SET n = lock_buckets.n + 1 RETURNING bucket",
            vec![Param::Ints(buckets)],
            Expect::Any,
        ));
    }
    sessions.sort_unstable();
    sessions.dedup();
    if !sessions.is_empty() {
        steps.push(Step::query(
            "SELECT tid, session_id, batch FROM terminal_sessions WHERE tid = ANY($1::TEXT[])
             ORDER BY tid FOR UPDATE",
            vec![Param::Texts(sessions)],
            if fold_checks && !checks.is_empty() {
                Expect::Sessions(checks)
            } else {
                Expect::Any
            },
        ));
    }
    accounts.sort_unstable();
    accounts.dedup();
    let account_lock = (!accounts.is_empty()).then(|| {
        Step::query(
            "SELECT pan_hash FROM accounts WHERE pan_hash = ANY($1::TEXT[]) ORDER BY pan_hash FOR UPDATE",
            vec![Param::Texts(accounts)],
            Expect::Any,
        )
    });
    (steps, account_lock)
}

/// A change as PostgreSQL statements (most are one).
fn step(op: &Op) -> Step {
    match op {
        Op::Txn(t) => Step::change(insert_txn(), values(txn_values(t)), Expect::Any),
        Op::PutAccount(a) => Step::change(
            format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (pan_hash) DO NOTHING"
            ),
            values(account_values(a)),
            Expect::Any,
        ),
        Op::MoveFunds {
            account,
            delta_fen,
            pin,
            hold_delta_fen,
            require_available_fen,
            pin_tries_below,
        } => Step::change(
            format!(
                "UPDATE accounts SET balance_fen = balance_fen + $2, preauth_fen = preauth_fen + $6,
                pin_tries = CASE $3::BIGINT WHEN 1 THEN pin_tries + 1 WHEN 2 THEN 0 ELSE pin_tries END
             WHERE pan_hash = $1 AND ($4::BIGINT IS NULL OR
                ({AVAILABLE} >= $4 AND status = 'active'))
                AND ($5::BIGINT IS NULL OR pin_tries < $5) AND preauth_fen + $6 >= 0"
            ),
            vec![
                account.to_hex().into(),
                (*delta_fen).into(),
                i64::from(match pin {
                    PinTries::Unchanged => 0u8,
                    PinTries::Failed => 1,
                    PinTries::Reset => 2,
                })
                .into(),
                (*require_available_fen).into(),
                pin_tries_below.map(i64::from).into(),
                (*hold_delta_fen).into(),
            ],
            Expect::One(Stale::Account {
                id: *account,
                funds: require_available_fen.is_some(),
            }),
        ),
        Op::SetPinData { account, pin } => Step::change(
            "UPDATE accounts SET pin_method = $2, pvv = $3, pvki = $4 WHERE pan_hash = $1",
            vec![
                account.to_hex().into(),
                pin.method().as_str().into(),
                pin.value().into(),
                pin.pvki().into(),
            ],
            Expect::Any,
        ),
        Op::PutSession(s) => Step::change(
            format!(
                "INSERT INTO terminal_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tid) DO UPDATE SET mid = excluded.mid, tpk = excluded.tpk,
                    tak = excluded.tak, operator = excluded.operator,
                    signed_on_utc = excluded.signed_on_utc, session_id = excluded.session_id"
            ),
            values(session_values(s)),
            Expect::Any,
        ),
        Op::NextBatch {
            tid,
            session_id,
            batch,
        } => Step::change(
            "UPDATE terminal_sessions SET batch = batch + 1
             WHERE tid = $1 AND session_id = $2 AND batch = $3",
            vec![tid.as_str().into(), (*session_id).into(), batch.0.into()],
            Expect::One(Stale::Session(*tid)),
        ),
        Op::CheckSession {
            tid,
            session_id,
            batch,
        } => Step::query(
            "SELECT COUNT(*) = 1 FROM terminal_sessions WHERE tid = $1 AND session_id = $2
                AND ($3::BIGINT IS NULL OR batch = $3)",
            vec![
                tid.as_str().into(),
                (*session_id).into(),
                batch.map(|b| b.0).into(),
            ],
            Expect::Holds(Stale::Session(*tid)),
        ),
        // Taken with the group's other locks, first.
        Op::Lock(_) => Step::query("SELECT 1", Vec::new(), Expect::Any),
        Op::Assert(c) => match c {
            Condition::StandInWithin {
                account,
                date,
                amount_fen,
                limit_fen,
            } => Step::query(
                format!("SELECT ({}) + $3 <= $4", stand_in_used_sql()),
                vec![
                    account.to_hex().into(),
                    date.clone().into(),
                    (*amount_fen).into(),
                    (*limit_fen).into(),
                ],
                Expect::Holds(Stale::Other),
            ),
            Condition::BatchTotals { tid, batch, totals } => Step::query(
                format!(
                    "SELECT (t.a, t.b, t.c, t.d) = ($3::BIGINT, $4::BIGINT, $5::BIGINT, $6::BIGINT)
                     FROM ({}) AS t (a, b, c, d)",
                    batch_totals_sql()
                ),
                vec![
                    tid.as_str().into(),
                    batch.0.into(),
                    totals.debit_fen.into(),
                    totals.debit_count.into(),
                    totals.credit_fen.into(),
                    totals.credit_count.into(),
                ],
                Expect::Holds(Stale::Other),
            ),
        },
        Op::Trace {
            tid,
            batch,
            stan,
            first,
        } => Step::query(
            "INSERT INTO traces (tid, batch, stan, first) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tid, batch, stan) DO UPDATE SET n = traces.n + 1 RETURNING first",
            vec![
                tid.as_str().into(),
                batch.0.into(),
                stan.0.into(),
                first.as_str().into(),
            ],
            Expect::Text(first.as_str(), trace_stale(*first)),
        ),
        Op::Claim(k) => Step::change(
            "INSERT INTO claims (tid, batch, stan, mti) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            vec![
                k.tid.as_str().into(),
                k.batch.0.into(),
                k.stan.0.into(),
                format!("{:04}", k.mti).into(),
            ],
            Expect::Inserted,
        ),
        Op::Mark { rrn, mark } => {
            let (sql, params): (std::borrow::Cow<'static, str>, Vec<Param>) = match mark {
                Mark::Void => (
                    "UPDATE transactions SET voided = 1 WHERE rrn = $1 AND response_code = '00'
                        AND voided = 0 AND reversed = 0 AND refunded_fen = 0
                        AND completed = 0 AND expired = 0"
                        .into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Unvoid => (
                    "UPDATE transactions SET voided = 0 WHERE rrn = $1 AND voided = 1".into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Reverse => (
                    "UPDATE transactions SET reversed = 1 WHERE rrn = $1 AND reversed = 0".into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Refund { amount_fen } => (
                    "UPDATE transactions SET refunded_fen = refunded_fen + $2 WHERE rrn = $1
                        AND response_code = '00' AND voided = 0 AND reversed = 0
                        AND refunded_fen + $2 <= amount_fen"
                        .into(),
                    vec![rrn.as_str().into(), (*amount_fen).into()],
                ),
                Mark::Complete => (
                    format!("UPDATE transactions SET completed = 1 WHERE rrn = $1 AND {PREAUTH_HOLDS}")
                        .into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Uncomplete => (
                    "UPDATE transactions SET completed = 0 WHERE rrn = $1 AND completed = 1".into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Expire => (
                    format!("UPDATE transactions SET expired = 1 WHERE rrn = $1 AND {PREAUTH_HOLDS}")
                        .into(),
                    vec![rrn.as_str().into()],
                ),
                Mark::Adjust {
                    from_fen,
                    to_fen,
                    fee_fen,
                    tip_fen,
                } => (
                    format!(
                        "UPDATE transactions SET amount_fen = $3, fee_fen = $4, tip_fen = $5
                         WHERE rrn = $1 AND amount_fen = $2 AND refunded_fen = 0 AND {SALE_STANDS}"
                    )
                    .into(),
                    vec![
                        rrn.as_str().into(),
                        (*from_fen).into(),
                        (*to_fen).into(),
                        (*fee_fen).into(),
                        (*tip_fen).into(),
                    ],
                ),
            };
            Step::change(sql, params, Expect::One(Stale::Original(*rrn)))
        }
        Op::CloseBatch(b) => Step::change(
            "INSERT INTO batches (tid, mid, batch, closed_utc, terminal_debit_fen,
                terminal_debit_count, terminal_credit_fen, terminal_credit_count, switch_debit_fen,
                switch_debit_count, switch_credit_fen, switch_credit_count, balanced)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tid, batch) DO UPDATE SET mid = excluded.mid, closed_utc = excluded.closed_utc,
                terminal_debit_fen = excluded.terminal_debit_fen,
                terminal_debit_count = excluded.terminal_debit_count,
                terminal_credit_fen = excluded.terminal_credit_fen,
                terminal_credit_count = excluded.terminal_credit_count,
                switch_debit_fen = excluded.switch_debit_fen,
                switch_debit_count = excluded.switch_debit_count,
                switch_credit_fen = excluded.switch_credit_fen,
                switch_credit_count = excluded.switch_credit_count, balanced = excluded.balanced",
            vec![
                b.tid.as_str().into(),
                b.mid.clone().into(),
                b.batch.0.into(),
                b.closed.iso_utc().into(),
                b.terminal.debit_fen.into(),
                b.terminal.debit_count.into(),
                b.terminal.credit_fen.into(),
                b.terminal.credit_count.into(),
                b.switch.debit_fen.into(),
                b.switch.debit_count.into(),
                b.switch.credit_fen.into(),
                b.switch.credit_count.into(),
                b.balanced.into(),
            ],
            Expect::Any,
        ),
        Op::PutUpload(u) => Step::change(
            "INSERT INTO batch_uploads (tid, batch, stan, amount_fen, kind) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tid, batch, stan) DO UPDATE SET amount_fen = excluded.amount_fen,
                kind = excluded.kind",
            vec![
                u.tid.as_str().into(),
                u.batch.0.into(),
                u.item.stan.0.into(),
                u.item.amount_fen.into(),
                crate::model::FinancialKind::as_item(u.item.kind).into(),
            ],
            Expect::Any,
        ),
        Op::PutSaf(q) => Step::change(
            format!(
                "INSERT INTO saf_queue ({SAF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING"
            ),
            values(saf_values(q)),
            Expect::Any,
        ),
        Op::UpdateSaf {
            id,
            state,
            tries,
            updated,
            from,
        } => Step::change(
            "UPDATE saf_queue SET state = $2, tries = COALESCE($3::BIGINT, tries), updated_utc = $4
             WHERE id = $1 AND ($5::TEXT IS NULL OR state = $5)",
            vec![
                id.clone().into(),
                state.as_str().into(),
                tries.map(i64::from).into(),
                updated.iso_utc().into(),
                from.map(SafState::as_str).into(),
            ],
            if from.is_some() {
                Expect::One(Stale::ArmedTakenOver)
            } else {
                Expect::Any
            },
        ),
    }
}

fn batch_item(stan: i64, amount_fen: i64, kind: &str) -> BatchItem {
    BatchItem {
        stan: Stan(u32::try_from(stan).unwrap_or(0)),
        amount_fen,
        kind: if kind == "refund" {
            FinancialKind::Refund
        } else {
            FinancialKind::Sale
        },
    }
}

/// An operator's action in `admin_log`, as a step of the change's transaction.
fn admin_log(e: &AdminEntry, detail: String) -> Step {
    Step::change(
        "INSERT INTO admin_log (time_utc, who, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        vec![
            e.at.iso_utc().into(),
            e.who.clone().into(),
            e.action.into(),
            e.subject.clone().into(),
            detail.into(),
        ],
        Expect::Any,
    )
}

impl Backend for Postgres {
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError> {
        self.run(&plan(ops))
    }

    fn snapshot(&mut self, today: i64) -> Result<Snapshot, JournalError> {
        let accounts = self.rows(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts"),
            Vec::new(),
        )?;
        let sessions = self.rows(
            &format!("SELECT {SESSION_COLUMNS} FROM terminal_sessions"),
            Vec::new(),
        )?;
        let saf = self.rows(
            &format!(
                "SELECT {SAF_COLUMNS} FROM saf_queue WHERE state IN ('armed', 'pending') ORDER BY seq"
            ),
            Vec::new(),
        )?;
        let since = Timestamp((today - 1) * 86_400_000).civil(0).date();
        let stand_in_rows = self.rows(
            &format!(
                "SELECT pan_hash, local_date, SUM(amount_fen)::BIGINT FROM transactions
                 WHERE stand_in = 1 AND {SALE_STANDS} AND pan_hash IS NOT NULL AND local_date >= $1
                 GROUP BY pan_hash, local_date"
            ),
            vec![since.into()],
        )?;
        let stand_in = mapped(&stand_in_rows, |r| {
            Ok((
                AccountId::from_hex(&r.text(0, "pan_hash")?).ok_or(ColumnError::Bad("pan_hash"))?,
                day_number(&r.text(1, "local_date")?).ok_or(ColumnError::Bad("local_date"))?,
                r.int(2, "sum")?,
            ))
        })?;
        Ok(Snapshot {
            accounts: mapped(&accounts, |r| account_from(r))?,
            sessions: mapped(&sessions, |r| session_from(r))?,
            saf: mapped(&saf, |r| saf_from(r))?,
            stand_in,
        })
    }

    fn probe(&mut self) -> Result<(), JournalError> {
        self.run(&[Step::change(
            "INSERT INTO journal_meta (key, value) VALUES ('probed_utc', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![Timestamp::now().iso_utc().into()],
            Expect::Any,
        )])
    }

    fn reserve(&mut self, name: &str, n: u64) -> Result<u64, JournalError> {
        let n = i64::try_from(n).map_err(storage)?;
        let rows = self.rows(
            "INSERT INTO sequences (name, next) VALUES ($1, 1 + $2::BIGINT)
             ON CONFLICT (name) DO UPDATE SET next = sequences.next + $2::BIGINT
             RETURNING next - $2::BIGINT",
            vec![name.into(), n.into()],
        )?;
        let first: i64 = rows
            .first()
            .and_then(|r| r.try_get(0).ok())
            .ok_or_else(|| storage("sequence reservation returned nothing"))?;
        u64::try_from(first).map_err(storage)
    }

    fn find(&mut self, rrn: &Rrn) -> Result<Option<TxnRecord>, JournalError> {
        let rows = self.rows(
            &format!("SELECT {TXN_COLUMNS} FROM transactions WHERE rrn = $1"),
            vec![rrn.as_str().into()],
        )?;
        Ok(mapped(&rows, |r| txn_from(r))?.into_iter().next())
    }

    fn find_trace(
        &mut self,
        tid: &Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        let rows = self.rows(
            &format!(
                "SELECT {TXN_COLUMNS} FROM transactions WHERE tid = $1 AND batch = $2 AND stan = $3 ORDER BY seq"
            ),
            trace_params(tid, batch, stan),
        )?;
        mapped(&rows, |r| txn_from(r))
    }

    fn preauths(&mut self, query: &PreauthQuery) -> Result<Vec<TxnRecord>, JournalError> {
        let (sql, values) = preauth_sql(query, '$');
        let rows = self.rows(&sql, values)?;
        mapped(&rows, |r| txn_from(r))
    }

    fn max_stan(&mut self, tid: &Tid, batch: BatchNo) -> Result<Option<Stan>, JournalError> {
        let rows = self.rows(
            "SELECT MAX(stan) FROM transactions WHERE tid = $1 AND batch = $2",
            vec![tid.as_str().into(), batch.0.into()],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, Option<i64>>(0).ok().flatten())
            .and_then(|s| u32::try_from(s).ok())
            .map(Stan))
    }

    fn batch_totals(&mut self, tid: &Tid, batch: BatchNo) -> Result<BatchTotals, JournalError> {
        let rows = self.rows(
            &batch_totals_sql(),
            vec![tid.as_str().into(), batch.0.into()],
        )?;
        let r = rows.first().ok_or_else(|| storage("no batch totals"))?;
        let get = |i: usize| r.try_get::<_, i64>(i).map_err(storage);
        Ok(BatchTotals {
            debit_fen: get(0)?,
            debit_count: get(1)?,
            credit_fen: get(2)?,
            credit_count: get(3)?,
        })
    }

    fn batch_items(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<BatchItem>, JournalError> {
        let rows = self.rows(
            &format!(
                "SELECT stan, amount_fen, kind FROM transactions
                 WHERE tid = $1 AND batch = $2 AND (({SALE_STANDS}) OR ({REFUND_COUNTS}))
                 ORDER BY seq"
            ),
            vec![tid.as_str().into(), batch.0.into()],
        )?;
        mapped(&rows, |r| {
            Ok(batch_item(
                r.int(0, "stan")?,
                r.int(1, "amount_fen")?,
                &r.text(2, "kind")?,
            ))
        })
    }

    fn uploads(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<UploadRecord>, JournalError> {
        let rows = self.rows(
            "SELECT stan, amount_fen, kind FROM batch_uploads WHERE tid = $1 AND batch = $2 ORDER BY seq",
            vec![tid.as_str().into(), batch.0.into()],
        )?;
        let tid = *tid;
        mapped(&rows, move |r| {
            Ok(UploadRecord {
                tid,
                batch,
                item: batch_item(
                    r.int(0, "stan")?,
                    r.int(1, "amount_fen")?,
                    &r.text(2, "kind")?,
                ),
            })
        })
    }

    fn session(&mut self, tid: &Tid) -> Result<Option<SessionRecord>, JournalError> {
        let rows = self.rows(
            &format!("SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE tid = $1"),
            vec![tid.as_str().into()],
        )?;
        Ok(mapped(&rows, |r| session_from(r))?.into_iter().next())
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, JournalError> {
        let rows = self.rows(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE pan_hash = $1"),
            vec![id.to_hex().into()],
        )?;
        Ok(mapped(&rows, |r| account_from(r))?.into_iter().next())
    }

    fn add_card(&mut self, card: &AccountRecord, e: &AdminEntry) -> Result<bool, JournalError> {
        if self.account(&card.account)?.is_some() {
            return Ok(false);
        }
        self.run(&[
            Step::change(
                format!(
                    "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (pan_hash) DO NOTHING"
                ),
                values(account_values(card)),
                Expect::Any,
            ),
            admin_log(
                e,
                format!("card_type={} expiry={}", card.card_type.as_str(), card.expiry),
            ),
        ])?;
        Ok(true)
    }

    fn set_terminal_enabled(
        &mut self,
        tid: &Tid,
        enabled: bool,
        e: &AdminEntry,
    ) -> Result<(), JournalError> {
        let log = admin_log(e, String::new());
        if enabled {
            self.run(&[
                Step::change(
                    "DELETE FROM disabled_terminals WHERE tid = $1",
                    vec![tid.as_str().into()],
                    Expect::Any,
                ),
                log,
            ])
        } else {
            self.run(&[
                Step::change(
                    "INSERT INTO disabled_terminals (tid, since_utc, who) VALUES ($1, $2, $3)
                     ON CONFLICT (tid) DO UPDATE SET since_utc = excluded.since_utc, who = excluded.who",
                    vec![tid.as_str().into(), e.at.iso_utc().into(), e.who.clone().into()],
                    Expect::Any,
                ),
                Step::change(
                    "DELETE FROM terminal_sessions WHERE tid = $1",
                    vec![tid.as_str().into()],
                    Expect::Any,
                ),
                log,
            ])
        }
    }

    fn set_issuer_drained(
        &mut self,
        issuer: &str,
        drained: bool,
        e: &AdminEntry,
    ) -> Result<(), JournalError> {
        let change = if drained {
            Step::change(
                "INSERT INTO drained_issuers (issuer, since_utc, who) VALUES ($1, $2, $3)
                 ON CONFLICT (issuer) DO UPDATE SET since_utc = excluded.since_utc, who = excluded.who",
                vec![issuer.into(), e.at.iso_utc().into(), e.who.clone().into()],
                Expect::Any,
            )
        } else {
            Step::change(
                "DELETE FROM drained_issuers WHERE issuer = $1",
                vec![issuer.into()],
                Expect::Any,
            )
        };
        self.run(&[change, admin_log(e, String::new())])
    }

    fn drained_issuers(&mut self) -> Result<Vec<String>, JournalError> {
        let rows = self.rows("SELECT issuer FROM drained_issuers", Vec::new())?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect())
    }

    fn disabled_terminals(&mut self) -> Result<Vec<Tid>, JournalError> {
        let rows = self.rows("SELECT tid FROM disabled_terminals", Vec::new())?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|t| Tid::parse(&t))
            .collect())
    }

    fn end_session(&mut self, tid: &Tid, e: &AdminEntry) -> Result<bool, JournalError> {
        let had = self.session(tid)?.is_some();
        self.run(&[
            Step::change(
                "DELETE FROM terminal_sessions WHERE tid = $1",
                vec![tid.as_str().into()],
                Expect::Any,
            ),
            admin_log(e, String::new()),
        ])?;
        Ok(had)
    }

    fn change_card(&mut self, c: &CardChange) -> Result<Option<AccountRecord>, JournalError> {
        let Some(_) = self.account(&c.account)? else {
            return Ok(None);
        };
        self.run(&[
            Step::change(
                "UPDATE accounts SET status = COALESCE($2, status),
                    pin_tries = CASE WHEN $3::BIGINT = 1 THEN 0 ELSE pin_tries END,
                    credit_limit_fen = COALESCE($4, credit_limit_fen)
                 WHERE pan_hash = $1",
                vec![
                    c.account.to_hex().into(),
                    c.status.map(|s| s.as_str().to_owned()).into(),
                    i64::from(c.reset_pin_tries).into(),
                    c.credit_limit_fen.into(),
                ],
                Expect::Any,
            ),
            admin_log(
                &AdminEntry {
                    at: c.at,
                    who: c.who.clone(),
                    action: c.action,
                    subject: c.masked_pan.clone(),
                },
                c.detail(),
            ),
        ])?;
        self.account(&c.account)
    }

    fn journal_id_read(&mut self) -> Result<Option<String>, JournalError> {
        let rows = self.rows(
            "SELECT value FROM journal_meta WHERE key = 'id'",
            Vec::new(),
        )?;
        Ok(rows.first().and_then(|r| r.try_get(0).ok()))
    }

    fn open_batches(&mut self) -> Result<(i64, i64), JournalError> {
        let rows = self.rows(super::OPEN_BATCHES_SQL, Vec::new())?;
        let n = |i: usize| {
            rows.first()
                .and_then(|r| r.try_get::<_, i64>(i).ok())
                .unwrap_or(0)
        };
        Ok((n(0), n(1)))
    }

    fn stand_in_used(&mut self, account: &AccountId, date: &str) -> Result<i64, JournalError> {
        self.number(
            &stand_in_used_sql(),
            vec![account.to_hex().into(), date.into()],
        )
    }

    fn register_node(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Result<(), String>, JournalError> {
        let (node, holder) = (node.to_owned(), holder.to_owned());
        self.transaction(move |tx| {
            let (node, holder) = (node.clone(), holder.clone());
            Box::pin(async move {
                let live = tx
                    .query_opt(
                        "SELECT holder FROM nodes WHERE node = $1 AND holder <> $2
                            AND heartbeat_utc > $3 FOR UPDATE",
                        &[&node, &holder, &stale_before.iso_utc()],
                    )
                    .await?;
                if let Some(r) = live {
                    return Ok(Err(r.get::<_, String>(0)));
                }
                tx.execute(
                    "INSERT INTO nodes (node, holder, started_utc, heartbeat_utc) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (node) DO UPDATE SET holder = excluded.holder,
                        started_utc = excluded.started_utc, heartbeat_utc = excluded.heartbeat_utc",
                    &[&node, &holder, &now.iso_utc()],
                )
                .await?;
                Ok(Ok(()))
            })
        })
    }

    fn heartbeat(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        let rows = self.rows(
            "UPDATE nodes SET heartbeat_utc = $3 WHERE node = $1 AND holder = $2 RETURNING 1",
            vec![node.into(), holder.into(), now.iso_utc().into()],
        )?;
        Ok(rows.len() == 1)
    }

    fn deregister_node(&mut self, node: &str, holder: &str) -> Result<(), JournalError> {
        self.run(&[
            Step::change(
                "UPDATE nodes SET heartbeat_utc = '' WHERE node = $1 AND holder = $2",
                vec![node.into(), holder.into()],
                Expect::Any,
            ),
            Step::change(
                "DELETE FROM saf_leases WHERE node = $1",
                vec![holder.into()],
                Expect::Any,
            ),
        ])
    }

    fn saf_lease(
        &mut self,
        issuer: &str,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, JournalError> {
        let rows = self.rows(
            "INSERT INTO saf_leases (issuer, node, until_utc) VALUES ($1, $2, $4)
             ON CONFLICT (issuer) DO UPDATE SET node = excluded.node, until_utc = excluded.until_utc
             WHERE saf_leases.node = excluded.node OR saf_leases.until_utc < $3
             RETURNING 1",
            vec![
                issuer.into(),
                node.into(),
                now.iso_utc().into(),
                until.iso_utc().into(),
            ],
        )?;
        Ok(rows.len() == 1)
    }

    fn saf_queue(
        &mut self,
        issuer: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<SafRecord>, JournalError> {
        let rows = self.rows(
            &format!(
                "SELECT {SAF_COLUMNS} FROM saf_queue WHERE issuer = $1 AND (state = 'pending'
                    OR (state = 'armed' AND (owner IS NULL OR owner NOT IN
                        (SELECT holder FROM nodes WHERE heartbeat_utc >= $2))))
                 ORDER BY created_utc, seq"
            ),
            vec![issuer.into(), alive_since.iso_utc().into()],
        )?;
        mapped(&rows, |r| saf_from(r))
    }

    /// The oldest transaction still running is read first: whatever this read does not
    /// see was written by it or a later one, so the next read, from it on, sees it. (A
    /// sequence number would not do: one taken before another can commit after it.) A
    /// mark ahead of the database's own is not trusted: that read is whole.
    fn saf_changes(
        &mut self,
        issuer: &str,
        since: Option<u64>,
        alive_since: Timestamp,
    ) -> Result<SafChanges, JournalError> {
        let mark = self.rows(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::TEXT",
            Vec::new(),
        )?;
        let next = mark
            .first()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| storage("no transaction mark"))?;
        // The oldest running transaction only moves forward in one database. Behind the
        // last read's mark, the database is not the one read last (restored from a
        // backup, say): the whole queue is read again.
        let since = since.filter(|s| *s <= next);
        let rows = match since {
            None => self.rows(
                &format!(
                    "SELECT {SAF_COLUMNS} FROM saf_queue WHERE issuer = $1
                        AND state IN ('pending', 'armed') ORDER BY created_utc, seq"
                ),
                vec![issuer.into()],
            )?,
            Some(since) => self.rows(
                &format!(
                    "SELECT {SAF_COLUMNS} FROM saf_queue WHERE issuer = $1
                        AND xact >= $2::TEXT::xid8 ORDER BY created_utc, seq"
                ),
                vec![issuer.into(), since.to_string().into()],
            )?,
        };
        let records = mapped(&rows, |r| saf_from(r))?;
        let alive = self.rows(
            "SELECT holder FROM nodes WHERE heartbeat_utc >= $1",
            vec![alive_since.iso_utc().into()],
        )?;
        let alive = alive
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(storage))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SafChanges {
            records,
            complete: since.is_none(),
            next: Some(next),
            alive: Some(alive),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid() -> Tid {
        Tid::parse("10000001").expect("tid")
    }

    fn sale(n: u64) -> Op {
        Op::Txn(std::sync::Arc::new(super::super::records::samples::sale(n)))
    }

    fn trace(stan: u32, first: TraceFirst) -> Op {
        Op::Trace {
            tid: tid(),
            batch: BatchNo(1),
            stan: Stan(stan),
            first,
        }
    }

    fn check_session() -> Op {
        Op::CheckSession {
            tid: tid(),
            session_id: 7,
            batch: Some(BatchNo(1)),
        }
    }

    fn move_funds() -> Op {
        Op::MoveFunds {
            account: AccountId([1; 32]),
            delta_fen: -100,
            pin: PinTries::Reset,
            hold_delta_fen: 0,
            require_available_fen: Some(100),
            pin_tries_below: Some(3),
        }
    }

    /// Each statement as its first words and its row count (a multi-row insert's rows).
    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                let words: Vec<&str> = s.sql.split_whitespace().take(3).collect();
                format!("{} x{}", words.join(" "), s.sql.matches("), (").count() + 1)
            })
            .collect()
    }

    #[test]
    fn rows_go_in_runs_of_powers_of_two() {
        let sizes: Vec<usize> = runs((0..13).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [8, 4, 1]);
        assert!(runs(Vec::<u8>::new()).is_empty());
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }

    #[test]
    fn a_group_locks_sessions_first_inserts_rows_together_and_moves_money_last() {
        let ops = [
            check_session(),
            trace(2, TraceFirst::Original),
            sale(2),
            move_funds(),
            check_session(),
            trace(1, TraceFirst::Original),
            sale(1),
            move_funds(),
            sale(3),
        ];
        let steps = plan(&ops.iter().collect::<Vec<_>>());
        assert_eq!(
            shape(&steps),
            [
                "SELECT tid, session_id, x1",
                "INSERT INTO transactions x2",
                "INSERT INTO transactions x1",
                "INSERT INTO traces x2",
                "SELECT pan_hash FROM x1",
                "UPDATE accounts SET x1",
                "UPDATE accounts SET x1",
            ]
        );
        // The sessions' checks ride on their lock; the traces go in key order.
        assert!(matches!(&steps[0].expect, Expect::Sessions(c) if c.len() == 2));
        match &steps[3].expect {
            Expect::Traces(t) => assert_eq!((t[0].key.2, t[1].key.2), (1, 2)),
            _ => panic!("traces checked"),
        }
    }

    #[test]
    fn a_group_that_changes_a_session_checks_sessions_after_the_change() {
        // A settlement moves the session to its next batch.
        let put = Op::NextBatch {
            tid: tid(),
            session_id: 7,
            batch: BatchNo(1),
        };
        let ops = [put, check_session()];
        let steps = plan(&ops.iter().collect::<Vec<_>>());
        assert!(matches!(steps[0].expect, Expect::Any));
        assert!(matches!(
            steps.last().map(|s| &s.expect),
            Some(Expect::Holds(_))
        ));
    }

    #[test]
    fn the_same_trace_twice_is_two_statements_and_rows_go_in_before_what_reads_them() {
        let ops = [
            trace(5, TraceFirst::Original),
            sale(5),
            trace(5, TraceFirst::Reversal),
            Op::Mark {
                rrn: Rrn::from_sequence(5),
                mark: Mark::Reverse,
            },
        ];
        let steps = plan(&ops.iter().collect::<Vec<_>>());
        assert_eq!(
            shape(&steps),
            [
                "INSERT INTO traces x1",
                "INSERT INTO transactions x1",
                "UPDATE transactions SET x1",
                "INSERT INTO traces x1",
            ]
        );
    }
}
