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
    // Parts: 60's subfields and 55's data elements by name; the NUL byte in 48 escaped.
    assert!(out.contains("60.2 batch number"), "{out}");
    assert!(out.contains("9F26 Application Cryptogram"), "{out}");
    assert!(out.contains("95BBE372271DDA7C"), "{out}");
    assert!(out.contains("\\x00"), "{out}");

    let (ok, out, _) = switch(&["describe", "--json", "--unmasked", &hex]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mti"], "0200");
    assert_eq!(v["header"], "6000060000603100311003");
    assert_eq!(v["bitmap"], "702406C020C19A31");
    let f = &v["fields"];
    assert_eq!(f["2"]["value"], "6224242900000113");
    assert_eq!(f["2"]["name"], "primary account number");
    assert_eq!(f["35"]["value"], "6224242900000113D28062013949031013");
    assert_eq!(f["52"]["value"], "D1EEF419D0AE2609");
    assert_eq!(f["60"]["value"], "22000024000600");
    assert_eq!(f["60"]["subfields"][0]["id"], "60.1");
    assert_eq!(f["60"]["subfields"][0]["value"], "22");
    let tags = f["55"]["tags"].as_array().unwrap();
    assert_eq!(tags[0]["id"], "9F26");
    assert_eq!(tags[0]["name"], "Application Cryptogram");
    let at = |k: &str| out.find(&format!("\"{k}\": {{")).unwrap();
    assert!(
        at("2") < at("3") && at("4") < at("11"),
        "fields in number order"
    );

    let (ok, _, err) = switch(&["describe", "0200FF"]);
    assert!(!ok && err.contains("cannot decode"), "{err}");
    let (ok, _, err) = switch(&["describe", "XYZ"]);
    assert!(!ok && err.contains("not hex"), "{err}");
    // Another dialect: the moov-io ASCII 0800 (network management).
    let ascii =
        hex::encode(b"0800823A0000000000000400000000000000042009061390000109061304200420001");
    let (ok, out, _) = switch(&["describe", "--dialect", "iso87-ascii", "--json", &ascii]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["fields"]["70"]["value"], "001");
}

/// `describe` reads a frame from stdin (`-`) or a file, as hex text or raw bytes, in a
/// dialect given as a TOML or JSON file.
#[test]
fn describe_reads_stdin_files_and_dialect_files() {
    use std::io::Write;
    let dir = temp_dir("describe");
    let hex = cup_sale_hex();
    let frame = hex::decode(&hex).unwrap();
    let run_stdin = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switch"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Hex text with line breaks, and the raw bytes.
    let spaced: String = hex
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    for input in [spaced.as_bytes(), frame.as_slice()] {
        let (ok, out) = run_stdin(&["describe", "-"], input);
        assert!(ok && out.contains("622424******0113"), "{out}");
        let path = dir.join("frame");
        std::fs::write(&path, input).unwrap();
        let (ok, out, err) = switch(&["describe", "--file", path.to_str().unwrap()]);
        assert!(ok && out.contains("622424******0113"), "{out}{err}");
    }
    // An ASCII frame is all hex digits as raw bytes: read as the frame when hex does not
    // decode.
    let ascii = b"0800823A0000000000000400000000000000042009061390000109061304200420001";
    let (ok, out) = run_stdin(&["describe", "--dialect", "iso87-ascii", "-"], ascii);
    assert!(ok && out.contains("MTI    0800"), "{out}");
    // The built-in CUP dialect as a TOML file and as JSON.
    let toml_path = dir.join("cup.toml");
    std::fs::write(
        &toml_path,
        codec::Dialect::builtin_source("cup-pos").unwrap(),
    )
    .unwrap();
    let def: toml::Value =
        toml::from_str(codec::Dialect::builtin_source("cup-pos").unwrap()).unwrap();
    let json_path = dir.join("cup.json");
    std::fs::write(&json_path, serde_json::to_string(&def).unwrap()).unwrap();
    for d in [&toml_path, &json_path] {
        let (ok, out, err) = switch(&["describe", "--dialect", d.to_str().unwrap(), &hex]);
        assert!(ok, "{}: {err}", d.display());
        assert!(out.contains("9F26 Application Cryptogram"), "{out}");
    }
}

/// A sign-on reply's 62: each working key and its check value, the cryptograms by length
/// unless asked.
#[tokio::test]
async fn describe_shows_a_sign_on_replys_working_keys() {
    let dir = temp_dir("describe-62");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    let reply = t.sign_on().await;
    let f62 = reply.msg().field(62).unwrap().wire().to_vec();
    let hex = hex::encode(&reply.bytes);
    let (ok, out, err) = switch(&["describe", &hex]);
    assert!(ok, "{err}");
    assert!(out.contains("pin_key PIN key (under the TMK)"), "{out}");
    assert!(out.contains("[16 bytes]"), "{out}");
    assert!(
        out.contains(&hex::encode_upper(&f62[16..20])),
        "the PIN key's check value"
    );
    assert!(
        !out.contains(&hex::encode_upper(&f62[..16])),
        "the cryptogram by length"
    );
    let (ok, out, _) = switch(&["describe", "--json", "--unmasked", &hex]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys = v["fields"]["62"]["keys"].as_array().unwrap();
    assert_eq!(keys[0]["id"], "pin_key");
    assert_eq!(keys[0]["value"], hex::encode_upper(&f62[..16]));
    assert_eq!(keys[3]["id"], "mac_key_check");
    sw.shutdown().await;
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
            "ok (4 terminal ranges, 3 routes, 9 fee rules, 4 cards, 1 issuers; TEST KEYS)"
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

/// A reader that goes away (`| head`) ends the output quietly: no panic, exit 0.
#[test]
fn a_closed_pipe_is_not_a_crash() {
    let hex = cup_sale_hex();
    for args in [vec!["describe", "--json", hex.as_str()], vec!["--help"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switch"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {err}");
    }
}
