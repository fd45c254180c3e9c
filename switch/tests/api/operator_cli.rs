//! What an operator meets on day one: the version, flags over the configuration, and the
//! checks `check-config` and `report` make before doing anything.

use std::io::{BufRead, BufReader};

use crate::cli::switch;
use crate::{start, temp_dir, test_config};
use switch::config::DEMO_TOML;

#[test]
fn the_version_names_the_revision() {
    let (ok, out, _) = switch(&["--version"]);
    assert!(ok);
    assert!(
        out.starts_with(&format!("switch {} (", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
}

#[test]
fn check_config_refuses_what_would_confuse_the_switch() {
    let dir = temp_dir("check-more");
    let check = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        switch(&["check-config", path.to_str().unwrap()])
    };
    let with = |from: &str, to: &str| {
        assert!(DEMO_TOML.contains(from), "{from}");
        DEMO_TOML.replacen(from, to, 1)
    };
    let cases = [
        // A second route with the first one's prefix.
        (
            with(
                "[[routes]]",
                "[[routes]]\nprefix = \"622202\"\nroute = \"on-us\"\ncard_type = \"debit\"\n\n[[routes]]",
            ),
            "the same prefix as routes[0]",
        ),
        // A card twice, and a mistyped card number.
        (
            with(
                "[[cards]]",
                "[[cards]]\npan = \"6222021000000000017\"\npin = \"123456\"\nexpiry = \"2912\"\nbalance_fen = 100\n\n[[cards]]",
            ),
            "the same card as cards[0]",
        ),
        (
            with(
                "pan = \"6222021000000000017\"",
                "pan = \"6222021000000000018\"",
            ),
            "fails the Luhn check",
        ),
        // Both listeners on one address.
        (
            with(
                "metrics = \"127.0.0.1:9583\"",
                "metrics = \"127.0.0.1:8583\"",
            ),
            "the same address as listen.terminals",
        ),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let (ok, _, err) = check(&format!("bad-{i}.toml"), text);
        assert!(!ok && err.contains(want), "{want}: {err}");
    }
    // localhost:PORT is an address.
    let (ok, out, err) = check(
        "localhost.toml",
        with(
            "terminals = \"127.0.0.1:8583\"",
            "terminals = \"localhost:8583\"",
        ),
    );
    assert!(ok, "{out}{err}");
}

#[tokio::test]
async fn reports_refuse_impossible_days_unknown_states_and_batches() {
    let dir = temp_dir("report-args");
    let sw = start(test_config(&dir)).await;
    sw.shutdown().await;
    let journal = dir.join("journal.db");
    let journal = journal.to_str().unwrap();
    for (args, want) in [
        (
            vec!["report", "settlement", "--date", "2026-02-31"],
            "not a day",
        ),
        (
            vec!["report", "issuers", "--date", "2026-13-01"],
            "not a day",
        ),
        (vec!["report", "saf", "--state", "lost"], "one of"),
        (
            vec!["report", "batch", "--tid", "10000001", "--batch", "42"],
            "no batch 000042",
        ),
    ] {
        let mut args = args;
        args.extend(["--journal", journal]);
        let (ok, _, err) = switch(&args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
    let (ok, out, err) = switch(&[
        "report",
        "settlement",
        "--date",
        "2026-02-28",
        "--journal",
        journal,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("settlement for 2026-02-28 (a China Standard Time day)"),
        "{out}"
    );
}

#[test]
fn flags_move_the_demo_without_a_configuration_file() {
    let dir = temp_dir("flags");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--listen", "localhost:0"])
        .env("SWITCH_METRICS", "127.0.0.1:0")
        .env("SWITCH_DATA", &dir)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("switch listening"))
        .expect("it starts");
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.contains("terminals=127.0.0.1:"), "{listening}");
    assert!(
        !listening.contains(":8583"),
        "not the demo's port: {listening}"
    );
    assert!(
        dir.join("journal.db").exists(),
        "the journal in the data directory"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The systemd unit as systemd reads it: every directive known, the command there (the
/// built binary stands in for /usr/local/bin/switch). Skipped without systemd-analyze.
#[test]
fn the_systemd_unit_verifies() {
    let unit = include_str!("../../../deploy/systemd/switch.service");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/switch run "),
        "{unit}"
    );
    let dir = temp_dir("systemd");
    let path = dir.join("switch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/switch", env!("CARGO_BIN_EXE_switch")),
    )
    .unwrap();
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    else {
        eprintln!("systemd-analyze not installed: the unit was not verified");
        return;
    };
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // A directive systemd does not understand is only a warning: none allowed.
    assert!(
        !said.lines().any(|l| l.contains("switch.service")),
        "{said}"
    );
    // Its arguments are ones `switch run` takes.
    let (ok, out, err) = switch(&["run", "--help"]);
    assert!(ok, "{err}");
    for flag in ["--config", "--data", "--log-format"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
}

/// A graceful stop: while the last requests finish, `/healthz` still answers 200 and
/// `/readyz` 503, so a load balancer takes the node out rather than seeing it vanish.
#[tokio::test]
async fn probes_answer_while_a_stop_drains_the_last_request() {
    use crate::client::Terminal;
    use crate::issuer::REMOTE;
    // An issuer that takes requests and never answers: the sale waits for its time-out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let line = silent.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let dir = temp_dir("drain");
    let config = crate::issuer::config(&dir, vec![line], |i| i.timeout_ms = 3_000);
    let sw = start(config).await;
    let (terminals, metrics) = (sw.terminal_addr, sw.metrics_addr);
    let mut t = Terminal::connect(terminals, "10000095").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sale = tokio::spawn(async move { t.sale(REMOTE, "111111", 100).await.rc().to_owned() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stopping = tokio::spawn(sw.shutdown());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !sale.is_finished(),
        "the sale is still waiting for its issuer"
    );
    let health = crate::cli::http_get(metrics, "/healthz").await;
    let ready = crate::cli::http_get(metrics, "/readyz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    let m = crate::e2e::reqwest_metrics(metrics).await;
    assert!(m.lines().any(|l| l == "switch_ready 0"), "the gauge agrees");
    // The sale gets its answer (a time-out, reversed), then the process's listeners close.
    assert_eq!(sale.await.unwrap(), "98");
    stopping.await.unwrap();
    assert!(tokio::net::TcpStream::connect(metrics).await.is_err());
}

/// A card changed in the configuration after the journal holds it: the journal still
/// decides, and the start says so, naming the card (masked) and the field.
#[test]
fn a_card_file_that_disagrees_with_the_journal_is_named_at_start() {
    let dir = temp_dir("card-seed");
    let mut config = test_config(&dir);
    let path = dir.join("switch.toml");
    let mut first = crate::spawn_switch(&config, &path, "info");
    let _ = first.child.kill();
    let _ = first.child.wait();
    assert!(!first.logs.lock().unwrap().contains("disagrees"));

    config.cards[0].status = switch::model::CardStatus::Stolen;
    let mut second = crate::spawn_switch(&config, &path, "info");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = second.child.kill();
    let _ = second.child.wait();
    let logs = second.logs.lock().unwrap().clone();
    let line = logs
        .lines()
        .find(|l| l.contains("the card file disagrees with the journal"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains("field=\"status\"") || line.contains("field=status"),
        "{line}"
    );
    assert!(line.contains("622202*********0017"), "{line}");
    assert!(line.contains("stolen") && line.contains("active"), "{line}");
    assert!(
        !logs.contains(&config.cards[0].pan),
        "a whole PAN in the log"
    );
}

/// `[log] file`: the same lines as stderr, in a file (one file with `rotation = "never"`).
#[tokio::test]
async fn logs_go_to_a_file_too() {
    let dir = temp_dir("log-file");
    let mut config = test_config(&dir);
    config.log.file = Some(dir.join("switch.log"));
    config.log.rotation = switch::config::Rotation::Never;
    let path = dir.join("switch.toml");
    let mut sw = crate::spawn_switch(&config, &path, "info");
    let mut t = crate::client::Terminal::connect(sw.addr, "10000096").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(crate::client::DEBIT, "123456", 100).await.rc(), "00");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = sw.child.kill();
    let _ = sw.child.wait();
    let file = std::fs::read_to_string(dir.join("switch.log")).expect("the log file");
    assert!(file.contains("switch listening"), "{file}");
    let sale = file
        .lines()
        .find(|l| l.contains("transaction") && l.contains("kind=\"sale\""))
        .unwrap_or_else(|| panic!("{file}"));
    assert!(sale.contains("622202*********0017"), "{sale}");
    assert!(
        !file.contains(crate::client::DEBIT),
        "a whole PAN in the log file"
    );
    assert!(!file.contains('\u{1b}'), "no colour codes in a file");
    // A directory that does not exist is refused before anything starts.
    config.log.file = Some(dir.join("no/such/dir/switch.log"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, toml::to_string(&config).unwrap()).unwrap();
    let (ok, _, err) = crate::cli::switch(&["check-config", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("log.file"), "{err}");
}
