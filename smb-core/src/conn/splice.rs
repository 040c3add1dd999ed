//! Zero-copy receive of READ data on Linux: socket → pipe → file with
//! `splice(2)`, so the payload of an unsigned, unencrypted READ response is
//! never copied into user space. The kernel moves the socket's pages into a
//! pipe by reference and copies them once, into the destination file's page
//! cache: one copy per byte instead of two (socket → buffer, buffer → file).
//!
//! Only the reader task reads the socket, so the stream stays in frame:
//! every byte of the payload is consumed even when the file write fails (the
//! rest is then discarded and the waiter gets the file error). The file
//! writes run on a drain thread, so that the one copy left overlaps with
//! reading the socket instead of alternating with it.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::pipe::{
    fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Sink;

/// Pipe sizes tried, largest first (above 1 MiB needs `CAP_SYS_RESOURCE` or a
/// raised `/proc/sys/fs/pipe-max-size`); each splice moves at most this much.
const PIPE_SIZES: [usize; 3] = [4 << 20, 1 << 20, 256 << 10];

/// The reader task's pipe.
pub(super) struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    cap: usize,
}

impl Pipe {
    pub(super) fn new() -> io::Result<Self> {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
        // The default works, only with more syscalls per MiB (and a user
        // over `pipe-user-pages-soft` gets 2 pages): ask what it is.
        let cap = match PIPE_SIZES
            .iter()
            .find_map(|&s| fcntl_setpipe_size(&w, s).ok())
        {
            Some(c) => c,
            None => fcntl_getpipe_size(&w)?,
        };
        Ok(Self { r, w, cap })
    }
}

/// Pipes in a [`Drainer`]'s pool: while the drain thread empties one into
/// the file, the reader fills the next from the socket.
const DRAIN_PIPES: usize = 4;

/// One spliced READ payload in progress. When the last reference goes (the
/// reader's and every queued piece's), `on_done` runs with the first file
/// error: the response is routed only once every byte is in the file.
///
/// Only if every byte of the payload came off the socket
/// ([`FrameDone::received`]): a payload cut short by a lost connection
/// never runs `on_done`, so its response is never routed and its waiter
/// fails with the connection instead. (Routing it would report the whole
/// length as read while the file holds only the bytes that arrived: the
/// rest of the block would stay a hole of zeros, and the copy would call
/// it done.)
pub(super) struct FrameDone {
    err: std::sync::Mutex<Option<io::Error>>,
    on_done: std::sync::Mutex<Option<OnDone>>,
    received: AtomicBool,
}

type OnDone = Box<dyn FnOnce(Option<io::Error>) + Send>;

impl FrameDone {
    pub(super) fn new(on_done: impl FnOnce(Option<io::Error>) + Send + 'static) -> Arc<Self> {
        Arc::new(Self {
            err: std::sync::Mutex::new(None),
            on_done: std::sync::Mutex::new(Some(Box::new(on_done))),
            received: AtomicBool::new(false),
        })
    }

    /// The whole payload was read from the socket (and queued for the file).
    fn received(&self) {
        self.received.store(true, Ordering::Release);
    }

    fn failed(&self) -> bool {
        self.err.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn fail(&self, e: io::Error) {
        self.err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }
}

impl Drop for FrameDone {
    fn drop(&mut self) {
        let err = self.err.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let f = self
            .on_done
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Not received whole: dropped unrun (see the type's comment).
        if let Some(f) = f.filter(|_| *self.received.get_mut()) {
            f(err);
        }
    }
}

/// A piece of payload in a pipe, for the drain thread to write.
struct Job {
    pipe: Pipe,
    n: usize,
    file: Arc<File>,
    offset: u64,
    done: Arc<FrameDone>,
}

/// The reader's pipe pool and drain thread (made on first use).
pub(super) struct Drainer {
    jobs: std::sync::mpsc::Sender<Job>,
    free: mpsc::Receiver<Pipe>,
}

impl Drainer {
    pub(super) fn new() -> io::Result<Self> {
        let (free_tx, free) = mpsc::channel(DRAIN_PIPES);
        for _ in 0..DRAIN_PIPES {
            free_tx
                .try_send(Pipe::new()?)
                .map_err(|_| io::Error::other("pipe pool full"))?;
        }
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("smb-splice".into())
            .spawn(move || drain_thread(&rx, &free_tx))?;
        Ok(Self { jobs, free })
    }
}

/// Empties pipes into their files in order and hands them back; exits when
/// the reader (and with it the job channel) is gone.
fn drain_thread(rx: &std::sync::mpsc::Receiver<Job>, free: &mpsc::Sender<Pipe>) {
    while let Ok(job) = rx.recv() {
        let mut off = job.offset;
        let mut file_err = job
            .done
            .failed()
            .then(|| io::Error::other("earlier piece failed"));
        let pipe = match drain(&job.pipe, job.n, &job.file, &mut off, &mut file_err) {
            Ok(()) => job.pipe,
            Err(e) => {
                // The pipe may still hold bytes: never reuse it.
                job.done.fail(e);
                match Pipe::new() {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        if let Some(e) = file_err {
            job.done.fail(e);
        }
        drop(job.done);
        if free.try_send(pipe).is_err() {
            return;
        }
    }
}

/// Writes `prefix` (payload bytes already read into the receive buffer) and
/// then the next `len` bytes of the socket into `sink`: the reader fills
/// pipes from the socket, the drain thread empties them into the file, and
/// `done` runs when all is written (with the file error, if any; a file
/// system that cannot take `splice` gives `EINVAL`). The whole payload is
/// consumed from the socket either way. `Err` is a socket failure: the
/// connection is lost, `done` never runs (the payload did not all arrive),
/// and the pieces that did arrive are already written (or dropped): when
/// the caller fails the waiter, nothing is left that could still write
/// into its file.
pub(super) async fn to_file(
    sock: &TcpStream,
    drainer: &mut Drainer,
    prefix: &[u8],
    len: usize,
    sink: &Sink,
    done: Arc<FrameDone>,
) -> Result<(), String> {
    let mut held = false;
    match receive(sock, drainer, prefix, len, sink, &done, &mut held).await {
        Ok(()) => {
            done.received();
            Ok(())
        }
        Err(e) => {
            drop(done);
            // Every pipe not in our hand comes back to the pool once the
            // drain thread is through with it: then no piece of this frame
            // (or an earlier one) is still on its way into a file.
            let out = DRAIN_PIPES - usize::from(held);
            for _ in 0..out {
                if drainer.free.recv().await.is_none() {
                    break;
                }
            }
            Err(e)
        }
    }
}

/// The body of [`to_file`]; `held`: an `Err` came while a pipe taken from
/// the pool was in hand (it is dropped, with whatever it holds).
async fn receive(
    sock: &TcpStream,
    drainer: &mut Drainer,
    prefix: &[u8],
    mut len: usize,
    sink: &Sink,
    done: &Arc<FrameDone>,
    held: &mut bool,
) -> Result<(), String> {
    let mut off = sink.offset;
    if let Err(e) = sink.file.write_all_at(prefix, off) {
        done.fail(e);
    }
    off += prefix.len() as u64;
    while len > 0 {
        let pipe = drainer
            .free
            .recv()
            .await
            .ok_or("the splice drain thread stopped")?;
        *held = true;
        let want = len.min(pipe.cap);
        let mut in_pipe = 0;
        while in_pipe < want {
            let fill = || {
                splice(
                    sock,
                    None,
                    &pipe.w,
                    None,
                    want - in_pipe,
                    SpliceFlags::NONBLOCK | SpliceFlags::MOVE,
                )
                .map_err(io::Error::from)
            };
            // EAGAIN means "socket empty" only while the pipe is empty; with
            // data in it, it may mean "pipe full" (its capacity is counted in
            // pages, and socket data fills pages partly). Only the former
            // may clear tokio's read readiness: clearing it with data still
            // in the socket would wait for an edge that never comes.
            let r = if in_pipe == 0 {
                sock.try_io(Interest::READABLE, fill)
            } else {
                fill()
            };
            match r {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => in_pipe += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if in_pipe > 0 {
                        break;
                    }
                    sock.readable()
                        .await
                        .map_err(|e| format!("read failed: {e}"))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
        len -= in_pipe;
        drainer
            .jobs
            .send(Job {
                pipe,
                n: in_pipe,
                file: Arc::clone(&sink.file),
                offset: off,
                done: Arc::clone(done),
            })
            .map_err(|_| "the splice drain thread stopped")?;
        *held = false;
        off += in_pipe as u64;
    }
    Ok(())
}

/// Moves `n` bytes out of the pipe into `file` at `*off`; after a file error
/// (kept in `file_err`) the bytes are read and dropped instead. An error
/// here means the pipe itself failed.
fn drain(
    pipe: &Pipe,
    mut n: usize,
    file: &File,
    off: &mut u64,
    file_err: &mut Option<io::Error>,
) -> io::Result<()> {
    while n > 0 && file_err.is_none() {
        match splice(&pipe.r, None, file, Some(off), n, SpliceFlags::MOVE) {
            Ok(0) => *file_err = Some(io::ErrorKind::WriteZero.into()),
            Ok(k) => n -= k,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => *file_err = Some(e.into()),
        }
    }
    let mut trash = [0u8; 16 * 1024];
    while n > 0 {
        let want = n.min(trash.len());
        match rustix::io::read(&pipe.r, &mut trash[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => n -= k,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends `src.len` bytes of `src.file` from `src.offset` to the socket,
/// file → pipe → socket. `Ok(Err((sent, e)))`: the file failed (or ended)
/// after `sent` bytes, the pipe is empty, and the caller must send the
/// rest itself. `Err`: the socket failed.
pub(super) async fn from_file(
    sock: &TcpStream,
    pipe: &Pipe,
    src: &super::Source,
) -> Result<Result<(), (usize, io::Error)>, String> {
    let mut off = src.offset;
    let mut sent = 0;
    while sent < src.len {
        let want = (src.len - sent).min(pipe.cap);
        // Page-cache pages go into the pipe by reference (this blocks only
        // while the file system reads from disk, on the writer task).
        let n = loop {
            match splice(
                &*src.file,
                Some(&mut off),
                &pipe.w,
                None,
                want,
                SpliceFlags::MOVE,
            ) {
                Ok(0) => {
                    return Ok(Err((
                        sent,
                        io::Error::other("source file shrank while copying"),
                    )))
                }
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Ok(Err((sent, e.into()))),
            }
        };
        // MORE (like MSG_MORE) only while more of this frame follows: on the
        // last piece it would hold the tail back (up to 200 ms).
        let flags = if sent + n < src.len {
            SpliceFlags::NONBLOCK | SpliceFlags::MOVE | SpliceFlags::MORE
        } else {
            SpliceFlags::NONBLOCK | SpliceFlags::MOVE
        };
        let mut left = n;
        while left > 0 {
            let r = sock.try_io(Interest::WRITABLE, || {
                splice(&pipe.r, None, sock, None, left, flags).map_err(io::Error::from)
            });
            match r {
                Ok(0) => return Err("write failed: the socket took nothing".into()),
                Ok(k) => left -= k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sock.writable()
                        .await
                        .map_err(|e| format!("write failed: {e}"))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        sent += n;
    }
    Ok(Ok(()))
}
