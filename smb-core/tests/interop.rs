//! Servers with tight limits (issue 16), against real Samba configured for
//! each: small MaxTransactSize, SMB 2.0.2 (no multi-credit), a small credit
//! window. Every test lists a directory with several batches of entries,
//! moves a file bigger than the credit window both ways and checks the bytes
//! through the share's local path. Also: Samba keeps times set before the
//! WRITE (the fast path stays on), and compounds on an encrypted share go
//! in one TRANSFORM_HEADER over the whole chain, as Windows sends them.

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

/// FileTime (100 ns since 1601) of a Unix time in seconds.
fn filetime(unix: u64) -> smb_core::FileTime {
    smb_core::FileTime((unix + 11_644_473_600) * 10_000_000)
}

#[tokio::test]
async fn samba_keeps_times_set_before_the_write() {
    let samba = Samba::shared();
    let (_c, _s, t) = connect_with(samba, SHARE, ClientConfig::default()).await;
    let (dir, local) = samba.unique_dir(SHARE, "times");
    let unix = 1_600_000_000;
    let times = FileTimes {
        last_write_time: Some(filetime(unix)),
        ..FileTimes::default()
    };
    for i in 0..10 {
        let info = t
            .write_file_as(
                &format!("{dir}/.f{i}.tmp"),
                &format!("{dir}/f{i}.bin"),
                Bytes::from(pattern(1000 + i, 1)),
                times,
            )
            .await
            .expect("write_file_as");
        assert_eq!(info.last_write_time, filetime(unix));
        let info = t
            .write_file(
                &format!("{dir}/g{i}.bin"),
                Bytes::from(pattern(10, 2)),
                times,
            )
            .await
            .expect("write_file");
        assert_eq!(info.last_write_time, filetime(unix));
    }
    // The CLOSE showed the time held: still times before the WRITE.
    assert!(!t.sets_times_after_write());
    for i in 0..10 {
        for name in [format!("f{i}.bin"), format!("g{i}.bin")] {
            let m = std::fs::metadata(local.join(&name))
                .unwrap()
                .modified()
                .unwrap();
            let want = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
            assert_eq!(m, want, "{name}");
        }
    }
}

#[tokio::test]
async fn small_file_compounds_on_an_encrypted_share() {
    let samba = Samba::get(&ServerConfig::new().encrypt_required());
    let (_c, _s, t) = connect_with(samba, SHARE, ClientConfig::default()).await;
    assert!(t.encrypts());
    let (dir, local) = samba.unique_dir(SHARE, "sealed");
    for i in 0..20usize {
        let data = Bytes::from(pattern(100 + i * 997, i as u8));
        // CREATE+SET_INFO+WRITE, then SET_INFO(rename)+CLOSE.
        t.write_file_as(
            &format!("{dir}/.s{i}.tmp"),
            &format!("{dir}/s{i}.bin"),
            data.clone(),
            FileTimes {
                last_write_time: Some(filetime(1_500_000_000)),
                ..FileTimes::default()
            },
        )
        .await
        .expect("write_file_as");
        // CREATE+WRITE+CLOSE.
        t.write_file(
            &format!("{dir}/w{i}.bin"),
            data.clone(),
            FileTimes::default(),
        )
        .await
        .expect("write_file");
        // CREATE+READ+CLOSE.
        let (b, _) = t
            .read_file(&format!("{dir}/s{i}.bin"), 65536)
            .await
            .expect("read_file");
        assert_eq!(b, data);
        assert_eq!(
            std::fs::read(local.join(format!("w{i}.bin"))).unwrap(),
            data
        );
    }
    // CREATE+QUERY_DIRECTORY+QUERY_DIRECTORY, and CREATE+CLOSE.
    let listed = t.read_dir(&dir).await.expect("read_dir");
    assert_eq!(listed.len(), 40);
    t.stat(&format!("{dir}/s0.bin")).await.expect("stat");
    assert!(!t.sets_times_after_write());
}

mod sealed_frame {
    //! The layout of an encrypted compound, as MS-SMB2 3.2.4.1.4 and
    //! 3.1.4.3 have it and Windows sends it: one TRANSFORM_HEADER whose
    //! plaintext is the whole chain, every element but the last 8-byte
    //! aligned, none signed (the transform authenticates them).

    use std::sync::Arc;

    use smb_core::crypto::{Cipher, SessionCipher, TRANSFORM_HEADER_LEN};
    use smb_core::proto::conn::Assigned;
    use smb_core::proto::frame::{build, FrameCipher, FrameSigner, OutMsg, Security};
    use smb_core::wire::create::{encode_close, FileId};
    use smb_core::wire::header::{
        split_compound, Header, TransformHeader, FLAG_RELATED, FLAG_SIGNED, HEADER_LEN,
    };
    use smb_core::wire::io::encode_read;
    use smb_core::wire::{Command, Writer};

    #[derive(Debug)]
    struct Sealer(SessionCipher);

    impl FrameCipher for Sealer {
        fn encrypt_in_place(&self, frame: &mut [u8]) -> smb_core::Result<()> {
            self.0
                .encrypt_in_place(0x55, frame)
                .map_err(|e| smb_core::Error::Protocol(e.to_string()))
        }
        fn decrypt_in_place(&self, _frame: &mut [u8]) -> smb_core::Result<()> {
            unreachable!("the test decrypts with the server's keys")
        }
    }

    /// A signer that must not be used when the frame is sealed.
    #[derive(Debug)]
    struct NoSign;

    impl FrameSigner for NoSign {
        fn sign(&self, _msg: &mut [u8]) {
            panic!("a sealed message was signed");
        }
        fn sign_parts(&self, _head: &mut [u8], _payload: &[u8]) {
            panic!("a sealed message was signed");
        }
        fn verify(&self, _msg: &[u8]) -> bool {
            true
        }
    }

    fn msg(command: Command, body: impl FnOnce(&mut Writer), related: bool) -> OutMsg {
        let mut w = Writer::new();
        w.zeros(HEADER_LEN);
        body(&mut w);
        OutMsg {
            command,
            msg: w,
            payload: None,
            file_len: 0,
            tree_id: 7,
            session_id: 0x55,
            related,
            replay: false,
        }
    }

    #[test]
    fn a_compound_is_one_transform_over_the_whole_chain() {
        let (c2s, s2c) = ([1u8; 16], [2u8; 16]);
        let client = SessionCipher::new(Cipher::Aes128Gcm, &c2s, &s2c, 9).unwrap();
        let server = SessionCipher::new(Cipher::Aes128Gcm, &s2c, &c2s, 3).unwrap();
        let sec = Security {
            signer: Some(Arc::new(NoSign)),
            cipher: Some(Arc::new(Sealer(client))),
        };
        // A READ of odd size first, so padding is needed, then a related CLOSE.
        let msgs = vec![
            msg(
                Command::READ,
                |w| encode_read(w, FileId([3; 16]), 0, 100, 0),
                false,
            ),
            msg(
                Command::CLOSE,
                |w| encode_close(w, FileId::RELATED, 1),
                true,
            ),
            msg(
                Command::CLOSE,
                |w| encode_close(w, FileId::RELATED, 1),
                true,
            ),
        ];
        let a = Assigned {
            ids: vec![10, 11, 12],
            charges: vec![1, 1, 1],
            credit_requests: vec![8, 8, 8],
            channel_sequence: 0,
        };
        let parts = build(msgs, &a, &sec, None).unwrap();
        assert_eq!(
            parts.len(),
            1,
            "one buffer: length prefix and one transform"
        );
        let mut frame = parts[0].to_vec();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        let t = TransformHeader::decode(&frame[4..]).unwrap();
        assert_eq!(t.session_id, 0x55);
        assert_eq!(t.original_message_size as usize, len - TRANSFORM_HEADER_LEN);
        // No second transform header anywhere: the rest is ciphertext of
        // the chain, which decrypts as one.
        let plain = server.decrypt_in_place(&mut frame[4..]).unwrap().to_vec();
        let ranges = split_compound(&plain).unwrap();
        assert_eq!(ranges.len(), 3);
        for (i, (a, b)) in ranges.iter().copied().enumerate() {
            let h = Header::decode(&plain[a..b]).unwrap();
            assert_eq!(h.message_id, 10 + i as u64);
            assert_eq!(h.session_id, 0x55);
            assert_eq!(h.flags & FLAG_SIGNED, 0, "element {i} flagged signed");
            assert_eq!(h.signature, [0; 16], "element {i} carries a signature");
            assert_eq!(h.flags & FLAG_RELATED != 0, i > 0);
            if i < 2 {
                assert_eq!(a % 8, 0);
                assert_eq!(h.next_command as usize, b - a);
                assert_eq!((b - a) % 8, 0);
            } else {
                assert_eq!(h.next_command, 0);
                // The last element is not padded (MS-SMB2 3.2.4.1.4).
                assert_eq!(b - a, HEADER_LEN + 24);
            }
        }
    }
}
