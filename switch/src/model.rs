//! The payment vocabulary: the values that cross modules, as types. Text exists only at the
//! wire (the codec's fields) and in the journal's SQL mapping; everything in between holds
//! these.
//!
//! | type | what | on the wire / in the journal |
//! | --- | --- | --- |
//! | [`ResponseCode`] | field 39 | 2 characters (`00`, `A0`) |
//! | [`TxnKind`] | what a request is | classified from MTI, 3 and 60; `sale`, `qr-sale`, … |
//! | [`FinancialKind`] | what an approval moved | `sale`/`qr-sale`, `void`, `refund` |
//! | [`SafKind`], [`SafState`] | store-and-forward entries | `reversal`, `advice`; `armed`, `pending`, … |
//! | [`CardType`], [`CardStatus`], [`PinMethod`] | on-us accounts | `debit`, `active`, `ibm3624`, … |
//! | [`Tid`], [`Stan`], [`BatchNo`], [`Rrn`], [`AuthCode`] | identifiers | 41, 11, 60.2, 37, 38 |
//! | [`AccountId`] | an account's key | keyed hash of the PAN or wallet number, hex |
//! | [`TxnKey`] | duplicate detection | terminal, batch, trace, MTI |
//!
//! Response codes follow h2's `Reason`: a newtype over the wire bytes with named constants,
//! and a `Debug` that prints the name when it is known and the code otherwise; a code from
//! a peer that the switch does not know stays what it was.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Field 39: a response code, two ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode([u8; 2]);

macro_rules! response_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, )*) => {
        impl ResponseCode {
            $( $(#[$doc])* pub const $name: Self = Self(*$code); )*

            /// Every code the switch knows (and answers terminals with).
            pub const KNOWN: &'static [ResponseCode] = &[$(Self::$name,)*];

            /// The constant's name of a known code.
            pub fn name(self) -> Option<&'static str> {
                match &self.0 {
                    $( $code => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// The code as a metric label: a known code, or `other`.
            pub fn label(self) -> &'static str {
                match &self.0 {
                    $( $code => match std::str::from_utf8($code) {
                        Ok(s) => s,
                        Err(_) => "other",
                    }, )*
                    _ => "other",
                }
            }
        }
    };
}

response_codes! {
    /// Approved.
    APPROVED = b"00",
    /// Invalid merchant: the TID is known but belongs to another merchant.
    INVALID_MERCHANT = b"03",
    /// Do not honour (card blocked by the issuer, or an issuer code the terminal may not
    /// know).
    DO_NOT_HONOUR = b"05",
    /// Invalid transaction: a kind this switch does not serve, or a void or refund of a sale
    /// that no longer allows it.
    INVALID_TXN = b"12",
    /// Invalid amount: zero, over the acquirer's maximum, or another currency.
    INVALID_AMOUNT = b"13",
    /// Invalid card number: bad Luhn digit, unreadable, or no such on-us card.
    INVALID_CARD = b"14",
    /// No such issuer: no route for the BIN.
    NO_ISSUER = b"15",
    /// Original not found (void, refund).
    NO_ORIGINAL = b"25",
    /// Format error.
    FORMAT_ERROR = b"30",
    /// Expired card (issuer's code).
    EXPIRED_CARD_PICKUP = b"33",
    /// Lost card.
    LOST_CARD = b"41",
    /// Stolen card.
    STOLEN_CARD = b"43",
    /// Insufficient funds or credit.
    INSUFFICIENT_FUNDS = b"51",
    /// Expired card (or an expiry that does not match the card).
    EXPIRED_CARD = b"54",
    /// Wrong PIN (or no PIN where one is required).
    WRONG_PIN = b"55",
    /// Transaction not permitted to cardholder (issuer's code).
    NOT_PERMITTED_CARDHOLDER = b"57",
    /// Transaction not permitted to terminal (issuer's code).
    NOT_PERMITTED_TERMINAL = b"58",
    /// Refunds would exceed the original amount.
    EXCEEDS_ORIGINAL = b"61",
    /// Restricted card (issuer's code).
    RESTRICTED_CARD = b"62",
    /// Original amount mismatch (void).
    AMOUNT_MISMATCH = b"64",
    /// Exceeds withdrawal frequency limit (issuer's code).
    FREQUENCY_LIMIT = b"65",
    /// PIN tries exceeded.
    PIN_TRIES_EXCEEDED = b"75",
    /// Batch number does not match the terminal's open batch: sign on again.
    BATCH_MISMATCH = b"77",
    /// Issuer unavailable (every line down, its breaker open, or too many waiting).
    ISSUER_UNAVAILABLE = b"91",
    /// Duplicate: same terminal, batch, trace and MTI with different content.
    DUPLICATE = b"94",
    /// System malfunction (HSM or journal failure; nothing was applied).
    SYSTEM_ERROR = b"96",
    /// Terminal not registered.
    NO_TERMINAL = b"97",
    /// Issuer time-out: no reply in time; the request is reversed.
    ISSUER_TIMEOUT = b"98",
    /// MAC failure, or no working keys: sign on again.
    MAC_FAILURE = b"A0",
}

impl ResponseCode {
    /// Why, in words, for log lines: `pin_wrong`, `insufficient_funds`, `issuer_timeout`,
    /// ... (`approved` for `00`, `other` for a code the switch does not know).
    pub fn reason(self) -> &'static str {
        match &self.0 {
            b"00" => "approved",
            b"03" => "wrong_merchant",
            b"05" => "do_not_honour",
            b"12" => "invalid_transaction",
            b"13" => "invalid_amount",
            b"14" => "invalid_card",
            b"15" => "no_route",
            b"25" => "no_original",
            b"30" => "format_error",
            b"33" | b"54" => "expired_card",
            b"41" => "lost_card",
            b"43" => "stolen_card",
            b"51" => "insufficient_funds",
            b"55" => "pin_wrong",
            b"57" => "not_permitted_to_cardholder",
            b"58" => "not_permitted_to_terminal",
            b"61" => "exceeds_original",
            b"62" => "restricted_card",
            b"64" => "amount_mismatch",
            b"65" => "frequency_limit",
            b"75" => "pin_tries_exceeded",
            b"77" => "batch_mismatch",
            b"91" => "issuer_unavailable",
            b"94" => "duplicate",
            b"96" => "system_error",
            b"97" => "unknown_terminal",
            b"98" => "issuer_timeout",
            b"A0" => "mac_mismatch",
            _ => "other",
        }
    }

    /// A code as it came (field 39 of a reply, or the journal): two printable ASCII
    /// characters, else `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_graphic() && b.is_ascii_graphic() => Some(Self([*a, *b])),
            _ => None,
        }
    }

    /// The two characters.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored (the constants and `parse`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Approved (`00`).
    pub fn is_approved(self) -> bool {
        self == Self::APPROVED
    }

    /// An issuer's code as the terminal gets it: a code the switch knows as it is; any
    /// other is a decline the terminal may not know, answered do not honour (`05`).
    pub fn for_terminal(self) -> Self {
        if self.name().is_some() {
            self
        } else {
            Self::DO_NOT_HONOUR
        }
    }

    /// Whether a reply with this code asks the terminal to sign on again (header nibble 3).
    pub fn asks_sign_on(self) -> bool {
        matches!(self, Self::MAC_FAILURE | Self::BATCH_MISMATCH)
    }

    /// Whether a reply with this code carries a MAC: every answer to an authenticated
    /// request does; refusals before authentication, and answers that say the keys or
    /// batch are wrong, do not.
    pub fn answered_with_mac(self) -> bool {
        !matches!(
            self,
            Self::MAC_FAILURE
                | Self::BATCH_MISMATCH
                | Self::NO_TERMINAL
                | Self::INVALID_MERCHANT
                | Self::FORMAT_ERROR
                | Self::INVALID_TXN
        )
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "ResponseCode({n})"),
            None => write!(f, "ResponseCode({:?})", self.as_str()),
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request is (DESIGN.md §4), from its MTI, processing code (3) and field 60.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnKind {
    /// 0800, 60.3 = 001/003/004: sign-on, working keys in 62.
    SignOn,
    /// 0820: echo test.
    Echo,
    /// 0200, 3 = 000000, 60.1 = 22.
    Sale,
    /// 0200, 3 = 000000, 60.1 = 22, 22 = 03x: QR payment-code sale, code in 59.
    QrSale,
    /// 0200, 3 = 310000.
    Balance,
    /// 0200, 3 = 200000, 60.1 = 23.
    Void,
    /// 0220, 60.1 = 25.
    Refund,
    /// 0400.
    Reversal,
    /// 0500.
    Settle,
    /// 0320.
    BatchUpload,
    /// 0100, 3 = 030000, 60.1 = 10: pre-authorisation (预授权), a hold on the card.
    PreAuth,
    /// 0100, 3 = 200000, 60.1 = 11: pre-authorisation void (预授权撤销), the hold released.
    PreAuthVoid,
    /// 0200, 3 = 000000, 60.1 = 20: completion (预授权完成请求), the hold becomes a debit; also
    /// 0220, 60.1 = 24: the offline completion advice (预授权完成通知).
    Completion,
    /// 0200, 3 = 200000, 60.1 = 21: completion void (预授权完成撤销), the debit back and the
    /// hold again.
    CompletionVoid,
    /// 0220, 60.1 = 32: settlement adjustment (结算调整), a sale of the open batch takes a new
    /// amount.
    Adjustment,
    /// 0220, 60.1 = 34: tip adjustment (结算调整·追加小费), a tip added to a sale of the open
    /// batch.
    Tip,
}

impl TxnKind {
    /// Every kind.
    pub const ALL: [Self; 16] = [
        Self::SignOn,
        Self::Echo,
        Self::Sale,
        Self::QrSale,
        Self::Balance,
        Self::Void,
        Self::Refund,
        Self::Reversal,
        Self::Settle,
        Self::BatchUpload,
        Self::PreAuth,
        Self::PreAuthVoid,
        Self::Completion,
        Self::CompletionVoid,
        Self::Adjustment,
        Self::Tip,
    ];

    /// As in metrics, logs and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignOn => "sign-on",
            Self::Echo => "echo",
            Self::Sale => "sale",
            Self::QrSale => "qr-sale",
            Self::Balance => "balance",
            Self::Void => "void",
            Self::Refund => "refund",
            Self::Reversal => "reversal",
            Self::Settle => "settle",
            Self::BatchUpload => "batch-upload",
            Self::PreAuth => "pre-auth",
            Self::PreAuthVoid => "pre-auth-void",
            Self::Completion => "completion",
            Self::CompletionVoid => "completion-void",
            Self::Adjustment => "adjustment",
            Self::Tip => "tip",
        }
    }

    /// From the journal's text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A kind the switch does not serve, as labelled and journalled.
    pub const UNKNOWN: &'static str = "unknown";

    /// `kind.as_str()`, or `unknown`.
    pub fn label(kind: Option<Self>) -> &'static str {
        kind.map_or(Self::UNKNOWN, Self::as_str)
    }

    /// Whether requests of this kind carry a MAC in field 64 (sign-on and echo do not).
    pub fn needs_mac(self) -> bool {
        !matches!(self, Self::SignOn | Self::Echo)
    }

    /// Whether requests of this kind are subject to duplicate detection and journalled
    /// as transactions: everything but sign-on (one session row per terminal) and echo.
    pub fn is_tracked(kind: Option<Self>) -> bool {
        !matches!(kind, Some(Self::SignOn | Self::Echo))
    }

    /// Whether this kind moves money or holds it (and so needs an amount).
    pub fn moves_money(self) -> bool {
        matches!(
            self,
            Self::Sale
                | Self::QrSale
                | Self::Void
                | Self::Refund
                | Self::PreAuth
                | Self::PreAuthVoid
                | Self::Completion
                | Self::CompletionVoid
                | Self::Adjustment
                | Self::Tip
        )
    }

    /// What an approval of this kind moved, for the lifecycle: a completion is a sale (it
    /// counts in settlement and can be refunded), its void a void. Adjustments change the
    /// sale they name and are nothing of their own.
    pub fn financial(self) -> Option<FinancialKind> {
        match self {
            Self::Sale | Self::QrSale | Self::Completion => Some(FinancialKind::Sale),
            Self::Void | Self::CompletionVoid => Some(FinancialKind::Void),
            Self::Refund => Some(FinancialKind::Refund),
            Self::PreAuth => Some(FinancialKind::PreAuth),
            Self::PreAuthVoid => Some(FinancialKind::PreAuthVoid),
            _ => None,
        }
    }

    /// Whether the terminal's reversal (0400) names this kind's request with MTI 0100
    /// (pre-authorisation and its void) rather than 0200.
    pub fn is_authorisation(self) -> bool {
        matches!(self, Self::PreAuth | Self::PreAuthVoid)
    }
}

/// What an approved transaction moved, as voids, refunds, reversals and settlement see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinancialKind {
    /// A sale (card or QR): money from the cardholder.
    Sale,
    /// A void of a sale: the money back.
    Void,
    /// A refund of (part of) a sale.
    Refund,
    /// A pre-authorisation: a hold, nothing taken (not in settlement totals).
    PreAuth,
    /// A pre-authorisation's void: the hold released.
    PreAuthVoid,
}

impl FinancialKind {
    /// As a batch upload's item is journalled: `sale` (a void's sale) or `refund`.
    pub fn as_item(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::Sale | Self::Void => "sale",
            // Holds: never a batch's item.
            Self::PreAuth | Self::PreAuthVoid => "pre-auth",
        }
    }
}

/// What a store-and-forward entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SafKind {
    /// 0420, repeated as 0421.
    Reversal,
    /// 0220, repeated as 0221.
    Advice,
}

impl SafKind {
    /// As journalled.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reversal => "reversal",
            Self::Advice => "advice",
        }
    }

    /// From the journal's text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reversal" => Some(Self::Reversal),
            "advice" => Some(Self::Advice),
            _ => None,
        }
    }
}

/// Where a store-and-forward entry stands.
///
/// ```text
///  armed ──(request answered)──▶ cancelled
///    │ (no answer in time, or the answer not journalled)
///    ▼
///  pending ──0430/0230──▶ acknowledged
///    └──(max tries or expiry)──▶ expired (kept, settled by hand)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SafState {
    /// Written before its request left: sent if the request's outcome is unknown.
    Armed,
    /// To be sent until acknowledged.
    Pending,
    /// The issuer has it.
    Acknowledged,
    /// Given up after its tries or its age.
    Expired,
    /// Not needed (its request was answered).
    Cancelled,
}

impl SafState {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Armed,
        Self::Pending,
        Self::Acknowledged,
        Self::Expired,
        Self::Cancelled,
    ];

    /// As journalled.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Armed => "armed",
            Self::Pending => "pending",
            Self::Acknowledged => "acknowledged",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the journal's text (or an operator's `--state`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still to be sent: what a restart puts back on the queue.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Armed | Self::Pending)
    }
}

/// Card type, from the BIN table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardType {
    /// Debit card: money leaves the account at once.
    Debit,
    /// Credit card: the amount is drawn on a limit.
    Credit,
}

impl CardType {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
        }
    }

    /// From the stored text (anything but `credit` is a debit account).
    pub fn parse(s: &str) -> Self {
        if s == "credit" {
            Self::Credit
        } else {
            Self::Debit
        }
    }
}

/// Card status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardStatus {
    /// Usable.
    Active,
    /// Reported lost: 41.
    Lost,
    /// Reported stolen: 43.
    Stolen,
    /// Blocked by the issuer: 05.
    Blocked,
}

impl CardStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Lost => "lost",
            Self::Stolen => "stolen",
            Self::Blocked => "blocked",
        }
    }

    /// From the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "lost" => Self::Lost,
            "stolen" => Self::Stolen,
            "blocked" => Self::Blocked,
            _ => return None,
        })
    }

    /// The decline of a card in this status, `None` when it is usable.
    pub fn decline(self) -> Option<ResponseCode> {
        match self {
            Self::Active => None,
            Self::Lost => Some(ResponseCode::LOST_CARD),
            Self::Stolen => Some(ResponseCode::STOLEN_CARD),
            Self::Blocked => Some(ResponseCode::DO_NOT_HONOUR),
        }
    }
}

/// How an on-us PIN is verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinMethod {
    /// IBM 3624 with an offset as long as the PIN: every digit counts (default).
    #[default]
    Ibm3624,
    /// Visa PVV: LEGACY, checks the first four PIN digits only (a 6-digit PIN that differs
    /// in its last two digits is accepted). Only for card ranges whose issuer data is PVVs.
    VisaPvv,
}

impl PinMethod {
    /// As stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ibm3624 => "ibm3624",
            Self::VisaPvv => "visa-pvv",
        }
    }

    /// From the journal's text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ibm3624" => Some(Self::Ibm3624),
            "visa-pvv" => Some(Self::VisaPvv),
            _ => None,
        }
    }
}

/// Fixed-width ASCII identifiers (TID, RRN, auth code): kept inline, compared as bytes.
macro_rules! ascii_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// From text of exactly this width, printable ASCII; `None` otherwise.
            pub fn parse(s: &str) -> Option<Self> {
                let b: [u8; $len] = s.as_bytes().try_into().ok()?;
                b.iter().all(u8::is_ascii_graphic).then_some(Self(b))
            }

            /// The characters.
            pub fn as_str(&self) -> &str {
                // Only printable ASCII is ever stored (`parse` and the constructors).
                std::str::from_utf8(&self.0).unwrap_or("")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "({})"), self.as_str())
            }
        }
    };
}

ascii_id!(
    /// A terminal ID (field 41): 8 characters.
    Tid,
    8,
    "Tid"
);
ascii_id!(
    /// A retrieval reference number (field 37): 12 characters, unique across the switch.
    Rrn,
    12,
    "Rrn"
);
ascii_id!(
    /// An authorisation code (field 38): 6 characters.
    AuthCode,
    6,
    "AuthCode"
);

impl Rrn {
    /// The RRN of a sequence number reserved in the journal: its last 12 digits.
    pub fn from_sequence(n: u64) -> Self {
        let mut b = [b'0'; 12];
        let mut v = n % 1_000_000_000_000;
        for d in b.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Self(b)
    }

    /// The number, when the RRN is all digits (the switch's own always are).
    pub fn number(&self) -> Option<u64> {
        self.as_str().parse().ok()
    }
}

impl AuthCode {
    /// Six digits of `n` (its last six).
    pub fn digits(n: u32) -> Self {
        let mut b = [b'0'; 6];
        let mut v = n % 1_000_000;
        for d in b.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Self(b)
    }

    /// A stand-in approval's code: `S` and five digits of `n`.
    pub fn stand_in(n: u32) -> Self {
        let mut c = Self::digits(n % 100_000);
        c.0[0] = b'S';
        c
    }

    /// An issuer's code as the terminal's field 38: letters and digits only, cut or padded
    /// with spaces to 6; `None` when nothing is left.
    pub fn from_issuer(a: &str) -> Option<Self> {
        let mut b = [b' '; 6];
        let mut n = 0;
        for c in a.trim().bytes().filter(u8::is_ascii_alphanumeric).take(6) {
            b[n] = c;
            n += 1;
        }
        (n > 0).then_some(Self(b))
    }
}

impl Tid {
    /// The TID as a number, when it is 8 digits (terminal ranges are numeric).
    pub fn number(&self) -> Option<u32> {
        self.0
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| self.as_str().parse().ok())
            .flatten()
    }
}

/// A system trace audit number (field 11), 0 to 999999.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stan(pub u32);

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// A terminal's batch number (field 60.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchNo(pub u32);

impl BatchNo {
    /// The batch a new terminal starts with.
    pub const FIRST: Self = Self(1);

    /// The batch opened when this one settles.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for BatchNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// Lower-case hex of `bytes`, as the journal keeps digests: two table look-ups per byte
/// (`hex::encode` builds its string a `char` at a time, several times the instructions, on
/// every journalled request).
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Each byte's two digits stored in place: pushing them one by one checks the capacity
    // twice a byte, and a sale writes three 32-byte digests this way.
    let mut out = vec![0u8; bytes.len() * 2];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0F)];
    }
    // Only ASCII digits and letters were stored.
    String::from_utf8(out).unwrap_or_default()
}

/// An account's key: the HSM's keyed hash of the PAN (or the wallet number). The journal
/// keeps it as hex, never the PAN.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// As the journal keeps it.
    pub fn to_hex(&self) -> String {
        lower_hex(&self.0)
    }

    /// From the journal's hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(Self(b))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell accounts apart in a test failure.
        write!(f, "AccountId({}…)", hex::encode(&self.0[..4]))
    }
}

/// A request's identity for duplicate detection: terminal, batch, trace number, MTI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnKey {
    /// Terminal.
    pub tid: Tid,
    /// Batch.
    pub batch: BatchNo,
    /// Trace number.
    pub stan: Stan,
    /// Request MTI, as a number (200, 400, …).
    pub mti: u16,
}

impl TxnKey {
    /// The key of the financial request (0200) with this key's terminal, batch and trace:
    /// what a reversal (0400) names.
    pub fn original(self) -> Self {
        Self { mti: 200, ..self }
    }

    /// Whether a reversal (0400) can name a request with this key's MTI: a financial
    /// request (0200) or an authorisation (0100).
    pub fn reversible(self) -> bool {
        matches!(self.mti, 100 | 200)
    }
}

/// The Luhn check digit test of a card number (digits only).
pub fn luhn_ok(pan: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in pan.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_hex_is_hex_encode() {
        let mut bytes: Vec<u8> = (0..=255).collect();
        bytes.extend([0x00, 0xff, 0x0f, 0xf0, 0xa5]);
        for n in [0, 1, 2, 31, 32, bytes.len()] {
            assert_eq!(super::lower_hex(&bytes[..n]), hex::encode(&bytes[..n]));
        }
    }

    #[test]
    fn every_known_code_has_a_reason_in_words() {
        for code in ResponseCode::KNOWN {
            assert_ne!(code.reason(), "other", "{code}");
        }
        assert_eq!(ResponseCode::WRONG_PIN.reason(), "pin_wrong");
        assert_eq!(ResponseCode::parse("Z9").unwrap().reason(), "other");
    }

    use super::*;

    #[test]
    fn response_codes_print_their_names_and_keep_unknown_ones() {
        assert_eq!(
            format!("{:?}", ResponseCode::APPROVED),
            "ResponseCode(APPROVED)"
        );
        let n7 = ResponseCode::parse("N7").unwrap();
        assert_eq!(format!("{n7:?}"), "ResponseCode(\"N7\")");
        assert_eq!(n7.as_str(), "N7");
        assert_eq!(n7.label(), "other");
        assert_eq!(ResponseCode::MAC_FAILURE.label(), "A0");
        // Issuer codes the terminal may not know are do not honour.
        assert_eq!(n7.for_terminal(), ResponseCode::DO_NOT_HONOUR);
        assert_eq!(
            ResponseCode::parse("51").unwrap().for_terminal(),
            ResponseCode::INSUFFICIENT_FUNDS
        );
        assert_eq!(ResponseCode::parse(""), None);
        assert_eq!(ResponseCode::parse("0"), None);
        assert_eq!(ResponseCode::parse("0\n"), None);
        assert!(ResponseCode::KNOWN.iter().all(|c| c.name().is_some()));
    }

    #[test]
    fn kinds_and_states_round_trip_their_text() {
        for k in TxnKind::ALL {
            assert_eq!(TxnKind::parse(k.as_str()), Some(k));
        }
        for s in SafState::ALL {
            assert_eq!(SafState::parse(s.as_str()), Some(s));
        }
        assert_eq!(TxnKind::label(None), "unknown");
    }

    #[test]
    fn identifiers() {
        assert_eq!(Rrn::from_sequence(1_234).as_str(), "000000001234");
        assert_eq!(
            Rrn::from_sequence(1_000_000_000_001).as_str(),
            "000000000001"
        );
        assert_eq!(AuthCode::digits(1_234_567).as_str(), "234567");
        assert_eq!(AuthCode::stand_in(123_456).as_str(), "S23456");
        assert_eq!(AuthCode::from_issuer(" A1 ").unwrap().as_str(), "A1    ");
        assert_eq!(
            AuthCode::from_issuer("12345678").unwrap().as_str(),
            "123456"
        );
        assert_eq!(AuthCode::from_issuer("é-12").unwrap().as_str(), "12    ");
        assert_eq!(AuthCode::from_issuer("   "), None);
        assert_eq!(Tid::parse("10000001").unwrap().number(), Some(10_000_001));
        assert_eq!(Tid::parse("1000000A").unwrap().number(), None);
        assert_eq!(Tid::parse("1000001"), None);
        let id = AccountId([7; 32]);
        assert_eq!(AccountId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(Stan(42).to_string(), "000042");
    }
}
