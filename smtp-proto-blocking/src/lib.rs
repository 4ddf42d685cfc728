//! Blocking adapter for [`smtp_proto`]: drives the sans-IO SMTP server and
//! client machines over any [`std::io::Read`] + [`std::io::Write`] stream
//! whose reads can time out (a `TcpStream`; see [`Transport`]), with
//! STARTTLS and implicit TLS (RFC 8314, the submissions port 465) through
//! rustls.
//!
//! The core does all protocol work; this crate owns the socket, the read
//! buffer and the clock (the timeouts per SMTP phase, as the machines
//! report them). It re-exports the core and rustls, so one dependency is
//! enough.
//!
//! - [`server::serve`] runs a [`smtp_proto::server::ServerSession`] over a
//!   stream, handing events to a [`server::ServerHandler`];
//!   [`server::serve_until`] does the same and stops gracefully (`421
//!   4.3.2`, once no message is under way) when a flag is set.
//! - [`client::run`] runs a [`smtp_proto::client::Client`] over a stream,
//!   handing events to a [`client::ClientHandler`]; [`client::send`] sends
//!   one message with a [`smtp_proto::client::Delivery`] and returns the
//!   report, and [`client::Connection`] keeps one session open for several
//!   messages (one greeting, EHLO, STARTTLS and AUTH for all).
//! - [`proxy::read_proxy_header`] reads the PROXY protocol header (v1/v2)
//!   a TCP load balancer sends before the client's bytes, and nothing
//!   after it.
//! - [`MaybeTls`] is the stream both drivers use: plaintext until
//!   STARTTLS, then rustls over the same socket. Its
//!   [`start_tls`](MaybeTls::start_tls) refuses to start TLS while
//!   plaintext is waiting in the read buffer (RFC 3207 §5, CVE-2011-0411).
//!
//! With implicit TLS (`implicit_tls` in the session's or the machine's
//! configuration), [`server::serve`] and [`client::run`] run the TLS
//! handshake before the greeting, so no SMTP byte crosses the connection
//! in plaintext; they refuse to start without a TLS configuration in their
//! options ([`server::ServeError::ImplicitTlsNotConfigured`],
//! [`client::RunError::ImplicitTlsNotConfigured`]).
//!
//! Each connection runs on the calling thread to its end; a server runs one
//! thread per connection (the `serve-blocking` example bounds the number of
//! connection threads and delivers into a Maildir).
//!
//! # A server
//!
//! ```no_run
//! use std::net::TcpListener;
//!
//! use smtp_proto_blocking::server::{serve, ServeOptions, ServerHandler};
//! use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
//!
//! /// Accepts every sender and recipient and counts message bytes.
//! struct Sink(usize);
//!
//! impl ServerHandler for Sink {
//!     fn on_event(
//!         &mut self,
//!         session: &mut ServerSession,
//!         event: ServerEvent<'_>,
//!     ) -> std::io::Result<()> {
//!         match event {
//!             ServerEvent::MessageChunk(bytes) => self.0 += bytes.len(),
//!             ServerEvent::Hello { .. }
//!             | ServerEvent::Mail { .. }
//!             | ServerEvent::Rcpt { .. }
//!             | ServerEvent::MessageEnd { .. } => {
//!                 session.accept().map_err(std::io::Error::other)?;
//!             }
//!             _ => {} // information only
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:2525")?;
//! let (socket, _peer) = listener.accept()?;
//! let mut session = ServerSession::new(ServerConfig::new("mx.example.com"))?;
//! session.greet()?;
//! let end = serve(socket, &mut session, &mut Sink(0), &ServeOptions::default())?;
//! println!("connection ended: {end:?}");
//! # Ok(())
//! # }
//! ```
//!
//! # A client
//!
//! ```no_run
//! use std::net::TcpStream;
//!
//! use smtp_proto_blocking::client::{run, ClientHandler, RunOptions};
//! use smtp_proto_blocking::smtp_proto::client::{
//!     Client, ClientConfig, ClientEvent, Envelope, TlsPolicy,
//! };
//! use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
//!
//! /// Sends one message, then QUIT.
//! struct OneMessage {
//!     body: Option<&'static [u8]>,
//!     sent: bool,
//! }
//!
//! impl ClientHandler for OneMessage {
//!     fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
//!         use std::io::Error;
//!         match event {
//!             ClientEvent::Ready if !self.sent => {
//!                 let from = Mailbox::parse("alice@example.net").map_err(Error::other)?;
//!                 let to = Mailbox::parse("bob@example.com").map_err(Error::other)?;
//!                 let envelope = Envelope::new(ReversePath::Mailbox(from))
//!                     .recipient(ForwardPath::Mailbox(to));
//!                 self.sent = true;
//!                 client.send_mail(&envelope).map_err(Error::other)?;
//!             }
//!             ClientEvent::Ready | ClientEvent::TransactionEnd(_) => {
//!                 client.quit().map_err(Error::other)?;
//!             }
//!             _ => {}
//!         }
//!         Ok(())
//!     }
//!
//!     fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
//!         match self.body.take() {
//!             Some(body) => {
//!                 piece.extend_from_slice(body);
//!                 Ok(true)
//!             }
//!             None => Ok(false),
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
//! let mut client = Client::new(config);
//! let body: &'static [u8] = b"Subject: hi\r\n\r\nhello\r\n";
//! let mut handler = OneMessage { body: Some(body), sent: false };
//! let socket = TcpStream::connect("127.0.0.1:2525")?;
//! run(socket, &mut client, &mut handler, &RunOptions::default())?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use rustls;
pub use smtp_proto;

pub mod client;
pub mod proxy;
pub mod server;
mod transport;

pub use transport::{MaybeTls, Transport};

/// Why a STARTTLS upgrade, or the handshake that opens an implicit TLS
/// connection, did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// Bytes were already buffered after the STARTTLS exchange, before the
    /// handshake: a plaintext injection (RFC 3207 §5, CVE-2011-0411).
    #[error("{0} bytes of plaintext arrived after STARTTLS, before the TLS handshake")]
    PlaintextAfterStartTls(usize),
    /// The TLS handshake failed or timed out.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
}
