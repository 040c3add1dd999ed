//! The raw command line: a clap derive whose `///` comments are the `--help`
//! text, the man page and the shell completions. Nothing here is validated;
//! see [`crate::cli::options`] for that.
//!
//! The `///` comments below are `--help` text, where `[/S]` names the robocopy
//! flag and `[DOMAIN\]NAME` is CLI notation, not intra-doc links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueHint};

use crate::cli::options::ZeroCopy;
use crate::exit::ExitMode;

/// Exit codes and credentials, shown by `--help` and in the man page.
const AFTER_HELP: &str = "\
Exit codes (default): 0 success (copied or nothing to do), 1 some items failed,
2 usage error, 3 fatal (cannot connect, authenticate, or source missing).
With --exit-codes robocopy: a bitmask of 1 copied, 2 extras, 4 mismatches,
8 failures, 16 fatal or usage error.

Password: --password-stdin, --password-file, --auth-file, the SMBCP_PASSWORD
environment variable, or a prompt when stdin is a terminal; never an argument.";

/// `--version`: the version, the git commit and the build (embedded by `build.rs`).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("SMBCP_GIT_COMMIT"),
    "\nfeatures: ",
    env!("SMBCP_FEATURES"),
    "\nbuild: ",
    env!("SMBCP_BUILD"),
);

/// Robocopy, rewritten in Rust: copy directory trees between local paths and SMB shares.
///
/// SOURCE and DEST are local paths or SMB paths (\\server\share\dir, //server/share/dir,
/// smb://[domain;user@]server[:port]/share/dir). robocopy's /FLAGS are accepted too,
/// case-insensitively (/MIR, /MT:32, /R:0, /XF a b ...).
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "smbcp", version, long_version = LONG_VERSION, about, long_about, max_term_width = 100, after_long_help = AFTER_HELP)]
pub struct Args {
    /// Source directory or file (local path or SMB path).
    #[arg(value_name = "SOURCE", value_hint = ValueHint::AnyPath)]
    pub source: String,

    /// Destination directory (local path or SMB path); created when missing.
    #[arg(value_name = "DEST", value_hint = ValueHint::DirPath)]
    pub dest: String,

    /// Only copy files whose name matches one of these globs (default: all files) [robocopy: file args].
    #[arg(value_name = "FILE_GLOB")]
    pub globs: Vec<String>,

    // ----- selection -----
    /// Copy subdirectories, but not empty ones [/S].
    #[arg(short = 's', long, help_heading = "Selection")]
    pub subdirs: bool,

    /// Copy subdirectories, including empty ones (implies --subdirs) [/E].
    #[arg(short = 'e', long, help_heading = "Selection")]
    pub empty_dirs: bool,

    /// Only copy the top N levels of the source tree (1 = SOURCE itself) [/LEV:n].
    #[arg(long, value_name = "N", help_heading = "Selection")]
    pub lev: Option<u32>,

    /// Only copy files whose name (or, with a `/`, relative path) matches GLOB; repeatable,
    /// together with FILE_GLOB any one match is enough [rsync --include].
    #[arg(long = "include", value_name = "GLOB", action = ArgAction::Append, help_heading = "Selection")]
    pub include: Vec<String>,

    /// Only copy the files listed in FILE, one path relative to SOURCE a line ("-": stdin;
    /// empty lines and lines starting with # are skipped) [rsync --files-from].
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Selection")]
    pub files_from: Option<PathBuf>,

    /// Only copy files with at least one of these attributes: R A S H C N E T O [/IA:attrs].
    #[arg(long, value_name = "ATTRS", help_heading = "Selection")]
    pub include_attr: Option<String>,

    /// Skip files with any of these attributes: R A S H C N E T O [/XA:attrs].
    #[arg(long, value_name = "ATTRS", help_heading = "Selection")]
    pub exclude_attr: Option<String>,

    /// With --mirror or --purge, also delete destination files and directories that the
    /// filters exclude [rsync --delete-excluded].
    #[arg(long, help_heading = "Selection")]
    pub delete_excluded: bool,

    /// Exclude files whose name or relative path matches GLOB; repeatable [/XF].
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, help_heading = "Selection")]
    pub exclude_file: Vec<String>,

    /// Exclude directories whose name or relative path matches GLOB; repeatable [/XD].
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, help_heading = "Selection")]
    pub exclude_dir: Vec<String>,

    /// Skip files bigger than SIZE (bytes, or with K/M/G/T suffix) [/MAX:n].
    #[arg(long, value_name = "SIZE", help_heading = "Selection")]
    pub max_size: Option<String>,

    /// Skip files smaller than SIZE [/MIN:n].
    #[arg(long, value_name = "SIZE", help_heading = "Selection")]
    pub min_size: Option<String>,

    /// Skip files older than AGE: days (n < 1900), a date YYYYMMDD, or a duration like 12h [/MAXAGE:n].
    #[arg(long, value_name = "AGE", help_heading = "Selection")]
    pub max_age: Option<String>,

    /// Skip files newer than AGE (same forms as --max-age) [/MINAGE:n].
    #[arg(long, value_name = "AGE", help_heading = "Selection")]
    pub min_age: Option<String>,

    /// Skip source files older than their destination copy [/XO].
    #[arg(long, help_heading = "Selection")]
    pub exclude_older: bool,

    /// Skip source files newer than their destination copy [/XN].
    #[arg(long, help_heading = "Selection")]
    pub exclude_newer: bool,

    /// Skip changed files: same time, different size [/XC].
    #[arg(long, help_heading = "Selection")]
    pub exclude_changed: bool,

    /// Ignore extra destination files and directories: not listed, never deleted [/XX].
    #[arg(long, help_heading = "Selection")]
    pub exclude_extra: bool,

    /// Follow symlinks in a local SOURCE (default: skip them, each listed as *Symlink);
    /// a link back to a directory on its own path is skipped as a loop. Never follows
    /// destination symlinks.
    #[arg(long, help_heading = "Selection")]
    pub follow_links: bool,

    /// Copy files even when they are the same (size and time) [/IS].
    #[arg(long, help_heading = "Selection")]
    pub include_same: bool,

    /// Compare times with a 2-second tolerance (FAT granularity) [/FFT].
    #[arg(long, help_heading = "Selection")]
    pub fft: bool,

    // ----- modes -----
    /// Mirror: --empty-dirs plus --purge [/MIR].
    #[arg(long, help_heading = "Modes")]
    pub mirror: bool,

    /// Delete destination files and directories that are not in the source [/PURGE].
    #[arg(long, help_heading = "Modes")]
    pub purge: bool,

    /// Refuse to delete anything when more than N items would be deleted
    /// ("unlimited" to allow any number) [default: 1000].
    #[arg(long, value_name = "N", help_heading = "Modes")]
    pub max_delete: Option<String>,

    /// Move files: delete each source file once it is copied [/MOV].
    #[arg(long = "move", help_heading = "Modes")]
    pub move_files: bool,

    /// Move files and directories: like --move, then remove emptied source directories [/MOVE].
    #[arg(long, help_heading = "Modes")]
    pub move_all: bool,

    /// List what would be copied or deleted; change nothing [/L].
    #[arg(short = 'l', long, visible_alias = "dry-run", help_heading = "Modes")]
    pub list_only: bool,

    /// Create the directory tree and zero-length files only [/CREATE].
    #[arg(long, help_heading = "Modes")]
    pub create: bool,

    // ----- engine -----
    /// Number of concurrent copy jobs (files or blocks of big files), 1–128 [/MT:n].
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Engine")]
    pub mt: u32,

    /// Unbuffered I/O: O_DIRECT locally, unbuffered read/write on SMB 3.0.2+ [/J].
    #[arg(long, help_heading = "Engine")]
    pub unbuffered: bool,

    /// Move file data between socket and local file inside the kernel (Linux, unsigned
    /// sessions): auto = downloads, and uploads to servers not on this machine.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ZeroCopy::Auto, help_heading = "Engine")]
    pub zero_copy: ZeroCopy,

    /// Name of the temporary file each file is written as before the rename over its
    /// final name: {name} is the file's name, {rand} (required) 8 random hex digits.
    /// Default `.{name}.smbcp-{rand}.tmp` (on an SMB destination `{name}.smbcp-{rand}`
    /// in `.smbcp-tmp` at DEST's root), then `{name}.smbcp-{rand}` beside the file if
    /// the server refuses that (e.g. Samba `veto files = /*.tmp/`); with this flag,
    /// only PATTERN.
    #[arg(long, value_name = "PATTERN", help_heading = "Engine")]
    pub temp_name: Option<String>,

    /// Retries for each file after a transient error [/R:n].
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Engine")]
    pub retries: u32,

    /// Wait before the first retry (doubles each retry, with jitter), e.g. 2s, 500ms [/W:n].
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        help_heading = "Engine"
    )]
    pub wait: String,

    /// Timeout for connecting and for each SMB request, e.g. 30s.
    #[arg(long, value_name = "DURATION", help_heading = "Engine")]
    pub timeout: Option<String>,

    /// Read every copied file back from the destination and compare it with the
    /// source (xxh3 per block) before it gets its final name; a mismatch is a
    /// failure (VERIFY_MISMATCH).
    #[arg(long, help_heading = "Engine")]
    pub verify: bool,

    /// Restartable mode for every file copied in blocks (default: files of 64 MiB and
    /// more): a resume journal in --state-dir records the blocks written, so a retry
    /// or the next run after a crash copies only the missing ones [/Z].
    #[arg(long, help_heading = "Engine")]
    pub restartable: bool,

    /// No restartable mode: an interrupted big file starts over.
    #[arg(long, conflicts_with = "restartable", help_heading = "Engine")]
    pub no_restartable: bool,

    /// Where resume journals live (default $XDG_STATE_HOME/smbcp, else ~/.local/state/smbcp).
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, help_heading = "Engine")]
    pub state_dir: Option<PathBuf>,

    /// How long to keep dialling a server again after its connection was lost
    /// (files in flight wait, then go on where they were), e.g. 30s, 10m; 0 to fail at once.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        help_heading = "Engine"
    )]
    pub reconnect_for: String,

    /// Sign every SMB message, even when the server does not require it (the default).
    #[arg(long, help_heading = "Engine")]
    pub sign: bool,

    /// Sign SMB messages only when the server requires it: faster, and needed for
    /// --zero-copy, but a man in the middle can then change what is copied.
    #[arg(long, conflicts_with = "sign", help_heading = "Engine")]
    pub no_sign: bool,

    /// Require SMB 3 encryption for every share (fail when the server cannot).
    #[arg(long, help_heading = "Engine")]
    pub encrypt: bool,

    /// Fail a directory listing that returns more than N entries (a server that never
    /// ends a listing must not make smbcp list forever) [default: 1000000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Engine")]
    pub max_dir_entries: Option<u64>,

    /// Limit total throughput to RATE bytes per second (K/M/G suffixes, or 100Mbit) [/IPG].
    #[arg(long, value_name = "RATE", help_heading = "Engine")]
    pub bwlimit: Option<String>,

    /// What to copy for files: D=data, A=attributes, T=timestamps [/COPY:DAT].
    #[arg(
        long,
        value_name = "DAT",
        default_value = "DAT",
        help_heading = "Engine"
    )]
    pub copy: String,

    /// What to copy for directories: D=data, A=attributes, T=timestamps [/DCOPY:T].
    #[arg(
        long,
        value_name = "DAT",
        default_value = "DA",
        help_heading = "Engine"
    )]
    pub dcopy: String,

    // ----- output -----
    /// Write the file list and summary to FILE instead of stdout (overwrite; UTF-8, so
    /// robocopy's /UNILOG:file is the same) [/LOG:file].
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Output")]
    pub log: Option<PathBuf>,

    /// Like --log, appending to FILE [/LOG+:file, /UNILOG+:file].
    #[arg(
        long,
        value_name = "FILE",
        value_hint = ValueHint::FilePath,
        conflicts_with = "log",
        help_heading = "Output"
    )]
    pub log_append: Option<PathBuf>,

    /// With --log: also write to stdout (without a log, output goes to stdout anyway) [/TEE].
    #[arg(long, help_heading = "Output")]
    pub tee: bool,

    /// Do not list files [/NFL].
    #[arg(long, help_heading = "Output")]
    pub no_file_list: bool,

    /// Do not list directories [/NDL].
    #[arg(long, help_heading = "Output")]
    pub no_dir_list: bool,

    /// No progress display (it is only ever shown when stderr is a terminal) [/NP].
    #[arg(long, help_heading = "Output")]
    pub no_progress: bool,

    /// No job header (Started, Source, Dest, Files lines) [/NJH].
    #[arg(long, help_heading = "Output")]
    pub no_header: bool,

    /// No job summary (the closing table) [/NJS].
    #[arg(long, help_heading = "Output")]
    pub no_summary: bool,

    /// Do not print file classes ("New File", "Newer", ...) in the lists [/NC].
    #[arg(long, help_heading = "Output")]
    pub no_class: bool,

    /// Do not print sizes (or directory file counts) in the lists [/NS].
    #[arg(long, help_heading = "Output")]
    pub no_size: bool,

    /// List each file's last write time (UTC; the source's, a destination extra's own) [/TS].
    #[arg(long, help_heading = "Output")]
    pub list_times: bool,

    /// List full paths (SOURCE or DEST joined with the relative path) [/FP].
    #[arg(long, help_heading = "Output")]
    pub full_path: bool,

    /// Print sizes as exact byte counts [/BYTES].
    #[arg(long, help_heading = "Output")]
    pub bytes: bool,

    /// Write a JSON report (summary and per-file failures) to FILE, or "-" for stdout.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Output")]
    pub json: Option<String>,

    /// Write live events as NDJSON (one JSON object a line: file start/done, retry,
    /// reconnect, failure, delete, summary) to FILE, or "-" for stdout.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Output")]
    pub events: Option<String>,

    /// More output: also list skipped files; -vv adds debug logging.
    #[arg(short = 'v', long, action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Less output: no file/dir lists and no summary; errors only.
    #[arg(short = 'q', long, action = ArgAction::Count, conflicts_with = "verbose", help_heading = "Output")]
    pub quiet: u8,

    /// Exit-code convention.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ExitMode::Default, help_heading = "Output")]
    pub exit_codes: ExitMode,

    // ----- credentials -----
    /// SMB user as [DOMAIN\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share).
    #[arg(
        short = 'u',
        long,
        value_name = "[DOMAIN\\]NAME",
        help_heading = "Credentials"
    )]
    pub user: Option<String>,

    /// Read the password from the first line of FILE (refused when group/others can read it).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Credentials")]
    pub password_file: Option<PathBuf>,

    /// Read the password from the first line of stdin.
    #[arg(long, conflicts_with = "password_file", help_heading = "Credentials")]
    pub password_stdin: bool,

    /// Samba-style credentials file with username=, password= and domain= lines.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Credentials")]
    pub auth_file: Option<PathBuf>,

    /// Accept an empty password (from --password-file, --password-stdin, --auth-file,
    /// SMBCP_PASSWORD or the prompt); without it an empty one is an error.
    #[arg(long, conflicts_with = "guest", help_heading = "Credentials")]
    pub empty_password: bool,

    /// Log on as guest (no password). A guest session has no key, so its messages are
    /// not signed: --guest conflicts with --sign. Without --guest, a logon the server
    /// turns into a guest session (a wrong password or unknown user) is refused.
    #[arg(long, conflicts_with_all = ["password_file", "password_stdin", "auth_file", "sign"], help_heading = "Credentials")]
    pub guest: bool,

    // Kerberos (src/creds.rs).
    /// How to log on: auto (Kerberos when a ticket or --keytab is at hand and the server
    /// offers it, else NTLMv2), kerberos (never falls back to NTLM), ntlm.
    #[arg(long, value_enum, value_name = "MECH", default_value_t = crate::creds::AuthMode::Auto, help_heading = "Credentials")]
    pub auth: crate::creds::AuthMode,

    /// Get a Kerberos ticket for --user with the password (from the usual sources)
    /// instead of using the credential cache; means --auth kerberos.
    #[arg(long, conflicts_with_all = ["guest", "keytab"], help_heading = "Credentials")]
    pub kerberos: bool,

    /// Get a Kerberos ticket for --user from this keytab (CI jobs); means --auth kerberos.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "guest",
        help_heading = "Credentials"
    )]
    pub keytab: Option<PathBuf>,

    /// The server's Kerberos service principal (default cifs/SERVER as given), for
    /// aliases and IP addresses: cifs/host.example.com or cifs/host@REALM.
    #[arg(long, value_name = "SPN", help_heading = "Credentials")]
    pub spn: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = Args::try_parse_from(["smbcp", "a", "b"]).unwrap();
        assert_eq!(a.mt, 8);
        assert_eq!(a.retries, 3);
        assert_eq!(a.wait, "2s");
        assert_eq!(a.copy, "DAT");
        assert_eq!(a.exit_codes, ExitMode::Default);
        assert!(a.globs.is_empty());
    }

    #[test]
    fn globs_after_dest_and_repeated_excludes() {
        let a = Args::try_parse_from([
            "smbcp",
            "a",
            "b",
            "*.txt",
            "*.md",
            "--exclude-file",
            "x",
            "--exclude-file",
            "y",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(a.globs, ["*.txt", "*.md"]);
        assert_eq!(a.exclude_file, ["x", "y"]);
        assert!(a.list_only);
    }
}
