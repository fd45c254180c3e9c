//! issuer-sim's integration tests, one binary: the `issuer-sim` command serving a real
//! switch, which a real terminal pays through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

mod cli;
