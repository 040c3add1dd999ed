//! QUERY_DIRECTORY (MS-SMB2 2.2.33, 2.2.34) and FileIdBothDirectoryInformation
//! entries (MS-FSCC 2.4.17).

use super::codec::{from_utf16le, len16, utf16le, Reader, Writer};
use super::create::FileId;
use super::header::HEADER_LEN;
use super::DecodeError;

/// FileIdBothDirectoryInformation.
pub const FILE_ID_BOTH_DIRECTORY_INFORMATION: u8 = 0x25;
/// SMB2_RESTART_SCANS.
pub const RESTART_SCANS: u8 = 0x01;

/// Encodes a QUERY_DIRECTORY request (MS-SMB2 2.2.33).
pub fn encode_query_directory(
    w: &mut Writer,
    file_id: FileId,
    flags: u8,
    pattern: &str,
    output_len: u32,
) {
    let name = utf16le(pattern);
    w.u16(33);
    w.u8(FILE_ID_BOTH_DIRECTORY_INFORMATION);
    w.u8(flags);
    w.u32(0); // FileIndex
    w.bytes(&file_id.0);
    w.u16(len16(w.len() + 8));
    w.u16(len16(name.len()));
    w.u32(output_len);
    w.bytes(&name);
}

/// Decodes a QUERY_DIRECTORY (or QUERY_INFO: same layout, MS-SMB2 2.2.38)
/// response: the output buffer.
pub fn decode_output_buffer(msg: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "output buffer: header")?;
    r.structure_size(9, "output buffer: structure size")?;
    let off = r.u16("output buffer: offset")?;
    let len = r.u32("output buffer: length")?;
    r.opt_slice_at(off.into(), len as usize, "output buffer")
}

/// Encodes a QUERY_DIRECTORY/QUERY_INFO response (tests).
pub fn encode_output_buffer(w: &mut Writer, data: &[u8]) {
    w.u16(9);
    w.u16(len16(w.len() + 6));
    w.u32(u32::try_from(data.len()).unwrap_or(u32::MAX));
    w.bytes(data);
}

/// One FileIdBothDirectoryInformation entry (MS-FSCC 2.4.17).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// FileAttributes.
    pub file_attributes: u32,
    /// FileId (the 8-byte file reference number).
    pub file_id: u64,
    /// FileName (raw: `.` and `..` included; see [`validate_name`]).
    pub name: String,
}

const ENTRY_FIXED: usize = 104;

/// Decodes all entries of an output buffer. Each NextEntryOffset must advance,
/// be 8-byte aligned and stay inside the buffer.
pub fn decode_directory_entries(buf: &[u8]) -> Result<Vec<DirectoryEntry>, DecodeError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    if buf.is_empty() {
        return Ok(out);
    }
    loop {
        let elem = buf
            .get(start..)
            .ok_or_else(|| DecodeError::new("dir entry: offset"))?;
        let mut r = Reader::new(elem);
        let next = r.u32("dir entry: next")? as usize;
        r.skip(4, "dir entry: file index")?;
        let creation_time = r.u64("dir entry: times")?;
        let last_access_time = r.u64("dir entry: times")?;
        let last_write_time = r.u64("dir entry: times")?;
        let change_time = r.u64("dir entry: times")?;
        let end_of_file = r.u64("dir entry: size")?;
        let allocation_size = r.u64("dir entry: allocation")?;
        let file_attributes = r.u32("dir entry: attributes")?;
        let name_len = r.u32("dir entry: name length")? as usize;
        r.skip(4 + 1 + 1 + 24 + 2, "dir entry: ea/short name")?;
        let file_id = r.u64("dir entry: file id")?;
        let name_bytes = r.take(name_len, "dir entry: name")?;
        if next != 0 && next < r.pos() {
            return Err(DecodeError::new("dir entry: next overlaps"));
        }
        let name = from_utf16le(name_bytes, "dir entry: name utf-16")?;
        out.push(DirectoryEntry {
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            end_of_file,
            allocation_size,
            file_attributes,
            file_id,
            name,
        });
        if next == 0 {
            return Ok(out);
        }
        if next % 8 != 0 {
            return Err(DecodeError::new("dir entry: next alignment"));
        }
        start = start
            .checked_add(next)
            .ok_or_else(|| DecodeError::new("dir entry: next"))?;
    }
}

/// Encodes entries (tests, fake servers).
pub fn encode_directory_entries(w: &mut Writer, entries: &[DirectoryEntry]) {
    for (i, e) in entries.iter().enumerate() {
        let start = w.len();
        let name = utf16le(&e.name);
        w.u32(0);
        w.u32(0);
        w.u64(e.creation_time);
        w.u64(e.last_access_time);
        w.u64(e.last_write_time);
        w.u64(e.change_time);
        w.u64(e.end_of_file);
        w.u64(e.allocation_size);
        w.u32(e.file_attributes);
        w.u32(u32::try_from(name.len()).unwrap_or(u32::MAX));
        w.zeros(4 + 1 + 1 + 24 + 2);
        w.u64(e.file_id);
        debug_assert_eq!(w.len() - start, ENTRY_FIXED);
        w.bytes(&name);
        if i + 1 < entries.len() {
            w.align(8);
            let next = u32::try_from(w.len() - start).unwrap_or(u32::MAX);
            w.patch_u32(start, next);
        }
    }
}

/// Checks a name returned by the server: not empty, no `/`, `\`, NUL or `:`,
/// and not `.`/`..` (callers skip those before validating).
pub fn validate_name(name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(DecodeError::new("dir entry: reserved name"));
    }
    if name.chars().any(|c| matches!(c, '/' | '\\' | '\0')) {
        return Err(DecodeError::new(
            "dir entry: name contains a separator or NUL",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> DirectoryEntry {
        DirectoryEntry {
            creation_time: 1,
            last_access_time: 2,
            last_write_time: 3,
            change_time: 4,
            end_of_file: 5,
            allocation_size: 6,
            file_attributes: 0x20,
            file_id: 7,
            name: name.into(),
        }
    }

    #[test]
    fn entries_round_trip_and_truncation() {
        let es = vec![entry("."), entry(".."), entry("naïve ✓.txt"), entry("b")];
        let mut w = Writer::new();
        encode_directory_entries(&mut w, &es);
        let b = w.into_vec();
        assert_eq!(decode_directory_entries(&b).unwrap(), es);
        for n in 1..b.len() {
            assert!(decode_directory_entries(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("ok.txt").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn output_buffer() {
        let mut w = Writer::new();
        crate::wire::header::Header::default().encode(&mut w);
        encode_output_buffer(&mut w, &[1, 2, 3]);
        let b = w.into_vec();
        assert_eq!(decode_output_buffer(&b).unwrap(), &[1, 2, 3]);
        for n in 0..b.len() {
            assert!(decode_output_buffer(&b[..n]).is_err());
        }
    }
}
