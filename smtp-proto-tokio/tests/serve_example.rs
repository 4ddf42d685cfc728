//! The `serve` example as a process: how it stops on signals, and how it
//! says why it cannot start.
#![cfg(unix)]

#[path = "support/serve_example.rs"]
mod serve_example;

#[test]
fn a_second_interrupt_cuts_the_connections_off_at_once() {
    serve_example::second_interrupt_cuts_off_at_once("serve");
}

#[test]
fn after_the_grace_a_partial_message_is_removed() {
    serve_example::grace_over_removes_the_partial_message("serve");
}

#[test]
fn a_server_that_cannot_start_says_why_and_exits_1() {
    serve_example::startup_failures_name_what_failed("serve");
}

/// The check that keeps the process tests from running an old binary:
/// a source its dep-info file lists (a path with a space included),
/// modified after the binary was built, makes it stale.
#[test]
fn a_binary_older_than_one_of_its_sources_is_stale() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let touch = |name: &str, time: SystemTime| {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).expect("create");
        file.set_modified(time).expect("set_modified");
        path
    };
    let binary = touch("serve", at(10));
    let lib = touch("lib.rs", at(5));
    let spaced = touch("my support.rs", at(5));
    let dep_info = dir.path().join("serve.d");
    let escaped = |p: &std::path::Path| p.display().to_string().replace(' ', "\\ ");
    std::fs::write(
        &dep_info,
        format!(
            "{}: {} {}\n\n{}:\n",
            binary.display(),
            escaped(&lib),
            escaped(&spaced),
            escaped(&lib)
        ),
    )
    .expect("write");
    assert_eq!(serve_example::newer_source(&binary, &dep_info), None);
    // Without a dep-info file nothing can be told.
    assert_eq!(
        serve_example::newer_source(&binary, &dir.path().join("none.d")),
        None
    );
    touch("my support.rs", at(20));
    assert_eq!(
        serve_example::newer_source(&binary, &dep_info),
        Some(spaced)
    );
}
