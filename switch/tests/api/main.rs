//! The switch's integration tests, one binary: end to end over real TCP against the daemon
//! on 127.0.0.1:0 with its own journal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

mod bad_input;
mod cli;
mod client;
mod config;
mod e2e;
mod issuer;
mod lifecycle;
mod merchant_day;
mod restart;
mod secrets;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use switch::Config;

/// A fresh directory for one test's journal.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switch-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo configuration on ephemeral ports, journalling into `dir`, without the demo
/// remote issuer (the issuer tests add their own).
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::demo().unwrap();
    c.listen.terminals = "127.0.0.1:0".parse().unwrap();
    c.listen.metrics = "127.0.0.1:0".parse().unwrap();
    c.journal.path = dir.join("journal.db");
    c.issuers.clear();
    c.routes.retain(|r| r.route == "on-us");
    c
}

/// Starts a switch on `config`.
pub async fn start(config: Config) -> switch::Running {
    switch::start(config).await.expect("switch starts")
}
