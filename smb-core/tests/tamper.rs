//! A man in the middle between the client and the real Samba that alters one
//! reply: a bad signature must be `Error::BadSignature`, a bad ciphertext must
//! fail the connection, never be accepted; a guest flag forged into the final
//! SESSION_SETUP response never yields an unsigned session; a session's ECHO
//! is signed and its reply verified.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::creds;
use smb_core::wire::header::{Header, FLAGS_OFFSET, HEADER_LEN, SIGNATURE_OFFSET};
use smb_core::wire::{Command, NtStatus};
use smb_core::{Client, ClientConfig, Error, OpenOptions};
use smb_fixture::{MaxProtocol, Samba, ServerConfig, ENC_SHARE, SHARE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn read_frame(s: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(b)
}

/// A proxy to `port`; `alter` may change each server frame once `armed` is set.
async fn proxy(port: u16, armed: Arc<AtomicBool>, alter: fn(&mut [u8]) -> bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (client, _) = l.accept().await.unwrap();
        let server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
        });
        while let Some(mut f) = read_frame(&mut sr).await {
            if armed.load(Ordering::Relaxed) && alter(&mut f) {
                armed.store(false, Ordering::Relaxed);
            }
            let mut out = (f.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&f);
            if cw.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    me
}

#[tokio::test]
async fn bad_signature_is_reported() {
    let samba = Samba::get(&ServerConfig::new().signing_mandatory());
    let armed = Arc::new(AtomicBool::new(false));
    let port = proxy(samba.port(), Arc::clone(&armed), |f| {
        // Flip a signature byte of a CREATE response.
        match Header::decode(f) {
            Ok(h) if h.command == Command::CREATE && h.is_signed() => {
                f[50] ^= 0x01;
                true
            }
            _ => false,
        }
    })
    .await;
    let client = Client::connect("127.0.0.1", port, ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    assert_eq!(session.signing_algorithm(), Some("AES-128-GMAC"));
    armed.store(true, Ordering::Relaxed);
    let err = tree
        .open(
            "",
            &OpenOptions {
                directory: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap_err();
    println!("[tamper_signature] {err}");
    assert!(matches!(err, Error::BadSignature), "{err:?}");
    // Untampered traffic still verifies.
    tree.stat("").await.unwrap();
}

#[tokio::test]
async fn bad_ciphertext_fails_the_connection() {
    let samba = Samba::shared();
    let armed = Arc::new(AtomicBool::new(false));
    let port = proxy(samba.port(), Arc::clone(&armed), |f| {
        if f.starts_with(&[0xFD, b'S', b'M', b'B']) && f.len() > 60 {
            let last = f.len() - 1;
            f[last] ^= 0x80;
            true
        } else {
            false
        }
    })
    .await;
    let client = Client::connect("127.0.0.1", port, ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(ENC_SHARE).await.unwrap();
    assert!(tree.encrypted());
    armed.store(true, Ordering::Relaxed);
    let err = tree.stat("").await.unwrap_err();
    println!("[tamper_ciphertext] {err}");
    assert!(matches!(err, Error::ConnectionLost(_)), "{err:?}");
    assert!(matches!(client.echo().await, Err(Error::ConnectionLost(_))));
}

/// Sets SMB2_SESSION_FLAG_IS_GUEST in the final SESSION_SETUP response,
/// leaving its signature as it was.
fn forge_guest(f: &mut [u8]) -> bool {
    match Header::decode(f) {
        Ok(h) if h.command == Command::SESSION_SETUP && h.status == NtStatus::SUCCESS => {
            f[HEADER_LEN + 2] |= 0x01;
            true
        }
        _ => false,
    }
}

/// The same, and strips the signature (flag and bytes), as a real guest
/// session's unsigned reply would look.
fn forge_unsigned_guest(f: &mut [u8]) -> bool {
    if !forge_guest(f) {
        return false;
    }
    f[FLAGS_OFFSET] &= !0x08;
    f[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].fill(0);
    true
}

/// Logs on through a proxy that applies `forge` to the final SESSION_SETUP
/// response of a server of `max` protocol.
async fn logon_through(
    max: MaxProtocol,
    config: ClientConfig,
    forge: fn(&mut [u8]) -> bool,
) -> (Result<smb_core::Session, Error>, bool) {
    let samba = Samba::get(&ServerConfig::new().max_protocol(max));
    let armed = Arc::new(AtomicBool::new(true));
    let port = proxy(samba.port(), Arc::clone(&armed), forge).await;
    let client = Client::connect("127.0.0.1", port, config).await.unwrap();
    let r = client.session_setup(&creds()).await;
    (r, !armed.load(Ordering::Relaxed))
}

#[tokio::test]
async fn forged_guest_flag_never_drops_signing() {
    let signed = || {
        let mut c = ClientConfig::default();
        c.sign = true;
        c
    };
    // 3.1.1 signs the final response: a flag set on it breaks the signature.
    // 3.0.2 signs it when we require signing.
    for (max, config) in [
        (MaxProtocol::Smb3_11, ClientConfig::default()),
        (MaxProtocol::Smb3_11, signed()),
        (MaxProtocol::Smb3_02, signed()),
    ] {
        let (r, forged) = logon_through(max, config, forge_guest).await;
        assert!(forged, "{max:?}: no final SESSION_SETUP response seen");
        let err = r.unwrap_err();
        println!("[forged_guest] {max:?}: {err}");
        assert!(matches!(err, Error::BadSignature), "{max:?}: {err:?}");
    }
    // With the signature stripped as well, the logon is refused as a guest
    // session nobody asked for: never an unsigned session, and on 3.0.2
    // never a session whose VALIDATE_NEGOTIATE is skipped for want of a key.
    for (max, config) in [
        (MaxProtocol::Smb3_11, signed()),
        (MaxProtocol::Smb3_02, signed()),
        (MaxProtocol::Smb3_02, ClientConfig::default()),
        (MaxProtocol::Smb2_10, ClientConfig::default()),
    ] {
        let (r, forged) = logon_through(max, config, forge_unsigned_guest).await;
        assert!(forged, "{max:?}: no final SESSION_SETUP response seen");
        let err = r.unwrap_err();
        println!("[forged_unsigned_guest] {max:?}: {err}");
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("logged us on as a guest")),
            "{max:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn session_echo_is_signed_and_verified() {
    let samba = Samba::shared();
    let armed = Arc::new(AtomicBool::new(false));
    let port = proxy(samba.port(), Arc::clone(&armed), |f| {
        match Header::decode(f) {
            Ok(h) if h.command == Command::ECHO && h.is_signed() => {
                f[SIGNATURE_OFFSET] ^= 0x01;
                true
            }
            _ => false,
        }
    })
    .await;
    let mut config = ClientConfig::default();
    config.sign = true;
    let client = Client::connect("127.0.0.1", port, config).await.unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    session.echo().await.unwrap();
    armed.store(true, Ordering::Relaxed);
    let err = session.echo().await.unwrap_err();
    // Only a signed ECHO gets a signed reply, which the proxy then spoiled.
    assert!(
        !armed.load(Ordering::Relaxed),
        "the ECHO reply was not signed"
    );
    assert!(matches!(err, Error::BadSignature), "{err:?}");
    session.echo().await.unwrap();
}

/// A proxy to `port` that applies `alter` to every client frame (each
/// message of a compound) before the server sees it.
async fn request_proxy(port: u16, alter: fn(&mut [u8])) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (client, _) = l.accept().await.unwrap();
        let server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        while let Some(mut f) = read_frame(&mut cr).await {
            let mut at = 0;
            while let Ok(h) = Header::decode(&f[at..]) {
                let end = match h.next_command as usize {
                    0 => f.len(),
                    n => (at + n).min(f.len()),
                };
                alter(&mut f[at..end]);
                if h.next_command == 0 || end >= f.len() {
                    break;
                }
                at = end;
            }
            let mut out = (f.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&f);
            if sw.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    me
}

/// A server that never ends a listing: every QUERY_DIRECTORY gets
/// SMB2_RESTART_SCANS, so Samba answers each with the first batch again and
/// never STATUS_NO_MORE_FILES. The listing fails with a protocol error at
/// the first repeat instead of growing forever; the cap on entries stops a
/// listing that is merely too long.
#[tokio::test]
async fn endless_or_huge_listings_are_bounded() {
    let samba = Samba::shared();
    let (rel, dir) = samba.unique_dir(SHARE, "endless");
    for i in 0..12 {
        std::fs::write(dir.join(format!("f{i:02}")), b"x").unwrap();
    }
    smb_fixture::chown_to_user(&dir).unwrap();
    let port = request_proxy(samba.port(), |m| {
        if Header::decode(m).is_ok_and(|h| h.command == Command::QUERY_DIRECTORY) {
            m[HEADER_LEN + 3] |= 0x01; // SMB2_RESTART_SCANS
        }
    })
    .await;
    let client = Client::connect("127.0.0.1", port, ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let err = tree.read_dir(&rel).await.unwrap_err();
    println!("[endless_listing] read_dir: {err}");
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("repeated a batch")),
        "{err:?}"
    );
    let mut lister = tree.list_dir(&rel).await.unwrap();
    let first = lister.next_batch().await.unwrap().unwrap();
    assert_eq!(first.len(), 12);
    let err = lister.next_batch().await.unwrap_err();
    println!("[endless_listing] next_batch: {err}");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    lister.close().await.unwrap();

    // Straight to the server: 12 entries are fine by default, not under a cap of 5.
    let (_, _, tree) = common::connect(samba, SHARE).await;
    assert_eq!(tree.read_dir(&rel).await.unwrap().len(), 12);
    let mut config = ClientConfig::default();
    config.max_dir_entries = 5;
    let (_, _, tree) = common::connect_with(samba, SHARE, config).await;
    let err = tree.read_dir(&rel).await.unwrap_err();
    println!("[endless_listing] capped: {err}");
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("more than 5 entries")),
        "{err:?}"
    );
}
