//! Counters shared by the scanner and the copy workers (atomics, no locks on
//! the hot path), and the list of per-item failures for the summary and JSON.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

/// One row of the summary: Total/Copied/Skipped/Mismatch/Failed/Extras.
#[derive(Debug, Default)]
pub struct Counter {
    /// Seen in the source.
    pub total: AtomicU64,
    /// Copied (or would be, with `--list-only`).
    pub copied: AtomicU64,
    /// Not copied (same, excluded, or already there).
    pub skipped: AtomicU64,
    /// File on one side, directory on the other.
    pub mismatch: AtomicU64,
    /// Failed.
    pub failed: AtomicU64,
    /// Only in the destination.
    pub extras: AtomicU64,
}

/// A snapshot of a [`Counter`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Seen in the source.
    pub total: u64,
    /// Copied.
    pub copied: u64,
    /// Skipped.
    pub skipped: u64,
    /// Mismatched.
    pub mismatch: u64,
    /// Failed.
    pub failed: u64,
    /// Extras.
    pub extras: u64,
}

impl Counter {
    /// Adds to one column.
    pub fn add(field: &AtomicU64, n: u64) {
        field.fetch_add(n, Relaxed);
    }

    /// Reads all columns.
    pub fn row(&self) -> Row {
        Row {
            total: self.total.load(Relaxed),
            copied: self.copied.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            mismatch: self.mismatch.load(Relaxed),
            failed: self.failed.load(Relaxed),
            extras: self.extras.load(Relaxed),
        }
    }
}

/// One failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRecord {
    /// Path relative to the source (or destination, for deletes) root, `/`-separated.
    pub path: String,
    /// What was being done: "copy", "list", "delete", "mkdir", ...
    pub operation: String,
    /// NTSTATUS name (`STATUS_ACCESS_DENIED`), errno name (`EACCES`) or another stable code.
    pub code: String,
    /// The full message.
    pub message: String,
}

/// Everything counted during a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Directories.
    pub dirs: Counter,
    /// Files.
    pub files: Counter,
    /// Bytes (of files, by the same classes).
    pub bytes: Counter,
    /// Bytes written so far, including partial files (for progress and speed).
    pub bytes_moved: AtomicU64,
    /// Failed items.
    pub failures: Mutex<Vec<FailureRecord>>,
    /// Retries of a step after a transient error, over the run.
    pub retries: AtomicU64,
    /// Bytes of restartable files found already written by an earlier
    /// attempt or run (not copied again).
    pub bytes_resumed: AtomicU64,
    /// `--verify`: files and bytes read back and found identical.
    pub verified_files: AtomicU64,
    /// See `verified_files`.
    pub verified_bytes: AtomicU64,
}

impl Stats {
    /// Records a failure.
    pub fn fail(&self, rec: FailureRecord) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rec);
    }

    /// A copy of the failures so far.
    pub fn failures(&self) -> Vec<FailureRecord> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes written so far.
    pub fn moved(&self) -> u64 {
        self.bytes_moved.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_snapshot() {
        let s = Stats::default();
        Counter::add(&s.files.total, 3);
        Counter::add(&s.files.copied, 2);
        Counter::add(&s.files.failed, 1);
        assert_eq!(
            s.files.row(),
            Row {
                total: 3,
                copied: 2,
                failed: 1,
                ..Row::default()
            }
        );
        s.fail(FailureRecord {
            path: "a".into(),
            operation: "copy".into(),
            code: "EACCES".into(),
            message: "x".into(),
        });
        assert_eq!(s.failures().len(), 1);
    }
}
