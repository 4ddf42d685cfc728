//! libFuzzer entry for the `ehlo` target; the checks live in
//! `smtp_proto_fuzz_harness::ehlo`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::ehlo::run(data));
