//! Live configuration: a running switch takes a new configuration whole, or none of it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switch::Config;
use switch::config::TerminalRangeConfig;

use crate::client::Terminal;
use crate::issuer::{REMOTE, config as issuer_config, lines_up, sim};
use crate::{JournalDb, spawn_switch, start, temp_dir, test_config};

const CARD: &str = "6222021000000000017";

/// The fee the journal holds for the transaction of `rrn`.
fn fee_of(dir: &std::path::Path, rrn: &str) -> i64 {
    JournalDb::of(dir).number(
        "SELECT fee_fen FROM transactions WHERE rrn = ?1",
        &[switch::journal::columns::Value::Text(rrn.to_owned())],
    )
}

fn debit_rate(c: &mut Config, rate: &str) {
    let rule = c
        .fees
        .iter_mut()
        .find(|f| f.category == "standard" && f.channel == switch::fees::Channel::Debit)
        .unwrap();
    rule.rate = rate.to_owned();
}

fn new_range(c: &Config) -> TerminalRangeConfig {
    let mut r = c.terminals[0].clone();
    r.tid_from = "20000001".into();
    r.tid_to = "20000009".into();
    r
}

async fn metrics(sw: &switch::Running) -> String {
    crate::e2e::reqwest_metrics(sw.metrics_addr).await
}

#[tokio::test]
async fn fees_terminals_and_limits_change_live_and_sessions_stay() {
    let dir = temp_dir("reload-live");
    let cfg = test_config(&dir);
    let sw = start(cfg.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let before = t.sale(CARD, "123456", 10_000).await;
    assert_eq!(before.rc(), "00");
    assert_eq!(
        fee_of(&dir, &before.text(37).unwrap()),
        50,
        "0.50 % of 100.00"
    );
    let mut newcomer = Terminal::connect(sw.terminal_addr, "20000001").await;
    assert_eq!(newcomer.sign_on().await.rc(), "97", "not configured yet");

    let mut next = cfg.clone();
    debit_rate(&mut next, "1.00%");
    next.terminals.push(new_range(&next));
    next.limits.max_connections = 777;
    next.listen.terminals = "127.0.0.1:1".parse().unwrap();
    let outcome = sw.apply_config(next).await.unwrap();
    for s in ["fees", "terminals", "limits"] {
        assert!(outcome.applied.iter().any(|a| a == s), "{outcome:?}");
    }
    assert_eq!(outcome.at_next_start, vec!["listen".to_owned()]);

    // The terminal signed on before keeps its session: no sign-on, the new fee.
    let after = t.sale(CARD, "123456", 10_000).await;
    assert_eq!(after.rc(), "00");
    assert_eq!(fee_of(&dir, &after.text(37).unwrap()), 100, "1.00 % now");
    // The new range signs on and pays.
    let mut newcomer = Terminal::connect(sw.terminal_addr, "20000001").await;
    assert_eq!(newcomer.sign_on().await.rc(), "00");
    assert_eq!(newcomer.sale(CARD, "123456", 1_000).await.rc(), "00");
    // The listener did not move.
    let mut again = Terminal::connect(sw.terminal_addr, "10000002").await;
    assert_eq!(again.sign_on().await.rc(), "00");
    let m = metrics(&sw).await;
    assert!(m.contains("switch_connections_limit 777"), "limit in force");
    assert!(m.contains("switch_config_reloads_total{result=\"ok\"} 1"));
    assert!(m.contains("switch_config_last_reload_successful 1"));
    sw.shutdown().await;
}

#[tokio::test]
async fn an_invalid_configuration_changes_nothing_and_says_why() {
    let dir = temp_dir("reload-invalid");
    let cfg = test_config(&dir);
    let sw = start(cfg.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");

    // A good change beside a key that does not open: none of it applies.
    let mut bad = cfg.clone();
    debit_rate(&mut bad, "1.00%");
    let mut range = new_range(&bad);
    range.tmk_clear = Some("0123".into());
    bad.terminals.push(range);
    let e = format!("{:#}", sw.apply_config(bad).await.unwrap_err());
    assert!(e.contains("terminals[4].tmk"), "{e}");

    // A value out of range.
    let mut bad = cfg.clone();
    bad.limits.max_connections = 0;
    let e = format!("{:#}", sw.apply_config(bad).await.unwrap_err());
    assert!(e.contains("limits"), "{e}");

    // A route to an issuer that is not configured.
    let mut bad = cfg.clone();
    let mut route = bad.routes[0].clone();
    route.prefix = "621700".into();
    route.route = "nobody".into();
    bad.routes.push(route);
    assert!(sw.apply_config(bad).await.is_err());

    // An issuer whose TLS CA file is not there: refused, and its line never shows.
    let mut bad = issuer_config(&dir, vec!["127.0.0.1:9".into()], |i| {
        i.tls = Some(switch::config::IssuerTlsConfig {
            ca_file: dir.join("missing-ca.pem"),
            cert_file: None,
            key_file: None,
            server_name: None,
        });
    });
    debit_rate(&mut bad, "1.00%");
    let e = format!("{:#}", sw.apply_config(bad).await.unwrap_err());
    assert!(e.contains("issuers[0].tls"), "{e}");
    assert!(!metrics(&sw).await.contains("127.0.0.1:9\""));

    let s = t.sale(CARD, "123456", 10_000).await;
    assert_eq!(s.rc(), "00");
    assert_eq!(fee_of(&dir, &s.text(37).unwrap()), 50, "the old fee stands");
    let mut newcomer = Terminal::connect(sw.terminal_addr, "20000001").await;
    assert_eq!(
        newcomer.sign_on().await.rc(),
        "97",
        "the new range did not apply"
    );
    let m = metrics(&sw).await;
    assert!(
        m.contains("switch_config_reloads_total{result=\"invalid\"} 4"),
        "{m}"
    );
    assert!(m.contains("switch_config_last_reload_successful 0"));
    // A good one after: applied, and the gauge says so.
    let mut good = cfg.clone();
    debit_rate(&mut good, "1.00%");
    sw.apply_config(good).await.unwrap();
    assert!(
        metrics(&sw)
            .await
            .contains("switch_config_last_reload_successful 1")
    );
    sw.shutdown().await;
}

#[tokio::test]
async fn an_issuer_line_moves_without_dropping_the_request_in_flight() {
    let (old, new) = (sim(1).await, sim(1).await);
    let dir = temp_dir("reload-issuer");
    let cfg = issuer_config(&dir, vec![old.addrs[0].to_string()], |_| {});
    let sw = start(cfg.clone()).await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");

    // A sale waits for the old line's issuer while the line moves.
    old.knobs.delay_ms.store(700, Ordering::Relaxed);
    let in_flight = tokio::spawn(async move {
        let r = t.sale(REMOTE, "111111", 10_000).await;
        (t, r)
    });
    let end = Instant::now() + Duration::from_secs(5);
    while old.received("0200") == 0 {
        assert!(Instant::now() < end, "the sale reached the old issuer");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut moved = cfg.clone();
    moved.issuers[0].lines = vec![new.addrs[0].to_string()];
    let outcome = sw.apply_config(moved).await.unwrap();
    assert_eq!(outcome.applied, vec!["issuers".to_owned()]);
    let (mut t, r) = in_flight.await.unwrap();
    assert_eq!(r.rc(), "00", "answered by the old line after the reload");
    assert_eq!(old.balance(REMOTE), Some(2_000_000 - 10_000));

    // New requests go out on the new line; the old one closes and leaves /metrics.
    lines_up(&sw, 1).await;
    assert_eq!(t.sale(REMOTE, "111111", 5_000).await.rc(), "00");
    assert_eq!(new.received("0200"), 1);
    assert_eq!(old.received("0200"), 1);
    let old_line = format!("line=\"{}\"", old.addrs[0]);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(&sw).await;
        if !m.contains(&old_line) && m.contains(&format!("line=\"{}\"", new.addrs[0])) {
            break;
        }
        assert!(Instant::now() < end, "old line still in /metrics:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The issuer removed: its cards have no route; added back: they pay again.
    let mut without = cfg.clone();
    without.issuers.clear();
    without.routes.retain(|r| r.route == "on-us");
    sw.apply_config(without).await.unwrap();
    assert_ne!(t.sale(REMOTE, "111111", 1_000).await.rc(), "00");
    let mut back = cfg.clone();
    back.issuers[0].lines = vec![new.addrs[0].to_string()];
    sw.apply_config(back).await.unwrap();
    lines_up(&sw, 1).await;
    assert_eq!(t.sale(REMOTE, "111111", 1_000).await.rc(), "00");
    sw.shutdown().await;
}

#[tokio::test]
async fn the_card_file_against_the_journal_is_warned_of_masked() {
    let dir = temp_dir("reload-cards");
    let cfg = test_config(&dir);
    let sw = start(cfg.clone()).await;
    let mut stolen = cfg.clone();
    stolen.cards[0].status = switch::config::CardStatus::Stolen;
    let mut extra = stolen.cards[1].clone();
    extra.pan = "6222021000000000041".into();
    stolen.cards.push(extra);
    let outcome = sw.apply_config(stolen).await.unwrap();
    let text = outcome.warnings.join("\n");
    assert!(text.contains("cards[0] (622202*********0017): status is stolen in the configuration, active in the journal"), "{text}");
    assert!(text.contains("622202*********0041"), "{text}");
    assert!(text.contains("not in the journal"), "{text}");
    assert!(
        !text.contains(CARD) && !text.contains("6222021000000000041"),
        "{text}"
    );
    // The journal's status stands.
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;
    assert_eq!(t.sale(CARD, "123456", 100).await.rc(), "00");
    sw.shutdown().await;
}

/// `switch reload` as an operator runs it.
fn switch_reload(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .arg("reload")
        .args(args)
        .output()
        .unwrap()
}

fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_for_log(logs: &std::sync::Arc<std::sync::Mutex<String>>, what: &str, times: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while logs.lock().unwrap().matches(what).count() < times {
        assert!(Instant::now() < end, "no {what:?} in the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn switch_reload_and_sighup_apply_the_file_or_nothing() {
    let dir = temp_dir("reload-cli");
    let path = dir.join("switch.toml");
    let cfg = test_config(&dir);
    let sw = spawn_switch(&cfg, &path, "info");
    let pid = std::fs::read_to_string(dir.join("switch.pid")).unwrap();
    assert_eq!(pid.trim(), sw.child.id().to_string(), "the pid file");
    let admin = sw.metrics.to_string();
    let token = dir.join("admin.token");
    let token = token.to_str().unwrap();
    let mut newcomer = Terminal::connect(sw.addr, "20000001").await;
    assert_eq!(newcomer.sign_on().await.rc(), "97");

    // A range added to the file: `switch reload` applies it and says what changed.
    let mut next = cfg.clone();
    next.terminals.push(new_range(&next));
    std::fs::write(&path, toml::to_string(&next).unwrap()).unwrap();
    let out = switch_reload(&["--admin", &admin, "--token-file", token]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"terminals\""), "{stdout}");
    let mut newcomer = Terminal::connect(sw.addr, "20000001").await;
    assert_eq!(newcomer.sign_on().await.rc(), "00");

    // A file that does not parse: exit 1, the reason, nothing changed.
    std::fs::write(&path, "[listen\n").unwrap();
    let out = switch_reload(&["--admin", &admin, "--token-file", token]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing changed"), "{stderr}");
    assert!(stderr.contains("switch.toml"), "{stderr}");
    assert_eq!(newcomer.sale(CARD, "123456", 100).await.rc(), "00");
    // Without the token: refused.
    let wrong = dir.join("wrong.token");
    std::fs::write(&wrong, "0".repeat(64)).unwrap();
    let out = switch_reload(&["--admin", &admin, "--token-file", wrong.to_str().unwrap()]);
    assert!(!out.status.success());

    // SIGHUP: the range gone again, and the log level the file now gives.
    let mut quiet = cfg.clone();
    quiet.log.level = Some("warn".into());
    std::fs::write(&path, toml::to_string(&quiet).unwrap()).unwrap();
    kill("-HUP", sw.child.id());
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let mut gone = Terminal::connect(sw.addr, "20000002").await;
        if gone.sign_on().await.rc() == "97" {
            break;
        }
        assert!(
            Instant::now() < end,
            "the range is still there after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At warn, a reload's info line is not logged; a refused one is.
    std::fs::write(&path, "[listen\n").unwrap();
    kill("-HUP", sw.child.id());
    wait_for_log(&sw.logs, "configuration reload refused", 2).await;
    assert_eq!(
        sw.logs
            .lock()
            .unwrap()
            .matches("configuration reloaded")
            .count(),
        1
    );
    let mut child = sw.child;
    assert!(child.try_wait().unwrap().is_none(), "still running");
    kill("-TERM", child.id());
    assert!(child.wait().unwrap().success());
    assert!(
        !dir.join("switch.pid").exists(),
        "the pid file goes at a clean stop"
    );
}

#[tokio::test]
async fn an_issuer_changed_twice_at_once_still_sends_its_queue() {
    let (a, b) = (sim(1).await, sim(1).await);
    let dir = temp_dir("reload-twice");
    let cfg = issuer_config(&dir, vec![a.addrs[0].to_string()], |i| {
        i.timeout_ms = 300;
        i.saf.retry_secs = 1;
    });
    let sw = start(cfg.clone()).await;
    lines_up(&sw, 1).await;
    let mut moved = cfg.clone();
    moved.issuers[0].lines = vec![b.addrs[0].to_string()];
    let mut back = cfg.clone();
    back.issuers[0].echo_interval_secs += 1;
    sw.apply_config(moved).await.unwrap();
    sw.apply_config(back).await.unwrap();
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // A time-out: its reversal goes through the queue, which the issuer's worker sends.
    a.knobs.delay_ms.store(1_000, Ordering::Relaxed);
    assert_eq!(t.sale(REMOTE, "111111", 10_000).await.rc(), "98");
    a.knobs.delay_ms.store(0, Ordering::Relaxed);
    let end = Instant::now() + Duration::from_secs(10);
    while a.received("0420") + a.received("0421") == 0 {
        assert!(Instant::now() < end, "the reversal never went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.received("0420"), 0);
    sw.shutdown().await;
}
