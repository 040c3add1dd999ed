//! End to end against the real Samba fixture: the real binary copies in every
//! direction (download, upload, SMB→SMB), checked byte for byte through the
//! share's local directory, and bad credentials or servers fail cleanly.

#[path = "e2e_util.rs"]
mod util;

use smb_fixture::{Samba, ENC_SHARE, PASSWORD, SHARE, USER};
use util::*;

fn samba() -> &'static Samba {
    Samba::shared()
}

/// A delay proxy at +0 ms in front of `s`: bursty delivery, and byte counts.
fn proxy_to(s: &Samba) -> (std::net::SocketAddr, std::sync::Arc<delay_proxy::Stats>) {
    let upstream = format!("127.0.0.1:{}", s.port()).parse().unwrap();
    delay_proxy::spawn(
        "127.0.0.1:0",
        delay_proxy::Config::new(upstream, std::time::Duration::ZERO),
    )
    .unwrap()
}

#[test]
fn download_upload_and_smb_to_smb_byte_for_byte() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "dirs");
    standard_tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let down = local.path().join("down");

    // Download.
    let src_url = s.url(SHARE, &format!("{rel}/src"));
    let r = smbcp(&[
        &src_url,
        down.to_str().unwrap(),
        "--mirror",
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&share_dir.join("src"), &down);
    assert_eq!(copied(&r), 12, "{}", r.stderr);

    // Upload (to a new directory on the share).
    let up_url = s.url(SHARE, &format!("{rel}/up"));
    let r = smbcp(&[
        down.to_str().unwrap(),
        &up_url,
        "--mirror",
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&down, &share_dir.join("up"));

    // SMB → SMB on the same connection.
    let copy_url = s.url(SHARE, &format!("{rel}/copy"));
    let r = smbcp(&[
        &up_url, &copy_url, "--mirror", "--user", USER, "--json", "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&share_dir.join("src"), &share_dir.join("copy"));

    // A second run of each copies nothing and exits 0.
    let down_s = down.to_str().unwrap();
    for (a, b) in [
        (src_url.as_str(), down_s),
        (down_s, up_url.as_str()),
        (up_url.as_str(), copy_url.as_str()),
    ] {
        let r = smbcp(&[a, b, "--mirror", "--user", USER, "--json", "-"]);
        assert_eq!((r.code, copied(&r)), (0, 0), "{a} -> {b}: {r:?}");
    }
}

#[test]
fn unc_spellings_and_url_user() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "unc");
    file(&share_dir, "src/f.txt", 1000);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}/src", s.port());
    let r = smbcp(&[url.as_str(), out.path().join("a").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&share_dir.join("src"), &out.path().join("a"));
}

#[test]
fn upload_mirror_deletes_extras_on_the_share() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "mir");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "keep.txt", 10);
    file(&share_dir, "dst/keep.txt", 3);
    file(&share_dir, "dst/extra.txt", 3);
    file(&share_dir, "dst/extradir/x.txt", 3);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let url = s.url(SHARE, &format!("{rel}/dst"));
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &url,
        "--user",
        USER,
        "--mirror",
        "--max-delete",
        "1",
    ]);
    assert_eq!(r.code, 1, "over --max-delete: {r:?}");
    assert!(share_dir.join("dst/extra.txt").exists());
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &url,
        "--user",
        USER,
        "--mirror",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(local.path(), &share_dir.join("dst"));
}

#[test]
fn mirror_to_a_share_matches_names_case_insensitively() {
    // On the share `Report.TXT` and `report.txt` are one file: a mirror must
    // update it, never copy it as new and then delete it as extra.
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "case");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "report.txt", 10);
    file(&share_dir, "REPORT.TXT", 3);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &s.url(SHARE, &rel),
        "--user",
        USER,
        "--mirror",
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["files"]["extras"], 0, "{r:?}");
    let names: Vec<_> = std::fs::read_dir(&share_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read(share_dir.join(&names[0])).unwrap(),
        std::fs::read(local.path().join("report.txt")).unwrap()
    );
}

#[test]
fn unbuffered_and_small_mt_over_smb() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "unbuf");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "big.bin", 17 * MIB + 5);
    file(local.path(), "small.bin", 5);
    let url = s.url(SHARE, &rel);
    for mt in ["1", "32"] {
        let r = smbcp(&[
            local.path().to_str().unwrap(),
            &url,
            "--user",
            USER,
            "--unbuffered",
            "--mt",
            mt,
            "--include-same",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_same_tree(local.path(), &share_dir);
    }
}

#[test]
fn wrong_password_is_fatal_and_touches_nothing() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "badpw");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "f", 1);
    let url = s.url(SHARE, &format!("{rel}/dst"));
    let r = smbcp_env(
        &[local.path().to_str().unwrap(), &url, "--user", USER],
        &[("SMBCP_PASSWORD", "wrong")],
    );
    assert_one_line_error(&r, 3);
    assert!(!share_dir.join("dst").exists());
    let r = smbcp_env(
        &[
            local.path().to_str().unwrap(),
            &url,
            "--user",
            USER,
            "--exit-codes",
            "robocopy",
        ],
        &[("SMBCP_PASSWORD", "wrong")],
    );
    assert_eq!(r.code, 16, "{r:?}");
}

#[test]
fn guest_is_explicit_and_refused_by_this_server() {
    // The fixture maps no one to guest: --guest must reach the server and fail there.
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "guest");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "f", 1);
    let url = s.url(SHARE, &format!("{rel}/dst"));
    let r = smbcp_env(&[local.path().to_str().unwrap(), &url, "--guest"], &[]);
    assert_one_line_error(&r, 3);
    assert!(
        r.stderr.contains("STATUS_ACCESS_DENIED") || r.stderr.contains("log on"),
        "{r:?}"
    );
    assert!(!share_dir.join("dst").exists());
}

/// Every `--zero-copy` mode copies the same bytes both ways; the JSON says
/// which data path ran and where the in-flight window went. The fixture is
/// on loopback, so `auto` downloads through the kernel and uploads through
/// memory (see `ZeroCopy::Auto`); `always` splices uploads too.
#[test]
fn zero_copy_modes_copy_the_same_bytes_and_report_their_path() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "zerocopy");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    file(&src, "small.bin", 8 * 1024 + 3);
    file(&src, "medium.bin", 3 * MIB + 17);
    file(&src, "big.bin", 24 * MIB + 1);
    for (mode, up_direct, down_direct) in [
        ("auto", false, true),
        ("always", true, true),
        ("never", false, false),
    ] {
        let url = s.url(SHARE, &format!("{rel}/{mode}"));
        let up = smbcp(&[
            src.to_str().unwrap(),
            &url,
            "--user",
            USER,
            "--zero-copy",
            mode,
            // Zero-copy needs an unsigned session; signing is the default.
            "--no-sign",
            "--json",
            "-",
        ]);
        assert_eq!(up.code, 0, "{mode}: {up:?}");
        assert_same_tree(&src, &share_dir.join(mode));
        let down_dir = local.path().join(format!("down-{mode}"));
        let down = smbcp(&[
            &url,
            down_dir.to_str().unwrap(),
            "--user",
            USER,
            "--zero-copy",
            mode,
            // Zero-copy needs an unsigned session; signing is the default.
            "--no-sign",
            "--json",
            "-",
        ]);
        assert_eq!(down.code, 0, "{mode}: {down:?}");
        assert_same_tree(&src, &down_dir);
        for (run, direct) in [(&up, up_direct), (&down, down_direct)] {
            let w = &run.json()["window"];
            assert_eq!(w["zero_copy"], direct, "{mode}: {w}");
            let start = w["start_bytes"].as_u64().unwrap();
            assert!(start >= 16 * MIB as u64, "{mode}: {w}");
            assert!(w["peak_bytes"].as_u64().unwrap() >= w["final_bytes"].as_u64().unwrap());
            assert!(w["final_bytes"].as_u64().unwrap() >= start, "{mode}: {w}");
            assert!(w["rtt_ms"].as_f64().unwrap() > 0.0, "{mode}: {w}");
        }
    }
}

#[test]
fn summary_of_a_download_and_an_upload() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "summary");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "big-1.bin", 24 * MIB);
    file(local.path(), "big-2.bin", 24 * MIB + 1);
    for i in 0..50 {
        file(local.path(), &format!("small/{i}.txt"), 1000 + i);
    }
    let url = s.url(SHARE, &format!("{rel}/data"));
    let up = smbcp(&[
        local.path().to_str().unwrap(),
        &url,
        "-e",
        "--user",
        USER,
        "--mt",
        "16",
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(
        up.stdout.contains("   Files :          52          52"),
        "{}",
        up.stdout
    );
    let down_dir = local.path().join("down");
    let down = smbcp(&[
        url.as_str(),
        down_dir.to_str().unwrap(),
        "-e",
        "--user",
        USER,
        "--mt",
        "16",
        "--no-file-list",
    ]);
    assert_eq!(down.code, 0, "{down:?}");
    assert!(down.stdout.contains("Gbit/s"), "{}", down.stdout);
    assert!(
        down.stdout.contains("  Window : ") && down.stdout.contains(" in flight (started at "),
        "{}",
        down.stdout
    );
    assert_same_tree(&share_dir.join("data"), &down_dir);
    // Shown with --nocapture: the closing summaries of both directions.
    let tail = |r: &Run| r.stdout[r.stdout.find("-----").unwrap()..].to_string();
    println!("UPLOAD\n{}\nDOWNLOAD\n{}", tail(&up), tail(&down));
}

#[test]
fn read_only_share_fails_per_file_with_ntstatus_and_no_retries() {
    let s = samba();
    let (rel, ro_dir) = s.unique_dir(smb_fixture::RO_SHARE, "ro");
    file(&ro_dir, "in/f.txt", 10);
    smb_fixture::chown_to_user(&ro_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "up/a.txt", 10);
    file(local.path(), "up/b.bin", 9 * MIB);
    let url = s.url(smb_fixture::RO_SHARE, &rel);
    let t0 = std::time::Instant::now();
    let r = smbcp(&[
        local.path().join("up").to_str().unwrap(),
        &url,
        "--user",
        USER,
        "--retries",
        "5",
        "--wait",
        "10s",
        "--json",
        "-",
    ]);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "access denied must not be retried"
    );
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["files"]["failed"], 2, "{r:?}");
    for f in j["failures"].as_array().unwrap() {
        let code = f["code"].as_str().unwrap();
        assert!(code.starts_with("STATUS_"), "{f}");
    }
    assert!(!ro_dir.join("a.txt").exists());
    // Reading from it works.
    let r = smbcp(&[
        s.url(smb_fixture::RO_SHARE, &format!("{rel}/in")).as_str(),
        local.path().join("down").to_str().unwrap(),
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&ro_dir.join("in"), &local.path().join("down"));
}

#[test]
fn unreachable_server_and_missing_share_are_fatal() {
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let r = smbcp(&[
        "smb://127.0.0.1:1/share/x",
        dst.to_str().unwrap(),
        "--user",
        USER,
        "--timeout",
        "5s",
    ]);
    assert_one_line_error(&r, 3);
    assert!(!dst.exists());
    let url = samba().url("no-such-share", "x");
    let r = smbcp(&[url.as_str(), dst.to_str().unwrap(), "--user", USER]);
    assert_one_line_error(&r, 3);
    assert!(!dst.exists());
}

#[test]
fn smb_dest_inside_smb_source_is_refused() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "nest");
    file(&share_dir, "f", 1);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let inner = s.url(SHARE, &format!("{rel}/Inner"));
    let r = smbcp(&[
        s.url(SHARE, &rel).as_str(),
        inner.as_str(),
        "-s",
        "--user",
        USER,
    ]);
    assert_one_line_error(&r, 2);
    let r = smbcp(&[
        s.url(SHARE, &rel).as_str(),
        s.url(SHARE, &rel).as_str(),
        "--user",
        USER,
    ]);
    assert_one_line_error(&r, 2);
    assert!(!share_dir.join("Inner").exists());
}

#[test]
fn upload_creates_missing_parents_and_share_roots_work() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "parents");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "src/x/f.txt", 100);
    let url = s.url(SHARE, &format!("{rel}/a/b/c"));
    let r = smbcp(&[
        local.path().join("src").to_str().unwrap(),
        &url,
        "-s",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&local.path().join("src"), &share_dir.join("a/b/c"));
    // The root of a share as SOURCE (listing only: other tests write there too).
    let (_, ro_dir) = s.unique_dir(smb_fixture::RO_SHARE, "root");
    file(&ro_dir, "r.txt", 5);
    smb_fixture::chown_to_user(&ro_dir).unwrap();
    let root = s.url(smb_fixture::RO_SHARE, "");
    let r = smbcp(&[
        &root,
        local.path().join("rootcopy").to_str().unwrap(),
        "-s",
        "-l",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("r.txt"), "{r:?}");
}

#[test]
fn times_and_attributes_survive_upload_and_download() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "times");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    file(&src, "d/f.txt", 10);
    file(&src, "big.bin", 9 * MIB);
    let old = |secs: u64| {
        filetime::FileTime::from_system_time(
            std::time::SystemTime::now() - std::time::Duration::from_secs(secs),
        )
    };
    filetime::set_file_mtime(src.join("d/f.txt"), old(86_400)).unwrap();
    filetime::set_file_mtime(src.join("big.bin"), old(2 * 86_400)).unwrap();
    filetime::set_file_mtime(src.join("d"), old(3 * 86_400)).unwrap();
    filetime::set_file_mtime(&src, old(4 * 86_400)).unwrap();
    let url = s.url(SHARE, &format!("{rel}/up"));
    let r = smbcp(&[
        src.to_str().unwrap(),
        &url,
        "-s",
        "--dcopy",
        "T",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ticks = |p: &std::path::Path| {
        let t = std::fs::metadata(p).unwrap().modified().unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() / 100
    };
    // "": --dcopy T sets DEST's root too.
    for p in ["d/f.txt", "big.bin", "d", ""] {
        assert_eq!(
            ticks(&share_dir.join("up").join(p)),
            ticks(&src.join(p)),
            "upload: {p}"
        );
    }
    let down = local.path().join("down");
    let r = smbcp(&[
        url.as_str(),
        down.to_str().unwrap(),
        "-s",
        "--dcopy",
        "T",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    for p in ["d/f.txt", "big.bin", "d", ""] {
        assert_eq!(ticks(&down.join(p)), ticks(&src.join(p)), "download: {p}");
    }
    // Read-only travels as FILE_ATTRIBUTE_READONLY both ways.
    std::fs::set_permissions(src.join("d/f.txt"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let r = smbcp(&[
        src.to_str().unwrap(),
        &url,
        "-s",
        "--include-same",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = smbcp(&[
        url.as_str(),
        down.to_str().unwrap(),
        "-s",
        "--include-same",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::metadata(down.join("d/f.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o222,
        0
    );
    // Replacing a read-only file works in both directions.
    file(&src, "d/f.txt", 11);
    let r = smbcp(&[src.to_str().unwrap(), &url, "-s", "--user", USER]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = smbcp(&[url.as_str(), down.to_str().unwrap(), "-s", "--user", USER]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(down.join("d/f.txt")).unwrap(),
        std::fs::read(src.join("d/f.txt")).unwrap()
    );
}

#[test]
fn smb_to_smb_across_two_servers_with_signing_and_encryption() {
    // Two smbd instances (two connections); the second requires signing, and
    // the ENC_SHARE share requires encryption.
    let a = samba();
    let b = Samba::get(&smb_fixture::ServerConfig::new().signing_mandatory());
    let (rel_a, dir_a) = a.unique_dir(SHARE, "x2-src");
    standard_tree(&dir_a);
    smb_fixture::chown_to_user(&dir_a).unwrap();
    let (rel_b, dir_b) = b.unique_dir(SHARE, "x2-dst");
    let r = smbcp(&[
        a.url(SHARE, &rel_a).as_str(),
        b.url(SHARE, &rel_b).as_str(),
        "-e",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&dir_a, &dir_b);
    let (rel_e, dir_e) = a.unique_dir(ENC_SHARE, "enc");
    let r = smbcp(&[
        b.url(SHARE, &rel_b).as_str(),
        a.url(ENC_SHARE, &rel_e).as_str(),
        "-e",
        "--user",
        USER,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&dir_a, &dir_e);
}

/// SMB → SMB on one server goes over one connection, so the server copies
/// the file data itself (FSCTL_SRV_COPYCHUNK_WRITE): counted at a proxy in
/// between, the data of the files of 1 MiB and more never comes down to
/// smbcp. Small files still go through it.
#[test]
fn smb_to_smb_on_one_server_is_copied_by_the_server() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "srvcopy");
    let src = share_dir.join("src");
    file(&src, "big.bin", 24 * MIB + 1);
    file(&src, "medium.bin", 3 * MIB + 17);
    file(&src, "sub/two.bin", 2 * MIB);
    file(&src, "small.txt", 8 * 1024 + 3);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let (proxy, stats) = proxy_to(s);
    let src_url = format!("smb://{proxy}/{SHARE}/{rel}/src");
    let copy = |dst: &str| smbcp(&[&src_url, dst, "-s", "--user", USER, "--json", "-"]);
    let dst_url = format!("smb://{proxy}/{SHARE}/{rel}/dst");
    let r = copy(&dst_url);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &share_dir.join("dst"));
    assert_eq!(r.json()["window"]["server_copy"], true, "{r:?}");
    let down = stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed);
    let up = stats.bytes_up.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        down < 2 * MIB as u64 && up < 2 * MIB as u64,
        "29 MiB of data crossed the wire: {down} bytes down, {up} up"
    );
    // A second run finds everything the same.
    let r = copy(&dst_url);
    assert_eq!((r.code, copied(&r)), (0, 0), "{r:?}");
    // Another share of the same server (encrypted) is on the same connection too.
    let (rel_e, dir_e) = s.unique_dir(ENC_SHARE, "srvcopy");
    let before = stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed);
    let enc = format!("smb://{proxy}/{}/{rel_e}", ENC_SHARE);
    let r = copy(&enc);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dir_e);
    let down = stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(r.json()["window"]["server_copy"], true, "{r:?}");
    assert!(down < 2 * MIB as u64, "{down} bytes came down");
}

#[test]
fn sign_no_sign_and_encrypt_flags() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "prot");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "big.bin", 9 * MIB + 1);
    file(local.path(), "small.txt", 100);
    for (i, flag) in ["--sign", "--no-sign", "--encrypt"].iter().enumerate() {
        let url = s.url(SHARE, &format!("{rel}/{i}"));
        let r = smbcp(&[local.path().to_str().unwrap(), &url, "--user", USER, flag]);
        assert_eq!(r.code, 0, "{flag}: {r:?}");
        assert_same_tree(local.path(), &share_dir.join(i.to_string()));
    }
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &s.url(SHARE, &rel),
        "--sign",
        "--no-sign",
    ]);
    assert_one_line_error(&r, 2);
}

#[test]
fn password_prompt_on_a_terminal() {
    // `script` runs smbcp on a pseudo-terminal and forwards our stdin to it.
    use std::io::Write as _;
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "prompt");
    file(&share_dir, "src/f.txt", 10);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("d");
    let cmd = format!(
        "{} {} {} --user {USER} --no-progress",
        env!("CARGO_BIN_EXE_smbcp"),
        s.url(SHARE, &format!("{rel}/src")),
        dst.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("SMBCP_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed for the prompt test");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Answer once the prompt is shown and echo is off: rpassword turns echo
    // off a few system calls after writing the prompt, so give it a moment.
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        let mut answered = false;
        loop {
            let n = stdout.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if !answered && String::from_utf8_lossy(&seen).contains("Password for") {
                std::thread::sleep(std::time::Duration::from_millis(300));
                writeln!(stdin, "{PASSWORD}").unwrap();
                answered = true;
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("Password for"), "{out}");
    assert!(!out.contains(PASSWORD), "the password was echoed: {out}");
    assert_same_tree(&share_dir.join("src"), &dst);
}

#[test]
fn missing_smb_source_is_fatal() {
    let s = samba();
    let (rel, _) = s.unique_dir(SHARE, "nosrc");
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let r = smbcp(&[
        s.url(SHARE, &format!("{rel}/missing")).as_str(),
        dst.to_str().unwrap(),
        "--user",
        USER,
    ]);
    assert_one_line_error(&r, 3);
    assert!(!dst.exists());
}

#[test]
fn password_sources() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "creds");
    file(&share_dir, "src/f.txt", 10);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let url = s.url(SHARE, &format!("{rel}/src"));
    let local = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let pwfile = secrets.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dst = local.path().join("a");
    let r = smbcp_env(
        &[
            url.as_str(),
            dst.to_str().unwrap(),
            "-u",
            USER,
            "--password-file",
            pwfile.to_str().unwrap(),
        ],
        &[],
    );
    assert_one_line_error(&r, 2);
    assert!(r.stderr.contains("chmod 600"), "{r:?}");
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = smbcp_env(
        &[
            url.as_str(),
            dst.to_str().unwrap(),
            "-u",
            USER,
            "--password-file",
            pwfile.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");

    let auth = secrets.path().join("auth");
    std::fs::write(
        &auth,
        format!("username={USER}\npassword={PASSWORD}\ndomain=WORKGROUP\n"),
    )
    .unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = smbcp_env(
        &[
            url.as_str(),
            local.path().join("b").to_str().unwrap(),
            "--auth-file",
            auth.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_smbcp"));
    cmd.args([
        url.as_str(),
        local.path().join("c").to_str().unwrap(),
        "-u",
        USER,
        "--password-stdin",
    ])
    .env_remove("SMBCP_PASSWORD")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write as _;
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    for d in ["a", "b", "c"] {
        assert_same_tree(&share_dir.join("src"), &local.path().join(d));
    }
    // No password anywhere and no terminal: a usage error, nothing touched.
    let r = smbcp_env(
        &[
            url.as_str(),
            local.path().join("d").to_str().unwrap(),
            "-u",
            USER,
        ],
        &[],
    );
    assert_one_line_error(&r, 2);
    assert!(!local.path().join("d").exists());
}

/// Big files through the benchmark's splicing delay proxy at +0 ms: data
/// arrives in bursts of many small socket buffers, which fill the receive
/// pipe of the zero-copy READ path (capacity counted in pages) while more
/// data waits in the socket. A reader that took "pipe full" for "socket
/// empty" waited for a wake-up that never came and stalled near the end of
/// the transfer (seen in the benchmark). With `--timeout 10s --retries 0`
/// a stall fails the run instead of hanging it.
#[test]
fn big_files_through_a_bursty_proxy_complete() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "bursty");
    let src = share_dir.join("src");
    for i in 0..12 {
        file(&src, &format!("f{i:02}.bin"), 3 * 1024 * 1024 + i * 4099);
    }
    file(&src, "big.bin", 40 * 1024 * 1024);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let (proxy, stats) = proxy_to(s);
    let url = format!("smb://{}/{SHARE}/{rel}/src", proxy);
    let local = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let down = local.path().join(format!("down{round}"));
        let r = smbcp(&[
            &url,
            down.to_str().unwrap(),
            "--user",
            USER,
            "--no-sign",
            "--timeout",
            "10s",
            "--retries",
            "0",
        ]);
        assert_eq!(r.code, 0, "round {round}: {r:?}");
        assert_same_tree(&src, &down);
    }
    assert!(stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed) > 3 * 70 * 1024 * 1024);
}

/// A server that maps bad passwords and unknown users to guest.
fn guest_mapping_samba() -> &'static Samba {
    Samba::get(
        &smb_fixture::ServerConfig::new()
            .global("map to guest = Bad Password")
            .guest_share(),
    )
}

#[test]
fn a_logon_made_guest_is_refused_unless_guest_was_asked_for() {
    let s = guest_mapping_samba();
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "f", 3);
    let guest_dir = s.share_path(smb_fixture::GUEST_SHARE);
    // A wrong password: the server would log us on as guest; we refuse.
    let r = smbcp_env(
        &[
            local.path().to_str().unwrap(),
            &s.url(smb_fixture::GUEST_SHARE, "wrongpw"),
            "--user",
            USER,
        ],
        &[("SMBCP_PASSWORD", "wrong")],
    );
    assert_one_line_error(&r, 3);
    assert!(
        r.stderr.contains(
            "the server logged us on as a guest: wrong password or unknown user? use --guest to allow"
        ),
        "{r:?}"
    );
    assert!(!guest_dir.join("wrongpw").exists());
    // --guest: allowed, unsigned, and the summary and JSON say so.
    let r = smbcp_env(
        &[
            local.path().to_str().unwrap(),
            &s.url(smb_fixture::GUEST_SHARE, "asked"),
            "--guest",
            "--json",
            "-",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["guest"], true, "{r:?}");
    assert!(
        r.stderr
            .contains("   Logon : guest (--guest: no password, unsigned)"),
        "{r:?}"
    );
    assert_eq!(std::fs::read(guest_dir.join("asked/f")).unwrap().len(), 3);
    // A user logon says nothing of the kind.
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &s.url(smb_fixture::GUEST_SHARE, "user"),
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!(
        (r.code, r.json()["guest"].as_bool()),
        (0, Some(false)),
        "{r:?}"
    );
    // It names the mechanism, not a guest.
    assert!(r.stderr.contains("   Logon : NTLMv2\n"), "{r:?}");
}

#[test]
fn names_differing_only_in_case_fail_on_a_share_and_neither_is_copied() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "collide");
    let local = tempfile::tempdir().unwrap();
    file(local.path(), "Report.txt", 10);
    file(local.path(), "report.TXT", 20);
    file(local.path(), "ok.txt", 5);
    file(local.path(), "sub/x", 1);
    file(local.path(), "SUB/y", 2);
    // What DEST holds under that name stays as it was.
    std::fs::write(share_dir.join("REPORT.TXT"), b"old").unwrap();
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let r = smbcp(&[
        local.path().to_str().unwrap(),
        &s.url(SHARE, &rel),
        "--subdirs",
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    let mut failed: Vec<(String, String)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    failed.sort();
    let code = "NAME_COLLISION".to_string();
    assert_eq!(
        failed,
        [
            ("Report.txt".to_string(), code.clone()),
            ("SUB".to_string(), code.clone()),
            ("report.TXT".to_string(), code.clone()),
            ("sub".to_string(), code),
        ],
        "{r:?}"
    );
    assert_eq!(v["files"]["failed"], 2, "{r:?}");
    assert_eq!(v["files"]["copied"], 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "copy report.TXT: NAME_COLLISION: name collision: differs only in case from Report.txt"
        ),
        "{r:?}"
    );
    let mut names: Vec<_> = std::fs::read_dir(&share_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["REPORT.TXT", "ok.txt"]);
    assert_eq!(std::fs::read(share_dir.join("REPORT.TXT")).unwrap(), b"old");
}

#[test]
fn max_dir_entries_bounds_an_smb_listing() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "maxdir");
    for i in 0..8 {
        file(&share_dir, &format!("f{i}"), 1);
    }
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let args = |n: &'static str| {
        vec![
            s.url(SHARE, &rel),
            local.path().join("d").to_str().unwrap().to_string(),
            "--user".into(),
            USER.into(),
            "--max-dir-entries".into(),
            n.into(),
            "--json".into(),
            "-".into(),
        ]
    };
    let r = smbcp(&args("5"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("more than 5 entries without an end"),
        "{r:?}"
    );
    assert_eq!(r.json()["files"]["copied"], 0, "{r:?}");
    let r = smbcp(&args("8"));
    assert_eq!((r.code, copied(&r)), (0, 8), "{r:?}");
}

/// The DOS attributes of `rel` (`/`-separated) on `share` of `s`, as an SMB
/// client sees them, after setting them to `set` when given (Samba keeps
/// them in an xattr; a file made on its disk has none and reads as `N`).
fn smb_attributes(s: &Samba, share: &str, rel: &str, set: Option<u32>) -> u32 {
    let t = set.map(|a| smb_core::FileTimes {
        attributes: Some(a),
        ..smb_core::FileTimes::default()
    });
    smb_info(s, share, rel, t).attributes
}

/// What an SMB client sees of `rel` on `share` of `s`, after setting `set`.
fn smb_info(
    s: &Samba,
    share: &str,
    rel: &str,
    set: Option<smb_core::FileTimes>,
) -> smb_core::FileInfo {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            smb_core::Client::connect(s.host(), s.port(), smb_core::ClientConfig::default())
                .await
                .unwrap();
        let creds = smb_core::Credentials {
            user: USER.into(),
            password: PASSWORD.to_string().into(),
            ..smb_core::Credentials::default()
        };
        let session = client.session_setup(&creds).await.unwrap();
        let tree = session.tree_connect(share).await.unwrap();
        let path = rel.replace('/', "\\");
        if let Some(t) = set {
            tree.set_times(&path, t).await.unwrap();
        }
        let info = tree.stat(&path).await.unwrap();
        let _ = tree.disconnect().await;
        info
    })
}

/// Attribute letters of the bits a copy carries (R H S A; N when none).
fn attr_letters(a: u32) -> String {
    let mut s: String = [(0x1, 'R'), (0x2, 'H'), (0x4, 'S'), (0x20, 'A')]
        .iter()
        .filter(|(bit, _)| a & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    if s.is_empty() {
        s.push('N');
    }
    s
}

/// SMB → SMB keeps the attributes exactly as the source has them: a file
/// without the Archive bit (`N`) stays `N`, not Hidden, for small files (one
/// compound), big ones (blocks) and files the server copies (COPYCHUNK),
/// between two shares of one server and between two servers; a second run
/// then finds every file the same.
#[test]
fn smb_to_smb_copies_attributes_exactly() {
    let a = samba();
    let b = Samba::get(&smb_fixture::ServerConfig::new().signing_mandatory());
    let (rel, share_dir) = a.unique_dir(SHARE, "attrs");
    let src = share_dir.join("src");
    // `N` is what Samba reports for a file made on its disk (no stored DOS
    // attributes, no owner-execute bit): the case that came out Hidden.
    let cases = [
        ("n", None, "N"),
        ("r", Some(0x1), "R"),
        ("a", Some(0x20), "A"),
    ];
    let sizes = [
        ("small", 1000),
        ("small2", 100 * 1024),
        ("one", 1),
        ("empty", 0),
        ("big", 9 * MIB + 5),
        ("mid", 2 * MIB),
    ];
    for (name, _, _) in cases {
        for (suffix, len) in sizes {
            file(&src, &format!("{name}-{suffix}.bin"), len);
        }
    }
    smb_fixture::chown_to_user(&share_dir).unwrap();
    for (name, set, want) in cases {
        for (suffix, _) in sizes {
            let p = format!("{rel}/src/{name}-{suffix}.bin");
            assert_eq!(
                attr_letters(smb_attributes(a, SHARE, &p, set)),
                want,
                "source {p}"
            );
        }
    }
    let src_url = a.url(SHARE, &format!("{rel}/src"));
    let (rel_e, _) = a.unique_dir(ENC_SHARE, "attrs");
    let (rel_b, _) = b.unique_dir(SHARE, "attrs");
    for (server, share, dst) in [(a, ENC_SHARE, rel_e.as_str()), (b, SHARE, rel_b.as_str())] {
        let dst_url = server.url(share, dst);
        let r = smbcp(&[src_url.as_str(), &dst_url, "--user", USER]);
        assert_eq!(r.code, 0, "{r:?}");
        let mut bad = Vec::new();
        for (name, _, want) in cases {
            for (suffix, _) in sizes {
                let p = format!("{name}-{suffix}.bin");
                let got = attr_letters(smb_attributes(server, share, &format!("{dst}/{p}"), None));
                if got != want {
                    bad.push(format!("{share}: {p}: {got}, not {want}"));
                }
            }
        }
        let r = smbcp(&[src_url.as_str(), &dst_url, "--user", USER, "--json", "-"]);
        assert_eq!(
            (r.code, copied(&r)),
            (0, 0),
            "a second run copies nothing: {r:?}"
        );
    }
}

/// A file as SOURCE is copied into DEST (robocopy `DIR DEST NAME`), from a
/// share and from a local disk; the other files beside it are not; options
/// that need a directory SOURCE are refused in one line.
#[test]
fn a_single_file_source_is_copied_into_dest() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "single");
    file(&share_dir, "dir/file.bin", 3 * MIB + 7);
    file(&share_dir, "dir/small.txt", 100);
    file(&share_dir, "dir/other.bin", 10);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let out = local.path().join("out");
    for name in ["file.bin", "small.txt"] {
        let url = s.url(SHARE, &format!("{rel}/dir/{name}"));
        let r = smbcp(&[
            url.as_str(),
            &format!("{}/", out.display()),
            "--user",
            USER,
            "--json",
            "-",
        ]);
        assert_eq!((r.code, copied(&r)), (0, 1), "{r:?}");
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(share_dir.join("dir").join(name)).unwrap()
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["file.bin", "small.txt"]);
    // Local file → SMB directory (created).
    let up = s.url(SHARE, &format!("{rel}/up"));
    let r = smbcp(&[
        out.join("file.bin").to_str().unwrap(),
        &up,
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!((r.code, copied(&r)), (0, 1), "{r:?}");
    assert_eq!(
        std::fs::read(share_dir.join("up/file.bin")).unwrap(),
        std::fs::read(out.join("file.bin")).unwrap()
    );
    // A second run finds it the same.
    let r = smbcp(&[
        out.join("file.bin").to_str().unwrap(),
        &up,
        "--user",
        USER,
        "--json",
        "-",
    ]);
    assert_eq!((r.code, copied(&r)), (0, 0), "{r:?}");
    // A directory-only option is refused in one line, nothing deleted.
    let url = s.url(SHARE, &format!("{rel}/dir/file.bin"));
    let r = smbcp(&[
        url.as_str(),
        out.to_str().unwrap(),
        "--mirror",
        "--user",
        USER,
    ]);
    assert_one_line_error(&r, 2);
    assert!(r.stderr.contains("is a file"), "{r:?}");
    assert!(out.join("small.txt").exists());
}

/// Fatal errors reach the log file: `--log` truncates the previous run's
/// text and holds the error line, `--log-append` keeps it and adds the line
/// (a wrong password, a missing SMB source).
#[test]
fn fatal_errors_reach_the_log_file() {
    let s = samba();
    let (rel, _) = s.unique_dir(SHARE, "fatallog");
    let local = tempfile::tempdir().unwrap();
    file(&local.path().join("src"), "f", 1);
    let log = local.path().join("run.log");
    let src = local.path().join("src");
    let url = s.url(SHARE, &format!("{rel}/dst"));
    std::fs::write(&log, "previous run\n").unwrap();
    let r = smbcp_env(
        &[
            src.to_str().unwrap(),
            &url,
            "--user",
            USER,
            "--log",
            log.to_str().unwrap(),
        ],
        &[("SMBCP_PASSWORD", "wrong")],
    );
    assert_one_line_error(&r, 3);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("previous run"), "{text}");
    let line = r.stderr.trim().trim_start_matches("smbcp: error: ");
    assert!(
        text.contains(&format!("ERROR: {line}")) && text.contains("log on"),
        "{text}"
    );
    let missing = s.url(SHARE, &format!("{rel}/no-such-dir"));
    let out = local.path().join("out");
    let r = smbcp(&[
        missing.as_str(),
        out.to_str().unwrap(),
        "--user",
        USER,
        "--log-append",
        log.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 3);
    let appended = std::fs::read_to_string(&log).unwrap();
    assert!(appended.starts_with(&text), "{appended}");
    assert!(
        appended[text.len()..].contains("ERROR: ") && appended.contains("does not exist"),
        "{appended}"
    );
    assert!(!out.exists());
}

/// A server that accepts the connection and then answers nothing:
/// `--timeout 3s --retries 0` fails the run as a timeout (exit 3, one line
/// naming the timeout), after about one timeout (printed, not asserted: the
/// box is slow), and touches nothing.
#[test]
fn a_frozen_server_fails_after_the_timeout() {
    let s = samba();
    let (rel, _) = s.unique_dir(SHARE, "frozen");
    let proxy = smb_fixture::FaultProxy::start(s.addr());
    proxy.stall(true);
    let url = format!("smb://{}/{SHARE}/{rel}", proxy.addr());
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("dst");
    let started = std::time::Instant::now();
    let r = smbcp(&[
        url.as_str(),
        dst.to_str().unwrap(),
        "--user",
        USER,
        "--timeout",
        "3s",
        "--retries",
        "0",
        "--json",
        "-",
    ]);
    let took = started.elapsed();
    eprintln!("frozen server: exit {} after {took:?}", r.code);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(took >= std::time::Duration::from_secs(3), "{took:?}");
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("timed out") || err.contains("timeout"),
        "{err}"
    );
    assert!(r.stderr.lines().count() == 1, "{r:?}");
    assert!(!dst.exists());
    proxy.stall(false);
}

/// The server freezes in the middle of a download (connection open, no
/// more replies): with `--timeout 3s --retries 0 --reconnect-for 1s` the
/// request times out, the one reconnect attempt times out too, and the run
/// fails (exit 1) with the file recorded as timed out and no temp left; the
/// source handle is not closed on the frozen connection (which cost one more
/// timeout). About two timeouts: printed, not asserted.
#[test]
fn a_server_frozen_mid_run_fails_the_run() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "frozen-mid");
    file(&share_dir, "big.bin", 24 * MIB);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let proxy = smb_fixture::FaultProxy::start(s.addr());
    let url = format!("smb://{}/{SHARE}/{rel}", proxy.addr());
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("dst");
    let live = Live::spawn(&[
        url.as_str(),
        dst.to_str().unwrap(),
        "--user",
        USER,
        "--timeout",
        "3s",
        "--retries",
        "0",
        "--reconnect-for",
        "1s",
        "--bwlimit",
        "4M",
        "--no-restartable",
    ]);
    live.wait_for("block_done");
    let started = std::time::Instant::now();
    proxy.stall(true);
    let r = live.finish();
    eprintln!(
        "frozen mid-run: exit {} after {:?}",
        r.code,
        started.elapsed()
    );
    proxy.stall(false);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    // The request timed out, then the one reconnect attempt did too.
    assert!(
        r.stderr.contains("read big.bin: SMB_DISCONNECTED")
            && r.stderr.contains("timed out after 3s"),
        "{r:?}"
    );
    assert!(!dst.join("big.bin").exists());
    let left: Vec<_> = std::fs::read_dir(&dst).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Every name under `dir` (relative, `/`-separated), recursively.
fn tree_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A download source for the Ctrl-C tests: one big file at the root (copied
/// first), then 40 directories of one small file each.
fn interrupt_tree(s: &Samba, prefix: &str) -> (String, std::path::PathBuf) {
    let (rel, share_dir) = s.unique_dir(SHARE, prefix);
    file(&share_dir, "big.bin", 16 * MIB);
    for i in 0..40 {
        file(&share_dir, &format!("d{i:02}/f.txt"), 100);
    }
    smb_fixture::chown_to_user(&share_dir).unwrap();
    (rel, share_dir)
}

/// Sends SIGINT (what Ctrl-C sends) to the running smbcp.
fn sigint(live: &Live) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &live.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

/// Ctrl-C in the middle of a big file (`--mt 1`, so nothing else runs):
/// no file starts after it, the file in flight stops and its temporary file
/// is removed (not restartable here), nothing more is copied, the progress
/// and summary still end the run, exit 1 with an "interrupted" line.
#[test]
fn ctrl_c_stops_at_once_and_leaves_no_temp() {
    let s = samba();
    let (rel, _) = interrupt_tree(s, "sigint");
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("dst");
    let url = s.url(SHARE, &rel);
    let live = Live::spawn(&[
        url.as_str(),
        dst.to_str().unwrap(),
        "-s",
        "--user",
        USER,
        "--mt",
        "1",
        "--bwlimit",
        "2M",
        "--no-restartable",
    ]);
    let first = live.wait_for("block_done");
    assert_eq!(first["path"], "big.bin");
    sigint(&live);
    let seen: Vec<serde_json::Value> = {
        let mut v = Vec::new();
        while let Ok(e) = live.events.recv() {
            v.push(e);
        }
        v
    };
    let r = live.finish();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("interrupted: no new files"), "{r:?}");
    let names: Vec<_> = seen
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert!(names.contains(&"interrupted"), "{names:?}");
    assert!(
        !names.contains(&"file_start"),
        "a file started after Ctrl-C: {names:?}"
    );
    assert_eq!(names.last(), Some(&"summary"), "{names:?}");
    let left = tree_names(&dst);
    assert!(
        left.iter().all(|n| !n.contains("smbcp-") && n != "big.bin"),
        "{left:?}"
    );
    assert!(left.iter().all(|n| !n.ends_with("f.txt")), "{left:?}");
}

/// A second Ctrl-C exits at once, even while a request hangs on a frozen
/// server (`--timeout 1h`: without it the run would wait an hour), with the
/// robocopy "failed" code.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    let s = samba();
    let (rel, _) = interrupt_tree(s, "sigint2");
    let proxy = smb_fixture::FaultProxy::start(s.addr());
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("dst");
    let url = format!("smb://{}/{SHARE}/{rel}", proxy.addr());
    let live = Live::spawn(&[
        url.as_str(),
        dst.to_str().unwrap(),
        "-s",
        "--user",
        USER,
        "--mt",
        "1",
        "--bwlimit",
        "2M",
        "--timeout",
        "1h",
        "--exit-codes",
        "robocopy",
    ]);
    live.wait_for("block_done");
    proxy.stall(true);
    sigint(&live);
    assert_eq!(live.wait_for("interrupted")["again"], false);
    sigint(&live);
    assert_eq!(live.wait_for("interrupted")["again"], true);
    let r = live.finish();
    proxy.stall(false);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("interrupted again: exiting now"), "{r:?}");
}

/// `--bwlimit` paces server-side copies too (one COPYCHUNK request per
/// block, each waiting for its slot): 24 MiB at 8 MiB/s take at least 3 s
/// (a lower bound only), while the data still never crosses the wire.
#[test]
fn bwlimit_paces_server_side_copies() {
    let s = samba();
    let (rel, share_dir) = s.unique_dir(SHARE, "srvbw");
    file(&share_dir, "src/big.bin", 24 * MIB);
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let (proxy, stats) = proxy_to(s);
    let src = format!("smb://{proxy}/{SHARE}/{rel}/src");
    let dst = format!("smb://{proxy}/{SHARE}/{rel}/dst");
    let r = smbcp(&[&src, &dst, "--user", USER, "--bwlimit", "8M", "--json", "-"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["window"]["server_copy"], true, "{v}");
    let secs = v["copy_secs"].as_f64().unwrap();
    assert!(secs >= 3.0, "24 MiB at 8 MiB/s in {secs} s: not paced");
    let down = stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed);
    assert!(down < 2 * MIB as u64, "{down} bytes came down");
    assert_same_tree(&share_dir.join("src"), &share_dir.join("dst"));
}

/// SMB → SMB copies the creation time too (Samba keeps it), for a small
/// file (one compound), a block-copied one, a server-copied one and a
/// directory with `--dcopy T`; a download keeps the write time as before.
#[test]
fn smb_to_smb_copies_creation_time() {
    let a = samba();
    let b = Samba::get(&smb_fixture::ServerConfig::new().signing_mandatory());
    let (rel, share_dir) = a.unique_dir(SHARE, "ctime");
    let files = [
        ("small.bin", 1000),
        ("mid.bin", 2 * MIB),
        ("big.bin", 9 * MIB + 1),
    ];
    for (name, len) in files {
        file(&share_dir, &format!("src/d/{name}"), len);
    }
    smb_fixture::chown_to_user(&share_dir).unwrap();
    // 2001-09-09 01:46:40 UTC, in FILETIME ticks.
    let created = smb_core::FileTime((1_000_000_000 + 11_644_473_600) * 10_000_000);
    let set = smb_core::FileTimes {
        creation_time: Some(created),
        ..smb_core::FileTimes::default()
    };
    for p in ["small.bin", "mid.bin", "big.bin", ""] {
        let p = format!("{rel}/src/d/{p}");
        let p = p.trim_end_matches('/');
        assert_eq!(
            smb_info(a, SHARE, p, Some(set)).creation_time,
            created,
            "{p}"
        );
    }
    let src_url = a.url(SHARE, &format!("{rel}/src"));
    let (rel_e, _) = a.unique_dir(ENC_SHARE, "ctime");
    let (rel_b, _) = b.unique_dir(SHARE, "ctime");
    for (server, share, dst) in [(a, ENC_SHARE, rel_e.as_str()), (b, SHARE, rel_b.as_str())] {
        let r = smbcp(&[
            src_url.as_str(),
            &server.url(share, dst),
            "-s",
            "--dcopy",
            "T",
            "--user",
            USER,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        for p in ["d/small.bin", "d/mid.bin", "d/big.bin", "d"] {
            let got = smb_info(server, share, &format!("{dst}/{p}"), None).creation_time;
            assert_eq!(got, created, "{share}: {p}");
        }
    }
}
