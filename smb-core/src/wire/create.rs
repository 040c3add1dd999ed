//! CREATE (MS-SMB2 2.2.13, 2.2.14) with create contexts (2.2.13.2), CLOSE
//! (2.2.15, 2.2.16) and FLUSH (2.2.17). The contexts of durable handles v2
//! and leases are typed here: DH2Q (2.2.13.2.11, 2.2.14.2.12), DH2C
//! (2.2.13.2.12) and RqLs (2.2.13.2.8/10, 2.2.14.2.10/11).

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
        self.encode_with(w, oplock::NONE, &[]);
    }

    /// Encodes the body with RequestedOplockLevel `oplock_level` and the
    /// create contexts `contexts` (after the name, 8-byte aligned from the
    /// start of the message: `w` must hold the header first).
    pub fn encode_with(&self, w: &mut Writer, oplock_level: u8, contexts: &[CreateContext<'_>]) {
        w.u16(57);
        w.u8(0); // SecurityFlags
        w.u8(oplock_level);
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
        let co = w.len();
        w.u32(0); // CreateContextsOffset
        w.u32(0); // CreateContextsLength
        w.bytes(self.name);
        if self.name.is_empty() {
            // The Buffer is at least one byte (StructureSize 57).
            w.u8(0);
        }
        if !contexts.is_empty() {
            w.align(8);
            let start = w.len();
            encode_create_contexts(w, contexts);
            let len = w.len() - start;
            w.patch_u32(co, len32(start));
            w.patch_u32(co + 4, len32(len));
        }
    }
}

/// RequestedOplockLevel / OplockLevel values (MS-SMB2 2.2.13).
pub mod oplock {
    /// SMB2_OPLOCK_LEVEL_NONE.
    pub const NONE: u8 = 0x00;
    /// SMB2_OPLOCK_LEVEL_II.
    pub const LEVEL_II: u8 = 0x01;
    /// SMB2_OPLOCK_LEVEL_EXCLUSIVE.
    pub const EXCLUSIVE: u8 = 0x08;
    /// SMB2_OPLOCK_LEVEL_BATCH.
    pub const BATCH: u8 = 0x09;
    /// SMB2_OPLOCK_LEVEL_LEASE: the lease create context says what is asked.
    pub const LEASE: u8 = 0xFF;
}

/// Create context names (MS-SMB2 2.2.13.2).
pub mod context {
    /// SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2 (request) and
    /// SMB2_CREATE_DURABLE_HANDLE_RESPONSE_V2 (response).
    pub const DH2Q: &[u8; 4] = b"DH2Q";
    /// SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2.
    pub const DH2C: &[u8; 4] = b"DH2C";
    /// SMB2_CREATE_REQUEST_LEASE(_V2) and SMB2_CREATE_RESPONSE_LEASE(_V2).
    pub const RQLS: &[u8; 4] = b"RqLs";
}

/// SMB2_DHANDLE_FLAG_PERSISTENT (MS-SMB2 2.2.13.2.11): we never ask for it
/// (persistent handles need a continuously available share).
pub const DHANDLE_FLAG_PERSISTENT: u32 = 0x0000_0002;

/// SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2 (MS-SMB2 2.2.13.2.11), 32 bytes:
/// asks the server to keep the open for `timeout_ms` after a disconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableRequestV2 {
    /// Timeout in milliseconds; 0 lets the server choose (Samba caps it at 300 s).
    pub timeout_ms: u32,
    /// `DHANDLE_FLAG_*`.
    pub flags: u32,
    /// Names this create to the server (with our ClientGuid) across reconnects.
    pub create_guid: [u8; 16],
}

impl DurableRequestV2 {
    /// Length of the context data.
    pub const LEN: usize = 32;

    /// The context data.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::LEN);
        w.u32(self.timeout_ms);
        w.u32(self.flags);
        w.u64(0); // Reserved
        w.bytes(&self.create_guid);
        w.into_vec()
    }

    /// Decodes the context data (tests, fake servers).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        exact_len(data, Self::LEN, "DH2Q request: length")?;
        let mut r = Reader::new(data);
        let timeout_ms = r.u32("DH2Q request: timeout")?;
        let flags = r.u32("DH2Q request: flags")?;
        r.skip(8, "DH2Q request: reserved")?;
        let create_guid = r.array("DH2Q request: create guid")?;
        Ok(Self {
            timeout_ms,
            flags,
            create_guid,
        })
    }
}

/// SMB2_CREATE_DURABLE_HANDLE_RESPONSE_V2 (MS-SMB2 2.2.14.2.12), 8 bytes:
/// its presence in a CREATE response means the open is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableResponseV2 {
    /// How long (ms) the server keeps the open after a disconnect.
    pub timeout_ms: u32,
    /// `DHANDLE_FLAG_*` granted.
    pub flags: u32,
}

impl DurableResponseV2 {
    /// Length of the context data.
    pub const LEN: usize = 8;

    /// Decodes the context data.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        exact_len(data, Self::LEN, "DH2Q response: length")?;
        let mut r = Reader::new(data);
        Ok(Self {
            timeout_ms: r.u32("DH2Q response: timeout")?,
            flags: r.u32("DH2Q response: flags")?,
        })
    }

    /// The context data (tests, fake servers).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::LEN);
        w.u32(self.timeout_ms);
        w.u32(self.flags);
        w.into_vec()
    }
}

/// SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2 (MS-SMB2 2.2.13.2.12), 36 bytes:
/// reclaims a durable open on a new connection (MS-SMB2 3.2.4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableReconnectV2 {
    /// The FileId the open had (the server looks it up by the persistent half).
    pub file_id: FileId,
    /// The CreateGuid of the original DH2Q.
    pub create_guid: [u8; 16],
    /// `DHANDLE_FLAG_*`.
    pub flags: u32,
}

impl DurableReconnectV2 {
    /// Length of the context data.
    pub const LEN: usize = 36;

    /// The context data.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::LEN);
        w.bytes(&self.file_id.0);
        w.bytes(&self.create_guid);
        w.u32(self.flags);
        w.into_vec()
    }

    /// Decodes the context data (tests, fake servers).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        exact_len(data, Self::LEN, "DH2C: length")?;
        let mut r = Reader::new(data);
        Ok(Self {
            file_id: FileId(r.array("DH2C: file id")?),
            create_guid: r.array("DH2C: create guid")?,
            flags: r.u32("DH2C: flags")?,
        })
    }
}

/// LeaseState bits (MS-SMB2 2.2.13.2.8).
pub mod lease_state {
    /// SMB2_LEASE_NONE.
    pub const NONE: u32 = 0x00;
    /// SMB2_LEASE_READ_CACHING (R).
    pub const READ: u32 = 0x01;
    /// SMB2_LEASE_HANDLE_CACHING (H): what a durable handle needs.
    pub const HANDLE: u32 = 0x02;
    /// SMB2_LEASE_WRITE_CACHING (W).
    pub const WRITE: u32 = 0x04;
}

/// SMB2_LEASE_FLAG_BREAK_IN_PROGRESS (response, MS-SMB2 2.2.14.2.10).
pub const LEASE_FLAG_BREAK_IN_PROGRESS: u32 = 0x02;
/// SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET (MS-SMB2 2.2.13.2.10).
pub const LEASE_FLAG_PARENT_LEASE_KEY_SET: u32 = 0x04;

/// A lease create context, version 2 (MS-SMB2 2.2.13.2.10 request,
/// 2.2.14.2.11 response, 52 bytes) or version 1 (2.2.13.2.8, 2.2.14.2.10,
/// 32 bytes: no parent key, no epoch), under the name `RqLs` both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// The client-chosen key naming the lease.
    pub key: [u8; 16],
    /// `lease_state::*` bits requested or granted.
    pub state: u32,
    /// `LEASE_FLAG_*`.
    pub flags: u32,
    /// ParentLeaseKey (v2; meaningful with `LEASE_FLAG_PARENT_LEASE_KEY_SET`).
    pub parent_key: [u8; 16],
    /// Epoch (v2): the server counts lease state changes from it.
    pub epoch: u16,
    /// Version 2 (52 bytes) rather than 1 (32 bytes).
    pub v2: bool,
}

impl Lease {
    /// Length of the version 2 context data.
    pub const LEN_V2: usize = 52;
    /// Length of the version 1 context data.
    pub const LEN_V1: usize = 32;

    /// The context data (v1 or v2 by [`Lease::v2`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::LEN_V2);
        w.bytes(&self.key);
        w.u32(self.state);
        w.u32(self.flags);
        w.u64(0); // LeaseDuration
        if self.v2 {
            w.bytes(&self.parent_key);
            w.u16(self.epoch);
            w.u16(0); // Reserved
        }
        w.into_vec()
    }

    /// Decodes v1 or v2 context data by its length.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let v2 = match data.len() {
            Self::LEN_V2 => true,
            Self::LEN_V1 => false,
            _ => return Err(DecodeError::new("lease context: length")),
        };
        let mut r = Reader::new(data);
        let key = r.array("lease context: key")?;
        let state = r.u32("lease context: state")?;
        let flags = r.u32("lease context: flags")?;
        r.skip(8, "lease context: duration")?;
        let (parent_key, epoch) = if v2 {
            let p = r.array("lease context: parent key")?;
            let e = r.u16("lease context: epoch")?;
            r.skip(2, "lease context: reserved")?;
            (p, e)
        } else {
            ([0; 16], 0)
        };
        Ok(Self {
            key,
            state,
            flags,
            parent_key,
            epoch,
            v2,
        })
    }
}

/// A CREATE request as a server sees it (MS-SMB2 2.2.13): the fields, the
/// RequestedOplockLevel and the create contexts (tests, fake servers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedCreateRequest<'a> {
    /// The fixed fields and the name.
    pub request: CreateRequest<'a>,
    /// RequestedOplockLevel.
    pub oplock_level: u8,
    /// The create contexts.
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> DecodedCreateRequest<'a> {
    /// Decodes the body of a whole CREATE request message.
    pub fn decode(msg: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "create request: header")?;
        r.structure_size(57, "create request: structure size")?;
        r.skip(1, "create request: security flags")?;
        let oplock_level = r.u8("create request: oplock level")?;
        r.skip(4 + 8 + 8, "create request: impersonation, flags")?;
        let desired_access = r.u32("create request: access")?;
        let file_attributes = r.u32("create request: attributes")?;
        let share_access = r.u32("create request: share")?;
        let disposition = r.u32("create request: disposition")?;
        let options = r.u32("create request: options")?;
        let name_off = r.u16("create request: name offset")?;
        let name_len = r.u16("create request: name length")?;
        let ctx_off = r.u32("create request: contexts offset")?;
        let ctx_len = r.u32("create request: contexts length")?;
        let name = r.opt_slice_at(name_off.into(), name_len.into(), "create request: name")?;
        let contexts = if ctx_len == 0 {
            Vec::new()
        } else {
            if ctx_off % 8 != 0 {
                return Err(DecodeError::new("create request: contexts alignment"));
            }
            decode_create_contexts(r.slice_at(
                ctx_off as usize,
                ctx_len as usize,
                "create request: contexts",
            )?)?
        };
        Ok(Self {
            request: CreateRequest {
                desired_access,
                file_attributes,
                share_access,
                disposition,
                options,
                name,
            },
            oplock_level,
            contexts,
        })
    }
}

fn exact_len(data: &[u8], n: usize, what: &'static str) -> Result<(), DecodeError> {
    if data.len() == n {
        Ok(())
    } else {
        Err(DecodeError::new(what))
    }
}

impl CreateResponse<'_> {
    /// The data of the first context named `name`, if any.
    pub fn context(&self, name: &[u8]) -> Option<&[u8]> {
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.data)
    }

    /// The DH2Q response context: `Some` when the open is durable.
    pub fn durable_v2(&self) -> Result<Option<DurableResponseV2>, DecodeError> {
        self.context(context::DH2Q)
            .map(DurableResponseV2::decode)
            .transpose()
    }

    /// The lease response context, when a lease was granted.
    pub fn lease(&self) -> Result<Option<Lease>, DecodeError> {
        self.context(context::RQLS).map(Lease::decode).transpose()
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

    fn durable_contexts() -> (Vec<u8>, Vec<u8>) {
        let dh2q = DurableRequestV2 {
            timeout_ms: 60_000,
            flags: 0,
            create_guid: [0xC1; 16],
        };
        let lease = Lease {
            key: [0x1E; 16],
            state: lease_state::READ | lease_state::WRITE | lease_state::HANDLE,
            v2: true,
            ..Lease::default()
        };
        (dh2q.encode(), lease.encode())
    }

    #[test]
    fn create_request_with_contexts_round_trip_and_truncation() {
        let (dh2q, lease) = durable_contexts();
        let name = crate::wire::codec::utf16le("dir\\f.bin");
        let req = CreateRequest {
            desired_access: access::FILE_READ_DATA | access::FILE_WRITE_DATA,
            file_attributes: 0,
            share_access: share::ALL,
            disposition: disposition::OVERWRITE_IF,
            options: options::NON_DIRECTORY_FILE,
            name: &name,
        };
        let contexts = [
            CreateContext {
                name: context::DH2Q,
                data: &dh2q,
            },
            CreateContext {
                name: context::RQLS,
                data: &lease,
            },
        ];
        let b = framed(|w| req.encode_with(w, oplock::LEASE, &contexts));
        let d = DecodedCreateRequest::decode(&b).unwrap();
        assert_eq!(d.request, req);
        assert_eq!(d.oplock_level, oplock::LEASE);
        assert_eq!(d.contexts, contexts);
        // Offsets are from the header and 8-aligned, as MS-SMB2 2.2.13 wants.
        let ctx_off = u32::from_le_bytes(b[112..116].try_into().unwrap());
        assert_eq!(ctx_off % 8, 0);
        for n in 0..b.len() {
            assert!(DecodedCreateRequest::decode(&b[..n]).is_err(), "prefix {n}");
        }
        // Without contexts the encoding is what it always was.
        let plain = framed(|w| req.encode(w));
        let d = DecodedCreateRequest::decode(&plain).unwrap();
        assert_eq!((d.oplock_level, d.contexts.len()), (oplock::NONE, 0));
        assert_eq!(&plain[112..120], &[0; 8]);
    }

    #[test]
    fn durable_and_lease_context_data() {
        let (dh2q, lease) = durable_contexts();
        assert_eq!(dh2q.len(), DurableRequestV2::LEN);
        let q = DurableRequestV2::decode(&dh2q).unwrap();
        assert_eq!((q.timeout_ms, q.create_guid), (60_000, [0xC1; 16]));
        assert_eq!(&dh2q[8..16], &[0; 8], "Reserved");
        let l = Lease::decode(&lease).unwrap();
        assert_eq!((l.key, l.state, l.v2), ([0x1E; 16], 7, true));
        assert_eq!(Lease::decode(&l.encode()).unwrap(), l);
        let v1 = Lease { v2: false, ..l };
        assert_eq!(v1.encode().len(), Lease::LEN_V1);
        assert_eq!(Lease::decode(&v1.encode()).unwrap(), v1);
        let c = DurableReconnectV2 {
            file_id: FileId([9; 16]),
            create_guid: [0xC1; 16],
            flags: 0,
        };
        let cb = c.encode();
        assert_eq!(cb.len(), DurableReconnectV2::LEN);
        assert_eq!(DurableReconnectV2::decode(&cb).unwrap(), c);
        let r = DurableResponseV2 {
            timeout_ms: 60_000,
            flags: 0,
        };
        assert_eq!(DurableResponseV2::decode(&r.encode()).unwrap(), r);
        for (data, f) in [
            (
                &dh2q,
                (|d| DurableRequestV2::decode(d).map(|_| ())) as fn(&[u8]) -> _,
            ),
            (&lease, |d| Lease::decode(d).map(|_| ())),
            (&cb, |d| DurableReconnectV2::decode(d).map(|_| ())),
            (&r.encode(), |d| DurableResponseV2::decode(d).map(|_| ())),
        ] {
            for n in 0..data.len() {
                // The first 32 bytes of a v2 lease are a whole v1 lease.
                let v1_prefix = data.len() == Lease::LEN_V2 && n == Lease::LEN_V1;
                assert_eq!(f(&data[..n]).is_err(), !v1_prefix, "prefix {n}");
            }
            let mut long = data.clone();
            long.push(0);
            assert!(f(&long).is_err(), "one byte too many");
        }
    }

    #[test]
    fn create_response_with_durable_and_lease_contexts() {
        let dh2q = DurableResponseV2 {
            timeout_ms: 60_000,
            flags: 0,
        }
        .encode();
        let lease = Lease {
            key: [0x1E; 16],
            state: lease_state::READ | lease_state::HANDLE,
            epoch: 1,
            v2: true,
            ..Lease::default()
        }
        .encode();
        let r = CreateResponse {
            oplock_level: oplock::LEASE,
            contexts: vec![
                CreateContext {
                    name: context::RQLS,
                    data: &lease,
                },
                CreateContext {
                    name: context::DH2Q,
                    data: &dh2q,
                },
            ],
            ..sample()
        };
        let b = framed(|w| r.encode(w));
        let d = CreateResponse::decode(&b).unwrap();
        assert_eq!(d.durable_v2().unwrap().unwrap().timeout_ms, 60_000);
        let l = d.lease().unwrap().unwrap();
        assert_eq!((l.state, l.epoch), (3, 1));
        assert_eq!(sample().durable_v2().unwrap(), None);
        assert_eq!(sample().lease().unwrap(), None);
        // A malformed context is an error, not "not durable".
        let bad = CreateResponse {
            contexts: vec![CreateContext {
                name: context::DH2Q,
                data: &[0; 7],
            }],
            ..sample()
        };
        assert!(bad.durable_v2().is_err());
    }

    #[test]
    fn the_durable_fuzz_seed_decodes_whole() {
        let b = include_bytes!("../../../fuzz/seeds/wire_create_response/create_durable_lease.bin");
        let r = CreateResponse::decode(b).unwrap();
        assert_eq!(r.oplock_level, oplock::LEASE);
        assert_eq!(r.durable_v2().unwrap().unwrap().timeout_ms, 60_000);
        assert_eq!(r.lease().unwrap().unwrap().state, 3);
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
