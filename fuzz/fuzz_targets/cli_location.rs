//! Fuzz target `cli_location`: arbitrary bytes into `smbcp::fuzzing::location`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smbcp::fuzzing::location(data));
