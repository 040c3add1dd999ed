//! Fuzz target `ntlm_challenge`: arbitrary bytes into `smb_core::auth::fuzz::ntlm_challenge`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::auth::fuzz::ntlm_challenge(data));
