//! The payment operations as payShield host commands.
//!
//! | operation | command(s) |
//! | --- | --- |
//! | UnionPay POS MAC | `M6`/`M8`, ISO 9797-1 algorithm 1, no padding, over the 16 hex characters of the XOR of the message's blocks; the MAC is the first 8 hex characters |
//! | X9.9 / X9.19 / ISO 9797-1 alg. 1 pad 2 | `M6`/`M8` algorithm 1 or 3, padding 1 or 2 |
//! | sign-on working keys | `A0` mode 1 for the TPK (`002`, `U`, exported `X` under the TMK) and the TAK (`003`, single length), `BU` for their 4-byte check values |
//! | IBM 3624 PIN check | `DA`, maximum PIN length = check length = the offset's length (every digit counts) |
//! | Visa PVV check | `DC` (the PVV's account must be the block's: wallets, whose blocks are formed with a payment code, use IBM 3624 offsets on a network HSM) |
//! | PIN to an issuer | `CA`, format 01 both sides |
//! | check values | `BU` |

use hsm_sim::primitives::mac::xor_fold;
use hsm_sim::{EncryptedPinBlock, MacAlgorithm};

use super::RemoteHsm;
use crate::hsm::{
    HsmError, KeyRef, LmkKey, LmkKeyType, PaymentHsm, PinReference, PinVerify, WorkingKeys,
};
use hsm_sim::primitives::pvv::CheckLength;

fn lmk(k: &KeyRef) -> Result<&LmkKey, HsmError> {
    k.lmk().ok_or(HsmError::Unsupported)
}

/// The 12 account digits of a PAN: the right-most 12 before the check digit.
fn account(pan: &str) -> Result<&str, HsmError> {
    let body = pan.get(..pan.len().saturating_sub(1)).unwrap_or_default();
    if body.len() < 12 || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HsmError::Local(hsm_sim::Error::BadPan));
    }
    Ok(&body[body.len() - 12..])
}

/// `M6`/`M8` fields for `alg` over `data`: mode, input format, MAC size (`'0'`: 8 hex,
/// `'1'`: 16 hex), algorithm, padding, key type, key, length, message.
fn mac_command(
    code: &str,
    size: char,
    key: &LmkKey,
    alg: MacAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, HsmError> {
    let (algorithm, padding, message) = match alg {
        MacAlgorithm::UnionpayEcb => ('1', '0', hex::encode_upper(xor_fold(data)).into_bytes()),
        MacAlgorithm::X99 => ('1', '1', data.to_vec()),
        MacAlgorithm::X919 => ('3', '1', data.to_vec()),
        MacAlgorithm::Iso9797Alg1Pad2 => ('1', '2', data.to_vec()),
        // The payShield host commands here are DES-family: SM4 and AES keys stay local.
        MacAlgorithm::AesCmac | MacAlgorithm::UnionpaySm4 | MacAlgorithm::Sm4CbcMac => {
            return Err(HsmError::Unsupported);
        }
    };
    let len =
        u16::try_from(message.len()).map_err(|_| HsmError::Local(hsm_sim::Error::DataLength))?;
    let mut c = format!(
        "{code}00{size}{algorithm}{padding}{}{}{len:04X}",
        key.kind().code(),
        key.cryptogram()
    )
    .into_bytes();
    c.extend_from_slice(&message);
    Ok(c)
}

/// Field 64 from an `M7` MAC (16 hex characters).
fn field64(alg: MacAlgorithm, mac_hex: &[u8]) -> Result<[u8; 8], HsmError> {
    let mut out = [0u8; 8];
    match alg {
        // The UnionPay MAC is the first 8 hex characters themselves.
        MacAlgorithm::UnionpayEcb => {
            out.copy_from_slice(mac_hex.get(..8).ok_or(HsmError::Malformed)?)
        }
        _ => {
            let b = hex::decode(mac_hex.get(..16).ok_or(HsmError::Malformed)?)
                .map_err(|_| HsmError::Malformed)?;
            out.copy_from_slice(&b);
        }
    }
    Ok(out)
}

fn check4(kcv16: &[u8]) -> Result<[u8; 4], HsmError> {
    let b =
        hex::decode(kcv16.get(..8).ok_or(HsmError::Malformed)?).map_err(|_| HsmError::Malformed)?;
    let mut out = [0u8; 4];
    out.copy_from_slice(&b);
    Ok(out)
}

/// A verification's answer: `00` true, `01` false, anything else an error.
fn verdict(r: &[u8]) -> Result<bool, HsmError> {
    match r.get(2..4) {
        Some(b"00") => Ok(true),
        Some(b"01") => Ok(false),
        Some(code) => Err(HsmError::Refused(
            String::from_utf8_lossy(code).into_owned(),
        )),
        None => Err(HsmError::Malformed),
    }
}

/// A PIN check's answer: as [`verdict`], and a PIN block the HSM cannot read (`20`) or a
/// PIN of another length (`24`) is a wrong PIN.
fn pin_verdict(r: &[u8]) -> Result<bool, HsmError> {
    match r.get(2..4) {
        Some(b"20" | b"24") => Ok(false),
        _ => verdict(r),
    }
}

impl RemoteHsm {
    /// `A0` mode 1 for one key of `kind` exported under `tmk`, then its `BU` check value.
    async fn generate_under(
        &self,
        kind: LmkKeyType,
        single: bool,
        tmk: &LmkKey,
    ) -> Result<(KeyRef, Vec<u8>, [u8; 4]), HsmError> {
        let (scheme, export, width) = if single {
            ('Z', 'Z', 16)
        } else {
            ('U', 'X', 33)
        };
        let r = self
            .ok(format!("A01{}{scheme};1{}{export}", kind.code(), tmk.cryptogram()).as_bytes())
            .await?;
        let under_lmk = std::str::from_utf8(r.get(..width).ok_or(HsmError::Malformed)?)
            .map_err(|_| HsmError::Malformed)?;
        let rest = &r[width..];
        let rest = rest
            .strip_prefix(b"X")
            .or_else(|| rest.strip_prefix(b"Z"))
            .unwrap_or(rest);
        let hex_len = if single { 16 } else { 32 };
        let under_tmk = hex::decode(rest.get(..hex_len).ok_or(HsmError::Malformed)?)
            .map_err(|_| HsmError::Malformed)?;
        let key = LmkKey::new(kind, under_lmk).ok_or(HsmError::Malformed)?;
        let kcv = self.bu(&key).await?;
        Ok((KeyRef::Lmk(key), under_tmk, check4(&kcv)?))
    }

    async fn bu(&self, key: &LmkKey) -> Result<Vec<u8>, HsmError> {
        let flag = match key.key_len() {
            8 => '0',
            16 => '1',
            _ => '2',
        };
        self.ok(format!("BU{}{flag}{}", key.kind().bu_code(), key.cryptogram()).as_bytes())
            .await
    }
}

impl PaymentHsm for RemoteHsm {
    async fn generate_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
    ) -> Result<[u8; 8], HsmError> {
        let r = self
            .ok(&mac_command("M6", '1', lmk(key)?, alg, data)?)
            .await?;
        field64(alg, &r)
    }

    async fn verify_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool, HsmError> {
        // The MAC as M8 takes it: 8 hex characters (4 bytes) or 16 (8 bytes). A UnionPay
        // MAC is 8 upper-case hex characters on the wire: anything else (a forged field 64)
        // is a wrong MAC, as the in-process HSM says, not a command the HSM refuses.
        let (size, given) = match alg {
            MacAlgorithm::UnionpayEcb
                if mac.len() == 8 && mac.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) =>
            {
                ('0', mac.to_vec())
            }
            MacAlgorithm::UnionpayEcb => return Ok(false),
            _ if mac.len() == 8 => ('1', hex::encode_upper(mac).into_bytes()),
            _ if mac.len() >= 4 => ('0', hex::encode_upper(&mac[..4]).into_bytes()),
            _ => return Ok(false),
        };
        let mut c = mac_command("M8", size, lmk(key)?, alg, data)?;
        c.extend_from_slice(&given);
        let r = self.call(&c).await?;
        verdict(&r)
    }

    async fn working_keys(&self, tmk: &KeyRef) -> Result<WorkingKeys, HsmError> {
        let tmk = lmk(tmk)?;
        let (tpk, tpk_under_tmk, tpk_check) =
            self.generate_under(LmkKeyType::Tpk, false, tmk).await?;
        let (tak, tak_under_tmk, tak_check) =
            self.generate_under(LmkKeyType::Tak, true, tmk).await?;
        Ok(WorkingKeys {
            tpk,
            tak,
            tpk_under_tmk,
            tpk_check,
            tak_under_tmk,
            tak_check,
        })
    }

    async fn verify_pin(&self, v: PinVerify<'_>) -> Result<bool, HsmError> {
        let (tpk, pvk) = (lmk(v.tpk)?, lmk(v.pvk)?);
        let acct = account(v.block_pan)?;
        let block = hex::encode_upper(v.block.as_bytes());
        match v.reference {
            PinReference::Ibm3624 {
                params,
                validation,
                offset,
            } => {
                let digits = hsm_sim::primitives::pvv::offset_digits(offset)
                    .ok_or(HsmError::Local(hsm_sim::Error::DataLength))?;
                let (max, check) = match params.check {
                    CheckLength::WholePin => (digits.len(), digits.len()),
                    CheckLength::Digits(n) => (12, usize::from(n)),
                };
                let table = std::str::from_utf8(&params.decimalisation)
                    .map_err(|_| HsmError::Local(hsm_sim::Error::DataLength))?;
                let data = validation
                    .get(..12)
                    .ok_or(HsmError::Local(hsm_sim::Error::DataLength))?;
                let c = format!(
                    "DA{}{}{max:02}{block}01{check:02}{acct}{table}{data}{digits:F<12}",
                    tpk.cryptogram(),
                    pvk.cryptogram()
                );
                pin_verdict(&self.call(c.as_bytes()).await?)
            }
            PinReference::VisaPvv {
                pvki,
                pvv,
                account: pvv_pan,
            } => {
                let pvv_acct = account(pvv_pan)?;
                if pvv_acct == acct {
                    let c = format!(
                        "DC{}{}{block}01{acct}{pvki}{pvv}",
                        tpk.cryptogram(),
                        pvk.cryptogram()
                    );
                    return pin_verdict(&self.call(c.as_bytes()).await?);
                }
                // The block's account and the PVV's differ (a wallet paid by a code): a
                // payShield binds a PIN under its LMK to the account it was read with, so no
                // command pair checks it; the configuration refuses this (wallets on a
                // network HSM use IBM 3624 offsets, whose validation data is separate).
                Err(HsmError::Unsupported)
            }
        }
    }

    async fn translate_pin(
        &self,
        tpk: &KeyRef,
        zpk: &KeyRef,
        block: &EncryptedPinBlock,
        pan: &str,
    ) -> Result<EncryptedPinBlock, HsmError> {
        let c = format!(
            "CA{}{}12{}0101{}",
            lmk(tpk)?.cryptogram(),
            lmk(zpk)?.cryptogram(),
            hex::encode_upper(block.as_bytes()),
            account(pan)?
        );
        let r = self.ok(c.as_bytes()).await?;
        let b = hex::decode(r.get(2..18).ok_or(HsmError::Malformed)?)
            .map_err(|_| HsmError::Malformed)?;
        Ok(EncryptedPinBlock::new(&b)?)
    }

    async fn check_value(&self, key: &KeyRef) -> Result<Vec<u8>, HsmError> {
        let r = self.bu(lmk(key)?).await?;
        hex::decode(r.get(..16).ok_or(HsmError::Malformed)?).map_err(|_| HsmError::Malformed)
    }
}
