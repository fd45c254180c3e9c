//! The payShield **variant LMK**: 20 double-length DES key pairs (`00-01` … `38-39`), a key
//! type code choosing a pair and a variant, and a key scheme saying how a key's halves are
//! encrypted under it.
//!
//! ```text
//!  key type code  "402"  ─▶  variant 4 (0x2B... table below), pair code "02" ─▶ LMK 14-15
//!
//!  LMK pair used  = L | R      (two 8-byte DES keys, EDE)
//!  key type variant v (1-9)   XORed into L[0]:   A6 5A 6A DE 2B 50 74 9C FA
//!  scheme variant s           XORed into R[0]:   U: A6 (left half) 5A (right half)
//!                                                T: 6A DE 2B (three thirds)
//!  cryptogram     = for each 8-byte part i:  TDES-ECB(L^v | R^s_i, part i)
//!
//!  scheme  Z / none  single length (8 bytes), no scheme variant
//!          U         double length, scheme variants A6 / 5A
//!          T         triple length, scheme variants 6A / DE / 2B
//!          X / Y     double / triple length (X9.17), no scheme variant
//! ```
//!
//! The test LMK set is the one Thales publishes for its test and development HSMs; it is
//! test data and refused unless test keys are allowed.

use zeroize::Zeroizing;

use super::code::ErrorCode;
use crate::primitives::cipher::DesKey;

/// Variants XORed into the first byte of the pair's left key, by variant number 1–9.
const KEY_TYPE_VARIANTS: [u8; 10] = [0x00, 0xA6, 0x5A, 0x6A, 0xDE, 0x2B, 0x50, 0x74, 0x9C, 0xFA];
/// Scheme `U`: the variant for the left and for the right half.
const DOUBLE_VARIANTS: [u8; 2] = [0xA6, 0x5A];
/// Scheme `T`: the variants for the three thirds.
const TRIPLE_VARIANTS: [u8; 3] = [0x6A, 0xDE, 0x2B];

/// The payShield test LMK set, pairs `00-01` to `38-39` (published test data).
pub const TEST_LMK: [&str; 20] = [
    "01010101010101017902CD1FD36EF8BA",
    "20202020202020203131313131313131",
    "40404040404040405151515151515151",
    "61616161616161617070707070707070",
    "80808080808080809191919191919191",
    "A1A1A1A1A1A1A1A1B0B0B0B0B0B0B0B0",
    "C1C1010101010101D0D0010101010101",
    "E0E0010101010101F1F1010101010101",
    "1C587F1C13924FEF0101010101010101",
    "01010101010101010101010101010101",
    "02020202020202020404040404040404",
    "07070707070707071010101010101010",
    "13131313131313131515151515151515",
    "16161616161616161919191919191919",
    "1A1A1A1A1A1A1A1A1C1C1C1C1C1C1C1C",
    "23232323232323232525252525252525",
    "26262626262626262929292929292929",
    "2A2A2A2A2A2A2A2A2C2C2C2C2C2C2C2C",
    "2F2F2F2F2F2F2F2F3131313131313131",
    "01010101010101010101010101010101",
];

/// A key type code: the LMK pair index (0 = `00-01` … 19 = `38-39`) and the variant (0–9).
///
/// The three-character code is `V` `PP`: variant digit, then the pair code `00`…`0E`
/// (`00` = LMK 04-05, `01` = 06-07, `02` = 14-15, `03` = 16-17, then one pair each up to
/// `0E` = 38-39). The common ones:
///
/// | code | key | LMK pair | variant |
/// | --- | --- | --- | --- |
/// | `000` | ZMK | 04-05 | 0 |
/// | `001` | ZPK | 06-07 | 0 |
/// | `002` | TMK, TPK, PVK | 14-15 | 0 |
/// | `402` | CVK | 14-15 | 4 |
/// | `003` | TAK | 16-17 | 0 |
/// | `008` | ZAK | 26-27 | 0 |
/// | `009` | BDK | 28-29 | 0 |
/// | `00A` | ZEK | 30-31 | 0 |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyType {
    pub(crate) pair: usize,
    pub(crate) variant: u8,
}

impl KeyType {
    /// ZMK (`000`).
    pub const ZMK: Self = Self {
        pair: 2,
        variant: 0,
    };
    /// ZPK (`001`).
    pub const ZPK: Self = Self {
        pair: 3,
        variant: 0,
    };
    /// TMK, TPK and PVK (`002`).
    pub const TPK: Self = Self {
        pair: 7,
        variant: 0,
    };
    /// CVK (`402`).
    pub const CVK: Self = Self {
        pair: 7,
        variant: 4,
    };
    /// TAK (`003`).
    pub const TAK: Self = Self {
        pair: 8,
        variant: 0,
    };
    /// ZAK (`008`).
    pub const ZAK: Self = Self {
        pair: 13,
        variant: 0,
    };
    /// The pair PINs under the LMK use (`02-03`).
    pub(crate) const PIN: Self = Self {
        pair: 1,
        variant: 0,
    };

    /// Parses a three-character key type code.
    pub fn parse(code: &[u8]) -> Result<Self, ErrorCode> {
        match code {
            [v, p0, p1] if v.is_ascii_digit() => {
                let pair = Self::pair_of(&[*p0, *p1]).ok_or(ErrorCode::InvalidKeyType)?;
                Ok(Self {
                    pair,
                    variant: v - b'0',
                })
            }
            _ => Err(ErrorCode::InvalidKeyType),
        }
    }

    /// The LMK pair index of a two-character pair code (`00`…`0E`), as `BU` takes it.
    pub(crate) fn pair_of(code: &[u8; 2]) -> Option<usize> {
        let n = match code {
            [b'0', c] => (*c as char).to_digit(16)? as usize,
            _ => return None,
        };
        match n {
            0 => Some(2),
            1 => Some(3),
            2 => Some(7),
            3..=14 => Some(n + 5),
            _ => None,
        }
    }
}

/// How a key is laid out and encrypted under the LMK (or a ZMK/TMK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Single length, no tag (16 hex) or `Z`.
    Single,
    /// `U`: double length, variant.
    U,
    /// `T`: triple length, variant.
    T,
    /// `X`: double length, X9.17.
    X,
    /// `Y`: triple length, X9.17.
    Y,
}

impl Scheme {
    /// The scheme named by a key scheme character (`0` and `Z` are single length).
    pub fn from_tag(tag: u8) -> Result<Self, ErrorCode> {
        match tag {
            b'0' | b'Z' => Ok(Self::Single),
            b'U' => Ok(Self::U),
            b'T' => Ok(Self::T),
            b'X' => Ok(Self::X),
            b'Y' => Ok(Self::Y),
            _ => Err(ErrorCode::InvalidKeyScheme),
        }
    }

    /// The tag written before a cryptogram (none for single length).
    pub fn tag(self) -> Option<char> {
        match self {
            Self::Single => None,
            Self::U => Some('U'),
            Self::T => Some('T'),
            Self::X => Some('X'),
            Self::Y => Some('Y'),
        }
    }

    /// Bytes of key.
    pub fn key_len(self) -> usize {
        match self {
            Self::Single => 8,
            Self::U | Self::X => 16,
            Self::T | Self::Y => 24,
        }
    }

    /// The scheme variant XORed into the right key's first byte for part `i`.
    fn part_variant(self, i: usize) -> u8 {
        match self {
            Self::U => DOUBLE_VARIANTS[i],
            Self::T => TRIPLE_VARIANTS[i],
            _ => 0,
        }
    }

    /// The scheme that fits a key of `len` bytes, the variant one.
    pub fn variant_for(len: usize) -> Result<Self, ErrorCode> {
        match len {
            8 => Ok(Self::Single),
            16 => Ok(Self::U),
            24 => Ok(Self::T),
            _ => Err(ErrorCode::KeyLength),
        }
    }
}

/// Encrypts (`encrypt`) or decrypts the parts of `data` under `kek` with the scheme's
/// variants in its right key's first byte and `key_variant` in its left key's first byte.
/// `kek` is 16 or 24 bytes (an LMK pair, or a ZMK/TMK); a single-length KEK is used as EDE
/// with itself.
pub(crate) fn wrap(
    kek: &[u8],
    key_variant: u8,
    scheme: Scheme,
    data: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>, ErrorCode> {
    if data.len() != scheme.key_len() {
        return Err(ErrorCode::KeyLength);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    for (i, part) in data.chunks_exact(8).enumerate() {
        let mut k = Zeroizing::new(kek.to_vec());
        k[0] ^= key_variant;
        if k.len() > 8 {
            k[8] ^= scheme.part_variant(i);
        }
        let cipher = DesKey::new(&k).map_err(|_| ErrorCode::KeyLength)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(part);
        out.extend_from_slice(&if encrypt {
            cipher.encrypt(b)
        } else {
            cipher.decrypt(b)
        });
    }
    Ok(out)
}

/// A variant LMK: twenty pairs.
pub struct VariantLmk {
    pairs: Zeroizing<[[u8; 16]; 20]>,
    test: bool,
}

impl std::fmt::Debug for VariantLmk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantLmk")
            .field("check_value", &hex::encode_upper(self.check_value()))
            .field("test", &self.test)
            .finish()
    }
}

impl VariantLmk {
    /// The published test LMK set (test data).
    pub fn test() -> Self {
        Self::from_lines(TEST_LMK.iter().copied()).unwrap_or_else(|_| Self {
            pairs: Zeroizing::new([[0u8; 16]; 20]),
            test: true,
        })
    }

    /// An LMK from 20 lines of 32 hex characters (pairs `00-01` … `38-39`); blank lines and
    /// lines starting with `;` or `#` are skipped.
    pub fn from_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let mut pairs = Zeroizing::new([[0u8; 16]; 20]);
        let mut n = 0;
        for line in lines.map(str::trim) {
            if line.is_empty() || line.starts_with([';', '#']) {
                continue;
            }
            let slot = pairs
                .get_mut(n)
                .ok_or_else(|| "more than 20 LMK pairs".to_string())?;
            let bytes = Zeroizing::new(
                hex::decode(line).map_err(|_| format!("LMK pair {}: not hex", n + 1))?,
            );
            if bytes.len() != 16 {
                return Err(format!("LMK pair {}: must be 32 hex characters", n + 1));
            }
            slot.copy_from_slice(&bytes);
            n += 1;
        }
        if n != 20 {
            return Err(format!("{n} LMK pairs; a variant LMK has 20"));
        }
        let test = pairs
            .iter()
            .zip(TEST_LMK)
            .all(|(p, t)| hex::encode_upper(p) == t);
        Ok(Self { pairs, test })
    }

    /// Whether this is the published test set.
    pub fn is_test(&self) -> bool {
        self.test
    }

    /// The LMK check value as `NC` reports it: LMK pair `00-01` encrypting zeros, 8 bytes.
    pub fn check_value(&self) -> [u8; 8] {
        DesKey::new(&self.pairs[0]).map_or([0u8; 8], |k| k.encrypt([0u8; 8]))
    }

    /// Key material for an audit HMAC key, derived from every pair.
    pub(crate) fn digest_seed(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(20 * 16 + 16));
        v.extend_from_slice(b"payshield-audit|");
        for p in self.pairs.iter() {
            v.extend_from_slice(p);
        }
        v
    }

    fn pair(&self, t: KeyType) -> &[u8; 16] {
        &self.pairs[t.pair]
    }

    /// `key` encrypted under the LMK for key type `t` in `scheme`.
    pub fn encrypt(
        &self,
        t: KeyType,
        scheme: Scheme,
        key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ErrorCode> {
        wrap(
            self.pair(t),
            KEY_TYPE_VARIANTS[usize::from(t.variant)],
            scheme,
            key,
            true,
        )
    }

    /// The clear key of a cryptogram under the LMK for key type `t` in `scheme`.
    pub fn decrypt(
        &self,
        t: KeyType,
        scheme: Scheme,
        cryptogram: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ErrorCode> {
        wrap(
            self.pair(t),
            KEY_TYPE_VARIANTS[usize::from(t.variant)],
            scheme,
            cryptogram,
            false,
        )
    }

    /// Raw TDES of one block under pair `t` (no variants): PINs under LMK 02-03.
    pub(crate) fn pair_cipher(&self, t: KeyType) -> Result<DesKey, ErrorCode> {
        DesKey::new(self.pair(t)).map_err(|_| ErrorCode::KeyLength)
    }
}

/// Whether every byte of `key` has odd parity.
pub fn odd_parity(key: &[u8]) -> bool {
    key.iter().all(|b| b.count_ones() % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn scheme_u_halves_use_a6_then_5a() {
        // Pair 00-01 with variant 1 reached through a key type on that pair.
        let lmk = VariantLmk::test();
        let k = h("0123456789ABCDEFFEDCBA9876543210");
        let v1 = KeyType {
            pair: 0,
            variant: 1,
        };
        let out = lmk.encrypt(v1, Scheme::U, &k).unwrap();
        assert_eq!(hex::encode_upper(&*out), "A12049CC30D20BE0DC6E5E2A98FADE9E");
        assert_eq!(&*lmk.decrypt(v1, Scheme::U, &out).unwrap(), &k[..]);
        let v2 = KeyType {
            pair: 0,
            variant: 2,
        };
        let out = lmk.encrypt(v2, Scheme::U, &k).unwrap();
        assert_eq!(hex::encode_upper(&*out), "BD7F64B9F9875B731BAED72101DEA65B");
    }

    #[test]
    fn a_double_length_key_under_pair_28_29_variant_2() {
        let lmk = VariantLmk::test();
        let t = KeyType {
            pair: 14,
            variant: 2,
        };
        let out = lmk
            .encrypt(t, Scheme::U, &h("F1F1F1F1F1F1F1F1C1C1C1C1C1C1C1C1"))
            .unwrap();
        assert_eq!(hex::encode_upper(&*out), "5178C9D3D1052B15BF6AEC458B4A4564");
    }

    #[test]
    fn key_type_codes_pick_pairs() {
        assert_eq!(KeyType::parse(b"001").unwrap(), KeyType::ZPK);
        assert_eq!(KeyType::parse(b"002").unwrap(), KeyType::TPK);
        assert_eq!(KeyType::parse(b"402").unwrap(), KeyType::CVK);
        assert_eq!(KeyType::parse(b"008").unwrap(), KeyType::ZAK);
        assert_eq!(KeyType::parse(b"00E").unwrap().pair, 19);
        assert!(KeyType::parse(b"00F").is_err());
        assert!(KeyType::parse(b"X01").is_err());
    }

    #[test]
    fn test_set_is_recognised_and_a_file_round_trips() {
        assert!(VariantLmk::test().is_test());
        let mut lines: Vec<String> = TEST_LMK.iter().map(|s| s.to_string()).collect();
        lines[3] = "6161616161616161707070707070707F".into();
        let other = VariantLmk::from_lines(lines.iter().map(String::as_str)).unwrap();
        assert!(!other.is_test());
        assert!(VariantLmk::from_lines(TEST_LMK[..19].iter().copied()).is_err());
    }
}
