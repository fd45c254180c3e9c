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
    /// PVV of the payment password.
    #[serde(default)]
    pub pvv: Option<String>,
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_in_flight: 64,
            idle_timeout_secs: 300,
            read_timeout_secs: 10,
            max_frame_bytes: 2048,
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
    /// PIN verification key index.
    #[serde(default = "one")]
    pub pvki: u8,
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
    /// PVV, as an issuer's card file gives it.
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
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Whether the configuration uses any test key (demo LMK, clear keys).
    pub fn uses_test_keys(&self) -> bool {
        self.hsm.lmk_file.is_none()
            || self.terminals.iter().any(|t| t.tmk_clear.is_some())
            || self.issuer.as_ref().is_some_and(|i| i.pvk_clear.is_some())
            || self.cards.iter().any(|c| c.pin.is_some())
            || self.wallets.iter().any(|w| w.pin.is_some())
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
        if l.idle_timeout_secs == 0 || l.read_timeout_secs == 0 {
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
            if r.route != "on-us" {
                return Err(invalid(
                    format!("routes[{i}].route"),
                    "only \"on-us\" routes exist in this version",
                ));
            }
        }
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
        }
        for (i, c) in self.cards.iter().enumerate() {
            let key = |k: &str| format!("cards[{i}].{k}");
            if !(12..=19).contains(&c.pan.len()) || !c.pan.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(key("pan"), "must be 12 to 19 digits"));
            }
            if !is_digits(&c.expiry, 4) {
                return Err(invalid(key("expiry"), "must be YYMM"));
            }
            match (&c.pin, &c.pvv) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(key("pin"), "give exactly one of pin and pvv"));
                }
                (Some(_), None) if self.production => {
                    return Err(invalid(
                        key("pin"),
                        "card PINs in a file are test data, refused in production: give the pvv",
                    ));
                }
                (Some(p), None)
                    if !(4..=12).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    return Err(invalid(key("pin"), "must be 4 to 12 digits"));
                }
                (None, Some(v)) if !is_digits(v, 4) => {
                    return Err(invalid(key("pvv"), "must be 4 digits"));
                }
                _ => {}
            }
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
            match (&w.pin, &w.pvv) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(key("pin"), "give exactly one of pin and pvv"));
                }
                (Some(_), None) if self.production => {
                    return Err(invalid(
                        key("pin"),
                        "payment passwords in a file are test data, refused in production",
                    ));
                }
                _ => {}
            }
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
