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
        session.cipher().or(if tree.encrypts() { session.available_cipher() } else { None }),
        tree.encrypts(),
        n.max_read_size,
        n.max_write_size,
    );
}
