//! The VFS against SQLite itself: a commit in one write, readers on the default VFS seeing
//! every commit whatever `synchronous` says, a spilled transaction rolled back, and a
//! process killed between commits.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::{Connection, OpenFlags, params};

/// The write counts are the process's: tests that read them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "journal-wal-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A writer as the switch opens its journal: this VFS, 1 KiB pages, WAL.
fn writer(path: &Path, synchronous: &str) -> Connection {
    let name = journal_wal::register().unwrap();
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), name).unwrap();
    conn.pragma_update(None, "page_size", 1024).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS t_v ON t (v);",
    )
    .unwrap();
    conn
}

fn reader(path: &Path) -> Connection {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap()
}

fn value(k: i64) -> String {
    format!("{k:08}-{}", "x".repeat(200))
}

fn count_and_sum(conn: &Connection) -> (i64, i64) {
    conn.query_row("SELECT count(*), coalesce(sum(k), 0) FROM t", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_commits_frames_reach_the_file_in_one_write() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("one-write");
    let path = dir.join("j.db");
    let mut conn = writer(&path, "FULL");
    // The WAL's header is written (and synced) by the first commit: leave that one out.
    conn.execute("INSERT INTO t (k, v) VALUES (0, 'first')", [])
        .unwrap();
    let before = journal_wal::writes();
    let tx = conn.transaction().unwrap();
    for k in 1..=200 {
        tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
    }
    tx.commit().unwrap();
    let after = journal_wal::writes();
    let given = after.given - before.given;
    let made = after.made - before.made;
    // 200 rows of ~210 bytes on 1 KiB pages: some 100 pages of table and index, each
    // frame two writes.
    assert!(given > 100, "SQLite wrote {given} times");
    assert_eq!(made, 1, "{given} writes went to the file as {made}");
    assert_eq!(count_and_sum(&reader(&path)), (201, 200 * 201 / 2));
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reader_on_the_default_vfs_sees_every_commit_whatever_synchronous_says() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for synchronous in ["OFF", "NORMAL", "FULL"] {
        let dir = temp_dir("reader");
        let path = dir.join("j.db");
        let w = writer(&path, synchronous);
        let r = reader(&path);
        let mut sum = 0;
        for k in 1..=300 {
            w.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
                .unwrap();
            sum += k;
            // Every commit is in the file before the wal-index names it.
            assert_eq!(count_and_sum(&r), (k, sum), "synchronous = {synchronous}");
            if k % 50 == 0 {
                // Copied into the database and started over now and then, as the
                // switch's checkpointer does.
                w.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        assert_eq!(integrity(&r), "ok");
        drop((w, r));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_transaction_rolled_back_after_spilling_leaves_the_journal_whole() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("spill");
    let path = dir.join("j.db");
    let mut w = writer(&path, "FULL");
    // A page cache of 10 pages: a large transaction writes frames before it commits.
    w.pragma_update(None, "cache_size", 10).unwrap();
    for k in 1..=20 {
        w.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
    }
    let tx = w.transaction().unwrap();
    for k in 1000..1500 {
        tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
    }
    tx.rollback().unwrap();
    let r = reader(&path);
    assert_eq!(count_and_sum(&r), (20, 210));
    // The frames rolled back are overwritten by the next transactions'.
    for k in 21..=60 {
        w.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
        assert_eq!(count_and_sum(&r).0, k);
    }
    drop((w, r));
    // Opened again on the default VFS: the WAL is read back from the file alone.
    let again = Connection::open(&path).unwrap();
    assert_eq!(integrity(&again), "ok");
    assert_eq!(count_and_sum(&again), (60, 60 * 61 / 2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's side of the next test: commits one row at a time, printing each key once
/// its commit returned, until it is killed.
#[test]
fn killed_writer_child() {
    let Some(path) = std::env::var_os("JOURNAL_WAL_CHILD") else {
        return;
    };
    let w = writer(Path::new(&path), "NORMAL");
    for k in 1.. {
        w.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
        println!("committed {k}");
    }
}

#[test]
fn every_commit_returned_survives_the_process_being_killed() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("killed");
    let path = dir.join("j.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOURNAL_WAL_CHILD", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    while last < 500 {
        let line = lines.next().unwrap().unwrap();
        if let Some(k) = line.strip_prefix("committed ") {
            last = k.parse().unwrap();
        }
    }
    // SIGKILL: nothing of the child's memory reaches the file after this.
    child.kill().unwrap();
    child.wait().unwrap();
    let again = Connection::open(&path).unwrap();
    assert_eq!(integrity(&again), "ok");
    let (n, _) = count_and_sum(&again);
    assert!(n >= last, "{last} commits returned, {n} in the journal");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_transaction_larger_than_one_write_goes_out_in_pieces() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("large");
    let path = dir.join("j.db");
    let mut w = writer(&path, "FULL");
    // ~3 MB of frames in one commit: more than the default VFS takes in one write
    // (128 KiB) and more than is gathered before it goes out (1 MiB).
    let tx = w.transaction().unwrap();
    for k in 1..=12_000 {
        tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])
            .unwrap();
    }
    tx.commit().unwrap();
    let r = reader(&path);
    assert_eq!(count_and_sum(&r), (12_000, 12_000 * 12_001 / 2));
    assert_eq!(integrity(&r), "ok");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's side of the next test: commits 20 rows at a time into a WAL that is never
/// copied back, printing each transaction's fate, until 10 have failed; with a page cache
/// of `JOURNAL_WAL_FULL_CACHE` pages if that is set.
#[test]
fn full_file_writer_child() {
    let Some(path) = std::env::var_os("JOURNAL_WAL_FULL_CHILD") else {
        return;
    };
    let mut w = writer(Path::new(&path), "FULL");
    w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    if let Some(pages) = std::env::var_os("JOURNAL_WAL_FULL_CACHE") {
        let pages: i64 = pages.to_str().unwrap().parse().unwrap();
        w.pragma_update(None, "cache_size", pages).unwrap();
    }
    let mut failed = 0;
    for n in 0.. {
        let first = n * 20 + 1;
        let done = w.transaction().and_then(|tx| {
            for k in first..first + 20 {
                tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", params![k, value(k)])?;
            }
            tx.commit()
        });
        match done {
            Ok(()) => println!("committed {first}"),
            Err(e) => {
                println!("failed {first} {e}");
                failed += 1;
                if failed == 10 {
                    break;
                }
            }
        }
    }
}

#[test]
fn writes_refused_by_a_full_file_fail_their_transactions_and_nothing_else() {
    // The commit's own write refused (SQLite's default cache holds the transaction)…
    full_file(None);
    // …and frames spilled before the commit (a cache of 10 pages).
    full_file(Some(10));
}

fn full_file(cache_pages: Option<u32>) {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("full");
    let path = dir.join("j.db");
    // The child's files may not grow past 2 MiB (bash counts `ulimit -f` in KiB); past
    // that a write is cut short or refused, which SQLite reports as a full disk or an I/O
    // error. SIGXFSZ ignored, so the write fails instead of killing the process.
    let mut child = std::process::Command::new("bash");
    if let Some(pages) = cache_pages {
        child.env("JOURNAL_WAL_FULL_CACHE", pages.to_string());
    }
    let out = child
        .args([
            "-c",
            "ulimit -f 2048; trap '' XFSZ; exec \"$0\" \"$@\"",
            std::env::current_exe().unwrap().to_str().unwrap(),
            "--exact",
            "full_file_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOURNAL_WAL_FULL_CHILD", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut committed = Vec::new();
    let mut failed = Vec::new();
    for line in BufReader::new(&out.stdout[..]).lines() {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("committed ") {
            committed.push(k.parse::<i64>().unwrap());
        } else if let Some(rest) = line.strip_prefix("failed ") {
            let (k, why) = rest.split_once(' ').unwrap();
            // Cut short: "full"; refused outright (EFBIG): an I/O error.
            assert!(why.contains("full") || why.contains("I/O"), "{why}");
            failed.push(k.parse::<i64>().unwrap());
        }
    }
    assert_eq!(failed.len(), 10, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        committed.len() > 10,
        "{} transactions committed",
        committed.len()
    );
    // Read back on the default VFS, without the limit: whole, every committed
    // transaction's rows and none of a failed one's.
    let again = Connection::open(&path).unwrap();
    assert_eq!(integrity(&again), "ok");
    let rows = |first: i64| -> i64 {
        again
            .query_row(
                "SELECT count(*) FROM t WHERE k BETWEEN ?1 AND ?1 + 19",
                [first],
                |r| r.get(0),
            )
            .unwrap()
    };
    for &first in &committed {
        assert_eq!(rows(first), 20, "committed {first}");
    }
    for &first in &failed {
        assert_eq!(rows(first), 0, "failed {first}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_commit_frame_whose_header_went_out_at_the_bound_goes_out_with_its_page() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A fresh WAL's bytes: its 32-byte header, then frames of 1,048 bytes. With 1 MiB
    // gathered at most, the 1,001st frame's header is the last thing gathered before the
    // bound and its page the first after it. A transaction of exactly 1,001 frames (the
    // row count that makes it is searched for: one ~900-byte row a page) puts its commit
    // frame there; with `synchronous = OFF` nothing else sends it out.
    let mut found = false;
    for rows in 980..1_010 {
        let dir = temp_dir("bound");
        let path = dir.join("j.db");
        let mut w = writer(&path, "OFF");
        w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        w.execute("DROP INDEX t_v", []).unwrap();
        // Start the WAL over, so that the transaction's frames begin right after its
        // header.
        w.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let before = journal_wal::writes().given;
        let tx = w.transaction().unwrap();
        for k in 1..=rows {
            tx.execute(
                "INSERT INTO t (k, v) VALUES (?1, ?2)",
                params![k, "v".repeat(900)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // The WAL's header, then two writes a frame.
        if journal_wal::writes().given - before != 1 + 2 * 1_001 {
            drop(w);
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        }
        found = true;
        let r = reader(&path);
        assert_eq!(count_and_sum(&r), (rows, rows * (rows + 1) / 2));
        assert_eq!(integrity(&r), "ok");
        drop((w, r));
        let _ = std::fs::remove_dir_all(&dir);
        break;
    }
    assert!(found, "no row count made a transaction of 1,001 frames");
}
