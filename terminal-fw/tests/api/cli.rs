//! The `terminal-fw` binary against an in-process switch: set-up, operators, transactions,
//! records, receipts, clear errors; and the load generator.

use std::process::Command;

use crate::{switch, temp_dir};

/// The binary's exit code, stdout and stderr.
fn tfw_exit(state: &std::path::Path, addr: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_terminal-fw"))
        .arg("--state")
        .arg(state)
        .args(["--switch", addr])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tfw(state: &std::path::Path, addr: &str, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = tfw_exit(state, addr, args);
    (code == Some(0), out, err)
}

// Multi-threaded: the binary runs blocking while the in-process switch answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_terminal() {
    let sw_dir = temp_dir("cli-switch");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let state = temp_dir("cli-state");
    let run = |args: &[&str]| tfw(&state, &addr, args);

    assert!(
        run(&[
            "init",
            "--tid",
            "10000501",
            "--tmk",
            "0123456789ABCDEFFEDCBA9876543210"
        ])
        .0
    );
    let (ok, _, err) = run(&["signon", "--operator", "00", "--password", "123456"]);
    assert!(!ok && err.contains("factory password"), "{err}");
    assert!(
        err.contains("operator passwd --operator 00`"),
        "the real operator: {err}"
    );
    assert!(
        run(&[
            "operator",
            "passwd",
            "--operator",
            "99",
            "--old",
            "000000",
            "--new",
            "135790"
        ])
        .0
    );
    assert!(
        run(&[
            "operator",
            "passwd",
            "--operator",
            "00",
            "--old",
            "123456",
            "--new",
            "246802"
        ])
        .0
    );
    let (ok, _, err) = run(&[
        "operator",
        "add",
        "--operator",
        "01",
        "--password",
        "111111",
        "--admin-password",
        "135790",
    ]);
    assert!(!ok && err.contains("all one digit"), "{err}");
    assert!(
        run(&[
            "operator",
            "add",
            "--operator",
            "01",
            "--password",
            "102938",
            "--admin-password",
            "135790"
        ])
        .0
    );
    let (ok, _, err) = run(&["signon", "--operator", "99", "--password", "135790"]);
    assert!(!ok && err.contains("cannot transact"), "{err}");
    let (ok, _, err) = run(&[
        "sale",
        "--operator",
        "01",
        "--password",
        "102938",
        "--pan",
        "6222021000000000017",
        "--pin",
        "123456",
        "--amount",
        "1.00",
    ]);
    assert!(!ok && err.contains("not signed on"), "{err}");
    let (ok, out, err) = run(&["signon", "--operator", "01", "--password", "102938"]);
    assert!(ok && out.contains("response 00"), "{out}{err}");
    let (ok, out, _) = run(&[
        "sale",
        "--operator",
        "01",
        "--password",
        "102938",
        "--pan",
        "6222021000000000017",
        "--pin",
        "123456",
        "--amount",
        "12.34",
    ]);
    assert!(
        ok && out.contains("response 00")
            && out.contains("RMB 12.34")
            && out.contains("MERCHANT COPY")
            && out.contains("CARDHOLDER COPY"),
        "{out}"
    );
    assert!(
        !out.contains("6222021000000000017"),
        "receipts mask the card"
    );
    // A balance in yuan; a decline with its meaning, no slip to sign, exit code 1 (an
    // error is 2).
    let (ok, out, err) = run(&[
        "balance",
        "--operator",
        "01",
        "--password",
        "102938",
        "--pan",
        "6222021000000000017",
        "--pin",
        "123456",
    ]);
    assert!(
        ok && out.contains("可用余额 Available balance: ") && out.contains(" CNY"),
        "{out}{err}"
    );
    let (code, out, _) = tfw_exit(
        &state,
        &addr,
        &[
            "sale",
            "--operator",
            "01",
            "--password",
            "102938",
            "--pan",
            "6222021000000000017",
            "--pin",
            "111111",
            "--amount",
            "1.00",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("55 密码错 Wrong PIN") && !out.contains("SIGNATURE"),
        "{out}"
    );
    assert_eq!(tfw_exit(&state, "127.0.0.1:9", &["echo"]).0, Some(2));
    let (ok, _, err) = run(&[
        "sale",
        "--operator",
        "01",
        "--password",
        "000001",
        "--pan",
        "6222021000000000017",
        "--pin",
        "123456",
        "--amount",
        "1",
    ]);
    assert!(!ok && err.contains("wrong password"), "{err}");
    let (ok, out, _) = run(&["log", "--operator", "01", "--password", "102938"]);
    assert!(
        ok && out.contains("622202*********0017") && out.contains("12.34"),
        "{out}"
    );
    let (ok, out, _) = run(&["reprint", "--operator", "01", "--password", "102938"]);
    assert!(ok && out.contains("REPRINT"), "{out}");
    let (ok, out, _) = run(&[
        "settle",
        "--operator",
        "01",
        "--password",
        "102938",
        "--supervisor-password",
        "246802",
    ]);
    assert!(ok && out.contains("BALANCED"), "{out}");
    // An unreachable switch is said plainly.
    let (ok, _, err) = tfw(&state, "127.0.0.1:9", &["echo"]);
    assert!(!ok && err.contains("switch unreachable"), "{err}");

    // The load generator, briefly: closed loop, then open loop.
    let (ok, out, err) = run(&[
        "load",
        "--terminals",
        "4",
        "--duration",
        "1",
        "--first-tid",
        "10000600",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["total"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(v["errors"], 0, "{out}");
    assert!(v["response_codes"]["00"].as_u64().unwrap() > 0);
    for p in ["p50", "p90", "p99", "p99.9", "max"] {
        assert!(v["latency_us"][p].as_u64().is_some(), "{p}");
    }
    let (ok, out, err) = run(&[
        "load",
        "--terminals",
        "2",
        "--duration",
        "1",
        "--rate",
        "50",
        "--mix",
        "sale=50,balance=50",
        "--first-tid",
        "10000610",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let total = v["total"].as_u64().unwrap();
    assert!(
        (20..=80).contains(&total),
        "open loop at 50/s for 1 s: {total}"
    );
    // The generator run again on the same terminals (as after its own restart): their
    // batches are still open at the switch, and no trace number is used twice (no 94).
    let (ok, out, err) = run(&[
        "load",
        "--terminals",
        "4",
        "--duration",
        "1",
        "--first-tid",
        "10000600",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["response_codes"]["94"], serde_json::Value::Null, "{out}");
    assert_eq!(v["errors"], 0, "{out}");
    // Terminals the switch does not know: nothing approved, a non-zero exit, and why.
    let (ok, out, err) = run(&[
        "load",
        "--terminals",
        "2",
        "--duration",
        "1",
        "--first-tid",
        "20000001",
        "--json",
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("no request was approved") && err.contains("97"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["failures"].to_string().contains("97"), "{out}");
    // A kind it does not send is refused before anything is sent.
    let (ok, _, err) = run(&["load", "--mix", "sale=50,void=50", "--duration", "1"]);
    assert!(!ok && err.contains("not \"void\""), "{err}");
    sw.shutdown().await;
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::remove_dir_all(&sw_dir).unwrap();
}

/// The walk-through without trace numbers or dates: `void --last`, `refund --last` (its RRN
/// and date from the log), `reprint --settlement` and `reprint` after the settlement, and
/// `log` showing the settled batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_sale_is_voided_and_refunded_without_looking_it_up() {
    let sw_dir = temp_dir("cli-last-switch");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let state = temp_dir("cli-last-state");
    let run = |args: &[&str]| tfw(&state, &addr, args);
    assert!(run(&["init", "--tid", "10000502"]).0);
    for (op, old, new) in [("99", "000000", "135790"), ("00", "123456", "246802")] {
        assert!(
            run(&[
                "operator",
                "passwd",
                "--operator",
                op,
                "--old",
                old,
                "--new",
                new
            ])
            .0
        );
    }
    let cashier = ["--operator", "01", "--password", "102938"];
    assert!(
        run(&[
            "operator",
            "add",
            "--operator",
            "01",
            "--password",
            "102938",
            "--admin-password",
            "135790"
        ])
        .0
    );
    let card = ["--pan", "6222021000000000017"];
    let as_cashier = |head: &[&str]| run(&[head, &cashier[..]].concat());
    assert!(as_cashier(&["signon"]).0);
    // Supervised: the supervisor's password too (and the card for voids and refunds).
    let supervised =
        |head: &[&str]| run(&[head, &cashier[..], &["--supervisor-password", "246802"]].concat());
    let with_card = |head: &[&str]| {
        run(&[
            head,
            &cashier[..],
            &card[..],
            &["--supervisor-password", "246802"],
        ]
        .concat())
    };
    let sale = |amount: &str| {
        run(&[
            &["sale"][..],
            &cashier[..],
            &card[..],
            &["--pin", "123456", "--amount", amount][..],
        ]
        .concat())
    };
    // Nothing to void yet.
    let (ok, _, err) = with_card(&["void", "--last"]);
    assert!(!ok && err.contains("no approved sale to void"), "{err}");
    assert!(sale("10.00").0);
    assert!(sale("20.00").0);
    let (ok, out, err) = with_card(&["void", "--last"]);
    assert!(
        ok && out.contains("voiding trace") && out.contains("20.00"),
        "{out}{err}"
    );
    // The voided one is not voided twice: the next --last is the 10.00 sale.
    let (ok, out, err) = with_card(&["refund", "--last", "--amount", "4.00"]);
    assert!(
        ok && out.contains("refunding RRN") && out.contains("10.00"),
        "{out}{err}"
    );
    let (ok, out, err) = supervised(&["settle"]);
    assert!(ok && out.contains("BALANCED"), "{out}{err}");
    let (ok, out, _) = as_cashier(&["reprint", "--settlement"]);
    assert!(
        ok && out.contains("BALANCED") && out.contains("REPRINT"),
        "{out}"
    );
    let (ok, out, err) = as_cashier(&["reprint"]);
    assert!(
        ok && out.contains("RMB 4.00"),
        "the last transaction, settled: {out}{err}"
    );
    let (ok, out, _) = as_cashier(&["log"]);
    assert!(
        ok && out.contains("(open)") && out.contains("(settled)") && out.contains("voided"),
        "{out}"
    );
    // A QR sale above the password-free limit asks for the payment password (read from
    // stdin here, hidden on a terminal) and goes through with it.
    let out = Command::new(env!("CARGO_BIN_EXE_terminal-fw"))
        .arg("--state")
        .arg(&state)
        .args(["--switch", &addr, "qr"])
        .args(cashier)
        .args(["--code", "280000000000000001", "--amount", "1500.00"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"888888\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("55") && text.contains("response 00"),
        "{text}"
    );
    // After settlement a refund of the settled batch's sale still finds its date.
    let (ok, out, err) = with_card(&["refund", "--last", "--amount", "1.00"]);
    assert!(ok && out.contains("10.00"), "{out}{err}");
    // The administrator takes void/refund and settlement away from cashier 01: refused,
    // named, and recorded; sales still go.
    let (ok, out, err) = run(&[
        "operator",
        "permit",
        "--operator",
        "01",
        "--allow",
        "transact,query",
        "--admin-password",
        "135790",
    ]);
    assert!(
        ok && out.contains("transact 交易") && !out.contains("settle"),
        "{out}{err}"
    );
    let (ok, _, err) = with_card(&["refund", "--last", "--amount", "1.00"]);
    assert!(
        !ok && err.contains("void-refund (撤销/退货) permission"),
        "{err}"
    );
    let (ok, _, err) = supervised(&["settle"]);
    assert!(!ok && err.contains("settle (结算)"), "{err}");
    assert!(sale("1.00").0);
    let (ok, out, _) = run(&["operator", "events"]);
    assert!(
        ok && out.contains("permissions set to [transact,query]"),
        "{out}"
    );
    let (ok, _, err) = run(&[
        "operator",
        "permit",
        "--operator",
        "01",
        "--allow",
        "transact,query,void-refund,settle",
        "--admin-password",
        "135790",
    ]);
    assert!(ok, "{err}");
    sw.shutdown().await;
}

/// The README's walk-through, as written: every `terminal-fw` line of its command block run
/// in order against a switch (optional `[...]` parts left out, the passwords and PINs typed
/// on stdin as the prompts ask for them), each one succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_written() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("cargo run -p terminal-fw -- demo ")
        .expect("the walk-through block");
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let sw_dir = temp_dir("cli-readme-switch");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let state = temp_dir("cli-readme-state");
    let mut ran = 0;
    for line in block.lines() {
        let Some(cmd) = line.strip_prefix("cargo run -p terminal-fw -- ") else {
            continue;
        };
        let cmd = cmd.split('#').next().unwrap();
        // Optional parts are left out.
        let mut words = Vec::new();
        let mut optional = false;
        for w in cmd.split_whitespace() {
            if w.starts_with('[') {
                optional = true;
            }
            if !optional {
                words.push(w);
            }
            if w.ends_with(']') {
                optional = false;
            }
        }
        // What the prompts ask for, in order (test passwords; the demo cards' PINs).
        let typed: &str = match (words[0], words.get(1).copied()) {
            ("demo", _) => continue, // its own terminal and state
            ("init", _) => "",
            ("operator", Some("passwd")) if words.contains(&"99") => "000000\n135790\n",
            ("operator", Some("passwd")) => "123456\n246802\n",
            ("operator", Some("add")) => "135790\n102938\n",
            ("operator", Some("permit")) => "135790\n",
            ("signon" | "qr" | "log" | "reprint", _) => "102938\n",
            ("sale" | "balance" | "preauth", _) if words.contains(&"6250941000000009") => {
                "102938\n654321\n"
            }
            ("sale" | "balance", _) => "102938\n123456\n",
            ("complete" | "tip" | "adjust", _) => "102938\n",
            ("void" | "refund" | "settle", _) => "102938\n246802\n",
            other => panic!("a README line this test does not know how to answer: {other:?}"),
        };
        let out = Command::new(env!("CARGO_BIN_EXE_terminal-fw"))
            .arg("--state")
            .arg(&state)
            .args(["--switch", &addr])
            .args(&words)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(typed.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "`{}` failed:\n{}{}",
            words.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 15, "{ran} lines run");
    sw.shutdown().await;
}

/// `demo` runs a whole merchant day against a switch: sales, a void, a balance, a hotel stay
/// (a hold, then its completion above it within the tolerance), a settlement that balances
/// with the completion among its sales, and a refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_day_has_a_hotel_stay_and_balances() {
    let sw_dir = temp_dir("cli-demo-switch");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let state = temp_dir("cli-demo-state");
    let (ok, out, err) = tfw(&state, &addr, &["demo"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("PRE-AUTH 预授权"), "{out}");
    assert!(
        out.contains("AUTH COMPLETE 预授权完成") && out.contains("RMB 880.00"),
        "{out}"
    );
    assert!(out.contains("BALANCED"), "{out}");
    // Sales that stand: 123.45 + 500.00 + 88.00 (QR) + 880.00 (the completion).
    assert!(out.contains("1591.45") || out.contains("1,591.45"), "{out}");
    sw.shutdown().await;
}

/// `init` on an initialised terminal is refused; `init --force` is the administrator's own
/// recovery: everything secret is gone (the old administrator password no longer works, the
/// factory one must be changed again) and the log starts empty.
#[test]
fn init_force_starts_over_and_keeps_nothing_secret() {
    let state = temp_dir("cli-init-force");
    let run = |args: &[&str]| tfw(&state, "127.0.0.1:9", args);
    assert!(run(&["init", "--tid", "10000503"]).0);
    assert!(
        run(&[
            "operator",
            "passwd",
            "--operator",
            "99",
            "--old",
            "000000",
            "--new",
            "135790"
        ])
        .0
    );
    let key_before = std::fs::read(state.join("device.key")).unwrap();
    let (ok, _, err) = run(&["init", "--tid", "10000503"]);
    assert!(!ok && err.contains("init --force"), "{err}");
    let (ok, _, err) = run(&["init", "--tid", "10000504", "--force"]);
    assert!(ok, "{err}");
    assert_ne!(std::fs::read(state.join("device.key")).unwrap(), key_before);
    // The administrator's password is the factory one again.
    let (ok, _, err) = run(&[
        "operator",
        "passwd",
        "--operator",
        "99",
        "--old",
        "135790",
        "--new",
        "864209",
    ]);
    assert!(!ok, "the old password is gone: {err}");
    assert!(
        run(&[
            "operator",
            "passwd",
            "--operator",
            "99",
            "--old",
            "000000",
            "--new",
            "864209"
        ])
        .0
    );
    std::fs::remove_dir_all(&state).unwrap();
}
