//! Metrics per network HSM: commands by code and outcome, latency, up.
//!
//! ```text
//!  switch_hsm_remote_requests_total{hsm,command,result}   result: 00, 01, … or timeout,
//!                                                         connect, read, write, header
//!  switch_hsm_remote_duration_seconds{hsm}
//!  switch_hsm_up{hsm}
//! ```
//! `hsm` is an address from the configuration; `command` one of the codes the switch
//! sends; `result` a payShield error code or a link failure from a fixed set.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// The commands the switch sends.
pub const COMMANDS: [&str; 8] = ["NC", "A0", "BU", "CA", "DA", "DC", "M6", "M8"];

/// An HSM.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HsmLabel {
    /// Address from the configuration.
    pub hsm: String,
}

/// A command and its outcome on an HSM.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// Address from the configuration.
    pub hsm: String,
    /// Command code.
    pub command: &'static str,
    /// Error code, or how the link failed.
    pub result: &'static str,
}

/// The families, registered by [`super::Metrics`].
#[derive(Clone)]
pub struct RemoteMetrics {
    /// Commands by HSM, code and result.
    pub requests: Family<CommandLabels, Counter>,
    /// Command latency by HSM.
    pub duration: Family<HsmLabel, Histogram, fn() -> Histogram>,
    /// Whether each HSM answers.
    pub up: Family<HsmLabel, Gauge>,
}

impl Default for RemoteMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl RemoteMetrics {
    /// Empty families.
    pub fn new() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency),
            up: Family::default(),
        }
    }

    /// Every series of `hsm` at zero, so dashboards see it before traffic.
    pub fn prime(&self, hsm: &str) {
        let _ = self.duration.get_or_create(&HsmLabel {
            hsm: hsm.to_owned(),
        });
        let _ = self.up.get_or_create(&HsmLabel {
            hsm: hsm.to_owned(),
        });
        for command in COMMANDS {
            for result in ["00", "01"] {
                let _ = self.requests.get_or_create(&CommandLabels {
                    hsm: hsm.to_owned(),
                    command,
                    result,
                });
            }
        }
    }

    pub(crate) fn up(&self, hsm: &str, up: bool) {
        self.up
            .get_or_create(&HsmLabel {
                hsm: hsm.to_owned(),
            })
            .set(i64::from(up));
    }

    pub(crate) fn request(&self, hsm: &str, command: &[u8], result: &str, took: Duration) {
        let command = COMMANDS
            .iter()
            .find(|c| c.as_bytes() == command)
            .copied()
            .unwrap_or("other");
        self.requests
            .get_or_create(&CommandLabels {
                hsm: hsm.to_owned(),
                command,
                result: result_label(result),
            })
            .inc();
        self.duration
            .get_or_create(&HsmLabel {
                hsm: hsm.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// A result label from a fixed set: two-digit codes as themselves, link failures by name.
fn result_label(r: &str) -> &'static str {
    const KNOWN: [&str; 24] = [
        "00",
        "01",
        "02",
        "04",
        "05",
        "10",
        "11",
        "12",
        "13",
        "14",
        "15",
        "20",
        "23",
        "24",
        "26",
        "27",
        "68",
        "80",
        "timeout",
        "connect",
        "read",
        "write",
        "header",
        "response_code",
    ];
    KNOWN.iter().find(|k| **k == r).copied().unwrap_or("other")
}
