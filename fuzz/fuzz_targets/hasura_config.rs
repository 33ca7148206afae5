#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| git_migrate::fuzz_targets::hasura_config(data));
