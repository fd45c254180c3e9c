//! One field on the wire: its length prefix and its data, decoded in place and encoded into a
//! buffer.
//!
//! ```text
//! fixed  n6  BCD       [00 04 03]                    "000403"
//! LLVAR  n..19 BCD     [16][62 24 24 29 00 00 01 13]  prefix counts digits
//! LLLVAR ans...163     [00 03][30 30 31]             prefix counts bytes: "001"
//! ```

use bytes::BufMut;
use nom::bytes::complete::take as nom_take;

use crate::ebcdic;
use crate::error::{EncodeError, Part, WireError, WireErrorKind};
use crate::spec::{Encoding, FieldFormat, Length, PrefixEncoding, Var};

/// Where a decoded field's data sits in the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    /// Offset of the data (after any prefix).
    pub(crate) start: u32,
    /// Data bytes on the wire.
    pub(crate) len: u16,
    /// Length in the field's units (digits for digit encodings, bytes otherwise).
    pub(crate) units: u16,
}

/// Takes `n` bytes at `offset` or reports a truncation of `part`.
#[inline]
pub(crate) fn take(
    input: &[u8],
    n: usize,
    part: Part,
    offset: usize,
) -> Result<(&[u8], &[u8]), WireError> {
    nom_take::<usize, &[u8], nom::error::Error<&[u8]>>(n)(input)
        .map(|(rest, taken)| (taken, rest))
        .map_err(|_| {
            WireError::new(
                part,
                offset,
                WireErrorKind::Truncated {
                    needed: n,
                    available: input.len(),
                },
            )
        })
}

/// Reads a length prefix, returning its value.
fn read_prefix(
    bytes: &[u8],
    enc: PrefixEncoding,
    part: Part,
    offset: usize,
) -> Result<usize, WireError> {
    let bad = || WireError::new(part, offset, WireErrorKind::BadLengthPrefix);
    match enc {
        PrefixEncoding::Ascii => bytes.iter().try_fold(0usize, |v, b| {
            if b.is_ascii_digit() {
                Ok(v * 10 + usize::from(b - b'0'))
            } else {
                Err(bad())
            }
        }),
        PrefixEncoding::Ebcdic => bytes.iter().try_fold(0usize, |v, b| {
            if (0xF0..=0xF9).contains(b) {
                Ok(v * 10 + usize::from(b - 0xF0))
            } else {
                Err(bad())
            }
        }),
        PrefixEncoding::Bcd => bytes.iter().try_fold(0usize, |v, b| {
            let (hi, lo) = (b >> 4, b & 0x0F);
            if hi > 9 || lo > 9 {
                Err(bad())
            } else {
                Ok(v * 100 + usize::from(hi) * 10 + usize::from(lo))
            }
        }),
        PrefixEncoding::Binary => Ok(bytes.iter().fold(0usize, |v, b| (v << 8) | usize::from(*b))),
    }
}

#[inline]
fn is_pad(nibble: u8) -> bool {
    nibble == 0 || nibble == 0xF
}

/// Eight bytes as a word, for the SWAR checks below.
#[inline]
fn word(c: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    u64::from_le_bytes(a)
}

const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
const SIXES: u64 = 0x0606_0606_0606_0606;
const BIT4: u64 = 0x1010_1010_1010_1010;
const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
const THREES: u64 = 0x3030_3030_3030_3030;

/// Whether every nibble of `data` is a decimal digit, eight bytes at a time (the common
/// case, checked first; the precise check runs only when this says no).
#[inline]
fn all_nibbles_decimal(data: &[u8]) -> bool {
    // A nibble above 9 plus 6 carries into bit 4 of its byte.
    let mut chunks = data.chunks_exact(8);
    let mut bad = 0u64;
    for c in &mut chunks {
        let v = word(c);
        bad |= ((v & LOW_NIBBLES) + SIXES) | (((v >> 4) & LOW_NIBBLES) + SIXES);
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0u8, |acc, &b| acc | ((b & 0x0F) + 6) | ((b >> 4) + 6));
    bad & BIT4 == 0 && tail & 0x10 == 0
}

/// Whether `data` is all ASCII digits, eight bytes at a time.
#[inline]
fn all_ascii_digits(data: &[u8]) -> bool {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = word(c);
        // Every byte 0x30..=0x3F, and still 0x3_ after adding 6 (so 0x30..=0x39).
        if v & HIGH_NIBBLES != THREES || (v + SIXES) & HIGH_NIBBLES != THREES {
            return false;
        }
    }
    chunks.remainder().iter().all(u8::is_ascii_digit)
}

/// Checks packed BCD: `units` digits in `data`, pad nibble first (`right`) or last.
fn check_packed(
    data: &[u8],
    units: usize,
    right: bool,
    track: bool,
    part: Part,
    offset: usize,
) -> Result<(), WireError> {
    let odd = units % 2 == 1;
    let pad_is_zero = match (odd, right) {
        (false, _) => true,
        (true, true) => data.first().is_some_and(|b| b >> 4 == 0),
        (true, false) => data.last().is_some_and(|b| b & 0x0F == 0),
    };
    if pad_is_zero && all_nibbles_decimal(data) {
        return Ok(());
    }
    let last = data.len().saturating_sub(1);
    let digit_ok = |n: u8| n <= 9 || (track && n == 0xD);
    for (i, &b) in data.iter().enumerate() {
        let (hi, lo) = (b >> 4, b & 0x0F);
        let at = offset + i;
        let hi_is_pad = odd && right && i == 0;
        let lo_is_pad = odd && !right && i == last;
        if hi_is_pad {
            if !is_pad(hi) {
                return Err(WireError::new(part, at, WireErrorKind::BadPad));
            }
        } else if !digit_ok(hi) {
            return Err(WireError::new(
                part,
                at,
                WireErrorKind::BadBcdNibble { nibble: hi },
            ));
        }
        if lo_is_pad {
            if !is_pad(lo) {
                return Err(WireError::new(part, at, WireErrorKind::BadPad));
            }
        } else if !digit_ok(lo) {
            return Err(WireError::new(
                part,
                at,
                WireErrorKind::BadBcdNibble { nibble: lo },
            ));
        }
    }
    Ok(())
}

fn check_bytes(
    data: &[u8],
    ok: impl Fn(u8) -> bool,
    kind: impl Fn(u8) -> WireErrorKind,
    part: Part,
    offset: usize,
) -> Result<(), WireError> {
    if data.iter().fold(true, |all, b| all & ok(*b)) {
        return Ok(());
    }
    match data.iter().position(|b| !ok(*b)) {
        None => Ok(()),
        Some(i) => Err(WireError::new(part, offset + i, kind(data[i]))),
    }
}

/// Validates a field's data bytes against its encoding.
fn check_data(
    spec: &FieldFormat,
    data: &[u8],
    units: usize,
    part: Part,
    offset: usize,
) -> Result<(), WireError> {
    let non_ascii = |byte| WireErrorKind::NonAscii { byte };
    match spec.data {
        Encoding::Ascii if data.is_ascii() => Ok(()),
        Encoding::Ascii => check_bytes(data, |b| b.is_ascii(), non_ascii, part, offset),
        Encoding::AsciiDigits if all_ascii_digits(data) => Ok(()),
        Encoding::AsciiDigits => check_bytes(data, |b| b.is_ascii_digit(), non_ascii, part, offset),
        Encoding::AsciiTrack => check_bytes(
            data,
            |b| b.is_ascii_digit() || b == b'=',
            non_ascii,
            part,
            offset,
        ),
        Encoding::Bcd => check_packed(data, units, true, false, part, offset),
        Encoding::BcdLeft => check_packed(data, units, false, false, part, offset),
        Encoding::Track => check_packed(data, units, false, true, part, offset),
        Encoding::BcdAmount => {
            let (sign, digits) = data.split_first().ok_or(WireError::new(
                part,
                offset,
                WireErrorKind::Truncated {
                    needed: 1,
                    available: 0,
                },
            ))?;
            if !sign.is_ascii_graphic() {
                return Err(WireError::new(part, offset, non_ascii(*sign)));
            }
            check_packed(
                digits,
                units.saturating_sub(1),
                true,
                false,
                part,
                offset + 1,
            )
        }
        Encoding::Hex => check_bytes(
            data,
            |b| b.is_ascii_hexdigit(),
            |_| WireErrorKind::BadHex,
            part,
            offset,
        ),
        Encoding::Binary | Encoding::Ebcdic => Ok(()),
        Encoding::Gbk if data.is_ascii() => Ok(()),
        Encoding::Gbk => match gbk_text(data) {
            Some(_) => Ok(()),
            None => Err(WireError::new(part, offset, WireErrorKind::BadGbk)),
        },
    }
}

/// GBK bytes as text; `None` when they are not GBK (nothing is replaced).
pub(crate) fn gbk_text(data: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(data)
}

/// Decodes field `n` at `offset` of `frame` (where `input` is `frame[offset..]`).
#[inline]
pub(crate) fn decode(
    spec: &FieldFormat,
    n: u8,
    input: &[u8],
    offset: usize,
) -> Result<(Span, usize), WireError> {
    let part = Part::Field(n);
    let (units, mut at, rest) = match spec.length {
        Length::Fixed(len) => (usize::from(len), offset, input),
        Length::Var(var) => {
            let width = spec.prefix.width(var);
            let (p, rest) = take(input, width, part, offset)?;
            let announced = read_prefix(p, spec.prefix, part, offset)?;
            let units = spec.units_from_prefix(announced);
            if units > spec.max {
                return Err(WireError::new(
                    part,
                    offset,
                    WireErrorKind::LengthOverMax {
                        len: units,
                        max: spec.max,
                    },
                ));
            }
            (units, offset + width, rest)
        }
    };
    let wire = spec.wire_len(units);
    let (data, _) = take(rest, wire, part, at)?;
    check_data(spec, data, units, part, at)?;
    let span = Span {
        start: at as u32,
        len: wire as u16,
        units: units as u16,
    };
    at += wire;
    Ok((span, at))
}

/// Writes a length prefix with `value` in `var` digits. The caller has checked that `value`
/// fits the prefix (the spec's maximum is checked against the prefix's capacity at load).
#[inline]
fn write_prefix(out: &mut impl BufMut, enc: PrefixEncoding, var: Var, value: usize) {
    let d = [
        (value / 1000) % 10,
        (value / 100) % 10,
        (value / 10) % 10,
        value % 10,
    ]
    .map(|x| x as u8);
    let digits = &d[4 - var.digits()..];
    match enc {
        PrefixEncoding::Ascii => {
            out.put_slice(&[b'0' + d[0], b'0' + d[1], b'0' + d[2], b'0' + d[3]][4 - digits.len()..])
        }
        PrefixEncoding::Ebcdic => {
            out.put_slice(&[0xF0 + d[0], 0xF0 + d[1], 0xF0 + d[2], 0xF0 + d[3]][4 - digits.len()..])
        }
        PrefixEncoding::Bcd => match var {
            Var::LL => out.put_u8((d[2] << 4) | d[3]),
            Var::LLL | Var::LLLL => out.put_slice(&[(d[0] << 4) | d[1], (d[2] << 4) | d[3]]),
        },
        PrefixEncoding::Binary => match var {
            Var::LL => out.put_u8(value as u8),
            Var::LLL | Var::LLLL => out.put_u16(value as u16),
        },
    }
}

/// A logical digit character to its nibble; `None` when the encoding cannot carry it.
#[inline]
fn nibble_of(c: u8, track: bool) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'=' | b'D' | b'd' if track => Some(0xD),
        _ => None,
    }
}

/// Packs ASCII digits: `pad_first` puts the pad nibble before an odd digit string. Bytes go
/// out through a small stack buffer, one `put_slice` per 32 bytes.
fn pack(
    out: &mut impl BufMut,
    digits: &[u8],
    pad_first: bool,
    pad: u8,
    track: bool,
    n: u8,
) -> Result<(), EncodeError> {
    let nib = |i: usize| {
        nibble_of(digits[i], track).ok_or(EncodeError::BadCharacter { field: n, pos: i })
    };
    let mut buf = [0u8; 32];
    let mut used = 0;
    let mut push = |out: &mut _, b: u8| {
        buf[used] = b;
        used += 1;
        if used == buf.len() {
            BufMut::put_slice(out, &buf);
            used = 0;
        }
    };
    let odd = digits.len() % 2 == 1;
    let mut i = 0;
    if odd && pad_first {
        push(out, (pad << 4) | nib(0)?);
        i = 1;
    }
    while i + 1 < digits.len() {
        push(out, (nib(i)? << 4) | nib(i + 1)?);
        i += 2;
    }
    if i < digits.len() {
        push(out, (nib(i)? << 4) | pad);
    }
    out.put_slice(&buf[..used]);
    Ok(())
}

fn check_text(value: &[u8], ok: impl Fn(u8) -> bool, n: u8) -> Result<(), EncodeError> {
    match value.iter().position(|b| !ok(*b)) {
        None => Ok(()),
        Some(pos) => Err(EncodeError::BadCharacter { field: n, pos }),
    }
}

/// Encodes a logical value of field `n`: ASCII digits for digit encodings, text for text,
/// raw bytes for binary and hex. Fixed numeric fields shorter than their length are padded
/// with leading zeros, fixed text fields with trailing spaces.
pub(crate) fn encode(
    spec: &FieldFormat,
    n: u8,
    value: &[u8],
    out: &mut impl BufMut,
) -> Result<(), EncodeError> {
    // A GBK field's value is UTF-8 text: its wire bytes (and so its length) are GBK's.
    let gbk;
    let value = if spec.data == Encoding::Gbk && !value.is_ascii() {
        let text = std::str::from_utf8(value).map_err(|e| EncodeError::BadCharacter {
            field: n,
            pos: e.valid_up_to(),
        })?;
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
        if unmappable {
            return Err(EncodeError::BadCharacter { field: n, pos: 0 });
        }
        gbk = bytes;
        &gbk[..]
    } else {
        value
    };
    // Units of a logical value: one per digit or byte (hex fields take raw bytes).
    let len = value.len();
    let units = match spec.length {
        Length::Fixed(f) => {
            let f = usize::from(f);
            if len > f {
                return Err(EncodeError::TooLong {
                    field: n,
                    len,
                    max: f,
                });
            }
            let pads_ok = matches!(
                spec.data,
                Encoding::Bcd
                    | Encoding::AsciiDigits
                    | Encoding::Ascii
                    | Encoding::Ebcdic
                    | Encoding::Gbk
            );
            if len < f && !pads_ok {
                return Err(EncodeError::WrongLength {
                    field: n,
                    len,
                    want: f,
                });
            }
            f
        }
        Length::Var(var) => {
            if len > spec.max {
                return Err(EncodeError::TooLong {
                    field: n,
                    len,
                    max: spec.max,
                });
            }
            write_prefix(out, spec.prefix, var, spec.prefix_from_units(len));
            len
        }
    };
    let fill = units - len;
    match spec.data {
        Encoding::Ascii => {
            if !value.is_ascii() {
                check_text(value, |b| b.is_ascii(), n)?;
            }
            out.put_slice(value);
            out.put_bytes(b' ', fill);
        }
        Encoding::AsciiDigits => {
            check_text(value, |b| b.is_ascii_digit(), n)?;
            out.put_bytes(b'0', fill);
            out.put_slice(value);
        }
        Encoding::AsciiTrack => {
            check_text(value, |b| b.is_ascii_digit() || b == b'=' || b == b'D', n)?;
            for &b in value {
                out.put_u8(if b == b'D' { b'=' } else { b });
            }
        }
        Encoding::Bcd => {
            if fill == 0 {
                pack(out, value, true, spec.pad, false, n)?;
            } else {
                // Leading zeros, then the value: pack as one digit string.
                let mut padded = Vec::with_capacity(units);
                padded.resize(fill, b'0');
                padded.extend_from_slice(value);
                pack(out, &padded, true, spec.pad, false, n)?;
            }
        }
        Encoding::BcdLeft => pack(out, value, false, spec.pad, false, n)?,
        Encoding::Track => pack(out, value, false, spec.pad, true, n)?,
        Encoding::BcdAmount => {
            let (sign, digits) = value
                .split_first()
                .ok_or(EncodeError::BadCharacter { field: n, pos: 0 })?;
            if !sign.is_ascii_graphic() {
                return Err(EncodeError::BadCharacter { field: n, pos: 0 });
            }
            out.put_u8(*sign);
            pack(out, digits, true, spec.pad, false, n).map_err(|e| match e {
                EncodeError::BadCharacter { field, pos } => EncodeError::BadCharacter {
                    field,
                    pos: pos + 1,
                },
                other => other,
            })?;
        }
        Encoding::Binary => out.put_slice(value),
        Encoding::Hex => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            for &b in value {
                out.put_u8(HEX[usize::from(b >> 4)]);
                out.put_u8(HEX[usize::from(b & 0x0F)]);
            }
        }
        Encoding::Gbk => {
            out.put_slice(value);
            out.put_bytes(b' ', fill);
        }
        Encoding::Ebcdic => {
            for (pos, &b) in value.iter().enumerate() {
                out.put_u8(
                    ebcdic::from_ascii(b).ok_or(EncodeError::BadCharacter { field: n, pos })?,
                );
            }
            out.put_bytes(0x40, fill);
        }
    }
    Ok(())
}

/// Encodes a field from its wire bytes as decoded (pad nibbles and all), for byte-exact
/// re-encoding of a received message.
pub(crate) fn encode_wire(
    spec: &FieldFormat,
    n: u8,
    data: &[u8],
    units: usize,
    out: &mut impl BufMut,
) -> Result<(), EncodeError> {
    if spec.wire_len(units) != data.len() {
        return Err(EncodeError::WrongLength {
            field: n,
            len: data.len(),
            want: spec.wire_len(units),
        });
    }
    match spec.length {
        Length::Fixed(f) if usize::from(f) != units => {
            return Err(EncodeError::WrongLength {
                field: n,
                len: units,
                want: usize::from(f),
            });
        }
        Length::Fixed(_) => {}
        Length::Var(var) => {
            if units > spec.max {
                return Err(EncodeError::TooLong {
                    field: n,
                    len: units,
                    max: spec.max,
                });
            }
            write_prefix(out, spec.prefix, var, spec.prefix_from_units(units));
        }
    }
    out.put_slice(data);
    Ok(())
}
