//! Reliability: one process owns a journal; a journal deleted, replaced or unwritable is
//! noticed; logging cannot hurt the money path.

use std::time::Duration;

use crate::cli::http_get;
use crate::client::{DEBIT, Terminal};
use crate::{start, temp_dir, test_config};

/// Polls `/readyz` until it answers with `status` (up to 5 s).
pub async fn readyz_becomes(addr: std::net::SocketAddr, status: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = http_get(addr, "/readyz").await;
        if r.starts_with(&format!("HTTP/1.1 {status}")) {
            return r;
        }
        assert!(
            std::time::Instant::now() < end,
            "readyz never {status}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_second_switch_process_on_the_same_journal_refuses_to_start() {
    let dir = temp_dir("two-owners");
    let config = test_config(&dir);
    let crate::Spawned { mut child, .. } =
        crate::spawn_switch(&config, &dir.join("first.toml"), "info");
    // The second: other ports (both 127.0.0.1:0), the same journal.
    let second = dir.join("second.toml");
    std::fs::write(&second, toml::to_string(&config).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--config"])
        .arg(&second)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second switch started");
    assert!(
        err.contains("in use by another switch") && err.contains(&format!("pid {}", child.id())),
        "{err}"
    );
    let _ = child.kill();
    let _ = child.wait();
    // Once the first is gone, the journal can be opened again.
    let sw = start(config).await;
    sw.shutdown().await;
}

#[tokio::test]
async fn a_deleted_journal_stops_money_and_the_restart() {
    let dir = temp_dir("deleted");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000091").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    readyz_becomes(sw.metrics_addr, "200").await;
    for f in ["journal.db", "journal.db-wal", "journal.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let why = readyz_becomes(sw.metrics_addr, "503").await;
    assert!(why.contains("journal"), "{why}");
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "96");
    assert_eq!(t.balance(DEBIT, "123456").await.rc(), "96");
    sw.shutdown().await;
    // The restart refuses: a journal existed here and is gone.
    let e = switch::start(test_config(&dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("missing or empty") && e.contains("journal init --force"),
        "{e}"
    );
    // A new one only on purpose.
    let e = switch::daemon::init_journal(&dir.join("journal.db"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing or empty"), "{e}");
    switch::daemon::init_journal(&dir.join("journal.db"), true).unwrap();
    let sw = start(test_config(&dir)).await;
    readyz_becomes(sw.metrics_addr, "200").await;
    sw.shutdown().await;
}

#[tokio::test]
async fn a_replaced_journal_is_noticed_and_refused() {
    let dir = temp_dir("replaced");
    let other = temp_dir("replaced-other");
    // Another switch's journal, to put in its place.
    let sw = start(test_config(&other)).await;
    sw.shutdown().await;
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000092").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    std::fs::copy(other.join("journal.db"), dir.join("journal.db.new")).unwrap();
    std::fs::rename(dir.join("journal.db.new"), dir.join("journal.db")).unwrap();
    readyz_becomes(sw.metrics_addr, "503").await;
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "96");
    sw.shutdown().await;
    // The other journal arrives without our write-ahead log (SQLite would lay our log's
    // pages over it): the restart finds another journal's id and refuses.
    for f in ["journal.db-wal", "journal.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let e = switch::start(test_config(&dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("was replaced"), "{e}");
}

#[tokio::test]
async fn production_never_creates_a_journal_by_itself() {
    let dir = temp_dir("prod-journal");
    let path = dir.join("journal.db");
    let e = switch::journal::owner::before_open(&path, false).unwrap_err();
    assert!(e.to_string().contains("switch journal init"), "{e}");
    let (ok, out, err) = crate::cli::switch(&["journal", "init", "--config", &{
        let p = dir.join("switch.toml");
        std::fs::write(&p, toml::to_string(&test_config(&dir)).unwrap()).unwrap();
        p.to_str().unwrap().to_owned()
    }]);
    assert!(ok, "{err}");
    assert!(out.contains("created, id"), "{out}");
    assert!(switch::journal::owner::before_open(&path, false).is_ok());
    // Twice: refused, the journal is there.
    let (ok, _, err) = crate::cli::switch(&[
        "journal",
        "init",
        "--config",
        dir.join("switch.toml").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("exists"), "{err}");
}

/// A small tmpfs mounted at `dir` for the test's life (the switch's CI runs as root); `None`
/// where mounting is not allowed, and the test says it was skipped.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    pub fn mount(dir: &std::path::Path, size: &str) -> Option<Self> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        }
        ok.then(|| Self(dir.to_owned()))
    }

    pub fn remount_read_only(&self) {
        let ok = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Tmpfs {
    /// Unmounts (lazily: a file the test still holds does not keep it) and removes the
    /// mount point.
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_read_only_journal_stops_the_start() {
    let dir = temp_dir("read-only");
    let Some(fs) = Tmpfs::mount(&dir, "8m") else {
        return;
    };
    let sw = start(test_config(&dir)).await;
    sw.shutdown().await;
    fs.remount_read_only();
    let e = switch::start(test_config(&dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("journal") && e.contains("ead-only") || e.contains("not writable"),
        "{e}"
    );
}

/// Runs the switch binary on `config` with its stderr going to `stderr`; returns the child
/// and its terminal address, read from the first lines (`lines` gives them).
fn spawn_with_stderr(
    config: &switch::Config,
    dir: &std::path::Path,
    stderr: std::process::Stdio,
    lines: impl FnOnce(&mut std::process::Child) -> std::net::SocketAddr,
) -> (std::process::Child, std::net::SocketAddr) {
    let path = dir.join("switch.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let addr = lines(&mut child);
    (child, addr)
}

/// Runs the switch binary on `config` with its log going to the file `log`; returns the
/// child, its terminal address and its metrics address, read from the log.
pub(crate) fn spawn_logging_to(
    config: &switch::Config,
    dir: &std::path::Path,
    log: &std::path::Path,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let file = std::fs::File::create(log).unwrap();
    let mut metrics = None;
    let (child, addr) = spawn_with_stderr(config, dir, file.into(), |_| {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(a) = text.lines().find_map(addr_in) {
                metrics = Some(metrics_addr(&text));
                return a;
            }
            assert!(std::time::Instant::now() < end, "never listened: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (child, addr, metrics.expect("read with the address"))
}

/// The `fault=` lines of a log, and the `repeated=` counts they carry.
pub(crate) fn fault_lines<'a>(log: &'a str, fault: &str) -> (Vec<&'a str>, u64) {
    let tag = format!("fault=\"{fault}\" ");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&tag)).collect();
    let repeated = lines
        .iter()
        .map(|l| {
            let at = l
                .find("repeated=")
                .expect("each fault line says how often it came");
            l[at + 9..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    (lines, repeated)
}

/// `switch_log_lines_repeated_total` for `fault`.
pub(crate) fn not_written(metrics: &str, fault: &str) -> u64 {
    let series = format!("switch_log_lines_repeated_total{{fault=\"{fault}\"}}");
    crate::metrics::value(metrics, &series).unwrap_or_else(|| panic!("{series} in {metrics}"))
        as u64
}

/// The `fault` lines of `log` written over `seconds`, checked: at most one a second (the
/// first at once), and none lost from the count (what their `repeated=` counts say came
/// before them is within the metric, which holds all not written). Returns the lines and
/// the metric's count of those not written.
pub(crate) fn faults_logged<'a>(
    log: &'a str,
    metrics: &str,
    fault: &str,
    seconds: u64,
) -> (Vec<&'a str>, u64) {
    let (lines, repeated) = fault_lines(log, fault);
    assert!(
        lines.len() as u64 <= seconds + 1,
        "{} {fault} lines in {seconds} s:\n{}",
        lines.len(),
        lines.join("\n")
    );
    let not_written = not_written(metrics, fault);
    assert!(
        repeated <= not_written,
        "{fault}: {repeated} > {not_written}"
    );
    (lines, not_written)
}

fn addr_in(line: &str) -> Option<std::net::SocketAddr> {
    let at = line.find("terminals=")?;
    line[at + 10..].split_whitespace().next()?.parse().ok()
}

fn metrics_addr(lines: &str) -> std::net::SocketAddr {
    let at = lines.find("metrics=").unwrap();
    lines[at + 8..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn dropped_lines(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("switch_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads the child's stderr until the listening line; the pipe and the lines read are
/// handed back.
fn read_until_listening(
    child: &mut std::process::Child,
) -> (std::net::SocketAddr, std::process::ChildStderr, String) {
    use std::io::Read;
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    loop {
        assert_eq!(
            err.read(&mut b).unwrap(),
            1,
            "switch exited: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(b[0]);
        if b[0] == b'\n' {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some(a) = text.lines().last().and_then(addr_in) {
                return (a, err, text);
            }
        }
    }
}

/// Sales of 0.01 until `n` were answered; every one must be approved.
async fn sales(addr: std::net::SocketAddr, tid: &str, n: usize) {
    let mut t = Terminal::connect(addr, tid).await;
    assert_eq!(t.sign_on().await.rc(), "00");
    for i in 0..n {
        assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "00", "sale {i}");
    }
}

fn debit_balance(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    conn.query_row(
        "SELECT balance_fen FROM accounts WHERE masked_pan = '622202*********0017'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

pub(crate) fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "a clean exit: {status:?}");
}

#[tokio::test]
async fn a_closed_log_stream_loses_no_reply() {
    let dir = temp_dir("log-closed");
    let mut closed_lines = String::new();
    let (child, addr) = spawn_with_stderr(
        &test_config(&dir),
        &dir,
        std::process::Stdio::piped(),
        |c| {
            let (addr, err, lines) = read_until_listening(c);
            drop(err); // the reader goes away: every later write fails
            closed_lines = lines;
            addr
        },
    );
    sales(addr, "10000093", 200).await;
    let metrics = crate::e2e::reqwest_metrics(metrics_addr(&closed_lines)).await;
    assert!(dropped_lines(&metrics) > 0, "failed writes counted");
    stop(child);
    assert_eq!(
        debit_balance(&dir),
        1_000_000 - 200,
        "every sale journalled once"
    );
}

#[tokio::test]
async fn a_blocked_log_stream_delays_no_reply() {
    let dir = temp_dir("log-blocked");
    let mut held = None;
    let mut held_lines = String::new();
    let (child, addr) = spawn_with_stderr(
        &test_config(&dir),
        &dir,
        std::process::Stdio::piped(),
        |c| {
            let (addr, err, lines) = read_until_listening(c);
            held = Some(err); // open, never read again: the pipe fills and writes block
            held_lines = lines;
            addr
        },
    );
    // More lines than the pipe's 64 KiB and the log queue's 4,096 lines hold.
    sales(addr, "10000094", 5_000).await;
    let metrics = crate::e2e::reqwest_metrics(metrics_addr(&held_lines)).await;
    assert!(
        dropped_lines(&metrics) > 0,
        "lines were dropped, not waited for"
    );
    drop(held);
    stop(child);
    assert_eq!(debit_balance(&dir), 1_000_000 - 5_000);
}

#[tokio::test]
async fn a_log_on_a_full_disk_loses_no_reply() {
    let dir = temp_dir("log-full");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let Some(_fs) = Tmpfs::mount(&logs, "64k") else {
        return;
    };
    let (child, addr, _) = spawn_logging_to(&test_config(&dir), &dir, &logs.join("switch.log"));
    // About 250 bytes a line: the 64 KiB disk fills after a few hundred.
    sales(addr, "10000095", 800).await;
    let size = std::fs::metadata(logs.join("switch.log")).unwrap().len();
    assert!(size > 60_000, "the disk filled up ({size} bytes)");
    stop(child);
    assert_eq!(debit_balance(&dir), 1_000_000 - 800);
}
