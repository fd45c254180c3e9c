//! The in-process software HSM behind [`PaymentHsm`]: every call completes at once.

use std::sync::Arc;

use hsm_sim::{EncryptedPinBlock, Hsm, KeyAlgorithm, MacAlgorithm, PinFormat, SealedKey};

use super::{HsmError, KeyRef, PaymentHsm, PinReference, PinVerify, WorkingKeys};

/// `hsm_sim::Hsm` as a [`PaymentHsm`]; it takes sealed keys only.
#[derive(Clone)]
pub struct LocalHsm(Arc<Hsm>);

impl LocalHsm {
    /// Wraps `hsm`.
    pub fn new(hsm: Arc<Hsm>) -> Self {
        Self(hsm)
    }
}

fn sealed(k: &KeyRef) -> Result<&SealedKey, HsmError> {
    k.sealed().ok_or(HsmError::Unsupported)
}

/// The PIN block format a PIN key's blocks are in: UnionPay's SM4 block under an SM4 key,
/// ISO 9564 format 0 under a TDES one.
fn format_of(key: &SealedKey) -> Result<PinFormat, HsmError> {
    Ok(match key.algorithm()? {
        KeyAlgorithm::Sm4 => PinFormat::Sm4,
        _ => PinFormat::Iso0,
    })
}

impl PaymentHsm for LocalHsm {
    async fn generate_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> Result<[u8; 8], HsmError> {
        Ok(self.0.generate_mac(sealed(key)?, alg, data)?.field64())
    }

    async fn verify_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool, HsmError> {
        Ok(self.0.verify_mac(sealed(key)?, alg, data, mac)?)
    }

    async fn working_keys(&self, tmk: &KeyRef) -> Result<WorkingKeys, HsmError> {
        let tmk = sealed(tmk)?;
        // An SM4 terminal gets SM4 working keys; a TDES one a double TPK and a single TAK.
        let (tpk, tak) = match tmk.algorithm()? {
            KeyAlgorithm::Sm4 => (KeyAlgorithm::Sm4, KeyAlgorithm::Sm4),
            _ => (KeyAlgorithm::Tdes2, KeyAlgorithm::Des),
        };
        let k = self.0.generate_terminal_keys(tmk, tpk, tak)?;
        Ok(WorkingKeys {
            tpk: k.tpk.into(),
            tak: k.tak.into(),
            tpk_under_tmk: k.tpk_under_tmk,
            tpk_check: k.tpk_check,
            tak_under_tmk: k.tak_under_tmk,
            tak_check: k.tak_check,
        })
    }

    async fn verify_pin(&self, v: PinVerify<'_>) -> Result<bool, HsmError> {
        let (tpk, pvk) = (sealed(v.tpk)?, sealed(v.pvk)?);
        Ok(match v.reference {
            PinReference::Ibm3624 {
                params,
                validation,
                offset,
            } => self.0.verify_pin_ibm3624(
                tpk,
                v.block,
                format_of(tpk)?,
                v.block_pan,
                pvk,
                params,
                validation,
                offset,
            )?,
            PinReference::VisaPvv { pvki, pvv, account } => self.0.verify_pin_pvv_for(
                tpk,
                v.block,
                format_of(tpk)?,
                v.block_pan,
                pvk,
                pvki,
                pvv,
                account,
            )?,
        })
    }

    async fn translate_pin(
        &self,
        tpk: &KeyRef,
        zpk: &KeyRef,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> Result<EncryptedPinBlock, HsmError> {
        let (tpk, zpk) = (sealed(tpk)?, sealed(zpk)?);
        Ok(self
            .0
            .translate_pin(tpk, format_of(tpk)?, zpk, format_of(zpk)?, block, pan)?)
    }

    async fn check_value(&self, key: &KeyRef) -> Result<Vec<u8>, HsmError> {
        Ok(self.0.check_value(sealed(key)?)?)
    }
}
