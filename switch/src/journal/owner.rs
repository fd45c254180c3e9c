//! One process owns a SQLite journal, and the journal is the one that was there before.
//!
//! ```text
//! switch-data/
//!   journal.db        the journal (SQLite, WAL); its table journal_meta holds its id
//!   journal.db.lock   locked (flock) by the process that owns the journal, holds its pid
//!   journal.db.id     the journal's id, written when it was created
//! ```
//!
//! - A second process on the same journal finds the lock held and stops, naming the pid.
//! - A journal that is missing or empty where the id file says one existed, or whose id is
//!   not the id file's (a replaced file), stops the start: balances and history would
//!   silently restart from the card file. `switch journal init` makes a new one on purpose;
//!   a non-production configuration creates one on its first run.
//! - While running, [`Identity::check`] notices the file deleted or replaced.
//!
//! The lock is advisory (`flock`): it keeps switches apart, not an operator's `sqlite3`
//! (reads while the switch runs are fine; WAL makes them consistent).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The held lock on a journal; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct JournalLock {
    _file: File,
}

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// Another process holds the journal.
    #[error(
        "journal {path} is in use by another switch (pid {pid}): one process owns a SQLite journal; several nodes share a PostgreSQL one"
    )]
    InUse {
        /// The journal.
        path: PathBuf,
        /// The holder's pid as it wrote it, or `?`.
        pid: String,
    },
    /// The journal is gone or empty, and one existed.
    #[error(
        "journal {path} is missing or empty, but journal {id} was there ({marker}): restore it from a backup; `switch journal init --force` starts an empty one (balances and history from the card file)"
    )]
    Missing {
        /// The journal.
        path: PathBuf,
        /// The id the marker holds.
        id: String,
        /// The marker file.
        marker: PathBuf,
    },
    /// The journal is not the one the marker names.
    #[error(
        "journal {path} has id {found}, but {marker} says {expected}: the file was replaced; put the right one back"
    )]
    Replaced {
        /// The journal.
        path: PathBuf,
        /// The id in the file.
        found: String,
        /// The id the marker holds.
        expected: String,
        /// The marker file.
        marker: PathBuf,
    },
    /// No journal, and this configuration does not create one implicitly.
    #[error(
        "no journal at {path}: create one with `switch journal init` (production never creates one by itself)"
    )]
    NoJournal {
        /// The journal.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OwnerError + '_ {
    move |source| OwnerError::Io {
        path: path.to_owned(),
        source,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The lock file of the journal at `journal`.
pub fn lock_path(journal: &Path) -> PathBuf {
    with_suffix(journal, ".lock")
}

/// The id file of the journal at `journal`.
pub fn marker_path(journal: &Path) -> PathBuf {
    with_suffix(journal, ".id")
}

/// Takes the journal's lock for this process's life (its directory is created if needed).
pub fn lock(journal: &Path) -> Result<JournalLock, OwnerError> {
    if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let path = lock_path(journal);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(OwnerError::InUse {
                path: journal.to_owned(),
                pid: if pid.is_empty() {
                    "?".into()
                } else {
                    pid.into()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    file.set_len(0).map_err(io(&path))?;
    writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    Ok(JournalLock { _file: file })
}

/// What the directory says about the journal before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A journal file with content.
    Existing,
    /// No journal (or an empty file), and no marker: a first run.
    Nothing,
}

/// Checks the journal against its marker before opening it. `may_create`: a missing
/// journal with no marker may be created (a first run, not in production).
pub fn before_open(journal: &Path, may_create: bool) -> Result<Found, OwnerError> {
    let exists = std::fs::metadata(journal).is_ok_and(|m| m.len() > 0);
    let marker = marker_path(journal);
    let id = read_marker(&marker)?;
    match (exists, id) {
        (true, _) => Ok(Found::Existing),
        (false, Some(id)) => Err(OwnerError::Missing {
            path: journal.to_owned(),
            id,
            marker,
        }),
        (false, None) if may_create => Ok(Found::Nothing),
        (false, None) => Err(OwnerError::NoJournal {
            path: journal.to_owned(),
        }),
    }
}

/// The id in the marker file, if there is one.
pub fn read_marker(marker: &Path) -> Result<Option<String>, OwnerError> {
    match std::fs::read_to_string(marker) {
        Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(marker)(e)),
    }
}

/// After opening: the journal's id must be the marker's; a marker is written where there
/// is none (a new journal, or one made before markers existed).
pub fn after_open(journal: &Path, id: &str) -> Result<(), OwnerError> {
    let marker = marker_path(journal);
    match read_marker(&marker)? {
        Some(expected) if expected != id => Err(OwnerError::Replaced {
            path: journal.to_owned(),
            found: id.to_owned(),
            expected,
            marker,
        }),
        Some(_) => Ok(()),
        None => write_marker(&marker, id),
    }
}

/// Writes the marker file durably.
pub fn write_marker(marker: &Path, id: &str) -> Result<(), OwnerError> {
    let tmp = with_suffix(marker, ".tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    writeln!(f, "{id}").map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, marker).map_err(io(marker))?;
    if let Some(dir) = marker.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The journal file as it was opened: noticed when deleted or replaced underneath.
#[derive(Debug, Clone)]
pub struct Identity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Identity {
    /// The file at `path` now.
    pub fn of(path: &Path) -> Result<Self, OwnerError> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(io(path))?;
        Ok(Self {
            path: path.to_owned(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Err` with the reason when the path no longer names the file that was opened.
    pub fn check(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => Ok(()),
            Ok(_) => Err(format!(
                "journal {} was replaced by another file",
                self.path.display()
            )),
            Err(e) => Err(format!("journal {}: {e}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("owner-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_lock_on_the_same_journal_fails_naming_the_pid() {
        let d = dir("lock");
        let j = d.join("journal.db");
        let held = lock(&j).unwrap();
        let e = lock(&j).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(held);
        assert!(lock(&j).is_ok(), "released when dropped");
    }

    #[test]
    fn a_missing_journal_where_one_existed_is_refused() {
        let d = dir("marker");
        let j = d.join("journal.db");
        assert_eq!(before_open(&j, true).unwrap(), Found::Nothing);
        assert!(matches!(
            before_open(&j, false),
            Err(OwnerError::NoJournal { .. })
        ));
        std::fs::write(&j, b"x").unwrap();
        after_open(&j, "abc").unwrap();
        assert_eq!(before_open(&j, false).unwrap(), Found::Existing);
        assert!(matches!(
            after_open(&j, "other"),
            Err(OwnerError::Replaced { .. })
        ));
        std::fs::remove_file(&j).unwrap();
        assert!(matches!(
            before_open(&j, true),
            Err(OwnerError::Missing { .. })
        ));
        std::fs::write(&j, b"").unwrap();
        assert!(
            matches!(before_open(&j, true), Err(OwnerError::Missing { .. })),
            "empty"
        );
    }

    #[test]
    fn identity_notices_deletion_and_replacement() {
        let d = dir("identity");
        let j = d.join("journal.db");
        std::fs::write(&j, b"x").unwrap();
        let id = Identity::of(&j).unwrap();
        assert!(id.check().is_ok());
        // Another file moved into its place (made first, so it cannot reuse the inode).
        let other = d.join("other.db");
        std::fs::write(&other, b"y").unwrap();
        std::fs::rename(&other, &j).unwrap();
        assert!(id.check().unwrap_err().contains("replaced"));
        std::fs::remove_file(&j).unwrap();
        assert!(id.check().is_err(), "deleted");
    }
}
