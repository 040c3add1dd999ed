//! A private, real Samba `smbd` for tests and benchmarks.
//!
//! Every test binary that calls [`Samba::get`] gets its own smbd per distinct
//! [`ServerConfig`]: its own temp directory for config, state, locks and logs,
//! listening only on 127.0.0.1 on a free port, with a test user and password.
//! The share directories are ordinary local directories, so a test can check
//! what a client wrote (or prepare what it reads) through the file system.
//!
//! smbd is stopped by PID: when the [`Samba`] value is dropped, and — for the
//! shared per-binary instances, which live in a `static` and are never dropped —
//! by a small watchdog process that waits for the test process to exit (also
//! when a test panics or the harness aborts) and then kills smbd.
//!
//! When `smbd` is not installed, [`Samba::get`] panics with the exact command to
//! install it: a test never skips silently.

pub mod dc;
pub mod fault;
pub use fault::FaultProxy;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The Unix and SMB user the fixture's shares are accessed as.
pub const USER: &str = "smbcptest";
/// The SMB password of [`USER`].
pub const PASSWORD: &str = "Test-Pa55word!";
/// Name of the read-write share.
pub const SHARE: &str = "share";
/// Name of the read-only share (same kind of directory, `read only = yes`).
pub const RO_SHARE: &str = "ro";
/// Name of a share that requires encryption (`smb encrypt = required` on the share).
pub const ENC_SHARE: &str = "enc";
/// Name of the share guests may use (`guest ok = yes`), present only with
/// [`ServerConfig::guest_share`].
pub const GUEST_SHARE: &str = "guest";

/// The highest protocol the server will negotiate (`server max protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MaxProtocol {
    /// SMB 2.0.2: no multi-credit requests, 64 KiB per request.
    Smb2_02,
    /// SMB 2.1.
    Smb2_10,
    /// SMB 3.0.
    Smb3_00,
    /// SMB 3.0.2.
    Smb3_02,
    /// SMB 3.1.1 (Samba's default maximum).
    #[default]
    Smb3_11,
}

impl MaxProtocol {
    fn conf_value(self) -> &'static str {
        match self {
            Self::Smb2_02 => "SMB2_02",
            Self::Smb2_10 => "SMB2_10",
            Self::Smb3_00 => "SMB3_00",
            Self::Smb3_02 => "SMB3_02",
            Self::Smb3_11 => "SMB3_11",
        }
    }
}

/// A variant of the server configuration. Each distinct value gets its own smbd.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ServerConfig {
    /// `server max protocol`.
    pub max_protocol: MaxProtocol,
    /// `server signing = mandatory` (otherwise `auto`).
    pub signing_mandatory: bool,
    /// `smb encrypt = required` globally (the [`ENC_SHARE`] share always requires it).
    pub encrypt_required: bool,
    /// `server smb3 encryption algorithms`, e.g.
    /// `"AES-256-GCM"` to make the server prefer one cipher.
    pub encryption_algorithms: Option<&'static str>,
    /// `server smb3 signing algorithms`, e.g. `"AES-128-CMAC"`.
    pub signing_algorithms: Option<&'static str>,
    /// Durable handles: `Some(true)` spells out what Samba needs to grant
    /// them (`durable handles = yes`, `smb2 leases = yes`, and kernel
    /// oplocks, kernel share modes and POSIX locking off, which the fixture
    /// always has); `Some(false)` is `durable handles = no`; `None` leaves
    /// Samba's defaults (which grant them with this fixture's settings).
    pub durable_handles: Option<bool>,
    /// Extra raw `[global]` lines (they override the fixture's own, e.g.
    /// `"smb2 max trans = 65536"`).
    pub extra_global: Vec<&'static str>,
    /// Extra raw lines of the [`SHARE`] section, e.g. `"veto files = /*.tmp/"`.
    pub share_options: Vec<&'static str>,
    /// Adds the [`GUEST_SHARE`] share (`guest ok = yes`, files owned by [`USER`]).
    pub guest_share: bool,
}

impl ServerConfig {
    /// The default configuration: SMB 3.1.1, signing auto, encryption off
    /// (except on [`ENC_SHARE`]).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `server max protocol`.
    pub fn max_protocol(mut self, p: MaxProtocol) -> Self {
        self.max_protocol = p;
        self
    }
    /// Sets `server signing = mandatory`.
    pub fn signing_mandatory(mut self) -> Self {
        self.signing_mandatory = true;
        self
    }
    /// Sets `smb encrypt = required` for the whole server.
    pub fn encrypt_required(mut self) -> Self {
        self.encrypt_required = true;
        self
    }
    /// Restricts the server's encryption ciphers (Samba's names, e.g. `"AES-128-CCM"`).
    pub fn encryption_algorithms(mut self, algs: &'static str) -> Self {
        self.encryption_algorithms = Some(algs);
        self
    }
    /// Adds a raw `[global]` line (later lines override earlier ones).
    /// Adds the [`GUEST_SHARE`] share, open to guest and anonymous logons.
    pub fn guest_share(mut self) -> Self {
        self.guest_share = true;
        self
    }
    /// Adds a raw `[global]` line (a later line overrides an earlier
    /// default, e.g. `"map to guest = Bad Password"`).
    pub fn global(mut self, line: &'static str) -> Self {
        self.extra_global.push(line);
        self
    }
    /// Adds a raw line to the [`SHARE`] section.
    pub fn share_option(mut self, line: &'static str) -> Self {
        self.share_options.push(line);
        self
    }
    /// Restricts the server's signing algorithms (e.g. `"HMAC-SHA256"`).
    pub fn signing_algorithms(mut self, algs: &'static str) -> Self {
        self.signing_algorithms = Some(algs);
        self
    }
    /// Grants durable handles with leases, settings spelled out (see
    /// [`ServerConfig::durable_handles`]).
    pub fn durable_handles(mut self) -> Self {
        self.durable_handles = Some(true);
        self
    }
    /// `durable handles = no`: a server that never keeps an open across a
    /// disconnect (leases stay on).
    pub fn no_durable_handles(mut self) -> Self {
        self.durable_handles = Some(false);
        self
    }
}

/// A running private smbd.
#[derive(Debug)]
pub struct Samba {
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
    watchdog: Mutex<Option<Child>>,
    _temp: tempfile::TempDir,
}

static SERVERS: OnceLock<Mutex<HashMap<ServerConfig, &'static Samba>>> = OnceLock::new();
static UNIQUE: AtomicU64 = AtomicU64::new(0);

impl Samba {
    /// The shared server with the default configuration for this test binary.
    pub fn shared() -> &'static Self {
        Self::get(&ServerConfig::default())
    }

    /// The shared server for `config` in this test binary, started on first use.
    /// Panics (with what to install or the smbd log) when smbd cannot start.
    pub fn get(config: &ServerConfig) -> &'static Self {
        let map = SERVERS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(config) {
            return s;
        }
        let server = Self::start(config).unwrap_or_else(|e| panic!("{e}"));
        let leaked: &'static Self = Box::leak(Box::new(server));
        map.insert(config.clone(), leaked);
        leaked
    }

    /// Starts a new smbd for `config`; it stops when the value is dropped or the
    /// test process exits.
    pub fn start(config: &ServerConfig) -> Result<Self, String> {
        let smbd = find_smbd().ok_or_else(|| {
            "smbd is not installed: run `apt-get install -y samba smbclient` (Debian/Ubuntu) \
             and try again"
                .to_string()
        })?;
        ensure_user()?;
        let temp = tempfile::Builder::new()
            .prefix("smbcp-samba-")
            .tempdir()
            .map_err(|e| format!("creating the fixture's temp dir: {e}"))?;
        let dir = temp.path().to_path_buf();
        // smbd runs the share's file access as USER: every parent must be traversable.
        make_traversable(&dir);
        for d in ["private", "lock", "state", "cache", "pid", "log", "ncalrpc"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| format!("creating {d}: {e}"))?;
        }
        fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        for share in [SHARE, RO_SHARE, ENC_SHARE, GUEST_SHARE] {
            let p = dir.join("shares").join(share);
            fs::create_dir_all(&p).map_err(|e| format!("creating share dir: {e}"))?;
            chown_to_user(&p)?;
        }
        fs::set_permissions(dir.join("shares"), fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;

        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port().map_err(|e| format!("finding a free port: {e}"))?;
            let conf = write_conf(&dir, port, config)?;
            set_password(&conf)?;
            let log = fs::File::create(dir.join("log/smbd.stdout")).map_err(|e| e.to_string())?;
            let child = Command::new(&smbd)
                .arg("--foreground")
                .arg("--no-process-group")
                .arg("-s")
                .arg(&conf)
                // Its own process group: smbd signals its whole group when it
                // exits, which must not reach the test harness.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", smbd.display()))?;
            let mut child = child;
            match wait_ready(&mut child, port, &dir, Duration::from_secs(30)) {
                Ok(()) => {
                    let watchdog = spawn_watchdog(child.id(), &dir).ok();
                    return Ok(Self {
                        dir,
                        port,
                        child: Mutex::new(Some(child)),
                        watchdog: Mutex::new(watchdog),
                        _temp: temp,
                    });
                }
                Err(e) => {
                    last_err = e;
                    kill_tree(child.id());
                    let _ = child.wait();
                }
            }
        }
        Err(format!("smbd did not start: {last_err}"))
    }

    /// The last lines of smbd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir)
    }

    /// Stops smbd (and its per-connection children) by PID.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
        if let Some(mut w) = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// Kills (SIGKILL) every per-connection smbd process of this server, as
    /// a crash of the process serving a client would; the listening smbd
    /// and its helpers (notifyd, cleanupd) stay. Returns how many were killed.
    pub fn kill_connections(&self) -> usize {
        let Some(pid) = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Child::id)
        else {
            return 0;
        };
        let children = children(pid);
        let mut killed = 0;
        for c in children {
            // Connection processes keep the name "smbd"; helpers rename themselves.
            let comm = fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
            if comm.trim() == "smbd"
                && Command::new("kill")
                    .arg("-KILL")
                    .arg(c.to_string())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                killed += 1;
            }
        }
        killed
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The local directory behind share `name` ([`SHARE`], [`RO_SHARE`], [`ENC_SHARE`]).
    pub fn share_path(&self, name: &str) -> PathBuf {
        self.dir.join("shares").join(name)
    }

    /// The fixture's state directory (config, logs).
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the generated smb.conf.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.join("smb.conf")
    }

    /// Creates a fresh, empty directory `<prefix>-<n>` inside share `share`,
    /// owned by the share user, and returns its name relative to the share
    /// root and its local path. Each test uses its own so tests can run in parallel.
    pub fn unique_dir(&self, share: &str, prefix: &str) -> (String, PathBuf) {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let path = self.share_path(share).join(&name);
        fs::create_dir_all(&path).expect("creating a test directory in the share");
        chown_to_user(&path).expect("chown test directory");
        (name, path)
    }

    /// `//127.0.0.1/<share>/<rel>` with the port as a URL: `smb://127.0.0.1:PORT/share/rel`.
    pub fn url(&self, share: &str, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            format!("smb://{}:{}/{share}", self.host(), self.port)
        } else {
            format!("smb://{}:{}/{share}/{rel}", self.host(), self.port)
        }
    }

    /// Sends a minimal SMB2 NEGOTIATE (dialects 2.0.2 and 2.1) and returns the
    /// raw response frame (without the 4-byte transport header). Used to check
    /// that the fixture really speaks SMB2, independently of smb-core.
    pub fn raw_negotiate(&self) -> io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(10))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut msg = Vec::with_capacity(128);
        // SMB2 header (MS-SMB2 2.2.1.2): ProtocolId, StructureSize 64, CreditCharge 0,
        // Status 0, Command NEGOTIATE (0), CreditRequest 1, Flags 0, NextCommand 0,
        // MessageId 0, Reserved, TreeId 0, SessionId 0, Signature 0.
        msg.extend_from_slice(b"\xfeSMB");
        msg.extend_from_slice(&64u16.to_le_bytes());
        msg.extend_from_slice(&[0; 2]); // credit charge
        msg.extend_from_slice(&[0; 4]); // status
        msg.extend_from_slice(&0u16.to_le_bytes()); // command
        msg.extend_from_slice(&1u16.to_le_bytes()); // credits
        msg.extend_from_slice(&[0; 4]); // flags
        msg.extend_from_slice(&[0; 4]); // next command
        msg.extend_from_slice(&[0; 8]); // message id
        msg.extend_from_slice(&[0; 4]); // reserved
        msg.extend_from_slice(&[0; 4]); // tree id
        msg.extend_from_slice(&[0; 8]); // session id
        msg.extend_from_slice(&[0; 16]); // signature
                                         // NEGOTIATE request (MS-SMB2 2.2.3): StructureSize 36, DialectCount 2,
                                         // SecurityMode signing enabled, Capabilities 0, ClientGuid, ClientStartTime 0.
        msg.extend_from_slice(&36u16.to_le_bytes());
        msg.extend_from_slice(&2u16.to_le_bytes());
        msg.extend_from_slice(&1u16.to_le_bytes());
        msg.extend_from_slice(&[0; 2]);
        msg.extend_from_slice(&[0; 4]);
        msg.extend_from_slice(&[0x5a; 16]);
        msg.extend_from_slice(&[0; 8]);
        msg.extend_from_slice(&0x0202u16.to_le_bytes());
        msg.extend_from_slice(&0x0210u16.to_le_bytes());
        let len = u32::try_from(msg.len()).expect("small message");
        s.write_all(&len.to_be_bytes())?;
        s.write_all(&msg)?;
        let mut hdr = [0u8; 4];
        s.read_exact(&mut hdr)?;
        let n = u32::from_be_bytes(hdr) as usize & 0x00ff_ffff;
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf)?;
        Ok(buf)
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for f in ["log/smbd.log", "log/smbd.stdout"] {
        if let Ok(text) = fs::read_to_string(dir.join(f)) {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(30);
            let _ = writeln!(out, "--- {f}");
            for l in &lines[from..] {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    out
}

fn wait_ready(child: &mut Child, port: u16, dir: &Path, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "smbd exited with {status}; log:\n{}",
                log_tail(dir)
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "smbd not listening after {limit:?}; log:\n{}",
                log_tail(dir)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_smbd() -> Option<PathBuf> {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let p = dir.join("smbd");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

fn make_traversable(dir: &Path) {
    let mut p = dir.to_path_buf();
    loop {
        if let Ok(meta) = fs::metadata(&p) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o001));
            }
        }
        if !p.pop() || p.as_os_str().is_empty() || p == Path::new("/") {
            break;
        }
    }
}

static USER_LOCK: Mutex<()> = Mutex::new(());

fn ensure_user() -> Result<(), String> {
    let _guard = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if Command::new("id")
        .arg("-u")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        return Ok(());
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ])
        .output()
        .map_err(|e| format!("running useradd (the fixture needs root to add user {USER}): {e}"))?;
    // Exit 9: the user was created meanwhile by a parallel test binary.
    if out.status.success() || out.status.code() == Some(9) {
        Ok(())
    } else {
        Err(format!(
            "useradd {USER} failed (the fixture needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Gives `path` to the share user so smbd (running file access as that user) can write.
pub fn chown_to_user(path: &Path) -> Result<(), String> {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(path)
        .output()
        .map_err(|e| format!("chown: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "chown {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write_conf(dir: &Path, port: u16, c: &ServerConfig) -> Result<PathBuf, String> {
    let d = dir.display();
    let mut g = String::new();
    let _ = writeln!(g, "[global]");
    for line in [
        "workgroup = WORKGROUP".to_string(),
        "netbios name = SMBCPTEST".into(),
        "server role = standalone server".into(),
        "security = user".into(),
        "map to guest = never".into(),
        format!("passdb backend = tdbsam:{d}/private/passdb.tdb"),
        format!("private dir = {d}/private"),
        format!("lock directory = {d}/lock"),
        format!("state directory = {d}/state"),
        format!("cache directory = {d}/cache"),
        format!("pid directory = {d}/pid"),
        format!("ncalrpc dir = {d}/ncalrpc"),
        // A private (absent) winbindd socket: with winbind installed, smbd
        // would ask any winbindd on the default socket (another test's
        // AD DC, say) to map our user's SID, get a uid it cannot resolve,
        // and fail every logon with STATUS_LOGON_FAILURE.
        format!("winbindd socket directory = {d}/winbindd"),
        format!("log file = {d}/log/smbd.log"),
        "max log size = 0".into(),
        "log level = 1".into(),
        "usershare max shares = 0".into(),
        "interfaces = 127.0.0.1".into(),
        "bind interfaces only = yes".into(),
        format!("smb ports = {port}"),
        "disable netbios = yes".into(),
        "server min protocol = SMB2_02".into(),
        format!("server max protocol = {}", c.max_protocol.conf_value()),
        format!(
            "server signing = {}",
            if c.signing_mandatory {
                "mandatory"
            } else {
                "auto"
            }
        ),
        format!(
            "smb encrypt = {}",
            if c.encrypt_required {
                "required"
            } else {
                "auto"
            }
        ),
        "load printers = no".into(),
        "printing = bsd".into(),
        "printcap name = /dev/null".into(),
        "disable spoolss = yes".into(),
        "use sendfile = yes".into(),
        "aio read size = 1".into(),
        "aio write size = 1".into(),
        "smb2 max read = 8388608".into(),
        "smb2 max write = 8388608".into(),
        "smb2 max trans = 8388608".into(),
        "smb2 max credits = 8192".into(),
        "kernel oplocks = no".into(),
        "kernel share modes = no".into(),
        "posix locking = no".into(),
        "deadtime = 0".into(),
        "create mask = 0644".into(),
        "directory mask = 0755".into(),
    ] {
        let _ = writeln!(g, "   {line}");
    }
    if let Some(a) = c.encryption_algorithms {
        let _ = writeln!(g, "   server smb3 encryption algorithms = {a}");
    }
    if let Some(a) = c.signing_algorithms {
        let _ = writeln!(g, "   server smb3 signing algorithms = {a}");
    }
    match c.durable_handles {
        Some(true) => {
            for l in [
                "durable handles = yes",
                "smb2 leases = yes",
                "kernel oplocks = no",
                "kernel share modes = no",
                "posix locking = no",
            ] {
                let _ = writeln!(g, "   {l}");
            }
        }
        Some(false) => {
            let _ = writeln!(g, "   durable handles = no");
        }
        None => {}
    }
    for l in &c.extra_global {
        let _ = writeln!(g, "   {l}");
    }
    let share = |name: &str, extra: &str| {
        format!(
            "\n[{name}]\n   path = {d}/shares/{name}\n   browseable = yes\n   valid users = {USER}\n   force user = {USER}\n{extra}"
        )
    };
    let mut rw = String::from("   read only = no\n");
    for l in &c.share_options {
        let _ = writeln!(rw, "   {l}");
    }
    g.push_str(&share(SHARE, &rw));
    g.push_str(&share(RO_SHARE, "   read only = yes\n"));
    g.push_str(&share(
        ENC_SHARE,
        "   read only = no\n   smb encrypt = required\n",
    ));
    if c.guest_share {
        let _ = write!(
            g,
            "\n[{GUEST_SHARE}]\n   path = {d}/shares/{GUEST_SHARE}\n   guest ok = yes\n   read only = no\n   force user = {USER}\n"
        );
    }
    let conf = dir.join("smb.conf");
    fs::write(&conf, g).map_err(|e| format!("writing smb.conf: {e}"))?;
    Ok(conf)
}

fn set_password(conf: &Path) -> Result<(), String> {
    let mut child = Command::new("smbpasswd")
        .arg("-c")
        .arg(conf)
        .args(["-a", "-s", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running smbpasswd: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "smbpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A shell process that waits for this test process to exit, then kills smbd
/// and its children and removes the fixture's temp dir (config, state and the
/// shares' data). It covers the shared instances, which are never dropped.
fn spawn_watchdog(smbd_pid: u32, dir: &Path) -> io::Result<Child> {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         for c in $(cat /proc/{smbd_pid}/task/*/children 2>/dev/null); do kill -TERM $c 2>/dev/null; done; \
         kill -TERM {smbd_pid} 2>/dev/null; sleep 2; kill -KILL {smbd_pid} 2>/dev/null; \
         rm -rf -- \"$1\"; exit 0"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("smbcp-fixture-watchdog")
        .arg(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// The direct children of process `pid` (from /proc, over all its threads).
fn children(pid: u32) -> Vec<u32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|x| x.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn kill_tree(pid: u32) {
    let children = children(pid);
    for c in children.iter().chain(std::iter::once(&pid)) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.to_string())
            .stderr(Stdio::null())
            .status();
    }
}
