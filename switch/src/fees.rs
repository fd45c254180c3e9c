//! Merchant discount rate (MDR) fees, in integer fen.
//!
//! `fee = round_half_up(amount × rate)`, then capped. Rates are kept in parts per million
//! (0.50 % = 5,000 ppm), so the arithmetic is exact in `u128`.
//!
//! | channel | default rate | cap |
//! | --- | --- | --- |
//! | debit card | 0.50 % | 20.00 CNY |
//! | credit card | 0.60 % | none |
//! | QR payment code | 0.38 % | none |

use serde::{Deserialize, Serialize};

/// Fee channel: the card type, or QR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Debit card.
    Debit,
    /// Credit card.
    Credit,
    /// QR payment code.
    Qr,
}

impl Channel {
    /// As shown in metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
            Self::Qr => "qr",
        }
    }

    /// From the journal's text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debit" => Some(Self::Debit),
            "credit" => Some(Self::Credit),
            "qr" => Some(Self::Qr),
            _ => None,
        }
    }

    /// The channel of a card of `card_type` (QR payment codes are their own channel).
    pub fn of_card(card_type: crate::model::CardType) -> Self {
        match card_type {
            crate::model::CardType::Debit => Self::Debit,
            crate::model::CardType::Credit => Self::Credit,
        }
    }

    /// Money back to an account of this channel: a debit account (card or wallet) gains,
    /// a credit card's amount used falls.
    pub fn credit_back(self, amount_fen: i64) -> i64 {
        match self {
            Self::Credit => -amount_fen,
            Self::Debit | Self::Qr => amount_fen,
        }
    }
}

/// One fee rule; the first that matches a transaction applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRule {
    /// Channel it applies to.
    pub channel: Channel,
    /// Rate in parts per million.
    pub rate_ppm: u64,
    /// Cap in fen.
    pub cap_fen: Option<u64>,
    /// Only this MCC, if set.
    pub mcc: Option<String>,
    /// Only this merchant, if set.
    pub merchant: Option<String>,
}

/// Parses `"0.50%"` (up to four decimals) into parts per million.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let num = t
        .strip_suffix('%')
        .ok_or("write the rate as a percentage, e.g. \"0.50%\"")?
        .trim();
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{s:?} is not a percentage"));
    }
    if frac.len() > 4 {
        return Err("at most four decimals (0.0001 %)".into());
    }
    let int: u64 = int.parse().map_err(|_| format!("{s:?} is too large"))?;
    let mut f = frac.to_owned();
    while f.len() < 4 {
        f.push('0');
    }
    let frac: u64 = f
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))?;
    let ppm = int * 10_000 + frac;
    if ppm > 100 * 10_000 {
        return Err("a rate above 100 % makes no sense".into());
    }
    Ok(ppm)
}

/// The fee for `amount_fen` at `rate_ppm`, rounded half up, capped.
pub fn fee(amount_fen: u64, rate_ppm: u64, cap_fen: Option<u64>) -> u64 {
    let raw = (u128::from(amount_fen) * u128::from(rate_ppm) + 500_000) / 1_000_000;
    let raw = u64::try_from(raw).unwrap_or(u64::MAX);
    cap_fen.map_or(raw, |c| raw.min(c))
}

/// The fee schedule.
#[derive(Clone, Debug, Default)]
pub struct FeeSchedule {
    rules: Vec<FeeRule>,
}

impl FeeSchedule {
    /// A schedule from rules in order.
    pub fn new(rules: Vec<FeeRule>) -> Self {
        Self { rules }
    }

    /// The fee for a transaction; zero when no rule matches.
    pub fn fee_for(&self, channel: Channel, mcc: &str, merchant: &str, amount_fen: u64) -> u64 {
        self.rules
            .iter()
            .find(|r| {
                r.channel == channel
                    && r.mcc.as_deref().is_none_or(|m| m == mcc)
                    && r.merchant.as_deref().is_none_or(|m| m == merchant)
            })
            .map_or(0, |r| fee(amount_fen, r.rate_ppm, r.cap_fen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples_to_the_fen() {
        // DESIGN.md §7: debit 1.33 → 0.01; debit 5000.00 → 20.00 (capped);
        // credit 1000.00 → 6.00; QR 1000.00 → 3.80.
        assert_eq!(fee(133, 5_000, Some(2_000)), 1);
        assert_eq!(fee(500_000, 5_000, Some(2_000)), 2_000);
        assert_eq!(fee(100_000, 6_000, None), 600);
        assert_eq!(fee(100_000, 3_800, None), 380);
        // Half up: 0.5 fen rounds to 1, 0.49 to 0.
        assert_eq!(fee(100, 5_000, None), 1);
        assert_eq!(fee(98, 5_000, None), 0);
        assert_eq!(fee(u64::MAX, 1_000_000, None), u64::MAX);
    }

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(parse_rate("0.50%"), Ok(5_000));
        assert_eq!(parse_rate("0.38%"), Ok(3_800));
        assert_eq!(parse_rate("1%"), Ok(10_000));
        assert_eq!(parse_rate(" 0.0001% "), Ok(1));
        assert!(parse_rate("0.5").is_err());
        assert!(parse_rate("0.00001%").is_err());
        assert!(parse_rate("x%").is_err());
        assert!(parse_rate("101%").is_err());
    }

    #[test]
    fn first_matching_rule_wins() {
        let s = FeeSchedule::new(vec![
            FeeRule {
                channel: Channel::Debit,
                rate_ppm: 1_000,
                cap_fen: None,
                mcc: Some("5812".into()),
                merchant: None,
            },
            FeeRule {
                channel: Channel::Debit,
                rate_ppm: 5_000,
                cap_fen: Some(2_000),
                mcc: None,
                merchant: None,
            },
        ]);
        assert_eq!(s.fee_for(Channel::Debit, "5812", "M", 100_000), 100);
        assert_eq!(s.fee_for(Channel::Debit, "5411", "M", 100_000), 500);
        assert_eq!(s.fee_for(Channel::Qr, "5411", "M", 100_000), 0);
    }
}
