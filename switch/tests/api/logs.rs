//! The log an on-call engineer reads: with `--log-format json`, one flat JSON object per
//! line, and one line per transaction with everything needed to find it and say why.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};

use crate::client::{DEBIT, Terminal};
use crate::{temp_dir, test_config};

/// The switch binary with JSON logs; the lines it writes, and where it listens.
fn spawn_json(
    dir: &std::path::Path,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    Arc<Mutex<Vec<String>>>,
) {
    let path = dir.join("switch.toml");
    std::fs::write(&path, toml::to_string(&test_config(dir)).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let kept = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["terminals"].as_str()
            {
                let _ = tx.send(addr.to_owned());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("switch listening");
    (child, addr.parse().unwrap(), lines)
}

#[tokio::test]
async fn a_day_s_json_log_has_one_flat_line_per_transaction_with_its_facts() {
    let dir = temp_dir("json-day");
    let (mut child, addr, lines) = spawn_json(&dir);
    let mut t = Terminal::connect(addr, "10000080").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let sale = t.sale(DEBIT, "123456", 10_000).await;
    assert_eq!(sale.rc(), "00");
    let sale_stan = t.stan;
    assert_eq!(t.sale(DEBIT, "111111", 500).await.rc(), "55");
    assert_eq!(t.balance(DEBIT, "123456").await.rc(), "00");
    assert_eq!(t.void(DEBIT, 10_000, sale_stan).await.rc(), "00");
    // Let the log thread write, then stop the switch.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();

    let lines = lines.lock().unwrap().clone();
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Flat: the event's fields beside the level and time, no `fields` object.
    assert!(
        objects.iter().all(|o| o.get("fields").is_none()),
        "{lines:#?}"
    );
    let txns: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["message"] == "transaction" && o["tid"] == "10000080")
        .collect();
    let kinds: Vec<&str> = txns.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["sign-on", "sale", "sale", "balance", "void"],
        "{lines:#?}"
    );
    for o in &txns {
        for field in [
            "kind",
            "mti",
            "tid",
            "mid",
            "batch",
            "stan",
            "operator",
            "pan",
            "amount_fen",
            "fee_fen",
            "rc",
            "reason",
            "rrn",
            "auth_code",
            "issuer",
            "upstream",
            "latency_us",
        ] {
            assert!(o.get(field).is_some(), "{field} missing: {o}");
        }
        assert_eq!(o["mid"], "898310048990001");
        // Never a whole PAN.
        assert!(!o.to_string().contains(DEBIT), "{o}");
    }
    let approved = txns[1];
    assert_eq!(
        (approved["rc"].as_str(), approved["reason"].as_str()),
        (Some("00"), Some("approved"))
    );
    assert_eq!(approved["mti"], "0200");
    assert_eq!(approved["fee_fen"], 50, "0.50 % of 100.00");
    assert_eq!(approved["amount_fen"], 10_000);
    assert_eq!(approved["stan"], format!("{sale_stan:06}").as_str());
    assert_eq!(
        approved["auth_code"].as_str().map(str::len),
        Some(6),
        "{approved}"
    );
    assert_eq!(approved["rrn"], sale.text(37).unwrap());
    assert!(
        approved["pan"].as_str().unwrap().contains('*'),
        "{approved}"
    );
    let declined = txns[2];
    assert_eq!(
        (declined["rc"].as_str(), declined["reason"].as_str()),
        (Some("55"), Some("pin_wrong"))
    );
    assert_eq!(declined["auth_code"], "-");
    let _ = std::fs::remove_dir_all(&dir);
}
