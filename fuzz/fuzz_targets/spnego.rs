//! Fuzz target `spnego`: arbitrary bytes into `smb_core::auth::fuzz::spnego`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::auth::fuzz::spnego(data));
