//! The decoded message: a view whose every field borrows from the frame.

use std::fmt;

use crate::bitmap::Bitmap;
use crate::digits::Digits;
use crate::ebcdic;
use crate::error::{Part, WireError, WireErrorKind};
use crate::field::{self, Span, take};
use crate::header::{CupHeader, TPDU_LEN, Tpdu};
use crate::mask;
use crate::mti::Mti;
use crate::spec::{BitmapEncoding, Dialect, Encoding, FieldSpec, Header, MtiEncoding};
use crate::tlv;

/// A decoded ISO 8583 message. Nothing is copied out of the frame: fields are read in place
/// through [`Field`], [`Digits`] and `&str`/`&[u8]` views.
///
/// `Debug` and `Display` mask fields 2, 35, 36, 45, 52 and 55.
#[derive(Clone)]
pub struct Message<'a> {
    dialect: &'a Dialect,
    frame: &'a [u8],
    mti: Mti,
    bitmap: Bitmap,
    /// Where the bitmap (primary and secondary) sits in the frame.
    bitmap_at: (usize, usize),
    spans: [Span; 129],
}

/// Decodes one whole message (without its framing length) in `dialect`.
///
/// Every byte must belong to the message: a short frame, a lying length prefix, a bad BCD
/// nibble, a field the dialect does not define or bytes left over give a [`WireError`]
/// naming the field and offset. Never panics, whatever the input.
pub fn decode<'a>(dialect: &'a Dialect, frame: &'a [u8]) -> Result<Message<'a>, WireError> {
    let header_len = dialect.header().len();
    let (_, rest) = take(frame, header_len, Part::Header, 0)?;
    let mut pos = header_len;

    let (mti, rest) = match dialect.mti_encoding() {
        MtiEncoding::Bcd => {
            let (m, rest) = take(rest, 2, Part::Mti, pos)?;
            let mut d = [0u8; 4];
            for (i, b) in m.iter().enumerate() {
                for (j, nib) in [b >> 4, b & 0x0F].into_iter().enumerate() {
                    if nib > 9 {
                        return Err(WireError::new(
                            Part::Mti,
                            pos + i,
                            WireErrorKind::BadBcdNibble { nibble: nib },
                        ));
                    }
                    d[i * 2 + j] = b'0' + nib;
                }
            }
            pos += 2;
            (Mti::from_checked(d), rest)
        }
        MtiEncoding::Ascii => {
            let (m, rest) = take(rest, 4, Part::Mti, pos)?;
            let d: [u8; 4] = [m[0], m[1], m[2], m[3]];
            if let Some(i) = d.iter().position(|b| !b.is_ascii_digit()) {
                return Err(WireError::new(
                    Part::Mti,
                    pos + i,
                    WireErrorKind::NonAscii { byte: d[i] },
                ));
            }
            pos += 4;
            (Mti::from_checked(d), rest)
        }
    };

    let bitmap_start = pos;
    let (primary, rest, used) = read_bitmap_word(dialect.bitmap_encoding(), rest, pos)?;
    pos += used;
    let (secondary, mut rest) = if primary >> 63 == 1 {
        let (s, rest, used) = read_bitmap_word(dialect.bitmap_encoding(), rest, pos)?;
        pos += used;
        (s, rest)
    } else {
        (0, rest)
    };
    let bitmap = Bitmap::from_words(primary, secondary);
    let bitmap_at = (bitmap_start, pos);

    let mut spans = [Span::default(); 129];
    for n in bitmap.fields() {
        let spec = dialect.format_for(n, &mti).ok_or(WireError::new(
            Part::Field(n),
            pos,
            WireErrorKind::UnknownField,
        ))?;
        let (span, next) = field::decode(spec, n, rest, pos)?;
        spans[usize::from(n)] = span;
        rest = &rest[next - pos..];
        pos = next;
    }
    if !rest.is_empty() {
        return Err(WireError::new(
            Part::End,
            pos,
            WireErrorKind::TrailingBytes { count: rest.len() },
        ));
    }
    Ok(Message {
        dialect,
        frame,
        mti,
        bitmap,
        bitmap_at,
        spans,
    })
}

/// ASCII hex digit values; `0x80` marks a byte that is not a hex digit.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'A' as usize + i] = 10 + i as u8;
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn read_bitmap_word(
    enc: BitmapEncoding,
    input: &[u8],
    pos: usize,
) -> Result<(u64, &[u8], usize), WireError> {
    match enc {
        BitmapEncoding::Binary => {
            let (b, rest) = take(input, 8, Part::Bitmap, pos)?;
            let word = b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x));
            Ok((word, rest, 8))
        }
        BitmapEncoding::Hex => {
            let (b, rest) = take(input, 16, Part::Bitmap, pos)?;
            let mut word = 0u64;
            let mut bad = 0u8;
            for c in b {
                let v = HEX_VALUE[usize::from(*c)];
                bad |= v;
                word = (word << 4) | u64::from(v & 0x0F);
            }
            if bad & 0x80 != 0 {
                let i = b
                    .iter()
                    .position(|c| HEX_VALUE[usize::from(*c)] & 0x80 != 0)
                    .unwrap_or(0);
                return Err(WireError::new(Part::Bitmap, pos + i, WireErrorKind::BadHex));
            }
            Ok((word, rest, 16))
        }
    }
}

impl<'a> Message<'a> {
    /// The dialect the message was decoded with.
    pub fn dialect(&self) -> &'a Dialect {
        self.dialect
    }

    /// The whole frame.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// The dialect's header bytes (for CUP POS: TPDU and 6-byte header).
    pub fn header(&self) -> &'a [u8] {
        &self.frame[..self.dialect.header().len()]
    }

    /// The TPDU, in the CUP POS dialect.
    pub fn tpdu(&self) -> Option<Tpdu> {
        match self.dialect.header() {
            Header::CupPos => Tpdu::parse(self.frame),
            _ => None,
        }
    }

    /// The 6-byte CUP header, in the CUP POS dialect.
    pub fn cup_header(&self) -> Option<CupHeader> {
        match self.dialect.header() {
            Header::CupPos => CupHeader::parse(self.frame.get(TPDU_LEN..)?),
            _ => None,
        }
    }

    /// The message type indicator.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// The fields present (bit 1 as it was on the wire).
    pub fn bitmap(&self) -> Bitmap {
        self.bitmap
    }

    /// The bitmap's bytes as they were on the wire (primary, then secondary if sent).
    pub fn bitmap_wire(&self) -> &'a [u8] {
        self.frame
            .get(self.bitmap_at.0..self.bitmap_at.1)
            .unwrap_or_default()
    }

    /// Whether field `n` is present.
    #[inline]
    pub fn has(&self, n: u8) -> bool {
        n >= 2 && self.bitmap.contains(n)
    }

    /// Field `n`, if present.
    #[inline]
    pub fn field(&self, n: u8) -> Option<Field<'a>> {
        if !self.has(n) {
            return None;
        }
        let spec = self.dialect.field_for(n, &self.mti)?;
        let s = self.spans[usize::from(n)];
        let start = s.start as usize;
        let data = self.frame.get(start..start + usize::from(s.len))?;
        Some(Field {
            number: n,
            spec,
            data,
            units: usize::from(s.units),
        })
    }

    /// Where field `n`'s data sits in the frame (after its length prefix, if any).
    pub fn data_range(&self, n: u8) -> Option<std::ops::Range<usize>> {
        if !self.has(n) {
            return None;
        }
        let s = self.spans[usize::from(n)];
        let start = s.start as usize;
        Some(start..start + usize::from(s.len))
    }

    /// All fields present, ascending.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + '_ {
        self.bitmap.fields().filter_map(|n| self.field(n))
    }

    /// Field `n` as digits (numeric and track fields).
    #[inline]
    pub fn digits(&self, n: u8) -> Option<Digits<'a>> {
        self.field(n)?.digits()
    }

    /// Field `n` as text (ASCII fields).
    #[inline]
    pub fn text(&self, n: u8) -> Option<&'a str> {
        self.field(n)?.text()
    }

    /// Field `n`'s data bytes as they are on the wire (binary fields).
    #[inline]
    pub fn bytes(&self, n: u8) -> Option<&'a [u8]> {
        Some(self.field(n)?.wire())
    }

    /// Field `n`'s data as bytes whatever its encoding: borrowed for binary fields, decoded
    /// for hex-encoded ones (ISO 87 ASCII carries 52 and 64 as hex characters). `None` when
    /// absent or not valid hex.
    pub fn binary(&self, n: u8) -> Option<std::borrow::Cow<'a, [u8]>> {
        let f = self.field(n)?;
        let wire = f.wire();
        if f.spec.format.data != Encoding::Hex {
            return Some(std::borrow::Cow::Borrowed(wire));
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        wire.chunks(2)
            .map(|p| match p {
                [h, l] => Some(nibble(*h)? << 4 | nibble(*l)?),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
            .map(std::borrow::Cow::Owned)
    }

    /// A field or a part of one by path: `"41"`, `"60.2"` (positional subfield) or
    /// `"55.9F26"` (BER-TLV tag).
    pub fn get(&self, path: &str) -> Result<Option<Value<'a>>, PathError> {
        let (num, sub) = match path.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (path, None),
        };
        let n: u8 = num.parse().map_err(|_| PathError(path.to_owned()))?;
        if !(2..=128).contains(&n) {
            return Err(PathError(path.to_owned()));
        }
        let Some(field) = self.field(n) else {
            return Ok(None);
        };
        match sub {
            None => Ok(Some(field.value())),
            Some(s) if field.spec.tlv => {
                let tag = u32::from_str_radix(s, 16).map_err(|_| PathError(path.to_owned()))?;
                Ok(field.tlv(tag).map(Value::Bytes))
            }
            Some(s) => {
                let id: u8 = s.parse().map_err(|_| PathError(path.to_owned()))?;
                if !field.spec.subfields.iter().any(|f| f.id == id) {
                    return Err(PathError(path.to_owned()));
                }
                Ok(field.subfield(id))
            }
        }
    }

    /// The bytes a CUP MAC covers: from the MTI to the end of the field before 64
    /// (with bit 64 set in the bitmap as it is on the wire).
    pub fn mac_data(&self) -> &'a [u8] {
        let start = self.dialect.header().len();
        let end = if self.has(64) {
            self.spans[64].start as usize
        } else {
            self.frame.len()
        };
        self.frame.get(start..end).unwrap_or_default()
    }
}

/// A path that does not name a field or subfield of the dialect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad field path {0:?}: use N, N.SUB or N.TAG (hex) on a TLV field")]
pub struct PathError(pub String);

/// One field borrowed from a frame.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    number: u8,
    spec: &'a FieldSpec,
    data: &'a [u8],
    units: usize,
}

impl<'a> Field<'a> {
    /// The field number.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The field's specification.
    pub fn spec(&self) -> &'a FieldSpec {
        self.spec
    }

    /// The data bytes as on the wire (no length prefix).
    #[inline]
    pub fn wire(&self) -> &'a [u8] {
        self.data
    }

    /// Length in the field's units (digits for digit encodings, bytes otherwise).
    pub fn units(&self) -> usize {
        self.units
    }

    /// The field as digits, for numeric and track encodings.
    #[inline]
    pub fn digits(&self) -> Option<Digits<'a>> {
        match self.spec.format.data {
            Encoding::Bcd => Some(Digits::packed(self.data, self.units % 2, self.units)),
            Encoding::BcdLeft | Encoding::Track => Some(Digits::packed(self.data, 0, self.units)),
            Encoding::AsciiDigits | Encoding::AsciiTrack => Some(Digits::text(self.data)),
            _ => None,
        }
    }

    /// The field as text, for ASCII encodings (and hex text), and for GBK text that is all
    /// ASCII (see [`Field::decoded_text`] for the rest).
    #[inline]
    pub fn text(&self) -> Option<&'a str> {
        match self.spec.format.data {
            Encoding::Ascii | Encoding::AsciiDigits | Encoding::AsciiTrack | Encoding::Hex => {
                std::str::from_utf8(self.data).ok()
            }
            Encoding::Gbk if self.data.is_ascii() => std::str::from_utf8(self.data).ok(),
            _ => None,
        }
    }

    /// The field as text in any text encoding, GBK decoded: `None` for digits and bytes.
    pub fn decoded_text(&self) -> Option<std::borrow::Cow<'a, str>> {
        match self.spec.format.data {
            Encoding::Gbk => crate::field::gbk_text(self.data),
            Encoding::Ebcdic => Some(std::borrow::Cow::Owned(
                self.data
                    .iter()
                    .map(|e| ebcdic::to_ascii(*e).map_or('.', char::from))
                    .collect(),
            )),
            _ => self.text().map(std::borrow::Cow::Borrowed),
        }
    }

    /// The field's natural value: digits, text or bytes.
    pub fn value(&self) -> Value<'a> {
        if let Some(d) = self.digits() {
            Value::Digits(d)
        } else if let (Some(t), false) = (self.text(), self.spec.format.data == Encoding::Hex) {
            Value::Text(t)
        } else {
            Value::Bytes(self.data)
        }
    }

    /// Positional subfield `id` (as in `60.2`), without copying. A trailing subfield the
    /// message is too short to hold is `None`; one cut short is returned as far as it goes.
    pub fn subfield(&self, id: u8) -> Option<Value<'a>> {
        let mut from = 0usize;
        for s in &self.spec.subfields {
            let len = usize::from(s.len);
            if s.id == id {
                if from >= self.units {
                    return None;
                }
                let len = len.min(self.units - from);
                return match self.value() {
                    Value::Digits(d) => d.slice(from, len).map(Value::Digits),
                    Value::Text(t) => t.get(from..from + len).map(Value::Text),
                    Value::Bytes(b) => b.get(from..from + len).map(Value::Bytes),
                };
            }
            from += len;
        }
        None
    }

    /// The value of BER-TLV `tag` in this field (`0x9F26`), if present.
    pub fn tlv(&self, tag: u32) -> Option<&'a [u8]> {
        tlv::find(self.data, tag)
    }

    /// The value in the convention of the published vectors: digits as a string (track
    /// separator `D`, or `=` in ASCII), text as is, binary as upper-case hex, an amount as its
    /// sign then digits. Unmasked: use [`Field::masked`] for anything shown to people.
    pub fn canonical(&self) -> String {
        match self.spec.format.data {
            Encoding::BcdAmount => {
                let mut s = String::with_capacity(self.units);
                if let Some((sign, rest)) = self.data.split_first() {
                    s.push(char::from(*sign));
                    let n = self.units.saturating_sub(1);
                    Digits::packed(rest, n % 2, n).push_to(&mut s);
                }
                s
            }
            Encoding::Ebcdic | Encoding::Gbk => self
                .decoded_text()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            Encoding::Hex => self
                .data
                .iter()
                .map(|c| char::from(c.to_ascii_uppercase()))
                .collect(),
            _ => self.value().to_string(),
        }
    }

    /// The value as [`Field::canonical`] gives it, with card data masked: field 2 as the first
    /// six and last four digits, track data's account part likewise and the rest hidden, PIN
    /// and chip data (52, 55) and track 1 (45) replaced by their length.
    pub fn masked(&self) -> String {
        mask::masked(self.number, || self.canonical(), self.data.len())
    }
}

/// A field's value as its encoding presents it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Decimal digits (BCD or ASCII).
    Digits(Digits<'a>),
    /// ASCII text.
    Text(&'a str),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The digits, if this is a digit value.
    pub fn digits(self) -> Option<Digits<'a>> {
        match self {
            Value::Digits(d) => Some(d),
            _ => None,
        }
    }

    /// The text, if this is a text value.
    pub fn text(self) -> Option<&'a str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The bytes, if this is a byte value.
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Digits and text as they are; bytes as upper-case hex.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Digits(d) => fmt::Display::fmt(d, f),
            Value::Text(t) => f.write_str(t),
            Value::Bytes(b) => {
                for x in *b {
                    write!(f, "{x:02X}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({}: {})", self.number, self.masked())
    }
}

/// Masked: card data never appears.
impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_struct("Message");
        m.field("dialect", &self.dialect.name())
            .field("mti", &self.mti);
        if let Some(t) = self.tpdu() {
            m.field("tpdu", &t);
        }
        if let Some(h) = self.cup_header() {
            m.field("header", &h);
        }
        let fields: Vec<(u8, String)> = self.fields().map(|fl| (fl.number, fl.masked())).collect();
        m.field("fields", &fields).finish()
    }
}

/// One line per field, masked:
///
/// ```text
/// MTI 0200
///   2 622424******0113
///   3 000000
/// ```
impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MTI {}", self.mti)?;
        for fl in self.fields() {
            write!(f, "\n  {:>3} {}", fl.number, fl.masked())?;
        }
        Ok(())
    }
}
