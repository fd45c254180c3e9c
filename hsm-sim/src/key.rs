//! Key usages, algorithms, clear keys (inside the crate only) and sealed keys.
//!
//! ```text
//! sealed key = 'K' | version 1 | usage | algorithm | KCV 3 B | nonce 12 B | AES-256-GCM(key) | tag 16 B
//!              \________________ authenticated data ______/
//! ```
//! The usage and algorithm are bound into the record: changing either, or any bit of it,
//! makes the LMK refuse it.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// What a key may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUsage {
    /// Terminal master key: wraps a terminal's working keys.
    Tmk,
    /// Terminal PIN key: PIN blocks from a terminal.
    Tpk,
    /// Terminal authentication key: MACs with a terminal.
    Tak,
    /// Zone master key: wraps keys exchanged with another institution.
    Zmk,
    /// Zone PIN key: PIN blocks exchanged with an issuer.
    Zpk,
    /// Zone authentication key: MACs with an issuer.
    Zak,
    /// PIN verification key (Visa PVV, IBM 3624).
    Pvk,
    /// Card verification key (CVV).
    Cvk,
    /// Base derivation key (DUKPT).
    Bdk,
}

impl KeyUsage {
    /// All usages.
    pub const ALL: [KeyUsage; 9] = [
        Self::Tmk,
        Self::Tpk,
        Self::Tak,
        Self::Zmk,
        Self::Zpk,
        Self::Zak,
        Self::Pvk,
        Self::Cvk,
        Self::Bdk,
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Tmk => 1,
            Self::Tpk => 2,
            Self::Tak => 3,
            Self::Zmk => 4,
            Self::Zpk => 5,
            Self::Zak => 6,
            Self::Pvk => 7,
            Self::Cvk => 8,
            Self::Bdk => 9,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == c)
    }

    /// Parses `tmk`, `tpk`, ... (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|u| u.to_string().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tmk => "TMK",
            Self::Tpk => "TPK",
            Self::Tak => "TAK",
            Self::Zmk => "ZMK",
            Self::Zpk => "ZPK",
            Self::Zak => "ZAK",
            Self::Pvk => "PVK",
            Self::Cvk => "CVK",
            Self::Bdk => "BDK",
        })
    }
}

/// A key's algorithm and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// Single DES, 8 bytes.
    Des,
    /// Two-key TDES, 16 bytes.
    Tdes2,
    /// Three-key TDES, 24 bytes.
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
    /// SM4 (GB/T 32907-2016), 16 bytes: China's national algorithm (国密).
    Sm4,
}

impl KeyAlgorithm {
    /// Key length in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Des => 8,
            Self::Tdes2 | Self::Aes128 | Self::Sm4 => 16,
            Self::Tdes3 | Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    /// Never true: every algorithm has a key length.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Whether this is AES.
    pub fn is_aes(self) -> bool {
        matches!(self, Self::Aes128 | Self::Aes192 | Self::Aes256)
    }

    /// Whether this is a DES-family algorithm.
    pub fn is_des(self) -> bool {
        matches!(self, Self::Des | Self::Tdes2 | Self::Tdes3)
    }

    /// The DES-family algorithm for a key length.
    pub fn des_for_len(len: usize) -> Result<Self, Error> {
        match len {
            8 => Ok(Self::Des),
            16 => Ok(Self::Tdes2),
            24 => Ok(Self::Tdes3),
            _ => Err(Error::KeyLength),
        }
    }

    /// Parses `des`, `tdes2`, `tdes3`, `aes128`, `aes192`, `aes256`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "des" => Self::Des,
            "tdes2" | "2tdes" => Self::Tdes2,
            "tdes3" | "3tdes" => Self::Tdes3,
            "aes128" => Self::Aes128,
            "aes192" => Self::Aes192,
            "aes256" => Self::Aes256,
            "sm4" => Self::Sm4,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Des => 1,
            Self::Tdes2 => 2,
            Self::Tdes3 => 3,
            Self::Aes128 => 4,
            Self::Aes192 => 5,
            Self::Aes256 => 6,
            Self::Sm4 => 7,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        [
            Self::Des,
            Self::Tdes2,
            Self::Tdes3,
            Self::Aes128,
            Self::Aes192,
            Self::Aes256,
            Self::Sm4,
        ]
        .into_iter()
        .find(|a| a.code() == c)
    }
}

/// A clear key; exists only inside the crate, zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ClearKey {
    bytes: [u8; 32],
    #[zeroize(skip)]
    alg: KeyAlgorithm,
}

impl ClearKey {
    pub(crate) fn new(alg: KeyAlgorithm, key: &[u8]) -> Result<Self, Error> {
        if key.len() != alg.len() {
            return Err(Error::KeyLength);
        }
        let mut bytes = [0u8; 32];
        bytes[..key.len()].copy_from_slice(key);
        Ok(Self { bytes, alg })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.alg.len()]
    }

    pub(crate) fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// Full check value: 8 bytes for DES family and SM4, 16 (CMAC) for AES.
    pub(crate) fn check_value(&self) -> Result<Vec<u8>, Error> {
        if self.alg.is_des() {
            Ok(crate::primitives::kcv::tdes(self.bytes())?.to_vec())
        } else if self.alg == KeyAlgorithm::Sm4 {
            Ok(crate::primitives::sm4::check_value(self.bytes())?.to_vec())
        } else {
            Ok(crate::primitives::kcv::aes_cmac(self.bytes())?.to_vec())
        }
    }
}

impl fmt::Debug for ClearKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClearKey({:?}, ..)", self.alg)
    }
}

pub(crate) const SEALED_MAGIC: u8 = b'K';
pub(crate) const SEALED_VERSION: u8 = 1;
/// Bytes before the nonce: magic, version, usage, algorithm, KCV.
pub(crate) const SEALED_HEADER: usize = 7;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// A key sealed under the LMK: safe to store (journal, config), useless without the LMK.
///
/// `Debug` and `Display` show its usage, algorithm and check value only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SealedKey(Vec<u8>);

impl SealedKey {
    pub(crate) fn from_vec(v: Vec<u8>) -> Self {
        Self(v)
    }

    /// The sealed record as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// From stored bytes; the structure is checked here, the authenticity when used.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let min = SEALED_HEADER + NONCE_LEN + 8 + TAG_LEN;
        if b.len() < min || b[0] != SEALED_MAGIC || b[1] != SEALED_VERSION {
            return Err(Error::SealedKeyRejected);
        }
        let k = Self(b.to_vec());
        k.usage()?;
        let alg = k.algorithm()?;
        if b.len() != SEALED_HEADER + NONCE_LEN + alg.len() + TAG_LEN {
            return Err(Error::SealedKeyRejected);
        }
        Ok(k)
    }

    /// Upper-case hex of the sealed record.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(&self.0)
    }

    /// From hex.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let b = hex::decode(s.trim()).map_err(|_| Error::SealedKeyRejected)?;
        Self::from_bytes(&b)
    }

    /// The usage bound into the record.
    pub fn usage(&self) -> Result<KeyUsage, Error> {
        self.0
            .get(2)
            .and_then(|c| KeyUsage::from_code(*c))
            .ok_or(Error::SealedKeyRejected)
    }

    /// The algorithm bound into the record.
    pub fn algorithm(&self) -> Result<KeyAlgorithm, Error> {
        self.0
            .get(3)
            .and_then(|c| KeyAlgorithm::from_code(*c))
            .ok_or(Error::SealedKeyRejected)
    }

    /// The 3-byte check value recorded at sealing (authenticated when the key is used).
    pub fn kcv(&self) -> [u8; 3] {
        let mut k = [0u8; 3];
        if let Some(b) = self.0.get(4..7) {
            k.copy_from_slice(b);
        }
        k
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({self})")
    }
}

impl fmt::Display for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usage = self
            .usage()
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "?".into());
        let alg = self
            .algorithm()
            .map(|a| format!("{a:?}"))
            .unwrap_or_else(|_| "?".into());
        write!(f, "{usage} {alg} KCV {}", hex::encode_upper(self.kcv()))
    }
}
