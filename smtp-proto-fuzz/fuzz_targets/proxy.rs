//! libFuzzer entry for the `proxy` target; the checks live in
//! `smtp_proto_fuzz_harness::proxy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::proxy::run(data));
