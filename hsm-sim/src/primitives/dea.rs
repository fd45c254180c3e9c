//! DEA (DES, FIPS 46-3 / ANSI X3.92) by tables: the one block cipher every POS MAC, PIN
//! block and PIN offset of a sale runs through, several times per request.
//!
//! The permutations and S-boxes below are the standard's; the tables a block uses are
//! built from them once:
//!
//! ```text
//!  block (64) ─▶ IP: 8 byte look-ups ─▶ L0 | R0
//!  16 rounds:   Lᵢ = Rᵢ₋₁,  Rᵢ = Lᵢ₋₁ ⊕ f(Rᵢ₋₁, Kᵢ)
//!               f(R, K) = ⊕ over the 8 S-boxes of SPₛ[ Eₛ(R) ⊕ Kₛ ]   (SP: S-box then P)
//!               Eₛ(R): six bits of R, bits 4s … 4s+5 of R rotated right by one
//!  R16 | L16 ─▶ FP = IP⁻¹: 8 byte look-ups ─▶ block
//! ```
//!
//! The even S-boxes' six-bit inputs do not overlap in E = R rotated right by one, nor the
//! odd ones' in E rotated left by two; so a round's eight subkeys are kept as two words
//! laid out the same way, and a round XORs two words instead of eight bytes:
//!
//! ```text
//!  u = E ⊕ K_even:  S1 bits 26–31 │ S3 18–23 │ S5 10–15 │ S7 2–7
//!  t = (E ⋘ 2) ⊕ K_odd:  S2 bits 24–29 │ S4 16–21 │ S6 8–13 │ S8 0–5
//! ```
//!
//! Differentially tested against the RustCrypto `des` crate and the standard's known
//! answers; the key schedule zeroizes on drop.

use std::sync::LazyLock;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Initial permutation: output bit j (1 = most significant) is input bit `IP[j - 1]`.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

/// The permutation after the S-boxes.
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

/// Permuted choice 1: the key's 56 bits that matter, as C (first 28) and D.
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2: a round's 48 key bits from C | D.
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// Left rotations of C and D before each round.
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// The S-boxes: row (the six bits' first and last) × 16 + column (the middle four).
const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, //
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, //
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, //
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, //
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, //
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, //
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, //
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, //
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, //
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, //
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, //
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, //
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, //
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, //
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, //
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, //
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, //
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, //
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, //
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, //
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, //
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, //
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, //
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, //
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// `x`'s bits rearranged: output bit j (1 = most significant of `out_bits`) is input bit
/// `table[j - 1]` (1 = most significant of `in_bits`).
fn permute(x: u64, in_bits: u32, table: &[u8]) -> u64 {
    let out_bits = table.len() as u32;
    table.iter().enumerate().fold(0, |acc, (j, &from)| {
        let bit = (x >> (in_bits - u32::from(from))) & 1;
        acc | (bit << (out_bits - 1 - j as u32))
    })
}

/// The tables a block runs through.
struct Tables {
    /// IP of a block holding only byte `k` (0 = first): IP is linear, so IP of a block is
    /// the XOR of its bytes' entries.
    ip: [[u64; 256]; 8],
    /// The same for IP⁻¹.
    fp: [[u64; 256]; 8],
    /// S-box `s` then P, for each six-bit input.
    sp: [[u32; 64]; 8],
    /// PC-1 and PC-2 by bytes, as IP (the key schedule).
    pc1: [[u64; 256]; 8],
    pc2: [[u64; 256]; 7],
}

/// `permute` of a word holding only byte `k` (0 = first of `in_bits / 8`), for each value
/// of the byte.
fn by_byte_table<const N: usize>(in_bits: u32, table: &[u8]) -> [[u64; 256]; N] {
    let mut t = [[0; 256]; N];
    for (k, row) in t.iter_mut().enumerate() {
        for (v, out) in row.iter_mut().enumerate() {
            *out = permute((v as u64) << (in_bits - 8 - 8 * k as u32), in_bits, table);
        }
    }
    t
}

static TABLES: LazyLock<Box<Tables>> = LazyLock::new(|| {
    let mut inverse = [0u8; 64];
    for (j, &from) in IP.iter().enumerate() {
        inverse[usize::from(from) - 1] = j as u8 + 1;
    }
    let mut t = Box::new(Tables {
        ip: by_byte_table(64, &IP),
        fp: by_byte_table(64, &inverse),
        sp: [[0; 64]; 8],
        pc1: by_byte_table(64, &PC1),
        pc2: by_byte_table(56, &PC2),
    });
    for (s, table) in S.iter().enumerate() {
        for v in 0..64usize {
            let row = ((v >> 4) & 2) | (v & 1);
            let column = (v >> 1) & 0xF;
            let out = u64::from(table[row * 16 + column]) << (28 - 4 * s);
            t.sp[s][v] = permute(out, 32, &P) as u32;
        }
    }
    t
});

/// The permutation a by-bytes table stands for, of `x`'s last `N` bytes (IP and IP⁻¹ of a
/// block, PC-1 and PC-2 of a key).
#[inline]
fn by_bytes<const N: usize>(table: &[[u64; 256]; N], x: u64) -> u64 {
    let b = x.to_be_bytes();
    table
        .iter()
        .zip(&b[8 - N..])
        .fold(0, |acc, (t, &byte)| acc ^ t[usize::from(byte)])
}

/// One DES key's schedule: each round's eight six-bit subkeys, as the two words a round
/// XORs (the even S-boxes' subkeys, then the odd ones', placed as the module's diagram
/// shows).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dea {
    rounds: [[u32; 2]; 16],
}

impl Dea {
    /// Schedules an 8-byte key (its parity bits are ignored, as the standard says).
    pub fn new(key: [u8; 8]) -> Self {
        let t = &**TABLES;
        let cd = by_bytes(&t.pc1, u64::from_be_bytes(key));
        let (mut c, mut d) = ((cd >> 28) as u32, (cd & 0x0FFF_FFFF) as u32);
        let rotate = |h: u32, n: u32| ((h << n) | (h >> (28 - n))) & 0x0FFF_FFFF;
        let mut rounds = [[0u32; 2]; 16];
        for (round, &n) in rounds.iter_mut().zip(&SHIFTS) {
            c = rotate(c, n);
            d = rotate(d, n);
            let k = by_bytes(&t.pc2, (u64::from(c) << 28) | u64::from(d));
            let sub = |s: u32| ((k >> (42 - 6 * s)) & 0x3F) as u32;
            *round = [
                (sub(0) << 26) | (sub(2) << 18) | (sub(4) << 10) | (sub(6) << 2),
                (sub(1) << 24) | (sub(3) << 16) | (sub(5) << 8) | sub(7),
            ];
        }
        Self { rounds }
    }

    /// Encrypts one block.
    #[inline]
    pub fn encrypt(&self, block: [u8; 8]) -> [u8; 8] {
        crypt(block, self.rounds.iter())
    }

    /// Decrypts one block.
    #[inline]
    pub fn decrypt(&self, block: [u8; 8]) -> [u8; 8] {
        crypt(block, self.rounds.iter().rev())
    }

    /// This key's 16 rounds, forwards (`Encrypt`) or backwards, on a block already through
    /// IP; the result is ready for FP.
    fn halves(&self, way: Way, (l, r): (u32, u32)) -> (u32, u32) {
        match way {
            Way::Encrypt => rounds(l, r, self.rounds.iter()),
            Way::Decrypt => rounds(l, r, self.rounds.iter().rev()),
        }
    }
}

/// Which way a key runs in [`triple`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Rounds 1 to 16.
    Encrypt,
    /// Rounds 16 to 1.
    Decrypt,
}

/// Three DES operations in a row (triple DES), with one IP and one FP: between two of
/// them the first's FP and the second's IP cancel (IP⁻¹ then IP), so the 48 rounds run on
/// the permuted block. Four of a TDES block's six permutations are not done.
///
/// ```text
///  block ─▶ IP ─▶ 16 rounds (k₁) ─▶ 16 rounds (k₂) ─▶ 16 rounds (k₃) ─▶ FP ─▶ block
/// ```
pub fn triple(steps: [(&Dea, Way); 3], block: [u8; 8]) -> [u8; 8] {
    let t = &**TABLES;
    let x = by_bytes(&t.ip, u64::from_be_bytes(block));
    let mut halves = ((x >> 32) as u32, x as u32);
    for (key, way) in steps {
        halves = key.halves(way, halves);
    }
    by_bytes(&t.fp, (u64::from(halves.0) << 32) | u64::from(halves.1)).to_be_bytes()
}

fn crypt<'a>(block: [u8; 8], keys: impl Iterator<Item = &'a [u32; 2]>) -> [u8; 8] {
    let t = &**TABLES;
    let x = by_bytes(&t.ip, u64::from_be_bytes(block));
    let (l, r) = rounds((x >> 32) as u32, x as u32, keys);
    by_bytes(&t.fp, (u64::from(l) << 32) | u64::from(r)).to_be_bytes()
}

/// Sixteen rounds on L | R; returns R₁₆ | L₁₆, the halves FP takes (and the next DES
/// operation's IP gives).
#[inline]
fn rounds<'a>(mut l: u32, mut r: u32, keys: impl Iterator<Item = &'a [u32; 2]>) -> (u32, u32) {
    let sp = &TABLES.sp;
    // Indices masked to six bits: no bounds checks, and the rounds unrolled.
    let at = |w: u32, shift: u32| ((w >> shift) & 0x3F) as usize;
    for &[even, odd] in keys {
        let e = r.rotate_right(1);
        let u = e ^ even;
        let t = e.rotate_left(2) ^ odd;
        let f = sp[0][at(u, 26)]
            ^ sp[1][at(t, 24)]
            ^ sp[2][at(u, 18)]
            ^ sp[3][at(t, 16)]
            ^ sp[4][at(u, 10)]
            ^ sp[5][at(t, 8)]
            ^ sp[6][at(u, 2)]
            ^ sp[7][at(t, 0)];
        (l, r) = (r, l ^ f);
    }
    (r, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use des::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

    fn hex8(s: &str) -> [u8; 8] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn the_standards_known_answers() {
        // "Now is t" under 0123456789ABCDEF (the classic worked example), and the
        // NBS/NIST validation set's first entries (SP 800-17, table A.1: the variable
        // plaintext test under the key of odd-parity zeros).
        for (key, plain, cipher) in [
            ("0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815"),
            ("133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405"),
            ("0101010101010101", "8000000000000000", "95F8A5E5DD31D900"),
            ("0101010101010101", "4000000000000000", "DD7F121CA5015619"),
            ("0101010101010101", "0000000000000001", "166B40B44ABA4BD6"),
        ] {
            let k = Dea::new(hex8(key));
            assert_eq!(k.encrypt(hex8(plain)), hex8(cipher), "{key} {plain}");
            assert_eq!(k.decrypt(hex8(cipher)), hex8(plain), "{key} {cipher}");
        }
    }

    #[test]
    fn agrees_with_the_rustcrypto_des_crate() {
        // A deterministic walk: each key and block from the last output.
        let mut key = hex8("0E329232EA6D0D73");
        let mut block = hex8("8787878787878787");
        for _ in 0..5_000 {
            let ours = Dea::new(key);
            let theirs = des::Des::new_from_slice(&key).unwrap();
            let mut b = block.into();
            theirs.encrypt_block(&mut b);
            let expected: [u8; 8] = b.into();
            assert_eq!(
                ours.encrypt(block),
                expected,
                "key {key:02X?} block {block:02X?}"
            );
            let mut b = expected.into();
            theirs.decrypt_block(&mut b);
            let back: [u8; 8] = b.into();
            assert_eq!(ours.decrypt(expected), back);
            assert_eq!(back, block);
            key = ours.encrypt(expected);
            block = ours.encrypt(key);
        }
    }
}
