//! Fuzz target `wire_error_response`: arbitrary bytes into `smb_core::wire::fuzz::error_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::error_response(data));
