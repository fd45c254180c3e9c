//! The HSM's integration tests, one binary: published vectors, key rules, audit, limiter.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod cli;
mod key_cache;
mod keys;
mod payshield;
mod pins;
mod sm4;
mod vectors;

use hsm_sim::{Hsm, HsmConfig, Lmk};

/// An HSM on the demo LMK (test data).
pub fn test_hsm() -> Hsm {
    Hsm::new(
        Lmk::test(),
        &HsmConfig {
            allow_test_keys: true,
            ..HsmConfig::default()
        },
    )
    .unwrap()
}

/// Bytes from hex.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
