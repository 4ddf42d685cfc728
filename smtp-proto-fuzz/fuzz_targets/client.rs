//! libFuzzer entry for the `client` target; the checks live in
//! `smtp_proto_fuzz_harness::client`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::client::run(data));
