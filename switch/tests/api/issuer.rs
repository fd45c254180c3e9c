//! Forwarding to a remote issuer: the switch and the issuer simulator over real TCP.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use issuer_sim::{IssuerSim, SimConfig};
use switch::Config;
use switch::config::IssuerConfig;
use tokio::net::TcpListener;

use crate::client::Terminal;
use crate::{spawn_switch, start, temp_dir, test_config};

/// A card of the simulated issuer (test data), PIN 111111, 20,000.00 CNY.
pub const REMOTE: &str = "6217001000000000011";
const REMOTE_LOW: &str = "6217001000000000029";

pub async fn sim_on(cfg: &SimConfig, n: usize) -> IssuerSim {
    let mut ls = Vec::new();
    for _ in 0..n {
        ls.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    IssuerSim::start(cfg, ls).await.unwrap()
}

pub async fn sim(n: usize) -> IssuerSim {
    sim_on(&SimConfig::demo().unwrap(), n).await
}

/// The test configuration with the demo issuer pointed at `lines`.
pub fn config(
    dir: &std::path::Path,
    lines: Vec<String>,
    f: impl FnOnce(&mut IssuerConfig),
) -> Config {
    let demo = Config::demo().unwrap();
    let mut c = test_config(dir);
    let mut issuer = demo.issuers[0].clone();
    issuer.lines = lines;
    issuer.reconnect_min_ms = 50;
    issuer.reconnect_max_ms = 300;
    issuer.timeout_ms = 2_000;
    f(&mut issuer);
    c.issuers = vec![issuer];
    c.routes
        .extend(demo.routes.into_iter().filter(|r| r.route == "demo-issuer"));
    c.validate().unwrap();
    c
}

pub(crate) async fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn lines_up(sw: &switch::Running, n: usize) {
    let issuer = sw.switch().issuers().get(0).unwrap().clone();
    eventually("issuer lines up", 10, || {
        issuer.lines().iter().filter(|l| l.is_up()).count() == n
    })
    .await;
}

/// Waits until the switch whose metrics are at `metrics` (another process) has an issuer
/// line up: until then its sales answer `91` without reaching the issuer.
async fn line_up_in(metrics: std::net::SocketAddr) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let m = crate::e2e::reqwest_metrics(metrics).await;
        if m.lines()
            .any(|l| l.starts_with("switch_issuer_line_up{") && l.ends_with(" 1"))
        {
            return;
        }
        assert!(Instant::now() < end, "no issuer line up: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A switch with one line to a fresh simulator, and a signed-on terminal.
struct Rig {
    sim: IssuerSim,
    dir: std::path::PathBuf,
    sw: switch::Running,
    t: Terminal,
}

async fn rig(name: &str, f: impl FnOnce(&mut IssuerConfig)) -> Rig {
    let sim = sim(1).await;
    let dir = temp_dir(name);
    let sw = start(config(&dir, vec![sim.addrs[0].to_string()], f)).await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    Rig { sim, dir, sw, t }
}

fn journal(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("journal.db")).unwrap()
}

pub(crate) fn saf_states(dir: &std::path::Path) -> Vec<(String, String, u32)> {
    let c = journal(dir);
    let mut s = c
        .prepare("SELECT kind, state, tries FROM saf_queue ORDER BY rowid")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn sale_balance_void_refund_and_reversal_through_a_remote_issuer() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-e2e", |_| {}).await;

    // Approved by the issuer: the PIN block was translated TPK → ZPK (the simulator checks
    // it against its own PVV), and MACs verified both ways.
    let s = t.sale(REMOTE, "111111", 10_000).await;
    assert_eq!(s.rc(), "00");
    assert!(t.reply_mac_ok(&s));
    let auth = s.text(38).unwrap();
    assert!(auth.starts_with("10"), "auth code from the issuer: {auth}");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 10_000));
    assert_eq!(sim.bad_macs(), 0);
    assert_eq!(sim.received("0200"), 1);
    let rrn = s.text(37).unwrap();
    let (issuer, upstream, fee, masked): (String, String, i64, String) = journal(&dir)
        .query_row(
            "SELECT issuer, upstream, fee_fen, masked_pan FROM transactions WHERE rrn = ?1",
            [&rrn],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(issuer, "demo-issuer");
    assert!(upstream.starts_with("0200:"), "{upstream}");
    assert_eq!(fee, 50, "debit MDR 0.5% of 100.00");
    assert_eq!(masked, "621700*********0011");

    // A wrong PIN is the issuer's decline.
    assert_eq!(t.sale(REMOTE, "999999", 10_000).await.rc(), "55");
    // Insufficient funds at the issuer.
    assert_eq!(t.sale(REMOTE_LOW, "111111", 5_000).await.rc(), "51");

    // Balance from the issuer's field 54.
    let b = t.balance(REMOTE, "111111").await;
    assert_eq!(b.rc(), "00");
    assert_eq!(b.text(54).as_deref(), Some("1002156C000001990000"));

    // Void the sale: forwarded with 90 naming it; the issuer gives the money back.
    let v = t.void(REMOTE, 10_000, 1 + 1).await;
    assert_eq!(v.rc(), "00", "void of a forwarded sale");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    assert_eq!(t.void(REMOTE, 10_000, 2).await.rc(), "12", "voided already");

    // Refund part of a second sale.
    let s2 = t.sale(REMOTE, "111111", 30_000).await;
    assert_eq!(s2.rc(), "00");
    let mmdd = s2.digits(13).unwrap();
    let r = t.refund(REMOTE, 10_000, &s2.text(37).unwrap(), &mmdd).await;
    assert_eq!(r.rc(), "00", "refund forwarded");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 20_000));

    // A terminal's reversal of a third sale reaches the issuer through the queue.
    let mut b = t.sale_builder(REMOTE, Some("111111"), 5_000);
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 25_000));
    assert_eq!(t.reverse(&frame).await.rc(), "00");
    eventually("reversal applied at the issuer", 10, || {
        sim.reversals_applied() == 1
    })
    .await;
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 20_000));
    eventually("reversal acknowledged in the journal", 10, || {
        saf_states(&dir)
            .iter()
            .any(|(k, s, _)| k == "reversal" && s == "acknowledged")
    })
    .await;
    assert_eq!(sim.bad_macs(), 0);

    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains(&format!(
            "switch_issuer_line_up{{issuer=\"demo-issuer\",line=\"{}\"}} 1",
            sim.addrs[0]
        )),
        "{metrics}"
    );
    assert!(metrics.contains("switch_issuer_round_trip_seconds_count{issuer=\"demo-issuer\"}"));
    sw.shutdown().await;

    // The day per issuer, for reconciling with it: 8 forwarded (3 sales that approved, 2
    // declined, a balance inquiry, a void, a refund); what stands is the second sale less its
    // refund; the third sale was reversed.
    let date: String = journal(&dir)
        .query_row(
            "SELECT local_date FROM transactions WHERE rrn = ?1",
            [&rrn],
            |r| r.get(0),
        )
        .unwrap();
    let db = dir.join("journal.db");
    let (ok, out, err) = crate::cli::switch(&[
        "report",
        "issuers",
        "--date",
        &date,
        "--journal",
        db.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let line: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("demo-issuer"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        line,
        [
            "demo-issuer",
            "8",
            "6",
            "200.00",
            "2",
            "0",
            "1",
            "0",
            "0.00"
        ],
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["demo-issuer", "reversal", "acknowledged", "1"]),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["demo-issuer", "reversal", "cancelled", "7"]),
        "{out}"
    );
}

#[tokio::test]
async fn iso87_ascii_lines_work_the_same() {
    let mut cfg = SimConfig::demo().unwrap();
    cfg.dialect = "iso87-ascii".into();
    let sim = sim_on(&cfg, 1).await;
    let dir = temp_dir("issuer-ascii");
    let sw = start(config(&dir, vec![sim.addrs[0].to_string()], |i| {
        i.dialect = "iso87-ascii".into();
    }))
    .await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;
    assert_eq!(t.sale(REMOTE, "111111", 1_234).await.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 1_234));
    assert_eq!(t.sale(REMOTE, "000000", 1_234).await.rc(), "55");
    sw.shutdown().await;
}

#[tokio::test]
async fn slow_issuer_gets_98_and_exactly_one_reversal_across_a_restart() {
    let sim = sim(1).await;
    let dir = temp_dir("issuer-slow");
    let cfg = config(&dir, vec![sim.addrs[0].to_string()], |i| {
        i.timeout_ms = 300;
        i.saf.retry_secs = 1;
    });
    let sw = start(cfg.clone()).await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;

    // The issuer approves, but after the time-out.
    sim.knobs.delay_ms.store(1_000, Ordering::Relaxed);
    let started = Instant::now();
    let s = t.sale(REMOTE, "111111", 20_000).await;
    assert_eq!(s.rc(), "98");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at the time-out"
    );
    assert_eq!(s.text(38), None, "no auth code on a time-out");
    // The journal keeps the issuer's reference of the timed-out request, for reconciliation.
    let (issuer, upstream): (String, String) = journal(&dir)
        .query_row(
            "SELECT issuer, upstream FROM transactions WHERE rrn = ?1",
            [s.text(37).unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(issuer, "demo-issuer");
    assert!(upstream.starts_with("0200:"), "{upstream}");
    // The reversal goes out; its acknowledgement is late too, so it stays pending.
    eventually("0420 at the issuer", 10, || sim.received("0420") == 1).await;
    eventually("late approval counted", 10, || {
        sim.balance(REMOTE) == Some(2_000_000)
    })
    .await;
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_issuer_timeouts_total{issuer=\"demo-issuer\"} 2")
            || metrics.contains("switch_issuer_timeouts_total{issuer=\"demo-issuer\"} 1"),
        "{metrics}"
    );
    eventually("unacknowledged try journalled", 10, || {
        saf_states(&dir)
            .iter()
            .any(|(k, s, n)| k == "reversal" && s == "pending" && *n >= 1)
    })
    .await;
    sw.shutdown().await;

    // The issuer is quick again; the restarted switch resends (0421) from its journal.
    sim.knobs.delay_ms.store(0, Ordering::Relaxed);
    let sw = start(cfg).await;
    eventually("reversal acknowledged after the restart", 15, || {
        saf_states(&dir)
            .iter()
            .any(|(k, s, _)| k == "reversal" && s == "acknowledged")
    })
    .await;
    assert!(sim.received("0421") >= 1, "the repeat is an 0421");
    assert_eq!(sim.reversals_applied(), 1, "applied exactly once");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000), "the sale is undone");
    let late: Vec<_> = crate::e2e::reqwest_metrics(sw.metrics_addr)
        .await
        .lines()
        .filter(|l| l.starts_with("switch_issuer_saf_total"))
        .map(str::to_owned)
        .collect();
    assert!(
        late.iter()
            .any(|l| l.contains("acknowledged") && l.ends_with(" 1")),
        "{late:?}"
    );
    // Nothing in the journal files shows the card number, although the queue holds it.
    sw.shutdown().await;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(REMOTE.len()).any(|w| w == REMOTE.as_bytes()));
        let packed = hex::decode("6217001000000000").unwrap();
        assert!(!bytes.windows(packed.len()).any(|w| w == packed.as_slice()));
    }
}

#[tokio::test]
async fn a_dropped_line_fails_over_and_all_lines_down_answers_91() {
    let sim = sim(2).await;
    let dir = temp_dir("issuer-failover");
    let sw = start(config(
        &dir,
        sim.addrs.iter().map(ToString::to_string).collect(),
        |_| {},
    ))
    .await;
    lines_up(&sw, 2).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;
    for _ in 0..4 {
        assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    }
    // Line 0's issuer end goes away: the requests go to line 1.
    sim.stop_listener(0);
    lines_up(&sw, 1).await;
    for _ in 0..4 {
        assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    }
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 800));
    // Both gone, no stand-in: 91 at once.
    sim.stop_listener(1);
    lines_up(&sw, 0).await;
    let started = Instant::now();
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "91");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(t.balance(REMOTE, "111111").await.rc(), "91");
    sw.shutdown().await;
}

#[tokio::test]
async fn stand_in_approves_within_limits_and_advises_the_issuer_when_it_returns() {
    // A port with nothing listening yet.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let dir = temp_dir("issuer-stip");
    let cfg = config(&dir, vec![addr.to_string()], |i| {
        i.stand_in.enabled = true;
        i.stand_in.max_txn_fen = 50_000;
        i.stand_in.max_card_day_fen = 100_000;
    });
    let sw = start(cfg.clone()).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;
    let a = t.sale(REMOTE, "111111", 40_000).await;
    assert_eq!(a.rc(), "00");
    let auth = a.text(38).unwrap();
    assert!(
        auth.starts_with('S') && auth.len() == 6,
        "stand-in auth code {auth}"
    );
    assert_eq!(
        t.sale(REMOTE, "111111", 60_000).await.rc(),
        "91",
        "over the sale limit"
    );
    assert_eq!(t.sale(REMOTE, "111111", 40_000).await.rc(), "00");
    // A restart does not give the card its daily limit back.
    let stan = t.stan;
    drop(t);
    sw.shutdown().await;
    let sw = start(cfg).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.stan = stan;
    t.sign_on().await;
    assert_eq!(
        t.sale(REMOTE, "111111", 30_000).await.rc(),
        "91",
        "over the card's daily limit"
    );
    assert_eq!(t.sale(REMOTE, "111111", 20_000).await.rc(), "00");
    let n: i64 = journal(&dir)
        .query_row(
            "SELECT COUNT(*) FROM transactions WHERE stand_in = 1 AND response_code = '00'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3);

    // The issuer comes back: the advices reach it and are booked once.
    let sim = IssuerSim::start(
        &SimConfig::demo().unwrap(),
        vec![TcpListener::bind(addr).await.unwrap()],
    )
    .await
    .unwrap();
    eventually("advices acknowledged", 15, || {
        saf_states(&dir)
            .iter()
            .filter(|(k, s, _)| k == "advice" && s == "acknowledged")
            .count()
            == 3
    })
    .await;
    assert_eq!(sim.received("0220"), 3);
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 100_000));
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("switch_issuer_stand_in_approvals_total{issuer=\"demo-issuer\"} 1"));
    sw.shutdown().await;
}

#[tokio::test]
async fn garbage_or_a_closed_connection_from_the_issuer_never_hangs_a_terminal() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-garbage", |i| {
        i.timeout_ms = 1_500;
        i.saf.retry_secs = 1;
    })
    .await;

    for knob in [&sim.knobs.garbage, &sim.knobs.close] {
        knob.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let r = t.sale(REMOTE, "111111", 1_000).await;
        assert_eq!(r.rc(), "98", "no usable answer");
        assert!(started.elapsed() < Duration::from_secs(3), "no hang");
        knob.store(false, Ordering::Relaxed);
        lines_up(&sw, 1).await;
        assert_eq!(
            t.sale(REMOTE, "111111", 1_000).await.rc(),
            "00",
            "recovered"
        );
    }
    // The garbage-answered sale was booked by the issuer and is reversed; the closed one
    // never was, and its reversal is acknowledged without effect.
    eventually("both reversals acknowledged", 15, || {
        saf_states(&dir)
            .iter()
            .filter(|(k, s, _)| k == "reversal" && s == "acknowledged")
            .count()
            == 2
    })
    .await;
    assert_eq!(sim.reversals_applied(), 1);
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 2_000));
    sw.shutdown().await;
}

#[tokio::test]
async fn idle_links_exchange_at_most_one_echo_per_interval() {
    let mut cfg = SimConfig::demo().unwrap();
    cfg.echo_interval_secs = Some(1);
    let sim = sim_on(&cfg, 2).await;
    let dir = temp_dir("issuer-echo");
    let sw = start(config(
        &dir,
        sim.addrs.iter().map(ToString::to_string).collect(),
        |i| i.echo_interval_secs = 1,
    ))
    .await;
    lines_up(&sw, 2).await;
    let secs = 4;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let ours: u32 = sim.received("0800");
    let theirs = sim.echoes_sent();
    // Both ends echo after 1 s of silence, and any frame resets both ends' clocks: per
    // link, at most one echo per interval in total (plus one for the partial interval).
    let max = 2 * (secs as u32 + 1);
    assert!(
        ours + theirs <= max,
        "{ours} + {theirs} echoes in {secs} s on 2 links"
    );
    assert!(ours + theirs >= 2, "idle links are checked");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("switch_issuer_echoes_total"));
    // The links are still up: echoes were answered.
    lines_up(&sw, 2).await;
    sw.shutdown().await;
}

#[tokio::test]
async fn issuer_configuration_is_checked() {
    let dir = temp_dir("issuer-config");
    let mut c = config(&dir, vec!["127.0.0.1:1".into()], |_| {});
    let r = c
        .routes
        .iter()
        .position(|r| r.route == "demo-issuer")
        .unwrap();
    c.routes[r].route = "nobody".into();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains(&format!("routes[{r}].route")), "{e}");

    let bad = |f: &dyn Fn(&mut IssuerConfig)| {
        let mut c = config(&dir, vec!["127.0.0.1:1".into()], |_| {});
        f(&mut c.issuers[0]);
        c.validate().unwrap_err().to_string()
    };
    assert!(bad(&|i| i.lines = vec!["no-port".into()]).contains("issuers[0].lines[0]"));
    assert!(bad(&|i| i.dialect = "iso93".into()).contains("issuers[0].dialect"));
    assert!(bad(&|i| i.zak_sealed = Some("00".into())).contains("zak_sealed"));
    assert!(bad(&|i| i.zpk_clear = Some("0123".into())).contains("zpk_clear"));
    assert!(bad(&|i| i.timeout_ms = 0).contains("timeout_ms"));
    assert!(bad(&|i| i.match_fields = vec![64]).contains("match_fields"));
    assert!(
        bad(&|i| {
            i.stand_in.enabled = true;
            i.stand_in.max_txn_fen = 0;
        })
        .contains("stand_in")
    );
}

#[tokio::test]
async fn time_outs_in_a_row_open_the_circuit_breaker_for_a_while() {
    let Rig {
        sim,
        dir: _,
        sw,
        mut t,
    } = rig("issuer-breaker", |i| {
        i.timeout_ms = 1_000;
        i.breaker_timeouts = 2;
        i.breaker_open_ms = 1_500;
        i.saf.retry_secs = 60;
    })
    .await;
    sim.knobs.delay_ms.store(3_000, Ordering::Relaxed);
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "98");
    // The queued reversal's own time-out may count too; two in a row open the breaker.
    let second = t.sale(REMOTE, "111111", 100).await.rc();
    assert!(second == "98" || second == "91", "{second}");
    let sent = sim.received("0200");
    let started = Instant::now();
    assert_eq!(
        t.sale(REMOTE, "111111", 100).await.rc(),
        "91",
        "breaker open"
    );
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "answered without waiting out the 1 s time-out"
    );
    assert_eq!(sim.received("0200"), sent, "nothing sent while open");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("event=\"breaker_opened\""), "{metrics}");
    // Closed again after the open period; the issuer is quick again.
    sim.knobs.delay_ms.store(0, Ordering::Relaxed);
    let issuer = sw.switch().issuers().get(0).unwrap().clone();
    eventually("breaker closes", 10, || !issuer.breaker_open()).await;
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    sw.shutdown().await;
}

#[tokio::test]
async fn a_switch_killed_while_waiting_for_the_issuer_reverses_after_restart() {
    let sim = sim(1).await;
    let dir = temp_dir("issuer-crash");
    let config = config(&dir, vec![sim.addrs[0].to_string()], |i| {
        i.timeout_ms = 10_000;
    });
    let path = dir.join("switch.toml");
    let mut first = spawn_switch(&config, &path, "info");
    line_up_in(first.metrics).await;
    let mut t = Terminal::connect(first.addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // The issuer books the sale and is slow to say so; the switch dies meanwhile.
    sim.knobs.delay_ms.store(5_000, Ordering::Relaxed);
    let mut b = t.sale_builder(REMOTE, Some("111111"), 77_700);
    let frame = t.seal(&mut b);
    t.send_raw(&frame).await;
    eventually("sale at the issuer", 10, || sim.received("0200") == 1).await;
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 77_700));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert_eq!(
        saf_states(&dir),
        vec![("reversal".to_owned(), "armed".to_owned(), 0)],
        "the reversal was armed before the sale left"
    );

    // Restarted: the armed reversal goes out, once.
    sim.knobs.delay_ms.store(0, Ordering::Relaxed);
    let mut second = spawn_switch(&config, &path, "info");
    eventually("reversal acknowledged", 15, || {
        saf_states(&dir) == vec![("reversal".to_owned(), "acknowledged".to_owned(), 1)]
    })
    .await;
    assert_eq!(sim.reversals_applied(), 1);
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    let _ = second.child.kill();
    let _ = second.child.wait();
}

/// A reversal armed by a switch that died, taken over after the restart and not answered
/// the first time, is sent again (0421) until the issuer answers: taken over once, it is
/// pending, and a later send does not try to take it over again (which found it taken and
/// dropped it from the queue unsent).
#[tokio::test]
async fn a_reversal_taken_over_after_a_restart_is_sent_again_until_answered() {
    let dir = temp_dir("issuer-crash-retry");
    let issuer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lines = vec![issuer.local_addr().unwrap().to_string()];
    let before = config(&dir, lines.clone(), |i| {
        i.timeout_ms = 10_000;
        i.echo_interval_secs = 600;
    });
    let path = dir.join("switch.toml");
    let mut first = spawn_switch(&before, &path, "info");
    let mut line = crate::client::framed(issuer.accept().await.unwrap().0);
    line_up_in(first.metrics).await;
    let mut t = Terminal::connect(first.addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // The sale reaches the issuer; the switch dies before any answer.
    let mut b = t.sale_builder(REMOTE, Some("111111"), 77_700);
    let frame = t.seal(&mut b);
    t.send_raw(&frame).await;
    assert_eq!(
        by_hand::mti(&by_hand::read(&mut line).await).as_str(),
        "0200"
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    drop(line);
    assert_eq!(
        saf_states(&dir),
        vec![("reversal".to_owned(), "armed".to_owned(), 0)]
    );

    // Restarted: the armed reversal is taken over and sent; its first send goes unanswered.
    let again = config(&dir, lines, |i| {
        i.timeout_ms = 300;
        i.echo_interval_secs = 600;
        i.saf.retry_secs = 1;
    });
    let mut second = spawn_switch(&again, &path, "info");
    let mut line = crate::client::framed(issuer.accept().await.unwrap().0);
    let first_send = tokio::time::timeout(Duration::from_secs(10), by_hand::read(&mut line))
        .await
        .expect("the reversal after the restart");
    assert_eq!(by_hand::mti(&first_send).as_str(), "0420");
    eventually("the unanswered send recorded", 10, || {
        saf_states(&dir) == vec![("reversal".to_owned(), "pending".to_owned(), 1)]
    })
    .await;
    // Sent again after its back-off, and answered this time.
    let repeat = tokio::time::timeout(Duration::from_secs(10), by_hand::read(&mut line))
        .await
        .expect("the repeat");
    assert_eq!(by_hand::mti(&repeat).as_str(), "0421");
    by_hand::write(&mut line, by_hand::reply(&repeat, "00", None)).await;
    eventually("the reversal acknowledged", 10, || {
        saf_states(&dir) == vec![("reversal".to_owned(), "acknowledged".to_owned(), 2)]
    })
    .await;
    let _ = second.child.kill();
    let _ = second.child.wait();
}

#[tokio::test]
async fn a_second_request_with_the_same_matching_key_is_refused_not_crossed() {
    // Matching on the terminal alone: two sales of one terminal share a key.
    let Rig {
        sim,
        dir: _,
        sw,
        mut t,
    } = rig("issuer-match", |i| {
        i.match_fields = vec![41];
    })
    .await;
    sim.knobs.delay_ms.store(500, Ordering::Relaxed);
    let mut a = t.sale_builder(REMOTE, Some("111111"), 100);
    let a = t.seal(&mut a);
    let mut b = t.sale_builder(REMOTE, Some("111111"), 200);
    let b = t.seal(&mut b);
    t.send_raw(&a).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.send_raw(&b).await;
    let first = t.read_reply().await.unwrap();
    let second = t.read_reply().await.unwrap();
    // The second is refused at once, the first gets its own answer.
    assert_eq!(first.digits(4).as_deref(), Some("000000000200"));
    assert_eq!(first.rc(), "96");
    assert_eq!(second.digits(4).as_deref(), Some("000000000100"));
    assert_eq!(second.rc(), "00");
    assert_eq!(sim.received("0200"), 1);
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("event=\"duplicate_key\""));
    sw.shutdown().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_issuer_answers_in_flight() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-shutdown", |_| {}).await;
    sim.knobs.delay_ms.store(400, Ordering::Relaxed);
    let mut b = t.sale_builder(REMOTE, Some("111111"), 4_200);
    let frame = t.seal(&mut b);
    t.send_raw(&frame).await;
    eventually("sale at the issuer", 5, || sim.received("0200") == 1).await;
    let stopping = tokio::spawn(sw.shutdown());
    let reply = t
        .read_reply()
        .await
        .expect("an answer before the switch stops");
    assert_eq!(reply.rc(), "00");
    stopping.await.unwrap();
    assert_eq!(sim.reversals_applied(), 0);
    assert_eq!(
        saf_states(&dir),
        vec![("reversal".to_owned(), "cancelled".to_owned(), 0)]
    );
}

#[tokio::test]
async fn a_slow_request_does_not_hold_up_the_next_on_its_connection() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-next-on-connection", |_| {}).await;
    // The sale is the only request in flight: the connection's own task serves it, and
    // the issuer takes 600 ms to answer.
    sim.knobs.delay_ms.store(600, Ordering::Relaxed);
    let mut sale = t.sale_builder(REMOTE, Some("111111"), 4_300);
    let sale = t.seal(&mut sale);
    t.send_raw(&sale).await;
    eventually("sale at the issuer", 5, || sim.received("0200") == 1).await;
    // A balance inquiry of an on-us card on the same connection is answered first.
    let started = Instant::now();
    let mut balance = t.balance_builder(crate::client::DEBIT, "123456");
    let balance = t.seal(&mut balance);
    t.send_raw(&balance).await;
    let first = t.read_reply().await.unwrap();
    assert_eq!(
        (first.digits(3).as_deref(), first.rc().as_str()),
        (Some("310000"), "00")
    );
    assert!(started.elapsed() < Duration::from_millis(450));
    let second = t.read_reply().await.unwrap();
    assert_eq!(
        (second.digits(3).as_deref(), second.rc().as_str()),
        (Some("000000"), "00")
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An issuer written out by hand for the cases the simulator does not play: it reads frames
/// and answers what the test tells it to, MACed with the demo ZAK.
pub(crate) mod by_hand {
    use codec::{Dialect, MessageBuilder, Mti, decode};
    use futures_util::SinkExt;
    use hsm_sim::primitives::mac::{Padding, retail_mac};

    use crate::client::Line;

    pub const ZAK: &str = "0E1F2C3D4A5B68798697A4B5C2D3E0F1"; // demo zone MAC key (test key)

    pub async fn read(s: &mut Line) -> Vec<u8> {
        crate::client::read_frame(s).await.unwrap()
    }

    pub async fn write(s: &mut Line, b: MessageBuilder<'_>) {
        write_with(s, b, ZAK).await;
    }

    /// As [`write`], MACed with `zak`.
    pub async fn write_with(s: &mut Line, mut b: MessageBuilder<'_>, zak: &str) {
        let key = hex::decode(zak).unwrap();
        let mut out = Vec::new();
        b.encode_with_mac(Dialect::iso87_binary(), &mut out, |d| {
            Some(retail_mac(&key, d, Padding::Zeros).unwrap())
        })
        .unwrap();
        s.send(out).await.unwrap();
    }

    /// The reply to `request` with these changes.
    pub fn reply(request: &[u8], rc: &str, stan: Option<&str>) -> MessageBuilder<'static> {
        let m = decode(Dialect::iso87_binary(), request).unwrap();
        let mut b = MessageBuilder::new(m.mti().response());
        for n in [2u8, 3, 4, 7, 11, 32, 37, 41, 42, 49] {
            if let Some(f) = m.field(n) {
                b.set(
                    n,
                    codec::FieldInput::Wire {
                        data: std::borrow::Cow::Owned(f.wire().to_vec()),
                        units: f.units(),
                    },
                );
            }
        }
        if let Some(s) = stan {
            b.set(11, s.to_owned());
        }
        b.set(38, "777777").set(39, rc.to_owned());
        b
    }

    pub fn mti(frame: &[u8]) -> Mti {
        decode(Dialect::iso87_binary(), frame).unwrap().mti()
    }

    /// An approval (0210, `00`) for trace `stan`, which no request of the switch's had.
    pub fn approval_for_nothing(stan: &str) -> MessageBuilder<'static> {
        let mut b = MessageBuilder::new(Mti::parse("0210").unwrap());
        b.set(3, "000000".to_owned())
            .set(4, "000000003300".to_owned())
            .set(7, "1205101010".to_owned())
            .set(11, stan.to_owned())
            .set(32, "01020000".to_owned())
            .set(37, "000000900000".to_owned())
            .set(38, "777777".to_owned())
            .set(39, "00".to_owned())
            .set(41, "10000001".to_owned());
        b
    }
}

/// A switch whose one issuer line goes to a listener the test holds.
async fn against_hand(
    name: &str,
    f: impl FnOnce(&mut IssuerConfig),
) -> (TcpListener, std::path::PathBuf, switch::Running) {
    let issuer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = temp_dir(name);
    let lines = vec![issuer.local_addr().unwrap().to_string()];
    let sw = start(config(&dir, lines, f)).await;
    (issuer, dir, sw)
}

/// As [`against_hand`], the line accepted and a terminal signed on.
async fn hand_rig(
    name: &str,
) -> (
    crate::client::Line,
    std::path::PathBuf,
    switch::Running,
    Terminal,
) {
    let (issuer, dir, sw) = against_hand(name, |_| {}).await;
    let line = crate::client::framed(issuer.accept().await.unwrap().0);
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    (line, dir, sw, t)
}

#[tokio::test]
async fn an_approval_for_no_request_is_reversed_when_its_mac_verifies() {
    let (mut line, dir, sw, mut t) = hand_rig("issuer-unknown").await;
    let sale = tokio::spawn(async move {
        let r = t.sale(REMOTE, "111111", 3_300).await;
        (t, r)
    });
    let request = by_hand::read(&mut line).await;
    assert_eq!(by_hand::mti(&request).as_str(), "0200");
    let m = codec::decode(codec::Dialect::iso87_binary(), &request).unwrap();
    let stan = m.digits(11).unwrap().to_string();
    let time = m.digits(7).unwrap().to_string();
    // First an approval nobody asked for under another key (anyone's: not reversed), then
    // one under the issuer's key (another STAN), then the real answer.
    let forged = format!("{:06}", (stan.parse::<u32>().unwrap() + 400) % 999_999);
    by_hand::write_with(
        &mut line,
        by_hand::reply(&request, "00", Some(&forged)),
        "00112233445566778899AABBCCDDEEFF",
    )
    .await;
    let unknown = format!("{:06}", (stan.parse::<u32>().unwrap() + 500) % 999_999);
    by_hand::write(&mut line, by_hand::reply(&request, "00", Some(&unknown))).await;
    by_hand::write(&mut line, by_hand::reply(&request, "00", None)).await;
    let (_t, r) = sale.await.unwrap();
    assert_eq!(r.rc(), "00");
    assert_eq!(r.text(38).as_deref(), Some("777777"));
    // The unknown approval is reversed: an 0420 whose 90 names it.
    let reversal = by_hand::read(&mut line).await;
    assert_eq!(by_hand::mti(&reversal).as_str(), "0420");
    let rv = codec::decode(codec::Dialect::iso87_binary(), &reversal).unwrap();
    assert_eq!(
        rv.digits(90).unwrap().to_string()[..20],
        format!("0200{unknown}{time}")
    );
    assert!(rv.field(52).is_none() && rv.field(35).is_none());
    by_hand::write(&mut line, by_hand::reply(&reversal, "00", None)).await;
    eventually("the reversal acknowledged", 10, || {
        saf_states(&dir)
            .iter()
            .any(|(k, s, _)| k == "reversal" && s == "acknowledged")
    })
    .await;
    // The forged one left no reversal: besides the sale's own, armed before it went out and
    // cancelled by its answer, the queue holds the one for the MACed approval.
    let reversals: Vec<_> = saf_states(&dir)
        .into_iter()
        .filter(|(k, s, _)| k == "reversal" && s != "cancelled")
        .collect();
    assert_eq!(reversals.len(), 1, "{reversals:?}");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("switch_issuer_late_replies_total{issuer=\"demo-issuer\"} 2"));
    assert_eq!(
        crate::metrics::value(
            &metrics,
            "switch_issuer_events_total{issuer=\"demo-issuer\",event=\"bad_mac\"}"
        ),
        Some(1.0)
    );
    sw.shutdown().await;
}

/// A queued reversal that cannot go out because the issuer's places are all taken is not
/// a try: it goes, as a first send (0420), once a place is free.
#[tokio::test]
async fn a_reversal_held_back_by_a_busy_issuer_goes_as_a_first_send() {
    let (issuer, dir, sw) = against_hand("issuer-saf-busy", |i| {
        i.max_in_flight = 1;
        i.timeout_ms = 10_000;
        i.echo_interval_secs = 600;
        i.saf.retry_secs = 1;
    })
    .await;
    let mut line = crate::client::framed(issuer.accept().await.unwrap().0);
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // A sale the issuer holds: the one place is taken.
    let sale = tokio::spawn(async move { t.sale(REMOTE, "111111", 3_300).await.rc() });
    let request = by_hand::read(&mut line).await;
    assert_eq!(by_hand::mti(&request).as_str(), "0200");
    let m = codec::decode(codec::Dialect::iso87_binary(), &request).unwrap();
    let stan = m.digits(11).unwrap().to_string();
    let time = m.digits(7).unwrap().to_string();
    // An authentic approval for no request: its reversal is journalled, and finds no place.
    let unknown = format!("{:06}", (stan.parse::<u32>().unwrap() + 500) % 999_999);
    by_hand::write(&mut line, by_hand::reply(&request, "00", Some(&unknown))).await;
    let busy = "switch_issuer_events_total{issuer=\"demo-issuer\",event=\"too_many_waiting\"}";
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let m = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
        if crate::metrics::value(&m, busy).unwrap_or(0.0) >= 2.0 {
            break;
        }
        assert!(Instant::now() < end, "the reversal never tried: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = |dir: &std::path::Path| -> Vec<(String, String, u32)> {
        saf_states(dir)
            .into_iter()
            .filter(|(_, s, _)| s != "armed" && s != "cancelled")
            .collect()
    };
    assert_eq!(
        waiting(&dir),
        vec![("reversal".to_owned(), "pending".to_owned(), 0)]
    );
    // The sale answered, the place is free: the reversal goes as 0420, not as a repeat.
    by_hand::write(&mut line, by_hand::reply(&request, "00", None)).await;
    assert_eq!(sale.await.unwrap(), "00");
    let reversal = tokio::time::timeout(Duration::from_secs(10), by_hand::read(&mut line))
        .await
        .expect("the reversal once a place is free");
    assert_eq!(by_hand::mti(&reversal).as_str(), "0420");
    let rv = codec::decode(codec::Dialect::iso87_binary(), &reversal).unwrap();
    assert_eq!(
        rv.digits(90).unwrap().to_string()[..20],
        format!("0200{unknown}{time}")
    );
    by_hand::write(&mut line, by_hand::reply(&reversal, "00", None)).await;
    eventually("the reversal acknowledged after one send", 10, || {
        waiting(&dir) == vec![("reversal".to_owned(), "acknowledged".to_owned(), 1)]
    })
    .await;
    sw.shutdown().await;
}

#[tokio::test]
async fn an_unanswered_echo_drops_the_line_and_it_reconnects() {
    use tokio::io::AsyncReadExt;
    let (issuer, _dir, sw) = against_hand("issuer-echo-lost", |i| {
        i.echo_interval_secs = 1;
        i.timeout_ms = 300;
    })
    .await;
    // The issuer takes the echo and never answers it.
    let mut first = crate::client::framed(issuer.accept().await.unwrap().0);
    let echo = by_hand::read(&mut first).await;
    assert_eq!(by_hand::mti(&echo).as_str(), "0800");
    let m = codec::decode(codec::Dialect::iso87_binary(), &echo).unwrap();
    assert_eq!(m.digits(70).unwrap().to_string(), "301");
    // The switch gives up on that connection and dials again.
    let started = Instant::now();
    let mut second = crate::client::framed(
        tokio::time::timeout(Duration::from_secs(5), issuer.accept())
            .await
            .expect("a new connection")
            .unwrap()
            .0,
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut buf = [0u8; 1];
    assert_eq!(
        first.get_mut().read(&mut buf).await.unwrap(),
        0,
        "the old line is closed"
    );
    // Echoes answered on the new line keep it.
    let echo = by_hand::read(&mut second).await;
    let mut b = codec::MessageBuilder::new(by_hand::mti(&echo).response());
    b.set(
        11,
        codec::decode(codec::Dialect::iso87_binary(), &echo)
            .unwrap()
            .digits(11)
            .unwrap()
            .to_string(),
    )
    .set(39, "00");
    let bytes = b.encode_to_vec(codec::Dialect::iso87_binary()).unwrap();
    futures_util::SinkExt::send(&mut second, bytes)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    lines_up(&sw, 1).await;
    sw.shutdown().await;
}

#[tokio::test]
async fn a_reversal_never_acknowledged_expires_after_its_tries_and_stays_in_the_journal() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-expiry", |i| {
        i.timeout_ms = 300;
        i.saf.retry_secs = 1;
        i.saf.max_tries = 2;
    })
    .await;
    sim.knobs.drop_replies.store(true, Ordering::Relaxed);
    assert_eq!(t.sale(REMOTE, "111111", 500).await.rc(), "98");
    eventually("the reversal expired", 15, || {
        saf_states(&dir) == vec![("reversal".to_owned(), "expired".to_owned(), 2)]
    })
    .await;
    // Sent twice (0420, then 0421 after the back-off), applied once, then given up.
    assert_eq!(sim.received("0420"), 1);
    assert_eq!(sim.received("0421"), 1);
    assert_eq!(sim.reversals_applied(), 1);
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_issuer_saf_total{issuer=\"demo-issuer\",event=\"expired\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switch_issuer_saf_queued{issuer=\"demo-issuer\"} 0"),
        "{metrics}"
    );
    // Operators find it with `switch report saf`.
    let db = dir.join("journal.db");
    let (ok, out, err) = crate::cli::switch(&[
        "report",
        "saf",
        "--state",
        "expired",
        "--journal",
        db.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("timeout-reversal") && out.contains("1 entries"),
        "{out}"
    );
    assert!(!out.contains(REMOTE));
    let (_, out, _) = crate::cli::switch(&[
        "report",
        "saf",
        "--state",
        "pending",
        "--journal",
        db.to_str().unwrap(),
    ]);
    assert!(out.contains("0 entries"), "{out}");
    sw.shutdown().await;
}

#[tokio::test]
async fn a_reply_with_a_bad_mac_is_not_trusted() {
    let (mut line, _dir, sw, mut t) = hand_rig("issuer-bad-mac").await;
    let sale = tokio::spawn(async move { t.sale(REMOTE, "111111", 3_300).await });
    let request = by_hand::read(&mut line).await;
    // An approval MACed with another key: it could be anyone's.
    by_hand::write_with(
        &mut line,
        by_hand::reply(&request, "00", None),
        "00112233445566778899AABBCCDDEEFF",
    )
    .await;
    let r = sale.await.unwrap();
    assert_eq!(r.rc(), "98", "not trusted: treated as no answer");
    assert_eq!(r.text(38), None);
    // And reversed, in case the issuer did approve.
    let reversal = by_hand::read(&mut line).await;
    assert_eq!(by_hand::mti(&reversal).as_str(), "0420");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(metrics.contains("event=\"bad_mac\""), "{metrics}");
    sw.shutdown().await;
}

#[tokio::test]
async fn a_reversed_void_lets_the_forwarded_sale_stand_again() {
    let Rig {
        sim,
        dir: _,
        sw,
        mut t,
    } = rig("issuer-void-reversal", |_| {}).await;
    let sale = t.sale(REMOTE, "111111", 10_000).await;
    assert_eq!(sale.rc(), "00");
    let sale_stan = t.stan;
    let mut v = t.void_builder(REMOTE, 10_000, sale_stan, None);
    let void = t.seal(&mut v);
    assert_eq!(t.exchange(&void).await.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    // The terminal reverses the void: the issuer books the sale again.
    assert_eq!(t.reverse(&void).await.rc(), "00");
    eventually("void reversed at the issuer", 10, || {
        sim.reversals_applied() == 1
    })
    .await;
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 10_000));
    // The sale stands at both ends: a part of it can be refunded.
    let r = t
        .refund(
            REMOTE,
            3_000,
            &sale.text(37).unwrap(),
            &sale.digits(13).unwrap(),
        )
        .await;
    assert_eq!(r.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 7_000));
    sw.shutdown().await;
}

#[tokio::test]
async fn zone_keys_can_be_given_sealed_and_their_usage_is_checked() {
    use hsm_sim::{Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk};
    let hsm = Hsm::new(
        Lmk::test(),
        &HsmConfig {
            allow_test_keys: true,
            ..HsmConfig::default()
        },
    )
    .unwrap();
    let demo = Config::demo().unwrap();
    let seal = |usage, hex_key: &str| {
        hsm.import_clear_key(usage, KeyAlgorithm::Tdes2, &hex::decode(hex_key).unwrap())
            .unwrap()
            .to_hex()
    };
    let zpk = seal(KeyUsage::Zpk, demo.issuers[0].zpk_clear.as_deref().unwrap());
    let zak = seal(KeyUsage::Zak, demo.issuers[0].zak_clear.as_deref().unwrap());

    let sim = sim(1).await;
    let dir = temp_dir("issuer-sealed");
    let sealed = config(&dir, vec![sim.addrs[0].to_string()], |i| {
        i.zpk_clear = None;
        i.zak_clear = None;
        i.zpk_sealed = Some(zpk.clone());
        i.zak_sealed = Some(zak.clone());
    });
    let sw = start(sealed.clone()).await;
    lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    t.sign_on().await;
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    sw.shutdown().await;

    // A PIN key where the MAC key belongs is refused at start, naming the key.
    let mut wrong = sealed;
    wrong.issuers[0].zak_sealed = Some(zpk);
    let e = switch::start(wrong).await.err().unwrap().to_string();
    assert!(e.contains("issuers[0].zak"), "{e}");
}

#[tokio::test]
async fn a_dropped_line_and_a_garbage_frame_do_not_open_the_breaker() {
    // The 92-second campaign in miniature: requests waiting on a line that closes, then one
    // garbage frame. Each failed request answers 98 and is reversed, but a line failing is
    // one event, not a run of issuer time-outs: the breaker stays closed while other lines
    // are up.
    let sim = sim(3).await;
    let dir = temp_dir("issuer-no-amplification");
    let sw = start(config(
        &dir,
        sim.addrs.iter().map(ToString::to_string).collect(),
        |i| {
            i.timeout_ms = 3_000;
            i.breaker_timeouts = 2;
            i.breaker_open_ms = 30_000;
            i.saf.retry_secs = 60;
            i.reconnect_min_ms = 60_000;
            i.reconnect_max_ms = 60_000;
        },
    ))
    .await;
    lines_up(&sw, 3).await;
    let issuer = sw.switch().issuers().get(0).unwrap().clone();
    // Nine sales waiting, three per line; then line 0's issuer end closes.
    sim.knobs.delay_ms.store(700, Ordering::Relaxed);
    let mut waiting = Vec::new();
    for i in 0..9 {
        let addr = sw.terminal_addr;
        waiting.push(tokio::spawn(async move {
            let mut t = Terminal::connect(addr, &format!("{}", 10000200 + i)).await;
            assert_eq!(t.sign_on().await.rc(), "00");
            t.sale(REMOTE, "111111", 100).await.rc()
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.stop_listener(0);
    let mut codes = Vec::new();
    for w in waiting {
        codes.push(w.await.unwrap());
    }
    let dropped = codes.iter().filter(|c| *c == "98").count();
    assert!(dropped >= 2, "the closed line's requests: {codes:?}");
    assert_eq!(
        codes.iter().filter(|c| *c == "00").count(),
        9 - dropped,
        "{codes:?}"
    );
    assert!(!issuer.breaker_open(), "a dropped line opened the breaker");
    // One garbage frame: that line goes down too, the breaker stays closed.
    sim.knobs.delay_ms.store(0, Ordering::Relaxed);
    let mut t = Terminal::connect(sw.terminal_addr, "10000299").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    // Exactly one garbage answer: the reversal that follows is answered properly.
    sim.knobs.garbage_next.store(1, Ordering::Relaxed);
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "98");
    assert!(!issuer.breaker_open(), "a garbage frame opened the breaker");
    // The last line serves.
    assert_eq!(issuer.lines().iter().filter(|l| l.is_up()).count(), 1);
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "00");
    // With no line up, 91 at once, and nothing written for a request never sent.
    sim.shutdown();
    eventually("lines down", 10, || !issuer.is_up()).await;
    let rows = saf_states(&dir).len();
    assert_eq!(t.sale(REMOTE, "111111", 100).await.rc(), "91");
    assert_eq!(t.balance(REMOTE, "111111").await.rc(), "91");
    assert_eq!(
        saf_states(&dir).len(),
        rows,
        "no store-and-forward row for a 91"
    );
    sw.shutdown().await;
}

#[tokio::test]
async fn pre_authorisations_of_a_remote_card_go_to_its_issuer() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-preauth", |_| {}).await;
    let mmdd = crate::lifecycle::today_mmdd();
    let batch = t.batch;

    // 0100 to the issuer: it holds, nothing is taken.
    let mut b = t.preauth_builder(REMOTE, "999999", 50_000);
    assert_eq!(
        t.send_sealed(b).await.rc(),
        "55",
        "the issuer checks the PIN"
    );
    b = t.preauth_builder(REMOTE, "111111", 50_000);
    let p = t.send_sealed(b).await;
    assert_eq!((p.msg().mti().as_u16(), p.rc()), (110, "00".to_string()));
    assert!(t.reply_mac_ok(&p));
    let (pstan, auth) = (t.stan, p.text(38).unwrap());
    assert_eq!(sim.received("0100"), 2);
    assert_eq!(sim.held(REMOTE), Some(50_000));
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    let upstream: String = journal(&dir)
        .query_row(
            "SELECT upstream FROM transactions WHERE rrn = ?1",
            [p.text(37).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(upstream.starts_with("0100:"), "{upstream}");

    // Over the tolerance: refused at the switch, nothing sent.
    b = t.completion_builder(REMOTE, 57_501, &auth, (batch, pstan, &mmdd), false);
    assert_eq!(t.send_sealed(b).await.rc(), "61");
    assert_eq!(sim.received("0220"), 0);
    // The completion goes as an 0220 advice naming the hold (90) and its code (38).
    b = t.completion_builder(REMOTE, 55_000, &auth, (batch, pstan, &mmdd), false);
    let c = t.send_sealed(b).await;
    assert_eq!(c.rc(), "00");
    let cstan = t.stan;
    assert_eq!(sim.received("0220"), 1);
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 55_000));
    assert_eq!(sim.held(REMOTE), Some(0));
    let (upstream, fee): (String, i64) = journal(&dir)
        .query_row(
            "SELECT upstream, fee_fen FROM transactions WHERE rrn = ?1",
            [c.text(37).unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(upstream.starts_with("0220:"), "{upstream}");
    assert_eq!(fee, 275, "a completion pays a sale's MDR");
    b = t.completion_builder(REMOTE, 1_000, &auth, (batch, pstan, &mmdd), false);
    assert_eq!(t.send_sealed(b).await.rc(), "12", "one completion");

    // Its void (0200, 90 = the completion): the money back, the hold again.
    b = t.completion_void_builder(REMOTE, 55_000, cstan);
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    assert_eq!(sim.held(REMOTE), Some(50_000));
    // Then the hold's void (0100, 3 = 200000).
    b = t.preauth_void_builder(REMOTE, 50_000, &auth, (batch, pstan, &mmdd));
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert_eq!(sim.received("0100"), 3);
    assert_eq!(sim.held(REMOTE), Some(0));

    // A terminal's reversal of a hold reaches the issuer through the queue.
    let mut b = t.preauth_builder(REMOTE, "111111", 20_000);
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame).await.rc(), "00");
    assert_eq!(sim.held(REMOTE), Some(20_000));
    assert_eq!(t.reverse(&frame).await.rc(), "00");
    eventually("reversal applied at the issuer", 10, || {
        sim.reversals_applied() == 1
    })
    .await;
    assert_eq!(sim.held(REMOTE), Some(0));
    assert_eq!(sim.balance(REMOTE), Some(2_000_000));
    assert_eq!(sim.bad_macs(), 0);

    // A remote card's hold left uncompleted lapses here once (its issuer lapses its own):
    // marked, no account of ours moved, not found again by the next run.
    let b = t.preauth_builder(REMOTE, "111111", 10_000);
    let held = t.send_sealed(b).await;
    assert_eq!(held.rc(), "00");
    let later = switch::clock::Timestamp::now().plus_ms(31 * 86_400_000);
    let lapsed = sw.switch().expire_preauths(later).await.unwrap();
    assert_eq!((lapsed.count, lapsed.amount_fen), (1, 10_000));
    assert_eq!(sw.switch().expire_preauths(later).await.unwrap().count, 0);
    let expired: i64 = journal(&dir)
        .query_row(
            "SELECT expired FROM transactions WHERE rrn = ?1",
            [held.text(37).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(expired, 1);
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_completion_goes_as_a_request_where_configured() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-completion-request", |i| {
        i.completion = switch::config::CompletionMessage::Request;
    })
    .await;
    let b = t.preauth_builder(REMOTE, "111111", 10_000);
    let p = t.send_sealed(b).await;
    assert_eq!(p.rc(), "00");
    let (pstan, auth, batch) = (t.stan, p.text(38).unwrap(), t.batch);
    let b = t.completion_builder(REMOTE, 10_000, &auth, (batch, pstan, "0000"), false);
    assert_eq!(t.send_sealed(b).await.rc(), "00");
    assert_eq!((sim.received("0200"), sim.received("0220")), (1, 0));
    assert_eq!(sim.balance(REMOTE), Some(2_000_000 - 10_000));
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_timed_out_pre_authorisation_is_reversed_and_its_hold_released() {
    let Rig {
        sim,
        dir,
        sw,
        mut t,
    } = rig("issuer-preauth-timeout", |i| {
        i.timeout_ms = 300;
        i.saf.retry_secs = 1;
    })
    .await;
    sim.knobs.delay_ms.store(800, Ordering::Relaxed);
    let b = t.preauth_builder(REMOTE, "111111", 30_000);
    let p = t.send_sealed(b).await;
    assert_eq!(p.rc(), "98");
    assert_eq!(p.text(38), None);
    // The issuer held it late; the 0420 (naming the 0100) releases it.
    eventually("0420 at the issuer", 10, || sim.received("0420") >= 1).await;
    eventually("the hold released", 10, || {
        sim.held(REMOTE) == Some(0) && sim.reversals_applied() == 1
    })
    .await;
    sim.knobs.delay_ms.store(0, Ordering::Relaxed);
    // A completion of what timed out finds no approved hold.
    let b = t.completion_builder(REMOTE, 30_000, "000000", (0, 0, "0000"), false);
    assert_eq!(t.send_sealed(b).await.rc(), "25");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What an issuer link does wrong at a request's rate is logged once a second, with the
/// count of the rest: requests not sent because `max_in_flight` were waiting
/// (`issuer_busy`), and replies the switch cannot use (`issuer_message`). Every one is
/// still counted, in the lines and the metrics together, and every terminal answered.
#[tokio::test]
async fn an_issuer_s_flood_is_logged_once_a_second_and_every_one_counted() {
    use crate::reliability::{faults_logged, spawn_logging_to, stop};

    const STRAYS: u64 = 2_000;
    let issuer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = temp_dir("issuer-flood");
    let cfg = config(&dir, vec![issuer.local_addr().unwrap().to_string()], |i| {
        i.max_in_flight = 1;
        i.timeout_ms = 4_000;
        i.echo_interval_secs = 600;
    });
    let log = dir.join("switch.log");
    let (child, addr, metrics) = spawn_logging_to(&cfg, &dir, &log);
    let mut line = crate::client::framed(issuer.accept().await.unwrap().0);
    let started = Instant::now();

    // Replies for no request: declines with traces nobody sent.
    for n in 0..STRAYS {
        let mut b = codec::MessageBuilder::new(codec::Mti::parse("0210").unwrap());
        b.set(3, "000000".to_owned())
            .set(11, format!("{:06}", 900_000 + n))
            .set(32, "01020000".to_owned())
            .set(39, "05".to_owned())
            .set(41, "10000001".to_owned());
        by_hand::write(&mut line, b).await;
    }
    let late = "switch_issuer_late_replies_total{issuer=\"demo-issuer\"}";
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let m = crate::e2e::reqwest_metrics(metrics).await;
        if crate::metrics::value(&m, late) == Some(STRAYS as f64) {
            break;
        }
        assert!(Instant::now() < end, "the strays not all read: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One sale the issuer never answers holds the one place; the rest find it taken.
    let mut first = Terminal::connect(addr, "10000001").await;
    assert_eq!(first.sign_on().await.rc(), "00");
    let held = tokio::spawn(async move { first.sale(REMOTE, "111111", 100).await.rc() });
    assert_eq!(
        by_hand::mti(&by_hand::read(&mut line).await).as_str(),
        "0200"
    );
    let mut runs = Vec::new();
    for tid in ["10000002", "10000003", "10000004", "10000005"] {
        runs.push(tokio::spawn(async move {
            let mut t = Terminal::connect(addr, tid).await;
            assert_eq!(t.sign_on().await.rc(), "00");
            let mut refused = 0u64;
            let until = Instant::now() + Duration::from_millis(2_500);
            while Instant::now() < until {
                let rc = t.sale(REMOTE, "111111", 100).await.rc();
                assert_eq!(rc, "91", "not sent: the issuer is unavailable");
                refused += 1;
            }
            refused
        }));
    }
    let mut refused = 0;
    for r in runs {
        refused += r.await.unwrap();
    }
    assert_eq!(held.await.unwrap(), "98", "the held sale timed out");
    let seconds = started.elapsed().as_secs() + 1;
    let counts = crate::e2e::reqwest_metrics(metrics).await;
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();

    let busy_events = crate::metrics::value(
        &counts,
        "switch_issuer_events_total{issuer=\"demo-issuer\",event=\"too_many_waiting\"}",
    )
    .unwrap() as u64;
    assert!(refused >= 100, "only {refused} sales refused");
    // The held sale's reversal may have found the place taken too.
    assert!(busy_events >= refused, "{busy_events} < {refused}");
    for (fault, came) in [("issuer_busy", busy_events), ("issuer_message", STRAYS)] {
        let (lines, not_written) = faults_logged(&text, &counts, fault, seconds);
        assert!(!lines.is_empty(), "{fault} is logged:\n{text}");
        assert!(
            lines.iter().all(|l| l.contains("issuer=demo-issuer")),
            "{lines:?}"
        );
        assert_eq!(
            lines.len() as u64 + not_written,
            came,
            "{fault}: each written or counted"
        );
    }
}
