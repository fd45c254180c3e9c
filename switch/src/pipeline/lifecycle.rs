//! The rest of a merchant's day: voids, refunds, reversals, settlement and batch upload
//! (DESIGN.md §6). Each finds what it acts on in the approved transactions the switch keeps
//! for the open batch (and, for refunds, in the journal), changes it under the entry's lock,
//! and leaves the journal write to the common step.

use std::sync::Arc;

use crate::clock::{Instant, day_number};
use crate::config::RefundFeePolicy;
use crate::fees::Channel;
use crate::journal::{BatchRecord, TxnRecord, UploadRecord};
use crate::state::{Financial, FinancialKind, Session, Slot, Tid, TxnKey};

use super::request::Request;
use super::{Decline, Instrument, Mark, Outcome, Switch, credit_back, rc};
use crate::issuer::Issuers;
use crate::issuer::message::{Upstream, UpstreamRef};
use crate::issuer::saf::{self, Kind as SafKind};

fn subfield_u64(req: &Request<'_>, path: &str) -> Option<u64> {
    req.msg.get(path).ok().flatten()?.digits()?.to_u64()
}

/// A journal record of an approved sale, as the lifecycle state holds it.
fn financial_from(t: &TxnRecord, issuers: &Issuers) -> Option<Financial> {
    let kind = match t.kind.as_str() {
        "sale" | "qr-sale" => FinancialKind::Sale,
        "void" => FinancialKind::Void,
        "refund" => FinancialKind::Refund,
        _ => return None,
    };
    if t.response_code != rc::APPROVED {
        return None;
    }
    let account = <[u8; 32]>::try_from(hex::decode(t.pan_hash.as_deref()?).ok()?).ok()?;
    Some(Financial {
        kind,
        tid: t.tid.as_bytes().try_into().ok()?,
        batch: t.batch,
        stan: t.stan,
        account,
        channel: match t.card_type.as_deref() {
            Some("credit") => Channel::Credit,
            Some("qr") => Channel::Qr,
            _ => Channel::Debit,
        },
        amount_fen: t.amount_fen,
        fee_fen: t.fee_fen,
        local_date: t.local_date.clone(),
        original_rrn: t.original_rrn.clone(),
        voided: t.voided,
        reversed: t.reversed,
        refunded_fen: t.refunded_fen,
        upstream: t
            .issuer
            .as_deref()
            .and_then(|name| issuers.by_name(name))
            .zip(t.upstream.as_deref())
            .and_then(|(i, u)| UpstreamRef::from_record(i.index, u)),
    })
}

impl Switch {
    /// Rebuilds the lifecycle state from the journal's open-batch records, in order.
    pub(crate) fn restore_lifecycle(&self, records: &[TxnRecord]) {
        for t in records {
            let Ok(tid) = <Tid>::try_from(t.tid.as_bytes()) else {
                continue;
            };
            if let Some(f) = financial_from(t, &self.issuers) {
                if t.mti == "0200" {
                    self.state
                        .by_trace
                        .insert((tid, t.batch, t.stan), t.rrn.clone());
                }
                self.state.financial.insert(t.rrn.clone(), f);
            }
        }
        // A reversal with no original before it: the original, if it ever comes, is refused.
        for t in records.iter().filter(|t| t.mti == "0400") {
            let Ok(tid) = <Tid>::try_from(t.tid.as_bytes()) else {
                continue;
            };
            let key = TxnKey {
                tid,
                batch: t.batch,
                stan: t.stan,
                mti: 200,
            };
            self.state.recent.entry(key).or_insert(Slot::ReversedEarly);
        }
    }

    /// Moves an on-us account's balance (a remote issuer's card has no account here).
    fn move_account(&self, account: [u8; 32], delta: i64, out: &mut Outcome) {
        let Some(mut a) = self.state.accounts.get_mut(&account) else {
            return;
        };
        a.balance_fen += delta;
        let tries = out.account.and_then(|a| a.2);
        out.account = Some((account, delta, tries));
    }

    /// Void: the approved sale named by 61 (batch, STAN) in the terminal's open batch, same
    /// card, same amount; the balance comes back and the fee is cancelled.
    pub(super) fn void(
        &self,
        req: &Request<'_>,
        inst: &Instrument,
        session: &Session,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let tid = req.tid_key().ok_or(Decline::from(rc::NO_TERMINAL))?;
        let batch = subfield_u64(req, "61.1").ok_or(Decline::from(rc::FORMAT_ERROR))? as u32;
        let stan = subfield_u64(req, "61.2").ok_or(Decline::from(rc::FORMAT_ERROR))? as u32;
        if batch != session.batch {
            return Err(rc::NO_ORIGINAL.into());
        }
        let rrn = self
            .state
            .by_trace
            .get(&(tid, batch, stan))
            .map(|r| r.clone())
            .ok_or(Decline::from(rc::NO_ORIGINAL))?;
        let mut f = self
            .state
            .financial
            .get_mut(&rrn)
            .ok_or(Decline::from(rc::NO_ORIGINAL))?;
        // A sale partly refunded can no longer be voided: the refund already gave money back.
        if f.kind != FinancialKind::Sale || f.voided || f.reversed || f.refunded_fen > 0 {
            return Err(rc::INVALID_TXN.into());
        }
        if f.account != inst.hash {
            return Err(rc::NO_ORIGINAL.into());
        }
        if i64::try_from(req.amount_fen).ok() != Some(f.amount_fen) {
            return Err(rc::AMOUNT_MISMATCH.into());
        }
        f.voided = true;
        let (account, delta) = (f.account, credit_back(f.channel, f.amount_fen));
        drop(f);
        self.move_account(account, delta, out);
        out.marks.push(Mark {
            voided: Some(true),
            ..Mark::new(rrn.clone())
        });
        out.original_rrn = Some(rrn);
        out.financial = Some(FinancialKind::Void);
        Ok(())
    }

    /// Refund: the sale with RRN 37 made on the date in 61.3 (MMDD), within the refund
    /// window, same card; refunds never add up to more than the sale.
    pub(super) async fn refund(
        &self,
        req: &Request<'_>,
        inst: &Instrument,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let rrn = req
            .msg
            .text(37)
            .ok_or(Decline::from(rc::FORMAT_ERROR))?
            .to_owned();
        let mmdd = req
            .msg
            .get("61.3")
            .ok()
            .flatten()
            .and_then(|v| v.digits())
            .map(|d| d.to_string())
            .ok_or(Decline::from(rc::NO_ORIGINAL))?;
        if !self.state.financial.contains_key(&rrn) {
            let found = self.journal.find(&rrn).await.map_err(|e| {
                tracing::error!(error = %e, "journal look-up failed");
                Decline::from(rc::SYSTEM_ERROR)
            })?;
            let f = found
                .as_ref()
                .and_then(|t| financial_from(t, &self.issuers))
                .ok_or(Decline::from(rc::NO_ORIGINAL))?;
            self.state.financial.entry(rrn.clone()).or_insert(f);
        }
        let amount =
            i64::try_from(req.amount_fen).map_err(|_| Decline::from(rc::INVALID_AMOUNT))?;
        let mut f = self
            .state
            .financial
            .get_mut(&rrn)
            .ok_or(Decline::from(rc::NO_ORIGINAL))?;
        let same_day = f.local_date.len() == 10
            && f.local_date[5..7] == mmdd[..2.min(mmdd.len())]
            && f.local_date[8..10] == mmdd[2.min(mmdd.len())..];
        let age = day_number(&f.local_date).map(|d| Instant::now().cst_day_number() - d);
        let in_window =
            age.is_some_and(|a| (0..=i64::from(self.acquirer.refund_window_days)).contains(&a));
        if f.kind != FinancialKind::Sale || !same_day || !in_window || f.account != inst.hash {
            return Err(rc::NO_ORIGINAL.into());
        }
        if f.voided || f.reversed {
            return Err(rc::INVALID_TXN.into());
        }
        if f.refunded_fen + amount > f.amount_fen {
            return Err(rc::EXCEEDS_ORIGINAL.into());
        }
        f.refunded_fen += amount;
        let fee = match self.acquirer.refund_fee_policy {
            RefundFeePolicy::Keep => 0,
            // The share of the sale's fee this refund returns, rounded half up.
            RefundFeePolicy::Proportional => {
                -((i128::from(f.fee_fen) * i128::from(amount) * 2 + i128::from(f.amount_fen))
                    / (2 * i128::from(f.amount_fen))) as i64
            }
        };
        let (account, delta) = (f.account, credit_back(f.channel, amount));
        drop(f);
        self.move_account(account, delta, out);
        out.marks.push(Mark {
            refunded_delta_fen: amount,
            ..Mark::new(rrn.clone())
        });
        out.original_rrn = Some(rrn);
        out.fee_fen = fee;
        out.financial = Some(FinancialKind::Refund);
        Ok(())
    }

    /// Reversal: undoes the approved original with the same terminal, batch and STAN.
    /// Always `00`: an unknown original is remembered so that, if it comes late, it is
    /// refused; a repeated reversal changes nothing.
    pub(super) async fn reverse(
        &self,
        req: &Request<'_>,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let tid = req.tid_key().ok_or(Decline::from(rc::NO_TERMINAL))?;
        let key = TxnKey {
            tid,
            batch: req.batch,
            stan: req.stan,
            mti: 200,
        };
        // The original may still be in progress: wait for its outcome.
        loop {
            let mut wait = match self.state.recent.entry(key) {
                dashmap::Entry::Vacant(v) => {
                    v.insert(Slot::ReversedEarly);
                    out.tombstone = Some(key);
                    tracing::warn!(
                        tid = req.tid,
                        stan = req.stan,
                        "reversal before its original"
                    );
                    return Ok(());
                }
                dashmap::Entry::Occupied(o) => match o.get() {
                    Slot::InFlight { done, .. } => done.clone(),
                    Slot::Done(_) | Slot::ReversedEarly => break,
                },
            };
            let _ = wait.wait_for(Option::is_some).await;
        }
        let Some(rrn) = self
            .state
            .by_trace
            .get(&(tid, req.batch, req.stan))
            .map(|r| r.clone())
        else {
            return Ok(()); // the original was declined: nothing to undo
        };
        let Some(mut f) = self.state.financial.get_mut(&rrn) else {
            return Ok(());
        };
        if f.reversed {
            return Ok(());
        }
        f.reversed = true;
        // What the original still holds: nothing once voided, the unrefunded part otherwise.
        let still_taken = if f.voided {
            0
        } else {
            f.amount_fen - f.refunded_fen
        };
        let (account, channel, amount, kind, sale, upstream) = (
            f.account,
            f.channel,
            f.amount_fen,
            f.kind,
            f.original_rrn.clone(),
            f.upstream.clone(),
        );
        drop(f);
        if let Some(u) = upstream {
            self.forward_reversal(req, &rrn, kind, amount, &u, out)?;
        }
        out.marks.push(Mark {
            reversed: Some(true),
            ..Mark::new(rrn.clone())
        });
        out.original_rrn = Some(rrn);
        let delta = match kind {
            FinancialKind::Sale => credit_back(channel, still_taken),
            FinancialKind::Void => {
                // The sale stands again.
                if let Some(sale) = sale {
                    if let Some(mut s) = self.state.financial.get_mut(&sale) {
                        s.voided = false;
                    }
                    out.marks.push(Mark {
                        voided: Some(false),
                        ..Mark::new(sale)
                    });
                }
                -credit_back(channel, amount)
            }
            FinancialKind::Refund => 0,
        };
        self.move_account(account, delta, out);
        Ok(())
    }

    /// A terminal's reversal of a forwarded transaction: the issuer gets an 0420 through
    /// the store-and-forward queue, journalled with the reversal itself.
    fn forward_reversal(
        &self,
        req: &Request<'_>,
        original_rrn: &str,
        kind: FinancialKind,
        amount_fen: i64,
        u: &UpstreamRef,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let issuer = self
            .issuers
            .get(u.issuer)
            .ok_or(Decline::from(rc::SYSTEM_ERROR))?;
        let pan = super::card::pan_of(req.msg);
        let up = Upstream {
            processing: match kind {
                FinancialKind::Sale => "000000",
                FinancialKind::Void => "020000",
                FinancialKind::Refund => "200000",
            },
            pan: pan.as_ref().map(|p| p.as_str()),
            amount_fen: u64::try_from(amount_fen).ok(),
            stan: u.stan,
            time: u.time.clone(),
            entry_mode: req.msg.digits(22).map(|d| d.to_string()),
            condition: req.msg.digits(25).map(|d| d.to_string()),
            acquirer_id: &issuer.acquirer_id,
            rrn: original_rrn,
            tid: req.tid,
            mid: req.mid,
            currency: req.msg.text(49).unwrap_or(self.acquirer.currency.as_str()),
            ..Upstream::default()
        };
        let (entry, record) = saf::new_entry(
            self,
            issuer,
            format!("{original_rrn}:reversal"),
            SafKind::Reversal,
            &up.reversal(u),
            Some(original_rrn.to_owned()),
            "pending",
        )
        .ok_or(Decline::from(rc::SYSTEM_ERROR))?;
        out.saf_puts.push(record);
        out.saf_enqueue.push((u.issuer, entry));
        Ok(())
    }

    /// The switch's totals for a terminal's batch: sales that stand (debit) and refunds
    /// (credit), amounts and counts.
    fn batch_totals(&self, tid: Tid, batch: u32) -> (i64, i64, i64, i64) {
        let mut t = (0, 0, 0, 0);
        for f in self
            .state
            .financial
            .iter()
            .filter(|f| f.tid == tid && f.batch == batch && !f.reversed)
        {
            match f.kind {
                FinancialKind::Sale if !f.voided => {
                    t.0 += f.amount_fen;
                    t.1 += 1;
                }
                FinancialKind::Refund => {
                    t.2 += f.amount_fen;
                    t.3 += 1;
                }
                _ => {}
            }
        }
        t
    }

    /// Settlement: compares the terminal's totals (48) with the journal's for the batch,
    /// answers balanced (`1`) or not (`2`) in 48, and closes the batch.
    pub(super) fn settle(
        &self,
        req: &Request<'_>,
        range: &crate::state::TerminalRange,
        session: &Session,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let tid = req.tid_key().ok_or(Decline::from(rc::NO_TERMINAL))?;
        let f48 = req
            .msg
            .digits(48)
            .map(|d| d.to_string())
            .ok_or(Decline::from(rc::FORMAT_ERROR))?;
        if f48.len() < 31 {
            return Err(rc::FORMAT_ERROR.into());
        }
        let num =
            |r: std::ops::Range<usize>| f48.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let terminal = (num(0..12), num(12..15), num(15..27), num(27..30));
        let foreign_zero = f48.len() < 62 || (num(31..43) == 0 && num(46..58) == 0);
        let switch = self.batch_totals(tid, session.batch);
        let balanced = terminal == switch && foreign_zero;
        let code = if balanced { '1' } else { '2' };
        let mut reply: Vec<char> = f48.chars().collect();
        reply[30] = code;
        if reply.len() >= 62 {
            reply[61] = code;
        }
        tracing::info!(
            tid = req.tid,
            batch = session.batch,
            balanced,
            "batch settled"
        );
        out.settle = Some((
            BatchRecord {
                tid: req.tid.to_owned(),
                mid: range.mid.clone(),
                batch: session.batch,
                closed_utc: Instant::now().iso_utc(),
                terminal_debit_fen: terminal.0,
                terminal_debit_count: terminal.1,
                terminal_credit_fen: terminal.2,
                terminal_credit_count: terminal.3,
                switch_debit_fen: switch.0,
                switch_debit_count: switch.1,
                switch_credit_fen: switch.2,
                switch_credit_count: switch.3,
                balanced,
            },
            reply.into_iter().collect(),
        ));
        Ok(())
    }

    /// The session after settling `batch`: same keys, the next batch.
    pub(super) fn next_batch_session(&self, req: &Request<'_>, batch: u32) -> Option<Session> {
        let tid = req.tid_key()?;
        let s = self.state.sessions.get(&tid)?;
        Some(Session {
            batch: batch + 1,
            ..(**s).clone()
        })
    }

    /// After a settlement is journalled: the next batch opens, and the batch before the one
    /// just closed is forgotten (the journal keeps it).
    pub(super) fn after_settlement(&self, tid: Tid, closed: &BatchRecord) {
        if let Some(s) = self.state.sessions.get(&tid).map(|s| Arc::clone(s.value())) {
            self.state.sessions.insert(
                tid,
                Arc::new(Session {
                    batch: closed.batch + 1,
                    ..(*s).clone()
                }),
            );
        }
        let old = |b: u32| b < closed.batch;
        self.state
            .financial
            .retain(|_, f| !(f.tid == tid && old(f.batch)));
        self.state.by_trace.retain(|k, _| !(k.0 == tid && old(k.1)));
        self.state
            .recent
            .retain(|k, _| !(k.tid == tid && old(k.batch)));
    }

    /// Batch upload after an unbalanced settlement: 48 = count (2) then, per transaction,
    /// STAN (6) + amount (12) + type (2: `22` sale, `25` refund). The last upload (60.3 =
    /// `202`) logs every difference from the journal.
    pub(super) fn batch_upload(&self, req: &Request<'_>, out: &mut Outcome) -> Result<(), Decline> {
        let tid = req.tid_key().ok_or(Decline::from(rc::NO_TERMINAL))?;
        let f48 = req
            .msg
            .digits(48)
            .map(|d| d.to_string())
            .ok_or(Decline::from(rc::FORMAT_ERROR))?;
        let count: usize = f48
            .get(..2)
            .and_then(|c| c.parse().ok())
            .ok_or(Decline::from(rc::FORMAT_ERROR))?;
        if f48.len() < 2 + count * 20 {
            return Err(rc::FORMAT_ERROR.into());
        }
        for i in 0..count {
            let e = &f48[2 + i * 20..2 + (i + 1) * 20];
            let kind = match &e[18..20] {
                "22" => "sale",
                "25" => "refund",
                _ => return Err(rc::FORMAT_ERROR.into()),
            };
            out.uploads.push(UploadRecord {
                tid: req.tid.to_owned(),
                batch: req.batch,
                stan: e[..6]
                    .parse()
                    .map_err(|_| Decline::from(rc::FORMAT_ERROR))?,
                amount_fen: e[6..18]
                    .parse()
                    .map_err(|_| Decline::from(rc::FORMAT_ERROR))?,
                kind: kind.to_owned(),
            });
        }
        let mut uploaded = self.state.uploads.entry((tid, req.batch)).or_default();
        uploaded.extend(out.uploads.iter().cloned());
        let last = req
            .msg
            .get("60.3")
            .ok()
            .flatten()
            .is_some_and(|v| v.to_string() == "202");
        if last {
            for d in self.upload_differences(tid, req.batch, &uploaded) {
                tracing::warn!(tid = req.tid, batch = req.batch, difference = %d, "batch upload difference");
            }
        }
        Ok(())
    }

    /// Differences between a terminal's uploaded transactions and the journal's.
    fn upload_differences(&self, tid: Tid, batch: u32, uploaded: &[UploadRecord]) -> Vec<String> {
        let mine: Vec<crate::report::BatchItem<'_>> = self
            .state
            .financial
            .iter()
            .filter(|f| {
                f.tid == tid
                    && f.batch == batch
                    && !f.reversed
                    && !(f.kind == FinancialKind::Sale && f.voided)
            })
            .filter_map(|f| match f.kind {
                FinancialKind::Sale => Some((i64::from(f.stan), f.amount_fen, "sale")),
                FinancialKind::Refund => Some((i64::from(f.stan), f.amount_fen, "refund")),
                FinancialKind::Void => None,
            })
            .collect();
        let uploaded: Vec<crate::report::BatchItem<'_>> = uploaded
            .iter()
            .map(|u| (i64::from(u.stan), u.amount_fen, u.kind.as_str()))
            .collect();
        crate::report::upload_differences(&uploaded, &mine)
    }
}
