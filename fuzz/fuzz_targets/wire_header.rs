//! Fuzz target `wire_header`: arbitrary bytes into `smb_core::wire::fuzz::header`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::header(data));
