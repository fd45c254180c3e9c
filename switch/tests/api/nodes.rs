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

/// Node `node_id` on `db`, as a process.
pub fn node(dir: &std::path::Path, db: &Database, node_id: u8) -> Spawned {
    let config = node_config(dir, &db.url, node_id);
    spawn_switch(&config, &dir.join(format!("node-{node_id}.toml")), "info")
}

fn kill(mut s: Spawned) {
    let _ = s.child.kill();
    let _ = s.child.wait();
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
