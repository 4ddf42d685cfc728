//! libFuzzer entry for the `reply` target; the checks live in
//! `smtp_proto_fuzz_harness::reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::reply::run(data));
