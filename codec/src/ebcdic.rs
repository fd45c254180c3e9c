//! EBCDIC (code page 037) for the printable ASCII range.

/// ASCII (0x20–0x7E) to EBCDIC 037; `None` for characters outside that range.
pub(crate) fn from_ascii(b: u8) -> Option<u8> {
    (0x40..=0xF9u8).find(|&e| to_ascii(e) == Some(b))
}

/// EBCDIC 037 to ASCII for the printable characters; `None` otherwise.
pub(crate) fn to_ascii(e: u8) -> Option<u8> {
    Some(match e {
        0x40 => b' ',
        0x4B => b'.',
        0x4C => b'<',
        0x4D => b'(',
        0x4E => b'+',
        0x4F => b'|',
        0x50 => b'&',
        0x5A => b'!',
        0x5B => b'$',
        0x5C => b'*',
        0x5D => b')',
        0x5E => b';',
        0x60 => b'-',
        0x61 => b'/',
        0x6B => b',',
        0x6C => b'%',
        0x6D => b'_',
        0x6E => b'>',
        0x6F => b'?',
        0x7A => b':',
        0x7B => b'#',
        0x7C => b'@',
        0x7D => b'\'',
        0x7E => b'=',
        0x7F => b'"',
        0x81..=0x89 => b'a' + (e - 0x81),
        0x91..=0x99 => b'j' + (e - 0x91),
        0xA2..=0xA9 => b's' + (e - 0xA2),
        0xC1..=0xC9 => b'A' + (e - 0xC1),
        0xD1..=0xD9 => b'J' + (e - 0xD1),
        0xE2..=0xE9 => b'S' + (e - 0xE2),
        0xF0..=0xF9 => b'0' + (e - 0xF0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_printable() {
        for b in b"HELLO world 0123456789 ./-=" {
            let e = from_ascii(*b).unwrap();
            assert_eq!(to_ascii(e), Some(*b));
        }
        assert_eq!(from_ascii(b'1'), Some(0xF1));
        assert_eq!(to_ascii(0xC1), Some(b'A'));
    }
}
