//! Reporting: per-file and per-directory lines as robocopy prints them, error
//! lines, the progress display (only when stderr is a terminal), the log file
//! (`--log`, `--log-append`, `--tee`) and the closing summary / JSON.

use std::fs;
use std::io::{self, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub mod escape;
pub mod progress;
pub mod stats;
pub mod summary;

pub use stats::{Counter, FailureRecord, Stats};
pub use summary::Summary;

/// The reporter's settings for one run (built by `Options::report_config`).
#[derive(Debug, Clone, Default)]
pub struct ReportConfig {
    /// Log file and whether to append.
    pub log: Option<(PathBuf, bool)>,
    /// Also print to stdout when logging.
    pub tee: bool,
    /// List files.
    pub file_list: bool,
    /// List directories.
    pub dir_list: bool,
    /// Allow a progress display (still only on a terminal).
    pub progress: bool,
    /// Exact byte counts instead of human sizes.
    pub bytes: bool,
    /// No job header.
    pub no_header: bool,
    /// No closing summary table.
    pub no_summary: bool,
    /// No class column in the lists.
    pub no_class: bool,
    /// No size column in the lists.
    pub no_size: bool,
    /// A last-write-time column in the file list.
    pub list_times: bool,
    /// The SOURCE and DEST roots the listed relative paths are joined to
    /// (`None`: relative paths).
    pub full_paths: Option<(String, String)>,
    /// JSON report target: `None`, a file, or stdout (`-`).
    pub json: Option<JsonTarget>,
    /// NDJSON event stream target.
    pub events: Option<JsonTarget>,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

/// Where a JSON document or stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTarget {
    /// Standard output (human output then goes to stderr).
    Stdout,
    /// A file.
    File(PathBuf),
}

/// Where the human-readable report goes.
pub struct Reporter {
    opts: ReportConfig,
    log: Mutex<Option<fs::File>>,
    /// Human output to stdout (false when logging without `--tee`, or with `--json -`... to stderr).
    to_stdout: bool,
    /// `--json -` moves human output to stderr.
    human_to_stderr: bool,
    progress: Option<ProgressBar>,
    stats: Arc<Stats>,
    /// Human lines waiting for stdout when it is not a terminal: one write per
    /// 32 KiB or 200 ms instead of one per file (a syscall, and a wake-up of
    /// whatever reads the pipe, per file of a 10,000-file copy).
    pending: Option<Mutex<Pending>>,
    /// Still writing the job header: with `--no-header`, the lines written
    /// before the first file, directory, error or progress tick are dropped
    /// (the run writes its header through [`Self::line`] first thing).
    in_header: AtomicBool,
    /// Bytes and files planned for copying so far (the progress totals).
    planned_bytes: AtomicU64,
    planned_files: AtomicU64,
    /// Set by [`Self::scan_finished`]: the totals are final.
    scan_done: AtomicBool,
    /// The run's event stream (`--events` and in-process subscribers).
    events: Arc<crate::events::Events>,
}

/// Buffered stdout lines.
struct Pending {
    buf: Vec<u8>,
    since: Instant,
}

/// Flush buffered stdout at this size.
const PENDING_BYTES: usize = 32 * 1024;
/// ... or when the oldest buffered line is this old.
const PENDING_AGE: Duration = Duration::from_millis(200);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Opens the log file and sets up progress.
    pub fn new(opts: &ReportConfig, stats: Arc<Stats>) -> anyhow::Result<Self> {
        Self::with_events(opts, stats, Arc::default())
    }

    /// Like [`Self::new`], emitting into `events`.
    pub fn with_events(
        opts: &ReportConfig,
        stats: Arc<Stats>,
        events: Arc<crate::events::Events>,
    ) -> anyhow::Result<Self> {
        let log = match &opts.log {
            Some((path, append)) => Some(
                fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(*append)
                    .truncate(!*append)
                    .open(path)
                    .with_context(|| format!("cannot open log file {}", path.display()))?,
            ),
            None => None,
        };
        let to_stdout = log.is_none() || opts.tee;
        let human_to_stderr =
            opts.json == Some(JsonTarget::Stdout) || opts.events == Some(JsonTarget::Stdout);
        let progress = (opts.progress && io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
            // The ticker fits the message to the width; no padding that could wrap.
            let style = ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            pb.set_style(style);
            pb.set_message(progress::line(&progress::Snapshot::default(), 60));
            pb
        });
        let pending = (to_stdout && !human_to_stderr && !io::stdout().is_terminal()).then(|| {
            Mutex::new(Pending {
                buf: Vec::new(),
                since: Instant::now(),
            })
        });
        Ok(Self {
            opts: opts.clone(),
            log: Mutex::new(log),
            to_stdout,
            human_to_stderr,
            progress,
            stats,
            pending,
            in_header: AtomicBool::new(true),
            planned_bytes: AtomicU64::new(0),
            planned_files: AtomicU64::new(0),
            scan_done: AtomicBool::new(false),
            events,
        })
    }

    /// The run's event stream.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// Writes out buffered stdout lines.
    pub fn flush(&self) {
        if let Some(p) = &self.pending {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            write_out(&mut p.buf);
        }
    }

    /// Ends the job header: lines from now on are never taken for it.
    pub fn end_header(&self) {
        self.in_header.store(false, Relaxed);
    }

    /// Writes one line of the human report (stdout and/or log), control
    /// characters escaped ([`escape::escape`]).
    pub fn line(&self, text: &str) {
        if self.opts.no_header && self.in_header.load(Relaxed) {
            return;
        }
        let escaped = escape::escape(text);
        let text = &*escaped;
        if let Some(p) = &self.pending {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            if p.buf.is_empty() {
                p.since = Instant::now();
            }
            p.buf.extend_from_slice(text.as_bytes());
            p.buf.push(b'\n');
            if p.buf.len() >= PENDING_BYTES || p.since.elapsed() >= PENDING_AGE {
                write_out(&mut p.buf);
            }
        } else if self.to_stdout {
            let emit = || {
                if self.human_to_stderr {
                    eprintln!("{text}");
                } else {
                    let mut out = io::stdout().lock();
                    let _ = writeln!(out, "{text}");
                }
            };
            match &self.progress {
                Some(pb) => pb.suspend(emit),
                None => emit(),
            }
        }
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "{text}");
        }
    }

    /// A file line: `    New File        1.00 MiB  dir/name`; `--no-class`
    /// and `--no-size` drop the first two columns, `--full-path` prefixes the root.
    pub fn file(&self, label: &str, size: u64, path: &str) {
        self.file_at(label, size, None, path);
    }

    /// A file line with the file's last write time, shown with `--list-times`
    /// (robocopy `/TS`) as `2024/01/31 12:00:00` (UTC) before the path.
    pub fn file_at(&self, label: &str, size: u64, mtime: Option<smb_core::FileTime>, path: &str) {
        self.end_header();
        if self.opts.file_list {
            let size = summary::size(size, self.opts.bytes);
            let stamp = mtime.filter(|_| self.opts.list_times).map(|t| {
                summary::utc(t.to_system_time())
                    .trim_end_matches(" UTC")
                    .replace('-', "/")
            });
            self.line(&self.list_line_at(label, &size, stamp.as_deref(), path, false));
        }
    }

    /// One line of the file or directory list (a directory's path ends with a separator).
    fn list_line(&self, label: &str, count: &str, path: &str, is_dir: bool) -> String {
        self.list_line_at(label, count, None, path, is_dir)
    }

    /// [`Self::list_line`] with a time column (`--list-times`) before the path.
    fn list_line_at(
        &self,
        label: &str,
        count: &str,
        stamp: Option<&str>,
        path: &str,
        is_dir: bool,
    ) -> String {
        let mut s = String::new();
        if !self.opts.no_class {
            s.push_str(&format!("{label:>16} "));
        }
        if !self.opts.no_size {
            s.push_str(&format!("{count:>11}  "));
        } else if !s.is_empty() {
            s.push(' ');
        }
        if let Some(t) = stamp {
            s.push_str(t);
            s.push_str("  ");
        }
        let (path, sep) = match &self.opts.full_paths {
            // Extras live in the destination; everything else is named by its source.
            Some((src, dst)) => {
                let root = if label.starts_with("*EXTRA") {
                    dst
                } else {
                    src
                };
                (join_root(root, path), separator(root))
            }
            None if path.is_empty() => (".".to_string(), '/'),
            None => (path.to_string(), '/'),
        };
        s.push_str(&path);
        if is_dir && !path.ends_with(sep) {
            s.push(sep);
        }
        s
    }

    /// A skipped file, only listed with `-v`.
    pub fn skipped_file(&self, label: &str, size: u64, path: &str) {
        self.skipped_file_at(label, size, None, path);
    }

    /// A skipped file with its last write time (`--list-times`), only listed with `-v`.
    pub fn skipped_file_at(
        &self,
        label: &str,
        size: u64,
        mtime: Option<smb_core::FileTime>,
        path: &str,
    ) {
        if self.opts.verbosity > 0 {
            self.file_at(label, size, mtime, path);
        }
    }

    /// A directory line: `     New Dir       3  dir/`.
    pub fn dir(&self, label: &str, files: u64, path: &str) {
        self.end_header();
        if self.opts.dir_list {
            self.line(&self.list_line(label, &files.to_string(), path, true));
        }
    }

    /// An error: always on stderr (one line, control characters escaped),
    /// and in the log.
    pub fn error(&self, text: &str) {
        self.end_header();
        let escaped = escape::escape(text);
        let text = &*escaped;
        // Lines before the error come out before it (`2>&1` keeps the order).
        self.flush();
        let emit = || eprintln!("smbcp: error: {text}");
        match &self.progress {
            Some(pb) => pb.suspend(emit),
            None => emit(),
        }
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "ERROR: {text}");
        }
    }

    /// Writes one line to the log file only (a fatal error, which `main`
    /// prints on stderr itself), and flushes it.
    pub fn log_only(&self, text: &str) {
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "{}", escape::escape(text));
            let _ = f.flush();
        }
    }

    /// Writes out buffered stdout lines and flushes the log file (before an
    /// exit that skips the destructors).
    pub fn flush_log(&self) {
        self.flush();
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.flush();
        }
    }

    /// Adds one planned file of `n` bytes to the progress totals.
    pub fn plan_bytes(&self, n: u64) {
        self.planned_bytes.fetch_add(n, Relaxed);
        self.planned_files.fetch_add(1, Relaxed);
    }

    /// The whole source is listed: the progress totals are final, so the line
    /// shows a percentage and an ETA (before, it says the totals are so far).
    pub fn scan_finished(&self) {
        self.scan_done.store(true, Relaxed);
    }

    /// Starts a ticker refreshing the progress line four times a second.
    pub fn spawn_ticker(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        // The run starts the ticker right after its header.
        self.end_header();
        let pb = self.progress.clone()?;
        let me = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            let mut rate = 0.0f64;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if pb.is_finished() {
                    // Cleared (Ctrl-C, the end): nothing is drawn again.
                    break;
                }
                let moved = me.stats.moved();
                let now = Instant::now();
                let dt = now.duration_since(last.0).as_secs_f64();
                if dt > 0.0 {
                    // A light moving average keeps the figure readable.
                    let inst = moved.saturating_sub(last.1) as f64 / dt;
                    rate = if rate == 0.0 {
                        inst
                    } else {
                        0.7 * rate + 0.3 * inst
                    };
                }
                last = (now, moved);
                let files = me.stats.files.row();
                let snap = progress::Snapshot {
                    moved,
                    total: me.planned_bytes.load(Relaxed),
                    files_done: files.copied + files.failed,
                    files_total: me.planned_files.load(Relaxed),
                    rate,
                    scan_done: me.scan_done.load(Relaxed),
                };
                // Two columns for the spinner, one spare: a line that touches
                // the last column wraps on some terminals.
                let width = console::Term::stderr()
                    .size_checked()
                    .map_or(80, |(_, cols)| usize::from(cols));
                pb.set_message(progress::line(&snap, width.saturating_sub(3)));
                pb.tick();
            }
        }))
    }

    /// Clears the progress display.
    pub fn finish_progress(&self) {
        if let Some(pb) = &self.progress {
            pb.finish_and_clear();
        }
    }

    /// Prints the summary table (unless `-q`) and writes the JSON report.
    pub fn finish(&self, s: &Summary) -> anyhow::Result<()> {
        self.finish_progress();
        self.end_header();
        if self.opts.verbosity >= 0 && !self.opts.no_summary {
            self.line("");
            for l in s.table(self.opts.bytes).lines() {
                self.line(l);
            }
        }
        self.flush();
        if let Some(target) = &self.opts.json {
            write_json(target, &s.json())?;
        }
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            f.flush().context("writing the log file")?;
        }
        Ok(())
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // A run that stops early still leaves a clean terminal.
        self.finish_progress();
        self.flush();
    }
}

/// `root` joined with a `/`-separated relative path, in the root's own
/// spelling: `\\` separators under a UNC root, `/` otherwise.
fn join_root(root: &str, rel: &str) -> String {
    let sep = separator(root);
    let trimmed = root.trim_end_matches(['/', '\\']);
    if rel.is_empty() {
        return root.to_string();
    }
    let root = trimmed;
    let rel = if sep == '/' {
        rel.to_string()
    } else {
        rel.replace('/', "\\")
    };
    format!("{root}{sep}{rel}")
}

/// The path separator of a root as [`join_root`] writes it.
fn separator(root: &str) -> char {
    if root.starts_with("\\\\") {
        '\\'
    } else {
        '/'
    }
}

/// Writes `buf` to stdout and empties it.
fn write_out(buf: &mut Vec<u8>) {
    if !buf.is_empty() {
        let mut out = io::stdout().lock();
        let _ = out.write_all(buf);
        let _ = out.flush();
        buf.clear();
    }
}

/// Writes a JSON document to its `--json` target.
pub fn write_json(target: &JsonTarget, text: &str) -> anyhow::Result<()> {
    match target {
        JsonTarget::Stdout => println!("{text}"),
        JsonTarget::File(p) => {
            fs::write(p, format!("{text}\n"))
                .with_context(|| format!("cannot write JSON report {}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_receives_lines_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, "old\n").unwrap();
        let opts = ReportConfig {
            log: Some((log.clone(), true)),
            file_list: true,
            dir_list: false,
            ..ReportConfig::default()
        };
        let r = Reporter::new(&opts, Arc::new(Stats::default())).unwrap();
        r.file("New File", 2048, "a/b");
        r.dir("New Dir", 1, "a");
        r.error("boom");
        drop(r);
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("old\n"), "{text}");
        assert!(
            text.contains("New File") && text.contains("2.00 KiB") && text.contains("a/b"),
            "{text}"
        );
        assert!(!text.contains("New Dir"), "--no-dir-list: {text}");
        assert!(text.contains("ERROR: boom"), "{text}");
    }

    /// Runs `f` on a reporter logging to a fresh file; returns the log.
    fn logged(opts: ReportConfig, f: impl FnOnce(&Reporter)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let opts = ReportConfig {
            log: Some((log.clone(), false)),
            ..opts
        };
        let r = Reporter::new(&opts, Arc::new(Stats::default())).unwrap();
        f(&r);
        drop(r);
        fs::read_to_string(&log).unwrap()
    }

    fn lists() -> ReportConfig {
        ReportConfig {
            file_list: true,
            dir_list: true,
            ..ReportConfig::default()
        }
    }

    #[test]
    fn no_header_drops_the_lines_before_the_first_item_only() {
        let run = |no_header| {
            logged(
                ReportConfig {
                    no_header,
                    ..lists()
                },
                |r| {
                    r.line(" Started : now");
                    r.line("");
                    r.file("New File", 1, "f");
                    r.line("after");
                },
            )
        };
        let text = run(true);
        assert!(
            !text.contains("Started") && text.starts_with("        New File"),
            "{text}"
        );
        assert!(text.contains("after"), "{text}");
        assert!(run(false).starts_with(" Started : now\n"));
    }

    #[test]
    fn no_class_no_size_and_full_paths() {
        let text = |opts: ReportConfig| {
            logged(opts, |r| {
                r.file("New File", 2048, "a/b.txt");
                r.dir("New Dir", 3, "a");
                r.dir("New Dir", 0, "");
                r.file("*EXTRA File", 1, "x");
            })
        };
        let plain = text(ReportConfig {
            no_class: true,
            no_size: true,
            ..lists()
        });
        assert_eq!(plain, "a/b.txt\na/\n./\nx\n");
        let no_size = text(ReportConfig {
            no_size: true,
            ..lists()
        });
        assert!(
            no_size.starts_with("        New File  a/b.txt\n"),
            "{no_size:?}"
        );
        let no_class = text(ReportConfig {
            no_class: true,
            ..lists()
        });
        assert!(
            no_class.starts_with("   2.00 KiB  a/b.txt\n"),
            "{no_class:?}"
        );
        let full = text(ReportConfig {
            no_class: true,
            no_size: true,
            full_paths: Some(("/src".into(), "\\\\srv\\share\\d".into())),
            ..lists()
        });
        assert_eq!(full, "/src/a/b.txt\n/src/a/\n/src/\n\\\\srv\\share\\d\\x\n");
    }

    #[test]
    fn join_root_keeps_the_roots_spelling() {
        assert_eq!(join_root("/data/", "a/b"), "/data/a/b");
        assert_eq!(join_root("\\\\srv\\sh", "a/b"), "\\\\srv\\sh\\a\\b");
        assert_eq!(
            join_root("smb://srv:4450/sh", "a/b"),
            "smb://srv:4450/sh/a/b"
        );
        assert_eq!(join_root("/", "a"), "/a");
        assert_eq!(join_root("/", ""), "/");
    }

    #[test]
    fn no_summary_drops_the_table() {
        let s = summary::tests::sample();
        let with = logged(lists(), |r| r.finish(&s).unwrap());
        assert!(with.contains("Files :"), "{with}");
        let without = logged(
            ReportConfig {
                no_summary: true,
                ..lists()
            },
            |r| r.finish(&s).unwrap(),
        );
        assert!(!without.contains("Files :"), "{without}");
    }
}
