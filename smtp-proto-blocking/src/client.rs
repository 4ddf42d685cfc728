//! Drives a [`Client`] over a blocking stream.
//!
//! The client machine does all SMTP work. This module owns the socket, the
//! read buffer and the clock: it reads the server's replies, feeds the
//! machine, hands every event to your [`ClientHandler`], writes the
//! commands, applies the per-phase read timeout the machine reports
//! ([`Client::timeout`], RFC 5321 §4.5.3.2) and the data block timeout to
//! each write (where the [`Transport`] supports it), and runs the STARTTLS
//! handshake through rustls when the machine asks for it.
//!
//! Writes block: a pipelined group (or one body piece) is written whole
//! before the replies are read. The replies to one group are a few dozen
//! bytes per command and wait in the socket buffers meanwhile; a group
//! whose replies overflow them (thousands of recipients in one envelope)
//! would make both sides wait on each other until the write timeout.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto::client::{Client, ClientError, ClientEvent, Outcome};

use crate::transport::{MaybeTls, Transport};
use crate::StartTlsError;

/// The application's side of a client connection.
pub trait ClientHandler {
    /// Handles one event; the event borrows the connection's read buffer.
    /// After [`ClientEvent::Ready`] and [`ClientEvent::TransactionEnd`] it
    /// calls `client.send_mail(..)` or `client.quit()` (or
    /// `client.authenticate(..)`).
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()>;

    /// After [`ClientEvent::SendBody`]: puts the next piece of the message
    /// into `piece` (empty on entry) and returns `true`, or returns `false`
    /// at the end of the message. Each piece is written before the next is
    /// asked for, so a message never needs to sit whole in memory; with
    /// BDAT, each piece is one chunk.
    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool>;
}

/// Options of [`run`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The rustls configuration for STARTTLS and the name to check the
    /// server's certificate against; `None` makes STARTTLS fail (use
    /// `TlsPolicy::Off` then).
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The longest one read of the TLS handshake may wait.
    pub handshake_timeout: Duration,
    /// How many bytes one read asks for (at least 512). The read buffer
    /// is not capped by it: each read adds room for one more read after
    /// what the machine has not yet taken, so a reply up to the limits in
    /// `ClientConfig::replies` is gathered over as many reads as it needs.
    /// Memory stays bounded by `max_reply_len + max_line_len` plus one
    /// read, since the machine refuses a reply as soon as it is known to
    /// be too long.
    pub read_size: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            tls: None,
            handshake_timeout: Duration::from_secs(30),
            read_size: 16 * 1024,
        }
    }
}

/// Why a client connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The machine refused a call or the server broke the protocol.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The machine waits for a call the handler did not make (for example
    /// neither `send_mail` nor `quit` after [`ClientEvent::Ready`]).
    #[error("the handler made no call where the session needed one")]
    Stalled,
    /// The server closed the connection before the session ended.
    #[error("the server closed the connection")]
    PeerClosed,
    /// The server was silent longer than the machine's timeout.
    #[error("timed out waiting for the server")]
    TimedOut,
    /// STARTTLS failed (data injected after the 220, or the handshake
    /// failed or timed out).
    #[error("STARTTLS failed: {0}")]
    StartTls(#[from] StartTlsError),
}

/// How long to wait when the machine names no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Runs one client session to its end (the machine closed, after QUIT or a
/// refusal). The machine must be new: it waits for the server's greeting.
///
/// # Errors
/// See [`RunError`]. After an error the connection is dropped; nothing
/// more is sent.
pub fn run<S, H>(
    stream: S,
    client: &mut Client,
    handler: &mut H,
    options: &RunOptions,
) -> Result<(), RunError>
where
    S: Transport,
    H: ClientHandler,
{
    let mut stream = stream;
    // Each write (a command group or one body piece) must get through
    // within the data block timeout (RFC 5321 §4.5.3.2.5).
    stream.set_write_timeout(Some(
        client
            .config()
            .timeouts
            .data_block
            .max(Duration::from_millis(1)),
    ))?;
    let mut stream: MaybeTls<S, rustls::ClientConnection> = MaybeTls::Plain(stream);
    let read_size = options.read_size.max(512);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut piece: Vec<u8> = Vec::new();
    let result = loop {
        let step = match client.handle_input(&buf) {
            Ok(step) => step,
            Err(e) => break Err(e.into()),
        };
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ClientEvent::StartTls) => {
                buf.drain(..consumed);
                send(&mut stream, client, &mut out)?;
                let Some((config, name)) = options.tls.as_ref() else {
                    break Err(
                        StartTlsError::Handshake(io::Error::other("no TLS configured")).into(),
                    );
                };
                let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| StartTlsError::Handshake(io::Error::other(e)))?;
                stream.start_tls(conn, buf.len(), options.handshake_timeout)?;
                client.tls_established()?;
                continue;
            }
            Outcome::Event(ClientEvent::SendBody) => {
                buf.drain(..consumed);
                handler.on_event(client, ClientEvent::SendBody)?;
                loop {
                    piece.clear();
                    if !handler.next_body_piece(&mut piece)? {
                        client.end_body()?;
                        break;
                    }
                    if piece.is_empty() {
                        continue;
                    }
                    client.send_body(&piece)?;
                    send(&mut stream, client, &mut out)?;
                }
                continue;
            }
            Outcome::Event(event) => handler.on_event(client, event)?,
            Outcome::Paused => {
                buf.drain(..consumed);
                send(&mut stream, client, &mut out)?;
                if client.is_closed() {
                    break Ok(());
                }
                break Err(RunError::Stalled);
            }
            Outcome::NeedInput => {
                buf.drain(..consumed);
                send(&mut stream, client, &mut out)?;
                if client.is_closed() {
                    break Ok(());
                }
                let wait = client
                    .timeout()
                    .unwrap_or(DEFAULT_WAIT)
                    .max(Duration::from_millis(1));
                stream.set_read_timeout(Some(wait))?;
                let start = buf.len();
                buf.resize(start + read_size, 0);
                let read = stream.read(&mut buf[start..]);
                buf.truncate(start + *read.as_ref().unwrap_or(&0));
                match read {
                    Ok(0) => break Err(RunError::PeerClosed),
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => break Err(RunError::TimedOut),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // TLS ended without close_notify.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                        break Err(RunError::PeerClosed)
                    }
                    Err(e) => break Err(e.into()),
                }
                continue;
            }
            Outcome::Closed => {
                buf.drain(..consumed);
                send(&mut stream, client, &mut out)?;
                break Ok(());
            }
            _ => {}
        }
        buf.drain(..consumed);
    };
    if result.is_ok() {
        stream.close_notify();
    }
    result
}

/// True for the errors a read gives when its timeout expires
/// (`WouldBlock` on Unix, `TimedOut` on Windows).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn send<W: Write>(stream: &mut W, client: &mut Client, out: &mut Vec<u8>) -> io::Result<()> {
    client.poll_transmit(out);
    if !out.is_empty() {
        stream.write_all(out)?;
        stream.flush()?;
        out.clear();
    }
    Ok(())
}
