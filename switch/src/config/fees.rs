//! `[[fees]]` and `[fee_categories]`: MDR fee rules as written, parsed once into
//! [`FeeRule`]s, and the MCC → category table.
//!
//! ```toml
//! [fee_categories]          # MCC → category, before the built-in table
//! "5812" = "preferential"
//!
//! [[fees]]
//! category = "preferential" # default "standard"
//! channel = "debit"         # debit, credit, qr
//! rate = "0.38%"
//! cap_fen = 2000
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, TerminalRangeConfig, invalid, is_digits};
use crate::fees::{Channel, FeeCategory, FeeRule, category_of, parse_rate};

/// A fee rule as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeConfig {
    /// The merchants' category it prices.
    #[serde(default = "standard")]
    pub category: String,
    /// `debit`, `credit` or `qr`.
    pub channel: Channel,
    /// Rate as a percentage, e.g. `"0.50%"` (up to four decimals, 0–100 %).
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

fn standard() -> String {
    FeeCategory::STANDARD.into()
}

impl FeeConfig {
    /// The rule, its rate and category parsed; `Err` names the key and what is wrong.
    pub fn rule(&self) -> Result<FeeRule, (&'static str, String)> {
        Ok(FeeRule {
            category: FeeCategory::parse(&self.category).map_err(|m| ("category", m))?,
            channel: self.channel,
            rate_ppm: parse_rate(&self.rate).map_err(|m| ("rate", m))?,
            cap_fen: self.cap_fen,
            mcc: self.mcc.clone(),
            merchant: self.merchant.clone(),
        })
    }
}

/// The configuration's MCC → category table (checked by [`validate`]).
pub(super) fn category_table(table: &BTreeMap<String, String>) -> BTreeMap<String, FeeCategory> {
    table
        .iter()
        .filter_map(|(mcc, c)| Some((mcc.clone(), FeeCategory::parse(c).ok()?)))
        .collect()
}

/// A terminal range's merchant's category.
pub(super) fn category_of_range(
    t: &TerminalRangeConfig,
    table: &BTreeMap<String, FeeCategory>,
) -> FeeCategory {
    let explicit = t
        .fee_category
        .as_deref()
        .and_then(|c| FeeCategory::parse(c).ok());
    category_of(explicit.as_ref(), &t.mcc, table)
}

/// Checks every rule (rate, category, no two pricing the same transactions), the category
/// table, and that every merchant's category has a rule for every channel: a transaction
/// no rule prices would go through with no fee.
pub(super) fn validate(
    fees: &[FeeConfig],
    table: &BTreeMap<String, String>,
    terminals: &[TerminalRangeConfig],
) -> Result<(), ConfigError> {
    let mut rules = Vec::with_capacity(fees.len());
    for (i, f) in fees.iter().enumerate() {
        let rule = f
            .rule()
            .map_err(|(key, m)| invalid(format!("fees[{i}].{key}"), m))?;
        if let Some(m) = &f.mcc
            && !is_digits(m, 4)
        {
            return Err(invalid(format!("fees[{i}].mcc"), "must be 4 digits"));
        }
        if let Some(j) = rules.iter().position(|r: &FeeRule| r.overlaps(&rule)) {
            return Err(invalid(
                format!("fees[{i}]"),
                format!(
                    "prices the same transactions as fees[{j}] (category {}, channel {}, same mcc and merchant): keep one",
                    rule.category,
                    rule.channel.as_str()
                ),
            ));
        }
        rules.push(rule);
    }
    for (mcc, c) in table {
        if !is_digits(mcc, 4) {
            return Err(invalid(
                format!("fee_categories.{mcc:?}"),
                "the key must be an MCC (4 digits)",
            ));
        }
        let category =
            FeeCategory::parse(c).map_err(|m| invalid(format!("fee_categories.{mcc:?}"), m))?;
        if !rules.iter().any(|r| r.category == category) {
            return Err(invalid(
                format!("fee_categories.{mcc:?}"),
                format!("no [[fees]] rule has category \"{category}\""),
            ));
        }
    }
    let table = category_table(table);
    for (i, t) in terminals.iter().enumerate() {
        if let Some(c) = &t.fee_category {
            FeeCategory::parse(c)
                .map_err(|m| invalid(format!("terminals[{i}].fee_category"), m))?;
        }
        let category = category_of_range(t, &table);
        let why = if t.fee_category.is_some() {
            "its fee_category".to_owned()
        } else {
            format!("by its MCC {:?}", t.mcc)
        };
        for channel in [Channel::Debit, Channel::Credit, Channel::Qr] {
            let priced = rules
                .iter()
                .any(|r| r.prices(&category, channel, &t.mcc, &t.mid));
            if !priced {
                return Err(invalid(
                    format!("terminals[{i}]"),
                    format!(
                        "merchant {} is {category} ({why}), and no [[fees]] rule of category \"{category}\" prices its {} transactions: add one (a rate of \"0%\" if they are free), or set fee_category",
                        t.mid,
                        channel.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}
