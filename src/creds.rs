//! SMB credentials: the user from `--user [DOMAIN\]NAME` or the URL, the
//! password from `--password-stdin`, `--password-file`, a Samba-style
//! `--auth-file`, `SMBCP_PASSWORD`, or a prompt when stdin is a terminal —
//! never from the command line. `--guest` is explicit, and so is an empty
//! password (`--empty-password`): an empty first line is far more often a
//! mistake (a blank file, a closed pipe) than an account without one.
//!
//! Lines end at LF, CRLF or a lone CR, so a file saved with old Mac line
//! endings cannot run its `password=` into the user name; and no error
//! message ever includes a password or a value that might hold one.

use std::fs;
use std::io::{self, BufRead as _, IsTerminal as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use smb_core::{Credentials, KerberosConfig, KerberosSource};
use zeroize::Zeroizing;

use crate::cli::options::AuthSource;

/// `--auth`: which mechanism logs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Kerberos when a ticket or keytab is at hand and the server offers it, else NTLMv2.
    #[default]
    Auto,
    /// Kerberos only: never falls back to NTLM.
    Kerberos,
    /// NTLMv2 only.
    Ntlm,
}

/// The Kerberos flags, checked against each other.
#[derive(Clone, Debug, Default)]
pub struct KerberosArgs {
    mode: AuthMode,
    /// `--kerberos`: a ticket from the password.
    password: bool,
    keytab: Option<std::path::PathBuf>,
    spn: Option<String>,
}

impl KerberosArgs {
    /// From `--auth`, `--kerberos`, `--keytab`, `--spn`.
    pub fn new(
        mode: AuthMode,
        password: bool,
        keytab: Option<std::path::PathBuf>,
        spn: Option<String>,
    ) -> anyhow::Result<Self> {
        if mode == AuthMode::Ntlm && (password || keytab.is_some() || spn.is_some()) {
            bail!("--auth ntlm does not go with --kerberos, --keytab or --spn");
        }
        if let Some(s) = &spn {
            if !s.contains('/') || s.chars().any(char::is_control) {
                bail!(
                    "--spn wants SERVICE/HOST or SERVICE/HOST@REALM (e.g. cifs/files.example.com)"
                );
            }
        }
        Ok(Self {
            mode,
            password,
            keytab,
            spn,
        })
    }

    fn config(&self, source: KerberosSource, required: bool) -> Option<KerberosConfig> {
        Some(KerberosConfig {
            source,
            spn: self.spn.clone(),
            required,
        })
    }
}

/// Who a logon is for, for error messages: `as "user"`, or `with the
/// Kerberos ticket in the cache` when the cache names the user.
pub fn who(creds: &Credentials) -> String {
    if creds.user.is_empty() && creds.kerberos.is_some() {
        "with the Kerberos ticket in the credential cache".to_string()
    } else {
        format!("as {:?}", creds.user)
    }
}

/// The environment variable holding the password.
pub const PASSWORD_ENV: &str = "SMBCP_PASSWORD";

/// What a Samba credentials file holds.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct AuthFile {
    user: Option<String>,
    password: Option<Zeroizing<String>>,
    domain: Option<String>,
}

/// Refuses secrets files that group or others can read.
fn check_private(path: &Path) -> anyhow::Result<()> {
    let md = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = md.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible by group or others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

/// The lines of a secrets file: split at LF, CRLF and lone CR alike.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\r', '\n'])
}

/// The first line, without its line ending.
fn first_line(text: &str) -> Zeroizing<String> {
    Zeroizing::new(lines(text).next().unwrap_or_default().to_string())
}

/// Refuses a user or domain holding control characters (never quoted: a
/// mangled file could have put the password there).
fn check_name(what: &str, value: &str, from: &str) -> anyhow::Result<()> {
    if value.chars().any(char::is_control) {
        bail!("the {what} from {from} holds a control character");
    }
    Ok(())
}

pub(crate) fn parse_auth_file(text: &str) -> AuthFile {
    let mut f = AuthFile::default();
    for line in lines(text) {
        let line = line.trim_start();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "username" | "user" => f.user = Some(value),
            "password" => f.password = Some(Zeroizing::new(value)),
            "domain" | "workgroup" => f.domain = Some(value),
            _ => {}
        }
    }
    f
}

/// Splits `DOMAIN\NAME` (or `DOMAIN/NAME`, or `NAME@DOMAIN`) into (name, domain).
pub fn split_user(s: &str) -> (String, Option<String>) {
    if let Some((d, n)) = s.split_once(['\\', '/']) {
        return (n.to_string(), Some(d.to_string()));
    }
    if let Some((n, d)) = s.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    (s.to_string(), None)
}

/// Reads a password from the terminal without echo: rpassword writes the
/// prompt to and reads the answer from the controlling terminal (`/dev/tty`),
/// echo off before the prompt shows, so a fast typist is never echoed.
fn prompt(label: &str) -> anyhow::Result<Zeroizing<String>> {
    let line = Zeroizing::new(
        rpassword::prompt_password(format!("Password for {label}: "))
            .context("reading the password from the terminal")?,
    );
    Ok(first_line(&line))
}

/// Resolves credentials for an SMB location. `url_user` is (user, domain) from the URL.
pub fn resolve(
    auth: &AuthSource,
    url_user: Option<(String, Option<String>)>,
    server: &str,
) -> anyhow::Result<Credentials> {
    let file = match &auth.auth_file {
        Some(p) => {
            check_private(p)?;
            parse_auth_file(
                &fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            )
        }
        None => AuthFile::default(),
    };
    let (user, domain) = match (&auth.user, url_user, &file.user) {
        (Some(u), _, _) => split_user(u),
        (None, Some((u, d)), _) => (u, d),
        (None, None, Some(u)) => split_user(u),
        (None, None, None) => (String::new(), None),
    };
    let domain = domain.or(file.domain).unwrap_or_default();
    check_name("user", &user, "the command line, URL or --auth-file")?;
    check_name("domain", &domain, "the command line, URL or --auth-file")?;
    if auth.guest {
        return Ok(Credentials {
            user,
            domain,
            guest: true,
            ..Credentials::default()
        });
    }
    let k = &auth.kerberos;
    if let Some(keytab) = &k.keytab {
        if user.is_empty() {
            bail!("--keytab needs --user NAME (the principal whose key the keytab holds)");
        }
        let path = keytab.to_str().context("the --keytab path is not UTF-8")?;
        fs::metadata(keytab).with_context(|| format!("cannot read {}", keytab.display()))?;
        return Ok(Credentials {
            user,
            domain,
            kerberos: k.config(KerberosSource::Keytab(path.to_string()), true),
            ..Credentials::default()
        });
    }
    let cache = match k.mode {
        _ if k.password => false,
        AuthMode::Kerberos => true,
        AuthMode::Auto => smb_core::auth::kerberos::ticket_at_hand(),
        AuthMode::Ntlm => false,
    };
    if cache {
        // The ticket logs on; a password given without asking for one is
        // kept for NTLMv2 when the server offers no Kerberos (auto only).
        let pw = if k.mode == AuthMode::Auto && !user.is_empty() {
            password(auth, file.password, &user, &domain, server, false)?
        } else {
            None
        };
        let required = pw.is_none();
        return Ok(Credentials {
            user,
            domain,
            password: pw.unwrap_or_default(),
            kerberos: k.config(KerberosSource::Cache, required),
            ..Credentials::default()
        });
    }
    if user.is_empty() {
        bail!("no SMB user: pass --user [DOMAIN\\]NAME, put it in the URL (smb://user@{server}/share), or use --guest");
    }
    let password =
        password(auth, file.password, &user, &domain, server, true)?.context("no password")?;
    Ok(Credentials {
        user,
        domain,
        password,
        guest: false,
        kerberos: if k.password {
            k.config(KerberosSource::Password, true)
        } else {
            None
        },
    })
}

/// The password from the first source given; `prompt`: ask on a terminal,
/// and fail when there is none (else `None`).
fn password(
    auth: &AuthSource,
    from_file: Option<Zeroizing<String>>,
    user: &str,
    domain: &str,
    server: &str,
    prompt_ok: bool,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    let (password, from) = if auth.password_stdin {
        let mut line = Zeroizing::new(String::new());
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        (first_line(&line), "stdin")
    } else if let Some(p) = &auth.password_file {
        check_private(p)?;
        let text = Zeroizing::new(
            fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        );
        (first_line(&text), "--password-file")
    } else if let Some(pw) = from_file {
        (pw, "--auth-file")
    } else if let Ok(pw) = std::env::var(PASSWORD_ENV) {
        (Zeroizing::new(pw), PASSWORD_ENV)
    } else if !prompt_ok {
        return Ok(None);
    } else if io::stdin().is_terminal() {
        let who = if domain.is_empty() {
            user.to_string()
        } else {
            format!("{domain}\\{user}")
        };
        (prompt(&format!("{who}@{server}"))?, "the prompt")
    } else {
        bail!("no password for {user}: set {PASSWORD_ENV}, or use --password-file, --password-stdin or --auth-file");
    };
    if password.is_empty() && !auth.empty_password {
        bail!("the password from {from} is empty; pass --empty-password if the account has none");
    }
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(
            split_user("CORP\\alice"),
            ("alice".into(), Some("CORP".into()))
        );
        assert_eq!(
            split_user("alice@corp"),
            ("alice".into(), Some("corp".into()))
        );
        assert_eq!(split_user("alice"), ("alice".into(), None));
    }

    #[test]
    fn auth_file_format() {
        let f = parse_auth_file("# comment\nusername = bob\npassword=p@ss=word \ndomain=WG\n");
        assert_eq!(f.user.as_deref(), Some("bob"));
        assert_eq!(f.password.as_deref().map(String::as_str), Some("p@ss=word"));
        assert_eq!(f.domain.as_deref(), Some("WG"));
    }

    #[test]
    fn secrets_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        fs::write(&p, "secret\nignored\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let auth = AuthSource {
            user: Some("u".into()),
            password_file: Some(p.clone()),
            ..AuthSource::default()
        };
        let err = resolve(&auth, None, "srv").unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let c = resolve(&auth, None, "srv").unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_str(), c.guest),
            ("u", "secret", false)
        );
    }

    #[test]
    fn sources_of_user_and_guest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth");
        fs::write(&p, "username=fileuser\npassword=filepw\ndomain=FD\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let auth = AuthSource {
            auth_file: Some(p),
            ..AuthSource::default()
        };
        let c = resolve(&auth, None, "srv").unwrap();
        assert_eq!(
            (c.user.as_str(), c.domain.as_str(), c.password.as_str()),
            ("fileuser", "FD", "filepw")
        );
        // The URL user wins over the file's, --user over both.
        let c = resolve(&auth, Some(("urluser".into(), Some("UD".into()))), "srv").unwrap();
        assert_eq!((c.user.as_str(), c.domain.as_str()), ("urluser", "UD"));
        let auth2 = AuthSource {
            user: Some("D\\cli".into()),
            ..auth
        };
        let c = resolve(&auth2, Some(("urluser".into(), None)), "srv").unwrap();
        assert_eq!((c.user.as_str(), c.domain.as_str()), ("cli", "D"));
        let g = resolve(
            &AuthSource {
                guest: true,
                ..AuthSource::default()
            },
            None,
            "srv",
        )
        .unwrap();
        assert!(g.guest && g.password.is_empty());
    }

    fn private_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    #[test]
    fn cr_only_line_endings_split_lines() {
        let f = parse_auth_file("username=bob\rpassword=hunter2\rdomain=WG\r");
        assert_eq!(f.user.as_deref(), Some("bob"));
        assert_eq!(f.password.as_deref().map(String::as_str), Some("hunter2"));
        assert_eq!(f.domain.as_deref(), Some("WG"));
        assert_eq!(first_line("pw\rnext").as_str(), "pw");
        assert_eq!(first_line("pw\r\nnext").as_str(), "pw");
        // A user that still holds a control character is refused, unquoted.
        let dir = tempfile::tempdir().unwrap();
        let auth = AuthSource {
            user: Some("bob\u{1b}hunter2".into()),
            password_file: Some(private_file(dir.path(), "pw", "x\n")),
            ..AuthSource::default()
        };
        let e = format!("{:#}", resolve(&auth, None, "srv").unwrap_err());
        assert!(
            e.contains("control character") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn empty_passwords_need_empty_password() {
        let dir = tempfile::tempdir().unwrap();
        for (text, name) in [("\n", "nl"), ("", "empty"), ("\r\nsecond", "crlf")] {
            let mut auth = AuthSource {
                user: Some("u".into()),
                password_file: Some(private_file(dir.path(), name, text)),
                ..AuthSource::default()
            };
            let e = format!("{:#}", resolve(&auth, None, "srv").unwrap_err());
            assert!(
                e.contains("is empty") && e.contains("--empty-password"),
                "{e}"
            );
            auth.empty_password = true;
            let c = resolve(&auth, None, "srv").unwrap();
            assert!(c.password.is_empty() && !c.guest);
        }
        let auth = AuthSource {
            auth_file: Some(private_file(dir.path(), "a", "username=u\npassword=\n")),
            ..AuthSource::default()
        };
        assert!(format!("{:#}", resolve(&auth, None, "srv").unwrap_err()).contains("--auth-file"));
    }
}
