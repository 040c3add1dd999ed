//! [`Session`]: an authenticated user on a [`crate::Client`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::auth::Authenticator;
use crate::client::{Client, EncryptionMode};
use crate::conn::{new_message, FrameCipher, FrameSigner, Outgoing, Security};
use crate::crypto::{SessionCipher, Signer};
use crate::error::{Error, Result};
use crate::file::FileTime;
use crate::proto;
use crate::proto::session::{ExpectChallenge, SetupParams};
use crate::tree::Tree;
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
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .field("guest", &self.guest)
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
    pub(crate) id: u64,
    pub(crate) client: Client,
    signer: Option<Arc<dyn FrameSigner>>,
    cipher: Option<Arc<dyn FrameCipher>>,
    /// Sign every request (server requires it, or the config asks).
    sign_all: bool,
    /// Encrypt every request (SMB2_SESSION_FLAG_ENCRYPT_DATA or EncryptionMode::Required).
    encrypt_all: bool,
    signing_name: Option<&'static str>,
    cipher_name: Option<&'static str>,
    guest: bool,
    validated: AtomicBool,
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
    /// SESSION_SETUP loop (MS-SMB2 3.2.4.2.3, 3.2.5.3) with the 3.1.1 preauth
    /// hash, key derivation and verification of the final response.
    pub(crate) async fn setup(client: Client, creds: &Credentials) -> Result<Self> {
        let ci = &client.inner;
        let auth = if creds.guest {
            Authenticator::anonymous()
        } else {
            Authenticator::new(&creds.user, &creds.domain, &creds.password, "SMBCP")
        };
        let params = SetupParams::new(&ci.negotiated, ci.config.sign);
        let sign_required = params.sign_required;

        // Leg 1: NEGOTIATE_MESSAGE.
        let mut w = new_message();
        let mut st = ExpectChallenge::start(
            auth,
            ci.preauth.clone(),
            params,
            &ci.negotiated.security_buffer,
            &mut w,
        )?;
        let resp = Self::send_setup(ci, w, 0, &mut |b: &[u8]| st.handle_sent(b)).await?;

        // Leg 2: AUTHENTICATE_MESSAGE.
        let mut rng = rand::thread_rng();
        let (mut cc, mut key) = ([0u8; 8], [0u8; 16]);
        rng.fill_bytes(&mut cc);
        rng.fill_bytes(&mut key);
        let salt = rng.next_u32();
        let mut w = new_message();
        let (mut st, session_id) =
            st.handle_response(&resp.msg, now_filetime(), cc, key, &mut w)?;
        let resp = Self::send_setup(ci, w, session_id, &mut |b: &[u8]| st.handle_sent(b)).await?;
        let est = st.handle_response(&resp.msg, creds.guest, salt)?;

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
                ci.conn.register_cipher(session_id, Arc::clone(&fc));
                cipher = Some(fc);
            }
        }
        let encrypt_all = est.session_flags & SESSION_FLAG_ENCRYPT_DATA != 0
            || ci.config.encryption == EncryptionMode::Required;
        if encrypt_all && cipher.is_none() {
            return Err(Error::Security(
                "encryption is required but this session cannot encrypt".into(),
            ));
        }
        let sign_all = signer.is_some() && sign_required;
        Ok(Self {
            inner: Arc::new(SessionInner {
                id: session_id,
                client,
                signer,
                cipher,
                sign_all,
                encrypt_all,
                signing_name,
                cipher_name,
                guest: est.guest,
                validated: AtomicBool::new(false),
            }),
        })
    }

    /// Sends one SESSION_SETUP request (unsigned, as the protocol requires).
    async fn send_setup(
        ci: &crate::client::ClientInner,
        w: crate::wire::Writer,
        session_id: u64,
        hook: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<crate::conn::Response> {
        ci.conn
            .call(
                vec![Outgoing::new(Command::SESSION_SETUP, w, session_id, 0)],
                &Security::default(),
                Some(hook),
            )
            .await?
            .pop()
            .ok_or_else(|| Error::Protocol("missing SESSION_SETUP response".into()))
    }

    /// Connects to a share by name (`"share"`, not a UNC path).
    pub async fn tree_connect(&self, share: &str) -> Result<Tree> {
        if share.is_empty() || share.contains(['\\', '/', '\0']) {
            return Err(Error::InvalidArgument(format!("bad share name {share:?}")));
        }
        let ci = &self.inner.client.inner;
        let unc = format!("\\\\{}\\{}", ci.server_name, share);
        let mut w = new_message();
        wsession::encode_tree_connect(&mut w, &unc);
        // 3.1.1 TREE_CONNECT is always signed (or encrypted) when the session
        // has a key (MS-SMB2 3.2.4.1.1); servers disconnect otherwise.
        let mut sec = self.security(false);
        if sec.cipher.is_none() && ci.negotiated.dialect == Dialect::SMB3_1_1 {
            sec.signer = self.inner.signer.clone();
        }
        let resp = self
            .inner
            .client
            .call1(
                Outgoing::new(Command::TREE_CONNECT, w, self.inner.id, 0),
                &sec,
            )
            .await?;
        resp.check(&[])?;
        let body = wsession::TreeConnectResponse::decode(&resp.msg)?;
        let share_encrypt = body.share_flags & wsession::SHAREFLAG_ENCRYPT_DATA != 0;
        if share_encrypt && self.inner.cipher.is_none() {
            return Err(Error::Security(format!(
                "share {share} requires encryption, which this session cannot do"
            )));
        }
        let tree = Tree::new(
            self.clone(),
            resp.header.tree_id,
            share_encrypt,
            share.to_string(),
        );
        let d = ci.negotiated.dialect;
        if (d == Dialect::SMB3_0 || d == Dialect::SMB3_0_2)
            && !self.inner.validated.swap(true, Ordering::AcqRel)
        {
            if let Err(e) = self.validate_negotiate(&tree).await {
                let _ = tree.disconnect().await;
                return Err(e);
            }
        }
        Ok(tree)
    }

    /// FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.5), signed, for 3.0 and 3.0.2.
    async fn validate_negotiate(&self, tree: &Tree) -> Result<()> {
        let Some(signer) = self.inner.signer.clone() else {
            return Ok(()); // guest/anonymous: nothing to sign with
        };
        let ci = &self.inner.client.inner;
        let input = wneg::validate_negotiate_input(
            ci.capabilities,
            &ci.client_guid,
            ci.security_mode,
            &ci.dialects,
        );
        let mut w = new_message();
        ioctl::encode_ioctl(
            &mut w,
            ioctl::FSCTL_VALIDATE_NEGOTIATE_INFO,
            FileId::RELATED,
            &input,
            24,
        );
        let sec = if tree.encrypted() || self.inner.encrypt_all {
            self.security(true)
        } else {
            Security {
                signer: Some(signer),
                cipher: None,
            }
        };
        let resp = ci
            .conn
            .call(vec![tree.outgoing(Command::IOCTL, w)], &sec, None)
            .await?
            .pop();
        let resp = resp.ok_or_else(|| Error::Protocol("missing IOCTL response".into()))?;
        resp.check(&[])?;
        let out = ValidateNegotiateResponse::decode(IoctlResponse::decode(&resp.msg)?.output)?;
        let n = &ci.negotiated;
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

    /// How to protect a request on a tree that does (or does not) require encryption.
    pub(crate) fn security(&self, tree_encrypt: bool) -> Security {
        let i = &self.inner;
        if (i.encrypt_all || tree_encrypt) && i.cipher.is_some() {
            Security {
                signer: None,
                cipher: i.cipher.clone(),
            }
        } else if i.sign_all {
            Security {
                signer: i.signer.clone(),
                cipher: None,
            }
        } else {
            Security::default()
        }
    }

    /// The client this session runs on.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// True for a guest or anonymous session.
    pub fn is_guest(&self) -> bool {
        self.inner.guest
    }

    /// True when every request of the session is encrypted.
    pub fn encrypts_all(&self) -> bool {
        self.inner.encrypt_all
    }

    /// Signing algorithm in use, if messages are signed ("HMAC-SHA256", "AES-128-CMAC", "AES-128-GMAC").
    pub fn signing_algorithm(&self) -> Option<&'static str> {
        if self.inner.sign_all {
            self.inner.signing_name
        } else {
            None
        }
    }

    /// Signing algorithm of the session's key, whether or not requests are signed
    /// (the final SESSION_SETUP and VALIDATE_NEGOTIATE are always signed with it).
    pub fn session_signing_algorithm(&self) -> Option<&'static str> {
        self.inner.signing_name
    }

    /// Cipher in use, if the session encrypts ("AES-128-CCM", ...).
    pub fn cipher(&self) -> Option<&'static str> {
        if self.inner.encrypt_all {
            self.inner.cipher_name
        } else {
            None
        }
    }

    /// The cipher the session would use for an encrypted share, if any.
    pub fn available_cipher(&self) -> Option<&'static str> {
        self.inner.cipher_name
    }

    /// Ends the session.
    pub async fn logoff(&self) -> Result<()> {
        let mut w = new_message();
        wsession::encode_empty(&mut w);
        let resp = self
            .inner
            .client
            .call1(
                Outgoing::new(Command::LOGOFF, w, self.inner.id, 0),
                &self.security(false),
            )
            .await?;
        self.inner
            .client
            .inner
            .conn
            .unregister_cipher(self.inner.id);
        resp.check(&[])?;
        Ok(())
    }
}
