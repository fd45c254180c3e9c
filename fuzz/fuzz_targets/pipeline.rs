//! The pipeline's `handle` on an in-process switch with test keys. Half the inputs go in
//! as they are; the other half are re-sealed first (TID, MID and a valid MAC under the
//! signed-on terminal's TAK), so the fuzzer reaches the steps after authentication: card,
//! PIN, fee, lifecycle, journal. Whatever comes in, the switch answers with a frame that
//! decodes, ignores it, or closes; it never panics.
//!
//! The journal lives in /dev/shm when there is one (fsync is free there); the switch is
//! made afresh every `RENEW` inputs so the journal and memory stay small over millions.
#![no_main]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use codec::{Dialect, MessageBuilder, Mti};
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::mac;
use libfuzzer_sys::fuzz_target;
use switch::pipeline::Handled;

const TID: &str = "10000001";
const MID: &str = "898310048990001";
const DEMO_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
const HEADER: [u8; 11] = [
    0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x10, 0x03,
];
const RENEW: u64 = 100_000;

struct Rig {
    rt: tokio::runtime::Runtime,
    sw: Option<switch::Running>,
    dir: std::path::PathBuf,
    tak: DesKey,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(sw) = self.sw.take() {
            self.rt.block_on(sw.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static RIG: Mutex<Option<Rig>> = Mutex::new(None);
static RUNS: AtomicU64 = AtomicU64::new(0);

fn rig() -> Rig {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let n = RUNS.load(Ordering::Relaxed);
    let dir = base.join(format!("switch-fuzz-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = switch::Config::demo().expect("demo configuration");
    config.listen.terminals = "127.0.0.1:0".parse().expect("address");
    config.listen.metrics = "127.0.0.1:0".parse().expect("address");
    config.journal.path = dir.join("journal.db");
    config.issuers.clear();
    config.routes.retain(|r| r.route == "on-us");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sw = rt.block_on(switch::start(config)).expect("switch starts");
    // Sign on, and take the TAK out of field 62 under the demo TMK.
    let mut b = MessageBuilder::new(Mti::parse("0800").expect("mti"));
    b.header(HEADER.to_vec())
        .set(11, "000001")
        .set(41, TID)
        .set(42, MID)
        .set(60, "00000001003")
        .set(63, "001");
    let frame = b.encode_to_vec(Dialect::cup_pos()).expect("sign-on");
    let Handled::Reply(reply) = rt.block_on(sw.switch().handle(&frame)) else {
        panic!("sign-on not answered");
    };
    let msg = codec::decode(Dialect::cup_pos(), &reply).expect("sign-on reply");
    let f62 = msg.bytes(62).expect("field 62");
    let tmk = DesKey::new(&hex_bytes(DEMO_TMK)).expect("tmk");
    let tak = tmk.decrypt_ecb(&f62[20..28]).expect("tak");
    Rig {
        rt,
        sw: Some(sw),
        dir,
        tak: DesKey::new(&tak).expect("tak"),
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// The input as the signed-on terminal's request: its TID and MID, a valid MAC.
fn reseal(rig: &Rig, body: &[u8]) -> Option<Vec<u8>> {
    let msg = codec::decode(Dialect::cup_pos(), body).ok()?;
    let mut b = MessageBuilder::from_message(&msg);
    b.set(41, TID).set(42, MID);
    let mut out = Vec::new();
    b.encode_with_mac(Dialect::cup_pos(), &mut out, |data| {
        Some(mac::unionpay_ecb(&rig.tak, data))
    })
    .ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut guard) = RIG.lock() else {
        return;
    };
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    if guard.is_none() || n % RENEW == RENEW - 1 {
        *guard = None;
        *guard = Some(rig());
    }
    let Some(rig) = guard.as_ref() else {
        return;
    };
    let Some((mode, body)) = data.split_first() else {
        return;
    };
    let frame = match mode & 1 {
        1 => reseal(rig, body).unwrap_or_else(|| body.to_vec()),
        _ => body.to_vec(),
    };
    let Some(sw) = rig.sw.as_ref() else {
        return;
    };
    match rig.rt.block_on(sw.switch().handle(&frame)) {
        Handled::Reply(reply) => {
            codec::decode(Dialect::cup_pos(), &reply).expect("every reply decodes");
        }
        Handled::Ignore | Handled::Close(_) => {}
    }
});
