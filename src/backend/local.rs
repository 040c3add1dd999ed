//! The local backend: std file APIs on the blocking pool, positional I/O
//! (`FileExt::{read_at, write_all_at}`) so many block workers share one file,
//! and, with `--unbuffered` on Linux, `O_DIRECT` through aligned buffers with
//! a clean fallback to buffered I/O wherever the file system refuses it.
//!
//! Nothing outside the tree: every path below the root is resolved without
//! following symlinks (`beneath`) for writes, renames, deletes and — unless
//! the tree is a source with `--follow-links` — reads. A symlink is listed as
//! itself (`link_entry`), so the planner never descends into one, and
//! deleting it deletes the link, never what it points to.

use std::fs;
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use smb_core::{FileTime, FileTimes};

use super::{CommitError, Entry, OpResult, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READONLY};

mod beneath;

pub use beneath::NotFollowed;

/// FILE_ATTRIBUTE_REPARSE_POINT: on an entry of a local listing, a symlink
/// listed as itself (`is_dir` false, whatever it points to; see [`LinkKind`]).
pub const ATTR_REPARSE_POINT: u32 = 0x400;

/// Why a local listing shows a symlink as itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// Links are not followed in this tree (the default).
    NotFollowed,
    /// Followed, it names a directory already on the path from the root.
    Loop,
    /// Followed, it names nothing (or nothing that can be read).
    Dangling,
}

impl LinkKind {
    /// The kind of a local listing entry, `None` when it is no symlink.
    pub fn of(e: &Entry) -> Option<Self> {
        if e.is_dir || e.attributes & ATTR_REPARSE_POINT == 0 {
            return None;
        }
        // The marker bits set by `link_entry`.
        Some(if e.attributes & ATTR_DIRECTORY != 0 {
            Self::Loop
        } else if e.attributes & ATTR_OFFLINE != 0 {
            Self::Dangling
        } else {
            Self::NotFollowed
        })
    }

    /// The file-list label of a skipped link.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotFollowed => "*Symlink",
            Self::Loop => "*Symlink loop",
            Self::Dangling => "*Dangling link",
        }
    }
}

/// FILE_ATTRIBUTE_OFFLINE, the marker of a dangling link (see [`LinkKind::of`]).
const ATTR_OFFLINE: u32 = 0x1000;

/// Alignment for `O_DIRECT` offsets, lengths and buffers.
const ALIGN: usize = 4096;
/// Block size for big local files.
const LOCAL_IO_SIZE: u32 = 8 << 20;
/// Small files up to this size are read or written (open, write, set times,
/// rename) right on the async worker: page-cache calls of a few microseconds,
/// where two thread hand-offs per file cost more than the calls themselves
/// (10,000 files of 4–64 KiB: client CPU 0.76–1.19 s through the pool,
/// 0.52–0.56 s inline). The price is that a stalled local disk stalls that
/// worker for the length of one small call.
const INLINE_MAX: usize = 128 * 1024;

/// A local directory tree.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
    unbuffered: bool,
    shared: Arc<Shared>,
}

/// What every clone of one [`LocalFs`] shares.
#[derive(Debug)]
struct Shared {
    /// No-follow resolution below the root.
    beneath: beneath::Root,
    /// Reads follow symlinks (`--follow-links` on a source).
    follow: AtomicBool,
    /// Injected write failures (the engine's tests; see [`LocalFs::inject_write_faults`]).
    faults: std::sync::Mutex<Option<WriteFaults>>,
}

/// Write failures to inject into a destination tree: the storage seam the
/// copy engine's tests use to fail the Nth block write without a server.
#[derive(Debug, Clone)]
pub struct WriteFaults {
    /// 0-based numbers of the `write_at` calls (over every file of the
    /// tree) that fail.
    pub fail_at: Vec<u64>,
    /// The error kind they fail with (`Interrupted` is transient, `PermissionDenied` is not).
    pub kind: io::ErrorKind,
    /// `write_at` calls so far.
    pub seen: u64,
}

/// An open local file for reading.
#[derive(Debug, Clone)]
pub struct LocalReader {
    file: Arc<DualFile>,
}

/// An open local temporary file for writing.
#[derive(Debug, Clone)]
pub struct LocalWriter {
    file: Arc<DualFile>,
    /// The tree, for the no-follow rename and delete of `temp`.
    fs: LocalFs,
    /// The temporary file's relative path.
    temp: String,
}

/// A buffered handle, plus an `O_DIRECT` one when asked for and available.
#[derive(Debug)]
struct DualFile {
    /// Shared so SMB reads can write into it directly (`read_at_into`).
    buffered: Arc<fs::File>,
    direct: Option<fs::File>,
}

/// Runs blocking file-system work off the async threads (on the I/O pool).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> OpResult<T> {
    Ok(super::pool::run(f).await?)
}

fn entry(name: String, md: &fs::Metadata) -> Entry {
    let mtime = md.modified().unwrap_or(UNIX_EPOCH);
    entry_of(name, md.is_dir(), md.len(), mtime, md.permissions().mode())
}

/// The entry of a `statat` result (a file or a directory).
fn stat_entry(name: String, st: &rfs::Stat) -> Entry {
    let is_dir = rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory;
    entry_of(name, is_dir, st.st_size as u64, stat_mtime(st), st.st_mode)
}

/// A symlink listed as itself: never a directory, marked with
/// [`ATTR_REPARSE_POINT`] plus the bits [`LinkKind::of`] reads back.
pub(crate) fn link_entry(name: String, st: &rfs::Stat, kind: LinkKind) -> Entry {
    let mut e = entry_of(name, false, 0, stat_mtime(st), 0o644);
    e.attributes = ATTR_REPARSE_POINT
        | match kind {
            LinkKind::NotFollowed => 0,
            LinkKind::Loop => ATTR_DIRECTORY,
            LinkKind::Dangling => ATTR_OFFLINE,
        };
    e
}

// The field types of `Stat` differ between targets.
#[allow(clippy::unnecessary_cast)]
fn stat_mtime(st: &rfs::Stat) -> SystemTime {
    let (secs, nanos) = (st.st_mtime as i64, st.st_mtime_nsec as u32);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

fn entry_of(name: String, is_dir: bool, size: u64, mtime: SystemTime, mode: u32) -> Entry {
    let mut attributes = if is_dir { ATTR_DIRECTORY } else { ATTR_ARCHIVE };
    if mode & 0o200 == 0 {
        attributes |= ATTR_READONLY;
    }
    Entry {
        name,
        is_dir,
        size: if is_dir { 0 } else { size },
        mtime: FileTime::from_system_time(mtime),
        attributes,
        created: None,
    }
}

/// A zeroed buffer of `len` bytes (rounded up to [`ALIGN`]) whose start is aligned.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let len = len.div_ceil(ALIGN) * ALIGN;
    let buf = vec![0u8; len + ALIGN];
    let pad = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN;
    (buf, pad)
}

impl DualFile {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if let Some(direct) = &self.direct {
            if offset % ALIGN as u64 == 0 {
                let (mut buf, pad) = aligned(len);
                let want = len.div_ceil(ALIGN) * ALIGN;
                match read_full(direct, &mut buf[pad..pad + want], offset) {
                    Ok(n) => {
                        let n = n.min(len);
                        return Ok(buf[pad..pad + n].to_vec());
                    }
                    // The file system refused O_DIRECT here: fall back below.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut buf = super::pool::take_buf(len);
        let n = read_full(&self.buffered, &mut buf, offset)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(direct) = &self.direct {
            if offset % ALIGN as u64 == 0 && data.len() % ALIGN == 0 && !data.is_empty() {
                let (mut buf, pad) = aligned(data.len());
                buf[pad..pad + data.len()].copy_from_slice(data);
                match direct.write_all_at(&buf[pad..pad + data.len()], offset) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.buffered.write_all_at(data, offset)
    }
}

/// `pread` until `buf` is full or end of file; returns the count read.
fn read_full(f: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Applies times and the read-only attribute through an open handle (no
/// path lookups: one `futimens` and at most one `fchmod`).
fn apply_times_handle(f: &fs::File, times: &FileTimes) -> io::Result<()> {
    if let Some(mtime) = times.last_write_time {
        let m = mtime.to_system_time();
        let a = times.last_access_time.map_or(m, FileTime::to_system_time);
        f.set_times(fs::FileTimes::new().set_modified(m).set_accessed(a))?;
    }
    if let Some(attrs) = times.attributes {
        let mut perms = f.metadata()?.permissions();
        if let Some(new) = readonly_mode(perms.mode(), attrs) {
            perms.set_mode(new);
            f.set_permissions(perms)?;
        }
    }
    Ok(())
}

/// The mode that carries the read-only attribute of `attrs` (no write bits,
/// or the owner's write bit back), or `None` when `mode` already does.
fn readonly_mode(mode: u32, attrs: u32) -> Option<u32> {
    let new = if attrs & ATTR_READONLY != 0 {
        mode & !0o222
    } else {
        mode | 0o200
    };
    (new != mode).then_some(new)
}

/// Applies times and the read-only attribute to a path.
fn apply_times(path: &Path, times: &FileTimes) -> io::Result<()> {
    if let Some(mtime) = times.last_write_time {
        let m = filetime::FileTime::from_system_time(mtime.to_system_time());
        let a = times.last_access_time.map_or(m, |a| {
            filetime::FileTime::from_system_time(a.to_system_time())
        });
        filetime::set_file_times(path, a, m)?;
    }
    if let Some(attrs) = times.attributes {
        let mut perms = fs::metadata(path)?.permissions();
        if let Some(new) = readonly_mode(perms.mode(), attrs) {
            perms.set_mode(new);
            fs::set_permissions(path, perms)?;
        }
    }
    Ok(())
}

impl LocalFs {
    /// A tree rooted at `root`. Symlinks below the root are not followed
    /// (see [`Self::set_follow_links`]); the root itself is the user's path.
    pub fn new(root: PathBuf, unbuffered: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                beneath: beneath::Root::new(root.clone()),
                follow: AtomicBool::new(false),
                faults: std::sync::Mutex::new(None),
            }),
            root,
            unbuffered,
        }
    }

    /// Makes the `write_at` calls numbered in `faults` fail (every clone of
    /// this tree shares it): a test seam for the copy engine.
    pub fn inject_write_faults(&self, faults: WriteFaults) {
        *self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()) = Some(faults);
    }

    /// The injected failure for the next `write_at`, if any.
    fn next_write_fault(&self) -> Option<io::Error> {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let f = f.as_mut()?;
        let n = f.seen;
        f.seen += 1;
        f.fail_at
            .contains(&n)
            .then(|| io::Error::new(f.kind, format!("injected failure of write {n}")))
    }

    /// Follows symlinks when reading this tree (a source with
    /// `--follow-links`): listings, stats and opens for reading resolve them,
    /// and a directory already on the path being walked (by device and
    /// inode) is listed as a loop instead. Writes, renames and deletes never
    /// follow a symlink whatever this says. Every clone shares the setting.
    pub fn set_follow_links(&self, follow: bool) {
        self.shared.follow.store(follow, Relaxed);
    }

    /// Whether reads follow symlinks.
    pub fn follows_links(&self) -> bool {
        self.shared.follow.load(Relaxed)
    }

    /// `--unbuffered` asked for (`O_DIRECT` where the file system takes it).
    pub fn unbuffered(&self) -> bool {
        self.unbuffered
    }

    fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Opens `rel` for reading: through symlinks when following them, else
    /// with no component a symlink.
    fn open_for_read(&self, rel: &str, extra: OFlags) -> io::Result<fs::File> {
        if self.follows_links() || rel.is_empty() {
            return fs::OpenOptions::new()
                .read(true)
                .custom_flags(extra.bits() as i32)
                .open(self.path(rel));
        }
        let fd = self
            .shared
            .beneath
            .open(rel, OFlags::RDONLY | extra, Mode::empty())?;
        Ok(fs::File::from(fd))
    }

    /// Creates (truncating) `rel` for writing, no component a symlink (a
    /// symlink at `rel` itself is refused too).
    fn open_for_write(&self, rel: &str, read: bool) -> io::Result<fs::File> {
        let access = if read { OFlags::RDWR } else { OFlags::WRONLY };
        let fd = self.shared.beneath.open(
            rel,
            access | OFlags::CREATE | OFlags::TRUNC,
            Mode::from_bits_truncate(0o666),
        )?;
        Ok(fs::File::from(fd))
    }

    /// With `--unbuffered`, a second handle on `rel` opened with `O_DIRECT`
    /// where the platform and file system allow it; `None` otherwise.
    fn open_direct(&self, rel: &str, write: bool) -> Option<fs::File> {
        if !self.unbuffered {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            if write {
                self.shared
                    .beneath
                    .open(rel, OFlags::RDWR | OFlags::DIRECT, Mode::empty())
                    .ok()
                    .map(fs::File::from)
            } else {
                self.open_for_read(rel, OFlags::DIRECT).ok()
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (rel, write);
            None
        }
    }

    /// Lists a directory. Without `--follow-links` a symlink is listed as
    /// itself (`link_entry`: never a directory to descend into); with it,
    /// as what it points to, unless that is a directory already on the path
    /// from the root (a loop) or nothing (dangling).
    pub async fn list_dir(&self, rel: &str) -> OpResult<Vec<Entry>> {
        let me = self.clone();
        let rel = rel.to_string();
        blocking(move || {
            let follow = me.follows_links();
            let dir = me.open_for_read(&rel, OFlags::DIRECTORY)?;
            let on_path = if follow {
                me.dirs_on_path(&rel)?
            } else {
                Vec::new()
            };
            let mut out = Vec::new();
            for de in rfs::Dir::read_from(&dir)? {
                let de = de?;
                let raw = de.file_name().to_bytes();
                if raw == b"." || raw == b".." {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(raw).map(str::to_string) else {
                    tracing::warn!(
                        "skipping a name that is not UTF-8 in {}",
                        me.path(&rel).display()
                    );
                    continue;
                };
                let st = match rfs::statat(&dir, raw, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(e) if e == Errno::NOENT => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut kind = rfs::FileType::from_raw_mode(st.st_mode);
                let mut st = st;
                if kind == rfs::FileType::Symlink {
                    if !follow {
                        out.push(link_entry(name, &st, LinkKind::NotFollowed));
                        continue;
                    }
                    match rfs::statat(&dir, raw, AtFlags::empty()) {
                        Ok(target) => {
                            kind = rfs::FileType::from_raw_mode(target.st_mode);
                            st = target;
                        }
                        Err(_) => {
                            out.push(link_entry(name, &st, LinkKind::Dangling));
                            continue;
                        }
                    }
                }
                if kind == rfs::FileType::Directory
                    && on_path.contains(&(st.st_dev as u64, st.st_ino as u64))
                {
                    out.push(link_entry(name, &st, LinkKind::Loop));
                } else if kind == rfs::FileType::Directory || kind == rfs::FileType::RegularFile {
                    out.push(stat_entry(name, &st));
                }
            }
            Ok(out)
        })
        .await
    }

    /// (device, inode) of the root and of every directory from it to `rel`
    /// inclusive, symlinks followed: a directory met again below is a loop.
    fn dirs_on_path(&self, rel: &str) -> io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut p = self.root.clone();
        let push = |p: &Path, out: &mut Vec<(u64, u64)>| -> io::Result<()> {
            let md = fs::metadata(p)?;
            out.push((md.dev(), md.ino()));
            Ok(())
        };
        push(&p, &mut out)?;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            p.push(c);
            push(&p, &mut out)?;
        }
        Ok(out)
    }

    /// Metadata of a path (the root: of what it names; below it, a symlink
    /// is refused unless links are followed).
    pub async fn stat(&self, rel: &str) -> OpResult<Entry> {
        let me = self.clone();
        let rel = rel.to_string();
        let name = rel.rsplit('/').next().unwrap_or_default().to_string();
        blocking(move || {
            let md = if rel.is_empty() || me.follows_links() {
                fs::metadata(me.path(&rel))?
            } else {
                fs::File::from(me.shared.beneath.open(&rel, OFlags::PATH, Mode::empty())?)
                    .metadata()?
            };
            Ok(entry(name, &md))
        })
        .await
    }

    /// Reads a whole small file (inline up to 128 KiB, else in one pool call).
    pub async fn read_whole(&self, rel: &str, size: u64) -> OpResult<Bytes> {
        let me = self.clone();
        let rel = rel.to_string();
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let f = move || {
            let f = me.open_for_read(&rel, OFlags::empty())?;
            // One byte more than expected shows a file that grew.
            let mut buf = vec![0u8; len.saturating_add(1)];
            let n = read_full(&f, &mut buf, 0)?;
            buf.truncate(n);
            Ok(Bytes::from(buf))
        };
        if len <= INLINE_MAX {
            Ok(f()?)
        } else {
            blocking(f).await
        }
    }

    /// Opens for reading.
    pub async fn open_read(&self, rel: &str) -> OpResult<LocalReader> {
        let me = self.clone();
        let rel = rel.to_string();
        let file = blocking(move || {
            let buffered = Arc::new(me.open_for_read(&rel, OFlags::empty())?);
            let direct = me.open_direct(&rel, false);
            Ok(DualFile { buffered, direct })
        })
        .await?;
        Ok(LocalReader {
            file: Arc::new(file),
        })
    }

    /// Creates (truncating) the temporary file and sizes it.
    pub async fn create(&self, temp_rel: &str, size: u64) -> OpResult<LocalWriter> {
        self.temp_writer(temp_rel, true, size).await
    }

    /// Opens an existing temporary file for more writes, keeping what it
    /// holds (a resumed copy); `NotFound` when it is gone.
    pub async fn reopen(&self, temp_rel: &str, size: u64) -> OpResult<LocalWriter> {
        self.temp_writer(temp_rel, false, size).await
    }

    /// The temporary file `temp_rel`, created afresh (`fresh`) or opened as
    /// it is, sized to `size`.
    async fn temp_writer(&self, temp_rel: &str, fresh: bool, size: u64) -> OpResult<LocalWriter> {
        let me = self.clone();
        let rel = temp_rel.to_string();
        let file = blocking(move || {
            let buffered = if fresh {
                me.open_for_write(&rel, true)?
            } else {
                fs::File::from(me.shared.beneath.open(&rel, OFlags::RDWR, Mode::empty())?)
            };
            if fresh || buffered.metadata()?.len() != size {
                buffered.set_len(size)?;
            }
            let direct = me.open_direct(&rel, true);
            Ok(DualFile {
                buffered: Arc::new(buffered),
                direct,
            })
        })
        .await?;
        Ok(LocalWriter {
            file: Arc::new(file),
            fs: self.clone(),
            temp: temp_rel.to_string(),
        })
    }

    /// Writes a whole small file and sets its times.
    pub async fn write_whole(&self, temp_rel: &str, data: Bytes, times: FileTimes) -> OpResult<()> {
        let me = self.clone();
        let rel = temp_rel.to_string();
        blocking(move || {
            let mut f = me.open_for_write(&rel, false)?;
            io::Write::write_all(&mut f, &data)?;
            apply_times_handle(&f, &times)
        })
        .await
    }

    /// Writes a whole small file as `temp_rel`, sets its times and renames it
    /// over `final_rel`, all in one call on the I/O pool; the temporary file is
    /// removed on failure. The error names the step that failed.
    pub async fn write_small(
        &self,
        temp_rel: &str,
        final_rel: &str,
        data: Bytes,
        times: FileTimes,
    ) -> Result<(), (&'static str, super::OpError)> {
        let me = self.clone();
        let (temp, dest) = (temp_rel.to_string(), final_rel.to_string());
        let inline = data.len() <= INLINE_MAX;
        let f = move || {
            let written = me.open_for_write(&temp, false).and_then(|mut f| {
                io::Write::write_all(&mut f, &data)?;
                apply_times_handle(&f, &times)
            });
            let step = match written {
                Ok(()) => match me.shared.beneath.rename(&temp, &dest) {
                    Ok(()) => return Ok(Ok(())),
                    Err(e) => ("rename", e),
                },
                Err(e) => ("write", e),
            };
            let _ = me.shared.beneath.unlink(&temp);
            Ok(Err(step))
        };
        let r = if inline {
            f().map_err(Into::into)
        } else {
            blocking(f).await
        };
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err((op, e))) => Err((op, e.into())),
            Err(e) => Err(("write", e)),
        }
    }

    /// Renames over the target (a symlink there is replaced, not followed).
    pub async fn rename(&self, from: &str, to: &str) -> OpResult<()> {
        let me = self.clone();
        let (f, t) = (from.to_string(), to.to_string());
        blocking(move || me.shared.beneath.rename(&f, &t)).await
    }

    /// Sets times and the read-only bit (through a handle: a symlink below
    /// the root is refused, never followed).
    pub async fn set_times(&self, rel: &str, times: FileTimes) -> OpResult<()> {
        if rel.is_empty() {
            let p = self.root.clone();
            return blocking(move || apply_times(&p, &times)).await;
        }
        let me = self.clone();
        let rel = rel.to_string();
        blocking(move || {
            let fd = me
                .shared
                .beneath
                .open(&rel, OFlags::RDONLY, Mode::empty())?;
            apply_times_handle(&fs::File::from(fd), &times)
        })
        .await
    }

    /// Creates a directory (and missing parents); an existing symlink on the
    /// way is refused, not followed.
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        if rel.is_empty() {
            let p = self.root.clone();
            return blocking(move || fs::create_dir_all(p)).await;
        }
        let me = self.clone();
        let rel = rel.to_string();
        blocking(move || me.shared.beneath.mkdir_all(&rel)).await
    }

    /// Deletes a file; a symlink is deleted itself, and a path through one
    /// is refused.
    pub async fn remove_file(&self, rel: &str) -> OpResult<()> {
        let me = self.clone();
        let rel = rel.to_string();
        blocking(move || me.shared.beneath.unlink(&rel)).await
    }

    /// Deletes an empty directory (never one behind a symlink).
    pub async fn remove_dir(&self, rel: &str) -> OpResult<()> {
        let me = self.clone();
        let rel = rel.to_string();
        blocking(move || me.shared.beneath.rmdir(&rel)).await
    }

    /// Block size for big files.
    pub fn io_size(&self) -> u32 {
        LOCAL_IO_SIZE
    }
}

impl LocalReader {
    /// The buffered handle, for a writer that reads from it itself
    /// ([`SmbWriter::write_from`](super::smb::SmbWriter::write_from));
    /// `None` with `--unbuffered` in effect.
    pub fn direct_source(&self) -> Option<Arc<fs::File>> {
        self.file
            .direct
            .is_none()
            .then(|| Arc::clone(&self.file.buffered))
    }

    /// Positional read.
    pub async fn read_at(&self, offset: u64, len: u32) -> OpResult<Bytes> {
        let f = self.file.clone();
        blocking(move || f.read_at(offset, len as usize).map(Bytes::from)).await
    }

    /// Nothing to do: the file closes when the last clone drops.
    pub async fn close(&self) -> OpResult<()> {
        Ok(())
    }
}

impl LocalWriter {
    /// The buffered handle, for a reader that writes into it itself
    /// ([`SmbReader::read_into`](super::smb::SmbReader::read_into)); `None`
    /// with `--unbuffered` in effect (`O_DIRECT` writes go through aligned
    /// buffers here).
    pub fn direct_target(&self) -> Option<Arc<fs::File>> {
        self.file
            .direct
            .is_none()
            .then(|| Arc::clone(&self.file.buffered))
    }

    /// Positional write of the whole buffer.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> OpResult<()> {
        if let Some(e) = self.fs.next_write_fault() {
            return Err(e.into());
        }
        let f = self.file.clone();
        blocking(move || f.write_at(offset, &data)).await
    }

    /// Renames over the final name, then sets times through the open handle.
    pub async fn commit(
        &self,
        final_rel: &str,
        times: Option<FileTimes>,
    ) -> Result<(), CommitError> {
        let (fs, temp, dest) = (self.fs.clone(), self.temp.clone(), final_rel.to_string());
        blocking(move || fs.shared.beneath.rename(&temp, &dest))
            .await
            .map_err(|e| CommitError {
                renamed: false,
                error: e,
            })?;
        if let Some(t) = times {
            let file = self.file.clone();
            blocking(move || apply_times_handle(&file.buffered, &t))
                .await
                .map_err(|e| CommitError {
                    renamed: true,
                    error: e,
                })?;
        }
        Ok(())
    }

    /// Deletes the temporary file.
    pub async fn abort(&self) {
        let (fs, temp) = (self.fs.clone(), self.temp.clone());
        let _ = blocking(move || match fs.shared.beneath.unlink(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn write_read_commit_roundtrip() {
        for unbuffered in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let fs = LocalFs::new(dir.path().to_path_buf(), unbuffered);
            rt().block_on(async {
                let data: Vec<u8> = (0..3 * ALIGN + 17).map(|i| (i % 251) as u8).collect();
                let w = fs.create(".t.tmp", data.len() as u64).await.unwrap();
                w.write_at(ALIGN as u64, Bytes::copy_from_slice(&data[ALIGN..]))
                    .await
                    .unwrap();
                w.write_at(0, Bytes::copy_from_slice(&data[..ALIGN]))
                    .await
                    .unwrap();
                let mtime = FileTime(133_000_000_000_000_000);
                let times = FileTimes {
                    last_write_time: Some(mtime),
                    ..FileTimes::default()
                };
                w.commit("f", Some(times)).await.unwrap();
                assert_eq!(fs::read(dir.path().join("f")).unwrap(), data);
                assert!(!dir.path().join(".t.tmp").exists());
                let r = fs.open_read("f").await.unwrap();
                assert_eq!(
                    r.read_at(ALIGN as u64, 10).await.unwrap(),
                    &data[ALIGN..ALIGN + 10]
                );
                assert_eq!(r.read_at(0, 1 << 20).await.unwrap().len(), data.len());
                assert!(r.read_at(1 << 20, 10).await.unwrap().is_empty());
                let e = fs.stat("f").await.unwrap();
                assert_eq!(
                    (e.size, e.mtime, e.is_dir),
                    (data.len() as u64, mtime, false)
                );
            });
        }
    }

    #[test]
    fn list_mkdir_remove_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path().to_path_buf(), false);
        rt().block_on(async {
            fs.mkdir("a/b").await.unwrap();
            fs.write_whole("a/x", Bytes::from_static(b"hi"), FileTimes::default())
                .await
                .unwrap();
            let mut names: Vec<_> = fs
                .list_dir("a")
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.is_dir))
                .collect();
            names.sort();
            assert_eq!(names, [("b".to_string(), true), ("x".to_string(), false)]);
            let w = fs.create("a/.tmp", 5).await.unwrap();
            w.abort().await;
            assert!(!dir.path().join("a/.tmp").exists());
            fs.remove_file("a/x").await.unwrap();
            fs.remove_dir("a/b").await.unwrap();
            assert!(fs.list_dir("a").await.unwrap().is_empty());
            assert!(fs.list_dir("missing").await.unwrap_err().is_not_found());
        });
    }

    #[test]
    fn readonly_attribute_maps_to_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"x").unwrap();
        apply_times(
            &p,
            &FileTimes {
                attributes: Some(ATTR_READONLY),
                ..FileTimes::default()
            },
        )
        .unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o222, 0);
        let e = entry("f".into(), &fs::metadata(&p).unwrap());
        assert_ne!(e.attributes & ATTR_READONLY, 0);
        apply_times(
            &p,
            &FileTimes {
                attributes: Some(ATTR_ARCHIVE),
                ..FileTimes::default()
            },
        )
        .unwrap();
        assert_ne!(fs::metadata(&p).unwrap().permissions().mode() & 0o200, 0);
    }

    #[test]
    fn symlinks_are_listed_as_themselves_unless_followed() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir(t.path().join("out")).unwrap();
        fs::write(t.path().join("out/secret"), b"s").unwrap();
        symlink("../out", root.join("ldir")).unwrap();
        symlink("..", root.join("d/up")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        let fs = LocalFs::new(root.clone(), false);
        let kinds = |list: Vec<Entry>| {
            let mut v: Vec<_> = list
                .into_iter()
                .map(|e| (e.name.clone(), e.is_dir, LinkKind::of(&e)))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        rt().block_on(async {
            let k = kinds(fs.list_dir("").await.unwrap());
            assert_eq!(
                k,
                [
                    ("d".to_string(), true, None),
                    ("dangling".to_string(), false, Some(LinkKind::NotFollowed)),
                    ("ldir".to_string(), false, Some(LinkKind::NotFollowed)),
                ]
            );
            // Reads through a link are refused, never followed.
            let e = fs.read_whole("ldir/secret", 1).await.unwrap_err();
            assert_eq!(e.code(), "ELOOP", "{e}");
            assert!(fs.list_dir("ldir").await.is_err());
            fs.set_follow_links(true);
            let k = kinds(fs.list_dir("").await.unwrap());
            assert_eq!(
                k[1],
                ("dangling".to_string(), false, Some(LinkKind::Dangling))
            );
            assert_eq!(k[2], ("ldir".to_string(), true, None));
            assert_eq!(&fs.read_whole("ldir/secret", 1).await.unwrap()[..], b"s");
            let k = kinds(fs.list_dir("d").await.unwrap());
            assert_eq!(k, [("up".to_string(), false, Some(LinkKind::Loop))]);
            // Deletes never follow, even so.
            assert_eq!(
                fs.remove_file("ldir/secret").await.unwrap_err().code(),
                "ELOOP"
            );
            assert!(t.path().join("out/secret").exists());
        });
    }
}
