//! Keys held unsealed between calls: the same answers as unsealing every time, and every
//! check still made.

use hsm_sim::{
    ClearPin, Error, Hsm, HsmConfig, KeyAlgorithm, KeyUsage, Lmk, MacAlgorithm, PinFormat,
    SealedKey,
};

const PAN: &str = "6222021000000000017"; // test card

fn hsm(key_cache: usize) -> Hsm {
    Hsm::new(
        Lmk::test(),
        &HsmConfig {
            allow_test_keys: true,
            key_cache,
            ..HsmConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn an_hsm_that_holds_keys_answers_as_one_that_unseals_every_time() {
    // Two keys held at most, six in use: hits, misses and keys leaving, in turn.
    let (held, unsealing) = (hsm(2), hsm(0));
    let pin = ClearPin::new("123456").unwrap();
    let mut keys = Vec::new();
    for alg in [KeyAlgorithm::Des, KeyAlgorithm::Tdes2, KeyAlgorithm::Tdes3] {
        keys.push((
            held.generate_key(KeyUsage::Tak, alg).unwrap(),
            held.generate_key(KeyUsage::Tpk, alg).unwrap(),
        ));
    }
    let pvk = held
        .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
        .unwrap();
    for round in 0..3 {
        for (tak, tpk) in &keys {
            let data = format!("round {round}: a sale's MAC data");
            for alg in [MacAlgorithm::UnionpayEcb, MacAlgorithm::X99] {
                let a = held.generate_mac(tak, alg, data.as_bytes()).unwrap();
                let b = unsealing.generate_mac(tak, alg, data.as_bytes()).unwrap();
                assert_eq!(a.as_bytes(), b.as_bytes());
                assert!(
                    unsealing
                        .verify_mac(tak, alg, data.as_bytes(), a.as_bytes())
                        .unwrap()
                );
            }
            let block = held.encrypt_pin(tpk, &pin, PAN, PinFormat::Iso0).unwrap();
            let pvv = unsealing.generate_pvv(&pvk, PAN, 1, &pin).unwrap();
            assert!(
                held.verify_pin_pvv(tpk, &block, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
                    .unwrap()
            );
            assert!(
                unsealing
                    .verify_pin_pvv(tpk, &block, PinFormat::Iso0, PAN, &pvk, 1, &pvv)
                    .unwrap()
            );
        }
    }
}

/// An HSM holding a TAK it has just used.
fn held_tak() -> (Hsm, SealedKey) {
    let hsm = hsm(16);
    let tak = hsm
        .generate_key(KeyUsage::Tak, KeyAlgorithm::Tdes2)
        .unwrap();
    hsm.generate_mac(&tak, MacAlgorithm::UnionpayEcb, b"x")
        .unwrap();
    (hsm, tak)
}

#[test]
fn a_held_key_is_still_checked_for_what_it_is_for() {
    let (hsm, tak) = held_tak();
    let pin = ClearPin::new("123456").unwrap();
    assert!(matches!(
        hsm.encrypt_pin(&tak, &pin, PAN, PinFormat::Iso0),
        Err(Error::WrongUsage { .. })
    ));
    assert!(matches!(
        hsm.generate_pvv(&tak, PAN, 1, &pin),
        Err(Error::WrongUsage { .. })
    ));
}

#[test]
fn an_altered_copy_of_a_held_key_is_refused() {
    let (hsm, tak) = held_tak();
    let bytes = tak.as_bytes();
    for at in [bytes.len() / 2, bytes.len() - 1] {
        let mut altered = bytes.to_vec();
        altered[at] ^= 0x01;
        let altered = SealedKey::from_bytes(&altered).unwrap();
        assert!(
            hsm.generate_mac(&altered, MacAlgorithm::UnionpayEcb, b"x")
                .is_err()
        );
    }
}
