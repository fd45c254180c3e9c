//! `/metrics` as an on-call engineer reads it: every series of a fixed label set there from
//! the start at 0, buckets that reach past the issuer time-out, build and process figures,
//! and the README's table the same as what a running switch exports.

use std::collections::BTreeSet;

use crate::client::{DEBIT, Terminal};
use crate::e2e::reqwest_metrics;
use crate::{start, temp_dir};

/// The test configuration with an issuer of two lines (nobody answers on them).
fn config(dir: &std::path::Path) -> switch::Config {
    crate::issuer::config(dir, vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()], |i| {
        i.timeout_ms = 5_000
    })
}

/// The value of the sample written exactly as `series`.
pub(crate) fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sample names each `# TYPE` line stands for (counters end in `_total`, infos in
/// `_info`), with their types.
pub(crate) fn families(metrics: &str) -> BTreeSet<(String, String)> {
    metrics
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("# TYPE ")?.split(' ');
            let (name, kind) = (w.next()?, w.next()?);
            let name = match kind {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_owned(),
            };
            Some((name, kind.to_owned()))
        })
        .collect()
}

/// The README's metrics table: name, type (its first word), and the row's text.
pub(crate) fn readme_table() -> Vec<(String, String, String)> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("| metric | type | labels |")
        .expect("README has the metrics table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_owned();
            let kind = cells[2].split_whitespace().next().unwrap_or("").to_owned();
            (name, kind, row.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_fresh_switch_exports_every_fixed_series_at_zero_and_its_build() {
    let dir = temp_dir("metrics-fresh");
    let config = config(&dir);
    let sw = start(config.clone()).await;
    let m = reqwest_metrics(sw.metrics_addr).await;

    // Every kind × every code the switch answers.
    for kind in switch::model::TxnKind::ALL.map(|k| k.as_str()) {
        for rc in switch::model::ResponseCode::KNOWN {
            let series = format!(
                "switch_transactions_total{{kind=\"{kind}\",rc=\"{}\"}}",
                rc.label()
            );
            assert_eq!(value(&m, &series), Some(0.0), "{series}");
        }
    }
    for (family, label, values) in [
        (
            "switch_frames_rejected_total",
            "reason",
            switch::metrics::REJECT_REASONS,
        ),
        (
            "switch_connections_refused_total",
            "reason",
            switch::metrics::REFUSED_REASONS,
        ),
        (
            "switch_amount_fen_total",
            "card_type",
            switch::metrics::CARD_TYPES,
        ),
        (
            "switch_fees_fen_total",
            "card_type",
            switch::metrics::CARD_TYPES,
        ),
    ] {
        for v in values {
            let series = format!("{family}{{{label}=\"{v}\"}}");
            assert_eq!(value(&m, &series), Some(0.0), "{series}");
        }
    }
    for reason in [
        "unknown_terminal",
        "wrong_merchant",
        "not_signed_on",
        "missing_mac",
        "bad_mac",
    ] {
        let series = format!("switch_auth_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&m, &series), Some(0.0), "{series}");
    }
    // The configured issuer and each of its lines.
    let issuer = &config.issuers[0];
    for event in switch::metrics::ISSUER_EVENTS {
        let series = format!(
            "switch_issuer_events_total{{issuer=\"{}\",event=\"{event}\"}}",
            issuer.name
        );
        assert_eq!(value(&m, &series), Some(0.0), "{series}");
    }
    for event in switch::metrics::SAF_EVENTS {
        let series = format!(
            "switch_issuer_saf_total{{issuer=\"{}\",event=\"{event}\"}}",
            issuer.name
        );
        assert_eq!(value(&m, &series), Some(0.0), "{series}");
    }
    for line in &issuer.lines {
        let series = format!(
            "switch_issuer_echoes_total{{issuer=\"{}\",line=\"{line}\",direction=\"sent\"}}",
            issuer.name
        );
        assert!(value(&m, &series).is_some(), "{series}");
    }
    let oldest = format!(
        "switch_issuer_saf_oldest_created_seconds{{issuer=\"{}\"}}",
        issuer.name
    );
    assert_eq!(value(&m, &oldest), Some(0.0), "nothing waiting");

    // Buckets past twice the issuer time-out, with round edges.
    let longest = config.issuers.iter().map(|i| i.timeout_ms).max().unwrap() as f64 / 1000.0;
    let edges: Vec<f64> = m
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("switch_request_duration_seconds_bucket{le=\"")?;
            let (le, labels) = rest.split_once('"')?;
            labels
                .contains("kind=\"sale\"")
                .then(|| le.parse().ok())
                .flatten()
        })
        .collect();
    assert_eq!(edges.first(), Some(&0.0005), "{edges:?}");
    assert!(edges.iter().any(|e| *e >= 2.0 * longest), "{edges:?}");
    assert!(edges.contains(&0.0025) && edges.contains(&1.0), "{edges:?}");

    // Build and process.
    let revision = m
        .lines()
        .find(|l| l.starts_with("switch_build_info{"))
        .expect("build info");
    assert!(
        revision.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{revision}"
    );
    assert!(revision.ends_with(" 1"), "{revision}");
    for series in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "switch_runtime_alive_tasks",
    ] {
        assert!(value(&m, series).is_some_and(|v| v >= 0.0), "{series}");
    }
    assert!(value(&m, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(m.trim_end().ends_with("# EOF"), "OpenMetrics ends so");

    // A sale moves its series from 0; the gauges that are read every second follow.
    let mut t = Terminal::connect(sw.terminal_addr, "10000070").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let m = reqwest_metrics(sw.metrics_addr).await;
    assert_eq!(
        value(&m, "switch_transactions_total{kind=\"sale\",rc=\"00\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "switch_transactions_total{kind=\"sale\",rc=\"55\"}"),
        Some(0.0)
    );
    assert_eq!(value(&m, "switch_sessions_active"), Some(1.0));
    // Read at start (before the sale) and every 15 s: the batch was empty then. What the
    // next read gives, the journal says now: one open batch, one sale.
    assert_eq!(value(&m, "switch_open_batches"), Some(0.0));
    let rows = crate::JournalDb::of(&dir).rows(switch::journal::OPEN_BATCHES_SQL, &[]);
    assert_eq!(
        rows[0],
        [
            switch::journal::columns::Value::Int(1),
            switch::journal::columns::Value::Int(1)
        ]
    );
    assert!(value(&m, "switch_journal_size_bytes{file=\"database\"}").unwrap() > 0.0);
    sw.shutdown().await;
}

#[tokio::test]
async fn the_readme_table_is_what_the_switch_exports() {
    let dir = temp_dir("metrics-readme");
    let sw = start(config(&dir)).await;
    let exported = families(&reqwest_metrics(sw.metrics_addr).await);
    sw.shutdown().await;
    let table = readme_table();
    // Families with series only in some configurations (`[hsm] remote`:
    // tests/api/payshield.rs; `[listen] terminals_tls`: tests/api/tls.rs).
    let documented: BTreeSet<(String, String)> = table
        .iter()
        .filter(|(_, _, row)| !row.contains("with `["))
        .map(|(n, k, _)| (n.clone(), k.clone()))
        .collect();
    let missing: Vec<_> = exported.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "exported, not in the README table: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "in the README table, not exported: {stale:?}"
    );
    // The fixed label values the README names are the code's.
    let row = |name: &str| {
        table
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, r)| r.clone())
            .unwrap_or_default()
    };
    for (family, values) in [
        (
            "switch_frames_rejected_total",
            switch::metrics::REJECT_REASONS,
        ),
        (
            "switch_connections_refused_total",
            switch::metrics::REFUSED_REASONS,
        ),
        ("switch_hsm_duration_seconds", switch::metrics::HSM_OPS),
        ("switch_issuer_saf_total", switch::metrics::SAF_EVENTS),
        ("switch_issuer_events_total", switch::metrics::ISSUER_EVENTS),
        ("switch_amount_fen_total", switch::metrics::CARD_TYPES),
        ("switch_hsm_errors_total", switch::metrics::HSM_ERROR_KINDS),
    ] {
        let r = row(family);
        for v in values {
            assert!(
                r.contains(&format!("`{v}`")),
                "{family}: {v} not in the README"
            );
        }
        // The values are the ones in parentheses in the labels cell.
        let labels = r.rsplit('|').nth(1).unwrap_or("");
        let inside = labels.split_once('(').map_or("", |(_, v)| v);
        let listed = inside.matches('`').count() / 2;
        assert_eq!(
            listed,
            values.len(),
            "{family}: the README lists others too: {r}"
        );
    }
}

/// The metric names (`switch_…`, `process_…`) a text mentions.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["switch_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let starts_word = i == 0
                || !rest.as_bytes()[i - 1].is_ascii_alphanumeric()
                    && rest.as_bytes()[i - 1] != b'_';
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if starts_word {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn the_alert_rules_name_only_what_the_switch_exports() {
    let samples = exported_samples().await;
    let rules = include_str!("../../../deploy/prometheus/alerts.yml");
    // Not the ones `switch report` and `switch run` are (commands in the runbooks).
    let named: BTreeSet<String> = names_in(rules)
        .into_iter()
        .filter(|n| n.contains('_') && !n.ends_with('_'))
        .collect();
    assert!(named.len() > 10, "{named:?}");
    let unknown: Vec<_> = named.difference(&samples).collect();
    assert!(
        unknown.is_empty(),
        "alerts name metrics the switch does not export: {unknown:?}"
    );
}

/// Every metric sample name a running switch exports (histograms with their suffixes).
async fn exported_samples() -> BTreeSet<String> {
    let dir = temp_dir("metrics-samples");
    let sw = start(config(&dir)).await;
    let mut exported = families(&reqwest_metrics(sw.metrics_addr).await);
    sw.shutdown().await;
    // The families of other configurations (network HSM, TLS listener), checked there.
    for (name, kind, row) in readme_table() {
        if row.contains("with `[") {
            exported.insert((name, kind));
        }
    }
    let mut samples = BTreeSet::new();
    for (name, kind) in &exported {
        samples.insert(name.clone());
        if kind == "histogram" {
            for s in ["_bucket", "_sum", "_count"] {
                samples.insert(format!("{name}{s}"));
            }
        }
    }
    samples
}

#[tokio::test]
async fn the_dashboard_queries_only_what_the_switch_exports_and_every_panel_has_a_unit() {
    let samples = exported_samples().await;
    let dashboard: serde_json::Value = serde_json::from_str(include_str!(
        "../../../deploy/grafana/switch-dashboard.json"
    ))
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 15, "{}", panels.len());
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
        assert!(!unit.is_empty(), "panel {title:?} has no unit");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} queries nothing");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr").to_owned();
            let named = names_in(&expr);
            assert!(!named.is_empty(), "{title}: {expr}");
            let unknown: Vec<_> = named.difference(&samples).collect();
            assert!(unknown.is_empty(), "{title}: {unknown:?} not exported");
            exprs.push((title.to_owned(), expr));
        }
    }
    // What an on-call engineer looks for first is there.
    for must in [
        "switch_transactions_total",
        "switch_request_duration_seconds_bucket",
        "switch_issuer_line_up",
        "switch_issuer_saf_queued",
        "switch_issuer_saf_oldest_created_seconds",
        "switch_hsm_duration_seconds_bucket",
        "switch_journal_commit_duration_seconds_bucket",
        "process_resident_memory_bytes",
    ] {
        assert!(
            exprs.iter().any(|(_, e)| e.contains(must)),
            "no panel shows {must}"
        );
    }
    // The queries parse as PromQL: promtool checks them as recording rules, when it is
    // installed (CI installs it).
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!("promtool not installed: the dashboard's PromQL was not parsed");
        return;
    };
    assert!(out.status.success());
    let dir = temp_dir("dashboard-promql");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, e)) in exprs.iter().enumerate() {
        let e = e.replace("$instance", ".*").replace('\'', "''");
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: '{e}'\n"
        ));
    }
    let path = dir.join("dashboard-rules.yml");
    std::fs::write(&path, rules).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
