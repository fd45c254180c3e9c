//! The load generator: N terminals, each signed on, sending real sales and balance
//! inquiries (PIN blocks and MACs computed per request, every reply's MAC checked).
//!
//! The generator's terminals keep their state in memory (no reversal persisted, no log):
//! they exist to load the switch, and their CPU goes to frames, PIN blocks and MACs.
//!
//! Closed loop (no rate): each terminal sends its next request when the last is answered.
//! Open loop (`rate`): requests are due at fixed intervals whatever the replies do. A
//! request that waited for its terminal's previous answer past its due time counts its
//! latency from when it was due, so a stalled switch shows in the numbers; one whose
//! terminal was free counts from when it was sent (the timer that wakes it rounds up to the
//! millisecond, and that lateness is the generator's, not the switch's).
//!
//! ```text
//!  due ─┬─ terminal free:   timer wakes (≤ 1 ms late) ─▶ send ══ latency ══▶ answer
//!       └─ terminal busy ═══ previous answer ─▶ send ═════════ latency ══▶ answer
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::store::Store;
use crate::terminal::{Card, Terminal, TxnError};

/// What to run.
#[derive(Clone)]
pub struct LoadOptions {
    /// The switch's nodes: terminal `i` starts on node `i` modulo their number, and dials
    /// the next when its node stops answering.
    pub addrs: Vec<SocketAddr>,
    /// Concurrent terminals.
    pub terminals: u32,
    /// Their cipher (an SM4 terminal range with `sm4`).
    pub cipher: crate::cipher::Cipher,
    /// First TID (the rest follow).
    pub first_tid: u32,
    /// Merchant ID.
    pub mid: String,
    /// TMK of the terminals (hex).
    pub tmk: String,
    /// How long.
    pub duration: Duration,
    /// Requests per second in all (open loop), or `None` (closed loop).
    pub rate: Option<f64>,
    /// What the terminals send, in percent.
    pub mix: Mix,
    /// Card and PIN (demo debit card by default).
    pub pan: String,
    /// PIN.
    pub pin: String,
    /// Print a progress line each second.
    pub progress: bool,
    /// Append `tid,rrn,amount_fen,auth_code` for each approved sale here.
    pub record: Option<std::path::PathBuf>,
    /// Dial over TLS with this.
    pub tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("addrs", &self.addrs)
            .field("terminals", &self.terminals)
            .field("first_tid", &self.first_tid)
            .field("duration", &self.duration)
            .field("rate", &self.rate)
            .field("mix", &self.mix)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// What the terminals send, in percent (adding up to 100): sales, balance inquiries, echo
/// tests (0820, no PIN, no MAC: the switch's cheapest round trip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Sales.
    pub sale: u32,
    /// Balance inquiries.
    pub balance: u32,
    /// Echo tests.
    pub echo: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            sale: 100,
            balance: 0,
            echo: 0,
        }
    }
}

impl Mix {
    /// From `sale=90,balance=10` (`echo=100`, …): only the kinds the generator sends; one
    /// left out takes what the others leave when it is the only one missing a share.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut given: [Option<u32>; 3] = [None; 3];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, pct) = part.split_once('=').ok_or_else(|| {
                format!("--mix {part:?}: write kind=percent, e.g. sale=90,balance=10")
            })?;
            let pct: u32 = pct
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("--mix {part:?}: a percentage 0 to 100"))?;
            let i = match kind {
                "sale" => 0,
                "balance" => 1,
                "echo" => 2,
                other => {
                    return Err(format!(
                        "--mix: the load generator sends sale, balance and echo, not {other:?}"
                    ));
                }
            };
            given[i] = Some(pct);
        }
        let named: u32 = given.iter().flatten().sum();
        let [sale, balance, echo] = match given {
            [None, None, None] => [Some(100), Some(0), Some(0)],
            // Sales take what the others leave.
            [None, b, e] if named <= 100 => [Some(100 - named), b, e],
            g => g,
        }
        .map(|p| p.unwrap_or(0));
        if sale + balance + echo != 100 {
            return Err(format!(
                "--mix: the shares add up to {}, not 100",
                sale + balance + echo
            ));
        }
        Ok(Self {
            sale,
            balance,
            echo,
        })
    }
}

/// CPU seconds this process has used (user and system, every thread), from
/// `/proc/self/stat` at the kernel's 100 ticks a second; `None` where there is no procfs.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Where approved sales are written as the terminals see them.
type Recorder = Option<Mutex<std::io::BufWriter<std::fs::File>>>;

/// The result.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Requests answered.
    pub total: u64,
    /// Errors (no reply, bad MAC, unreachable).
    pub errors: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Answered requests per second.
    pub throughput: f64,
    /// Latency percentiles in microseconds.
    pub latency_us: BTreeMap<String, u64>,
    /// Answers per response code.
    pub response_codes: BTreeMap<String, u64>,
    /// Why requests (or whole terminals, at sign-on) failed, by reason.
    pub failures: BTreeMap<String, u64>,
    /// CPU seconds the generator used for the whole run (sign-ons included), when known.
    pub cpu_seconds: Option<f64>,
}

/// A failure's reason as counted: the error's message (no card data is in it).
fn reason(e: &TxnError) -> String {
    let text = e.to_string();
    text.chars().take(80).collect()
}

#[derive(Default)]
struct Shared {
    hist: Option<Histogram<u64>>,
    codes: BTreeMap<String, u64>,
    errors: u64,
    failures: BTreeMap<String, u64>,
}

/// Where an open-loop request's latency starts: its due time when its terminal was still
/// waiting for the previous answer then (the switch held it up), else `sent`.
fn latency_from(due: Instant, free_since: Instant, sent: Instant) -> Instant {
    if free_since > due { due } else { sent }
}

fn record(shared: &Mutex<Shared>, started: Instant, result: &Result<String, TxnError>) {
    let us = started.elapsed().as_micros() as u64;
    if let Ok(mut s) = shared.lock() {
        match result {
            Ok(rc) => {
                if let Some(h) = s.hist.as_mut() {
                    let _ = h.record(us.max(1));
                }
                *s.codes.entry(rc.clone()).or_default() += 1;
            }
            Err(e) => {
                s.errors += 1;
                *s.failures.entry(reason(e)).or_default() += 1;
            }
        }
    }
}

async fn one_terminal(
    opts: Arc<LoadOptions>,
    index: u32,
    shared: Arc<Mutex<Shared>>,
    start: Instant,
    recorder: Arc<Recorder>,
) -> Result<(), TxnError> {
    let mut store = Store::in_memory()?;
    let tid = format!("{:08}", opts.first_tid + index);
    Terminal::init_with(&mut store, &tid, &opts.mid, &opts.tmk, opts.cipher)?;
    let nodes = opts.addrs.len().max(1);
    let mut node = index as usize % nodes;
    let addr_of = |n: usize| {
        opts.addrs
            .get(n)
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8583)))
    };
    let mut t = Terminal::open(store, addr_of(node))?;
    if let Some(tls) = &opts.tls {
        t.with_tls(tls.clone());
    }
    t.make_volatile()?;
    t.timeout = Duration::from_secs(10);
    let r = t.sign_on("01").await?;
    if r.rc != "00" {
        return Err(TxnError::BadReply(format!("sign-on answered {}", r.rc)));
    }
    // The terminal keeps its trace numbers in memory: an earlier run's batch may still be
    // open at the switch with these numbers in it. Close it, and start a new one.
    t.close_open_batch("01").await?;
    let card = Card {
        pan: opts.pan.clone(),
        expiry: None,
    };
    let interval = opts
        .rate
        .map(|r| Duration::from_secs_f64(f64::from(opts.terminals) / r.max(0.001)));
    // The schedule starts when this terminal is signed on (the sign-ons and settlements of
    // all terminals at once are not what an open loop measures); the terminals are spread
    // over one interval.
    let mut due = Instant::now()
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(f64::from(index) / f64::from(opts.terminals.max(1)))
        });
    let mut n: u64 = u64::from(index);
    // When the terminal got its last answer.
    let mut free_since = start;
    while start.elapsed() < opts.duration {
        if interval.is_some() {
            tokio::time::sleep_until(due.into()).await;
        }
        let began = match interval {
            Some(_) => latency_from(due, free_since, Instant::now()),
            None => Instant::now(),
        };
        n += 1;
        let pick = (n * 37 % 100) as u32;
        let sale = pick < opts.mix.sale;
        let echo = pick >= opts.mix.sale + opts.mix.balance;
        let result = if echo {
            t.echo().await
        } else if sale {
            t.sale(&card, &opts.pin, 1, "01").await.map(|a| {
                if a.rc == "00"
                    && let Some(Ok(mut w)) = recorder.as_ref().as_ref().map(Mutex::lock)
                {
                    use std::io::Write;
                    let _ = writeln!(w, "{tid},{},1,{}", a.rrn, a.auth_code);
                }
                a.rc
            })
        } else {
            t.balance(&card, &opts.pin, "01").await.map(|a| a.rc)
        };
        free_since = Instant::now();
        record(&shared, began, &result);
        if let Err(TxnError::Unreachable { .. } | TxnError::Timeout) = result {
            // Its node is gone (or never answered): the next one, as a terminal given a
            // list of host addresses does.
            if nodes > 1 {
                node = (node + 1) % nodes;
                t.redial(addr_of(node));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(i) = interval {
            due += i;
        }
    }
    Ok(())
}

fn percentiles(h: &Histogram<u64>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (name, q) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ] {
        m.insert(name.to_owned(), h.value_at_quantile(q));
    }
    m.insert("max".to_owned(), h.max());
    m
}

/// Runs the load and returns the summary.
pub async fn run(opts: LoadOptions) -> Result<Summary, TxnError> {
    let hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| TxnError::Input(e.to_string()))?;
    let shared = Arc::new(Mutex::new(Shared {
        hist: Some(hist),
        ..Shared::default()
    }));
    let recorder: Arc<Recorder> = Arc::new(match &opts.record {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| TxnError::Input(format!("{}: {e}", path.display())))?,
        ))),
        None => None,
    });
    let opts = Arc::new(opts);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..opts.terminals {
        tasks.push(tokio::spawn(one_terminal(
            Arc::clone(&opts),
            i,
            Arc::clone(&shared),
            start,
            Arc::clone(&recorder),
        )));
    }
    if opts.progress {
        let shared = Arc::clone(&shared);
        let duration = opts.duration;
        tokio::spawn(async move {
            let mut last = 0u64;
            while start.elapsed() < duration {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(s) = shared.lock() {
                    let total: u64 = s.codes.values().sum();
                    let (p50, p99) = s.hist.as_ref().map_or((0, 0), |h| {
                        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
                    });
                    eprintln!(
                        "[{:>4.0}s] {:>7} tps   total {:>9}   p50 {:>6} us   p99 {:>7} us   errors {}",
                        start.elapsed().as_secs_f64(),
                        total - last,
                        total,
                        p50,
                        p99,
                        s.errors
                    );
                    last = total;
                }
            }
        });
    }
    let mut failed = 0;
    let mut failures = BTreeMap::<String, u64>::new();
    for t in tasks {
        let why = match t.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => reason(&e),
            Err(e) => format!("terminal task: {e}"),
        };
        failed += 1;
        *failures.entry(why).or_default() += 1;
    }
    if let Some(Ok(mut w)) = recorder.as_ref().as_ref().map(Mutex::lock) {
        use std::io::Write;
        let _ = w.flush();
    }
    let seconds = start.elapsed().as_secs_f64();
    let s = shared
        .lock()
        .map_err(|_| TxnError::Input("load state poisoned".into()))?;
    let total: u64 = s.codes.values().sum();
    for (why, n) in &s.failures {
        *failures.entry(why.clone()).or_default() += n;
    }
    Ok(Summary {
        total,
        errors: s.errors + failed,
        seconds,
        throughput: total as f64 / seconds.max(0.001),
        latency_us: s.hist.as_ref().map(percentiles).unwrap_or_default(),
        response_codes: s.codes.clone(),
        failures,
        cpu_seconds: cpu_seconds(),
    })
}

#[cfg(test)]
mod mix_tests {
    use super::Mix;

    #[test]
    fn the_mix_names_only_what_the_generator_sends() {
        let m = |s| Mix::parse(s).unwrap();
        assert_eq!(m("sale=100"), Mix::default());
        assert_eq!(
            (
                m("sale=90,balance=10").sale,
                m("sale=90,balance=10").balance
            ),
            (90, 10)
        );
        assert_eq!(m("balance=30").sale, 70);
        assert_eq!(m("echo=100").echo, 100);
        assert_eq!(m("echo=100").sale, 0);
        assert_eq!(m("").sale, 100);
        for bad in [
            "void=10",
            "sale=90,balance=20",
            "sale",
            "sale=x",
            "sale=101",
            "sale=50,echo=20",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod open_loop_tests {
    use std::time::{Duration, Instant};

    use super::latency_from;

    #[test]
    fn a_request_held_up_by_the_previous_answer_counts_from_when_it_was_due() {
        let due = Instant::now();
        let ms = Duration::from_millis;
        // The terminal was free before it was due: the timer's lateness is not counted.
        assert_eq!(latency_from(due, due - ms(3), due + ms(1)), due + ms(1));
        // The previous answer came 20 ms after this one was due: those 20 ms count.
        assert_eq!(latency_from(due, due + ms(20), due + ms(20)), due);
    }
}
