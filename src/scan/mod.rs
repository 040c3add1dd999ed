//! The scanner: source and destination trees walked in parallel, one task per
//! directory (a semaphore keeps many listings — QUERY_DIRECTORY on SMB, a
//! parallel walk locally — in flight), each directory pair diffed by
//! [`crate::plan::plan_dir`] and its copy jobs pushed into a bounded channel.
//! Copying starts with the first directory, and memory holds only the
//! directories being listed plus the channel, not the tree.
//!
//! Local symlinks are reported here: a source link skipped (a file-list
//! line), a destination link in the way of a source entry refused (a
//! failure, which also keeps `--purge` from running).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, OnceCell, Semaphore};

use crate::backend::local::LinkKind;
use crate::backend::{Backend, Entry, OpError};
use crate::cli::Options;
use crate::copy::{Engine, Job};
use crate::events::Event;
use crate::plan::{join, plan_dir, Class};
use crate::report::{Counter, FailureRecord, Reporter, Stats};

/// Concurrent directory listings.
const LISTINGS_IN_FLIGHT: usize = 32;
/// Jobs queued between the scanner and the workers.
pub const JOB_QUEUE: usize = 4096;

/// Work left for after the copy pass.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Destination-only entries (relative path, entry), for `--purge`.
    pub extras: Vec<(String, Entry)>,
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
    opts: Arc<Options>,
    stats: Arc<Stats>,
    rep: Arc<Reporter>,
    engine: Arc<Engine>,
    listings: Semaphore,
    made: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
    /// A listing failed: deletes are unsafe.
    pub errors: AtomicBool,
    /// Collected for the later phases.
    pub leftovers: Mutex<Leftovers>,
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Scanner {
    /// A scanner feeding `engine`.
    pub fn new(
        src: Backend,
        dst: Backend,
        opts: Arc<Options>,
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
            listings: Semaphore::new(LISTINGS_IN_FLIGHT),
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
    pub async fn run(self: &Arc<Self>, dst_root_exists: bool) {
        let (tx, rx) = mpsc::channel::<Job>(JOB_QUEUE);
        let me = self.clone();
        let root = tokio::spawn(async move {
            me.clone().walk(String::new(), 1, dst_root_exists, tx).await;
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

    fn walk(
        self: Arc<Self>,
        dir: String,
        level: u32,
        dst_exists: bool,
        tx: mpsc::Sender<Job>,
    ) -> BoxFut<'static, ()> {
        Box::pin(async move {
            if self.engine.cancelled.load(Relaxed) {
                return;
            }
            let listed = {
                let _permit = self.listings.acquire().await;
                let policy = crate::copy::retry::RetryPolicy {
                    retries: self.opts.retries,
                    wait: self.opts.wait,
                };
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
            let (mut src, mut dst) = match listed {
                (Ok(s), Ok(d)) => (s, d),
                (Err(e), _) => return self.list_failed(&dir, "list source", &e),
                (_, Err(e)) => return self.list_failed(&dir, "list destination", &e),
            };
            if dir.is_empty() {
                // The run's own temporary directory (an SMB destination's):
                // never copied, never purged while files are in it.
                let ours = |e: &Entry| e.name == crate::copy::temp::TEMP_DIR;
                src.retain(|e| !ours(e));
                dst.retain(|e| !ours(e));
            }
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
                        return;
                    }
                }
            } else {
                Counter::add(&s.dirs.skipped, 1);
            }
            for f in plan.files {
                if f.copy {
                    self.rep.plan_bytes(f.src.size);
                    if o.list_only {
                        Counter::add(&s.files.copied, 1);
                        Counter::add(&s.bytes.copied, f.src.size);
                        self.rep
                            .file(f.class.label(), f.src.size, &join(&dir, &f.src.name));
                    } else if tx
                        .send(Job {
                            dir: dir.clone(),
                            src: f.src,
                            class: f.class,
                        })
                        .await
                        .is_err()
                    {
                        return;
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
                    self.rep.skipped_file(f.class.label(), f.src.size, &rel);
                }
            }
            let mut children = Vec::new();
            for sub in plan.subdirs {
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
                children.push(tokio::spawn(self.clone().walk(
                    rel,
                    level + 1,
                    sub.dst_exists,
                    tx.clone(),
                )));
            }
            drop(tx);
            for c in children {
                let _ = c.await;
            }
        })
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
            self.rep.file(Class::Mismatch.label(), m.size, &rel);
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
                self.rep.file(Class::Extra.label(), e.size, &rel);
            }
            left.extras.push((rel, e.clone()));
        }
    }

    fn list_failed(&self, dir: &str, op: &str, e: &OpError) {
        self.errors.store(true, Relaxed);
        Counter::add(&self.stats.dirs.failed, 1);
        self.engine
            .failed(if dir.is_empty() { "." } else { dir }, op, e);
    }
}
