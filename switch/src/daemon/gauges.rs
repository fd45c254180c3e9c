//! Every second, the figures nothing counts as it happens: terminals signed on, and the
//! journal's files.
//!
//! ```text
//! tick ─▶ switch_ready                     (the journal takes writes, an HSM answers)
//!      ─▶ switch_sessions_active          (sessions in memory)
//!      ─▶ switch_journal_size_bytes{file}  (journal.db, journal.db-wal; SQLite only)
//!      ─▶ switch_journal_disk_free_bytes   (statvfs of its file system; SQLite only)
//! every 15th tick ─▶ switch_open_batches, switch_open_batch_transactions (a journal read)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::FileLabel;
use crate::pipeline::Switch;

/// Refreshes the gauges until `stop`; `journal` is the SQLite file, if that is the journal.
pub async fn refresh(
    switch: Arc<Switch>,
    journal: Option<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n = 0u64;
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
        // A journal query: every 15 s, on a reader.
        if n.is_multiple_of(15)
            && let Ok((batches, txns)) = switch.journal().read(|b| b.open_batches()).await
        {
            switch.metrics.open_batches.set(batches);
            switch.metrics.open_batch_transactions.set(txns);
        }
        n += 1;
    }
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
        if let Ok(fs) = rustix::fs::statvfs(path) {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            m.journal_disk_free
                .set(i64::try_from(free).unwrap_or(i64::MAX));
        }
    }
}
