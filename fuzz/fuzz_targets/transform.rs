//! Fuzz target `transform`: arbitrary bytes into `smb_core::crypto::fuzz::transform`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::crypto::fuzz::transform(data));
