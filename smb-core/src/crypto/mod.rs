//! SP800-108 KDF, signing, encryption and preauth integrity: pure, no I/O.
//!
//! - [`kdf`], [`SessionKeys`], [`PreauthHash`]: MS-SMB2 3.1.4.2, 3.2.5.3.1,
//!   3.2.5.2.
//! - [`Signer`], [`SigningAlgorithm`]: MS-SMB2 3.1.4.1 (HMAC-SHA256,
//!   AES-128-CMAC, AES-128-GMAC).
//! - [`SessionCipher`], [`Cipher`]: MS-SMB2 2.2.41 TRANSFORM_HEADER and
//!   3.1.4.3 (AES-128/256-CCM/GCM), in place.
//!
//! # Backend
//!
//! RustCrypto (`aes`, `aes-gcm`, `ccm`, `cmac`, `ghash`, `hmac`, `sha2`):
//! pure Rust, no C toolchain, and AES-NI / PCLMULQDQ are picked at run time
//! through `cpufeatures`, so a default build is already accelerated.
//! Measured with `smb-core/benches/crypto.rs` (see there for the command)
//! on this project's 2-core x86_64 machine, one core, 8 MiB messages:
//!
//! | operation         | default build | `-C target-cpu=native` | ring 0.17 (reference) |
//! |-------------------|---------------|------------------------|-----------------------|
//! | AES-128-GCM seal  | see `benches/crypto.rs` module doc for the figures |
//!
//! GCM is the cipher to prefer (3.1.1 negotiates it first); CCM and CMAC are
//! sequential CBC-MAC constructions and several times slower.

mod kdf;
mod seal;
mod sign;

pub use kdf::{kdf, PreauthHash, SessionKeys};
pub use seal::{
    transform_session_id, Cipher, SessionCipher, TRANSFORM_HEADER_LEN, TRANSFORM_PROTOCOL_ID,
};
pub use sign::{Signer, SigningAlgorithm};

/// Errors of the crypto layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Shorter than a TRANSFORM_HEADER.
    #[error("encrypted frame shorter than its transform header")]
    Truncated,
    /// ProtocolId is not 0xFD 'S' 'M' 'B'.
    #[error("bad transform header protocol id")]
    BadProtocolId,
    /// Flags / EncryptionAlgorithm is not 0x0001.
    #[error("bad transform header flags")]
    BadFlags,
    /// OriginalMessageSize does not match the frame.
    #[error("transform header OriginalMessageSize does not match the frame")]
    BadLength,
    /// Authentication of the ciphertext failed (wrong key or tampering).
    #[error("decryption failed: the message was altered or the key is wrong")]
    Decrypt,
    /// A message too large for the cipher or the header.
    #[error("message too large to encrypt")]
    TooLarge,
    /// A key of the wrong length for the cipher.
    #[error("key length does not fit the cipher")]
    BadKey,
}

/// Constant-time equality of two byte strings (their length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
