//! What the pipeline reads and changes between requests: the terminal directory, signed-on
//! sessions, on-us accounts and recent outcomes (for duplicate detection). All of it is
//! rebuilt from the journal at start; the journal is the record.

use std::sync::Arc;

use dashmap::DashMap;
use hsm_sim::SealedKey;

use crate::config::{CardStatus, CardType, PinMethod, TerminalMac};

/// A terminal ID, 8 ASCII characters.
pub type Tid = [u8; 8];

/// A range of terminals of one merchant, with its TMK sealed under the LMK.
#[derive(Clone, Debug)]
pub struct TerminalRange {
    /// First TID, as a number.
    pub from: u32,
    /// Last TID, as a number.
    pub to: u32,
    /// Merchant ID.
    pub mid: String,
    /// Merchant category code.
    pub mcc: String,
    /// Merchant name.
    pub merchant_name: String,
    /// MAC algorithm.
    pub mac: TerminalMac,
    /// TMK sealed under the LMK.
    pub tmk: SealedKey,
}

/// Terminals known to the switch.
#[derive(Clone, Debug, Default)]
pub struct TerminalDirectory {
    ranges: Vec<TerminalRange>,
}

impl TerminalDirectory {
    /// A directory of `ranges`.
    pub fn new(ranges: Vec<TerminalRange>) -> Self {
        Self { ranges }
    }

    /// The range holding `tid` (8 digits), if any.
    pub fn lookup(&self, tid: &str) -> Option<&TerminalRange> {
        if tid.len() != 8 || !tid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = tid.parse().ok()?;
        self.ranges.iter().find(|r| (r.from..=r.to).contains(&n))
    }
}

/// A signed-on terminal's working keys and batch.
#[derive(Clone, Debug)]
pub struct Session {
    /// Merchant ID at sign-on.
    pub mid: String,
    /// TPK sealed under the LMK.
    pub tpk: SealedKey,
    /// TAK sealed under the LMK.
    pub tak: SealedKey,
    /// Current batch number.
    pub batch: u32,
}

/// An on-us card account.
#[derive(Clone, Debug)]
pub struct Account {
    /// Masked PAN.
    pub masked_pan: String,
    /// Debit or credit.
    pub card_type: CardType,
    /// Status.
    pub status: CardStatus,
    /// Expiry YYMM.
    pub expiry: u32,
    /// How its PIN is verified, and the data to verify it with.
    pub pin_check: PinCheck,
    /// Debit: available balance. Credit: amount used.
    pub balance_fen: i64,
    /// Credit limit (credit cards).
    pub credit_limit_fen: i64,
    /// Consecutive wrong PINs.
    pub pin_tries: u8,
}

/// An account's PIN verification data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// IBM 3624 offset, one digit per PIN digit: every digit counts.
    Ibm3624 {
        /// The offset (4 to 12 digits).
        offset: String,
    },
    /// Visa PVV (legacy): the first four PIN digits only.
    VisaPvv {
        /// The PVV.
        pvv: String,
        /// PVK index.
        pvki: u8,
    },
}

impl PinCheck {
    /// The method, as configured and journalled.
    pub fn method(&self) -> PinMethod {
        match self {
            Self::Ibm3624 { .. } => PinMethod::Ibm3624,
            Self::VisaPvv { .. } => PinMethod::VisaPvv,
        }
    }

    /// The verification value as journalled (offset or PVV).
    pub fn value(&self) -> &str {
        match self {
            Self::Ibm3624 { offset } => offset,
            Self::VisaPvv { pvv, .. } => pvv,
        }
    }

    /// The PVK index as journalled (0 for IBM 3624, which has none).
    pub fn pvki(&self) -> u8 {
        match self {
            Self::Ibm3624 { .. } => 0,
            Self::VisaPvv { pvki, .. } => *pvki,
        }
    }

    /// From the journal's columns; an unknown method reads as a legacy PVV.
    pub fn from_record(method: &str, value: &str, pvki: u8) -> Self {
        match PinMethod::parse(method) {
            Some(PinMethod::Ibm3624) => Self::Ibm3624 {
                offset: value.to_owned(),
            },
            _ => Self::VisaPvv {
                pvv: value.to_owned(),
                pvki,
            },
        }
    }
}

impl Account {
    /// What the cardholder can spend now.
    pub fn available_fen(&self) -> i64 {
        match self.card_type {
            CardType::Debit => self.balance_fen,
            CardType::Credit => self.credit_limit_fen - self.balance_fen,
        }
    }
}

/// Identity of a request for duplicate detection: terminal, batch, trace number, MTI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnKey {
    /// Terminal.
    pub tid: Tid,
    /// Batch.
    pub batch: u32,
    /// STAN.
    pub stan: u32,
    /// Request MTI.
    pub mti: u16,
}

/// A request seen before: still being processed, or answered.
#[derive(Clone, Debug)]
pub enum Slot {
    /// Being processed; the outcome will be sent on the channel.
    InFlight {
        /// Keyed digest of the request.
        digest: [u8; 32],
        /// Receives the outcome.
        done: tokio::sync::watch::Receiver<Option<Recorded>>,
    },
    /// Answered.
    Done(Recorded),
    /// A reversal arrived before this (original) request: when it comes, it is refused.
    ReversedEarly,
}

/// What a financial transaction moved: the account and the fee channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinancialKind {
    /// Sale (card or QR).
    Sale,
    /// Void of a sale.
    Void,
    /// Refund of a sale.
    Refund,
}

/// An approved sale, void or refund: what settlement, later voids, refunds and reversals
/// need. Kept for the open and the last closed batch; older sales are read back from the
/// journal for refunds.
#[derive(Clone, Debug)]
pub struct Financial {
    /// Its kind.
    pub kind: FinancialKind,
    /// Terminal.
    pub tid: Tid,
    /// Batch.
    pub batch: u32,
    /// STAN.
    pub stan: u32,
    /// The account moved (keyed PAN or wallet hash).
    pub account: [u8; 32],
    /// Fee channel.
    pub channel: crate::fees::Channel,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Fee, fen.
    pub fee_fen: i64,
    /// Local date `YYYY-MM-DD`.
    pub local_date: String,
    /// For voids and refunds: the sale.
    pub original_rrn: Option<String>,
    /// Voided (sales).
    pub voided: bool,
    /// Reversed.
    pub reversed: bool,
    /// Refunded so far (sales), fen.
    pub refunded_fen: i64,
    /// For a transaction forwarded to a remote issuer: how the issuer knows it.
    pub upstream: Option<crate::issuer::message::UpstreamRef>,
}

/// What was answered to a request, enough to answer its retransmission the same way.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Keyed digest of the request.
    pub digest: [u8; 32],
    /// Response code.
    pub rc: String,
    /// RRN.
    pub rrn: String,
    /// Authorisation code.
    pub auth_code: Option<String>,
    /// Balance reported (balance inquiries).
    pub balance_fen: Option<i64>,
    /// Whether the reply carried a MAC.
    pub mac_reply: bool,
    /// Whether the reply asked the terminal to sign on again.
    pub sign_on_again: bool,
    /// Settlement: field 48 of the reply.
    pub field48: Option<String>,
}

/// The mutable state.
#[derive(Default)]
pub struct State {
    /// Signed-on terminals.
    pub sessions: DashMap<Tid, Arc<Session>>,
    /// On-us accounts by keyed PAN hash.
    pub accounts: DashMap<[u8; 32], Account>,
    /// Outcomes of the open batches' requests.
    pub recent: DashMap<TxnKey, Slot>,
    /// Approved sales, voids and refunds by RRN.
    pub financial: DashMap<String, Financial>,
    /// RRNs of approved 0200 requests (sales, voids) by terminal, batch and STAN.
    pub by_trace: DashMap<(Tid, u32, u32), String>,
    /// Transactions uploaded by terminals after unbalanced settlements.
    pub uploads: DashMap<(Tid, u32), Vec<crate::journal::UploadRecord>>,
    /// Stand-in approvals per card (keyed hash) and day (CST day number), fen.
    pub stand_in_day: DashMap<([u8; 32], i64), i64>,
}
