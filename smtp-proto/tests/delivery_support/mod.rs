//! Envelopes, client configuration and replies shared by the tests that
//! drive [`Delivery`](smtp_proto::client::Delivery) against scripted
//! servers (`client_delivery`, `client_reuse`) and a random one
//! (`delivery_model`).
#![allow(dead_code)]

use smtp_proto::client::{ClientConfig, Envelope, TlsPolicy};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::{OwnedReply, Reply};

/// An envelope from `alice@example.net` to each of `to`.
pub fn envelope(to: &[&str]) -> Envelope<'static> {
    let mut env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.net").unwrap().into_owned(),
    ));
    for t in to {
        env = env.recipient(ForwardPath::Mailbox(
            Mailbox::parse(t).unwrap().into_owned(),
        ));
    }
    env
}

/// A client configuration for `client.example.net` without TLS.
pub fn config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.net").unwrap()).with_tls(TlsPolicy::Off)
}

/// `s` parsed as a reply.
pub fn reply(s: &str) -> OwnedReply {
    Reply::parse(s.as_bytes()).unwrap().into_owned()
}
