//! PIN blocks as payShield names their formats, and PINs encrypted under LMK pair 02-03.
//!
//! ```text
//!  code  format                      clear block (16 nibbles)
//!  01    ISO 9564 format 0 (ANSI)    0 L P P P P F F … F   XOR  0000 + 12 account digits
//!  03    Diebold / IBM ATM           P P P P F F … F        (no length, no account)
//!  05    ISO 9564 format 1           1 L P P P P r r … r    (r random)
//!  47    ISO 9564 format 3           3 L P P P P a a … a   XOR  account field (a in A-F)
//! ```
//!
//! A PIN under the LMK (`JC`, `JE` answer it; `DE`, `DG` take it) is `L + 1` decimal digits:
//! the PIN length less 4, then the PIN, each digit added modulo 10 to a digit of a keystream
//! drawn from the account number under LMK 02-03. A payShield's own encoding of a PIN under
//! its LMK is proprietary; like every LMK cryptogram it is only meaningful to the HSM that
//! made it.

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::code::ErrorCode;
use super::variant::{KeyType, VariantLmk};
use crate::primitives::pinblock::{self, ClearPin, PinFormat};

/// A payShield PIN block format code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFormat {
    /// `01`: ISO 9564 format 0.
    Iso0,
    /// `03`: Diebold and IBM ATM.
    Diebold,
    /// `05`: ISO 9564 format 1.
    Iso1,
    /// `47`: ISO 9564 format 3.
    Iso3,
}

impl BlockFormat {
    /// The format of a two-digit code: `23` when it is not a PIN block format payShield
    /// knows, `69` … as `23` too when it is one this HSM does not do.
    pub fn parse(code: &str) -> Result<Self, ErrorCode> {
        match code {
            "01" => Ok(Self::Iso0),
            "03" => Ok(Self::Diebold),
            "05" => Ok(Self::Iso1),
            "47" => Ok(Self::Iso3),
            _ => Err(ErrorCode::InvalidPinBlockFormat),
        }
    }

    /// The two-digit code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Iso0 => "01",
            Self::Diebold => "03",
            Self::Iso1 => "05",
            Self::Iso3 => "47",
        }
    }

    fn iso(self) -> Option<PinFormat> {
        match self {
            Self::Iso0 => Some(PinFormat::Iso0),
            Self::Iso1 => Some(PinFormat::Iso1),
            Self::Iso3 => Some(PinFormat::Iso3),
            Self::Diebold => None,
        }
    }
}

/// The account field as the PIN block primitives take it: the 12 account digits with a
/// stand-in check digit (they drop the last digit of a PAN).
fn pan_of(account: &str) -> String {
    format!("{account}0")
}

/// The PIN in a clear block.
pub fn read(block: &[u8; 8], format: BlockFormat, account: &str) -> Result<ClearPin, ErrorCode> {
    match format.iso() {
        Some(f) => {
            pinblock::parse(block, f, &pan_of(account)).map_err(|_| ErrorCode::PinBlockInvalid)
        }
        None => {
            let mut digits = Zeroizing::new([0u8; 16]);
            let mut len = 0;
            let mut ended = false;
            for i in 0..16 {
                let n = if i % 2 == 0 {
                    block[i / 2] >> 4
                } else {
                    block[i / 2] & 0x0F
                };
                match (ended, n) {
                    (false, 0..=9) => {
                        digits[len] = b'0' + n;
                        len += 1;
                    }
                    (_, 0xF) => ended = true,
                    _ => return Err(ErrorCode::PinBlockInvalid),
                }
            }
            if !(4..=12).contains(&len) {
                return Err(ErrorCode::PinBlockInvalid);
            }
            ClearPin::from_digits(&digits[..len]).map_err(|_| ErrorCode::PinBlockInvalid)
        }
    }
}

/// A clear block of `format` for `pin`.
pub fn write(
    pin: &ClearPin,
    format: BlockFormat,
    account: &str,
    rng: &SystemRandom,
) -> Result<[u8; 8], ErrorCode> {
    let mut fill = [0u8; 8];
    rng.fill(&mut fill).map_err(|_| ErrorCode::InvalidInput)?;
    let pan = pan_of(account);
    match format {
        BlockFormat::Iso0 => pinblock::format0(pin, &pan).map_err(|_| ErrorCode::InvalidInput),
        BlockFormat::Iso1 => Ok(pinblock::format1(pin, &fill)),
        BlockFormat::Iso3 => {
            pinblock::format3(pin, &pan, &fill).map_err(|_| ErrorCode::InvalidInput)
        }
        BlockFormat::Diebold => {
            let mut n = [0xFu8; 16];
            for (i, slot) in n.iter_mut().enumerate().take(pin.len()) {
                *slot = pin.nibble(i);
            }
            let mut b = [0u8; 8];
            for i in 0..8 {
                b[i] = (n[2 * i] << 4) | n[2 * i + 1];
            }
            Ok(b)
        }
    }
}

/// Twelve keystream digits for `account` under LMK 02-03.
fn keystream(lmk: &VariantLmk, account: &str) -> Result<Zeroizing<[u8; 16]>, ErrorCode> {
    let mut block = [0u8; 8];
    for (i, d) in account.bytes().take(12).enumerate() {
        let n = d.wrapping_sub(b'0') & 0x0F;
        block[2 + i / 2] |= if i % 2 == 0 { n << 4 } else { n };
    }
    let e = lmk.pair_cipher(KeyType::PIN)?.encrypt(block);
    let mut out = Zeroizing::new([0u8; 16]);
    for i in 0..16 {
        let n = if i % 2 == 0 {
            e[i / 2] >> 4
        } else {
            e[i / 2] & 0x0F
        };
        out[i] = n % 10;
    }
    Ok(out)
}

/// `pin` under the LMK for `account`: `L + 1` digits.
pub fn encrypt_under_lmk(
    lmk: &VariantLmk,
    pin: &ClearPin,
    account: &str,
) -> Result<Zeroizing<String>, ErrorCode> {
    let k = keystream(lmk, account)?;
    let mut s = Zeroizing::new(String::with_capacity(pin.len() + 1));
    let len_digit = (pin.len() as u8 - 4 + k[0]) % 10;
    s.push(char::from(b'0' + len_digit));
    for i in 0..pin.len() {
        s.push(char::from(b'0' + (pin.nibble(i) + k[i + 1]) % 10));
    }
    Ok(s)
}

/// The PIN in a PIN-under-LMK field for `account`; `14` when it does not decode.
pub fn decrypt_under_lmk(
    lmk: &VariantLmk,
    field: &[u8],
    account: &str,
) -> Result<ClearPin, ErrorCode> {
    if !(5..=13).contains(&field.len()) || !field.iter().all(u8::is_ascii_digit) {
        return Err(ErrorCode::PinUnderLmkInvalid);
    }
    let k = keystream(lmk, account)?;
    let len = usize::from((field[0] - b'0' + 10 - k[0]) % 10) + 4;
    if len != field.len() - 1 {
        return Err(ErrorCode::PinUnderLmkInvalid);
    }
    let mut digits = Zeroizing::new([0u8; 12]);
    for i in 0..len {
        digits[i] = b'0' + (field[i + 1] - b'0' + 10 - k[i + 1]) % 10;
    }
    ClearPin::from_digits(&digits[..len]).map_err(|_| ErrorCode::PinUnderLmkInvalid)
}
