//! Authentication mechanisms inside SPNEGO (MS-SPNG, RFC 4178): pure, no I/O.
//!
//! [`Mechanism`] is the seam SESSION_SETUP drives (MS-SMB2 3.2.4.2.3): one
//! security blob in, the next one out, for as many legs as the server asks
//! for with STATUS_MORE_PROCESSING_REQUIRED, and a session key at the end.
//! [`Ntlm`] (NTLMv2 below) is one implementation.
//!
//! [`Authenticator`] produces and consumes the SESSION_SETUP security blobs
//! (MS-SMB2 3.2.4.2.3, 3.2.5.3):
//!
//! 1. [`Authenticator::initial_token`]: NegTokenInit, mechTypes = \[NTLMSSP\],
//!    carrying the NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).
//! 2. [`Authenticator::handle_challenge`]: the server's NegTokenResp with the
//!    CHALLENGE_MESSAGE in, a NegTokenResp with the AUTHENTICATE_MESSAGE (NTLMv2
//!    response, key exchange, MIC) and the mechListMIC out.
//! 3. [`Authenticator::handle_final`]: the server's accept-completed, whose
//!    mechListMIC is verified when present.
//!
//! Choices, for Samba 4.x and Windows alike: the client always asks for
//! NTLMSSP_NEGOTIATE_KEY_EXCH (the server then cannot learn the session key
//! from a captured exchange alone) with a caller-supplied random
//! ExportedSessionKey, always sends a MIC (MsvAvFlags bit 0x2), and therefore
//! always sends the SPNEGO mechListMIC, which Samba requires once the MIC is
//! present (MS-SPNG 3.1.5.1). If the server sent MsvAvTimestamp, its value is
//! used in the NTLMv2 blob and the LmChallengeResponse is Z(24) (MS-NLMP
//! 3.1.5.1.2). Anonymous logon sends an empty NtChallengeResponse and
//! LmChallengeResponse Z(1), with no key exchange, MIC or mechListMIC, and
//! yields no session key.

mod der;
pub mod fuzz;
pub mod kerberos;
pub mod ntlm;
pub mod spnego;

use std::fmt;

use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, Zeroizing};

use self::ntlm::{flags, Challenge, Direction, SignState};
use self::spnego::{NegState, NegTokenInit, NegTokenResp, NTLMSSP_OID};

/// Errors of the auth layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The server's token could not be decoded.
    #[error("malformed security token: {0}")]
    Malformed(&'static str),
    /// The server rejected the authentication (SPNEGO negState reject).
    #[error("the server rejected the authentication")]
    Rejected,
    /// The server asked for something this client does not do.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The server's mechListMIC did not verify.
    #[error("the server's SPNEGO mechListMIC did not verify")]
    BadMechListMic,
    /// Kerberos (MIT GSS-API) failed; the message says why in MIT's words
    /// and what to do.
    #[error("{0}")]
    Kerberos(String),
    /// A method was called out of order.
    #[error("authentication step called out of order")]
    OutOfOrder,
}

/// What one [`Mechanism::step`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this security blob; the mechanism expects an answer.
    Continue(Vec<u8>),
    /// The mechanism is complete. `Some` is a last blob to send (the server
    /// then answers STATUS_SUCCESS and nothing more is fed back).
    Done(Option<Vec<u8>>),
}

/// One authentication mechanism behind SPNEGO, driven by SESSION_SETUP.
///
/// `step(None)` makes the first blob; each later call gets the server's
/// SecurityBuffer: from a STATUS_MORE_PROCESSING_REQUIRED response (the
/// mechanism must then [`Step::Continue`], or finish with a last blob) or
/// from the final STATUS_SUCCESS (it must then be [`Step::Done`]`(None)`).
/// Randomness, time and credentials come in at construction, so a
/// mechanism is a plain state machine that tests can script.
pub trait Mechanism: Send + fmt::Debug {
    /// The name reports show ("NTLMv2", "Kerberos").
    fn name(&self) -> &'static str;
    /// One leg of the exchange (see the trait's documentation).
    fn step(&mut self, token: Option<&[u8]>) -> Result<Step, AuthError>;
    /// The session key (MS-SMB2 3.2.5.3.1 Session.SessionKey, before it is
    /// cut or padded to 16 bytes) once the exchange is complete; `None` for
    /// anonymous.
    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>>;
}

/// NTLMv2 as a [`Mechanism`]: an [`Authenticator`] with the NEGOTIATE
/// response's hint and the fresh random values its second leg needs.
#[derive(Debug)]
pub struct Ntlm {
    auth: Authenticator,
    hint: Vec<u8>,
    now_filetime: u64,
    client_challenge: [u8; 8],
    exported_session_key: Zeroizing<[u8; 16]>,
}

impl Ntlm {
    /// `hint` is the NEGOTIATE response's SecurityBuffer (may be empty);
    /// `client_challenge` and `exported_session_key` must be fresh random
    /// values, `now_filetime` the time as a FILETIME.
    pub fn new(
        auth: Authenticator,
        hint: &[u8],
        now_filetime: u64,
        client_challenge: [u8; 8],
        exported_session_key: [u8; 16],
    ) -> Self {
        Self {
            auth,
            hint: hint.to_vec(),
            now_filetime,
            client_challenge,
            exported_session_key: Zeroizing::new(exported_session_key),
        }
    }
}

impl Mechanism for Ntlm {
    fn name(&self) -> &'static str {
        "NTLMv2"
    }

    fn step(&mut self, token: Option<&[u8]>) -> Result<Step, AuthError> {
        match (self.auth.step, token) {
            (Phase::Start, None) => Ok(Step::Continue(self.auth.initial_token(&self.hint)?)),
            (Phase::ExpectChallenge, Some(t)) => Ok(Step::Continue(self.auth.handle_challenge(
                t,
                self.now_filetime,
                self.client_challenge,
                *self.exported_session_key,
            )?)),
            (Phase::ExpectFinal, Some(t)) => {
                self.auth.handle_final(t)?;
                Ok(Step::Done(None))
            }
            _ => Err(AuthError::OutOfOrder),
        }
    }

    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.auth
            .session_key
            .as_ref()
            .map(|k| Zeroizing::new(k.to_vec()))
    }
}

/// Where the NTLM exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    ExpectChallenge,
    ExpectFinal,
    Done,
}

/// A SPNEGO-wrapped NTLMv2 client (MS-SPNG + MS-NLMP). Never NTLMv1/LM.
///
/// The password is turned into the NTOWFv2 response key at construction and
/// not kept; keys are zeroized on drop and redacted from `Debug`.
pub struct Authenticator {
    user: String,
    domain: String,
    workstation: String,
    /// NTOWFv2(password, user, domain); `None` for anonymous.
    response_key: Option<Zeroizing<[u8; 16]>>,
    step: Phase,
    negotiate_msg: Vec<u8>,
    mech_types: Vec<u8>,
    session_key: Option<Zeroizing<[u8; 16]>>,
    /// Verifies the server's mechListMIC; set when we sent ours.
    server_sign: Option<SignState>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("workstation", &self.workstation)
            .field("anonymous", &self.response_key.is_none())
            .field("step", &self.step)
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// A client that logs on as `domain\user` with `password`, naming itself `workstation`.
    pub fn new(user: &str, domain: &str, password: &str, workstation: &str) -> Self {
        let key = ntlm::ntowf_v2(user, domain, password);
        Self::build(user, domain, workstation, Some(Zeroizing::new(key)))
    }

    /// A client for explicit anonymous (null session) logon.
    pub fn anonymous() -> Self {
        Self::build("", "", "", None)
    }

    fn build(
        user: &str,
        domain: &str,
        workstation: &str,
        key: Option<Zeroizing<[u8; 16]>>,
    ) -> Self {
        Self {
            user: user.to_owned(),
            domain: domain.to_owned(),
            workstation: workstation.to_owned(),
            response_key: key,
            step: Phase::Start,
            negotiate_msg: Vec::new(),
            mech_types: spnego::ntlm_mech_type_list(),
            session_key: None,
            server_sign: None,
        }
    }

    /// First security blob for SESSION_SETUP: SPNEGO NegTokenInit
    /// (mechTypes = \[NTLMSSP\]) carrying the NTLM NEGOTIATE_MESSAGE.
    ///
    /// `server_token` is the SecurityBuffer of the NEGOTIATE response (may be
    /// empty); if present it must be a NegTokenInit offering NTLMSSP.
    pub fn initial_token(&mut self, server_token: &[u8]) -> Result<Vec<u8>, AuthError> {
        if self.step != Phase::Start {
            return Err(AuthError::OutOfOrder);
        }
        if !server_token.is_empty() && !NegTokenInit::decode(server_token)?.offers_ntlmssp() {
            return Err(AuthError::Unsupported("the server does not offer NTLMSSP"));
        }
        self.negotiate_msg = ntlm::negotiate_message(ntlm::CLIENT_FLAGS);
        self.step = Phase::ExpectChallenge;
        Ok(spnego::encode_init(&self.mech_types, &self.negotiate_msg))
    }

    /// Handles the server's NegTokenResp carrying the CHALLENGE_MESSAGE and
    /// returns the NegTokenResp carrying the AUTHENTICATE_MESSAGE and the
    /// mechListMIC.
    ///
    /// `now_filetime` is used when the server sent no MsvAvTimestamp;
    /// `client_challenge` and `exported_session_key` must be fresh random
    /// values.
    pub fn handle_challenge(
        &mut self,
        server_token: &[u8],
        now_filetime: u64,
        client_challenge: [u8; 8],
        exported_session_key: [u8; 16],
    ) -> Result<Vec<u8>, AuthError> {
        let exported = Zeroizing::new(exported_session_key);
        if self.step != Phase::ExpectChallenge {
            return Err(AuthError::OutOfOrder);
        }
        let resp = NegTokenResp::decode(server_token)?;
        match resp.neg_state {
            Some(NegState::Reject) => return Err(AuthError::Rejected),
            Some(NegState::AcceptIncomplete) | None => {}
            Some(_) => {
                return Err(AuthError::Malformed(
                    "SPNEGO: unexpected negState before AUTHENTICATE",
                ))
            }
        }
        if resp.supported_mech.is_some_and(|m| m != NTLMSSP_OID) {
            return Err(AuthError::Unsupported(
                "the server chose a mechanism other than NTLMSSP",
            ));
        }
        let challenge_msg = resp
            .response_token
            .ok_or(AuthError::Malformed("SPNEGO: no CHALLENGE_MESSAGE"))?;
        let challenge = Challenge::decode(challenge_msg)?;
        if challenge.flags & flags::UNICODE == 0 {
            return Err(AuthError::Unsupported("NTLM without Unicode"));
        }
        let negotiated = ntlm::CLIENT_FLAGS & challenge.flags;

        let (token, session_key, signers) = match &self.response_key {
            None => {
                let flags = (negotiated | flags::ANONYMOUS)
                    & !(flags::KEY_EXCH | flags::SIGN | flags::SEAL);
                let fields = ntlm::AuthenticateFields {
                    flags,
                    lm_response: &[0],
                    nt_response: &[],
                    domain: &[],
                    user: &[],
                    workstation: &ntlm::utf16le(&self.workstation),
                    encrypted_session_key: &[],
                };
                (fields.encode(), None, None)
            }
            Some(key) => {
                if negotiated & flags::EXTENDED_SESSIONSECURITY == 0
                    || negotiated & flags::N128 == 0
                {
                    return Err(AuthError::Unsupported(
                        "NTLM without extended session security and 128-bit keys",
                    ));
                }
                let server_ts = challenge.timestamp();
                let info = ntlm::client_target_info(challenge.target_info, true)?;
                let v2 = ntlm::v2_response(
                    key,
                    &challenge.server_challenge,
                    &client_challenge,
                    server_ts.unwrap_or(now_filetime),
                    &info,
                    server_ts.is_some(),
                );
                // Every AUTHENTICATE field has a 16-bit length (MS-NLMP 2.2.1.3).
                if v2.nt_response.len() > usize::from(u16::MAX) {
                    return Err(AuthError::Malformed("NTLM: target info too large"));
                }
                let key_exch = negotiated & flags::KEY_EXCH != 0;
                let (exported, encrypted) = if key_exch {
                    let encrypted = ntlm::rc4k(&v2.session_base_key, &exported[..]);
                    (exported, encrypted)
                } else {
                    (Zeroizing::new(v2.session_base_key), Vec::new())
                };
                let fields = ntlm::AuthenticateFields {
                    flags: negotiated,
                    lm_response: &v2.lm_response,
                    nt_response: &v2.nt_response,
                    domain: &ntlm::utf16le(&self.domain),
                    user: &ntlm::utf16le(&self.user),
                    workstation: &ntlm::utf16le(&self.workstation),
                    encrypted_session_key: &encrypted,
                };
                let mut msg = fields.encode();
                ntlm::set_mic(&exported, &self.negotiate_msg, challenge_msg, &mut msg);
                let client = SignState::new(&exported, Direction::ClientToServer, key_exch);
                let server = SignState::new(&exported, Direction::ServerToClient, key_exch);
                (msg, Some(exported), Some((client, server)))
            }
        };

        let mut mic = None;
        if let Some((mut client, server)) = signers {
            mic = Some(client.sign(&self.mech_types));
            self.server_sign = Some(server);
        }
        let out = NegTokenResp {
            neg_state: None,
            supported_mech: None,
            response_token: Some(&token),
            mech_list_mic: mic.as_ref().map(|m| &m[..]),
        }
        .encode();
        self.session_key = session_key;
        self.step = Phase::ExpectFinal;
        Ok(out)
    }

    /// The session key for SMB (the NTLM ExportedSessionKey) once
    /// [`handle_challenge`](Self::handle_challenge) succeeded; `None` for anonymous.
    pub fn session_key(&self) -> Option<[u8; 16]> {
        self.session_key.as_deref().copied()
    }

    /// Checks the server's final token: it must be accept-completed, and its
    /// mechListMIC, when present, must verify. An empty token is accepted.
    pub fn handle_final(&mut self, server_token: &[u8]) -> Result<(), AuthError> {
        if self.step != Phase::ExpectFinal {
            return Err(AuthError::OutOfOrder);
        }
        if server_token.is_empty() {
            self.step = Phase::Done;
            return Ok(());
        }
        let resp = NegTokenResp::decode(server_token)?;
        match resp.neg_state {
            Some(NegState::AcceptCompleted) | None => {}
            Some(NegState::Reject) => return Err(AuthError::Rejected),
            Some(_) => {
                return Err(AuthError::Unsupported(
                    "SPNEGO: more legs after AUTHENTICATE",
                ))
            }
        }
        if let (Some(theirs), Some(server)) = (resp.mech_list_mic, self.server_sign.as_mut()) {
            let mut ours = server.sign(&self.mech_types);
            let ok: bool = ours.ct_eq(theirs).into();
            ours.zeroize();
            if !ok {
                return Err(AuthError::BadMechListMic);
            }
        }
        self.step = Phase::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server-side CHALLENGE_MESSAGE in a NegTokenResp, as Samba builds it.
    fn server_challenge_token(flags: u32, timestamp: Option<u64>) -> Vec<u8> {
        let mut info = Vec::new();
        for (id, v) in [(2u16, ntlm::utf16le("DOM")), (1, ntlm::utf16le("SRV"))] {
            info.extend_from_slice(&id.to_le_bytes());
            info.extend_from_slice(&(v.len() as u16).to_le_bytes());
            info.extend_from_slice(&v);
        }
        if let Some(ts) = timestamp {
            info.extend_from_slice(&7u16.to_le_bytes());
            info.extend_from_slice(&8u16.to_le_bytes());
            info.extend_from_slice(&ts.to_le_bytes());
        }
        info.extend_from_slice(&[0; 4]);
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 56, 0, 0, 0]);
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[0x11; 8]);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&56u32.to_le_bytes());
        m.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 15]);
        m.extend_from_slice(&info);
        NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: Some(NTLMSSP_OID),
            response_token: Some(&m),
            mech_list_mic: None,
        }
        .encode()
    }

    #[test]
    fn full_exchange_produces_keys_and_mics() {
        let mut a = Authenticator::new("user", "DOM", "secret", "WS");
        let init = a.initial_token(&[]).unwrap();
        assert!(NegTokenInit::decode(&init).unwrap().offers_ntlmssp());
        let chal = server_challenge_token(0xe28a_8235, Some(0x01d9_0000_0000_0000));
        let out = a.handle_challenge(&chal, 1, [0xaa; 8], [0x55; 16]).unwrap();
        let resp = NegTokenResp::decode(&out).unwrap();
        let auth = resp.response_token.unwrap();
        // LmChallengeResponse is Z(24) because the server sent a timestamp.
        let lm_off = u32::from_le_bytes(auth[16..20].try_into().unwrap()) as usize;
        assert_eq!(auth[lm_off..lm_off + 24], [0; 24]);
        assert_eq!(resp.mech_list_mic.map(<[u8]>::len), Some(16));
        assert_eq!(a.session_key(), Some([0x55; 16]));
        assert!(format!("{a:?}").contains("<redacted>"));

        // The server's mechListMIC: server-to-client keys, sequence 0.
        let mut server = SignState::new(&[0x55; 16], Direction::ServerToClient, true);
        let mic = server.sign(&spnego::ntlm_mech_type_list());
        let fin = NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            mech_list_mic: Some(&mic),
            ..Default::default()
        }
        .encode();
        let mut b = Authenticator::new("user", "DOM", "secret", "WS");
        b.initial_token(&[]).unwrap();
        b.handle_challenge(&chal, 1, [0xaa; 8], [0x55; 16]).unwrap();
        assert_eq!(b.handle_final(&fin), Ok(()));
        let mut bad = mic;
        bad[5] ^= 1;
        let fin_bad = NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            mech_list_mic: Some(&bad),
            ..Default::default()
        }
        .encode();
        assert_eq!(a.handle_final(&fin_bad), Err(AuthError::BadMechListMic));
    }

    /// A real exchange with Samba 4.17.12 (the `tests/support` fixture), with
    /// client challenge 0x42.. and ExportedSessionKey 0x24..: the server's
    /// mechListMIC depends only on the latter, so it must verify.
    #[test]
    fn samba_4_17_exchange_verifies() {
        const NEGOTIATE: &[u8] =
            include_bytes!("../../../fuzz/seeds/spnego/samba_negotiate_init2.bin");
        const CHALLENGE: &[u8] =
            include_bytes!("../../../fuzz/seeds/spnego/samba_challenge_resp.bin");
        const FINAL: &[u8] = include_bytes!("../../../fuzz/seeds/spnego/samba_final_resp.bin");
        let mut a = Authenticator::new("smbcptest", "", "Test-Pa55word!", "PROBE");
        a.initial_token(NEGOTIATE).unwrap();
        a.handle_challenge(CHALLENGE, 0, [0x42; 8], [0x24; 16])
            .unwrap();
        assert_eq!(a.handle_final(FINAL), Ok(()));
        assert_eq!(a.session_key(), Some([0x24; 16]));

        let mut b = Authenticator::new("smbcptest", "", "Test-Pa55word!", "PROBE");
        b.initial_token(NEGOTIATE).unwrap();
        b.handle_challenge(CHALLENGE, 0, [0x42; 8], [0x25; 16])
            .unwrap();
        assert_eq!(b.handle_final(FINAL), Err(AuthError::BadMechListMic));
    }

    /// The same Samba exchange driven through the [`Mechanism`] seam: three
    /// steps, the last one `Done`, and the ExportedSessionKey out.
    #[test]
    fn ntlm_through_the_mechanism_trait() {
        const NEGOTIATE: &[u8] =
            include_bytes!("../../../fuzz/seeds/spnego/samba_negotiate_init2.bin");
        const CHALLENGE: &[u8] =
            include_bytes!("../../../fuzz/seeds/spnego/samba_challenge_resp.bin");
        const FINAL: &[u8] = include_bytes!("../../../fuzz/seeds/spnego/samba_final_resp.bin");
        let auth = Authenticator::new("smbcptest", "", "Test-Pa55word!", "PROBE");
        let mut m: Box<dyn Mechanism> =
            Box::new(Ntlm::new(auth, NEGOTIATE, 0, [0x42; 8], [0x24; 16]));
        assert_eq!(m.name(), "NTLMv2");
        assert!(matches!(m.step(None), Ok(Step::Continue(t)) if NegTokenInit::decode(&t).is_ok()));
        assert!(m.session_key().is_none());
        assert!(matches!(m.step(Some(CHALLENGE)), Ok(Step::Continue(_))));
        assert_eq!(m.step(Some(FINAL)), Ok(Step::Done(None)));
        assert_eq!(
            m.session_key().as_deref().map(Vec::as_slice),
            Some(&[0x24; 16][..])
        );
        // A fourth leg, or a first leg again, is out of order.
        assert_eq!(m.step(Some(FINAL)), Err(AuthError::OutOfOrder));
        assert_eq!(m.step(None), Err(AuthError::OutOfOrder));
        // A server that does not offer NTLMSSP is refused at the first step.
        let krb_only = spnego::encode_init(&tlv_krb_list(), b"x");
        let auth = Authenticator::new("u", "", "p", "w");
        let mut m = Ntlm::new(auth, &krb_only, 0, [0; 8], [0; 16]);
        assert!(matches!(m.step(None), Err(AuthError::Unsupported(_))));
    }

    /// A MechTypeList with only Kerberos (1.2.840.113554.1.2.2).
    fn tlv_krb_list() -> Vec<u8> {
        let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let mut v = vec![0x30, oid.len() as u8 + 2, 0x06, oid.len() as u8];
        v.extend_from_slice(&oid);
        v
    }

    #[test]
    fn anonymous_has_no_key() {
        let mut a = Authenticator::anonymous();
        a.initial_token(&[]).unwrap();
        let out = a
            .handle_challenge(
                &server_challenge_token(0xe28a_8235, None),
                1,
                [1; 8],
                [2; 16],
            )
            .unwrap();
        let resp = NegTokenResp::decode(&out).unwrap();
        assert!(resp.mech_list_mic.is_none());
        assert_eq!(a.session_key(), None);
        assert_eq!(a.handle_final(&[]), Ok(()));
    }

    #[test]
    fn reject_and_order() {
        let mut a = Authenticator::new("u", "d", "p", "w");
        assert_eq!(a.handle_final(&[]), Err(AuthError::OutOfOrder));
        a.initial_token(&[]).unwrap();
        let rej = NegTokenResp {
            neg_state: Some(NegState::Reject),
            ..Default::default()
        }
        .encode();
        assert_eq!(
            a.handle_challenge(&rej, 0, [0; 8], [0; 16]),
            Err(AuthError::Rejected)
        );
    }

    #[test]
    fn truncated_challenge_tokens_are_errors() {
        let chal = server_challenge_token(0xe28a_8235, Some(5));
        for n in 0..chal.len() {
            let mut a = Authenticator::new("u", "d", "p", "w");
            a.initial_token(&[]).unwrap();
            assert!(
                a.handle_challenge(&chal[..n], 0, [0; 8], [0; 16]).is_err(),
                "prefix {n}"
            );
        }
    }
}
