//! Card data: the PAN from field 2 or track 2, Luhn, expiry, BIN routing.

use codec::Message;

use crate::config::CardType;

/// A card number read from a request, kept on the stack (up to 19 digits).
#[derive(Clone, Copy)]
pub struct Pan {
    digits: [u8; 19],
    len: u8,
}

impl Pan {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }

    /// Masked for logs and the journal: first 6 and last 4.
    pub fn masked(&self) -> String {
        codec::mask::pan(self.as_str())
    }

    fn from_chars(chars: impl Iterator<Item = u8>) -> Option<Self> {
        let mut digits = [0u8; 19];
        let mut len = 0usize;
        for c in chars {
            if !c.is_ascii_digit() || len == 19 {
                return None;
            }
            digits[len] = c;
            len += 1;
        }
        (len >= 12).then_some(Self {
            digits,
            len: len as u8,
        })
    }
}

/// `Debug` masks.
impl std::fmt::Debug for Pan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// The PAN from field 2, else from track 2 (before the separator); `None` if absent or not
/// 12–19 digits.
pub fn pan_of(msg: &Message<'_>) -> Option<Pan> {
    if let Some(d) = msg.digits(2) {
        return Pan::from_chars(d.chars());
    }
    let track = msg.digits(35)?;
    Pan::from_chars(track.chars().take_while(|c| *c != b'D' && *c != b'='))
}

/// The expiry YYMM from field 14, else from track 2 (the four digits after the separator).
pub fn expiry_of(msg: &Message<'_>) -> Option<u32> {
    if let Some(d) = msg.digits(14) {
        return d.to_u64().map(|v| v as u32);
    }
    let track = msg.digits(35)?;
    let sep = track.chars().position(|c| c == b'D' || c == b'=')?;
    track.slice(sep + 1, 4)?.to_u64().map(|v| v as u32)
}

/// The Luhn check digit test.
pub fn luhn_ok(pan: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in pan.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// BIN routes, longest prefix first.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    by_length: Vec<(String, Route)>,
}

/// Where a BIN goes: its card type, and the remote issuer (by index) or on-us (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Debit or credit (fees, and the on-us authoriser).
    pub card_type: CardType,
    /// The remote issuer's index, or `None` for on-us.
    pub issuer: Option<usize>,
}

impl Routes {
    /// Routes from (prefix, route) pairs.
    pub fn new(mut routes: Vec<(String, Route)>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Self { by_length: routes }
    }

    /// The route of the longest matching prefix.
    pub fn route(&self, pan: &str) -> Option<Route> {
        self.by_length
            .iter()
            .find(|(p, _)| pan.starts_with(p.as_str()))
            .map(|(_, r)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_ok("6222021000000000017"));
        assert!(luhn_ok("6250941000000009"));
        assert!(!luhn_ok("6222021000000000018"));
    }

    #[test]
    fn longest_prefix_wins() {
        let on_us = |card_type| Route {
            card_type,
            issuer: None,
        };
        let r = Routes::new(vec![
            ("62".into(), on_us(CardType::Credit)),
            ("622202".into(), on_us(CardType::Debit)),
        ]);
        assert_eq!(
            r.route("6222021000000000017").map(|r| r.card_type),
            Some(CardType::Debit)
        );
        assert_eq!(
            r.route("6250941000000009").map(|r| r.card_type),
            Some(CardType::Credit)
        );
        assert_eq!(r.route("4111111111111111"), None);
    }
}
