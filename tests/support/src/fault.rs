//! A TCP fault proxy for what Samba cannot do by itself: cut a connection at
//! an exact byte, cut every live connection now, or refuse new ones for a
//! while (a server that is "down"), or cut just before the server's reply to
//! one CREATE (the server has the open, the client never hears of it).
//! Blocking std sockets and two threads per connection; bytes are forwarded
//! as they arrive. SMB2 frames are looked into only where a trigger needs
//! it (plain or signed traffic; encrypted frames pass unseen).

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
    /// Milliseconds a byte-triggered cut waits after forwarding up to its
    /// byte, before it cuts.
    pause_before_cut_ms: AtomicU64,
    /// Flip (XOR 0xFF) the client→server byte at this total offset, once
    /// (0: not armed; the offset is 1-based so that 0 can mean "off").
    flip_up_at: AtomicU64,
    /// UTF-16LE bytes of a name, and how many more durable CREATEs (ones
    /// carrying a DH2Q context) whose names contain them pass before the
    /// next one has its reply cut (one-shot).
    cut_create_reply: Mutex<Option<(Vec<u8>, u32)>>,
    /// CREATE replies the server sent as interim (STATUS_PENDING): it held
    /// the open back (a lease break, a share mode it waits for).
    pending_creates: AtomicU64,
    /// Cuts leave the server's side open and silent (see
    /// [`FaultProxy::half_open`]).
    half_open: AtomicBool,
    /// Server-side sockets of half-open cuts, kept open.
    zombies: Mutex<Vec<TcpStream>>,
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
                // MessageIds of this connection whose replies are cut.
                let watch = Arc::new(Mutex::new(Vec::new()));
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
                    let watch = Arc::clone(&watch);
                    thread::spawn(move || pump(from, to, down, &st, &watch));
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

    /// Makes a byte-triggered cut ([`FaultProxy::cut_down_at`],
    /// [`FaultProxy::cut_up_at`]) wait this long after forwarding up to its
    /// byte before it cuts: the peer has taken in everything before the cut
    /// by then, and sees the end of the stream with nothing else going on.
    pub fn pause_before_cut(&self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.state.pause_before_cut_ms.store(ms, Ordering::Release);
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

    /// Cuts every live connection just before the server's first reply to
    /// the `nth` (from 1) CREATE from now on that asks for a durable handle
    /// (DH2Q) on a name containing `name` (a part of the path,
    /// `\`-separated): the server got that CREATE and opened the file, the
    /// client never sees the reply. Earlier matches pass. One-shot; plain
    /// or signed traffic only.
    pub fn cut_before_create_reply(&self, name: &str, nth: u32) {
        let pattern = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        *self
            .state
            .cut_create_reply
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((pattern, nth.saturating_sub(1)));
    }

    /// True while a [`FaultProxy::cut_before_create_reply`] has not fired.
    pub fn create_cut_armed(&self) -> bool {
        self.state
            .cut_create_reply
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// CREATE replies the server sent as interim responses (STATUS_PENDING)
    /// so far: each one is an open the server held back, e.g. waiting for
    /// a lease break or a share mode to go away.
    pub fn pending_creates(&self) -> u64 {
        self.state.pending_creates.load(Ordering::Relaxed)
    }

    /// While on, a cut closes only the client's side: the server's side
    /// stays open and hears nothing more, as when the network between them
    /// vanished (the server learns of it only when the client logs on
    /// again with PreviousSessionId, or by TCP timeouts).
    pub fn half_open(&self, on: bool) {
        self.state.half_open.store(on, Ordering::Release);
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
    let half = st.half_open.load(Ordering::Acquire);
    for (c, s) in live {
        let _ = c.shutdown(Shutdown::Both);
        if half {
            st.zombies.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        } else {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    st.cuts.fetch_add(1, Ordering::Relaxed);
}

fn pump(mut from: TcpStream, mut to: TcpStream, down: bool, st: &State, watch: &Mutex<Vec<u64>>) {
    let (total, trigger) = if down {
        (&st.bytes_down, &st.cut_down_at)
    } else {
        (&st.bytes_up, &st.cut_up_at)
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut up = UpFrames::default();
    let mut down_frames = DownFrames::default();
    // Down: bytes of a frame whose header has not fully arrived, held back
    // until it has (a cut must fall before the reply's first byte).
    let mut carry: Vec<u8> = Vec::new();
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
            // Looked at before it is forwarded: the reply cannot come back
            // before its MessageId is watched.
            up.feed(&buf[..n], |frame| watch_create(st, watch, frame));
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
            let _ = to.write_all(&carry);
            let _ = to.write_all(&buf[..keep]);
            let pause = st.pause_before_cut_ms.load(Ordering::Acquire);
            if pause > 0 {
                thread::sleep(std::time::Duration::from_millis(pause));
            }
            cut_all(st);
            break;
        }
        if !down {
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            continue;
        }
        carry.extend_from_slice(&buf[..n]);
        let (ready, cut) = down_frames.scan(&carry, |head| reply_seen(st, watch, head));
        let _ = to.write_all(&carry[..ready]);
        if cut {
            cut_all(st);
            break;
        }
        carry.drain(..ready);
    }
    if down {
        let _ = to.shutdown(Shutdown::Write);
        return;
    }
    if st.half_open.load(Ordering::Acquire) {
        // The server hears nothing, not even the end of the stream.
        return;
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The first bytes of each client→server frame, up to [`UP_KEEP`]: enough
/// for a CREATE's header, name and contexts.
#[derive(Debug, Default)]
struct UpFrames {
    /// The 4-byte length prefix, while incomplete.
    prefix: Vec<u8>,
    /// The frame so far (at most [`UP_KEEP`] bytes of it).
    frame: Vec<u8>,
    /// Bytes of the current frame not yet seen.
    left: usize,
}

const UP_KEEP: usize = 8192;

impl UpFrames {
    fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(&[u8])) {
        while !data.is_empty() {
            if self.left == 0 {
                let need = 4 - self.prefix.len();
                let take = need.min(data.len());
                self.prefix.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.prefix.len() < 4 {
                    return;
                }
                let p = &self.prefix;
                self.left = usize::from(p[1]) << 16 | usize::from(p[2]) << 8 | usize::from(p[3]);
                self.prefix.clear();
                self.frame.clear();
                continue;
            }
            let take = self.left.min(data.len());
            let room = UP_KEEP.saturating_sub(self.frame.len()).min(take);
            self.frame.extend_from_slice(&data[..room]);
            self.left -= take;
            data = &data[take..];
            if self.left == 0 {
                on_frame(&self.frame);
            }
        }
    }
}

/// Finds where server→client frames start.
#[derive(Debug, Default)]
struct DownFrames {
    /// Bytes of the current frame still to pass (its header was seen).
    left: usize,
}

/// Length prefix and SMB2 header.
const DOWN_HEAD: usize = 4 + 64;

impl DownFrames {
    /// Scans `data` (which starts where the last scan stopped): how many
    /// bytes may be forwarded (up to a frame whose header is incomplete),
    /// and whether to cut there (`on_head` said so for the frame starting
    /// at that point).
    fn scan(&mut self, data: &[u8], mut on_head: impl FnMut(&[u8]) -> bool) -> (usize, bool) {
        let mut i = 0;
        while i < data.len() {
            if self.left > 0 {
                let skip = self.left.min(data.len() - i);
                i += skip;
                self.left -= skip;
                continue;
            }
            if data.len() - i < 4 {
                return (i, false);
            }
            let len = usize::from(data[i + 1]) << 16
                | usize::from(data[i + 2]) << 8
                | usize::from(data[i + 3]);
            let head = DOWN_HEAD.min(4 + len);
            if data.len() - i < head {
                return (i, false);
            }
            if on_head(&data[i + 4..i + head]) {
                return (i, true);
            }
            self.left = 4 + len;
        }
        (data.len(), false)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const SMB2_MAGIC: &[u8] = b"\xfeSMB";
const CREATE: usize = 5;

/// A client→server frame: when it holds the durable CREATE whose reply is
/// to be cut, watch its MessageId on this connection.
fn watch_create(st: &State, watch: &Mutex<Vec<u64>>, frame: &[u8]) {
    let mut armed = st
        .cut_create_reply
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some((pattern, skip)) = armed.as_mut() else {
        return;
    };
    let mut off = 0;
    // Each request of a compound.
    while frame.get(off..off + 4) == Some(SMB2_MAGIC) {
        let hit = (|| {
            if u16_at(frame, off + 12)? != CREATE {
                return None;
            }
            let body = off + 64;
            let name_at = off + u16_at(frame, body + 44)?;
            let name = frame.get(name_at..name_at + u16_at(frame, body + 46)?)?;
            let ctx_at = off + usize::try_from(u32_at(frame, body + 48)?).ok()?;
            let ctx =
                frame.get(ctx_at..ctx_at + usize::try_from(u32_at(frame, body + 52)?).ok()?)?;
            let named = name.windows(pattern.len()).any(|w| w == pattern.as_slice());
            let durable = ctx.windows(4).any(|w| w == b"DH2Q");
            (named && durable).then(|| u64_at(frame, off + 24))?
        })();
        if let Some(id) = hit {
            if *skip > 0 {
                *skip -= 1;
            } else {
                watch.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                *armed = None;
                return;
            }
        }
        match u32_at(frame, off + 20) {
            Some(next) if next != 0 => off += next as usize,
            _ => return,
        }
    }
}

/// A server→client SMB2 header: counts interim CREATE replies; true when
/// its MessageId is watched (cut before it).
fn reply_seen(st: &State, watch: &Mutex<Vec<u64>>, head: &[u8]) -> bool {
    if head.get(..4) != Some(SMB2_MAGIC) {
        return false;
    }
    let (Some(command), Some(status), Some(id)) =
        (u16_at(head, 12), u32_at(head, 8), u64_at(head, 24))
    else {
        return false;
    };
    const STATUS_PENDING: u32 = 0x0000_0103;
    if command == CREATE && status == STATUS_PENDING {
        st.pending_creates.fetch_add(1, Ordering::Relaxed);
    }
    watch
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id)
}
