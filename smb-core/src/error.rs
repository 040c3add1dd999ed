//! The error type of the async API, and what a caller should do about each
//! error ([`Action`]): retry as is, reconnect, re-authenticate, or give up.

use std::sync::Arc;

use crate::proto::conn::LostReason;
use crate::wire::{Command, DecodeError, NtStatus};

/// Result alias for smb-core's async API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a caller should do after an error: a typed decision, so nobody
/// matches on message strings (MS-SMB2 3.2.4.1.8 for the session cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// The same request may succeed later on the same connection (a
    /// sharing violation, a busy server).
    Retry,
    /// The connection is gone or unusable: dial again, then re-establish
    /// the session, tree and open files ([`crate::Client::reconnect`]).
    Reconnect,
    /// The connection is fine but the session expired or was deleted:
    /// authenticate again on it.
    Reauthenticate,
    /// Retrying cannot help (access denied, not found, bad credentials,
    /// a protocol violation, bad input).
    GiveUp,
}

/// Everything that can go wrong talking to a server.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket error (connecting, or a local file of a direct transfer).
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
    /// The connection is gone; every pending and later request on it fails
    /// with this, until [`crate::Client::reconnect`].
    #[error("connection lost: {0}")]
    ConnectionLost(LostReason),
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
    /// The server does not support something we asked for (a server-side
    /// copy it refuses, a feature it lacks).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The server broke the protocol (a missing response, a short write it
    /// claimed as done, a NEGOTIATE we cannot accept).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A security requirement cannot be met (encryption required but not
    /// available, a cipher that cannot be set up).
    #[error("security requirement not met: {0}")]
    Security(String),
    /// A whole-file read found the file larger than asked: it grew since
    /// it was listed (read it in pieces instead).
    #[error("the file has {size} bytes, more than the {max_len} asked for")]
    FileGrew {
        /// The file's size now.
        size: u64,
        /// What the caller allowed.
        max_len: u32,
    },
    /// A handle could not be re-established on a new connection.
    #[error("cannot re-establish {what} after a reconnect: {reason}")]
    Reestablish {
        /// "session", "tree `share`" or "file `path`".
        what: String,
        /// Why (the error of the attempt).
        reason: Box<Self>,
    },
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
            Self::Reestablish { reason, .. } => reason.status(),
            _ => None,
        }
    }

    /// What the caller should do about this error.
    pub fn action(&self) -> Action {
        match self {
            Self::Io(_)
            | Self::ConnectionLost(_)
            | Self::Timeout(_)
            | Self::CreditStarved { .. } => Action::Reconnect,
            Self::Status { status, .. } => match *status {
                NtStatus::NETWORK_SESSION_EXPIRED | NtStatus::USER_SESSION_DELETED => {
                    Action::Reauthenticate
                }
                NtStatus::NETWORK_NAME_DELETED
                | NtStatus::CONNECTION_DISCONNECTED
                | NtStatus::CONNECTION_RESET => Action::Reconnect,
                s if s.is_transient() => Action::Retry,
                _ => Action::GiveUp,
            },
            Self::Reestablish { reason, .. } => match reason.action() {
                // The new connection broke too: another reconnect may work.
                Action::Reconnect => Action::Reconnect,
                _ => Action::GiveUp,
            },
            _ => Action::GiveUp,
        }
    }

    /// True for errors worth retrying in some way (connection trouble,
    /// timeouts, sharing violations, expired sessions), false for permanent
    /// ones (access denied, not found, bad credentials, bad input).
    pub fn is_transient(&self) -> bool {
        self.action() != Action::GiveUp
    }

    /// True when the connection must be dialled again before anything on it works.
    pub fn needs_reconnect(&self) -> bool {
        matches!(self.action(), Action::Reconnect | Action::Reauthenticate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_says_what_to_do() {
        let st = |status| Error::Status {
            status,
            command: Command::READ,
        };
        let lost = Error::ConnectionLost(LostReason::Closed);
        assert_eq!(lost.action(), Action::Reconnect);
        assert_eq!(
            Error::Timeout(std::time::Duration::from_secs(1)).action(),
            Action::Reconnect
        );
        assert_eq!(st(NtStatus::SHARING_VIOLATION).action(), Action::Retry);
        assert_eq!(
            st(NtStatus::NETWORK_SESSION_EXPIRED).action(),
            Action::Reauthenticate
        );
        assert_eq!(st(NtStatus::ACCESS_DENIED).action(), Action::GiveUp);
        assert_eq!(Error::BadSignature.action(), Action::GiveUp);
        assert_eq!(Error::Auth("no".into()).action(), Action::GiveUp);
        let again = Error::Reestablish {
            what: "session".into(),
            reason: Box::new(lost),
        };
        assert_eq!(again.action(), Action::Reconnect);
        let denied = Error::Reestablish {
            what: "file `a`".into(),
            reason: Box::new(st(NtStatus::ACCESS_DENIED)),
        };
        assert_eq!(denied.action(), Action::GiveUp);
        assert_eq!(denied.status(), Some(NtStatus::ACCESS_DENIED));
        assert!(!denied.is_transient());
    }
}
