//! `switch describe`: decode any frame and show its fields, masked unless asked otherwise,
//! with their parts: positional subfields (60.1, 61.2, …), the EMV data elements of field 55
//! by name, and the working keys of a sign-on reply's field 62.
//!
//! Values follow the published vectors' convention: BCD as digits (track separator `D`),
//! binary as upper-case hex, text as text (GBK shown as the characters).
//!
//! ```text
//! MTI    0200
//!    2   primary account number                           622424******0113
//!   55   IC card data                                     [151 bytes]
//!          9F26 Application Cryptogram                    95BBE372271DDA7C
//!   60   reserved private (transaction type, batch, …)    22000024000600
//!          60.1 transaction type code                     22
//! ```
//!
//! JSON: `{"header": hex, "mti": "0200", "bitmap": hex, "fields": {"2": {"name", "value",
//! "subfields"?, "tags"?, "keys"?}}}`.

use codec::{Dialect, Field, Framing, Message, decode, emv, framing};
use serde::Serialize;

/// A part of a field: a subfield, an EMV element or a key.
#[derive(Debug, Serialize)]
struct Part {
    /// `60.1`, `9F26` or `pin_key`.
    id: String,
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct Shown {
    name: String,
    value: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subfields: Vec<Part>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Part>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<Part>,
}

#[derive(Debug, Serialize)]
struct Described {
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    mti: String,
    bitmap: String,
    /// By number, in number order.
    fields: std::collections::BTreeMap<u8, Shown>,
}

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
    let shown: Vec<(u8, Shown)> = msg
        .fields()
        .map(|f| (f.number(), show(&msg, &f, unmasked)))
        .collect();
    if json {
        let fields = shown.into_iter().collect();
        let d = Described {
            header: (!msg.header().is_empty()).then(|| emv::hex_upper(msg.header())),
            mti: msg.mti().to_string(),
            bitmap: bitmap_hex(&msg),
            fields,
        };
        return serde_json::to_string_pretty(&d).map_err(|e| e.to_string());
    }
    let mut out = String::new();
    if let Some(t) = msg.tpdu() {
        out.push_str(&format!("TPDU   {}\n", emv::hex_upper(&t.to_bytes())));
    }
    if let Some(h) = msg.cup_header() {
        out.push_str(&format!("header {}\n", emv::hex_upper(&h.0)));
    }
    out.push_str(&format!("MTI    {}\n", msg.mti()));
    out.push_str(&format!("bitmap {}\n", bitmap_hex(&msg)));
    for (n, s) in shown {
        out.push_str(&format!(
            "{n:>4}   {:<48} {}\n",
            s.name,
            printable(&s.value)
        ));
        for p in s.subfields.iter().chain(&s.tags).chain(&s.keys) {
            let label = format!("{} {}", p.id, p.name);
            out.push_str(&format!("         {label:<46} {}\n", p.value));
        }
    }
    Ok(out)
}

/// Text for a terminal: control characters (a NUL in a text field) as `\xNN`.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02X}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn bitmap_hex(msg: &Message<'_>) -> String {
    let b = msg.bitmap();
    if b.needs_secondary() {
        format!("{:016X}{:016X}", b.primary(), b.secondary())
    } else {
        format!("{:016X}", b.primary())
    }
}

/// One field with its parts.
fn show(msg: &Message<'_>, f: &Field<'_>, unmasked: bool) -> Shown {
    let spec = f.spec();
    let sensitive = codec::mask::is_sensitive(f.number()) && !unmasked;
    let value = if unmasked { f.canonical() } else { f.masked() };
    let subfields = if sensitive {
        Vec::new()
    } else {
        spec.subfields
            .iter()
            .filter_map(|s| {
                f.subfield(s.id).map(|v| Part {
                    id: format!("{}.{}", f.number(), s.id),
                    name: s.name.clone(),
                    value: v.to_string(),
                })
            })
            .collect()
    };
    let tags = if spec.tlv {
        elements(f.wire(), unmasked)
    } else {
        Vec::new()
    };
    let keys = if f.number() == 62 && msg.mti().as_u16() == 810 {
        working_keys(f.wire(), unmasked)
    } else {
        Vec::new()
    };
    // The keys' cryptograms are not shown whole inside the field either.
    let value = if keys.is_empty() || unmasked {
        value
    } else {
        format!("[{} bytes]", f.wire().len())
    };
    Shown {
        name: spec.name.clone(),
        value,
        subfields,
        tags,
        keys,
    }
}

/// Field 55's data elements, named; card data masked unless asked.
fn elements(data: &[u8], unmasked: bool) -> Vec<Part> {
    let mut parts = Vec::new();
    for e in codec::tlv::TlvIter::new(data) {
        match e {
            Ok(t) => parts.push(Part {
                id: emv::tag_hex(t.tag),
                name: emv::name(t.tag).unwrap_or("(unknown tag)").to_owned(),
                value: if unmasked {
                    emv::hex_upper(t.value)
                } else {
                    emv::masked_value(&t)
                },
            }),
            Err(e) => {
                parts.push(Part {
                    id: "--".into(),
                    name: "not BER-TLV from here".into(),
                    value: e.to_string(),
                });
                break;
            }
        }
    }
    parts
}

/// A sign-on reply's field 62 (CUP POS): each working key under the terminal's TMK and its
/// check value: PIN key, MAC key (8 key bytes and 8 zero bytes when double length), and a
/// track key when sent. The key cryptograms are shown by length unless asked.
fn working_keys(data: &[u8], unmasked: bool) -> Vec<Part> {
    let (key_len, names): (usize, &[(&str, &str)]) = match data.len() {
        24 => (8, &[("pin_key", "PIN key"), ("mac_key", "MAC key")]),
        40 => (16, &[("pin_key", "PIN key"), ("mac_key", "MAC key")]),
        60 => (
            16,
            &[
                ("pin_key", "PIN key"),
                ("mac_key", "MAC key"),
                ("track_key", "track key"),
            ],
        ),
        _ => return Vec::new(),
    };
    let mut parts = Vec::new();
    for (i, (id, name)) in names.iter().enumerate() {
        let at = i * (key_len + 4);
        let (Some(key), Some(cv)) = (
            data.get(at..at + key_len),
            data.get(at + key_len..at + key_len + 4),
        ) else {
            break;
        };
        parts.push(Part {
            id: (*id).to_owned(),
            name: format!("{name} (under the TMK)"),
            value: if unmasked {
                emv::hex_upper(key)
            } else {
                format!("[{key_len} bytes]")
            },
        });
        parts.push(Part {
            id: format!("{id}_check"),
            name: format!("{name} check value"),
            value: emv::hex_upper(cv),
        });
    }
    parts
}
