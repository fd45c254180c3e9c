//! Response codes (field 39), DESIGN.md §4.

/// Approved.
pub const APPROVED: &str = "00";
/// Invalid merchant: the TID is known but belongs to another merchant.
pub const INVALID_MERCHANT: &str = "03";
/// Do not honour (card blocked by the issuer).
pub const DO_NOT_HONOUR: &str = "05";
/// Invalid transaction: a kind this switch does not serve.
pub const INVALID_TXN: &str = "12";
/// Invalid amount: zero, over the acquirer's maximum, or another currency.
pub const INVALID_AMOUNT: &str = "13";
/// Invalid card number: bad Luhn digit, unreadable, or no such on-us card.
pub const INVALID_CARD: &str = "14";
/// No such issuer: no route for the BIN.
pub const NO_ISSUER: &str = "15";
/// Original not found (void, refund).
pub const NO_ORIGINAL: &str = "25";
/// Format error.
pub const FORMAT_ERROR: &str = "30";
/// Lost card.
pub const LOST_CARD: &str = "41";
/// Stolen card.
pub const STOLEN_CARD: &str = "43";
/// Insufficient funds or credit.
pub const INSUFFICIENT_FUNDS: &str = "51";
/// Expired card (or an expiry that does not match the card).
pub const EXPIRED_CARD: &str = "54";
/// Wrong PIN (or no PIN where one is required).
pub const WRONG_PIN: &str = "55";
/// Refunds would exceed the original amount.
pub const EXCEEDS_ORIGINAL: &str = "61";
/// Original amount mismatch (void).
pub const AMOUNT_MISMATCH: &str = "64";
/// PIN tries exceeded.
pub const PIN_TRIES_EXCEEDED: &str = "75";
/// Batch number does not match the terminal's open batch: sign on again.
pub const BATCH_MISMATCH: &str = "77";
/// Duplicate: same terminal, batch, trace and MTI with different content.
pub const DUPLICATE: &str = "94";
/// System malfunction (HSM or journal failure).
pub const SYSTEM_ERROR: &str = "96";
/// Terminal not registered.
pub const NO_TERMINAL: &str = "97";
/// MAC failure, or no working keys: sign on again.
pub const MAC_FAILURE: &str = "A0";
/// Issuer unavailable (every line down, or too many requests waiting).
pub const ISSUER_UNAVAILABLE: &str = "91";
/// Issuer time-out: no reply in time; the request is reversed.
pub const ISSUER_TIMEOUT: &str = "98";
/// Expired card (issuer's code).
pub const EXPIRED_CARD_PICKUP: &str = "33";
/// Transaction not permitted to cardholder (issuer's code).
pub const NOT_PERMITTED_CARDHOLDER: &str = "57";
/// Transaction not permitted to terminal (issuer's code).
pub const NOT_PERMITTED_TERMINAL: &str = "58";
/// Restricted card (issuer's code).
pub const RESTRICTED_CARD: &str = "62";
/// Exceeds withdrawal frequency limit (issuer's code).
pub const FREQUENCY_LIMIT: &str = "65";

const ALL: [&str; 30] = [
    ISSUER_UNAVAILABLE,
    ISSUER_TIMEOUT,
    EXPIRED_CARD_PICKUP,
    NOT_PERMITTED_CARDHOLDER,
    NOT_PERMITTED_TERMINAL,
    RESTRICTED_CARD,
    FREQUENCY_LIMIT,
    NO_ORIGINAL,
    EXCEEDS_ORIGINAL,
    AMOUNT_MISMATCH,
    APPROVED,
    INVALID_MERCHANT,
    DO_NOT_HONOUR,
    INVALID_TXN,
    INVALID_AMOUNT,
    INVALID_CARD,
    NO_ISSUER,
    FORMAT_ERROR,
    LOST_CARD,
    STOLEN_CARD,
    INSUFFICIENT_FUNDS,
    EXPIRED_CARD,
    WRONG_PIN,
    PIN_TRIES_EXCEEDED,
    BATCH_MISMATCH,
    DUPLICATE,
    SYSTEM_ERROR,
    NO_TERMINAL,
    MAC_FAILURE,
    "other",
];

/// The code as a metric label: one of the codes above, or `other`.
pub fn label(code: &str) -> &'static str {
    ALL.iter().copied().find(|c| *c == code).unwrap_or("other")
}

/// An issuer's code as the terminal gets it: a known code as is; any other code is a
/// decline the terminal may not know, answered `05` (do not honour).
pub fn from_issuer(code: &str) -> &'static str {
    ALL.iter()
        .copied()
        .find(|c| *c == code && *c != "other")
        .unwrap_or(DO_NOT_HONOUR)
}

/// A stored code back as a static string; unknown codes read as `96`.
pub fn static_code(code: &str) -> &'static str {
    ALL.iter()
        .copied()
        .find(|c| *c == code && *c != "other")
        .unwrap_or(SYSTEM_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_codes_the_terminal_may_not_know_are_do_not_honour() {
        assert_eq!(from_issuer("51"), INSUFFICIENT_FUNDS);
        assert_eq!(from_issuer("55"), WRONG_PIN);
        assert_eq!(from_issuer("62"), RESTRICTED_CARD);
        assert_eq!(from_issuer("N7"), DO_NOT_HONOUR);
        assert_eq!(from_issuer("other"), DO_NOT_HONOUR);
        assert_eq!(from_issuer(""), DO_NOT_HONOUR);
        // Stored codes read back: unknown ones are a malfunction, never an approval.
        assert_eq!(static_code("N7"), SYSTEM_ERROR);
        assert_eq!(label("N7"), "other");
    }
}
