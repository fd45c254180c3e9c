//! Step 6, the PIN of an on-us card or wallet: verified in the HSM against the account's
//! PIN data, every digit (IBM 3624 offset as long as the PIN; Visa PVV, four digits, only
//! on legacy ranges).
//!
//! ```text
//!  52 absent ─▶ required? 55 : not checked
//!  tries (journalled + wrong PINs in flight) ≥ limit ─▶ 75
//!  HSM: TPK block ─▶ PIN ─▶ offset/PVV ─┬─ right ─▶ tries back to 0 (with the request, if
//!                                       │           still under the limit when journalled)
//!                                       └─ wrong ─▶ one more try held now, journalled with
//!                                                   the request: 55, or 75 at the limit
//! ```

use hsm_sim::{EncryptedPinBlock, Ibm3624};

use super::card::Instrument;
use super::decision::Decision;
use super::effects::{Effects, FundsMove};
use super::request::Request;
use super::rules::Rules;
use super::{Switch, hsm_failure};
use crate::hsm::{KeyRef, PinReference, PinVerify};
use crate::journal::{PinCheck, PinTries};
use crate::model::ResponseCode;
use crate::state::{AccountView, Session};

/// The on-us issuer's PIN verification key and IBM 3624 parameters.
#[derive(Clone, Debug)]
pub struct PinVerification {
    /// The PVK (sealed, or under a network HSM's LMK).
    pub pvk: KeyRef,
    /// PVK index (Visa PVV).
    pub pvki: u8,
    /// IBM 3624 decimalisation table; the check covers the whole PIN.
    pub ibm3624: Ibm3624,
}

/// Verifies field 52; without it, `required` decides. `Ok` is what the PIN check does to
/// the account's tries when the request is journalled; a wrong PIN is a decision of its
/// own (55 or 75, one more try).
pub async fn verify<'s>(
    sw: &'s Switch,
    rules: &Rules,
    req: &Request<'_>,
    inst: &Instrument,
    view: &AccountView,
    session: &Session,
    required: bool,
) -> Result<PinTries, Decision<'s>> {
    let Some(block) = req.msg.bytes(52) else {
        return if required {
            Err(inst.decline(ResponseCode::WRONG_PIN))
        } else {
            Ok(PinTries::Unchanged)
        };
    };
    let block =
        EncryptedPinBlock::new(block).map_err(|_| inst.decline(ResponseCode::FORMAT_ERROR))?;
    let keys = rules
        .pin_verification
        .as_ref()
        .ok_or_else(|| inst.decline(ResponseCode::NO_ISSUER))?;
    let limit = rules.acquirer.pin_tries;
    if view.pin_tries >= limit {
        return Err(inst.decline(ResponseCode::PIN_TRIES_EXCEEDED));
    }
    let validation;
    let reference = match &*view.account.pin {
        PinCheck::Ibm3624 { offset } => {
            validation = hsm_sim::primitives::pvv::validation_from_pan(&inst.pvv_account)
                .map_err(|e| inst.decline(hsm_failure(e.into())))?;
            PinReference::Ibm3624 {
                params: &keys.ibm3624,
                validation: &validation,
                offset,
            }
        }
        PinCheck::VisaPvv { pvv, pvki } => PinReference::VisaPvv {
            pvki: *pvki,
            pvv,
            account: &inst.pvv_account,
        },
    };
    let verified = sw
        .hsm
        .verify_pin(PinVerify {
            tpk: &session.tpk,
            block: &block,
            block_pan: &inst.block_pan,
            pvk: &keys.pvk,
            reference,
        })
        .await;
    let right = match verified {
        Ok(ok) => ok,
        Err(e) if e.is_bad_pin_block() => false,
        Err(e) if e.is_failure_limit() => {
            tracing::warn!("HSM PIN failure limit reached: verification refused");
            return Err(inst.decline(ResponseCode::SYSTEM_ERROR));
        }
        Err(e) => return Err(inst.decline(hsm_failure(e))),
    };
    if right {
        // Journalled with the request, on the condition that the card did not reach the
        // limit meanwhile (another node's wrong PINs).
        return Ok(PinTries::Reset);
    }
    // Counted now, so concurrent wrong PINs each count.
    let Some((hold, tries)) = sw.state.accounts.hold_pin_failure(inst.account()) else {
        return Err(inst.decline(ResponseCode::INVALID_CARD));
    };
    let code = if tries >= limit {
        ResponseCode::PIN_TRIES_EXCEEDED
    } else {
        ResponseCode::WRONG_PIN
    };
    let mut d = inst.decline(code);
    d.effects = Effects {
        funds: Some(FundsMove::pin_only(
            inst.account(),
            PinTries::Failed,
            Some(hold),
        )),
        ..Effects::default()
    };
    Err(d)
}
