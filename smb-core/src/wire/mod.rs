//! The SMB2/3 wire codec (MS-SMB2 section 2.2): pure, no I/O.

use std::fmt;

#[cfg(test)]
mod captured;
pub mod codec;
pub mod create;
pub mod dfs;
pub mod dir;
pub mod fuzz;
pub mod header;
pub mod info;
pub mod io;
pub mod ioctl;
pub mod negotiate;
pub mod oplock;
pub mod session;

pub use codec::{Reader, Writer};
pub use create::FileId;
pub use header::{Header, TransformHeader};

/// A decoding failure: what was wrong, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct DecodeError {
    /// What was malformed.
    pub what: &'static str,
}

impl DecodeError {
    /// A new error.
    pub const fn new(what: &'static str) -> Self {
        Self { what }
    }
}

/// An SMB2 dialect revision (MS-SMB2 2.2.3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dialect(pub u16);

impl Dialect {
    /// SMB 2.0.2.
    pub const SMB2_0_2: Self = Self(0x0202);
    /// SMB 2.1.
    pub const SMB2_1: Self = Self(0x0210);
    /// SMB 3.0.
    pub const SMB3_0: Self = Self(0x0300);
    /// SMB 3.0.2.
    pub const SMB3_0_2: Self = Self(0x0302);
    /// SMB 3.1.1.
    pub const SMB3_1_1: Self = Self(0x0311);

    /// "3.1.1" etc.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x0202 => "2.0.2",
            0x0210 => "2.1",
            0x0300 => "3.0",
            0x0302 => "3.0.2",
            0x0311 => "3.1.1",
            0x02ff => "2.???",
            _ => "unknown",
        }
    }

    /// True for the SMB 3 family.
    pub fn is_smb3(self) -> bool {
        self.0 >= 0x0300
    }
}

impl fmt::Debug for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SMB {} (0x{:04x})", self.name(), self.0)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SMB2 command code (MS-SMB2 2.2.1.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command(pub u16);

impl Command {
    /// NEGOTIATE.
    pub const NEGOTIATE: Self = Self(0x0000);
    /// SESSION_SETUP.
    pub const SESSION_SETUP: Self = Self(0x0001);
    /// LOGOFF.
    pub const LOGOFF: Self = Self(0x0002);
    /// TREE_CONNECT.
    pub const TREE_CONNECT: Self = Self(0x0003);
    /// TREE_DISCONNECT.
    pub const TREE_DISCONNECT: Self = Self(0x0004);
    /// CREATE.
    pub const CREATE: Self = Self(0x0005);
    /// CLOSE.
    pub const CLOSE: Self = Self(0x0006);
    /// FLUSH.
    pub const FLUSH: Self = Self(0x0007);
    /// READ.
    pub const READ: Self = Self(0x0008);
    /// WRITE.
    pub const WRITE: Self = Self(0x0009);
    /// LOCK.
    pub const LOCK: Self = Self(0x000A);
    /// IOCTL.
    pub const IOCTL: Self = Self(0x000B);
    /// CANCEL.
    pub const CANCEL: Self = Self(0x000C);
    /// ECHO.
    pub const ECHO: Self = Self(0x000D);
    /// QUERY_DIRECTORY.
    pub const QUERY_DIRECTORY: Self = Self(0x000E);
    /// CHANGE_NOTIFY.
    pub const CHANGE_NOTIFY: Self = Self(0x000F);
    /// QUERY_INFO.
    pub const QUERY_INFO: Self = Self(0x0010);
    /// SET_INFO.
    pub const SET_INFO: Self = Self(0x0011);
    /// OPLOCK_BREAK.
    pub const OPLOCK_BREAK: Self = Self(0x0012);

    /// The command's name, or `None` for an unknown code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "NEGOTIATE",
            0x01 => "SESSION_SETUP",
            0x02 => "LOGOFF",
            0x03 => "TREE_CONNECT",
            0x04 => "TREE_DISCONNECT",
            0x05 => "CREATE",
            0x06 => "CLOSE",
            0x07 => "FLUSH",
            0x08 => "READ",
            0x09 => "WRITE",
            0x0A => "LOCK",
            0x0B => "IOCTL",
            0x0C => "CANCEL",
            0x0D => "ECHO",
            0x0E => "QUERY_DIRECTORY",
            0x0F => "CHANGE_NOTIFY",
            0x10 => "QUERY_INFO",
            0x11 => "SET_INFO",
            0x12 => "OPLOCK_BREAK",
            _ => return None,
        })
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Command(0x{:04x})", self.0),
        }
    }
}

/// An NTSTATUS code (MS-ERREF 2.3). Unknown codes are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub u32);

macro_rules! nt_statuses {
    ($($name:ident = $val:expr,)*) => {
        impl NtStatus {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Self = Self($val);
            )*

            /// The symbolic name (e.g. `STATUS_ACCESS_DENIED`), or `None` when unknown.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(concat!("STATUS_", stringify!($name))),)*
                    _ => None,
                }
            }
        }
    };
}

nt_statuses! {
    SUCCESS = 0x0000_0000,
    PENDING = 0x0000_0103,
    NOTIFY_ENUM_DIR = 0x0000_010C,
    BUFFER_OVERFLOW = 0x8000_0005,
    NO_MORE_FILES = 0x8000_0006,
    UNSUCCESSFUL = 0xC000_0001,
    NOT_IMPLEMENTED = 0xC000_0002,
    INVALID_INFO_CLASS = 0xC000_0003,
    INFO_LENGTH_MISMATCH = 0xC000_0004,
    INVALID_HANDLE = 0xC000_0008,
    INVALID_PARAMETER = 0xC000_000D,
    NO_SUCH_DEVICE = 0xC000_000E,
    NO_SUCH_FILE = 0xC000_000F,
    INVALID_DEVICE_REQUEST = 0xC000_0010,
    END_OF_FILE = 0xC000_0011,
    MORE_PROCESSING_REQUIRED = 0xC000_0016,
    NO_MEMORY = 0xC000_0017,
    ACCESS_DENIED = 0xC000_0022,
    BUFFER_TOO_SMALL = 0xC000_0023,
    OBJECT_NAME_INVALID = 0xC000_0033,
    OBJECT_NAME_NOT_FOUND = 0xC000_0034,
    OBJECT_NAME_COLLISION = 0xC000_0035,
    OBJECT_PATH_INVALID = 0xC000_0039,
    OBJECT_PATH_NOT_FOUND = 0xC000_003A,
    OBJECT_PATH_SYNTAX_BAD = 0xC000_003B,
    SHARING_VIOLATION = 0xC000_0043,
    DELETE_PENDING = 0xC000_0056,
    PRIVILEGE_NOT_HELD = 0xC000_0061,
    LOGON_FAILURE = 0xC000_006D,
    ACCOUNT_RESTRICTION = 0xC000_006E,
    PASSWORD_EXPIRED = 0xC000_0071,
    ACCOUNT_DISABLED = 0xC000_0072,
    INSUFFICIENT_RESOURCES = 0xC000_009A,
    MEDIA_WRITE_PROTECTED = 0xC000_00A2,
    FILE_IS_A_DIRECTORY = 0xC000_00BA,
    NOT_SUPPORTED = 0xC000_00BB,
    NETWORK_NAME_DELETED = 0xC000_00C9,
    BAD_NETWORK_NAME = 0xC000_00CC,
    REQUEST_NOT_ACCEPTED = 0xC000_00D0,
    DIRECTORY_NOT_EMPTY = 0xC000_0101,
    NOT_A_DIRECTORY = 0xC000_0103,
    CANCELLED = 0xC000_0120,
    FILE_CLOSED = 0xC000_0128,
    IO_TIMEOUT = 0xC000_00B5,
    DISK_FULL = 0xC000_007F,
    NETWORK_SESSION_EXPIRED = 0xC000_035C,
    USER_SESSION_DELETED = 0xC000_0203,
    CONNECTION_DISCONNECTED = 0xC000_020C,
    CONNECTION_RESET = 0xC000_020D,
    INSUFF_SERVER_RESOURCES = 0xC000_0205,
    NETWORK_ACCESS_DENIED = 0xC000_00CA,
    BAD_IMPERSONATION_LEVEL = 0xC000_00A5,
    FS_DRIVER_REQUIRED = 0xC000_019C,
    FILE_LOCK_CONFLICT = 0xC000_0054,
    LOCK_NOT_GRANTED = 0xC000_0055,
    STOPPED_ON_SYMLINK = 0x8000_002D,
    INVALID_NETWORK_RESPONSE = 0xC000_00C3,
    OBJECTID_NOT_FOUND = 0xC000_02F0,
    // A DFS link: the path lives on another share (MS-DFSC 3.1.5.1).
    PATH_NOT_COVERED = 0xC000_0257,
}

impl NtStatus {
    /// True for `STATUS_SUCCESS` and other non-error, non-warning codes.
    pub fn is_success(self) -> bool {
        self.0 >> 30 == 0
    }

    /// True for errors that may go away when retried.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::SHARING_VIOLATION
                | Self::INSUFFICIENT_RESOURCES
                | Self::INSUFF_SERVER_RESOURCES
                | Self::NETWORK_NAME_DELETED
                | Self::NETWORK_SESSION_EXPIRED
                | Self::USER_SESSION_DELETED
                | Self::CONNECTION_DISCONNECTED
                | Self::CONNECTION_RESET
                | Self::IO_TIMEOUT
                | Self::FILE_LOCK_CONFLICT
                | Self::LOCK_NOT_GRANTED
                | Self::DELETE_PENDING
                | Self::REQUEST_NOT_ACCEPTED
        )
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "NtStatus(0x{:08x})", self.0),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (0x{:08x})", self.0),
            None => write!(f, "NTSTATUS 0x{:08x}", self.0),
        }
    }
}
