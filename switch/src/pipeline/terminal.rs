//! Steps 2–3, the terminal: registered, its merchant, its session, its MAC; and the
//! sign-on that starts a session. A request that fails authentication is answered (`97`,
//! `03`, `A0`, `30`), counted and logged at a bounded rate, and leaves nothing behind: no
//! duplicate claim, no journal row, no batch entry.
//!
//! ```text
//! request ─▶ TID registered? ──no──▶ 97        (unknown_terminal)
//!          ─▶ MID of that TID? ──no──▶ 03       (wrong_merchant)
//!          ─▶ sign-on / echo: no MAC by the protocol ─▶ Authenticated { session: None }
//!          ─▶ signed on?       ──no──▶ A0 + 3   (not_signed_on)
//!          ─▶ field 64?        ──no──▶ 30       (missing_mac)
//!          ─▶ MAC under TAK?   ──no──▶ A0 + 3   (bad_mac)
//!          ─▶ Authenticated { range, session }
//! ```
//!
//! Sign-on (62 = TPK under TMK | check value | TAK under TMK | 8 zero bytes | check value):
//! a fresh TPK and TAK from the HSM, the batch kept from the last session.

use std::sync::Arc;

use crate::hsm::KeyRef;

use super::decision::{Answer, Decision, Decline, Details, SignOnReply};
use super::effects::Effects;
use super::request::Request;
use super::rules::Rules;
use crate::config::{TerminalAlgorithm, TerminalMac};
use crate::hsm::MeteredHsm;
use crate::model::{BatchNo, ResponseCode, TxnKind};
use crate::security_log::Event;
use crate::state::{Session, Sessions};

/// A range of terminals of one merchant, with its TMK sealed under the LMK.
#[derive(Clone, Debug)]
pub struct TerminalRange {
    /// First TID, as a number.
    pub from: u32,
    /// Last TID, as a number.
    pub to: u32,
    /// Merchant ID.
    pub mid: String,
    /// Merchant category code.
    pub mcc: String,
    /// The merchant's fee category.
    pub fee_category: crate::fees::FeeCategory,
    /// Merchant name.
    pub merchant_name: String,
    /// MAC algorithm.
    pub mac: TerminalMac,
    /// Cipher (TDES or SM4).
    pub algorithm: TerminalAlgorithm,
    /// TMK sealed under the LMK.
    pub tmk: KeyRef,
}

impl TerminalRange {
    /// The HSM's MAC algorithm for this range's terminals.
    pub fn mac_algorithm(&self) -> hsm_sim::MacAlgorithm {
        match self.algorithm {
            TerminalAlgorithm::Sm4 => hsm_sim::MacAlgorithm::UnionpaySm4,
            TerminalAlgorithm::Tdes => self.mac.algorithm(),
        }
    }
}

/// Terminals known to the switch.
#[derive(Clone, Debug, Default)]
pub struct TerminalDirectory {
    ranges: Vec<TerminalRange>,
}

impl TerminalDirectory {
    /// A directory of `ranges`.
    pub fn new(ranges: Vec<TerminalRange>) -> Self {
        Self { ranges }
    }

    /// The range holding `tid` (8 digits), if any.
    pub fn lookup(&self, tid: &str) -> Option<&TerminalRange> {
        if tid.len() != 8 || !tid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = tid.parse().ok()?;
        self.ranges.iter().find(|r| (r.from..=r.to).contains(&n))
    }
}

/// What authentication established.
pub struct Authenticated<'s> {
    /// The rules the request is decided by (the snapshot current when it arrived).
    pub rules: &'s Rules,
    /// The terminal's range (merchant, MAC algorithm, TMK).
    pub range: &'s TerminalRange,
    /// The session whose TAK verified the MAC; `None` for sign-on and echo, which carry no
    /// MAC.
    pub session: Option<Arc<Session>>,
}

impl Authenticated<'_> {
    /// The session, for kinds that need one.
    pub fn session(&self) -> Result<&Arc<Session>, Decline> {
        self.session
            .as_ref()
            .ok_or(Decline::sign_on_again(ResponseCode::MAC_FAILURE))
    }
}

/// Why a request was not authenticated: the answer, and the event counted and logged.
pub struct Refused {
    /// The answer.
    pub decline: Decline,
    /// What is counted and logged.
    pub event: Event,
}

fn refused(decline: impl Into<Decline>, event: Event) -> Refused {
    Refused {
        decline: decline.into(),
        event,
    }
}

/// Authenticates `req`. Kinds the switch does not serve are held to a MAC like any request
/// that moves money.
pub async fn authenticate<'s>(
    rules: &'s Rules,
    sessions: &Sessions,
    hsm: &MeteredHsm,
    req: &Request<'_>,
) -> Result<Authenticated<'s>, Refused> {
    let range = rules
        .terminals
        .lookup(req.tid_text)
        .ok_or_else(|| refused(ResponseCode::NO_TERMINAL, Event::UnknownTerminal))?;
    if range.mid != req.mid {
        return Err(refused(
            ResponseCode::INVALID_MERCHANT,
            Event::WrongMerchant,
        ));
    }
    if req.kind.is_some_and(|k| !k.needs_mac()) {
        return Ok(Authenticated {
            rules,
            range,
            session: None,
        });
    }
    let session = req
        .tid
        .and_then(|tid| sessions.get(&tid).map(|s| Arc::clone(s.value())))
        .ok_or_else(|| {
            refused(
                Decline::sign_on_again(ResponseCode::MAC_FAILURE),
                Event::NotSignedOn,
            )
        })?;
    let mac = req
        .msg
        .bytes(64)
        .ok_or_else(|| refused(ResponseCode::FORMAT_ERROR, Event::MissingMac))?;
    let ok = hsm
        .verify_mac(&session.tak, range.mac_algorithm(), req.msg.mac_data(), mac)
        .await
        .map_err(|e| Refused {
            decline: super::hsm_failure(e),
            event: Event::BadMac,
        })?;
    if !ok {
        return Err(refused(
            Decline::sign_on_again(ResponseCode::MAC_FAILURE),
            Event::BadMac,
        ));
    }
    Ok(Authenticated {
        rules,
        range,
        session: Some(session),
    })
}

/// Whether a request of `kind` that passed [`authenticate`] proved who sent it: a MAC
/// verified, or a sign-on answered with keys under the terminal's TMK.
pub fn proves_terminal(
    kind: Option<TxnKind>,
    auth: &Authenticated<'_>,
    code: ResponseCode,
) -> bool {
    auth.session.is_some() || (kind == Some(TxnKind::SignOn) && code.is_approved())
}

/// The request's batch must be the terminal's open one (a batch upload may also name the
/// batch just settled; a reversal names its original's batch).
pub fn check_batch(req: &Request<'_>, kind: TxnKind, session: &Session) -> Result<(), Decline> {
    let ok = match kind {
        TxnKind::Reversal => true,
        TxnKind::BatchUpload => req.batch == session.batch || req.batch.next() == session.batch,
        _ => req.batch == session.batch,
    };
    if ok {
        Ok(())
    } else {
        Err(Decline::sign_on_again(ResponseCode::BATCH_MISMATCH))
    }
}

/// Sign-on: new working keys under the terminal's TMK; the batch stays across sign-ons (a
/// new terminal starts at batch 1). The session replaces the old one once journalled.
pub async fn sign_on<'s>(
    hsm: &MeteredHsm,
    sessions: &Sessions,
    req: &Request<'_>,
    range: &TerminalRange,
) -> Result<Decision<'s>, Decline> {
    let keys = hsm
        .terminal_keys(&range.tmk)
        .await
        .map_err(super::hsm_failure)?;
    let tid = req.tid.ok_or(Decline::from(ResponseCode::NO_TERMINAL))?;
    let batch = sessions.get(&tid).map_or(BatchNo::FIRST, |s| s.batch);
    let mut field62 = Vec::with_capacity(40);
    field62.extend_from_slice(&keys.tpk_under_tmk);
    field62.extend_from_slice(&keys.tpk_check);
    field62.extend_from_slice(&keys.tak_under_tmk);
    // A single-length TAK is padded to the TPK's 16 bytes (an SM4 TAK fills them).
    field62.extend_from_slice(&[0u8; 8][..16usize.saturating_sub(keys.tak_under_tmk.len())]);
    field62.extend_from_slice(&keys.tak_check);
    let mut id = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| Decline::from(ResponseCode::SYSTEM_ERROR))?;
    let session = Session {
        session_id: i64::from_be_bytes(id),
        mid: range.mid.clone(),
        tpk: keys.tpk,
        tak: keys.tak,
        batch,
    };
    Ok(Decision {
        answer: Answer {
            sign_on: Some(SignOnReply { field62, batch }),
            ..Answer::approved()
        },
        details: Details::default(),
        effects: Effects {
            session: Some(Box::new((tid, session))),
            ..Effects::default()
        },
    })
}
