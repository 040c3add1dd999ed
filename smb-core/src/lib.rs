//! smb-core: a pipelined SMB2/3 client.
//!
//! Layers (see `../shared/STYLE.md`):
//! - [`wire`]: the pure codec (MS-SMB2 section 2.2), no I/O.
//! - [`auth`]: NTLMv2 (MS-NLMP) inside SPNEGO (MS-SPNG), pure.
//! - [`crypto`]: SP800-108 KDF, signing (HMAC-SHA256, AES-CMAC, AES-GMAC),
//!   encryption (AES-128/256-CCM/GCM), preauth integrity hash; pure.
//! - [`proto`]: handshake states, credit and MessageId window; no I/O.
//! - `conn`: the only tokio code below the API: framing, one reader task,
//!   one writer task, pending map, credits.
//! - [`Client`], [`Session`], [`Tree`], [`File`]: the async API. Handles are
//!   cheap `Arc` clones whose methods take `&self`, so many tasks can share
//!   one connection and one open file.

#![warn(missing_docs)]

pub mod auth;
pub mod crypto;
pub mod proto;
pub mod wire;

mod client;
mod conn;
mod error;
mod file;
mod session;
mod tree;

pub use client::{Client, ClientConfig, EncryptionMode, NegotiatedInfo};
pub use error::{Error, Result};
pub use file::{Disposition, File, FileInfo, FileTime, FileTimes, OpenOptions};
pub use session::{Credentials, Session};
pub use tree::{DirEntry, DirLister, Tree};
pub use wire::{Dialect, NtStatus};
