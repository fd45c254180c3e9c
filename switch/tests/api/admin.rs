//! Operators change cards in a running switch: `switch admin card …` through the admin
//! endpoint and its token; each change journalled with who and when, in effect at once.

use switch::daemon::admin::request;

use crate::client::{CREDIT, DEBIT, Terminal};
use crate::{JournalDb, start, temp_dir, test_config};

/// One admin call to the switch whose metrics listener is `addr`.
async fn admin_at(
    addr: std::net::SocketAddr,
    tok: String,
    method: &'static str,
    path: String,
    body: Option<String>,
) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        request(&addr.to_string(), &tok, method, &path, body.as_deref()).unwrap()
    })
    .await
    .unwrap()
}

/// `switch admin --admin ADDR --token-file F --who WHO card ARGS…`.
fn admin_cli(
    metrics: std::net::SocketAddr,
    token_file: &std::path::Path,
    who: &str,
    args: &[&str],
) -> (bool, String, String) {
    let (metrics, token_file) = (metrics.to_string(), token_file.display().to_string());
    let mut all = vec![
        "admin",
        "--admin",
        &metrics,
        "--token-file",
        &token_file,
        "--who",
        who,
        "card",
    ];
    all.extend_from_slice(args);
    crate::cli::switch(&all)
}

fn token(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn cards_blocked_unblocked_and_pin_tries_reset_while_running() {
    let dir = temp_dir("admin");
    let sw = start(test_config(&dir)).await;
    let addr = sw.metrics_addr;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the owner's only");
    }
    let tok = token(&dir);
    let call = |tok: &str, method: &'static str, path: String, body: Option<String>| {
        admin_at(addr, tok.to_owned(), method, path, body)
    };
    let post = |action: &str, pan: &str, extra: &str| {
        format!(r#"{{"pan":"{pan}","action":"{action}","who":"alice"{extra}}}"#)
    };

    // No token, a wrong one: 401.
    let (code, _) = call("wrong", "GET", format!("/admin/card?pan={DEBIT}"), None).await;
    assert_eq!(code, 401);
    // Show: the card as the journal has it, the PAN masked.
    let (code, body) = call(&tok, "GET", format!("/admin/card?pan={DEBIT}"), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("622202*********0017") && !body.contains(DEBIT),
        "{body}"
    );
    assert!(body.contains(r#""status":"active""#), "{body}");
    let (code, _) = call(&tok, "GET", "/admin/card?pan=6222029999999999".into(), None).await;
    assert_eq!(code, 404);

    let mut t = Terminal::connect(sw.terminal_addr, "10000081").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // Three wrong PINs lock the card (75) until an operator resets its tries.
    for rc in ["55", "55", "75"] {
        assert_eq!(t.sale(DEBIT, "111111", 100).await.rc(), rc);
    }
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "75");
    let (code, body) = call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("reset-pin-tries", DEBIT, "")),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""pin_tries":0"#), "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");

    // Reported lost: 41 at once; unblocked: 00 again. Blocked: 05.
    let (code, body) = call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("block", DEBIT, r#","status":"lost""#)),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "41");
    call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("unblock", DEBIT, "")),
    )
    .await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("block", DEBIT, "")),
    )
    .await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "05");

    // A credit limit cut to 10.00: a 20.00 sale is refused (51), 5.00 goes through.
    let (code, body) = call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("set-limit", CREDIT, r#","credit_limit_fen":1000"#)),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(t.sale(CREDIT, "654321", 2_000).await.rc(), "51");
    assert_eq!(t.sale(CREDIT, "654321", 500).await.rc(), "00");

    // Bad requests say why.
    let (code, body) = call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("melt", DEBIT, "")),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = call(
        &tok,
        "POST",
        "/admin/card".into(),
        Some(post("block", "12", "")),
    )
    .await;
    assert_eq!(code, 400);

    // Every change journalled with who and what, the PAN masked.
    let rows = JournalDb::of(&dir).rows(
        "SELECT who, action, subject, detail FROM admin_log ORDER BY id",
        &[],
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    let text = format!("{rows:?}");
    assert!(
        text.contains("alice") && text.contains("reset-pin-tries") && text.contains("status=lost")
    );
    assert!(!text.contains(DEBIT), "no full PAN in the log");
    sw.shutdown().await;

    // After a restart the journal's card is the one in force (blocked: 05).
    let sw = start(test_config(&dir)).await;
    assert_eq!(token(&dir), tok, "the token is kept");
    let mut t = Terminal::connect(sw.terminal_addr, "10000082").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "05");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_admin_command_line() {
    let dir = temp_dir("admin-cli");
    let c = test_config(&dir);
    let mut sw = crate::spawn_switch(&c, &dir.join("switch.toml"), "info");
    let token_file = dir.join("admin.token");
    let admin = |args: &[&str]| admin_cli(sw.metrics, &token_file, "bob", args);
    let (ok, out, err) = admin(&["show", "--pan", DEBIT]);
    assert!(ok, "{err}");
    assert!(
        out.contains("622202*********0017") && !out.contains(DEBIT),
        "{out}"
    );
    let (ok, out, err) = admin(&["block", "--pan", DEBIT, "--status", "stolen"]);
    assert!(ok && out.contains(r#""status":"stolen""#), "{out}{err}");
    let (ok, _, err) = admin(&["set-limit", "--pan", CREDIT, "--yuan", "12.5"]);
    assert!(ok, "{err}");
    let (ok, _, err) = admin(&["show", "--pan", "6222029999999999"]);
    assert!(!ok && err.contains("404"), "{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut t = Terminal::connect(sw.addr, "10000083").await;
        assert_eq!(t.sign_on().await.rc(), "00");
        assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "43");
        assert_eq!(
            t.balance(CREDIT, "654321").await.text(54).as_deref(),
            Some("1002156C000000001250")
        );
    });
    let _ = sw.child.kill();
    let _ = sw.child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn terminals_batches_and_issuers_seen_and_a_terminal_made_to_sign_on_again() {
    let dir = temp_dir("admin-terminal");
    let sw = start(test_config(&dir)).await;
    let tok = token(&dir);
    let addr = sw.metrics_addr;
    let call = |method: &'static str, path: String, body: Option<String>| {
        admin_at(addr, tok.clone(), method, path, body)
    };
    let mut t = Terminal::connect(sw.terminal_addr, "10000084").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 1_234).await.rc(), "00");
    assert_eq!(t.sale(CREDIT, "654321", 766).await.rc(), "00");

    let (code, body) = call("GET", "/admin/terminal?tid=10000084".into(), None).await;
    assert_eq!(code, 200, "{body}");
    for part in [
        r#""signed_on":true"#,
        r#""mid":"898310048990001""#,
        r#""open_batch":1"#,
        r#""sales":2"#,
        r#""sales_fen":2000"#,
    ] {
        assert!(body.contains(part), "{part} in {body}");
    }
    let (code, body) = call("GET", "/admin/batch?tid=10000084".into(), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""sales_fen":2000"#), "{body}");
    let (code, _) = call("GET", "/admin/batch?tid=10000084&batch=7".into(), None).await;
    assert_eq!(code, 200);
    let (code, _) = call("GET", "/admin/terminal?tid=20000001".into(), None).await;
    assert_eq!(code, 404);
    let (code, body) = call("GET", "/admin/issuer".into(), None).await;
    assert_eq!(
        (code, body.as_str()),
        (200, "[]"),
        "no issuers in this configuration"
    );

    // Made to sign on again: its next request answers A0; a new sign-on works.
    let (code, body) = call(
        "POST",
        "/admin/terminal".into(),
        Some(r#"{"tid":"10000084","action":"force-signon","who":"dave"}"#.into()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""had_session":true"#), "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "A0");
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    let logged = JournalDb::of(&dir).number(
        "SELECT COUNT(*) FROM admin_log WHERE who = 'dave' AND action = 'force-signon' AND subject = '10000084'",
        &[],
    );
    assert_eq!(logged, 1);
    // Disabled: every request answers 58, a sign-on too, even after a restart; enabled:
    // it signs on and pays.
    let (code, body) = call(
        "POST",
        "/admin/terminal".into(),
        Some(r#"{"tid":"10000084","action":"disable","who":"dave"}"#.into()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""disabled":true"#), "{body}");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "58");
    assert_eq!(t.sign_on().await.rc(), "58");
    let (_, body) = call("GET", "/admin/terminal?tid=10000084".into(), None).await;
    assert!(
        body.contains(r#""disabled":true"#) && body.contains(r#""signed_on":false"#),
        "{body}"
    );
    sw.shutdown().await;
    let sw = start(test_config(&dir)).await;
    t.redial(sw.terminal_addr).await;
    assert_eq!(
        t.sign_on().await.rc(),
        "58",
        "still disabled after a restart"
    );
    let (code, _) = admin_at(
        sw.metrics_addr,
        token(&dir),
        "POST",
        "/admin/terminal".into(),
        Some(r#"{"tid":"10000084","action":"enable","who":"dave"}"#.into()),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_card_added_while_running_pays_with_its_pin() {
    let dir = temp_dir("admin-add");
    let c = test_config(&dir);
    let mut sw = crate::spawn_switch(&c, &dir.join("switch.toml"), "info");
    let token_file = dir.join("admin.token");
    let admin = |args: &[&str]| admin_cli(sw.metrics, &token_file, "erin", args);
    // 6222021000000000090, PIN 246810 (test data): its IBM 3624 offset under the demo PVK
    // from scripts/payshield-vectors.py's reference implementation.
    let new = "6222021000000000090";
    let (ok, out, err) = admin(&[
        "add", "--pan", new, "--expiry", "3012", "--offset", "628815", "--yuan", "300.00",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("622202*********0090") && !out.contains(new),
        "{out}"
    );
    // Again: refused, nothing changes.
    let (ok, _, err) = admin(&[
        "add", "--pan", new, "--expiry", "3012", "--offset", "111111",
    ]);
    assert!(!ok && err.contains("409"), "{err}");
    // A bad check digit, a remote BIN, no PIN data: refused.
    for args in [
        [
            "add",
            "--pan",
            "6222021000000000091",
            "--expiry",
            "3012",
            "--offset",
            "628815",
        ],
        [
            "add", "--pan", new, "--expiry", "3013", "--offset", "628815",
        ],
    ] {
        let (ok, _, err) = admin(&args);
        assert!(!ok && err.contains("400"), "{err}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut t = Terminal::connect(sw.addr, "10000085").await;
        assert_eq!(t.sign_on().await.rc(), "00");
        assert_eq!(t.sale(new, "246811", 100).await.rc(), "55");
        let s = t.sale(new, "246810", 10_000).await;
        assert_eq!(s.rc(), "00");
        assert_eq!(
            t.sale(new, "246810", 20_001).await.rc(),
            "51",
            "300.00 opened, 100.00 spent"
        );
    });
    let _ = sw.child.kill();
    let _ = sw.child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_issuer_drained_and_taken_back() {
    let sim = crate::issuer::sim(1).await;
    let dir = temp_dir("admin-issuer");
    let config = || crate::issuer::config(&dir, vec![sim.addrs[0].to_string()], |_| {});
    let sw = start(config()).await;
    crate::issuer::lines_up(&sw, 1).await;
    let (addr, tok) = (sw.metrics_addr, token(&dir));
    let call = |method: &'static str, body: Option<&'static str>| {
        admin_at(
            addr,
            tok.clone(),
            method,
            "/admin/issuer".into(),
            body.map(Into::into),
        )
    };
    let remote = crate::issuer::REMOTE;
    let mut t = Terminal::connect(sw.terminal_addr, "10000086").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "00");
    let (code, body) = call(
        "POST",
        Some(r#"{"name":"demo-issuer","action":"drain","who":"frank"}"#),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(r#""drained":true"#) && body.contains(r#""up":true"#),
        "{body}"
    );
    assert_eq!(
        t.sale(remote, "111111", 1_000).await.rc(),
        "91",
        "drained: no new requests"
    );
    assert_eq!(
        t.sale(DEBIT, "123456", 100).await.rc(),
        "00",
        "on-us cards unaffected"
    );
    let (_, body) = call("GET", None).await;
    assert!(body.contains(r#""drained":true"#), "{body}");
    let (code, _) = call("POST", Some(r#"{"name":"nobody","action":"drain"}"#)).await;
    assert_eq!(code, 404);
    sw.shutdown().await;

    // Still drained after a restart, until taken back.
    let sw = start(config()).await;
    crate::issuer::lines_up(&sw, 1).await;
    t.redial(sw.terminal_addr).await;
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "91");
    let (code, _) = admin_at(
        sw.metrics_addr,
        token(&dir),
        "POST",
        "/admin/issuer".into(),
        Some(r#"{"name":"demo-issuer","action":"up","who":"frank"}"#.into()),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(t.sale(remote, "111111", 1_000).await.rc(), "00");
    let n = JournalDb::of(&dir).number(
        "SELECT COUNT(*) FROM admin_log WHERE who = 'frank' AND subject = 'demo-issuer'",
        &[],
    );
    assert_eq!(n, 2);
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
