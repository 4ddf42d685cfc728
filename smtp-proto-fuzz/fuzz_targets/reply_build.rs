//! libFuzzer entry for the `reply_build` target; the checks live in
//! `smtp_proto_fuzz_harness::reply_build`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::reply_build::run(data));
