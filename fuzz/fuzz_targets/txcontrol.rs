#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| git_migrate::fuzz_targets::txcontrol(data));
