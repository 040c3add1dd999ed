//! Fuzz entry points of the crypto layer: arbitrary bytes from a (possibly
//! hostile) server must never panic. The `fuzz/` target `transform` calls
//! [`transform`], and `tests::replay_seeds` replays `fuzz/seeds/transform/*`
//! on stable (MS-SMB2 2.2.41, 3.2.5.1.1, 3.1.4.1).

use super::{transform_session_id, Cipher, SessionCipher, Signer, SigningAlgorithm};

/// A frame as received: TRANSFORM_HEADER validation and decryption with
/// every cipher (copying and in place), then signature verification of the
/// bytes as an SMB2 message with every signing algorithm.
pub fn transform(data: &[u8]) {
    let _ = transform_session_id(data);
    for c in [
        Cipher::Aes128Ccm,
        Cipher::Aes128Gcm,
        Cipher::Aes256Ccm,
        Cipher::Aes256Gcm,
    ] {
        let key = [0x24u8; 32];
        let Ok(sc) = SessionCipher::new(c, &key[..c.key_len()], &key[..c.key_len()], 0) else {
            continue;
        };
        let _ = sc.decrypt(data);
        let _ = sc.decrypt_in_place(&mut data.to_vec());
    }
    for alg in [
        SigningAlgorithm::HmacSha256,
        SigningAlgorithm::AesCmac,
        SigningAlgorithm::AesGmac,
    ] {
        let s = Signer::new(alg, &[0x24; 16]);
        let _ = s.verify(data);
        let _ = s.verify_in_place(&mut data.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    proptest::proptest! {
        #[test]
        fn arbitrary_frames_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            super::transform(&data);
        }
    }

    #[test]
    fn replay_seeds() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/transform");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            for len in 0..=data.len() {
                super::transform(&data[..len]);
            }
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }
}
