//! `--events` (the live NDJSON stream) and the engine's integrity checks, local → local.

#[path = "e2e_util.rs"]
mod util;

use std::collections::HashMap;

use util::*;

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn events_follow_a_run_from_plan_to_summary() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    file(&src, "a.txt", 10);
    file(&src, "sub/big.bin", 3 * MIB + 5);
    file(&src, "sub/same.txt", 7);
    let dst = d.path().join("dst");
    file(&dst, "sub/same.txt", 7);
    // The same size and time: skipped.
    let t = std::fs::metadata(src.join("sub/same.txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(dst.join("sub/same.txt"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    let r = smbcp(&[
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "-s",
        "--events",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ev = lines(&r.stdout);
    assert!(ev.iter().all(|e| e["v"] == 1), "{ev:?}");
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"plan"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    assert!(kinds.contains(&"scan_done"), "{kinds:?}");
    let done: HashMap<&str, &serde_json::Value> = ev
        .iter()
        .filter(|e| e["event"] == "file_done")
        .map(|e| (e["path"].as_str().unwrap(), e))
        .collect();
    assert_eq!(done.len(), 2, "{kinds:?}");
    assert_eq!(done["sub/big.bin"]["bytes"], 3 * MIB as u64 + 5);
    // Every start has its end, after it.
    for (i, e) in ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "file_start")
    {
        let end = ev
            .iter()
            .position(|x| x["event"] == "file_done" && x["path"] == e["path"])
            .unwrap();
        assert!(end > i);
    }
    let skip = ev.iter().find(|e| e["event"] == "skip").unwrap();
    assert_eq!(skip["path"], "sub/same.txt");
    let s = ev.last().unwrap();
    assert_eq!(
        (s["files_copied"].as_u64(), s["exit_code"].as_u64()),
        (Some(2), Some(0))
    );
    // Times never go backwards.
    let ts: Vec<f64> = ev.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    // The human report went to stderr.
    assert!(r.stderr.contains("New File"), "{}", r.stderr);
}

#[test]
fn events_to_a_file_and_json_to_stdout_together() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    file(&src, "x.bin", 100);
    let out = d.path().join("events.ndjson");
    let r = smbcp(&[
        src.to_str().unwrap(),
        d.path().join("dst").to_str().unwrap(),
        "--events",
        out.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["files"]["copied"], 1);
    let ev = lines(&std::fs::read_to_string(&out).unwrap());
    assert!(ev
        .iter()
        .any(|e| e["event"] == "file_done" && e["path"] == "x.bin"));
    // Both on stdout is refused.
    let r = smbcp(&[
        src.to_str().unwrap(),
        d.path().join("dst2").to_str().unwrap(),
        "--events",
        "-",
        "--json",
        "-",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--events"), "{}", r.stderr);
}

/// A source file modified while a slow copy reads it: retried with the file
/// as it is then, and reported as changed when it keeps changing; never a
/// torn file under the final name.
#[test]
fn a_source_changed_during_the_copy_is_reported_never_torn() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    file(&src, "moving.bin", 24 * MIB);
    file(&src, "still.txt", 10);
    let dst = d.path().join("dst");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_smbcp"))
        .args([
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--bwlimit",
            "8M",
            "--retries",
            "1",
            "--wait",
            "10ms",
            "--json",
            "-",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let moving = src.join("moving.bin");
    let writer = std::thread::spawn(move || {
        // Keep rewriting a block in the middle until smbcp has exited.
        let mut n = 0u8;
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            use std::os::unix::fs::FileExt as _;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&moving)
                .unwrap();
            f.write_all_at(&[n; 4096], 12 * MIB as u64).unwrap();
            n = n.wrapping_add(1);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    let r = finish(child.wait_with_output().unwrap());
    writer.join().unwrap();
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    let f = v["failures"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(
        (f[0]["path"].as_str(), f[0]["code"].as_str()),
        (Some("moving.bin"), Some("SOURCE_CHANGED"))
    );
    assert_eq!(v["retries"], 1);
    assert!(
        !dst.join("moving.bin").exists(),
        "no torn file under the final name"
    );
    assert_eq!(
        std::fs::read(dst.join("still.txt")).unwrap(),
        std::fs::read(src.join("still.txt")).unwrap()
    );
    let left: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
}

/// A destination that fills up: the file that hit it fails, no new file is
/// started (one message says why), nothing partial is left.
#[test]
fn a_full_destination_stops_new_files_with_one_message() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    for n in ["a", "b", "c", "d", "e"] {
        file(&src, &format!("{n}.bin"), 6 * MIB);
    }
    let dst = d.path().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&dst)
        .status()
        .expect("mount (the tests run as root)");
    assert!(
        mounted.success(),
        "cannot mount a 16 MiB tmpfs on {dst:?} (needs root)"
    );
    let r = smbcp(&[
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--mt",
        "1",
        "--json",
        "-",
    ]);
    let listing: Vec<(String, u64)> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    let _ = std::process::Command::new("umount").arg(&dst).status();
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.matches("the destination is full").count(),
        1,
        "{}",
        r.stderr
    );
    let v = r.json();
    let f = v["failures"].as_array().unwrap();
    let codes: Vec<&str> = f.iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "ENOSPC").count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == "ENOSPC" || *c == "DEST_FULL"),
        "{codes:?}"
    );
    assert_eq!(v["files"]["copied"].as_u64().unwrap() + f.len() as u64, 5);
    // Only complete files, no temporary ones.
    for (name, len) in &listing {
        assert!(!name.contains(".smbcp-"), "{listing:?}");
        assert_eq!(*len, 6 * MIB as u64, "{name} is complete");
    }
    assert_eq!(listing.len() as u64, v["files"]["copied"].as_u64().unwrap());
}
