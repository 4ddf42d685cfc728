//! A sans-IO SMTP protocol core.
//!
//! Pure parsers, writers and session state machines: bytes in, events and
//! bytes out, no sockets, no clock, no async runtime.
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
