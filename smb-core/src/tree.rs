//! [`Tree`]: a connected share, with path-based helpers. It remembers its
//! share name, so after a reconnect it connects again by itself (on the
//! session's new logon) the first time it is used there.

use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::conn::{new_message, Outgoing, Response, Security};
use crate::error::{Error, Result};
use crate::file::{Disposition, File, FileInfo, FileTime, FileTimes, OpenOptions};
use crate::proto;
use crate::session::{connect_tree, Session, SessionState};
use crate::wire::codec::utf16le;
use crate::wire::create::{
    self as wcreate, access, disposition, options, share, CreateRequest, CreateResponse,
    FileAttributesInfo, FileId, CLOSE_FLAG_POSTQUERY_ATTRIB,
};
use crate::wire::dir::{self as wdir, DirectoryEntry};
use crate::wire::info::{self as winfo, BasicInfo};
use crate::wire::{io as wio, session as wsession, Command, NtStatus, Writer};

/// One entry of a directory listing (FileIdBothDirectoryInformation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (validated: no separators, NUL, `.` or `..`).
    pub name: String,
    /// Metadata from the listing.
    pub info: FileInfo,
}

/// The step of [`Tree::write_file_as`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteStep {
    /// Creating the temporary file, setting its times or writing its data.
    Write,
    /// Renaming the written file to its final name.
    Rename,
}

/// A connected share. Cheap to clone.
///
/// Paths are relative to the share root, with `\` or `/` as separator, no
/// leading separator, and never `.`/`..` components.
#[derive(Clone, Debug)]
pub struct Tree {
    pub(crate) inner: Arc<TreeInner>,
}

#[derive(Debug)]
pub(crate) struct TreeInner {
    pub(crate) session: Session,
    pub(crate) share: String,
    state: RwLock<Arc<TreeState>>,
    /// Held by the one task that connects the tree again after a reconnect.
    reconnect: tokio::sync::Mutex<()>,
}

/// The tree as connected on one session logon.
#[derive(Debug)]
pub(crate) struct TreeState {
    /// The session logon (and through it, the connection) it lives on.
    pub(crate) session: Arc<SessionState>,
    pub(crate) id: u32,
    /// SMB2_SHAREFLAG_ENCRYPT_DATA.
    pub(crate) encrypt: bool,
}

impl TreeState {
    /// How requests on this tree are protected.
    pub(crate) fn security(&self) -> Security {
        self.session.security(self.encrypt)
    }

    /// Sends one request or a compound on this tree and waits for every response.
    pub(crate) async fn call(&self, mut reqs: Vec<Outgoing>) -> Result<Vec<Response>> {
        for r in &mut reqs {
            r.session_id = self.session.id;
            r.tree_id = self.id;
        }
        self.session
            .gen
            .conn
            .call(reqs, &self.security(), None)
            .await
    }

    /// Sends one request and returns its response.
    pub(crate) async fn call1(&self, req: Outgoing) -> Result<Response> {
        self.call(vec![req])
            .await?
            .pop()
            .ok_or_else(|| Error::Protocol("missing response".into()))
    }
}

/// TREE_DISCONNECT of one connected state.
pub(crate) async fn disconnect_state(t: &TreeState) -> Result<()> {
    let mut w = new_message();
    wsession::encode_empty(&mut w);
    let resp = t
        .call1(Outgoing::new(Command::TREE_DISCONNECT, w, 0, 0))
        .await?;
    resp.check(&[])?;
    Ok(())
}

impl FileInfo {
    pub(crate) fn from_attrs(a: &FileAttributesInfo) -> Self {
        Self {
            size: a.end_of_file,
            allocation_size: a.allocation_size,
            creation_time: FileTime(a.creation_time),
            last_access_time: FileTime(a.last_access_time),
            last_write_time: FileTime(a.last_write_time),
            change_time: FileTime(a.change_time),
            attributes: a.file_attributes,
        }
    }

    fn from_dir_entry(e: &DirectoryEntry) -> Self {
        Self {
            size: e.end_of_file,
            allocation_size: e.allocation_size,
            creation_time: FileTime(e.creation_time),
            last_access_time: FileTime(e.last_access_time),
            last_write_time: FileTime(e.last_write_time),
            change_time: FileTime(e.change_time),
            attributes: e.file_attributes,
        }
    }
}

impl FileTimes {
    pub(crate) fn to_basic(self) -> BasicInfo {
        BasicInfo {
            creation_time: self.creation_time.map_or(0, |t| t.0),
            last_access_time: self.last_access_time.map_or(0, |t| t.0),
            last_write_time: self.last_write_time.map_or(0, |t| t.0),
            change_time: self.change_time.map_or(0, |t| t.0),
            file_attributes: self.attributes.unwrap_or(0),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The CREATE request fields for `options` (MS-SMB2 2.2.13).
fn create_fields(o: &OpenOptions) -> (u32, u32, u32) {
    let mut acc = access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE;
    if o.read {
        acc |= access::FILE_READ_DATA | access::FILE_READ_EA | access::READ_CONTROL;
    }
    if o.write {
        acc |= access::FILE_WRITE_DATA
            | access::FILE_APPEND_DATA
            | access::FILE_WRITE_ATTRIBUTES
            | access::FILE_WRITE_EA;
    }
    if o.delete {
        acc |= access::DELETE;
    }
    let disp = match o.disposition {
        Disposition::Open => disposition::OPEN,
        Disposition::Create => disposition::CREATE,
        Disposition::OpenIf => disposition::OPEN_IF,
        Disposition::Overwrite => disposition::OVERWRITE,
        Disposition::OverwriteIf => disposition::OVERWRITE_IF,
        Disposition::Supersede => disposition::SUPERSEDE,
    };
    let mut opts = 0;
    if o.directory {
        opts |= options::DIRECTORY_FILE;
    } else if !o.any_kind {
        opts |= options::NON_DIRECTORY_FILE;
    }
    if o.unbuffered {
        opts |= options::WRITE_THROUGH;
    }
    if o.sequential {
        opts |= options::SEQUENTIAL_ONLY;
    }
    (acc, disp, opts)
}

/// Turns the first failing response of a compound into an error.
fn check_all(resps: &[Response]) -> Result<()> {
    for r in resps {
        r.check(&[])?;
    }
    Ok(())
}

impl Tree {
    pub(crate) fn new(session: Session, share: String, state: TreeState) -> Self {
        Self {
            inner: Arc::new(TreeInner {
                session,
                share,
                state: RwLock::new(Arc::new(state)),
                reconnect: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn state(&self) -> Arc<TreeState> {
        Arc::clone(&self.inner.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The tree on the client's current connection: after a reconnect, the
    /// first caller connects it again (once the session has logged on
    /// again) and the others wait for it.
    pub(crate) async fn current(&self) -> Result<Arc<TreeState>> {
        let sess = self.inner.session.current().await?;
        let st = self.state();
        if Arc::ptr_eq(&st.session, &sess) {
            return Ok(st);
        }
        let _one = self.inner.reconnect.lock().await;
        let st = self.state();
        if Arc::ptr_eq(&st.session, &sess) {
            return Ok(st);
        }
        let new = connect_tree(&self.inner.session, &sess, &self.inner.share)
            .await
            .map_err(|e| Error::Reestablish {
                what: format!("tree `{}`", self.inner.share),
                reason: Box::new(e),
            })?;
        let new = Arc::new(new);
        *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&new);
        Ok(new)
    }

    /// The tree id (on the connection it was last connected on).
    pub fn id(&self) -> u32 {
        self.state().id
    }

    /// The session this tree belongs to.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The share name.
    pub fn share(&self) -> &str {
        &self.inner.share
    }

    /// True when the share requires encryption (SMB2_SHAREFLAG_ENCRYPT_DATA) and we honour it.
    pub fn encrypted(&self) -> bool {
        self.state().encrypt
    }

    /// True when requests on this tree are encrypted (share or session demand).
    pub fn encrypts(&self) -> bool {
        let st = self.state();
        st.encrypt || st.session.encrypts_all()
    }

    pub(crate) fn outgoing(&self, command: Command, msg: Writer) -> Outgoing {
        // SessionId and TreeId are filled at send time, from the state the
        // request goes out on.
        Outgoing::new(command, msg, 0, 0)
    }

    /// True when [`File::read_at_into`] on this tree moves READ data from
    /// the socket into a local file without copying it through memory: on
    /// Linux, when the tree's messages are neither signed nor encrypted.
    pub fn reads_into_files_directly(&self) -> bool {
        let sec = self.security();
        cfg!(target_os = "linux") && sec.signer.is_none() && sec.cipher.is_none()
    }

    pub(crate) fn security(&self) -> Security {
        self.state().security()
    }

    pub(crate) fn info(&self) -> crate::client::NegotiatedInfo {
        self.inner.session.client().negotiated()
    }

    /// Sends on the current tree state (re-established first when needed).
    pub(crate) async fn call(&self, reqs: Vec<Outgoing>) -> Result<Vec<Response>> {
        self.current().await?.call(reqs).await
    }

    fn create_msg(&self, path: &str, acc: u32, disp: u32, opts: u32) -> Result<Outgoing> {
        let p =
            proto::wire_path(path).map_err(|e| Error::InvalidArgument(format!("{path:?}: {e}")))?;
        let name = utf16le(&p);
        let mut w = new_message();
        CreateRequest {
            desired_access: acc,
            file_attributes: 0,
            share_access: share::ALL,
            disposition: disp,
            options: opts,
            name: &name,
        }
        .encode(&mut w);
        Ok(self.outgoing(Command::CREATE, w))
    }

    fn related(&self, command: Command, msg: Writer) -> Outgoing {
        let mut o = self.outgoing(command, msg);
        o.related = true;
        o
    }

    fn close_msg(&self, file_id: FileId, related: bool) -> Outgoing {
        let mut w = new_message();
        wcreate::encode_close(&mut w, file_id, CLOSE_FLAG_POSTQUERY_ATTRIB);
        if related {
            self.related(Command::CLOSE, w)
        } else {
            self.outgoing(Command::CLOSE, w)
        }
    }

    fn set_info_msg(&self, file_id: FileId, class: u8, buf: &[u8], related: bool) -> Outgoing {
        let mut w = new_message();
        winfo::encode_set_info(&mut w, file_id, class, buf);
        if related {
            self.related(Command::SET_INFO, w)
        } else {
            self.outgoing(Command::SET_INFO, w)
        }
    }

    /// CREATE + one related operation + CLOSE, one round trip.
    async fn create_op_close(
        &self,
        path: &str,
        acc: u32,
        opts: u32,
        op: Option<(u8, Vec<u8>)>,
    ) -> Result<FileInfo> {
        let mut reqs = vec![self.create_msg(path, acc, disposition::OPEN, opts)?];
        if let Some((class, buf)) = &op {
            reqs.push(self.set_info_msg(FileId::RELATED, *class, buf, true));
        }
        reqs.push(self.close_msg(FileId::RELATED, true));
        let resps = self.call(reqs).await?;
        check_all(&resps)?;
        let create = CreateResponse::decode(&resps[0].msg)?;
        if op.is_some() {
            winfo::decode_set_info(&resps[1].msg)?;
        }
        let last = resps
            .last()
            .ok_or_else(|| Error::Protocol("missing response".into()))?;
        let info = wcreate::decode_close(&last.msg)?.unwrap_or(create.info);
        Ok(FileInfo::from_attrs(&info))
    }

    /// Opens (or creates) a file or directory.
    pub async fn open(&self, path: &str, options: &OpenOptions) -> Result<File> {
        File::open(self, path, options).await
    }

    /// CREATE on tree state `t`: the handle and its metadata.
    pub(crate) async fn create_on(
        &self,
        t: &TreeState,
        path: &str,
        options: &OpenOptions,
    ) -> Result<(FileId, FileInfo)> {
        let (acc, disp, opts) = create_fields(options);
        let resp = t.call1(self.create_msg(path, acc, disp, opts)?).await?;
        resp.check(&[])?;
        let c = CreateResponse::decode(&resp.msg)?;
        Ok((c.file_id, FileInfo::from_attrs(&c.info)))
    }

    /// Metadata of `path` (one compound CREATE+CLOSE with post-query).
    pub async fn stat(&self, path: &str) -> Result<FileInfo> {
        self.create_op_close(
            path,
            access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            0,
            None,
        )
        .await
    }

    /// Lists a directory (QUERY_DIRECTORY FileIdBothDirectoryInformation until
    /// STATUS_NO_MORE_FILES), without `.` and `..`.
    ///
    /// The first round trip is one compound CREATE + QUERY_DIRECTORY +
    /// QUERY_DIRECTORY, so a small directory is listed in one round trip
    /// (plus the CLOSE).
    ///
    /// A listing longer than [`crate::ClientConfig::max_dir_entries`], or
    /// one in which the server repeats a batch, fails with
    /// [`Error::Protocol`] (as does [`DirLister::next_batch`]).
    pub async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        const FIRST: u32 = 256 * 1024;
        let create = self.create_msg(
            path,
            access::FILE_LIST_DIRECTORY | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            disposition::OPEN,
            options::DIRECTORY_FILE,
        )?;
        let query = || {
            let mut w = new_message();
            wdir::encode_query_directory(&mut w, FileId::RELATED, 0, "*", FIRST);
            let mut q = self.related(Command::QUERY_DIRECTORY, w);
            q.expect_len = FIRST as usize;
            q
        };
        let t = self.current().await?;
        let resps = t.call(vec![create, query(), query()]).await?;
        resps[0].check(&[])?;
        let c = CreateResponse::decode(&resps[0].msg)?;
        let dir = File::listing(
            self.clone(),
            t,
            path,
            c.file_id,
            FileInfo::from_attrs(&c.info),
        );
        let mut lister = DirLister::new(dir, path, self.dir_buffer_len(), self.max_dir_entries());
        let r = async {
            let mut out = Vec::new();
            for resp in &resps[1..] {
                match parse_dir_batch(resp)? {
                    Some(batch) => out.extend(lister.admit(batch)?),
                    None => {
                        lister.done = true;
                        break;
                    }
                }
            }
            while let Some(batch) = lister.next_batch().await? {
                out.extend(batch);
            }
            Ok::<_, Error>(out)
        }
        .await;
        let closed = lister.close().await;
        let out = r?;
        closed?;
        Ok(out)
    }

    /// OutputBufferLength for QUERY_DIRECTORY: MaxTransactSize, capped by
    /// [`crate::ClientConfig::max_io_size`].
    fn dir_buffer_len(&self) -> u32 {
        let info = self.info();
        info.max_transact_size
            .min(self.inner.session.client().config().max_io_size)
            .max(65536)
    }

    /// Opens a directory for streaming enumeration: call
    /// [`DirLister::next_batch`] until it returns `None`, then [`DirLister::close`].
    pub async fn list_dir(&self, path: &str) -> Result<DirLister> {
        let opts = OpenOptions {
            read: true,
            directory: true,
            ..OpenOptions::default()
        };
        let t = self.current().await?;
        let (id, info) = self.create_on(&t, path, &opts).await?;
        let dir = File::listing(self.clone(), t, path, id, info);
        Ok(DirLister::new(
            dir,
            path,
            self.dir_buffer_len(),
            self.max_dir_entries(),
        ))
    }

    /// [`crate::ClientConfig::max_dir_entries`].
    fn max_dir_entries(&self) -> u64 {
        self.inner.session.client().config().max_dir_entries
    }

    /// Reads a whole small file in one round trip (compound CREATE+READ+CLOSE).
    /// Fails with [`crate::Error::FileGrew`] if the
    /// file is larger than `max_len`, which must be ≤ MaxReadSize.
    pub async fn read_file(&self, path: &str, max_len: u32) -> Result<(Bytes, FileInfo)> {
        let info = self.info();
        if max_len > info.max_read_size {
            return Err(Error::InvalidArgument(format!(
                "max_len {max_len} exceeds MaxReadSize {}",
                info.max_read_size
            )));
        }
        let create = self.create_msg(
            path,
            access::FILE_READ_DATA | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            disposition::OPEN,
            options::NON_DIRECTORY_FILE,
        )?;
        let mut w = new_message();
        wio::encode_read(&mut w, FileId::RELATED, 0, max_len, 0);
        let mut read = self.related(Command::READ, w);
        read.expect_len = max_len as usize;
        let resps = self
            .call(vec![create, read, self.close_msg(FileId::RELATED, true)])
            .await?;
        resps[0].check(&[])?;
        let c = CreateResponse::decode(&resps[0].msg)?;
        let data = if resps[1].header.status == NtStatus::END_OF_FILE {
            Bytes::new()
        } else {
            resps[1].check(&[])?;
            let (off, len) = wio::decode_read(&resps[1].msg)?;
            if len > max_len as usize {
                return Err(Error::Decode(crate::wire::DecodeError::new(
                    "read: more data than asked",
                )));
            }
            resps[1].msg.slice(off..off + len)
        };
        resps[2].check(&[])?;
        let info = FileInfo::from_attrs(&wcreate::decode_close(&resps[2].msg)?.unwrap_or(c.info));
        if info.size > data.len() as u64 {
            return Err(Error::FileGrew {
                size: info.size,
                max_len,
            });
        }
        Ok((data, info))
    }

    /// Creates (or replaces) a small file in one round trip: compound
    /// CREATE(overwrite-if)+SET_INFO(times)+WRITE+CLOSE. `data.len()` ≤ MaxWriteSize.
    pub async fn write_file(&self, path: &str, data: Bytes, times: FileTimes) -> Result<FileInfo> {
        let info = self.info();
        if data.len() > info.max_write_size as usize {
            return Err(Error::InvalidArgument(format!(
                "{} bytes exceed MaxWriteSize {}",
                data.len(),
                info.max_write_size
            )));
        }
        let mut reqs = vec![self.create_msg(
            path,
            access::FILE_READ_ATTRIBUTES
                | access::FILE_WRITE_DATA
                | access::FILE_WRITE_ATTRIBUTES
                | access::SYNCHRONIZE,
            disposition::OVERWRITE_IF,
            options::NON_DIRECTORY_FILE,
        )?];
        let with_times = !times.is_empty();
        let len =
            u32::try_from(data.len()).map_err(|_| Error::InvalidArgument("too large".into()))?;
        self.push_times_then_write(&mut reqs, &times, data, len);
        reqs.push(self.close_msg(FileId::RELATED, true));
        let resps = self.call(reqs).await?;
        check_all(&resps)?;
        let c = CreateResponse::decode(&resps[0].msg)?;
        let n = wio::decode_write(&resps[usize::from(with_times) + 1].msg)?;
        if n != len {
            return Err(Error::Protocol(format!("short write: {n} of {len} bytes")));
        }
        let last = resps
            .last()
            .ok_or_else(|| Error::Protocol("missing response".into()))?;
        Ok(FileInfo::from_attrs(
            &wcreate::decode_close(&last.msg)?.unwrap_or(c.info),
        ))
    }

    /// Writes a small file under the temporary name `temp` and renames it over
    /// `path` on the same handle: two round trips, one CREATE.
    ///
    /// 1. CREATE(`temp`, overwrite-if, with DELETE access) + SET_INFO(times)
    ///    + WRITE, handle kept open;
    /// 2. only once every byte is known written: SET_INFO(FileRenameInformation,
    ///    replace) + CLOSE.
    ///
    /// The rename is not in the first compound on purpose: servers fail the
    /// rest of a related chain only after a failed CREATE (MS-SMB2 3.3.5.2.7.2
    /// makes the rest a SHOULD; Samba and ksmbd go on after a failed WRITE), so
    /// a rename there would put a truncated file under `path` on disk full.
    /// The times go before the WRITE: Samba then treats them as sticky and arms
    /// no delayed write-time timer per open (source3/smbd/fileio.c), which
    /// under load cost it more CPU than the rest of the upload.
    ///
    /// On failure the temporary file is deleted (best effort, on the open
    /// handle when there is one) and `path` is untouched.
    /// `data.len()` ≤ MaxWriteSize.
    pub async fn write_file_as(
        &self,
        temp: &str,
        path: &str,
        data: Bytes,
        times: FileTimes,
    ) -> std::result::Result<FileInfo, (WriteStep, Error)> {
        let max = self.info().max_write_size;
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| {
                let msg = format!("{} bytes exceed MaxWriteSize {max}", data.len());
                (WriteStep::Write, Error::InvalidArgument(msg))
            })?;
        let target = proto::wire_path(path)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                let msg = format!("bad rename target {path:?}");
                (WriteStep::Rename, Error::InvalidArgument(msg))
            })?;
        // Both compounds go out on one tree state: the handle lives there.
        let t = self.current().await.map_err(|e| (WriteStep::Write, e))?;
        let file_id = self
            .create_and_write(&t, temp, data, len, times)
            .await
            .map_err(|e| (WriteStep::Write, e))?;
        let rename = winfo::encode_rename(&target, true);
        let reqs = vec![
            self.set_info_msg(file_id, winfo::FILE_RENAME_INFORMATION, &rename, false),
            self.close_msg(FileId::RELATED, true),
        ];
        let resps = match t.call(reqs).await {
            Ok(r) => r,
            Err(e) => {
                // Connection-level failure: the server closes the handle when
                // the session goes; try to get rid of the temp anyway.
                self.delete_open(&t, file_id).await;
                return Err((WriteStep::Rename, e));
            }
        };
        if let Err(e) = resps[0].check(&[]) {
            if resps[1].check(&[]).is_ok() {
                let _ = self.remove_file(temp).await;
            } else {
                // The CLOSE failed with the rename: the handle is still open.
                self.delete_open(&t, file_id).await;
            }
            return Err((WriteStep::Rename, e));
        }
        let info = resps[1]
            .check(&[])
            .and_then(|()| Ok(wcreate::decode_close(&resps[1].msg)?))
            .map_err(|e| (WriteStep::Rename, e))?;
        // Without post-query attributes (never from Samba) only the size is known.
        Ok(info.map_or_else(
            || FileInfo {
                size: u64::from(len),
                ..FileInfo::default()
            },
            |a| FileInfo::from_attrs(&a),
        ))
    }

    /// Appends SET_INFO(times, when any) and WRITE(`data`, `len` bytes at 0)
    /// on the related handle. Times go first: set explicitly on the handle
    /// they stay (a later WRITE does not move them), and Samba then arms no
    /// delayed write-time timer for the WRITE (measured: smbd CPU per 10,000
    /// small files 12.6 s → 4.1 s with the rest of `write_file_as`).
    fn push_times_then_write(
        &self,
        reqs: &mut Vec<Outgoing>,
        times: &FileTimes,
        data: Bytes,
        len: u32,
    ) {
        if !times.is_empty() {
            reqs.push(self.set_info_msg(
                FileId::RELATED,
                winfo::FILE_BASIC_INFORMATION,
                &times.to_basic().encode(),
                true,
            ));
        }
        let mut w = new_message();
        wio::encode_write(&mut w, FileId::RELATED, 0, len, 0);
        let mut write = self.related(Command::WRITE, w);
        write.payload = Some(data);
        reqs.push(write);
    }

    /// Compound 1 of [`Self::write_file_as`]: the open handle once `data` is
    /// written; on failure after the CREATE the file is deleted and closed.
    async fn create_and_write(
        &self,
        t: &TreeState,
        temp: &str,
        data: Bytes,
        len: u32,
        times: FileTimes,
    ) -> Result<FileId> {
        let mut reqs = vec![self.create_msg(
            temp,
            access::FILE_READ_ATTRIBUTES
                | access::FILE_WRITE_DATA
                | access::FILE_WRITE_ATTRIBUTES
                | access::DELETE
                | access::SYNCHRONIZE,
            disposition::OVERWRITE_IF,
            options::NON_DIRECTORY_FILE,
        )?];
        self.push_times_then_write(&mut reqs, &times, data, len);
        let resps = t.call(reqs).await?;
        resps[0].check(&[])?;
        let file_id = CreateResponse::decode(&resps[0].msg)?.file_id;
        let rest = check_all(&resps[1..]).and_then(|()| {
            let n = resps
                .last()
                .map(|r| wio::decode_write(&r.msg))
                .transpose()?
                .unwrap_or(0);
            if n == len {
                Ok(())
            } else {
                Err(Error::Protocol(format!("short write: {n} of {len} bytes")))
            }
        });
        match rest {
            Ok(()) => Ok(file_id),
            Err(e) => {
                self.delete_open(t, file_id).await;
                Err(e)
            }
        }
    }

    /// Best effort: marks an open file delete-on-close and closes it.
    async fn delete_open(&self, t: &TreeState, file_id: FileId) {
        let buf = winfo::encode_disposition(true);
        let reqs = vec![
            self.set_info_msg(file_id, winfo::FILE_DISPOSITION_INFORMATION, &buf, false),
            self.close_msg(FileId::RELATED, true),
        ];
        let _ = t.call(reqs).await;
    }

    /// Creates a directory; succeeds when it already exists as a directory.
    pub async fn create_dir(&self, path: &str) -> Result<()> {
        let create = self.create_msg(
            path,
            access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            disposition::OPEN_IF,
            options::DIRECTORY_FILE,
        )?;
        let resps = self
            .call(vec![create, self.close_msg(FileId::RELATED, true)])
            .await?;
        check_all(&resps)
    }

    /// Deletes a file.
    pub async fn remove_file(&self, path: &str) -> Result<()> {
        let buf = winfo::encode_disposition(true);
        self.create_op_close(
            path,
            access::DELETE | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            options::NON_DIRECTORY_FILE,
            Some((winfo::FILE_DISPOSITION_INFORMATION, buf)),
        )
        .await
        .map(|_| ())
    }

    /// Deletes an empty directory.
    pub async fn remove_dir(&self, path: &str) -> Result<()> {
        let buf = winfo::encode_disposition(true);
        self.create_op_close(
            path,
            access::DELETE | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            options::DIRECTORY_FILE,
            Some((winfo::FILE_DISPOSITION_INFORMATION, buf)),
        )
        .await
        .map(|_| ())
    }

    /// Renames `from` to `to` (both relative to the share root).
    pub async fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()> {
        let target =
            proto::wire_path(to).map_err(|e| Error::InvalidArgument(format!("{to:?}: {e}")))?;
        if target.is_empty() {
            return Err(Error::InvalidArgument("empty rename target".into()));
        }
        let buf = winfo::encode_rename(&target, replace);
        self.create_op_close(
            from,
            access::DELETE | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            0,
            Some((winfo::FILE_RENAME_INFORMATION, buf)),
        )
        .await
        .map(|_| ())
    }

    /// Sets times/attributes on `path`.
    pub async fn set_times(&self, path: &str, times: FileTimes) -> Result<()> {
        let buf = times.to_basic().encode();
        self.create_op_close(
            path,
            access::FILE_WRITE_ATTRIBUTES | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            0,
            Some((winfo::FILE_BASIC_INFORMATION, buf)),
        )
        .await
        .map(|_| ())
    }

    /// TREE_DISCONNECT.
    pub async fn disconnect(&self) -> Result<()> {
        disconnect_state(&self.state()).await
    }
}

/// One QUERY_DIRECTORY response: `None` at STATUS_NO_MORE_FILES, else the
/// entries without `.`/`..`, each name validated.
fn parse_dir_batch(resp: &Response) -> Result<Option<Vec<DirEntry>>> {
    if resp.header.status == NtStatus::NO_MORE_FILES {
        return Ok(None);
    }
    resp.check(&[])?;
    let buf = wdir::decode_output_buffer(&resp.msg)?;
    let mut out = Vec::new();
    for e in wdir::decode_directory_entries(buf)? {
        if e.name == "." || e.name == ".." {
            continue;
        }
        wdir::validate_name(&e.name)?;
        out.push(DirEntry {
            info: FileInfo::from_dir_entry(&e),
            name: e.name,
        });
    }
    Ok(Some(out))
}

/// A directory being enumerated in batches (one QUERY_DIRECTORY each).
#[derive(Debug)]
pub struct DirLister {
    dir: File,
    out_len: u32,
    done: bool,
    bounds: ListingBounds,
}

/// Limits on one listing, against a server that never ends it: at most
/// `max` entries in all, no batch returned twice (a fingerprint of each
/// batch's names with a per-listing random key), and a few empty batches
/// at most.
#[derive(Debug)]
struct ListingBounds {
    path: String,
    max: u64,
    listed: u64,
    empty: u32,
    keys: std::collections::hash_map::RandomState,
    batches: std::collections::HashSet<u64>,
}

/// Empty batches (only `.`/`..`, or nothing) tolerated in one listing.
const MAX_EMPTY_BATCHES: u32 = 8;

impl ListingBounds {
    fn check(&mut self, batch: &[DirEntry]) -> Result<()> {
        if batch.is_empty() {
            self.empty += 1;
            if self.empty > MAX_EMPTY_BATCHES {
                return Err(Error::Protocol(format!(
                    "listing {:?}: the server sent {} empty batches without ending the listing",
                    self.path, self.empty
                )));
            }
            return Ok(());
        }
        let fingerprint = {
            use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
            let mut h = self.keys.build_hasher();
            for e in batch {
                e.name.hash(&mut h);
            }
            h.finish()
        };
        if !self.batches.insert(fingerprint) {
            return Err(Error::Protocol(format!(
                "listing {:?}: the server repeated a batch of {} entries (from {:?}) instead of ending the listing",
                self.path,
                batch.len(),
                batch[0].name
            )));
        }
        self.listed += batch.len() as u64;
        if self.listed > self.max {
            return Err(Error::Protocol(format!(
                "listing {:?}: more than {} entries without an end (the limit of max_dir_entries)",
                self.path, self.max
            )));
        }
        Ok(())
    }
}

impl DirLister {
    fn new(dir: File, path: &str, out_len: u32, max: u64) -> Self {
        Self {
            dir,
            out_len,
            done: false,
            bounds: ListingBounds {
                path: path.to_string(),
                max,
                listed: 0,
                empty: 0,
                keys: std::collections::hash_map::RandomState::new(),
                batches: std::collections::HashSet::new(),
            },
        }
    }

    /// A batch, once it is within the listing's bounds.
    fn admit(&mut self, batch: Vec<DirEntry>) -> Result<Vec<DirEntry>> {
        self.bounds.check(&batch)?;
        Ok(batch)
    }

    /// The next batch of entries (without `.`/`..`; names validated), or
    /// `None` after STATUS_NO_MORE_FILES.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<DirEntry>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let (t, fid) = self.dir.handle().await?;
            let mut w = new_message();
            wdir::encode_query_directory(&mut w, fid, 0, "*", self.out_len);
            let mut req = Outgoing::new(Command::QUERY_DIRECTORY, w, 0, 0);
            req.expect_len = self.out_len as usize;
            let resp = t.call1(req).await?;
            match parse_dir_batch(&resp)? {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(out) => {
                    let out = self.admit(out)?;
                    if !out.is_empty() {
                        return Ok(Some(out));
                    }
                }
            }
        }
    }

    /// Closes the directory handle.
    pub async fn close(self) -> Result<()> {
        self.dir.close().await.map(|_| ())
    }
}
