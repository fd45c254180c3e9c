//! How the switch names a key it never sees: sealed by the in-process HSM, or an LMK
//! cryptogram of a network HSM (payShield variant LMK) with its key type.
//!
//! ```text
//!  KeyRef::Sealed   AES-GCM record under the in-process LMK, usage bound in   (hex)
//!  KeyRef::Lmk      "lmk:" key type ":" scheme tag + cryptogram under the HSM's LMK
//!                   lmk:003:0123456789ABCDEF     a TAK, single length
//!                   lmk:002:U0123…(32 hex)       a TPK/TMK/PVK, double length, variant
//! ```

use hsm_sim::SealedKey;

/// The payShield key types the switch uses (their LMK pair and variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LmkKeyType {
    /// `002`: TMK, TPK and PVK (LMK 14-15).
    Tpk,
    /// `003`: TAK (LMK 16-17).
    Tak,
    /// `001`: ZPK (LMK 06-07).
    Zpk,
    /// `008`: ZAK (LMK 26-27).
    Zak,
}

impl LmkKeyType {
    /// The three-character key type code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Tpk => "002",
            Self::Tak => "003",
            Self::Zpk => "001",
            Self::Zak => "008",
        }
    }

    /// The two-character code `BU` takes.
    pub fn bu_code(self) -> &'static str {
        &self.code()[1..]
    }

    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "002" => Self::Tpk,
            "003" => Self::Tak,
            "001" => Self::Zpk,
            "008" => Self::Zak,
            _ => return None,
        })
    }
}

/// A key under a network HSM's LMK: its type and its tagged cryptogram (`16H`, or `U`/`T`/
/// `X`/`Y` and hex). Not secret (only that HSM can use it), but shown only by length.
#[derive(Clone, PartialEq, Eq)]
pub struct LmkKey {
    kind: LmkKeyType,
    cryptogram: String,
}

impl std::fmt::Debug for LmkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LmkKey({}, {} chars)",
            self.kind.code(),
            self.cryptogram.len()
        )
    }
}

impl LmkKey {
    /// A key of `kind` from its cryptogram as the HSM writes it; `None` when it is not
    /// `16H`, `Z` + `16H`, `U`/`X` + `32H` or `T`/`Y` + `48H`.
    pub fn new(kind: LmkKeyType, cryptogram: &str) -> Option<Self> {
        let c = cryptogram.trim().to_ascii_uppercase();
        let (tag, hex_part) = match c.as_bytes().first()? {
            b'U' | b'X' | b'T' | b'Y' | b'Z' => (c.as_bytes()[0], &c[1..]),
            _ => (b'0', &c[..]),
        };
        let want = match tag {
            b'U' | b'X' => 32,
            b'T' | b'Y' => 48,
            _ => 16,
        };
        (hex_part.len() == want && hex_part.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self {
            kind,
            // A single-length key travels without its tag.
            cryptogram: if tag == b'Z' {
                hex_part.to_owned()
            } else {
                c.clone()
            },
        })
    }

    /// Its key type.
    pub fn kind(&self) -> LmkKeyType {
        self.kind
    }

    /// The cryptogram as commands carry it.
    pub fn cryptogram(&self) -> &str {
        &self.cryptogram
    }

    /// Bytes of clear key it stands for.
    pub fn key_len(&self) -> usize {
        match self.cryptogram.len() {
            16 => 8,
            33 => 16,
            _ => 24,
        }
    }
}

/// A key the switch holds a handle to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// Sealed by the in-process HSM.
    Sealed(SealedKey),
    /// Under a network HSM's LMK.
    Lmk(LmkKey),
}

impl From<SealedKey> for KeyRef {
    fn from(k: SealedKey) -> Self {
        Self::Sealed(k)
    }
}

impl KeyRef {
    /// The text the journal keeps (sealed keys as their hex, as before).
    pub fn to_text(&self) -> String {
        match self {
            Self::Sealed(k) => k.to_hex(),
            Self::Lmk(k) => format!("lmk:{}:{}", k.kind.code(), k.cryptogram),
        }
    }

    /// The key [`KeyRef::to_text`] wrote.
    pub fn from_text(s: &str) -> Option<Self> {
        match s.strip_prefix("lmk:") {
            Some(rest) => {
                let (code, c) = rest.split_once(':')?;
                LmkKey::new(LmkKeyType::parse(code)?, c).map(Self::Lmk)
            }
            None => SealedKey::from_hex(s).ok().map(Self::Sealed),
        }
    }

    /// The sealed key, for the in-process HSM.
    pub fn sealed(&self) -> Option<&SealedKey> {
        match self {
            Self::Sealed(k) => Some(k),
            Self::Lmk(_) => None,
        }
    }

    /// The LMK cryptogram, for a network HSM.
    pub fn lmk(&self) -> Option<&LmkKey> {
        match self {
            Self::Lmk(k) => Some(k),
            Self::Sealed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmk_keys_round_trip_through_text() {
        let k = LmkKey::new(LmkKeyType::Tpk, "u0123456789abcdef0123456789ABCDEF").unwrap();
        assert_eq!(k.cryptogram(), "U0123456789ABCDEF0123456789ABCDEF");
        assert_eq!(k.key_len(), 16);
        let r = KeyRef::Lmk(k);
        assert_eq!(KeyRef::from_text(&r.to_text()), Some(r));
        let single = LmkKey::new(LmkKeyType::Tak, "Z0123456789ABCDEF").unwrap();
        assert_eq!(single.cryptogram(), "0123456789ABCDEF");
        assert!(LmkKey::new(LmkKeyType::Tak, "U0123").is_none());
        assert!(LmkKey::new(LmkKeyType::Tak, "Q0123456789ABCDEF").is_none());
        assert!(KeyRef::from_text("lmk:999:0123456789ABCDEF").is_none());
        assert!(
            !format!(
                "{:?}",
                KeyRef::from_text("lmk:002:0123456789ABCDEF").unwrap()
            )
            .contains("0123")
        );
    }
}
