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
    /// Pre-authorisation: days a hold lasts uncompleted before it lapses.
    pub preauth_expiry_days: u32,
    /// Pre-authorisation: a completion may take up to this percentage of the
    /// pre-authorised amount (CUP practice: 115); above it the answer is 61.
    pub completion_tolerance_pct: u32,
    /// Tip adjustments: the tips on a sale add up to at most this percentage of it;
    /// above it the answer is 61.
    pub tip_max_pct: u32,
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
            preauth_expiry_days: 30,
            completion_tolerance_pct: 115,
            tip_max_pct: 20,
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
        if self.preauth_expiry_days == 0 {
            return Err(invalid(
                "acquirer.preauth_expiry_days",
                "must be at least 1",
            ));
        }
        if !(100..=200).contains(&self.completion_tolerance_pct) {
            return Err(invalid(
                "acquirer.completion_tolerance_pct",
                "must be 100 to 200 (per cent of the pre-authorised amount)",
            ));
        }
        if self.tip_max_pct > 100 {
            return Err(invalid("acquirer.tip_max_pct", "must be 0 to 100"));
        }
        Ok(())
    }
}

impl AcquirerConfig {
    /// The most a completion of a pre-authorisation of `preauth_fen` may take.
    pub fn completion_limit_fen(&self, preauth_fen: i64) -> i64 {
        (i128::from(preauth_fen) * i128::from(self.completion_tolerance_pct) / 100) as i64
    }

    /// The most the tips on a sale of `sale_fen` may add up to.
    pub fn tip_limit_fen(&self, sale_fen: i64) -> i64 {
        (i128::from(sale_fen) * i128::from(self.tip_max_pct) / 100) as i64
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
