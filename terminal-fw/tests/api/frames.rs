//! The terminal's frames decode with the codec to the fields DESIGN.md §4 prescribes; PIN
//! blocks and MACs verify with the published algorithms.

use codec::{Dialect, decode};
use hsm_sim::ClearPin;
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::{mac, pinblock};
use terminal_fw::{Card, Terminal};

use crate::{store, temp_dir};

const TPK: &str = "0123456789ABCDEFFEDCBA9876543210"; // test keys
const TAK: &str = "2222222222222222";

fn terminal(dir: &std::path::Path) -> Terminal {
    let mut s = store(dir, "10000201");
    s.set_secret("tpk", &hex::decode(TPK).unwrap()).unwrap();
    s.set_secret("tak", &hex::decode(TAK).unwrap()).unwrap();
    s.set_many(&[("batch", b"7")]).unwrap();
    Terminal::open(s, "127.0.0.1:9".parse().unwrap()).unwrap()
}

#[test]
fn sale_and_reversal_frames() {
    let dir = temp_dir("frames");
    let mut t = terminal(&dir);
    let card = Card {
        pan: "6222021000000000017".into(),
        expiry: Some("2912".into()),
    };
    let frame = t.sale_frame(&card, "123456", 12_345, "01").unwrap();
    let m = decode(Dialect::cup_pos(), &frame).unwrap();
    assert_eq!(&frame[..5], &[0x60, 0x00, 0x03, 0x00, 0x00], "TPDU");
    assert_eq!(m.mti().as_str(), "0200");
    let get = |p: &str| m.get(p).unwrap().unwrap().to_string();
    assert_eq!(get("3"), "000000");
    assert_eq!(get("4"), "000000012345");
    assert_eq!(get("14"), "2912");
    assert_eq!(get("22"), "021");
    assert_eq!(get("25"), "00");
    assert_eq!(get("41"), "10000201");
    assert_eq!(get("42"), "898310048990001");
    assert_eq!(get("49"), "156");
    assert_eq!(get("53"), "2600000000000000");
    assert_eq!(get("60.1"), "22");
    assert_eq!(get("60.2"), "000007");
    assert_eq!(get("63"), "001", "operator 01 as three characters");
    // PIN block: ISO 9564 format 0 under the TPK.
    let tpk = DesKey::new(&hex::decode(TPK).unwrap()).unwrap();
    let clear = tpk.decrypt(m.bytes(52).unwrap().try_into().unwrap());
    assert_eq!(
        pinblock::parse(&clear, hsm_sim::PinFormat::Iso0, &card.pan).unwrap(),
        ClearPin::new("123456").unwrap()
    );
    // MAC: UnionPay ECB over MTI..63 with the TAK; the published A8 vector checks the algorithm.
    let tak = DesKey::new(&hex::decode(TAK).unwrap()).unwrap();
    assert_eq!(
        mac::unionpay_ecb(
            &tak,
            &hex::decode("1234567890ABCDEFABCDEF1234567890").unwrap()
        ),
        *b"E267B6E2"
    );
    assert_eq!(m.bytes(64).unwrap(), mac::unionpay_ecb(&tak, m.mac_data()));

    let rev = t.reversal_of(&frame).unwrap();
    let r = decode(Dialect::cup_pos(), &rev).unwrap();
    assert_eq!(r.mti().as_str(), "0400");
    assert_eq!(r.text(39), Some("98"));
    for n in [2u8, 3, 4, 11, 22, 25, 41, 42, 49, 60] {
        assert_eq!(
            r.field(n).unwrap().wire(),
            m.field(n).unwrap().wire(),
            "field {n} as the original"
        );
    }
    assert!(r.bytes(52).is_none(), "no PIN block in a reversal");
    assert_eq!(r.bytes(64).unwrap(), mac::unionpay_ecb(&tak, r.mac_data()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A host that records each frame and answers `00` with a MAC under the test TAK (and, for
/// settlement, field 48 marked balanced).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Good,
    /// Replies MACed under another key.
    BadMac,
    /// Sign-on replies whose field 62 check values do not match.
    BadKeys,
}

type Recorded = (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
);

async fn recorder() -> Recorded {
    recorder_in(Mode::Good).await
}

async fn recorder_in(mode: Mode) -> Recorded {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        loop {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut body).await.unwrap();
            let m = decode(Dialect::cup_pos(), &body).unwrap();
            let mut b = codec::MessageBuilder::new(m.mti().response());
            b.header(body[..11].to_vec());
            for n in [11u8, 41, 42] {
                b.set(n, m.field(n).unwrap().canonical());
            }
            b.set(37, "000000000001").set(39, "00");
            if let Some(f48) = m.digits(48).filter(|_| m.mti().as_u16() == 500) {
                let mut v: Vec<char> = f48.to_string().chars().collect();
                v[30] = '1';
                b.set(48, v.into_iter().collect::<String>());
            }
            if m.mti().as_u16() == 800 {
                // Keys under the demo TMK; BadKeys spoils the TAK's check value.
                let tmk =
                    DesKey::new(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
                let mut f62 = tmk.encrypt_ecb(&hex::decode(TPK).unwrap()).unwrap();
                f62.extend_from_slice(
                    &DesKey::new(&hex::decode(TPK).unwrap())
                        .unwrap()
                        .encrypt([0; 8])[..4],
                );
                f62.extend_from_slice(&tmk.encrypt_ecb(&hex::decode(TAK).unwrap()).unwrap());
                f62.extend_from_slice(&[0; 8]);
                let mut kcv = DesKey::new(&hex::decode(TAK).unwrap())
                    .unwrap()
                    .encrypt([0; 8])[..4]
                    .to_vec();
                if mode == Mode::BadKeys {
                    kcv[0] ^= 1;
                }
                f62.extend_from_slice(&kcv);
                b.set(60, "00000009003").set(62, f62);
                let out = b.encode_to_vec(Dialect::cup_pos()).unwrap();
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                s.write_all(&framed).await.unwrap();
                tx.send(body).unwrap();
                continue;
            }
            let key = if mode == Mode::BadMac {
                "3333333333333333"
            } else {
                TAK
            };
            let tak = DesKey::new(&hex::decode(key).unwrap()).unwrap();
            let mut out = Vec::new();
            b.encode_with_mac(Dialect::cup_pos(), &mut out, |d| {
                Some(mac::unionpay_ecb(&tak, d))
            })
            .unwrap();
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            s.write_all(&framed).await.unwrap();
            tx.send(body).unwrap();
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn void_refund_qr_and_settlement_frames() {
    let dir = temp_dir("frames2");
    let (addr, mut seen) = recorder().await;
    let mut s = store(&dir, "10000202");
    s.pbkdf2_iterations = 1_000;
    s.set_secret("tpk", &hex::decode(TPK).unwrap()).unwrap();
    s.set_secret("tak", &hex::decode(TAK).unwrap()).unwrap();
    s.set_many(&[("batch", b"3")]).unwrap();
    {
        let mut ops = terminal_fw::operators::Operators::new(&mut s).unwrap();
        ops.change_password("00", terminal_fw::operators::FACTORY_SUPERVISOR, "246802")
            .unwrap();
    }
    let mut t = Terminal::open(s, addr).unwrap();
    let card = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let sale = t.sale(&card, "123456", 500, "01").await.unwrap();
    assert_eq!(sale.rc, "00");
    let sale_trace = sale.entry.unwrap().stan;
    seen.recv().await.unwrap();
    // A void needs the supervisor password, checked on the terminal (never sent).
    assert!(t.void("000000", &card, sale_trace, "01").await.is_err());
    t.void("246802", &card, sale_trace, "01").await.unwrap();
    let f = seen.recv().await.unwrap();
    let m = decode(Dialect::cup_pos(), &f).unwrap();
    let get = |p: &str| m.get(p).unwrap().unwrap().to_string();
    assert_eq!(
        (m.mti().as_str(), get("3").as_str(), get("60.1").as_str()),
        ("0200", "200000", "23")
    );
    assert_eq!(get("4"), "000000000500");
    assert_eq!(get("61.1"), "000003");
    assert_eq!(get("61.2"), format!("{sale_trace:06}"));
    assert!(
        !String::from_utf8_lossy(&f).contains("246802"),
        "the supervisor password never travels"
    );

    t.refund("246802", &card, 200, "000000000001", "1122", "01")
        .await
        .unwrap();
    let f = seen.recv().await.unwrap();
    let m = decode(Dialect::cup_pos(), &f).unwrap();
    let get = |p: &str| m.get(p).unwrap().unwrap().to_string();
    assert_eq!(
        (
            m.mti().as_str(),
            get("60.1").as_str(),
            get("37").as_str(),
            get("61.3").as_str()
        ),
        ("0220", "25", "000000000001", "1122")
    );

    t.qr("280000000000000001", 100, None, "01").await.unwrap();
    let f = seen.recv().await.unwrap();
    let m = decode(Dialect::cup_pos(), &f).unwrap();
    assert_eq!(m.text(59), Some("QR280000000000000001"));
    assert!(m.get("22").unwrap().unwrap().to_string().starts_with("03"));

    // Settlement: the sale was voided, so no sales; one refund of 2.00.
    let s = t.settle("246802", "01").await.unwrap();
    assert!(s.balanced);
    let f = seen.recv().await.unwrap();
    let m = decode(Dialect::cup_pos(), &f).unwrap();
    assert_eq!(m.mti().as_str(), "0500");
    assert_eq!(m.get("60.3").unwrap().unwrap().to_string(), "201");
    let f48 = m.digits(48).unwrap().to_string();
    assert_eq!(
        &f48[..31],
        "0000000001000010000000002000010",
        "QR sale 1.00 (1), refund 2.00 (1), code 0"
    );
    assert_eq!(t.batch().unwrap(), 4, "the next batch opens");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_reply_mac_keeps_the_reversal_and_bad_keys_are_refused() {
    let dir = temp_dir("badmac");
    let (addr, _seen) = recorder_in(Mode::BadMac).await;
    let mut t = Terminal::open(store(&dir, "10000203"), addr).unwrap();
    // Sign-on installs the keys (sign-on replies carry no MAC).
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
    assert_eq!(t.batch().unwrap(), 9);
    let card = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let r = t.sale(&card, "123456", 100, "01").await;
    assert!(
        matches!(r, Err(terminal_fw::TxnError::BadReplyMac)),
        "{r:?}"
    );
    assert!(
        t.store.pending_reversal().unwrap().is_some(),
        "a bad reply MAC leaves the reversal to send"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = temp_dir("badkeys");
    let (addr, _seen) = recorder_in(Mode::BadKeys).await;
    let mut t = Terminal::open(store(&dir, "10000204"), addr).unwrap();
    assert!(matches!(
        t.sign_on("01").await,
        Err(terminal_fw::TxnError::BadKeys)
    ));
    assert!(
        t.store.get_secret("tak").unwrap().is_none(),
        "keys failing their check values are not installed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
