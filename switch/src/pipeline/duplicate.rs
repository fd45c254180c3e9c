//! Step 4, duplicates: a retransmission (same terminal, batch, trace, MTI and content)
//! gets the first answer again and moves no money; the same key with other content is
//! `94`. The mechanism is [`crate::state::recent`]; this step gives it the request's
//! fingerprint and the journal to ask.
//!
//! ```text
//!  request ─▶ key (41, 60.2, 11, MTI) + keyed digest of MTI..end less 52 and 64 ─▶ claim
//!        ─▶ New (process) | ReversedEarly (12) | Replay (the answer again) | Conflict (94)
//! ```

use super::Switch;
use super::request::Request;
use crate::fault_log::Fault;
use crate::model::{BatchNo, Stan, Tid, TxnKey};
use crate::state::{Lookup, Recorded};

/// Fields sealed under the session's keys: the PIN block and the MAC.
const SESSION_BOUND: [u8; 2] = [52, 64];

impl Switch {
    /// A keyed fingerprint of what the request says, from the MTI on (the TPDU may differ
    /// between routes to the switch), to recognise retransmissions without keeping the
    /// request. The PIN block and the MAC are left out: they change with the session's keys,
    /// not with the transaction, so a terminal that signed on again and sends a reversal it
    /// still owes under its new keys sends the same reversal (the MAC has been checked
    /// before this step, so what the digest covers is authentic).
    pub(crate) fn request_digest(&self, req: &Request<'_>) -> [u8; 32] {
        let frame = req.msg.frame();
        let mut at = self.dialect.header().len();
        // The frame's runs around the session-bound fields, digested as one text.
        let mut said: [&[u8]; SESSION_BOUND.len() + 1] = [&[]; SESSION_BOUND.len() + 1];
        for (run, n) in said.iter_mut().zip(SESSION_BOUND) {
            if let Some(r) = req.msg.data_range(n) {
                *run = frame.get(at..r.start).unwrap_or_default();
                at = r.end;
            }
        }
        said[SESSION_BOUND.len()] = frame.get(at..).unwrap_or_default();
        self.hsm.digest_parts("request", &said)
    }
}

impl Lookup for Switch {
    async fn max_stan(&self, tid: Tid, batch: BatchNo) -> Result<Option<Stan>, ()> {
        self.journal
            .read(move |b| b.max_stan(&tid, batch))
            .await
            .map_err(|e| crate::fault_error!(Fault::JournalRead, e, "journal look-up failed"))
    }

    async fn seen(&self, key: TxnKey) -> Result<Option<(Option<Recorded>, bool)>, ()> {
        let rows = self
            .journal
            .find_trace(key.tid, key.batch, key.stan)
            .await
            .map_err(|e| crate::fault_error!(Fault::JournalRead, e, "journal look-up failed"))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let own = rows
            .iter()
            .find(|t| t.mti.as_u16() == key.mti)
            .map(Recorded::from_record);
        // A reversal journalled for a financial request that never was.
        let reversed = key.reversible() && rows.iter().any(|t| t.mti.as_u16() == 400);
        Ok(Some((own, reversed)))
    }
}
