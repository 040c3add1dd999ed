//! One run, start to end: resolve credentials, open both ends (fatal errors
//! here touch nothing), scan + copy, then set directory times, delete extras
//! (only after a clean copy pass, within `--max-delete`), remove moved source
//! directories, and report.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use smb_core::Credentials;

use crate::backend::smb::Connector;
use crate::backend::{times_for, Backend, Entry, LocalFs, OpError};
use crate::cli::Options;
use crate::copy::Engine;
use crate::events::{Event, Events};
use crate::exit::{Failure, Outcome};
use crate::location::Location;
use crate::report::summary::{ReconnectSummary, WindowStats};
use crate::report::{Counter, JsonTarget, Reporter, Stats, Summary};
use crate::scan::{Leftovers, Scanner};

/// Runs the copy described by `opts` and returns the exit code. A fatal
/// error also goes to the log file (`--log`, `--log-append`), which is opened
/// before anything else can fail.
pub async fn run(opts: Options) -> Result<u8, Failure> {
    let events = Arc::new(open_events(opts.output.events.as_ref()).map_err(Failure::Usage)?);
    let stats = Arc::new(Stats::default());
    let rep = Arc::new(
        Reporter::with_events(&opts.report_config(), stats.clone(), events.clone())
            .map_err(Failure::Usage)?,
    );
    let r = run_with(opts, events, stats, rep.clone()).await;
    if let Err(f) = &r {
        rep.log_only(&format!("ERROR: {}", crate::exit::message(f.error())));
    }
    r
}

async fn run_with(
    opts: Options,
    events: Arc<Events>,
    stats: Arc<Stats>,
    rep: Arc<Reporter>,
) -> Result<u8, Failure> {
    let started = (Instant::now(), SystemTime::now());
    let mut opts = opts;
    check_nesting(&opts).map_err(Failure::Usage)?;
    let creds = credentials(&opts).map_err(Failure::Usage)?;
    events.emit(Event::Plan {
        source: opts.source.to_string(),
        dest: opts.dest.to_string(),
        list_only: opts.list_only,
    });
    let connector = Connector::new(opts.connector_config(), events.clone());
    let mut src = open(&opts.source, &connector, creds.as_ref(), opts.unbuffered).await?;
    let mut single_file = false;
    // The SOURCE directory's own entry, for `--dcopy` on DEST's root.
    let mut src_root = None;
    match src.stat("").await {
        Ok(e) if e.is_dir => src_root = Some(e),
        Ok(_) => {
            // A file as SOURCE: its directory is scanned for that one name.
            let (parent, name) = single_file_source(&mut opts).map_err(Failure::Usage)?;
            src = open(&parent, &connector, creds.as_ref(), opts.unbuffered).await?;
            single_file = true;
            tracing::debug!("single-file SOURCE: {name} in {parent}");
        }
        Err(e) if e.is_not_found() => {
            return Err(Failure::Fatal(anyhow!(
                "source directory {} does not exist",
                opts.source
            )))
        }
        Err(e) => {
            return Err(Failure::Fatal(
                anyhow!(e).context(format!("cannot read source {}", opts.source)),
            ))
        }
    }
    let dst = open(&opts.dest, &connector, creds.as_ref(), opts.unbuffered).await?;
    let dst_exists = match dst.stat("").await {
        Ok(e) if e.is_dir => true,
        Ok(_) => {
            let hint = if single_file {
                " (DEST is the directory to copy the SOURCE file into)"
            } else {
                ""
            };
            return Err(Failure::Fatal(anyhow!(
                "destination {} is not a directory{hint}",
                opts.dest
            )));
        }
        Err(e) if e.is_not_found() => false,
        Err(e) => {
            return Err(Failure::Fatal(
                anyhow!(e).context(format!("cannot read destination {}", opts.dest)),
            ))
        }
    };
    let opts = Arc::new(opts);
    if !dst_exists && !opts.list_only {
        dst.mkdir("").await.map_err(|e| {
            Failure::Fatal(anyhow!(e).context(format!("cannot create destination {}", opts.dest)))
        })?;
    }
    if opts.output.verbosity >= 0 {
        rep.line(&format!(
            " Started : {}",
            crate::report::summary::utc(started.1)
        ));
        rep.line(&format!("  Source : {}", opts.source));
        rep.line(&format!("    Dest : {}", opts.dest));
        if let Some(globs) = &opts.globs {
            rep.line(&format!("   Files : {globs}"));
        }
        rep.line("");
    }
    let ticker = rep.spawn_ticker();

    let (src_rtt, dst_rtt) = tokio::join!(src.round_trip(), dst.round_trip());
    let rtt = src_rtt.max(dst_rtt);
    let engine = Arc::new(Engine::new(
        src.clone(),
        dst.clone(),
        opts.engine_config(),
        stats.clone(),
        rep.clone(),
        rtt,
    ));
    let scanner = Arc::new(Scanner::new(
        src.clone(),
        dst.clone(),
        opts.scan_config(),
        stats.clone(),
        rep.clone(),
        engine.clone(),
    ));
    if dst_exists || !opts.list_only {
        scanner.known_dir("");
    }
    let interrupt = {
        let (flag, rep, mode) = (engine.cancelled.clone(), rep.clone(), opts.exit_mode);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            flag.store(true, Relaxed);
            rep.finish_progress();
            rep.events().emit(Event::Interrupted { again: false });
            rep.error(
                "interrupted: no new files or directories; removing the temporary files of \
                 unfinished copies (Ctrl-C again exits at once)",
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                rep.events().emit(Event::Interrupted { again: true });
                rep.error("interrupted again: exiting now");
                rep.flush_log();
                let failed = Outcome {
                    failures: true,
                    ..Outcome::default()
                };
                std::process::exit(i32::from(mode.code(failed)));
            }
        })
    };
    scanner.run(dst_exists).await;
    let cancelled = engine.cancelled.load(Relaxed);
    let copy_done = Instant::now();
    let mut left =
        std::mem::take(&mut *scanner.leftovers.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(root) = src_root.filter(|_| opts.dcopy.timestamps && !cancelled) {
        // DEST's root gets SOURCE's times too (last: deepest first).
        left.dirs.push((String::new(), root));
    }
    let scan_errors = scanner.errors.load(Relaxed);

    if !opts.list_only {
        dir_times(&dst, &opts, &left).await;
    }
    let refused = purge(
        &dst,
        &opts,
        &stats,
        &rep,
        &engine,
        &left,
        scan_errors || cancelled,
    )
    .await;
    if opts.move_dirs && !opts.list_only && !cancelled {
        // Deepest first; a directory still holding skipped files stays.
        let mut dirs = left.src_dirs.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for d in dirs {
            let _ = src.remove_dir(&d).await;
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    let end = Instant::now();
    let files = stats.files.row();
    let outcome = Outcome {
        copied: files.copied > 0,
        extras: files.extras > 0 || stats.dirs.row().extras > 0,
        mismatches: files.mismatch > 0 || stats.dirs.row().mismatch > 0,
        failures: files.failed > 0
            || stats.dirs.row().failed > 0
            || refused
            || cancelled
            || !stats.failures().is_empty(),
    };
    let code = opts.exit_mode.code(outcome);
    let copy_secs = copy_done.duration_since(started.0).as_secs_f64();
    let moved = stats.moved() as f64;
    let bps = if copy_secs > 0.0 {
        moved / copy_secs
    } else {
        0.0
    };
    let summary = Summary {
        version: 1,
        source: opts.source.to_string(),
        dest: opts.dest.to_string(),
        list_only: opts.list_only,
        guest: creds.as_ref().is_some_and(|c| c.guest),
        logon: connector.mechanisms().await,
        started_unix: started
            .1
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        elapsed_secs: end.duration_since(started.0).as_secs_f64(),
        copy_secs,
        delete_secs: end.duration_since(copy_done).as_secs_f64(),
        dirs: stats.dirs.row(),
        files,
        bytes: stats.bytes.row(),
        bytes_per_sec: bps,
        gbit_per_sec: bps * 8.0 / 1e9,
        window: (moved > 0.0).then(|| {
            let w = engine.window.report();
            WindowStats {
                rtt_ms: rtt.as_secs_f64() * 1e3,
                start_bytes: w.start_bytes,
                peak_bytes: w.peak_bytes,
                final_bytes: w.final_bytes,
                zero_copy: engine.zero_copy(),
                server_copy: engine.server_side(),
            }
        }),
        retries: stats.retries.load(Relaxed),
        bytes_transferred: stats.moved(),
        bytes_resumed: stats.bytes_resumed.load(Relaxed),
        verified: opts.verify.then(|| crate::report::summary::Verified {
            files: stats.verified_files.load(Relaxed),
            bytes: stats.verified_bytes.load(Relaxed),
        }),
        reconnects: {
            let s = connector.reconnect_stats();
            let (handles_reclaimed, handles_reopened) = connector.handle_stats().await;
            ReconnectSummary {
                count: s.reconnects.load(Relaxed),
                seconds: s.waited_ms.load(Relaxed) as f64 / 1e3,
                handles_reclaimed,
                handles_reopened,
            }
        },
        exit_code: code,
        failures: stats.failures(),
    };
    events.emit(Event::Summary {
        exit_code: code,
        files_copied: summary.files.copied,
        files_failed: summary.files.failed,
        bytes_copied: summary.bytes.copied,
        retries: summary.retries,
        reconnects: summary.reconnects.count,
    });
    rep.finish(&summary).map_err(Failure::Fatal)?;
    // Until here a second Ctrl-C still exits at once.
    interrupt.abort();
    Ok(code)
}

/// Turns a SOURCE that is a file into its directory with a filter on its
/// name (robocopy `robocopy DIR DEST NAME`), and returns both. Options that
/// only make sense for a directory are refused.
fn single_file_source(opts: &mut Options) -> anyhow::Result<(Location, String)> {
    let Some((parent, name)) = opts.source.split_file() else {
        anyhow::bail!("source {} is not a directory", opts.source);
    };
    if let Some(g) = &opts.globs {
        anyhow::bail!(
            "SOURCE {} is a file: FILE_GLOB {g:?} needs a directory SOURCE \
             (give the directory, then the pattern)",
            opts.source
        );
    }
    if opts.purge || opts.move_dirs {
        anyhow::bail!(
            "SOURCE {} is a file: --mirror, --purge and --move-all need a directory SOURCE",
            opts.source
        );
    }
    opts.filter.only = Some((name.clone(), opts.source.is_smb()));
    opts.subdirs = false;
    opts.empty_dirs = false;
    Ok((parent, name))
}

/// The `--events` writer: stdout, or a new file.
fn open_events(target: Option<&JsonTarget>) -> anyhow::Result<Events> {
    let out: Option<Box<dyn std::io::Write + Send>> = match target {
        None => None,
        Some(JsonTarget::Stdout) => Some(Box::new(std::io::stdout())),
        Some(JsonTarget::File(p)) => {
            Some(Box::new(std::fs::File::create(p).with_context(|| {
                format!("cannot create events file {}", p.display())
            })?))
        }
    };
    Ok(Events::new(out))
}

/// Refuses a local DEST equal to SOURCE, or inside it with `--subdirs` (the
/// copy would copy itself).
fn check_nesting(opts: &Options) -> anyhow::Result<()> {
    if let (Location::Smb(s), Location::Smb(d)) = (&opts.source, &opts.dest) {
        let same_share = s.server.eq_ignore_ascii_case(&d.server)
            && s.port == d.port
            && s.share.eq_ignore_ascii_case(&d.share);
        let (sp, dp) = (s.path.to_lowercase(), d.path.to_lowercase());
        if same_share && sp == dp {
            anyhow::bail!("SOURCE and DEST are the same directory");
        }
        if same_share && opts.subdirs && (sp.is_empty() || dp.starts_with(&format!("{sp}\\"))) {
            anyhow::bail!(
                "DEST {} is inside SOURCE {}: the copy would copy itself",
                opts.dest,
                opts.source
            );
        }
        return Ok(());
    }
    let (Location::Local(src), Location::Local(dst)) = (&opts.source, &opts.dest) else {
        return Ok(());
    };
    let Ok(src) = src.canonicalize() else {
        return Ok(());
    };
    // DEST may not exist yet: resolve its deepest existing ancestor.
    let mut rest = Vec::new();
    let mut cur = dst.as_path();
    let dst = loop {
        if let Ok(c) = cur.canonicalize() {
            break rest
                .iter()
                .rev()
                .fold(c, |p: std::path::PathBuf, n| p.join(n));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = if parent.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    parent
                };
            }
            _ => return Ok(()),
        }
    };
    if dst == src {
        anyhow::bail!("SOURCE and DEST are the same directory");
    }
    if opts.subdirs && dst.starts_with(&src) {
        anyhow::bail!(
            "DEST {} is inside SOURCE {}: the copy would copy itself",
            dst.display(),
            src.display()
        );
    }
    Ok(())
}

/// Credentials, when either end is SMB.
fn credentials(opts: &Options) -> anyhow::Result<Option<Credentials>> {
    let smb: Vec<_> = [&opts.source, &opts.dest]
        .into_iter()
        .filter_map(|l| match l {
            Location::Smb(s) => Some(s),
            Location::Local(_) => None,
        })
        .collect();
    let Some(first) = smb.first() else {
        return Ok(None);
    };
    let url_user = smb
        .iter()
        .find_map(|s| s.user.clone().map(|u| (u, s.domain.clone())));
    crate::creds::resolve(&opts.auth, url_user, &first.server).map(Some)
}

async fn open(
    loc: &Location,
    connector: &Connector,
    creds: Option<&Credentials>,
    unbuffered: bool,
) -> Result<Backend, Failure> {
    match loc {
        Location::Local(p) => Ok(Backend::Local(LocalFs::new(p.clone(), unbuffered))),
        Location::Smb(s) => {
            let creds = creds.ok_or_else(|| Failure::Fatal(anyhow!("no credentials")))?;
            let fs = connector.open(s, creds).await.map_err(Failure::Fatal)?;
            Ok(Backend::Smb(fs))
        }
    }
}

/// `--dcopy T/A`: directory times, deepest first so children do not disturb parents.
async fn dir_times(dst: &Backend, opts: &Options, left: &Leftovers) {
    let mut dirs: Vec<&(String, Entry)> = left.dirs.iter().collect();
    // Deepest first, the root ("") after everything at its level.
    dirs.sort_by_key(|(d, _)| std::cmp::Reverse((d.matches('/').count(), !d.is_empty())));
    for (rel, e) in dirs {
        let t = times_for(e, opts.dcopy.timestamps, false);
        let attributes = opts
            .dcopy
            .attributes
            .then_some((e.attributes & crate::backend::DIR_ATTRS) | crate::backend::ATTR_DIRECTORY);
        let t = smb_core::FileTimes { attributes, ..t };
        if let Err(e) = dst.set_times(rel, t).await {
            if !e.is_not_found() {
                tracing::warn!("setting times on {rel}: {e}");
            }
        }
    }
}

/// Deletes extras after a clean copy pass. Returns true when deletes were refused.
async fn purge(
    dst: &Backend,
    opts: &Options,
    stats: &Stats,
    rep: &Reporter,
    engine: &Engine,
    left: &Leftovers,
    scan_errors: bool,
) -> bool {
    if !opts.purge || left.extras.is_empty() {
        return false;
    }
    let n = left.extras.len() as u64;
    if let Some(max) = opts.max_delete {
        if n > max {
            rep.error(&format!(
                "refusing to delete {n} extra items (more than --max-delete {max}); nothing was deleted"
            ));
            return true;
        }
    }
    if opts.list_only {
        return false;
    }
    let failed = stats.files.row().failed + stats.dirs.row().failed;
    if failed > 0 || scan_errors {
        rep.error("the copy pass had failures: extra items were not deleted");
        return true;
    }
    if let Some(err) = &left.extras.error {
        rep.error(&format!("{err}: extra items were not deleted"));
        return true;
    }
    for item in left.extras.iter() {
        let (rel, e) = match item {
            Ok((rel, e)) => (rel, e),
            Err(err) => {
                rep.error(&format!(
                    "reading back the spilled extra entries: {err}; the rest were not deleted"
                ));
                return true;
            }
        };
        let rel = &rel;
        let r = if e.is_dir {
            remove_tree(dst, rel).await
        } else {
            dst.remove_file(rel).await
        };
        if r.is_ok() {
            rep.events().emit(Event::Delete {
                path: rel.clone(),
                side: "dest".into(),
            });
        }
        if let Err(err) = r {
            Counter::add(
                if e.is_dir {
                    &stats.dirs.failed
                } else {
                    &stats.files.failed
                },
                1,
            );
            engine.failed(rel, "delete", &err);
        }
    }
    false
}

/// Deletes a directory and everything in it.
async fn remove_tree(dst: &Backend, rel: &str) -> Result<(), OpError> {
    let mut stack = vec![(rel.to_string(), false)];
    while let Some((dir, listed)) = stack.pop() {
        if listed {
            dst.remove_dir(&dir).await?;
            continue;
        }
        stack.push((dir.clone(), true));
        for e in dst.list_dir(&dir).await? {
            let child = format!("{dir}/{}", e.name);
            if e.is_dir {
                stack.push((child, false));
            } else {
                dst.remove_file(&child).await?;
            }
        }
    }
    Ok(())
}

/// Builds the runtime and runs.
///
/// One async thread: the network side (smb-core's reader and writer tasks,
/// the job state machines, READ verification) is mostly waiting and cheap
/// per byte, while the heavy copies run in the kernel — socket receive on
/// this thread, big-block file writes on the local I/O pool's threads. A
/// multi-thread runtime cost a futex wake-up per cross-thread hand-off:
/// 10,000 small files made 24,262 futex calls with 2 workers against 310
/// here, and client CPU fell from 0.81-0.88 s to 0.54-0.66 s; the 2 GiB
/// download from 0.78-2.07 s/GB to 0.63-0.68 (signed: 0.89-1.19 -> 0.80-1.04).
pub fn block_on(opts: Options) -> Result<u8, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_secs(5))
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Fatal)?;
    rt.block_on(run(opts))
}
