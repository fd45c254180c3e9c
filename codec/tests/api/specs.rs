//! Dialects are data: the built-ins load, users can add their own, bad specs are refused.

use codec::{Dialect, MessageBuilder, Mti, SpecError, decode};

#[test]
fn builtin_dialects_load() {
    for name in [
        "cup-pos",
        "cup-pos-sm4",
        "iso87-ascii",
        "iso87-ascii-sm4",
        "iso87-binary",
        "iso87-binary-sm4",
    ] {
        let d = Dialect::builtin(name).unwrap();
        assert_eq!(d.name(), name);
    }
    assert!(matches!(
        Dialect::builtin("nope"),
        Err(SpecError::UnknownDialect(_))
    ));
    assert_eq!(Dialect::iso87_binary().field(2).unwrap().format.max, 19);
    assert!(Dialect::cup_pos().field(8).is_none());
    // SM4 terminals: a 16-byte PIN block, the rest as CUP POS.
    let sm4 = Dialect::cup_pos_sm4();
    assert_eq!(
        sm4.field(52).unwrap().format.length,
        codec::spec::Length::Fixed(16)
    );
    assert_eq!(
        Dialect::cup_pos().field(52).unwrap().format.length,
        codec::spec::Length::Fixed(8)
    );
    assert_eq!(sm4.field(53), Dialect::cup_pos().field(53));
    // Between switches the 52 stays 8 bytes; 63 carries bytes (usage SM).
    let b = Dialect::builtin_sm4("iso87-binary").unwrap();
    assert_eq!(b.field(52), Dialect::iso87_binary().field(52));
    assert_eq!(b.field(63).unwrap().format.data, codec::Encoding::Binary);
    let a = Dialect::builtin_sm4("iso87-ascii").unwrap();
    assert_eq!(a.field(63).unwrap().format.data, codec::Encoding::Hex);
    assert!(Dialect::builtin_sm4("nope").is_err());
}

const USER: &str = r#"
name = "tiny"
framing = "ascii4"
header = { fixed = 2 }
mti = "ascii"
bitmap = "hex"
prefix = "ascii"

[fields]
2 = { len = "LL", max = 19, data = "ascii-digits" }
4 = { len = 12, data = "ascii-digits" }
41 = { len = 8, data = "ascii" }
62 = { len = "LLL", max = 10, data = "bcd-left", prefix = "binary", count = "bytes" }
"#;

#[test]
fn user_dialect_from_toml_and_json() {
    let d = Dialect::from_toml(USER).unwrap();
    let mut b = MessageBuilder::new(Mti::parse("0100").unwrap());
    b.header(&b"H1"[..])
        .set(2, "4111111111111111")
        .set(4, "100")
        .set(41, "T1")
        .set(62, "1234");
    let bytes = b.encode_to_vec(&d).unwrap();
    assert_eq!(
        bytes,
        [
            &b"H1"[..],          // header
            b"0100",             // MTI
            b"5000000000800004", // bitmap: 2, 4, 41, 62
            b"16",               // field 2 prefix
            b"4111111111111111", // field 2
            b"000000000100",     // field 4, zero-padded
            b"T1      ",         // field 41, space-padded
            b"\x00\x02\x12\x34"  // field 62: binary prefix counting bytes, BCD
        ]
        .concat()
    );
    let msg = decode(&d, &bytes).unwrap();
    assert_eq!(msg.text(41), Some("T1      "));
    assert!(msg.digits(62).unwrap() == "1234");

    let json = r#"{"name":"j","framing":"none","header":"none","mti":"bcd","bitmap":"binary","prefix":"bcd",
        "fields":{"3":{"len":6,"data":"bcd"}}}"#;
    let d = Dialect::from_json(json).unwrap();
    assert!(d.field(3).is_some());
}

#[test]
fn bad_specs_are_refused_with_the_field_named() {
    let cases = [
        (r#"2 = { len = "LL", data = "ascii" }"#, "needs `max`"),
        (
            r#"1 = { len = 8, data = "binary" }"#,
            "field 1 is the secondary bitmap",
        ),
        (
            r#"2 = { len = "LL", max = 120, data = "ascii" }"#,
            "does not fit",
        ),
        (r#"2 = { len = 0, data = "ascii" }"#, "above 0"),
        (
            r#"2 = { len = 4, data = "binary", tlv = false, subfields = [{ id = 1, len = 2 }] }"#,
            "subfields",
        ),
        (r#"2 = { len = 4, data = "bcd", pad = "X" }"#, "pad"),
        (r#"x = { len = 4, data = "bcd" }"#, "numbers"),
    ];
    for (field, want) in cases {
        let text = format!(
            "name=\"t\"\nframing=\"none\"\nheader=\"none\"\nmti=\"ascii\"\nbitmap=\"hex\"\nprefix=\"ascii\"\n[fields]\n{field}\n"
        );
        let err = Dialect::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{field}: {err}");
    }
    assert!(matches!(
        Dialect::from_toml("name = 3"),
        Err(SpecError::Toml(_))
    ));
}

#[test]
fn encode_errors_are_precise() {
    let d = Dialect::cup_pos();
    let h = [0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03];
    let enc = |n: u8, v: &str| {
        let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
        b.header(&h[..]).set(n, v);
        b.encode_to_vec(d)
    };
    use codec::EncodeError as E;
    assert_eq!(
        enc(3, "1234567"),
        Err(E::TooLong {
            field: 3,
            len: 7,
            max: 6
        })
    );
    assert_eq!(enc(3, "12a"), Err(E::BadCharacter { field: 3, pos: 5 }));
    assert_eq!(enc(8, "1"), Err(E::UnknownField(8)));
    assert_eq!(enc(1, "1"), Err(E::BadFieldNumber(1)));
    assert_eq!(
        enc(2, "12345678901234567890"),
        Err(E::TooLong {
            field: 2,
            len: 20,
            max: 19
        })
    );
    assert_eq!(
        enc(52, "1234"),
        Err(E::WrongLength {
            field: 52,
            len: 4,
            want: 8
        })
    );
    assert_eq!(enc(41, "中文"), Err(E::BadCharacter { field: 41, pos: 0 }));
    // Short numbers are zero-padded on the left; short text space-padded on the right.
    let bytes = enc(4, "100").unwrap();
    let msg = decode(d, &bytes).unwrap();
    assert!(msg.digits(4).unwrap() == "000000000100");
    let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
    b.set(3, "000000");
    assert_eq!(b.encode_to_vec(d), Err(E::BadHeader { got: 0, want: 11 }));
}
