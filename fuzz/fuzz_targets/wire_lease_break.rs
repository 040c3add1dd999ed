//! Fuzz target `wire_lease_break`: arbitrary bytes into `smb_core::wire::fuzz::lease_break`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::lease_break(data));
