//! Property tests: no input panics the decoder; valid messages round-trip.

use codec::spec::{Encoding, Length};
use codec::{Dialect, MessageBuilder, Mti, decode};
use proptest::prelude::*;

use crate::fixtures::vector;

fn dialects() -> [&'static Dialect; 3] {
    [
        Dialect::cup_pos(),
        Dialect::iso87_ascii(),
        Dialect::iso87_binary(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for d in dialects() {
            let _ = decode(d, &bytes);
        }
    }

    /// Headers and bitmaps that look right, then anything: reaches deep into field parsing.
    #[test]
    fn plausible_prefix_then_noise(bitmap in any::<u64>(), rest in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut b = vec![0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03, 0x02, 0x00];
        b.extend_from_slice(&bitmap.to_be_bytes());
        b.extend_from_slice(&rest);
        if let Ok(msg) = decode(Dialect::cup_pos(), &b) {
            // Whatever decodes must display (masked) and re-encode without panicking.
            let _ = format!("{msg:?}{msg}");
            let _ = MessageBuilder::from_message(&msg).encode_to_vec(Dialect::cup_pos());
        }
    }

    #[test]
    fn corrupted_capture_never_panics(pos in 0usize..426, byte in any::<u8>(), cut in 0usize..427) {
        let mut b = vector("cup_sale_codetd").body();
        let pos = pos % b.len();
        b[pos] = byte;
        b.truncate(cut.min(b.len()));
        if let Ok(msg) = decode(Dialect::cup_pos(), &b) {
            let again = MessageBuilder::from_message(&msg).encode_to_vec(Dialect::cup_pos()).unwrap();
            prop_assert_eq!(again, b);
        }
    }
}

/// A valid logical value for a field spec.
fn value_for(spec: &codec::FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let len = match spec.format.length {
        Length::Fixed(n) => (n as usize)..=(n as usize),
        Length::Var(_) => 0..=spec.format.max.min(64),
    };
    match spec.format.data {
        Encoding::Bcd | Encoding::BcdLeft | Encoding::AsciiDigits => {
            proptest::collection::vec(b'0'..=b'9', len).boxed()
        }
        Encoding::Track | Encoding::AsciiTrack => {
            proptest::collection::vec(prop_oneof![9 => b'0'..=b'9', 1 => Just(b'=')], len).boxed()
        }
        Encoding::BcdAmount => {
            let n = *len.end();
            (
                prop_oneof![Just(b'C'), Just(b'D'), Just(b'0')],
                proptest::collection::vec(b'0'..=b'9', n - 1),
            )
                .prop_map(|(s, mut d)| {
                    d.insert(0, s);
                    d
                })
                .boxed()
        }
        Encoding::Ascii => proptest::collection::vec(0x20u8..0x7F, len).boxed(),
        Encoding::Ebcdic => proptest::collection::vec(b'A'..=b'Z', len).boxed(),
        Encoding::Binary | Encoding::Hex => proptest::collection::vec(any::<u8>(), len).boxed(),
        // UTF-8 text of ASCII and Chinese (two GBK bytes each): at most half the field's
        // bytes in characters, so the GBK form always fits.
        Encoding::Gbk => {
            let chars = 0..=(*len.end() / 2);
            proptest::collection::vec(
                prop_oneof![
                    3 => (0x20u8..0x7F).prop_map(char::from),
                    1 => proptest::sample::select(vec!['请', '求', '金', '华', '缴', '费', '失', '败']),
                ],
                chars,
            )
            .prop_map(|cs| cs.into_iter().collect::<String>().into_bytes())
            .boxed()
        }
    }
}

fn message_strategy(dialect: &'static Dialect) -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    let defined: Vec<u8> = (2..=128u8)
        .filter(|n| dialect.field(*n).is_some())
        .collect();
    proptest::sample::subsequence(defined.clone(), 0..defined.len().min(30)).prop_flat_map(
        move |fields| {
            let strategies: Vec<_> = fields
                .iter()
                .map(|n| {
                    let n = *n;
                    value_for(dialect.field(n).unwrap()).prop_map(move |v| (n, v))
                })
                .collect();
            strategies
        },
    )
}

fn round_trip(
    dialect: &'static Dialect,
    header: &[u8],
    fields: &[(u8, Vec<u8>)],
) -> Result<(), TestCaseError> {
    let mut b = MessageBuilder::new(Mti::parse("0200").unwrap());
    b.header(header);
    for (n, v) in fields {
        b.set(*n, v.as_slice());
    }
    let bytes = b.encode_to_vec(dialect).unwrap();
    let msg = decode(dialect, &bytes).unwrap();
    prop_assert_eq!(msg.fields().count(), fields.len());
    for (n, v) in fields {
        let f = msg.field(*n).unwrap();
        let got: Vec<u8> = match f.spec().format.data {
            Encoding::Binary => f.wire().to_vec(),
            Encoding::Hex => hex::decode(f.wire()).unwrap(),
            Encoding::Track => f.canonical().replace('D', "=").into_bytes(),
            _ => f.canonical().into_bytes(),
        };
        prop_assert_eq!(&got, v, "field {}", n);
    }
    let again = MessageBuilder::from_message(&msg)
        .encode_to_vec(dialect)
        .unwrap();
    prop_assert_eq!(again, bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn cup_messages_round_trip(fields in message_strategy(Dialect::cup_pos())) {
        round_trip(Dialect::cup_pos(), &[0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03], &fields)?;
    }

    #[test]
    fn iso87_binary_messages_round_trip(fields in message_strategy(Dialect::iso87_binary())) {
        round_trip(Dialect::iso87_binary(), &[], &fields)?;
    }

    #[test]
    fn iso87_ascii_messages_round_trip(fields in message_strategy(Dialect::iso87_ascii())) {
        round_trip(Dialect::iso87_ascii(), &[], &fields)?;
    }
}

/// Found by the decode fuzz target: a secondary bitmap announced (bit 1) but empty. Some
/// hosts always send one; it decodes, and a builder made from the message writes it back,
/// so the bytes (and a MAC over them) stay the same. A new message omits it.
#[test]
fn an_empty_secondary_bitmap_round_trips() {
    let d = Dialect::iso87_ascii();
    let wire = b"08108210823A00000000000000000000000000000000\
                 0011129877564132487476?30420042000001031168";
    let wire = &wire[..];
    let msg = decode(d, wire).expect("decodes");
    assert!(msg.bitmap().contains(1));
    let again = MessageBuilder::from_message(&msg).encode_to_vec(d).unwrap();
    assert_eq!(again, wire);
    // Also found by fuzzing: a bitmap in lower-case hex is accepted and written back as sent.
    let lower = b"09096010060002c00000000000008000010789096010060002c00000000269441";
    let lower_msg = decode(d, lower).expect("lower-case hex bitmap decodes");
    assert_eq!(
        MessageBuilder::from_message(&lower_msg)
            .encode_to_vec(d)
            .unwrap(),
        lower
    );
    let mut fresh = MessageBuilder::new(msg.mti());
    fresh.set(39, "00");
    let fresh = fresh.encode_to_vec(d).unwrap();
    assert_eq!(
        &fresh[4..20],
        b"0000000002000000",
        "no secondary bitmap when none is needed"
    );
}
