//! `[limits]`: connections, frames, time-outs and what memory holds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Connection and memory limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests in progress per connection at most.
    pub max_in_flight: usize,
    /// Seconds without a frame before closing.
    pub idle_timeout_secs: u64,
    /// Seconds a started frame may take to finish.
    pub read_timeout_secs: u64,
    /// Largest frame accepted (after the 2-byte length).
    pub max_frame_bytes: usize,
    /// Open connections from one peer address at most (a concentrator or a NAT counts
    /// once per connection).
    pub max_connections_per_peer: usize,
    /// Seconds a new connection has to prove its terminal (a request with a valid MAC, or a
    /// sign-on answered) before it is closed; after that, `idle_timeout_secs` applies.
    pub auth_timeout_secs: u64,
    /// Recent transactions kept in memory (answers for retransmissions, approvals for
    /// voids, refunds and reversals); older ones are read back from the journal, so memory
    /// does not grow with the open batches.
    pub cached_transactions: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_in_flight: 64,
            idle_timeout_secs: 300,
            read_timeout_secs: 10,
            max_frame_bytes: 2048,
            max_connections_per_peer: 256,
            auth_timeout_secs: 10,
            cached_transactions: 65_536,
        }
    }
}

/// The limits as the server uses them.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests in progress per connection at most.
    pub max_in_flight: usize,
    /// Close after this long without a frame.
    pub idle_timeout: Duration,
    /// Close when a started frame takes longer than this.
    pub read_timeout: Duration,
    /// Largest frame (after the 2-byte length).
    pub max_frame: usize,
    /// Open connections from one peer address at most.
    pub max_per_peer: usize,
    /// Time a new connection has to prove its terminal.
    pub auth_timeout: Duration,
}

impl LimitsConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 || self.max_in_flight == 0 {
            return Err(invalid(
                "limits",
                "max_connections and max_in_flight must be above 0",
            ));
        }
        if !(64..=65_535).contains(&self.max_frame_bytes) {
            return Err(invalid(
                "limits.max_frame_bytes",
                "must be 64 to 65535 (the length prefix is 2 bytes)",
            ));
        }
        if self.max_connections_per_peer == 0 {
            return Err(invalid(
                "limits.max_connections_per_peer",
                "must be above 0",
            ));
        }
        if self.idle_timeout_secs == 0 || self.read_timeout_secs == 0 || self.auth_timeout_secs == 0
        {
            return Err(invalid("limits", "timeouts must be at least 1 second"));
        }
        if self.cached_transactions < 16 {
            return Err(invalid("limits.cached_transactions", "must be at least 16"));
        }
        Ok(())
    }

    /// The server's limits.
    pub fn server(&self) -> ServerLimits {
        ServerLimits {
            max_connections: self.max_connections,
            max_in_flight: self.max_in_flight,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            read_timeout: Duration::from_secs(self.read_timeout_secs),
            max_frame: self.max_frame_bytes,
            max_per_peer: self.max_connections_per_peer,
            auth_timeout: Duration::from_secs(self.auth_timeout_secs),
        }
    }
}
