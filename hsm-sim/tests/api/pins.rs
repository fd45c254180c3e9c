//! PIN verification, translation, the failure limiter, MACs and CVVs through the HSM.

use std::time::Duration;

use hsm_sim::{
    ClearPin, EncryptedPinBlock, Error, Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, MacAlgorithm,
    PinFormat,
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
    let table = *b"0123456789012345";
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
