//! `hsm-sim`: key ceremonies for the software HSM.
//!
//! ```text
//! hsm-sim lmk new --out lmk.hex                     create an LMK file (0600), print its check value
//! hsm-sim lmk check --lmk lmk.hex                   print the LMK's check value
//! hsm-sim key generate --usage tpk [--alg tdes2]    generate a key, print it sealed + KCV
//! hsm-sim key import --usage tmk                    seal a clear key typed at a hidden prompt
//! hsm-sim key import --usage tmk --components 3     ... entered as 2 or 3 components, XORed
//! hsm-sim key import --usage tmk --clear -          ... read from standard input
//! hsm-sim key inspect --sealed HEX                  verify a sealed key, print usage and KCV
//! hsm-sim kcv --clear HEX [--alg tdes2] [--len 3]   check value of a clear key
//! hsm-sim serve --listen ADDR --variant-lmk test|FILE [--header-len 4]
//!                                                   a network HSM speaking the payShield
//!                                                   host command protocol
//! hsm-sim load --hsm ADDR --command ca|dc|da|nc --connections N --duration S
//!                                                   commands per second it answers
//! ```
//! Key commands take `--lmk FILE`, or `--test-lmk` for the demo LMK (test data).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use hsm_sim::{Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, SealedKey, clear_key_check_value};
use zeroize::Zeroizing;

mod load;
mod serve;

#[derive(Parser)]
#[command(
    name = "hsm-sim",
    version,
    about = "Key ceremonies for the software payment HSM, and a payShield-protocol network HSM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local master key files.
    Lmk {
        #[command(subcommand)]
        command: LmkCommand,
    },
    /// Keys sealed under the LMK.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// A network HSM speaking the payShield host command protocol.
    Serve(serve::Serve),
    /// Commands per second a payShield-protocol HSM answers (test-LMK vectors).
    Load(load::Load),
    /// Check value of a clear key.
    Kcv {
        /// The clear key, hex.
        #[arg(long)]
        clear: String,
        /// Algorithm: des, tdes2, tdes3, aes128, aes192, aes256 (default from the length).
        #[arg(long)]
        alg: Option<String>,
        /// Bytes of check value to print.
        #[arg(long, default_value_t = 3)]
        len: usize,
    },
}

#[derive(Subcommand)]
enum LmkCommand {
    /// Create a new random LMK file.
    New {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an LMK file's check value.
    Check {
        #[arg(long)]
        lmk: PathBuf,
    },
}

#[derive(Args)]
struct LmkSource {
    /// LMK file (64 hex characters).
    #[arg(long, conflicts_with = "test_lmk")]
    lmk: Option<PathBuf>,
    /// Use the demo LMK (test data, never for real keys).
    #[arg(long)]
    test_lmk: bool,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a random key.
    Generate {
        #[command(flatten)]
        source: LmkSource,
        /// tmk, tpk, tak, zmk, zpk, zak, pvk, cvk, bdk
        #[arg(long)]
        usage: String,
        /// des, tdes2, tdes3, aes128, aes192, aes256
        #[arg(long, default_value = "tdes2")]
        alg: String,
    },
    /// Seal a clear key.
    Import {
        #[command(flatten)]
        source: LmkSource,
        #[arg(long)]
        usage: String,
        /// Default from the key's length (8: des, 16: tdes2, 24: tdes3).
        #[arg(long)]
        alg: Option<String>,
        /// The clear key: `-` reads it from standard input (a hidden prompt on a terminal);
        /// hex on the command line works for scripts but shows in `ps` and the shell
        /// history. Absent: a hidden prompt.
        #[arg(long, conflicts_with = "components")]
        clear: Option<String>,
        /// Enter the key as 2 or 3 components held by different custodians, each typed at a
        /// hidden prompt (or read from standard input) and shown with its check value; the
        /// key is their XOR.
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
        components: Option<u8>,
    },
    /// Verify a sealed key and show what it is.
    Inspect {
        #[command(flatten)]
        source: LmkSource,
        #[arg(long)]
        sealed: String,
    },
}

fn parse_usage(s: &str) -> Result<KeyUsage> {
    KeyUsage::parse(s).ok_or_else(|| {
        anyhow!("unknown key usage {s:?}: use one of tmk, tpk, tak, zmk, zpk, zak, pvk, cvk, bdk")
    })
}

fn parse_alg(s: &str) -> Result<KeyAlgorithm> {
    KeyAlgorithm::parse(s).ok_or_else(|| {
        anyhow!("unknown algorithm {s:?}: use one of des, tdes2, tdes3, aes128, aes192, aes256")
    })
}

fn parse_clear(hex_text: &str, alg: Option<&str>) -> Result<(KeyAlgorithm, Zeroizing<Vec<u8>>)> {
    let t = hex_text.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("the key is not hex: use the characters 0-9 and A-F only");
    }
    if !t.len().is_multiple_of(2) {
        bail!("the key has an odd number of hex characters ({})", t.len());
    }
    let bytes = Zeroizing::new(hex::decode(t).context("the key is not hex")?);
    let alg = match alg {
        Some(a) => parse_alg(a)?,
        None => KeyAlgorithm::des_for_len(bytes.len()).map_err(|_| {
            anyhow!("a clear key of {} bytes: DES keys are 8, 16 or 24 bytes (16, 32 or 48 hex characters); give --alg for AES", bytes.len())
        })?,
    };
    if bytes.len() != alg.len() {
        bail!(
            "a {alg:?} key is {} bytes ({} hex characters), this one is {} bytes",
            alg.len(),
            alg.len() * 2,
            bytes.len()
        );
    }
    Ok((alg, bytes))
}

fn load_hsm(source: &LmkSource) -> Result<Hsm> {
    let lmk = match (&source.lmk, source.test_lmk) {
        (Some(path), false) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading LMK file {}", path.display()))?,
            );
            Lmk::from_hex(&text).map_err(|_| {
                anyhow!(
                    "{} is not an LMK file: it must hold 64 hex characters",
                    path.display()
                )
            })?
        }
        (None, true) => {
            eprintln!(
                "WARNING: using the demo LMK (test data); keys sealed under it are not secret"
            );
            Lmk::test()
        }
        _ => bail!("give --lmk FILE, or --test-lmk for the demo LMK"),
    };
    let config = HsmConfig {
        allow_test_keys: source.test_lmk,
        ..HsmConfig::default()
    };
    Hsm::new(lmk, &config).map_err(|e| anyhow!("{e}"))
}

fn print_sealed(hsm: &Hsm, key: &SealedKey) -> Result<()> {
    let kcv = hsm.check_value(key).map_err(|e| anyhow!("{e}"))?;
    println!("usage:  {}", key.usage().map_err(|e| anyhow!("{e}"))?);
    println!("alg:    {:?}", key.algorithm().map_err(|e| anyhow!("{e}"))?);
    println!("kcv:    {}", hex::encode_upper(&kcv[..3]));
    println!("sealed: {}", key.to_hex());
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Lmk { command } => match command {
            LmkCommand::New { out } => {
                let (lmk, bytes) = Lmk::generate().map_err(|e| anyhow!("{e}"))?;
                write_secret_file(&out, &hex::encode_upper(&*bytes))?;
                println!("LMK written to {}", out.display());
                println!("check value: {}", hex::encode_upper(lmk.check_value()));
            }
            LmkCommand::Check { lmk } => {
                let hsm = load_hsm(&LmkSource {
                    lmk: Some(lmk),
                    test_lmk: false,
                })?;
                println!("check value: {}", hex::encode_upper(hsm.lmk_check_value()));
            }
        },
        Command::Key { command } => match command {
            KeyCommand::Generate { source, usage, alg } => {
                let (usage, alg) = (parse_usage(&usage)?, parse_alg(&alg)?);
                let hsm = load_hsm(&source)?;
                let key = hsm.generate_key(usage, alg).map_err(|e| anyhow!("{e}"))?;
                print_sealed(&hsm, &key)?;
            }
            KeyCommand::Import {
                source,
                usage,
                alg,
                clear,
                components,
            } => {
                let usage = parse_usage(&usage)?;
                let hsm = load_hsm(&source)?;
                let (alg, bytes) = match (clear.as_deref(), components) {
                    (Some("-") | None, None) => {
                        parse_clear(&read_secret("clear key (hex)")?, alg.as_deref())?
                    }
                    (Some(hex_text), None) => {
                        eprintln!(
                            "WARNING: a clear key on the command line shows in `ps` and the shell history; use --clear - or --components N"
                        );
                        parse_clear(hex_text, alg.as_deref())?
                    }
                    (_, Some(n)) => combine_components(n, alg.as_deref())?,
                };
                if let Some(name) = hsm_sim::published::lookup_clear(alg, &bytes) {
                    eprintln!(
                        "WARNING: this is a published key ({name}): anyone can know it; a production switch refuses it"
                    );
                }
                let key = hsm
                    .import_clear_key(usage, alg, &bytes)
                    .map_err(|e| anyhow!("{e}"))?;
                print_sealed(&hsm, &key)?;
            }
            KeyCommand::Inspect { source, sealed } => {
                let hsm = load_hsm(&source)?;
                let key = SealedKey::from_hex(&sealed).map_err(|_| {
                    anyhow!("not a sealed key: expected the hex printed by `hsm-sim key generate`")
                })?;
                print_sealed(&hsm, &key).context(
                    "the sealed key does not open under this LMK (tampered, or another LMK)",
                )?;
            }
        },
        Command::Serve(args) => serve::run(args)?,
        Command::Load(args) => load::run(args)?,
        Command::Kcv { clear, alg, len } => {
            let (alg, bytes) = parse_clear(&clear, alg.as_deref())?;
            let kcv = clear_key_check_value(alg, &bytes, len).map_err(|e| anyhow!("{e}"))?;
            println!("{}", hex::encode_upper(kcv));
        }
    }
    Ok(())
}

/// One secret line: typed at a hidden prompt when standard input is a terminal, else read
/// from standard input (a ceremony script, a test). Never echoed, never on the command line.
fn read_secret(prompt: &str) -> Result<Zeroizing<String>> {
    let line = if std::io::stdin().is_terminal() {
        eprint!("{prompt}: ");
        Zeroizing::new(rpassword::read_password().context("reading from the terminal")?)
    } else {
        let mut line = Zeroizing::new(String::new());
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading standard input")?;
        if n == 0 {
            bail!("{prompt}: standard input ended");
        }
        line
    };
    Ok(Zeroizing::new(line.trim().to_owned()))
}

/// Reads `n` key components, shows each one's check value, and returns their XOR.
fn combine_components(n: u8, alg: Option<&str>) -> Result<(KeyAlgorithm, Zeroizing<Vec<u8>>)> {
    let mut key: Option<(KeyAlgorithm, Zeroizing<Vec<u8>>)> = None;
    for i in 1..=n {
        let text = read_secret(&format!("component {i} of {n} (hex)"))?;
        let (c_alg, c) =
            parse_clear(&text, alg).with_context(|| format!("component {i} of {n}"))?;
        let kcv = clear_key_check_value(c_alg, &c, 3).map_err(|e| anyhow!("{e}"))?;
        eprintln!(
            "component {i} of {n} check value: {}",
            hex::encode_upper(kcv)
        );
        key = Some(match key {
            None => (c_alg, c),
            Some((k_alg, mut k)) => {
                if k_alg != c_alg || k.len() != c.len() {
                    bail!("component {i} of {n} is not the same length as component 1");
                }
                k.iter_mut().zip(c.iter()).for_each(|(a, b)| *a ^= b);
                (k_alg, k)
            }
        });
    }
    let (alg, k) = key.ok_or_else(|| anyhow!("no components"))?;
    let kcv = clear_key_check_value(alg, &k, 3).map_err(|e| anyhow!("{e}"))?;
    eprintln!("combined key check value: {}", hex::encode_upper(kcv));
    Ok((alg, k))
}

fn write_secret_file(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| {
        format!(
            "creating {} (an existing file is never overwritten)",
            path.display()
        )
    })?;
    writeln!(f, "{text}")?;
    Ok(())
}
