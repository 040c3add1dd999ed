//! The progress line, drawn on stderr only when it is a terminal: bytes and
//! files done of the planned total, percentage, current rate and ETA, fitted
//! to the terminal width so it never wraps (pieces are dropped, least useful
//! first, and what is left is cut).
//!
//! While the source is still being scanned the totals are still growing, so
//! they are marked "so far" and there is no percentage or ETA; before anything
//! is planned the line just says "scanning…".

use std::time::Duration;

use super::summary;

/// What the progress line shows, sampled by the ticker.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Bytes written so far.
    pub moved: u64,
    /// Bytes planned for copying so far.
    pub total: u64,
    /// Files finished (copied or failed).
    pub files_done: u64,
    /// Files planned for copying so far.
    pub files_total: u64,
    /// Current rate, bytes per second (a moving average).
    pub rate: f64,
    /// The scan has listed the whole source: the totals are final.
    pub scan_done: bool,
}

/// The line for `s`, at most `width` characters (counted as chars).
pub fn line(s: &Snapshot, width: usize) -> String {
    if !s.scan_done && s.total == 0 && s.moved == 0 {
        return fit("scanning…".to_string(), width);
    }
    let bytes = if s.scan_done {
        format!("{} / {} ({}%)", size(s.moved), size(s.total), percent(s))
    } else {
        format!("{} / {} so far", size(s.moved), size(s.total))
    };
    let files = if s.scan_done {
        format!("{}/{} files", s.files_done, s.files_total)
    } else {
        format!("{}/{}+ files", s.files_done, s.files_total)
    };
    let rate = rate(s.rate);
    let tail = if s.scan_done {
        format!("ETA {}", eta(s))
    } else {
        "scanning…".to_string()
    };
    let short = if s.scan_done {
        format!("{}%", percent(s))
    } else {
        size(s.moved)
    };
    // From the fullest to the barest; the first that fits wins.
    let candidates = [
        vec![&bytes, &files, &rate, &tail],
        vec![&bytes, &rate, &tail],
        vec![&bytes, &tail],
        vec![&short, &rate, &tail],
        vec![&short, &tail],
        vec![&short],
    ];
    for parts in &candidates {
        let text = parts
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("  ");
        if text.chars().count() <= width {
            return text;
        }
    }
    fit(short, width)
}

/// A rate with adaptive decimal units: `850 B/s`, `12.3 kB/s`, `85.3 MB/s`, `1.25 GB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    let r = bytes_per_sec.max(0.0);
    if r < 1e3 {
        format!("{r:.0} B/s")
    } else if r < 1e6 {
        format!("{:.1} kB/s", r / 1e3)
    } else if r < 1e9 {
        format!("{:.1} MB/s", r / 1e6)
    } else {
        format!("{:.2} GB/s", r / 1e9)
    }
}

/// Time left at the current rate: `45s`, `4:05`, `1:02:03`, or `?` when nothing moves.
fn eta(s: &Snapshot) -> String {
    let left = s.total.saturating_sub(s.moved) as f64;
    if left == 0.0 {
        return "0s".to_string();
    }
    if s.rate <= 0.0 || !(left / s.rate).is_finite() {
        return "?".to_string();
    }
    let secs = Duration::from_secs_f64((left / s.rate).min(1e9)).as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}:{:02}", secs / 60, secs % 60),
        _ => format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60),
    }
}

/// Whole percent done, at most 100 (a file may grow while it is copied).
fn percent(s: &Snapshot) -> u64 {
    if s.total == 0 {
        return 100;
    }
    (s.moved.saturating_mul(100) / s.total).min(100)
}

/// A size as the summary writes it, with a unit for small ones too.
fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        summary::size(n, false)
    }
}

/// Cuts `text` to `width` characters.
fn fit(text: String, width: usize) -> String {
    if text.chars().count() <= width {
        text
    } else {
        text.chars().take(width).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Snapshot {
        Snapshot {
            moved: 30 << 20,
            total: 100 << 20,
            files_done: 3,
            files_total: 10,
            rate: 85_300_000.0,
            scan_done: true,
        }
    }

    #[test]
    fn full_line_after_the_scan() {
        assert_eq!(
            line(&done(), 200),
            "30.00 MiB / 100.00 MiB (30%)  3/10 files  85.3 MB/s  ETA 0s"
        );
        let slow = Snapshot {
            rate: 100_000.0,
            ..done()
        };
        assert!(
            line(&slow, 200).ends_with("100.0 kB/s  ETA 12:14"),
            "{}",
            line(&slow, 200)
        );
    }

    #[test]
    fn while_scanning_totals_are_marked_and_there_is_no_eta() {
        assert_eq!(line(&Snapshot::default(), 80), "scanning…");
        let s = Snapshot {
            scan_done: false,
            ..done()
        };
        let l = line(&s, 200);
        assert_eq!(
            l,
            "30.00 MiB / 100.00 MiB so far  3/10+ files  85.3 MB/s  scanning…"
        );
        assert!(!l.contains("ETA") && !l.contains('%'));
    }

    #[test]
    fn never_wider_than_the_terminal() {
        for s in [
            done(),
            Snapshot {
                scan_done: false,
                ..done()
            },
            Snapshot::default(),
        ] {
            for width in [0, 5, 10, 20, 30, 40, 59, 60, 80, 120] {
                let l = line(&s, width);
                assert!(l.chars().count() <= width, "{width}: {l:?}");
            }
        }
        // Narrow terminals keep the percentage and the ETA.
        assert_eq!(line(&done(), 20), "30%  ETA 0s");
        assert_eq!(line(&done(), 40), "30.00 MiB / 100.00 MiB (30%)  ETA 0s");
    }

    #[test]
    fn rates_and_etas() {
        assert_eq!(rate(0.0), "0 B/s");
        assert_eq!(rate(999.0), "999 B/s");
        assert_eq!(rate(12_345.0), "12.3 kB/s");
        assert_eq!(rate(1.25e9), "1.25 GB/s");
        let at = |moved, rate| {
            eta(&Snapshot {
                moved,
                rate,
                ..done()
            })
        };
        assert_eq!(at(100 << 20, 0.0), "0s");
        assert_eq!(at(0, 0.0), "?");
        assert_eq!(at(0, (100 << 20) as f64 / 45.0), "45s");
        assert_eq!(at(0, (100 << 20) as f64 / 3723.0), "1:02:03");
    }
}
