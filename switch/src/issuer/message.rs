//! Issuer-side messages: the terminal's CUP request translated to ISO 8583:1987, reversals
//! and advices, and the reply read back.
//!
//! ```text
//!  CUP (terminal)                          ISO 87 (issuer)
//!  2 / 35  PAN, track 2            ──▶     2 PAN, 35 track 2 (as received)
//!  3, 4, 14, 22, 25, 41, 42, 49    ──▶     same fields
//!  11 terminal STAN, 37 —          ──▶     7 transmission time (UTC), 11 switch STAN,
//!                                          12/13 local time, 32 acquirer id, 37 switch RRN
//!  52 PIN block under the TPK      ──▶     52 under the issuer's ZPK (translated in the HSM), 53
//!  55 IC data (binary)             ──▶     55 as hex text (ISO87 packs 55 as characters)
//!  —                                       64 X9.19 MAC under the ZAK
//!  39, 38, 54                      ◀──     39 response, 38 auth code, 54 balances
//!  reversal / void / refund        ──▶     90 original data: MTI, STAN, time, acquirer id
//!  pre-authorisation (0100)        ──▶     0100, 3 = 030000
//!  its void (0100), completion     ──▶     0100 3 = 200000 / 0220 (or 0200) 3 = 000000,
//!                                          38 its auth code, 90 the pre-authorisation
//!  completion void                 ──▶     0200, 3 = 020000 (as a void), 90 the completion
//! ```

use codec::{Message, MessageBuilder, Mti};

use crate::clock::Timestamp;
use crate::journal::UpstreamRef;
use crate::model::{AuthCode, ResponseCode, Stan};

const fn mti(d: &[u8; 4]) -> Mti {
    match Mti::new(*d) {
        Some(m) => m,
        None => panic!("invalid MTI constant"),
    }
}

/// Network management request (echo).
pub const ECHO: Mti = mti(b"0800");
/// Authorisation request (pre-authorisation and its void).
pub const AUTHORISATION: Mti = mti(b"0100");
/// Financial request (sale, balance, void).
pub const FINANCIAL: Mti = mti(b"0200");
/// Financial advice (refund, stand-in approval).
pub const ADVICE: Mti = mti(b"0220");
/// Financial advice, repeated.
pub const ADVICE_REPEAT: Mti = mti(b"0221");
/// Reversal advice.
pub const REVERSAL: Mti = mti(b"0420");
/// Reversal advice, repeated.
pub const REVERSAL_REPEAT: Mti = mti(b"0421");

/// What an issuer request is made of.
#[derive(Clone, Debug, Default)]
pub struct Upstream<'a> {
    /// Processing code (3).
    pub processing: &'a str,
    /// PAN (2), when the terminal sent one or it came from track 2.
    pub pan: Option<&'a str>,
    /// Track 2 as digits with `D` (35).
    pub track2: Option<String>,
    /// Amount (4), fen.
    pub amount_fen: Option<u64>,
    /// Upstream STAN (11).
    pub stan: Stan,
    /// Transmission time (7).
    pub time: String,
    /// Expiry (14).
    pub expiry: Option<String>,
    /// POS entry mode (22).
    pub entry_mode: Option<String>,
    /// POS condition code (25).
    pub condition: Option<String>,
    /// Acquirer id (32).
    pub acquirer_id: &'a str,
    /// Switch RRN (37).
    pub rrn: &'a str,
    /// Terminal (41) and merchant (42).
    pub tid: &'a str,
    /// Merchant.
    pub mid: &'a str,
    /// Currency (49).
    pub currency: &'a str,
    /// PIN block under the ZPK (52; an SM4 one, 16 bytes, in 63 as usage `SM`) and its
    /// control field (53).
    pub pin: Option<(Vec<u8>, String)>,
    /// IC data (55), hex.
    pub icc_hex: Option<String>,
    /// Original data elements (90).
    pub original: Option<String>,
    /// The original's authorisation code (38): a completion's or pre-authorisation
    /// void's.
    pub auth_code: Option<String>,
}

impl Upstream<'_> {
    /// The request as a builder, without MAC; `now` gives the local time (12, 13).
    pub fn builder(&self, mti: Mti, now: Timestamp) -> MessageBuilder<'static> {
        let mut b = MessageBuilder::new(mti);
        let (time, date) = now.cst_fields();
        if let Some(pan) = self.pan {
            b.set(2, pan.to_owned());
        }
        b.set(3, self.processing.to_owned());
        if let Some(a) = self.amount_fen {
            b.set(4, format!("{a:012}"));
        }
        b.set(7, self.time.clone())
            .set(11, self.stan.to_string())
            .set(12, time)
            .set(13, date);
        if let Some(e) = &self.expiry {
            b.set(14, e.clone());
        }
        if let Some(e) = &self.entry_mode {
            b.set(22, e.clone());
        }
        if let Some(c) = &self.condition {
            b.set(25, c.clone());
        }
        b.set(32, self.acquirer_id.to_owned());
        if let Some(t) = &self.track2 {
            b.set(35, t.clone());
        }
        b.set(37, self.rrn.to_owned());
        if let Some(a) = &self.auth_code {
            b.set(38, a.clone());
        }
        b.set(41, self.tid.to_owned())
            .set(42, self.mid.to_owned())
            .set(49, self.currency.to_owned());
        match &self.pin {
            // An SM4 PIN block between switches: field 63, usage `SM`, 16 bytes.
            Some((block, control)) if block.len() == 16 => {
                let mut f63 = b"SM".to_vec();
                f63.extend_from_slice(block);
                b.set(53, control.clone()).set(63, f63);
            }
            Some((block, control)) => {
                b.set(52, block.to_vec()).set(53, control.clone());
            }
            None => {}
        }
        if let Some(icc) = &self.icc_hex {
            b.set(55, icc.clone());
        }
        if let Some(o) = &self.original {
            b.set(90, o.clone());
        }
        b
    }

    /// The reversal advice of this request: no PIN, track or IC data; 90 names it.
    pub fn reversal(&self, original: &UpstreamRef, now: Timestamp) -> MessageBuilder<'static> {
        let mut r = Upstream {
            pin: None,
            track2: None,
            icc_hex: None,
            original: Some(original.field90(self.acquirer_id)),
            ..self.clone()
        };
        r.stan = original.stan;
        r.builder(REVERSAL, now)
    }
}

/// What the terminal gets back from an issuer's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerReply {
    /// Response code (39) as the issuer sent it.
    pub code: ResponseCode,
    /// Authorisation code (38), fitted to the terminal's 6 characters.
    pub auth_code: Option<AuthCode>,
    /// Available balance from 54, fen (negative when `D`).
    pub balance_fen: Option<i64>,
}

impl IssuerReply {
    /// Reads a reply; `None` when it has no readable response code.
    pub fn read(msg: &Message<'_>) -> Option<Self> {
        Some(Self {
            code: ResponseCode::parse(msg.text(39)?)?,
            auth_code: msg.text(38).and_then(AuthCode::from_issuer),
            balance_fen: msg.text(54).and_then(balance_of),
        })
    }
}

/// The available balance from field 54's 20-character entries (account type 2, amount type
/// 2, currency 3, sign 1, amount 12): amount type `02`, else the first entry.
pub fn balance_of(f54: &str) -> Option<i64> {
    let entries: Vec<&str> = (0..f54.len() / 20)
        .filter_map(|i| f54.get(i * 20..i * 20 + 20))
        .collect();
    let e = entries
        .iter()
        .find(|e| e.get(2..4) == Some("02"))
        .or(entries.first())?;
    let amount: i64 = e.get(8..20)?.parse().ok()?;
    match e.get(7..8)? {
        "D" => Some(-amount),
        "C" => Some(amount),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field90_and_refs() {
        let r = UpstreamRef {
            issuer: "demo".into(),
            mti: FINANCIAL,
            stan: Stan(123),
            time: "1122043512".into(),
        };
        let f = r.field90("00000001");
        assert_eq!(f, "020000012311220435120000000000100000000000");
        assert_eq!(f.len(), 42);
        assert_eq!(UpstreamRef::from_columns("demo", &r.to_column()), Some(r));
    }

    #[test]
    fn requests_and_reversals_encode_in_both_dialects() {
        let up = Upstream {
            processing: "000000",
            pan: Some("6217001000000000011"),
            track2: Some("6217001000000000011D2912".into()),
            amount_fen: Some(12_345),
            stan: Stan(42),
            time: "1122043512".into(),
            expiry: Some("2912".into()),
            entry_mode: Some("021".into()),
            condition: Some("00".into()),
            acquirer_id: "00000001",
            rrn: "000000001234",
            tid: "10000001",
            mid: "898310048990001",
            currency: "156",
            pin: Some((vec![0x12; 8], "2600000000000000".into())),
            icc_hex: Some("9F2608AABBCCDDEEFF0011".into()),
            original: None,
            auth_code: None,
        };
        let orig = UpstreamRef {
            issuer: "demo".into(),
            mti: FINANCIAL,
            stan: Stan(42),
            time: "1122043512".into(),
        };
        let now = Timestamp(1_795_316_645_678);
        for d in [
            codec::Dialect::iso87_binary(),
            codec::Dialect::iso87_ascii(),
        ] {
            let bytes = up.builder(FINANCIAL, now).encode_to_vec(d).unwrap();
            let m = codec::decode(d, &bytes).unwrap();
            assert_eq!(m.digits(2).unwrap().to_string(), "6217001000000000011");
            assert_eq!(m.binary(52).as_deref(), Some(&[0x12; 8][..]));
            assert_eq!(m.text(37), Some("000000001234"));
            let rev = up.reversal(&orig, now).encode_to_vec(d).unwrap();
            let r = codec::decode(d, &rev).unwrap();
            assert_eq!(r.mti().as_str(), "0420");
            assert!(r.field(52).is_none() && r.field(35).is_none() && r.field(55).is_none());
            assert_eq!(r.digits(90).unwrap().to_string(), orig.field90("00000001"));
        }
    }

    #[test]
    fn balances() {
        assert_eq!(balance_of("1002156C000000012345"), Some(12_345));
        assert_eq!(
            balance_of("1001156C0000000000011002156D000000000200"),
            Some(-200)
        );
        assert_eq!(balance_of("1002156X000000012345"), None);
        assert_eq!(balance_of("short"), None);
    }
}
