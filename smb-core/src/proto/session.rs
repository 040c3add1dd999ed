//! SESSION_SETUP as typed states (MS-SMB2 3.2.4.2.3, 3.2.5.3), sans I/O:
//! [`ExpectChallenge`] → [`ExpectFinal`] → [`Established`], each consuming
//! `self`. The caller sends the request bodies these produce, feeds back the
//! exact bytes it sent (`handle_sent`, for the 3.1.1 preauth integrity hash)
//! and the responses (`handle_response`). Randomness and time come in as
//! parameters.

use crate::auth::Authenticator;
use crate::crypto::{Cipher, PreauthHash, SessionCipher, SessionKeys, Signer, SigningAlgorithm};
use crate::error::Error;
use crate::wire::header::Header;
use crate::wire::negotiate::{SECURITY_SIGNING_ENABLED, SECURITY_SIGNING_REQUIRED};
use crate::wire::session::{
    SessionSetupRequest, SessionSetupResponse, SESSION_FLAG_IS_GUEST, SESSION_FLAG_IS_NULL,
};
use crate::wire::{Command, Dialect, NtStatus, Writer};

use super::Negotiated;

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

/// First leg sent; waiting for the server's challenge.
#[derive(Debug)]
pub struct ExpectChallenge {
    auth: Authenticator,
    hash: Option<PreauthHash>,
    params: SetupParams,
}

impl ExpectChallenge {
    /// Starts the exchange: returns the state and writes the first request
    /// body into `w`. `conn_hash` is the connection's preauth hash (3.1.1).
    pub fn start(
        mut auth: Authenticator,
        conn_hash: Option<PreauthHash>,
        params: SetupParams,
        server_token: &[u8],
        w: &mut Writer,
    ) -> Result<Self, Error> {
        let token = auth.initial_token(server_token).map_err(auth_err)?;
        encode(w, &params, &token);
        Ok(Self {
            auth,
            hash: conn_hash,
            params,
        })
    }

    /// The bytes of the request as sent (header included).
    pub fn handle_sent(&mut self, msg: &[u8]) {
        if let Some(h) = self.hash.as_mut() {
            h.update(msg);
        }
    }

    /// Handles the STATUS_MORE_PROCESSING_REQUIRED response and writes the
    /// second request body into `w`. Returns the session id to send it with.
    pub fn handle_response(
        mut self,
        msg: &[u8],
        now_filetime: u64,
        client_challenge: [u8; 8],
        exported_session_key: [u8; 16],
        w: &mut Writer,
    ) -> Result<(ExpectFinal, u64), Error> {
        let h = Header::decode(msg)?;
        if h.status != NtStatus::MORE_PROCESSING_REQUIRED {
            return Err(if h.status == NtStatus::SUCCESS {
                Error::Auth("the server accepted the logon before NTLM finished".into())
            } else if h.status == NtStatus::LOGON_FAILURE {
                Error::Auth(format!("SESSION_SETUP failed: {}", h.status))
            } else {
                Error::Status {
                    status: h.status,
                    command: Command::SESSION_SETUP,
                }
            });
        }
        if let Some(hash) = self.hash.as_mut() {
            hash.update(msg);
        }
        let body = SessionSetupResponse::decode(msg)?;
        let token = self
            .auth
            .handle_challenge(
                body.token,
                now_filetime,
                client_challenge,
                exported_session_key,
            )
            .map_err(auth_err)?;
        encode(w, &self.params, &token);
        Ok((
            ExpectFinal {
                auth: self.auth,
                hash: self.hash,
                params: self.params,
            },
            h.session_id,
        ))
    }
}

/// Second leg sent; waiting for the final response.
#[derive(Debug)]
pub struct ExpectFinal {
    auth: Authenticator,
    hash: Option<PreauthHash>,
    params: SetupParams,
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
}

impl ExpectFinal {
    /// The bytes of the request as sent (header included).
    pub fn handle_sent(&mut self, msg: &[u8]) {
        if let Some(h) = self.hash.as_mut() {
            h.update(msg);
        }
    }

    /// Handles the final response: checks the SPNEGO result, derives the keys
    /// and verifies the response's signature (which 3.1.1 servers always send,
    /// and which must be right whenever present). `nonce_salt` seeds the
    /// cipher's nonces.
    ///
    /// The SessionFlags are believed only after that check (MS-SMB2
    /// 3.2.5.3.1): a man in the middle who sets IS_GUEST on a signed reply
    /// gets [`Error::BadSignature`], and one who also strips the signature
    /// gets the guest refusal below, never an unsigned session. A session
    /// the server made guest or anonymous when `guest_requested` is false
    /// is refused ([`guest_refused`]): it usually means a wrong password
    /// or an unknown user on a server that maps those to guest.
    pub fn handle_response(
        mut self,
        msg: &[u8],
        guest_requested: bool,
        nonce_salt: u32,
    ) -> Result<Established, Error> {
        let h = Header::decode(msg)?;
        if h.status != NtStatus::SUCCESS {
            return Err(if h.status == NtStatus::MORE_PROCESSING_REQUIRED {
                Error::Auth("the server wants more authentication legs than NTLM has".into())
            } else {
                Error::Auth(format!("SESSION_SETUP failed: {}", h.status))
            });
        }
        let body = SessionSetupResponse::decode(msg)?;
        self.auth.handle_final(body.token).map_err(auth_err)?;
        let p = &self.params;
        let keys = self.auth.session_key().map(|sk| {
            let c = p.cipher.and_then(Cipher::from_id);
            let preauth = self.hash.as_ref().map(PreauthHash::value);
            let keys = SessionKeys::derive(p.dialect.0, &sk, preauth.as_ref(), c);
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
        })
    }
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
    use super::*;
    use crate::wire::header::FLAG_RESPONSE;

    fn params() -> SetupParams {
        SetupParams {
            dialect: Dialect::SMB3_1_1,
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

    #[test]
    fn logon_failure_and_bad_challenge() {
        let mut w = Writer::new();
        w.zeros(64);
        let s = ExpectChallenge::start(
            Authenticator::new("u", "", "p", "w"),
            None,
            params(),
            &[],
            &mut w,
        )
        .unwrap();
        assert!(w.len() > 64 + 24);
        let err = s
            .handle_response(
                &reply(NtStatus::LOGON_FAILURE, &[]),
                0,
                [0; 8],
                [0; 16],
                &mut w,
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("LOGON_FAILURE")),
            "{err:?}"
        );

        let s = ExpectChallenge::start(
            Authenticator::new("u", "", "p", "w"),
            None,
            params(),
            &[],
            &mut w,
        )
        .unwrap();
        let err = s
            .handle_response(
                &reply(NtStatus::MORE_PROCESSING_REQUIRED, &[0xa1, 0x00]),
                0,
                [0; 8],
                [0; 16],
                &mut w,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        // Truncated replies are decode errors, never panics.
        let full = reply(NtStatus::MORE_PROCESSING_REQUIRED, &[1, 2, 3]);
        for n in 0..full.len() {
            let s = ExpectChallenge::start(
                Authenticator::new("u", "", "p", "w"),
                None,
                params(),
                &[],
                &mut w,
            )
            .unwrap();
            assert!(s
                .handle_response(&full[..n], 0, [0; 8], [0; 16], &mut w)
                .is_err());
        }
    }
}
