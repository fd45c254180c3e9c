//! Bounded maps: what memory keeps of the journal, by size and not by age of the batch.
//!
//! ```text
//!  insert ─▶ shard (by hash) ─▶ ring of entries, next slot ─▶ its old entry out of the index
//!                             └▶ index: key ─▶ slot
//! ```
//!
//! Eviction is first in, first out: what the switch looks up again (a retransmission, a
//! void of a sale just made) comes soon after it was written, and what falls out is read
//! back from the journal. Entries sit in arrival order in a ring of slots, written one
//! after the other; the hash index holds only keys and slot numbers, so an insert touches
//! a small table and the slot it overwrites, not a large table's random slot twice (its
//! own and the evicted one's). A slot emptied by hand is reused when the ring comes round
//! to it.
//!
//! The shard of a key is a fixed function of it, so one run evicts as the next does (a
//! simulation's seed replays exactly). A terminal that chose trace numbers to crowd one
//! shard would only send more of its own and its neighbours' look-ups to the journal.

use std::collections::HashMap;
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

impl<K: Hash + Eq, V> Shard<K, V> {
    fn value(&self, k: &K) -> Option<&V> {
        let i = *self.index.get(k)?;
        self.slots.get(i)?.as_ref().map(|(_, v)| v)
    }
}

struct Shard<K, V> {
    /// Key to its slot.
    index: HashMap<K, usize, Fx>,
    /// Entries in arrival order, round the ring; `None`: removed by hand.
    slots: Vec<Option<(K, V)>>,
    /// The slot the next new key takes (the oldest, once the ring is full).
    next: usize,
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
                        index: HashMap::default(),
                        slots: Vec::new(),
                        next: 0,
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: BuildHasherDefault::default(),
        }
    }

    /// Which shard holds `k`: the hash's high bits (the multiply leaves the low ones of
    /// small keys alike).
    fn shard_index(&self, k: &K) -> usize {
        (self.hasher.hash_one(k) >> 60) as usize % SHARDS
    }

    fn shard(&self, k: &K) -> &Mutex<Shard<K, V>> {
        &self.shards[self.shard_index(k)]
    }

    /// A copy of the value.
    pub fn get(&self, k: &K) -> Option<V> {
        let s = self.shard(k).lock().ok()?;
        s.value(k).cloned()
    }

    /// Inserts or replaces (a replaced entry keeps its place); the oldest entry makes room.
    pub fn insert(&self, k: K, v: V) {
        let Ok(mut s) = self.shard(&k).lock() else {
            return;
        };
        let s = &mut *s;
        if let Some(slot) = s.index.get(&k).and_then(|&i| s.slots.get_mut(i)) {
            *slot = Some((k, v));
            return;
        }
        let i = s.next;
        s.next = (i + 1) % self.per_shard;
        if let Some(slot) = s.slots.get_mut(i) {
            if let Some((old, _)) = slot.take() {
                s.index.remove(&old);
            }
            *slot = Some((k.clone(), v));
        } else {
            // The ring is still filling: `i` is its length.
            s.slots.push(Some((k.clone(), v)));
        }
        s.index.insert(k, i);
    }

    /// Changes the value in place, if it is there; whether it was.
    pub fn update(&self, k: &K, f: impl FnOnce(&mut V)) -> bool {
        let Ok(mut s) = self.shard(k).lock() else {
            return false;
        };
        let s = &mut *s;
        match s.index.get(k).and_then(|&i| s.slots.get_mut(i)) {
            Some(Some((_, v))) => {
                f(v);
                true
            }
            _ => false,
        }
    }

    /// Forgets `k` (its slot is taken again when the ring comes round to it).
    pub fn remove(&self, k: &K) {
        if let Ok(mut s) = self.shard(k).lock()
            && let Some(i) = s.index.remove(k)
            && let Some(slot) = s.slots.get_mut(i)
        {
            *slot = None;
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.index.len()))
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

    #[test]
    fn first_in_first_out_and_a_removed_slot_is_reused_in_turn() {
        // One shard's worth: every key in the one shard the hash sends it to, so the
        // order is observable key by key.
        let c = BoundedCache::new(16 * 4);
        let keys: Vec<u32> = (0..100_000u32)
            .filter(|k| c.shard_index(k) == c.shard_index(&0))
            .take(8)
            .collect();
        for &k in &keys[..4] {
            c.insert(k, k);
        }
        // Replacing keeps the place: the first key is still the oldest.
        c.insert(keys[0], 100);
        c.insert(keys[4], keys[4]);
        assert_eq!(c.get(&keys[0]), None, "the oldest went first");
        assert_eq!(c.get(&keys[1]), Some(keys[1]));
        // A key removed by hand is gone, and its slot is not reused out of turn.
        c.remove(&keys[2]);
        assert_eq!(c.get(&keys[2]), None);
        assert!(!c.update(&keys[2], |v| *v = 0));
        c.insert(keys[5], keys[5]);
        assert_eq!(c.get(&keys[1]), None, "the next oldest went next");
        assert_eq!(c.get(&keys[3]), Some(keys[3]));
        c.insert(keys[6], keys[6]);
        c.insert(keys[7], keys[7]);
        assert_eq!(c.get(&keys[3]), None);
        for &k in &keys[4..] {
            assert_eq!(c.get(&k), Some(k));
        }
        assert_eq!(c.len(), 4);
    }
}
