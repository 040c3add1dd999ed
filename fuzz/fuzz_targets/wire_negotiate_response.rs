//! Fuzz target `wire_negotiate_response`: arbitrary bytes into `smb_core::wire::fuzz::negotiate_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::negotiate_response(data));
