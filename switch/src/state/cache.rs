//! Bounded maps: what memory keeps of the journal, by size and not by age of the batch.
//!
//! ```text
//!  insert ─▶ shard (by hash) ─▶ map + arrival order ─▶ over its share: oldest out
//! ```
//!
//! Eviction is first in, first out: what the switch looks up again (a retransmission, a
//! void of a sale just made) comes soon after it was written, and what falls out is read
//! back from the journal.
//!
//! The shard of a key is a fixed function of it, so one run evicts as the next does (a
//! simulation's seed replays exactly). A terminal that chose trace numbers to crowd one
//! shard would only send more of its own and its neighbours' look-ups to the journal.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::sync::Mutex;

const SHARDS: usize = 16;

struct Shard<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

/// A map that holds at most about `capacity` entries.
pub struct BoundedCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    per_shard: usize,
    hasher: BuildHasherDefault<DefaultHasher>,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache of `capacity` entries (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        order: VecDeque::new(),
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: BuildHasherDefault::default(),
        }
    }

    fn shard(&self, k: &K) -> &Mutex<Shard<K, V>> {
        let i = (self.hasher.hash_one(k) as usize) % SHARDS;
        &self.shards[i]
    }

    /// A copy of the value.
    pub fn get(&self, k: &K) -> Option<V> {
        self.shard(k).lock().ok()?.map.get(k).cloned()
    }

    /// Inserts or replaces; the oldest entries make room.
    pub fn insert(&self, k: K, v: V) {
        let Ok(mut s) = self.shard(&k).lock() else {
            return;
        };
        if s.map.insert(k.clone(), v).is_none() {
            s.order.push_back(k);
        }
        while s.map.len() > self.per_shard {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            s.map.remove(&old);
        }
        // Keys removed by hand stay in the order until they reach its front: rebuild it when
        // they pile up.
        if s.order.len() > 2 * self.per_shard {
            let Shard { map, order } = &mut *s;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Changes the value in place, if it is there; whether it was.
    pub fn update(&self, k: &K, f: impl FnOnce(&mut V)) -> bool {
        let Ok(mut s) = self.shard(k).lock() else {
            return false;
        };
        match s.map.get_mut(k) {
            Some(v) => {
                f(v);
                true
            }
            None => false,
        }
    }

    /// Forgets `k` (its place in the arrival order goes when it reaches the front).
    pub fn remove(&self, k: &K) {
        if let Ok(mut s) = self.shard(k).lock() {
            s.map.remove(k);
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.map.len()))
            .sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedCache;

    #[test]
    fn never_holds_more_than_its_capacity_and_forgets_the_oldest() {
        let c = BoundedCache::new(160);
        for i in 0..10_000u32 {
            c.insert(i, i * 2);
            assert!(c.len() <= 160 + 16);
        }
        assert_eq!(c.get(&9_999), Some(19_998));
        assert_eq!(c.get(&0), None);
        assert!(c.update(&9_999, |v| *v = 1));
        assert_eq!(c.get(&9_999), Some(1));
        assert!(!c.update(&0, |v| *v = 1));
        // Replacing does not grow it.
        for _ in 0..100 {
            c.insert(9_999, 3);
        }
        assert_eq!(c.get(&9_999), Some(3));
    }
}
