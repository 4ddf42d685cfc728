//! Blocking adapter for [`smtp_proto`]: drives the sans-IO SMTP server and
//! client machines over any [`std::io::Read`] + [`std::io::Write`] stream
//! whose reads can time out (a `TcpStream`; see [`Transport`]), with
//! STARTTLS through rustls.
//!
//! The core does all protocol work; this crate owns the socket, the read
//! buffer and the clock (the read timeout per SMTP phase, as the machines
//! report it). It re-exports the core and rustls, so one dependency is
//! enough.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use rustls;
pub use smtp_proto;

pub mod server;
mod transport;

pub use transport::{MaybeTls, Transport};

/// Why a STARTTLS upgrade did not happen.
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
