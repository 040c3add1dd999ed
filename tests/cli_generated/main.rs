//! The shell completions in `completions/` and the man page `man/smbcp.1` are
//! generated from the clap definition. This test fails when they are stale;
//! regenerate with `SMBCP_BLESS=1 cargo test --test cli_generated`. The
//! generators (clap_complete, clap_mangen) are dev-dependencies: the binary
//! never renders either at run time.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

mod man;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "smbcp.bash"),
        (Shell::Zsh, "_smbcp"),
        (Shell::Fish, "smbcp.fish"),
        (Shell::PowerShell, "_smbcp.ps1"),
        (Shell::Elvish, "smbcp.elv"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut smbcp::command(), "smbcp", &mut buf);
        if shell == Shell::Bash {
            buf = bash_paths_for_positionals(&String::from_utf8(buf).unwrap()).into_bytes();
        }
        out.push((root().join("completions").join(file), buf));
    }
    let mut man = Vec::new();
    man::render(&mut man).expect("rendering the man page");
    out.push((root().join("man/smbcp.1"), man));
    out
}

/// clap_complete's bash script offers every flag where SOURCE, DEST or a
/// FILE_GLOB goes (also at an empty word). Flags only after a `-`, and an
/// empty reply elsewhere, so `complete -o default` completes paths.
fn bash_paths_for_positionals(script: &str) -> String {
    let flags_first = "if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then";
    let fallback = "            COMPREPLY=( $(compgen -W \"${opts}\" -- \"${cur}\") )\n            return 0\n            ;;\n    esac";
    assert!(
        script.contains(flags_first) && script.contains(fallback),
        "clap_complete's bash script changed"
    );
    script.replace(flags_first, "if [[ ${cur} == -* ]] ; then").replace(
        fallback,
        "            # SOURCE, DEST, FILE_GLOB: paths (complete -o default).\n            COMPREPLY=()\n            return 0\n            ;;\n    esac",
    )
}

#[test]
fn completions_offer_paths_for_locations_and_files_for_file_flags() {
    let text = |name: &str| {
        let (_, b) = generated()
            .into_iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap();
        String::from_utf8(b).unwrap()
    };
    let zsh = text("_smbcp");
    assert!(
        zsh.contains(":source -- ") && zsh.contains("(local path or SMB path):_files'"),
        "{zsh}"
    );
    assert!(zsh.contains(":_files -/'"), "DEST completes directories");
    for flag in [
        "--log=",
        "--json=",
        "--events=",
        "--password-file=",
        "--auth-file=",
    ] {
        let line = zsh.lines().find(|l| l.contains(flag)).unwrap();
        assert!(line.ends_with(":FILE:_files' \\"), "{line}");
    }
    let bash = text("smbcp.bash");
    assert!(
        bash.contains("# SOURCE, DEST, FILE_GLOB: paths"),
        "bash positionals"
    );
    assert!(bash.contains("complete -F _smbcp -o nosort -o bashdefault -o default smbcp"));
    assert!(!bash.contains("COMP_CWORD} -eq 1"));
}

fn check_or_bless(path: &Path, want: &[u8]) -> Result<(), String> {
    if std::env::var_os("SMBCP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
        return Ok(());
    }
    match std::fs::read(path) {
        Ok(have) if have == want => Ok(()),
        Ok(_) => Err(format!("{} is stale", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[test]
fn completions_and_man_page_are_up_to_date() {
    let stale: Vec<String> = generated()
        .iter()
        .filter_map(|(p, w)| check_or_bless(p, w).err())
        .collect();
    assert!(
        stale.is_empty(),
        "{}\nregenerate with: SMBCP_BLESS=1 cargo test --test cli_generated",
        stale.join("\n")
    );
}

#[test]
fn generated_files_mention_every_long_flag() {
    let cmd = smbcp::command();
    let bash = generated()
        .into_iter()
        .find(|(p, _)| p.ends_with("smbcp.bash"))
        .unwrap()
        .1;
    let bash = String::from_utf8(bash).unwrap();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                bash.contains(&format!("--{long}")),
                "bash completion lacks --{long}"
            );
        }
    }
}

#[test]
fn readme_documents_every_long_flag() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let missing: Vec<String> = smbcp::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !readme.contains(&format!("`--{long}")))
        .map(|long| format!("--{long}"))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not document {missing:?}"
    );
}
