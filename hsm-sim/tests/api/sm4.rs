//! SM4 against an independent implementation: `tests/fixtures/sm4.json`, made by
//! `scripts/sm4-vectors.py` with the `gmssl` package (not this crate's code).

use hsm_sim::ClearPin;
use hsm_sim::primitives::sm4::{self, Sm4Key};
use serde::Deserialize;

use crate::unhex;

#[derive(Deserialize)]
struct Doc {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    key: String,
    check_value: String,
    pin: String,
    pan: String,
    pin_block_clear: String,
    pin_block: String,
    data: String,
    mac: String,
    cbc_mac: String,
}

#[test]
fn every_independent_vector_agrees() {
    let doc: Doc = serde_json::from_str(include_str!("../fixtures/sm4.json")).unwrap();
    assert!(doc.vectors.len() >= 16);
    for v in doc.vectors {
        let key_bytes = unhex(&v.key);
        let key = Sm4Key::new(&key_bytes).unwrap();
        assert_eq!(
            sm4::check_value(&key_bytes).unwrap().to_vec(),
            unhex(&v.check_value)
        );
        let pin = ClearPin::new(&v.pin).unwrap();
        let clear = sm4::pin_block(&pin, &v.pan).unwrap();
        assert_eq!(clear.to_vec(), unhex(&v.pin_block_clear), "{}", v.pan);
        let enc = key.encrypt(clear);
        assert_eq!(enc.to_vec(), unhex(&v.pin_block));
        let back = sm4::pin_from_block(&key.decrypt(enc), &v.pan).unwrap();
        assert!(back == pin);
        assert_eq!(
            sm4::pos_mac(&key, &unhex(&v.data)).to_vec(),
            v.mac.as_bytes(),
            "MAC over {} bytes",
            v.data.len() / 2
        );
        assert_eq!(
            sm4::cbc_mac(&key, &unhex(&v.data)).to_vec(),
            unhex(&v.cbc_mac),
            "CBC-MAC over {} bytes",
            v.data.len() / 2
        );
    }
}

mod in_the_hsm {
    use hsm_sim::primitives::cipher::DesKey;
    use hsm_sim::primitives::pinblock;
    use hsm_sim::primitives::sm4::{self, Sm4Key};
    use hsm_sim::{
        ClearPin, EncryptedPinBlock, Error, KeyAlgorithm, KeyUsage, MacAlgorithm, PinFormat,
    };

    use crate::{test_hsm, unhex};

    const PAN: &str = "6222021000000000017";

    /// The worked example's TMK and working key, imported with its check value.
    #[test]
    fn an_sm4_key_under_an_sm4_tmk_imports_with_its_check_value() {
        let hsm = test_hsm();
        let tmk = hsm
            .import_clear_key(
                KeyUsage::Tmk,
                KeyAlgorithm::Sm4,
                &unhex("1234567890ABCDEFABCDEF0987654321"),
            )
            .unwrap();
        let cryptogram = unhex("3D66234C49E4296FF9C78D8BACBD6A76");
        let tpk = hsm
            .import_key(&tmk, KeyUsage::Tpk, &cryptogram, Some(&unhex("861E83E3")))
            .unwrap();
        assert_eq!(tpk.algorithm().unwrap(), KeyAlgorithm::Sm4);
        assert_eq!(hsm.check_value(&tpk).unwrap(), unhex("861E83E31FAEBF10"));
        assert_eq!(hsm.export_key(&tmk, &tpk).unwrap(), cryptogram);
        assert!(matches!(
            hsm.import_key(&tmk, KeyUsage::Tpk, &cryptogram, Some(&unhex("00000000"))),
            Err(Error::SealedKeyRejected)
        ));
        // An SM4 TMK wraps SM4 keys only; a TDES one, TDES keys only.
        let tdes = hsm
            .generate_key(KeyUsage::Tpk, KeyAlgorithm::Tdes2)
            .unwrap();
        assert!(matches!(
            hsm.export_key(&tmk, &tdes),
            Err(Error::WrongAlgorithm)
        ));
        let tdes_tmk = hsm
            .generate_key(KeyUsage::Tmk, KeyAlgorithm::Tdes2)
            .unwrap();
        assert!(matches!(
            hsm.export_key(&tdes_tmk, &tpk),
            Err(Error::WrongAlgorithm)
        ));
    }

    /// A sign-on for an SM4 terminal: its TPK and TAK under its SM4 TMK, the terminal opens
    /// them, and its PIN block and MAC verify in the HSM; the PIN goes on under a TDES ZPK.
    #[test]
    fn an_sm4_terminal_signs_on_pays_and_its_pin_goes_on_under_tdes() {
        let hsm = test_hsm();
        let tmk_clear = unhex("0123456789ABCDEFFEDCBA9876543210");
        let tmk = hsm
            .import_clear_key(KeyUsage::Tmk, KeyAlgorithm::Sm4, &tmk_clear)
            .unwrap();
        let keys = hsm
            .generate_terminal_keys(&tmk, KeyAlgorithm::Sm4, KeyAlgorithm::Sm4)
            .unwrap();
        assert_eq!(keys.tpk_under_tmk.len(), 16);
        // The terminal's side, with clear keys.
        let t = Sm4Key::new(&tmk_clear).unwrap();
        let tpk_clear = t.decrypt_ecb(&keys.tpk_under_tmk).unwrap();
        let tak_clear = t.decrypt_ecb(&keys.tak_under_tmk).unwrap();
        assert_eq!(sm4::check_value(&tpk_clear).unwrap()[..4], keys.tpk_check);
        assert_eq!(sm4::check_value(&tak_clear).unwrap()[..4], keys.tak_check);
        let pin = ClearPin::new("123456").unwrap();
        let block = Sm4Key::new(&tpk_clear)
            .unwrap()
            .encrypt(sm4::pin_block(&pin, PAN).unwrap());
        let block = EncryptedPinBlock::new(&block).unwrap();
        // On to a TDES ZPK as ISO format 0, and back to an SM4 ZPK.
        let zpk_clear = unhex("0123456789ABCDEF0123456789ABCDEF");
        let zpk = hsm
            .import_clear_key(KeyUsage::Zpk, KeyAlgorithm::Tdes2, &zpk_clear)
            .unwrap();
        let out = hsm
            .translate_pin(
                &keys.tpk,
                PinFormat::Sm4,
                &zpk,
                PinFormat::Iso0,
                &block,
                PAN,
            )
            .unwrap();
        let mut b8 = [0u8; 8];
        b8.copy_from_slice(out.as_bytes());
        let clear = DesKey::new(&zpk_clear).unwrap().decrypt(b8);
        assert!(pinblock::parse(&clear, PinFormat::Iso0, PAN).unwrap() == pin);
        let sm4_zpk = hsm.generate_key(KeyUsage::Zpk, KeyAlgorithm::Sm4).unwrap();
        let back = hsm
            .translate_pin(&zpk, PinFormat::Iso0, &sm4_zpk, PinFormat::Sm4, &out, PAN)
            .unwrap();
        assert_eq!(back.as_bytes().len(), 16);
        let round = hsm
            .translate_pin(&sm4_zpk, PinFormat::Sm4, &zpk, PinFormat::Iso0, &back, PAN)
            .unwrap();
        let mut r8 = [0u8; 8];
        r8.copy_from_slice(round.as_bytes());
        assert!(
            pinblock::parse(
                &DesKey::new(&zpk_clear).unwrap().decrypt(r8),
                PinFormat::Iso0,
                PAN
            )
            .unwrap()
                == pin
        );
        // A format that does not fit the key: refused, not guessed.
        assert!(matches!(
            hsm.translate_pin(
                &keys.tpk,
                PinFormat::Iso0,
                &zpk,
                PinFormat::Iso0,
                &block,
                PAN
            ),
            Err(Error::WrongAlgorithm | Error::DataLength | Error::BadPinBlock)
        ));
        // On-us: the IBM 3624 offset checked from the SM4 block (a TDES PVK).
        let pvk = hsm
            .generate_key(KeyUsage::Pvk, KeyAlgorithm::Tdes2)
            .unwrap();
        let params = hsm_sim::Ibm3624::whole_pin(*b"0123456789012345");
        let validation = hsm_sim::primitives::pvv::validation_from_pan(PAN).unwrap();
        let offset = hsm
            .generate_ibm3624_offset(&pvk, &params, &validation, &pin)
            .unwrap();
        let verify = |b: &EncryptedPinBlock| {
            hsm.verify_pin_ibm3624(
                &keys.tpk,
                b,
                PinFormat::Sm4,
                PAN,
                &pvk,
                &params,
                &validation,
                &offset,
            )
        };
        assert!(verify(&block).unwrap());
        let wrong = Sm4Key::new(&tpk_clear)
            .unwrap()
            .encrypt(sm4::pin_block(&ClearPin::new("123457").unwrap(), PAN).unwrap());
        assert!(!verify(&EncryptedPinBlock::new(&wrong).unwrap()).unwrap());
        // The MAC, both ways; the DES algorithms refuse an SM4 key and the other way round.
        let data = b"0200702406C020C19A31166224242900000113000000";
        let mac = sm4::pos_mac(&Sm4Key::new(&tak_clear).unwrap(), data);
        assert!(
            hsm.verify_mac(&keys.tak, MacAlgorithm::UnionpaySm4, data, &mac)
                .unwrap()
        );
        assert!(
            !hsm.verify_mac(&keys.tak, MacAlgorithm::UnionpaySm4, b"tampered", &mac)
                .unwrap()
        );
        assert!(matches!(
            hsm.generate_mac(&keys.tak, MacAlgorithm::UnionpayEcb, data),
            Err(Error::WrongAlgorithm)
        ));
        assert!(matches!(
            hsm.generate_mac(&keys.tak, MacAlgorithm::X919, data),
            Err(Error::WrongAlgorithm)
        ));
        let des_tak = hsm
            .generate_key(KeyUsage::Tak, KeyAlgorithm::Tdes2)
            .unwrap();
        assert!(matches!(
            hsm.generate_mac(&des_tak, MacAlgorithm::UnionpaySm4, data),
            Err(Error::WrongAlgorithm)
        ));
    }
}
