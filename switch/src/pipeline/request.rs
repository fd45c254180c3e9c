//! Step 1, classify: what a decoded request is, and its common fields read once.

use codec::{Message, Mti};

use crate::pipeline::rc;

/// Transaction kinds (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 0800, 60.3 = 001/003/004: sign-on, working keys in 62.
    SignOn,
    /// 0820, 60.3 = 301: echo test.
    Echo,
    /// 0200, 3 = 000000, 60.1 = 22.
    Sale,
    /// 0200, 3 = 000000, 60.1 = 22, 22 = 03x: QR payment-code sale, code in 59.
    QrSale,
    /// 0200, 3 = 310000.
    Balance,
    /// 0200, 3 = 200000, 60.1 = 23.
    Void,
    /// 0220, 60.1 = 25.
    Refund,
    /// 0400.
    Reversal,
    /// 0500.
    Settle,
    /// 0320.
    BatchUpload,
}

impl Kind {
    /// As used in metrics, logs and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignOn => "sign-on",
            Self::Echo => "echo",
            Self::Sale => "sale",
            Self::QrSale => "qr-sale",
            Self::Balance => "balance",
            Self::Void => "void",
            Self::Refund => "refund",
            Self::Reversal => "reversal",
            Self::Settle => "settle",
            Self::BatchUpload => "batch-upload",
        }
    }

    /// Whether requests of this kind carry a MAC in field 64.
    pub fn needs_mac(self) -> bool {
        !matches!(self, Self::SignOn | Self::Echo)
    }

    /// Fields a request of this kind must have (besides 64 when it needs a MAC).
    fn mandatory(self) -> &'static [u8] {
        match self {
            Self::Sale => &[3, 4, 11, 22, 25, 41, 42, 49, 60],
            Self::QrSale => &[3, 4, 11, 22, 25, 41, 42, 49, 59, 60],
            Self::Balance => &[3, 11, 22, 25, 41, 42, 49, 52, 60],
            Self::Void => &[3, 4, 11, 22, 25, 41, 42, 49, 60, 61],
            Self::Refund => &[3, 4, 11, 25, 37, 41, 42, 49, 60, 61],
            Self::Reversal => &[3, 4, 11, 25, 41, 42, 60],
            Self::Settle | Self::BatchUpload => &[11, 41, 42, 48, 60],
            Self::SignOn | Self::Echo => &[11, 41, 42, 60],
        }
    }
}

/// A request's common fields, read once from the message.
#[derive(Debug)]
pub struct Request<'a> {
    /// The message (fields borrow the frame).
    pub msg: &'a Message<'a>,
    /// Its kind; `None` for an MTI/processing code the switch does not serve.
    pub kind: Option<Kind>,
    /// Terminal ID (41).
    pub tid: &'a str,
    /// Merchant ID (42).
    pub mid: &'a str,
    /// STAN (11).
    pub stan: u32,
    /// Batch (60.2), 0 when absent.
    pub batch: u32,
    /// Amount (4) in fen, 0 when absent.
    pub amount_fen: u64,
    /// Operator number (63).
    pub operator: Option<&'a str>,
}

fn digits_u64(msg: &Message<'_>, path: &str) -> Option<u64> {
    msg.get(path).ok().flatten()?.digits()?.to_u64()
}

/// Classifies by MTI, processing code (3) and 60.1 / 60.3.
pub fn classify(msg: &Message<'_>) -> Option<Kind> {
    let sub = |p: &str| msg.get(p).ok().flatten().and_then(|v| v.digits());
    let is = |p: &str, want: &str| sub(p).is_some_and(|d| d == want);
    let proc = msg.digits(3);
    let proc_is = |want: &str| proc.is_some_and(|d| d == want);
    match msg.mti().as_u16() {
        800 if is("60.3", "001") || is("60.3", "003") || is("60.3", "004") => Some(Kind::SignOn),
        820 => Some(Kind::Echo),
        200 if proc_is("310000") => Some(Kind::Balance),
        200 if proc_is("000000")
            && is("60.1", "22")
            && msg
                .digits(22)
                .is_some_and(|d| d.char_at(0) == Some(b'0') && d.char_at(1) == Some(b'3')) =>
        {
            Some(Kind::QrSale)
        }
        200 if proc_is("000000") && is("60.1", "22") => Some(Kind::Sale),
        200 if proc_is("200000") && is("60.1", "23") => Some(Kind::Void),
        220 if is("60.1", "25") => Some(Kind::Refund),
        400 => Some(Kind::Reversal),
        500 => Some(Kind::Settle),
        320 => Some(Kind::BatchUpload),
        _ => None,
    }
}

impl<'a> Request<'a> {
    /// Reads the common fields; a missing mandatory field or an unreadable one is `30`.
    pub fn parse(msg: &'a Message<'a>) -> Result<Self, &'static str> {
        let kind = classify(msg);
        if let Some(k) = kind {
            let missing =
                k.mandatory().iter().any(|n| !msg.has(*n)) || (k.needs_mac() && !msg.has(64));
            if missing {
                return Err(rc::FORMAT_ERROR);
            }
        }
        let tid = msg.text(41).ok_or(rc::FORMAT_ERROR)?;
        let mid = msg.text(42).ok_or(rc::FORMAT_ERROR)?;
        let stan = msg
            .digits(11)
            .and_then(|d| d.to_u64())
            .ok_or(rc::FORMAT_ERROR)? as u32;
        let batch = digits_u64(msg, "60.2").unwrap_or(0) as u32;
        let amount_fen = msg.digits(4).and_then(|d| d.to_u64()).unwrap_or(0);
        Ok(Self {
            msg,
            kind,
            tid,
            mid,
            stan,
            batch,
            amount_fen,
            operator: msg.text(63),
        })
    }

    /// The request MTI.
    pub fn mti(&self) -> Mti {
        self.msg.mti()
    }

    /// The TID as a fixed array (validated 8 characters).
    pub fn tid_key(&self) -> Option<crate::state::Tid> {
        self.tid.as_bytes().try_into().ok()
    }
}
