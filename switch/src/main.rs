//! `switch`: the payment switch daemon and its tools.
//!
//! ```text
//! switch                                   run on the built-in demo configuration
//! switch run [--config F] [--log-format json]
//! switch check-config F                    validate a configuration and exit
//! switch journal init [--config F] [--force] create a new journal where the configuration says
//! switch journal migrate --config F        bring a PostgreSQL journal's schema up to date
//! switch describe [--dialect D] [--json] [--unmasked] HEX
//! switch report settlement --date YYYY-MM-DD [--format table|csv] [--config F | --journal DB]
//! switch report batch --tid T --batch N [--config F | --journal DB]
//! switch report issuers --date YYYY-MM-DD [--config F | --journal DB]
//! switch report saf [--state pending|armed|acknowledged|expired|cancelled] [--config F | --journal DB]
//! switch admin card show|block|unblock|reset-pin-tries|set-limit --pan P [--who NAME]
//!                                          change a card in the running switch
//! ```

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use switch::Config;

// The daemon's heap is the C library's `malloc`. mimalloc saved ~7 % of an on-us sale's
// CPU in the closed loop on a quiet machine (PERFORMANCE.md, "The eighth round"), but on a
// slow one it saved nothing and its tail was far longer: at 5,000 sales/s a p99 of 22–65 ms
// against 4–6 ms with `malloc`, same runs ("The allocator again").

/// Like `println!`/`print!`, but a reader that went away (`| head`) ends the output
/// quietly instead of a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "switch",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SWITCH_REVISION"), ")"),
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

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
}

#[derive(clap::Args)]
struct JournalSource {
    /// Configuration whose journal to read (default: the demo configuration's).
    #[arg(long, conflicts_with = "journal")]
    config: Option<PathBuf>,
    /// The journal database file.
    #[arg(long)]
    journal: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Report {
    /// Per merchant and terminal for one day (China Standard Time): sales, gross, voids,
    /// refunds, fees, net.
    Settlement {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// table or csv.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        #[command(flatten)]
        source: JournalSource,
    },
    /// Per remote issuer for one day (China Standard Time): forwarded, approved, declined,
    /// timed out, reversed, stand-in; and the store-and-forward queue by state.
    Issuers {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[command(flatten)]
        source: JournalSource,
    },
    /// The store-and-forward queue: reversals and advices for issuers, and their state.
    Saf {
        /// Only entries in this state: pending, armed, acknowledged, expired, cancelled.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        source: JournalSource,
    },
    /// Pre-authorisations and where each stands: holding, completed, voided, reversed,
    /// expired (lapsed uncompleted).
    Preauths {
        /// Only those in this state.
        #[arg(long, value_parser = ["holding", "completed", "voided", "reversed", "expired"])]
        state: Option<String>,
        #[command(flatten)]
        source: JournalSource,
    },
    /// One batch as the switch sees it, with its settlement and upload differences.
    Batch {
        /// Terminal ID.
        #[arg(long)]
        tid: String,
        /// Batch number.
        #[arg(long)]
        batch: u32,
        #[command(flatten)]
        source: JournalSource,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Create a new, empty journal where the configuration says (refuses if one is there).
    Init {
        /// Configuration (default: the demo configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also when the id file says a journal existed here and it is gone: starts over
        /// from the card file, losing the old journal's balances and history.
        #[arg(long)]
        force: bool,
    },
    /// Bring the PostgreSQL journal's schema up to date (nodes also do it when they start;
    /// safe while nodes run).
    Migrate {
        /// Configuration whose `[journal] url` to migrate.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// A card: show it, block it (lost, stolen, blocked), unblock it, reset its wrong PINs,
    /// set its credit limit.
    Card {
        #[command(subcommand)]
        action: CardAction,
    },
    /// A terminal: show it (merchant, session, open batch), or make it sign on again.
    Terminal {
        #[command(subcommand)]
        action: TerminalAction,
    },
    /// A batch's totals as settlement would count them (default: the open one).
    Batch {
        /// The terminal ID (8 digits).
        #[arg(long)]
        tid: String,
        /// The batch number (default: the open one).
        #[arg(long)]
        batch: Option<u32>,
    },
    /// Each issuer: lines up, drained, store-and-forward queue; or drain one (no new
    /// requests: its cards answer 91, or stand-in) and take it back.
    Issuer {
        #[command(subcommand)]
        action: Option<IssuerAction>,
    },
}

#[derive(Subcommand)]
enum IssuerAction {
    /// No new requests to it, at every node.
    Drain {
        /// The issuer's name as configured.
        #[arg(long)]
        name: String,
    },
    /// Back in service.
    Up {
        /// The issuer's name as configured.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum TerminalAction {
    /// Merchant, session, open batch and its totals.
    Show {
        /// The terminal ID (8 digits).
        #[arg(long)]
        tid: String,
    },
    /// End its session: its next request answers A0 and it must sign on again.
    ForceSignon {
        /// The terminal ID (8 digits).
        #[arg(long)]
        tid: String,
    },
    /// Refuse it (58), sign-on included, at every node.
    Disable {
        /// The terminal ID (8 digits).
        #[arg(long)]
        tid: String,
    },
    /// Serve it again.
    Enable {
        /// The terminal ID (8 digits).
        #[arg(long)]
        tid: String,
    },
}

#[derive(Subcommand)]
enum CardAction {
    /// A new card on an on-us route, active, with its PIN data (an offset, or a PVV on a
    /// legacy range; never a PIN).
    Add {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
        /// YYMM.
        #[arg(long)]
        expiry: String,
        /// The IBM 3624 offset of its PIN (one digit per PIN digit).
        #[arg(long, conflicts_with = "pvv")]
        offset: Option<String>,
        /// The Visa PVV of its PIN (a legacy range).
        #[arg(long)]
        pvv: Option<String>,
        /// A debit card's opening balance, or a credit card's limit, in yuan.
        #[arg(long, default_value = "0")]
        yuan: String,
    },
    /// As the journal has it (the PAN masked).
    Show {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
    },
    /// Refuse it: lost (41), stolen (43) or blocked (05, the default).
    Block {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
        /// lost, stolen or blocked.
        #[arg(long, default_value = "blocked")]
        status: String,
    },
    /// Usable again.
    Unblock {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
    },
    /// Wrong PINs back to 0 (a card locked at the limit answers 75 until then).
    ResetPinTries {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
    },
    /// A credit card's limit, in yuan (e.g. 50000.00).
    SetLimit {
        /// The card number (accepted in full, never printed back).
        #[arg(long)]
        pan: String,
        /// The new limit in yuan.
        #[arg(long)]
        yuan: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Change the running switch (its admin endpoint, with the admin token).
    Admin {
        /// The admin endpoint (the metrics listener).
        #[arg(long, global = true, default_value = "127.0.0.1:9583")]
        admin: String,
        /// The token the switch made at its first start.
        #[arg(long, global = true, default_value = "./switch-data/admin.token")]
        token_file: PathBuf,
        /// Who is making the change (journalled with it).
        #[arg(long, global = true, env = "USER", default_value = "operator")]
        who: String,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The journal itself.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Reports from the journal.
    Report {
        #[command(subcommand)]
        report: Report,
    },
    /// Run the switch (default: the built-in demo configuration, test keys).
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Make the running switch read its configuration again (its admin endpoint): exit 0
    /// when applied, 2 when refused (nothing changed; the error says why).
    Reload {
        /// The running switch's configuration: its admin endpoint and token are found
        /// from it (else --admin and --token-file).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The admin endpoint (the metrics listener).
        #[arg(long, default_value = "127.0.0.1:9583")]
        admin: String,
        /// The admin token.
        #[arg(long, default_value = "./switch-data/admin.token")]
        token_file: PathBuf,
    },
    /// Validate a configuration file.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Decode a frame given in hex and print its fields.
    Describe {
        /// Dialect: cup-pos, iso87-ascii, iso87-binary, or a dialect file (TOML, or JSON
        /// when it ends in .json).
        #[arg(long, default_value = "cup-pos")]
        dialect: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Show card data in clear (PAN, track, PIN block, chip data, working keys).
        #[arg(long)]
        unmasked: bool,
        /// Read the frame from a file: hex text, or the raw bytes.
        #[arg(long, conflicts_with = "hex")]
        file: Option<PathBuf>,
        /// The frame, hex (spaces allowed), with or without its length indicator; `-`
        /// reads it from stdin (hex text, or the raw bytes).
        hex: Vec<String>,
    },
}

/// Logs to stderr (and the configured file); returns what sets the level on a reload.
fn init_logs(
    format: LogFormat,
    file: &switch::config::LogConfig,
) -> Result<switch::daemon::reload::LogLevel> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // RUST_LOG, when set, over the configuration's level at start.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(file.level.as_deref().unwrap_or("info"))
            .unwrap_or_else(|_| "info".into())
    });
    let (filter, level) = tracing_subscriber::reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Lines go through a bounded queue to a thread of their own: a closed, full or slow
    // stderr (or log file) drops lines (counted), never a reply.
    let layer = |sink: switch::log_sink::LogSink, ansi: bool| match format {
        // A terminal gets tracing's colours; a file or a pipe the same line, uncoloured,
        // for less CPU.
        LogFormat::Text => switch::log_text::layer(sink, ansi),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(sink)
            .with_ansi(ansi)
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let mut layers = Vec::new();
    if let Ok(sink) = switch::log_sink::LogSink::new(std::io::stderr()) {
        layers.push(layer(sink, ansi));
    }
    if let Some(path) = &file.file {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = path.file_name().unwrap_or_default();
        let rotation = match file.rotation {
            switch::config::Rotation::Daily => tracing_appender::rolling::Rotation::DAILY,
            switch::config::Rotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
            switch::config::Rotation::Never => tracing_appender::rolling::Rotation::NEVER,
        };
        let appender = tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(rotation)
            .filename_prefix(name.to_string_lossy())
            .build(dir)
            .with_context(|| format!("log.file {}", path.display()))?;
        layers.push(layer(switch::log_sink::LogSink::new(appender)?, false));
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    Ok(Arc::new(move |directive: &str| {
        let f = EnvFilter::try_new(directive).map_err(|e| anyhow!("log.level: {e}"))?;
        level.reload(f).map_err(|e| anyhow!("log.level: {e}"))?;
        tracing::info!(level = directive, "log level set");
        Ok(())
    }))
}

/// What `switch run` takes from flags or the environment over the configuration: enough
/// to move the demo off its ports and data directory without writing a file.
#[derive(clap::Args, Clone, Debug, Default)]
struct Overrides {
    /// Terminal listener (IP:PORT or localhost:PORT), over `[listen] terminals`.
    #[arg(long, env = "SWITCH_LISTEN", value_parser = switch::config::parse_address)]
    listen: Option<std::net::SocketAddr>,
    /// Metrics, health and status listener, over `[listen] metrics`.
    #[arg(long, env = "SWITCH_METRICS", value_parser = switch::config::parse_address)]
    metrics: Option<std::net::SocketAddr>,
    /// Data directory: the SQLite journal is DIR/journal.db, over `[journal] path`.
    #[arg(long, env = "SWITCH_DATA")]
    data: Option<PathBuf>,
}

impl Overrides {
    fn apply(self, mut config: Config) -> Result<Config> {
        if let Some(a) = self.listen {
            config.listen.terminals = a;
        }
        if let Some(a) = self.metrics {
            config.listen.metrics = a;
        }
        if let Some(dir) = self.data {
            if config.journal.url.is_some() {
                return Err(anyhow::anyhow!(
                    "--data names a SQLite journal's directory, but [journal] url is set (PostgreSQL)"
                ));
            }
            config.journal.path = dir.join("journal.db");
        }
        config.validate()?;
        Ok(config)
    }
}

async fn run(path: Option<PathBuf>, log_format: LogFormat, overrides: Overrides) -> Result<()> {
    // The configuration says where logs go, so it is read first (its errors are printed).
    let demo = path.is_none();
    // Read at start and at every reload: the file (checked, keys included) or the demo
    // set, with the command line's overrides.
    let source: switch::daemon::reload::Source = Arc::new(move || {
        let config = match &path {
            Some(path) => checked_config(path)?,
            None => Config::demo()?,
        };
        overrides.clone().apply(config)
    });
    let config = source()?;
    let log_level = init_logs(log_format, &config.log)?;
    if demo {
        tracing::warn!(
            "no --config: running the built-in DEMO configuration (test keys, test cards)"
        );
    }
    let signals = Signals::install();
    let options = switch::Options {
        source: Some(source),
        log_level: Some(log_level),
    };
    let running = switch::start_with(config, options).await?;
    signals.wait(&running).await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// The signals the daemon answers, installed before it starts listening: a SIGHUP or
/// SIGTERM that comes while it starts is then handled, not fatal.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Until SIGTERM or Ctrl-C. SIGHUP reads the configuration again and applies it (or
    /// nothing, and the log says why).
    async fn wait(self, running: &switch::Running) {
        #[cfg(unix)]
        {
            let (Some(mut term), Some(mut hup)) = (self.term, self.hup) else {
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return,
                    _ = term.recv() => return,
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reading the configuration again");
                        // The outcome is logged and counted by the reload itself.
                        let _ = running.reload().await;
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = running;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The frames `describe` tries, in order: the arguments' hex text; or a file's (stdin's,
/// `-`) content read as hex text when it is all hex digits and spaces, then as the frame
/// itself (an ASCII frame can be all hex digits too).
fn frame_input(file: Option<PathBuf>, hex_parts: &[String]) -> Result<Vec<Vec<u8>>> {
    let raw = match (file, hex_parts) {
        (Some(path), _) => {
            std::fs::read(&path).with_context(|| format!("--file {}", path.display()))?
        }
        (None, [dash]) if dash == "-" => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("stdin")?;
            b
        }
        (None, parts) => {
            let text: String = parts
                .concat()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            return Ok(vec![
                hex::decode(&text).map_err(|e| anyhow!("not hex: {e}"))?,
            ]);
        }
    };
    let is_hex_text = !raw.is_empty()
        && raw
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    let mut tries = Vec::new();
    if is_hex_text {
        let text: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if let Ok(b) = hex::decode(&text) {
            tries.push(b);
        }
    }
    tries.push(raw);
    Ok(tries)
}

fn describe(dialect: &str, frames: Result<Vec<Vec<u8>>>, json: bool, unmasked: bool) -> Result<()> {
    let owned;
    let dialect = match codec::Dialect::builtin(dialect) {
        Ok(d) => d,
        Err(_) => {
            let text = std::fs::read_to_string(dialect).with_context(|| {
                format!("dialect {dialect:?}: not built in, and not a readable file")
            })?;
            owned = if dialect.ends_with(".json") {
                codec::Dialect::from_json(&text)?
            } else {
                codec::Dialect::from_toml(&text)?
            };
            &owned
        }
    };
    let mut first_error = None;
    for bytes in frames? {
        match switch::describe::describe(dialect, &bytes, json, unmasked) {
            Ok(out) => {
                // A reader that went away (`| head`) is not an error.
                let _ = writeln!(std::io::stdout(), "{out}");
                return Ok(());
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(anyhow!(
        "cannot decode: {}",
        first_error.unwrap_or_else(|| "no frame".into())
    ))
}

/// Reads a configuration and checks it as a start would, reporting every problem found:
/// the values (the first wrong one) and the keys (unsealed under the LMK; in production, no
/// published key), each on its own line.
fn checked_config(path: &std::path::Path) -> Result<Config> {
    let config = Config::read(path)?;
    let problems: Vec<String> = [
        config.validate().err().map(|e| e.to_string()),
        switch::daemon::check_keys(&config)
            .err()
            .map(|e| format!("{e:#}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(anyhow!(
            "{}: {}",
            path.display(),
            problems.join(&format!("\n{}: ", path.display()))
        ))
    }
}

fn journal_init(config: Option<PathBuf>, force: bool) -> Result<()> {
    let config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::demo()?,
    };
    if config.journal.url.is_some() {
        anyhow::bail!(
            "journal.url is set: a PostgreSQL journal is created by `switch journal migrate` or by the first node that starts on it"
        );
    }
    let path = &config.journal.path;
    let id = switch::daemon::init_journal(path, force)?;
    out!("journal {} created, id {id}", path.display());
    Ok(())
}

fn journal_migrate(path: &std::path::Path) -> Result<()> {
    let config = Config::load(path)?;
    let applied = switch::daemon::migrate_journal(&config)?;
    if applied.is_empty() {
        out!("journal {}: schema up to date", config.journal.place());
    } else {
        out!(
            "journal {}: migrations {applied:?} applied",
            config.journal.place()
        );
    }
    Ok(())
}

/// A report's `--date`: a real day, written YYYY-MM-DD.
fn check_date(date: &str) -> Result<()> {
    if switch::clock::day_number(date).is_none() {
        anyhow::bail!("--date {date:?}: not a day; write YYYY-MM-DD (a China Standard Time day)");
    }
    Ok(())
}

fn report(report: Report) -> Result<()> {
    // The journal a report reads: the file given, or the configuration's (SQLite file or
    // PostgreSQL database).
    let open = |s: &JournalSource| -> Result<Box<dyn switch::report::Source>> {
        let journal = match (&s.journal, &s.config) {
            (Some(j), _) => {
                let c =
                    switch::report::open(j).with_context(|| format!("journal {}", j.display()))?;
                return Ok(Box::new(c));
            }
            (None, Some(c)) => Config::load(c)?.journal,
            (None, None) => Config::demo()?.journal,
        };
        Ok(match &journal.url {
            Some(url) => Box::new(
                switch::journal::postgres::Postgres::connect(url)
                    .map_err(|e| anyhow!("journal {}: {e}", journal.place()))?,
            ),
            None => Box::new(
                switch::report::open(&journal.path)
                    .with_context(|| format!("journal {}", journal.path.display()))?,
            ),
        })
    };
    let failed = |e: String| anyhow!("report: {e}");
    match report {
        Report::Settlement {
            date,
            format,
            source,
        } => {
            check_date(&date)?;
            let rows =
                switch::report::settlement(open(&source)?.as_mut(), &date).map_err(failed)?;
            let csv = matches!(format, ReportFormat::Csv);
            if !csv {
                out!("settlement for {date} (a China Standard Time day)");
            }
            out_raw!("{}", switch::report::format_settlement(&rows, csv));
        }
        Report::Issuers { date, source } => {
            check_date(&date)?;
            let text = switch::report::issuers(open(&source)?.as_mut(), &date).map_err(failed)?;
            out!("issuers for {date} (a China Standard Time day)");
            out_raw!("{text}");
        }
        Report::Saf { state, source } => {
            if let Some(s) = &state
                && switch::model::SafState::parse(s).is_none()
            {
                let known: Vec<&str> = switch::model::SafState::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                anyhow::bail!("--state {s:?}: one of {}", known.join(", "));
            }
            let text =
                switch::report::saf(open(&source)?.as_mut(), state.as_deref()).map_err(failed)?;
            out_raw!("{text}");
        }
        Report::Preauths { state, source } => {
            let text = switch::report::preauths(open(&source)?.as_mut(), state.as_deref())
                .map_err(failed)?;
            out_raw!("{text}");
        }
        Report::Batch { tid, batch, source } => {
            let text =
                switch::report::batch(open(&source)?.as_mut(), &tid, batch).map_err(failed)?;
            out_raw!("{text}");
        }
    }
    Ok(())
}

/// Runs a daemon on a multi-threaded runtime.
fn block_on(f: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

/// Yuan with up to two decimals, in fen.
fn yuan_to_fen(text: &str) -> Result<i64> {
    let (i, f) = text.split_once('.').unwrap_or((text, "0"));
    let ok = !i.is_empty()
        && i.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&f.len())
        && f.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        anyhow::bail!("{text:?}: an amount in yuan, e.g. 50000.00");
    }
    let f = if f.len() == 1 {
        format!("{f}0")
    } else {
        f.to_owned()
    };
    Ok(i.parse::<i64>()? * 100 + f.parse::<i64>()?)
}

/// A terminal action's request.
fn terminal_post(tid: &str, action: &str, who: &str) -> (&'static str, String, Option<String>) {
    (
        "POST",
        "/admin/terminal".to_owned(),
        Some(serde_json::json!({"tid": tid, "action": action, "who": who}).to_string()),
    )
}

/// `switch reload`: the running switch found from its configuration (or the flags).
fn reload(config: Option<PathBuf>, admin: String, token_file: PathBuf) -> Result<()> {
    let (addr, token_file) = match config {
        Some(path) => {
            let c = Config::load(&path)?;
            let token = c
                .journal
                .path
                .parent()
                .unwrap_or_else(|| std::path::Path::new("."))
                .join("admin.token");
            (c.listen.metrics.to_string(), token)
        }
        None => (admin, token_file),
    };
    admin_call(&addr, &token_file, "POST", "/admin/reload", None)
}

/// One call to the running switch's admin endpoint; its answer printed.
fn admin_call(
    addr: &str,
    token_file: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<()> {
    let token = std::fs::read_to_string(token_file).with_context(|| {
        format!(
            "the admin token {} (made at the switch's first start)",
            token_file.display()
        )
    })?;
    let (code, body) = switch::daemon::admin::request(addr, token.trim(), method, path, body)?;
    if code == 200 {
        out!("{body}");
        Ok(())
    } else {
        Err(anyhow!("{code}: {}", body.trim()))
    }
}

/// `switch admin card …` against the running switch.
fn admin_card(
    addr: &str,
    token_file: &std::path::Path,
    who: &str,
    action: CardAction,
) -> Result<()> {
    let post = |body: serde_json::Value| ("POST", "/admin/card".to_owned(), Some(body.to_string()));
    let (method, path, body) = match action {
        CardAction::Show { pan } => ("GET", format!("/admin/card?pan={}", pan.trim()), None),
        CardAction::Add {
            pan,
            expiry,
            offset,
            pvv,
            yuan,
        } => {
            let fen = yuan_to_fen(&yuan)?;
            post(serde_json::json!({
                "pan": pan, "action": "add", "expiry": expiry, "offset": offset, "pvv": pvv,
                "balance_fen": fen, "credit_limit_fen": fen, "who": who
            }))
        }
        CardAction::Block { pan, status } => {
            post(serde_json::json!({"pan": pan, "action": "block", "status": status, "who": who}))
        }
        CardAction::Unblock { pan } => {
            post(serde_json::json!({"pan": pan, "action": "unblock", "who": who}))
        }
        CardAction::ResetPinTries { pan } => {
            post(serde_json::json!({"pan": pan, "action": "reset-pin-tries", "who": who}))
        }
        CardAction::SetLimit { pan, yuan } => post(serde_json::json!({
            "pan": pan, "action": "set-limit", "credit_limit_fen": yuan_to_fen(&yuan)?, "who": who
        })),
    };
    admin_call(addr, token_file, method, &path, body.as_deref())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run {
        config: None,
        log_format: LogFormat::Text,
        overrides: Overrides::default(),
    }) {
        Command::Run {
            config,
            log_format,
            overrides,
        } => block_on(run(config, log_format, overrides)),
        Command::Reload {
            config,
            admin,
            token_file,
        } => reload(config, admin, token_file),
        Command::Admin {
            admin: addr,
            token_file,
            who,
            command,
        } => match command {
            AdminCommand::Card { action } => admin_card(&addr, &token_file, &who, action),
            AdminCommand::Terminal { action } => {
                let (method, path, body) = match action {
                    TerminalAction::Show { tid } => {
                        ("GET", format!("/admin/terminal?tid={tid}"), None)
                    }
                    TerminalAction::ForceSignon { tid } => {
                        terminal_post(&tid, "force-signon", &who)
                    }
                    TerminalAction::Disable { tid } => terminal_post(&tid, "disable", &who),
                    TerminalAction::Enable { tid } => terminal_post(&tid, "enable", &who),
                };
                admin_call(&addr, &token_file, method, &path, body.as_deref())
            }
            AdminCommand::Batch { tid, batch } => {
                let path = match batch {
                    Some(b) => format!("/admin/batch?tid={tid}&batch={b}"),
                    None => format!("/admin/batch?tid={tid}"),
                };
                admin_call(&addr, &token_file, "GET", &path, None)
            }
            AdminCommand::Issuer { action } => {
                let (path, body) = match action {
                    None => ("/admin/issuer", None),
                    Some(IssuerAction::Drain { name }) => (
                        "/admin/issuer",
                        Some(
                            serde_json::json!({"name": name, "action": "drain", "who": who})
                                .to_string(),
                        ),
                    ),
                    Some(IssuerAction::Up { name }) => (
                        "/admin/issuer",
                        Some(
                            serde_json::json!({"name": name, "action": "up", "who": who})
                                .to_string(),
                        ),
                    ),
                };
                let method = if body.is_some() { "POST" } else { "GET" };
                admin_call(&addr, &token_file, method, path, body.as_deref())
            }
        },
        Command::CheckConfig { file } => checked_config(&file).map(|c| {
            out!(
                "{}: ok ({} terminal ranges, {} routes, {} fee rules, {} cards, {} issuers{})",
                file.display(),
                c.terminals.len(),
                c.routes.len(),
                c.fees.len(),
                c.cards.len(),
                c.issuers.len(),
                if c.uses_test_keys() {
                    "; TEST KEYS"
                } else {
                    ""
                }
            );
        }),
        Command::Describe {
            dialect,
            json,
            unmasked,
            file,
            hex,
        } => describe(&dialect, frame_input(file, &hex), json, unmasked),
        Command::Report { report: r } => report(r),
        Command::Journal {
            command: JournalCommand::Init { config, force },
        } => journal_init(config, force),
        Command::Journal {
            command: JournalCommand::Migrate { config },
        } => journal_migrate(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every flag of every command says what it is (`--help`).
    #[test]
    fn every_flag_has_help_text() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in c.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<super::Cli as clap::CommandFactory>::command(),
            "switch",
            &mut missing,
        );
        assert!(missing.is_empty(), "flags without help: {missing:#?}");
    }
}
