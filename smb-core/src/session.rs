//! [`Session`]: an authenticated user on a [`crate::Client`]. It remembers
//! its credentials, so after a reconnect it logs on again by itself on the
//! new connection (with PreviousSessionId, MS-SMB2 3.2.4.2.3) the first
//! time it is used there.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::auth::kerberos::{gss_error, Credential, Kerberos, Source};
use crate::auth::spnego::NegTokenInit;
use crate::auth::{Authenticator, Mechanism, Ntlm};
use crate::client::{Client, EncryptionMode, Generation};
use crate::conn::{new_message, FrameCipher, FrameSigner, Outgoing, Security};
use crate::crypto::{SessionCipher, Signer};
use crate::error::{Error, Result};
use crate::file::FileTime;
use crate::proto;
use crate::proto::session::{Handshake, Progress, SetupParams};
use crate::tree::{Tree, TreeState};
use crate::wire::create::FileId;
use crate::wire::ioctl::{self, IoctlResponse};
use crate::wire::negotiate::{self as wneg, ValidateNegotiateResponse};
use crate::wire::session::{self as wsession, SESSION_FLAG_ENCRYPT_DATA};
use crate::wire::{Command, Dialect};

/// Who to authenticate as.
#[derive(Clone, Default)]
pub struct Credentials {
    /// User name (without domain).
    pub user: String,
    /// Domain or workgroup; empty for the server's own.
    pub domain: String,
    /// Password; zeroized on drop and never printed.
    pub password: Zeroizing<String>,
    /// Anonymous/guest logon: no password is used.
    pub guest: bool,
    /// Log on with Kerberos ([`KerberosConfig`]); `None`: NTLMv2 only.
    pub kerberos: Option<KerberosConfig>,
}

/// How to log on with Kerberos 5 (inside SPNEGO, through the system's MIT
/// GSS-API: see [`crate::auth::kerberos`]).
#[derive(Clone, Debug, Default)]
pub struct KerberosConfig {
    /// Where the ticket comes from.
    pub source: KerberosSource,
    /// The service principal; `None`: `cifs/<server>` as the client was
    /// given it.
    pub spn: Option<String>,
    /// Kerberos or nothing. When false, a server that does not offer
    /// Kerberos, or no ticket to be had, means NTLMv2 (with the password).
    pub required: bool,
}

/// Where a Kerberos ticket comes from. Every logon (also after a
/// reconnect) acquires anew, so a renewed cache or an expired ticket is
/// picked up: a keytab or a password gets a fresh one from the KDC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KerberosSource {
    /// The default credential cache (`KRB5CCNAME`, after `kinit`).
    #[default]
    Cache,
    /// A keytab file with a key for the user.
    Keytab(String),
    /// The credentials' password, for the user's principal.
    Password,
}

impl Credentials {
    /// The Kerberos principal: `user` as given when it holds a realm,
    /// else `user@DOMAIN` (upper-cased: realms are), else `user` (the
    /// default realm of krb5.conf).
    pub fn principal(&self) -> String {
        if self.user.contains('@') || self.domain.is_empty() {
            self.user.clone()
        } else {
            format!("{}@{}", self.user, self.domain.to_uppercase())
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .field("guest", &self.guest)
            .field("kerberos", &self.kerberos)
            .finish()
    }
}

/// An authenticated session. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

#[derive(Debug)]
pub(crate) struct SessionInner {
    pub(crate) client: Client,
    creds: Credentials,
    state: RwLock<Arc<SessionState>>,
    /// Held by the one task that logs on again after a reconnect.
    relogon: tokio::sync::Mutex<()>,
}

/// The session as established on one connection.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// The connection it lives on.
    pub(crate) gen: Arc<Generation>,
    pub(crate) id: u64,
    signer: Option<Arc<dyn FrameSigner>>,
    cipher: Option<Arc<dyn FrameCipher>>,
    /// Sign every request (server requires it, or the config asks).
    sign_all: bool,
    /// Encrypt every request (SMB2_SESSION_FLAG_ENCRYPT_DATA or EncryptionMode::Required).
    encrypt_all: bool,
    signing_name: Option<&'static str>,
    cipher_name: Option<&'static str>,
    guest: bool,
    /// The mechanism that logged on.
    mechanism: &'static str,
    validated: AtomicBool,
}

impl SessionState {
    /// How to protect a request on a tree that does (or does not) require encryption.
    pub(crate) fn security(&self, tree_encrypt: bool) -> Security {
        if (self.encrypt_all || tree_encrypt) && self.cipher.is_some() {
            Security {
                signer: None,
                cipher: self.cipher.clone(),
            }
        } else if self.sign_all {
            Security {
                signer: self.signer.clone(),
                cipher: None,
            }
        } else {
            Security::default()
        }
    }

    /// True when every request of the session is encrypted.
    pub(crate) fn encrypts_all(&self) -> bool {
        self.encrypt_all
    }
}

/// Adapts the crypto layer's [`Signer`] to the connection.
#[derive(Debug)]
struct SignerAdapter(Signer);

impl FrameSigner for SignerAdapter {
    fn sign(&self, msg: &mut [u8]) {
        self.0.sign(msg);
    }
    fn sign_parts(&self, head: &mut [u8], payload: &[u8]) {
        self.0.sign_parts(head, payload);
    }
    fn verify(&self, msg: &[u8]) -> bool {
        self.0.verify(msg)
    }
}

/// Adapts the crypto layer's [`SessionCipher`] to the connection.
#[derive(Debug)]
struct CipherAdapter {
    cipher: SessionCipher,
    session_id: u64,
}

impl FrameCipher for CipherAdapter {
    fn encrypt_in_place(&self, frame: &mut [u8]) -> Result<()> {
        self.cipher
            .encrypt_in_place(self.session_id, frame)
            .map_err(|e| Error::Security(e.to_string()))
    }
    fn decrypt_in_place(&self, frame: &mut [u8]) -> Result<()> {
        self.cipher
            .decrypt_in_place(frame)
            .map(|_| ())
            .map_err(|_| Error::BadSignature)
    }
}

fn now_filetime() -> u64 {
    FileTime::from_system_time(SystemTime::now()).0
}

impl Session {
    /// Logs on (see [`logon`]) and returns the session.
    pub(crate) async fn setup(client: Client, creds: &Credentials) -> Result<Self> {
        let gen = client.generation();
        let state = logon(&client, &gen, creds, 0).await?;
        Ok(Self {
            inner: Arc::new(SessionInner {
                client,
                creds: creds.clone(),
                state: RwLock::new(Arc::new(state)),
                relogon: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn state(&self) -> Arc<SessionState> {
        Arc::clone(&self.inner.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The session on the client's current connection: after a reconnect,
    /// the first caller logs on again (with PreviousSessionId) and the
    /// others wait for it. A connection that is down is
    /// [`Error::ConnectionLost`]; a logon that fails is
    /// [`Error::Reestablish`].
    pub(crate) async fn current(&self) -> Result<Arc<SessionState>> {
        let st = self.state();
        if st.gen.number == self.inner.client.generation_number() {
            return Ok(st);
        }
        let _one = self.inner.relogon.lock().await;
        let st = self.state();
        let gen = self.inner.client.generation();
        if st.gen.number == gen.number {
            return Ok(st);
        }
        gen.conn.check_alive()?;
        let new = logon(&self.inner.client, &gen, &self.inner.creds, st.id)
            .await
            .map_err(|e| Error::Reestablish {
                what: "session".into(),
                reason: Box::new(e),
            })?;
        if new.guest && !st.guest {
            // Never carry on as a guest where we were a user.
            return Err(Error::Reestablish {
                what: "session".into(),
                reason: Box::new(Error::Auth(
                    "the server made the new logon a guest session".into(),
                )),
            });
        }
        let new = Arc::new(new);
        *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&new);
        Ok(new)
    }

    /// Connects to a share by name (`"share"`, not a UNC path).
    pub async fn tree_connect(&self, share: &str) -> Result<Tree> {
        if share.is_empty() || share.contains(['\\', '/', '\0']) || share == "." || share == ".." {
            return Err(Error::InvalidArgument(format!("bad share name {share:?}")));
        }
        let st = self.current().await?;
        let tree = connect_tree(self, &st, share).await?;
        Ok(Tree::new(self.clone(), share.to_string(), tree))
    }

    /// The client this session runs on.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The session's id (on the connection it was last established on).
    pub fn id(&self) -> u64 {
        self.state().id
    }

    /// True for a guest or anonymous session.
    pub fn is_guest(&self) -> bool {
        self.state().guest
    }

    /// True when every request of the session is encrypted.
    pub fn encrypts_all(&self) -> bool {
        self.state().encrypt_all
    }

    /// The authentication mechanism of the last logon ("NTLMv2", "Kerberos").
    pub fn mechanism(&self) -> &'static str {
        self.state().mechanism
    }

    /// Signing algorithm in use, if messages are signed ("HMAC-SHA256", "AES-128-CMAC", "AES-128-GMAC").
    pub fn signing_algorithm(&self) -> Option<&'static str> {
        let st = self.state();
        if st.sign_all {
            st.signing_name
        } else {
            None
        }
    }

    /// Signing algorithm of the session's key, whether or not requests are signed
    /// (the final SESSION_SETUP and VALIDATE_NEGOTIATE are always signed with it).
    pub fn session_signing_algorithm(&self) -> Option<&'static str> {
        self.state().signing_name
    }

    /// Cipher in use, if the session encrypts ("AES-128-CCM", ...).
    pub fn cipher(&self) -> Option<&'static str> {
        let st = self.state();
        if st.encrypt_all {
            st.cipher_name
        } else {
            None
        }
    }

    /// The cipher the session would use for an encrypted share, if any.
    pub fn available_cipher(&self) -> Option<&'static str> {
        self.state().cipher_name
    }

    /// Sends an ECHO on this session and waits for the reply, protected like
    /// every other request of the session: signed when the session signs
    /// (the server requires it or [`crate::ClientConfig::sign`]), encrypted
    /// when it encrypts everything. The reply must then be signed (or
    /// encrypted) too. [`Client::echo`] sends an unsigned one outside any
    /// session.
    pub async fn echo(&self) -> Result<()> {
        let st = self.current().await?;
        let mut w = new_message();
        wsession::encode_empty(&mut w);
        let resp = st
            .gen
            .call1(
                Outgoing::new(Command::ECHO, w, st.id, 0),
                &st.security(false),
            )
            .await?;
        resp.check(&[])?;
        wsession::decode_empty(&resp.msg)?;
        Ok(())
    }

    /// Ends the session.
    pub async fn logoff(&self) -> Result<()> {
        let st = self.state();
        let mut w = new_message();
        wsession::encode_empty(&mut w);
        let resp = st
            .gen
            .call1(
                Outgoing::new(Command::LOGOFF, w, st.id, 0),
                &st.security(false),
            )
            .await?;
        st.gen.conn.unregister_cipher(st.id);
        resp.check(&[])?;
        Ok(())
    }
}

/// SESSION_SETUP loop (MS-SMB2 3.2.4.2.3, 3.2.5.3) on connection `gen` with
/// the 3.1.1 preauth hash, key derivation and verification of the final
/// response. `previous`: the SessionId this session had on a lost connection.
async fn logon(
    client: &Client,
    gen: &Arc<Generation>,
    creds: &Credentials,
    previous: u64,
) -> Result<SessionState> {
    let config = client.config();
    let mut params = SetupParams::new(&gen.negotiated, config.sign);
    params.previous_session_id = previous;
    let sign_required = params.sign_required;
    let salt = rand::thread_rng().next_u32();

    let mech = mechanism(client, creds, &gen.negotiated.security_buffer).await?;
    let mut w = new_message();
    let mut st = Handshake::start(mech, gen.preauth.clone(), params, &mut w)?;
    let mut session_id = 0;
    let est = loop {
        let resp = send_setup(gen, w, session_id, &mut |b: &[u8]| st.handle_sent(b)).await?;
        w = new_message();
        match st.handle_response(&resp.msg, creds.guest, salt, &mut w)? {
            Progress::Send(next, id) => {
                st = next;
                session_id = id;
            }
            Progress::Established(est) => break est,
        }
    };
    // Guest check: a guest session has no key, so it cannot give the
    // signing the configuration asks for (MS-SMB2 3.2.5.3.1); refuse
    // rather than carry on unsigned.
    if est.guest && config.sign {
        return Err(Error::Security(
            "signing was asked for, but a guest session has no key to sign with".into(),
        ));
    }

    let session_id = est.session_id;
    let mut signer: Option<Arc<dyn FrameSigner>> = None;
    let mut cipher: Option<Arc<dyn FrameCipher>> = None;
    let mut signing_name = None;
    let mut cipher_name = None;
    if let Some(c) = est.crypto {
        signing_name = Some(proto::signing_name(c.signing.id()));
        signer = Some(Arc::new(SignerAdapter(c.signer)));
        if let Some(sc) = c.cipher {
            cipher_name = Some(proto::cipher_name(sc.cipher().id()));
            let fc: Arc<dyn FrameCipher> = Arc::new(CipherAdapter {
                cipher: sc,
                session_id,
            });
            gen.conn.register_cipher(session_id, Arc::clone(&fc));
            cipher = Some(fc);
        }
    }
    let encrypt_all = est.session_flags & SESSION_FLAG_ENCRYPT_DATA != 0
        || config.encryption == EncryptionMode::Required;
    if encrypt_all && cipher.is_none() {
        return Err(Error::Security(
            "encryption is required but this session cannot encrypt".into(),
        ));
    }
    let sign_all = signer.is_some() && sign_required;
    Ok(SessionState {
        gen: Arc::clone(gen),
        id: session_id,
        signer,
        cipher,
        sign_all,
        encrypt_all,
        signing_name,
        cipher_name,
        guest: est.guest,
        mechanism: est.mechanism,
        validated: AtomicBool::new(false),
    })
}

/// The mechanism for one logon with `creds`: Kerberos when configured
/// (and, unless required, when the server offers it and a ticket is to be
/// had), else NTLMv2 (or anonymous), with fresh randomness each time.
/// `hint` is the NEGOTIATE SecurityBuffer.
async fn mechanism(
    client: &Client,
    creds: &Credentials,
    hint: &[u8],
) -> Result<Box<dyn Mechanism>> {
    if let (Some(k), false) = (&creds.kerberos, creds.guest) {
        match kerberos(client, creds, k, hint).await {
            Ok(m) => return Ok(m),
            Err(e) if k.required => return Err(e),
            Err(e) => tracing::debug!("Kerberos not used, NTLMv2 instead: {e}"),
        }
    }
    Ok(ntlm(creds, hint))
}

/// A Kerberos mechanism for `creds`, its ticket acquired on a blocking
/// thread (a keytab or a password means an exchange with the KDC).
async fn kerberos(
    client: &Client,
    creds: &Credentials,
    k: &KerberosConfig,
    hint: &[u8],
) -> Result<Box<dyn Mechanism>> {
    let offered = hint.is_empty() || NegTokenInit::decode(hint).is_ok_and(|i| i.offers_kerberos());
    if !offered {
        return Err(Error::Auth(
            "the server does not offer Kerberos (a server outside a domain?); \
             use --auth ntlm for NTLMv2"
                .into(),
        ));
    }
    let spn = k
        .spn
        .clone()
        .unwrap_or_else(|| format!("cifs/{}", client.inner.server_name));
    let source = k.source.clone();
    let principal = creds.principal();
    let password = creds.password.clone();
    let mech = tokio::task::spawn_blocking(move || {
        let src = match &source {
            KerberosSource::Keytab(path) => Source::Keytab {
                path,
                principal: &principal,
            },
            KerberosSource::Password => Source::Password {
                principal: &principal,
                password: &password,
            },
            _ => Source::Cache,
        };
        let cred = Credential::acquire(&src).map_err(|e| gss_error(&e))?;
        Kerberos::new(Arc::new(cred), &spn)
    })
    .await
    .map_err(|e| Error::Auth(format!("the Kerberos task failed: {e}")))?
    .map_err(|e| Error::Auth(e.to_string()))?;
    Ok(Box::new(mech))
}

/// NTLMv2 (or anonymous) with fresh randomness.
fn ntlm(creds: &Credentials, hint: &[u8]) -> Box<dyn Mechanism> {
    let auth = if creds.guest {
        Authenticator::anonymous()
    } else {
        Authenticator::new(&creds.user, &creds.domain, &creds.password, "SMBCP")
    };
    let (mut cc, mut key) = ([0u8; 8], Zeroizing::new([0u8; 16]));
    let mut rng = rand::thread_rng();
    rng.fill_bytes(&mut cc);
    rng.fill_bytes(&mut key[..]);
    Box::new(Ntlm::new(auth, hint, now_filetime(), cc, *key))
}

/// Sends one SESSION_SETUP request (unsigned, as the protocol requires).
async fn send_setup(
    gen: &Generation,
    w: crate::wire::Writer,
    session_id: u64,
    hook: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<crate::conn::Response> {
    gen.conn
        .call(
            vec![Outgoing::new(Command::SESSION_SETUP, w, session_id, 0)],
            &Security::default(),
            Some(hook),
        )
        .await?
        .pop()
        .ok_or_else(|| Error::Protocol("missing SESSION_SETUP response".into()))
}

/// TREE_CONNECT to `share` with session state `st` (and, on 3.0/3.0.2,
/// FSCTL_VALIDATE_NEGOTIATE_INFO once per session).
pub(crate) async fn connect_tree(
    session: &Session,
    st: &Arc<SessionState>,
    share: &str,
) -> Result<TreeState> {
    let gen = &st.gen;
    let unc = format!("\\\\{}\\{}", session.inner.client.inner.server_name, share);
    let mut w = new_message();
    wsession::encode_tree_connect(&mut w, &unc);
    // 3.1.1 TREE_CONNECT is always signed (or encrypted) when the session
    // has a key (MS-SMB2 3.2.4.1.1); servers disconnect otherwise.
    let mut sec = st.security(false);
    if sec.cipher.is_none() && gen.negotiated.dialect == Dialect::SMB3_1_1 {
        sec.signer = st.signer.clone();
    }
    let resp = gen
        .call1(Outgoing::new(Command::TREE_CONNECT, w, st.id, 0), &sec)
        .await?;
    resp.check(&[])?;
    let body = wsession::TreeConnectResponse::decode(&resp.msg)?;
    let share_encrypt = body.share_flags & wsession::SHAREFLAG_ENCRYPT_DATA != 0;
    if share_encrypt && st.cipher.is_none() {
        return Err(Error::Security(format!(
            "share {share} requires encryption, which this session cannot do"
        )));
    }
    let tree = TreeState {
        session: Arc::clone(st),
        id: resp.header.tree_id,
        encrypt: share_encrypt,
    };
    let d = gen.negotiated.dialect;
    if (d == Dialect::SMB3_0 || d == Dialect::SMB3_0_2)
        && !st.validated.swap(true, Ordering::AcqRel)
    {
        if let Err(e) = validate_negotiate(session, &tree).await {
            let _ = crate::tree::disconnect_state(&tree).await;
            return Err(e);
        }
    }
    Ok(tree)
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.5), signed, for 3.0 and 3.0.2.
async fn validate_negotiate(session: &Session, tree: &TreeState) -> Result<()> {
    let st = &tree.session;
    let Some(signer) = st.signer.clone() else {
        return Ok(()); // guest/anonymous: nothing to sign with
    };
    let gen = &st.gen;
    let input = wneg::validate_negotiate_input(
        gen.capabilities,
        &session.inner.client.inner.client_guid,
        gen.security_mode,
        &gen.dialects,
    );
    let mut w = new_message();
    ioctl::encode_ioctl(
        &mut w,
        ioctl::FSCTL_VALIDATE_NEGOTIATE_INFO,
        FileId::RELATED,
        &input,
        24,
    );
    let sec = if tree.encrypt || st.encrypt_all {
        st.security(true)
    } else {
        Security {
            signer: Some(signer),
            cipher: None,
        }
    };
    let resp = gen
        .call1(Outgoing::new(Command::IOCTL, w, st.id, tree.id), &sec)
        .await?;
    resp.check(&[])?;
    let out = ValidateNegotiateResponse::decode(IoctlResponse::decode(&resp.msg)?.output)?;
    let n = &gen.negotiated;
    if out.capabilities != n.capabilities
        || out.guid != n.server_guid
        || out.security_mode != n.security_mode
        || out.dialect != n.dialect
    {
        return Err(Error::Auth(
            "FSCTL_VALIDATE_NEGOTIATE_INFO mismatch: possible downgrade attack".into(),
        ));
    }
    Ok(())
}
