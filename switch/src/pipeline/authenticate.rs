//! Step 2-3, authentication: the terminal, its session and the MAC, before anything is
//! claimed, journalled or changed. A request that fails here is answered (`97`, `03`, `A0`,
//! `30`), counted and logged at a bounded rate, and leaves nothing behind: no duplicate
//! claim, no journal row, no batch entry.
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

use std::sync::Arc;

use super::request::{Kind, Request};
use super::{Decline, Switch, hsm_err, mac_alg, rc, sign_on_again};
use crate::security_log::Event;
use crate::state::{Session, TerminalRange};

/// What authentication established.
pub(super) struct Authenticated<'s> {
    /// The terminal's range (merchant, MAC algorithm, TMK).
    pub(super) range: &'s TerminalRange,
    /// The session whose TAK verified the MAC; `None` for sign-on and echo, which carry no
    /// MAC.
    pub(super) session: Option<Arc<Session>>,
}

/// Why a request was not authenticated: the answer, and the event counted and logged.
pub(super) struct Refused {
    pub(super) decline: Decline,
    pub(super) event: Event,
}

fn refused(decline: impl Into<Decline>, event: Event) -> Refused {
    Refused {
        decline: decline.into(),
        event,
    }
}

impl Switch {
    /// Authenticates `req`. Kinds the switch does not serve are held to a MAC like any
    /// request that moves money.
    pub(super) fn authenticate(&self, req: &Request<'_>) -> Result<Authenticated<'_>, Refused> {
        let range = self
            .terminals
            .lookup(req.tid)
            .ok_or_else(|| refused(rc::NO_TERMINAL, Event::UnknownTerminal))?;
        if range.mid != req.mid {
            return Err(refused(rc::INVALID_MERCHANT, Event::WrongMerchant));
        }
        if req.kind.is_some_and(|k| !k.needs_mac()) {
            return Ok(Authenticated {
                range,
                session: None,
            });
        }
        let session = req
            .tid_key()
            .and_then(|tid| self.state.sessions.get(&tid).map(|s| Arc::clone(s.value())))
            .ok_or_else(|| refused(sign_on_again(rc::MAC_FAILURE), Event::NotSignedOn))?;
        let mac = req
            .msg
            .bytes(64)
            .ok_or_else(|| refused(rc::FORMAT_ERROR, Event::MissingMac))?;
        let ok = self
            .timed("mac_verify", || {
                self.hsm
                    .verify_mac(&session.tak, mac_alg(range.mac), req.msg.mac_data(), mac)
            })
            .map_err(|e| Refused {
                decline: hsm_err(e),
                event: Event::BadMac,
            })?;
        if !ok {
            return Err(refused(sign_on_again(rc::MAC_FAILURE), Event::BadMac));
        }
        Ok(Authenticated {
            range,
            session: Some(session),
        })
    }
}

/// Whether a request of `kind` that passed [`Switch::authenticate`] proved who sent it: a
/// MAC verified, or a sign-on answered with keys under the terminal's TMK.
pub(super) fn proves_terminal(kind: Option<Kind>, auth: &Authenticated<'_>, rc: &str) -> bool {
    auth.session.is_some() || (kind == Some(Kind::SignOn) && rc == self::rc::APPROVED)
}
