//! `[acquirer]`: the acquirer's own rules.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, is_digits};

/// What happens to the MDR fee when a sale is refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefundFeePolicy {
    /// The merchant pays the sale's fee in full (default).
    Keep,
    /// The fee is returned in proportion to the amount refunded.
    Proportional,
}

impl RefundFeePolicy {
    /// The fee of a refund of `amount_fen` of a sale of `sale_fen` that paid `sale_fee_fen`:
    /// nothing, or (negative) the share of the sale's fee it returns, rounded half up.
    pub fn refund_fee(self, amount_fen: i64, sale_fen: i64, sale_fee_fen: i64) -> i64 {
        match self {
            Self::Keep => 0,
            Self::Proportional if sale_fen > 0 => {
                -((i128::from(sale_fee_fen) * i128::from(amount_fen) * 2 + i128::from(sale_fen))
                    / (2 * i128::from(sale_fen))) as i64
            }
            Self::Proportional => 0,
        }
    }
}

/// Acquirer-wide rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcquirerConfig {
    /// Field 32 in replies.
    pub institution_id: String,
    /// Currency accepted in field 49.
    pub currency: String,
    /// Largest amount in fen; above it the answer is 13.
    pub max_amount_fen: u64,
    /// Consecutive wrong PINs before a card answers 75.
    pub pin_tries: u8,
    /// Days after a sale during which it can be refunded.
    pub refund_window_days: u32,
    /// The fee on refunds.
    pub refund_fee_policy: RefundFeePolicy,
    /// QR sales above this amount need the payment password (a PIN block).
    pub qr_password_free_limit_fen: u64,
}

impl Default for AcquirerConfig {
    fn default() -> Self {
        Self {
            institution_id: "00000001".into(),
            currency: "156".into(),
            max_amount_fen: 10_000_000,
            pin_tries: 3,
            refund_window_days: 30,
            refund_fee_policy: RefundFeePolicy::Keep,
            qr_password_free_limit_fen: 100_000,
        }
    }
}

impl AcquirerConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.institution_id.is_empty()
            || self.institution_id.len() > 11
            || !self.institution_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid("acquirer.institution_id", "must be 1 to 11 digits"));
        }
        if !is_digits(&self.currency, 3) {
            return Err(invalid(
                "acquirer.currency",
                "must be a 3-digit ISO 4217 code",
            ));
        }
        if self.pin_tries == 0 {
            return Err(invalid("acquirer.pin_tries", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RefundFeePolicy;

    #[test]
    fn proportional_refund_fees_round_half_up() {
        assert_eq!(RefundFeePolicy::Keep.refund_fee(500, 1_000, 5), 0);
        assert_eq!(RefundFeePolicy::Proportional.refund_fee(500, 1_000, 5), -3);
        assert_eq!(
            RefundFeePolicy::Proportional.refund_fee(1_000, 1_000, 5),
            -5
        );
        assert_eq!(RefundFeePolicy::Proportional.refund_fee(1, 0, 5), 0);
    }
}
