//! `[log]`: the level, the log file beside stderr, and how it rotates.
//!
//! ```toml
//! [log]
//! level = "info"                        # or "warn", "switch=debug,info", …; changes on reload
//! file = "/var/log/switch/switch.log"   # absent: stderr only
//! rotation = "daily"                    # daily | hourly | never
//! ```
//!
//! `RUST_LOG`, when set, is the level at start instead.
//!
//! A rotated file gets the period as a suffix (`switch.log.2026-12-05`). Lines go to both
//! through the same bounded queue as stderr: a full disk drops lines, never a reply.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// When a new log file is started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// Every UTC day.
    #[default]
    Daily,
    /// Every UTC hour.
    Hourly,
    /// One file.
    Never,
}

/// The log file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// What is logged (an `EnvFilter` directive: `info`, `switch=debug,warn`, …); absent:
    /// `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The file (its directory must exist); absent: stderr only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// When a new file starts.
    #[serde(default)]
    pub rotation: Rotation,
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(level) = &self.level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            return Err(invalid(
                "log.level",
                format!("not a log level or filter: {e}"),
            ));
        }
        if let Some(f) = &self.file {
            if f.file_name().is_none() {
                return Err(invalid("log.file", "must name a file"));
            }
            let dir = f.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(d) = dir
                && !d.is_dir()
            {
                return Err(invalid(
                    "log.file",
                    format!("its directory {} does not exist", d.display()),
                ));
            }
        }
        Ok(())
    }
}
