//! One request at a time per key: the voids, refunds and reversals of one original are
//! serialised, so each sees what the one before it committed.
//!
//! ```text
//!  lock(rrn) ─▶ entry(rrn) ─▶ Arc<Mutex> ─▶ await ─▶ guard … commit, apply … drop
//!                                                        └▶ last holder gone: entry removed
//! ```
//!
//! The table holds an entry only while someone holds or waits for it: it is bounded by the
//! requests in flight.

use std::hash::Hash;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Locks by key.
pub struct KeyedLocks<K: Hash + Eq> {
    map: DashMap<K, Arc<Mutex<()>>>,
}

impl<K: Hash + Eq + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            map: DashMap::new(),
        }
    }
}

/// A held lock; released when dropped.
pub struct KeyGuard<'a, K: Hash + Eq + Clone> {
    locks: &'a KeyedLocks<K>,
    key: K,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<K: Hash + Eq + Clone> KeyedLocks<K> {
    /// Waits for `key`'s lock. A wait given up (its future dropped) leaves nothing behind
    /// either: the guard exists from the start of the wait, and forgets the key on drop
    /// if nobody else holds or waits for it.
    pub async fn lock(&self, key: K) -> KeyGuard<'_, K> {
        let m = Arc::clone(self.map.entry(key.clone()).or_default().value());
        let mut held = KeyGuard {
            locks: self,
            key,
            guard: None,
        };
        // Dropped mid-wait, the lock's future (and its count of the entry) goes before
        // `held`, whose drop then finds the entry unshared.
        held.guard = Some(m.lock_owned().await);
        held
    }

    /// Keys locked or waited for now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<K: Hash + Eq + Clone> Drop for KeyGuard<'_, K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Nobody else holds or waits for it: forget it.
        self.locks
            .map
            .remove_if(&self.key, |_, m| Arc::strong_count(m) == 1);
    }
}

#[cfg(test)]
mod tests {
    use super::KeyedLocks;

    #[tokio::test]
    async fn one_holder_per_key_and_nothing_left_behind() {
        let locks = std::sync::Arc::new(KeyedLocks::<u32>::default());
        let a = locks.lock(1).await;
        let _other = locks.lock(2).await;
        let l = std::sync::Arc::clone(&locks);
        let waiter = tokio::spawn(async move {
            let _b = l.lock(1).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
        drop(_other);
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_nothing_behind() {
        let locks = std::sync::Arc::new(KeyedLocks::<u32>::default());
        let a = locks.lock(1).await;
        let l = std::sync::Arc::clone(&locks);
        let waiter = tokio::spawn(async move {
            let _b = l.lock(1).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        // The holder lets go while the waiter still waits, then the wait is given up.
        drop(a);
        waiter.abort();
        let _ = waiter.await;
        assert!(locks.is_empty(), "{} keys left", locks.len());
        // And given up before the holder lets go.
        let a = locks.lock(2).await;
        let l = std::sync::Arc::clone(&locks);
        let waiter = tokio::spawn(async move {
            let _b = l.lock(2).await;
        });
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        drop(a);
        assert!(locks.is_empty(), "{} keys left", locks.len());
    }
}
