//! Connection scale: hold N idle signed-on terminal connections to a running switch, report
//! the switch's resident memory, then check that sales still flow on a few of them.
//!
//! `cargo run --release -p benches --example conn_scale -- ADDR SWITCH_PID N FIRST_TID`
//! (`benches/run-load.sh` runs it against a switch configured for enough terminals).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use terminal_fw::{Card, Store, Terminal};

const TMK: &str = "0123456789ABCDEFFEDCBA9876543210"; // demo TMK, a test key

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn terminal(addr: std::net::SocketAddr, tid: u32) -> Terminal {
    let mut store = Store::in_memory().unwrap();
    Terminal::init(&mut store, &format!("{tid:08}"), "898310048990001", TMK).unwrap();
    let mut t = Terminal::open(store, addr).unwrap();
    t.timeout = Duration::from_secs(60);
    let r = t.sign_on("01").await.unwrap();
    assert_eq!(r.rc, "00", "sign-on of {tid}");
    t
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: std::net::SocketAddr = args[1].parse().unwrap();
    let pid: u32 = args[2].parse().unwrap();
    let n: u32 = args[3].parse().unwrap();
    let first: u32 = args[4].parse().unwrap();
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut held = Vec::with_capacity(n as usize);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| tokio::spawn(terminal(addr, first + i)))
            .collect();
        for t in batch {
            held.push(t.await.unwrap());
        }
    }
    let signed_on = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let card = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let mut ok = 0;
    let picks = [0usize, held.len() / 3, held.len() / 2, held.len() - 1];
    for &i in &picks {
        let r = held[i].sale(&card, "123456", 1, "01").await.unwrap();
        if r.rc == "00" {
            ok += 1;
        }
    }
    println!("connections held:      {}", held.len());
    println!("sign-ons took:         {:.1} s", signed_on.as_secs_f64());
    println!("switch RSS before:     {:.1} MiB", before as f64 / 1024.0);
    println!("switch RSS with all:   {:.1} MiB", after as f64 / 1024.0);
    println!(
        "per connection:        {:.1} KiB",
        (after.saturating_sub(before)) as f64 / f64::from(n.max(1))
    );
    println!(
        "sales approved on {} of the held connections: {ok}",
        picks.len()
    );
}
