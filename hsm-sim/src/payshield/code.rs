//! The two-character error codes a payShield puts after the response code.

/// A payShield error code. `00` is success; `01` a verification that failed; the rest say
/// why a command was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// `00`
    Ok,
    /// `01`: verification failure (PIN, MAC, CVV).
    VerificationFailure,
    /// `04`: invalid key type code.
    InvalidKeyType,
    /// `05`: invalid key length flag.
    InvalidKeyLengthFlag,
    /// `10`: source key parity error.
    SourceParity,
    /// `11`: destination key parity error.
    DestinationParity,
    /// `14`: a PIN under LMK 02-03 is invalid.
    PinUnderLmkInvalid,
    /// `15`: invalid input data (format, characters, or too little data).
    InvalidInput,
    /// `20`: the PIN block does not contain valid values.
    PinBlockInvalid,
    /// `23`: invalid PIN block format code.
    InvalidPinBlockFormat,
    /// `24`: the PIN is fewer than 4 or more than 12 digits, or longer than the maximum.
    PinLength,
    /// `26`: invalid key scheme.
    InvalidKeyScheme,
    /// `27`: incompatible key length.
    KeyLength,
    /// `68`: command disabled (or not known).
    CommandDisabled,
    /// `80`: data length error.
    DataLength,
}

impl ErrorCode {
    /// The two ASCII digits on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "00",
            Self::VerificationFailure => "01",
            Self::InvalidKeyType => "04",
            Self::InvalidKeyLengthFlag => "05",
            Self::SourceParity => "10",
            Self::DestinationParity => "11",
            Self::PinUnderLmkInvalid => "14",
            Self::InvalidInput => "15",
            Self::PinBlockInvalid => "20",
            Self::InvalidPinBlockFormat => "23",
            Self::PinLength => "24",
            Self::InvalidKeyScheme => "26",
            Self::KeyLength => "27",
            Self::CommandDisabled => "68",
            Self::DataLength => "80",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
