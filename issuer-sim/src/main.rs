//! `issuer-sim`: a card issuer speaking ISO 8583:1987 on TCP (test cards and keys).
//!
//! ```text
//! issuer-sim [--listen ADDR] [--config F] [--delay-ms N] [--drop] [--garbage] [--close]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use issuer_sim::{IssuerSim, SimConfig};

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Parser)]
#[command(
    name = "issuer-sim",
    about = "A card issuer speaking ISO 8583:1987 (test cards and keys)"
)]
struct Args {
    /// Listen here (default: the configuration's, 127.0.0.1:8584 for the built-in one).
    #[arg(long)]
    listen: Option<String>,
    /// Simulator configuration (TOML; default: built in, matching the demo switch).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Answer each request this many milliseconds late.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Process requests but never answer.
    #[arg(long)]
    drop: bool,
    /// Answer every request with garbage.
    #[arg(long)]
    garbage: bool,
    /// Close the connection on every request.
    #[arg(long)]
    close: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(a: Args) -> Result<()> {
    init_logs(a.log_format);
    let mut cfg = match &a.config {
        Some(path) => SimConfig::from_toml(
            &std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?,
        )?,
        None => SimConfig::demo()?,
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(d) = a.delay_ms {
        cfg.delay_ms = d;
    }
    let sim = IssuerSim::bind(&cfg).await?;
    sim.knobs.drop_replies.store(a.drop, Ordering::Relaxed);
    sim.knobs.garbage.store(a.garbage, Ordering::Relaxed);
    sim.knobs.close.store(a.close, Ordering::Relaxed);
    let listening = sim
        .addrs
        .first()
        .map_or_else(|| cfg.listen.clone(), ToString::to_string);
    tracing::warn!(
        listen = %listening,
        dialect = %cfg.dialect,
        cards = cfg.cards.len(),
        "issuer simulator running: TEST KEYS AND TEST CARDS"
    );
    wait_for_signal().await;
    sim.shutdown();
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
