//! What each card has had approved in stand-in per day (China Standard Time), against the
//! issuer's per-card daily limit; approvals in flight hold their amount until journalled.

use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;

use crate::model::AccountId;

#[derive(Default)]
struct Day {
    used_fen: i64,
    held_fen: i64,
}

/// Stand-in totals per card and day: today and yesterday are kept.
#[derive(Default)]
pub struct StandInTotals {
    days: DashMap<(AccountId, i64), Day>,
    /// The latest day a hold was for: the days before the one before it are forgotten once,
    /// when it changes, not at each new card's first hold (an issuer's outage sends every
    /// one of its cards to stand-in).
    latest_day: AtomicI64,
}

/// A stand-in amount held until its approval is journalled or dropped.
pub struct StandInHold<'a> {
    totals: &'a StandInTotals,
    key: (AccountId, i64),
    amount_fen: i64,
}

impl StandInTotals {
    /// Sets a day's total (start-up, from the journal).
    pub fn restore(&self, account: AccountId, day: i64, fen: i64) {
        self.days.entry((account, day)).or_default().used_fen = fen;
    }

    /// Holds `amount_fen` of `account`'s stand-in on `day`, if its total stays within
    /// `limit_fen`.
    pub fn hold(
        &self,
        account: AccountId,
        day: i64,
        amount_fen: i64,
        limit_fen: i64,
    ) -> Option<StandInHold<'_>> {
        let key = (account, day);
        if self.a_new_day(day) {
            // Days before yesterday are of no use any more.
            self.days.retain(|(_, d), _| *d >= day - 1);
        }
        let mut d = self.days.entry(key).or_default();
        if d.used_fen + d.held_fen + amount_fen > limit_fen {
            return None;
        }
        d.held_fen += amount_fen;
        Some(StandInHold {
            totals: self,
            key,
            amount_fen,
        })
    }

    /// Whether `day` is later than any a hold was for until now.
    fn a_new_day(&self, day: i64) -> bool {
        self.latest_day.fetch_max(day, Ordering::Relaxed) < day
    }

    /// After the approval is journalled: it counts.
    pub fn apply(&self, hold: StandInHold<'_>) {
        if let Some(mut d) = self.days.get_mut(&hold.key) {
            d.used_fen += hold.amount_fen;
            d.held_fen -= hold.amount_fen;
        }
        std::mem::forget(hold);
    }

    /// What a card has had (journalled) on a day.
    pub fn used_fen(&self, account: &AccountId, day: i64) -> i64 {
        self.days.get(&(*account, day)).map_or(0, |d| d.used_fen)
    }
}

impl Drop for StandInHold<'_> {
    fn drop(&mut self) {
        if let Some(mut d) = self.totals.days.get_mut(&self.key) {
            d.held_fen -= self.amount_fen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_hold_leaves_the_total_as_it_was() {
        let t = StandInTotals::default();
        let card = AccountId([2; 32]);
        let h = t.hold(card, 100, 600, 1_000).unwrap();
        assert!(t.hold(card, 100, 600, 1_000).is_none());
        drop(h);
        assert_eq!(t.used_fen(&card, 100), 0);
        let h = t.hold(card, 100, 600, 1_000).unwrap();
        t.apply(h);
        assert_eq!(t.used_fen(&card, 100), 600);
        assert!(t.hold(card, 100, 600, 1_000).is_none());
        // Another day starts afresh; the day before yesterday is forgotten.
        assert!(t.hold(card, 102, 600, 1_000).is_some());
        assert_eq!(t.used_fen(&card, 100), 0);
    }

    #[test]
    fn old_days_are_forgotten_once_a_day_not_at_each_new_card() {
        let t = StandInTotals::default();
        for n in 0..100u8 {
            let card = AccountId([n; 32]);
            t.apply(t.hold(card, 99, 100, 1_000).unwrap());
            t.apply(t.hold(card, 100, 100, 1_000).unwrap());
        }
        assert!(!t.a_new_day(100) && !t.a_new_day(99));
        // Yesterday's totals stay while today's cards come.
        assert_eq!(t.used_fen(&AccountId([7; 32]), 99), 100);
        assert!(t.a_new_day(101));
        assert!(!t.a_new_day(101));
        t.apply(t.hold(AccountId([200; 32]), 102, 100, 1_000).unwrap());
        assert_eq!(t.used_fen(&AccountId([7; 32]), 100), 0);
        assert_eq!(t.days.len(), 1);
    }
}
