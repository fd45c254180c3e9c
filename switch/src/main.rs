//! `switch`: the payment switch daemon and its tools.
//!
//! ```text
//! switch                                   run on the built-in demo configuration
//! switch run [--config F] [--log-format json]
//! switch check-config F                    validate a configuration and exit
//! switch describe [--dialect D] [--json] [--unmasked] HEX
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use switch::Config;

#[derive(Parser)]
#[command(
    name = "switch",
    about = "ISO 8583 payment switch for CUP POS terminals"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch (default: the built-in demo configuration, test keys).
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a configuration file.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Decode a frame given in hex and print its fields.
    Describe {
        /// Dialect: cup-pos, iso87-ascii, iso87-binary, or a dialect file (TOML).
        #[arg(long, default_value = "cup-pos")]
        dialect: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Show card data in clear (PAN, track, PIN block, chip data).
        #[arg(long)]
        unmasked: bool,
        /// The frame, hex (spaces allowed), with or without its length indicator.
        hex: Vec<String>,
    },
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

async fn run(config: Option<PathBuf>, log_format: LogFormat) -> Result<()> {
    init_logs(log_format);
    let config = match &config {
        Some(path) => Config::load(path)?,
        None => {
            tracing::warn!(
                "no --config: running the built-in DEMO configuration (test keys, test cards)"
            );
            Config::demo()?
        }
    };
    let running = switch::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
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

fn describe(dialect: &str, hex_parts: &[String], json: bool, unmasked: bool) -> Result<()> {
    let owned;
    let dialect = match codec::Dialect::builtin(dialect) {
        Ok(d) => d,
        Err(_) => {
            let text = std::fs::read_to_string(dialect).with_context(|| {
                format!("dialect {dialect:?}: not built in, and not a readable file")
            })?;
            owned = codec::Dialect::from_toml(&text)?;
            &owned
        }
    };
    let text: String = hex_parts
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&text).map_err(|e| anyhow!("not hex: {e}"))?;
    let out = switch::describe::describe(dialect, &bytes, json, unmasked)
        .map_err(|e| anyhow!("cannot decode: {e}"))?;
    println!("{out}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run {
        config: None,
        log_format: LogFormat::Text,
    }) {
        Command::Run { config, log_format } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
            .and_then(|rt| rt.block_on(run(config, log_format))),
        Command::CheckConfig { file } => Config::load(&file)
            .map(|c| {
                println!(
                    "{}: ok ({} terminal ranges, {} routes, {} fee rules, {} cards{})",
                    file.display(),
                    c.terminals.len(),
                    c.routes.len(),
                    c.fees.len(),
                    c.cards.len(),
                    if c.uses_test_keys() {
                        "; TEST KEYS"
                    } else {
                        ""
                    }
                );
            })
            .map_err(Into::into),
        Command::Describe {
            dialect,
            json,
            unmasked,
            hex,
        } => describe(&dialect, &hex, json, unmasked),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
