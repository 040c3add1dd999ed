//! The tokio connection: direct-TCP framing (MS-SMB2 2.1), one reader task,
//! one writer task, the pending map and credits (MS-SMB2 3.2.4.1.5, 3.2.5.1).
//!
//! A caller builds its messages, takes credits from a [`Semaphore`], takes its
//! MessageId range under the pending lock, signs or encrypts its own frame (so
//! crypto spreads across cores) and hands the frame to the writer through
//! a bounded channel. The reader task de-frames, decrypts, splits compounds,
//! adds the granted credits, and routes each response to its waiter by
//! MessageId. On failure the error is stored once, every waiter fails, and
//! later calls fail fast with [`Error::ConnectionLost`].
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
//! - **Credits**: a second semaphore caps credits in flight at the credit
//!   target (default 2048 = 128 MiB): Samba grants on both the interim and
//!   the final reply of an async READ, so its grants alone let 32 queued
//!   8 MiB reads all be in flight (260 MiB RSS, 2.3 CPU-s/GB as buffers
//!   overflowed the pool); capped: 204 MiB RSS, 0.61 CPU-s/GB.
//!   Uncontended waits (credits, cap, writer slot) take the `try_` path and
//!   arm no timer.
//! - Socket buffers are left to Linux autotuning (`tcp_rmem` max 32 MiB
//!   here); `SO_RCVBUF` would cap them at `rmem_max` (4 MiB) and disable it.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

#[cfg(target_os = "linux")]
mod splice;

use crate::error::{Error, Result};
use crate::proto::credit_charge;
use crate::wire::header::{
    self, Header, COMPRESSION_MAGIC, FLAG_RELATED, FLAG_SIGNED, HEADER_LEN, SMB1_MAGIC,
    TRANSFORM_MAGIC, UNSOLICITED_MESSAGE_ID,
};
use crate::wire::io as wio;
use crate::wire::{Command, NtStatus, Writer};

/// Signs and verifies single messages (MS-SMB2 3.1.4.1).
pub(crate) trait FrameSigner: Send + Sync + std::fmt::Debug {
    /// Sets SMB2_FLAGS_SIGNED already done by the caller; writes the signature.
    fn sign(&self, msg: &mut [u8]);
    /// Signs the message `head || payload`, writing the signature into `head`.
    fn sign_parts(&self, head: &mut [u8], payload: &[u8]);
    /// True when the signature in `msg` is valid.
    fn verify(&self, msg: &[u8]) -> bool;
}

/// Encrypts and decrypts whole frames with the transform header (MS-SMB2 3.1.4.3).
pub(crate) trait FrameCipher: Send + Sync + std::fmt::Debug {
    /// Encrypts in place: `frame` is 52 bytes of room for the transform
    /// header followed by the plaintext (one message or a compound).
    fn encrypt_in_place(&self, frame: &mut [u8]) -> Result<()>;
    /// Decrypts a transform message in place; the plaintext is `frame[52..]`.
    fn decrypt_in_place(&self, frame: &mut [u8]) -> Result<()>;
}

/// Sees each message's final bytes as sent (the preauth integrity hash).
pub(crate) type SentHook<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// How one request (or compound) is protected.
#[derive(Clone, Debug, Default)]
pub(crate) struct Security {
    /// Sign each message and require signed responses.
    pub(crate) signer: Option<Arc<dyn FrameSigner>>,
    /// Encrypt the whole frame.
    pub(crate) cipher: Option<Arc<dyn FrameCipher>>,
}

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
        }
    }
}

/// A writer holding a 64-byte placeholder header: encode the body after it.
pub(crate) fn new_message() -> Writer {
    let mut w = Writer::with_capacity(256);
    w.zeros(HEADER_LEN);
    w
}

/// One response: its header and the whole message bytes (header included;
/// for a compound, the element up to the next one).
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub(crate) header: Header,
    pub(crate) msg: Bytes,
    /// It arrived inside a transform message.
    pub(crate) encrypted: bool,
    /// A READ whose data went straight into the request's [`Sink`]: `msg`
    /// holds the header and fixed part, and this many bytes were written.
    pub(crate) spliced: Option<usize>,
}

impl Response {
    /// `Err(Error::Status)` unless the status is success (or one of `also_ok`).
    pub(crate) fn check(&self, also_ok: &[NtStatus]) -> Result<()> {
        let s = self.header.status;
        if s == NtStatus::SUCCESS || also_ok.contains(&s) {
            Ok(())
        } else {
            Err(Error::Status {
                status: s,
                command: self.header.command,
            })
        }
    }
}

struct Pending {
    tx: oneshot::Sender<Result<Response>>,
    charge: usize,
    /// Credits asked beyond the charge (negative: fewer than the charge).
    extra: i64,
    interim: Arc<AtomicU64>,
    async_id: u64,
    sink: Option<Sink>,
}

struct State {
    next_message_id: u64,
    pending: HashMap<u64, Pending>,
}

struct Shared {
    state: Mutex<State>,
    credits: Semaphore,
    /// Client-side cap on credits in flight (the credit target): what bounds
    /// the bytes of requests and responses outstanding, hence memory, even
    /// when the server grants more (Samba grants on both the interim and the
    /// final reply of an async READ, so its window keeps growing).
    in_flight_cap: Semaphore,
    /// Credits spent on requests whose final response has not arrived.
    outstanding: AtomicUsize,
    /// Credits granted + credits asked for and not yet answered: what the
    /// window will be once every reply is in. Kept near the credit target.
    window: AtomicI64,
    failed: OnceLock<Arc<str>>,
    ciphers: RwLock<HashMap<u64, Arc<dyn FrameCipher>>>,
    large_mtu: AtomicBool,
    credit_target: AtomicUsize,
    request_timeout: Duration,
    stats_sent: AtomicU64,
    stats_received: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("credits", &self.credits.available_permits())
            .field("failed", &self.failed.get())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Stores the first failure, fails every waiter, closes the credit semaphore.
    fn fail(&self, reason: &str) {
        let first = self.failed.set(Arc::from(reason)).is_ok();
        let reason = self.lost();
        let drained: Vec<Pending> = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pending.drain().map(|(_, p)| p).collect()
        };
        for p in drained {
            let _ = p.tx.send(Err(reason.clone()));
        }
        self.credits.close();
        self.in_flight_cap.close();
        if first {
            tracing::debug!(%reason, "connection failed");
        }
    }

    fn lost(&self) -> Error {
        Error::ConnectionLost(
            self.failed
                .get()
                .cloned()
                .unwrap_or_else(|| Arc::from("connection closed")),
        )
    }

    fn check_alive(&self) -> Result<()> {
        if self.failed.get().is_some() {
            Err(self.lost())
        } else {
            Ok(())
        }
    }
}

/// One frame's parts, written with one vectored write.
/// What the writer sends for one request or compound: the parts in order,
/// then (for a WRITE whose data stays in a local file) the file range.
struct Frame {
    parts: Vec<Bytes>,
    source: Option<Source>,
}

impl Frame {
    fn bytes(parts: Vec<Bytes>) -> Self {
        Self {
            parts,
            source: None,
        }
    }
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

/// A connection: cheap handle over the shared state and the writer channel.
#[derive(Debug)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Frame>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail("connection dropped");
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Frames larger than this are refused (the 24-bit length maximum is 16 MiB).
const MAX_FRAME: usize = 0x00FF_FFFF;

impl Connection {
    /// Starts the tasks on an existing stream.
    pub(crate) fn start(stream: TcpStream, credit_target: u16, request_timeout: Duration) -> Self {
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_message_id: 0,
                pending: HashMap::new(),
            }),
            credits: Semaphore::new(1),
            in_flight_cap: Semaphore::new(usize::from(credit_target.max(1))),
            outstanding: AtomicUsize::new(0),
            window: AtomicI64::new(1),
            failed: OnceLock::new(),
            ciphers: RwLock::new(HashMap::new()),
            large_mtu: AtomicBool::new(false),
            credit_target: AtomicUsize::new(usize::from(credit_target.max(1))),
            request_timeout,
            stats_sent: AtomicU64::new(0),
            stats_received: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Frame>(256);
        let reader = tokio::spawn(reader_task(Arc::clone(&shared), rd));
        // A task on the caller's runtime. A writer thread (own runtime) was
        // measured: 2 GiB unsigned spliced upload 7.90/1.88/3.65 s vs
        // 1.42/1.27/1.53 s as a task (signed: 1.92/2.07/1.79 vs
        // 2.44/2.21/1.92), so a task it is.
        let writer = tokio::spawn(writer_task(Arc::clone(&shared), wr, rx));
        Self {
            shared,
            tx,
            tasks: [reader, writer],
        }
    }

    /// Enables multi-credit requests (after NEGOTIATE chose 2.1+ with LARGE_MTU).
    pub(crate) fn set_large_mtu(&self, on: bool) {
        self.shared.large_mtu.store(on, Ordering::Relaxed);
    }

    /// Raises the credit target to at least `min` (so the largest request can
    /// always be granted enough credits).
    pub(crate) fn raise_credit_target(&self, min: usize) {
        let old = self.shared.credit_target.fetch_max(min, Ordering::Relaxed);
        if min > old {
            self.shared.in_flight_cap.add_permits(min - old);
        }
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
        self.shared.credit_target.load(Ordering::Relaxed)
    }

    /// Credits granted and not yet spent.
    pub(crate) fn credits_available(&self) -> usize {
        self.shared.credits.available_permits()
    }

    /// Credits spent on requests still awaiting their final response.
    pub(crate) fn credits_outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::Relaxed)
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
        let large = shared.large_mtu.load(Ordering::Relaxed);
        let charges: Vec<usize> = reqs
            .iter()
            .map(|r| {
                if large {
                    let send = r.msg.len() - HEADER_LEN
                        + r.payload.as_ref().map_or(0, Bytes::len)
                        + r.source.as_ref().map_or(0, |s| s.len);
                    usize::from(credit_charge(send.max(r.expect_len)))
                } else {
                    1
                }
            })
            .collect();
        let total: usize = charges.iter().sum();
        let timeout = shared.request_timeout;

        // Credits first (bounded wait), then a writer slot, then MessageIds:
        // no await between taking the ids and queueing the frame, so a
        // cancelled caller never leaves a hole in the sequence window.
        let permits =
            u32::try_from(total).map_err(|_| Error::InvalidArgument("request too large".into()))?;
        // The in-flight cap first: a request waiting on it holds no credits.
        // Each wait tries the uncontended path before arming a timer.
        let cap = match shared.in_flight_cap.try_acquire_many(permits) {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout(timeout, shared.in_flight_cap.acquire_many(permits))
                    .await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(shared.lost()),
                    Err(_) => return Err(Error::Timeout(timeout)),
                }
            }
        };
        let credits = match shared.credits.try_acquire_many(permits) {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout(timeout, shared.credits.acquire_many(permits)).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(shared.lost()),
                    Err(_) => return Err(Error::Timeout(timeout)),
                }
            }
        };
        // If this future is dropped while waiting for a writer slot, the
        // permit goes back to the semaphore: credits never leak.
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
        credits.forget();
        // Given back when the final reply arrives (route) or the wait is abandoned (forget).
        cap.forget();

        // Ask for enough credits to grow the window to the target, claiming
        // the deficit atomically so concurrent callers do not all ask for it.
        let target =
            i64::try_from(shared.credit_target.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        // Above the target (servers may grant on interim and final replies),
        // ask for less than the charge, down to 1, so the window shrinks back.
        let first_charge = i64::try_from(charges.first().copied().unwrap_or(1)).unwrap_or(1);
        let mut extra = shared
            .window
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                // The header's CreditRequest is 16 bits and servers cap it anyway.
                let delta = (target - w).clamp(1 - first_charge, 8000);
                (delta != 0).then_some(w + delta)
            })
            .map_or(0, |old| (target - old).clamp(1 - first_charge, 8000));

        let n = reqs.len();
        let mut sinks: Vec<Option<Sink>> = reqs.iter_mut().map(|r| r.sink.take()).collect();
        let source_errors: Vec<_> = reqs
            .iter()
            .filter_map(|r| r.source.as_ref().map(|s| Arc::clone(&s.error)))
            .collect();
        let mut receivers = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            for (i, &charge) in charges.iter().enumerate() {
                let id = st.next_message_id;
                st.next_message_id += charge as u64;
                let (tx, rx) = oneshot::channel();
                let interim = Arc::new(AtomicU64::new(0));
                st.pending.insert(
                    id,
                    Pending {
                        tx,
                        charge,
                        extra: if i == 0 { extra } else { 0 },
                        interim: Arc::clone(&interim),
                        async_id: 0,
                        sink: sinks[i].take(),
                    },
                );
                receivers.push((rx, interim));
                ids.push(id);
            }
        }
        shared.outstanding.fetch_add(total, Ordering::Relaxed);
        if shared.failed.get().is_some() {
            // Lost while we were queueing: our entries may have missed the drain.
            self.forget(&ids);
            return Err(shared.lost());
        }

        let targets: Vec<(u64, u32)> = reqs.iter().map(|r| (r.session_id, r.tree_id)).collect();
        let frame = match build_frame(reqs, &charges, &ids, &mut extra, large, sec, hook) {
            Ok(f) => f,
            Err(e) => {
                self.forget(&ids);
                return Err(e);
            }
        };
        slot.send(frame);

        let mut out = Vec::with_capacity(n);
        let mut failure = None;
        for (i, (mut rx, interim)) in receivers.into_iter().enumerate() {
            let r = loop {
                let seen = interim.load(Ordering::Relaxed);
                match tokio::time::timeout(timeout, &mut rx).await {
                    Ok(Ok(r)) => break r,
                    Ok(Err(_)) => break Err(shared.lost()),
                    Err(_) => {
                        // An interim STATUS_PENDING reply extends the wait.
                        if interim.load(Ordering::Relaxed) != seen {
                            continue;
                        }
                        // Give up, and ask the server to stop working on it
                        // (MS-SMB2 3.2.4.24): CANCEL takes no credit and gets no reply.
                        for (id, async_id) in self.forget(&ids[i..]) {
                            let (session_id, tree_id) =
                                targets[ids.iter().position(|x| *x == id).unwrap_or(i)];
                            if let Ok(f) = cancel_frame(id, async_id, session_id, tree_id, sec) {
                                let _ = self.tx.try_send(f);
                            }
                        }
                        break Err(Error::Timeout(timeout));
                    }
                }
            };
            match r {
                Ok(resp) => {
                    // Verified here, on the caller's task: handing large
                    // verifies to the blocking pool was measured slower
                    // (2 GiB signed download: +0.15 s user CPU, RSS 55-80
                    // → 113-121 MiB, no faster).
                    if let Err(e) = verify(&resp, sec) {
                        failure.get_or_insert(e);
                    }
                    out.push(resp);
                }
                Err(e) => {
                    let timed_out = matches!(e, Error::Timeout(_));
                    failure.get_or_insert(e);
                    if timed_out {
                        break;
                    }
                }
            }
        }
        if let Some(e) = source_errors.iter().find_map(|e| e.get()) {
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

    /// Removes pending entries we no longer wait for; returns the removed
    /// (MessageId, AsyncId) pairs.
    fn forget(&self, ids: &[u64]) -> Vec<(u64, u64)> {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = st.pending.remove(id) {
                out.push((*id, p.async_id));
                self.shared
                    .outstanding
                    .fetch_sub(p.charge, Ordering::Relaxed);
                self.shared.in_flight_cap.add_permits(p.charge);
                self.shared
                    .window
                    .fetch_sub(p.charge as i64 + p.extra, Ordering::AcqRel);
            }
        }
        out
    }
}

/// A CANCEL for a request we stopped waiting for (MS-SMB2 2.2.30): the
/// request's MessageId, or its AsyncId once an interim reply gave one;
/// signed or encrypted like the request.
fn cancel_frame(
    message_id: u64,
    async_id: u64,
    session_id: u64,
    tree_id: u32,
    sec: &Security,
) -> Result<Frame> {
    let signed = sec.signer.is_some() && sec.cipher.is_none();
    let mut flags = 0;
    if async_id != 0 {
        flags |= header::FLAG_ASYNC;
    }
    if signed {
        flags |= FLAG_SIGNED;
    }
    let h = Header {
        command: Command::CANCEL,
        flags,
        message_id,
        async_id,
        tree_id,
        session_id,
        ..Header::default()
    };
    let mut w = Writer::with_capacity(HEADER_LEN + 4);
    h.encode(&mut w);
    crate::wire::session::encode_empty(&mut w);
    let mut msg = w.into_vec();
    if let (true, Some(s)) = (signed, &sec.signer) {
        s.sign(&mut msg);
    }
    if let Some(cipher) = &sec.cipher {
        let room = 4 + header::TRANSFORM_HEADER_LEN;
        let mut joined = vec![0u8; room];
        joined.extend_from_slice(&msg);
        cipher.encrypt_in_place(&mut joined[4..])?;
        let prefix = length_prefix(joined.len() - 4)?;
        joined[..4].copy_from_slice(&prefix);
        return Ok(Frame::bytes(vec![Bytes::from(joined)]));
    }
    Ok(Frame::bytes(vec![
        length_prefix(msg.len())?,
        Bytes::from(msg),
    ]))
}

/// Checks a response's protection: encrypted responses need nothing more;
/// when we signed, the response must be signed and verify (MS-SMB2 3.2.5.1.3).
fn verify(resp: &Response, sec: &Security) -> Result<()> {
    if resp.encrypted {
        return Ok(());
    }
    if sec.cipher.is_some() {
        // We encrypted; a plain answer is a downgrade.
        return Err(Error::BadSignature);
    }
    match &sec.signer {
        Some(signer) => {
            if !resp.header.is_signed() || !signer.verify(&resp.msg) {
                return Err(Error::BadSignature);
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// Fills headers, pads and chains compounds, signs each element, encrypts the
/// whole when asked, and prefixes the 4-byte transport length.
fn build_frame(
    reqs: Vec<Outgoing>,
    charges: &[usize],
    ids: &[u64],
    extra: &mut i64,
    large: bool,
    sec: &Security,
    mut hook: Option<SentHook<'_>>,
) -> Result<Frame> {
    let n = reqs.len();
    let mut plain: Vec<Bytes> = Vec::with_capacity(n * 2);
    let mut total = 0usize;
    let mut file_part = None;
    for (i, req) in reqs.into_iter().enumerate() {
        let last = i + 1 == n;
        let charge = charges[i];
        let want = (charge as i64 + std::mem::take(extra)).max(1);
        let mut flags = 0;
        if req.related {
            flags |= FLAG_RELATED;
        }
        if sec.signer.is_some() && sec.cipher.is_none() {
            flags |= FLAG_SIGNED;
        }
        let mut msg = req.msg;
        let payload = req.payload;
        if let Some(src) = req.source {
            if n != 1 || flags & FLAG_SIGNED != 0 || sec.cipher.is_some() || hook.is_some() {
                return Err(Error::InvalidArgument(
                    "file data can only follow a single unsigned, unencrypted message".into(),
                ));
            }
            file_part = Some(src);
        }
        let file_len = file_part.as_ref().map_or(0, |s| s.len);
        let len = msg.len() + payload.as_ref().map_or(0, Bytes::len) + file_len;
        let padded = if last { len } else { len.next_multiple_of(8) };
        let h = Header {
            credit_charge: if large {
                u16::try_from(charge).unwrap_or(u16::MAX)
            } else {
                0
            },
            command: req.command,
            credits: u16::try_from(want.min(8192)).unwrap_or(1),
            flags,
            next_command: if last {
                0
            } else {
                u32::try_from(padded).map_err(|_| Error::InvalidArgument("too large".into()))?
            },
            message_id: ids[i],
            tree_id: req.tree_id,
            session_id: req.session_id,
            ..Header::default()
        };
        let mut hw = Writer::with_capacity(HEADER_LEN);
        h.encode(&mut hw);
        let mut bytes = msg_into_vec(&mut msg);
        bytes[..HEADER_LEN].copy_from_slice(hw.as_slice());
        let needs_contiguous = sec.cipher.is_some() || hook.is_some();
        match payload {
            // The payload (a WRITE's data) is signed where it lies and sent
            // by the writer's vectored write: never copied.
            Some(p) if !needs_contiguous && last => {
                if flags & FLAG_SIGNED != 0 {
                    if let Some(s) = &sec.signer {
                        s.sign_parts(&mut bytes, &p);
                    }
                }
                total += bytes.len() + p.len();
                plain.push(Bytes::from(bytes));
                plain.push(p);
            }
            None if file_len > 0 => {
                total += bytes.len() + file_len;
                plain.push(Bytes::from(bytes));
            }
            p => {
                if let Some(p) = p {
                    bytes.extend_from_slice(&p);
                }
                bytes.resize(padded, 0);
                if flags & FLAG_SIGNED != 0 {
                    if let Some(s) = &sec.signer {
                        s.sign(&mut bytes);
                    }
                }
                if let Some(h) = hook.as_mut() {
                    h(&bytes);
                }
                total += bytes.len();
                plain.push(Bytes::from(bytes));
            }
        }
    }
    if let Some(cipher) = &sec.cipher {
        let room = 4 + header::TRANSFORM_HEADER_LEN;
        let mut joined = Vec::with_capacity(room + total);
        joined.resize(room, 0);
        for p in &plain {
            joined.extend_from_slice(p);
        }
        cipher.encrypt_in_place(&mut joined[4..])?;
        let prefix = length_prefix(joined.len() - 4)?;
        joined[..4].copy_from_slice(&prefix);
        return Ok(Frame::bytes(vec![Bytes::from(joined)]));
    }
    let mut parts = Vec::with_capacity(plain.len() + 1);
    parts.push(length_prefix(total)?);
    parts.extend(plain);
    Ok(Frame {
        parts,
        source: file_part,
    })
}

fn msg_into_vec(w: &mut Writer) -> Vec<u8> {
    std::mem::take(w).into_vec()
}

fn length_prefix(len: usize) -> Result<Bytes> {
    if len > MAX_FRAME {
        return Err(Error::InvalidArgument(format!(
            "frame of {len} bytes exceeds the 24-bit limit"
        )));
    }
    let l = u32::try_from(len).unwrap_or(0);
    Ok(Bytes::copy_from_slice(&l.to_be_bytes()))
}

/// Sends frames in order; what is already queued goes out in one vectored
/// write. Runs until the channel closes or the connection fails.
async fn writer_task(shared: Arc<Shared>, mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Frame>) {
    let mut pipe = SourcePipe::default();
    let mut batch: Vec<Bytes> = Vec::new();
    while let Some(frame) = rx.recv().await {
        let mut source = frame.source;
        batch.extend(frame.parts);
        // Coalesce what is already queued, up to the next file range.
        while source.is_none() && batch.len() < 64 {
            match rx.try_recv() {
                Ok(f) => {
                    batch.extend(f.parts);
                    source = f.source;
                }
                Err(_) => break,
            }
        }
        let mut n: usize = batch.iter().map(Bytes::len).sum();
        if let Err(e) = write_all_vectored(&mut wr, &mut batch).await {
            shared.fail(&format!("write failed: {e}"));
            return;
        }
        batch.clear();
        if let Some(src) = source {
            if let Err(e) = send_source(wr.as_ref(), &mut pipe, &src).await {
                shared.fail(&e);
                return;
            }
            n += src.len;
        }
        shared.stats_sent.fetch_add(n as u64, Ordering::Relaxed);
        if shared.failed.get().is_some() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn write_all_vectored(wr: &mut OwnedWriteHalf, parts: &mut [Bytes]) -> std::io::Result<()> {
    let mut idx = 0;
    while idx < parts.len() {
        if parts[idx].is_empty() {
            idx += 1;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = parts[idx..]
            .iter()
            .take(512)
            .map(|b| IoSlice::new(b))
            .collect();
        let mut written = wr.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 && idx < parts.len() {
            let l = parts[idx].len();
            if written >= l {
                written -= l;
                idx += 1;
            } else {
                parts[idx].advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

/// The writer's pipe for [`Source`] data (Linux), made on first use.
#[derive(Default)]
struct SourcePipe {
    #[cfg(target_os = "linux")]
    pipe: Option<std::result::Result<splice::Pipe, ()>>,
}

/// Sends the `len` bytes of a [`Source`]; when the file cannot supply them,
/// records the error in the source and sends zeros instead. `Err`: the
/// socket failed.
async fn send_source(
    sock: &TcpStream,
    pipe: &mut SourcePipe,
    src: &Source,
) -> std::result::Result<(), String> {
    let mut sent = 0;
    #[cfg(target_os = "linux")]
    {
        let p = pipe.pipe.get_or_insert_with(|| {
            splice::Pipe::new().map_err(|e| {
                tracing::debug!("no pipe for splice, sending file data from memory: {e}");
            })
        });
        if let Ok(p) = p {
            match splice::from_file(sock, p, src).await? {
                Ok(()) => return Ok(()),
                Err((done, e)) => {
                    sent = done;
                    let _ = src.error.set(e);
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
    // From memory: positional reads into a buffer (or zeros after an error).
    let mut buf = vec![0u8; src.len.min(1 << 20)];
    while sent < src.len {
        let want = (src.len - sent).min(buf.len());
        if src.error.get().is_none() {
            match read_full_at(&src.file, &mut buf[..want], src.offset + sent as u64) {
                Ok(n) if n == want => {}
                Ok(_) => {
                    let _ = src
                        .error
                        .set(std::io::Error::other("source file shrank while copying"));
                }
                Err(e) => {
                    let _ = src.error.set(e);
                }
            }
            if src.error.get().is_some() {
                buf.fill(0);
            }
        }
        write_all_shared(sock, &buf[..want])
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        sent += want;
    }
    Ok(())
}

/// Writes all of `buf` through a shared reference to the socket.
async fn write_all_shared(sock: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        sock.writable().await?;
        match sock.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into all of `buf` at `off` unless end of file comes first; returns the count.
fn read_full_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        #[cfg(unix)]
        let r = std::os::unix::fs::FileExt::read_at(f, &mut buf[n..], off + n as u64);
        #[cfg(windows)]
        let r = std::os::windows::fs::FileExt::seek_read(f, &mut buf[n..], off + n as u64);
        match r {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

async fn reader_task(shared: Arc<Shared>, rd: OwnedReadHalf) {
    let mut rd = FrameReader::new(rd);
    let reason = loop {
        let r = match rd.next_frame(&shared).await {
            Ok(Received::Frame(frame)) => {
                shared
                    .stats_received
                    .fetch_add(frame.len() as u64 + 4, Ordering::Relaxed);
                handle_frame(&shared, frame)
            }
            Ok(Received::Spliced(bytes)) => {
                // Routed by the splice machinery once the data is written.
                shared
                    .stats_received
                    .fetch_add(bytes as u64 + 4, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            break e;
        }
        if shared.failed.get().is_some() {
            return;
        }
    };
    shared.fail(&reason);
}

/// Decides from the first [`wio::READ_RESPONSE_FIXED`] bytes of an `n`-byte
/// frame whether its data goes straight to a [`Sink`]: a plain (not signed,
/// not compounded, successful, final) READ response whose request has a
/// sink that the data fits. Returns the sink and the data offset.
fn splice_target(shared: &Shared, head: &[u8], n: usize) -> Option<(Sink, usize)> {
    let h = Header::decode(head).ok()?;
    if h.command != Command::READ
        || !h.is_response()
        || h.is_interim()
        || h.is_signed()
        || h.status != NtStatus::SUCCESS
        || h.next_command != 0
    {
        return None;
    }
    let (off, len) = wio::read_data_span(head, n)?;
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let sink = st.pending.get(&h.message_id)?.sink.as_ref()?;
    (len <= sink.max_len).then(|| (sink.clone(), off))
}

/// Frames at least this large (READ responses) are read straight from the
/// socket into a buffer of their own, taken from a [`BufPool`]; smaller ones
/// are split off the reader's shared receive buffer.
const LARGE_FRAME: usize = 128 * 1024;

/// How much the shared receive buffer asks the socket for at once.
const RECV_CHUNK: usize = 256 * 1024;

/// Large frame buffers kept for reuse, in bytes of capacity: the default
/// in-flight window's worth of READ responses (128 MiB), so a full window
/// cycles through the pool instead of the allocator. The pool holds only
/// buffers that were all live at once, so it never raises peak memory.
const POOL_MAX_BYTES: usize = 128 * 1024 * 1024;

/// Receive buffers for large frames, handed back when the last `Bytes` slice
/// of a frame is dropped. Reusing them skips the allocator's fresh pages
/// (page faults and kernel zeroing cost more than the socket copy) and they
/// are never zero-filled: the socket writes into their spare capacity.
#[derive(Debug, Default)]
struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    /// An empty buffer with capacity of at least `n`.
    fn take(&self, n: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        // Best fit, so small frames do not take the big buffers.
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            return free.swap_remove(i);
        }
        drop(free);
        // Round up so frames of slightly different sizes share buffers.
        Vec::with_capacity(n.next_multiple_of(64 * 1024))
    }

    fn give(&self, mut v: Vec<u8>) {
        v.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut held: usize = free.iter().map(Vec::capacity).sum();
        // Over the cap, smaller buffers make room for a larger one (which
        // fits any frame they did); the total never exceeds the cap.
        while held + v.capacity() > POOL_MAX_BYTES {
            let smallest = free
                .iter()
                .enumerate()
                .filter(|(_, f)| f.capacity() < v.capacity())
                .min_by_key(|(_, f)| f.capacity())
                .map(|(i, _)| i);
            match smallest {
                Some(i) => held -= free.swap_remove(i).capacity(),
                None => return,
            }
        }
        free.push(v);
    }
}

/// A pooled frame buffer owned by a `Bytes`: returns to the pool on drop.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// What [`FrameReader::next_frame`] produced.
enum Received {
    Frame(FrameBuf),
    /// A READ response (this many bytes) whose data goes to a [`Sink`];
    /// it is routed once the data is written (see `splice::FrameDone`).
    Spliced(usize),
}

/// One received frame (without its 4-byte transport length), mutable so a
/// transform frame can be decrypted in place.
enum FrameBuf {
    Small(BytesMut),
    Large(Pooled),
}

impl FrameBuf {
    fn len(&self) -> usize {
        match self {
            Self::Small(b) => b.len(),
            Self::Large(p) => p.buf.len(),
        }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Small(b) => b,
            Self::Large(p) => &mut p.buf,
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Self::Small(b) => b.freeze(),
            Self::Large(p) => Bytes::from_owner(p),
        }
    }
}

impl std::ops::Deref for FrameBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Small(b) => b,
            Self::Large(p) => &p.buf,
        }
    }
}

/// De-frames the direct-TCP stream (MS-SMB2 2.1) with as few copies and
/// syscalls as possible: small frames come out of one receive buffer filled
/// in large reads; a large frame's body is read straight into its own pooled
/// buffer, so READ data is copied once, by the kernel.
struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    pool: Arc<BufPool>,
    /// Pipes and drain thread for [`Sink`] reads, made on first use; `Err`
    /// once making them failed (sinks are then filled from memory).
    #[cfg(target_os = "linux")]
    drainer: Option<std::result::Result<splice::Drainer, ()>>,
}

impl FrameReader {
    fn new(rd: OwnedReadHalf) -> Self {
        Self {
            rd,
            buf: BytesMut::with_capacity(RECV_CHUNK),
            pool: Arc::new(BufPool::default()),
            #[cfg(target_os = "linux")]
            drainer: None,
        }
    }

    /// Moves the data of an `n`-byte READ response into its sink, when
    /// [`splice_target`] names one (Linux only); `None`: read the frame as
    /// usual. The response is routed when the last byte is in the file.
    #[cfg(target_os = "linux")]
    async fn try_splice(
        &mut self,
        n: usize,
        shared: &Arc<Shared>,
    ) -> std::result::Result<Option<Received>, String> {
        while self.buf.len() < 4 + wio::READ_RESPONSE_FIXED {
            self.fill().await?;
        }
        let Some((sink, off)) =
            splice_target(shared, &self.buf[4..4 + wio::READ_RESPONSE_FIXED], n)
        else {
            return Ok(None);
        };
        let ready = self
            .drainer
            .get_or_insert_with(|| {
                splice::Drainer::new().map_err(|e| {
                    tracing::debug!("no pipes for splice, reading into memory: {e}");
                })
            })
            .is_ok();
        if !ready {
            return Ok(None);
        }
        while self.buf.len() < 4 + off {
            self.fill().await?;
        }
        let Some(Ok(drainer)) = &mut self.drainer else {
            return Ok(None);
        };
        self.buf.advance(4);
        let head = self.buf.split_to(off).freeze();
        let len = n - off;
        let prefix = self.buf.split_to(self.buf.len().min(len));
        let route_shared = Arc::clone(shared);
        let done = splice::FrameDone::new(move |file_err| {
            if let Err(e) = route(&route_shared, head, false, Some((len, file_err))) {
                route_shared.fail(&e);
            }
        });
        splice::to_file(
            self.rd.as_ref(),
            drainer,
            &prefix,
            len - prefix.len(),
            &sink,
            done,
        )
        .await?;
        Ok(Some(Received::Spliced(n)))
    }

    async fn fill(&mut self) -> std::result::Result<(), String> {
        if self.buf.capacity() - self.buf.len() < RECV_CHUNK / 4 {
            self.buf.reserve(RECV_CHUNK);
        }
        match self.rd.read_buf(&mut self.buf).await {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read failed: {e}")),
        }
    }

    async fn next_frame(&mut self, shared: &Arc<Shared>) -> std::result::Result<Received, String> {
        while self.buf.len() < 4 {
            self.fill().await?;
        }
        if self.buf[0] != 0 {
            return Err("malformed transport header".into());
        }
        let n = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if n < HEADER_LEN {
            return Err(format!("frame of {n} bytes is too short"));
        }
        if n >= LARGE_FRAME {
            #[cfg(target_os = "linux")]
            if let Some(r) = self.try_splice(n, shared).await? {
                return Ok(r);
            }
            #[cfg(not(target_os = "linux"))]
            let _ = shared;
            self.buf.advance(4);
            let mut v = self.pool.take(n);
            let have = self.buf.len().min(n);
            v.extend_from_slice(&self.buf[..have]);
            self.buf.advance(have);
            while v.len() < n {
                let want = n - v.len();
                match self.rd.read_buf(&mut (&mut v).limit(want)).await {
                    Ok(0) => return Err("the server closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return Err(format!("read failed: {e}")),
                }
            }
            return Ok(Received::Frame(FrameBuf::Large(Pooled {
                buf: v,
                pool: Arc::clone(&self.pool),
            })));
        }
        if self.buf.capacity() < 4 + n {
            self.buf.reserve(4 + n - self.buf.len());
        }
        while self.buf.len() < 4 + n {
            self.fill().await?;
        }
        self.buf.advance(4);
        Ok(Received::Frame(FrameBuf::Small(self.buf.split_to(n))))
    }
}

/// Encrypted frames at least this large are decrypted on tokio's blocking
/// pool, so concurrent large reads decrypt on several cores.
const PARALLEL_DECRYPT_MIN: usize = 256 * 1024;

fn handle_frame(shared: &Arc<Shared>, mut frame: FrameBuf) -> std::result::Result<(), String> {
    let magic: [u8; 4] = frame
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .unwrap_or_default();
    let (plain, encrypted) = if magic == TRANSFORM_MAGIC {
        let th = header::TransformHeader::decode(&frame)
            .map_err(|e| format!("malformed transform header: {e}"))?;
        let cipher = shared
            .ciphers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&th.session_id)
            .cloned()
            .ok_or("encrypted frame for an unknown session")?;
        if frame.len() >= PARALLEL_DECRYPT_MIN {
            let shared = Arc::clone(shared);
            // The blocking pool, not a task: on a single-threaded runtime a
            // task would decrypt on the reader's own thread.
            tokio::task::spawn_blocking(move || {
                let r = cipher
                    .decrypt_in_place(frame.as_mut())
                    .map_err(|e| format!("decrypting a frame: {e}"))
                    .and_then(|()| {
                        route(
                            &shared,
                            frame.freeze().slice(header::TRANSFORM_HEADER_LEN..),
                            true,
                            None,
                        )
                    });
                if let Err(e) = r {
                    shared.fail(&e);
                }
            });
            return Ok(());
        }
        cipher
            .decrypt_in_place(frame.as_mut())
            .map_err(|e| format!("decrypting a frame: {e}"))?;
        (frame.freeze().slice(header::TRANSFORM_HEADER_LEN..), true)
    } else if magic == COMPRESSION_MAGIC {
        return Err("compressed frame (never negotiated)".into());
    } else if magic == SMB1_MAGIC {
        return Err("the server answered with SMB1".into());
    } else {
        (frame.freeze(), false)
    };
    route(shared, plain, encrypted, None)
}

/// Splits a plain frame into its messages, adds their credits and hands each
/// final response to its waiter. `spliced`: the frame is the head of a READ
/// response whose data went to its sink (length, file error).
fn route(
    shared: &Shared,
    plain: Bytes,
    encrypted: bool,
    mut spliced: Option<(usize, Option<std::io::Error>)>,
) -> std::result::Result<(), String> {
    let ranges = header::split_compound(&plain).map_err(|e| format!("malformed reply: {e}"))?;
    for (s, e) in ranges {
        let msg = plain.slice(s..e);
        let h = Header::decode(&msg).map_err(|e| format!("malformed reply: {e}"))?;
        if !h.is_response() {
            return Err("the server sent a request".into());
        }
        capture(&h, &msg);
        shared.credits.add_permits(usize::from(h.credits));
        shared
            .window
            .fetch_add(i64::from(h.credits), Ordering::AcqRel);
        if h.message_id == UNSOLICITED_MESSAGE_ID {
            // Oplock/lease break: we never ask for oplocks or leases.
            tracing::debug!(command = ?h.command, "ignoring unsolicited message");
            continue;
        }
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_interim() {
            if let Some(p) = st.pending.get_mut(&h.message_id) {
                // Keep waiting; the AsyncId would be needed for CANCEL.
                p.async_id = h.async_id;
                p.interim.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let Some(p) = st.pending.remove(&h.message_id) else {
            tracing::debug!(id = h.message_id, "reply for a request nobody waits for");
            continue;
        };
        drop(st);
        shared.outstanding.fetch_sub(p.charge, Ordering::Relaxed);
        shared.in_flight_cap.add_permits(p.charge);
        shared
            .window
            .fetch_sub(p.charge as i64 + p.extra, Ordering::AcqRel);
        let r = match spliced.take() {
            Some((_, Some(e))) => Err(Error::Io(Arc::new(e))),
            Some((len, None)) => Ok(Response {
                header: h,
                msg,
                encrypted,
                spliced: Some(len),
            }),
            None => Ok(Response {
                header: h,
                msg,
                encrypted,
                spliced: None,
            }),
        };
        let _ = p.tx.send(r);
    }
    Ok(())
}

/// Debugging aid: when `SMB_CORE_CAPTURE_DIR` is set, every received message
/// (decrypted) is written there as `<COMMAND>-<status>-<message id>.bin`.
/// The fuzz seeds and codec test vectors were captured this way from Samba.
fn capture(h: &Header, msg: &[u8]) {
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let dir =
        DIR.get_or_init(|| std::env::var_os("SMB_CORE_CAPTURE_DIR").map(std::path::PathBuf::from));
    if let Some(dir) = dir {
        let name = format!(
            "{}-{:08x}-{}.bin",
            h.command.name().unwrap_or("UNKNOWN"),
            h.status.0,
            h.message_id
        );
        let _ = std::fs::write(dir.join(name), msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn pool_best_fit_and_cap() {
        let pool = Arc::new(BufPool::default());
        let small = pool.take(MIB);
        let big = pool.take(8 * MIB);
        assert!(small.capacity() >= MIB && big.capacity() >= 8 * MIB);
        pool.give(big);
        pool.give(small);
        // A 1 MiB frame takes the 1 MiB buffer, not the 8 MiB one.
        assert!(pool.take(MIB).capacity() < 8 * MIB);
        // Fill past the cap with 1 MiB buffers, then return big ones: the
        // total stays within the cap and the big ones are kept.
        let ones: Vec<_> = (0..POOL_MAX_BYTES / MIB + 8)
            .map(|_| Vec::with_capacity(MIB))
            .collect();
        for v in ones {
            pool.give(v);
        }
        for _ in 0..20 {
            pool.give(Vec::with_capacity(8 * MIB));
        }
        let free = pool.free.lock().unwrap();
        let held: usize = free.iter().map(Vec::capacity).sum();
        assert!(held <= POOL_MAX_BYTES, "{held}");
        assert!(free.iter().filter(|v| v.capacity() >= 8 * MIB).count() >= 15);
    }

    #[test]
    fn pooled_bytes_return_their_buffer() {
        let pool = Arc::new(BufPool::default());
        let mut v = pool.take(4 * MIB);
        v.extend_from_slice(&[7u8; 1000]);
        let b = FrameBuf::Large(Pooled {
            buf: v,
            pool: Arc::clone(&pool),
        })
        .freeze();
        let part = b.slice(10..20);
        drop(b);
        assert!(
            pool.free.lock().unwrap().is_empty(),
            "a slice still holds it"
        );
        assert_eq!(&part[..], &[7u8; 10]);
        drop(part);
        let free = pool.free.lock().unwrap();
        assert_eq!(free.len(), 1);
        assert!(free[0].is_empty() && free[0].capacity() >= 4 * MIB);
    }
}
