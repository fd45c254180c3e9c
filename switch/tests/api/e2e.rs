//! Sign-on, sale, balance and every failure code, over TCP.
//!
//! These run on either journal: `SWITCH_TEST_JOURNAL=postgres` runs them on PostgreSQL.

use switch::journal::columns::Value;

use crate::client::{CREDIT, DEBIT, LOST, LOW, Terminal};
use crate::{JournalDb, journal_config as test_config, start, temp_dir};

#[tokio::test]
async fn sign_on_sale_and_balance() {
    let dir = temp_dir("e2e");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;

    let r = t.sign_on().await;
    assert_eq!(r.rc(), "00");
    assert_eq!(r.msg().mti().as_str(), "0810");
    // TPDU swapped: 60 0003 0000 → 60 0000 0003.
    assert_eq!(&r.bytes[..5], &[0x60, 0x00, 0x00, 0x00, 0x03]);
    assert_eq!(r.msg().get("60.3").unwrap().unwrap().to_string(), "003");
    assert!(r.text(37).is_some(), "sign-on gets an RRN");

    // Balance first: 10,000.00 CNY.
    let b = t.balance(DEBIT, "123456").await;
    assert_eq!(b.rc(), "00");
    assert_eq!(b.text(54).as_deref(), Some("1002156C000001000000"));
    assert!(t.reply_mac_ok(&b), "balance reply MAC");

    // A 1,000.00 CNY debit sale: fee 0.5% = 5.00.
    let s = t.sale(DEBIT, "123456", 100_000).await;
    assert_eq!(s.rc(), "00");
    assert!(t.reply_mac_ok(&s), "sale reply MAC");
    let rrn = s.text(37).unwrap();
    assert_eq!(rrn.len(), 12);
    assert_eq!(s.text(38).unwrap().len(), 6);
    assert_eq!(s.digits(4).as_deref(), Some("000000100000"));
    assert_eq!(s.digits(11).as_deref(), Some("000003"));
    let row = &JournalDb::of(&dir).rows(
        "SELECT response_code, fee_fen, amount_fen, masked_pan, card_type FROM transactions WHERE rrn = ?1",
        &[rrn.as_str().into()],
    )[0];
    let (rc, fee, amount, masked, card_type) = match &row[..] {
        [
            Value::Text(rc),
            Value::Int(fee),
            Value::Int(amount),
            Value::Text(masked),
            Value::Text(card_type),
        ] => (rc.clone(), *fee, *amount, masked.clone(), card_type.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            rc.as_str(),
            fee,
            amount,
            masked.as_str(),
            card_type.as_str()
        ),
        ("00", 500, 100_000, "622202*********0017", "debit")
    );

    // The balance dropped by the amount.
    let b = t.balance(DEBIT, "123456").await;
    assert_eq!(b.text(54).as_deref(), Some("1002156C000000900000"));

    // Debit fee cap: 5,000.00 → 25.00 capped at 20.00. Credit: 1,000.00 → 6.00.
    let s = t.sale(DEBIT, "123456", 500_000).await;
    assert_eq!(s.rc(), "00");
    let s2 = t.sale(CREDIT, "654321", 100_000).await;
    assert_eq!(s2.rc(), "00");
    let fees: Vec<Value> = JournalDb::of(&dir)
        .rows(
            "SELECT fee_fen FROM transactions WHERE rrn IN (?1, ?2) ORDER BY rrn",
            &[s.text(37).unwrap().into(), s2.text(37).unwrap().into()],
        )
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    let fees: Vec<i64> = fees
        .iter()
        .map(|v| match v {
            Value::Int(n) => *n,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(fees, [2_000, 600]);
    // Credit: available = limit - used.
    let b = t.balance(CREDIT, "654321").await;
    assert_eq!(b.text(54).as_deref(), Some("1002156C000004900000"));

    let metrics = reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains(r#"switch_transactions_total{kind="sale",rc="00"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switch_fees_fen_total{card_type="debit"} 2500"#),
        "{metrics}"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// GET /metrics with a plain HTTP/1.1 request.
pub async fn reqwest_metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[tokio::test]
async fn every_decline_code() {
    let dir = temp_dir("declines");
    let sw = start(test_config(&dir)).await;
    let addr = sw.terminal_addr;

    // 97: unknown terminal; 03: known terminal, wrong merchant.
    let mut stranger = Terminal::connect(addr, "20000001").await;
    assert_eq!(stranger.sign_on().await.rc(), "97");
    let mut wrong_mid = Terminal::connect(addr, "10000002").await;
    wrong_mid.mid = "898310048990002".into();
    assert_eq!(wrong_mid.sign_on().await.rc(), "03");

    let mut t = Terminal::connect(addr, "10000003").await;
    assert_eq!(t.sign_on().await.rc(), "00");

    // A0: bad MAC, with the sign-on-again nibble in the header.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 100);
    let mut frame = t.seal(&mut b);
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    let r = t.exchange(&frame).await;
    assert_eq!(r.rc(), "A0");
    assert_eq!(
        r.bytes[7] & 0x0F,
        3,
        "processing requirement: sign on again"
    );

    // 30: a mandatory field missing (25).
    let mut b = t.sale_builder(DEBIT, Some("123456"), 100);
    b.remove(25);
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "30");

    // 55 wrong PIN, then 75 after the third in a row; the right PIN no longer helps.
    assert_eq!(t.sale(DEBIT, "111111", 100).await.rc(), "55");
    assert_eq!(t.sale(DEBIT, "111111", 100).await.rc(), "55");
    assert_eq!(t.sale(DEBIT, "111111", 100).await.rc(), "75");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "75");

    // 51: 60.00 on a card holding 50.00.
    assert_eq!(t.sale(LOW, "123456", 6_000).await.rc(), "51");
    assert_eq!(t.sale(LOW, "123456", 5_000).await.rc(), "00");
    // 41: lost card.
    assert_eq!(t.sale(LOST, "123456", 100).await.rc(), "41");
    // 54: an expiry that does not match the card.
    let mut b = t.sale_builder(LOW, Some("123456"), 1);
    b.set(14, "2001");
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "54");
    // 14: bad Luhn digit; 15: a BIN with no route.
    assert_eq!(
        t.sale("6222021000000000018", "123456", 100).await.rc(),
        "14"
    );
    assert_eq!(t.sale("4111111111111111", "1234", 100).await.rc(), "15");
    // 13: zero amount, and an absurd one.
    assert_eq!(t.sale(CREDIT, "654321", 0).await.rc(), "13");
    assert_eq!(t.sale(CREDIT, "654321", 999_999_999_999).await.rc(), "13");
    // 12: a processing code the switch does not serve.
    let mut b = t.sale_builder(CREDIT, Some("654321"), 100);
    b.set(3, "190000");
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "12");
    // 77: a batch that is not the terminal's open batch.
    let mut b = t.sale_builder(CREDIT, Some("654321"), 100);
    b.set(60, "22000099000");
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "77");
    // A0 for a terminal that never signed on.
    let mut fresh = Terminal::connect(addr, "10000004").await;
    fresh.tpk = t.tpk.clone();
    fresh.tak = t.tak.clone();
    assert_eq!(fresh.sale(CREDIT, "654321", 100).await.rc(), "A0");

    // Every authenticated request above is in the journal with its code; the ones that
    // failed authentication (97, 03, A0) and the one missing a mandatory field are not.
    let codes: Vec<String> = JournalDb::of(&dir)
        .rows(
            "SELECT DISTINCT response_code FROM transactions ORDER BY 1",
            &[],
        )
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    for code in [
        "00", "12", "13", "14", "15", "41", "51", "54", "55", "75", "77",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} not journalled: {codes:?}"
        );
    }
    for code in ["03", "30", "97", "A0"] {
        assert!(
            !codes.iter().any(|c| c == code),
            "{code} journalled: {codes:?}"
        );
    }
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn retransmission_replays_and_conflict_is_94() {
    let dir = temp_dir("dup");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000005").await;
    t.sign_on().await;
    let mut b = t.sale_builder(DEBIT, Some("123456"), 1_000);
    let frame = t.seal(&mut b);
    // The same frame three times, two of them at once.
    t.send_raw(&frame).await;
    t.send_raw(&frame).await;
    let a = t.read_reply().await.unwrap();
    let b2 = t.read_reply().await.unwrap();
    let c = t.exchange(&frame).await;
    for r in [&a, &b2, &c] {
        assert_eq!(r.rc(), "00");
        assert_eq!(r.text(37), a.text(37), "same RRN");
        assert_eq!(r.text(38), a.text(38), "same auth code");
    }
    // Money moved once.
    let bal = t.balance(DEBIT, "123456").await;
    assert_eq!(bal.text(54).as_deref(), Some("1002156C000000999000"));
    // Same terminal, batch, STAN and MTI with another amount: 94.
    t.stan -= 2; // back to the sale's STAN
    let mut other = t.sale_builder(DEBIT, Some("123456"), 2_000);
    let frame = t.seal(&mut other);
    assert_eq!(t.exchange(&frame).await.rc(), "94");
    let n =
        JournalDb::of(&dir).number("SELECT COUNT(*) FROM transactions WHERE kind = 'sale'", &[]);
    assert_eq!(n, 1);
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
