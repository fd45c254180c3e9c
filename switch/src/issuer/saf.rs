//! Store-and-forward: reversals and advices the issuer must get, kept in the journal until
//! it acknowledges them.
//!
//! ```text
//!  pipeline ── journal PutSaf (armed before a request goes out; pending after a time-out,
//!              a stand-in approval or a terminal's reversal) ──▶ queue (memory + journal)
//!  worker:  due entry ─▶ 0420 / 0220 (first try) or 0421 / 0221 (repeats) ─▶ issuer
//!             0430 / 0230  ─▶ journal: acknowledged, gone from the queue
//!             no answer    ─▶ journal: tries + 1; next try after retry·2^(tries−1) (≤ 64×)
//!             max tries or expiry reached ─▶ journal: expired (logged, counted, kept)
//! ```
//!
//! An entry's message is sealed under the LMK in the journal (it holds the PAN). After a
//! restart, `armed` entries (their request's outcome never reached the journal) and
//! `pending` ones are sent again; the issuer recognises a repeat by field 90, so a
//! reversal is applied once however often it is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codec::MessageBuilder;
use tokio::sync::watch;

use super::message::{ADVICE_REPEAT, REVERSAL, REVERSAL_REPEAT, UpstreamRef};
use super::{Issuer, LinkError};
use crate::journal::{Op, SafRecord};
use crate::pipeline::Switch;

/// The seal domain of queued messages.
pub const SEAL_DOMAIN: &str = "saf";

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 0420, repeated as 0421.
    Reversal,
    /// 0220, repeated as 0221.
    Advice,
}

impl Kind {
    /// As journalled.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reversal => "reversal",
            Self::Advice => "advice",
        }
    }
}

/// A queued entry, as the worker holds it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Journal id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// The message without MAC, sealed under the LMK.
    pub sealed: Vec<u8>,
    /// When queued, milliseconds since the epoch.
    pub created_ms: i64,
    /// Sends so far.
    pub tries: u32,
    /// Not before.
    pub next_at: Instant,
}

/// Milliseconds since the epoch of an ISO 8601 UTC time as the journal writes it.
fn epoch_ms(iso: &str) -> Option<i64> {
    let days = crate::clock::day_number(iso.get(..10)?)?;
    let num = |r: std::ops::Range<usize>| iso.get(r)?.parse::<i64>().ok();
    Some(
        days * 86_400_000
            + num(11..13)? * 3_600_000
            + num(14..16)? * 60_000
            + num(17..19)? * 1_000
            + num(20..23).unwrap_or(0),
    )
}

impl Entry {
    /// An entry read back from the journal at start-up: due at once.
    pub fn from_record(r: &SafRecord) -> Self {
        Self {
            id: r.id.clone(),
            kind: if r.kind == "advice" {
                Kind::Advice
            } else {
                Kind::Reversal
            },
            sealed: r.sealed.clone(),
            created_ms: epoch_ms(&r.created_utc).unwrap_or(0),
            tries: r.tries,
            next_at: Instant::now(),
        }
    }
}

/// A new queue entry and its journal record (state `armed` or `pending`).
pub fn new_entry(
    switch: &Switch,
    issuer: &Issuer,
    id: String,
    kind: Kind,
    message: &MessageBuilder<'_>,
    original_rrn: Option<String>,
    state: &'static str,
) -> Option<(Entry, SafRecord)> {
    let bytes = message.encode_to_vec(issuer.dialect).ok()?;
    let sealed = switch.hsm.seal_record(SEAL_DOMAIN, &bytes).ok()?;
    let now = crate::clock::Instant::now();
    let created = now.iso_utc();
    Some((
        Entry {
            id: id.clone(),
            kind,
            sealed: sealed.clone(),
            created_ms: epoch_ms(&created).unwrap_or(0),
            tries: 0,
            next_at: Instant::now(),
        },
        SafRecord {
            id,
            issuer: issuer.name.clone(),
            kind: kind.as_str().to_owned(),
            mti: message.mti().to_string(),
            original_rrn,
            created_utc: created.clone(),
            state: state.to_owned(),
            tries: 0,
            updated_utc: created,
            sealed,
        },
    ))
}

fn queue_depth(issuer: &Issuer, n: usize) {
    issuer
        .meters
        .saf_queued
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// Puts entries (already durable) on the issuer's queue and wakes its worker.
pub fn enqueue(issuer: &Issuer, entries: impl IntoIterator<Item = Entry>) {
    let mut n = 0;
    if let Ok(mut q) = issuer.saf.lock() {
        for e in entries {
            if let std::collections::hash_map::Entry::Vacant(v) = q.entry(e.id.clone()) {
                v.insert(e);
                n += 1;
            }
        }
        queue_depth(issuer, q.len());
    }
    for _ in 0..n {
        issuer.metrics.saf_event(&issuer.name, "queued");
    }
    issuer.saf_wake.notify_one();
}

async fn send(switch: &Switch, issuer: &Issuer, e: &Entry) -> Result<(), LinkError> {
    let clear = switch
        .hsm
        .open_record(SEAL_DOMAIN, &e.sealed)
        .map_err(|_| LinkError::Build)?;
    let msg = codec::decode(issuer.dialect, &clear).map_err(|_| LinkError::Build)?;
    let mut b = MessageBuilder::from_message(&msg);
    if e.tries > 0 {
        b.set_mti(match e.kind {
            Kind::Reversal => REVERSAL_REPEAT,
            Kind::Advice => ADVICE_REPEAT,
        });
    }
    issuer.metrics.saf_event(&issuer.name, "sent");
    let reply = issuer.exchange_queued(&switch.hsm, b).await?;
    if let Ok(m) = codec::decode(issuer.dialect, &reply)
        && m.text(39) != Some("00")
    {
        // Still an acknowledgement: the issuer has it. Its code is for the operator.
        tracing::warn!(issuer = %issuer.name, id = %e.id, rc = m.text(39).unwrap_or("-"), "issuer acknowledged a queued message with a non-zero code");
    }
    Ok(())
}

/// Sends the issuer's queue while it runs.
pub async fn run(switch: Arc<Switch>, issuer: Arc<Issuer>, mut stop: watch::Receiver<bool>) {
    let cfg = issuer.saf_config.clone();
    loop {
        if *stop.borrow() {
            break;
        }
        let unknown: Vec<Vec<u8>> = issuer
            .unknown_approvals
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        for frame in unknown {
            reverse_unknown(&switch, &issuer, &frame).await;
        }
        let now = Instant::now();
        // Oldest first: an advice goes before the reversal of the same sale.
        let mut due: Vec<Entry> = if issuer.is_up() {
            issuer
                .saf
                .lock()
                .map(|q| q.values().filter(|e| e.next_at <= now).cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        due.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        for e in due {
            if !issuer.is_up() || *stop.borrow() {
                break;
            }
            let result = send(&switch, &issuer, &e).await;
            let tries = e.tries + 1;
            let age_ms = crate::clock::Instant::now().0 - e.created_ms;
            let state = match result {
                Ok(()) => "acknowledged",
                Err(LinkError::Build) => "expired",
                Err(_)
                    if tries >= cfg.max_tries
                        || age_ms
                            >= i64::try_from(cfg.expiry_secs.saturating_mul(1000))
                                .unwrap_or(i64::MAX) =>
                {
                    "expired"
                }
                Err(_) => "pending",
            };
            let op = Op::UpdateSaf {
                id: e.id.clone(),
                state,
                tries: Some(tries),
                updated_utc: crate::clock::Instant::now().iso_utc(),
            };
            if let Err(err) = switch.journal.commit(vec![op]).await {
                // Not recorded: it stays due and is sent again (the issuer dedups repeats).
                tracing::error!(error = %err, id = %e.id, "cannot journal a store-and-forward result");
                continue;
            }
            let backoff =
                Duration::from_secs(cfg.retry_secs).saturating_mul(1u32 << (tries - 1).min(6));
            if let Ok(mut q) = issuer.saf.lock() {
                match state {
                    "pending" => {
                        if let Some(x) = q.get_mut(&e.id) {
                            x.tries = tries;
                            x.next_at = Instant::now() + backoff;
                        }
                    }
                    _ => {
                        q.remove(&e.id);
                    }
                }
                queue_depth(&issuer, q.len());
            }
            match state {
                "acknowledged" => {
                    issuer.metrics.saf_event(&issuer.name, "acknowledged");
                    tracing::info!(issuer = %issuer.name, id = %e.id, kind = e.kind.as_str(), tries, "issuer acknowledged");
                }
                "expired" => {
                    issuer.metrics.saf_event(&issuer.name, "expired");
                    tracing::error!(issuer = %issuer.name, id = %e.id, kind = e.kind.as_str(), tries, "store-and-forward entry expired unacknowledged: settle it with the issuer by hand");
                }
                _ => {}
            }
        }
        let next = issuer
            .saf
            .lock()
            .ok()
            .and_then(|q| q.values().map(|e| e.next_at).min());
        // While no line is up, a line coming up wakes the worker.
        let wait = match next {
            _ if !issuer.is_up() => Duration::from_secs(1),
            None => Duration::from_secs(3600),
            Some(n) => n
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50)),
        };
        tokio::select! {
            _ = issuer.saf_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
}

/// An approval that arrived for no request the switch knows: reversed, durably.
async fn reverse_unknown(switch: &Switch, issuer: &Issuer, frame: &[u8]) {
    let Ok(msg) = codec::decode(issuer.dialect, frame) else {
        return;
    };
    let (Some(stan), Some(time)) = (
        msg.digits(11).and_then(|d| d.to_u64()),
        msg.digits(7).map(|d| d.to_string()),
    ) else {
        tracing::warn!(issuer = %issuer.name, "unknown approval without 11 or 7: cannot reverse it");
        return;
    };
    let original = UpstreamRef {
        issuer: issuer.index,
        mti: format!("0{}00", char::from(msg.mti().as_bytes()[1])),
        stan: stan as u32,
        time: time.clone(),
    };
    let mut b = MessageBuilder::from_message(&msg);
    b.set_mti(REVERSAL);
    b.retain(|n| !matches!(n, 38 | 39 | 52 | 53 | 54 | 55 | 35 | 64));
    b.set(90, original.field90(&issuer.acquirer_id));
    let tid = msg.text(41).unwrap_or("-");
    let id = format!("late:{}:{tid}:{stan:06}:{time}", issuer.name);
    let Some((entry, record)) = new_entry(switch, issuer, id, Kind::Reversal, &b, None, "pending")
    else {
        return;
    };
    match switch
        .journal
        .commit(vec![Op::PutSaf(Box::new(record))])
        .await
    {
        Ok(()) => enqueue(issuer, [entry]),
        Err(e) => tracing::error!(error = %e, "cannot queue the reversal of an unknown approval"),
    }
}
