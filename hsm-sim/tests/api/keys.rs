//! Keys: usage enforcement, sealing, tamper and wrong-LMK detection, key exchange, audit.

use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::{
    AuditEvent, ClearPin, Error, Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, MacAlgorithm,
    PinFormat, SealedKey,
};

use crate::{test_hsm, unhex};

const TMK: &str = "0123456789ABCDEFFEDCBA9876543210";

#[test]
fn the_demo_lmk_needs_explicit_permission() {
    assert_eq!(
        Hsm::new(Lmk::test(), &HsmConfig::default()).unwrap_err(),
        Error::TestKeyRefused
    );
    assert!(Lmk::test().is_test());
    let (lmk, _) = Lmk::generate().unwrap();
    assert!(!lmk.is_test());
    assert!(Hsm::new(lmk, &HsmConfig::default()).is_ok());
}

#[test]
fn usage_is_enforced() {
    let hsm = test_hsm();
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let tak = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Des).unwrap();
    // A TPK cannot MAC.
    assert!(matches!(
        hsm.generate_mac(&tpk, MacAlgorithm::UnionpayEcb, b"x"),
        Err(Error::WrongUsage {
            actual: KeyUsage::Tpk,
            ..
        })
    ));
    // A TAK cannot touch PIN blocks.
    let pin = ClearPin::new("123456").unwrap();
    assert!(matches!(
        hsm.encrypt_pin(&tak, &pin, "6222021000000000017", PinFormat::Iso0),
        Err(Error::WrongUsage {
            actual: KeyUsage::Tak,
            ..
        })
    ));
    // A TAK is no PVK, a TPK no CVK, a TPK no KEK.
    assert!(
        hsm.generate_pvv(&tak, "6222021000000000017", 1, &pin)
            .is_err()
    );
    assert!(
        hsm.generate_cvv(&tpk, "4123456789012345", "8701", "101")
            .is_err()
    );
    assert!(hsm.export_key(&tpk, &tak).is_err());
    // The right keys work.
    assert!(
        hsm.generate_mac(&tak, MacAlgorithm::UnionpayEcb, b"x")
            .is_ok()
    );
    assert!(
        hsm.encrypt_pin(&tpk, &pin, "6222021000000000017", PinFormat::Iso0)
            .is_ok()
    );
}

#[test]
fn any_flipped_bit_is_refused() {
    let hsm = test_hsm();
    let key = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Des).unwrap();
    assert!(hsm.generate_mac(&key, MacAlgorithm::X99, b"data").is_ok());
    let bytes = key.as_bytes().to_vec();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let result = SealedKey::from_bytes(&b)
                .and_then(|k| hsm.generate_mac(&k, MacAlgorithm::X99, b"data"));
            assert!(result.is_err(), "byte {i} bit {bit} accepted");
        }
    }
}

#[test]
fn relabelled_usage_is_refused() {
    let hsm = test_hsm();
    let tak = hsm
        .generate_key(KeyUsage::Tak, KeyAlgorithm::Tdes2)
        .unwrap();
    let mut b = tak.as_bytes().to_vec();
    b[2] = 2; // claim to be a TPK
    let forged = SealedKey::from_bytes(&b).unwrap();
    assert_eq!(forged.usage().unwrap(), KeyUsage::Tpk);
    let pin = ClearPin::new("1234").unwrap();
    assert_eq!(
        hsm.encrypt_pin(&forged, &pin, "6222021000000000017", PinFormat::Iso0)
            .unwrap_err(),
        Error::SealedKeyRejected
    );
}

#[test]
fn another_lmk_cannot_open_a_key() {
    let hsm = test_hsm();
    let key = hsm.generate_key(KeyUsage::Tak, KeyAlgorithm::Des).unwrap();
    let (other, _) = Lmk::generate().unwrap();
    let other = Hsm::new(other, &HsmConfig::default()).unwrap();
    assert_eq!(
        other
            .generate_mac(&key, MacAlgorithm::X99, b"d")
            .unwrap_err(),
        Error::SealedKeyRejected
    );
    assert_eq!(
        other.check_value(&key).unwrap_err(),
        Error::SealedKeyRejected
    );
}

#[test]
fn sealed_keys_survive_hex_and_show_no_secret() {
    let hsm = test_hsm();
    let tmk = hsm
        .import_clear_key(KeyUsage::Tmk, KeyAlgorithm::Tdes2, &unhex(TMK))
        .unwrap();
    assert_eq!(tmk.kcv(), [0x08, 0xD7, 0xB4]);
    let again = SealedKey::from_hex(&tmk.to_hex()).unwrap();
    assert_eq!(hsm.check_value(&again).unwrap()[..3], [0x08, 0xD7, 0xB4]);
    let shown = format!("{tmk:?} {tmk}");
    assert_eq!(
        shown,
        "SealedKey(TMK Tdes2 KCV 08D7B4) TMK Tdes2 KCV 08D7B4"
    );
    assert!(!shown.contains("0123456789ABCDEF"));
    assert!(SealedKey::from_hex("00").is_err());
    assert!(SealedKey::from_hex("zz").is_err());
}

#[test]
fn terminal_keys_decrypt_under_the_tmk_with_matching_check_values() {
    let hsm = test_hsm();
    let tmk = hsm
        .import_clear_key(KeyUsage::Tmk, KeyAlgorithm::Tdes2, &unhex(TMK))
        .unwrap();
    let keys = hsm
        .generate_terminal_keys(&tmk, KeyAlgorithm::Tdes2, KeyAlgorithm::Des)
        .unwrap();
    assert_eq!(keys.tpk_under_tmk.len(), 16);
    assert_eq!(keys.tak_under_tmk.len(), 8);
    // The terminal's side: decrypt with its clear TMK, check the check values.
    let t = DesKey::new(&unhex(TMK)).unwrap();
    let tpk = t.decrypt_ecb(&keys.tpk_under_tmk).unwrap();
    let tak = t.decrypt_ecb(&keys.tak_under_tmk).unwrap();
    assert_eq!(
        DesKey::new(&tpk).unwrap().encrypt([0; 8])[..4],
        keys.tpk_check
    );
    assert_eq!(
        DesKey::new(&tak).unwrap().encrypt([0; 8])[..4],
        keys.tak_check
    );
    // A MAC computed by the terminal with its clear TAK verifies in the HSM with the sealed one.
    let mac = hsm_sim::primitives::mac::unionpay_ecb(&DesKey::new(&tak).unwrap(), b"0200 message");
    assert!(
        hsm.verify_mac(&keys.tak, MacAlgorithm::UnionpayEcb, b"0200 message", &mac)
            .unwrap()
    );
    assert!(
        !hsm.verify_mac(&keys.tak, MacAlgorithm::UnionpayEcb, b"0200 messagf", &mac)
            .unwrap()
    );
    // Import under a TMK with the right and a wrong check value.
    let tak2 = hsm
        .import_key(
            &tmk,
            KeyUsage::Tak,
            &keys.tak_under_tmk,
            Some(&keys.tak_check),
        )
        .unwrap();
    assert_eq!(tak2.kcv(), keys.tak.kcv());
    assert!(
        hsm.import_key(&tmk, KeyUsage::Tak, &keys.tak_under_tmk, Some(&[0, 0, 0]))
            .is_err()
    );
    // A ZPK is wrapped by a ZMK, not a TMK.
    let zpk = hsm
        .generate_key(KeyUsage::Zpk, KeyAlgorithm::Tdes2)
        .unwrap();
    assert!(hsm.export_key(&tmk, &zpk).is_err());
    let zmk = hsm
        .generate_key(KeyUsage::Zmk, KeyAlgorithm::Tdes2)
        .unwrap();
    assert_eq!(hsm.export_key(&zmk, &zpk).unwrap().len(), 16);
}

#[test]
fn audit_chain_verifies_and_shows_tampering() {
    let dir = std::env::temp_dir().join(format!("hsm-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&file);
    let config = HsmConfig {
        allow_test_keys: true,
        audit_file: Some(file.clone()),
        ..HsmConfig::default()
    };
    let hsm = Hsm::new(Lmk::test(), &config).unwrap();
    let tmk = hsm
        .import_clear_key(KeyUsage::Tmk, KeyAlgorithm::Tdes2, &unhex(TMK))
        .unwrap();
    hsm.generate_terminal_keys(&tmk, KeyAlgorithm::Tdes2, KeyAlgorithm::Des)
        .unwrap();

    let entries = hsm.audit().entries();
    let events: Vec<_> = entries.iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        [
            AuditEvent::LmkLoaded,
            AuditEvent::KeyImported,
            AuditEvent::KeyGenerated,
            AuditEvent::KeyGenerated,
            AuditEvent::KeyExported,
            AuditEvent::KeyExported
        ]
    );
    assert_eq!(entries[1].kcv, "08D7B4");
    hsm.audit().verify(&entries).unwrap();
    // The file holds the same chain, and no key material.
    let from_file = hsm_sim::AuditLog::read_file(&file).unwrap();
    assert_eq!(from_file, entries);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("0123456789ABCDEF"));

    let mut edited = entries.clone();
    edited[2].usage = Some(KeyUsage::Zpk);
    assert_eq!(hsm.audit().verify(&edited).unwrap_err().seq, 2);
    let mut removed = entries.clone();
    removed.remove(3);
    assert_eq!(hsm.audit().verify(&removed).unwrap_err().seq, 4);
    let mut swapped = entries.clone();
    swapped.swap(1, 2);
    assert!(hsm.audit().verify(&swapped).is_err());
    // Another HSM's key cannot vouch for this chain.
    let other = Hsm::new(Lmk::generate().unwrap().0, &HsmConfig::default()).unwrap();
    assert!(other.audit().verify(&entries).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_and_debug_carry_no_secrets() {
    let hsm = test_hsm();
    let pin = ClearPin::new("123456").unwrap();
    assert_eq!(format!("{pin:?}"), "ClearPin(****)");
    let tpk = hsm
        .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
        .unwrap();
    let block = hsm
        .encrypt_pin(&tpk, &pin, "6222021000000000017", PinFormat::Iso0)
        .unwrap();
    assert_eq!(format!("{block:?}"), "EncryptedPinBlock([8 bytes])");
    let hsm_shown = format!("{hsm:?}");
    assert!(
        hsm_shown.starts_with("Hsm { lmk: Lmk(check "),
        "{hsm_shown}"
    );
    assert!(!hsm_shown.contains(&hsm_sim::TEST_LMK_HEX[..16]));
    // Error text names the problem, not the data.
    for e in [
        Error::BadPinBlock,
        Error::SealedKeyRejected,
        Error::BadPan,
        Error::FailureLimit,
    ] {
        let t = e.to_string();
        assert!(!t.contains("123456") && !t.contains("6222021"), "{t}");
    }
}

#[test]
fn keyed_digests_depend_on_domain_data_and_lmk() {
    let hsm = test_hsm();
    let a = hsm.keyed_digest("pan", b"6222021000000000017");
    assert_eq!(
        a,
        test_hsm().keyed_digest("pan", b"6222021000000000017"),
        "same LMK, same digest"
    );
    assert_ne!(a, hsm.keyed_digest("pan", b"6222021000000000025"));
    assert_ne!(a, hsm.keyed_digest("msg", b"6222021000000000017"));
    let other = Hsm::new(Lmk::generate().unwrap().0, &HsmConfig::default()).unwrap();
    assert_ne!(a, other.keyed_digest("pan", b"6222021000000000017"));
}

#[test]
fn a_digest_in_parts_is_the_digest_of_their_concatenation() {
    let hsm = test_hsm();
    let whole = hsm.keyed_digest("request", b"0200 first run, second run, the rest");
    for parts in [
        &[&b"0200 first run, "[..], b"second run, ", b"the rest"][..],
        &[b"", b"0200 first run, second run, the rest", b""],
        &[b"0200 first run, second run, the rest"],
    ] {
        assert_eq!(hsm.keyed_digest_parts("request", parts), whole);
    }
    assert_ne!(
        hsm.keyed_digest_parts("request", &[b"0200 first run, ", b"the rest"]),
        whole
    );
    // The domain's length goes first, so a domain cannot run into the data.
    assert_ne!(
        hsm.keyed_digest_parts("requestX", &[b"0200"]),
        hsm.keyed_digest_parts("request", &[b"X0200"])
    );
}

#[test]
fn sealed_records_open_only_in_their_domain_and_unaltered() {
    let hsm = test_hsm();
    let data = b"0420 reversal with PAN 6217001000000000011";
    let sealed = hsm.seal_record("saf", data).unwrap();
    assert!(
        !sealed.windows(16).any(|w| w == &data[23..39]),
        "the PAN must not appear in the sealed record"
    );
    assert_eq!(hsm.open_record("saf", &sealed).unwrap().as_slice(), data);
    // Two seals of the same record differ (fresh nonce).
    assert_ne!(hsm.seal_record("saf", data).unwrap(), sealed);
    assert_eq!(
        hsm.open_record("other", &sealed).unwrap_err(),
        Error::SealedKeyRejected
    );
    let mut altered = sealed.clone();
    altered[14] ^= 1;
    assert_eq!(
        hsm.open_record("saf", &altered).unwrap_err(),
        Error::SealedKeyRejected
    );
    assert!(hsm.open_record("saf", &sealed[..10]).is_err());
    let (lmk, _) = Lmk::generate().unwrap();
    let other = Hsm::new(lmk, &HsmConfig::default()).unwrap();
    assert!(other.open_record("saf", &sealed).is_err());
}
