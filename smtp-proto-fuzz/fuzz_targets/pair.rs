//! libFuzzer entry for the `pair` target; the checks live in
//! `smtp_proto_fuzz_harness::pair`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::pair::run(data));
