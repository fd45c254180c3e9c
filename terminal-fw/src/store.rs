//! The terminal's persistent state, in one SQLite file: every change is one transaction, so
//! a power cut at any point loses nothing and leaves nothing half-written.
//!
//! | table | holds |
//! | --- | --- |
//! | `settings` | TID, MID, host, batch, STAN; the TMK and working keys sealed under the device secret |
//! | `operators` | operator numbers, salted PBKDF2 password hashes, failure counters, locks |
//! | `txn_log` | the terminal's transactions (masked card numbers only) |
//! | `pending_reversal` | the reversal to send first, sealed under the device secret |
//!
//! The device secret is a random 32-byte file beside the database (`device.key`, mode 0600),
//! standing in for a secure element.

use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("terminal state: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The device secret file.
    #[error("device secret {path}: {source}")]
    DeviceKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Sealed data did not open (tampered, or another device's secret).
    #[error("sealed terminal data does not open under this device's secret")]
    Sealed,
}

/// One transaction in the terminal's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Trace number.
    pub stan: u32,
    /// Batch.
    pub batch: u32,
    /// `sale`, `qr-sale`, `void`, `refund`, `balance`, `pre-auth`, `pre-auth-void`,
    /// `completion`, `completion-void`, `adjustment`, `tip`.
    pub kind: String,
    /// Masked card number or payment code.
    pub masked_pan: String,
    /// Amount, fen.
    pub amount_fen: i64,
    /// RRN from the reply.
    pub rrn: String,
    /// Authorisation code.
    pub auth_code: String,
    /// Response code.
    pub rc: String,
    /// Local date and time, `MMDD hhmmss`.
    pub when: String,
    /// Operator number.
    pub operator: String,
    /// Voided since (sales).
    pub voided: bool,
    /// The voided or refunded transaction's trace, for voids.
    pub original_stan: Option<u32>,
}

/// What an approved transaction changes in its batch's log besides its own entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follows {
    /// Nothing.
    Nothing,
    /// The entry with this trace is voided (a void, a completion void).
    Voids(u32),
    /// The sale with this trace has a new amount (a settlement or tip adjustment).
    SetsAmount {
        /// Its trace.
        stan: u32,
        /// Its amount now, fen.
        amount_fen: i64,
    },
}

impl Follows {
    /// The earlier entry's trace, if any.
    pub fn original(self) -> Option<u32> {
        match self {
            Self::Nothing => None,
            Self::Voids(s) | Self::SetsAmount { stan: s, .. } => Some(s),
        }
    }
}

/// The terminal's state.
pub struct Store {
    conn: Connection,
    device: LessSafeKey,
    rng: SystemRandom,
    /// PBKDF2 iterations for new password hashes.
    pub pbkdf2_iterations: u32,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS operators (
    no TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL, iterations INTEGER NOT NULL,
    must_change INTEGER NOT NULL, failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS txn_log (
    stan INTEGER NOT NULL, batch INTEGER NOT NULL, kind TEXT NOT NULL, masked_pan TEXT NOT NULL,
    amount_fen INTEGER NOT NULL, rrn TEXT NOT NULL, auth_code TEXT NOT NULL, rc TEXT NOT NULL,
    time TEXT NOT NULL, operator TEXT NOT NULL, voided INTEGER NOT NULL DEFAULT 0, original_stan INTEGER,
    PRIMARY KEY (batch, stan)
);
CREATE TABLE IF NOT EXISTS pending_reversal (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS operator_permissions (no TEXT PRIMARY KEY, permissions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operator_events (
    time INTEGER NOT NULL, by TEXT NOT NULL, event TEXT NOT NULL, operator TEXT NOT NULL
);
";

impl Store {
    /// Whether `dir` holds a terminal's state already.
    pub fn exists(dir: &Path) -> bool {
        dir.join("terminal.db").exists() || dir.join("device.key").exists()
    }

    /// Removes a terminal's state from `dir`: its keys, operators, log and device secret
    /// (a re-initialisation keeps nothing secret).
    pub fn erase(dir: &Path) -> std::io::Result<()> {
        for name in [
            "terminal.db",
            "terminal.db-wal",
            "terminal.db-shm",
            "terminal.db-journal",
            "device.key",
        ] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Opens (creating) the state in `dir`: `terminal.db` and `device.key`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DeviceKey {
            path: dir.to_owned(),
            source,
        })?;
        let key_path = dir.join("device.key");
        let secret = Zeroizing::new(match std::fs::read(&key_path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => {
                return Err(StoreError::DeviceKey {
                    path: key_path,
                    source: std::io::Error::other("not 32 bytes"),
                });
            }
            Err(_) => {
                let mut k = vec![0u8; 32];
                SystemRandom::new()
                    .fill(&mut k)
                    .map_err(|_| StoreError::Sealed)?;
                write_private(&key_path, &k).map_err(|source| StoreError::DeviceKey {
                    path: key_path.clone(),
                    source,
                })?;
                k
            }
        });
        let device = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &secret).map_err(|_| StoreError::Sealed)?,
        );
        let conn = Connection::open(dir.join("terminal.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self::with(conn, device))
    }

    /// A store in memory only (load generator terminals).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        let mut k = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut k[..])
            .map_err(|_| StoreError::Sealed)?;
        let device = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &k[..]).map_err(|_| StoreError::Sealed)?,
        );
        Ok(Self::with(conn, device))
    }

    fn with(conn: Connection, device: LessSafeKey) -> Self {
        Self {
            conn,
            device,
            rng: SystemRandom::new(),
            pbkdf2_iterations: 100_000,
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    /// Seals bytes under the device secret: nonce | ciphertext | tag.
    pub(crate) fn seal(&self, data: &[u8], label: &str) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Sealed)?;
        let mut body = data.to_vec();
        self.device
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut body,
            )
            .map_err(|_| StoreError::Sealed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`Store::seal`] sealed with the same label.
    pub(crate) fn open_sealed(
        &self,
        sealed: &[u8],
        label: &str,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let (nonce, body) = sealed.split_at_checked(12).ok_or(StoreError::Sealed)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| StoreError::Sealed)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let clear = self
            .device
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::Sealed)?;
        Ok(Zeroizing::new(clear.to_vec()))
    }

    /// Runs `f` in one SQLite transaction, with cached BEGIN/COMMIT statements (this is on
    /// every request's path).
    fn atomic<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        match f(&self.conn) {
            Ok(v) => {
                self.conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut r| r.execute([]));
                Err(e.into())
            }
        }
    }

    /// A setting.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// A setting as text.
    pub fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets settings atomically.
    pub fn set_many(&mut self, kv: &[(&str, &[u8])]) -> Result<(), StoreError> {
        self.atomic(|c| {
            for (k, v) in kv {
                c.prepare_cached("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)")?
                    .execute(params![k, v])?;
            }
            Ok(())
        })
    }

    /// A secret setting, sealed under the device secret.
    pub fn set_secret(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = self.seal(value, key)?;
        self.set_many(&[(key, &sealed)])
    }

    /// A secret setting, opened.
    pub fn get_secret(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.get(key)? {
            Some(s) => Ok(Some(self.open_sealed(&s, key)?)),
            None => Ok(None),
        }
    }

    /// A numeric setting (batch, STAN), 0 when unset.
    pub fn get_u32(&self, key: &str) -> Result<u32, StoreError> {
        Ok(self
            .get_text(key)?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }

    /// The next STAN (1–999999, wrapping), persisted before it is used.
    pub fn next_stan(&mut self) -> Result<u32, StoreError> {
        let next = self.get_u32("stan")? % 999_999 + 1;
        self.set_many(&[("stan", next.to_string().as_bytes())])?;
        Ok(next)
    }

    /// Persists the reversal for a request about to be sent, sealed (it holds card data).
    pub fn put_reversal(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        let sealed = self.seal(frame, "reversal")?;
        self.conn.execute(
            "INSERT OR REPLACE INTO pending_reversal (id, sealed) VALUES (1, ?1)",
            [sealed],
        )?;
        Ok(())
    }

    /// The reversal waiting to be sent, if any.
    pub fn pending_reversal(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM pending_reversal WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        sealed.map(|s| self.open_sealed(&s, "reversal")).transpose()
    }

    /// Forgets the pending reversal (its request was answered, or the reversal was).
    pub fn clear_reversal(&mut self) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM pending_reversal")?
            .execute([])?;
        Ok(())
    }

    /// Records an answered transaction and clears its reversal, atomically; an approved
    /// one's change to an earlier entry of its batch (`follows`) with it.
    pub fn log_and_clear(&mut self, e: &LogEntry, follows: Follows) -> Result<(), StoreError> {
        self.atomic(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO txn_log (stan, batch, kind, masked_pan, amount_fen, rrn, auth_code, rc, time, operator, voided, original_stan)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11)",
            )?
            .execute(params![e.stan, e.batch, e.kind, e.masked_pan, e.amount_fen, e.rrn, e.auth_code, e.rc, e.when, e.operator, e.original_stan])?;
            match follows {
                Follows::Nothing => {}
                Follows::Voids(orig) => {
                    c.prepare_cached(
                        "UPDATE txn_log SET voided = 1 WHERE batch = ?1 AND stan = ?2",
                    )?
                    .execute(params![e.batch, orig])?;
                }
                Follows::SetsAmount { stan, amount_fen } => {
                    c.prepare_cached(
                        "UPDATE txn_log SET amount_fen = ?3 WHERE batch = ?1 AND stan = ?2",
                    )?
                    .execute(params![e.batch, stan, amount_fen])?;
                }
            }
            c.prepare_cached("DELETE FROM pending_reversal")?.execute([])?;
            Ok(())
        })
    }

    /// The log of a batch, oldest first.
    pub fn log(&self, batch: u32) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT stan, batch, kind, masked_pan, amount_fen, rrn, auth_code, rc, time, operator, voided, original_stan
             FROM txn_log WHERE batch = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([batch], |r| {
            Ok(LogEntry {
                stan: r.get(0)?,
                batch: r.get(1)?,
                kind: r.get(2)?,
                masked_pan: r.get(3)?,
                amount_fen: r.get(4)?,
                rrn: r.get(5)?,
                auth_code: r.get(6)?,
                rc: r.get(7)?,
                when: r.get(8)?,
                operator: r.get(9)?,
                voided: r.get(10)?,
                original_stan: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
