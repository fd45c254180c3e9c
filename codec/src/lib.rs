//! Zero-copy ISO 8583 codec, spec-driven, with the China UnionPay POS terminal dialect and
//! ISO 8583:1987 ASCII and binary built in.
//!
//! # The CUP POS wire format
//!
//! ```text
//! INPUT (one frame; the framing layer has already removed the 2-byte length)
//! +----------------+------------------+---------+--------------------+--------------------+
//! | TPDU (5 B)     | header (6 B)     | MTI 2 B | bitmap 8 B         | fields ...         |
//! | 60 0000 0300   | 60 31 00 31 10 03| 02 00   | 70 24 06 C0 20 C1..| 16 62 24 24 29 ... |
//! +----------------+------------------+---------+--------------------+--------------------+
//!
//! DECODED (every value borrows the frame)
//! +------+-------------------------------+---------------------------------------------+
//! | MTI  | 0200                          |                                             |
//! | 2    | LLVAR n..19, BCD left-aligned | Digits "6224242900000113"                   |
//! | 3    | n6 BCD                        | Digits "000000"                             |
//! | 41   | ans8 ASCII                    | &str "10000019"                             |
//! | 52   | b64                           | &[u8] (8 bytes)                             |
//! | 60   | LLLVAR n...17                 | Digits; 60.1 "22", 60.2 "000024" by path    |
//! +------+-------------------------------+---------------------------------------------+
//! ```
//!
//! Specifications are data: a [`Dialect`] is loaded from TOML or JSON ([`spec`]); the
//! built-in ones are such files compiled in. Decoding is one pass over the frame with nom's
//! complete parsers, recording where each field sits; nothing is copied. Encoding writes
//! into the caller's buffer from a [`MessageBuilder`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use codec::{Dialect, decode};
//!
//! // A CUP POS sign-on reply (vector A6 of the shared message captures), without its length.
//! let hex = "600000000260310031110E0810003800010AC0001400002121464803110800155800\
//!            3231343634383539333430313030353134333537393034323534343139353431313031\
//!            3335001100000006003000408170\
//!            3A74A7F8DBD31ADE741A23E7654F522C41264EEEE335695F8ABD0000000000000000A51E8ADF";
//! let bytes: Vec<u8> = (0..hex.len()).step_by(2)
//!     .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
//!     .collect::<Result<_, _>>()?;
//! let msg = decode(Dialect::cup_pos(), &bytes)?;
//! assert_eq!(msg.mti().as_str(), "0810");
//! assert_eq!(msg.text(39), Some("00"));
//! assert!(msg.digits(11).is_some_and(|d| d == "000021"));
//! assert_eq!(msg.get("60.3")?.map(|v| v.to_string()).as_deref(), Some("003"));
//! assert_eq!(msg.bytes(62).map(<[u8]>::len), Some(40));
//! # Ok(())
//! # }
//! ```
//!
//! No input makes the decoder panic; every failure is a [`WireError`] naming the part, the
//! byte offset and the kind. `Debug` and `Display` of a message mask card data (fields 2,
//! 35, 36, 45, 52, 55).

#![forbid(unsafe_code)]

pub mod bitmap;
pub mod builder;
pub mod digits;
mod ebcdic;
pub mod emv;
pub mod error;
mod field;
pub mod framing;
pub mod header;
pub mod jpos;
pub mod mask;
pub mod message;
pub mod mti;
pub mod spec;
pub mod tlv;

pub use bitmap::Bitmap;
pub use builder::{FieldInput, MacSlot, MessageBuilder};
pub use digits::Digits;
pub use error::{EncodeError, Part, SpecError, WireError, WireErrorKind};
pub use header::{CupHeader, Tpdu};
pub use message::{Field, Message, PathError, Value, decode};
pub use mti::Mti;
pub use spec::{Dialect, Encoding, FieldSpec, Framing};
