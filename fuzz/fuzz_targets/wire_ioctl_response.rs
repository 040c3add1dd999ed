//! Fuzz target `wire_ioctl_response`: arbitrary bytes into `smb_core::wire::fuzz::ioctl_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::ioctl_response(data));
