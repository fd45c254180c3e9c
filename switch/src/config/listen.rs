//! `[listen]`: where terminals and operators connect.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Listening addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Terminal connections.
    pub terminals: SocketAddr,
    /// Metrics and health.
    pub metrics: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            terminals: SocketAddr::from(([127, 0, 0, 1], 8583)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9583)),
        }
    }
}
