//! Step 5, the card: amount and currency, the PAN from field 2 or track 2 (or a QR payment
//! code's wallet), Luhn, the BIN route, and for on-us cards the account's status and
//! expiry.
//!
//! ```text
//!  59 = "QR" + code ─▶ wallet by code prefix ──────────────┐
//!  2 or 35 ─▶ PAN ─▶ Luhn ─▶ route (longest BIN prefix) ─▶ Instrument ─▶ on-us: account
//!                                         └─ issuer ─▶ forwarded                status, expiry
//! ```

use std::sync::Arc;

use codec::Message;

use super::decision::{Decision, Decline, Details};
use super::request::Request;
use crate::clock::Timestamp;
use crate::config::AcquirerConfig;
use crate::fees::Channel;
use crate::hsm::MeteredHsm;
use crate::issuer::Issuer;
use crate::journal::CardRef;
use crate::model::{AccountId, CardType, ResponseCode, TxnKind};
use crate::state::{AccountView, Accounts};

/// A card number read from a request, kept on the stack (up to 19 digits).
#[derive(Clone, Copy)]
pub struct Pan {
    digits: [u8; 19],
    len: u8,
}

impl Pan {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }

    /// Masked for logs and the journal: first 6 and last 4.
    pub fn masked(&self) -> String {
        codec::mask::pan(self.as_str())
    }

    fn from_chars(chars: impl Iterator<Item = u8>) -> Option<Self> {
        let mut digits = [0u8; 19];
        let mut len = 0usize;
        for c in chars {
            if !c.is_ascii_digit() || len == 19 {
                return None;
            }
            digits[len] = c;
            len += 1;
        }
        (len >= 12).then_some(Self {
            digits,
            len: len as u8,
        })
    }
}

/// `Debug` masks.
impl std::fmt::Debug for Pan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// The PAN from field 2, else from track 2 (before the separator); `None` if absent or not
/// 12–19 digits.
pub fn pan_of(msg: &Message<'_>) -> Option<Pan> {
    if let Some(d) = msg.digits(2) {
        return Pan::from_chars(d.chars());
    }
    let track = msg.digits(35)?;
    Pan::from_chars(track.chars().take_while(|c| *c != b'D' && *c != b'='))
}

/// The expiry YYMM from field 14, else from track 2 (the four digits after the separator).
pub fn expiry_of(msg: &Message<'_>) -> Option<u32> {
    if let Some(d) = msg.digits(14) {
        return d.to_u64().map(|v| v as u32);
    }
    let track = msg.digits(35)?;
    let sep = track.chars().position(|c| c == b'D' || c == b'=')?;
    track.slice(sep + 1, 4)?.to_u64().map(|v| v as u32)
}

pub use crate::model::luhn_ok;

/// Where a BIN goes: its card type, and the remote issuer or on-us (`None`).
#[derive(Clone, Debug)]
pub struct Route {
    /// Debit or credit (fees, and the on-us authoriser).
    pub card_type: CardType,
    /// The remote issuer, or `None` for on-us.
    pub issuer: Option<Arc<Issuer>>,
}

/// BIN routes, longest prefix first.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    by_length: Vec<(String, Route)>,
}

impl Routes {
    /// Routes from (prefix, route) pairs.
    pub fn new(mut routes: Vec<(String, Route)>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Self { by_length: routes }
    }

    /// The route of the longest matching prefix.
    pub fn route(&self, pan: &str) -> Option<&Route> {
        self.by_length
            .iter()
            .find(|(p, _)| pan.starts_with(p.as_str()))
            .map(|(_, r)| r)
    }
}

/// A QR wallet: payment codes with its prefix draw on it.
#[derive(Clone, Debug)]
pub struct Wallet {
    /// Wallet account number (its PIN data and balance are in the accounts).
    pub id: String,
    /// Payment code prefix.
    pub code_prefix: String,
}

/// The card or wallet a request draws on.
#[derive(Clone, Debug)]
pub struct Instrument {
    /// How the journal knows it: masked, its account key, its fee channel.
    pub card: CardRef,
    /// The number the PIN block is formed with (PAN, or the QR payment code).
    pub block_pan: String,
    /// The number the PIN data belongs to (PAN, or the wallet number).
    pub pvv_account: String,
    /// Whether it is a QR payment code.
    pub qr: bool,
    /// The remote issuer the card belongs to, or `None` for on-us.
    pub issuer: Option<Arc<Issuer>>,
}

impl Instrument {
    /// The account's key.
    pub fn account(&self) -> AccountId {
        self.card.account
    }

    /// What the journal row says of it.
    pub fn details(&self) -> Details {
        Details {
            card: Some(self.card.clone()),
            ..Details::default()
        }
    }

    /// A decline of a request on this card: journalled with the card.
    pub fn decline<'s>(&self, d: impl Into<Decline>) -> Decision<'s> {
        Decision::declined(d, self.details())
    }
}

/// The amount and currency: a money-moving request needs an amount within the acquirer's
/// maximum, in its currency.
pub fn check_amount(
    req: &Request<'_>,
    kind: TxnKind,
    acquirer: &AcquirerConfig,
) -> Result<(), Decline> {
    if req.msg.text(49).is_some_and(|c| c != acquirer.currency) {
        return Err(ResponseCode::INVALID_AMOUNT.into());
    }
    if kind.moves_money() && (req.amount_fen == 0 || req.amount_fen > acquirer.max_amount_fen) {
        return Err(ResponseCode::INVALID_AMOUNT.into());
    }
    Ok(())
}

/// The card (field 2 or track 2) or, for QR payment codes (field 59 `QR` + digits), the
/// wallet the request draws on.
pub fn instrument<'s>(
    req: &Request<'_>,
    kind: TxnKind,
    routes: &Routes,
    wallets: &[Wallet],
    hsm: &MeteredHsm,
) -> Result<Instrument, Decision<'s>> {
    if let Some(code) = req.msg.text(59).and_then(|t| t.strip_prefix("QR")) {
        if !(16..=24).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResponseCode::INVALID_CARD.into());
        }
        let wallet = wallets
            .iter()
            .find(|w| code.starts_with(w.code_prefix.as_str()))
            .ok_or(Decline::from(ResponseCode::NO_ISSUER))?;
        return Ok(Instrument {
            card: CardRef {
                masked_pan: codec::mask::pan(code),
                account: AccountId(hsm.digest("pan", wallet.id.as_bytes())),
                channel: Channel::Qr,
            },
            block_pan: code.to_owned(),
            pvv_account: wallet.id.clone(),
            qr: true,
            issuer: None,
        });
    }
    if kind == TxnKind::QrSale {
        return Err(ResponseCode::FORMAT_ERROR.into());
    }
    let pan = pan_of(req.msg).ok_or(Decline::from(ResponseCode::INVALID_CARD))?;
    // Its text once: each `as_str` validates the digits again.
    let pan = pan.as_str();
    let route = routes.route(pan);
    let inst = Instrument {
        card: CardRef {
            masked_pan: codec::mask::pan(pan),
            account: AccountId(hsm.digest("pan", pan.as_bytes())),
            channel: Channel::of_card(route.map_or(CardType::Debit, |r| r.card_type)),
        },
        block_pan: pan.to_owned(),
        pvv_account: pan.to_owned(),
        qr: false,
        issuer: route.and_then(|r| r.issuer.clone()),
    };
    if !luhn_ok(pan) {
        return Err(inst.decline(ResponseCode::INVALID_CARD));
    }
    if route.is_none() {
        return Err(inst.decline(ResponseCode::NO_ISSUER));
    }
    Ok(inst)
}

/// An on-us account: it exists, it is usable, it has not expired (and a card's expiry is
/// the one sent). The card's fee channel is the account's type.
pub fn account<'s>(
    accounts: &Accounts,
    inst: &mut Instrument,
    req: &Request<'_>,
    now: Timestamp,
) -> Result<AccountView, Decision<'s>> {
    let view = accounts
        .view(&inst.account())
        .ok_or_else(|| inst.decline(ResponseCode::INVALID_CARD))?;
    if !inst.qr {
        inst.card.channel = Channel::of_card(view.account.card_type);
    }
    if let Some(code) = view.account.status.decline() {
        return Err(inst.decline(code));
    }
    if view.account.expiry < now.cst_yymm()
        || (!inst.qr && expiry_of(req.msg).is_some_and(|e| e != view.account.expiry))
    {
        return Err(inst.decline(ResponseCode::EXPIRED_CARD));
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_ok("6222021000000000017"));
        assert!(luhn_ok("6250941000000009"));
        assert!(!luhn_ok("6222021000000000018"));
    }

    #[test]
    fn longest_prefix_wins() {
        let on_us = |card_type| Route {
            card_type,
            issuer: None,
        };
        let r = Routes::new(vec![
            ("62".into(), on_us(CardType::Credit)),
            ("622202".into(), on_us(CardType::Debit)),
        ]);
        assert_eq!(
            r.route("6222021000000000017").map(|r| r.card_type),
            Some(CardType::Debit)
        );
        assert_eq!(
            r.route("6250941000000009").map(|r| r.card_type),
            Some(CardType::Credit)
        );
        assert!(r.route("4111111111111111").is_none());
    }
}
