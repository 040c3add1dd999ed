//! Servers with tight limits (issue 16), against real Samba configured for
//! each: small MaxTransactSize, SMB 2.0.2 (no multi-credit), a small credit
//! window. Every test lists a directory with several batches of entries,
//! moves a file bigger than the credit window both ways and checks the bytes
//! through the share's local path.

mod common;

use bytes::Bytes;
use common::{connect_with, pattern};
use smb_core::{ClientConfig, FileTimes, OpenOptions, Tree};
use smb_fixture::{MaxProtocol, Samba, ServerConfig, SHARE};

/// Lists, writes and reads through `tree` and checks it all locally.
async fn round_trip(samba: &Samba, tree: &Tree, prefix: &str) {
    let (dir, local) = samba.unique_dir(SHARE, prefix);
    // Enough entries (long names) for several QUERY_DIRECTORY replies of 64 KiB.
    let mut names: Vec<String> = (0..700)
        .map(|i| format!("{i:04}-{}", "n".repeat(100)))
        .collect();
    for n in &names {
        std::fs::write(local.join(n), b"x").unwrap();
    }
    let mut listed: Vec<String> = tree
        .read_dir(&dir)
        .await
        .expect("read_dir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);

    // A file larger than any window under test, written and read in the
    // largest pieces the tree allows now.
    let data = pattern(5 * 1024 * 1024 + 17, 9);
    let limits = tree.io_limits();
    let f = tree
        .open(&format!("{dir}/big.bin"), &OpenOptions::create_write())
        .await
        .expect("create");
    let mut off = 0;
    while off < data.len() {
        let end = (off + limits.write as usize).min(data.len());
        let n = f
            .write_at(off as u64, Bytes::copy_from_slice(&data[off..end]))
            .await
            .expect("write_at");
        off += n as usize;
    }
    f.close().await.expect("close");
    assert!(std::fs::read(local.join("big.bin")).unwrap() == data);
    let f = tree
        .open(&format!("{dir}/big.bin"), &OpenOptions::read())
        .await
        .expect("open");
    let mut got = Vec::new();
    loop {
        // Ask for more than the limit: the library caps it.
        let chunk = f.read_at(got.len() as u64, 8 << 20).await.expect("read_at");
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    f.close().await.expect("close");
    assert!(got == data, "read back {} bytes", got.len());

    // Small-file compounds.
    let small = Bytes::from(pattern(40_000, 3));
    tree.write_file_as(
        &format!("{dir}/.small.tmp"),
        &format!("{dir}/small.bin"),
        small.clone(),
        FileTimes::default(),
    )
    .await
    .expect("write_file_as");
    assert_eq!(std::fs::read(local.join("small.bin")).unwrap(), small);
    assert!(!local.join(".small.tmp").exists());
    let (b, _) = tree
        .read_file(&format!("{dir}/small.bin"), 65536)
        .await
        .expect("read_file");
    assert_eq!(b, small);
    tree.stat(&format!("{dir}/small.bin")).await.expect("stat");
    tree.rename(
        &format!("{dir}/small.bin"),
        &format!("{dir}/renamed.bin"),
        true,
    )
    .await
    .expect("rename");
    tree.remove_file(&format!("{dir}/renamed.bin"))
        .await
        .expect("remove");
    assert!(!local.join("renamed.bin").exists());
}

async fn run(name: &str, server: ServerConfig) -> Tree {
    let samba = Samba::get(&server);
    let (_c, _s, t) = connect_with(samba, SHARE, ClientConfig::default()).await;
    round_trip(samba, &t, name).await;
    t
}

#[tokio::test]
async fn max_trans_64k() {
    let t = run(
        "trans64k",
        ServerConfig::new().global("smb2 max trans = 65536"),
    )
    .await;
    assert_eq!(t.io_limits().transact, 65536);
}

#[tokio::test]
async fn max_trans_200000() {
    run(
        "trans200k",
        ServerConfig::new().global("smb2 max trans = 200000"),
    )
    .await;
}

#[tokio::test]
async fn server_max_smb2_02() {
    let t = run(
        "smb202",
        ServerConfig::new().max_protocol(MaxProtocol::Smb2_02),
    )
    .await;
    let l = t.io_limits();
    assert_eq!((l.read, l.write, l.transact), (65536, 65536, 65536));
}

#[tokio::test]
async fn max_credits_32() {
    let t = run(
        "credits32",
        ServerConfig::new().global("smb2 max credits = 32"),
    )
    .await;
    let l = t.io_limits();
    assert!(l.read <= 32 * 65536 && l.write <= 32 * 65536, "{l:?}");
}
