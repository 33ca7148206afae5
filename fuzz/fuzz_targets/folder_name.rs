#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| git_migrate_core::fuzz_targets::folder_name(data));
