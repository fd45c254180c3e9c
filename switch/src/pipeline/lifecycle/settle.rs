//! Settlement (结算): the terminal sends its batch totals in 48; the switch compares them
//! with the journal's for the batch, answers balanced (`1`) or not (`2`) at position 31
//! (and 62 for foreign cards), and closes the batch; the next batch is one more.
//!
//! ```text
//!  48: debit amount (12) count (3) credit amount (12) count (3) code (1) [foreign: the same 31]
//!        ▲ terminal's                         journal: sales that stand, refunds that count
//! ```

use crate::clock::Timestamp;
use crate::journal::{BatchRecord, BatchTotals, Condition, Op};
use crate::model::ResponseCode;
use crate::pipeline::Switch;
use crate::pipeline::decision::{Answer, Decision, Decline, Details};
use crate::pipeline::effects::Effects;
use crate::pipeline::request::Request;
use crate::pipeline::terminal::TerminalRange;
use crate::state::Session;

/// The terminal's totals from field 48, and whether its foreign half is empty.
fn terminal_totals(f48: &str) -> Option<(BatchTotals, bool)> {
    if f48.len() < 31 {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| f48.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let totals = BatchTotals {
        debit_fen: num(0..12),
        debit_count: num(12..15),
        credit_fen: num(15..27),
        credit_count: num(27..30),
    };
    let foreign_zero = f48.len() < 62 || (num(31..43) == 0 && num(46..58) == 0);
    Some((totals, foreign_zero))
}

/// Settles the terminal's open batch.
pub async fn settle<'s>(
    sw: &'s Switch,
    req: &Request<'_>,
    range: &TerminalRange,
    session: &Session,
    now: Timestamp,
) -> Result<Decision<'s>, Decline> {
    let tid = req.tid.ok_or(Decline::from(ResponseCode::NO_TERMINAL))?;
    let f48 = req
        .msg
        .digits(48)
        .map(|d| d.to_string())
        .ok_or(Decline::from(ResponseCode::FORMAT_ERROR))?;
    let (terminal, foreign_zero) =
        terminal_totals(&f48).ok_or(Decline::from(ResponseCode::FORMAT_ERROR))?;
    let batch = session.batch;
    let switch = sw
        .journal
        .read(move |b| b.batch_totals(&tid, batch))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read the batch's totals");
            Decline::from(ResponseCode::SYSTEM_ERROR)
        })?;
    let balanced = terminal == switch && foreign_zero;
    let code = if balanced { b'1' } else { b'2' };
    let mut reply = f48.into_bytes();
    reply[30] = code;
    if reply.len() >= 62 {
        reply[61] = code;
    }
    tracing::info!(tid = %tid, batch = %batch, balanced, "batch settled");
    Ok(Decision {
        answer: Answer {
            field48: Some(String::from_utf8_lossy(&reply).into_owned()),
            ..Answer::approved()
        },
        details: Details::default(),
        effects: Effects {
            batch: Some(Box::new(BatchRecord {
                tid,
                mid: range.mid.clone(),
                batch,
                closed: now,
                terminal,
                switch,
                balanced,
            })),
            session: Some(Box::new((
                tid,
                Session {
                    batch: batch.next(),
                    ..session.clone()
                },
            ))),
            // With a shared journal other nodes may add to the batch until it closes: the
            // totals compared must still be the journal's when it does (the batch's session
            // row, locked by the close, keeps new sales out meanwhile).
            relies_on: if sw.shared() {
                vec![Op::Assert(Condition::BatchTotals {
                    tid,
                    batch,
                    totals: switch,
                })]
            } else {
                Vec::new()
            },
            ..Effects::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::terminal_totals;

    #[test]
    fn field_48_totals() {
        let f = "000000030000002000000005000001000000000000000000000000000000000";
        let (t, foreign_zero) = terminal_totals(&f[..62]).unwrap();
        assert_eq!(
            (t.debit_fen, t.debit_count, t.credit_fen, t.credit_count),
            (30_000, 2, 5_000, 1)
        );
        assert!(foreign_zero);
        assert!(terminal_totals("0000").is_none());
    }
}
