//! `switch describe`: any bytes, every dialect, text and JSON, masked and not.
#![no_main]

use codec::Dialect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for d in [
        Dialect::cup_pos(),
        Dialect::iso87_ascii(),
        Dialect::iso87_binary(),
    ] {
        for (json, unmasked) in [(false, false), (true, true)] {
            let _ = switch::describe::describe(d, data, json, unmasked);
        }
    }
});
