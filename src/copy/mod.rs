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
use crate::events::Event;
use crate::plan::{join, Class};
use crate::report::{Counter, FailureRecord, Reporter, Stats};
use xxhash_rust::xxh3::xxh3_128;

pub mod config;
pub mod journal;
pub mod limiter;
pub mod retry;
pub mod temp;
pub mod window;

use config::EngineConfig;
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
    opts: EngineConfig,
    stats: Arc<Stats>,
    rep: Arc<Reporter>,
    /// `--mt` permits.
    pub permits: Arc<Semaphore>,
    /// Set on Ctrl-C: no new jobs start, running big files stop between
    /// blocks and delete their temporary files.
    pub cancelled: Arc<AtomicBool>,
    /// Set when a write found the destination full (or over quota): no new
    /// file is started, each is recorded as not copied, with one message.
    dest_full: AtomicBool,
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
    /// [`temp::TEMP_DIR`] was created in this run (held while creating it).
    temp_dir: tokio::sync::Mutex<bool>,
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
        opts: EngineConfig,
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
            dest_full: AtomicBool::new(false),
            limiter: opts.bwlimit.map(|r| Arc::new(RateLimiter::new(r))),
            retry: RetryPolicy {
                retries: opts.retries,
                wait: opts.wait,
            },
            block,
            window: Arc::new(Window::new(Window::initial(rtt, max), max)),
            direct,
            server_side: Arc::new(AtomicBool::new(src.copies_on_server_to(&dst))),
            temps: temp::TempNames::new(opts.temp_name.clone(), matches!(dst, Backend::Smb(_))),
            temp_dir: tokio::sync::Mutex::new(false),
            src,
            dst,
            opts,
            stats,
            rep,
        }
    }

    /// Runs the jobs of `queue` (the scanner produces them) with `--mt`
    /// permits, until the queue ends or the run is cancelled, and returns
    /// when every started job has finished.
    pub async fn consume(self: Arc<Self>, mut queue: tokio::sync::mpsc::Receiver<Job>) {
        let mut jobs = tokio::task::JoinSet::new();
        while let Some(job) = queue.recv().await {
            if self.cancelled.load(Relaxed) {
                // Dropping the receiver stops the walkers at their next send.
                break;
            }
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            // Reap finished jobs so the set stays as small as the window.
            while jobs.try_join_next().is_some() {}
            jobs.spawn(self.clone().run_job(job, permit));
        }
        drop(queue);
        // Wait for the jobs themselves, not for all `--mt` permits: a queued
        // acquire_many(mt) would take every permit released meanwhile and
        // leave none for a big file's block helpers (the last big file of a
        // run, or the only one, then ran one READ at a time: 228 MB/s at +5 ms).
        while jobs.join_next().await.is_some() {}
        if *self.temp_dir.lock().await {
            // Best effort: a temporary file kept for a restartable copy (or
            // another run's) keeps it.
            let _ = self.dst.remove_dir(temp::TEMP_DIR).await;
        }
    }

    /// Creates [`temp::TEMP_DIR`] the first time a file needs it.
    async fn ensure_temp_dir(&self) -> Result<(), StepError> {
        let mut made = self.temp_dir.lock().await;
        if !*made {
            self.dst
                .mkdir(temp::TEMP_DIR)
                .await
                .map_err(|e| ("create", e))?;
            *made = true;
        }
        Ok(())
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
        if self.dest_full.load(Relaxed) {
            // Counted and listed, not printed: one line said why.
            let s = &self.stats;
            Counter::add(&s.files.failed, 1);
            Counter::add(&s.bytes.failed, size);
            s.fail(FailureRecord {
                path: rel.clone(),
                operation: "copy".into(),
                code: "DEST_FULL".into(),
                message: "not started: the destination is full".into(),
            });
            drop(permit);
            return;
        }
        let started = std::time::Instant::now();
        let events = self.rep.events();
        events.emit(Event::FileStart {
            path: rel.clone(),
            size,
            class: job.class.label().to_string(),
        });
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let result = self
            .retry
            .run_noting(
                || self.copy_file(&job, &rel, attempts.fetch_add(1, Relaxed) > 0),
                |(_, e): &StepError| e.is_transient(),
                |attempt, (op, e): &StepError| {
                    self.stats.retries.fetch_add(1, Relaxed);
                    tracing::info!(
                        "retry {attempt}/{} of {rel}: {op}: {}: {e}",
                        self.retry.retries,
                        e.code()
                    );
                    events.emit(Event::Retry {
                        path: rel.clone(),
                        attempt,
                        operation: (*op).to_string(),
                        code: e.code(),
                        error: e.to_string(),
                    });
                },
            )
            .await;
        let s = &self.stats;
        match result {
            Ok(()) => {
                Counter::add(&s.files.copied, 1);
                Counter::add(&s.bytes.copied, size);
                self.rep
                    .file_at(job.class.label(), size, Some(job.src.mtime), &rel);
                events.emit(Event::FileDone {
                    path: rel.clone(),
                    bytes: size,
                    ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    class: job.class.label().to_string(),
                });
                if self.opts.move_files {
                    match self.src.remove_file(&rel).await {
                        Ok(()) => events.emit(Event::Delete {
                            path: rel.clone(),
                            side: "source".into(),
                        }),
                        Err(e) => self.failed(&rel, "delete source", &e),
                    }
                }
            }
            Err((op, e)) => {
                Counter::add(&s.files.failed, 1);
                Counter::add(&s.bytes.failed, size);
                self.failed(&rel, op, &e);
                if e.is_dest_full() && !self.dest_full.swap(true, Relaxed) {
                    self.rep.error(&format!(
                        "the destination is full ({}): no more files are started",
                        e.code()
                    ));
                }
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
        self.rep.events().emit(Event::Failure {
            path: rel.to_string(),
            operation: op.to_string(),
            code: code.clone(),
            message: e.to_string(),
        });
        self.stats.fail(FailureRecord {
            path: rel.to_string(),
            operation: op.to_string(),
            code,
            message: e.to_string(),
        });
    }

    /// One attempt at copying `job`. `again`: a retry, so the source is
    /// looked at anew (it may have changed since it was listed).
    async fn copy_file(&self, job: &Job, rel: &str, again: bool) -> Result<(), StepError> {
        let fresh;
        let job = if again {
            let now = self.src.stat(rel).await.map_err(|e| ("stat source", e))?;
            fresh = Job {
                src: Entry {
                    name: job.src.name.clone(),
                    ..now
                },
                ..job.clone()
            };
            &fresh
        } else {
            job
        };
        // Under a temporary name the destination accepts (see [`temp::TempNames`]).
        self.temps
            .run(&job.src.name, |t| async move {
                if temp::in_temp_dir(&t) {
                    // Already a path from the destination root.
                    self.ensure_temp_dir().await?;
                    return self.copy_file_as(job, rel, &t).await;
                }
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
        let (writer, resume, temp) = match self.open_dest(job, rel, temp, size).await {
            Ok(w) => w,
            Err(e) => {
                let _ = reader.close().await;
                return Err(e);
            }
        };
        let writer = &writer;
        // A restartable file keeps its temporary file and journal when it
        // fails (the next attempt or run resumes it), unless the source
        // changed under it.
        let give_up = |e: StepError| async {
            match &resume {
                Some(res) if !matches!(e.1, OpError::SourceChanged(_)) => {
                    let _ = res.journal.sync();
                    writer.release().await;
                }
                _ => {
                    writer.abort().await;
                    if let Some(res) = &resume {
                        let _ = res.journal.remove();
                    }
                }
            }
            Err(e)
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
                    return give_up(("server copy", e)).await;
                }
            },
            _ => None,
        };
        let copied = self
            .copy_blocks(rel, &reader, writer, size, key, resume.as_ref())
            .await;
        let _ = reader.close().await;
        let (mut r, hashes) = match copied {
            Ok(h) => (Ok(()), h),
            Err(e) => (Err(e), None),
        };
        if r.is_ok() && !self.opts.create_only {
            // Every block was read: is the source still the file we listed?
            // (Blocks are read in parallel, so a change in between tears
            // the copy in ways no later check of the data would show.)
            r = match self.src.stat(rel).await {
                Ok(now) if now.size == job.src.size && now.mtime == job.src.mtime => Ok(()),
                Ok(now) => Err((
                    "read",
                    OpError::SourceChanged(format!(
                        "the source changed while it was copied (size {} → {}, write time {} → {})",
                        job.src.size, now.size, job.src.mtime.0, now.mtime.0
                    )),
                )),
                Err(e) => Err(("stat source", e)),
            };
        }
        if let (Ok(()), Some(h)) = (&r, hashes) {
            r = self.verify_temp(rel, &temp, size, h).await;
        }
        if let Err(e) = r {
            return give_up(e).await;
        }
        let commit_times = (times != smb_core::FileTimes::default()).then_some(times);
        let committed = writer.commit(rel, commit_times).await;
        if let Some(res) = resume {
            if committed.as_ref().map_or_else(|e| e.renamed, |()| true) {
                // Complete under its final name: nothing left to resume.
                let _ = res.journal.remove();
            }
        }
        if let Err(e) = committed {
            if e.renamed {
                // Every byte is in place under the final name: keep it.
                return Err(("set times", e.error));
            }
            writer.abort().await;
            return Err(("rename", e.error));
        }
        Ok(())
    }

    /// Creates the temporary destination file, or — for a restartable file
    /// whose journal matches the source — opens the one a previous attempt
    /// left, with the blocks it already holds.
    async fn open_dest(
        &self,
        job: &Job,
        rel: &str,
        fresh_temp: &str,
        size: u64,
    ) -> Result<(Writer, Option<Resume>, String), StepError> {
        let restartable = !self.opts.list_only
            && !self.opts.create_only
            && self.opts.restartable_min.is_some_and(|m| size >= m);
        if !restartable {
            let w = self
                .dst
                .create(fresh_temp, size)
                .await
                .map_err(|e| ("create", e))?;
            return Ok((w, None, fresh_temp.to_string()));
        }
        let id = journal::Identity {
            key: format!("{}|{rel}", self.opts.dest_key),
            size,
            mtime: job.src.mtime.0,
            block: self.block,
        };
        let opened = match journal::Journal::open(&self.opts.state_dir, &id, fresh_temp) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(
                    "no resume journal for {rel} in {} ({e}): it is copied as not restartable",
                    self.opts.state_dir.display()
                );
                let w = self
                    .dst
                    .create(fresh_temp, size)
                    .await
                    .map_err(|e| ("create", e))?;
                return Ok((w, None, fresh_temp.to_string()));
            }
        };
        if let Some(stale) = &opened.stale_temp {
            // Left by a run that copied another version of the source.
            let _ = self.dst.remove_file(stale).await;
        }
        let mut opened = opened;
        if !opened.done.is_empty() {
            match self.dst.reopen(&opened.temp, size).await {
                Ok(w) => {
                    let done = opened.done.len() as u64;
                    tracing::info!("resuming {rel}: {done} block(s) already written");
                    return Ok((
                        w,
                        Some(Resume {
                            journal: opened.journal,
                            done: opened.done,
                        }),
                        opened.temp,
                    ));
                }
                Err(e) if e.is_not_found() => {
                    // The temporary file is gone: start over.
                    let _ = opened.journal.remove();
                    opened = journal::Journal::open(&self.opts.state_dir, &id, fresh_temp)
                        .map_err(|e| ("create", e.into()))?;
                }
                Err(e) => return Err(("create", e)),
            }
        }
        let w = self
            .dst
            .create(&opened.temp, size)
            .await
            .map_err(|e| ("create", e))?;
        Ok((
            w,
            Some(Resume {
                journal: opened.journal,
                done: opened.done,
            }),
            opened.temp,
        ))
    }

    /// `--verify` for a big file, before its rename: reads the temporary file
    /// back block by block and compares each block's hash with the source's
    /// (taken as the block was read, or read again for blocks that never
    /// passed through memory: zero-copy, server-side or resumed ones).
    async fn verify_temp(
        &self,
        rel: &str,
        temp: &str,
        size: u64,
        hashes: BlockHashes,
    ) -> Result<(), StepError> {
        let back = self.dst.open_read(temp).await.map_err(|e| ("verify", e))?;
        let mut src: Option<Reader> = None;
        let mut off = 0;
        let r = async {
            while off < size {
                let len = (size - off).min(u64::from(self.block)) as u32;
                let d = back.read_at(off, len).await.map_err(|e| ("verify", e))?;
                let want = match hashes.get(&off) {
                    Some(h) => *h,
                    None => {
                        let reader = match &src {
                            Some(r) => r,
                            None => src.insert(
                                self.src.open_read(rel).await.map_err(|e| ("verify", e))?,
                            ),
                        };
                        let s = reader.read_at(off, len).await.map_err(|e| ("verify", e))?;
                        xxh3_128(&s)
                    }
                };
                if d.len() != len as usize || xxh3_128(&d) != want {
                    return Err((
                        "verify",
                        OpError::VerifyMismatch(format!(
                            "the destination read back differs from the source in the block at byte {off}"
                        )),
                    ));
                }
                off += u64::from(len);
            }
            Ok(())
        }
        .await;
        let _ = back.close().await;
        if let Some(s) = src {
            let _ = s.close().await;
        }
        r?;
        Counter::add(&self.stats.verified_files, 1);
        Counter::add(&self.stats.verified_bytes, size);
        Ok(())
    }

    /// `--verify` for a small file, after it landed: reads it back whole and
    /// compares; a mismatching file is removed (it is known to be wrong).
    async fn verify_small(&self, rel: &str, data: &[u8]) -> Result<(), StepError> {
        let size = data.len() as u64;
        let back = self
            .dst
            .read_whole(rel, size)
            .await
            .map_err(|e| ("verify", e))?;
        if back.len() != data.len() || xxh3_128(&back) != xxh3_128(data) {
            let _ = self.dst.remove_file(rel).await;
            return Err((
                "verify",
                OpError::VerifyMismatch(
                    "the destination read back differs from the source (the copy was removed)"
                        .into(),
                ),
            ));
        }
        Counter::add(&self.stats.verified_files, 1);
        Counter::add(&self.stats.verified_bytes, size);
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
                OpError::SourceChanged(format!(
                    "the source changed while it was copied ({size} bytes listed, {} read)",
                    data.len()
                )),
            ));
        }
        if let Some(l) = &self.limiter {
            l.acquire(size).await;
        }
        let kept = self.opts.verify.then(|| data.clone());
        self.dst.write_small(temp, rel, data, times).await?;
        if let Some(d) = kept {
            self.verify_small(rel, &d).await?;
        }
        self.stats.bytes_moved.fetch_add(size, Relaxed);
        self.window.done(size);
        Ok(())
    }

    /// Copies all blocks of a big file with as many workers as permits allow.
    async fn copy_blocks(
        &self,
        rel: &str,
        reader: &Reader,
        writer: &Writer,
        size: u64,
        key: Option<[u8; 24]>,
        resume: Option<&Resume>,
    ) -> Result<Option<BlockHashes>, StepError> {
        let shared = Arc::new(BlockState {
            cursor: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            journal: resume.map(|r| r.journal.clone()),
            done: resume.map(|r| r.done.clone()).unwrap_or_default(),
            // Created just now and sized: what is not written reads as zeros.
            fresh: resume.map_or(true, |r| r.done.is_empty()),
            hashes: self.opts.verify.then(Mutex::default),
        });
        let blocks = size.div_ceil(u64::from(self.block));
        // Only when someone listens: an event per block costs an allocation.
        let note: Option<Arc<str>> = self.rep.events().wanted().then(|| Arc::from(rel));
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
                let ctx = self.block_ctx(reader, writer, &shared, size, key, note.clone());
                helpers.spawn(async move {
                    let _permit = permit;
                    ctx.one_block_loop(u64::MAX).await;
                });
                spawned += 1;
            }
            // The lead worker does one block at a time so it can recruit helpers in between.
            if !self
                .block_ctx(reader, writer, &shared, size, key, note.clone())
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
        if let Some(e) = err {
            return Err(e);
        }
        Ok(shared
            .hashes
            .as_ref()
            .map(|h| std::mem::take(&mut *h.lock().unwrap_or_else(|e| e.into_inner()))))
    }

    fn block_ctx(
        &self,
        reader: &Reader,
        writer: &Writer,
        shared: &Arc<BlockState>,
        size: u64,
        server_key: Option<[u8; 24]>,
        note: Option<Arc<str>>,
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
            note: note.map(|path| (self.rep.clone(), path)),
        }
    }
}

/// State shared by the workers of one big file.
#[derive(Debug)]
struct BlockState {
    cursor: AtomicU64,
    stop: AtomicBool,
    error: Mutex<Option<StepError>>,
    /// Where finished blocks are recorded (a restartable file).
    journal: Option<journal::Journal>,
    /// Offsets of blocks a previous attempt already wrote.
    done: std::collections::HashSet<u64>,
    /// The destination was created for this attempt and sized, so a range
    /// nobody writes reads as zeros: a block of zeros is not written, and
    /// a sparse source stays sparse (a resumed temporary file may hold a
    /// torn block anywhere not done, so there every block is written).
    fresh: bool,
    /// `--verify`: the source's hash of each block that passed through memory.
    hashes: Option<Mutex<BlockHashes>>,
}

/// `--verify`: the source hash of each block, by offset.
type BlockHashes = std::collections::HashMap<u64, u128>;

/// A restartable file's journal and the blocks it says are written.
#[derive(Debug)]
struct Resume {
    journal: journal::Journal,
    done: std::collections::HashSet<u64>,
}

/// True when every byte of `data` is zero: compared with a static block of
/// zeros (memcmp, a few GB/s) 64 KiB at a time.
fn is_zeros(data: &[u8]) -> bool {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    data.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

fn shrank() -> OpError {
    OpError::SourceChanged("the source shrank while it was copied".into())
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
    /// Where block-done events go, and the file's path (only with listeners).
    note: Option<(Arc<Reporter>, Arc<str>)>,
}

impl BlockCtx {
    /// Copies up to `max_blocks` blocks; returns false when there is nothing left (or an error).
    async fn one_block_loop(&self, max_blocks: u64) -> bool {
        for _ in 0..max_blocks {
            if self.shared.stop.load(Relaxed) {
                return false;
            }
            if self.cancelled.load(Relaxed) {
                // Not ErrorKind::Interrupted: that one is retried.
                let e = OpError::Io(std::io::Error::other("interrupted (Ctrl-C)"));
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
            if self.shared.done.contains(&off) {
                // Written by an earlier attempt (the journal says so).
                self.stats.bytes_resumed.fetch_add(u64::from(len), Relaxed);
                continue;
            }
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
        if let (Some(_), Reader::Smb(r), Writer::Smb(w), true) = (
            self.server_key,
            &self.reader,
            &self.writer,
            self.server_side.load(Relaxed),
        ) {
            // Asked each block (cached per connection): a source handle
            // reopened after a reconnect has a new key.
            let key = r.resume_key().await.map_err(|e| ("server copy", e))?;
            if let Some(l) = &self.limiter {
                // --bwlimit paces the COPYCHUNK requests too.
                l.acquire(u64::from(len)).await;
            }
            match w.server_copy(key, off, len).await {
                Ok(()) => {
                    self.moved(off, len);
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
            self.moved(off, len);
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
        if let Some(h) = &self.shared.hashes {
            // Hashed as read from the source, while the bytes are in cache.
            h.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(off, xxh3_128(&data));
        }
        if self.shared.fresh && is_zeros(&data) {
            // A hole (or zeros) in the source: already zeros here.
            self.reader.recycle(data);
            self.moved(off, len);
            return Ok(());
        }
        if let Some(l) = &self.limiter {
            l.acquire(u64::from(len)).await;
        }
        self.writer
            .write_at(off, data.clone())
            .await
            .map_err(|e| ("write", e))?;
        self.reader.recycle(data);
        self.moved(off, len);
        Ok(())
    }

    /// Counts a block as copied, for the progress and for the window, and
    /// tells the event stream.
    fn moved(&self, off: u64, len: u32) {
        self.stats.bytes_moved.fetch_add(u64::from(len), Relaxed);
        self.window.done(u64::from(len));
        if let Some(j) = &self.shared.journal {
            if let Err(e) = j.record(off, u64::from(len)) {
                // The copy goes on; only its resumability suffers.
                tracing::warn!("cannot record a block in the resume journal: {e}");
            }
        }
        if let Some((rep, path)) = &self.note {
            rep.events().emit(Event::BlockDone {
                path: path.to_string(),
                offset: off,
                len: u64::from(len),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::WriteFaults;
    use crate::backend::LocalFs;

    /// An engine copying `src` → `dst` (local trees) with `config`.
    fn engine(
        src: &std::path::Path,
        dst: &std::path::Path,
        config: EngineConfig,
    ) -> (Arc<Engine>, LocalFs) {
        let stats = Arc::new(Stats::default());
        let rep = Arc::new(
            Reporter::new(&crate::report::ReportConfig::default(), stats.clone()).unwrap(),
        );
        let dst_fs = LocalFs::new(dst.to_path_buf(), false);
        let e = Engine::new(
            Backend::Local(LocalFs::new(src.to_path_buf(), false)),
            Backend::Local(dst_fs.clone()),
            config,
            stats,
            rep,
            std::time::Duration::ZERO,
        );
        (Arc::new(e), dst_fs)
    }

    /// `--wait 1ms --mt N`, the rest as a run without flags.
    fn quick(mt: usize) -> EngineConfig {
        EngineConfig {
            wait: std::time::Duration::from_millis(1),
            mt,
            ..EngineConfig::default()
        }
    }

    fn big_job(src: &std::path::Path, len: usize) -> (Job, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(src.join("big.bin"), &data).unwrap();
        let entry = Entry {
            name: "big.bin".into(),
            is_dir: false,
            size: len as u64,
            mtime: smb_core::FileTime::default(),
            attributes: 0,
            created: None,
        };
        (
            Job {
                dir: String::new(),
                src: entry,
                class: Class::New,
            },
            data,
        )
    }

    fn run(e: &Arc<Engine>, job: Job) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let permit = e.permits.clone().acquire_owned().await.unwrap();
            e.clone().run_job(job, permit).await;
        });
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn zero_blocks_are_not_written_to_a_fresh_temp_so_holes_stay_holes() {
        use std::os::unix::fs::MetadataExt as _;
        assert!(is_zeros(&[0; 21]) && is_zeros(&[]));
        assert!(!is_zeros(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) && !is_zeros(&[1, 0]));
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("s"), d.path().join("d"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let (e, _) = engine(
            &src,
            &dst,
            EngineConfig {
                mt: 2,
                ..EngineConfig::default()
            },
        );
        // Four 8 MiB blocks, the middle two zeros.
        let block = 8 << 20;
        let (job, mut data) = big_job(&src, 4 * block);
        data[block..3 * block].fill(0);
        std::fs::write(src.join("big.bin"), &data).unwrap();
        run(&e, job);
        assert!(e.stats.failures().is_empty());
        let out = dst.join("big.bin");
        assert!(std::fs::read(&out).unwrap() == data);
        let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(
            allocated <= 2 * block as u64 + (1 << 20),
            "{allocated} bytes allocated for 16 MiB of data"
        );
    }

    #[test]
    fn a_transient_failure_at_block_n_is_retried_and_the_file_lands_whole() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("s"), d.path().join("d"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let (e, dst_fs) = engine(&src, &dst, quick(2));
        // Four 8 MiB blocks; the third write fails once.
        let (job, data) = big_job(&src, 4 * (8 << 20) - 3);
        dst_fs.inject_write_faults(WriteFaults {
            fail_at: vec![2],
            kind: std::io::ErrorKind::Interrupted,
            seen: 0,
        });
        run(&e, job);
        assert_eq!(e.stats.retries.load(Relaxed), 1);
        assert_eq!(e.stats.files.row().copied, 1);
        assert!(e.stats.failures().is_empty());
        assert_eq!(std::fs::read(dst.join("big.bin")).unwrap(), data);
        assert_eq!(names(&dst), vec!["big.bin"], "no temporary file left");
    }

    #[test]
    fn a_permanent_failure_at_block_n_fails_the_file_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("s"), d.path().join("d"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let (e, dst_fs) = engine(&src, &dst, quick(8));
        let (job, _) = big_job(&src, 3 * (8 << 20));
        dst_fs.inject_write_faults(WriteFaults {
            fail_at: vec![1],
            kind: std::io::ErrorKind::PermissionDenied,
            seen: 0,
        });
        run(&e, job);
        assert_eq!(e.stats.retries.load(Relaxed), 0, "not retried");
        assert_eq!(e.stats.files.row().failed, 1);
        let f = e.stats.failures();
        assert_eq!((f.len(), f[0].operation.as_str()), (1, "write"));
        assert_eq!(f[0].path, "big.bin");
        assert!(names(&dst).is_empty(), "{:?}", names(&dst));
    }

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
