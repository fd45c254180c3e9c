//! Step 1, classify: what a decoded request is, and its common fields read once.
//!
//! | MTI | 3 | 60 | kind |
//! | --- | --- | --- | --- |
//! | 0800 | | 60.3 = 001/003/004 | sign-on |
//! | 0820 | | | echo |
//! | 0200 | 310000 | | balance |
//! | 0200 | 000000 | 60.1 = 22, 22 = 03x | QR sale |
//! | 0200 | 000000 | 60.1 = 22 | sale |
//! | 0200 | 200000 | 60.1 = 23 | void |
//! | 0220 | | 60.1 = 25 | refund |
//! | 0100 | 03xxxx | 60.1 = 10 | pre-authorisation |
//! | 0100 | 20xxxx | 60.1 = 11 | pre-authorisation void |
//! | 0200 | 00xxxx | 60.1 = 20 | completion |
//! | 0220 | 00xxxx | 60.1 = 24 | completion (offline advice) |
//! | 0200 | 20xxxx | 60.1 = 21 | completion void |
//! | 0220 | | 60.1 = 32 | settlement adjustment |
//! | 0220 | | 60.1 = 34 | tip adjustment |
//! | 0400 | | | reversal |
//! | 0500 | | | settlement |
//! | 0320 | | | batch upload |

use codec::{Dialect, Message, Mti, WireError};

use super::rules::Rules;
use crate::config::TerminalAlgorithm;
use crate::model::{BatchNo, ResponseCode, Stan, Tid, TxnKey, TxnKind};

/// Decodes a terminal's frame in its range's dialect: an SM4 terminal's field 52 is 16
/// bytes, and only 52 differs. Fields up to 49 (the TID in 41 among them) read the same in
/// both, so the frame is read as a TDES terminal's first; again only when it holds a 52 and
/// its TID is an SM4 terminal's, or when the first reading fails and the second names one.
pub fn decode<'f>(rules: &Rules, frame: &'f [u8]) -> Result<Message<'f>, WireError> {
    let sm4 = |m: &Message<'_>| {
        m.text(41)
            .and_then(|tid| rules.terminals.lookup(tid))
            .is_some_and(|r| r.algorithm == TerminalAlgorithm::Sm4)
    };
    match codec::decode(Dialect::cup_pos(), frame) {
        Ok(m) if m.has(52) && sm4(&m) => codec::decode(Dialect::cup_pos_sm4(), frame),
        Ok(m) => Ok(m),
        Err(e) => match codec::decode(Dialect::cup_pos_sm4(), frame) {
            Ok(m) if sm4(&m) => Ok(m),
            _ => Err(e),
        },
    }
}

/// Fields a request of this kind must have (besides 64 when it needs a MAC).
fn mandatory(kind: TxnKind) -> &'static [u8] {
    match kind {
        TxnKind::Sale => &[3, 4, 11, 22, 25, 41, 42, 49, 60],
        TxnKind::QrSale => &[3, 4, 11, 22, 25, 41, 42, 49, 59, 60],
        TxnKind::Balance => &[3, 11, 22, 25, 41, 42, 49, 52, 60],
        TxnKind::Void => &[3, 4, 11, 22, 25, 41, 42, 49, 60, 61],
        TxnKind::Refund => &[3, 4, 11, 25, 37, 41, 42, 49, 60, 61],
        TxnKind::Reversal => &[3, 4, 11, 25, 41, 42, 60],
        TxnKind::Settle | TxnKind::BatchUpload => &[11, 41, 42, 48, 60],
        TxnKind::SignOn | TxnKind::Echo => &[11, 41, 42, 60],
        TxnKind::PreAuth => &[3, 4, 11, 22, 25, 41, 42, 49, 60],
        // The pre-authorisation is named by its auth code (38) and 61.
        TxnKind::PreAuthVoid | TxnKind::Completion => &[3, 4, 11, 22, 25, 38, 41, 42, 49, 60, 61],
        TxnKind::CompletionVoid => &[3, 4, 11, 22, 25, 41, 42, 49, 60, 61],
        TxnKind::Adjustment | TxnKind::Tip => &[3, 4, 11, 25, 41, 42, 49, 60, 61],
    }
}

/// A request's common fields, read once from the message.
#[derive(Debug)]
pub struct Request<'a> {
    /// The message (fields borrow the frame).
    pub msg: &'a Message<'a>,
    /// Its kind; `None` for an MTI/processing code the switch does not serve.
    pub kind: Option<TxnKind>,
    /// Terminal ID (41) as sent.
    pub tid_text: &'a str,
    /// Terminal ID, when it is 8 characters.
    pub tid: Option<Tid>,
    /// Merchant ID (42).
    pub mid: &'a str,
    /// STAN (11).
    pub stan: Stan,
    /// Batch (60.2), 0 when absent.
    pub batch: BatchNo,
    /// Amount (4) in fen, 0 when absent.
    pub amount_fen: u64,
    /// Operator number (63).
    pub operator: Option<&'a str>,
}

fn digits_u64(msg: &Message<'_>, path: &str) -> Option<u64> {
    msg.get(path).ok().flatten()?.digits()?.to_u64()
}

/// Classifies by MTI, processing code (3) and 60.1 / 60.3.
pub fn classify(msg: &Message<'_>) -> Option<TxnKind> {
    let sub = |p: &str| msg.get(p).ok().flatten().and_then(|v| v.digits());
    let is = |p: &str, want: &str| sub(p).is_some_and(|d| d == want);
    let proc = msg.digits(3);
    let proc_is = |want: &str| proc.is_some_and(|d| d == want);
    // The account-type digits (3.3-3.6) of the authorisation family vary by card.
    let proc_starts = |want: &str| {
        proc.is_some_and(|d| {
            want.bytes()
                .enumerate()
                .all(|(i, c)| d.char_at(i) == Some(c))
        })
    };
    match msg.mti().as_u16() {
        800 if is("60.3", "001") || is("60.3", "003") || is("60.3", "004") => Some(TxnKind::SignOn),
        820 => Some(TxnKind::Echo),
        200 if proc_is("310000") => Some(TxnKind::Balance),
        200 if proc_is("000000")
            && is("60.1", "22")
            && msg
                .digits(22)
                .is_some_and(|d| d.char_at(0) == Some(b'0') && d.char_at(1) == Some(b'3')) =>
        {
            Some(TxnKind::QrSale)
        }
        200 if proc_is("000000") && is("60.1", "22") => Some(TxnKind::Sale),
        200 if proc_is("200000") && is("60.1", "23") => Some(TxnKind::Void),
        220 if is("60.1", "25") => Some(TxnKind::Refund),
        100 if proc_starts("03") && is("60.1", "10") => Some(TxnKind::PreAuth),
        100 if proc_starts("20") && is("60.1", "11") => Some(TxnKind::PreAuthVoid),
        200 if proc_starts("00") && is("60.1", "20") => Some(TxnKind::Completion),
        220 if proc_starts("00") && is("60.1", "24") => Some(TxnKind::Completion),
        200 if proc_starts("20") && is("60.1", "21") => Some(TxnKind::CompletionVoid),
        220 if is("60.1", "32") => Some(TxnKind::Adjustment),
        220 if is("60.1", "34") => Some(TxnKind::Tip),
        400 => Some(TxnKind::Reversal),
        500 => Some(TxnKind::Settle),
        320 => Some(TxnKind::BatchUpload),
        _ => None,
    }
}

impl<'a> Request<'a> {
    /// Reads the common fields; a missing mandatory field or an unreadable one is `30`.
    pub fn parse(msg: &'a Message<'a>) -> Result<Self, ResponseCode> {
        let kind = classify(msg);
        if let Some(k) = kind {
            let missing =
                mandatory(k).iter().any(|n| !msg.has(*n)) || (k.needs_mac() && !msg.has(64));
            if missing {
                return Err(ResponseCode::FORMAT_ERROR);
            }
        }
        let tid_text = msg.text(41).ok_or(ResponseCode::FORMAT_ERROR)?;
        let mid = msg.text(42).ok_or(ResponseCode::FORMAT_ERROR)?;
        let stan = msg
            .digits(11)
            .and_then(|d| d.to_u64())
            .ok_or(ResponseCode::FORMAT_ERROR)? as u32;
        Ok(Self {
            msg,
            kind,
            tid_text,
            tid: Tid::parse(tid_text),
            mid,
            stan: Stan(stan),
            batch: BatchNo(digits_u64(msg, "60.2").unwrap_or(0) as u32),
            amount_fen: msg.digits(4).and_then(|d| d.to_u64()).unwrap_or(0),
            operator: msg.text(63),
        })
    }

    /// The request MTI.
    pub fn mti(&self) -> Mti {
        self.msg.mti()
    }

    /// The kind, as labelled and journalled.
    pub fn label(&self) -> &'static str {
        TxnKind::label(self.kind)
    }

    /// The amount in fen as a signed value (journal, balances).
    pub fn amount(&self) -> i64 {
        i64::try_from(self.amount_fen).unwrap_or(i64::MAX)
    }

    /// The duplicate-detection key, for the kinds that have one (not sign-on or echo).
    pub fn key(&self) -> Option<TxnKey> {
        TxnKind::is_tracked(self.kind).then_some(())?;
        Some(TxnKey {
            tid: self.tid?,
            batch: self.batch,
            stan: self.stan,
            mti: self.mti().as_u16(),
        })
    }

    /// A numeric subfield (`61.1`), if present and digits.
    pub fn subfield(&self, path: &str) -> Option<u64> {
        digits_u64(self.msg, path)
    }

    /// A numeric subfield's digits as text (`61.3`, a date MMDD), if present.
    pub fn subfield_text(&self, path: &str) -> Option<String> {
        self.msg
            .get(path)
            .ok()
            .flatten()
            .and_then(|v| v.digits())
            .map(|d| d.to_string())
    }
}
