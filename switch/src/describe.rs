//! `switch describe`: decode any frame and show its fields, masked unless asked otherwise.
//!
//! Values follow the published vectors' convention: BCD as digits (track separator `D`),
//! binary as upper-case hex, ASCII as text.

use codec::{Dialect, Framing, decode, framing};
use serde_json::{Map, Value};

/// Decodes `bytes` in `dialect`; a leading length indicator is removed when it matches.
pub fn describe(
    dialect: &Dialect,
    bytes: &[u8],
    json: bool,
    unmasked: bool,
) -> Result<String, String> {
    let body = match framing::split(dialect.framing(), bytes) {
        Ok((body, rest)) if rest.is_empty() && dialect.framing() != Framing::None => body,
        _ => bytes,
    };
    let msg = decode(dialect, body).map_err(|e| e.to_string())?;
    let value = |f: &codec::Field<'_>| if unmasked { f.canonical() } else { f.masked() };
    if json {
        let mut m = Map::new();
        if !msg.header().is_empty() {
            m.insert("h".into(), Value::String(hex::encode_upper(msg.header())));
        }
        m.insert("t".into(), Value::String(msg.mti().to_string()));
        m.insert(
            "p".into(),
            Value::String(format!("{:016X}", msg.bitmap().primary())),
        );
        for f in msg.fields() {
            m.insert(f.number().to_string(), Value::String(value(&f)));
        }
        serde_json::to_string_pretty(&Value::Object(m)).map_err(|e| e.to_string())
    } else {
        let mut out = String::new();
        if let Some(t) = msg.tpdu() {
            out.push_str(&format!("TPDU   {}\n", hex::encode_upper(t.to_bytes())));
        }
        if let Some(h) = msg.cup_header() {
            out.push_str(&format!("header {}\n", hex::encode_upper(h.0)));
        }
        out.push_str(&format!("MTI    {}\n", msg.mti()));
        for f in msg.fields() {
            out.push_str(&format!(
                "{:>4}   {:<48} {}\n",
                f.number(),
                f.spec().name,
                value(&f)
            ));
        }
        Ok(out)
    }
}
