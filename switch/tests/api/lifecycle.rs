//! Voids, refunds, reversals, QR sales, settlement and batch upload, over TCP.

//!
//! These run on either journal: `SWITCH_TEST_JOURNAL=postgres` runs them on PostgreSQL.

use switch::journal::columns::Value;

use crate::client::{CREDIT, DEBIT, QR_CODE, Terminal};
use crate::{JournalDb, journal_config as test_config, start, temp_dir};

fn db(dir: &std::path::Path) -> JournalDb {
    JournalDb::of(dir)
}

fn flags(dir: &std::path::Path, rrn: &str) -> (bool, bool, i64) {
    let r = &db(dir).rows(
        "SELECT voided, reversed, refunded_fen FROM transactions WHERE rrn = ?1",
        &[rrn.into()],
    )[0];
    let n = |i: usize| match r[i] {
        Value::Int(n) => n,
        _ => panic!("{r:?}"),
    };
    (n(0) != 0, n(1) != 0, n(2))
}

async fn balance(t: &mut Terminal, pan: &str, pin: &str) -> String {
    // 54: account type 10, amount type 02, currency 156, then sign and amount.
    t.balance(pan, pin).await.text(54).unwrap()[7..].to_owned()
}

/// The local date's MMDD (China Standard Time), as a refund's 61.3 carries it.
pub fn today_mmdd() -> String {
    switch::clock::Timestamp::now().cst_fields().1
}

#[tokio::test]
async fn void_rules() {
    let dir = temp_dir("void");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000040").await;
    t.sign_on().await;
    let sale = t.sale(DEBIT, "123456", 12_300).await;
    assert_eq!(sale.rc(), "00");
    let stan = t.stan;
    let rrn = sale.text(37).unwrap();
    assert_eq!(balance(&mut t, DEBIT, "123456").await, "C000000987700");

    assert_eq!(
        t.void(DEBIT, 12_300, 999_999).await.rc(),
        "25",
        "no such trace"
    );
    assert_eq!(
        t.void(DEBIT, 12_000, stan).await.rc(),
        "64",
        "amount differs"
    );
    assert_eq!(
        t.void(CREDIT, 12_300, stan).await.rc(),
        "25",
        "another card"
    );
    let v = t.void(DEBIT, 12_300, stan).await;
    assert_eq!(v.rc(), "00");
    assert!(t.reply_mac_ok(&v));
    assert_eq!(
        balance(&mut t, DEBIT, "123456").await,
        "C000001000000",
        "money back"
    );
    assert_eq!(flags(&dir, &rrn), (true, false, 0));
    assert_eq!(
        t.void(DEBIT, 12_300, stan).await.rc(),
        "12",
        "already voided"
    );
    // The void's own record points at the sale.
    let orig = db(&dir).text(
        "SELECT original_rrn FROM transactions WHERE rrn = ?1",
        &[v.text(37).unwrap().into()],
    );
    assert_eq!(orig, rrn);
    // A void with a PIN checks it.
    let sale = t.sale(DEBIT, "123456", 500).await;
    let stan = t.stan;
    let b = t.void_builder(DEBIT, 500, stan, Some("000000"));
    assert_eq!(t.send_sealed(b).await.rc(), "55");
    let b = t.void_builder(DEBIT, 500, stan, Some("123456"));
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert!(sale.text(37).is_some());
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn refund_rules() {
    let dir = temp_dir("refund");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000041").await;
    t.sign_on().await;
    let sale = t.sale(CREDIT, "654321", 100_000).await;
    let rrn = sale.text(37).unwrap();
    let mmdd = today_mmdd();
    assert_eq!(
        t.refund(CREDIT, 10_000, "999999999999", &mmdd).await.rc(),
        "25",
        "no such RRN"
    );
    assert_eq!(
        t.refund(CREDIT, 10_000, &rrn, "0101").await.rc(),
        if mmdd == "0101" { "00" } else { "25" },
        "wrong date"
    );
    assert_eq!(
        t.refund(DEBIT, 10_000, &rrn, &mmdd).await.rc(),
        "25",
        "another card"
    );
    let r = t.refund(CREDIT, 40_000, &rrn, &mmdd).await;
    assert_eq!((r.rc().as_str(), r.msg().mti().as_str()), ("00", "0230"));
    assert!(t.reply_mac_ok(&r));
    assert_eq!(
        t.refund(CREDIT, 70_000, &rrn, &mmdd).await.rc(),
        "61",
        "more than what is left"
    );
    assert_eq!(t.refund(CREDIT, 60_000, &rrn, &mmdd).await.rc(), "00");
    assert_eq!(t.refund(CREDIT, 1, &rrn, &mmdd).await.rc(), "61");
    assert_eq!(flags(&dir, &rrn), (false, false, 100_000));
    // Credit card: the amount used went back to zero; the sale's fee is kept (default).
    assert_eq!(balance(&mut t, CREDIT, "654321").await, "C000005000000");
    let fees = db(&dir).number(
        "SELECT CAST(SUM(fee_fen) AS BIGINT) FROM transactions WHERE response_code = '00'",
        &[],
    );
    assert_eq!(fees, 600);
    // A voided sale cannot be refunded.
    let s2 = t.sale(DEBIT, "123456", 5_000).await;
    let stan = t.stan;
    assert_eq!(t.void(DEBIT, 5_000, stan).await.rc(), "00");
    assert_eq!(
        t.refund(DEBIT, 5_000, &s2.text(37).unwrap(), &mmdd)
            .await
            .rc(),
        "12"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reversal_rules() {
    let dir = temp_dir("reversal");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000042").await;
    t.sign_on().await;
    // Reverse an approved sale: money back, the sale marked; a second reversal changes nothing.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 20_000);
    let sale_frame = t.seal(&mut b);
    let sale = t.exchange(&sale_frame).await;
    assert_eq!(sale.rc(), "00");
    let r = t.reverse(&sale_frame).await;
    assert_eq!((r.rc().as_str(), r.msg().mti().as_str()), ("00", "0410"));
    assert!(t.reply_mac_ok(&r));
    assert_eq!(balance(&mut t, DEBIT, "123456").await, "C000001000000");
    assert_eq!(flags(&dir, &sale.text(37).unwrap()), (false, true, 0));
    let again = t.reverse(&sale_frame).await;
    assert_eq!(again.rc(), "00");
    assert_eq!(
        balance(&mut t, DEBIT, "123456").await,
        "C000001000000",
        "idempotent"
    );
    // A retransmitted original after its reversal moves nothing either.
    assert_eq!(t.exchange(&sale_frame).await.rc(), "00");
    assert_eq!(balance(&mut t, DEBIT, "123456").await, "C000001000000");

    // The reversal races ahead of its original: 00, and the late original is refused.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 30_000);
    let late = t.seal(&mut b);
    assert_eq!(t.reverse(&late).await.rc(), "00");
    assert_eq!(t.exchange(&late).await.rc(), "12");
    assert_eq!(
        balance(&mut t, DEBIT, "123456").await,
        "C000001000000",
        "no money moved"
    );

    // Reversing a declined sale changes nothing.
    let mut b = t.sale_builder(DEBIT, Some("000000"), 1_000);
    let declined = t.seal(&mut b);
    assert_eq!(t.exchange(&declined).await.rc(), "55");
    assert_eq!(t.reverse(&declined).await.rc(), "00");

    // Reversing a void puts the sale back.
    let s = t.sale(DEBIT, "123456", 7_000).await;
    let stan = t.stan;
    let mut vb = t.void_builder(DEBIT, 7_000, stan, None);
    let void_frame = t.seal(&mut vb);
    assert_eq!(t.exchange(&void_frame).await.rc(), "00");
    assert_eq!(balance(&mut t, DEBIT, "123456").await, "C000001000000");
    assert_eq!(t.reverse(&void_frame).await.rc(), "00");
    assert_eq!(
        balance(&mut t, DEBIT, "123456").await,
        "C000000993000",
        "the sale stands again"
    );
    assert_eq!(flags(&dir, &s.text(37).unwrap()), (false, false, 0));
    sw.shutdown().await;

    // After a restart the early reversal still refuses its late original.
    let sw = start(test_config(&dir)).await;
    let mut t2 = Terminal::connect(sw.terminal_addr, "10000042").await;
    (t2.tpk, t2.tak, t2.batch) = (t.tpk.clone(), t.tak.clone(), t.batch);
    assert_eq!(t2.exchange(&late).await.rc(), "12");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn qr_payment_code_sales() {
    let dir = temp_dir("qr");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000043").await;
    t.sign_on().await;
    // 1,000.00 is within the password-free limit; fee 0.38% = 3.80.
    let r = t.qr(QR_CODE, 100_000, None).await;
    assert_eq!(r.rc(), "00");
    assert!(t.reply_mac_ok(&r));
    let row = &db(&dir).rows(
        "SELECT fee_fen, card_type, masked_pan FROM transactions WHERE rrn = ?1",
        &[r.text(37).unwrap().into()],
    )[0];
    let (fee, card_type, masked) = match (&row[0], &row[1], &row[2]) {
        (Value::Int(f), Value::Text(c), Value::Text(m)) => (*f, c.clone(), m.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!((fee, card_type.as_str()), (380, "qr"));
    assert!(!masked.contains(QR_CODE));
    // Above it: the payment password is required and checked.
    assert_eq!(t.qr(QR_CODE, 100_001, None).await.rc(), "55");
    assert_eq!(t.qr(QR_CODE, 100_001, Some("111111")).await.rc(), "55");
    assert_eq!(t.qr(QR_CODE, 100_001, Some("888888")).await.rc(), "00");
    // Wallet held 5,000.00; 2,999.99 is left: 3,000.00 is too much.
    assert_eq!(t.qr(QR_CODE, 300_000, Some("888888")).await.rc(), "51");
    assert_eq!(t.qr(QR_CODE, 299_000, Some("888888")).await.rc(), "00");
    // A code no wallet issued.
    assert_eq!(t.qr("990000000000000001", 100, None).await.rc(), "15");
    // A QR sale can be voided with its code.
    let r = t.qr("280000000000000777", 500, None).await;
    let stan = t.stan;
    let mut b = t.qr_builder("280000000000000777", 500, None);
    b.set(3, "200000")
        .set(60, format!("23{:06}000", t.batch))
        .set(61, format!("{:06}{stan:06}", t.batch));
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert_eq!(flags(&dir, &r.text(37).unwrap()), (true, false, 0));
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn settlement_and_batch_upload() {
    let dir = temp_dir("settle");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000044").await;
    t.sign_on().await;
    assert_eq!(t.batch, 1);
    t.sale(DEBIT, "123456", 10_000).await;
    let s2 = t.sale(CREDIT, "654321", 20_000).await;
    t.sale(DEBIT, "123456", 1_000).await;
    let stan3 = t.stan;
    t.void(DEBIT, 1_000, stan3).await;
    t.refund(CREDIT, 5_000, &s2.text(37).unwrap(), &today_mmdd())
        .await;
    // Sales that stand: 300.00 (2); refunds: 50.00 (1).
    let r = t.settle(30_000, 2, 5_000, 1).await;
    assert_eq!((r.rc().as_str(), r.msg().mti().as_str()), ("00", "0510"));
    let f48 = r.digits(48).unwrap();
    assert_eq!(&f48[30..31], "1", "balanced: {f48}");
    assert!(t.reply_mac_ok(&r));
    // The batch is closed: its number is refused, the next is 2.
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "77");
    let s = t.sign_on().await;
    assert_eq!(s.msg().get("60.2").unwrap().unwrap().to_string(), "000002");
    assert_eq!(t.batch, 2);
    // A refund of a sale from the settled batch is still allowed.
    assert_eq!(
        t.refund(CREDIT, 5_000, &s2.text(37).unwrap(), &today_mmdd())
            .await
            .rc(),
        "00"
    );

    // Batch 2 does not balance: the terminal thinks it sold 99.00.
    t.sale(DEBIT, "123456", 4_400).await;
    let stan_a = t.stan;
    let r = t.settle(9_900, 1, 5_000, 1).await;
    assert_eq!(&r.digits(48).unwrap()[30..31], "2", "not balanced");
    let up = t
        .upload(2, &[(stan_a, 9_900, "22"), (777_777, 100, "22")], true)
        .await;
    assert_eq!((up.rc().as_str(), up.msg().mti().as_str()), ("00", "0330"));
    let balanced = db(&dir).number(
        "SELECT balanced FROM batches WHERE tid = '10000044' AND batch = 2",
        &[],
    ) != 0;
    let sw_debit = db(&dir).number(
        "SELECT switch_debit_fen FROM batches WHERE tid = '10000044' AND batch = 2",
        &[],
    );
    assert_eq!((balanced, sw_debit), (false, 4_400));
    let uploads = db(&dir).number(
        "SELECT COUNT(*) FROM batch_uploads WHERE tid = '10000044' AND batch = 2",
        &[],
    );
    assert_eq!(uploads, 2);
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn echo_and_proportional_refund_fee() {
    let dir = temp_dir("echo");
    let mut cfg = test_config(&dir);
    cfg.acquirer.refund_fee_policy = switch::config::RefundFeePolicy::Proportional;
    let sw = start(cfg).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000045").await;
    // Echo: answered without sign-on and without MAC.
    let mut b = t.builder("0820");
    b.set(11, "000001")
        .set(41, t.tid.clone())
        .set(42, t.mid.clone())
        .set(60, "00000001301");
    let r = t
        .exchange(&b.encode_to_vec(codec::Dialect::cup_pos()).unwrap())
        .await;
    assert_eq!((r.rc().as_str(), r.msg().mti().as_str()), ("00", "0830"));
    assert!(!r.msg().has(64));

    t.sign_on().await;
    let sale = t.sale(CREDIT, "654321", 100_000).await; // fee 6.00
    let r = t
        .refund(CREDIT, 25_000, &sale.text(37).unwrap(), &today_mmdd())
        .await;
    assert_eq!(r.rc(), "00");
    let fee = db(&dir).number(
        "SELECT fee_fen FROM transactions WHERE rrn = ?1",
        &[r.text(37).unwrap().into()],
    );
    assert_eq!(fee, -150, "a quarter of the fee comes back");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A terminal that signs on again (new TPK and TAK) and sends a request it still owes
/// sends the same request: its PIN block and MAC differ, what it says does not. It gets the
/// first answer, not `94`, and nothing moves twice; other content under the key is `94`.
#[tokio::test]
async fn a_request_sent_again_under_new_keys_is_the_same_request() {
    let dir = temp_dir("rekeyed");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000046").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let before = balance(&mut t, DEBIT, "123456").await;
    let mut b = t.sale_builder(DEBIT, Some("123456"), 4_200);
    let sale = t.seal(&mut b);
    let (stan, batch) = (t.stan, t.batch);
    let first = t.exchange(&sale).await;
    assert_eq!(first.rc(), "00");
    // The reversal owed for it (its answer never reached the terminal, say).
    let reversal = t.reversal_frame(&sale);
    assert_eq!(t.exchange(&reversal).await.rc(), "00");

    // The next morning's sign-on: new keys.
    let old_tak = t.tak.clone();
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_ne!(t.tak, old_tak);
    assert_eq!(t.batch, batch);
    // The sale again, PIN block and MAC under the new keys, same trace number.
    let next = t.stan;
    t.stan = stan - 1;
    let mut b = t.sale_builder(DEBIT, Some("123456"), 4_200);
    let again = t.seal(&mut b);
    t.stan = next;
    assert_ne!(again, sale, "another PIN block and MAC");
    let r = t.exchange(&again).await;
    assert_eq!(r.rc(), "00");
    assert_eq!(r.text(37), first.text(37), "the first answer again");
    assert!(t.reply_mac_ok(&r), "under the new TAK");
    // The reversal again under the new keys: answered alike, applied once.
    let r = t.exchange(&t.reseal(&reversal)).await;
    assert_eq!(r.rc(), "00");
    assert_eq!(
        balance(&mut t, DEBIT, "123456").await,
        before,
        "reversed once"
    );
    // Other content under the same key is still a conflict.
    t.stan = stan - 1;
    let mut b = t.sale_builder(DEBIT, Some("123456"), 4_300);
    let other = t.seal(&mut b);
    t.stan = next + 1;
    assert_eq!(t.exchange(&other).await.rc(), "94");
}
