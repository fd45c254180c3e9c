//! The switch's integration tests, one binary: end to end over real TCP against the daemon
//! on 127.0.0.1:0 with its own journal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

mod admin;
mod bad_input;
mod cli;
mod client;
mod config;
mod disk_full;
mod dst;
mod e2e;
mod faults;
mod fuzz_corpus;
mod issuer;
mod layout;
mod lifecycle;
mod logs;
mod merchant_day;
mod metrics;
mod nodes;
mod operator_cli;
mod payshield;
mod pg;
mod pg_saf;
mod pg_schema;
mod preauth;
mod reliability;
mod reload;
mod restart;
mod secrets;
mod security;
mod seeded;
mod simulation;
mod sm4;
mod status_page;
mod tls;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use switch::Config;

/// A fresh directory for one test's journal.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switch-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo configuration on ephemeral ports, journalling into `dir`, without the demo
/// remote issuer (the issuer tests add their own).
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::demo().unwrap();
    c.listen.terminals = "127.0.0.1:0".parse().unwrap();
    c.listen.metrics = "127.0.0.1:0".parse().unwrap();
    c.journal.path = dir.join("journal.db");
    c.issuers.clear();
    c.routes.retain(|r| r.route == "on-us");
    c
}

/// The test configuration on the journal the run asks for: SQLite in `dir`, or with
/// `SWITCH_TEST_JOURNAL=postgres` a fresh PostgreSQL database on `SWITCH_TEST_PG` (its URL
/// kept in `dir/pg-url` for [`JournalDb`]). For the tests that hold on either journal.
pub fn journal_config(dir: &std::path::Path) -> Config {
    let mut c = test_config(dir);
    if std::env::var("SWITCH_TEST_JOURNAL").as_deref() == Ok("postgres") {
        // A restart of the test's switch finds its database again.
        let url = match std::fs::read_to_string(dir.join("pg-url")) {
            Ok(url) => url,
            Err(_) => {
                let server =
                    pg::server().expect("SWITCH_TEST_JOURNAL=postgres needs SWITCH_TEST_PG");
                let db = pg::Database::on(&server, "suite");
                std::fs::write(dir.join("pg-url"), &db.url).unwrap();
                let url = db.url.clone();
                // Dropped by the next run's sweep (named after this process).
                std::mem::forget(db);
                url
            }
        };
        c.journal.url = Some(url);
        c.journal.readers = 2;
    }
    c
}

/// The journal of a test's switch, for checking what it holds: SQLite in `dir`, or the
/// PostgreSQL database [`journal_config`] made. SQL with `?N` placeholders runs on both.
pub struct JournalDb(std::path::PathBuf);

impl JournalDb {
    pub fn of(dir: &std::path::Path) -> Self {
        Self(dir.to_owned())
    }

    /// The rows of `sql`.
    pub fn rows(
        &self,
        sql: &str,
        params: &[switch::journal::columns::Value],
    ) -> Vec<Vec<switch::journal::columns::Value>> {
        let (dir, sql, params) = (self.0.clone(), sql.to_owned(), params.to_vec());
        // PostgreSQL's client runs its own runtime: off the test's.
        std::thread::spawn(move || {
            use switch::report::Source;
            match std::fs::read_to_string(dir.join("pg-url")) {
                Ok(url) => switch::journal::postgres::Postgres::connect(&url)
                    .unwrap()
                    .rows(&sql, &params)
                    .unwrap(),
                Err(_) => rusqlite::Connection::open(dir.join("journal.db"))
                    .unwrap()
                    .rows(&sql, &params)
                    .unwrap(),
            }
        })
        .join()
        .unwrap()
    }

    /// The first column of the first row, a number.
    pub fn number(&self, sql: &str, params: &[switch::journal::columns::Value]) -> i64 {
        match self.rows(sql, params).first().and_then(|r| r.first()) {
            Some(switch::journal::columns::Value::Int(n)) => *n,
            other => panic!("{sql}: {other:?}"),
        }
    }

    /// The first column of the first row, text.
    pub fn text(&self, sql: &str, params: &[switch::journal::columns::Value]) -> String {
        match self.rows(sql, params).first().and_then(|r| r.first()) {
            Some(switch::journal::columns::Value::Text(t)) => t.clone(),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// The `switch report` arguments that name a test's journal: the SQLite file, or a
/// configuration file with the PostgreSQL URL.
pub fn journal_args(dir: &std::path::Path, config: &Config) -> Vec<std::ffi::OsString> {
    if config.journal.url.is_some() {
        let path = dir.join("report.toml");
        std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
        vec!["--config".into(), path.into()]
    } else {
        vec!["--journal".into(), dir.join("journal.db").into()]
    }
}

/// Starts a switch on `config`.
pub async fn start(config: Config) -> switch::Running {
    switch::start(config).await.expect("switch starts")
}

/// The switch binary running on a configuration file, its stderr collected.
pub struct Spawned {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// Where it serves `/metrics`, `/healthz` and `/readyz`.
    pub metrics: std::net::SocketAddr,
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Runs `switch run --config <config>` with `RUST_LOG=<rust_log>` and waits until it
/// listens.
pub fn spawn_switch(config: &switch::Config, path: &std::path::Path, rust_log: &str) -> Spawned {
    use std::io::{BufRead, BufReader};
    std::fs::write(path, toml::to_string(config).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--config"])
        .arg(path)
        .env("RUST_LOG", rust_log)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let logs = std::sync::Arc::clone(&logs);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let field = |name: &str| {
                    line.find(name).map(|at| {
                        line[at + name.len()..]
                            .chars()
                            .take_while(|c| !c.is_whitespace())
                            .collect::<String>()
                    })
                };
                if let (Some(t), Some(m)) = (field("terminals="), field("metrics=")) {
                    let _ = tx.send((t, m));
                }
                logs.lock().unwrap().push_str(&line);
                logs.lock().unwrap().push('\n');
            }
        });
    }
    let (addr, metrics) = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("switch listening");
    Spawned {
        child,
        addr: addr.parse().unwrap(),
        metrics: metrics.parse().unwrap(),
        logs,
    }
}
