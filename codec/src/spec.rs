//! Field specifications and dialects, as data.
//!
//! A dialect is a TOML (or JSON) document: how the message is framed, its fixed header, how
//! the MTI and bitmap are encoded, and one entry per field. The three built-in dialects are
//! such documents compiled into the crate (`codec/src/dialects/*.toml`); a user adds a
//! dialect by writing another one and loading it with [`Dialect::from_toml`].
//!
//! ```toml
//! name = "my-dialect"
//! framing = "u16"        # u16 | ascii4 | none: the length indicator in front of a message
//! header = "none"        # none | cup-pos | { fixed = N }
//! mti = "ascii"          # ascii | bcd
//! bitmap = "hex"         # binary | hex
//! prefix = "ascii"       # default length-prefix encoding: ascii | bcd | binary
//!
//! [fields]
//! 2 = { len = "LL", max = 19, data = "ascii-digits" }
//! 4 = { len = 12, data = "ascii-digits" }
//! 60 = { len = "LLL", max = 17, data = "bcd-left", subfields = [{ id = 1, len = 2 }, { id = 2, len = 6 }] }
//! ```

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;

/// How a field's data is carried on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// 7-bit ASCII text (`an`, `ans`).
    Ascii,
    /// ASCII decimal digits only (`n` in ASCII dialects).
    AsciiDigits,
    /// ASCII digits and `=` (track 2 in ASCII dialects).
    AsciiTrack,
    /// Packed BCD, right-aligned: an odd digit count has its pad nibble first.
    Bcd,
    /// Packed BCD, left-aligned: an odd digit count has its pad nibble last.
    BcdLeft,
    /// Track data: packed BCD, left-aligned, the separator `=` carried as nibble `D`.
    Track,
    /// One ASCII sign character (`C`, `D` or `0`) then right-aligned BCD digits (jPOS
    /// `IFB_AMOUNT`). The length counts the sign.
    BcdAmount,
    /// Raw bytes.
    Binary,
    /// Raw bytes carried as upper-case hex text; the length counts decoded bytes.
    Hex,
    /// Text in EBCDIC (code page 037).
    Ebcdic,
    /// Text in GBK (GB 2312 and its extension): Chinese free text from UnionPay hosts
    /// (fields 59, 63, bill-payment 48). ASCII is a subset. Set from UTF-8; read back as
    /// UTF-8 by `Field::decoded_text`.
    Gbk,
}

impl Encoding {
    /// Whether this encoding packs digits two to a byte.
    pub fn is_packed(self) -> bool {
        matches!(self, Self::Bcd | Self::BcdLeft | Self::Track)
    }

    /// Whether the field's natural unit is a digit (as opposed to a byte).
    pub fn counts_digits(self) -> bool {
        matches!(
            self,
            Self::Bcd
                | Self::BcdLeft
                | Self::Track
                | Self::BcdAmount
                | Self::AsciiDigits
                | Self::AsciiTrack
        )
    }
}

/// Number of length digits in a variable field's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Var {
    /// Up to 99 (or 255 with a binary prefix).
    LL,
    /// Up to 999.
    LLL,
    /// Up to 9999.
    LLLL,
}

impl Var {
    /// Decimal digits in the prefix.
    pub fn digits(self) -> usize {
        match self {
            Var::LL => 2,
            Var::LLL => 3,
            Var::LLLL => 4,
        }
    }
}

/// Fixed length (in the field's units) or a variable-length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Length {
    /// Exactly this many digits (packed and digit encodings) or bytes.
    Fixed(u16),
    /// A length prefix precedes the data.
    Var(Var),
}

/// How a length prefix is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefixEncoding {
    /// ASCII digits, as many as the prefix has.
    Ascii,
    /// Packed BCD, right-aligned: LL is 1 byte, LLL and LLLL 2 bytes.
    Bcd,
    /// Big-endian binary: LL is 1 byte, LLL and LLLL 2 bytes.
    Binary,
    /// EBCDIC digits.
    Ebcdic,
}

impl PrefixEncoding {
    /// Bytes the prefix takes on the wire.
    pub fn width(self, var: Var) -> usize {
        match self {
            Self::Ascii | Self::Ebcdic => var.digits(),
            Self::Bcd => var.digits().div_ceil(2),
            Self::Binary => match var {
                Var::LL => 1,
                Var::LLL | Var::LLLL => 2,
            },
        }
    }

    /// The largest value the prefix can carry.
    pub fn capacity(self, var: Var) -> usize {
        match (self, var) {
            (Self::Binary, Var::LL) => 255,
            (Self::Binary, _) => 65_535,
            (_, v) => 10usize.pow(v.digits() as u32) - 1,
        }
    }
}

/// What a length prefix counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Count {
    /// Digits (the default for packed and digit encodings).
    Digits,
    /// Bytes (the default for text and binary).
    Bytes,
}

/// A named part of a field, by position (fields 60 and 61 of the CUP dialect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subfield {
    /// Subfield number, as in `60.2`.
    pub id: u8,
    /// Length in the field's units (digits for packed fields).
    pub len: u16,
    /// Human name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A field as written in a dialect file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Human name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Fixed length, or `"LL"`, `"LLL"`, `"LLLL"`.
    pub len: Length,
    /// Maximum for variable fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
    /// Data encoding.
    pub data: Encoding,
    /// Length prefix encoding; the dialect's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixEncoding>,
    /// What the prefix counts; the encoding's natural unit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Count>,
    /// Pad nibble for odd-length packed values (`"0"` or `"F"`); `"0"` when absent. Both are
    /// accepted on decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<String>,
    /// Positional subfields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subfields: Vec<Subfield>,
    /// The field holds BER-TLV data (EMV field 55).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tlv: bool,
    /// Other layouts of the field in the messages of some MTIs (say text by default and
    /// BCD totals in settlements); the first whose MTIs match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<VariantDef>,
}

/// A field's layout in some messages, as written in a dialect file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDef {
    /// The MTIs it applies to (`"0500"`).
    pub mti: Vec<String>,
    /// Human name in those messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Fixed length, or `"LL"`, `"LLL"`, `"LLLL"`.
    pub len: Length,
    /// Maximum for variable fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
    /// Data encoding.
    pub data: Encoding,
    /// Length prefix encoding; the dialect's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixEncoding>,
}

/// A field's layout in the messages of some MTIs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Variant {
    field: u8,
    mtis: Vec<[u8; 4]>,
    spec: FieldSpec,
}

/// How a field sits on the wire: everything the decoder and encoder need, small and `Copy`
/// so the per-field hot path reads one compact table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldFormat {
    /// Fixed length or prefix.
    pub length: Length,
    /// Maximum length in the field's units (digits for digit encodings, bytes otherwise).
    pub max: usize,
    /// Data encoding.
    pub data: Encoding,
    /// Prefix encoding (unused for fixed fields).
    pub prefix: PrefixEncoding,
    /// What the prefix counts.
    pub count: Count,
    /// Pad nibble written for odd-length packed values.
    pub pad: u8,
}

/// A resolved field specification: its wire format and its meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Human name.
    pub name: String,
    /// Wire format.
    pub format: FieldFormat,
    /// Positional subfields.
    pub subfields: Vec<Subfield>,
    /// BER-TLV content.
    pub tlv: bool,
}

impl FieldFormat {
    /// Bytes the data of a value of `units` takes on the wire (without prefix).
    #[inline]
    pub fn wire_len(&self, units: usize) -> usize {
        match self.data {
            Encoding::Bcd | Encoding::BcdLeft | Encoding::Track => units.div_ceil(2),
            Encoding::BcdAmount => 1 + units.saturating_sub(1).div_ceil(2),
            Encoding::Hex => units * 2,
            _ => units,
        }
    }

    /// Converts a prefix value to the field's units.
    #[inline]
    pub(crate) fn units_from_prefix(&self, n: usize) -> usize {
        if self.count == Count::Bytes && self.data.is_packed() {
            n * 2
        } else {
            n
        }
    }

    /// Converts the field's units to a prefix value.
    #[inline]
    pub(crate) fn prefix_from_units(&self, units: usize) -> usize {
        if self.count == Count::Bytes && self.data.is_packed() {
            units.div_ceil(2)
        } else {
            units
        }
    }
}

impl FieldSpec {
    fn resolve(
        key: &str,
        def: FieldDef,
        default_prefix: PrefixEncoding,
    ) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::Field {
            field: key.to_owned(),
            reason: reason.to_owned(),
        };
        let prefix = def.prefix.unwrap_or(default_prefix);
        let count = def.count.unwrap_or(if def.data.counts_digits() {
            Count::Digits
        } else {
            Count::Bytes
        });
        let max = match def.len {
            Length::Fixed(0) => return Err(bad("fixed length must be above 0")),
            Length::Fixed(n) => {
                if def.max.is_some() {
                    return Err(bad("`max` applies only to variable fields"));
                }
                n as usize
            }
            Length::Var(v) => {
                let max = def.max.ok_or_else(|| bad("variable field needs `max`"))? as usize;
                if max == 0 {
                    return Err(bad("`max` must be above 0"));
                }
                let in_prefix = if count == Count::Bytes && def.data.is_packed() {
                    max.div_ceil(2)
                } else {
                    max
                };
                if in_prefix > prefix.capacity(v) {
                    return Err(bad("`max` does not fit the length prefix"));
                }
                max
            }
        };
        if def.data == Encoding::BcdAmount && matches!(def.len, Length::Fixed(1)) {
            return Err(bad("an amount needs a sign and at least one digit"));
        }
        let pad = match def.pad.as_deref() {
            None | Some("0") => 0,
            Some("F") | Some("f") => 0xF,
            Some(_) => return Err(bad("`pad` must be \"0\" or \"F\"")),
        };
        let mut seen = 0usize;
        for s in &def.subfields {
            seen += s.len as usize;
            if s.len == 0 {
                return Err(bad("subfield length must be above 0"));
            }
        }
        if seen > max {
            return Err(bad("subfields are longer than the field"));
        }
        if !def.subfields.is_empty()
            && matches!(
                def.data,
                Encoding::Binary | Encoding::Hex | Encoding::BcdAmount
            )
        {
            return Err(bad("subfields need a digit or text encoding"));
        }
        if def.tlv && !matches!(def.data, Encoding::Binary) {
            return Err(bad("`tlv` needs binary data"));
        }
        Ok(Self {
            name: def.name,
            format: FieldFormat {
                length: def.len,
                max,
                data: def.data,
                prefix,
                count,
                pad,
            },
            subfields: def.subfields,
            tlv: def.tlv,
        })
    }
}

/// The length indicator in front of each message on a stream (handled by the framing layer,
/// not by [`crate::decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// Two bytes, big-endian binary.
    U16,
    /// Four ASCII digits.
    Ascii4,
    /// No length indicator.
    None,
}

/// The fixed header between the framing length and the MTI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Header {
    /// No header.
    None,
    /// CUP POS: 5-byte TPDU then 6-byte header.
    CupPos,
    /// Opaque bytes of this length.
    Fixed(u16),
}

impl Header {
    /// Header length in bytes.
    pub fn len(self) -> usize {
        match self {
            Header::None => 0,
            Header::CupPos => crate::header::CUP_HEADER_LEN,
            Header::Fixed(n) => n as usize,
        }
    }

    /// Whether the header is empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// How the MTI is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MtiEncoding {
    /// Four ASCII digits.
    Ascii,
    /// Two bytes of packed BCD.
    Bcd,
}

/// How the bitmaps are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BitmapEncoding {
    /// 8 bytes per bitmap.
    Binary,
    /// 16 upper-case hex characters per bitmap.
    Hex,
}

/// A dialect as written in a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectDef {
    /// Name used on the command line and in configuration.
    pub name: String,
    /// One line on what it is.
    #[serde(default)]
    pub description: String,
    /// Length indicator on a stream.
    pub framing: Framing,
    /// Fixed header.
    pub header: Header,
    /// MTI encoding.
    pub mti: MtiEncoding,
    /// Bitmap encoding.
    pub bitmap: BitmapEncoding,
    /// Default prefix encoding for variable fields.
    pub prefix: PrefixEncoding,
    /// Field definitions keyed by field number (2–128).
    pub fields: BTreeMap<String, FieldDef>,
}

/// A resolved dialect: everything the decoder and encoder need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialect {
    name: String,
    description: String,
    framing: Framing,
    header: Header,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    fields: Vec<Option<FieldSpec>>,
    /// The fields' wire formats alone, indexed by field number: the decoder's hot table.
    formats: Vec<Option<FieldFormat>>,
    /// Layouts some fields take in some messages, and which fields have any (a bit each):
    /// one test per field on the hot path.
    variants: Vec<Variant>,
    varies: u128,
}

impl Dialect {
    /// Loads a dialect from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        Self::from_def(toml::from_str(text)?)
    }

    /// Loads a dialect from JSON text.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        Self::from_def(serde_json::from_str(text)?)
    }

    /// Resolves a parsed definition, checking every field.
    pub fn from_def(def: DialectDef) -> Result<Self, SpecError> {
        let mut fields: Vec<Option<FieldSpec>> = vec![None; 129];
        let mut variants = Vec::new();
        let mut varies = 0u128;
        for (key, fdef) in def.fields {
            let n: u8 = key.trim().parse().map_err(|_| SpecError::Field {
                field: key.clone(),
                reason: "field keys are numbers 2 to 128".into(),
            })?;
            if !(2..=128).contains(&n) {
                return Err(SpecError::Field {
                    field: key,
                    reason: "field numbers run from 2 to 128 (field 1 is the secondary bitmap)"
                        .into(),
                });
            }
            for v in &fdef.when {
                let mut mtis = Vec::with_capacity(v.mti.len());
                for m in &v.mti {
                    let b: [u8; 4] = m
                        .as_bytes()
                        .try_into()
                        .ok()
                        .filter(|b: &[u8; 4]| b.iter().all(u8::is_ascii_digit))
                        .ok_or_else(|| SpecError::Field {
                            field: key.clone(),
                            reason: format!("`when` MTI {m:?} is not 4 digits"),
                        })?;
                    mtis.push(b);
                }
                let vdef = FieldDef {
                    name: if v.name.is_empty() {
                        fdef.name.clone()
                    } else {
                        v.name.clone()
                    },
                    len: v.len,
                    max: v.max,
                    data: v.data,
                    prefix: v.prefix,
                    count: None,
                    pad: fdef.pad.clone(),
                    subfields: Vec::new(),
                    tlv: false,
                    when: Vec::new(),
                };
                variants.push(Variant {
                    field: n,
                    mtis,
                    spec: FieldSpec::resolve(&key, vdef, def.prefix)?,
                });
                varies |= 1u128 << (n - 1);
            }
            fields[n as usize] = Some(FieldSpec::resolve(&key, fdef, def.prefix)?);
        }
        let formats = fields
            .iter()
            .map(|f| f.as_ref().map(|f| f.format))
            .collect();
        Ok(Self {
            formats,
            variants,
            varies,
            name: def.name,
            description: def.description,
            framing: def.framing,
            header: def.header,
            mti: def.mti,
            bitmap: def.bitmap,
            fields,
        })
    }

    /// A built-in dialect by name: `cup-pos`, `iso87-ascii` or `iso87-binary`.
    pub fn builtin(name: &str) -> Result<&'static Dialect, SpecError> {
        match name {
            "cup-pos" | "cup" => Ok(Self::cup_pos()),
            "cup-pos-sm4" => Ok(Self::cup_pos_sm4()),
            "iso87-binary-sm4" => Self::builtin_sm4("iso87-binary"),
            "iso87-ascii-sm4" => Self::builtin_sm4("iso87-ascii"),
            "iso87-ascii" => Ok(Self::iso87_ascii()),
            "iso87-binary" => Ok(Self::iso87_binary()),
            other => Err(SpecError::UnknownDialect(other.to_owned())),
        }
    }

    /// The CUP POS dialect for SM4 (国密) terminals: field 52 carries the 16-byte SM4 PIN
    /// block; everything else is [`Dialect::cup_pos`]'s.
    pub fn cup_pos_sm4() -> &'static Dialect {
        static D: OnceLock<Dialect> = OnceLock::new();
        D.get_or_init(|| sm4_variant("cup-pos"))
    }

    /// A built-in dialect as SM4 parties use it: a CUP POS terminal's field 52 holds the
    /// 16-byte SM4 PIN block (`cup-pos-sm4`); between switches the SM4 PIN block travels in
    /// field 63 as usage `SM` and 16 bytes, as UnionPay's inter-switch messages carry it, so
    /// 63 holds bytes (`iso87-binary-sm4`: binary, `iso87-ascii-sm4`: hex).
    pub fn builtin_sm4(name: &str) -> Result<&'static Dialect, SpecError> {
        static BINARY: OnceLock<Dialect> = OnceLock::new();
        static ASCII: OnceLock<Dialect> = OnceLock::new();
        match name {
            "cup-pos" | "cup" => Ok(Self::cup_pos_sm4()),
            "iso87-binary" => Ok(BINARY.get_or_init(|| sm4_variant("iso87-binary"))),
            "iso87-ascii" => Ok(ASCII.get_or_init(|| sm4_variant("iso87-ascii"))),
            other => Err(SpecError::UnknownDialect(other.to_owned())),
        }
    }

    /// The dialect file a built-in dialect is made from (TOML), to start one's own from.
    pub fn builtin_source(name: &str) -> Option<&'static str> {
        match name {
            "cup-pos" | "cup" => Some(include_str!("dialects/cup-pos.toml")),
            "iso87-ascii" => Some(include_str!("dialects/iso87-ascii.toml")),
            "iso87-binary" => Some(include_str!("dialects/iso87-binary.toml")),
            _ => None,
        }
    }

    /// The China UnionPay POS terminal dialect (TPDU + 6-byte header, BCD MTI, binary bitmap).
    pub fn cup_pos() -> &'static Dialect {
        static D: OnceLock<Dialect> = OnceLock::new();
        D.get_or_init(|| builtin_from(include_str!("dialects/cup-pos.toml")))
    }

    /// ISO 8583:1987 ASCII, field definitions equal to jPOS's `ISO87APackager`.
    pub fn iso87_ascii() -> &'static Dialect {
        static D: OnceLock<Dialect> = OnceLock::new();
        D.get_or_init(|| builtin_from(include_str!("dialects/iso87-ascii.toml")))
    }

    /// ISO 8583:1987 binary, field definitions equal to jPOS's `ISO87BPackager`.
    pub fn iso87_binary() -> &'static Dialect {
        static D: OnceLock<Dialect> = OnceLock::new();
        D.get_or_init(|| builtin_from(include_str!("dialects/iso87-binary.toml")))
    }

    /// The dialect's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line on what the dialect is.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The stream length indicator.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The fixed header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// MTI encoding.
    pub fn mti_encoding(&self) -> MtiEncoding {
        self.mti
    }

    /// Bitmap encoding.
    pub fn bitmap_encoding(&self) -> BitmapEncoding {
        self.bitmap
    }

    /// The wire format of field `n`, if the dialect defines it.
    #[inline]
    pub fn format(&self, n: u8) -> Option<&FieldFormat> {
        self.formats.get(n as usize).and_then(Option::as_ref)
    }

    /// Field `n`'s wire format in a message of `mti` (a field's layout may depend on the
    /// message: see [`FieldDef::when`]).
    #[inline]
    pub fn format_for(&self, n: u8, mti: &crate::Mti) -> Option<&FieldFormat> {
        match self.variant(n, mti) {
            Some(v) => Some(&v.spec.format),
            None => self.format(n),
        }
    }

    /// Field `n`'s specification in a message of `mti`.
    #[inline]
    pub fn field_for(&self, n: u8, mti: &crate::Mti) -> Option<&FieldSpec> {
        match self.variant(n, mti) {
            Some(v) => Some(&v.spec),
            None => self.field(n),
        }
    }

    #[inline]
    fn variant(&self, n: u8, mti: &crate::Mti) -> Option<&Variant> {
        if n == 0 || (self.varies >> (n - 1)) & 1 == 0 {
            return None;
        }
        let m = mti.as_bytes();
        self.variants
            .iter()
            .find(|v| v.field == n && v.mtis.iter().any(|x| x == m))
    }

    /// The specification of field `n`, if the dialect defines it.
    #[inline]
    pub fn field(&self, n: u8) -> Option<&FieldSpec> {
        self.fields.get(n as usize).and_then(Option::as_ref)
    }
}

/// Built-in dialect `base` as SM4 parties use it (see [`Dialect::builtin_sm4`]).
fn sm4_variant(base: &str) -> Dialect {
    let source = Dialect::builtin_source(base).unwrap_or_default();
    let mut def: DialectDef = match toml::from_str(source) {
        Ok(d) => d,
        Err(e) => panic!("built-in dialect is invalid: {e}"),
    };
    def.name = format!("{base}-sm4");
    if base == "cup-pos" {
        def.description = format!("{base} as SM4 terminals use it: field 52 is 16 bytes");
        if let Some(f) = def.fields.get_mut("52") {
            f.len = Length::Fixed(16);
            f.name = "PIN data (SM4 PIN block)".into();
        }
    } else {
        def.description = format!("{base} between SM4 parties: field 63 holds bytes (usage SM)");
        let text = def.mti == MtiEncoding::Ascii;
        if let Some(f) = def.fields.get_mut("63") {
            f.data = if text {
                Encoding::Hex
            } else {
                Encoding::Binary
            };
            f.name = "reserved private (usage SM: the SM4 PIN block)".into();
        }
    }
    match Dialect::from_def(def) {
        Ok(d) => d,
        // The built-in files are checked by the crate's tests.
        Err(e) => panic!("built-in dialect is invalid: {e}"),
    }
}

fn builtin_from(text: &str) -> Dialect {
    match Dialect::from_toml(text) {
        Ok(d) => d,
        // The built-in files are compiled in and checked by the crate's tests
        // (`builtin_dialects_load`), so this arm is unreachable in a tested build.
        Err(e) => panic!("built-in dialect is invalid: {e}"),
    }
}
