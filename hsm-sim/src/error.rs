//! The HSM's errors. None carries key or PIN material.

/// What went wrong in an HSM operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key has the wrong length for its algorithm.
    #[error("wrong key length")]
    KeyLength,
    /// Data is not a whole number of blocks, or a field has the wrong length.
    #[error("wrong data length")]
    DataLength,
    /// A PAN is not 12 to 19 digits.
    #[error("PAN must be 12 to 19 digits")]
    BadPan,
    /// A PIN is not 4 to 12 digits.
    #[error("PIN must be 4 to 12 digits")]
    BadPin,
    /// A PIN key index is not 0 to 9.
    #[error("PVKI must be 0 to 9")]
    BadPvki,
    /// A decrypted PIN block does not follow its format.
    #[error("PIN block format error")]
    BadPinBlock,
    /// A key was used for something its usage does not allow.
    #[error("key usage {actual} not allowed here (needs {expected})")]
    WrongUsage {
        /// The key's usage.
        actual: crate::KeyUsage,
        /// What the operation needs.
        expected: &'static str,
    },
    /// A key's algorithm does not fit the operation.
    #[error("key algorithm not allowed for this operation")]
    WrongAlgorithm,
    /// A sealed key failed authentication: tampered, truncated, or sealed under another LMK.
    #[error("sealed key rejected (tampered or wrong LMK)")]
    SealedKeyRejected,
    /// Too many PIN verification failures in the current window: verification refused.
    #[error("PIN verification failure limit reached; try later")]
    FailureLimit,
    /// The demo LMK was offered without allowing test keys.
    #[error("the demo LMK is a test key and is refused unless test keys are allowed")]
    TestKeyRefused,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Random,
}
