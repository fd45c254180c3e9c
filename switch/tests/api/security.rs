//! Security: every PIN digit counts, forged frames claim nothing, unauthenticated traffic
//! costs bounded disk and log, connection floods do not lock terminals out, published keys
//! never reach production.

use crate::client::{CREDIT, DEBIT, LOW, Terminal};
use crate::issuer::REMOTE;
use crate::{start, temp_dir, test_config};

/// The demo QR payment code and its wallet's payment password (test data).
const QR_CODE: &str = "280000000000000001";

/// `pin` with digit `i` changed (to the next digit, mod 10).
fn one_digit_off(pin: &str, i: usize) -> String {
    let mut b = pin.as_bytes().to_vec();
    b[i] = b'0' + (b[i] - b'0' + 1) % 10;
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn a_pin_wrong_in_any_single_digit_is_refused_for_every_demo_card_and_the_wallet() {
    let dir = temp_dir("pin-digits");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000071").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // The lost card answers 41 before its PIN is looked at; every other demo card:
    for (pan, pin) in [(DEBIT, "123456"), (LOW, "123456"), (CREDIT, "654321")] {
        for i in 0..pin.len() {
            let wrong = one_digit_off(pin, i);
            assert_eq!(
                t.balance(pan, &wrong).await.rc(),
                "55",
                "{pan} with {wrong}"
            );
            // The right PIN resets the count of wrong ones, so the next try is a 55 too.
            assert_eq!(t.balance(pan, pin).await.rc(), "00", "{pan} with {pin}");
        }
        // Also every other digit in the last position (PVV never looked there).
        for d in 0..10u8 {
            let mut wrong = pin.as_bytes().to_vec();
            if wrong[5] == b'0' + d {
                continue;
            }
            wrong[5] = b'0' + d;
            let wrong = String::from_utf8(wrong).unwrap();
            assert_eq!(
                t.sale(pan, &wrong, 100).await.rc(),
                "55",
                "{pan} sale with {wrong}"
            );
            assert_eq!(t.balance(pan, pin).await.rc(), "00");
        }
        // A digit more or less is wrong too.
        assert_eq!(t.balance(pan, &format!("{pin}0")).await.rc(), "55");
        assert_eq!(t.balance(pan, &pin[..5]).await.rc(), "55");
        assert_eq!(t.balance(pan, pin).await.rc(), "00");
    }
    // The QR wallet's payment password (above the password-free limit).
    for i in 0..6 {
        let wrong = one_digit_off("888888", i);
        assert_eq!(
            t.qr(QR_CODE, 100_001, Some(&wrong)).await.rc(),
            "55",
            "{wrong}"
        );
        if i % 2 == 1 {
            assert_eq!(t.qr(QR_CODE, 100_001, Some("888888")).await.rc(), "00");
        }
    }
    // Nothing moved on the wrong PINs: only the three approved QR sales.
    let conn = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    let approved: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM transactions WHERE response_code = '00' AND kind NOT IN ('balance', 'sign-on')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(approved, 3);
    let methods: Vec<String> = conn
        .prepare("SELECT DISTINCT pin_method FROM accounts")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(methods, ["ibm3624"], "demo cards carry full-length offsets");
    sw.shutdown().await;
}

#[tokio::test]
async fn a_legacy_visa_pvv_range_checks_four_digits_and_a_journal_of_pvvs_moves_to_offsets() {
    let dir = temp_dir("pin-legacy");
    // A legacy range: the debit cards' PINs are PVVs, and the config says what that means.
    let mut config = test_config(&dir);
    for r in &mut config.routes {
        if r.prefix == "622202" {
            r.pin_method = switch::config::PinMethod::VisaPvv;
        }
    }
    let sw = start(config).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000072").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.balance(DEBIT, "123499").await.rc(), "00", "PVV: 4 digits");
    assert_eq!(t.balance(DEBIT, "124456").await.rc(), "55");
    assert_eq!(
        t.balance(CREDIT, "654300").await.rc(),
        "55",
        "IBM 3624 range"
    );
    sw.shutdown().await;
    // The same journal under the default configuration: the card file's PIN data replaces
    // the PVVs, and every digit counts again.
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000072").await;
    t.stan = 100;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.balance(DEBIT, "123499").await.rc(), "55");
    assert_eq!(t.balance(DEBIT, "123456").await.rc(), "00");
    sw.shutdown().await;
}

#[tokio::test]
async fn the_issuer_simulator_checks_every_digit_too() {
    let dir = temp_dir("pin-remote");
    let sim = crate::issuer::sim(1).await;
    let config = crate::issuer::config(&dir, vec![sim.addrs[0].to_string()], |_| {});
    let sw = start(config).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000073").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    crate::issuer::lines_up(&sw, 1).await;
    for i in 0..6 {
        let wrong = one_digit_off("111111", i);
        assert_eq!(t.sale(REMOTE, &wrong, 100).await.rc(), "55", "{wrong}");
    }
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    sw.shutdown().await;
}

/// The `hsm-sim` ceremony binary beside the switch's (built if this test runs alone).
fn hsm_sim_bin() -> std::path::PathBuf {
    let switch = std::path::PathBuf::from(env!("CARGO_BIN_EXE_switch"));
    let bin = switch.with_file_name("hsm-sim");
    if !bin.exists() {
        // Into the directory looked in: the profile this test was built with.
        let release = switch.parent().is_some_and(|d| d.ends_with("release"));
        let ok = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "hsm-sim", "--bin", "hsm-sim"])
            .args(release.then_some("--release"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "building hsm-sim");
    }
    bin
}

/// Runs `hsm-sim` with `input` on standard input; its standard output.
fn hsm_sim(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(hsm_sim_bin())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hsm-sim {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn sealed_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("sealed: "))
        .unwrap()
        .to_owned()
}

#[test]
fn production_refuses_published_keys_however_sealed() {
    let dir = temp_dir("published");
    let lmk = dir.join("lmk.hex");
    let lmk_s = lmk.to_str().unwrap();
    hsm_sim(&["lmk", "new", "--out", lmk_s], "");
    let import = |usage: &str, clear: &str| {
        sealed_of(&hsm_sim(
            &[
                "key", "import", "--lmk", lmk_s, "--usage", usage, "--clear", "-",
            ],
            &format!("{clear}\n"),
        ))
    };
    let fresh = |usage: &str| {
        sealed_of(&hsm_sim(
            &["key", "generate", "--lmk", lmk_s, "--usage", usage],
            "",
        ))
    };
    // A production configuration: every key sealed under a fresh LMK, card PIN data given
    // as offsets. Only the keys vary below.
    let mut config = crate::issuer::config(&dir, vec!["127.0.0.1:9".into()], |_| {});
    config.production = true;
    config.hsm.lmk_file = Some(lmk.clone());
    for c in &mut config.cards {
        c.pin = None;
        c.offset = Some("123456".into());
    }
    for w in &mut config.wallets {
        w.pin = None;
        w.offset = Some("123456".into());
    }
    let issuer = config.issuer.as_mut().unwrap();
    issuer.pvk_clear = None;
    let iss = &mut config.issuers[0];
    (iss.zpk_clear, iss.zak_clear) = (None, None);
    // TDES keys throughout (the SM4 range takes an SM4 TMK: tested with SM4).
    config
        .terminals
        .retain(|t| t.algorithm == switch::config::TerminalAlgorithm::Tdes);
    for t in &mut config.terminals {
        t.tmk_clear = None;
    }

    let n = std::cell::Cell::new(0);
    let set = |tmk: &str, pvk: &str, zpk: &str, zak: &str| {
        let mut c = config.clone();
        for t in &mut c.terminals {
            t.tmk_sealed = Some(tmk.to_owned());
        }
        c.issuer.as_mut().unwrap().pvk_sealed = Some(pvk.to_owned());
        c.issuers[0].zpk_sealed = Some(zpk.to_owned());
        c.issuers[0].zak_sealed = Some(zak.to_owned());
        n.set(n.get() + 1);
        let path = dir.join(format!("switch-{}.toml", n.get()));
        std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
        path
    };
    let (tmk, pvk, zpk, zak) = (fresh("tmk"), fresh("pvk"), fresh("zpk"), fresh("zak"));
    let demo_tmk = import("tmk", "0123456789ABCDEFFEDCBA9876543210");
    let demo_pvk = import("pvk", "13345779133457791334577913345779");
    let demo_zpk = import("zpk", "A1B2C3D4E5F60718293A4B5C6D7E8F91");
    let sim_pvk = import("pvk", "0123456789ABCDEF1032547698BADCFE");
    // A well-known vector key from outside this project (the Thales simulator's PVV PVK).
    let vector_zak = import("zak", "C8199237EA5857BC40EF9DA2B5E96BBF");
    for (path, key, cv) in [
        (
            set(&demo_tmk, &pvk, &zpk, &zak),
            "terminals[0].tmk",
            "08D7B4",
        ),
        (set(&tmk, &demo_pvk, &zpk, &zak), "issuer.pvk", ""),
        (set(&tmk, &sim_pvk, &zpk, &zak), "issuer.pvk", ""),
        (set(&tmk, &pvk, &demo_zpk, &zak), "issuers[0].zpk", ""),
        (set(&tmk, &pvk, &zpk, &vector_zak), "issuers[0].zak", ""),
    ] {
        let path_s = path.to_str().unwrap();
        let (ok, _, err) = crate::cli::switch(&["check-config", path_s]);
        assert!(!ok, "check-config passed a published {key}");
        assert!(err.contains(key) && err.contains("published"), "{err}");
        assert!(err.contains(cv), "check value shown: {err}");
        // `switch run` refuses to start the same way.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
            .args(["run", "--config", path_s])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "switch run started with a published {key}"
        );
        assert!(err.contains(key) && err.contains("published"), "{err}");
    }
    // A configuration with another problem too (a card file of PVVs on an IBM 3624 range):
    // both are reported, the published key named.
    let mut c: switch::Config =
        toml::from_str(&std::fs::read_to_string(set(&demo_tmk, &pvk, &zpk, &zak)).unwrap())
            .unwrap();
    c.cards[0].offset = None;
    c.cards[0].pvv = Some("1234".into());
    let path = dir.join("two-problems.toml");
    std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
    let (ok, _, err) = crate::cli::switch(&["check-config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("cards[0].pvv"), "{err}");
    assert!(
        err.contains("terminals[0].tmk") && err.contains("08D7B4"),
        "{err}"
    );
    // Several published keys: every one named in the one refusal.
    let path = set(&demo_tmk, &demo_pvk, &demo_zpk, &vector_zak);
    let (ok, _, err) = crate::cli::switch(&["check-config", path.to_str().unwrap()]);
    assert!(!ok);
    for key in [
        "terminals[0].tmk",
        "terminals[1].tmk",
        "issuer.pvk",
        "issuers[0].zpk",
        "issuers[0].zak",
    ] {
        assert!(err.contains(key), "{key} in: {err}");
    }
    // Every key fresh: accepted.
    let path = set(&tmk, &pvk, &zpk, &zak);
    let (ok, out, err) = crate::cli::switch(&["check-config", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("ok") && !out.contains("TEST KEYS"), "{out}");
}

#[test]
fn every_clear_key_of_the_demo_configurations_is_on_the_published_list() {
    // Adding a demo key without listing it would let it through production.
    for text in [
        include_str!("../../demo.toml"),
        issuer_sim::DEMO_ISSUER_TOML,
    ] {
        for line in text.lines() {
            let line = line.trim();
            let Some((name, rest)) = line.split_once('=') else {
                continue;
            };
            if !name.trim().ends_with("_clear") {
                continue;
            }
            let hex_key = rest.split('"').nth(1).unwrap();
            let bytes = hex::decode(hex_key).unwrap();
            let alg = hsm_sim::KeyAlgorithm::des_for_len(bytes.len()).unwrap();
            assert!(
                hsm_sim::published::lookup_clear(alg, &bytes).is_some(),
                "{line}: not on the published list"
            );
        }
    }
}

/// A forged copy of `t`'s request: its TID, MID, batch and STAN `stan`, a garbage MAC.
fn forged_sale(t: &mut Terminal, stan: u32) -> Vec<u8> {
    forged(&t.tid, &t.mid, t.batch, stan)
}

/// A sale with a garbage MAC from `tid` of `mid`.
fn forged(tid: &str, mid: &str, batch: u32, stan: u32) -> Vec<u8> {
    let mut b = codec::MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.header(crate::client::HEADER.to_vec());
    b.set(2, DEBIT)
        .set(3, "000000")
        .set(4, "000000000100")
        .set(11, format!("{stan:06}"))
        .set(22, "022")
        .set(25, "00")
        .set(41, tid.to_owned())
        .set(42, mid.to_owned())
        .set(49, "156")
        .set(60, format!("22{batch:06}000"))
        .set(63, "001")
        .set(64, vec![0x41u8; 8]);
    b.encode_to_vec(codec::Dialect::cup_pos()).unwrap()
}

fn journal_rows(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    [
        "transactions",
        "batches",
        "batch_uploads",
        "accounts",
        "terminal_sessions",
        "saf_queue",
    ]
    .iter()
    .map(|t| {
        conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    })
    .sum()
}

#[tokio::test]
async fn forged_frames_claim_nothing_and_the_genuine_request_goes_through() {
    let dir = temp_dir("forged");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000074").await;
    let mut attacker = Terminal::connect(sw.terminal_addr, "10000074").await;
    // Before the terminal ever signed on: A0, nothing kept.
    let forged = forged_sale(&mut t, 1);
    assert_eq!(attacker.exchange(&forged).await.rc(), "A0");
    assert_eq!(t.sign_on().await.rc(), "00");
    let rows = journal_rows(&dir);
    // Twenty forged frames squatting the terminal's next twenty STANs.
    let next = t.stan + 1;
    for stan in next..next + 20 {
        let forged = forged_sale(&mut t, stan);
        let r = attacker.exchange(&forged).await;
        assert_eq!(r.rc(), "A0", "forged STAN {stan}");
        assert_eq!(r.bytes[7] & 0x0F, 3, "sign on again");
    }
    assert_eq!(journal_rows(&dir), rows, "forged frames wrote nothing");
    // The genuine requests with those STANs are processed normally.
    for _ in 0..20 {
        assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    }
    // An identical retransmission of a genuine request still gets the first answer.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 2_00);
    let frame = t.seal(&mut b);
    let first = t.exchange(&frame).await;
    let again = t.exchange(&frame).await;
    assert_eq!((first.rc(), again.rc()), ("00".into(), "00".into()));
    assert_eq!(first.text(37), again.text(37), "same RRN");
    // Forged copies of the STANs to come, then a restart: still nothing claimed.
    let next = t.stan + 1;
    for stan in next..next + 20 {
        let forged = forged_sale(&mut t, stan);
        assert_eq!(attacker.exchange(&forged).await.rc(), "A0");
    }
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_auth_failures_total{reason=\"bad_mac\"} 40"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switch_auth_failures_total{reason=\"not_signed_on\"} 1"),
        "{metrics}"
    );
    sw.shutdown().await;
    let sw = start(test_config(&dir)).await;
    let mut t2 = Terminal::connect(sw.terminal_addr, "10000074").await;
    (t2.tpk, t2.tak, t2.stan) = (t.tpk.clone(), t.tak.clone(), t.stan);
    for _ in 0..20 {
        assert_eq!(t2.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    }
    // And across a new sign-on.
    assert_eq!(t2.sign_on().await.rc(), "00");
    assert_eq!(t2.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    let conn = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    let (n, codes): (i64, String) = conn
        .query_row(
            "SELECT COUNT(*), GROUP_CONCAT(DISTINCT response_code) FROM transactions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, codes.as_str()), (42, "00"), "only the genuine sales");
    sw.shutdown().await;
}

#[tokio::test]
async fn fifty_thousand_junk_frames_cost_bounded_journal_rows_and_log_lines() {
    use futures_util::SinkExt;
    let dir = temp_dir("junk");
    let crate::Spawned {
        mut child,
        addr,
        logs,
        ..
    } = crate::spawn_switch(&test_config(&dir), &dir.join("switch.toml"), "info");
    let mut t = Terminal::connect(addr, "10000075").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    let rows = journal_rows(&dir);
    let lines_before = logs.lock().unwrap().lines().count();
    let started = std::time::Instant::now();

    // Four kinds of junk: unknown TIDs (some not even 8 digits), bad MACs on a real TID,
    // undecodable bodies behind a readable header, and sign-ons (no MAC by the protocol).
    let mut junk = Vec::with_capacity(50_000);
    for i in 0..50_000u32 {
        let frame = match i % 4 {
            0 => {
                let tid = if i % 8 == 0 {
                    format!("X{:07}", i % 10_000_000)
                } else {
                    format!("{:08}", 20_000_000 + i)
                };
                forged(&tid, &t.mid, 1, i % 999_999 + 1)
            }
            1 => forged_sale(&mut t, i % 999_999 + 1),
            2 => {
                let mut f = crate::client::HEADER.to_vec();
                f.extend_from_slice(&[0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
                f.extend_from_slice(&i.to_be_bytes());
                f
            }
            _ => {
                let mut b = t.builder("0800");
                b.set(11, format!("{:06}", i % 999_999 + 1))
                    .set(41, "10000076")
                    .set(42, t.mid.clone())
                    .set(60, "00000001003")
                    .set(63, "001");
                b.encode_to_vec(codec::Dialect::cup_pos()).unwrap()
            }
        };
        junk.push(frame);
    }
    // Sent over 4 connections, in windows the switch's per-connection limit allows.
    let mut tasks = Vec::new();
    for chunk in junk.chunks(12_500) {
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut s = crate::client::framed(tokio::net::TcpStream::connect(addr).await.unwrap());
            let mut answered = 0;
            for window in chunk.chunks(32) {
                for f in window {
                    s.feed(f.as_slice()).await.unwrap();
                }
                futures_util::SinkExt::<&[u8]>::flush(&mut s).await.unwrap();
                for _ in window {
                    crate::client::read_frame(&mut s).await.unwrap();
                    answered += 1;
                }
            }
            answered
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap();
    }
    assert_eq!(
        answered, 50_000,
        "every junk frame answered, no connection dropped"
    );
    let elapsed = started.elapsed().as_secs();

    // The genuine terminal still works.
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    // Journal: the one sale, and at most the session of the TID that junk signed on.
    let grown = journal_rows(&dir) - rows;
    assert!((1..=2).contains(&grown), "journal grew by {grown} rows");
    // Log: at most 5 lines a second per event kind and peer (4 kinds), plus the sale's.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let text = logs.lock().unwrap().clone();
    let grown = text.lines().count() - lines_before;
    let bound = 20 * (elapsed as usize + 2) + 5;
    assert!(
        grown <= bound.min(1_000),
        "{grown} log lines for 50,000 junk frames in {elapsed} s"
    );
    assert!(text.contains("suppressed="), "the summary of dropped lines");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Whether the switch closed `s` (EOF or reset) within `secs`.
async fn closed_within(s: &mut tokio::net::TcpStream, secs: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(secs), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn one_address_at_its_connection_limit_does_not_lock_out_a_terminal() {
    let dir = temp_dir("per-peer");
    let mut config = test_config(&dir);
    config.limits.max_connections_per_peer = 20;
    let sw = start(config).await;
    let flooder: std::net::IpAddr = [127, 0, 0, 1].into();
    let honest: std::net::IpAddr = [127, 0, 0, 2].into();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(crate::client::connect_from(sw.terminal_addr, flooder).await);
    }
    // Another address signs on and pays while the first holds its maximum.
    let mut t = Terminal::connect_from(sw.terminal_addr, "10000077", honest).await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    // A terminal behind the flooding address itself gets in too: the address's oldest idle
    // connection is closed for it.
    let mut same = Terminal::connect_from(sw.terminal_addr, "10000082", flooder).await;
    assert_eq!(same.sign_on().await.rc(), "00");
    assert_eq!(same.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    assert!(
        closed_within(&mut held[0], 2).await,
        "the oldest idle one made room"
    );
    // When every connection of the address has authenticated, a new one is refused.
    let mut trusted = Vec::new();
    for i in 0..19 {
        let mut t =
            Terminal::connect_from(sw.terminal_addr, &format!("{}", 10000100 + i), flooder).await;
        assert_eq!(t.sign_on().await.rc(), "00");
        trusted.push(t);
    }
    let mut over = crate::client::connect_from(sw.terminal_addr, flooder).await;
    assert!(closed_within(&mut over, 2).await, "over the per-peer limit");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_connections_refused_total{reason=\"peer_limit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switch_frames_rejected_total{reason=\"evicted\"}"),
        "{metrics}"
    );
    drop(held);
    sw.shutdown().await;
}

#[tokio::test]
async fn at_the_global_limit_the_oldest_unauthenticated_connection_makes_room() {
    let dir = temp_dir("evict");
    let mut config = test_config(&dir);
    config.limits.max_connections = 10;
    config.limits.max_connections_per_peer = 10;
    let sw = start(config).await;
    let flooder: std::net::IpAddr = [127, 0, 0, 1].into();
    // One trusted terminal, then nine idle connections fill the table.
    let mut trusted = Terminal::connect_from(sw.terminal_addr, "10000078", flooder).await;
    assert_eq!(trusted.sign_on().await.rc(), "00");
    let mut idle = Vec::new();
    for _ in 0..9 {
        idle.push(crate::client::connect_from(sw.terminal_addr, flooder).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // A terminal from elsewhere gets in: the oldest idle connection is closed for it.
    let mut t = Terminal::connect_from(sw.terminal_addr, "10000079", [127, 0, 0, 2].into()).await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    assert!(
        closed_within(&mut idle[0], 2).await,
        "the oldest idle one was evicted"
    );
    // The trusted terminal was never the one evicted.
    assert_eq!(trusted.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    sw.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_after_the_auth_timeout() {
    let dir = temp_dir("auth-timeout");
    let mut config = test_config(&dir);
    config.limits.auth_timeout_secs = 1;
    let sw = start(config).await;
    // Silent: closed after a second, long before the 300 s idle timeout.
    let mut silent = tokio::net::TcpStream::connect(sw.terminal_addr)
        .await
        .unwrap();
    // Busy with forged frames: closed all the same.
    let mut busy = Terminal::connect(sw.terminal_addr, "10000080").await;
    let forged = forged("10000080", "898310048990001", 1, 1);
    let started = std::time::Instant::now();
    let mut answered = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        busy.send_raw(&forged).await;
        match busy.read_reply().await {
            Some(_) => answered += 1,
            None => break,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(answered > 0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "busy but untrusted: closed"
    );
    assert!(closed_within(&mut silent, 3).await, "silent: closed");
    // A terminal that signs on stays past the deadline.
    let mut t = Terminal::connect(sw.terminal_addr, "10000081").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(t.sale(DEBIT, "123456", 1_00).await.rc(), "00");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_frames_rejected_total{reason=\"auth_timeout\"} 2"),
        "{metrics}"
    );
    sw.shutdown().await;
}
