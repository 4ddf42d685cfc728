//! The `send` example as a process, against a scripted peer: what it
//! prints of what the server said, and of a server it cannot reach.

#[path = "support/serve_example.rs"]
#[allow(
    dead_code,
    reason = "only the example binary's path and the bound are used"
)]
mod serve_example;

#[path = "support/send_process.rs"]
mod send_process;

#[test]
fn control_characters_in_server_replies_are_printed_escaped() {
    send_process::replies_are_printed_escaped("send");
}

#[test]
fn a_server_that_cannot_be_reached_is_named() {
    send_process::an_unreachable_server_is_named("send");
}

#[test]
fn a_session_refused_before_any_transaction_names_every_recipient() {
    send_process::session_refusals_name_every_recipient("send");
}
