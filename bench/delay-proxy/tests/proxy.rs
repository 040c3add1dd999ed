//! Bytes pass through unchanged and in order; a round trip costs >= 2 x delay.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use delay_proxy::{spawn, Config};

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
    let cfg = Config::new(upstream, Duration::from_millis(delay_ms));
    spawn("127.0.0.1:0", cfg).unwrap().0
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
fn round_trip_takes_at_least_twice_the_delay() {
    let delay = 20;
    let p = proxy(echo_server(), delay);
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
