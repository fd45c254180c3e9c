//! Secrets: run the real binary, transact, stop it, and search its logs and its journal
//! files for card numbers, PIN blocks and keys.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{CREDIT, DEBIT, DEMO_TMK, Terminal};
use crate::{temp_dir, test_config};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn logs_and_journal_hold_no_pan_pin_block_or_key() {
    let dir = temp_dir("secrets");
    let config_path = dir.join("switch.toml");
    std::fs::write(&config_path, toml::to_string(&test_config(&dir)).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switch"))
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let logs = Arc::clone(&logs);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("terminals=") {
                    let addr: String = line[at + 10..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(addr);
                }
                logs.lock().unwrap().push_str(&line);
                logs.lock().unwrap().push('\n');
            }
        });
    }
    let addr: std::net::SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("switch listening")
        .parse()
        .unwrap();

    let mut t = Terminal::connect(addr, "10000030").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let mut pin_blocks = Vec::new();
    let mut sent_blocks = Vec::new();
    for (pan, pin) in [(DEBIT, "123456"), (DEBIT, "000000"), (CREDIT, "654321")] {
        let mut b = t.sale_builder(pan, Some(pin), 4_200);
        let frame = t.seal(&mut b);
        let m = codec::decode(codec::Dialect::cup_pos(), &frame).unwrap();
        sent_blocks.push(m.bytes(52).unwrap().to_vec());
        pin_blocks.push(t.last_pin_block.unwrap().to_vec());
        t.exchange(&frame).await;
    }
    assert_eq!(t.balance(DEBIT, "123456").await.rc(), "00");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");
    std::thread::sleep(Duration::from_millis(100));
    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.contains("transaction"),
        "one line per transaction: {logs}"
    );
    assert!(logs.contains("622202*********0017"), "masked PAN logged");

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("PAN".into(), DEBIT.as_bytes().to_vec()),
        ("credit PAN".into(), CREDIT.as_bytes().to_vec()),
        ("TMK hex".into(), DEMO_TMK.as_bytes().to_vec()),
        ("TMK".into(), hex::decode(DEMO_TMK).unwrap()),
    ];
    for (name, k) in [
        ("TPK", t.tpk.clone().unwrap()),
        ("TAK", t.tak.clone().unwrap()),
    ] {
        secrets.push((format!("{name} hex"), hex::encode_upper(&k).into_bytes()));
        secrets.push((format!("{name} hex lower"), hex::encode(&k).into_bytes()));
        secrets.push((name.into(), k));
    }
    for (i, b) in pin_blocks.iter().chain(&sent_blocks).enumerate() {
        secrets.push((
            format!("PIN block {i} hex"),
            hex::encode_upper(b).into_bytes(),
        ));
        secrets.push((
            format!("PIN block {i} hex lower"),
            hex::encode(b).into_bytes(),
        ));
        secrets.push((format!("PIN block {i}"), b.clone()));
    }
    for (name, s) in &secrets {
        if name.ends_with("hex") || name.ends_with("lower") || name.contains("PAN") {
            assert!(
                !logs.contains(std::str::from_utf8(s).unwrap()),
                "{name} in the logs"
            );
        }
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("journal.db")
        {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for (name, s) in &secrets {
            assert!(!contains(&bytes, s), "{name} in {}", path.display());
        }
    }
    assert!(files >= 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
