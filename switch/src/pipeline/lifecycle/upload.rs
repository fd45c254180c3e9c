//! Batch upload (批上送) after an unbalanced settlement: 48 = count (2) then, per
//! transaction, trace (6) + amount (12) + type (2: `22` sale, `25` refund). The last upload
//! (60.3 = `202`) logs every difference from the journal.
//!
//! ```text
//!  0320 … 0320 (60.3 = 202) ─▶ journal: uploads ─▶ last: uploaded vs the journal's items
//! ```

use crate::journal::{BatchItem, UploadRecord};
use crate::model::{FinancialKind, ResponseCode, Stan};
use crate::pipeline::Switch;
use crate::pipeline::decision::{Decision, Decline, Details};
use crate::pipeline::effects::Effects;
use crate::pipeline::request::Request;

/// The transactions of one upload's field 48.
fn items(f48: &str) -> Option<Vec<BatchItem>> {
    let count: usize = f48.get(..2)?.parse().ok()?;
    if f48.len() < 2 + count * 20 {
        return None;
    }
    (0..count)
        .map(|i| {
            let e = &f48[2 + i * 20..2 + (i + 1) * 20];
            Some(BatchItem {
                stan: Stan(e[..6].parse().ok()?),
                amount_fen: e[6..18].parse().ok()?,
                kind: match &e[18..20] {
                    // Sales and completions (online and offline).
                    "22" | "20" | "24" => FinancialKind::Sale,
                    "25" => FinancialKind::Refund,
                    _ => return None,
                },
            })
        })
        .collect()
}

/// Records an upload; the last one's differences are logged.
pub async fn upload<'s>(sw: &'s Switch, req: &Request<'_>) -> Result<Decision<'s>, Decline> {
    let tid = req.tid.ok_or(Decline::from(ResponseCode::NO_TERMINAL))?;
    let f48 = req
        .msg
        .digits(48)
        .map(|d| d.to_string())
        .ok_or(Decline::from(ResponseCode::FORMAT_ERROR))?;
    let items = items(&f48).ok_or(Decline::from(ResponseCode::FORMAT_ERROR))?;
    let batch = req.batch;
    let last = req
        .msg
        .get("60.3")
        .ok()
        .flatten()
        .is_some_and(|v| v.to_string() == "202");
    if last {
        let read = sw
            .journal
            .read(move |b| Ok((b.uploads(&tid, batch)?, b.batch_items(&tid, batch)?)))
            .await;
        match read {
            Ok((earlier, journal)) => {
                // An item uploaded again replaces the earlier one, as in the journal.
                let uploaded: Vec<crate::report::BatchItem<'_>> = earlier
                    .iter()
                    .map(|u| u.item)
                    .filter(|e| items.iter().all(|i| i.stan != e.stan))
                    .chain(items.iter().copied())
                    .map(|i| {
                        (
                            i64::from(i.stan.0),
                            i.amount_fen,
                            crate::model::FinancialKind::as_item(i.kind),
                        )
                    })
                    .collect();
                let mine: Vec<crate::report::BatchItem<'_>> = journal
                    .iter()
                    .map(|i| {
                        (
                            i64::from(i.stan.0),
                            i.amount_fen,
                            crate::model::FinancialKind::as_item(i.kind),
                        )
                    })
                    .collect();
                for d in crate::report::upload_differences(&uploaded, &mine) {
                    tracing::warn!(tid = %tid, batch = %batch, difference = %d, "batch upload difference");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the batch to compare an upload"),
        }
    }
    Ok(Decision::approved(
        Details::default(),
        Effects {
            uploads: items
                .into_iter()
                .map(|item| UploadRecord { tid, batch, item })
                .collect(),
            ..Effects::default()
        },
    ))
}
