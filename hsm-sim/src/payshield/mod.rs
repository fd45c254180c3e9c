//! A network HSM speaking the **payShield host command protocol** over TCP, on a variant LMK.
//!
//! ```text
//!  request   ┌──────────┬────────────┬──────┬──────────────┬──────┬─────────┐
//!            │ len (2B) │ header (N) │ code │ fields …     │ 0x19 │ trailer │
//!            │ BE, rest │ echoed     │ "CA" │              │ opt. │ echoed  │
//!            └──────────┴────────────┴──────┴──────────────┴──────┴─────────┘
//!  response  │ len (2B) │ header (N) │ "CB" │ error "00" │ fields … │ 0x19 trailer │
//! ```
//!
//! The response code is the command code with its second character incremented (`NC`→`ND`,
//! `CA`→`CB`); the error code is two digits ([`ErrorCode`]). A command that is malformed or
//! short gets `15`, an unknown one `68`, never a dropped connection; a frame whose length
//! cannot be read closes the connection.
//!
//! Keys are `16H` (single length), or a scheme tag and hex: `U`/`X` + `32H`, `T`/`Y` + `48H`,
//! `Z` + `16H` ([`variant`]). Account numbers are the 12 right-most PAN digits before the
//! check digit.
//!
//! | command | what | fields after the code | answer fields |
//! | --- | --- | --- | --- |
//! | `NC` | diagnostics | — | LMK check value `16H`, firmware `9A` |
//! | `A0` | generate a key | mode `1A` (`0`, `1` = also under ZMK/TMK), key type `3H`, scheme `1A`; mode 1: [`;` ZMK/TMK flag `1N` (`0` ZMK, `1` TMK)], ZMK/TMK, scheme under it `1A` | key under LMK, [key under ZMK/TMK], check value `6H` |
//! | `A6` | import under a ZMK | key type `3H`, ZMK, key under ZMK, scheme (LMK) `1A` | key under LMK, check value `6H` |
//! | `A8` | export under a ZMK/TMK | key type `3H`, [`;` flag `1N`], ZMK/TMK, key, scheme (ZMK) `1A` | key under ZMK/TMK, check value `6H` |
//! | `BU` | key check value | key type code `2H` (or `FF` then `;` and `3H` at the end), length flag `1N` (`0` single, `1` double, `2` triple), key | check value `16H` |
//! | `CA` | PIN TPK → ZPK | TPK, ZPK, max PIN length `2N`, PIN block `16H`, source format `2N`, destination format `2N`, account `12N` | PIN length `2N`, PIN block `16H`, format `2N` |
//! | `CC` | PIN ZPK → ZPK | source ZPK, destination ZPK, then as `CA` | as `CA` |
//! | `JC` | PIN TPK → LMK | TPK, PIN block `16H`, format `2N`, account `12N` | PIN under LMK `LN` |
//! | `JE` | PIN ZPK → LMK | ZPK, PIN block `16H`, format `2N`, account `12N` | PIN under LMK `LN` |
//! | `DA` | verify terminal PIN, IBM offset | TPK, PVK, max PIN length `2N`, PIN block `16H`, format `2N`, check length `2N`, account `12N`, decimalisation table `16N`, validation data `12A`, offset `12H` | — (`00` or `01`) |
//! | `EA` | verify interchange PIN, IBM offset | ZPK, then as `DA` | — |
//! | `DC` | verify terminal PIN, Visa PVV | TPK, PVK pair (`32H` or tagged), PIN block `16H`, format `2N`, account `12N`, PVKI `1N`, PVV `4N` | — |
//! | `EC` | verify interchange PIN, Visa PVV | ZPK, then as `DC` | — |
//! | `DE` | generate IBM offset | PVK, PIN under LMK `LN`, check length `2N`, account `12N`, decimalisation table `16N`, validation data `12A` | offset `12H` |
//! | `DG` | generate Visa PVV | PVK pair, PIN under LMK `LN`, account `12N`, PVKI `1N` | PVV `4N` |
//! | `CW` | generate CVV | CVK pair, PAN (to `;`), `;`, expiry `4N`, service code `3N` | CVV `3N` |
//! | `CY` | verify CVV | CVK pair, CVV `3N`, PAN, `;`, expiry `4N`, service code `3N` | — |
//! | `MA` | MAC (X9.9) | TAK, data | MAC `8H` |
//! | `MC` | verify MAC (X9.9) | TAK, MAC `8H`, data | — |
//! | `M6` | MAC | mode `1N` (`0`), input format `1N` (`0` binary, `1` hex, `2` text), MAC size `1N` (`0` = `8H`, `1` = `16H`), algorithm `1N` (`1` ISO 9797-1 alg. 1, `3` alg. 3), padding `1N` (`0` none, `1` method 1, `2` method 2), key type `3H` (`003` TAK, `008` ZAK), key, length `4H`, message | MAC |
//! | `M8` | verify MAC | as `M6`, then the MAC | — |
//!
//! Validation data is 12 characters; an `N` in it stands for the account's last five digits
//! (making 16), and data without one is padded with `F` to 16. PIN verification failures
//! count toward the failure limiter: past its limit `DA`/`EA`/`DC`/`EC` answer `01` without
//! decrypting. Key generation, import and export are written to the audit log by check value.

pub mod code;
mod commands;
pub mod pin;
pub mod reader;
pub mod server;
pub mod variant;

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditLog};
use crate::limiter::FailureLimiter;
use crate::{Error, KeyUsage};
pub use code::ErrorCode;
use reader::KeyField;
pub use variant::{KeyType, Scheme, VariantLmk};

/// The byte that starts a message trailer.
pub const TRAILER: u8 = 0x19;

/// The firmware string `NC` reports.
pub const FIRMWARE: &str = "0007-E000";

/// How the payShield-protocol HSM is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Accept the published test LMK set (test data).
    pub allow_test_lmk: bool,
    /// PIN verification failures allowed per window.
    pub pin_failures_per_window: u32,
    /// The failure-counting window.
    pub pin_failure_window: Duration,
    /// Audit entries kept in memory.
    pub audit_capacity: usize,
    /// Where to append audit entries.
    pub audit_file: Option<std::path::PathBuf>,
    /// Commands answered `68`.
    pub disabled: Vec<[u8; 2]>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_test_lmk: false,
            pin_failures_per_window: 1_000,
            pin_failure_window: Duration::from_secs(60),
            audit_capacity: 10_000,
            audit_file: None,
            disabled: Vec::new(),
        }
    }
}

/// The command processor: one command body in, one response body out.
pub struct PayShield {
    lmk: VariantLmk,
    rng: SystemRandom,
    audit: AuditLog,
    limiter: FailureLimiter,
    disabled: Vec<[u8; 2]>,
}

impl std::fmt::Debug for PayShield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayShield")
            .field("lmk", &self.lmk)
            .finish_non_exhaustive()
    }
}

impl PayShield {
    /// A processor on `lmk`; the test set is refused unless `config.allow_test_lmk`.
    pub fn new(lmk: VariantLmk, config: &Config) -> Result<Self, Error> {
        if lmk.is_test() {
            if !config.allow_test_lmk {
                return Err(Error::TestKeyRefused);
            }
            tracing::warn!(
                lmk_check = %hex::encode_upper(lmk.check_value()),
                "payShield HSM is running on the published TEST LMK: test keys only"
            );
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &lmk.digest_seed());
        let audit = AuditLog::new(key, config.audit_capacity, config.audit_file.as_deref())
            .map_err(|_| Error::Random)?;
        audit.record(AuditEvent::LmkLoaded, None, &lmk.check_value()[..3]);
        Ok(Self {
            limiter: FailureLimiter::new(config.pin_failures_per_window, config.pin_failure_window),
            lmk,
            rng: SystemRandom::new(),
            audit,
            disabled: config.disabled.clone(),
        })
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The LMK.
    pub fn lmk(&self) -> &VariantLmk {
        &self.lmk
    }

    /// Answers one command (`code` + fields, without header or trailer): the response code
    /// and error code, then the answer fields.
    pub fn process(&self, command: &[u8]) -> Vec<u8> {
        let (code, body) = match command {
            [a, b, rest @ ..] => ([*a, *b], rest),
            _ => return b"ZZ15".to_vec(),
        };
        let reply = [code[0], code[1].wrapping_add(1)];
        // Binary MAC input may hold 0x19: there the command's own lengths find the trailer.
        let binary = matches!(&code, b"M6" | b"M8");
        let (body, mut trailer) = match body.iter().position(|b| *b == TRAILER) {
            Some(i) if !binary => (&body[..i], Some(&body[i..])),
            _ => (body, None),
        };
        let result = if self.disabled.contains(&code) {
            Err(ErrorCode::CommandDisabled)
        } else {
            let (result, rest) = commands::run(self, code, body);
            if binary && rest.first() == Some(&TRAILER) {
                trailer = Some(rest);
            }
            result
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&reply);
        match result {
            Ok(fields) => {
                out.extend_from_slice(b"00");
                out.extend_from_slice(fields.as_bytes());
            }
            Err(e) => out.extend_from_slice(e.as_str().as_bytes()),
        }
        if let Some(t) = trailer {
            out.extend_from_slice(t);
        }
        out
    }

    /// The clear key of a key field under key type `t`, parity checked (`parity` when not
    /// odd).
    fn open(
        &self,
        field: &KeyField,
        t: KeyType,
        parity: ErrorCode,
    ) -> Result<Zeroizing<Vec<u8>>, ErrorCode> {
        let clear = if field.split_pair {
            let mut v = Zeroizing::new(Vec::with_capacity(16));
            for half in field.cryptogram.chunks_exact(8) {
                v.extend_from_slice(&self.lmk.decrypt(t, Scheme::Single, half)?);
            }
            v
        } else {
            self.lmk.decrypt(t, field.scheme, &field.cryptogram)?
        };
        if variant::odd_parity(&clear) {
            Ok(clear)
        } else {
            Err(parity)
        }
    }

    /// `clear` under the LMK for `t` in `scheme`, tagged.
    fn seal(&self, t: KeyType, scheme: Scheme, clear: &[u8]) -> Result<String, ErrorCode> {
        let c = self.lmk.encrypt(t, scheme, clear)?;
        Ok(tagged(scheme, &c))
    }

    fn random_key(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, ErrorCode> {
        let mut k = Zeroizing::new(vec![0u8; len]);
        self.rng.fill(&mut k).map_err(|_| ErrorCode::InvalidInput)?;
        for x in k.iter_mut() {
            let high = *x & 0xFE;
            *x = high | u8::from(high.count_ones() % 2 == 0);
        }
        Ok(k)
    }

    fn record(&self, event: AuditEvent, t: KeyType, clear: &[u8]) {
        let usage = usage_of(t);
        self.audit.record(event, usage, &check_value(clear)[..3]);
    }
}

/// A key's check value: TDES of zeros, 8 bytes.
pub fn check_value(clear: &[u8]) -> [u8; 8] {
    crate::primitives::kcv::tdes(clear).unwrap_or([0u8; 8])
}

/// A cryptogram with its scheme tag.
pub fn tagged(scheme: Scheme, cryptogram: &[u8]) -> String {
    let mut s = String::with_capacity(1 + cryptogram.len() * 2);
    if let Some(t) = scheme.tag() {
        s.push(t);
    }
    s.push_str(&hex::encode_upper(cryptogram));
    s
}

fn usage_of(t: KeyType) -> Option<KeyUsage> {
    Some(match t {
        KeyType::ZMK => KeyUsage::Zmk,
        KeyType::ZPK => KeyUsage::Zpk,
        KeyType::TPK => KeyUsage::Tpk,
        KeyType::CVK => KeyUsage::Cvk,
        KeyType::TAK => KeyUsage::Tak,
        KeyType::ZAK => KeyUsage::Zak,
        _ => return None,
    })
}
