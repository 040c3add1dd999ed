//! The tokio shell around the sans-IO connection core ([`crate::proto::conn::Conn`]):
//! it only moves bytes and wakes tasks. Files by job: `framing.rs` (direct-TCP
//! de-framing, MS-SMB2 2.1), `reader.rs` (the reader task: decrypt, feed the
//! core, route responses), `writer.rs` (the writer task), `pool.rs` (receive
//! buffers), `splice.rs` (zero-copy data on Linux).
//!
//! A caller builds its messages, asks the core for credits and MessageIds
//! under one short lock (waiting on a [`Notify`] while the core says
//! "blocked"), builds, signs or encrypts its own frame outside the lock (so
//! crypto spreads across cores) and hands it to the writer through a bounded
//! channel. The reader task de-frames, decrypts and gives each frame to the
//! core, whose events route each response to its waiter. Every protocol
//! decision (credits, ids, deadlines, CANCEL, interim replies, breaks, loss)
//! is the core's; this layer holds only the waiters' channels and sinks.
//!
//! # Performance (measured with `smb-core/examples/throughput.rs`)
//!
//! Loopback Samba 4.17, 2 cores shared with smbd (and with other builds: the
//! load average was 4-12, so wall-clock MB/s varied 2x between identical
//! runs; CPU-seconds per GB of *this* process is the steadier figure).
//! `cargo run --release -p smb-core --example throughput -- --only read`
//! (2 GiB file, 4 reads of 8 MiB in flight, written with `pwrite` to
//! /dev/shm; `--sign` for signed):
//!
//! | change                                                      | read, unsigned    | read, signed (GMAC) |
//! |-------------------------------------------------------------|-------------------|---------------------|
//! | before: `BytesMut::zeroed` per frame + `BufReader` copy      | 0.88 CPU-s/GB     | (not measured)      |
//! | frames read once into pooled, never-zeroed buffers           | 0.52-0.62         | 1.16-1.24           |
//! | GMAC verify by GCM-open instead of a copy + AAD-only GHASH   |                   | 0.81                |
//!
//! Old (e30c0f9) and new library side by side, same example binary source,
//! alternating runs at load average 8-12 (`--only read,write [--sign]`),
//! CPU-s/GB: unsigned read 0.92-1.00 -> 0.59-0.66, signed read 1.50-1.76 ->
//! 0.90-0.97, unsigned write 0.58-0.59 -> 0.54-0.60 (it was already
//! zero-copy), signed write 1.15-1.33 -> 0.91-1.01.
//!
//! - **Receive path** ([`FrameReader`]): small frames are split off one
//!   receive buffer filled in reads of up to 256 KiB; a frame of 128 KiB or
//!   more (a READ response) is read straight from the socket into a buffer
//!   of its own taken from a [`BufPool`] and leaves as `Bytes` slices of it,
//!   so READ data is copied once, by the kernel. Buffers return to the pool
//!   when the caller drops the last slice: no page faults, no zero-fill
//!   (which cost more than the socket copy: `memset` + `clear_page` + fault
//!   handling were ~15% of all samples before). Average `recv` is ~1.2 MiB
//!   (strace: 1 745 `recvfrom` for 2 GiB), so the reader task is not a
//!   bottleneck: what remains of our CPU is the kernel's socket copy and the
//!   caller's own file write (perf: `_copy_to_iter` 11%,
//!   `copy_folio_from_iter_atomic` + `shmem_write_end` 17% of samples,
//!   smb-core's user-space code < 1%).
//! - **Send path**: one vectored write per batch of frames; a WRITE's
//!   payload is never copied into the frame, also when signed
//!   ([`FrameSigner::sign_parts`] writes the signature into the header; a
//!   GMAC signature hashes a scratch join of the two). Upload CPU 0.67 -> 0.55
//!   CPU-s/GB came from the example recycling its buffers; what remains is
//!   the two kernel copies (source `pread`, socket send).
//! - **Zero-copy data on Linux** ([`Sink`], [`Source`], `splice.rs`): when
//!   a tree neither signs nor encrypts, `File::read_at_into` registers the
//!   destination file with the request and the reader moves the READ
//!   payload socket → pipe → file with `splice(2)`; `File::write_at_from`
//!   has the writer move WRITE data file → pipe → socket. The reader then
//!   does one copy per byte (into the destination's page cache) and the
//!   writer none. 2 GiB download to tmpfs, same machine, interleaved runs:
//!   client CPU 1.16-1.36 s → 0.89-0.92 s (smbclient 0.93-1.00 s), peak RSS
//!   71 → 9 MiB; perf: what is left is the tmpfs write itself
//!   (`copy_folio_from_iter_atomic` 34%, `shmem_write_end` 14%, page
//!   allocation). 2 GiB upload: client CPU 0.91-1.15 s → 0.28-0.88 s, RSS
//!   112 → 6 MiB.
//! - **Drain thread**: spliced READ data is written into the file by a
//!   thread of its own from a pool of 4 pipes, so the one copy left overlaps
//!   with reading the socket. (A writer *thread* for sends was tried too and
//!   measured slower for spliced uploads; the writer stays a task.)
//! - **Credits**: the core caps credits in flight at the credit
//!   target (default 2048 = 128 MiB): Samba grants on both the interim and
//!   the final reply of an async READ, so its grants alone let 32 queued
//!   8 MiB reads all be in flight (260 MiB RSS, 2.3 CPU-s/GB as buffers
//!   overflowed the pool); capped: 204 MiB RSS, 0.61 CPU-s/GB.
//!   Uncontended sends (credits, writer slot) take the immediate path and
//!   arm no timer.
//! - Socket buffers are left to Linux autotuning (`tcp_rmem` max 32 MiB
//!   here); `SO_RCVBUF` would cap them at `rmem_max` (4 MiB) and disable it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

mod framing;
mod pool;
mod reader;
#[cfg(target_os = "linux")]
mod splice;
mod writer;

#[cfg(doc)]
use framing::FrameReader;
#[cfg(doc)]
use pool::BufPool;

use crate::error::{Error, Result};
use crate::proto::conn::{Conn, ConnConfig, Event, Failure, LostReason, RequestMeta, SendError};
use crate::proto::frame::{self, OutMsg};
pub(crate) use crate::proto::frame::{FrameCipher, FrameSigner, Response, Security, SentHook};
use crate::wire::header::HEADER_LEN;
use crate::wire::{Command, Writer};

/// One request about to be sent: a message built with [`new_message`] (the
/// header is filled in here) plus an optional payload appended after it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) command: Command,
    pub(crate) msg: Writer,
    pub(crate) payload: Option<Bytes>,
    /// Bytes the response may carry (for the credit charge).
    pub(crate) expect_len: usize,
    pub(crate) tree_id: u32,
    pub(crate) session_id: u64,
    /// A related compound element (uses the previous element's FileId).
    pub(crate) related: bool,
    /// For a READ: where the response's data may be written directly (see
    /// [`Sink`]); the response then carries only its fixed part.
    pub(crate) sink: Option<Sink>,
    /// For a WRITE: the data comes from this local file range instead of
    /// `payload` (single, unsigned, unencrypted messages only).
    pub(crate) source: Option<Source>,
    /// Sent again after a reconnect (SMB2_FLAGS_REPLAY_OPERATION).
    pub(crate) replay: bool,
}

/// A local file region a READ response's data goes to instead of memory.
/// On Linux the reader task moves the payload of an unsigned, unencrypted,
/// uncompounded READ response from the socket into the file with
/// `splice(2)` (one kernel copy, none in user space); [`Response::spliced`]
/// then says how many bytes went there. Any other response (signed,
/// encrypted, too small, an error) arrives whole, as without a sink.
#[derive(Clone, Debug)]
pub(crate) struct Sink {
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) offset: u64,
    /// At most this many data bytes are accepted for the file.
    pub(crate) max_len: usize,
}

/// A WRITE's data taken from a local file by the writer, not from memory.
/// On Linux it moves file → pipe → socket with `splice(2)`: the socket
/// takes the file's page-cache pages by reference, nothing is copied in
/// user space. If the file cannot supply all `len` bytes (an I/O error, or
/// it shrank), the writer still sends `len` bytes (zeros) to keep the
/// stream in frame and records the error here; the request must then be
/// treated as failed whatever the server answers.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) error: Arc<OnceLock<std::io::Error>>,
}

impl Outgoing {
    /// A request with no payload.
    pub(crate) fn new(command: Command, msg: Writer, session_id: u64, tree_id: u32) -> Self {
        Self {
            command,
            msg,
            payload: None,
            expect_len: 0,
            tree_id,
            session_id,
            related: false,
            sink: None,
            source: None,
            replay: false,
        }
    }
}

/// A writer holding a 64-byte placeholder header: encode the body after it.
pub(crate) fn new_message() -> Writer {
    let mut w = Writer::with_capacity(256);
    w.zeros(HEADER_LEN);
    w
}

/// Who waits for a response, and where its READ data may go.
struct Waiter {
    tx: oneshot::Sender<Result<Response>>,
    sink: Option<Sink>,
}

/// The core and the waiters, under one lock (held briefly, never across
/// an `.await`).
struct Inner {
    core: Conn,
    waiters: HashMap<u64, Waiter>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Woken when credits are granted, room frees up or the connection is lost.
    progress: Notify,
    /// Set once the core reports the connection lost (a fast check).
    failed: AtomicBool,
    ciphers: RwLock<HashMap<u64, Arc<dyn FrameCipher>>>,
    stats_sent: AtomicU64,
    stats_received: AtomicU64,
    /// Oplock and lease break notifications, to the client's break handler
    /// (unbounded: the reader must never wait on it, and the server sends
    /// at most one break per lease at a time).
    breaks: mpsc::UnboundedSender<Response>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn failure_error(f: Failure) -> Error {
    match f {
        Failure::Timeout(d) => Error::Timeout(d),
        Failure::Lost(r) => Error::ConnectionLost(r),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drains the core's events into the waiters; returns the frames the
    /// core wants sent (CANCELs). Wakes credit waiters when anything freed.
    fn dispatch(&self, inner: &mut Inner) -> Vec<Vec<Bytes>> {
        let mut wake = false;
        while let Some(ev) = inner.core.poll_event() {
            match ev {
                Event::Response(id, r) => {
                    wake = true;
                    if let Some(w) = inner.waiters.remove(&id) {
                        // A dropped caller is normal.
                        let _ = w.tx.send(Ok(r));
                    }
                }
                Event::Failed(id, f) => {
                    wake = true;
                    if let Some(w) = inner.waiters.remove(&id) {
                        let _ = w.tx.send(Err(failure_error(f)));
                    }
                }
                Event::CreditsGranted(n) => wake |= n > 0,
                Event::Interim(..) => {}
                Event::Break(r) => {
                    // Acknowledged (when asked) by the client's break
                    // handler, which may send requests: never from here.
                    if self.breaks.send(r).is_err() {
                        tracing::debug!("a break notification with no handler");
                    }
                }
                Event::Lost(reason) => {
                    wake = true;
                    if !self.failed.swap(true, Ordering::AcqRel) {
                        tracing::debug!(%reason, "connection failed");
                    }
                }
            }
        }
        if wake {
            self.progress.notify_waiters();
        }
        let mut out = Vec::new();
        while let Some(t) = inner.core.poll_transmit() {
            out.push(t);
        }
        out
    }

    /// The connection is gone: every waiter fails, later calls fail fast.
    fn fail(&self, reason: LostReason) {
        let mut inner = self.lock();
        inner.core.handle_lost(reason);
        self.dispatch(&mut inner);
    }

    fn lost(&self) -> Error {
        let inner = self.lock();
        Error::ConnectionLost(inner.core.lost().cloned().unwrap_or(LostReason::Dropped))
    }

    fn check_alive(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            Err(self.lost())
        } else {
            Ok(())
        }
    }

    /// Feeds a decrypted frame to the core and routes what it produced.
    /// `spliced`: the frame is the head of a READ response whose data went
    /// to its sink (length, file error).
    fn route(
        &self,
        plain: Bytes,
        encrypted: bool,
        spliced: Option<(usize, Option<std::io::Error>)>,
    ) -> std::result::Result<(), LostReason> {
        let mut inner = self.lock();
        let (len, file_err) = match spliced {
            Some((l, e)) => (Some(l), e),
            None => (None, None),
        };
        if let Some(e) = file_err {
            // The data did not reach the file: the waiter gets that error
            // instead of the response (which the core still accounts for).
            let id = crate::wire::header::Header::decode(&plain).map(|h| h.message_id);
            if let Some(w) = id.ok().and_then(|id| inner.waiters.remove(&id)) {
                let _ = w.tx.send(Err(Error::Io(Arc::new(e))));
            }
        }
        #[cfg(debug_assertions)]
        capture(&plain);
        let r = inner
            .core
            .handle_frame(plain, encrypted, len, Instant::now());
        self.dispatch(&mut inner);
        r
    }
}

/// Debugging aid, in debug builds only (it writes decrypted traffic, file
/// data included): when `SMB_CORE_CAPTURE_DIR` is set, every received
/// message is written there as `<COMMAND>-<status>-<message id>.bin`, mode
/// 0600. The fuzz seeds and codec test vectors were captured this way.
#[cfg(debug_assertions)]
fn capture(plain: &[u8]) {
    use crate::wire::header::{split_compound, Header};
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let dir =
        DIR.get_or_init(|| std::env::var_os("SMB_CORE_CAPTURE_DIR").map(std::path::PathBuf::from));
    let Some(dir) = dir else { return };
    for (s, e) in split_compound(plain).unwrap_or_default() {
        let msg = &plain[s..e];
        let Ok(h) = Header::decode(msg) else { continue };
        let name = format!(
            "{}-{:08x}-{}.bin",
            h.command.name().unwrap_or("UNKNOWN"),
            h.status.0,
            h.message_id
        );
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        if let Ok(mut f) = o.open(dir.join(name)) {
            let _ = std::io::Write::write_all(&mut f, msg);
        }
    }
}

/// Responses at least this large are verified on tokio's blocking pool when
/// [`crypto_cores`] says the machine has cores to spare.
const OFFLOAD_VERIFY_MIN: usize = 256 * 1024;

/// Cores for crypto: the machine's parallelism (read once).
fn crypto_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Whether a response of `len` bytes is verified off the caller's thread:
/// only big ones (a READ's data), and only with more than 2 cores (on 2,
/// smbd and this process already fill the machine and the hand-off costs
/// more than it spreads).
fn offload_verify(len: usize, cores: usize) -> bool {
    cores > 2 && len >= OFFLOAD_VERIFY_MIN
}

/// What the writer sends for one request or compound: the parts in order,
/// then (for a WRITE whose data stays in a local file) the file range.
struct Frame {
    parts: Vec<Bytes>,
    source: Option<Source>,
}

/// A connection: cheap handle over the shared state and the writer channel.
#[derive(Debug)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Frame>,
    tasks: [JoinHandle<()>; 2],
    /// Until the client takes it ([`Connection::take_breaks`]).
    breaks: Mutex<Option<mpsc::UnboundedReceiver<Response>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail(LostReason::Dropped);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Starts the tasks on an existing stream.
    pub(crate) fn start(stream: TcpStream, credit_target: u16, request_timeout: Duration) -> Self {
        let (rd, wr) = stream.into_split();
        let (breaks, breaks_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                core: Conn::new(ConnConfig {
                    credit_target,
                    request_timeout,
                }),
                waiters: HashMap::new(),
            }),
            progress: Notify::new(),
            failed: AtomicBool::new(false),
            ciphers: RwLock::new(HashMap::new()),
            stats_sent: AtomicU64::new(0),
            stats_received: AtomicU64::new(0),
            breaks,
        });
        let (tx, rx) = mpsc::channel::<Frame>(256);
        let reader = tokio::spawn(reader::reader_task(Arc::clone(&shared), rd));
        // A task on the caller's runtime. A writer thread (own runtime) was
        // measured: 2 GiB unsigned spliced upload 7.90/1.88/3.65 s vs
        // 1.42/1.27/1.53 s as a task (signed: 1.92/2.07/1.79 vs
        // 2.44/2.21/1.92), so a task it is.
        let writer = tokio::spawn(writer::writer_task(Arc::clone(&shared), wr, rx));
        Self {
            shared,
            tx,
            tasks: [reader, writer],
            breaks: Mutex::new(Some(breaks_rx)),
        }
    }

    /// The oplock and lease break notifications of this connection, once
    /// (the channel closes with the connection).
    pub(crate) fn take_breaks(&self) -> Option<mpsc::UnboundedReceiver<Response>> {
        self.breaks.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Enables multi-credit requests (after NEGOTIATE chose 2.1+ with LARGE_MTU).
    pub(crate) fn set_large_mtu(&self, on: bool) {
        self.shared.lock().core.set_large_mtu(on);
    }

    /// The ChannelSequence of later requests (3.x).
    pub(crate) fn set_channel_sequence(&self, seq: u16) {
        self.shared.lock().core.set_channel_sequence(seq);
    }

    /// Raises the credit target to at least `min` (so the largest request can
    /// always be granted enough credits).
    pub(crate) fn raise_credit_target(&self, min: usize) {
        self.shared.lock().core.raise_credit_target(min as u64);
    }

    /// Registers the decryptor for frames of `session_id`.
    pub(crate) fn register_cipher(&self, session_id: u64, cipher: Arc<dyn FrameCipher>) {
        self.shared
            .ciphers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session_id, cipher);
    }

    /// Forgets a session's decryptor.
    pub(crate) fn unregister_cipher(&self, session_id: u64) {
        self.shared
            .ciphers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session_id);
    }

    /// The credit target: the cap on credits in flight.
    pub(crate) fn credit_target(&self) -> usize {
        self.shared.lock().core.credit_target() as usize
    }

    /// The largest CreditCharge a request or compound can have now (see
    /// [`Conn::request_credit_limit`]).
    pub(crate) fn request_credit_limit(&self) -> u64 {
        self.shared.lock().core.request_credit_limit()
    }

    /// True when requests carry a CreditCharge (2.1+ with LARGE_MTU).
    pub(crate) fn large_mtu(&self) -> bool {
        self.shared.lock().core.large_mtu()
    }

    /// Credits granted and not yet spent.
    pub(crate) fn credits_available(&self) -> usize {
        self.shared.lock().core.credits_available() as usize
    }

    /// Credits spent on requests still awaiting their final response.
    pub(crate) fn credits_outstanding(&self) -> usize {
        self.shared.lock().core.credits_outstanding() as usize
    }

    /// Bytes sent and received on the socket so far.
    pub(crate) fn bytes_transferred(&self) -> (u64, u64) {
        (
            self.shared.stats_sent.load(Ordering::Relaxed),
            self.shared.stats_received.load(Ordering::Relaxed),
        )
    }

    /// The stored failure, if the connection is dead.
    pub(crate) fn check_alive(&self) -> Result<()> {
        self.shared.check_alive()
    }

    /// Sends one request (or a compound of several) and waits for every
    /// response. `hook` sees each message's final bytes as sent (for the
    /// preauth integrity hash).
    pub(crate) async fn call(
        &self,
        mut reqs: Vec<Outgoing>,
        sec: &Security,
        hook: Option<SentHook<'_>>,
    ) -> Result<Vec<Response>> {
        let shared = &self.shared;
        shared.check_alive()?;
        let metas: Vec<RequestMeta> = reqs
            .iter()
            .map(|r| RequestMeta {
                send_len: r.msg.len() - HEADER_LEN
                    + r.payload.as_ref().map_or(0, Bytes::len)
                    + r.source.as_ref().map_or(0, |s| s.len),
                expect_len: r.expect_len,
                session_id: r.session_id,
                tree_id: r.tree_id,
            })
            .collect();
        let source = reqs.iter_mut().find_map(|r| r.source.take());
        let source_error = source.as_ref().map(|s| Arc::clone(&s.error));

        // A writer slot first: if this future is dropped while waiting, the
        // slot goes back and no MessageId was taken. Then credits and ids,
        // with no await between taking the ids and queueing the frame, so a
        // cancelled caller never leaves a hole in the sequence window.
        let timeout = shared.lock().core.request_timeout();
        let slot = match self.tx.try_reserve() {
            Ok(s) => s,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(shared.lost()),
            Err(mpsc::error::TrySendError::Full(())) => {
                match tokio::time::timeout(timeout, self.tx.reserve()).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(_)) => return Err(shared.lost()),
                    Err(_) => return Err(Error::Timeout(timeout)),
                }
            }
        };
        let since = Instant::now();
        let (assigned, mut receivers) = loop {
            let notified = shared.progress.notified();
            tokio::pin!(notified);
            // Registered before the check, so a grant in between is not missed.
            notified.as_mut().enable();
            let until = {
                let mut inner = shared.lock();
                match inner.core.send(&metas, sec, since, Instant::now()) {
                    Ok(a) => {
                        let mut rxs = Vec::with_capacity(a.ids.len());
                        for (i, id) in a.ids.iter().enumerate() {
                            let (tx, rx) = oneshot::channel();
                            inner.waiters.insert(
                                *id,
                                Waiter {
                                    tx,
                                    sink: reqs[i].sink.take(),
                                },
                            );
                            rxs.push(rx);
                        }
                        break (a, rxs);
                    }
                    Err(SendError::Blocked { until }) => until,
                    Err(SendError::Lost(r)) => return Err(Error::ConnectionLost(r)),
                    Err(SendError::TooLarge) => {
                        return Err(Error::InvalidArgument(
                            "request needs more credits than the credit target".into(),
                        ))
                    }
                    Err(SendError::BeyondGrant { needed, granted }) => {
                        return Err(Error::InvalidArgument(format!(
                            "request needs {needed} credits; the server has granted {granted} \
                             and none are coming"
                        )))
                    }
                    Err(SendError::Starved { needed, available }) => {
                        return Err(Error::CreditStarved {
                            needed,
                            available,
                            waited: timeout,
                        })
                    }
                }
            };
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        };

        let msgs: Vec<OutMsg> = reqs
            .into_iter()
            .enumerate()
            .map(|(i, r)| OutMsg {
                command: r.command,
                msg: r.msg,
                payload: r.payload,
                file_len: if i == 0 {
                    source.as_ref().map_or(0, |s| s.len)
                } else {
                    0
                },
                tree_id: r.tree_id,
                session_id: r.session_id,
                related: r.related,
                replay: r.replay,
            })
            .collect();
        let parts = match frame::build(msgs, &assigned, sec, hook) {
            Ok(p) => p,
            Err(e) => {
                let mut inner = shared.lock();
                inner.core.abandon(&assigned.ids);
                for id in &assigned.ids {
                    inner.waiters.remove(id);
                }
                shared.dispatch(&mut inner);
                return Err(e);
            }
        };
        slot.send(Frame { parts, source });

        let mut out = Vec::with_capacity(receivers.len());
        let mut failure = None;
        // One timer for the whole compound, armed only when a response is
        // not there yet (the later elements of a compound usually arrived
        // in the same frame as the first) and reset, not re-armed, for the
        // next element: was a timer per element.
        // Not armed until first polled.
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        for (i, rx) in receivers.iter_mut().enumerate() {
            let id = assigned.ids[i];
            let r = loop {
                match rx.try_recv() {
                    Ok(r) => break r,
                    Err(oneshot::error::TryRecvError::Closed) => break Err(shared.lost()),
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
                let deadline = shared.lock().core.deadline(id);
                let Some(deadline) = deadline else {
                    // Already answered (or failed): the value is in the channel.
                    break rx.await.unwrap_or_else(|_| Err(shared.lost()));
                };
                timer.as_mut().reset(deadline.into());
                let got = std::future::poll_fn(|cx| {
                    use std::future::Future as _;
                    if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut *rx).poll(cx) {
                        return std::task::Poll::Ready(Some(r));
                    }
                    timer.as_mut().poll(cx).map(|()| None)
                })
                .await;
                if let Some(r) = got {
                    break r.unwrap_or_else(|_| Err(shared.lost()));
                }
                // The core decides: expired (a CANCEL goes out and the
                // waiter fails) or extended by an interim reply.
                let cancels = {
                    let mut inner = shared.lock();
                    inner.core.handle_timeout(Instant::now());
                    shared.dispatch(&mut inner)
                };
                for parts in cancels {
                    let _ = self.tx.try_send(Frame {
                        parts,
                        source: None,
                    });
                }
            };
            match r {
                Ok(resp) => {
                    // Verified on the caller's task, right after the bytes
                    // arrived (cache-hot): handing large verifies to the
                    // blocking pool was measured slower on 2 cores (2 GiB
                    // signed download: +0.15 s user CPU, RSS 55-80 → 113-121
                    // MiB, no faster). With more cores than that the
                    // runtime's one thread would be the limit, so big
                    // responses are verified on the pool there.
                    let (resp, checked) = if offload_verify(resp.msg.len(), crypto_cores()) {
                        let sec = sec.clone();
                        match tokio::task::spawn_blocking(move || {
                            let r = frame::verify(&resp, &sec);
                            (resp, r)
                        })
                        .await
                        {
                            Ok(v) => v,
                            Err(_) => return Err(shared.lost()),
                        }
                    } else {
                        let r = frame::verify(&resp, sec);
                        (resp, r)
                    };
                    if let Err(e) = checked {
                        failure.get_or_insert(e);
                    }
                    out.push(resp);
                }
                Err(e) => {
                    let timed_out = matches!(e, Error::Timeout(_));
                    failure.get_or_insert(e);
                    if timed_out {
                        // The rest of the compound is abandoned with it.
                        let mut inner = shared.lock();
                        inner.core.abandon(&assigned.ids[i + 1..]);
                        for id in &assigned.ids[i + 1..] {
                            inner.waiters.remove(id);
                        }
                        shared.dispatch(&mut inner);
                        break;
                    }
                }
            }
        }
        if let Some(e) = source_error.as_ref().and_then(|e| e.get()) {
            // The server got zeros for some of the data: whatever it said,
            // the write failed.
            failure.get_or_insert_with(|| {
                Error::Io(Arc::new(std::io::Error::new(e.kind(), e.to_string())))
            });
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_responses_are_verified_off_thread_only_with_cores_to_spare() {
        assert!(!offload_verify(8 << 20, 1));
        assert!(!offload_verify(8 << 20, 2));
        assert!(offload_verify(8 << 20, 4));
        assert!(offload_verify(OFFLOAD_VERIFY_MIN, 32));
        assert!(!offload_verify(OFFLOAD_VERIFY_MIN - 1, 32));
        assert!(!offload_verify(300, 32));
    }

    /// A READ response whose payload is cut off by a lost connection while
    /// it is being spliced into the file fails its caller with the
    /// connection; it never comes back as a read of the whole length (the
    /// file would then hold a hole of zeros where the rest should be).
    /// Each cut waits until the bytes before it are in the file, so that
    /// the splice machinery has nothing left in flight when the socket ends:
    /// the order in which the response used to be routed as complete.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_read_payload_cut_mid_splice_fails_with_the_connection() {
        use std::os::unix::fs::FileExt as _;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        use crate::wire::create::FileId;
        use crate::wire::header::{Header, FLAG_RESPONSE};
        use crate::wire::io as wio;
        use crate::wire::NtStatus;

        const LEN: usize = 1 << 20;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8 + 1).collect();
        for cut in [1, 4095, 64 << 10, (64 << 10) + 7, LEN / 2, LEN - 1] {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (mut server, _) = l.accept().await.unwrap();
            // No deadline to speak of: the loss, not a timeout, must end it.
            let conn = Connection::start(client, 64, Duration::from_secs(3600));
            let file = Arc::new(tempfile::tempfile().unwrap());
            let mut w = new_message();
            wio::encode_read(&mut w, FileId([7; 16]), 0, LEN as u32, 0);
            let mut req = Outgoing::new(Command::READ, w, 1, 1);
            req.expect_len = LEN;
            req.sink = Some(Sink {
                file: Arc::clone(&file),
                offset: 0,
                max_len: LEN,
            });
            let sec = Security::default();
            let server_file = Arc::clone(&file);
            let data = data.clone();
            let server_side = async move {
                let mut n = [0u8; 4];
                server.read_exact(&mut n).await.unwrap();
                let mut msg = vec![0u8; u32::from_be_bytes(n) as usize];
                server.read_exact(&mut msg).await.unwrap();
                let id = Header::decode(&msg).unwrap().message_id;
                let mut reply = Writer::new();
                Header {
                    command: Command::READ,
                    status: NtStatus::SUCCESS,
                    credits: 1,
                    flags: FLAG_RESPONSE,
                    message_id: id,
                    ..Header::default()
                }
                .encode(&mut reply);
                wio::encode_read_response(&mut reply, &data);
                let frame = reply.into_vec();
                let head = wio::READ_RESPONSE_FIXED;
                server
                    .write_all(&(frame.len() as u32).to_be_bytes())
                    .await
                    .unwrap();
                server.write_all(&frame[..head + cut]).await.unwrap();
                // Until the bytes before the cut are in the file.
                let mut have = vec![0u8; cut];
                loop {
                    server_file.read_exact_at(&mut have, 0).unwrap_or_default();
                    if have == data[..cut] {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                drop(server);
            };
            let (r, ()) = tokio::join!(conn.call(vec![req], &sec, None), server_side);
            match r {
                Err(Error::ConnectionLost(_)) => {}
                Ok(resp) => panic!(
                    "cut after {cut} of {LEN} bytes: the READ was reported done \
                     ({:?} bytes spliced)",
                    resp[0].spliced
                ),
                Err(e) => panic!("cut after {cut} of {LEN} bytes: {e}"),
            }
        }
    }
}
