//! An append-only audit log of key lifecycle events, each entry HMAC-chained to the one
//! before it, so an edited, removed or reordered entry shows.
//!
//! ```text
//! mac(n) = HMAC-SHA256(audit key, mac(n-1) | seq | time | event | usage | kcv)
//! ```
//!
//! Entries hold no secrets: the event, the key usage and the key's check value. The audit
//! key is derived from the LMK, so only the HSM that wrote a log can extend or verify it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::KeyUsage;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditEvent {
    /// An HSM loaded its LMK (the entry's check value is the LMK's).
    LmkLoaded,
    /// A key was generated.
    KeyGenerated,
    /// A key was imported (clear at a ceremony, or under a KEK).
    KeyImported,
    /// A key was exported under a KEK.
    KeyExported,
}

impl AuditEvent {
    fn code(self) -> u8 {
        match self {
            Self::LmkLoaded => 1,
            Self::KeyGenerated => 2,
            Self::KeyImported => 3,
            Self::KeyExported => 4,
        }
    }
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number from 0.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, UTC.
    pub time_ms: u64,
    /// The event.
    pub event: AuditEvent,
    /// The key's usage, for key events.
    pub usage: Option<KeyUsage>,
    /// The key's (or LMK's) check value, hex.
    pub kcv: String,
    /// The previous entry's MAC, hex (zeros for the first).
    pub prev: String,
    /// This entry's MAC, hex.
    pub mac: String,
}

/// The chain is broken at this sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}")]
pub struct AuditError {
    /// First entry that does not verify.
    pub seq: u64,
}

struct State {
    next_seq: u64,
    last_mac: [u8; 32],
    recent: VecDeque<AuditEntry>,
    file: Option<File>,
}

/// The audit log: recent entries in memory (bounded), every entry appended to a file when
/// one is configured (one JSON object per line).
pub struct AuditLog {
    key: hmac::Key,
    capacity: usize,
    state: Mutex<State>,
}

fn entry_mac(
    key: &hmac::Key,
    prev: &[u8],
    seq: u64,
    time_ms: u64,
    event: AuditEvent,
    usage: Option<KeyUsage>,
    kcv: &str,
) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&time_ms.to_be_bytes());
    ctx.update(&[event.code(), usage.map_or(0, KeyUsage::code)]);
    ctx.update(kcv.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

impl AuditLog {
    pub(crate) fn new(
        key: hmac::Key,
        capacity: usize,
        file: Option<&Path>,
    ) -> std::io::Result<Self> {
        let file = match file {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        };
        Ok(Self {
            key,
            capacity: capacity.max(1),
            state: Mutex::new(State {
                next_seq: 0,
                last_mac: [0u8; 32],
                recent: VecDeque::new(),
                file,
            }),
        })
    }

    pub(crate) fn record(&self, event: AuditEvent, usage: Option<KeyUsage>, kcv: &[u8]) {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let kcv = hex::encode_upper(kcv);
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let seq = st.next_seq;
        let mac = entry_mac(&self.key, &st.last_mac, seq, time_ms, event, usage, &kcv);
        let entry = AuditEntry {
            seq,
            time_ms,
            event,
            usage,
            kcv,
            prev: hex::encode_upper(st.last_mac),
            mac: hex::encode_upper(mac),
        };
        st.next_seq += 1;
        st.last_mac = mac;
        if let (Some(f), Ok(line)) = (st.file.as_mut(), serde_json::to_string(&entry))
            && let Err(e) = writeln!(f, "{line}")
        {
            tracing::error!(error = %e, "audit log write failed");
        }
        if st.recent.len() == self.capacity {
            st.recent.pop_front();
        }
        st.recent.push_back(entry);
    }

    /// The recent entries held in memory, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.state
            .lock()
            .map(|s| s.recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Verifies a contiguous run of entries (from the start of a log, or any later point):
    /// each MAC is right and each entry names its predecessor's MAC.
    pub fn verify(&self, entries: &[AuditEntry]) -> Result<(), AuditError> {
        let mut expected_prev: Option<String> = None;
        for e in entries {
            let bad = AuditError { seq: e.seq };
            if e.seq == 0 && e.prev != hex::encode_upper([0u8; 32]) {
                return Err(bad);
            }
            if expected_prev.as_ref().is_some_and(|p| *p != e.prev) {
                return Err(bad);
            }
            let prev = hex::decode(&e.prev).map_err(|_| bad)?;
            let mac = entry_mac(&self.key, &prev, e.seq, e.time_ms, e.event, e.usage, &e.kcv);
            let claimed = hex::decode(&e.mac).map_err(|_| bad)?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &claimed[..])) {
                return Err(bad);
            }
            expected_prev = Some(e.mac.clone());
        }
        Ok(())
    }

    /// Reads a log file written by [`AuditLog`] (one JSON entry per line).
    pub fn read_file(path: &Path) -> std::io::Result<Vec<AuditEntry>> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}
