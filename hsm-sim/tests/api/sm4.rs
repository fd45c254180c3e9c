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
    }
}
