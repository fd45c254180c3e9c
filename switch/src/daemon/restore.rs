//! Start-up: memory from the journal's snapshot, in one place, and the card file loaded
//! into the journal.
//!
//! ```text
//!  journal snapshot ─▶ accounts, sessions, stand-in totals (today and yesterday)
//!  card file        ─▶ accounts the journal does not hold yet (journalled, then in memory);
//!                      PIN data the configuration gives differently replaces the journal's
//! ```
//!
//! Transactions are not read: duplicates, originals and batch totals are looked up in the
//! journal when a request needs them, so a restart takes the same time however many
//! transactions the open batches hold.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use hsm_sim::{ClearPin, Hsm};

use crate::config::{CardEntry, Config};
use crate::journal::{AccountRecord, Journal, Op, PinCheck, Snapshot};
use crate::model::{AccountId, PinMethod};
use crate::pipeline::pin::PinVerification;
use crate::state::{Account, Session, State};

/// Memory from `snapshot`, with the card file loaded (what it adds is journalled first).
pub async fn state(
    config: &Config,
    hsm: &Hsm,
    pin: Option<&PinVerification>,
    journal: &Journal,
    snapshot: Snapshot,
) -> Result<State> {
    let state = State::new(config.limits.cached_transactions, journal.is_shared());
    for a in &snapshot.accounts {
        state.accounts.insert(a.account, Account::from_record(a));
    }
    let journalled: std::collections::HashMap<AccountId, &AccountRecord> =
        snapshot.accounts.iter().map(|a| (a.account, a)).collect();
    // The card file: accounts the journal does not hold yet are added; PIN data that the
    // configuration gives differently (say a legacy PVV now an IBM 3624 offset) replaces
    // the journal's.
    let mut ops = Vec::new();
    let mut added = Vec::new();
    let mut replaced = Vec::new();
    for entry in config.card_file() {
        let id = AccountId(hsm.keyed_digest("pan", entry.number.as_bytes()));
        let Some(keys) = pin else {
            bail!("{}: no [issuer] PVK", entry.key)
        };
        let check = pin_check_of(hsm, keys, &entry)?;
        if let Some(held) = journalled.get(&id) {
            let _ = disagreements(&entry, held);
        }
        match state.accounts.view(&id) {
            Some(held) if *held.account.pin != check => {
                tracing::info!(account = %entry.key, method = check.method().as_str(), "PIN verification data replaced from the configuration");
                ops.push(Op::SetPinData {
                    account: id,
                    pin: check.clone(),
                });
                replaced.push((id, check));
            }
            Some(_) => {}
            None => {
                let record = AccountRecord {
                    account: id,
                    masked_pan: codec::mask::pan(entry.number),
                    card_type: entry.card_type,
                    status: entry.status,
                    expiry: entry.expiry.parse().unwrap_or(0),
                    pin: check,
                    balance_fen: entry.balance_fen,
                    credit_limit_fen: entry.credit_limit_fen,
                    pin_tries: 0,
                    preauth_fen: 0,
                };
                ops.push(Op::PutAccount(Box::new(record.clone())));
                added.push(record);
            }
        }
    }
    if !ops.is_empty() {
        journal
            .commit(ops)
            .await
            .map_err(|e| anyhow!("journal: {e}"))?;
        if !added.is_empty() {
            tracing::info!(cards = added.len(), "card file loaded into the journal");
        }
    }
    for a in &added {
        // With a shared journal another node may have loaded the card first and moved its
        // balance since: the journal's account is the account.
        let record = if journal.is_shared() {
            let id = a.account;
            journal
                .read(move |b| b.account(&id))
                .await
                .map_err(|e| anyhow!("journal: {e}"))?
                .unwrap_or_else(|| a.clone())
        } else {
            a.clone()
        };
        state
            .accounts
            .insert(record.account, Account::from_record(&record));
    }
    for (id, check) in replaced {
        state.accounts.set_pin(&id, check);
    }
    for s in snapshot.sessions {
        state.sessions.insert(
            s.tid,
            Arc::new(Session {
                session_id: s.session_id,
                mid: s.mid,
                tpk: s.tpk,
                tak: s.tak,
                batch: s.batch,
            }),
        );
    }
    // What each card has had in stand-in today, so a restart does not reset the limit.
    for (account, day, fen) in snapshot.stand_in {
        state.stand_in.restore(account, day, fen);
    }
    Ok(state)
}

/// The card file seeds an empty journal; once the journal holds a card, the journal's
/// status, type, expiry and limit are the card's. Where the configuration says otherwise
/// (a card set to `stolen` there, say), a warning names the card (masked) and the field, so
/// nobody believes a change applied that did not. (The balance is left out: it moves with
/// every sale.)
/// Returns what it warned of, one line per field.
pub(crate) fn disagreements(entry: &CardEntry<'_>, held: &AccountRecord) -> Vec<String> {
    let mut found = Vec::new();
    let expiry = entry.expiry.parse().unwrap_or(0);
    let differences = [
        (
            "status",
            entry.status != held.status,
            entry.status.as_str().to_owned(),
            held.status.as_str().to_owned(),
        ),
        (
            "card_type",
            entry.card_type != held.card_type,
            entry.card_type.as_str().to_owned(),
            held.card_type.as_str().to_owned(),
        ),
        (
            "expiry",
            expiry != held.expiry,
            entry.expiry.to_owned(),
            format!("{:04}", held.expiry),
        ),
        (
            "credit_limit_fen",
            entry.credit_limit_fen != held.credit_limit_fen,
            entry.credit_limit_fen.to_string(),
            held.credit_limit_fen.to_string(),
        ),
    ];
    for (field, differs, configured, journalled) in differences {
        if differs {
            tracing::warn!(
                card = %held.masked_pan,
                key = %entry.key,
                field,
                configured = %configured,
                journal = %journalled,
                "the card file disagrees with the journal, which holds the card: the configuration only seeds an empty journal"
            );
            found.push(format!(
                "{} ({}): {field} is {configured} in the configuration, {journalled} in the journal (the journal's stands)",
                entry.key, held.masked_pan
            ));
        }
    }
    found
}

/// The PIN data of a card file entry: given, or (test data) derived from its clear PIN
/// under the PVK.
fn pin_check_of(hsm: &Hsm, keys: &PinVerification, e: &CardEntry<'_>) -> Result<PinCheck> {
    let key = &e.key;
    Ok(match (e.method, e.pin, e.offset, e.pvv) {
        (PinMethod::Ibm3624, _, Some(offset), _) => PinCheck::Ibm3624 {
            offset: offset.to_owned(),
        },
        (PinMethod::VisaPvv, _, _, Some(pvv)) => PinCheck::VisaPvv {
            pvv: pvv.to_owned(),
            pvki: keys.pvki,
        },
        (method, Some(pin), _, _) => {
            let pin = ClearPin::new(pin).map_err(|e| anyhow!("{key}.pin: {e}"))?;
            let pvk = keys
                .pvk
                .sealed()
                .ok_or_else(|| anyhow!("{key}.pin: a clear PIN needs the in-process HSM"))?;
            match method {
                PinMethod::Ibm3624 => {
                    let validation = hsm_sim::primitives::pvv::validation_from_pan(e.number)
                        .map_err(|err| anyhow!("{key}: {err}"))?;
                    PinCheck::Ibm3624 {
                        offset: hsm
                            .generate_ibm3624_offset(pvk, &keys.ibm3624, &validation, &pin)
                            .map_err(|err| anyhow!("{key}: {err}"))?,
                    }
                }
                PinMethod::VisaPvv => PinCheck::VisaPvv {
                    pvv: hsm
                        .generate_pvv(pvk, e.number, keys.pvki, &pin)
                        .map_err(|err| anyhow!("{key}: {err}"))?,
                    pvki: keys.pvki,
                },
            }
        }
        _ => bail!("{key}: no PIN data fitting its pin_method"),
    })
}
