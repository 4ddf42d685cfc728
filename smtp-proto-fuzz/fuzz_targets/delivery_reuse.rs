//! libFuzzer entry for the `delivery_reuse` target; the checks live in
//! `smtp_proto_fuzz_harness::delivery_reuse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::delivery_reuse::run(data));
