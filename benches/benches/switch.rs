//! Whole-switch benchmarks: one sale through the in-process pipeline (decode → MAC → PIN →
//! fee → durable journal → reply + MAC), one at a time and 256 at once (group commit); the
//! same for a remote issuer's card, forwarded over loopback TCP to the issuer simulator
//! (PIN translated, X9.19 MACs both ways, reversal armed in the journal); and round trips
//! over loopback TCP.
//!
//! Run: `cargo bench -p benches --bench switch`. The journal is a real SQLite file with
//! `synchronous = FULL` in a temporary directory: each commit waits for the disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codec::{Dialect, MessageBuilder, Mti, decode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use hsm_sim::ClearPin;
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::{mac, pinblock};
use switch::pipeline::Handled;

const HEADER: [u8; 11] = [
    0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x10, 0x03,
];
const TMK: &str = "0123456789ABCDEFFEDCBA9876543210"; // demo TMK, test key
const PAN: &str = "6222021000000000017"; // demo debit card, test data
const REMOTE: &str = "6217001000000000011"; // issuer-sim card, PIN 111111, test data

/// The bench's terminal: enough of a POS to sign on and build signed sales.
struct Pos {
    tid: String,
    tpk: DesKey,
    tak: DesKey,
    stan: u32,
}

fn sign_on_frame(tid: &str) -> Vec<u8> {
    let mut b = MessageBuilder::new(Mti::parse("0800").unwrap());
    b.header(&HEADER[..])
        .set(11, "000001")
        .set(41, tid)
        .set(42, "898310048990001")
        .set(60, "00000001003");
    b.encode_to_vec(Dialect::cup_pos()).unwrap()
}

fn pos_from_reply(tid: &str, reply: &[u8]) -> Pos {
    let m = decode(Dialect::cup_pos(), reply).unwrap();
    assert_eq!(m.text(39), Some("00"));
    let f62 = m.bytes(62).unwrap();
    let tmk = DesKey::new(&hex::decode(TMK).unwrap()).unwrap();
    Pos {
        tid: tid.to_owned(),
        tpk: DesKey::new(&tmk.decrypt_ecb(&f62[..16]).unwrap()).unwrap(),
        tak: DesKey::new(&tmk.decrypt_ecb(&f62[20..28]).unwrap()).unwrap(),
        stan: 1,
    }
}

impl Pos {
    fn sale(&mut self) -> Vec<u8> {
        self.sale_with(PAN, "123456")
    }

    fn remote_sale(&mut self) -> Vec<u8> {
        self.sale_with(REMOTE, "111111")
    }

    fn sale_with(&mut self, pan: &str, pin: &str) -> Vec<u8> {
        self.stan += 1;
        let block = self
            .tpk
            .encrypt(pinblock::format0(&ClearPin::new(pin).unwrap(), pan).unwrap());
        let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
        b.header(&HEADER[..])
            .set(2, pan)
            .set(3, "000000")
            .set(4, "000000000001")
            .set(11, format!("{:06}", self.stan))
            .set(22, "021")
            .set(25, "00")
            .set(26, "12")
            .set(41, self.tid.as_str())
            .set(42, "898310048990001")
            .set(49, "156")
            .set(52, block.to_vec())
            .set(53, "2600000000000000")
            .set(60, "22000001000");
        let mut out = Vec::new();
        b.encode_with_mac(Dialect::cup_pos(), &mut out, |d| {
            Some(mac::unionpay_ecb(&self.tak, d))
        })
        .unwrap();
        out
    }
}

fn bench_config(dir: &std::path::Path, issuer: std::net::SocketAddr) -> switch::Config {
    let mut c = switch::Config::demo().unwrap();
    c.issuers[0].lines = vec![issuer.to_string()];
    c.listen.terminals = "127.0.0.1:0".parse().unwrap();
    c.listen.metrics = "127.0.0.1:0".parse().unwrap();
    c.journal.path = dir.join("journal.db");
    c.limits.max_in_flight = 256;
    // Enough balance for millions of 0.01 sales.
    c.cards[0].balance_fen = Some(1_000_000_000_000);
    c
}

fn reply_of(h: Handled) -> Vec<u8> {
    match h {
        Handled::Reply(v) => v,
        other => panic!("no reply: {other:?}"),
    }
}

fn fee_benches(c: &mut Criterion) {
    let config = switch::Config::demo().unwrap();
    let fees = switch::fees::FeeSchedule::new(config.fee_rules());
    let category = switch::fees::FeeCategory::parse("preferential").unwrap();
    let mut g = c.benchmark_group("fees");
    g.bench_function("mdr_by_category", |b| {
        b.iter(|| {
            black_box(fees.fee_for(
                black_box(&category),
                switch::fees::Channel::Qr,
                black_box("5411"),
                "898310048990001",
                black_box(100_000),
            ))
        })
    });
    g.finish();
}

fn switch_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("switch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut sim_config = issuer_sim::SimConfig::demo().unwrap();
    sim_config.cards[0].balance_fen = 1_000_000_000_000;
    let sim = rt
        .block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            issuer_sim::IssuerSim::start(&sim_config, vec![l]).await
        })
        .unwrap();
    let running = rt
        .block_on(switch::start(bench_config(&dir, sim.addrs[0])))
        .unwrap();
    let sw = Arc::clone(running.switch());
    let issuer = Arc::clone(sw.issuers().get(0).unwrap());
    let up = Instant::now();
    while !issuer.is_up() {
        assert!(up.elapsed() < Duration::from_secs(10), "issuer line up");
        std::thread::sleep(Duration::from_millis(10));
    }

    // 256 terminals signed on in-process.
    let mut terminals: Vec<Pos> = (1..=256)
        .map(|i| {
            let tid = format!("{:08}", 10_000_000 + i);
            let reply = reply_of(rt.block_on(sw.handle(&sign_on_frame(&tid))));
            pos_from_reply(&tid, &reply)
        })
        .collect();
    // Sanity: a sale of each kind is approved.
    for frame in [terminals[0].sale(), terminals[0].remote_sale()] {
        let reply = reply_of(rt.block_on(sw.handle(&frame)));
        assert_eq!(
            decode(Dialect::cup_pos(), &reply).unwrap().text(39),
            Some("00")
        );
    }

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for (name, make) in [
        ("sale", Pos::sale as fn(&mut Pos) -> Vec<u8>),
        ("forwarded_sale", Pos::remote_sale),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name}_one_at_a_time"), |b| {
            b.iter_custom(|iters| {
                let frames: Vec<Vec<u8>> = (0..iters)
                    .map(|i| make(&mut terminals[(i % 256) as usize]))
                    .collect();
                let t = Instant::now();
                for f in &frames {
                    black_box(reply_of(rt.block_on(sw.handle(f))));
                }
                t.elapsed()
            })
        });
        g.throughput(Throughput::Elements(256));
        g.bench_function(format!("{name}_256_concurrent"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let frames: Vec<Vec<u8>> = terminals.iter_mut().map(make).collect();
                    let t = Instant::now();
                    rt.block_on(async {
                        let tasks: Vec<_> = frames
                            .into_iter()
                            .map(|f| {
                                let sw = Arc::clone(&sw);
                                tokio::spawn(async move { reply_of(sw.handle(&f).await) })
                            })
                            .collect();
                        for t in tasks {
                            black_box(t.await.unwrap());
                        }
                    });
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();

    // Loopback TCP: one terminal, request → reply, and 64 pipelined on one connection.
    let addr = running.terminal_addr;
    let stream = rt.block_on(tokio::net::TcpStream::connect(addr)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut stream = tokio_util::codec::Framed::new(
        stream,
        codec::framing::FrameCodec::new(codec::Framing::U16, 65_535),
    );
    let mut g = c.benchmark_group("tcp_loopback");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    type Line = tokio_util::codec::Framed<tokio::net::TcpStream, codec::framing::FrameCodec>;
    let round_trip = |stream: &mut Line, frames: &[Vec<u8>]| {
        rt.block_on(async {
            for f in frames {
                stream.feed(f.as_slice()).await.unwrap();
            }
            SinkExt::<&[u8]>::flush(stream).await.unwrap();
            for _ in frames {
                black_box(stream.next().await.unwrap().unwrap());
            }
        })
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("sale_round_trip", |b| {
        b.iter_custom(|iters| {
            let frames: Vec<Vec<u8>> = (0..iters)
                .map(|i| terminals[(i % 256) as usize].sale())
                .collect();
            let t = Instant::now();
            for f in &frames {
                round_trip(&mut stream, std::slice::from_ref(f));
            }
            t.elapsed()
        })
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("sale_64_pipelined", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let frames: Vec<Vec<u8>> = terminals[..64].iter_mut().map(Pos::sale).collect();
                let t = Instant::now();
                round_trip(&mut stream, &frames);
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    drop(stream);
    rt.block_on(running.shutdown());
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, fee_benches, switch_benches);
criterion_main!(benches);
