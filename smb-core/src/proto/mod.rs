//! Protocol state without I/O: the NEGOTIATE exchange (MS-SMB2 3.2.4.2.2,
//! 3.2.5.2), credit charges (3.1.5.2), dialect limits and path rules.
//!
//! Nothing here touches sockets or clocks: the async layer feeds bytes and
//! values in and sends what comes out.

pub mod conn;
pub mod frame;
pub mod session;

#[cfg(test)]
mod harness;

use crate::wire::negotiate::{
    cipher, signing, NegotiateContext, NegotiateRequest, NegotiateResponse, CAP_ENCRYPTION,
    CAP_LARGE_MTU, CTX_ENCRYPTION, CTX_PREAUTH, CTX_SIGNING, HASH_SHA512, SECURITY_SIGNING_ENABLED,
    SECURITY_SIGNING_REQUIRED,
};
use crate::wire::Dialect;

/// A protocol violation found while checking what the server negotiated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct ProtoError(pub &'static str);

/// The dialects we offer between `min` and `max`, lowest first.
pub fn dialects(min: Dialect, max: Dialect) -> Vec<Dialect> {
    [
        Dialect::SMB2_0_2,
        Dialect::SMB2_1,
        Dialect::SMB3_0,
        Dialect::SMB3_0_2,
        Dialect::SMB3_1_1,
    ]
    .into_iter()
    .filter(|d| *d >= min && *d <= max)
    .collect()
}

/// Ciphers we offer, in order of preference (MS-SMB2 2.2.3.1.2): both GCMs
/// before either CCM, since GCM is one AES-NI + carry-less-multiply pass
/// where CCM is two AES passes (CBC-MAC and CTR), and AES-256-GCM costs
/// only its 4 extra rounds per block over AES-128-GCM.
pub const OFFERED_CIPHERS: [u16; 4] = [
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::AES_128_CCM,
    cipher::AES_256_CCM,
];
/// Signing algorithms we offer, in order of preference (MS-SMB2 2.2.3.1.7).
pub const OFFERED_SIGNING: [u16; 3] = [signing::AES_GMAC, signing::AES_CMAC, signing::HMAC_SHA256];

/// Builds the NEGOTIATE request (MS-SMB2 3.2.4.2.2.2).
pub fn negotiate_request(
    dialects: Vec<Dialect>,
    client_guid: [u8; 16],
    salt: [u8; 32],
    sign_required: bool,
) -> NegotiateRequest {
    let smb3 = dialects.iter().any(|d| d.is_smb3());
    let contexts = if dialects.contains(&Dialect::SMB3_1_1) {
        vec![
            NegotiateContext::preauth(&salt),
            NegotiateContext::id_list(CTX_ENCRYPTION, &OFFERED_CIPHERS),
            NegotiateContext::id_list(CTX_SIGNING, &OFFERED_SIGNING),
        ]
    } else {
        Vec::new()
    };
    NegotiateRequest {
        security_mode: if sign_required {
            SECURITY_SIGNING_REQUIRED
        } else {
            SECURITY_SIGNING_ENABLED
        },
        // 2.0.2-only clients send no capabilities (MS-SMB2 2.2.3).
        capabilities: if dialects.iter().any(|d| *d >= Dialect::SMB2_1) {
            CAP_LARGE_MTU
        } else {
            0
        } | if smb3 { CAP_ENCRYPTION } else { 0 },
        client_guid,
        dialects,
        contexts,
    }
}

/// What NEGOTIATE settled on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The dialect.
    pub dialect: Dialect,
    /// Server capabilities.
    pub capabilities: u32,
    /// Server SecurityMode.
    pub security_mode: u16,
    /// Server GUID.
    pub server_guid: [u8; 16],
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// The cipher id (3.1.1 from the context; 3.0/3.0.2 AES-128-CCM when the
    /// server has CAP_ENCRYPTION), or `None`.
    pub cipher: Option<u16>,
    /// The signing algorithm id.
    pub signing: u16,
    /// The server's GSS token.
    pub security_buffer: Vec<u8>,
}

impl Negotiated {
    /// 2.1+ with CAP_LARGE_MTU: multi-credit requests.
    pub fn large_mtu(&self) -> bool {
        self.dialect >= Dialect::SMB2_1 && self.capabilities & CAP_LARGE_MTU != 0
    }

    /// The server requires signing.
    pub fn server_requires_signing(&self) -> bool {
        self.security_mode & SECURITY_SIGNING_REQUIRED != 0
    }
}

/// Checks the NEGOTIATE response against what we offered (MS-SMB2 3.2.5.2).
pub fn handle_negotiate_response(
    resp: NegotiateResponse,
    offered: &[Dialect],
) -> Result<Negotiated, ProtoError> {
    if !offered.contains(&resp.dialect) {
        return Err(ProtoError("the server chose a dialect we did not offer"));
    }
    if resp.max_read_size < 65536 || resp.max_write_size < 65536 || resp.max_transact_size < 65536 {
        return Err(ProtoError("the server's maximum sizes are below 64 KiB"));
    }
    let mut cipher = None;
    let mut signing_alg = if resp.dialect.is_smb3() {
        signing::AES_CMAC
    } else {
        signing::HMAC_SHA256
    };
    if resp.dialect == Dialect::SMB3_1_1 {
        let preauth = resp
            .context(CTX_PREAUTH)
            .ok_or(ProtoError("3.1.1 without a preauth integrity context"))?;
        let hashes = preauth.ids().map_err(|e| ProtoError(e.what))?;
        if hashes != [HASH_SHA512] {
            return Err(ProtoError(
                "the server chose a preauth hash other than SHA-512",
            ));
        }
        if let Some(c) = resp.context(CTX_ENCRYPTION) {
            let ids = c.ids().map_err(|e| ProtoError(e.what))?;
            match ids.as_slice() {
                [0] | [] => {}
                [id] if OFFERED_CIPHERS.contains(id) => cipher = Some(*id),
                _ => return Err(ProtoError("the server chose a cipher we did not offer")),
            }
        }
        if let Some(c) = resp.context(CTX_SIGNING) {
            let ids = c.ids().map_err(|e| ProtoError(e.what))?;
            match ids.as_slice() {
                [id] if OFFERED_SIGNING.contains(id) => signing_alg = *id,
                _ => {
                    return Err(ProtoError(
                        "the server chose a signing algorithm we did not offer",
                    ))
                }
            }
        }
    } else if resp.dialect.is_smb3() && resp.capabilities & CAP_ENCRYPTION != 0 {
        cipher = Some(cipher::AES_128_CCM);
    }
    Ok(Negotiated {
        dialect: resp.dialect,
        capabilities: resp.capabilities,
        security_mode: resp.security_mode,
        server_guid: resp.server_guid,
        max_transact_size: resp.max_transact_size,
        max_read_size: resp.max_read_size,
        max_write_size: resp.max_write_size,
        cipher,
        signing: signing_alg,
        security_buffer: resp.security_buffer,
    })
}

/// The display name of a cipher id.
pub fn cipher_name(id: u16) -> &'static str {
    match id {
        cipher::AES_128_CCM => "AES-128-CCM",
        cipher::AES_128_GCM => "AES-128-GCM",
        cipher::AES_256_CCM => "AES-256-CCM",
        cipher::AES_256_GCM => "AES-256-GCM",
        _ => "unknown",
    }
}

/// The display name of a signing algorithm id.
pub fn signing_name(id: u16) -> &'static str {
    match id {
        signing::HMAC_SHA256 => "HMAC-SHA256",
        signing::AES_CMAC => "AES-128-CMAC",
        signing::AES_GMAC => "AES-128-GMAC",
        _ => "unknown",
    }
}

/// CreditCharge for a request moving `payload` bytes (MS-SMB2 3.1.5.2):
/// ceil(max(send, receive) / 65536), at least 1.
pub fn credit_charge(payload: usize) -> u16 {
    u16::try_from(payload.div_ceil(65536).max(1)).unwrap_or(u16::MAX)
}

/// The largest requests a connection can send now, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoLimits {
    /// Data of one READ.
    pub read: u32,
    /// Data of one WRITE.
    pub write: u32,
    /// Output (or input) buffer of one QUERY_DIRECTORY, QUERY_INFO or IOCTL.
    pub transact: u32,
}

/// What one request may move (MS-SMB2 3.1.5.2, 3.3.5.2.5): the server's
/// MaxReadSize/MaxWriteSize/MaxTransactSize and our `io_cap`; 64 KiB without
/// multi-credit (2.0.2, or a server without CAP_LARGE_MTU, whatever
/// sizes it announced); with it, no more than the credits the server has
/// granted (`credit_limit`, see [`conn::Conn::request_credit_limit`]) less one
/// left for the small requests beside it, so a server with a small window
/// (Samba's `smb2 max credits = 32`, or one credit per reply) gets requests
/// it can take instead of a wait for credits it will never grant.
pub fn io_limits(
    max_read: u32,
    max_write: u32,
    max_transact: u32,
    io_cap: u32,
    large_mtu: bool,
    credit_limit: u64,
) -> IoLimits {
    const UNIT: u64 = 65536;
    let per_request = if large_mtu {
        credit_limit.saturating_sub(1).max(1) * UNIT
    } else {
        UNIT
    };
    let cap = u32::try_from(per_request)
        .unwrap_or(u32::MAX)
        .min(io_cap.max(65536));
    IoLimits {
        read: max_read.min(cap),
        write: max_write.min(cap),
        transact: max_transact.min(cap),
    }
}

/// Converts a caller path (`a/b\c`) into the wire form (`a\b\c`): no leading
/// or trailing separators, no empty, `.` or `..` components, no NUL or `:`.
pub fn wire_path(path: &str) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(path.len());
    for comp in path.split(['/', '\\']).filter(|c| !c.is_empty()) {
        if comp == "." {
            continue;
        }
        if comp == ".." {
            return Err(ProtoError("path has a `..` component"));
        }
        if comp.contains(['\0', ':']) {
            return Err(ProtoError("path has a NUL or `:`"));
        }
        if !out.is_empty() {
            out.push('\\');
        }
        out.push_str(comp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_is_offered_before_ccm() {
        let pos = |c| OFFERED_CIPHERS.iter().position(|&x| x == c).unwrap();
        assert!(pos(cipher::AES_256_GCM) < pos(cipher::AES_128_CCM));
        assert!(pos(cipher::AES_128_GCM) < pos(cipher::AES_128_CCM));
        assert_eq!(OFFERED_CIPHERS[0], cipher::AES_128_GCM);
    }

    #[test]
    fn charges() {
        assert_eq!(credit_charge(0), 1);
        assert_eq!(credit_charge(65536), 1);
        assert_eq!(credit_charge(65537), 2);
        assert_eq!(credit_charge(8 << 20), 128);
    }

    #[test]
    fn limits_follow_dialect_sizes_and_credits() {
        let mib = 1 << 20;
        // Plenty of credits: the negotiated sizes, capped by io_cap.
        let l = io_limits(8 * mib, 8 * mib, 8 * mib, 4 * mib, true, 2048);
        assert_eq!((l.read, l.write, l.transact), (4 * mib, 4 * mib, 4 * mib));
        // Small MaxTransactSize.
        assert_eq!(
            io_limits(8 * mib, 8 * mib, 65536, 8 * mib, true, 2048).transact,
            65536
        );
        // 2.0.2: 64 KiB whatever the server said.
        let l = io_limits(8 * mib, 8 * mib, 8 * mib, 8 * mib, false, 2048);
        assert_eq!((l.read, l.write, l.transact), (65536, 65536, 65536));
        // 32 credits: 31 x 64 KiB; one credit: 64 KiB.
        assert_eq!(
            io_limits(8 * mib, 8 * mib, 8 * mib, 8 * mib, true, 32).read,
            31 * 65536
        );
        assert_eq!(
            io_limits(8 * mib, 8 * mib, 8 * mib, 8 * mib, true, 1).write,
            65536
        );
    }

    #[test]
    fn paths() {
        assert_eq!(wire_path("a/b\\c/").unwrap(), "a\\b\\c");
        assert_eq!(wire_path("").unwrap(), "");
        assert_eq!(wire_path("/./x").unwrap(), "x");
        assert!(wire_path("a/../b").is_err());
        assert!(wire_path("a:b").is_err());
    }

    #[test]
    fn dialect_range() {
        assert_eq!(
            dialects(Dialect::SMB2_1, Dialect::SMB3_0),
            vec![Dialect::SMB2_1, Dialect::SMB3_0]
        );
    }

    #[test]
    fn negotiate_checks() {
        let resp = NegotiateResponse {
            security_mode: SECURITY_SIGNING_ENABLED,
            dialect: Dialect::SMB3_1_1,
            server_guid: [0; 16],
            capabilities: CAP_LARGE_MTU,
            max_transact_size: 1 << 20,
            max_read_size: 1 << 20,
            max_write_size: 1 << 20,
            system_time: 0,
            security_buffer: vec![],
            contexts: vec![
                NegotiateContext::preauth(&[1; 32]),
                NegotiateContext::id_list(CTX_ENCRYPTION, &[cipher::AES_256_GCM]),
                NegotiateContext::id_list(CTX_SIGNING, &[signing::AES_GMAC]),
            ],
        };
        let n = handle_negotiate_response(
            resp.clone(),
            &dialects(Dialect::SMB2_0_2, Dialect::SMB3_1_1),
        )
        .unwrap();
        assert_eq!(n.cipher, Some(cipher::AES_256_GCM));
        assert_eq!(n.signing, signing::AES_GMAC);
        assert!(handle_negotiate_response(resp.clone(), &[Dialect::SMB2_1]).is_err());
        let mut bad = resp;
        bad.contexts.remove(0);
        assert!(handle_negotiate_response(bad, &[Dialect::SMB3_1_1]).is_err());
    }
}
