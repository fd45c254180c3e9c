//! Matching replies to requests on an issuer's lines.
//!
//! ```text
//!  request ─▶ key = (MTI class, configured fields' wire bytes) ─▶ pending[key] = waiter
//!  reply   ─▶ key ─┬─ pending  ─▶ the waiter gets the frame
//!                  ├─ timed out a moment ago ─▶ late (counted; its reversal is queued)
//!                  ├─ an approval nobody asked for ─▶ to be reversed
//!                  └─ anything else ─▶ ignored (counted)
//! ```
//!
//! A second request with a key already waiting is refused, never crossed with the first's
//! reply.

use std::time::Duration;

use codec::Message;
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a timed-out request's key is remembered, to tell a late reply from an unknown
/// one.
const LATE_MEMORY: Duration = Duration::from_secs(600);

/// Keys remembered at most; older ones go first.
const LATE_KEYS: usize = 100_000;

/// A reply that matched no waiting request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// Its request timed out a moment ago (and is being reversed).
    Late,
    /// An approval for a request nobody knows: it must be reversed.
    UnknownApproval,
    /// Anything else: nothing to do.
    Stray,
}

struct Pending {
    line: usize,
    reply: oneshot::Sender<Vec<u8>>,
}

/// The requests waiting on one issuer's lines.
pub struct Mux {
    match_fields: Vec<u8>,
    pending: DashMap<Vec<u8>, Pending>,
    timed_out: DashMap<Vec<u8>, Instant>,
}

/// A second request with the same key is waiting.
#[derive(Clone, Copy, Debug)]
pub struct DuplicateKey;

impl Mux {
    /// Matching by the MTI class and `match_fields`.
    pub fn new(match_fields: Vec<u8>) -> Self {
        Self {
            match_fields,
            pending: DashMap::new(),
            timed_out: DashMap::new(),
        }
    }

    /// The matching key: MTI class, then each configured field's wire bytes.
    pub fn key_of(&self, msg: &Message<'_>) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        k.push(msg.mti().as_bytes()[1]);
        for n in &self.match_fields {
            let w = msg.field(*n).map_or(&[][..], |f| f.wire());
            k.push(w.len() as u8);
            k.extend_from_slice(w);
        }
        k
    }

    /// Waits for the reply with `key`, on `line`.
    pub fn wait_for(
        &self,
        key: Vec<u8>,
        line: usize,
    ) -> Result<oneshot::Receiver<Vec<u8>>, DuplicateKey> {
        let (tx, rx) = oneshot::channel();
        match self.pending.entry(key) {
            dashmap::Entry::Occupied(_) => Err(DuplicateKey),
            dashmap::Entry::Vacant(v) => {
                v.insert(Pending { line, reply: tx });
                Ok(rx)
            }
        }
    }

    /// The request was not sent after all.
    pub fn cancel(&self, key: &[u8]) {
        self.pending.remove(key);
    }

    /// The request will get no answer: a late reply to it is known as late.
    pub fn gave_up(&self, key: Vec<u8>) {
        self.pending.remove(&key);
        if self.timed_out.len() > LATE_KEYS {
            let now = Instant::now();
            self.timed_out
                .retain(|_, at| now.duration_since(*at) < LATE_MEMORY);
        }
        self.timed_out.insert(key, Instant::now());
    }

    /// A reply: to its waiter, or what it is when nobody waits for it.
    pub fn deliver(&self, msg: &Message<'_>, frame: Vec<u8>) -> Result<(), Unmatched> {
        let key = self.key_of(msg);
        if let Some((_, p)) = self.pending.remove(&key) {
            let _ = p.reply.send(frame);
            return Ok(());
        }
        let late = self.timed_out.remove(&key).is_some();
        let now = Instant::now();
        self.timed_out
            .retain(|_, at| now.duration_since(*at) < LATE_MEMORY);
        let approved = msg.text(39) == Some("00");
        let financial = matches!(msg.mti().as_bytes()[1], b'1' | b'2');
        Err(if late {
            Unmatched::Late
        } else if approved && financial {
            Unmatched::UnknownApproval
        } else {
            Unmatched::Stray
        })
    }

    /// A line went down: its waiting requests get no answer (their waiters see the sender
    /// dropped).
    pub fn fail_line(&self, line: usize) {
        self.pending.retain(|_, p| p.line != line);
    }
}
