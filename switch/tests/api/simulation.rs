//! A seeded fault campaign over the real binary. Terminals send sales (on-us, and forwarded
//! to the issuer simulator, which now and then answers garbage), voids, refunds, reversals,
//! retransmissions and settlements chosen by a seed; the switch is killed with SIGKILL
//! between requests and in the middle of them, and restarted on its journal; a request cut
//! by a kill is sent again after the restart, as a terminal does. At the end, what the
//! terminals were told must be what the journal and the issuer hold:
//!
//! - every approval a terminal saw is in the journal, approved, with the RRN it was told;
//! - an answer seen before a kill is the answer to the same request after it (same RRN);
//! - the card's balance moved by exactly the sales that stand less the refunds, as the
//!   terminals saw them (nothing lost, nothing applied twice, reversals applied once);
//! - every settlement with the terminal's own totals is balanced;
//! - once the store-and-forward queue is empty, the issuer's card moved by exactly the
//!   forwarded sales the terminals were told were approved (time-outs, garbage and kills
//!   reversed there, none twice).
//!
//! The seed fixes the requests and the kill points; whether a request cut by a kill was
//! journalled depends on timing, and either outcome must lead to the same end state. CI runs
//! a few seeds; `SIM_SEEDS=500 SIM_STEPS=400 cargo test -p switch --test api simulation --
//! --nocapture` runs a long campaign.

use std::time::Duration;

use crate::client::{DEBIT, Reply, Terminal};
use crate::issuer::REMOTE;
use crate::seeded::Rng;
use crate::{Spawned, spawn_switch, temp_dir};

/// A sale that stands, as its terminal saw it.
#[derive(Clone, Debug)]
struct Sale {
    frame: Vec<u8>,
    stan: u32,
    batch: u32,
    amount: u64,
    refunded: u64,
    rrn: String,
    mmdd: String,
}

struct Term {
    t: Terminal,
    sales: Vec<Sale>,
    /// This batch's standing sales and refunds, as the terminal counts them.
    totals: (u64, u32, u64, u32),
}

struct Sim {
    dir: std::path::PathBuf,
    config: switch::Config,
    child: Option<std::process::Child>,
    addr: std::net::SocketAddr,
    terms: Vec<Term>,
    rng: Rng,
    /// Approved RRNs the terminals were told.
    approved: Vec<String>,
    /// Money out of the card as the terminals saw it, fen.
    moved: i64,
    /// Money out of the remote issuer's card as the terminals saw it, fen.
    moved_remote: i64,
    issuer: issuer_sim::IssuerSim,
    kills: u32,
    /// Forwarded sales by what the terminal was told: approved, 98, 91.
    remote: [u32; 3],
}

impl Sim {
    async fn start(seed: u64) -> Self {
        let dir = temp_dir(&format!("sim-{seed}"));
        let issuer = crate::issuer::sim(1).await;
        let config = crate::issuer::config(&dir, vec![issuer.addrs[0].to_string()], |i| {
            i.timeout_ms = 1_000;
            i.saf.retry_secs = 1;
        });
        let Spawned { child, addr, .. } = spawn_switch(&config, &dir.join("switch.toml"), "info");
        let mut terms = Vec::new();
        for i in 0..3 {
            let mut t = Terminal::connect(addr, &format!("{}", 10000311 + i)).await;
            assert_eq!(t.sign_on().await.rc(), "00");
            terms.push(Term {
                t,
                sales: Vec::new(),
                totals: (0, 0, 0, 0),
            });
        }
        Self {
            dir,
            config,
            child: Some(child),
            addr,
            terms,
            rng: Rng(seed),
            approved: Vec::new(),
            moved: 0,
            moved_remote: 0,
            issuer,
            kills: 0,
            remote: [0; 3],
        }
    }

    /// SIGKILL, then the switch again on the same journal; terminals reconnect.
    async fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kills += 1;
        let Spawned { child, addr, .. } =
            spawn_switch(&self.config, &self.dir.join("switch.toml"), "info");
        self.child = Some(child);
        self.addr = addr;
        for term in &mut self.terms {
            let mut t = Terminal::connect(addr, &term.t.tid.clone()).await;
            (t.tpk, t.tak, t.stan, t.batch) = (
                term.t.tpk.clone(),
                term.t.tak.clone(),
                term.t.stan,
                term.t.batch,
            );
            term.t = t;
        }
    }

    /// Sends `frame` from terminal `i`; with `cut`, the switch is killed before the answer
    /// is read, and the frame sent again after the restart (its answer is the one that
    /// counts). An answer seen before must come back the same.
    async fn send(&mut self, i: usize, frame: Vec<u8>, cut: bool) -> Reply {
        if cut {
            self.terms[i].t.send_raw(&frame).await;
            // Let it reach the switch sometimes, and sometimes the journal.
            tokio::time::sleep(Duration::from_micros(self.rng.below(3_000))).await;
            self.crash_and_restart().await;
        }
        let first = self.terms[i].t.exchange(&frame).await;
        if self.rng.below(8) == 0 {
            // A retransmission of an answered request: the same answer.
            let again = self.terms[i].t.exchange(&frame).await;
            assert_eq!(again.rc(), first.rc(), "retransmission answered alike");
            assert_eq!(again.text(37), first.text(37), "retransmission: same RRN");
        }
        first
    }

    async fn step(&mut self) {
        let i = self.rng.below(self.terms.len() as u64) as usize;
        let cut = self.rng.below(12) == 0;
        match self.rng.below(100) {
            0..=34 => self.sale(i, cut).await,
            35..=44 => self.remote_sale(i, cut).await,
            45..=56 => self.void(i, cut).await,
            57..=68 => self.refund(i, cut).await,
            69..=80 => self.reverse(i, cut).await,
            81..=85 => self.settle(i, cut).await,
            86..=90 => self.crash_and_restart().await,
            _ => {
                // A sale whose answer the terminal never reads (its task died): nothing is
                // assumed; the reversal it persisted goes out next, as a terminal does.
                let amount = 1 + self.rng.below(5_000);
                let mut b = self.terms[i].t.sale_builder(DEBIT, Some("123456"), amount);
                let frame = self.terms[i].t.seal(&mut b);
                self.terms[i].t.send_raw(&frame).await;
                self.crash_and_restart().await;
                let reversal = self.terms[i].t.reversal_frame(&frame);
                let r = self.terms[i].t.exchange(&reversal).await;
                assert_eq!(r.rc(), "00", "a reversal is always answered 00");
            }
        }
    }

    async fn sale(&mut self, i: usize, cut: bool) {
        let amount = 1 + self.rng.below(5_000);
        let term = &mut self.terms[i];
        let mut b = term.t.sale_builder(DEBIT, Some("123456"), amount);
        let stan = term.t.stan;
        let batch = term.t.batch;
        let frame = term.t.seal(&mut b);
        let r = self.send(i, frame.clone(), cut).await;
        assert_eq!(r.rc(), "00", "sale of {amount}");
        let rrn = r.text(37).unwrap();
        self.approved.push(rrn.clone());
        self.moved += amount as i64;
        let term = &mut self.terms[i];
        term.totals.0 += amount;
        term.totals.1 += 1;
        term.sales.push(Sale {
            frame,
            stan,
            batch,
            amount,
            refunded: 0,
            rrn,
            mmdd: r.digits(13).unwrap(),
        });
    }

    /// A sale of the remote issuer's card; now and then the issuer answers garbage. The
    /// terminal is told 00 (it stands at the issuer), or 98 / 91 (it must not).
    async fn remote_sale(&mut self, i: usize, cut: bool) {
        use std::sync::atomic::Ordering;
        let amount = 1 + self.rng.below(500);
        let garbage = self.rng.below(6) == 0;
        let mut b = self.terms[i].t.sale_builder(REMOTE, Some("111111"), amount);
        let frame = self.terms[i].t.seal(&mut b);
        self.issuer
            .knobs
            .garbage_next
            .store(u32::from(garbage), Ordering::Relaxed);
        let r = self.send(i, frame, cut).await;
        self.issuer.knobs.garbage_next.store(0, Ordering::Relaxed);
        match r.rc().as_str() {
            "00" => {
                self.approved.push(r.text(37).unwrap());
                self.moved_remote += amount as i64;
                // A sale of the terminal's batch like any other, for its settlement.
                self.terms[i].totals.0 += amount;
                self.terms[i].totals.1 += 1;
                self.remote[0] += 1;
            }
            "98" => self.remote[1] += 1,
            "91" => self.remote[2] += 1,
            other => panic!("remote sale answered {other}"),
        }
    }

    /// A standing sale of terminal `i` chosen by the seed, with `pred`.
    fn pick(&mut self, i: usize, pred: impl Fn(&Sale, u32) -> bool) -> Option<usize> {
        let batch = self.terms[i].t.batch;
        let candidates: Vec<usize> = (0..self.terms[i].sales.len())
            .filter(|k| pred(&self.terms[i].sales[*k], batch))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.below(candidates.len() as u64) as usize])
    }

    async fn void(&mut self, i: usize, cut: bool) {
        let Some(k) = self.pick(i, |s, batch| s.batch == batch && s.refunded == 0) else {
            return;
        };
        let sale = self.terms[i].sales[k].clone();
        let mut b = self.terms[i]
            .t
            .void_builder(DEBIT, sale.amount, sale.stan, None);
        let frame = self.terms[i].t.seal(&mut b);
        let r = self.send(i, frame, cut).await;
        assert_eq!(r.rc(), "00", "void of {sale:?}");
        self.approved.push(r.text(37).unwrap());
        self.moved -= sale.amount as i64;
        let term = &mut self.terms[i];
        term.sales.remove(k);
        term.totals.0 -= sale.amount;
        term.totals.1 -= 1;
    }

    async fn refund(&mut self, i: usize, cut: bool) {
        let Some(k) = self.pick(i, |s, _| s.refunded < s.amount) else {
            return;
        };
        let sale = self.terms[i].sales[k].clone();
        let amount = 1 + self.rng.below(sale.amount - sale.refunded);
        let mut b = self.terms[i]
            .t
            .refund_builder(DEBIT, amount, &sale.rrn, &sale.mmdd);
        let frame = self.terms[i].t.seal(&mut b);
        let r = self.send(i, frame, cut).await;
        assert_eq!(r.rc(), "00", "refund of {amount} of {sale:?}");
        self.approved.push(r.text(37).unwrap());
        self.moved -= amount as i64;
        let term = &mut self.terms[i];
        term.sales[k].refunded += amount;
        term.totals.2 += amount;
        term.totals.3 += 1;
    }

    async fn reverse(&mut self, i: usize, cut: bool) {
        let Some(k) = self.pick(i, |s, batch| s.batch == batch && s.refunded == 0) else {
            return;
        };
        let sale = self.terms[i].sales[k].clone();
        let frame = self.terms[i].t.reversal_frame(&sale.frame);
        let r = self.send(i, frame, cut).await;
        assert_eq!(r.rc(), "00");
        self.moved -= sale.amount as i64;
        let term = &mut self.terms[i];
        term.sales.remove(k);
        term.totals.0 -= sale.amount;
        term.totals.1 -= 1;
    }

    async fn settle(&mut self, i: usize, cut: bool) {
        let (d, dc, c, cc) = self.terms[i].totals;
        let term = &mut self.terms[i];
        let stan = term.t.next_stan();
        let mut b = term.t.builder("0500");
        b.set(11, stan)
            .set(41, term.t.tid.clone())
            .set(42, term.t.mid.clone())
            .set(48, format!("{d:012}{dc:03}{c:012}{cc:03}0{:031}", 0))
            .set(49, "156")
            .set(60, format!("00{:06}201", term.t.batch))
            .set(63, "000");
        let frame = term.t.seal(&mut b);
        let r = self.send(i, frame, cut).await;
        assert_eq!(r.rc(), "00");
        let f48 = r.digits(48).unwrap();
        assert_eq!(
            &f48[30..31],
            "1",
            "the terminal's totals are the journal's: {f48}"
        );
        let term = &mut self.terms[i];
        term.t.batch += 1;
        term.totals = (0, 0, 0, 0);
    }

    /// Waits for the store-and-forward queue to empty and the issuer to agree, stops the
    /// switch, and checks the journal against what the terminals were told.
    async fn check(mut self) {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let waiting: i64 = rusqlite::Connection::open(self.dir.join("journal.db"))
                .unwrap()
                .query_row(
                    "SELECT COUNT(*) FROM saf_queue WHERE state IN ('armed', 'pending')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let issuer_moved = 2_000_000 - self.issuer.balance(REMOTE).unwrap();
            if waiting == 0 && issuer_moved == self.moved_remote {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "issuer moved {issuer_moved}, terminals were told {}; {waiting} queued",
                self.moved_remote
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let mut c = c;
            let _ = c.wait();
        }
        let conn = rusqlite::Connection::open(self.dir.join("journal.db")).unwrap();
        for rrn in &self.approved {
            let rc: String = conn
                .query_row(
                    "SELECT response_code FROM transactions WHERE rrn = ?1",
                    [rrn],
                    |r| r.get(0),
                )
                .unwrap_or_else(|_| panic!("approval {rrn} not in the journal"));
            assert_eq!(rc, "00", "{rrn}");
        }
        let balance: i64 = conn
            .query_row(
                "SELECT balance_fen FROM accounts WHERE masked_pan = '622202*********0017'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            1_000_000 - balance,
            self.moved,
            "the card moved by what the terminals were told"
        );
    }
}

async fn campaign(seed: u64, steps: u32) -> (u32, usize, [u32; 3]) {
    let mut sim = Sim::start(seed).await;
    for _ in 0..steps {
        sim.step().await;
    }
    let out = (sim.kills, sim.approved.len(), sim.remote);
    sim.check().await;
    out
}

#[tokio::test]
async fn seeded_kills_lose_nothing_and_apply_nothing_twice() {
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let steps: u32 = std::env::var("SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let (mut kills, mut approvals, mut remote) = (0, 0, [0; 3]);
    for seed in 1..=seeds {
        let (k, a, r) = campaign(seed, steps).await;
        kills += k;
        approvals += a;
        (0..3).for_each(|j| remote[j] += r[j]);
    }
    println!(
        "{seeds} seeds x {steps} steps: {kills} kills, {approvals} approvals checked; forwarded: {} approved, {} timed out (98), {} unavailable (91)",
        remote[0], remote[1], remote[2]
    );
    assert!(kills > 0 && approvals > 0);
}
