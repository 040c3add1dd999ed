//! A lost connection does not end the run: the real binary against the real
//! Samba, with the connection cut by our fault proxy at an exact byte, or
//! smbd's connection process killed, mid-tree. Files in flight wait while one
//! task dials again, then go on where they were; a big file is not copied
//! twice (the proxy counts the bytes); a server that stays away longer than
//! `--reconnect-for` ends the run cleanly.

#[path = "e2e_util.rs"]
mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use smb_fixture::{FaultProxy, Samba, ServerConfig, SHARE, USER};
use util::*;

/// The big file's size: copied in parallel blocks.
const BIG: usize = 200 * MIB;

/// 120 small and medium files in a few directories, plus one big file.
/// Returns the total bytes.
fn tree(root: &Path) -> u64 {
    let mut total = 0u64;
    for i in 0..120usize {
        let len = (i * 7919) % (300 * 1024) + 1;
        file(root, &format!("d{}/f{i:03}.bin", i % 4), len);
        total += len as u64;
    }
    big_file(root, "big.bin", BIG / MIB);
    total + BIG as u64
}

fn reconnects(r: &Run) -> u64 {
    r.json()["reconnects"]["count"].as_u64().unwrap()
}

/// The proxy forwarded less than 1.25× the data: nothing big was copied twice.
fn assert_not_recopied(moved: u64, total: u64) {
    assert!(
        moved < total + total / 4,
        "{moved} bytes crossed the proxy for {total} bytes of files"
    );
}

fn url(proxy: &FaultProxy, rel: &str) -> String {
    format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}", proxy.port())
}

fn download_cut_at(fraction: f64, extra: &[&str]) {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "reconnect-down");
    let total = tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let proxy = FaultProxy::start(s.addr());
    proxy.cut_down_at((total as f64 * fraction) as u64);
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let src_url = url(&proxy, &format!("{rel}/src"));
    let events = local.path().join("events.ndjson");
    let mut args = vec![
        src_url.as_str(),
        dst.to_str().unwrap(),
        "-s",
        "--json",
        "-",
        "--events",
        events.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = smbcp(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.cuts(), 1, "the proxy cut the connection");
    assert_same_tree(&share_dir.join("src"), &dst);
    assert_eq!(reconnects(&r), 1, "{}", r.stderr);
    assert_eq!(proxy.connections(), 2);
    assert_not_recopied(proxy.bytes_down(), total);
    assert!(r.stderr.contains("reconnected to"), "{}", r.stderr);
    // The event stream tells the story: one loss, one reconnect, and every
    // block of the big file done exactly once.
    let ev: Vec<serde_json::Value> = fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |k: &str| ev.iter().filter(|e| e["event"] == k).count();
    assert_eq!((count("connection_lost"), count("reconnected")), (1, 1));
    let mut blocks: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| e["event"] == "block_done" && e["path"] == "big.bin")
        .map(|e| (e["offset"].as_u64().unwrap(), e["len"].as_u64().unwrap()))
        .collect();
    blocks.sort_unstable();
    let mut next = 0;
    for (off, len) in blocks {
        assert_eq!(off, next, "blocks are contiguous and done once");
        next += len;
    }
    assert_eq!(next, BIG as u64);
}

#[test]
fn download_survives_a_cut_at_30_percent() {
    download_cut_at(0.3, &[]);
}

#[test]
fn download_survives_a_cut_at_80_percent_unsigned_zero_copy() {
    download_cut_at(0.8, &["--no-sign"]);
}

#[test]
fn upload_survives_a_cut_at_30_and_80_percent() {
    for fraction in [0.3, 0.8] {
        let s = Samba::shared();
        let (rel, share_dir) = s.unique_dir(SHARE, "reconnect-up");
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("src");
        let total = tree(&src);
        smb_fixture::chown_to_user(&share_dir).unwrap();
        let proxy = FaultProxy::start(s.addr());
        proxy.cut_up_at((total as f64 * fraction) as u64);
        let dst_url = url(&proxy, &format!("{rel}/up"));
        let r = smbcp(&[src.to_str().unwrap(), &dst_url, "-s", "--json", "-"]);
        assert_eq!(r.code, 0, "{fraction}: {r:?}");
        assert_eq!(proxy.cuts(), 1);
        assert_same_tree(&src, &share_dir.join("up"));
        assert_eq!(reconnects(&r), 1, "{}", r.stderr);
        assert_not_recopied(proxy.bytes_up(), total);
    }
}

/// Starts smbcp in the background, waits until `bytes` have crossed the
/// proxy downstream, runs `fault`, and returns the finished run.
fn run_with_fault_after(
    args: &[&str],
    proxy: &FaultProxy,
    bytes: u64,
    fault: impl FnOnce(),
) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_smbcp"))
        .args(args)
        .env("SMBCP_PASSWORD", smb_fixture::PASSWORD)
        .env("XDG_STATE_HOME", test_state_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while proxy.bytes_down() < bytes {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    fault();
    finish(child.wait_with_output().unwrap())
}

#[test]
fn download_survives_smbd_killing_its_connection_process() {
    // A server of its own: killing connection processes must not hit the
    // other tests' connections.
    let s = Samba::get(&ServerConfig {
        extra_global: vec!["# killed connections"],
        ..ServerConfig::default()
    });
    let (rel, share_dir) = s.unique_dir(SHARE, "reconnect-kill");
    let total = tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let proxy = FaultProxy::start(s.addr());
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let src_url = url(&proxy, &format!("{rel}/src"));
    let mut killed = 0;
    let r = run_with_fault_after(
        &[&src_url, dst.to_str().unwrap(), "-s", "--json", "-"],
        &proxy,
        total * 3 / 10,
        || killed = s.kill_connections(),
    );
    assert_eq!(killed, 1, "one connection process");
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&share_dir.join("src"), &dst);
    assert_eq!(reconnects(&r), 1, "{}", r.stderr);
    assert_not_recopied(proxy.bytes_down(), total);
}

/// Every file under `dst` is complete: the same bytes as under `src`; and no
/// temporary file is left.
fn assert_only_complete_files(src: &Path, dst: &Path) {
    let mut stack = vec![dst.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".smbcp-"), "temporary file left: {p:?}");
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dst).unwrap();
                assert!(
                    fs::read(&p).unwrap() == fs::read(src.join(rel)).unwrap(),
                    "{rel:?} is not complete"
                );
            }
        }
    }
}

#[test]
fn a_server_gone_longer_than_reconnect_for_fails_cleanly() {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "reconnect-gone");
    let total = tree(&share_dir.join("src"));
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let proxy = FaultProxy::start(s.addr());
    let local = tempfile::tempdir().unwrap();
    let dst = local.path().join("dst");
    let src_url = url(&proxy, &format!("{rel}/src"));
    let r = run_with_fault_after(
        &[
            &src_url,
            dst.to_str().unwrap(),
            "-s",
            "--reconnect-for",
            "2s",
            // Not resumable: then nothing at all may be left behind.
            "--no-restartable",
            "--json",
            "-",
        ],
        &proxy,
        total * 3 / 10,
        || {
            proxy.refuse(true);
            proxy.cut_now();
        },
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("gave up reconnecting"), "{}", r.stderr);
    let v = r.json();
    let failures = v["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "{v}");
    for f in failures {
        assert_eq!(f["code"], "SMB_DISCONNECTED", "{f}");
    }
    // The big file was in flight: it is listed, and not under its name.
    assert!(
        failures.iter().any(|f| f["path"] == "big.bin"),
        "{failures:?}"
    );
    assert!(!dst.join("big.bin").exists());
    assert_only_complete_files(&share_dir.join("src"), &dst);
    assert_eq!(reconnects(&r), 0);
}

/// Byte ranges (offset, length) where `b` differs from `a`: differing bytes
/// less than 4 KiB apart count as one range (random data agrees with zeros
/// one byte in 256). For a failure message that names the damage.
fn differing_ranges(a: &[u8], b: &[u8]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let n = a.len().min(b.len());
    for i in (0..n).filter(|&i| a[i] != b[i]) {
        match out.last_mut() {
            Some((s, l)) if i - (*s + *l) < 4096 => *l = i + 1 - *s,
            _ => out.push((i, 1)),
        }
    }
    if a.len() != b.len() {
        out.push((n, a.len().max(b.len()) - n));
    }
    out
}

/// A cut in the middle of a READ's payload while it is spliced into the
/// file (`--no-sign`: the zero-copy path), at several points of the big
/// file, each with a pause before the cut so the client has written all it
/// got: that READ must be read again on the new connection, never counted
/// as done with the rest of its block left zeros. Byte identity is checked
/// for the big file with the damaged ranges named.
#[test]
fn download_cut_mid_read_payload_lands_every_byte_zero_copy() {
    let mut damaged = Vec::new();
    for fraction in [0.55, 0.63, 0.71, 0.79, 0.87] {
        let s = Samba::shared();
        let (rel, share_dir) = s.unique_dir(SHARE, "reconnect-mid-read");
        let total = tree(&share_dir.join("src"));
        smb_fixture::chown_to_user(&share_dir).unwrap();
        let proxy = FaultProxy::start(s.addr());
        proxy.cut_down_at((total as f64 * fraction) as u64);
        proxy.pause_before_cut(std::time::Duration::from_millis(300));
        let local = tempfile::tempdir().unwrap();
        let dst = local.path().join("dst");
        let src_url = url(&proxy, &format!("{rel}/src"));
        let r = smbcp(&[&src_url, dst.to_str().unwrap(), "-s", "--no-sign"]);
        assert_eq!(r.code, 0, "{fraction}: {r:?}");
        assert_eq!(proxy.cuts(), 1, "{fraction}: the proxy cut the connection");
        let want = fs::read(share_dir.join("src/big.bin")).unwrap();
        let got = fs::read(dst.join("big.bin")).unwrap();
        let bad = differing_ranges(&want, &got);
        if bad.is_empty() {
            assert_same_tree(&share_dir.join("src"), &dst);
        } else {
            damaged.push((fraction, bad));
        }
    }
    assert!(
        damaged.is_empty(),
        "big.bin differs at (offset, len), by cut point: {damaged:?}"
    );
}
