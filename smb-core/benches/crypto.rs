//! Throughput of the crypto layer (MS-SMB2 3.1.4.1 signing, 3.1.4.3
//! encryption) on 1 MiB and 8 MiB messages, one core, plain `main` (no
//! harness). Prints MB/s (10^6 bytes per second) per operation.
//!
//! ```text
//! cargo bench -p smb-core --bench crypto
//! RUSTFLAGS="-C target-cpu=native" cargo bench -p smb-core --bench crypto
//! ```
//!
//! The figures measured on the project machine are in the `crypto` module
//! documentation (`smb-core/src/crypto/mod.rs`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use smb_core::crypto::{Cipher, SessionCipher, Signer, SigningAlgorithm, TRANSFORM_HEADER_LEN};

/// Runs `f` over `bytes`-sized work until `min` has passed; returns MB/s.
fn rate(bytes: usize, min: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        f();
        n += 1;
    }
    (n as f64 * bytes as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_millis(if quick { 200 } else { 1500 });
    println!(
        "cpu: aes={} pclmulqdq={} avx2={}",
        std::arch::is_x86_feature_detected!("aes"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    for size in [1usize << 20, 8 << 20] {
        let label = format!("{} MiB", size >> 20);
        for c in [
            Cipher::Aes128Gcm,
            Cipher::Aes256Gcm,
            Cipher::Aes128Ccm,
            Cipher::Aes256Ccm,
        ] {
            let key = vec![0x42; c.key_len()];
            let sc = SessionCipher::new(c, &key, &key, 7).expect("key length");
            let mut frame = vec![0u8; TRANSFORM_HEADER_LEN + size];
            let enc = rate(size, min, || {
                sc.encrypt_in_place(1, black_box(&mut frame))
                    .expect("encrypt");
            });
            // Decrypting in place destroys the frame: time copy + decrypt
            // from a pristine frame, then subtract the copy.
            sc.encrypt_in_place(1, &mut frame).expect("encrypt");
            let pristine = frame.clone();
            let copy = rate(size, min, || frame.copy_from_slice(black_box(&pristine)));
            let both = rate(size, min, || {
                frame.copy_from_slice(&pristine);
                sc.decrypt_in_place(black_box(&mut frame)).expect("decrypt");
            });
            let dec = 1.0 / (1.0 / both - 1.0 / copy);
            println!(
                "{label:>6}  {:<12} encrypt {enc:8.0} MB/s   decrypt {dec:8.0} MB/s",
                c.name()
            );
        }
        for alg in [
            SigningAlgorithm::AesGmac,
            SigningAlgorithm::AesCmac,
            SigningAlgorithm::HmacSha256,
        ] {
            let s = Signer::new(alg, &[0x42; 16]);
            let mut msg = vec![0u8; size];
            let sign = rate(size, min, || s.sign(black_box(&mut msg)));
            let verify = rate(size, min, || {
                black_box(s.verify(black_box(&msg)));
            });
            let verify_ip = rate(size, min, || {
                black_box(s.verify_in_place(black_box(&mut msg)));
            });
            println!(
                "{label:>6}  {:<12} sign    {sign:8.0} MB/s   verify  {verify:8.0} MB/s   \
                 verify_in_place {verify_ip:8.0} MB/s",
                format!("{alg:?}")
            );
        }
    }
}
