//! [`Client`]: one TCP connection to one server, negotiated and shared, and
//! the means to dial it again. The client owns a connection slot with a
//! generation number; [`Client::reconnect`] (one caller dials, the others
//! wait for it) puts a new connection in the slot, and sessions, trees and
//! files re-establish themselves lazily when they see a newer generation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::net::TcpStream;

use crate::conn::{new_message, Connection, Outgoing, Security};
use crate::crypto::PreauthHash;
use crate::error::{Error, Result};
use crate::file::{FileInner, LostCreate};
use crate::proto::{self, Negotiated};
use crate::session::{Credentials, Session};
use crate::wire::negotiate::NegotiateResponse;
use crate::wire::{session as wsession, Command, Dialect};

/// Whether to encrypt traffic (SMB 3.x only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EncryptionMode {
    /// Encrypt only when the server or share requires it.
    #[default]
    Auto,
    /// Always encrypt; fail when the server cannot.
    Required,
}

/// Connection settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed for TCP connect + NEGOTIATE.
    pub connect_timeout: Duration,
    /// Time allowed for each request (interim STATUS_PENDING replies extend it).
    pub request_timeout: Duration,
    /// Lowest dialect we accept.
    pub min_dialect: Dialect,
    /// Highest dialect we offer.
    pub max_dialect: Dialect,
    /// Sign every message even when the server does not require it.
    /// When false, messages are signed only if the server requires signing
    /// (the session setup is always protected as the protocol demands).
    pub sign: bool,
    /// Encryption policy.
    pub encryption: EncryptionMode,
    /// Credits we ask the server for (the window of 64 KiB units in flight).
    ///
    /// This also bounds the bytes of READ responses in flight on the
    /// connection, hence memory: the default 2048 is 128 MiB, about ten
    /// times the bandwidth-delay product of 1.2 GB/s at 10 ms RTT, so 16
    /// MaxReadSize (8 MiB) reads can be outstanding, and 32 concurrent jobs
    /// on one connection stay within ~256 MiB peak RSS (was 8192 = 512 MiB:
    /// 260 MiB RSS and 2.3 CPU-s/GB with 32 reads of 8 MiB queued, against
    /// 148 MiB and 0.9 CPU-s/GB at 2048; `examples/throughput.rs --window 32`).
    pub credit_target: u16,
    /// Upper bound on read/write sizes (the negotiated maximum is used when smaller).
    pub max_io_size: u32,
    /// How long we ask the server to keep a durable handle
    /// ([`OpenOptions::durable`](crate::OpenOptions::durable)) after the
    /// connection is lost; the server may choose less (Samba caps it at 300 s).
    pub durable_timeout: Duration,
    /// Most entries one directory listing may return before it fails with
    /// [`Error::Protocol`]: a server that never says STATUS_NO_MORE_FILES
    /// must not make a listing run forever and fill memory. A listing that
    /// repeats a batch it already returned fails at once.
    pub max_dir_entries: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            min_dialect: Dialect::SMB2_0_2,
            max_dialect: Dialect::SMB3_1_1,
            sign: false,
            encryption: EncryptionMode::Auto,
            credit_target: 2048,
            max_io_size: 8 * 1024 * 1024,
            durable_timeout: Duration::from_secs(60),
            max_dir_entries: 1_000_000,
        }
    }
}

/// What NEGOTIATE (and later SESSION_SETUP) settled on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NegotiatedInfo {
    /// The dialect in use.
    pub dialect: Dialect,
    /// MaxReadSize, capped by [`ClientConfig::max_io_size`].
    pub max_read_size: u32,
    /// MaxWriteSize, capped by [`ClientConfig::max_io_size`].
    pub max_write_size: u32,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// True when the server supports multi-credit requests (2.1+).
    pub large_mtu: bool,
    /// The server's SecurityMode says signing is required.
    pub server_requires_signing: bool,
    /// The cipher the server chose or implies (3.x), e.g. "AES-128-GCM";
    /// used only when a session or share encrypts.
    pub cipher: Option<&'static str>,
    /// The signing algorithm sessions use when they sign, e.g. "AES-128-GMAC".
    pub signing_algorithm: &'static str,
}

/// What became of open files after reconnects, for a summary
/// ([`Client::handle_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandleStats {
    /// Durable handles reclaimed on a new connection (CREATE with DH2C):
    /// the same open went on, with its lease and share mode.
    pub reclaimed: u64,
    /// Files opened again by path on a new connection: handles that were
    /// not durable, and durable handles the server no longer had.
    pub reopened: u64,
    /// Of `reopened`: durable handles whose reclaim the server refused.
    pub reclaim_failed: u64,
    /// Writes sent again with SMB2_FLAGS_REPLAY_OPERATION on a reclaimed
    /// handle (they were in flight when the connection went).
    pub replayed: u64,
    /// Lease breaks the server sent us (acknowledged when it asked).
    pub lease_breaks: u64,
    /// Of `lease_breaks`: acknowledgments sent (the server asked for them
    /// and holds the other client's open until one arrives).
    pub lease_acks: u64,
    /// Durable CREATEs whose connection went before the reply came, sent
    /// again on the new connection as a replay (the same CreateGuid and
    /// lease key, SMB2_FLAGS_REPLAY_OPERATION; MS-SMB2 3.3.5.9.10) and
    /// answered with an open: a server that keeps its replay cache across
    /// connections returns the open it made for the lost request, one that
    /// does not opens the file again under the same lease, so the new open
    /// never waits for the one nobody heard of.
    pub creates_replayed: u64,
}

/// The counters behind [`HandleStats`].
#[derive(Debug, Default)]
pub(crate) struct HandleCounters {
    pub(crate) reclaimed: AtomicU64,
    pub(crate) reopened: AtomicU64,
    pub(crate) reclaim_failed: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) lease_breaks: AtomicU64,
    pub(crate) lease_acks: AtomicU64,
    pub(crate) creates_replayed: AtomicU64,
}

impl HandleCounters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection to one server. Cheap to clone; all clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

/// Where to dial.
#[derive(Clone, Debug)]
enum Target {
    Host(String, u16),
    Addr(SocketAddr),
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) config: ClientConfig,
    target: Target,
    /// The server name used in UNC paths.
    pub(crate) server_name: String,
    /// Our ClientGuid: the same on every connection of this client (MS-SMB2
    /// 3.2.4.2.2.2), so a server can match a reconnect to its durable handles.
    pub(crate) client_guid: [u8; 16],
    slot: RwLock<Arc<Generation>>,
    /// Held by the one task that dials again.
    redial: tokio::sync::Mutex<()>,
    pub(crate) handles: HandleCounters,
    /// Open files holding a lease, by lease key: where a lease break goes.
    pub(crate) leases: Mutex<HashMap<[u8; 16], Weak<FileInner>>>,
    /// Durable CREATEs lost in flight, by share and path, until replayed
    /// or until the server has surely dropped what they may have opened.
    lost_creates: Mutex<HashMap<String, LostCreate>>,
}

/// Lost CREATEs remembered at most (each waits for one retry of its open;
/// a caller that never retries leaves one until it expires).
const LOST_CREATES_MAX: usize = 4096;

/// One negotiated connection of a [`Client`].
#[derive(Debug)]
pub(crate) struct Generation {
    /// Counts connections of this client from 1.
    pub(crate) number: u64,
    pub(crate) conn: Connection,
    pub(crate) negotiated: Negotiated,
    pub(crate) info: NegotiatedInfo,
    /// The connection's preauth integrity hash after NEGOTIATE (3.1.1 only).
    pub(crate) preauth: Option<PreauthHash>,
    /// What we sent in NEGOTIATE, for FSCTL_VALIDATE_NEGOTIATE_INFO.
    pub(crate) security_mode: u16,
    pub(crate) capabilities: u32,
    pub(crate) dialects: Vec<Dialect>,
    /// The server's socket address, when the OS reports it.
    pub(crate) peer: Option<SocketAddr>,
}

impl Client {
    /// Connects to `host:port` over direct TCP (TCP_NODELAY) and negotiates.
    pub async fn connect(host: &str, port: u16, config: ClientConfig) -> Result<Self> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Self::start(Target::Host(host.clone(), port), &host, config).await
    }

    /// Connects to a resolved address; `server_name` is used in UNC paths
    /// (`\\server_name\share`).
    pub async fn connect_addr(
        addr: SocketAddr,
        server_name: &str,
        config: ClientConfig,
    ) -> Result<Self> {
        Self::start(Target::Addr(addr), server_name, config).await
    }

    async fn start(target: Target, server_name: &str, config: ClientConfig) -> Result<Self> {
        let mut client_guid = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut client_guid);
        let first = dial(&target, &config, client_guid, 1).await?;
        let client = Self {
            inner: Arc::new(ClientInner {
                config,
                target,
                server_name: server_name.to_string(),
                client_guid,
                slot: RwLock::new(Arc::new(first)),
                redial: tokio::sync::Mutex::new(()),
                handles: HandleCounters::default(),
                leases: Mutex::new(HashMap::new()),
                lost_creates: Mutex::new(HashMap::new()),
            }),
        };
        client.watch_breaks(&client.generation());
        Ok(client)
    }

    /// Starts the task that handles the lease breaks of connection `gen`.
    fn watch_breaks(&self, gen: &Generation) {
        if let Some(rx) = gen.conn.take_breaks() {
            crate::lease::spawn_break_handler(Arc::downgrade(&self.inner), gen.number, rx);
        }
    }

    /// What became of open files after reconnects: durable handles
    /// reclaimed, files opened again by path, reclaims the server refused,
    /// writes replayed, lease breaks handled. Counts since the client was
    /// created.
    pub fn handle_stats(&self) -> HandleStats {
        let h = &self.inner.handles;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HandleStats {
            reclaimed: get(&h.reclaimed),
            reopened: get(&h.reopened),
            reclaim_failed: get(&h.reclaim_failed),
            replayed: get(&h.replayed),
            lease_breaks: get(&h.lease_breaks),
            lease_acks: get(&h.lease_acks),
            creates_replayed: get(&h.creates_replayed),
        }
    }

    /// The current connection.
    pub(crate) fn generation(&self) -> Arc<Generation> {
        Arc::clone(&self.inner.slot.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The number of the current connection: 1 for the first, one more
    /// after each successful [`Client::reconnect`].
    pub fn generation_number(&self) -> u64 {
        self.generation().number
    }

    /// Dials the server again and negotiates, unless another caller already
    /// did since connection number `seen` failed: one task dials, the others
    /// wait for it and share the result. Sessions, trees and open files
    /// re-establish themselves on their next use. Returns the new
    /// generation number. One attempt: the caller owns the backoff and the
    /// budget.
    pub async fn reconnect(&self, seen: u64) -> Result<u64> {
        let _one = self.inner.redial.lock().await;
        let current = self.generation();
        if current.number > seen && current.conn.check_alive().is_ok() {
            return Ok(current.number);
        }
        let i = &self.inner;
        let next = dial(&i.target, &i.config, i.client_guid, current.number + 1).await?;
        let number = next.number;
        tracing::debug!(generation = number, "reconnected");
        self.watch_breaks(&next);
        *i.slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(number)
    }

    /// True when `self` and `other` are handles to the same client (a
    /// server-side copy's resume key is valid only on its connection).
    pub fn same_connection(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The address this connection goes to (`None` if the OS did not say).
    /// A loopback peer means the "network" is a copy by the server's CPU,
    /// which changes what zero-copy sending is worth.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.generation().peer
    }

    /// The negotiated parameters of the current connection.
    pub fn negotiated(&self) -> NegotiatedInfo {
        self.generation().info.clone()
    }

    /// Authenticates with NTLMv2 inside SPNEGO and returns the session.
    pub async fn session_setup(&self, creds: &Credentials) -> Result<Session> {
        Session::setup(self.clone(), creds).await
    }

    /// Sends an ECHO outside any session and waits for the reply: unsigned,
    /// a liveness probe only. Once logged on use [`Session::echo`], which is
    /// signed (or encrypted) like the session's other requests.
    pub async fn echo(&self) -> Result<()> {
        let mut w = new_message();
        wsession::encode_empty(&mut w);
        let resp = self
            .generation()
            .call1(Outgoing::new(Command::ECHO, w, 0, 0), &Security::default())
            .await?;
        resp.check(&[])?;
        wsession::decode_empty(&resp.msg)?;
        Ok(())
    }

    /// Credits the server has granted and we have not yet spent.
    pub fn credits_available(&self) -> usize {
        self.generation().conn.credits_available()
    }

    /// Credits spent on requests still waiting for their final response.
    pub fn credits_in_flight(&self) -> usize {
        self.generation().conn.credits_outstanding()
    }

    /// The most request/response payload this connection keeps in flight:
    /// the credit target (after NEGOTIATE raised it to fit the largest
    /// request) times 64 KiB; 128 MiB by default. Reads beyond
    /// `max_bytes_in_flight() / max_read_size` at once only queue here, so a
    /// copier can size its read-ahead from this and from bandwidth x RTT.
    ///
    /// Measured with `examples/throughput.rs` on loopback Samba: 4 reads of
    /// MaxReadSize (8 MiB) in flight per large file keep the wire full at
    /// 0 ms; at +5 ms each way (10 ms RTT, ~12 MiB bandwidth-delay product)
    /// use at least 4-8. Each returned `Bytes` pins a pooled 8 MiB receive
    /// buffer until dropped: write it out and drop it promptly.
    pub fn max_bytes_in_flight(&self) -> u64 {
        self.generation().conn.credit_target() as u64 * 65536
    }

    /// Bytes (sent, received) on the current connection's socket so far,
    /// framing included.
    pub fn bytes_transferred(&self) -> (u64, u64) {
        self.generation().conn.bytes_transferred()
    }

    /// `Err(ConnectionLost)` once the current connection has failed.
    pub fn check_alive(&self) -> Result<()> {
        self.generation().conn.check_alive()
    }

    /// The configuration this client was created with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Routes breaks of lease `key` to `file`.
    pub(crate) fn remember_lease(&self, key: [u8; 16], file: Weak<FileInner>) {
        self.leases().insert(key, file);
    }

    /// Stops routing breaks of lease `key`.
    pub(crate) fn forget_lease(&self, key: &[u8; 16]) {
        self.leases().remove(key);
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Weak<FileInner>>> {
        self.inner.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a durable CREATE of `key` (share and path) whose
    /// connection went before its reply came: the next open of that path
    /// replays it.
    pub(crate) fn remember_lost_create(&self, key: String, lost: LostCreate) {
        let mut m = self.lost_creates();
        let now = Instant::now();
        m.retain(|_, l| l.until > now);
        if m.len() < LOST_CREATES_MAX || m.contains_key(&key) {
            m.insert(key, lost);
        }
    }

    /// The lost CREATE of `key`, if one is remembered and the server may
    /// still hold its open; forgotten from now on.
    pub(crate) fn take_lost_create(&self, key: &str) -> Option<LostCreate> {
        self.lost_creates()
            .remove(key)
            .filter(|l| l.until > Instant::now())
    }

    fn lost_creates(&self) -> std::sync::MutexGuard<'_, HashMap<String, LostCreate>> {
        self.inner
            .lost_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Generation {
    /// Sends one request and returns its response.
    pub(crate) async fn call1(
        &self,
        req: Outgoing,
        sec: &Security,
    ) -> Result<crate::conn::Response> {
        self.conn
            .call(vec![req], sec, None)
            .await?
            .pop()
            .ok_or_else(|| Error::Protocol("missing response".into()))
    }
}

/// Dials `target`, negotiates, and returns connection number `number`.
async fn dial(
    target: &Target,
    config: &ClientConfig,
    client_guid: [u8; 16],
    number: u64,
) -> Result<Generation> {
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, async move {
        let stream = match target {
            Target::Host(h, p) => TcpStream::connect((h.as_str(), *p)).await?,
            Target::Addr(a) => TcpStream::connect(a).await?,
        };
        negotiate(stream, config, client_guid, number).await
    })
    .await
    .map_err(|_| Error::Timeout(limit))?
}

async fn negotiate(
    stream: TcpStream,
    config: &ClientConfig,
    client_guid: [u8; 16],
    number: u64,
) -> Result<Generation> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr().ok();
    let dialects = proto::dialects(config.min_dialect, config.max_dialect);
    if dialects.is_empty() {
        return Err(Error::InvalidArgument(
            "no dialect between min_dialect and max_dialect".into(),
        ));
    }
    let conn = Connection::start(stream, config.credit_target, config.request_timeout);
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    let req = proto::negotiate_request(dialects.clone(), client_guid, salt, config.sign);
    let (security_mode, capabilities) = (req.security_mode, req.capabilities);
    let mut w = new_message();
    req.encode(&mut w);
    let mut sent = Vec::new();
    let mut hook = |b: &[u8]| sent = b.to_vec();
    let resp = conn
        .call(
            vec![Outgoing::new(Command::NEGOTIATE, w, 0, 0)],
            &Security::default(),
            Some(&mut hook),
        )
        .await?
        .pop()
        .ok_or_else(|| Error::Protocol("no NEGOTIATE response".into()))?;
    resp.check(&[])?;
    let neg = NegotiateResponse::decode(&resp.msg)?;
    let negotiated = proto::handle_negotiate_response(neg, &dialects)
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let preauth = (negotiated.dialect == Dialect::SMB3_1_1).then(|| {
        let mut h = PreauthHash::new();
        h.update(&sent);
        h.update(&resp.msg);
        h
    });
    if config.encryption == EncryptionMode::Required && negotiated.cipher.is_none() {
        return Err(Error::Security(format!(
            "encryption required but the server negotiated SMB {} without encryption",
            negotiated.dialect
        )));
    }
    conn.set_large_mtu(negotiated.large_mtu());
    if negotiated.dialect >= Dialect::SMB3_0 {
        // One more per connection of this client: requests after a
        // reconnect are newer than any before it (MS-SMB2 3.3.5.2.10).
        // Wraps after 65536 reconnects, which servers allow for.
        conn.set_channel_sequence((number.wrapping_sub(1) & 0xFFFF) as u16);
    }
    let io_cap = if negotiated.large_mtu() {
        config.max_io_size.max(65536)
    } else {
        65536
    };
    let info = NegotiatedInfo {
        dialect: negotiated.dialect,
        max_read_size: negotiated.max_read_size.min(io_cap),
        max_write_size: negotiated.max_write_size.min(io_cap),
        max_transact_size: negotiated.max_transact_size,
        large_mtu: negotiated.large_mtu(),
        server_requires_signing: negotiated.server_requires_signing(),
        cipher: negotiated.cipher.map(proto::cipher_name),
        signing_algorithm: proto::signing_name(negotiated.signing),
    };
    if info.large_mtu {
        // The largest single request must fit in the window, plus one
        // credit so small requests keep flowing beside it.
        let biggest = info
            .max_read_size
            .max(info.max_write_size)
            .max(info.max_transact_size.min(io_cap));
        conn.raise_credit_target(usize::from(proto::credit_charge(biggest as usize)) + 1);
    }
    tracing::debug!(dialect = %info.dialect, "negotiated");
    Ok(Generation {
        number,
        conn,
        negotiated,
        info,
        preauth,
        security_mode,
        capabilities,
        dialects,
        peer,
    })
}
