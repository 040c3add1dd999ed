//! The resume journal of a restartable big file (`--restartable`, robocopy
//! `/Z`): which blocks of its temporary file are already written, so a later
//! attempt — a retry, or the next run after a crash or a SIGKILL — copies
//! only the missing ones. Blocks are written by parallel workers in any
//! order, so no "prefix" rule could resume such a file; the journal records
//! each block as it lands.
//!
//! One journal per destination file, in `--state-dir` (default
//! `$XDG_STATE_HOME/smbcp`, else `~/.local/state/smbcp`), named by a hash of
//! the destination location and path. Format (text, append-only):
//!
//! ```text
//! smbcp-journal 1 size=<bytes> mtime=<FILETIME> block=<bytes> temp=<temp path>
//! <offset> <len>
//! <offset> <len>
//! ```
//!
//! The header is the source's identity (size and write time) and the block
//! size: a journal whose header does not match the source as it is now is
//! stale — its temporary file is removed and the copy starts over. Lines are
//! appended as blocks finish and synced to disk at most once per
//! [`SYNC_EVERY`] (a torn last line is ignored on reading). The block data
//! itself is as durable as the destination's own writes: a journal survives
//! a crash of smbcp (the data is in the page cache or acknowledged by the
//! server), not the loss of power of the destination machine.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Journal lines are synced to disk at most this often.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What a journal is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The destination location and the file's path in it (the journal's key).
    pub key: String,
    /// The source's size.
    pub size: u64,
    /// The source's write time (FILETIME).
    pub mtime: u64,
    /// The block size the blocks were cut with.
    pub block: u32,
}

/// An open journal; clones share it.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: Mutex<(fs::File, Instant)>,
}

/// What [`Journal::open`] found.
#[derive(Debug)]
pub struct Opened {
    /// The journal, ready to record blocks.
    pub journal: Journal,
    /// The temporary file's path (relative to the destination root): the
    /// one a previous attempt wrote to, or the `fresh_temp` passed in.
    pub temp: String,
    /// Offsets of the blocks already written (empty for a fresh start).
    pub done: HashSet<u64>,
    /// A previous journal existed but did not match: its temp file (to
    /// remove) is this.
    pub stale_temp: Option<String>,
}

/// The journal file for `key` in `dir`.
pub fn path_for(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!(
        "{:016x}.journal",
        xxhash_rust::xxh3::xxh3_64(key.as_bytes())
    ))
}

fn header(id: &Identity, temp: &str) -> String {
    format!(
        "smbcp-journal 1 size={} mtime={} block={} temp={temp}\n",
        id.size, id.mtime, id.block
    )
}

/// A parsed journal: (size, mtime, block) of its header, its temp, and the
/// offsets of the blocks it records.
type Parsed = ((u64, u64, u32), String, HashSet<u64>);

/// Parses a journal's text, or `None` when it is not a journal of ours.
fn parse(text: &str) -> Option<Parsed> {
    let mut lines = text.split_inclusive('\n');
    let head = lines.next()?.strip_suffix('\n')?;
    let rest = head.strip_prefix("smbcp-journal 1 ")?;
    let (fields, temp) = rest.split_once(" temp=")?;
    let mut size = None;
    let mut mtime = None;
    let mut block = None;
    for f in fields.split(' ') {
        let (k, v) = f.split_once('=')?;
        match k {
            "size" => size = v.parse().ok(),
            "mtime" => mtime = v.parse().ok(),
            "block" => block = v.parse().ok(),
            _ => return None,
        }
    }
    let mut done = HashSet::new();
    for l in lines {
        // A line without its newline was torn by a crash: not recorded.
        let Some(l) = l.strip_suffix('\n') else {
            break;
        };
        let (off, _len) = l.split_once(' ')?;
        done.insert(off.parse().ok()?);
    }
    Some(((size?, mtime?, block?), temp.to_string(), done))
}

impl Journal {
    /// Opens the journal for `id` in `dir` (created when missing): resumes a
    /// matching one, or starts fresh with `fresh_temp` (reporting a stale
    /// one's temporary file).
    pub fn open(dir: &Path, id: &Identity, fresh_temp: &str) -> io::Result<Opened> {
        fs::create_dir_all(dir)?;
        let path = path_for(dir, &id.key);
        let mut stale_temp = None;
        match fs::read_to_string(&path) {
            Ok(text) => match parse(&text) {
                Some(((size, mtime, block), temp, done))
                    if (size, mtime, block) == (id.size, id.mtime, id.block) =>
                {
                    let file = fs::OpenOptions::new().append(true).open(&path)?;
                    return Ok(Opened {
                        journal: Self::wrap(path, file),
                        temp,
                        done,
                        stale_temp: None,
                    });
                }
                Some((_, temp, _)) => stale_temp = Some(temp),
                None => {}
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut file = fs::File::create(&path)?;
        file.write_all(header(id, fresh_temp).as_bytes())?;
        file.sync_data()?;
        Ok(Opened {
            journal: Self::wrap(path, file),
            temp: fresh_temp.to_string(),
            done: HashSet::new(),
            stale_temp,
        })
    }

    fn wrap(path: PathBuf, file: fs::File) -> Self {
        Self {
            inner: Arc::new(Inner {
                path,
                file: Mutex::new((file, Instant::now())),
            }),
        }
    }

    /// Records that the block at `offset` (`len` bytes) is written.
    pub fn record(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut g = self.inner.file.lock().unwrap_or_else(|e| e.into_inner());
        let (file, synced) = &mut *g;
        file.write_all(format!("{offset} {len}\n").as_bytes())?;
        if synced.elapsed() >= SYNC_EVERY {
            file.sync_data()?;
            *synced = Instant::now();
        }
        Ok(())
    }

    /// Syncs what is recorded (before giving up on a file, so the next run
    /// finds every block).
    pub fn sync(&self) -> io::Result<()> {
        let g = self.inner.file.lock().unwrap_or_else(|e| e.into_inner());
        g.0.sync_data()
    }

    /// The file is complete (or must start over): the journal goes.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_file(&self.inner.path)
    }
}

/// The default `--state-dir`.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("smbcp");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/state/smbcp");
    }
    std::env::temp_dir().join("smbcp-state")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(size: u64) -> Identity {
        Identity {
            key: "dest|a/b.bin".into(),
            size,
            mtime: 7,
            block: 1 << 20,
        }
    }

    #[test]
    fn a_matching_journal_resumes_a_changed_one_is_stale() {
        let d = tempfile::tempdir().unwrap();
        let o = Journal::open(d.path(), &id(100), "a/.b.tmp").unwrap();
        assert!(o.done.is_empty() && o.stale_temp.is_none());
        o.journal.record(0, 10).unwrap();
        o.journal.record(30, 10).unwrap();
        drop(o);
        let o = Journal::open(d.path(), &id(100), "a/.other.tmp").unwrap();
        assert_eq!(o.temp, "a/.b.tmp", "the previous attempt's temp");
        assert_eq!(o.done, HashSet::from([0, 30]));
        o.journal.record(10, 10).unwrap();
        drop(o);
        // The source changed: start over, and say which temp is stale.
        let o = Journal::open(d.path(), &id(101), "a/.new.tmp").unwrap();
        assert_eq!(o.stale_temp.as_deref(), Some("a/.b.tmp"));
        assert!(o.done.is_empty());
        assert_eq!(o.temp, "a/.new.tmp");
        o.journal.remove().unwrap();
        assert!(fs::read_dir(d.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_torn_last_line_and_garbage_are_not_trusted() {
        let text = "smbcp-journal 1 size=5 mtime=1 block=2 temp=x y\n0 2\n2 2\n4";
        let (f, temp, done) = parse(text).unwrap();
        assert_eq!((f, temp.as_str()), ((5, 1, 2), "x y"));
        assert_eq!(done, HashSet::from([0, 2]));
        assert!(parse("garbage\n").is_none());
        assert!(parse("smbcp-journal 1 size=5 mtime=1 block=2 temp=x\nnot a line\n").is_none());
        assert!(parse("").is_none());
    }
}
