//! Secrets: run the real binary, transact, stop it, and search its logs and its journal
//! files for card numbers, PIN blocks and keys.

use std::process::Command;
use std::time::Duration;

use crate::client::{CREDIT, DEBIT, DEMO_TMK, Terminal};
use crate::issuer::REMOTE;
use crate::{Spawned, spawn_switch, temp_dir};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn logs_and_journal_hold_no_pan_pin_block_or_key() {
    let dir = temp_dir("secrets");
    // A remote issuer too: forwarded cards' PANs and PIN blocks must not leak either.
    let sim = crate::issuer::sim(1).await;
    let config = crate::issuer::config(&dir, vec![sim.addrs[0].to_string()], |_| {});
    let Spawned {
        mut child,
        addr,
        logs,
        ..
    } = spawn_switch(&config, &dir.join("switch.toml"), "debug");

    let mut t = Terminal::connect(addr, "10000030").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let mut pin_blocks = Vec::new();
    let mut sent_blocks = Vec::new();
    for (pan, pin) in [
        (DEBIT, "123456"),
        (DEBIT, "000000"),
        (CREDIT, "654321"),
        (REMOTE, "111111"),
    ] {
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
    assert!(
        logs.contains("621700*********0011"),
        "masked remote PAN logged"
    );
    assert!(
        sim.balance(REMOTE) < Some(2_000_000),
        "the remote sale went through"
    );

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("PAN".into(), DEBIT.as_bytes().to_vec()),
        ("credit PAN".into(), CREDIT.as_bytes().to_vec()),
        ("remote PAN".into(), REMOTE.as_bytes().to_vec()),
        (
            "remote card number, packed".into(),
            hex::decode(&REMOTE[..16]).unwrap(),
        ),
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
