//! Every captured message decodes to its published values and re-encodes byte for byte.

use codec::{Encoding, MessageBuilder};

use crate::fixtures::{vector, vectors};

fn hex_upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

#[test]
fn every_vector_decodes_to_its_values() {
    for v in vectors() {
        let body = v.body();
        let msg = v.decode(&body);
        for (key, want) in &v.expect {
            let got = match key.as_str() {
                "h" => hex_upper(msg.header()),
                "t" => msg.mti().to_string(),
                "p" => format!("{:016X}", msg.bitmap().primary()),
                n => {
                    let n: u8 = n.parse().unwrap();
                    let f = msg
                        .field(n)
                        .unwrap_or_else(|| panic!("{}: field {n} missing", v.name));
                    f.canonical()
                }
            };
            assert_eq!(&got, want, "{}: {key}", v.name);
        }
        // Where the vector lists its fields, the message has no others.
        if v.expect.len() > 3 {
            for f in msg.fields() {
                assert!(
                    v.expect.contains_key(&f.number().to_string()),
                    "{}: unexpected field {}",
                    v.name,
                    f.number()
                );
            }
        }
    }
}

#[test]
fn every_vector_reencodes_byte_exact_from_wire() {
    for v in vectors() {
        let body = v.body();
        let msg = v.decode(&body);
        let again = MessageBuilder::from_message(&msg)
            .encode_to_vec(v.dialect())
            .unwrap();
        assert_eq!(hex_upper(&again), hex_upper(&body), "{}", v.name);
    }
}

/// Rebuilds each message from its logical values (digits, text, raw bytes), which exercises
/// the encoder's own packing and prefixes, not a copy of wire bytes.
#[test]
fn every_vector_reencodes_byte_exact_from_values() {
    for v in vectors() {
        let body = v.body();
        let msg = v.decode(&body);
        let mut b = MessageBuilder::new(msg.mti());
        b.header(msg.header());
        for f in msg.fields() {
            let value: Vec<u8> = match f.spec().format.data {
                Encoding::Binary => f.wire().to_vec(),
                Encoding::Hex => hex::decode(f.wire()).unwrap(),
                _ => f.canonical().into_bytes(),
            };
            b.set(f.number(), value);
        }
        let again = b.encode_to_vec(v.dialect()).unwrap();
        assert_eq!(hex_upper(&again), hex_upper(&body), "{}", v.name);
    }
}

#[test]
fn cup_sale_typed_access_and_paths() {
    let v = vector("cup_sale_codetd");
    let body = v.body();
    let msg = v.decode(&body);
    assert_eq!(
        msg.tpdu().unwrap().to_bytes(),
        [0x60, 0x00, 0x06, 0x00, 0x00]
    );
    assert_eq!(
        msg.tpdu().unwrap().reply().to_bytes(),
        [0x60, 0x00, 0x00, 0x00, 0x06]
    );
    assert_eq!(msg.cup_header().unwrap().app_type(), 0x60);
    assert_eq!(msg.digits(4).unwrap().to_u64(), Some(1));
    assert!(msg.digits(22).unwrap() == "071");
    assert_eq!(msg.text(41), Some("10000019"));
    assert_eq!(msg.bytes(52).unwrap().len(), 8);
    let path = |p: &str| msg.get(p).unwrap().unwrap().to_string();
    assert_eq!(path("60.1"), "22");
    assert_eq!(path("60.2"), "000024");
    assert_eq!(path("60.3"), "000");
    assert_eq!(path("60.4"), "6");
    assert_eq!(path("55.9F26"), "95BBE372271DDA7C");
    assert_eq!(path("55.9F02"), "000000000001");
    assert!(msg.get("55.DF99").unwrap().is_none());
    assert!(msg.get("61.2").unwrap().is_none(), "field 61 absent");
    assert!(msg.get("60.9").is_err());
    assert!(msg.get("x").is_err());
    // MAC covers MTI to the end of field 63 (here 60): 8 bytes before the end.
    assert_eq!(msg.mac_data().len(), body.len() - 11 - 8);
    assert_eq!(&msg.mac_data()[..2], &[0x02, 0x00]);
}

#[test]
fn subfield_61_by_path() {
    let dialect = codec::Dialect::cup_pos();
    let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.header(&[0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03])
        .set(61, "0000010001231122");
    let bytes = b.encode_to_vec(dialect).unwrap();
    let msg = codec::decode(dialect, &bytes).unwrap();
    assert_eq!(msg.get("61.1").unwrap().unwrap().to_string(), "000001");
    assert_eq!(msg.get("61.2").unwrap().unwrap().to_string(), "000123");
    assert_eq!(msg.get("61.3").unwrap().unwrap().to_string(), "1122");
}

#[test]
fn debug_and_display_mask_card_data() {
    let v = vector("cup_sale_codetd");
    let body = v.body();
    let msg = v.decode(&body);
    for shown in [
        format!("{msg:?}"),
        format!("{msg}"),
        format!("{:?}", msg.field(35).unwrap()),
    ] {
        assert!(!shown.contains("6224242900000113"), "PAN leaked: {shown}");
        assert!(!shown.contains("28062013949031013"), "track leaked");
        assert!(!shown.contains("D1EEF419D0AE2609"), "PIN block leaked");
        assert!(!shown.contains("95BBE372"), "chip data leaked");
    }
    assert!(format!("{msg}").contains("622424******0113"));
}

#[test]
fn sign_on_reply_fields() {
    let v = vector("cup_signon_0810_quickpass");
    let body = v.body();
    let msg = v.decode(&body);
    assert_eq!(msg.get("60.2").unwrap().unwrap().to_string(), "000006");
    assert_eq!(msg.get("60.3").unwrap().unwrap().to_string(), "003");
    assert!(msg.mti().is_response());
}

#[test]
fn secondary_bitmap_is_read_and_written() {
    let v = vector("moov_network_0800");
    let body = v.body();
    let msg = v.decode(&body);
    assert_eq!(msg.bitmap().secondary(), 0x0400_0000_0000_0000);
    assert_eq!(msg.text(70), Some("001"));
    let mut b = MessageBuilder::new(msg.mti());
    b.set(70, "001").set(11, "900001");
    let bytes = b.encode_to_vec(v.dialect()).unwrap();
    // Field 1 (secondary follows) and 11 in the primary; 70 in the secondary.
    assert_eq!(&bytes[..36], &b"080080200000000000000400000000000000"[..]);
}

#[test]
fn mac_is_written_over_the_right_bytes() {
    let dialect = codec::Dialect::cup_pos();
    let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.header(&[0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03])
        .set(3, "000000")
        .set(41, "10000001");
    let mut out = Vec::new();
    let mut seen = Vec::new();
    b.encode_with_mac(dialect, &mut out, |data| {
        seen = data.to_vec();
        Some(*b"ABCDEFGH")
    })
    .unwrap();
    let msg = codec::decode(dialect, &out).unwrap();
    assert_eq!(msg.bytes(64), Some(&b"ABCDEFGH"[..]));
    assert_eq!(msg.mac_data(), seen.as_slice());
    assert!(msg.bitmap().contains(64));
}

#[test]
fn mac_in_a_hex_field_is_written_as_hex_and_read_back_as_bytes() {
    // ISO 87 ASCII carries 52 and 64 as hex characters.
    let dialect = codec::Dialect::iso87_ascii();
    let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.set(3, "000000")
        .set(41, "10000001")
        .set(52, &[0x01u8, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    b.encode_with_mac(dialect, &mut out, |data| {
        seen = data.to_vec();
        Some([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x11, 0x22, 0x33])
    })
    .unwrap();
    assert!(out.ends_with(b"DEADBEEF00112233"));
    let msg = codec::decode(dialect, &out).unwrap();
    assert_eq!(msg.mac_data(), seen.as_slice());
    assert_eq!(
        msg.binary(64).as_deref(),
        Some(&[0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x11, 0x22, 0x33][..])
    );
    assert_eq!(msg.bytes(52), Some(&b"0123456789ABCDEF"[..]));
    assert_eq!(
        msg.binary(52).as_deref(),
        Some(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF][..])
    );
    // Binary fields come back borrowed, as they are.
    let bin = codec::Dialect::iso87_binary();
    let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.set(3, "000000").set(52, &[9u8; 8]);
    let bytes = b.encode_to_vec(bin).unwrap();
    let m = codec::decode(bin, &bytes).unwrap();
    assert_eq!(m.binary(52).as_deref(), Some(&[9u8; 8][..]));
    assert_eq!(m.binary(64), None);
}
