//! PostgreSQL for the tests: a fresh database per test on the server `SWITCH_TEST_PG` names
//! (`postgres://postgres@127.0.0.1:5432/postgres` on CI's machine; `.ci/run` sets it), or a
//! private server of the test's own (`initdb`, `pg_ctl`) for tests that stop it.
//!
//! Without `SWITCH_TEST_PG`, the tests that need PostgreSQL say so and do nothing:
//! `SWITCH_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres cargo test -p switch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The server the tests use, when one is configured.
pub fn server() -> Option<String> {
    match std::env::var("SWITCH_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped: needs PostgreSQL; set SWITCH_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres"
            );
            None
        }
    }
}

/// Runs `sql` (statements separated by `;`) on `url`, off any runtime the caller is in.
pub fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
            tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
        });
    })
    .join()
    .unwrap();
}

/// One number from `sql` on `url`.
pub fn number(url: &str, sql: &str) -> i64 {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let row = client.query_one(&sql, &[]).await.unwrap();
            row.try_get::<_, i64>(0)
                .or_else(|_| row.try_get::<_, Option<i64>>(0).map(|v| v.unwrap_or(0)))
                .unwrap()
        })
    })
    .join()
    .unwrap()
}

/// The rows of `sql` on `url`, each column as text (`::TEXT` in the query where needed).
pub fn rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query(&sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                        .collect()
                })
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// `url` with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A database of one test's own, dropped with it.
pub struct Database {
    server: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl Database {
    /// A new empty database on the configured server, or `None` (the test is skipped).
    pub fn new(test: &str) -> Option<Self> {
        let server = server()?;
        Some(Self::on(&server, test))
    }

    /// A new empty database on `server`.
    pub fn on(server: &str, test: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        // Databases of test runs that died without dropping theirs.
        SWEPT.call_once(|| {
            for r in rows(
                server,
                "SELECT datname FROM pg_database WHERE datname LIKE 'switch_t%'",
            ) {
                let name = &r[0];
                let pid: Option<u32> = name
                    .strip_prefix("switch_t")
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|p| p.parse().ok());
                if pid.is_some_and(|p| {
                    p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()
                }) {
                    execute(
                        server,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    );
                }
            }
        });
        let name = format!(
            "switch_t{}_{}_{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        execute(server, &format!("CREATE DATABASE {name}"));
        Self {
            server: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }

    /// One number from `sql`.
    pub fn number(&self, sql: &str) -> i64 {
        number(&self.url, sql)
    }

    /// Rows from `sql`, as text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        rows(&self.url, sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::panic::catch_unwind(|| {
                execute(
                    &self.server,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                )
            });
        }
    }
}

/// A PostgreSQL server of the test's own, on a port of its own: for tests that stop and
/// start it. `None` when the binaries are not there (the test says so).
pub struct Private {
    dir: PathBuf,
    bin: PathBuf,
    /// Its port.
    pub port: u16,
}

fn pg_bin() -> Option<PathBuf> {
    let lib = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

impl Private {
    /// `initdb` into `dir`, then started on a free port.
    pub fn start(dir: &Path) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            eprintln!("skipped: needs PostgreSQL's initdb and pg_ctl (Debian: postgresql)");
            return None;
        };
        let data = dir.join("pgdata");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        // initdb refuses to run as root; the tests may: run it as the postgres user then.
        let as_postgres = |cmd: &Path, args: &[&str]| {
            let mut c = if is_root() {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(cmd);
                c
            } else {
                std::process::Command::new(cmd)
            };
            c.args(args);
            c
        };
        if is_root() {
            std::fs::create_dir_all(dir).unwrap();
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status();
        }
        let ok = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str()?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
        assert!(ok, "initdb");
        let p = Self {
            dir: dir.to_owned(),
            bin,
            port,
        };
        p.pg_ctl("start");
        Some(p)
    }

    fn pg_ctl(&self, what: &str) {
        let data = self.dir.join("pgdata");
        let log = self.dir.join("pg.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D".to_owned(),
            data.display().to_string(),
            "-l".to_owned(),
            log.display().to_string(),
            "-w".to_owned(),
            "-m".to_owned(),
            "fast".to_owned(),
        ];
        if what == "start" {
            args.extend(["-o".to_owned(), opts]);
        }
        args.push(what.to_owned());
        let mut c = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let ok = c
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl {what}");
    }

    /// Stops the server (fast: sessions are cut).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts it again.
    pub fn resume(&self) {
        self.pg_ctl("start");
    }

    /// The server's admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.pg_ctl("stop"));
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
