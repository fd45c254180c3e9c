//! Typing on a POS keypad: digits only; an amount's digits shift in from the right (`1`,
//! `12`, `123`, `1234` reads 0.01, 0.12, 1.23, 12.34); PINs and passwords show as `*`.

/// What was typed into a form, handed to its job: zeroized when dropped, and never shown by
/// `Debug` (it may be a PIN or a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Typed(zeroize::Zeroizing<String>);

impl Typed {
    /// The digits typed.
    pub fn new(text: &str) -> Self {
        Self(zeroize::Zeroizing::new(text.to_owned()))
    }
}

impl std::ops::Deref for Typed {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typed(***)")
    }
}

/// What a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An amount in fen, up to 9,999,999.99.
    Amount,
    /// Digits, `min` to `max` of them.
    Digits {
        /// Fewest.
        min: usize,
        /// Most.
        max: usize,
    },
    /// A PIN or password: `len` digits, shown masked.
    Secret {
        /// How many.
        len: usize,
    },
}

/// A field being typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    digits: String,
}

/// Most digits of an amount (fen).
const AMOUNT_DIGITS: usize = 10;

impl Entry {
    /// A key: a digit is added (if the field takes more), anything else ignored.
    pub fn digit(&mut self, kind: Kind, c: char) {
        if !c.is_ascii_digit() {
            return;
        }
        let most = match kind {
            Kind::Amount => AMOUNT_DIGITS,
            Kind::Digits { max, .. } => max,
            Kind::Secret { len } => len,
        };
        if kind == Kind::Amount && self.digits.is_empty() && c == '0' {
            return;
        }
        if self.digits.len() < most {
            self.digits.push(c);
        }
    }

    /// Backspace: the last digit goes.
    pub fn back(&mut self) {
        self.digits.pop();
    }

    /// Whether the field holds what it takes.
    pub fn complete(&self, kind: Kind) -> bool {
        match kind {
            Kind::Amount => self.fen() > 0,
            Kind::Digits { min, max } => (min..=max).contains(&self.digits.len()),
            Kind::Secret { len } => self.digits.len() == len,
        }
    }

    /// The digits typed.
    pub fn text(&self) -> &str {
        &self.digits
    }

    /// As an amount, fen.
    pub fn fen(&self) -> u64 {
        self.digits.parse().unwrap_or(0)
    }

    /// As the screen shows it: an amount in yuan, a secret as `*`, digits as typed.
    pub fn shown(&self, kind: Kind) -> String {
        match kind {
            Kind::Amount => crate::codes::yuan_grouped(i64::try_from(self.fen()).unwrap_or(0)),
            Kind::Secret { .. } => "*".repeat(self.digits.len()),
            Kind::Digits { .. } => self.digits.clone(),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // PINs and passwords pass through here.
        zeroize::Zeroize::zeroize(&mut self.digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_shift_in_from_the_right() {
        let mut e = Entry::default();
        let mut seen = Vec::new();
        for c in "01234".chars() {
            e.digit(Kind::Amount, c);
            seen.push(e.shown(Kind::Amount));
        }
        // A leading zero is no digit of an amount.
        assert_eq!(seen, ["0.00", "0.01", "0.12", "1.23", "12.34"]);
        assert_eq!(e.fen(), 1_234);
        e.back();
        assert_eq!(e.shown(Kind::Amount), "1.23");
        for c in "4567890".chars() {
            e.digit(Kind::Amount, c);
        }
        assert_eq!(e.shown(Kind::Amount), "12,345,678.90");
        e.digit(Kind::Amount, '1');
        assert_eq!(e.fen(), 1_234_567_890, "ten digits at most");
    }

    #[test]
    fn secrets_are_masked_and_digits_only() {
        let k = Kind::Secret { len: 6 };
        let mut e = Entry::default();
        for c in "12a3456789".chars() {
            e.digit(k, c);
        }
        assert_eq!(e.text(), "123456");
        assert_eq!(e.shown(k), "******");
        assert!(e.complete(k));
        e.back();
        assert!(!e.complete(k));
    }
}
