//! libFuzzer entry for the `dsn_read` target; the checks live in
//! `smtp_proto_fuzz_harness::dsn_read`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::dsn_read::run(data));
