//! A private Samba Active Directory domain controller on loopback, for the
//! Kerberos tests: realm [`REALM`], its KDC and its smbd on 127.0.0.1 on
//! free ports, a domain user [`KUSER`], a keytab for that user, a file
//! share [`SHARE`] and one that requires encryption ([`ENC_SHARE`]), and a
//! `krb5.conf` of its own for `KRB5_CONFIG`.
//!
//! Provisioning (`samba-tool domain provision`) takes seconds, so
//! [`Dc::shared`] does it once per test binary. Everything lives in one
//! temp directory (private, lock, state, cache, pid, log, ncalrpc dirs).
//!
//! The trap: an AD DC's smbd maps users through its winbindd, and Samba's
//! clients find winbindd only at the compiled-in socket directory
//! (`/run/samba/winbindd`; the `winbindd socket directory` option moves
//! where winbindd listens, not where smbd looks). A DC winbindd there would
//! answer every other smbd on the machine (the standalone fixture's logons
//! then fail with STATUS_LOGON_FAILURE). So the DC runs in a mount
//! namespace of its own (`unshare --mount`) where its private socket
//! directory is bind-mounted over `/run/samba/winbindd`: its smbd finds its
//! winbindd, and nothing outside sees it.
//!
//! When the DC cannot be provisioned or started, [`Dc::shared`] panics with
//! the reason and the install command: a Kerberos test never passes
//! without a domain.

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{free_port, make_traversable, UNIQUE};

/// The domain's Kerberos realm.
pub const REALM: &str = "SMBCP.TEST";
/// The domain's NetBIOS name.
pub const DOMAIN: &str = "SMBCP";
/// The DC's DNS name (its `cifs/` service principal).
pub const DC_HOST: &str = "dc1.smbcp.test";
/// The domain user the tests log on as.
pub const KUSER: &str = "kuser";
/// Its password.
pub const KPASSWORD: &str = "Kuser-Pa55word!";
/// A domain user whose keytab key is stale (the password changed after export).
pub const STALE_USER: &str = "kstale";
/// The read-write file share.
pub const SHARE: &str = "share";
/// A share with `smb encrypt = required`.
pub const ENC_SHARE: &str = "enc";

const ADMIN_PASSWORD: &str = "Adm1n-Pa55word!";

/// A running domain controller. See the module documentation.
pub struct Dc {
    dir: PathBuf,
    smb_port: u16,
    kdc_port: u16,
    child: Mutex<Option<Child>>,
    watchdog: Mutex<Option<Child>>,
    _temp: tempfile::TempDir,
}

impl std::fmt::Debug for Dc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dc")
            .field("dir", &self.dir)
            .field("smb_port", &self.smb_port)
            .field("kdc_port", &self.kdc_port)
            .finish_non_exhaustive()
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const INSTALL: &str = "run scripts/install-deps (apt-get install -y samba-ad-dc krb5-user winbind)";

impl Dc {
    /// The domain controller of this test binary, provisioned and started
    /// on first use. Panics with the reason when that fails.
    pub fn shared() -> &'static Self {
        // The outcome is kept, failure too: one provisioning attempt per binary.
        static DC: OnceLock<Result<Dc, String>> = OnceLock::new();
        match DC.get_or_init(Self::start) {
            Ok(dc) => dc,
            Err(e) => panic!("the Samba AD DC fixture: {e}"),
        }
    }

    /// Provisions and starts a new domain controller.
    pub fn start() -> Result<Self, String> {
        let samba = which("samba").ok_or_else(|| format!("`samba` is not installed: {INSTALL}"))?;
        let tool = which("samba-tool")
            .ok_or_else(|| format!("`samba-tool` is not installed: {INSTALL}"))?;
        for t in ["kinit", "unshare", "winbindd"] {
            which(t).ok_or_else(|| format!("`{t}` is not installed: {INSTALL}"))?;
        }
        let temp = tempfile::Builder::new()
            .prefix("smbcp-dc-")
            .tempdir()
            .map_err(|e| format!("creating the temp dir: {e}"))?;
        let dir = temp.path().to_path_buf();
        make_traversable(&dir);
        for d in ["pid", "log", "ncalrpc", "wb", "cores"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| format!("creating {d}: {e}"))?;
        }
        for s in [SHARE, ENC_SHARE] {
            let p = dir.join("shares").join(s);
            fs::create_dir_all(&p).map_err(|e| format!("creating share {s}: {e}"))?;
            // Domain users map to idmap uids nobody can name in advance.
            fs::set_permissions(&p, fs::Permissions::from_mode(0o1777))
                .map_err(|e| e.to_string())?;
        }
        // The mount point for the namespace's winbindd socket directory.
        fs::create_dir_all("/run/samba/winbindd")
            .map_err(|e| format!("creating /run/samba/winbindd (needs root): {e}"))?;

        let smb_port = free_port().map_err(|e| e.to_string())?;
        let kdc_port = free_port().map_err(|e| e.to_string())?;
        let kpasswd_port = free_port().map_err(|e| e.to_string())?;
        let d = dir.display();
        let prov = dir.join("prov");
        run(
            Command::new(&tool)
                .args(["domain", "provision"])
                .arg(format!("--realm={REALM}"))
                .arg(format!("--domain={DOMAIN}"))
                .args(["--server-role=dc", "--dns-backend=NONE", "--use-rfc2307"])
                .arg(format!("--adminpass={ADMIN_PASSWORD}"))
                .args(["--host-ip=127.0.0.1", "--host-name=dc1"])
                .arg(format!("--targetdir={}", prov.display()))
                .arg("--option=interfaces = 127.0.0.1")
                .arg("--option=bind interfaces only = yes")
                .arg(format!("--option=winbindd socket directory = {d}/wb"))
                .arg(format!("--option=smb ports = {smb_port}"))
                .arg(format!("--option=krb5 port = {kdc_port}"))
                .arg(format!("--option=kpasswd port = {kpasswd_port}")),
            "samba-tool domain provision",
        )?;
        let conf = dir.join("smb.conf");
        let provisioned = fs::read_to_string(prov.join("etc/smb.conf"))
            .map_err(|e| format!("reading the provisioned smb.conf: {e}"))?;
        let body = provisioned
            .find("[global]")
            .map_or(0, |i| i + "[global]".len());
        let global_end = provisioned[body..]
            .find("\n[")
            .map_or(provisioned.len(), |i| body + i);
        let mut text = String::new();
        for line in provisioned[..global_end].lines() {
            let key = line.trim().split('=').next().unwrap_or("").trim();
            if matches!(key, "server services" | "log file" | "logging") {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!(
            "\tserver services = s3fs, kdc, winbindd\n\
             \tpid directory = {d}/pid\n\tncalrpc dir = {d}/ncalrpc\n\
             \tlog file = {d}/log/log.%m\n\tlogging = file\n\tlog level = 1\n\
             \tload printers = no\n\tprintcap name = /dev/null\n\tdisable spoolss = yes\n\
             \tdisable netbios = yes\n\tpanic action = /bin/true\n\
             [{SHARE}]\n\tpath = {d}/shares/{SHARE}\n\tread only = no\n\
             [{ENC_SHARE}]\n\tpath = {d}/shares/{ENC_SHARE}\n\tread only = no\n\tsmb encrypt = required\n"
        ));
        fs::write(&conf, text).map_err(|e| e.to_string())?;
        let c = conf.display().to_string();
        run(
            Command::new(&tool).args([
                "domain",
                "passwordsettings",
                "set",
                "--max-pwd-age=0",
                "--complexity=off",
                "-s",
                &c,
            ]),
            "samba-tool domain passwordsettings",
        )?;
        for (user, pw) in [(KUSER, KPASSWORD), (STALE_USER, KPASSWORD)] {
            run(
                Command::new(&tool).args(["user", "create", user, pw, "-s", &c]),
                "samba-tool user create",
            )?;
        }
        // The SPN of the address the tests dial, so `cifs/127.0.0.1` works
        // without --spn (as Windows allows IP-address SPNs).
        run(
            Command::new(&tool).args(["spn", "add", "cifs/127.0.0.1", "DC1$", "-s", &c]),
            "samba-tool spn add",
        )?;
        for (user, file) in [(KUSER, "kuser.keytab"), (STALE_USER, "kstale.keytab")] {
            run(
                Command::new(&tool)
                    .args(["domain", "exportkeytab"])
                    .arg(dir.join(file))
                    .arg(format!("--principal={user}@{REALM}"))
                    .args(["-s", &c]),
                "samba-tool domain exportkeytab",
            )?;
        }
        // The stale user's password changes after its keytab was taken.
        run(
            Command::new(&tool).args([
                "user",
                "setpassword",
                STALE_USER,
                "--newpassword=Changed-Pa55word!",
                "-s",
                &c,
            ]),
            "samba-tool user setpassword",
        )?;
        fs::write(
            dir.join("krb5.conf"),
            format!(
                "[libdefaults]\n\tdefault_realm = {REALM}\n\tdns_lookup_realm = false\n\
                 \tdns_lookup_kdc = false\n\tdns_canonicalize_hostname = false\n\trdns = false\n\
                 \tudp_preference_limit = 0\n\n\
                 [realms]\n\t{REALM} = {{\n\t\tkdc = 127.0.0.1:{kdc_port}\n\t}}\n\n\
                 [domain_realm]\n\t.smbcp.test = {REALM}\n\tsmbcp.test = {REALM}\n\t127.0.0.1 = {REALM}\n"
            ),
        )
        .map_err(|e| e.to_string())?;

        let log = fs::File::create(dir.join("log/samba.stdout")).map_err(|e| e.to_string())?;
        let script = format!(
            "mount --bind {d}/wb /run/samba/winbindd || exit 97; exec {} --foreground --no-process-group -s {c}",
            samba.display()
        );
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting samba: {e}"))?;
        let dc = Self {
            dir: dir.clone(),
            smb_port,
            kdc_port,
            child: Mutex::new(None),
            watchdog: Mutex::new(None),
            _temp: temp,
        };
        let ready = dc.wait_ready(&mut child);
        let pid = child.id();
        *dc.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        if let Err(e) = ready {
            dc.stop();
            return Err(e);
        }
        *dc.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = spawn_watchdog(pid, &dir).ok();
        Ok(dc)
    }

    /// Waits for smbd and the KDC to listen and for a Kerberos logon to
    /// work end to end (winbindd comes up last).
    fn wait_ready(&self, child: &mut Child) -> Result<(), String> {
        let start = Instant::now();
        let limit = Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "samba exited with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            let up = [self.smb_port, self.kdc_port].iter().all(|p| {
                TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, *p)),
                    Duration::from_millis(200),
                )
                .is_ok()
            });
            if up && self.ping_winbindd() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "samba not ready after {limit:?}; log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// True once a domain user can list the share (smbclient, NTLM):
    /// winbindd, which maps the user, comes up last.
    fn ping_winbindd(&self) -> bool {
        Command::new("smbclient")
            .arg(format!("//127.0.0.1/{SHARE}"))
            .args(["-p", &self.smb_port.to_string()])
            .arg(format!("-U{DOMAIN}\\{KUSER}%{KPASSWORD}"))
            .args(["--use-kerberos=disabled", "-c", "ls"])
            .env("KRB5_CONFIG", self.krb5_conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The last lines of the DC's logs.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for f in [
            "samba.stdout",
            "log.samba",
            "log.smbd",
            "log.winbindd",
            "log.127.0.0.1",
        ] {
            if let Ok(t) = fs::read_to_string(self.dir.join("log").join(f)) {
                let lines: Vec<&str> = t.lines().collect();
                let from = lines.len().saturating_sub(20);
                out.push_str(&format!("--- {f}\n{}\n", lines[from..].join("\n")));
            }
        }
        out
    }

    /// Stops samba and every process under it.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            kill_all(child.id(), &self.dir);
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

    /// The SMB port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.smb_port
    }

    /// The KDC's port on 127.0.0.1.
    pub fn kdc_port(&self) -> u16 {
        self.kdc_port
    }

    /// The address to dial.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The `krb5.conf` for `KRB5_CONFIG`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// A keytab with [`KUSER`]'s keys.
    pub fn keytab(&self) -> PathBuf {
        self.dir.join("kuser.keytab")
    }

    /// A keytab for [`STALE_USER`] whose keys no longer match.
    pub fn stale_keytab(&self) -> PathBuf {
        self.dir.join("kstale.keytab")
    }

    /// The local directory of share `name`.
    pub fn share_path(&self, name: &str) -> PathBuf {
        self.dir.join("shares").join(name)
    }

    /// A fresh directory in share `share` that anyone may write: (path
    /// relative to the share, local path).
    pub fn unique_dir(&self, share: &str, prefix: &str) -> (String, PathBuf) {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let rel = format!("{prefix}-{}-{n}", std::process::id());
        let p = self.share_path(share).join(&rel);
        fs::create_dir_all(&p).expect("creating a test dir in the DC share");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).expect("chmod");
        (rel, p)
    }

    /// `smb://127.0.0.1:PORT/share/rel`.
    pub fn url(&self, share: &str, rel: &str) -> String {
        format!("smb://127.0.0.1:{}/{share}/{rel}", self.smb_port)
    }

    /// A new private credential cache holding a ticket for [`KUSER`]
    /// (`kinit` with the password), valid for `lifetime` (e.g. "1h", "5s").
    pub fn kinit(&self, ccache: &Path, lifetime: &str) -> Result<(), String> {
        let mut child = Command::new("kinit")
            .arg("-l")
            .arg(lifetime)
            .arg(format!("{KUSER}@{REALM}"))
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running kinit: {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            let _ = writeln!(i, "{KPASSWORD}");
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "kinit failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

impl Drop for Dc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every descendant of `pid` (depth first), from /proc.
fn descendants(pid: u32, out: &mut Vec<u32>) {
    for c in super::children(pid) {
        descendants(c, out);
        out.push(c);
    }
}

/// Processes started with this DC's smb.conf that left the tree (smbd
/// starts samba-dcerpcd as a daemon of its own).
fn by_conf(dir: &Path) -> Vec<u32> {
    let needle = format!("{}/smb.conf", dir.display());
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

fn kill_all(pid: u32, dir: &Path) {
    let mut all = Vec::new();
    descendants(pid, &mut all);
    all.push(pid);
    all.extend(by_conf(dir));
    for p in &all {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(p.to_string())
            .stderr(Stdio::null())
            .status();
    }
    std::thread::sleep(Duration::from_millis(300));
    for p in &all {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// Stops the DC's whole process tree when the test process exits (the
/// shared DC lives in a `static` and is never dropped).
fn spawn_watchdog(pid: u32, dir: &Path) -> std::io::Result<Child> {
    let me = std::process::id();
    let script = format!(
        "tree() {{ for c in $(cat /proc/$1/task/*/children 2>/dev/null); do tree $c; done; echo $1; }}; \
         while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         all=$(tree {pid}); kill -TERM $all 2>/dev/null; sleep 2; kill -KILL $all 2>/dev/null; \
         for p in /proc/[0-9]*; do grep -qF \"$1/smb.conf\" $p/cmdline 2>/dev/null && kill -KILL ${{p#/proc/}}; done; \
         rm -rf -- \"$1\"; exit 0"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("smbcp-dc-watchdog")
        .arg(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}
