//! A sans-IO SMTP protocol core.
//!
//! Pure parsers, writers and session state machines: bytes in, events and
//! bytes out, no sockets, no clock, no async runtime.
//!
//! # Where to start
//!
//! - A server: [`server::ServerSession`]; the [`server`] module has a
//!   complete run loop over a byte buffer.
//! - A client: [`client::Client`]; the [`client`] module has a complete
//!   run loop, and [`client::Delivery`] makes a mail sender's decisions
//!   for one message.
//! - Both machines answer [`handle_input`](server::ServerSession::handle_input)
//!   with a [`session::Step`]: how many bytes of the input were consumed
//!   and an [`session::Outcome`] (an event, or what the caller does next).
//!   Events borrow from the input, so the caller drops the consumed bytes
//!   only once it is done with the event.
//! - Over a socket, the `smtp-proto-tokio` and `smtp-proto-blocking`
//!   crates run either machine and own the read buffer, the clock and
//!   TLS.
//! - Without a session: [`command`] and [`reply`] parse and write single
//!   commands and replies, [`data`] frames message bodies, [`dsn`] writes
//!   and reads bounces, [`trace`] writes `Received:` fields.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod command;
pub mod data;
pub mod dsn;
pub mod framer;
pub mod proxy;
pub mod reply;
pub mod sasl;
pub mod server;
pub mod session;
pub mod status;
pub mod trace;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// A xorshift64 generator for the unit tests that feed random inputs:
/// deterministic, so a seed names a run. `seed` must not be zero.
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
