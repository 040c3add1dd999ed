//! Every cargo-fuzz target under `fuzz/fuzz_targets/` is replayed here on
//! stable: its seeds (`fuzz/seeds/<target>/`, where crash inputs are kept
//! once fixed) and any crash input a local run left in
//! `fuzz/artifacts/<target>/`, each whole and as every prefix. A target
//! with no entry point here, or without a seed, fails the test.

use std::path::Path;

type Entry = fn(&[u8]);

/// Target name → entry point (what `fuzz/fuzz_targets/<name>.rs` calls).
fn entry(name: &str) -> Option<Entry> {
    let smb: &[(&str, Entry)] = &[
        ("ntlm_challenge", smb_core::auth::fuzz::ntlm_challenge),
        ("spnego", smb_core::auth::fuzz::spnego),
        (
            "session_setup_legs",
            smb_core::auth::fuzz::session_setup_legs,
        ),
        ("transform", smb_core::crypto::fuzz::transform),
    ];
    smb.iter()
        .chain(smb_core::wire::fuzz::TARGETS)
        .chain(smbcp::fuzzing::TARGETS)
        .find(|(n, _)| *n == name)
        .map(|(_, e)| *e)
}

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let p = e.path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_fuzz_target_replays_its_seeds_and_crashes() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut targets: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_string)
        })
        .collect();
    targets.sort();
    assert!(targets.len() >= 16, "{targets:?}");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for t in &targets {
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "{t} has no [[bin]] in fuzz/Cargo.toml"
        );
        let run = entry(t).unwrap_or_else(|| panic!("fuzz target {t} has no entry point here"));
        let seeds = inputs(&fuzz.join("seeds").join(t));
        assert!(
            !seeds.is_empty(),
            "fuzz target {t} has no seeds in fuzz/seeds/{t}"
        );
        let crashes = inputs(&fuzz.join("artifacts").join(t));
        for (path, data) in seeds.iter().chain(&crashes) {
            for cut in 0..=data.len() {
                if let Err(e) = std::panic::catch_unwind(|| run(&data[..cut])) {
                    panic!("{t}: {path} (first {cut} bytes) panics: {e:?}");
                }
            }
        }
        println!(
            "[fuzz_replay] {t}: {} seeds, {} crash inputs",
            seeds.len(),
            crashes.len()
        );
    }
}
