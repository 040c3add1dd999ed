//! Fuzz target `wire_query_info`: arbitrary bytes into `smb_core::wire::fuzz::query_info`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::query_info(data));
