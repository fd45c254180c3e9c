//! Lapsed holds: a pre-authorisation not completed within `preauth_expiry_days` (China
//! Standard Time days after the day it was made) lets its hold go. The daemon runs this
//! job at start and then every few minutes; each lapse is one commit (the
//! pre-authorisation marked expired, the account's holds less its amount), so a job
//! stopped half-way leaves nothing half-done, and two nodes running it at once lapse each
//! hold once (the second commit finds it expired and changes nothing).
//!
//! ```text
//!  journal: holding, made on or before today − days − 1 ─▶ for each: lock ─▶ still holding?
//!     ─▶ commit [mark Expire, on-us: holds −= amount] ─▶ memory as the journal
//! ```

use crate::clock::Timestamp;
use crate::journal::{JournalError, Mark, Op, PinTries, PreauthQuery};
use crate::pipeline::Switch;

/// What one run of the job did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lapsed {
    /// Holds that lapsed.
    pub count: u64,
    /// Their amounts, fen.
    pub amount_fen: i64,
}

/// The last China Standard Time day whose pre-authorisations have lapsed by `now`.
pub fn last_lapsed_day(now: Timestamp, days: u32) -> String {
    now.plus_ms(-(i64::from(days) + 1) * 86_400_000).cst_date()
}

impl Switch {
    /// Lets the holds go that lapsed by `now`; returns what it did.
    pub async fn expire_preauths(&self, now: Timestamp) -> Result<Lapsed, JournalError> {
        let days = self.rules().acquirer.preauth_expiry_days;
        let due = self
            .journal
            .preauths(PreauthQuery::OpenUntil(last_lapsed_day(now, days)))
            .await?;
        let mut lapsed = Lapsed::default();
        for t in due {
            let Ok(Some(locked)) = self.lock_original(t.rrn).await else {
                continue;
            };
            let o = &locked.original;
            if !o.holds() {
                continue;
            }
            let mut ops = vec![Op::Mark {
                rrn: o.rrn,
                mark: Mark::Expire,
            }];
            // A remote card's hold is its issuer's to lapse: only the mark here.
            let on_us = o.upstream.is_none();
            if on_us {
                ops.push(Op::MoveFunds {
                    account: o.account,
                    delta_fen: 0,
                    hold_delta_fen: -o.amount_fen,
                    pin: PinTries::Unchanged,
                    require_available_fen: None,
                    pin_tries_below: None,
                });
            }
            match self.journal.commit(ops).await {
                Ok(()) => {}
                // Lapsed or completed at another node meanwhile.
                Err(JournalError::Stale(_)) => {
                    self.state.originals.forget(&o.rrn);
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.state.accounts.apply(
                &o.account,
                0,
                -o.amount_fen,
                PinTries::Unchanged,
                None,
                None,
            );
            self.state.originals.apply(&o.rrn, Mark::Expire);
            self.metrics.preauths_expired.inc();
            tracing::info!(
                rrn = %o.rrn,
                tid = %o.tid,
                amount_fen = o.amount_fen,
                made = %o.time.cst_date(),
                "pre-authorisation lapsed: its hold is released"
            );
            lapsed.count += 1;
            lapsed.amount_fen += o.amount_fen;
        }
        Ok(lapsed)
    }
}
