//! POS terminal firmware, host side: what a Lakala-style CUP POS terminal does, and the
//! frames it sends.
//!
//! ```text
//! operator ─▶ Operators (00 supervisor, 99 administrator, 01-98 cashiers; PBKDF2 hashes)
//!   card, PIN ─▶ Terminal ─▶ [len][TPDU][header][MTI][bitmap][fields][MAC] ─TCP─▶ switch
//!                  │  PIN block: ISO 9564 format 0 under the TPK; MAC: UnionPay ECB under the TAK
//!                  ▼
//!                Store (SQLite): keys sealed under the device secret, batch, STAN, log,
//!                the pending reversal (persisted before a request that moves money is sent)
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`operators`] | operator numbers, password rules, lockout |
//! | [`store`] | persistent state, atomic |
//! | [`terminal`] | sign-on, sale, balance, void, refund, QR, settlement and batch upload, echo, reversal |
//! | [`receipt`] | receipts and the settlement slip |
//! | [`load`] | the load generator |
//!
//! It uses the codec and the HSM crate's pure primitives only; it never depends on the switch.

#![forbid(unsafe_code)]

pub mod cipher;
pub mod codes;
pub mod history;
pub mod load;
pub mod operators;
pub mod pos;
pub mod receipt;
pub mod store;
pub mod terminal;
pub mod tls;

pub use store::Store;
pub use terminal::{Answer, Card, PreauthRef, Terminal, TxnError};
