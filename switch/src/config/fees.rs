//! `[[fees]]`: MDR fee rules as written, parsed once into [`FeeRule`]s.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};
use crate::fees::{Channel, FeeRule, parse_rate};

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

impl FeeConfig {
    /// The rule, its rate parsed; `Err` names what is wrong with the rate.
    pub fn rule(&self) -> Result<FeeRule, String> {
        Ok(FeeRule {
            channel: self.channel,
            rate_ppm: parse_rate(&self.rate)?,
            cap_fen: self.cap_fen,
            mcc: self.mcc.clone(),
            merchant: self.merchant.clone(),
        })
    }
}

/// Checks every rule's rate.
pub(super) fn validate(fees: &[FeeConfig]) -> Result<(), ConfigError> {
    for (i, f) in fees.iter().enumerate() {
        f.rule()
            .map_err(|m| invalid(format!("fees[{i}].rate"), m))?;
    }
    Ok(())
}
