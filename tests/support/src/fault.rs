//! A TCP fault proxy for what Samba cannot do by itself: cut a connection at
//! an exact byte, cut every live connection now, or refuse new ones for a
//! while (a server that is "down"). Blocking std sockets and two threads per
//! connection; bytes are forwarded as they arrive.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Debug, Default)]
struct State {
    /// Live connections (both sockets), to cut them from outside.
    live: Mutex<Vec<(TcpStream, TcpStream)>>,
    /// Cut once this many server→client bytes have passed in total
    /// (0: not armed). One-shot.
    cut_down_at: AtomicU64,
    /// Cut once this many client→server bytes have passed in total.
    cut_up_at: AtomicU64,
    /// Flip (XOR 0xFF) the client→server byte at this total offset, once
    /// (0: not armed; the offset is 1-based so that 0 can mean "off").
    flip_up_at: AtomicU64,
    refuse: AtomicBool,
    /// While set, bytes are read but not forwarded (a frozen peer).
    stalled: AtomicBool,
    connections: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    cuts: AtomicU64,
}

/// A proxy in front of one upstream address, on a free loopback port.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts forwarding connections to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if st.refuse.load(Ordering::Acquire) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                st.connections.fetch_add(1, Ordering::Relaxed);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    st.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((c, s));
                }
                for (from, to, down) in [
                    (client.try_clone(), server.try_clone(), false),
                    (server.try_clone(), client.try_clone(), true),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let st = Arc::clone(&st);
                    thread::spawn(move || pump(from, to, down, &st));
                }
            }
        });
        Self { addr, state }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Cuts the connection carrying the byte at which the server→client
    /// total reaches `total` (counted over all connections so far).
    pub fn cut_down_at(&self, total: u64) {
        self.state.cut_down_at.store(total, Ordering::Release);
    }

    /// Cuts the connection carrying the byte at which the client→server
    /// total reaches `total`.
    pub fn cut_up_at(&self, total: u64) {
        self.state.cut_up_at.store(total, Ordering::Release);
    }

    /// Corrupts the client→server byte number `n` (1-based, over all
    /// connections so far) by flipping all its bits, once.
    pub fn flip_up_at(&self, n: u64) {
        self.state.flip_up_at.store(n, Ordering::Release);
    }

    /// Cuts every live connection now.
    pub fn cut_now(&self) {
        cut_all(&self.state);
    }

    /// While on, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::Release);
    }

    /// While on, nothing is forwarded either way: the connections stay
    /// open and the server looks frozen.
    pub fn stall(&self, on: bool) {
        self.state.stalled.store(on, Ordering::Release);
    }

    /// Connections forwarded so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Cuts made so far (by a byte trigger or [`FaultProxy::cut_now`]).
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::Relaxed)
    }

    /// Server→client bytes forwarded so far.
    pub fn bytes_down(&self) -> u64 {
        self.state.bytes_down.load(Ordering::Relaxed)
    }

    /// Client→server bytes forwarded so far.
    pub fn bytes_up(&self) -> u64 {
        self.state.bytes_up.load(Ordering::Relaxed)
    }
}

fn cut_all(st: &State) {
    let live = std::mem::take(&mut *st.live.lock().unwrap_or_else(|e| e.into_inner()));
    for (c, s) in live {
        let _ = c.shutdown(Shutdown::Both);
        let _ = s.shutdown(Shutdown::Both);
    }
    st.cuts.fetch_add(1, Ordering::Relaxed);
}

fn pump(mut from: TcpStream, mut to: TcpStream, down: bool, st: &State) {
    let (total, trigger) = if down {
        (&st.bytes_down, &st.cut_down_at)
    } else {
        (&st.bytes_up, &st.cut_up_at)
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = total.fetch_add(n as u64, Ordering::AcqRel);
        if !down {
            let at = st.flip_up_at.load(Ordering::Acquire);
            if at > before
                && at <= before + n as u64
                && st.flip_up_at.swap(0, Ordering::AcqRel) == at
            {
                buf[usize::try_from(at - before - 1).unwrap_or(0)] ^= 0xFF;
            }
        }
        while st.stalled.load(Ordering::Acquire) {
            thread::sleep(std::time::Duration::from_millis(10));
        }
        let at = trigger.load(Ordering::Acquire);
        if at != 0 && before + n as u64 >= at && trigger.swap(0, Ordering::AcqRel) == at {
            // Forward exactly up to the byte, then cut everything.
            let keep = usize::try_from(at.saturating_sub(before))
                .unwrap_or(n)
                .min(n);
            let _ = to.write_all(&buf[..keep]);
            cut_all(st);
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
