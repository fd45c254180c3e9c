//! Masking of card data for anything shown to people: logs, `Debug`, `Display`.
//!
//! | field | shown as |
//! | --- | --- |
//! | 2 (PAN) | first 6 and last 4 digits: `622202*********0017` |
//! | 35, 36 (track 2, 3) | the account part as a PAN, the rest as `*` |
//! | 45 (track 1), 52 (PIN block), 55 (chip data) | `[N bytes]` |

/// Masks a PAN: the first six and last four digits stay, the rest become `*`. Numbers of
/// ten digits or fewer are masked whole but for the last four.
pub fn pan(pan: &str) -> String {
    let n = pan.chars().count();
    let keep_head = if n > 10 { 6 } else { 0 };
    // One allocation: the mask is never longer than the PAN.
    let mut masked = String::with_capacity(pan.len());
    masked.extend(
        pan.chars()
            .enumerate()
            .map(|(i, c)| if i < keep_head || i + 4 >= n { c } else { '*' }),
    );
    masked
}

/// Masks track data: the account number before the separator (`=` or `D`) as [`pan`], every
/// character after it as `*`.
pub fn track(t: &str) -> String {
    match t.find(['=', 'D']) {
        Some(i) => {
            let mut s = pan(&t[..i]);
            s.push_str(&t[i..i + 1]);
            s.extend(std::iter::repeat_n('*', t.len() - i - 1));
            s
        }
        None => "*".repeat(t.len()),
    }
}

/// Whether a field carries card data that must be masked.
pub fn is_sensitive(n: u8) -> bool {
    matches!(n, 2 | 35 | 36 | 45 | 52 | 55)
}

pub(crate) fn masked(n: u8, canonical: impl FnOnce() -> String, wire_len: usize) -> String {
    match n {
        2 => pan(&canonical()),
        35 | 36 => track(&canonical()),
        45 | 52 | 55 => format!("[{wire_len} bytes]"),
        _ => canonical(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_pan_and_track() {
        assert_eq!(pan("6222021000000000017"), "622202*********0017");
        assert_eq!(pan("6224242900000113"), "622424******0113");
        assert_eq!(pan("1234567890"), "******7890");
        assert_eq!(
            track("6224242900000113D28062013949031013"),
            "622424******0113D*****************"
        );
        assert_eq!(track("1234567890123456=1234"), "123456******3456=****");
    }
}
