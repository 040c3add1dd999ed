//! Fuzz entry points for the command line's own parsers, called by
//! `fuzz/fuzz_targets/cli_*.rs` and replayed over `fuzz/seeds/cli_*` by
//! `tests/fuzz_replay.rs`. Each takes arbitrary bytes and must never panic,
//! whatever they are. Not a public API.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::time::{Duration, UNIX_EPOCH};

use clap::Parser as _;

use crate::cli::{options, robocopy, Args, Options};
use crate::location::{redacted, Location};

/// Target `cli_location`: a SOURCE/DEST argument (`\\srv\share\p`,
/// `//srv/share/p`, `smb://user@srv:port/share/p`, a local path).
pub fn location(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = redacted(s);
    if let Ok(Location::Smb(l)) = Location::parse(s) {
        // What a parsed location prints must parse again to the same place.
        let again = Location::parse(&Location::Smb(l.clone()).to_string());
        if let Ok(Location::Smb(m)) = again {
            assert_eq!(
                (&l.server, l.port, &l.share, &l.path),
                (&m.server, m.port, &m.share, &m.path),
                "{s:?} does not print as itself"
            );
        }
    }
}

/// Target `cli_auth_file`: the text of an `--auth-file`
/// (`username =`, `password =`, `domain =`, comments) and user spellings.
pub fn auth_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::creds::parse_auth_file(&text);
    let _ = crate::creds::split_user(&text);
}

/// Target `cli_robocopy`: an argument list (NUL-separated) through the
/// robocopy rewriting, then clap and the validation into [`Options`].
pub fn robocopy(data: &[u8]) {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let Ok(rewritten) = robocopy::rewrite(args) else {
        return;
    };
    if let Ok(a) = Args::try_parse_from(std::iter::once(OsString::from("smbcp")).chain(rewritten)) {
        let _ = Options::try_from(a);
    }
}

/// Target `cli_option_values`: one value through every value parser
/// (sizes, rates, durations, ages, `--copy` and attribute letters,
/// `--files-from` text).
pub fn option_values(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = options::parse_size(s);
    let _ = options::parse_rate(s);
    let _ = options::parse_duration(s);
    let _ = options::parse_copy_flags(s);
    let _ = options::parse_attr_letters(s);
    let _ = options::parse_files_from(s);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = options::parse_age(s, now);
    let _ = options::parse_age(s, UNIX_EPOCH);
}

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// The CLI's fuzz targets: name (`fuzz/fuzz_targets/<name>.rs`) and entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("cli_location", location),
    ("cli_auth_file", auth_file),
    ("cli_robocopy", robocopy),
    ("cli_option_values", option_values),
];
