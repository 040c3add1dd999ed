//! One stream of what happens in a run: file started, block done, file done
//! (or skipped), retried, reconnected, failed, deleted, summary. The engine,
//! the scanner, the reconnect links and the delete phase emit into an
//! [`Events`] bus; its sinks are the `--events` NDJSON writer (one JSON object
//! a line, with a schema version, flushed per line so a CI job can follow
//! it live) and any in-process subscriber (see [`Events::subscribe`]).
//!
//! Schema (version 1): every line has `"v": 1`, `"event"` (one of the
//! [`Event`] variants in snake case) and `"t"` (seconds since the run
//! started), plus the variant's fields.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// The schema version of `--events` lines.
pub const EVENTS_VERSION: u32 = 1;

/// Something that happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run starts.
    Plan {
        /// SOURCE as given.
        source: String,
        /// DEST as given.
        dest: String,
        /// `--list-only`.
        list_only: bool,
    },
    /// The scan has listed every directory.
    ScanDone {
        /// Files to copy.
        files: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A file copy starts (or starts again after a retry).
    FileStart {
        /// Relative path.
        path: String,
        /// Bytes.
        size: u64,
        /// Why it is copied (`New File`, `Newer`, …).
        class: String,
    },
    /// A block of a big file is in place at the destination.
    BlockDone {
        /// Relative path.
        path: String,
        /// Offset of the block.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// A file was copied.
    FileDone {
        /// Relative path.
        path: String,
        /// Bytes.
        bytes: u64,
        /// Milliseconds the copy took (all attempts).
        ms: u64,
        /// Why it was copied.
        class: String,
    },
    /// A file was not copied (same, excluded, older, …).
    Skip {
        /// Relative path.
        path: String,
        /// Bytes.
        size: u64,
        /// The reason (the class).
        reason: String,
    },
    /// A step failed with a transient error and is tried again.
    Retry {
        /// Relative path.
        path: String,
        /// The retry's number, from 1.
        attempt: u32,
        /// The failing step.
        operation: String,
        /// NTSTATUS or errno name.
        code: String,
        /// The error.
        error: String,
    },
    /// A server's connection was lost.
    ConnectionLost {
        /// `host:port`.
        server: String,
        /// Why.
        error: String,
    },
    /// A server's connection is back.
    Reconnected {
        /// `host:port`.
        server: String,
        /// Seconds from the loss.
        after_secs: f64,
        /// Dial attempts.
        attempts: u32,
    },
    /// An item failed for good.
    Failure {
        /// Relative path.
        path: String,
        /// The failing step.
        operation: String,
        /// NTSTATUS or errno name (or an smbcp code like `SMB_DISCONNECTED`).
        code: String,
        /// The error.
        message: String,
    },
    /// A destination item was deleted (`--purge`) or a moved source removed.
    Delete {
        /// Relative path.
        path: String,
        /// `dest` or `source`.
        side: String,
    },
    /// Ctrl-C (SIGINT): no new directory or file is started; `again` is the
    /// second one, after which smbcp exits at once.
    Interrupted {
        /// The second Ctrl-C.
        again: bool,
    },
    /// The run ended.
    Summary {
        /// The exit code.
        exit_code: u8,
        /// Files copied.
        files_copied: u64,
        /// Files failed.
        files_failed: u64,
        /// Bytes copied.
        bytes_copied: u64,
        /// Retries over the run.
        retries: u64,
        /// Reconnects over the run.
        reconnects: u64,
    },
}

/// A consumer of events.
pub type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// The bus: cheap to share, a no-op when nobody listens.
pub struct Events {
    started: Instant,
    ndjson: Option<Mutex<Box<dyn Write + Send>>>,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("ndjson", &self.ndjson.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new(None)
    }
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    t: f64,
    #[serde(flatten)]
    event: &'a Event,
}

impl Events {
    /// A bus writing NDJSON to `out` when given.
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        Self {
            started: Instant::now(),
            ndjson: out.map(Mutex::new),
            subscribers: Mutex::new(Vec::new()),
        }
    }

    /// Adds an in-process consumer.
    pub fn subscribe(&self, s: Subscriber) {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    /// True when some sink listens (emit sites may skip building an event).
    pub fn wanted(&self) -> bool {
        self.ndjson.is_some()
            || !self
                .subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// Sends `ev` to every sink. A failing NDJSON writer (a closed pipe) is
    /// dropped silently: events are a report, never a reason to stop a copy.
    pub fn emit(&self, ev: Event) {
        if let Some(w) = &self.ndjson {
            let line = Line {
                v: EVENTS_VERSION,
                t: (self.started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
                event: &ev,
            };
            // Serializing plain data cannot fail.
            let mut text = serde_json::to_string(&line).unwrap_or_default();
            text.push('\n');
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
        }
        let subs = self
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in subs {
            s(&ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ndjson_lines_carry_the_version_the_kind_and_the_fields() {
        let buf = Buf::default();
        let ev = Events::new(Some(Box::new(buf.clone())));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = Arc::clone(&seen);
        ev.subscribe(Arc::new(move |e: &Event| {
            s2.lock().unwrap().push(e.clone())
        }));
        ev.emit(Event::FileDone {
            path: "a\nb.txt".into(),
            bytes: 5,
            ms: 2,
            class: "New File".into(),
        });
        ev.emit(Event::Retry {
            path: "x".into(),
            attempt: 1,
            operation: "read".into(),
            code: "STATUS_SHARING_VIOLATION".into(),
            error: "busy".into(),
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["event"], "file_done");
        // Names stay exact (JSON escaping, one line).
        assert_eq!(lines[0]["path"], "a\nb.txt");
        assert_eq!(lines[1]["event"], "retry");
        assert_eq!(lines[1]["attempt"], 1);
        assert!(lines[1]["t"].as_f64().unwrap() >= 0.0);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}
