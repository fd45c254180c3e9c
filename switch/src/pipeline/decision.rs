//! What a request comes to, before anything is changed: the answer for the terminal, the
//! facts for its journal row, and its effects (see [`super::effects`]).
//!
//! ```text
//!  step ─▶ Ok(value)              the next step takes it
//!       └▶ Err(Decision)          stop: answer this, journal this, apply these effects
//! ```
//!
//! Steps return these; none writes into a shared record of the request. A plain decline is
//! a [`Decline`] (a code, and whether to ask for a new sign-on), turned into a decision by
//! `?`.

use super::effects::Effects;
use crate::journal::{CardRef, UpstreamRef};
use crate::model::{AuthCode, BatchNo, ResponseCode, Rrn};

/// A response code, and whether the reply asks the terminal to sign on again (header
/// processing nibble 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decline {
    /// The code.
    pub code: ResponseCode,
    /// Ask for a new sign-on.
    pub sign_on_again: bool,
}

impl From<ResponseCode> for Decline {
    fn from(code: ResponseCode) -> Self {
        Self {
            code,
            sign_on_again: false,
        }
    }
}

impl Decline {
    /// A decline that asks the terminal to sign on again.
    pub fn sign_on_again(code: ResponseCode) -> Self {
        Self {
            code,
            sign_on_again: true,
        }
    }
}

/// A sign-on's keys for the reply.
#[derive(Clone, Debug)]
pub struct SignOnReply {
    /// Field 62: TPK and TAK under the TMK, with check values.
    pub field62: Vec<u8>,
    /// The open batch (60.2).
    pub batch: BatchNo,
}

/// What the terminal is told.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Field 39.
    pub code: ResponseCode,
    /// Header nibble 3: sign on again.
    pub sign_on_again: bool,
    /// Field 38.
    pub auth_code: Option<AuthCode>,
    /// Field 54 (balance inquiries).
    pub balance_fen: Option<i64>,
    /// Field 48 (settlement).
    pub field48: Option<String>,
    /// Fields 60 and 62 (sign-on).
    pub sign_on: Option<SignOnReply>,
}

impl Answer {
    /// Approved, nothing else to say yet.
    pub fn approved() -> Self {
        Self::from(Decline::from(ResponseCode::APPROVED))
    }
}

impl From<Decline> for Answer {
    fn from(d: Decline) -> Self {
        Self {
            code: d.code,
            sign_on_again: d.sign_on_again,
            auth_code: None,
            balance_fen: None,
            field48: None,
            sign_on: None,
        }
    }
}

/// What the journal row says beyond the request itself.
#[derive(Clone, Debug, Default)]
pub struct Details {
    /// The card or wallet.
    pub card: Option<CardRef>,
    /// The fee.
    pub fee_fen: i64,
    /// The rule the fee was charged by (a refund: its sale's).
    pub fee_rule: Option<crate::fees::AppliedFee>,
    /// The transaction it voids, refunds or reverses.
    pub original_rrn: Option<Rrn>,
    /// How the issuer knows a forwarded request.
    pub upstream: Option<Box<UpstreamRef>>,
    /// Approved in stand-in.
    pub stand_in: bool,
    /// The RRN, when it was needed before the journal (forwarded requests carry it).
    pub rrn: Option<Rrn>,
}

/// A request's outcome, not yet journalled.
pub struct Decision<'s> {
    /// For the terminal.
    pub answer: Answer,
    /// For the journal row.
    pub details: Details,
    /// What it changes, once journalled.
    pub effects: Effects<'s>,
}

impl From<Decline> for Decision<'_> {
    fn from(d: Decline) -> Self {
        Self {
            answer: d.into(),
            details: Details::default(),
            effects: Effects::default(),
        }
    }
}

impl From<ResponseCode> for Decision<'_> {
    fn from(code: ResponseCode) -> Self {
        Decline::from(code).into()
    }
}

impl<'s> Decision<'s> {
    /// An approval with these facts and effects.
    pub fn approved(details: Details, effects: Effects<'s>) -> Self {
        Self {
            answer: Answer::approved(),
            details,
            effects,
        }
    }

    /// A decline that still records `details` (the card it was for, say).
    pub fn declined(d: impl Into<Decline>, details: Details) -> Self {
        Self {
            answer: d.into().into(),
            details,
            effects: Effects::default(),
        }
    }
}
