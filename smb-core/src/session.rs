//! [`Session`]: an authenticated user on a [`crate::Client`].

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::tree::Tree;

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
}

impl Session {
    /// Connects to a share by name (`"share"`, not a UNC path).
    pub async fn tree_connect(&self, share: &str) -> Result<Tree> {
        let _ = share;
        todo!("smb-core: tree_connect")
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Signing algorithm in use, if messages are signed ("HMAC-SHA256", "AES-128-CMAC", "AES-128-GMAC").
    pub fn signing_algorithm(&self) -> Option<&'static str> {
        todo!("smb-core: signing_algorithm")
    }

    /// Cipher in use, if the session encrypts ("AES-128-CCM", ...).
    pub fn cipher(&self) -> Option<&'static str> {
        todo!("smb-core: cipher")
    }

    /// Ends the session.
    pub async fn logoff(&self) -> Result<()> {
        todo!("smb-core: logoff")
    }
}
