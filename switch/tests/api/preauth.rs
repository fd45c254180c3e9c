//! Pre-authorisation, its void, completion, completion void, lapsed holds and adjustments,
//! over TCP: every rule and code of `pipeline::lifecycle::preauth` and `adjust`.
//!
//! These run on either journal: `SWITCH_TEST_JOURNAL=postgres` runs them on PostgreSQL.

use switch::journal::columns::Value;

use crate::client::{CREDIT, DEBIT, Terminal};
use crate::lifecycle::today_mmdd;
use crate::{JournalDb, journal_config as test_config, start, temp_dir};

/// Available by field 54 of a balance inquiry, fen.
async fn available(t: &mut Terminal, pan: &str, pin: &str) -> i64 {
    let r = t.balance(pan, pin).await;
    assert_eq!(r.rc(), "00");
    r.text(54).unwrap()[8..].parse().unwrap()
}

/// A pre-authorisation's (completed, expired, voided, reversed) flags by its RRN.
fn flags(dir: &std::path::Path, rrn: &str) -> (bool, bool, bool, bool) {
    let r = &JournalDb::of(dir).rows(
        "SELECT completed, expired, voided, reversed FROM transactions WHERE rrn = ?1",
        &[rrn.into()],
    )[0];
    let b = |i: usize| match r[i] {
        Value::Int(n) => n != 0,
        _ => panic!("{r:?}"),
    };
    (b(0), b(1), b(2), b(3))
}

/// What the journal says a card's pre-authorisations hold, fen.
fn held(dir: &std::path::Path, sw: &switch::Running, pan: &str) -> i64 {
    let id = sw.switch().account_id(pan).to_hex();
    JournalDb::of(dir).number(
        "SELECT preauth_fen FROM accounts WHERE pan_hash = ?1",
        &[id.into()],
    )
}

struct Made {
    frame: Vec<u8>,
    stan: u32,
    rrn: String,
    auth: String,
}

async fn preauth(t: &mut Terminal, pan: &str, pin: &str, amount: u64) -> Result<Made, String> {
    let mut b = t.preauth_builder(pan, pin, amount);
    let frame = t.seal(&mut b);
    let r = t.exchange(&frame).await;
    assert_eq!(r.msg().mti().as_u16(), 110);
    if r.rc() != "00" {
        return Err(r.rc());
    }
    assert!(t.reply_mac_ok(&r));
    Ok(Made {
        frame,
        stan: t.stan,
        rrn: r.text(37).unwrap(),
        auth: r.text(38).unwrap(),
    })
}

async fn complete(t: &mut Terminal, pan: &str, amount: u64, p: &Made) -> (String, Option<Made>) {
    let batch = t.batch;
    let mut b = t.completion_builder(pan, amount, &p.auth, (batch, p.stan, &today_mmdd()), false);
    let frame = t.seal(&mut b);
    let r = t.exchange(&frame).await;
    let made = (r.rc() == "00").then(|| Made {
        frame,
        stan: t.stan,
        rrn: r.text(37).unwrap(),
        auth: r.text(38).unwrap(),
    });
    (r.rc(), made)
}

#[tokio::test]
async fn a_hold_then_its_completion_within_the_tolerance() {
    let dir = temp_dir("preauth-complete");
    let config = test_config(&dir);
    let sw = start(config.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000070").await;
    t.sign_on().await;
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000);

    // The PIN is checked as for a sale; too much is 51; nothing is taken by a hold.
    assert_eq!(
        preauth(&mut t, DEBIT, "000000", 50_000)
            .await
            .err()
            .unwrap(),
        "55"
    );
    assert_eq!(
        preauth(&mut t, DEBIT, "123456", 1_000_001)
            .await
            .err()
            .unwrap(),
        "51"
    );
    let p = preauth(&mut t, DEBIT, "123456", 50_000).await.unwrap();
    assert_eq!(
        available(&mut t, DEBIT, "123456").await,
        950_000,
        "the hold is not available"
    );
    assert_eq!(held(&dir, &sw, DEBIT), 50_000);
    assert_eq!(
        JournalDb::of(&dir).number(
            "SELECT fee_fen FROM transactions WHERE rrn = ?1",
            &[p.rrn.clone().into()]
        ),
        0,
        "no fee on a hold"
    );
    // The hold is what a sale can no longer spend.
    assert_eq!(t.sale(DEBIT, "123456", 960_000).await.rc(), "51");

    // Over 115 % is 61; a wrong auth code or card finds nothing (25).
    assert_eq!(complete(&mut t, DEBIT, 57_501, &p).await.0, "61");
    let wrong = Made {
        auth: "999999".into(),
        ..Made {
            frame: vec![],
            stan: p.stan,
            rrn: p.rrn.clone(),
            auth: String::new(),
        }
    };
    assert_eq!(complete(&mut t, DEBIT, 50_000, &wrong).await.0, "25");
    assert_eq!(complete(&mut t, CREDIT, 50_000, &p).await.0, "25");
    // 115 % exactly: the debit, the hold released, the sale's fee (0.5 %), the hold's code.
    let (rc, c) = complete(&mut t, DEBIT, 57_500, &p).await;
    assert_eq!(rc, "00");
    let c = c.unwrap();
    assert_eq!(
        c.auth, p.auth,
        "a completion answers with its pre-authorisation's code"
    );
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 57_500);
    assert_eq!(held(&dir, &sw, DEBIT), 0);
    assert_eq!(flags(&dir, &p.rrn), (true, false, false, false));
    let db = JournalDb::of(&dir);
    assert_eq!(
        db.number(
            "SELECT fee_fen FROM transactions WHERE rrn = ?1",
            &[c.rrn.clone().into()]
        ),
        288
    );
    assert_eq!(
        db.text(
            "SELECT original_rrn FROM transactions WHERE rrn = ?1",
            &[c.rrn.clone().into()]
        ),
        p.rrn
    );
    // One completion per pre-authorisation.
    assert_eq!(complete(&mut t, DEBIT, 1_000, &p).await.0, "12");
    // The same completion again is a retransmission: the first answer, nothing moved.
    let again = t.exchange(&c.frame).await;
    assert_eq!(
        (again.rc(), again.text(37).unwrap()),
        ("00".into(), c.rrn.clone())
    );
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 57_500);

    // Settlement counts the completion as a sale, the hold nowhere.
    let s = t.settle(57_500, 1, 0, 0).await;
    assert_eq!(&s.digits(48).unwrap()[30..31], "1", "{:?}", s.digits(48));
    sw.shutdown().await;
    // So does the day's settlement report: one sale, 575.00 gross, 2.88 fee.
    let today = switch::clock::Timestamp::now().cst_date();
    let csv = crate::merchant_day::report(
        &dir,
        &config,
        &["settlement", "--date", &today, "--format", "csv"],
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("898310048990001,10000070,1,575.00,0.00,0.00,2.88,572.12,")),
        "{csv}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn credit_holds_the_limit_and_the_offline_advice_completes() {
    let dir = temp_dir("preauth-credit");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000071").await;
    t.sign_on().await;
    let p = preauth(&mut t, CREDIT, "654321", 1_000_000).await.unwrap();
    assert_eq!(
        available(&mut t, CREDIT, "654321").await,
        5_000_000 - 1_000_000
    );
    // Made on another terminal of the merchant: 61.1 and 61.2 are zeros, the card, the
    // auth code and the date name it. The offline advice (0220, 60.1 = 24).
    let mut other = Terminal::connect(sw.terminal_addr, "10000072").await;
    other.sign_on().await;
    let mut b = other.completion_builder(CREDIT, 800_000, &p.auth, (0, 0, &today_mmdd()), true);
    let r = other.send_sealed(b.clone()).await;
    assert_eq!((r.msg().mti().as_u16(), r.rc()), (230, "00".into()));
    assert_eq!(
        available(&mut t, CREDIT, "654321").await,
        5_000_000 - 800_000
    );
    // Credit: 0.6 %.
    let db = JournalDb::of(&dir);
    assert_eq!(
        db.number(
            "SELECT fee_fen FROM transactions WHERE rrn = ?1",
            &[r.text(37).unwrap().into()]
        ),
        4_800
    );
    // Another date in 61.3 names nothing.
    b = other.completion_builder(CREDIT, 1_000, &p.auth, (0, 0, "0230"), true);
    assert_eq!(other.send_sealed(b).await.rc(), "25");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn voids_release_and_restore_holds() {
    let dir = temp_dir("preauth-voids");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000073").await;
    t.sign_on().await;
    let mmdd = today_mmdd();
    let batch = t.batch;

    // A pre-authorisation void: the amount must be the hold's; then the hold goes.
    let p = preauth(&mut t, DEBIT, "123456", 30_000).await.unwrap();
    let b = t.preauth_void_builder(DEBIT, 29_999, &p.auth, (batch, p.stan, &mmdd));
    assert_eq!(t.send_sealed(b).await.rc(), "64");
    let b = t.preauth_void_builder(DEBIT, 30_000, "000001", (batch, p.stan, &mmdd));
    assert_eq!(t.send_sealed(b).await.rc(), "25");
    let b = t.preauth_void_builder(DEBIT, 30_000, &p.auth, (batch, p.stan, &mmdd));
    let v = t.send_sealed(b).await;
    assert_eq!((v.msg().mti().as_u16(), v.rc()), (110, "00".into()));
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000);
    assert_eq!(flags(&dir, &p.rrn), (false, false, true, false));
    let b = t.preauth_void_builder(DEBIT, 30_000, &p.auth, (batch, p.stan, &mmdd));
    assert_eq!(t.send_sealed(b).await.rc(), "12", "voided already");
    assert_eq!(
        complete(&mut t, DEBIT, 30_000, &p).await.0,
        "12",
        "a voided hold cannot complete"
    );

    // A completion void: the money and fee back, the hold again; then it completes again.
    let p = preauth(&mut t, DEBIT, "123456", 40_000).await.unwrap();
    let c = complete(&mut t, DEBIT, 45_000, &p).await.1.unwrap();
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 45_000);
    let b = t.completion_void_builder(DEBIT, 44_000, c.stan);
    assert_eq!(t.send_sealed(b).await.rc(), "64");
    // A sale's void does not void a completion, nor a completion void a sale.
    let b = t.void_builder(DEBIT, 45_000, c.stan, None);
    assert_eq!(t.send_sealed(b).await.rc(), "12");
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
    let sale_stan = t.stan;
    let b = t.completion_void_builder(DEBIT, 100, sale_stan);
    assert_eq!(t.send_sealed(b).await.rc(), "12");
    let b = t.completion_void_builder(DEBIT, 45_000, c.stan);
    let cv = t.send_sealed(b).await;
    assert_eq!(cv.rc(), "00");
    assert!(t.reply_mac_ok(&cv));
    assert_eq!(
        available(&mut t, DEBIT, "123456").await,
        1_000_000 - 100 - 40_000,
        "held again"
    );
    assert_eq!(
        flags(&dir, &p.rrn),
        (false, false, false, false),
        "open again"
    );
    assert_eq!(held(&dir, &sw, DEBIT), 40_000);
    let c2 = complete(&mut t, DEBIT, 40_000, &p).await.1.unwrap();
    assert_eq!(
        available(&mut t, DEBIT, "123456").await,
        1_000_000 - 100 - 40_000
    );
    assert_eq!(held(&dir, &sw, DEBIT), 0);
    // Settlement: the sale and the second completion stand.
    let s = t.settle(100 + 40_000, 2, 0, 0).await;
    assert_eq!(&s.digits(48).unwrap()[30..31], "1");
    assert!(!c2.rrn.is_empty());
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reversals_of_each_kind() {
    let dir = temp_dir("preauth-reversals");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000074").await;
    t.sign_on().await;
    let mmdd = today_mmdd();
    let batch = t.batch;

    // A pre-authorisation reversed: the hold goes; again changes nothing.
    let p = preauth(&mut t, DEBIT, "123456", 10_000).await.unwrap();
    for _ in 0..2 {
        let r = t.reverse(&p.frame).await;
        assert_eq!((r.msg().mti().as_u16(), r.rc()), (410, "00".into()));
        assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000);
    }
    assert_eq!(flags(&dir, &p.rrn), (false, false, false, true));
    assert_eq!(complete(&mut t, DEBIT, 10_000, &p).await.0, "12");

    // A pre-authorisation reversed before it came: the late one is refused (12).
    let mut b = t.preauth_builder(DEBIT, "123456", 5_000);
    let early = t.seal(&mut b);
    assert_eq!(t.reverse(&early).await.rc(), "00");
    assert_eq!(t.exchange(&early).await.rc(), "12");
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000);

    // Its void reversed: the hold is back.
    let p = preauth(&mut t, DEBIT, "123456", 20_000).await.unwrap();
    let mut b = t.preauth_void_builder(DEBIT, 20_000, &p.auth, (batch, p.stan, &mmdd));
    let void = t.seal(&mut b);
    assert_eq!(t.exchange(&void).await.rc(), "00");
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000);
    for _ in 0..2 {
        assert_eq!(t.reverse(&void).await.rc(), "00");
        assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 20_000);
    }
    assert_eq!(flags(&dir, &p.rrn), (false, false, false, false));

    // Its completion reversed: the money back, the hold back.
    let c = complete(&mut t, DEBIT, 22_000, &p).await.1.unwrap();
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 22_000);
    for _ in 0..2 {
        assert_eq!(t.reverse(&c.frame).await.rc(), "00");
        assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 20_000);
    }
    assert_eq!(flags(&dir, &p.rrn), (false, false, false, false));
    assert_eq!(held(&dir, &sw, DEBIT), 20_000);

    // A completion void reversed: the completion stands again, the hold goes again.
    let c = complete(&mut t, DEBIT, 21_000, &p).await.1.unwrap();
    let mut b = t.completion_void_builder(DEBIT, 21_000, c.stan);
    let cv = t.seal(&mut b);
    assert_eq!(t.exchange(&cv).await.rc(), "00");
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 20_000);
    for _ in 0..2 {
        assert_eq!(t.reverse(&cv).await.rc(), "00");
        assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 21_000);
    }
    assert_eq!(flags(&dir, &p.rrn), (true, false, false, false));
    assert_eq!(held(&dir, &sw, DEBIT), 0);
    let s = t.settle(21_000, 1, 0, 0).await;
    assert_eq!(&s.digits(48).unwrap()[30..31], "1");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn uncompleted_holds_lapse_after_the_configured_days() {
    let dir = temp_dir("preauth-expiry");
    let mut config = test_config(&dir);
    config.acquirer.preauth_expiry_days = 3;
    let sw = start(config.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000075").await;
    t.sign_on().await;
    let p = preauth(&mut t, DEBIT, "123456", 70_000).await.unwrap();
    let kept = preauth(&mut t, DEBIT, "123456", 1_000).await.unwrap();
    let c = complete(&mut t, DEBIT, 1_000, &kept).await;
    assert_eq!(c.0, "00");
    let now = switch::clock::Timestamp::now();
    let day = 86_400_000;
    // On its third day after, it still holds.
    let l = sw
        .switch()
        .expire_preauths(now.plus_ms(3 * day))
        .await
        .unwrap();
    assert_eq!(l.count, 0);
    assert_eq!(
        available(&mut t, DEBIT, "123456").await,
        1_000_000 - 1_000 - 70_000
    );
    // On the fourth, it lapses: once.
    let l = sw
        .switch()
        .expire_preauths(now.plus_ms(4 * day))
        .await
        .unwrap();
    assert_eq!((l.count, l.amount_fen), (1, 70_000));
    let l = sw
        .switch()
        .expire_preauths(now.plus_ms(5 * day))
        .await
        .unwrap();
    assert_eq!(l.count, 0, "a lapsed hold lapses once");
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 1_000);
    assert_eq!(flags(&dir, &p.rrn), (false, true, false, false));
    assert_eq!(
        flags(&dir, &kept.rrn),
        (true, false, false, false),
        "completed ones stay"
    );
    assert_eq!(
        complete(&mut t, DEBIT, 70_000, &p).await.0,
        "12",
        "a lapsed hold cannot complete"
    );
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_preauths_expired_total 1"),
        "{metrics}"
    );
    // A restart reads the holds from the journal.
    sw.shutdown().await;
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000075").await;
    t.sign_on().await;
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 1_000);
    sw.shutdown().await;
    // The report says where each stands.
    let r = crate::merchant_day::report(&dir, &config, &["preauths"]);
    assert!(
        r.contains("expired: 1, 700.00") && r.contains("completed: 1, 10.00"),
        "{r}"
    );
    assert!(
        r.lines()
            .any(|l| l.starts_with("expired") && l.contains(&p.rrn)),
        "{r}"
    );
    let r = crate::merchant_day::report(&dir, &config, &["preauths", "--state", "holding"]);
    assert_eq!(r.lines().count(), 1, "none holding: {r}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn adjustments_and_tips_change_the_sale_and_the_totals() {
    let dir = temp_dir("adjust");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000076").await;
    t.sign_on().await;
    assert_eq!(t.sale(DEBIT, "123456", 10_000).await.rc(), "00");
    let sale = t.stan;
    let rrn = JournalDb::of(&dir).text(
        "SELECT rrn FROM transactions WHERE stan = ?1 AND kind = 'sale'",
        &[i64::from(sale).into()],
    );
    // A tip within 20 % of the sale; over it is 61.
    let b = t.adjust_builder(DEBIT, 2_001, sale, true);
    assert_eq!(t.send_sealed(b).await.rc(), "61");
    let b = t.adjust_builder(DEBIT, 1_500, sale, true);
    let r = t.send_sealed(b).await;
    assert_eq!((r.msg().mti().as_u16(), r.rc()), (230, "00".into()));
    assert!(t.reply_mac_ok(&r));
    let b = t.adjust_builder(DEBIT, 501, sale, true);
    assert_eq!(t.send_sealed(b).await.rc(), "61", "the tips add up");
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 11_500);
    let db = JournalDb::of(&dir);
    let row = |db: &JournalDb| {
        let r = &db.rows(
            "SELECT amount_fen, fee_fen, tip_fen FROM transactions WHERE rrn = ?1",
            &[rrn.clone().into()],
        )[0];
        r.iter()
            .map(|v| match v {
                Value::Int(n) => *n,
                _ => panic!(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(row(&db), [11_500, 58, 1_500]);
    // A settlement adjustment: a new amount, the fee again, the difference moved.
    let b = t.adjust_builder(DEBIT, 9_000, sale, false);
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert_eq!(row(&db), [9_000, 45, 1_500]);
    assert_eq!(available(&mut t, DEBIT, "123456").await, 1_000_000 - 9_000);
    // Not below its tips; not of another card, nor a trace that is no sale.
    let b = t.adjust_builder(DEBIT, 1_000, sale, false);
    assert_eq!(t.send_sealed(b).await.rc(), "13");
    let b = t.adjust_builder(CREDIT, 9_000, sale, false);
    assert_eq!(t.send_sealed(b).await.rc(), "25");
    let b = t.adjust_builder(DEBIT, 9_000, 999_999, false);
    assert_eq!(t.send_sealed(b).await.rc(), "25");
    // More than is available is 51.
    let b = t.adjust_builder(DEBIT, 2_000_000, sale, false);
    assert_eq!(t.send_sealed(b).await.rc(), "51");
    // The void takes the adjusted amount back.
    let b = t.void_builder(DEBIT, 10_000, sale, None);
    assert_eq!(t.send_sealed(b).await.rc(), "64");
    assert_eq!(t.sale(DEBIT, "123456", 3_000).await.rc(), "00");
    // A voided sale cannot be adjusted.
    let other = t.stan;
    assert_eq!(t.void(DEBIT, 3_000, other).await.rc(), "00");
    let b = t.adjust_builder(DEBIT, 300, other, true);
    assert_eq!(t.send_sealed(b).await.rc(), "12");
    // Settlement totals read the sale as adjusted.
    let s = t.settle(9_000, 1, 0, 0).await;
    assert_eq!(&s.digits(48).unwrap()[30..31], "1");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
