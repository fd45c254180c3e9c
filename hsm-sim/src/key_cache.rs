//! Working keys the HSM has unsealed, kept so that the next call with the same sealed key
//! skips the LMK unseal (AES-256-GCM) and, for DES keys, the key schedule: a sale uses the
//! same terminal's TAK twice and its TPK once, and the same PVK as every other sale.
//!
//! ```text
//!  sealed key (all its bytes) ─▶ held? ─▶ (usage, clear key, DES schedule)
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

/// The unsealed keys, at most `capacity` of them, by their sealed bytes. Hashed with
/// foldhash (seeded per process) rather than SipHash: a sale looks up four sealed keys,
/// and only a key that unseals under the LMK is ever inserted, so a caller cannot choose
/// what the table holds.
pub(crate) struct KeyCache {
    held: Mutex<HashMap<Box<[u8]>, Arc<Opened>, foldhash::fast::RandomState>>,
    capacity: usize,
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
        if let Some(k) = self
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(sealed.as_bytes()).cloned())
        {
            return Ok(k);
        }
        let (usage, clear) = unseal()?;
        let opened = Arc::new(Opened::new(usage, clear)?);
        if self.capacity > 0
            && let Ok(mut held) = self.held.lock()
        {
            if held.len() >= self.capacity
                && let Some(any) = held.keys().next().cloned()
            {
                held.remove(&any);
            }
            held.insert(sealed.as_bytes().into(), Arc::clone(&opened));
        }
        Ok(opened)
    }
}
