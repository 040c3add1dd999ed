//! The tiny subset of ASN.1 DER (ITU-T X.690 sections 8.1 and 10) that
//! SPNEGO tokens (RFC 4178, MS-SPNG 2.2) need: single-byte tags and definite
//! lengths of up to four length octets.
//!
//! The reader never panics and never allocates: every length is checked
//! against the bytes that remain before it is used.

use super::AuthError;

/// A cursor over DER-encoded bytes.
#[derive(Debug, Clone)]
pub(crate) struct DerReader<'a> {
    buf: &'a [u8],
}

impl<'a> DerReader<'a> {
    /// Reads `buf` from its first byte.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// True when every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads one element and returns its tag and contents.
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8]), AuthError> {
        let (&tag, rest) = self
            .buf
            .split_first()
            .ok_or(AuthError::Malformed("DER: missing tag"))?;
        // High-tag-number form (low five bits all set) never occurs in SPNEGO.
        if tag & 0x1f == 0x1f {
            return Err(AuthError::Malformed("DER: multi-byte tag"));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or(AuthError::Malformed("DER: missing length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err(AuthError::Malformed("DER: indefinite length"));
            }
            if n > 4 {
                return Err(AuthError::Malformed("DER: length too long"));
            }
            let octets = rest
                .get(..n)
                .ok_or(AuthError::Malformed("DER: truncated length"))?;
            rest = rest.get(n..).unwrap_or_default();
            octets
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let contents = rest
            .get(..len)
            .ok_or(AuthError::Malformed("DER: truncated contents"))?;
        self.buf = rest.get(len..).unwrap_or_default();
        Ok((tag, contents))
    }

    /// Reads one element that must carry `tag`; returns its contents.
    pub(crate) fn read(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], AuthError> {
        match self.read_any()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(AuthError::Malformed(what)),
        }
    }

    /// Reads the element with `tag` if it is next; otherwise reads nothing.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, AuthError> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(|(_, c)| Some(c))
        } else {
            Ok(None)
        }
    }
}

/// Appends a DER element with `tag` and `contents` to `out`.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        // Fits: checked just above.
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let octets = &bytes[skip..];
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(octets);
    }
    out.extend_from_slice(contents);
}

/// Returns a DER element with `tag` and `contents`.
pub(crate) fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    write_tlv(&mut out, tag, contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000] {
            let contents = vec![0xab; len];
            let enc = tlv(0x04, &contents);
            let mut r = DerReader::new(&enc);
            assert_eq!(r.read(0x04, "octet string").unwrap(), &contents[..]);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn long_form_encodings() {
        assert_eq!(tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn rejects_bad_elements() {
        for bad in [
            &[][..],
            &[0x04],
            &[0x04, 0x01],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x04, 0x85, 0, 0, 0, 0, 1],
            &[0x04, 0x82, 0x01],
            &[0x1f, 0x01, 0x00],
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(DerReader::new(bad).read_any().is_err(), "{bad:02x?}");
        }
    }
}
