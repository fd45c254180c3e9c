//! Reading the journal again where memory may be behind it: when several nodes share the
//! journal, another node's sign-on, settlement, sale or void is in the journal and not in
//! this node's memory; and any commit that finds a read gone stale ([`Stale`]) is decided
//! again on fresh reads.
//!
//! ```text
//!  MAC fails, or not signed on (shared) ─▶ the session from the journal ─▶ authenticate again
//!  sign-on (shared)                      ─▶ the session from the journal (its open batch)
//!  on-us card (shared)                   ─▶ the account from the journal, every request
//!  commit: Stale(session | account | original) ─▶ that, from the journal ─▶ decide again, once
//! ```

use std::sync::Arc;

use super::Switch;
use super::request::Request;
use super::rules::Rules;
use super::terminal::{self, Authenticated, Refused};
use crate::journal::Stale;
use crate::model::{AccountId, ResponseCode, Tid};
use crate::security_log::Event;
use crate::state::{Account, Session};

impl Switch {
    /// Whether several nodes share the journal.
    pub(crate) fn shared(&self) -> bool {
        self.journal.is_shared()
    }

    /// Steps 2–3: the terminal, its merchant, its session and MAC. With a shared journal, a
    /// MAC that does not verify (or no session) under what memory holds is checked again
    /// under the journal's session: the terminal may have signed on at another node.
    pub(crate) async fn authenticate<'s>(
        &'s self,
        rules: &'s Rules,
        req: &Request<'_>,
    ) -> Result<Authenticated<'s>, Refused> {
        if let Some(tid) = req.tid
            && self.state.disabled_terminals.contains_key(&tid)
            && rules.terminals.lookup(req.tid_text).is_some()
        {
            return Err(Refused {
                decline: ResponseCode::NOT_PERMITTED_TERMINAL.into(),
                event: Event::TerminalDisabled,
            });
        }
        let first = terminal::authenticate(rules, &self.state.sessions, &self.hsm, req).await;
        match first {
            Err(r)
                if self.shared()
                    && matches!(r.event, Event::BadMac | Event::NotSignedOn)
                    && let Some(tid) = req.tid
                    && self.reload_session(tid).await =>
            {
                terminal::authenticate(rules, &self.state.sessions, &self.hsm, req).await
            }
            other => other,
        }
    }

    /// Whether an operator disabled `tid` (at any node): the journal's list, kept here.
    pub(crate) async fn disabled_in_journal(&self, tid: Tid) -> bool {
        match self.journal.read(|b| b.disabled_terminals()).await {
            Ok(list) => {
                let disabled = list.contains(&tid);
                if disabled {
                    self.state.disabled_terminals.insert(tid, ());
                }
                disabled
            }
            Err(_) => false,
        }
    }

    /// The terminal's session as the journal has it now, into memory; whether it differs
    /// from what memory had.
    pub(crate) async fn reload_session(&self, tid: Tid) -> bool {
        let found = match self.journal.read(move |b| b.session(&tid)).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a session from the journal");
                return false;
            }
        };
        let Some(r) = found else {
            return self.state.sessions.remove(&tid).is_some();
        };
        let changed = self
            .state
            .sessions
            .get(&tid)
            .is_none_or(|s| s.session_id != r.session_id || s.batch != r.batch);
        if changed {
            self.state.sessions.insert(
                tid,
                Arc::new(Session {
                    session_id: r.session_id,
                    mid: r.mid,
                    tpk: r.tpk,
                    tak: r.tak,
                    batch: r.batch,
                }),
            );
        }
        changed
    }

    /// With a shared journal: whether memory's account could lead to a wrong answer for
    /// this request (a decline on stale funds or tries, a stale balance), so that it is
    /// read from the journal first.
    pub(crate) fn account_may_mislead(
        &self,
        kind: crate::model::TxnKind,
        req: &Request<'_>,
        id: AccountId,
    ) -> bool {
        let Some(view) = self.state.accounts.view(&id) else {
            return true;
        };
        kind == crate::model::TxnKind::Balance
            || view.pin_tries > 0
            || view.account.status.decline().is_some()
            || (kind.moves_money() && view.spendable_fen < req.amount())
    }

    /// An account as the journal has it now, into memory (what requests in flight hold
    /// stays held).
    pub(crate) async fn reload_account(&self, id: AccountId) {
        match self.journal.read(move |b| b.account(&id)).await {
            Ok(Some(a)) => self.state.accounts.refresh(&id, Account::from_record(&a)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read an account from the journal"),
        }
    }

    /// What a stale commit found changed, read again.
    pub(crate) async fn refresh(&self, what: Stale) {
        match what {
            Stale::Session(tid) => {
                self.reload_session(tid).await;
            }
            Stale::Account { id, .. } => self.reload_account(id).await,
            Stale::Original(rrn) => self.state.originals.forget(&rrn),
            Stale::ReversedFirst | Stale::ArmedTakenOver | Stale::Other => {}
        }
    }
}
