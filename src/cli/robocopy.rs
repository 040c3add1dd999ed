//! Rewrites robocopy's `/FLAG[:value]` spelling into our GNU long options before
//! clap sees the command line: `/MIR /MT:32 /R:0 /XF a b` becomes
//! `--mirror --mt 32 --retries 0 --exclude-file a --exclude-file b`.
//!
//! Only tokens naming a known robocopy flag (case-insensitively) are rewritten,
//! so absolute Unix paths such as `/home/me/src` pass through untouched.

use std::ffi::OsString;

/// How one robocopy flag maps to our options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `/S` → `--subdirs`; a `:value` is an error.
    Switch(&'static str),
    /// `/R:n` → `--retries n`; the value is required.
    Value(&'static str),
    /// `/MT[:n]`: the value is optional, default given.
    OptValue(&'static str, &'static str),
    /// `/XF a b c`: the following plain arguments, each as `--exclude-file a`.
    List(&'static str),
    /// `/W:n`: seconds → `--wait ns`.
    Seconds(&'static str),
    /// `/IPG:n`: inter-packet gap of n ms per 64 KiB → `--bwlimit`.
    Gap,
}

/// The robocopy flags we accept, upper-case.
const TABLE: &[(&str, Kind)] = &[
    ("S", Kind::Switch("--subdirs")),
    ("E", Kind::Switch("--empty-dirs")),
    ("LEV", Kind::Value("--lev")),
    ("XF", Kind::List("--exclude-file")),
    ("XD", Kind::List("--exclude-dir")),
    ("MAX", Kind::Value("--max-size")),
    ("MIN", Kind::Value("--min-size")),
    ("MAXAGE", Kind::Value("--max-age")),
    ("MINAGE", Kind::Value("--min-age")),
    ("XO", Kind::Switch("--exclude-older")),
    ("XN", Kind::Switch("--exclude-newer")),
    ("XC", Kind::Switch("--exclude-changed")),
    ("XX", Kind::Switch("--exclude-extra")),
    ("IS", Kind::Switch("--include-same")),
    ("FFT", Kind::Switch("--fft")),
    ("MIR", Kind::Switch("--mirror")),
    ("PURGE", Kind::Switch("--purge")),
    ("MOV", Kind::Switch("--move")),
    ("MOVE", Kind::Switch("--move-all")),
    ("L", Kind::Switch("--list-only")),
    ("CREATE", Kind::Switch("--create")),
    ("MT", Kind::OptValue("--mt", "8")),
    ("J", Kind::Switch("--unbuffered")),
    ("R", Kind::Value("--retries")),
    ("W", Kind::Seconds("--wait")),
    ("IPG", Kind::Gap),
    ("COPY", Kind::Value("--copy")),
    ("DCOPY", Kind::Value("--dcopy")),
    ("LOG", Kind::Value("--log")),
    ("LOG+", Kind::Value("--log-append")),
    ("TEE", Kind::Switch("--tee")),
    ("NFL", Kind::Switch("--no-file-list")),
    ("NDL", Kind::Switch("--no-dir-list")),
    ("NP", Kind::Switch("--no-progress")),
    ("BYTES", Kind::Switch("--bytes")),
    ("V", Kind::Switch("--verbose")),
];

/// robocopy flags smbcp knows but does not implement: refused with a clear
/// message rather than mistaken for a FILE_GLOB.
#[rustfmt::skip]
const UNSUPPORTED: &[&str] = &[
    "Z", "B", "ZB", "EFSRAW", "SEC", "SECFIX", "TIMFIX", "COPYALL", "NOCOPY", "NOOFFLOAD",
    "COMPRESS", "A", "M", "IA", "XA", "A+", "A-", "XJ", "XJD", "XJF", "XL", "IT", "IM", "MAXLAD",
    "MINLAD", "FAT", "256", "MON", "MOT", "RH", "PF", "SL", "SJ", "NODCOPY", "NOCLONE", "DST",
    "REG", "TBD", "LFSM", "X", "TS", "FP", "NS", "NC", "NJH", "NJS", "ETA", "UNICODE", "UNILOG",
    "UNILOG+", "JOB", "SAVE", "QUIT", "NOSD", "NODD", "IF",
];

/// Looks a token up: `Some((kind, name, value))` when it is a robocopy flag.
fn lookup(token: &str) -> Option<(Kind, &'static str, Option<&str>)> {
    let rest = token.strip_prefix('/')?;
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(n, kind)| (kind, n, value))
}

/// The name of a known but unsupported robocopy flag, if `token` is one.
fn unsupported(token: &str) -> Option<&'static str> {
    let rest = token.strip_prefix('/')?;
    let name = rest.split_once(':').map_or(rest, |(n, _)| n);
    UNSUPPORTED
        .iter()
        .copied()
        .find(|u| u.eq_ignore_ascii_case(name))
}

/// Rewrites the arguments (without the program name) into GNU spelling.
/// Fails with a one-line message on a robocopy flag with a missing or unexpected value.
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
        let Some((kind, name, value)) = lookup(token) else {
            if let Some(name) = unsupported(token) {
                return Err(format!(
                    "robocopy flag /{name} is not supported by smbcp (see smbcp --help)"
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
        match kind {
            Kind::Switch(long) => {
                if value.is_some() {
                    return Err(format!("robocopy flag /{name} takes no value: {token}"));
                }
                out.push(long.into());
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
                out.push(long.into());
                out.push(format!("{v}s").into());
            }
            Kind::Gap => {
                let v = need(value)?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("/IPG needs milliseconds, got {v:?}"))?;
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
                    if s.starts_with('-') || lookup(s).is_some() || unsupported(s).is_some() {
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

    #[test]
    fn table_of_spellings() {
        let cases: &[(&str, &[&str])] = &[
            ("/S", &["--subdirs"]),
            ("/e", &["--empty-dirs"]),
            ("/LEV:3", &["--lev", "3"]),
            ("/MAX:100", &["--max-size", "100"]),
            ("/min:5", &["--min-size", "5"]),
            ("/MAXAGE:7", &["--max-age", "7"]),
            ("/MINAGE:20240101", &["--min-age", "20240101"]),
            ("/XO", &["--exclude-older"]),
            ("/XN", &["--exclude-newer"]),
            ("/XC", &["--exclude-changed"]),
            ("/XX", &["--exclude-extra"]),
            ("/IS", &["--include-same"]),
            ("/FFT", &["--fft"]),
            ("/MIR", &["--mirror"]),
            ("/PURGE", &["--purge"]),
            ("/MOV", &["--move"]),
            ("/MOVE", &["--move-all"]),
            ("/L", &["--list-only"]),
            ("/CREATE", &["--create"]),
            ("/MT", &["--mt", "8"]),
            ("/MT:32", &["--mt", "32"]),
            ("/J", &["--unbuffered"]),
            ("/R:0", &["--retries", "0"]),
            ("/W:5", &["--wait", "5s"]),
            ("/IPG:1000", &["--bwlimit", "65536"]),
            ("/IPG:0", &[]),
            ("/COPY:DT", &["--copy", "DT"]),
            ("/DCOPY:T", &["--dcopy", "T"]),
            ("/LOG:x.log", &["--log", "x.log"]),
            ("/LOG+:x.log", &["--log-append", "x.log"]),
            ("/TEE", &["--tee"]),
            ("/NFL", &["--no-file-list"]),
            ("/NDL", &["--no-dir-list"]),
            ("/NP", &["--no-progress"]),
            ("/BYTES", &["--bytes"]),
            ("/v", &["--verbose"]),
        ];
        for (input, want) in cases {
            assert_eq!(rw(&[input]).unwrap(), *want, "{input}");
        }
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
    fn bad_values_are_errors() {
        assert!(rw(&["/R"]).is_err());
        assert!(rw(&["/LEV:"]).is_err());
        assert!(rw(&["/MIR:3"]).is_err());
        assert!(rw(&["/IPG:x"]).is_err());
        for unsupported in ["/Z", "/njh", "/SEC", "/COPYALL", "/A+:H", "/NJS"] {
            let err = rw(&["a", "b", unsupported]).unwrap_err();
            assert!(err.contains("not supported"), "{unsupported}: {err}");
        }
        // A list stops at them too, instead of swallowing them as names.
        assert!(rw(&["/XF", "a", "/NP", "/NJS"]).is_err());
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
}
