//! `terminal-fw`: a CUP POS terminal on the command line, and the load generator.
//!
//! ```text
//! terminal-fw init --tid 10000001 --mid 898310048990001 [--tmk HEX]
//! terminal-fw operator passwd --operator 00          (factory passwords must be changed first)
//! terminal-fw operator add --operator 01             (administrator 99 adds cashiers)
//! terminal-fw signon --operator 01
//! terminal-fw sale --operator 01 --pan 6222021000000000017 --amount 12.34
//! terminal-fw void --operator 01 --trace 2 --pan ...   (supervisor password asked)
//! terminal-fw settle --operator 01
//! terminal-fw demo                                    (a whole merchant day on the demo set)
//! terminal-fw load --terminals 100 --duration 10 [--rate 5000] [--mix sale=90,balance=10|echo=100] [--json]
//! ```
//! Passwords and PINs are asked for (hidden on a terminal) unless given as flags.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use terminal_fw::cipher::Cipher;
use terminal_fw::codes;
use terminal_fw::operators::{OperatorError, Operators, Permission};
use terminal_fw::receipt::{self, Copy};
use terminal_fw::{Card, Store, Terminal};

/// Like `println!`/`print!`, but a reader that went away (`| head`) ends the output
/// quietly instead of a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// The demo terminals' TMK: a published test key.
const DEMO_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";

#[derive(Parser)]
#[command(
    name = "terminal-fw",
    version,
    about = "CUP POS terminal (host side) and load generator"
)]
struct Cli {
    /// Where the terminal keeps its state.
    #[arg(long, global = true, default_value = "./terminal-data")]
    state: PathBuf,
    /// The switch (the load generator takes it again for more nodes: its terminals are
    /// spread over them, and one whose node stops answering dials the next).
    #[arg(long = "switch", global = true, default_value = "127.0.0.1:8583", action = clap::ArgAction::Append)]
    switch_addrs: Vec<SocketAddr>,
    /// Dial the switch over TLS, trusting this CA (PEM).
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    /// The terminal's certificate (PEM), when the switch wants mutual TLS.
    #[arg(long, global = true, requires = "tls_key", requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// The terminal certificate's private key (PEM).
    #[arg(long, global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The switch a single terminal talks to: the first given.
    fn switch_addr(&self) -> SocketAddr {
        self.switch_addrs
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8583)))
    }

    /// The TLS connector the flags ask for.
    fn tls(&self) -> Result<Option<tokio_rustls::TlsConnector>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let client = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        Ok(Some(terminal_fw::tls::connector(ca, client)?))
    }
}

#[derive(Args)]
struct Who {
    /// Operator number (01-98 cashier, 00 supervisor).
    #[arg(long, default_value = "01")]
    operator: String,
    /// The operator's password (asked when absent).
    #[arg(long)]
    password: Option<String>,
}

#[derive(Args)]
struct CardArgs {
    /// Card number.
    #[arg(long)]
    pan: String,
    /// Expiry YYMM.
    #[arg(long)]
    expiry: Option<String>,
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Administrator (99) adds a cashier.
    Add {
        /// The new cashier's number, 01-98.
        #[arg(long)]
        operator: String,
        /// The cashier's password, 6 digits (asked when not given).
        #[arg(long)]
        password: Option<String>,
        /// The administrator's (99) password (asked when not given).
        #[arg(long)]
        admin_password: Option<String>,
    },
    /// Administrator (99) removes a cashier.
    Remove {
        /// The cashier's number, 01-98.
        #[arg(long)]
        operator: String,
        /// The administrator's (99) password (asked when not given).
        #[arg(long)]
        admin_password: Option<String>,
    },
    /// Change one's own password (the factory ones first).
    Passwd {
        /// Whose password: 00, 99 or a cashier's number.
        #[arg(long)]
        operator: String,
        /// The current password (asked when not given).
        #[arg(long)]
        old: Option<String>,
        /// The new one: 6 digits, not all one digit, not a run (asked twice when not given).
        #[arg(long)]
        new: Option<String>,
    },
    /// Supervisor (00) resets a cashier's password; the administrator (99) resets a locked
    /// or forgotten supervisor (`--operator 00`) to the factory password.
    Reset {
        /// The cashier (01-98), or 00.
        #[arg(long)]
        operator: String,
        /// A cashier's new password (asked when not given).
        #[arg(long)]
        new: Option<String>,
        /// For a cashier: the supervisor's password.
        #[arg(long)]
        supervisor_password: Option<String>,
        /// For the supervisor: the administrator's password.
        #[arg(long)]
        admin_password: Option<String>,
    },
    /// Operator events (resets, permissions), oldest first.
    Events,
    /// The administrator (99) sets what a cashier may do: transact (交易: sale, QR,
    /// balance), void-refund (撤销/退货), query (查询: log, reprint), settle (结算).
    Permit {
        /// The cashier, 01-98.
        #[arg(long)]
        operator: String,
        /// Comma-separated: transact,void-refund,query,settle (empty: nothing).
        #[arg(long, value_delimiter = ',', value_parser = parse_permission)]
        allow: Vec<Permission>,
        /// The administrator's (99) password (asked when not given).
        #[arg(long)]
        admin_password: Option<String>,
    },
    /// Check a login.
    Login {
        #[command(flatten)]
        who: Who,
    },
}

/// What an adjustment or a tip names: the operator, the card, the sale, the amount.
#[derive(clap::Args)]
struct Adjusting {
    #[command(flatten)]
    who: Who,
    #[command(flatten)]
    card: CardArgs,
    /// The sale's trace number (see `log`).
    #[arg(long, required_unless_present = "last")]
    trace: Option<u32>,
    /// The newest card sale of the open batch not voided yet.
    #[arg(long, conflicts_with = "trace")]
    last: bool,
    /// Yuan: the sale's new amount (adjust), or the tip (tip).
    #[arg(long)]
    amount: String,
}

#[derive(Subcommand)]
enum Command {
    /// Key injection: TID, MID and TMK.
    Init {
        /// Terminal ID (41), 8 characters.
        #[arg(long)]
        tid: String,
        /// Merchant ID (42), 15 characters.
        #[arg(long, default_value = "898310048990001")]
        mid: String,
        /// TMK in hex (default: the demo TMK, a test key).
        #[arg(long)]
        tmk: Option<String>,
        /// Cipher: tdes, or sm4 (国密: SM4 keys, PIN block and MAC; a 16-byte TMK).
        #[arg(long, default_value = "tdes", value_parser = parse_cipher)]
        algorithm: Cipher,
        /// Start over where a terminal is initialised already: its keys, operators and
        /// passwords (the administrator's too), log and device secret are erased first.
        #[arg(long)]
        force: bool,
    },
    /// Operators and passwords.
    Operator {
        #[command(subcommand)]
        cmd: OperatorCmd,
    },
    /// Sign on (签到): download working keys.
    Signon {
        #[command(flatten)]
        who: Who,
    },
    /// Sale (消费).
    Sale {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// Yuan, e.g. 12.34.
        #[arg(long)]
        amount: String,
        /// The cardholder's PIN (asked, hidden, when not given).
        #[arg(long)]
        pin: Option<String>,
    },
    /// Balance inquiry (余额查询).
    Balance {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// The cardholder's PIN (asked, hidden, when not given).
        #[arg(long)]
        pin: Option<String>,
    },
    /// Void (消费撤销) of a sale in this batch, by trace number or the last one.
    Void {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// The sale's trace number (see `log`).
        #[arg(long, required_unless_present = "last")]
        trace: Option<u32>,
        /// The newest approved sale of the open batch not voided yet.
        #[arg(long, conflicts_with = "trace")]
        last: bool,
        /// The supervisor's (00) void password (asked when not given).
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// Refund (退货) of a sale by RRN (its date from the log, or --date), or the last sale.
    Refund {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// Yuan, e.g. 12.34 (at most what the sale has left).
        #[arg(long)]
        amount: String,
        /// The sale's retrieval reference number.
        #[arg(long, required_unless_present = "last")]
        rrn: Option<String>,
        /// The sale's date, MMDD (default: from the terminal's log).
        #[arg(long)]
        date: Option<String>,
        /// The newest approved sale (open batch, else the last settled one).
        #[arg(long, conflicts_with = "rrn")]
        last: bool,
        /// The supervisor's (00) password (asked when not given).
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// Pre-authorisation (预授权): an amount held on the card, nothing taken (hotels,
    /// car rental); the receipt's AUTH code names it later.
    Preauth {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// Yuan to hold, e.g. 800.00.
        #[arg(long)]
        amount: String,
        /// The cardholder's PIN (asked, hidden, when not given).
        #[arg(long)]
        pin: Option<String>,
    },
    /// Pre-authorisation void (预授权撤销): the hold released, by its auth code.
    PreauthVoid {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// The pre-authorisation's auth code (on its receipt).
        #[arg(long, required_unless_present = "last")]
        auth: Option<String>,
        /// The newest pre-authorisation in the terminal's log.
        #[arg(long, conflicts_with = "auth")]
        last: bool,
        /// Its date, MMDD (default: from the terminal's log).
        #[arg(long)]
        date: Option<String>,
        /// Yuan it held (default: from the terminal's log).
        #[arg(long)]
        amount: Option<String>,
        /// The supervisor's (00) password (asked when not given).
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// Completion (预授权完成): the final amount of a pre-authorisation, by its auth code
    /// (up to 115 % of the hold).
    Complete {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// The pre-authorisation's auth code (on its receipt).
        #[arg(long, required_unless_present = "last")]
        auth: Option<String>,
        /// The newest pre-authorisation in the terminal's log.
        #[arg(long, conflicts_with = "auth")]
        last: bool,
        /// Yuan, the final amount, e.g. 880.00.
        #[arg(long)]
        amount: String,
        /// The pre-authorisation's date, MMDD (default: from the terminal's log).
        #[arg(long)]
        date: Option<String>,
    },
    /// Completion void (预授权完成撤销) of a completion in this batch: the money back, the
    /// hold again.
    CompleteVoid {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        card: CardArgs,
        /// The completion's trace number (see `log`).
        #[arg(long, required_unless_present = "last")]
        trace: Option<u32>,
        /// The newest one of the open batch not voided yet.
        #[arg(long, conflicts_with = "trace")]
        last: bool,
        /// The supervisor's (00) password (asked when not given).
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// Settlement adjustment (结算调整): a sale of this batch takes a new amount (--amount).
    Adjust {
        #[command(flatten)]
        on: Adjusting,
    },
    /// Tip adjustment (追加小费): a tip (--amount) added to a sale of this batch (at most 20 %
    /// of it).
    Tip {
        #[command(flatten)]
        on: Adjusting,
    },
    /// QR payment-code sale (付款码).
    Qr {
        #[command(flatten)]
        who: Who,
        /// The customer's payment code (付款码) as the scanner reads it.
        #[arg(long)]
        code: String,
        /// Yuan, e.g. 12.34.
        #[arg(long)]
        amount: String,
        /// Payment password, needed above the password-free limit.
        #[arg(long)]
        code_password: Option<String>,
    },
    /// Settlement (结算), with batch upload when not balanced.
    Settle {
        #[command(flatten)]
        who: Who,
        /// The supervisor's (00) password (asked when not given).
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// The POS screen (POS界面): full-screen menus as on the device, from operator login to
    /// receipts. Keys: digits, Enter, Backspace, Esc, arrows, `*` (reprint).
    Pos {
        /// Language of the screens: zh, en, or both side by side.
        #[arg(long, default_value = "both", value_parser = ["zh", "en", "both"])]
        lang: String,
        /// The merchant's name on receipts.
        #[arg(long, default_value = "DEMO MERCHANT (TEST)")]
        merchant_name: String,
    },
    /// Echo test.
    Echo,
    /// Transaction record of the open batch and the last settled one (交易记录查询).
    Log {
        #[command(flatten)]
        who: Who,
    },
    /// Reprint the last receipt, or a trace's.
    Reprint {
        #[command(flatten)]
        who: Who,
        /// The transaction's trace number (default: the last one).
        #[arg(long, conflicts_with = "settlement")]
        trace: Option<u32>,
        /// The last settlement slip instead.
        #[arg(long)]
        settlement: bool,
    },
    /// A whole merchant day against a running switch with the demo set.
    Demo {
        /// Cipher: tdes (terminal 10000777), or sm4 (terminal 10003077, the demo's SM4
        /// range).
        #[arg(long, default_value = "tdes", value_parser = parse_cipher)]
        algorithm: Cipher,
    },
    /// Load generator.
    Load {
        /// Concurrent terminals (TIDs from --first-tid up).
        #[arg(long, default_value_t = 100)]
        terminals: u32,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Requests per second in all (open loop); absent: closed loop.
        #[arg(long)]
        rate: Option<f64>,
        /// Mix in percent of sale, balance and echo, e.g. sale=90,balance=10 or echo=100.
        #[arg(long, default_value = "sale=100")]
        mix: String,
        /// The first terminal's TID.
        #[arg(long, default_value_t = 10_000_001)]
        first_tid: u32,
        /// Cipher of the terminals: tdes, or sm4 (with --first-tid 10003001, the demo's SM4
        /// range).
        #[arg(long, default_value = "tdes", value_parser = parse_cipher)]
        algorithm: Cipher,
        /// Card to use (test data; default: the demo debit card). A remote issuer's card
        /// (e.g. 6217001000000000011 with PIN 111111 at `issuer-sim`) loads the
        /// forwarding path.
        #[arg(long, default_value = "6222021000000000017")]
        pan: String,
        /// The card's PIN (test data).
        #[arg(long, default_value = "123456")]
        pin: String,
        /// JSON summary.
        #[arg(long)]
        json: bool,
        /// Append a line per approved sale to this file (`tid,rrn,amount_fen,auth_code`):
        /// what the terminals were told, to check against the journal after a chaos run.
        #[arg(long)]
        record: Option<std::path::PathBuf>,
    },
}

/// A new password from a flag, else asked; on a terminal twice, and two that differ are
/// refused (a typo would lock the operator out). The rules are stated with the prompt.
fn new_password(given: Option<String>, prompt: &str) -> Result<String> {
    if given.is_some() || !std::io::stdin().is_terminal() {
        return secret(given, prompt);
    }
    let ask =
        |p: &str| rpassword::prompt_password(format!("{p}: ")).context("reading the password");
    confirmed(
        ask(&format!(
            "{prompt} (6 digits, not all one digit, not a run)"
        ))?,
        ask("again")?,
    )
}

/// The password typed twice, when both agree.
fn confirmed(first: String, second: String) -> Result<String> {
    if first != second {
        bail!("the two passwords differ: nothing changed");
    }
    Ok(first)
}

/// A secret from a flag, else asked (hidden on a terminal, a line from a pipe).
fn secret(given: Option<String>, prompt: &str) -> Result<String> {
    if let Some(s) = given {
        return Ok(s);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("{prompt}: ")).context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        bail!("{prompt}: none given (use the flag, or type it)");
    }
    Ok(line)
}

/// "12.34" yuan to fen.
fn fen(amount: &str) -> Result<u64> {
    let (i, f) = amount.split_once('.').unwrap_or((amount, ""));
    if i.is_empty() || f.len() > 2 || !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) {
        bail!("amount {amount:?}: write yuan, e.g. 12.34");
    }
    let f = format!("{f:0<2}");
    Ok(i.parse::<u64>()? * 100 + f.parse::<u64>()?)
}

fn open(cli: &Cli) -> Result<Terminal> {
    let store = Store::open(&cli.state)?;
    let mut t = Terminal::open(store, cli.switch_addr()).map_err(|e| anyhow!("{e}"))?;
    if let Some(tls) = cli.tls()? {
        t.with_tls(tls);
    }
    Ok(t)
}

/// The auth code given, or the newest pre-authorisation's in the log (`--last`).
fn auth_or_last(t: &Terminal, auth: Option<&str>, last: bool) -> Result<String> {
    match (auth, last) {
        (Some(a), _) => Ok(a.to_owned()),
        (None, _) => {
            let e = terminal_fw::history::last_of(
                &t.store,
                t.batch()?,
                &["pre-auth"],
                terminal_fw::terminal::PREAUTH_BATCHES,
            )?
            .ok_or_else(|| anyhow!("no approved pre-authorisation in the log"))?;
            Ok(e.auth_code)
        }
    }
}

/// The trace given, or the newest approved entry of `kinds` in the open batch not voided
/// (`--last`), said before it goes.
fn trace_or_last(t: &Terminal, trace: Option<u32>, last: bool, kinds: &[&str]) -> Result<u32> {
    match (trace, last) {
        (Some(n), _) => Ok(n),
        (None, _) => {
            let e = terminal_fw::history::last_of(&t.store, t.batch()?, kinds, 0)?
                .ok_or_else(|| anyhow!("no approved {} in the open batch", kinds.join(" or ")))?;
            out!(
                "trace {:06}: {} {} CNY",
                e.stan,
                e.masked_pan,
                codes::yuan_grouped(e.amount_fen)
            );
            Ok(e.stan)
        }
    }
}

/// What names a pre-authorisation: from the terminal's log by its auth code, else the
/// operator's date (and amount, for a void).
fn preauth_ref(
    t: &Terminal,
    auth: &str,
    date: Option<&str>,
    amount: Option<&str>,
) -> Result<terminal_fw::PreauthRef> {
    if auth.len() != 6 {
        bail!("an auth code is 6 characters, as the pre-authorisation's receipt shows it");
    }
    let amount_fen = amount.map(fen).transpose()?.map(|a| a as i64);
    if let Some(e) = t.find_preauth(auth)? {
        out!(
            "pre-authorisation {auth}: trace {:06} of batch {:06}, {} {} CNY",
            e.stan,
            e.batch,
            e.masked_pan,
            codes::yuan_grouped(e.amount_fen)
        );
        let mut r = terminal_fw::PreauthRef::of(&e);
        if amount_fen.is_some() {
            r.amount_fen = amount_fen;
        }
        return Ok(r);
    }
    let Some(mmdd) = date.filter(|d| d.len() == 4 && d.bytes().all(|b| b.is_ascii_digit())) else {
        bail!(
            "pre-authorisation {auth} is not in this terminal's log: give its date with --date MMDD"
        );
    };
    Ok(terminal_fw::PreauthRef {
        auth_code: auth.to_owned(),
        batch: 0,
        stan: 0,
        mmdd: mmdd.to_owned(),
        amount_fen,
    })
}

/// The operator logs in to do something its permissions must allow.
fn login(t: &mut Terminal, who: &Who, needs: Permission) -> Result<()> {
    let pw = secret(
        who.password.clone(),
        &format!("password of operator {}", who.operator),
    )?;
    let mut ops = Operators::new(&mut t.store)?;
    ops.login_to_transact(&who.operator, &pw).map_err(explain)?;
    ops.require(&who.operator, needs).map_err(explain)
}

fn explain(e: OperatorError) -> anyhow::Error {
    anyhow!("{e}")
}

fn card(c: &CardArgs) -> Card {
    Card {
        pan: c.pan.clone(),
        expiry: c.expiry.clone(),
    }
}

/// Set when a transaction the command sent was declined: the exit code says so.
static DECLINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Exit codes: approved, declined, could not be done (switch unreachable, not signed on,
/// bad input).
const EXIT_DECLINED: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn show(t: &Terminal, a: &terminal_fw::Answer) {
    out!(
        "response {}  RRN {}  auth {}",
        codes::describe(&a.rc),
        a.rrn,
        a.auth_code
    );
    if a.rc != "00" {
        DECLINED.store(true, std::sync::atomic::Ordering::Relaxed);
        // A decline prints no slip to sign: a short note.
        out!("交易失败 DECLINED: {}", codes::describe(&a.rc));
        return;
    }
    if let Some(b) = &a.balance {
        match codes::balance_fen(b) {
            Some(fen) => out!(
                "可用余额 Available balance: {} CNY",
                codes::yuan_grouped(fen)
            ),
            None => out!("balance (field 54): {b}"),
        }
    }
    if let Some(e) = &a.entry
        && e.kind != "balance"
    {
        for copy in [Copy::Merchant, Copy::Cardholder] {
            out!(
                "{}",
                receipt::receipt(e, "DEMO MERCHANT (TEST)", t.mid(), t.tid(), copy, false)
            );
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init {
            tid,
            mid,
            tmk,
            algorithm,
            force,
        } => {
            if Store::exists(&cli.state) {
                if !force {
                    bail!(
                        "{} holds an initialised terminal: `init --force` erases it (keys, operators and passwords, log) and starts over",
                        cli.state.display()
                    );
                }
                Store::erase(&cli.state)
                    .with_context(|| format!("erasing {}", cli.state.display()))?;
                eprintln!("erased the terminal state in {}", cli.state.display());
            }
            let mut store = Store::open(&cli.state)?;
            if tmk.is_none() {
                eprintln!("WARNING: using the demo TMK (a published test key)");
            }
            Terminal::init_with(
                &mut store,
                tid,
                mid,
                tmk.as_deref().unwrap_or(DEMO_TMK),
                *algorithm,
            )?;
            Operators::new(&mut store)?;
            out!(
                "terminal {tid} of merchant {mid} initialised in {}",
                cli.state.display()
            );
        }
        Command::Operator { cmd } => {
            let mut store = Store::open(&cli.state)?;
            let mut ops = Operators::new(&mut store)?;
            match cmd {
                OperatorCmd::Add {
                    operator,
                    password,
                    admin_password,
                } => {
                    let admin = secret(admin_password.clone(), "administrator (99) password")?;
                    let pw = secret(password.clone(), &format!("new password of {operator}"))?;
                    ops.add_cashier(&admin, operator, &pw).map_err(explain)?;
                    out!("cashier {operator} added");
                }
                OperatorCmd::Remove {
                    operator,
                    admin_password,
                } => {
                    let admin = secret(admin_password.clone(), "administrator (99) password")?;
                    ops.remove_cashier(&admin, operator).map_err(explain)?;
                    out!("cashier {operator} removed");
                }
                OperatorCmd::Passwd { operator, old, new } => {
                    let old = secret(old.clone(), "current password")?;
                    let new = new_password(new.clone(), "new password")?;
                    ops.change_password(operator, &old, &new).map_err(explain)?;
                    out!("password of {operator} changed");
                }
                OperatorCmd::Reset {
                    operator,
                    admin_password,
                    ..
                } if operator == "00" => {
                    let admin = secret(admin_password.clone(), "administrator (99) password")?;
                    ops.reset_supervisor(&admin).map_err(explain)?;
                    out!(
                        "supervisor 00 reset to the factory password {}: change it at its next login",
                        terminal_fw::operators::FACTORY_SUPERVISOR
                    );
                }
                OperatorCmd::Reset {
                    operator,
                    new,
                    supervisor_password,
                    ..
                } => {
                    let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
                    let new = new_password(new.clone(), "new password")?;
                    ops.reset_password(&sup, operator, &new).map_err(explain)?;
                    out!("password of {operator} reset; it must be changed at next login");
                }
                OperatorCmd::Permit {
                    operator,
                    allow,
                    admin_password,
                } => {
                    let admin = secret(admin_password.clone(), "administrator (99) password")?;
                    ops.set_permissions(&admin, operator, allow)
                        .map_err(explain)?;
                    let names: Vec<_> = ops
                        .permissions(operator)
                        .map_err(explain)?
                        .into_iter()
                        .map(|p| format!("{} {}", p.as_str(), p.label()))
                        .collect();
                    out!("operator {operator} may: {}", names.join(", "));
                }
                OperatorCmd::Events => {
                    for (time, by, event, operator) in ops.events().map_err(explain)? {
                        out!("{time} (UTC s)  by {by}: {event}, operator {operator}");
                    }
                }
                OperatorCmd::Login { who } => {
                    let pw = secret(who.password.clone(), "password")?;
                    let role = ops.login(&who.operator, &pw).map_err(explain)?;
                    out!("operator {} logged in ({role:?})", who.operator);
                }
            }
        }
        Command::Signon { who } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let a = t.sign_on(&who.operator).await?;
            out!("sign-on: response {} batch {:06}", a.rc, t.batch()?);
        }
        Command::Sale {
            who,
            card: c,
            amount,
            pin,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let pin = secret(pin.clone(), "cardholder PIN")?;
            let a = t.sale(&card(c), &pin, fen(amount)?, &who.operator).await?;
            show(&t, &a);
        }
        Command::Balance { who, card: c, pin } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let pin = secret(pin.clone(), "cardholder PIN")?;
            let a = t.balance(&card(c), &pin, &who.operator).await?;
            show(&t, &a);
        }
        Command::Void {
            who,
            card: c,
            trace,
            last,
            supervisor_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::VoidRefund)?;
            let trace = match (trace, last) {
                (Some(n), _) => *n,
                (None, _) => {
                    let e = terminal_fw::history::last_voidable(&t.store, t.batch()?)?
                        .ok_or_else(|| anyhow!("no approved sale to void in the open batch"))?;
                    out!(
                        "voiding trace {:06}: {} {} CNY",
                        e.stan,
                        e.masked_pan,
                        codes::yuan_grouped(e.amount_fen)
                    );
                    e.stan
                }
            };
            let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
            let a = t.void(&sup, &card(c), trace, &who.operator).await?;
            show(&t, &a);
        }
        Command::Refund {
            who,
            card: c,
            amount,
            rrn,
            date,
            last,
            supervisor_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::VoidRefund)?;
            let batch = t.batch()?;
            let found = match (rrn, last) {
                (Some(r), _) => terminal_fw::history::sale_by_rrn(&t.store, batch, r)?,
                (None, _) => Some(
                    terminal_fw::history::last_refundable(&t.store, batch)?
                        .ok_or_else(|| anyhow!("no approved sale to refund in the log"))?,
                ),
            };
            let rrn = match (rrn, &found) {
                (Some(r), _) => r.clone(),
                (None, Some(e)) => e.rrn.clone(),
                (None, None) => bail!("no approved sale to refund in the log"),
            };
            let date = match (date, found.as_ref().and_then(terminal_fw::history::date_of)) {
                (Some(d), _) => d.clone(),
                (None, Some(d)) => d.to_owned(),
                (None, None) => bail!(
                    "sale {rrn} is not in this terminal's log: give its date with --date MMDD"
                ),
            };
            if let Some(e) = &found {
                out!(
                    "refunding RRN {rrn} of {date}: {} {} CNY",
                    e.masked_pan,
                    codes::yuan_grouped(e.amount_fen)
                );
            }
            let (rrn, date) = (&rrn, &date);
            let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
            let a = t
                .refund(&sup, &card(c), fen(amount)?, rrn, date, &who.operator)
                .await?;
            show(&t, &a);
        }
        Command::Preauth {
            who,
            card: c,
            amount,
            pin,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let pin = secret(pin.clone(), "cardholder PIN")?;
            let a = t
                .preauth(&card(c), &pin, fen(amount)?, &who.operator)
                .await?;
            show(&t, &a);
        }
        Command::PreauthVoid {
            who,
            card: c,
            auth,
            last,
            date,
            amount,
            supervisor_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::VoidRefund)?;
            let auth = auth_or_last(&t, auth.as_deref(), *last)?;
            let of = preauth_ref(&t, &auth, date.as_deref(), amount.as_deref())?;
            let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
            let a = t.preauth_void(&sup, &card(c), &of, &who.operator).await?;
            show(&t, &a);
        }
        Command::Complete {
            who,
            card: c,
            auth,
            last,
            amount,
            date,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let auth = auth_or_last(&t, auth.as_deref(), *last)?;
            let of = preauth_ref(&t, &auth, date.as_deref(), None)?;
            let a = t
                .complete(&card(c), &of, fen(amount)?, &who.operator)
                .await?;
            show(&t, &a);
        }
        Command::CompleteVoid {
            who,
            card: c,
            trace,
            last,
            supervisor_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::VoidRefund)?;
            let trace = trace_or_last(&t, *trace, *last, &["completion"])?;
            let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
            let a = t
                .complete_void(&sup, &card(c), trace, &who.operator)
                .await?;
            show(&t, &a);
        }
        Command::Adjust { on } | Command::Tip { on } => {
            let tip = matches!(&cli.command, Command::Tip { .. });
            let Adjusting {
                who,
                card: c,
                trace,
                last,
                amount,
            } = on;
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let trace = trace_or_last(&t, *trace, *last, &["sale", "completion"])?;
            let a = t
                .adjust(&card(c), trace, fen(amount)?, tip, &who.operator)
                .await?;
            show(&t, &a);
        }
        Command::Qr {
            who,
            code,
            amount,
            code_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Transact)?;
            let amount = fen(amount)?;
            let mut a = t
                .qr(code, amount, code_password.as_deref(), &who.operator)
                .await?;
            // Above the password-free limit the switch wants the payment password (55):
            // asked now (hidden), and the sale sent again with it.
            if a.rc == "55" && code_password.is_none() {
                out!("{}", codes::describe("55"));
                let pw = secret(None, "payment password (above the password-free limit)")?;
                a = t.qr(code, amount, Some(&pw), &who.operator).await?;
            }
            show(&t, &a);
        }
        Command::Settle {
            who,
            supervisor_password,
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Settle)?;
            let sup = secret(supervisor_password.clone(), "supervisor (00) password")?;
            let s = t.settle(&sup, &who.operator).await?;
            let slip =
                receipt::settlement_slip(t.tid(), t.mid(), s.batch, s.sales, s.refunds, s.balanced);
            terminal_fw::history::keep_settlement_slip(&mut t.store, &slip)?;
            out!("{slip}");
        }
        Command::Pos {
            lang,
            merchant_name,
        } => {
            let t = open(&cli)?;
            if !std::io::stdout().is_terminal() {
                bail!("the POS screen needs a terminal (run it in one, or in tmux)");
            }
            terminal_fw::pos::run(terminal_fw::pos::Device {
                terminal: t,
                merchant_name: merchant_name.clone(),
                switch: cli.switch_addr().to_string(),
                lang: terminal_fw::pos::Lang::parse(lang).unwrap_or_default(),
            })
            .await
            .context("the POS screen")?;
        }
        Command::Echo => {
            let mut t = open(&cli)?;
            out!("echo: response {}", t.echo().await?);
        }
        Command::Log { who } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Query)?;
            let open_batch = t.batch()?;
            // The open batch, then the last settled one (a refund or reprint may need it).
            let batches = [
                (open_batch, "open"),
                (open_batch.saturating_sub(1), "settled"),
            ];
            for (batch, state) in batches.into_iter().filter(|(b, _)| *b > 0) {
                out!("batch {batch:06} ({state})");
                for e in t.store.log(batch)? {
                    out!(
                        "{:06} {:<8} {:<20} {:>12} {} {} {}{}",
                        e.stan,
                        e.kind,
                        e.masked_pan,
                        format!("{}.{:02}", e.amount_fen / 100, e.amount_fen % 100),
                        e.rc,
                        e.rrn,
                        e.when,
                        if e.voided { " voided" } else { "" }
                    );
                }
            }
        }
        Command::Reprint {
            settlement: true,
            who,
            ..
        } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Query)?;
            let slip = terminal_fw::history::last_settlement_slip(&t.store)?
                .ok_or_else(|| anyhow!("no settlement yet on this terminal"))?;
            out!("{slip}\n(REPRINT 重打印)");
        }
        Command::Reprint { trace, who, .. } => {
            let mut t = open(&cli)?;
            login(&mut t, who, Permission::Query)?;
            // The open batch, else the last settled one.
            let batch = t.batch()?;
            let mut log = t.store.log(batch.saturating_sub(1))?;
            log.extend(t.store.log(batch)?);
            let e = match trace {
                Some(s) => log.iter().rev().find(|e| e.stan == *s),
                None => log.iter().rev().find(|e| e.kind != "balance"),
            }
            .ok_or_else(|| anyhow!("no such transaction in the open or the last settled batch"))?;
            out!(
                "{}",
                receipt::receipt(
                    e,
                    "DEMO MERCHANT (TEST)",
                    t.mid(),
                    t.tid(),
                    Copy::Merchant,
                    true
                )
            );
        }
        Command::Demo { algorithm } => demo(&cli, *algorithm).await?,
        Command::Load {
            terminals,
            duration,
            rate,
            mix,
            first_tid,
            algorithm,
            pan,
            pin,
            json,
            record,
        } => {
            let mix = terminal_fw::load::Mix::parse(mix).map_err(|e| anyhow!(e))?;
            let summary = terminal_fw::load::run(terminal_fw::load::LoadOptions {
                cipher: *algorithm,
                addrs: cli.switch_addrs.clone(),
                terminals: *terminals,
                first_tid: *first_tid,
                mid: "898310048990001".into(),
                tmk: DEMO_TMK.into(),
                duration: Duration::from_secs(*duration),
                rate: *rate,
                mix,
                pan: pan.clone(),
                pin: pin.clone(),
                progress: !json,
                record: record.clone(),
                tls: cli.tls()?,
            })
            .await?;
            if *json {
                out!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                out!(
                    "total {}  errors {}  {:.1} s  {:.0} tps\nlatency us: {:?}\nresponse codes: {:?}",
                    summary.total,
                    summary.errors,
                    summary.seconds,
                    summary.throughput,
                    summary.latency_us,
                    summary.response_codes
                );
                if !summary.failures.is_empty() {
                    out!("failures: {:?}", summary.failures);
                }
                if let Some(cpu) = summary.cpu_seconds {
                    out!(
                        "generator CPU: {cpu:.2} s ({:.1} us per request)",
                        cpu * 1e6 / (summary.total.max(1) as f64)
                    );
                }
            }
            if summary.response_codes.get("00").copied().unwrap_or(0) == 0 {
                bail!(
                    "no request was approved (response codes {:?}, failures {:?})",
                    summary.response_codes,
                    summary.failures
                );
            }
        }
    }
    Ok(())
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    Permission::parse(s.trim())
        .ok_or_else(|| format!("{s:?}: transact, void-refund, query or settle"))
}

fn parse_cipher(s: &str) -> Result<Cipher, String> {
    Cipher::parse(s).ok_or_else(|| format!("{s:?}: tdes or sm4"))
}

/// A merchant day on the demo set, in a fresh state directory.
async fn demo(cli: &Cli, cipher: Cipher) -> Result<()> {
    // The demo terminal keeps its state between runs (its trace numbers and batch go on).
    let (dir, tid) = match cipher {
        Cipher::Tdes => (cli.state.join("demo"), "10000777"),
        Cipher::Sm4 => (cli.state.join("demo-sm4"), "10003077"),
    };
    let mut store = Store::open(&dir)?;
    if store.get_text("tid")?.is_none() {
        Terminal::init_with(&mut store, tid, "898310048990001", DEMO_TMK, cipher)?;
        let mut ops = Operators::new(&mut store)?;
        ops.change_password("99", terminal_fw::operators::FACTORY_ADMIN, "135790")
            .map_err(explain)?;
        ops.change_password("00", terminal_fw::operators::FACTORY_SUPERVISOR, "246802")
            .map_err(explain)?;
        ops.add_cashier("135790", "01", "102938").map_err(explain)?;
        out!(
            "demo terminal {tid} ({}): administrator 135790, supervisor 246802, cashier 01 102938 (test passwords)",
            cipher.as_str()
        );
    }
    let mut t = Terminal::open(store, cli.switch_addr())?;
    if let Some(tls) = cli.tls()? {
        t.with_tls(tls);
    }
    out!("sign-on: {}", t.sign_on("01").await?.rc);
    let debit = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    let credit = Card {
        pan: "6250941000000009".into(),
        expiry: None,
    };
    let a = t.sale(&debit, "123456", 12_345, "01").await?;
    show(&t, &a);
    let b = t.sale(&credit, "654321", 50_000, "01").await?;
    show(&t, &b);
    let q = t.qr("280000000000000042", 8_800, None, "01").await?;
    show(&t, &q);
    let v = t.sale(&debit, "123456", 1_000, "01").await?;
    let trace = v.entry.as_ref().map_or(0, |e| e.stan);
    let a = t.void("246802", &debit, trace, "01").await?;
    show(&t, &a);
    let a = t.balance(&debit, "123456", "01").await?;
    show(&t, &a);
    // A hotel stay: 800.00 held at check-in, 880.00 taken at check-out (within 115 %).
    let hold = t.preauth(&credit, "654321", 80_000, "01").await?;
    show(&t, &hold);
    if let Some(e) = hold.entry.as_ref().filter(|_| hold.rc == "00") {
        let a = t
            .complete(&credit, &terminal_fw::PreauthRef::of(e), 88_000, "01")
            .await?;
        show(&t, &a);
    }
    let s = t.settle("246802", "01").await?;
    out!(
        "{}",
        receipt::settlement_slip(t.tid(), t.mid(), s.batch, s.sales, s.refunds, s.balanced)
    );
    let mmdd = b
        .entry
        .as_ref()
        .map_or(String::new(), |e| e.when[..4].to_owned());
    let a = t
        .refund("246802", &credit, 10_000, &b.rrn, &mmdd, "01")
        .await?;
    show(&t, &a);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) if DECLINED.load(std::sync::atomic::Ordering::Relaxed) => {
            ExitCode::from(EXIT_DECLINED)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::confirmed;

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
            "terminal-fw",
            &mut missing,
        );
        assert!(missing.is_empty(), "flags without help: {missing:#?}");
    }

    #[test]
    fn a_new_password_typed_twice_must_agree() {
        assert_eq!(
            confirmed("135790".into(), "135790".into()).unwrap(),
            "135790"
        );
        let e = confirmed("135790".into(), "135709".into()).unwrap_err();
        assert!(e.to_string().contains("differ"));
    }
}
