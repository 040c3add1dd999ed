//! The command line: raw clap [`Args`], the robocopy rewriter, and the
//! validated [`Options`].

pub mod args;
pub mod options;
pub mod robocopy;

pub use args::Args;
pub use options::Options;
