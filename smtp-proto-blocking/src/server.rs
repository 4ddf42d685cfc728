//! Drives a [`ServerSession`] over a blocking stream.
//!
//! The session does all SMTP work. This module owns the socket, the read
//! buffer and the clock: it reads, feeds the session, hands every event to
//! your [`ServerHandler`], writes the replies, applies the timeout the
//! session reports (sending `421 4.4.2` when it expires) and the same
//! limit to each write as a whole (where the [`Transport`] supports write
//! timeouts), and runs the
//! STARTTLS handshake through rustls when the session asks for it, or
//! before anything is sent when the session is on implicit TLS
//! (`ServerConfig::implicit_tls`, RFC 8314, the submissions port 465).
//!
//! # Timeouts
//!
//! The session's timeout (`Timeouts::server`, RFC 5321 §4.5.3.2.7) is a
//! deadline for each command: it starts when the driver waits for the
//! client, after the replies have been sent, and is not extended by the
//! bytes of a command line that has not ended (nor by those of an
//! over-long line being thrown away), so a client that trickles its
//! commands a byte at a time cannot hold the connection. Before each read
//! the driver sets the socket's read timeout to the time left; over TLS it
//! does so before each of the socket reads rustls makes, so the deadline
//! bounds the whole read. It starts again once the session has taken a
//! command line. Inside a message body (DATA or a BDAT chunk) it starts
//! again whenever the session takes body bytes, so it limits how long the
//! client may stay silent, not how long the message takes;
//! [`ServeOptions::session_timeout`] can bound the whole connection. When
//! it runs out, the driver sends `421 4.4.2` and returns
//! [`ServeEnd::TimedOut`].
//!
//! Writes block: replies are written whole while the client's next bytes
//! wait in the socket buffers. Each write (all the replies queued at one
//! point) has one deadline, the session's timeout from its start: before
//! each socket write, over TLS before each one rustls makes, the write
//! timeout is set to the time left, so a client that reads a few bytes at
//! a time cannot stretch a write past it ([`ServeError::WriteTimedOut`]).
//! A client that pipelines so much that the replies overflow those buffers
//! while it does not read would make both sides wait on each other until
//! the write times out.
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

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::server::{
    Error as SessionError, RemoteError, ServerEvent, ServerSession, UsageError,
};
use smtp_proto::session::{Outcome, Phase};

use crate::client::is_timeout;
use crate::transport::{instant_after, is_write_timeout, on_write_timeout, MaybeTls, Transport};
use crate::StartTlsError;

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
pub trait ServerHandler {
    /// Handles one event; the event borrows the connection's read buffer.
    ///
    /// An error ends the connection: the driver sends `421 4.3.0` (best
    /// effort; RFC 3463 X.3.0 "other or undefined mail system status")
    /// after any replies already queued, and [`serve`] returns the error
    /// as [`ServeError::Io`]. The same `421` is sent when the handler
    /// leaves a decision open; [`serve`] then returns
    /// [`ServeError::Usage`] ([`UsageError::DecisionPending`]).
    fn on_event(&mut self, session: &mut ServerSession, event: ServerEvent<'_>) -> io::Result<()>;
}

/// Options of [`serve`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The rustls configuration for STARTTLS and for implicit TLS.
    ///
    /// With `ServerConfig::implicit_tls` on, [`serve`] runs the handshake
    /// with it over the fresh connection before it sends anything, so the
    /// greeting goes out encrypted; `None` then makes [`serve`] refuse to
    /// start ([`ServeError::ImplicitTlsNotConfigured`]). Otherwise it is
    /// used when a client sends STARTTLS: `None` is for sessions that do
    /// not offer STARTTLS (`ServerConfig::starttls` off, or declined with
    /// [`ServerSession::set_starttls_available`], for example because the
    /// certificate could not be loaded); with it offered, [`serve`]
    /// refuses to start ([`ServeError::StartTlsNotConfigured`]). Without a
    /// configuration [`serve`] keeps STARTTLS declined after every handler
    /// call, so a STARTTLS gets `454 4.7.0`, never a `220` with no
    /// handshake to follow.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The longest a TLS handshake may take, in all (not per read): the
    /// handshake after STARTTLS, or the one that opens an implicit TLS
    /// connection (a client that connects and sends nothing is dropped
    /// after it, without a reply).
    pub handshake_timeout: Duration,
    /// How many bytes one read asks for (at least 512). The read buffer
    /// is not capped by it: each read adds room for one more read after
    /// what the session has not yet taken, so a line up to the session's
    /// limits (`max_line_length`, and `max_auth_line_length` for AUTH and
    /// SASL responses) is gathered over as many reads as it needs. Memory
    /// stays bounded by those limits plus one read, since the session
    /// drops a line as soon as it is known to be too long.
    pub read_size: usize,
    /// The longest the whole connection may last, from the call of
    /// [`serve`]; `None` (the default) sets no limit. It bounds every wait
    /// for the client: once it has passed, the session ends as on the
    /// session's own timeout (`421 4.4.2`, [`ServeEnd::TimedOut`]). The
    /// session's timeout alone lets a client that keeps sending body
    /// bytes, however slowly, go on; this bounds it. The TLS handshake
    /// keeps its own limit ([`ServeOptions::handshake_timeout`]), and a
    /// write under way may take up to the session's timeout past it.
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
    /// shuts its write side down ([`Transport::shutdown_write`]), which
    /// tells the client the end has come, then reads and drops the
    /// client's bytes, unparsed, until the client closes its side, this
    /// time has passed, or [`ServeOptions::linger_bytes`] have been
    /// dropped, and only then closes. This runs after the handler has
    /// seen its last event, may take this long past
    /// [`ServeOptions::session_timeout`] (and past the stop of
    /// [`serve_until`]), and never runs after a write
    /// that timed out (nor when the transport cannot shut its write side
    /// down: the default of [`Transport::shutdown_write`]; [`TcpStream`]
    /// can).
    ///
    /// [`TcpStream`]: std::net::TcpStream
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
            read_size: 16 * 1024,
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

/// How a connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeEnd {
    /// The session closed (QUIT, or a refusal it sent).
    Closed,
    /// The client closed the connection first (a message in progress is
    /// void: no `MessageEnd` was given for it). Over TLS this is so whether
    /// or not the client sent its `close_notify` first.
    PeerClosed,
    /// The client did not send its next command within the session's
    /// timeout, or was silent that long inside a message body, or did not
    /// end the body under way within that long of the stop of
    /// [`serve_until`], or the connection reached
    /// [`ServeOptions::session_timeout`]; `421 4.4.2` was sent (see the
    /// [module](self) docs).
    TimedOut,
    /// The stop flag of [`serve_until`] was set: `421 4.3.2` was sent at a
    /// point where no message was under way.
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
    /// The client broke the protocol beyond recovery: the session's last
    /// reply was sent (over TLS followed by `close_notify`) before this
    /// was returned.
    #[error("client error: {0}")]
    Remote(#[from] RemoteError),
    /// The handler left a decision open, or called the session wrongly
    /// (`421 4.3.0` was sent, as for a handler error).
    #[error("application error: {0}")]
    Usage(#[from] UsageError),
    /// The TLS handshake failed or timed out: after STARTTLS, or at the
    /// start of an implicit TLS connection (then nothing was sent in
    /// plaintext).
    #[error("TLS failed: {0}")]
    StartTls(#[from] StartTlsError),
    /// The session offers STARTTLS (`ServerConfig::starttls`, not declined
    /// with [`ServerSession::set_starttls_available`]) but
    /// [`ServeOptions::tls`] is `None`, so an upgrade could only fail after
    /// its `220`. [`serve`] returns this before it sends anything.
    #[error("STARTTLS is offered but no TLS configuration is given")]
    StartTlsNotConfigured,
    /// The session is on implicit TLS (`ServerConfig::implicit_tls`) but
    /// [`ServeOptions::tls`] is `None`: there is no handshake to run, and
    /// the session must not speak in plaintext. [`serve`] returns this
    /// before it sends anything.
    #[error("implicit TLS is on but no TLS configuration is given")]
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

/// Runs one server connection to its end. The session must already be
/// greeted or refused.
///
/// # Implicit TLS
///
/// When the session's configuration has `implicit_tls` on (RFC 8314 §3.3,
/// the submissions port 465), the connection is encrypted from its first
/// byte: `serve` first runs the rustls server handshake with
/// [`ServeOptions::tls`] over `stream`, within
/// [`ServeOptions::handshake_timeout`] in all, and only then sends the
/// greeting the session has queued, over TLS. The session goes on as after
/// STARTTLS; it never offers STARTTLS (`ServerConfig::starttls` is then
/// ignored) and offers AUTH from the first EHLO. A handshake that fails or
/// times out ends the connection with [`ServeError::StartTls`] before any
/// SMTP byte was sent; without a TLS configuration `serve` sends nothing
/// and returns [`ServeError::ImplicitTlsNotConfigured`].
///
/// ```no_run
/// use std::net::TcpListener;
/// use std::sync::Arc;
///
/// use smtp_proto_blocking::rustls;
/// use smtp_proto_blocking::server::{serve, ServeOptions, ServerHandler};
/// use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerSession};
///
/// /// Serves one connection on the submissions port.
/// fn submissions<H: ServerHandler>(
///     tls: Arc<rustls::ServerConfig>,
///     handler: &mut H,
/// ) -> Result<(), Box<dyn std::error::Error>> {
///     let listener = TcpListener::bind("0.0.0.0:465")?;
///     let (socket, _peer) = listener.accept()?;
///     let mut config = ServerConfig::new("mail.example.com");
///     config.implicit_tls = true;
///     let mut session = ServerSession::new(config)?;
///     // Queued now, sent once the handshake is done.
///     session.greet()?;
///     let mut options = ServeOptions::default();
///     options.tls = Some(tls);
///     serve(socket, &mut session, handler, &options)?;
///     Ok(())
/// }
/// ```
///
/// Any [`Transport`] will do. Here one that plays a client's bytes from
/// memory and keeps what the server writes, so the example runs without
/// a network:
///
/// ```
/// use std::cell::RefCell;
/// use std::io::{Cursor, Read, Write};
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// use smtp_proto_blocking::server::{serve, ServeEnd, ServeOptions, ServerHandler};
/// use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
/// use smtp_proto_blocking::Transport;
///
/// /// A client's bytes, read from memory; what is written is kept.
/// struct Script {
///     input: Cursor<&'static [u8]>,
///     output: Rc<RefCell<Vec<u8>>>,
/// }
///
/// impl Read for Script {
///     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
///         self.input.read(buf)
///     }
/// }
///
/// impl Write for Script {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
///         self.output.borrow_mut().write(buf)
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// impl Transport for Script {
///     fn set_read_timeout(&mut self, _: Option<Duration>) -> std::io::Result<()> {
///         Ok(()) // reads from memory never wait
///     }
/// }
///
/// /// Takes every message and keeps its bytes.
/// struct Inbox(Vec<u8>);
///
/// impl ServerHandler for Inbox {
///     fn on_event(
///         &mut self,
///         session: &mut ServerSession,
///         event: ServerEvent<'_>,
///     ) -> std::io::Result<()> {
///         match event {
///             ServerEvent::MessageChunk(bytes) => self.0.extend_from_slice(bytes),
///             ServerEvent::Hello { .. }
///             | ServerEvent::Mail { .. }
///             | ServerEvent::Rcpt { .. }
///             | ServerEvent::MessageEnd { .. } => session.accept().map_err(std::io::Error::other)?,
///             _ => {}
///         }
///         Ok(())
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let output = Rc::new(RefCell::new(Vec::new()));
/// let client = Script {
///     input: Cursor::new(
///         b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n\
///           RCPT TO:<b@example.com>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n",
///     ),
///     output: Rc::clone(&output),
/// };
/// let mut session = ServerSession::new(ServerConfig::new("mx.example.com"))?;
/// session.greet()?;
/// let mut inbox = Inbox(Vec::new());
/// let end = serve(client, &mut session, &mut inbox, &ServeOptions::default())?;
/// assert_eq!(end, ServeEnd::Closed);
/// assert_eq!(inbox.0, b"Hi\r\n");
/// let replies = String::from_utf8(output.take())?;
/// assert!(replies.starts_with("220 mx.example.com ESMTP\r\n"));
/// assert!(replies.ends_with("250 2.0.0 OK: message accepted\r\n221 2.0.0 Bye\r\n"));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// See [`ServeError`]. A handler error, or a decision the handler left
/// open, is answered with `421 4.3.0` before the connection is dropped
/// (see [`ServerHandler::on_event`]).
pub fn serve<S, H>(
    stream: S,
    session: &mut ServerSession,
    handler: &mut H,
    options: &ServeOptions,
) -> Result<ServeEnd, ServeError>
where
    S: Transport,
    H: ServerHandler,
{
    // No flag can be set: the waits for the client need no slicing.
    drive(stream, session, handler, options, None)
}

/// How long one socket read of [`serve_until`] may wait before the driver
/// looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(200);

/// [`serve`], with a graceful stop: once `stop` is set, the connection
/// ends at the next point where nothing is lost.
///
/// The flag is heeded when the driver would wait for the client: then it
/// sends the replies it owes, then `421 4.3.2` ("Service shutting down",
/// RFC 5321 §3.8; [`ServerSession::shut_down`]), closes the connection
/// (after TLS's `close_notify`) and returns [`ServeEnd::ShutDown`]. A
/// message body under way (DATA, or BDAT chunks before the one with
/// LAST) is read to its end and decided by the handler first, so an
/// accepted message is acknowledged and no client is cut off
/// mid-message. That takes one of the session's timeouts at most: from
/// the stop on, body bytes (and BDAT commands) no longer restart it, so a
/// client that trickles the rest of its message cannot hold the stop
/// off; when it runs out, the session ends as on its timeout (`421
/// 4.4.2`, [`ServeEnd::TimedOut`]) and the message is void. Commands the
/// client pipelined behind the point of the stop get no other reply: the
/// 421 tells it to try again later.
///
/// A blocking read cannot be woken by the flag, so while it waits for the
/// client the driver reads in slices of at most 200 ms and looks at the
/// flag between them: an idle client gets the 421 within about that long
/// of the flag being set. The deadlines are those of [`serve`] (the
/// session's timeout, [`ServeOptions::session_timeout`]); only the
/// waiting is sliced. A TLS handshake or a write under way is not cut
/// short: each keeps its own limit, and the flag is heeded after it.
///
/// The flag is a plain [`AtomicBool`], borrowed for the connection: one
/// flag can stop every connection, whether it lives in an
/// [`Arc`], a `static`, or on the stack of a thread that
/// outlives the connections ([`std::thread::scope`]). Set it with
/// `store(true, _)` (any memory ordering will do: only the flag is read);
/// the driver never clears it.
///
/// ```no_run
/// use std::net::TcpListener;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::thread;
///
/// use smtp_proto_blocking::server::{serve_until, ServeEnd, ServeOptions, ServerHandler};
/// use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
///
/// struct TakeAll;
///
/// impl ServerHandler for TakeAll {
///     fn on_event(
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
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = TcpListener::bind("127.0.0.1:2525")?;
/// // Set to stop every connection (by the thread that sees SIGTERM, say).
/// let stop = Arc::new(AtomicBool::new(false));
/// let (socket, _peer) = listener.accept()?;
/// let flag = Arc::clone(&stop);
/// let connection = thread::spawn(move || {
///     let mut session = ServerSession::new(ServerConfig::new("mx.example.net"))?;
///     session.greet()?;
///     let options = ServeOptions::default();
///     let end = serve_until(socket, &mut session, &mut TakeAll, &options, &flag)?;
///     Ok::<ServeEnd, Box<dyn std::error::Error + Send + Sync>>(end)
/// });
/// stop.store(true, Ordering::Relaxed);
/// // `ServeEnd::ShutDown`, unless the connection had ended before.
/// let end = connection.join().map_err(|_| "connection thread panicked")?;
/// println!("{:?}", end.map_err(|e| e.to_string())?);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`serve`]. A write timeout while sending the 421 is
/// [`ServeError::WriteTimedOut`]; a client gone by then changes nothing
/// (the result is [`ServeEnd::ShutDown`]).
pub fn serve_until<S, H>(
    stream: S,
    session: &mut ServerSession,
    handler: &mut H,
    options: &ServeOptions,
    stop: &AtomicBool,
) -> Result<ServeEnd, ServeError>
where
    S: Transport,
    H: ServerHandler,
{
    drive(stream, session, handler, options, Some(stop))
}

/// True once `stop` is given and set.
fn stop_set(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// True inside a message body, where a stop waits for its end.
fn in_body(session: &ServerSession) -> bool {
    matches!(session.phase(), Phase::Data | Phase::Bdat)
}

/// [`serve`] and [`serve_until`]: `stop` is the flag of the latter.
fn drive<S, H>(
    stream: S,
    session: &mut ServerSession,
    handler: &mut H,
    options: &ServeOptions,
    stop: Option<&AtomicBool>,
) -> Result<ServeEnd, ServeError>
where
    S: Transport,
    H: ServerHandler,
{
    // On implicit TLS the session never offers STARTTLS, so only the
    // handshake before the greeting needs the configuration.
    let implicit = if session.config().implicit_tls {
        match &options.tls {
            Some(config) => Some(Arc::clone(config)),
            None => return Err(ServeError::ImplicitTlsNotConfigured),
        }
    } else {
        if session.config().starttls && session.starttls_available() && options.tls.is_none() {
            return Err(ServeError::StartTlsNotConfigured);
        }
        None
    };
    let started = Instant::now();
    let mut stream = stream;
    // A client that stops reading our replies is as gone as one that
    // stops sending: the same limit applies to each write.
    stream.set_write_timeout(Some(write_wait(session)))?;
    let mut stream: MaybeTls<S, rustls::ServerConnection> = MaybeTls::Plain(stream);
    if let Some(config) = implicit {
        // Before anything is sent: the queued greeting goes out over TLS.
        let conn = rustls::ServerConnection::new(config)
            .map_err(|e| StartTlsError::Handshake(io::Error::other(e)))?;
        stream.start_tls(conn, 0, options.handshake_timeout)?;
    }
    let read_size = options.read_size.max(512);
    // `buf[start..end]` holds the bytes read and not yet consumed; the
    // consumed ones are dropped once before each read, not once per
    // command, and `buf` stays initialised past `end`.
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut end = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    // When the wait for the client's next command (or body bytes) runs
    // out; `None` until the driver starts to wait (see the module docs).
    let mut deadline: Option<Instant> = None;
    // A limit too far away to be an `Instant` is no limit.
    let session_end = options
        .session_timeout
        .and_then(|limit| started.checked_add(limit));
    // Set once the stop flag has been seen: the connection ends at the top
    // of the loop once no body is under way.
    let mut stopping = false;
    loop {
        // Between steps no decision is pending: a stop waits only for the
        // end of a message body.
        if stopping && !in_body(session) {
            return end_shut_down(&mut stream, session, &mut out, options);
        }
        let input = buf.get(start..end).unwrap_or_default();
        let step = match session.handle_input(input) {
            Ok(step) => step,
            Err(e) => {
                let e = ServeError::from(e);
                if matches!(e, ServeError::Usage(_)) {
                    // The application's fault (a decision left open): the
                    // client is told as for a handler error.
                    local_error(&mut stream, session, &mut out, options);
                } else if send(&mut stream, session, &mut out).is_ok() {
                    // The session's last reply is out: end TLS cleanly,
                    // as after any other reply that closes the session.
                    close(&mut stream, session, options);
                }
                return Err(e);
            }
        };
        // Once the stop has been seen, nothing restarts the wait: the
        // body under way must end within one timeout (see `serve_until`).
        if session.restarts_timeout(&step) && !stopping {
            deadline = None;
        }
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ServerEvent::StartTls) => {
                start += consumed;
                compact(&mut buf, &mut start, &mut end);
                send(&mut stream, session, &mut out)?;
                let config = options.tls.clone().ok_or_else(|| {
                    StartTlsError::Handshake(io::Error::other("no TLS configured"))
                })?;
                let conn = rustls::ServerConnection::new(config)
                    .map_err(|e| StartTlsError::Handshake(io::Error::other(e)))?;
                stream.start_tls(conn, end, options.handshake_timeout)?;
                session.tls_established()?;
                // TLS is up and the session has forgotten the plaintext
                // phase: the application hears of it before the next
                // command (RFC 3207 §4.2).
                if let Err(e) = handler.on_event(session, ServerEvent::StartTls) {
                    local_error(&mut stream, session, &mut out, options);
                    return Err(e.into());
                }
                continue;
            }
            Outcome::Event(event) => {
                if let Err(e) = handler.on_event(session, event) {
                    local_error(&mut stream, session, &mut out, options);
                    return Err(e.into());
                }
                if options.tls.is_none() {
                    // No handshake can follow a 220: STARTTLS stays
                    // declined (454) whatever the handler did.
                    session.set_starttls_available(false);
                }
            }
            Outcome::NeedInput => {
                start += consumed;
                send(&mut stream, session, &mut out)?;
                if !stopping && stop_set(stop) {
                    stopping = true;
                    // A body under way gets one whole timeout from here.
                    deadline = None;
                    if !in_body(session) {
                        continue;
                    }
                }
                // The wait starts now, after the replies went out, unless
                // it already runs for a command that has not ended.
                let wait = session.timeout().unwrap_or(DEFAULT_WAIT);
                let mut until =
                    *deadline.get_or_insert_with(|| instant_after(Instant::now(), wait));
                if let Some(session_end) = session_end {
                    until = until.min(session_end);
                }
                compact(&mut buf, &mut start, &mut end);
                let want = end + read_size;
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                // Bounded by `until`: with a flag to watch, the wait is cut
                // into slices, and the flag looked at between them.
                let read = loop {
                    let slice_end = match stop {
                        Some(_) if !stopping => until.min(instant_after(Instant::now(), STOP_POLL)),
                        _ => until,
                    };
                    let read = stream.read_by(&mut buf[end..want], slice_end);
                    match &read {
                        Err(e) if is_timeout(e) && slice_end < until => {
                            if stop_set(stop) {
                                // The top of the loop ends the session, or
                                // goes on with the body under way, which
                                // gets one whole timeout from here.
                                stopping = true;
                                deadline = None;
                                break None;
                            }
                        }
                        _ => break Some(read),
                    }
                };
                // Stopped while waiting: the top of the loop ends it (or
                // goes on with the body under way).
                let Some(read) = read else { continue };
                let n = match read {
                    Ok(n) => n.min(read_size),
                    Err(e) if is_timeout(&e) => {
                        session.timed_out();
                        return send_last_words(
                            &mut stream,
                            session,
                            &mut out,
                            options,
                            ServeEnd::TimedOut,
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // The client ended TLS without close_notify.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                        return Ok(ServeEnd::PeerClosed);
                    }
                    Err(e) => return Err(e.into()),
                };
                if n == 0 {
                    return Ok(ServeEnd::PeerClosed);
                }
                end += n;
                continue;
            }
            Outcome::Transmit => {
                start += consumed;
                send(&mut stream, session, &mut out)?;
                continue;
            }
            Outcome::Paused => {
                local_error(&mut stream, session, &mut out, options);
                return Err(UsageError::DecisionPending.into());
            }
            Outcome::Closed => {
                send(&mut stream, session, &mut out)?;
                close(&mut stream, session, options);
                return Ok(ServeEnd::Closed);
            }
            _ => {}
        }
        start += consumed;
    }
}

/// Ends the connection on the stop flag of [`serve_until`]: the session's
/// queued replies and its `421 4.3.2`, within the session's timeout, then
/// [`close`].
fn end_shut_down<S, C, D>(
    stream: &mut MaybeTls<S, C>,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    options: &ServeOptions,
) -> Result<ServeEnd, ServeError>
where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    if let Err(e) = session.shut_down() {
        // A decision the handler left open: answered as for a handler
        // error.
        local_error(stream, session, out, options);
        return Err(e.into());
    }
    send_last_words(stream, session, out, options, ServeEnd::ShutDown)
}

/// Sends what a session that has just closed queued (its `421`), within
/// the session's timeout, then [`close`]s, and ends as `end`; a client
/// gone by now changes nothing. A write that times out ends the
/// connection with [`ServeError::WriteTimedOut`] and nothing more is
/// written (not even `close_notify`, which would wait as long again).
fn send_last_words<S, C, D>(
    stream: &mut MaybeTls<S, C>,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    options: &ServeOptions,
    end: ServeEnd,
) -> Result<ServeEnd, ServeError>
where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    match send(stream, session, out) {
        Err(e) if is_write_timeout(&e) => Err(e.into()),
        _ => {
            close(stream, session, options);
            Ok(end)
        }
    }
}

/// Moves the unconsumed bytes `buf[start..end]` to the front of `buf`.
fn compact(buf: &mut [u8], start: &mut usize, end: &mut usize) {
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
}

/// After a handler error: sends what the session has queued, then `421
/// 4.3.0` (best effort: the client may be gone), and [`close`]s unless
/// that write timed out.
fn local_error<S, C, D>(
    stream: &mut MaybeTls<S, C>,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
    options: &ServeOptions,
) where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    session.local_error();
    session.poll_transmit(out);
    let deadline = instant_after(Instant::now(), write_wait(session));
    let written = stream.write_all_by(out, deadline);
    out.clear();
    // After a write that timed out nothing more is written: close_notify
    // would wait as long again behind the bytes the client did not take.
    if !written.is_err_and(|e| is_timeout(&e)) {
        close(stream, session, options);
    }
}

/// Writes what the session has queued, all of it within the session's
/// timeout from now ([`write_wait`]): one deadline for the whole write,
/// however many socket writes it takes (see [`MaybeTls::write_all_by`]).
/// A write that runs out of time fails as a write timeout
/// ([`is_write_timeout`]), which [`ServeError`] takes as
/// [`ServeError::WriteTimedOut`].
fn send<S, C, D>(
    stream: &mut MaybeTls<S, C>,
    session: &mut ServerSession,
    out: &mut Vec<u8>,
) -> io::Result<()>
where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    session.poll_transmit(out);
    if !out.is_empty() {
        let wait = write_wait(session);
        let written = stream.write_all_by(out, instant_after(Instant::now(), wait));
        out.clear();
        written.map_err(|e| on_write_timeout(e, wait))?;
    }
    Ok(())
}

/// Ends the connection after its last reply was written: TLS's
/// `close_notify` (see [`MaybeTls::close_notify`]) within the session's
/// timeout, then the lingering close (see [`ServeOptions::linger_time`]):
/// the write side is shut down and what the client still sends is
/// dropped, within the configured bounds. Nothing lingers when the
/// `close_notify` could not be written, or the write side not shut down.
fn close<S, C, D>(stream: &mut MaybeTls<S, C>, session: &ServerSession, options: &ServeOptions)
where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    if stream
        .close_notify_by(instant_after(Instant::now(), write_wait(session)))
        .is_err()
    {
        return;
    }
    if options.linger_time.is_zero() || options.linger_bytes == 0 {
        return;
    }
    if stream.shutdown_write().is_ok() {
        let deadline = instant_after(Instant::now(), options.linger_time);
        stream.drain_by(deadline, options.linger_bytes);
    }
}

/// The write timeout [`serve`] sets on the socket: the session's
/// `timeouts.server`.
fn write_wait(session: &ServerSession) -> Duration {
    session
        .config()
        .timeouts
        .server
        .max(Duration::from_millis(1))
}
