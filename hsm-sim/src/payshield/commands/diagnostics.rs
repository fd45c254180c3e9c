//! `NC`: diagnostics.

use super::Answer;
use crate::payshield::reader::Reader;
use crate::payshield::{FIRMWARE, PayShield};

/// `NC` → `ND` `00` LMK check value `16H` firmware `9A`.
pub(super) fn nc(hsm: &PayShield, r: &mut Reader<'_>) -> Answer {
    r.finish()?;
    Ok(format!(
        "{}{FIRMWARE}",
        hex::encode_upper(hsm.lmk().check_value())
    ))
}
