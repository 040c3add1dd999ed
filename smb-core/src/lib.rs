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
//!
//! ```no_run
//! use bytes::Bytes;
//! use smb_core::{Client, ClientConfig, Credentials, FileTimes, OpenOptions};
//!
//! # async fn demo() -> smb_core::Result<()> {
//! let client = Client::connect("fileserver", 445, ClientConfig::default()).await?;
//! let creds = Credentials { user: "alice".into(), password: "secret".to_string().into(), ..Default::default() };
//! let session = client.session_setup(&creds).await?;
//! let tree = session.tree_connect("projects").await?;
//!
//! // Small files: one round trip each (compound CREATE+WRITE+SET_INFO+CLOSE).
//! tree.write_file("notes/a.txt", Bytes::from_static(b"hello"), FileTimes::default()).await?;
//! let (data, info) = tree.read_file("notes/a.txt", 1 << 20).await?;
//! assert_eq!((&data[..], info.size), (&b"hello"[..], 5));
//!
//! // Large files: positional I/O, pipelined from many tasks on one handle.
//! let f = tree.open("big.iso", &OpenOptions::read()).await?;
//! let reads = (0..8u64).map(|i| {
//!     let f = f.clone();
//!     tokio::spawn(async move { f.read_at(i << 20, 1 << 20).await })
//! });
//! for r in reads {
//!     let _chunk: Bytes = r.await.expect("task")?;
//! }
//! f.close().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod auth;
pub mod crypto;
pub mod proto;
pub mod wire;

mod client;
mod conn;
mod dfs;
mod error;
mod file;
mod lease;
mod session;
mod tree;

pub use client::{Client, ClientConfig, EncryptionMode, HandleStats, NegotiatedInfo};
pub use dfs::DfsTarget;
pub use error::{Action, Error, Result};
pub use file::{Disposition, File, FileInfo, FileTime, FileTimes, OpenOptions};
pub use proto::IoLimits;
pub use session::{Credentials, KerberosConfig, KerberosSource, Session};
pub use tree::{DirEntry, DirLister, Tree, WriteStep};
pub use wire::{Dialect, NtStatus};
