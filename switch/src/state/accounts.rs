//! On-us accounts in memory: balances and PIN tries as the journal has them, plus what
//! requests in flight hold.
//!
//! ```text
//!  sale ─▶ hold(amount): available − held ≥ amount? ─▶ held += amount
//!       ─▶ journal commit ─┬─ ok   ─▶ apply: balance −= amount, held −= amount
//!                          └─ fail ─▶ hold dropped: held −= amount (balance untouched)
//! ```
//!
//! A balance changes only after the commit that records the change; the hold is what keeps
//! two concurrent requests on one card from both spending the same money meanwhile. Wrong
//! PINs work the same way: a failure in flight counts against the limit before it is
//! journalled, so concurrent wrong PINs each count.

use std::sync::Arc;

use dashmap::DashMap;

use crate::journal::{AccountRecord, PinCheck, PinTries};
use crate::model::{AccountId, CardStatus, CardType};

/// An on-us card or wallet account, as the checks read it.
#[derive(Clone, Debug)]
pub struct Account {
    /// Masked PAN.
    pub masked_pan: String,
    /// Debit or credit.
    pub card_type: CardType,
    /// Status.
    pub status: CardStatus,
    /// Expiry YYMM.
    pub expiry: u32,
    /// How its PIN is verified, and the data to verify it with.
    pub pin: Arc<PinCheck>,
    /// Debit: available balance. Credit: amount used.
    pub balance_fen: i64,
    /// Credit limit (credit cards).
    pub credit_limit_fen: i64,
    /// Consecutive wrong PINs (journalled).
    pub pin_tries: u8,
    /// Held by open pre-authorisations (journalled), fen.
    pub preauth_fen: i64,
}

impl Account {
    /// From the journal.
    pub fn from_record(a: &AccountRecord) -> Self {
        Self {
            masked_pan: a.masked_pan.clone(),
            card_type: a.card_type,
            status: a.status,
            expiry: a.expiry,
            pin: Arc::new(a.pin.clone()),
            balance_fen: a.balance_fen,
            credit_limit_fen: a.credit_limit_fen,
            pin_tries: a.pin_tries,
            preauth_fen: a.preauth_fen,
        }
    }

    /// What the cardholder can spend, by the journal: the balance or what is left of the
    /// credit limit, less what pre-authorisations hold. SQL's is `sqlite::AVAILABLE`.
    pub fn available_fen(&self) -> i64 {
        let base = match self.card_type {
            CardType::Debit => self.balance_fen,
            CardType::Credit => self.credit_limit_fen - self.balance_fen,
        };
        base - self.preauth_fen
    }

    /// The balance change of taking `amount_fen` from it: a debit balance falls, a credit
    /// card's amount used rises.
    pub fn debit_delta(&self, amount_fen: i64) -> i64 {
        match self.card_type {
            CardType::Debit => -amount_fen,
            CardType::Credit => amount_fen,
        }
    }
}

struct Cell {
    account: Account,
    /// Held by requests in flight, fen.
    held_fen: i64,
    /// Wrong PINs in flight.
    failures_held: u8,
}

/// An account as a request sees it: the journal's state less what others hold.
#[derive(Clone, Debug)]
pub struct AccountView {
    /// The account.
    pub account: Account,
    /// Available now: what the journal says, less what requests in flight hold.
    pub spendable_fen: i64,
    /// Wrong PINs journalled and in flight.
    pub pin_tries: u8,
}

/// The accounts.
#[derive(Default)]
pub struct Accounts {
    map: DashMap<AccountId, Cell>,
    /// The journal is shared by several nodes: it decides (its commit's conditions settle
    /// races, and a request reads the account first when memory would decline), so memory
    /// holds nothing; it follows this node's commits only as a guess.
    shared: bool,
}

/// Funds held for a request until its commit is applied or it is dropped.
pub struct FundsHold<'a> {
    accounts: &'a Accounts,
    account: AccountId,
    amount_fen: i64,
}

/// A wrong PIN held against the limit until it is journalled or dropped.
pub struct PinFailureHold<'a> {
    accounts: &'a Accounts,
    account: AccountId,
    /// Whether it counts in memory (not with a shared journal, which counts it).
    counted: bool,
}

impl Accounts {
    /// Accounts for a journal several nodes share: see [`Accounts::refresh`].
    pub fn shared() -> Self {
        Self {
            map: DashMap::new(),
            shared: true,
        }
    }

    /// Puts an account (start-up, card file).
    pub fn insert(&self, id: AccountId, account: Account) {
        self.map.insert(
            id,
            Cell {
                account,
                held_fen: 0,
                failures_held: 0,
            },
        );
    }

    /// The account as the journal has it now (another node may have moved it); what
    /// requests in flight here hold stays held.
    pub fn refresh(&self, id: &AccountId, account: Account) {
        match self.map.get_mut(id) {
            Some(mut c) => c.account = account,
            None => self.insert(*id, account),
        }
    }

    /// Replaces an account's PIN data (card file at start-up).
    pub fn set_pin(&self, id: &AccountId, pin: PinCheck) {
        if let Some(mut c) = self.map.get_mut(id) {
            c.account.pin = Arc::new(pin);
        }
    }

    /// The account as a request sees it.
    pub fn view(&self, id: &AccountId) -> Option<AccountView> {
        self.map.get(id).map(|c| AccountView {
            account: c.account.clone(),
            spendable_fen: c.account.available_fen() - c.held_fen,
            pin_tries: c.account.pin_tries.saturating_add(c.failures_held),
        })
    }

    /// The account's balance by the journal (tests, reports).
    pub fn balance_fen(&self, id: &AccountId) -> Option<i64> {
        self.map.get(id).map(|c| c.account.balance_fen)
    }

    /// What open pre-authorisations hold, by the journal (tests, reports).
    pub fn preauth_fen(&self, id: &AccountId) -> Option<i64> {
        self.map.get(id).map(|c| c.account.preauth_fen)
    }

    /// Funds held by requests in flight.
    pub fn held_fen(&self, id: &AccountId) -> Option<i64> {
        self.map.get(id).map(|c| c.held_fen)
    }

    /// Holds `amount_fen` of what is spendable, or `None` when there is not that much.
    pub fn hold_funds(&self, id: AccountId, amount_fen: i64) -> Option<FundsHold<'_>> {
        let mut c = self.map.get_mut(&id)?;
        if c.account.available_fen() - c.held_fen < amount_fen {
            return None;
        }
        let amount_fen = if self.shared { 0 } else { amount_fen };
        c.held_fen += amount_fen;
        Some(FundsHold {
            accounts: self,
            account: id,
            amount_fen,
        })
    }

    /// Holds `amount_fen` whatever is spendable: for a move that must happen (a reversal
    /// taking a sale's money again), so that requests meanwhile see it gone.
    pub fn hold_regardless(&self, id: AccountId, amount_fen: i64) -> Option<FundsHold<'_>> {
        let mut c = self.map.get_mut(&id)?;
        let amount_fen = if self.shared { 0 } else { amount_fen };
        c.held_fen += amount_fen;
        Some(FundsHold {
            accounts: self,
            account: id,
            amount_fen,
        })
    }

    /// Counts a wrong PIN against the limit now; returns the hold and the tries with it.
    pub fn hold_pin_failure(&self, id: AccountId) -> Option<(PinFailureHold<'_>, u8)> {
        let mut c = self.map.get_mut(&id)?;
        c.failures_held = c.failures_held.saturating_add(1);
        let tries = c.account.pin_tries.saturating_add(c.failures_held);
        if self.shared {
            // The journal counts (its commit's condition keeps the count under the limit).
            c.failures_held -= 1;
            return Some((
                PinFailureHold {
                    accounts: self,
                    account: id,
                    counted: false,
                },
                tries,
            ));
        }
        Some((
            PinFailureHold {
                accounts: self,
                account: id,
                counted: true,
            },
            tries,
        ))
    }

    /// After the commit: the balance moves and the PIN tries change as journalled; the
    /// holds the request had are released with it.
    pub fn apply(
        &self,
        id: &AccountId,
        delta_fen: i64,
        hold_delta_fen: i64,
        pin: PinTries,
        funds: Option<FundsHold<'_>>,
        failure: Option<PinFailureHold<'_>>,
    ) {
        if let Some(mut c) = self.map.get_mut(id) {
            // With a shared journal too: memory then knows this node's own changes, and
            // what another node changed shows as a stale commit or a read.
            c.account.balance_fen += delta_fen;
            c.account.preauth_fen += hold_delta_fen;
            match pin {
                PinTries::Unchanged => {}
                PinTries::Failed => c.account.pin_tries = c.account.pin_tries.saturating_add(1),
                PinTries::Reset => c.account.pin_tries = 0,
            }
            if let Some(h) = &funds {
                c.held_fen -= h.amount_fen;
            }
            if failure.as_ref().is_some_and(|f| f.counted) {
                c.failures_held = c.failures_held.saturating_sub(1);
            }
        }
        // Released above, under the same lock as the change.
        std::mem::forget(funds);
        std::mem::forget(failure);
    }
}

impl Drop for FundsHold<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.accounts.map.get_mut(&self.account) {
            c.held_fen -= self.amount_fen;
        }
    }
}

impl Drop for PinFailureHold<'_> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        if let Some(mut c) = self.accounts.map.get_mut(&self.account) {
            c.failures_held = c.failures_held.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(balance: i64) -> (Accounts, AccountId) {
        let a = Accounts::default();
        let id = AccountId([1; 32]);
        a.insert(
            id,
            Account {
                masked_pan: "622202*********0017".into(),
                card_type: CardType::Debit,
                status: CardStatus::Active,
                expiry: 2912,
                pin: Arc::new(PinCheck::Ibm3624 {
                    offset: "0000".into(),
                }),
                balance_fen: balance,
                credit_limit_fen: 0,
                pin_tries: 0,
                preauth_fen: 0,
            },
        );
        (a, id)
    }

    #[test]
    fn holds_keep_two_requests_from_spending_the_same_money() {
        let (a, id) = accounts(5_000);
        let first = a.hold_funds(id, 4_000).unwrap();
        assert!(a.hold_funds(id, 4_000).is_none(), "only 1,000 left to hold");
        assert_eq!(a.balance_fen(&id), Some(5_000), "nothing moved yet");
        // Dropped (its commit failed): the money is spendable again, the balance untouched.
        drop(first);
        let second = a.hold_funds(id, 4_000).unwrap();
        a.apply(&id, -4_000, 0, PinTries::Reset, Some(second), None);
        assert_eq!(a.balance_fen(&id), Some(1_000));
        assert_eq!(a.held_fen(&id), Some(0));
    }

    #[test]
    fn wrong_pins_in_flight_count_until_journalled_or_dropped() {
        let (a, id) = accounts(0);
        let (h1, t1) = a.hold_pin_failure(id).unwrap();
        let (h2, t2) = a.hold_pin_failure(id).unwrap();
        assert_eq!((t1, t2), (1, 2));
        assert_eq!(a.view(&id).unwrap().pin_tries, 2);
        drop(h1);
        a.apply(&id, 0, 0, PinTries::Failed, None, Some(h2));
        let v = a.view(&id).unwrap();
        assert_eq!((v.pin_tries, v.account.pin_tries), (1, 1));
    }
}
