//! The host commands, one module per family; [`run`] dispatches on the command code.

mod cvv;
mod diagnostics;
mod keys;
mod mac;
mod pins;
mod verify;

use super::reader::Reader;
use super::{ErrorCode, PayShield};

/// What a command answers after `00`: its fields.
pub(super) type Answer = Result<String, ErrorCode>;

/// Runs command `code` on `body`; also returns what the command left unread.
pub(super) fn run<'a>(hsm: &PayShield, code: [u8; 2], body: &'a [u8]) -> (Answer, &'a [u8]) {
    let r = &mut Reader::new(body);
    let answer = dispatch(hsm, code, r);
    (answer, r.rest())
}

fn dispatch(hsm: &PayShield, code: [u8; 2], r: &mut Reader<'_>) -> Answer {
    match &code {
        b"NC" => diagnostics::nc(hsm, r),
        b"A0" => keys::a0(hsm, r),
        b"A6" => keys::a6(hsm, r),
        b"A8" => keys::a8(hsm, r),
        b"BU" => keys::bu(hsm, r),
        b"CA" => pins::ca(hsm, r),
        b"CC" => pins::cc(hsm, r),
        b"JC" => pins::jc(hsm, r),
        b"JE" => pins::je(hsm, r),
        b"DA" => verify::da(hsm, r),
        b"EA" => verify::ea(hsm, r),
        b"DC" => verify::dc(hsm, r),
        b"EC" => verify::ec(hsm, r),
        b"DE" => verify::de(hsm, r),
        b"DG" => verify::dg(hsm, r),
        b"CW" => cvv::cw(hsm, r),
        b"CY" => cvv::cy(hsm, r),
        b"MA" => mac::ma(hsm, r),
        b"MC" => mac::mc(hsm, r),
        b"M6" => mac::m6(hsm, r),
        b"M8" => mac::m8(hsm, r),
        _ => Err(ErrorCode::CommandDisabled),
    }
}
