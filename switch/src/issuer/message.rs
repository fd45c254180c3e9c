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
//! ```

use codec::{Message, MessageBuilder, Mti};

const fn mti(d: &[u8; 4]) -> Mti {
    match Mti::new(*d) {
        Some(m) => m,
        None => panic!("invalid MTI constant"),
    }
}

/// Network management request (echo).
pub const ECHO: Mti = mti(b"0800");
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

/// Field 7 now: MMDDhhmmss, UTC.
pub fn transmission_time() -> String {
    let c = crate::clock::Instant::now().civil(0);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        c.month, c.day, c.hour, c.minute, c.second
    )
}

/// How the switch knows a forwarded transaction at the issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamRef {
    /// The issuer's index.
    pub issuer: usize,
    /// Upstream MTI of the original.
    pub mti: String,
    /// Upstream STAN.
    pub stan: u32,
    /// Field 7 of the original.
    pub time: String,
}

impl UpstreamRef {
    /// As stored in the journal: `MTI:STAN:time`.
    pub fn to_record(&self) -> String {
        format!("{}:{:06}:{}", self.mti, self.stan, self.time)
    }

    /// From the journal's form.
    pub fn from_record(issuer: usize, s: &str) -> Option<Self> {
        let mut p = s.split(':');
        let (mti, stan, time) = (p.next()?, p.next()?, p.next()?);
        Some(Self {
            issuer,
            mti: mti.to_owned(),
            stan: stan.parse().ok()?,
            time: time.to_owned(),
        })
    }

    /// Field 90: original MTI (4), STAN (6), transmission time (10), acquirer id (11),
    /// forwarding institution (11, zeros).
    pub fn field90(&self, acquirer_id: &str) -> String {
        format!(
            "{}{:06}{}{:0>11}{:011}",
            self.mti, self.stan, self.time, acquirer_id, 0
        )
    }
}

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
    pub stan: u32,
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
    /// PIN block under the ZPK (52) and its control field (53).
    pub pin: Option<([u8; 8], String)>,
    /// IC data (55), hex.
    pub icc_hex: Option<String>,
    /// Original data elements (90).
    pub original: Option<String>,
}

impl Upstream<'_> {
    /// The request as a builder, without MAC.
    pub fn builder(&self, mti: Mti) -> MessageBuilder<'static> {
        let mut b = MessageBuilder::new(mti);
        let (time, date) = crate::clock::Instant::now().cst_fields();
        if let Some(pan) = self.pan {
            b.set(2, pan.to_owned());
        }
        b.set(3, self.processing.to_owned());
        if let Some(a) = self.amount_fen {
            b.set(4, format!("{a:012}"));
        }
        b.set(7, self.time.clone())
            .set(11, format!("{:06}", self.stan))
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
        b.set(37, self.rrn.to_owned())
            .set(41, self.tid.to_owned())
            .set(42, self.mid.to_owned())
            .set(49, self.currency.to_owned());
        if let Some((block, control)) = &self.pin {
            b.set(52, block.to_vec()).set(53, control.clone());
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
    pub fn reversal(&self, original: &UpstreamRef) -> MessageBuilder<'static> {
        let mut r = Upstream {
            pin: None,
            track2: None,
            icc_hex: None,
            original: Some(original.field90(self.acquirer_id)),
            ..self.clone()
        };
        r.stan = original.stan;
        r.builder(REVERSAL)
    }
}

/// What the terminal gets back from an issuer's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerReply {
    /// Response code (39) as the issuer sent it.
    pub rc: String,
    /// Authorisation code (38).
    pub auth_code: Option<String>,
    /// Available balance from 54, fen (negative when `D`).
    pub balance_fen: Option<i64>,
}

impl IssuerReply {
    /// Reads a reply; `None` when it has no response code.
    pub fn read(msg: &Message<'_>) -> Option<Self> {
        let rc = msg.text(39)?.to_owned();
        Some(Self {
            rc,
            auth_code: msg.text(38).and_then(auth_code),
            balance_fen: msg.text(54).and_then(balance_of),
        })
    }
}

/// An issuer's auth code as the terminal's 6-character field 38: letters and digits only,
/// cut or padded with spaces to 6; `None` when nothing is left.
fn auth_code(a: &str) -> Option<String> {
    let a: String = a
        .trim()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    (!a.is_empty()).then(|| format!("{a:<6}"))
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
            issuer: 0,
            mti: "0200".into(),
            stan: 123,
            time: "1122043512".into(),
        };
        let f = r.field90("00000001");
        assert_eq!(f, "020000012311220435120000000000100000000000");
        assert_eq!(f.len(), 42);
        assert_eq!(UpstreamRef::from_record(0, &r.to_record()), Some(r));
    }

    #[test]
    fn requests_and_reversals_encode_in_both_dialects() {
        let up = Upstream {
            processing: "000000",
            pan: Some("6217001000000000011"),
            track2: Some("6217001000000000011D2912".into()),
            amount_fen: Some(12_345),
            stan: 42,
            time: "1122043512".into(),
            expiry: Some("2912".into()),
            entry_mode: Some("021".into()),
            condition: Some("00".into()),
            acquirer_id: "00000001",
            rrn: "000000001234",
            tid: "10000001",
            mid: "898310048990001",
            currency: "156",
            pin: Some(([0x12; 8], "2600000000000000".into())),
            icc_hex: Some("9F2608AABBCCDDEEFF0011".into()),
            original: None,
        };
        let orig = UpstreamRef {
            issuer: 0,
            mti: "0200".into(),
            stan: 42,
            time: "1122043512".into(),
        };
        for d in [
            codec::Dialect::iso87_binary(),
            codec::Dialect::iso87_ascii(),
        ] {
            let bytes = up.builder(FINANCIAL).encode_to_vec(d).unwrap();
            let m = codec::decode(d, &bytes).unwrap();
            assert_eq!(m.digits(2).unwrap().to_string(), "6217001000000000011");
            assert_eq!(m.binary(52).as_deref(), Some(&[0x12; 8][..]));
            assert_eq!(m.text(37), Some("000000001234"));
            let rev = up.reversal(&orig).encode_to_vec(d).unwrap();
            let r = codec::decode(d, &rev).unwrap();
            assert_eq!(r.mti().as_str(), "0420");
            assert!(r.field(52).is_none() && r.field(35).is_none() && r.field(55).is_none());
            assert_eq!(r.digits(90).unwrap().to_string(), orig.field90("00000001"));
        }
    }

    #[test]
    fn auth_codes_fit_field_38() {
        assert_eq!(auth_code("123456").as_deref(), Some("123456"));
        assert_eq!(auth_code(" A1 ").as_deref(), Some("A1    "));
        assert_eq!(auth_code("12345678").as_deref(), Some("123456"));
        assert_eq!(auth_code("é-12").as_deref(), Some("12    "));
        assert_eq!(auth_code("   "), None);
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
