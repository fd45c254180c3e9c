//! An ISO 8583 payment switch for CUP POS terminals.
//!
//! ```text
//! terminal ──TCP──▶ [len u16][TPDU 5][header 6][MTI][bitmap][fields…]
//!                      │ server: codec::framing (u16, max frame), limits, timeouts
//!                      ▼
//!                   frame ──▶ codec::decode (cup-pos) ──▶ Message (borrows the frame)
//!                      ▼
//!                   pipeline::Switch::serve, one step after another:
//!                     classify → terminal → MAC → duplicate → card → PIN (HSM)
//!                     → fee (MDR) → authorise (on-us, or forward to the issuer over ISO 87)
//!                     → journal (durable), then effects in memory → reply + MAC
//!                      ▼
//! terminal ◀──TCP── reply (TPDU swapped)
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`model`] | the payment vocabulary: response codes, kinds, identifiers |
//! | [`config`] | TOML configuration, one module per section, the built-in demo set |
//! | [`server`] | the terminal listener: framing, connection limits, shutdown |
//! | [`net`] | the network seams: listeners, dialers |
//! | [`pipeline`] | the routing core: one module per step, effects after commit |
//! | [`state`] | what memory keeps: accounts with holds, duplicates, originals, sessions |
//! | [`fees`] | MDR fee rules |
//! | [`hsm`] | the HSM as the pipeline calls it, timed |
//! | [`issuer`] | issuer links: lines, matching, the circuit breaker, ISO 87 messages |
//! | [`saf`] | store-and-forward of reversals and advices |
//! | [`journal`] | the system of record: records, group commit, SQLite |
//! | [`metrics`] | Prometheus metrics |
//! | [`fault_log`], [`security_log`] | error lines that repeat, at a bounded rate |
//! | [`daemon`] | start-up, restore, shutdown, the operators' HTTP, the journal watchdog |
//! | [`describe`] | decoding any frame for people (`switch describe`) |
//! | [`report`] | settlement and batch reports from the journal (`switch report`) |
//! | [`clock`] | UTC and China Standard Time; the wall clock as a seam |
//!
//! Modules depend one way: `model` ← `journal`, `state` ← `issuer` ← `saf` ← `pipeline`
//! ← `server`, `daemon`. None imports a module that imports it.

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod daemon;
pub mod describe;
pub mod fault_log;
pub mod fees;
pub mod hsm;
pub mod issuer;
pub mod journal;
pub mod log_sink;
pub mod log_text;
pub mod metrics;
pub mod model;
pub mod net;
pub mod pipeline;
pub mod process_metrics;
pub mod report;
pub mod saf;
pub mod security_log;
pub mod server;
pub mod state;
pub mod tls;

pub use config::Config;
pub use daemon::{Options, Running, start, start_with};
