//! The process's own figures, read from `/proc` at each scrape under the standard names
//! (what Prometheus's client libraries export), and the Tokio runtime's:
//!
//! ```text
//! /proc/self/stat    ─▶ process_cpu_seconds_total, process_start_time_seconds,
//!                       process_virtual_memory_bytes
//! /proc/self/status  ─▶ process_resident_memory_bytes (VmRSS)
//! /proc/self/fd      ─▶ process_open_fds
//! /proc/self/limits  ─▶ process_max_fds
//! tokio Handle       ─▶ switch_runtime_alive_tasks, switch_runtime_workers,
//!                       switch_runtime_busy_seconds_total (busy ratio =
//!                       rate(…) / switch_runtime_workers)
//! the clock          ─▶ switch_time_seconds
//! ```
//!
//! Elsewhere than Linux the `process_*` series are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`: 100 on every Linux ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// The collector.
#[derive(Debug, Default)]
pub struct Process;

impl Process {
    /// A collector of this process's figures.
    pub fn new() -> Self {
        Self
    }
}

/// What `/proc` says now.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
    open_fds: f64,
    max_fds: Option<f64>,
}

/// The fields after the command name of `/proc/self/stat` (the name may hold spaces and
/// parentheses: the last `)` ends it). Index 0 is field 3 (state).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f = stat_fields(&stat)?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib = status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
    })?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines().find_map(|l| {
                l.strip_prefix("Max open files")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        });
    Some(Figures {
        cpu_seconds: (num(11)? + num(12)?) / TICKS_PER_SECOND,
        start_time_seconds: boot + num(19)? / TICKS_PER_SECOND,
        virtual_bytes: num(20)?,
        resident_bytes: rss_kib * 1024.0,
        open_fds,
        max_fds,
    })
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Process {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        if let Some(f) = read() {
            let cpu = ConstCounter::new(f.cpu_seconds);
            cpu.encode(e.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, seconds",
                None,
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut e,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, seconds",
                f.start_time_seconds,
            )?;
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size, bytes",
                f.resident_bytes,
            )?;
            gauge(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size, bytes",
                f.virtual_bytes,
            )?;
            gauge(
                &mut e,
                "process_open_fds",
                "Open file descriptors",
                f.open_fds,
            )?;
            if let Some(max) = f.max_fds {
                gauge(
                    &mut e,
                    "process_max_fds",
                    "Maximum open file descriptors",
                    max,
                )?;
            }
        }
        // The switch's clock at this scrape: a reader (the status page) computes rates on
        // it rather than on its own clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        gauge(
            &mut e,
            "switch_time_seconds",
            "The switch's clock at this scrape, Unix seconds",
            now,
        )?;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let m = rt.metrics();
            gauge(
                &mut e,
                "switch_runtime_alive_tasks",
                "Tokio tasks alive (connections, requests, issuer lines, jobs)",
                m.num_alive_tasks() as f64,
            )?;
            gauge(
                &mut e,
                "switch_runtime_workers",
                "Tokio worker threads",
                m.num_workers() as f64,
            )?;
            let busy: f64 = (0..m.num_workers())
                .map(|w| m.worker_total_busy_duration(w).as_secs_f64())
                .sum();
            let busy = ConstCounter::new(busy);
            busy.encode(e.encode_descriptor(
                "switch_runtime_busy_seconds",
                "Time the Tokio workers spent busy, summed over workers; busy ratio = rate / switch_runtime_workers",
                None,
                busy.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 8192000 300";
        let f = stat_fields(stat).unwrap();
        assert_eq!(
            (f[0], f[11], f[12], f[19], f[20]),
            ("S", "250", "50", "1000", "8192000")
        );
    }

    #[test]
    fn this_process_reads_back() {
        let f = read().expect("Linux /proc");
        assert!(f.cpu_seconds >= 0.0 && f.resident_bytes > 0.0 && f.open_fds >= 3.0);
        assert!(f.start_time_seconds > 1.6e9, "{f:?}");
        assert!(f.max_fds.is_some_and(|m| m >= f.open_fds), "{f:?}");
    }
}
