//! [`File`]: an open handle, shareable across tasks for positional I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::Result;

/// A Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
/// Zero means "not set" / "unchanged" in SET_INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime(pub u64);

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;

impl FileTime {
    /// Converts from a `SystemTime` (clamped to the representable range).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => {
                let ticks = d.as_secs().saturating_mul(10_000_000) + u64::from(d.subsec_nanos() / 100);
                Self(UNIX_EPOCH_AS_FILETIME.saturating_add(ticks))
            }
            Err(e) => {
                let d = e.duration();
                let ticks = d.as_secs().saturating_mul(10_000_000) + u64::from(d.subsec_nanos() / 100);
                Self(UNIX_EPOCH_AS_FILETIME.saturating_sub(ticks))
            }
        }
    }

    /// Converts to a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= UNIX_EPOCH_AS_FILETIME {
            let t = self.0 - UNIX_EPOCH_AS_FILETIME;
            UNIX_EPOCH + Duration::new(t / 10_000_000, ((t % 10_000_000) * 100) as u32)
        } else {
            let t = UNIX_EPOCH_AS_FILETIME - self.0;
            UNIX_EPOCH - Duration::new(t / 10_000_000, ((t % 10_000_000) * 100) as u32)
        }
    }
}

/// Metadata of a file or directory (from CREATE, CLOSE with post-query, or QUERY_INFO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// End of file in bytes.
    pub size: u64,
    /// Allocation size in bytes.
    pub allocation_size: u64,
    /// Creation time.
    pub creation_time: FileTime,
    /// Last access time.
    pub last_access_time: FileTime,
    /// Last write time (the "mtime" a copier compares).
    pub last_write_time: FileTime,
    /// Change time.
    pub change_time: FileTime,
    /// FILE_ATTRIBUTE_* bits (MS-FSCC 2.6).
    pub attributes: u32,
}

impl FileInfo {
    /// FILE_ATTRIBUTE_DIRECTORY is set.
    pub fn is_dir(&self) -> bool {
        self.attributes & 0x10 != 0
    }
}

/// Times (and attributes) to set with SET_INFO FileBasicInformation.
/// `None` leaves the value unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileTimes {
    /// Creation time.
    pub creation_time: Option<FileTime>,
    /// Last access time.
    pub last_access_time: Option<FileTime>,
    /// Last write time.
    pub last_write_time: Option<FileTime>,
    /// Change time.
    pub change_time: Option<FileTime>,
    /// FILE_ATTRIBUTE_* bits; `None` leaves them unchanged.
    pub attributes: Option<u32>,
}

/// What CREATE does when the name exists or not (MS-SMB2 2.2.13 CreateDisposition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Disposition {
    /// Open an existing file; fail when missing.
    #[default]
    Open,
    /// Create a new file; fail when it exists.
    Create,
    /// Open if it exists, else create.
    OpenIf,
    /// Truncate an existing file; fail when missing.
    Overwrite,
    /// Truncate if it exists, else create.
    OverwriteIf,
    /// Replace if it exists, else create.
    Supersede,
}

/// How to open a file or directory.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Request read access.
    pub read: bool,
    /// Request write access.
    pub write: bool,
    /// Request DELETE access (needed for rename and delete).
    pub delete: bool,
    /// Open a directory (FILE_DIRECTORY_FILE); otherwise FILE_NON_DIRECTORY_FILE
    /// unless [`OpenOptions::any_kind`] is set.
    pub directory: bool,
    /// Open whatever is there, file or directory.
    pub any_kind: bool,
    /// CreateDisposition.
    pub disposition: Disposition,
    /// Ask the server not to cache (SMB 3.0.2+ unbuffered read/write flags, write-through).
    pub unbuffered: bool,
    /// FILE_SEQUENTIAL_ONLY hint.
    pub sequential: bool,
}

impl OpenOptions {
    /// Open an existing file for reading.
    pub fn read() -> Self {
        Self { read: true, ..Self::default() }
    }
    /// Create or truncate a file for writing.
    pub fn create_write() -> Self {
        Self { read: true, write: true, delete: true, disposition: Disposition::OverwriteIf, ..Self::default() }
    }
}

/// An open file or directory. Cheap to clone; clones share the handle, and
/// concurrent `read_at`/`write_at` calls are pipelined on the connection.
#[derive(Clone, Debug)]
pub struct File {
    pub(crate) inner: Arc<FileInner>,
}

#[derive(Debug)]
pub(crate) struct FileInner {
    pub(crate) info: FileInfo,
}

impl File {
    /// Metadata returned by CREATE.
    pub fn info(&self) -> &FileInfo {
        &self.inner.info
    }

    /// Reads up to `len` bytes at `offset` (one READ; `len` is capped at MaxReadSize).
    /// Returns fewer bytes at end of file and an empty buffer at or past it.
    pub async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        let _ = (offset, len);
        todo!("smb-core: read_at")
    }

    /// Writes `data` at `offset` (one WRITE; `data.len()` must be ≤ MaxWriteSize).
    /// Returns the count the server wrote.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> Result<u32> {
        let _ = (offset, data);
        todo!("smb-core: write_at")
    }

    /// FLUSH.
    pub async fn flush(&self) -> Result<()> {
        todo!("smb-core: flush")
    }

    /// Sets the end of file (FileEndOfFileInformation).
    pub async fn set_len(&self, len: u64) -> Result<()> {
        let _ = len;
        todo!("smb-core: set_len")
    }

    /// Sets times/attributes (FileBasicInformation).
    pub async fn set_times(&self, times: FileTimes) -> Result<()> {
        let _ = times;
        todo!("smb-core: set_times")
    }

    /// Renames the open file to `new_path` (relative to the share root)
    /// (FileRenameInformation). Needs DELETE access.
    pub async fn rename(&self, new_path: &str, replace: bool) -> Result<()> {
        let _ = (new_path, replace);
        todo!("smb-core: rename")
    }

    /// Marks the file for deletion on close (FileDispositionInformation). Needs DELETE access.
    pub async fn set_delete_on_close(&self) -> Result<()> {
        todo!("smb-core: set_delete_on_close")
    }

    /// QUERY_INFO FileAllInformation (basic + standard).
    pub async fn query_info(&self) -> Result<FileInfo> {
        todo!("smb-core: query_info")
    }

    /// FSCTL_SRV_REQUEST_RESUME_KEY: a key naming this file as a server-side copy source.
    pub async fn resume_key(&self) -> Result<[u8; 24]> {
        todo!("smb-core: resume_key")
    }

    /// FSCTL_SRV_COPYCHUNK(_WRITE): copies `(source_offset, target_offset, length)` chunks
    /// from the file named by `source_key` into this file, on the server. Returns bytes written.
    pub async fn server_copy(&self, source_key: [u8; 24], chunks: &[(u64, u64, u32)]) -> Result<u64> {
        let _ = (source_key, chunks);
        todo!("smb-core: server_copy")
    }

    /// CLOSE with post-query attributes; returns the final metadata.
    pub async fn close(&self) -> Result<FileInfo> {
        todo!("smb-core: close")
    }
}
