//! [`File`]: an open handle, shareable across tasks for positional I/O. It
//! remembers its path, open options and CreateGuid, so after a reconnect it
//! re-establishes itself the first time it is used on the new connection:
//! a durable handle ([`OpenOptions::durable`], SMB 3.x) is reclaimed with
//! CREATE + DH2C (MS-SMB2 3.2.4.4) and stays the same open, with its lease;
//! any other handle, or one the server no longer has, is opened again by
//! path (a plain reopen of the existing file).
//!
//! A durable CREATE whose connection went before its reply came may have
//! opened the file on the server, an open we never heard of. The next open
//! of that path sends it again as a replay (MS-SMB2 3.2.4.3.5, 3.3.5.9.10):
//! the same CreateGuid, the same lease key, SMB2_FLAGS_REPLAY_OPERATION. A
//! server that finds the CreateGuid in its replay cache returns that very
//! open; one that does not (Samba 4.17 keeps the cache per connection
//! process) opens the file again, and since the lease key is the same, the
//! new open shares the lease of the one nobody heard of instead of waiting
//! for it to be broken.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::client::HandleCounters;
use crate::conn::new_message;
use crate::error::{Error, Result};
use crate::tree::{create_fields, Tree, TreeState};
use crate::wire::codec::utf16le;
use crate::wire::create::{
    self as wcreate, context, lease_state, oplock, share, CreateContext, CreateRequest,
    CreateResponse, DurableReconnectV2, DurableRequestV2, FileId, CLOSE_FLAG_POSTQUERY_ATTRIB,
};
use crate::wire::info as winfo;
use crate::wire::ioctl::{self, CopyChunkResponse, IoctlResponse};
use crate::wire::{io as wio, Command, Dialect, NtStatus};

/// A Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
/// Zero means "not set" / "unchanged" in SET_INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime(pub u64);

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;

impl FileTime {
    /// Converts from a `SystemTime` (clamped to the representable range).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => {
                let ticks =
                    d.as_secs().saturating_mul(10_000_000) + u64::from(d.subsec_nanos() / 100);
                Self(UNIX_EPOCH_AS_FILETIME.saturating_add(ticks))
            }
            Err(e) => {
                let d = e.duration();
                let ticks =
                    d.as_secs().saturating_mul(10_000_000) + u64::from(d.subsec_nanos() / 100);
                Self(UNIX_EPOCH_AS_FILETIME.saturating_sub(ticks))
            }
        }
    }

    /// Converts to a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= UNIX_EPOCH_AS_FILETIME {
            let t = self.0 - UNIX_EPOCH_AS_FILETIME;
            UNIX_EPOCH + Duration::new(t / 10_000_000, ((t % 10_000_000) * 100) as u32)
        } else {
            let t = UNIX_EPOCH_AS_FILETIME - self.0;
            UNIX_EPOCH - Duration::new(t / 10_000_000, ((t % 10_000_000) * 100) as u32)
        }
    }
}

/// Metadata of a file or directory (from CREATE, CLOSE with post-query, or QUERY_INFO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// End of file in bytes.
    pub size: u64,
    /// Allocation size in bytes.
    pub allocation_size: u64,
    /// Creation time.
    pub creation_time: FileTime,
    /// Last access time.
    pub last_access_time: FileTime,
    /// Last write time (the "mtime" a copier compares).
    pub last_write_time: FileTime,
    /// Change time.
    pub change_time: FileTime,
    /// FILE_ATTRIBUTE_* bits (MS-FSCC 2.6).
    pub attributes: u32,
}

impl FileInfo {
    /// FILE_ATTRIBUTE_DIRECTORY is set.
    pub fn is_dir(&self) -> bool {
        self.attributes & 0x10 != 0
    }
}

/// Times (and attributes) to set with SET_INFO FileBasicInformation.
/// `None` leaves the value unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileTimes {
    /// Creation time.
    pub creation_time: Option<FileTime>,
    /// Last access time.
    pub last_access_time: Option<FileTime>,
    /// Last write time.
    pub last_write_time: Option<FileTime>,
    /// Change time.
    pub change_time: Option<FileTime>,
    /// FILE_ATTRIBUTE_* bits; `None` leaves them unchanged.
    pub attributes: Option<u32>,
}

/// What CREATE does when the name exists or not (MS-SMB2 2.2.13 CreateDisposition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Disposition {
    /// Open an existing file; fail when missing.
    #[default]
    Open,
    /// Create a new file; fail when it exists.
    Create,
    /// Open if it exists, else create.
    OpenIf,
    /// Truncate an existing file; fail when missing.
    Overwrite,
    /// Truncate if it exists, else create.
    OverwriteIf,
    /// Replace if it exists, else create.
    Supersede,
}

/// How to open a file or directory.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Request read access.
    pub read: bool,
    /// Request write access.
    pub write: bool,
    /// Request DELETE access (needed for rename and delete).
    pub delete: bool,
    /// Open a directory (FILE_DIRECTORY_FILE); otherwise FILE_NON_DIRECTORY_FILE
    /// unless [`OpenOptions::any_kind`] is set.
    pub directory: bool,
    /// Open whatever is there, file or directory.
    pub any_kind: bool,
    /// CreateDisposition.
    pub disposition: Disposition,
    /// Ask the server not to cache (SMB 3.0.2+ unbuffered read/write flags, write-through).
    pub unbuffered: bool,
    /// FILE_SEQUENTIAL_ONLY hint.
    pub sequential: bool,
    /// Ask for a durable handle (SMB 3.x: DH2Q with a lease, RWH when
    /// writing, RH when reading; MS-SMB2 3.2.4.3.5, 3.2.4.3.8): after a lost
    /// connection the server keeps the open for
    /// [`ClientConfig::durable_timeout`](crate::ClientConfig::durable_timeout)
    /// and the file reclaims it, instead of opening the file again by path.
    /// Whether the server granted it: [`File::is_durable`]. Ignored for
    /// directories and before SMB 3.0.
    pub durable: bool,
}

impl OpenOptions {
    /// Open an existing file for reading.
    pub fn read() -> Self {
        Self {
            read: true,
            ..Self::default()
        }
    }
    /// Create or truncate a file for writing.
    pub fn create_write() -> Self {
        Self {
            read: true,
            write: true,
            delete: true,
            disposition: Disposition::OverwriteIf,
            ..Self::default()
        }
    }
}

/// An open file or directory. Cheap to clone; clones share the handle, and
/// concurrent `read_at`/`write_at` calls are pipelined on the connection.
#[derive(Clone, Debug)]
pub struct File {
    pub(crate) inner: Arc<FileInner>,
}

#[derive(Debug)]
pub(crate) struct FileInner {
    pub(crate) info: FileInfo,
    tree: Tree,
    /// Where the file is now (a rename on the handle moves it).
    path: RwLock<String>,
    options: OpenOptions,
    /// Opened again after a reconnect (false for a directory being listed:
    /// a new handle would restart the enumeration).
    reopen: bool,
    state: RwLock<Arc<FileState>>,
    /// Held by the one task that opens the file again after a reconnect.
    reopening: tokio::sync::Mutex<()>,
    unbuffered: bool,
    closed: AtomicBool,
    /// WRITEs (offset, length) that were in flight on a durable handle when
    /// its connection went: sent again on the reclaimed handle, they carry
    /// SMB2_FLAGS_REPLAY_OPERATION.
    lost_writes: Mutex<Vec<(u64, u32)>>,
}

/// The handle as opened on one tree connection.
#[derive(Debug)]
pub(crate) struct FileState {
    pub(crate) tree: Arc<TreeState>,
    pub(crate) id: FileId,
    /// Names this open to the server across reconnects (MS-SMB2 2.2.13.2.11).
    create_guid: [u8; 16],
    /// The lease the server granted, if any.
    pub(crate) lease: Option<HeldLease>,
    /// The server made the open durable (a DH2Q context came back).
    durable: bool,
    /// This state is a durable handle reclaimed after a reconnect.
    reclaimed: bool,
}

/// A lease held on an open (MS-SMB2 3.2.1.5 File.LeaseKey, File.LeaseState).
#[derive(Debug)]
pub(crate) struct HeldLease {
    pub(crate) key: [u8; 16],
    /// `lease_state::*`, lowered by breaks.
    pub(crate) state: AtomicU32,
}

impl FileState {
    /// A state with no lease and no durability.
    fn plain(tree: Arc<TreeState>, id: FileId) -> Self {
        Self {
            tree,
            id,
            create_guid: [0; 16],
            lease: None,
            durable: false,
            reclaimed: false,
        }
    }

    /// The server keeps this open across a disconnect: durable, and (for a
    /// lease) still holding handle caching, which Samba requires at
    /// disconnect time (a break that takes H away ends durability).
    fn is_durable(&self) -> bool {
        self.durable
            && self.lease.as_ref().map_or(true, |l| {
                l.state.load(Ordering::Acquire) & lease_state::HANDLE != 0
            })
    }
}

/// A durable CREATE sent on a connection that went before its reply came:
/// the server may have made the open (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LostCreate {
    create_guid: [u8; 16],
    lease_key: [u8; 16],
    /// Desired access, disposition and create options: only the same
    /// request is replayed (a replay returns the open as first asked for).
    request: (u32, u32, u32),
    /// By then the server has dropped any open it made (the durable
    /// timeout we asked for has run out since the loss).
    pub(crate) until: Instant,
}

/// What a CREATE of a [`File`] asks for beyond the plain open.
#[derive(Clone, Copy, Debug)]
enum Ask {
    /// A durable handle with a lease (MS-SMB2 3.2.4.3.5, 3.2.4.3.8);
    /// `replay`: the same request again after its connection went
    /// (SMB2_FLAGS_REPLAY_OPERATION, same CreateGuid and lease key).
    Durable {
        create_guid: [u8; 16],
        lease_key: [u8; 16],
        replay: bool,
    },
    /// Reclaim a durable open on a new connection (MS-SMB2 3.2.4.4).
    Reclaim {
        old: FileId,
        create_guid: [u8; 16],
        lease: Option<([u8; 16], u32)>,
    },
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b
}

/// Whether to ask for a durable handle: asked, a file, SMB 3.x.
fn wants_durable(tree: &Tree, options: &OpenOptions) -> bool {
    options.durable
        && !options.directory
        && !options.any_kind
        && tree.session().client().generation().negotiated.dialect >= Dialect::SMB3_0
}

/// One CREATE of a [`File`] on tree state `t` with the contexts `ask`
/// names: the handle's state and metadata.
async fn create_file(
    tree: &Tree,
    t: &Arc<TreeState>,
    path: &str,
    options: &OpenOptions,
    ask: Ask,
) -> Result<(FileState, FileInfo)> {
    let (acc, disp, opts) = create_fields(options);
    let p = crate::proto::wire_path(path)
        .map_err(|e| Error::InvalidArgument(format!("{path:?}: {e}")))?;
    let name = utf16le(&p);
    let req = CreateRequest {
        desired_access: acc,
        file_attributes: 0,
        share_access: share::ALL,
        disposition: disp,
        options: opts,
        name: &name,
    };
    let mut want = lease_state::READ | lease_state::HANDLE;
    if options.write {
        want |= lease_state::WRITE;
    }
    let (create_guid, data) = match ask {
        Ask::Durable {
            create_guid,
            lease_key,
            replay: _,
        } => {
            let timeout = tree.session().client().config().durable_timeout;
            let dh2q = DurableRequestV2 {
                timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
                flags: 0,
                create_guid,
            };
            let lease = wcreate::Lease {
                key: lease_key,
                state: want,
                v2: true,
                ..wcreate::Lease::default()
            };
            let data = vec![
                (context::DH2Q, dh2q.encode()),
                (context::RQLS, lease.encode()),
            ];
            (create_guid, data)
        }
        Ask::Reclaim {
            old,
            create_guid,
            lease,
        } => {
            let dh2c = DurableReconnectV2 {
                file_id: old,
                create_guid,
                flags: 0,
            };
            let mut data = vec![(context::DH2C, dh2c.encode())];
            if let Some((key, state)) = lease {
                // The lease comes back with the open (MS-SMB2 3.3.5.9.12:
                // a leased open reclaimed without it is not found).
                let l = wcreate::Lease {
                    key,
                    state,
                    v2: true,
                    ..wcreate::Lease::default()
                };
                data.push((context::RQLS, l.encode()));
            }
            (create_guid, data)
        }
    };
    let contexts: Vec<CreateContext<'_>> = data
        .iter()
        .map(|(n, d)| CreateContext {
            name: n.as_slice(),
            data: d,
        })
        .collect();
    let level = if contexts.iter().any(|c| c.name == context::RQLS) {
        oplock::LEASE
    } else {
        oplock::NONE
    };
    let mut w = new_message();
    req.encode_with(&mut w, level, &contexts);
    let mut out = tree.outgoing(Command::CREATE, w);
    out.replay = matches!(ask, Ask::Durable { replay: true, .. });
    let resp = t.call1(out).await?;
    resp.check(&[])?;
    let c = CreateResponse::decode(&resp.msg)?;
    let durable = c.durable_v2()?.is_some();
    let lease = if c.oplock_level == oplock::LEASE {
        c.lease()?.map(|l| HeldLease {
            key: l.key,
            state: AtomicU32::new(l.state),
        })
    } else {
        None
    };
    let reclaimed = matches!(ask, Ask::Reclaim { .. });
    let state = FileState {
        tree: Arc::clone(t),
        id: c.file_id,
        create_guid,
        lease,
        // A successful reclaim is the durable open again, context or not.
        durable: durable || reclaimed,
        reclaimed,
    };
    Ok((state, FileInfo::from_attrs(&c.info)))
}

impl FileInner {
    /// The handle's state as last (re-)established.
    pub(crate) fn current_state(&self) -> Arc<FileState> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for FileInner {
    fn drop(&mut self) {
        // A handle dropped without close(): close it in the background so the
        // server does not keep it open until the session ends.
        let st = Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(l) = &st.lease {
            self.tree.session().client().forget_lease(&l.key);
        }
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // On the connection it was opened on: after a reconnect the old
            // handle is gone with its connection (a durable one the server
            // drops when its timeout runs out), and nothing is sent.
            rt.spawn(async move {
                let mut w = new_message();
                wcreate::encode_close(&mut w, st.id, 0);
                let _ = st
                    .tree
                    .call1(crate::conn::Outgoing::new(Command::CLOSE, w, 0, 0))
                    .await;
            });
        }
    }
}

/// Chunks per FSCTL_SRV_COPYCHUNK_WRITE and bytes per chunk: within the
/// limits Windows and Samba document (256 chunks, 1 MiB each, 16 MiB total).
const COPYCHUNK_MAX_CHUNKS: usize = 16;
const COPYCHUNK_MAX_CHUNK: u32 = 1024 * 1024;

/// [`File::read_at_into`] writes replies up to this size on the calling
/// task; larger ones on tokio's blocking pool.
const INLINE_WRITE_MAX: usize = 128 * 1024;

fn more_than_asked() -> Error {
    Error::Decode(crate::wire::DecodeError::new("read: more data than asked"))
}

/// Writes all of `buf` into `f` at `off` without moving its cursor.
fn write_all_at(f: &std::fs::File, buf: &[u8], off: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, off)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut off) = (buf, off);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(f, buf, off)? {
                0 => return Err(std::io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    off += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// Fills `buf` from `f` at `off`; a file that ends first is an error.
fn read_exact_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut off) = (buf, off);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(f, buf, off)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    off += n as u64;
                }
            }
        }
        Ok(())
    }
}

impl File {
    fn new(
        tree: Tree,
        path: &str,
        options: &OpenOptions,
        (state, info): (FileState, FileInfo),
        reopen: bool,
    ) -> Self {
        let f = Self {
            inner: Arc::new(FileInner {
                info,
                tree,
                path: RwLock::new(path.to_string()),
                options: options.clone(),
                reopen,
                state: RwLock::new(Arc::new(state)),
                reopening: tokio::sync::Mutex::new(()),
                unbuffered: options.unbuffered,
                closed: AtomicBool::new(false),
                lost_writes: Mutex::new(Vec::new()),
            }),
        };
        f.register_lease();
        f
    }

    /// Lets lease breaks for the current state's lease find this file.
    fn register_lease(&self) {
        if let Some(l) = &self.state().lease {
            self.inner
                .tree
                .session()
                .client()
                .remember_lease(l.key, Arc::downgrade(&self.inner));
        }
    }

    /// Opens `path` on `tree` (see [`Tree::open`]): with a durable handle
    /// and a lease when [`OpenOptions::durable`] asks and the dialect has them.
    pub(crate) async fn open(tree: &Tree, path: &str, options: &OpenOptions) -> Result<Self> {
        let t = tree.current().await?;
        let opened = Self::create(tree, &t, path, options, None).await?;
        if options.durable {
            tracing::debug!(
                %path,
                durable = opened.0.durable,
                lease = ?opened.0.lease.as_ref().map(|l| l.state.load(Ordering::Relaxed)),
                "opened"
            );
        }
        Ok(Self::new(tree.clone(), path, options, opened, true))
    }

    /// A new open of `path` on `t`: durable when asked and possible, else
    /// plain. `lease_key`: the key of a lease this file held before.
    async fn create(
        tree: &Tree,
        t: &Arc<TreeState>,
        path: &str,
        options: &OpenOptions,
        lease_key: Option<[u8; 16]>,
    ) -> Result<(FileState, FileInfo)> {
        if wants_durable(tree, options) {
            Self::create_durable(tree, t, path, options, lease_key).await
        } else {
            let (id, info) = tree.create_on(t, path, options).await?;
            Ok((FileState::plain(Arc::clone(t), id), info))
        }
    }

    /// A new durable open of `path` on `t`; the replay of a CREATE of it
    /// that was lost in flight when there is one (see the module docs).
    async fn create_durable(
        tree: &Tree,
        t: &Arc<TreeState>,
        path: &str,
        options: &OpenOptions,
        lease_key: Option<[u8; 16]>,
    ) -> Result<(FileState, FileInfo)> {
        let client = tree.session().client();
        // Share names compare without case; paths as sent.
        let key = format!("{}\\{path}", tree.share().to_lowercase());
        let request = create_fields(options);
        let lost = client.take_lost_create(&key);
        // The key of a lease the server may hold for a lost open of this
        // path comes first: a new open under it shares that lease. Then
        // the key belongs to the file, not to one open (MS-SMB2 3.2.4.3:
        // File.LeaseKey): opened again after a refused reclaim, the file
        // keeps it, so the new open joins the lease the server may still
        // hold for the old, disconnected one.
        let lease_key = lost
            .map(|l| l.lease_key)
            .or(lease_key)
            .unwrap_or_else(random16);
        // A new GUID for each new open (MS-SMB2 3.2.4.3.5); Samba refuses
        // one it still has in its replay cache.
        let (mut create_guid, mut replay) = match lost.filter(|l| l.request == request) {
            Some(l) => (l.create_guid, true),
            None => (random16(), false),
        };
        loop {
            let ask = Ask::Durable {
                create_guid,
                lease_key,
                replay,
            };
            let r = create_file(tree, t, path, options, ask).await;
            match &r {
                Ok(_) if replay => {
                    HandleCounters::bump(&client.inner.handles.creates_replayed);
                    tracing::debug!(%path, "lost CREATE replayed");
                }
                Err(e) if e.needs_reconnect() => {
                    // Sent, maybe executed, never answered: replayed by
                    // the next open of this path.
                    let timeout = client.config().durable_timeout;
                    client.remember_lost_create(
                        key,
                        LostCreate {
                            create_guid,
                            lease_key,
                            request,
                            until: Instant::now() + timeout,
                        },
                    );
                }
                Err(e) if replay => {
                    // The server took it for something else (a CreateGuid
                    // it holds for another session, a replay of a request
                    // still running): open anew, under the same lease key.
                    tracing::debug!(%path, error = %e, "replayed CREATE refused; opening anew");
                    (create_guid, replay) = (random16(), false);
                    continue;
                }
                _ => {}
            }
            return r;
        }
    }

    /// A directory handle being listed: never reopened after a reconnect
    /// (the listing must start over instead).
    pub(crate) fn listing(
        tree: Tree,
        t: Arc<TreeState>,
        path: &str,
        id: FileId,
        info: FileInfo,
    ) -> Self {
        let opts = OpenOptions {
            read: true,
            directory: true,
            ..OpenOptions::default()
        };
        Self::new(tree, path, &opts, (FileState::plain(t, id), info), false)
    }

    fn state(&self) -> Arc<FileState> {
        self.inner.current_state()
    }

    /// The handle on the client's current connection: after a reconnect the
    /// first caller re-establishes it (the session and tree come back
    /// first) and the others wait for it. See [`File::handle_state`].
    pub(crate) async fn handle(&self) -> Result<(Arc<TreeState>, FileId)> {
        let st = self.handle_state(true).await?;
        Ok((Arc::clone(&st.tree), st.id))
    }

    /// The handle's state on the client's current connection. After a
    /// reconnect a durable handle is reclaimed (CREATE + DH2C with the same
    /// FileId, CreateGuid and lease key, MS-SMB2 3.2.4.4, on the session
    /// logged on again with PreviousSessionId and the tree connected
    /// again, as 3.2.4.4 orders); when the server refuses (it dropped the
    /// open, or the file changed meanwhile), or the handle was not durable,
    /// the existing file is opened again by path with the same access
    /// (`reopen`; durable again when asked, under a new CreateGuid). A file
    /// that cannot come back is [`Error::Reestablish`] naming it.
    async fn handle_state(&self, reopen: bool) -> Result<Arc<FileState>> {
        let t = self.inner.tree.current().await?;
        let st = self.state();
        if Arc::ptr_eq(&st.tree, &t) {
            return Ok(st);
        }
        let path = self
            .inner
            .path
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let what = || format!("file `{path}`");
        if !self.inner.reopen {
            return Err(Error::Reestablish {
                what: what(),
                reason: Box::new(Error::ConnectionLost(
                    crate::proto::conn::LostReason::Dropped,
                )),
            });
        }
        let _one = self.inner.reopening.lock().await;
        let st = self.state();
        if Arc::ptr_eq(&st.tree, &t) {
            return Ok(st);
        }
        let tree = &self.inner.tree;
        let counters = &tree.session().client().inner.handles;
        // The file exists now (we created it, or it was opened): open it
        // as it is, never truncate what was written before the reconnect.
        let opts = OpenOptions {
            disposition: Disposition::Open,
            ..self.inner.options.clone()
        };
        let mut refused = None;
        if st.is_durable() {
            let ask = Ask::Reclaim {
                old: st.id,
                create_guid: st.create_guid,
                lease: st
                    .lease
                    .as_ref()
                    .map(|l| (l.key, l.state.load(Ordering::Acquire))),
            };
            match create_file(tree, &t, &path, &opts, ask).await {
                Ok((new, _)) => {
                    HandleCounters::bump(&counters.reclaimed);
                    tracing::debug!(%path, "durable handle reclaimed after a reconnect");
                    return Ok(self.replace_state(new));
                }
                // The connection went again: the caller reconnects and we
                // try the reclaim once more.
                Err(e) if e.needs_reconnect() => return Err(e),
                Err(e) => {
                    HandleCounters::bump(&counters.reclaim_failed);
                    tracing::debug!(%path, error = %e, "durable handle not reclaimed");
                    refused = Some(e);
                }
            }
        }
        if !reopen {
            let reason = refused.unwrap_or(Error::ConnectionLost(
                crate::proto::conn::LostReason::Dropped,
            ));
            return Err(Error::Reestablish {
                what: what(),
                reason: Box::new(reason),
            });
        }
        // Writes lost with the old open are plain writes on the new one.
        self.inner
            .lost_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let key = st.lease.as_ref().map(|l| l.key);
        let (new, _) = Self::create(tree, &t, &path, &opts, key)
            .await
            .map_err(|e| Error::Reestablish {
                what: what(),
                reason: Box::new(e),
            })?;
        HandleCounters::bump(&counters.reopened);
        tracing::debug!(%path, refused = refused.is_some(), "reopened after a reconnect");
        Ok(self.replace_state(new))
    }

    /// Installs a re-established handle (and its lease for breaks).
    fn replace_state(&self, new: FileState) -> Arc<FileState> {
        let new = Arc::new(new);
        let old = std::mem::replace(
            &mut *self.inner.state.write().unwrap_or_else(|e| e.into_inner()),
            Arc::clone(&new),
        );
        let client = self.inner.tree.session().client();
        if let Some(l) = &old.lease {
            if new.lease.as_ref().map_or(true, |n| n.key != l.key) {
                client.forget_lease(&l.key);
            }
        }
        self.register_lease();
        new
    }

    /// True when the server granted a durable handle (SMB 3.x, asked with
    /// [`OpenOptions::durable`]) and it still is one: a lease break that
    /// took away handle caching ends durability. After a reconnect, a
    /// durable handle is reclaimed rather than opened again.
    pub fn is_durable(&self) -> bool {
        self.state().is_durable()
    }

    /// The lease state held on the handle (`wire::create::lease_state`
    /// bits: R 0x1, H 0x2, W 0x4), if the server granted a lease.
    pub fn lease_state(&self) -> Option<u32> {
        self.state()
            .lease
            .as_ref()
            .map(|l| l.state.load(Ordering::Acquire))
    }

    /// The handle is closed: lease breaks no longer concern it.
    fn forget_lease(&self) {
        if let Some(l) = &self.state().lease {
            self.inner.tree.session().client().forget_lease(&l.key);
        }
    }

    /// Metadata returned by CREATE.
    pub fn info(&self) -> &FileInfo {
        &self.inner.info
    }

    fn dialect(&self) -> Dialect {
        self.inner
            .tree
            .session()
            .client()
            .generation()
            .negotiated
            .dialect
    }

    /// Reads up to `len` bytes at `offset` (one READ; `len` is capped at MaxReadSize).
    /// Returns fewer bytes at end of file and an empty buffer at or past it.
    ///
    /// The data is a slice of the buffer the socket was read into (no copy
    /// in smb-core); that buffer goes back to the connection's pool when
    /// the last slice is dropped. For full speed keep several reads of
    /// `max_read_size` in flight on the handle (4 at loopback, more with
    /// latency; see [`Client::max_bytes_in_flight`](crate::Client::max_bytes_in_flight)).
    pub async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        let (t, fid) = self.handle().await?;
        let Some(req) = self.read_request(fid, offset, len) else {
            return Ok(Bytes::new());
        };
        let len = req.expect_len;
        let resp = t.call1(req).await?;
        if resp.header.status == NtStatus::END_OF_FILE {
            return Ok(Bytes::new());
        }
        resp.check(&[])?;
        let (off, n) = wio::decode_read(&resp.msg)?;
        if n > len {
            return Err(more_than_asked());
        }
        Ok(resp.msg.slice(off..off + n))
    }

    /// A READ of up to `len` bytes at `offset` (capped at MaxReadSize;
    /// `expect_len` is the capped length); `None` when that is zero.
    fn read_request(&self, fid: FileId, offset: u64, len: u32) -> Option<crate::conn::Outgoing> {
        let tree = &self.inner.tree;
        // ≤ MaxReadSize, and within the credits the server grants.
        let len = len.min(tree.io_limits().read);
        if len == 0 {
            return None;
        }
        let flags = if self.inner.unbuffered && self.dialect() >= Dialect::SMB3_0_2 {
            wio::READFLAG_UNBUFFERED
        } else {
            0
        };
        let mut w = new_message();
        wio::encode_read(&mut w, fid, offset, len, flags);
        let mut req = tree.outgoing(Command::READ, w);
        req.expect_len = len as usize;
        Some(req)
    }

    /// WRITE flags for this handle (`unbuffered`: write-through, unbuffered).
    fn write_flags(&self) -> u32 {
        let d = self.dialect();
        let mut flags = 0;
        if self.inner.unbuffered {
            if d >= Dialect::SMB2_1 {
                flags |= wio::WRITEFLAG_WRITE_THROUGH;
            }
            if d >= Dialect::SMB3_0_2 {
                flags |= wio::WRITEFLAG_UNBUFFERED;
            }
        }
        flags
    }

    /// True when [`read_at_into`](Self::read_at_into) and
    /// [`write_at_from`](Self::write_at_from) move data between the socket
    /// and a local file without copying it through memory: on Linux, when
    /// this handle's messages are neither signed nor encrypted (signed or
    /// encrypted data must pass through memory to be signed or checked).
    pub fn reads_into_files_directly(&self) -> bool {
        self.inner.tree.reads_into_files_directly()
    }

    /// Reads up to `len` bytes at `offset` (one READ, capped at MaxReadSize)
    /// and writes them into `dest` at `dest_offset`; returns how many bytes
    /// that was (fewer at end of file, 0 at or past it).
    ///
    /// When [`reads_into_files_directly`](Self::reads_into_files_directly),
    /// the connection's reader moves the payload socket → pipe → `dest` with
    /// `splice(2)`: the kernel copies each byte once, into `dest`'s page
    /// cache, and nothing passes through user space. Otherwise (and for a
    /// reply that is small, signed or encrypted) the data is received into
    /// memory, checked, and written with a positional write. `dest` must be
    /// open for writing and not in append mode; with `O_DIRECT`, offsets and
    /// lengths must suit the device. A failed write into `dest` is
    /// [`Error::Io`]; the connection stays usable.
    pub async fn read_at_into(
        &self,
        offset: u64,
        len: u32,
        dest: &Arc<std::fs::File>,
        dest_offset: u64,
    ) -> Result<u32> {
        let (t, fid) = self.handle().await?;
        let Some(mut req) = self.read_request(fid, offset, len) else {
            return Ok(0);
        };
        let len = req.expect_len;
        if self.reads_into_files_directly() {
            req.sink = Some(crate::conn::Sink {
                file: Arc::clone(dest),
                offset: dest_offset,
                max_len: len,
            });
        }
        let resp = t.call1(req).await?;
        if resp.header.status == NtStatus::END_OF_FILE {
            return Ok(0);
        }
        resp.check(&[])?;
        let n = match resp.spliced {
            Some(n) => n,
            None => {
                let (off, n) = wio::decode_read(&resp.msg)?;
                if n > len {
                    return Err(more_than_asked());
                }
                let data = resp.msg.slice(off..off + n);
                let dest = Arc::clone(dest);
                let write = move || write_all_at(&dest, &data, dest_offset);
                if n > INLINE_WRITE_MAX {
                    tokio::task::spawn_blocking(write)
                        .await
                        .map_err(|e| Error::Io(Arc::new(std::io::Error::other(e))))?
                } else {
                    write()
                }
                .map_err(|e| Error::Io(Arc::new(e)))?;
                n
            }
        };
        u32::try_from(n).map_err(|_| more_than_asked())
    }

    /// Writes `data` at `offset` (one WRITE; `data.len()` must be ≤ MaxWriteSize).
    /// Returns the count the server wrote: fewer than `data.len()` when the
    /// credits the server grants cap the request ([`Tree::io_limits`]).
    pub async fn write_at(&self, offset: u64, data: Bytes) -> Result<u32> {
        let tree = &self.inner.tree;
        let max = tree.session().client().generation().info.max_write_size;
        let len = u32::try_from(data.len())
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "write of {} bytes exceeds MaxWriteSize {max}",
                    data.len()
                ))
            })?;
        // Past what the server's credits allow now: a short write.
        let len = len.min(tree.io_limits().write);
        let data = data.slice(..len as usize);
        let st = self.handle_state(true).await?;
        let mut w = new_message();
        wio::encode_write(&mut w, st.id, offset, len, self.write_flags());
        let mut req = tree.outgoing(Command::WRITE, w);
        req.payload = Some(data);
        req.replay = self.is_replay(&st, offset, len);
        let resp = self.sent_write(&st, offset, len, st.tree.call1(req).await)?;
        resp.check(&[])?;
        Ok(wio::decode_write(&resp.msg)?)
    }

    /// True when this WRITE was in flight on the durable handle when its
    /// connection went and `st` is the reclaimed handle: it goes again as a
    /// replay (SMB2_FLAGS_REPLAY_OPERATION, MS-SMB2 3.2.4.1.1). The server
    /// then counts it against the open's ChannelSequence as a replay
    /// (3.3.5.2.10) instead of as a new request.
    fn is_replay(&self, st: &FileState, offset: u64, len: u32) -> bool {
        if !st.reclaimed {
            return false;
        }
        let mut lost = self
            .inner
            .lost_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(i) = lost.iter().position(|w| *w == (offset, len)) else {
            return false;
        };
        lost.swap_remove(i);
        HandleCounters::bump(&self.inner.tree.session().client().inner.handles.replayed);
        true
    }

    /// Remembers a WRITE on a durable handle that the connection took with
    /// it, so its resend is marked a replay.
    fn sent_write(
        &self,
        st: &FileState,
        offset: u64,
        len: u32,
        r: Result<crate::conn::Response>,
    ) -> Result<crate::conn::Response> {
        if let Err(e) = &r {
            if e.needs_reconnect() && st.is_durable() {
                let mut lost = self
                    .inner
                    .lost_writes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                // Bounded: a handle has at most a window of writes in flight.
                if lost.len() < 1024 {
                    lost.push((offset, len));
                }
            }
        }
        r
    }

    /// Writes `len` bytes of the local file `src`, from `src_offset`, at
    /// `offset` (one WRITE; `len` must be ≤ MaxWriteSize); returns the count
    /// the server wrote.
    ///
    /// When [`reads_into_files_directly`](Self::reads_into_files_directly)
    /// (Linux, neither signed nor encrypted), the connection's writer moves
    /// the data file → pipe → socket with `splice(2)`: nothing is copied in
    /// user space. Otherwise the range is read into memory first (on tokio's
    /// blocking pool) and sent like [`write_at`](Self::write_at). If `src`
    /// cannot supply `len` bytes (an I/O error, or it is shorter), the call
    /// fails with [`Error::Io`] even though the server may have written
    /// something: treat the remote range as garbage.
    pub async fn write_at_from(
        &self,
        offset: u64,
        len: u32,
        src: &Arc<std::fs::File>,
        src_offset: u64,
    ) -> Result<u32> {
        if !self.reads_into_files_directly() {
            let f = Arc::clone(src);
            let data = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; len as usize];
                read_exact_at(&f, &mut buf, src_offset).map(|()| buf)
            })
            .await
            .map_err(|e| Error::Io(Arc::new(std::io::Error::other(e))))?
            .map_err(|e| Error::Io(Arc::new(e)))?;
            return self.write_at(offset, Bytes::from(data)).await;
        }
        let tree = &self.inner.tree;
        let max = tree.session().client().generation().info.max_write_size;
        if len > max {
            return Err(Error::InvalidArgument(format!(
                "write of {len} bytes exceeds MaxWriteSize {max}"
            )));
        }
        // Past what the server's credits allow now: a short write.
        let len = len.min(tree.io_limits().write);
        let st = self.handle_state(true).await?;
        let mut w = new_message();
        wio::encode_write(&mut w, st.id, offset, len, self.write_flags());
        let mut req = tree.outgoing(Command::WRITE, w);
        req.source = Some(crate::conn::Source {
            file: Arc::clone(src),
            offset: src_offset,
            len: len as usize,
            error: Arc::default(),
        });
        req.replay = self.is_replay(&st, offset, len);
        let resp = self.sent_write(&st, offset, len, st.tree.call1(req).await)?;
        resp.check(&[])?;
        Ok(wio::decode_write(&resp.msg)?)
    }

    /// FLUSH.
    pub async fn flush(&self) -> Result<()> {
        let (t, fid) = self.handle().await?;
        let mut w = new_message();
        wcreate::encode_flush(&mut w, fid);
        let resp = t.call1(self.inner.tree.outgoing(Command::FLUSH, w)).await?;
        resp.check(&[])?;
        crate::wire::session::decode_empty(&resp.msg)?;
        Ok(())
    }

    async fn set_info(&self, class: u8, buf: &[u8]) -> Result<()> {
        let (t, fid) = self.handle().await?;
        let mut w = new_message();
        winfo::encode_set_info(&mut w, fid, class, buf);
        let resp = t
            .call1(self.inner.tree.outgoing(Command::SET_INFO, w))
            .await?;
        resp.check(&[])?;
        winfo::decode_set_info(&resp.msg)?;
        Ok(())
    }

    /// Sets the end of file (FileEndOfFileInformation).
    pub async fn set_len(&self, len: u64) -> Result<()> {
        self.set_info(
            winfo::FILE_END_OF_FILE_INFORMATION,
            &winfo::encode_end_of_file(len),
        )
        .await
    }

    /// Sets times/attributes (FileBasicInformation).
    pub async fn set_times(&self, times: FileTimes) -> Result<()> {
        self.set_info(winfo::FILE_BASIC_INFORMATION, &times.to_basic().encode())
            .await
    }

    /// Renames the open file to `new_path` (relative to the share root)
    /// (FileRenameInformation). Needs DELETE access.
    pub async fn rename(&self, new_path: &str, replace: bool) -> Result<()> {
        let target = crate::proto::wire_path(new_path)
            .map_err(|e| Error::InvalidArgument(format!("{new_path:?}: {e}")))?;
        if target.is_empty() {
            return Err(Error::InvalidArgument("empty rename target".into()));
        }
        self.set_info(
            winfo::FILE_RENAME_INFORMATION,
            &winfo::encode_rename(&target, replace),
        )
        .await?;
        // A reopen after a reconnect must find it under its new name.
        *self.inner.path.write().unwrap_or_else(|e| e.into_inner()) = target;
        Ok(())
    }

    /// Marks the file for deletion on close (FileDispositionInformation). Needs DELETE access.
    pub async fn set_delete_on_close(&self) -> Result<()> {
        self.set_info(
            winfo::FILE_DISPOSITION_INFORMATION,
            &winfo::encode_disposition(true),
        )
        .await
    }

    /// QUERY_INFO FileAllInformation (basic + standard).
    pub async fn query_info(&self) -> Result<FileInfo> {
        let (t, fid) = self.handle().await?;
        let mut w = new_message();
        winfo::encode_query_info(&mut w, fid, winfo::FILE_ALL_INFORMATION, 4096);
        let resp = t
            .call1(self.inner.tree.outgoing(Command::QUERY_INFO, w))
            .await?;
        // BUFFER_OVERFLOW: a long name did not fit; the fixed part we need did.
        resp.check(&[NtStatus::BUFFER_OVERFLOW])?;
        let buf = crate::wire::dir::decode_output_buffer(&resp.msg)?;
        let (b, s) = winfo::decode_all_information(buf)?;
        Ok(FileInfo {
            size: s.end_of_file,
            allocation_size: s.allocation_size,
            creation_time: FileTime(b.creation_time),
            last_access_time: FileTime(b.last_access_time),
            last_write_time: FileTime(b.last_write_time),
            change_time: FileTime(b.change_time),
            attributes: b.file_attributes,
        })
    }

    async fn ioctl(
        &self,
        ctl: u32,
        input: &[u8],
        max_out: u32,
        also_ok: &[NtStatus],
    ) -> Result<(NtStatus, Vec<u8>)> {
        let (t, fid) = self.handle().await?;
        let mut w = new_message();
        ioctl::encode_ioctl(&mut w, ctl, fid, input, max_out);
        let mut req = self.inner.tree.outgoing(Command::IOCTL, w);
        req.expect_len = max_out as usize;
        let resp = t.call1(req).await?;
        resp.check(also_ok)?;
        let out = IoctlResponse::decode(&resp.msg)?;
        Ok((resp.header.status, out.output.to_vec()))
    }

    /// FSCTL_SRV_REQUEST_RESUME_KEY: a key naming this file as a server-side copy source.
    pub async fn resume_key(&self) -> Result<[u8; 24]> {
        let (_, out) = self
            .ioctl(ioctl::FSCTL_SRV_REQUEST_RESUME_KEY, &[], 32, &[])
            .await?;
        Ok(ioctl::decode_resume_key(&out)?)
    }

    /// FSCTL_SRV_COPYCHUNK(_WRITE): copies `(source_offset, target_offset, length)` chunks
    /// from the file named by `source_key` into this file, on the server. Returns bytes written.
    pub async fn server_copy(
        &self,
        source_key: [u8; 24],
        chunks: &[(u64, u64, u32)],
    ) -> Result<u64> {
        // Split into chunks of at most 1 MiB, then requests of at most 16 chunks.
        let mut pieces = Vec::new();
        for &(src, dst, len) in chunks {
            let mut done = 0u32;
            while done < len {
                let n = (len - done).min(COPYCHUNK_MAX_CHUNK);
                pieces.push((src + u64::from(done), dst + u64::from(done), n));
                done += n;
            }
        }
        let mut total = 0u64;
        for batch in pieces.chunks(COPYCHUNK_MAX_CHUNKS) {
            let input = ioctl::encode_copychunk(&source_key, batch);
            let (_, out) = self
                .ioctl(ioctl::FSCTL_SRV_COPYCHUNK_WRITE, &input, 12, &[])
                .await?;
            let r = CopyChunkResponse::decode(&out)?;
            let want: u64 = batch.iter().map(|c| u64::from(c.2)).sum();
            total += u64::from(r.total_bytes_written);
            if u64::from(r.total_bytes_written) != want {
                return Err(Error::Unsupported(format!(
                    "server copy wrote {} of {want} bytes",
                    r.total_bytes_written
                )));
            }
        }
        Ok(total)
    }

    /// CLOSE with post-query attributes; returns the final metadata.
    pub async fn close(&self) -> Result<FileInfo> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidArgument("file already closed".into()));
        }
        // On the connection the handle lives on: after a reconnect the old
        // handle went with its connection (and the server closed it), so
        // there is nothing to close unless it was opened again. A durable
        // handle the server keeps for us is reclaimed to be closed now,
        // rather than left to its timeout with its lease and share mode.
        let mut st = self.state();
        let current = || self.inner.tree.session().client().generation_number();
        if st.tree.session.gen.number != current() {
            if st.is_durable() {
                match self.handle_state(false).await {
                    Ok(new) => st = new,
                    Err(e) if e.needs_reconnect() => return Err(e),
                    Err(_) => {}
                }
            }
            if st.tree.session.gen.number != current() {
                self.inner.closed.store(true, Ordering::Release);
                self.forget_lease();
                return Ok(self.inner.info.clone());
            }
        }
        let mut w = new_message();
        wcreate::encode_close(&mut w, st.id, CLOSE_FLAG_POSTQUERY_ATTRIB);
        // Marked closed unless the connection went first: then a caller may
        // reconnect and call again (which finds nothing left to close).
        let resp = match st
            .tree
            .call1(self.inner.tree.outgoing(Command::CLOSE, w))
            .await
        {
            Err(e) if e.needs_reconnect() => return Err(e),
            r => {
                self.inner.closed.store(true, Ordering::Release);
                self.forget_lease();
                r?
            }
        };
        resp.check(&[])?;
        Ok(wcreate::decode_close(&resp.msg)?
            .map_or_else(|| self.inner.info.clone(), |a| FileInfo::from_attrs(&a)))
    }
}
