//! Durable handles v2 and leases against the real Samba: granted, reclaimed
//! after a cut (mid-write, mid-read) with the same open, refused and then
//! opened again by path, never granted by a server without them; lease
//! breaks acknowledged so another client's open goes on.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect, creds, pattern};
use smb_core::{Client, ClientConfig, Disposition, HandleStats, OpenOptions};
use smb_fixture::{FaultProxy, Samba, ServerConfig, SHARE};

const MIB: usize = 1 << 20;

fn server() -> &'static Samba {
    Samba::get(&ServerConfig::new().durable_handles())
}

async fn through_proxy(samba: &Samba) -> (FaultProxy, Client) {
    let proxy = FaultProxy::start(samba.addr());
    let client = Client::connect("127.0.0.1", proxy.port(), ClientConfig::default())
        .await
        .expect("connect through the proxy");
    (proxy, client)
}

fn durable(o: OpenOptions) -> OpenOptions {
    OpenOptions { durable: true, ..o }
}

fn stats(reclaimed: u64, reopened: u64, reclaim_failed: u64, replayed: u64) -> HandleStats {
    let mut s = HandleStats::default();
    s.reclaimed = reclaimed;
    s.reopened = reopened;
    s.reclaim_failed = reclaim_failed;
    s.replayed = replayed;
    s
}

/// The stats without the lease break count (not the point of these tests).
fn handles(c: &Client) -> HandleStats {
    let mut s = c.handle_stats();
    s.lease_breaks = 0;
    s.lease_acks = 0;
    s
}

#[tokio::test]
async fn durable_handles_are_granted_with_a_lease_when_asked() {
    let samba = server();
    let (dir, local) = samba.unique_dir(SHARE, "durable-grant");
    std::fs::write(local.join("r.bin"), b"read me").unwrap();
    let (_c, _s, tree) = connect(samba, SHARE).await;
    let w = tree
        .open(
            &format!("{dir}/w.bin"),
            &durable(OpenOptions::create_write()),
        )
        .await
        .unwrap();
    assert!(w.is_durable());
    assert_eq!(w.lease_state(), Some(0x7), "RWH for a file we write");
    let r = tree
        .open(&format!("{dir}/r.bin"), &durable(OpenOptions::read()))
        .await
        .unwrap();
    assert!(r.is_durable());
    assert_eq!(r.lease_state(), Some(0x3), "RH for a file we read");
    let plain = tree
        .open(&format!("{dir}/r.bin"), &OpenOptions::read())
        .await
        .unwrap();
    assert!(!plain.is_durable());
    assert_eq!(plain.lease_state(), None);
    for f in [w, r, plain] {
        f.close().await.unwrap();
    }
}

#[tokio::test]
async fn durable_handles_are_reclaimed_after_cuts_mid_write_and_mid_read() {
    let samba = server();
    let (dir, local) = samba.unique_dir(SHARE, "durable-reclaim");
    let data = pattern(4 * MIB, 7);
    std::fs::write(local.join("src.bin"), &data).unwrap();
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let reader = tree
        .open(&format!("{dir}/src.bin"), &durable(OpenOptions::read()))
        .await
        .unwrap();
    let writer = tree
        .open(
            &format!("{dir}/dst.bin"),
            &durable(OpenOptions::create_write()),
        )
        .await
        .unwrap();
    assert!(reader.is_durable() && writer.is_durable());
    let chunk = |i: usize| Bytes::copy_from_slice(&data[i * MIB..(i + 1) * MIB]);
    writer
        .write_at(0, reader.read_at(0, MIB as u32).await.unwrap())
        .await
        .unwrap();

    // Cut halfway through the second WRITE's upload.
    proxy.cut_up_at(proxy.bytes_up() + MIB as u64 / 2);
    let err = writer.write_at(MIB as u64, chunk(1)).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert_eq!(client.reconnect(1).await.unwrap(), 2);
    // The same WRITE again: the reclaimed open takes it as a replay.
    writer.write_at(MIB as u64, chunk(1)).await.unwrap();
    assert_eq!(handles(&client), stats(1, 0, 0, 1));

    // Cut halfway through the third READ's download.
    proxy.cut_down_at(proxy.bytes_down() + MIB as u64 / 2);
    let err = reader
        .read_at(2 * MIB as u64, MIB as u32)
        .await
        .unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert_eq!(client.reconnect(2).await.unwrap(), 3);
    for i in 2..4 {
        let got = reader.read_at((i * MIB) as u64, MIB as u32).await.unwrap();
        writer.write_at((i * MIB) as u64, got).await.unwrap();
    }
    // Each handle was reclaimed on each new connection it was used on (the
    // writer on 2 and 3, the reader on 2 and 3), none opened again by path.
    assert_eq!(handles(&client), stats(4, 0, 0, 1));
    assert!(reader.is_durable() && writer.is_durable());
    assert_eq!(proxy.connections(), 3);
    writer.close().await.unwrap();
    reader.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("dst.bin")).unwrap(), data);
}

#[tokio::test]
async fn a_durable_handle_the_server_refuses_is_opened_again_by_path() {
    let samba = server();
    let (dir, local) = samba.unique_dir(SHARE, "durable-refused");
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let f = tree
        .open(
            &format!("{dir}/f.bin"),
            &durable(OpenOptions::create_write()),
        )
        .await
        .unwrap();
    assert!(f.is_durable());
    f.write_at(0, Bytes::from_static(b"hello ")).await.unwrap();
    proxy.cut_now();
    assert!(f.write_at(6, Bytes::from_static(b"world")).await.is_err());
    client.reconnect(1).await.unwrap();
    // Log on again (the old session, and with it the open, is
    // disconnected by then), then change the file behind the server's
    // back: Samba refuses to reclaim an open whose file changed.
    tree.stat("").await.unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(local.join("f.bin"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    f.write_at(6, Bytes::from_static(b"world")).await.unwrap();
    assert_eq!(handles(&client), stats(0, 1, 1, 0));
    // Opened again durable, under a new CreateGuid.
    assert!(f.is_durable());
    f.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("f.bin")).unwrap(), b"hello world");
}

#[tokio::test]
async fn a_server_without_durable_handles_gets_a_plain_reopen() {
    let samba = Samba::get(&ServerConfig::new().no_durable_handles());
    let (dir, local) = samba.unique_dir(SHARE, "durable-none");
    let (proxy, client) = through_proxy(samba).await;
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let f = tree
        .open(
            &format!("{dir}/f.bin"),
            &durable(OpenOptions::create_write()),
        )
        .await
        .unwrap();
    assert!(!f.is_durable(), "durable handles = no");
    f.write_at(0, Bytes::from_static(b"hello ")).await.unwrap();
    proxy.cut_now();
    assert!(f.write_at(6, Bytes::from_static(b"world")).await.is_err());
    client.reconnect(1).await.unwrap();
    f.write_at(6, Bytes::from_static(b"world")).await.unwrap();
    // Not a refused reclaim: there was nothing to reclaim.
    assert_eq!(handles(&client), stats(0, 1, 0, 0));
    f.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("f.bin")).unwrap(), b"hello world");
}

#[tokio::test]
async fn a_lease_break_is_acknowledged_and_both_clients_go_on() {
    let samba = server();
    let (dir, local) = samba.unique_dir(SHARE, "durable-break");
    let path = format!("{dir}/shared.bin");
    let (a, _sa, ta) = connect(samba, SHARE).await;
    let fa = ta
        .open(&path, &durable(OpenOptions::create_write()))
        .await
        .unwrap();
    assert_eq!(fa.lease_state(), Some(0x7));
    fa.write_at(0, Bytes::from_static(b"AAAA")).await.unwrap();

    // Another client opens the file to write: the server breaks A's write
    // caching and holds B's CREATE until A acknowledges (35 s otherwise:
    // then B's open would also go through, so the ack is counted instead
    // of timed).
    let (_b, _sb, tb) = connect(samba, SHARE).await;
    let fb = tb
        .open(
            &path,
            &OpenOptions {
                read: true,
                write: true,
                disposition: Disposition::Open,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    let h = a.handle_stats();
    assert!(h.lease_breaks >= 1, "{h:?}");
    assert!(h.lease_acks >= 1, "the break was not acknowledged: {h:?}");
    let state = fa.lease_state().unwrap();
    assert_eq!(state & 0x4, 0, "write caching broken: {state:#x}");

    // Both handles work.
    fb.write_at(4, Bytes::from_static(b"BBBB")).await.unwrap();
    fa.write_at(8, Bytes::from_static(b"AAAA")).await.unwrap();
    fb.close().await.unwrap();
    fa.close().await.unwrap();
    assert_eq!(
        std::fs::read(local.join("shared.bin")).unwrap(),
        b"AAAABBBBAAAA"
    );
}

/// One durable CREATE whose reply the proxy cuts (the server has the
/// open, we never hear of it), then the same open again after the
/// reconnect. `half_open`: the server's side of the cut stays open, as when
/// the network vanished (Samba 4.17 passes the new connection of the same
/// ClientGuid to the old connection's process, which still holds the open).
async fn lose_a_durable_create(half_open: bool) {
    let samba = server();
    let (dir, local) = samba.unique_dir(SHARE, "durable-lost-create");
    let proxy = FaultProxy::start(samba.addr());
    proxy.half_open(half_open);
    // The longest durable timeout Samba grants: an orphaned open that the
    // new CREATE had to wait for would hold it back for five minutes, and
    // the server would answer it with an interim response first.
    let mut config = ClientConfig::default();
    config.durable_timeout = Duration::from_secs(300);
    let client = Client::connect("127.0.0.1", proxy.port(), config)
        .await
        .unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let path = format!("{dir}/lost.bin");
    let opts = durable(OpenOptions::create_write());

    proxy.cut_before_create_reply("lost.bin", 1);
    let err = tree.open(&path, &opts).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert!(
        !proxy.create_cut_armed(),
        "the cut fell on the CREATE reply"
    );
    assert!(local.join("lost.bin").exists(), "the server made the open");
    client.reconnect(1).await.unwrap();

    // Sent again as a replay (same CreateGuid and lease key), answered
    // at once: the server held nothing back.
    let f = tree.open(&path, &opts).await.unwrap();
    assert!(f.is_durable());
    assert_eq!(f.lease_state(), Some(0x7));
    assert_eq!(client.handle_stats().creates_replayed, 1);
    f.write_at(0, Bytes::from_static(b"landed")).await.unwrap();
    f.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("lost.bin")).unwrap(), b"landed");

    // Nothing left holding the file: another client writes it at once.
    let other = Client::connect("127.0.0.1", proxy.port(), ClientConfig::default())
        .await
        .unwrap();
    let t = other
        .session_setup(&creds())
        .await
        .unwrap()
        .tree_connect(SHARE)
        .await
        .unwrap();
    let g = t
        .open(
            &path,
            &OpenOptions {
                write: true,
                disposition: Disposition::Open,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    g.write_at(0, Bytes::from_static(b"L")).await.unwrap();
    g.close().await.unwrap();
    assert_eq!(std::fs::read(local.join("lost.bin")).unwrap(), b"Landed");
    assert_eq!(
        proxy.pending_creates(),
        0,
        "no CREATE was held back by an open nobody heard of"
    );
    assert_eq!(proxy.cuts(), 1);
}

#[tokio::test]
async fn a_durable_create_lost_in_flight_is_replayed_on_the_new_connection() {
    lose_a_durable_create(false).await;
}

#[tokio::test]
async fn a_durable_create_lost_on_a_vanished_network_is_replayed() {
    lose_a_durable_create(true).await;
}
