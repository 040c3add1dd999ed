//! smbcp: a robocopy-style copier for SMB2/3 shares. Parse → run → exit code;
//! the one place that prints a fatal error.

use std::process::ExitCode;

use smbcp::report::escape::escape;
use smbcp::{parse, Parsed};

fn main() -> ExitCode {
    let opts = match parse(std::env::args_os()) {
        Parsed::Run(o) => o,
        Parsed::Print(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Parsed::Usage(msg, mode) => {
            eprintln!("smbcp: error: {}", escape(&msg));
            return mode.usage_code();
        }
    };
    init_tracing(opts.output.verbosity);
    let mode = opts.exit_mode;
    let json = opts.output.json.clone();
    match smbcp::run::block_on(*opts) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let msg = smbcp::exit::message(f.error());
            // Escaped for the terminal; the JSON document keeps it exact.
            eprintln!("smbcp: error: {}", escape(&msg));
            let code = mode.failure_code(&f);
            if let Some(target) = json {
                // A report consumer gets a document even when nothing ran.
                let _ = smbcp::report::write_json(
                    &target,
                    &smbcp::report::summary::fatal_json(code, &msg),
                );
            }
            ExitCode::from(code)
        }
    }
}

/// Diagnostics on stderr: warnings by default, more with -vv; `RUST_LOG` overrides.
fn init_tracing(verbosity: i8) {
    let level = match verbosity {
        ..=0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("smbcp={level},smb_core={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
