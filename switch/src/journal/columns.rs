//! A journal record as a row of columns, and back: the one mapping the SQL backends share
//! (SQLite and PostgreSQL hold the same columns, text for times and codes, integers for
//! amounts and flags, hex for keys and digests).
//!
//! ```text
//!  TxnRecord ─▶ txn_columns ─▶ [Lent; 35] ─▶ SQLite's parameters ─▶ INSERT
//!                   └─▶ txn_values ─▶ [Value; 35] ─▶ PostgreSQL's parameters ─▶ INSERT
//!  SELECT ─▶ backend's row as Columns ─▶ txn_from ─▶ TxnRecord   (a row that cannot be read
//!                                                                  is skipped, with a warning)
//! ```

use codec::Mti;

use super::{AccountRecord, CardRef, PinCheck, SafRecord, SessionRecord, TxnRecord, UpstreamRef};
use crate::clock::Timestamp;
use crate::fees::{AppliedFee, Channel, FeeCategory};
use crate::hsm::KeyRef;
use crate::model::{
    AccountId, AuthCode, BatchNo, CardStatus, CardType, ResponseCode, Rrn, SafKind, SafState, Stan,
    Tid, TxnKind,
};

/// One column's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (amounts, counts, flags 0/1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Self::Int(i64::from(n))
    }
}

impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Self::Int(i64::from(n))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Int(i64::from(b))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One column's value as a record lends it: its text borrowed where the record holds
/// it, so that SQLite, which copies what it is given, is given it without a copy of
/// the switch's own first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lent<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text the record holds.
    Text(&'a str),
    /// Text made for the row (times, dates, hex).
    Made(String),
}

impl<'a> From<&'a str> for Lent<'a> {
    fn from(s: &'a str) -> Self {
        Self::Text(s)
    }
}

impl From<String> for Lent<'_> {
    fn from(s: String) -> Self {
        Self::Made(s)
    }
}

macro_rules! lent_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for Lent<'_> {
            fn from(n: $t) -> Self {
                Self::Int(i64::from(n))
            }
        }
    )*};
}

lent_integer!(i64, u32, u8, bool);

impl<'a, T: Into<Lent<'a>>> From<Option<T>> for Lent<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl From<Lent<'_>> for Value {
    fn from(v: Lent<'_>) -> Self {
        match v {
            Lent::Null => Self::Null,
            Lent::Int(n) => Self::Int(n),
            Lent::Text(s) => Self::Text(s.to_owned()),
            Lent::Made(s) => Self::Text(s),
        }
    }
}

/// Why a row could not be read.
#[derive(Debug)]
pub enum ColumnError {
    /// A column holds what the switch did not write (the row is skipped).
    Bad(&'static str),
    /// The storage failed.
    Storage(String),
}

/// A row as the backend read it.
pub trait Columns {
    /// Column `i`.
    fn value(&self, i: usize) -> Result<Value, ColumnError>;

    /// Column `i`, text.
    fn text(&self, i: usize, what: &'static str) -> Result<String, ColumnError> {
        match self.value(i)? {
            Value::Text(s) => Ok(s),
            _ => Err(ColumnError::Bad(what)),
        }
    }

    /// Column `i`, text or NULL.
    fn opt_text(&self, i: usize, what: &'static str) -> Result<Option<String>, ColumnError> {
        match self.value(i)? {
            Value::Text(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            _ => Err(ColumnError::Bad(what)),
        }
    }

    /// Column `i`, an integer.
    fn int(&self, i: usize, what: &'static str) -> Result<i64, ColumnError> {
        match self.value(i)? {
            Value::Int(n) => Ok(n),
            _ => Err(ColumnError::Bad(what)),
        }
    }

    /// Column `i`, an integer or NULL.
    fn opt_int(&self, i: usize, what: &'static str) -> Result<Option<i64>, ColumnError> {
        match self.value(i)? {
            Value::Int(n) => Ok(Some(n)),
            Value::Null => Ok(None),
            _ => Err(ColumnError::Bad(what)),
        }
    }

    /// Column `i`, an integer that fits `T`.
    fn num<T: TryFrom<i64>>(&self, i: usize, what: &'static str) -> Result<T, ColumnError> {
        T::try_from(self.int(i, what)?).map_err(|_| ColumnError::Bad(what))
    }
}

/// The transaction columns, in [`txn_columns`] and [`txn_from`] order.
pub const TXN_COLUMNS: &str =
    "rrn, time_utc, kind, mti, tid, mid, batch, stan, operator, masked_pan, pan_hash,
    card_type, amount_fen, fee_fen, currency, response_code, auth_code, request_digest, local_date,
    original_rrn, voided, reversed, refunded_fen, issuer, upstream, stand_in, reply_48, balance_fen,
    fee_category, fee_channel, fee_rate_ppm, fee_cap_fen, completed, expired, tip_fen";

/// How many [`TXN_COLUMNS`] there are.
pub const TXN_COLUMN_COUNT: usize = 35;

/// A transaction's columns, lent by the record (SQLite binds these).
pub fn txn_columns(t: &TxnRecord) -> [Lent<'_>; TXN_COLUMN_COUNT] {
    [
        t.rrn.as_str().into(),
        t.time.iso_utc().into(),
        TxnKind::label(t.kind).into(),
        t.mti.as_str().into(),
        t.tid.as_str().into(),
        t.mid.as_str().into(),
        t.batch.0.into(),
        t.stan.0.into(),
        t.operator.as_deref().into(),
        t.card.as_ref().map(|c| c.masked_pan.as_str()).into(),
        t.card.as_ref().map(|c| c.account.to_hex()).into(),
        t.card.as_ref().map(|c| c.channel.as_str()).into(),
        t.amount_fen.into(),
        t.fee_fen.into(),
        t.currency.as_deref().into(),
        t.response_code.as_str().into(),
        t.auth_code.as_ref().map(AuthCode::as_str).into(),
        crate::model::lower_hex(&t.request_digest).into(),
        t.time.cst_date().into(),
        t.original_rrn.as_ref().map(Rrn::as_str).into(),
        t.voided.into(),
        t.reversed.into(),
        t.refunded_fen.into(),
        t.upstream.as_ref().map(|u| u.issuer.as_str()).into(),
        t.upstream.as_ref().map(UpstreamRef::to_column).into(),
        t.stand_in.into(),
        t.reply_48.as_deref().into(),
        t.balance_fen.into(),
        t.fee_rule.as_ref().map(|f| f.category.as_str()).into(),
        t.fee_rule.as_ref().map(|f| f.channel.as_str()).into(),
        t.fee_rule
            .as_ref()
            .map(|f| i64::try_from(f.rate_ppm).unwrap_or(i64::MAX))
            .into(),
        t.fee_rule
            .as_ref()
            .and_then(|f| f.cap_fen)
            .map(|c| i64::try_from(c).unwrap_or(i64::MAX))
            .into(),
        t.completed.into(),
        t.expired.into(),
        t.tip_fen.into(),
    ]
}

/// A transaction's columns, owned (PostgreSQL's parameters).
pub fn txn_values(t: &TxnRecord) -> Vec<Value> {
    txn_columns(t).into_iter().map(Value::from).collect()
}

/// The rule a fee was charged by, from its columns (none for rows journalled before fee
/// categories, or that carry no fee).
fn fee_rule_from(r: &impl Columns) -> Result<Option<AppliedFee>, ColumnError> {
    let bad = ColumnError::Bad;
    let (Some(category), Some(channel), Some(rate)) = (
        r.opt_text(28, "fee_category")?,
        r.opt_text(29, "fee_channel")?,
        r.opt_int(30, "fee_rate_ppm")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(AppliedFee {
        category: FeeCategory::parse(&category).map_err(|_| bad("fee_category"))?,
        channel: Channel::parse(&channel).ok_or(bad("fee_channel"))?,
        rate_ppm: u64::try_from(rate).map_err(|_| bad("fee_rate_ppm"))?,
        cap_fen: r
            .opt_int(31, "fee_cap_fen")?
            .map(|c| u64::try_from(c).map_err(|_| bad("fee_cap_fen")))
            .transpose()?,
    }))
}

/// A transaction from its columns.
pub fn txn_from(r: &impl Columns) -> Result<TxnRecord, ColumnError> {
    let bad = ColumnError::Bad;
    let rrn = Rrn::parse(&r.text(0, "rrn")?).ok_or(bad("rrn"))?;
    let time = Timestamp::parse_iso(&r.text(1, "time_utc")?).ok_or(bad("time_utc"))?;
    let mti = Mti::parse(&r.text(3, "mti")?).ok_or(bad("mti"))?;
    let tid = Tid::parse(&r.text(4, "tid")?).ok_or(bad("tid"))?;
    let masked = r.opt_text(9, "masked_pan")?;
    let hash = r.opt_text(10, "pan_hash")?;
    let card_type = r.opt_text(11, "card_type")?;
    let card = match (masked, hash.as_deref().and_then(AccountId::from_hex)) {
        (Some(masked_pan), Some(account)) => Some(CardRef {
            masked_pan,
            account,
            channel: card_type
                .as_deref()
                .and_then(Channel::parse)
                .unwrap_or(Channel::Debit),
        }),
        _ => None,
    };
    let mut request_digest = [0u8; 32];
    hex::decode_to_slice(r.text(17, "request_digest")?, &mut request_digest)
        .map_err(|_| bad("request_digest"))?;
    let issuer = r.opt_text(23, "issuer")?;
    let upstream = r.opt_text(24, "upstream")?;
    Ok(TxnRecord {
        rrn,
        time,
        kind: TxnKind::parse(&r.text(2, "kind")?),
        mti,
        tid,
        mid: r.text(5, "mid")?,
        batch: BatchNo(r.num(6, "batch")?),
        stan: Stan(r.num(7, "stan")?),
        operator: r.opt_text(8, "operator")?,
        card,
        amount_fen: r.int(12, "amount_fen")?,
        fee_fen: r.int(13, "fee_fen")?,
        fee_rule: fee_rule_from(r)?,
        currency: r.opt_text(14, "currency")?,
        // Codes the switch wrote are two characters; anything else reads as a malfunction,
        // never as an approval.
        response_code: ResponseCode::parse(&r.text(15, "response_code")?)
            .unwrap_or(ResponseCode::SYSTEM_ERROR),
        auth_code: r
            .opt_text(16, "auth_code")?
            .as_deref()
            .and_then(AuthCode::parse),
        request_digest,
        original_rrn: r
            .opt_text(19, "original_rrn")?
            .as_deref()
            .and_then(Rrn::parse),
        voided: r.int(20, "voided")? != 0,
        reversed: r.int(21, "reversed")? != 0,
        refunded_fen: r.int(22, "refunded_fen")?,
        completed: r.int(32, "completed")? != 0,
        expired: r.int(33, "expired")? != 0,
        tip_fen: r.int(34, "tip_fen")?,
        upstream: issuer
            .zip(upstream)
            .and_then(|(i, u)| UpstreamRef::from_columns(&i, &u)),
        stand_in: r.int(25, "stand_in")? != 0,
        reply_48: r.opt_text(26, "reply_48")?,
        balance_fen: r.opt_int(27, "balance_fen")?,
    })
}

/// The account columns, in [`account_values`] and [`account_from`] order.
pub const ACCOUNT_COLUMNS: &str = "pan_hash, masked_pan, card_type, status, expiry, pvv, pvki,
    balance_fen, credit_limit_fen, pin_tries, pin_method, preauth_fen";

/// An account's columns.
pub fn account_values(a: &AccountRecord) -> Vec<Value> {
    vec![
        a.account.to_hex().into(),
        a.masked_pan.clone().into(),
        a.card_type.as_str().into(),
        a.status.as_str().into(),
        format!("{:04}", a.expiry).into(),
        a.pin.value().into(),
        a.pin.pvki().into(),
        a.balance_fen.into(),
        a.credit_limit_fen.into(),
        a.pin_tries.into(),
        a.pin.method().as_str().into(),
        a.preauth_fen.into(),
    ]
}

/// An account from its columns.
pub fn account_from(r: &impl Columns) -> Result<AccountRecord, ColumnError> {
    Ok(AccountRecord {
        account: AccountId::from_hex(&r.text(0, "pan_hash")?)
            .ok_or(ColumnError::Bad("pan_hash"))?,
        masked_pan: r.text(1, "masked_pan")?,
        card_type: CardType::parse(&r.text(2, "card_type")?),
        // A status the switch does not know is treated as blocked.
        status: CardStatus::parse(&r.text(3, "status")?).unwrap_or(CardStatus::Blocked),
        expiry: r.text(4, "expiry")?.parse().unwrap_or(0),
        pin: PinCheck::from_columns(
            &r.text(10, "pin_method")?,
            &r.text(5, "pvv")?,
            r.num(6, "pvki")?,
        ),
        balance_fen: r.int(7, "balance_fen")?,
        credit_limit_fen: r.int(8, "credit_limit_fen")?,
        pin_tries: r.num(9, "pin_tries")?,
        preauth_fen: r.int(11, "preauth_fen")?,
    })
}

/// The session columns, in [`session_values`] and [`session_from`] order.
pub const SESSION_COLUMNS: &str = "tid, mid, tpk, tak, batch, operator, signed_on_utc, session_id";

/// A session's columns.
pub fn session_values(s: &SessionRecord) -> Vec<Value> {
    vec![
        s.tid.as_str().into(),
        s.mid.clone().into(),
        s.tpk.to_text().into(),
        s.tak.to_text().into(),
        s.batch.0.into(),
        s.operator.clone().into(),
        s.signed_on.iso_utc().into(),
        s.session_id.into(),
    ]
}

/// A session from its columns.
pub fn session_from(r: &impl Columns) -> Result<SessionRecord, ColumnError> {
    Ok(SessionRecord {
        tid: Tid::parse(&r.text(0, "tid")?).ok_or(ColumnError::Bad("tid"))?,
        mid: r.text(1, "mid")?,
        tpk: KeyRef::from_text(&r.text(2, "tpk")?).ok_or(ColumnError::Bad("tpk"))?,
        tak: KeyRef::from_text(&r.text(3, "tak")?).ok_or(ColumnError::Bad("tak"))?,
        batch: BatchNo(r.num(4, "batch")?),
        operator: r.opt_text(5, "operator")?,
        signed_on: Timestamp::parse_iso(&r.text(6, "signed_on_utc")?).unwrap_or(Timestamp(0)),
        session_id: r.int(7, "session_id")?,
    })
}

/// The queue's columns, in [`saf_values`] and [`saf_from`] order.
pub const SAF_COLUMNS: &str =
    "id, issuer, kind, mti, original_rrn, created_utc, state, tries, updated_utc, message, owner";

/// A queued entry's columns.
pub fn saf_values(q: &SafRecord) -> Vec<Value> {
    vec![
        q.id.clone().into(),
        q.issuer.clone().into(),
        q.kind.as_str().into(),
        q.mti.as_str().into(),
        q.original_rrn.as_ref().map(Rrn::as_str).into(),
        q.created.iso_utc().into(),
        q.state.as_str().into(),
        q.tries.into(),
        q.updated.iso_utc().into(),
        Value::Blob(q.sealed.clone()),
        q.owner.clone().into(),
    ]
}

/// A queued entry from its columns.
pub fn saf_from(r: &impl Columns) -> Result<SafRecord, ColumnError> {
    Ok(SafRecord {
        id: r.text(0, "id")?,
        issuer: r.text(1, "issuer")?,
        kind: SafKind::parse(&r.text(2, "kind")?).unwrap_or(SafKind::Reversal),
        mti: Mti::parse(&r.text(3, "mti")?).ok_or(ColumnError::Bad("mti"))?,
        original_rrn: r
            .opt_text(4, "original_rrn")?
            .as_deref()
            .and_then(Rrn::parse),
        created: Timestamp::parse_iso(&r.text(5, "created_utc")?).unwrap_or(Timestamp(0)),
        state: SafState::parse(&r.text(6, "state")?).unwrap_or(SafState::Pending),
        tries: r.num(7, "tries")?,
        updated: Timestamp::parse_iso(&r.text(8, "updated_utc")?).unwrap_or(Timestamp(0)),
        sealed: match r.value(9)? {
            Value::Blob(b) => b,
            _ => return Err(ColumnError::Bad("message")),
        },
        owner: r.opt_text(10, "owner")?,
    })
}
