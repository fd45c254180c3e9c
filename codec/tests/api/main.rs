//! The codec's integration tests, one binary: vectors, malformed input, properties, specs.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod fixtures;
mod jpos;
mod malformed;
mod props;
mod specs;
mod text;
mod vectors;
