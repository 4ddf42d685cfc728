//! libFuzzer entry for the `sasl` target; the checks live in
//! `smtp_proto_fuzz_harness::sasl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::sasl::run(data));
