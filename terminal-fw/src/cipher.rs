//! The terminal's cipher: TDES, or SM4 (国密) as UnionPay terminals use it. It decides the
//! working keys' form, the PIN block and the MAC, and the dialect field 52 is read in.
//!
//! ```text
//!            62 at sign-on (under the TMK)                         52          64
//!  tdes  TPK 16 | cv 4 | TAK 8 + 00 * 8 | cv 4   (cv: E_K(0^8))    ISO 0, 8 B  UnionPay ECB MAC
//!  sm4   TPK 16 | cv 4 | TAK 16         | cv 4   (cv: SM4_K(0^16)) SM4, 16 B   SM4 POS MAC
//! ```

use codec::Dialect;
use hsm_sim::ClearPin;
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::sm4::{self, Sm4Key};
use hsm_sim::primitives::{mac, pinblock};

use crate::terminal::TxnError;

/// A clear working key's bytes, wiped when dropped.
pub type ClearKeyBytes = zeroize::Zeroizing<Vec<u8>>;

/// Which cipher a terminal was set up with (`init --algorithm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cipher {
    /// TDES (the default).
    #[default]
    Tdes,
    /// SM4.
    Sm4,
}

impl Cipher {
    /// From its name: `tdes` or `sm4`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tdes" | "3des" => Some(Self::Tdes),
            "sm4" => Some(Self::Sm4),
            _ => None,
        }
    }

    /// The other cipher.
    pub fn other(self) -> Self {
        match self {
            Self::Tdes => Self::Sm4,
            Self::Sm4 => Self::Tdes,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tdes => "tdes",
            Self::Sm4 => "sm4",
        }
    }

    /// The dialect its requests are written in.
    pub fn dialect(self) -> &'static Dialect {
        match self {
            Self::Tdes => Dialect::cup_pos(),
            Self::Sm4 => Dialect::cup_pos_sm4(),
        }
    }

    /// Whether `tmk` is a TMK of this cipher.
    pub fn takes_tmk(self, tmk: &[u8]) -> bool {
        match self {
            Self::Tdes => DesKey::new(tmk).is_ok(),
            Self::Sm4 => tmk.len() == 16,
        }
    }

    /// The TPK and TAK in a sign-on's field 62, opened under `tmk` and checked against
    /// their check values; keys that fail them are refused.
    pub fn open_sign_on(
        self,
        tmk: &[u8],
        f62: &[u8],
    ) -> Result<(ClearKeyBytes, ClearKeyBytes), TxnError> {
        if f62.len() != 40 {
            return Err(TxnError::BadKeys);
        }
        let bad = |_| TxnError::BadKeys;
        let (tpk, tak, ok) = match self {
            Self::Tdes => {
                let k = DesKey::new(tmk).map_err(bad)?;
                let tpk = zeroize::Zeroizing::new(k.decrypt_ecb(&f62[..16]).map_err(bad)?);
                let tak = zeroize::Zeroizing::new(k.decrypt_ecb(&f62[20..28]).map_err(bad)?);
                let check = |key: &[u8], want: &[u8]| {
                    DesKey::new(key).is_ok_and(|d| d.encrypt([0; 8])[..4] == *want)
                };
                let ok = check(&tpk, &f62[16..20]) && check(&tak, &f62[36..40]);
                (tpk, tak, ok)
            }
            Self::Sm4 => {
                let k = Sm4Key::new(tmk).map_err(bad)?;
                let tpk = zeroize::Zeroizing::new(k.decrypt_ecb(&f62[..16]).map_err(bad)?);
                let tak = zeroize::Zeroizing::new(k.decrypt_ecb(&f62[20..36]).map_err(bad)?);
                let check = |key: &[u8], want: &[u8]| {
                    sm4::check_value(key).is_ok_and(|cv| cv[..4] == *want)
                };
                let ok = check(&tpk, &f62[16..20]) && check(&tak, &f62[36..40]);
                (tpk, tak, ok)
            }
        };
        if ok {
            Ok((tpk, tak))
        } else {
            Err(TxnError::BadKeys)
        }
    }
}

/// The working keys of a signed-on terminal.
pub enum WorkingKeys {
    /// TDES TPK and TAK.
    Tdes(Box<(DesKey, DesKey)>),
    /// SM4 TPK and TAK.
    Sm4(Box<(Sm4Key, Sm4Key)>),
}

impl WorkingKeys {
    /// Schedules the keys for `cipher`.
    pub fn open(cipher: Cipher, tpk: &[u8], tak: &[u8]) -> Result<Self, TxnError> {
        let bad = |_| TxnError::BadKeys;
        Ok(match cipher {
            Cipher::Tdes => Self::Tdes(Box::new((
                DesKey::new(tpk).map_err(bad)?,
                DesKey::new(tak).map_err(bad)?,
            ))),
            Cipher::Sm4 => Self::Sm4(Box::new((
                Sm4Key::new(tpk).map_err(bad)?,
                Sm4Key::new(tak).map_err(bad)?,
            ))),
        })
    }

    /// Field 52: the PIN block for `pan` under the TPK.
    pub fn pin_block(&self, pin: &ClearPin, pan: &str) -> Result<Vec<u8>, TxnError> {
        let bad_pan = |_| TxnError::Input("the card number must be 12 to 19 digits".into());
        Ok(match self {
            Self::Tdes(k) => {
                k.0.encrypt(pinblock::format0(pin, pan).map_err(bad_pan)?)
                    .to_vec()
            }
            Self::Sm4(k) => {
                let mut clear = sm4::pin_block(pin, pan).map_err(bad_pan)?;
                let out = k.0.encrypt(clear).to_vec();
                clear.fill(0);
                out
            }
        })
    }

    /// Field 64 over `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 8] {
        match self {
            Self::Tdes(k) => mac::unionpay_ecb(&k.1, data),
            Self::Sm4(k) => sm4::pos_mac(&k.1, data),
        }
    }
}
