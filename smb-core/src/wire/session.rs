//! SESSION_SETUP (MS-SMB2 2.2.5, 2.2.6), LOGOFF (2.2.7, 2.2.8), TREE_CONNECT
//! (2.2.9, 2.2.10), TREE_DISCONNECT (2.2.11, 2.2.12), ECHO (2.2.28, 2.2.29)
//! and the ERROR response (2.2.2).

use super::codec::{len16, utf16le, Reader, Writer};
use super::header::HEADER_LEN;
use super::DecodeError;

/// SMB2_SESSION_FLAG_IS_GUEST.
pub const SESSION_FLAG_IS_GUEST: u16 = 0x0001;
/// SMB2_SESSION_FLAG_IS_NULL.
pub const SESSION_FLAG_IS_NULL: u16 = 0x0002;
/// SMB2_SESSION_FLAG_ENCRYPT_DATA.
pub const SESSION_FLAG_ENCRYPT_DATA: u16 = 0x0004;

/// SMB2_SHAREFLAG_ENCRYPT_DATA.
pub const SHAREFLAG_ENCRYPT_DATA: u32 = 0x0000_8000;

/// The SESSION_SETUP request (MS-SMB2 2.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSetupRequest<'a> {
    /// SecurityMode (1 byte).
    pub security_mode: u8,
    /// Capabilities.
    pub capabilities: u32,
    /// PreviousSessionId: the session being re-established after a reconnect, or 0.
    pub previous_session_id: u64,
    /// The SPNEGO token.
    pub token: &'a [u8],
}

impl SessionSetupRequest<'_> {
    /// Encodes the body after the header already in `w`.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(25);
        w.u8(0); // Flags: no binding
        w.u8(self.security_mode);
        w.u32(self.capabilities);
        w.u32(0); // Channel
        let off = w.len();
        w.u16(0);
        w.u16(len16(self.token.len()));
        w.u64(self.previous_session_id);
        w.patch_u16(off, len16(w.len()));
        w.bytes(self.token);
        if self.token.is_empty() {
            w.u8(0);
        }
    }
}

/// The SESSION_SETUP response (MS-SMB2 2.2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSetupResponse<'a> {
    /// SessionFlags.
    pub session_flags: u16,
    /// The server's SPNEGO token.
    pub token: &'a [u8],
}

impl<'a> SessionSetupResponse<'a> {
    /// Decodes the body of a whole message.
    pub fn decode(msg: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "session setup: header")?;
        r.structure_size(9, "session setup: structure size")?;
        let session_flags = r.u16("session setup: flags")?;
        let off = r.u16("session setup: buffer offset")?;
        let len = r.u16("session setup: buffer length")?;
        let token = r.opt_slice_at(off.into(), len.into(), "session setup: buffer")?;
        Ok(Self {
            session_flags,
            token,
        })
    }

    /// Encodes the body (tests, fake servers).
    pub fn encode(&self, w: &mut Writer) {
        w.u16(9);
        w.u16(self.session_flags);
        w.u16(len16(w.len() + 4));
        w.u16(len16(self.token.len()));
        w.bytes(self.token);
    }
}

/// A 4-byte body (StructureSize 4 + Reserved): LOGOFF, TREE_DISCONNECT, ECHO, FLUSH response.
pub fn encode_empty(w: &mut Writer) {
    w.u16(4);
    w.u16(0);
}

/// Decodes a 4-byte body (StructureSize 4).
pub fn decode_empty(msg: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "empty body: header")?;
    r.structure_size(4, "empty body: structure size")?;
    r.skip(2, "empty body: reserved")
}

/// The TREE_CONNECT request (MS-SMB2 2.2.9) for `\\server\share`.
pub fn encode_tree_connect(w: &mut Writer, unc: &str) {
    let path = utf16le(unc);
    w.u16(9);
    w.u16(0);
    w.u16(len16(w.len() + 4));
    w.u16(len16(path.len()));
    w.bytes(&path);
}

/// The TREE_CONNECT response (MS-SMB2 2.2.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeConnectResponse {
    /// ShareType (1 disk, 2 pipe, 3 print).
    pub share_type: u8,
    /// ShareFlags.
    pub share_flags: u32,
    /// Capabilities.
    pub capabilities: u32,
    /// MaximalAccess.
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    /// Decodes the body of a whole message.
    pub fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "tree connect: header")?;
        r.structure_size(16, "tree connect: structure size")?;
        let share_type = r.u8("tree connect: share type")?;
        r.skip(1, "tree connect: reserved")?;
        Ok(Self {
            share_type,
            share_flags: r.u32("tree connect: share flags")?,
            capabilities: r.u32("tree connect: capabilities")?,
            maximal_access: r.u32("tree connect: maximal access")?,
        })
    }

    /// Encodes the body.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(16);
        w.u8(self.share_type);
        w.u8(0);
        w.u32(self.share_flags);
        w.u32(self.capabilities);
        w.u32(self.maximal_access);
    }
}

/// The ERROR response body (MS-SMB2 2.2.2): the error data, if any.
/// Servers send StructureSize 9 with a ByteCount of zero and one padding byte.
pub fn decode_error(msg: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "error: header")?;
    r.structure_size(9, "error: structure size")?;
    r.skip(2, "error: context count")?;
    let n = r.u32("error: byte count")?;
    r.take(n as usize, "error: data")
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

    fn truncations<T>(b: &[u8], f: impl Fn(&[u8]) -> Result<T, DecodeError>) {
        assert!(f(b).is_ok());
        for n in 0..b.len() {
            assert!(f(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn session_setup_response() {
        let s = SessionSetupResponse {
            session_flags: SESSION_FLAG_ENCRYPT_DATA,
            token: &[1, 2, 3, 4],
        };
        let b = framed(|w| s.encode(w));
        assert_eq!(SessionSetupResponse::decode(&b).unwrap(), s);
        truncations(&b, |m| SessionSetupResponse::decode(m).map(|_| ()));
    }

    #[test]
    fn tree_connect_response() {
        let t = TreeConnectResponse {
            share_type: 1,
            share_flags: SHAREFLAG_ENCRYPT_DATA,
            capabilities: 0,
            maximal_access: 0x1f01ff,
        };
        let b = framed(|w| t.encode(w));
        assert_eq!(TreeConnectResponse::decode(&b).unwrap(), t);
        truncations(&b, TreeConnectResponse::decode);
    }

    #[test]
    fn error_response() {
        // Samba's ERROR body: StructureSize 9, no contexts, ByteCount 0, one pad byte.
        let b = framed(|w| {
            w.u16(9);
            w.u16(0);
            w.u32(0);
            w.u8(0);
        });
        assert_eq!(decode_error(&b).unwrap(), &[] as &[u8]);
        truncations(&b[..b.len() - 1], |m| decode_error(m).map(|_| ()));
        let e = framed(encode_empty);
        truncations(&e, decode_empty);
    }
}
