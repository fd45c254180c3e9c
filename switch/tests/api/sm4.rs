//! SM4 (国密) terminals end to end over TCP: sign-on with SM4 working keys, PIN blocks and
//! MACs under SM4, on-us and forwarded to a TDES issuer (the issuer simulator checks the PIN
//! translated under its TDES ZPK).

use crate::client::{DEBIT, Terminal};
use crate::issuer::{REMOTE, config as issuer_config, lines_up, sim};
use crate::{start, temp_dir, test_config};

#[tokio::test]
async fn an_sm4_terminal_signs_on_pays_and_is_answered_under_sm4() {
    let dir = temp_dir("sm4-onus");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect_sm4(sw.terminal_addr, "10003001").await;
    let signed = t.sign_on().await;
    assert_eq!(signed.rc(), "00");
    assert_eq!(signed.msg().bytes(62).unwrap().len(), 40);
    let sale = t.sale(DEBIT, "123456", 10_000).await;
    assert_eq!(sale.rc(), "00");
    assert!(t.pos.reply_mac_ok(&sale), "the reply's MAC is SM4's");
    assert_eq!(t.sale(DEBIT, "654321", 100).await.rc(), "55", "a wrong PIN");
    let bal = t.balance(DEBIT, "123456").await;
    assert_eq!(bal.rc(), "00");
    assert!(bal.text(54).is_some());
    // A TDES MAC from an SM4 terminal does not verify: A0, sign on again.
    let mut tdes = t.pos.clone_as_tdes();
    let mut b = tdes.sale_builder(DEBIT, None, 100);
    b.set(22, "022");
    let forged = tdes.seal(&mut b);
    assert_eq!(t.exchange(&forged).await.rc(), "A0");
    sw.shutdown().await;
}

#[tokio::test]
async fn an_sm4_terminals_pin_goes_to_a_tdes_issuer_translated() {
    let sim = sim(1).await;
    let dir = temp_dir("sm4-forward");
    let sw = start(issuer_config(&dir, vec![sim.addrs[0].to_string()], |_| {})).await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect_sm4(sw.terminal_addr, "10003002").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // The simulator verifies the PIN it receives under its TDES ZPK.
    assert_eq!(t.sale(REMOTE, "111111", 10_000).await.rc(), "00");
    assert_eq!(t.sale(REMOTE, "222222", 10_000).await.rc(), "55");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 10_000));
    sw.shutdown().await;
}

#[test]
fn an_sm4_range_is_checked_as_one() {
    let dir = temp_dir("sm4-config");
    let base = test_config(&dir);
    let sm4 = base
        .terminals
        .iter()
        .position(|t| t.algorithm == switch::config::TerminalAlgorithm::Sm4)
        .expect("the demo has an SM4 range");
    let mut c = base.clone();
    c.terminals[sm4].tmk_clear = Some("0123456789ABCDEF".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("an SM4 TMK is 32 hex characters"), "{e}");
    let mut c = base.clone();
    c.terminals[sm4].mac = switch::config::TerminalMac::X99;
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("SM4 terminals use the UnionPay POS MAC")
    );
    // Its demo TMK is a published key as an SM4 key too.
    let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
    assert!(hsm_sim::published::lookup_clear(hsm_sim::KeyAlgorithm::Sm4, &key).is_some());
}

/// SM4 zone keys (test data): the issuer simulator and the switch share them.
const SM4_ZPK: &str = "1A2B3C4D5E6F708192A3B4C5D6E7F809";
const SM4_ZAK: &str = "F0E1D2C3B4A5968778695A4B3C2D1E0F";

/// An issuer line of SM4 zone keys: SM4 terminals end to end (scenario 3) and TDES terminals
/// translated to SM4 (scenario 2); a time-out's reversal goes out under the SM4 MAC.
#[tokio::test]
async fn an_sm4_issuer_line_takes_sm4_and_tdes_terminals_pins() {
    let mut cfg = issuer_sim::SimConfig::demo().unwrap();
    cfg.algorithm = Some("sm4".into());
    cfg.zpk_clear = SM4_ZPK.into();
    cfg.zak_clear = SM4_ZAK.into();
    let sim = crate::issuer::sim_on(&cfg, 1).await;
    let dir = temp_dir("sm4-issuer");
    let sw = start(issuer_config(&dir, vec![sim.addrs[0].to_string()], |i| {
        i.algorithm = switch::config::TerminalAlgorithm::Sm4;
        i.zpk_clear = Some(SM4_ZPK.into());
        i.zak_clear = Some(SM4_ZAK.into());
        i.timeout_ms = 300;
        i.saf.retry_secs = 1;
    }))
    .await;
    lines_up(&sw, 1).await;
    let mut sm4 = Terminal::connect_sm4(sw.terminal_addr, "10003003").await;
    assert_eq!(sm4.sign_on().await.rc(), "00");
    assert_eq!(sm4.sale(REMOTE, "111111", 10_000).await.rc(), "00");
    assert_eq!(sm4.sale(REMOTE, "222222", 10_000).await.rc(), "55");
    let mut tdes = Terminal::connect(sw.terminal_addr, "10000003").await;
    assert_eq!(tdes.sign_on().await.rc(), "00");
    assert_eq!(tdes.sale(REMOTE, "111111", 5_000).await.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 15_000));
    // Late: 98, and the reversal reaches the issuer with a MAC it accepts.
    sim.knobs
        .delay_ms
        .store(1_000, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sm4.sale(REMOTE, "111111", 1_000).await.rc(), "98");
    sim.knobs
        .delay_ms
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.reversals_applied() == 0 {
        assert!(
            std::time::Instant::now() < end,
            "the reversal was not applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(sim.bad_macs(), 0, "every MAC verified under the SM4 ZAK");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 15_000));
    sw.shutdown().await;
}

#[test]
fn an_sm4_issuer_is_checked_as_one() {
    let dir = temp_dir("sm4-issuer-config");
    let mut c = crate::issuer::config(&dir, vec!["127.0.0.1:9".into()], |i| {
        i.algorithm = switch::config::TerminalAlgorithm::Sm4;
        i.zpk_clear = Some(SM4_ZPK.into());
        i.zak_clear = Some(SM4_ZAK.into());
    });
    c.validate().unwrap();
    c.issuers[0].zak_clear = Some(format!("{SM4_ZAK}0123456789ABCDEF"));
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("an SM4 key is 32 hex characters"), "{e}");
}
