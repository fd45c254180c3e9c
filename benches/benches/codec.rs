//! Codec benchmarks: decode and encode of the CUP sale capture and the jPOS ISO 87 binary
//! image, and an ASCII 0200 decoded and encoded by this codec and by the peer crates
//! `i8583` and `iso8583-codec` in the same run.
//!
//! Run: `cargo bench -p benches --bench codec`. Compare the medians side by side; the machine
//! is shared, so ratios within one run mean more than absolute numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::hint::black_box;

use codec::{Dialect, Encoding, MessageBuilder, decode};
use criterion::{Criterion, criterion_group, criterion_main};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    (0..s.len() / 2 * 2)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A vector from the codec's fixtures (their sources are cited there), as bytes.
fn fixture(name: &str) -> Vec<u8> {
    let text = include_str!("../../codec/tests/fixtures/messages.toml");
    let start = text.find(&format!("name = \"{name}\"")).unwrap();
    let hex_start = start + text[start..].find("hex = \"\"\"").unwrap() + 9;
    let hex_end = hex_start + text[hex_start..].find("\"\"\"").unwrap();
    unhex(&text[hex_start..hex_end])
}

/// The logical values of a message, as a terminal or switch would set them.
fn logical(dialect: &Dialect, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let msg = decode(dialect, bytes).unwrap();
    msg.fields()
        .map(|f| {
            let v = match f.spec().format.data {
                Encoding::Binary => f.wire().to_vec(),
                Encoding::Hex => unhex(f.text().unwrap()),
                _ => f.canonical().into_bytes(),
            };
            (f.number(), v)
        })
        .collect()
}

/// The CUP sale's fields as an ISO 87 ASCII 0200 (track separator `=`, field 60 as text),
/// the message all three codecs are timed on. Fields 52, 55, 59 and 64 are left out: the
/// peers' 1987 tables have no binary PIN or MAC field to compare like for like.
fn ascii_equivalent(cup: &[u8]) -> Vec<u8> {
    let sale = decode(Dialect::cup_pos(), cup).unwrap();
    let mut b = MessageBuilder::new(sale.mti());
    for n in [2u8, 3, 4, 11, 14, 22, 23, 25, 26, 35, 41, 42, 49, 53, 60] {
        let v = sale.field(n).unwrap().canonical().replace('D', "=");
        b.set(n, v);
    }
    b.encode_to_vec(Dialect::iso87_ascii()).unwrap()
}

/// ISO 87 ASCII fields behind a binary bitmap, the layout `iso8583-codec` reads: made from
/// the built-in ASCII dialect file with one line changed, since dialects are data.
fn ascii_binary_bitmap() -> &'static Dialect {
    let text = include_str!("../../codec/src/dialects/iso87-ascii.toml")
        .replace("bitmap = \"hex\"", "bitmap = \"binary\"")
        .replace(
            "name = \"iso87-ascii\"",
            "name = \"iso87-ascii-binary-bitmap\"",
        );
    Box::leak(Box::new(Dialect::from_toml(&text).unwrap()))
}

fn bench_ours(c: &mut Criterion, group: &str, dialect: &'static Dialect, bytes: &[u8]) {
    let values = logical(dialect, bytes);
    let header = decode(dialect, bytes).unwrap().header().to_vec();
    let mti = decode(dialect, bytes).unwrap().mti();
    let mut g = c.benchmark_group(group);
    g.bench_function("decode", |b| {
        b.iter(|| {
            let m = decode(dialect, black_box(bytes)).unwrap();
            black_box(m.bitmap());
        })
    });
    let mut out = Vec::with_capacity(1024);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            let mut mb = MessageBuilder::new(mti);
            mb.header(header.as_slice());
            for (n, v) in &values {
                mb.set(*n, v.as_slice());
            }
            mb.encode(dialect, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();
}

fn codec_benches(c: &mut Criterion) {
    // CUP POS sale capture (vector A1), without its 2-byte length.
    let cup = fixture("cup_sale_codetd")[2..].to_vec();
    assert!(decode(Dialect::cup_pos(), &cup).is_ok());
    bench_ours(c, "cup_sale", Dialect::cup_pos(), &cup);
    bench_ours(
        c,
        "iso87_binary_jpos",
        Dialect::iso87_binary(),
        &fixture("jpos_iso87_binary"),
    );

    // The same ASCII 0200 through this codec and the two peers.
    let ascii = ascii_equivalent(&cup);
    let ascii_0200 = ascii.as_slice();
    bench_ours(c, "ascii_0200/ours", Dialect::iso87_ascii(), ascii_0200);

    let mut g = c.benchmark_group("ascii_0200/i8583");
    {
        let mut un = i8583::Unpacker::new(ascii_0200);
        assert!(un.unpack(&i8583::v1987::SPEC).is_ok());
    }
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut un = i8583::Unpacker::new(black_box(ascii_0200));
            black_box(un.unpack(&i8583::v1987::SPEC).unwrap().len());
        })
    });
    let fields: Vec<(usize, Vec<u8>)> = {
        let mut un = i8583::Unpacker::new(ascii_0200);
        let els = un.unpack(&i8583::v1987::SPEC).unwrap();
        els.iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .filter_map(|(i, e)| e.map(|e| (i, e.to_vec())))
            .collect()
    };
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut p = i8583::Packer::new(&i8583::v1987::SPEC);
            for (n, v) in &fields {
                p.set_field(*n, Cow::Borrowed(v.as_slice())).unwrap();
            }
            black_box(p.pack(Vec::with_capacity(256)).unwrap());
        })
    });
    g.finish();

    // iso8583-codec reads ASCII fields behind a binary bitmap: the same message in that layout.
    let dialect = ascii_binary_bitmap();
    let ascii_bin = {
        let m = decode(Dialect::iso87_ascii(), ascii_0200).unwrap();
        MessageBuilder::from_message(&m)
            .encode_to_vec(dialect)
            .unwrap()
    };
    let ascii_0200 = ascii_bin.as_slice();
    bench_ours(c, "ascii_0200_binary_bitmap/ours", dialect, ascii_0200);
    let spec = iso8583_codec::Spec::iso8583_1987();
    let parsed = iso8583_codec::Message::parse(&spec, ascii_0200).unwrap();
    assert_eq!(parsed.encode(&spec).unwrap(), ascii_0200);
    let mut g = c.benchmark_group("ascii_0200_binary_bitmap/iso8583-codec");
    g.bench_function("decode", |b| {
        b.iter(|| black_box(iso8583_codec::Message::parse(&spec, black_box(ascii_0200)).unwrap()))
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            // Its setters reject some of its own parsed values (an all-zero amount), so the
            // message is cloned whole rather than rebuilt field by field.
            let m = black_box(&parsed).clone();
            m.encode_to(&spec, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
