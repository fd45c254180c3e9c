//! `[[terminals]]`: ranges of terminals of one merchant, and their TMKs.

use serde::{Deserialize, Serialize};

use super::{ConfigError, DEMO_TMK, invalid, is_digits, is_hex_key};

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

impl TerminalMac {
    /// The HSM's algorithm.
    pub fn algorithm(self) -> hsm_sim::MacAlgorithm {
        match self {
            Self::UnionpayEcb => hsm_sim::MacAlgorithm::UnionpayEcb,
            Self::X99 => hsm_sim::MacAlgorithm::X99,
        }
    }
}

/// The cipher a terminal's keys, PIN blocks and MACs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalAlgorithm {
    /// TDES (the default): double-length TPK, single-length TAK, ISO 9564 format 0.
    #[default]
    Tdes,
    /// SM4 (国密): SM4 TMK, TPK and TAK, the 16-byte SM4 PIN block in field 52, the SM4
    /// POS MAC.
    Sm4,
}

/// A range of terminals of one merchant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalRangeConfig {
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
    /// The merchant's fee category (`standard`, `preferential`, `public-welfare` or the
    /// acquirer's own); by default its MCC's (see [`crate::fees::category_of`]).
    #[serde(default)]
    pub fee_category: Option<String>,
    /// MAC algorithm.
    #[serde(default = "default_mac")]
    pub mac: TerminalMac,
    /// Cipher: `tdes` (default) or `sm4`.
    #[serde(default, skip_serializing_if = "is_tdes")]
    pub algorithm: TerminalAlgorithm,
    /// The TMK sealed under the LMK (hex, from `hsm-sim key import --usage tmk`).
    #[serde(default)]
    pub tmk_sealed: Option<String>,
    /// The TMK in clear: test keys only, refused in production.
    #[serde(default)]
    pub tmk_clear: Option<String>,
    /// The TMK under a network HSM's LMK (key type `002`), with `[hsm] remote`.
    #[serde(default)]
    pub tmk_lmk: Option<String>,
    /// The TMK's check value (6 to 16 hex), checked through the network HSM at start.
    #[serde(default)]
    pub tmk_check: Option<String>,
}

fn default_mac() -> TerminalMac {
    TerminalMac::UnionpayEcb
}

pub(super) fn is_tdes(a: &TerminalAlgorithm) -> bool {
    *a == TerminalAlgorithm::Tdes
}

impl TerminalRangeConfig {
    /// The first and last TID as numbers (checked by [`validate`]).
    pub fn numbers(&self) -> Option<(u32, u32)> {
        Some((self.tid_from.parse().ok()?, self.tid_to.parse().ok()?))
    }
}

/// Checks every range, and that no two overlap.
pub(super) fn validate(
    ranges: &[TerminalRangeConfig],
    production: bool,
) -> Result<(), ConfigError> {
    if ranges.is_empty() {
        return Err(invalid(
            "terminals",
            "at least one terminal range is needed",
        ));
    }
    for (i, t) in ranges.iter().enumerate() {
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
            (None, None) if t.tmk_lmk.is_some() => {}
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(
                    key("tmk_sealed"),
                    "give exactly one of tmk_sealed and tmk_clear",
                ));
            }
            (None, Some(c)) if t.algorithm == TerminalAlgorithm::Sm4 => {
                if c.len() != 32 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(key("tmk_clear"), "an SM4 TMK is 32 hex characters"));
                }
                if production {
                    return Err(invalid(
                        key("tmk_clear"),
                        "clear keys are test keys, refused in production: use tmk_sealed",
                    ));
                }
            }
            (None, Some(c)) => {
                if !is_hex_key(c) {
                    return Err(invalid(
                        key("tmk_clear"),
                        "must be 16, 32 or 48 hex characters",
                    ));
                }
                if production {
                    return Err(invalid(
                        key("tmk_clear"),
                        "clear keys are test keys, refused in production: use tmk_sealed",
                    ));
                }
            }
            (Some(_), None) => {}
        }
        if t.algorithm == TerminalAlgorithm::Sm4 {
            if t.mac != TerminalMac::UnionpayEcb {
                return Err(invalid(
                    key("mac"),
                    "SM4 terminals use the UnionPay POS MAC under SM4: leave mac as unionpay-ecb",
                ));
            }
            if t.tmk_lmk.is_some() {
                return Err(invalid(
                    key("algorithm"),
                    "SM4 terminals need the in-process HSM: the network HSM commands here are TDES",
                ));
            }
        }
        for (j, other) in ranges.iter().enumerate().skip(i + 1) {
            if t.tid_from <= other.tid_to && other.tid_from <= t.tid_to {
                return Err(invalid(key("tid_from"), format!("overlaps terminals[{j}]")));
            }
        }
    }
    if production
        && ranges.iter().any(|t| {
            t.tmk_clear
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(DEMO_TMK))
        })
    {
        return Err(invalid(
            "terminals",
            "the demo TMK is a test key, refused in production",
        ));
    }
    Ok(())
}
