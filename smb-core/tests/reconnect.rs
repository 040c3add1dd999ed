//! Handles that survive a new connection, against the real Samba behind a
//! fault proxy of ours (which cuts the connection where we say).

mod common;

use bytes::Bytes;
use common::{creds, pattern};
use smb_core::{Action, Client, ClientConfig, OpenOptions};
use smb_fixture::{FaultProxy, Samba, SHARE};

async fn through_proxy(samba: &Samba) -> (FaultProxy, Client) {
    let proxy = FaultProxy::start(samba.addr());
    let client = Client::connect("127.0.0.1", proxy.port(), ClientConfig::default())
        .await
        .expect("connect through the proxy");
    (proxy, client)
}

#[tokio::test]
async fn open_files_trees_and_sessions_come_back_after_a_reconnect() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "reconnect");
    let data = pattern(3 << 20, 3);
    std::fs::write(local.join("src.bin"), &data).unwrap();
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let reader = tree
        .open(&format!("{dir}/src.bin"), &OpenOptions::read())
        .await
        .unwrap();
    let writer = tree
        .open(&format!("{dir}/dst.bin"), &OpenOptions::create_write())
        .await
        .unwrap();
    let first = reader.read_at(0, 1 << 20).await.unwrap();
    writer.write_at(0, first).await.unwrap();
    let old_session = session.id();
    assert_eq!(client.generation_number(), 1);

    proxy.cut_now();
    let err = reader.read_at(1 << 20, 1 << 20).await.unwrap_err();
    assert_eq!(err.action(), Action::Reconnect, "{err}");
    assert_eq!(client.reconnect(1).await.unwrap(), 2);
    // A second caller that saw the same failure does not dial again.
    assert_eq!(client.reconnect(1).await.unwrap(), 2);
    assert_eq!(proxy.connections(), 2);

    // The same handles go on: the session logs on again, the tree connects
    // again, both files are opened again and keep what was written.
    for off in [1 << 20, 2 << 20] {
        let chunk = reader.read_at(off, 1 << 20).await.unwrap();
        writer.write_at(off, chunk).await.unwrap();
    }
    assert_ne!(session.id(), old_session, "a new logon");
    writer.close().await.unwrap();
    reader.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("dst.bin")).unwrap(), data);
}

#[tokio::test]
async fn a_reopen_finds_a_renamed_file_under_its_new_name() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "reconnect-rename");
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let f = tree
        .open(&format!("{dir}/a.tmp"), &OpenOptions::create_write())
        .await
        .unwrap();
    f.write_at(0, Bytes::from_static(b"hello ")).await.unwrap();
    f.rename(&format!("{dir}/a.txt"), true).await.unwrap();
    proxy.cut_now();
    assert!(f.write_at(6, Bytes::from_static(b"world")).await.is_err());
    client.reconnect(1).await.unwrap();
    f.write_at(6, Bytes::from_static(b"world")).await.unwrap();
    f.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("a.txt")).unwrap(), b"hello world");
    assert!(!local.join("a.tmp").exists());
}

#[tokio::test]
async fn a_server_that_stays_away_fails_each_attempt_with_a_reconnect_action() {
    let samba = Samba::shared();
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    proxy.refuse(true);
    proxy.cut_now();
    assert!(tree.stat("").await.is_err());
    let err = client.reconnect(1).await.unwrap_err();
    assert_eq!(err.action(), Action::Reconnect, "{err}");
    assert_eq!(client.generation_number(), 1);
    // Back up: the next attempt works and the tree is usable again.
    proxy.refuse(false);
    assert_eq!(client.reconnect(1).await.unwrap(), 2);
    tree.stat("").await.unwrap();
}

#[tokio::test]
async fn a_file_deleted_while_away_fails_with_a_reason_naming_it() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "reconnect-gone");
    std::fs::write(local.join("f.bin"), b"data").unwrap();
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let f = tree
        .open(&format!("{dir}/f.bin"), &OpenOptions::read())
        .await
        .unwrap();
    proxy.cut_now();
    assert!(f.read_at(0, 4).await.is_err());
    client.reconnect(1).await.unwrap();
    std::fs::remove_file(local.join("f.bin")).unwrap();
    let err = f.read_at(0, 4).await.unwrap_err();
    assert_eq!(err.action(), Action::GiveUp, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("f.bin") && msg.contains("re-establish"),
        "{msg}"
    );
}
