//! Duplicate detection: which requests (terminal, batch, trace, MTI) the switch has seen,
//! what it answered, and which are in progress.
//!
//! ```text
//!              ┌ in flight (claimed, being processed) ── same digest: wait for its answer
//!  key ──▶ ────┼ answered, in the cache               ── same digest: the answer again
//!              ├ answered, only in the journal        ── read back (one query), then as above
//!              └ never seen                           ── claim it
//! ```
//!
//! Memory holds what is in flight (bounded by the connections' in-flight limits), a
//! bounded cache of recent answers, and per terminal the highest trace number of its open
//! batch that the journal may hold: a request above it is new without asking the journal
//! (terminals number their requests upwards), one below it that the cache does not know is
//! looked up. So neither memory nor a restart grows with the open batches. With a journal
//! several nodes share, a key memory does not know is processed as new, and the journal
//! tells at commit: its unique key refuses a request another node answered (the first
//! answer is given again), and a reversal that came first at another node refuses the
//! original.
//!
//! A reversal holds the key of the request it reverses while it works out what to undo:
//! an original arriving meanwhile waits, then finds the reversal's answer (refused if it
//! came first).

use dashmap::DashMap;
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use super::cache::BoundedCache;
use crate::model::{AuthCode, BatchNo, ResponseCode, Rrn, Stan, Tid, TxnKey};

/// What was answered to a request, enough to answer its retransmission the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Keyed digest of the request.
    pub digest: [u8; 32],
    /// Response code.
    pub code: ResponseCode,
    /// RRN (none for a request answered without being journalled).
    pub rrn: Option<Rrn>,
    /// Authorisation code.
    pub auth_code: Option<AuthCode>,
    /// Balance reported (balance inquiries).
    pub balance_fen: Option<i64>,
    /// Whether the reply carried a MAC.
    pub mac_reply: bool,
    /// Whether the reply asked the terminal to sign on again.
    pub sign_on_again: bool,
    /// Settlement: field 48 of the reply.
    pub field48: Option<String>,
}

impl Recorded {
    /// A journalled transaction's answer.
    pub fn from_record(t: &crate::journal::TxnRecord) -> Self {
        Self {
            digest: t.request_digest,
            code: t.response_code,
            rrn: Some(t.rrn),
            auth_code: t.auth_code,
            balance_fen: t.balance_fen,
            mac_reply: t.response_code.answered_with_mac(),
            sign_on_again: t.response_code.asks_sign_on(),
            field48: t.reply_48.clone(),
        }
    }
}

/// A key seen before.
#[derive(Clone, Debug)]
enum Seen {
    /// Answered.
    Answered(Recorded),
    /// A reversal came before this (original) request: when it comes, it is refused.
    ReversedEarly,
}

/// A claim in progress.
struct InFlight {
    /// The claimant's digest; `None` for a reversal holding its original's key.
    digest: Option<[u8; 32]>,
    done: Arc<Outcome>,
}

/// How a claim ended, for the requests that waited for it (a retransmission that came
/// while the first was in progress): set once, when the claim is completed or let go.
/// One allocation and one lock to wake nobody, which is what almost every claim does; a
/// `watch` channel made a larger block and took eight locks when it sent.
#[derive(Default)]
struct Outcome {
    /// `Some(None)`: let go without an answer.
    ended: OnceLock<Option<Recorded>>,
    woken: Notify,
}

impl Outcome {
    fn end(&self, answer: Option<Recorded>) {
        let _ = self.ended.set(answer);
        self.woken.notify_waiters();
    }

    /// Waits for the end; `None` when the claim was let go without an answer.
    async fn ended(&self) -> Option<Recorded> {
        loop {
            // Registered before looking, so an end between the two still wakes it.
            let woken = self.woken.notified();
            if let Some(answer) = self.ended.get() {
                return answer.clone();
            }
            woken.await;
        }
    }
}

/// What claiming a key came to.
pub enum Claimed<'a> {
    /// First sight: process it, then complete the claim.
    New(Claim<'a>),
    /// Its reversal came first: refused (and the refusal completes the claim, so a
    /// retransmission gets it again); nothing moves.
    ReversedEarly(Claim<'a>),
    /// Seen and answered: the same answer again.
    Replay(Recorded),
    /// Same key, different content: `94`.
    Conflict,
}

/// The outcomes of recent requests.
pub struct Recent {
    /// Another node may have journalled any key: a key memory does not know is looked up.
    shared: bool,
    in_flight: DashMap<TxnKey, InFlight, Seeded>,
    answered: BoundedCache<TxnKey, Seen>,
    /// Per terminal: the highest trace number the journal may hold, for its two newest
    /// batches.
    high_water: DashMap<Tid, HighWater, Seeded>,
}

/// The two maps' hash: foldhash with a seed drawn for each map, a few instructions a key
/// where SipHash took ~1,200 a sale over their five look-ups. Their keys come only from
/// requests whose MAC verified (a claim is made after authentication), and a seed no
/// terminal can learn leaves nothing to aim collisions at.
type Seeded = foldhash::fast::RandomState;

/// A terminal's highest trace numbers, for its newest batch and the one before.
#[derive(Clone, Copy, Debug)]
struct HighWater {
    newer: (BatchNo, Stan),
    older: Option<(BatchNo, Stan)>,
}

impl HighWater {
    fn get(&self, batch: BatchNo) -> Option<Stan> {
        if self.newer.0 == batch {
            return Some(self.newer.1);
        }
        self.older.filter(|o| o.0 == batch).map(|o| o.1)
    }

    /// Raises the mark of `batch` to at least `stan`. A batch older than both is not kept
    /// (its requests are looked up in the journal; its unique key is the last guard).
    fn raise(&mut self, batch: BatchNo, stan: Stan) {
        let slot = if self.newer.0 == batch {
            &mut self.newer.1
        } else if let Some(o) = self.older.as_mut().filter(|o| o.0 == batch) {
            &mut o.1
        } else if batch > self.newer.0 {
            self.older = Some(self.newer);
            self.newer = (batch, stan);
            return;
        } else if self.older.is_none_or(|o| batch > o.0) {
            self.older = Some((batch, stan));
            return;
        } else {
            return;
        };
        if stan > *slot {
            *slot = stan;
        }
    }
}

/// A claimed key: the request is processed; completing the claim records its answer for
/// retransmissions, dropping it (nothing journalled) leaves the key free.
pub struct Claim<'a> {
    recent: &'a Recent,
    key: TxnKey,
    done: Option<Arc<Outcome>>,
}

impl<'a> Claim<'a> {
    /// The key.
    pub fn key(&self) -> TxnKey {
        self.key
    }

    /// The request was journalled and answered `recorded`: a retransmission gets it.
    pub fn complete(mut self, recorded: Recorded) {
        self.recent
            .answered
            .insert(self.key, Seen::Answered(recorded.clone()));
        self.release(Some(recorded));
    }

    /// A reversal's hold on its original's key: from now on the original is refused.
    pub fn tombstone(mut self) {
        self.recent.answered.insert(self.key, Seen::ReversedEarly);
        self.release(None);
    }

    fn release(&mut self, outcome: Option<Recorded>) {
        if let Some(done) = self.done.take() {
            self.recent.in_flight.remove(&self.key);
            // Waiters read the outcome; with none they look again (and find the cache).
            done.end(outcome);
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.release(None);
    }
}

/// Where the journal is asked, when memory cannot tell.
pub trait Lookup {
    /// The highest trace number journalled for a terminal's batch.
    fn max_stan(
        &self,
        tid: Tid,
        batch: BatchNo,
    ) -> impl std::future::Future<Output = Result<Option<Stan>, ()>> + Send;
    /// What the journal holds for a key: the request's own answer, or (for a 0200) whether
    /// a reversal of it is journalled.
    fn seen(
        &self,
        key: TxnKey,
    ) -> impl std::future::Future<Output = Result<Option<(Option<Recorded>, bool)>, ()>> + Send;
}

/// Why a claim could not be made.
#[derive(Debug)]
pub enum ClaimError {
    /// The journal could not be read: the request cannot be told from a retransmission.
    Journal,
}

impl Recent {
    /// Empty, caching up to `capacity` answers.
    pub fn new(capacity: usize, shared: bool) -> Self {
        Self {
            shared,
            in_flight: DashMap::with_hasher(Seeded::default()),
            answered: BoundedCache::new(capacity),
            high_water: DashMap::with_hasher(Seeded::default()),
        }
    }

    /// Claims `key` for a request with `digest`, or finds it seen before. An identical copy
    /// of a request in progress waits for its answer.
    pub async fn claim(
        &self,
        key: TxnKey,
        digest: [u8; 32],
        journal: &impl Lookup,
    ) -> Result<Claimed<'_>, ClaimError> {
        let claim = match self.take(key, Some(digest)).await {
            Ok(c) => c,
            Err(Some(r)) if r.digest == digest => return Ok(Claimed::Replay(r)),
            Err(_) => return Ok(Claimed::Conflict),
        };
        match self.answered.get(&key) {
            Some(Seen::Answered(r)) if r.digest == digest => return Ok(Claimed::Replay(r)),
            Some(Seen::Answered(_)) => return Ok(Claimed::Conflict),
            Some(Seen::ReversedEarly) => return Ok(Claimed::ReversedEarly(claim)),
            None => {}
        }
        // With a shared journal a key memory does not know is taken as new: if another node
        // has it, the journal's unique key refuses this request's commit and its first
        // answer is given (a reversal that came first refuses it likewise).
        if !self.shared && !self.above_high_water(key, journal).await? {
            match journal.seen(key).await.map_err(|()| ClaimError::Journal)? {
                Some((Some(r), _)) => {
                    self.answered.insert(key, Seen::Answered(r.clone()));
                    return Ok(if r.digest == digest {
                        Claimed::Replay(r)
                    } else {
                        Claimed::Conflict
                    });
                }
                Some((None, true)) => return Ok(Claimed::ReversedEarly(claim)),
                _ => {}
            }
        }
        self.raise_high_water(key);
        Ok(Claimed::New(claim))
    }

    /// Holds the key of the original a reversal names: waits while it is in progress, then
    /// keeps it from starting until the reversal is done. Returns the hold, and the
    /// original's answer when one is known.
    pub async fn hold_original(
        &self,
        key: TxnKey,
        journal: &impl Lookup,
    ) -> Result<(Claim<'_>, Option<Recorded>, bool), ClaimError> {
        let hold = loop {
            match self.take(key, None).await {
                Ok(c) => break c,
                // Another reversal of the same original holds it: wait, then look again.
                Err(_) => continue,
            }
        };
        match self.answered.get(&key) {
            Some(Seen::Answered(r)) => return Ok((hold, Some(r), false)),
            Some(Seen::ReversedEarly) => return Ok((hold, None, true)),
            None => {}
        }
        if self.above_high_water(key, journal).await? {
            self.raise_high_water(key);
            return Ok((hold, None, false));
        }
        let seen = journal.seen(key).await.map_err(|()| ClaimError::Journal)?;
        self.raise_high_water(key);
        Ok(match seen {
            Some((r, reversed)) => (hold, r, reversed),
            None => (hold, None, false),
        })
    }

    /// Takes the key's in-flight slot: `Ok` when it was free; else waits for the holder and
    /// returns what it answered (`Err(None)` for another claimant that should not wait:
    /// different content).
    async fn take(
        &self,
        key: TxnKey,
        digest: Option<[u8; 32]>,
    ) -> Result<Claim<'_>, Option<Recorded>> {
        loop {
            let wait = match self.in_flight.entry(key) {
                dashmap::Entry::Vacant(v) => {
                    let done = Arc::new(Outcome::default());
                    v.insert(InFlight {
                        digest,
                        done: Arc::clone(&done),
                    });
                    return Ok(Claim {
                        recent: self,
                        key,
                        done: Some(done),
                    });
                }
                dashmap::Entry::Occupied(o) => {
                    let f = o.get();
                    // A reversal's hold, or the same request again: wait for it. A
                    // different request with the same key while the first is in progress:
                    // a conflict, at once.
                    if f.digest.is_some() && digest.is_some() && f.digest != digest {
                        return Err(None);
                    }
                    Arc::clone(&f.done)
                }
            };
            // The map's lock is released here, before waiting.
            // Without an answer (the holder went away, or released the key empty-handed),
            // look again.
            if let Some(r) = wait.ended().await
                && digest.is_some()
            {
                return Err(Some(r));
            }
            tokio::task::yield_now().await;
        }
    }

    /// Whether `key` is above the highest trace number the journal may hold for its
    /// terminal's batch (learned from the journal once per terminal and batch).
    async fn above_high_water(
        &self,
        key: TxnKey,
        journal: &impl Lookup,
    ) -> Result<bool, ClaimError> {
        if self.shared {
            // Other nodes number nothing for this one: ask the journal.
            return Ok(false);
        }
        if let Some(stan) = self.high_water.get(&key.tid).and_then(|h| h.get(key.batch)) {
            return Ok(key.stan > stan);
        }
        let max = journal
            .max_stan(key.tid, key.batch)
            .await
            .map_err(|()| ClaimError::Journal)?
            .unwrap_or(Stan(0));
        let known = {
            let mut hw = self.high_water.entry(key.tid).or_insert(HighWater {
                newer: (key.batch, max),
                older: None,
            });
            hw.raise(key.batch, max);
            hw.get(key.batch).unwrap_or(max)
        };
        Ok(key.stan > known)
    }

    /// A claimed key's trace number may be journalled from now on.
    fn raise_high_water(&self, key: TxnKey) {
        self.high_water
            .entry(key.tid)
            .or_insert(HighWater {
                newer: (key.batch, key.stan),
                older: None,
            })
            .raise(key.batch, key.stan);
    }

    /// The answer recorded for `key`, if memory has it (after a panic: answer from it).
    pub fn answered(&self, key: &TxnKey) -> Option<Recorded> {
        match self.answered.get(key) {
            Some(Seen::Answered(r)) => Some(r),
            _ => None,
        }
    }

    /// Whether `key` is remembered as reversed before it came.
    pub fn is_tombstone(&self, key: &TxnKey) -> bool {
        matches!(self.answered.get(key), Some(Seen::ReversedEarly))
    }

    /// Requests in progress.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Answers cached.
    pub fn cached(&self) -> usize {
        self.answered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_water_keeps_the_two_newest_batches_and_only_rises() {
        let mut h = HighWater {
            newer: (BatchNo(3), Stan(10)),
            older: None,
        };
        h.raise(BatchNo(3), Stan(5));
        assert_eq!(h.get(BatchNo(3)), Some(Stan(10)));
        h.raise(BatchNo(2), Stan(7));
        assert_eq!(h.get(BatchNo(2)), Some(Stan(7)));
        h.raise(BatchNo(4), Stan(1));
        assert_eq!(
            (h.get(BatchNo(4)), h.get(BatchNo(3)), h.get(BatchNo(2))),
            (Some(Stan(1)), Some(Stan(10)), None)
        );
        h.raise(BatchNo(1), Stan(99));
        assert_eq!(h.get(BatchNo(1)), None);
    }

    #[tokio::test]
    async fn a_claims_waiters_hear_how_it_ended() {
        let answer = Recorded {
            digest: [7; 32],
            code: ResponseCode::APPROVED,
            rrn: Some(Rrn::from_sequence(1)),
            auth_code: None,
            balance_fen: None,
            mac_reply: true,
            sign_on_again: false,
            field48: None,
        };
        let waiting = |o: &Arc<Outcome>| {
            let o = Arc::clone(o);
            tokio::spawn(async move { o.ended().await })
        };
        // Waiting when it ends: woken with the answer.
        let done = Arc::new(Outcome::default());
        let early = waiting(&done);
        tokio::task::yield_now().await;
        assert!(!early.is_finished(), "nothing has ended yet");
        done.end(Some(answer.clone()));
        assert_eq!(early.await.unwrap(), Some(answer.clone()));
        // Asking after the end: the answer at once, and a second end changes nothing.
        done.end(None);
        assert_eq!(done.ended().await, Some(answer));
        // Let go without an answer: the waiter is woken with none, to look again.
        let gone = Arc::new(Outcome::default());
        let waiter = waiting(&gone);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gone.end(None);
        assert_eq!(waiter.await.unwrap(), None);
    }
}
