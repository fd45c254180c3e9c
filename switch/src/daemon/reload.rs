//! Live configuration: `SIGHUP`, `switch reload` (the admin endpoint) or a test reads the
//! configuration again, checks all of it, and puts it in force at once, or changes nothing
//! and says why.
//!
//! ```text
//!  read ─▶ validate ─▶ sections fixed at start (listen, journal, hsm, production, tls files,
//!          log file, cached_transactions): kept as they are, named in the answer
//!       ─▶ every key opened under the running LMK (and BU on a network HSM)
//!       ─▶ issuers: unchanged ones kept, new or changed ones made ─▶ TLS files read
//!       ─▶ rules swapped (requests under way keep the old snapshot to their answers)
//!       ─▶ issuer lines started / retired ─▶ log level ─▶ card file compared with the journal
//!  any failure before the swap: nothing changed; the error, a log line and
//!  switch_config_reloads_total{result="invalid"}
//! ```
//!
//! Terminals keep their sessions: a session is the journal's, not the configuration's.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::keys;
use super::links::Links;
use crate::config::Config;
use crate::fees::FeeSchedule;
use crate::issuer::{Issuer, Issuers};
use crate::pipeline::Switch;
use crate::pipeline::card::{Route, Routes, Wallet};
use crate::pipeline::pin::PinVerification;
use crate::pipeline::rules::Rules;
use crate::pipeline::terminal::{TerminalDirectory, TerminalRange};
use crate::tls::ServerCert;

/// Reads the configuration again (the file given at start, with the same command-line
/// overrides).
pub type Source = Arc<dyn Fn() -> Result<Config> + Send + Sync>;

/// Sets the log level (an `EnvFilter` directive) of the running process.
pub type LogLevel = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// The rules of `config`, with its terminal ranges, PVK and issuers.
pub fn rules(
    config: &Config,
    ranges: Vec<TerminalRange>,
    pin_verification: Option<PinVerification>,
    issuers: Vec<Arc<Issuer>>,
) -> Rules {
    let routes = Routes::new(
        config
            .routes
            .iter()
            .map(|r| {
                (
                    r.prefix.clone(),
                    Route {
                        card_type: r.card_type,
                        issuer: issuers.iter().find(|i| i.name == r.route).cloned(),
                    },
                )
            })
            .collect(),
    );
    Rules {
        terminals: TerminalDirectory::new(ranges),
        routes,
        wallets: config
            .wallets
            .iter()
            .map(|w| Wallet {
                id: w.id.clone(),
                code_prefix: w.code_prefix.clone(),
            })
            .collect(),
        fees: FeeSchedule::new(config.fee_rules()),
        acquirer: config.acquirer.clone(),
        pin_verification,
        issuers: Issuers::new(issuers),
        limits: config.limits.server(),
    }
}

/// What a reload did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Sections in force from now on that differ from before (`terminals`, `routes`, …).
    pub applied: Vec<String>,
    /// Sections that changed in the file but cannot change while running: left as they
    /// are until the next start.
    pub at_next_start: Vec<String>,
    /// The card file where it disagrees with the journal (the journal's values stand).
    pub warnings: Vec<String>,
}

/// Applies configurations to a running switch, one at a time.
pub struct Reloader {
    switch: Arc<Switch>,
    links: Arc<Links>,
    /// The configuration in force.
    current: tokio::sync::Mutex<Config>,
    source: Option<Source>,
    tls_cert: Option<Arc<ServerCert>>,
    log_level: Option<LogLevel>,
}

/// A section as text, to tell whether it changed.
fn text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Reloader {
    pub(crate) fn new(
        switch: Arc<Switch>,
        links: Arc<Links>,
        config: Config,
        source: Option<Source>,
        tls_cert: Option<Arc<ServerCert>>,
        log_level: Option<LogLevel>,
    ) -> Self {
        Self {
            switch,
            links,
            current: tokio::sync::Mutex::new(config),
            source,
            tls_cert,
            log_level,
        }
    }

    /// Reads the configuration again and applies it.
    pub async fn reload(&self) -> Result<Outcome> {
        let read = match &self.source {
            Some(source) => source(),
            None => Err(anyhow!(
                "no configuration to read again: this switch was started from a configuration in memory"
            )),
        };
        match read {
            Ok(config) => self.apply(config).await,
            Err(e) => Err(self.refused(e)),
        }
    }

    /// Applies `new`: everything in force at once, or nothing (the error says why).
    pub async fn apply(&self, new: Config) -> Result<Outcome> {
        let mut current = self.current.lock().await;
        match self.try_apply(&current, new).await {
            Ok((config, outcome)) => {
                *current = config;
                self.switch.metrics.config_reload(true);
                tracing::info!(
                    applied = ?outcome.applied,
                    at_next_start = ?outcome.at_next_start,
                    "configuration reloaded"
                );
                for s in &outcome.at_next_start {
                    tracing::warn!(section = %s, "changed in the configuration, but it cannot change while the switch runs: in force at the next start");
                }
                Ok(outcome)
            }
            Err(e) => Err(self.refused(e)),
        }
    }

    fn refused(&self, e: anyhow::Error) -> anyhow::Error {
        self.switch.metrics.config_reload(false);
        tracing::error!(error = %format!("{e:#}"), "configuration reload refused: nothing changed");
        e
    }

    async fn try_apply(&self, current: &Config, mut new: Config) -> Result<(Config, Outcome)> {
        let mut outcome = Outcome::default();
        new.validate()?;
        // What cannot change live stays as it runs.
        let fixed = |name: &str, changed: bool, outcome: &mut Outcome| {
            if changed {
                outcome.at_next_start.push(name.to_owned());
            }
        };
        fixed(
            "listen",
            text(&new.listen) != text(&current.listen),
            &mut outcome,
        );
        new.listen = current.listen.clone();
        fixed(
            "journal",
            text(&new.journal) != text(&current.journal),
            &mut outcome,
        );
        new.journal = current.journal.clone();
        fixed("hsm", text(&new.hsm) != text(&current.hsm), &mut outcome);
        new.hsm = current.hsm.clone();
        fixed(
            "production",
            new.production != current.production,
            &mut outcome,
        );
        new.production = current.production;
        fixed("tls", text(&new.tls) != text(&current.tls), &mut outcome);
        new.tls = current.tls.clone();
        fixed(
            "log.file",
            new.log.file != current.log.file || new.log.rotation != current.log.rotation,
            &mut outcome,
        );
        new.log.file = current.log.file.clone();
        new.log.rotation = current.log.rotation;
        fixed(
            "limits.cached_transactions",
            new.limits.cached_transactions != current.limits.cached_transactions,
            &mut outcome,
        );
        new.limits.cached_transactions = current.limits.cached_transactions;
        new.validate()?;

        // Every key, under the LMK the switch runs on.
        let keys::Keys {
            remote,
            ranges,
            pin_verification,
            zone,
            ..
        } = keys::load(&new)?;
        if let (Some(r), Some(net)) = (&remote, self.switch.hsm().remote()) {
            keys::check_on(net, &r.checks, r.production).await?;
        }
        let metrics = &self.switch.metrics;
        let drained = self
            .switch
            .journal()
            .read(|b| b.drained_issuers())
            .await
            .map_err(|e| anyhow!("journal: {e}"))?;
        // New and changed issuers made (their TLS files read), not started.
        let made = self.links.issuers(&new, zone, metrics)?;
        if let Some(cert) = &self.tls_cert
            && let Err(e) = cert.reload_counted(metrics)
        {
            self.links.discard(&made);
            return Err(e);
        }

        // In force from here: nothing below fails.
        for i in &made.issuers {
            i.set_drained(drained.contains(&i.name));
        }
        let rules = rules(&new, ranges, pin_verification, made.issuers.clone());
        let old = self.switch.replace_rules(rules);
        self.links
            .run(&self.switch, &new, made, Arc::downgrade(&old));
        drop(old);
        metrics
            .connections_limit
            .set(i64::try_from(new.limits.max_connections).unwrap_or(i64::MAX));
        // Checked with the configuration: a level that parses is set.
        if new.log.level != current.log.level {
            match &self.log_level {
                Some(set) => {
                    if let Err(e) = set(new.log.level.as_deref().unwrap_or("info")) {
                        tracing::error!(error = %e, "log level not changed");
                    }
                }
                None => outcome.at_next_start.push("log.level".into()),
            }
        }
        let sections: [(&str, bool); 10] = [
            ("acquirer", text(&new.acquirer) != text(&current.acquirer)),
            (
                "terminals",
                text(&new.terminals) != text(&current.terminals),
            ),
            ("routes", text(&new.routes) != text(&current.routes)),
            ("fees", text(&new.fees) != text(&current.fees)),
            (
                "fee_categories",
                text(&new.fee_categories) != text(&current.fee_categories),
            ),
            ("issuer", text(&new.issuer) != text(&current.issuer)),
            ("issuers", text(&new.issuers) != text(&current.issuers)),
            ("limits", text(&new.limits) != text(&current.limits)),
            ("log.level", new.log.level != current.log.level),
            (
                "cards",
                text(&new.cards) != text(&current.cards)
                    || text(&new.wallets) != text(&current.wallets),
            ),
        ];
        outcome.applied = sections
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        outcome.warnings = self.card_file_against_journal(&new).await;
        Ok((new, outcome))
    }

    /// The card file against the journal: a card the journal holds otherwise, or does not
    /// hold at all, named (masked) with the field.
    async fn card_file_against_journal(&self, config: &Config) -> Vec<String> {
        let mut warnings = Vec::new();
        for entry in config.card_file() {
            let id = self.switch.account_id(entry.number);
            let held = self.switch.journal().read(move |b| b.account(&id)).await;
            match held {
                Ok(Some(held)) => warnings.extend(super::restore::disagreements(&entry, &held)),
                Ok(None) => {
                    let masked = codec::mask::pan(entry.number);
                    tracing::warn!(card = %masked, key = %entry.key, "the card file names a card the journal does not hold: it seeds an empty journal only (switch admin card add)");
                    warnings.push(format!(
                        "{} ({masked}): not in the journal; the card file seeds an empty journal only (switch admin card add)",
                        entry.key
                    ));
                }
                Err(e) => {
                    warnings.push(format!(
                        "the card file was not compared with the journal: {e}"
                    ));
                    break;
                }
            }
        }
        warnings
    }
}
