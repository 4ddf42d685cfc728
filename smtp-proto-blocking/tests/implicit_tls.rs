//! Implicit TLS (RFC 8314, the submissions port 465): the blocking server
//! and client drivers run the TLS handshake before the greeting, against
//! each other and against hand-written peers, over loopback TCP.
//!
//! Every socket read in these tests has a read timeout and every loop a
//! count bound, so a broken driver fails a test instead of hanging it. The
//! timeouts are bounds, not performance assertions.

mod support;

use support::{
    assert_nothing_sent, bounded_timeouts, connect, event_name, read_to_close, spawn_peer,
    spawn_server, spawn_server_with_buffers, tls_configs, tls_configs_with_copies, Recorder, BOUND,
};

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::server::{ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientError, ClientEvent, ConfigError, Envelope,
    TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::sasl::SaslMechanism;
use smtp_proto_blocking::smtp_proto::server::ServerConfig;
use smtp_proto_blocking::{rustls, StartTlsError, Transport};

/// The message sent; it ends with CRLF and has no dot lines, so the server
/// stores it as it is.
const BODY: &[u8] = b"Subject: implicit\r\n\r\nsent over implicit TLS only\r\n";

/// The first octet of a TLS handshake record (ClientHello, ServerHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// The first octet of a TLS alert record.
const TLS_ALERT: u8 = 0x15;

fn other<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> io::Error {
    io::Error::other(e)
}

/// A server configuration on implicit TLS with bounded timeouts.
fn implicit_server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.implicit_tls = true;
    config
}

/// Serve options with `tls` and a handshake bounded by [`BOUND`].
fn serve_options(tls: Arc<rustls::ServerConfig>) -> ServeOptions {
    let mut options = ServeOptions::default();
    options.tls = Some(tls);
    options.handshake_timeout = BOUND;
    options
}

/// A client configuration on implicit TLS with bounded timeouts. The
/// policy requires TLS, so a machine that did not take the connection for
/// encrypted would send STARTTLS.
fn implicit_client_config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.test").expect("domain"))
        .with_tls(TlsPolicy::Required)
        .with_implicit_tls(true)
        .with_timeouts(bounded_timeouts())
}

/// Run options with `tls`, checking the name `localhost`, and a handshake
/// bounded by [`BOUND`].
fn run_options(tls: Arc<rustls::ClientConfig>) -> RunOptions {
    let mut options = RunOptions::default();
    options.tls = Some((tls, ServerName::try_from("localhost").expect("name")));
    options.handshake_timeout = BOUND;
    options
}

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The server handler of these tests: it accepts every hello, sender and
/// recipient (none starts with `nobody`), accepts AUTH as `user` /
/// `secret` only, and records what it saw.
fn submission() -> Recorder {
    Recorder::new(Some(("user", "secret")))
}

/// A client handler that authenticates with PLAIN as `user` / `secret`,
/// sends [`BODY`] to one recipient, then QUIT; it records what it saw.
#[derive(Debug, Default)]
struct Submitter {
    events: Vec<String>,
    tls_at_ready: Option<bool>,
    authenticated: bool,
    sent: bool,
    body_given: bool,
    delivered: Vec<usize>,
    closed_with: Option<u16>,
}

impl Submitter {
    fn send(&mut self, client: &mut Client) -> io::Result<()> {
        self.sent = true;
        let from = Mailbox::parse("alice@example.net").map_err(other)?;
        let to = Mailbox::parse("bob@example.com").map_err(other)?;
        let envelope =
            Envelope::new(ReversePath::Mailbox(from)).recipient(ForwardPath::Mailbox(to));
        client.send_mail(&envelope).map_err(other)
    }
}

impl ClientHandler for Submitter {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        self.events.push(event_name(&event));
        match event {
            ClientEvent::Ready => {
                self.tls_at_ready = Some(client.is_tls());
                client
                    .authenticate(
                        AuthCredentials::password("user", "secret"),
                        Some(SaslMechanism::Plain),
                    )
                    .map_err(other)?;
            }
            ClientEvent::Authenticated { .. } => {
                self.authenticated = true;
                self.send(client)?;
            }
            ClientEvent::AuthFailed { .. } => client.quit().map_err(other)?,
            ClientEvent::TransactionEnd(summary) => {
                self.delivered = summary.delivered().collect();
                client.quit().map_err(other)?;
            }
            ClientEvent::Closed { reply } => self.closed_with = Some(reply.code().get()),
            _ => {}
        }
        Ok(())
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        if self.body_given {
            return Ok(false);
        }
        self.body_given = true;
        piece.extend_from_slice(BODY);
        Ok(true)
    }
}

/// Runs a [`Submitter`] on a client for implicit TLS over a new connection
/// to `addr` with `options`; returns the result and the submitter.
fn submit_to(addr: SocketAddr, options: &RunOptions) -> (Result<(), RunError>, Submitter) {
    let mut client = Client::new(implicit_client_config());
    let mut submitter = Submitter::default();
    let result = run(connect(addr), &mut client, &mut submitter, options);
    (result, submitter)
}

/// The raw bytes one side of a connection sent and received.
#[derive(Debug, Default)]
struct Wire {
    sent: Vec<u8>,
    received: Vec<u8>,
}

/// A [`TcpStream`] that records every byte that crosses it in a [`Wire`].
struct Tap {
    inner: TcpStream,
    wire: Arc<Mutex<Wire>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = buf.get(..n).unwrap_or_default();
        self.wire
            .lock()
            .expect("wire")
            .received
            .extend_from_slice(got);
        Ok(n)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let put = buf.get(..n).unwrap_or_default();
        self.wire.lock().expect("wire").sent.extend_from_slice(put);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for Tap {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }
}

#[test]
fn implicit_tls_client_delivers_to_implicit_tls_server_with_auth_plain() {
    let (server_tls, client_tls) = tls_configs();
    let mut config = implicit_server_config();
    // Shared with a port-25 configuration: on implicit TLS it is neither
    // offered nor refused for want of a TLS configuration.
    config.starttls = true;
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    config.auth_requires_tls = true;
    let (addr, server) = spawn_server(config, serve_options(server_tls), submission());

    let wire = Arc::new(Mutex::new(Wire::default()));
    let tap = Tap {
        inner: connect(addr),
        wire: Arc::clone(&wire),
    };
    let mut client = Client::new(implicit_client_config());
    let mut submitter = Submitter::default();
    let result = run(tap, &mut client, &mut submitter, &run_options(client_tls));
    let (end, submission) = server.join().expect("server thread");

    result.expect("client run");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    // The client side.
    assert!(client.is_closed() && client.is_tls() && client.is_authenticated());
    assert_eq!(submitter.tls_at_ready, Some(true));
    assert!(submitter.authenticated, "{:?}", submitter.events);
    assert_eq!(submitter.delivered, [0]);
    assert_eq!(submitter.closed_with, Some(221));
    assert!(
        !submitter.events.iter().any(|e| e == "TlsUnavailable"),
        "{:?}",
        submitter.events
    );
    // The server side: TLS from the first EHLO, which came once (no
    // STARTTLS and second EHLO); a STARTTLS would have been refused with
    // 503 (a `Rejected` event).
    let seen = submission.seen;
    assert_eq!(seen.tls_at_hello, [true], "{:?}", seen.events);
    assert!(
        !seen
            .events
            .iter()
            .any(|e| e == "Rejected" || e == "StartTls"),
        "{:?}",
        seen.events
    );
    assert_eq!(seen.auth_mechanism, Some(SaslMechanism::Plain));
    assert_eq!(seen.auth_user.as_deref(), Some("user"));
    assert_eq!(seen.auth_failures, 0);
    assert_eq!(seen.message, BODY);
    assert_eq!(seen.message_ends, 1);
    assert!(seen.tls_at_end && seen.auth_at_end);
    // The wire: TLS records both ways from the first byte, and no SMTP in
    // the clear.
    let wire = wire.lock().expect("wire");
    assert_eq!(wire.sent.first(), Some(&TLS_HANDSHAKE), "ClientHello first");
    assert_eq!(
        wire.received.first(),
        Some(&TLS_HANDSHAKE),
        "ServerHello first"
    );
    for plain in [
        &b"EHLO client.test"[..],
        b"AUTH PLAIN",
        b"MAIL FROM:<alice@example.net>",
        b"STARTTLS",
        b"sent over implicit TLS only",
    ] {
        assert!(
            !contains(&wire.sent, plain),
            "{} in the clear",
            String::from_utf8_lossy(plain)
        );
    }
    for plain in [&b"220 mx.test"[..], b"mx.test ESMTP", b"235 "] {
        assert!(
            !contains(&wire.received, plain),
            "{} in the clear",
            String::from_utf8_lossy(plain)
        );
    }
}

#[test]
fn plaintext_client_gets_no_greeting_from_an_implicit_tls_server() {
    let (server_tls, _) = tls_configs();
    let (addr, server) = spawn_server(
        implicit_server_config(),
        serve_options(server_tls),
        submission(),
    );
    let mut peer = connect(addr);
    peer.write_all(b"EHLO plain.test\r\n").expect("ehlo");
    let mut got = Vec::new();
    read_to_close(&mut peer, &mut got);
    let (end, submission) = server.join().expect("server thread");

    assert!(
        !got.starts_with(b"220"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        !contains(&got, b"220 ") && !contains(&got, b"250"),
        "no SMTP reply: {:?}",
        String::from_utf8_lossy(&got)
    );
    // At most a TLS alert about the record that is not one.
    if let Some(first) = got.first() {
        assert_eq!(*first, TLS_ALERT, "{got:?}");
    }
    // The handshake failed on the plaintext at once (not by its timeout).
    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e:?}");
        }
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    assert!(submission.seen.events.is_empty(), "{:?}", submission.seen);
}

#[test]
fn serve_refuses_implicit_tls_without_tls_config_and_sends_nothing() {
    // Whether or not the configuration also asks for STARTTLS, the error
    // names implicit TLS.
    for starttls in [false, true] {
        let mut config = implicit_server_config();
        config.starttls = starttls;
        let (addr, server) = spawn_server(config, ServeOptions::default(), submission());
        let mut peer = connect(addr);
        let mut got = Vec::new();
        let closed = read_to_close(&mut peer, &mut got);
        let (end, submission) = server.join().expect("server thread");

        assert!(
            matches!(end, Err(ServeError::ImplicitTlsNotConfigured)),
            "starttls {starttls}: {end:?}"
        );
        assert_nothing_sent(closed, &got, "server");
        assert!(submission.seen.events.is_empty());
    }
}

#[test]
fn run_refuses_implicit_tls_without_tls_options_and_sends_nothing() {
    // A plaintext server: a client that went on without TLS would answer
    // its greeting with EHLO.
    let (addr, fake) = spawn_peer(move |mut s| {
        let _ = s.write_all(b"220 fake.test ESMTP\r\n");
        let mut got = Vec::new();
        let closed = read_to_close(&mut s, &mut got);
        (closed, got)
    });
    let (result, submitter) = submit_to(addr, &RunOptions::default());
    let (closed, got) = fake.join().expect("fake server");

    assert!(
        matches!(result, Err(RunError::ImplicitTlsNotConfigured)),
        "{result:?}"
    );
    assert_nothing_sent(closed, &got, "client");
    assert!(submitter.events.is_empty(), "{:?}", submitter.events);
}

/// A hello domain in UTF-8 (U-labels) cannot go out in EHLO (RFC 5321
/// §4.1.1.1): `run` refuses the configuration before anything is sent,
/// not even the ClientHello of implicit TLS.
#[test]
fn run_refuses_a_utf8_hello_domain_before_the_handshake() {
    let (_, client_tls) = tls_configs();
    let (addr, peer) = spawn_peer(move |mut s| {
        let mut got = Vec::new();
        let closed = read_to_close(&mut s, &mut got);
        (closed, got)
    });
    let config = ClientConfig::new(Domain::new("b\u{fc}cher.example").expect("domain"))
        .with_tls(TlsPolicy::Required)
        .with_implicit_tls(true)
        .with_timeouts(bounded_timeouts());
    let mut client = Client::new(config);
    let mut submitter = Submitter::default();
    let result = run(
        connect(addr),
        &mut client,
        &mut submitter,
        &run_options(client_tls),
    );
    let (closed, got) = peer.join().expect("peer");
    assert!(
        matches!(
            result,
            Err(RunError::Client(ClientError::Config(
                ConfigError::NonAsciiHelloDomain
            )))
        ),
        "{result:?}"
    );
    assert_nothing_sent(closed, &got, "client");
    assert!(submitter.events.is_empty(), "{:?}", submitter.events);
}

#[test]
fn silent_client_ends_the_implicit_tls_handshake_after_its_timeout() {
    let (server_tls, _) = tls_configs();
    let mut options = serve_options(server_tls);
    options.handshake_timeout = Duration::from_millis(200);
    let (addr, server) = spawn_server(implicit_server_config(), options, submission());
    // Connects and sends nothing, reading until the server gives up.
    let mut peer = connect(addr);
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let (end, submission) = server.join().expect("server thread");

    // Nothing sent, not even a greeting.
    assert_nothing_sent(closed, &got, "server");
    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            // TimedOut, not the WouldBlock of a Unix socket read timeout.
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a timed-out handshake, got {other:?}"),
    }
    assert!(submission.seen.events.is_empty());
}

#[test]
fn client_that_never_reads_ends_the_implicit_tls_handshake_after_its_timeout() {
    // A server flight of some 200 certificates, far more than the small
    // socket buffers on both sides hold.
    let (server_tls, client_tls) = tls_configs_with_copies(200);
    let mut config = implicit_server_config();
    // The session's write timeout outlasts the peer below: only the
    // handshake timeout can end the stalled write in time.
    config.timeouts.server = BOUND * 3;
    let mut options = serve_options(server_tls);
    options.handshake_timeout = Duration::from_millis(300);
    let (addr, server) = spawn_server_with_buffers(config, options, submission(), Some(4096));

    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    socket.connect(&addr.into()).expect("connect");
    let mut peer: TcpStream = socket.into();
    peer.set_write_timeout(Some(BOUND)).expect("timeout");
    // A real ClientHello, and then this client reads nothing.
    let mut hello = Vec::new();
    let mut conn =
        rustls::ClientConnection::new(client_tls, ServerName::try_from("localhost").expect("name"))
            .expect("client connection");
    conn.write_tls(&mut hello).expect("client hello");
    peer.write_all(&hello).expect("send the client hello");
    // Keep the connection open, still not reading, until the server is
    // done or the bound passes: closing it then ends the test even if the
    // handshake's writes had no bound.
    for _ in 0..(BOUND.as_millis() / 50) {
        if server.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(peer);
    let (end, submission) = server.join().expect("server thread");

    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a timed-out handshake, got {other:?}"),
    }
    assert!(submission.seen.events.is_empty());
}

#[test]
fn implicit_tls_client_refuses_a_plaintext_server() {
    let (_, client_tls) = tls_configs();
    let (addr, fake) = spawn_peer(move |mut s| {
        let _ = s.write_all(b"220 fake.test ESMTP\r\n250 forged\r\n");
        let mut got = Vec::new();
        read_to_close(&mut s, &mut got);
        got
    });
    let (result, submitter) = submit_to(addr, &run_options(client_tls));
    let got = fake.join().expect("fake server");

    match result {
        Err(RunError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e:?}");
        }
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    // The greeting never reached the machine, and the client sent only
    // TLS records.
    assert!(submitter.events.is_empty(), "{:?}", submitter.events);
    assert_eq!(got.first(), Some(&TLS_HANDSHAKE), "{got:?}");
    assert!(!contains(&got, b"EHLO"), "{got:?}");
}

#[test]
fn silent_server_ends_the_client_handshake_after_its_timeout() {
    let (_, client_tls) = tls_configs();
    // Reads what the client sends, answers nothing, until the client
    // gives up and closes.
    let (addr, mute) = spawn_peer(move |mut s| {
        let mut got = Vec::new();
        let closed = read_to_close(&mut s, &mut got);
        (closed, got)
    });
    let mut options = run_options(client_tls);
    options.handshake_timeout = Duration::from_millis(200);
    let (result, submitter) = submit_to(addr, &options);
    let (closed, got) = mute.join().expect("mute server");

    match result {
        Err(RunError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a timed-out handshake, got {other:?}"),
    }
    assert!(closed, "the client closed the connection");
    assert_eq!(got.first(), Some(&TLS_HANDSHAKE), "a ClientHello: {got:?}");
    assert!(submitter.events.is_empty(), "{:?}", submitter.events);
}

/// A handshake timeout too long to be an `Instant` (`Duration::MAX`, for
/// "no limit") means no limit, on the server and on the client: the
/// message goes through instead of the driver's clock overflowing.
#[test]
fn handshake_timeouts_too_long_for_the_clock_mean_no_limit() {
    let (server_tls, client_tls) = tls_configs();
    let mut options = serve_options(server_tls);
    options.handshake_timeout = Duration::MAX;
    let mut config = implicit_server_config();
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    let (addr, server) = spawn_server(config, options, submission());
    let mut run_opts = run_options(client_tls);
    run_opts.handshake_timeout = Duration::MAX;
    let (result, submitter) = submit_to(addr, &run_opts);
    let (end, submission) = server.join().expect("server thread");

    result.expect("client run");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert_eq!(submitter.delivered, [0]);
    assert_eq!(submission.seen.message, BODY);
}
