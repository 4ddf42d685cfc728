//! libFuzzer entry for the `command` target; the checks live in
//! `smtp_proto_fuzz_harness::command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::command::run(data));
