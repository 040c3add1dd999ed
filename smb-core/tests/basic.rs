//! End-to-end basics against the fixture's default Samba (SMB 3.1.1).

mod common;

use bytes::Bytes;
use common::{connect, pattern, report};
use smb_core::{Dialect, FileTimes, OpenOptions};
use smb_fixture::{Samba, SHARE};

#[tokio::test]
async fn write_read_round_trip() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "basic");
    let (client, session, tree) = connect(samba, SHARE).await;
    report("basic", &client, &session, &tree);
    assert_eq!(client.negotiated().dialect, Dialect::SMB3_1_1);
    client.echo().await.unwrap();

    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let f = tree
        .open(&format!("{dir}/a.bin"), &OpenOptions::create_write())
        .await
        .unwrap();
    let mut off = 0;
    for chunk in data.chunks(1 << 20) {
        let n = f
            .write_at(off, Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
        assert_eq!(n as usize, chunk.len());
        off += n as u64;
    }
    f.flush().await.unwrap();
    let info = f.close().await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(std::fs::read(local.join("a.bin")).unwrap(), data);

    let f = tree
        .open(&format!("{dir}/a.bin"), &OpenOptions::read())
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        let b = f.read_at(got.len() as u64, 1 << 20).await.unwrap();
        if b.is_empty() {
            break;
        }
        got.extend_from_slice(&b);
    }
    assert_eq!(got, data);
    let q = f.query_info().await.unwrap();
    assert_eq!(q.size, data.len() as u64);
    f.close().await.unwrap();

    let st = tree.stat(&format!("{dir}/a.bin")).await.unwrap();
    assert_eq!(st.size, data.len() as u64);
    let entries = tree.read_dir(&dir).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "a.bin");
    tree.remove_file(&format!("{dir}/a.bin")).await.unwrap();
    assert!(!local.join("a.bin").exists());
    let _ = FileTimes::default();
    tree.disconnect().await.unwrap();
    session.logoff().await.unwrap();
}
