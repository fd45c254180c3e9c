//! The fuzz targets' committed corpora and crashes (`fuzz/corpus/<target>`,
//! `fuzz/artifacts/<target>`), replayed with the targets' own properties on every test
//! run: what a long fuzzing session found stays found.

use std::path::{Path, PathBuf};

use codec::{Dialect, MessageBuilder};
use switch::pipeline::Handled;

use crate::client::Terminal;
use crate::{start, temp_dir, test_config};

/// Every input of a target: its corpus, then its artifacts (crashes found).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                out.push((e.path(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn decode_corpus_decodes_and_re_encodes_byte_exact() {
    let all = inputs("decode");
    assert!(!all.is_empty(), "the decode corpus is committed");
    for (path, data) in all {
        for d in [
            Dialect::cup_pos(),
            Dialect::iso87_ascii(),
            Dialect::iso87_binary(),
        ] {
            if let Ok(msg) = codec::decode(d, &data) {
                let _ = format!("{msg:?} {msg}");
                let again = MessageBuilder::from_message(&msg).encode_to_vec(d);
                assert_eq!(again.as_deref(), Ok(&data[..]), "{}", path.display());
            }
        }
    }
}

#[test]
fn describe_config_and_issuer_framing_corpora_never_panic() {
    use tokio_util::codec::Decoder;
    for (_, data) in inputs("describe") {
        for d in [
            Dialect::cup_pos(),
            Dialect::iso87_ascii(),
            Dialect::iso87_binary(),
        ] {
            let _ = switch::describe::describe(d, &data, true, true);
            let _ = switch::describe::describe(d, &data, false, false);
        }
    }
    for (_, data) in inputs("config") {
        if let Ok(text) = std::str::from_utf8(&data)
            && let Ok(c) = switch::Config::parse(text, "corpus")
        {
            let _ = c.validate();
        }
    }
    for (_, data) in inputs("issuer_framing") {
        for f in [codec::Framing::U16, codec::Framing::Ascii4] {
            let mut lines = codec::framing::FrameCodec::new(f, 8192);
            let mut buf = bytes::BytesMut::from(&data[..]);
            while let Ok(Some(frame)) = lines.decode(&mut buf) {
                assert!(frame.len() <= 8192);
            }
        }
    }
}

#[tokio::test]
async fn pipeline_corpus_is_answered_raw_and_resealed() {
    let all = inputs("pipeline");
    assert!(!all.is_empty(), "the pipeline corpus is committed");
    let dir = temp_dir("fuzz-corpus");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    for (path, data) in all {
        let Some((mode, body)) = data.split_first() else {
            continue;
        };
        // As the target does: odd first bytes are re-sealed as the signed-on terminal's.
        let frame = match (mode & 1, codec::decode(Dialect::cup_pos(), body)) {
            (1, Ok(msg)) => {
                let mut b = MessageBuilder::from_message(&msg);
                b.set(41, t.tid.clone()).set(42, t.mid.clone());
                let mut out = Vec::new();
                let tak =
                    hsm_sim::primitives::cipher::DesKey::new(t.tak.as_ref().unwrap()).unwrap();
                match b.encode_with_mac(Dialect::cup_pos(), &mut out, |d| {
                    Some(hsm_sim::primitives::mac::unionpay_ecb(&tak, d))
                }) {
                    Ok(_) => out,
                    Err(_) => body.to_vec(),
                }
            }
            _ => body.to_vec(),
        };
        if let Handled::Reply(reply) = sw.switch().handle(&frame).await {
            assert!(
                codec::decode(Dialect::cup_pos(), &reply).is_ok(),
                "{}: the reply decodes",
                path.display()
            );
        }
    }
    sw.shutdown().await;
}

#[test]
fn payshield_corpus_always_gets_an_error_code() {
    use hsm_sim::payshield::{Config, PayShield, VariantLmk};
    let hsm = PayShield::new(
        VariantLmk::test(),
        &Config {
            allow_test_lmk: true,
            ..Config::default()
        },
    )
    .unwrap();
    let all = inputs("payshield");
    assert!(!all.is_empty(), "the payshield corpus is committed");
    for (path, data) in all {
        let out = hsm.process(&data);
        assert!(out.len() >= 4, "{}", path.display());
        assert!(
            out[2..4].iter().all(u8::is_ascii_digit),
            "{}",
            path.display()
        );
        let _ = hsm_sim::payshield::server::answer(&hsm, 4, &data);
    }
}
