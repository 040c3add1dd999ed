//! Key derivation for SMB 3.x (MS-SMB2 3.1.4.2: SP800-108 KDF in counter
//! mode with HMAC-SHA256), the per-session keys of MS-SMB2 3.2.5.3.1 /
//! 3.3.5.5.3, and the SMB 3.1.1 preauth integrity hash (MS-SMB2 3.2.5.2,
//! 3.3.5.4).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Cipher;

/// SP800-108 KDF in counter mode (NIST SP 800-108 section 5.1) with
/// HMAC-SHA256 as the PRF and r = 32, as MS-SMB2 3.1.4.2 uses it:
/// `K(i) = HMAC(key, [i]_4 || label || 0x00 || context || [out_bits]_4)`.
///
/// `label` and `context` are passed exactly as MS-SMB2 lists them, i.e.
/// including their trailing NUL (`b"SMB2AESCMAC\0"`). Returns
/// `out_bits / 8` bytes (`out_bits` a multiple of 8).
pub fn kdf(key: &[u8], label: &[u8], context: &[u8], out_bits: u32) -> Vec<u8> {
    let out_len = (out_bits / 8) as usize;
    let mut out = Vec::with_capacity(out_len + 32);
    let mut i = 1u32;
    while out.len() < out_len {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(&i.to_be_bytes());
        mac.update(label);
        mac.update(&[0]);
        mac.update(context);
        mac.update(&out_bits.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        i += 1;
    }
    out.truncate(out_len);
    out
}

/// The keys of one SMB2 session, from the client's point of view.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Session.SigningKey (16 bytes).
    pub signing: Vec<u8>,
    /// Session.EncryptionKey: client to server (16 or 32 bytes; empty before 3.0).
    pub encryption: Vec<u8>,
    /// Session.DecryptionKey: server to client (16 or 32 bytes; empty before 3.0).
    pub decryption: Vec<u8>,
    /// Session.ApplicationKey (16 bytes).
    pub application: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { <redacted> }")
    }
}

impl SessionKeys {
    /// Derives the keys for `dialect` (0x0202 ... 0x0311) from the
    /// authentication's `session_key` (MS-SMB2 3.2.5.3.1):
    ///
    /// - 2.0.2 / 2.1: signing and application key are the session key itself;
    ///   no encryption keys.
    /// - 3.0 / 3.0.2: labels "SMB2AESCMAC"/"SmbSign", "SMB2AESCCM"/"ServerIn "
    ///   and "ServerOut", "SMB2APP"/"SmbRpc".
    /// - 3.1.1: labels "SMBSigningKey", "SMBC2SCipherKey", "SMBS2CCipherKey",
    ///   "SMBAppKey" with the session's preauth hash as context. A missing
    ///   `preauth_hash` counts as all zeroes (the keys then never match the
    ///   server's, so nothing verifies: fail closed).
    ///
    /// With an AES-256 `cipher` the encryption and decryption keys are 32
    /// bytes (L = 256), otherwise 16.
    pub fn derive(
        dialect: u16,
        session_key: &[u8],
        preauth_hash: Option<&[u8; 64]>,
        cipher: Option<Cipher>,
    ) -> Self {
        // MS-SMB2 3.2.5.3.1: the first 16 bytes of the GSS key, unless a 256-bit
        // cipher is in use, where the full key is used.
        let wide = cipher.is_some_and(Cipher::is_256);
        let sk = if wide || session_key.len() <= 16 {
            session_key
        } else {
            &session_key[..16]
        };
        let enc_bits = if wide { 256 } else { 128 };
        if dialect < 0x0300 {
            return Self {
                signing: sk.to_vec(),
                encryption: Vec::new(),
                decryption: Vec::new(),
                application: sk.to_vec(),
            };
        }
        if dialect < 0x0311 {
            return Self {
                signing: kdf(sk, b"SMB2AESCMAC\0", b"SmbSign\0", 128),
                encryption: kdf(sk, b"SMB2AESCCM\0", b"ServerIn \0", enc_bits),
                decryption: kdf(sk, b"SMB2AESCCM\0", b"ServerOut\0", enc_bits),
                application: kdf(sk, b"SMB2APP\0", b"SmbRpc\0", 128),
            };
        }
        let zero = [0u8; 64];
        let ctx: &[u8] = preauth_hash.map_or(&zero[..], |h| &h[..]);
        Self {
            signing: kdf(sk, b"SMBSigningKey\0", ctx, 128),
            encryption: kdf(sk, b"SMBC2SCipherKey\0", ctx, enc_bits),
            decryption: kdf(sk, b"SMBS2CCipherKey\0", ctx, enc_bits),
            application: kdf(sk, b"SMBAppKey\0", ctx, 128),
        }
    }
}

/// The SMB 3.1.1 preauth integrity hash value: SHA-512 chaining,
/// `H(i) = SHA-512(H(i-1) || message_i)` from 64 zero bytes (MS-SMB2
/// 3.2.5.2, 3.3.5.4). Fed the NEGOTIATE request and response (connection
/// hash), then each SESSION_SETUP request and every non-final response
/// (session hash, starting from the connection hash).
#[derive(Clone, PartialEq, Eq)]
pub struct PreauthHash([u8; 64]);

impl Default for PreauthHash {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PreauthHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreauthHash(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl PreauthHash {
    /// The initial all-zero value.
    pub fn new() -> Self {
        Self([0; 64])
    }

    /// Chains one whole SMB2 message (header + body, no transport header).
    pub fn update(&mut self, message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.0);
        h.update(message);
        self.0 = h.finalize().into();
    }

    /// The current value.
    pub fn value(&self) -> [u8; 64] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    #[test]
    fn kdf_structure_matches_hmac() {
        // One block: K(1) = HMAC(key, 00000001 || label || 00 || context || 00000080).
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 16]).unwrap();
        mac.update(&hex!("00000001"));
        mac.update(b"L\0");
        mac.update(&[0]);
        mac.update(b"C\0");
        mac.update(&hex!("00000080"));
        let expect = mac.finalize().into_bytes();
        assert_eq!(kdf(&[7; 16], b"L\0", b"C\0", 128), expect[..16]);
        // Two blocks for 256 bits, the second with i = 2 and L = 256.
        let k = kdf(&[7; 16], b"L\0", b"C\0", 256);
        assert_eq!(k.len(), 32);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 16]).unwrap();
        mac.update(&hex!("00000001"));
        mac.update(b"L\0\0C\0");
        mac.update(&hex!("00000100"));
        assert_eq!(k, mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn smb2_keys_are_the_session_key() {
        let k = SessionKeys::derive(0x0210, &[9; 16], None, None);
        assert_eq!(k.signing, [9; 16]);
        assert!(k.encryption.is_empty());
    }

    #[test]
    fn smb311_keys_depend_on_hash_and_width() {
        let h = [1u8; 64];
        let a = SessionKeys::derive(0x0311, &[9; 16], Some(&h), Some(Cipher::Aes128Gcm));
        let b = SessionKeys::derive(0x0311, &[9; 16], Some(&[2; 64]), Some(Cipher::Aes128Gcm));
        let w = SessionKeys::derive(0x0311, &[9; 16], Some(&h), Some(Cipher::Aes256Gcm));
        assert_ne!(a.signing, b.signing);
        assert_eq!(a.signing, w.signing);
        assert_eq!(
            (a.encryption.len(), w.encryption.len(), w.decryption.len()),
            (16, 32, 32)
        );
        assert_eq!(a.signing, kdf(&[9; 16], b"SMBSigningKey\0", &h, 128));
        assert_eq!(format!("{a:?}"), "SessionKeys { <redacted> }");
    }

    #[test]
    fn preauth_chaining() {
        let mut p = PreauthHash::new();
        p.update(b"abc");
        let mut h = Sha512::new();
        h.update([0u8; 64]);
        h.update(b"abc");
        assert_eq!(p.value()[..], h.finalize()[..]);
    }
}
