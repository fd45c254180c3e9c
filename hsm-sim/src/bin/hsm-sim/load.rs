//! `hsm-sim load`: commands per second a payShield-protocol HSM answers, from N connections
//! each sending one command at a time (a switch's pool), for a fixed time.
//!
//! The commands are test vectors under the payShield TEST LMK: `CA` (the published
//! translation vector), `DC` and `DA` (a PIN verified against a PVV or an IBM offset), `NC`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub(crate) struct Load {
    /// The HSM, host:port.
    #[arg(long, default_value = "127.0.0.1:1500")]
    hsm: String,
    /// ca, dc, da or nc.
    #[arg(long, default_value = "ca")]
    command: String,
    /// Connections, each with one command outstanding.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Header characters.
    #[arg(long, default_value_t = 4)]
    header_len: usize,
}

const CA: &str = "CA0406FBB23A5214DFBAB32D775A38E4AB12DC80B186C30902B00303550000025321";
const DC: &str =
    "DC0406FBB23A5214DFFCBA7CF5972CF0DD6B96170C6593AA37F11BEC70CC28165E0140000012345610141";
const DA: &str = "DA0406FBB23A5214DF1BF4588462043CFC04F11BEC70CC28165E010440000012345601234567890123454000001234569706FFFFFFFF";

fn exchange(s: &mut TcpStream, frame: &[u8], buf: &mut Vec<u8>) -> std::io::Result<()> {
    s.write_all(frame)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    s.read_exact(buf)
}

pub(crate) fn run(args: Load) -> Result<()> {
    let (command, expect) = match args.command.as_str() {
        "ca" => (CA, "CB00"),
        "dc" => (DC, "DD00"),
        "da" => (DA, "DB00"),
        "nc" => ("NC", "ND00"),
        other => bail!("--command {other}: use ca, dc, da or nc"),
    };
    let header = "0".repeat(args.header_len);
    let payload = format!("{header}{command}");
    let mut frame = u16::try_from(payload.len())
        .context("command too long")?
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(payload.as_bytes());
    let frame = Arc::new(frame);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for _ in 0..args.connections.max(1) {
        let mut s =
            TcpStream::connect(&args.hsm).with_context(|| format!("connecting to {}", args.hsm))?;
        s.set_nodelay(true)?;
        let (frame, stop, done, wrong) = (
            Arc::clone(&frame),
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&wrong),
        );
        let (expect, hl) = (expect.as_bytes().to_vec(), args.header_len);
        threads.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if exchange(&mut s, &frame, &mut buf).is_err() {
                    wrong.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if buf.get(hl..hl + 4) == Some(&expect[..]) {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.duration));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in threads {
        let _ = t.join();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "{{\"command\":\"{}\",\"connections\":{},\"seconds\":{elapsed:.2},\"answered\":{n},\"wrong\":{},\"per_second\":{:.0}}}",
        &command[..2],
        args.connections,
        wrong.load(Ordering::Relaxed),
        n as f64 / elapsed
    );
    Ok(())
}
