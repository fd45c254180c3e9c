//! The journal's disk fills, on a real file system of its own (a small tmpfs): sales are
//! declined `96` and the switch is not ready while nothing fits, it approves again by itself
//! once room is made, and every approval it gave is in the journal after a restart, with
//! the balance moved by exactly those.
//!
//! ```text
//!  sales 00 … ─▶ fill the disk ─▶ sales 00 … 96 (no room for the WAL or the database)
//!        ─▶ /readyz 503, sales 96 ─▶ the filler goes ─▶ /readyz 200, sale 00
//!        ─▶ restart: approved rows = approvals heard, balance = start − what they took
//! ```
//!
//! Mounting needs root: without `SWITCH_TEST_MOUNT=1` the test says so and does nothing
//! (`.ci/run` sets it when it runs as root).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::http_get;
use crate::client::{DEBIT, Terminal};
use crate::reliability::{
    Tmpfs, fault_lines, faults_logged, not_written, readyz_becomes, spawn_logging_to, stop,
};
use crate::{JournalDb, start, temp_dir, test_config};

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
    _fs: Tmpfs,
}

impl SmallDisk {
    /// `size` as `mount -o size=` takes it; `None` (and why, on stderr) unless
    /// `SWITCH_TEST_MOUNT` is set.
    fn mount(name: &str, size: &str) -> Option<Self> {
        if std::env::var_os("SWITCH_TEST_MOUNT").is_none() {
            eprintln!(
                "skipped: needs a file system of its own to fill; as root, set SWITCH_TEST_MOUNT=1"
            );
            return None;
        }
        let dir = temp_dir(name);
        let fs = Tmpfs::mount(&dir, size).expect("SWITCH_TEST_MOUNT is set: a tmpfs mounts");
        Some(Self { dir, _fs: fs })
    }

    /// Takes all the room the file system has left, in a file of its own.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }

    fn free_bytes(&self) -> u64 {
        switch::journal::sqlite::disk_free_bytes(&self.dir).expect("statvfs")
    }
}

/// The card's balance as field 54 gives it (`1002156C` and twelve digits of fen).
async fn balance_fen(t: &mut Terminal) -> i64 {
    let r = t.balance(DEBIT, "123456").await;
    assert_eq!(r.rc(), "00");
    let f54 = r.text(54).unwrap();
    f54[8..].parse().unwrap()
}

fn approved_sales(dir: &Path) -> i64 {
    JournalDb::of(dir).number(
        "SELECT COUNT(*) FROM transactions WHERE kind = 'sale' AND response_code = '00'",
        &[],
    )
}

#[tokio::test]
async fn a_full_disk_declines_with_96_loses_no_approval_and_recovers() {
    let Some(disk) = SmallDisk::mount("disk-full", "2m") else {
        return;
    };
    let config = test_config(&disk.dir);
    let sw = start(config.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000030").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let start_fen = balance_fen(&mut t).await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    let mut approved_fen = 100;
    let mut approved = 1;

    // Sales the WAL has room for (it holds the sign-on's pages and these, while the
    // checkpointer copies them into the database beside it), then the disk fills.
    for _ in 0..50 {
        assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "00");
        approved += 1;
        approved_fen += 1;
    }
    let filler = disk.fill();
    assert!(disk.free_bytes() < 4096, "the disk is full");
    // What is already on disk may still take a few more (the WAL's file starts over once
    // the database has all of it); then nothing fits, and the answer is 96.
    let mut declined = false;
    for _ in 0..20_000 {
        let r = t.sale(DEBIT, "123456", 1).await;
        match r.rc().as_str() {
            "00" => {
                approved += 1;
                approved_fen += 1;
            }
            "96" => {
                declined = true;
                break;
            }
            other => panic!("a sale on a full disk answered {other}"),
        }
    }
    assert!(declined, "sales never found the disk full");
    // Not ready while nothing fits, and nothing approved.
    readyz_becomes(sw.metrics_addr, "503").await;
    for _ in 0..5 {
        assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "96");
    }

    // Room again: the journal's probe finds it writable, and sales are approved.
    std::fs::remove_file(&filler).unwrap();
    readyz_becomes(sw.metrics_addr, "200").await;
    assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "00");
    approved += 1;
    approved_fen += 1;
    // The declined sales moved nothing in memory either.
    assert_eq!(balance_fen(&mut t).await, start_fen - approved_fen);
    sw.shutdown().await;

    // Every approval the terminal heard is in the journal, and nothing else moved money.
    assert_eq!(approved_sales(&disk.dir), approved);
    // The same terminal after the restart: its session and trace numbers go on (a
    // balance inquiry under a trace it already used would be answered as a repeat).
    let sw = start(config).await;
    let mut again = Terminal::connect(sw.terminal_addr, "10000030").await;
    again.tpk = t.tpk.clone();
    again.tak = t.tak.clone();
    again.batch = t.batch;
    again.stan = t.stan;
    assert_eq!(balance_fen(&mut again).await, start_fen - approved_fen);
    sw.shutdown().await;
}

/// Under load the WAL only starts over at the writer's mark; on a small disk that mark is
/// fitted to the free space, so the WAL leaves the room to the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_small_disk_the_wal_leaves_the_room_to_the_database() {
    let Some(disk) = SmallDisk::mount("small-disk", "6m") else {
        return;
    };
    let sw = start(test_config(&disk.dir)).await;
    let terminals: Vec<_> = (0..6)
        .map(|i| {
            let addr = sw.terminal_addr;
            tokio::spawn(async move {
                let mut t = Terminal::connect(addr, &format!("{}", 10_000_040 + i)).await;
                assert_eq!(t.sign_on().await.rc(), "00");
                let mut approved = 0i64;
                for _ in 0..50_000 {
                    match t.sale(DEBIT, "123456", 1).await.rc().as_str() {
                        "00" => approved += 1,
                        "96" => return approved,
                        other => panic!("a sale on a filling disk answered {other}"),
                    }
                }
                panic!("the disk never filled");
            })
        })
        .collect();
    let mut approved = 0;
    for t in terminals {
        approved += t.await.unwrap();
    }
    sw.shutdown().await;
    let size = |name: &str| std::fs::metadata(disk.dir.join(name)).map_or(0, |m| m.len());
    let (db, wal) = (size("journal.db"), size("journal.db-wal"));
    // The WAL started over past 1,024 pages (a quarter of 6 MiB is less than 2,048 of
    // them), and its file was cut back to that each time: the database had the rest of the
    // disk. (With the mark of a roomy disk, the WAL took 3.3–4.5 MB of the 6 MiB here and
    // the database 1.7–2.9 MB, for 38–62 % of the approvals.)
    assert!(wal <= 2 * 1_024 * 1_024, "WAL {wal} bytes, database {db}");
    assert!(db >= 3_584 * 1_024, "database {db} bytes, WAL {wal}");
    assert_eq!(approved_sales(&disk.dir), approved);
}

/// Declined sales that met the fault in the journal, written or counted: their record did
/// not fit, or no block of RRNs could be taken for them.
fn met_the_fault(log: &str, metrics: &str) -> u64 {
    ["unrecorded", "rrn_block"]
        .iter()
        .map(|fault| {
            let written = fault_lines(log, fault).0.len() as u64;
            written + not_written(metrics, fault)
        })
        .sum()
}

/// While the disk is full, every sale meets the same fault. The log says so about once a
/// second for each fault, with the count of what it did not write; every sale is still
/// counted, in the lines and the metric together.
#[tokio::test]
async fn a_full_disk_is_logged_once_a_second_not_at_every_sale() {
    let Some(disk) = SmallDisk::mount("disk-full-log", "2m") else {
        return;
    };
    // The log and the configuration on another disk, so the log is whole.
    let outside = temp_dir("disk-full-log-lines");
    let log = outside.join("switch.log");
    let (child, addr, metrics) = spawn_logging_to(&test_config(&disk.dir), &outside, &log);
    let mut t = Terminal::connect(addr, "10000032").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    for _ in 0..20 {
        assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "00");
    }
    // The disk fills; the sales that reach the journal meet the fault until the watchdog
    // (every second) finds it unwritable and the switch declines at the door. That can be
    // at once, so the disk fills again, after room is made, until a hundred sales have met
    // the fault.
    let started = std::time::Instant::now();
    let mut declined = 0u64;
    for _ in 0..5 {
        let filler = disk.fill();
        let mut found_full = false;
        for i in 0..50_000 {
            // (What is already on disk may take one more now and then.)
            match t.sale(DEBIT, "123456", 1).await.rc().as_str() {
                "00" => {}
                "96" => {
                    declined += 1;
                    found_full = true;
                }
                other => panic!("a sale on a full disk answered {other}"),
            }
            if found_full
                && i % 20 == 0
                && http_get(metrics, "/readyz")
                    .await
                    .starts_with("HTTP/1.1 503")
            {
                break;
            }
        }
        assert!(found_full, "sales never found the disk full");
        // Declined at the door now.
        for _ in 0..20 {
            assert_eq!(t.sale(DEBIT, "123456", 1).await.rc(), "96");
            declined += 1;
        }
        std::fs::remove_file(&filler).unwrap();
        readyz_becomes(metrics, "200").await;
        let text = std::fs::read_to_string(&log).unwrap();
        let counts = crate::e2e::reqwest_metrics(metrics).await;
        if met_the_fault(&text, &counts) >= 100 {
            break;
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    let metrics = crate::e2e::reqwest_metrics(metrics).await;
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();

    let mut lines_all = 0;
    for fault in ["journal_commit", "unrecorded", "rrn_block"] {
        let (lines, _) = faults_logged(&text, &metrics, fault, seconds);
        lines_all += lines.len() as u64;
    }
    // The sales that met the fault, each written or counted; without the limit each would
    // have been a line.
    let met = met_the_fault(&text, &metrics);
    assert!(
        (100..=declined).contains(&met),
        "{met} of {declined} declines met the fault"
    );
    assert!(lines_all >= 2, "the fault is logged:\n{text}");
    // Each declined sale still has its own transaction line, with its 96: those that met
    // the fault, and those turned away at the door once the switch was not ready.
    let answered_96 = text.lines().filter(|l| l.contains(" rc=\"96\" ")).count() as u64;
    assert_eq!(
        answered_96, declined,
        "a transaction line for each declined sale"
    );
}

/// A store-and-forward result the journal cannot record (the disk full) is sent again
/// after its back-off, not at once and over and over: the issuer gets no flood of repeats,
/// and once there is room the acknowledgement is recorded.
#[tokio::test]
async fn a_full_disk_does_not_make_store_and_forward_resend_at_once() {
    use crate::issuer::{by_hand, eventually, lines_up, saf_states};
    use std::time::Duration;
    let Some(disk) = SmallDisk::mount("disk-full-saf", "2m") else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = crate::issuer::config(&disk.dir, vec![addr.to_string()], |i| {
        i.timeout_ms = 300;
        i.echo_interval_secs = 600;
        i.saf.retry_secs = 2;
    });
    let sw = start(cfg).await;
    let mut line = crate::client::framed(listener.accept().await.unwrap().0);
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000030").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let pending = |tries: u32| vec![("reversal".to_owned(), "pending".to_owned(), tries)];

    // An approval for no request, under the issuer's key: reversed; the 0420 unanswered,
    // its first try recorded.
    by_hand::write(&mut line, by_hand::approval_for_nothing("900001")).await;
    assert_eq!(
        by_hand::mti(&by_hand::read(&mut line).await).as_str(),
        "0420"
    );
    eventually("the first try recorded", 10, || {
        saf_states(&disk.dir) == pending(1)
    })
    .await;

    // The issuer's line gone while the disk fills: sales until nothing fits.
    drop(line);
    drop(listener);
    lines_up(&sw, 0).await;
    let filler = disk.fill();
    let mut full = false;
    for _ in 0..20_000 {
        match t.sale(DEBIT, "123456", 1).await.rc().as_str() {
            "00" => {}
            "96" => {
                full = true;
                break;
            }
            other => panic!("a sale on a full disk answered {other}"),
        }
    }
    assert!(full, "sales never found the disk full");

    // The line back: the repeat goes and is acknowledged; the journal cannot record that.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let mut line = crate::client::framed(listener.accept().await.unwrap().0);
    let repeat = tokio::time::timeout(Duration::from_secs(15), by_hand::read(&mut line))
        .await
        .expect("the repeat");
    assert_eq!(by_hand::mti(&repeat).as_str(), "0421");
    by_hand::write(&mut line, by_hand::reply(&repeat, "00", None)).await;
    // Not sent again at once (it was, every 50 ms): the next repeat waits its back-off.
    let again = tokio::time::timeout(Duration::from_millis(1500), by_hand::read(&mut line)).await;
    assert!(again.is_err(), "sent again at once");
    assert_eq!(saf_states(&disk.dir), pending(1));

    // Room again: the next repeat's acknowledgement is recorded.
    std::fs::remove_file(&filler).unwrap();
    let repeat = tokio::time::timeout(Duration::from_secs(15), by_hand::read(&mut line))
        .await
        .expect("the repeat after the back-off");
    assert_eq!(by_hand::mti(&repeat).as_str(), "0421");
    by_hand::write(&mut line, by_hand::reply(&repeat, "00", None)).await;
    eventually("the acknowledgement recorded", 10, || {
        saf_states(&disk.dir) == vec![("reversal".to_owned(), "acknowledged".to_owned(), 3)]
    })
    .await;
    sw.shutdown().await;
}
