//! Runs one operation N times, for instruction counting under callgrind
//! (`benches/icount.sh` runs it at two N and prints the difference per operation).
//!
//! Cases: `cup-decode`, `cup-encode`, `ascii-decode`, `ascii-decode-i8583`,
//! `ascii-decode-iso8583-codec`, and `pipeline-sale` (one sale through the in-process switch:
//! decode, MAC and PIN in the HSM, fee, durable SQLite journal, reply with MAC; every thread
//! counted; the requests are built beforehand, the same number at either count, so the
//! terminal's PIN block, MAC and encoding are not counted; `pipeline-sale-logged-switch` and `-tracing` the same with the daemon's `info`
//! text log, by the switch's formatter or tracing's), `log-line-tracing` and `log-line-switch` (a sale's `info` line formatted by
//! tracing-subscriber's full format, colours off, and by the switch's `log_text`, written
//! to nowhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

// The daemon's allocator (the C library's), so that a sale here allocates as it does there.

use codec::{Dialect, MessageBuilder, decode};

/// CUP POS sale capture (vector A1) from the codec's fixtures, without its length.
fn cup_sale() -> Vec<u8> {
    let text = include_str!("../../codec/tests/fixtures/messages.toml");
    let start = text.find("name = \"cup_sale_codetd\"").unwrap();
    let hex_start = start + text[start..].find("hex = \"\"\"").unwrap() + 9;
    let hex_end = hex_start + text[hex_start..].find("\"\"\"").unwrap();
    let hex: String = text[hex_start..hex_end].split_whitespace().collect();
    hex::decode(hex).unwrap()[2..].to_vec()
}

/// The CUP sale's fields as an ISO 87 ASCII 0200 (as in the criterion bench).
fn ascii_equivalent(cup: &[u8]) -> Vec<u8> {
    let sale = decode(Dialect::cup_pos(), cup).unwrap();
    let mut b = MessageBuilder::new(sale.mti());
    for n in [2u8, 3, 4, 11, 14, 22, 23, 25, 26, 35, 41, 42, 49, 53, 60] {
        b.set(n, sale.field(n).unwrap().canonical().replace('D', "="));
    }
    b.encode_to_vec(Dialect::iso87_ascii()).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    if case == "pipeline-sale" {
        pipeline_sales(n);
        return;
    }
    if let Some(which) = case.strip_prefix("pipeline-sale-logged-") {
        // The daemon's `info` text log to a pipe: its queue and thread, written to nowhere.
        use tracing_subscriber::layer::SubscriberExt as _;
        let sink = switch::log_sink::LogSink::new(std::io::sink()).unwrap();
        let layer = match which {
            "switch" => switch::log_text::layer(sink, false),
            "tracing" => Box::new(
                tracing_subscriber::fmt::layer()
                    .with_writer(sink)
                    .with_ansi(false),
            ),
            other => {
                eprintln!("unknown formatter {other:?}");
                std::process::exit(2);
            }
        };
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(layer);
        tracing::subscriber::with_default(subscriber, || pipeline_sales(n));
        return;
    }
    if let Some(which) = case.strip_prefix("log-line-") {
        log_lines(which, n);
        return;
    }
    let cup = cup_sale();
    let ascii = ascii_equivalent(&cup);
    let cup_values: Vec<(u8, Vec<u8>)> = decode(Dialect::cup_pos(), &cup)
        .unwrap()
        .fields()
        .map(|f| {
            let v = if f.spec().format.data == codec::Encoding::Binary {
                f.wire().to_vec()
            } else {
                f.canonical().into_bytes()
            };
            (f.number(), v)
        })
        .collect();
    let header = cup[..11].to_vec();
    let ascii_bin = ascii_binary_bitmap(&decode(Dialect::iso87_ascii(), &ascii).unwrap());
    let iso_spec = iso8583_codec::Spec::iso8583_1987();
    let mut out = Vec::with_capacity(1024);
    for _ in 0..n {
        match case.as_str() {
            "cup-decode" => {
                black_box(
                    decode(Dialect::cup_pos(), black_box(&cup))
                        .unwrap()
                        .bitmap(),
                );
            }
            "cup-encode" => {
                out.clear();
                let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
                b.header(header.as_slice());
                for (f, v) in &cup_values {
                    b.set(*f, v.as_slice());
                }
                b.encode(Dialect::cup_pos(), &mut out).unwrap();
                black_box(&out);
            }
            "ascii-decode" => {
                black_box(
                    decode(Dialect::iso87_ascii(), black_box(&ascii))
                        .unwrap()
                        .bitmap(),
                );
            }
            "ascii-decode-i8583" => {
                let mut u = i8583::Unpacker::new(black_box(&ascii));
                black_box(u.unpack(&i8583::v1987::SPEC).unwrap().len());
            }
            "ascii-decode-iso8583-codec" => {
                // The same fields behind a binary bitmap, the layout this crate reads.
                black_box(iso8583_codec::Message::parse(&iso_spec, black_box(&ascii_bin)).unwrap());
            }
            other => {
                eprintln!("unknown case {other:?}");
                std::process::exit(2);
            }
        }
    }
}

fn ascii_binary_bitmap(m: &codec::Message<'_>) -> Vec<u8> {
    let mut v = m.mti().as_bytes().to_vec();
    v.extend_from_slice(&m.bitmap().primary().to_be_bytes());
    let hex_bitmap_end = 4 + 16;
    v.extend_from_slice(&m.frame()[hex_bitmap_end..]);
    v
}

/// Sale requests built in every `pipeline-sale` run however many are sent: `icount.sh`'s
/// and `icount-steps.sh`'s larger count.
const BUILT: usize = 105;

/// `n` sales through an in-process switch, one at a time, after one sign-on.
fn pipeline_sales(n: usize) {
    use hsm_sim::ClearPin;
    use hsm_sim::primitives::cipher::DesKey;
    use hsm_sim::primitives::{mac, pinblock};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("icount-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = switch::Config::demo().unwrap();
    config.listen.terminals = "127.0.0.1:0".parse().unwrap();
    config.listen.metrics = "127.0.0.1:0".parse().unwrap();
    config.journal.path = dir.join("journal.db");
    let running = rt.block_on(switch::start(config)).unwrap();
    let sw = running.switch().clone();
    let header: Vec<u8> = vec![0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03];
    let mut b = MessageBuilder::new(codec::Mti::parse("0800").unwrap());
    b.header(header.as_slice())
        .set(11, "000001")
        .set(41, "10000001")
        .set(42, "898310048990001")
        .set(60, "00000001003");
    let reply = match rt.block_on(sw.handle(&b.encode_to_vec(Dialect::cup_pos()).unwrap())) {
        switch::pipeline::Handled::Reply(v) => v,
        other => panic!("{other:?}"),
    };
    let m = decode(Dialect::cup_pos(), &reply).unwrap();
    let f62 = m.bytes(62).unwrap();
    let tmk = DesKey::new(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
    let tpk = DesKey::new(&tmk.decrypt_ecb(&f62[..16]).unwrap()).unwrap();
    let tak = DesKey::new(&tmk.decrypt_ecb(&f62[20..28]).unwrap()).unwrap();
    let pan = "6222021000000000017";
    // The terminal's side (its PIN block, MAC and encoding) is made for as many frames at
    // every count up to `BUILT`, so that the difference between two counts is the
    // switch's alone.
    let frames: Vec<Vec<u8>> = (0..n.max(BUILT))
        .map(|i| {
            let block =
                tpk.encrypt(pinblock::format0(&ClearPin::new("123456").unwrap(), pan).unwrap());
            let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
            b.header(header.as_slice())
                .set(2, pan)
                .set(3, "000000")
                .set(4, "000000000001")
                .set(11, format!("{:06}", i + 2))
                .set(22, "021")
                .set(25, "00")
                .set(41, "10000001")
                .set(42, "898310048990001")
                .set(49, "156")
                .set(52, block.to_vec())
                .set(60, "22000001000");
            let mut out = Vec::new();
            b.encode_with_mac(Dialect::cup_pos(), &mut out, |d| {
                Some(mac::unionpay_ecb(&tak, d))
            })
            .unwrap();
            out
        })
        .collect();
    for f in &frames[..n] {
        black_box(rt.block_on(sw.handle(f)));
    }
    rt.block_on(running.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` transaction lines with the fields and types the switch's `observe` step logs.
fn log_lines(which: &str, n: usize) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_ansi(false);
    let layer: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = match which {
        "tracing" => Box::new(layer),
        "switch" => Box::new(
            layer
                .event_format(switch::log_text::TextLine)
                .fmt_fields(switch::log_text::TextFields),
        ),
        other => {
            eprintln!("unknown formatter {other:?}");
            std::process::exit(2);
        }
    };
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    let batch = switch::model::BatchNo(1);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            let stan = switch::model::Stan(i as u32 % 1_000_000);
            tracing::info!(
                kind = "sale",
                mti = "0200",
                tid = "10000001",
                mid = "898310048990001",
                batch = %batch,
                stan = %stan,
                operator = "01",
                pan = "622202******0017",
                amount_fen = 10_000u64,
                fee_fen = 50u64,
                rc = "00",
                reason = "approved",
                rrn = "612340000001",
                auth_code = "123456",
                issuer = "on-us",
                upstream = "-",
                latency_us = 412u64,
                "transaction"
            );
        }
    });
}
