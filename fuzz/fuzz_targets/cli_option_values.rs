//! Fuzz target `cli_option_values`: arbitrary bytes into `smbcp::fuzzing::option_values`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smbcp::fuzzing::option_values(data));
