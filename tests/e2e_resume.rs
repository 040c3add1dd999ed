//! Restartable copies (`--restartable`, on by default from 64 MiB): smbcp
//! SIGKILLed in the middle of a big file, then run again, copies only the
//! blocks the journal does not have; a source that changed in between starts
//! over. Real binary, real Samba; the fault proxy counts the bytes.

#[path = "e2e_util.rs"]
mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use smb_fixture::{FaultProxy, Samba, SHARE, USER};
use util::*;

const BIG_MIB: usize = 300;

fn tree(root: &Path) {
    for i in 0..40usize {
        file(root, &format!("small/f{i:02}.bin"), (i * 977) % 50_000 + 1);
    }
    big_file(root, "big.bin", BIG_MIB);
}

fn url(proxy: &FaultProxy, rel: &str) -> String {
    format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}", proxy.port())
}

/// Runs smbcp and SIGKILLs it once `moved()` reaches `bytes`.
fn killed_after(args: &[&str], moved: impl Fn() -> u64, bytes: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smbcp"))
        .args(args)
        .env("SMBCP_PASSWORD", smb_fixture::PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while moved() < bytes {
        if child.try_wait().unwrap().is_some() {
            panic!("smbcp finished before it could be killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn temp_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                stack.push(e.path());
            } else if name.contains(".smbcp-") {
                out.push(name);
            }
        }
    }
    out
}

fn journals(state: &Path) -> usize {
    fs::read_dir(state.join("smbcp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Kills a download at `fraction` of the big file, re-runs it, and checks
/// that only the missing ranges crossed the wire the second time.
fn download_resumes_after_a_kill_at(fraction: f64) {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "resume-down");
    tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let (dst, state) = (local.path().join("dst"), local.path().join("state"));
    let big = (BIG_MIB * MIB) as u64;
    let first = FaultProxy::start(s.addr());
    let src = url(&first, &format!("{rel}/src"));
    let state_arg = state.join("smbcp");
    let args = [
        src.as_str(),
        dst.to_str().unwrap(),
        "-s",
        "--state-dir",
        state_arg.to_str().unwrap(),
    ];
    killed_after(&args, || first.bytes_down(), (big as f64 * fraction) as u64);
    assert_eq!(temp_files(&dst).len(), 1, "the big file's temp is kept");
    assert_eq!(journals(&state), 1);
    assert!(
        !dst.join("big.bin").exists(),
        "nothing partial under the final name"
    );

    let second = FaultProxy::start(s.addr());
    let src = url(&second, &format!("{rel}/src"));
    let mut args2 = args.to_vec();
    args2[0] = &src;
    args2.extend(["--json", "-"]);
    let r = smbcp(&args2);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&share_dir.join("src"), &dst);
    let v = r.json();
    let resumed = v["bytes_resumed"].as_u64().unwrap();
    assert!(resumed >= 8 * MIB as u64, "{fraction}: resumed {resumed}");
    // Only what was missing crossed the wire (plus framing and small files).
    let limit = big - resumed + big / 20 + 4 * MIB as u64;
    assert!(
        second.bytes_down() < limit,
        "{} >= {limit}",
        second.bytes_down()
    );
    assert_eq!(journals(&state), 0, "the journal is gone");
    assert!(temp_files(&dst).is_empty());
}

#[test]
fn download_resumes_after_a_kill_at_30_percent() {
    download_resumes_after_a_kill_at(0.3);
}

#[test]
fn download_resumes_after_a_kill_at_90_percent() {
    download_resumes_after_a_kill_at(0.9);
}

#[test]
fn upload_resumes_after_a_kill_at_50_percent() {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "resume-up");
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let (src, state) = (local.path().join("src"), local.path().join("state"));
    tree(&src);
    let big = (BIG_MIB * MIB) as u64;
    let first = FaultProxy::start(s.addr());
    let dst = url(&first, &format!("{rel}/up"));
    let state_arg = state.join("smbcp");
    let args = [
        src.to_str().unwrap(),
        dst.as_str(),
        "-s",
        "--state-dir",
        state_arg.to_str().unwrap(),
    ];
    killed_after(&args, || first.bytes_up(), big / 2);
    let second = FaultProxy::start(s.addr());
    let dst = url(&second, &format!("{rel}/up"));
    let mut args2 = args.to_vec();
    args2[1] = &dst;
    args2.extend(["--json", "-"]);
    let r = smbcp(&args2);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &share_dir.join("up"));
    let resumed = r.json()["bytes_resumed"].as_u64().unwrap();
    assert!(resumed >= 8 * MIB as u64, "resumed {resumed}");
    let limit = big - resumed + big / 20 + 4 * MIB as u64;
    assert!(
        second.bytes_up() < limit,
        "{} >= {limit}",
        second.bytes_up()
    );
    assert_eq!(journals(&state), 0);
    assert!(temp_files(&share_dir.join("up")).is_empty());
}

#[test]
fn a_source_changed_since_the_crash_starts_over_and_removes_the_stale_temp() {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "resume-changed");
    tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let (dst, state) = (local.path().join("dst"), local.path().join("state"));
    let big = (BIG_MIB * MIB) as u64;
    let proxy = FaultProxy::start(s.addr());
    let src = url(&proxy, &format!("{rel}/src"));
    let state_arg = state.join("smbcp");
    let args = [
        src.as_str(),
        dst.to_str().unwrap(),
        "-s",
        "--state-dir",
        state_arg.to_str().unwrap(),
    ];
    killed_after(&args, || proxy.bytes_down(), big / 2);
    // A new version of the source: same size, another write time and data.
    let p = share_dir.join("src/big.bin");
    {
        use std::os::unix::fs::FileExt as _;
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[0xAB; 4096], 4096).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(7))
            .unwrap();
    }
    let mut args2 = args.to_vec();
    args2.extend(["--json", "-"]);
    let r = smbcp(&args2);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json()["bytes_resumed"],
        0,
        "nothing of the old version is kept"
    );
    assert_same_tree(&share_dir.join("src"), &dst);
    assert!(temp_files(&dst).is_empty(), "{:?}", temp_files(&dst));
    assert_eq!(journals(&state), 0);
}
