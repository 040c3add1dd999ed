//! Shared helpers of the end-to-end tests (included by each `cli_*`/`e2e_*`
//! test binary with `#[path]`): run the real binary, build trees with the
//! interesting sizes and names, and compare trees byte for byte.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// 1 MiB.
pub(crate) const MIB: usize = 1 << 20;

/// A finished run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    /// Exit code.
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Run {
    /// The `--json -` document on stdout.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {self:?}"))
    }
}

/// Runs smbcp with the fixture password in the environment and stdin closed.
pub(crate) fn smbcp<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    smbcp_env(args, &[("SMBCP_PASSWORD", smb_fixture::PASSWORD)])
}

/// Runs smbcp with extra environment variables.
pub(crate) fn smbcp_env<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Run {
    // SMBCP_TEST_BIN runs the suite against another build (e.g. target/release/smbcp).
    let bin =
        std::env::var_os("SMBCP_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_smbcp").into());
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("SMBCP_PASSWORD")
        // Resume journals of the tests stay out of the real state directory.
        .env("XDG_STATE_HOME", test_state_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(cmd.output().expect("running smbcp"))
}

/// A per-process state directory for the binary under test (`XDG_STATE_HOME`).
pub(crate) fn test_state_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("smbcp-test-state-{}", std::process::id()))
}

/// Converts an `Output`.
pub(crate) fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Deterministic, incompressible bytes.
pub(crate) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes a big file of `mib` MiB fast: 1 MiB blocks of noise, each stamped
/// with its index (so no two blocks are alike).
pub(crate) fn big_file(root: &Path, rel: &str, mib: usize) {
    use std::io::Write as _;
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let noise = data(MIB, 99);
    let mut f = fs::File::create(p).unwrap();
    for i in 0..mib {
        let mut block = noise.clone();
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&block).unwrap();
    }
}

/// Writes `len` bytes of [`data`] to `root/rel`, creating parents.
pub(crate) fn file(root: &Path, rel: &str, len: usize) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data(len, rel.len() as u64 + len as u64)).unwrap();
}

/// The standard test tree: empty, 1-byte, 64 KiB ± 1, several MiB and more
/// than MaxReadSize (8 MiB) files; unicode and space names; deep nesting;
/// empty directories.
pub(crate) fn standard_tree(root: &Path) {
    file(root, "empty.txt", 0);
    file(root, "one.bin", 1);
    file(root, "k64-1.bin", 65_535);
    file(root, "k64.bin", 65_536);
    file(root, "k64+1.bin", 65_537);
    file(root, "several.bin", 3 * MIB + 123);
    file(root, "huge.bin", 9 * MIB + 7);
    file(root, "name with spaces.txt", 10);
    file(root, "ünïcödé ✓ 文件.txt", 20);
    file(root, "sub/inner.txt", 100);
    file(root, "sub/ü dir/x.bin", 4096);
    file(root, "a/b/c/d/e/f/g/deep.txt", 7);
    fs::create_dir_all(root.join("emptydir/nested-empty")).unwrap();
}

/// Every path under `root` (`/`-separated) → `None` for directories, the bytes for files.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// Asserts two trees hold the same names and the same bytes.
pub(crate) fn assert_same_tree(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    let ka: Vec<_> = sa.keys().collect();
    let kb: Vec<_> = sb.keys().collect();
    assert_eq!(
        ka,
        kb,
        "different names in {} and {}",
        a.display(),
        b.display()
    );
    for (k, v) in &sa {
        assert!(
            sb[k] == *v,
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// Files copied according to `--json`.
pub(crate) fn copied(run: &Run) -> u64 {
    run.json()["files"]["copied"].as_u64().unwrap()
}

/// Asserts a run failed with one `smbcp: error:` line and `code`.
pub(crate) fn assert_one_line_error(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{run:?}");
    let lines: Vec<_> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {run:?}");
    assert!(lines[0].starts_with("smbcp: error: "), "{run:?}");
}

#[test]
fn standard_tree_snapshot_roundtrip() {
    let d = tempfile::tempdir().unwrap();
    standard_tree(d.path());
    let s = snapshot(d.path());
    assert_eq!(s["huge.bin"].as_ref().unwrap().len(), 9 * MIB + 7);
    assert_eq!(s["emptydir/nested-empty"], None);
    assert_same_tree(d.path(), d.path());
}

/// A running smbcp with `--events -`: its events as they come, and the rest
/// of its output once it exits.
pub(crate) struct Live {
    /// The child (its pid for signals).
    pub(crate) child: std::process::Child,
    /// Parsed event lines from stdout.
    pub(crate) events: std::sync::mpsc::Receiver<serde_json::Value>,
    stderr: std::thread::JoinHandle<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Live {
    /// Starts smbcp (`--events -` added) with the fixture password.
    pub(crate) fn spawn(args: &[&str]) -> Self {
        use std::io::{BufRead as _, Read as _};
        let bin = std::env::var_os("SMBCP_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_smbcp").into());
        let mut child = Command::new(bin)
            .args(args)
            .args(["--events", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SMBCP_PASSWORD", smb_fixture::PASSWORD)
            .env("XDG_STATE_HOME", test_state_home())
            .spawn()
            .expect("running smbcp");
        let (tx, events) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut rest = String::new();
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) if v.get("event").is_some() => {
                        let _ = tx.send(v);
                    }
                    _ => {
                        rest.push_str(&line);
                        rest.push('\n');
                    }
                }
            }
            rest
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Self {
            child,
            events,
            stderr,
            stdout,
        }
    }

    /// Waits for the first event named `name` (panics if smbcp exits first).
    pub(crate) fn wait_for(&self, name: &str) -> serde_json::Value {
        loop {
            match self.events.recv() {
                Ok(v) if v["event"] == name => return v,
                Ok(_) => {}
                Err(_) => panic!("smbcp ended before a {name} event"),
            }
        }
    }

    /// Waits for the exit; the events not yet received are dropped.
    pub(crate) fn finish(mut self) -> Run {
        let status = self.child.wait().expect("waiting for smbcp");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}
