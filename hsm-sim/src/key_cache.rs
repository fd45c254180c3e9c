//! Working keys the HSM has unsealed, kept so that the next call with the same sealed key
//! skips the LMK unseal (AES-256-GCM) and, for DES keys, the key schedule: a sale uses the
//! same terminal's TAK twice and its TPK once, and the same PVK as every other sale.
//!
//! ```text
//!  sealed key ─▶ its GCM tag ─▶ held, with these very bytes? ─▶ (usage, clear key, DES schedule)
//!                                   └─▶ no: unseal under the LMK, schedule ─▶ hold (one
//!                                        entry leaves when full)
//! ```
//!
//! Bounded by a count; a key and its schedule are zeroized when they leave and when the HSM
//! is dropped. Only the in-process HSM holds keys this way: with a network HSM no key
//! enters the switch.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::Error;
use crate::key::{ClearKey, KeyUsage, SealedKey};
use crate::primitives::cipher::DesKey;

/// An unsealed key: what its seal says it is for, the key, and its DES schedule when it is
/// a DES key. Dereferences to the clear key.
pub(crate) struct Opened {
    usage: KeyUsage,
    clear: ClearKey,
    des: Option<DesKey>,
}

impl Opened {
    fn new(usage: KeyUsage, clear: ClearKey) -> Result<Self, Error> {
        let des = if clear.alg().is_des() {
            Some(DesKey::new(clear.bytes())?)
        } else {
            None
        };
        Ok(Self { usage, clear, des })
    }

    /// What the key's seal says it is for.
    pub(crate) fn usage(&self) -> KeyUsage {
        self.usage
    }

    /// The key's DES schedule; a key of another algorithm is refused.
    pub(crate) fn des_key(&self) -> Result<&DesKey, Error> {
        self.des.as_ref().ok_or(Error::WrongAlgorithm)
    }
}

impl Deref for Opened {
    type Target = ClearKey;

    fn deref(&self) -> &ClearKey {
        &self.clear
    }
}

/// The unsealed keys, at most `capacity` of them, found by the last 16 bytes of their
/// sealed form (the AES-GCM tag, which differs for every seal) and held with all their
/// sealed bytes, which a look-up must match. A sale looks up four sealed keys: one 128-bit
/// word hashed with foldhash (seeded per process) where all ~55 bytes were hashed before.
/// Only a key that unseals under the LMK is ever inserted, so a caller cannot choose what
/// the table holds; a sealed key whose tag is held with other bytes is unsealed, and
/// refused unless it is genuine.
pub(crate) struct KeyCache {
    held: Mutex<HashMap<u128, Held, foldhash::fast::RandomState>>,
    capacity: usize,
}

/// A held key and the sealed bytes it came from.
struct Held {
    sealed: Box<[u8]>,
    opened: Arc<Opened>,
}

/// The table's key for `sealed`: its last 16 bytes (a sealed key is longer).
fn tag_of(sealed: &[u8]) -> u128 {
    let mut tag = [0u8; 16];
    let n = sealed.len().min(16);
    tag[16 - n..].copy_from_slice(&sealed[sealed.len() - n..]);
    u128::from_le_bytes(tag)
}

impl KeyCache {
    /// Holds at most `capacity` keys (0: none, every call unseals).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            held: Mutex::default(),
            capacity,
        }
    }

    /// The key `sealed` holds: from the cache, or from `unseal` (then kept).
    pub(crate) fn open(
        &self,
        sealed: &SealedKey,
        unseal: impl FnOnce() -> Result<(KeyUsage, ClearKey), Error>,
    ) -> Result<Arc<Opened>, Error> {
        let bytes = sealed.as_bytes();
        let tag = tag_of(bytes);
        if let Some(k) = self.held.lock().ok().and_then(|h| {
            h.get(&tag)
                .filter(|held| *held.sealed == *bytes)
                .map(|held| Arc::clone(&held.opened))
        }) {
            return Ok(k);
        }
        let (usage, clear) = unseal()?;
        let opened = Arc::new(Opened::new(usage, clear)?);
        if self.capacity > 0
            && let Ok(mut held) = self.held.lock()
        {
            if held.len() >= self.capacity
                && !held.contains_key(&tag)
                && let Some(&any) = held.keys().next()
            {
                held.remove(&any);
            }
            held.insert(
                tag,
                Held {
                    sealed: bytes.into(),
                    opened: Arc::clone(&opened),
                },
            );
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlgorithm;

    fn clear(byte: u8) -> ClearKey {
        ClearKey::new(KeyAlgorithm::Tdes2, &[byte; 16]).unwrap()
    }

    /// Sealed-looking bytes: a header, then a body, then a 16-byte tag.
    fn sealed(head: u8, tag: u8) -> SealedKey {
        let mut v = vec![head; 35];
        v.extend_from_slice(&[tag; 16]);
        SealedKey::from_vec(v)
    }

    #[test]
    fn a_key_is_found_by_its_tag_only_with_the_same_sealed_bytes() {
        let cache = KeyCache::new(8);
        let unsealed = std::cell::Cell::new(0);
        let open = |s: &SealedKey, byte: u8| {
            cache.open(s, || {
                unsealed.set(unsealed.get() + 1);
                Ok((KeyUsage::Tak, clear(byte)))
            })
        };
        let a = sealed(1, 7);
        let first = open(&a, 0x11).unwrap();
        let again = open(&a, 0x11).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(unsealed.get(), 1, "the second look-up is the cache's");
        // The same tag after other bytes (a forged or altered seal): not the held key; it
        // goes to the LMK, which refuses it.
        let forged = sealed(2, 7);
        let refused = cache.open(&forged, || Err(Error::SealedKeyRejected));
        assert!(matches!(refused, Err(Error::SealedKeyRejected)));
        assert!(Arc::ptr_eq(&open(&a, 0x11).unwrap(), &first));
        // Another key, another tag.
        let b = sealed(1, 8);
        let other = open(&b, 0x22).unwrap();
        assert!(!Arc::ptr_eq(&other, &first));
        assert_eq!(other.bytes(), clear(0x22).bytes());
        assert_eq!(unsealed.get(), 2);
    }

    #[test]
    fn a_full_cache_lets_one_key_go_for_a_new_one() {
        let cache = KeyCache::new(2);
        for tag in 0..5u8 {
            cache
                .open(&sealed(1, tag), || Ok((KeyUsage::Tak, clear(tag))))
                .unwrap();
            assert!(cache.held.lock().unwrap().len() <= 2);
        }
    }
}
