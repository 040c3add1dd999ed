//! SP800-108 KDF, signing, encryption and preauth integrity: pure, no I/O.
//!
//! - [`kdf()`], [`SessionKeys`], [`PreauthHash`]: MS-SMB2 3.1.4.2, 3.2.5.3.1,
//!   3.2.5.2.
//! - [`Signer`], [`SigningAlgorithm`]: MS-SMB2 3.1.4.1 (HMAC-SHA256,
//!   AES-128-CMAC, AES-128-GMAC).
//! - [`SessionCipher`], [`Cipher`]: MS-SMB2 2.2.41 TRANSFORM_HEADER and
//!   3.1.4.3 (AES-128/256-CCM/GCM), in place.
//!
//! # Backend, chosen by measurement
//!
//! AES-GCM encryption and the AES-GMAC signature use **aws-lc**
//! (`aws-lc-rs`), the one AES-GCM provider: its assembly (AES-NI +
//! PCLMULQDQ, AVX2/VAES where present, picked at run time) is 5-10x faster
//! than RustCrypto `aes-gcm` 0.10 here and as fast as ring's or faster, and
//! its GCM hashes AAD with the same aggregated GHASH as ciphertext, which
//! makes GMAC (AAD only) about 10x ring's. AES-CCM, AES-CMAC, HMAC-SHA256,
//! SHA-512, MD4/MD5 use RustCrypto (`ccm`, `cmac`, `hmac`, `sha2`), which
//! also detect AES-NI/SHA-NI at run time via `cpufeatures`; neither aws-lc-rs
//! nor ring has CCM or CMAC.
//!
//! Figures from `smb-core/benches/crypto.rs` (`cargo bench -p smb-core
//! --bench crypto`), one core of the project's 2-core Xeon (AES, PCLMULQDQ,
//! AVX2, AVX-512, VAES), MB/s, 1 MiB and 8 MiB messages, in place. The
//! machine was shared with other builds (load 5-9), so each cell is a range
//! over runs.
//!
//! | operation                        | aws-lc (2026-12-03) |
//! |----------------------------------|---------------------|
//! | AES-128-GCM seal                 |  4 100 - 11 000     |
//! | AES-128-GCM open                 |  4 600 -  9 400     |
//! | AES-256-GCM seal                 |  3 600 -  9 500     |
//! | AES-256-GCM open                 |  2 400 -  8 800     |
//! | AES-GMAC sign                    |  7 900 - 12 100     |
//! | AES-GMAC verify (no copy)        |  7 300 - 12 000     |
//! | AES-128-CCM seal / open          |    470 -    740     |
//! | AES-256-CCM seal / open          |    230 -    380     |
//! | AES-CMAC sign                    |    270 -    330     |
//! | HMAC-SHA256 sign                 |    790 -  1 740     |
//!
//! ring 0.17 was the GCM provider until 2026-12-03 (aws-lc already signed).
//! Side by side in one scratch binary, the same keys, buffers and calls
//! through both crates' `LessSafeKey`, 3 interleaved rounds (load 7-9),
//! MB/s, 1 MiB / 8 MiB:
//!
//! | operation        | ring 0.17                 | aws-lc-rs 1.19              |
//! |------------------|---------------------------|-----------------------------|
//! | AES-128-GCM seal | 2 860-4 130 / 4 380-4 760 | 5 870-6 330 / 5 220-7 890   |
//! | AES-128-GCM open | 3 880-4 850 / 2 580-5 400 | 4 810-7 640 / 2 690-7 150   |
//! | AES-256-GCM seal | 2 260-4 650 / 3 200-4 110 | 6 670-6 890 / 3 510-4 700   |
//! | AES-256-GCM open | 4 400-5 790 / 1 500-2 880 | 5 990-6 880 / 2 350-5 080   |
//! | GMAC (AAD only)  |   640-1 140 /   670-1 070 | 12 190-14 750 / 7 610-17 940 |
//!
//! So ring went: one AES-GCM implementation to build, audit and update.
//! Single bench runs swing 2-3x with the load (earlier runs had ring at
//! 5 800-15 000 MB/s for AES-128-GCM), so only the interleaved side-by-side
//! compares the two. `RUSTFLAGS="-C target-cpu=native"` changed little
//! (both crates dispatch at run time), so release builds need no special
//! flags. GCM is the cipher to prefer (3.1.1 negotiates it first);
//! CCM and CMAC are sequential CBC-MAC constructions, bound by AES latency.
//! On a signed-only 3.1.1 session GMAC, not the network, may bound a single
//! core, which is why the connection signs on the calling task.
//!
//! [`Signer::verify`] hashes a READ response as received, without a copy,
//! and corrects for its non-zero Signature field by GHASH's linearity.
//! Signed 2 GiB through smbcp, 4-5 interleaved rounds, aws-lc GMAC against
//! the ring paths below: download 0.61-0.62 vs 0.69-0.76 CPU-s/GB (1083-1264
//! vs 1025-1122 MB/s), upload 0.54-0.57 vs 0.69-0.78; on cold 8 MiB buffers
//! (64 of them in turn) aws-lc GMAC ran 8.2-8.6 GB/s, ring's best path (copy
//! + GCM open) 4.1-4.2.
//!
//! History (ring): verifying a large signed READ response copied it into a
//! reused per-thread scratch buffer and let ring's GCM *decryption*
//! (aggregated GHASH) check a tag derived from the signature.
//! Signed 2 GiB download, 4 x 8 MiB in flight (`examples/throughput.rs
//! --only read --sign`): 1.16-1.24 CPU-s/GB with a streaming RustCrypto
//! GHASH (polyval 0.6 does one block per multiply: `Polyval::mul` was 29%
//! of samples), 0.81 CPU-s/GB with the GCM-open check. Before either, the
//! verify copied each 8 MiB response into a fresh `Vec` (page faults) and
//! ran ring's AAD path. [`Signer::sign_parts`] signs a WRITE's header and
//! payload without joining them (streaming HMAC/CMAC); a GMAC signature of
//! 16 KiB or more was computed by sealing a scratch copy twice with ring
//! (signed 2 GiB upload 1.17-1.21 -> 0.87-0.95 CPU-s/GB), and now joins
//! header and payload in a scratch buffer for aws-lc.
//!
//! Tried and rejected (2026-11-22): RustCrypto `ghash` 0.6 (polyval 0.7,
//! 4 blocks per multiply) for all GMAC work, without scratch copies. In the
//! crypto bench (hot cache) it runs 7.7-8.2 GB/s, 3-4x ring's AAD path; in a
//! real signed 2 GiB transfer it lost, 5 interleaved rounds each: download
//! 1.15-1.60 vs 0.71-0.90 CPU-s/GB, upload 0.82-0.94 vs 0.73-0.82. perf: its
//! loop stalls on loads of the cold message (`compute_parts` 25% + polyval 8%
//! of samples, against memcpy 12% + ring's VAES `aes_gcm_dec_update` 11%).
//!
//! Key material: [`SessionKeys`] and the NTLM keys are zeroized on drop; the
//! expanded key schedules inside aws-lc and RustCrypto cipher objects
//! ([`Signer`], [`SessionCipher`]) are not (neither crate exposes that).

pub mod fuzz;
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

/// Frames captured from Samba 4.17.12 (the `tests/support` fixture) by a
/// scratch client using this module, with the NTLM session key 0x24.. : the
/// final SESSION_SETUP response (signed by the server) and the encrypted
/// response to an encrypted TREE_CONNECT, per dialect, cipher and signing
/// algorithm. Their preauth hashes were recorded alongside.
#[cfg(test)]
mod samba_vectors {
    use super::*;

    const SESSION_KEY: [u8; 16] = [0x24; 16];

    fn check(
        dialect: u16,
        cipher: Cipher,
        alg: SigningAlgorithm,
        preauth: Option<&[u8]>,
        fin: &[u8],
        enc: &[u8],
    ) {
        let hash: Option<[u8; 64]> = preauth.map(|p| p.try_into().unwrap());
        let keys = SessionKeys::derive(dialect, &SESSION_KEY, hash.as_ref(), Some(cipher));
        assert!(
            Signer::new(alg, &keys.signing).verify(fin),
            "{dialect:x} {alg:?} signature"
        );
        let sc = SessionCipher::new(cipher, &keys.encryption, &keys.decryption, 0).unwrap();
        let plain = sc.decrypt(enc).unwrap();
        assert_eq!(plain[..4], *b"\xfeSMB");
        assert_eq!(plain[12], 3, "TREE_CONNECT response");
        assert_eq!(plain[8..12], [0; 4], "STATUS_SUCCESS");
        assert_eq!(
            transform_session_id(enc).unwrap(),
            u64::from_le_bytes(plain[40..48].try_into().unwrap())
        );
        let mut t = enc.to_vec();
        t[60] ^= 1;
        assert_eq!(sc.decrypt(&t), Err(CryptoError::Decrypt));
    }

    #[test]
    fn smb302_cmac_and_ccm() {
        check(
            0x0302,
            Cipher::Aes128Ccm,
            SigningAlgorithm::AesCmac,
            None,
            include_bytes!("testdata/samba_0302_final.bin"),
            include_bytes!("testdata/samba_0302_ccm128_tree_connect.bin"),
        );
    }

    #[test]
    fn smb311_gmac_and_gcm128() {
        check(
            0x0311,
            Cipher::Aes128Gcm,
            SigningAlgorithm::AesGmac,
            Some(include_bytes!(
                "testdata/samba_0311_gcm128_gmac_preauth.bin"
            )),
            include_bytes!("testdata/samba_0311_gcm128_gmac_final.bin"),
            include_bytes!("testdata/samba_0311_gcm128_gmac_tree_connect.bin"),
        );
    }

    #[test]
    fn smb311_gmac_and_gcm256() {
        check(
            0x0311,
            Cipher::Aes256Gcm,
            SigningAlgorithm::AesGmac,
            Some(include_bytes!(
                "testdata/samba_0311_gcm256_gmac_preauth.bin"
            )),
            include_bytes!("testdata/samba_0311_gcm256_gmac_final.bin"),
            include_bytes!("testdata/samba_0311_gcm256_gmac_tree_connect.bin"),
        );
    }

    #[test]
    fn smb311_cmac_and_ccm256() {
        check(
            0x0311,
            Cipher::Aes256Ccm,
            SigningAlgorithm::AesCmac,
            Some(include_bytes!(
                "testdata/samba_0311_ccm256_cmac_preauth.bin"
            )),
            include_bytes!("testdata/samba_0311_ccm256_cmac_final.bin"),
            include_bytes!("testdata/samba_0311_ccm256_cmac_tree_connect.bin"),
        );
    }
}
