//! Fuzz target `wire_session_setup_response`: arbitrary bytes into `smb_core::wire::fuzz::session_setup_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::session_setup_response(data));
