//! `[listen]`: where terminals and operators connect.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Listening addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Terminal connections.
    pub terminals: SocketAddr,
    /// Metrics, health and the status page.
    pub metrics: SocketAddr,
    /// The status page's password (user `status`, HTTP Basic). Needed when `metrics` is
    /// not a loopback address: without it the page is not served there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_password: Option<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            terminals: SocketAddr::from(([127, 0, 0, 1], 8583)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9583)),
            status_password: None,
        }
    }
}
