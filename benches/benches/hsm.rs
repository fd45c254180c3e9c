//! HSM benchmarks: PVV verification from an encrypted PIN block (the on-us PIN check of
//! every sale), PIN translation TPK → ZPK (every forwarded sale), and MACs over a 200-byte
//! message (every request and reply); the same for SM4 (国密) terminals beside them: an SM4
//! TPK's block translated to a TDES ZPK, and the SM4 POS MAC.
//!
//! Run: `cargo bench -p benches --bench hsm`. Per-call medians; calls per second on one
//! core = 1 / median.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hsm_sim::{ClearPin, Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, MacAlgorithm, PinFormat};

const PAN: &str = "6222021000000000017";

fn hsm_benches(c: &mut Criterion) {
    let hsm = Hsm::new(
        Lmk::test(),
        &HsmConfig {
            allow_test_keys: true,
            ..HsmConfig::default()
        },
    )
    .unwrap();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let zpk = hsm
        .generate_key(KeyUsage::Zpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    let tak = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Des).unwrap();
    let zak = hsm
        .generate_key(KeyUsage::Zak, KeyAlgorithm::Tdes2)
        .unwrap();
    let pin = ClearPin::new("123456").unwrap();
    let pvv = hsm.generate_pvv(&pvk, PAN, 1, &pin).unwrap();
    let block = hsm.encrypt_pin(&tpk, &pin, PAN, PinFormat::Iso0).unwrap();
    assert!(
        hsm.verify_pin_pvv(&tpk, &block, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
            .unwrap()
    );
    let message: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();

    let mut g = c.benchmark_group("hsm");
    g.bench_function("pvv_verify_iso0", |b| {
        b.iter(|| {
            black_box(
                hsm.verify_pin_pvv(&tpk, black_box(&block), PinFormat::Iso0, PAN, &pvk, 1, &pvv)
                    .unwrap(),
            )
        })
    });
    g.bench_function("translate_tpk_to_zpk_iso0", |b| {
        b.iter(|| {
            black_box(
                hsm.translate_pin(
                    &tpk,
                    PinFormat::Iso0,
                    &zpk,
                    PinFormat::Iso0,
                    black_box(&block),
                    PAN,
                )
                .unwrap(),
            )
        })
    });
    let mac = hsm
        .generate_mac(&tak, MacAlgorithm::UnionpayEcb, &message)
        .unwrap();
    g.bench_function("unionpay_mac_verify_200B", |b| {
        b.iter(|| {
            black_box(
                hsm.verify_mac(
                    &tak,
                    MacAlgorithm::UnionpayEcb,
                    black_box(&message),
                    mac.as_bytes(),
                )
                .unwrap(),
            )
        })
    });
    // SM4 terminals: their PIN block to a TDES issuer's ZPK, and their MAC.
    let sm4_tpk = hsm.generate_key(KeyUsage::Tpk, KeyAlgorithm::Sm4).unwrap();
    let sm4_tak = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Sm4).unwrap();
    let sm4_block = hsm
        .encrypt_pin(&sm4_tpk, &pin, PAN, PinFormat::Sm4)
        .unwrap();
    g.bench_function("translate_sm4_tpk_to_tdes_zpk", |b| {
        b.iter(|| {
            black_box(
                hsm.translate_pin(
                    &sm4_tpk,
                    PinFormat::Sm4,
                    &zpk,
                    PinFormat::Iso0,
                    black_box(&sm4_block),
                    PAN,
                )
                .unwrap(),
            )
        })
    });
    let sm4_mac = hsm
        .generate_mac(&sm4_tak, MacAlgorithm::UnionpaySm4, &message)
        .unwrap();
    g.bench_function("sm4_mac_verify_200B", |b| {
        b.iter(|| {
            black_box(
                hsm.verify_mac(
                    &sm4_tak,
                    MacAlgorithm::UnionpaySm4,
                    black_box(&message),
                    sm4_mac.as_bytes(),
                )
                .unwrap(),
            )
        })
    });
    g.bench_function("x919_mac_generate_200B", |b| {
        b.iter(|| {
            black_box(
                hsm.generate_mac(&zak, MacAlgorithm::X919, black_box(&message))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, hsm_benches);
criterion_main!(benches);
