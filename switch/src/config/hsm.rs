//! `[hsm]`: the LMK and the HSM's own limits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The HSM.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmConfig {
    /// LMK file (64 hex characters); absent: the demo LMK (test key).
    pub lmk_file: Option<PathBuf>,
    /// PIN verification failures per minute before the HSM refuses verification.
    pub pin_failures_per_minute: Option<u32>,
}
