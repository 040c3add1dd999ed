//! SESSION_SETUP as a typed state (MS-SMB2 3.2.4.2.3, 3.2.5.3), sans I/O:
//! a [`Handshake`] drives one [`Mechanism`] for as many legs as the server
//! answers STATUS_MORE_PROCESSING_REQUIRED, each leg consuming `self`, until
//! STATUS_SUCCESS gives an [`Established`] session. The caller sends the
//! request bodies these produce, feeds back the exact bytes it sent
//! (`handle_sent`, for the 3.1.1 preauth integrity hash) and the responses
//! (`handle_response`). Randomness and time come in as parameters (or live
//! in the mechanism).

use zeroize::Zeroizing;

use crate::auth::{Mechanism, Step};
use crate::crypto::{Cipher, PreauthHash, SessionCipher, SessionKeys, Signer, SigningAlgorithm};
use crate::error::Error;
use crate::wire::header::Header;
use crate::wire::negotiate::{SECURITY_SIGNING_ENABLED, SECURITY_SIGNING_REQUIRED};
use crate::wire::session::{
    SessionSetupRequest, SessionSetupResponse, SESSION_FLAG_IS_GUEST, SESSION_FLAG_IS_NULL,
};
use crate::wire::{Command, Dialect, NtStatus, Writer};

use super::Negotiated;

/// The most SESSION_SETUP legs one logon may take: NTLM needs 2, Kerberos
/// 1 or 2 (3 with a KRB_ERROR retry); a server that asks for more is looping.
pub const MAX_LEGS: u32 = 8;

/// What the handshake needs from NEGOTIATE and the configuration.
#[derive(Clone, Debug)]
pub struct SetupParams {
    /// The dialect.
    pub dialect: Dialect,
    /// The signing algorithm id (from the signing context, or the dialect's default).
    pub signing: u16,
    /// The cipher id, when the dialect and server can encrypt.
    pub cipher: Option<u16>,
    /// We (or the server) require signing.
    pub sign_required: bool,
    /// The SessionId this session had on a connection that was lost
    /// (MS-SMB2 3.2.4.2.3), so the server can drop the old one; 0 for a
    /// new logon.
    pub previous_session_id: u64,
}

impl SetupParams {
    /// From the negotiated parameters.
    pub fn new(neg: &Negotiated, client_wants_signing: bool) -> Self {
        Self {
            dialect: neg.dialect,
            signing: neg.signing,
            cipher: neg.cipher,
            sign_required: neg.server_requires_signing() || client_wants_signing,
            previous_session_id: 0,
        }
    }
}

fn auth_err(e: crate::auth::AuthError) -> Error {
    Error::Auth(e.to_string())
}

/// Encodes a SESSION_SETUP request body (after the 64-byte placeholder in `w`).
fn encode(w: &mut Writer, params: &SetupParams, token: &[u8]) {
    let security_mode = if params.sign_required {
        SECURITY_SIGNING_REQUIRED
    } else {
        SECURITY_SIGNING_ENABLED
    };
    SessionSetupRequest {
        security_mode: security_mode as u8,
        capabilities: 0,
        previous_session_id: params.previous_session_id,
        token,
    }
    .encode(w);
}

/// A SESSION_SETUP request sent; waiting for its response.
#[derive(Debug)]
pub struct Handshake {
    mech: Box<dyn Mechanism>,
    hash: Option<PreauthHash>,
    params: SetupParams,
    /// Requests sent so far.
    legs: u32,
    /// The mechanism said [`Step::Done`]: only STATUS_SUCCESS may follow.
    mech_done: bool,
}

/// What a response led to.
#[derive(Debug)]
pub enum Progress {
    /// Another request body is in the writer: send it with this SessionId.
    Send(Handshake, u64),
    /// The logon is complete.
    Established(Established),
}

impl Handshake {
    /// Starts the exchange: returns the state and writes the first request
    /// body into `w`. `conn_hash` is the connection's preauth hash (3.1.1).
    pub fn start(
        mut mech: Box<dyn Mechanism>,
        conn_hash: Option<PreauthHash>,
        params: SetupParams,
        w: &mut Writer,
    ) -> Result<Self, Error> {
        let (token, mech_done) = match mech.step(None).map_err(auth_err)? {
            Step::Continue(t) => (t, false),
            Step::Done(t) => (t.unwrap_or_default(), true),
        };
        encode(w, &params, &token);
        Ok(Self {
            mech,
            hash: conn_hash,
            params,
            legs: 1,
            mech_done,
        })
    }

    /// The name of the mechanism logging on.
    pub fn mechanism(&self) -> &'static str {
        self.mech.name()
    }

    /// The bytes of the request as sent (header included).
    pub fn handle_sent(&mut self, msg: &[u8]) {
        if let Some(h) = self.hash.as_mut() {
            h.update(msg);
        }
    }

    /// Handles a response. STATUS_MORE_PROCESSING_REQUIRED feeds the
    /// mechanism and writes the next request body into `w`
    /// ([`Progress::Send`]); STATUS_SUCCESS completes the logon (see
    /// `finish` for what is checked). `nonce_salt` seeds
    /// the cipher's nonces.
    pub fn handle_response(
        mut self,
        msg: &[u8],
        guest_requested: bool,
        nonce_salt: u32,
        w: &mut Writer,
    ) -> Result<Progress, Error> {
        let h = Header::decode(msg)?;
        let name = self.mech.name();
        if h.status == NtStatus::SUCCESS {
            return self
                .finish(msg, &h, guest_requested, nonce_salt)
                .map(Progress::Established);
        }
        if h.status != NtStatus::MORE_PROCESSING_REQUIRED {
            return Err(if self.legs == 1 && h.status != NtStatus::LOGON_FAILURE {
                Error::Status {
                    status: h.status,
                    command: Command::SESSION_SETUP,
                }
            } else {
                Error::Auth(format!("SESSION_SETUP failed: {}", h.status))
            });
        }
        if self.mech_done {
            return Err(Error::Auth(format!(
                "the server wants more authentication legs than {name} has"
            )));
        }
        if self.legs >= MAX_LEGS {
            return Err(Error::Auth(format!(
                "the server asked for more than {MAX_LEGS} SESSION_SETUP legs"
            )));
        }
        if let Some(hash) = self.hash.as_mut() {
            hash.update(msg);
        }
        let body = SessionSetupResponse::decode(msg)?;
        let token = match self.mech.step(Some(body.token)).map_err(auth_err)? {
            Step::Continue(t) => t,
            Step::Done(t) => {
                self.mech_done = true;
                t.unwrap_or_default()
            }
        };
        encode(w, &self.params, &token);
        self.legs += 1;
        Ok(Progress::Send(self, h.session_id))
    }

    /// The final response: the mechanism checks the server's last token
    /// (mutual authentication, mechListMIC), the keys are derived and the
    /// response's signature verified (which 3.1.1 servers always send, and
    /// which must be right whenever present).
    ///
    /// The SessionFlags are believed only after that check (MS-SMB2
    /// 3.2.5.3.1): a man in the middle who sets IS_GUEST on a signed reply
    /// gets [`Error::BadSignature`], and one who also strips the signature
    /// gets the guest refusal below, never an unsigned session. A session
    /// the server made guest or anonymous when `guest_requested` is false
    /// is refused ([`guest_refused`]): it usually means a wrong password
    /// or an unknown user on a server that maps those to guest.
    fn finish(
        mut self,
        msg: &[u8],
        h: &Header,
        guest_requested: bool,
        nonce_salt: u32,
    ) -> Result<Established, Error> {
        let body = SessionSetupResponse::decode(msg)?;
        if !self.mech_done {
            match self.mech.step(Some(body.token)).map_err(auth_err)? {
                Step::Done(None) => {}
                Step::Continue(_) | Step::Done(Some(_)) => {
                    return Err(Error::Auth(format!(
                        "the server accepted the logon before {} finished",
                        self.mech.name()
                    )))
                }
            }
        }
        let p = &self.params;
        let keys = self.mech.session_key().map(|raw| {
            let sk = smb_session_key(&raw);
            let c = p.cipher.and_then(Cipher::from_id);
            let preauth = self.hash.as_ref().map(PreauthHash::value);
            let keys = SessionKeys::derive(p.dialect.0, &sk[..], preauth.as_ref(), c);
            let alg = SigningAlgorithm::from_id(p.signing)
                .unwrap_or_else(|| SigningAlgorithm::default_for(p.dialect.0));
            (Signer::new(alg, &keys.signing), alg, keys, c)
        });
        // Verify before reading the flags: they are what the signature protects.
        if let Some((signer, ..)) = &keys {
            if h.is_signed() && !signer.verify(msg) {
                return Err(Error::BadSignature);
            }
        }
        let flagged_guest =
            body.session_flags & (SESSION_FLAG_IS_GUEST | SESSION_FLAG_IS_NULL) != 0;
        if flagged_guest && !guest_requested {
            return Err(guest_refused());
        }
        let guest = flagged_guest || guest_requested;
        let crypto = match keys {
            Some((signer, alg, keys, c)) if !guest => {
                if !h.is_signed() && (p.dialect == Dialect::SMB3_1_1 || p.sign_required) {
                    return Err(Error::BadSignature);
                }
                let cipher = match c {
                    Some(c) if p.dialect.is_smb3() => Some(
                        SessionCipher::from_keys(c, &keys, nonce_salt)
                            .map_err(|e| Error::Security(e.to_string()))?,
                    ),
                    _ => None,
                };
                Some(SessionCrypto {
                    signer,
                    signing: alg,
                    cipher,
                })
            }
            _ => None,
        };
        Ok(Established {
            session_id: h.session_id,
            session_flags: body.session_flags,
            guest,
            crypto,
            mechanism: self.mech.name(),
        })
    }
}

/// Session.SessionKey from a mechanism's key (MS-SMB2 3.2.5.3.1): its
/// first 16 bytes, right-padded with zeros when shorter (a Kerberos
/// AES-256 subkey is 32 bytes, an NTLM key 16).
pub fn smb_session_key(raw: &[u8]) -> Zeroizing<[u8; 16]> {
    let mut k = Zeroizing::new([0u8; 16]);
    let n = raw.len().min(16);
    k[..n].copy_from_slice(&raw[..n]);
    k
}

/// The session's keys and protection objects.
#[derive(Debug)]
pub struct SessionCrypto {
    /// Signs with Session.SigningKey.
    pub signer: Signer,
    /// The signing algorithm.
    pub signing: SigningAlgorithm,
    /// Encrypts/decrypts (3.x with a cipher).
    pub cipher: Option<SessionCipher>,
}

/// An established session.
#[derive(Debug)]
pub struct Established {
    /// SessionId.
    pub session_id: u64,
    /// SessionFlags.
    pub session_flags: u16,
    /// Guest or anonymous: no keys.
    pub guest: bool,
    /// Keys, when the logon produced a session key.
    pub crypto: Option<SessionCrypto>,
    /// The mechanism that logged on ("NTLMv2", "Kerberos").
    pub mechanism: &'static str,
}

/// The refusal of a guest or anonymous session nobody asked for.
pub fn guest_refused() -> Error {
    Error::Auth(
        "the server logged us on as a guest: wrong password or unknown user? \
         use --guest to allow"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::auth::{AuthError, Authenticator, Ntlm};
    use crate::wire::header::FLAG_RESPONSE;

    fn params(dialect: Dialect) -> SetupParams {
        SetupParams {
            dialect,
            signing: 2,
            cipher: Some(2),
            sign_required: false,
            previous_session_id: 0,
        }
    }

    fn reply(status: NtStatus, token: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        Header {
            command: Command::SESSION_SETUP,
            status,
            flags: FLAG_RESPONSE,
            session_id: 9,
            ..Header::default()
        }
        .encode(&mut w);
        SessionSetupResponse {
            session_flags: 0,
            token,
        }
        .encode(&mut w);
        w.into_vec()
    }

    fn ntlm() -> Box<dyn Mechanism> {
        Box::new(Ntlm::new(
            Authenticator::new("u", "", "p", "w"),
            &[],
            0,
            [0; 8],
            [0; 16],
        ))
    }

    fn placeholder() -> Writer {
        let mut w = Writer::new();
        w.zeros(64);
        w
    }

    /// The server tokens a [`Script`] saw.
    type Seen = Arc<Mutex<Vec<Option<Vec<u8>>>>>;

    /// A mechanism that sends `out[i]` after seeing server token `i` and
    /// records every server token; done after `out.len()` legs.
    #[derive(Debug)]
    struct Script {
        out: Vec<Vec<u8>>,
        seen: Seen,
        key: Option<Vec<u8>>,
    }

    impl Mechanism for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        fn step(&mut self, token: Option<&[u8]>) -> Result<Step, AuthError> {
            let mut seen = self.seen.lock().unwrap();
            seen.push(token.map(<[u8]>::to_vec));
            let i = seen.len() - 1;
            Ok(match self.out.get(i) {
                Some(t) => Step::Continue(t.clone()),
                None if token == Some(b"bad") => return Err(AuthError::Rejected),
                None => Step::Done(None),
            })
        }
        fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
            self.key.clone().map(Zeroizing::new)
        }
    }

    fn script(legs: usize) -> (Box<dyn Mechanism>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = (0..legs).map(|i| vec![b'a' + i as u8; 3]).collect();
        let m = Script {
            out,
            seen: Arc::clone(&seen),
            key: Some(vec![7; 32]),
        };
        (Box::new(m), seen)
    }

    fn body_token(w: &Writer) -> Vec<u8> {
        // SecurityBufferOffset/Length at 12/14 of the body (MS-SMB2 2.2.5).
        let b = &w.as_slice()[64..];
        let off = u16::from_le_bytes([b[12], b[13]]) as usize;
        let len = u16::from_le_bytes([b[14], b[15]]) as usize;
        w.as_slice()[off..off + len].to_vec()
    }

    #[test]
    fn logon_failure_and_bad_challenge() {
        let mut w = placeholder();
        let s = Handshake::start(ntlm(), None, params(Dialect::SMB3_1_1), &mut w).unwrap();
        assert!(w.len() > 64 + 24);
        assert_eq!(s.mechanism(), "NTLMv2");
        let err = s
            .handle_response(&reply(NtStatus::LOGON_FAILURE, &[]), false, 0, &mut w)
            .unwrap_err();
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("LOGON_FAILURE")),
            "{err:?}"
        );

        let s = Handshake::start(ntlm(), None, params(Dialect::SMB3_1_1), &mut w).unwrap();
        let err = s
            .handle_response(
                &reply(NtStatus::MORE_PROCESSING_REQUIRED, &[0xa1, 0x00]),
                false,
                0,
                &mut w,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        // Truncated replies are decode errors, never panics.
        let full = reply(NtStatus::MORE_PROCESSING_REQUIRED, &[1, 2, 3]);
        for n in 0..full.len() {
            let s = Handshake::start(ntlm(), None, params(Dialect::SMB3_1_1), &mut w).unwrap();
            assert!(s.handle_response(&full[..n], false, 0, &mut w).is_err());
        }
    }

    /// Four legs: the mechanism sees every server token in order, each
    /// request carries the mechanism's blob, and the final SUCCESS makes a
    /// session with keys from the (32-byte, cut to 16) session key.
    #[test]
    fn multi_leg_script_runs_to_the_end() {
        let (mech, seen) = script(4);
        let mut w = placeholder();
        let mut s = Handshake::start(mech, None, params(Dialect::SMB2_1), &mut w).unwrap();
        assert_eq!(body_token(&w), b"aaa");
        for (i, server) in [b"s1", b"s2", b"s3"].iter().enumerate() {
            let mut w = placeholder();
            let reply = reply(NtStatus::MORE_PROCESSING_REQUIRED, &server[..]);
            match s.handle_response(&reply, false, 0, &mut w).unwrap() {
                Progress::Send(next, id) => {
                    assert_eq!(id, 9);
                    assert_eq!(body_token(&w), vec![b'b' + i as u8; 3]);
                    s = next;
                }
                Progress::Established(_) => panic!("established after leg {i}"),
            }
        }
        let mut w = placeholder();
        let est = match s
            .handle_response(&reply(NtStatus::SUCCESS, b"fin"), false, 0, &mut w)
            .unwrap()
        {
            Progress::Established(e) => e,
            Progress::Send(..) => panic!("a fifth leg"),
        };
        assert_eq!(est.mechanism, "script");
        assert!(!est.guest);
        assert!(est.crypto.is_some());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                None,
                Some(b"s1".to_vec()),
                Some(b"s2".to_vec()),
                Some(b"s3".to_vec()),
                Some(b"fin".to_vec()),
            ]
        );
    }

    #[test]
    fn legs_beyond_the_mechanism_or_the_bound_are_refused() {
        // The mechanism is done (NTLM after leg 2 here: a scripted done).
        let (mech, _) = script(1);
        let mut w = placeholder();
        let s = Handshake::start(mech, None, params(Dialect::SMB2_1), &mut w).unwrap();
        let more = reply(NtStatus::MORE_PROCESSING_REQUIRED, b"x");
        // The script is done after its first blob, but a server token
        // makes it answer Done(None) at leg 2: a last empty blob.
        let s = match s
            .handle_response(&more, false, 0, &mut placeholder())
            .unwrap()
        {
            Progress::Send(s, _) => s,
            Progress::Established(_) => panic!(),
        };
        let err = s.handle_response(&more, false, 0, &mut w).unwrap_err();
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("more authentication legs")),
            "{err:?}"
        );

        // A server that never stops asking.
        let (mech, _) = script(100);
        let mut s = Handshake::start(mech, None, params(Dialect::SMB2_1), &mut w).unwrap();
        let err = loop {
            match s.handle_response(&more, false, 0, &mut placeholder()) {
                Ok(Progress::Send(next, _)) => s = next,
                Ok(Progress::Established(_)) => panic!(),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("more than 8")),
            "{err:?}"
        );
    }

    #[test]
    fn success_before_the_mechanism_is_done_is_refused() {
        let (mech, _) = script(3);
        let mut w = placeholder();
        let s = Handshake::start(mech, None, params(Dialect::SMB2_1), &mut w).unwrap();
        let err = s
            .handle_response(&reply(NtStatus::SUCCESS, b""), false, 0, &mut w)
            .unwrap_err();
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("before script finished")),
            "{err:?}"
        );
        // A rejected final token is an auth error.
        let (mech, _) = script(1);
        let s = Handshake::start(mech, None, params(Dialect::SMB2_1), &mut w).unwrap();
        let err = s
            .handle_response(&reply(NtStatus::SUCCESS, b"bad"), false, 0, &mut w)
            .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
    }

    #[test]
    fn session_key_is_cut_or_padded_to_16() {
        assert_eq!(*smb_session_key(&[1; 32]), [1; 16]);
        let mut want = [0; 16];
        want[..5].copy_from_slice(&[2; 5]);
        assert_eq!(*smb_session_key(&[2; 5]), want);
    }
}
