//! A whole merchant day, checked against the report and DESIGN.md §7's fees; and random
//! sequences of sales, voids, refunds, reversals and retransmissions against a model.

use proptest::prelude::*;

use crate::client::{CREDIT, DEBIT, QR_CODE, Terminal};
use crate::{JournalDb, journal_args, journal_config as test_config, start, temp_dir};

fn today() -> String {
    switch::clock::Timestamp::now().cst_date()
}

/// `switch report ARGS` on the test's journal: its output.
pub fn report(dir: &std::path::Path, config: &switch::Config, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switch"))
        .arg("report")
        .args(args)
        .args(journal_args(dir, config))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The demo's three merchants, one of each fee category: a sale of each card type at each,
/// the fee to the fen in the journal and in the report.
#[tokio::test]
async fn each_merchant_pays_its_category_s_rates() {
    let dir = temp_dir("categories");
    let mut config = test_config(&dir);
    config.acquirer.refund_fee_policy = switch::config::RefundFeePolicy::Proportional;
    let sw = start(config.clone()).await;
    // (terminal, merchant, [debit, credit, QR fee for 1000.00])
    let merchants = [
        ("10000060", "898310048990001", [500, 600, 380]),
        ("10001001", "898310048990101", [0, 0, 0]),
        ("10002001", "898310048990201", [380, 480, 380]),
    ];
    let mut credit_sale = None;
    for (tid, mid, _) in merchants {
        let mut t = Terminal::connect(sw.terminal_addr, tid).await;
        t.mid = mid.into();
        assert_eq!(t.sign_on().await.rc(), "00", "{tid}");
        assert_eq!(t.sale(DEBIT, "123456", 100_000).await.rc(), "00", "{tid}");
        let credit = t.sale(CREDIT, "654321", 100_000).await;
        assert_eq!(credit.rc(), "00", "{tid}");
        assert_eq!(t.qr(QR_CODE, 100_000, None).await.rc(), "00", "{tid}");
        if tid == "10002001" {
            // 6000.00 on debit at 0.38 % is 22.80: capped at 20.00.
            assert_eq!(t.sale(DEBIT, "123456", 600_000).await.rc(), "00");
            // A refund carries its sale's category and rate, and gives back its share of
            // the fee that sale paid: 10 % of 4.80.
            let mmdd = switch::clock::Timestamp::now().cst_fields().1;
            let rrn = credit.text(37).unwrap().to_owned();
            assert_eq!(t.refund(CREDIT, 10_000, &rrn, &mmdd).await.rc(), "00");
            credit_sale = Some(rrn);
        }
    }
    sw.shutdown().await;

    let db = JournalDb::of(&dir);
    for (tid, _, fees) in merchants {
        for (channel, want) in ["debit", "credit", "qr"].into_iter().zip(fees) {
            let fee = db.number(
                "SELECT fee_fen FROM transactions WHERE tid = ?1 AND fee_channel = ?2
                   AND kind IN ('sale', 'qr-sale') AND amount_fen = 100000",
                &[tid.into(), channel.into()],
            );
            assert_eq!(fee, want, "{tid} {channel}");
        }
    }
    let capped = db.number(
        "SELECT fee_fen FROM transactions WHERE tid = '10002001' AND amount_fen = 600000",
        &[],
    );
    assert_eq!(capped, 2_000);
    let refund_fee = db.number(
        "SELECT fee_fen FROM transactions WHERE tid = '10002001' AND kind = 'refund'",
        &[],
    );
    assert_eq!(refund_fee, -48);
    // Every row says what it was charged by; the rates are the category's.
    let rules = db.rows(
        "SELECT tid, kind, fee_category, fee_channel, fee_rate_ppm, fee_cap_fen FROM transactions
         WHERE kind IN ('sale', 'qr-sale', 'refund') ORDER BY tid, kind, fee_channel, amount_fen",
        &[],
    );
    let rules: Vec<String> = rules
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    switch::journal::columns::Value::Text(t) => t.clone(),
                    switch::journal::columns::Value::Int(n) => n.to_string(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        rules.contains(&"10001001 sale public-welfare debit 0 ".to_owned()),
        "{rules:#?}"
    );
    assert!(
        rules.contains(&"10002001 sale preferential debit 3800 2000".to_owned()),
        "{rules:#?}"
    );
    assert!(
        rules.contains(&"10002001 refund preferential credit 4800 ".to_owned()),
        "{rules:#?}"
    );
    assert!(
        rules.contains(&"10000060 qr-sale standard qr 3800 ".to_owned()),
        "{rules:#?}"
    );
    assert_eq!(rules.len(), 11, "{rules:#?}");
    assert!(credit_sale.is_some());

    let csv = report(
        &dir,
        &config,
        &["settlement", "--date", &today(), "--format", "csv"],
    );
    for want in [
        // 5.00 + 6.00 + 3.80
        "898310048990001,10000060,3,3000.00,0.00,0.00,14.80,2985.20,standard,credit 0.60% / debit 0.50% cap 20.00 / qr 0.38%",
        "898310048990101,10001001,3,3000.00,0.00,0.00,0.00,3000.00,public-welfare,credit 0.00% / debit 0.00% / qr 0.00%",
        // 3.80 + 4.80 + 3.80 + 20.00 (capped) - 0.48 (the refund's share); 100.00 refunded
        "898310048990201,10002001,4,9000.00,0.00,100.00,31.92,8868.08,preferential,credit 0.48% / debit 0.38% cap 20.00 / qr 0.38%",
    ] {
        assert!(csv.lines().any(|l| l == want), "{want}\n{csv}");
    }
    let table = report(&dir, &config, &["settlement", "--date", &today()]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("10001001") && l.contains("public-welfare") && l.contains("0.00%")),
        "{table}"
    );
}

#[tokio::test]
async fn a_merchant_day() {
    let dir = temp_dir("day");
    let config = test_config(&dir);
    let sw = start(config.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000050").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // DESIGN.md §7: debit 1.33 → 0.01; debit 5000.00 → 20.00 (cap); credit 1000.00 → 6.00;
    // QR 1000.00 → 3.80.
    assert_eq!(t.sale(DEBIT, "123456", 133).await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 500_000).await.rc(), "00");
    let credit = t.sale(CREDIT, "654321", 100_000).await;
    assert_eq!(credit.rc(), "00");
    assert_eq!(t.qr(QR_CODE, 100_000, None).await.rc(), "00");
    // A sale voided, and a sale reversed.
    assert_eq!(t.sale(DEBIT, "123456", 10_000).await.rc(), "00");
    let stan = t.stan;
    assert_eq!(t.void(DEBIT, 10_000, stan).await.rc(), "00");
    let mut b = t.sale_builder(CREDIT, Some("654321"), 20_000);
    let reversed = t.seal(&mut b);
    assert_eq!(t.exchange(&reversed).await.rc(), "00");
    assert_eq!(t.reverse(&reversed).await.rc(), "00");
    // Settlement balances: 4 sales that stand, 7001.33.
    let s = t.settle(133 + 500_000 + 100_000 + 100_000, 4, 0, 0).await;
    assert_eq!(&s.digits(48).unwrap()[30..31], "1");
    // After settlement, in the next batch: a refund of the credit sale.
    assert_eq!(t.sign_on().await.rc(), "00");
    let mmdd = switch::clock::Timestamp::now().cst_fields().1;
    assert_eq!(
        t.refund(CREDIT, 10_000, &credit.text(37).unwrap(), &mmdd)
            .await
            .rc(),
        "00"
    );
    sw.shutdown().await;

    let csv = report(
        &dir,
        &config,
        &["settlement", "--date", &today(), "--format", "csv"],
    );
    // gross 7101.33 (the voided sale counts, the reversed one does not); voids 100.00;
    // refunds 100.00; fees 0.01 + 20.00 + 6.00 + 3.80 = 29.81; net 6871.52.
    let want = "898310048990001,10000050,4,7101.33,100.00,100.00,29.81,6871.52,standard,credit 0.60% / debit 0.50% cap 20.00 / qr 0.38%";
    assert!(csv.lines().any(|l| l == want), "{csv}");
    // The same totals straight from the journal.
    let fees = JournalDb::of(&dir).number(
        "SELECT CAST(SUM(fee_fen) AS BIGINT) FROM transactions WHERE response_code = '00' AND voided = 0 AND reversed = 0",
        &[],
    );
    assert_eq!(fees, 1 + 2_000 + 600 + 380);
    let table = report(
        &dir,
        &config,
        &["batch", "--tid", "10000050", "--batch", "1"],
    );
    assert!(table.contains("settled: balanced"), "{table}");
    assert!(
        table.contains("voided") && table.contains("reversed") && table.contains("refunded 100.00"),
        "{table}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Sale(u64),
    Void(usize),
    Refund(usize, u64),
    Reverse(usize),
    Retransmit(usize),
    PreAuth(u64),
    Complete(usize, u64),
    ReleaseHold(usize),
    ReversePreAuth(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..60_000).prop_map(Op::Sale),
        2 => any::<usize>().prop_map(Op::Void),
        2 => (any::<usize>(), 1u64..=100).prop_map(|(i, p)| Op::Refund(i, p)),
        2 => any::<usize>().prop_map(Op::Reverse),
        1 => any::<usize>().prop_map(Op::Retransmit),
        2 => (1u64..400_000).prop_map(Op::PreAuth),
        2 => (any::<usize>(), 50u64..=125).prop_map(|(i, p)| Op::Complete(i, p)),
        1 => any::<usize>().prop_map(Op::ReleaseHold),
        1 => any::<usize>().prop_map(Op::ReversePreAuth),
    ]
}

/// What a pre-authorisation should be, in the model.
struct Hold {
    frame: Vec<u8>,
    stan: u32,
    /// Its auth code, when approved.
    auth: Option<String>,
    amount: u64,
    /// Completed for this much (a completion is a sale that stands).
    completed: Option<u64>,
    voided: bool,
    reversed: bool,
}

impl Hold {
    fn holds(&self) -> bool {
        self.auth.is_some() && self.completed.is_none() && !self.voided && !self.reversed
    }
}

/// What a sale should be, in the model.
struct Sale {
    frame: Vec<u8>,
    stan: u32,
    rrn: Option<String>,
    rc: String,
    amount: u64,
    voided: bool,
    reversed: bool,
    refunded: u64,
}

async fn run_sequence(ops: Vec<Op>) {
    let dir = temp_dir("prop");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000060").await;
    t.sign_on().await;
    let mut balance: i64 = 1_000_000;
    let mut sales: Vec<Sale> = Vec::new();
    let mut holds: Vec<Hold> = Vec::new();
    // What open pre-authorisations hold: never below zero, and not available.
    let mut held: i64 = 0;
    let (mut refunds_fen, mut refunds_n) = (0u64, 0u32);
    let mmdd = switch::clock::Timestamp::now().cst_fields().1;
    for op in ops {
        match op {
            Op::Sale(amount) => {
                let mut b = t.sale_builder(DEBIT, Some("123456"), amount);
                let frame = t.seal(&mut b);
                let r = t.exchange(&frame).await;
                let want = if amount as i64 <= balance - held {
                    "00"
                } else {
                    "51"
                };
                assert_eq!(r.rc(), want, "sale {amount}");
                if want == "00" {
                    balance -= amount as i64;
                }
                sales.push(Sale {
                    frame,
                    stan: t.stan,
                    rrn: r.text(37).filter(|_| want == "00"),
                    rc: r.rc(),
                    amount,
                    voided: false,
                    reversed: false,
                    refunded: 0,
                });
            }
            Op::Void(i) if !sales.is_empty() => {
                let n = sales.len();
                let s = &mut sales[i % n];
                let r = t.void(DEBIT, s.amount, s.stan).await;
                let want = match (&s.rrn, s.voided || s.reversed || s.refunded > 0) {
                    (None, _) => "25",
                    (Some(_), true) => "12",
                    (Some(_), false) => "00",
                };
                assert_eq!(r.rc(), want, "void of trace {}", s.stan);
                if want == "00" {
                    s.voided = true;
                    balance += s.amount as i64;
                }
            }
            Op::Refund(i, pct) if !sales.is_empty() => {
                let n = sales.len();
                let s = &mut sales[i % n];
                let Some(rrn) = s.rrn.clone() else { continue };
                let amount = (s.amount * pct / 100).max(1);
                let r = t.refund(DEBIT, amount, &rrn, &mmdd).await;
                let want = if s.voided || s.reversed {
                    "12"
                } else if s.refunded + amount > s.amount {
                    "61"
                } else {
                    "00"
                };
                assert_eq!(r.rc(), want, "refund {amount} of {}", s.amount);
                if want == "00" {
                    s.refunded += amount;
                    balance += amount as i64;
                    refunds_fen += amount;
                    refunds_n += 1;
                }
            }
            Op::Reverse(i) if !sales.is_empty() => {
                let n = sales.len();
                let s = &mut sales[i % n];
                let frame = s.frame.clone();
                assert_eq!(t.reverse(&frame).await.rc(), "00");
                if s.rrn.is_some() && !s.reversed {
                    s.reversed = true;
                    if !s.voided {
                        balance += (s.amount - s.refunded) as i64;
                    }
                }
            }
            Op::Retransmit(i) if !sales.is_empty() => {
                let s = &sales[i % sales.len()];
                let frame = s.frame.clone();
                let r = t.exchange(&frame).await;
                assert_eq!(r.rc(), s.rc, "a retransmission gets the first answer");
                assert_eq!(r.text(37), s.rrn.clone().or(r.text(37)));
            }
            Op::PreAuth(amount) => {
                let mut b = t.preauth_builder(DEBIT, "123456", amount);
                let frame = t.seal(&mut b);
                let r = t.exchange(&frame).await;
                let want = if amount as i64 <= balance - held {
                    "00"
                } else {
                    "51"
                };
                assert_eq!(r.rc(), want, "pre-authorisation {amount}");
                if want == "00" {
                    held += amount as i64;
                }
                holds.push(Hold {
                    frame,
                    stan: t.stan,
                    auth: r.text(38).filter(|_| want == "00"),
                    amount,
                    completed: None,
                    voided: false,
                    reversed: false,
                });
            }
            Op::Complete(i, pct) if !holds.is_empty() => {
                let n = holds.len();
                let h = &mut holds[i % n];
                let Some(auth) = h.auth.clone() else { continue };
                let amount = (h.amount * pct / 100).max(1);
                let batch = t.batch;
                let b = t.completion_builder(DEBIT, amount, &auth, (batch, h.stan, &mmdd), false);
                let r = t.send_sealed(b).await;
                let extra = amount as i64 - h.amount as i64;
                let want = if !h.holds() {
                    "12"
                } else if amount * 100 > h.amount * 115 {
                    "61"
                } else if extra > 0 && extra > balance - held {
                    "51"
                } else {
                    "00"
                };
                assert_eq!(r.rc(), want, "completion {amount} of {}", h.amount);
                if want == "00" {
                    h.completed = Some(amount);
                    held -= h.amount as i64;
                    balance -= amount as i64;
                }
            }
            Op::ReleaseHold(i) if !holds.is_empty() => {
                let n = holds.len();
                let h = &mut holds[i % n];
                let Some(auth) = h.auth.clone() else { continue };
                let batch = t.batch;
                let b = t.preauth_void_builder(DEBIT, h.amount, &auth, (batch, h.stan, &mmdd));
                let r = t.send_sealed(b).await;
                let want = if h.holds() { "00" } else { "12" };
                assert_eq!(r.rc(), want, "pre-authorisation void");
                if want == "00" {
                    h.voided = true;
                    held -= h.amount as i64;
                }
            }
            Op::ReversePreAuth(i) if !holds.is_empty() => {
                let n = holds.len();
                let h = &mut holds[i % n];
                let frame = h.frame.clone();
                assert_eq!(t.reverse(&frame).await.rc(), "00");
                if h.auth.is_some() && !h.reversed {
                    if h.holds() {
                        held -= h.amount as i64;
                    }
                    h.reversed = true;
                }
            }
            _ => {}
        }
        assert!(held >= 0, "holds never negative");
    }
    // Whatever happened, no sale gave back more than it took.
    for s in &sales {
        let given_back = if s.voided || s.reversed {
            s.amount
        } else {
            s.refunded
        };
        assert!(given_back <= s.amount);
    }
    let taken: i64 = sales
        .iter()
        .filter(|s| s.rrn.is_some())
        .map(|s| {
            if s.voided || s.reversed {
                0
            } else {
                (s.amount - s.refunded) as i64
            }
        })
        .sum();
    let completed: i64 = holds.iter().filter_map(|h| h.completed).sum::<u64>() as i64;
    let still_held: i64 = holds
        .iter()
        .filter(|h| h.holds())
        .map(|h| h.amount as i64)
        .sum();
    assert_eq!(held, still_held);
    assert_eq!(
        balance,
        1_000_000 - taken - completed,
        "model balance is what the standing sales and completions still hold"
    );
    let b = t.balance(DEBIT, "123456").await;
    assert_eq!(
        b.text(54).unwrap()[8..].parse::<i64>().unwrap(),
        balance - held,
        "available: the balance less the holds"
    );
    let id = sw.switch().account_id(DEBIT).to_hex();
    assert_eq!(
        JournalDb::of(&dir).number(
            "SELECT preauth_fen FROM accounts WHERE pan_hash = ?1",
            &[id.into()]
        ),
        held,
        "the journal's holds"
    );
    let standing: Vec<&Sale> = sales
        .iter()
        .filter(|s| s.rrn.is_some() && !s.voided && !s.reversed)
        .collect();
    let completions: Vec<u64> = holds.iter().filter_map(|h| h.completed).collect();
    let debit: u64 =
        standing.iter().map(|s| s.amount).sum::<u64>() + completions.iter().sum::<u64>();
    let count = (standing.len() + completions.len()) as u32;
    let s = t.settle(debit, count, refunds_fen, refunds_n).await;
    assert_eq!(
        &s.digits(48).unwrap()[30..31],
        "1",
        "settlement totals match the model"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn lifecycle_sequences_never_move_money_twice(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_sequence(ops));
    }
}
