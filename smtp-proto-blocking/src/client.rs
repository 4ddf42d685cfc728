//! Drives a [`Client`] over a blocking stream.
//!
//! The client machine does all SMTP work. This module owns the socket, the
//! read buffer and the clock: it reads the server's replies, feeds the
//! machine, hands every event to your [`ClientHandler`], writes the
//! commands, applies the per-phase timeout the machine reports
//! ([`Client::timeout`], RFC 5321 §4.5.3.2) to each reply and to each
//! write (where the [`Transport`] supports write timeouts), and runs the STARTTLS
//! handshake through rustls when the machine asks for it, or before the
//! greeting when the machine is on implicit TLS
//! (`ClientConfig::implicit_tls`, RFC 8314, the submissions port 465).
//!
//! Writes block: a pipelined group (or one body piece) is written whole
//! before the replies are read. The replies to one group are a few dozen
//! bytes per command and wait in the socket buffers meanwhile; a group
//! whose replies overflow them (thousands of recipients in one envelope)
//! would make both sides wait on each other until the write timeout
//! ([`RunError::TimedOut`]).
//!
//! The body is written one piece of [`ClientHandler::next_body_piece`] at
//! a time. With BDAT and PIPELINING, the replies to the chunks that have
//! arrived are read after each piece without waiting (see
//! [`Transport::set_nonblocking`]), so any number of chunks can be sent;
//! a refused chunk stops the body. Without PIPELINING, each chunk waits for
//! its reply: the driver stops asking for pieces until the machine gives
//! [`ClientEvent::SendBody`] again, then goes on with the next piece.

use std::io::{self, ErrorKind, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use smtp_proto::client::{
    AuthCredentials, Client, ClientError, ClientEvent, Delivery, DeliveryReport, Envelope,
    NotAttempted, Outcome, SaslResponder, SendFailure,
};
use smtp_proto::command::ReversePath;

use crate::transport::{instant_after, is_write_timeout, on_write_timeout, MaybeTls, Transport};
use crate::StartTlsError;

/// The application's side of a client connection.
pub trait ClientHandler {
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
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()>;

    /// After [`ClientEvent::SendBody`]: puts the next piece of the message
    /// into `piece` (empty on entry) and returns `true`, or returns `false`
    /// at the end of the message. Each piece is written before the next is
    /// asked for, so a message never needs to sit whole in memory; with
    /// BDAT, each piece is one chunk. A piece is asked for only when it
    /// can be sent: with BDAT and no PIPELINING, `SendBody` comes again
    /// after each chunk's reply and the pieces go on from there.
    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool>;
}

/// Options of [`run`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The rustls configuration for STARTTLS and for implicit TLS, and the
    /// name to check the server's certificate against.
    ///
    /// With `ClientConfig::implicit_tls` on, [`run`] runs the handshake
    /// with it over the fresh connection before it reads the greeting;
    /// `None` then makes [`run`] refuse to start
    /// ([`RunError::ImplicitTlsNotConfigured`]). Otherwise it is used when
    /// the session upgrades with STARTTLS. With `None` the client cannot
    /// start TLS: under `TlsPolicy::Opportunistic` it does not send
    /// STARTTLS, even to a server that offers it, and the session goes on
    /// in plain text (the handler sees `ClientEvent::TlsUnavailable`
    /// without a reply, as when the server does not offer it; see
    /// `Client::set_can_start_tls`); under `TlsPolicy::Required` it sends
    /// STARTTLS and the run fails with [`RunError::StartTls`] after the
    /// server's `220`.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The longest a TLS handshake may take, in all (not per read): the
    /// handshake after STARTTLS, or the one that opens an implicit TLS
    /// connection.
    pub handshake_timeout: Duration,
    /// How many bytes one read asks for (at least 512). The read buffer
    /// is not capped by it: each read adds room for one more read after
    /// what the machine has not yet taken, so a reply up to the limits in
    /// `ClientConfig::replies` is gathered over as many reads as it needs.
    /// Memory stays bounded by `max_reply_len + max_line_len` (each at
    /// least `smtp_proto::client::AUTH_LINE_MAX` during an AUTH exchange)
    /// plus one read, since the machine refuses a reply as soon as it is
    /// known to be too long.
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
    /// STARTTLS failed (data injected after the 220, or the handshake
    /// failed or timed out), or the handshake that opens an implicit TLS
    /// connection failed or timed out (then nothing was sent in
    /// plaintext).
    #[error("TLS failed: {0}")]
    StartTls(#[from] StartTlsError),
    /// The machine is on implicit TLS (`ClientConfig::implicit_tls`) but
    /// [`RunOptions::tls`] is `None`: there is no handshake to run, and the
    /// session must not go on in plaintext while the machine believes it
    /// is encrypted. [`run`] returns this before it sends anything.
    #[error("implicit TLS is on but no TLS configuration is given")]
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

/// How long to wait when the machine names no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Runs one client session to its end (the machine closed, after QUIT or a
/// refusal, or after the server's `421`, which the handler sees as
/// [`ClientEvent::ServiceClosing`]). The machine must be new: it waits for
/// the server's greeting.
///
/// # Implicit TLS
///
/// When the machine's configuration has `implicit_tls` on (RFC 8314 §3,
/// the submissions port 465), the connection is encrypted from its first
/// byte: `run` first runs the rustls client handshake with
/// [`RunOptions::tls`] over `stream` (checking the server's certificate
/// against the name given there), within
/// [`RunOptions::handshake_timeout`] in all, and then reads the greeting
/// over TLS. The machine never sends STARTTLS and may authenticate at
/// once. A handshake that fails or times out (a server that speaks
/// plaintext, or none at all) ends the run with [`RunError::StartTls`]
/// before any SMTP byte was sent; without TLS options `run` sends nothing
/// and returns [`RunError::ImplicitTlsNotConfigured`].
///
/// ```no_run
/// use std::net::TcpStream;
/// use std::sync::Arc;
///
/// use smtp_proto_blocking::client::{run, ClientHandler, RunOptions};
/// use smtp_proto_blocking::rustls;
/// use smtp_proto_blocking::rustls::pki_types::ServerName;
/// use smtp_proto_blocking::smtp_proto::client::{Client, ClientConfig};
/// use smtp_proto_blocking::smtp_proto::command::Domain;
///
/// /// Runs one session with the server's submissions port.
/// fn submit<H: ClientHandler>(
///     tls: Arc<rustls::ClientConfig>,
///     handler: &mut H,
/// ) -> Result<(), Box<dyn std::error::Error>> {
///     let config =
///         ClientConfig::new(Domain::new("client.example.net")?).with_implicit_tls(true);
///     let mut client = Client::new(config);
///     let mut options = RunOptions::default();
///     options.tls = Some((tls, ServerName::try_from("mail.example.com")?));
///     let socket = TcpStream::connect("mail.example.com:465")?;
///     run(socket, &mut client, handler, &options)?;
///     Ok(())
/// }
/// ```
///
/// # Errors
/// See [`RunError`]. After an error the connection is dropped; nothing
/// more is sent.
///
/// A configuration the machine cannot use (see `ClientConfig::check`: a
/// hello domain that is not ASCII) returns
/// `RunError::Client(ClientError::Config(_))` before anything is sent, an
/// implicit-TLS handshake included.
///
/// When a write fails because the server closed the connection (any
/// write: EHLO, STARTTLS, AUTH, the pipelined MAIL / RCPT / DATA group, a
/// piece of the body or its end, BDAT, QUIT), the driver reads what the
/// server sent before and hands it to the machine, and the handler gets
/// the events the machine makes of it; nothing more is sent (commands the
/// handler asks for meanwhile are dropped). So a server that answers
/// `421 4.7.0 Too many connections, closing` and closes before the
/// client's next write is seen as [`ClientEvent::ServiceClosing`]
/// (RFC 5321 §3.8), not as a broken pipe. In the body, the body is ended
/// first, so the handler sees the server's reply as the message's verdict
/// (RFC 5321 §4.2.5). The run then ends with `Ok(())` if a reply ended
/// the session (a `421`, as after any `421`), with
/// [`RunError::PeerClosed`] after other replies (a `554` to MAIL, a `552`
/// to the message), and with the write's [`RunError::Io`] if the handler
/// was told of no reply. The server's `220` to STARTTLS ends the look
/// (the event is the driver's, and the handler does not see it): what
/// follows it before a handshake is never taken as a reply.
///
/// That look takes at most 2 seconds in all, or the machine's timeout for
/// the reply it waits for if that is shorter: one deadline bounds all its
/// reads (at most 16), over TLS each read as a whole, however many socket
/// reads rustls needs for a record. The server has closed or reset the
/// connection, so what it sent before has already arrived; a peer that
/// keeps its side open and sends nothing, or trickles a TLS record,
/// cannot hold the run longer. Between BDAT pieces, a server seen to close (over TLS
/// also without close_notify) is handled the same way, and the run ends
/// with [`RunError::PeerClosed`] if the handler was told of no reply.
///
/// Each write (a command, a pipelined group, one body piece) must be done
/// within the machine's timeout for the phase it belongs to (the last one
/// it named while it names none), counted from its start, as each read
/// must: one deadline bounds all the socket writes it takes, so a server
/// that takes the bytes a few at a time cannot stretch it. A write that
/// times out ends the run with [`RunError::TimedOut`] at once, without
/// waiting for replies.
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
    let mut link = Link::connect(stream, client, options)?;
    let result = drive(&mut link, client, handler, options, Until::Closed);
    if result.is_ok() {
        link.close(client);
    }
    result
}

/// A client connection between two stretches of [`drive`]: the stream
/// (over TLS once upgraded) and the buffers.
struct Link<S: Transport> {
    /// `None` once a stretch ended early on an error: the connection is
    /// dropped then, as [`run`] always did.
    stream: Option<MaybeTls<S, rustls::ClientConnection>>,
    io: Buffers,
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

impl<S: Transport> Link<S> {
    /// Checks the machine's configuration and, for implicit TLS, runs the
    /// handshake (see [`run`]). Without a TLS configuration, tells the
    /// machine it cannot start TLS (see [`RunOptions::tls`]).
    fn connect(stream: S, client: &mut Client, options: &RunOptions) -> Result<Self, RunError> {
        // The machine refuses such a configuration at its first step;
        // checked here too so that not even an implicit-TLS handshake goes
        // out.
        client.config().check().map_err(ClientError::Config)?;
        if options.tls.is_none() {
            client.set_can_start_tls(false);
        }
        let implicit = match (client.config().implicit_tls, options.tls.as_ref()) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls),
            (true, None) => return Err(RunError::ImplicitTlsNotConfigured),
        };
        let mut stream: MaybeTls<S, rustls::ClientConnection> = MaybeTls::Plain(stream);
        let mut io = Buffers {
            read_size: options.read_size.max(512),
            buf: Vec::new(),
            start: 0,
            end: 0,
            out: Vec::with_capacity(4096),
            piece: Vec::new(),
            last_wait: DEFAULT_WAIT,
        };
        // Set before an implicit-TLS handshake, which bounds its own
        // writes and then sets this one again (a transport that does not
        // tell its write timeout keeps this one for the handshake); each
        // later write sets it to what is left of its own deadline.
        let wait = io.write_wait(client);
        stream.set_write_timeout(Some(wait))?;
        if let Some((config, name)) = implicit {
            // Before the greeting, which comes over TLS.
            let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                .map_err(|e| StartTlsError::Handshake(io::Error::other(e)))?;
            stream.start_tls(conn, 0, options.handshake_timeout)?;
        }
        Ok(Self {
            stream: Some(stream),
            io,
        })
    }

    /// Reads what the server sent while the session was idle (a `421`, or
    /// its close), without waiting. Returns `false` when the server has
    /// closed the connection and sent nothing the machine has not taken.
    /// A transport that cannot read without waiting reads nothing.
    ///
    /// One read at most: the machine has not seen what it holds, so more
    /// would let a server that floods the idle session grow the buffer
    /// past its bound (see [`RunOptions::read_size`]). The rest of a reply
    /// is read with the machine taking each read ([`read_unasked`]).
    fn take_arrived(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut closed = false;
        // Bounded: only an interrupted read is tried again.
        for _ in 0..POLL_READS {
            match self.io.read(stream) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // TLS ended without close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    closed = true;
                    break;
                }
                // Nothing more has arrived (or the connection failed: the
                // next write or read tells).
                Err(_) => break,
            }
        }
        if stream.set_nonblocking(false).is_err() {
            return false;
        }
        !closed || !self.io.unconsumed().is_empty()
    }

    /// Closes the session's stream: TLS's close_notify within the write
    /// wait, then the stream is dropped.
    fn close(&mut self, client: &Client) {
        if let Some(mut stream) = self.stream.take() {
            let _ =
                stream.close_notify_by(instant_after(Instant::now(), self.io.write_wait(client)));
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
fn read_unasked<S: Transport>(
    link: &mut Link<S>,
    client: &mut Client,
    handler: &mut DeliveryHandler<'_>,
    options: &RunOptions,
) -> Result<(), RunError> {
    let deadline = instant_after(
        Instant::now(),
        client.config().timeouts.mail.max(Duration::from_millis(1)),
    );
    // Bounded: each round reads, and the reads end by the deadline (or
    // when the machine refuses a reply too long).
    while !client.is_closed() && !link.io.unconsumed().is_empty() {
        let Some(stream) = link.stream.as_mut() else {
            return Err(RunError::PeerClosed);
        };
        match link.io.read_by(stream, deadline) {
            Ok(0) => return Err(RunError::PeerClosed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(RunError::TimedOut),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // TLS ended without close_notify.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(RunError::PeerClosed),
            Err(e) => return Err(e.into()),
        }
        drive(link, client, handler, options, Until::Idle)?;
    }
    Ok(())
}

/// Runs the session over `link` until `until`: reads the server's
/// replies, feeds the machine, hands its events to `handler`, writes what
/// it sends, and upgrades the stream after STARTTLS. [`run`] is one
/// stretch to the session's end; a [`Connection`] runs one per message.
fn drive<S, H>(
    link: &mut Link<S>,
    client: &mut Client,
    handler: &mut H,
    options: &RunOptions,
    until: Until,
) -> Result<(), RunError>
where
    S: Transport,
    H: ClientHandler,
{
    let Some(mut stream) = link.stream.take() else {
        return Err(RunError::PeerClosed);
    };
    let io = &mut link.io;
    // When the wait for the server's next reply runs out: set when the
    // driver starts to wait, after its commands went out, and cleared
    // only when a reply is taken (the machine consumes whole replies) or
    // something is sent, so bytes of a reply that never ends (over TLS:
    // each socket read of one record) do not extend it.
    let mut deadline: Option<Instant> = None;
    let result = loop {
        let step = match client.handle_input(io.unconsumed()) {
            Ok(step) => step,
            Err(e) => break Err(e.into()),
        };
        let consumed = step.consumed;
        if consumed > 0 || !matches!(step.outcome, Outcome::NeedInput) {
            deadline = None;
        }
        match step.outcome {
            Outcome::Event(ClientEvent::StartTls) => {
                io.start += consumed;
                io.compact();
                // Not a write after which replies are read: the machine
                // waits for the handshake, and bytes after the 220 are
                // plaintext injected before it (refused by `start_tls`,
                // never taken as replies).
                write_out(&mut stream, client, io)?;
                let Some((config, name)) = options.tls.as_ref() else {
                    break Err(
                        StartTlsError::Handshake(io::Error::other("no TLS configured")).into(),
                    );
                };
                let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| StartTlsError::Handshake(io::Error::other(e)))?;
                stream.start_tls(conn, io.unconsumed().len(), options.handshake_timeout)?;
                client.tls_established()?;
            }
            Outcome::Event(ClientEvent::SendBody) => {
                io.start += consumed;
                handler.on_event(client, ClientEvent::SendBody)?;
                if let Err(e) = write_body(&mut stream, client, handler, io) {
                    break Err(e);
                }
            }
            Outcome::Event(event) => {
                handler.on_event(client, event)?;
                io.start += consumed;
            }
            Outcome::Transmit => {
                io.start += consumed;
                send_or_recover(&mut stream, client, handler, io)?;
            }
            // After a refused BDAT chunk too: the machine asks for the
            // replies still due to the chunks sent after it.
            Outcome::NeedInput => {
                io.start += consumed;
                if client.has_transmit() {
                    // The wait for the replies starts after this write.
                    deadline = None;
                }
                send_or_recover(&mut stream, client, handler, io)?;
                if client.is_closed() {
                    break Ok(());
                }
                let until = *deadline
                    .get_or_insert_with(|| instant_after(Instant::now(), read_wait(client)));
                match io.read_by(&mut stream, until) {
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
            }
            Outcome::Paused => {
                io.start += consumed;
                send_or_recover(&mut stream, client, handler, io)?;
                if client.is_closed() {
                    break Ok(());
                }
                if until == Until::Idle && client.is_idle() {
                    break Ok(());
                }
                break Err(RunError::Stalled);
            }
            Outcome::Closed => {
                io.start += consumed;
                send_or_recover(&mut stream, client, handler, io)?;
                break Ok(());
            }
            _ => io.start += consumed,
        }
    };
    link.stream = Some(stream);
    result
}

/// The connection's buffers, and its write wait. `buf[start..end]`
/// holds the bytes read and not yet consumed by the machine; consumed
/// bytes are dropped from the front once per read, not once per reply.
/// `buf` stays initialised past `end`, so a read does not clear its room
/// first.
struct Buffers {
    read_size: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    piece: Vec<u8>,
    /// The machine's timeout, or the last one it named while it names
    /// none: how long the next write may take.
    last_wait: Duration,
}

impl Buffers {
    fn unconsumed(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// How long the next write may take in all: the machine's timeout for
    /// the phase it is in (see `last_wait`).
    fn write_wait(&mut self, client: &Client) -> Duration {
        if let Some(t) = client.timeout() {
            self.last_wait = t.max(Duration::from_millis(1));
        }
        self.last_wait
    }

    /// One read after the unconsumed bytes; returns what `read` returned.
    fn read<R: Read>(&mut self, stream: &mut R) -> io::Result<usize> {
        self.read_with(|room| stream.read(room))
    }

    /// One read after the unconsumed bytes, done by `deadline` however
    /// many socket reads it takes (over TLS, rustls reads until it has a
    /// whole record; see [`MaybeTls::read_by`]); returns what the read
    /// returned.
    fn read_by<S: Transport>(
        &mut self,
        stream: &mut MaybeTls<S, rustls::ClientConnection>,
        deadline: Instant,
    ) -> io::Result<usize> {
        self.read_with(|room| stream.read_by(room, deadline))
    }

    /// Gives `read` the room after the unconsumed bytes, and keeps what it
    /// read.
    fn read_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.compact();
        let want = self.end + self.read_size;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = read(&mut self.buf[self.end..want])?;
        self.end += n.min(self.read_size);
        Ok(n)
    }
}

/// How many reads one look for pipelined chunk replies may make.
const POLL_READS: usize = 16;

/// How many unconsumed bytes may wait before looking for replies stops
/// reading (the machine reads nothing while it writes a DATA body).
const POLL_LIMIT: usize = 64 * 1024;

/// How many reads the look for the server's last reply after a failed
/// write may make.
const LAST_REPLY_READS: usize = 16;

/// The longest the look for the server's last replies after a failed
/// write may take, all its reads together (less when the machine's
/// timeout is shorter). The server has closed or reset the connection by
/// then, so what it sent before has already arrived: the bound only stops
/// a peer that keeps the connection open, or trickles a TLS record, from
/// holding the run.
const LAST_REPLY_WAIT: Duration = Duration::from_secs(2);

/// Writes body pieces while the machine takes them: to the end of the
/// message, to a BDAT chunk that must be answered before the next one
/// (without PIPELINING; the machine gives [`ClientEvent::SendBody`] again
/// after the reply), or to a refused chunk.
fn write_body<S, H>(
    stream: &mut MaybeTls<S, rustls::ClientConnection>,
    client: &mut Client,
    handler: &mut H,
    io: &mut Buffers,
) -> Result<(), RunError>
where
    S: Transport,
    H: ClientHandler,
{
    // Bounded by the handler: each round takes one piece from it.
    loop {
        if !client.wants_body() {
            return Ok(());
        }
        io.piece.clear();
        if !handler.next_body_piece(&mut io.piece)? {
            client.end_body()?;
            return send_or_recover(stream, client, handler, io);
        }
        if io.piece.is_empty() {
            continue;
        }
        client.send_body(&io.piece)?;
        send_or_recover(stream, client, handler, io)?;
        if client.wants_body() && !take_replies(stream, client, handler, io)? {
            return Ok(());
        }
    }
}

/// Sends what the machine has. When the write fails (the server may have
/// answered and closed: a `421`, a refusal of MAIL or of the message),
/// reads what the server sent before and hands it to the machine, so the
/// handler sees the server's reply; see [`run`]. After such a failure
/// this returns `Ok` only when the session has ended.
fn send_or_recover<S, H>(
    stream: &mut MaybeTls<S, rustls::ClientConnection>,
    client: &mut Client,
    handler: &mut H,
    io: &mut Buffers,
) -> Result<(), RunError>
where
    S: Transport,
    H: ClientHandler,
{
    match write_out(stream, client, io) {
        Ok(()) => Ok(()),
        // The server takes nothing: no reply is waited for.
        Err(error) if is_write_timeout(&error) => Err(RunError::TimedOut),
        Err(error) => connection_lost(stream, client, handler, io, error.into()),
    }
}

/// The connection failed (`error`: a write failed, or between body pieces
/// the server closed or a read failed): reads what the server sent before
/// and hands it to the machine, so the handler sees the server's last
/// replies. Nothing more is sent: in the body, the body is ended first, so
/// the machine takes the replies as the ones to the message; what the
/// machine has to send (commands the handler asks for meanwhile) is
/// dropped. The server's `220` to STARTTLS ends the look (there is no
/// handshake to run, and the bytes after it are not replies). All the
/// look's reads end by one deadline, [`LAST_REPLY_WAIT`] away at most.
/// See [`run`] for the result.
fn connection_lost<S, H>(
    stream: &mut MaybeTls<S, rustls::ClientConnection>,
    client: &mut Client,
    handler: &mut H,
    io: &mut Buffers,
    error: RunError,
) -> Result<(), RunError>
where
    S: Transport,
    H: ClientHandler,
{
    io.out.clear();
    drop_unsent_tls(stream);
    let mut reported = false;
    // One deadline for the whole look, set before its first read (once
    // the body is ended, so the machine's timeout is the one for the reply
    // it waits for).
    let mut deadline = None;
    for _ in 0..LAST_REPLY_READS {
        let (events, stop) = hand_replies(client, handler, io, Sending::Stopped)?;
        reported |= events;
        if stop != Stop::NeedInput {
            break;
        }
        let by = *deadline.get_or_insert_with(|| {
            instant_after(Instant::now(), read_wait(client).min(LAST_REPLY_WAIT))
        });
        match io.read_by(stream, by) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of time, TLS ended without close_notify
            // (`UnexpectedEof`), or the connection failed: what the server
            // sent before has been read.
            Err(_) => break,
        }
    }
    if client.is_closed() {
        // A reply closed the session (the server's 421, which the handler
        // had as `ServiceClosing`): the run ends as after any 421.
        return Ok(());
    }
    if reported {
        return Err(RunError::PeerClosed);
    }
    Err(error)
}

/// How many times [`drop_unsent_tls`] may take records from rustls.
const UNSENT_ROUNDS: usize = 64;

/// Drops the TLS records a failed write left unsent. rustls sends what it
/// holds before each read, and would fail with the write's error again,
/// so the replies that arrived before the failure could not be read.
fn drop_unsent_tls<S: Transport>(stream: &mut MaybeTls<S, rustls::ClientConnection>) {
    if let MaybeTls::Tls(tls) = stream {
        for _ in 0..UNSENT_ROUNDS {
            if !tls.conn.wants_write() || tls.conn.write_tls(&mut io::sink()).is_err() {
                break;
            }
        }
    }
}

/// Between body pieces: reads the replies that have arrived without
/// waiting, and hands them to the machine, so that the replies to
/// pipelined BDAT chunks cannot fill the socket buffers while the body is
/// written. Returns `false` when the body must stop (a chunk was refused,
/// the server closed, or the session ended).
fn take_replies<S, H>(
    stream: &mut MaybeTls<S, rustls::ClientConnection>,
    client: &mut Client,
    handler: &mut H,
    io: &mut Buffers,
) -> Result<bool, RunError>
where
    S: Transport,
    H: ClientHandler,
{
    if stream.set_nonblocking(true).is_err() {
        // The transport cannot read without waiting: the replies are read
        // after the body.
        return Ok(true);
    }
    let mut closed = false;
    let mut failed = None;
    for _ in 0..POLL_READS {
        if io.unconsumed().len() >= POLL_LIMIT {
            break;
        }
        match io.read(stream) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => break,
            // TLS ended without close_notify: the server closed, as in
            // the session loop.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                closed = true;
                break;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    stream.set_nonblocking(false)?;
    if closed {
        return connection_lost(stream, client, handler, io, RunError::PeerClosed).map(|()| false);
    }
    if let Some(e) = failed {
        return connection_lost(stream, client, handler, io, e.into()).map(|()| false);
    }
    let mut go_on = true;
    // Bounded: each round consumes replies or stops.
    loop {
        let (events, stop) = hand_replies(client, handler, io, Sending::On)?;
        // Pipelined chunks that are accepted give no event; any event
        // here (a refused chunk, 421) ends the body.
        go_on &= !events;
        if stop != Stop::Transmit {
            break;
        }
        send_or_recover(stream, client, handler, io)?;
    }
    Ok(go_on && client.wants_body())
}

/// Where [`hand_replies`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The machine needs more input.
    NeedInput,
    /// The machine has something to send.
    Transmit,
    /// Anything else (paused, closed, the server's 220 to STARTTLS).
    Other,
}

/// Whether [`hand_replies`] runs on a connection that can still send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// The caller sends what the machine has.
    On,
    /// The connection failed: nothing more is sent. The body is ended
    /// (the replies then answer the message) and what the machine has to
    /// send is dropped.
    Stopped,
}

/// Hands the unconsumed replies to the machine, and every event it gives
/// to the handler, until the machine gives something other than an
/// event. The server's `220` to STARTTLS stops it too, and is not handed
/// over (the handshake is the driver's). Returns whether any event came,
/// and where it stopped.
fn hand_replies<H: ClientHandler>(
    client: &mut Client,
    handler: &mut H,
    io: &mut Buffers,
    sending: Sending,
) -> Result<(bool, Stop), RunError> {
    let mut events = false;
    // Bounded: each step consumes a reply or stops.
    loop {
        if sending == Sending::Stopped {
            // Refused when the machine already waits for a chunk's reply
            // (BDAT): the replies then answer the chunks.
            if client.wants_body() {
                let _ = client.end_body();
            }
            client.poll_transmit(&mut io.out);
            io.out.clear();
        }
        let step = client.handle_input(io.unconsumed())?;
        let consumed = step.consumed;
        let stop = match step.outcome {
            Outcome::Event(ClientEvent::StartTls) => Stop::Other,
            Outcome::Event(event) => {
                events = true;
                handler.on_event(client, event)?;
                io.start += consumed;
                continue;
            }
            Outcome::NeedInput => Stop::NeedInput,
            Outcome::Transmit => Stop::Transmit,
            _ => Stop::Other,
        };
        io.start += consumed;
        if sending == Sending::Stopped {
            client.poll_transmit(&mut io.out);
            io.out.clear();
        }
        return Ok((events, stop));
    }
}

/// How long the next read may wait: the machine's timeout for what it
/// waits for, or [`DEFAULT_WAIT`] when it names none.
fn read_wait(client: &Client) -> Duration {
    client
        .timeout()
        .unwrap_or(DEFAULT_WAIT)
        .max(Duration::from_millis(1))
}

/// True for the errors a read gives when its timeout expires
/// (`WouldBlock` on Unix, `TimedOut` on Windows).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Writes what the machine has to send, all of it within the timeout of
/// the phase the machine is in, counted from now: one deadline for the
/// whole write, however many socket writes it takes (see
/// [`MaybeTls::write_all_by`]). A write that runs out of time (a socket
/// write timeout is [`ErrorKind::WouldBlock`] on Unix,
/// [`ErrorKind::TimedOut`] on Windows) fails with a write timeout
/// ([`is_write_timeout`]).
fn write_out<S: Transport>(
    stream: &mut MaybeTls<S, rustls::ClientConnection>,
    client: &mut Client,
    io: &mut Buffers,
) -> io::Result<()> {
    client.poll_transmit(&mut io.out);
    if io.out.is_empty() {
        return Ok(());
    }
    let wait = io.write_wait(client);
    let written = stream.write_all_by(&io.out, instant_after(Instant::now(), wait));
    io.out.clear();
    written.map_err(|e| on_write_timeout(e, wait))
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
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        self.delivery
            .on_event(client, &event)
            .map_err(io::Error::other)
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
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
/// use std::net::TcpStream;
///
/// use smtp_proto_blocking::client::{send, RunOptions};
/// use smtp_proto_blocking::smtp_proto::client::{Client, ClientConfig, Delivery, Envelope, TlsPolicy};
/// use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
///
/// fn deliver(message: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
///     let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net")?))
///         .recipient(ForwardPath::Mailbox(Mailbox::parse("bob@example.org")?))
///         .with_size(message.len() as u64);
///     let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
///     let stream = TcpStream::connect("mx.example.org:25")?;
///     let mut client = Client::new(config);
///     let delivery = Delivery::new(envelope);
///     let report = match send(stream, &mut client, delivery, message, &RunOptions::default()) {
///         Ok(report) => report,
///         Err(e) => e.report,
///     };
///     for r in report.to_retry() {
///         println!("retry {:?}: {:?}", r.recipient.path, r.outcome);
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
/// use std::net::TcpStream;
///
/// use smtp_proto_blocking::client::{send, RunError, RunOptions};
/// use smtp_proto_blocking::smtp_proto::client::{
///     Client, ClientConfig, Delivery, DeliveryReport, Envelope, TlsPolicy,
/// };
/// use smtp_proto_blocking::StartTlsError;
///
/// fn deliver(
///     config: ClientConfig,
///     envelope: Envelope<'static>,
///     message: &[u8],
///     options: &RunOptions,
/// ) -> std::io::Result<DeliveryReport> {
///     let stream = TcpStream::connect("mx.example.org:25")?;
///     let mut client = Client::new(config.clone());
///     let delivery = Delivery::new(envelope.clone());
///     let failed = match send(stream, &mut client, delivery, message, options) {
///         Ok(report) => return Ok(report),
///         Err(failed) => failed,
///     };
///     let handshake = matches!(failed.error, RunError::StartTls(StartTlsError::Handshake(_)));
///     if !(handshake && config.tls == TlsPolicy::Opportunistic && !envelope.require_tls) {
///         return Ok(failed.report);
///     }
///     // Once, in plain text, over a new connection.
///     let stream = TcpStream::connect("mx.example.org:25")?;
///     let mut client = Client::new(config.with_tls(TlsPolicy::Off));
///     let delivery = Delivery::new(envelope);
///     Ok(match send(stream, &mut client, delivery, message, options) {
///         Ok(report) => report,
///         Err(failed) => failed.report,
///     })
/// }
/// ```
///
/// [`NotAttempted::ConnectionLost`]: smtp_proto::client::NotAttempted::ConnectionLost
/// [`RecipientOutcome::Unknown`]: smtp_proto::client::RecipientOutcome::Unknown
pub fn send<S: Transport>(
    stream: S,
    client: &mut Client,
    delivery: Delivery,
    message: &[u8],
    options: &RunOptions,
) -> Result<DeliveryReport, SendError> {
    let mut handler = DeliveryHandler::new(delivery, message);
    let end = run(stream, client, &mut handler, options);
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
/// is sent (with a [`Transport`] that can read without waiting; see
/// [`Transport::set_nonblocking`]): that send fails with
/// [`RunError::PeerClosed`], its recipients [`NotAttempted::ConnectionLost`].
///
/// ```no_run
/// use std::net::TcpStream;
///
/// use smtp_proto_blocking::client::{Connection, RunOptions};
/// use smtp_proto_blocking::smtp_proto::client::{Client, ClientConfig, Envelope, TlsPolicy};
/// use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
///
/// fn deliver_all(messages: &[(&str, Vec<u8>)]) -> Result<(), Box<dyn std::error::Error>> {
///     let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
///     let stream = TcpStream::connect("mx.example.org:25")?;
///     let mut conn = Connection::open(stream, Client::new(config), RunOptions::default())?;
///     for (to, message) in messages {
///         let sender = Mailbox::parse("alice@example.net")?.into_owned();
///         let envelope = Envelope::new(ReversePath::Mailbox(sender))
///             .recipient(ForwardPath::Mailbox(Mailbox::parse(to)?.into_owned()))
///             .with_size(message.len() as u64);
///         let report = match conn.send(envelope, message) {
///             Ok(report) => report,
///             Err(e) => e.report,
///         };
///         for r in report.to_retry() {
///             println!("retry {:?}: {:?}", r.recipient.path, r.outcome);
///         }
///     }
///     conn.quit()?;
///     Ok(())
/// }
/// ```
///
/// [`RecipientOutcome::NotAttempted`]: smtp_proto::client::RecipientOutcome::NotAttempted
pub struct Connection<S: Transport> {
    link: Link<S>,
    client: Client,
    options: RunOptions,
    /// Why the session is over, once it is.
    ended: Option<NotAttempted>,
}

impl<S: Transport> std::fmt::Debug for Connection<S> {
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

impl<S: Transport> Connection<S> {
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
    pub fn open(
        stream: S,
        mut client: Client,
        options: RunOptions,
    ) -> Result<Self, ConnectionError> {
        let mut link = Link::connect(stream, &mut client, &options)?;
        let mut handler = DeliveryHandler::new(no_message().keep_open(), &[]);
        let end = drive(&mut link, &mut client, &mut handler, &options, Until::Idle);
        let mut conn = Self {
            link,
            client,
            options,
            ended: None,
        };
        conn.settle(&end, &handler);
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
    pub fn authenticate(&mut self, credentials: AuthCredentials) -> Result<(), ConnectionError> {
        self.login(no_message().with_auth(credentials))
    }

    /// [`Connection::authenticate`] with a custom SASL mechanism whose
    /// challenges `responder` answers (see [`Delivery::with_auth_responder`]).
    ///
    /// # Errors
    /// As [`Connection::authenticate`].
    pub fn authenticate_with_responder<R>(
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
    }

    fn login(&mut self, delivery: Delivery) -> Result<(), ConnectionError> {
        if let Some(reason) = &self.ended {
            return Err(ConnectionError::Refused(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(delivery.keep_open(), &[]);
        let end = self.exchange(&mut handler);
        self.settle(&end, &handler);
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
    pub fn send(
        &mut self,
        delivery: impl Into<Delivery>,
        message: &[u8],
    ) -> Result<DeliveryReport, SendError> {
        let delivery = delivery.into().keep_open();
        if let Some(reason) = &self.ended {
            return Ok(delivery.abandon(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(delivery, message);
        let end = self.exchange(&mut handler);
        self.settle(&end, &handler);
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
    pub fn quit(mut self) -> Result<(), RunError> {
        // A server that closed the idle connection (its own idle timeout)
        // has ended the session: there is no one to say QUIT to.
        if self.ended.is_some() || self.client.is_closed() || !self.link.take_arrived() {
            self.link.close(&self.client);
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
        );
        if end.is_ok() {
            self.link.close(&self.client);
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
    pub fn noop(&mut self) -> Result<(), ConnectionError> {
        if let Some(reason) = &self.ended {
            return Err(ConnectionError::Refused(reason.clone()));
        }
        let mut handler = DeliveryHandler::new(no_message().keep_open(), &[]);
        let end = self.check(&mut handler);
        self.settle(&end, &handler);
        end?;
        match &self.ended {
            Some(reason) => Err(ConnectionError::Refused(reason.clone())),
            None => Ok(()),
        }
    }

    /// [`Connection::noop`]'s exchange.
    fn check(&mut self, handler: &mut DeliveryHandler<'_>) -> Result<(), RunError> {
        if !self.link.take_arrived() {
            return Err(RunError::PeerClosed);
        }
        let (link, client, options) = (&mut self.link, &mut self.client, &self.options);
        drive(link, client, handler, options, Until::Idle)?;
        read_unasked(link, client, handler, options)?;
        if client.is_closed() {
            return Ok(());
        }
        client.noop()?;
        drive(link, client, handler, options, Until::Idle)
    }

    /// True while the session can carry mail: it has not ended (no `421`,
    /// no failed connection, not closed). The server's `LIMITS MAILMAX`
    /// (RFC 9422) is not counted here: once the session has had that many
    /// transactions it stays open, and every later message is
    /// [`NotAttempted::TransactionLimit`] without anything sent (see
    /// [`Client::limits`]).
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.ended.is_none() && !self.client.is_closed()
    }

    /// Why the session ended, once it has: the reason every recipient of
    /// a later [`Connection::send`] gets.
    #[must_use]
    pub fn end_reason(&self) -> Option<&NotAttempted> {
        self.ended.as_ref()
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
    fn exchange(&mut self, handler: &mut DeliveryHandler<'_>) -> Result<(), RunError> {
        if !self.link.take_arrived() {
            return Err(RunError::PeerClosed);
        }
        let (link, client, options) = (&mut self.link, &mut self.client, &self.options);
        drive(link, client, handler, options, Until::Idle)?;
        read_unasked(link, client, handler, options)?;
        if !handler.delivery.is_finished() {
            handler.delivery.start(client)?;
            drive(link, client, handler, options, Until::Idle)?;
        }
        if handler.delivery.is_finished() || client.is_closed() {
            Ok(())
        } else {
            Err(RunError::Stalled)
        }
    }

    /// After a stretch of the session: when it has ended (an error, or the
    /// machine closed), records why and closes the stream (with TLS's
    /// close_notify when the session ended cleanly).
    fn settle(&mut self, end: &Result<(), RunError>, handler: &DeliveryHandler<'_>) {
        let reason = match end {
            Err(_) => NotAttempted::ConnectionLost,
            Ok(()) => match handler.delivery.session_end(&self.client) {
                Some(reason) => reason,
                None => return,
            },
        };
        self.ended = Some(reason);
        if end.is_ok() {
            self.link.close(&self.client);
        }
        self.link.stream = None;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Write;

    use smtp_proto::client::{ClientConfig, TlsPolicy};
    use smtp_proto::command::Domain;

    use super::*;

    /// A stream whose peer has sent `arrived`, one chunk per read; once it
    /// is read, a read would wait (`WouldBlock` while non-blocking).
    struct Arrived {
        arrived: VecDeque<Vec<u8>>,
        nonblocking: bool,
    }

    impl Read for Arrived {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.arrived.front_mut() else {
                assert!(self.nonblocking, "a blocking read would wait");
                return Err(ErrorKind::WouldBlock.into());
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.arrived.pop_front();
            }
            Ok(n)
        }
    }

    impl Write for Arrived {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Arrived {
        fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }

        fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
            self.nonblocking = nonblocking;
            Ok(())
        }
    }

    #[test]
    fn what_arrived_while_idle_is_taken_one_read_at_a_time() {
        let config = ClientConfig::new(Domain::new("client.example.net").expect("domain"))
            .with_tls(TlsPolicy::Off);
        let mut client = Client::new(config);
        let options = RunOptions {
            read_size: 512,
            ..RunOptions::default()
        };
        // A server that floods the idle session: many reads' worth of
        // reply lines.
        let line = format!("250-{}\r\n", "x".repeat(506));
        let arrived = (0..64).map(|_| line.clone().into_bytes()).collect();
        let stream = Arrived {
            arrived,
            nonblocking: false,
        };
        let mut link = Link::connect(stream, &mut client, &options).expect("link");
        assert!(link.take_arrived());
        // One read: the machine takes it before the next.
        assert_eq!(link.io.unconsumed().len(), line.len());
        assert!(link.io.unconsumed() == line.as_bytes());
        assert!(link.io.buf.len() <= options.read_size);
        // Blocking again.
        let Some(MaybeTls::Plain(stream)) = &link.stream else {
            panic!("the stream is kept, in plaintext")
        };
        assert!(!stream.nonblocking);
        assert_eq!(stream.arrived.len(), 63);
    }
}
