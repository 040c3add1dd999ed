//! Security properties, end to end with the real binary on local trees:
//! nothing outside DEST is ever written or deleted (destination symlinks are
//! entries, never paths), source symlinks are not followed unless asked and
//! never loop, names cannot forge report lines, and credentials never show
//! in an error. Each test lists the neighbourhood of DEST (without following
//! links) before and after the run and compares.

#[path = "e2e_util.rs"]
mod util;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use util::*;

/// A temporary directory holding `src/`, `victim/` (outside both trees) and,
/// once a run made it, `dst/`.
struct Tmp {
    tmp: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
    victim: PathBuf,
}

fn tmp() -> Tmp {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, victim) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("victim"),
    );
    fs::create_dir(&src).unwrap();
    file(&victim, "keep.txt", 10);
    file(&victim, "sub2/inner.txt", 20);
    Tmp {
        tmp,
        src,
        dst,
        victim,
    }
}

impl Tmp {
    /// Runs `smbcp SRC DST args... --json -` (human output goes to stderr).
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec![self.src.to_str().unwrap(), self.dst.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--json", "-", "--no-progress"]);
        smbcp(&all)
    }

    /// Everything under the temporary directory except `except` (relative
    /// top-level names), links listed as their targets and never followed.
    fn outside(&self, except: &[&str]) -> BTreeMap<String, String> {
        state(self.tmp.path())
            .into_iter()
            .filter(|(k, _)| {
                let top = k.split('/').next().unwrap_or_default();
                !except.contains(&top)
            })
            .collect()
    }
}

/// Every path under `root` → "dir", "link -> TARGET" or "file LEN BYTES",
/// from `symlink_metadata` (a link is never followed).
fn state(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                let target = fs::read_link(&p).unwrap();
                out.insert(rel, format!("link -> {}", target.display()));
            } else if md.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else {
                let bytes = fs::read(&p).unwrap();
                out.insert(rel, format!("file {} {:?}", bytes.len(), bytes));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn is_link(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

fn failures(r: &Run) -> Vec<(String, String, String)> {
    r.json()["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("path"), s("operation"), s("code"))
        })
        .collect()
}

// ----- 1. nothing outside DEST -----

#[test]
fn mirror_never_writes_into_or_purges_behind_a_destination_dir_symlink() {
    let t = tmp();
    file(&t.src, "sub/new.txt", 5);
    file(&t.src, "top.txt", 5);
    fs::create_dir(&t.dst).unwrap();
    symlink("../victim", t.dst.join("sub")).unwrap();
    let before = t.outside(&["dst"]);
    let r = t.run(&["--mirror"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("smbcp: error: copy sub: ELOOP: destination path is a symlink, not followed"),
        "{r:?}"
    );
    assert_eq!(
        failures(&r),
        [("sub".into(), "copy".into(), "ELOOP".into())]
    );
    // The victim is untouched: no new.txt written through, nothing purged.
    assert_eq!(t.outside(&["dst"]), before);
    assert!(is_link(&t.dst.join("sub")));
    assert!(t.dst.join("top.txt").is_file());
}

#[test]
fn purge_unlinks_destination_symlinks_and_never_what_they_point_to() {
    let t = tmp();
    file(&t.src, "a.txt", 3);
    fs::create_dir_all(t.dst.join("olddir")).unwrap();
    symlink("../victim", t.dst.join("link")).unwrap();
    symlink("../victim/keep.txt", t.dst.join("flink")).unwrap();
    symlink("../../victim", t.dst.join("olddir/inner")).unwrap();
    file(&t.dst, "olddir/f.txt", 3);
    let before = t.outside(&["dst"]);
    let r = t.run(&["--mirror"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.outside(&["dst"]), before, "outside DEST changed");
    assert_eq!(
        state(&t.dst).into_keys().collect::<Vec<_>>(),
        ["a.txt"],
        "links removed as links, the extra directory with its link inside: {r:?}"
    );
    assert!(t.victim.join("keep.txt").is_file() && t.victim.join("sub2/inner.txt").is_file());
}

#[test]
fn a_file_over_a_destination_symlink_is_refused_not_written_through() {
    let t = tmp();
    file(&t.src, "conf.txt", 7);
    fs::create_dir(&t.dst).unwrap();
    symlink("../victim/keep.txt", t.dst.join("conf.txt")).unwrap();
    let before = t.outside(&["dst"]);
    let r = t.run(&["--include-same"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("copy conf.txt: ELOOP: destination path is a symlink, not followed"),
        "{r:?}"
    );
    assert_eq!(t.outside(&["dst"]), before);
    assert!(
        is_link(&t.dst.join("conf.txt")),
        "the link is not replaced either"
    );
}

// ----- 2. source symlinks -----

#[test]
fn source_symlinks_are_skipped_by_default_and_listed() {
    let t = tmp();
    file(&t.src, "real.txt", 4);
    symlink("/etc", t.src.join("etc")).unwrap();
    symlink("../victim/keep.txt", t.src.join("secret")).unwrap();
    symlink("../victim", t.src.join("ldir")).unwrap();
    symlink("missing", t.src.join("dangling")).unwrap();
    let before = t.outside(&["dst"]);
    let r = t.run(&["-s"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(state(&t.dst).into_keys().collect::<Vec<_>>(), ["real.txt"]);
    for name in ["etc", "secret", "ldir", "dangling"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains("*Symlink") && l.ends_with(&format!("  {name}"))),
            "{name} listed as a skipped link: {r:?}"
        );
    }
    let files = &r.json()["files"];
    assert_eq!(
        (files["total"].as_u64(), files["skipped"].as_u64()),
        (Some(5), Some(4)),
        "{r:?}"
    );
    assert_eq!(t.outside(&["dst"]), before);
}

#[test]
fn follow_links_follows_and_stops_at_loops() {
    let t = tmp();
    file(&t.src, "sub/deep/x.txt", 4);
    symlink("../victim", t.src.join("ldir")).unwrap();
    symlink("..", t.src.join("sub/up")).unwrap();
    symlink("../..", t.src.join("sub/deep/up2")).unwrap();
    symlink(".", t.src.join("self")).unwrap();
    let before = t.outside(&["dst"]);
    let r = t.run(&["-s", "--follow-links"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        state(&t.dst).into_keys().collect::<Vec<_>>(),
        [
            "ldir",
            "ldir/keep.txt",
            "ldir/sub2",
            "ldir/sub2/inner.txt",
            "sub",
            "sub/deep",
            "sub/deep/x.txt"
        ],
        "{r:?}"
    );
    for loop_ in ["self", "sub/up", "sub/deep/up2"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains("*Symlink loop") && l.ends_with(&format!("  {loop_}"))),
            "{loop_}: {r:?}"
        );
    }
    assert_eq!(
        fs::read(t.dst.join("ldir/keep.txt")).unwrap(),
        fs::read(t.victim.join("keep.txt")).unwrap()
    );
    assert_eq!(t.outside(&["dst"]), before);
}

#[test]
fn move_never_deletes_through_a_link() {
    // Without --follow-links the links are skipped, so never moved.
    let t = tmp();
    file(&t.src, "real.txt", 4);
    symlink("../victim", t.src.join("ldir")).unwrap();
    symlink("../victim/keep.txt", t.src.join("flink")).unwrap();
    let before = t.outside(&["dst", "src"]);
    let r = t.run(&["--move-all"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!t.src.join("real.txt").exists());
    assert!(is_link(&t.src.join("ldir")) && is_link(&t.src.join("flink")));
    assert_eq!(t.outside(&["dst", "src"]), before);

    // With it, files behind a directory link are copied but not deleted
    // (each refusal reported); a link to a file is moved as the link.
    let t = tmp();
    symlink("../victim", t.src.join("ldir")).unwrap();
    symlink("../victim/keep.txt", t.src.join("flink")).unwrap();
    let before = t.outside(&["dst", "src"]);
    let r = t.run(&["--move-all", "--follow-links"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        t.outside(&["dst", "src"]),
        before,
        "nothing deleted behind a link"
    );
    assert!(t.dst.join("ldir/sub2/inner.txt").is_file() && t.dst.join("flink").is_file());
    let f = failures(&r);
    assert!(
        f.contains(&(
            "ldir/keep.txt".into(),
            "delete source".into(),
            "ELOOP".into()
        )),
        "{f:?}"
    );
    assert!(
        r.stderr.contains("delete source ldir/keep.txt: ELOOP"),
        "{r:?}"
    );
    assert!(is_link(&t.src.join("ldir")));
    assert!(
        !t.src.join("flink").exists(),
        "the moved link itself is gone"
    );
}

// ----- 3. names cannot forge report lines -----

/// Names holding controls: a newline that forges a line, CR, ESC/CSI, DEL,
/// a C1 CSI and a right-to-left override.
const HOSTILE: [&str; 6] = [
    "evil\n        New File           0  forged.txt",
    "esc\x1b[31mred\x1b[0m",
    "cr\rback",
    "del\x7fx",
    "c1\u{9b}2J",
    "bidi\u{202e}txt.exe",
];

/// True when `text` holds a control character other than the line ends.
fn has_controls(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}')
}

#[test]
fn control_characters_in_names_are_escaped_in_every_human_output() {
    let t = tmp();
    for n in HOSTILE {
        file(&t.src, n, 3);
    }
    // A destination link in the way makes an error line about a hostile name.
    let blocked = "lnk\x1b[2J\nsmbcp: error: forged";
    file(&t.src, blocked, 3);
    fs::create_dir(&t.dst).unwrap();
    symlink("../victim/keep.txt", t.dst.join(blocked)).unwrap();
    let log = t.tmp.path().join("run.log");
    let json = t.tmp.path().join("run.json");
    let r = smbcp(&[
        t.src.to_str().unwrap(),
        t.dst.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--tee",
        "--json",
        json.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let log = fs::read_to_string(&log).unwrap();
    for (what, text) in [("stdout", &r.stdout), ("stderr", &r.stderr), ("log", &log)] {
        assert!(!has_controls(text), "{what} holds raw controls: {text:?}");
        assert!(
            !text.lines().any(|l| l
                .trim_start()
                .starts_with("New File           0  forged.txt")),
            "{what}: a name forged a file line: {text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("smbcp: error: forged")),
            "{what}: a name forged an error line: {text}"
        );
    }
    assert!(
        r.stdout
            .contains("  evil\\n        New File           0  forged.txt"),
        "{r:?}"
    );
    for escaped in [
        "esc\\x1b[31mred\\x1b[0m",
        "cr\\rback",
        "del\\x7fx",
        "c1\\u{9b}2J",
        "bidi\\u{202e}txt.exe",
    ] {
        assert!(r.stdout.contains(escaped), "{escaped}: {r:?}");
        assert!(log.contains(escaped), "{escaped}: {log}");
    }
    let err: Vec<_> = r.stderr.lines().filter(|l| l.contains("lnk")).collect();
    assert_eq!(
        err,
        ["smbcp: error: copy lnk\\x1b[2J\\nsmbcp: error: forged: ELOOP: destination path is a symlink, not followed"],
        "{r:?}"
    );
    // The JSON report keeps the name exact.
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["failures"][0]["path"].as_str(), Some(blocked));
    // And the names were copied exactly.
    for n in HOSTILE {
        assert!(t.dst.join(n).is_file(), "{n:?}");
    }
}

// ----- 4. credentials -----

#[test]
fn passwords_in_locations_are_refused_and_never_echoed() {
    let t = tmp();
    for (loc, want) in [
        (
            "smb://u:hunter2@127.0.0.1/share/x",
            "a password in the URL is not accepted",
        ),
        (
            "smb://u%3Ahunter2@127.0.0.1/share",
            "a password in the URL is not accepted",
        ),
        (
            "//u:hunter2@127.0.0.1/share",
            "a user or password in a UNC path is not accepted",
        ),
        (
            "\\\\u:hunter2@127.0.0.1\\share",
            "a user or password in a UNC path is not accepted",
        ),
        ("//127.0.0.1/../x", "\"..\" is not a share name"),
        ("smb://127.0.0.1/./x", "\".\" is not a share name"),
    ] {
        for args in [
            [loc, t.dst.to_str().unwrap()],
            [t.src.to_str().unwrap(), loc],
        ] {
            let r = smbcp(&[args[0], args[1], "--json", "-"]);
            assert_one_line_error(&r, 2);
            assert!(r.stderr.contains(want), "{loc}: {r:?}");
            assert!(
                !r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"),
                "{r:?}"
            );
        }
    }
    assert!(!t.dst.exists(), "a usage error touches nothing");
}

/// Writes a private (0600) file.
fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn empty_passwords_are_refused_unless_asked_for() {
    let t = tmp();
    let pw = secret_file(t.tmp.path(), "pw", "\n");
    let url = "smb://u@127.0.0.1:1/share";
    let r = smbcp(&[
        url,
        t.dst.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 2);
    assert!(
        r.stderr
            .contains("the password from --password-file is empty; pass --empty-password"),
        "{r:?}"
    );
    let r = smbcp_env(&[url, t.dst.to_str().unwrap()], &[("SMBCP_PASSWORD", "")]);
    assert_one_line_error(&r, 2);
    assert!(r.stderr.contains("is empty"), "{r:?}");
    // Asked for, the run gets as far as connecting (port 1: refused, fatal).
    let r = smbcp(&[
        url,
        t.dst.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--empty-password",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!t.dst.exists());
}

#[test]
fn cr_only_auth_files_work_and_never_leak_the_password() {
    use smb_fixture::{Samba, PASSWORD, SHARE, USER};
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "crauth");
    file(&share_dir.join("src"), "a.txt", 5);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let t = tmp();
    let url = s.url(SHARE, &format!("{rel}/src"));
    let good = secret_file(
        t.tmp.path(),
        "good",
        &format!("username={USER}\rpassword={PASSWORD}\r"),
    );
    let r = smbcp_env(
        &[
            &url,
            t.dst.to_str().unwrap(),
            "--auth-file",
            good.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(t.dst.join("a.txt").is_file());
    let bad = secret_file(
        t.tmp.path(),
        "bad",
        &format!("username={USER}\rpassword=Wrong-hunter2\rdomain=WG"),
    );
    let r = smbcp_env(
        &[
            &url,
            t.dst.to_str().unwrap(),
            "--auth-file",
            bad.to_str().unwrap(),
            "--json",
            "-",
        ],
        &[],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        !r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"),
        "{r:?}"
    );
}
