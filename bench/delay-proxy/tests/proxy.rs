//! Bytes pass through unchanged and in order; a round trip costs >= 2 x delay;
//! a half-close crosses the proxy. Each behaviour is checked on the splice
//! path (the default on Linux) and on the read + write path.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use delay_proxy::{spawn, Config, Stats};

/// Echo server on an ephemeral loopback port: echoes until EOF, then closes.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let mut c = c.unwrap();
            c.set_nodelay(true).unwrap();
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => c.write_all(&buf[..n]).unwrap(),
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// Sink server: counts bytes until EOF, then writes the count (8 bytes LE).
fn sink_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let mut c = c.unwrap();
            thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut n = 0u64;
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k as u64,
                    }
                }
                let _ = c.write_all(&n.to_le_bytes());
            });
        }
    });
    addr
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn proxy(upstream: SocketAddr, delay_ms: u64) -> SocketAddr {
    proxy_with(upstream, delay_ms, true).0
}

/// A proxy on the splice path (`zero_copy`) or the read + write path.
fn proxy_with(upstream: SocketAddr, delay_ms: u64, zero_copy: bool) -> (SocketAddr, Arc<Stats>) {
    let mut cfg = Config::new(upstream, Duration::from_millis(delay_ms));
    cfg.zero_copy = zero_copy;
    spawn("127.0.0.1:0", cfg).unwrap()
}

/// Word `i` of a stream: position-dependent, so a lost, repeated or
/// reordered block shows up as a mismatch.
fn word(i: u64, seed: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed).to_le_bytes()
}

/// Streams `total` bytes (a multiple of 8) through `addr` to an echo server
/// while checking what comes back, without holding the stream in memory.
fn echo_stream_checked(addr: SocketAddr, total: u64, seed: u64) {
    const BLOCK: usize = 1 << 20;
    let mut s = TcpStream::connect(addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut buf = vec![0u8; BLOCK];
        let mut i = 0u64;
        // Odd write sizes, so chunk edges fall anywhere.
        let mut sizes = [BLOCK, 4099, 777_777, 65_536].into_iter().cycle();
        while i * 8 < total {
            let n = sizes.next().unwrap().min((total - i * 8) as usize) / 8 * 8;
            for c in buf[..n].chunks_exact_mut(8) {
                c.copy_from_slice(&word(i, seed));
                i += 1;
            }
            w.write_all(&buf[..n]).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut buf = vec![0u8; BLOCK];
    let (mut got, mut partial, mut plen) = (0u64, [0u8; 8], 0usize);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            partial[plen] = b;
            plen += 1;
            if plen == 8 {
                let i = got / 8;
                assert_eq!(partial, word(i, seed), "word {i} (byte {got})");
                got += 8;
                plen = 0;
            }
        }
    }
    sender.join().unwrap();
    assert_eq!((got, plen), (total, 0), "length");
}

/// Waits until the proxy has finished a connection and returns its stats.
fn settled(stats: &Stats, bytes: u64) -> &Stats {
    let t0 = Instant::now();
    while stats.bytes_down.load(Ordering::Relaxed) < bytes && t0.elapsed() < Duration::from_secs(5)
    {
        thread::sleep(Duration::from_millis(10));
    }
    stats
}

/// Sends `data` through `addr` to an echo server and returns what came back.
fn echo_through(addr: SocketAddr, data: &[u8], write_sizes: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let data2 = data.to_vec();
    let t = thread::spawn(move || {
        for part in data2.chunks(write_sizes) {
            w.write_all(part).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    t.join().unwrap();
    back
}

#[test]
fn bytes_pass_unchanged_without_delay() {
    let p = proxy(echo_server(), 0);
    let data = pattern(16 << 20, 7);
    assert_eq!(echo_through(p, &data, 1 << 20), data);
    // Many small writes: order must be preserved.
    let small = pattern(300_000, 9);
    assert_eq!(echo_through(p, &small, 97), small);
}

#[test]
fn bytes_pass_unchanged_with_delay() {
    let p = proxy(echo_server(), 3);
    let data = pattern(8 << 20, 11);
    assert_eq!(echo_through(p, &data, 123_457), data);
}

#[test]
fn hundreds_of_megabytes_arrive_exact_and_in_order_via_splice() {
    let total = 320 << 20;
    let (p, stats) = proxy_with(echo_server(), 1, true);
    echo_stream_checked(p, total, 0x1234);
    let stats = settled(&stats, total);
    assert_eq!(stats.bytes_up.load(Ordering::Relaxed), total);
    assert_eq!(stats.bytes_down.load(Ordering::Relaxed), total);
    if cfg!(target_os = "linux") {
        assert!(
            stats.spliced_chunks.load(Ordering::Relaxed) > 0,
            "splice not used"
        );
    }
}

#[test]
fn a_tight_budget_applies_backpressure_without_losing_bytes() {
    // One chunk of budget and the smallest pipe pool: the reader waits for
    // the writer after nearly every chunk.
    let mut cfg = Config::new(echo_server(), Duration::from_millis(1));
    cfg.max_in_flight = 1;
    cfg.chunk = 64 * 1024;
    let (p, stats) = spawn("127.0.0.1:0", cfg).unwrap();
    let total = 16 << 20;
    echo_stream_checked(p, total, 0x9abc);
    assert_eq!(
        settled(&stats, total).bytes_up.load(Ordering::Relaxed),
        total
    );
}

#[test]
fn bytes_arrive_exact_and_in_order_via_copy() {
    let total = 48 << 20;
    let (p, stats) = proxy_with(echo_server(), 1, false);
    echo_stream_checked(p, total, 0x5678);
    let stats = settled(&stats, total);
    assert_eq!(stats.bytes_down.load(Ordering::Relaxed), total);
    assert_eq!(stats.spliced_chunks.load(Ordering::Relaxed), 0);
}

#[test]
fn server_half_close_reaches_client_and_client_can_still_send() {
    for zero_copy in [true, false] {
        // The server greets, shuts down its write side at once, then counts
        // what the client sends until the client's EOF.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"hello").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut all = Vec::new();
            c.read_to_end(&mut all).unwrap();
            tx.send(all).unwrap();
        });
        let (p, _) = proxy_with(upstream, 2, zero_copy);
        let mut s = TcpStream::connect(p).unwrap();
        let mut greeting = Vec::new();
        s.read_to_end(&mut greeting).unwrap();
        assert_eq!(greeting, b"hello", "zero_copy={zero_copy}");
        let data = pattern(3 << 20, 5);
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(got == data, "zero_copy={zero_copy}: upload damaged");
    }
}

#[test]
fn round_trip_takes_at_least_twice_the_delay() {
    round_trip_is_twice_the_delay(true);
}

#[test]
fn round_trip_takes_at_least_twice_the_delay_via_copy() {
    round_trip_is_twice_the_delay(false);
}

fn round_trip_is_twice_the_delay(zero_copy: bool) {
    let delay = 20;
    let p = proxy_with(echo_server(), delay, zero_copy).0;
    let mut s = TcpStream::connect(p).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 16];
    let mut rtts = Vec::new();
    for i in 0..10u8 {
        let msg = [i; 16];
        let t0 = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut buf).unwrap();
        rtts.push(t0.elapsed());
        assert_eq!(buf, msg);
    }
    let min = *rtts.iter().min().unwrap();
    let max = *rtts.iter().max().unwrap();
    eprintln!("rtt through +{delay} ms proxy: min {min:?} max {max:?}");
    assert!(
        min >= Duration::from_millis(2 * delay),
        "rtt {min:?} < 2 x {delay} ms"
    );
    // Precision: well under a millisecond of extra delay on an idle machine;
    // allow generous slack for a loaded CI box.
    assert!(
        max < Duration::from_millis(2 * delay + 50),
        "rtt {max:?} far above 2 x {delay} ms"
    );
}

#[test]
fn delay_is_per_chunk_not_cumulative() {
    // Streaming 64 MiB one way through +10 ms must not take 10 ms per chunk.
    let p = proxy(sink_server(), 10);
    let mut s = TcpStream::connect(p).unwrap();
    let data = vec![0x5au8; 1 << 20];
    let t0 = Instant::now();
    for _ in 0..64 {
        s.write_all(&data).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut n = [0u8; 8];
    s.read_exact(&mut n).unwrap();
    assert_eq!(u64::from_le_bytes(n), 64 << 20);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

/// Throughput check: `cargo test --release -p delay-proxy -- --ignored --nocapture`.
#[test]
#[ignore = "throughput measurement; run by hand in release mode"]
fn throughput() {
    let sink = sink_server();
    let total: u64 = 8 << 30;
    let buf = vec![0xa5u8; 4 << 20];
    let run = |addr: SocketAddr| {
        let mut s = TcpStream::connect(addr).unwrap();
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < total {
            s.write_all(&buf).unwrap();
            sent += buf.len() as u64;
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut n = [0u8; 8];
        s.read_exact(&mut n).unwrap();
        assert_eq!(u64::from_le_bytes(n), total);
        total as f64 / t0.elapsed().as_secs_f64() / 1e9
    };
    eprintln!("direct:          {:.2} GB/s", run(sink));
    for d in [0, 1, 5] {
        eprintln!("proxy +{d} ms:    {:.2} GB/s", run(proxy(sink, d)));
    }
}
