//! Exit codes: the default scheme (0 ok, 1 some items failed, 2 usage, 3 fatal)
//! and robocopy's 0–16 bitmask (`--exit-codes robocopy`).

use std::process::ExitCode;

/// Which exit-code convention to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExitMode {
    /// 0 success, 1 some items failed, 2 usage error, 3 fatal error.
    #[default]
    Default,
    /// robocopy's bitmask: 1 copied, 2 extras, 4 mismatches, 8 failures, 16 fatal.
    Robocopy,
}

/// How a run ended, before it is turned into a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// At least one file was copied (or would be, with `--list-only`).
    pub copied: bool,
    /// Extra files or directories were found in the destination.
    pub extras: bool,
    /// A file/directory kind mismatch was found.
    pub mismatches: bool,
    /// At least one item failed (copy, delete, listing, refused deletes).
    pub failures: bool,
}

/// A run that could not start or had to stop: bad input or a fatal error.
#[derive(Debug)]
pub enum Failure {
    /// Bad command line or configuration (exit 2, robocopy 16).
    Usage(anyhow::Error),
    /// Cannot connect, authenticate, or the source is missing (exit 3, robocopy 16).
    Fatal(anyhow::Error),
}

impl Failure {
    /// The error to print.
    pub fn error(&self) -> &anyhow::Error {
        match self {
            Self::Usage(e) | Self::Fatal(e) => e,
        }
    }
}

/// An error and its causes on one line, `outer: inner: ...`, like anyhow's
/// `{:#}`, but a cause that only repeats the text before it is left out
/// (an error that wraps another often prints it and also names it as its
/// source: "No such file or directory (os error 2): No such file or directory
/// (os error 2)").
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || last.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

impl ExitMode {
    /// The exit code of a completed run.
    pub fn code(self, o: Outcome) -> u8 {
        match self {
            Self::Default => u8::from(o.failures || o.mismatches),
            Self::Robocopy => {
                u8::from(o.copied)
                    | (u8::from(o.extras) << 1)
                    | (u8::from(o.mismatches) << 2)
                    | (u8::from(o.failures) << 3)
            }
        }
    }

    /// The exit code of a run that failed before or while starting.
    pub fn failure_code(self, f: &Failure) -> u8 {
        match (self, f) {
            (Self::Robocopy, _) => 16,
            (Self::Default, Failure::Usage(_)) => 2,
            (Self::Default, Failure::Fatal(_)) => 3,
        }
    }

    /// Exit code for a usage error found while parsing, before the mode is known for sure.
    pub fn usage_code(self) -> ExitCode {
        ExitCode::from(self.failure_code(&Failure::Usage(anyhow::anyhow!("usage"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Displays its inner error and also returns it as its source.
    #[derive(Debug)]
    struct Wrap(std::io::Error);

    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)
        }
    }

    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn message_leaves_out_repeated_causes() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(Wrap(io)).context("cannot create destination /x");
        let m = message(&e);
        assert_eq!(m.matches("No such file or directory").count(), 1, "{m}");
        assert!(
            m.starts_with("cannot create destination /x: No such file"),
            "{m}"
        );
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(message(&e), "outer: middle: inner");
    }

    #[test]
    fn default_codes() {
        let m = ExitMode::Default;
        assert_eq!(m.code(Outcome::default()), 0);
        assert_eq!(
            m.code(Outcome {
                copied: true,
                extras: true,
                ..Outcome::default()
            }),
            0
        );
        assert_eq!(
            m.code(Outcome {
                failures: true,
                ..Outcome::default()
            }),
            1
        );
        assert_eq!(
            m.code(Outcome {
                mismatches: true,
                ..Outcome::default()
            }),
            1
        );
        assert_eq!(m.failure_code(&Failure::Usage(anyhow::anyhow!("x"))), 2);
        assert_eq!(m.failure_code(&Failure::Fatal(anyhow::anyhow!("x"))), 3);
    }

    #[test]
    fn robocopy_bitmask() {
        let m = ExitMode::Robocopy;
        assert_eq!(m.code(Outcome::default()), 0);
        assert_eq!(
            m.code(Outcome {
                copied: true,
                ..Outcome::default()
            }),
            1
        );
        assert_eq!(
            m.code(Outcome {
                extras: true,
                ..Outcome::default()
            }),
            2
        );
        assert_eq!(
            m.code(Outcome {
                copied: true,
                extras: true,
                ..Outcome::default()
            }),
            3
        );
        assert_eq!(
            m.code(Outcome {
                mismatches: true,
                ..Outcome::default()
            }),
            4
        );
        assert_eq!(
            m.code(Outcome {
                failures: true,
                copied: true,
                ..Outcome::default()
            }),
            9
        );
        assert_eq!(m.failure_code(&Failure::Fatal(anyhow::anyhow!("x"))), 16);
        assert_eq!(m.failure_code(&Failure::Usage(anyhow::anyhow!("x"))), 16);
    }
}
