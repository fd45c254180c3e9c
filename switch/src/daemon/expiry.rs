//! The pre-authorisation expiry job: at start, then every five minutes, holds older than
//! `[acquirer] preauth_expiry_days` lapse (see `pipeline::lifecycle::preauth::expiry`).
//!
//! ```text
//! start ─▶ run ─▶ every 300 s: run ─▶ … ─▶ stop
//!          run: journal ─▶ lapsed holds ─▶ one commit each ─▶ switch_preauths_expired_total
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::pipeline::Switch;

/// How often the job looks for lapsed holds.
const EVERY: Duration = Duration::from_secs(300);

/// Runs the job until `stop`.
pub async fn run(switch: Arc<Switch>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if switch.journal().health().ready().is_err() {
            continue;
        }
        match switch.expire_preauths(switch.clock.now()).await {
            Ok(l) if l.count > 0 => {
                tracing::info!(
                    count = l.count,
                    amount_fen = l.amount_fen,
                    "pre-authorisation holds lapsed"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pre-authorisation expiry job: journal failed; trying again later")
            }
        }
    }
}
