//! `[[cards]]` and `[[wallets]]`: the on-us card file. Both become accounts in the journal
//! the same way, through [`CardEntry`]; their own fields are checked next to their structs.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, invalid, is_digits};
use crate::model::{CardStatus, CardType, PinMethod};

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

/// A card or wallet of the configuration, as its journal account is made from it.
#[derive(Clone, Debug)]
pub struct CardEntry<'c> {
    /// `cards[i]` or `wallets[i]`, for messages.
    pub key: String,
    /// PAN or wallet number.
    pub number: &'c str,
    /// Debit or credit.
    pub card_type: CardType,
    /// Status.
    pub status: CardStatus,
    /// Expiry YYMM (wallets: `9912`).
    pub expiry: &'c str,
    /// Opening balance (debit) or amount used (credit, 0), fen.
    pub balance_fen: i64,
    /// Credit limit, fen (0 for debit accounts).
    pub credit_limit_fen: i64,
    /// How its PIN is verified.
    pub method: PinMethod,
    /// Clear PIN (test data).
    pub pin: Option<&'c str>,
    /// IBM 3624 offset.
    pub offset: Option<&'c str>,
    /// Visa PVV.
    pub pvv: Option<&'c str>,
}

impl Config {
    /// The card file: the configuration's cards, then its wallets (debit accounts that
    /// never expire).
    pub fn card_file(&self) -> impl Iterator<Item = CardEntry<'_>> {
        let cards = self.cards.iter().enumerate().map(|(i, c)| CardEntry {
            key: format!("cards[{i}]"),
            number: &c.pan,
            card_type: if c.credit_limit_fen.is_some() {
                CardType::Credit
            } else {
                CardType::Debit
            },
            status: c.status,
            expiry: &c.expiry,
            balance_fen: c.balance_fen.unwrap_or(0),
            credit_limit_fen: c.credit_limit_fen.unwrap_or(0),
            method: self.pin_method_of(&c.pan),
            pin: c.pin.as_deref(),
            offset: c.offset.as_deref(),
            pvv: c.pvv.as_deref(),
        });
        let wallets = self.wallets.iter().enumerate().map(|(i, w)| CardEntry {
            key: format!("wallets[{i}]"),
            number: &w.id,
            card_type: CardType::Debit,
            status: CardStatus::Active,
            expiry: "9912",
            balance_fen: w.balance_fen,
            credit_limit_fen: 0,
            method: w.pin_method,
            pin: w.pin.as_deref(),
            offset: w.offset.as_deref(),
            pvv: w.pvv.as_deref(),
        });
        cards.chain(wallets)
    }
}

impl CardConfig {
    fn validate(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if !(12..=19).contains(&self.pan.len()) || !self.pan.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(key("pan"), "must be 12 to 19 digits"));
        }
        if !crate::model::luhn_ok(&self.pan) {
            return Err(invalid(
                key("pan"),
                "fails the Luhn check (a mistyped number)",
            ));
        }
        if !is_digits(&self.expiry, 4) {
            return Err(invalid(key("expiry"), "must be YYMM"));
        }
        Ok(())
    }

    fn validate_amounts(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if self.balance_fen.is_some() == self.credit_limit_fen.is_some() {
            return Err(invalid(
                key("balance_fen"),
                "give exactly one of balance_fen (debit) and credit_limit_fen (credit)",
            ));
        }
        Ok(())
    }
}

impl WalletConfig {
    fn validate(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if !(12..=19).contains(&self.id.len()) || !self.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(key("id"), "must be 12 to 19 digits"));
        }
        if self.code_prefix.is_empty()
            || self.code_prefix.len() > 6
            || !self.code_prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(key("code_prefix"), "must be 1 to 6 digits"));
        }
        Ok(())
    }
}

impl CardEntry<'_> {
    /// Exactly one of a clear PIN (test data), an IBM 3624 offset and a Visa PVV, fitting
    /// the method.
    fn validate_pin_data(&self, production: bool) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{}.{k}", self.key);
        let what = if self.key.starts_with("wallets") {
            "payment passwords"
        } else {
            "card PINs"
        };
        let given = [
            self.pin.is_some(),
            self.offset.is_some(),
            self.pvv.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(invalid(
                key("pin"),
                "give exactly one of pin, offset and pvv",
            ));
        }
        let digits = |v: &str, r: std::ops::RangeInclusive<usize>| {
            r.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
        };
        if let Some(p) = self.pin {
            if production {
                return Err(invalid(
                    key("pin"),
                    format!(
                        "{what} in a file are test data, refused in production: give the offset"
                    ),
                ));
            }
            if !digits(p, 4..=12) {
                return Err(invalid(key("pin"), "must be 4 to 12 digits"));
            }
        }
        match (self.method, self.offset, self.pvv) {
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
}

/// Checks the card file: each card's and wallet's own fields, then its PIN data; on-us
/// accounts need the `[issuer]` PVK.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    for (i, c) in config.cards.iter().enumerate() {
        if let Some(j) = config.cards[..i].iter().position(|o| o.pan == c.pan) {
            return Err(invalid(
                format!("cards[{i}].pan"),
                format!("the same card as cards[{j}]"),
            ));
        }
    }
    for (i, w) in config.wallets.iter().enumerate() {
        if let Some(j) = config.wallets[..i].iter().position(|o| o.id == w.id) {
            return Err(invalid(
                format!("wallets[{i}].id"),
                format!("the same wallet as wallets[{j}]"),
            ));
        }
    }
    let cards = config.cards.len();
    for (i, entry) in config.card_file().enumerate() {
        let key = |k: &str| format!("{}.{k}", entry.key);
        match i.checked_sub(cards) {
            None => config.cards[i].validate(&key)?,
            Some(w) => config.wallets[w].validate(&key)?,
        }
        entry.validate_pin_data(config.production)?;
        if i < cards {
            config.cards[i].validate_amounts(&key)?;
        }
        if config.issuer.is_none() {
            let what = if i < cards { "on-us cards" } else { "wallets" };
            return Err(invalid("issuer", format!("{what} need an [issuer] PVK")));
        }
    }
    Ok(())
}
