//! NEGOTIATE request/response and negotiate contexts (MS-SMB2 2.2.3, 2.2.4),
//! and FSCTL_VALIDATE_NEGOTIATE_INFO buffers (2.2.31.4, 2.2.32.6).

use super::codec::{len16, len32, Reader, Writer};
use super::header::HEADER_LEN;
use super::{DecodeError, Dialect};

/// SMB2_NEGOTIATE_SIGNING_ENABLED.
pub const SECURITY_SIGNING_ENABLED: u16 = 0x0001;
/// SMB2_NEGOTIATE_SIGNING_REQUIRED.
pub const SECURITY_SIGNING_REQUIRED: u16 = 0x0002;

/// SMB2_GLOBAL_CAP_DFS.
pub const CAP_DFS: u32 = 0x0000_0001;
/// SMB2_GLOBAL_CAP_LEASING.
pub const CAP_LEASING: u32 = 0x0000_0002;
/// SMB2_GLOBAL_CAP_LARGE_MTU.
pub const CAP_LARGE_MTU: u32 = 0x0000_0004;
/// SMB2_GLOBAL_CAP_ENCRYPTION.
pub const CAP_ENCRYPTION: u32 = 0x0000_0040;

/// SMB2_PREAUTH_INTEGRITY_CAPABILITIES.
pub const CTX_PREAUTH: u16 = 0x0001;
/// SMB2_ENCRYPTION_CAPABILITIES.
pub const CTX_ENCRYPTION: u16 = 0x0002;
/// SMB2_SIGNING_CAPABILITIES.
pub const CTX_SIGNING: u16 = 0x0008;

/// SHA-512, the only preauth hash algorithm.
pub const HASH_SHA512: u16 = 0x0001;

/// Cipher ids (MS-SMB2 2.2.3.1.2).
pub mod cipher {
    /// AES-128-CCM.
    pub const AES_128_CCM: u16 = 0x0001;
    /// AES-128-GCM.
    pub const AES_128_GCM: u16 = 0x0002;
    /// AES-256-CCM.
    pub const AES_256_CCM: u16 = 0x0003;
    /// AES-256-GCM.
    pub const AES_256_GCM: u16 = 0x0004;
}

/// Signing algorithm ids (MS-SMB2 2.2.3.1.7).
pub mod signing {
    /// HMAC-SHA256.
    pub const HMAC_SHA256: u16 = 0x0000;
    /// AES-CMAC.
    pub const AES_CMAC: u16 = 0x0001;
    /// AES-GMAC.
    pub const AES_GMAC: u16 = 0x0002;
}

/// One negotiate context (MS-SMB2 2.2.3.1): type and raw data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateContext {
    /// ContextType.
    pub context_type: u16,
    /// Data.
    pub data: Vec<u8>,
}

impl NegotiateContext {
    /// SMB2_PREAUTH_INTEGRITY_CAPABILITIES with SHA-512 and `salt`.
    pub fn preauth(salt: &[u8]) -> Self {
        let mut w = Writer::new();
        w.u16(1);
        w.u16(len16(salt.len()));
        w.u16(HASH_SHA512);
        w.bytes(salt);
        Self {
            context_type: CTX_PREAUTH,
            data: w.into_vec(),
        }
    }

    /// A context carrying a u16 count followed by u16 ids (encryption, signing).
    pub fn id_list(context_type: u16, ids: &[u16]) -> Self {
        let mut w = Writer::new();
        w.u16(len16(ids.len()));
        for id in ids {
            w.u16(*id);
        }
        Self {
            context_type,
            data: w.into_vec(),
        }
    }

    /// Parses a count-prefixed u16 list (encryption and signing contexts; for
    /// the preauth context, the hash algorithm list).
    pub fn ids(&self) -> Result<Vec<u16>, DecodeError> {
        let mut r = Reader::new(&self.data);
        let count = r.u16("negotiate context: count")?;
        if self.context_type == CTX_PREAUTH {
            r.skip(2, "negotiate context: salt length")?;
        }
        (0..count).map(|_| r.u16("negotiate context: id")).collect()
    }
}

/// The NEGOTIATE request (MS-SMB2 2.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateRequest {
    /// SecurityMode.
    pub security_mode: u16,
    /// Capabilities.
    pub capabilities: u32,
    /// ClientGuid.
    pub client_guid: [u8; 16],
    /// Dialects offered.
    pub dialects: Vec<Dialect>,
    /// Negotiate contexts (sent only when 3.1.1 is offered).
    pub contexts: Vec<NegotiateContext>,
}

impl NegotiateRequest {
    /// Encodes the body after a 64-byte header already in `w`.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(36);
        w.u16(len16(self.dialects.len()));
        w.u16(self.security_mode);
        w.u16(0);
        w.u32(self.capabilities);
        w.bytes(&self.client_guid);
        let ctx_offset_pos = w.len();
        if self.contexts.is_empty() {
            w.u64(0); // ClientStartTime
        } else {
            w.u32(0);
            w.u16(len16(self.contexts.len()));
            w.u16(0);
        }
        for d in &self.dialects {
            w.u16(d.0);
        }
        if !self.contexts.is_empty() {
            w.align(8);
            let off = len32(w.len());
            w.patch_u32(ctx_offset_pos, off);
            encode_contexts(w, &self.contexts);
        }
    }
}

fn encode_contexts(w: &mut Writer, contexts: &[NegotiateContext]) {
    for (i, c) in contexts.iter().enumerate() {
        if i > 0 {
            w.align(8);
        }
        w.u16(c.context_type);
        w.u16(len16(c.data.len()));
        w.u32(0);
        w.bytes(&c.data);
    }
}

/// The NEGOTIATE response (MS-SMB2 2.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateResponse {
    /// SecurityMode.
    pub security_mode: u16,
    /// DialectRevision.
    pub dialect: Dialect,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// Capabilities.
    pub capabilities: u32,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// SystemTime.
    pub system_time: u64,
    /// The GSS/SPNEGO token.
    pub security_buffer: Vec<u8>,
    /// Negotiate contexts (3.1.1 only).
    pub contexts: Vec<NegotiateContext>,
}

impl NegotiateResponse {
    /// Decodes the body of `msg` (a whole message, header included).
    pub fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "negotiate: header")?;
        r.structure_size(65, "negotiate: structure size")?;
        let security_mode = r.u16("negotiate: security mode")?;
        let dialect = Dialect(r.u16("negotiate: dialect")?);
        let ctx_count = r.u16("negotiate: context count")?;
        let server_guid = r.array("negotiate: server guid")?;
        let capabilities = r.u32("negotiate: capabilities")?;
        let max_transact_size = r.u32("negotiate: max transact")?;
        let max_read_size = r.u32("negotiate: max read")?;
        let max_write_size = r.u32("negotiate: max write")?;
        let system_time = r.u64("negotiate: system time")?;
        r.skip(8, "negotiate: server start time")?;
        let sb_off = r.u16("negotiate: security buffer offset")?;
        let sb_len = r.u16("negotiate: security buffer length")?;
        let ctx_off = r.u32("negotiate: context offset")?;
        let security_buffer = r
            .opt_slice_at(sb_off.into(), sb_len.into(), "negotiate: security buffer")?
            .to_vec();
        let mut contexts = Vec::new();
        if dialect == Dialect::SMB3_1_1 && ctx_count > 0 {
            let mut pos = ctx_off as usize;
            if pos % 8 != 0 {
                return Err(DecodeError::new("negotiate: context alignment"));
            }
            for i in 0..ctx_count {
                if i > 0 {
                    pos = pos
                        .checked_next_multiple_of(8)
                        .ok_or_else(|| DecodeError::new("negotiate: context"))?;
                }
                let mut cr = Reader::at(msg, pos, "negotiate: context offset")?;
                let context_type = cr.u16("negotiate: context type")?;
                let len = cr.u16("negotiate: context length")?;
                cr.skip(4, "negotiate: context reserved")?;
                let data = cr.take(len.into(), "negotiate: context data")?.to_vec();
                contexts.push(NegotiateContext { context_type, data });
                pos = cr.pos();
            }
        }
        Ok(Self {
            security_mode,
            dialect,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            security_buffer,
            contexts,
        })
    }

    /// The first context of `context_type`.
    pub fn context(&self, context_type: u16) -> Option<&NegotiateContext> {
        self.contexts
            .iter()
            .find(|c| c.context_type == context_type)
    }

    /// Encodes the body (for tests and fake servers).
    pub fn encode(&self, w: &mut Writer) {
        w.u16(65);
        w.u16(self.security_mode);
        w.u16(self.dialect.0);
        w.u16(len16(self.contexts.len()));
        w.bytes(&self.server_guid);
        w.u32(self.capabilities);
        w.u32(self.max_transact_size);
        w.u32(self.max_read_size);
        w.u32(self.max_write_size);
        w.u64(self.system_time);
        w.u64(0);
        let sb = w.len();
        w.u16(0);
        w.u16(len16(self.security_buffer.len()));
        let co = w.len();
        w.u32(0);
        w.patch_u16(sb, len16(w.len()));
        w.bytes(&self.security_buffer);
        if !self.contexts.is_empty() {
            w.align(8);
            let off = len32(w.len());
            w.patch_u32(co, off);
            encode_contexts(w, &self.contexts);
        }
    }
}

/// VALIDATE_NEGOTIATE_INFO request buffer (MS-SMB2 2.2.31.4).
pub fn validate_negotiate_input(
    capabilities: u32,
    guid: &[u8; 16],
    security_mode: u16,
    dialects: &[Dialect],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(capabilities);
    w.bytes(guid);
    w.u16(security_mode);
    w.u16(len16(dialects.len()));
    for d in dialects {
        w.u16(d.0);
    }
    w.into_vec()
}

/// VALIDATE_NEGOTIATE_INFO response buffer (MS-SMB2 2.2.32.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateNegotiateResponse {
    /// Capabilities.
    pub capabilities: u32,
    /// Guid (the server's).
    pub guid: [u8; 16],
    /// SecurityMode.
    pub security_mode: u16,
    /// Dialect.
    pub dialect: Dialect,
}

impl ValidateNegotiateResponse {
    /// Decodes the IOCTL output buffer.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        Ok(Self {
            capabilities: r.u32("validate negotiate: capabilities")?,
            guid: r.array("validate negotiate: guid")?,
            security_mode: r.u16("validate negotiate: security mode")?,
            dialect: Dialect(r.u16("validate negotiate: dialect")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    fn response() -> NegotiateResponse {
        NegotiateResponse {
            security_mode: SECURITY_SIGNING_ENABLED,
            dialect: Dialect::SMB3_1_1,
            server_guid: [3; 16],
            capabilities: CAP_LARGE_MTU | CAP_ENCRYPTION,
            max_transact_size: 8 << 20,
            max_read_size: 8 << 20,
            max_write_size: 8 << 20,
            system_time: 1234,
            security_buffer: vec![0x60, 0x01, 0x02],
            contexts: vec![
                NegotiateContext::preauth(&[9; 32]),
                NegotiateContext::id_list(CTX_ENCRYPTION, &[cipher::AES_128_GCM]),
                NegotiateContext::id_list(CTX_SIGNING, &[signing::AES_GMAC]),
            ],
        }
    }

    #[test]
    fn response_round_trip_and_truncation() {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        response().encode(&mut w);
        let b = w.into_vec();
        let d = NegotiateResponse::decode(&b).unwrap();
        assert_eq!(d, response());
        assert_eq!(
            d.context(CTX_SIGNING).unwrap().ids().unwrap(),
            vec![signing::AES_GMAC]
        );
        assert_eq!(
            d.context(CTX_PREAUTH).unwrap().ids().unwrap(),
            vec![HASH_SHA512]
        );
        for n in 0..b.len() {
            assert!(NegotiateResponse::decode(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn request_layout() {
        let req = NegotiateRequest {
            security_mode: SECURITY_SIGNING_ENABLED,
            capabilities: CAP_LARGE_MTU,
            client_guid: [1; 16],
            dialects: vec![Dialect::SMB2_0_2, Dialect::SMB3_1_1],
            contexts: vec![NegotiateContext::preauth(&[0; 32])],
        };
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        req.encode(&mut w);
        let b = w.into_vec();
        // Contexts start 8-aligned right after the dialects.
        let off = u32::from_le_bytes([b[64 + 28], b[64 + 29], b[64 + 30], b[64 + 31]]) as usize;
        assert_eq!(off % 8, 0);
        assert_eq!(u16::from_le_bytes([b[off], b[off + 1]]), CTX_PREAUTH);
    }

    #[test]
    fn validate_negotiate() {
        let mut b = validate_negotiate_input(7, &[2; 16], 1, &[Dialect::SMB3_0]);
        b.truncate(24);
        let v = ValidateNegotiateResponse::decode(&b).unwrap();
        assert_eq!(v.capabilities, 7);
        for n in 0..b.len() {
            assert!(ValidateNegotiateResponse::decode(&b[..n]).is_err());
        }
    }
}
