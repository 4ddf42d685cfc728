//! libFuzzer entry for the `delivery` target; the checks live in
//! `smtp_proto_fuzz_harness::delivery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::delivery::run(data));
