//! `[journal]`: the system of record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// The journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// SQLite database file (one switch process owns it).
    pub path: PathBuf,
    /// Most operations one commit (one fsync) covers.
    pub group_commit_max: usize,
    /// This node's number (1–99).
    pub node_id: u8,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./switch-data/journal.db"),
            group_commit_max: 512,
            node_id: 1,
        }
    }
}

impl JournalConfig {
    /// The node's name in the journal (`node-7`).
    pub fn node_name(&self) -> String {
        format!("node-{}", self.node_id)
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=99).contains(&self.node_id) {
            return Err(invalid("journal.node_id", "must be 1 to 99"));
        }
        if self.group_commit_max == 0 {
            return Err(invalid("journal.group_commit_max", "must be above 0"));
        }
        Ok(())
    }
}
