//! Shared helpers for the integration tests against the fixture's Samba.

#![allow(dead_code)]

use smb_core::{Client, ClientConfig, Credentials, Session, Tree};
use smb_fixture::{Samba, PASSWORD, USER};

/// Credentials of the fixture's user.
pub(crate) fn creds() -> Credentials {
    Credentials {
        user: USER.into(),
        password: PASSWORD.to_string().into(),
        ..Credentials::default()
    }
}

/// Connects, logs on and connects `share` with `config`.
pub(crate) async fn connect_with(
    samba: &Samba,
    share: &str,
    config: ClientConfig,
) -> (Client, Session, Tree) {
    let client = Client::connect(samba.host(), samba.port(), config)
        .await
        .expect("connect");
    let session = client.session_setup(&creds()).await.expect("session setup");
    let tree = session.tree_connect(share).await.expect("tree connect");
    (client, session, tree)
}

/// Connects with the default configuration.
pub(crate) async fn connect(samba: &Samba, share: &str) -> (Client, Session, Tree) {
    connect_with(samba, share, ClientConfig::default()).await
}

/// Deterministic test bytes.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_shr(13) as u8 ^ seed)
        .collect()
}

/// Prints what a connection negotiated (quoted in the closing notes).
pub(crate) fn report(name: &str, client: &Client, session: &Session, tree: &Tree) {
    let n = client.negotiated();
    println!(
        "[{name}] dialect={} signing={:?} session-key-signing={:?} cipher={:?} tree-encrypts={} max_read={} max_write={}",
        n.dialect,
        session.signing_algorithm(),
        session.session_signing_algorithm(),
        session.cipher().or_else(|| tree.encrypts().then(|| session.available_cipher()).flatten()),
        tree.encrypts(),
        n.max_read_size,
        n.max_write_size,
    );
}

/// Writes and reads files through the share and checks them through the local
/// path (and the other way round).
pub(crate) async fn exercise(samba: &Samba, share: &str, tree: &Tree, prefix: &str) {
    use bytes::Bytes;
    use smb_core::{FileTimes, OpenOptions};

    let (dir, local) = samba.unique_dir(share, prefix);
    // Pipelined positional writes of a 2.5 MiB file.
    let data = pattern(5 * 512 * 1024 + 3, 7);
    let n = tree.session().client().negotiated();
    let wchunk = n.max_write_size.min(1 << 20) as usize;
    let rchunk = n.max_read_size.min(1 << 20) as usize;
    let f = tree
        .open(&format!("{dir}/big.bin"), &OpenOptions::create_write())
        .await
        .expect("create");
    let writes = data.chunks(wchunk).enumerate().map(|(i, c)| {
        let f = f.clone();
        let c = Bytes::copy_from_slice(c);
        async move { f.write_at((i * wchunk) as u64, c).await }
    });
    for r in futures_join(writes).await {
        r.expect("write_at");
    }
    assert_eq!(f.close().await.expect("close").size, data.len() as u64);
    assert_eq!(
        std::fs::read(local.join("big.bin")).expect("local read"),
        data
    );

    // Read it back with concurrent reads.
    let f = tree
        .open(&format!("{dir}/big.bin"), &OpenOptions::read())
        .await
        .expect("open");
    let reads = (0..data.len().div_ceil(rchunk)).map(|i| {
        let f = f.clone();
        async move { f.read_at((i * rchunk) as u64, rchunk as u32).await }
    });
    let mut got = Vec::new();
    for r in futures_join(reads).await {
        got.extend_from_slice(&r.expect("read_at"));
    }
    assert_eq!(got, data);
    f.close().await.expect("close");

    // Compound small-file write and read.
    let small = Bytes::from(pattern(5000, 3));
    let info = tree
        .write_file(
            &format!("{dir}/small.txt"),
            small.clone(),
            FileTimes::default(),
        )
        .await
        .expect("write_file");
    assert_eq!(info.size, 5000);
    assert_eq!(
        std::fs::read(local.join("small.txt")).expect("local"),
        small
    );
    std::fs::write(local.join("from-local.txt"), b"written locally").expect("local write");
    let (b, _) = tree
        .read_file(&format!("{dir}/from-local.txt"), 65536)
        .await
        .expect("read_file");
    assert_eq!(&b[..], b"written locally");
}

/// Runs futures concurrently and returns their outputs in order.
pub(crate) async fn futures_join<F, T>(futs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
