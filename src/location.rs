//! Where files live: a local path or a directory on an SMB share.
//!
//! Three SMB spellings are accepted: `\\server\share\dir`, `//server/share/dir`
//! and `smb://[domain;user@]server[:port]/share/dir` (percent-encoding allowed
//! in the URL form). Anything else is a local path.
//!
//! A password is never accepted in a location (`smb://u:pw@…`, `//u:pw@…`,
//! `\\u:pw@…`), and no error shows one: messages quote the argument through
//! [`redacted`]. The share names `.` and `..` are refused.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

/// The default SMB port (direct TCP).
pub const SMB_PORT: u16 = 445;

/// A source or destination directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A directory on an SMB share.
    Smb(SmbLocation),
}

/// A directory on an SMB share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmbLocation {
    /// Host name or IP address (IPv6 without brackets).
    pub server: String,
    /// TCP port.
    pub port: u16,
    /// Share name.
    pub share: String,
    /// Directory inside the share, `\`-separated, no leading or trailing separator; empty for the root.
    pub path: String,
    /// User from the URL, if any.
    pub user: Option<String>,
    /// Domain from the URL, if any.
    pub domain: Option<String>,
}

impl Location {
    /// A name for this location that stays the same from run to run and
    /// from one way of writing it to another (resume journals are keyed by
    /// it): the server (case-insensitive, without the port, which a proxy
    /// or tunnel may change), share and directory; or the local path.
    pub fn resume_key(&self) -> String {
        match self {
            Self::Local(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                format!("file:{}", abs.display())
            }
            Self::Smb(s) => format!(
                "smb:{}\\{}\\{}",
                s.server.to_ascii_lowercase(),
                s.share.to_ascii_lowercase(),
                s.path
            ),
        }
    }

    /// The parent directory and the last name of a location that turned out
    /// to be a file (a single-file SOURCE); `None` for a share root or a
    /// path without a name (`/`, `..`).
    pub fn split_file(&self) -> Option<(Self, String)> {
        match self {
            Self::Local(p) => {
                let name = p.file_name()?.to_str()?.to_string();
                let parent = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                Some((Self::Local(parent), name))
            }
            Self::Smb(s) => {
                if s.path.is_empty() {
                    return None;
                }
                let (dir, name) = s.path.rsplit_once('\\').unwrap_or(("", &s.path));
                let parent = SmbLocation {
                    path: dir.to_string(),
                    ..s.clone()
                };
                Some((Self::Smb(parent), name.to_string()))
            }
        }
    }

    /// Parses a command-line location.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s.is_empty() {
            bail!("empty path");
        }
        let lower = s.get(..6).map(str::to_ascii_lowercase);
        if lower.as_deref() == Some("smb://") {
            return parse_url(&s[6..]).with_context(|| format!("bad SMB URL {:?}", redacted(s)));
        }
        if s.contains("://") {
            bail!(
                "unsupported URL scheme in {:?} (only smb:// is supported)",
                redacted(s)
            );
        }
        if let Some(rest) = s.strip_prefix("\\\\").or_else(|| s.strip_prefix("//")) {
            return unc_with_port(rest).with_context(|| format!("bad UNC path {:?}", redacted(s)));
        }
        Ok(Self::Local(PathBuf::from(s)))
    }

    /// True for an SMB location.
    pub fn is_smb(&self) -> bool {
        matches!(self, Self::Smb(_))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Smb(s) => write!(f, "{s}"),
        }
    }
}

/// UNC with the default port; with another port the URL form
/// `smb://server:port/share/dir`, which reads back the same.
impl fmt::Display for SmbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port != SMB_PORT {
            let host = if self.server.contains(':') {
                format!("[{}]", self.server)
            } else {
                self.server.clone()
            };
            write!(
                f,
                "smb://{host}:{}/{}",
                self.port,
                self.share.replace('%', "%25")
            )?;
            if !self.path.is_empty() {
                write!(f, "/{}", self.path.replace('%', "%25").replace('\\', "/"))?;
            }
            return Ok(());
        }
        write!(f, "\\\\{}", self.server)?;
        write!(f, "\\{}", self.share)?;
        if !self.path.is_empty() {
            write!(f, "\\{}", self.path)?;
        }
        Ok(())
    }
}

/// `server[:port]/share/dir` after `\\` or `//`: a port as in a URL
/// (`//10.0.0.1:4450/share`, `//[::1]:4450/share`); a bare IPv6 address
/// (more than one `:`) has none.
fn unc_with_port(rest: &str) -> anyhow::Result<Location> {
    let end = rest.find(['\\', '/']).unwrap_or(rest.len());
    let server = &rest[..end];
    // A user part (`u:pw@host`) is refused by parse_unc, never taken for a port.
    if server.contains('@') || !(server.starts_with('[') || server.matches(':').count() == 1) {
        return parse_unc(rest, SMB_PORT, None, None);
    }
    let (host, port) = split_host_port(server)?;
    let Location::Smb(mut loc) = parse_unc(&format!("x{}", &rest[end..]), port, None, None)? else {
        unreachable!("parse_unc only returns SMB locations");
    };
    loc.server = host;
    Ok(Location::Smb(loc))
}

/// `server/share/dir` (after `\\` or `//`), either separator.
fn parse_unc(
    rest: &str,
    port: u16,
    user: Option<String>,
    domain: Option<String>,
) -> anyhow::Result<Location> {
    let mut parts = rest.split(['\\', '/']);
    let server = parts.next().unwrap_or_default();
    if server.is_empty() {
        bail!("missing server name");
    }
    if server.contains('@') {
        bail!("a user or password in a UNC path is not accepted; use --user and SMBCP_PASSWORD, --password-file or a prompt");
    }
    check_server(server)?;
    let share = parts.next().unwrap_or_default();
    if share.is_empty() {
        bail!("missing share name (expected \\\\server\\share[\\dir])");
    }
    if share == "." || share == ".." {
        bail!("{share:?} is not a share name");
    }
    check_component(share)?;
    let mut comps = Vec::new();
    for c in parts {
        match c {
            "" | "." => {}
            ".." => bail!("'..' is not allowed in an SMB path"),
            c => {
                check_component(c)?;
                comps.push(c);
            }
        }
    }
    Ok(Location::Smb(SmbLocation {
        server: server.to_string(),
        port,
        share: share.to_string(),
        path: comps.join("\\"),
        user,
        domain,
    }))
}

/// `s` for an error message: the user information of an SMB location
/// (`smb://user:pw@`, `//user:pw@`, `\\\\user:pw@`) replaced by `***` when it
/// may hold a password (a `:`, or a `%`-escape that could hide one).
pub fn redacted(s: &str) -> std::borrow::Cow<'_, str> {
    let start = if s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("smb://")) {
        6
    } else if s.starts_with("\\\\") || s.starts_with("//") {
        2
    } else if let Some(i) = s.find("://") {
        i + 3
    } else {
        return s.into();
    };
    let rest = &s[start..];
    let authority = rest.split(['/', '\\']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains([':', '%']) => {
            format!("{}***{}", &s[..start], &rest[userinfo.len()..]).into()
        }
        _ => s.into(),
    }
}

/// Rejects a server name that cannot be one, or that would print as another
/// location: control characters, white space, `/ \ @ [ ] % < > " | ? *`,
/// and a `:` outside an IPv6 address (which has at least two).
fn check_server(host: &str) -> anyhow::Result<()> {
    if host.is_empty() {
        bail!("missing server name");
    }
    let bad = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '/' | '\\' | '@' | '[' | ']' | '%' | '<' | '>' | '"' | '|' | '?' | '*'
            )
    };
    if let Some(c) = host.chars().find(|&c| bad(c)) {
        bail!("invalid character {c:?} in server name {host:?}");
    }
    if host.matches(':').count() == 1 {
        bail!("invalid server name {host:?} (an IPv6 address goes in brackets: [addr]:port)");
    }
    Ok(())
}

/// Rejects characters Windows never allows in a name.
fn check_component(c: &str) -> anyhow::Result<()> {
    if let Some(bad) = c
        .chars()
        .find(|ch| matches!(ch, '<' | '>' | '"' | '|' | '?' | '*' | '\0' | ':'))
    {
        bail!("invalid character {bad:?} in {c:?}");
    }
    Ok(())
}

/// `[domain;user@]server[:port]/share/dir`.
fn parse_url(rest: &str) -> anyhow::Result<Location> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (mut user, mut domain) = (None, None);
    if let Some(u) = userinfo {
        let u = percent_decode(u)?;
        if u.contains(':') {
            bail!("a password in the URL is not accepted; use SMBCP_PASSWORD, --password-file or a prompt");
        }
        let (d, name) = match u.split_once(';') {
            Some((d, n)) => (Some(d.to_string()), n.to_string()),
            None => (None, u),
        };
        if name.is_empty() {
            bail!("empty user name");
        }
        user = Some(name);
        domain = d.filter(|d| !d.is_empty());
    }
    let (host, port) = split_host_port(hostport)?;
    let path = percent_decode(path)?;
    let Location::Smb(mut loc) = parse_unc(&format!("{host}/{path}"), port, user, domain)? else {
        unreachable!("parse_unc only returns SMB locations");
    };
    loc.server = host;
    Ok(Location::Smb(loc))
}

fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').context("unclosed '[' in host")?;
        if !(rest.is_empty() || rest.starts_with(':')) {
            bail!("unexpected {rest:?} after ']' in the host");
        }
        (h, rest.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_server(host)?;
    if !s.starts_with('[') && host.contains(':') {
        bail!("invalid server name {host:?} (an IPv6 address goes in brackets: [addr]:port)");
    }
    let port = match port {
        None => SMB_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => bail!("bad port {p:?}"),
        },
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).context("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).with_context(|| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("%-escapes are not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smb(server: &str, port: u16, share: &str, path: &str) -> Location {
        Location::Smb(SmbLocation {
            server: server.into(),
            port,
            share: share.into(),
            path: path.into(),
            user: None,
            domain: None,
        })
    }

    #[test]
    fn three_spellings_agree() {
        let want = smb("srv", 445, "share", "a\\b c");
        assert_eq!(Location::parse("\\\\srv\\share\\a\\b c").unwrap(), want);
        assert_eq!(Location::parse("//srv/share/a/b c").unwrap(), want);
        assert_eq!(Location::parse("smb://srv/share/a/b%20c").unwrap(), want);
        assert_eq!(Location::parse("SMB://srv/share/a/b c/").unwrap(), want);
    }

    #[test]
    fn url_with_user_domain_port() {
        let Location::Smb(l) = Location::parse("smb://CORP;alice@10.0.0.1:4455/data/x").unwrap()
        else {
            panic!("not smb")
        };
        assert_eq!(
            (l.server.as_str(), l.port, l.share.as_str(), l.path.as_str()),
            ("10.0.0.1", 4455, "data", "x")
        );
        assert_eq!(l.user.as_deref(), Some("alice"));
        assert_eq!(l.domain.as_deref(), Some("CORP"));
        let Location::Smb(l) = Location::parse("smb://bob@[::1]:1445/s").unwrap() else {
            panic!("not smb")
        };
        assert_eq!(
            (l.server.as_str(), l.port, l.path.as_str()),
            ("::1", 1445, "")
        );
        assert_eq!(l.domain, None);
    }

    #[test]
    fn share_root_and_local_paths() {
        assert_eq!(
            Location::parse("\\\\srv\\share").unwrap(),
            smb("srv", 445, "share", "")
        );
        assert_eq!(
            Location::parse("/home/me").unwrap(),
            Location::Local("/home/me".into())
        );
        assert_eq!(
            Location::parse("rel/dir").unwrap(),
            Location::Local("rel/dir".into())
        );
        assert_eq!(
            Location::parse("C:\\x").unwrap(),
            Location::Local("C:\\x".into())
        );
    }

    #[test]
    fn bad_input_is_rejected() {
        for bad in [
            "",
            "\\\\",
            "\\\\srv",
            "\\\\srv\\",
            "//srv",
            "smb://",
            "smb://srv",
            "smb://srv:0/s",
            "smb://srv:99999/s",
            "smb://srv:x/s",
            "smb://u:pw@srv/s",
            "smb://srv/s/../x",
            "smb://srv/s/%zz",
            "\\\\srv\\sh*re",
            "ftp://srv/x",
            "smb://[::1/s",
            "//srv/../x",
            "\\\\srv\\.",
            "smb://srv/%2e%2e/x",
            "smb://srv/./x",
            // Found by fuzzing (cli_location): a host that printed as another.
            "smb://smb:\u{6}\u{6}\u{6}1]:4450/share",
            "smb://fe80::1/s",
            "smb://[::1]x/s",
            "smb://[::1]]:4450/s",
            "\\\\[a:b]\\s",
            "//sr v/s",
            "//srv%41/s",
            "\\\\s\u{7}rv\\s",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn passwords_are_refused_and_never_shown() {
        for bad in [
            "smb://u:hunter2@srv/s",
            "smb://D;u:hunter2@srv/s/x",
            "smb://u%3Ahunter2@srv/s",
            "//u:hunter2@srv/s",
            "\\\\u:hunter2@srv\\s",
            "//u@srv/s",
            "ftp://u:hunter2@srv/s",
        ] {
            let e = format!("{:#}", Location::parse(bad).unwrap_err());
            assert!(!e.contains("hunter2"), "{bad}: {e}");
            assert!(
                e.contains("not accepted") || e.contains("unsupported"),
                "{bad}: {e}"
            );
        }
        assert_eq!(redacted("smb://u:pw@h/s/a@b"), "smb://***@h/s/a@b");
        assert_eq!(redacted("\\\\u:pw@h\\s"), "\\\\***@h\\s");
        assert_eq!(redacted("smb://u@h/s"), "smb://u@h/s");
        assert_eq!(redacted("/local/u:pw@x"), "/local/u:pw@x");
    }

    #[test]
    fn unc_with_a_port() {
        assert_eq!(
            Location::parse("//127.0.0.1:4750/share/d").unwrap(),
            smb("127.0.0.1", 4750, "share", "d")
        );
        assert_eq!(
            Location::parse("\\\\[::1]:4750\\share").unwrap(),
            smb("::1", 4750, "share", "")
        );
        // A bare IPv6 address has no port.
        assert_eq!(
            Location::parse("//fe80::1/share").unwrap(),
            smb("fe80::1", 445, "share", "")
        );
        assert!(Location::parse("//srv:99999/share").is_err());
        assert!(Location::parse("//srv:/share").is_err());
    }

    #[test]
    fn display_is_unc_or_a_url_with_a_port() {
        assert_eq!(
            Location::parse("smb://srv:1445/s/a/b").unwrap().to_string(),
            "smb://srv:1445/s/a/b"
        );
        assert_eq!(
            Location::parse("//[::1]:1445/s/100%").unwrap().to_string(),
            "smb://[::1]:1445/s/100%25"
        );
        // What is shown reads back as the same location.
        for s in ["smb://srv:1445/s/a b/c", "//[::1]:4450/s", "\\\\srv\\s\\x"] {
            let l = Location::parse(s).unwrap();
            assert_eq!(Location::parse(&l.to_string()).unwrap(), l, "{s}");
        }
        assert_eq!(
            Location::parse("//srv/s").unwrap().to_string(),
            "\\\\srv\\s"
        );
    }
}
