//! NTLMv2 (MS-NLMP): the three messages (2.2.1.1 NEGOTIATE, 2.2.1.2
//! CHALLENGE, 2.2.1.3 AUTHENTICATE), AV pairs (2.2.2.1), the NTLMv2
//! response and keys (3.3.2), key exchange (3.1.5.1.2, 3.4.5.1), the MIC
//! (3.1.5.1.2) and message signatures with extended session security
//! (3.4.4.2, 3.4.5.2, 3.4.5.3). NTLMv1 and LM are never produced.
//!
//! Everything here is pure: randomness and time come in as parameters.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use rc4::consts::U16;
use rc4::{KeyInit, StreamCipher};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::AuthError;

type HmacMd5 = Hmac<Md5>;
/// RC4 (RustCrypto `rc4`, state wiped on drop) with the 128-bit keys of
/// NTLM key exchange and sealing.
type Rc4 = rc4::Rc4<U16>;

/// NTLMSSP negotiate flags (MS-NLMP 2.2.2.5) this module uses.
pub mod flags {
    /// NTLMSSP_NEGOTIATE_UNICODE.
    pub const UNICODE: u32 = 0x0000_0001;
    /// NTLMSSP_REQUEST_TARGET.
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    /// NTLMSSP_NEGOTIATE_SIGN.
    pub const SIGN: u32 = 0x0000_0010;
    /// NTLMSSP_NEGOTIATE_SEAL.
    pub const SEAL: u32 = 0x0000_0020;
    /// NTLMSSP_NEGOTIATE_NTLM.
    pub const NTLM: u32 = 0x0000_0200;
    /// NTLMSSP_NEGOTIATE_ANONYMOUS.
    pub const ANONYMOUS: u32 = 0x0000_0800;
    /// NTLMSSP_NEGOTIATE_ALWAYS_SIGN.
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    /// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY.
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    /// NTLMSSP_NEGOTIATE_TARGET_INFO.
    pub const TARGET_INFO: u32 = 0x0080_0000;
    /// NTLMSSP_NEGOTIATE_VERSION.
    pub const VERSION: u32 = 0x0200_0000;
    /// NTLMSSP_NEGOTIATE_128.
    pub const N128: u32 = 0x2000_0000;
    /// NTLMSSP_NEGOTIATE_KEY_EXCH.
    pub const KEY_EXCH: u32 = 0x4000_0000;
    /// NTLMSSP_NEGOTIATE_56.
    pub const N56: u32 = 0x8000_0000;
}

/// The flags our NEGOTIATE_MESSAGE requests (what Windows 10 clients send,
/// less OEM and LM_KEY): 0xE208_8235.
pub const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// VERSION (MS-NLMP 2.2.2.10): 10.0 build 20348, NTLMSSP_REVISION_W2K3.
const VERSION: [u8; 8] = [10, 0, 0x7c, 0x4f, 0, 0, 0, 0x0f];
/// Offset of the MIC in our AUTHENTICATE_MESSAGE (fixed fields + VERSION).
const MIC_OFFSET: usize = 72;
const AUTH_HEADER_LEN: usize = MIC_OFFSET + 16;

/// AV pair ids (MS-NLMP 2.2.2.1).
pub mod av {
    /// MsvAvEOL.
    pub const EOL: u16 = 0;
    /// MsvAvNbComputerName.
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// MsvAvNbDomainName.
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// MsvAvFlags.
    pub const FLAGS: u16 = 6;
    /// MsvAvTimestamp.
    pub const TIMESTAMP: u16 = 7;
}

/// MsvAvFlags bit: the AUTHENTICATE_MESSAGE carries a MIC.
const AV_FLAG_MIC: u32 = 0x0000_0002;

/// One AV pair, borrowed from a target-info buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvPair<'a> {
    /// AvId.
    pub id: u16,
    /// The value bytes.
    pub value: &'a [u8],
}

/// Parses a target-info buffer up to (not including) MsvAvEOL, which must be present.
pub fn parse_av_pairs(mut buf: &[u8]) -> Result<Vec<AvPair<'_>>, AuthError> {
    let mut out = Vec::new();
    loop {
        let id = le16(buf, 0).ok_or(AuthError::Malformed("NTLM: truncated AV pair"))?;
        let len = le16(buf, 2).ok_or(AuthError::Malformed("NTLM: truncated AV pair"))?;
        let value = buf
            .get(4..4 + usize::from(len))
            .ok_or(AuthError::Malformed("NTLM: AV pair overruns target info"))?;
        if id == av::EOL {
            return Ok(out);
        }
        if out.len() >= 64 {
            return Err(AuthError::Malformed("NTLM: too many AV pairs"));
        }
        out.push(AvPair { id, value });
        buf = buf.get(4 + usize::from(len)..).unwrap_or_default();
    }
}

/// Builds a NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) with no domain or workstation.
pub fn negotiate_message(flags: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0; 16]); // DomainNameFields, WorkstationFields
    m.extend_from_slice(&VERSION);
    m
}

/// A decoded CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2); borrows from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// NegotiateFlags.
    pub flags: u32,
    /// ServerChallenge.
    pub server_challenge: [u8; 8],
    /// TargetName (UTF-16LE or OEM), possibly empty.
    pub target_name: &'a [u8],
    /// TargetInfo: the raw AV pairs, validated to end with MsvAvEOL (or empty).
    pub target_info: &'a [u8],
}

impl<'a> Challenge<'a> {
    /// Decodes and validates a CHALLENGE_MESSAGE.
    pub fn decode(msg: &'a [u8]) -> Result<Self, AuthError> {
        if msg.get(..8) != Some(&SIGNATURE[..]) {
            return Err(AuthError::Malformed("NTLM: bad CHALLENGE signature"));
        }
        if le32(msg, 8) != Some(2) {
            return Err(AuthError::Malformed("NTLM: not a CHALLENGE_MESSAGE"));
        }
        let target_name = field(msg, 12)?;
        let flags = le32(msg, 20).ok_or(AuthError::Malformed("NTLM: truncated CHALLENGE"))?;
        let server_challenge: [u8; 8] = msg
            .get(24..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(AuthError::Malformed("NTLM: truncated CHALLENGE"))?;
        // TargetInfoFields (40..48) are absent from very old servers' messages.
        let target_info = if msg.len() >= 48 {
            field(msg, 40)?
        } else {
            &[]
        };
        if !target_info.is_empty() {
            parse_av_pairs(target_info)?;
        }
        Ok(Self {
            flags,
            server_challenge,
            target_name,
            target_info,
        })
    }

    /// The MsvAvTimestamp value, if the server sent one.
    pub fn timestamp(&self) -> Option<u64> {
        let pairs = parse_av_pairs(self.target_info).ok()?;
        let ts = pairs.iter().find(|p| p.id == av::TIMESTAMP)?;
        ts.value.try_into().ok().map(u64::from_le_bytes)
    }
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) + UserDom)).
pub fn ntowf_v2(user: &str, domain: &str, password: &str) -> [u8; 16] {
    let mut pw = utf16le(password);
    let mut nt_hash: [u8; 16] = Md4::digest(&pw).into();
    pw.zeroize();
    let mut mac = hmac_md5(&nt_hash);
    nt_hash.zeroize();
    mac.update(&utf16le(&user.to_uppercase()));
    mac.update(&utf16le(domain));
    mac.finalize().into_bytes().into()
}

/// The outputs of the NTLMv2 computation (MS-NLMP 3.3.2).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct V2Response {
    /// NtChallengeResponse = NTProofStr || temp.
    pub nt_response: Vec<u8>,
    /// LmChallengeResponse (LMv2, or Z(24) when the server sent MsvAvTimestamp).
    pub lm_response: Vec<u8>,
    /// SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr); also the KeyExchangeKey.
    pub session_base_key: [u8; 16],
}

/// Computes the NTLMv2 and LMv2 responses for `response_key` (NTOWFv2).
///
/// `server_name` is the AV-pair buffer placed in the client blob (it must
/// end with MsvAvEOL); `time` is a FILETIME.
pub fn v2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    time: u64,
    server_name: &[u8],
    lm_zero: bool,
) -> V2Response {
    // temp = Responserversion, HiResponserversion, Z(6), Time, ClientChallenge, Z(4), ServerName, Z(4)
    let mut temp = Vec::with_capacity(28 + server_name.len() + 4);
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(server_name);
    temp.extend_from_slice(&[0; 4]);

    let mut mac = hmac_md5(response_key);
    mac.update(server_challenge);
    mac.update(&temp);
    let nt_proof: [u8; 16] = mac.finalize().into_bytes().into();

    let mut nt_response = nt_proof.to_vec();
    nt_response.extend_from_slice(&temp);

    let lm_response = if lm_zero {
        vec![0; 24]
    } else {
        let mut mac = hmac_md5(response_key);
        mac.update(server_challenge);
        mac.update(client_challenge);
        let mut lm = mac.finalize().into_bytes().to_vec();
        lm.extend_from_slice(client_challenge);
        lm
    };

    let mut mac = hmac_md5(response_key);
    mac.update(&nt_proof);
    let session_base_key = mac.finalize().into_bytes().into();
    V2Response {
        nt_response,
        lm_response,
        session_base_key,
    }
}

/// The fields of an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3), before the MIC.
#[derive(Debug)]
pub struct AuthenticateFields<'a> {
    /// NegotiateFlags.
    pub flags: u32,
    /// LmChallengeResponse.
    pub lm_response: &'a [u8],
    /// NtChallengeResponse.
    pub nt_response: &'a [u8],
    /// DomainName (UTF-16LE).
    pub domain: &'a [u8],
    /// UserName (UTF-16LE).
    pub user: &'a [u8],
    /// Workstation (UTF-16LE).
    pub workstation: &'a [u8],
    /// EncryptedRandomSessionKey (empty without key exchange).
    pub encrypted_session_key: &'a [u8],
}

impl AuthenticateFields<'_> {
    /// Encodes the message with VERSION and a zero MIC at offset 72.
    pub fn encode(&self) -> Vec<u8> {
        let payloads = [
            self.lm_response,
            self.nt_response,
            self.domain,
            self.user,
            self.workstation,
            self.encrypted_session_key,
        ];
        let total: usize = payloads.iter().map(|p| p.len()).sum();
        let mut m = Vec::with_capacity(AUTH_HEADER_LEN + total);
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        // Payload order: domain, user, workstation, LM, NT, key (as Windows does).
        let order = [2usize, 3, 4, 0, 1, 5];
        let mut offsets = [0u32; 6];
        let mut off = AUTH_HEADER_LEN;
        for &i in &order {
            offsets[i] = off as u32;
            off += payloads[i].len();
        }
        for (i, p) in payloads.iter().enumerate() {
            // Lengths are ours and bounded by the u16 fields' range in practice.
            let len = p.len() as u16;
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&offsets[i].to_le_bytes());
        }
        m.extend_from_slice(&self.flags.to_le_bytes());
        m.extend_from_slice(&VERSION);
        m.extend_from_slice(&[0; 16]);
        for &i in &order {
            m.extend_from_slice(payloads[i]);
        }
        m
    }
}

/// Writes the MIC (MS-NLMP 3.1.5.1.2) into an encoded AUTHENTICATE_MESSAGE
/// whose MIC field is zero.
pub fn set_mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    auth: &mut [u8],
) {
    let mut mac = hmac_md5(exported_session_key);
    mac.update(negotiate);
    mac.update(challenge);
    mac.update(auth);
    let mic = mac.finalize().into_bytes();
    if let Some(dst) = auth.get_mut(MIC_OFFSET..AUTH_HEADER_LEN) {
        dst.copy_from_slice(&mic);
    }
}

/// Builds the target info for the AUTHENTICATE_MESSAGE's client blob
/// (MS-NLMP 3.1.5.1.2): the server's pairs, with MsvAvFlags gaining the MIC
/// bit when `mic` is set, then MsvAvEOL.
pub fn client_target_info(server_info: &[u8], mic: bool) -> Result<Vec<u8>, AuthError> {
    let pairs = if server_info.is_empty() {
        Vec::new()
    } else {
        parse_av_pairs(server_info)?
    };
    let mut out = Vec::with_capacity(server_info.len() + 12);
    let mut had_flags = false;
    for p in &pairs {
        if p.id == av::FLAGS {
            had_flags = true;
            let v = <[u8; 4]>::try_from(p.value)
                .map(u32::from_le_bytes)
                .map_err(|_| AuthError::Malformed("NTLM: MsvAvFlags length"))?;
            let v = if mic { v | AV_FLAG_MIC } else { v };
            push_av(&mut out, av::FLAGS, &v.to_le_bytes());
        } else {
            push_av(&mut out, p.id, p.value);
        }
    }
    if mic && !had_flags {
        push_av(&mut out, av::FLAGS, &AV_FLAG_MIC.to_le_bytes());
    }
    push_av(&mut out, av::EOL, &[]);
    Ok(out)
}

fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    // AV values come from a u16-length field or are ours (at most 4 bytes).
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// One direction of NTLM message integrity with extended session security
/// (MS-NLMP 3.4.4.2): a signing key, the RC4 sealing handle and a sequence
/// number. Used for the SPNEGO mechListMIC.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SignState {
    sign_key: [u8; 16],
    /// Wipes its own state on drop.
    #[zeroize(skip)]
    seal: Rc4,
    key_exch: bool,
    seq: u32,
}

impl std::fmt::Debug for SignState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignState")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Which end of the connection a [`SignState`] signs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

impl SignState {
    /// SIGNKEY and SEALKEY (MS-NLMP 3.4.5.2, 3.4.5.3) for 128-bit keys.
    pub fn new(exported_session_key: &[u8; 16], dir: Direction, key_exch: bool) -> Self {
        let (sign_magic, seal_magic): (&[u8], &[u8]) = match dir {
            Direction::ClientToServer => (
                b"session key to client-to-server signing key magic constant\0",
                b"session key to client-to-server sealing key magic constant\0",
            ),
            Direction::ServerToClient => (
                b"session key to server-to-client signing key magic constant\0",
                b"session key to server-to-client sealing key magic constant\0",
            ),
        };
        let sign_key = Md5::new()
            .chain_update(exported_session_key)
            .chain_update(sign_magic)
            .finalize()
            .into();
        let mut seal_key: [u8; 16] = Md5::new()
            .chain_update(exported_session_key)
            .chain_update(seal_magic)
            .finalize()
            .into();
        let seal = Rc4::new((&seal_key).into());
        seal_key.zeroize();
        Self {
            sign_key,
            seal,
            key_exch,
            seq: 0,
        }
    }

    /// MAC (MS-NLMP 3.4.4.2): the 16-byte NTLMSSP_MESSAGE_SIGNATURE of `msg`;
    /// advances the sequence number and the RC4 state.
    pub fn sign(&mut self, msg: &[u8]) -> [u8; 16] {
        let mut mac = hmac_md5(&self.sign_key);
        mac.update(&self.seq.to_le_bytes());
        mac.update(msg);
        let digest = mac.finalize().into_bytes();
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&digest[..8]);
        if self.key_exch {
            self.seal.apply_keystream(&mut checksum);
        }
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&1u32.to_le_bytes());
        out[4..12].copy_from_slice(&checksum);
        out[12..].copy_from_slice(&self.seq.to_le_bytes());
        self.seq = self.seq.wrapping_add(1);
        out
    }
}

/// RC4K (MS-NLMP 6): one-shot RC4 of `data` under `key`.
pub fn rc4k(key: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    Rc4::new(key.into()).apply_keystream(&mut out);
    out
}

pub(crate) fn hmac_md5(key: &[u8]) -> HmacMd5 {
    // HMAC accepts keys of any length.
    <HmacMd5 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn le16(buf: &[u8], at: usize) -> Option<u16> {
    buf.get(at..at + 2)?.try_into().ok().map(u16::from_le_bytes)
}

fn le32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4)?.try_into().ok().map(u32::from_le_bytes)
}

/// A (Len, MaxLen, BufferOffset) field at `at`, resolved against `msg`.
fn field(msg: &[u8], at: usize) -> Result<&[u8], AuthError> {
    let len = le16(msg, at).ok_or(AuthError::Malformed("NTLM: truncated field"))?;
    let off = le32(msg, at + 4).ok_or(AuthError::Malformed("NTLM: truncated field"))?;
    if len == 0 {
        return Ok(&[]);
    }
    let start = usize::try_from(off).map_err(|_| AuthError::Malformed("NTLM: field offset"))?;
    let end = start
        .checked_add(usize::from(len))
        .ok_or(AuthError::Malformed("NTLM: field offset"))?;
    msg.get(start..end)
        .ok_or(AuthError::Malformed("NTLM: field overruns message"))
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    // MS-NLMP 4.2.1 common values and 4.2.4 NTLMv2 results.
    const USER: &str = "User";
    const DOMAIN: &str = "Domain";
    const PASSWORD: &str = "Password";
    const SERVER_CHALLENGE: [u8; 8] = hex!("0123456789abcdef");
    const CLIENT_CHALLENGE: [u8; 8] = hex!("aaaaaaaaaaaaaaaa");
    const RANDOM_SESSION_KEY: [u8; 16] = hex!("55555555555555555555555555555555");
    /// 4.2.4: AV pairs NetBIOS server "Server", NetBIOS domain "Domain", EOL.
    const SERVER_NAME: &[u8] =
        &hex!("02000c0044006f006d00610069006e0001000c005300650072007600650072000000 0000");

    #[test]
    fn ms_nlmp_4_2_4_ntlmv2() {
        let key = ntowf_v2(USER, DOMAIN, PASSWORD);
        assert_eq!(key, hex!("0c868a403bfd7a93a3001ef22ef02e3f"));
        let r = v2_response(
            &key,
            &SERVER_CHALLENGE,
            &CLIENT_CHALLENGE,
            0,
            SERVER_NAME,
            false,
        );
        assert_eq!(
            r.lm_response,
            hex!("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            r.nt_response[..16],
            hex!("68cd0ab851e51c96aabc927bebef6a1c")
        );
        assert_eq!(r.session_base_key, hex!("8de40ccadbc14a82f15cb0ad0de95ca3"));
        // KeyExchangeKey = SessionBaseKey for NTLMv2.
        assert_eq!(
            rc4k(&r.session_base_key, &RANDOM_SESSION_KEY),
            hex!("c5dad2544fc9799094ce1ce90bc9d03e")
        );
        let z = v2_response(
            &key,
            &SERVER_CHALLENGE,
            &CLIENT_CHALLENGE,
            0,
            SERVER_NAME,
            true,
        );
        assert_eq!(z.lm_response, [0; 24]);
    }

    #[test]
    fn rc4_known_answer() {
        // RFC 6229 section 2, 128-bit key 0x0102..10: key stream at offset 0
        // and, continued in pieces, at offset 1536.
        let key = hex!("0102030405060708090a0b0c0d0e0f10");
        assert_eq!(
            rc4k(&key, &[0; 16]),
            hex!("9ac7cc9a609d1ef7b2932899cde41b97")
        );
        let mut rc4 = Rc4::new((&key).into());
        let mut skip = [0u8; 1000];
        rc4.apply_keystream(&mut skip);
        rc4.apply_keystream(&mut skip[..536]);
        let mut ks = [0u8; 16];
        rc4.apply_keystream(&mut ks);
        assert_eq!(ks, hex!("ffa0b514647ec04f6306b892ae661181"));
    }

    #[test]
    fn ms_nlmp_4_2_4_4_sealed_signature() {
        // SEAL of "Plaintext" (UTF-16LE) under the 4.2.4 keys with key
        // exchange: RC4 encrypts the message, then the checksum continues the
        // same RC4 stream.
        let mut s = SignState::new(&RANDOM_SESSION_KEY, Direction::ClientToServer, true);
        let plain = utf16le("Plaintext");
        let mut sealed = plain.clone();
        s.seal.apply_keystream(&mut sealed);
        assert_eq!(sealed, hex!("54e50165bf1936dc996020c1811b0f06fb5f"));
        assert_eq!(s.sign(&plain), hex!("010000007fb38ec5c55d497600000000"));
    }

    #[test]
    fn av_pairs_parse_and_client_info() {
        let pairs = parse_av_pairs(SERVER_NAME).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].id, av::NB_COMPUTER_NAME);
        let info = client_target_info(SERVER_NAME, true).unwrap();
        let pairs = parse_av_pairs(&info).unwrap();
        assert_eq!(pairs.last().unwrap().id, av::FLAGS);
        assert_eq!(pairs.last().unwrap().value, AV_FLAG_MIC.to_le_bytes());
        for n in 0..SERVER_NAME.len() {
            assert!(parse_av_pairs(&SERVER_NAME[..n]).is_err(), "prefix {n}");
        }
    }

    fn challenge_message() -> Vec<u8> {
        let name = utf16le("Server");
        let mut m = Vec::new();
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&(name.len() as u16).to_le_bytes());
        m.extend_from_slice(&(name.len() as u16).to_le_bytes());
        m.extend_from_slice(&56u32.to_le_bytes());
        m.extend_from_slice(&0xe28a_8233u32.to_le_bytes());
        m.extend_from_slice(&SERVER_CHALLENGE);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(SERVER_NAME.len() as u16).to_le_bytes());
        m.extend_from_slice(&(SERVER_NAME.len() as u16).to_le_bytes());
        m.extend_from_slice(&((56 + name.len()) as u32).to_le_bytes());
        m.extend_from_slice(&VERSION);
        m.extend_from_slice(&name);
        m.extend_from_slice(SERVER_NAME);
        m
    }

    #[test]
    fn challenge_decodes_and_truncations_fail() {
        let m = challenge_message();
        let c = Challenge::decode(&m).unwrap();
        assert_eq!(c.server_challenge, SERVER_CHALLENGE);
        assert_eq!(c.target_name, utf16le("Server"));
        assert_eq!(c.target_info, SERVER_NAME);
        assert_eq!(c.timestamp(), None);
        for n in 0..m.len() {
            assert!(Challenge::decode(&m[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn hostile_challenge_offsets() {
        let mut m = challenge_message();
        m[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Challenge::decode(&m).is_err());
    }

    #[test]
    fn authenticate_layout_and_mic() {
        let f = AuthenticateFields {
            flags: CLIENT_FLAGS,
            lm_response: &[1; 24],
            nt_response: &[2; 40],
            domain: &utf16le("D"),
            user: &utf16le("U"),
            workstation: &utf16le("W"),
            encrypted_session_key: &[3; 16],
        };
        let mut m = f.encode();
        assert_eq!(le32(&m, 8), Some(3));
        // NtChallengeResponseFields at 20: length 40, offset after D, U, W, LM.
        assert_eq!(le16(&m, 20), Some(40));
        assert_eq!(le32(&m, 24), Some((AUTH_HEADER_LEN + 6 + 24) as u32));
        assert_eq!(m[AUTH_HEADER_LEN..AUTH_HEADER_LEN + 2], utf16le("D")[..]);
        let before = m.clone();
        set_mic(&[7; 16], b"neg", b"chal", &mut m);
        assert_ne!(
            m[MIC_OFFSET..AUTH_HEADER_LEN],
            before[MIC_OFFSET..AUTH_HEADER_LEN]
        );
        assert_eq!(m[..MIC_OFFSET], before[..MIC_OFFSET]);
    }

    #[test]
    fn sign_state_sequence_and_version() {
        let mut s = SignState::new(&RANDOM_SESSION_KEY, Direction::ClientToServer, true);
        let a = s.sign(b"hello");
        let b = s.sign(b"hello");
        assert_eq!(a[..4], 1u32.to_le_bytes());
        assert_eq!(a[12..], 0u32.to_le_bytes());
        assert_eq!(b[12..], 1u32.to_le_bytes());
        assert_ne!(a[4..12], b[4..12]);
    }
}
