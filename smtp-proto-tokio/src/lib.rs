//! Tokio adapter for [`smtp_proto`]: drives the sans-IO SMTP server and
//! client machines over any [`tokio::io::AsyncRead`] +
//! [`tokio::io::AsyncWrite`] stream, and upgrades the stream with STARTTLS
//! through `tokio-rustls`, or runs it encrypted from the first byte with
//! implicit TLS (RFC 8314, the submissions port 465).
//!
//! The core does all protocol work; this crate owns the socket, the read
//! buffer and the clock (the per-phase timeouts the machines report). It
//! re-exports the core, `tokio_rustls` and its `rustls`, so one dependency
//! is enough.
//!
//! - [`client`]: runs a [`smtp_proto::client::Client`] over a stream,
//!   handing events to a [`client::ClientHandler`]; [`client::send`] sends
//!   one message with a [`smtp_proto::client::Delivery`] and returns the
//!   report, and [`client::Connection`] keeps one session open for several
//!   messages (one greeting, EHLO, STARTTLS and AUTH for all).
//! - [`server`]: runs a [`smtp_proto::server::ServerSession`] over a stream,
//!   handing events to a [`server::ServerHandler`];
//!   [`server::serve_until`] does the same and stops gracefully (`421
//!   4.3.2`, once no message is under way) when a future completes.
//! - [`proxy`]: reads the PROXY protocol header (v1/v2) a TCP load
//!   balancer sends before the client's bytes, and nothing after it.
//! - [`tls`]: rustls server and client configurations from PEM files (the
//!   *ring* provider), and the STARTTLS upgrade on both sides, which
//!   refuses to start TLS while plaintext is waiting in the read buffer.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use smtp_proto;
pub use tokio_rustls;
pub use tokio_rustls::rustls;

pub mod client;
mod io;
pub mod proxy;
pub mod server;
pub mod tls;

pub use io::MaybeTls;
