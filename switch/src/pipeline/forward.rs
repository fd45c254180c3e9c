//! Step 8 for cards of a remote issuer: translate, forward, relay the answer.
//!
//! ```text
//!  request ─▶ (void/refund: find the original, as on-us) ─▶ PIN TPK → issuer ZPK (HSM)
//!          ─▶ journal: reversal armed ─▶ issuer ─┬─ reply: 39/38/54 to the terminal; reversal cancelled
//!                                                ├─ no reply in time: 98; reversal pending (sent by the queue)
//!                                                └─ not sent (issuer unreachable): stand-in within limits, or 91
//! ```

use std::sync::Arc;

use hsm_sim::{EncryptedPinBlock, PinFormat};

use super::request::{Kind, Request};
use super::{Decline, Instrument, Outcome, Switch, card, hsm_err, rc};
use crate::clock::Instant;
use crate::issuer::message::{
    ADVICE, FINANCIAL, IssuerReply, Upstream, UpstreamRef, transmission_time,
};
use crate::issuer::saf::{self, Kind as SafKind};
use crate::issuer::{Issuer, LinkError};
use crate::journal::Op;
use crate::state::{FinancialKind, Session, TerminalRange};

/// The upstream STAN of a forwarded request, from its RRN. RRNs come from blocks reserved
/// in the journal, so they never repeat, not even across a restart in the same second; a
/// STAN from a counter started from the clock did, and an issuer that knows a transaction
/// by STAN and transmission time mistook the new request for the old one (whose armed
/// reversal then reversed the new approval).
fn upstream_stan(rrn: &str) -> u32 {
    rrn.parse::<u64>().map_or(1, |n| (n % 999_999) as u32 + 1)
}

/// Field 53 for an ISO format 0 PIN block under a double-length key.
const PIN_CONTROL: &str = "2600000000000000";

impl Switch {
    /// Forwards a sale, balance inquiry, void or refund to the card's issuer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn forward(
        &self,
        kind: Kind,
        req: &Request<'_>,
        range: &TerminalRange,
        session: &Session,
        inst: &Instrument,
        ix: usize,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let issuer = Arc::clone(self.issuers.get(ix).ok_or(Decline::from(rc::NO_ISSUER))?);
        let (processing, mti) = match kind {
            Kind::Sale => ("000000", FINANCIAL),
            Kind::Balance => ("310000", FINANCIAL),
            Kind::Void => ("020000", FINANCIAL),
            Kind::Refund => ("200000", ADVICE),
            _ => return Err(rc::INVALID_TXN.into()),
        };
        // Voids and refunds find their original as on-us ones do; it must have gone to this
        // issuer, and field 90 names it there.
        let original = match kind {
            Kind::Void => {
                self.void(req, inst, session, out)?;
                Some(self.upstream_of_original(out, ix)?)
            }
            Kind::Refund => {
                self.refund(req, inst, out).await?;
                Some(self.upstream_of_original(out, ix)?)
            }
            _ => None,
        };
        let rrn = match self.next_rrn().await {
            Ok(r) => r,
            Err(d) => return Err(self.undo_forward(out, d)),
        };
        out.rrn = Some(rrn.clone());
        let Some(pan) = card::pan_of(req.msg) else {
            return Err(self.undo_forward(out, rc::INVALID_CARD.into()));
        };
        let pin = match req.msg.bytes(52) {
            Some(block) => match self.translate_pin(&issuer, session, block, pan.as_str()) {
                Ok(p) => Some(p),
                Err(d) => return Err(self.undo_forward(out, d)),
            },
            None => None,
        };
        let uref = UpstreamRef {
            issuer: ix,
            mti: mti.to_string(),
            stan: upstream_stan(&rrn),
            time: transmission_time(),
        };
        let currency = req.msg.text(49).unwrap_or(self.acquirer.currency.as_str());
        let up = Upstream {
            processing,
            pan: Some(pan.as_str()),
            track2: req.msg.digits(35).map(|d| d.to_string()),
            amount_fen: (kind != Kind::Balance).then_some(req.amount_fen),
            stan: uref.stan,
            time: uref.time.clone(),
            expiry: req.msg.digits(14).map(|d| d.to_string()),
            entry_mode: req.msg.digits(22).map(|d| d.to_string()),
            condition: req.msg.digits(25).map(|d| d.to_string()),
            acquirer_id: &issuer.acquirer_id,
            rrn: &rrn,
            tid: req.tid,
            mid: req.mid,
            currency,
            pin,
            icc_hex: req.msg.bytes(55).map(hex::encode_upper),
            original: original.as_ref().map(|o| o.field90(&issuer.acquirer_id)),
        };
        // Nothing can go out (no line up, the breaker open, too many waiting): answered at
        // once, and nothing written for a request never sent.
        if !issuer.can_send() {
            if kind == Kind::Sale {
                return self.stand_in(&issuer, req, range, &up, uref, out);
            }
            return Err(self.undo_forward(out, rc::ISSUER_UNAVAILABLE.into()));
        }
        // Money-moving requests arm their reversal durably before they leave: if the switch
        // stops before the answer is journalled, the reversal goes out after the restart.
        let armed = if kind == Kind::Balance {
            None
        } else {
            let reversal = up.reversal(&uref);
            let Some((entry, record)) = saf::new_entry(
                self,
                &issuer,
                format!("{rrn}:timeout-reversal"),
                SafKind::Reversal,
                &reversal,
                Some(rrn.clone()),
                "armed",
            ) else {
                return Err(self.undo_forward(out, rc::SYSTEM_ERROR.into()));
            };
            if let Err(e) = self
                .journal
                .commit(vec![Op::PutSaf(Box::new(record))])
                .await
            {
                tracing::error!(error = %e, "cannot arm a reversal: not forwarded");
                return Err(self.undo_forward(out, rc::SYSTEM_ERROR.into()));
            }
            Some(entry)
        };
        let sent = issuer.exchange(&self.hsm, up.builder(mti)).await;
        let reply = sent.and_then(|frame| {
            codec::decode(issuer.dialect, &frame)
                .ok()
                .as_ref()
                .and_then(IssuerReply::read)
                .ok_or(LinkError::Timeout)
        });
        match reply {
            Ok(r) => {
                if let Some(e) = armed {
                    out.saf_updates.push((e.id.clone(), "cancelled"));
                    out.armed = Some((ix, e));
                }
                // Journalled with the answer, whatever it is: the issuer's reference.
                out.upstream = Some(uref);
                if r.rc != rc::APPROVED {
                    let code = rc::from_issuer(&r.rc);
                    tracing::info!(issuer = %issuer.name, rc = %r.rc, "issuer declined");
                    return Err(self.undo_forward(out, code.into()));
                }
                out.auth_code = r.auth_code;
                out.balance_fen = r.balance_fen;
                if kind == Kind::Sale {
                    out.fee_fen = self.fee(kind, range, req, out);
                    out.financial = Some(FinancialKind::Sale);
                }
                Ok(())
            }
            Err(LinkError::Timeout) => {
                tracing::warn!(issuer = %issuer.name, stan = uref.stan, "issuer time-out: answering 98 and reversing");
                if let Some(e) = armed {
                    out.saf_updates.push((e.id.clone(), "pending"));
                    out.saf_enqueue.push((ix, e));
                }
                out.upstream = Some(uref);
                Err(self.undo_forward(out, rc::ISSUER_TIMEOUT.into()))
            }
            Err(not_sent) => {
                if let Some(e) = armed {
                    out.saf_updates.push((e.id, "cancelled"));
                }
                let d = match not_sent {
                    LinkError::Unavailable if kind == Kind::Sale => {
                        return self.stand_in(&issuer, req, range, &up, uref, out);
                    }
                    LinkError::Unavailable => rc::ISSUER_UNAVAILABLE,
                    _ => rc::SYSTEM_ERROR,
                };
                Err(self.undo_forward(out, d.into()))
            }
        }
    }

    /// The original's issuer reference, for a void or refund found by the lifecycle step.
    fn upstream_of_original(&self, out: &mut Outcome, ix: usize) -> Result<UpstreamRef, Decline> {
        let found = out
            .original_rrn
            .as_ref()
            .and_then(|r| self.state.financial.get(r))
            .and_then(|f| f.upstream.clone())
            .filter(|u| u.issuer == ix);
        found.ok_or_else(|| self.undo_forward(out, rc::NO_ORIGINAL.into()))
    }

    /// Undoes what the lifecycle step changed in memory for a request that will not stand.
    fn undo_forward(&self, out: &mut Outcome, d: Decline) -> Decline {
        self.undo(out);
        out.marks.clear();
        out.account = None;
        out.financial = None;
        d
    }

    fn translate_pin(
        &self,
        issuer: &Issuer,
        session: &Session,
        block: &[u8],
        pan: &str,
    ) -> Result<([u8; 8], String), Decline> {
        let block = EncryptedPinBlock::new(block).map_err(|_| Decline::from(rc::FORMAT_ERROR))?;
        let translated = self.timed("pin_translate", || {
            self.hsm.translate_pin(
                &session.tpk,
                PinFormat::Iso0,
                &issuer.zpk,
                PinFormat::Iso0,
                &block,
                pan,
            )
        });
        match translated {
            Ok(b) => {
                let mut out = [0u8; 8];
                let bytes = b.as_bytes();
                if bytes.len() != 8 {
                    return Err(rc::SYSTEM_ERROR.into());
                }
                out.copy_from_slice(bytes);
                Ok((out, PIN_CONTROL.to_owned()))
            }
            // The block does not hold a PIN for this card: as a wrong PIN.
            Err(hsm_sim::Error::BadPinBlock | hsm_sim::Error::BadPin) => Err(rc::WRONG_PIN.into()),
            Err(e) => Err(hsm_err(e)),
        }
    }

    /// Stand-in: the issuer cannot be reached; approve within its limits (per sale, per card
    /// per day) with an auth code starting `S`, and queue an 0220 advice for it.
    fn stand_in(
        &self,
        issuer: &Issuer,
        req: &Request<'_>,
        range: &TerminalRange,
        up: &Upstream<'_>,
        mut uref: UpstreamRef,
        out: &mut Outcome,
    ) -> Result<(), Decline> {
        let limits = &issuer.stand_in;
        let unavailable =
            |s: &Self, out: &mut Outcome| s.undo_forward(out, rc::ISSUER_UNAVAILABLE.into());
        if !limits.enabled || req.amount_fen > limits.max_txn_fen {
            return Err(unavailable(self, out));
        }
        let Some(card) = out.card.clone() else {
            return Err(unavailable(self, out));
        };
        let day = Instant::now().cst_day_number();
        let amount = i64::try_from(req.amount_fen).unwrap_or(i64::MAX);
        {
            let mut used = self.state.stand_in_day.entry((card.hash, day)).or_insert(0);
            if u64::try_from(*used + amount).unwrap_or(u64::MAX) > limits.max_card_day_fen {
                drop(used);
                tracing::info!(issuer = %issuer.name, "stand-in refused: the card's daily limit");
                return Err(unavailable(self, out));
            }
            *used += amount;
        }
        uref.mti = ADVICE.to_string();
        let advice = Upstream {
            pin: None,
            track2: None,
            icc_hex: None,
            ..up.clone()
        };
        let rrn = up.rrn.to_owned();
        let Some((entry, record)) = saf::new_entry(
            self,
            issuer,
            format!("{rrn}:advice"),
            SafKind::Advice,
            &advice.builder(ADVICE),
            Some(rrn.clone()),
            "pending",
        ) else {
            return Err(self.undo_forward(out, rc::SYSTEM_ERROR.into()));
        };
        out.saf_puts.push(record);
        out.saf_enqueue.push((issuer.index, entry));
        let d = self.hsm.keyed_digest("stand-in", rrn.as_bytes());
        let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 100_000;
        out.auth_code = Some(format!("S{n:05}"));
        out.stand_in = true;
        out.upstream = Some(uref);
        out.fee_fen = self.fee(Kind::Sale, range, req, out);
        out.financial = Some(FinancialKind::Sale);
        issuer.meters.stand_in.inc();
        tracing::warn!(issuer = %issuer.name, "issuer unreachable: approved in stand-in; advice queued");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_stan;

    #[test]
    fn upstream_stans_follow_the_rrns() {
        // Consecutive RRNs (as a restarted switch's next block gives) never repeat a STAN
        // within 999,999 requests; STANs stay within 000001-999999.
        let first = upstream_stan("000000001000");
        assert_eq!(upstream_stan("000000001001"), first + 1);
        assert_eq!(upstream_stan("000000999998"), 999_999);
        assert_eq!(upstream_stan("000000999999"), 1);
        assert!((1..=999_999).contains(&upstream_stan("999999999999")));
    }
}
