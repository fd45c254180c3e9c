//! `hsm-sim serve`: the payShield host command protocol on a TCP port.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hsm_sim::payshield::server::{self, ServerConfig};
use hsm_sim::payshield::{Config, PayShield, VariantLmk};
use zeroize::Zeroizing;

#[derive(Args)]
pub(crate) struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:1500")]
    listen: String,
    /// Characters of message header before each command code (echoed back).
    #[arg(long, default_value_t = 4)]
    header_len: usize,
    /// `test` for the published payShield test LMK set (test data), or a file of 20 lines
    /// of 32 hex characters (pairs 00-01 … 38-39).
    #[arg(long)]
    variant_lmk: String,
    /// Connections served at once.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// PIN verification failures allowed per minute before verification is refused.
    #[arg(long, default_value_t = 1_000)]
    pin_failures_per_minute: u32,
    /// Append key audit entries (JSON lines) to this file.
    #[arg(long)]
    audit_file: Option<PathBuf>,
    /// A command to answer `68` (disabled); may be given again.
    #[arg(long = "disable", value_name = "CODE")]
    disabled: Vec<String>,
}

fn load(spec: &str) -> Result<VariantLmk> {
    if spec == "test" {
        eprintln!("WARNING: using the payShield TEST LMK set (test data); never for real keys");
        return Ok(VariantLmk::test());
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(spec)
            .with_context(|| format!("reading variant LMK file {spec}"))?,
    );
    let lmk = VariantLmk::from_lines(text.lines()).map_err(|e| anyhow!("{spec}: {e}"))?;
    if lmk.is_test() {
        bail!(
            "{spec} holds the published TEST LMK set; give --variant-lmk test to use it knowingly"
        );
    }
    Ok(lmk)
}

pub(crate) fn run(args: Serve) -> Result<()> {
    let lmk = load(&args.variant_lmk)?;
    let mut disabled = Vec::new();
    for c in &args.disabled {
        match c.as_bytes() {
            [a, b] => disabled.push([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => bail!("--disable {c}: a command code is two characters"),
        }
    }
    let config = Config {
        allow_test_lmk: lmk.is_test(),
        pin_failures_per_window: args.pin_failures_per_minute,
        pin_failure_window: Duration::from_secs(60),
        audit_file: args.audit_file,
        disabled,
        ..Config::default()
    };
    let hsm = Arc::new(PayShield::new(lmk, &config).map_err(|e| anyhow!("{e}"))?);
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "hsm-sim: payShield host protocol on {addr}, header {} characters, LMK check value {}",
        args.header_len,
        hex::encode_upper(hsm.lmk().check_value())
    );
    server::serve(
        listener,
        hsm,
        ServerConfig {
            header_len: args.header_len,
            max_connections: args.max_connections,
        },
    );
    Ok(())
}
