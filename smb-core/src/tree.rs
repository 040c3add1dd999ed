//! [`Tree`]: a connected share, with path-based helpers.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::file::{File, FileInfo, FileTimes, OpenOptions};

/// One entry of a directory listing (FileIdBothDirectoryInformation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (validated: no separators, NUL, `.` or `..`).
    pub name: String,
    /// Metadata from the listing.
    pub info: FileInfo,
}

/// A connected share. Cheap to clone.
///
/// Paths are relative to the share root, with `\` or `/` as separator, no
/// leading separator, and never `.`/`..` components.
#[derive(Clone, Debug)]
pub struct Tree {
    pub(crate) inner: Arc<TreeInner>,
}

#[derive(Debug)]
pub(crate) struct TreeInner {
    pub(crate) id: u32,
}

impl Tree {
    /// The tree id.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// True when the share requires encryption (SMB2_SHAREFLAG_ENCRYPT_DATA) and we honour it.
    pub fn encrypted(&self) -> bool {
        todo!("smb-core: encrypted")
    }

    /// Opens (or creates) a file or directory.
    pub async fn open(&self, path: &str, options: &OpenOptions) -> Result<File> {
        let _ = (path, options);
        todo!("smb-core: open")
    }

    /// Metadata of `path` (one compound CREATE+CLOSE with post-query).
    pub async fn stat(&self, path: &str) -> Result<FileInfo> {
        let _ = path;
        todo!("smb-core: stat")
    }

    /// Lists a directory (QUERY_DIRECTORY FileIdBothDirectoryInformation until
    /// STATUS_NO_MORE_FILES), without `.` and `..`.
    pub async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let _ = path;
        todo!("smb-core: read_dir")
    }

    /// Reads a whole small file in one round trip (compound CREATE+READ+CLOSE).
    /// Fails with STATUS_BUFFER_OVERFLOW-like [`crate::Error::Unsupported`] if the
    /// file is larger than `max_len`, which must be ≤ MaxReadSize.
    pub async fn read_file(&self, path: &str, max_len: u32) -> Result<(Bytes, FileInfo)> {
        let _ = (path, max_len);
        todo!("smb-core: read_file")
    }

    /// Creates (or replaces) a small file in one round trip: compound
    /// CREATE(overwrite-if)+WRITE+SET_INFO(times)+CLOSE. `data.len()` ≤ MaxWriteSize.
    pub async fn write_file(&self, path: &str, data: Bytes, times: FileTimes) -> Result<FileInfo> {
        let _ = (path, data, times);
        todo!("smb-core: write_file")
    }

    /// Creates a directory; succeeds when it already exists as a directory.
    pub async fn create_dir(&self, path: &str) -> Result<()> {
        let _ = path;
        todo!("smb-core: create_dir")
    }

    /// Deletes a file.
    pub async fn remove_file(&self, path: &str) -> Result<()> {
        let _ = path;
        todo!("smb-core: remove_file")
    }

    /// Deletes an empty directory.
    pub async fn remove_dir(&self, path: &str) -> Result<()> {
        let _ = path;
        todo!("smb-core: remove_dir")
    }

    /// Renames `from` to `to` (both relative to the share root).
    pub async fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()> {
        let _ = (from, to, replace);
        todo!("smb-core: rename")
    }

    /// Sets times/attributes on `path`.
    pub async fn set_times(&self, path: &str, times: FileTimes) -> Result<()> {
        let _ = (path, times);
        todo!("smb-core: set_times")
    }

    /// TREE_DISCONNECT.
    pub async fn disconnect(&self) -> Result<()> {
        todo!("smb-core: disconnect")
    }
}
