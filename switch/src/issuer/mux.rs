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

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
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
    timed_out: Mutex<LateKeys>,
}

/// Keys of requests that timed out, remembered for [`LATE_MEMORY`] and [`LATE_KEYS`] at
/// most, oldest forgotten first. Remembering and looking up cost the same whatever the
/// count: a flood of replies for nothing, or an issuer's outage timing out a great many
/// requests, never makes each reply walk them all.
#[derive(Default)]
struct LateKeys {
    /// Each key as it was remembered, oldest first; a key looked up or remembered again
    /// since leaves its old place here to be skipped when it comes to the front.
    order: VecDeque<(Instant, Vec<u8>)>,
    /// When each key still remembered was.
    at: HashMap<Vec<u8>, Instant>,
}

impl LateKeys {
    /// Forgets what is older than [`LATE_MEMORY`], and the oldest until `room` more fit in
    /// [`LATE_KEYS`].
    fn forget_old(&mut self, now: Instant, room: usize) {
        while let Some((at, _)) = self.order.front() {
            if self.order.len() + room <= LATE_KEYS && now.duration_since(*at) < LATE_MEMORY {
                break;
            }
            if let Some((at, key)) = self.order.pop_front()
                && self.at.get(&key) == Some(&at)
            {
                self.at.remove(&key);
            }
        }
    }

    fn remember(&mut self, key: Vec<u8>, now: Instant) {
        self.forget_old(now, 1);
        self.at.insert(key.clone(), now);
        self.order.push_back((now, key));
    }

    /// Whether `key` was remembered (and is no longer).
    fn take(&mut self, key: &[u8], now: Instant) -> bool {
        self.forget_old(now, 0);
        self.at.remove(key).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }
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
            timed_out: Mutex::default(),
        }
    }

    /// The matching key: MTI class, then each configured field as its length (two bytes,
    /// `FF FF` when absent) and its wire bytes. Lengths in full, so that no two messages
    /// share a key unless their fields are the same: a length cut to one byte would let
    /// a 300-byte field and a 44-byte one, and the fields after them, run together.
    ///
    /// ```text
    ///  [class] [len hi][len lo][field a's bytes] … [FF][FF] (field b absent) …
    /// ```
    pub fn key_of(&self, msg: &Message<'_>) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        k.push(msg.mti().as_bytes()[1]);
        for n in &self.match_fields {
            match msg.field(*n) {
                // A frame is at most 65,535 bytes, header and all: a field's length fits
                // in two bytes and is never FF FF.
                Some(f) => {
                    let w = f.wire();
                    k.extend_from_slice(
                        &u16::try_from(w.len()).unwrap_or(u16::MAX - 1).to_be_bytes(),
                    );
                    k.extend_from_slice(w);
                }
                None => k.extend_from_slice(&[0xFF, 0xFF]),
            }
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
        self.late_keys().remember(key, Instant::now());
    }

    fn late_keys(&self) -> std::sync::MutexGuard<'_, LateKeys> {
        // What it holds stays consistent between two statements: a panic elsewhere while
        // it was held leaves nothing half done.
        self.timed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A reply: to its waiter, or what it is when nobody waits for it.
    pub fn deliver(&self, msg: &Message<'_>, frame: Vec<u8>) -> Result<(), Unmatched> {
        let key = self.key_of(msg);
        if let Some((_, p)) = self.pending.remove(&key) {
            let _ = p.reply.send(frame);
            return Ok(());
        }
        let late = self.late_keys().take(&key, Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Vec<u8> {
        n.to_be_bytes().to_vec()
    }

    #[test]
    fn a_key_holds_each_fields_length_in_full_and_tells_absent_from_empty() {
        let dialect = codec::Dialect::iso87_ascii();
        let mux = Mux::new(vec![48, 62]);
        let key = |f48: Option<&str>, f62: Option<&str>| {
            let mut b = codec::MessageBuilder::new(codec::Mti::new(*b"0210").unwrap());
            b.set(11, "000001");
            if let Some(v) = f48 {
                b.set(48, v);
            }
            if let Some(v) = f62 {
                b.set(62, v);
            }
            let frame = b.encode_to_vec(dialect).unwrap();
            mux.key_of(&codec::decode(dialect, &frame).unwrap())
        };
        let long = "P".repeat(300);
        let k = key(Some(&long), None);
        // 300 is 01 2C: cut to one byte it was 2C, 44.
        assert_eq!(&k[..3], &[b'2', 0x01, 0x2C]);
        assert_eq!(&k[3..303], long.as_bytes());
        assert_eq!(&k[303..], &[0xFF, 0xFF]);
        assert_ne!(key(Some(""), None), key(None, None), "empty is not absent");
        assert_eq!(key(Some("AB"), Some("C")), key(Some("AB"), Some("C")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_key_is_late_once_and_for_ten_minutes() {
        let mut late = LateKeys::default();
        late.remember(key(1), Instant::now());
        late.remember(key(2), Instant::now());
        assert!(late.take(&key(1), Instant::now()));
        assert!(!late.take(&key(1), Instant::now()), "late once only");
        tokio::time::advance(LATE_MEMORY - Duration::from_secs(1)).await;
        late.remember(key(3), Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            !late.take(&key(2), Instant::now()),
            "forgotten after ten minutes"
        );
        assert!(late.take(&key(3), Instant::now()));
        assert_eq!(late.len(), 0);
        // What was looked up leaves its place behind, until that ages out too.
        tokio::time::advance(LATE_MEMORY).await;
        assert!(!late.take(&key(3), Instant::now()));
        assert!(late.order.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_so_many_keys_are_remembered_oldest_forgotten_first() {
        let mut late = LateKeys::default();
        for n in 0..LATE_KEYS + 10 {
            late.remember(key(n), Instant::now());
        }
        assert_eq!((late.len(), late.order.len()), (LATE_KEYS, LATE_KEYS));
        assert!(!late.take(&key(9), Instant::now()));
        assert!(late.take(&key(10), Instant::now()));
        assert!(late.take(&key(LATE_KEYS + 9), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_remembered_again_keeps_its_later_time() {
        let mut late = LateKeys::default();
        late.remember(key(1), Instant::now());
        tokio::time::advance(LATE_MEMORY / 2).await;
        late.remember(key(1), Instant::now());
        tokio::time::advance(LATE_MEMORY / 2 + Duration::from_secs(1)).await;
        // The first remembering has aged out; the second has not.
        assert!(late.take(&key(1), Instant::now()));
    }
}
