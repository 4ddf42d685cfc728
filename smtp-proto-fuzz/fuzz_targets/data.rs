//! libFuzzer entry for the `data` target; the checks live in
//! `smtp_proto_fuzz_harness::data`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::data::run(data));
