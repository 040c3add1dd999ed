//! [`Client`]: one TCP connection to one server, negotiated and shared.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::session::{Credentials, Session};
use crate::wire::Dialect;

/// Whether to encrypt traffic (SMB 3.x only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EncryptionMode {
    /// Encrypt only when the server or share requires it.
    #[default]
    Auto,
    /// Always encrypt; fail when the server cannot.
    Required,
}

/// Connection settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed for TCP connect + NEGOTIATE.
    pub connect_timeout: Duration,
    /// Time allowed for each request (interim STATUS_PENDING replies extend it).
    pub request_timeout: Duration,
    /// Lowest dialect we accept.
    pub min_dialect: Dialect,
    /// Highest dialect we offer.
    pub max_dialect: Dialect,
    /// Sign every message even when the server does not require it.
    /// When false, messages are signed only if the server requires signing
    /// (the session setup is always protected as the protocol demands).
    pub sign: bool,
    /// Encryption policy.
    pub encryption: EncryptionMode,
    /// Credits we ask the server for (the window of 64 KiB units in flight).
    pub credit_target: u16,
    /// Upper bound on read/write sizes (the negotiated maximum is used when smaller).
    pub max_io_size: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            min_dialect: Dialect::SMB2_0_2,
            max_dialect: Dialect::SMB3_1_1,
            sign: false,
            encryption: EncryptionMode::Auto,
            credit_target: 8192,
            max_io_size: 8 * 1024 * 1024,
        }
    }
}

/// What NEGOTIATE (and later SESSION_SETUP) settled on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NegotiatedInfo {
    /// The dialect in use.
    pub dialect: Dialect,
    /// MaxReadSize, capped by [`ClientConfig::max_io_size`].
    pub max_read_size: u32,
    /// MaxWriteSize, capped by [`ClientConfig::max_io_size`].
    pub max_write_size: u32,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// True when the server supports multi-credit requests (2.1+).
    pub large_mtu: bool,
    /// The server's SecurityMode says signing is required.
    pub server_requires_signing: bool,
}

/// A connection to one server. Cheap to clone; all clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) config: ClientConfig,
}

impl Client {
    /// Connects to `host:port` over direct TCP (TCP_NODELAY) and negotiates.
    pub async fn connect(host: &str, port: u16, config: ClientConfig) -> Result<Self> {
        let _ = (host, port, config);
        todo!("smb-core: connect")
    }

    /// The negotiated parameters.
    pub fn negotiated(&self) -> NegotiatedInfo {
        todo!("smb-core: negotiated")
    }

    /// Authenticates with NTLMv2 inside SPNEGO and returns the session.
    pub async fn session_setup(&self, creds: &Credentials) -> Result<Session> {
        let _ = creds;
        todo!("smb-core: session_setup")
    }

    /// Sends an ECHO and waits for the reply.
    pub async fn echo(&self) -> Result<()> {
        todo!("smb-core: echo")
    }

    /// Credits the server has granted and we have not yet spent.
    pub fn credits_available(&self) -> usize {
        todo!("smb-core: credits_available")
    }
}
