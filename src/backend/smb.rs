//! The SMB backend on smb-core: one [`Client`] per server shared by every
//! task, paths joined under the location's directory with `\`, big I/O split
//! into MaxRead/MaxWriteSize pieces, small files through the one-round-trip
//! compounds (`Tree::read_file`/`write_file`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use smb_core::{
    Client, ClientConfig, Credentials, Dialect, File, FileInfo, FileTimes, OpenOptions, Tree,
};
use tokio::sync::Mutex;

use super::{CommitError, Entry, OpError, OpResult};
use crate::location::SmbLocation;

/// A directory on a connected share.
#[derive(Debug, Clone)]
pub struct SmbFs {
    tree: Tree,
    /// The location's directory inside the share (`\`-separated, may be empty).
    base: String,
    max_read: u32,
    max_write: u32,
    unbuffered: bool,
}

/// An open SMB file for reading.
#[derive(Debug, Clone)]
pub struct SmbReader {
    file: File,
    max_read: u32,
}

/// An open SMB temporary file for writing.
#[derive(Debug, Clone)]
pub struct SmbWriter {
    file: File,
    tree: Tree,
    temp: String,
    base: String,
    max_write: u32,
}

fn entry(name: String, info: &FileInfo) -> Entry {
    let is_dir = info.is_dir();
    Entry {
        name,
        is_dir,
        size: if is_dir { 0 } else { info.size },
        mtime: info.last_write_time,
        attributes: info.attributes,
    }
}

fn join(base: &str, rel: &str) -> String {
    let rel = rel.replace('/', "\\");
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel,
        (false, true) => base.to_string(),
        (false, false) => format!("{base}\\{rel}"),
    }
}

impl SmbFs {
    /// A tree rooted at `loc.path` on a connected share.
    pub fn new(tree: Tree, loc: &SmbLocation, client: &Client, unbuffered: bool) -> Self {
        let n = client.negotiated();
        Self {
            tree,
            base: loc.path.clone(),
            max_read: n.max_read_size.max(64 * 1024),
            max_write: n.max_write_size.max(64 * 1024),
            // Unbuffered read/write flags exist from SMB 3.0.2 on.
            unbuffered: unbuffered && n.dialect >= Dialect::SMB3_0_2,
        }
    }

    fn path(&self, rel: &str) -> String {
        join(&self.base, rel)
    }

    /// Lists a directory.
    pub async fn list_dir(&self, rel: &str) -> OpResult<Vec<Entry>> {
        let list = self.tree.read_dir(&self.path(rel)).await?;
        Ok(list.into_iter().map(|d| entry(d.name, &d.info)).collect())
    }

    /// Metadata of a path.
    pub async fn stat(&self, rel: &str) -> OpResult<Entry> {
        let info = self.tree.stat(&self.path(rel)).await?;
        Ok(entry(
            rel.rsplit('/').next().unwrap_or_default().to_string(),
            &info,
        ))
    }

    /// Reads a small file with one compound; falls back to READs when it grew.
    pub async fn read_whole(&self, rel: &str, size: u64) -> OpResult<Bytes> {
        if size <= u64::from(self.max_read) {
            // Ask for what the listing said (in 64 KiB credit units): a bigger
            // max_len would charge up to 128 credits per small file and shrink
            // the window of files in flight. A file that grew is caught by
            // read_file (Unsupported) and read in pieces below.
            let want = size.max(1).div_ceil(64 * 1024) * 64 * 1024;
            let want = u32::try_from(want).unwrap_or(u32::MAX).min(self.max_read);
            match self.tree.read_file(&self.path(rel), want).await {
                Ok((data, _)) => return Ok(data),
                Err(smb_core::Error::FileGrew { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let r = self.open_read(rel).await?;
        let mut out = Vec::with_capacity(size as usize);
        loop {
            let chunk = r.read_at(out.len() as u64, self.max_read).await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        r.close().await?;
        Ok(out.into())
    }

    /// Opens for reading.
    pub async fn open_read(&self, rel: &str) -> OpResult<SmbReader> {
        let opts = OpenOptions {
            unbuffered: self.unbuffered,
            sequential: true,
            ..OpenOptions::read()
        };
        let file = self.tree.open(&self.path(rel), &opts).await?;
        Ok(SmbReader {
            file,
            max_read: self.max_read,
        })
    }

    /// Creates the temporary file and sets its length (so the server allocates once).
    pub async fn create(&self, temp_rel: &str, size: u64) -> OpResult<SmbWriter> {
        let temp = self.path(temp_rel);
        let opts = OpenOptions {
            unbuffered: self.unbuffered,
            ..OpenOptions::create_write()
        };
        let file = self.tree.open(&temp, &opts).await?;
        let w = SmbWriter {
            file,
            tree: self.tree.clone(),
            temp,
            base: self.base.clone(),
            max_write: self.max_write,
        };
        if size > 0 {
            if let Err(e) = w.file.set_len(size).await {
                w.abort().await;
                return Err(e.into());
            }
        }
        Ok(w)
    }

    /// Writes a whole small file at `temp_rel` with its times; with
    /// `final_rel`, also renames it over `final_rel` on the same handle (one
    /// CREATE) and leaves no temporary file on failure. The error names the step.
    pub async fn write_whole(
        &self,
        temp_rel: &str,
        final_rel: Option<&str>,
        data: Bytes,
        times: FileTimes,
    ) -> Result<(), (&'static str, OpError)> {
        let temp = self.path(temp_rel);
        let Some(final_rel) = final_rel else {
            return match self.tree.write_file(&temp, data, times).await {
                Ok(_) => Ok(()),
                Err(e) => Err(("write", e.into())),
            };
        };
        match self
            .tree
            .write_file_as(&temp, &self.path(final_rel), data, times)
            .await
        {
            Ok(_) => Ok(()),
            Err((smb_core::WriteStep::Rename, e)) => Err(("rename", e.into())),
            Err((_, e)) => Err(("write", e.into())),
        }
    }

    /// Renames over the target.
    pub async fn rename(&self, from: &str, to: &str) -> OpResult<()> {
        Ok(self
            .tree
            .rename(&self.path(from), &self.path(to), true)
            .await?)
    }

    /// Sets times and attributes.
    pub async fn set_times(&self, rel: &str, times: FileTimes) -> OpResult<()> {
        Ok(self.tree.set_times(&self.path(rel), times).await?)
    }

    /// Creates a directory and any missing parents below the base.
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        let path = self.path(rel);
        match self.tree.create_dir(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.status() == Some(smb_core::NtStatus::OBJECT_PATH_NOT_FOUND) => {
                // A parent is missing: create the chain from the top.
                let mut so_far = String::new();
                for comp in path.split('\\') {
                    if !so_far.is_empty() {
                        so_far.push('\\');
                    }
                    so_far.push_str(comp);
                    self.tree.create_dir(&so_far).await?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a file (clearing read-only first if the server refuses).
    pub async fn remove_file(&self, rel: &str) -> OpResult<()> {
        let path = self.path(rel);
        match self.tree.remove_file(&path).await {
            Err(e) if e.status() == Some(smb_core::NtStatus::ACCESS_DENIED) => {
                let normal = FileTimes {
                    attributes: Some(super::ATTR_NORMAL),
                    ..FileTimes::default()
                };
                if self.tree.set_times(&path, normal).await.is_ok() {
                    return Ok(self.tree.remove_file(&path).await?);
                }
                Err(e.into())
            }
            r => Ok(r?),
        }
    }

    /// Deletes an empty directory.
    pub async fn remove_dir(&self, rel: &str) -> OpResult<()> {
        Ok(self.tree.remove_dir(&self.path(rel)).await?)
    }

    /// True when [`SmbReader::read_into`] and [`SmbWriter::write_from`]
    /// move data between socket and a local file inside the kernel (Linux,
    /// no signing or encryption on this tree).
    pub fn reads_into_files_directly(&self) -> bool {
        self.tree.reads_into_files_directly()
    }

    /// The shortest of three ECHO round trips (zero if ECHO fails): sizes
    /// the copy engine's first window.
    pub async fn round_trip(&self) -> std::time::Duration {
        // The session's ECHO: signed like everything else under --sign.
        let session = self.tree.session();
        let mut best: Option<std::time::Duration> = None;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            if session.echo().await.is_err() {
                break;
            }
            let d = t.elapsed();
            best = Some(best.map_or(d, |b| b.min(d)));
        }
        best.unwrap_or_default()
    }

    /// True when files of this tree can be copied into `dst` by the server
    /// itself (FSCTL_SRV_COPYCHUNK): both on one connection.
    pub fn copies_on_server_to(&self, dst: &Self) -> bool {
        self.tree
            .session()
            .client()
            .same_connection(dst.tree.session().client())
    }

    /// True when the server is on this machine (a loopback address).
    pub fn server_is_local(&self) -> bool {
        self.tree
            .session()
            .client()
            .peer_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback())
    }

    /// Block size for big files: what one READ and one WRITE can carry.
    pub fn io_size(&self) -> u32 {
        self.max_read.min(self.max_write)
    }
}

impl SmbReader {
    /// FSCTL_SRV_REQUEST_RESUME_KEY: names this file as a server-side copy source.
    pub async fn resume_key(&self) -> OpResult<[u8; 24]> {
        Ok(self.file.resume_key().await?)
    }

    /// Reads `len` bytes at `offset` in MaxReadSize pieces; short only at end of file.
    pub async fn read_at(&self, offset: u64, len: u32) -> OpResult<Bytes> {
        if len <= self.max_read {
            return Ok(self.file.read_at(offset, len).await?);
        }
        let mut out = Vec::with_capacity(len as usize);
        while out.len() < len as usize {
            let want = (len - out.len() as u32).min(self.max_read);
            let chunk = self.file.read_at(offset + out.len() as u64, want).await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.into())
    }

    /// Reads `len` bytes at `offset` into `dest` at the same offset, in
    /// MaxReadSize pieces; returns the count (short only at end of file).
    /// A failed write into `dest` is an [`OpError::Io`].
    pub async fn read_into(
        &self,
        offset: u64,
        len: u32,
        dest: &Arc<std::fs::File>,
    ) -> OpResult<u32> {
        let mut done = 0;
        while done < len {
            let at = offset + u64::from(done);
            let n = self
                .file
                .read_at_into(at, (len - done).min(self.max_read), dest, at)
                .await
                .map_err(local_or_smb)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// CLOSE.
    pub async fn close(&self) -> OpResult<()> {
        self.file.close().await?;
        Ok(())
    }
}

/// Maps a failure of the local side of a direct transfer (`smb_core::Error::Io`)
/// to a plain I/O error, everything else to an SMB error.
fn local_or_smb(e: smb_core::Error) -> OpError {
    match e {
        smb_core::Error::Io(io) => OpError::Io(
            Arc::try_unwrap(io).unwrap_or_else(|a| std::io::Error::new(a.kind(), a.to_string())),
        ),
        e => OpError::Smb(e),
    }
}

/// Writes `len` bytes as `write(done, piece)` calls of at most `max` bytes
/// each, resuming after short writes (`write` returns the count written); a
/// server that writes nothing is an error.
async fn write_pieces<F, Fut>(len: u64, max: u32, mut write: F) -> OpResult<()>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: std::future::Future<Output = OpResult<u32>>,
{
    let mut done = 0u64;
    while done < len {
        let piece = u32::try_from((len - done).min(u64::from(max))).unwrap_or(max);
        match write(done, piece).await? {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "server wrote 0 bytes",
                )
                .into())
            }
            n => done += u64::from(n),
        }
    }
    Ok(())
}

impl SmbWriter {
    /// Writes `len` bytes of the local file `src` at `offset` (same offset
    /// in both), in MaxWriteSize pieces, resuming short writes. A failure
    /// to read `src` is an [`OpError::Io`].
    pub async fn write_from(
        &self,
        offset: u64,
        len: u32,
        src: &Arc<std::fs::File>,
    ) -> OpResult<()> {
        let file = &self.file;
        write_pieces(u64::from(len), self.max_write, |done, piece| async move {
            let at = offset + done;
            file.write_at_from(at, piece, src, at)
                .await
                .map_err(local_or_smb)
        })
        .await
    }

    /// Has the server copy `len` bytes at `offset` of the file named by
    /// `source_key` to the same offset of this file (FSCTL_SRV_COPYCHUNK_WRITE).
    pub async fn server_copy(&self, source_key: [u8; 24], offset: u64, len: u32) -> OpResult<()> {
        self.file
            .server_copy(source_key, &[(offset, offset, len)])
            .await?;
        Ok(())
    }

    /// Writes all of `data` at `offset` in MaxWriteSize pieces, resuming short writes.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> OpResult<()> {
        let file = &self.file;
        let data = &data;
        write_pieces(
            data.len() as u64,
            self.max_write,
            |done, piece| async move {
                let from = done as usize;
                let piece = data.slice(from..from + piece as usize);
                Ok(file.write_at(offset + done, piece).await?)
            },
        )
        .await
    }

    /// Renames the open handle over the final name, sets times, closes.
    pub async fn commit(
        &self,
        final_rel: &str,
        times: Option<FileTimes>,
    ) -> Result<(), CommitError> {
        let err = |renamed| {
            move |e: smb_core::Error| CommitError {
                renamed,
                error: e.into(),
            }
        };
        self.file
            .rename(&join(&self.base, final_rel), true)
            .await
            .map_err(err(false))?;
        let timed = match times {
            Some(t) => self.file.set_times(t).await,
            None => Ok(()),
        };
        let closed = self.file.close().await;
        timed.map_err(err(true))?;
        closed.map_err(err(true))?;
        Ok(())
    }

    /// Deletes the temporary file: delete-on-close on the handle, else by path.
    pub async fn abort(&self) {
        let deleted = self.file.set_delete_on_close().await.is_ok();
        let _ = self.file.close().await;
        if !deleted {
            let _ = self.tree.remove_file(&self.temp).await;
        }
    }
}

/// (server, port, user, domain).
type SessionKey = (String, u16, String, String);

/// Opens trees, sharing one authenticated connection per (server, port, user).
#[derive(Debug, Default)]
pub struct Connector {
    sessions: Mutex<HashMap<SessionKey, (Client, smb_core::Session)>>,
    trees: Mutex<HashMap<(SessionKey, String), Tree>>,
}

impl Connector {
    /// Connects (or reuses a connection) and tree-connects to `loc.share`.
    pub async fn open(
        &self,
        loc: &SmbLocation,
        creds: &Credentials,
        config: &ClientConfig,
        unbuffered: bool,
    ) -> anyhow::Result<SmbFs> {
        let key = (
            loc.server.clone(),
            loc.port,
            creds.user.clone(),
            creds.domain.clone(),
        );
        let (client, session) = {
            let mut sessions = self.sessions.lock().await;
            if let Some(s) = sessions.get(&key) {
                s.clone()
            } else {
                let client = Client::connect(&loc.server, loc.port, config.clone())
                    .await
                    .with_context(|| format!("cannot connect to {}:{}", loc.server, loc.port))?;
                let session = client.session_setup(creds).await.with_context(|| {
                    format!("cannot log on to {} as {:?}", loc.server, creds.user)
                })?;
                sessions.insert(key.clone(), (client.clone(), session.clone()));
                (client, session)
            }
        };
        let tkey = (key, loc.share.to_ascii_lowercase());
        let tree = {
            let mut trees = self.trees.lock().await;
            if let Some(t) = trees.get(&tkey) {
                t.clone()
            } else {
                let t = session.tree_connect(&loc.share).await.with_context(|| {
                    format!("cannot connect to share \\\\{}\\{}", loc.server, loc.share)
                })?;
                trees.insert(tkey, t.clone());
                t
            }
        };
        Ok(SmbFs::new(tree, loc, &client, unbuffered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_the_base() {
        assert_eq!(join("", ""), "");
        assert_eq!(join("", "a/b"), "a\\b");
        assert_eq!(join("base\\dir", ""), "base\\dir");
        assert_eq!(join("base", "a/b c"), "base\\a\\b c");
    }
}
