//! The HSM on the configured LMK, and every configured key opened under it: what
//! `check-config` checks and a start uses. Errors name the key (`terminals[0].tmk`).
//!
//! ```text
//!  lmk_file (or the demo LMK) ─▶ Hsm
//!  tmk_sealed / tmk_clear ─▶ SealedKey (usage checked; in production: not a published key)
//! ```

use anyhow::{Context, Result, anyhow, bail};
use hsm_sim::{Hsm, HsmConfig, Ibm3624, KeyAlgorithm, KeyUsage, Lmk, SealedKey};

use crate::config::Config;
use crate::pipeline::pin::PinVerification;
use crate::pipeline::terminal::TerminalRange;

/// A configured key, sealed under the LMK: given sealed (its record verified and its usage
/// checked) or, for tests, clear. A production switch refuses a published key however it
/// is given, by its check value.
fn seal(
    hsm: &Hsm,
    production: bool,
    usage: KeyUsage,
    sealed: Option<&str>,
    clear: Option<&str>,
    what: &str,
) -> Result<SealedKey> {
    let key = seal_any(hsm, usage, sealed, clear, what)?;
    if production || sealed.is_some() {
        let cv = hsm.check_value(&key).map_err(|e| anyhow!("{what}: {e}"))?;
        if let Some(name) = hsm_sim::published::lookup(&cv) {
            let shown = hex::encode_upper(cv.get(..3).unwrap_or_default());
            if production {
                bail!(
                    "{what}: a published key ({name}, check value {shown}): anyone can know it, refused in production"
                );
            }
            tracing::warn!(key = what, check_value = %shown, "a published key ({name}) is in use: test data only");
        }
    }
    Ok(key)
}

fn seal_any(
    hsm: &Hsm,
    usage: KeyUsage,
    sealed: Option<&str>,
    clear: Option<&str>,
    what: &str,
) -> Result<SealedKey> {
    match (sealed, clear) {
        (Some(hex), None) => {
            let k = SealedKey::from_hex(hex).map_err(|e| anyhow!("{what}: {e}"))?;
            if k.usage().ok() != Some(usage) {
                bail!("{what}: the sealed key is not a {usage}");
            }
            hsm.check_value(&k).map_err(|e| anyhow!("{what}: {e}"))?;
            Ok(k)
        }
        (None, Some(hex)) => {
            let bytes = hex::decode(hex).with_context(|| format!("{what}: not hex"))?;
            let alg = KeyAlgorithm::des_for_len(bytes.len()).map_err(|e| anyhow!("{what}: {e}"))?;
            hsm.import_clear_key(usage, alg, &bytes)
                .map_err(|e| anyhow!("{what}: {e}"))
        }
        _ => bail!("{what}: give exactly one of the sealed and clear forms"),
    }
}

/// The HSM on the configured LMK and every configured key, unsealed and checked.
pub struct Keys {
    /// The HSM.
    pub hsm: Hsm,
    /// Terminal ranges with their TMKs.
    pub ranges: Vec<TerminalRange>,
    /// The on-us PVK.
    pub pin_verification: Option<PinVerification>,
    /// Each remote issuer's zone PIN and MAC keys.
    pub zone: Vec<(SealedKey, SealedKey)>,
}

/// Loads the LMK and opens every key of `config` under it.
pub fn load(config: &Config) -> Result<Keys> {
    let lmk = match &config.hsm.lmk_file {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("hsm.lmk_file {}", path.display()))?,
            );
            Lmk::from_hex(&text).map_err(|_| {
                anyhow!(
                    "hsm.lmk_file {}: must hold 64 hex characters",
                    path.display()
                )
            })?
        }
        None => Lmk::test(),
    };
    let hsm = Hsm::new(
        lmk,
        &HsmConfig {
            allow_test_keys: !config.production,
            pin_failures_per_window: config.hsm.pin_failures_per_minute.unwrap_or(1_000),
            ..HsmConfig::default()
        },
    )
    .map_err(|e| anyhow!("hsm: {e}"))?;

    let mut ranges = Vec::new();
    for (i, t) in config.terminals.iter().enumerate() {
        let tmk = seal(
            &hsm,
            config.production,
            KeyUsage::Tmk,
            t.tmk_sealed.as_deref(),
            t.tmk_clear.as_deref(),
            &format!("terminals[{i}].tmk"),
        )?;
        let (from, to) = t
            .numbers()
            .ok_or_else(|| anyhow!("terminals[{i}]: tid_from and tid_to must be 8 digits"))?;
        ranges.push(TerminalRange {
            from,
            to,
            mid: t.mid.clone(),
            mcc: t.mcc.clone(),
            fee_category: config.fee_category_of(t),
            merchant_name: t.merchant_name.clone(),
            mac: t.mac,
            tmk,
        });
    }
    let pin_verification = match &config.issuer {
        Some(i) => Some(PinVerification {
            pvk: seal(
                &hsm,
                config.production,
                KeyUsage::Pvk,
                i.pvk_sealed.as_deref(),
                i.pvk_clear.as_deref(),
                "issuer.pvk",
            )?,
            pvki: i.pvki,
            ibm3624: Ibm3624::whole_pin(
                i.decimalisation
                    .as_bytes()
                    .try_into()
                    .map_err(|_| anyhow!("issuer.decimalisation: must be 16 digits"))?,
            ),
        }),
        None => None,
    };

    let mut zone = Vec::new();
    for (i, c) in config.issuers.iter().enumerate() {
        let zpk = seal(
            &hsm,
            config.production,
            KeyUsage::Zpk,
            c.zpk_sealed.as_deref(),
            c.zpk_clear.as_deref(),
            &format!("issuers[{i}].zpk"),
        )?;
        let zak = seal(
            &hsm,
            config.production,
            KeyUsage::Zak,
            c.zak_sealed.as_deref(),
            c.zak_clear.as_deref(),
            &format!("issuers[{i}].zak"),
        )?;
        zone.push((zpk, zak));
    }
    Ok(Keys {
        hsm,
        ranges,
        pin_verification,
        zone,
    })
}

/// Checks a configuration as a start would, without starting: the LMK opens every key,
/// usages fit, and (in production) no key is a published one.
pub fn check(config: &Config) -> Result<()> {
    load(config).map(drop)
}
