//! hsm-sim's payShield host protocol: any command body gets a response code and an error
//! code (never a panic), and any frame payload an answer or a clean close.
#![no_main]

use std::sync::OnceLock;

use hsm_sim::payshield::server::answer;
use hsm_sim::payshield::{Config, PayShield, VariantLmk};
use libfuzzer_sys::fuzz_target;

fn hsm() -> &'static PayShield {
    static HSM: OnceLock<PayShield> = OnceLock::new();
    HSM.get_or_init(|| {
        let config = Config {
            allow_test_lmk: true,
            ..Config::default()
        };
        PayShield::new(VariantLmk::test(), &config).expect("test LMK allowed")
    })
}

fuzz_target!(|data: &[u8]| {
    let out = hsm().process(data);
    assert!(out.len() >= 4, "a response code and an error code");
    if let Some(a) = answer(hsm(), 4, data) {
        assert!(a.len() >= 8);
    }
});
