//! The `issuer-sim` command: it serves a switch's issuer line, and refuses a configuration
//! it cannot read with a clear error.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use terminal_fw::operators::{FACTORY_ADMIN, FACTORY_SUPERVISOR, Operators};
use terminal_fw::{Card, Store, Terminal};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("issuer-sim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn issuer_sim(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_issuer-sim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A terminal of the demo merchant, set up and logged in as cashier 01.
fn terminal(dir: &std::path::Path, addr: std::net::SocketAddr) -> Terminal {
    let mut s = Store::open(dir).unwrap();
    s.pbkdf2_iterations = 1_000;
    Terminal::init(
        &mut s,
        "10000501",
        "898310048990001",
        "0123456789ABCDEFFEDCBA9876543210",
    )
    .unwrap();
    {
        let mut ops = Operators::new(&mut s).unwrap();
        ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
        ops.change_password("00", FACTORY_SUPERVISOR, "246802")
            .unwrap();
        ops.add_cashier("135790", "01", "102938").unwrap();
        ops.login_to_transact("01", "102938").unwrap();
    }
    Terminal::open(s, addr).unwrap()
}

#[tokio::test]
async fn the_issuer_sim_command_serves_a_switch() {
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_issuer-sim"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = sim.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listen=") {
                let addr: String = line[at + 7..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("issuer-sim listening");

    // The demo switch, its demo issuer pointed at the simulator.
    let dir = temp_dir("serves");
    let mut c = switch::Config::demo().unwrap();
    c.listen.terminals = "127.0.0.1:0".parse().unwrap();
    c.listen.metrics = "127.0.0.1:0".parse().unwrap();
    c.journal.path = dir.join("journal.db");
    c.issuers[0].lines = vec![addr];
    c.issuers[0].reconnect_min_ms = 50;
    let sw = switch::start(c).await.unwrap();
    let issuer = sw.switch().issuers().get(0).unwrap().clone();
    let end = Instant::now() + Duration::from_secs(10);
    while !issuer.is_up() {
        assert!(Instant::now() < end, "the issuer line comes up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut t = terminal(&dir.join("terminal"), sw.terminal_addr);
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    let remote = Card {
        pan: "6217001000000000011".into(),
        expiry: None,
    };
    let approved = t.sale(&remote, "111111", 1_000, "01").await.unwrap();
    assert_eq!(approved.rc, "00");
    assert!(
        approved.auth_code.starts_with("10"),
        "the issuer's auth code: {}",
        approved.auth_code
    );
    assert_eq!(
        t.sale(&remote, "123456", 1_000, "01").await.unwrap().rc,
        "55"
    );
    sw.shutdown().await;
    let _ = sim.kill();
    let _ = sim.wait();

    // A configuration it cannot read is a clear error.
    let (ok, err) = issuer_sim(&["--config", "/no/such/file.toml"]);
    assert!(!ok);
    assert!(err.contains("/no/such/file.toml"), "{err}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = 5").unwrap();
    let (ok, err) = issuer_sim(&["--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("issuer simulator configuration"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
