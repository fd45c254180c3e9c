//! Start-up and shutdown.
//!
//! ```text
//!  start(config)
//!    ├─ journal file: lock (one owner), identity (the one that was here), writable
//!    ├─ Node::start: keys (keys) ─▶ snapshot ─▶ memory (restore) ─▶ Switch
//!    │               ─▶ issuer lines and store-and-forward workers
//!    ├─ terminal listener (server), operators' listener (http), journal watchdog (watchdog),
//!    │  gauges (gauges), lapsed pre-authorisation holds (expiry)
//!    └─ Running ── shutdown: stop accepting, finish in-flight requests, issuer answers,
//!                  flush the journal
//! ```
//!
//! A [`Node`] is the switch without the process around it (no file lock, no listeners): a
//! simulation runs one on an in-memory journal, a simulated network and simulated time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::journal::owner::{self, JournalLock};
use crate::journal::postgres::Postgres;
use crate::journal::sqlite::Sqlite;
use crate::journal::{Backend, Journal};
use crate::metrics::Metrics;
use crate::net::{Dialer, Listener, TcpDialer};
use crate::pipeline::{Parts, Switch};
use crate::saf::Entry;
use crate::saf::worker::NODE_GONE_MS;

pub mod admin;
pub mod expiry;
pub mod gauges;
pub mod http;
pub mod keys;
mod links;
pub mod reload;
pub mod restore;
pub mod status;
pub mod watchdog;

/// What a node runs on: the time of day and how issuer lines connect.
#[derive(Clone)]
pub struct Environment {
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// How issuer lines connect.
    pub dialer: Arc<dyn Dialer>,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            dialer: Arc::new(TcpDialer),
        }
    }
}

/// A switch on a journal, with its issuer lines and store-and-forward workers running.
pub struct Node {
    switch: Arc<Switch>,
    /// Issuer lines and store-and-forward workers.
    links: Arc<links::Links>,
    /// The node's own tasks (its heartbeat).
    tasks: Vec<JoinHandle<()>>,
    tasks_stop: watch::Sender<bool>,
    /// With a shared journal: this node's id and this process's name in its node table.
    registered: Option<(String, String)>,
}

impl Node {
    /// Assembles a switch of `config` with `keys` on `journal` (its memory restored from
    /// the journal, the card file loaded) and starts its issuer lines and queues.
    pub async fn start(
        config: &Config,
        keys: keys::Keys,
        journal: Journal,
        metrics: Arc<Metrics>,
        env: Environment,
    ) -> Result<Self> {
        let keys::Keys {
            hsm,
            remote,
            ranges,
            pin_verification,
            zone,
        } = keys;
        let shared = journal.is_shared();
        let node = config.journal.node_name();
        let holder = holder();
        if shared {
            // One live process per node id: a second one is refused, naming the first.
            let now = env.clock.now();
            let (n, h) = (node.clone(), holder.clone());
            let registered = journal
                .write(move |b| b.register_node(&n, &h, now, now.plus_ms(-NODE_GONE_MS)))
                .await
                .map_err(|e| anyhow!("journal: {e}"))?;
            if let Err(live) = registered {
                bail!(
                    "journal: node id {} is in use by a live switch ({live}); give each node its own [journal] node_id",
                    config.journal.node_id
                );
            }
        }
        let today = env.clock.now().cst_day_number();
        let snapshot = journal
            .read(move |b| b.snapshot(today))
            .await
            .map_err(|e| anyhow!("journal: {e}"))?;
        let saf = snapshot.saf.clone();
        let state =
            restore::state(config, &hsm, pin_verification.as_ref(), &journal, snapshot).await?;
        for tid in journal
            .read(|b| b.disabled_terminals())
            .await
            .map_err(|e| anyhow!("journal: {e}"))?
        {
            state.disabled_terminals.insert(tid, ());
        }
        let hsm = keys::connect(hsm, remote, &metrics).await?;
        let journal = Arc::new(journal);
        let links = Arc::new(links::Links::new(env.clone(), holder.clone()));
        // Issuers an operator drained stay drained across restarts.
        let drained = journal
            .read(|b| b.drained_issuers())
            .await
            .map_err(|e| anyhow!("journal: {e}"))?;
        let made = links.issuers(config, zone, &metrics)?;
        let issuers = made.issuers.clone();
        for i in &issuers {
            i.set_drained(drained.contains(&i.name));
        }
        let switch = Arc::new(Switch::new(Parts {
            hsm: Arc::clone(&hsm),
            rules: reload::rules(config, ranges, pin_verification, issuers.clone()),
            state,
            journal: Arc::clone(&journal),
            clock: Arc::clone(&env.clock),
            metrics,
        }));
        // With a shared journal the node holding an issuer's lease reads its queue from the
        // journal; alone, this node sends what it finds.
        for r in saf.iter().filter(|_| !shared) {
            match issuers.iter().find(|i| i.name == r.issuer) {
                Some(i) => switch.enqueue(i, Entry::from_record(r)),
                None => {
                    tracing::error!(issuer = %r.issuer, id = %r.id, "queued message for an issuer no longer configured: left in the journal")
                }
            }
        }
        if !saf.is_empty() {
            tracing::info!(entries = saf.len(), "store-and-forward entries to send");
        }
        let (tasks_stop, tasks_stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let registered = shared.then(|| (node.clone(), holder.clone()));
        if shared {
            tasks.push(tokio::spawn(heartbeat(
                Arc::downgrade(&switch),
                node,
                holder,
                tasks_stopped,
            )));
        }
        links.run(&switch, config, made, std::sync::Weak::new());
        Ok(Self {
            switch,
            links,
            tasks,
            tasks_stop,
            registered,
        })
    }

    /// The pipeline.
    pub fn switch(&self) -> &Arc<Switch> {
        &self.switch
    }

    /// What applies a new configuration to this node.
    pub fn reloader(
        &self,
        config: &Config,
        source: Option<reload::Source>,
        tls_cert: Option<Arc<crate::tls::ServerCert>>,
        log_level: Option<reload::LogLevel>,
    ) -> reload::Reloader {
        reload::Reloader::new(
            Arc::clone(&self.switch),
            Arc::clone(&self.links),
            config.clone(),
            source,
            tls_cert,
            log_level,
        )
    }

    /// Serves terminals from `listener` until `stop`, then waits for every connection to
    /// finish its in-flight requests.
    pub fn serve<L: Listener>(&self, listener: L, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(crate::server::serve(
            listener,
            Arc::clone(&self.switch),
            stop,
        ))
    }

    /// Stops every task of the node at once, wherever each is: a process killed (a
    /// simulation of several nodes kills one this way).
    pub fn abort(self) {
        self.links.abort();
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Stops the issuer lines and queues (after the requests waiting on them are answered).
    pub async fn stop(self) -> Arc<Switch> {
        let _ = self.tasks_stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.links.stop().await;
        // Stopped cleanly: the node id is free at once, and the queues it held too.
        if let Some((node, holder)) = self.registered {
            let left = self
                .switch
                .journal()
                .write(move |b| b.deregister_node(&node, &holder))
                .await;
            if let Err(e) = left {
                tracing::warn!(error = %e, "cannot free the node id: it frees itself in 10 s");
            }
        }
        self.switch
    }
}

/// This process, as the journal's node table names it: host, process id and a random tag
/// (two nodes in one process, in a simulation, are two holders).
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let mut tag = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tag);
    format!("{host} pid {} ({})", std::process::id(), hex::encode(tag))
}

/// Every second: this node is alive (its armed reversals are its own, its lease holds). If
/// another process has taken its node id, it stops taking money. Issuers drained or taken
/// back by an operator at any node follow the journal.
async fn heartbeat(
    switch: std::sync::Weak<Switch>,
    node: String,
    holder: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let Some(switch) = switch.upgrade() else {
            return;
        };
        let journal = Arc::clone(switch.journal());
        let (n, h, now) = (node.clone(), holder.clone(), switch.clock.now());
        match journal.write(move |b| b.heartbeat(&n, &h, now)).await {
            Ok(true) => {}
            Ok(false) => journal.health().set_broken(&format!(
                "node {node} was taken over by another process: this one stopped"
            )),
            Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
        }
        let issuers = switch.issuers();
        if !issuers.is_empty()
            && let Ok(drained) = journal.read(|b| b.drained_issuers()).await
        {
            for i in issuers.iter() {
                i.set_drained(drained.contains(&i.name));
            }
        }
    }
}

/// A running switch.
pub struct Running {
    /// Where terminals connect.
    pub terminal_addr: SocketAddr,
    /// Where terminals connect over TLS, when configured.
    pub terminal_tls_addr: Option<SocketAddr>,
    /// The TLS listener's certificate, renewed by [`Running::reload_tls`].
    tls_cert: Option<Arc<crate::tls::ServerCert>>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    node: Node,
    reloader: Arc<reload::Reloader>,
    /// The pid file, removed at a clean stop.
    pid_file: Option<std::path::PathBuf>,
    stop: watch::Sender<bool>,
    http_stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    tls_server: Option<JoinHandle<()>>,
    http: JoinHandle<()>,
    watchdog: JoinHandle<()>,
    gauges: JoinHandle<()>,
    expiry: JoinHandle<()>,
    /// Held for the switch's life: no other process opens this (SQLite) journal.
    _lock: Option<JournalLock>,
}

impl Running {
    /// Reads the TLS certificate and key files again (SIGHUP): new handshakes present the
    /// new pair, connections already up are not touched. `Ok(false)` when no TLS listener
    /// runs; on an error the old pair stays and the error says why.
    pub fn reload_tls(&self) -> Result<bool> {
        let Some(cert) = &self.tls_cert else {
            return Ok(false);
        };
        cert.reload_counted(&self.node.switch().metrics)
            .map(|()| true)
    }

    /// The pipeline (for in-process benches and tests).
    pub fn switch(&self) -> &Arc<Switch> {
        self.node.switch()
    }

    /// Reads the configuration again and applies it (SIGHUP, `switch reload`): all of it
    /// or, when anything in it is wrong, nothing.
    pub async fn reload(&self) -> Result<reload::Outcome> {
        self.reloader.reload().await
    }

    /// Applies `config` as a reload would.
    pub async fn apply_config(&self, config: Config) -> Result<reload::Outcome> {
        self.reloader.apply(config).await
    }

    /// Graceful shutdown: stop accepting, finish in-flight requests, flush the journal.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // The terminal connections drain while /healthz says 200 and /readyz 503.
        let _ = self.server.await;
        if let Some(s) = self.tls_server {
            let _ = s.await;
        }
        let _ = self.http_stop.send(true);
        let _ = self.http.await;
        // The watchdog stopped with the server (the stop signal above); waiting for it means
        // no read of the journal is under way while it closes.
        let _ = self.watchdog.await;
        let _ = self.gauges.await;
        let _ = self.expiry.await;
        // Issuer lines stay up until the requests in flight have their answers.
        let switch = self.node.stop().await;
        // Closing joins the journal's threads: do it off the async workers.
        let _ = tokio::task::spawn_blocking(move || switch.journal().close()).await;
        if let Some(p) = self.pid_file {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("switch stopped; journal flushed");
    }
}

/// Checks a configuration as `start` would, without starting: the LMK opens every key,
/// usages fit, and (in production) no key is a published one.
pub fn check_keys(config: &Config) -> Result<()> {
    keys::check(config)
}

/// How a running switch reads its configuration again, and sets its log level.
#[derive(Clone, Default)]
pub struct Options {
    /// Reads the configuration again (`None`: a reload has nothing to read).
    pub source: Option<reload::Source>,
    /// Sets the log level (`None`: a new level waits for the next start).
    pub log_level: Option<reload::LogLevel>,
}

/// Starts a switch on `config`: binds its listeners and returns once it is serving.
pub async fn start(config: Config) -> Result<Running> {
    start_with(config, Options::default()).await
}

/// Starts a switch on `config`, reloadable from `options.source`.
pub async fn start_with(config: Config, options: Options) -> Result<Running> {
    if config.uses_test_keys() {
        tracing::warn!(
            "TEST KEYS IN USE: demo LMK, clear TMK/PVK or card PINs from the configuration; never for real cards"
        );
    }
    // Keys first: a configuration whose keys do not open touches no journal.
    let keys = keys::load(&config)?;

    let issuer_lines: Vec<crate::metrics::IssuerLines<'_>> = config
        .issuers
        .iter()
        .map(|i| crate::metrics::IssuerLines {
            name: &i.name,
            lines: &i.lines,
        })
        .collect();
    let longest_timeout = config
        .issuers
        .iter()
        .map(|i| Duration::from_millis(i.timeout_ms))
        .max()
        .unwrap_or(Duration::from_secs(5));
    let metrics = Arc::new(Metrics::for_switch(&issuer_lines, longest_timeout));
    let observer = {
        let m = Arc::clone(&metrics);
        Box::new(move |n: usize, _d: Duration| m.journal_batch.observe(n as f64))
    };
    let (journal, opened) = match config.journal.url.clone() {
        // Its connections run their own runtimes: made off the async workers.
        Some(url) => {
            let c = config.clone();
            tokio::task::spawn_blocking(move || open_postgres(&c, &url, observer))
                .await
                .map_err(|e| anyhow!("journal: {e}"))??
        }
        None => open_sqlite(&config, observer, Arc::clone(&metrics))?,
    };
    let node = Node::start(
        &config,
        keys,
        journal,
        Arc::clone(&metrics),
        Environment::default(),
    )
    .await?;

    let terminals = crate::net::tcp_listener(config.listen.terminals, config.listen.backlog)
        .with_context(|| format!("listen.terminals {}", config.listen.terminals))?;
    let metrics_listener = TcpListener::bind(config.listen.metrics)
        .await
        .with_context(|| format!("listen.metrics {}", config.listen.metrics))?;
    let terminal_addr = terminals.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    // The TLS listener: its certificate read (and checked) before anything is served.
    // One certificate for the TLS listeners, renewed together on SIGHUP.
    let tls_cert = match &config.tls {
        Some(tls) if config.listen.terminals_tls.is_some() || config.listen.metrics_tls => {
            metrics.prime_tls_reloads();
            Some(crate::tls::server_cert(tls)?)
        }
        _ => None,
    };
    let tls_listener = match (config.listen.terminals_tls, &config.tls, &tls_cert) {
        (Some(addr), Some(tls), Some(cert)) => {
            let server_config = crate::tls::server_config(tls, cert, true)?;
            let tcp = crate::net::tcp_listener(addr, config.listen.backlog)
                .with_context(|| format!("listen.terminals_tls {addr}"))?;
            metrics.prime_tls("terminals");
            Some(crate::tls::TlsListener::new(
                tcp,
                server_config,
                config.limits.server().read_timeout,
                Arc::clone(&metrics),
            ))
        }
        _ => None,
    };
    let terminal_tls_addr = match &tls_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    let (stop, stopped) = watch::channel(false);
    let (http_stop, http_stopped) = watch::channel(false);
    let server = node.serve(terminals, stopped.clone());
    let tls_server = tls_listener.map(|l| node.serve(l, stopped.clone()));
    let journal_file = match &opened.watch {
        watchdog::Watched::File(identity) => Some(identity.path().to_owned()),
        watchdog::Watched::Database => None,
    };
    let watchdog = tokio::spawn(watchdog::watch_journal(
        opened.watch,
        opened.id,
        Arc::clone(node.switch().journal()),
        stopped.clone(),
    ));
    node.switch()
        .metrics
        .connections_limit
        .set(i64::try_from(config.limits.max_connections).unwrap_or(i64::MAX));
    gauges::update(node.switch(), journal_file.as_deref());
    let gauges = tokio::spawn(gauges::refresh(
        Arc::clone(node.switch()),
        journal_file,
        stopped.clone(),
    ));
    let expiry = tokio::spawn(expiry::run(Arc::clone(node.switch()), stopped.clone()));
    let access = status::Access::new(metrics_addr, config.listen.status_password.as_deref());
    let health = Arc::clone(node.switch().journal().health());
    let remote_hsm = node.switch().hsm().remote().cloned();
    let token_path = config
        .journal
        .path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("admin.token");
    let reloader =
        Arc::new(node.reloader(&config, options.source, tls_cert.clone(), options.log_level));
    let admin = admin::routes(
        Arc::clone(node.switch()),
        Arc::new(admin::token(&token_path)?),
        Arc::clone(&reloader),
    );
    let pid_file = token_path.with_file_name("switch.pid");
    let pid_file = match std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        Ok(()) => Some(pid_file),
        Err(e) => {
            tracing::warn!(path = %pid_file.display(), error = %e, "cannot write the pid file");
            None
        }
    };
    let endpoints = http::Endpoints {
        health,
        hsm: remote_hsm,
        access,
        admin,
    };
    let http = match (&config.tls, &tls_cert) {
        (Some(tls), Some(cert)) if config.listen.metrics_tls => {
            let https = crate::tls::HttpsListener::new(
                metrics_listener,
                crate::tls::server_config(tls, cert, false)?,
                config.limits.server().read_timeout,
                Arc::clone(&metrics),
            )?;
            tokio::spawn(http::serve(
                https,
                metrics,
                endpoints,
                stopped,
                http_stopped,
            ))
        }
        _ => tokio::spawn(http::serve(
            metrics_listener,
            metrics,
            endpoints,
            stopped,
            http_stopped,
        )),
    };
    tracing::info!(terminals = %terminal_addr, terminals_tls = ?terminal_tls_addr, metrics = %metrics_addr, journal = %config.journal.place(), "switch listening");
    Ok(Running {
        terminal_addr,
        terminal_tls_addr,
        tls_cert,
        metrics_addr,
        node,
        reloader,
        pid_file,
        stop,
        http_stop,
        server,
        tls_server,
        http,
        watchdog,
        gauges,
        expiry,
        _lock: opened.lock,
    })
}

/// A journal opened for a switch, and how to watch it.
struct Opened {
    /// SQLite: held for the process's life.
    lock: Option<JournalLock>,
    /// What the watchdog checks.
    watch: watchdog::Watched,
    /// The journal's id.
    id: String,
}

/// How often the checkpointer copies the SQLite WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The SQLite journal: ours alone, the one that was here, and writable.
fn open_sqlite(
    config: &Config,
    observer: crate::journal::BatchObserver,
    metrics: Arc<Metrics>,
) -> Result<(Journal, Opened)> {
    let path = &config.journal.path;
    let lock = owner::lock(path)?;
    let found = owner::before_open(path, !config.production)?;
    let mut writer = Sqlite::open(path).map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    let journal_id = writer
        .journal_id()
        .map_err(|e| anyhow!("journal {}: not writable? {e}", path.display()))?;
    owner::after_open(path, &journal_id)?;
    writer
        .probe()
        .map_err(|e| anyhow!("journal {}: not writable: {e}", path.display()))?;
    if found == owner::Found::Nothing {
        tracing::warn!(journal = %path.display(), id = %journal_id, "no journal here: a new one was created (first run)");
    }
    let identity = owner::Identity::of(path)?;
    let reader =
        Sqlite::open_reader(path).map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    let mut checkpointer =
        Sqlite::open_checkpointer(path).map_err(|e| anyhow!("journal {}: {e}", path.display()))?;
    let journal = Journal::start(writer, reader, config.journal.group_commit_max, observer)
        .with_housekeeping("journal-checkpoint", CHECKPOINT_EVERY, {
            let mut failing = false;
            move || {
                let started = std::time::Instant::now();
                match checkpointer.checkpoint() {
                    Ok(done) => {
                        metrics
                            .journal_checkpoint
                            .observe(started.elapsed().as_secs_f64());
                        metrics.journal_wal_frames.set(done.wal_frames);
                        if std::mem::take(&mut failing) {
                            tracing::info!("journal checkpoints work again");
                        }
                    }
                    // Said once; the writer's own checkpoints keep the WAL bounded meanwhile.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "journal checkpoint failed: the writer checkpoints on its own meanwhile");
                    }
                    Err(_) => {}
                }
            }
        });
    Ok((
        journal,
        Opened {
            lock: Some(lock),
            watch: watchdog::Watched::File(identity),
            id: journal_id,
        },
    ))
}

/// The PostgreSQL journal, shared with the other nodes: its schema brought up to date
/// (nodes starting together take turns), its id, a write that works.
fn open_postgres(
    config: &Config,
    url: &str,
    observer: crate::journal::BatchObserver,
) -> Result<(Journal, Opened)> {
    let place = config.journal.place();
    let mut writer = Postgres::connect(url).map_err(|e| anyhow!("journal {place}: {e}"))?;
    let applied = writer
        .migrate()
        .map_err(|e| anyhow!("journal {place}: migrations: {e}"))?;
    if !applied.is_empty() {
        tracing::info!(journal = %place, versions = ?applied, "journal schema migrated");
    }
    let journal_id = writer
        .journal_id()
        .map_err(|e| anyhow!("journal {place}: {e}"))?;
    writer
        .probe()
        .map_err(|e| anyhow!("journal {place}: not writable: {e}"))?;
    let mut readers: Vec<Box<dyn Backend>> = Vec::new();
    for _ in 0..config.journal.readers {
        readers.push(Box::new(
            Postgres::connect(url).map_err(|e| anyhow!("journal {place}: {e}"))?,
        ));
    }
    let journal = Journal::start_pool(writer, readers, config.journal.group_commit_max, observer)
        .shared_by_nodes();
    Ok((
        journal,
        Opened {
            lock: None,
            watch: watchdog::Watched::Database,
            id: journal_id,
        },
    ))
}

/// Brings the PostgreSQL journal's schema up to date (`switch journal migrate`); the
/// versions applied now.
pub fn migrate_journal(config: &Config) -> Result<Vec<i64>> {
    let Some(url) = &config.journal.url else {
        bail!("journal.url is not set: a SQLite journal migrates itself when it opens");
    };
    let place = config.journal.place();
    let mut pg = Postgres::connect(url).map_err(|e| anyhow!("journal {place}: {e}"))?;
    let applied = pg
        .migrate()
        .map_err(|e| anyhow!("journal {place}: migrations: {e}"))?;
    pg.journal_id()
        .map_err(|e| anyhow!("journal {place}: {e}"))?;
    Ok(applied)
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
