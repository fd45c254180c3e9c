//! terminal-fw's integration tests, one binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

mod cli;
mod crash;
mod e2e;
mod frames;
mod operators;
mod pos;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tfw-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A store with fast password hashing (tests only) and the demo terminal set up.
pub fn store(dir: &std::path::Path, tid: &str) -> terminal_fw::Store {
    let mut s = terminal_fw::Store::open(dir).unwrap();
    s.pbkdf2_iterations = 1_000;
    terminal_fw::Terminal::init(
        &mut s,
        tid,
        "898310048990001",
        "0123456789ABCDEFFEDCBA9876543210",
    )
    .unwrap();
    s
}

/// A switch on the demo configuration, ephemeral ports, journal in `dir`.
pub async fn switch(dir: &std::path::Path) -> switch::Running {
    let mut c = switch::Config::demo().unwrap();
    c.listen.terminals = "127.0.0.1:0".parse().unwrap();
    c.listen.metrics = "127.0.0.1:0".parse().unwrap();
    c.journal.path = dir.join("journal.db");
    switch::start(c).await.unwrap()
}
