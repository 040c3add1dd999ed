//! The command line: raw clap [`Args`], the robocopy rewriter, the
//! validated [`Options`], and the man page.

pub mod args;
pub mod man;
pub mod options;
pub mod robocopy;

pub use args::Args;
pub use options::Options;
