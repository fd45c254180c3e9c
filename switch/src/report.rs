//! Reports from the journal: the settlement report per merchant and terminal for a day, and
//! one batch as the switch sees it. Amounts are yuan with two decimals.
//!
//! ```text
//! merchant         terminal  sales   gross     voids   refunds  fees   net      category      rates
//! 898310048990201  10002001      3   1300.00   10.00     50.00  4.94  1235.06  preferential  credit 0.48% / debit 0.38% cap 20.00
//! ```
//! `net = gross - voids - refunds - fees`: what the merchant is paid. Gross counts every
//! approved sale (and pre-authorisation completion) that was not reversed; voids are the voided ones among them; fees are those
//! of sales that stand (plus any refund fee the policy gives back, negative). The category
//! and rates are those the day's transactions were charged by, as journalled with each
//! (a terminal moved to another category during the day shows both).

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::fees::{AppliedFee, Channel, FeeCategory};
use crate::journal::columns::Value;

/// Where reports read: a journal, SQLite or PostgreSQL (the SQL is written to run on both,
/// with SQLite's `?N` placeholders).
pub trait Source {
    /// The rows `sql` gives, each column as a [`Value`].
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, String>;
}

impl Source for Connection {
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, String> {
        let mut stmt = self.prepare(sql).map_err(|e| e.to_string())?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                use rusqlite::types::ValueRef;
                row.push(match r.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(f) => Value::Int(f as i64),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl Source for crate::journal::postgres::Postgres {
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, String> {
        self.query_values(sql, params).map_err(|e| e.to_string())
    }
}

/// Column `i` as text (numbers written out, NULL empty).
fn text(row: &[Value], i: usize) -> String {
    match row.get(i) {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Int(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Column `i` as a number (NULL and text 0).
fn int(row: &[Value], i: usize) -> i64 {
    match row.get(i) {
        Some(Value::Int(n)) => *n,
        Some(Value::Text(t)) => t.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One merchant terminal's day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementRow {
    /// Merchant.
    pub mid: String,
    /// Terminal.
    pub tid: String,
    /// Sales that stand.
    pub sales: i64,
    /// Approved, not reversed sales, fen.
    pub gross_fen: i64,
    /// Of which voided, fen.
    pub voids_fen: i64,
    /// Refunds, fen.
    pub refunds_fen: i64,
    /// Fees, fen.
    pub fees_fen: i64,
    /// Paid to the merchant, fen.
    pub net_fen: i64,
    /// The fee categories charged (`standard`, `preferential`, ...), space-separated.
    pub category: String,
    /// The rates charged, per channel: `credit 0.48% / debit 0.38% cap 20.00`.
    pub rates: String,
}

/// Opens a journal read-only.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The settlement report for a local (China Standard Time) date `YYYY-MM-DD`.
pub fn settlement(src: &mut dyn Source, date: &str) -> Result<Vec<SettlementRow>, String> {
    let rules = charged(src, date)?;
    let rows = src.rows(
        "SELECT mid, tid,
            CAST(SUM(CASE WHEN kind IN ('sale','qr-sale','completion') AND voided = 0 THEN 1 ELSE 0 END) AS BIGINT),
            CAST(SUM(CASE WHEN kind IN ('sale','qr-sale','completion') THEN amount_fen ELSE 0 END) AS BIGINT),
            CAST(SUM(CASE WHEN kind IN ('sale','qr-sale','completion') AND voided = 1 THEN amount_fen ELSE 0 END) AS BIGINT),
            CAST(SUM(CASE WHEN kind = 'refund' THEN amount_fen ELSE 0 END) AS BIGINT),
            CAST(SUM(CASE WHEN (kind IN ('sale','qr-sale','completion') AND voided = 0) OR kind = 'refund' THEN fee_fen ELSE 0 END) AS BIGINT)
         FROM transactions
         WHERE local_date = ?1 AND response_code = '00' AND reversed = 0
           AND kind IN ('sale','qr-sale','completion','refund')
         GROUP BY mid, tid ORDER BY mid, tid",
        &[date.into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let mut row = SettlementRow {
                mid: text(r, 0),
                tid: text(r, 1),
                sales: int(r, 2),
                gross_fen: int(r, 3),
                voids_fen: int(r, 4),
                refunds_fen: int(r, 5),
                fees_fen: int(r, 6),
                ..SettlementRow::default()
            };
            row.net_fen = row.gross_fen - row.voids_fen - row.refunds_fen - row.fees_fen;
            row
        })
        .map(|mut row| {
            let charged: Vec<&Charged> = rules
                .iter()
                .filter(|c| c.mid == row.mid && c.tid == row.tid)
                .collect();
            let mut categories: Vec<&str> = charged.iter().map(|c| c.category.as_str()).collect();
            categories.dedup();
            row.category = categories.join(" ");
            row.rates = charged
                .iter()
                .map(|c| c.rule.describe())
                .collect::<Vec<_>>()
                .join(" / ");
            row
        })
        .collect())
}

/// A rule a terminal's transactions were charged by.
struct Charged {
    mid: String,
    tid: String,
    category: String,
    rule: AppliedFee,
}

/// The fee rules the day's transactions that count were charged by, per terminal.
fn charged(src: &mut dyn Source, date: &str) -> Result<Vec<Charged>, String> {
    let rows = src.rows(
        "SELECT DISTINCT mid, tid, fee_category, fee_channel, fee_rate_ppm, fee_cap_fen
         FROM transactions
         WHERE local_date = ?1 AND response_code = '00' AND reversed = 0
           AND kind IN ('sale','qr-sale','completion','refund') AND fee_category IS NOT NULL
         ORDER BY mid, tid, fee_category, fee_channel, fee_rate_ppm, fee_cap_fen",
        &[date.into()],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let category = text(r, 2);
            let rule = AppliedFee {
                category: FeeCategory::parse(&category).ok()?,
                channel: Channel::parse(&text(r, 3))?,
                rate_ppm: u64::try_from(int(r, 4)).ok()?,
                cap_fen: match r.get(5) {
                    Some(Value::Int(c)) => Some(u64::try_from(*c).ok()?),
                    _ => None,
                },
            };
            Some(Charged {
                mid: text(r, 0),
                tid: text(r, 1),
                category,
                rule,
            })
        })
        .collect())
}

/// One transaction of a batch: trace number, amount in fen, `sale` or `refund`.
pub type BatchItem<'a> = (i64, i64, &'a str);

/// Differences between what a terminal uploaded and what the switch journalled for a batch.
pub fn upload_differences(uploaded: &[BatchItem<'_>], switch: &[BatchItem<'_>]) -> Vec<String> {
    let mut diffs = Vec::new();
    for (stan, amount, kind) in uploaded {
        match switch.iter().find(|m| m.0 == *stan) {
            None => diffs.push(format!(
                "trace {stan:06}: on the terminal only ({kind} {})",
                yuan(*amount)
            )),
            Some(m) if m.1 != *amount => diffs.push(format!(
                "trace {stan:06}: amount differs (terminal {}, switch {})",
                yuan(*amount),
                yuan(m.1)
            )),
            Some(_) => {}
        }
    }
    for (stan, amount, kind) in switch {
        if !uploaded.iter().any(|u| u.0 == *stan) {
            diffs.push(format!(
                "trace {stan:06}: in the switch only ({kind} {})",
                yuan(*amount)
            ));
        }
    }
    diffs
}

/// Fen as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        fen.unsigned_abs() / 100,
        fen.unsigned_abs() % 100
    )
}

/// The settlement report as an aligned table (`csv = false`) or CSV.
pub fn format_settlement(rows: &[SettlementRow], csv: bool) -> String {
    let mut out = String::new();
    let total = rows.iter().fold(SettlementRow::default(), |mut t, r| {
        t.sales += r.sales;
        t.gross_fen += r.gross_fen;
        t.voids_fen += r.voids_fen;
        t.refunds_fen += r.refunds_fen;
        t.fees_fen += r.fees_fen;
        t.net_fen += r.net_fen;
        t
    });
    if csv {
        out.push_str("merchant,terminal,sales,gross,voids,refunds,fees,net,category,rates\n");
        for r in rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{}",
                r.mid,
                r.tid,
                r.sales,
                yuan(r.gross_fen),
                yuan(r.voids_fen),
                yuan(r.refunds_fen),
                yuan(r.fees_fen),
                yuan(r.net_fen),
                r.category,
                r.rates
            );
        }
        return out;
    }
    let _ = writeln!(
        out,
        "{:<16} {:<9} {:>6} {:>12} {:>10} {:>10} {:>9} {:>12}  {:<14} rates",
        "merchant", "terminal", "sales", "gross", "voids", "refunds", "fees", "net", "category"
    );
    for r in rows.iter().chain(std::iter::once(&SettlementRow {
        mid: "TOTAL".into(),
        ..total
    })) {
        let line = format!(
            "{:<16} {:<9} {:>6} {:>12} {:>10} {:>10} {:>9} {:>12}  {:<14} {}",
            r.mid,
            r.tid,
            r.sales,
            yuan(r.gross_fen),
            yuan(r.voids_fen),
            yuan(r.refunds_fen),
            yuan(r.fees_fen),
            yuan(r.net_fen),
            r.category,
            r.rates
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// One batch as the switch sees it: its transactions, its settlement, and the differences
/// from the terminal's upload.
pub fn batch(src: &mut dyn Source, tid: &str, batch: u32) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(out, "terminal {tid} batch {batch:06}");
    let _ = writeln!(
        out,
        "{:<24} {:<9} {:>6} {:<20} {:>12} {:>3} state",
        "time (UTC)", "kind", "trace", "card", "amount", "rc"
    );
    let key = [Value::from(tid), Value::from(batch)];
    let rows = src.rows(
        "SELECT time_utc, kind, stan, COALESCE(masked_pan, ''), amount_fen, response_code, voided, reversed, refunded_fen
         FROM transactions WHERE tid = ?1 AND batch = ?2 AND kind NOT IN ('sign-on') ORDER BY time_utc, stan",
        &key,
    )?;
    let mut sales = (0i64, 0i64);
    let mut refunds = (0i64, 0i64);
    let mut mine: Vec<(i64, i64, String)> = Vec::new();
    for r in &rows {
        let (kind, stan, amount, rc) = (text(r, 1), int(r, 2), int(r, 4), text(r, 5));
        let (voided, reversed, refunded) = (int(r, 6) != 0, int(r, 7) != 0, int(r, 8));
        let mut state = Vec::new();
        if voided {
            state.push("voided".to_owned());
        }
        if reversed {
            state.push("reversed".to_owned());
        }
        if refunded > 0 {
            state.push(format!("refunded {}", yuan(refunded)));
        }
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:>6} {:<20} {:>12} {:>3} {}",
            text(r, 0),
            kind,
            format!("{stan:06}"),
            text(r, 3),
            yuan(amount),
            rc,
            state.join(", ")
        );
        if rc == "00" && !reversed {
            match kind.as_str() {
                "sale" | "qr-sale" if !voided => {
                    sales = (sales.0 + amount, sales.1 + 1);
                    mine.push((stan, amount, "sale".into()));
                }
                "refund" => {
                    refunds = (refunds.0 + amount, refunds.1 + 1);
                    mine.push((stan, amount, "refund".into()));
                }
                _ => {}
            }
        }
    }
    let _ = writeln!(
        out,
        "sales {} ({}), refunds {} ({})",
        yuan(sales.0),
        sales.1,
        yuan(refunds.0),
        refunds.1
    );
    let settled = src.rows(
        "SELECT balanced, terminal_debit_fen, terminal_debit_count, terminal_credit_fen, terminal_credit_count
         FROM batches WHERE tid = ?1 AND batch = ?2",
        &key,
    )?;
    if rows.is_empty() && settled.is_empty() {
        return Err(format!(
            "no batch {batch:06} of terminal {tid} in the journal (no transaction, no settlement)"
        ));
    }
    match settled.first() {
        None => out.push_str("not settled\n"),
        Some(r) => {
            let _ = writeln!(
                out,
                "settled: {} (terminal said sales {} ({}), refunds {} ({}))",
                if int(r, 0) != 0 {
                    "balanced"
                } else {
                    "NOT balanced"
                },
                yuan(int(r, 1)),
                int(r, 2),
                yuan(int(r, 3)),
                int(r, 4)
            );
        }
    }
    let uploads: Vec<(i64, i64, String)> = src
        .rows(
            "SELECT stan, amount_fen, kind FROM batch_uploads WHERE tid = ?1 AND batch = ?2 ORDER BY stan",
            &key,
        )?
        .iter()
        .map(|r| (int(r, 0), int(r, 1), text(r, 2)))
        .collect();
    if !uploads.is_empty() {
        out.push_str("batch upload differences:\n");
        let uploaded: Vec<BatchItem<'_>> = uploads
            .iter()
            .map(|(s, a, k)| (*s, *a, k.as_str()))
            .collect();
        let mine: Vec<BatchItem<'_>> = mine.iter().map(|(s, a, k)| (*s, *a, k.as_str())).collect();
        let diffs = upload_differences(&uploaded, &mine);
        if diffs.is_empty() {
            out.push_str("  none\n");
        }
        for d in diffs {
            let _ = writeln!(out, "  {d}");
        }
    }
    Ok(out)
}

/// The store-and-forward queue: reversals and advices for issuers, newest last; only those in
/// `state` when given (`pending`, `armed`, `acknowledged`, `expired`, `cancelled`). The
/// sealed messages are not shown.
pub fn saf(src: &mut dyn Source, state: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:<14} {:<9} {:<5} {:<12} {:<13} {:>5} {:<24} {:<24}",
        "id",
        "issuer",
        "kind",
        "mti",
        "original rrn",
        "state",
        "tries",
        "queued (UTC)",
        "last change (UTC)"
    );
    let rows = src.rows(
        "SELECT id, issuer, kind, mti, COALESCE(original_rrn, ''), state, CAST(tries AS TEXT),
                created_utc, updated_utc
         FROM saf_queue WHERE CAST(?1 AS TEXT) IS NULL OR state = ?1 ORDER BY created_utc, id",
        &[state.into()],
    )?;
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<34} {:<14} {:<9} {:<5} {:<12} {:<13} {:>5} {:<24} {:<24}",
            text(r, 0),
            text(r, 1),
            text(r, 2),
            text(r, 3),
            text(r, 4),
            text(r, 5),
            text(r, 6),
            text(r, 7),
            text(r, 8)
        );
    }
    let _ = writeln!(out, "{} entries", rows.len());
    Ok(out)
}

/// Pre-authorisations, one line each, newest last: where each stands (`holding`,
/// `completed`, `voided`, `reversed`, `expired`: lapsed uncompleted), by merchant and
/// terminal; only those in `state` when given. Then the total each state holds or held.
pub fn preauths(src: &mut dyn Source, state: Option<&str>) -> Result<String, String> {
    let rows = src.rows(
        "SELECT state, mid, tid, rrn, auth_code, local_date, masked_pan, amount_fen FROM (
            SELECT CASE WHEN reversed = 1 THEN 'reversed' WHEN voided = 1 THEN 'voided'
                        WHEN completed = 1 THEN 'completed' WHEN expired = 1 THEN 'expired'
                        ELSE 'holding' END AS state,
                   mid, tid, rrn, COALESCE(auth_code, '') AS auth_code, local_date,
                   COALESCE(masked_pan, '') AS masked_pan, amount_fen, time_utc
            FROM transactions WHERE kind = 'pre-auth' AND response_code = '00') p
         WHERE CAST(?1 AS TEXT) IS NULL OR state = ?1
         ORDER BY time_utc, rrn",
        &[state.into()],
    )?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<15} {:<8} {:<12} {:<6} {:<10} {:<19} {:>12}",
        "state", "merchant", "terminal", "rrn", "auth", "date (CST)", "card", "amount"
    );
    let mut by_state: Vec<(String, i64, i64)> = Vec::new();
    for r in &rows {
        let st = text(r, 0);
        let _ = writeln!(
            out,
            "{:<10} {:<15} {:<8} {:<12} {:<6} {:<10} {:<19} {:>12}",
            st,
            text(r, 1),
            text(r, 2),
            text(r, 3),
            text(r, 4),
            text(r, 5),
            text(r, 6),
            yuan(int(r, 7))
        );
        match by_state.iter_mut().find(|(s, ..)| *s == st) {
            Some(e) => {
                e.1 += 1;
                e.2 += int(r, 7);
            }
            None => by_state.push((st, 1, int(r, 7))),
        }
    }
    by_state.sort();
    for (st, n, fen) in by_state {
        let _ = writeln!(out, "{st}: {n}, {}", yuan(fen));
    }
    Ok(out)
}

/// Per issuer for a day (China Standard Time): what was forwarded and how it ended, for
/// reconciling with the issuer; then the store-and-forward queue by state.
pub fn issuers(src: &mut dyn Source, date: &str) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>8} {:>8} {:>14} {:>8} {:>9} {:>8} {:>8} {:>14}",
        "issuer",
        "requests",
        "approved",
        "sales net",
        "declined",
        "time-outs",
        "reversed",
        "stand-in",
        "stand-in amt"
    );
    let rows = src.rows(
        "SELECT issuer, COUNT(*),
                CAST(SUM(CASE WHEN response_code = '00' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN response_code = '00' AND kind IN ('sale','completion') AND reversed = 0 AND voided = 0
                         THEN amount_fen - refunded_fen ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN response_code NOT IN ('00', '98') THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN response_code = '98' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN response_code = '00' AND reversed = 1 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN stand_in = 1 AND response_code = '00' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN stand_in = 1 AND response_code = '00' THEN amount_fen ELSE 0 END) AS BIGINT)
         FROM transactions WHERE issuer IS NOT NULL AND local_date = ?1
         GROUP BY issuer ORDER BY issuer",
        &[date.into()],
    )?;
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>8} {:>14} {:>8} {:>9} {:>8} {:>8} {:>14}",
            text(r, 0),
            int(r, 1),
            int(r, 2),
            yuan(int(r, 3)),
            int(r, 4),
            int(r, 5),
            int(r, 6),
            int(r, 7),
            yuan(int(r, 8))
        );
    }
    let _ = writeln!(out, "\nstore-and-forward queue");
    let rows = src.rows(
        "SELECT issuer, kind, state, COUNT(*) FROM saf_queue GROUP BY issuer, kind, state
         ORDER BY issuer, kind, state",
        &[],
    )?;
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<16} {:<9} {:<13} {:>8}",
            text(r, 0),
            text(r, 1),
            text(r, 2),
            int(r, 3)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_formatting() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(123_456), "1234.56");
        assert_eq!(yuan(-380), "-3.80");
    }
}
