//! Throughput and CPU cost of a delay-proxy binary: pushes N GiB from a
//! source through the proxy to a sink on loopback and reports MB/s and the
//! proxy's CPU seconds (utime + stime from `/proc/<pid>/stat`).
//!
//! `cargo run --release -p delay-proxy --example push -- BIN DELAY_MS GIB [--down] [PROXY ARGS]`
//!
//! Without `--down` the source is the client (upload direction); with it the
//! sink is the client and the server sends (download direction, as in the
//! benchmark's big download). Other arguments go to the proxy (with
//! `--verbose` its log is shown).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

const WRITE: usize = 4 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, delay, gib, rest @ ..] = args.as_slice() else {
        eprintln!("usage: push BIN DELAY_MS GIB [--down] [PROXY ARGS]");
        std::process::exit(2);
    };
    let total = (gib.parse::<f64>().expect("GIB") * f64::from(1u32 << 30)) as u64;
    let down = rest.iter().any(|a| a == "--down");
    let extra: Vec<&String> = rest.iter().filter(|a| *a != "--down").collect();
    let verbose = extra.iter().any(|a| *a == "--verbose");

    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream = server.local_addr().expect("addr");
    let mut proxy = Command::new(bin)
        .args(["--upstream", &upstream.to_string(), "--delay-ms", delay])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("start proxy");
    let mut line = String::new();
    let stdout = proxy.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("LISTENING");
    let addr = line
        .strip_prefix("LISTENING ")
        .expect("LISTENING line")
        .trim()
        .to_string();

    let cpu0 = cpu_seconds(proxy.id());
    let t0 = Instant::now();
    let srv = thread::spawn(move || {
        let (c, _) = server.accept().expect("accept");
        if down {
            send(c, total)
        } else {
            sink(c)
        }
    });
    let c = TcpStream::connect(&addr).expect("connect proxy");
    let got = if down { sink(c) } else { send(c, total) };
    let other = srv.join().expect("server thread");
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(proxy.id()) - cpu0;
    if verbose {
        // Let the proxy log the closed connection before it is killed.
        thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(got.max(other), total, "byte count");
    println!(
        "delay {delay} ms, {gib} GiB {}: {:.0} MB/s, {secs:.2} s wall, proxy CPU {cpu:.2} s ({:.2} s/GB)",
        if down { "down" } else { "up" },
        total as f64 / secs / 1e6,
        cpu / (total as f64 / 1e9),
    );
}

/// Writes `total` bytes, half-closes, waits for EOF; returns `total`.
fn send(mut s: TcpStream, total: u64) -> u64 {
    let buf = vec![0xa5u8; WRITE];
    let mut sent = 0;
    while sent < total {
        let n = WRITE.min((total - sent) as usize);
        s.write_all(&buf[..n]).expect("write");
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    total
}

/// Reads until EOF, then closes; returns the byte count.
fn sink(mut s: TcpStream) -> u64 {
    let mut buf = vec![0u8; WRITE];
    let mut n = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
    let _ = s.shutdown(Shutdown::Both);
    n
}

/// utime + stime of all threads of `pid`, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that closes the command name: state is field 3,
    // utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
