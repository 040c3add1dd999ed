//! CREATE (MS-SMB2 2.2.13, 2.2.14) with create contexts (2.2.13.2), CLOSE
//! (2.2.15, 2.2.16) and FLUSH (2.2.17).

use super::codec::{len16, len32, Reader, Writer};
use super::header::HEADER_LEN;
use super::DecodeError;

/// A 16-byte SMB2_FILEID (persistent + volatile).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId(pub [u8; 16]);

impl FileId {
    /// The FileId of related compound operations: all bits set (MS-SMB2 3.2.4.1.4).
    pub const RELATED: Self = Self([0xFF; 16]);
}

/// Access mask bits (MS-SMB2 2.2.13.1).
pub mod access {
    /// FILE_READ_DATA.
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    /// FILE_WRITE_DATA.
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    /// FILE_APPEND_DATA.
    pub const FILE_APPEND_DATA: u32 = 0x0000_0004;
    /// FILE_READ_EA.
    pub const FILE_READ_EA: u32 = 0x0000_0008;
    /// FILE_WRITE_EA.
    pub const FILE_WRITE_EA: u32 = 0x0000_0010;
    /// FILE_LIST_DIRECTORY (directories).
    pub const FILE_LIST_DIRECTORY: u32 = 0x0000_0001;
    /// FILE_READ_ATTRIBUTES.
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    /// FILE_WRITE_ATTRIBUTES.
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    /// DELETE.
    pub const DELETE: u32 = 0x0001_0000;
    /// READ_CONTROL.
    pub const READ_CONTROL: u32 = 0x0002_0000;
    /// SYNCHRONIZE.
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
}

/// ShareAccess bits.
pub mod share {
    /// FILE_SHARE_READ.
    pub const READ: u32 = 0x1;
    /// FILE_SHARE_WRITE.
    pub const WRITE: u32 = 0x2;
    /// FILE_SHARE_DELETE.
    pub const DELETE: u32 = 0x4;
    /// All three.
    pub const ALL: u32 = 0x7;
}

/// CreateDisposition values.
pub mod disposition {
    /// FILE_SUPERSEDE.
    pub const SUPERSEDE: u32 = 0;
    /// FILE_OPEN.
    pub const OPEN: u32 = 1;
    /// FILE_CREATE.
    pub const CREATE: u32 = 2;
    /// FILE_OPEN_IF.
    pub const OPEN_IF: u32 = 3;
    /// FILE_OVERWRITE.
    pub const OVERWRITE: u32 = 4;
    /// FILE_OVERWRITE_IF.
    pub const OVERWRITE_IF: u32 = 5;
}

/// CreateOptions bits.
pub mod options {
    /// FILE_DIRECTORY_FILE.
    pub const DIRECTORY_FILE: u32 = 0x0000_0001;
    /// FILE_WRITE_THROUGH.
    pub const WRITE_THROUGH: u32 = 0x0000_0002;
    /// FILE_SEQUENTIAL_ONLY.
    pub const SEQUENTIAL_ONLY: u32 = 0x0000_0004;
    /// FILE_NO_INTERMEDIATE_BUFFERING.
    pub const NO_INTERMEDIATE_BUFFERING: u32 = 0x0000_0008;
    /// FILE_NON_DIRECTORY_FILE.
    pub const NON_DIRECTORY_FILE: u32 = 0x0000_0040;
    /// FILE_DELETE_ON_CLOSE.
    pub const DELETE_ON_CLOSE: u32 = 0x0000_1000;
    /// FILE_OPEN_REPARSE_POINT.
    pub const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
}

/// The CREATE request (MS-SMB2 2.2.13). No create contexts, no oplock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest<'a> {
    /// DesiredAccess.
    pub desired_access: u32,
    /// FileAttributes.
    pub file_attributes: u32,
    /// ShareAccess.
    pub share_access: u32,
    /// CreateDisposition.
    pub disposition: u32,
    /// CreateOptions.
    pub options: u32,
    /// The name relative to the share root, UTF-16LE, `\` separated, no leading `\`.
    pub name: &'a [u8],
}

impl CreateRequest<'_> {
    /// Encodes the body after the header in `w`.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(57);
        w.u8(0); // SecurityFlags
        w.u8(0); // RequestedOplockLevel: none
        w.u32(2); // ImpersonationLevel: Impersonation
        w.u64(0); // SmbCreateFlags
        w.u64(0); // Reserved
        w.u32(self.desired_access);
        w.u32(self.file_attributes);
        w.u32(self.share_access);
        w.u32(self.disposition);
        w.u32(self.options);
        w.u16(len16(w.len() + 12)); // NameOffset: right after the fixed part
        w.u16(len16(self.name.len()));
        w.u32(0); // CreateContextsOffset
        w.u32(0); // CreateContextsLength
        w.bytes(self.name);
        if self.name.is_empty() {
            // The Buffer is at least one byte (StructureSize 57).
            w.u8(0);
        }
    }
}

/// One create context (MS-SMB2 2.2.13.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateContext<'a> {
    /// Name (e.g. `MxAc`, `QFid`).
    pub name: &'a [u8],
    /// Data.
    pub data: &'a [u8],
}

/// Decodes a chain of create contexts occupying `buf`. Each Next must advance,
/// be 8-byte aligned and stay inside `buf`.
pub fn decode_create_contexts(buf: &[u8]) -> Result<Vec<CreateContext<'_>>, DecodeError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        let elem = buf
            .get(start..)
            .ok_or_else(|| DecodeError::new("create context: offset"))?;
        let mut r = Reader::new(elem);
        let next = r.u32("create context: next")? as usize;
        let name_off = r.u16("create context: name offset")?;
        let name_len = r.u16("create context: name length")?;
        r.skip(2, "create context: reserved")?;
        let data_off = r.u16("create context: data offset")?;
        let data_len = r.u32("create context: data length")?;
        let end = if next == 0 { elem.len() } else { next };
        let elem = elem
            .get(..end)
            .ok_or_else(|| DecodeError::new("create context: next"))?;
        let r = Reader::new(elem);
        let name = r.slice_at(name_off.into(), name_len.into(), "create context: name")?;
        let data = r.opt_slice_at(data_off.into(), data_len as usize, "create context: data")?;
        out.push(CreateContext { name, data });
        if next == 0 {
            return Ok(out);
        }
        if next % 8 != 0 || next < 16 {
            return Err(DecodeError::new("create context: next alignment"));
        }
        start += next;
        if out.len() > 64 {
            return Err(DecodeError::new("create context: too many"));
        }
    }
}

/// Encodes a create context chain (tests and fake servers).
pub fn encode_create_contexts(w: &mut Writer, contexts: &[CreateContext<'_>]) {
    for (i, c) in contexts.iter().enumerate() {
        let start = w.len();
        w.u32(0);
        w.u16(16);
        w.u16(len16(c.name.len()));
        w.u16(0);
        let doff = w.len();
        w.u16(0);
        w.u32(len32(c.data.len()));
        w.bytes(c.name);
        w.align(8);
        let rel = w.len() - start;
        w.patch_u16(doff, len16(rel));
        w.bytes(c.data);
        if i + 1 < contexts.len() {
            w.align(8);
            let next = w.len() - start;
            w.patch_u32(start, len32(next));
        }
    }
}

/// The file metadata common to CREATE and CLOSE responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileAttributesInfo {
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndofFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: u32,
}

impl FileAttributesInfo {
    fn decode(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        Ok(Self {
            creation_time: r.u64(what)?,
            last_access_time: r.u64(what)?,
            last_write_time: r.u64(what)?,
            change_time: r.u64(what)?,
            allocation_size: r.u64(what)?,
            end_of_file: r.u64(what)?,
            file_attributes: r.u32(what)?,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u64(self.allocation_size);
        w.u64(self.end_of_file);
        w.u32(self.file_attributes);
    }
}

/// The CREATE response (MS-SMB2 2.2.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateResponse<'a> {
    /// OplockLevel.
    pub oplock_level: u8,
    /// CreateAction (0 superseded, 1 opened, 2 created, 3 overwritten).
    pub create_action: u32,
    /// Metadata.
    pub info: FileAttributesInfo,
    /// FileId.
    pub file_id: FileId,
    /// Create contexts returned by the server.
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> CreateResponse<'a> {
    /// Decodes the body of a whole message.
    pub fn decode(msg: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "create: header")?;
        r.structure_size(89, "create: structure size")?;
        let oplock_level = r.u8("create: oplock level")?;
        r.skip(1, "create: flags")?;
        let create_action = r.u32("create: action")?;
        let info = FileAttributesInfo::decode(&mut r, "create: attributes")?;
        r.skip(4, "create: reserved")?;
        let file_id = FileId(r.array("create: file id")?);
        let ctx_off = r.u32("create: contexts offset")?;
        let ctx_len = r.u32("create: contexts length")?;
        let contexts = if ctx_len == 0 {
            Vec::new()
        } else {
            if ctx_off % 8 != 0 {
                return Err(DecodeError::new("create: contexts alignment"));
            }
            decode_create_contexts(r.slice_at(
                ctx_off as usize,
                ctx_len as usize,
                "create: contexts",
            )?)?
        };
        Ok(Self {
            oplock_level,
            create_action,
            info,
            file_id,
            contexts,
        })
    }

    /// Encodes the body (tests, fake servers).
    pub fn encode(&self, w: &mut Writer) {
        w.u16(89);
        w.u8(self.oplock_level);
        w.u8(0);
        w.u32(self.create_action);
        self.info.encode(w);
        w.u32(0);
        w.bytes(&self.file_id.0);
        let co = w.len();
        w.u32(0);
        w.u32(0);
        if self.contexts.is_empty() {
            w.zeros(8);
            return;
        }
        w.align(8);
        let start = w.len();
        encode_create_contexts(w, &self.contexts);
        let len = w.len() - start;
        w.patch_u32(co, len32(start));
        w.patch_u32(co + 4, len32(len));
    }
}

/// SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB.
pub const CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

/// Encodes a CLOSE request (MS-SMB2 2.2.15).
pub fn encode_close(w: &mut Writer, file_id: FileId, flags: u16) {
    w.u16(24);
    w.u16(flags);
    w.u32(0);
    w.bytes(&file_id.0);
}

/// Decodes a CLOSE response (MS-SMB2 2.2.16): `Some` metadata when the
/// post-query flag came back set.
pub fn decode_close(msg: &[u8]) -> Result<Option<FileAttributesInfo>, DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "close: header")?;
    r.structure_size(60, "close: structure size")?;
    let flags = r.u16("close: flags")?;
    r.skip(4, "close: reserved")?;
    let info = FileAttributesInfo::decode(&mut r, "close: attributes")?;
    Ok((flags & CLOSE_FLAG_POSTQUERY_ATTRIB != 0).then_some(info))
}

/// Encodes a CLOSE response (tests).
pub fn encode_close_response(w: &mut Writer, info: Option<&FileAttributesInfo>) {
    w.u16(60);
    w.u16(u16::from(info.is_some()));
    w.u32(0);
    info.copied().unwrap_or_default().encode(w);
}

/// Encodes a FLUSH request (MS-SMB2 2.2.17).
pub fn encode_flush(w: &mut Writer, file_id: FileId) {
    w.u16(24);
    w.u16(0);
    w.u32(0);
    w.bytes(&file_id.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    fn framed(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        f(&mut w);
        w.into_vec()
    }

    fn sample() -> CreateResponse<'static> {
        CreateResponse {
            oplock_level: 0,
            create_action: 2,
            info: FileAttributesInfo {
                creation_time: 1,
                last_access_time: 2,
                last_write_time: 3,
                change_time: 4,
                allocation_size: 4096,
                end_of_file: 10,
                file_attributes: 0x20,
            },
            file_id: FileId([5; 16]),
            contexts: vec![
                CreateContext {
                    name: b"MxAc",
                    data: &[0, 0, 0, 0, 0xff, 0x01, 0x1f, 0],
                },
                CreateContext {
                    name: b"QFid",
                    data: &[1; 32],
                },
            ],
        }
    }

    #[test]
    fn create_response_round_trip_and_truncation() {
        let b = framed(|w| sample().encode(w));
        assert_eq!(CreateResponse::decode(&b).unwrap(), sample());
        for n in 0..b.len() {
            assert!(CreateResponse::decode(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn create_contexts_bad_chain() {
        let mut w = Writer::new();
        encode_create_contexts(&mut w, &sample().contexts);
        let mut b = w.into_vec();
        assert_eq!(decode_create_contexts(&b).unwrap().len(), 2);
        b[0] = 3; // misaligned Next
        assert!(decode_create_contexts(&b).is_err());
        b[0] = 0xf0; // past the end
        assert!(decode_create_contexts(&b).is_err());
    }

    #[test]
    fn close_response() {
        let info = sample().info;
        let b = framed(|w| encode_close_response(w, Some(&info)));
        assert_eq!(decode_close(&b).unwrap(), Some(info));
        for n in 0..b.len() {
            assert!(decode_close(&b[..n]).is_err());
        }
    }
}
