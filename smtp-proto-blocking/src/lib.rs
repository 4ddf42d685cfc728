//! Blocking adapter for [`smtp_proto`]: drives the sans-IO SMTP server and
//! client machines over any [`std::io::Read`] + [`std::io::Write`] stream
//! (a `TcpStream`, a TLS stream, a pipe).
//!
//! The core does all protocol work; this crate owns the socket, the read
//! buffer and the clock (read and write timeouts per SMTP phase, as the
//! machines report them). It re-exports the core so one dependency is enough.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use smtp_proto;
