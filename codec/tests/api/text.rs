//! Text as live UnionPay hosts send it, and fields whose layout depends on the message.

use codec::{Dialect, MessageBuilder, Mti, WireErrorKind, decode};

/// TPDU and CUP header.
const HEADER: &[u8] = &[0x60, 0, 0, 0, 0, 0x60, 0x31, 0, 0, 0, 0];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// A live response's field 59 held `请求金华睿地缴费接口失败` in GBK; its first character is
/// enough to show it (the minimal frame from that capture: `请` is C7 EB in GBK).
#[test]
fn a_live_gbk_field_59_decodes_and_re_encodes_byte_exact() {
    let frame = unhex("6000000000603100000000 0200 0000000000000020 0002 C7EB");
    let d = Dialect::cup_pos();
    let m = decode(d, &frame).expect("GBK in 59 decodes");
    let f = m.field(59).unwrap();
    assert_eq!(f.decoded_text().as_deref(), Some("请"));
    assert_eq!(f.canonical(), "请", "describe and logs show the text");
    assert_eq!(m.text(59), None, "not ASCII: no &str of the wire bytes");
    let again = MessageBuilder::from_message(&m).encode_to_vec(d).unwrap();
    assert_eq!(again, frame);
}

/// A live bill-payment request carried `KP77` in 48 (it failed with `BadBcdNibble` when 48
/// was BCD in every message); settlement and batch upload keep their BCD totals.
#[test]
fn the_builtin_cup_dialect_reads_48_by_message() {
    let d = Dialect::cup_pos();
    let bill = unhex("6000000000603100000000 0200 0000000000010000 0004 4B503737");
    let m = decode(d, &bill).expect("a bill payment's 48 decodes");
    assert_eq!(m.text(48), Some("KP77"));
    assert_eq!(
        MessageBuilder::from_message(&m).encode_to_vec(d).unwrap(),
        bill
    );
    for mti in ["0500", "0510", "0320", "0330"] {
        let frame = unhex(&format!(
            "6000000000603100000000 {mti} 0000000000010000 0004 1234"
        ));
        let m = decode(d, &frame).unwrap();
        assert_eq!(
            m.digits(48).map(|x| x.to_string()).as_deref(),
            Some("1234"),
            "{mti}"
        );
        assert_eq!(
            MessageBuilder::from_message(&m).encode_to_vec(d).unwrap(),
            frame
        );
        // As text it would be 4 bytes: BCD digits only here.
        assert!(
            decode(
                d,
                &unhex(&format!(
                    "6000000000603100000000 {mti} 0000000000010000 0004 4B503737"
                ))
            )
            .is_err()
        );
    }
}

#[test]
fn gbk_text_is_set_from_utf8_and_counted_in_gbk_bytes() {
    let d = Dialect::cup_pos();
    let text = "请求金华睿地缴费接口失败";
    let mut b = MessageBuilder::new(Mti::parse("0210").unwrap());
    b.header(HEADER);
    b.set(59, text.as_bytes());
    let wire = b.encode_to_vec(d).unwrap();
    // 12 characters, two GBK bytes each: the LLL prefix says 24, the first two are C7 EB.
    let at = wire.len() - 26;
    assert_eq!(&wire[at..at + 4], &[0x00, 0x24, 0xC7, 0xEB]);
    let m = decode(d, &wire).unwrap();
    assert_eq!(m.field(59).unwrap().decoded_text().as_deref(), Some(text));
    // ASCII stays ASCII, and readable as &str (payment codes, operator numbers).
    let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
    b.header(HEADER);
    b.set(59, b"QR280000000000000001".as_slice());
    let wire = b.encode_to_vec(d).unwrap();
    assert_eq!(
        decode(d, &wire).unwrap().text(59),
        Some("QR280000000000000001")
    );
}

#[test]
fn bytes_that_are_not_gbk_are_refused_clearly() {
    // 0xFF (never GBK), a lead byte with no trail byte, a lead byte with a bad trail.
    for data in ["0001 FF", "0001 C7", "0002 C77F"] {
        let frame = unhex(&format!(
            "6000000000603100000000 0200 0000000000000020 {data}"
        ));
        let e = decode(Dialect::cup_pos(), &frame).unwrap_err();
        assert_eq!(e.kind, WireErrorKind::BadGbk, "{data}: {e}");
    }
    // Text that GBK cannot carry is refused when set.
    let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
    b.header(HEADER);
    b.set(59, "🙂".as_bytes());
    assert!(b.encode_to_vec(Dialect::cup_pos()).is_err());
}

/// A field's layout can depend on the MTI: text by default, BCD in settlements.
#[test]
fn a_field_takes_the_layout_its_message_names() {
    let toml = r#"
name = "test"
framing = "u16"
header = "cup-pos"
mti = "bcd"
bitmap = "binary"
prefix = "bcd"
[fields]
48 = { name = "additional data", len = "LLL", max = 322, data = "gbk", when = [
    { mti = ["0500", "0510"], name = "settlement totals", len = "LLL", max = 322, data = "bcd-left" },
] }
"#;
    let d = Dialect::from_toml(toml).unwrap();
    // A bill payment's 48: text (4 bytes).
    let bill = unhex("6000000000603100000000 0200 0000000000010000 0004 4B503737");
    let m = decode(&d, &bill).unwrap();
    assert_eq!(m.text(48), Some("KP77"));
    assert_eq!(m.field(48).unwrap().spec().name, "additional data");
    // A settlement's 48: BCD digits (4 digits, 2 bytes).
    let settle = unhex("6000000000603100000000 0500 0000000000010000 0004 1234");
    let m = decode(&d, &settle).unwrap();
    assert_eq!(m.digits(48).map(|x| x.to_string()), Some("1234".into()));
    assert_eq!(m.field(48).unwrap().spec().name, "settlement totals");
    for frame in [bill, settle] {
        let m = decode(&d, &frame).unwrap();
        assert_eq!(
            MessageBuilder::from_message(&m).encode_to_vec(&d).unwrap(),
            frame
        );
    }
    // Built anew, each MTI's layout is the one written.
    let mut b = MessageBuilder::new(Mti::parse("0510").unwrap());
    b.header(HEADER);
    b.set(48, b"1234".as_slice());
    assert!(
        b.encode_to_vec(&d)
            .unwrap()
            .ends_with(&[0x00, 0x04, 0x12, 0x34])
    );
    // A bad MTI in `when` is refused at load.
    assert!(Dialect::from_toml(&toml.replace("\"0510\"", "\"05X0\"")).is_err());
}

/// ISO 8583:1987 field 96 is b 64: 8 bytes.
#[test]
fn field_96_is_eight_bytes() {
    for d in [Dialect::iso87_binary(), Dialect::iso87_ascii()] {
        let mut b = MessageBuilder::new(Mti::parse("0800").unwrap());
        b.set(96, [0xA5u8; 8].as_slice());
        let wire = b.encode_to_vec(d).unwrap();
        let m = decode(d, &wire).unwrap();
        assert_eq!(m.field(96).unwrap().units(), 8, "{}", d.name());
        let mut b = MessageBuilder::new(Mti::parse("0800").unwrap());
        b.set(96, [0xA5u8; 16].as_slice());
        assert!(
            b.encode_to_vec(d).is_err(),
            "16 bytes is jPOS's, not the standard's"
        );
    }
}
