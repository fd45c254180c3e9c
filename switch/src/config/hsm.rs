//! `[hsm]`: the LMK and the HSM's own limits, or the network HSMs that hold the payment keys.
//!
//! ```text
//!  [hsm]                                   in process: keys sealed under lmk_file (or the
//!  lmk_file = "/etc/switch/lmk.hex"        demo LMK), *_sealed / *_clear in the sections
//!
//!  [hsm]                                   network: payShield host protocol; keys are LMK
//!  remote = ["10.0.0.5:1500", …]           cryptograms (*_lmk) with check values (*_check)
//!  header_len = 4                          verified through BU at start; lmk_file still
//!  timeout_ms = 2000                       protects the switch's own data (PAN tokens,
//!                                          queued messages)
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, invalid};
use crate::hsm::{LmkKey, LmkKeyType};

/// The HSM.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmConfig {
    /// LMK file (64 hex characters); absent: the demo LMK (test key).
    pub lmk_file: Option<PathBuf>,
    /// PIN verification failures per minute before the HSM refuses verification.
    pub pin_failures_per_minute: Option<u32>,
    /// Network HSMs speaking the payShield host protocol (`host:port`); commands go to the
    /// first that answers, failing over in turn.
    pub remote: Vec<String>,
    /// Message header length the network HSMs expect (default 4).
    pub header_len: Option<usize>,
    /// Milliseconds to wait for one command (default 2000).
    pub timeout_ms: Option<u64>,
    /// Idle connections kept per network HSM (default 128: one per request in flight, so
    /// a busy switch does not reconnect).
    pub pool: Option<usize>,
    /// Seconds between health checks (`NC`) (default 5).
    pub health_interval_secs: Option<u64>,
    /// The LMK check value the network HSMs must report (`NC`, 16 hex).
    pub lmk_check: Option<String>,
}

impl HsmConfig {
    /// Whether payment keys live on network HSMs.
    pub fn is_remote(&self) -> bool {
        !self.remote.is_empty()
    }

    /// The header length.
    pub fn header_len(&self) -> usize {
        self.header_len.unwrap_or(4)
    }
}

fn check_value_ok(cv: &str) -> bool {
    (6..=16).contains(&cv.len()) && cv.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One key's network-HSM form: present exactly when the HSM is remote, a valid cryptogram,
/// a well-formed check value.
fn key(
    remote: bool,
    name: &str,
    kind: LmkKeyType,
    lmk: Option<&String>,
    check: Option<&String>,
) -> Result<(), ConfigError> {
    let key_name = format!("{name}_lmk");
    match (remote, lmk) {
        (true, None) => Err(invalid(
            &key_name,
            "with [hsm] remote, keys are given as LMK cryptograms",
        )),
        (false, Some(_)) => Err(invalid(
            &key_name,
            "an LMK cryptogram needs [hsm] remote (a network HSM)",
        )),
        (true, Some(c)) if LmkKey::new(kind, c).is_none() => Err(invalid(
            &key_name,
            "must be 16 hex, or U/X and 32 hex, or T/Y and 48 hex",
        )),
        _ => match check {
            Some(cv) if !check_value_ok(cv) => Err(invalid(
                format!("{name}_check"),
                "must be 6 to 16 hex characters",
            )),
            _ => Ok(()),
        },
    }
}

/// Checks `[hsm]` and that every key is in the form the HSM takes.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let h = &config.hsm;
    let remote = h.is_remote();
    for (i, a) in h.remote.iter().enumerate() {
        if a.rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            return Err(invalid(format!("hsm.remote[{i}]"), "must be host:port"));
        }
    }
    if !(1..=9).contains(&h.header_len()) {
        return Err(invalid("hsm.header_len", "must be 1 to 9"));
    }
    if h.timeout_ms == Some(0) {
        return Err(invalid("hsm.timeout_ms", "must be above 0"));
    }
    if let Some(cv) = &h.lmk_check
        && !(cv.len() == 16 && cv.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(invalid("hsm.lmk_check", "must be 16 hex characters"));
    }
    if remote && config.production && h.lmk_check.is_none() {
        return Err(invalid(
            "hsm.lmk_check",
            "production names the LMK check value its network HSMs must report",
        ));
    }
    for (i, t) in config.terminals.iter().enumerate() {
        if remote && (t.tmk_sealed.is_some() || t.tmk_clear.is_some()) {
            return Err(invalid(
                format!("terminals[{i}].tmk_sealed"),
                "with [hsm] remote, give tmk_lmk instead",
            ));
        }
        key(
            remote,
            &format!("terminals[{i}].tmk"),
            LmkKeyType::Tpk,
            t.tmk_lmk.as_ref(),
            t.tmk_check.as_ref(),
        )?;
    }
    if let Some(iss) = &config.issuer {
        if remote && (iss.pvk_sealed.is_some() || iss.pvk_clear.is_some()) {
            return Err(invalid(
                "issuer.pvk_sealed",
                "with [hsm] remote, give pvk_lmk instead",
            ));
        }
        key(
            remote,
            "issuer.pvk",
            LmkKeyType::Tpk,
            iss.pvk_lmk.as_ref(),
            iss.pvk_check.as_ref(),
        )?;
    }
    for (i, c) in config.issuers.iter().enumerate() {
        let any_local = c.zpk_sealed.is_some()
            || c.zpk_clear.is_some()
            || c.zak_sealed.is_some()
            || c.zak_clear.is_some();
        if remote && any_local {
            return Err(invalid(
                format!("issuers[{i}].zpk_sealed"),
                "with [hsm] remote, give zpk_lmk and zak_lmk instead",
            ));
        }
        key(
            remote,
            &format!("issuers[{i}].zpk"),
            LmkKeyType::Zpk,
            c.zpk_lmk.as_ref(),
            c.zpk_check.as_ref(),
        )?;
        key(
            remote,
            &format!("issuers[{i}].zak"),
            LmkKeyType::Zak,
            c.zak_lmk.as_ref(),
            c.zak_check.as_ref(),
        )?;
    }
    if remote
        && let Some(i) = config
            .wallets
            .iter()
            .position(|w| w.pin_method == crate::model::PinMethod::VisaPvv)
    {
        return Err(invalid(
            format!("wallets[{i}].pin_method"),
            "with [hsm] remote a wallet uses an IBM 3624 offset: its payment password's block is formed with the payment code, and a payShield checks a PVV only against the block's account",
        ));
    }
    if remote
        && (config.cards.iter().any(|c| c.pin.is_some())
            || config.wallets.iter().any(|w| w.pin.is_some()))
    {
        return Err(invalid(
            "cards",
            "with [hsm] remote, cards and wallets give their offset (or pvv), not a clear PIN",
        ));
    }
    Ok(())
}
