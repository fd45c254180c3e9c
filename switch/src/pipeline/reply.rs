//! Step 10, the reply: the request's identifying fields echoed byte for byte, the
//! switch's own (12, 13, 32, 37, 38, 39, 48, 54, 60, 62), and the MAC under the terminal's
//! TAK when the request was authenticated.
//!
//! ```text
//!  request header  [60 0003 0000][60 31 0x 31 10 03]
//!  reply header    [60 0000 0003][60 31 0x 31 10 03]   TPDU addresses swapped;
//!                                     └─ nibble 3 when the terminal must sign on again
//! ```
//!
//! One header builder serves every reply, down to the `30` for a frame whose fields could
//! not be read.

use codec::header::SIGN_ON_AGAIN;
use codec::{CupHeader, Message, MessageBuilder, Mti, Tpdu};
use hsm_sim::MacAlgorithm;

use crate::hsm::KeyRef;

use super::decision::{Answer, Decline};
use super::request::Request;
use super::{Handled, Switch};
use crate::clock::Timestamp;
use crate::model::{ResponseCode, Rrn};

/// The reply's header from the request's: TPDU addresses swapped, the CUP header with the
/// sign-on nibble when asked; a header that is neither is copied.
pub fn header(request: &[u8], sign_on_again: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(11);
    match (
        request.get(..5).and_then(Tpdu::parse),
        request.get(5..).and_then(CupHeader::parse),
    ) {
        (Some(t), Some(c)) => {
            h.extend_from_slice(&t.reply().to_bytes());
            let c = if sign_on_again {
                c.with_processing_requirement(SIGN_ON_AGAIN)
            } else {
                c
            };
            h.extend_from_slice(&c.0);
        }
        _ => h.extend_from_slice(request),
    }
    h
}

/// Field `n` of a request, to be echoed in the reply byte for byte.
fn echo<'m>(msg: &Message<'m>, n: u8) -> Option<codec::FieldInput<'m>> {
    msg.field(n).map(|f| codec::FieldInput::Wire {
        data: std::borrow::Cow::Borrowed(f.wire()),
        units: f.units(),
    })
}

impl Switch {
    /// The reply to an answered request; MACed with `tak` when given.
    pub(crate) async fn reply(
        &self,
        req: &Request<'_>,
        answer: &Answer,
        rrn: Option<Rrn>,
        tak: Option<(&KeyRef, MacAlgorithm)>,
        now: Timestamp,
    ) -> Handled {
        let msg = req.msg;
        let rules = self.rules();
        let mut b = MessageBuilder::new(msg.mti().response());
        b.header(header(msg.header(), answer.sign_on_again));
        let (time, date) = now.cst_fields();
        // Echoed from the request; the builder keeps fields in number order.
        for n in [2, 3, 4, 11, 14, 25, 41, 42, 49, 60] {
            if let Some(v) = echo(msg, n) {
                b.set(n, v);
            }
        }
        b.set(12, time.as_str()).set(13, date.as_str());
        b.set(32, rules.acquirer.institution_id.as_str());
        if let Some(rrn) = &rrn {
            b.set(37, rrn.as_str());
        }
        if let Some(a) = &answer.auth_code {
            b.set(38, a.as_str());
        }
        b.set(39, answer.code.as_str());
        if let Some(f48) = &answer.field48 {
            b.set(48, f48.as_str());
        }
        let balance_field;
        if let Some(bal) = answer.balance_fen {
            // Account type 10, amount type 02 (available), CNY, sign, 12 digits.
            balance_field = format!(
                "1002{}{}{:012}",
                rules.acquirer.currency,
                if bal < 0 { 'D' } else { 'C' },
                bal.unsigned_abs()
            );
            b.set(54, balance_field.as_str());
        }
        if let Some(s) = &answer.sign_on {
            // 60: type 00, the current batch, management code as asked.
            let code = msg
                .get("60.3")
                .ok()
                .flatten()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "003".into());
            b.set(60, format!("00{}{code}", s.batch));
            b.set(62, s.field62.as_slice());
        }
        let mut buf = Vec::with_capacity(256);
        let encoded = match tak {
            Some((tak, alg)) => match b.encode_for_mac(self.dialect, &mut buf) {
                Ok(slot) => match self.hsm.generate_mac(tak, alg, slot.data(&buf)).await {
                    Ok(mac) => slot.fill(&mut buf, &mac).map(|()| slot.written),
                    Err(_) => Err(codec::EncodeError::MacUnavailable),
                },
                Err(e) => Err(e),
            },
            None => b.encode(self.dialect, &mut buf),
        };
        match encoded {
            Ok(_) => Handled::Reply(buf),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a reply");
                self.metrics.reject("reply_encode");
                Handled::Close("reply_encode")
            }
        }
    }

    /// A reply with only 39 and the fields that identify the request, for requests that
    /// cannot go through the pipeline; counted under `kind`.
    pub(crate) fn bare_reply(
        &self,
        msg: &Message<'_>,
        kind: &'static str,
        decline: Decline,
    ) -> Handled {
        let mut b = MessageBuilder::new(msg.mti().response());
        b.header(header(msg.header(), decline.sign_on_again));
        for n in [3, 4, 11] {
            if let Some(v) = echo(msg, n) {
                b.set(n, v);
            }
        }
        b.set(39, decline.code.as_str());
        for n in [41, 42] {
            if let Some(t) = msg.text(n) {
                b.set(n, t);
            }
        }
        self.count(kind, decline.code);
        match b.encode_to_vec(self.dialect) {
            Ok(v) => Handled::Reply(v),
            Err(_) => Handled::Close("reply_encode"),
        }
    }

    /// A frame the codec refused: answered `30` when its header and MTI can be read, else
    /// the connection is closed.
    pub(crate) fn format_error_reply(&self, frame: &[u8]) -> Handled {
        let header_len = self.dialect.header().len();
        let mti = frame.get(header_len..header_len + 2).and_then(|m| {
            Mti::new([
                b'0' + (m[0] >> 4),
                b'0' + (m[0] & 15),
                b'0' + (m[1] >> 4),
                b'0' + (m[1] & 15),
            ])
        });
        match (frame.get(..header_len), mti) {
            (Some(h), Some(mti)) if !mti.is_response() => {
                self.metrics.reject("format");
                let mut b = MessageBuilder::new(mti.response());
                b.header(header(h, false))
                    .set(39, ResponseCode::FORMAT_ERROR.as_str());
                self.count("unknown", ResponseCode::FORMAT_ERROR);
                match b.encode_to_vec(self.dialect) {
                    Ok(v) => Handled::Reply(v),
                    Err(_) => Handled::Close("undecodable"),
                }
            }
            _ => {
                self.metrics.reject("undecodable");
                Handled::Close("undecodable")
            }
        }
    }
}
