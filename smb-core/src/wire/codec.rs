//! Bounds-checked little-endian [`Reader`], back-patching [`Writer`] and UTF-16LE helpers.
//!
//! A [`Reader`] spans a whole SMB2 message (header included), so every
//! header-relative (Offset, Length) pair is checked in one place:
//! [`Reader::slice_at`].

use super::DecodeError;

/// A cursor over a byte slice; every read is bounds-checked and returns
/// [`DecodeError`] instead of panicking.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A reader over `buf` positioned at `pos` (fails when `pos` is past the end).
    pub fn at(buf: &'a [u8], pos: usize, what: &'static str) -> Result<Self, DecodeError> {
        if pos > buf.len() {
            return Err(DecodeError::new(what));
        }
        Ok(Self { buf, pos })
    }

    /// The whole underlying buffer.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Current position from the start of the buffer.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the current position.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| DecodeError::new(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| DecodeError::new(what))?;
        self.pos = end;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(|_| ())
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Checks a StructureSize field.
    pub fn structure_size(&mut self, expected: u16, what: &'static str) -> Result<(), DecodeError> {
        if self.u16(what)? != expected {
            return Err(DecodeError::new(what));
        }
        Ok(())
    }

    /// The `len` bytes at absolute `offset` of the buffer (an Offset/Length pair
    /// relative to the start of the message).
    pub fn slice_at(
        &self,
        offset: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| DecodeError::new(what))?;
        self.buf
            .get(offset..end)
            .ok_or_else(|| DecodeError::new(what))
    }

    /// Like [`Reader::slice_at`], but an (Offset, Length) of length zero is
    /// accepted with any offset (servers send offset 0 for empty buffers).
    pub fn opt_slice_at(
        &self,
        offset: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len == 0 {
            return Ok(&[]);
        }
        self.slice_at(offset, len, what)
    }
}

/// A growable little-endian writer with back-patching of offsets and lengths.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with capacity.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Pads with zeros to a multiple of `n`.
    pub fn align(&mut self, n: usize) {
        let rem = self.buf.len() % n;
        if rem != 0 {
            self.zeros(n - rem);
        }
    }

    /// Overwrites a `u16` at `pos` (which must already be written).
    pub fn patch_u16(&mut self, pos: usize, v: u16) {
        self.buf[pos..pos + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Overwrites a `u32` at `pos` (which must already be written).
    pub fn patch_u32(&mut self, pos: usize, v: u32) {
        self.buf[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Forgets what was written, keeping the capacity (a scratch writer
    /// reused across messages allocates once).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The written bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the writer.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Encodes a string as UTF-16LE.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Decodes UTF-16LE (odd lengths and unpaired surrogates are errors).
pub fn from_utf16le(b: &[u8], what: &'static str) -> Result<String, DecodeError> {
    if b.len() % 2 != 0 {
        return Err(DecodeError::new(what));
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| DecodeError::new(what))
}

/// A u16 length that must fit (names and buffers we build are far smaller).
pub(crate) fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A u32 length that must fit.
pub(crate) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_bounds() {
        let b = [1u8, 2, 3, 4, 5];
        let mut r = Reader::new(&b);
        assert_eq!(r.u16("a").unwrap(), 0x0201);
        assert_eq!(r.u16("b").unwrap(), 0x0403);
        assert!(r.u16("c").is_err());
        assert_eq!(r.u8("d").unwrap(), 5);
        assert!(r.u8("e").is_err());
        assert!(r.slice_at(usize::MAX, 2, "f").is_err());
        assert!(r.slice_at(4, 2, "g").is_err());
        assert_eq!(r.opt_slice_at(99, 0, "h").unwrap(), &[] as &[u8]);
    }

    #[test]
    fn utf16_round_trip() {
        let s = "héllo wörld ✓ 𝄞";
        assert_eq!(from_utf16le(&utf16le(s), "x").unwrap(), s);
        assert!(from_utf16le(&[0x41], "x").is_err());
        assert!(from_utf16le(&[0x00, 0xd8], "x").is_err());
    }
}
