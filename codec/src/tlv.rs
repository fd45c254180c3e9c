//! BER-TLV (EMV field 55) reading without copies.
//!
//! ```text
//! 9F26 08 95BBE372271DDA7C   tag (1-3 bytes) | length (1-3 bytes) | value
//! ```

/// One TLV element borrowed from a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag as an integer (`0x9F26`).
    pub tag: u32,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Iterator over the top-level elements of BER-TLV data; stops (yielding an error once) at
/// malformed data.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    offset: usize,
    failed: bool,
}

/// BER-TLV data ended inside an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed TLV at byte {offset}")]
pub struct TlvError {
    /// Offset in the field where the element started.
    pub offset: usize,
}

impl<'a> TlvIter<'a> {
    /// Iterates the elements of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            rest: data,
            offset: 0,
            failed: false,
        }
    }

    fn element(rest: &'a [u8]) -> Option<(Tlv<'a>, &'a [u8])> {
        let (&first, mut r) = rest.split_first()?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes while bit 8 is set; at most 3 bytes of tag.
            for _ in 0..2 {
                let (&b, r2) = r.split_first()?;
                r = r2;
                tag = (tag << 8) | u32::from(b);
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let (&l0, r2) = r.split_first()?;
        r = r2;
        let len = if l0 & 0x80 == 0 {
            usize::from(l0)
        } else {
            let n = usize::from(l0 & 0x7F);
            if n == 0 || n > 2 || r.len() < n {
                return None;
            }
            let v = r[..n]
                .iter()
                .fold(0usize, |v, b| (v << 8) | usize::from(*b));
            r = &r[n..];
            v
        };
        if r.len() < len {
            return None;
        }
        let (value, rest) = r.split_at(len);
        Some((Tlv { tag, value }, rest))
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match Self::element(self.rest) {
            Some((tlv, rest)) => {
                self.offset += self.rest.len() - rest.len();
                self.rest = rest;
                Some(Ok(tlv))
            }
            None => {
                self.failed = true;
                Some(Err(TlvError {
                    offset: self.offset,
                }))
            }
        }
    }
}

/// Finds the first element with `tag` among the top-level elements of `data`.
pub fn find(data: &[u8], tag: u32) -> Option<&[u8]> {
    TlvIter::new(data)
        .map_while(Result::ok)
        .find(|t| t.tag == tag)
        .map(|t| t.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tags() {
        let data = [
            0x9F, 0x26, 0x02, 0xAB, 0xCD, 0x95, 0x01, 0x00, 0x82, 0x02, 0x7C, 0x00,
        ];
        assert_eq!(find(&data, 0x9F26), Some(&[0xAB, 0xCD][..]));
        assert_eq!(find(&data, 0x95), Some(&[0x00][..]));
        assert_eq!(find(&data, 0x82), Some(&[0x7C, 0x00][..]));
        assert_eq!(find(&data, 0x9F27), None);
    }

    #[test]
    fn truncated_is_an_error_not_a_panic() {
        let data = [0x95, 0x01, 0x00, 0x9F, 0x26, 0x08, 0xAB];
        let v: Vec<_> = TlvIter::new(&data).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], Err(TlvError { offset: 3 }));
    }
}
