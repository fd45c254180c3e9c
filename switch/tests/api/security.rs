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
