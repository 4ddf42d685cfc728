//! The `serve` example as a process: how it stops on signals.
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
