//! The local backend: std file APIs on the blocking pool, positional I/O
//! (`FileExt::{read_at, write_all_at}`) so many block workers share one file,
//! and, with `--unbuffered` on Linux, `O_DIRECT` through aligned buffers with
//! a clean fallback to buffered I/O wherever the file system refuses it.

use std::fs;
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use smb_core::{FileTime, FileTimes};

use super::{CommitError, Entry, OpResult, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READONLY};

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
    root: PathBuf,
    temp: PathBuf,
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
    let is_dir = md.is_dir();
    let mut attributes = if is_dir { ATTR_DIRECTORY } else { ATTR_ARCHIVE };
    if md.permissions().mode() & 0o200 == 0 {
        attributes |= ATTR_READONLY;
    }
    let mtime = md
        .modified()
        .map(FileTime::from_system_time)
        .unwrap_or_default();
    Entry {
        name,
        is_dir,
        size: if is_dir { 0 } else { md.len() },
        mtime,
        attributes,
    }
}

/// With `--unbuffered`, a second handle opened with `O_DIRECT` where the
/// platform and file system allow it; `None` otherwise.
fn open_direct(path: &Path, unbuffered: bool, write: bool) -> Option<fs::File> {
    if !unbuffered {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        fs::OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, write);
        None
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
    /// A tree rooted at `root`.
    pub fn new(root: PathBuf, unbuffered: bool) -> Self {
        Self { root, unbuffered }
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

    /// Lists a directory; symlinks are followed (a dangling one is skipped).
    pub async fn list_dir(&self, rel: &str) -> OpResult<Vec<Entry>> {
        let dir = self.path(rel);
        blocking(move || {
            let mut out = Vec::new();
            for de in fs::read_dir(&dir)? {
                let de = de?;
                let Ok(name) = de.file_name().into_string() else {
                    tracing::warn!("skipping a name that is not UTF-8 in {}", dir.display());
                    continue;
                };
                let md = match fs::metadata(de.path()) {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if md.is_file() || md.is_dir() {
                    out.push(entry(name, &md));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Metadata of a path.
    pub async fn stat(&self, rel: &str) -> OpResult<Entry> {
        let p = self.path(rel);
        let name = rel.rsplit('/').next().unwrap_or_default().to_string();
        blocking(move || Ok(entry(name, &fs::metadata(p)?))).await
    }

    /// Reads a whole small file (inline up to 128 KiB, else in one pool call).
    pub async fn read_whole(&self, rel: &str, size: u64) -> OpResult<Bytes> {
        let p = self.path(rel);
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let f = move || {
            let f = fs::File::open(&p)?;
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
        let p = self.path(rel);
        let unbuffered = self.unbuffered;
        let file = blocking(move || {
            let buffered = Arc::new(fs::File::open(&p)?);
            let direct = open_direct(&p, unbuffered, false);
            Ok(DualFile { buffered, direct })
        })
        .await?;
        Ok(LocalReader {
            file: Arc::new(file),
        })
    }

    /// Creates (truncating) the temporary file and sizes it.
    pub async fn create(&self, temp_rel: &str, size: u64) -> OpResult<LocalWriter> {
        let p = self.path(temp_rel);
        let unbuffered = self.unbuffered;
        let p2 = p.clone();
        let file = blocking(move || {
            let buffered = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p2)?;
            buffered.set_len(size)?;
            let direct = open_direct(&p2, unbuffered, true);
            Ok(DualFile {
                buffered: Arc::new(buffered),
                direct,
            })
        })
        .await?;
        Ok(LocalWriter {
            file: Arc::new(file),
            root: self.root.clone(),
            temp: p,
        })
    }

    /// Writes a whole small file and sets its times.
    pub async fn write_whole(&self, temp_rel: &str, data: Bytes, times: FileTimes) -> OpResult<()> {
        let p = self.path(temp_rel);
        blocking(move || {
            fs::write(&p, &data)?;
            apply_times(&p, &times)
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
        let (temp, dest) = (self.path(temp_rel), self.path(final_rel));
        let inline = data.len() <= INLINE_MAX;
        let f = move || {
            let written = fs::File::create(&temp).and_then(|mut f| {
                io::Write::write_all(&mut f, &data)?;
                apply_times_handle(&f, &times)
            });
            let step = match written {
                Ok(()) => match fs::rename(&temp, &dest) {
                    Ok(()) => return Ok(Ok(())),
                    Err(e) => ("rename", e),
                },
                Err(e) => ("write", e),
            };
            let _ = fs::remove_file(&temp);
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

    /// Renames over the target.
    pub async fn rename(&self, from: &str, to: &str) -> OpResult<()> {
        let (f, t) = (self.path(from), self.path(to));
        blocking(move || fs::rename(f, t)).await
    }

    /// Sets times and the read-only bit.
    pub async fn set_times(&self, rel: &str, times: FileTimes) -> OpResult<()> {
        let p = self.path(rel);
        blocking(move || apply_times(&p, &times)).await
    }

    /// Creates a directory (and missing parents).
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        blocking(move || fs::create_dir_all(p)).await
    }

    /// Deletes a file.
    pub async fn remove_file(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        blocking(move || fs::remove_file(p)).await
    }

    /// Deletes an empty directory.
    pub async fn remove_dir(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        blocking(move || fs::remove_dir(p)).await
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
        let f = self.file.clone();
        blocking(move || f.write_at(offset, &data)).await
    }

    /// Renames over the final name, then sets times.
    pub async fn commit(
        &self,
        final_rel: &str,
        times: Option<FileTimes>,
    ) -> Result<(), CommitError> {
        let (temp, dest) = (self.temp.clone(), self.root.join(final_rel));
        let d = dest.clone();
        blocking(move || fs::rename(&temp, &d))
            .await
            .map_err(|e| CommitError {
                renamed: false,
                error: e,
            })?;
        if let Some(t) = times {
            blocking(move || apply_times(&dest, &t))
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
        let temp = self.temp.clone();
        let _ = blocking(move || match fs::remove_file(&temp) {
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
}
