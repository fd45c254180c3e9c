//! Configuration: a TOML file, checked at start with messages that name the key at fault.
//! With no file, the built-in demo set (`switch/demo.toml`, test data) is used.
//!
//! One module per section, each with its checks next to its struct; [`Config::validate`]
//! runs them in the order of the file. Values that the switch computes with (fee rates,
//! TID ranges, server limits) are parsed once into their runtime types.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fees::{FeeCategory, FeeRule};

mod acquirer;
mod cards;
mod fees;
mod hsm;
mod issuers;
mod journal;
mod limits;
mod listen;
mod log;
mod on_us;
mod routes;
mod terminals;
mod tls;

pub use acquirer::{AcquirerConfig, RefundFeePolicy};
pub use cards::{CardConfig, CardEntry, WalletConfig};
pub use fees::FeeConfig;
pub use hsm::HsmConfig;
pub use issuers::{CompletionMessage, IssuerConfig, IssuerTlsConfig, SafConfig, StandInConfig};
pub use journal::JournalConfig;
pub use limits::{LimitsConfig, ServerLimits};
pub use listen::ListenConfig;
pub use listen::parse_address;
pub use log::{LogConfig, Rotation};
pub use on_us::OnUsIssuerConfig;
pub use routes::{BinRouteConfig, ON_US};
pub use terminals::{TerminalAlgorithm, TerminalMac, TerminalRangeConfig};
pub use tls::TlsConfig;

pub use crate::model::{CardStatus, CardType, PinMethod};

/// The demo configuration, compiled in: test keys, test cards.
pub const DEMO_TOML: &str = include_str!("../../demo.toml");

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
    pub listen: ListenConfig,
    /// Connection and memory limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The journal.
    #[serde(default)]
    pub journal: JournalConfig,
    /// The HSM.
    #[serde(default)]
    pub hsm: HsmConfig,
    /// Certificates for the TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The log file.
    #[serde(default)]
    pub log: LogConfig,
    /// Acquirer-wide rules.
    #[serde(default)]
    pub acquirer: AcquirerConfig,
    /// Terminal ranges.
    #[serde(default)]
    pub terminals: Vec<TerminalRangeConfig>,
    /// BIN routes.
    #[serde(default)]
    pub routes: Vec<BinRouteConfig>,
    /// MDR fee rules: per category and channel, the narrowest (merchant, MCC) wins.
    #[serde(default)]
    pub fees: Vec<FeeConfig>,
    /// MCC → fee category, before the built-in table.
    #[serde(default)]
    pub fee_categories: std::collections::BTreeMap<String, String>,
    /// The on-us issuer's PIN verification key.
    #[serde(default)]
    pub issuer: Option<OnUsIssuerConfig>,
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
    /// A production configuration with test keys or test data: every one of them.
    #[error("{}", production_list(.0))]
    Production(Vec<(String, String)>),
}

fn production_list(problems: &[(String, String)]) -> String {
    let mut s = format!(
        "{} test key or test data use(s), refused in production:",
        problems.len()
    );
    for (key, message) in problems {
        s.push_str(&format!("\n  {key}: {message}"));
    }
    s
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

pub(crate) fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_hex_key(s: &str) -> bool {
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

    /// Every use of a test key or test data, as (key, what): what a production
    /// configuration must not have. All are reported together.
    pub fn production_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |k: String, m: &str| out.push((k, m.to_owned()));
        if self.hsm.lmk_file.is_none() {
            add("hsm.lmk_file".into(), "absent: the demo LMK is a test key");
        }
        if self.hsm.is_remote() && self.hsm.lmk_check.is_none() {
            add(
                "hsm.lmk_check".into(),
                "production names the LMK check value its network HSMs must report",
            );
        }
        for (i, t) in self.terminals.iter().enumerate() {
            if let Some(k) = &t.tmk_clear {
                let demo = k.eq_ignore_ascii_case(DEMO_TMK);
                add(
                    format!("terminals[{i}].tmk_clear"),
                    if demo {
                        "the demo TMK, a published test key"
                    } else {
                        "clear keys are test keys: use tmk_sealed"
                    },
                );
            }
        }
        if let Some(iss) = &self.issuer
            && iss.pvk_clear.is_some()
        {
            add(
                "issuer.pvk_clear".into(),
                "clear keys are test keys: use pvk_sealed",
            );
        }
        for (i, c) in self.issuers.iter().enumerate() {
            if c.zpk_clear.is_some() {
                add(
                    format!("issuers[{i}].zpk_clear"),
                    "clear keys are test keys: use zpk_sealed",
                );
            }
            if c.zak_clear.is_some() {
                add(
                    format!("issuers[{i}].zak_clear"),
                    "clear keys are test keys: use zak_sealed",
                );
            }
        }
        for (i, c) in self.cards.iter().enumerate() {
            if c.pin.is_some() {
                add(
                    format!("cards[{i}].pin"),
                    "card PINs in a file are test data: give the offset",
                );
            }
        }
        for (i, w) in self.wallets.iter().enumerate() {
            if w.pin.is_some() {
                add(
                    format!("wallets[{i}].pin"),
                    "payment passwords in a file are test data: give the offset",
                );
            }
        }
        out
    }

    /// Checks everything that parsing cannot, section by section; the first problem is
    /// the error, except that a production configuration's test keys and test data are
    /// reported all at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.production {
            let problems = self.production_problems();
            if !problems.is_empty() {
                return Err(ConfigError::Production(problems));
            }
        }
        self.limits.validate()?;
        self.listen.validate()?;
        if self.listen.terminals_tls.is_some() && self.tls.is_none() {
            return Err(invalid(
                "listen.terminals_tls",
                "a TLS listener needs [tls] cert_file and key_file",
            ));
        }
        if self.listen.metrics_tls && self.tls.is_none() {
            return Err(invalid(
                "listen.metrics_tls",
                "HTTPS needs [tls] cert_file and key_file",
            ));
        }
        self.log.validate()?;
        self.journal.validate()?;
        self.acquirer.validate()?;
        terminals::validate(&self.terminals, self.production)?;
        routes::validate(&self.routes, &self.issuers)?;
        issuers::validate(&self.issuers, self.production)?;
        fees::validate(&self.fees, &self.fee_categories, &self.terminals)?;
        if let Some(iss) = &self.issuer {
            iss.validate(self.production)?;
        }
        cards::validate(self)?;
        hsm::validate(self)?;
        if self.production && self.hsm.lmk_file.is_none() {
            return Err(invalid(
                "hsm.lmk_file",
                "production needs an LMK file; the demo LMK is a test key",
            ));
        }
        Ok(())
    }

    /// The PIN method of the on-us range `pan` falls in (longest prefix), the default when
    /// none does.
    pub fn pin_method_of(&self, pan: &str) -> PinMethod {
        routes::pin_method_of(&self.routes, pan)
    }

    /// Fee rules with parsed rates (validated at load).
    pub fn fee_rules(&self) -> Vec<FeeRule> {
        self.fees.iter().filter_map(|f| f.rule().ok()).collect()
    }

    /// The fee category of terminal range `t`'s merchant.
    pub fn fee_category_of(&self, t: &TerminalRangeConfig) -> FeeCategory {
        fees::category_of_range(t, &fees::category_table(&self.fee_categories))
    }
}
