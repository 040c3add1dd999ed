//! READ (MS-SMB2 2.2.19, 2.2.20) and WRITE (2.2.21, 2.2.22).

use super::codec::{len16, Reader, Writer};
use super::create::FileId;
use super::header::HEADER_LEN;
use super::DecodeError;

/// SMB2_READFLAG_READ_UNBUFFERED (3.0.2+).
pub const READFLAG_UNBUFFERED: u8 = 0x01;
/// SMB2_WRITEFLAG_WRITE_THROUGH (2.1+).
pub const WRITEFLAG_WRITE_THROUGH: u32 = 0x0000_0001;
/// SMB2_WRITEFLAG_WRITE_UNBUFFERED (3.0.2+).
pub const WRITEFLAG_UNBUFFERED: u32 = 0x0000_0002;

/// Encodes a READ request (MS-SMB2 2.2.19).
pub fn encode_read(w: &mut Writer, file_id: FileId, offset: u64, length: u32, flags: u8) {
    w.u16(49);
    w.u8(0x50); // Padding: where we like the data (header + 16)
    w.u8(flags);
    w.u32(length);
    w.u64(offset);
    w.bytes(&file_id.0);
    w.u32(0); // MinimumCount
    w.u32(0); // Channel
    w.u32(0); // RemainingBytes
    w.u16(0); // ReadChannelInfoOffset
    w.u16(0); // ReadChannelInfoLength
    w.u8(0); // Buffer: one byte
}

/// Decodes a READ response (MS-SMB2 2.2.20): the (offset, length) of the data
/// inside `msg`, so the caller can slice its `Bytes` without copying.
pub fn decode_read(msg: &[u8]) -> Result<(usize, usize), DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "read: header")?;
    r.structure_size(17, "read: structure size")?;
    let off = usize::from(r.u8("read: data offset")?);
    r.skip(1, "read: reserved")?;
    let len = r.u32("read: data length")? as usize;
    r.skip(8, "read: remaining + flags")?;
    if len == 0 {
        return Ok((msg.len(), 0));
    }
    r.slice_at(off, len, "read: data")?;
    Ok((off, len))
}

/// Bytes of a READ response needed by [`read_data_span`]: the header and
/// the fixed part.
pub const READ_RESPONSE_FIXED: usize = HEADER_LEN + 16;

/// Where the data of a READ response of `frame_len` bytes lies, read from its
/// first [`READ_RESPONSE_FIXED`] bytes alone (the data has not arrived yet):
/// `(DataOffset, DataLength)`, when the data is not empty, starts after the
/// fixed part and ends exactly at the end of the frame. Anything else is
/// `None`, and the caller reads the whole message and decodes it with
/// [`decode_read`] instead.
pub fn read_data_span(head: &[u8], frame_len: usize) -> Option<(usize, usize)> {
    let mut r = Reader::at(head, HEADER_LEN, "read: header").ok()?;
    r.structure_size(17, "read: structure size").ok()?;
    let off = usize::from(r.u8("read: data offset").ok()?);
    r.skip(1, "read: reserved").ok()?;
    let len = r.u32("read: data length").ok()? as usize;
    r.skip(8, "read: remaining + flags").ok()?;
    (len > 0 && off >= READ_RESPONSE_FIXED && off.checked_add(len) == Some(frame_len))
        .then_some((off, len))
}

/// Encodes a READ response (tests).
pub fn encode_read_response(w: &mut Writer, data: &[u8]) {
    w.u16(17);
    w.u8(0x50);
    w.u8(0);
    w.u32(u32::try_from(data.len()).unwrap_or(u32::MAX));
    w.u32(0);
    w.u32(0);
    w.bytes(data);
}

/// Fixed part of the WRITE request; the data follows at header + 48.
pub const WRITE_FIXED_LEN: usize = 48;

/// Encodes a WRITE request (MS-SMB2 2.2.21) without its data: the data is
/// appended by the caller right after (DataOffset = 64 + 48 = 0x70).
pub fn encode_write(w: &mut Writer, file_id: FileId, offset: u64, length: u32, flags: u32) {
    w.u16(49);
    w.u16(len16(HEADER_LEN + WRITE_FIXED_LEN));
    w.u32(length);
    w.u64(offset);
    w.bytes(&file_id.0);
    w.u32(0); // Channel
    w.u32(0); // RemainingBytes
    w.u16(0); // WriteChannelInfoOffset
    w.u16(0); // WriteChannelInfoLength
    w.u32(flags);
}

/// Decodes a WRITE response (MS-SMB2 2.2.22): Count.
pub fn decode_write(msg: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "write: header")?;
    r.structure_size(17, "write: structure size")?;
    r.skip(2, "write: reserved")?;
    let count = r.u32("write: count")?;
    r.skip(8, "write: remaining + channel info")?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    #[test]
    fn read_response() {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        encode_read_response(&mut w, b"hello");
        let b = w.into_vec();
        let (o, l) = decode_read(&b).unwrap();
        assert_eq!(&b[o..o + l], b"hello");
        for n in 0..b.len() {
            assert!(decode_read(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn read_data_span_from_the_fixed_part() {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        encode_read_response(&mut w, &[7u8; 1000]);
        let b = w.into_vec();
        let head = &b[..READ_RESPONSE_FIXED];
        assert_eq!(read_data_span(head, b.len()), Some((0x50, 1000)));
        // Padding after the data, a frame shorter than the data, a short head.
        assert_eq!(read_data_span(head, b.len() + 1), None);
        assert_eq!(read_data_span(head, b.len() - 1), None);
        for n in 0..READ_RESPONSE_FIXED {
            assert_eq!(read_data_span(&b[..n], b.len()), None, "prefix {n}");
        }
        // Data offset inside the fixed part, and empty data.
        let mut bad = b.clone();
        bad[HEADER_LEN + 2] = 0x40;
        assert_eq!(read_data_span(&bad[..READ_RESPONSE_FIXED], b.len()), None);
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        encode_read_response(&mut w, &[]);
        let e = w.into_vec();
        assert_eq!(read_data_span(&e, e.len()), None);
        // A huge DataLength does not overflow.
        bad = b.clone();
        bad[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            read_data_span(&bad[..READ_RESPONSE_FIXED], usize::MAX),
            None
        );
    }

    #[test]
    fn write_response() {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        w.u16(17);
        w.u16(0);
        w.u32(4096);
        w.u32(0);
        w.u32(0);
        let b = w.into_vec();
        assert_eq!(decode_write(&b).unwrap(), 4096);
        for n in 0..b.len() {
            assert!(decode_write(&b[..n]).is_err());
        }
    }

    #[test]
    fn write_request_layout() {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        encode_write(&mut w, FileId([1; 16]), 7, 3, 0);
        assert_eq!(w.len(), HEADER_LEN + WRITE_FIXED_LEN);
    }
}
