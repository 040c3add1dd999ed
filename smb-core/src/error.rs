//! The error type of the async API.

use std::sync::Arc;

use crate::wire::{Command, DecodeError, NtStatus};

/// Result alias for smb-core's async API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a server.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket error.
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    /// The server sent bytes we could not decode.
    #[error("malformed reply from server: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered a request with an error status.
    #[error("{command:?} failed: {status}")]
    Status {
        /// The NTSTATUS the server returned.
        status: NtStatus,
        /// The command that failed.
        command: Command,
    },
    /// Authentication failed or the server's security blob was unusable.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// A signed response did not verify.
    #[error("bad signature on a reply from the server")]
    BadSignature,
    /// The connection is gone; every pending and later request fails with this.
    #[error("connection lost: {0}")]
    ConnectionLost(crate::proto::conn::LostReason),
    /// The server granted no credits for the request within the request
    /// timeout (MS-SMB2 3.2.4.1.5): a bounded error, never an endless wait.
    #[error(
        "the server granted no credits for {waited:?} ({available} available, {needed} needed)"
    )]
    CreditStarved {
        /// Credits the request needed.
        needed: u64,
        /// Credits granted and unspent.
        available: u64,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// A request (or connect) took longer than the configured timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The server does not support something we need.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The caller passed an invalid argument (e.g. a bad path).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

impl Error {
    /// The NTSTATUS of a server error, if this is one.
    pub fn status(&self) -> Option<NtStatus> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for errors worth retrying (connection trouble, timeouts, sharing
    /// violations), false for permanent ones (access denied, not found, bad
    /// credentials, bad input).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io(_)
            | Self::ConnectionLost(_)
            | Self::Timeout(_)
            | Self::CreditStarved { .. } => true,
            Self::Status { status, .. } => status.is_transient(),
            _ => false,
        }
    }
}
