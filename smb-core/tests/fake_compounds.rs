//! Compounds against scripted servers whose behaviour Samba cannot show
//! (issue 16): one that takes a related FileId only from a CREATE in the same
//! chain (a related CLOSE after SET_INFO on an explicit FileId gets
//! STATUS_INVALID_HANDLE), one that grants exactly one credit per reply, and
//! one that moves a file's write time on every WRITE, even after the client
//! set it (Samba keeps a time set on the handle).
//! The server replays bodies captured from the fixture's Samba and records
//! every frame it gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use smb_core::wire::header::{split_compound, Header, FLAG_RELATED, FLAG_RESPONSE};
use smb_core::wire::negotiate::{NegotiateResponse, CAP_LARGE_MTU, SECURITY_SIGNING_ENABLED};
use smb_core::wire::{Command, Dialect, NtStatus, Writer};
use smb_core::{Client, ClientConfig, Credentials, FileTimes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SESSION_MORE: &[u8] = include_bytes!("../src/wire/testdata/session_setup_more.bin");
const TREE: &[u8] = include_bytes!("../src/wire/testdata/tree_connect.bin");
const CREATE: &[u8] = include_bytes!("../src/wire/testdata/create.bin");
const CLOSE: &[u8] = include_bytes!("../src/wire/testdata/close.bin");

/// How the scripted server behaves.
#[derive(Clone, Copy)]
struct Script {
    /// Refuse a related request unless the chain starts with a CREATE.
    related_only_after_create: bool,
    /// Credits granted on every reply.
    credits: u16,
    /// Every WRITE sets the write time to [`WRITE_TIME`]; CLOSE reports it.
    mtime_on_write: bool,
}

/// The write time a WRITE leaves on the scripted server that moves it.
const WRITE_TIME: u64 = 0x01DC_0000_0000_0000;

/// The scripted file system: one write time for whatever is open.
struct Files {
    mtime: u64,
}

/// One request as received: command, related flag, position in its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    command: Command,
    related: bool,
    /// Index inside its compound (0: first or alone).
    index: usize,
    /// Requests in its frame.
    of: usize,
    /// The status we answered.
    status: NtStatus,
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(b)
}

fn negotiate_body() -> Vec<u8> {
    let mut w = Writer::new();
    w.zeros(64);
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
    w.into_vec()[64..].to_vec()
}

/// A CLOSE reply with post-query attributes carrying `mtime`.
fn close_with_times(mtime: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(60);
    w.u16(1); // SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB
    w.u32(0);
    for t in [mtime, mtime, mtime, mtime] {
        w.u64(t);
    }
    w.u64(4096);
    w.u64(10);
    w.u32(0x20);
    w.into_vec()
}

/// The reply body for one request (`req`: the whole request message).
fn body(
    h: &Header,
    req: &[u8],
    session_round: &mut u32,
    script: Script,
    fs: &mut Files,
) -> Vec<u8> {
    if script.mtime_on_write {
        match h.command {
            Command::SET_INFO if req[67] == 4 => {
                // FileBasicInformation: LastWriteTime at 16 in the buffer
                // (0: leave it).
                let off = usize::from(u16::from_le_bytes([req[72], req[73]]));
                let t = u64::from_le_bytes(req[off + 16..off + 24].try_into().unwrap());
                if t != 0 {
                    fs.mtime = t;
                }
            }
            Command::WRITE => fs.mtime = WRITE_TIME,
            Command::CLOSE => return close_with_times(fs.mtime),
            _ => {}
        }
    }
    match h.command {
        Command::NEGOTIATE => negotiate_body(),
        Command::SESSION_SETUP => {
            *session_round += 1;
            if *session_round == 1 {
                SESSION_MORE[64..].to_vec()
            } else {
                // SUCCESS, guest, no token: no keys, no signing.
                vec![9, 0, 1, 0, 72, 0, 0, 0]
            }
        }
        Command::TREE_CONNECT => TREE[64..].to_vec(),
        Command::CREATE => CREATE[64..].to_vec(),
        Command::CLOSE => CLOSE[64..].to_vec(),
        Command::SET_INFO => vec![2, 0],
        Command::WRITE => {
            // Count = the request's Length.
            let mut b = vec![17, 0, 0, 0];
            b.extend_from_slice(&req[68..72]);
            b.extend_from_slice(&[0; 9]);
            b
        }
        _ => vec![4, 0, 0, 0],
    }
}

/// Starts the scripted server; returns its port and what it saw.
async fn fake(script: Script) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut round = 0;
        let mut fs = Files { mtime: WRITE_TIME };
        while let Some(frame) = read_frame(&mut s).await {
            let ranges = split_compound(&frame).unwrap();
            let n = ranges.len();
            let first = Header::decode(&frame).unwrap().command;
            let mut out: Vec<Vec<u8>> = Vec::new();
            for (i, (a, b)) in ranges.into_iter().enumerate() {
                let req = &frame[a..b];
                let h = Header::decode(req).unwrap();
                let related = h.flags & FLAG_RELATED != 0;
                let refuse =
                    script.related_only_after_create && related && first != Command::CREATE;
                let (status, body) = if refuse {
                    (NtStatus::INVALID_HANDLE, vec![9, 0, 0, 0, 0, 0, 0, 0, 0])
                } else if h.command == Command::SESSION_SETUP && round == 0 {
                    (
                        NtStatus::MORE_PROCESSING_REQUIRED,
                        body(&h, req, &mut round, script, &mut fs),
                    )
                } else {
                    (
                        NtStatus::SUCCESS,
                        body(&h, req, &mut round, script, &mut fs),
                    )
                };
                log.lock().unwrap().push(Seen {
                    command: h.command,
                    related,
                    index: i,
                    of: n,
                    status,
                });
                let mut w = Writer::new();
                Header {
                    command: h.command,
                    status,
                    credits: script.credits,
                    flags: FLAG_RESPONSE | (h.flags & FLAG_RELATED),
                    message_id: h.message_id,
                    session_id: 0x11,
                    tree_id: if h.command == Command::TREE_CONNECT {
                        5
                    } else {
                        h.tree_id
                    },
                    ..Header::default()
                }
                .encode(&mut w);
                let mut m = w.into_vec();
                m.extend_from_slice(&body);
                out.push(m);
            }
            // Chain the replies: 8-byte aligned, NextCommand to each next one.
            let mut joined = Vec::new();
            let last = out.len() - 1;
            for (i, mut m) in out.into_iter().enumerate() {
                if i < last {
                    m.resize(m.len().div_ceil(8) * 8, 0);
                    let next = u32::try_from(m.len()).unwrap();
                    m[20..24].copy_from_slice(&next.to_le_bytes());
                }
                joined.extend_from_slice(&m);
            }
            let mut f = u32::try_from(joined.len()).unwrap().to_be_bytes().to_vec();
            f.extend_from_slice(&joined);
            if s.write_all(&f).await.is_err() {
                break;
            }
        }
    });
    (port, seen)
}

async fn connect(port: u16) -> smb_core::Tree {
    let mut c = ClientConfig::default();
    c.request_timeout = Duration::from_secs(20);
    let client = Client::connect("127.0.0.1", port, c).await.unwrap();
    // The scripted server logs everyone on as a guest: ask for that.
    let creds = Credentials {
        user: "u".into(),
        password: "p".to_string().into(),
        guest: true,
        ..Credentials::default()
    };
    let session = client.session_setup(&creds).await.unwrap();
    session.tree_connect("share").await.unwrap()
}

/// Every CREATE that succeeded has a CLOSE that succeeded.
fn all_closed(seen: &[Seen]) {
    let ok = |c| {
        seen.iter()
            .filter(|s| s.command == c && s.status == NtStatus::SUCCESS)
            .count()
    };
    assert_eq!(ok(Command::CREATE), ok(Command::CLOSE), "{seen:#?}");
}

#[tokio::test]
async fn a_refused_related_close_is_sent_again_unrelated_and_the_connection_remembers() {
    let (port, seen) = fake(Script {
        related_only_after_create: true,
        credits: 64,
        mtime_on_write: false,
    })
    .await;
    let tree = connect(port).await;
    let data = Bytes::from_static(b"small file");
    tree.write_file_as(".a.tmp", "a.txt", data.clone(), FileTimes::default())
        .await
        .expect("first upload");
    let first: Vec<Seen> = seen.lock().unwrap().drain(..).collect();
    // The rename compound: SET_INFO on the FileId, the related CLOSE
    // refused, then CLOSE again on its own.
    let tail: Vec<(Command, bool, NtStatus)> = first
        .iter()
        .skip_while(|s| s.command != Command::SET_INFO)
        .map(|s| (s.command, s.related, s.status))
        .collect();
    assert_eq!(
        tail,
        vec![
            (Command::SET_INFO, false, NtStatus::SUCCESS),
            (Command::CLOSE, true, NtStatus::INVALID_HANDLE),
            (Command::CLOSE, false, NtStatus::SUCCESS),
        ]
    );
    all_closed(&first);

    // The next upload sends the second chain unrelated from the start.
    tree.write_file_as(".b.tmp", "b.txt", data, FileTimes::default())
        .await
        .expect("second upload");
    let second: Vec<Seen> = seen.lock().unwrap().clone();
    assert!(
        second.iter().all(|s| s.status == NtStatus::SUCCESS),
        "{second:#?}"
    );
    let creates = second
        .iter()
        .filter(|s| s.command == Command::CREATE)
        .count();
    assert_eq!(creates, 1, "{second:#?}");
    // CREATE + WRITE still one related compound (a CREATE heads it).
    assert!(second
        .iter()
        .any(|s| s.command == Command::WRITE && s.related && s.of == 2));
    all_closed(&second);
    // Other compounds headed by a CREATE still go related.
    tree.stat("a.txt").await.expect("stat");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.status == NtStatus::SUCCESS));
}

#[tokio::test]
async fn one_credit_per_reply_splits_every_compound() {
    let (port, seen) = fake(Script {
        related_only_after_create: false,
        credits: 1,
        mtime_on_write: false,
    })
    .await;
    let tree = connect(port).await;
    assert_eq!(tree.io_limits().read, 65536);
    tree.write_file_as(
        ".a.tmp",
        "a.txt",
        Bytes::from(vec![7u8; 50_000]),
        FileTimes::default(),
    )
    .await
    .expect("upload");
    tree.stat("a.txt").await.expect("stat");
    tree.rename("a.txt", "b.txt", true).await.expect("rename");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|s| s.of == 1 && !s.related && s.status != NtStatus::INVALID_HANDLE),
        "{seen:#?}"
    );
    let commands: Vec<Command> = seen
        .iter()
        .map(|s| s.command)
        .skip_while(|c| *c != Command::CREATE)
        .collect();
    assert_eq!(
        commands,
        vec![
            Command::CREATE,
            Command::WRITE,
            Command::SET_INFO,
            Command::CLOSE,
            Command::CREATE,
            Command::CLOSE,
            Command::CREATE,
            Command::SET_INFO,
            Command::CLOSE,
        ]
    );
    all_closed(&seen);
}

#[tokio::test]
async fn a_server_that_moves_the_write_time_on_write_gets_times_after_the_write() {
    let (port, seen) = fake(Script {
        related_only_after_create: false,
        credits: 64,
        mtime_on_write: true,
    })
    .await;
    let tree = connect(port).await;
    let want = smb_core::FileTime(0x01D0_1234_5678_9ABC);
    let times = FileTimes {
        last_write_time: Some(want),
        ..FileTimes::default()
    };
    let data = Bytes::from_static(b"small file");
    assert!(!tree.sets_times_after_write());

    // First file: times before the WRITE (the fast path), which this server
    // undoes; the CLOSE shows it, so the times are set again by path.
    let info = tree
        .write_file_as(".a.tmp", "a.txt", data.clone(), times)
        .await
        .expect("first upload");
    assert_eq!(info.last_write_time, want);
    assert!(tree.sets_times_after_write());
    let first: Vec<Command> = seen.lock().unwrap().drain(..).map(|s| s.command).collect();
    let from_create: Vec<Command> = first
        .iter()
        .copied()
        .skip_while(|c| *c != Command::CREATE)
        .collect();
    assert_eq!(
        from_create,
        vec![
            Command::CREATE,
            Command::SET_INFO,
            Command::WRITE,
            Command::SET_INFO,
            Command::CLOSE,
            // Set again on the final name.
            Command::CREATE,
            Command::SET_INFO,
            Command::CLOSE,
        ]
    );

    // From then on the times follow the WRITE and hold: no second open.
    let info = tree
        .write_file_as(".b.tmp", "b.txt", data.clone(), times)
        .await
        .expect("second upload");
    assert_eq!(info.last_write_time, want);
    let second: Vec<Command> = seen.lock().unwrap().drain(..).map(|s| s.command).collect();
    assert_eq!(
        second,
        vec![
            Command::CREATE,
            Command::WRITE,
            Command::SET_INFO,
            Command::SET_INFO,
            Command::CLOSE,
        ]
    );
    // The same for a file written in place.
    let info = tree.write_file("c.txt", data, times).await.expect("write");
    assert_eq!(info.last_write_time, want);
    let third: Vec<Command> = seen.lock().unwrap().drain(..).map(|s| s.command).collect();
    assert_eq!(
        third,
        vec![
            Command::CREATE,
            Command::WRITE,
            Command::SET_INFO,
            Command::CLOSE,
        ]
    );
}
