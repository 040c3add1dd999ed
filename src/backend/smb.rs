//! The SMB backend on smb-core: one [`Client`] per server shared by every
//! task, paths joined under the location's directory with `\`, big I/O split
//! into MaxRead/MaxWriteSize pieces, small files through the one-round-trip
//! compounds (`Tree::read_file`/`write_file`).
//!
//! Every operation survives a lost connection: when a request fails with an
//! error whose [`smb_core::Action`] is "reconnect", the operation waits on
//! its server's [`Link`], where one task dials again (with backoff, within
//! `--reconnect-for`) while the others wait, and then runs again on the new
//! connection. smb-core re-establishes the session, the tree and every open
//! file by itself, so a big file's workers go on with their next blocks and
//! nothing already written is copied again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use smb_core::{
    Client, ClientConfig, Credentials, Dialect, File, FileInfo, FileTimes, OpenOptions, Tree,
};
use tokio::sync::Mutex;

use super::{CommitError, Entry, OpError, OpResult};
use crate::events::{Event, Events};
use crate::location::SmbLocation;

/// Reconnects over a whole run (all servers), for the summary.
#[derive(Debug, Default)]
pub struct ReconnectStats {
    /// Connections dialled again successfully.
    pub reconnects: AtomicU64,
    /// Milliseconds spent between losing a connection and having it back
    /// (or giving up).
    pub waited_ms: AtomicU64,
}

/// Operations retried on a new connection, at most this many times each
/// (an operation that breaks every new connection is not retried forever).
const MAX_RECONNECTS_PER_OP: u32 = 8;
/// First wait between dial attempts; doubles up to [`REDIAL_MAX_WAIT`].
const REDIAL_FIRST_WAIT: Duration = Duration::from_millis(200);
const REDIAL_MAX_WAIT: Duration = Duration::from_secs(5);

/// Keeps one server's client connected: when a request fails because the
/// connection is gone, the first task to notice dials again, with backoff,
/// until it works or the budget (`--reconnect-for`) runs out; the others wait
/// for it and share the result. Once the budget ran out the link stays down:
/// every later operation fails at once, so the run ends cleanly.
#[derive(Debug)]
pub struct Link {
    client: Client,
    server: String,
    budget: Duration,
    gate: Mutex<()>,
    gave_up: OnceLock<String>,
    stats: Arc<ReconnectStats>,
    events: Arc<Events>,
}

impl Link {
    /// A link for `client` with reconnect budget `budget`.
    pub fn new(
        client: Client,
        server: String,
        budget: Duration,
        stats: Arc<ReconnectStats>,
        events: Arc<Events>,
    ) -> Self {
        Self {
            client,
            server,
            budget,
            gate: Mutex::new(()),
            gave_up: OnceLock::new(),
            stats,
            events,
        }
    }

    fn down(&self) -> Option<OpError> {
        self.gave_up.get().map(|m| OpError::Disconnected(m.clone()))
    }

    /// Runs `op`, and again after a reconnect when it failed because the
    /// connection was lost (at most `MAX_RECONNECTS_PER_OP` times).
    pub async fn run<T, F, Fut>(&self, mut op: F) -> OpResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = OpResult<T>>,
    {
        let mut rounds = 0;
        loop {
            if let Some(e) = self.down() {
                return Err(e);
            }
            let seen = self.client.generation_number();
            match op().await {
                Err(OpError::Smb(e)) if e.needs_reconnect() && rounds < MAX_RECONNECTS_PER_OP => {
                    rounds += 1;
                    self.recover(seen, &e).await?;
                }
                r => return r,
            }
        }
    }

    /// Waits until connection number `seen` (which failed with `cause`) is
    /// replaced: dials again unless another task already did.
    async fn recover(&self, seen: u64, cause: &smb_core::Error) -> OpResult<()> {
        let started = Instant::now();
        let _one = self.gate.lock().await;
        if let Some(e) = self.down() {
            return Err(e);
        }
        if self.client.generation_number() > seen && self.client.check_alive().is_ok() {
            return Ok(());
        }
        tracing::warn!(
            "connection to {} lost ({cause}); reconnecting for up to {}",
            self.server,
            humantime(self.budget)
        );
        self.events.emit(Event::ConnectionLost {
            server: self.server.clone(),
            error: cause.to_string(),
        });
        let deadline = started + self.budget;
        let mut wait = REDIAL_FIRST_WAIT;
        let mut attempts = 0u32;
        let result = loop {
            attempts += 1;
            match self.client.reconnect(seen).await {
                Ok(generation) => {
                    tracing::warn!(
                        "reconnected to {} after {:.1} s ({attempts} attempt{}); connection {generation}",
                        self.server,
                        started.elapsed().as_secs_f64(),
                        if attempts == 1 { "" } else { "s" }
                    );
                    self.stats.reconnects.fetch_add(1, Relaxed);
                    self.events.emit(Event::Reconnected {
                        server: self.server.clone(),
                        after_secs: started.elapsed().as_secs_f64(),
                        attempts,
                    });
                    break Ok(());
                }
                Err(e) if e.needs_reconnect() && Instant::now() + wait < deadline => {
                    tracing::debug!(
                        "reconnect attempt {attempts} to {} failed: {e}",
                        self.server
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(REDIAL_MAX_WAIT);
                }
                Err(e) => {
                    let msg = if e.needs_reconnect() {
                        format!(
                            "gave up reconnecting to {} after {:.1} s ({attempts} attempts; --reconnect-for {}): {e}",
                            self.server,
                            started.elapsed().as_secs_f64(),
                            humantime(self.budget)
                        )
                    } else {
                        format!("cannot reconnect to {}: {e}", self.server)
                    };
                    tracing::warn!("{msg}");
                    let _ = self.gave_up.set(msg.clone());
                    break Err(OpError::Disconnected(msg));
                }
            }
        };
        self.stats.waited_ms.fetch_add(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Relaxed,
        );
        result
    }
}

/// `1m30s`-style.
fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) if d.subsec_millis() == 0 => format!("{s}s"),
        (0, 0, _) => format!("{:.1}s", d.as_secs_f64()),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// A directory on a connected share.
#[derive(Debug, Clone)]
pub struct SmbFs {
    tree: Tree,
    link: Arc<Link>,
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
    link: Arc<Link>,
    /// The resume key for server-side copies, with the connection it is
    /// valid on (a reopened handle has a new one).
    key: Arc<std::sync::Mutex<Option<KeyOn>>>,
}

/// A resume key and the connection (generation) it was issued on.
type KeyOn = (u64, [u8; 24]);

/// An open SMB temporary file for writing.
#[derive(Debug, Clone)]
pub struct SmbWriter {
    file: File,
    tree: Tree,
    temp: String,
    base: String,
    max_write: u32,
    link: Arc<Link>,
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
    pub fn new(
        tree: Tree,
        loc: &SmbLocation,
        client: &Client,
        link: Arc<Link>,
        unbuffered: bool,
    ) -> Self {
        let n = client.negotiated();
        // Sized to what the server takes now (MaxRead/WriteSize, 64 KiB on
        // SMB 2.0.2, and the credits it grants), not the negotiated maximum.
        let limits = tree.io_limits();
        Self {
            tree,
            link,
            base: loc.path.clone(),
            max_read: limits.read.max(64 * 1024),
            max_write: limits.write.max(64 * 1024),
            // Unbuffered read/write flags exist from SMB 3.0.2 on.
            unbuffered: unbuffered && n.dialect >= Dialect::SMB3_0_2,
        }
    }

    fn path(&self, rel: &str) -> String {
        join(&self.base, rel)
    }

    /// Lists a directory.
    pub async fn list_dir(&self, rel: &str) -> OpResult<Vec<Entry>> {
        let path = self.path(rel);
        let list = self
            .link
            .run(|| async { Ok(self.tree.read_dir(&path).await?) })
            .await?;
        Ok(list.into_iter().map(|d| entry(d.name, &d.info)).collect())
    }

    /// Metadata of a path.
    pub async fn stat(&self, rel: &str) -> OpResult<Entry> {
        let path = self.path(rel);
        let info = self
            .link
            .run(|| async { Ok(self.tree.stat(&path).await?) })
            .await?;
        Ok(entry(
            rel.rsplit('/').next().unwrap_or_default().to_string(),
            &info,
        ))
    }

    /// Reads a small file with one compound; falls back to READs when it grew.
    pub async fn read_whole(&self, rel: &str, size: u64) -> OpResult<Bytes> {
        self.link.run(|| self.read_whole_once(rel, size)).await
    }

    async fn read_whole_once(&self, rel: &str, size: u64) -> OpResult<Bytes> {
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
        let opts = OpenOptions {
            unbuffered: self.unbuffered,
            sequential: true,
            ..OpenOptions::read()
        };
        let f = self.tree.open(&self.path(rel), &opts).await?;
        let mut out = Vec::with_capacity(size as usize);
        loop {
            let chunk = f.read_at(out.len() as u64, self.max_read).await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        f.close().await?;
        Ok(out.into())
    }

    /// Opens for reading.
    pub async fn open_read(&self, rel: &str) -> OpResult<SmbReader> {
        let opts = OpenOptions {
            unbuffered: self.unbuffered,
            sequential: true,
            ..OpenOptions::read()
        };
        let path = self.path(rel);
        let file = self
            .link
            .run(|| async { Ok(self.tree.open(&path, &opts).await?) })
            .await?;
        Ok(SmbReader {
            file,
            max_read: self.max_read,
            link: Arc::clone(&self.link),
            key: Arc::default(),
        })
    }

    /// Creates the temporary file and sets its length (so the server allocates once).
    pub async fn create(&self, temp_rel: &str, size: u64) -> OpResult<SmbWriter> {
        let w = self
            .open_temp(temp_rel, smb_core::Disposition::OverwriteIf)
            .await?;
        if size > 0 {
            if let Err(e) = w
                .link
                .run(|| async { Ok(w.file.set_len(size).await?) })
                .await
            {
                w.abort().await;
                return Err(e);
            }
        }
        Ok(w)
    }

    /// The temporary file `temp_rel` opened for writing with `disposition`.
    async fn open_temp(
        &self,
        temp_rel: &str,
        disposition: smb_core::Disposition,
    ) -> OpResult<SmbWriter> {
        let temp = self.path(temp_rel);
        let opts = OpenOptions {
            unbuffered: self.unbuffered,
            disposition,
            ..OpenOptions::create_write()
        };
        let file = self
            .link
            .run(|| async { Ok(self.tree.open(&temp, &opts).await?) })
            .await?;
        Ok(SmbWriter {
            file,
            tree: self.tree.clone(),
            temp,
            base: self.base.clone(),
            max_write: self.max_write,
            link: Arc::clone(&self.link),
        })
    }

    /// Opens an existing temporary file for more writes, keeping what it
    /// holds (a resumed copy); not found when it is gone.
    pub async fn reopen(&self, temp_rel: &str, size: u64) -> OpResult<SmbWriter> {
        let w = self
            .open_temp(temp_rel, smb_core::Disposition::Open)
            .await?;
        if w.file.info().size != size {
            w.link
                .run(|| async { Ok(w.file.set_len(size).await?) })
                .await?;
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
        // Both compounds are safe to send again: the temporary file is
        // created with overwrite-if, and the rename replaces the final name.
        let temp = self.path(temp_rel);
        let step = std::sync::Mutex::new("write");
        let set = |s| *step.lock().unwrap_or_else(|e| e.into_inner()) = s;
        let r = self
            .link
            .run(|| async {
                let Some(final_rel) = final_rel else {
                    set("write");
                    return Ok(self
                        .tree
                        .write_file(&temp, data.clone(), times)
                        .await
                        .map(|_| ())?);
                };
                match self
                    .tree
                    .write_file_as(&temp, &self.path(final_rel), data.clone(), times)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err((smb_core::WriteStep::Rename, e)) => {
                        set("rename");
                        Err(e.into())
                    }
                    Err((smb_core::WriteStep::Create, e)) => {
                        set("create");
                        Err(e.into())
                    }
                    Err((_, e)) => {
                        set("write");
                        Err(e.into())
                    }
                }
            })
            .await;
        r.map_err(|e| (*step.lock().unwrap_or_else(|e| e.into_inner()), e))
    }

    /// Renames over the target.
    pub async fn rename(&self, from: &str, to: &str) -> OpResult<()> {
        let (from, to) = (self.path(from), self.path(to));
        self.link
            .run(|| async { Ok(self.tree.rename(&from, &to, true).await?) })
            .await
    }

    /// Sets times and attributes.
    pub async fn set_times(&self, rel: &str, times: FileTimes) -> OpResult<()> {
        let path = self.path(rel);
        self.link
            .run(|| async { Ok(self.tree.set_times(&path, times).await?) })
            .await
    }

    /// Creates a directory and any missing parents below the base.
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        self.link.run(|| self.mkdir_once(rel)).await
    }

    async fn mkdir_once(&self, rel: &str) -> OpResult<()> {
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
        self.link.run(|| self.remove_file_once(rel)).await
    }

    async fn remove_file_once(&self, rel: &str) -> OpResult<()> {
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
        let path = self.path(rel);
        self.link
            .run(|| async { Ok(self.tree.remove_dir(&path).await?) })
            .await
    }

    /// True when [`SmbReader::read_into`] and [`SmbWriter::write_from`]
    /// move data between socket and a local file inside the kernel (Linux,
    /// no signing or encryption on this tree).
    pub fn reads_into_files_directly(&self) -> bool {
        self.tree.reads_into_files_directly()
    }

    /// The shortest of three ECHO round trips (zero if ECHO fails): sizes
    /// the copy engine's first window.
    pub async fn round_trip(&self) -> Duration {
        // The session's ECHO: signed like everything else under --sign.
        let session = self.tree.session();
        let mut best: Option<Duration> = None;
        for _ in 0..3 {
            let t = Instant::now();
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
    /// The key is fetched once per connection: a handle reopened after a
    /// reconnect has a new one.
    pub async fn resume_key(&self) -> OpResult<[u8; 24]> {
        let generation = self.link.client.generation_number();
        if let Some((g, k)) = *self.key.lock().unwrap_or_else(|e| e.into_inner()) {
            if g == generation {
                return Ok(k);
            }
        }
        let k = self
            .link
            .run(|| async { Ok(self.file.resume_key().await?) })
            .await?;
        let generation = self.link.client.generation_number();
        *self.key.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, k));
        Ok(k)
    }

    /// Reads `len` bytes at `offset` in MaxReadSize pieces; short only at end of file.
    pub async fn read_at(&self, offset: u64, len: u32) -> OpResult<Bytes> {
        self.link.run(|| self.read_at_once(offset, len)).await
    }

    async fn read_at_once(&self, offset: u64, len: u32) -> OpResult<Bytes> {
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
            let want = (len - done).min(self.max_read);
            let n = self
                .link
                .run(|| async {
                    self.file
                        .read_at_into(at, want, dest, at)
                        .await
                        .map_err(local_or_smb)
                })
                .await?;
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
    Fut: Future<Output = OpResult<u32>>,
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
        let (file, link) = (&self.file, &self.link);
        write_pieces(u64::from(len), self.max_write, |done, piece| async move {
            let at = offset + done;
            link.run(|| async {
                file.write_at_from(at, piece, src, at)
                    .await
                    .map_err(local_or_smb)
            })
            .await
        })
        .await
    }

    /// Has the server copy `len` bytes at `offset` of the file named by
    /// `source_key` to the same offset of this file (FSCTL_SRV_COPYCHUNK_WRITE).
    pub async fn server_copy(&self, source_key: [u8; 24], offset: u64, len: u32) -> OpResult<()> {
        self.link
            .run(|| async {
                Ok(self
                    .file
                    .server_copy(source_key, &[(offset, offset, len)])
                    .await?)
            })
            .await?;
        Ok(())
    }

    /// Writes all of `data` at `offset` in MaxWriteSize pieces, resuming short writes.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> OpResult<()> {
        let (file, link) = (&self.file, &self.link);
        let data = &data;
        write_pieces(
            data.len() as u64,
            self.max_write,
            |done, piece| async move {
                let from = done as usize;
                let piece = data.slice(from..from + piece as usize);
                link.run(|| async { Ok(file.write_at(offset + done, piece.clone()).await?) })
                    .await
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
        let err = |renamed| move |error| CommitError { renamed, error };
        let target = join(&self.base, final_rel);
        let link = &self.link;
        link.run(|| async { Ok(self.file.rename(&target, true).await?) })
            .await
            .map_err(err(false))?;
        let timed = match times {
            Some(t) => {
                link.run(|| async { Ok(self.file.set_times(t).await?) })
                    .await
            }
            None => Ok(()),
        };
        let closed = link.run(|| async { Ok(self.file.close().await?) }).await;
        timed.map_err(err(true))?;
        closed.map_err(err(true))?;
        Ok(())
    }

    /// Closes the handle, keeping the temporary file.
    pub async fn release(&self) {
        let _ = self.file.close().await;
    }

    /// Deletes the temporary file: delete-on-close on the handle, else by path.
    pub async fn abort(&self) {
        let link = &self.link;
        let deleted = link
            .run(|| async { Ok(self.file.set_delete_on_close().await?) })
            .await
            .is_ok();
        let _ = self.file.close().await;
        if !deleted {
            let _ = link
                .run(|| async { Ok(self.tree.remove_file(&self.temp).await?) })
                .await;
        }
    }
}

/// (server, port, user, domain).
type SessionKey = (String, u16, String, String);

/// One server's client, its session, and the link that keeps it connected.
type Logon = (Client, smb_core::Session, Arc<Link>);

/// Opens trees, sharing one authenticated connection per (server, port, user).
#[derive(Debug)]
pub struct Connector {
    sessions: Mutex<HashMap<SessionKey, Logon>>,
    trees: Mutex<HashMap<(SessionKey, String), Tree>>,
    reconnect_for: Duration,
    stats: Arc<ReconnectStats>,
    events: Arc<Events>,
}

impl Connector {
    /// A connector whose links reconnect for up to `reconnect_for` and
    /// report losses and reconnects to `events`.
    pub fn new(reconnect_for: Duration, events: Arc<Events>) -> Self {
        Self {
            sessions: Mutex::default(),
            trees: Mutex::default(),
            reconnect_for,
            stats: Arc::default(),
            events,
        }
    }

    /// Reconnects so far, over every server.
    pub fn reconnect_stats(&self) -> &ReconnectStats {
        &self.stats
    }

    /// What became of open handles after reconnects, over every server:
    /// (reclaimed durable handles, files opened again by path).
    pub async fn handle_stats(&self) -> (u64, u64) {
        let sessions = self.sessions.lock().await;
        sessions.values().fold((0, 0), |(a, b), (client, _, _)| {
            let h = client.handle_stats();
            (a + h.reclaimed, b + h.reopened)
        })
    }
}

impl Connector {
    /// Connects (or reuses a connection) and tree-connects to `loc.share`.
    /// A `loc.path` under a DFS link is followed to the share the link
    /// refers to (at most 8 links in a row; same port and credentials).
    pub async fn open(
        &self,
        loc: &SmbLocation,
        creds: &Credentials,
        config: &ClientConfig,
        unbuffered: bool,
    ) -> anyhow::Result<SmbFs> {
        let mut loc = loc.clone();
        for _ in 0..=DFS_HOPS {
            let (tree, client, link) = self.open_tree(&loc, creds, config).await?;
            let to = tree
                .dfs_target(&loc.path)
                .await
                .with_context(|| format!("resolving the DFS link in {loc}"))?;
            let Some(to) = to else {
                return Ok(SmbFs::new(tree, &loc, &client, link, unbuffered));
            };
            tracing::debug!(from = %loc, to = %to, "following a DFS link");
            let from = loc.to_string();
            loc.server.clone_from(&to.server);
            loc.share.clone_from(&to.share);
            loc.path.clone_from(&to.path);
            // Connecting to the target is where an unreachable one fails:
            // say which link led there.
            if let Err(e) = self.open_tree(&loc, creds, config).await {
                return Err(e.context(format!("DFS link {from} refers to {to}")));
            }
        }
        anyhow::bail!("{loc}: more than {DFS_HOPS} DFS links in a row")
    }

    /// The (shared) connection and tree for `loc.share`.
    async fn open_tree(
        &self,
        loc: &SmbLocation,
        creds: &Credentials,
        config: &ClientConfig,
    ) -> anyhow::Result<(Tree, Client, Arc<Link>)> {
        let key = (
            loc.server.clone(),
            loc.port,
            creds.user.clone(),
            creds.domain.clone(),
        );
        let (client, session, link) = {
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
                let link = Arc::new(Link::new(
                    client.clone(),
                    format!("{}:{}", loc.server, loc.port),
                    self.reconnect_for,
                    Arc::clone(&self.stats),
                    Arc::clone(&self.events),
                ));
                sessions.insert(
                    key.clone(),
                    (client.clone(), session.clone(), Arc::clone(&link)),
                );
                (client, session, link)
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
        Ok((tree, client, link))
    }
}

/// DFS links followed in a row before giving up (a referral loop).
const DFS_HOPS: usize = 8;

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
