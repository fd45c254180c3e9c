//! Several switch nodes on one PostgreSQL database, as real processes: terminals move
//! between nodes and everything holds as on one node (sessions, money, duplicates, batches,
//! settlement); a node killed, or the database stopped, loses nothing approved.
//!
//! Needs PostgreSQL (`SWITCH_TEST_PG`, see `pg.rs`); without it each test says so and does
//! nothing.

use std::time::Duration;

use switch::Config;

use crate::client::{DEBIT, LOW, Terminal};
use crate::lifecycle::today_mmdd;
use crate::pg::Database;
use crate::{Spawned, spawn_switch, temp_dir, test_config};

/// The test configuration as node `node_id` on the database at `url`.
pub fn node_config(dir: &std::path::Path, url: &str, node_id: u8) -> Config {
    let mut c = test_config(dir);
    c.journal.url = Some(url.to_owned());
    c.journal.node_id = node_id;
    c.journal.readers = 2;
    c
}

/// A switch process, killed when dropped (a test that fails leaves none running).
pub struct Proc(Spawned);

impl std::ops::Deref for Proc {
    type Target = Spawned;
    fn deref(&self) -> &Spawned {
        &self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// Node `node_id` on `db`, as a process.
pub fn node(dir: &std::path::Path, db: &Database, node_id: u8) -> Proc {
    let config = node_config(dir, &db.url, node_id);
    Proc(spawn_switch(
        &config,
        &dir.join(format!("node-{node_id}.toml")),
        "info",
    ))
}

/// Waits until the node at `metrics` has its issuer line up.
async fn line_up(metrics: std::net::SocketAddr) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = crate::cli::http_get(metrics, "/metrics").await;
        if m.lines()
            .any(|l| l.starts_with("switch_issuer_line_up{") && l.ends_with(" 1"))
        {
            return;
        }
        assert!(std::time::Instant::now() < end, "issuer line up: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGKILL.
fn kill(p: Proc) {
    drop(p);
}

#[tokio::test]
async fn two_nodes_on_one_database_are_one_switch() {
    let Some(db) = Database::new("two_nodes") else {
        return;
    };
    let dir = temp_dir("two-nodes");
    let a = node(&dir, &db, 1);
    let b = node(&dir, &db, 2);

    // Sign on at A, pay at B with the same keys.
    let mut t = Terminal::connect(a.addr, "10000901").await;
    assert_eq!(t.sign_on().await.rc(), "00", "{}", a.logs.lock().unwrap());
    t.redial(b.addr).await;
    let sale = t.sale(DEBIT, "123456", 10_000).await;
    assert_eq!(
        sale.rc(),
        "00",
        "a sale at B under A's sign-on: {}",
        b.logs.lock().unwrap()
    );
    let sale_stan = t.stan;
    // Void it at A.
    t.redial(a.addr).await;
    assert_eq!(t.void(DEBIT, 10_000, sale_stan).await.rc(), "00");
    assert_eq!(
        db.number(&format!(
            "SELECT voided FROM transactions WHERE rrn = '{}'",
            sale.text(37).unwrap()
        )),
        1
    );
    // Another sale at A, refunded in part at B.
    let mut bld = t.sale_builder(DEBIT, Some("123456"), 20_000);
    let second = t.seal(&mut bld);
    let s2 = t.exchange(&second).await;
    assert_eq!(s2.rc(), "00");
    t.redial(b.addr).await;
    let refund = t
        .refund(DEBIT, 5_000, &s2.text(37).unwrap(), &today_mmdd())
        .await;
    assert_eq!(refund.rc(), "00", "a refund at B of a sale at A");
    // The sale sent again at B: the answer A gave.
    let again = t.exchange(&second).await;
    assert_eq!(
        (again.rc(), again.text(37), again.text(38)),
        (s2.rc(), s2.text(37), s2.text(38)),
        "a retransmission at another node"
    );

    // The same request at both nodes at once: one answer, money moved once.
    let before = db.number("SELECT SUM(balance_fen)::BIGINT FROM accounts");
    let mut bld = t.sale_builder(DEBIT, Some("123456"), 3_000);
    let both = t.seal(&mut bld);
    let mut ta = Terminal::connect(a.addr, "10000901").await;
    let mut tb = Terminal::connect(b.addr, "10000901").await;
    let (ra, rb) = tokio::join!(ta.exchange(&both), tb.exchange(&both));
    assert_eq!(ra.rc(), "00");
    assert_eq!(
        (ra.text(37), ra.text(38)),
        (rb.text(37), rb.text(38)),
        "both nodes gave the one answer"
    );
    assert_eq!(
        db.number("SELECT SUM(balance_fen)::BIGINT FROM accounts"),
        before - 3_000,
        "moved once"
    );

    // The 50.00 card raced from both nodes: one approval of 40.00.
    let mut x = Terminal::connect(a.addr, "10000902").await;
    let mut y = Terminal::connect(b.addr, "10000903").await;
    assert_eq!(x.sign_on().await.rc(), "00");
    assert_eq!(y.sign_on().await.rc(), "00");
    let (rx, ry) = tokio::join!(x.sale(LOW, "123456", 4_000), y.sale(LOW, "123456", 4_000));
    let mut codes = [rx.rc(), ry.rc()];
    codes.sort();
    assert_eq!(
        codes,
        ["00", "51"],
        "exactly one approval against the last 50.00"
    );
    assert_eq!(
        db.number("SELECT balance_fen FROM accounts WHERE masked_pan = '622202*********0025'"),
        1_000
    );

    // A sign-on at B replaces the session: A refuses the old keys.
    let mut old = Terminal::connect(a.addr, "10000904").await;
    assert_eq!(old.sign_on().await.rc(), "00");
    let mut new = Terminal::connect(b.addr, "10000904").await;
    new.pos.stan = old.stan;
    assert_eq!(new.sign_on().await.rc(), "00");
    old.stan = new.stan;
    let stale = old.sale(DEBIT, "123456", 100).await;
    assert_eq!(stale.rc(), "A0", "the old TAK at A after a sign-on at B");
    // The new keys work at A.
    new.redial(a.addr).await;
    assert_eq!(new.sale(DEBIT, "123456", 100).await.rc(), "00");

    // Settlement at A: the batch as both nodes journalled it.
    t.redial(a.addr).await;
    let settled = t.settle(20_000 + 3_000, 2, 5_000, 1).await;
    assert_eq!(settled.rc(), "00");
    assert_eq!(
        &settled.digits(48).unwrap()[30..31],
        "1",
        "balanced across nodes"
    );
    // The batch is closed for both nodes.
    t.redial(b.addr).await;
    let mut bld = t.sale_builder(DEBIT, Some("123456"), 100);
    bld.set(60, format!("22{:06}000", t.batch));
    assert_eq!(
        t.send_sealed(bld).await.rc(),
        "77",
        "B knows the batch closed at A"
    );

    kill(a);
    kill(b);
}

#[tokio::test]
async fn a_second_process_with_a_live_node_id_is_refused_naming_the_first() {
    let Some(db) = Database::new("node_id") else {
        return;
    };
    let dir = temp_dir("node-id");
    let a = node(&dir, &db, 1);
    let config = node_config(&dir, &db.url, 1);
    let path = dir.join("again.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second node 1 must not start");
    assert!(
        err.contains("node id 1 is in use by a live switch")
            && err.contains(&format!("pid {}", a.child.id())),
        "names the holder: {err}"
    );
    kill(a);
    // Once the first has been gone long enough, the id is free again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let again = node(&dir, &db, 1);
    kill(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_its_terminals_were_told() {
    let Some(db) = Database::new("kill_node") else {
        return;
    };
    let dir = temp_dir("kill-node");
    let a = node(&dir, &db, 1);
    let b = node(&dir, &db, 2);
    let record = dir.join("approvals.csv");
    // The load generator's terminals, spread over both nodes; those of a node that dies
    // dial the other.
    let load = tokio::spawn(terminal_fw::load::run(terminal_fw::load::LoadOptions {
        cipher: terminal_fw::cipher::Cipher::Tdes,
        addrs: vec![a.addr, b.addr],
        terminals: 8,
        first_tid: 10_000_500,
        mid: "898310048990001".into(),
        tmk: crate::client::DEMO_TMK.into(),
        duration: Duration::from_secs(8),
        rate: None,
        mix: terminal_fw::load::Mix::default(),
        pan: DEBIT.into(),
        pin: "123456".into(),
        progress: false,
        record: Some(record.clone()),
        tls: None,
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = switch::clock::Timestamp::now().iso_utc();
    kill(a);
    let summary = load.await.unwrap().unwrap();
    let told: Vec<(String, String)> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_owned(), f[3].to_owned())
        })
        .collect();
    assert!(told.len() > 100, "load ran: {summary:?}");
    let journal: std::collections::HashMap<String, (String, String)> = db
        .rows(
            "SELECT rrn, response_code, COALESCE(auth_code, '') FROM transactions
             WHERE tid BETWEEN '10000500' AND '10000507'",
        )
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
        .collect();
    for (rrn, auth) in &told {
        assert_eq!(
            journal.get(rrn),
            Some(&("00".to_owned(), auth.clone())),
            "approval {rrn} as the terminal was told it"
        );
    }
    // Every terminal carried on at the node left.
    let after = db.number(&format!(
        "SELECT COUNT(DISTINCT tid) FROM transactions
         WHERE tid BETWEEN '10000500' AND '10000507' AND time_utc > '{killed_at}' AND response_code = '00'"
    ));
    assert_eq!(after, 8, "all eight terminals approved after the kill");
    // The card moved by exactly the sales the journal holds, and the day's report says so.
    let sales = db.number(
        "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM transactions
         WHERE masked_pan = '622202*********0017' AND kind = 'sale' AND response_code = '00'
           AND voided = 0 AND reversed = 0",
    );
    assert_eq!(
        db.number("SELECT balance_fen FROM accounts WHERE masked_pan = '622202*********0017'"),
        1_000_000 - sales
    );
    let url = db.url.clone();
    let gross: i64 = std::thread::spawn(move || {
        let mut pg = switch::journal::postgres::Postgres::connect(&url).unwrap();
        let today = switch::clock::Timestamp::now().cst_date();
        switch::report::settlement(&mut pg, &today)
            .unwrap()
            .iter()
            .map(|r| r.gross_fen)
            .sum()
    })
    .join()
    .unwrap();
    assert_eq!(gross, sales, "the settlement report sees both nodes' sales");
    kill(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stopped_for_five_seconds_under_load_loses_nothing() {
    if crate::pg::server().is_none() {
        return;
    }
    let dir = temp_dir("pg-stop");
    let Some(pg) = crate::pg::Private::start(&dir.join("pg")) else {
        return;
    };
    let db = Database::on(&pg.url(), "stop");
    let a = node(&dir, &db, 1);
    let record = dir.join("approvals.csv");
    let load = tokio::spawn(terminal_fw::load::run(terminal_fw::load::LoadOptions {
        cipher: terminal_fw::cipher::Cipher::Tdes,
        addrs: vec![a.addr],
        terminals: 4,
        first_tid: 10_000_520,
        mid: "898310048990001".into(),
        tmk: crate::client::DEMO_TMK.into(),
        duration: Duration::from_secs(14),
        rate: None,
        mix: terminal_fw::load::Mix::default(),
        pan: DEBIT.into(),
        pin: "123456".into(),
        progress: false,
        record: Some(record.clone()),
        tls: None,
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    crate::reliability::readyz_becomes(a.metrics, "200").await;
    pg.stop();
    crate::reliability::readyz_becomes(a.metrics, "503").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    pg.resume();
    // The node reconnects by itself.
    crate::reliability::readyz_becomes(a.metrics, "200").await;
    let summary = load.await.unwrap().unwrap();
    assert!(
        summary.response_codes.get("96").copied().unwrap_or(0) > 0,
        "the outage was answered 96: {summary:?}"
    );
    let told: Vec<String> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    let journalled: std::collections::HashSet<String> = db
        .rows("SELECT rrn FROM transactions WHERE response_code = '00'")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(told.len() > 50, "approvals before and after: {summary:?}");
    for rrn in &told {
        assert!(
            journalled.contains(rrn),
            "approval {rrn} lost in the outage"
        );
    }
    let sales = db.number(
        "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM transactions
         WHERE masked_pan = '622202*********0017' AND kind = 'sale' AND response_code = '00'
           AND voided = 0 AND reversed = 0",
    );
    assert_eq!(
        db.number("SELECT balance_fen FROM accounts WHERE masked_pan = '622202*********0017'"),
        1_000_000 - sales,
        "balance exact"
    );
    kill(a);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_armed_at_a_node_killed_is_delivered_once_by_the_other() {
    let Some(db) = Database::new("saf_handover") else {
        return;
    };
    let dir = temp_dir("saf-handover");
    // The issuer answers late: the sale is in flight at node 1 when it dies.
    let issuer = crate::issuer::sim(1).await;
    issuer
        .knobs
        .delay_ms
        .store(60_000, std::sync::atomic::Ordering::Relaxed);
    let lines = vec![issuer.addrs[0].to_string()];
    let mut configs = Vec::new();
    for id in [1u8, 2] {
        let mut c = crate::issuer::config(&dir, lines.clone(), |i| {
            i.timeout_ms = 30_000;
            i.saf.retry_secs = 1;
        });
        c.journal.url = Some(db.url.clone());
        c.journal.node_id = id;
        c.journal.readers = 2;
        configs.push(c);
    }
    let a = Proc(spawn_switch(&configs[0], &dir.join("a.toml"), "info"));
    let b = Proc(spawn_switch(&configs[1], &dir.join("b.toml"), "info"));
    for n in [&a, &b] {
        line_up(n.metrics).await;
    }
    let before = issuer.balance(crate::issuer::REMOTE).unwrap();
    let mut t = Terminal::connect(a.addr, "10000530").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let mut bld = t.sale_builder(crate::issuer::REMOTE, Some("111111"), 777);
    let sale = t.seal(&mut bld);
    t.send_raw(&sale).await;
    // The sale reaches the issuer (applied there, its answer held back), then node 1 dies.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while issuer.balance(crate::issuer::REMOTE).unwrap() == before {
        assert!(
            std::time::Instant::now() < end,
            "the sale reached the issuer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        db.number("SELECT COUNT(*) FROM saf_queue WHERE state = 'armed'"),
        1,
        "its reversal armed"
    );
    kill(a);
    issuer
        .knobs
        .delay_ms
        .store(0, std::sync::atomic::Ordering::Relaxed);
    // Node 2 takes the queue over once node 1's lease and heartbeat are stale, and sends
    // the reversal: the issuer's card is whole again, once.
    let end = std::time::Instant::now() + Duration::from_secs(40);
    while issuer.balance(crate::issuer::REMOTE).unwrap() != before {
        assert!(
            std::time::Instant::now() < end,
            "node 2 delivered the reversal: {}",
            b.logs.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(issuer.balance(crate::issuer::REMOTE).unwrap(), before);
    assert_eq!(issuer.reversals_applied(), 1, "applied once");
    assert_eq!(
        db.number("SELECT COUNT(*) FROM saf_queue WHERE state = 'acknowledged'"),
        1
    );
    // The terminal, redialling node 2, reverses the sale it never heard about: 00, and
    // nothing more moves.
    t.redial(b.addr).await;
    assert_eq!(t.reverse(&sale).await.rc(), "00");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(issuer.balance(crate::issuer::REMOTE).unwrap(), before);
    kill(b);
}

#[tokio::test]
async fn an_operators_card_change_at_one_node_holds_at_the_other() {
    let Some(db) = Database::new("admin_nodes") else {
        return;
    };
    let dir = temp_dir("admin-nodes");
    let a = node(&dir, &db, 1);
    let b = node(&dir, &db, 2);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let admin = |body: String| {
        let (addr, token) = (a.metrics.to_string(), token.trim().to_owned());
        async move {
            tokio::task::spawn_blocking(move || {
                switch::daemon::admin::request(&addr, &token, "POST", "/admin/card", Some(&body))
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let mut t = Terminal::connect(b.addr, "10000911").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(
        t.sale(DEBIT, "123456", 100).await.rc(),
        "00",
        "B knows the card active"
    );
    // Blocked at A: B's next sale on it is refused, though B's memory had it active.
    let (code, body) = admin(format!(
        r#"{{"pan":"{DEBIT}","action":"block","status":"lost","who":"carol"}}"#
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "41");
    admin(format!(
        r#"{{"pan":"{DEBIT}","action":"unblock","who":"carol"}}"#
    ))
    .await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    // Locked by wrong PINs at B, reset at A: B accepts the right PIN again.
    for rc in ["55", "55", "75"] {
        assert_eq!(t.sale(DEBIT, "000000", 100).await.rc(), rc);
    }
    admin(format!(
        r#"{{"pan":"{DEBIT}","action":"reset-pin-tries","who":"carol"}}"#
    ))
    .await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    assert_eq!(
        db.number("SELECT COUNT(*) FROM admin_log WHERE who = 'carol'"),
        3
    );
    // Made to sign on again at A: its next sale at B answers A0, a new sign-on works.
    let (code, body) = {
        let (addr, token) = (a.metrics.to_string(), token.trim().to_owned());
        tokio::task::spawn_blocking(move || {
            switch::daemon::admin::request(
                &addr,
                &token,
                "POST",
                "/admin/terminal",
                Some(r#"{"tid":"10000911","action":"force-signon","who":"carol"}"#),
            )
            .unwrap()
        })
        .await
        .unwrap()
    };
    assert_eq!(code, 200, "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "A0");
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    // Disabled at A: at B its next request finds no session (A0), and its sign-on 58.
    let post = |body: &'static str| {
        let (addr, token) = (a.metrics.to_string(), token.trim().to_owned());
        async move {
            tokio::task::spawn_blocking(move || {
                switch::daemon::admin::request(&addr, &token, "POST", "/admin/terminal", Some(body))
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let (code, _) = post(r#"{"tid":"10000911","action":"disable","who":"carol"}"#).await;
    assert_eq!(code, 200);
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "A0");
    assert_eq!(t.sign_on().await.rc(), "58");
    let (code, _) = post(r#"{"tid":"10000911","action":"enable","who":"carol"}"#).await;
    assert_eq!(code, 200);
    // B learnt of the disabling from the journal; enabling at A is heard at B's next
    // sign-on, which reads the journal's list again.
    t.redial(a.addr).await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    drop((a, b));
}

#[tokio::test]
async fn an_issuer_drained_at_one_node_is_drained_at_the_other() {
    let Some(db) = Database::new("drain_nodes") else {
        return;
    };
    let sim = crate::issuer::sim(1).await;
    let dir = temp_dir("drain-nodes");
    let spawn = |id: u8| {
        let mut c = crate::issuer::config(&dir, vec![sim.addrs[0].to_string()], |_| {});
        c.journal.url = Some(db.url.clone());
        c.journal.node_id = id;
        c.journal.readers = 2;
        Proc(spawn_switch(
            &c,
            &dir.join(format!("node-{id}.toml")),
            "info",
        ))
    };
    let a = spawn(1);
    let b = spawn(2);
    line_up(b.metrics).await;
    let mut t = Terminal::connect(b.addr, "10000921").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let remote = crate::issuer::REMOTE;
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "00");
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let post = |body: &'static str| {
        let (addr, token) = (a.metrics.to_string(), token.trim().to_owned());
        async move {
            tokio::task::spawn_blocking(move || {
                switch::daemon::admin::request(&addr, &token, "POST", "/admin/issuer", Some(body))
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    // B follows the journal within its heartbeat (a second): waited for at B's endpoint.
    let at_b = |drained: bool| {
        let (addr, token) = (b.metrics.to_string(), token.trim().to_owned());
        async move {
            let want = format!(r#""drained":{drained}"#);
            let end = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (addr, token) = (addr.clone(), token.clone());
                let (_, body) = tokio::task::spawn_blocking(move || {
                    switch::daemon::admin::request(&addr, &token, "GET", "/admin/issuer", None)
                        .unwrap()
                })
                .await
                .unwrap();
                if body.contains(&want) {
                    return;
                }
                assert!(
                    std::time::Instant::now() < end,
                    "B drained={drained}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (code, body) = post(r#"{"name":"demo-issuer","action":"drain","who":"gina"}"#).await;
    assert_eq!(code, 200, "{body}");
    at_b(true).await;
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "91");
    let (code, _) = post(r#"{"name":"demo-issuer","action":"up","who":"gina"}"#).await;
    assert_eq!(code, 200);
    at_b(false).await;
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "00");
    drop((a, b));
}

#[tokio::test]
async fn a_hold_made_at_one_node_is_held_and_completed_once_across_nodes() {
    let Some(db) = Database::new("preauth_nodes") else {
        return;
    };
    let dir = temp_dir("preauth-nodes");
    let a = node(&dir, &db, 1);
    let b = node(&dir, &db, 2);
    let mut t = Terminal::connect(a.addr, "10000911").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // A hold at A: B's balance inquiry and B's sales see it.
    let mut bld = t.preauth_builder(DEBIT, "123456", 900_000);
    let p = t.send_sealed(bld).await;
    assert_eq!(p.rc(), "00", "{}", a.logs.lock().unwrap());
    let (pstan, auth, batch) = (t.stan, p.text(38).unwrap(), t.batch);
    t.redial(b.addr).await;
    let bal = t.balance(DEBIT, "123456").await;
    assert_eq!(bal.text(54).unwrap()[8..].parse::<i64>().unwrap(), 100_000);
    assert_eq!(t.sale(DEBIT, "123456", 100_001).await.rc(), "51");
    // The completion at both nodes at once: one of them completes it, the other is 12.
    let mmdd = today_mmdd();
    bld = t.completion_builder(DEBIT, 950_000, &auth, (batch, pstan, &mmdd), false);
    let first = t.seal(&mut bld);
    bld = t.completion_builder(DEBIT, 950_000, &auth, (batch, pstan, &mmdd), false);
    let second = t.seal(&mut bld);
    let mut ta = Terminal::connect(a.addr, "10000911").await;
    let mut tb = Terminal::connect(b.addr, "10000911").await;
    let (ra, rb) = tokio::join!(ta.exchange(&first), tb.exchange(&second));
    let mut codes = [ra.rc(), rb.rc()];
    codes.sort();
    assert_eq!(
        codes,
        ["00".to_string(), "12".to_string()],
        "one completion"
    );
    assert_eq!(
        db.number("SELECT balance_fen FROM accounts WHERE preauth_fen = 0 AND balance_fen = 50000"),
        50_000,
        "taken once, the hold released"
    );
    assert_eq!(
        db.number(
            "SELECT COUNT(*)::BIGINT FROM transactions WHERE kind = 'pre-auth' AND completed = 1"
        ),
        1
    );
}

#[tokio::test]
async fn the_queue_holder_renews_its_lease_once_a_second_not_at_each_new_entry() {
    let Some(db) = Database::new("saf_lease_rate") else {
        return;
    };
    let dir = temp_dir("saf-lease-rate");
    // The issuer is down (nothing listens on its port): each sale is approved in stand-in,
    // and its advice queued, which wakes the store-and-forward worker.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = l.local_addr().unwrap().to_string();
    drop(l);
    let mut c = crate::issuer::config(&dir, vec![down], |i| {
        i.stand_in.enabled = true;
        i.stand_in.max_txn_fen = 50_000;
        i.stand_in.max_card_day_fen = 10_000_000;
    });
    c.journal.url = Some(db.url.clone());
    c.journal.node_id = 1;
    c.journal.readers = 2;
    let a = Proc(spawn_switch(&c, &dir.join("a.toml"), "info"));
    let mut t = Terminal::connect(a.addr, "10000540").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // Every write of the lease, counted by the database.
    crate::pg::execute(
        &db.url,
        "CREATE TABLE lease_writes (n BIGINT NOT NULL);
         INSERT INTO lease_writes VALUES (0);
         CREATE FUNCTION count_lease_write() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE lease_writes SET n = n + 1; RETURN NEW; END $$;
         CREATE TRIGGER count_lease_write AFTER INSERT OR UPDATE ON saf_leases
             FOR EACH ROW EXECUTE FUNCTION count_lease_write();",
    );
    let started = std::time::Instant::now();
    let sales = 40;
    for _ in 0..sales {
        assert_eq!(
            t.sale(crate::issuer::REMOTE, "111111", 100).await.rc(),
            "00",
            "approved in stand-in"
        );
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let writes = db.number("SELECT n FROM lease_writes");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{writes} lease writes in {seconds:.1} s for {sales} advices queued");
    assert_eq!(
        db.number("SELECT COUNT(*) FROM saf_queue WHERE kind = 'advice' AND state = 'pending'"),
        sales,
        "every advice queued"
    );
    assert!(
        (writes as f64) <= seconds.ceil() + 2.0,
        "{writes} lease writes in {seconds:.1} s for {sales} advices queued"
    );
    assert!(writes >= 1, "the lease is still renewed");
    kill(a);
}
