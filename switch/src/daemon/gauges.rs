//! Every second, the figures nothing counts as it happens: terminals signed on, and the
//! journal's files.
//!
//! ```text
//! tick ─▶ switch_ready                     (the journal takes writes, an HSM answers)
//!      ─▶ switch_sessions_active          (sessions in memory)
//!      ─▶ switch_journal_size_bytes{file}  (journal.db, journal.db-wal; SQLite only)
//!      ─▶ switch_journal_disk_free_bytes   (statvfs of its file system; SQLite only)
//! every 15 s, or less often when slow ─▶ switch_open_batches,
//!                                        switch_open_batch_transactions (a journal read)
//! ```
//!
//! The open batches' query reads every approved transaction of every open batch, so its
//! cost grows with the day's volume (about 1 µs a row: 0.4 s of a reader at 400,000). The
//! next one waits a hundred times as long as the last took, if that is longer than 15 s
//! (and at most an hour): the gauge takes no more than a hundredth of a reader until one
//! read takes 36 s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::FileLabel;
use crate::pipeline::Switch;

/// Refreshes the gauges until `stop`; `journal` is the SQLite file, if that is the journal.
pub async fn refresh(
    switch: Arc<Switch>,
    journal: Option<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut open_batches_due = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => {
                // Stopping: not ready, as /readyz says while the last requests finish.
                switch.metrics.ready.set(0);
                return;
            }
            _ = tick.tick() => {}
        }
        update(&switch, journal.as_deref());
        // A journal query, on a reader.
        if Instant::now() >= open_batches_due {
            let started = Instant::now();
            if let Ok((batches, txns)) = switch.journal().read(|b| b.open_batches()).await {
                switch.metrics.open_batches.set(batches);
                switch.metrics.open_batch_transactions.set(txns);
            }
            open_batches_due = started + open_batches_gap(started.elapsed());
        }
    }
}

/// How long after its last start the open batches' query runs again, given what the last
/// one took: 15 s, or a hundred times its duration when that is longer, but at least
/// hourly.
fn open_batches_gap(took: Duration) -> Duration {
    const EVERY: Duration = Duration::from_secs(15);
    const AT_MOST: Duration = Duration::from_secs(3_600);
    const SHARE: u32 = 100;
    took.saturating_mul(SHARE).clamp(EVERY, AT_MOST)
}

/// Sets the gauges once (also before the first scrape can come).
pub fn update(switch: &Switch, journal: Option<&std::path::Path>) {
    let m = &switch.metrics;
    let hsm_ok = switch.hsm().remote().is_none_or(|h| h.ready().is_ok());
    m.ready.set(i64::from(
        switch.journal().health().ready().is_ok() && hsm_ok,
    ));
    m.sessions_active
        .set(i64::try_from(switch.state.sessions.len()).unwrap_or(i64::MAX));
    if let Some(path) = journal {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        for (file, p) in [("database", path.to_owned()), ("wal", PathBuf::from(wal))] {
            // A stat of a local file (no blocking to speak of); a WAL checkpointed away is
            // 0 bytes, not an error.
            let bytes = std::fs::metadata(&p).map_or(0, |md| md.len());
            m.journal_bytes
                .get_or_create(&FileLabel { file })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        if let Some(free) = crate::journal::sqlite::disk_free_bytes(path) {
            m.journal_disk_free
                .set(i64::try_from(free).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_open_batches_query_runs_less_often() {
        assert_eq!(open_batches_gap(Duration::ZERO), Duration::from_secs(15));
        assert_eq!(
            open_batches_gap(Duration::from_millis(150)),
            Duration::from_secs(15)
        );
        assert_eq!(
            open_batches_gap(Duration::from_millis(400)),
            Duration::from_secs(40)
        );
        assert_eq!(
            open_batches_gap(Duration::from_secs(60)),
            Duration::from_secs(3_600)
        );
        assert_eq!(open_batches_gap(Duration::MAX), Duration::from_secs(3_600));
    }
}
