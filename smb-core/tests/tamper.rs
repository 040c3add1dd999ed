//! A man in the middle between the client and the real Samba that alters one
//! reply: a bad signature must be `Error::BadSignature`, a bad ciphertext must
//! fail the connection, never be accepted.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::creds;
use smb_core::wire::header::Header;
use smb_core::wire::Command;
use smb_core::{Client, ClientConfig, Error, OpenOptions};
use smb_fixture::{Samba, ServerConfig, ENC_SHARE, SHARE};
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
async fn proxy(port: u16, armed: Arc<AtomicBool>, alter: fn(&mut Vec<u8>) -> bool) -> u16 {
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
