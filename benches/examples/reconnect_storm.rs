//! A reconnect storm: N terminals dial a running switch all at once (as after a network
//! blip), each sends an echo (0820) and waits for its answer. Reports how many got in and
//! were answered, how many were refused or timed out, and how long the last one took.
//!
//! `cargo run --release -p benches --example reconnect_storm -- ADDR N FIRST_TID`
//! (`benches/run-load.sh` runs it against a switch configured for enough terminals).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use terminal_fw::{Store, Terminal};

const TMK: &str = "0123456789ABCDEFFEDCBA9876543210"; // demo TMK, a test key

async fn dial(addr: std::net::SocketAddr, tid: u32) -> Result<Duration, String> {
    let began = Instant::now();
    let mut store = Store::in_memory().map_err(|e| e.to_string())?;
    Terminal::init(&mut store, &format!("{tid:08}"), "898310048990001", TMK)
        .map_err(|e| e.to_string())?;
    let mut t = Terminal::open(store, addr).map_err(|e| e.to_string())?;
    t.timeout = Duration::from_secs(30);
    match t.echo().await {
        Ok(rc) if rc == "00" => Ok(began.elapsed()),
        Ok(rc) => Err(format!("answered {rc}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: std::net::SocketAddr = args[1].parse().unwrap();
    let n: u32 = args[2].parse().unwrap();
    let first: u32 = args[3].parse().unwrap();
    let started = Instant::now();
    // Every dial at once: no chunks, no pacing.
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(dial(addr, first + i)))
        .collect();
    let mut answered = 0u32;
    let mut slowest = Duration::ZERO;
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(took) => {
                answered += 1;
                slowest = slowest.max(took);
            }
            Err(why) => *failures.entry(why).or_default() += 1,
        }
    }
    println!(
        "reconnect storm: {n} terminals at once, {answered} in and answered, the slowest after {:.2} s (all done in {:.2} s)",
        slowest.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for (why, count) in &failures {
        println!("  {count} failed: {why}");
    }
    if answered != n {
        std::process::exit(1);
    }
}
