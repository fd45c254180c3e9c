//! Store-and-forward: reversals and advices an issuer must get, kept in the journal until
//! it acknowledges them.
//!
//! ```text
//!  pipeline ── journal PutSaf (armed before a request goes out; pending after a time-out,
//!              a stand-in approval or a terminal's reversal) ──▶ queue (memory + journal)
//!  worker:  due entry ─▶ 0420 / 0220 (first try) or 0421 / 0221 (repeats) ─▶ issuer
//!             0430 / 0230  ─▶ journal: acknowledged, gone from the queue
//!             no answer    ─▶ journal: tries + 1; next try after retry·2^(tries−1) (≤ 64×)
//!             max tries or expiry reached ─▶ journal: expired (logged, counted, kept)
//! ```
//!
//! An entry's message is sealed under the LMK in the journal (it holds the PAN). After a
//! restart, `armed` entries (their request's outcome never reached the journal) and
//! `pending` ones are sent again; the issuer recognises a repeat by field 90, so a
//! reversal is applied once however often it is sent.
//!
//! Dependencies run one way: the pipeline puts entries here, the worker sends them through
//! [`crate::issuer`], which knows nothing of this queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use codec::MessageBuilder;
use hsm_sim::Hsm;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::Timestamp;
use crate::issuer::Issuer;
use crate::journal::{SafChanges, SafRecord};
use crate::model::{Rrn, SafKind, SafState};

pub mod worker;

/// The seal domain of queued messages.
pub const SEAL_DOMAIN: &str = "saf";

/// A queued entry, as the worker holds it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Journal id.
    pub id: String,
    /// Reversal or advice.
    pub kind: SafKind,
    /// The message without MAC, sealed under the LMK.
    pub sealed: Vec<u8>,
    /// When queued.
    pub created: Timestamp,
    /// Place in the queue among entries made in the same instant (given by the queue).
    seq: u64,
    /// Still armed in the journal: its request's process is gone (restarted, or another
    /// node's, dead); the worker takes it over before sending it.
    pub armed: bool,
    /// Read back from the journal: the process that queued it (an armed entry is its own
    /// to send or cancel while it lives).
    pub owner: Option<String>,
    /// Sends so far.
    pub tries: u32,
    /// Not before.
    pub next_at: Instant,
}

impl Entry {
    /// Queue order: by age, then as queued (the journal's order after a restart).
    fn order(&self) -> (Timestamp, u64) {
        (self.created, self.seq)
    }

    /// An entry read back from the journal at start-up: due at once.
    pub fn from_record(r: &SafRecord) -> Self {
        Self {
            id: r.id.clone(),
            kind: r.kind,
            sealed: r.sealed.clone(),
            created: r.created,
            seq: 0,
            armed: r.state == SafState::Armed,
            owner: r.owner.clone(),
            tries: r.tries,
            next_at: Instant::now(),
        }
    }

    /// A new entry for `issuer` and its journal record in `state`: the message encoded in
    /// the issuer's dialect and sealed. `None` when it cannot be encoded or sealed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hsm: &Hsm,
        issuer: &Issuer,
        id: String,
        kind: SafKind,
        message: &MessageBuilder<'_>,
        original_rrn: Option<Rrn>,
        state: SafState,
        now: Timestamp,
    ) -> Option<(Self, SafRecord)> {
        let bytes = message.encode_to_vec(issuer.dialect).ok()?;
        let sealed = hsm.seal_record(SEAL_DOMAIN, &bytes).ok()?;
        Some((
            Self {
                id: id.clone(),
                kind,
                sealed: sealed.clone(),
                created: now,
                seq: 0,
                armed: false,
                // Made here, it is not armed in memory: the owner matters only to an entry
                // read back armed from a shared journal, which brings its own.
                owner: None,
                tries: 0,
                next_at: Instant::now(),
            },
            SafRecord {
                id,
                issuer: issuer.name.clone(),
                kind,
                mti: message.mti(),
                original_rrn,
                created: now,
                state,
                tries: 0,
                updated: now,
                sealed,
                owner: Some(issuer.owner.clone()),
            },
        ))
    }
}

/// One issuer's queue.
#[derive(Default)]
pub struct Queue {
    entries: Mutex<Entries>,
    queued: std::sync::atomic::AtomicU64,
    wake: Notify,
}

/// The entries in queue order, and where each id is. Every operation costs a logarithm of
/// the queue's length, never a walk over it: a long outage with stand-in on can leave
/// hundreds of thousands of advices, each queued and then sent in turn.
#[derive(Default)]
struct Entries {
    in_order: BTreeMap<(Timestamp, u64), Entry>,
    place: HashMap<String, (Timestamp, u64)>,
    /// Queued entries still armed in the journal (not taken over yet).
    armed: HashSet<String>,
    /// With a journal shared by nodes: armed entries of processes alive, not sent (their
    /// requests may still be answered), queued once their process is gone.
    held: HashMap<String, Entry>,
    /// With a journal shared by nodes: where the next read of the journal's queue starts
    /// (`None`: a whole read).
    mark: Option<u64>,
    /// When the journal's queue was last read whole.
    read_whole: Option<Instant>,
}

/// How often the queue is read whole from a shared journal all the same, whatever the
/// reads of its changes have said: a bound on how long anything they could miss (a
/// database whose transaction ids were set back, say) stays unsent.
const READ_WHOLE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl Entries {
    /// Adds `e` unless its id is queued already.
    fn insert(&mut self, e: Entry) -> bool {
        match self.place.entry(e.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e.order());
                if e.armed {
                    self.armed.insert(e.id.clone());
                }
                self.in_order.insert(e.order(), e);
                true
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        let at = self.place.get(id)?;
        self.in_order.get_mut(at)
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let at = self.place.remove(id)?;
        self.armed.remove(id);
        self.in_order.remove(&at)
    }

    /// Takes `id` out, queued or held.
    fn take(&mut self, id: &str) -> Option<Entry> {
        self.remove(id).or_else(|| self.held.remove(id))
    }

    /// Armed entries go where their process's life puts them: held while it lives (its
    /// request may be answered yet), queued once it is gone (the request died with it).
    /// Costs the armed entries' number, not the queue's.
    fn place_armed(&mut self, alive: &[String]) {
        let lives = |e: &Entry| e.owner.as_ref().is_some_and(|o| alive.contains(o));
        let back: Vec<String> = self
            .armed
            .iter()
            .filter(|id| {
                self.place
                    .get(*id)
                    .and_then(|at| self.in_order.get(at))
                    .is_some_and(lives)
            })
            .cloned()
            .collect();
        for id in back {
            if let Some(e) = self.remove(&id) {
                self.held.insert(id, e);
            }
        }
        let gone: Vec<String> = self
            .held
            .iter()
            .filter(|(_, e)| !lives(e))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(e) = self.held.remove(&id) {
                self.insert(e);
            }
        }
    }

    fn len(&self) -> usize {
        self.in_order.len()
    }

    /// The first in queue order: the oldest, and the one every other waits behind.
    fn head(&self) -> Option<&Entry> {
        self.in_order.values().next()
    }
}

/// Entries handed to the worker at most in one go.
const DUE_AT_ONCE: usize = 256;

impl Queue {
    /// Puts entries (already durable) on the queue and wakes its worker.
    pub fn enqueue(&self, issuer: &Issuer, entries: impl IntoIterator<Item = Entry>) {
        let mut n = 0;
        if let Ok(mut q) = self.entries.lock() {
            for mut e in entries {
                if q.place.contains_key(&e.id) {
                    continue;
                }
                e.seq = self
                    .queued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if q.insert(e) {
                    n += 1;
                }
            }
            depth(issuer, &q);
        }
        for _ in 0..n {
            issuer.metrics.saf_event(&issuer.name, "queued");
        }
        self.wake.notify_one();
    }

    /// The entries to send now (at most [`DUE_AT_ONCE`]), oldest first: the queue goes to
    /// the issuer in the order it was made, so an entry that is not due yet (waiting to be
    /// tried again) holds back every newer one. Order matters between entries about one
    /// sale: its stand-in advice before its reversal, the reversal of a void of it before
    /// its own reversal.
    fn due(&self, now: Instant) -> Vec<Entry> {
        let Ok(q) = self.entries.lock() else {
            return Vec::new();
        };
        q.in_order
            .values()
            .take_while(|e| e.next_at <= now)
            .take(DUE_AT_ONCE)
            .cloned()
            .collect()
    }

    /// When the next entry is due: the first in order, which the rest wait behind.
    fn next_due(&self) -> Option<Instant> {
        self.entries
            .lock()
            .ok()
            .and_then(|q| q.head().map(|e| e.next_at))
    }

    /// After a send: the entry tries again later, or leaves the queue.
    fn after_send(&self, issuer: &Issuer, id: &str, retry: Option<(u32, Instant)>) {
        if let Ok(mut q) = self.entries.lock() {
            match retry {
                Some((tries, at)) => {
                    if let Some(x) = q.get_mut(id) {
                        x.tries = tries;
                        x.next_at = at;
                    }
                }
                None => {
                    q.remove(id);
                }
            }
            depth(issuer, &q);
        }
    }

    /// An armed entry was taken over in the journal (it is pending there now): a later
    /// send must not try to take it over again, which would find it taken and drop it.
    fn taken_over(&self, id: &str) {
        if let Ok(mut q) = self.entries.lock()
            && let Some(x) = q.get_mut(id)
        {
            x.armed = false;
            q.armed.remove(id);
        }
    }

    /// With a journal shared by nodes, this node holding the issuer's lease: the queue
    /// follows what the journal holds to send, as [`SafChanges`] tells it (all of it, or
    /// what changed since the last read). Entries it had keep their tries and back-off;
    /// one the journal has acknowledged, expired or cancelled leaves it.
    pub fn follow_journal(&self, issuer: &Issuer, changes: &SafChanges) {
        let base = self.queued.fetch_add(
            changes.records.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Ok(mut q) = self.entries.lock() {
            let q = &mut *q;
            let mut had = if changes.complete {
                std::mem::take(q)
            } else {
                Entries::default()
            };
            for (i, r) in changes.records.iter().enumerate() {
                let kept = had.take(&r.id).or_else(|| q.take(&r.id));
                if !matches!(r.state, SafState::Pending | SafState::Armed) {
                    continue;
                }
                let mut e = kept.unwrap_or_else(|| {
                    let mut e = Entry::from_record(r);
                    e.seq = base + i as u64;
                    e
                });
                // Armed or not as the journal says (another node may have taken it over).
                e.armed = r.state == SafState::Armed;
                e.owner.clone_from(&r.owner);
                q.insert(e);
            }
            if let Some(alive) = &changes.alive {
                q.place_armed(alive);
            }
            q.mark = changes.next;
            if changes.complete {
                q.read_whole = Some(Instant::now());
            }
            depth(issuer, q);
        }
    }

    /// Where the next read of the journal's queue starts (`None`: a whole read, as every
    /// [`READ_WHOLE_EVERY`]).
    pub fn journal_mark(&self) -> Option<u64> {
        let q = self.entries.lock().ok()?;
        let recent = q
            .read_whole
            .is_some_and(|at| at.elapsed() < READ_WHOLE_EVERY);
        q.mark.filter(|_| recent)
    }

    /// Another node holds the issuer's queue: this one forgets it, and reads all of it
    /// again when it holds it next.
    pub fn let_go(&self, issuer: &Issuer) {
        if let Ok(mut q) = self.entries.lock() {
            *q = Entries::default();
            depth(issuer, &q);
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |q| q.len())
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The queue's depth and its oldest entry's creation time (0 when empty), as metrics.
fn depth(issuer: &Issuer, q: &Entries) {
    issuer
        .meters
        .saf_queued
        .set(i64::try_from(q.len()).unwrap_or(i64::MAX));
    let oldest_ms = q.head().map_or(0, |e| e.created.0);
    issuer.meters.saf_oldest.set(oldest_ms / 1_000);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn entry(id: &str, kind: SafKind, created: i64, due_in_ms: u64) -> Entry {
        Entry {
            id: id.into(),
            kind,
            sealed: Vec::new(),
            created: Timestamp(created),
            seq: 0,
            armed: false,
            owner: None,
            tries: 0,
            next_at: Instant::now() + Duration::from_millis(due_in_ms),
        }
    }

    fn record(id: &str, created: i64, state: SafState, owner: &str) -> SafRecord {
        SafRecord {
            id: id.into(),
            issuer: "cup".into(),
            kind: SafKind::Reversal,
            mti: codec::Mti::new(*b"0420").unwrap(),
            original_rrn: None,
            created: Timestamp(created),
            state,
            tries: 0,
            updated: Timestamp(created),
            sealed: Vec::new(),
            owner: Some(owner.into()),
        }
    }

    fn changes(records: Vec<SafRecord>, complete: bool, next: u64, alive: &[&str]) -> SafChanges {
        SafChanges {
            records,
            complete,
            next: Some(next),
            alive: Some(alive.iter().map(|a| (*a).to_owned()).collect()),
        }
    }

    fn queued(q: &Queue) -> Vec<(String, bool, u32)> {
        let q = q.entries.lock().unwrap();
        q.in_order
            .values()
            .map(|e| (e.id.clone(), e.armed, e.tries))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_journals_queue_is_read_whole_again_every_ten_minutes() {
        let (issuer, q) = (issuer(), Queue::default());
        let record = record("a", 1_000, SafState::Pending, "n1");
        q.follow_journal(&issuer, &changes(vec![record.clone()], true, 10, &["n1"]));
        assert_eq!(q.journal_mark(), Some(10));
        tokio::time::advance(READ_WHOLE_EVERY - Duration::from_secs(1)).await;
        q.follow_journal(&issuer, &changes(Vec::new(), false, 11, &["n1"]));
        assert_eq!(q.journal_mark(), Some(11), "reads of changes until then");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(q.journal_mark(), None, "then a whole read");
        q.follow_journal(&issuer, &changes(vec![record], true, 12, &["n1"]));
        assert_eq!(q.journal_mark(), Some(12));
    }

    #[test]
    fn a_shared_journals_queue_is_read_whole_once_then_followed_by_its_changes() {
        let (issuer, q) = (issuer(), Queue::default());
        use SafState::{Acknowledged, Armed, Cancelled, Pending};
        // The first read, whole: one pending, one armed at a node alive (held, not sent:
        // its request may still be answered), one armed at a node gone (sent).
        q.follow_journal(
            &issuer,
            &changes(
                vec![
                    record("a", 1_000, Pending, "n1"),
                    record("b", 2_000, Armed, "n2"),
                    record("c", 3_000, Armed, "n3"),
                ],
                true,
                10,
                &["n1", "n2"],
            ),
        );
        assert_eq!(queued(&q), [("a".into(), false, 0), ("c".into(), true, 0)]);
        assert_eq!(q.journal_mark(), Some(10));
        assert_eq!(gauge(&issuer, "switch_issuer_saf_queued"), Some(2));
        // Sent once, not answered: memory keeps its try and back-off.
        q.after_send(&issuer, "a", Some((1, Instant::now())));
        // The next read holds only what changed: "a" written by this node's own try (the
        // journal's row says 0 tries here: memory's count stands), a new advice, "b"
        // cancelled (its request was answered), "c" taken over.
        q.follow_journal(
            &issuer,
            &changes(
                vec![
                    record("a", 1_000, Pending, "n1"),
                    record("b", 2_000, Cancelled, "n2"),
                    record("c", 3_000, Pending, "n3"),
                    record("d", 4_000, Pending, "n1"),
                ],
                false,
                12,
                &["n1", "n2"],
            ),
        );
        assert_eq!(
            queued(&q),
            [
                ("a".into(), false, 1),
                ("c".into(), false, 0),
                ("d".into(), false, 0)
            ]
        );
        assert!(q.entries.lock().unwrap().held.is_empty());
        assert!(q.entries.lock().unwrap().armed.is_empty());
        // A read with nothing changed changes nothing, but a node's death: its armed
        // entry, held until now, joins the queue in its place by age.
        q.follow_journal(
            &issuer,
            &changes(
                vec![record("e", 3_500, Armed, "n2")],
                false,
                13,
                &["n1", "n2"],
            ),
        );
        assert_eq!(queued(&q).len(), 3, "n2 lives: its armed entry is held");
        q.follow_journal(&issuer, &changes(Vec::new(), false, 13, &["n1"]));
        assert_eq!(
            queued(&q).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["a", "c", "e", "d"]
        );
        // n2 was only slow: its armed entry, not taken over yet, is held again.
        q.follow_journal(&issuer, &changes(Vec::new(), false, 13, &["n1", "n2"]));
        assert_eq!(queued(&q).len(), 3);
        // Acknowledged (by this node's own send, or another holder's while this one had
        // let go): out of the queue.
        q.follow_journal(
            &issuer,
            &changes(
                vec![record("c", 3_000, Acknowledged, "n3")],
                false,
                14,
                &["n1", "n2"],
            ),
        );
        assert_eq!(
            queued(&q).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["a", "d"]
        );
        // A whole read again replaces everything, held entries included.
        q.follow_journal(
            &issuer,
            &changes(vec![record("d", 4_000, Pending, "n1")], true, 20, &["n1"]),
        );
        assert_eq!(queued(&q), [("d".into(), false, 0)]);
        assert!(q.entries.lock().unwrap().held.is_empty());
        // Let go (another node holds the lease): forgotten, read whole next time.
        q.let_go(&issuer);
        assert!(q.is_empty());
        assert_eq!(q.journal_mark(), None);
        assert_eq!(gauge(&issuer, "switch_issuer_saf_queued"), Some(0));
    }

    fn put(q: &Queue, e: Entry) {
        let mut e = e;
        e.seq = q.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(q.entries.lock().unwrap().insert(e));
    }

    fn ids(v: Vec<Entry>) -> Vec<String> {
        v.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_queue_goes_out_in_the_order_it_was_made() {
        let q = Queue::default();
        // Made in the same millisecond: the order they were queued in decides.
        put(&q, entry("void-reversal", SafKind::Reversal, 1_000, 0));
        put(&q, entry("sale-reversal", SafKind::Reversal, 1_000, 0));
        put(&q, entry("older-advice", SafKind::Advice, 900, 0));
        assert_eq!(
            ids(q.due(Instant::now())),
            ["older-advice", "void-reversal", "sale-reversal"]
        );
    }

    #[test]
    fn an_entry_waiting_to_be_tried_again_holds_back_the_newer_ones() {
        let q = Queue::default();
        put(&q, entry("advice", SafKind::Advice, 1_000, 60_000));
        put(&q, entry("reversal-of-it", SafKind::Reversal, 2_000, 0));
        assert!(q.due(Instant::now()).is_empty(), "the advice goes first");
        q.entries.lock().unwrap().remove("advice");
        assert_eq!(ids(q.due(Instant::now())), ["reversal-of-it"]);
    }

    fn issuer() -> Issuer {
        let cfg: crate::config::IssuerConfig =
            toml::from_str("name = \"cup\"\nlines = [\"127.0.0.1:9\"]").unwrap();
        let key = crate::hsm::KeyRef::from_text("lmk:008:U0123456789ABCDEF0123456789ABCDEF");
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        Issuer::new(
            &cfg,
            "01020000",
            key.clone().unwrap(),
            key.unwrap(),
            metrics,
            1,
        )
        .unwrap()
    }

    fn gauge(issuer: &Issuer, name: &str) -> Option<i64> {
        let line = format!("{name}{{issuer=\"cup\"}} ");
        issuer
            .metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(&line).and_then(|v| v.parse().ok()))
    }

    /// A long backlog (an outage with stand-in on) queued one by one, then sent in turn:
    /// it goes in the order it was made, a few hundred at a time, the queue's depth and
    /// oldest entry right all along, and an entry tried again holds back the rest. The
    /// length: `SAF_BACKLOG` (default 20,000).
    #[test]
    fn a_long_backlog_is_queued_and_sent_in_order() {
        let n: usize = std::env::var("SAF_BACKLOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let issuer = issuer();
        let q = Queue::default();
        for i in 0..n {
            // Ten made in each millisecond.
            let created = 1_000_000 + (i / 10) as i64;
            q.enqueue(
                &issuer,
                [entry(&format!("advice-{i}"), SafKind::Advice, created, 0)],
            );
        }
        // Queued again (a restart's read of the journal): not twice.
        q.enqueue(&issuer, [entry("advice-0", SafKind::Advice, 1_000_000, 0)]);
        assert_eq!(q.len(), n);
        assert_eq!(gauge(&issuer, "switch_issuer_saf_queued"), Some(n as i64));
        assert_eq!(
            gauge(&issuer, "switch_issuer_saf_oldest_created_seconds"),
            Some(1_000)
        );

        let mut sent = 0;
        let mut tried_again = false;
        loop {
            let due = q.due(Instant::now());
            if due.is_empty() {
                break;
            }
            assert!(due.len() <= DUE_AT_ONCE);
            for e in due {
                assert_eq!(e.id, format!("advice-{sent}"), "in the order made");
                if sent == n / 2 && !tried_again {
                    // No answer: tried again later, and nothing behind it goes meanwhile.
                    tried_again = true;
                    let later = Instant::now() + Duration::from_secs(60);
                    q.after_send(&issuer, &e.id, Some((1, later)));
                    assert!(q.due(Instant::now()).is_empty());
                    assert_eq!(q.next_due(), Some(later));
                    q.after_send(&issuer, &e.id, Some((1, Instant::now())));
                    break;
                }
                q.after_send(&issuer, &e.id, None);
                sent += 1;
            }
            assert_eq!(q.len(), n - sent);
        }
        assert_eq!(sent, n);
        assert!(q.is_empty() && q.next_due().is_none());
        assert_eq!(gauge(&issuer, "switch_issuer_saf_queued"), Some(0));
        assert_eq!(
            gauge(&issuer, "switch_issuer_saf_oldest_created_seconds"),
            Some(0)
        );
    }
}
