//! Hostile or broken servers, scripted over a local socket: connection loss,
//! SMB1 replies, garbage, silence (timeouts). Also decodes a NEGOTIATE reply
//! captured live from the fixture's Samba.

use std::time::Duration;

use smb_core::wire::header::{Header, FLAG_RESPONSE};
use smb_core::wire::negotiate::{NegotiateResponse, CAP_LARGE_MTU, SECURITY_SIGNING_ENABLED};
use smb_core::wire::{Command, Writer};
use smb_core::{Client, ClientConfig, Dialect, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(b)
}

async fn write_frame(s: &mut TcpStream, b: &[u8]) {
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(b);
    let _ = s.write_all(&f).await;
}

fn negotiate_reply(message_id: u64) -> Vec<u8> {
    let mut w = Writer::new();
    Header {
        command: Command::NEGOTIATE,
        credits: 64,
        flags: FLAG_RESPONSE,
        message_id,
        ..Header::default()
    }
    .encode(&mut w);
    NegotiateResponse {
        security_mode: SECURITY_SIGNING_ENABLED,
        dialect: Dialect::SMB2_1,
        server_guid: [1; 16],
        capabilities: CAP_LARGE_MTU,
        max_transact_size: 1 << 20,
        max_read_size: 1 << 20,
        max_write_size: 1 << 20,
        system_time: 0,
        security_buffer: Vec::new(),
        contexts: Vec::new(),
    }
    .encode(&mut w);
    w.into_vec()
}

/// Starts a server that answers NEGOTIATE and then runs `then` on the socket.
async fn fake<F, Fut>(then: F) -> u16
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let req = read_frame(&mut s).await.unwrap();
        let h = Header::decode(&req).unwrap();
        write_frame(&mut s, &negotiate_reply(h.message_id)).await;
        then(s).await;
    });
    port
}

fn quick() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.request_timeout = Duration::from_millis(500);
    c.connect_timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn connection_loss_fails_waiters_and_later_calls() {
    let port = fake(|mut s| async move {
        // Swallow two requests, then hang up.
        let _ = read_frame(&mut s).await;
        let _ = read_frame(&mut s).await;
        drop(s);
    })
    .await;
    let client = Client::connect("127.0.0.1", port, quick()).await.unwrap();
    assert_eq!(client.negotiated().dialect, Dialect::SMB2_1);
    let (a, b) = tokio::join!(client.echo(), client.echo());
    for r in [a, b] {
        assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
    }
    // Later calls fail fast.
    let t = std::time::Instant::now();
    assert!(matches!(client.echo().await, Err(Error::ConnectionLost(_))));
    assert!(t.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn silence_times_out_and_cancels() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let port = fake(|mut s| async move {
        // Never answer the ECHO; report what the client sends after giving up.
        let echo = Header::decode(&read_frame(&mut s).await.unwrap()).unwrap();
        let cancel = Header::decode(&read_frame(&mut s).await.unwrap()).unwrap();
        let _ = tx.send((echo, cancel));
        while read_frame(&mut s).await.is_some() {}
    })
    .await;
    let client = Client::connect("127.0.0.1", port, quick()).await.unwrap();
    let r = client.echo().await;
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let (echo, cancel) = rx.await.unwrap();
    assert_eq!(echo.command, Command::ECHO);
    assert_eq!(cancel.command, Command::CANCEL);
    assert_eq!(cancel.message_id, echo.message_id);
    assert_eq!(cancel.credits, 0);
}

#[tokio::test]
async fn smb1_reply_is_refused() {
    let port = fake(|mut s| async move {
        let _ = read_frame(&mut s).await;
        let mut b = vec![0xFF, b'S', b'M', b'B'];
        b.resize(80, 0);
        write_frame(&mut s, &b).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let client = Client::connect("127.0.0.1", port, quick()).await.unwrap();
    match client.echo().await {
        Err(Error::ConnectionLost(m)) => assert!(m.to_string().contains("SMB1"), "{m}"),
        r => panic!("{r:?}"),
    }
}

#[tokio::test]
async fn garbage_reply_fails_the_connection() {
    let port = fake(|mut s| async move {
        let _ = read_frame(&mut s).await;
        // A header whose NextCommand points outside the frame.
        let mut w = Writer::new();
        Header {
            command: Command::ECHO,
            flags: FLAG_RESPONSE,
            next_command: 4096,
            message_id: 1,
            ..Header::default()
        }
        .encode(&mut w);
        w.zeros(8);
        write_frame(&mut s, w.as_slice()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let client = Client::connect("127.0.0.1", port, quick()).await.unwrap();
    let r = client.echo().await;
    assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
}

#[tokio::test]
async fn smb1_negotiate_reply_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = read_frame(&mut s).await;
        let mut b = vec![0xFF, b'S', b'M', b'B'];
        b.resize(80, 0);
        write_frame(&mut s, &b).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let r = Client::connect("127.0.0.1", port, quick()).await;
    assert!(r.is_err());
}

#[test]
fn captured_samba_negotiate_decodes() {
    let samba = smb_fixture::Samba::shared();
    let raw = samba.raw_negotiate().unwrap();
    let h = Header::decode(&raw).unwrap();
    assert!(h.is_response());
    let n = NegotiateResponse::decode(&raw).unwrap();
    assert_eq!(n.dialect, Dialect::SMB2_1);
    assert!(n.max_read_size >= 65536);
    println!(
        "[captured] negotiate reply {} bytes, security blob {} bytes",
        raw.len(),
        n.security_buffer.len()
    );
    for cut in 0..raw.len() {
        assert!(
            NegotiateResponse::decode(&raw[..cut]).is_err(),
            "prefix {cut}"
        );
    }
}
