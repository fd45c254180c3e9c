//! jPOS packagers in and out: the classes map as jPOS packs them, and a built-in dialect
//! written as a packager and read back decodes every captured message as the built-in does.

use codec::jpos;
use codec::spec::{DialectDef, Encoding, Length, PrefixEncoding, Var};
use codec::{Dialect, MessageBuilder, decode};

use crate::fixtures::vectors;

#[test]
fn a_packager_reads_as_a_dialect_and_names_what_it_left_out() {
    let xml = include_str!("../fixtures/packager-sample.xml");
    let got = jpos::import(xml, "sample").unwrap();
    let d = &got.out;
    let f = |n: &str| d.fields.get(n).unwrap_or_else(|| panic!("field {n}"));
    assert_eq!(f("2").data, Encoding::BcdLeft);
    assert_eq!(f("2").len, Length::Var(Var::LL));
    assert_eq!(f("2").prefix, Some(PrefixEncoding::Bcd));
    assert_eq!(f("3").data, Encoding::Bcd);
    assert_eq!(f("28").data, Encoding::BcdAmount);
    assert_eq!(f("35").data, Encoding::Track, "jPOS packs = as D");
    assert_eq!(f("37").data, Encoding::Ascii);
    assert_eq!(f("41").data, Encoding::Ebcdic);
    assert_eq!(f("43").prefix, Some(PrefixEncoding::Ascii));
    assert_eq!(f("48").data, Encoding::Ascii);
    assert_eq!(f("55").prefix, Some(PrefixEncoding::Binary));
    assert_eq!(f("55").data, Encoding::Binary);
    assert_eq!(f("60").subfields.len(), 2);
    assert_eq!(f("60").subfields[1].len, 6);
    assert_eq!(f("61").len, Length::Var(Var::LLLL));
    assert_eq!(f("62").data, Encoding::Hex);
    assert_eq!(f("64").data, Encoding::Hex);
    assert!(!d.fields.contains_key("63"));
    let notes = got.notes.join("\n");
    assert!(
        notes.contains("field 63 (TAGGED): class IF_TBASE"),
        "{notes}"
    );
    assert!(
        notes.contains("field 127 (PRIVATE BITMAPPED): its subfields are not mapped"),
        "{notes}"
    );
    // The dialect loads, and a message built in it reads back.
    let dialect = Dialect::from_def(got.out).unwrap();
    let mut b = MessageBuilder::new(codec::Mti::parse("0200").unwrap());
    b.set(2, "6222021000000000017")
        .set(35, "6222021000000000017=2912")
        .set(41, "10000001")
        .set(64, [0xA5u8; 8].as_slice());
    let wire = b.encode_to_vec(&dialect).unwrap();
    let m = decode(&dialect, &wire).unwrap();
    assert_eq!(m.field(41).unwrap().canonical(), "10000001");
    assert_eq!(m.field(64).unwrap().canonical(), "A5A5A5A5A5A5A5A5");
    assert!(jpos::import("<notxml", "x").is_err());
    assert!(jpos::import("<dialect/>", "x").is_err());
}

fn def_of(name: &str) -> DialectDef {
    toml::from_str(Dialect::builtin_source(name).unwrap()).unwrap()
}

/// Each built-in dialect, out to a packager and back: every captured message of it decodes
/// field for field as the built-in decodes it, and re-encodes to the same bytes (a field
/// whose layout depends on the message keeps its default layout in a packager, and is
/// compared only where the message takes that one).
#[test]
fn built_in_dialects_survive_a_round_trip_through_a_packager() {
    for name in ["iso87-binary", "iso87-ascii", "cup-pos"] {
        let original = def_of(name);
        let written = jpos::export(&original);
        let mut back = jpos::import(&written.out, name).unwrap().out;
        assert_eq!(
            back.fields.keys().len(),
            original.fields.keys().len(),
            "{name}: every field written and read: {:?}",
            written.notes
        );
        (back.framing, back.header) = (original.framing, original.header);
        let back = Dialect::from_def(back).unwrap();
        let builtin = Dialect::builtin(name).unwrap();
        let mut checked = 0;
        for v in vectors().into_iter().filter(|v| v.dialect == name) {
            let body = v.body();
            let want = decode(builtin, &body).unwrap();
            let got = decode(&back, &body).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(got.mti(), want.mti());
            for f in want.fields() {
                let g = got.field(f.number()).unwrap();
                assert_eq!(
                    g.canonical(),
                    f.canonical(),
                    "{} field {}",
                    v.name,
                    f.number()
                );
            }
            let again = MessageBuilder::from_message(&got)
                .encode_to_vec(&back)
                .unwrap();
            assert_eq!(again, body, "{}", v.name);
            checked += 1;
        }
        assert!(checked > 0, "{name}: no captured message");
    }
}

#[test]
fn what_a_packager_cannot_say_is_named() {
    let written = jpos::export(&def_of("cup-pos"));
    let notes = written.notes.join("\n");
    assert!(
        notes.contains("field 48: its layouts in other messages"),
        "{notes}"
    );
    assert!(notes.contains("field 59: GBK text"), "{notes}");
    assert!(
        written.out.contains("isofieldpackager"),
        "60 and 61 as positional subfields"
    );
    // The TOML written for an import is a dialect file that loads.
    let imported = jpos::import(&written.out, "cup-again").unwrap().out;
    let text = jpos::to_toml(&imported);
    assert!(text.find("[fields.2]").unwrap() < text.find("[fields.11]").unwrap());
    Dialect::from_toml(&text).unwrap();
}

/// The `codec` tool: export, import, and a dialect file that is not one.
#[test]
fn the_codec_tool_converts_both_ways() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_codec"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = std::env::temp_dir().join(format!("codec-tool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, xml, _) = run(&["export-jpos", "iso87-ascii"]);
    assert_eq!(code, Some(0));
    assert!(xml.contains("class=\"org.jpos.iso.IFA_LLNUM\""), "{xml}");
    let path = dir.join("iso87ascii.xml");
    std::fs::write(&path, &xml).unwrap();
    let (code, toml_text, notes) = run(&["import-jpos", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{notes}");
    assert!(
        toml_text.starts_with("name = \"iso87ascii\""),
        "{toml_text}"
    );
    assert!(notes.contains("framing and header"), "{notes}");
    let back = Dialect::from_toml(&toml_text).unwrap();
    assert_eq!(back.field(2).unwrap().format.data, Encoding::AsciiDigits);
    // A dialect file that does not load, and a packager that is not XML: exit 2, the reason.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = 3").unwrap();
    let (code, _, err) = run(&["export-jpos", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml"), "{err}");
    std::fs::write(&path, "not xml").unwrap();
    let (code, _, err) = run(&["import-jpos", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not XML"), "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("usage"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
