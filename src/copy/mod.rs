//! The copy engine. `--mt` permits bound all concurrent work; a file job holds
//! one, and a big file borrows more while it has blocks left: every worker on
//! the file takes the next offset from one atomic cursor and does a positional
//! read on the shared source handle and a positional write on the shared
//! destination handle, so one huge file can fill the whole window. A byte
//! window (bytes read and not yet written, over all files; [`window`])
//! bounds memory independently of `--mt`, file sizes and block size, and
//! adapts to the link.
//!
//! Each file is written as `.<name>.smbcp-<random>.tmp` in the destination
//! directory (or `<name>.smbcp-<random>` when the server refuses that name, or
//! `--temp-name`: [`temp`]) and renamed over the final name only once every byte is written;
//! times and attributes are set after that; on failure the temporary file is
//! deleted. Small files (≤ one READ/WRITE) go through one-round-trip compounds.
//!
//! SMB → SMB on one connection (same server and user), files of 1 MiB and
//! more are copied by the server (FSCTL_SRV_COPYCHUNK_WRITE, one request per
//! block, blocks in parallel as above): their data never crosses the wire.
//! If the server refuses, the run goes on through smbcp.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::{times_for, Backend, Entry, OpError, Reader, Writer};
use crate::cli::Options;
use crate::plan::{join, Class};
use crate::report::{Counter, FailureRecord, Reporter, Stats};

pub mod limiter;
pub mod retry;
pub mod temp;
pub mod window;

use limiter::RateLimiter;
use retry::RetryPolicy;
use window::Window;

/// One file to copy.
#[derive(Debug, Clone)]
pub struct Job {
    /// Directory, relative to both roots.
    pub dir: String,
    /// The source entry.
    pub src: Entry,
    /// Why it is copied.
    pub class: Class,
}

/// Shared state of the copy workers.
#[derive(Debug)]
pub struct Engine {
    src: Backend,
    dst: Backend,
    opts: Arc<Options>,
    stats: Arc<Stats>,
    rep: Arc<Reporter>,
    /// `--mt` permits.
    pub permits: Arc<Semaphore>,
    /// Set on Ctrl-C: no new jobs start, running big files stop between
    /// blocks and delete their temporary files.
    pub cancelled: Arc<AtomicBool>,
    limiter: Option<Arc<RateLimiter>>,
    retry: RetryPolicy,
    block: u32,
    /// Bytes read and not yet written: bounds memory whatever `--mt`, the
    /// file sizes and the block size are, and sizes itself to the link.
    pub window: Arc<Window>,
    /// SMB ↔ local where data goes between socket and file inside the
    /// kernel: files of [`DIRECT_MIN`] bytes and more take the block path.
    direct: bool,
    /// SMB → SMB on one connection: the server copies the data itself
    /// (FSCTL_SRV_COPYCHUNK), files of [`DIRECT_MIN`] bytes and more. Cleared
    /// for the rest of the run when the server refuses.
    server_side: Arc<AtomicBool>,
    /// Temporary name patterns, and which one the destination accepts.
    temps: temp::TempNames,
}

/// Smallest file that, when the kernel can move the data between socket and
/// file, is copied with open + READs/WRITEs + close (a few round trips)
/// instead of one compound with the data in memory.
const DIRECT_MIN: u64 = 1 << 20;

/// Ceiling of the window when the bytes in flight sit in our memory. An
/// SMB destination keeps WRITE payloads a little longer (smb-core's writer
/// frees a vectored batch as a whole), so peak RSS is up to twice this:
/// 2 GiB upload peak RSS 110-118 MiB at 64 MiB, 238 MiB at 128 MiB.
const WINDOW_MAX_MEMORY: u64 = 64 << 20;
/// Ceiling when the data moves between socket and file inside the kernel
/// (it costs no memory of ours). At +5 ms one way a 2 GiB download gave
/// 473-545 MB/s at 64 MiB, 553-588 at 128 MiB.
const WINDOW_MAX_DIRECT: u64 = 128 << 20;

/// A failed step: what was being done, and the error.
type StepError = (&'static str, OpError);

/// Name of the temporary file for `name`: hidden, unique, recognisable.
pub fn temp_name(name: &str) -> String {
    temp::TempPattern::default().render(name)
}

impl Engine {
    /// True when file data moves between socket and local file inside the
    /// kernel in this run (SMB ↔ local, `--zero-copy`, session unsigned).
    pub fn zero_copy(&self) -> bool {
        self.direct
    }

    /// True while file data goes from source to destination inside the
    /// server (SMB → SMB on one connection, and the server agrees).
    pub fn server_side(&self) -> bool {
        self.server_side.load(Relaxed)
    }

    /// Sets up the engine for one run.
    pub fn new(
        src: Backend,
        dst: Backend,
        opts: Arc<Options>,
        stats: Arc<Stats>,
        rep: Arc<Reporter>,
        rtt: std::time::Duration,
    ) -> Self {
        let block = src.io_size().min(dst.io_size()).max(64 * 1024);
        let direct = src.reads_into_files_of(&dst, opts.zero_copy)
            || src.files_go_directly_to(&dst, opts.zero_copy);
        let max = if direct {
            WINDOW_MAX_DIRECT
        } else {
            WINDOW_MAX_MEMORY
        };
        Self {
            permits: Arc::new(Semaphore::new(opts.mt)),
            cancelled: Arc::new(AtomicBool::new(false)),
            limiter: opts.bwlimit.map(|r| Arc::new(RateLimiter::new(r))),
            retry: RetryPolicy {
                retries: opts.retries,
                wait: opts.wait,
            },
            block,
            window: Arc::new(Window::new(Window::initial(rtt, max), max)),
            direct,
            server_side: Arc::new(AtomicBool::new(src.copies_on_server_to(&dst))),
            temps: temp::TempNames::new(opts.temp_name.clone()),
            src,
            dst,
            opts,
            stats,
            rep,
        }
    }

    /// Copies one file (with retries), records the outcome, releases the permit.
    pub async fn run_job(self: Arc<Self>, job: Job, permit: OwnedSemaphorePermit) {
        if self.cancelled.load(Relaxed) {
            return;
        }
        let rel = join(&job.dir, &job.src.name);
        let size = if self.opts.create_only {
            0
        } else {
            job.src.size
        };
        let result = self
            .retry
            .run(
                || self.copy_file(&job, &rel),
                |(_, e): &StepError| e.is_transient(),
            )
            .await;
        let s = &self.stats;
        match result {
            Ok(()) => {
                Counter::add(&s.files.copied, 1);
                Counter::add(&s.bytes.copied, size);
                self.rep.file(job.class.label(), size, &rel);
                if self.opts.move_files {
                    if let Err(e) = self.src.remove_file(&rel).await {
                        self.failed(&rel, "delete source", &e);
                    }
                }
            }
            Err((op, e)) => {
                Counter::add(&s.files.failed, 1);
                Counter::add(&s.bytes.failed, size);
                self.failed(&rel, op, &e);
            }
        }
        // Released only now: the end of the run waits for every permit, so a
        // job is fully accounted for before the summary is made.
        drop(permit);
    }

    /// Records and prints a failure.
    pub fn failed(&self, rel: &str, op: &str, e: &OpError) {
        let code = e.code();
        self.rep.error(&format!("{op} {rel}: {code}: {e}"));
        self.stats.fail(FailureRecord {
            path: rel.to_string(),
            operation: op.to_string(),
            code,
            message: e.to_string(),
        });
    }

    /// Copies one file under a temporary name the destination accepts
    /// (see [`temp::TempNames`]).
    async fn copy_file(&self, job: &Job, rel: &str) -> Result<(), StepError> {
        self.temps
            .run(&job.src.name, |t| async move {
                self.copy_file_as(job, rel, &join(&job.dir, &t)).await
            })
            .await
    }

    async fn copy_file_as(&self, job: &Job, rel: &str, temp: &str) -> Result<(), StepError> {
        let times = times_for(
            &job.src,
            self.opts.copy.timestamps,
            self.opts.copy.attributes,
        );
        let size = if self.opts.create_only {
            0
        } else {
            job.src.size
        };
        let whole_blocks = self.direct || self.server_side();
        if size <= u64::from(self.block) && !(whole_blocks && size >= DIRECT_MIN) {
            return self.copy_small(rel, temp, size, times).await;
        }
        let reader = self
            .src
            .open_read(rel)
            .await
            .map_err(|e| ("open source", e))?;
        let writer = match self.dst.create(temp, size).await {
            Ok(w) => w,
            Err(e) => {
                let _ = reader.close().await;
                return Err(("create", e));
            }
        };
        let key = match &reader {
            Reader::Smb(r) if self.server_side() => match r.resume_key().await {
                Ok(k) => Some(k),
                Err(e) if e.is_unsupported() => {
                    tracing::debug!("server-side copy refused ({e}); data goes through smbcp");
                    self.server_side.store(false, Relaxed);
                    None
                }
                Err(e) => {
                    let _ = reader.close().await;
                    writer.abort().await;
                    return Err(("server copy", e));
                }
            },
            _ => None,
        };
        let r = self.copy_blocks(&reader, &writer, size, key).await;
        let _ = reader.close().await;
        if let Err(e) = r {
            writer.abort().await;
            return Err(e);
        }
        let commit_times = (times != smb_core::FileTimes::default()).then_some(times);
        if let Err(e) = writer.commit(rel, commit_times).await {
            if e.renamed {
                // Every byte is in place under the final name: keep it.
                return Err(("set times", e.error));
            }
            writer.abort().await;
            return Err(("rename", e.error));
        }
        Ok(())
    }

    /// One read and one write: compounds on SMB.
    async fn copy_small(
        &self,
        rel: &str,
        temp: &str,
        size: u64,
        times: smb_core::FileTimes,
    ) -> Result<(), StepError> {
        // Held until the data is written.
        let _room = self.window.acquire(size).await;
        let data = if size == 0 {
            Bytes::new()
        } else {
            self.src
                .read_whole(rel, size)
                .await
                .map_err(|e| ("read", e))?
        };
        if data.len() as u64 != size {
            return Err((
                "read",
                OpError::Io(std::io::Error::other(
                    "source file changed size while copying",
                )),
            ));
        }
        if let Some(l) = &self.limiter {
            l.acquire(size).await;
        }
        self.dst.write_small(temp, rel, data, times).await?;
        self.stats.bytes_moved.fetch_add(size, Relaxed);
        self.window.done(size);
        Ok(())
    }

    /// Copies all blocks of a big file with as many workers as permits allow.
    async fn copy_blocks(
        &self,
        reader: &Reader,
        writer: &Writer,
        size: u64,
        key: Option<[u8; 24]>,
    ) -> Result<(), StepError> {
        let shared = Arc::new(BlockState {
            cursor: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let blocks = size.div_ceil(u64::from(self.block));
        let mut helpers = tokio::task::JoinSet::new();
        let mut spawned = 1u64;
        loop {
            // Borrow idle permits for helpers while blocks remain unclaimed.
            while spawned < blocks
                && shared.cursor.load(Relaxed) + spawned * u64::from(self.block) < size
            {
                let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                    break;
                };
                let ctx = self.block_ctx(reader, writer, &shared, size, key);
                helpers.spawn(async move {
                    let _permit = permit;
                    ctx.one_block_loop(u64::MAX).await;
                });
                spawned += 1;
            }
            // The lead worker does one block at a time so it can recruit helpers in between.
            if !self
                .block_ctx(reader, writer, &shared, size, key)
                .one_block_loop(1)
                .await
            {
                break;
            }
        }
        while helpers.join_next().await.is_some() {}
        let err = shared
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn block_ctx(
        &self,
        reader: &Reader,
        writer: &Writer,
        shared: &Arc<BlockState>,
        size: u64,
        server_key: Option<[u8; 24]>,
    ) -> BlockCtx {
        // SMB ↔ local file: the data goes between socket and file inside the
        // kernel, when the engine chose that for this pair of trees.
        let direct = match (reader, writer) {
            _ if !self.direct => None,
            (Reader::Smb(_), Writer::Local(w)) => w.direct_target(),
            (Reader::Local(r), Writer::Smb(_)) => r.direct_source(),
            _ => None,
        };
        BlockCtx {
            reader: reader.clone(),
            writer: writer.clone(),
            direct,
            server_key,
            server_side: self.server_side.clone(),
            shared: shared.clone(),
            stats: self.stats.clone(),
            cancelled: self.cancelled.clone(),
            limiter: self.limiter.clone(),
            window: self.window.clone(),
            block: self.block,
            size,
        }
    }
}

/// State shared by the workers of one big file.
#[derive(Debug)]
struct BlockState {
    cursor: AtomicU64,
    stop: AtomicBool,
    error: Mutex<Option<StepError>>,
}

fn shrank() -> OpError {
    OpError::Io(std::io::Error::other("source file shrank while copying"))
}

/// What a block worker needs.
struct BlockCtx {
    reader: Reader,
    writer: Writer,
    /// The local file an SMB reader writes into or an SMB writer reads
    /// from itself.
    direct: Option<Arc<std::fs::File>>,
    /// The source's resume key when the server copies the data itself.
    server_key: Option<[u8; 24]>,
    server_side: Arc<AtomicBool>,
    shared: Arc<BlockState>,
    stats: Arc<Stats>,
    cancelled: Arc<AtomicBool>,
    limiter: Option<Arc<RateLimiter>>,
    window: Arc<Window>,
    block: u32,
    size: u64,
}

impl BlockCtx {
    /// Copies up to `max_blocks` blocks; returns false when there is nothing left (or an error).
    async fn one_block_loop(&self, max_blocks: u64) -> bool {
        for _ in 0..max_blocks {
            if self.shared.stop.load(Relaxed) {
                return false;
            }
            if self.cancelled.load(Relaxed) {
                let e = OpError::Io(std::io::Error::other("interrupted"));
                self.shared.stop.store(true, Relaxed);
                self.shared
                    .error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(("copy", e));
                return false;
            }
            let off = self.shared.cursor.fetch_add(u64::from(self.block), Relaxed);
            if off >= self.size {
                return false;
            }
            let len = (self.size - off).min(u64::from(self.block)) as u32;
            if let Err(e) = self.one_block(off, len).await {
                self.shared.stop.store(true, Relaxed);
                let mut slot = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(e);
                return false;
            }
        }
        true
    }

    async fn one_block(&self, off: u64, len: u32) -> Result<(), StepError> {
        // Held until the block is written.
        let _room = self.window.acquire(u64::from(len)).await;
        if let (Some(key), Writer::Smb(w), true) = (
            self.server_key,
            &self.writer,
            self.server_side.load(Relaxed),
        ) {
            match w.server_copy(key, off, len).await {
                Ok(()) => {
                    self.moved(len);
                    return Ok(());
                }
                // Refused: this block, and later files, go through smbcp.
                Err(e) if e.is_unsupported() => {
                    tracing::debug!("server-side copy refused ({e}); data goes through smbcp");
                    self.server_side.store(false, Relaxed);
                }
                Err(e) => return Err(("server copy", e)),
            }
        }
        if let Some(file) = &self.direct {
            if let Some(l) = &self.limiter {
                l.acquire(u64::from(len)).await;
            }
            match (&self.reader, &self.writer) {
                (Reader::Smb(r), Writer::Local(_)) => {
                    let n = r.read_into(off, len, file).await.map_err(|e| match e {
                        // Only the local file write fails with a plain I/O error.
                        OpError::Io(_) => ("write", e),
                        e => ("read", e),
                    })?;
                    if n != len {
                        return Err(("read", shrank()));
                    }
                }
                (Reader::Local(_), Writer::Smb(w)) => {
                    w.write_from(off, len, file).await.map_err(|e| match e {
                        // Only the local file read fails with a plain I/O error.
                        OpError::Io(_) => ("read", e),
                        e => ("write", e),
                    })?;
                }
                // `direct` is only set for the two pairs above.
                _ => return Err(("copy", OpError::Io(std::io::Error::other("no direct path")))),
            }
            self.moved(len);
            return Ok(());
        }
        let data = self
            .reader
            .read_at(off, len)
            .await
            .map_err(|e| ("read", e))?;
        if data.len() != len as usize {
            return Err(("read", shrank()));
        }
        if let Some(l) = &self.limiter {
            l.acquire(u64::from(len)).await;
        }
        self.writer
            .write_at(off, data.clone())
            .await
            .map_err(|e| ("write", e))?;
        self.reader.recycle(data);
        self.moved(len);
        Ok(())
    }

    /// Counts a block as copied, for the progress and for the window.
    fn moved(&self, len: u32) {
        self.stats.bytes_moved.fetch_add(u64::from(len), Relaxed);
        self.window.done(u64::from(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_unique_and_bounded() {
        let a = temp_name("file.txt");
        let b = temp_name("file.txt");
        assert!(
            a.starts_with(".file.txt.smbcp-") && a.ends_with(".tmp"),
            "{a}"
        );
        assert_ne!(a, b);
        let long = "é".repeat(200);
        assert!(temp_name(&long).len() < 255);
    }
}
