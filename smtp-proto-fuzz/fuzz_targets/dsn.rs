//! libFuzzer entry for the `dsn` target; the checks live in
//! `smtp_proto_fuzz_harness::dsn`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::dsn::run(data));
