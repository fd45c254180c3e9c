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

use std::collections::HashMap;
use std::sync::Mutex;

use codec::MessageBuilder;
use hsm_sim::Hsm;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::Timestamp;
use crate::issuer::Issuer;
use crate::journal::SafRecord;
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
    /// Sends so far.
    pub tries: u32,
    /// Not before.
    pub next_at: Instant,
}

impl Entry {
    /// An entry read back from the journal at start-up: due at once.
    pub fn from_record(r: &SafRecord) -> Self {
        Self {
            id: r.id.clone(),
            kind: r.kind,
            sealed: r.sealed.clone(),
            created: r.created,
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
            },
        ))
    }
}

/// One issuer's queue.
#[derive(Default)]
pub struct Queue {
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
}

impl Queue {
    /// Puts entries (already durable) on the queue and wakes its worker.
    pub fn enqueue(&self, issuer: &Issuer, entries: impl IntoIterator<Item = Entry>) {
        let mut n = 0;
        if let Ok(mut q) = self.entries.lock() {
            for e in entries {
                if let std::collections::hash_map::Entry::Vacant(v) = q.entry(e.id.clone()) {
                    v.insert(e);
                    n += 1;
                }
            }
            depth(issuer, q.len());
        }
        for _ in 0..n {
            issuer.metrics.saf_event(&issuer.name, "queued");
        }
        self.wake.notify_one();
    }

    /// Entries due by `now`, oldest first (an advice goes before the reversal of the same
    /// sale).
    fn due(&self, now: Instant) -> Vec<Entry> {
        let mut due: Vec<Entry> = self
            .entries
            .lock()
            .map(|q| q.values().filter(|e| e.next_at <= now).cloned().collect())
            .unwrap_or_default();
        due.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        due
    }

    /// When the next entry is due.
    fn next_due(&self) -> Option<Instant> {
        self.entries
            .lock()
            .ok()
            .and_then(|q| q.values().map(|e| e.next_at).min())
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
            depth(issuer, q.len());
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

fn depth(issuer: &Issuer, n: usize) {
    issuer
        .meters
        .saf_queued
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}
