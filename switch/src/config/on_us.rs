//! `[issuer]`: the on-us issuer's PIN verification key and IBM 3624 parameters.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, is_digits, is_hex_key};

/// The on-us issuer's PVK.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnUsIssuerConfig {
    /// PVK sealed under the LMK.
    #[serde(default)]
    pub pvk_sealed: Option<String>,
    /// PVK in clear: test keys only.
    #[serde(default)]
    pub pvk_clear: Option<String>,
    /// PVK under a network HSM's LMK (key type `002`), with `[hsm] remote`.
    #[serde(default)]
    pub pvk_lmk: Option<String>,
    /// The PVK's check value, checked through the network HSM at start.
    #[serde(default)]
    pub pvk_check: Option<String>,
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

impl OnUsIssuerConfig {
    /// Checks the values.
    pub fn validate(&self, production: bool) -> Result<(), ConfigError> {
        match (&self.pvk_sealed, &self.pvk_clear) {
            (None, None) if self.pvk_lmk.is_some() => {}
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
            (None, Some(_)) if production => {
                return Err(invalid(
                    "issuer.pvk_clear",
                    "clear keys are test keys, refused in production",
                ));
            }
            _ => {}
        }
        if self.pvki > 9 {
            return Err(invalid("issuer.pvki", "must be 0 to 9"));
        }
        if !is_digits(&self.decimalisation, 16) {
            return Err(invalid("issuer.decimalisation", "must be 16 digits"));
        }
        Ok(())
    }
}
