//! What the node holding an issuer's store-and-forward queue reads of a shared PostgreSQL
//! journal each second: the whole queue once, then only what changed. Needs PostgreSQL
//! (`SWITCH_TEST_PG`, see `pg.rs`); without it the tests say so and do nothing.
//!
//! ```text
//!  read 1 (whole) ─▶ mark m1    writer W: BEGIN; INSERT late ·········· COMMIT
//!  read 2 (≥ m1)  ─▶ mark m2 ≤ W's transaction (still running)             │
//!  read 3 (≥ m2)  ─▶ sees late ◀──────────────────────────────────────────┘
//! ```

use switch::clock::Timestamp;
use switch::journal::postgres::Postgres;
use switch::journal::{Backend, Op, SafChanges, SafRecord};
use switch::model::{SafKind, SafState};

use crate::pg::Database;

fn record(id: &str, created: i64, state: SafState, owner: &str) -> SafRecord {
    SafRecord {
        id: id.into(),
        issuer: "cup".into(),
        kind: SafKind::Advice,
        mti: codec::Mti::new(*b"0220").unwrap(),
        original_rrn: None,
        created: Timestamp(created),
        state,
        tries: 0,
        updated: Timestamp(created),
        sealed: vec![7; 40],
        owner: Some(owner.into()),
    }
}

fn put(pg: &mut Postgres, r: SafRecord) {
    pg.apply(&[&Op::PutSaf(Box::new(r))]).unwrap();
}

fn ids(c: &SafChanges) -> Vec<(String, SafState)> {
    c.records.iter().map(|r| (r.id.clone(), r.state)).collect()
}

/// A second connection of the test's own, whose transaction stays open across reads.
struct Writer {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Writer {
    fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        });
        Self { runtime, client }
    }

    fn run(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap();
    }
}

#[test]
fn a_write_committed_after_a_later_one_is_still_read() {
    let Some(db) = Database::new("pg_saf") else {
        return;
    };
    let mut pg = Postgres::connect(&db.url).unwrap();
    pg.migrate().unwrap();
    let alive_since = Timestamp(0);
    put(&mut pg, record("a", 1_000, SafState::Pending, "n1"));
    put(
        &mut pg,
        record("other-issuer", 1_000, SafState::Pending, "n1"),
    );
    pg.apply(&[&Op::UpdateSaf {
        id: "other-issuer".into(),
        state: SafState::Pending,
        tries: None,
        updated: Timestamp(1_000),
        from: None,
    }])
    .unwrap();
    db.rows("UPDATE saf_queue SET issuer = 'visa' WHERE id = 'other-issuer'");
    let first = pg.saf_changes("cup", None, alive_since).unwrap();
    assert!(first.complete);
    assert_eq!(ids(&first), [("a".into(), SafState::Pending)]);
    assert_eq!(first.alive, Some(Vec::new()), "no node registered");

    // W writes "late" and keeps its transaction open; "b" is written and committed after.
    let w = Writer::connect(&db.url);
    w.run(
        "BEGIN; INSERT INTO saf_queue (id, issuer, kind, mti, created_utc, state, tries, updated_utc, message, owner)
         VALUES ('late', 'cup', 'advice', '0220', '1970-01-01T00:00:01.500Z', 'pending', 0,
                 '1970-01-01T00:00:01.500Z', '\\x07', 'n2')",
    );
    put(&mut pg, record("b", 2_000, SafState::Pending, "n1"));
    let second = pg.saf_changes("cup", first.next, alive_since).unwrap();
    assert!(!second.complete);
    assert_eq!(ids(&second), [("b".into(), SafState::Pending)]);

    // W commits: the next read, from the second's mark, sees what W wrote, although "b"
    // (written after it began) was read already. A mark taken from the last row read
    // would have passed it by.
    w.run("COMMIT");
    let third = pg.saf_changes("cup", second.next, alive_since).unwrap();
    let found = ids(&third);
    assert!(
        found.contains(&("late".into(), SafState::Pending)),
        "{found:?}"
    );

    // A change of state is a change: acknowledged, the entry is read once more, and not
    // again after that.
    pg.apply(&[&Op::UpdateSaf {
        id: "a".into(),
        state: SafState::Acknowledged,
        tries: Some(1),
        updated: Timestamp(3_000),
        from: None,
    }])
    .unwrap();
    let fourth = pg.saf_changes("cup", third.next, alive_since).unwrap();
    assert_eq!(ids(&fourth), [("a".into(), SafState::Acknowledged)]);
    let fifth = pg.saf_changes("cup", fourth.next, alive_since).unwrap();
    assert!(fifth.records.is_empty(), "{:?}", ids(&fifth));
    // Another issuer's entries are never in it.
    assert!(
        [&first, &second, &third, &fourth]
            .iter()
            .all(|c| c.records.iter().all(|r| r.issuer == "cup"))
    );
    // A mark ahead of the database's (restored from a backup since the last read, say)
    // is not trusted: the read is whole.
    let ahead = pg
        .saf_changes("cup", fifth.next.map(|m| m + 1_000_000), alive_since)
        .unwrap();
    assert!(ahead.complete);
    assert_eq!(ids(&ahead).len(), 2);
    // The whole read again: what is still to send.
    let whole = pg.saf_changes("cup", None, alive_since).unwrap();
    assert_eq!(
        ids(&whole),
        [
            ("late".into(), SafState::Pending),
            ("b".into(), SafState::Pending)
        ]
    );
}

/// What a second's read costs with a long queue (an issuer's outage with stand-in on):
/// the whole queue against what changed. `SAF_BACKLOG=N` sets the length (default 2,000;
/// the figures in PERFORMANCE.md are for 100,000, in a release build).
#[test]
fn a_long_queue_is_not_read_whole_each_second() {
    let Some(db) = Database::new("pg_saf_long") else {
        return;
    };
    let n: usize = std::env::var("SAF_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let mut pg = Postgres::connect(&db.url).unwrap();
    pg.migrate().unwrap();
    let mut r = record("x", 0, SafState::Pending, "n1");
    r.sealed = vec![7; 260];
    for run in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let ops: Vec<Op> = run
            .iter()
            .map(|&i| {
                let mut r = r.clone();
                r.id = format!("{i:09}:advice");
                r.created = Timestamp(i as i64);
                Op::PutSaf(Box::new(r))
            })
            .collect();
        pg.apply(&ops.iter().collect::<Vec<_>>()).unwrap();
    }
    let time = |pg: &mut Postgres, since: Option<u64>| {
        let started = std::time::Instant::now();
        let c = pg.saf_changes("cup", since, Timestamp(0)).unwrap();
        (c, started.elapsed())
    };
    let (whole, _) = time(&mut pg, None);
    assert_eq!(whole.records.len(), n);
    let mut whole_times = Vec::new();
    let mut change_times = Vec::new();
    let mut mark = whole.next;
    for round in 0..5 {
        whole_times.push(time(&mut pg, None).1);
        // Between two reads, one entry sent and acknowledged, one new.
        pg.apply(&[&Op::UpdateSaf {
            id: format!("{round:09}:advice"),
            state: SafState::Acknowledged,
            tries: Some(1),
            updated: Timestamp(0),
            from: None,
        }])
        .unwrap();
        let mut fresh = r.clone();
        fresh.id = format!("new-{round}");
        fresh.created = Timestamp(n as i64 + round);
        put(&mut pg, fresh);
        let (c, t) = time(&mut pg, mark);
        change_times.push(t);
        assert_eq!(
            ids(&c),
            [
                (format!("{round:09}:advice"), SafState::Acknowledged),
                (format!("new-{round}"), SafState::Pending)
            ]
        );
        mark = c.next;
    }
    whole_times.sort();
    change_times.sort();
    eprintln!(
        "{n} queued: a whole read {:?}, a read of what changed {:?} (medians of 5)",
        whole_times[2], change_times[2]
    );
}
