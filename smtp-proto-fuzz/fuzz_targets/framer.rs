//! libFuzzer entry for the `framer` target; the checks live in
//! `smtp_proto_fuzz_harness::framer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_proto_fuzz_harness::framer::run(data));
