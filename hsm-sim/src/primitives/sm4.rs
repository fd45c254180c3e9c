//! SM4 (GB/T 32907-2016), the block cipher of China's national algorithms (国密), as
//! UnionPay terminals use it: working keys, their check values, the 16-byte PIN block and
//! the POS MAC.
//!
//! ```text
//! check value  SM4_K(16 zero bytes), first 8 bytes (CUP shows 8; callers may show 4)
//! PIN block    PIN field 0L PPPP.. F..F (32 nibbles)  XOR  PAN field 0x00 * 10 + acct12
//!              = ISO 9564 format 0 widened to 128 bits; encrypted with SM4 (ECB, one block)
//! POS MAC      X = B1 ^ B2 ^ .. ^ Bn (16-byte blocks, the last zero-padded)
//!              H = upper-case hex of X (32 ASCII bytes: H1 | H2)
//!              R = SM4_K(SM4_K(H1) ^ H2);  MAC = first 8 characters of hex(R) (field 64)
//! CBC-MAC      GB/T 15852.1 (ISO/IEC 9797-1) MAC algorithm 1 with SM4: zero IV, zero padding
//!              to 16-byte blocks, the last block (between switches; field 64 takes 8 bytes)
//! ```
//!
//! Sources: the cipher and its test vectors are GB/T 32907-2016 (Appendix A); the PIN block
//! and the check value follow the UnionPay terminal practice worked through in
//! blog.csdn.net/M_Kerry/article/details/104625499 (TMK `1234567890ABCDEFABCDEF0987654321`,
//! a working key and its check value `861E83E31FAEBF10`, PIN `123654` on PAN
//! `6230606601007726888` → `06123654FFFFFFFFFFFF99FEFF88D977`); the MAC is the UnionPay POS
//! "ECB" MAC with SM4's 16-byte block. Every value is checked in the tests, and against an
//! independent implementation (`gmssl` from PyPI, `scripts/sm4-vectors.py`).

use sm4::Sm4;
use sm4::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use super::cipher::xor16;
use super::pinblock::ClearPin;
use super::{check_pan, hex_upper8};
use crate::Error;

/// An SM4 key schedule (zeroized on drop).
pub struct Sm4Key(Sm4);

impl Sm4Key {
    /// Schedules a 16-byte key.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        Sm4::new_from_slice(key)
            .map(Self)
            .map_err(|_| Error::KeyLength)
    }

    /// Encrypts one block.
    #[inline]
    pub fn encrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        self.0.encrypt_block(&mut b);
        b.into()
    }

    /// Decrypts one block.
    #[inline]
    pub fn decrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        self.0.decrypt_block(&mut b);
        b.into()
    }

    /// Encrypts whole blocks in ECB mode (`data.len()` a multiple of 16).
    pub fn encrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.ecb(data, |b| self.encrypt(b))
    }

    /// Decrypts whole blocks in ECB mode (`data.len()` a multiple of 16).
    pub fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.ecb(data, |b| self.decrypt(b))
    }

    fn ecb(&self, data: &[u8], f: impl Fn([u8; 16]) -> [u8; 16]) -> Result<Vec<u8>, Error> {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(Error::DataLength);
        }
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks_exact(16) {
            out.extend_from_slice(&f(block16(chunk)));
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4Key(..)")
    }
}

fn block16(c: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(c);
    b
}

/// The check value of an SM4 key: SM4 of 16 zero bytes, first 8 bytes.
pub fn check_value(key: &[u8]) -> Result<[u8; 8], Error> {
    let r = Sm4Key::new(key)?.encrypt([0u8; 16]);
    let mut cv = [0u8; 8];
    cv.copy_from_slice(&r[..8]);
    Ok(cv)
}

/// The PAN field: ten zero bytes, then the 12 right-most digits before the check digit.
fn pan_field(pan: &str) -> Result<[u8; 16], Error> {
    let digits = check_pan(pan)?;
    let body = &digits[..digits.len() - 1];
    let acct = &body[body.len().saturating_sub(12)..];
    let mut nibbles = [0u8; 32];
    let at = 32 - acct.len();
    for (i, d) in acct.iter().enumerate() {
        nibbles[at + i] = d - b'0';
    }
    Ok(pack(&nibbles))
}

fn pack(nibbles: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, pair) in nibbles.chunks_exact(2).enumerate() {
        out[i] = (pair[0] << 4) | pair[1];
    }
    out
}

/// The clear 16-byte PIN block of `pin` for `pan` (ISO 9564 format 0 widened to 128 bits).
pub fn pin_block(pin: &ClearPin, pan: &str) -> Result<[u8; 16], Error> {
    let mut nibbles = [0x0Fu8; 32];
    nibbles[0] = 0;
    nibbles[1] = pin.len() as u8;
    for i in 0..pin.len() {
        nibbles[2 + i] = pin.nibble(i);
    }
    let field = pack(&nibbles);
    nibbles.fill(0);
    Ok(xor16(field, pan_field(pan)?))
}

/// The PIN in a clear 16-byte PIN block for `pan`; a block that is not one is refused.
pub fn pin_from_block(block: &[u8; 16], pan: &str) -> Result<ClearPin, Error> {
    let field = xor16(*block, pan_field(pan)?);
    let mut nibbles = [0u8; 32];
    for (i, b) in field.iter().enumerate() {
        nibbles[2 * i] = b >> 4;
        nibbles[2 * i + 1] = b & 0x0F;
    }
    let len = usize::from(nibbles[1]);
    let ok = nibbles[0] == 0
        && (4..=12).contains(&len)
        && nibbles[2..2 + len].iter().all(|n| *n <= 9)
        && nibbles[2 + len..].iter().all(|n| *n == 0x0F);
    if !ok {
        nibbles.fill(0);
        return Err(Error::BadPinBlock);
    }
    let mut digits = [0u8; 12];
    for i in 0..len {
        digits[i] = b'0' + nibbles[2 + i];
    }
    nibbles.fill(0);
    let pin = ClearPin::from_digits(&digits[..len]);
    digits.fill(0);
    pin
}

/// XOR of all 16-byte blocks of `data`, the last one zero-padded.
fn xor_fold(data: &[u8]) -> [u8; 16] {
    let mut acc = [0u8; 16];
    for chunk in data.chunks(16) {
        let mut b = [0u8; 16];
        b[..chunk.len()].copy_from_slice(chunk);
        acc = xor16(acc, b);
    }
    acc
}

/// GB/T 15852.1 (ISO/IEC 9797-1) MAC algorithm 1 with SM4: CBC with a zero IV over the data
/// zero-padded to whole 16-byte blocks (one block of zeros for no data); the last block.
pub fn cbc_mac(key: &Sm4Key, data: &[u8]) -> [u8; 16] {
    let mut acc = [0u8; 16];
    if data.is_empty() {
        return key.encrypt(acc);
    }
    for chunk in data.chunks(16) {
        let mut b = [0u8; 16];
        b[..chunk.len()].copy_from_slice(chunk);
        acc = key.encrypt(xor16(acc, b));
    }
    acc
}

/// The UnionPay POS MAC under an SM4 key: 8 ASCII hex characters (CUP field 64).
pub fn pos_mac(key: &Sm4Key, data: &[u8]) -> [u8; 8] {
    let x = xor_fold(data);
    let mut h1 = [0u8; 16];
    let mut h2 = [0u8; 16];
    let (a, b) = x.split_at(8);
    let (mut left, mut right) = ([0u8; 8], [0u8; 8]);
    left.copy_from_slice(a);
    right.copy_from_slice(b);
    h1.copy_from_slice(&hex_upper8(&left));
    h2.copy_from_slice(&hex_upper8(&right));
    let r = key.encrypt(xor16(key.encrypt(h1), h2));
    let mut first = [0u8; 8];
    first.copy_from_slice(&r[..8]);
    let hex = hex_upper8(&first);
    let mut mac = [0u8; 8];
    mac.copy_from_slice(&hex[..8]);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    /// GB/T 32907-2016 Appendix A, examples 1 and 2.
    #[test]
    fn the_standards_vectors() {
        let k = unhex("0123456789ABCDEFFEDCBA9876543210");
        let key = Sm4Key::new(&k).unwrap();
        let mut b = block16(&k);
        b = key.encrypt(b);
        assert_eq!(hex(&b), "681EDF34D206965E86B3E94F536E4246");
        assert_eq!(hex(&key.decrypt(b)), hex(&k));
        let mut x = block16(&k);
        for _ in 0..1_000_000 {
            x = key.encrypt(x);
        }
        assert_eq!(hex(&x), "595298C7C6FD271F0402F804C33D3F66");
        assert!(Sm4Key::new(&k[..8]).is_err());
    }

    /// The worked example: a working key under the TMK, its check value, a PIN block.
    #[test]
    fn the_worked_unionpay_example() {
        let tmk = Sm4Key::new(&unhex("1234567890ABCDEFABCDEF0987654321")).unwrap();
        let wk = tmk
            .decrypt_ecb(&unhex("3D66234C49E4296FF9C78D8BACBD6A76"))
            .unwrap();
        assert_eq!(hex(&check_value(&wk).unwrap()), "861E83E31FAEBF10");
        let pin = ClearPin::new("123654").unwrap();
        let block = pin_block(&pin, "6230606601007726888").unwrap();
        assert_eq!(hex(&block), "06123654FFFFFFFFFFFF99FEFF88D977");
        let back = pin_from_block(&block, "6230606601007726888").unwrap();
        assert!(back == pin);
        let mut wrong = block;
        wrong[0] ^= 0x10;
        assert!(pin_from_block(&wrong, "6230606601007726888").is_err());
        // Another account (the check digit is not in the PAN field): not a PIN block.
        assert!(pin_from_block(&block, "6230606601007726878").is_err());
    }

    #[test]
    fn the_mac_is_eight_hex_characters() {
        let key = Sm4Key::new(&unhex("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let mac = pos_mac(&key, b"0200302004C020C0981100000000000000005100");
        assert!(mac.iter().all(u8::is_ascii_hexdigit));
        assert_ne!(
            mac,
            pos_mac(&key, b"0200302004C020C0981100000000000000005101")
        );
    }
}
