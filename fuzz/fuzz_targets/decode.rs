//! Decode any bytes in every built-in dialect; whatever decodes must display, mask and
//! re-encode to the same bytes.
#![no_main]

use codec::{Dialect, MessageBuilder, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for d in [
        Dialect::cup_pos(),
        Dialect::iso87_ascii(),
        Dialect::iso87_binary(),
    ] {
        if let Ok(msg) = decode(d, data) {
            let _ = format!("{msg:?} {msg}");
            for f in msg.fields() {
                let _ = f.masked();
            }
            let again = MessageBuilder::from_message(&msg)
                .encode_to_vec(d)
                .expect("re-encode");
            assert_eq!(again, data);
        }
    }
});
