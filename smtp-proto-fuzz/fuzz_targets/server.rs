//! libFuzzer entry for the `server` target; the checks live in
//! `smtp_proto_fuzz_harness::server`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::server::run(data));
