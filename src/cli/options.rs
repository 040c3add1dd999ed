//! `Options::try_from(Args)`: the validated, resolved configuration. Every
//! value that can be wrong (sizes, durations, globs, locations, ranges) is
//! checked here, so the engine never sees bad input.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use globset::{Glob, GlobSet, GlobSetBuilder};

use smb_core::ClientConfig;

pub use crate::backend::smb::ConnectorConfig;
pub use crate::backend::ZeroCopy;
use crate::cli::Args;
pub use crate::copy::config::{CopyFlags, EngineConfig, RESTARTABLE_DEFAULT_MIN};
use crate::copy::retry::RetryPolicy;
use crate::exit::ExitMode;
use crate::location::Location;
use crate::plan::{Filter, Selection};
pub use crate::report::{JsonTarget, ReportConfig};
use crate::scan::ScanConfig;

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
    pub output: ReportConfig,
    /// Exit-code convention.
    pub exit_mode: ExitMode,
    /// Where credentials come from.
    pub auth: AuthSource,
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
        // A FILE_GLOB with a separator is a relative-path pattern only when it
        // looks like one (a wildcard, relative, not an SMB path): anything else
        // is most likely a second SOURCE (`smbcp a b DEST`) or a mistyped path.
        if let Some(g) = a
            .globs
            .iter()
            .find(|g| g.contains(['/', '\\']) && !path_glob(g))
        {
            bail!(
                "FILE_GLOB {g:?} holds a path separator but no wildcard: smbcp takes one \
                 SOURCE and one DEST (a relative-path pattern needs a wildcard, or --include)"
            );
        }
        let (path_globs, name_globs): (Vec<String>, Vec<String>) = a
            .globs
            .iter()
            .chain(&a.include)
            .map(|g| g.replace('\\', "/"))
            .partition(|g| g.contains('/'));
        if a.delete_excluded && !(a.purge || a.mirror) {
            bail!("--delete-excluded deletes only with --mirror or --purge");
        }
        if a.password_stdin && a.files_from.as_deref() == Some(std::path::Path::new("-")) {
            bail!("--files-from - and --password-stdin cannot both read stdin");
        }
        let files_from = match &a.files_from {
            None => None,
            Some(p) => {
                let text = if p.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).context("--files-from: stdin")?
                } else {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("--files-from: cannot read {}", p.display()))?
                };
                Some(std::sync::Arc::new(parse_files_from(&text)))
            }
        };
        let now = SystemTime::now();
        let filter = Filter {
            include: globs(&name_globs, "FILE_GLOB/--include")?,
            include_paths: globs(&path_globs, "FILE_GLOB/--include")?,
            files_from,
            include_attrs: a
                .include_attr
                .as_deref()
                .map(parse_attr_letters)
                .transpose()
                .context("--include-attr")?,
            exclude_attrs: a
                .exclude_attr
                .as_deref()
                .map(parse_attr_letters)
                .transpose()
                .context("--exclude-attr")?
                .unwrap_or(0),
            delete_excluded: a.delete_excluded,
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
            only: None,
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
            output: ReportConfig {
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
                list_times: a.list_times,
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

impl Options {
    /// The scanner's settings.
    pub fn scan_config(&self) -> ScanConfig {
        ScanConfig {
            filter: self.filter.clone(),
            selection: self.selection,
            subdirs: self.subdirs,
            empty_dirs: self.empty_dirs,
            list_only: self.list_only,
            dcopy: self.dcopy,
            move_dirs: self.move_dirs,
            follow_links: self.follow_links,
            retry: self.retry_policy(),
        }
    }

    /// The copy engine's settings.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            mt: self.mt,
            zero_copy: self.zero_copy,
            bwlimit: self.bwlimit,
            retries: self.retries,
            wait: self.wait,
            temp_name: self.temp_name.clone(),
            copy: self.copy,
            list_only: self.list_only,
            create_only: self.create_only,
            move_files: self.move_files,
            verify: self.verify,
            restartable_min: self.restartable_min,
            state_dir: self.state_dir.clone(),
            dest_key: self.dest.resume_key(),
        }
    }

    /// The reporter's settings.
    pub fn report_config(&self) -> ReportConfig {
        self.output.clone()
    }

    /// How SMB servers are connected to: smb-core's client settings and the
    /// reconnect budget.
    pub fn connector_config(&self) -> ConnectorConfig {
        let mut client = ClientConfig::default();
        client.sign = self.sign;
        client.max_dir_entries = self.max_dir_entries;
        if self.encrypt {
            client.encryption = smb_core::EncryptionMode::Required;
        }
        if let Some(t) = self.timeout {
            client.connect_timeout = t;
            client.request_timeout = t;
        }
        // Durable handles are kept by the server while we reconnect (Samba caps
        // the timeout at 300 s).
        client.durable_timeout = self
            .reconnect_for
            .clamp(Duration::from_secs(10), Duration::from_secs(300));
        ConnectorConfig {
            client,
            reconnect_for: self.reconnect_for,
            unbuffered: self.unbuffered,
        }
    }

    /// `--retries` and `--wait`.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            wait: self.wait,
        }
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

/// Whether a FILE_GLOB holding a separator is a relative-path pattern: it
/// has a wildcard, is relative, has no `.`/`..` component and is no SMB path.
fn path_glob(g: &str) -> bool {
    let g = g.replace('\\', "/");
    g.contains(['*', '?', '[', '{'])
        && !g.starts_with('/')
        && !g.contains("://")
        && !g.split('/').any(|c| c == "." || c == "..")
}

/// Parses `--files-from` text: one path relative to SOURCE a line, `\` or
/// `/` separated (stored `/`-separated, without a leading `./` or `/` and
/// trailing separators); empty lines and `#` comments are skipped.
pub fn parse_files_from(text: &str) -> std::collections::HashSet<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace('\\', "/")
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect::<Vec<_>>()
                .join("/")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Parses robocopy attribute letters (`/IA`, `/XA`: R A S H C N E T O) into
/// FILE_ATTRIBUTE_* bits (MS-FSCC 2.6).
pub fn parse_attr_letters(s: &str) -> anyhow::Result<u32> {
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c.to_ascii_uppercase() {
            'R' => 0x1,
            'H' => 0x2,
            'S' => 0x4,
            'A' => 0x20,
            'T' => 0x100,
            'C' => 0x800,
            'O' => 0x1000,
            'N' => 0x2000,
            'E' => 0x4000,
            _ => bail!(
                "unknown attribute letter {c:?}; use R (read-only), A (archive), S (system), \
                 H (hidden), C (compressed), N (not content indexed), E (encrypted), \
                 T (temporary), O (offline)"
            ),
        };
    }
    if bits == 0 {
        bail!("no attribute letters given");
    }
    Ok(bits)
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
    fn each_subsystem_gets_its_config_and_the_engine_defaults_are_the_cli_defaults() {
        let o = opts(&[]).unwrap();
        let e = o.engine_config();
        assert_eq!(
            e,
            EngineConfig {
                dest_key: o.dest.resume_key(),
                ..EngineConfig::default()
            }
        );
        let o = opts(&[
            "--mt",
            "3",
            "--retries",
            "1",
            "--wait",
            "1s",
            "--mirror",
            "--no-restartable",
        ])
        .unwrap();
        let (e, s) = (o.engine_config(), o.scan_config());
        assert_eq!(
            (e.mt, e.retries, e.wait, e.restartable_min),
            (3, 1, Duration::from_secs(1), None)
        );
        assert!(s.subdirs && s.empty_dirs && s.retry.retries == 1);
        let c = opts(&["--timeout", "3s", "--reconnect-for", "1m", "--no-sign"])
            .unwrap()
            .connector_config();
        assert_eq!(c.client.request_timeout, Duration::from_secs(3));
        assert_eq!(c.reconnect_for, Duration::from_secs(60));
        assert!(!c.client.sign);
    }

    #[test]
    fn path_globs_includes_files_from_and_attribute_filters() {
        let o = opts(&[
            "*.txt",
            "a/*.bin",
            "--include",
            "b\\**\\*.md",
            "--include",
            "x*",
        ])
        .unwrap();
        let f = &o.filter;
        assert!(f.included("top.txt", "top.txt") && f.included("d/x1", "x1"));
        assert!(f.included("a/y.bin", "y.bin") && !f.included("c/y.bin", "y.bin"));
        assert!(
            !f.included("a/b/y.bin", "y.bin"),
            "* stays inside one directory"
        );
        assert!(f.included("b/c/d/z.md", "z.md") && !f.included("z.md", "z.md"));
        // A separator without a wildcard is a second SOURCE, not a pattern.
        assert!(
            opts(&["a/b"]).is_err() && opts(&["../*.txt"]).is_err() && opts(&["/abs/*"]).is_err()
        );
        assert_eq!(
            parse_files_from("a/b.txt\r\n\n# note\n./c\\d.bin\n/e/\n"),
            ["a/b.txt", "c/d.bin", "e"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert_eq!(parse_attr_letters("rh").unwrap(), 0x3);
        assert_eq!(
            parse_attr_letters("ASCNETO").unwrap(),
            0x20 | 0x4 | 0x800 | 0x2000 | 0x4000 | 0x100 | 0x1000
        );
        assert!(parse_attr_letters("").is_err() && parse_attr_letters("Q").is_err());
        let o = opts(&["--include-attr", "R", "--exclude-attr", "HS"]).unwrap();
        assert!(!o.filter.attributes_excluded(0x21));
        assert!(o.filter.attributes_excluded(0x20), "not read-only");
        assert!(o.filter.attributes_excluded(0x3), "hidden");
        assert!(opts(&["--delete-excluded"]).is_err());
        assert!(
            opts(&["--delete-excluded", "--mirror"])
                .unwrap()
                .filter
                .delete_excluded
        );
        assert!(opts(&["--files-from", "/no/such/list"]).is_err());
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
            ClientConfig::default().max_dir_entries
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
