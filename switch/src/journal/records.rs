//! What the journal holds, as typed records, and the changes a commit makes ([`Op`]).
//! The SQL mapping (text columns, hex keys) lives with the backend; nothing here is text
//! that the switch reasons about.
//!
//! | record | table | key |
//! | --- | --- | --- |
//! | [`TxnRecord`] | `transactions` | `rrn`; unique `(tid, batch, stan, mti)` |
//! | [`AccountRecord`] | `accounts` | `pan_hash` |
//! | [`SessionRecord`] | `terminal_sessions` | `tid` |
//! | [`BatchRecord`] | `batches` | `(tid, batch)` |
//! | [`UploadRecord`] | `batch_uploads` | `(tid, batch, stan)` |
//! | [`SafRecord`] | `saf_queue` | `id` |
//!
//! Changes that rely on a condition say so ([`Op::MoveFunds`]'s required balance,
//! [`Op::Mark`]'s state of the original): the backend checks it inside the commit and fails
//! the whole commit when it does not hold, so a change is never applied to a state it was
//! not computed from.

use crate::hsm::KeyRef;
use codec::Mti;

use crate::clock::Timestamp;
use crate::fees::Channel;
use crate::model::{
    AccountId, AuthCode, BatchNo, CardStatus, CardType, FinancialKind, PinMethod, ResponseCode,
    Rrn, SafKind, SafState, Stan, Tid, TxnKind,
};

/// The card or wallet a transaction drew on, as the journal may hold it: masked, and the
/// keyed hash for look-ups. Never the PAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRef {
    /// Masked PAN (or payment code), `622202*********0017`.
    pub masked_pan: String,
    /// The account's key.
    pub account: AccountId,
    /// Fee channel: debit, credit or QR.
    pub channel: Channel,
}

/// How an issuer knows a transaction forwarded to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamRef {
    /// The issuer's configured name.
    pub issuer: String,
    /// Upstream MTI of the request.
    pub mti: Mti,
    /// Upstream STAN.
    pub stan: Stan,
    /// Field 7 of the request (MMDDhhmmss, UTC).
    pub time: String,
}

impl UpstreamRef {
    /// As the journal's `upstream` column holds it: `MTI:STAN:time`.
    pub fn to_column(&self) -> String {
        format!("{}:{}:{}", self.mti, self.stan, self.time)
    }

    /// From the journal's `issuer` and `upstream` columns.
    pub fn from_columns(issuer: &str, upstream: &str) -> Option<Self> {
        let mut p = upstream.split(':');
        let (mti, stan, time) = (p.next()?, p.next()?, p.next()?);
        Some(Self {
            issuer: issuer.to_owned(),
            mti: Mti::parse(mti)?,
            stan: Stan(stan.parse().ok()?),
            time: time.to_owned(),
        })
    }

    /// Field 90: original MTI (4), STAN (6), transmission time (10), acquirer id (11),
    /// forwarding institution (11, zeros).
    pub fn field90(&self, acquirer_id: &str) -> String {
        format!(
            "{}{}{}{:0>11}{:011}",
            self.mti, self.stan, self.time, acquirer_id, 0
        )
    }
}

/// One financial or management request and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    /// Retrieval reference number (unique).
    pub rrn: Rrn,
    /// When the switch received it (UTC; the journal also keeps its China Standard Time
    /// date, for reports and refunds).
    pub time: Timestamp,
    /// What it was; `None` for a kind the switch does not serve.
    pub kind: Option<TxnKind>,
    /// Request MTI.
    pub mti: Mti,
    /// Terminal.
    pub tid: Tid,
    /// Merchant.
    pub mid: String,
    /// Batch number (60.2).
    pub batch: BatchNo,
    /// System trace audit number (11).
    pub stan: Stan,
    /// Operator number (63).
    pub operator: Option<String>,
    /// The card or wallet.
    pub card: Option<CardRef>,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Fee in fen (negative: a refund giving part of a sale's fee back).
    pub fee_fen: i64,
    /// The rule the fee was charged by: the merchant's category, the channel, the rate and
    /// cap (a refund: its sale's); `None` for what carries no fee.
    pub fee_rule: Option<crate::fees::AppliedFee>,
    /// Currency code (49).
    pub currency: Option<String>,
    /// Response code (39).
    pub response_code: ResponseCode,
    /// Authorisation code (38).
    pub auth_code: Option<AuthCode>,
    /// Keyed digest of the request (duplicate detection).
    pub request_digest: [u8; 32],
    /// The transaction this one voids, refunds or reverses.
    pub original_rrn: Option<Rrn>,
    /// For a sale: voided since.
    pub voided: bool,
    /// For a sale or void: reversed since.
    pub reversed: bool,
    /// For a sale: amount refunded since, fen.
    pub refunded_fen: i64,
    /// For a pre-authorisation: completed since (by a completion that stands).
    pub completed: bool,
    /// For a pre-authorisation: its hold lapsed uncompleted.
    pub expired: bool,
    /// For a sale: tips added since by tip adjustments, fen (included in the amount).
    pub tip_fen: i64,
    /// For a forwarded transaction: how the issuer knows it.
    pub upstream: Option<UpstreamRef>,
    /// Approved by the switch standing in for an unreachable issuer.
    pub stand_in: bool,
    /// Settlement: field 48 of the reply (the reconciliation result), so that a
    /// retransmission, also after a restart, is answered alike.
    pub reply_48: Option<String>,
    /// Balance inquiry: the available balance answered (field 54), for the same reason.
    pub balance_fen: Option<i64>,
}

impl TxnRecord {
    /// The request's duplicate-detection key.
    pub fn key(&self) -> crate::model::TxnKey {
        crate::model::TxnKey {
            tid: self.tid,
            batch: self.batch,
            stan: self.stan,
            mti: self.mti.as_u16(),
        }
    }

    /// What an approval of it moved, `None` when it moved nothing (declined, or not a
    /// sale, void or refund).
    pub fn financial(&self) -> Option<FinancialKind> {
        self.response_code
            .is_approved()
            .then(|| self.kind.and_then(TxnKind::financial))
            .flatten()
    }
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
    /// The method.
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
    pub fn from_columns(method: &str, value: &str, pvki: u8) -> Self {
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

/// An on-us card or wallet account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// The key: keyed hash of the PAN.
    pub account: AccountId,
    /// Masked PAN.
    pub masked_pan: String,
    /// Debit or credit.
    pub card_type: CardType,
    /// Status.
    pub status: CardStatus,
    /// Expiry YYMM.
    pub expiry: u32,
    /// How the PIN is verified, and the data to verify it with.
    pub pin: PinCheck,
    /// Available balance (debit) or amount used (credit), fen.
    pub balance_fen: i64,
    /// Credit limit (credit cards), fen.
    pub credit_limit_fen: i64,
    /// Consecutive wrong PINs.
    pub pin_tries: u8,
    /// Held by open pre-authorisations, fen: not available, not taken either.
    pub preauth_fen: i64,
}

/// An operator's change to a card (`switch admin card …`): what changes, and who made it
/// when (written to `admin_log` with the change, in one transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardChange {
    /// The card.
    pub account: AccountId,
    /// Its masked PAN, for the log.
    pub masked_pan: String,
    /// `block`, `unblock`, `reset-pin-tries`, `set-limit`.
    pub action: &'static str,
    /// A new status.
    pub status: Option<CardStatus>,
    /// Wrong PINs back to 0.
    pub reset_pin_tries: bool,
    /// A new credit limit, fen.
    pub credit_limit_fen: Option<i64>,
    /// Who (the operator's name as the command gave it).
    pub who: String,
    /// When.
    pub at: Timestamp,
}

impl CardChange {
    /// What changed, for the log's `detail` column.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status={}", s.as_str()));
        }
        if self.reset_pin_tries {
            parts.push("pin_tries=0".to_owned());
        }
        if let Some(l) = self.credit_limit_fen {
            parts.push(format!("credit_limit_fen={l}"));
        }
        parts.join(" ")
    }
}

/// An operator's action other than a card change, as `admin_log` keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminEntry {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub who: String,
    /// What (`force-signon`, …).
    pub action: &'static str,
    /// On what: a TID, an issuer's name.
    pub subject: String,
}

/// A terminal's signed-on session: working keys sealed under the LMK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Terminal.
    pub tid: Tid,
    /// Which sign-on this is (random): a request's commit names the session it was
    /// authenticated under, and fails if a sign-on elsewhere replaced it since.
    pub session_id: i64,
    /// Merchant.
    pub mid: String,
    /// TPK sealed under the LMK.
    pub tpk: KeyRef,
    /// TAK sealed under the LMK.
    pub tak: KeyRef,
    /// Open batch.
    pub batch: BatchNo,
    /// Operator who signed on.
    pub operator: Option<String>,
    /// When.
    pub signed_on: Timestamp,
}

/// A batch's sales that stand (debit) and refunds (credit), as field 48 counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchTotals {
    /// Sales amount, fen.
    pub debit_fen: i64,
    /// Sales count.
    pub debit_count: i64,
    /// Refunds amount, fen.
    pub credit_fen: i64,
    /// Refunds count.
    pub credit_count: i64,
}

/// A settled batch: the terminal's totals and the switch's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// Terminal.
    pub tid: Tid,
    /// Merchant.
    pub mid: String,
    /// Batch number.
    pub batch: BatchNo,
    /// When.
    pub closed: Timestamp,
    /// What the terminal counted.
    pub terminal: BatchTotals,
    /// What the journal holds.
    pub switch: BatchTotals,
    /// Whether they agreed.
    pub balanced: bool,
}

/// One transaction of a batch, as a terminal uploads it and as the switch holds it: trace
/// number, amount, sale or refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// Trace number.
    pub stan: Stan,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Sale or refund.
    pub kind: FinancialKind,
}

/// One transaction a terminal uploaded after an unbalanced settlement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// Terminal.
    pub tid: Tid,
    /// Batch.
    pub batch: BatchNo,
    /// The transaction.
    pub item: BatchItem,
}

/// A reversal or advice in the store-and-forward queue. The message (it holds a PAN) is
/// sealed under the LMK; the other columns are safe to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafRecord {
    /// Unique id: the RRN of the request it follows, and what it is.
    pub id: String,
    /// Issuer name.
    pub issuer: String,
    /// Reversal or advice.
    pub kind: SafKind,
    /// First MTI (`0420`, `0220`); repeats go as `0421`, `0221`.
    pub mti: Mti,
    /// The transaction it reverses or advises.
    pub original_rrn: Option<Rrn>,
    /// When queued.
    pub created: Timestamp,
    /// Where it stands.
    pub state: SafState,
    /// Sends so far.
    pub tries: u32,
    /// Last change.
    pub updated: Timestamp,
    /// The message without MAC, sealed under the LMK.
    pub sealed: Vec<u8>,
    /// The switch process that queued it (its holder name in the node table): an armed
    /// entry is its own while it lives.
    pub owner: Option<String>,
}

/// What a node holding an issuer's queue reads of it each second (a journal shared by
/// nodes).
///
/// ```text
///  first read:  every pending and armed entry ─────────────┐  complete = true
///  then:        only entries written since the last read ──┤  complete = false
///               (any state: acknowledged or cancelled ones │  (`since` = the last
///               leave the queue)                           │   read's `next`)
///  each read:   the nodes alive now (whose armed entries ◀─┘
///               are theirs to send or cancel)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SafChanges {
    /// The entries, oldest first.
    pub records: Vec<SafRecord>,
    /// Whether `records` is the whole queue (else only what changed).
    pub complete: bool,
    /// Where the next read starts; `None`: the next read is a whole one.
    pub next: Option<u64>,
    /// The holders (process names) alive now; `None`: `records` holds only the armed
    /// entries of processes that are gone.
    pub alive: Option<Vec<String>>,
}

/// What a commit does to an account's consecutive wrong PINs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinTries {
    /// Left as they are.
    Unchanged,
    /// One more wrong PIN.
    Failed,
    /// A PIN verified: back to zero.
    Reset,
}

/// A change to an earlier transaction, and the state it needs: the commit fails if the
/// original is not in that state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A sale voided: it must be approved, not voided, reversed or refunded.
    Void,
    /// A void reversed: its sale stands again; the sale must be voided.
    Unvoid,
    /// Reversed: it must not be reversed already.
    Reverse,
    /// Part of a sale refunded: it must not be voided or reversed, and the refunds must
    /// not add up to more than the sale.
    Refund {
        /// The amount this refund gives back, fen.
        amount_fen: i64,
    },
    /// A pre-authorisation completed: it must be approved and open (not voided, reversed,
    /// completed or expired).
    Complete,
    /// A completion voided or reversed: its pre-authorisation is open again; it must be
    /// completed.
    Uncomplete,
    /// A pre-authorisation's hold lapsed: it must be open.
    Expire,
    /// A sale's amount adjusted (settlement or tip adjustment): it must stand, unrefunded,
    /// with the amount the adjustment was computed from.
    Adjust {
        /// The amount it had.
        from_fen: i64,
        /// The amount it has now.
        to_fen: i64,
        /// Its fee now.
        fee_fen: i64,
        /// Its tips now.
        tip_fen: i64,
    },
}

impl Mark {
    /// As the log and the tests name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Void => "void",
            Self::Unvoid => "unvoid",
            Self::Reverse => "reverse",
            Self::Refund { .. } => "refund",
            Self::Complete => "complete",
            Self::Uncomplete => "uncomplete",
            Self::Expire => "expire",
            Self::Adjust { .. } => "adjust",
        }
    }
}

/// Which pre-authorisations a look-up wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreauthQuery {
    /// A card's approved pre-authorisations with this auth code (a completion or void
    /// names its pre-authorisation so).
    Card {
        /// The card.
        account: AccountId,
        /// Field 38 of the pre-authorisation's reply.
        auth_code: AuthCode,
    },
    /// Approved pre-authorisations still holding money made on or before this China
    /// Standard Time day (`YYYY-MM-DD`): the expiry job's work.
    OpenUntil(String),
    /// Every approved pre-authorisation still holding money (reports).
    Open,
}

/// A change to the journal; a commit applies its operations atomically.
#[derive(Clone, Debug)]
pub enum Op {
    /// Record a request and its outcome. Shared with the request's task, which keeps it
    /// for memory after the commit: no copy for the journal, and its text is freed by the
    /// thread that made it, not the writer's.
    Txn(std::sync::Arc<TxnRecord>),
    /// Create an account the journal does not hold yet (card file load); one it holds is
    /// left as it is (another node may have loaded it and moved its balance since).
    PutAccount(Box<AccountRecord>),
    /// Move an account's balance by a delta (concurrent moves commute) and count its PIN
    /// tries; with `require_available_fen`, only if that much is available before the move.
    MoveFunds {
        /// The account.
        account: AccountId,
        /// Added to the balance (debit) or to the amount used (credit).
        delta_fen: i64,
        /// What the PIN verification did to the tries.
        pin: PinTries,
        /// Added to what open pre-authorisations hold (never below zero).
        hold_delta_fen: i64,
        /// The available amount the move relies on.
        require_available_fen: Option<i64>,
        /// The PIN tries the verification relied on: fewer than this many wrong PINs.
        pin_tries_below: Option<u8>,
    },
    /// Replace an account's PIN verification data (from the card file).
    SetPinData {
        /// The account.
        account: AccountId,
        /// The new data.
        pin: PinCheck,
    },
    /// A sign-on: create a terminal's session, or replace its keys and id, keeping its open
    /// batch as the journal has it.
    PutSession(Box<SessionRecord>),
    /// A settlement: the terminal's open batch `batch` closes and the next opens; stale if
    /// the session or its batch changed since it was read.
    NextBatch {
        /// The terminal.
        tid: Tid,
        /// The session the settlement was authenticated under.
        session_id: i64,
        /// The batch that closes.
        batch: BatchNo,
    },
    /// Change an earlier transaction's state, if it is in the state the change needs.
    Mark {
        /// The transaction.
        rrn: Rrn,
        /// The change.
        mark: Mark,
    },
    /// Record a settled batch.
    CloseBatch(Box<BatchRecord>),
    /// Record one transaction of a batch upload.
    PutUpload(Box<UploadRecord>),
    /// Queue a reversal or advice (ignored if its id is queued already).
    PutSaf(Box<SafRecord>),
    /// The request was authenticated under this session, and (with `batch`) for its open
    /// batch: fails if a sign-on or a settlement elsewhere changed either since. It also
    /// keeps the session from changing until the commit ends.
    CheckSession {
        /// The terminal.
        tid: Tid,
        /// The session.
        session_id: i64,
        /// The open batch the request relied on.
        batch: Option<BatchNo>,
    },
    /// Serialises commits that name the same lock (the trace of a request and its
    /// reversal, a card's stand-in day), so that the conditions after it see each other's
    /// changes. Locks are taken in order, before anything else of the commit.
    Lock(LockKey),
    /// A condition the commit relies on: checked inside it, after its locks.
    Assert(Condition),
    /// Which of a trace's original (an approved 0200) and its reversal came first: the
    /// first to commit marks the trace, the other sees the mark (they wait for each other,
    /// at any node). An original finding its reversal first is stale
    /// ([`super::Stale::ReversedFirst`]); a reversal that found no original, finding one
    /// now, is stale too.
    Trace {
        /// Terminal.
        tid: Tid,
        /// Batch.
        batch: BatchNo,
        /// Trace.
        stan: Stan,
        /// Who marks: the original, or a reversal that found none.
        first: TraceFirst,
    },
    /// The key is being worked on (a forwarded request about to leave): fails as a
    /// duplicate if it is claimed already, by this node or another.
    Claim(crate::model::TxnKey),
    /// Change a queued entry's state and tries.
    UpdateSaf {
        /// The entry.
        id: String,
        /// New state.
        state: SafState,
        /// New count of sends, if it changed.
        tries: Option<u32>,
        /// When.
        updated: Timestamp,
        /// The state it must be in (an armed entry, still armed: no other node took it over
        /// since); stale otherwise.
        from: Option<SafState>,
    },
}

/// What a commit locks: a bucket of a hashed key (bounded, so the lock table stays small;
/// unrelated keys in one bucket only wait for each other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockKey(pub i64);

impl LockKey {
    /// Buckets there are.
    pub const BUCKETS: u64 = 65_536;

    /// The bucket of `parts`.
    pub fn of(parts: &[&[u8]]) -> Self {
        // FNV-1a: stable across processes and nodes (they must agree on the bucket).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for p in parts {
            for b in p.iter().chain(b"|") {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Self((h % Self::BUCKETS) as i64)
    }

    /// A card's stand-in approvals of one day.
    pub fn stand_in(account: &AccountId, date: &str) -> Self {
        Self::of(&[b"stand-in", &account.0, date.as_bytes()])
    }
}

/// Who marks a trace first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFirst {
    /// The approved original.
    Original,
    /// A reversal that found no original.
    Reversal,
}

impl TraceFirst {
    /// As the journal's `traces.first` holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Reversal => "reversal",
        }
    }
}

/// A condition a commit relies on, checked inside it after its locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A card's stand-in approvals of a day (China Standard Time) that stand, plus this
    /// one, stay within the limit.
    StandInWithin {
        /// The card.
        account: AccountId,
        /// The day, `YYYY-MM-DD`.
        date: String,
        /// This approval, fen.
        amount_fen: i64,
        /// The limit, fen.
        limit_fen: i64,
    },
    /// A batch's totals are still the ones a settlement compared.
    BatchTotals {
        /// Terminal.
        tid: Tid,
        /// Batch.
        batch: BatchNo,
        /// What the settlement read.
        totals: BatchTotals,
    },
}

/// What the journal holds at start-up: what memory needs before the first request.
/// Transactions are not in it: they are read when needed, so a restart does not grow with
/// the open batches.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// All on-us accounts.
    pub accounts: Vec<AccountRecord>,
    /// All terminal sessions.
    pub sessions: Vec<SessionRecord>,
    /// Store-and-forward entries still to send (armed or pending).
    pub saf: Vec<SafRecord>,
    /// Stand-in approvals that stand, per card and day, for the last two days (China
    /// Standard Time): (account, CST day number, fen).
    pub stand_in: Vec<(AccountId, i64, i64)>,
}

/// Records for the backends' tests.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use crate::model::{BatchNo, ResponseCode, Stan, Tid, TxnKind};

    /// An approved sale of 1.00 yuan by terminal 10000001, batch 1, trace `n`, RRN `n`;
    /// no card.
    pub(crate) fn sale(n: u64) -> TxnRecord {
        TxnRecord {
            rrn: Rrn::from_sequence(n),
            time: Timestamp(1_700_000_000_000),
            kind: Some(TxnKind::Sale),
            mti: Mti::new(*b"0200").expect("mti"),
            tid: Tid::parse("10000001").expect("tid"),
            mid: "898100012340001".into(),
            batch: BatchNo(1),
            stan: Stan(u32::try_from(n).expect("trace")),
            operator: None,
            card: None,
            amount_fen: 100,
            fee_fen: 1,
            fee_rule: None,
            currency: Some("156".into()),
            response_code: ResponseCode::APPROVED,
            auth_code: None,
            request_digest: [0; 32],
            original_rrn: None,
            voided: false,
            reversed: false,
            refunded_fen: 0,
            completed: false,
            expired: false,
            tip_fen: 0,
            upstream: None,
            stand_in: false,
            reply_48: None,
            balance_fen: None,
        }
    }
}
