//! Malformed input: captured bad messages and targeted corruptions give precise errors.

use codec::{Dialect, Part, WireErrorKind, decode};

use crate::fixtures::{malformed, vector};

fn kind_name(k: WireErrorKind) -> &'static str {
    match k {
        WireErrorKind::Truncated { .. } => "truncated",
        WireErrorKind::LengthOverMax { .. } => "length-over-max",
        WireErrorKind::BadLengthPrefix => "bad-length-prefix",
        WireErrorKind::BadBcdNibble { .. } => "bad-bcd-nibble",
        WireErrorKind::BadPad => "bad-pad",
        WireErrorKind::NonAscii { .. } => "non-ascii",
        WireErrorKind::BadHex => "bad-hex",
        WireErrorKind::UnknownField => "unknown-field",
        WireErrorKind::TrailingBytes { .. } => "trailing-bytes",
        _ => "other",
    }
}

#[test]
fn captured_malformed_messages_fail_precisely() {
    for bad in malformed() {
        let bytes = hex::decode(&bad.hex).unwrap();
        let err = decode(Dialect::builtin(&bad.dialect).unwrap(), &bytes).unwrap_err();
        assert_eq!(err.part.to_string(), bad.part, "{}: {err}", bad.name);
        assert_eq!(kind_name(err.kind), bad.kind, "{}: {err}", bad.name);
    }
}

fn cup_sale() -> Vec<u8> {
    vector("cup_sale_codetd").body()
}

#[test]
fn lying_llvar_prefix_over_max() {
    let mut b = cup_sale();
    // Field 2's LLVAR prefix is the first byte after header (11), MTI (2), bitmap (8).
    assert_eq!(b[21], 0x16);
    b[21] = 0x20; // 20 digits, over the maximum of 19
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(2));
    assert_eq!(e.offset, 21);
    assert_eq!(e.kind, WireErrorKind::LengthOverMax { len: 20, max: 19 });
}

#[test]
fn lying_lllvar_prefix_past_the_end() {
    let mut b = cup_sale();
    // Field 59's LLLVAR prefix 0153 → 0999: more bytes than remain.
    let at = b
        .windows(4)
        .position(|w| w == [0x01, 0x53, 0x31, 0x32])
        .unwrap();
    b[at] = 0x09;
    b[at + 1] = 0x99;
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(59));
    assert!(
        matches!(e.kind, WireErrorKind::Truncated { needed: 999, .. }),
        "{e}"
    );
}

#[test]
fn bad_bcd_nibble_names_field_and_offset() {
    let mut b = cup_sale();
    // Field 3 (processing code) starts after field 2: 21 + 1 + 8.
    b[30] = 0x0A;
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(3));
    assert_eq!(e.offset, 30);
    assert_eq!(e.kind, WireErrorKind::BadBcdNibble { nibble: 0xA });
}

#[test]
fn bad_pad_nibble() {
    let mut b = cup_sale();
    // Field 22 "071" is left-aligned: 07 10; the pad is the last nibble.
    let at = b
        .windows(4)
        .position(|w| w == [0x28, 0x06, 0x07, 0x10])
        .unwrap()
        + 3;
    b[at] = 0x15;
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(22));
    assert_eq!(e.kind, WireErrorKind::BadPad);
    // F is an accepted pad.
    b[at] = 0x1F;
    let msg = decode(Dialect::cup_pos(), &b).unwrap();
    assert!(msg.digits(22).unwrap() == "071");
}

#[test]
fn non_ascii_in_text_field() {
    let mut b = cup_sale();
    let at = b.windows(8).position(|w| w == b"10000019").unwrap();
    b[at + 2] = 0xC8;
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(41));
    assert_eq!(e.offset, at + 2);
    assert_eq!(e.kind, WireErrorKind::NonAscii { byte: 0xC8 });
}

#[test]
fn trailing_bytes() {
    let mut b = cup_sale();
    b.extend_from_slice(&[0, 0, 0]);
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::End);
    assert_eq!(e.kind, WireErrorKind::TrailingBytes { count: 3 });
}

#[test]
fn unknown_field_in_bitmap() {
    let mut b = cup_sale();
    b[13] |= 0x01; // bitmap byte 0 bit 8 → field 8, not in the CUP dialect
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Field(8));
    assert_eq!(e.kind, WireErrorKind::UnknownField);
}

#[test]
fn bad_mti_and_bitmap() {
    let mut b = cup_sale();
    b[11] = 0x0B;
    let e = decode(Dialect::cup_pos(), &b).unwrap_err();
    assert_eq!(e.part, Part::Mti);
    let e = decode(Dialect::iso87_ascii(), b"0800823A00000000000G").unwrap_err();
    assert_eq!((e.part, e.kind), (Part::Bitmap, WireErrorKind::BadHex));
    let e = decode(Dialect::iso87_ascii(), b"08x0").unwrap_err();
    assert_eq!(e.part, Part::Mti);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for name in [
        "cup_sale_codetd",
        "cup_signon_0810_quickpass",
        "jpos_iso87_binary",
        "jpos_iso87_ascii",
    ] {
        let v = vector(name);
        let body = v.body();
        for cut in 0..body.len() {
            let e = decode(v.dialect(), &body[..cut]);
            assert!(e.is_err(), "{name}: cut at {cut} decoded");
            assert!(
                matches!(e.unwrap_err().kind, WireErrorKind::Truncated { .. }),
                "{name}: cut at {cut}"
            );
        }
    }
}
