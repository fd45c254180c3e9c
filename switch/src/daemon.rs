//! Start-up and shutdown: the HSM and keys, the journal and the state it holds, the card
//! file, the listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use hsm_sim::{ClearPin, Hsm, HsmConfig, Ibm3624, KeyAlgorithm, KeyUsage, Lmk, SealedKey};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{CardStatus, CardType, Config, PinMethod};
use crate::fees::FeeSchedule;
use crate::issuer::{Issuer, Issuers, saf};
use crate::journal::owner::{self, JournalLock};
use crate::journal::sqlite::Sqlite;
use crate::journal::{AccountRecord, Backend, Journal, Op};
use crate::metrics::Metrics;
use crate::pipeline::card::{Route, Routes};
use crate::pipeline::{IssuerKeys, Switch, Wallet, rc};
use crate::server::{ServerLimits, serve};
use crate::state::{
    Account, PinCheck, Recorded, Session, Slot, State, TerminalDirectory, TerminalRange, TxnKey,
};

/// A running switch.
pub struct Running {
    /// Where terminals connect.
    pub terminal_addr: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    switch: Arc<Switch>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    http: tokio::task::JoinHandle<()>,
    links: Vec<tokio::task::JoinHandle<()>>,
    links_stop: watch::Sender<bool>,
    watchdog: tokio::task::JoinHandle<()>,
    /// Held for the switch's life: no other process opens this journal.
    _lock: JournalLock,
}

impl Running {
    /// The pipeline (for in-process benches and tests).
    pub fn switch(&self) -> &Arc<Switch> {
        &self.switch
    }

    /// Graceful shutdown: stop accepting, finish in-flight requests, flush the journal.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.http.await;
        // Issuer lines stay up until the requests in flight have their answers.
        let _ = self.links_stop.send(true);
        for l in self.links {
            let _ = l.await;
        }
        let journal = Arc::clone(&self.switch);
        // Closing joins the writer thread: do it off the async workers.
        // The watchdog stopped with the server (the stop signal above); waiting for it means
        // no read of the journal is under way while it closes.
        let _ = self.watchdog.await;
        let _ = tokio::task::spawn_blocking(move || journal.journal().close()).await;
        tracing::info!("switch stopped; journal flushed");
    }
}

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
struct Keys {
    hsm: Hsm,
    ranges: Vec<TerminalRange>,
    issuer: Option<IssuerKeys>,
    /// Each remote issuer's zone PIN and MAC keys.
    zone: Vec<(SealedKey, SealedKey)>,
}

/// Loads the LMK and opens every key of `config` under it: what `check-config` checks and
/// `start` uses. Errors name the key.
fn keys(config: &Config) -> Result<Keys> {
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
        ranges.push(TerminalRange {
            from: t.tid_from.parse().context("tid_from")?,
            to: t.tid_to.parse().context("tid_to")?,
            mid: t.mid.clone(),
            mcc: t.mcc.clone(),
            merchant_name: t.merchant_name.clone(),
            mac: t.mac,
            tmk,
        });
    }
    let issuer = match &config.issuer {
        Some(i) => Some(IssuerKeys {
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
        issuer,
        zone,
    })
}

/// Checks a configuration as `start` would, without starting: the LMK opens every key,
/// usages fit, and (in production) no key is a published one.
pub fn check_keys(config: &Config) -> Result<()> {
    keys(config).map(drop)
}

/// Starts a switch on `config`: binds its listeners and returns once it is serving.
pub async fn start(config: Config) -> Result<Running> {
    if config.uses_test_keys() {
        tracing::warn!(
            "TEST KEYS IN USE: demo LMK, clear TMK/PVK or card PINs from the configuration; never for real cards"
        );
    }
    let Keys {
        hsm,
        ranges,
        issuer,
        zone,
    } = keys(&config)?;

    // The journal: ours alone, the one that was here, and writable.
    let path = &config.journal.path;
    let lock = owner::lock(path)?;
    let found = owner::before_open(path, !config.production)?;
    let mut backend = Sqlite::open(path).map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    let journal_id = backend
        .journal_id()
        .map_err(|e| anyhow!("journal {}: not writable? {e}", path.display()))?;
    owner::after_open(path, &journal_id)?;
    backend
        .probe()
        .map_err(|e| anyhow!("journal {}: not writable: {e}", path.display()))?;
    if found == owner::Found::Nothing {
        tracing::warn!(journal = %path.display(), id = %journal_id, "no journal here: a new one was created (first run)");
    }
    let identity = owner::Identity::of(path)?;
    let mut snapshot = backend.snapshot().map_err(|e| anyhow!("journal: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    let observer = {
        let m = Arc::clone(&metrics);
        Box::new(move |n: usize, _d: Duration| m.journal_batch.observe(n as f64))
    };
    let journal = Journal::start(backend, config.journal.group_commit_max, observer);

    let state = State::default();
    for a in snapshot.accounts {
        let Ok(hash) = <[u8; 32]>::try_from(hex::decode(&a.pan_hash).unwrap_or_default()) else {
            tracing::warn!(masked_pan = %a.masked_pan, "account with an unreadable key skipped");
            continue;
        };
        state.accounts.insert(hash, account_from(&a));
    }
    // The card file: cards and wallets the journal does not hold yet are loaded; PIN data
    // that the configuration gives differently (say a legacy PVV now an IBM 3624 offset)
    // replaces the journal's.
    let mut new_accounts = Vec::new();
    for entry in card_file(&config) {
        let hash = hsm.keyed_digest("pan", entry.number.as_bytes());
        let Some(issuer) = &issuer else {
            bail!("{}: no [issuer] PVK", entry.key)
        };
        let pin_check = pin_check_of(&hsm, issuer, &entry)?;
        if let Some(mut held) = state.accounts.get_mut(&hash) {
            if held.pin_check != pin_check {
                tracing::info!(account = %entry.key, method = pin_check.method().as_str(), "PIN verification data replaced from the configuration");
                new_accounts.push(Op::SetPinData {
                    pan_hash: hex::encode(hash),
                    pin_method: pin_check.method().as_str().to_owned(),
                    pvv: pin_check.value().to_owned(),
                    pvki: pin_check.pvki(),
                });
                held.pin_check = pin_check;
            }
            continue;
        }
        let record = AccountRecord {
            pan_hash: hex::encode(hash),
            masked_pan: codec::mask::pan(entry.number),
            card_type: entry.card_type.as_str().to_owned(),
            status: entry.status.as_str().to_owned(),
            expiry: entry.expiry.to_owned(),
            pin_method: pin_check.method().as_str().to_owned(),
            pvv: pin_check.value().to_owned(),
            pvki: pin_check.pvki(),
            balance_fen: entry.balance_fen,
            credit_limit_fen: entry.credit_limit_fen,
            pin_tries: 0,
        };
        state.accounts.insert(hash, account_from(&record));
        new_accounts.push(Op::PutAccount(Box::new(record)));
    }
    if !new_accounts.is_empty() {
        let n = new_accounts.len();
        journal
            .commit(new_accounts)
            .await
            .map_err(|e| anyhow!("journal: {e}"))?;
        tracing::info!(cards = n, "card file loaded into the journal");
    }
    for s in snapshot.sessions {
        let (Ok(tid), Ok(tpk), Ok(tak)) = (
            <[u8; 8]>::try_from(s.tid.as_bytes()),
            SealedKey::from_hex(&s.tpk),
            SealedKey::from_hex(&s.tak),
        ) else {
            continue;
        };
        state.sessions.insert(
            tid,
            Arc::new(Session {
                mid: s.mid,
                tpk,
                tak,
                batch: s.batch,
            }),
        );
    }
    // Read by reference: the open batches can hold hundreds of thousands of records, and a
    // second copy of them doubled the memory and time of a restart.
    let open_batch_txns = std::mem::take(&mut snapshot.open_batch_txns);
    for t in &open_batch_txns {
        let (Ok(tid), Ok(digest), Some(mti)) = (
            <[u8; 8]>::try_from(t.tid.as_bytes()),
            <[u8; 32]>::try_from(hex::decode(&t.request_digest).unwrap_or_default()),
            codec::Mti::parse(&t.mti),
        ) else {
            continue;
        };
        let answered_with_mac = !matches!(
            t.response_code.as_str(),
            rc::MAC_FAILURE
                | rc::BATCH_MISMATCH
                | rc::NO_TERMINAL
                | rc::INVALID_MERCHANT
                | rc::FORMAT_ERROR
                | rc::INVALID_TXN
        );
        state.recent.insert(
            TxnKey {
                tid,
                batch: t.batch,
                stan: t.stan,
                mti: mti.as_u16(),
            },
            Slot::Done(Recorded {
                digest,
                sign_on_again: matches!(
                    t.response_code.as_str(),
                    rc::MAC_FAILURE | rc::BATCH_MISMATCH
                ),
                rc: t.response_code.clone(),
                rrn: t.rrn.clone(),
                auth_code: t.auth_code.clone(),
                balance_fen: None,
                mac_reply: answered_with_mac,
                field48: t.reply_48.clone(),
            }),
        );
    }

    let mut issuers = Vec::new();
    for (i, (c, (zpk, zak))) in config.issuers.iter().zip(zone).enumerate() {
        let issuer = Issuer::new(
            i,
            c,
            &config.acquirer.institution_id,
            zpk,
            zak,
            Arc::clone(&metrics),
        )
        .map_err(|e| anyhow!("issuers[{i}].dialect: {e}"))?;
        issuers.push(Arc::new(issuer));
    }
    let issuers = Issuers::new(issuers);
    // What each card has had in stand-in today, so a restart does not reset the limit.
    for (hash, date, fen) in &snapshot.stand_in {
        if let (Ok(hash), Some(day)) = (
            <[u8; 32]>::try_from(hex::decode(hash).unwrap_or_default()),
            crate::clock::day_number(date),
        ) {
            state.stand_in_day.insert((hash, day), *fen);
        }
    }
    for r in &snapshot.saf {
        match issuers.by_name(&r.issuer) {
            Some(i) => saf::enqueue(i, [saf::Entry::from_record(r)]),
            None => {
                tracing::error!(issuer = %r.issuer, id = %r.id, "queued message for an issuer no longer configured: left in the journal")
            }
        }
    }
    if !snapshot.saf.is_empty() {
        tracing::info!(
            entries = snapshot.saf.len(),
            "store-and-forward entries to send"
        );
    }
    let routes = Routes::new(
        config
            .routes
            .iter()
            .map(|r| {
                (
                    r.prefix.clone(),
                    Route {
                        card_type: r.card_type,
                        issuer: issuers.by_name(&r.route).map(|i| i.index),
                    },
                )
            })
            .collect(),
    );
    let switch = Arc::new(Switch::new(
        hsm,
        TerminalDirectory::new(ranges),
        routes,
        FeeSchedule::new(config.fee_rules()),
        config.acquirer.clone(),
        issuer,
        config
            .wallets
            .iter()
            .map(|w| Wallet {
                id: w.id.clone(),
                code_prefix: w.code_prefix.clone(),
            })
            .collect(),
        issuers,
        state,
        journal,
        Arc::clone(&metrics),
    ));
    switch.restore_lifecycle(&open_batch_txns);
    drop(open_batch_txns);

    let terminals = TcpListener::bind(config.listen.terminals)
        .await
        .with_context(|| format!("listen.terminals {}", config.listen.terminals))?;
    let metrics_listener = TcpListener::bind(config.listen.metrics)
        .await
        .with_context(|| format!("listen.metrics {}", config.listen.metrics))?;
    let terminal_addr = terminals.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let (stop, stopped) = watch::channel(false);
    let (links_stop, links_stopped) = watch::channel(false);
    let mut links = Vec::new();
    for issuer in switch.issuers().iter() {
        for line in &issuer.lines {
            links.push(tokio::spawn(crate::issuer::line::run(
                Arc::clone(issuer),
                Arc::clone(line),
                links_stopped.clone(),
            )));
        }
        links.push(tokio::spawn(saf::run(
            Arc::clone(&switch),
            Arc::clone(issuer),
            links_stopped.clone(),
        )));
    }
    let limits = ServerLimits {
        max_connections: config.limits.max_connections,
        max_in_flight: config.limits.max_in_flight,
        idle_timeout: Duration::from_secs(config.limits.idle_timeout_secs),
        read_timeout: Duration::from_secs(config.limits.read_timeout_secs),
        max_frame: config.limits.max_frame_bytes,
        max_per_peer: config.limits.max_connections_per_peer,
        auth_timeout: Duration::from_secs(config.limits.auth_timeout_secs),
    };
    let server = tokio::spawn(serve(
        terminals,
        Arc::clone(&switch),
        limits,
        stopped.clone(),
    ));

    let watchdog = tokio::spawn(watch_journal(
        identity,
        journal_id,
        Arc::clone(&switch),
        stopped.clone(),
    ));
    let ready = Arc::new(AtomicBool::new(true));
    let app = {
        let m = Arc::clone(&metrics);
        let r = Arc::clone(&ready);
        let health = Arc::clone(switch.journal().health());
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = Arc::clone(&m);
                    async move {
                        (
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            m.encode(),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let r = Arc::clone(&r);
                    let health = Arc::clone(&health);
                    async move {
                        if !r.load(Ordering::Relaxed) {
                            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
                        }
                        match health.ready() {
                            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                        }
                    }
                }),
            )
    };
    let http = {
        let mut stopped = stopped.clone();
        let ready = Arc::clone(&ready);
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
                ready.store(false, Ordering::Relaxed);
            };
            if let Err(e) = axum::serve(metrics_listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "metrics listener failed");
            }
        })
    };
    tracing::info!(terminals = %terminal_addr, metrics = %metrics_addr, journal = %config.journal.path.display(), "switch listening");
    Ok(Running {
        terminal_addr,
        metrics_addr,
        switch,
        stop,
        server,
        http,
        links,
        links_stop,
        watchdog,
        _lock: lock,
    })
}

/// Creates a new journal at `path`: refused when one is there; with the id file of a
/// journal that is gone, only with `force`. Returns the new journal's id.
pub fn init_journal(path: &std::path::Path, force: bool) -> Result<String> {
    let _lock = owner::lock(path)?;
    match owner::before_open(path, true) {
        Ok(owner::Found::Nothing) => {}
        Ok(owner::Found::Existing) => {
            let id = Sqlite::read_id(path).ok().flatten();
            bail!(
                "journal {} exists (id {}): nothing to do; a switch opens it as it is",
                path.display(),
                id.as_deref().unwrap_or("?")
            );
        }
        Err(owner::OwnerError::Missing { .. }) if force => {
            tracing::warn!(journal = %path.display(), "the old journal is gone: starting a new one");
        }
        Err(e) => return Err(e.into()),
    }
    let mut backend = Sqlite::open(path).map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    let id = backend
        .journal_id()
        .map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    owner::write_marker(&owner::marker_path(path), &id)?;
    Ok(id)
}

/// Every second: is the journal file still the one opened (not deleted, not replaced, its
/// id unchanged), and does it take a write? Either failing turns `/readyz` to 503 and makes
/// the pipeline refuse money-moving requests with `96`.
async fn watch_journal(
    identity: owner::Identity,
    id: String,
    switch: Arc<Switch>,
    mut stop: watch::Receiver<bool>,
) {
    let path = identity.path().to_owned();
    let health = Arc::clone(switch.journal().health());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if let Err(why) = identity.check() {
            health.set_broken(&why);
            continue;
        }
        let p = path.clone();
        match tokio::task::spawn_blocking(move || Sqlite::read_id(&p)).await {
            Ok(Ok(Some(found))) if found == id => {}
            Ok(Ok(found)) => health.set_broken(&format!(
                "journal {} now has id {}, not {id}: replaced",
                path.display(),
                found.as_deref().unwrap_or("(none)")
            )),
            // Unreadable for a moment (locked, busy) is not proof of anything.
            Ok(Err(_)) | Err(_) => {}
        }
        match switch.journal().probe().await {
            Ok(()) => health.clear_failing(),
            Err(e) => health.set_failing(&format!("journal {}: {e}", path.display())),
        }
    }
}

/// A card or wallet of the configuration, as the journal's account is made from it.
struct CardEntry<'c> {
    /// `cards[i]` or `wallets[i]`, for messages.
    key: String,
    /// PAN or wallet number.
    number: &'c str,
    card_type: CardType,
    status: CardStatus,
    expiry: &'c str,
    balance_fen: i64,
    credit_limit_fen: i64,
    method: PinMethod,
    pin: Option<&'c str>,
    offset: Option<&'c str>,
    pvv: Option<&'c str>,
}

/// The configuration's cards, then its wallets (debit accounts that never expire).
fn card_file(config: &Config) -> impl Iterator<Item = CardEntry<'_>> {
    let cards = config.cards.iter().enumerate().map(|(i, c)| CardEntry {
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
        method: config.pin_method_of(&c.pan),
        pin: c.pin.as_deref(),
        offset: c.offset.as_deref(),
        pvv: c.pvv.as_deref(),
    });
    let wallets = config.wallets.iter().enumerate().map(|(i, w)| CardEntry {
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

/// The PIN data of a card file entry: given, or (test data) derived from its clear PIN
/// under the PVK.
fn pin_check_of(hsm: &Hsm, issuer: &IssuerKeys, e: &CardEntry<'_>) -> Result<PinCheck> {
    let key = &e.key;
    Ok(match (e.method, e.pin, e.offset, e.pvv) {
        (PinMethod::Ibm3624, _, Some(offset), _) => PinCheck::Ibm3624 {
            offset: offset.to_owned(),
        },
        (PinMethod::VisaPvv, _, _, Some(pvv)) => PinCheck::VisaPvv {
            pvv: pvv.to_owned(),
            pvki: issuer.pvki,
        },
        (method, Some(pin), _, _) => {
            let pin = ClearPin::new(pin).map_err(|e| anyhow!("{key}.pin: {e}"))?;
            match method {
                PinMethod::Ibm3624 => {
                    let validation = hsm_sim::primitives::pvv::validation_from_pan(e.number)
                        .map_err(|err| anyhow!("{key}: {err}"))?;
                    PinCheck::Ibm3624 {
                        offset: hsm
                            .generate_ibm3624_offset(
                                &issuer.pvk,
                                &issuer.ibm3624,
                                &validation,
                                &pin,
                            )
                            .map_err(|err| anyhow!("{key}: {err}"))?,
                    }
                }
                PinMethod::VisaPvv => PinCheck::VisaPvv {
                    pvv: hsm
                        .generate_pvv(&issuer.pvk, e.number, issuer.pvki, &pin)
                        .map_err(|err| anyhow!("{key}: {err}"))?,
                    pvki: issuer.pvki,
                },
            }
        }
        _ => bail!("{key}: no PIN data fitting its pin_method"),
    })
}

fn account_from(a: &AccountRecord) -> Account {
    Account {
        masked_pan: a.masked_pan.clone(),
        card_type: if a.card_type == "credit" {
            CardType::Credit
        } else {
            CardType::Debit
        },
        status: CardStatus::parse(&a.status).unwrap_or(CardStatus::Blocked),
        expiry: a.expiry.parse().unwrap_or(0),
        pin_check: PinCheck::from_record(&a.pin_method, &a.pvv, a.pvki),
        balance_fen: a.balance_fen,
        credit_limit_fen: a.credit_limit_fen,
        pin_tries: a.pin_tries,
    }
}
