//! PIN verification, translation, the failure limiter, MACs and CVVs through the HSM.

use std::time::Duration;

use hsm_sim::{
    CheckLength, ClearPin, EncryptedPinBlock, Error, Hsm, HsmConfig, Ibm3624, KeyAlgorithm,
    KeyUsage, Lmk, MacAlgorithm, PinFormat, SealedKey,
};
use proptest::prelude::*;

use crate::{test_hsm, unhex};

const PAN: &str = "6222021000000000017";

#[test]
fn pvv_verification_from_an_encrypted_pin_block() {
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvv = hsm
        .generate_pvv(&pvk, PAN, 1, &ClearPin::new("123456").unwrap())
        .unwrap();
    for format in [PinFormat::Iso0, PinFormat::Iso3] {
        let good = hsm
            .encrypt_pin(&tpk, &ClearPin::new("123456").unwrap(), PAN, format)
            .unwrap();
        let bad = hsm
            .encrypt_pin(&tpk, &ClearPin::new("124456").unwrap(), PAN, format)
            .unwrap();
        assert!(
            hsm.verify_pin_pvv(&tpk, &good, format, PAN, &pvk, 1, &pvv)
                .unwrap()
        );
        assert!(
            !hsm.verify_pin_pvv(&tpk, &bad, format, PAN, &pvk, 1, &pvv)
                .unwrap()
        );
        // Another PVKI gives another PVV.
        assert!(
            !hsm.verify_pin_pvv(&tpk, &good, format, PAN, &pvk, 2, &pvv)
                .unwrap()
        );
    }
    // Visa PVV covers the first four PIN digits only (the algorithm's definition): a
    // six-digit PIN differing only in its last two digits verifies. Callers needing every
    // digit checked use IBM 3624 with a full-length offset.
    let tail = hsm
        .encrypt_pin(
            &tpk,
            &ClearPin::new("123499").unwrap(),
            PAN,
            PinFormat::Iso0,
        )
        .unwrap();
    assert!(
        hsm.verify_pin_pvv(&tpk, &tail, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
            .unwrap()
    );
    // Garbage in the block is a format error, not a crash or a "wrong PIN".
    let junk = EncryptedPinBlock::new(&[0x55; 8]).unwrap();
    let r = hsm.verify_pin_pvv(&tpk, &junk, PinFormat::Iso0, PAN, &pvk, 1, &pvv);
    assert!(matches!(r, Err(Error::BadPinBlock) | Ok(false)), "{r:?}");
    assert!(EncryptedPinBlock::new(&[0; 5]).is_err());
}

#[test]
fn ibm3624_verification() {
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .import_clear_key(
            KeyUsage::Pvk,
            KeyAlgorithm::Tdes2,
            &unhex("0123456789ABCDEFFEDCBA9876543210"),
        )
        .unwrap();
    let table = Ibm3624::whole_pin(Ibm3624::STANDARD_TABLE);
    let offset = hsm
        .generate_ibm3624_offset(
            &pvk,
            &table,
            "41111111111FFFFF",
            &ClearPin::new("1234").unwrap(),
        )
        .unwrap();
    assert_eq!(offset, "9229"); // the published vector, through the HSM
    let block = hsm
        .encrypt_pin(
            &tpk,
            &ClearPin::new("1234").unwrap(),
            "4111111111111111",
            PinFormat::Iso0,
        )
        .unwrap();
    assert!(
        hsm.verify_pin_ibm3624(
            &tpk,
            &block,
            PinFormat::Iso0,
            "4111111111111111",
            &pvk,
            &table,
            "41111111111FFFFF",
            "9229"
        )
        .unwrap()
    );
    assert!(
        !hsm.verify_pin_ibm3624(
            &tpk,
            &block,
            PinFormat::Iso0,
            "4111111111111111",
            &pvk,
            &table,
            "41111111111FFFFF",
            "9228"
        )
        .unwrap()
    );
}

/// A PIN block for `pin` under `tpk`, ISO format 0 with `PAN`.
fn block(hsm: &Hsm, tpk: &SealedKey, pin: &str) -> EncryptedPinBlock {
    hsm.encrypt_pin(tpk, &ClearPin::new(pin).unwrap(), PAN, PinFormat::Iso0)
        .unwrap()
}

#[test]
fn ibm3624_whole_pin_checks_every_digit() {
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    let params = Ibm3624::whole_pin(Ibm3624::STANDARD_TABLE);
    let validation = "202100000000FFFF";
    for pin in ["123456", "0000", "987654321012"] {
        let offset = hsm
            .generate_ibm3624_offset(&pvk, &params, validation, &ClearPin::new(pin).unwrap())
            .unwrap();
        assert_eq!(offset.len(), pin.len(), "one offset digit per PIN digit");
        let verify = |p: &str| {
            hsm.verify_pin_ibm3624(
                &tpk,
                &block(&hsm, &tpk, p),
                PinFormat::Iso0,
                PAN,
                &pvk,
                &params,
                validation,
                &offset,
            )
            .unwrap()
        };
        assert!(verify(pin));
        // Any single digit changed, in any position, to any other digit: refused.
        for i in 0..pin.len() {
            for d in b'0'..=b'9' {
                let mut wrong = pin.as_bytes().to_vec();
                if wrong[i] == d {
                    continue;
                }
                wrong[i] = d;
                let wrong = String::from_utf8(wrong).unwrap();
                assert!(!verify(&wrong), "{wrong} must not verify as {pin}");
            }
        }
        // A digit more or less: refused (the whole PIN is checked, not a prefix).
        if pin.len() < 12 {
            assert!(!verify(&format!("{pin}0")));
        }
        if pin.len() > 4 {
            assert!(!verify(&pin[..pin.len() - 1]));
        }
    }
}

#[test]
fn ibm3624_shorter_check_length_checks_the_leftmost_digits() {
    // IBM's and Thales's check length: a 4-digit check of a 6-digit PIN covers its first
    // four digits only, and a PIN shorter than the check length is wrong.
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .import_clear_key(
            KeyUsage::Pvk,
            KeyAlgorithm::Tdes2,
            &unhex("0123456789ABCDEFFEDCBA9876543210"),
        )
        .unwrap();
    let params = Ibm3624 {
        decimalisation: Ibm3624::STANDARD_TABLE,
        check: CheckLength::Digits(4),
    };
    let validation = "41111111111FFFFF";
    let offset = hsm
        .generate_ibm3624_offset(&pvk, &params, validation, &ClearPin::new("123456").unwrap())
        .unwrap();
    assert_eq!(offset, "9229", "the published 4-digit vector for PIN 1234");
    let pan = "4111111111111111";
    let verify = |p: &str, off: &str| {
        let b = hsm
            .encrypt_pin(&tpk, &ClearPin::new(p).unwrap(), pan, PinFormat::Iso0)
            .unwrap();
        hsm.verify_pin_ibm3624(
            &tpk,
            &b,
            PinFormat::Iso0,
            pan,
            &pvk,
            &params,
            validation,
            off,
        )
        .unwrap()
    };
    assert!(verify("1234", "9229"));
    assert!(
        verify("123456", "9229"),
        "digits past the check length are not checked"
    );
    assert!(verify("1234", "9229FFFFFFFF"), "a Thales F-padded offset");
    assert!(!verify("1235", "9229"));
    // The same offset under a whole-PIN check refuses the 6-digit PIN.
    let whole = Ibm3624::whole_pin(Ibm3624::STANDARD_TABLE);
    let b = hsm
        .encrypt_pin(
            &tpk,
            &ClearPin::new("123456").unwrap(),
            pan,
            PinFormat::Iso0,
        )
        .unwrap();
    assert!(
        !hsm.verify_pin_ibm3624(
            &tpk,
            &b,
            PinFormat::Iso0,
            pan,
            &pvk,
            &whole,
            validation,
            "9229"
        )
        .unwrap()
    );
    // An offset that is not digits is a data error, not a wrong PIN.
    assert!(matches!(
        hsm.verify_pin_ibm3624(
            &tpk,
            &b,
            PinFormat::Iso0,
            pan,
            &pvk,
            &whole,
            validation,
            "12x4"
        ),
        Err(Error::DataLength)
    ));
}

#[test]
fn published_keys_are_known_by_check_value() {
    let hsm = test_hsm();
    for (usage, alg, hex, name_part) in [
        (
            KeyUsage::Tmk,
            KeyAlgorithm::Tdes2,
            "0123456789ABCDEFFEDCBA9876543210",
            "demo TMK",
        ),
        (
            KeyUsage::Zpk,
            KeyAlgorithm::Tdes2,
            "A1B2C3D4E5F60718293A4B5C6D7E8F91",
            "zone PIN",
        ),
        (
            KeyUsage::Pvk,
            KeyAlgorithm::Tdes2,
            "13345779133457791334577913345779",
            "demo PVK",
        ),
        // Parity bits differ: the same DES key.
        (
            KeyUsage::Tak,
            KeyAlgorithm::Des,
            "E8CA00B83A21904E",
            "MA TAK",
        ),
        // K||K is single DES with K.
        (
            KeyUsage::Tmk,
            KeyAlgorithm::Tdes2,
            "0B681FC20E62C7340B681FC20E62C734",
            "single",
        ),
        (
            KeyUsage::Tmk,
            KeyAlgorithm::Aes128,
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "RFC 4493",
        ),
    ] {
        let k = hsm.import_clear_key(usage, alg, &unhex(hex)).unwrap();
        let cv = hsm.check_value(&k).unwrap();
        let name = hsm_sim::published::lookup(&cv);
        assert!(
            name.is_some_and(|n| n.contains(name_part)),
            "{hex}: {name:?}"
        );
    }
    // Keys of one repeated byte, in any length.
    for (alg, key) in [
        (KeyAlgorithm::Tdes2, [0x33u8; 16].to_vec()),
        (KeyAlgorithm::Des, [0x22u8; 8].to_vec()),
        (KeyAlgorithm::Tdes3, [0xABu8; 24].to_vec()),
    ] {
        assert!(
            hsm_sim::published::lookup_clear(alg, &key).is_some(),
            "{key:02X?}"
        );
    }
    // A fresh key is not published.
    let fresh = hsm
        .generate_key(KeyUsage::Tmk, KeyAlgorithm::Tdes2)
        .unwrap();
    assert_eq!(
        hsm_sim::published::lookup(&hsm.check_value(&fresh).unwrap()),
        None
    );
    assert!(
        hsm_sim::published::lookup_clear(
            KeyAlgorithm::Tdes2,
            &unhex("0123456789ABCDEFFEDCBA9876543210")
        )
        .is_some()
    );
}

#[test]
fn translate_tpk_to_zpk_changing_format() {
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let zpk = hsm
        .generate_key(KeyUsage::Zpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let zpk_aes = hsm
        .generate_key(KeyUsage::Zpk, KeyAlgorithm::Aes128)
        .unwrap();
    let pvk = hsm
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pin = ClearPin::new("654321").unwrap();
    let pvv = hsm.generate_pvv(&pvk, PAN, 1, &pin).unwrap();
    let at_terminal = hsm.encrypt_pin(&tpk, &pin, PAN, PinFormat::Iso0).unwrap();
    for (to, format) in [
        (&zpk, PinFormat::Iso0),
        (&zpk, PinFormat::Iso3),
        (&zpk, PinFormat::Iso1),
        (&zpk_aes, PinFormat::Iso4),
    ] {
        let out = hsm
            .translate_pin(&tpk, PinFormat::Iso0, to, format, &at_terminal, PAN)
            .unwrap();
        assert!(
            hsm.verify_pin_pvv(to, &out, format, PAN, &pvk, 1, &pvv)
                .unwrap(),
            "{format:?}"
        );
    }
    // ZPK to ZPK works; a TPK is not a translation target.
    let z = hsm
        .translate_pin(
            &tpk,
            PinFormat::Iso0,
            &zpk,
            PinFormat::Iso0,
            &at_terminal,
            PAN,
        )
        .unwrap();
    let z2 = hsm
        .generate_key(KeyUsage::Zpk, KeyAlgorithm::Tdes2)
        .unwrap();
    assert!(
        hsm.translate_pin(&zpk, PinFormat::Iso0, &z2, PinFormat::Iso0, &z, PAN)
            .is_ok()
    );
    assert!(
        hsm.translate_pin(&zpk, PinFormat::Iso0, &tpk, PinFormat::Iso0, &z, PAN)
            .is_err()
    );
    // Format 4 needs an AES key, formats 0/1/3 a DES one.
    assert_eq!(
        hsm.translate_pin(
            &tpk,
            PinFormat::Iso0,
            &zpk,
            PinFormat::Iso4,
            &at_terminal,
            PAN
        )
        .unwrap_err(),
        Error::WrongAlgorithm
    );
}

#[test]
fn failure_limiter_trips_and_recovers() {
    let config = HsmConfig {
        allow_test_keys: true,
        pin_failures_per_window: 3,
        pin_failure_window: Duration::from_millis(300),
        ..HsmConfig::default()
    };
    let hsm = Hsm::new(Lmk::test(), &config).unwrap();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvk = hsm
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    let pvv = hsm
        .generate_pvv(&pvk, PAN, 1, &ClearPin::new("1234").unwrap())
        .unwrap();
    let good = hsm
        .encrypt_pin(&tpk, &ClearPin::new("1234").unwrap(), PAN, PinFormat::Iso0)
        .unwrap();
    let bad = hsm
        .encrypt_pin(&tpk, &ClearPin::new("9999").unwrap(), PAN, PinFormat::Iso0)
        .unwrap();
    // Wait for the start of a fresh window so the three failures fall in one.
    std::thread::sleep(Duration::from_millis(310));
    for _ in 0..3 {
        assert!(
            !hsm.verify_pin_pvv(&tpk, &bad, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
                .unwrap()
        );
    }
    // Tripped: even the right PIN is refused, with a distinct error.
    assert_eq!(
        hsm.verify_pin_pvv(&tpk, &good, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
            .unwrap_err(),
        Error::FailureLimit
    );
    std::thread::sleep(Duration::from_millis(650));
    assert!(
        hsm.verify_pin_pvv(&tpk, &good, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
            .unwrap()
    );
}

#[test]
fn macs_through_the_hsm_match_the_primitives() {
    let hsm = test_hsm();
    let key = unhex("0123456789ABCDEFFEDCBA9876543210");
    let zak = hsm
        .import_clear_key(KeyUsage::Zak, KeyAlgorithm::Tdes2, &key)
        .unwrap();
    let data = b"Now is the time for all ";
    let x919 = hsm.generate_mac(&zak, MacAlgorithm::X919, data).unwrap();
    assert_eq!(hex::encode_upper(x919.as_bytes()), "A1C72E74EA3FA9B6");
    assert!(
        hsm.verify_mac(&zak, MacAlgorithm::X919, data, &x919.as_bytes()[..4])
            .unwrap()
    );
    assert!(
        !hsm.verify_mac(&zak, MacAlgorithm::X919, data, &[0xA1, 0xC7, 0x2E])
            .unwrap(),
        "under 4 bytes is refused"
    );
    let tak = hsm
        .import_clear_key(KeyUsage::Tak, KeyAlgorithm::Des, &unhex("0123456789ABCDEF"))
        .unwrap();
    let x99 = hsm.generate_mac(&tak, MacAlgorithm::X99, data).unwrap();
    assert_eq!(hex::encode_upper(&x99.as_bytes()[..4]), "70A30640");
    let alg1 = hsm
        .generate_mac(&tak, MacAlgorithm::Iso9797Alg1Pad2, data)
        .unwrap();
    assert_eq!(hex::encode_upper(&alg1.as_bytes()[..4]), "10E1F0F1");
    let up = hsm
        .import_clear_key(KeyUsage::Tak, KeyAlgorithm::Des, &unhex("2222222222222222"))
        .unwrap();
    let m = hsm
        .generate_mac(
            &up,
            MacAlgorithm::UnionpayEcb,
            &unhex("1234567890ABCDEFABCDEF1234567890"),
        )
        .unwrap();
    assert_eq!(m.as_bytes(), b"E267B6E2");
    let aes = hsm
        .import_clear_key(
            KeyUsage::Zak,
            KeyAlgorithm::Aes128,
            &unhex("2B7E151628AED2A6ABF7158809CF4F3C"),
        )
        .unwrap();
    let c = hsm.generate_mac(&aes, MacAlgorithm::AesCmac, &[]).unwrap();
    assert_eq!(
        hex::encode_upper(c.as_bytes()),
        "BB1D6929E95937287FA37D129B756746"
    );
    assert_eq!(
        hsm.generate_mac(&aes, MacAlgorithm::UnionpayEcb, data)
            .unwrap_err(),
        Error::WrongAlgorithm
    );
}

#[test]
fn cvv_through_the_hsm() {
    let hsm = test_hsm();
    let cvk = hsm
        .import_clear_key(
            KeyUsage::Cvk,
            KeyAlgorithm::Tdes2,
            &unhex("0123456789ABCDEFFEDCBA9876543210"),
        )
        .unwrap();
    assert_eq!(
        hsm.generate_cvv(&cvk, "4123456789012345", "8701", "101")
            .unwrap(),
        "561"
    );
    assert!(
        hsm.verify_cvv(&cvk, "4123456789012345", "8701", "101", "561")
            .unwrap()
    );
    assert!(
        !hsm.verify_cvv(&cvk, "4123456789012345", "8701", "101", "562")
            .unwrap()
    );
    assert!(
        !hsm.verify_cvv(&cvk, "4123456789012345", "8701", "101", "56")
            .unwrap()
    );
    assert!(hsm.generate_cvv(&cvk, "41234", "8701", "101").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_pin_and_pan_round_trip(pin in "[0-9]{4,12}", pan in "[0-9]{12,19}") {
        let hsm = test_hsm();
        let tpk = hsm.generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2).unwrap();
        let zpk = hsm.generate_key(KeyUsage::Zpk, KeyAlgorithm::Aes256).unwrap();
        let pvk = hsm.generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2).unwrap();
        let p = ClearPin::new(&pin).unwrap();
        let pvv = hsm.generate_pvv(&pvk, &pan, 1, &p).unwrap();
        for format in [PinFormat::Iso0, PinFormat::Iso1, PinFormat::Iso3] {
            let b = hsm.encrypt_pin(&tpk, &p, &pan, format).unwrap();
            prop_assert!(hsm.verify_pin_pvv(&tpk, &b, format, &pan, &pvk, 1, &pvv).unwrap());
            let t = hsm.translate_pin(&tpk, format, &zpk, PinFormat::Iso4, &b, &pan).unwrap();
            prop_assert!(hsm.verify_pin_pvv(&zpk, &t, PinFormat::Iso4, &pan, &pvk, 1, &pvv).unwrap());
        }
    }

    #[test]
    fn pin_block_parsing_never_panics(block in any::<[u8; 8]>(), pan in "[0-9]{12,19}") {
        use hsm_sim::primitives::pinblock;
        for f in [PinFormat::Iso0, PinFormat::Iso1, PinFormat::Iso3, PinFormat::Iso4] {
            let _ = pinblock::parse(&block, f, &pan);
        }
    }
}
