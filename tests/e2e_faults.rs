//! The fault matrix of issue 11 against the real binary and the real Samba:
//! a durable CREATE lost in flight, permission denied on either side, a
//! sparse file past 4 GiB, smaller and empty destinations with the source's
//! write time, and a full SMB destination. Each test asserts the exit code,
//! what landed byte for byte, that no temporary file is left and that
//! nothing incomplete sits under a final name.

#[path = "e2e_util.rs"]
mod util;

use std::fs;
use std::path::Path;

use smb_fixture::{FaultProxy, Samba, SHARE, USER};
use util::*;

fn url(proxy: &FaultProxy, rel: &str) -> String {
    format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}", proxy.port())
}

/// `rel` on the fixture's share, straight to smbd.
fn smb(s: &Samba, rel: &str) -> String {
    format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}", s.port())
}

/// The `reconnects` object of a `--json` run.
fn reconnects(r: &Run) -> serde_json::Value {
    r.json()["reconnects"].clone()
}

/// No smbcp temporary file anywhere under `root`.
fn assert_no_temp(root: &Path) {
    for (rel, _) in snapshot(root) {
        assert!(!rel.contains(".smbcp-"), "temporary file left: {rel}");
    }
}

/// A copy whose durable CREATE (source open or destination temp) is cut
/// before its reply, so the server holds an open we never heard of: the
/// retry replays the CREATE and goes on at once. The durable timeout the
/// binary asks for is Samba's longest (300 s, from the default
/// --reconnect-for 5m): had the new open waited for the lost one, the
/// server would have sent an interim reply, which the proxy counts.
fn lost_create(src: &str, dst: &str, proxy: &FaultProxy) -> Run {
    let r = smbcp(&[src, dst, "-s", "--json", "-"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!proxy.create_cut_armed(), "the cut fell on a CREATE reply");
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(reconnects(&r)["count"], 1, "{}", r.stderr);
    assert_eq!(proxy.pending_creates(), 0, "no CREATE was held back");
    r
}

#[test]
fn a_durable_create_lost_in_flight_is_replayed() {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-lost-create");
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    big_file(&src, "big.bin", 24);
    let proxy = FaultProxy::start(s.addr());
    // The temporary file's CREATE.
    proxy.cut_before_create_reply(".smbcp-", 1);
    let r = lost_create(
        src.to_str().unwrap(),
        &url(&proxy, &format!("{rel}/up")),
        &proxy,
    );
    // Nothing was open to come back: the one open is a new one.
    assert_eq!(reconnects(&r)["handles_reclaimed"], 0);
    assert_same_tree(&src, &share_dir.join("up"));
}

#[test]
fn a_create_lost_beside_an_open_durable_handle_reclaims_that_handle() {
    // Two big files start together: the first temporary file is open
    // (durable) when the second one's CREATE is lost. After the reconnect
    // the first is reclaimed, not reopened, and the second replayed.
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-lost-create-2");
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    big_file(&src, "a.bin", 48);
    big_file(&src, "b.bin", 48);
    let proxy = FaultProxy::start(s.addr());
    proxy.cut_before_create_reply(".smbcp-", 2);
    let r = lost_create(
        src.to_str().unwrap(),
        &url(&proxy, &format!("{rel}/up")),
        &proxy,
    );
    let rc = reconnects(&r);
    assert!(rc["handles_reclaimed"].as_u64().unwrap() >= 1, "{rc}");
    assert_eq!(rc["handles_reopened"], 0, "{rc}");
    assert_same_tree(&src, &share_dir.join("up"));
}

/// The failures of a `--json` run: (path, code), sorted.
fn failures(r: &Run) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = r.json()["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["path"].as_str().unwrap().to_string(),
                x["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    f.sort();
    f
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The source tree of the permission tests: two readable files, one that
/// is not (mode 000), and one whose destination directory is read-only.
fn permission_tree(src: &Path) {
    file(src, "ok1.bin", 70_000);
    file(src, "sub/ok2.bin", 3 * MIB + 5);
    file(src, "secret.bin", 1000);
    file(src, "ro/x.bin", 2000);
}

/// What the permission tests expect of `dst` after the run: the readable
/// files copied whole, nothing of the other two, no temporary file.
fn assert_permission_outcome(r: &Run, src: &Path, dst: &Path, codes: (&str, &str)) {
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        failures(r),
        vec![
            ("ro/x.bin".to_string(), codes.1.to_string()),
            ("secret.bin".to_string(), codes.0.to_string()),
        ],
        "exactly the two files fail, named: {}",
        r.stdout
    );
    for f in ["secret.bin", "ro/x.bin"] {
        assert_eq!(
            r.stderr.matches(f).count(),
            1,
            "one message names {f}: {}",
            r.stderr
        );
    }
    assert_eq!(copied(r), 2);
    for f in ["ok1.bin", "sub/ok2.bin"] {
        assert_eq!(
            fs::read(dst.join(f)).unwrap(),
            fs::read(src.join(f)).unwrap()
        );
    }
    assert!(!dst.join("secret.bin").exists());
    assert!(!dst.join("ro/x.bin").exists());
    assert_no_temp(dst);
}

#[test]
fn permission_denied_on_smb_source_files_and_an_smb_destination_directory() {
    let s = Samba::shared();
    // Download: a source file smbd (running as the share user) cannot read.
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-perm-smb");
    let src = share_dir.join("src");
    permission_tree(&src);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    chmod(&src.join("secret.bin"), 0o000);
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let r = smbcp(&[
        &smb(s, &format!("{rel}/src")),
        dst.to_str().unwrap(),
        "-s",
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        failures(&r),
        vec![("secret.bin".to_string(), "STATUS_ACCESS_DENIED".to_string())],
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr.matches("secret.bin").count(), 1, "{}", r.stderr);
    assert_eq!(copied(&r), 3);
    assert!(!dst.join("secret.bin").exists());
    assert_no_temp(&dst);

    // Upload: a destination directory smbd cannot write into.
    chmod(&src.join("secret.bin"), 0o644);
    let local_src = local.path().join("up-src");
    permission_tree(&local_src);
    let up = share_dir.join("up");
    fs::create_dir_all(up.join("ro")).unwrap();
    smb_fixture::chown_to_user(&up).unwrap();
    chmod(&up.join("ro"), 0o555);
    fs::remove_file(local_src.join("secret.bin")).unwrap();
    let r = smbcp(&[
        local_src.to_str().unwrap(),
        &smb(s, &format!("{rel}/up")),
        "-s",
        "--json",
        "-",
    ]);
    chmod(&up.join("ro"), 0o755);
    assert_eq!(r.code, 1, "{r:?}");
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "ro/x.bin");
    assert!(f[0].1.contains("ACCESS_DENIED"), "{f:?}");
    assert!(r.stderr.contains("ro/x.bin"), "{}", r.stderr);
    assert_eq!(copied(&r), 2);
    for f in ["ok1.bin", "sub/ok2.bin"] {
        assert_eq!(
            fs::read(up.join(f)).unwrap(),
            fs::read(local_src.join(f)).unwrap()
        );
    }
    assert!(!up.join("ro/x.bin").exists());
    assert_no_temp(&up);
}

#[test]
fn permission_denied_on_local_source_files_and_a_local_destination_directory() {
    // Run as the fixture's unprivileged user (root reads and writes
    // whatever the modes say).
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o755);
    let src = d.path().join("src");
    permission_tree(&src);
    chmod(&src.join("secret.bin"), 0o000);
    let dst = d.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    smb_fixture::chown_to_user(&dst).unwrap();
    // Root's, and read-only for everyone else.
    fs::create_dir_all(dst.join("ro")).unwrap();
    chmod(&dst.join("ro"), 0o555);
    let state = d.path().join("state");
    fs::create_dir_all(&state).unwrap();
    smb_fixture::chown_to_user(&state).unwrap();
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--clear-groups",
        ])
        .arg(env!("CARGO_BIN_EXE_smbcp"))
        .arg(&src)
        .arg(&dst)
        .args(["-s", "--json", "-", "--state-dir"])
        .arg(&state)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    let r = finish(out);
    assert_permission_outcome(&r, &src, &dst, ("EACCES", "EACCES"));
}

/// Sets the write time of `p`.
fn set_mtime(p: &Path, t: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// A destination that is larger than the source, or empty, with the
/// source's write time: the sizes differ, so both are copied again (no
/// stale tail is left past the new end); an empty file over an empty file
/// with the same time is skipped.
fn same_mtime_smaller_and_empty(src: &Path, dst: &Path, dst_arg: &str) {
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    file(src, "smaller.bin", 100_000);
    file(dst, "smaller.bin", 3 * MIB);
    file(src, "over-empty.bin", 5000);
    file(dst, "over-empty.bin", 0);
    file(src, "empty.bin", 0);
    file(dst, "empty.bin", 0);
    for f in ["smaller.bin", "over-empty.bin", "empty.bin"] {
        set_mtime(&src.join(f), t);
        set_mtime(&dst.join(f), t);
    }
    let r = smbcp(&[src.to_str().unwrap(), dst_arg, "-s", "--json", "-"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["files"]["copied"], 2, "{v}");
    assert_eq!(v["files"]["skipped"], 1, "{v}");
    assert_same_tree(src, dst);
    for f in ["smaller.bin", "over-empty.bin", "empty.bin"] {
        assert_eq!(
            fs::metadata(dst.join(f)).unwrap().modified().unwrap(),
            t,
            "{f} has the source's write time"
        );
    }
    // A second run finds nothing to do.
    let again = smbcp(&[src.to_str().unwrap(), dst_arg, "-s", "--json", "-"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(copied(&again), 0);
}

#[test]
fn a_smaller_or_empty_destination_with_the_same_write_time_is_copied_again() {
    let local = tempfile::tempdir().unwrap();
    let (src, dst) = (local.path().join("src"), local.path().join("dst"));
    same_mtime_smaller_and_empty(&src, &dst, dst.to_str().unwrap());

    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-same-mtime");
    let up = share_dir.join("up");
    fs::create_dir_all(&up).unwrap();
    smb_fixture::chown_to_user(&share_dir).unwrap();
    same_mtime_smaller_and_empty(&src, &up, &smb(s, &format!("{rel}/up")));
}

#[test]
fn a_full_smb_destination_stops_new_files_with_one_message() {
    // The share's directory is a 16 MiB tmpfs: smbd's writes fail with
    // ENOSPC, which it reports as STATUS_DISK_FULL.
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-full");
    let full = share_dir.join("full");
    fs::create_dir_all(&full).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs"])
        .arg(&full)
        .status()
        .expect("mount (the tests run as root)");
    assert!(
        mounted.success(),
        "cannot mount a 16 MiB tmpfs on {full:?} (needs root)"
    );
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    for n in ["a", "b", "c", "d", "e"] {
        file(&src, &format!("{n}.bin"), 6 * MIB);
    }
    let r = smbcp(&[
        src.to_str().unwrap(),
        &smb(s, &format!("{rel}/full")),
        "--mt",
        "1",
        "--json",
        "-",
    ]);
    let listing: Vec<(String, Vec<u8>)> = fs::read_dir(&full)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let _ = std::process::Command::new("umount").arg(&full).status();
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.matches("the destination is full").count(),
        1,
        "{}",
        r.stderr
    );
    let f = failures(&r);
    let codes: Vec<&str> = f.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "STATUS_DISK_FULL").count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| *c == "STATUS_DISK_FULL" || *c == "DEST_FULL"),
        "{codes:?}"
    );
    assert_eq!(copied(&r) + f.len() as u64, 5);
    assert!(copied(&r) >= 1);
    // Only complete files under final names, no temporary file.
    for (name, bytes) in &listing {
        assert!(!name.contains(".smbcp-"), "temporary file left: {name}");
        assert!(
            *bytes == fs::read(src.join(name)).unwrap(),
            "{name} is complete"
        );
    }
    assert_eq!(listing.len() as u64, copied(&r));
}

/// Asserts two files hold the same bytes, reading both in 8 MiB pieces.
fn assert_same_file(a: &Path, b: &Path) {
    use std::io::Read as _;
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    assert_eq!(fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    let (mut ba, mut bb) = (vec![0u8; 8 * MIB], vec![0u8; 8 * MIB]);
    let mut off = 0u64;
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            break;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        assert!(
            ba[..n] == bb[..n],
            "{a:?} and {b:?} differ in the 8 MiB at {off}"
        );
        off += n as u64;
    }
}

/// Bytes the file system holds for `p`.
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn a_sparse_file_past_4_gib_is_identical_after_upload_and_download_and_stays_sparse() {
    use std::os::unix::fs::FileExt as _;
    const GIB: u64 = 1 << 30;
    let size = 4 * GIB + MIB as u64;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let big = src.join("sparse.bin");
    {
        // Distinct data just below and just above 4 GiB (32-bit offsets
        // would wrap there), a hole everywhere else.
        let f = fs::File::create(&big).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(&data(MIB, 1), 4 * GIB - MIB as u64).unwrap();
        f.write_all_at(&data(MIB, 2), 4 * GIB).unwrap();
        f.write_all_at(b"first bytes", 0).unwrap();
    }
    assert!(allocated(&big) < 16 * MIB as u64, "the source is sparse");

    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "faults-sparse");
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let up = smbcp(&[
        src.to_str().unwrap(),
        &smb(s, &format!("{rel}/up")),
        "--json",
        "-",
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    let remote = share_dir.join("up/sparse.bin");
    assert_same_file(&big, &remote);
    // The holes were not written: smbd's file is as sparse as ours.
    assert!(
        allocated(&remote) < 64 * MIB as u64,
        "{} bytes allocated on the share",
        allocated(&remote)
    );

    // Back down through memory (zero-copy would write every byte it
    // receives, holes included).
    let dst = local.path().join("dst");
    let down = smbcp(&[
        &smb(s, &format!("{rel}/up")),
        dst.to_str().unwrap(),
        "--zero-copy",
        "never",
        "--json",
        "-",
    ]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_same_file(&big, &dst.join("sparse.bin"));
    assert!(
        allocated(&dst.join("sparse.bin")) < 64 * MIB as u64,
        "{} bytes allocated",
        allocated(&dst.join("sparse.bin"))
    );
    assert_no_temp(&dst);
    fs::remove_file(&remote).unwrap();
}
