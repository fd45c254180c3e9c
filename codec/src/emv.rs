//! EMV data elements as they appear in field 55 (EMV Book 3 Annex A, and the PBOC/UICS
//! additions CUP terminals send): their names, and which of them are card data to mask.
//!
//! ```text
//! 9F26 08 95BBE372271DDA7C  ─▶  9F26 "Application Cryptogram" 95BBE372271DDA7C
//! 5A   08 6224242900000113  ─▶  5A   "Application PAN"        622424******0113
//! ```

use crate::tlv::{Tlv, TlvError, TlvIter};

/// Names of the data elements, in tag order (for the binary search).
const NAMES: &[(u32, &str)] = &[
    (0x4F, "Application Identifier (AID), card"),
    (0x50, "Application Label"),
    (0x57, "Track 2 Equivalent Data"),
    (0x5A, "Application PAN"),
    (0x71, "Issuer Script Template 1"),
    (0x72, "Issuer Script Template 2"),
    (0x82, "Application Interchange Profile"),
    (0x84, "Dedicated File Name"),
    (0x8A, "Authorisation Response Code"),
    (0x91, "Issuer Authentication Data"),
    (0x95, "Terminal Verification Results"),
    (0x9A, "Transaction Date"),
    (0x9B, "Transaction Status Information"),
    (0x9C, "Transaction Type"),
    (0x5F20, "Cardholder Name"),
    (0x5F24, "Application Expiration Date"),
    (0x5F25, "Application Effective Date"),
    (0x5F28, "Issuer Country Code"),
    (0x5F2A, "Transaction Currency Code"),
    (0x5F30, "Service Code"),
    (0x5F34, "Application PAN Sequence Number"),
    (0x9F02, "Amount, Authorised"),
    (0x9F03, "Amount, Other"),
    (0x9F06, "Application Identifier (AID), terminal"),
    (0x9F07, "Application Usage Control"),
    (0x9F08, "Application Version Number, card"),
    (0x9F09, "Application Version Number, terminal"),
    (0x9F0B, "Cardholder Name Extended"),
    (0x9F0D, "Issuer Action Code, Default"),
    (0x9F0E, "Issuer Action Code, Denial"),
    (0x9F0F, "Issuer Action Code, Online"),
    (0x9F10, "Issuer Application Data"),
    (0x9F12, "Application Preferred Name"),
    (0x9F1A, "Terminal Country Code"),
    (0x9F1E, "Interface Device Serial Number"),
    (0x9F1F, "Track 1 Discretionary Data"),
    (0x9F20, "Track 2 Discretionary Data"),
    (0x9F21, "Transaction Time"),
    (0x9F26, "Application Cryptogram"),
    (0x9F27, "Cryptogram Information Data"),
    (0x9F33, "Terminal Capabilities"),
    (0x9F34, "Cardholder Verification Method Results"),
    (0x9F35, "Terminal Type"),
    (0x9F36, "Application Transaction Counter"),
    (0x9F37, "Unpredictable Number"),
    (0x9F41, "Transaction Sequence Counter"),
    (0x9F53, "Transaction Category Code"),
    (0x9F5D, "Available Offline Spending Amount"),
    (0x9F63, "Card Product Identification Information"),
    (0x9F6B, "Track 2 Data (contactless)"),
    (0x9F6C, "Card Transaction Qualifiers"),
    (0x9F6E, "Form Factor Indicator"),
    (0x9F74, "Electronic Cash Issuer Authorisation Code"),
    (0xDF31, "Issuer Script Results"),
];

/// The name of EMV data element `tag`, if known.
pub fn name(tag: u32) -> Option<&'static str> {
    NAMES
        .binary_search_by_key(&tag, |(t, _)| *t)
        .ok()
        .map(|i| NAMES[i].1)
}

/// A tag as written (`9F26`).
pub fn tag_hex(tag: u32) -> String {
    match tag {
        0..=0xFF => format!("{tag:02X}"),
        0x100..=0xFFFF => format!("{tag:04X}"),
        _ => format!("{tag:06X}"),
    }
}

/// What a data element shows: its value as upper-case hex, with card data masked (the PAN
/// as the first six and last four digits, track equivalents to their account part; names,
/// expiry, service code and discretionary data by their length).
pub fn masked_value(t: &Tlv<'_>) -> String {
    let hex = hex_upper(t.value);
    match t.tag {
        // Packed digits, padded with F.
        0x5A => crate::mask::pan(hex.trim_end_matches('F')),
        0x57 | 0x9F6B => crate::mask::track(hex.trim_end_matches('F')),
        0x5F20 | 0x5F24 | 0x5F30 | 0x9F0B | 0x9F1F | 0x9F20 | 0x56 | 0x9F6A => {
            format!("[{} bytes]", t.value.len())
        }
        _ => hex,
    }
}

/// Upper-case hex of `bytes`.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

/// The elements of field 55's data, in order; an error where it stops being BER-TLV.
pub fn elements(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    TlvIter::new(data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_lookup() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(name(0x9F26), Some("Application Cryptogram"));
        assert_eq!(name(0x5F2A), Some("Transaction Currency Code"));
        assert_eq!(name(0x9F99), None);
    }

    #[test]
    fn card_data_is_masked() {
        let pan = Tlv {
            tag: 0x5A,
            value: &[0x62, 0x24, 0x24, 0x29, 0x00, 0x00, 0x01, 0x13],
        };
        assert_eq!(masked_value(&pan), "622424******0113");
        let track = Tlv {
            tag: 0x57,
            value: &[
                0x62, 0x24, 0x24, 0x29, 0x00, 0x00, 0x01, 0x13, 0xD2, 0x80, 0x6F,
            ],
        };
        assert_eq!(masked_value(&track), "622424******0113D****");
        let ac = Tlv {
            tag: 0x9F26,
            value: &[0x95, 0xBB],
        };
        assert_eq!(masked_value(&ac), "95BB");
        assert_eq!(tag_hex(0x9F26), "9F26");
        assert_eq!(tag_hex(0x5A), "5A");
    }
}
