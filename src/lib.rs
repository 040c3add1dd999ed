//! smbcp: robocopy, rewritten in Rust, with its own SMB2/3 client.
//!
//! The binary is `main.rs`; this library exposes the pieces so tests (and the
//! completion/man-page staleness test) can reach them: [`cli`] (flags,
//! robocopy spelling, validation), [`location`], [`backend`], [`scan`] and
//! [`plan`], [`copy`], [`report`], [`exit`].

pub mod backend;
pub mod cli;
pub mod copy;
pub mod creds;
pub mod events;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod location;
pub mod plan;
pub mod report;
pub mod run;
pub mod scan;

use std::ffi::OsString;

use clap::{CommandFactory as _, Parser as _};

pub use cli::{Args, Options};
pub use exit::{ExitMode, Failure};

/// The clap command (for completions and the man page).
pub fn command() -> clap::Command {
    Args::command()
}

/// What parsing the command line produced.
#[derive(Debug)]
pub enum Parsed {
    /// Validated options.
    Run(Box<Options>),
    /// `--help` or `--version`: print this and exit 0.
    Print(String),
    /// Bad input: a one-line message and the exit code to use.
    Usage(String, ExitMode),
}

/// Parses argv (robocopy spelling included) into options.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Parsed {
    let mut argv = argv.into_iter();
    let prog = argv.next().unwrap_or_else(|| "smbcp".into());
    let rest: Vec<OsString> = argv.collect();
    // Known before clap runs so usage errors use the right convention.
    let mode = if rest
        .windows(2)
        .any(|w| w[0] == "--exit-codes" && w[1] == "robocopy")
        || rest.iter().any(|a| a == "--exit-codes=robocopy")
    {
        ExitMode::Robocopy
    } else {
        ExitMode::Default
    };
    let rewritten = match cli::robocopy::rewrite(rest) {
        Ok(r) => r,
        Err(e) => return Parsed::Usage(e, mode),
    };
    let args = match Args::try_parse_from(std::iter::once(prog).chain(rewritten)) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind as K;
            return match e.kind() {
                K::DisplayHelp
                | K::DisplayVersion
                | K::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Parsed::Print(e.render().to_string())
                }
                _ => Parsed::Usage(one_line(&e.render().to_string()), mode),
            };
        }
    };
    let mode = args.exit_codes;
    match Options::try_from(args) {
        Ok(o) => Parsed::Run(Box::new(o)),
        Err(e) => Parsed::Usage(exit::message(&e), mode),
    }
}

/// A clap error as one line, without its `error: ` prefix: the first
/// meaningful line plus the indented lines that continue it (clap lists each
/// missing argument on a line of its own).
fn one_line(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or("bad command line");
    let mut line = first.trim().trim_start_matches("error: ").to_string();
    for more in lines.take_while(|l| l.starts_with(' ') && !l.trim().is_empty()) {
        line.push(' ');
        line.push_str(more.trim());
    }
    format!("{line} (see smbcp --help)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        parse(
            std::iter::once("smbcp")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn usage_errors_are_one_line_with_the_right_mode() {
        match p(&["a", "b", "--bogus"]) {
            Parsed::Usage(msg, ExitMode::Default) => {
                assert!(!msg.contains('\n') && msg.contains("--bogus"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        match p(&["a", "b", "--bogus", "--exit-codes", "robocopy"]) {
            Parsed::Usage(_, ExitMode::Robocopy) => {}
            other => panic!("{other:?}"),
        }
        match p(&["\\\\srv", "b"]) {
            Parsed::Usage(msg, _) => {
                assert!(msg.contains("SOURCE") && msg.contains("share"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(p(&["a"]), Parsed::Usage(..)));
        match p(&[]) {
            Parsed::Usage(msg, _) => assert!(
                msg.contains("<SOURCE>") && msg.contains("<DEST>") && !msg.contains('\n'),
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
        match p(&["a", "b", "/MRI", "--exit-codes", "robocopy"]) {
            Parsed::Usage(msg, ExitMode::Robocopy) => assert!(msg.contains("/MRI"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_and_version_print() {
        assert!(matches!(p(&["--help"]), Parsed::Print(t) if t.contains("--mirror")));
        // robocopy's own spelling of help, alone or with other arguments.
        assert!(matches!(p(&["/?"]), Parsed::Print(t) if t.contains("--mirror")));
        assert!(matches!(p(&["a", "b", "/?"]), Parsed::Print(t) if t.contains("--mirror")));
        assert!(matches!(p(&["--version"]), Parsed::Print(t) if t.contains("smbcp")));
    }

    #[test]
    fn robocopy_spelling_runs() {
        match p(&["a", "b", "/MIR", "/MT:16"]) {
            Parsed::Run(o) => assert!(o.purge && o.mt == 16),
            other => panic!("{other:?}"),
        }
    }
}
