//! End to end against the real switch: sign-on, sale, void, refund, balance, QR,
//! settlement balanced.

use terminal_fw::operators::{FACTORY_ADMIN, FACTORY_SUPERVISOR, Operators};
use terminal_fw::{Card, Terminal};

use crate::{store, switch, temp_dir};

/// The operators of a test terminal: administrator, supervisor (246802), cashier 01 logged in.
fn cashier_01(s: &mut terminal_fw::Store) {
    let mut ops = Operators::new(s).unwrap();
    ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
    ops.change_password("00", FACTORY_SUPERVISOR, "246802")
        .unwrap();
    ops.add_cashier("135790", "01", "102938").unwrap();
    ops.login_to_transact("01", "102938").unwrap();
}

#[tokio::test]
async fn a_day_against_the_switch() {
    let sw_dir = temp_dir("e2e-switch");
    let sw = switch(&sw_dir).await;
    let dir = temp_dir("e2e-terminal");
    let mut s = store(&dir, "10000401");
    cashier_01(&mut s);
    let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
    assert!(matches!(
        t.sale(
            &Card {
                pan: "6222021000000000017".into(),
                expiry: None
            },
            "123456",
            1,
            "01"
        )
        .await,
        Err(terminal_fw::TxnError::NotSignedOn)
    ));
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let credit = Card {
        pan: "6250941000000009".into(),
        expiry: None,
    };
    let a = t.sale(&debit, "123456", 30_000, "01").await.unwrap();
    assert_eq!(a.rc, "00");
    let c = t.sale(&credit, "654321", 20_000, "01").await.unwrap();
    assert_eq!(c.rc, "00");
    assert_eq!(
        t.qr("280000000000000001", 5_000, None, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    let v = t.sale(&debit, "123456", 1_000, "01").await.unwrap();
    let trace = v.entry.as_ref().unwrap().stan;
    assert_eq!(
        t.void("246802", &debit, trace, "01").await.unwrap().rc,
        "00"
    );
    let mmdd = &c.entry.as_ref().unwrap().when[..4];
    assert_eq!(
        t.refund("246802", &credit, 5_000, &c.rrn, mmdd, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    let b = t.balance(&debit, "123456", "01").await.unwrap();
    assert_eq!(b.balance.as_deref(), Some("1002156C000000970000"));
    let s = t.settle("246802", "01").await.unwrap();
    assert!(s.balanced, "{s:?}");
    assert_eq!(s.sales, (55_000, 3));
    assert_eq!(s.refunds, (5_000, 1));
    // The next batch is open on both sides: no sign-on needed.
    assert_eq!(t.batch().unwrap(), 2);
    let next = t.sale(&debit, "123456", 100, "01").await.unwrap();
    assert_eq!((next.rc.as_str(), next.entry.unwrap().batch), ("00", 2));
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    assert_eq!(t.batch().unwrap(), 2, "sign-on agrees");
    let slip = terminal_fw::receipt::settlement_slip(
        t.tid(),
        t.mid(),
        s.batch,
        s.sales,
        s.refunds,
        s.balanced,
    );
    assert!(
        slip.contains("550.00") && slip.contains("BALANCED"),
        "{slip}"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&sw_dir).unwrap();
}

/// An SM4 (国密) terminal's day: SM4 working keys at sign-on, SM4 PIN blocks and MACs, a
/// void, a balance, a settlement that balances; a wrong PIN still 55.
#[tokio::test]
async fn an_sm4_terminals_day_against_the_switch() {
    let sw_dir = temp_dir("e2e-sm4-switch");
    let sw = switch(&sw_dir).await;
    let dir = temp_dir("e2e-sm4-terminal");
    let mut s = terminal_fw::Store::open(&dir).unwrap();
    s.pbkdf2_iterations = 1_000;
    // A TDES-length TMK is not an SM4 one.
    assert!(
        Terminal::init_with(
            &mut s,
            "10003011",
            "898310048990001",
            "0123456789ABCDEF",
            terminal_fw::cipher::Cipher::Sm4
        )
        .is_err()
    );
    Terminal::init_with(
        &mut s,
        "10003011",
        "898310048990001",
        "0123456789ABCDEFFEDCBA9876543210",
        terminal_fw::cipher::Cipher::Sm4,
    )
    .unwrap();
    cashier_01(&mut s);
    let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
    assert_eq!(t.cipher(), terminal_fw::cipher::Cipher::Sm4);
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let a = t.sale(&debit, "123456", 30_000, "01").await.unwrap();
    assert_eq!(a.rc, "00");
    assert_eq!(t.sale(&debit, "111111", 100, "01").await.unwrap().rc, "55");
    let v = t.sale(&debit, "123456", 1_000, "01").await.unwrap();
    let trace = v.entry.as_ref().unwrap().stan;
    assert_eq!(
        t.void("246802", &debit, trace, "01").await.unwrap().rc,
        "00"
    );
    assert_eq!(t.balance(&debit, "123456", "01").await.unwrap().rc, "00");
    let s = t.settle("246802", "01").await.unwrap();
    assert!(s.balanced, "{s:?}");
    assert_eq!(s.sales, (30_000, 1));
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&sw_dir).unwrap();
}

/// A terminal set up as TDES whose range is SM4 learns SM4 from the sign-on: only SM4 check
/// values hold in its field 62. It then pays under SM4, and keeps SM4 across a restart.
#[tokio::test]
async fn a_terminal_learns_its_cipher_from_the_sign_on() {
    let sw_dir = temp_dir("e2e-learn-switch");
    let sw = switch(&sw_dir).await;
    let dir = temp_dir("e2e-learn-terminal");
    let mut s = store(&dir, "10003021");
    cashier_01(&mut s);
    let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
    assert_eq!(t.cipher(), terminal_fw::cipher::Cipher::Tdes);
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    assert_eq!(t.cipher(), terminal_fw::cipher::Cipher::Sm4);
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    assert_eq!(t.sale(&debit, "123456", 100, "01").await.unwrap().rc, "00");
    drop(t);
    let mut again = terminal_fw::Store::open(&dir).unwrap();
    again.pbkdf2_iterations = 1_000;
    let t = Terminal::open(again, sw.terminal_addr).unwrap();
    assert_eq!(t.cipher(), terminal_fw::cipher::Cipher::Sm4);
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&sw_dir).unwrap();
}

/// A hotel's and a restaurant's day: a hold at check-in, its completion above it at
/// check-out, a hold released, a completion voided and completed again, a tip and an
/// adjustment on a restaurant sale; the settlement balances with what the switch counts;
/// a completion made from another terminal by auth code and date.
#[tokio::test]
async fn a_hotel_and_restaurant_day_against_the_switch() {
    let sw_dir = temp_dir("e2e-hotel-switch");
    let sw = switch(&sw_dir).await;
    let dir = temp_dir("e2e-hotel-terminal");
    let mut s = store(&dir, "10000402");
    cashier_01(&mut s);
    let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    let credit = Card {
        pan: "6250941000000009".into(),
        expiry: None,
    };
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    // Check-in: 800.00 held; check-out: 880.00 (110 %).
    let hold = t.preauth(&credit, "654321", 80_000, "01").await.unwrap();
    assert_eq!(hold.rc, "00");
    assert_eq!(hold.auth_code.len(), 6);
    let r = terminal_fw::receipt::receipt(
        hold.entry.as_ref().unwrap(),
        "HOTEL",
        t.mid(),
        t.tid(),
        terminal_fw::receipt::Copy::Merchant,
        false,
    );
    assert!(
        r.contains("PRE-AUTH 预授权") && r.contains(&hold.auth_code),
        "{r}"
    );
    let found = t.find_preauth(&hold.auth_code).unwrap().unwrap();
    let of = terminal_fw::PreauthRef::of(&found);
    let c = t.complete(&credit, &of, 88_000, "01").await.unwrap();
    assert_eq!(
        (c.rc.as_str(), c.auth_code.as_str()),
        ("00", hold.auth_code.as_str())
    );
    assert_eq!(
        t.complete(&credit, &of, 1_000, "01").await.unwrap().rc,
        "12",
        "one completion"
    );
    // A second hold released; a third completed, voided, completed again.
    let h2 = t.preauth(&debit, "123456", 50_000, "01").await.unwrap();
    let of2 = terminal_fw::PreauthRef::of(h2.entry.as_ref().unwrap());
    assert!(
        t.preauth_void("000000", &debit, &of2, "01").await.is_err(),
        "supervisor"
    );
    assert_eq!(
        t.preauth_void("246802", &debit, &of2, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    let h3 = t.preauth(&debit, "123456", 20_000, "01").await.unwrap();
    let of3 = terminal_fw::PreauthRef::of(h3.entry.as_ref().unwrap());
    let c3 = t.complete(&debit, &of3, 20_000, "01").await.unwrap();
    assert_eq!(c3.rc, "00");
    let trace = c3.entry.as_ref().unwrap().stan;
    assert_eq!(
        t.complete_void("246802", &debit, trace, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    assert_eq!(
        t.complete(&debit, &of3, 19_000, "01").await.unwrap().rc,
        "00",
        "held again after the completion void"
    );
    // Restaurant: a sale, a tip on it, then its amount adjusted.
    let meal = t.sale(&debit, "123456", 10_000, "01").await.unwrap();
    let meal_trace = meal.entry.as_ref().unwrap().stan;
    assert_eq!(
        t.adjust(&debit, meal_trace, 1_500, true, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    assert_eq!(
        t.adjust(&debit, meal_trace, 5_000, true, "01")
            .await
            .unwrap()
            .rc,
        "61",
        "tips over 20 %"
    );
    assert_eq!(
        t.adjust(&debit, meal_trace, 12_000, false, "01")
            .await
            .unwrap()
            .rc,
        "00"
    );
    // The balance shows no hold left; the day settles: 880.00 + 190.00 + 120.00.
    let b = t.balance(&debit, "123456", "01").await.unwrap();
    assert_eq!(b.balance.as_deref(), Some("1002156C000000969000"));
    let s = t.settle("246802", "01").await.unwrap();
    assert!(s.balanced, "{s:?}");
    assert_eq!(s.sales, (88_000 + 19_000 + 12_000, 3));

    // Another terminal of the merchant completes a hold by its auth code and date.
    let h4 = t.preauth(&credit, "654321", 30_000, "01").await.unwrap();
    let mmdd = h4.entry.as_ref().unwrap().when[..4].to_owned();
    let dir2 = temp_dir("e2e-hotel-terminal-2");
    let mut s2 = store(&dir2, "10000403");
    cashier_01(&mut s2);
    let mut t2 = Terminal::open(s2, sw.terminal_addr).unwrap();
    assert_eq!(t2.sign_on("01").await.unwrap().rc, "00");
    assert!(t2.find_preauth(&h4.auth_code).unwrap().is_none());
    let of4 = terminal_fw::PreauthRef {
        auth_code: h4.auth_code.clone(),
        batch: 0,
        stan: 0,
        mmdd,
        amount_fen: None,
    };
    assert_eq!(
        t2.complete(&credit, &of4, 30_000, "01").await.unwrap().rc,
        "00"
    );
    sw.shutdown().await;
    for d in [dir, dir2, sw_dir] {
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// A load-generator (volatile) terminal schedules its working keys at sign-on instead of
/// for every PIN block and MAC: each sign-on's new keys are the ones its next sale uses,
/// whether it signed on before it turned volatile or after.
#[tokio::test]
async fn a_volatile_terminal_uses_the_keys_of_its_latest_sign_on() {
    let sw_dir = temp_dir("volatile-switch");
    let sw = switch(&sw_dir).await;
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let dir = temp_dir("volatile-terminal");

    // Signed on, then volatile: the keys come from the store.
    let mut t = Terminal::open(store(&dir, "10000411"), sw.terminal_addr).unwrap();
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    t.make_volatile().unwrap();
    assert_eq!(t.sale(&debit, "123456", 1, "01").await.unwrap().rc, "00");
    // A new sign-on brings new keys, and the sales after it use them (the switch checks
    // the PIN block and the MAC under them, and the terminal checks the reply's MAC).
    let tak = t.store.get_secret("tak").unwrap().unwrap();
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    assert_ne!(t.store.get_secret("tak").unwrap().unwrap(), tak);
    for _ in 0..3 {
        assert_eq!(t.sale(&debit, "123456", 1, "01").await.unwrap().rc, "00");
    }

    // Volatile before its first sign-on: no keys yet, then the sign-on's.
    let other = temp_dir("volatile-terminal-2");
    let mut t = Terminal::open(store(&other, "10000412"), sw.terminal_addr).unwrap();
    t.make_volatile().unwrap();
    assert!(matches!(
        t.sale(&debit, "123456", 1, "01").await,
        Err(terminal_fw::TxnError::NotSignedOn)
    ));
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    assert_eq!(t.sale(&debit, "123456", 1, "01").await.unwrap().rc, "00");
    sw.shutdown().await;
}
