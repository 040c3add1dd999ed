//! Fuzz target `wire_dfs_referral`: arbitrary bytes into `smb_core::wire::fuzz::dfs_referral`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smb_core::wire::fuzz::dfs_referral(data));
