//! Fuzz target `cli_auth_file`: arbitrary bytes into `smbcp::fuzzing::auth_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smbcp::fuzzing::auth_file(data));
