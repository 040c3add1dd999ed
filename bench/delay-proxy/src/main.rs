//! `delay-proxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT --delay-ms 5`
//!
//! Prints `LISTENING <addr>` on stdout once it accepts connections (so port 0
//! can be used), then serves until killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use delay_proxy::{resolve, spawn, Config, DEFAULT_CHUNK, DEFAULT_MAX_IN_FLIGHT};

const USAGE: &str = "usage: delay-proxy --upstream HOST:PORT [--listen HOST:PORT] [--delay-ms MS]
                   [--chunk-kib N] [--max-in-flight-mib N] [--copy] [--verbose]

  --listen             address to accept on (default 127.0.0.1:0; printed as LISTENING <addr>)
  --upstream           address every connection is forwarded to
  --delay-ms           one-way delay added to EACH direction, in ms (fractions allowed; default 0)
  --chunk-kib          maximum bytes per socket read or splice (default 1024)
  --max-in-flight-mib  maximum bytes held per direction per connection (default 64)
  --copy               move bytes with read + write instead of splice(2) (for comparison)
  --verbose            log connections and byte counts to stderr";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("delay-proxy: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut upstream = None;
    let mut delay_ms = 0.0_f64;
    let mut chunk = DEFAULT_CHUNK;
    let mut max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    let mut zero_copy = true;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key.as_str() {
            "--listen" => listen = value()?,
            "--upstream" => upstream = Some(value()?),
            "--delay-ms" => delay_ms = parse(&value()?, "--delay-ms")?,
            "--chunk-kib" => chunk = parse::<usize>(&value()?, "--chunk-kib")? * 1024,
            "--max-in-flight-mib" => {
                max_in_flight = parse::<usize>(&value()?, "--max-in-flight-mib")? << 20;
            }
            "--copy" => zero_copy = false,
            "--verbose" | "-v" => verbose = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let upstream = upstream.ok_or("--upstream is required")?;
    if !(0.0..=60_000.0).contains(&delay_ms) {
        return Err("--delay-ms must be between 0 and 60000".into());
    }
    let upstream = resolve(&upstream).map_err(|e| e.to_string())?;
    let cfg = Config {
        upstream,
        delay: Duration::from_secs_f64(delay_ms / 1000.0),
        chunk: chunk.max(1024),
        max_in_flight,
        zero_copy,
        verbose,
    };
    let (local, _stats) = spawn(&listen, cfg).map_err(|e| format!("listen {listen}: {e}"))?;
    println!("LISTENING {local}");
    let _ = std::io::stdout().flush();
    eprintln!("delay-proxy: {local} -> {upstream}, +{delay_ms} ms each way");
    loop {
        std::thread::park();
    }
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad value {s:?} for {what}"))
}
