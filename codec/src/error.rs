//! Errors: precise wire errors ([`WireError`]) for decoding, [`EncodeError`] for building,
//! [`SpecError`] for loading a dialect.
//!
//! No error carries field *contents*: a wire error names the part of the message, the byte
//! offset and what was wrong, never the bytes themselves, so it is safe to log even when the
//! frame held a PAN or a PIN block.

use std::fmt;

/// Which part of a message a wire error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The dialect's fixed header (for CUP POS: TPDU and the 6-byte header).
    Header,
    /// The message type indicator.
    Mti,
    /// The primary or secondary bitmap.
    Bitmap,
    /// A data element, by number (2–128).
    Field(u8),
    /// Bytes after the last field.
    End,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => f.write_str("header"),
            Part::Mti => f.write_str("MTI"),
            Part::Bitmap => f.write_str("bitmap"),
            Part::Field(n) => write!(f, "field {n}"),
            Part::End => f.write_str("end of message"),
        }
    }
}

/// What was wrong with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The message ended before the part did.
    Truncated {
        /// Bytes the part needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length prefix announced more than the field's maximum.
    LengthOverMax {
        /// The announced length (digits or bytes, as the field counts).
        len: usize,
        /// The field's maximum.
        max: usize,
    },
    /// A length prefix that is not a number in its encoding.
    BadLengthPrefix,
    /// A BCD nibble above 9 (or not `D` in track data).
    BadBcdNibble {
        /// The offending nibble value.
        nibble: u8,
    },
    /// The pad nibble of an odd-length BCD value is neither `0` nor `F`.
    BadPad,
    /// A text field holds a byte outside 7-bit ASCII, or a numeric text field a non-digit.
    NonAscii {
        /// The offending byte.
        byte: u8,
    },
    /// A hex-text field or bitmap holds a character that is not a hex digit.
    BadHex,
    /// A GBK text field holds bytes that are not GBK.
    BadGbk,
    /// The bitmap names a field the dialect does not define.
    UnknownField,
    /// Bytes remain after the last field of the bitmap.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} left")
            }
            Self::LengthOverMax { len, max } => {
                write!(f, "length {len} over maximum {max}")
            }
            Self::BadLengthPrefix => f.write_str("length prefix is not a number"),
            Self::BadBcdNibble { nibble } => write!(f, "bad BCD nibble {nibble:X}"),
            Self::BadPad => f.write_str("bad pad nibble"),
            Self::NonAscii { byte } => write!(f, "unexpected byte 0x{byte:02X}"),
            Self::BadHex => f.write_str("not a hex digit"),
            Self::BadGbk => f.write_str("not GBK text"),
            Self::UnknownField => f.write_str("field not defined by the dialect"),
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes"),
        }
    }
}

/// A precise decoding error: part, byte offset from the start of the message (after any
/// framing length) and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{part} at byte {offset}: {kind}")]
pub struct WireError {
    /// The part of the message being decoded.
    pub part: Part,
    /// Byte offset where the problem starts.
    pub offset: usize,
    /// What was wrong.
    pub kind: WireErrorKind,
}

impl WireError {
    pub(crate) fn new(part: Part, offset: usize, kind: WireErrorKind) -> Self {
        Self { part, offset, kind }
    }
}

/// An error while encoding a message from a builder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The dialect has no definition for this field.
    #[error("field {0} is not defined by the dialect")]
    UnknownField(u8),
    /// Field numbers run from 2 to 128 (field 1 is the secondary bitmap).
    #[error("field number {0} out of range 2..=128")]
    BadFieldNumber(u8),
    /// The value is longer than the field allows.
    #[error("field {field}: length {len} over maximum {max}")]
    TooLong {
        /// Field number.
        field: u8,
        /// Length of the value (digits or bytes).
        len: usize,
        /// The field's maximum.
        max: usize,
    },
    /// A fixed field's value has the wrong length and the encoding cannot pad it.
    #[error("field {field}: length {len}, field needs {want}")]
    WrongLength {
        /// Field number.
        field: u8,
        /// Length given.
        len: usize,
        /// Length required.
        want: usize,
    },
    /// The value holds a character its encoding cannot carry.
    #[error("field {field}: character not allowed by the field's encoding at position {pos}")]
    BadCharacter {
        /// Field number.
        field: u8,
        /// Position of the character in the value.
        pos: usize,
    },
    /// The header has the wrong length for the dialect.
    #[error("header is {got} bytes, dialect needs {want}")]
    BadHeader {
        /// Bytes given.
        got: usize,
        /// Bytes the dialect needs.
        want: usize,
    },
    /// The MAC function gave no MAC.
    #[error("MAC could not be computed")]
    MacUnavailable,
    /// The MTI is not four digits.
    #[error("MTI must be four digits")]
    BadMti,
}

/// An error in a dialect specification (TOML/JSON).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file is not valid TOML for a dialect.
    #[error("dialect TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// The file is not valid JSON for a dialect.
    #[error("dialect JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field definition is inconsistent.
    #[error("field {field}: {reason}")]
    Field {
        /// The field key as written.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No built-in dialect has this name.
    #[error("unknown dialect {0:?} (built-in: cup-pos, iso87-ascii, iso87-binary)")]
    UnknownDialect(String),
}
