//! Every second: is the journal file still the one opened (not deleted, not replaced, its
//! id unchanged), and does it take a write? Either failing turns `/readyz` to 503 and makes
//! the pipeline refuse money-moving requests with `96`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::journal::Journal;
use crate::journal::owner::Identity;
use crate::journal::sqlite::Sqlite;

/// What the watchdog checks besides a probe write.
pub enum Watched {
    /// A SQLite file: its identity (device, inode) and the id read back from it.
    File(Identity),
    /// A database several nodes share: the id read back through the journal.
    Database,
}

/// Watches the journal (whose id is `id`) until `stop`.
pub async fn watch_journal(
    watched: Watched,
    id: String,
    journal: Arc<Journal>,
    mut stop: watch::Receiver<bool>,
) {
    let health = Arc::clone(journal.health());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let place = match &watched {
            Watched::File(identity) => {
                if let Err(why) = identity.check() {
                    health.set_broken(&why);
                    continue;
                }
                let path = identity.path().to_owned();
                let p = path.clone();
                match tokio::task::spawn_blocking(move || Sqlite::read_id(&p)).await {
                    Ok(Ok(Some(found))) if found == id => {}
                    Ok(Ok(found)) => health.set_broken(&format!(
                        "journal {} now has id {}, not {id}: replaced",
                        path.display(),
                        found.as_deref().unwrap_or("(none)")
                    )),
                    // Unreadable for a moment (locked, busy) is not proof of anything.
                    Ok(Err(_)) | Err(_) => {}
                }
                path.display().to_string()
            }
            Watched::Database => {
                let found = journal.read(|b| b.journal_id_read()).await;
                if let Ok(Some(found)) = &found
                    && *found != id
                {
                    health.set_broken(&format!(
                        "the journal database now has id {found}, not {id}: another database"
                    ));
                }
                "database".to_owned()
            }
        };
        match journal.probe().await {
            Ok(()) => health.clear_failing(),
            Err(e) => health.set_failing(&format!("journal {place}: {e}")),
        }
    }
}
