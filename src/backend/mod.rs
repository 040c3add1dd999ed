//! Storage backends: one enum over a local directory tree and an SMB share,
//! with the handful of async operations the scanner and the copy engine need.
//! Paths given to a backend are relative to its root, `/`-separated, and
//! never contain `.` or `..` (they come from directory listings).

use std::fmt;

use bytes::Bytes;
use smb_core::{FileTime, FileTimes};

use crate::copy::temp::TempRefused;

pub mod local;
mod pool;
pub mod smb;

pub use local::LocalFs;
pub use smb::SmbFs;

/// FILE_ATTRIBUTE_READONLY.
pub const ATTR_READONLY: u32 = 0x1;
/// FILE_ATTRIBUTE_DIRECTORY.
pub const ATTR_DIRECTORY: u32 = 0x10;
/// FILE_ATTRIBUTE_ARCHIVE.
pub const ATTR_ARCHIVE: u32 = 0x20;
/// FILE_ATTRIBUTE_NORMAL.
pub const ATTR_NORMAL: u32 = 0x80;
/// The attribute bits `--dcopy A` carries over (hidden, system, archive: a
/// read-only directory would lock the copy out on a Unix destination).
pub const DIR_ATTRS: u32 = 0x2 | 0x4 | 0x20;
/// The attribute bits `--copy A` carries over (read-only, hidden, system, archive).
pub const COPIED_ATTRS: u32 = 0x1 | 0x2 | 0x4 | 0x20;

/// When file data may move between socket and local file inside the kernel
/// (`splice(2)`, Linux, unsigned and unencrypted sessions only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ZeroCopy {
    /// Downloads always; uploads unless the server is on this machine. Over
    /// loopback the server's CPU is the network: handed page-cache pages by
    /// reference, smbd copies them cold from RAM (measured: smbd 0.48-0.59
    /// CPU-s/GB against 0.39-0.40 when we send a copy), so there an upload
    /// copies through memory.
    #[default]
    Auto,
    /// Whenever the session allows it, loopback included.
    Always,
    /// Never: every byte passes through memory.
    Never,
}

/// One directory entry, as both sides describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File name (no separators).
    pub name: String,
    /// A directory.
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last write time.
    pub mtime: FileTime,
    /// FILE_ATTRIBUTE_* bits.
    pub attributes: u32,
    /// Creation time, where the side keeps one we can set (SMB); `None`
    /// locally.
    pub created: Option<FileTime>,
}

/// An error of one backend operation.
#[derive(Debug)]
pub enum OpError {
    /// A local I/O error.
    Io(std::io::Error),
    /// An SMB error.
    Smb(smb_core::Error),
    /// The server's connection was lost and could not be had back within
    /// `--reconnect-for` (or the server refused the new logon).
    Disconnected(String),
    /// The source file changed (size or write time) while it was copied: the
    /// copy would be torn. Retried with the file as it is then.
    SourceChanged(String),
    /// `--verify`: the destination read back differs from the source.
    VerifyMismatch(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Smb(e) if e.status() == Some(smb_core::NtStatus::PATH_NOT_COVERED) => {
                write!(f, "{e} (DFS link, not followed)")
            }
            Self::Smb(e) => write!(f, "{e}"),
            Self::Disconnected(m) | Self::SourceChanged(m) | Self::VerifyMismatch(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Smb(e) => Some(e),
            Self::Disconnected(_) | Self::SourceChanged(_) | Self::VerifyMismatch(_) => None,
        }
    }
}

impl From<std::io::Error> for OpError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<smb_core::Error> for OpError {
    fn from(e: smb_core::Error) -> Self {
        Self::Smb(e)
    }
}

/// A failed commit: whether the rename over the final name had already happened
/// (then the complete file is in place and must not be deleted).
#[derive(Debug)]
pub struct CommitError {
    /// The rename succeeded; a later step (times, close) failed.
    pub renamed: bool,
    /// What failed.
    pub error: OpError,
}

/// Result of a backend operation.
pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    /// Worth retrying: SMB transient errors, interrupted or timed-out local I/O.
    /// Access denied is never transient.
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Self::Smb(e) => e.is_transient(),
            Self::Io(e) => matches!(e.kind(), K::Interrupted | K::TimedOut | K::WouldBlock),
            // The reconnect budget is spent: retrying cannot help.
            Self::Disconnected(_) => false,
            Self::SourceChanged(_) => true,
            // Reported as such: a copier that silently retries corruption
            // hides a broken path.
            Self::VerifyMismatch(_) => false,
        }
    }

    /// The server does not do this (e.g. a server-side copy it refuses):
    /// worth doing another way, not worth retrying.
    pub fn is_unsupported(&self) -> bool {
        match self {
            Self::Io(_)
            | Self::Disconnected(_)
            | Self::SourceChanged(_)
            | Self::VerifyMismatch(_) => false,
            Self::Smb(smb_core::Error::Unsupported(_)) => true,
            Self::Smb(e) => e.status().is_some_and(|s| {
                s == smb_core::NtStatus::NOT_SUPPORTED
                    || s == smb_core::NtStatus::INVALID_DEVICE_REQUEST
                    || s == smb_core::NtStatus::INVALID_PARAMETER
            }),
        }
    }

    /// The destination has no room: disk full or quota exceeded (ENOSPC,
    /// EDQUOT, STATUS_DISK_FULL, STATUS_QUOTA_EXCEEDED). Permanent for the run.
    pub fn is_dest_full(&self) -> bool {
        match self {
            Self::Io(e) => matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
            Self::Smb(e) => e.status().is_some_and(|s| {
                s == smb_core::NtStatus::DISK_FULL || s.0 == 0xC000_0044 // STATUS_QUOTA_EXCEEDED
            }),
            _ => false,
        }
    }

    /// The thing does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Io(e) => e.kind() == std::io::ErrorKind::NotFound,
            Self::Disconnected(_) | Self::SourceChanged(_) | Self::VerifyMismatch(_) => false,
            Self::Smb(e) => e.status().is_some_and(|s| {
                s == smb_core::NtStatus::OBJECT_NAME_NOT_FOUND
                    || s == smb_core::NtStatus::OBJECT_PATH_NOT_FOUND
                    || s == smb_core::NtStatus::NO_SUCH_FILE
            }),
        }
    }

    /// A stable machine-readable code: the NTSTATUS name or the errno name.
    pub fn code(&self) -> String {
        match self {
            Self::Disconnected(_) => "SMB_DISCONNECTED".to_string(),
            Self::SourceChanged(_) => "SOURCE_CHANGED".to_string(),
            Self::VerifyMismatch(_) => "VERIFY_MISMATCH".to_string(),
            Self::Smb(e) => match e.status() {
                Some(s) => s
                    .name()
                    .map_or_else(|| format!("0x{:08x}", s.0), str::to_string),
                None => smb_kind(e).to_string(),
            },
            Self::Io(e) if e.get_ref().is_some_and(|i| i.is::<local::NotFollowed>()) => {
                "ELOOP".to_string()
            }
            // A refused temporary name: the server's status.
            Self::Io(e) if e.get_ref().is_some_and(|i| i.is::<TempRefused>()) => e
                .get_ref()
                .and_then(|i| i.downcast_ref::<TempRefused>())
                .map_or_else(String::new, TempRefused::code),
            Self::Io(e) => match e.raw_os_error() {
                Some(n) => errno_name(n).map_or_else(|| format!("errno {n}"), str::to_string),
                None => format!("{:?}", e.kind()),
            },
        }
    }
}

fn smb_kind(e: &smb_core::Error) -> &'static str {
    use smb_core::Error as E;
    match e {
        E::Io(_) => "SMB_IO",
        E::Decode(_) => "SMB_MALFORMED_REPLY",
        E::Auth(_) => "SMB_AUTH",
        E::BadSignature => "SMB_BAD_SIGNATURE",
        E::ConnectionLost(_) => "SMB_CONNECTION_LOST",
        E::Timeout(_) => "SMB_TIMEOUT",
        E::Unsupported(_) => "SMB_UNSUPPORTED",
        E::Protocol(_) => "SMB_PROTOCOL_ERROR",
        E::Security(_) => "SMB_SECURITY",
        E::CreditStarved { .. } => "SMB_CREDIT_STARVED",
        E::FileGrew { .. } => "SMB_FILE_GREW",
        E::Reestablish { .. } => "SMB_REESTABLISH",
        E::InvalidArgument(_) => "SMB_INVALID_ARGUMENT",
        _ => "SMB_ERROR",
    }
}

/// Names of the errno values a copier meets.
fn errno_name(n: i32) -> Option<&'static str> {
    Some(match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EDQUOT => "EDQUOT",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return None,
    })
}

/// A source or destination tree.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A local directory.
    Local(LocalFs),
    /// A directory on an SMB share.
    Smb(SmbFs),
}

/// An open file being read.
#[derive(Debug, Clone)]
pub enum Reader {
    /// Local file.
    Local(local::LocalReader),
    /// SMB handle, shared by every block worker.
    Smb(smb::SmbReader),
}

/// A temporary destination file being written.
#[derive(Debug, Clone)]
pub enum Writer {
    /// Local file.
    Local(local::LocalWriter),
    /// SMB handle, shared by every block worker.
    Smb(smb::SmbWriter),
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Self::Local($b) => $e,
            Self::Smb($b) => $e,
        }
    };
}

impl Backend {
    /// True when READ data from this (SMB) source can go straight into files
    /// of the (local, buffered) destination `dst`, inside the kernel (see
    /// [`smb::SmbReader::read_into`]).
    pub fn reads_into_files_of(&self, dst: &Self, policy: ZeroCopy) -> bool {
        match (self, dst) {
            (Self::Smb(s), Self::Local(d)) => {
                policy != ZeroCopy::Never && s.reads_into_files_directly() && !d.unbuffered()
            }
            _ => false,
        }
    }

    /// True when data of this (local, buffered) source's files can go to
    /// the (SMB) destination `dst` without passing through memory (see
    /// [`smb::SmbWriter::write_from`]), and `policy` wants that.
    pub fn files_go_directly_to(&self, dst: &Self, policy: ZeroCopy) -> bool {
        match (self, dst) {
            (Self::Local(s), Self::Smb(d)) => {
                let wanted = match policy {
                    ZeroCopy::Auto => !d.server_is_local(),
                    ZeroCopy::Always => true,
                    ZeroCopy::Never => false,
                };
                wanted && d.reads_into_files_directly() && !s.unbuffered()
            }
            _ => false,
        }
    }

    /// Lists a directory (without `.` and `..`).
    pub async fn list_dir(&self, rel: &str) -> OpResult<Vec<Entry>> {
        dispatch!(self, b => b.list_dir(rel).await)
    }

    /// Metadata of one path.
    pub async fn stat(&self, rel: &str) -> OpResult<Entry> {
        dispatch!(self, b => b.stat(rel).await)
    }

    /// Reads a whole file of known small size in one go (a compound on SMB).
    pub async fn read_whole(&self, rel: &str, size: u64) -> OpResult<Bytes> {
        dispatch!(self, b => b.read_whole(rel, size).await)
    }

    /// Opens a file for positional reads.
    pub async fn open_read(&self, rel: &str) -> OpResult<Reader> {
        match self {
            Self::Local(b) => Ok(Reader::Local(b.open_read(rel).await?)),
            Self::Smb(b) => Ok(Reader::Smb(b.open_read(rel).await?)),
        }
    }

    /// Creates the temporary file `temp_rel` for positional writes.
    pub async fn create(&self, temp_rel: &str, size: u64) -> OpResult<Writer> {
        match self {
            Self::Local(b) => Ok(Writer::Local(b.create(temp_rel, size).await?)),
            Self::Smb(b) => Ok(Writer::Smb(b.create(temp_rel, size).await?)),
        }
    }

    /// Opens the existing temporary file `temp_rel` for more positional
    /// writes, keeping its data (a resumed copy).
    pub async fn reopen(&self, temp_rel: &str, size: u64) -> OpResult<Writer> {
        match self {
            Self::Local(b) => Ok(Writer::Local(b.reopen(temp_rel, size).await?)),
            Self::Smb(b) => Ok(Writer::Smb(b.reopen(temp_rel, size).await?)),
        }
    }

    /// Writes a whole small file at `temp_rel` and sets its times (one compound on SMB).
    pub async fn write_whole(&self, temp_rel: &str, data: Bytes, times: FileTimes) -> OpResult<()> {
        match self {
            Self::Local(b) => b.write_whole(temp_rel, data, times).await,
            Self::Smb(b) => b
                .write_whole(temp_rel, None, data, times)
                .await
                .map_err(|(_, e)| e),
        }
    }

    /// Writes a whole small file at `temp_rel` with its times and renames it
    /// over `final_rel` (one pool call locally; on SMB two compounds on one
    /// handle, the rename sent only once the data is written). The temporary
    /// file is gone on failure; the error names the step.
    pub async fn write_small(
        &self,
        temp_rel: &str,
        final_rel: &str,
        data: Bytes,
        times: FileTimes,
    ) -> Result<(), (&'static str, OpError)> {
        match self {
            Self::Local(b) => b.write_small(temp_rel, final_rel, data, times).await,
            Self::Smb(b) => b.write_whole(temp_rel, Some(final_rel), data, times).await,
        }
    }

    /// Renames `from` over `to`.
    pub async fn rename(&self, from: &str, to: &str) -> OpResult<()> {
        dispatch!(self, b => b.rename(from, to).await)
    }

    /// Sets times and attributes of a path.
    pub async fn set_times(&self, rel: &str, times: FileTimes) -> OpResult<()> {
        dispatch!(self, b => b.set_times(rel, times).await)
    }

    /// Creates a directory; fine when it exists.
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        dispatch!(self, b => b.mkdir(rel).await)
    }

    /// Deletes a file.
    pub async fn remove_file(&self, rel: &str) -> OpResult<()> {
        dispatch!(self, b => b.remove_file(rel).await)
    }

    /// Deletes an empty directory.
    pub async fn remove_dir(&self, rel: &str) -> OpResult<()> {
        dispatch!(self, b => b.remove_dir(rel).await)
    }

    /// Largest single read/write this backend does well (the block size for big files).
    pub fn io_size(&self) -> u32 {
        dispatch!(self, b => b.io_size())
    }

    /// True when the server of this (SMB) source can copy file data into
    /// the (SMB) destination `dst` itself: both trees on one connection.
    pub fn copies_on_server_to(&self, dst: &Self) -> bool {
        match (self, dst) {
            (Self::Smb(s), Self::Smb(d)) => s.copies_on_server_to(d),
            _ => false,
        }
    }

    /// The round-trip time to this tree's server (zero when local).
    pub async fn round_trip(&self) -> std::time::Duration {
        match self {
            Self::Local(_) => std::time::Duration::ZERO,
            Self::Smb(b) => b.round_trip().await,
        }
    }
}

impl Reader {
    /// Reads up to `len` bytes at `offset`; short only at end of file.
    pub async fn read_at(&self, offset: u64, len: u32) -> OpResult<Bytes> {
        dispatch!(self, r => r.read_at(offset, len).await)
    }

    /// Hands back a block returned by [`Self::read_at`] once it is written,
    /// so its buffer can be reused (local reads; SMB buffers are pooled by
    /// smb-core when dropped).
    pub fn recycle(&self, data: Bytes) {
        match self {
            Self::Local(_) => pool::give_buf(data),
            Self::Smb(_) => drop(data),
        }
    }

    /// Closes the handle (SMB) or drops it (local).
    pub async fn close(&self) -> OpResult<()> {
        dispatch!(self, r => r.close().await)
    }
}

impl Writer {
    /// Writes all of `data` at `offset`.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> OpResult<()> {
        dispatch!(self, w => w.write_at(offset, data).await)
    }

    /// Renames the finished temporary file over `final_rel`, then sets times
    /// (when given) and closes it.
    pub async fn commit(
        &self,
        final_rel: &str,
        times: Option<FileTimes>,
    ) -> Result<(), CommitError> {
        dispatch!(self, w => w.commit(final_rel, times).await)
    }

    /// Closes the temporary file and keeps it (a restartable copy resumes it later).
    pub async fn release(&self) {
        match self {
            Self::Local(_) => {}
            Self::Smb(w) => w.release().await,
        }
    }

    /// Closes and deletes the temporary file (best effort).
    pub async fn abort(&self) {
        dispatch!(self, w => w.abort().await)
    }
}

/// Times to give a destination file: the source's mtime (and atime/creation
/// where known) plus, with `--copy A`, its attributes.
pub fn times_for(src: &Entry, timestamps: bool, attributes: bool) -> FileTimes {
    FileTimes {
        last_write_time: timestamps.then_some(src.mtime),
        // Only an SMB source has one; a local destination ignores it.
        creation_time: src.created.filter(|_| timestamps),
        attributes: attributes.then(|| {
            let a = src.attributes & COPIED_ATTRS;
            if a == 0 {
                ATTR_NORMAL
            } else {
                a
            }
        }),
        ..FileTimes::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dfs_link_is_named() {
        let e = OpError::Smb(smb_core::Error::Status {
            status: smb_core::NtStatus::PATH_NOT_COVERED,
            command: smb_core::wire::Command(5),
        });
        assert_eq!(e.code(), "STATUS_PATH_NOT_COVERED");
        assert!(e.to_string().ends_with("(DFS link, not followed)"), "{e}");
        assert!(!e.is_transient());
    }

    #[test]
    fn error_codes_and_transience() {
        let e = OpError::Io(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.code(), "ENOENT");
        assert!(e.is_not_found() && !e.is_transient());
        let e = OpError::Io(std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.code(), "EACCES");
        assert!(!e.is_transient());
        let e = OpError::Smb(smb_core::Error::Status {
            status: smb_core::NtStatus::ACCESS_DENIED,
            command: smb_core::wire::Command(5),
        });
        assert_eq!(e.code(), "STATUS_ACCESS_DENIED");
        assert!(!e.is_transient() && !e.is_not_found());
        let e = OpError::Smb(smb_core::Error::Status {
            status: smb_core::NtStatus::SHARING_VIOLATION,
            command: smb_core::wire::Command(5),
        });
        assert!(e.is_transient());
        let e = OpError::Smb(smb_core::Error::Status {
            status: smb_core::NtStatus::OBJECT_NAME_NOT_FOUND,
            command: smb_core::wire::Command(5),
        });
        assert!(e.is_not_found());
        assert_eq!(
            OpError::Smb(smb_core::Error::Timeout(std::time::Duration::from_secs(1))).code(),
            "SMB_TIMEOUT"
        );
    }

    #[test]
    fn a_refused_server_copy_is_unsupported_not_transient() {
        for status in [
            smb_core::NtStatus::NOT_SUPPORTED,
            smb_core::NtStatus::INVALID_DEVICE_REQUEST,
            smb_core::NtStatus::INVALID_PARAMETER,
        ] {
            let e = OpError::Smb(smb_core::Error::Status {
                status,
                command: smb_core::wire::Command(11),
            });
            assert!(e.is_unsupported() && !e.is_transient(), "{status}");
        }
        assert!(OpError::Smb(smb_core::Error::Unsupported("short copy".into())).is_unsupported());
        let denied = OpError::Smb(smb_core::Error::Status {
            status: smb_core::NtStatus::ACCESS_DENIED,
            command: smb_core::wire::Command(11),
        });
        assert!(!denied.is_unsupported());
        assert!(!OpError::Io(std::io::Error::other("x")).is_unsupported());
    }

    #[test]
    fn times_carry_mtime_and_attributes() {
        let e = Entry {
            name: "a".into(),
            is_dir: false,
            size: 1,
            mtime: FileTime(42),
            attributes: 0x21,
            created: Some(FileTime(7)),
        };
        let t = times_for(&e, true, true);
        assert_eq!(t.last_write_time, Some(FileTime(42)));
        assert_eq!(t.creation_time, Some(FileTime(7)), "creation time with T");
        assert_eq!(t.attributes, Some(0x21));
        let t = times_for(
            &Entry {
                attributes: 0x10,
                ..e.clone()
            },
            false,
            true,
        );
        assert_eq!((t.last_write_time, t.attributes), (None, Some(ATTR_NORMAL)));
        assert_eq!(times_for(&e, false, false), FileTimes::default());
    }
}
