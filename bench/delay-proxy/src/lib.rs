//! A small TCP proxy that adds a fixed one-way delay to each direction of
//! every connection, to emulate network latency on a kernel without netem.
//!
//! For each accepted connection it opens one upstream connection and runs two
//! pumps (client→server and server→client). A pump is a reader thread and a
//! writer thread joined by a channel of `(Instant, Vec<u8>)`: every chunk the
//! reader gets from the socket is timestamped at once and the writer releases
//! it no earlier than `t_read + delay`. Order is preserved, nothing waits for
//! whole protocol frames (it streams whatever `read` returns), and the bytes
//! in flight per direction are bounded by a byte budget so memory cannot grow
//! without limit (the budget is large enough for >1 GB/s at +5 ms).
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

/// Default size of one read from a socket.
pub const DEFAULT_CHUNK: usize = 256 * 1024;
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
    let up = up.join().unwrap_or(0);
    stats.bytes_up.fetch_add(up, Ordering::Relaxed);
    stats.bytes_down.fetch_add(down, Ordering::Relaxed);
    if cfg.verbose {
        eprintln!("delay-proxy: #{id} closed: {up} bytes up, {down} bytes down");
    }
    Ok(())
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
/// it was read. Returns the number of bytes written. On EOF from `src` the
/// write side of `dst` is shut down after the last delayed chunk.
fn pump(mut src: TcpStream, dst: TcpStream, cfg: &Config) -> u64 {
    let budget = Arc::new(Budget::new(cfg.max_in_flight.max(cfg.chunk)));
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = {
        let budget = Arc::clone(&budget);
        let src_ctl = src.try_clone();
        let delay = cfg.delay;
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || write_side(dst, src_ctl.ok(), &rx, &budget, delay))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            eprintln!("delay-proxy: cannot spawn writer: {e}");
            let _ = src.shutdown(Shutdown::Both);
            return 0;
        }
    };
    let mut buf = vec![0u8; cfg.chunk.max(1)];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let t = Instant::now();
        if !budget.acquire(n) || tx.send((t, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    writer.join().unwrap_or(0)
}

fn write_side(
    mut dst: TcpStream,
    src: Option<TcpStream>,
    rx: &mpsc::Receiver<(Instant, Vec<u8>)>,
    budget: &Budget,
    delay: Duration,
) -> u64 {
    let mut total = 0u64;
    while let Ok((t, chunk)) = rx.recv() {
        let due = t + delay;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if dst.write_all(&chunk).is_err() {
            // Peer is gone: stop the reader too and drop what is queued.
            budget.close();
            let _ = dst.shutdown(Shutdown::Both);
            if let Some(s) = &src {
                let _ = s.shutdown(Shutdown::Read);
            }
            return total;
        }
        total += chunk.len() as u64;
        budget.release(chunk.len());
    }
    // Reader saw EOF (or an error): pass the half-close on.
    let _ = dst.shutdown(Shutdown::Write);
    total
}
