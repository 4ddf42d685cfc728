//! libFuzzer entry for the `command_build` target; the checks live in
//! `smtp_proto_fuzz_harness::command_build`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::command_build::run(data));
