//! `Options::try_from(Args)`: the validated, resolved configuration. Every
//! value that can be wrong (sizes, durations, globs, locations, ranges) is
//! checked here, so the engine never sees bad input.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::Args;
use crate::exit::ExitMode;
use crate::location::Location;
use crate::plan::{Filter, Selection};

/// Files from this size on are restartable by default (`--restartable` makes
/// every block-copied file so, `--no-restartable` none).
pub const RESTARTABLE_DEFAULT_MIN: u64 = 64 << 20;

/// Highest `--mt`.
pub const MAX_MT: usize = 128;
/// Default `--max-delete`.
pub const DEFAULT_MAX_DELETE: u64 = 1000;
/// `--max-dir-entries` when not given (`smb_core::ClientConfig`'s default too).
pub const DEFAULT_MAX_DIR_ENTRIES: u64 = 1_000_000;

/// The whole validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to copy from.
    pub source: Location,
    /// Where to copy to.
    pub dest: Location,
    /// The FILE_GLOB arguments as given, for the report header.
    pub globs: Option<String>,
    /// Which files and directories take part.
    pub filter: Filter,
    /// How classes are turned into copy decisions.
    pub selection: Selection,
    /// Descend into subdirectories.
    pub subdirs: bool,
    /// Create empty directories too.
    pub empty_dirs: bool,
    /// Delete extras after a successful copy pass.
    pub purge: bool,
    /// Refuse all deletes when more than this many would happen (`None`: no limit).
    pub max_delete: Option<u64>,
    /// Delete source files once copied.
    pub move_files: bool,
    /// Follow symlinks in a local source (loops by device and inode refused).
    pub follow_links: bool,
    /// Also remove emptied source directories.
    pub move_dirs: bool,
    /// Change nothing, only report.
    pub list_only: bool,
    /// Create zero-length files only.
    pub create_only: bool,
    /// Concurrent copy jobs.
    pub mt: usize,
    /// Unbuffered I/O.
    pub unbuffered: bool,
    /// When data may skip user memory.
    pub zero_copy: ZeroCopy,
    /// Retries after transient errors.
    pub retries: u32,
    /// `--temp-name`: the only temporary name pattern to use.
    pub temp_name: Option<crate::copy::temp::TempPattern>,
    /// First retry delay.
    pub wait: Duration,
    /// SMB connect/request timeout.
    pub timeout: Option<Duration>,
    /// How long to keep reconnecting after a connection is lost.
    pub reconnect_for: Duration,
    /// `--verify`: read back and compare every copied file.
    pub verify: bool,
    /// Files of at least this many bytes (copied in blocks) are restartable;
    /// `None`: none are.
    pub restartable_min: Option<u64>,
    /// Where resume journals live.
    pub state_dir: PathBuf,
    /// Throughput limit in bytes per second.
    pub bwlimit: Option<u64>,
    /// Sign every SMB message (`ClientConfig::sign`): on unless `--no-sign`
    /// or `--guest` (a guest session has no key to sign with).
    pub sign: bool,
    /// Require encryption.
    pub encrypt: bool,
    /// `--max-dir-entries`: most entries one SMB directory listing may return
    /// (`ClientConfig::max_dir_entries`).
    pub max_dir_entries: u64,
    /// `--copy`: data, attributes, timestamps.
    pub copy: CopyFlags,
    /// `--dcopy`: attributes and timestamps for directories.
    pub dcopy: CopyFlags,
    /// Reporting.
    pub output: OutputOptions,
    /// Exit-code convention.
    pub exit_mode: ExitMode,
    /// Where credentials come from.
    pub auth: AuthSource,
}

/// What `--copy`/`--dcopy` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyFlags {
    /// D: file data.
    pub data: bool,
    /// A: attributes (read-only, hidden, system, archive).
    pub attributes: bool,
    /// T: timestamps.
    pub timestamps: bool,
}

/// Reporting settings.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// Log file and whether to append.
    pub log: Option<(PathBuf, bool)>,
    /// Also print to stdout when logging.
    pub tee: bool,
    /// List files.
    pub file_list: bool,
    /// List directories.
    pub dir_list: bool,
    /// Allow a progress display (still only on a terminal).
    pub progress: bool,
    /// Exact byte counts instead of human sizes.
    pub bytes: bool,
    /// No job header (`--no-header`).
    pub no_header: bool,
    /// No closing summary table (`--no-summary`).
    pub no_summary: bool,
    /// No class column in the lists (`--no-class`).
    pub no_class: bool,
    /// No size column in the lists (`--no-size`).
    pub no_size: bool,
    /// `--full-path`: the SOURCE and DEST roots the listed relative paths are joined to.
    pub full_paths: Option<(String, String)>,
    /// JSON report target: `None`, a file, or stdout (`-`).
    pub json: Option<JsonTarget>,
    /// `--events` NDJSON target.
    pub events: Option<JsonTarget>,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

/// When file data may move between socket and local file inside the kernel
/// (`splice(2)`, Linux, unsigned and unencrypted sessions only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ZeroCopy {
    /// Downloads always; uploads unless the server is on this machine. Over
    /// loopback the server's CPU is the network: handed page-cache pages by
    /// reference, smbd copies them cold from RAM (measured: smbd 0.48-0.59
    /// CPU-s/GB against 0.39-0.40 when we send a copy), so there an upload
    /// copies through memory.
    #[default]
    Auto,
    /// Whenever the session allows it, loopback included.
    Always,
    /// Never: every byte passes through memory.
    Never,
}

/// Where `--json` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTarget {
    /// Standard output (human output then goes to stderr).
    Stdout,
    /// A file.
    File(PathBuf),
}

/// Where the SMB password comes from (resolved later, only when SMB is used).
#[derive(Debug, Clone, Default)]
pub struct AuthSource {
    /// `--user`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--password-stdin`.
    pub password_stdin: bool,
    /// `--auth-file`.
    pub auth_file: Option<PathBuf>,
    /// `--guest`.
    pub guest: bool,
    /// `--empty-password`: an empty password is meant, not a mistake.
    pub empty_password: bool,
    /// `--auth`, `--kerberos`, `--keytab`, `--spn`.
    pub kerberos: crate::creds::KerberosArgs,
}

impl TryFrom<Args> for Options {
    type Error = anyhow::Error;

    fn try_from(a: Args) -> anyhow::Result<Self> {
        let source = Location::parse(&a.source).context("SOURCE")?;
        let dest = Location::parse(&a.dest).context("DEST")?;
        if let (Location::Local(s), Location::Local(d)) = (&source, &dest) {
            if s == d {
                bail!("SOURCE and DEST are the same directory");
            }
        }
        if a.mt == 0 || a.mt as usize > MAX_MT {
            bail!("--mt must be between 1 and {MAX_MT}, got {}", a.mt);
        }
        if a.lev == Some(0) {
            bail!("--lev must be at least 1");
        }
        // A pattern is matched against names, so one with a separator can never
        // match: most likely a second SOURCE (`smbcp a b DEST`) or a mistyped path.
        if let Some(g) = a.globs.iter().find(|g| g.contains(['/', '\\'])) {
            bail!(
                "FILE_GLOB {g:?} holds a path separator, but patterns match file names only \
                 (smbcp takes one SOURCE and one DEST)"
            );
        }
        let now = SystemTime::now();
        let filter = Filter {
            include: globs(&a.globs, "FILE_GLOB")?,
            exclude_files: globs(&a.exclude_file, "--exclude-file")?,
            exclude_dirs: globs(&a.exclude_dir, "--exclude-dir")?,
            max_size: a
                .max_size
                .as_deref()
                .map(parse_size)
                .transpose()
                .context("--max-size")?,
            min_size: a
                .min_size
                .as_deref()
                .map(parse_size)
                .transpose()
                .context("--min-size")?,
            oldest: a
                .max_age
                .as_deref()
                .map(|s| parse_age(s, now))
                .transpose()
                .context("--max-age")?,
            newest: a
                .min_age
                .as_deref()
                .map(|s| parse_age(s, now))
                .transpose()
                .context("--min-age")?,
            max_level: a.lev,
        };
        let selection = Selection {
            exclude_older: a.exclude_older,
            exclude_newer: a.exclude_newer,
            exclude_changed: a.exclude_changed,
            exclude_extra: a.exclude_extra,
            include_same: a.include_same,
            fft: a.fft,
            case_insensitive: dest.is_smb(),
            src_links: !source.is_smb(),
            dst_links: !dest.is_smb(),
        };
        let copy = parse_copy_flags(&a.copy).context("--copy")?;
        if !copy.data {
            bail!("--copy must include D (data); got {:?}", a.copy);
        }
        let dcopy = parse_copy_flags(&a.dcopy).context("--dcopy")?;
        let max_delete = match a.max_delete.as_deref() {
            None => Some(DEFAULT_MAX_DELETE),
            Some(s) if s.eq_ignore_ascii_case("unlimited") || s.eq_ignore_ascii_case("none") => {
                None
            }
            Some(s) => Some(
                s.parse()
                    .with_context(|| format!("--max-delete: not a number: {s:?}"))?,
            ),
        };
        let target = |j: String| {
            if j == "-" {
                JsonTarget::Stdout
            } else {
                JsonTarget::File(j.into())
            }
        };
        let json = a.json.map(target);
        let events = a.events.map(target);
        if json == Some(JsonTarget::Stdout) && events == Some(JsonTarget::Stdout) {
            bail!("--json - and --events - cannot both write to stdout: give one a file");
        }
        let log = a
            .log
            .map(|p| (p, false))
            .or_else(|| a.log_append.map(|p| (p, true)));
        let verbosity = if a.quiet > 0 {
            -1
        } else {
            a.verbose.min(3) as i8
        };
        let full_paths = a.full_path.then(|| (source.to_string(), dest.to_string()));
        Ok(Self {
            globs: (!a.globs.is_empty()).then(|| a.globs.join(" ")),
            source,
            dest,
            filter,
            selection,
            subdirs: a.subdirs || a.empty_dirs || a.mirror || a.move_all,
            empty_dirs: a.empty_dirs || a.mirror,
            purge: a.purge || a.mirror,
            max_delete,
            move_files: a.move_files || a.move_all,
            follow_links: a.follow_links,
            move_dirs: a.move_all,
            list_only: a.list_only,
            create_only: a.create,
            mt: a.mt as usize,
            unbuffered: a.unbuffered,
            zero_copy: a.zero_copy,
            retries: a.retries,
            temp_name: a
                .temp_name
                .as_deref()
                .map(crate::copy::temp::TempPattern::parse)
                .transpose()
                .context("--temp-name")?,
            wait: parse_duration(&a.wait).context("--wait")?,
            timeout: a
                .timeout
                .as_deref()
                .map(parse_duration)
                .transpose()
                .context("--timeout")?,
            reconnect_for: parse_duration(&a.reconnect_for).context("--reconnect-for")?,
            verify: a.verify,
            restartable_min: if a.no_restartable {
                None
            } else if a.restartable {
                Some(0)
            } else {
                Some(RESTARTABLE_DEFAULT_MIN)
            },
            state_dir: a
                .state_dir
                .clone()
                .unwrap_or_else(crate::copy::journal::default_state_dir),
            // Signed by default: unsigned traffic can be altered on the way.
            // A guest session cannot sign (no key); --guest --sign is refused.
            sign: !a.no_sign && !a.guest,
            encrypt: a.encrypt,
            max_dir_entries: a.max_dir_entries.unwrap_or(DEFAULT_MAX_DIR_ENTRIES),
            bwlimit: a
                .bwlimit
                .as_deref()
                .map(parse_rate)
                .transpose()
                .context("--bwlimit")?,
            copy,
            dcopy,
            output: OutputOptions {
                log,
                tee: a.tee,
                file_list: !a.no_file_list && verbosity >= 0,
                dir_list: !a.no_dir_list && verbosity >= 0,
                progress: !a.no_progress && verbosity >= 0,
                bytes: a.bytes,
                no_header: a.no_header,
                no_summary: a.no_summary,
                no_class: a.no_class,
                no_size: a.no_size,
                full_paths,
                json,
                events,
                verbosity,
            },
            exit_mode: a.exit_codes,
            auth: AuthSource {
                user: a.user,
                password_file: a.password_file,
                password_stdin: a.password_stdin,
                auth_file: a.auth_file,
                guest: a.guest,
                empty_password: a.empty_password,
                kerberos: crate::creds::KerberosArgs::new(a.auth, a.kerberos, a.keytab, a.spn)?,
            },
        })
    }
}

fn globs(patterns: &[String], what: &str) -> anyhow::Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // Windows names are case-insensitive; so are robocopy's filters.
        let g = globset::GlobBuilder::new(p)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(p))
            .with_context(|| format!("{what}: bad glob {p:?}"))?;
        b.add(g);
    }
    Ok(Some(
        b.build().with_context(|| format!("{what}: bad globs"))?,
    ))
}

/// Parses `--copy`/`--dcopy` letters.
pub fn parse_copy_flags(s: &str) -> anyhow::Result<CopyFlags> {
    let mut f = CopyFlags::default();
    for c in s.chars() {
        match c.to_ascii_uppercase() {
            'D' => f.data = true,
            'A' => f.attributes = true,
            'T' => f.timestamps = true,
            'S' | 'O' | 'U' | 'X' | 'E' => {
                bail!("{c:?} (security, owner, auditing, alternate streams, EAs) is not supported; use D, A, T")
            }
            _ => bail!("unknown letter {c:?}; use D (data), A (attributes), T (timestamps)"),
        }
    }
    Ok(f)
}

/// Splits `123.5Mi` into the number and its suffix.
fn split_number(s: &str) -> anyhow::Result<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(end);
    if n.is_empty() {
        bail!("expected a number, got {s:?}");
    }
    let n: f64 = n.parse().with_context(|| format!("bad number {n:?}"))?;
    Ok((n, unit.trim()))
}

/// Parses a size: bytes, or with a K/M/G/T suffix (binary: K = 1024; `KB`, `KiB` the same).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let (n, unit) = split_number(s)?;
    let mult: u64 = match unit
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => bail!("unknown size unit {unit:?} in {s:?} (use K, M, G, T)"),
    };
    Ok((n * mult as f64) as u64)
}

/// Parses a rate in bytes per second: a size (`50M`, `/s` optional) or bits (`100Mbit`, decimal).
pub fn parse_rate(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().trim_end_matches("/s");
    let lower = t.to_ascii_lowercase();
    let rate = if let Some(bits) = lower
        .strip_suffix("bit")
        .or_else(|| lower.strip_suffix("bps"))
    {
        let (n, unit) = split_number(bits)?;
        let mult = match unit {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            _ => bail!("unknown rate unit in {s:?}"),
        };
        (n * mult / 8.0) as u64
    } else {
        parse_size(t)?
    };
    if rate == 0 {
        bail!("the rate must be positive");
    }
    Ok(rate)
}

/// Parses a duration: `500ms`, `2s`, `1.5m`, `1h`, `1d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (n, unit) = split_number(s)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => bail!("unknown duration unit {unit:?} in {s:?} (use ms, s, m, h, d)"),
    };
    // A huge number is an error, not a panic (found by fuzzing: cli_option_values).
    Duration::try_from_secs_f64(secs).with_context(|| format!("duration {s:?} is out of range"))
}

/// Parses a robocopy age into a point in time: `n` < 1900 days ago, a date
/// `YYYYMMDD` (UTC midnight), or a duration with a unit (`12h`) ago.
pub fn parse_age(s: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = s.parse().context("bad number")?;
        if n < 1900 {
            return now
                .checked_sub(Duration::from_secs(n * 86_400))
                .with_context(|| format!("{s:?} days ago is out of range"));
        }
        if s.len() != 8 {
            bail!("expected days (< 1900) or a date YYYYMMDD, got {s:?}");
        }
        let (y, m, d) = (n / 10_000, (n / 100) % 100, n % 100);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            bail!("bad date {s:?}");
        }
        let days = days_from_civil(y as i64, m as u32, d as u32);
        let secs = u64::try_from(days * 86_400).context("dates before 1970 are not supported")?;
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    now.checked_sub(parse_duration(s)?)
        .with_context(|| format!("{s:?} ago is out of range"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn opts(args: &[&str]) -> anyhow::Result<Options> {
        let a = Args::try_parse_from(["smbcp", "src", "dst"].iter().chain(args)).unwrap();
        Options::try_from(a)
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("1.5M").unwrap(), 1_572_864);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1 TB").unwrap(), 1 << 40);
        assert!(parse_size("x").is_err());
        assert!(parse_size("10q").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate("10M/s").unwrap(), 10 << 20);
        assert_eq!(parse_rate("800Mbit").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1Gbps").unwrap(), 125_000_000);
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("").is_err());
        // Out of range is an error, never a panic (found by fuzzing).
        assert!(parse_duration("301822018200188200182062020620").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn ages() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_age("1", now).unwrap(),
            now - Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_age("12h", now).unwrap(),
            now - Duration::from_secs(43_200)
        );
        assert_eq!(
            parse_age("19700102", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_age("20000301", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(951_868_800)
        );
        assert!(parse_age("20001301", now).is_err());
        assert!(parse_age("123456", now).is_err());
        assert!(parse_age("18000000000000000000s", now).is_err());
        assert!(parse_age("301822018200188200182062020620", now).is_err());
    }

    #[test]
    fn copy_flags() {
        assert_eq!(
            parse_copy_flags("dat").unwrap(),
            CopyFlags {
                data: true,
                attributes: true,
                timestamps: true
            }
        );
        assert_eq!(
            parse_copy_flags("T").unwrap(),
            CopyFlags {
                timestamps: true,
                ..CopyFlags::default()
            }
        );
        assert!(parse_copy_flags("DATS").is_err());
        assert!(parse_copy_flags("Q").is_err());
    }

    #[test]
    fn mirror_implies_empty_dirs_and_purge() {
        let o = opts(&["--mirror"]).unwrap();
        assert!(o.subdirs && o.empty_dirs && o.purge);
        let o = opts(&["-e"]).unwrap();
        assert!(o.subdirs && o.empty_dirs && !o.purge);
        let o = opts(&["--move-all"]).unwrap();
        assert!(o.move_files && o.move_dirs && o.subdirs);
        let o = opts(&[]).unwrap();
        assert!(!o.subdirs && !o.purge && o.max_delete == Some(DEFAULT_MAX_DELETE));
    }

    #[test]
    fn ranges_and_bad_values() {
        assert!(opts(&["--mt", "0"]).is_err());
        assert!(opts(&["--mt", "129"]).is_err());
        assert_eq!(opts(&["--mt", "128"]).unwrap().mt, 128);
        assert!(opts(&["--lev", "0"]).is_err());
        // robocopy accepts /TEE without /LOG: output goes to stdout anyway.
        assert!(opts(&["--tee"]).unwrap().output.tee);
        assert!(opts(&["--exclude-file", "a[b"]).is_err());
        assert!(opts(&["*.txt", "a?c"]).is_ok());
        for path_like in ["other/dst", "..\\x", "/tmp/x"] {
            let e = opts(&[path_like]).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{path_like:?}")) && e.contains("SOURCE"),
                "{e}"
            );
        }
        assert!(opts(&["--max-delete", "many"]).is_err());
        assert_eq!(
            opts(&["--max-delete", "unlimited"]).unwrap().max_delete,
            None
        );
        assert!(opts(&["--copy", "AT"]).is_err());
        assert!(opts(&["--wait", "soon"]).is_err());
        let a = Args::try_parse_from(["smbcp", "same", "same"]).unwrap();
        assert!(Options::try_from(a).is_err());
    }

    #[test]
    fn output_switches() {
        let o = opts(&["-q"]).unwrap();
        assert!(!o.output.file_list && !o.output.progress && o.output.verbosity == -1);
        let o = opts(&["--json", "-", "--log-append", "x.log"]).unwrap();
        assert_eq!(o.output.json, Some(JsonTarget::Stdout));
        assert_eq!(o.output.log, Some(("x.log".into(), true)));
    }

    #[test]
    fn signing_is_the_default_and_guest_and_empty_password_are_explicit() {
        let o = opts(&[]).unwrap();
        assert!(o.sign && !o.auth.guest && !o.auth.empty_password && !o.follow_links);
        assert!(opts(&["--sign"]).unwrap().sign);
        assert!(!opts(&["--no-sign"]).unwrap().sign);
        assert_eq!(o.max_dir_entries, DEFAULT_MAX_DIR_ENTRIES);
        assert_eq!(
            DEFAULT_MAX_DIR_ENTRIES,
            smb_core::ClientConfig::default().max_dir_entries
        );
        assert_eq!(
            opts(&["--max-dir-entries", "50"]).unwrap().max_dir_entries,
            50
        );
        for bad in ["0", "lots"] {
            let a = ["smbcp", "a", "b", "--max-dir-entries", bad];
            assert!(Args::try_parse_from(a).is_err(), "{bad}");
        }
        let g = opts(&["--guest"]).unwrap();
        assert!(g.auth.guest && !g.sign, "a guest session is unsigned");
        assert!(Args::try_parse_from(["smbcp", "a", "b", "--guest", "--sign"]).is_err());
        assert!(opts(&["--empty-password"]).unwrap().auth.empty_password);
        assert!(opts(&["--follow-links"]).unwrap().follow_links);
        let conflict = ["smbcp", "a", "b", "--guest", "--empty-password"];
        assert!(Args::try_parse_from(conflict).is_err());
    }
}
