//! File operations, compounds, directory listing, server-side copy and
//! concurrency on one connection, against the fixture's default Samba.

mod common;

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use common::{connect, connect_with, futures_join, pattern};
use smb_core::{ClientConfig, FileTime, FileTimes, OpenOptions};
use smb_fixture::{Samba, SHARE};

#[tokio::test]
async fn compound_read_write_stat() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "compound");
    let (_, _, tree) = connect(samba, SHARE).await;
    let data = Bytes::from(pattern(100_000, 9));
    let mtime = FileTime(133_000_000_000_000_000);
    let times = FileTimes {
        last_write_time: Some(mtime),
        ..FileTimes::default()
    };
    let info = tree
        .write_file(&format!("{dir}/c.bin"), data.clone(), times)
        .await
        .unwrap();
    assert_eq!(info.size, 100_000);
    assert_eq!(info.last_write_time, mtime);
    assert_eq!(std::fs::read(local.join("c.bin")).unwrap(), data);

    let (got, info) = tree
        .read_file(&format!("{dir}/c.bin"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(info.last_write_time, mtime);
    // Too small a buffer is a clear error, not a truncated read.
    assert!(tree.read_file(&format!("{dir}/c.bin"), 1000).await.is_err());
    // Empty files.
    tree.write_file(&format!("{dir}/empty"), Bytes::new(), FileTimes::default())
        .await
        .unwrap();
    let (e, info) = tree.read_file(&format!("{dir}/empty"), 10).await.unwrap();
    assert!(e.is_empty());
    assert_eq!(info.size, 0);

    let st = tree.stat(&format!("{dir}/c.bin")).await.unwrap();
    assert_eq!(
        (st.size, st.last_write_time, st.is_dir()),
        (100_000, mtime, false)
    );
    assert!(tree.stat(&dir).await.unwrap().is_dir());
    let missing = tree.stat(&format!("{dir}/nope")).await.unwrap_err();
    assert_eq!(
        missing.status(),
        Some(smb_core::NtStatus::OBJECT_NAME_NOT_FOUND)
    );
    // `..` never reaches the wire.
    assert!(matches!(
        tree.stat("a/../b").await,
        Err(smb_core::Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn read_dir_many_unicode() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "listing");
    let mut want = Vec::new();
    for i in 0..1200 {
        let name = format!("fïlé-{i:04}-日本語-😀.txt");
        std::fs::write(local.join(&name), i.to_string()).unwrap();
        want.push(name);
    }
    std::fs::create_dir(local.join("sub ✓")).unwrap();
    want.push("sub ✓".into());
    smb_fixture::chown_to_user(&local).unwrap();
    let (_, _, tree) = connect(samba, SHARE).await;
    let entries = tree.read_dir(&dir).await.unwrap();
    let mut got: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let sub = entries.iter().find(|e| e.name == "sub ✓").unwrap();
    assert!(sub.info.is_dir());
    let f = entries
        .iter()
        .find(|e| e.name.starts_with("fïlé-0999"))
        .unwrap();
    assert_eq!(f.info.size, 3);
    println!("[read_dir] {} entries", entries.len());
}

#[tokio::test]
async fn rename_delete_set_times() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "rename");
    let (_, _, tree) = connect(samba, SHARE).await;
    tree.write_file(
        &format!("{dir}/a"),
        Bytes::from_static(b"A"),
        FileTimes::default(),
    )
    .await
    .unwrap();
    tree.write_file(
        &format!("{dir}/b"),
        Bytes::from_static(b"B"),
        FileTimes::default(),
    )
    .await
    .unwrap();
    // Without replace: collision.
    let err = tree
        .rename(&format!("{dir}/a"), &format!("{dir}/b"), false)
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(smb_core::NtStatus::OBJECT_NAME_COLLISION),
        "{err:?}"
    );
    tree.rename(&format!("{dir}/a"), &format!("{dir}/b"), true)
        .await
        .unwrap();
    assert!(!local.join("a").exists());
    assert_eq!(std::fs::read(local.join("b")).unwrap(), b"A");

    // Rename through an open handle into a new sub directory.
    tree.create_dir(&format!("{dir}/d")).await.unwrap();
    tree.create_dir(&format!("{dir}/d")).await.unwrap(); // already there: fine
    let f = tree
        .open(
            &format!("{dir}/b"),
            &OpenOptions {
                read: true,
                delete: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    f.rename(&format!("{dir}/d/c"), false).await.unwrap();
    f.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("d/c")).unwrap(), b"A");

    // set_times round trip, by path and by handle.
    let t1 = FileTime(132_000_000_000_000_000);
    let t2 = FileTime(131_000_000_000_000_000);
    tree.set_times(
        &format!("{dir}/d/c"),
        FileTimes {
            last_write_time: Some(t1),
            creation_time: Some(t2),
            ..FileTimes::default()
        },
    )
    .await
    .unwrap();
    let st = tree.stat(&format!("{dir}/d/c")).await.unwrap();
    assert_eq!(st.last_write_time, t1);
    let local_mtime = std::fs::metadata(local.join("d/c"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(FileTime::from_system_time(local_mtime), t1);
    let f = tree
        .open(
            &format!("{dir}/d/c"),
            &OpenOptions {
                write: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    let t3 = FileTime(130_000_000_000_000_000);
    f.set_times(FileTimes {
        last_write_time: Some(t3),
        ..FileTimes::default()
    })
    .await
    .unwrap();
    f.set_len(10).await.unwrap();
    let q = f.query_info().await.unwrap();
    assert_eq!((q.size, q.last_write_time), (10, t3));
    f.close().await.unwrap();

    // Delete: by path, by delete-on-close, and a directory.
    let err = tree.remove_dir(&format!("{dir}/d")).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(smb_core::NtStatus::DIRECTORY_NOT_EMPTY),
        "{err:?}"
    );
    tree.remove_file(&format!("{dir}/d/c")).await.unwrap();
    tree.remove_dir(&format!("{dir}/d")).await.unwrap();
    assert!(!local.join("d").exists());
    tree.write_file(
        &format!("{dir}/e"),
        Bytes::from_static(b"E"),
        FileTimes::default(),
    )
    .await
    .unwrap();
    let f = tree
        .open(
            &format!("{dir}/e"),
            &OpenOptions {
                delete: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    f.set_delete_on_close().await.unwrap();
    f.close().await.unwrap();
    assert!(!local.join("e").exists());
}

#[tokio::test]
async fn server_side_copy() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "copychunk");
    let data = pattern(3 * 1024 * 1024 + 1234, 5);
    std::fs::write(local.join("src"), &data).unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let (_, _, tree) = connect(samba, SHARE).await;
    let src = tree
        .open(&format!("{dir}/src"), &OpenOptions::read())
        .await
        .unwrap();
    let key = src.resume_key().await.unwrap();
    let dst = tree
        .open(&format!("{dir}/dst"), &OpenOptions::create_write())
        .await
        .unwrap();
    let n = dst
        .server_copy(key, &[(0, 0, data.len() as u32)])
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    dst.close().await.unwrap();
    src.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("dst")).unwrap(), data);
}

/// Block `i` of the big file: 1 MiB of a base pattern with `i` in its first 8 bytes.
fn block(base: &[u8], i: u64) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

#[tokio::test]
async fn concurrent_reads_one_file() {
    const MIB: usize = 1 << 20;
    const BLOCKS: u64 = 256;
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "concurrent");
    let base = pattern(MIB, 11);
    {
        let mut f = std::io::BufWriter::with_capacity(
            4 * MIB,
            std::fs::File::create(local.join("big")).unwrap(),
        );
        for i in 0..BLOCKS {
            f.write_all(&block(&base, i)).unwrap();
        }
        f.flush().unwrap();
    }
    smb_fixture::chown_to_user(&local).unwrap();
    let (client, _, tree) = connect(samba, SHARE).await;
    let file = tree
        .open(&format!("{dir}/big"), &OpenOptions::read())
        .await
        .unwrap();
    let base = Arc::new(base);
    let start = std::time::Instant::now();
    // 64 workers, each keeping one 1 MiB read in flight: 64 concurrent reads.
    let workers = (0..64u64).map(|w| {
        let file = file.clone();
        let base = Arc::clone(&base);
        async move {
            let mut i = w;
            while i < BLOCKS {
                let got = file.read_at(i * MIB as u64, MIB as u32).await.unwrap();
                assert_eq!(got.len(), MIB);
                assert_eq!(got[..8], i.to_le_bytes());
                assert!(got[8..] == base[8..], "block {i} differs");
                i += 64;
            }
        }
    });
    futures_join(workers).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "[concurrent_reads] 256 MiB in {secs:.2}s, credits available after: {}",
        client.credits_available()
    );
    assert_eq!(
        file.read_at(BLOCKS * MIB as u64, MIB as u32)
            .await
            .unwrap()
            .len(),
        0
    );
    file.close().await.unwrap();
    assert_eq!(client.credits_in_flight(), 0);
}

#[tokio::test]
async fn credits_never_run_out() {
    let samba = Samba::shared();
    let (dir, _local) = samba.unique_dir(SHARE, "credits");
    let mut cfg = ClientConfig::default();
    cfg.credit_target = 32;
    let (client, _, tree) = connect_with(samba, SHARE, cfg).await;
    let f = tree
        .open(&format!("{dir}/f"), &OpenOptions::create_write())
        .await
        .unwrap();
    f.write_at(0, Bytes::from(pattern(256 * 1024, 1)))
        .await
        .unwrap();
    let ops = (0..256u64).map(|i| {
        let f = f.clone();
        let tree = tree.clone();
        let client = client.clone();
        let path = format!("{dir}/f");
        async move {
            match i % 4 {
                0 => {
                    let b = f.read_at(i * 512, 4096).await.unwrap();
                    assert_eq!(b.len(), 4096);
                }
                1 => {
                    f.write_at(300_000 + i * 100, Bytes::from(vec![i as u8; 100]))
                        .await
                        .unwrap();
                }
                2 => client.echo().await.unwrap(),
                _ => {
                    tree.stat(&path).await.unwrap();
                }
            }
        }
    });
    futures_join(ops).await;
    // Large reads (charge 16) with a small window still go through.
    let reads = (0..16u64).map(|_| {
        let f = f.clone();
        async move { f.read_at(0, 1 << 20).await.unwrap().len() }
    });
    let sizes = futures_join(reads).await;
    assert!(
        sizes.iter().all(|n| *n == 300_000 + 253 * 100 + 100),
        "{sizes:?}"
    );
    f.close().await.unwrap();
    let avail = client.credits_available();
    println!("[credits] available after 256 concurrent ops with target 32: {avail}");
    assert_eq!(client.credits_in_flight(), 0);
    // Samba grants at least the charge and may grant on interim and final
    // replies, so the window settles near (not exactly at) the target.
    assert!((1..=512).contains(&avail), "{avail}");
}

#[tokio::test]
async fn concurrent_reads_encrypted_share() {
    const MIB: usize = 1 << 20;
    const BLOCKS: u64 = 16;
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(smb_fixture::ENC_SHARE, "enc-concurrent");
    let base = pattern(MIB, 13);
    let mut all = Vec::with_capacity(BLOCKS as usize * MIB);
    for i in 0..BLOCKS {
        all.extend_from_slice(&block(&base, i));
    }
    std::fs::write(local.join("big"), &all).unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let (client, session, tree) = connect(samba, smb_fixture::ENC_SHARE).await;
    assert!(tree.encrypts());
    common::report("enc_concurrent", &client, &session, &tree);
    let file = tree
        .open(&format!("{dir}/big"), &OpenOptions::read())
        .await
        .unwrap();
    let reads = (0..BLOCKS).map(|i| {
        let file = file.clone();
        async move { (i, file.read_at(i * MIB as u64, MIB as u32).await.unwrap()) }
    });
    for (i, got) in futures_join(reads).await {
        assert!(
            got[..] == all[i as usize * MIB..(i as usize + 1) * MIB],
            "block {i}"
        );
    }
    // Concurrent encrypted writes too.
    let out = tree
        .open(&format!("{dir}/copy"), &OpenOptions::create_write())
        .await
        .unwrap();
    let all = Bytes::from(all);
    let writes = (0..BLOCKS).map(|i| {
        let out = out.clone();
        let chunk = all.slice(i as usize * MIB..(i as usize + 1) * MIB);
        async move { out.write_at(i * MIB as u64, chunk).await.unwrap() }
    });
    futures_join(writes).await;
    out.close().await.unwrap();
    file.close().await.unwrap();
    assert!(std::fs::read(local.join("copy")).unwrap() == all[..]);
}

#[tokio::test]
async fn read_dir_edge_cases() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "dir-edges");
    let (_, _, tree) = connect(samba, SHARE).await;
    // Empty directory: the first compound already ends with NO_MORE_FILES.
    assert!(tree.read_dir(&dir).await.unwrap().is_empty());
    // Missing directory and a file instead of a directory.
    let err = tree.read_dir(&format!("{dir}/missing")).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(smb_core::NtStatus::OBJECT_NAME_NOT_FOUND),
        "{err:?}"
    );
    std::fs::write(local.join("file"), b"x").unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let err = tree.read_dir(&format!("{dir}/file")).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(smb_core::NtStatus::NOT_A_DIRECTORY),
        "{err:?}"
    );
    // The share root, through the streaming lister.
    let mut l = tree.list_dir("").await.unwrap();
    let mut n = 0;
    while let Some(b) = l.next_batch().await.unwrap() {
        n += b.len();
    }
    l.close().await.unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn unbuffered_and_sequential_io() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "unbuffered");
    let (_, _, tree) = connect(samba, SHARE).await;
    let data = pattern(2 * 1024 * 1024, 21);
    let opts = OpenOptions {
        unbuffered: true,
        sequential: true,
        ..OpenOptions::create_write()
    };
    let f = tree.open(&format!("{dir}/u.bin"), &opts).await.unwrap();
    for (i, c) in data.chunks(1 << 20).enumerate() {
        f.write_at((i << 20) as u64, Bytes::copy_from_slice(c))
            .await
            .unwrap();
    }
    let back = f.read_at(0, 2 << 20).await.unwrap();
    assert!(back[..] == data[..]);
    f.close().await.unwrap();
    assert!(std::fs::read(local.join("u.bin")).unwrap() == data);
}

#[tokio::test]
async fn cancelled_callers_leak_nothing() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "cancel");
    std::fs::write(local.join("f"), pattern(4 << 20, 2)).unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let mut cfg = ClientConfig::default();
    cfg.credit_target = 64;
    let (client, _, tree) = connect_with(samba, SHARE, cfg).await;
    let f = tree
        .open(&format!("{dir}/f"), &OpenOptions::read())
        .await
        .unwrap();
    for round in 0..5 {
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                let f = f.clone();
                tokio::spawn(async move { f.read_at((i % 4) << 20, 1 << 20).await })
            })
            .collect();
        // Abort every other caller wherever it is: waiting for credits, for a
        // writer slot, or for its reply.
        for (i, t) in tasks.iter().enumerate() {
            if i % 2 == round % 2 {
                t.abort();
            }
        }
        for t in tasks {
            if let Ok(r) = t.await {
                assert_eq!(r.unwrap().len(), 1 << 20);
            }
        }
    }
    // Replies of aborted callers still arrive and return their credits.
    for _ in 0..100 {
        if client.credits_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(client.credits_in_flight(), 0);
    assert!(
        client.credits_available() >= 17,
        "{}",
        client.credits_available()
    );
    client.echo().await.unwrap();
    f.close().await.unwrap();
}

/// The credit target bounds the credits (so the bytes) in flight even when
/// the server grants more than asked: 64 queued 1 MiB reads (16 credits
/// each) never have more than `credit_target` credits outstanding.
#[tokio::test]
async fn credit_target_caps_bytes_in_flight() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "cap");
    std::fs::write(local.join("f"), pattern(4 << 20, 3)).unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let mut cfg = ClientConfig::default();
    cfg.credit_target = 100;
    cfg.max_io_size = 1 << 20;
    let (client, _, tree) = connect_with(samba, SHARE, cfg).await;
    let f = tree
        .open(&format!("{dir}/f"), &OpenOptions::read())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move { f.read_at((i % 4) << 20, 1 << 20).await })
        })
        .collect();
    let mut peak = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        peak = peak.max(client.credits_in_flight());
        tokio::task::yield_now().await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 1 << 20);
    }
    assert!(peak > 16, "reads were pipelined (peak {peak})");
    assert!(peak <= 100, "credits in flight {peak} exceed the target");
    assert_eq!(client.credits_in_flight(), 0);
    f.close().await.unwrap();
}

/// `read_at_into`: READ data straight into a local file (spliced on Linux
/// when unsigned; from memory when signed), many reads in flight, the tail
/// at end of file, a failing destination, and the connection still in
/// frame afterwards.
#[tokio::test]
async fn read_at_into_local_files() {
    const MIB: usize = 1 << 20;
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "read_into");
    // 40 MiB + 12345 bytes: full 8 MiB reads, a short tail, and a small one.
    let size = 40 * MIB + 12_345;
    let data = pattern(size, 21);
    std::fs::write(local.join("src.bin"), &data).unwrap();
    smb_fixture::chown_to_user(&local).unwrap();
    let out_dir = tempfile::tempdir().unwrap();

    for sign in [false, true] {
        let mut cfg = ClientConfig::default();
        cfg.sign = sign;
        let (client, _, tree) = connect_with(samba, SHARE, cfg).await;
        let file = tree
            .open(&format!("{dir}/src.bin"), &OpenOptions::read())
            .await
            .unwrap();
        assert_eq!(
            file.reads_into_files_directly(),
            cfg!(target_os = "linux") && !sign
        );
        let out_path = out_dir.path().join(format!("out-{sign}"));
        let out = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&out_path)
                .unwrap(),
        );
        let max = client.negotiated().max_read_size as usize;
        let block = max.min(8 * MIB);
        // Destination offset shifted by 100 bytes: data lands where asked.
        let reads = (0..size.div_ceil(block)).map(|i| {
            let (file, out) = (file.clone(), Arc::clone(&out));
            async move {
                let off = (i * block) as u64;
                let n = file
                    .read_at_into(off, block as u32, &out, off + 100)
                    .await
                    .unwrap();
                (i, n as usize)
            }
        });
        for (i, n) in futures_join(reads).await {
            assert_eq!(n, block.min(size - i * block), "read {i}");
        }
        // A small read (under the splice threshold) and reads at/past the end.
        let tail_at = (size + 100) as u64;
        let n = file.read_at_into(5, 1000, &out, tail_at).await.unwrap();
        assert_eq!(n, 1000);
        assert_eq!(
            file.read_at_into(size as u64, 10, &out, 0).await.unwrap(),
            0
        );
        let got = std::fs::read(&out_path).unwrap();
        assert_eq!(got.len(), size + 1100);
        assert!(got[..100].iter().all(|b| *b == 0));
        assert!(
            got[100..size + 100] == data[..],
            "sign={sign}: data differs"
        );
        assert!(got[size + 100..] == data[5..1005]);

        // A destination that cannot be written: an I/O error for that read
        // only; the payload is consumed and the next reads work.
        let ro = Arc::new(std::fs::File::open(&out_path).unwrap());
        let err = file
            .read_at_into(0, block as u32, &ro, 0)
            .await
            .unwrap_err();
        assert!(matches!(err, smb_core::Error::Io(_)), "{err:?}");
        let again = file.read_at(MIB as u64, MIB as u32).await.unwrap();
        assert!(again[..] == data[MIB..2 * MIB]);
        file.close().await.unwrap();
        assert_eq!(client.credits_in_flight(), 0);
    }
}

/// `write_at_from`: WRITE data taken from a local file (spliced on Linux
/// when unsigned; through memory when signed), many writes in flight, and
/// a source too short: an error for that write, zeros on the wire, and the
/// connection still in frame afterwards.
#[tokio::test]
async fn write_at_from_local_files() {
    const MIB: usize = 1 << 20;
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "write_from");
    let size = 30 * MIB + 4321;
    let data = pattern(size, 33);
    let src_dir = tempfile::tempdir().unwrap();
    let src_path = src_dir.path().join("src.bin");
    std::fs::write(&src_path, &data).unwrap();
    let src = Arc::new(std::fs::File::open(&src_path).unwrap());

    for sign in [false, true] {
        let mut cfg = ClientConfig::default();
        cfg.sign = sign;
        let (client, _, tree) = connect_with(samba, SHARE, cfg).await;
        let name = format!("{dir}/up-{sign}");
        let file = tree
            .open(&name, &OpenOptions::create_write())
            .await
            .unwrap();
        let block = (client.negotiated().max_write_size as usize).min(8 * MIB);
        let writes = (0..size.div_ceil(block)).map(|i| {
            let (file, src) = (file.clone(), Arc::clone(&src));
            async move {
                let off = i * block;
                let len = block.min(size - off) as u32;
                let n = file
                    .write_at_from(off as u64, len, &src, off as u64)
                    .await
                    .unwrap();
                assert_eq!(n, len, "write {i}");
            }
        });
        futures_join(writes).await;
        // Past the end of the source: an error, whatever the server did.
        let err = file
            .write_at_from(size as u64, MIB as u32, &src, (size - 100) as u64)
            .await
            .unwrap_err();
        assert!(matches!(err, smb_core::Error::Io(_)), "{err:?}");
        // The stream stayed in frame: a normal write and read still work.
        file.write_at(0, Bytes::from(data[..4096].to_vec()))
            .await
            .unwrap();
        file.close().await.unwrap();
        let got = std::fs::read(local.join(format!("up-{sign}"))).unwrap();
        assert!(got[..size] == data[..], "sign={sign}: data differs");
        assert_eq!(client.credits_in_flight(), 0);
    }
}

#[tokio::test]
async fn write_file_as_replaces_through_the_temp() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "write_as");
    let (_, _, tree) = connect(samba, SHARE).await;
    let mtime = FileTime(133_000_000_000_000_000);
    let times = FileTimes {
        last_write_time: Some(mtime),
        ..FileTimes::default()
    };
    let (temp, dest) = (format!("{dir}/.a.tmp"), format!("{dir}/a"));
    std::fs::write(local.join("a"), b"old contents, longer than the new").unwrap();
    let data = Bytes::from(pattern(70_000, 3));
    let info = tree
        .write_file_as(&temp, &dest, data.clone(), times)
        .await
        .unwrap();
    // The times were set before the data and survive it.
    assert_eq!((info.size, info.last_write_time), (70_000, mtime));
    assert_eq!(std::fs::read(local.join("a")).unwrap(), data);
    assert!(!local.join(".a.tmp").exists());
    let st = tree.stat(&dest).await.unwrap();
    assert_eq!((st.size, st.last_write_time), (70_000, mtime));

    // Empty file, no times.
    let info = tree
        .write_file_as(
            &temp,
            &format!("{dir}/e"),
            Bytes::new(),
            FileTimes::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.size, 0);
    assert_eq!(std::fs::read(local.join("e")).unwrap(), b"");
}

#[tokio::test]
async fn write_file_as_failures_leave_no_temp() {
    let samba = Samba::shared();
    let (dir, local) = samba.unique_dir(SHARE, "write_as_fail");
    let (_, _, tree) = connect(samba, SHARE).await;
    let data = Bytes::from_static(b"new");
    let temp = format!("{dir}/.x.tmp");

    // The final name is a directory: the rename fails, the temp goes.
    std::fs::create_dir(local.join("d")).unwrap();
    let (step, err) = tree
        .write_file_as(
            &temp,
            &format!("{dir}/d"),
            data.clone(),
            FileTimes::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(step, smb_core::WriteStep::Rename, "{err:?}");
    assert!(err.status().is_some(), "{err:?}");
    assert!(local.join("d").is_dir());
    assert!(!local.join(".x.tmp").exists());

    // The final directory is missing: the rename fails, the temp goes.
    let (step, err) = tree
        .write_file_as(
            &temp,
            &format!("{dir}/nope/x"),
            data.clone(),
            FileTimes::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(step, smb_core::WriteStep::Rename, "{err:?}");
    assert_eq!(
        err.status(),
        Some(smb_core::NtStatus::OBJECT_PATH_NOT_FOUND),
        "{err:?}"
    );
    assert!(!local.join(".x.tmp").exists());

    // The temp cannot be created: nothing happens to the final name.
    std::fs::write(local.join("keep"), b"kept").unwrap();
    let (step, _) = tree
        .write_file_as(
            &format!("{dir}/nope/.t"),
            &format!("{dir}/keep"),
            data,
            FileTimes::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(step, smb_core::WriteStep::Create);
    assert_eq!(std::fs::read(local.join("keep")).unwrap(), b"kept");
    assert_eq!(std::fs::read_dir(&local).unwrap().count(), 2); // d, keep
}
