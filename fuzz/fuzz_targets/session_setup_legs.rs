//! Fuzz target `session_setup_legs`: arbitrary bytes into
//! `smb_core::auth::fuzz::session_setup_legs` (SESSION_SETUP responses, leg after leg).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::auth::fuzz::session_setup_legs(data));
