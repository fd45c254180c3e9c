//! Primary and secondary bitmaps as one 128-bit set.
//!
//! Bit 1 of the primary bitmap announces the secondary bitmap; it is structural and never a
//! data field. Field `n` is the `n`-th bit from the left.

/// The set of fields present in a message (2–128); bit 1 means "secondary bitmap follows".
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bitmap(u128);

impl Bitmap {
    /// An empty bitmap.
    pub const fn new() -> Self {
        Self(0)
    }

    /// From the primary (and optional secondary) 64-bit words.
    pub fn from_words(primary: u64, secondary: u64) -> Self {
        Self((u128::from(primary) << 64) | u128::from(secondary))
    }

    /// Whether field `n` (1–128) is set.
    #[inline]
    pub fn contains(&self, n: u8) -> bool {
        (1..=128).contains(&n) && (self.0 >> (128 - u32::from(n))) & 1 == 1
    }

    /// Sets field `n` (1–128).
    #[inline]
    pub fn insert(&mut self, n: u8) {
        if (1..=128).contains(&n) {
            self.0 |= 1u128 << (128 - u32::from(n));
        }
    }

    /// Clears field `n`.
    #[inline]
    pub fn remove(&mut self, n: u8) {
        if (1..=128).contains(&n) {
            self.0 &= !(1u128 << (128 - u32::from(n)));
        }
    }

    /// Whether any field above 64 is set (so a secondary bitmap is needed).
    #[inline]
    pub fn needs_secondary(&self) -> bool {
        self.0 as u64 != 0
    }

    /// The primary word, with bit 1 set when a secondary bitmap is needed.
    pub fn primary(&self) -> u64 {
        let p = (self.0 >> 64) as u64;
        if self.needs_secondary() {
            p | (1 << 63)
        } else {
            p & !(1 << 63)
        }
    }

    /// The secondary word.
    pub fn secondary(&self) -> u64 {
        self.0 as u64
    }

    /// The data fields present, ascending (bit 1 excluded).
    pub fn fields(&self) -> Fields {
        // Bit-reversed words: field order becomes the order of `trailing_zeros`, and the
        // lowest set bit clears with `x & (x - 1)`.
        Fields {
            primary: ((self.0 >> 64) as u64 & !(1 << 63)).reverse_bits(),
            secondary: (self.0 as u64).reverse_bits(),
        }
    }
}

/// Iterator over set field numbers, ascending.
#[derive(Clone, Debug)]
pub struct Fields {
    primary: u64,
    secondary: u64,
}

impl Iterator for Fields {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        if self.primary != 0 {
            let n = self.primary.trailing_zeros() as u8 + 1;
            self.primary &= self.primary - 1;
            Some(n)
        } else if self.secondary != 0 {
            let n = self.secondary.trailing_zeros() as u8 + 65;
            self.secondary &= self.secondary - 1;
            Some(n)
        } else {
            None
        }
    }
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cup_sale_bitmap() {
        // 702406C020C19A31 = fields 2,3,4,11,14,22,23,25,26,35,41,42,48,49,52,53,55,59,60,64
        let b = Bitmap::from_words(0x7024_06C0_20C1_9A31, 0);
        let f: Vec<u8> = b.fields().collect();
        assert_eq!(
            f,
            [
                2, 3, 4, 11, 14, 22, 23, 25, 26, 35, 41, 42, 48, 49, 52, 53, 55, 59, 60, 64
            ]
        );
        assert!(!b.needs_secondary());
        assert_eq!(b.primary(), 0x7024_06C0_20C1_9A31);
    }

    #[test]
    fn secondary_is_automatic() {
        let mut b = Bitmap::new();
        b.insert(2);
        b.insert(90);
        assert!(b.needs_secondary());
        assert_eq!(b.primary() >> 63, 1);
        assert_eq!(b.fields().collect::<Vec<_>>(), [2, 90]);
        b.remove(90);
        assert_eq!(b.primary() >> 63, 0);
    }
}
