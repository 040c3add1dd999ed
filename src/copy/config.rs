//! [`EngineConfig`]: what the copy engine needs to know about a run, built by
//! the CLI (`Options::engine_config`) or directly by tests; the engine never
//! sees a flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::ZeroCopy;
use crate::copy::temp::TempPattern;

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

/// The copy engine's settings for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Concurrent copy jobs (`--mt` permits).
    pub mt: usize,
    /// When data may skip user memory.
    pub zero_copy: ZeroCopy,
    /// Throughput limit in bytes per second.
    pub bwlimit: Option<u64>,
    /// Retries after transient errors.
    pub retries: u32,
    /// First retry delay.
    pub wait: Duration,
    /// The only temporary name pattern to use (`None`: the defaults with
    /// their fallback).
    pub temp_name: Option<TempPattern>,
    /// What is copied of each file: data, attributes, timestamps.
    pub copy: CopyFlags,
    /// Change nothing, only report.
    pub list_only: bool,
    /// Create zero-length files only.
    pub create_only: bool,
    /// Delete source files once copied.
    pub move_files: bool,
    /// Read back and compare every copied file.
    pub verify: bool,
    /// Files of at least this many bytes (copied in blocks) are restartable;
    /// `None`: none are.
    pub restartable_min: Option<u64>,
    /// Where resume journals live.
    pub state_dir: PathBuf,
    /// The destination as resume journals name it (`Location::resume_key`).
    pub dest_key: String,
}

impl Default for EngineConfig {
    /// The settings of a run without flags (the CLI's defaults; a test in
    /// `cli::options` keeps the two equal).
    fn default() -> Self {
        Self {
            mt: 8,
            zero_copy: ZeroCopy::Auto,
            bwlimit: None,
            retries: 3,
            wait: Duration::from_secs(2),
            temp_name: None,
            copy: CopyFlags {
                data: true,
                attributes: true,
                timestamps: true,
            },
            list_only: false,
            create_only: false,
            move_files: false,
            verify: false,
            restartable_min: Some(RESTARTABLE_DEFAULT_MIN),
            state_dir: crate::copy::journal::default_state_dir(),
            dest_key: String::new(),
        }
    }
}

/// Files from this size on are restartable by default (`--restartable` makes
/// every block-copied file so, `--no-restartable` none).
pub const RESTARTABLE_DEFAULT_MIN: u64 = 64 << 20;
