//! Rewrites robocopy's `/FLAG[:value]` spelling into our GNU long options before
//! clap sees the command line: `/MIR /MT:32 /R:0 /XF a b` becomes
//! `--mirror --mt 32 --retries 0 --exclude-file a --exclude-file b`.
//!
//! Every flag of robocopy's documented list is in `TABLE`: it is rewritten,
//! accepted as a harmless no-op (output-only flags whose behaviour smbcp has
//! anyway), or refused with a one-line reason. A token that looks like a
//! robocopy flag (`/NAME` or `/NAME:value`) but is not in the table, and is
//! not an existing local path, is a usage error: a typo such as `/MRI` must
//! never become a FILE_GLOB that matches nothing. Absolute Unix paths such as
//! `/home/me/src` pass through untouched (they hold a second `/`, or exist).
//! After `--`, and as the value of a GNU option (`--log /x`), nothing is rewritten.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

/// How one robocopy flag maps to our options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `/S` → `--subdirs`; a `:value` is an error.
    Switch(&'static str),
    /// `/NODCOPY` → `--dcopy ""`: a fixed list of arguments; a `:value` is an error.
    Fixed(&'static [&'static str]),
    /// `/R:n` → `--retries n`; the value is required.
    Value(&'static str),
    /// `/MT[:n]`: the value is optional, default given.
    OptValue(&'static str, &'static str),
    /// `/XF a b c`: the following plain arguments, each as `--exclude-file a`.
    List(&'static str),
    /// `/W:n`: whole seconds → `--wait ns`.
    Seconds(&'static str),
    /// `/IPG:n`: inter-packet gap of n ms per 64 KiB → `--bwlimit`.
    Gap,
    /// Accepted and dropped: output-only, smbcp behaves so anyway (the reason says how).
    Accept(&'static str),
    /// Refused with this reason.
    Refuse(&'static str),
}

const SECURITY: &str =
    "needs security descriptors (ACLs, owner, auditing), not supported; use /COPY:DAT";
const ATTRIBUTES: &str = "changing attributes (and /A, /M: selecting by the archive bit, then clearing it) is not supported; select by attribute with /IA, /XA";
const LINKS: &str = "symbolic links and junctions are not copied as links";
const SCHEDULE: &str =
    "monitoring and run hours are not supported; schedule smbcp with cron or a systemd timer";
const JOBS: &str = "job files are not supported; put the command line in a script";

/// Every robocopy flag (upper-case, as robocopy documents them) and what smbcp does with it.
#[rustfmt::skip]
const TABLE: &[(&str, Kind)] = &[
    // Copy options.
    ("S", Kind::Switch("--subdirs")),
    ("E", Kind::Switch("--empty-dirs")),
    ("LEV", Kind::Value("--lev")),
    ("Z", Kind::Switch("--restartable")),
    ("B", Kind::Refuse("backup mode needs Windows backup privileges, not supported")),
    ("ZB", Kind::Refuse("backup mode needs Windows backup privileges, not supported (use /Z for restartable mode)")),
    ("J", Kind::Switch("--unbuffered")),
    ("EFSRAW", Kind::Refuse("EFS raw copies are Windows-only, not supported")),
    ("COPY", Kind::Value("--copy")),
    ("SEC", Kind::Refuse(SECURITY)),
    ("COPYALL", Kind::Refuse(SECURITY)),
    ("NOCOPY", Kind::Refuse("file data is always copied (--copy must include D)")),
    ("SECFIX", Kind::Refuse(SECURITY)),
    ("TIMFIX", Kind::Refuse("fixing the times of skipped files is not supported")),
    ("PURGE", Kind::Switch("--purge")),
    ("MIR", Kind::Switch("--mirror")),
    ("MOV", Kind::Switch("--move")),
    ("MOVE", Kind::Switch("--move-all")),
    ("A+", Kind::Refuse(ATTRIBUTES)),
    ("A-", Kind::Refuse(ATTRIBUTES)),
    ("CREATE", Kind::Switch("--create")),
    ("FAT", Kind::Refuse("8.3 FAT names are not supported")),
    ("256", Kind::Refuse("long paths are always supported and cannot be turned off")),
    ("MON", Kind::Refuse(SCHEDULE)),
    ("MOT", Kind::Refuse(SCHEDULE)),
    ("RH", Kind::Refuse(SCHEDULE)),
    ("PF", Kind::Refuse(SCHEDULE)),
    ("IPG", Kind::Gap),
    ("SL", Kind::Refuse(LINKS)),
    ("SJ", Kind::Refuse(LINKS)),
    ("MT", Kind::OptValue("--mt", "8")),
    ("DCOPY", Kind::Value("--dcopy")),
    ("NODCOPY", Kind::Fixed(&["--dcopy", ""])),
    ("NOOFFLOAD", Kind::Refuse("server-side copy cannot be turned off")),
    ("COMPRESS", Kind::Refuse("SMB compression is not supported")),
    ("SPARSE", Kind::Refuse("sparse files are not preserved")),
    ("NOCLONE", Kind::Refuse("block cloning is not supported")),
    ("IORATE", Kind::Refuse("use --bwlimit RATE (a total rate in bytes per second)")),
    ("IOMAXSIZE", Kind::Refuse("the I/O size follows the server's limits and cannot be set")),
    ("THRESHOLD", Kind::Refuse("use --bwlimit RATE; there is no size threshold for throttling")),
    // File selection options.
    ("A", Kind::Refuse(ATTRIBUTES)),
    ("M", Kind::Refuse(ATTRIBUTES)),
    ("IA", Kind::Value("--include-attr")),
    ("XA", Kind::Value("--exclude-attr")),
    ("XF", Kind::List("--exclude-file")),
    ("XD", Kind::List("--exclude-dir")),
    ("XC", Kind::Switch("--exclude-changed")),
    ("XN", Kind::Switch("--exclude-newer")),
    ("XO", Kind::Switch("--exclude-older")),
    ("XX", Kind::Switch("--exclude-extra")),
    ("XL", Kind::Refuse("excluding new (lonely) files is not supported")),
    ("IS", Kind::Switch("--include-same")),
    ("IT", Kind::Refuse("attribute changes are not compared (only size and time)")),
    ("IM", Kind::Refuse("change times are not compared (only size and time)")),
    ("MAX", Kind::Value("--max-size")),
    ("MIN", Kind::Value("--min-size")),
    ("MAXAGE", Kind::Value("--max-age")),
    ("MINAGE", Kind::Value("--min-age")),
    ("MAXLAD", Kind::Refuse("last-access dates are not used")),
    ("MINLAD", Kind::Refuse("last-access dates are not used")),
    ("XJ", Kind::Refuse(LINKS)),
    ("XJD", Kind::Refuse(LINKS)),
    ("XJF", Kind::Refuse(LINKS)),
    ("FFT", Kind::Switch("--fft")),
    ("DST", Kind::Refuse("DST compensation is not supported (--fft allows 2 seconds)")),
    // Retry options.
    ("R", Kind::Value("--retries")),
    ("W", Kind::Seconds("--wait")),
    ("REG", Kind::Refuse("there is no registry; give /R and /W each time")),
    ("TBD", Kind::Refuse("waiting for share names to be defined is not supported")),
    ("LFSM", Kind::Refuse("low free space mode is not supported")),
    // Logging options.
    ("L", Kind::Switch("--list-only")),
    ("X", Kind::Accept("extra files are always listed")),
    ("V", Kind::Switch("--verbose")),
    ("TS", Kind::Switch("--list-times")),
    ("FP", Kind::Switch("--full-path")),
    ("BYTES", Kind::Switch("--bytes")),
    ("NS", Kind::Switch("--no-size")),
    ("NC", Kind::Switch("--no-class")),
    ("NFL", Kind::Switch("--no-file-list")),
    ("NDL", Kind::Switch("--no-dir-list")),
    ("NP", Kind::Switch("--no-progress")),
    ("ETA", Kind::Accept("the progress line always shows the ETA")),
    ("LOG", Kind::Value("--log")),
    ("LOG+", Kind::Value("--log-append")),
    ("UNILOG", Kind::Value("--log")),
    ("UNILOG+", Kind::Value("--log-append")),
    ("TEE", Kind::Switch("--tee")),
    ("NJH", Kind::Switch("--no-header")),
    ("NJS", Kind::Switch("--no-summary")),
    ("UNICODE", Kind::Accept("output is always UTF-8")),
    // Job options.
    ("JOB", Kind::Refuse(JOBS)),
    ("SAVE", Kind::Refuse(JOBS)),
    ("QUIT", Kind::Refuse(JOBS)),
    ("NOSD", Kind::Refuse(JOBS)),
    ("NODD", Kind::Refuse(JOBS)),
    ("IF", Kind::Refuse(JOBS)),
    // Usage.
    ("?", Kind::Switch("--help")),
];

/// A robocopy flag split into its table entry and value.
struct Flag<'a> {
    /// The name as the table spells it.
    name: &'static str,
    kind: Kind,
    /// What followed the first `:`, if anything.
    value: Option<&'a str>,
}

/// Splits `/NAME[:value]` into name and value.
fn split(token: &str) -> Option<(&str, Option<&str>)> {
    let rest = token.strip_prefix('/')?;
    Some(match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    })
}

/// Looks a token up in [`TABLE`].
fn lookup(token: &str) -> Option<Flag<'_>> {
    let (name, value) = split(token)?;
    TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(name, kind)| Flag { name, kind, value })
}

/// True when `token` is spelled like a robocopy flag (`/NAME` or
/// `/NAME:value`, NAME of letters, digits, `+`, `-`, `?`) and is not an
/// existing local path.
fn looks_like_flag(token: &str) -> bool {
    let Some((name, _)) = split(token) else {
        return false;
    };
    let spelled = !name.is_empty()
        && name.len() <= 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '?'));
    spelled && std::fs::symlink_metadata(Path::new(token)).is_err()
}

/// The GNU options (`--log`, `-u`) whose next argument is their value, from
/// the clap definition: that argument is passed through unread.
fn takes_value(token: &str) -> bool {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let cmd = crate::command();
        let mut v = Vec::new();
        for a in cmd.get_arguments() {
            if !a.get_action().takes_values() || a.is_positional() {
                continue;
            }
            v.extend(a.get_long().map(|l| format!("--{l}")));
            v.extend(a.get_short().map(|s| format!("-{s}")));
            if let Some(aliases) = a.get_all_aliases() {
                v.extend(aliases.iter().map(|l| format!("--{l}")));
            }
        }
        v
    });
    names.iter().any(|n| n == token)
}

/// Rewrites the arguments (without the program name) into GNU spelling.
///
/// Fails with a one-line message on a robocopy flag smbcp refuses, an unknown
/// `/FLAG`, or a missing or unexpected value.
pub fn rewrite<I>(args: I) -> Result<Vec<OsString>, String>
where
    I: IntoIterator<Item = OsString>,
{
    let mut out = Vec::new();
    let mut iter = args.into_iter().peekable();
    let mut literal = false;
    while let Some(arg) = iter.next() {
        let Some(token) = arg.to_str().filter(|_| !literal) else {
            out.push(arg);
            continue;
        };
        if token == "--" {
            literal = true;
            out.push(arg);
            continue;
        }
        if takes_value(token) {
            out.push(arg);
            out.extend(iter.next());
            continue;
        }
        let Some(Flag { name, kind, value }) = lookup(token) else {
            if looks_like_flag(token) {
                return Err(format!(
                    "unknown robocopy flag {token} (and no such local path; \
                     put a path that starts with / after --)"
                ));
            }
            out.push(arg);
            continue;
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(format!("robocopy flag /{name} needs a value (/{name}:n)")),
            }
        };
        let no_value = || match value {
            Some(_) => Err(format!("robocopy flag /{name} takes no value: {token}")),
            None => Ok(()),
        };
        match kind {
            Kind::Switch(long) => {
                no_value()?;
                out.push(long.into());
            }
            Kind::Fixed(args) => {
                no_value()?;
                out.extend(args.iter().map(OsString::from));
            }
            Kind::Accept(_) => no_value()?,
            Kind::Refuse(why) => {
                return Err(format!("robocopy flag {token} is not supported: {why}"));
            }
            Kind::Value(long) => {
                out.push(long.into());
                out.push(need(value)?.into());
            }
            Kind::OptValue(long, default) => {
                out.push(long.into());
                out.push(value.filter(|v| !v.is_empty()).unwrap_or(default).into());
            }
            Kind::Seconds(long) => {
                let v = need(value)?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("/{name} needs whole seconds, got {v:?}"));
                }
                out.push(long.into());
                out.push(format!("{v}s").into());
            }
            Kind::Gap => {
                let v = need(value)?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("/{name} needs milliseconds, got {v:?}"))?;
                // robocopy sleeps `ms` after every 64 KiB block: that is a rate.
                if let Some(rate) = (65_536 * 1000u64).checked_div(ms) {
                    out.push("--bwlimit".into());
                    out.push(rate.to_string().into());
                }
            }
            Kind::List(long) => {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    out.push(long.into());
                    out.push(v.into());
                }
                while let Some(next) = iter.peek() {
                    let Some(s) = next.to_str() else { break };
                    if s.starts_with('-') || lookup(s).is_some() || looks_like_flag(s) {
                        break;
                    }
                    out.push(long.into());
                    out.push(s.into());
                    iter.next();
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Result<Vec<String>, String> {
        rewrite(args.iter().map(OsString::from))
            .map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    /// What a flag turns into: GNU arguments, or an error containing the text.
    enum Want {
        Gnu(&'static [&'static str]),
        Refused(&'static str),
    }
    use Want::{Gnu, Refused};

    /// robocopy's documented flags, each with what smbcp makes of it.
    #[rustfmt::skip]
    const EVERY_FLAG: &[(&str, Want)] = &[
        ("/S", Gnu(&["--subdirs"])),
        ("/e", Gnu(&["--empty-dirs"])),
        ("/LEV:3", Gnu(&["--lev", "3"])),
        ("/Z", Gnu(&["--restartable"])),
        ("/B", Refused("backup")),
        ("/ZB", Refused("backup")),
        ("/J", Gnu(&["--unbuffered"])),
        ("/EFSRAW", Refused("EFS")),
        ("/COPY:DT", Gnu(&["--copy", "DT"])),
        ("/SEC", Refused("security descriptors")),
        ("/COPYALL", Refused("security descriptors")),
        ("/NOCOPY", Refused("always copied")),
        ("/SECFIX", Refused("security descriptors")),
        ("/TIMFIX", Refused("times of skipped")),
        ("/PURGE", Gnu(&["--purge"])),
        ("/MIR", Gnu(&["--mirror"])),
        ("/MOV", Gnu(&["--move"])),
        ("/MOVE", Gnu(&["--move-all"])),
        ("/A+:R", Refused("attribute")),
        ("/A-:H", Refused("attribute")),
        ("/CREATE", Gnu(&["--create"])),
        ("/FAT", Refused("8.3")),
        ("/256", Refused("long paths")),
        ("/MON:1", Refused("cron")),
        ("/MOT:5", Refused("cron")),
        ("/RH:0800-1700", Refused("cron")),
        ("/PF", Refused("cron")),
        ("/IPG:1000", Gnu(&["--bwlimit", "65536"])),
        ("/SL", Refused("links")),
        ("/SJ", Refused("links")),
        ("/MT", Gnu(&["--mt", "8"])),
        ("/MT:32", Gnu(&["--mt", "32"])),
        ("/DCOPY:T", Gnu(&["--dcopy", "T"])),
        ("/NODCOPY", Gnu(&["--dcopy", ""])),
        ("/NOOFFLOAD", Refused("server-side copy")),
        ("/COMPRESS", Refused("compression")),
        ("/SPARSE", Refused("sparse")),
        ("/NOCLONE", Refused("cloning")),
        ("/IORATE:1M", Refused("--bwlimit")),
        ("/IOMAXSIZE:1M", Refused("I/O size")),
        ("/THRESHOLD:1M", Refused("--bwlimit")),
        ("/A", Refused("attribute")),
        ("/M", Refused("attribute")),
        ("/IA:RH", Gnu(&["--include-attr", "RH"])),
        ("/XA:SH", Gnu(&["--exclude-attr", "SH"])),
        ("/XF", Gnu(&[])),
        ("/XD", Gnu(&[])),
        ("/XC", Gnu(&["--exclude-changed"])),
        ("/XN", Gnu(&["--exclude-newer"])),
        ("/XO", Gnu(&["--exclude-older"])),
        ("/XX", Gnu(&["--exclude-extra"])),
        ("/XL", Refused("lonely")),
        ("/IS", Gnu(&["--include-same"])),
        ("/IT", Refused("attribute changes")),
        ("/IM", Refused("change times")),
        ("/MAX:100", Gnu(&["--max-size", "100"])),
        ("/min:5", Gnu(&["--min-size", "5"])),
        ("/MAXAGE:7", Gnu(&["--max-age", "7"])),
        ("/MINAGE:20240101", Gnu(&["--min-age", "20240101"])),
        ("/MAXLAD:7", Refused("last-access")),
        ("/MINLAD:7", Refused("last-access")),
        ("/XJ", Refused("junctions")),
        ("/XJD", Refused("junctions")),
        ("/XJF", Refused("junctions")),
        ("/FFT", Gnu(&["--fft"])),
        ("/DST", Refused("DST")),
        ("/R:0", Gnu(&["--retries", "0"])),
        ("/W:5", Gnu(&["--wait", "5s"])),
        ("/REG", Refused("registry")),
        ("/TBD", Refused("share names")),
        ("/LFSM", Refused("free space")),
        ("/L", Gnu(&["--list-only"])),
        ("/X", Gnu(&[])),
        ("/v", Gnu(&["--verbose"])),
        ("/TS", Gnu(&["--list-times"])),
        ("/FP", Gnu(&["--full-path"])),
        ("/BYTES", Gnu(&["--bytes"])),
        ("/NS", Gnu(&["--no-size"])),
        ("/NC", Gnu(&["--no-class"])),
        ("/NFL", Gnu(&["--no-file-list"])),
        ("/NDL", Gnu(&["--no-dir-list"])),
        ("/NP", Gnu(&["--no-progress"])),
        ("/ETA", Gnu(&[])),
        ("/LOG:x.log", Gnu(&["--log", "x.log"])),
        ("/LOG+:x.log", Gnu(&["--log-append", "x.log"])),
        ("/UNILOG:x.log", Gnu(&["--log", "x.log"])),
        ("/UNILOG+:x.log", Gnu(&["--log-append", "x.log"])),
        ("/TEE", Gnu(&["--tee"])),
        ("/NJH", Gnu(&["--no-header"])),
        ("/NJS", Gnu(&["--no-summary"])),
        ("/UNICODE", Gnu(&[])),
        ("/JOB:x.rcj", Refused("job files")),
        ("/SAVE:x", Refused("job files")),
        ("/QUIT", Refused("job files")),
        ("/NOSD", Refused("job files")),
        ("/NODD", Refused("job files")),
        ("/IF", Refused("job files")),
        ("/?", Gnu(&["--help"])),
    ];

    #[test]
    fn every_robocopy_flag_maps_or_is_refused_with_a_reason() {
        for (input, want) in EVERY_FLAG {
            match (rw(&["a", "b", input]), want) {
                (Ok(got), Gnu(args)) => assert_eq!(got[2..], **args, "{input}"),
                (Err(e), Refused(why)) => assert!(
                    e.contains(why) && e.contains(&format!("{input} ")) && !e.contains('\n'),
                    "{input}: {e}"
                ),
                (got, _) => panic!("{input}: {got:?}"),
            }
        }
        // The table and this list cover the same flags, so neither can drift.
        for (name, _) in TABLE {
            assert!(
                EVERY_FLAG
                    .iter()
                    .any(|(t, _)| split(t).unwrap().0.eq_ignore_ascii_case(name)),
                "/{name} is not in EVERY_FLAG"
            );
        }
    }

    #[test]
    fn readme_names_every_robocopy_flag() {
        let readme = include_str!("../../README.md");
        for (name, _) in TABLE {
            let tag = format!("`/{name}");
            // `/S` must not count as found inside `/SEC`.
            let found = readme.match_indices(&tag).any(|(i, _)| {
                readme[i + tag.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_ascii_alphanumeric() && c != '+')
            });
            assert!(found, "README.md lacks /{name}");
        }
    }

    #[test]
    fn unknown_flags_are_usage_errors_not_globs() {
        for bad in ["/MRI", "/mri", "/FOO:bar", "/NOSUCH", "/S2"] {
            let e = rw(&["a", "b", bad]).unwrap_err();
            assert!(
                e.contains("unknown robocopy flag") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        // A list stops at them too, instead of swallowing them as names.
        assert!(rw(&["a", "b", "/XF", "x", "/MRI"]).is_err());
        // After `--`, and as the value of a GNU option, they are left alone.
        assert_eq!(rw(&["--", "/MRI"]).unwrap(), ["--", "/MRI"]);
        assert_eq!(
            rw(&["a", "b", "--exclude-dir", "/cache", "-u", "/Bob"]).unwrap(),
            ["a", "b", "--exclude-dir", "/cache", "-u", "/Bob"]
        );
        // An existing path that looks like a flag is a path.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_str().unwrap();
        assert_eq!(rw(&[p, "b"]).unwrap(), [p, "b"]);
        assert!(looks_like_flag("/NOTADIR12"));
        // Longer than any robocopy flag: taken as a (missing) path.
        assert!(!looks_like_flag("/definitely-not-a-dir-xyz"));
        assert!(!looks_like_flag("/tmp"));
        assert!(!looks_like_flag("/home/me/src"));
        assert!(!looks_like_flag("/x.log"));
        assert!(!looks_like_flag("/"));
    }

    #[test]
    fn lists_consume_plain_arguments() {
        assert_eq!(
            rw(&["src", "dst", "/XF", "a", "*.tmp", "/MIR", "/XD", "b", "-v"]).unwrap(),
            [
                "src",
                "dst",
                "--exclude-file",
                "a",
                "--exclude-file",
                "*.tmp",
                "--mirror",
                "--exclude-dir",
                "b",
                "-v"
            ]
        );
        assert_eq!(
            rw(&["/XF:a", "b"]).unwrap(),
            ["--exclude-file", "a", "--exclude-file", "b"]
        );
    }

    #[test]
    fn paths_and_gnu_flags_pass_through() {
        assert_eq!(
            rw(&["/home/me/src", "/tmp/dst", "--mt", "4", "/s"]).unwrap(),
            ["/home/me/src", "/tmp/dst", "--mt", "4", "--subdirs"]
        );
        assert_eq!(rw(&["--", "/S"]).unwrap(), ["--", "/S"]);
    }

    #[test]
    fn bad_values_are_errors_naming_the_token() {
        assert!(rw(&["/R"]).is_err());
        assert!(rw(&["/LEV:"]).is_err());
        assert!(rw(&["/MIR:3"]).unwrap_err().contains("/MIR:3"));
        assert!(rw(&["/X:1"]).is_err());
        assert!(rw(&["/IPG:x"]).is_err());
        let e = rw(&["/W:abc"]).unwrap_err();
        assert!(e.contains("\"abc\"") && !e.contains("abcs"), "{e}");
        assert!(rw(&["/W:1.5"]).is_err());
    }

    #[test]
    fn rewritten_args_parse_to_the_same_options_as_gnu() {
        use clap::Parser as _;
        let robo = rw(&[
            "a", "b", "/MIR", "/MT:32", "/R:0", "/W:1", "/XF", "x", "y", "/NP",
        ])
        .unwrap();
        let robo =
            crate::cli::Args::try_parse_from(std::iter::once("smbcp".to_string()).chain(robo))
                .unwrap();
        let gnu = crate::cli::Args::try_parse_from([
            "smbcp",
            "a",
            "b",
            "--mirror",
            "--mt",
            "32",
            "--retries",
            "0",
            "--wait",
            "1s",
            "--exclude-file",
            "x",
            "--exclude-file",
            "y",
            "--no-progress",
        ])
        .unwrap();
        assert_eq!(format!("{robo:?}"), format!("{gnu:?}"));
    }

    #[test]
    fn every_rewrite_target_is_a_real_option() {
        use clap::Parser as _;
        for (name, kind) in TABLE {
            let args: Vec<&str> = match kind {
                Kind::Switch(l) | Kind::Value(l) | Kind::Seconds(l) | Kind::List(l) => vec![l],
                Kind::OptValue(l, _) => vec![l],
                Kind::Fixed(a) => a.to_vec(),
                Kind::Gap => vec!["--bwlimit"],
                Kind::Accept(_) | Kind::Refuse(_) => continue,
            };
            let long = args[0];
            let mut argv = vec!["smbcp", "a", "b", long];
            if args.len() > 1 {
                argv.extend(&args[1..]);
            } else if !matches!(kind, Kind::Switch(_)) {
                argv.push("1");
            }
            match crate::cli::Args::try_parse_from(&argv) {
                Ok(_) => {}
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                Err(e) => panic!("/{name} → {argv:?}: {e}"),
            }
        }
    }
}
