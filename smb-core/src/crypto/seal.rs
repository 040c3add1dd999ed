//! SMB 3.x encryption (MS-SMB2 3.1.4.3 Encrypting the Message, 3.2.5.1.1
//! Decrypting the Message) in the SMB2 TRANSFORM_HEADER (MS-SMB2 2.2.41),
//! with the ciphers of 2.2.3.1.2: AES-128/256-CCM (11-byte nonce) and
//! AES-128/256-GCM (12-byte nonce), 16-byte tags.
//!
//! The AAD is the transform header from the Nonce field on (bytes 20..52);
//! the tag goes into its Signature field (4..20). Encryption and
//! decryption work in place so that a multi-megabyte READ or WRITE payload
//! is never copied on its way through; [`SessionCipher::encrypt`] and
//! [`SessionCipher::decrypt`] are copying conveniences.

use std::sync::atomic::{AtomicU64, Ordering};

use aes::{Aes128, Aes256};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use ccm::aead::consts::{U11, U16};
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::Ccm;

use super::{CryptoError, SessionKeys};

/// Length of the SMB2 TRANSFORM_HEADER.
pub const TRANSFORM_HEADER_LEN: usize = 52;
/// ProtocolId of a TRANSFORM_HEADER: 0xFD 'S' 'M' 'B'.
pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xfd, b'S', b'M', b'B'];
/// Flags / EncryptionAlgorithm value: "Encrypted" (3.x) / AES-128-CCM (3.0).
const FLAGS_ENCRYPTED: u16 = 0x0001;

type Aes128Ccm = Ccm<Aes128, U16, U11>;
type Aes256Ccm = Ccm<Aes256, U16, U11>;

/// An encryption cipher (MS-SMB2 2.2.3.1.2 Ciphers ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// AES-128-CCM (id 1): the only cipher of 3.0 and 3.0.2.
    Aes128Ccm,
    /// AES-128-GCM (id 2).
    Aes128Gcm,
    /// AES-256-CCM (id 3).
    Aes256Ccm,
    /// AES-256-GCM (id 4).
    Aes256Gcm,
}

impl Cipher {
    /// The cipher for an SMB2_ENCRYPTION_CAPABILITIES id.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            1 => Some(Self::Aes128Ccm),
            2 => Some(Self::Aes128Gcm),
            3 => Some(Self::Aes256Ccm),
            4 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }

    /// The SMB2_ENCRYPTION_CAPABILITIES id.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes128Ccm => 1,
            Self::Aes128Gcm => 2,
            Self::Aes256Ccm => 3,
            Self::Aes256Gcm => 4,
        }
    }

    /// The conventional name, e.g. "AES-128-GCM".
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128Ccm => "AES-128-CCM",
            Self::Aes128Gcm => "AES-128-GCM",
            Self::Aes256Ccm => "AES-256-CCM",
            Self::Aes256Gcm => "AES-256-GCM",
        }
    }

    /// True for the 256-bit ciphers (32-byte keys, MS-SMB2 3.2.5.3.1).
    pub fn is_256(self) -> bool {
        matches!(self, Self::Aes256Ccm | Self::Aes256Gcm)
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        if self.is_256() {
            32
        } else {
            16
        }
    }

    /// Nonce length in bytes: 11 for CCM, 12 for GCM.
    pub fn nonce_len(self) -> usize {
        match self {
            Self::Aes128Ccm | Self::Aes256Ccm => 11,
            Self::Aes128Gcm | Self::Aes256Gcm => 12,
        }
    }
}

impl std::fmt::Display for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One keyed AEAD: GCM from aws-lc (see the module doc of `crypto` for why),
/// CCM from RustCrypto.
enum Aead {
    Ccm128(Box<Aes128Ccm>),
    Ccm256(Box<Aes256Ccm>),
    Gcm(Box<LessSafeKey>),
}

impl Aead {
    fn new(cipher: Cipher, key: &[u8]) -> Result<Self, CryptoError> {
        let bad = CryptoError::BadKey;
        let gcm = |alg| {
            UnboundKey::new(alg, key)
                .map(|k| Box::new(LessSafeKey::new(k)))
                .map_err(|_| bad)
        };
        Ok(match cipher {
            Cipher::Aes128Ccm => {
                Self::Ccm128(Box::new(Aes128Ccm::new_from_slice(key).map_err(|_| bad)?))
            }
            Cipher::Aes256Ccm => {
                Self::Ccm256(Box::new(Aes256Ccm::new_from_slice(key).map_err(|_| bad)?))
            }
            Cipher::Aes128Gcm => Self::Gcm(gcm(&AES_128_GCM)?),
            Cipher::Aes256Gcm => Self::Gcm(gcm(&AES_256_GCM)?),
        })
    }

    /// `nonce` is the 16-byte Nonce field; the cipher uses its first 11 or 12 bytes.
    fn seal(&self, nonce: &[u8; 16], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], CryptoError> {
        let tag: [u8; 16] = match self {
            Self::Ccm128(c) => c
                .encrypt_in_place_detached(nonce[..11].into(), aad, buf)
                .map_err(|_| CryptoError::TooLarge)?
                .into(),
            Self::Ccm256(c) => c
                .encrypt_in_place_detached(nonce[..11].into(), aad, buf)
                .map_err(|_| CryptoError::TooLarge)?
                .into(),
            Self::Gcm(k) => {
                let tag = k
                    .seal_in_place_separate_tag(gcm_nonce(nonce), Aad::from(aad), buf)
                    .map_err(|_| CryptoError::TooLarge)?;
                tag.as_ref().try_into().map_err(|_| CryptoError::TooLarge)?
            }
        };
        Ok(tag)
    }

    fn open(
        &self,
        nonce: &[u8; 16],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError> {
        let ok = match self {
            Self::Ccm128(c) => c
                .decrypt_in_place_detached(nonce[..11].into(), aad, buf, tag.into())
                .is_ok(),
            Self::Ccm256(c) => c
                .decrypt_in_place_detached(nonce[..11].into(), aad, buf, tag.into())
                .is_ok(),
            Self::Gcm(k) => k
                .open_in_place_separate_tag(gcm_nonce(nonce), Aad::from(aad), tag, buf)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::Decrypt)
        }
    }
}

/// The 12-byte GCM nonce: the first 12 bytes of the Nonce field.
pub(crate) fn gcm_nonce(field: &[u8; 16]) -> Nonce {
    let mut n = [0u8; 12];
    n.copy_from_slice(&field[..12]);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts requests and decrypts responses of one SMB 3.x session.
///
/// Encryption uses Session.EncryptionKey (client to server), decryption
/// Session.DecryptionKey (server to client). Every encryption takes a fresh
/// nonce: a 64-bit counter (little-endian, first 8 bytes) followed by a
/// caller-chosen random salt (3 bytes for CCM, 4 for GCM), so nonces never
/// repeat under one key. `&self` methods and `Sync`: share it behind an
/// `Arc` so that each task seals its own frame.
pub struct SessionCipher {
    cipher: Cipher,
    enc: Aead,
    dec: Aead,
    salt: [u8; 4],
    counter: AtomicU64,
}

impl std::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCipher")
            .field("cipher", &self.cipher)
            .field("sent", &self.counter.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SessionCipher {
    /// A cipher with `encryption_key` (client to server) and `decryption_key`
    /// (server to client), both [`Cipher::key_len`] bytes long, and a random
    /// `nonce_salt` from the caller.
    pub fn new(
        cipher: Cipher,
        encryption_key: &[u8],
        decryption_key: &[u8],
        nonce_salt: u32,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            cipher,
            enc: Aead::new(cipher, encryption_key)?,
            dec: Aead::new(cipher, decryption_key)?,
            salt: nonce_salt.to_le_bytes(),
            counter: AtomicU64::new(0),
        })
    }

    /// [`new`](Self::new) with a session's derived keys
    /// ([`SessionKeys::encryption`] and [`SessionKeys::decryption`]).
    pub fn from_keys(
        cipher: Cipher,
        keys: &SessionKeys,
        nonce_salt: u32,
    ) -> Result<Self, CryptoError> {
        Self::new(cipher, &keys.encryption, &keys.decryption, nonce_salt)
    }

    /// The cipher in use.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Encrypts in place. `frame` holds [`TRANSFORM_HEADER_LEN`] bytes of
    /// room (any contents) followed by the plaintext: one SMB2 message or a
    /// whole compound. Fills in the TRANSFORM_HEADER for `session_id` and
    /// replaces the plaintext by the ciphertext; the frame then goes on the
    /// wire as it is (after the 4-byte transport header).
    pub fn encrypt_in_place(&self, session_id: u64, frame: &mut [u8]) -> Result<(), CryptoError> {
        if frame.len() < TRANSFORM_HEADER_LEN {
            return Err(CryptoError::Truncated);
        }
        let size =
            u32::try_from(frame.len() - TRANSFORM_HEADER_LEN).map_err(|_| CryptoError::TooLarge)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        let salt_len = self.cipher.nonce_len() - 8;
        nonce[8..8 + salt_len].copy_from_slice(&self.salt[..salt_len]);

        let (header, body) = frame.split_at_mut(TRANSFORM_HEADER_LEN);
        header[..4].copy_from_slice(&TRANSFORM_PROTOCOL_ID);
        header[4..20].fill(0);
        header[20..36].copy_from_slice(&nonce);
        header[36..40].copy_from_slice(&size.to_le_bytes());
        header[40..42].fill(0);
        header[42..44].copy_from_slice(&FLAGS_ENCRYPTED.to_le_bytes());
        header[44..52].copy_from_slice(&session_id.to_le_bytes());
        let tag = self.enc.seal(&nonce, &header[20..52], body)?;
        header[4..20].copy_from_slice(&tag);
        Ok(())
    }

    /// Encrypts `plaintext` (one SMB2 message or a compound) for
    /// `session_id` into a new TRANSFORM_HEADER frame (copies once; see
    /// [`encrypt_in_place`](Self::encrypt_in_place)).
    pub fn encrypt(&self, session_id: u64, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut frame = Vec::with_capacity(TRANSFORM_HEADER_LEN + plaintext.len());
        frame.resize(TRANSFORM_HEADER_LEN, 0);
        frame.extend_from_slice(plaintext);
        self.encrypt_in_place(session_id, &mut frame)?;
        Ok(frame)
    }

    /// Validates a TRANSFORM_HEADER frame (ProtocolId, Flags,
    /// OriginalMessageSize equal to the bytes that follow the header) and
    /// decrypts it in place. Returns the plaintext, which is `frame[52..]`.
    /// On error the contents of `frame` after the header are unspecified.
    /// The caller picks this session's cipher by [`transform_session_id`].
    pub fn decrypt_in_place<'a>(&self, frame: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        check_header(frame)?;
        let (header, body) = frame.split_at_mut(TRANSFORM_HEADER_LEN);
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&header[20..36]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&header[4..20]);
        self.dec.open(&nonce, &header[20..52], body, &tag)?;
        Ok(body)
    }

    /// Decrypts a TRANSFORM_HEADER frame into a new buffer (copies once; see
    /// [`decrypt_in_place`](Self::decrypt_in_place)).
    pub fn decrypt(&self, frame: &[u8]) -> Result<Vec<u8>, CryptoError> {
        check_header(frame)?;
        let (header, body) = frame.split_at(TRANSFORM_HEADER_LEN);
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&header[20..36]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&header[4..20]);
        let mut plain = body.to_vec();
        self.dec.open(&nonce, &header[20..52], &mut plain, &tag)?;
        Ok(plain)
    }
}

/// The SessionId of a TRANSFORM_HEADER frame, after the same checks as
/// decryption (so the caller can pick the session's cipher).
pub fn transform_session_id(frame: &[u8]) -> Result<u64, CryptoError> {
    check_header(frame)?;
    let id: [u8; 8] = frame
        .get(44..52)
        .and_then(|s| s.try_into().ok())
        .ok_or(CryptoError::Truncated)?;
    Ok(u64::from_le_bytes(id))
}

fn check_header(frame: &[u8]) -> Result<(), CryptoError> {
    let header = frame
        .get(..TRANSFORM_HEADER_LEN)
        .ok_or(CryptoError::Truncated)?;
    if header[..4] != TRANSFORM_PROTOCOL_ID {
        return Err(CryptoError::BadProtocolId);
    }
    if u16::from_le_bytes([header[42], header[43]]) != FLAGS_ENCRYPTED {
        return Err(CryptoError::BadFlags);
    }
    let size = u32::from_le_bytes([header[36], header[37], header[38], header[39]]);
    if usize::try_from(size).ok() != Some(frame.len() - TRANSFORM_HEADER_LEN) {
        return Err(CryptoError::BadLength);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    const ALL: [Cipher; 4] = [
        Cipher::Aes128Ccm,
        Cipher::Aes128Gcm,
        Cipher::Aes256Ccm,
        Cipher::Aes256Gcm,
    ];

    /// Client-side and server-side views of one session: keys swapped.
    fn pair(c: Cipher) -> (SessionCipher, SessionCipher) {
        let k1 = vec![0x11; c.key_len()];
        let k2 = vec![0x22; c.key_len()];
        (
            SessionCipher::new(c, &k1, &k2, 0xdead_beef).unwrap(),
            SessionCipher::new(c, &k2, &k1, 0x0bad_f00d).unwrap(),
        )
    }

    #[test]
    fn shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SessionCipher>();
        assert_send_sync::<crate::crypto::Signer>();
        assert_send_sync::<crate::auth::Authenticator>();
    }

    #[test]
    fn ids_and_names() {
        for c in ALL {
            assert_eq!(Cipher::from_id(c.id()), Some(c));
        }
        assert_eq!(Cipher::Aes128Gcm.name(), "AES-128-GCM");
        assert_eq!(Cipher::from_id(0), None);
    }

    #[test]
    fn round_trip_in_place_and_copying() {
        for c in ALL {
            let (client, server) = pair(c);
            for len in [0usize, 1, 64, 1000, 70_000] {
                let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let frame = client.encrypt(0x1234, &msg).unwrap();
                assert_eq!(frame.len(), len + 52);
                assert_eq!(frame[..4], TRANSFORM_PROTOCOL_ID);
                assert_eq!(transform_session_id(&frame), Ok(0x1234));
                assert_eq!(server.decrypt(&frame).unwrap(), msg, "{c}");
                let mut f2 = frame.clone();
                assert_eq!(server.decrypt_in_place(&mut f2).unwrap(), &msg[..]);
                // The client's own key does not open what it sent.
                assert_eq!(client.decrypt(&frame), Err(CryptoError::Decrypt));
            }
        }
    }

    #[test]
    fn nonces_are_unique_and_sized() {
        for c in ALL {
            let (client, _) = pair(c);
            let a = client.encrypt(1, b"x").unwrap();
            let b = client.encrypt(1, b"x").unwrap();
            assert_ne!(a[20..36], b[20..36]);
            assert!(a[20 + c.nonce_len()..36].iter().all(|&b| b == 0), "{c}");
        }
    }

    #[test]
    fn tampering_fails() {
        for c in ALL {
            let (client, server) = pair(c);
            let frame = client.encrypt(7, &[5; 100]).unwrap();
            for at in (4..frame.len()).step_by(7) {
                let mut t = frame.clone();
                t[at] ^= 1;
                assert!(server.decrypt(&t).is_err(), "{c} byte {at}");
            }
        }
    }

    #[test]
    fn bad_headers_and_truncation() {
        let (client, server) = pair(Cipher::Aes128Gcm);
        let frame = client.encrypt(7, &[5; 100]).unwrap();
        for n in 0..frame.len() {
            assert!(server.decrypt(&frame[..n]).is_err(), "prefix {n}");
            assert!(transform_session_id(&frame[..n]).is_err(), "prefix {n}");
        }
        let mut t = frame.clone();
        t[0] = 0xfe;
        assert_eq!(server.decrypt(&t), Err(CryptoError::BadProtocolId));
        let mut t = frame.clone();
        t[42] = 2;
        assert_eq!(server.decrypt(&t), Err(CryptoError::BadFlags));
        let mut t = frame;
        t.push(0);
        assert_eq!(server.decrypt(&t), Err(CryptoError::BadLength));
        assert_eq!(
            SessionCipher::new(Cipher::Aes256Gcm, &[0; 16], &[0; 32], 0).err(),
            Some(CryptoError::BadKey)
        );
    }

    #[test]
    fn nist_gcm_test_case_4_via_backend() {
        // McGrew & Viega GCM spec test case 4 (AES-128, 60-byte plaintext, AAD).
        let key = hex!("feffe9928665731c6d6a8f9467308308");
        let iv = hex!("cafebabefacedbaddecaf888");
        let pt = hex!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        );
        let aad = hex!("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let aead = Aead::new(Cipher::Aes128Gcm, &key).unwrap();
        let mut nonce = [0u8; 16];
        nonce[..12].copy_from_slice(&iv);
        let mut buf = pt.to_vec();
        let tag = aead.seal(&nonce, &aad, &mut buf).unwrap();
        assert_eq!(
            buf,
            hex!(
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
            )
        );
        assert_eq!(tag, hex!("5bc94fbc3221a5db94fae95ae7121a47"));
    }

    #[test]
    fn ccm_11_byte_nonce_round_trip() {
        // Published CCM vectors (SP 800-38C, RFC 3610) use other nonce/tag
        // sizes; SMB's (11, 16) shape is checked against Samba instead.
        let aead = Aead::new(Cipher::Aes128Ccm, &hex!("404142434445464748494a4b4c4d4e4f")).unwrap();
        let mut nonce = [0u8; 16];
        nonce[..11].copy_from_slice(&hex!("101112131415161718191a"));
        let mut buf = b"SMB2 CCM".to_vec();
        let tag = aead.seal(&nonce, b"aad", &mut buf).unwrap();
        aead.open(&nonce, b"aad", &mut buf, &tag).unwrap();
        assert_eq!(buf, b"SMB2 CCM");
    }
}
