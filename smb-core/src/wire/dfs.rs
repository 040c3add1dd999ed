//! DFS referrals (MS-DFSC): the REQ_GET_DFS_REFERRAL input of
//! FSCTL_DFS_GET_REFERRALS (2.2.2) and the RESP_GET_DFS_REFERRAL output
//! (2.2.4) with referral entries of versions 1 to 4 (2.2.5.1–2.2.5.4).
//!
//! Strings in v2–v4 entries sit after the entries, at offsets relative to
//! the start of the entry that names them; every offset is bounds-checked
//! and every string must end in a UTF-16 NUL inside the buffer.

use super::codec::{from_utf16le, utf16le, Reader, Writer};
use super::DecodeError;

/// The highest referral version we ask for (MS-DFSC 2.2.2 MaxReferralLevel).
pub const MAX_REFERRAL_LEVEL: u16 = 4;

/// ReferralHeaderFlags: the targets hold storage (a link's target share),
/// not another DFS root (MS-DFSC 2.2.4, `S`).
pub const HEADER_STORAGE_SERVERS: u32 = 0x0000_0002;
/// ReferralHeaderFlags: the targets are DFS root targets (`R`).
pub const HEADER_REFERRAL_SERVERS: u32 = 0x0000_0001;
/// ReferralEntryFlags of a v3/v4 entry: a domain or DC referral, whose
/// body is a name list instead of paths (MS-DFSC 2.2.5.3.2).
pub const ENTRY_NAME_LIST_REFERRAL: u16 = 0x0002;

/// The REQ_GET_DFS_REFERRAL buffer for `path` (`\server\share\...`,
/// one leading backslash, MS-DFSC 2.2.2): MaxReferralLevel and the
/// NUL-terminated UTF-16 RequestFileName.
pub fn encode_referral_request(path: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(4 + path.len() * 2);
    w.u16(MAX_REFERRAL_LEVEL);
    w.bytes(&utf16le(path));
    w.u16(0);
    w.into_vec()
}

/// One referral entry (DFS_REFERRAL_V1..V4), reduced to what a client
/// follows. A name-list (domain) referral has empty paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    /// VersionNumber (1–4).
    pub version: u16,
    /// ServerType (0x0001: the target is a DFS root).
    pub server_type: u16,
    /// ReferralEntryFlags.
    pub entry_flags: u16,
    /// TimeToLive in seconds (0 for v1, which has none).
    pub ttl: u32,
    /// DFSPath: the prefix the entry covers (v2–v4; empty for v1).
    pub dfs_path: String,
    /// NetworkAddress: the target, `\server\share[\path]` (v1: ShareName).
    pub network_address: String,
}

/// RESP_GET_DFS_REFERRAL (MS-DFSC 2.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralResponse {
    /// PathConsumed: bytes (UTF-16) of the request path the referral covers.
    pub path_consumed: u16,
    /// ReferralHeaderFlags.
    pub header_flags: u32,
    /// The entries, in the server's order of preference.
    pub referrals: Vec<Referral>,
}

impl ReferralResponse {
    /// Decodes the FSCTL output buffer. Unknown versions, a Size that does
    /// not fit, offsets outside the buffer and unterminated strings are
    /// errors; the number of entries is bounded by the buffer.
    pub fn decode(out: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(out);
        let path_consumed = r.u16("dfs referral: path consumed")?;
        let n = r.u16("dfs referral: number of referrals")?;
        let header_flags = r.u32("dfs referral: header flags")?;
        // An entry is at least 8 bytes: a count past that is a lie.
        if usize::from(n) > r.remaining() / 8 {
            return Err(DecodeError::new("dfs referral: too many referrals"));
        }
        let mut referrals = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let start = r.pos();
            let version = r.u16("dfs referral: version")?;
            let size = usize::from(r.u16("dfs referral: size")?);
            let server_type = r.u16("dfs referral: server type")?;
            let entry_flags = r.u16("dfs referral: entry flags")?;
            if size < 8 || size > out.len() - start {
                return Err(DecodeError::new("dfs referral: entry size"));
            }
            let entry = &out[start..start + size];
            let mut e = Reader::at(entry, 8, "dfs referral: entry")?;
            let (ttl, dfs_path, network_address) = match version {
                1 => {
                    let name = nul_string(entry, 8, "dfs referral v1: share name")?;
                    (0, String::new(), name)
                }
                2 => {
                    e.skip(4, "dfs referral v2: proximity")?;
                    let ttl = e.u32("dfs referral v2: ttl")?;
                    let (p, _alt, a) = offsets(&mut e, "dfs referral v2: offsets")?;
                    let path = string_at(out, start, p, "dfs referral v2: dfs path")?;
                    let addr = string_at(out, start, a, "dfs referral v2: network address")?;
                    (ttl, path, addr)
                }
                3 | 4 => {
                    let ttl = e.u32("dfs referral v3: ttl")?;
                    if entry_flags & ENTRY_NAME_LIST_REFERRAL != 0 {
                        // SpecialNameOffset, NumberOfExpandedNames,
                        // ExpandedNameOffset: a domain referral, which
                        // names no share to connect to.
                        e.skip(6, "dfs referral v3: name list")?;
                        (ttl, String::new(), String::new())
                    } else {
                        let (p, _alt, a) = offsets(&mut e, "dfs referral v3: offsets")?;
                        let path = string_at(out, start, p, "dfs referral v3: dfs path")?;
                        let addr = string_at(out, start, a, "dfs referral v3: network address")?;
                        (ttl, path, addr)
                    }
                }
                _ => return Err(DecodeError::new("dfs referral: unknown version")),
            };
            r = Reader::at(out, start + size, "dfs referral: next entry")?;
            referrals.push(Referral {
                version,
                server_type,
                entry_flags,
                ttl,
                dfs_path,
                network_address,
            });
        }
        Ok(Self {
            path_consumed,
            header_flags,
            referrals,
        })
    }

    /// Encodes a v3 response (tests and scripted servers): strings after
    /// the entries, offsets relative to each entry.
    pub fn encode_v3(&self, w: &mut Writer) {
        const V3_SIZE: usize = 34;
        let base = w.len();
        w.u16(self.path_consumed);
        w.u16(u16::try_from(self.referrals.len()).unwrap_or(u16::MAX));
        w.u32(self.header_flags);
        let entries_end = base + 8 + V3_SIZE * self.referrals.len();
        let mut strings = Vec::new();
        for (i, r) in self.referrals.iter().enumerate() {
            let entry = base + 8 + V3_SIZE * i;
            let rel = |abs: usize| u16::try_from(abs - entry).unwrap_or(u16::MAX);
            let path_off = entries_end + strings.len();
            strings.extend_from_slice(&utf16le(&r.dfs_path));
            strings.extend_from_slice(&[0, 0]);
            let addr_off = entries_end + strings.len();
            strings.extend_from_slice(&utf16le(&r.network_address));
            strings.extend_from_slice(&[0, 0]);
            w.u16(3);
            w.u16(V3_SIZE as u16);
            w.u16(r.server_type);
            w.u16(r.entry_flags & !ENTRY_NAME_LIST_REFERRAL);
            w.u32(r.ttl);
            w.u16(rel(path_off));
            w.u16(rel(path_off)); // DFSAlternatePath: the same
            w.u16(rel(addr_off));
            w.zeros(16); // ServiceSiteGuid
        }
        w.bytes(&strings);
    }
}

/// DFSPathOffset, DFSAlternatePathOffset, NetworkAddressOffset.
fn offsets(e: &mut Reader<'_>, what: &'static str) -> Result<(u16, u16, u16), DecodeError> {
    Ok((e.u16(what)?, e.u16(what)?, e.u16(what)?))
}

/// The NUL-terminated UTF-16 string at `entry + off` in `out`.
fn string_at(
    out: &[u8],
    entry: usize,
    off: u16,
    what: &'static str,
) -> Result<String, DecodeError> {
    nul_string(out, entry + usize::from(off), what)
}

/// The NUL-terminated UTF-16 string at `pos` in `buf`.
fn nul_string(buf: &[u8], pos: usize, what: &'static str) -> Result<String, DecodeError> {
    let tail = buf.get(pos..).ok_or_else(|| DecodeError::new(what))?;
    let end = tail
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .ok_or_else(|| DecodeError::new(what))?;
    from_utf16le(&tail[..end * 2], what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 referral for an `msdfs:127.0.0.1\ro` link, from our encoder
    /// (one copy of the path for DFSPath and DFSAlternatePath, which
    /// Samba writes twice: see [`CAPTURED`]).
    fn samba_v3() -> Vec<u8> {
        let path = "\\127.0.0.1\\share\\dfs\\link";
        let resp = ReferralResponse {
            path_consumed: u16::try_from(path.encode_utf16().count() * 2).unwrap(),
            header_flags: HEADER_STORAGE_SERVERS,
            referrals: vec![Referral {
                version: 3,
                server_type: 0,
                entry_flags: 0,
                ttl: 300,
                dfs_path: path.into(),
                network_address: "\\127.0.0.1\\ro".into(),
            }],
        };
        let mut w = Writer::new();
        resp.encode_v3(&mut w);
        w.into_vec()
    }

    /// Captured from the fixture's Samba 4.17: the referral for
    /// `\\127.0.0.1\share\cap-25911-0\link\sub\file.txt`, where `link`
    /// is `msdfs:127.0.0.1\ro` (v3; DFSPath and DFSAlternatePath are
    /// separate copies).
    const CAPTURED: &[u8] = include_bytes!("testdata/dfs_referral_v3.bin");

    #[test]
    fn captured_samba_referral() {
        let r = ReferralResponse::decode(CAPTURED).unwrap();
        let link = "\\127.0.0.1\\share\\cap-25911-0\\link";
        assert_eq!(
            usize::from(r.path_consumed),
            link.encode_utf16().count() * 2
        );
        assert_eq!(r.header_flags, HEADER_STORAGE_SERVERS);
        assert_eq!(r.referrals.len(), 1);
        let e = &r.referrals[0];
        assert_eq!((e.version, e.server_type, e.ttl), (3, 0, 600));
        assert_eq!(e.dfs_path, link);
        assert_eq!(e.network_address, "\\127.0.0.1\\ro");
        for cut in 0..CAPTURED.len() {
            assert!(
                ReferralResponse::decode(&CAPTURED[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn v3_round_trip_and_every_prefix_fails() {
        let b = samba_v3();
        let r = ReferralResponse::decode(&b).unwrap();
        assert_eq!(r.path_consumed, 50);
        assert_eq!(r.header_flags, HEADER_STORAGE_SERVERS);
        assert_eq!(r.referrals.len(), 1);
        assert_eq!(r.referrals[0].network_address, "\\127.0.0.1\\ro");
        assert_eq!(r.referrals[0].dfs_path, "\\127.0.0.1\\share\\dfs\\link");
        assert_eq!(r.referrals[0].ttl, 300);
        for cut in 0..b.len() {
            assert!(ReferralResponse::decode(&b[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn v4_v2_and_v1_entries() {
        // Two entries in one buffer: v4 (same layout as v3) then v1.
        let mut b = samba_v3();
        b[2] = 2; // NumberOfReferrals
        b[8] = 4; // first entry: v4
                  // The strings follow the first entry; a v1 entry goes at the end
                  // and the v4 offsets still point at them.
        let mut v1 = vec![1, 0, 0, 0, 0, 0, 0, 0];
        v1.extend_from_slice(&utf16le("\\srv\\x"));
        v1.extend_from_slice(&[0, 0]);
        let len = v1.len() as u16;
        v1[2..4].copy_from_slice(&len.to_le_bytes());
        // Insert v1 right after the first entry (offset 8 + 34), moving
        // the strings: patch the v4 offsets by the inserted length.
        let at = 8 + 34;
        for o in [at - 22, at - 20, at - 18] {
            let v = u16::from_le_bytes([b[o], b[o + 1]]) + len;
            b[o..o + 2].copy_from_slice(&v.to_le_bytes());
        }
        b.splice(at..at, v1);
        let r = ReferralResponse::decode(&b).unwrap();
        assert_eq!(r.referrals[0].version, 4);
        assert_eq!(r.referrals[0].network_address, "\\127.0.0.1\\ro");
        assert_eq!(r.referrals[1].version, 1);
        assert_eq!(r.referrals[1].network_address, "\\srv\\x");

        // v2: Proximity before TimeToLive, then the three offsets.
        let mut v2 = vec![0u8; 8];
        v2[0..2].copy_from_slice(&50u16.to_le_bytes());
        v2[2] = 1;
        let mut e = vec![
            2, 0, 22, 0, 1, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 22, 0, 22, 0, 28, 0,
        ];
        e.extend_from_slice(&utf16le("\\a"));
        e.extend_from_slice(&[0, 0]);
        e.extend_from_slice(&utf16le("\\b\\c"));
        e.extend_from_slice(&[0, 0]);
        v2.extend_from_slice(&e);
        let r = ReferralResponse::decode(&v2).unwrap();
        assert_eq!(r.referrals[0].ttl, 60);
        assert_eq!(r.referrals[0].dfs_path, "\\a");
        assert_eq!(r.referrals[0].network_address, "\\b\\c");
    }

    #[test]
    fn hostile_entries_are_refused() {
        let good = samba_v3();
        // Unknown version.
        let mut b = good.clone();
        b[8] = 9;
        assert!(ReferralResponse::decode(&b).is_err());
        // Size past the buffer, and below the fixed part.
        let mut b = good.clone();
        b[10] = 0xff;
        b[11] = 0xff;
        assert!(ReferralResponse::decode(&b).is_err());
        let mut b = good.clone();
        b[10] = 4;
        b[11] = 0;
        assert!(ReferralResponse::decode(&b).is_err());
        // A count far beyond what the buffer can hold.
        let mut b = good.clone();
        b[2] = 0xff;
        b[3] = 0xff;
        assert!(ReferralResponse::decode(&b).is_err());
        // An offset out of the buffer.
        let mut b = good.clone();
        b[8 + 16] = 0xff;
        b[8 + 17] = 0xff;
        assert!(ReferralResponse::decode(&b).is_err());
        // No terminating NUL.
        let mut b = good;
        let n = b.len();
        b[n - 2] = b'x';
        assert!(ReferralResponse::decode(&b).is_err());
    }

    #[test]
    fn request_layout() {
        let b = encode_referral_request("\\s\\x");
        assert_eq!(
            b,
            [4, 0, b'\\', 0, b's', 0, b'\\', 0, b'x', 0, 0, 0].to_vec()
        );
    }
}
