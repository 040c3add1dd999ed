//! End to end with Kerberos: the real binary against a Samba AD domain
//! controller on loopback (`smb_fixture::dc`), with a ticket from `kinit`
//! in a private credential cache, a keytab and a password; `--auth` modes
//! against the DC and the standalone fixture; and one clear line (exit 3)
//! for each thing a person can fix: no ticket, an expired one, a wrong
//! password, a KDC that does not answer, a server without Kerberos.

#[path = "e2e_util.rs"]
mod util;

use std::path::Path;

use smb_fixture::dc::{Dc, ENC_SHARE, KPASSWORD, KUSER, REALM, SHARE};
use smb_fixture::Samba;
use util::*;

fn principal() -> String {
    format!("{KUSER}@{REALM}")
}

/// KRB5_CONFIG for the DC and KRB5CCNAME = `ccache`.
fn env(dc: &Dc, ccache: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("KRB5_CONFIG", dc.krb5_conf().display().to_string()),
        ("KRB5CCNAME", format!("FILE:{}", ccache.display())),
    ]
}

fn run(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    smbcp_env(args, &env)
}

fn logon(r: &Run) -> Vec<String> {
    r.json()["logon"]
        .as_array()
        .unwrap_or_else(|| panic!("no logon in the JSON: {r:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A tree in a fresh directory of the DC's share: (its URL, local path).
fn remote_tree(dc: &Dc, share: &str, prefix: &str) -> (String, std::path::PathBuf) {
    let (rel, dir) = dc.unique_dir(share, prefix);
    standard_tree(&dir.join("src"));
    (dc.url(share, &format!("{rel}/src")), dir.join("src"))
}

#[test]
fn ticket_from_kinit_downloads_and_uploads_a_tree() {
    let dc = Dc::shared();
    let t = tempfile::tempdir().unwrap();
    let cc = t.path().join("cc");
    dc.kinit(&cc, "1h").unwrap();
    let env = env(dc, &cc);

    // Download: no user, no password: the ticket in the cache logs on.
    let (url, src) = remote_tree(dc, SHARE, "kdown");
    let down = t.path().join("down");
    let r = run(
        &[
            &url,
            down.to_str().unwrap(),
            "--mirror",
            "--sign",
            "--json",
            "-",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &down);
    assert_eq!(logon(&r), ["Kerberos"]);
    assert!(r.stderr.is_empty() || !r.stderr.contains("NTLM"), "{r:?}");

    // Upload with --auth kerberos into the encrypted share.
    let (rel, dir) = dc.unique_dir(ENC_SHARE, "kup");
    let url = dc.url(ENC_SHARE, &format!("{rel}/dst"));
    let r = run(
        &[
            down.to_str().unwrap(),
            &url,
            "--mirror",
            "--auth",
            "kerberos",
            "--json",
            "-",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&down, &dir.join("dst"));
    assert_eq!(logon(&r), ["Kerberos"]);
}

#[test]
fn keytab_and_password_get_their_own_tickets() {
    let dc = Dc::shared();
    let t = tempfile::tempdir().unwrap();
    // No cache at all: the keytab and the password must do without one.
    let env = env(dc, &t.path().join("absent-cache"));
    let keytab = dc.keytab();
    let (url, src) = remote_tree(dc, SHARE, "ktab");
    let down = t.path().join("down");
    let r = run(
        &[
            &url,
            down.to_str().unwrap(),
            "--mirror",
            "--keytab",
            keytab.to_str().unwrap(),
            "--user",
            &principal(),
            "--json",
            "-",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &down);
    assert_eq!(logon(&r), ["Kerberos"]);

    let (rel, dir) = dc.unique_dir(SHARE, "kpass");
    let url = dc.url(SHARE, &format!("{rel}/dst"));
    let mut env = env.clone();
    env.push(("SMBCP_PASSWORD", KPASSWORD.to_string()));
    let r = run(
        &[
            down.to_str().unwrap(),
            &url,
            "--mirror",
            "--kerberos",
            "--user",
            &principal(),
            "--json",
            "-",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&down, &dir.join("dst"));
    assert_eq!(logon(&r), ["Kerberos"]);
    // The summary says it too.
    let r = run(
        &[
            down.to_str().unwrap(),
            &url,
            "--kerberos",
            "--user",
            &principal(),
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Logon : Kerberos"), "{r:?}");
}

#[test]
fn auth_kerberos_against_a_standalone_server_fails_without_ntlm() {
    let dc = Dc::shared();
    let s = Samba::shared();
    let t = tempfile::tempdir().unwrap();
    let cc = t.path().join("cc");
    dc.kinit(&cc, "1h").unwrap();
    let mut env = env(dc, &cc);
    env.push(("SMBCP_PASSWORD", smb_fixture::PASSWORD.to_string()));
    let (rel, dir) = s.unique_dir(smb_fixture::SHARE, "krb-standalone");
    std::fs::write(dir.join("a.txt"), b"abc").unwrap();
    let url = s.url(smb_fixture::SHARE, &rel);
    let down = t.path().join("down");
    let r = run(
        &[
            &url,
            down.to_str().unwrap(),
            "--auth",
            "kerberos",
            "--user",
            smb_fixture::USER,
        ],
        &env,
    );
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(r.stderr.contains("does not offer Kerberos"), "{r:?}");
    assert!(!down.join("a.txt").exists());

    // auto with a ticket at hand and a password: NTLMv2, said so.
    let r = run(
        &[
            &url,
            down.to_str().unwrap(),
            "--user",
            smb_fixture::USER,
            "--json",
            "-",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(logon(&r), ["NTLMv2"]);
    assert_eq!(std::fs::read(down.join("a.txt")).unwrap(), b"abc");
}

#[test]
fn each_kerberos_failure_is_one_clear_line() {
    let dc = Dc::shared();
    let t = tempfile::tempdir().unwrap();
    let (rel, _) = dc.unique_dir(SHARE, "kerr");
    let url = dc.url(SHARE, &rel);
    let down = t.path().join("down");
    let d = down.to_str().unwrap();

    // No ticket.
    let none = env(dc, &t.path().join("absent"));
    let r = run(&[&url, d, "--auth", "kerberos"], &none);
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(r.stderr.contains("kinit"), "{r:?}");

    // An expired ticket.
    let cc = t.path().join("short");
    dc.kinit(&cc, "2s").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let r = run(&[&url, d, "--auth", "kerberos"], &env(dc, &cc));
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(
        r.stderr.contains("expired") || r.stderr.contains("kinit"),
        "{r:?}"
    );

    // A wrong password.
    let mut wrong = none.clone();
    wrong.push(("SMBCP_PASSWORD", "not-the-password".to_string()));
    let r = run(&[&url, d, "--kerberos", "--user", &principal()], &wrong);
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(r.stderr.contains("wrong password"), "{r:?}");

    // An unknown user.
    let r = run(
        &[&url, d, "--kerberos", "--user", "nobody@SMBCP.TEST"],
        &wrong,
    );
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(r.stderr.contains("user name"), "{r:?}");

    // A KDC that does not answer (a port nobody listens on).
    let conf = t.path().join("krb5.conf");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(dc.krb5_conf()).unwrap().replace(
        &format!("127.0.0.1:{}", dc.kdc_port()),
        &format!("127.0.0.1:{port}"),
    );
    std::fs::write(&conf, text).unwrap();
    let mut unreachable = wrong.clone();
    unreachable[0].1 = conf.display().to_string();
    let r = run(
        &[&url, d, "--kerberos", "--user", &principal()],
        &unreachable,
    );
    assert_one_line_error(&r, 3);
    println!("[kerberos error] {}", r.stderr.trim());
    assert!(r.stderr.contains("KDC"), "{r:?}");

    // Flags that contradict each other are a usage error.
    let r = run(&[&url, d, "--auth", "ntlm", "--kerberos"], &none);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!down.exists());
}
