//! The README's "try it" command: starts a throwaway private Samba share on
//! loopback, fills it with sample files, and copies it to a local folder with
//! the given smbcp binary, printing smbcp's own output (its summary).
//!
//! Usage: `smbcp-demo SMBCP_BINARY [DEST_DIR]` (DEST_DIR defaults to `./smbcp-demo-copy`).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use smb_fixture::{Samba, ServerConfig, PASSWORD, SHARE, USER};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(smbcp) = args.next().map(PathBuf::from) else {
        eprintln!("usage: smbcp-demo SMBCP_BINARY [DEST_DIR]");
        return ExitCode::from(2);
    };
    let dest = args
        .next()
        .map_or_else(|| PathBuf::from("smbcp-demo-copy"), PathBuf::from);

    let samba = match Samba::start(&ServerConfig::new()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smbcp-demo: {e}");
            return ExitCode::from(3);
        }
    };
    let (rel, local) = samba.unique_dir(SHARE, "demo");
    if let Err(e) = fill_sample_tree(&local) {
        eprintln!("smbcp-demo: writing sample files: {e}");
        return ExitCode::from(3);
    }
    if let Err(e) = smb_fixture::chown_to_user(&local) {
        eprintln!("smbcp-demo: {e}");
        return ExitCode::from(3);
    }
    let source = samba.url(SHARE, &rel);
    eprintln!(
        "smbcp-demo: private smbd on 127.0.0.1:{} (user {USER}), share //127.0.0.1/{SHARE}",
        samba.port()
    );
    eprintln!(
        "smbcp-demo: $ SMBCP_PASSWORD=*** {} {source} {} --subdirs --user {USER}",
        smbcp.display(),
        dest.display()
    );
    let status = Command::new(&smbcp)
        .arg(&source)
        .arg(&dest)
        .args(["--subdirs", "--user", USER])
        .env("SMBCP_PASSWORD", PASSWORD)
        .status();
    drop(samba);
    match status {
        Ok(s) if s.success() => {
            eprintln!("smbcp-demo: copied into {}", dest.display());
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!("smbcp-demo: smbcp exited with {s}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("smbcp-demo: running {}: {e}", smbcp.display());
            ExitCode::from(3)
        }
    }
}

/// A small but varied tree: nested dirs, an empty file, odd names, a 20 MiB file.
fn fill_sample_tree(root: &std::path::Path) -> std::io::Result<()> {
    let mut seed: u64 = 0x5eed_cafe;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                // xorshift64: deterministic sample content, not cryptographic.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect()
    };
    fs::create_dir_all(root.join("docs/reports 2026"))?;
    fs::create_dir_all(root.join("photos/été"))?;
    fs::create_dir_all(root.join("empty-dir"))?;
    fs::write(
        root.join("README.txt"),
        b"Sample files served by a throwaway Samba share.\n",
    )?;
    fs::write(root.join("empty.bin"), b"")?;
    fs::write(root.join("docs/reports 2026/q1.csv"), bytes(65_537))?;
    fs::write(root.join("docs/reports 2026/q2.csv"), bytes(4_096))?;
    for i in 0..50 {
        fs::write(
            root.join(format!("photos/été/img-{i:03}.raw")),
            bytes(16_384 + i * 977),
        )?;
    }
    fs::write(root.join("big.iso"), bytes(20 * 1024 * 1024))?;
    Ok(())
}
