//! Configuration: a TOML file, checked at start with messages that name the key at fault.
//! With no file, the built-in demo set (`switch/demo.toml`, test data) is used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fees::{Channel, FeeRule, parse_rate};

/// The demo configuration, compiled in: test keys, test cards.
pub const DEMO_TOML: &str = include_str!("../demo.toml");

/// The demo terminals' TMK (a published test key): refused in production.
pub const DEMO_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A production configuration refuses test keys (demo LMK, clear TMKs and PVKs, the
    /// demo TMK) and card PINs in the file.
    #[serde(default)]
    pub production: bool,
    /// Listening addresses.
    #[serde(default)]
    pub listen: Listen,
    /// Connection limits.
    #[serde(default)]
    pub limits: Limits,
    /// The journal.
    #[serde(default)]
    pub journal: JournalConfig,
    /// The HSM.
    #[serde(default)]
    pub hsm: HsmSection,
    /// Acquirer-wide rules.
    #[serde(default)]
    pub acquirer: Acquirer,
    /// Terminal ranges.
    #[serde(default)]
    pub terminals: Vec<TerminalRange>,
    /// BIN routes.
    #[serde(default)]
    pub routes: Vec<BinRoute>,
    /// MDR fee rules, first match wins.
    #[serde(default)]
    pub fees: Vec<FeeConfig>,
    /// The on-us issuer's PIN verification key.
    #[serde(default)]
    pub issuer: Option<IssuerKeys>,
    /// On-us cards loaded into the journal at first start.
    #[serde(default)]
    pub cards: Vec<CardConfig>,
    /// QR payment-code wallets loaded into the journal at first start.
    #[serde(default)]
    pub wallets: Vec<WalletConfig>,
    /// Remote issuers that BIN routes can forward to.
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
}

/// A remote issuer reached over one or more TCP lines (ISO 8583:1987).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Name used by routes, logs and metric labels.
    pub name: String,
    /// `host:port` of each line; requests go round-robin over the healthy ones.
    pub lines: Vec<String>,
    /// `iso87-binary` (2-byte length, default) or `iso87-ascii` (4-digit ASCII length).
    #[serde(default = "default_issuer_dialect")]
    pub dialect: String,
    /// Our acquiring institution id (field 32); default `acquirer.institution_id`.
    #[serde(default)]
    pub acquirer_id: Option<String>,
    /// Zone PIN key, sealed under the LMK (hex).
    #[serde(default)]
    pub zpk_sealed: Option<String>,
    /// Zone PIN key in clear (test keys only; refused in production).
    #[serde(default)]
    pub zpk_clear: Option<String>,
    /// Zone MAC key (X9.19), sealed under the LMK (hex).
    #[serde(default)]
    pub zak_sealed: Option<String>,
    /// Zone MAC key in clear (test keys only; refused in production).
    #[serde(default)]
    pub zak_clear: Option<String>,
    /// Milliseconds to wait for a reply before answering `98` and reversing.
    #[serde(default = "default_issuer_timeout")]
    pub timeout_ms: u64,
    /// Requests waiting for this issuer at most; beyond it new ones answer `91`.
    #[serde(default = "default_issuer_in_flight")]
    pub max_in_flight: usize,
    /// An idle line sends an 0800 echo (301) after this many seconds without traffic.
    #[serde(default = "default_echo_interval")]
    pub echo_interval_secs: u64,
    /// First reconnect delay, milliseconds (doubles per failure, jittered).
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, milliseconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Fields that, with the MTI class, match a reply to its request.
    #[serde(default = "default_match_fields")]
    pub match_fields: Vec<u8>,
    /// Consecutive time-outs that open the circuit breaker (0: never): while open, new
    /// requests are not sent and answer `91` (or go to stand-in) at once.
    #[serde(default = "default_breaker_timeouts")]
    pub breaker_timeouts: u32,
    /// Milliseconds the breaker stays open before requests are tried again.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Store-and-forward of reversals and advices.
    #[serde(default)]
    pub saf: SafConfig,
    /// Stand-in processing when the issuer is unreachable (off by default).
    #[serde(default)]
    pub stand_in: StandInConfig,
}

fn default_issuer_dialect() -> String {
    "iso87-binary".into()
}
fn default_issuer_timeout() -> u64 {
    5_000
}
fn default_issuer_in_flight() -> usize {
    512
}
fn default_echo_interval() -> u64 {
    30
}
fn default_reconnect_min() -> u64 {
    200
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_breaker_timeouts() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    10_000
}
fn default_match_fields() -> Vec<u8> {
    vec![41, 11]
}

/// Store-and-forward queue settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafConfig {
    /// Seconds before the first resend (0421/0221); doubles per try up to 64 times it.
    pub retry_secs: u64,
    /// Sends at most, then the entry expires (logged, counted, kept in the journal).
    pub max_tries: u32,
    /// Seconds after which an unacknowledged entry expires.
    pub expiry_secs: u64,
}

impl Default for SafConfig {
    fn default() -> Self {
        Self {
            retry_secs: 10,
            max_tries: 20,
            expiry_secs: 7 * 24 * 3600,
        }
    }
}

/// Stand-in processing limits.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandInConfig {
    /// Approve on the issuer's behalf while it is unreachable.
    pub enabled: bool,
    /// Largest stand-in sale, fen.
    pub max_txn_fen: u64,
    /// Most stand-in approvals per card per day (China Standard Time), fen.
    pub max_card_day_fen: u64,
}

/// A QR payment-code wallet (the demo's stand-in for a wallet provider).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Wallet account number (12 to 19 digits).
    pub id: String,
    /// Payment codes starting with this prefix draw on this wallet.
    pub code_prefix: String,
    /// Payment password in clear (test data only; refused in production).
    #[serde(default)]
    pub pin: Option<String>,
    /// IBM 3624 offset of the payment password (as many digits as the password).
    #[serde(default)]
    pub offset: Option<String>,
    /// Visa PVV of the payment password (with `pin_method = "visa-pvv"` only).
    #[serde(default)]
    pub pvv: Option<String>,
    /// How the payment password is verified.
    #[serde(default)]
    pub pin_method: PinMethod,
    /// Opening balance, fen.
    pub balance_fen: i64,
}

/// What happens to the MDR fee when a sale is refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefundFeePolicy {
    /// The merchant pays the sale's fee in full (default).
    Keep,
    /// The fee is returned in proportion to the amount refunded.
    Proportional,
}

/// Listening addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Terminal connections.
    pub terminals: SocketAddr,
    /// Metrics and health.
    pub metrics: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            terminals: SocketAddr::from(([127, 0, 0, 1], 8583)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9583)),
        }
    }
}

/// Connection limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests in progress per connection at most.
    pub max_in_flight: usize,
    /// Seconds without a frame before closing.
    pub idle_timeout_secs: u64,
    /// Seconds a started frame may take to finish.
    pub read_timeout_secs: u64,
    /// Largest frame accepted (after the 2-byte length).
    pub max_frame_bytes: usize,
    /// Open connections from one peer address at most (a concentrator or a NAT counts
    /// once per connection).
    pub max_connections_per_peer: usize,
    /// Seconds a new connection has to prove its terminal (a request with a valid MAC, or a
    /// sign-on answered) before it is closed; after that, `idle_timeout_secs` applies.
    pub auth_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_in_flight: 64,
            idle_timeout_secs: 300,
            read_timeout_secs: 10,
            max_frame_bytes: 2048,
            max_connections_per_peer: 256,
            auth_timeout_secs: 10,
        }
    }
}

/// The journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// SQLite database file.
    pub path: PathBuf,
    /// Most operations one commit (one fsync) covers.
    pub group_commit_max: usize,
    /// This node's number (1–99).
    pub node_id: u8,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./switch-data/journal.db"),
            group_commit_max: 512,
            node_id: 1,
        }
    }
}

/// The HSM.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmSection {
    /// LMK file (64 hex characters); absent: the demo LMK (test key).
    pub lmk_file: Option<PathBuf>,
    /// PIN verification failures per minute before the HSM refuses verification.
    pub pin_failures_per_minute: Option<u32>,
}

/// Acquirer-wide rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acquirer {
    /// Field 32 in replies.
    pub institution_id: String,
    /// Currency accepted in field 49.
    pub currency: String,
    /// Largest amount in fen; above it the answer is 13.
    pub max_amount_fen: u64,
    /// Consecutive wrong PINs before a card answers 75.
    pub pin_tries: u8,
    /// Days after a sale during which it can be refunded.
    pub refund_window_days: u32,
    /// The fee on refunds.
    pub refund_fee_policy: RefundFeePolicy,
    /// QR sales above this amount need the payment password (a PIN block).
    pub qr_password_free_limit_fen: u64,
}

impl Default for Acquirer {
    fn default() -> Self {
        Self {
            institution_id: "00000001".into(),
            currency: "156".into(),
            max_amount_fen: 10_000_000,
            pin_tries: 3,
            refund_window_days: 30,
            refund_fee_policy: RefundFeePolicy::Keep,
            qr_password_free_limit_fen: 100_000,
        }
    }
}

/// A MAC algorithm a terminal uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TerminalMac {
    /// UnionPay POS "ECB" MAC (default).
    #[serde(rename = "unionpay-ecb")]
    UnionpayEcb,
    /// ANSI X9.9.
    #[serde(rename = "x9.9")]
    X99,
}

/// A range of terminals of one merchant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalRange {
    /// First TID (8 digits).
    pub tid_from: String,
    /// Last TID.
    pub tid_to: String,
    /// Merchant ID (15 characters).
    pub mid: String,
    /// Merchant name.
    #[serde(default)]
    pub merchant_name: String,
    /// Merchant category code.
    #[serde(default)]
    pub mcc: String,
    /// MAC algorithm.
    #[serde(default = "default_mac")]
    pub mac: TerminalMac,
    /// The TMK sealed under the LMK (hex, from `hsm-sim key import --usage tmk`).
    #[serde(default)]
    pub tmk_sealed: Option<String>,
    /// The TMK in clear: test keys only, refused in production.
    #[serde(default)]
    pub tmk_clear: Option<String>,
}

fn default_mac() -> TerminalMac {
    TerminalMac::UnionpayEcb
}

/// Where a BIN goes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinRoute {
    /// BIN prefix (digits).
    pub prefix: String,
    /// `on-us` (authorised here).
    pub route: String,
    /// `debit` or `credit`.
    pub card_type: CardType,
    /// How on-us PINs of this range are verified.
    #[serde(default)]
    pub pin_method: PinMethod,
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
}

/// A fee rule as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeConfig {
    /// `debit`, `credit` or `qr`.
    pub channel: Channel,
    /// Rate as a percentage, e.g. `"0.50%"` (up to four decimals).
    pub rate: String,
    /// Cap in fen.
    #[serde(default)]
    pub cap_fen: Option<u64>,
    /// Only for this MCC.
    #[serde(default)]
    pub mcc: Option<String>,
    /// Only for this merchant.
    #[serde(default)]
    pub merchant: Option<String>,
}

/// The on-us issuer's PVK.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerKeys {
    /// PVK sealed under the LMK.
    #[serde(default)]
    pub pvk_sealed: Option<String>,
    /// PVK in clear: test keys only.
    #[serde(default)]
    pub pvk_clear: Option<String>,
    /// PIN verification key index (Visa PVV).
    #[serde(default = "one")]
    pub pvki: u8,
    /// IBM 3624 decimalisation table: 16 digits.
    #[serde(default = "standard_decimalisation")]
    pub decimalisation: String,
}

fn standard_decimalisation() -> String {
    "0123456789012345".into()
}

fn one() -> u8 {
    1
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
}

/// An on-us card as written (test data in the demo).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// Card number.
    pub pan: String,
    /// Clear PIN (test data only; refused in production).
    #[serde(default)]
    pub pin: Option<String>,
    /// IBM 3624 offset, as an issuer's card file gives it (as many digits as the PIN).
    #[serde(default)]
    pub offset: Option<String>,
    /// Visa PVV, for cards of a `pin_method = "visa-pvv"` (legacy) range.
    #[serde(default)]
    pub pvv: Option<String>,
    /// Expiry, YYMM.
    pub expiry: String,
    /// Opening balance for debit cards.
    #[serde(default)]
    pub balance_fen: Option<i64>,
    /// Limit for credit cards.
    #[serde(default)]
    pub credit_limit_fen: Option<i64>,
    /// Status.
    #[serde(default = "active")]
    pub status: CardStatus,
}

fn active() -> CardStatus {
    CardStatus::Active
}

/// A configuration problem: which key, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Cannot read the file.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown or mistyped key (the message gives line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, as `terminals[0].tid_from`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// A card's or wallet's PIN data: exactly one of a clear PIN (test data), an IBM 3624
/// offset and a Visa PVV, fitting the method.
fn check_pin_data(
    key: &dyn Fn(&str) -> String,
    method: PinMethod,
    pin: Option<&str>,
    offset: Option<&str>,
    pvv: Option<&str>,
    production: bool,
    what: &str,
) -> Result<(), ConfigError> {
    let given = [pin.is_some(), offset.is_some(), pvv.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(invalid(
            key("pin"),
            "give exactly one of pin, offset and pvv",
        ));
    }
    let digits = |v: &str, r: std::ops::RangeInclusive<usize>| {
        r.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(p) = pin {
        if production {
            return Err(invalid(
                key("pin"),
                format!("{what} in a file are test data, refused in production: give the offset"),
            ));
        }
        if !digits(p, 4..=12) {
            return Err(invalid(key("pin"), "must be 4 to 12 digits"));
        }
    }
    match (method, offset, pvv) {
        (PinMethod::Ibm3624, _, Some(_)) => Err(invalid(
            key("pvv"),
            "a Visa PVV checks 4 digits only: this range verifies IBM 3624 offsets (set pin_method = \"visa-pvv\" on a legacy range)",
        )),
        (PinMethod::VisaPvv, Some(_), _) => Err(invalid(
            key("offset"),
            "this range's pin_method is visa-pvv: give the pvv",
        )),
        (_, Some(o), _) if !digits(o, 4..=12) => Err(invalid(
            key("offset"),
            "must be 4 to 12 digits (one per PIN digit)",
        )),
        (_, _, Some(v)) if !digits(v, 4..=4) => Err(invalid(key("pvv"), "must be 4 digits")),
        _ => Ok(()),
    }
}

fn is_hex_key(s: &str) -> bool {
    matches!(s.len(), 16 | 32 | 48) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Config {
    /// The built-in demo configuration (test data).
    pub fn demo() -> Result<Self, ConfigError> {
        Self::from_toml(DEMO_TOML, "built-in demo configuration")
    }

    /// Parses and validates TOML text; `origin` names it in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg = Self::parse(text, origin)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text without the checks of [`Config::validate`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg = Self::read(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a file without the checks of [`Config::validate`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Whether the configuration uses any test key (demo LMK, clear keys).
    pub fn uses_test_keys(&self) -> bool {
        self.hsm.lmk_file.is_none()
            || self.terminals.iter().any(|t| t.tmk_clear.is_some())
            || self.issuer.as_ref().is_some_and(|i| i.pvk_clear.is_some())
            || self.cards.iter().any(|c| c.pin.is_some())
            || self.wallets.iter().any(|w| w.pin.is_some())
            || self
                .issuers
                .iter()
                .any(|i| i.zpk_clear.is_some() || i.zak_clear.is_some())
    }

    /// Checks everything that parsing cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_connections == 0 || l.max_in_flight == 0 {
            return Err(invalid(
                "limits",
                "max_connections and max_in_flight must be above 0",
            ));
        }
        if !(64..=65_535).contains(&l.max_frame_bytes) {
            return Err(invalid(
                "limits.max_frame_bytes",
                "must be 64 to 65535 (the length prefix is 2 bytes)",
            ));
        }
        if l.max_connections_per_peer == 0 {
            return Err(invalid(
                "limits.max_connections_per_peer",
                "must be above 0",
            ));
        }
        if l.idle_timeout_secs == 0 || l.read_timeout_secs == 0 || l.auth_timeout_secs == 0 {
            return Err(invalid("limits", "timeouts must be at least 1 second"));
        }
        if !(1..=99).contains(&self.journal.node_id) {
            return Err(invalid("journal.node_id", "must be 1 to 99"));
        }
        if self.journal.group_commit_max == 0 {
            return Err(invalid("journal.group_commit_max", "must be above 0"));
        }
        let a = &self.acquirer;
        if a.institution_id.is_empty()
            || a.institution_id.len() > 11
            || !a.institution_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid("acquirer.institution_id", "must be 1 to 11 digits"));
        }
        if !is_digits(&a.currency, 3) {
            return Err(invalid(
                "acquirer.currency",
                "must be a 3-digit ISO 4217 code",
            ));
        }
        if a.pin_tries == 0 {
            return Err(invalid("acquirer.pin_tries", "must be at least 1"));
        }
        if self.terminals.is_empty() {
            return Err(invalid(
                "terminals",
                "at least one terminal range is needed",
            ));
        }
        for (i, t) in self.terminals.iter().enumerate() {
            let key = |k: &str| format!("terminals[{i}].{k}");
            if !is_digits(&t.tid_from, 8) {
                return Err(invalid(key("tid_from"), "must be 8 digits"));
            }
            if !is_digits(&t.tid_to, 8) || t.tid_to < t.tid_from {
                return Err(invalid(
                    key("tid_to"),
                    "must be 8 digits, not below tid_from",
                ));
            }
            if t.mid.len() != 15 || !t.mid.is_ascii() {
                return Err(invalid(key("mid"), "must be 15 ASCII characters"));
            }
            match (&t.tmk_sealed, &t.tmk_clear) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        key("tmk_sealed"),
                        "give exactly one of tmk_sealed and tmk_clear",
                    ));
                }
                (None, Some(c)) => {
                    if !is_hex_key(c) {
                        return Err(invalid(
                            key("tmk_clear"),
                            "must be 16, 32 or 48 hex characters",
                        ));
                    }
                    if self.production {
                        return Err(invalid(
                            key("tmk_clear"),
                            "clear keys are test keys, refused in production: use tmk_sealed",
                        ));
                    }
                }
                (Some(_), None) => {}
            }
            for (j, other) in self.terminals.iter().enumerate().skip(i + 1) {
                if t.tid_from <= other.tid_to && other.tid_from <= t.tid_to {
                    return Err(invalid(key("tid_from"), format!("overlaps terminals[{j}]")));
                }
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.prefix.is_empty()
                || r.prefix.len() > 11
                || !r.prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(
                    format!("routes[{i}].prefix"),
                    "must be 1 to 11 digits",
                ));
            }
            if r.route != "on-us" && r.pin_method != PinMethod::default() {
                return Err(invalid(
                    format!("routes[{i}].pin_method"),
                    "only on-us ranges verify PINs here (a remote issuer checks its own)",
                ));
            }
            if r.route != "on-us" && !self.issuers.iter().any(|iss| iss.name == r.route) {
                return Err(invalid(
                    format!("routes[{i}].route"),
                    "must be \"on-us\" or the name of an [[issuers]] entry",
                ));
            }
        }
        self.validate_issuers()?;
        for (i, f) in self.fees.iter().enumerate() {
            parse_rate(&f.rate).map_err(|m| invalid(format!("fees[{i}].rate"), m))?;
        }
        if let Some(iss) = &self.issuer {
            match (&iss.pvk_sealed, &iss.pvk_clear) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        "issuer.pvk_sealed",
                        "give exactly one of pvk_sealed and pvk_clear",
                    ));
                }
                (None, Some(c)) if !is_hex_key(c) => {
                    return Err(invalid(
                        "issuer.pvk_clear",
                        "must be 16, 32 or 48 hex characters",
                    ));
                }
                (None, Some(_)) if self.production => {
                    return Err(invalid(
                        "issuer.pvk_clear",
                        "clear keys are test keys, refused in production",
                    ));
                }
                _ => {}
            }
            if iss.pvki > 9 {
                return Err(invalid("issuer.pvki", "must be 0 to 9"));
            }
            if !is_digits(&iss.decimalisation, 16) {
                return Err(invalid("issuer.decimalisation", "must be 16 digits"));
            }
        }
        for (i, c) in self.cards.iter().enumerate() {
            let key = |k: &str| format!("cards[{i}].{k}");
            if !(12..=19).contains(&c.pan.len()) || !c.pan.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(key("pan"), "must be 12 to 19 digits"));
            }
            if !is_digits(&c.expiry, 4) {
                return Err(invalid(key("expiry"), "must be YYMM"));
            }
            let method = self.pin_method_of(&c.pan);
            check_pin_data(
                &key,
                method,
                c.pin.as_deref(),
                c.offset.as_deref(),
                c.pvv.as_deref(),
                self.production,
                "card PINs",
            )?;
            if c.balance_fen.is_some() == c.credit_limit_fen.is_some() {
                return Err(invalid(
                    key("balance_fen"),
                    "give exactly one of balance_fen (debit) and credit_limit_fen (credit)",
                ));
            }
            if self.issuer.is_none() {
                return Err(invalid("issuer", "on-us cards need an [issuer] PVK"));
            }
        }
        for (i, w) in self.wallets.iter().enumerate() {
            let key = |k: &str| format!("wallets[{i}].{k}");
            if !(12..=19).contains(&w.id.len()) || !w.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(key("id"), "must be 12 to 19 digits"));
            }
            if w.code_prefix.is_empty()
                || w.code_prefix.len() > 6
                || !w.code_prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(key("code_prefix"), "must be 1 to 6 digits"));
            }
            check_pin_data(
                &key,
                w.pin_method,
                w.pin.as_deref(),
                w.offset.as_deref(),
                w.pvv.as_deref(),
                self.production,
                "payment passwords",
            )?;
            if self.issuer.is_none() {
                return Err(invalid("issuer", "wallets need an [issuer] PVK"));
            }
        }
        if self.production {
            if self.hsm.lmk_file.is_none() {
                return Err(invalid(
                    "hsm.lmk_file",
                    "production needs an LMK file; the demo LMK is a test key",
                ));
            }
            if self.terminals.iter().any(|t| {
                t.tmk_clear
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(DEMO_TMK))
            }) {
                return Err(invalid(
                    "terminals",
                    "the demo TMK is a test key, refused in production",
                ));
            }
        }
        Ok(())
    }

    /// The PIN method of the on-us range `pan` falls in (longest prefix), the default when
    /// none does.
    pub fn pin_method_of(&self, pan: &str) -> PinMethod {
        self.routes
            .iter()
            .filter(|r| r.route == "on-us" && pan.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len())
            .map_or_else(PinMethod::default, |r| r.pin_method)
    }

    /// Issuer links: names, lines, dialect, zone keys, time-outs, queue and stand-in.
    fn validate_issuers(&self) -> Result<(), ConfigError> {
        for (i, iss) in self.issuers.iter().enumerate() {
            let key = |k: &str| format!("issuers[{i}].{k}");
            if iss.name.is_empty()
                || iss.name == "on-us"
                || !iss
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    key("name"),
                    "letters, digits, - and _ only; not \"on-us\"",
                ));
            }
            if self.issuers[..i].iter().any(|o| o.name == iss.name) {
                return Err(invalid(key("name"), "used twice"));
            }
            if iss.lines.is_empty() {
                return Err(invalid(key("lines"), "at least one host:port"));
            }
            for (j, l) in iss.lines.iter().enumerate() {
                if !l.contains(':')
                    || l.rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                        .is_none()
                {
                    return Err(invalid(
                        format!("issuers[{i}].lines[{j}]"),
                        "must be host:port",
                    ));
                }
            }
            if !matches!(iss.dialect.as_str(), "iso87-binary" | "iso87-ascii") {
                return Err(invalid(
                    key("dialect"),
                    "must be iso87-binary or iso87-ascii",
                ));
            }
            if let Some(a) = &iss.acquirer_id
                && (a.is_empty() || a.len() > 11 || !a.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid(key("acquirer_id"), "must be 1 to 11 digits"));
            }
            for (name, sealed, clear) in [
                ("zpk", &iss.zpk_sealed, &iss.zpk_clear),
                ("zak", &iss.zak_sealed, &iss.zak_clear),
            ] {
                match (sealed, clear) {
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(invalid(
                            key(&format!("{name}_sealed")),
                            format!("give exactly one of {name}_sealed and {name}_clear"),
                        ));
                    }
                    (None, Some(c)) if !matches!(c.len(), 32 | 48) || !is_hex_key(c) => {
                        return Err(invalid(
                            key(&format!("{name}_clear")),
                            "must be 32 or 48 hex characters (double or triple length)",
                        ));
                    }
                    (None, Some(_)) if self.production => {
                        return Err(invalid(
                            key(&format!("{name}_clear")),
                            "clear keys are test keys, refused in production",
                        ));
                    }
                    _ => {}
                }
            }
            if iss.timeout_ms == 0 || iss.max_in_flight == 0 || iss.echo_interval_secs == 0 {
                return Err(invalid(
                    key("timeout_ms"),
                    "timeout_ms, max_in_flight and echo_interval_secs must be above 0",
                ));
            }
            if iss.reconnect_min_ms == 0 || iss.reconnect_max_ms < iss.reconnect_min_ms {
                return Err(invalid(
                    key("reconnect_min_ms"),
                    "must be above 0 and not above reconnect_max_ms",
                ));
            }
            if iss
                .match_fields
                .iter()
                .any(|f| !(2..=128).contains(f) || *f == 64)
            {
                return Err(invalid(
                    key("match_fields"),
                    "field numbers 2 to 128, not 64",
                ));
            }
            if iss.saf.max_tries == 0 || iss.saf.retry_secs == 0 || iss.saf.expiry_secs == 0 {
                return Err(invalid(
                    key("saf"),
                    "retry_secs, max_tries and expiry_secs must be above 0",
                ));
            }
            if iss.stand_in.enabled && iss.stand_in.max_txn_fen == 0 {
                return Err(invalid(
                    key("stand_in.max_txn_fen"),
                    "stand-in needs a per-transaction limit above 0",
                ));
            }
        }
        Ok(())
    }

    /// Fee rules with parsed rates (validated at load).
    pub fn fee_rules(&self) -> Vec<FeeRule> {
        self.fees
            .iter()
            .filter_map(|f| {
                Some(FeeRule {
                    channel: f.channel,
                    rate_ppm: parse_rate(&f.rate).ok()?,
                    cap_fen: f.cap_fen,
                    mcc: f.mcc.clone(),
                    merchant: f.merchant.clone(),
                })
            })
            .collect()
    }
}
