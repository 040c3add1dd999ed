//! `--verify` against the real Samba: a byte flipped on the way to the
//! server (our fault proxy, unsigned session) is caught before the file gets
//! its final name; without `--verify` the same corruption lands unnoticed,
//! which is what the proxy is for.

#[path = "e2e_util.rs"]
mod util;

use smb_fixture::{FaultProxy, Samba, SHARE, USER};
use util::*;

fn upload(
    corrupt_at: Option<u64>,
    extra: &[&str],
) -> (
    Run,
    std::path::PathBuf,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let s = Samba::shared();
    let (rel, share_dir) = s.unique_dir(SHARE, "verify");
    smb_fixture::chown_to_user(&share_dir).unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    big_file(&src, "big.bin", 40);
    file(&src, "small.txt", 5000);
    let proxy = FaultProxy::start(s.addr());
    if let Some(n) = corrupt_at {
        proxy.flip_up_at(n);
    }
    let dst = format!("smb://{USER}@127.0.0.1:{}/{SHARE}/{rel}/up", proxy.port());
    let mut args = vec![
        src.to_str().unwrap(),
        dst.as_str(),
        "--no-sign",
        "--json",
        "-",
    ];
    args.extend_from_slice(extra);
    let r = smbcp(&args);
    (r, src, share_dir.join("up"), local)
}

#[test]
fn verify_passes_a_clean_copy_and_says_so() {
    let (r, src, up, _keep) = upload(None, &["--verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &up);
    let v = r.json();
    assert_eq!(v["verified"]["files"], 2);
    assert_eq!(v["verified"]["bytes"], 40 * MIB as u64 + 5000);
}

#[test]
fn verify_catches_a_byte_flipped_on_the_wire() {
    // Well inside the big file's data (uploaded first: it is the largest).
    let at = 20 * MIB as u64;
    let (r, _src, up, _keep) = upload(Some(at), &["--verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    let f = v["failures"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["code"], "VERIFY_MISMATCH", "{v}");
    assert_eq!(f[0]["operation"], "verify");
    assert!(
        !up.join(f[0]["path"].as_str().unwrap()).exists(),
        "not under its final name"
    );
    let names: Vec<String> = std::fs::read_dir(&up)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".smbcp-")), "{names:?}");
}

#[test]
fn without_verify_the_same_corruption_goes_unnoticed() {
    let (r, src, up, _keep) = upload(Some(20 * MIB as u64), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let corrupted = ["big.bin", "small.txt"]
        .iter()
        .filter(|n| std::fs::read(src.join(n)).unwrap() != std::fs::read(up.join(n)).unwrap())
        .count();
    assert_eq!(corrupted, 1, "the proxy flipped one byte of one file");
}
