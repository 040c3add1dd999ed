//! Fuzz target `wire_dir_entries`: arbitrary bytes into `smb_core::wire::fuzz::dir_entries`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::dir_entries(data));
