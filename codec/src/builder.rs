//! Building and encoding messages.
//!
//! Set fields by number with their logical values (ASCII digits for numeric fields, text for
//! text, raw bytes for binary); the bitmap, secondary bitmap and length prefixes are computed
//! at [`MessageBuilder::encode`] time, into the caller's buffer.

use std::borrow::Cow;

use bytes::BufMut;

use crate::bitmap::Bitmap;
use crate::error::EncodeError;
use crate::field;
use crate::message::Message;
use crate::mti::Mti;
use crate::spec::{BitmapEncoding, Dialect, MtiEncoding};

/// A field value given to the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldInput<'b> {
    /// The logical value: digits, text or raw bytes, encoded by the field's spec.
    Logical(Cow<'b, [u8]>),
    /// Data bytes exactly as on the wire (as a decoded [`crate::Field::wire`] gives them)
    /// and the field's length in its units; only the prefix is computed.
    Wire {
        /// Data bytes.
        data: Cow<'b, [u8]>,
        /// Length in the field's units.
        units: usize,
    },
}

impl<'b> From<&'b str> for FieldInput<'b> {
    fn from(s: &'b str) -> Self {
        FieldInput::Logical(Cow::Borrowed(s.as_bytes()))
    }
}

impl<'b> From<&'b String> for FieldInput<'b> {
    fn from(s: &'b String) -> Self {
        FieldInput::Logical(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<String> for FieldInput<'_> {
    fn from(s: String) -> Self {
        FieldInput::Logical(Cow::Owned(s.into_bytes()))
    }
}

impl<'b> From<&'b [u8]> for FieldInput<'b> {
    fn from(b: &'b [u8]) -> Self {
        FieldInput::Logical(Cow::Borrowed(b))
    }
}

impl<'b, const N: usize> From<&'b [u8; N]> for FieldInput<'b> {
    fn from(b: &'b [u8; N]) -> Self {
        FieldInput::Logical(Cow::Borrowed(b))
    }
}

impl From<Vec<u8>> for FieldInput<'_> {
    fn from(b: Vec<u8>) -> Self {
        FieldInput::Logical(Cow::Owned(b))
    }
}

/// Builds a message field by field, then encodes it in a dialect.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use codec::{Dialect, MessageBuilder, Mti, decode};
///
/// let dialect = Dialect::cup_pos();
/// let mut b = MessageBuilder::new(Mti::parse("0800").ok_or("bad MTI")?);
/// b.header(&[0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x10, 0x03])
///     .set(11, "000105")
///     .set(41, "10000001")
///     .set(42, "898310048990001")
///     .set(60, "00000001003")
///     .set(63, "001");
/// let bytes = b.encode_to_vec(dialect)?;
///
/// let msg = decode(dialect, &bytes)?;
/// assert_eq!(msg.mti().as_str(), "0800");
/// assert_eq!(msg.text(41), Some("10000001"));
/// assert_eq!(msg.get("60.3")?.map(|v| v.to_string()).as_deref(), Some("003"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MessageBuilder<'b> {
    header: Cow<'b, [u8]>,
    mti: Mti,
    fields: Vec<Entry<'b>>,
    /// The bitmap of the message this was made from, as on the wire: written again as it
    /// was while the fields present are the same (a host may send lower-case hex, or an
    /// empty secondary bitmap), so `from_message` gives back the same bytes.
    wire_bitmap: Option<(Bitmap, Cow<'b, [u8]>, BitmapEncoding)>,
}

/// A stored field, kept small (32 bytes) because a builder pushes one per field.
#[derive(Clone, Debug)]
struct Entry<'b> {
    n: u8,
    /// Units of a wire value, or [`LOGICAL`] for a logical value.
    units: u32,
    data: Cow<'b, [u8]>,
}

const LOGICAL: u32 = u32::MAX;

impl<'b> Entry<'b> {
    fn new(n: u8, input: FieldInput<'b>) -> Self {
        match input {
            FieldInput::Logical(data) => Self {
                n,
                units: LOGICAL,
                data,
            },
            FieldInput::Wire { data, units } => Self {
                n,
                units: u32::try_from(units).unwrap_or(LOGICAL - 1),
                data,
            },
        }
    }
}

impl<'b> MessageBuilder<'b> {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Self {
        Self {
            header: Cow::Borrowed(&[]),
            mti,
            fields: Vec::with_capacity(24),
            wire_bitmap: None,
        }
    }

    /// A builder holding every field of `msg` as its wire bytes (no copies), so that
    /// `encode` gives back the same bytes; change fields before encoding to build a reply.
    pub fn from_message(msg: &Message<'b>) -> Self {
        let mut b = Self::new(msg.mti());
        b.header = Cow::Borrowed(msg.header());
        let mut fields = msg.bitmap();
        fields.remove(1);
        b.wire_bitmap = Some((
            fields,
            Cow::Borrowed(msg.bitmap_wire()),
            msg.dialect().bitmap_encoding(),
        ));
        for f in msg.fields() {
            b.fields.push(Entry {
                n: f.number(),
                // Decoded lengths are at most 9999 units.
                units: f.units() as u32,
                data: Cow::Borrowed(f.wire()),
            });
        }
        b
    }

    /// The MTI.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// Replaces the MTI.
    pub fn set_mti(&mut self, mti: Mti) -> &mut Self {
        self.mti = mti;
        self
    }

    /// Sets the dialect's header bytes (for CUP POS: TPDU then the 6-byte header).
    pub fn header(&mut self, header: impl Into<Cow<'b, [u8]>>) -> &mut Self {
        self.header = header.into();
        self
    }

    /// Sets field `n` (2–128) to a logical value, replacing any earlier value.
    pub fn set(&mut self, n: u8, value: impl Into<FieldInput<'b>>) -> &mut Self {
        let entry = Entry::new(n, value.into());
        match self.fields.last() {
            Some(last) if last.n < n => self.fields.push(entry),
            None => self.fields.push(entry),
            _ => match self.fields.binary_search_by_key(&n, |e| e.n) {
                Ok(i) => self.fields[i] = entry,
                Err(i) => self.fields.insert(i, entry),
            },
        }
        self
    }

    /// Removes field `n`.
    pub fn remove(&mut self, n: u8) -> &mut Self {
        self.fields.retain(|e| e.n != n);
        self
    }

    /// Whether field `n` is set.
    pub fn has(&self, n: u8) -> bool {
        self.fields.iter().any(|e| e.n == n)
    }

    /// Keeps only the fields for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(u8) -> bool) -> &mut Self {
        self.fields.retain(|e| keep(e.n));
        self
    }

    /// Encodes into `out`, returning the number of bytes written.
    pub fn encode(&self, dialect: &Dialect, out: &mut impl BufMut) -> Result<usize, EncodeError> {
        self.encode_impl(dialect, out).map(|(n, _)| n)
    }

    /// Encodes, returning the bytes written and the offset (from the start of this message)
    /// of field 64's data, if it is set.
    fn encode_impl(
        &self,
        dialect: &Dialect,
        out: &mut impl BufMut,
    ) -> Result<(usize, Option<usize>), EncodeError> {
        let want = dialect.header().len();
        if self.header.len() != want {
            return Err(EncodeError::BadHeader {
                got: self.header.len(),
                want,
            });
        }
        // Bytes written so far, from the buffer's own accounting (no unsafe wrapper needed).
        let room = out.remaining_mut();
        let written = |out: &mut _| room - BufMut::remaining_mut(out);
        out.put_slice(&self.header);
        match dialect.mti_encoding() {
            MtiEncoding::Bcd => out.put_slice(&self.mti.to_bcd()),
            MtiEncoding::Ascii => out.put_slice(self.mti.as_bytes()),
        }
        let mut bitmap = Bitmap::new();
        for e in &self.fields {
            if !(2..=128).contains(&e.n) {
                return Err(EncodeError::BadFieldNumber(e.n));
            }
            bitmap.insert(e.n);
        }
        match &self.wire_bitmap {
            Some((fields, wire, encoding))
                if *fields == bitmap && *encoding == dialect.bitmap_encoding() =>
            {
                out.put_slice(wire);
            }
            _ => {
                write_bitmap_word(out, dialect.bitmap_encoding(), bitmap.primary());
                if bitmap.needs_secondary() {
                    write_bitmap_word(out, dialect.bitmap_encoding(), bitmap.secondary());
                }
            }
        }
        let mut mac_at = None;
        for e in &self.fields {
            let spec = dialect
                .format_for(e.n, &self.mti)
                .ok_or(EncodeError::UnknownField(e.n))?;
            if e.n == 64 {
                mac_at = Some(written(out));
            }
            if e.units == LOGICAL {
                field::encode(spec, e.n, &e.data, out)?;
            } else {
                field::encode_wire(spec, e.n, &e.data, e.units as usize, out)?;
            }
        }
        Ok((written(out), mac_at))
    }

    /// Encodes into a new vector.
    pub fn encode_to_vec(&self, dialect: &Dialect) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(256);
        self.encode(dialect, &mut v)?;
        Ok(v)
    }

    /// Encodes with a MAC in field 64: the field is set to zeros, the message encoded, `mac`
    /// called on the bytes from the MTI to the end of the field before 64, and its result
    /// written into field 64. Returns the bytes written; [`EncodeError::MacUnavailable`] when
    /// `mac` gives nothing (the buffer then holds the message with a zero MAC: discard it).
    pub fn encode_with_mac<B, F>(
        &mut self,
        dialect: &Dialect,
        out: &mut B,
        mac: F,
    ) -> Result<usize, EncodeError>
    where
        B: BufMut + AsRef<[u8]> + AsMut<[u8]>,
        F: FnOnce(&[u8]) -> Option<[u8; 8]>,
    {
        let slot = self.encode_for_mac(dialect, out)?;
        let value = mac(slot.data(out.as_ref())).ok_or(EncodeError::MacUnavailable)?;
        slot.fill(out.as_mut(), &value)?;
        Ok(slot.written)
    }

    /// The first half of [`MessageBuilder::encode_with_mac`], for a MAC computed elsewhere
    /// (an HSM across the network): encodes with field 64 zeroed and says where the MAC
    /// data is and where the MAC goes; [`MacSlot::fill`] writes it.
    pub fn encode_for_mac<B>(
        &mut self,
        dialect: &Dialect,
        out: &mut B,
    ) -> Result<MacSlot, EncodeError>
    where
        B: BufMut + AsRef<[u8]>,
    {
        self.set(64, FieldInput::Logical(Cow::Borrowed(&[0u8; 8])));
        let start = out.as_ref().len();
        let (n, mac_at) = self.encode_impl(dialect, out)?;
        // Field 64 was set above, so the encoder recorded where its data starts; it is a
        // fixed 8-byte field, binary or (ISO 87 ASCII) as 16 hex characters.
        let mac_at = start + mac_at.ok_or(EncodeError::UnknownField(64))?;
        let hex = dialect
            .format(64)
            .is_some_and(|f| f.data == crate::spec::Encoding::Hex);
        Ok(MacSlot {
            data_start: start + dialect.header().len(),
            mac_at,
            hex,
            written: n,
        })
    }
}

/// Where a message encoded by [`MessageBuilder::encode_for_mac`] keeps its MAC data and
/// its MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacSlot {
    data_start: usize,
    mac_at: usize,
    hex: bool,
    /// Bytes the encoding wrote.
    pub written: usize,
}

impl MacSlot {
    /// The bytes the MAC covers: from the MTI to the end of the field before 64.
    pub fn data<'a>(&self, out: &'a [u8]) -> &'a [u8] {
        out.get(self.data_start..self.mac_at).unwrap_or_default()
    }

    /// Writes `value` into field 64 (as 16 hex characters where the dialect says so).
    pub fn fill(&self, out: &mut [u8], value: &[u8; 8]) -> Result<(), EncodeError> {
        let width = if self.hex { 16 } else { 8 };
        let slot =
            out.get_mut(self.mac_at..self.mac_at + width)
                .ok_or(EncodeError::WrongLength {
                    field: 64,
                    len: 0,
                    want: 8,
                })?;
        if self.hex {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            for (i, b) in value.iter().enumerate() {
                slot[2 * i] = HEX[usize::from(b >> 4)];
                slot[2 * i + 1] = HEX[usize::from(b & 15)];
            }
        } else {
            slot.copy_from_slice(value);
        }
        Ok(())
    }
}

fn write_bitmap_word(out: &mut impl BufMut, enc: BitmapEncoding, word: u64) {
    match enc {
        BitmapEncoding::Binary => out.put_u64(word),
        BitmapEncoding::Hex => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            for i in (0..16).rev() {
                out.put_u8(HEX[((word >> (i * 4)) & 0xF) as usize]);
            }
        }
    }
}
