//! Values shared by the bounce writer's and the bounce reader's tests.
#![allow(dead_code)]

use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::trace::Timestamp;

/// The reporting host.
pub fn host() -> Domain<'static> {
    Domain::new("mx.example.org").unwrap()
}

/// The sender the bounce goes back to.
pub fn sender() -> ReversePath<'static> {
    ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap())
}

/// A recipient.
pub fn rcpt(addr: &str) -> ForwardPath<'_> {
    ForwardPath::Mailbox(Mailbox::parse(addr).unwrap())
}

/// `secs` after the epoch, at `offset` minutes east of UTC.
pub fn at(secs: i64, offset: i16) -> Timestamp {
    Timestamp::new(secs, offset).unwrap()
}
