//! The store-and-forward worker: one per issuer, sending its queue in order while a line
//! is up.
//!
//! ```text
//!  queue (oldest first) ─▶ head ─▶ 0420/0220 (0421/0221 again) ─┬─ acknowledged: next
//!                                                               ├─ expired: next
//!                                                               └─ no answer: wait, head again
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::hsm::MeteredHsm;
use codec::MessageBuilder;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Entry, Queue, SEAL_DOMAIN};
use crate::clock::Clock;
use crate::fault_log::Fault;
use crate::issuer::message::{ADVICE_REPEAT, REVERSAL, REVERSAL_REPEAT};
use crate::issuer::{Issuer, LinkError};
use crate::journal::{Journal, JournalError, Op, UpstreamRef};
use crate::model::{SafKind, SafState, Stan};

/// How long a node's lease on an issuer's queue lasts (renewed every second while it
/// lives): a node that dies hands the queue over after this long.
pub const LEASE_MS: i64 = 10_000;

/// How often the lease is renewed (and the journal's queue read) while the worker runs:
/// not at every wake-up, which each entry queued at this node brings. A lease renewed
/// less than this long ago has most of [`LEASE_MS`] left.
const LEASE_EVERY: Duration = Duration::from_secs(1);

/// A node without a heartbeat for this long is gone: its armed reversals (requests that died
/// with it) are sent by the node holding the queue.
pub const NODE_GONE_MS: i64 = 10_000;

/// What the worker needs.
pub struct Worker {
    /// The issuer it sends to.
    pub issuer: Arc<Issuer>,
    /// Its queue.
    pub queue: Arc<Queue>,
    /// Opens the sealed messages and MACs them.
    pub hsm: Arc<MeteredHsm>,
    /// Where results are recorded.
    pub journal: Arc<Journal>,
    /// The time of day, for the journal and expiry.
    pub clock: Arc<dyn Clock>,
}

impl Worker {
    async fn send(&self, e: &Entry) -> Result<(), LinkError> {
        let issuer = &self.issuer;
        let clear = self
            .hsm
            .inner()
            .open_record(SEAL_DOMAIN, &e.sealed)
            .map_err(|_| LinkError::Build)?;
        let msg = codec::decode(issuer.dialect, &clear).map_err(|_| LinkError::Build)?;
        let mut b = MessageBuilder::from_message(&msg);
        if e.tries > 0 {
            b.set_mti(match e.kind {
                SafKind::Reversal => REVERSAL_REPEAT,
                SafKind::Advice => ADVICE_REPEAT,
            });
        }
        let reply = issuer.exchange_queued(&self.hsm, b).await;
        if matches!(reply, Ok(_) | Err(LinkError::Timeout)) {
            issuer.metrics.saf_event(&issuer.name, "sent");
        }
        let reply = reply?;
        if let Ok(m) = codec::decode(issuer.dialect, &reply)
            && m.text(39) != Some("00")
        {
            // Still an acknowledgement: the issuer has it. Its code is for the operator.
            tracing::warn!(issuer = %issuer.name, id = %e.id, rc = m.text(39).unwrap_or("-"), "issuer acknowledged a queued message with a non-zero code");
        }
        Ok(())
    }

    /// `e` stays queued, with `tries` sends so far, due again after `wait`.
    fn try_later(&self, e: &Entry, tries: u32, wait: Duration) {
        self.queue
            .after_send(&self.issuer, &e.id, Some((tries, Instant::now() + wait)));
    }

    /// Sends one due entry and records what came of it; whether it left the queue.
    async fn deliver(&self, mut e: Entry) -> bool {
        let issuer = &self.issuer;
        let cfg = &issuer.saf_config;
        if e.armed {
            // The reversal of a request whose process is gone: taken over in the journal
            // first, so that the request, if its process was only slow, can no longer be
            // answered approved.
            let take = Op::UpdateSaf {
                id: e.id.clone(),
                state: SafState::Pending,
                tries: None,
                updated: self.clock.now(),
                from: Some(SafState::Armed),
            };
            match self.journal.commit(vec![take]).await {
                Ok(()) => {
                    // The queue's copy too: taken over once, it is pending from now on,
                    // however its send goes.
                    e.armed = false;
                    self.queue.taken_over(&e.id);
                }
                Err(JournalError::Stale(_)) => {
                    // Its request was answered after all: nothing to send.
                    self.queue.after_send(issuer, &e.id, None);
                    return true;
                }
                Err(err) => {
                    // Tried again after the first retry interval, not at once over and over
                    // while the journal cannot write.
                    crate::fault_error!(
                        Fault::JournalCommit,
                        err,
                        "cannot take over an armed reversal: tried again after its back-off",
                        issuer = tracing::field::display(&issuer.name),
                        id = tracing::field::display(&e.id),
                    );
                    self.try_later(&e, e.tries, Duration::from_secs(cfg.retry_secs));
                    return false;
                }
            }
        }
        let result = self.send(&e).await;
        if let Err(LinkError::NoMac | LinkError::Unavailable | LinkError::Duplicate) = result {
            // Not sent (no HSM to MAC it, no line, the issuer's places all taken), so not a
            // try: it goes as a first send (0420, not 0421) when it does, due again after
            // the first retry interval, the rest of the queue held back behind it.
            self.try_later(&e, e.tries, Duration::from_secs(cfg.retry_secs));
            return false;
        }
        let tries = e.tries + 1;
        let now = self.clock.now();
        let age_ms = now.0 - e.created.0;
        let expired = tries >= cfg.max_tries
            || age_ms >= i64::try_from(cfg.expiry_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let state = match result {
            Ok(()) => SafState::Acknowledged,
            Err(LinkError::Build) => SafState::Expired,
            Err(_) if expired => SafState::Expired,
            Err(_) => SafState::Pending,
        };
        let op = Op::UpdateSaf {
            id: e.id.clone(),
            state,
            tries: Some(tries),
            updated: now,
            from: None,
        };
        let backoff =
            Duration::from_secs(cfg.retry_secs).saturating_mul(1u32 << (tries - 1).min(6));
        if let Err(err) = self.journal.commit(vec![op]).await {
            // Not recorded: sent again after its back-off, as a repeat (the issuer dedups
            // repeats), and recorded then; not again at once while the journal cannot
            // write, which would flood the issuer and the log.
            crate::fault_error!(
                Fault::JournalCommit,
                err,
                "cannot journal a store-and-forward result: sent again after its back-off",
                issuer = tracing::field::display(&issuer.name),
                id = tracing::field::display(&e.id),
            );
            self.try_later(&e, tries, backoff);
            return false;
        }
        let retry = (state == SafState::Pending).then(|| (tries, Instant::now() + backoff));
        self.queue.after_send(issuer, &e.id, retry);
        match state {
            SafState::Acknowledged => {
                issuer.metrics.saf_event(&issuer.name, "acknowledged");
                tracing::info!(issuer = %issuer.name, id = %e.id, kind = e.kind.as_str(), tries, "issuer acknowledged");
            }
            SafState::Expired => {
                issuer.metrics.saf_event(&issuer.name, "expired");
                tracing::error!(issuer = %issuer.name, id = %e.id, kind = e.kind.as_str(), tries, "store-and-forward entry expired unacknowledged: settle it with the issuer by hand");
            }
            _ => {}
        }
        state != SafState::Pending
    }

    /// An approval that arrived for no request the switch knows: reversed, durably.
    async fn reverse_unknown(&self, frame: &[u8]) {
        let issuer = &self.issuer;
        let Ok(msg) = codec::decode(issuer.dialect, frame) else {
            return;
        };
        // Only the issuer's own approval: one under another key was not its word. When the
        // HSM cannot tell, it is reversed: a reversal of an approval that may be real is the
        // side that loses no one's money.
        if issuer.reply_mac(&self.hsm, frame).await == Some(false) {
            issuer.note_bad_mac(false);
            return;
        }
        tracing::warn!(issuer = %issuer.name, mti = %msg.mti(), "approval for no waiting request: reversing it");
        let (Some(stan), Some(time), Some(mti)) = (
            msg.digits(11).and_then(|d| d.to_u64()),
            msg.digits(7).map(|d| d.to_string()),
            codec::Mti::new([b'0', msg.mti().as_bytes()[1], b'0', b'0']),
        ) else {
            tracing::warn!(issuer = %issuer.name, "unknown approval without 11 or 7: cannot reverse it");
            return;
        };
        let original = UpstreamRef {
            issuer: issuer.name.clone(),
            mti,
            stan: Stan(stan as u32),
            time: time.clone(),
        };
        let mut b = MessageBuilder::from_message(&msg);
        b.set_mti(REVERSAL);
        b.retain(|n| !matches!(n, 38 | 39 | 52 | 53 | 54 | 55 | 35 | 64));
        b.set(90, original.field90(&issuer.acquirer_id));
        let tid = msg.text(41).unwrap_or("-");
        let id = format!("late:{}:{tid}:{}:{time}", issuer.name, original.stan);
        let Some((entry, record)) = Entry::new(
            self.hsm.inner(),
            issuer,
            id,
            SafKind::Reversal,
            &b,
            None,
            SafState::Pending,
            self.clock.now(),
        ) else {
            return;
        };
        match self
            .journal
            .commit(vec![Op::PutSaf(Box::new(record))])
            .await
        {
            Ok(()) => self.queue.enqueue(issuer, [entry]),
            Err(e) => {
                tracing::error!(error = %e, "cannot queue the reversal of an unknown approval")
            }
        }
    }

    /// With a journal shared by nodes: whether this node holds the issuer's queue now (it
    /// then sends what the journal holds, in order; the others only add to it).
    async fn lease(&self) -> bool {
        let (issuer, node) = (self.issuer.name.clone(), self.issuer.owner.clone());
        let now = self.clock.now();
        let held = self
            .journal
            .write(move |b| b.saf_lease(&issuer, &node, now, now.plus_ms(LEASE_MS)))
            .await;
        match held {
            Ok(true) => {}
            Ok(false) => {
                self.queue.let_go(&self.issuer);
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, issuer = %self.issuer.name, "cannot take the store-and-forward lease");
                return false;
            }
        }
        // All of it when the lease is new, then what changed since: a queue left by a
        // long outage is not read whole every second.
        let issuer = self.issuer.name.clone();
        let alive_since = now.plus_ms(-NODE_GONE_MS);
        let since = self.queue.journal_mark();
        match self
            .journal
            .read(move |b| b.saf_changes(&issuer, since, alive_since))
            .await
        {
            Ok(changes) => {
                self.queue.follow_journal(&self.issuer, &changes);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, issuer = %self.issuer.name, "cannot read the store-and-forward queue");
                false
            }
        }
    }

    /// Sends the issuer's queue until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let issuer = Arc::clone(&self.issuer);
        let shared = self.journal.is_shared();
        let mut leased: Option<(Instant, bool)> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            for frame in issuer.take_unknown_approvals() {
                self.reverse_unknown(&frame).await;
            }
            let mine = !shared
                || match leased {
                    Some((at, held)) if at.elapsed() < LEASE_EVERY => held,
                    _ => {
                        let held = self.lease().await;
                        leased = Some((Instant::now(), held));
                        held
                    }
                };
            if mine && issuer.is_up() {
                // In order: one that is not through holds back the rest. The queue hands
                // out a few hundred at a time; all that are due go in this pass.
                'pass: loop {
                    let due = self.queue.due(Instant::now());
                    let more = due.len() == super::DUE_AT_ONCE;
                    for e in due {
                        if !issuer.is_up() || *stop.borrow() || !self.deliver(e).await {
                            break 'pass;
                        }
                    }
                    if !more {
                        break;
                    }
                }
            }
            // While no line is up, a line coming up wakes the worker; with a shared journal
            // the lease is renewed and the queue read again every second.
            let wait = match self.queue.next_due() {
                _ if !issuer.is_up() || shared => Duration::from_secs(1),
                None => Duration::from_secs(3600),
                Some(n) => n
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(50)),
            };
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = self.queue.wake.notified() => {}
                _ = issuer.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
