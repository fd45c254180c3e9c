//! `[[issuers]]`: remote issuers, their lines, zone keys, time-outs, store-and-forward and
//! stand-in.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, is_hex_key};

/// A remote issuer reached over one or more TCP lines (ISO 8583:1987).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Name used by routes, logs and metric labels.
    pub name: String,
    /// `host:port` of each line; requests go round-robin over the healthy ones.
    pub lines: Vec<String>,
    /// `iso87-binary` (2-byte length, default) or `iso87-ascii` (4-digit ASCII length).
    #[serde(default = "default_issuer_dialect")]
    pub dialect: String,
    /// Cipher of the zone keys: `tdes` (default) or `sm4` (SM4 ZPK and ZAK, the 16-byte SM4
    /// PIN block in 52, the SM4 CBC-MAC in 64).
    #[serde(default, skip_serializing_if = "super::terminals::is_tdes")]
    pub algorithm: super::TerminalAlgorithm,
    /// Our acquiring institution id (field 32); default `acquirer.institution_id`.
    #[serde(default)]
    pub acquirer_id: Option<String>,
    /// Zone PIN key, sealed under the LMK (hex).
    #[serde(default)]
    pub zpk_sealed: Option<String>,
    /// Zone PIN key in clear (test keys only; refused in production).
    #[serde(default)]
    pub zpk_clear: Option<String>,
    /// Zone MAC key (X9.19), sealed under the LMK (hex).
    #[serde(default)]
    pub zak_sealed: Option<String>,
    /// Zone MAC key in clear (test keys only; refused in production).
    #[serde(default)]
    pub zak_clear: Option<String>,
    /// Zone PIN key under a network HSM's LMK (key type `001`), with `[hsm] remote`.
    #[serde(default)]
    pub zpk_lmk: Option<String>,
    /// Zone MAC key under a network HSM's LMK (key type `008`), with `[hsm] remote`.
    #[serde(default)]
    pub zak_lmk: Option<String>,
    /// The ZPK's check value, checked through the network HSM at start.
    #[serde(default)]
    pub zpk_check: Option<String>,
    /// The ZAK's check value, checked through the network HSM at start.
    #[serde(default)]
    pub zak_check: Option<String>,
    /// Milliseconds to wait for a reply before answering `98` and reversing.
    #[serde(default = "default_issuer_timeout")]
    pub timeout_ms: u64,
    /// Requests waiting for this issuer at most; beyond it new ones answer `91`.
    #[serde(default = "default_issuer_in_flight")]
    pub max_in_flight: usize,
    /// An idle line sends an 0800 echo (301) after this many seconds without traffic.
    #[serde(default = "default_echo_interval")]
    pub echo_interval_secs: u64,
    /// First reconnect delay, milliseconds (doubles per failure, jittered).
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, milliseconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Fields that, with the MTI class, match a reply to its request.
    #[serde(default = "default_match_fields")]
    pub match_fields: Vec<u8>,
    /// Consecutive time-outs that open the circuit breaker (0: never): while open, new
    /// requests are not sent and answer `91` (or go to stand-in) at once.
    #[serde(default = "default_breaker_timeouts")]
    pub breaker_timeouts: u32,
    /// Milliseconds the breaker stays open before requests are tried again.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Store-and-forward of reversals and advices.
    #[serde(default)]
    pub saf: SafConfig,
    /// Stand-in processing when the issuer is unreachable (off by default).
    #[serde(default)]
    pub stand_in: StandInConfig,
    /// How a pre-authorisation's completion goes to this issuer: `advice` (0220, default)
    /// or `request` (0200).
    #[serde(default, skip_serializing_if = "CompletionMessage::is_advice")]
    pub completion: CompletionMessage,
    /// Lines over TLS (mutual, with a client certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IssuerTlsConfig>,
}

/// The message a completion goes to the issuer as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompletionMessage {
    /// 0220, the financial advice (default).
    #[default]
    Advice,
    /// 0200, the financial request.
    Request,
}

impl CompletionMessage {
    fn is_advice(&self) -> bool {
        *self == Self::Advice
    }
}

/// TLS on an issuer's lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerTlsConfig {
    /// The CA the issuer's certificate chains to (PEM).
    pub ca_file: std::path::PathBuf,
    /// Our client certificate (PEM), for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
    /// The name the issuer's certificate carries; default: each line's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

fn default_issuer_dialect() -> String {
    "iso87-binary".into()
}
fn default_issuer_timeout() -> u64 {
    5_000
}
fn default_issuer_in_flight() -> usize {
    512
}
fn default_echo_interval() -> u64 {
    30
}
fn default_reconnect_min() -> u64 {
    200
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_breaker_timeouts() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    10_000
}
fn default_match_fields() -> Vec<u8> {
    vec![41, 11]
}

/// Store-and-forward queue settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafConfig {
    /// Seconds before the first resend (0421/0221); doubles per try up to 64 times it.
    pub retry_secs: u64,
    /// Sends at most, then the entry expires (logged, counted, kept in the journal).
    pub max_tries: u32,
    /// Seconds after which an unacknowledged entry expires.
    pub expiry_secs: u64,
}

impl Default for SafConfig {
    fn default() -> Self {
        Self {
            retry_secs: 10,
            max_tries: 20,
            expiry_secs: 7 * 24 * 3600,
        }
    }
}

/// Stand-in processing limits.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandInConfig {
    /// Approve on the issuer's behalf while it is unreachable.
    pub enabled: bool,
    /// Largest stand-in sale, fen.
    pub max_txn_fen: u64,
    /// Most stand-in approvals per card per day (China Standard Time), fen.
    pub max_card_day_fen: u64,
}

/// Issuer links: names, lines, dialect, zone keys, time-outs, queue and stand-in.
pub(super) fn validate(issuers: &[IssuerConfig], production: bool) -> Result<(), ConfigError> {
    for (i, iss) in issuers.iter().enumerate() {
        let key = |k: &str| format!("issuers[{i}].{k}");
        if iss.name.is_empty()
            || iss.name == "on-us"
            || !iss
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                key("name"),
                "letters, digits, - and _ only; not \"on-us\"",
            ));
        }
        if issuers[..i].iter().any(|o| o.name == iss.name) {
            return Err(invalid(key("name"), "used twice"));
        }
        if iss.lines.is_empty() {
            return Err(invalid(key("lines"), "at least one host:port"));
        }
        for (j, l) in iss.lines.iter().enumerate() {
            if !l.contains(':')
                || l.rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_none()
            {
                return Err(invalid(
                    format!("issuers[{i}].lines[{j}]"),
                    "must be host:port",
                ));
            }
        }
        if !matches!(iss.dialect.as_str(), "iso87-binary" | "iso87-ascii") {
            return Err(invalid(
                key("dialect"),
                "must be iso87-binary or iso87-ascii",
            ));
        }
        if let Some(a) = &iss.acquirer_id
            && (a.is_empty() || a.len() > 11 || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(key("acquirer_id"), "must be 1 to 11 digits"));
        }
        for (name, sealed, clear, lmk) in [
            ("zpk", &iss.zpk_sealed, &iss.zpk_clear, &iss.zpk_lmk),
            ("zak", &iss.zak_sealed, &iss.zak_clear, &iss.zak_lmk),
        ] {
            match (sealed, clear) {
                (None, None) if lmk.is_some() => {}
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        key(&format!("{name}_sealed")),
                        format!("give exactly one of {name}_sealed and {name}_clear"),
                    ));
                }
                (None, Some(c))
                    if iss.algorithm == super::TerminalAlgorithm::Sm4
                        && (c.len() != 32 || !c.bytes().all(|b| b.is_ascii_hexdigit())) =>
                {
                    return Err(invalid(
                        key(&format!("{name}_clear")),
                        "an SM4 key is 32 hex characters",
                    ));
                }
                (None, Some(c)) if !matches!(c.len(), 32 | 48) || !is_hex_key(c) => {
                    return Err(invalid(
                        key(&format!("{name}_clear")),
                        "must be 32 or 48 hex characters (double or triple length)",
                    ));
                }
                (None, Some(_)) if production => {
                    return Err(invalid(
                        key(&format!("{name}_clear")),
                        "clear keys are test keys, refused in production",
                    ));
                }
                _ => {}
            }
        }
        if iss.algorithm == super::TerminalAlgorithm::Sm4
            && (iss.zpk_lmk.is_some() || iss.zak_lmk.is_some())
        {
            return Err(invalid(
                key("algorithm"),
                "SM4 zone keys need the in-process HSM: the network HSM commands here are TDES",
            ));
        }
        if iss.timeout_ms == 0 || iss.max_in_flight == 0 || iss.echo_interval_secs == 0 {
            return Err(invalid(
                key("timeout_ms"),
                "timeout_ms, max_in_flight and echo_interval_secs must be above 0",
            ));
        }
        if iss.reconnect_min_ms == 0 || iss.reconnect_max_ms < iss.reconnect_min_ms {
            return Err(invalid(
                key("reconnect_min_ms"),
                "must be above 0 and not above reconnect_max_ms",
            ));
        }
        if iss
            .match_fields
            .iter()
            .any(|f| !(2..=128).contains(f) || *f == 64)
        {
            return Err(invalid(
                key("match_fields"),
                "field numbers 2 to 128, not 64",
            ));
        }
        if iss.saf.max_tries == 0 || iss.saf.retry_secs == 0 || iss.saf.expiry_secs == 0 {
            return Err(invalid(
                key("saf"),
                "retry_secs, max_tries and expiry_secs must be above 0",
            ));
        }
        if iss.stand_in.enabled && iss.stand_in.max_txn_fen == 0 {
            return Err(invalid(
                key("stand_in.max_txn_fen"),
                "stand-in needs a per-transaction limit above 0",
            ));
        }
    }
    Ok(())
}
