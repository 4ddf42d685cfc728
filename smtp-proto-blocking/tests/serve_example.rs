//! The `serve-blocking` example as a process: how it stops on signals, and how it
//! says why it cannot start.
#![cfg(unix)]

#[path = "../../smtp-proto-tokio/tests/support/serve_example.rs"]
mod serve_example;

#[test]
fn a_second_interrupt_cuts_the_connections_off_at_once() {
    serve_example::second_interrupt_cuts_off_at_once("serve-blocking");
}

#[test]
fn after_the_grace_a_partial_message_is_removed() {
    serve_example::grace_over_removes_the_partial_message("serve-blocking");
}

#[test]
fn a_server_that_cannot_start_says_why_and_exits_1() {
    serve_example::startup_failures_name_what_failed("serve-blocking");
}
