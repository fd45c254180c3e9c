//! The configuration loader: any text parsed and validated; errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = switch::Config::parse(text, "fuzz") {
        let _ = config.validate();
        let _ = config.fee_rules();
        let _ = config.uses_test_keys();
        for c in &config.cards {
            let _ = config.pin_method_of(&c.pan);
        }
    }
});
