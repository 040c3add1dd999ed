//! Temporary names: each file is written under a temporary name in its
//! destination directory and renamed over the final name at the end.
//!
//! The default, `.{name}.smbcp-{rand}.tmp`, is hidden and recognisable, but
//! servers may refuse it: Samba's `veto files = /*.tmp/` or `/.*/` makes
//! CREATE fail with STATUS_OBJECT_NAME_NOT_FOUND, Windows file screens with
//! STATUS_ACCESS_DENIED. When creating the temporary file fails that way,
//! [`TempNames`] tries the next pattern (`{name}.smbcp-{rand}`: no leading
//! dot, no `.tmp`) and keeps the one that worked for the rest of the run;
//! when every pattern is refused, the error names the names tried and
//! `--temp-name`. A pattern given with `--temp-name` is the only one tried.
//!
//! On an SMB destination the first choice is one directory at the
//! destination root, [`TEMP_DIR`], for every temporary file of the run
//! (then renamed into place across directories). Samba on a
//! case-insensitive share scans the whole directory for every name it does
//! not find (each new name created or renamed to): with temporary files
//! beside their final names that is two scans of the destination directory
//! per file, with [`TEMP_DIR`] one (the temporary file's CREATE scans only
//! the small temp directory). 20,000 files in one directory: smbd CPU
//! 206 s → 126 s (smbclient: 110 s). A server that refuses the
//! directory (`veto files = /.*/`) gets the same-directory patterns.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rand::Rng as _;
use smb_core::NtStatus;

use crate::backend::OpError;

/// The default pattern.
pub const DEFAULT: &str = ".{name}.smbcp-{rand}.tmp";
/// Tried when the server refuses [`DEFAULT`].
pub const FALLBACK: &str = "{name}.smbcp-{rand}";
/// The directory, at the destination root, of an SMB destination's
/// temporary files; removed at the end of the run when empty. The scanner
/// never lists it (neither copied nor purged).
pub const TEMP_DIR: &str = ".smbcp-tmp";

/// Whether a rendered temporary name lies in [`TEMP_DIR`] (then it is a
/// path relative to the destination root), not beside its file.
pub fn in_temp_dir(temp: &str) -> bool {
    temp.strip_prefix(TEMP_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// A validated `--temp-name` pattern: `{name}` (the file's name, cut to
/// 200 bytes) and `{rand}` (8 random hex digits, required) placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempPattern(String);

impl TempPattern {
    /// Checks a pattern: it must contain `{rand}` (so it never equals the
    /// final name and parallel runs do not collide), and no `/`, `\`, `:` or
    /// NUL (it names a file in the same directory).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if !s.contains("{rand}") {
            anyhow::bail!("{s:?} has no {{rand}} placeholder (e.g. \"{{name}}.smbcp-{{rand}}\")");
        }
        if s.contains(['/', '\\', ':', '\0']) {
            anyhow::bail!("{s:?} must name a file in the same directory (no /, \\, : or NUL)");
        }
        let rest = s.replace("{name}", "").replace("{rand}", "");
        if rest.contains(['{', '}']) {
            anyhow::bail!("{s:?}: the only placeholders are {{name}} and {{rand}}");
        }
        if rest.len() > 40 {
            anyhow::bail!("{s:?}: at most 40 bytes besides the placeholders");
        }
        Ok(Self(s.to_string()))
    }

    /// The temporary name for `name`.
    pub fn render(&self, name: &str) -> String {
        // Keep the whole name under 255 bytes.
        let mut end = name.len().min(200);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let rand = format!("{:08x}", rand::thread_rng().gen::<u32>());
        self.0
            .replace("{name}", &name[..end])
            .replace("{rand}", &rand)
    }
}

impl Default for TempPattern {
    /// [`DEFAULT`].
    fn default() -> Self {
        Self(DEFAULT.to_string())
    }
}

impl std::fmt::Display for TempPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The patterns of a run and which one the destination accepts.
#[derive(Debug)]
pub struct TempNames {
    patterns: Vec<TempPattern>,
    /// Index of the pattern in use: moves forward when the server refuses one.
    current: AtomicUsize,
}

/// The server refused every temporary name tried for a file.
#[derive(Debug)]
pub struct TempRefused {
    /// The names tried, in order.
    pub tried: Vec<String>,
    /// The last refusal.
    pub error: OpError,
}

impl std::fmt::Display for TempRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.tried.iter().map(|n| format!("`{n}`")).collect();
        write!(
            f,
            "the server refused to create the temporary file {} ({}; a `veto files` rule or \
             file screen?); choose a name it accepts with --temp-name PATTERN \
             ({{name}}, {{rand}})",
            names.join(", then "),
            self.error
        )
    }
}

impl std::error::Error for TempRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl TempRefused {
    /// The NTSTATUS name of the refusal, for the failure's code.
    pub fn code(&self) -> String {
        self.error.code()
    }
}

/// Creating a temporary file failed in a way a different name may fix.
fn name_refused(step: &str, e: &OpError) -> bool {
    let OpError::Smb(e) = e else { return false };
    step == "create"
        && e.status().is_some_and(|s| {
            s == NtStatus::OBJECT_NAME_NOT_FOUND
                || s == NtStatus::ACCESS_DENIED
                || s == NtStatus::OBJECT_NAME_INVALID
                // The temp directory could not be made or is not one.
                || s == NtStatus::OBJECT_PATH_NOT_FOUND
                || s == NtStatus::OBJECT_NAME_COLLISION
                || s == NtStatus::NOT_A_DIRECTORY
        })
}

impl TempNames {
    /// `--temp-name` alone when given, else [`DEFAULT`] then [`FALLBACK`],
    /// and with `temp_dir` first a name in [`TEMP_DIR`].
    pub fn new(user: Option<TempPattern>, temp_dir: bool) -> Self {
        let patterns = match user {
            Some(p) => vec![p],
            None => {
                let in_dir = temp_dir.then(|| format!("{TEMP_DIR}/{FALLBACK}"));
                in_dir
                    .into_iter()
                    .chain([DEFAULT, FALLBACK].map(String::from))
                    .map(TempPattern)
                    .collect()
            }
        };
        Self {
            patterns,
            current: AtomicUsize::new(0),
        }
    }

    /// Runs `copy(temp name)` for file `name`; when the server refuses to
    /// create the temporary file, tries the next pattern (and keeps it for
    /// later files). Every pattern refused: a [`TempRefused`] error.
    pub async fn run<F, Fut>(&self, name: &str, mut copy: F) -> Result<(), (&'static str, OpError)>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), (&'static str, OpError)>>,
    {
        let mut tried = Vec::new();
        let mut i = self.current.load(Relaxed);
        loop {
            let temp = self.patterns[i].render(name);
            match copy(temp.clone()).await {
                Err((step, e)) if name_refused(step, &e) => {
                    tried.push(temp);
                    if i + 1 < self.patterns.len() {
                        tracing::info!(
                            "the server refused the temporary name {:?} ({e}); using {} from now on",
                            tried.last(),
                            self.patterns[i + 1]
                        );
                        let _ = self.current.compare_exchange(i, i + 1, Relaxed, Relaxed);
                        i += 1;
                        continue;
                    }
                    let refused = TempRefused { tried, error: e };
                    return Err((step, OpError::Io(std::io::Error::other(refused))));
                }
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> OpError {
        OpError::Smb(smb_core::Error::Status {
            status: NtStatus::OBJECT_NAME_NOT_FOUND,
            command: smb_core::wire::Command::CREATE,
        })
    }

    #[test]
    fn patterns_render_and_validate() {
        let d = TempPattern::parse(DEFAULT).unwrap();
        let a = d.render("file.txt");
        assert!(
            a.starts_with(".file.txt.smbcp-") && a.ends_with(".tmp"),
            "{a}"
        );
        assert_ne!(a, d.render("file.txt"));
        assert!(d.render(&"é".repeat(200)).len() < 255);
        let p = TempPattern::parse("{name}.part-{rand}").unwrap();
        assert!(p.render("x").starts_with("x.part-"));
        for bad in [
            "{name}.tmp",
            "a/{rand}",
            "{rand}\\x",
            "{rand}{nam}",
            "c:{rand}",
        ] {
            assert!(TempPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_refused_name_falls_back_and_the_fallback_sticks() {
        let t = TempNames::new(None, false);
        let mut seen = Vec::new();
        let r = t
            .run("f.txt", |temp| {
                seen.push(temp.clone());
                let dotted = temp.starts_with('.');
                async move {
                    if dotted {
                        Err(("create", refused()))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
        assert!(r.is_ok());
        assert_eq!(seen.len(), 2);
        assert!(seen[1].starts_with("f.txt.smbcp-"), "{seen:?}");
        // The next file starts with the pattern that worked.
        let mut next = Vec::new();
        t.run("g", |temp| {
            next.push(temp);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert!(next[0].starts_with("g.smbcp-"), "{next:?}");
    }

    #[tokio::test]
    async fn every_name_refused_says_why_and_other_errors_pass_through() {
        let t = TempNames::new(None, false);
        let (step, e) = t
            .run("f", |_| async { Err(("create", refused())) })
            .await
            .unwrap_err();
        assert_eq!(step, "create");
        let msg = e.to_string();
        assert!(
            msg.contains("refused to create the temporary file"),
            "{msg}"
        );
        assert!(msg.contains("--temp-name"), "{msg}");
        assert!(
            msg.contains(".f.smbcp-") && msg.contains("then `f.smbcp-"),
            "{msg}"
        );
        assert_eq!(e.code(), "STATUS_OBJECT_NAME_NOT_FOUND");
        // A failed write is not about the name: no second try.
        let mut n = 0;
        let r = t
            .run("f", |_| {
                n += 1;
                async { Err(("write", refused())) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn the_temp_dir_comes_first_and_a_refusal_falls_back_beside_the_file() {
        let t = TempNames::new(None, true);
        let mut seen = Vec::new();
        t.run("f.txt", |temp| {
            seen.push(temp.clone());
            let in_dir = in_temp_dir(&temp);
            async move {
                if in_dir {
                    Err(("create", refused()))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        assert!(seen[0].starts_with(".smbcp-tmp/f.txt.smbcp-"), "{seen:?}");
        assert!(seen[1].starts_with(".f.txt.smbcp-"), "{seen:?}");
        // A --temp-name pattern is the only one, temp dir or not.
        let t = TempNames::new(Some(TempPattern::parse("~{name}.{rand}").unwrap()), true);
        let mut seen = Vec::new();
        t.run("g", |temp| {
            seen.push(temp);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert!(seen[0].starts_with("~g."), "{seen:?}");
    }
}
