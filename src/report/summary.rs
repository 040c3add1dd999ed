//! The closing summary: a robocopy-like table (Dirs/Files/Bytes ×
//! Total/Copied/Skipped/Mismatch/FAILED/Extras, times, speed) and the stable
//! `--json` document.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::stats::{FailureRecord, Row};

/// Everything the summary shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Schema version of the JSON document.
    pub version: u32,
    /// Source location as given.
    pub source: String,
    /// Destination location as given.
    pub dest: String,
    /// True with `--list-only`: nothing was changed.
    pub list_only: bool,
    /// True with `--guest`: the SMB sessions are guest logons, unsigned.
    pub guest: bool,
    /// The mechanisms that logged on to SMB servers ("Kerberos", "NTLMv2").
    pub logon: Vec<&'static str>,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Whole run, seconds.
    pub elapsed_secs: f64,
    /// Scan + copy phase, seconds.
    pub copy_secs: f64,
    /// Delete phase, seconds.
    pub delete_secs: f64,
    /// Directories.
    pub dirs: Row,
    /// Files.
    pub files: Row,
    /// Bytes.
    pub bytes: Row,
    /// Bytes written per second over the copy phase.
    pub bytes_per_sec: f64,
    /// The same in Gbit/s.
    pub gbit_per_sec: f64,
    /// The in-flight window; `None` when no file data was copied.
    pub window: Option<WindowStats>,
    /// Retries of a step after a transient error (`--retries`).
    pub retries: u64,
    /// File bytes moved in this run (blocks of files that then failed included).
    pub bytes_transferred: u64,
    /// Bytes of restartable files an earlier attempt or run had written (not copied again).
    pub bytes_resumed: u64,
    /// `--verify`: files read back and found identical, and their bytes;
    /// `None` without `--verify`.
    pub verified: Option<Verified>,
    /// Lost connections that were dialled again, and the time spent waiting.
    pub reconnects: ReconnectSummary,
    /// The process exit code.
    pub exit_code: u8,
    /// Per-item failures.
    pub failures: Vec<FailureRecord>,
}

/// The copy engine's in-flight window over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowStats {
    /// Round trip to the server(s), milliseconds (0 for local-only runs).
    pub rtt_ms: f64,
    /// Bytes in flight allowed at the start (from the round trip).
    pub start_bytes: u64,
    /// The largest window tried.
    pub peak_bytes: u64,
    /// The window at the end: the last size whose growth still raised
    /// throughput, or the ceiling.
    pub final_bytes: u64,
    /// File data moved between socket and local file inside the kernel
    /// (`--zero-copy`), not through our memory.
    pub zero_copy: bool,
    /// File data of SMB → SMB copies was copied by the server itself
    /// (FSCTL_SRV_COPYCHUNK), not sent through smbcp.
    pub server_copy: bool,
}

/// What `--verify` checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Files read back and found identical.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Reconnects over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReconnectSummary {
    /// Connections that were lost and dialled again successfully.
    pub count: u64,
    /// Seconds spent between a loss and having the connection back (or giving up).
    pub seconds: f64,
    /// Open files whose durable handle was reclaimed on the new connection.
    pub handles_reclaimed: u64,
    /// Open files opened again by path (not durable, or the server dropped them).
    pub handles_reopened: u64,
}

/// Human size: `25.00 MiB`, or exact bytes with `--bytes`.
pub fn size(n: u64, exact: bool) -> String {
    if exact || n < 1024 {
        return n.to_string();
    }
    let opts = humansize::FormatSizeOptions::from(humansize::BINARY)
        .decimal_places(2)
        .decimal_zeroes(2)
        .space_after_value(true);
    humansize::format_size(n, opts)
}

/// `h:mm:ss.cc`.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    let cs = d.subsec_millis() / 10;
    format!("{}:{:02}:{:02}.{cs:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Inverse of days-from-civil (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `X.XX Gbit/s (Y MB/s)`.
pub fn speed(bytes_per_sec: f64) -> String {
    format!(
        "{:.2} Gbit/s ({:.1} MB/s)",
        bytes_per_sec * 8.0 / 1e9,
        bytes_per_sec / 1e6
    )
}

const RULE: &str = "------------------------------------------------------------------------------";

impl Summary {
    /// The robocopy-style table.
    pub fn table(&self, exact: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{RULE}\n");
        let _ = writeln!(
            s,
            "{:>10} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
            "", "Total", "Copied", "Skipped", "Mismatch", "FAILED", "Extras"
        );
        let row = |s: &mut String, name: &str, r: &Row, f: &dyn Fn(u64) -> String| {
            let _ = writeln!(
                s,
                "{:>8} : {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
                name,
                f(r.total),
                f(r.copied),
                f(r.skipped),
                f(r.mismatch),
                f(r.failed),
                f(r.extras)
            );
        };
        row(&mut s, "Dirs", &self.dirs, &|n| n.to_string());
        row(&mut s, "Files", &self.files, &|n| n.to_string());
        row(&mut s, "Bytes", &self.bytes, &|n| size(n, exact));
        let secs = |f: f64| hms(Duration::from_secs_f64(f));
        let _ = writeln!(
            s,
            "{:>8} : {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
            "Times",
            secs(self.elapsed_secs),
            secs(self.copy_secs),
            "",
            "",
            "",
            secs(self.delete_secs)
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "{:>8} : {}", "Speed", speed(self.bytes_per_sec));
        if let Some(w) = &self.window {
            let _ = writeln!(
                s,
                "{:>8} : {} in flight (started at {}, peak {}; round trip {:.2} ms{}{})",
                "Window",
                size(w.final_bytes, exact),
                size(w.start_bytes, exact),
                size(w.peak_bytes, exact),
                w.rtt_ms,
                if w.zero_copy { "; zero-copy" } else { "" },
                if w.server_copy {
                    "; server-side copy"
                } else {
                    ""
                }
            );
        }
        if let Some(v) = &self.verified {
            let _ = writeln!(
                s,
                "{:>8} : {} files, {} read back and identical to the source",
                "Verified",
                v.files,
                size(v.bytes, exact)
            );
        }
        if self.bytes_resumed > 0 {
            let _ = writeln!(
                s,
                "{:>8} : {} already written by an earlier run, not copied again",
                "Resumed",
                size(self.bytes_resumed, exact)
            );
        }
        if self.retries > 0 {
            let _ = writeln!(s, "{:>8} : {}", "Retries", self.retries);
        }
        if self.reconnects != ReconnectSummary::default() {
            let r = &self.reconnects;
            let _ = write!(
                s,
                "{:>8} : {} ({:.1} s waiting for the server",
                "Reconnect", r.count, r.seconds
            );
            if r.handles_reclaimed + r.handles_reopened > 0 {
                let _ = write!(
                    s,
                    "; open files: {} durable handles reclaimed, {} reopened",
                    r.handles_reclaimed, r.handles_reopened
                );
            }
            let _ = writeln!(s, ")");
        }
        let _ = writeln!(s, "{:>8} : {}", "Ended", utc(SystemTime::now()));
        if self.list_only {
            let _ = writeln!(s, "{:>8} : list only (nothing was changed)", "Mode");
        }
        if self.guest {
            let _ = writeln!(s, "{:>8} : guest (--guest: no password, unsigned)", "Logon");
        } else if !self.logon.is_empty() {
            let _ = writeln!(s, "{:>8} : {}", "Logon", self.logon.join(", "));
        }
        s
    }

    /// The `--json` document.
    pub fn json(&self) -> String {
        // Serializing plain data cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The `--json` document of a run that stopped before copying (usage or fatal
/// error): the same `version` and `exit_code` fields, plus `error`.
pub fn fatal_json(exit_code: u8, error: &str) -> String {
    serde_json::json!({ "version": 1, "exit_code": exit_code, "error": error }).to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A summary with every field set.
    pub(in crate::report) fn sample() -> Summary {
        Summary {
            version: 1,
            source: "src".into(),
            dest: "\\\\srv\\share".into(),
            list_only: false,
            guest: true,
            logon: Vec::new(),
            started_unix: 0,
            elapsed_secs: 61.5,
            copy_secs: 60.0,
            delete_secs: 1.0,
            dirs: Row {
                total: 3,
                copied: 2,
                skipped: 1,
                ..Row::default()
            },
            files: Row {
                total: 10,
                copied: 9,
                failed: 1,
                ..Row::default()
            },
            bytes: Row {
                total: 30 << 20,
                copied: 25 << 20,
                failed: 5 << 20,
                ..Row::default()
            },
            bytes_per_sec: 125_000_000.0,
            gbit_per_sec: 1.0,
            window: Some(WindowStats {
                rtt_ms: 0.25,
                start_bytes: 16 << 20,
                peak_bytes: 36 << 20,
                final_bytes: 24 << 20,
                zero_copy: true,
                server_copy: false,
            }),
            retries: 0,
            bytes_transferred: 0,
            bytes_resumed: 0,
            verified: None,
            reconnects: ReconnectSummary::default(),
            exit_code: 1,
            failures: vec![FailureRecord {
                path: "a/b".into(),
                operation: "copy".into(),
                code: "STATUS_ACCESS_DENIED".into(),
                message: "denied".into(),
            }],
        }
    }

    #[test]
    fn formats() {
        assert_eq!(size(0, false), "0");
        assert_eq!(size(1023, false), "1023");
        assert_eq!(size(25 << 20, false), "25.00 MiB");
        assert_eq!(size(25 << 20, true), "26214400");
        assert_eq!(hms(Duration::from_millis(3_723_456)), "1:02:03.45");
        assert_eq!(speed(125_000_000.0), "1.00 Gbit/s (125.0 MB/s)");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_868_800 + 3661)),
            "2000-03-01 01:01:01 UTC"
        );
    }

    #[test]
    fn table_columns_align() {
        let t = sample().table(false);
        let lines: Vec<&str> = t.lines().collect();
        let header = lines.iter().find(|l| l.contains("Total")).unwrap();
        let files = lines.iter().find(|l| l.contains("Files :")).unwrap();
        let bytes = lines.iter().find(|l| l.contains("Bytes :")).unwrap();
        assert_eq!(
            header.find("Total").unwrap() + "Total".len(),
            files.find(" 10 ").unwrap() + 3
        );
        assert!(bytes.contains("25.00 MiB") && bytes.contains("30.00 MiB"));
        assert_eq!(header.len(), files.len());
        assert!(t.contains("1.00 Gbit/s (125.0 MB/s)"));
        assert!(t.contains("0:01:01.50"));
        assert!(t.contains("   Logon : guest (--guest: no password, unsigned)"));
        let mut user = sample();
        user.guest = false;
        assert!(!user.table(false).contains("Logon"));
        user.logon = vec!["Kerberos"];
        assert!(user.table(false).contains("   Logon : Kerberos\n"));
        assert!(user.json().contains("\"logon\": [\n    \"Kerberos\"\n  ]"));
        assert!(t.contains(
            "  Window : 24.00 MiB in flight (started at 16.00 MiB, peak 36.00 MiB; round trip 0.25 ms; zero-copy)"
        ));
    }

    #[test]
    fn reconnects_say_what_became_of_open_files() {
        let mut s = sample();
        assert!(!s.table(false).contains("Reconnect"));
        s.reconnects = ReconnectSummary {
            count: 1,
            seconds: 0.44,
            ..ReconnectSummary::default()
        };
        assert!(s
            .table(false)
            .contains("Reconnect : 1 (0.4 s waiting for the server)\n"));
        s.reconnects.handles_reclaimed = 2;
        s.reconnects.handles_reopened = 1;
        assert!(s.table(false).contains(
            "Reconnect : 1 (0.4 s waiting for the server; open files: 2 durable handles reclaimed, 1 reopened)\n"
        ));
    }

    #[test]
    fn fatal_json_fields() {
        let v: serde_json::Value = serde_json::from_str(&fatal_json(3, "cannot connect")).unwrap();
        assert_eq!(
            (v["version"].as_u64(), v["exit_code"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(v["error"], "cannot connect");
    }

    #[test]
    fn json_has_stable_fields() {
        let v: serde_json::Value = serde_json::from_str(&sample().json()).unwrap();
        assert_eq!(v["files"]["copied"], 9);
        assert_eq!(v["bytes"]["failed"], 5 << 20);
        assert_eq!(v["failures"][0]["code"], "STATUS_ACCESS_DENIED");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["window"]["final_bytes"], 24 << 20);
        assert_eq!(v["window"]["rtt_ms"], 0.25);
        assert_eq!(v["window"]["zero_copy"], true);
        assert_eq!(v["guest"], true);
        for key in [
            "version",
            "source",
            "dest",
            "elapsed_secs",
            "dirs",
            "gbit_per_sec",
            "list_only",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
    }
}
