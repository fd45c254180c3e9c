//! The terminal's own record of what it did, for the operator's conveniences: the last sale
//! to void or refund, a sale's date by its reference number, the last settlement slip.
//!
//! ```text
//!  void --last      ─▶ the newest approved, not voided sale of the open batch
//!  refund --last    ─▶ the newest approved sale of the open batch, else of the last settled one
//!  refund --rrn R   ─▶ its date (MMDD) from the log, when --date is not given
//!  reprint --settlement ─▶ the slip the last settlement printed
//!  complete --last, preauth-void --last ─▶ the newest pre-authorisation (60 batches back)
//!  complete-void --last, adjust --last, tip --last ─▶ the newest of the open batch
//! ```

use crate::store::{LogEntry, Store, StoreError};

/// Store key of the last settlement slip.
const LAST_SLIP: &str = "last_settlement_slip";

fn approved_sale(e: &LogEntry) -> bool {
    e.kind == "sale" && e.rc == "00"
}

/// The newest approved sale of `batch` that is not voided.
pub fn last_voidable(store: &Store, batch: u32) -> Result<Option<LogEntry>, StoreError> {
    Ok(store
        .log(batch)?
        .into_iter()
        .rev()
        .find(|e| approved_sale(e) && !e.voided))
}

/// The newest approved entry of one of `kinds`, not voided, in the open batch or up to
/// `back` batches before it.
pub fn last_of(
    store: &Store,
    batch: u32,
    kinds: &[&str],
    back: u32,
) -> Result<Option<LogEntry>, StoreError> {
    newest(store, batch, back, |e| {
        e.rc == "00" && !e.voided && kinds.contains(&e.kind.as_str())
    })
}

/// The open batch, then up to `back` batches before it (batch 1 is the first).
pub fn newest_batches(batch: u32, back: u32) -> impl Iterator<Item = u32> {
    (batch.saturating_sub(back).max(1)..=batch).rev()
}

/// The newest entry `matches` takes, in the open batch or up to `back` batches before it.
pub fn newest(
    store: &Store,
    batch: u32,
    back: u32,
    matches: impl Fn(&LogEntry) -> bool,
) -> Result<Option<LogEntry>, StoreError> {
    for b in newest_batches(batch, back) {
        if let Some(e) = store.log(b)?.into_iter().rev().find(|e| matches(e)) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// The approved sales of the open batch, then of the one before it (settled: refunds are
/// still allowed for its sales), each batch's newest first.
fn recent_sales(store: &Store, batch: u32) -> Result<Vec<LogEntry>, StoreError> {
    let mut out = Vec::new();
    for b in [batch, batch.saturating_sub(1)]
        .into_iter()
        .filter(|b| *b > 0)
    {
        out.extend(store.log(b)?.into_iter().rev().filter(approved_sale));
    }
    Ok(out)
}

/// The newest approved sale of the open batch, else of the one before it, not voided.
pub fn last_refundable(store: &Store, batch: u32) -> Result<Option<LogEntry>, StoreError> {
    Ok(recent_sales(store, batch)?.into_iter().find(|e| !e.voided))
}

/// The sale with reference number `rrn` in the open batch or the one before.
pub fn sale_by_rrn(store: &Store, batch: u32, rrn: &str) -> Result<Option<LogEntry>, StoreError> {
    Ok(recent_sales(store, batch)?
        .into_iter()
        .find(|e| e.rrn == rrn))
}

/// The sale's date as a refund names it (MMDD), from its log time (`MMDDhhmmss`).
pub fn date_of(e: &LogEntry) -> Option<&str> {
    e.when.get(..4)
}

/// Keeps the slip a settlement printed, for `reprint --settlement`.
pub fn keep_settlement_slip(store: &mut Store, slip: &str) -> Result<(), StoreError> {
    store.set_many(&[(LAST_SLIP, slip.as_bytes())])
}

/// The slip of the last settlement.
pub fn last_settlement_slip(store: &Store) -> Result<Option<String>, StoreError> {
    store.get_text(LAST_SLIP)
}
