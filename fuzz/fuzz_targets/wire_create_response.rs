//! Fuzz target `wire_create_response`: arbitrary bytes into `smb_core::wire::fuzz::create_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::create_response(data));
