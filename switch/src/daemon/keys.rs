//! The HSM on the configured LMK, and every configured key opened under it: what
//! `check-config` checks and a start uses. Errors name the key (`terminals[0].tmk`).
//!
//! ```text
//!  lmk_file (or the demo LMK) ─▶ Hsm
//!  tmk_sealed / tmk_clear ─▶ SealedKey (usage checked; in production: not a published key)
//!  [hsm] remote:  tmk_lmk ─▶ KeyRef::Lmk; at start NC to each HSM (LMK check value), BU
//!                 for every key (its check value as configured; in production: not a
//!                 published key, not the test LMK)
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hsm_sim::{Hsm, HsmConfig, Ibm3624, KeyAlgorithm, KeyUsage, Lmk, SealedKey};

use crate::config::Config;
use crate::hsm::remote::RemoteConfig;
use crate::hsm::{KeyRef, LmkKey, LmkKeyType, MeteredHsm, PaymentHsm, RemoteHsm};
use crate::metrics::Metrics;
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
    published: &mut Vec<String>,
) -> Result<SealedKey> {
    seal_as(
        hsm, production, usage, false, sealed, clear, what, published,
    )
}

/// [`seal`] for a key that is SM4 (`sm4`) or of the DES family.
#[allow(clippy::too_many_arguments)]
fn seal_as(
    hsm: &Hsm,
    production: bool,
    usage: KeyUsage,
    sm4: bool,
    sealed: Option<&str>,
    clear: Option<&str>,
    what: &str,
    published: &mut Vec<String>,
) -> Result<SealedKey> {
    let key = seal_any(hsm, usage, sm4, sealed, clear, what)?;
    if production || sealed.is_some() {
        let cv = hsm.check_value(&key).map_err(|e| anyhow!("{what}: {e}"))?;
        if let Some(name) = hsm_sim::published::lookup(&cv) {
            let shown = hex::encode_upper(cv.get(..3).unwrap_or_default());
            if production {
                // Every such key is named before the start is refused.
                published.push(format!(
                    "{what}: a published key ({name}, check value {shown}): anyone can know it"
                ));
                return Ok(key);
            }
            tracing::warn!(key = what, check_value = %shown, "a published key ({name}) is in use: test data only");
        }
    }
    Ok(key)
}

fn seal_any(
    hsm: &Hsm,
    usage: KeyUsage,
    sm4: bool,
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
            if (k.algorithm().ok() == Some(KeyAlgorithm::Sm4)) != sm4 {
                bail!(
                    "{what}: the sealed key is {}, the range says {}",
                    k.algorithm().map_or("?".into(), |a| format!("{a:?}")),
                    if sm4 { "sm4" } else { "tdes" }
                );
            }
            hsm.check_value(&k).map_err(|e| anyhow!("{what}: {e}"))?;
            Ok(k)
        }
        (None, Some(hex)) => {
            let bytes = hex::decode(hex).with_context(|| format!("{what}: not hex"))?;
            let alg = if sm4 {
                KeyAlgorithm::Sm4
            } else {
                KeyAlgorithm::des_for_len(bytes.len()).map_err(|e| anyhow!("{what}: {e}"))?
            };
            hsm.import_clear_key(usage, alg, &bytes)
                .map_err(|e| anyhow!("{what}: {e}"))
        }
        _ => bail!("{what}: give exactly one of the sealed and clear forms"),
    }
}

/// The HSM on the configured LMK and every configured key, unsealed and checked.
pub struct Keys {
    /// The in-process HSM (all keys; with a network HSM, the switch's own data only).
    pub hsm: Hsm,
    /// The network HSMs, when configured, and what to check on them at start.
    pub remote: Option<RemoteKeys>,
    /// Terminal ranges with their TMKs.
    pub ranges: Vec<TerminalRange>,
    /// The on-us PVK.
    pub pin_verification: Option<PinVerification>,
    /// Each remote issuer's zone PIN and MAC keys.
    pub zone: Vec<(KeyRef, KeyRef)>,
}

/// The network HSMs and the keys to check on them.
pub struct RemoteKeys {
    /// How to reach them.
    pub config: RemoteConfig,
    /// The LMK check value they must report.
    pub lmk_check: Option<String>,
    /// Every key, named, with the check value configured for it.
    pub checks: Vec<(String, KeyRef, Option<String>)>,
    /// Whether this is a production configuration.
    pub production: bool,
}

/// A key given as an LMK cryptogram (validated with the configuration).
fn lmk_key(
    kind: LmkKeyType,
    text: Option<&String>,
    check: Option<&String>,
    what: &str,
    checks: &mut Vec<(String, KeyRef, Option<String>)>,
) -> Result<KeyRef> {
    let k = text
        .and_then(|t| LmkKey::new(kind, t))
        .map(KeyRef::Lmk)
        .ok_or_else(|| anyhow!("{what}_lmk: not an LMK cryptogram"))?;
    checks.push((what.to_owned(), k.clone(), check.cloned()));
    Ok(k)
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

    let remote = config.hsm.is_remote();
    let mut published = Vec::new();
    let mut checks = Vec::new();
    let mut ranges = Vec::new();
    for (i, t) in config.terminals.iter().enumerate() {
        let what = format!("terminals[{i}].tmk");
        let tmk = if remote {
            lmk_key(
                LmkKeyType::Tpk,
                t.tmk_lmk.as_ref(),
                t.tmk_check.as_ref(),
                &what,
                &mut checks,
            )?
        } else {
            seal_as(
                &hsm,
                config.production,
                KeyUsage::Tmk,
                t.algorithm == crate::config::TerminalAlgorithm::Sm4,
                t.tmk_sealed.as_deref(),
                t.tmk_clear.as_deref(),
                &what,
                &mut published,
            )?
            .into()
        };
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
            algorithm: t.algorithm,
            tmk,
        });
    }
    let pin_verification = match &config.issuer {
        Some(i) => Some(PinVerification {
            pvk: if remote {
                lmk_key(
                    LmkKeyType::Tpk,
                    i.pvk_lmk.as_ref(),
                    i.pvk_check.as_ref(),
                    "issuer.pvk",
                    &mut checks,
                )?
            } else {
                seal(
                    &hsm,
                    config.production,
                    KeyUsage::Pvk,
                    i.pvk_sealed.as_deref(),
                    i.pvk_clear.as_deref(),
                    "issuer.pvk",
                    &mut published,
                )?
                .into()
            },
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
        let (zpk_name, zak_name) = (format!("issuers[{i}].zpk"), format!("issuers[{i}].zak"));
        if remote {
            let zpk = lmk_key(
                LmkKeyType::Zpk,
                c.zpk_lmk.as_ref(),
                c.zpk_check.as_ref(),
                &zpk_name,
                &mut checks,
            )?;
            let zak = lmk_key(
                LmkKeyType::Zak,
                c.zak_lmk.as_ref(),
                c.zak_check.as_ref(),
                &zak_name,
                &mut checks,
            )?;
            zone.push((zpk, zak));
            continue;
        }
        let sm4 = c.algorithm == crate::config::TerminalAlgorithm::Sm4;
        let zpk = seal_as(
            &hsm,
            config.production,
            KeyUsage::Zpk,
            sm4,
            c.zpk_sealed.as_deref(),
            c.zpk_clear.as_deref(),
            &zpk_name,
            &mut published,
        )?;
        let zak = seal_as(
            &hsm,
            config.production,
            KeyUsage::Zak,
            sm4,
            c.zak_sealed.as_deref(),
            c.zak_clear.as_deref(),
            &zak_name,
            &mut published,
        )?;
        zone.push((zpk.into(), zak.into()));
    }
    if !published.is_empty() {
        bail!(
            "{} published key(s), refused in production:\n  {}",
            published.len(),
            published.join("\n  ")
        );
    }
    let remote = remote.then(|| RemoteKeys {
        config: RemoteConfig {
            addresses: config.hsm.remote.clone(),
            header_len: config.hsm.header_len(),
            timeout: Duration::from_millis(config.hsm.timeout_ms.unwrap_or(2_000)),
            pool: config.hsm.pool.unwrap_or(128),
            health_interval: Duration::from_secs(
                config.hsm.health_interval_secs.unwrap_or(5).max(1),
            ),
        },
        lmk_check: config.hsm.lmk_check.clone(),
        checks,
        production: config.production,
    });
    Ok(Keys {
        hsm,
        remote,
        ranges,
        pin_verification,
        zone,
    })
}

/// The HSM the pipeline uses: the in-process one, or the network HSMs after checking them:
/// at least one answers `NC` with the configured LMK check value (in production, not the
/// test LMK's), and every key's `BU` check value is the configured one (in production,
/// not a published key's). Starts the health checks.
pub async fn connect(
    hsm: Hsm,
    remote: Option<RemoteKeys>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<MeteredHsm>> {
    let local = Arc::new(hsm);
    let Some(r) = remote else {
        return Ok(Arc::new(MeteredHsm::new(local, Arc::clone(metrics))));
    };
    let net = Arc::new(RemoteHsm::new(r.config.clone(), metrics.hsm_remote.clone()));
    let test_lmk = hex::encode_upper(hsm_sim::payshield::VariantLmk::test().check_value());
    let mut answering = 0;
    for (addr, lmk) in net.check().await {
        let Some(lmk) = lmk else {
            tracing::warn!(hsm = %addr, "HSM does not answer NC at start");
            continue;
        };
        if let Some(want) = &r.lmk_check
            && !lmk.eq_ignore_ascii_case(want)
        {
            bail!("hsm.remote {addr}: its LMK check value is {lmk}, hsm.lmk_check says {want}");
        }
        if lmk == test_lmk {
            if r.production {
                bail!("hsm.remote {addr}: runs on the payShield TEST LMK, refused in production");
            }
            tracing::warn!(hsm = %addr, "network HSM runs on the payShield TEST LMK: test keys only");
        }
        answering += 1;
    }
    if answering == 0 {
        bail!(
            "hsm.remote: no HSM answers ({}); the keys cannot be checked",
            r.config.addresses.join(", ")
        );
    }
    check_on(&net, &r.checks, r.production).await?;
    tokio::spawn(Arc::clone(&net).health_loop());
    tracing::info!(hsms = %r.config.addresses.join(", "), "payment keys on network HSMs (payShield host protocol)");
    Ok(Arc::new(MeteredHsm::with_remote(
        local,
        net,
        Arc::clone(metrics),
    )))
}

/// Every key's check value on the network HSM (`BU`): the configured one, and (in
/// production) not a published key's.
pub async fn check_on(
    net: &RemoteHsm,
    checks: &[(String, KeyRef, Option<String>)],
    production: bool,
) -> Result<()> {
    for (what, key, want) in checks {
        let cv = net
            .check_value(key)
            .await
            .map_err(|e| anyhow!("{what}_lmk: the HSM refused it ({e})"))?;
        let shown = hex::encode_upper(&cv);
        if let Some(want) = want
            && !shown.starts_with(&want.to_ascii_uppercase())
        {
            bail!(
                "{what}_check: the key's check value is {}, not {want}",
                &shown[..want.len().min(shown.len())]
            );
        }
        if let Some(name) = hsm_sim::published::lookup(&cv) {
            if production {
                bail!("{what}: a published key ({name}), refused in production");
            }
            tracing::warn!(key = %what, check_value = %&shown[..6], "a published key ({name}) is in use: test data only");
        }
    }
    Ok(())
}

/// Checks a configuration as a start would, without starting: the LMK opens every key,
/// usages fit, and (in production) no key is a published one.
pub fn check(config: &Config) -> Result<()> {
    load(config).map(drop)
}
