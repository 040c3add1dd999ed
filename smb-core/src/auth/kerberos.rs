//! Kerberos 5 inside SPNEGO (MS-SPNG, MS-KILE 3.2.5, RFC 4120 AP-REQ/AP-REP,
//! RFC 4121) as a [`Mechanism`].
//!
//! MIT's GSS-API (the `smb-gss` crate) does the Kerberos: service ticket,
//! authenticator, AP-REP check and the session key, which after mutual
//! authentication is the acceptor's subkey. This file does the SPNEGO
//! framing around it: a NegTokenInit offering the RFC 4121 OID with the
//! AP-REQ as the optimistic token, then the server's NegTokenResp with the
//! AP-REP, and the mechListMIC exchange (RFC 4178 section 5): the server's
//! is verified whenever it sends one, and ours is sent when the server
//! asks for it (Samba answers accept-incomplete with its MIC and waits for
//! the client's: a third leg).
//!
//! The one blocking step, getting the service ticket from the KDC, runs in
//! [`Kerberos::new`]; every [`Mechanism::step`] is local computation.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::spnego::{self, NegState, NegTokenResp, KRB5_OID, MS_KRB5_OID};
use super::{AuthError, Mechanism, Step};

pub use smb_gss::{Credential, ErrorKind, GssError, Source};

/// The client side of a Kerberos logon to one service.
pub struct Kerberos {
    ctx: smb_gss::Context,
    /// The SPNEGO NegTokenInit carrying the AP-REQ, until it is sent.
    first: Option<Vec<u8>>,
    mech_types: Vec<u8>,
    /// The server's mechListMIC was checked.
    mic_checked: bool,
    done: bool,
}

impl fmt::Debug for Kerberos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kerberos")
            .field("ctx", &self.ctx)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// An [`AuthError`] from a GSS-API failure, with a hint for the kinds a
/// person can act on.
pub fn gss_error(e: &GssError) -> AuthError {
    let hint = match e.kind {
        ErrorKind::NoTicket => " (run kinit, or give --keytab or a password with --kerberos)",
        ErrorKind::Expired => " (the ticket expired: run kinit again)",
        ErrorKind::ClockSkew => {
            " (this machine's clock and the domain's differ by more than 5 minutes)"
        }
        ErrorKind::UnknownClient => " (is the user name right, and in the right realm?)",
        ErrorKind::UnknownServer => {
            " (the KDC has no such service principal: give the server's DNS name or --spn)"
        }
        ErrorKind::KdcUnreachable => " (check the realm's kdc in krb5.conf and the network)",
        ErrorKind::WrongPassword => " (wrong password or key)",
        _ => "",
    };
    AuthError::Kerberos(format!("{e}{hint}"))
}

impl Kerberos {
    /// Starts a logon to `spn` (`cifs/host`, or `cifs/host@REALM`) with
    /// `cred`: gets the service ticket and builds the AP-REQ. Blocks on
    /// the KDC; run it off the async threads.
    pub fn new(cred: Arc<Credential>, spn: &str) -> Result<Self, AuthError> {
        let mut ctx = smb_gss::Context::new(cred, spn).map_err(|e| gss_error(&e))?;
        let ap_req = ctx.step(None).map_err(|e| gss_error(&e))?;
        let mech_types = spnego::krb5_mech_type_list();
        let first = spnego::encode_init(&mech_types, &ap_req);
        Ok(Self {
            ctx,
            first: Some(first),
            mech_types,
            mic_checked: false,
            done: false,
        })
    }

    fn check_mic(&mut self, mic: Option<&[u8]>) -> Result<(), AuthError> {
        if let Some(mic) = mic {
            self.ctx
                .verify_mic(&self.mech_types, mic)
                .map_err(|_| AuthError::BadMechListMic)?;
            self.mic_checked = true;
        }
        Ok(())
    }
}

impl Mechanism for Kerberos {
    fn name(&self) -> &'static str {
        "Kerberos"
    }

    fn step(&mut self, token: Option<&[u8]>) -> Result<Step, AuthError> {
        let Some(token) = token else {
            return self
                .first
                .take()
                .map(Step::Continue)
                .ok_or(AuthError::OutOfOrder);
        };
        if self.first.is_some() || self.done {
            return Err(AuthError::OutOfOrder);
        }
        if token.is_empty() {
            // A final STATUS_SUCCESS without a token proves nothing.
            return Err(AuthError::Kerberos(
                "the server sent no AP-REP: mutual authentication failed".into(),
            ));
        }
        let resp = NegTokenResp::decode(token)?;
        if resp.neg_state == Some(NegState::Reject) {
            return Err(AuthError::Rejected);
        }
        if resp
            .supported_mech
            .is_some_and(|m| m != KRB5_OID && m != MS_KRB5_OID)
        {
            return Err(AuthError::Unsupported(
                "the server chose a mechanism other than Kerberos",
            ));
        }
        if !self.ctx.is_complete() {
            let ap_rep = resp.response_token.ok_or_else(|| {
                AuthError::Kerberos(
                    "the server sent no AP-REP: mutual authentication failed".into(),
                )
            })?;
            let more = self.ctx.step(Some(ap_rep)).map_err(|e| gss_error(&e))?;
            if !self.ctx.is_complete() {
                // A KRB-ERROR the library answers with a new AP-REQ.
                let out = NegTokenResp {
                    response_token: Some(&more),
                    ..Default::default()
                }
                .encode();
                return Ok(Step::Continue(out));
            }
        }
        self.check_mic(resp.mech_list_mic)?;
        match resp.neg_state {
            Some(NegState::AcceptCompleted) | None => {
                self.done = true;
                Ok(Step::Done(None))
            }
            Some(NegState::AcceptIncomplete | NegState::RequestMic) => {
                // The server wants our mechListMIC (RFC 4178 section 5).
                let mic = self
                    .ctx
                    .get_mic(&self.mech_types)
                    .map_err(|e| gss_error(&e))?;
                let out = NegTokenResp {
                    mech_list_mic: Some(&mic),
                    ..Default::default()
                }
                .encode();
                self.done = true;
                Ok(Step::Done(Some(out)))
            }
            Some(NegState::Reject) => Err(AuthError::Rejected),
        }
    }

    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        if !self.ctx.is_complete() {
            return None;
        }
        self.ctx.session_key().ok()
    }
}

/// True when the default credential cache holds a ticket that has not
/// expired (and the GSS-API library is there): what `--auth auto` asks.
pub fn ticket_at_hand() -> bool {
    Credential::acquire(&Source::Cache).is_ok()
}
