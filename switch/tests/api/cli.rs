//! The `switch` binary's tools: describe, check-config, JSON logs; health endpoints; X9.9.

use std::process::Command;

use crate::client::{CREDIT, DEBIT, Terminal};
use crate::{start, temp_dir, test_config};

pub fn switch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CUP sale capture (vector A1, codetd.com/article/5053461), from the codec's fixtures.
fn cup_sale_hex() -> String {
    let text = include_str!("../../../codec/tests/fixtures/messages.toml");
    let start = text.find("name = \"cup_sale_codetd\"").unwrap();
    let hex_start = start + text[start..].find("hex = \"\"\"").unwrap() + 9;
    let hex_end = hex_start + text[hex_start..].find("\"\"\"").unwrap();
    text[hex_start..hex_end].split_whitespace().collect()
}

#[test]
fn describe_masks_unless_asked() {
    let hex = cup_sale_hex();
    let (ok, out, err) = switch(&["describe", &hex]);
    assert!(ok, "{err}");
    assert!(out.contains("MTI    0200"), "{out}");
    assert!(out.contains("622424******0113"), "{out}");
    assert!(!out.contains("6224242900000113"), "PAN shown masked");
    assert!(!out.contains("D1EEF419D0AE2609"), "PIN block hidden");

    let (ok, out, _) = switch(&["describe", "--json", "--unmasked", &hex]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["t"], "0200");
    assert_eq!(v["2"], "6224242900000113");
    assert_eq!(v["35"], "6224242900000113D28062013949031013");
    assert_eq!(v["52"], "D1EEF419D0AE2609");
    assert_eq!(v["60"], "22000024000600");
    assert_eq!(v["h"], "6000060000603100311003");

    let (ok, _, err) = switch(&["describe", "0200FF"]);
    assert!(!ok && err.contains("cannot decode"), "{err}");
    let (ok, _, err) = switch(&["describe", "XYZ"]);
    assert!(!ok && err.contains("not hex"), "{err}");
    // Another dialect: the moov-io ASCII 0800 (network management).
    let ascii =
        hex::encode(b"0800823A0000000000000400000000000000042009061390000109061304200420001");
    let (ok, out, _) = switch(&["describe", "--dialect", "iso87-ascii", "--json", &ascii]);
    assert!(ok);
    assert!(out.contains("\"70\": \"001\""), "{out}");
}

#[test]
fn check_config_reports_and_refuses() {
    let dir = temp_dir("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, switch::config::DEMO_TOML).unwrap();
    let (ok, out, _) = switch(&["check-config", good.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains(
            "ok (3 terminal ranges, 3 routes, 9 fee rules, 4 cards, 1 issuers; TEST KEYS)"
        ),
        "{out}"
    );
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        switch::config::DEMO_TOML.replace("mcc = \"5411\"", "mcc = 5411"),
    )
    .unwrap();
    let (ok, _, err) = switch(&["check-config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("bad.toml") && err.contains("line"), "{err}");
    let (ok, _, err) = switch(&["check-config", "/nonexistent/switch.toml"]);
    assert!(!ok && err.contains("/nonexistent/switch.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn health_endpoints_and_x99_terminals() {
    let dir = temp_dir("x99");
    let mut cfg = test_config(&dir);
    let mut range = cfg.terminals[0].clone();
    cfg.terminals[0].tid_to = "10000899".into();
    range.tid_from = "10000900".into();
    range.mac = switch::config::TerminalMac::X99;
    cfg.terminals.push(range);
    let sw = start(cfg).await;
    assert!(
        http_get(sw.metrics_addr, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(http_get(sw.metrics_addr, "/readyz").await.contains("ready"));

    // A terminal of the X9.9 range: its UnionPay-MACed sale fails, an X9.9 one passes.
    let mut t = Terminal::connect(sw.terminal_addr, "10000900").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(CREDIT, "654321", 100).await.rc(), "A0");
    let mut b = t.sale_builder(DEBIT, Some("123456"), 100);
    let tak = hsm_sim::primitives::cipher::DesKey::new(t.tak.as_ref().unwrap()).unwrap();
    let mut frame = Vec::new();
    b.encode_with_mac(codec::Dialect::cup_pos(), &mut frame, |d| {
        Some(hsm_sim::primitives::mac::cbc_mac(
            &tak,
            d,
            hsm_sim::primitives::mac::Padding::Zeros,
        ))
    })
    .unwrap();
    let r = t.exchange(&frame).await;
    assert_eq!(r.rc(), "00");
    let m = r.msg();
    let want = hsm_sim::primitives::mac::cbc_mac(
        &tak,
        m.mac_data(),
        hsm_sim::primitives::mac::Padding::Zeros,
    );
    assert_eq!(m.bytes(64), Some(&want[..]), "reply MAC is X9.9 too");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_logs() {
    let dir = temp_dir("json");
    let mut cfg = test_config(&dir);
    // A port already taken: the switch logs its start-up warnings, then fails to bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.listen.terminals = taken.local_addr().unwrap();
    let path = dir.join("switch.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let (ok, _, err) = switch(&[
        "run",
        "--config",
        path.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    assert!(!ok);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with('{') && first.contains("\"level\":\"WARN\""),
        "{err}"
    );
    assert!(
        err.contains("listen.terminals"),
        "the failure names the setting: {err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
