//! The payShield host protocol over TCP: every command against an independent reference
//! (`scripts/payshield-vectors.py`), round trips through random keys, PIN formats, wrong
//! keys and parity, malformed and truncated frames, pipelining, concurrency, the failure
//! limiter, the audit log, and the `serve` binary itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use hsm_sim::payshield::server::{self, ServerConfig};
use hsm_sim::payshield::{Config, KeyType, PayShield, Scheme, VariantLmk};
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::pinblock::{ClearPin, format0};

fn start(config: Config, header_len: usize) -> (SocketAddr, Arc<PayShield>) {
    let hsm = Arc::new(PayShield::new(VariantLmk::test(), &config).unwrap());
    let server = server::spawn(
        "127.0.0.1:0",
        Arc::clone(&hsm),
        ServerConfig {
            header_len,
            max_connections: 64,
        },
    )
    .unwrap();
    (server.addr(), hsm)
}

fn test_config() -> Config {
    Config {
        allow_test_lmk: true,
        ..Config::default()
    }
}

struct Client(TcpStream);

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self(s)
    }

    fn send(&mut self, payload: &[u8]) {
        let mut f = (payload.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        self.0.write_all(&f).unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut len = [0u8; 2];
        self.0.read_exact(&mut len).unwrap();
        let mut b = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.0.read_exact(&mut b).unwrap();
        b
    }

    /// Sends `command` under header `0000`, returns the response after the header.
    fn cmd(&mut self, command: &str) -> String {
        self.send(format!("0000{command}").as_bytes());
        let r = self.recv();
        assert_eq!(&r[..4], b"0000", "header echoed");
        String::from_utf8(r[4..].to_vec()).unwrap()
    }
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    command: String,
    response: String,
}

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[test]
fn every_command_agrees_with_the_independent_reference() {
    let (addr, _) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    let v: Vectors = serde_json::from_str(include_str!("../fixtures/payshield.json")).unwrap();
    assert!(v.vectors.len() >= 70);
    for t in &v.vectors {
        assert_eq!(c.cmd(&t.command), t.response, "{}", t.name);
    }
}

#[test]
fn the_two_published_vectors() {
    let (addr, _) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd("BU0200406FBB23A5214DF"), "BV000035BBE340A4B763");
    assert_eq!(
        c.cmd("CA0406FBB23A5214DFBAB32D775A38E4AB12DC80B186C30902B00303550000025321"),
        "CB0004F7808F2CBEC6316803"
    );
}

fn clear_of(hsm: &PayShield, t: KeyType, tagged: &str) -> Vec<u8> {
    let (scheme, hex_part) = match tagged.as_bytes()[0] {
        b'U' => (Scheme::U, &tagged[1..]),
        b'T' => (Scheme::T, &tagged[1..]),
        b'X' => (Scheme::X, &tagged[1..]),
        _ => (Scheme::Single, tagged),
    };
    hsm.lmk()
        .decrypt(t, scheme, &hex::decode(hex_part).unwrap())
        .unwrap()
        .to_vec()
}

#[test]
fn generated_keys_export_under_a_tmk_and_check_out() {
    let (addr, hsm) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    // A TMK, then a TPK generated under the LMK and under the TMK (X9.17, as a terminal
    // takes it), then the same through A8.
    let r = c.cmd("A00002U");
    assert_eq!(&r[..4], "A100");
    let tmk = &r[4..37];
    let tmk_kcv = &r[37..43];
    assert_eq!(r.len(), 43);
    let tmk_clear = clear_of(&hsm, KeyType::TPK, tmk);
    assert!(
        tmk_clear.iter().all(|b| b.count_ones() % 2 == 1),
        "odd parity"
    );
    let bu = c.cmd(&format!("BU021{tmk}"));
    assert_eq!(&bu[4..10], tmk_kcv);

    let r = c.cmd(&format!("A01002U;1{tmk}X"));
    assert_eq!(&r[..4], "A100", "{r}");
    let tpk = &r[4..37];
    let under_tmk = &r[37..70];
    assert_eq!(&under_tmk[..1], "X");
    let tpk_clear = clear_of(&hsm, KeyType::TPK, tpk);
    let tmk_cipher = DesKey::new(&tmk_clear).unwrap();
    let from_tmk = tmk_cipher
        .decrypt_ecb(&hex::decode(&under_tmk[1..]).unwrap())
        .unwrap();
    assert_eq!(from_tmk, tpk_clear, "the terminal recovers the same key");
    let kcv = &r[70..76];
    assert_eq!(kcv, hex::encode_upper(&tmk_cipher_kcv(&tpk_clear)[..3]));

    let e = c.cmd(&format!("A8002;1{tmk}{tpk}X"));
    assert_eq!(e, format!("A900{under_tmk}{kcv}"));
    // A key under the wrong key type does not open: parity or a wrong check value.
    let wrong = c.cmd(&format!("BU011{tpk}"));
    assert!(wrong != format!("BV00{}", &bu[4..]), "{wrong}");

    // The audit log has the generations and exports, by check value.
    let entries = hsm.audit().entries();
    assert!(entries.iter().any(|e| e.kcv == kcv));
    hsm.audit().verify(&entries).unwrap();
}

fn tmk_cipher_kcv(k: &[u8]) -> [u8; 8] {
    DesKey::new(k).unwrap().encrypt([0u8; 8])
}

#[test]
fn pins_under_the_lmk_give_offsets_and_pvvs_that_verify() {
    let (addr, hsm) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    let tpk = &c.cmd("A00002U")[4..37].to_string();
    let pvk = &c.cmd("A00002U")[4..37].to_string();
    let tpk_clear = clear_of(&hsm, KeyType::TPK, tpk);
    let account = "602210000000";
    let pan = "6222100000000007";
    for pin in ["1234", "246810", "135792468024"] {
        let block = DesKey::new(&tpk_clear)
            .unwrap()
            .encrypt(format0(&ClearPin::new(pin).unwrap(), &format!("{account}0")).unwrap());
        let block = hex::encode_upper(block);
        let _ = pan;
        let r = c.cmd(&format!("JC{tpk}{block}01{account}"));
        assert_eq!(&r[..4], "JD00");
        let under_lmk = &r[4..];
        assert_eq!(under_lmk.len(), pin.len() + 1);
        assert!(!under_lmk.contains(pin), "not the clear PIN");
        let n = pin.len();
        let off = c.cmd(&format!(
            "DE{pvk}{under_lmk}{n:02}{account}0123456789012345{account}"
        ));
        assert_eq!(&off[..4], "DF00", "{off}");
        let offset = &off[4..];
        assert_eq!(offset.len(), 12);
        let ok = c.cmd(&format!(
            "DA{tpk}{pvk}{n:02}{block}01{n:02}{account}0123456789012345{account}{offset}"
        ));
        assert_eq!(ok, "DB00");
        let pvv = c.cmd(&format!("DG{pvk}{under_lmk}{account}3"));
        assert_eq!(&pvv[..4], "DH00");
        let ok = c.cmd(&format!("DC{tpk}{pvk}{block}01{account}3{}", &pvv[4..]));
        assert_eq!(ok, "DD00");
        // Every single-digit change of the PIN fails DA.
        for i in 0..n {
            let mut other: Vec<u8> = pin.bytes().collect();
            other[i] = b'0' + (other[i] - b'0' + 1) % 10;
            let other = String::from_utf8(other).unwrap();
            let b = DesKey::new(&tpk_clear)
                .unwrap()
                .encrypt(format0(&ClearPin::new(&other).unwrap(), &format!("{account}0")).unwrap());
            let r = c.cmd(&format!(
                "DA{tpk}{pvk}{n:02}{}01{n:02}{account}0123456789012345{account}{offset}",
                hex::encode_upper(b)
            ));
            assert_eq!(r, "DB01");
        }
    }
    // A tampered PIN-under-LMK field is refused.
    assert_eq!(
        c.cmd(&format!("DG{pvk}99999{account}3")).get(..4),
        Some("DH14")
    );
}

#[test]
fn translated_blocks_in_formats_1_and_3_carry_the_pin() {
    let (addr, hsm) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    let tpk = c.cmd("A00002U")[4..37].to_string();
    let zpk = c.cmd("A00001U")[4..37].to_string();
    let tpk_clear = clear_of(&hsm, KeyType::TPK, &tpk);
    let account = "123456789012";
    let block = DesKey::new(&tpk_clear)
        .unwrap()
        .encrypt(format0(&ClearPin::new("4321").unwrap(), &format!("{account}0")).unwrap());
    let block = hex::encode_upper(block);
    for fmt in ["05", "47", "01", "03"] {
        let r = c.cmd(&format!("CA{tpk}{zpk}12{block}01{fmt}{account}"));
        assert_eq!(&r[..6], "CB0004", "{fmt}");
        assert_eq!(&r[22..], fmt);
        // Back through CC to format 0 gives the same PIN (compared through JE).
        let back = c.cmd(&format!("CC{zpk}{zpk}12{}{fmt}01{account}", &r[6..22]));
        assert_eq!(&back[..6], "CD0004");
        let a = c.cmd(&format!("JE{zpk}{}01{account}", &back[6..22]));
        let b = c.cmd(&format!("JC{tpk}{block}01{account}"));
        assert_eq!(a[4..], b[4..], "{fmt}");
    }
    // Random fill makes formats 1 and 3 differ each time.
    let one = c.cmd(&format!("CA{tpk}{zpk}12{block}0105{account}"));
    let two = c.cmd(&format!("CA{tpk}{zpk}12{block}0105{account}"));
    assert_ne!(one, two);
}

#[test]
fn malformed_input_gets_error_codes_and_the_connection_lives() {
    let (addr, hsm) = start(test_config(), 4);
    let mut c = Client::connect(addr);
    let tpk = c.cmd("A00002U")[4..37].to_string();
    let cases: &[(&str, &str)] = &[
        ("CA", "CB15"),
        ("CA U12", "CB15"),
        ("DA", "DB15"),
        ("BU02", "BV15"),
        ("M6", "M715"),
        ("M6011110003", "M704"),
        ("M601111003", "M715"),
        ("CWZZZZ", "CX15"),
        ("A0", "A115"),
        ("A09", "A115"),
        ("NCextra", "ND15"),
        ("BU0F00406FBB23A5214DF", "BV04"),
        ("A000FU", "A104"),
        ("A00000Q", "A126"),
        ("??", "?@68"),
        ("J", "ZZ15"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd}");
    }
    // A key with its parity broken: one parity bit of the clear key flipped, encrypted
    // again under the LMK. (Flipping a bit of the cryptogram instead decrypts to a random
    // block, whose parity is right one time in 256.)
    let mut bad = clear_of(&hsm, KeyType::TPK, &tpk);
    bad[3] ^= 0x01;
    let bad = hsm.lmk().encrypt(KeyType::TPK, Scheme::U, &bad).unwrap();
    let r = c.cmd(&format!("BU021U{}", hex::encode_upper(&*bad)));
    assert!(r == "BV10", "{r}");
    // Random bytes of every length never kill the server.
    let mut seed = 0x2545F4914F6CDD1Du64;
    for len in 0..300usize {
        let mut body = b"0000".to_vec();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push((seed >> 24) as u8);
        }
        c.send(&body);
        let r = c.recv();
        assert_eq!(&r[..4], b"0000");
    }
    assert_eq!(c.cmd("NC").get(..4), Some("ND00"));
    // A frame shorter than its header closes that connection only.
    let mut short = Client::connect(addr);
    short.send(b"00");
    let mut buf = [0u8; 1];
    assert_eq!(short.0.read(&mut buf).unwrap(), 0, "closed");
    // A truncated frame (length says more than comes) holds only its own connection.
    let mut stuck = Client::connect(addr);
    stuck.0.write_all(&[0, 50, b'0', b'0']).unwrap();
    assert_eq!(c.cmd("NC").get(..4), Some("ND00"));
}

#[test]
fn headers_and_trailers_are_echoed() {
    let (addr, _) = start(test_config(), 6);
    let mut c = Client::connect(addr);
    c.send(b"ABCDEFNC\x19TRAILER");
    let r = c.recv();
    assert!(r.starts_with(b"ABCDEFND00"));
    assert!(r.ends_with(b"\x19TRAILER"));
}

#[test]
fn pipelined_requests_are_answered_in_order_on_many_connections() {
    let (addr, _) = start(test_config(), 4);
    let mut threads = Vec::new();
    for t in 0..8 {
        threads.push(std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            for i in 0..200u32 {
                let h = format!("{:04}", (t * 1000 + i) % 10_000);
                c.send(format!("{h}BU0200406FBB23A5214DF").as_bytes());
            }
            for i in 0..200u32 {
                let h = format!("{:04}", (t * 1000 + i) % 10_000);
                let r = c.recv();
                assert_eq!(r, format!("{h}BV000035BBE340A4B763").into_bytes());
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_failure_limiter_stops_verification() {
    let (addr, _) = start(
        Config {
            pin_failures_per_window: 3,
            pin_failure_window: Duration::from_secs(3600),
            ..test_config()
        },
        4,
    );
    let mut c = Client::connect(addr);
    let v: Vectors = serde_json::from_str(include_str!("../fixtures/payshield.json")).unwrap();
    let wrong = v
        .vectors
        .iter()
        .find(|t| t.name == "DA wrong len 4")
        .unwrap();
    let right = v.vectors.iter().find(|t| t.name == "DA ok len 4").unwrap();
    assert_eq!(c.cmd(&right.command), "DB00");
    for _ in 0..3 {
        assert_eq!(c.cmd(&wrong.command), "DB01");
    }
    assert_eq!(c.cmd(&right.command), "DB01", "refused past the limit");
}

#[test]
fn disabled_commands_and_the_test_lmk_rule() {
    let (addr, _) = start(
        Config {
            disabled: vec![*b"A0"],
            ..test_config()
        },
        4,
    );
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd("A00002U"), "A168");
    assert!(PayShield::new(VariantLmk::test(), &Config::default()).is_err());
}

#[test]
fn the_serve_binary_answers_and_refuses_a_test_lmk_file() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsm-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--variant-lmk", "test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse().ok())
        .unwrap();
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd("BU0200406FBB23A5214DF"), "BV000035BBE340A4B763");
    child.kill().unwrap();
    child.wait().unwrap();

    let dir = std::env::temp_dir().join(format!("payshield-lmk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lmk.txt");
    std::fs::write(&file, hsm_sim::payshield::variant::TEST_LMK.join("\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hsm-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--variant-lmk"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TEST LMK"));
}
