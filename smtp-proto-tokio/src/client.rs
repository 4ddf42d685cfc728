//! Drives a [`Client`] over a tokio stream.
//!
//! The client machine does all SMTP work. This module owns the socket, the
//! read buffer and the clock: it reads the server's replies, feeds the
//! machine, hands every event to your [`ClientHandler`], writes the
//! commands (reading meanwhile, so a large pipelined group cannot deadlock
//! the connection), applies the per-phase timeout the machine reports, and
//! runs the TLS handshake through tokio-rustls: before anything else for a
//! machine with implicit TLS (RFC 8314, the submissions port 465), or when
//! the machine asks for it after STARTTLS.
//!
//! # Timeouts
//!
//! The machine's timeout ([`Client::timeout`], RFC 5321 §4.5.3.2) is a
//! deadline for each reply: it starts when the driver waits for the
//! server, after the commands have been sent, and starts again only once
//! the machine has taken a whole reply (or the driver sends more), so a
//! server that trickles a reply a byte at a time cannot hold the
//! connection. When it runs out, the run ends with [`RunError::TimedOut`].
//!
//! # Example
//!
//! [`send`] one message to two recipients, here to this crate's own
//! server over an in-memory stream ([`tokio::io::duplex`]); a real
//! client connects a `TcpStream`. The server refuses one recipient, and
//! the report says which.
//!
//! ```
//! use smtp_proto_tokio::client::{send, RunOptions};
//! use smtp_proto_tokio::server::{serve, ServeOptions, ServerHandler};
//! use smtp_proto_tokio::smtp_proto::client::{Client, ClientConfig, Delivery, Envelope, TlsPolicy};
//! use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
//! use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
//! use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
//! use smtp_proto_tokio::smtp_proto::status::ReplyCode;
//!
//! /// Knows no mailbox called `nobody`.
//! struct Mx;
//!
//! impl ServerHandler for Mx {
//!     async fn on_event(
//!         &mut self,
//!         session: &mut ServerSession,
//!         event: ServerEvent<'_>,
//!     ) -> std::io::Result<()> {
//!         let decided = match event {
//!             ServerEvent::Rcpt { to, .. } if to.to_string().starts_with("<nobody@") => {
//!                 let no = OwnedReply::new(ReplyCode::MAILBOX_UNAVAILABLE, "No such user")
//!                     .map_err(std::io::Error::other)?;
//!                 session.reject(no)
//!             }
//!             ServerEvent::Hello { .. }
//!             | ServerEvent::Mail { .. }
//!             | ServerEvent::Rcpt { .. }
//!             | ServerEvent::MessageEnd { .. } => session.accept(),
//!             _ => Ok(()),
//!         };
//!         decided.map_err(std::io::Error::other)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (client_end, server_end) = tokio::io::duplex(4096);
//! let mut session = ServerSession::new(ServerConfig::new("mx.example.org"))?;
//! session.greet()?;
//! let server_options = ServeOptions::default();
//! let mut mx = Mx;
//! let server = serve(server_end, &mut session, &mut mx, &server_options);
//!
//! let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net")?))
//!     .recipient(ForwardPath::Mailbox(Mailbox::parse("bob@example.org")?))
//!     .recipient(ForwardPath::Mailbox(Mailbox::parse("nobody@example.org")?));
//! let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
//! let mut client = Client::new(config);
//! let message = b"Subject: hi\r\n\r\nHello\r\n";
//! let options = RunOptions::default();
//! let sent = send(client_end, &mut client, Delivery::new(envelope), message, &options);
//!
//! let (served, report) = tokio::join!(server, sent);
//! served?;
//! let report = report?;
//! let delivered: Vec<String> = report.delivered().map(|r| r.recipient.path.to_string()).collect();
//! assert_eq!(delivered, ["<bob@example.org>"]);
//! let bounced: Vec<String> =
//!     report.permanent_failures().map(|r| r.recipient.path.to_string()).collect();
//! assert_eq!(bounced, ["<nobody@example.org>"]);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::time::Duration;

use smtp_proto::client::{
    AuthCredentials, Client, ClientError, ClientEvent, Delivery, DeliveryReport, Envelope,
    NotAttempted, Outcome, SaslResponder, SendFailure, AUTH_LINE_MAX,
};
use smtp_proto::command::ReversePath;
use smtp_proto::reply::DecoderConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{client::TlsStream, TlsConnector};

use crate::io::{
    buffer_full, compact, flush_within, is_write_timeout, read_ready, read_some_by,
    shutdown_within, wait_until, write_within, Filled, MaybeTls, PeerState,
};
use crate::tls::{connect_starttls, handshake_within, StartTlsError};

/// The application's side of a client connection.
pub trait ClientHandler: Send {
    /// Handles one event; the event borrows the connection's read buffer.
    /// After [`ClientEvent::Ready`], [`ClientEvent::TransactionEnd`] and
    /// [`ClientEvent::Noop`] it calls `client.send_mail(..)`,
    /// `client.noop()` or `client.quit()` (or `client.authenticate(..)`).
    ///
    /// [`ClientEvent::SendBody`] comes here for information only: the
    /// driver then asks [`next_body_piece`](Self::next_body_piece) for the
    /// message and makes the `send_body` and `end_body` calls itself, so
    /// `on_event` must not make them (the body would go out twice, or the
    /// driver's next call would fail). The TLS handshake after STARTTLS is
    /// run by the driver too; [`ClientEvent::StartTls`] does not come here.
    fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// After [`ClientEvent::SendBody`]: puts the next piece of the message
    /// into `piece` (empty on entry) and returns `true`, or returns `false`
    /// at the end of the message. Each piece is written before the next is
    /// asked for, so a message never needs to sit whole in memory; with
    /// BDAT, each piece is one chunk. With BDAT to a server without
    /// PIPELINING, each chunk is answered before the next is asked for, so
    /// `SendBody` comes again (once per chunk) and the pieces of one message
    /// are asked for across those events.
    fn next_body_piece(
        &mut self,
        piece: &mut Vec<u8>,
    ) -> impl Future<Output = io::Result<bool>> + Send;
}

/// Options of [`run`].
#[derive(Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The TLS connector and the name to check the server's certificate
    /// against, for STARTTLS and for implicit TLS. With the
    /// [`ClientConfig`]'s `implicit_tls` on, [`run`] runs the handshake
    /// with them before it reads the greeting, and refuses to run without
    /// them ([`RunError::ImplicitTlsNotConfigured`]). Otherwise, with
    /// `None` the client cannot start TLS: under `TlsPolicy::Opportunistic`
    /// it does not send STARTTLS, even to a server that offers it, and
    /// the session goes on in plain text (the handler sees
    /// `ClientEvent::TlsUnavailable` without a reply, as when the server
    /// does not offer it; see `Client::set_can_start_tls`); under
    /// `TlsPolicy::Required` it sends STARTTLS and the run fails with
    /// [`RunError::StartTls`] after the server's `220`.
    ///
    /// [`ClientConfig`]: smtp_proto::client::ClientConfig
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The longest a TLS handshake may take (after STARTTLS, or at the
    /// start of an implicit-TLS connection).
    pub handshake_timeout: Duration,
    /// The most bytes held in the read buffer, not yet taken by the
    /// machine (bounded memory). [`run`] raises it to what the longest
    /// reply the machine accepts needs, from the reply limits in
    /// [`ClientConfig::replies`]: `max_reply_len + max_line_len + 1`
    /// (a whole reply is held until its last line, and the line after the
    /// reply limit must be seen to refuse it), each limit at least
    /// [`AUTH_LINE_MAX`], which the machine takes during an AUTH exchange
    /// (RFC 4954 §4). So every reply within those limits is read whole,
    /// whatever this is set to.
    ///
    /// [`ClientConfig::replies`]: smtp_proto::client::ClientConfig::replies
    /// [`AUTH_LINE_MAX`]: smtp_proto::client::AUTH_LINE_MAX
    pub read_buffer: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            tls: None,
            handshake_timeout: Duration::from_secs(30),
            read_buffer: 64 * 1024,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("handshake_timeout", &self.handshake_timeout)
            .field("read_buffer", &self.read_buffer)
            .finish()
    }
}

/// Why a client connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(io::Error),
    /// The machine refused a call or the server broke the protocol.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The machine waits for a call the handler did not make (for example
    /// neither `send_mail` nor `quit` after [`ClientEvent::Ready`]).
    #[error("the handler made no call where the session needed one")]
    Stalled,
    /// The server closed the connection before the session ended (over
    /// TLS also when it did so without TLS's close_notify).
    #[error("the server closed the connection")]
    PeerClosed,
    /// The server did not complete its next reply within the machine's
    /// timeout (counted from when the driver began to wait for it: bytes
    /// of a reply that has not ended do not extend it), or did not take
    /// all of a write within that time, counted from the write's start (it
    /// does not read, or reads too slowly).
    #[error("timed out waiting for the server")]
    TimedOut,
    /// TLS could not be started: after STARTTLS (data injected after the
    /// 220, or the handshake failed or timed out), or at the start of an
    /// implicit-TLS connection (the handshake or the certificate check
    /// failed, for example because the server spoke plaintext, or it did
    /// not complete within [`RunOptions::handshake_timeout`]:
    /// [`StartTlsError::Handshake`], of kind [`io::ErrorKind::TimedOut`]
    /// for the time-out).
    #[error(transparent)]
    StartTls(#[from] StartTlsError),
    /// The machine is for implicit TLS (`ClientConfig::implicit_tls`) but
    /// [`RunOptions::tls`] holds no connector, so the connection could not
    /// be encrypted. Returned before anything is read or sent: the machine
    /// would otherwise talk in plaintext while it takes the connection for
    /// encrypted (and send passwords).
    #[error("implicit TLS is on but no TLS connector is configured")]
    ImplicitTlsNotConfigured,
}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        if is_write_timeout(&e) {
            RunError::TimedOut
        } else {
            RunError::Io(e)
        }
    }
}

/// How many reads gather what the server sent before a write failed.
const AFTER_ERROR_READS: usize = 16;

/// A write failed (`error`). A write timeout ends the run at once (the
/// server takes nothing, so no reply is waited for). Otherwise the server
/// may have answered and closed (a `421`, a refusal): what it sent before
/// is read without waiting (at most [`AFTER_ERROR_READS`] reads into
/// `buf`, whose unconsumed bytes start at `start`) and handed to the
/// machine; see [`replies_after_write_error`] for the result.
async fn after_write_error<S, H>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    start: usize,
    cap: usize,
    client: &mut Client,
    handler: &mut H,
    error: io::Error,
) -> Result<(), RunError>
where
    S: AsyncRead + Unpin,
    H: ClientHandler,
{
    if is_write_timeout(&error) {
        return Err(RunError::TimedOut);
    }
    read_ready(stream, buf, cap, AFTER_ERROR_READS).await;
    replies_after_write_error(client, handler, buf.get(start..).unwrap_or_default(), error).await
}

/// After a write failed: gives the handler the replies the server sent
/// before it closed (`input`, the unconsumed bytes), and every event the
/// machine makes of them. Nothing more is sent: what the machine has to
/// send (commands the handler asks for meanwhile) is dropped. In the body,
/// the body is ended first, so the machine takes the reply as the one to
/// the message (RFC 5321 §4.2.5): a refusal (`552`, say) reaches the
/// handler as the message's verdict and ends the transaction. The server's
/// `220` to STARTTLS ends the look (there is no handshake to run, and the
/// bytes after it are not replies); the event is the driver's, so the
/// handler does not see it.
///
/// Returns `Ok` when the session has ended (a `421`, which the handler saw
/// as [`ClientEvent::ServiceClosing`], or a reply that closed the machine
/// before the write), [`RunError::PeerClosed`] when replies were handed
/// over but the session did not end, the machine's error when it refuses
/// one, and the write's error when no reply came.
async fn replies_after_write_error<H: ClientHandler>(
    client: &mut Client,
    handler: &mut H,
    input: &[u8],
    write_error: io::Error,
) -> Result<(), RunError> {
    let mut unsent = Vec::new();
    let mut start = 0;
    let mut reported = false;
    // Bounded: each event consumes a reply or comes from one (a reply
    // gives at most one event and one deferred event).
    for _ in 0..input.len().saturating_add(2) {
        // Refused when the machine already waits for a chunk's reply
        // (BDAT): the replies then answer the chunks.
        if client.wants_body() {
            let _ = client.end_body();
        }
        // What the machine queued counts as handed out, and is dropped:
        // the replies are read as the replies to it (a refusal sent
        // before the server closed as the reply to the end of the body),
        // not refused as answers to commands never sent.
        client.poll_transmit(&mut unsent);
        unsent.clear();
        let step = client.handle_input(input.get(start..).unwrap_or_default())?;
        start += step.consumed;
        match step.outcome {
            Outcome::Event(ClientEvent::StartTls) => break,
            Outcome::Event(event) => {
                reported = true;
                handler.on_event(client, event).await?;
            }
            _ => break,
        }
        client.poll_transmit(&mut unsent);
        unsent.clear();
    }
    client.poll_transmit(&mut unsent);
    if client.is_closed() {
        Ok(())
    } else if reported {
        Err(RunError::PeerClosed)
    } else {
        Err(write_error.into())
    }
}

/// How long to wait when the machine names no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// The most bytes the read buffer holds for a machine whose reply decoder
/// has the limits `replies`: `options.read_buffer`, raised so that the
/// decoder never waits on a full buffer. It holds a reply whole until its
/// last line: the lines it accepted end within `max_reply_len` octets, and
/// the next line is decided (complete, or too long) once `max_line_len`
/// octets of it are there. One octet more is kept as margin.
///
/// During an AUTH exchange the machine raises both limits to
/// [`AUTH_LINE_MAX`] (RFC 4954 §4), so the buffer holds such a reply too.
fn read_cap(options: &RunOptions, replies: &DecoderConfig) -> usize {
    let longest = replies
        .max_reply_len
        .max(AUTH_LINE_MAX)
        .saturating_add(replies.max_line_len.max(AUTH_LINE_MAX));
    options.read_buffer.max(longest.saturating_add(1))
}

/// Runs one client session to its end (the machine closed, after QUIT or a
/// refusal, or after the server's `421`, which the handler sees as
/// [`ClientEvent::ServiceClosing`]). The machine must be new: it waits for
/// the server's greeting.
///
/// A configuration the machine cannot use (see `ClientConfig::check`: a
/// hello domain that is not ASCII) returns
/// `RunError::Client(ClientError::Config(_))` before anything is sent, an
/// implicit-TLS handshake included.
///
/// When a write fails because the server closed the connection (any
/// write: EHLO, STARTTLS, AUTH, the pipelined MAIL / RCPT / DATA group, a
/// piece of the body or its end, BDAT, QUIT), the replies it sent before
/// closing are still read (what has arrived, without waiting) and handed
/// to the machine, and the handler gets the events the machine makes of
/// them; nothing more is sent (commands the handler asks for meanwhile are
/// dropped). So a server that answers `421 4.7.0 Too many connections,
/// closing` and closes before the client's next write is seen as
/// [`ClientEvent::ServiceClosing`] (RFC 5321 §3.8), not as a broken pipe.
/// In the body, the body is ended first, so the machine takes the server's
/// reply as the one to the message (RFC 5321 §4.2.5): a refusal such as
/// `552` reaches the handler as the message's verdict
/// ([`ClientEvent::Message`], then [`ClientEvent::TransactionEnd`]). The
/// run then ends with `Ok(())` if a reply ended the session (a `421`, as
/// after any `421`), with [`RunError::PeerClosed`] after other replies (a
/// `554` to MAIL, a `552` to the message), and with the write's error
/// ([`RunError::Io`]) if the handler was told of no reply. The server's
/// `220` to STARTTLS ends the look (the handler does not see it): what
/// follows it before a handshake is never taken as a reply. A write that timed out ends the run with [`RunError::TimedOut`]
/// at once.
///
/// # Implicit TLS
///
/// When the machine's [`ClientConfig`] has `implicit_tls` on (RFC 8314
/// §3, the submissions port 465), `stream` is the raw connection and the
/// TLS handshake comes first: `run` runs it with the connector and server
/// name of [`RunOptions::tls`], within [`RunOptions::handshake_timeout`],
/// then reads the greeting over TLS; the machine never sends STARTTLS. A
/// handshake that fails (a server that speaks plaintext, a certificate
/// that does not check out) or times out returns [`RunError::StartTls`]
/// with nothing sent but the handshake. Without a connector this returns
/// [`RunError::ImplicitTlsNotConfigured`] and sends nothing.
///
/// ```no_run
/// use smtp_proto_tokio::client::{run, ClientHandler, RunOptions};
/// use smtp_proto_tokio::rustls::pki_types::ServerName;
/// use smtp_proto_tokio::smtp_proto::client::{Client, ClientConfig};
/// use smtp_proto_tokio::smtp_proto::command::Domain;
/// use smtp_proto_tokio::{tls, tokio_rustls::TlsConnector};
///
/// async fn submit(handler: &mut impl ClientHandler) -> Result<(), Box<dyn std::error::Error>> {
///     let stream = tokio::net::TcpStream::connect(("mail.example.org", 465)).await?;
///     let mut options = RunOptions::default();
///     let connector = TlsConnector::from(tls::client_config_webpki_roots()?);
///     options.tls = Some((connector, ServerName::try_from("mail.example.org")?));
///     let config = ClientConfig::new(Domain::new("client.example.com")?).with_implicit_tls(true);
///     let mut client = Client::new(config);
///     run(stream, &mut client, handler, &options).await?;
///     Ok(())
/// }
/// ```
///
/// [`ClientConfig`]: smtp_proto::client::ClientConfig
pub async fn run<S, H>(
    stream: S,
    client: &mut Client,
    handler: &mut H,
    options: &RunOptions,
) -> Result<(), RunError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: ClientHandler,
{
    let mut link = Link::connect(stream, client, options).await?;
    let result = drive(&mut link, client, handler, options, Until::Closed).await;
    // After a write timed out, nothing more is sent (not even TLS's
    // close_notify): the connection is just dropped.
    if !matches!(result, Err(RunError::TimedOut)) {
        link.shutdown(client).await;
    }
    result
}

/// A client connection between two stretches of [`drive`]: the stream
/// (over TLS once upgraded), the read buffer with what the machine has
/// not consumed yet, and the write wait.
struct Link<S> {
    /// `None` once a stretch ended early on an error: the connection is
    /// dropped then, as [`run`] always did.
    stream: Option<MaybeTls<S, TlsStream<S>>>,
    buf: Vec<u8>,
    /// The machine has consumed `buf[..start]`; see `compact`.
    start: usize,
    out: Vec<u8>,
    piece: Vec<u8>,
    peer: PeerState,
    /// How long a write may wait for the server to take our bytes: the
    /// machine's timeout, or the last one it named while it names none.
    last_wait: Duration,
    cap: usize,
}

/// Where a stretch of [`drive`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The session's end (the machine closed); a machine that waits for a
    /// call is [`RunError::Stalled`].
    Closed,
    /// The session's end, or the machine idle with nothing to send or
    /// wait for (the next call is the caller's: MAIL, NOOP, QUIT).
    Idle,
}

impl<S> Link<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Checks the machine's configuration and, for implicit TLS, runs the
    /// handshake (see [`run`]). Without a connector, tells the machine it
    /// cannot start TLS (see [`RunOptions::tls`]).
    async fn connect(
        stream: S,
        client: &mut Client,
        options: &RunOptions,
    ) -> Result<Self, RunError> {
        // The machine refuses such a configuration at its first step;
        // checked here too so that not even an implicit-TLS handshake goes
        // out.
        client.config().check().map_err(ClientError::Config)?;
        if options.tls.is_none() {
            client.set_can_start_tls(false);
        }
        let stream: MaybeTls<S, TlsStream<S>> = if client.config().implicit_tls {
            let Some((connector, name)) = options.tls.as_ref() else {
                return Err(RunError::ImplicitTlsNotConfigured);
            };
            // Nothing has been read, so nothing can wait in plaintext.
            let tls = handshake_within(
                options.handshake_timeout,
                connect_starttls(connector, name.clone(), stream, &[]),
            )
            .await?;
            MaybeTls::Tls(Box::new(tls))
        } else {
            MaybeTls::Plain(stream)
        };
        Ok(Self {
            stream: Some(stream),
            buf: Vec::with_capacity(4096),
            start: 0,
            out: Vec::with_capacity(4096),
            piece: Vec::new(),
            peer: PeerState::Open,
            last_wait: DEFAULT_WAIT,
            cap: read_cap(options, &client.config().replies),
        })
    }

    /// Reads what the server sent while the session was idle (a `421`, or
    /// its close), without waiting. Returns `false` when the server has
    /// closed the connection and sent nothing the machine has not taken.
    async fn take_arrived(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        compact(&mut self.buf, &mut self.start);
        if read_ready(stream, &mut self.buf, self.cap, AFTER_ERROR_READS).await {
            self.peer = PeerState::Eof;
        }
        self.peer == PeerState::Open || !self.buf.is_empty()
    }

    /// Shuts the stream down (over TLS with close_notify), within the
    /// write wait, and drops it.
    async fn shutdown(&mut self, client: &Client) {
        if let Some(t) = client.timeout() {
            self.last_wait = t;
        }
        if let Some(mut stream) = self.stream.take() {
            shutdown_within(&mut stream, self.last_wait).await;
        }
    }
}

/// On an idle session: when the server began a reply that nothing asked
/// for (only a `421` may come so, RFC 5321 §3.8) and its end has not
/// arrived, reads on until the machine has taken it whole, before
/// anything is sent: otherwise it would be taken as the reply to the next
/// command, and every later reply as the one to the command before its
/// own (a refused message reported delivered). The machine then ends the
/// session (a `421`) or refuses the reply ([`ClientError::UnexpectedReply`]).
/// The reads end by the machine's timeout for the reply to MAIL; a server
/// that closes first is [`RunError::PeerClosed`].
async fn read_unasked<S>(
    link: &mut Link<S>,
    client: &mut Client,
    handler: &mut DeliveryHandler<'_>,
    options: &RunOptions,
) -> Result<(), RunError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let until = wait_until(tokio::time::Instant::now(), client.config().timeouts.mail);
    // Bounded: each round reads, and the reads end by the deadline (or
    // when the buffer is full).
    while !client.is_closed() && link.buf.len() > link.start {
        if link.peer == PeerState::Eof {
            return Err(RunError::PeerClosed);
        }
        let Some(stream) = link.stream.as_mut() else {
            return Err(RunError::PeerClosed);
        };
        compact(&mut link.buf, &mut link.start);
        match read_some_by(stream, &mut link.buf, link.cap, until).await {
            Some(Ok(Filled::Bytes(_))) => {}
            Some(Ok(Filled::Eof)) => return Err(RunError::PeerClosed),
            Some(Ok(Filled::Full)) => return Err(buffer_full(link.cap).into()),
            // TLS ended without close_notify.
            Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(RunError::PeerClosed)
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(RunError::TimedOut),
        }
        drive(link, client, handler, options, Until::Idle).await?;
    }
    Ok(())
}

/// Runs the session over `link` until `until`: reads the server's
/// replies, feeds the machine, hands its events to `handler`, writes what
/// it sends, and upgrades the stream after STARTTLS. [`run`] is one
/// stretch to the session's end; a [`Connection`] runs one per message.
async fn drive<S, H>(
    link: &mut Link<S>,
    client: &mut Client,
    handler: &mut H,
    options: &RunOptions,
    until: Until,
) -> Result<(), RunError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: ClientHandler,
{
    let Some(mut stream) = link.stream.take() else {
        return Err(RunError::PeerClosed);
    };
    let cap = link.cap;
    let mut start = link.start;
    let mut buf = std::mem::take(&mut link.buf);
    let mut out = std::mem::take(&mut link.out);
    let mut piece = std::mem::take(&mut link.piece);
    let mut peer = link.peer;
    let mut last_wait = link.last_wait;
    let mut write_wait = |client: &Client| {
        if let Some(t) = client.timeout() {
            last_wait = t;
        }
        last_wait
    };
    // What a failed write ends the run with: the replies the server sent
    // before it closed, handed to the machine (see `after_write_error`).
    macro_rules! after_failed_write {
        ($error:expr) => {
            after_write_error(&mut stream, &mut buf, start, cap, client, handler, $error).await
        };
    }
    // When the wait for the server's next reply runs out: set when the
    // driver starts to wait, after its commands went out, and cleared
    // only when a reply is taken (the machine consumes whole replies) or
    // something is sent, so bytes of a reply that never ends do not
    // extend it.
    let mut deadline: Option<tokio::time::Instant> = None;
    let result = 'session: loop {
        let step = match client.handle_input(&buf[start..]) {
            Ok(step) => step,
            Err(e) => break Err(e.into()),
        };
        let consumed = step.consumed;
        if consumed > 0 || !matches!(step.outcome, Outcome::NeedInput) {
            deadline = None;
        }
        match step.outcome {
            Outcome::Event(ClientEvent::StartTls) => {
                start += consumed;
                client.poll_transmit(&mut out);
                if !out.is_empty() {
                    // Not a write after which replies are read: the
                    // machine waits for the handshake, and bytes after the
                    // 220 are plaintext injected before it (refused below,
                    // never taken as replies).
                    write_within(&mut stream, &mut out, write_wait(client)).await?;
                }
                let Some((connector, name)) = options.tls.as_ref() else {
                    break Err(
                        StartTlsError::Handshake(io::Error::other("no TLS configured")).into(),
                    );
                };
                // The handshake refuses to start while plaintext waits:
                // it must see exactly the unconsumed bytes.
                compact(&mut buf, &mut start);
                let MaybeTls::Plain(plain) = std::mem::replace(&mut stream, MaybeTls::Upgrading)
                else {
                    break Err(
                        StartTlsError::Handshake(io::Error::other("TLS already active")).into(),
                    );
                };
                let tls = match handshake_within(
                    options.handshake_timeout,
                    connect_starttls(connector, name.clone(), plain, &buf),
                )
                .await
                {
                    Ok(tls) => tls,
                    Err(e) => break Err(e.into()),
                };
                stream = MaybeTls::Tls(Box::new(tls));
                client.tls_established()?;
                continue;
            }
            Outcome::Event(ClientEvent::SendBody) => {
                start += consumed;
                handler.on_event(client, ClientEvent::SendBody).await?;
                loop {
                    piece.clear();
                    let more = handler.next_body_piece(&mut piece).await?;
                    if more && piece.is_empty() {
                        continue;
                    }
                    // The end of the message (the final `.` with DATA,
                    // the `LAST` chunk with BDAT) is written as a piece is:
                    // when the server answered and closed before it, the
                    // write fails and that answer is still read.
                    if more {
                        client.send_body(&piece)?;
                    } else {
                        client.end_body()?;
                    }
                    client.poll_transmit(&mut out);
                    compact(&mut buf, &mut start);
                    let wait = write_wait(client);
                    match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait).await {
                        Ok(p) => peer = p,
                        // The server may have answered and closed (552,
                        // 421): its reply comes before the error.
                        Err(e) => {
                            break 'session after_failed_write!(e);
                        }
                    }
                    if !more {
                        break;
                    }
                    if !client.wants_body() {
                        // BDAT without PIPELINING: this chunk must be
                        // answered before the next one. The piece is sent;
                        // the machine emits `SendBody` again after the
                        // chunk's reply, and the next piece is asked for
                        // then.
                        break;
                    }
                    // Pipelined BDAT: the chunk replies read while writing
                    // go to the machine now, or they would fill the read
                    // buffer and the socket buffers while the body is
                    // written, and both sides would wait on each other.
                    // An accepted chunk gives no event; any other event (a
                    // refused chunk, 421) ends the body. After a refused
                    // chunk the machine asks for input while the replies
                    // to the chunks sent after it are due: the session
                    // loop reads them once the body is left.
                    let mut body_ends = false;
                    loop {
                        let step = client.handle_input(&buf[start..])?;
                        start += step.consumed;
                        match step.outcome {
                            Outcome::Event(ClientEvent::SendBody) => {
                                handler.on_event(client, ClientEvent::SendBody).await?;
                            }
                            Outcome::Event(event) => {
                                body_ends = true;
                                handler.on_event(client, event).await?;
                            }
                            Outcome::Transmit => {
                                client.poll_transmit(&mut out);
                                compact(&mut buf, &mut start);
                                let wait = write_wait(client);
                                match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait)
                                    .await
                                {
                                    Ok(p) => peer = p,
                                    Err(e) => {
                                        break 'session after_failed_write!(e);
                                    }
                                }
                            }
                            _ => break,
                        }
                    }
                    if body_ends || !client.wants_body() {
                        break;
                    }
                }
                continue;
            }
            Outcome::Event(event) => handler.on_event(client, event).await?,
            Outcome::Paused => {
                start += consumed;
                client.poll_transmit(&mut out);
                if !out.is_empty() {
                    compact(&mut buf, &mut start);
                    let wait = write_wait(client);
                    if let Err(e) =
                        flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait).await
                    {
                        break after_failed_write!(e);
                    }
                }
                if client.is_closed() {
                    break Ok(());
                }
                if until == Until::Idle && client.is_idle() {
                    break Ok(());
                }
                break Err(RunError::Stalled);
            }
            Outcome::NeedInput => {
                start += consumed;
                compact(&mut buf, &mut start);
                let held = buf.len();
                client.poll_transmit(&mut out);
                if !out.is_empty() {
                    // The wait for the replies starts after this write.
                    deadline = None;
                    let wait = write_wait(client);
                    match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait).await {
                        Ok(p) => peer = p,
                        // The server may have answered and closed (a 421
                        // to the greeting or to MAIL): its reply comes
                        // before the error.
                        Err(e) => {
                            break after_failed_write!(e);
                        }
                    }
                    if buf.len() > held {
                        continue;
                    }
                }
                if client.is_closed() {
                    break Ok(());
                }
                if peer == PeerState::Eof {
                    break Err(RunError::PeerClosed);
                }
                let wait = client.timeout().unwrap_or(DEFAULT_WAIT);
                let until =
                    *deadline.get_or_insert_with(|| wait_until(tokio::time::Instant::now(), wait));
                match read_some_by(&mut stream, &mut buf, cap, until).await {
                    Some(Ok(Filled::Bytes(_))) => {}
                    Some(Ok(Filled::Eof)) => break Err(RunError::PeerClosed),
                    // The machine waits for more of a reply that fills the
                    // buffer; `read_cap` makes this unreachable for the
                    // machine's own limits.
                    Some(Ok(Filled::Full)) => break Err(buffer_full(cap).into()),
                    // TLS ended without close_notify.
                    Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        break Err(RunError::PeerClosed)
                    }
                    Some(Err(e)) => break Err(e.into()),
                    None => break Err(RunError::TimedOut),
                }
                continue;
            }
            Outcome::Closed => {
                client.poll_transmit(&mut out);
                if !out.is_empty() {
                    if let Err(e) = write_within(&mut stream, &mut out, write_wait(client)).await {
                        start += consumed;
                        break after_failed_write!(e);
                    }
                }
                break Ok(());
            }
            Outcome::Transmit => {
                // Output piled up: send it (reading meanwhile), then go on
                // with the same unconsumed input.
                start += consumed;
                client.poll_transmit(&mut out);
                compact(&mut buf, &mut start);
                let wait = write_wait(client);
                match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait).await {
                    Ok(p) => peer = p,
                    Err(e) => {
                        break after_failed_write!(e);
                    }
                }
                continue;
            }
            _ => {}
        }
        start += consumed;
    };
    link.stream = Some(stream);
    link.buf = buf;
    link.start = start;
    link.out = out;
    link.piece = piece;
    link.peer = peer;
    link.last_wait = last_wait;
    result
}

/// The most octets of the message [`send`] hands the machine at a time
/// (one BDAT chunk with CHUNKING).
pub const PIECE_SIZE: usize = 64 * 1024;

/// Why [`send`] failed, with the report all the same (see
/// [`SendFailure`]).
pub type SendError = SendFailure<RunError>;

/// The handler [`send`] runs: every decision is the [`Delivery`]'s, and the
/// message goes out in pieces of [`PIECE_SIZE`].
struct DeliveryHandler<'m> {
    delivery: Delivery,
    message: &'m [u8],
}

impl<'m> DeliveryHandler<'m> {
    fn new(delivery: Delivery, message: &'m [u8]) -> Self {
        Self { delivery, message }
    }
}

impl ClientHandler for DeliveryHandler<'_> {
    async fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        self.delivery
            .on_event(client, &event)
            .map_err(io::Error::other)
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        Ok(self.delivery.fill_piece(self.message, PIECE_SIZE, piece))
    }
}

/// Sends one message over `stream` with [`run`], every decision made by
/// `delivery` (AUTH, one transaction per batch of recipients the server's
/// `LIMITS` allow, QUIT; see [`Delivery`]), and returns the report: the
/// outcome for each recipient, in the envelope's order. The challenges of
/// a SASL mechanism the application runs (CRAM-MD5, SCRAM...) are answered
/// by the delivery's responder ([`Delivery::with_auth_responder`]).
///
/// `message` is the whole message (header and body, CRLF line ends for
/// BDAT); it is handed to the machine in pieces of [`PIECE_SIZE`], once
/// per transaction. `client` must be new, as for [`run`]; it is left
/// closed, with the server's capabilities, for the caller to look at.
///
/// # Errors
///
/// [`SendError`] when the run failed, with the report all the same (see
/// [`Delivery::finish`]): the recipients that no transaction reached are
/// [`NotAttempted::ConnectionLost`], and those whose message was sent
/// whole without a reply [`RecipientOutcome::Unknown`].
///
/// ```no_run
/// use smtp_proto_tokio::client::{send, RunOptions};
/// use smtp_proto_tokio::smtp_proto::client::{Client, ClientConfig, Delivery, Envelope, TlsPolicy};
/// use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
///
/// async fn deliver(message: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
///     let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net")?))
///         .recipient(ForwardPath::Mailbox(Mailbox::parse("bob@example.org")?))
///         .with_size(message.len() as u64);
///     let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
///     let stream = tokio::net::TcpStream::connect("mx.example.org:25").await?;
///     let report = match send(
///         stream,
///         &mut Client::new(config),
///         Delivery::new(envelope),
///         message,
///         &RunOptions::default(),
///     )
///     .await
///     {
///         Ok(report) => report,
///         Err(e) => e.report,
///     };
///     for r in report.permanent_failures() {
///         println!("bounce {:?}: {:?}", r.recipient.path, r.outcome.reply());
///     }
///     Ok(())
/// }
/// ```
///
///
/// # Opportunistic TLS
///
/// Under `TlsPolicy::Opportunistic`, a server that does not offer
/// STARTTLS or refuses it, or a [`RunOptions::tls`] of `None`, leaves the
/// message to go in plain text over the same connection. A TLS handshake
/// that fails after the server's `220` to STARTTLS (a certificate that
/// does not check out, no protocol in common, the handshake timeout) is
/// another matter: the connection cannot be used after it, and `send`
/// does not open connections, so it does not retry. The run ends with
/// [`RunError::StartTls`] ([`StartTlsError::Handshake`]) before anything
/// of the message was sent: every recipient is
/// [`NotAttempted::ConnectionLost`], to send again. To do what MTAs do
/// with opportunistic TLS (Postfix's `may` security level, RFC 7435),
/// open a new connection and send once more, once, with a new machine
/// whose configuration has `TlsPolicy::Off`. Not under
/// `TlsPolicy::Required`, where the failure stands, nor for a message
/// that needs TLS (`Envelope::require_tls`, RFC 8689), which a session
/// without TLS refuses for good (`Refusal::RequireTls`): send that one
/// again later.
///
/// ```no_run
/// use smtp_proto_tokio::client::{send, RunError, RunOptions};
/// use smtp_proto_tokio::smtp_proto::client::{
///     Client, ClientConfig, Delivery, DeliveryReport, Envelope, TlsPolicy,
/// };
/// use smtp_proto_tokio::tls::StartTlsError;
/// use tokio::net::TcpStream;
///
/// async fn deliver(
///     config: ClientConfig,
///     envelope: Envelope<'static>,
///     message: &[u8],
///     options: &RunOptions,
/// ) -> std::io::Result<DeliveryReport> {
///     let stream = TcpStream::connect("mx.example.org:25").await?;
///     let mut client = Client::new(config.clone());
///     let delivery = Delivery::new(envelope.clone());
///     let failed = match send(stream, &mut client, delivery, message, options).await {
///         Ok(report) => return Ok(report),
///         Err(failed) => failed,
///     };
///     let handshake = matches!(failed.error, RunError::StartTls(StartTlsError::Handshake(_)));
///     if !(handshake && config.tls == TlsPolicy::Opportunistic && !envelope.require_tls) {
///         return Ok(failed.report);
///     }
///     // Once, in plain text, over a new connection.
///     let stream = TcpStream::connect("mx.example.org:25").await?;
///     let mut client = Client::new(config.with_tls(TlsPolicy::Off));
///     let delivery = Delivery::new(envelope);
///     Ok(match send(stream, &mut client, delivery, message, options).await {
///         Ok(report) => report,
///         Err(failed) => failed.report,
///     })
/// }
/// ```
///
/// [`NotAttempted::ConnectionLost`]: smtp_proto::client::NotAttempted::ConnectionLost
/// [`RecipientOutcome::Unknown`]: smtp_proto::client::RecipientOutcome::Unknown
pub async fn send<S>(
    stream: S,
    client: &mut Client,
    delivery: Delivery,
    message: &[u8],
    options: &RunOptions,
) -> Result<DeliveryReport, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut handler = DeliveryHandler::new(delivery, message);
    let end = run(stream, client, &mut handler, options).await;
    handler.delivery.conclude(end)
}

/// Why [`Connection::open`] or [`Connection::authenticate`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The connection failed (see [`RunError`]); it is closed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The session cannot carry mail, for this reason: the server refused
    /// it ([`NotAttempted::SessionRefused`]), TLS is required and
    /// unavailable ([`NotAttempted::TlsUnavailable`]), the server closed it
    /// with a `421` ([`NotAttempted::ServiceClosing`]), or AUTH failed
    /// ([`NotAttempted::AuthFailed`], [`NotAttempted::AuthUnavailable`];
    /// the session stays open then, for another try or [`Connection::quit`]).
    #[error("{0}")]
    Refused(NotAttempted),
}

/// Why a [`Connection`] ended whose stream went with a dropped future.
static CONNECTION_LOST: NotAttempted = NotAttempted::ConnectionLost;

/// One SMTP session kept open for several messages (RFC 5321 §3.3 allows
/// any number of transactions in one session).
///
/// [`Connection::open`] reads the greeting, sends EHLO and upgrades with
/// STARTTLS as the machine's configuration says (or runs the implicit-TLS
/// handshake first), keeping the upgraded stream; [`Connection::authenticate`]
/// authenticates once for the session. Each [`Connection::send`] then
/// sends one message with a [`Delivery`] (made [`Delivery::keep_open`]: it
/// ends without QUIT) and returns its report, as [`send`] does.
/// [`Connection::noop`] checks a session kept open a while.
/// [`Connection::quit`] ends the session with QUIT; dropping the
/// connection just closes the stream.
///
/// When the session ends on its own (the server's `421`, even one sent
/// while the session was idle, or a failed connection), the next sends
/// try nothing: every recipient is [`RecipientOutcome::NotAttempted`] for
/// the reason the session ended ([`Connection::end_reason`]). A server
/// that closed the connection while it was idle is found before anything
/// is sent: that send fails with [`RunError::PeerClosed`], its recipients
/// [`NotAttempted::ConnectionLost`].
///
/// A [`Connection::send`], [`Connection::authenticate`] or
/// [`Connection::noop`] whose future is dropped before it completes (a
/// caller's own time limit, a `select!` that took another branch) ends
/// the session too: the stream goes with the future, whatever the
/// exchange had reached, so the session cannot be trusted to be where the
/// machine thinks it is. From then on [`Connection::is_open`] is false,
/// [`Connection::end_reason`] is [`NotAttempted::ConnectionLost`], and the
/// next sends try nothing, as after a failed connection.
///
/// ```no_run
/// use smtp_proto_tokio::client::{Connection, RunOptions};
/// use smtp_proto_tokio::smtp_proto::client::{AuthCredentials, Client, ClientConfig, Envelope};
/// use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
/// use smtp_proto_tokio::{tls, tokio_rustls::TlsConnector};
/// use smtp_proto_tokio::rustls::pki_types::ServerName;
///
/// async fn newsletter(messages: &[(&str, Vec<u8>)]) -> Result<(), Box<dyn std::error::Error>> {
///     let config = ClientConfig::new(Domain::new("client.example.net")?);
///     let mut options = RunOptions::default();
///     let connector = TlsConnector::from(tls::client_config_webpki_roots()?);
///     options.tls = Some((connector, ServerName::try_from("mail.example.org")?));
///     let stream = tokio::net::TcpStream::connect("mail.example.org:587").await?;
///     let mut conn = Connection::open(stream, Client::new(config), options).await?;
///     conn.authenticate(AuthCredentials::password("alice", "secret")).await?;
///     for (to, message) in messages {
///         let sender = Mailbox::parse("alice@example.net")?.into_owned();
///         let envelope = Envelope::new(ReversePath::Mailbox(sender))
///             .recipient(ForwardPath::Mailbox(Mailbox::parse(to)?.into_owned()))
///             .with_size(message.len() as u64);
///         let report = match conn.send(envelope, message).await {
///             Ok(report) => report,
///             Err(e) => e.report,
///         };
///         for r in report.to_retry() {
///             println!("retry {:?}: {:?}", r.recipient.path, r.outcome);
///         }
///     }
///     conn.quit().await?;
///     Ok(())
/// }
/// ```
///
/// [`RecipientOutcome::NotAttempted`]: smtp_proto::client::RecipientOutcome::NotAttempted
pub struct Connection<S> {
    link: Link<S>,
    client: Client,
    options: RunOptions,
    /// Why the session is over, once it is.
    ended: Option<NotAttempted>,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client", &self.client)
            .field("options", &self.options)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// An envelope without recipients, for the deliveries that only open or
/// authenticate the session.
fn no_message() -> Delivery {
    Delivery::new(Envelope::new(ReversePath::Null))
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Opens the session over `stream`: the implicit-TLS handshake when
    /// the configuration has it, the greeting, EHLO, STARTTLS as the
    /// configuration's [`TlsPolicy`] says (the stream is upgraded and kept
    /// so), and EHLO again; it returns once the session is ready for mail.
    /// `client` must be new, as for [`run`].
    ///
    /// # Errors
    /// [`ConnectionError::Refused`] when the server refused the session,
    /// TLS is required and unavailable, or the server answered `421`;
    /// [`ConnectionError::Run`] when the connection failed (see [`run`]),
    /// a TLS handshake after STARTTLS included, under opportunistic TLS
    /// too ([`RunError::StartTls`]: the connection is unusable; see
    /// [`send`] for going on in plain text over a new one).
    ///
    /// [`TlsPolicy`]: smtp_proto::client::TlsPolicy
    pub async fn open(
        stream: S,
        mut client: Client,
        options: RunOptions,
    ) -> Result<Self, ConnectionError> {
        let mut link = Link::connect(stream, &mut client, &options).await?;
        let mut handler = DeliveryHandler::new(no_message().keep_open(), &[]);
        let end = drive(&mut link, &mut client, &mut handler, &options, Until::Idle).await;
        let mut conn = Self {
            link,
            client,
            options,
            ended: None,
        };
        conn.settle(&end, &handler).await;
        // A refusal decides, even when the server then closed without
        // answering QUIT.
        if let Some(reason) = handler.delivery.stopped_by() {
            return Err(ConnectionError::Refused(reason.clone()));
        }
        end?;
        match &conn.ended {
            Some(reason) => Err(ConnectionError::Refused(reason.clone())),
            None => Ok(conn),
        }
    }

    /// Authenticates the session with `credentials` (AUTH, RFC 4954),
    /// once for all the messages sent over it. A session already
    /// authenticated is left as it is. Deliveries given to
    /// [`Connection::send`] with their own credentials
    /// ([`Delivery::with_auth`]) authenticate the session the first time
    /// and not again.
    ///
    /// When it fails, the session stays unauthenticated and
    /// [`Connection::send`] sends nothing until an AUTH succeeds (this
    /// one again, with other credentials, or a delivery's own): each
    /// recipient is [`NotAttempted::AuthFailed`] with the server's
    /// refusal, or [`NotAttempted::AuthUnavailable`] when the AUTH could
    /// not start, a reason to retry rather than to bounce. Mail sent
    /// without the authentication asked for would be refused (`530`,
    /// RFC 4954 §6) as if its recipients were bad. A session never asked
    /// to authenticate sends mail without AUTH.
    ///
    /// # Errors
    /// [`ConnectionError::Refused`] with [`NotAttempted::AuthFailed`] (the
    /// server's refusal) or [`NotAttempted::AuthUnavailable`] (no
    /// mechanism in common, no TLS): the session stays open. A `421` or a
    /// failed connection ends it: [`ConnectionError::Refused`] with
    /// [`NotAttempted::ServiceClosing`] (also when the `421` came right
    /// after the server accepted the credentials) or
    /// [`ConnectionError::Run`].
    pub async fn authenticate(
        &mut self,
        credentials: AuthCredentials,
    ) -> Result<(), ConnectionError> {
        self.login(no_message().with_auth(credentials)).await
    }

    /// [`Connection::authenticate`] with a custom SASL mechanism whose
    /// challenges `responder` answers (see [`Delivery::with_auth_responder`]).
    ///
    /// # Errors
    /// As [`Connection::authenticate`].
    pub async fn authenticate_with_responder<R>(
        &mut self,
        credentials: AuthCredentials,
        responder: R,
    ) -> Result<(), ConnectionError>
    where
        R: SaslResponder + Clone + Send + Sync + 'static,
    {
        self.login(
            no_message()
                .with_auth(credentials)
                .with_auth_responder(responder),
        )
        .await
    }

    async fn login(&mut self, delivery: Delivery) -> Result<(), ConnectionError> {
        self.note_dropped_stretch();
        if let Some(reason) = &self.ended {
            return Err(ConnectionError::Refused(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(delivery.keep_open(), &[]);
        let end = self.exchange(&mut handler).await;
        self.settle(&end, &handler).await;
        end?;
        // Authenticated, unless the server then closed the session (a
        // `421` right after its `235`).
        if self.client.is_authenticated() && self.ended.is_none() {
            return Ok(());
        }
        let reason = handler
            .delivery
            .stopped_by()
            .or(self.ended.as_ref())
            .cloned()
            .unwrap_or(NotAttempted::SessionClosed);
        Err(ConnectionError::Refused(reason))
    }

    /// Sends one message over the session: `delivery` (or an
    /// [`Envelope`], made a [`Delivery`]) is run as [`send`] runs it, but
    /// ends without QUIT ([`Delivery::keep_open`]), so that the session is
    /// left ready for the next message. `message` is the whole message,
    /// handed to the machine in pieces of [`PIECE_SIZE`].
    ///
    /// Over a session that has ended ([`Connection::is_open`] is false),
    /// nothing is sent and every recipient is
    /// [`RecipientOutcome::NotAttempted`] for the reason it ended
    /// ([`Connection::end_reason`]). A `421` that the server sent while the
    /// session was idle is read before anything is sent (all of it, when
    /// only its start has arrived: the rest is waited for, within the
    /// machine's MAIL timeout): the recipients are
    /// [`NotAttempted::ServiceClosing`] with it. Any other reply the server
    /// sent unasked breaks the protocol: nothing is sent, and the send
    /// fails with [`RunError::Client`].
    ///
    /// The session's past holds, and nothing is sent either (the session
    /// stays open):
    ///
    /// * after a failed [`Connection::authenticate`] (or a delivery's own
    ///   failed AUTH), until an AUTH succeeds: a delivery without
    ///   credentials of its own has its recipients
    ///   [`NotAttempted::AuthFailed`] with the refusal
    ///   ([`NotAttempted::AuthUnavailable`] when the AUTH could not
    ///   start); one with credentials tries them. Without any
    ///   `authenticate` call, mail goes without AUTH;
    /// * when the MAIL this message needs, the same reverse path with the
    ///   same parameters, was refused with a 5yz by an earlier message
    ///   (RFC 5321 §4.2.1: the client "SHOULD NOT repeat the exact
    ///   request"): the recipients are [`NotAttempted::SenderRefused`]
    ///   with that refusal. A MAIL refused with a 4yz is tried again
    ///   ([`Client::mail_refusal`]).
    ///
    /// # Errors
    /// [`SendError`] when the connection failed, with the report all the
    /// same (see [`send`]); the session has ended then.
    ///
    /// [`RecipientOutcome::NotAttempted`]: smtp_proto::client::RecipientOutcome::NotAttempted
    pub async fn send(
        &mut self,
        delivery: impl Into<Delivery>,
        message: &[u8],
    ) -> Result<DeliveryReport, SendError> {
        let delivery = delivery.into().keep_open();
        self.note_dropped_stretch();
        if let Some(reason) = &self.ended {
            return Ok(delivery.abandon(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(delivery, message);
        let end = self.exchange(&mut handler).await;
        self.settle(&end, &handler).await;
        handler.delivery.conclude(end)
    }

    /// Ends the session: sends QUIT, reads the reply and closes the
    /// stream (over TLS with close_notify). Over a session that has
    /// already ended, or that the server closed while it was idle (its
    /// own idle timeout, RFC 5321 §4.5.3.2), just closes.
    ///
    /// # Errors
    /// [`RunError`] when the connection fails meanwhile (the messages sent
    /// before are not affected: their reports decide).
    pub async fn quit(mut self) -> Result<(), RunError> {
        // A server that closed the idle connection (its own idle timeout)
        // has ended the session: there is no one to say QUIT to.
        if self.ended.is_some() || self.client.is_closed() || !self.link.take_arrived().await {
            self.link.shutdown(&self.client).await;
            return Ok(());
        }
        self.client.quit()?;
        let mut handler = DeliveryHandler::new(no_message(), &[]);
        let end = drive(
            &mut self.link,
            &mut self.client,
            &mut handler,
            &self.options,
            Until::Closed,
        )
        .await;
        if !matches!(end, Err(RunError::TimedOut)) {
            self.link.shutdown(&self.client).await;
        }
        end
    }

    /// Checks the kept session with NOOP (RFC 5321 §4.1.1.9): first takes
    /// what the server sent while the session was idle (a `421`, its
    /// close), then sends NOOP and reads the reply. `Ok` when the server
    /// answered (whatever the code): the session is still there.
    ///
    /// # Errors
    /// [`ConnectionError::Refused`] with [`NotAttempted::ServiceClosing`]
    /// when the server closes the session with a `421`;
    /// [`ConnectionError::Run`] when the connection failed (the server
    /// closed it: [`RunError::PeerClosed`]). The session has ended then.
    pub async fn noop(&mut self) -> Result<(), ConnectionError> {
        self.note_dropped_stretch();
        if let Some(reason) = &self.ended {
            return Err(ConnectionError::Refused(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(no_message().keep_open(), &[]);
        let end = self.check(&mut handler).await;
        self.settle(&end, &handler).await;
        end?;
        match &self.ended {
            Some(reason) => Err(ConnectionError::Refused(reason.clone())),
            None => Ok(()),
        }
    }

    /// [`Connection::noop`]'s exchange.
    async fn check(&mut self, handler: &mut DeliveryHandler<'_>) -> Result<(), RunError> {
        if !self.link.take_arrived().await {
            return Err(RunError::PeerClosed);
        }
        let (link, client, options) = (&mut self.link, &mut self.client, &self.options);
        drive(link, client, handler, options, Until::Idle).await?;
        read_unasked(link, client, handler, options).await?;
        if client.is_closed() {
            return Ok(());
        }
        client.noop()?;
        drive(link, client, handler, options, Until::Idle).await
    }

    /// True while the session can carry mail: it has not ended (no `421`,
    /// no failed connection, not closed). The server's `LIMITS MAILMAX`
    /// (RFC 9422) is not counted here: once the session has had that many
    /// transactions it stays open, and every later message is
    /// [`NotAttempted::TransactionLimit`] without anything sent (see
    /// [`Client::limits`]).
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.ended.is_none() && !self.client.is_closed() && self.link.stream.is_some()
    }

    /// Why the session ended, once it has: the reason every recipient of
    /// a later [`Connection::send`] gets.
    #[must_use]
    pub fn end_reason(&self) -> Option<&NotAttempted> {
        self.ended.as_ref().or_else(|| {
            // The future of a stretch was dropped with the stream.
            self.link.stream.is_none().then_some(&CONNECTION_LOST)
        })
    }

    /// A stretch of the session whose future was dropped before it
    /// completed took the stream with it (see the [type](Connection)
    /// docs): the session has ended, with the connection lost.
    fn note_dropped_stretch(&mut self) {
        if self.ended.is_none() && self.link.stream.is_none() {
            self.ended = Some(NotAttempted::ConnectionLost);
        }
    }

    /// The client machine: the server's capabilities, whether the session
    /// is on TLS or authenticated.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `handler`'s delivery on the idle session until it is finished:
    /// first what the server sent while the session was idle (a `421`),
    /// then the delivery from its first call.
    async fn exchange(&mut self, handler: &mut DeliveryHandler<'_>) -> Result<(), RunError> {
        if !self.link.take_arrived().await {
            return Err(RunError::PeerClosed);
        }
        let (link, client, options) = (&mut self.link, &mut self.client, &self.options);
        drive(link, client, handler, options, Until::Idle).await?;
        read_unasked(link, client, handler, options).await?;
        if !handler.delivery.is_finished() {
            handler.delivery.start(client)?;
            drive(link, client, handler, options, Until::Idle).await?;
        }
        if handler.delivery.is_finished() || client.is_closed() {
            Ok(())
        } else {
            Err(RunError::Stalled)
        }
    }

    /// After a stretch of the session: when it has ended (an error, or the
    /// machine closed), records why and closes the stream.
    async fn settle(&mut self, end: &Result<(), RunError>, handler: &DeliveryHandler<'_>) {
        let reason = match end {
            Err(_) => NotAttempted::ConnectionLost,
            Ok(()) => match handler.delivery.session_end(&self.client) {
                Some(reason) => reason,
                None => return,
            },
        };
        self.ended = Some(reason);
        if !matches!(end, Err(RunError::TimedOut)) {
            self.link.shutdown(&self.client).await;
        }
        self.link.stream = None;
    }
}
