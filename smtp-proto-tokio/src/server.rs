//! Drives a [`ServerSession`] over a tokio stream.
//!
//! The session does all SMTP work. This module owns the socket, the read
//! buffer and the clock: it reads, feeds the session, hands every event to
//! your [`ServerHandler`], writes the replies (reading meanwhile, so a
//! client that pipelines a large group cannot deadlock the connection),
//! applies the timeout the session reports, and runs the TLS handshake
//! through tokio-rustls: before anything else for a session with implicit
//! TLS (RFC 8314, the submissions port 465), or when the session asks for
//! it after STARTTLS.
//!
//! # Timeouts
//!
//! The session's timeout (`Timeouts::server`, RFC 5321 §4.5.3.2.7) is a
//! deadline for each command: it starts when the driver waits for the
//! client, after the replies have been sent, and is not extended by the
//! bytes of a command line that has not ended (nor by those of an
//! over-long line being thrown away), so a client that trickles its
//! commands a byte at a time cannot hold the connection. It starts again
//! once the session has taken a command line. Inside a message body (DATA
//! or a BDAT chunk) it starts again whenever the session takes body bytes,
//! so it limits how long the client may stay silent, not how long the
//! message takes; [`ServeOptions::session_timeout`] can bound the whole
//! connection. When it runs out, the driver sends `421 4.4.2` and returns
//! [`ServeEnd::TimedOut`].
//!
//! # Closing
//!
//! Once the session has ended and its last reply is out (over TLS
//! followed by `close_notify`), the driver shuts its write side down and,
//! for a short while, reads and drops what the client still sends (a
//! lingering close, [`ServeOptions::linger_time`] and
//! [`ServeOptions::linger_bytes`]) before it closes, so that bytes the
//! client sent after the end do not turn the close into a reset that
//! could cost the client the last reply.
//!
//! # Example
//!
//! A session served over an in-memory stream ([`tokio::io::duplex`]); a
//! real server passes a `TcpStream` instead.
//!
//! ```
//! use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions, ServerHandler};
//! use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! /// Takes every message and keeps its bytes.
//! #[derive(Default)]
//! struct Inbox {
//!     message: Vec<u8>,
//! }
//!
//! impl ServerHandler for Inbox {
//!     async fn on_event(
//!         &mut self,
//!         session: &mut ServerSession,
//!         event: ServerEvent<'_>,
//!     ) -> std::io::Result<()> {
//!         match event {
//!             ServerEvent::MessageChunk(bytes) => self.message.extend_from_slice(bytes),
//!             ServerEvent::Hello { .. }
//!             | ServerEvent::Mail { .. }
//!             | ServerEvent::Rcpt { .. }
//!             | ServerEvent::MessageEnd { .. } => session.accept().map_err(std::io::Error::other)?,
//!             _ => {}
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (server_end, mut client_end) = tokio::io::duplex(4096);
//! let mut session = ServerSession::new(ServerConfig::new("mx.example.com"))?;
//! session.greet()?;
//! let mut inbox = Inbox::default();
//! let options = ServeOptions::default();
//!
//! let client = async move {
//!     client_end
//!         .write_all(
//!             b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n\
//!               RCPT TO:<b@example.com>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n",
//!         )
//!         .await?;
//!     let mut replies = String::new();
//!     client_end.read_to_string(&mut replies).await?; // until the server closes
//!     Ok::<_, std::io::Error>(replies)
//! };
//! let (end, replies) = tokio::join!(serve(server_end, &mut session, &mut inbox, &options), client);
//! assert_eq!(end?, ServeEnd::Closed);
//! let replies = replies?;
//! assert!(replies.starts_with("220 mx.example.com ESMTP\r\n"));
//! assert!(replies.ends_with("250 2.0.0 OK: message accepted\r\n221 2.0.0 Bye\r\n"));
//! assert_eq!(inbox.message, b"Hi\r\n");
//! # Ok(())
//! # }
//! ```

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use smtp_proto::server::{
    Error as SessionError, RemoteError, ServerConfig, ServerEvent, ServerSession, UsageError,
};
use smtp_proto::session::{Outcome, Phase};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use crate::io::{
    buffer_full, compact, drain_within, flush_within, is_write_timeout, read_some_by,
    shutdown_within, wait_until, write_within, Filled, MaybeTls, PeerState,
};
use crate::tls::{accept_starttls, handshake_within, StartTlsError};

/// The application's side of a server connection.
///
/// `on_event` sees every event. For the events that wait for a decision
/// (see [`ServerEvent`]), it must call `session.accept()`,
/// `session.reject(...)` or `session.reply(...)` before it returns.
///
/// [`ServerEvent::StartTls`] comes once the TLS handshake after STARTTLS
/// has succeeded, before the next command is read (the driver runs the
/// handshake itself): the session has forgotten everything from before
/// TLS, and the application should drop what it learned from the client
/// in plaintext too (RFC 3207 §4.2). With implicit TLS there is no
/// STARTTLS and no such event.
///
/// The handler may also steer the session through `session` between
/// events: for example
/// [`session.set_starttls_available(false)`](ServerSession::set_starttls_available)
/// on [`ServerEvent::Hello`], before accepting it, declines STARTTLS for
/// now (EHLO does not offer it, a STARTTLS gets `454 4.7.0`), when TLS
/// cannot be offered for a while (RFC 3207 §4).
///
/// When `on_event` returns an error, the connection ends: the driver sends
/// the replies the session had queued and then `421 4.3.0` (best effort,
/// within the session's timeout), closes the connection and returns the
/// error as [`ServeError::Io`]. The same `421` is sent when the handler
/// leaves a decision open ([`UsageError::DecisionPending`]).
pub trait ServerHandler: Send {
    /// Handles one event; the event borrows the connection's read buffer.
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> impl Future<Output = io::Result<()>> + Send;
}

/// Options of [`serve`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The TLS acceptor, for STARTTLS and for implicit TLS. With the
    /// [`ServerConfig`]'s `implicit_tls` on, [`serve`] runs the handshake
    /// with it before it sends anything (the greeting goes out encrypted).
    /// `None` is for plaintext sessions that do not offer STARTTLS:
    /// [`serve`] refuses to run a session with `implicit_tls`
    /// ([`ServeError::ImplicitTlsNotConfigured`]) or `starttls`
    /// ([`ServeError::StartTlsNotConfigured`]) on without an acceptor,
    /// unless the session declines STARTTLS
    /// ([`ServerSession::set_starttls_available`], for example because the
    /// certificate could not be loaded). Without an acceptor [`serve`]
    /// keeps STARTTLS declined after every handler call, so a STARTTLS
    /// gets `454 4.7.0`, never a `220` with no handshake to follow.
    ///
    /// [`ServerConfig`]: smtp_proto::server::ServerConfig
    pub tls: Option<TlsAcceptor>,
    /// The longest a TLS handshake may take (after STARTTLS, or at the
    /// start of an implicit-TLS connection).
    pub handshake_timeout: Duration,
    /// The most bytes held in the read buffer, not yet taken by the
    /// session (bounded memory). [`serve`] raises it to one more than the
    /// longest line the session accepts, the larger of the
    /// [`ServerConfig`]'s `max_line_length` and `max_auth_line_length`
    /// (AUTH commands and SASL responses), so every line within those
    /// limits is read whole and answered, whatever this is set to. A
    /// larger value lets the driver read further ahead of a pipelining
    /// client or through a message body.
    ///
    /// [`ServerConfig`]: smtp_proto::server::ServerConfig
    pub read_buffer: usize,
    /// The longest the whole connection may last, from the call of
    /// [`serve`]; `None` (the default) sets no limit. It is checked
    /// whenever the driver waits for the client: once it has passed, the
    /// session ends as on the session's own timeout (`421 4.4.2`,
    /// [`ServeEnd::TimedOut`]). The session's timeout alone lets a client
    /// that keeps sending body bytes, however slowly, go on; this bounds
    /// it. The TLS handshake keeps its own limit
    /// ([`ServeOptions::handshake_timeout`]), and a write under way may
    /// take up to the session's timeout past it.
    pub session_timeout: Option<Duration>,
    /// The lingering close: how long, at most, the driver goes on reading
    /// once it has ended the connection, to drop what the client still
    /// sends. Default: two seconds; [`Duration::ZERO`] turns it off.
    ///
    /// When the session ends (the `221` to QUIT, a closing `421`, `554`
    /// or `501`, the `421` to a handler error), the client may still be
    /// sending: commands pipelined behind QUIT, the rest of a message, or
    /// more commands. Closing the socket with those bytes unread makes
    /// the kernel answer with a TCP reset instead of a clean end, and on
    /// many systems the reset makes the client throw away the last reply
    /// before it has read it, so it never learns why the session ended.
    /// So after the last reply (and, over TLS, `close_notify`) the driver
    /// shuts its write side down, which tells the client the end has
    /// come, then reads and drops the client's bytes, unparsed, until the
    /// client closes its side, this time has passed, or
    /// [`ServeOptions::linger_bytes`] have been dropped, and only then
    /// closes. This runs after the handler has seen its last event, may
    /// take this long past [`ServeOptions::session_timeout`] (and past
    /// the shutdown signal of [`serve_until`]), and never runs after a
    /// write that timed out (nor when the shutdown of the write side
    /// failed or timed out).
    pub linger_time: Duration,
    /// The most bytes the lingering close drops before it gives up and
    /// closes (see [`ServeOptions::linger_time`]). Default: 64 KiB; `0`
    /// turns the lingering close off.
    pub linger_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            handshake_timeout: Duration::from_secs(30),
            read_buffer: 64 * 1024,
            session_timeout: None,
            linger_time: DEFAULT_LINGER_TIME,
            linger_bytes: DEFAULT_LINGER_BYTES,
        }
    }
}

/// The default of [`ServeOptions::linger_time`].
const DEFAULT_LINGER_TIME: Duration = Duration::from_secs(2);

/// The default of [`ServeOptions::linger_bytes`].
const DEFAULT_LINGER_BYTES: usize = 64 * 1024;

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("read_buffer", &self.read_buffer)
            .field("session_timeout", &self.session_timeout)
            .field("linger_time", &self.linger_time)
            .field("linger_bytes", &self.linger_bytes)
            .finish()
    }
}

/// How a connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeEnd {
    /// The session closed (QUIT, or a refusal it sent).
    Closed,
    /// The client closed the connection first (any message in progress is
    /// void: no `MessageEnd` was given for it). Over TLS this is so whether
    /// or not the client sent its `close_notify` first: a TLS connection
    /// cut short is reported here too, not as [`ServeError::Io`].
    PeerClosed,
    /// The client did not send its next command within the session's
    /// timeout, or was silent that long inside a message body, or did not
    /// end the body under way within that long of the stop of
    /// [`serve_until`], or the connection reached
    /// [`ServeOptions::session_timeout`]; `421 4.4.2` was sent (see the
    /// [module](self) docs).
    TimedOut,
    /// The shutdown signal of [`serve_until`] came: `421 4.3.2` was sent
    /// at a point where no message was under way.
    ShutDown,
}

/// Why a connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(io::Error),
    /// The client did not take all of a write within the session's
    /// timeout, counted from the start of the write (it does not read, or
    /// reads too slowly): the connection was closed without another
    /// reply.
    #[error("timed out writing to the client")]
    WriteTimedOut,
    /// The client broke the protocol beyond recovery (the session sent its
    /// last reply before this was returned).
    #[error("client error: {0}")]
    Remote(#[from] RemoteError),
    /// The handler left a decision open, or called the session wrongly
    /// (`421 4.3.0` was sent, as for a handler error).
    #[error("application error: {0}")]
    Usage(#[from] UsageError),
    /// TLS could not be started: after STARTTLS (plaintext injected before
    /// the handshake, or the handshake failed or timed out), or at the
    /// start of an implicit-TLS connection (the handshake failed, for
    /// example because the client spoke plaintext, or did not complete
    /// within [`ServeOptions::handshake_timeout`]:
    /// [`StartTlsError::Handshake`], of kind
    /// [`io::ErrorKind::TimedOut`] for the time-out).
    #[error(transparent)]
    StartTls(#[from] StartTlsError),
    /// The session offers STARTTLS (`ServerConfig::starttls`, not
    /// declined with [`ServerSession::set_starttls_available`]) but
    /// [`ServeOptions::tls`] holds no acceptor, so the upgrade could not be
    /// made. Returned before anything is sent; the connection is closed.
    #[error("STARTTLS is offered but no TLS acceptor is configured")]
    StartTlsNotConfigured,
    /// The session is for implicit TLS (`ServerConfig::implicit_tls`) but
    /// [`ServeOptions::tls`] holds no acceptor, so no handshake could be
    /// run. Returned before anything is read or sent (the session's
    /// greeting is never sent in plaintext); the connection is closed.
    #[error("implicit TLS is on but no TLS acceptor is configured")]
    ImplicitTlsNotConfigured,
}

impl From<io::Error> for ServeError {
    fn from(e: io::Error) -> Self {
        if is_write_timeout(&e) {
            ServeError::WriteTimedOut
        } else {
            ServeError::Io(e)
        }
    }
}

impl From<SessionError> for ServeError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Usage(u) => ServeError::Usage(u),
            SessionError::Remote(r) => ServeError::Remote(r),
            other => ServeError::Io(io::Error::other(other.to_string())),
        }
    }
}

/// How long to wait for the client when the session names no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// How long a write may wait for the client to take our bytes: the
/// session's timeout, which is the configured server timeout whenever the
/// session names one (the same limit also applies after the session has
/// closed, to its last reply).
fn write_wait(session: &ServerSession) -> Duration {
    session
        .timeout()
        .unwrap_or(session.config().timeouts.server)
}

/// The wait for the client ran out (the session's timeout, or
/// [`ServeOptions::session_timeout`]): sends what the session has queued
/// and its `421 4.4.2`. `buf` must be compacted (the flush reads into it
/// while it writes).
async fn end_timed_out<S>(
    stream: &mut S,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    cap: usize,
    peer: PeerState,
) -> Result<ServeEnd, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    session.timed_out();
    send_last_words(stream, session, out, buf, cap, peer, ServeEnd::TimedOut).await
}

/// Ends the connection on a shutdown signal: the session's queued replies
/// and its `421 4.3.2`. `buf` as for [`end_timed_out`]; `dropped` as for
/// [`send_local_error`].
async fn end_shut_down<S>(
    stream: &mut S,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    cap: usize,
    peer: PeerState,
    dropped: &mut bool,
) -> Result<ServeEnd, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = session.shut_down() {
        // A decision the handler left open: answered as for a handler
        // error.
        *dropped = send_local_error(stream, session, out).await;
        return Err(e.into());
    }
    send_last_words(stream, session, out, buf, cap, peer, ServeEnd::ShutDown).await
}

/// Sends what a session that has just closed queued, within the write
/// timeout, and ends as `end` unless that write timed out (a client gone
/// meanwhile changes nothing: it was told, or could not be).
async fn send_last_words<S>(
    stream: &mut S,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    cap: usize,
    peer: PeerState,
    end: ServeEnd,
) -> Result<ServeEnd, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    session.poll_transmit(out);
    let wait = write_wait(session);
    match flush_within(stream, out, buf, cap, peer, wait).await {
        Err(e) if is_write_timeout(&e) => Err(e.into()),
        _ => Ok(end),
    }
}

/// Waits for `read`, or for `shutdown` while `stopping` is not yet set.
/// `None` when `shutdown` completed first (`stopping` is then set and the
/// read dropped: [`read_some_by`] takes no bytes until it completes).
async fn read_or_stop<R, F>(
    read: R,
    mut shutdown: Pin<&mut F>,
    stopping: &mut bool,
) -> Option<R::Output>
where
    R: Future,
    F: Future<Output = ()>,
{
    let mut read = std::pin::pin!(read);
    poll_fn(|cx| {
        if !*stopping && shutdown.as_mut().poll(cx).is_ready() {
            *stopping = true;
            return Poll::Ready(None);
        }
        read.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Looks whether `shutdown` has completed, without waiting, and sets
/// `stopping` if so; `true` when it has just been set. Once `stopping`
/// is set, `shutdown` is not polled again. For the points where the
/// driver goes on without waiting for the client (bytes came while it
/// wrote): a client that always has more commands ready would otherwise
/// keep the stop from ever being heeded.
async fn note_stop<F: Future<Output = ()>>(mut shutdown: Pin<&mut F>, stopping: &mut bool) -> bool {
    if *stopping {
        return false;
    }
    if poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await {
        *stopping = true;
        return true;
    }
    false
}

/// Before closing on the application's error: sends what the session
/// has queued, then `421 4.3.0` (RFC 5321 §3.8, RFC 3463 X.3.0 "other or
/// undefined mail system status"), without reading and within the
/// session's timeout. Best effort: a failure to send changes nothing,
/// but `true` tells that the write timed out, so nothing more may be
/// sent (see [`serve_until`]).
async fn send_local_error<S>(stream: &mut S, session: &mut ServerSession, out: &mut Vec<u8>) -> bool
where
    S: AsyncWrite + Unpin,
{
    session.local_error();
    session.poll_transmit(out);
    write_within(stream, out, write_wait(session))
        .await
        .is_err_and(|e| is_write_timeout(&e))
}

/// A read error that means the client went away: over TLS, the end of the
/// TCP stream without the client's close_notify, which rustls reports as
/// [`io::ErrorKind::UnexpectedEof`] (a plaintext stream's end is a read of
/// no bytes). The connection then ends as [`ServeEnd::PeerClosed`], as in
/// the blocking adapter.
fn is_peer_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

/// The most bytes the read buffer holds for a session with `config`:
/// `options.read_buffer`, raised to one more than the longest line the
/// session accepts. The session's line framer decides every line once it
/// holds that many bytes of it (a complete line, or one known to be too
/// long, whose bytes it then drops), so it never waits on a full buffer.
/// SMTP bodies (DATA, BDAT) are taken in pieces and need no more.
fn read_cap(options: &ServeOptions, config: &ServerConfig) -> usize {
    let longest = config.max_line_length.max(config.max_auth_line_length);
    options.read_buffer.max(longest.saturating_add(1))
}

/// Runs one server connection to its end.
///
/// The session must already be greeted (`session.greet()`) or refused
/// (`session.refuse(..)`); what it queued is sent first. A session that
/// offers STARTTLS needs [`ServeOptions::tls`]; without it this returns
/// [`ServeError::StartTlsNotConfigured`] and sends nothing. A session
/// that declines STARTTLS
/// ([`ServerSession::set_starttls_available`]) runs without one, and
/// keeps declining it (see [`ServeOptions::tls`]).
///
/// # Implicit TLS
///
/// When the session's [`ServerConfig`] has `implicit_tls` on (RFC 8314
/// §3.3, the submissions port 465), `stream` is the raw connection and
/// the TLS handshake comes first: `serve` runs it with the acceptor of
/// [`ServeOptions::tls`], within [`ServeOptions::handshake_timeout`],
/// before it reads or sends anything else, then runs the session over the
/// TLS stream as it would after STARTTLS; the queued greeting is the first
/// thing sent, encrypted. A handshake that fails or times out ends the
/// connection with [`ServeError::StartTls`] and nothing sent in plaintext
/// (only what rustls itself sends, such as a TLS alert). Without an
/// acceptor this returns [`ServeError::ImplicitTlsNotConfigured`] and
/// sends nothing.
///
/// ```no_run
/// use smtp_proto_tokio::server::{serve, ServeOptions, ServerHandler};
/// use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
/// use smtp_proto_tokio::{tls, tokio_rustls::TlsAcceptor};
///
/// /// Takes every message (and drops it).
/// struct TakeAll;
///
/// impl ServerHandler for TakeAll {
///     async fn on_event(
///         &mut self,
///         session: &mut ServerSession,
///         event: ServerEvent<'_>,
///     ) -> std::io::Result<()> {
///         match event {
///             ServerEvent::Hello { .. }
///             | ServerEvent::Mail { .. }
///             | ServerEvent::Rcpt { .. }
///             | ServerEvent::MessageEnd { .. } => session.accept().map_err(std::io::Error::other),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// # async fn submissions() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:465").await?;
/// let mut options = ServeOptions::default();
/// let tls_config = tls::server_config("cert.pem".as_ref(), "key.pem".as_ref())?;
/// options.tls = Some(TlsAcceptor::from(tls_config));
///
/// let (stream, _) = listener.accept().await?;
/// let mut config = ServerConfig::new("mx.example.net");
/// config.implicit_tls = true;
/// let mut session = ServerSession::new(config)?;
/// session.greet()?; // queued now, sent after the handshake
/// serve(stream, &mut session, &mut TakeAll, &options).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve<S, H>(
    stream: S,
    session: &mut ServerSession,
    handler: &mut H,
    options: &ServeOptions,
) -> Result<ServeEnd, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: ServerHandler,
{
    serve_until(stream, session, handler, options, std::future::pending()).await
}

/// [`serve`], with a graceful stop: once `shutdown` completes, the
/// connection ends at the next point where nothing is lost.
///
/// The signal is heeded when the driver would wait for the client, or
/// goes on without waiting because the client sent more meanwhile (so a
/// client that always has more commands ready cannot hold the stop off):
/// then it sends the replies it owes, then `421 4.3.2` ("Service shutting
/// down", RFC 5321 §3.8; [`ServerSession::shut_down`]), closes the
/// connection and returns [`ServeEnd::ShutDown`]. A message body under
/// way is read to its end and decided by the handler first, so an
/// accepted message is acknowledged and no client is cut off mid-message.
/// That takes one of the session's timeouts at most: from the stop on,
/// body bytes (and BDAT commands) no longer restart it, so a client that
/// trickles the rest of its message cannot hold the stop off; when it
/// runs out, the session ends as on its timeout (`421 4.4.2`,
/// [`ServeEnd::TimedOut`]) and the message is void. Commands the
/// client pipelined behind the point of the stop get no other reply: the
/// 421 tells it to try again later.
///
/// `shutdown` is any future: a `tokio::sync::watch` receiver's
/// `changed()`, a `CancellationToken::cancelled()` from `tokio-util`, or
/// `tokio::signal::ctrl_c()`, mapped to `()`. It is not polled again once
/// it has completed.
///
/// ```no_run
/// use smtp_proto_tokio::server::{serve_until, ServeOptions, ServerHandler};
/// use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
///
/// struct TakeAll;
///
/// impl ServerHandler for TakeAll {
///     async fn on_event(
///         &mut self,
///         session: &mut ServerSession,
///         event: ServerEvent<'_>,
///     ) -> std::io::Result<()> {
///         match event {
///             ServerEvent::Hello { .. }
///             | ServerEvent::Mail { .. }
///             | ServerEvent::Rcpt { .. }
///             | ServerEvent::MessageEnd { .. } => session.accept().map_err(std::io::Error::other),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
/// // `true` is sent on the channel to stop every connection.
/// let (stop, stopped) = tokio::sync::watch::channel(false);
/// let (stream, _) = listener.accept().await?;
/// let mut stopped = stopped.clone();
/// let connection = tokio::spawn(async move {
///     let mut session = ServerSession::new(ServerConfig::new("mx.example.net"))?;
///     session.greet()?;
///     let shutdown = async move {
///         // An error means the sender is gone: stop too.
///         let _ = stopped.wait_for(|stop| *stop).await;
///     };
///     let options = ServeOptions::default();
///     let end = serve_until(stream, &mut session, &mut TakeAll, &options, shutdown).await?;
///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(end)
/// });
/// stop.send(true)?;
/// let _ = connection.await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve_until<S, H, F>(
    stream: S,
    session: &mut ServerSession,
    handler: &mut H,
    options: &ServeOptions,
    shutdown: F,
) -> Result<ServeEnd, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: ServerHandler,
    F: Future<Output = ()> + Send,
{
    let mut shutdown = std::pin::pin!(shutdown);
    // Set once `shutdown` has completed; it is not polled after that.
    let mut stopping = false;
    let started = Instant::now();
    // Checked first: an implicit-TLS session reports TLS as up from the
    // start, so the STARTTLS check below would let it through.
    let implicit_tls = session.config().implicit_tls;
    if implicit_tls && options.tls.is_none() {
        return Err(ServeError::ImplicitTlsNotConfigured);
    }
    if session.config().starttls
        && session.starttls_available()
        && options.tls.is_none()
        && !session.is_tls()
    {
        return Err(ServeError::StartTlsNotConfigured);
    }
    let mut stream: MaybeTls<S, TlsStream<S>> = match options.tls.as_ref() {
        Some(acceptor) if implicit_tls => {
            // Nothing has been read, so nothing can wait in plaintext.
            let tls = handshake_within(
                options.handshake_timeout,
                accept_starttls(acceptor, stream, &[]),
            )
            .await?;
            MaybeTls::Tls(Box::new(tls))
        }
        _ => MaybeTls::Plain(stream),
    };
    let cap = read_cap(options, session.config());
    // The machine has consumed `buf[..start]`; see `compact`.
    let mut start = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4 * 1024);
    let mut peer = PeerState::Open;
    // Set when a last reply (to a handler error, or before a protocol
    // error ends the session) could not be written in time.
    let mut dropped = false;
    // When the wait for the client's next command (or body bytes) runs
    // out; `None` until the driver starts to wait (see the module docs).
    let mut deadline: Option<Instant> = None;
    // A limit too far away to be an `Instant` is no limit.
    let session_end = options
        .session_timeout
        .and_then(|limit| started.checked_add(limit));
    let result = loop {
        // Between steps no decision is pending: a stop waits only for the
        // end of a message body.
        if stopping && !matches!(session.phase(), Phase::Data | Phase::Bdat) {
            compact(&mut buf, &mut start);
            break end_shut_down(
                &mut stream,
                session,
                &mut out,
                &mut buf,
                cap,
                peer,
                &mut dropped,
            )
            .await;
        }
        let step = match session.handle_input(&buf[start..]) {
            Ok(step) => step,
            Err(e) => {
                let e = ServeError::from(e);
                if matches!(e, ServeError::Usage(_)) {
                    // The application's fault (a decision left open): the
                    // client is told as for a handler error.
                    dropped = send_local_error(&mut stream, session, &mut out).await;
                } else {
                    session.poll_transmit(&mut out);
                    compact(&mut buf, &mut start);
                    let wait = write_wait(session);
                    dropped = flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait)
                        .await
                        .is_err_and(|e| is_write_timeout(&e));
                }
                break Err(e);
            }
        };
        // Once the stop has come, nothing restarts the wait: the body
        // under way must end within one timeout (see `serve_until`).
        if session.restarts_timeout(&step) && !stopping {
            deadline = None;
        }
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ServerEvent::StartTls) => {
                start += consumed;
                session.poll_transmit(&mut out);
                // Send the 220 without reading: anything the client sends
                // now must wait for the handshake.
                write_within(&mut stream, &mut out, write_wait(session)).await?;
                let Some(acceptor) = options.tls.as_ref() else {
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
                    accept_starttls(acceptor, plain, &buf),
                )
                .await
                {
                    Ok(tls) => tls,
                    Err(e) => break Err(e.into()),
                };
                stream = MaybeTls::Tls(Box::new(tls));
                if let Err(e) = session.tls_established() {
                    break Err(e.into());
                }
                // TLS is up and the session has forgotten the plaintext
                // phase: the application hears of it before the next
                // command (RFC 3207 §4.2).
                if let Err(e) = handler.on_event(session, ServerEvent::StartTls).await {
                    dropped = send_local_error(&mut stream, session, &mut out).await;
                    break Err(e.into());
                }
                continue;
            }
            Outcome::Event(event) => {
                if let Err(e) = handler.on_event(session, event).await {
                    dropped = send_local_error(&mut stream, session, &mut out).await;
                    break Err(e.into());
                }
                if options.tls.is_none() {
                    // No handshake can follow a 220: STARTTLS stays
                    // declined (454) whatever the handler did.
                    session.set_starttls_available(false);
                }
            }
            Outcome::NeedInput => {
                start += consumed;
                compact(&mut buf, &mut start);
                let held = buf.len();
                session.poll_transmit(&mut out);
                if !out.is_empty() {
                    let wait = write_wait(session);
                    peer = match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait)
                        .await
                    {
                        Ok(peer) => peer,
                        Err(e) if is_peer_gone(&e) => break Ok(ServeEnd::PeerClosed),
                        Err(e) => break Err(e.into()),
                    };
                    // Bytes arrived while we wrote: feed them first, unless
                    // the connection's time is up (a client that always
                    // has more ready would otherwise never be cut off).
                    // A stop that has come is heeded at the top of the
                    // loop, for the same reason.
                    if buf.len() > held && session_end.is_none_or(|end| Instant::now() < end) {
                        if note_stop(shutdown.as_mut(), &mut stopping).await {
                            deadline = None;
                        }
                        continue;
                    }
                }
                if peer == PeerState::Eof {
                    break Ok(ServeEnd::PeerClosed);
                }
                // The wait starts now, after the replies went out, unless
                // it already runs for a command that has not ended.
                let wait = session.timeout().unwrap_or(DEFAULT_WAIT);
                let mut until = *deadline.get_or_insert_with(|| wait_until(Instant::now(), wait));
                if let Some(end) = session_end {
                    until = until.min(end);
                }
                let read = read_some_by(&mut stream, &mut buf, cap, until);
                let Some(read) = read_or_stop(read, shutdown.as_mut(), &mut stopping).await else {
                    // Stopping: check again whether that may happen now.
                    // A body under way gets one whole timeout from here.
                    deadline = None;
                    continue;
                };
                match read {
                    Some(Ok(Filled::Bytes(_))) => {}
                    Some(Ok(Filled::Eof)) => break Ok(ServeEnd::PeerClosed),
                    // The session waits for more of a line that fills the
                    // buffer; `read_cap` makes this unreachable for the
                    // session's own limits.
                    Some(Ok(Filled::Full)) => break Err(buffer_full(cap).into()),
                    // Over TLS, the client went away without close_notify.
                    Some(Err(e)) if is_peer_gone(&e) => break Ok(ServeEnd::PeerClosed),
                    Some(Err(e)) => break Err(e.into()),
                    None => {
                        compact(&mut buf, &mut start);
                        break end_timed_out(&mut stream, session, &mut out, &mut buf, cap, peer)
                            .await;
                    }
                }
                continue;
            }
            Outcome::Transmit => {
                start += consumed;
                session.poll_transmit(&mut out);
                compact(&mut buf, &mut start);
                let wait = write_wait(session);
                peer = match flush_within(&mut stream, &mut out, &mut buf, cap, peer, wait).await {
                    Ok(peer) => peer,
                    Err(e) if is_peer_gone(&e) => break Ok(ServeEnd::PeerClosed),
                    Err(e) => break Err(e.into()),
                };
                // The flush read what came meanwhile, so the session may
                // never run out of input: the connection's time is checked
                // here too.
                if session_end.is_some_and(|end| Instant::now() >= end) {
                    break end_timed_out(&mut stream, session, &mut out, &mut buf, cap, peer).await;
                }
                // And so is the stop (at the top of the loop).
                if note_stop(shutdown.as_mut(), &mut stopping).await {
                    deadline = None;
                }
                continue;
            }
            Outcome::Paused => {
                dropped = send_local_error(&mut stream, session, &mut out).await;
                break Err(UsageError::DecisionPending.into());
            }
            Outcome::Closed => {
                start += consumed;
                session.poll_transmit(&mut out);
                compact(&mut buf, &mut start);
                let wait = write_wait(session);
                flush_within(&mut stream, &mut out, &mut buf, cap, PeerState::Eof, wait).await?;
                break Ok(ServeEnd::Closed);
            }
            _ => {
                start += consumed;
                continue;
            }
        }
        start += consumed;
    };
    // After a write timed out, nothing more is sent (not even TLS's
    // close_notify, which would wait as long again behind the bytes the
    // client did not take): the connection is just dropped. Otherwise the
    // write side is shut down and the close lingers (see
    // `ServeOptions::linger_time`).
    if !dropped
        && !matches!(result, Err(ServeError::WriteTimedOut))
        && shutdown_within(&mut stream, write_wait(session)).await
    {
        linger(&mut stream, options).await;
    }
    result
}

/// The lingering close, once the write side is shut down: drops what the
/// client still sends, within [`ServeOptions::linger_time`] and
/// [`ServeOptions::linger_bytes`]. Over TLS the bytes are read from the
/// underlying stream, undecrypted: they are not looked at.
async fn linger<S>(stream: &mut MaybeTls<S, TlsStream<S>>, options: &ServeOptions)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let raw = match stream {
        MaybeTls::Plain(s) => s,
        MaybeTls::Tls(tls) => tls.get_mut().0,
        MaybeTls::Upgrading => return,
    };
    drain_within(raw, options.linger_time, options.linger_bytes).await;
}
