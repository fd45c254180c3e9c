//! Keys that are public: demo keys of this project and the well-known test keys of the
//! standards, vendors' manuals and test suites. A production system refuses every one of
//! them, wherever it is configured and however it is sealed, by its check value.
//!
//! ```text
//!   sealed key ─▶ unseal under the LMK ─▶ E_K(0^8) (DES family) / CMAC_K(0^16) (AES)
//!              (SM4: SM4_K(0^16))
//!              ─▶ compare with the check values of the keys below ─▶ the key's name, or None
//! ```
//!
//! Comparing full check values (8 bytes, 16 for AES) rather than the 3 bytes shown to people
//! makes a false match on a genuine key practically impossible; a DES key whose parity bits
//! differ, and a double-length key whose halves are equal, match their single-length twin.

use std::sync::OnceLock;

use crate::key::{ClearKey, KeyAlgorithm};

/// A public key: where it is published, and its value.
#[derive(Clone, Copy, Debug)]
pub struct PublishedKey {
    /// What the key is known as.
    pub name: &'static str,
    /// The clear key, hex.
    pub hex: &'static str,
}

/// Every key this HSM knows to be public. Demo keys of this project come first; a test in
/// the switch checks that every clear key in its demo configurations is here.
pub const PUBLISHED_KEYS: &[PublishedKey] = &[
    // This project's demo and simulator keys (README, switch/demo.toml, demo-issuer.toml).
    k(
        "demo TMK / classic test key 0123…3210 (also the X9.24 TDES BDK and Visa CVK example)",
        "0123456789ABCDEFFEDCBA9876543210",
    ),
    k(
        "demo zone PIN key (demo-issuer)",
        "A1B2C3D4E5F60718293A4B5C6D7E8F91",
    ),
    k(
        "demo zone MAC key (demo-issuer)",
        "0E1F2C3D4A5B68798697A4B5C2D3E0F1",
    ),
    k(
        "demo PVK (also a Thales simulator PVV example)",
        "13345779133457791334577913345779",
    ),
    k("issuer simulator PVK", "0123456789ABCDEF1032547698BADCFE"),
    // Halves and single-length keys of the classic test vectors.
    k(
        "ISO 9797-1 Annex B key K 0123456789ABCDEF",
        "0123456789ABCDEF",
    ),
    k(
        "ISO 9797-1 Annex B key K' FEDCBA9876543210",
        "FEDCBA9876543210",
    ),
    // Thales simulator test suite.
    k("Thales simulator KCV example (single)", "0B681FC20E62C734"),
    k(
        "Thales simulator KCV example (double)",
        "C7152C20BC2C830EA7EC9E8334ABE3FE",
    ),
    k("Thales simulator IBM 3624 PVK", "1C1C1C1C1C1C1C1C"),
    k(
        "Thales simulator PVV PVK",
        "C8199237EA5857BC40EF9DA2B5E96BBF",
    ),
    k(
        "Thales simulator PVV PVK (U scheme)",
        "86190176866EC17FB32685ADB6ADA83B",
    ),
    k("Thales simulator MA TAK", "E9CB01B93B20914F"),
    // UnionPay MAC worked examples.
    k("CUP ECB MAC vector MAK (solo123/pgate)", "2222222222222222"),
    k(
        "UnionPay MAC worked example TMK",
        "70F2A84CCBC2AE8625CBB0F2C22AB923",
    ),
    k("UnionPay MAC worked example TAK", "C24A8FB57AA20123"),
    // ANSI X9.24-1:2009 annex A (TDES DUKPT).
    k("X9.24-1 DUKPT IPEK", "6AC292FAA1315B4D858AB3A3D7D5933A"),
    k("X9.24-1 DUKPT key tc=1", "042666B49184CFA368DE9628D0397BC9"),
    k("X9.24-1 DUKPT key tc=2", "C46551CEF9FD24B0AA9AD834130D3BC7"),
    k(
        "X9.24-1 DUKPT key tc=21",
        "E161D1956A61F6D2F37AFD7F9CC3699A",
    ),
    // TR-31 examples.
    k(
        "TR-31 version A example KBPK",
        "89E88CF7931444F334BD7547FC3F380C",
    ),
    k(
        "TR-31 version A example key",
        "F039121BEC83D26B169BDCD5B22AAF8F",
    ),
    k("TR-31 version B example key", "CCCCCCCCDDDDDDDD"),
    k(
        "TR-31 version B example KBPK ('FFFFFFFFEEEEEEEE')",
        "46464646464646464545454545454545",
    ),
    // DES weak keys (parity-adjusted forms).
    k("DES weak key 0101…", "0101010101010101"),
    k("DES weak key FEFE…", "FEFEFEFEFEFEFEFE"),
    k("DES weak key E0E0F1F1…", "E0E0E0E0F1F1F1F1"),
    k("DES weak key 1F1F0E0E…", "1F1F1F1F0E0E0E0E"),
    k("all-zero key", "0000000000000000"),
    // AES: RFC 4493, FIPS 197, X9.24-3:2017.
    k(
        "RFC 4493 / NIST AES-128 example key",
        "2B7E151628AED2A6ABF7158809CF4F3C",
    ),
    k(
        "FIPS 197 AES-128 example key",
        "000102030405060708090A0B0C0D0E0F",
    ),
    k(
        "AES test key 00112233…EEFF",
        "00112233445566778899AABBCCDDEEFF",
    ),
    k("X9.24-3 AES DUKPT BDK", "FEDCBA9876543210F1F1F1F1F1F1F1F1"),
    k(
        "X9.24-3 AES DUKPT initial key",
        "1273671EA26AC29AFA4D1084127652A1",
    ),
    k(
        "X9.24-3 AES DUKPT key tc=1",
        "4F21B565BAD9835E112B6465635EAE44",
    ),
    k(
        "X9.24-3 AES DUKPT PIN key tc=1",
        "AF8CB133A78F8DC2D1359F18527593FB",
    ),
    k(
        "X9.24-3 AES DUKPT key tc=2",
        "2F34D68DE10F68D38091A73B9E7C437C",
    ),
    k(
        "X9.24-3 AES DUKPT PIN key tc=2",
        "D30BDC73EC9714B000BEC66BDB7B6D09",
    ),
    k(
        "TR-31 version D example key",
        "B9517FF24FD4C71833478D424C29751D",
    ),
    // SM4: GB/T 32907-2016's example key is the demo TMK above; a UnionPay worked example.
    k(
        "SM4 UnionPay worked example TMK (blog.csdn.net/M_Kerry)",
        "1234567890ABCDEFABCDEF0987654321",
    ),
    k(
        "SM4 UnionPay worked example working key",
        "F351D490994603795C6EBEE8FAEBB481",
    ),
];

const fn k(name: &'static str, hex: &'static str) -> PublishedKey {
    PublishedKey { name, hex }
}

/// The full check values of the published keys, computed once: (value, name).
fn check_values() -> &'static [(Vec<u8>, &'static str)] {
    static VALUES: OnceLock<Vec<(Vec<u8>, &'static str)>> = OnceLock::new();
    VALUES.get_or_init(|| {
        let mut v = Vec::new();
        // Keys of one repeated byte (0000…, 1111…, 2222…, …): anyone guesses them. As DES keys
        // their double- and triple-length forms (K‖K) have the same check value.
        for b in 0..=255u8 {
            if let Ok(cv) = ClearKey::new(KeyAlgorithm::Des, &[b; 8]).and_then(|c| c.check_value())
            {
                v.push((cv, "a key of one repeated byte"));
            }
            for alg in [KeyAlgorithm::Aes128, KeyAlgorithm::Sm4] {
                if let Ok(cv) = ClearKey::new(alg, &[b; 16]).and_then(|c| c.check_value()) {
                    v.push((cv, "a key of one repeated byte"));
                }
            }
        }
        for p in PUBLISHED_KEYS {
            let Ok(bytes) = hex::decode(p.hex) else {
                continue;
            };
            // A 16-byte key may be double-length DES, AES-128 or SM4: list every reading.
            let algs: &[KeyAlgorithm] = match bytes.len() {
                8 => &[KeyAlgorithm::Des],
                16 => &[KeyAlgorithm::Tdes2, KeyAlgorithm::Aes128, KeyAlgorithm::Sm4],
                24 => &[KeyAlgorithm::Tdes3],
                _ => &[],
            };
            for alg in algs {
                if let Ok(cv) = ClearKey::new(*alg, &bytes).and_then(|c| c.check_value()) {
                    v.push((cv, p.name));
                }
            }
        }
        v
    })
}

/// The name of the published key whose full check value is `check_value`, if any.
pub fn lookup(check_value: &[u8]) -> Option<&'static str> {
    check_values()
        .iter()
        .find(|(cv, _)| cv.as_slice() == check_value)
        .map(|(_, name)| *name)
}

/// The name of the published key equal to this clear key (for key ceremonies).
pub fn lookup_clear(alg: KeyAlgorithm, key: &[u8]) -> Option<&'static str> {
    let cv = ClearKey::new(alg, key).and_then(|c| c.check_value()).ok()?;
    lookup(&cv)
}
