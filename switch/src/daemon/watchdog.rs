//! Every second: is the journal file still the one opened (not deleted, not replaced, its
//! id unchanged), and does it take a write? Either failing turns `/readyz` to 503 and makes
//! the pipeline refuse money-moving requests with `96`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::journal::Journal;
use crate::journal::owner::Identity;
use crate::journal::sqlite::Sqlite;

/// Watches the journal at `identity` (whose id is `id`) until `stop`.
pub async fn watch_journal(
    identity: Identity,
    id: String,
    journal: Arc<Journal>,
    mut stop: watch::Receiver<bool>,
) {
    let path = identity.path().to_owned();
    let health = Arc::clone(journal.health());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if let Err(why) = identity.check() {
            health.set_broken(&why);
            continue;
        }
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
        match journal.probe().await {
            Ok(()) => health.clear_failing(),
            Err(e) => health.set_failing(&format!("journal {}: {e}", path.display())),
        }
    }
}
