//! The scanner: source and destination trees walked in parallel by a fixed
//! set of walkers (many listings — QUERY_DIRECTORY on SMB, a parallel walk
//! locally — in flight) taking directory names from one queue, each
//! directory pair diffed by [`crate::plan::plan_dir`] and its copy jobs
//! pushed into a bounded channel. Copying starts with the first directory,
//! and memory holds only the directories being walked, the names of those
//! still to walk and the channel, not the tree ([`Gauges`] counts it).
//!
//! Local symlinks are reported here: a source link skipped (a file-list
//! line), a destination link in the way of a source entry refused (a
//! failure, which also keeps `--purge` from running).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify, OnceCell};

use crate::backend::local::LinkKind;
use crate::backend::{Backend, Entry, OpError};
use crate::copy::config::CopyFlags;
use crate::copy::retry::RetryPolicy;
use crate::copy::{Engine, Job};
use crate::events::Event;
use crate::plan::{join, plan_dir, Class, Filter, Selection};
use crate::report::{Counter, FailureRecord, Reporter, Stats};

mod extras;
pub use extras::Extras;

/// Concurrent directory listings.
const LISTINGS_IN_FLIGHT: usize = 32;
/// Jobs queued between the scanner and the workers.
pub const JOB_QUEUE: usize = 4096;

/// The scanner's settings for one run (built by `Options::scan_config`).
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Which files and directories take part.
    pub filter: Filter,
    /// How classes are turned into copy decisions.
    pub selection: Selection,
    /// Descend into subdirectories.
    pub subdirs: bool,
    /// Create empty directories too.
    pub empty_dirs: bool,
    /// Change nothing, only report.
    pub list_only: bool,
    /// What is kept of directories (times, attributes) after the copy pass.
    pub dcopy: CopyFlags,
    /// Source directories are removed after the run (`--move-all`): collect them.
    pub move_dirs: bool,
    /// Follow symlinks in a local source.
    pub follow_links: bool,
    /// Retries of failed listings.
    pub retry: RetryPolicy,
}

/// Work left for after the copy pass.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Destination-only entries (relative path, entry), for `--purge`:
    /// bounded in memory, the rest spilled to a temporary file.
    pub extras: Extras,
    /// Destination directories and their source entry, for `--dcopy T`.
    pub dirs: Vec<(String, Entry)>,
    /// Source directories, for `--move-all`.
    pub src_dirs: Vec<String>,
}

/// Shared scanner state.
#[derive(Debug)]
pub struct Scanner {
    src: Backend,
    dst: Backend,
    opts: ScanConfig,
    stats: Arc<Stats>,
    rep: Arc<Reporter>,
    engine: Arc<Engine>,
    /// What the scanner holds in memory, now and at most.
    pub gauges: Gauges,
    made: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
    /// A listing failed: deletes are unsafe.
    pub errors: AtomicBool,
    /// Collected for the later phases.
    pub leftovers: Mutex<Leftovers>,
}

/// A level of occupancy and its high-water mark.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    high: AtomicUsize,
}

impl Gauge {
    fn add(&self, n: usize) {
        let now = self.now.fetch_add(n, Relaxed) + n;
        self.high.fetch_max(now, Relaxed);
    }

    fn sub(&self, n: usize) {
        self.now.fetch_sub(n, Relaxed);
    }

    /// The highest level seen.
    pub fn high_water(&self) -> usize {
        self.high.load(Relaxed)
    }
}

/// What the scanner holds: bounded by the walkers and the directory count,
/// never by the number of files.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Listing entries (source + destination) of directories being walked:
    /// at most one directory's worth per walker (32).
    pub entries_held: Gauge,
    /// Directories listed and not yet done (their jobs not all queued).
    pub dirs_held: Gauge,
    /// Directory names waiting for a walker.
    pub dirs_queued: Gauge,
}

impl Gauges {
    fn hold(&self, entries: usize) -> Held<'_> {
        self.entries_held.add(entries);
        self.dirs_held.add(1);
        Held {
            gauges: self,
            entries,
        }
    }
}

/// One walked directory's share of [`Gauges`], given back on drop.
#[derive(Debug)]
struct Held<'a> {
    gauges: &'a Gauges,
    entries: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.gauges.entries_held.sub(self.entries);
        self.gauges.dirs_held.sub(1);
    }
}

/// A directory to walk.
#[derive(Debug)]
struct PendingDir {
    rel: String,
    level: u32,
    dst_exists: bool,
}

/// The directories still to walk (a stack: depth first, so the names
/// waiting stay few) and how many are queued or being walked; the scan is
/// over when that count is zero.
#[derive(Debug, Default)]
struct DirQueue {
    state: Mutex<(Vec<PendingDir>, usize)>,
    ready: Notify,
}

impl DirQueue {
    fn push(&self, gauges: &Gauges, d: PendingDir) {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0.push(d);
            s.1 += 1;
        }
        gauges.dirs_queued.add(1);
        self.ready.notify_one();
    }

    /// The next directory, or None when every directory is done.
    async fn next(&self, gauges: &Gauges) -> Option<PendingDir> {
        loop {
            // Registered before looking, so a push or the last done() in
            // between is not missed.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(d) = s.0.pop() {
                    gauges.dirs_queued.sub(1);
                    return Some(d);
                }
                if s.1 == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// One directory from next() is walked (its subdirectories pushed).
    fn done(&self) {
        let left = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.1 -= 1;
            s.1
        };
        if left == 0 {
            self.ready.notify_waiters();
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Scanner {
    /// A scanner feeding `engine`.
    pub fn new(
        src: Backend,
        dst: Backend,
        opts: ScanConfig,
        stats: Arc<Stats>,
        rep: Arc<Reporter>,
        engine: Arc<Engine>,
    ) -> Self {
        // Shared by every clone of the source backend (the engine's too).
        if let Backend::Local(l) = &src {
            l.set_follow_links(opts.follow_links);
        }
        Self {
            src,
            dst,
            opts,
            stats,
            rep,
            engine,
            gauges: Gauges::default(),
            made: Mutex::new(HashMap::new()),
            errors: AtomicBool::new(false),
            leftovers: Mutex::new(Leftovers::default()),
        }
    }

    /// Marks a destination directory as existing.
    pub fn known_dir(&self, rel: &str) {
        let cell = Arc::new(OnceCell::new_with(Some(false)));
        self.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), cell);
    }

    /// Creates a destination directory (and missing parents) once; returns true
    /// when this call created it.
    fn ensure_dir<'a>(&'a self, rel: &'a str) -> BoxFut<'a, Result<bool, OpError>> {
        Box::pin(async move {
            let cell = {
                let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
                made.entry(rel.to_string()).or_default().clone()
            };
            let mut created = false;
            cell.get_or_try_init(|| async {
                if let Some((parent, _)) = rel.rsplit_once('/') {
                    if self.ensure_dir(parent).await? {
                        // The parent had no files of its own (counted skipped by
                        // its walk) and exists now only to hold this one.
                        let d = &self.stats.dirs;
                        d.skipped.fetch_sub(1, Relaxed);
                        Counter::add(&d.copied, 1);
                        self.rep.dir("New Dir", 0, parent);
                    }
                }
                self.dst.mkdir(rel).await?;
                created = true;
                Ok::<_, OpError>(true)
            })
            .await?;
            Ok(created)
        })
    }

    /// Walks the tree from the roots, producing every copy into the engine's
    /// queue, and returns when all directories are scanned and the engine
    /// has finished every copy.
    ///
    /// A fixed set of walkers (32) take directories from one queue of
    /// names; a walker holds its directory's listing until every job of it
    /// is in the (bounded) job queue, so memory holds at most that many
    /// listings plus the names of the directories not yet walked, whatever
    /// the number of files (a task per directory, as before, kept every
    /// listed directory waiting on a full job queue: 87 MiB at 300,000 files).
    pub async fn run(self: &Arc<Self>, dst_root_exists: bool) {
        let (tx, rx) = mpsc::channel::<Job>(JOB_QUEUE);
        let me = self.clone();
        let root = tokio::spawn(async move {
            let queue = Arc::new(DirQueue::default());
            queue.push(
                &me.gauges,
                PendingDir {
                    rel: String::new(),
                    level: 1,
                    dst_exists: dst_root_exists,
                },
            );
            let walkers: Vec<_> = (0..LISTINGS_IN_FLIGHT)
                .map(|_| {
                    let (me, queue, tx) = (me.clone(), queue.clone(), tx.clone());
                    tokio::spawn(async move {
                        while let Some(d) = queue.next(&me.gauges).await {
                            for sub in me.clone().walk(d, &tx).await {
                                queue.push(&me.gauges, sub);
                            }
                            queue.done();
                        }
                    })
                })
                .collect();
            drop(tx);
            for w in walkers {
                let _ = w.await;
            }
            // Every directory is listed: the totals are final.
            me.rep.scan_finished();
            let s = &me.stats;
            me.rep.events().emit(Event::ScanDone {
                files: s.files.total.load(Relaxed),
                bytes: s.bytes.total.load(Relaxed),
            });
        });
        self.engine.clone().consume(rx).await;
        let _ = root.await;
    }

    /// Lists and plans one directory, sends its jobs; returns its
    /// subdirectories to walk (none when it failed or the run stops).
    async fn walk(self: Arc<Self>, d: PendingDir, tx: &mpsc::Sender<Job>) -> Vec<PendingDir> {
        let PendingDir {
            rel: dir,
            level,
            dst_exists,
        } = d;
        {
            if self.engine.cancelled.load(Relaxed) {
                return Vec::new();
            }
            let listed = {
                let policy = self.opts.retry;
                let src = policy.run(|| self.src.list_dir(&dir), OpError::is_transient);
                let dst = async {
                    if dst_exists {
                        match policy
                            .run(|| self.dst.list_dir(&dir), OpError::is_transient)
                            .await
                        {
                            Err(e) if e.is_not_found() => Ok(Vec::new()),
                            r => r,
                        }
                    } else {
                        Ok(Vec::new())
                    }
                };
                tokio::join!(src, dst)
            };
            if self.engine.cancelled.load(Relaxed) {
                // Ctrl-C while listing: no directory made, no file queued.
                return Vec::new();
            }
            let (mut src, mut dst) = match listed {
                (Ok(s), Ok(d)) => (s, d),
                (Err(e), _) => {
                    self.list_failed(&dir, "list source", &e);
                    return Vec::new();
                }
                (_, Err(e)) => {
                    self.list_failed(&dir, "list destination", &e);
                    return Vec::new();
                }
            };
            if dir.is_empty() {
                // The run's own temporary directory (an SMB destination's):
                // never copied, never purged while files are in it.
                let ours = |e: &Entry| e.name == crate::copy::temp::TEMP_DIR;
                src.retain(|e| !ours(e));
                dst.retain(|e| !ours(e));
            }
            // Counted until this directory's jobs are all queued.
            let _held = self.gauges.hold(src.len() + dst.len());
            let o = &self.opts;
            let plan = plan_dir(&dir, level, src, dst, &o.filter, &o.selection, o.subdirs);
            self.account(&dir, &plan);
            let to_copy: Vec<_> = plan.files.iter().filter(|f| f.copy).collect();
            // The root always exists; others only when they receive files or with -e.
            let needed = dir.is_empty() || !to_copy.is_empty() || o.empty_dirs;
            let s = &self.stats;
            if needed {
                if !dst_exists {
                    Counter::add(&s.dirs.copied, 1);
                    self.rep.dir("New Dir", to_copy.len() as u64, &dir);
                } else {
                    Counter::add(&s.dirs.skipped, 1);
                }
                if !o.list_only {
                    if let Err(e) = self.ensure_dir(&dir).await {
                        Counter::add(&s.dirs.failed, 1);
                        self.engine.failed(&dir, "mkdir", &e);
                        // The files cannot go anywhere: count them failed.
                        for f in &to_copy {
                            Counter::add(&s.files.failed, 1);
                            Counter::add(&s.bytes.failed, f.src.size);
                        }
                        return Vec::new();
                    }
                }
            } else {
                Counter::add(&s.dirs.skipped, 1);
            }
            for f in plan.files {
                if self.engine.cancelled.load(Relaxed) {
                    return Vec::new();
                }
                if f.copy {
                    self.rep.plan_bytes(f.src.size);
                    if o.list_only {
                        Counter::add(&s.files.copied, 1);
                        Counter::add(&s.bytes.copied, f.src.size);
                        self.rep.file_at(
                            f.class.label(),
                            f.src.size,
                            Some(f.src.mtime),
                            &join(&dir, &f.src.name),
                        );
                    } else if tx
                        .send(Job {
                            dir: dir.clone(),
                            src: f.src,
                            class: f.class,
                        })
                        .await
                        .is_err()
                    {
                        return Vec::new();
                    }
                } else {
                    Counter::add(&s.files.skipped, 1);
                    Counter::add(&s.bytes.skipped, f.src.size);
                    let rel = join(&dir, &f.src.name);
                    if self.rep.events().wanted() {
                        self.rep.events().emit(Event::Skip {
                            path: rel.clone(),
                            size: f.src.size,
                            reason: f.class.label().to_string(),
                        });
                    }
                    self.rep
                        .skipped_file_at(f.class.label(), f.src.size, Some(f.src.mtime), &rel);
                }
            }
            let mut children = Vec::with_capacity(plan.subdirs.len());
            for sub in plan.subdirs {
                if self.engine.cancelled.load(Relaxed) {
                    break;
                }
                let rel = join(&dir, &sub.src.name);
                if sub.dst_exists {
                    self.known_dir(&rel);
                }
                {
                    let mut left = self.leftovers.lock().unwrap_or_else(|e| e.into_inner());
                    let special = sub.src.attributes & crate::backend::DIR_ATTRS != 0;
                    if o.dcopy.timestamps || (o.dcopy.attributes && special) {
                        left.dirs.push((rel.clone(), sub.src.clone()));
                    }
                    if o.move_dirs {
                        left.src_dirs.push(rel.clone());
                    }
                }
                children.push(PendingDir {
                    rel,
                    level: level + 1,
                    dst_exists: sub.dst_exists,
                });
            }
            children
        }
    }

    /// Counts one directory's plan and records its extras.
    fn account(&self, dir: &str, plan: &crate::plan::DirPlan) {
        let s = &self.stats;
        Counter::add(&s.dirs.total, 1);
        Counter::add(&s.dirs.skipped, plan.excluded_dirs);
        Counter::add(&s.dirs.total, plan.excluded_dirs);
        for f in plan
            .files
            .iter()
            .map(|f| &f.src)
            .chain(&plan.excluded_files)
        {
            Counter::add(&s.files.total, 1);
            Counter::add(&s.bytes.total, f.size);
        }
        for f in &plan.excluded_files {
            Counter::add(&s.files.skipped, 1);
            Counter::add(&s.bytes.skipped, f.size);
        }
        for l in &plan.links {
            Counter::add(&s.files.total, 1);
            Counter::add(&s.files.skipped, 1);
            let kind = LinkKind::of(l).unwrap_or(LinkKind::NotFollowed);
            self.rep.file(kind.label(), 0, &join(dir, &l.name));
        }
        for b in &plan.blocked {
            let rel = join(dir, &b.name);
            let row = if b.is_dir { &s.dirs } else { &s.files };
            Counter::add(&row.total, 1);
            Counter::add(&row.failed, 1);
            if !b.is_dir {
                Counter::add(&s.bytes.total, b.size);
                Counter::add(&s.bytes.failed, b.size);
            }
            let message = "destination path is a symlink, not followed";
            self.rep.error(&format!("copy {rel}: ELOOP: {message}"));
            self.rep.events().emit(Event::Failure {
                path: rel.clone(),
                operation: "copy".into(),
                code: "ELOOP".into(),
                message: message.into(),
            });
            s.fail(FailureRecord {
                path: rel,
                operation: "copy".into(),
                code: "ELOOP".into(),
                message: message.into(),
            });
        }
        for c in &plan.collisions {
            let rel = join(dir, &c.src.name);
            let row = if c.src.is_dir { &s.dirs } else { &s.files };
            Counter::add(&row.total, 1);
            Counter::add(&row.failed, 1);
            if !c.src.is_dir {
                Counter::add(&s.bytes.total, c.src.size);
                Counter::add(&s.bytes.failed, c.src.size);
            }
            let message = format!(
                "name collision: differs only in case from {}, and the destination does not \
                 tell case apart (one would overwrite the other); not copied",
                c.with.join(", ")
            );
            self.rep
                .error(&format!("copy {rel}: NAME_COLLISION: {message}"));
            s.fail(FailureRecord {
                path: rel,
                operation: "copy".into(),
                code: "NAME_COLLISION".into(),
                message,
            });
        }
        for m in &plan.mismatches {
            let rel = join(dir, &m.name);
            if m.is_dir {
                Counter::add(&s.dirs.total, 1);
                Counter::add(&s.dirs.mismatch, 1);
            } else {
                Counter::add(&s.files.total, 1);
                Counter::add(&s.files.mismatch, 1);
                Counter::add(&s.bytes.total, m.size);
                Counter::add(&s.bytes.mismatch, m.size);
            }
            self.rep
                .file_at(Class::Mismatch.label(), m.size, Some(m.mtime), &rel);
        }
        if plan.extras.is_empty() {
            return;
        }
        let mut left = self.leftovers.lock().unwrap_or_else(|e| e.into_inner());
        for e in &plan.extras {
            let rel = join(dir, &e.name);
            if e.is_dir {
                Counter::add(&s.dirs.extras, 1);
                self.rep.dir("*EXTRA Dir", 0, &rel);
            } else {
                Counter::add(&s.files.extras, 1);
                Counter::add(&s.bytes.extras, e.size);
                self.rep
                    .file_at(Class::Extra.label(), e.size, Some(e.mtime), &rel);
            }
            left.extras.push(rel, e.clone());
        }
    }

    fn list_failed(&self, dir: &str, op: &str, e: &OpError) {
        self.errors.store(true, Relaxed);
        Counter::add(&self.stats.dirs.failed, 1);
        self.engine
            .failed(if dir.is_empty() { "." } else { dir }, op, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalFs;
    use crate::cli::args::Args;
    use crate::cli::Options;
    use clap::Parser as _;

    /// 50,000 files in 500 directories copied local → local: the scanner
    /// never holds more than its walkers' listings, whatever the number of
    /// files (the engine, copying, is much slower than the listings, so
    /// without the bound every directory would be listed and waiting).
    #[test]
    fn a_big_tree_is_scanned_with_bounded_occupancy() {
        const DIRS: usize = 500;
        const PER_DIR: usize = 100;
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        for d in 0..DIRS {
            let dir = src
                .join(format!("t{}", d / 100))
                .join(format!("d{:02}", d % 100));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..PER_DIR {
                std::fs::File::create(dir.join(format!("f{f:03}"))).unwrap();
            }
        }
        let argv = [
            "smbcp",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--subdirs",
            "-q",
        ];
        // The configs as a run without flags gets them.
        let opts = Options::try_from(Args::parse_from(argv)).unwrap();
        let stats = Arc::new(Stats::default());
        let rep = Arc::new(Reporter::new(&opts.report_config(), stats.clone()).unwrap());
        let (s, d) = (
            Backend::Local(LocalFs::new(src.clone(), false)),
            Backend::Local(LocalFs::new(dst.clone(), false)),
        );
        std::fs::create_dir(&dst).unwrap();
        let engine = Arc::new(Engine::new(
            s.clone(),
            d.clone(),
            opts.engine_config(),
            stats.clone(),
            rep.clone(),
            std::time::Duration::ZERO,
        ));
        let scanner = Arc::new(Scanner::new(
            s,
            d,
            opts.scan_config(),
            stats.clone(),
            rep,
            engine,
        ));
        scanner.known_dir("");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scanner.run(true));

        let files = stats.files.row();
        assert_eq!((files.copied, files.failed), ((DIRS * PER_DIR) as u64, 0));
        let copied = walkdir(&dst);
        assert_eq!(copied, DIRS * PER_DIR);
        let g = &scanner.gauges;
        assert!(
            g.dirs_held.high_water() <= LISTINGS_IN_FLIGHT,
            "{} directories held at once",
            g.dirs_held.high_water()
        );
        // The destination is empty: a directory's listing is its files (or
        // its 100 subdirectories at the top).
        assert!(
            g.entries_held.high_water() <= LISTINGS_IN_FLIGHT * PER_DIR,
            "{} entries held at once",
            g.entries_held.high_water()
        );
        assert!(g.entries_held.high_water() >= PER_DIR);
        // Names waiting (tens of bytes each) are directories, never files.
        assert!(
            g.dirs_queued.high_water() <= DIRS,
            "{} directories queued at once",
            g.dirs_queued.high_water()
        );
        assert_eq!(g.entries_held.now.load(Relaxed), 0);
    }

    fn walkdir(p: &std::path::Path) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                n += walkdir(&e.path());
            } else {
                n += 1;
            }
        }
        n
    }
}
