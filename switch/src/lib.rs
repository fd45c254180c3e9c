//! An ISO 8583 payment switch for CUP POS terminals.
//!
//! ```text
//! terminal ──TCP──▶ [len u16][TPDU 5][header 6][MTI][bitmap][fields…]
//!                      │ server: LengthDelimitedCodec (u16, max frame), limits, timeouts
//!                      ▼
//!                   frame ──▶ codec::decode (cup-pos) ──▶ Message (borrows the frame)
//!                      ▼
//!                   pipeline::Switch::handle, one step after another:
//!                     classify → terminal → MAC → duplicate → card → PIN (HSM)
//!                     → fee (MDR) → authorise (on-us, or forward to the issuer over ISO 87)
//!                     → journal (durable) → reply + MAC
//!                      ▼
//! terminal ◀──TCP── reply (TPDU swapped)
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`config`] | TOML configuration, validation, the built-in demo set |
//! | [`server`] | TCP listener, framing, connection limits, shutdown |
//! | [`pipeline`] | the routing core and its steps, response codes |
//! | [`fees`] | MDR fee rules |
//! | [`issuer`] | issuer links, store-and-forward, stand-in, the issuer simulator |
//! | [`journal`] | durable record, group commit, SQLite backend |
//! | [`state`] | terminals, sessions, accounts, recent outcomes |
//! | [`metrics`] | Prometheus metrics |
//! | [`daemon`] | start-up and shutdown |
//! | [`describe`] | decoding any frame for people (`switch describe`) |
//! | [`report`] | settlement and batch reports from the journal (`switch report`) |

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod daemon;
pub mod describe;
pub mod fees;
pub mod issuer;
pub mod journal;
pub mod log_sink;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod security_log;
pub mod server;
pub mod state;

pub use config::Config;
pub use daemon::{Running, start};
