//! Every flag, end to end, local → local with the real binary (the same code
//! paths as SMB except the backend; `e2e_smb.rs` covers the SMB directions).

#[path = "e2e_util.rs"]
mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use filetime::FileTime;
use util::*;

struct Dirs {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    fs::create_dir(&src).unwrap();
    Dirs {
        _tmp: tmp,
        src,
        dst,
    }
}

/// Runs `smbcp SRC DST args... --json -`.
fn run(d: &Dirs, args: &[&str]) -> Run {
    let mut all = vec![d.src.to_str().unwrap(), d.dst.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-"]);
    smbcp(&all)
}

fn names(root: &Path) -> Vec<String> {
    snapshot(root).into_keys().collect()
}

fn set_mtime(p: &Path, secs_ago: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs_ago);
    filetime::set_file_mtime(p, FileTime::from_system_time(t)).unwrap();
}

fn files_row(r: &Run, col: &str) -> u64 {
    r.json()["files"][col].as_u64().unwrap()
}

#[test]
fn full_tree_byte_for_byte_and_second_run_is_a_no_op() {
    let d = dirs();
    standard_tree(&d.src);
    let r = run(&d, &["-e"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&d.src, &d.dst);
    assert_eq!(copied(&r), 12);
    let r = run(&d, &["-e"]);
    assert_eq!(
        (r.code, copied(&r), files_row(&r, "skipped")),
        (0, 0, 12),
        "{r:?}"
    );
    // No temporary files are left behind.
    assert!(!names(&d.dst).iter().any(|n| n.contains(".smbcp-")));
}

#[test]
fn without_subdirs_only_top_level_files() {
    let d = dirs();
    file(&d.src, "top.txt", 3);
    file(&d.src, "sub/inner.txt", 3);
    let r = run(&d, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["top.txt"]);
}

#[test]
fn subdirs_skips_empty_dirs_empty_dirs_keeps_them() {
    let d = dirs();
    file(&d.src, "a/f.txt", 3);
    fs::create_dir_all(d.src.join("empty/inner")).unwrap();
    let r = run(&d, &["--subdirs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["a", "a/f.txt"]);
    // Directories holding only directories are created (and counted) as needed.
    file(&d.src, "x/y/z/g.txt", 3);
    let r = run(&d, &["--subdirs"]);
    assert_eq!(
        names(&d.dst),
        ["a", "a/f.txt", "x", "x/y", "x/y/z", "x/y/z/g.txt"]
    );
    let dirs = &r.json()["dirs"];
    assert_eq!(
        (dirs["total"].as_u64(), dirs["copied"].as_u64()),
        (Some(7), Some(3)),
        "{r:?}"
    );
    fs::remove_dir_all(d.src.join("x")).unwrap();
    fs::remove_dir_all(d.dst.join("x")).unwrap();
    assert_eq!(run(&d, &["--empty-dirs"]).code, 0);
    assert_eq!(names(&d.dst), ["a", "a/f.txt", "empty", "empty/inner"]);
}

#[test]
fn lev_limits_depth() {
    let d = dirs();
    file(&d.src, "1.txt", 1);
    file(&d.src, "a/2.txt", 1);
    file(&d.src, "a/b/3.txt", 1);
    assert_eq!(run(&d, &["-s", "--lev", "2"]).code, 0);
    assert_eq!(names(&d.dst), ["1.txt", "a", "a/2.txt"]);
}

#[test]
fn file_globs_select_names() {
    let d = dirs();
    file(&d.src, "a.txt", 1);
    file(&d.src, "b.md", 1);
    file(&d.src, "c.log", 1);
    file(&d.src, "sub/d.TXT", 1);
    let mut args = vec![
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "*.txt",
        "*.md",
        "-s",
    ];
    args.push("--no-progress");
    assert_eq!(smbcp(&args).code, 0);
    assert_eq!(names(&d.dst), ["a.txt", "b.md", "sub", "sub/d.TXT"]);
}

#[test]
fn exclude_file_and_exclude_dir() {
    let d = dirs();
    file(&d.src, "keep.txt", 1);
    file(&d.src, "skip.tmp", 1);
    file(&d.src, "sub/skip.tmp", 1);
    file(&d.src, "sub/keep.txt", 1);
    file(&d.src, "node_modules/x.js", 1);
    file(&d.src, "deep/cache/y", 1);
    let r = run(
        &d,
        &[
            "-s",
            "--exclude-file",
            "*.tmp",
            "--exclude-dir",
            "node_modules",
            "--exclude-dir",
            "cache",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // "deep" holds nothing but the excluded "cache": without -e it is not created.
    assert_eq!(names(&d.dst), ["keep.txt", "sub", "sub/keep.txt"]);
    assert_eq!(files_row(&r, "skipped"), 2);
}

#[test]
fn max_size_and_min_size() {
    let d = dirs();
    file(&d.src, "small", 10);
    file(&d.src, "mid", 100);
    file(&d.src, "big", 1000);
    assert_eq!(run(&d, &["--max-size", "500", "--min-size", "50"]).code, 0);
    assert_eq!(names(&d.dst), ["mid"]);
}

#[test]
fn max_age_and_min_age() {
    let d = dirs();
    file(&d.src, "old", 1);
    file(&d.src, "mid", 1);
    file(&d.src, "new", 1);
    set_mtime(&d.src.join("old"), 30 * 86_400);
    set_mtime(&d.src.join("mid"), 5 * 86_400);
    let r = run(&d, &["--max-age", "10", "--min-age", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["mid"]);
}

#[test]
fn older_newer_changed_same_selection() {
    let d = dirs();
    for n in ["older", "newer", "changed", "same"] {
        file(&d.src, n, 10);
    }
    assert_eq!(run(&d, &[]).code, 0);
    // Make the destination: newer than source, older than source, other size, same.
    set_mtime(&d.src.join("older"), 1000);
    set_mtime(&d.dst.join("newer"), 1000);
    file(&d.dst, "changed", 11);
    let t = FileTime::from_last_modification_time(&fs::metadata(d.src.join("changed")).unwrap());
    filetime::set_file_mtime(d.dst.join("changed"), t).unwrap();
    fs::write(d.dst.join("same"), b"0123456789").unwrap();
    let t = FileTime::from_last_modification_time(&fs::metadata(d.src.join("same")).unwrap());
    filetime::set_file_mtime(d.dst.join("same"), t).unwrap();

    let before = snapshot(&d.dst);
    let r = run(
        &d,
        &[
            "--exclude-older",
            "--exclude-newer",
            "--exclude-changed",
            "--list-only",
        ],
    );
    assert_eq!((r.code, copied(&r)), (0, 0), "{r:?}");
    let r = run(
        &d,
        &["--exclude-older", "--exclude-newer", "--exclude-changed"],
    );
    assert_eq!((r.code, copied(&r)), (0, 0), "{r:?}");
    assert_eq!(snapshot(&d.dst), before);
    let r = run(&d, &["--exclude-older", "--exclude-changed", "-v"]);
    assert_eq!(copied(&r), 1, "only the newer file: {r:?}");
    let r = run(&d, &["--exclude-changed"]);
    assert_eq!(copied(&r), 1, "now the older one: {r:?}");
    let r = run(&d, &[]);
    assert_eq!(copied(&r), 1, "the changed one: {r:?}");
    let r = run(&d, &["--include-same"]);
    assert_eq!(copied(&r), 4, "--include-same copies all: {r:?}");
    assert_same_tree(&d.src, &d.dst);
}

#[test]
fn fft_allows_two_seconds() {
    let d = dirs();
    file(&d.src, "f", 10);
    assert_eq!(run(&d, &[]).code, 0);
    let t = fs::metadata(d.src.join("f")).unwrap().modified().unwrap();
    filetime::set_file_mtime(
        d.dst.join("f"),
        FileTime::from_system_time(t + Duration::from_secs(1)),
    )
    .unwrap();
    assert_eq!(copied(&run(&d, &["--fft"])), 0);
    assert_eq!(copied(&run(&d, &[])), 1);
}

#[test]
fn mirror_deletes_extras_and_respects_max_delete() {
    let d = dirs();
    standard_tree(&d.src);
    assert_eq!(run(&d, &["--mirror"]).code, 0);
    for i in 0..5 {
        file(&d.dst, &format!("extra{i}.txt"), 1);
    }
    file(&d.dst, "extradir/deeper/x", 1);
    let r = run(&d, &["--mirror", "--max-delete", "3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--max-delete"), "{r:?}");
    assert!(d.dst.join("extra0.txt").exists() && d.dst.join("extradir").exists());
    let r = run(&d, &["--mirror", "--exit-codes", "robocopy"]);
    assert_eq!(r.code, 2, "extras found (robocopy bit 2): {r:?}");
    assert_eq!(r.json()["files"]["extras"], 5);
    assert_same_tree(&d.src, &d.dst);
}

#[test]
fn purge_without_empty_dirs() {
    let d = dirs();
    file(&d.src, "a/f", 1);
    file(&d.dst, "a/gone", 1);
    file(&d.dst, "b/gone", 1);
    let r = run(&d, &["-s", "--purge"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["a", "a/f"]);
}

#[test]
fn exclude_extra_keeps_and_hides_extras() {
    let d = dirs();
    file(&d.src, "f", 1);
    file(&d.dst, "extra", 1);
    let r = run(&d, &["--mirror", "--exclude-extra"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(d.dst.join("extra").exists());
    assert_eq!(r.json()["files"]["extras"], 0);
}

#[test]
fn excluded_destination_files_are_protected_from_purge() {
    let d = dirs();
    file(&d.src, "f", 1);
    file(&d.dst, "keep.log", 1);
    file(&d.dst, "logs/x", 1);
    let r = run(
        &d,
        &[
            "--mirror",
            "--exclude-file",
            "*.log",
            "--exclude-dir",
            "logs",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["f", "keep.log", "logs", "logs/x"]);
}

#[test]
fn move_deletes_source_files_move_all_also_dirs() {
    let d = dirs();
    file(&d.src, "a/f", 5);
    file(&d.src, "g", 5);
    let r = run(&d, &["-s", "--move"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.src), ["a"]);
    assert_eq!(names(&d.dst), ["a", "a/f", "g"]);
    file(&d.src, "a/b/h", 5);
    let r = run(&d, &["--move-all"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(names(&d.src).is_empty(), "{:?}", names(&d.src));
    assert!(d.dst.join("a/b/h").exists());
}

#[test]
fn list_only_changes_nothing() {
    let d = dirs();
    standard_tree(&d.src);
    for flag in ["--list-only", "--dry-run", "-l"] {
        let r = run(&d, &[flag, "--mirror"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(copied(&r), 12);
        assert!(!d.dst.exists(), "{flag} created the destination");
    }
    assert_eq!(run(&d, &["-e"]).code, 0);
    file(&d.dst, "extra", 1);
    fs::remove_file(d.src.join("one.bin")).unwrap();
    let before = snapshot(&d.dst);
    let r = run(&d, &["--mirror", "-l"]);
    assert_eq!(
        (r.code, r.json()["files"]["extras"].as_u64()),
        (0, Some(2)),
        "{r:?}"
    );
    assert_eq!(snapshot(&d.dst), before);
}

#[test]
fn create_makes_zero_length_files() {
    let d = dirs();
    file(&d.src, "a/f", 1000);
    fs::create_dir(d.src.join("e")).unwrap();
    let r = run(&d, &["-e", "--create"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(names(&d.dst), ["a", "a/f", "e"]);
    assert_eq!(fs::metadata(d.dst.join("a/f")).unwrap().len(), 0);
}

#[test]
fn mt_one_and_max_copy_a_big_file_in_blocks() {
    for mt in ["1", "128"] {
        let d = dirs();
        file(&d.src, "big", 40 * MIB + 3);
        file(&d.src, "small", 3);
        let r = run(&d, &["--mt", mt]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_same_tree(&d.src, &d.dst);
    }
    let d = dirs();
    for bad in ["0", "129", "x"] {
        let r = smbcp(&[
            d.src.to_str().unwrap(),
            d.dst.to_str().unwrap(),
            "--mt",
            bad,
        ]);
        assert_one_line_error(&r, 2);
    }
}

#[test]
fn unbuffered_copies_exactly() {
    let d = dirs();
    file(&d.src, "aligned", 4 * MIB);
    file(&d.src, "odd", 9 * MIB + 17);
    file(&d.src, "tiny", 3);
    let r = run(&d, &["--unbuffered"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&d.src, &d.dst);
}

/// An immutable destination directory makes every write fail with EPERM
/// (even for root), a permanent error.
struct Immutable(PathBuf);
impl Immutable {
    fn new(p: &Path) -> Option<Self> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(p.to_path_buf()))
    }
}
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn permanent_errors_fail_fast_without_retries_and_are_reported() {
    let d = dirs();
    file(&d.src, "f1", 10);
    file(&d.src, "f2", 10);
    fs::create_dir(&d.dst).unwrap();
    let Some(_guard) = Immutable::new(&d.dst) else {
        panic!("chattr +i is needed for this test (e2fsprogs, root, ext4/xfs)");
    };
    let t0 = Instant::now();
    let r = run(&d, &["--retries", "5", "--wait", "10s"]);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "permanent errors must not be retried"
    );
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["files"]["failed"], 2);
    assert_eq!(j["failures"][0]["code"], "EPERM");
    let errors: Vec<_> = r.stderr.lines().filter(|l| l.contains("EPERM")).collect();
    assert_eq!(errors.len(), 2, "{r:?}");
    assert!(
        errors.iter().all(|l| l.starts_with("smbcp: error: ")),
        "{r:?}"
    );
    let r = smbcp(&[
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "--exit-codes",
        "robocopy",
    ]);
    assert_eq!(r.code, 8, "{r:?}");
    // Deletes never follow a failed copy pass.
    drop(_guard);
}

#[test]
fn failed_copy_pass_blocks_purge() {
    let d = dirs();
    file(&d.src, "sub/f", 10);
    file(&d.dst, "extra", 1);
    fs::create_dir_all(d.dst.join("sub")).unwrap();
    let Some(_guard) = Immutable::new(&d.dst.join("sub")) else {
        panic!("chattr +i is needed")
    };
    let r = run(&d, &["--mirror"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(d.dst.join("extra").exists(), "purge ran after a failure");
}

#[test]
fn retries_and_wait_and_timeout_are_validated() {
    let d = dirs();
    file(&d.src, "f", 1);
    assert_eq!(
        run(
            &d,
            &["--retries", "0", "--wait", "250ms", "--timeout", "30s"]
        )
        .code,
        0
    );
    for (flag, bad) in [("--retries", "-1"), ("--wait", "soon"), ("--timeout", "1w")] {
        let r = smbcp(&[d.src.to_str().unwrap(), d.dst.to_str().unwrap(), flag, bad]);
        assert_one_line_error(&r, 2);
    }
}

#[test]
fn bwlimit_paces_the_copy() {
    let d = dirs();
    file(&d.src, "f", 3 * MIB);
    let t0 = Instant::now();
    let r = run(&d, &["--bwlimit", "2M"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "3 MiB at 2 MiB/s took {:?}",
        t0.elapsed()
    );
    assert_same_tree(&d.src, &d.dst);
}

#[test]
fn copy_and_dcopy_flags() {
    let d = dirs();
    file(&d.src, "sub/f", 10);
    set_mtime(&d.src.join("sub/f"), 100_000);
    set_mtime(&d.src.join("sub"), 200_000);
    fs::set_permissions(d.src.join("sub/f"), fs::Permissions::from_mode(0o444)).unwrap();
    let r = run(&d, &["-s", "--copy", "D"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Times travel as FILETIME: 100 ns resolution.
    let mt = |p: &Path| {
        let t = fs::metadata(p).unwrap().modified().unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() / 100
    };
    assert_ne!(
        mt(&d.dst.join("sub/f")),
        mt(&d.src.join("sub/f")),
        "--copy D must not copy times"
    );
    assert_ne!(
        fs::metadata(d.dst.join("sub/f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o200,
        0
    );
    fs::remove_dir_all(&d.dst).unwrap();
    set_mtime(&d.src, 300_000);
    let r = run(&d, &["-s", "--copy", "DAT", "--dcopy", "T"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(mt(&d.dst.join("sub/f")), mt(&d.src.join("sub/f")));
    assert_eq!(mt(&d.dst.join("sub")), mt(&d.src.join("sub")), "--dcopy T");
    assert_eq!(mt(&d.dst), mt(&d.src), "--dcopy T sets DEST's root too");
    assert_eq!(
        fs::metadata(d.dst.join("sub/f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o222,
        0,
        "read-only kept"
    );
    for bad in ["DATSOU", "Q"] {
        let r = smbcp(&[
            d.src.to_str().unwrap(),
            d.dst.to_str().unwrap(),
            "--copy",
            bad,
        ]);
        assert_one_line_error(&r, 2);
    }
}

#[test]
fn log_log_append_and_tee() {
    let d = dirs();
    file(&d.src, "f.txt", 10);
    let log = d.src.parent().unwrap().join("run.log");
    let args = |extra: &[&str]| {
        let mut v = vec![
            d.src.to_str().unwrap().to_string(),
            d.dst.to_str().unwrap().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let r = smbcp(&args(&["--log", log.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.is_empty(),
        "--log without --tee keeps stdout quiet: {r:?}"
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("New File") && text.contains("f.txt") && text.contains("Files :"),
        "{text}"
    );
    let r = smbcp(&args(&[
        "--log-append",
        log.to_str().unwrap(),
        "--tee",
        "--include-same",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Files :"), "--tee: {r:?}");
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("Files :").count(), 2, "appended: {text}");
    let r = smbcp(&args(&["--log", log.to_str().unwrap()]));
    assert_eq!(r.code, 0);
    assert_eq!(
        fs::read_to_string(&log).unwrap().matches("Files :").count(),
        1,
        "--log truncates"
    );
    // robocopy accepts /TEE without /LOG: the output goes to stdout anyway.
    let r = smbcp(&args(&["--tee", "--include-same"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Files :"), "{r:?}");
    // /UNILOG is /LOG (the log is UTF-8 either way).
    let r = smbcp(&args(&[&format!("/UNILOG:{}", log.display()), "/IS"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    assert_eq!(
        fs::read_to_string(&log).unwrap().matches("Files :").count(),
        1
    );
}

#[test]
fn no_header_no_summary_no_class_no_size_full_path() {
    let d = dirs();
    file(&d.src, "sub/f.bin", 5000);
    let a = [
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "-s",
        "--list-only",
    ];
    let r = smbcp(&a);
    assert!(
        r.stdout.contains("Source :") && r.stdout.contains("Files :"),
        "{r:?}"
    );
    // robocopy's idiom for a bare list of file names.
    for quiet in [
        &[
            "--no-header",
            "--no-summary",
            "--no-class",
            "--no-size",
            "--no-dir-list",
        ][..],
        &["/NJH", "/NJS", "/NC", "/NS", "/NDL"][..],
    ] {
        let r = smbcp(&[&a[..], quiet].concat());
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "sub/f.bin\n"),
            "{quiet:?}: {r:?}"
        );
    }
    let r = smbcp(&[&a[..], &["/NJH", "/NJS", "/NC", "/NS", "/NDL", "/FP"]].concat());
    let full = format!("{}/sub/f.bin\n", d.src.display());
    assert_eq!(r.stdout, full, "{r:?}");
    let r = smbcp(&[&a[..], &["--no-header"]].concat());
    assert!(
        !r.stdout.contains("Source :") && r.stdout.contains("Files :"),
        "{r:?}"
    );
    let r = smbcp(&[&a[..], &["/NJS", "/ETA", "/UNICODE", "/X"]].concat());
    assert!(
        r.stdout.contains("Source :") && !r.stdout.contains("Files :"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("New File") && r.stdout.contains("4.88 KiB"),
        "{r:?}"
    );
}

#[test]
fn file_and_dir_lists_and_bytes() {
    let d = dirs();
    file(&d.src, "sub/f.bin", 5000);
    let a = [d.src.to_str().unwrap(), d.dst.to_str().unwrap(), "-s"];
    let r = smbcp(&[&a[..], &["--list-only"]].concat());
    assert!(
        r.stdout.contains("New File") && r.stdout.contains("New Dir"),
        "{r:?}"
    );
    assert!(r.stdout.contains("4.88 KiB"), "{r:?}");
    let r = smbcp(&[&a[..], &["--list-only", "--no-file-list"]].concat());
    assert!(
        !r.stdout.contains("New File") && r.stdout.contains("New Dir"),
        "{r:?}"
    );
    let r = smbcp(&[&a[..], &["--list-only", "--no-dir-list"]].concat());
    assert!(
        r.stdout.contains("New File") && !r.stdout.contains("New Dir"),
        "{r:?}"
    );
    let r = smbcp(&[&a[..], &["--list-only", "--bytes"]].concat());
    assert!(
        r.stdout.contains(" 5000 ") && !r.stdout.contains("KiB"),
        "{r:?}"
    );
}

#[test]
fn no_progress_output_when_not_a_terminal() {
    let d = dirs();
    file(&d.src, "f", 3 * MIB);
    for extra in [&[][..], &["--no-progress"][..]] {
        let mut a = vec![
            d.src.to_str().unwrap(),
            d.dst.to_str().unwrap(),
            "--include-same",
        ];
        a.extend_from_slice(extra);
        let r = smbcp(&a);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            !r.stderr.contains('\r') && !r.stdout.contains('\r'),
            "progress on a pipe: {r:?}"
        );
        assert!(r.stderr.is_empty(), "{r:?}");
    }
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    // `script` gives the child a pseudo-terminal for stdout and stderr.
    let d = dirs();
    file(&d.src, "f", 2 * MIB);
    let cmd = |extra: &str| {
        format!(
            "{} {} {} --include-same --bwlimit 1M {extra}",
            env!("CARGO_BIN_EXE_smbcp"),
            d.src.display(),
            d.dst.display()
        )
    };
    let tty = |extra: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd(extra), "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script (util-linux) is needed for the terminal test");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = tty("");
    // Bytes and files of the planned totals, a rate in adaptive units.
    assert!(
        shown.contains(" / ") && shown.contains("files") && shown.contains("B/s"),
        "no progress on a terminal: {shown:?}"
    );
    assert!(!shown.contains("0 B / 0 B"), "{shown:?}");
    let hidden = tty("--no-progress");
    assert!(!hidden.contains("B/s  "), "--no-progress: {hidden:?}");
    assert!(hidden.contains("Files :"), "{hidden:?}");
}

#[test]
fn json_to_file_and_stdout() {
    let d = dirs();
    file(&d.src, "f", 10);
    let jf = d.src.parent().unwrap().join("r.json");
    let r = smbcp(&[
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "--json",
        jf.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("Files :"),
        "human output stays on stdout: {r:?}"
    );
    let j: serde_json::Value = serde_json::from_str(&fs::read_to_string(&jf).unwrap()).unwrap();
    assert_eq!(j["files"]["copied"], 1);
    assert_eq!(j["bytes"]["copied"], 10);
    assert_eq!(j["exit_code"], 0);
    assert!(j["failures"].as_array().unwrap().is_empty());
    // Local to local: no round trip, the smallest window, no splicing.
    assert_eq!(j["window"]["rtt_ms"], 0.0);
    assert_eq!(j["window"]["start_bytes"], 16 << 20);
    assert_eq!(j["window"]["zero_copy"], false);
    let r = run(&d, &["--include-same"]);
    assert_eq!(
        r.json()["files"]["copied"],
        1,
        "stdout holds only JSON with --json -"
    );
    assert!(
        r.stderr.contains("Files :"),
        "human output moves to stderr: {r:?}"
    );
}

#[test]
fn verbose_lists_skipped_quiet_prints_nothing() {
    let d = dirs();
    file(&d.src, "f", 10);
    assert_eq!(run(&d, &[]).code, 0);
    let a = [d.src.to_str().unwrap(), d.dst.to_str().unwrap()];
    let r = smbcp(&[&a[..], &["-v"]].concat());
    assert!(r.stdout.contains("same"), "{r:?}");
    let r = smbcp(&[&a[..], &["-q", "--include-same"]].concat());
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    let r = smbcp(&[&a[..], &["-q", "-v"]].concat());
    assert_one_line_error(&r, 2);
}

#[test]
fn exit_codes_robocopy_bitmask() {
    let d = dirs();
    file(&d.src, "f", 10);
    let a = [
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "--exit-codes",
        "robocopy",
    ];
    assert_eq!(smbcp(&a).code, 1, "copied");
    assert_eq!(smbcp(&a).code, 0, "nothing to do");
    file(&d.dst, "x", 1);
    assert_eq!(smbcp(&a).code, 2, "extras");
    fs::create_dir(d.src.join("x")).unwrap();
    assert_eq!(
        smbcp(&[&a[..], &["-s"]].concat()).code,
        4,
        "file vs directory mismatch"
    );
    let r = smbcp(&[&a[..], &["--bogus"]].concat());
    assert_eq!(r.code, 16, "{r:?}");
    let r = smbcp(&[
        "/nonexistent/src",
        d.dst.to_str().unwrap(),
        "--exit-codes",
        "robocopy",
    ]);
    assert_eq!(r.code, 16, "{r:?}");
}

#[test]
fn robocopy_spellings_do_the_same_as_gnu() {
    let gnu = dirs();
    let robo = dirs();
    for d in [&gnu, &robo] {
        standard_tree(&d.src);
        file(&d.src, "skip.tmp", 3);
        file(&d.src, "cache/x", 3);
        file(&d.dst, "extra", 1);
    }
    let r1 = run(
        &gnu,
        &[
            "--mirror",
            "--mt",
            "4",
            "--retries",
            "0",
            "--wait",
            "1s",
            "--exclude-file",
            "*.tmp",
            "--exclude-dir",
            "cache",
            "--no-progress",
        ],
    );
    let r2 = run(
        &robo,
        &[
            "/MIR", "/mt:4", "/R:0", "/W:1", "/XF", "*.tmp", "/XD", "cache", "/NP",
        ],
    );
    assert_eq!((r1.code, r2.code), (0, 0), "{r1:?} {r2:?}");
    assert_eq!(names(&gnu.dst), names(&robo.dst));
    assert_eq!(r1.json()["files"], r2.json()["files"]);
    assert!(!robo.dst.join("extra").exists() && !robo.dst.join("skip.tmp").exists());
}

#[test]
fn bad_input_gets_one_line_and_touches_nothing() {
    let d = dirs();
    file(&d.src, "f", 1);
    let (s, t) = (d.src.to_str().unwrap(), d.dst.to_str().unwrap());
    for (args, code) in [
        (vec![s, t, "--no-such-flag"], 2),
        (vec![s], 2),
        (vec!["\\\\server", t], 2),
        (vec!["//server/", t], 2),
        (vec!["smb://srv:99999/share", t], 2),
        (vec![s, "smb://user:pw@srv/share"], 2),
        (vec![s, t, "/R"], 2),
        (vec![s, t, "--max-size", "lots"], 2),
        (vec![s, t, "--zero-copy", "sometimes"], 2),
        (vec!["/definitely/not/here", t], 3),
    ] {
        let r = smbcp(&args);
        assert_one_line_error(&r, code);
        assert!(!d.dst.exists(), "{args:?} touched the destination");
    }
    // DEST inside SOURCE with -s would copy itself; the same directory twice is useless.
    let inner = d.src.join("backup");
    let r = smbcp(&[s, inner.to_str().unwrap(), "-s"]);
    assert_one_line_error(&r, 2);
    assert!(!inner.exists());
    let r = smbcp(&[s, &format!("{s}/../src")]);
    assert_one_line_error(&r, 2);
    // --json still gets a document.
    let r = smbcp(&["/definitely/not/here", t, "--json", "-"]);
    assert_eq!(
        (r.code, r.json()["exit_code"].as_u64()),
        (3, Some(3)),
        "{r:?}"
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{r:?}"
    );
    // A file as SOURCE goes into DEST; a file as DEST is fatal, touching nothing.
    let f = d.src.join("f");
    let r = smbcp(&[f.to_str().unwrap(), t]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(d.dst.join("f")).unwrap(), fs::read(&f).unwrap());
    let r = smbcp(&[f.to_str().unwrap(), d.dst.join("f").to_str().unwrap()]);
    assert_one_line_error(&r, 3);
    assert!(
        r.stderr
            .contains("the directory to copy the SOURCE file into"),
        "{r:?}"
    );
}

#[test]
fn unknown_or_refused_robocopy_flags_are_usage_errors_never_globs() {
    let d = dirs();
    file(&d.src, "f", 1);
    let (s, t) = (d.src.to_str().unwrap(), d.dst.to_str().unwrap());
    for flag in [
        "/MRI",
        "/IORATE:1M",
        "/SPARSE",
        "/SEC",
        "/COPYALL",
        "/nosuch:3",
    ] {
        for (mode, code) in [(&[][..], 2), (&["--exit-codes", "robocopy"][..], 16)] {
            let r = smbcp(&[&[s, t, flag][..], mode].concat());
            assert_one_line_error(&r, code);
            assert!(r.stderr.contains(flag), "{flag}: {r:?}");
            assert!(!d.dst.exists(), "{flag} touched the destination");
        }
    }
    let r = smbcp(&[s, t, "/SEC"]);
    assert!(r.stderr.contains("security descriptors"), "{r:?}");
    // A second SOURCE (a path where a FILE_GLOB goes) is refused too.
    let other = d.src.parent().unwrap().join("other");
    let r = smbcp(&[s, other.to_str().unwrap(), t]);
    assert_one_line_error(&r, 2);
    assert!(r.stderr.contains("FILE_GLOB"), "{r:?}");
    let r = smbcp(&[s, other.to_str().unwrap(), t, "--exit-codes", "robocopy"]);
    assert_one_line_error(&r, 16);
    // After `--` a flag-like token is a path again (here: a missing source).
    let r = smbcp(&["--", "/MRI", t]);
    assert_one_line_error(&r, 3);
}

#[test]
fn fatal_errors_do_not_repeat_their_cause() {
    let d = dirs();
    file(&d.src, "f", 1);
    let under_a_file = d.src.join("f").join("dst");
    let r = smbcp(&[d.src.to_str().unwrap(), under_a_file.to_str().unwrap()]);
    assert_one_line_error(&r, 3);
    assert_eq!(r.stderr.matches("Not a directory").count(), 1, "{r:?}");
}

#[test]
fn unc_path_with_a_port_connects_to_that_port() {
    let d = dirs();
    // Port 1 on loopback: nothing listens, so the connection is refused at once.
    let r = smbcp(&["//127.0.0.1:1/share", d.dst.to_str().unwrap(), "--guest"]);
    assert_one_line_error(&r, 3);
    assert!(
        r.stderr.contains("127.0.0.1:1") && !r.stderr.contains(":445"),
        "{r:?}"
    );
}

#[test]
fn robocopy_question_mark_prints_help() {
    for args in [&["/?"][..], &["a", "b", "/?"][..]] {
        let r = smbcp(args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains("--mirror") && r.stderr.is_empty(),
            "{r:?}"
        );
    }
}

#[test]
fn no_arguments_names_every_missing_one() {
    let r = smbcp::<&str>(&[]);
    assert_one_line_error(&r, 2);
    assert!(
        r.stderr.contains("<SOURCE>") && r.stderr.contains("<DEST>"),
        "{r:?}"
    );
}

#[test]
fn help_and_version_exit_zero() {
    let r = smbcp(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("--mirror") && r.stdout.contains("[/MIR]"),
        "{r:?}"
    );
    let r = smbcp(&["--version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("smbcp "), "{r:?}");
    // The commit (or "unknown" outside git), the build and what is compiled in.
    let commit = r.stdout.lines().find_map(|l| l.strip_prefix("commit: "));
    assert!(
        commit.is_some_and(|c| c == "unknown" || c.chars().all(|c| c.is_ascii_hexdigit())),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("\nfeatures: ") && r.stdout.contains("\nbuild: "),
        "{r:?}"
    );
}

#[test]
fn interrupt_removes_temporary_files_and_leaves_no_partial_file() {
    let d = dirs();
    file(&d.src, "big", 24 * MIB);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_smbcp"))
        .args([
            d.src.to_str().unwrap(),
            d.dst.to_str().unwrap(),
            "--bwlimit",
            "8M",
            "--mt",
            "2",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the temporary file exists, then interrupt.
    let t0 = Instant::now();
    while !names(&d.dst).iter().any(|n| n.contains(".smbcp-")) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no temporary file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The shell's builtin `kill`: no procps needed.
    let kill = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("interrupted"), "{r:?}");
    assert!(names(&d.dst).is_empty(), "left behind: {:?}", names(&d.dst));
}

#[test]
fn temp_file_never_appears_under_the_final_name_on_failure() {
    // A copy that fails mid-way (the destination directory turns immutable
    // after the first run) leaves the old file intact and no temp files.
    let d = dirs();
    file(&d.src, "f", 2 * MIB);
    assert_eq!(run(&d, &[]).code, 0);
    let old = fs::read(d.dst.join("f")).unwrap();
    file(&d.src, "f", 2 * MIB + 1);
    let Some(_guard) = Immutable::new(&d.dst) else {
        panic!("chattr +i is needed")
    };
    let r = run(&d, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    drop(_guard);
    assert_eq!(fs::read(d.dst.join("f")).unwrap(), old);
    assert_eq!(names(&d.dst), ["f"]);
}

/// Every name under `dir` (files only, relative, `/`-separated), sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

/// rsync-style filters: a FILE_GLOB or `--include` with a `/` matches the
/// relative path; `--files-from` (a file, or `-` for stdin) copies the listed
/// paths only; `--exclude-attr R` skips read-only files and `/IA:R` keeps
/// only them; `--delete-excluded` with `--mirror` deletes what the filters
/// exclude, which plain `--mirror` keeps.
#[test]
fn path_globs_files_from_attributes_and_delete_excluded() {
    let d = dirs();
    for p in [
        "a/x.bin",
        "a/y.txt",
        "b/x.bin",
        "a/deep/z.bin",
        "top.bin",
        "ro.txt",
    ] {
        file(&d.src, p, 3);
    }
    fs::set_permissions(d.src.join("ro.txt"), fs::Permissions::from_mode(0o444)).unwrap();
    let r = run(&d, &["-s", "a/*.bin"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(files_under(&d.dst), ["a/x.bin"]);
    fs::remove_dir_all(&d.dst).unwrap();
    let r = run(&d, &["-s", "--include", "**/*.bin", "--include", "*.txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    // `**/` matches no directory too.
    let want = [
        "a/deep/z.bin",
        "a/x.bin",
        "a/y.txt",
        "b/x.bin",
        "ro.txt",
        "top.bin",
    ];
    assert_eq!(files_under(&d.dst), want);
    fs::remove_dir_all(&d.dst).unwrap();
    // --files-from, from a file and from stdin.
    let list = d.src.parent().unwrap().join("list.txt");
    fs::write(&list, "# wanted\nb/x.bin\n./top.bin\nnot/there\n").unwrap();
    let r = run(&d, &["-s", "--files-from", list.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(files_under(&d.dst), ["b/x.bin", "top.bin"]);
    fs::remove_dir_all(&d.dst).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smbcp"))
        .args([
            d.src.to_str().unwrap(),
            d.dst.to_str().unwrap(),
            "-s",
            "--files-from",
            "-",
        ])
        .env("XDG_STATE_HOME", test_state_home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"a/y.txt\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(files_under(&d.dst), ["a/y.txt"]);
    fs::remove_dir_all(&d.dst).unwrap();
    // Attributes: read-only is R.
    let r = run(&d, &["-s", "--exclude-attr", "R"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!files_under(&d.dst).contains(&"ro.txt".to_string()));
    fs::remove_dir_all(&d.dst).unwrap();
    let r = run(&d, &["-s", "/IA:R"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(files_under(&d.dst), ["ro.txt"]);
    fs::remove_dir_all(&d.dst).unwrap();
    // --delete-excluded: excluded destination files go with --mirror only then.
    let r = run(&d, &["--mirror"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&d, &["--mirror", "--exclude-file", "*.txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        d.dst.join("a/y.txt").exists(),
        "plain --mirror keeps excluded files"
    );
    let r = run(
        &d,
        &["--mirror", "--exclude-file", "*.txt", "--delete-excluded"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        files_under(&d.dst),
        ["a/deep/z.bin", "a/x.bin", "b/x.bin", "top.bin"]
    );
    let r = smbcp(&[
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "--delete-excluded",
    ]);
    assert_one_line_error(&r, 2);
}

/// `--list-times` (robocopy `/TS`) adds the source's last write time (UTC)
/// to each listed file, with and without the size column.
#[test]
fn list_times_shows_source_timestamps() {
    let d = dirs();
    file(&d.src, "f.txt", 5);
    // 2001-09-09 01:46:40 UTC.
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    filetime::set_file_mtime(d.src.join("f.txt"), FileTime::from_system_time(t)).unwrap();
    let r = smbcp(&[d.src.to_str().unwrap(), d.dst.to_str().unwrap(), "/TS"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = r.stdout.lines().find(|l| l.ends_with(" f.txt")).unwrap();
    assert!(line.contains("5  2001/09/09 01:46:40  f.txt"), "{line}");
    fs::remove_dir_all(&d.dst).unwrap();
    let r = smbcp(&[
        d.src.to_str().unwrap(),
        d.dst.to_str().unwrap(),
        "--list-times",
        "--no-size",
    ]);
    let line = r.stdout.lines().find(|l| l.ends_with(" f.txt")).unwrap();
    assert!(
        line.trim_start()
            .starts_with("New File  2001/09/09 01:46:40  f.txt"),
        "{line}"
    );
}
