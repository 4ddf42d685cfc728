//! The blocking server and client drivers against each other, and against
//! hand-written peers, over real loopback TCP sockets.
//!
//! Every socket read in these tests has a read timeout and every loop a
//! count bound, so a broken driver fails a test instead of hanging it. The
//! timeouts are bounds, not performance assertions.

mod support;

use support::{
    assert_nothing_sent, bounded_timeouts, connect, read_to_close, spawn_peer, spawn_server,
    spawn_server_with_buffers, tls_configs, Recorder, Seen, ServerThread, BOUND,
};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientError, ClientEvent, Envelope,
    Protocol, TlsPolicy, Verdict,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::SaslMechanism;
use smtp_proto_blocking::smtp_proto::server::{
    RemoteError, ServerConfig, ServerEvent, ServerSession, UsageError,
};
use smtp_proto_blocking::smtp_proto::status::ReplyCode;
use smtp_proto_blocking::{rustls, StartTlsError};

fn other<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> std::io::Error {
    std::io::Error::other(e)
}

/// What the client side saw.
#[derive(Debug, Default)]
struct ClientLog {
    recipients: Vec<(usize, bool)>,
    messages: Vec<(u16, String)>,
    authenticated: bool,
    auth_failed: bool,
    tls_unavailable: bool,
    delivered: Vec<usize>,
    /// Each recipient's verdict in the last transaction summary.
    verdicts: Vec<Verdict>,
    closed_with: Option<u16>,
    tls_at_ready: Option<bool>,
}

/// A client handler that sends one message (optionally after AUTH) in
/// pieces, then QUIT.
struct Sender {
    from: &'static str,
    to: Vec<&'static str>,
    pieces: Vec<Vec<u8>>,
    next_piece: usize,
    auth: Option<AuthCredentials>,
    sent: bool,
    log: ClientLog,
}

impl Sender {
    fn new(to: &[&'static str], body: &[u8], piece: usize) -> Self {
        Sender {
            from: "alice@example.net",
            to: to.to_vec(),
            pieces: body.chunks(piece.max(1)).map(<[u8]>::to_vec).collect(),
            next_piece: 0,
            auth: None,
            sent: false,
            log: ClientLog::default(),
        }
    }

    fn next(&mut self, client: &mut Client) -> std::io::Result<()> {
        if let Some(creds) = self.auth.take() {
            client.authenticate(creds, None).map_err(other)?;
            return Ok(());
        }
        if self.sent {
            return client.quit().map_err(other);
        }
        self.sent = true;
        let mut envelope = Envelope::new(ReversePath::Mailbox(
            Mailbox::parse(self.from).map_err(other)?,
        ));
        for to in &self.to {
            envelope = envelope.recipient(ForwardPath::Mailbox(Mailbox::parse(to).map_err(other)?));
        }
        client.send_mail(&envelope).map_err(other)
    }
}

impl ClientHandler for Sender {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        match event {
            ClientEvent::Ready => {
                self.log.tls_at_ready = Some(client.is_tls());
                self.next(client)?;
            }
            ClientEvent::Authenticated { .. } => {
                self.log.authenticated = true;
                self.next(client)?;
            }
            ClientEvent::AuthFailed { .. } => {
                self.log.auth_failed = true;
                self.sent = true;
                client.quit().map_err(std::io::Error::other)?;
            }
            ClientEvent::TlsUnavailable { .. } => self.log.tls_unavailable = true,
            ClientEvent::Recipient { index, verdict, .. } => {
                self.log.recipients.push((index, verdict.is_success()));
            }
            ClientEvent::Message { reply, .. } => {
                let text = String::from_utf8_lossy(reply.text()).into_owned();
                self.log.messages.push((reply.code().get(), text));
            }
            ClientEvent::TransactionEnd(summary) => {
                self.log.delivered = summary.delivered().collect();
                self.log.verdicts = summary.recipients.iter().map(|r| r.verdict()).collect();
                self.next(client)?;
            }
            ClientEvent::Closed { reply } => self.log.closed_with = Some(reply.code().get()),
            _ => {}
        }
        Ok(())
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        match self.pieces.get(self.next_piece) {
            Some(p) => {
                piece.extend_from_slice(p);
                self.next_piece += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.chunking = true;
    config
}

fn client_config(tls: TlsPolicy) -> ClientConfig {
    ClientConfig::new(Domain::new("client.test").expect("domain"))
        .with_tls(tls)
        .with_timeouts(bounded_timeouts())
}

/// [`server_config`] offering STARTTLS, and serve options with `tls`.
fn starttls_server(tls: Arc<rustls::ServerConfig>) -> (ServerConfig, ServeOptions) {
    let mut config = server_config();
    config.starttls = true;
    let mut options = ServeOptions::default();
    options.tls = Some(tls);
    (config, options)
}

/// Run options that do STARTTLS with `tls`, checking the name `localhost`.
fn starttls_run_options(tls: Arc<rustls::ClientConfig>) -> RunOptions {
    let mut options = RunOptions::default();
    options.tls = Some((tls, ServerName::try_from("localhost").expect("name")));
    options
}

/// Runs `client` with `handler` over `stream` (connected to `server`) to a
/// clean end, then joins the server thread, checks that it ended with the
/// client's QUIT, and returns its handler.
fn run_to_close<H: ClientHandler, S>(
    stream: TcpStream,
    server: ServerThread<S>,
    client: &mut Client,
    handler: &mut H,
    options: &RunOptions,
) -> S {
    run(stream, client, handler, options).expect("client run");
    let (end, server_handler) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    server_handler
}

/// A raw client of the server at `addr` that has read the greeting;
/// returns it and what it has read.
fn greeted(addr: std::net::SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut peer = connect(addr);
    let mut got = Vec::new();
    assert!(
        read_replies(&mut peer, &mut got, 1).starts_with("220 "),
        "greeting"
    );
    (peer, got)
}

/// A loopback client whose send and receive buffers are set to `size`
/// bytes each before it connects (the kernel may round them), with the
/// same read timeout as [`connect`].
fn connect_with_buffers(addr: std::net::SocketAddr, size: usize) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(size).expect("receive buffer");
    socket.set_send_buffer_size(size).expect("send buffer");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(BOUND)).expect("timeout");
    stream
}

/// Reads until `buf` ends with `suffix` or the peer closes (bounded).
fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, suffix: &[u8]) -> bool {
    let mut chunk = [0u8; 1024];
    for _ in 0..10_000 {
        if buf.ends_with(suffix) {
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    false
}

/// Reads until `n` more complete replies (final lines `NNN ...`) have
/// arrived after what `buf` holds now; returns the text of those replies.
fn read_replies(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> String {
    let start = buf.len();
    let mut chunk = [0u8; 1024];
    for _ in 0..10_000 {
        let text = String::from_utf8_lossy(&buf[start..]).into_owned();
        let finals = text
            .split_inclusive("\r\n")
            .filter(|l| l.ends_with("\r\n") && l.as_bytes().get(3) == Some(&b' '))
            .count();
        if finals >= n {
            return text;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return text,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    String::from_utf8_lossy(&buf[start..]).into_owned()
}

/// A message body with the lines that need care on the wire: a leading
/// dot, a lone dot, a bare LF, and no final line ending.
const BODY: &[u8] = b"Subject: test\r\n\r\n.leading dot\r\n.\r\nbare\nlf\r\nlast line";

/// What the server must store for `BODY`: un-stuffed, bare LF made CRLF,
/// a final CRLF added.
const STORED: &[u8] = b"Subject: test\r\n\r\n.leading dot\r\n.\r\nbare\r\nlf\r\nlast line\r\n";

#[test]
fn plain_session_delivers_one_message() {
    let (addr, server) = spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    );
    let mut sender = Sender::new(&["bob@example.com", "nobody@example.com"], BODY, 7);
    let mut client = Client::new(client_config(TlsPolicy::Off));
    let recorder = run_to_close(
        connect(addr),
        server,
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );

    assert!(client.is_closed());
    let seen = recorder.seen;
    assert_eq!(seen.hello.as_deref(), Some("client.test"));
    assert_eq!(seen.from.as_deref(), Some("alice@example.net"));
    assert_eq!(seen.rcpts, ["<bob@example.com>"]);
    assert_eq!(seen.message, STORED);
    assert_eq!((seen.message_starts, seen.message_ends), (1, 1));
    assert_eq!(seen.chunked, [false], "DATA by default");
    assert!(!seen.tls_at_end && !seen.auth_at_end);
    assert_eq!(sender.log.recipients, [(0, true), (1, false)]);
    assert_eq!(sender.log.delivered, [0]);
    assert_eq!(sender.log.messages.len(), 1);
    assert_eq!(sender.log.messages[0].0, 250);
    assert_eq!(sender.log.closed_with, Some(221));
    assert_eq!(sender.log.tls_at_ready, Some(false));
}

#[test]
fn bdat_chunks_carry_a_large_message() {
    // 2 MiB in 64 KiB pieces: each piece is one BDAT chunk, and the
    // blocking writes must not stall on the socket buffers.
    let mut body = Vec::new();
    for i in 0..40_000u32 {
        body.extend_from_slice(
            format!("line {i:06} {}\r\n", ".".repeat(i as usize % 40)).as_bytes(),
        );
    }
    let (addr, server) = spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    );
    let mut sender = Sender::new(&["bob@example.com"], &body, 64 * 1024);
    let config = client_config(TlsPolicy::Off).with_chunking(ChunkingPolicy::Prefer);
    let mut client = Client::new(config);
    let recorder = run_to_close(
        connect(addr),
        server,
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );

    assert_eq!(recorder.seen.message, body);
    assert_eq!(recorder.seen.message_ends, 1);
    assert_eq!(
        recorder.seen.chunked,
        [true],
        "the body came as BDAT chunks"
    );
    assert_eq!(sender.log.delivered, [0]);
}

#[test]
fn starttls_then_auth_then_message() {
    let (server_tls, client_tls) = tls_configs();
    let (mut config, options) = starttls_server(server_tls);
    config.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    config.auth_requires_tls = true;
    let (addr, server) = spawn_server(config, options, Recorder::new(Some(("user", "secret"))));

    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    sender.auth = Some(AuthCredentials::password("user", "secret"));
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let options = starttls_run_options(client_tls);
    let recorder = run_to_close(connect(addr), server, &mut client, &mut sender, &options);

    assert!(client.is_tls() && client.is_authenticated());
    assert_eq!(sender.log.tls_at_ready, Some(true));
    assert!(sender.log.authenticated && !sender.log.auth_failed);
    assert_eq!(sender.log.delivered, [0]);
    let seen = recorder.seen;
    assert!(seen.tls_at_end && seen.auth_at_end);
    assert_eq!(seen.auth_user.as_deref(), Some("user"));
    assert_eq!(seen.message, STORED);
    // EHLO twice: before and after the handshake, and the handler heard of
    // TLS in between, with the session on TLS already (RFC 3207 §4.2).
    assert_eq!(seen.events.iter().filter(|e| *e == "Hello").count(), 2);
    assert_eq!(seen.events[..3], ["Hello", "StartTls", "Hello"]);
    assert_eq!(seen.tls_at_starttls, [true]);
    assert_eq!(seen.tls_at_hello, [false, true]);
}

#[test]
fn wrong_password_is_refused_and_no_mail_is_sent() {
    let (server_tls, client_tls) = tls_configs();
    let (mut config, options) = starttls_server(server_tls);
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    let (addr, server) = spawn_server(config, options, Recorder::new(Some(("user", "secret"))));

    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    sender.auth = Some(AuthCredentials::password("user", "wrong"));
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let options = starttls_run_options(client_tls);
    let recorder = run_to_close(connect(addr), server, &mut client, &mut sender, &options);

    assert!(sender.log.auth_failed && !sender.log.authenticated);
    assert_eq!(recorder.seen.auth_failures, 1);
    assert_eq!(recorder.seen.from, None);
    assert_eq!(recorder.seen.message_starts, 0);
}

#[test]
fn required_tls_without_server_support_quits() {
    let (_, client_tls) = tls_configs();
    let (addr, server) = spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    );
    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let options = starttls_run_options(client_tls);
    let recorder = run_to_close(connect(addr), server, &mut client, &mut sender, &options);

    assert!(sender.log.tls_unavailable);
    assert!(!sender.sent);
    assert_eq!(recorder.seen.from, None);
}

#[test]
fn plaintext_injected_after_starttls_is_refused_by_the_server() {
    let (server_tls, _) = tls_configs();
    let (config, options) = starttls_server(server_tls);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));

    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO attacker.test\r\n").expect("ehlo");
    let ehlo = read_replies(&mut peer, &mut got, 1);
    assert!(
        ehlo.contains("250-STARTTLS\r\n") || ehlo.contains("250 STARTTLS\r\n"),
        "{ehlo:?}"
    );
    let before = got.len();
    // The command and the injected plaintext in one write.
    peer.write_all(b"STARTTLS\r\nMAIL FROM:<a@b>\r\n")
        .expect("inject");
    assert!(read_to_close(&mut peer, &mut got), "server closes");
    let (end, recorder) = server.join().expect("server thread");

    let after = String::from_utf8_lossy(&got[before..]).into_owned();
    // No reply to MAIL, and no TLS handshake started: the server either
    // refused the session (554) or refused the upgrade.
    assert!(
        !after.contains("250"),
        "MAIL must not be answered: {after:?}"
    );
    assert!(
        !after.as_bytes().contains(&0x16),
        "no TLS record from the server: {after:?}"
    );
    match end {
        Err(ServeError::Remote(RemoteError::StartTlsInjection)) => {
            assert!(after.starts_with("554 "), "{after:?}");
        }
        Err(ServeError::StartTls(StartTlsError::PlaintextAfterStartTls(_))) => {}
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    assert_eq!(recorder.seen.from, None);
    assert!(!recorder.seen.events.iter().any(|e| e == "Mail"));
}

#[test]
fn data_injected_after_the_starttls_220_is_refused_by_the_client() {
    let (_, client_tls) = tls_configs();
    let (addr, fake) = spawn_peer(move |mut s| {
        s.write_all(b"220 fake.test ESMTP\r\n").expect("greeting");
        let mut got = Vec::new();
        assert!(read_until(&mut s, &mut got, b"\r\n"), "EHLO");
        s.write_all(b"250-fake.test\r\n250 STARTTLS\r\n")
            .expect("ehlo");
        got.clear();
        assert!(read_until(&mut s, &mut got, b"STARTTLS\r\n"), "STARTTLS");
        // The 220 and a forged reply in one write.
        s.write_all(b"220 2.0.0 go ahead\r\n250 2.0.0 forged\r\n")
            .expect("inject");
        let mut rest = Vec::new();
        read_to_close(&mut s, &mut rest);
        rest
    });
    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let result = run(
        connect(addr),
        &mut client,
        &mut sender,
        &starttls_run_options(client_tls),
    );
    let after = fake.join().expect("fake server");

    match result {
        Err(RunError::Client(ClientError::ResponseInjection))
        | Err(RunError::StartTls(StartTlsError::PlaintextAfterStartTls(_))) => {}
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    assert!(!client.is_tls());
    assert!(!sender.sent);
    // The client sent nothing after STARTTLS: no ClientHello, no command.
    assert!(after.is_empty(), "{:?}", String::from_utf8_lossy(&after));
}

#[test]
fn silent_client_gets_421_and_the_server_times_out() {
    let mut config = server_config();
    config.timeouts.server = Duration::from_millis(200);
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO slow.test\r\n").expect("ehlo");
    // Then nothing: the server's timeout must end the session.
    assert!(read_to_close(&mut peer, &mut got), "server closes");
    let (end, _) = server.join().expect("server thread");

    let text = String::from_utf8_lossy(&got).into_owned();
    let last = text.trim_end().rsplit("\r\n").next().unwrap_or("");
    assert!(last.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
}

/// A greeting refused with 421 ("closing transmission channel", RFC 5321
/// §4.2.3, §3.8): the driver sends it and closes the connection without
/// waiting for a command.
#[test]
fn greeting_refused_with_421_closes_the_connection() {
    let mut config = server_config();
    // A session left open would wait this long and then say 421 4.4.2.
    config.timeouts.server = Duration::from_secs(2);
    let (addr, server) = spawn_peer(move |socket| {
        let mut session = ServerSession::new(config).expect("session");
        let busy =
            OwnedReply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "4.3.2 Too busy").expect("reply");
        session.refuse(Some(busy)).expect("refuse");
        let mut handler = Recorder::new(None);
        let end = serve(socket, &mut session, &mut handler, &ServeOptions::default());
        (end, handler)
    });
    let mut peer = connect(addr);
    let mut got = Vec::new();
    assert!(read_to_close(&mut peer, &mut got), "server closes");
    assert_eq!(String::from_utf8_lossy(&got), "421 4.3.2 Too busy\r\n");
    let (end, handler) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert!(handler.seen.events.is_empty(), "{:?}", handler.seen.events);
}

#[test]
fn silent_server_times_the_client_out() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (addr, mute) = spawn_peer(move |s| {
        // Hold the connection open, greeting nobody, until the client
        // gave up (bounded).
        let _ = done_rx.recv_timeout(BOUND);
        drop(s);
    });
    let mut timeouts = bounded_timeouts();
    timeouts.initial = Duration::from_millis(200);
    let config = client_config(TlsPolicy::Off).with_timeouts(timeouts);
    let mut client = Client::new(config);
    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    let result = run(
        connect(addr),
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );
    done_tx.send(()).expect("signal");
    mute.join().expect("mute server");
    assert!(matches!(result, Err(RunError::TimedOut)), "{result:?}");
}

/// The socket buffers of [`spawn_deaf_peer`] and [`run_on_thread`]:
/// small, so that bytes the peer does not read stall the writer soon.
const SMALL_BUFFERS: usize = 32 * 1024;

/// A server that writes the first of `replies` (the greeting) when the
/// client connects and each of the others once it has read the command
/// line it answers (a server answers only what it got), then reads
/// nothing more and keeps the connection open until the returned sender
/// signals or is dropped (or for [`BOUND`]).
fn spawn_deaf_peer(
    replies: &'static [&'static [u8]],
) -> (
    std::net::SocketAddr,
    std::sync::mpsc::Sender<()>,
    thread::JoinHandle<()>,
) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (addr, peer) = spawn_peer(move |mut s| {
        socket2::SockRef::from(&s)
            .set_recv_buffer_size(SMALL_BUFFERS)
            .expect("receive buffer");
        let (greeting, answers) = replies.split_first().expect("a greeting");
        s.write_all(greeting).expect("greeting");
        for reply in answers {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).expect("command");
                line.push(byte[0]);
            }
            s.write_all(reply).expect("reply");
        }
        let _ = done_rx.recv_timeout(BOUND);
        drop(s);
    });
    (addr, done_tx, peer)
}

/// Runs `client` with `sender` over a connection to `addr` (with
/// [`SMALL_BUFFERS`]) on a thread; returns how the run ended and the
/// handler. Panics when the run has not ended within [`BOUND`] (a bound on
/// the test, not a measure of speed).
fn run_on_thread(
    addr: std::net::SocketAddr,
    mut client: Client,
    mut sender: Sender,
) -> (Result<(), RunError>, Sender) {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let socket = connect_with_buffers(addr, SMALL_BUFFERS);
        let end = run(socket, &mut client, &mut sender, &RunOptions::default());
        let _ = tx.send((end, sender));
    });
    rx.recv_timeout(BOUND)
        .expect("the run ends although the server never reads")
}

/// The server answers each command up to DATA (the client, without
/// PIPELINING, sends one at a time), then reads nothing of the body:
/// the body write times out after the data block time-out, and the run
/// ends with `TimedOut` at once, not after waiting for replies for the
/// data termination time-out (an hour here).
#[test]
fn client_times_out_when_the_server_never_reads_the_body() {
    let (addr, done, peer) = spawn_deaf_peer(&[
        b"220 fake.test ESMTP\r\n",
        b"250 fake.test\r\n",
        b"250 2.1.0 Ok\r\n",
        b"250 2.1.5 Ok\r\n",
        b"354 Go ahead\r\n",
    ]);
    let mut timeouts = bounded_timeouts();
    timeouts.data_block = Duration::from_millis(300);
    timeouts.data_termination = Duration::from_secs(3600);
    let config = client_config(TlsPolicy::Off)
        .with_pipelining(false)
        .with_timeouts(timeouts);
    // 16 MB of body in 64 KiB pieces: far more than the socket buffers.
    let sender = Sender::new(&["bob@example.com"], &vec![b'x'; 16 << 20], 64 * 1024);
    let pieces = sender.pieces.len();
    let (end, sender) = run_on_thread(addr, Client::new(config), sender);
    let _ = done.send(());
    peer.join().expect("peer");
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
    assert!(sender.next_piece > 0 && sender.next_piece < pieces);
    assert!(sender.log.messages.is_empty());
}

/// Each write may wait as long as the phase it belongs to, as in the tokio
/// client: a pipelined MAIL and RCPT group that the server does not read
/// times out after the MAIL time-out, not after the data block time-out
/// (an hour here).
#[test]
fn a_command_write_times_out_after_the_timeout_of_its_phase() {
    let (addr, done, peer) = spawn_deaf_peer(&[
        b"220 fake.test ESMTP\r\n",
        b"250-fake.test\r\n250 PIPELINING\r\n",
    ]);
    let mut timeouts = bounded_timeouts();
    timeouts.mail = Duration::from_millis(300);
    timeouts.data_block = Duration::from_secs(3600);
    let config = client_config(TlsPolicy::Off).with_timeouts(timeouts);
    // About 1.5 MB of RCPT commands in one pipelined group.
    let to: Vec<&'static str> = (0..50_000)
        .map(|i| &*format!("r{i}@example.com").leak())
        .collect();
    let sender = Sender::new(&to, BODY, 1000);
    let (end, sender) = run_on_thread(addr, Client::new(config), sender);
    let _ = done.send(());
    peer.join().expect("peer");
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
    assert!(sender.sent && sender.log.recipients.is_empty());
}

#[test]
fn disconnect_mid_data_never_ends_the_message() {
    let (addr, server) = spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    );
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO gone.test\r\n").expect("ehlo");
    read_replies(&mut peer, &mut got, 1);
    peer.write_all(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        .expect("envelope");
    let text = read_replies(&mut peer, &mut got, 3);
    assert!(
        text.starts_with("250 ") && text.contains("\r\n354 "),
        "{text:?}"
    );
    // Part of a message, including what looks like an end but is not
    // (a bare-LF dot line), then the connection goes away.
    peer.write_all(b"Subject: cut\r\n\r\nfirst line\r\n\n.\nmore")
        .expect("body");
    peer.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(peer);
    let (end, recorder) = server.join().expect("server thread");

    assert_eq!(end.expect("server result"), ServeEnd::PeerClosed);
    let seen = recorder.seen;
    assert_eq!(seen.message_starts, 1);
    assert_eq!(seen.message_ends, 0, "{:?}", seen.events);
    assert!(!seen.events.iter().any(|e| e == "MessageEnd"));
}

#[test]
fn lmtp_gives_one_reply_per_accepted_recipient() {
    let mut config = server_config();
    config.lmtp = true;
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let mut sender = Sender::new(
        &["bob@example.com", "nobody@example.com", "carol@example.com"],
        BODY,
        5,
    );
    let config = client_config(TlsPolicy::Off).with_protocol(Protocol::Lmtp);
    let mut client = Client::new(config);
    let recorder = run_to_close(
        connect(addr),
        server,
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );

    assert_eq!(recorder.seen.message, STORED);
    assert_eq!(
        recorder.seen.rcpts,
        ["<bob@example.com>", "<carol@example.com>"]
    );
    assert_eq!(sender.log.recipients, [(0, true), (1, false), (2, true)]);
    // One 250 per accepted recipient, none for the refused one.
    assert_eq!(sender.log.messages.len(), 2);
    assert!(sender.log.messages.iter().all(|(code, _)| *code == 250));
    assert_eq!(sender.log.delivered, [0, 2]);
}

#[test]
fn server_gone_mid_session_is_peer_closed() {
    let (addr, fake) = spawn_peer(move |mut s| {
        s.write_all(b"220 fake.test ESMTP\r\n").expect("greeting");
        let mut got = Vec::new();
        assert!(read_until(&mut s, &mut got, b"\r\n"), "EHLO");
        // Half of an EHLO reply, then the connection goes away.
        s.write_all(b"250-fake.test\r\n").expect("partial reply");
    });
    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    let mut client = Client::new(client_config(TlsPolicy::Off));
    let result = run(
        connect(addr),
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );
    fake.join().expect("fake server");
    assert!(matches!(result, Err(RunError::PeerClosed)), "{result:?}");
    assert!(!sender.sent);
}

#[test]
fn tls_client_gone_mid_data_never_ends_the_message() {
    let (server_tls, client_tls) = tls_configs();
    let (config, options) = starttls_server(server_tls);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));

    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO tls.test\r\nSTARTTLS\r\n")
        .expect("starttls");
    let replies = read_replies(&mut peer, &mut got, 2);
    assert!(replies.contains("\r\n220 "), "{replies:?}");
    let conn =
        rustls::ClientConnection::new(client_tls, ServerName::try_from("localhost").unwrap())
            .expect("tls client");
    let mut tls = rustls::StreamOwned::new(conn, peer);
    tls.write_all(
        b"EHLO tls.test\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
    )
    .expect("envelope over TLS");
    let mut text = String::new();
    let mut chunk = [0u8; 1024];
    for _ in 0..1000 {
        if text.contains("\r\n354 ") {
            break;
        }
        let n = tls.read(&mut chunk).expect("read over TLS");
        assert!(n > 0, "server closed early: {text:?}");
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert!(text.contains("\r\n354 "), "{text:?}");
    tls.write_all(b"Subject: cut\r\n\r\nhalf a message\r\n")
        .expect("body");
    tls.flush().expect("flush");
    // Gone without close_notify: a truncation, not an end of message.
    tls.sock
        .shutdown(std::net::Shutdown::Both)
        .expect("shutdown");
    drop(tls);
    let (end, recorder) = server.join().expect("server thread");

    assert_eq!(end.expect("server result"), ServeEnd::PeerClosed);
    assert_eq!(recorder.seen.message_starts, 1);
    assert_eq!(recorder.seen.message_ends, 0);
    assert_eq!(
        recorder.seen.message,
        b"Subject: cut\r\n\r\nhalf a message\r\n"
    );
}

#[test]
fn client_that_never_reads_cannot_hold_the_server() {
    let mut config = server_config();
    config.timeouts.server = Duration::from_millis(300);
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let mut peer = TcpStream::connect(addr).expect("connect");
    peer.set_write_timeout(Some(BOUND)).expect("timeout");
    // Each EHLO (13 bytes) draws a reply ten times as long; 200 000 of them
    // make far more replies than the socket buffers hold, and this client
    // reads none of them.
    let flood = b"EHLO a.test\r\n".repeat(200_000);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        // Fails once the server gives up, or may fit in the buffers.
        let _ = peer.write_all(&flood);
        // Keep the connection open (still not reading) until the server
        // is done; closing it after the bound ends the test even if the
        // server had no write timeout.
        let _ = done_rx.recv_timeout(BOUND);
        drop(peer);
    });
    let (end, recorder) = server.join().expect("server thread");
    let _ = done_tx.send(());
    writer.join().expect("writer");

    assert!(
        matches!(end, Err(ServeError::WriteTimedOut)),
        "expected a write timeout, got {end:?}"
    );
    // The server stopped long before the end of the flood.
    let hellos = recorder
        .seen
        .events
        .iter()
        .filter(|e| *e == "Hello")
        .count();
    assert!(hellos > 0 && hellos < 200_000, "{hellos}");
}

/// 2 MB of [`numbered_body`].
fn two_megabytes() -> Vec<u8> {
    let mut body = numbered_body(60_000);
    body.truncate(2_000_000);
    body
}

/// A message of `lines` numbered lines.
fn numbered_body(lines: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..lines {
        body.extend_from_slice(
            format!("line {i:06} {}\r\n", "x".repeat(i as usize % 30)).as_bytes(),
        );
    }
    body
}

/// Runs `sender` with BDAT preferred against a recording server with
/// `config`, both with default options; returns what the server saw.
fn bdat_to_recorder(config: ServerConfig, sender: &mut Sender) -> Recorder {
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let mut client =
        Client::new(client_config(TlsPolicy::Off).with_chunking(ChunkingPolicy::Prefer));
    run_to_close(
        connect(addr),
        server,
        &mut client,
        sender,
        &RunOptions::default(),
    )
}

#[test]
fn bdat_without_pipelining_delivers_every_piece() {
    // Without PIPELINING each chunk waits for its reply: the driver stops
    // after each piece and goes on at the next SendBody.
    let mut config = server_config();
    config.pipelining = false;
    let body = numbered_body(50);
    let mut sender = Sender::new(&["bob@example.com"], &body, 97);
    let pieces = sender.pieces.len();
    assert!(pieces > 5, "several pieces");
    let recorder = bdat_to_recorder(config, &mut sender);

    assert_eq!(recorder.seen.message, body, "whole, in order, once");
    assert_eq!(recorder.seen.chunked, [true]);
    assert_eq!(recorder.seen.message_ends, 1);
    assert_eq!(sender.next_piece, pieces);
    assert_eq!(sender.log.delivered, [0]);
    assert_eq!(sender.log.closed_with, Some(221));
}

/// Sends [`two_megabytes`] in 100-byte pieces, with BDAT, through socket
/// buffers of 32 KiB on both sides, to a server with `config` and
/// `options`; checks that the message arrived whole in one transaction,
/// and returns what the server saw. Over 20 000 chunks: their replies
/// must be read while the body is written or they fill the socket
/// buffers (made small here, so they surely would).
fn small_chunks_through_small_buffers(
    config: ServerConfig,
    options: ServeOptions,
    tls: TlsPolicy,
    run_options: &RunOptions,
) -> Seen {
    let body = two_megabytes();
    let (addr, server) =
        spawn_server_with_buffers(config, options, Recorder::new(None), Some(32 * 1024));
    let mut sender = Sender::new(&["bob@example.com"], &body, 100);
    let pieces = sender.pieces.len();
    let mut client = Client::new(client_config(tls).with_chunking(ChunkingPolicy::Prefer));
    let recorder = run_to_close(
        connect_with_buffers(addr, 32 * 1024),
        server,
        &mut client,
        &mut sender,
        run_options,
    );

    assert_eq!(recorder.seen.message.len(), body.len());
    assert!(recorder.seen.message == body, "the message arrived whole");
    assert_eq!(recorder.seen.chunked, [true]);
    assert_eq!(sender.next_piece, pieces);
    assert_eq!(sender.log.delivered, [0]);
    assert_eq!(sender.log.closed_with, Some(221));
    recorder.seen
}

#[test]
fn many_small_pipelined_bdat_chunks_do_not_stall() {
    let seen = small_chunks_through_small_buffers(
        server_config(),
        ServeOptions::default(),
        TlsPolicy::Off,
        &RunOptions::default(),
    );
    assert!(!seen.tls_at_end);
}

#[test]
fn refused_pipelined_chunk_stops_the_body() {
    // The server refuses the chunk that passes its size limit; the client
    // sees the refusal between pieces and sends no more of the message,
    // reads the replies still due to the chunks it had sent, and ends the
    // transaction with the refusal as the recipient's verdict (RFC 3030
    // §2), then quits: the run ends, not `RunError::Stalled`.
    let mut config = server_config();
    config.max_message_size = Some(20_000);
    let body = two_megabytes();
    let mut sender = Sender::new(&["bob@example.com"], &body, 1000);
    let pieces = sender.pieces.len();
    let recorder = bdat_to_recorder(config, &mut sender);

    assert_eq!(recorder.seen.message_ends, 0);
    assert!(sender.log.delivered.is_empty());
    assert!(
        sender.log.messages.iter().any(|(code, _)| *code == 552),
        "{:?}",
        sender.log.messages
    );
    assert!(
        sender.next_piece < pieces,
        "stopped after the refusal: {} of {pieces} pieces",
        sender.next_piece
    );
    assert_eq!(sender.log.verdicts, [Verdict::Permanent]);
    assert_eq!(sender.log.closed_with, Some(221));
}

#[test]
fn many_pipelined_commands_each_get_their_reply() {
    const NOOPS: usize = 20_000;
    let (addr, server) = spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    );
    let mut peer = connect(addr);
    let mut writer = peer.try_clone().expect("clone");
    writer.set_write_timeout(Some(BOUND)).expect("timeout");
    let mut commands = b"EHLO many.test\r\n".to_vec();
    commands.extend_from_slice(&b"NOOP\r\n".repeat(NOOPS));
    commands.extend_from_slice(b"QUIT\r\n");
    // Written from a thread while the replies are read here, so neither
    // side waits on full socket buffers.
    let write = thread::spawn(move || writer.write_all(&commands));
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    for _ in 0..1_000_000 {
        match peer.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    write.join().expect("writer").expect("commands written");
    let (end, _) = server.join().expect("server thread");

    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    let text = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    assert!(lines.iter().all(|l| l.ends_with("\r\n")), "whole lines");
    let finals: Vec<&str> = lines
        .iter()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect();
    // Greeting, EHLO, every NOOP, QUIT: in order, one each.
    assert_eq!(finals.len(), NOOPS + 3);
    assert_eq!(finals[0], "220");
    assert!(finals[1..=NOOPS + 1].iter().all(|c| *c == "250"));
    assert_eq!(finals[NOOPS + 2], "221");
}

#[test]
fn starttls_advertised_without_tls_config_is_refused_before_the_greeting() {
    let mut config = server_config();
    config.starttls = true;
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let mut peer = connect(addr);
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let (end, _) = server.join().expect("server thread");

    assert!(
        matches!(end, Err(ServeError::StartTlsNotConfigured)),
        "{end:?}"
    );
    assert_nothing_sent(closed, &got, "server");
}

/// A server handler that sets whether STARTTLS is available when the
/// client greets, then accepts whatever waits for a decision.
struct StartTlsOnHello(bool);

impl ServerHandler for StartTlsOnHello {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        if matches!(event, ServerEvent::Hello { .. }) {
            session.set_starttls_available(self.0);
        }
        if session.pending_decision().is_some() {
            session.accept().map_err(other)?;
        }
        Ok(())
    }
}

/// Serves one connection with STARTTLS configured, `available` given to
/// the session before the greeting, `handler` and the TLS configuration
/// `tls`; the client pipelines EHLO, STARTTLS, NOOP and QUIT. Returns how
/// `serve` ended and everything the client read.
fn pipelined_starttls(
    available: bool,
    mut handler: StartTlsOnHello,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (Result<ServeEnd, ServeError>, String) {
    let (addr, server) = spawn_peer(move |socket| {
        let mut config = server_config();
        config.starttls = true;
        let mut session = ServerSession::new(config).expect("session");
        session.set_starttls_available(available);
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = tls;
        serve(socket, &mut session, &mut handler, &options)
    });
    let mut peer = connect(addr);
    peer.write_all(b"EHLO client.test\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n")
        .expect("write");
    let mut got = Vec::new();
    assert!(read_to_close(&mut peer, &mut got), "the server closes");
    let end = server.join().expect("server thread");
    (end, String::from_utf8_lossy(&got).into_owned())
}

const DECLINED_THEN_NOOP_AND_QUIT: &str =
    "\r\n454 4.7.0 TLS not available due to temporary reason\r\n\
    250 2.0.0 OK\r\n221 2.0.0 Bye\r\n";

/// A server whose certificate could not be loaded declines STARTTLS and
/// runs without a TLS configuration: EHLO does not offer it, STARTTLS
/// gets 454 (RFC 3207 §4), and the commands pipelined after it are
/// answered in plaintext.
#[test]
fn declined_starttls_runs_without_tls_config() {
    let (end, got) = pipelined_starttls(false, StartTlsOnHello(false), None);
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert!(!got.contains("STARTTLS"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// Without a TLS configuration `serve` keeps STARTTLS declined, whatever
/// the handler does: a handler that makes it available again gets it
/// listed in the EHLO reply it accepts, but the STARTTLS still gets 454,
/// not a 220 with no handshake to follow.
#[test]
fn without_tls_config_starttls_stays_declined() {
    let (end, got) = pipelined_starttls(false, StartTlsOnHello(true), None);
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert!(got.contains("\r\n250-STARTTLS\r\n"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// With a TLS configuration, the handler declines STARTTLS for now when
/// the client greets (a server shedding TLS handshakes under load): no
/// handshake is started and the session goes on in plaintext.
#[test]
fn the_handler_declines_starttls_at_the_greeting() {
    let (server_tls, _) = tls_configs();
    let (end, got) = pipelined_starttls(true, StartTlsOnHello(false), Some(server_tls));
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert!(!got.contains("STARTTLS"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// A server handler whose store fails at MAIL.
struct FailsAtMail;

impl ServerHandler for FailsAtMail {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::Hello { .. } => session.accept().map_err(other),
            ServerEvent::Mail { .. } => Err(std::io::Error::other("store unavailable")),
            _ => Ok(()),
        }
    }
}

/// Serves one connection with `handler`; a raw client sends EHLO, then
/// MAIL once the EHLO reply is in, and reads until the server closes.
/// Returns what came after the EHLO reply, whether the server closed, and
/// how `serve` ended.
fn mail_until_close<H: ServerHandler + Send + 'static>(
    handler: H,
) -> (String, bool, Result<ServeEnd, ServeError>) {
    let (addr, server) = spawn_server(server_config(), ServeOptions::default(), handler);
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO fail.test\r\n").expect("ehlo");
    assert!(read_replies(&mut peer, &mut got, 1).starts_with("250"));
    peer.write_all(b"MAIL FROM:<a@example.net>\r\n")
        .expect("mail");
    let start = got.len();
    let closed = read_to_close(&mut peer, &mut got);
    let (end, _) = server.join().expect("server thread");
    (
        String::from_utf8_lossy(&got[start..]).into_owned(),
        closed,
        end,
    )
}

/// Asserts that `text` is the one `421 4.3.0` line of a local error, the
/// same line, word for word, as the tokio server sends (its
/// `driver_faults` tests): the two adapters answer the same input alike.
#[track_caller]
fn assert_local_error_421(text: &str) {
    assert_eq!(
        text,
        "421 4.3.0 mx.test Local error, closing connection\r\n"
    );
}

#[test]
fn handler_error_is_answered_with_421_before_closing() {
    let (text, closed, end) = mail_until_close(FailsAtMail);
    assert_local_error_421(&text);
    assert!(closed, "the server closed the connection");
    match end {
        Err(ServeError::Io(e)) => assert_eq!(e.to_string(), "store unavailable"),
        other => panic!("expected the handler's error, got {other:?}"),
    }
}

/// A server handler that leaves MAIL undecided.
struct LeavesMailOpen;

impl ServerHandler for LeavesMailOpen {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::Hello { .. } => session.accept().map_err(other),
            _ => Ok(()),
        }
    }
}

/// A decision left open is the application's failure too: the client
/// gets the same 421 as for a handler error, and the connection closes.
#[test]
fn decision_left_open_is_answered_with_421_before_closing() {
    let (text, closed, end) = mail_until_close(LeavesMailOpen);
    assert_local_error_421(&text);
    assert!(closed, "the server closed the connection");
    assert!(
        matches!(end, Err(ServeError::Usage(UsageError::DecisionPending))),
        "{end:?}"
    );
}

/// A [`Sender`] that, after its first body piece, waits until the server
/// says it has closed the connection (if the client has not stopped the
/// body before), so the body is still being written after the close.
struct SenderPastClose {
    inner: Sender,
    closed: std::sync::mpsc::Receiver<()>,
    waited: bool,
}

impl ClientHandler for SenderPastClose {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        self.inner.on_event(client, event)
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        if self.inner.next_piece == 1 && !self.waited {
            self.waited = true;
            self.closed.recv_timeout(BOUND).map_err(other)?;
        }
        self.inner.next_body_piece(piece)
    }
}

#[test]
fn reply_sent_before_the_server_closes_mid_body_is_reported() {
    let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
    // A server that refuses the message after its first bytes and closes
    // at once, leaving the rest unread.
    let (addr, fake) = spawn_peer(move |mut s| {
        let mut got = Vec::new();
        s.write_all(b"220 fake.test ESMTP\r\n").expect("greeting");
        for reply in [
            &b"250 fake.test\r\n"[..],
            b"250 2.1.0 Ok\r\n",
            b"250 2.1.5 Ok\r\n",
            b"354 Go ahead\r\n",
        ] {
            got.clear();
            assert!(read_until(&mut s, &mut got, b"\r\n"), "a command");
            s.write_all(reply).expect("reply");
        }
        let mut first = [0u8; 64];
        let n = s.read(&mut first).expect("body bytes");
        s.write_all(b"552 5.3.4 Message too big\r\n").expect("552");
        drop(s);
        closed_tx.send(()).expect("signal");
        n
    });
    let body = numbered_body(40_000);
    let mut sender = SenderPastClose {
        inner: Sender::new(&["bob@example.com"], &body, 1024),
        closed: closed_rx,
        waited: false,
    };
    let pieces = sender.inner.pieces.len();
    let mut client = Client::new(client_config(TlsPolicy::Off).with_pipelining(false));
    let result = run(
        connect(addr),
        &mut client,
        &mut sender,
        &RunOptions::default(),
    );
    let body_bytes = fake.join().expect("fake server");

    // The client learns of the close either from a failed write or from
    // the look for replies between pieces; either way the reply sent
    // before the close must reach the handler.
    assert!(body_bytes > 0);
    assert!(matches!(result, Err(RunError::PeerClosed)), "{result:?}");
    let messages = &sender.inner.log.messages;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0, 552, "the server's reply reached the handler");
    assert!(messages[0].1.contains("Message too big"), "{messages:?}");
    assert!(sender.inner.log.delivered.is_empty());
    assert!(sender.inner.next_piece < pieces, "the body stopped");
}

#[test]
fn tls_handshake_timeout_bounds_the_whole_handshake() {
    let (server_tls, _) = tls_configs();
    let (config, mut options) = starttls_server(server_tls);
    options.handshake_timeout = Duration::from_millis(800);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO slow.test\r\n").expect("ehlo");
    assert!(read_replies(&mut peer, &mut got, 1).contains("STARTTLS"));
    peer.write_all(b"STARTTLS\r\n").expect("starttls");
    assert!(read_replies(&mut peer, &mut got, 1).starts_with("220 "));
    // A handshake record that announces 512 bytes, then its bytes one at a
    // time, each well within the handshake timeout of the one before.
    peer.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .expect("record header");
    let mut trickled = 0;
    while trickled < 60 && !server.is_finished() {
        thread::sleep(Duration::from_millis(200));
        if peer.write_all(&[0]).is_err() {
            break;
        }
        trickled += 1;
    }
    let finished_while_trickling = server.is_finished();
    let (end, _) = server.join().expect("server thread");

    assert!(
        finished_while_trickling && trickled < 60,
        "the server gave up while bytes still came ({trickled} sent)"
    );
    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a timed-out handshake, got {other:?}"),
    }
}

/// A TLS record header and the first bytes of its body: a handshake that
/// starts and is never finished.
const PARTIAL_RECORD: &[u8] = b"\x16\x03\x01\x00\x40\x01\x00\x00";

/// A client that goes away in the middle of the handshake after STARTTLS
/// (a partial ClientHello, then the end of the stream) ends `serve` with
/// a handshake error, not a panic or a wait; the handler never hears of
/// TLS.
#[test]
fn a_client_gone_mid_starttls_handshake_ends_serve_with_a_handshake_error() {
    let (server_tls, _) = tls_configs();
    let (config, options) = starttls_server(server_tls);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO gone.test\r\n").expect("ehlo");
    assert!(read_replies(&mut peer, &mut got, 1).contains("STARTTLS"));
    peer.write_all(b"STARTTLS\r\n").expect("starttls");
    assert!(read_replies(&mut peer, &mut got, 1).starts_with("220 "));
    peer.write_all(PARTIAL_RECORD).expect("partial record");
    peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let (end, recorder) = server.join().expect("server thread");

    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    assert!(
        !recorder.seen.events.iter().any(|e| e == "StartTls"),
        "{:?}",
        recorder.seen.events
    );
}

/// The client's side of the same: a server that answers STARTTLS with
/// `220`, starts its part of the handshake and goes away ends `run` with
/// [`StartTlsError::Handshake`], and no command follows.
#[test]
fn a_server_gone_mid_starttls_handshake_ends_run_with_a_handshake_error() {
    let (_, client_tls) = tls_configs();
    let (addr, fake) = spawn_peer(move |mut s| {
        s.write_all(b"220 fake.test ESMTP\r\n").expect("greeting");
        let mut got = Vec::new();
        assert!(read_until(&mut s, &mut got, b"\r\n"), "EHLO");
        s.write_all(b"250-fake.test\r\n250 STARTTLS\r\n")
            .expect("ehlo");
        assert!(read_until(&mut s, &mut got, b"STARTTLS\r\n"), "STARTTLS");
        s.write_all(b"220 2.0.0 go ahead\r\n").expect("220");
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).expect("client hello");
        assert_eq!(hello[0], 0x16, "a TLS handshake record");
        s.write_all(PARTIAL_RECORD).expect("partial record");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        read_to_close(&mut s, &mut rest);
        got
    });
    let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let result = run(
        connect(addr),
        &mut client,
        &mut sender,
        &starttls_run_options(client_tls),
    );
    let got = fake.join().expect("fake server");

    match result {
        Err(RunError::StartTls(StartTlsError::Handshake(e))) => {
            assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e:?}");
        }
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    assert!(!client.is_tls());
    assert!(!sender.sent);
    assert!(!String::from_utf8_lossy(&got).contains("MAIL"));
}

/// How long the server waits for each command in the trickle tests.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

/// The pause before each trickled byte: well within [`SHORT_TIMEOUT`] of
/// the one before, so a timeout that restarts on every byte never ends.
const TRICKLE: Duration = Duration::from_millis(100);

/// Writes `bytes` to `peer` one at a time, [`TRICKLE`] apart, until the
/// server thread ends; returns how many were written and whether the
/// server ended while they still came.
fn trickle<H>(peer: &mut impl Write, bytes: &[u8], server: &ServerThread<H>) -> (usize, bool) {
    let mut sent = 0;
    for byte in bytes {
        thread::sleep(TRICKLE);
        if server.is_finished() || peer.write_all(&[*byte]).is_err() {
            break;
        }
        sent += 1;
    }
    (sent, server.is_finished())
}

/// A command trickled a byte at a time, each byte well within the timeout
/// of the one before, does not hold the connection: the timeout is a
/// deadline for the command, which ends it long before the line does.
#[test]
fn trickled_command_times_out_at_its_deadline() {
    let mut config = server_config();
    config.timeouts.server = SHORT_TIMEOUT;
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let (mut peer, mut got) = greeted(addr);
    let from = got.len();
    // 60 bytes, 6 s at the trickle's pace.
    let line = format!("EHLO {}\r\n", "a".repeat(53));
    let (sent, ended_while_trickling) = trickle(&mut peer, line.as_bytes(), &server);
    let closed = read_to_close(&mut peer, &mut got);
    let (end, recorder) = server.join().expect("server thread");

    assert!(
        ended_while_trickling && sent < line.len(),
        "the server gave up while bytes still came ({sent} sent)"
    );
    assert!(closed, "the server closed the connection");
    let text = String::from_utf8_lossy(&got[from..]).into_owned();
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
    assert!(
        recorder.seen.events.is_empty(),
        "{:?}",
        recorder.seen.events
    );
}

/// The client's wait for a reply is a deadline too: a server that sends
/// its greeting a byte at a time, each byte well within the timeout of the
/// one before, does not hold the client, which gives up long before the
/// reply is complete.
#[test]
fn trickled_reply_times_out_at_its_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = thread::spawn(move || {
        let mut config = client_config(TlsPolicy::Off);
        config.timeouts.initial = SHORT_TIMEOUT;
        let mut client = Client::new(config);
        let mut sender = Sender::new(&["bob@example.com"], BODY, 1000);
        let stream = TcpStream::connect(addr).expect("connect");
        run(stream, &mut client, &mut sender, &RunOptions::default())
    });
    let (mut peer, _) = listener.accept().expect("accept");
    // 60 bytes, 6 s at the trickle's pace.
    let greeting = format!("220 {}\r\n", "a".repeat(54));
    let mut sent = 0;
    for byte in greeting.as_bytes() {
        thread::sleep(TRICKLE);
        if client.is_finished() || peer.write_all(&[*byte]).is_err() {
            break;
        }
        sent += 1;
    }
    let ended_while_trickling = client.is_finished();
    drop(peer);
    let end = client.join().expect("client thread");

    assert!(
        ended_while_trickling && sent < greeting.len(),
        "the client gave up while bytes still came ({sent} sent)"
    );
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
}

/// Over TLS the deadline bounds the whole read: one TLS record whose
/// bytes trickle in holds rustls in one read call, over many socket
/// reads, and must not get a fresh timeout for each of them.
#[test]
fn trickled_tls_record_times_out_at_the_command_deadline() {
    let (server_tls, client_tls) = tls_configs();
    let (mut config, options) = starttls_server(server_tls);
    config.timeouts.server = SHORT_TIMEOUT;
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(b"EHLO tls.test\r\nSTARTTLS\r\n")
        .expect("starttls");
    let replies = read_replies(&mut peer, &mut got, 2);
    assert!(replies.contains("\r\n220 "), "{replies:?}");
    let mut conn =
        rustls::ClientConnection::new(client_tls, ServerName::try_from("localhost").unwrap())
            .expect("tls client");
    for _ in 0..100 {
        if !conn.is_handshaking() {
            break;
        }
        conn.complete_io(&mut peer).expect("handshake");
    }
    assert!(!conn.is_handshaking(), "handshake done");
    // One record holding a whole command, sent a byte at a time.
    let line = format!("EHLO {}\r\n", "b".repeat(53));
    conn.writer().write_all(line.as_bytes()).expect("plaintext");
    let mut record = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut record).expect("record");
    }
    let (sent, ended_while_trickling) = trickle(&mut peer, &record, &server);
    let mut tls = rustls::StreamOwned::new(conn, peer);
    let mut text = String::new();
    let mut chunk = [0u8; 1024];
    for _ in 0..1000 {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
        }
    }
    let (end, recorder) = server.join().expect("server thread");

    assert!(
        ended_while_trickling && sent < record.len(),
        "the server gave up while bytes still came ({sent} of {} sent)",
        record.len()
    );
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
    // Only the first EHLO and the switch to TLS reached the handler.
    assert_eq!(recorder.seen.events, ["Hello", "StartTls"]);
}

/// Sends EHLO, MAIL, RCPT and DATA to the server at `addr` and reads
/// their replies, the 354 last; returns the client and what it read.
fn at_data(addr: std::net::SocketAddr) -> (TcpStream, Vec<u8>) {
    let (mut peer, mut got) = greeted(addr);
    peer.write_all(
        b"EHLO slow.test\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
    )
    .expect("envelope");
    assert!(read_replies(&mut peer, &mut got, 4).contains("\r\n354 "));
    (peer, got)
}

/// Inside a message body the timeout limits the client's silence, not
/// the length of the message: a body that comes a byte at a time, each
/// byte within the timeout, is taken whole, however long it takes.
#[test]
fn slow_body_is_limited_by_silence_only() {
    let mut config = server_config();
    // Ten times the trickle's pace, so a busy machine cannot fail this.
    config.timeouts.server = Duration::from_secs(1);
    let (addr, server) = spawn_server(config, ServeOptions::default(), Recorder::new(None));
    let (mut peer, mut got) = at_data(addr);
    // 2.5 s at the trickle's pace.
    let body = format!("Subject: slow\r\n\r\n{}\r\n", "c".repeat(6));
    let (sent, ended) = trickle(&mut peer, body.as_bytes(), &server);
    assert!(!ended && sent == body.len(), "cut after {sent} bytes");
    peer.write_all(b".\r\nQUIT\r\n").expect("end");
    let start = got.len();
    assert!(read_to_close(&mut peer, &mut got), "the server closes");
    let (end, recorder) = server.join().expect("server thread");

    let text = String::from_utf8_lossy(&got[start..]).into_owned();
    assert!(
        text.starts_with("250 ") && text.ends_with("221 2.0.0 Bye\r\n"),
        "{text:?}"
    );
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert_eq!(recorder.seen.message, body.as_bytes());
}

/// `session_timeout` bounds the whole connection, a trickled body too:
/// the server ends it with the timeout's 421 while the body still comes.
#[test]
fn session_timeout_bounds_a_trickled_body() {
    let mut options = ServeOptions::default();
    options.session_timeout = Some(Duration::from_millis(800));
    let (addr, server) = spawn_server(server_config(), options, Recorder::new(None));
    let (mut peer, mut got) = at_data(addr);
    let from = got.len();
    // 6 s at the trickle's pace.
    let (sent, ended_while_trickling) = trickle(&mut peer, &[b'd'; 60], &server);
    let closed = read_to_close(&mut peer, &mut got);
    let (end, recorder) = server.join().expect("server thread");

    assert!(
        ended_while_trickling && sent < 60,
        "the server gave up while bytes still came ({sent} sent)"
    );
    assert!(closed, "the server closed the connection");
    let text = String::from_utf8_lossy(&got[from..]).into_owned();
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
    assert_eq!(recorder.seen.message_ends, 0);
}

#[test]
fn many_small_pipelined_bdat_chunks_over_tls() {
    // As above, over STARTTLS: the replies are read between pieces through
    // rustls without waiting.
    let (server_tls, client_tls) = tls_configs();
    let (config, options) = starttls_server(server_tls);
    let seen = small_chunks_through_small_buffers(
        config,
        options,
        TlsPolicy::Required,
        &starttls_run_options(client_tls),
    );
    assert!(seen.tls_at_end);
}

/// Timeouts too long to be an `Instant` (`Duration::MAX`, for "no limit")
/// mean no limit: the session runs as usual instead of the driver's clock
/// overflowing.
#[test]
fn timeouts_too_long_for_the_clock_mean_no_limit() {
    let mut config = server_config();
    config.timeouts.server = Duration::MAX;
    let mut options = ServeOptions::default();
    options.session_timeout = Some(Duration::MAX);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let mut peer = connect(addr);
    peer.write_all(b"EHLO client.test\r\nQUIT\r\n")
        .expect("write");
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let (end, _) = server.join().expect("server thread");
    let text = String::from_utf8_lossy(&got);
    assert!(closed, "the server closed the connection");
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
}
