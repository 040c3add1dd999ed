//! No-follow path resolution beneath a tree's root: every component of a
//! relative path is looked up without following a symlink, so a symlink that
//! appears inside a tree (planted before the run or swapped in during it) is
//! never a way out of the tree for a write, a delete or a no-follow read.
//!
//! One `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has
//! it (Linux 5.6+); elsewhere, or where a seccomp filter refuses it, one
//! `openat(O_NOFOLLOW)` per component from the root's directory handle. The
//! operations themselves (`unlinkat`, `renameat`, `mkdirat`) then act on a
//! name relative to a parent directory handle resolved this way, so there is
//! no window between a check and a use in which a path could be redirected.
//! The root itself is the user's path and is resolved normally, once.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A path that is, or goes through, a symlink the run did not create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFollowed {
    /// The relative path that was refused.
    pub path: String,
}

impl fmt::Display for NotFollowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a symlink or goes through one, not followed",
            self.path
        )
    }
}

impl std::error::Error for NotFollowed {}

impl NotFollowed {
    /// The `io::Error` carrying this refusal.
    pub fn error(path: &str) -> io::Error {
        io::Error::other(Self {
            path: path.to_string(),
        })
    }
}

/// The kernel refused `openat2` once: walk components from then on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// A tree's root and a directory handle on it, opened on first use (a
/// destination root may only be created once the run starts).
#[derive(Debug)]
pub(super) struct Root {
    path: PathBuf,
    fd: OnceLock<OwnedFd>,
}

/// A directory handle: the root's own, or one resolved beneath it.
#[derive(Debug)]
pub(super) enum Dir<'a> {
    /// The root.
    Root(BorrowedFd<'a>),
    /// A directory below the root.
    Owned(OwnedFd),
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Root(fd) => *fd,
            Self::Owned(fd) => fd.as_fd(),
        }
    }
}

/// Flags of a directory handle used only as the base of `*at` calls.
fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Splits `rel` into its components, refusing empty, `.` and `..` ones (a
/// backend path comes from listings and never holds them; one that does is
/// refused rather than resolved).
fn components(rel: &str) -> io::Result<Vec<&str>> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad relative path {rel:?}"),
        ));
    }
    Ok(parts)
}

/// Maps the errors of a no-follow lookup that mean "a symlink was met".
fn refused(e: Errno, rel: &str) -> io::Error {
    if e == Errno::LOOP || e == Errno::XDEV {
        NotFollowed::error(rel)
    } else {
        e.into()
    }
}

impl Root {
    /// The tree at `path`.
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            fd: OnceLock::new(),
        }
    }

    /// The root's directory handle.
    pub(super) fn fd(&self) -> io::Result<BorrowedFd<'_>> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_fd());
        }
        let fd = rfs::open(&self.path, dir_flags(), Mode::empty())?;
        // Two threads may race here; either handle names the same directory.
        Ok(self.fd.get_or_init(|| fd).as_fd())
    }

    /// Opens `rel` (non-empty) with `flags`, no component a symlink.
    pub(super) fn open(&self, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let root = self.fd()?;
        let flags = flags | OFlags::CLOEXEC;
        components(rel)?;
        if !NO_OPENAT2.load(Relaxed) {
            // RESOLVE_NO_SYMLINKS refuses a trailing symlink too (ELOOP), as
            // long as O_NOFOLLOW does not ask for the link itself.
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rfs::openat2(root, rel, flags, mode, how) {
                Ok(fd) => return Ok(fd),
                // ENOSYS: an old kernel; EPERM: a seccomp filter that does
                // not know the call (container runtimes).
                Err(e) if e == Errno::NOSYS || e == Errno::PERM => NO_OPENAT2.store(true, Relaxed),
                Err(e) => return Err(refused(e, rel)),
            }
        }
        open_walk(root, rel, flags | OFlags::NOFOLLOW, mode)
    }

    /// The directory holding `rel` and `rel`'s last component.
    pub(super) fn parent<'r>(&self, rel: &'r str) -> io::Result<(Dir<'_>, &'r str)> {
        match rel.rsplit_once('/') {
            Some((dir, name)) => {
                components(name)?;
                Ok((
                    Dir::Owned(self.open(dir, dir_flags(), Mode::empty())?),
                    name,
                ))
            }
            None => {
                components(rel)?;
                Ok((Dir::Root(self.fd()?), rel))
            }
        }
    }

    /// Deletes the file (or symlink: the link itself) `rel`.
    pub(super) fn unlink(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        rfs::unlinkat(&dir, name, AtFlags::empty()).map_err(|e| refused(e, rel))
    }

    /// Deletes the empty directory `rel` (a symlink is refused with ENOTDIR).
    pub(super) fn rmdir(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        rfs::unlinkat(&dir, name, AtFlags::REMOVEDIR).map_err(|e| refused(e, rel))
    }

    /// Renames `from` over `to` (a symlink at `to` is replaced, not followed).
    pub(super) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        rfs::renameat(&fdir, fname, &tdir, tname).map_err(|e| refused(e, to))
    }

    /// Creates `rel` and its missing parents; an existing component that is a
    /// symlink is refused, even one to a directory.
    pub(super) fn mkdir_all(&self, rel: &str) -> io::Result<()> {
        let mut cur = Dir::Root(self.fd()?);
        let parts = components(rel)?;
        for (i, c) in parts.iter().enumerate() {
            match rfs::mkdirat(&cur, *c, Mode::from_bits_truncate(0o777)) {
                Ok(()) => {}
                Err(e) if e == Errno::EXIST => {}
                Err(e) => return Err(e.into()),
            }
            let at = parts[..=i].join("/");
            let next = rfs::openat(&cur, *c, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| not_a_dir(&cur, c, e, &at))?;
            cur = Dir::Owned(next);
        }
        Ok(())
    }
}

/// An `O_PATH | O_NOFOLLOW | O_DIRECTORY` open of a symlink fails with
/// ENOTDIR (the link itself is no directory): tell that apart from a file.
fn not_a_dir(dir: &impl AsFd, name: &str, e: Errno, rel: &str) -> io::Error {
    if e == Errno::NOTDIR {
        if let Ok(st) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink {
                return NotFollowed::error(rel);
            }
        }
    }
    refused(e, rel)
}

/// The component walk: `openat(O_NOFOLLOW)` from the root, one directory at
/// a time, then the last component with `flags`.
fn open_walk(root: BorrowedFd<'_>, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let parts = components(rel)?;
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut cur = Dir::Root(root);
    for (i, c) in dirs.iter().enumerate() {
        let next = rfs::openat(&cur, *c, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| not_a_dir(&cur, c, e, &parts[..=i].join("/")))?;
        cur = Dir::Owned(next);
    }
    rfs::openat(&cur, *last, flags, mode).map_err(|e| {
        if flags.contains(OFlags::DIRECTORY) {
            not_a_dir(&cur, last, e, rel)
        } else {
            refused(e, rel)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A root holding `d/f`, `link -> outside` and `d/up -> ..`, and an
    /// `outside/secret` next to it.
    fn tree() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"f").unwrap();
        fs::create_dir(t.path().join("outside")).unwrap();
        fs::write(t.path().join("outside/secret"), b"s").unwrap();
        symlink(t.path().join("outside"), root.join("link")).unwrap();
        symlink("..", root.join("d/up")).unwrap();
        symlink("f", root.join("d/flink")).unwrap();
        let r = Root::new(root);
        (t, r)
    }

    fn is_refusal(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<NotFollowed>())
    }

    #[test]
    fn opens_below_the_root_and_refuses_every_symlink() {
        let (_t, r) = tree();
        for walk in [false, true] {
            let open = |rel: &str, flags| {
                if walk {
                    open_walk(
                        r.fd().unwrap(),
                        rel,
                        flags | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )
                } else {
                    r.open(rel, flags, Mode::empty())
                }
            };
            assert!(open("d/f", OFlags::RDONLY).is_ok());
            for bad in ["link/secret", "link", "d/up/d/f", "d/flink"] {
                let e = open(bad, OFlags::RDONLY).unwrap_err();
                assert!(is_refusal(&e), "walk={walk} {bad}: {e:?}");
            }
            let e = open("link", OFlags::RDONLY | OFlags::DIRECTORY).unwrap_err();
            assert!(is_refusal(&e), "walk={walk}: {e:?}");
            for bad in ["../root/d/f", "d/../d/f", "", "d//f", "./d"] {
                assert_eq!(
                    open(bad, OFlags::RDONLY).unwrap_err().kind(),
                    io::ErrorKind::InvalidInput,
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn deletes_and_renames_act_on_the_link_itself() {
        let (t, r) = tree();
        // Through a link: refused; the link itself: unlinked, target kept.
        assert!(is_refusal(&r.unlink("link/secret").unwrap_err()));
        assert!(r.rmdir("link").is_err());
        r.unlink("link").unwrap();
        assert!(t.path().join("outside/secret").exists());
        assert!(!t.path().join("root/link").exists());
        // mkdir_all refuses to go through a symlink to a directory.
        symlink(t.path().join("outside"), t.path().join("root/l2")).unwrap();
        assert!(is_refusal(&r.mkdir_all("l2/new").unwrap_err()));
        assert!(!t.path().join("outside/new").exists());
        r.mkdir_all("a/b/c").unwrap();
        r.mkdir_all("a/b").unwrap();
        assert!(t.path().join("root/a/b/c").is_dir());
        // A rename over a symlink replaces the link.
        fs::write(t.path().join("root/tmp"), b"new").unwrap();
        r.rename("tmp", "l2").unwrap();
        assert_eq!(fs::read(t.path().join("root/l2")).unwrap(), b"new");
        assert_eq!(fs::read(t.path().join("outside/secret")).unwrap(), b"s");
    }
}
