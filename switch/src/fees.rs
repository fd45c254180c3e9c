//! Merchant discount rate (MDR) fees, in integer fen.
//!
//! `fee = round_half_up(amount × rate)`, then capped. Rates are kept in parts per million
//! (0.50 % = 5,000 ppm), so the arithmetic is exact in `u128`.
//!
//! A merchant is priced by its fee category (its rate card), and each category has a rule
//! per channel:
//!
//! | category | debit card | credit card | QR payment code |
//! | --- | --- | --- | --- |
//! | `standard` (标准类) | 0.50 %, capped at 20.00 CNY | 0.60 % | 0.38 % |
//! | `preferential` (优惠类, 减免类) | typically 0.38 %–0.48 % | | |
//! | `public-welfare` (公益类) | 0 % | 0 % | 0 % |
//!
//! (the demo's figures; the rates are configuration). A merchant's category is set on its
//! terminal range, or follows its MCC through a category table: the configuration's, then
//! [`DEFAULT_MCC_CATEGORIES`]; any other MCC is `standard`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A merchant's fee category: `standard`, `preferential`, `public-welfare`, or a name of the
/// acquirer's own (lower-case letters, digits and `-`, at most 32).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeeCategory(Arc<str>);

impl FeeCategory {
    /// 标准类: the rate card most merchants are on.
    pub const STANDARD: &'static str = "standard";
    /// 优惠类 and 减免类: supermarkets, fuel, utilities and the like.
    pub const PREFERENTIAL: &'static str = "preferential";
    /// 公益类: hospitals, schools, charities, government services.
    pub const PUBLIC_WELFARE: &'static str = "public-welfare";

    /// A category name as configured; `Err` says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(format!(
                "{s:?} is not a category name (lower-case letters, digits and -, at most 32)"
            ))
        }
    }

    /// The standard category.
    pub fn standard() -> Self {
        Self(Arc::from(Self::STANDARD))
    }

    /// As configured and journalled.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FeeCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The category an MCC gives a merchant when neither its terminal range nor the
/// configuration's table says otherwise (ISO 18245 merchant category codes).
pub const DEFAULT_MCC_CATEGORIES: &[(&str, &str)] = &[
    ("8062", FeeCategory::PUBLIC_WELFARE), // hospitals
    ("8211", FeeCategory::PUBLIC_WELFARE), // elementary and secondary schools
    ("8220", FeeCategory::PUBLIC_WELFARE), // colleges, universities
    ("8398", FeeCategory::PUBLIC_WELFARE), // charitable and social service organisations
    ("9211", FeeCategory::PUBLIC_WELFARE), // court costs
    ("9222", FeeCategory::PUBLIC_WELFARE), // fines
    ("9311", FeeCategory::PUBLIC_WELFARE), // tax payments
    ("9399", FeeCategory::PUBLIC_WELFARE), // government services
    ("9402", FeeCategory::PUBLIC_WELFARE), // postal services, government only
    ("4111", FeeCategory::PREFERENTIAL),   // local and suburban commuter transport
    ("4900", FeeCategory::PREFERENTIAL),   // utilities: electric, gas, water, sanitary
    ("5411", FeeCategory::PREFERENTIAL),   // grocery stores, supermarkets
    ("5541", FeeCategory::PREFERENTIAL),   // service stations
    ("5542", FeeCategory::PREFERENTIAL),   // automated fuel dispensers
];

/// A merchant's category: `explicit` (its terminal range's), else its MCC's in `table` (the
/// configuration's), else in [`DEFAULT_MCC_CATEGORIES`], else `standard`.
pub fn category_of(
    explicit: Option<&FeeCategory>,
    mcc: &str,
    table: &BTreeMap<String, FeeCategory>,
) -> FeeCategory {
    if let Some(c) = explicit {
        return c.clone();
    }
    if let Some(c) = table.get(mcc) {
        return c.clone();
    }
    DEFAULT_MCC_CATEGORIES
        .iter()
        .find(|(m, _)| *m == mcc)
        .and_then(|(_, c)| FeeCategory::parse(c).ok())
        .unwrap_or_else(FeeCategory::standard)
}

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

/// One fee rule: a category's rate on a channel, perhaps only for one MCC or merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRule {
    /// The category it prices.
    pub category: FeeCategory,
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

impl FeeRule {
    /// Whether it prices a transaction of `channel` at a merchant of `category`.
    pub fn prices(
        &self,
        category: &FeeCategory,
        channel: Channel,
        mcc: &str,
        merchant: &str,
    ) -> bool {
        self.category == *category
            && self.channel == channel
            && self.mcc.as_deref().is_none_or(|m| m == mcc)
            && self.merchant.as_deref().is_none_or(|m| m == merchant)
    }

    /// How narrow it is: a merchant's own rule before an MCC's before the category's.
    fn narrowness(&self) -> u8 {
        u8::from(self.merchant.is_some()) * 2 + u8::from(self.mcc.is_some())
    }

    /// Whether `other` prices exactly the same transactions.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.category == other.category
            && self.channel == other.channel
            && self.mcc == other.mcc
            && self.merchant == other.merchant
    }

    /// What a transaction charged by it journals.
    pub fn applied(&self) -> AppliedFee {
        AppliedFee {
            category: self.category.clone(),
            channel: self.channel,
            rate_ppm: self.rate_ppm,
            cap_fen: self.cap_fen,
        }
    }
}

/// The rule a fee was charged by, as the journal keeps it with the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFee {
    /// The merchant's category.
    pub category: FeeCategory,
    /// The channel.
    pub channel: Channel,
    /// Rate in parts per million.
    pub rate_ppm: u64,
    /// Cap in fen.
    pub cap_fen: Option<u64>,
}

impl AppliedFee {
    /// The fee for `amount_fen`.
    pub fn fee(&self, amount_fen: u64) -> u64 {
        fee(amount_fen, self.rate_ppm, self.cap_fen)
    }

    /// For reports: `debit 0.38% cap 20.00`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.channel.as_str(), format_rate(self.rate_ppm));
        if let Some(c) = self.cap_fen {
            s.push_str(&format!(" cap {}.{:02}", c / 100, c % 100));
        }
        s
    }
}

/// Parts per million as a percentage with at least two decimals: `0.38%`, `0.0001%`, `0%`
/// as `0.00%`.
pub fn format_rate(ppm: u64) -> String {
    let mut frac = format!("{:04}", ppm % 10_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{}.{frac}%", ppm / 10_000)
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
    /// A schedule of `rules` (no two overlapping: the configuration checks).
    pub fn new(rules: Vec<FeeRule>) -> Self {
        Self { rules }
    }

    /// The rule that prices a transaction of `channel` at a merchant of `category`: the
    /// merchant's own, else its MCC's, else the category's.
    pub fn rule_for(
        &self,
        category: &FeeCategory,
        channel: Channel,
        mcc: &str,
        merchant: &str,
    ) -> Option<&FeeRule> {
        self.rules
            .iter()
            .filter(|r| r.prices(category, channel, mcc, merchant))
            .max_by_key(|r| r.narrowness())
    }

    /// The fee for a transaction and the rule it was charged by; `None` when no rule
    /// prices it (the configuration refuses a merchant whose category lacks one).
    pub fn fee_for(
        &self,
        category: &FeeCategory,
        channel: Channel,
        mcc: &str,
        merchant: &str,
        amount_fen: u64,
    ) -> Option<(u64, AppliedFee)> {
        self.rule_for(category, channel, mcc, merchant).map(|r| {
            let applied = r.applied();
            (applied.fee(amount_fen), applied)
        })
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

    fn rule(category: &str, channel: Channel, ppm: u64, mcc: Option<&str>) -> FeeRule {
        FeeRule {
            category: FeeCategory::parse(category).unwrap(),
            channel,
            rate_ppm: ppm,
            cap_fen: None,
            mcc: mcc.map(str::to_owned),
            merchant: None,
        }
    }

    #[test]
    fn the_narrowest_rule_of_the_category_wins() {
        let standard = FeeCategory::standard();
        let s = FeeSchedule::new(vec![
            rule("standard", Channel::Debit, 5_000, None),
            rule("standard", Channel::Debit, 1_000, Some("5812")),
            rule("preferential", Channel::Debit, 3_800, None),
        ]);
        let fee = |c: &FeeCategory, mcc| s.fee_for(c, Channel::Debit, mcc, "M", 100_000);
        assert_eq!(fee(&standard, "5812").map(|f| f.0), Some(100));
        assert_eq!(fee(&standard, "5999").map(|f| f.0), Some(500));
        let pref = FeeCategory::parse("preferential").unwrap();
        assert_eq!(fee(&pref, "5812").map(|f| f.0), Some(380));
        assert_eq!(
            s.fee_for(&standard, Channel::Qr, "5411", "M", 100_000),
            None
        );
    }

    #[test]
    fn a_merchant_s_category_comes_from_its_range_its_mcc_or_is_standard() {
        let mut table = BTreeMap::new();
        table.insert(
            "5812".to_owned(),
            FeeCategory::parse("restaurants").unwrap(),
        );
        let cat = |explicit: Option<&str>, mcc| {
            let e = explicit.map(|e| FeeCategory::parse(e).unwrap());
            category_of(e.as_ref(), mcc, &table).as_str().to_owned()
        };
        assert_eq!(cat(Some("standard"), "8062"), "standard");
        assert_eq!(cat(None, "8062"), "public-welfare");
        assert_eq!(cat(None, "5411"), "preferential");
        assert_eq!(cat(None, "5812"), "restaurants");
        assert_eq!(cat(None, "5999"), "standard");
        for (mcc, c) in DEFAULT_MCC_CATEGORIES {
            assert!(
                mcc.len() == 4 && mcc.bytes().all(|b| b.is_ascii_digit()),
                "{mcc}"
            );
            assert!(FeeCategory::parse(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn category_names_and_rates_read_back() {
        assert!(FeeCategory::parse("public-welfare").is_ok());
        assert!(FeeCategory::parse("Standard").is_err());
        assert!(FeeCategory::parse("").is_err());
        assert!(FeeCategory::parse(&"a".repeat(33)).is_err());
        assert_eq!(format_rate(3_800), "0.38%");
        assert_eq!(format_rate(0), "0.00%");
        assert_eq!(format_rate(1), "0.0001%");
        assert_eq!(format_rate(1_000_000), "100.00%");
        let applied = AppliedFee {
            category: FeeCategory::standard(),
            channel: Channel::Debit,
            rate_ppm: 5_000,
            cap_fen: Some(2_000),
        };
        assert_eq!(applied.describe(), "debit 0.50% cap 20.00");
        assert_eq!(applied.fee(500_000), 2_000);
    }
}
