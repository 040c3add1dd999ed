//! Build script of the `smbcp` binary: embeds what `--version` reports, the
//! git commit (`git rev-parse --short HEAD`, or "unknown" outside a git
//! checkout or without git), the target and profile, and the optional
//! capabilities compiled in.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SMBCP_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a branch switch) and the branch it names.
    for path in [
        Some("HEAD".to_string()),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(p) = git(&["rev-parse", "--git-path", &path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=SMBCP_BUILD={profile}, {target}");
    // smb-core splices READ/WRITE data only on Linux (rustix pipes).
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let features = if linux {
        "NTLMv2, signing, encryption, zero-copy (splice)"
    } else {
        "NTLMv2, signing, encryption"
    };
    println!("cargo:rustc-env=SMBCP_FEATURES={features}");
}
