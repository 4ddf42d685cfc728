//! libFuzzer entry for the `body` target; the checks live in
//! `smtp_proto_fuzz_harness::body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::body::run(data));
