//! Fuzz target `cli_robocopy`: arbitrary bytes into `smbcp::fuzzing::robocopy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smbcp::fuzzing::robocopy(data));
