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
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;

const SHARDS: usize = 16;

/// The caches' hash: a multiply-rotate hash (the Firefox/rustc "Fx" construction), a few
/// instructions per word where SipHash took a fifth of the caches' time. Its keys are a
/// switch's own (RRNs) or come from requests whose MAC verified (terminal, batch, trace):
/// a terminal that chose trace numbers to collide would slow only its own shard's
/// look-ups, and eviction keeps every shard small. Fixed, so a simulation replays exactly.
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Fx = BuildHasherDefault<FxHasher>;

struct Shard<K, V> {
    map: HashMap<K, V, Fx>,
    order: VecDeque<K>,
}

/// A map that holds at most about `capacity` entries.
pub struct BoundedCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    per_shard: usize,
    hasher: Fx,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache of `capacity` entries (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::default(),
                        order: VecDeque::new(),
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: BuildHasherDefault::default(),
        }
    }

    fn shard(&self, k: &K) -> &Mutex<Shard<K, V>> {
        // The high bits: the multiply leaves the low ones of small keys alike.
        let i = (self.hasher.hash_one(k) >> 60) as usize % SHARDS;
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
