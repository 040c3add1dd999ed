//! A small TCP proxy that adds a fixed one-way delay to each direction of
//! every connection, to emulate network latency on a kernel without netem.
//!
//! For each accepted connection it opens one upstream connection and runs two
//! pumps (client→server and server→client). A pump is a reader thread and a
//! writer thread joined by a channel of `(Instant, Chunk)`: every chunk the
//! reader gets from the socket is timestamped at once and the writer releases
//! it no earlier than `t_read + delay`. Order is preserved, nothing waits for
//! whole protocol frames (it streams whatever one read returns), and the bytes
//! in flight per direction are bounded by a byte budget so memory cannot grow
//! without limit (the budget is large enough for >2 GB/s at +5 ms).
//!
//! On Linux a chunk is a pipe: the reader `splice(2)`s socket → pipe and the
//! writer pipe → socket, so the payload never enters user space (the kernel
//! moves page references). That costs a fraction of the CPU of read + write,
//! which on a 2-core box is what capped throughput through the proxy. Pipes
//! come from a bounded per-direction free list, which also gives backpressure.
//! Where splice is unavailable (other systems, `EINVAL` on an odd socket, no
//! pipes left) a chunk is a `Vec<u8>` filled by `read`, as before.
//!
//! Blocking std sockets and threads are used instead of an async runtime
//! because `std::thread::sleep` is precise to well under 1 ms, while tokio's
//! timer wheel rounds deadlines up to whole milliseconds.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default size of one read from a socket (and of a splice pipe).
pub const DEFAULT_CHUNK: usize = 1024 * 1024;
/// Default limit of bytes read but not yet written, per direction.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64 * 1024 * 1024;

/// Proxy settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where connections are forwarded to.
    pub upstream: SocketAddr,
    /// One-way delay added to each direction.
    pub delay: Duration,
    /// Maximum bytes per socket read (one chunk).
    pub chunk: usize,
    /// Maximum bytes held in the proxy per direction per connection.
    pub max_in_flight: usize,
    /// Move bytes with splice(2) where the system supports it (Linux);
    /// false forces the read + write path.
    pub zero_copy: bool,
    /// Log connections and byte counts to stderr.
    pub verbose: bool,
}

impl Config {
    /// Settings with the default chunk size and in-flight limit.
    pub fn new(upstream: SocketAddr, delay: Duration) -> Self {
        Self {
            upstream,
            delay,
            chunk: DEFAULT_CHUNK,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            zero_copy: true,
            verbose: false,
        }
    }
}

/// Totals over all connections of a proxy (for logging and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Bytes forwarded client→server.
    pub bytes_up: AtomicU64,
    /// Bytes forwarded server→client.
    pub bytes_down: AtomicU64,
    /// Chunks that went through splice pipes (both directions; 0 when the
    /// copy path was used).
    pub spliced_chunks: AtomicU64,
}

/// Resolves `addr` (e.g. `127.0.0.1:4450`) to its first socket address.
pub fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, format!("cannot resolve {addr}")))
}

/// Binds `listen` and serves connections on a background thread.
/// Returns the bound address (useful with port 0) and the shared stats.
pub fn spawn(listen: &str, cfg: Config) -> io::Result<(SocketAddr, Arc<Stats>)> {
    let listener = TcpListener::bind(listen)?;
    let local = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let st = Arc::clone(&stats);
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || serve(&listener, &cfg, &st))?;
    Ok((local, stats))
}

/// Accepts connections forever, proxying each on its own threads.
pub fn serve(listener: &TcpListener, cfg: &Config, stats: &Arc<Stats>) {
    for conn in listener.incoming() {
        let client = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("delay-proxy: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let cfg = cfg.clone();
        let stats = Arc::clone(stats);
        let id = stats.connections.fetch_add(1, Ordering::Relaxed);
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || {
                if let Err(e) = handle(client, &cfg, &stats, id) {
                    eprintln!("delay-proxy: connection {id}: {e}");
                }
            });
        if let Err(e) = spawned {
            eprintln!("delay-proxy: cannot spawn thread: {e}");
        }
    }
}

fn handle(client: TcpStream, cfg: &Config, stats: &Stats, id: u64) -> io::Result<()> {
    let peer = client.peer_addr().ok();
    let server = match TcpStream::connect(cfg.upstream) {
        Ok(s) => s,
        Err(e) => {
            let _ = client.shutdown(Shutdown::Both);
            return Err(io::Error::new(
                e.kind(),
                format!("connect {}: {e}", cfg.upstream),
            ));
        }
    };
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    if cfg.verbose {
        eprintln!("delay-proxy: #{id} {peer:?} -> {}", cfg.upstream);
    }
    let up = {
        let (src, dst, cfg) = (client.try_clone()?, server.try_clone()?, cfg.clone());
        thread::Builder::new()
            .name(format!("up-{id}"))
            .spawn(move || pump(src, dst, &cfg))?
    };
    let down = pump(server, client, cfg);
    let up = up.join().unwrap_or_default();
    stats.bytes_up.fetch_add(up.bytes, Ordering::Relaxed);
    stats.bytes_down.fetch_add(down.bytes, Ordering::Relaxed);
    stats
        .spliced_chunks
        .fetch_add(up.spliced + down.spliced, Ordering::Relaxed);
    if cfg.verbose {
        eprintln!("delay-proxy: #{id} closed: up {up}; down {down}");
    }
    Ok(())
}

/// What one direction of a connection forwarded.
#[derive(Clone, Copy, Debug, Default)]
struct Pumped {
    bytes: u64,
    chunks: u64,
    spliced: u64,
}

impl std::fmt::Display for Pumped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let avg = self.bytes.checked_div(self.chunks).unwrap_or(0);
        write!(
            f,
            "{} bytes in {} chunks (avg {avg}, {} spliced)",
            self.bytes, self.chunks, self.spliced
        )
    }
}

/// Bytes read from the source and not yet written to the destination.
enum Chunk {
    Bytes(Vec<u8>),
    #[cfg(target_os = "linux")]
    Pipe(zero_copy::Filled),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            #[cfg(target_os = "linux")]
            Self::Pipe(p) => p.len(),
        }
    }
}

/// The reader's half of a pump: turns socket input into chunks.
struct Source {
    src: TcpStream,
    chunk: usize,
    /// Copy-path buffer, allocated on first use.
    buf: Vec<u8>,
    #[cfg(target_os = "linux")]
    pipes: Option<Arc<zero_copy::Pipes>>,
}

impl Source {
    /// Blocks until bytes arrive and takes up to one chunk of them.
    /// `Ok(None)` on EOF, or when the writer has gone away.
    fn read(&mut self) -> io::Result<Option<Chunk>> {
        #[cfg(target_os = "linux")]
        if let Some(pipes) = &self.pipes {
            match pipes.fill(&self.src, self.chunk) {
                zero_copy::Fill::Data(f) => return Ok(Some(Chunk::Pipe(f))),
                zero_copy::Fill::Eof | zero_copy::Fill::Closed => return Ok(None),
                zero_copy::Fill::Err(e) => return Err(e),
                // Nothing was consumed: the copy path continues in order.
                zero_copy::Fill::Unsupported => self.pipes = None,
            }
        }
        if self.buf.is_empty() {
            self.buf = vec![0u8; self.chunk];
        }
        loop {
            match self.src.read(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(Chunk::Bytes(self.buf[..n].to_vec()))),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes all of `chunk` to `dst` (a spliced chunk's pipe goes back to its
/// free list).
fn write_chunk(dst: &TcpStream, chunk: Chunk) -> io::Result<()> {
    match chunk {
        Chunk::Bytes(b) => (&mut &*dst).write_all(&b),
        #[cfg(target_os = "linux")]
        Chunk::Pipe(f) => f.drain(dst),
    }
}

/// Byte budget shared by a pump's reader and writer.
struct Budget {
    state: Mutex<BudgetState>,
    cv: Condvar,
    cap: usize,
}

struct BudgetState {
    used: usize,
    closed: bool,
}

impl Budget {
    fn new(cap: usize) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                used: 0,
                closed: false,
            }),
            cv: Condvar::new(),
            cap,
        }
    }

    /// Waits until `n` more bytes fit (a chunk always fits into an empty
    /// budget). Returns false once the writer has gone away.
    fn acquire(&self, n: usize) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !st.closed && st.used > 0 && st.used + n > self.cap {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.closed {
            return false;
        }
        st.used += n;
        true
    }

    fn release(&self, n: usize) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.used -= n;
        self.cv.notify_one();
    }

    fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.closed = true;
        self.cv.notify_all();
    }
}

/// Copies `src` to `dst`, delaying every chunk by `cfg.delay` from the moment
/// it was read. On EOF from `src` the write side of `dst` is shut down after
/// the last delayed chunk.
fn pump(src: TcpStream, dst: TcpStream, cfg: &Config) -> Pumped {
    let chunk = cfg.chunk.max(1);
    let budget = Arc::new(Budget::new(cfg.max_in_flight.max(chunk)));
    #[cfg(target_os = "linux")]
    let pipes = cfg
        .zero_copy
        .then(|| zero_copy::Pipes::new(chunk, cfg.max_in_flight))
        .flatten()
        .map(Arc::new);
    let (tx, rx) = mpsc::channel::<(Instant, Chunk)>();
    let writer = {
        let budget = Arc::clone(&budget);
        let src_ctl = src.try_clone();
        #[cfg(target_os = "linux")]
        let pipes = pipes.clone();
        let delay = cfg.delay;
        thread::Builder::new().name("writer".into()).spawn(move || {
            let p = write_side(&dst, src_ctl.ok(), &rx, &budget, delay);
            // A writer that stopped early must also wake a reader that is
            // waiting for a free pipe.
            #[cfg(target_os = "linux")]
            if let Some(pipes) = pipes {
                pipes.close();
            }
            p
        })
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            eprintln!("delay-proxy: cannot spawn writer: {e}");
            let _ = src.shutdown(Shutdown::Both);
            return Pumped::default();
        }
    };
    let mut source = Source {
        src,
        chunk,
        buf: Vec::new(),
        #[cfg(target_os = "linux")]
        pipes,
    };
    while let Ok(Some(c)) = source.read() {
        let t = Instant::now();
        if !budget.acquire(c.len()) || tx.send((t, c)).is_err() {
            break;
        }
    }
    drop(tx);
    writer.join().unwrap_or_default()
}

fn write_side(
    dst: &TcpStream,
    src: Option<TcpStream>,
    rx: &mpsc::Receiver<(Instant, Chunk)>,
    budget: &Budget,
    delay: Duration,
) -> Pumped {
    let mut done = Pumped::default();
    while let Ok((t, chunk)) = rx.recv() {
        let due = t + delay;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let n = chunk.len();
        #[cfg(target_os = "linux")]
        let spliced = u64::from(matches!(chunk, Chunk::Pipe(_)));
        #[cfg(not(target_os = "linux"))]
        let spliced = 0;
        if write_chunk(dst, chunk).is_err() {
            // Peer is gone: stop the reader too and drop what is queued.
            budget.close();
            let _ = dst.shutdown(Shutdown::Both);
            if let Some(s) = &src {
                let _ = s.shutdown(Shutdown::Read);
            }
            return done;
        }
        done.bytes += n as u64;
        done.chunks += 1;
        done.spliced += spliced;
        budget.release(n);
    }
    // Reader saw EOF (or an error): pass the half-close on.
    let _ = dst.shutdown(Shutdown::Write);
    done
}

/// The splice(2) data path: socket → pipe → socket without a user-space copy.
#[cfg(target_os = "linux")]
mod zero_copy {
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::sync::{Condvar, Mutex};

    use rustix::io::Errno;
    use rustix::pipe::{
        fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
    };

    /// Smallest pipe worth asking for (the kernel's default size).
    const MIN_PIPE: usize = 64 * 1024;
    /// Upper bound on pipes per direction: each holds two descriptors, and a
    /// chunk is often much smaller than the pipe, so the byte budget alone
    /// would allow thousands. 512 pipes cover +5 ms at 2 GB/s even at 20 KB
    /// per chunk.
    const MAX_PIPES: usize = 512;

    /// One pipe; empty whenever it is in the free list.
    struct Pipe {
        r: File,
        w: File,
        cap: usize,
    }

    impl Pipe {
        fn new(want: usize) -> io::Result<Self> {
            let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
            // Larger than /proc/sys/fs/pipe-max-size needs CAP_SYS_RESOURCE
            // (EPERM), and an unprivileged user over pipe-user-pages-soft
            // gets EPERM too: halve until the kernel agrees, else keep the
            // default size.
            let mut size = want.next_power_of_two().max(MIN_PIPE);
            let cap = loop {
                match fcntl_setpipe_size(&w, size) {
                    Ok(n) => break n,
                    Err(_) if size > MIN_PIPE => size /= 2,
                    Err(_) => break fcntl_getpipe_size(&w)?,
                }
            };
            Ok(Self {
                r: File::from(r),
                w: File::from(w),
                cap,
            })
        }
    }

    /// A chunk: a pipe holding `len` bytes spliced from the source.
    pub(super) struct Filled {
        pipe: Pipe,
        len: usize,
        pipes: std::sync::Arc<Pipes>,
    }

    /// Outcome of one splice from the source socket.
    pub(super) enum Fill {
        Data(Filled),
        Eof,
        /// The writer has gone away.
        Closed,
        /// splice does not work here (nothing was consumed): use read.
        Unsupported,
        Err(io::Error),
    }

    /// A direction's bounded free list of pipes, grown on demand.
    pub(super) struct Pipes {
        state: Mutex<State>,
        cv: Condvar,
        want: usize,
    }

    struct State {
        free: Vec<Pipe>,
        /// Pipes that exist (free or holding a chunk).
        live: usize,
        max: usize,
        closed: bool,
    }

    enum Take {
        Pipe(Pipe),
        Closed,
        NoPipes,
    }

    impl Pipes {
        /// A pool of pipes of about `chunk` bytes, or None when this process
        /// cannot make one (then the copy path is used).
        pub(super) fn new(chunk: usize, max_in_flight: usize) -> Option<Self> {
            let first = Pipe::new(chunk).ok()?;
            let max = (max_in_flight / (16 * 1024)).clamp(4, MAX_PIPES);
            Some(Self {
                state: Mutex::new(State {
                    free: vec![first],
                    live: 1,
                    max,
                    closed: false,
                }),
                cv: Condvar::new(),
                want: chunk,
            })
        }

        /// A free pipe, waiting while all pipes hold chunks (backpressure).
        fn take(&self) -> Take {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if st.closed {
                    return Take::Closed;
                }
                if let Some(p) = st.free.pop() {
                    return Take::Pipe(p);
                }
                if st.live < st.max {
                    match Pipe::new(self.want) {
                        Ok(p) => {
                            st.live += 1;
                            return Take::Pipe(p);
                        }
                        // Out of descriptors or pipe memory: make do with
                        // the pipes there are.
                        Err(_) if st.live > 0 => st.max = st.live,
                        Err(_) => return Take::NoPipes,
                    }
                }
                st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }

        fn give_back(&self, p: Pipe) {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.free.push(p);
            self.cv.notify_one();
        }

        /// Fails every present and future `take` (the writer is gone).
        pub(super) fn close(&self) {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.closed = true;
            st.free.clear();
            self.cv.notify_all();
        }

        /// Splices up to `max` bytes from `src` into a free pipe, blocking
        /// until some arrive.
        pub(super) fn fill(self: &std::sync::Arc<Self>, src: &TcpStream, max: usize) -> Fill {
            let pipe = match self.take() {
                Take::Pipe(p) => p,
                Take::Closed => return Fill::Closed,
                Take::NoPipes => return Fill::Unsupported,
            };
            let len = max.min(pipe.cap);
            loop {
                match splice(src, None, &pipe.w, None, len, SpliceFlags::MOVE) {
                    Ok(0) => {
                        self.give_back(pipe);
                        return Fill::Eof;
                    }
                    Ok(n) => {
                        return Fill::Data(Filled {
                            pipe,
                            len: n,
                            pipes: std::sync::Arc::clone(self),
                        })
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                        self.give_back(pipe);
                        return Fill::Unsupported;
                    }
                    Err(e) => {
                        self.give_back(pipe);
                        return Fill::Err(e.into());
                    }
                }
            }
        }
    }

    impl Filled {
        pub(super) fn len(&self) -> usize {
            self.len
        }

        /// Splices the whole chunk to `dst` and returns the pipe to its free
        /// list. On error the pipe (which may still hold bytes) is dropped.
        /// A peer that is gone yields EPIPE: Rust binaries ignore SIGPIPE.
        pub(super) fn drain(self, dst: &TcpStream) -> io::Result<()> {
            let Self { pipe, len, pipes } = self;
            let mut left = len;
            while left > 0 {
                match splice(&pipe.r, None, dst, None, left, SpliceFlags::MOVE) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => left -= n,
                    Err(Errno::INTR) => {}
                    Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                        let mut buf = vec![0u8; left];
                        (&pipe.r).read_exact(&mut buf)?;
                        (&mut &*dst).write_all(&buf)?;
                        left = 0;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            pipes.give_back(pipe);
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn pipe_gets_at_least_the_default_size() {
            let p = Pipe::new(256 * 1024).unwrap();
            assert!(p.cap >= MIN_PIPE, "{}", p.cap);
        }
    }
}
