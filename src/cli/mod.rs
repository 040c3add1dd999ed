//! The command line: raw clap [`Args`], the robocopy rewriter and the
//! validated [`Options`]. The man page and completions are generated from
//! [`Args`] by `tests/cli_generated`.

pub mod args;
pub mod options;
pub mod robocopy;

pub use args::Args;
pub use options::Options;
