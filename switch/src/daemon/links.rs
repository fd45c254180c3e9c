//! Issuer links: each configured issuer's lines and store-and-forward worker, started
//! with the node and changed by a reload without dropping a request in flight.
//!
//! ```text
//!  reload ─▶ issuers of the new configuration
//!              ├─ section unchanged ─▶ the running issuer, kept (lines stay up)
//!              └─ new or changed    ─▶ a new issuer: its lines dial now
//!            rules swapped ─▶ issuers gone or replaced retire:
//!              worker stopped (a successor's worker takes the queue over)
//!              ─▶ once no request under the old rules is left and none waits for an
//!                 answer (or after the time-out) ─▶ lines closed
//! ```
//!
//! A queue belongs to the issuer's name, not to its lines: a changed issuer's queue goes
//! on with its successor; a removed issuer's entries stay in the journal.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Environment;
use crate::config::{Config, IssuerConfig};
use crate::hsm::KeyRef;
use crate::issuer::Issuer;
use crate::metrics::{IssuerLines, Metrics};
use crate::net::Dialer;
use crate::pipeline::Switch;
use crate::pipeline::rules::Rules;
use crate::saf::worker::Worker;

/// One issuer's running tasks.
struct Link {
    issuer: Arc<Issuer>,
    /// Its configuration as it was made from, to tell a changed section.
    made_from: String,
    lines_stop: watch::Sender<bool>,
    lines: Vec<JoinHandle<()>>,
    /// Its worker (none while a predecessor's still runs).
    worker: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// The issuers of a configuration, made but not started: the running ones kept, new ones
/// with what their lines dial through.
pub(crate) struct Made {
    /// In configuration order.
    pub(crate) issuers: Vec<Arc<Issuer>>,
    /// By issuer: its dialer when it is new (TLS files read already), `None` when running.
    dialers: Vec<Option<Arc<dyn Dialer>>>,
}

/// Every issuer's lines and worker.
pub(crate) struct Links {
    env: Environment,
    holder: String,
    running: Mutex<Vec<Link>>,
    /// Retiring issuers, waited for at stop.
    retiring: Mutex<Vec<JoinHandle<()>>>,
}

/// What a link is made from: the section, and the acquirer id its messages carry.
fn made_from(c: &IssuerConfig, config: &Config) -> String {
    format!(
        "{}|{}",
        serde_json::to_string(c).unwrap_or_default(),
        config.acquirer.institution_id
    )
}

impl Links {
    /// No links yet.
    pub(crate) fn new(env: Environment, holder: String) -> Self {
        Self {
            env,
            holder,
            running: Mutex::new(Vec::new()),
            retiring: Mutex::new(Vec::new()),
        }
    }

    /// The issuers of `config` with their zone keys: the running one where its section
    /// is unchanged, else a new one (not started). On an error nothing is left behind.
    pub(crate) fn issuers(
        &self,
        config: &Config,
        zone: Vec<(KeyRef, KeyRef)>,
        metrics: &Arc<Metrics>,
    ) -> Result<Made> {
        let mut made = Made {
            issuers: Vec::new(),
            dialers: Vec::new(),
        };
        let r = self.make(config, zone, metrics, &mut made);
        if r.is_err() {
            self.discard(&made);
        }
        r.map(|()| made)
    }

    fn make(
        &self,
        config: &Config,
        zone: Vec<(KeyRef, KeyRef)>,
        metrics: &Arc<Metrics>,
        made: &mut Made,
    ) -> Result<()> {
        let running = self.running.lock().map_err(|_| anyhow!("issuer links"))?;
        for (i, (c, (zpk, zak))) in config.issuers.iter().zip(zone).enumerate() {
            let from = made_from(c, config);
            if let Some(l) = running
                .iter()
                .find(|l| l.issuer.name == c.name && l.made_from == from)
            {
                made.issuers.push(Arc::clone(&l.issuer));
                made.dialers.push(None);
                continue;
            }
            // An issuer whose lines speak TLS dials through its own TLS layer.
            let dialer: Arc<dyn Dialer> = match &c.tls {
                Some(tls) => Arc::new(crate::tls::TlsDialer::new(
                    Arc::clone(&self.env.dialer),
                    tls,
                    &format!("issuers[{i}].tls"),
                    Arc::clone(metrics),
                )?),
                None => Arc::clone(&self.env.dialer),
            };
            metrics.prime_issuer(&IssuerLines {
                name: &c.name,
                lines: &c.lines,
            });
            let issuer = Issuer::new(
                c,
                &config.acquirer.institution_id,
                zpk,
                zak,
                Arc::clone(metrics),
                self.env.clock.now().0 as u64 / 1_000,
            )
            .map_err(|e| anyhow!("issuers[{i}].dialect: {e}"))?
            .with_owner(&self.holder);
            made.issuers.push(Arc::new(issuer));
            made.dialers.push(Some(dialer));
        }
        Ok(())
    }

    /// Issuers made for a configuration that was not applied: their line series go
    /// (unless a running issuer has the same line).
    pub(crate) fn discard(&self, made: &Made) {
        let Ok(running) = self.running.lock() else {
            return;
        };
        for (issuer, dialer) in made.issuers.iter().zip(&made.dialers) {
            if dialer.is_none() {
                continue;
            }
            for line in issuer.lines() {
                let configured = running.iter().any(|l| {
                    l.issuer.name == issuer.name
                        && l.issuer.lines().iter().any(|r| r.addr == line.addr)
                });
                if !configured {
                    issuer.metrics.forget_line(&issuer.name, &line.addr);
                }
            }
        }
    }

    /// Runs `issuers` (those of `config`, now in the switch's rules): new ones start, ones
    /// no longer there retire once the requests under `old` (the rules they were in)
    /// are answered.
    pub(crate) fn run(
        self: &Arc<Self>,
        switch: &Arc<Switch>,
        config: &Config,
        made: Made,
        old: Weak<Rules>,
    ) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let issuers = &made.issuers;
        let (kept, gone): (Vec<Link>, Vec<Link>) = running
            .drain(..)
            .partition(|l| issuers.iter().any(|i| Arc::ptr_eq(i, &l.issuer)));
        *running = kept;
        for (i, (issuer, dialer)) in issuers.iter().zip(made.dialers).enumerate() {
            let (Some(dialer), Some(c)) = (dialer, config.issuers.get(i)) else {
                continue;
            };
            let (lines_stop, stopped) = watch::channel(false);
            let lines = issuer
                .lines()
                .iter()
                .map(|line| {
                    tokio::spawn(crate::issuer::line::run(
                        Arc::clone(issuer),
                        Arc::clone(line),
                        Arc::clone(&dialer),
                        Arc::clone(&self.env.clock),
                        stopped.clone(),
                    ))
                })
                .collect();
            // A changed issuer's queue goes on with the new one once the old worker stops
            // (the retiring issuer hands it over).
            let predecessor = gone.iter().any(|g| g.issuer.name == issuer.name);
            let worker = (!predecessor).then(|| self.worker(switch, issuer));
            running.push(Link {
                issuer: Arc::clone(issuer),
                made_from: made_from(c, config),
                lines_stop,
                lines,
                worker,
            });
        }
        let configured: Vec<(String, String)> = config
            .issuers
            .iter()
            .flat_map(|c| c.lines.iter().map(|l| (c.name.clone(), l.clone())))
            .collect();
        for link in gone {
            let retire = retire(
                link,
                old.clone(),
                (Arc::clone(self), Arc::clone(switch)),
                configured.clone(),
            );
            if let Ok(mut r) = self.retiring.lock() {
                r.retain(|h| !h.is_finished());
                r.push(tokio::spawn(retire));
            }
        }
    }

    /// `issuer`'s store-and-forward worker, started.
    fn worker(
        &self,
        switch: &Arc<Switch>,
        issuer: &Arc<Issuer>,
    ) -> (watch::Sender<bool>, JoinHandle<()>) {
        start_worker(switch, issuer, &self.env)
    }

    /// The queue of `name`, its previous worker stopped: the worker of the issuer of that
    /// name running now starts (if one waits for it).
    fn hand_over(&self, switch: &Arc<Switch>, name: &str) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if let Some(l) = running
            .iter_mut()
            .find(|l| l.issuer.name == name && l.worker.is_none())
        {
            l.worker = Some(self.worker(switch, &l.issuer));
        }
    }

    /// Stops every link (after the requests waiting on them are answered: the terminal
    /// listeners have stopped first).
    pub(crate) async fn stop(&self) {
        // Nothing runs under old rules any more: retiring issuers close at once (and hand
        // their queues over first).
        let retiring: Vec<JoinHandle<()>> = match self.retiring.lock() {
            Ok(mut r) => r.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for h in retiring {
            let _ = h.await;
        }
        let links: Vec<Link> = match self.running.lock() {
            Ok(mut r) => r.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for l in &links {
            let _ = l.lines_stop.send(true);
            if let Some((stop, _)) = &l.worker {
                let _ = stop.send(true);
            }
        }
        for l in links {
            for h in l.lines {
                let _ = h.await;
            }
            if let Some((_, h)) = l.worker {
                let _ = h.await;
            }
        }
    }

    /// Stops every task at once (a process killed).
    pub(crate) fn abort(&self) {
        if let Ok(r) = self.running.lock() {
            for l in r.iter() {
                l.lines.iter().for_each(JoinHandle::abort);
                if let Some((_, h)) = &l.worker {
                    h.abort();
                }
            }
        }
        if let Ok(r) = self.retiring.lock() {
            r.iter().for_each(JoinHandle::abort);
        }
    }
}

fn start_worker(
    switch: &Arc<Switch>,
    issuer: &Arc<Issuer>,
    env: &Environment,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker {
        issuer: Arc::clone(issuer),
        queue: switch.saf_queue(&issuer.name),
        hsm: Arc::clone(switch.hsm()),
        journal: Arc::clone(switch.journal()),
        clock: Arc::clone(&env.clock),
    };
    (stop, tokio::spawn(worker.run(stopped)))
}

/// How long a retiring issuer's lines wait at most for the requests still on them.
fn retire_within(issuer: &Issuer) -> Duration {
    issuer.timeout * 2 + Duration::from_secs(5)
}

/// An issuer no longer configured as it was: its worker stops (the worker of the issuer
/// of that name now, if any, starts on the same queue; a link that had no worker yet
/// leaves that to the one before it); its lines close once no request under the old rules
/// is left and none waits for an answer.
async fn retire(
    link: Link,
    old: Weak<Rules>,
    (links, switch): (Arc<Links>, Arc<Switch>),
    configured: Vec<(String, String)>,
) {
    let Link {
        issuer,
        lines_stop,
        lines,
        worker,
        ..
    } = link;
    if let Some((stop, h)) = worker {
        let _ = stop.send(true);
        let _ = h.await;
        links.hand_over(&switch, &issuer.name);
    }
    drop((links, switch));
    let deadline = tokio::time::Instant::now() + retire_within(&issuer);
    while (old.strong_count() > 0 || issuer.in_flight() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = lines_stop.send(true);
    for h in lines {
        let _ = h.await;
    }
    for line in issuer.lines() {
        if !configured
            .iter()
            .any(|(n, l)| *n == issuer.name && *l == line.addr)
        {
            issuer.metrics.forget_line(&issuer.name, &line.addr);
        }
    }
    tracing::info!(issuer = %issuer.name, "issuer lines of the previous configuration closed");
}
