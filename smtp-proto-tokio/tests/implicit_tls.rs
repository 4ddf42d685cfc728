//! Implicit TLS (RFC 8314, the submissions port 465) in the drivers, over
//! loopback TCP with real rustls handshakes: `serve` and `run` start TLS
//! before any SMTP byte, refuse to run without an acceptor or connector,
//! and never fall back to plaintext.

mod support;

use support::{client_config, join, pair, tls_configs, OneMessage, Recorder, BOUND};

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use smtp_proto_tokio::client::{self, RunError, RunOptions};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::rustls::ClientConfig as TlsClientConfig;
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{
    AuthCredentials, Client, ClientError, ConfigError, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::sasl::SaslMechanism;
use smtp_proto_tokio::smtp_proto::server::{Rejection, ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::tls::StartTlsError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The handshake time-out of the tests that let a handshake hang.
const SHORT_HANDSHAKE: Duration = Duration::from_millis(200);

/// The most reads [`read_to_close`] makes.
const MAX_READS: usize = 10_000;

/// The first octet of a TLS record carrying a handshake message
/// (ClientHello, ServerHello, ...): content type 22 (RFC 8446 §5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A server configuration for implicit TLS.
fn implicit_config() -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.implicit_tls = true;
    cfg
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

/// Run options that start TLS with `client_tls`, the server named
/// `localhost`.
fn tls_options(client_tls: Arc<TlsClientConfig>) -> RunOptions {
    let mut opts = RunOptions::default();
    opts.tls = Some((TlsConnector::from(client_tls), localhost()));
    opts
}

/// Runs `client` with `app` over `stream`, bounded in time.
async fn run_bounded(
    stream: TcpStream,
    client: &mut Client,
    app: &mut OneMessage,
    opts: &RunOptions,
) -> Result<(), RunError> {
    tokio::time::timeout(BOUND, client::run(stream, client, app, opts))
        .await
        .expect("bounded")
}

/// Reads until the peer closes (a reset counts as closed), bounded in
/// time and in reads; returns everything read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(BOUND, async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        for _ in 0..MAX_READS {
            match stream.read(&mut chunk).await {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
                Err(e) => panic!("read: {e}"),
            }
        }
        panic!("the peer did not close");
    })
    .await
    .expect("the peer closes")
}

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A TCP stream that keeps a copy of every byte read from and written to
/// the wire.
struct Tap {
    inner: TcpStream,
    read: Arc<Mutex<Vec<u8>>>,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.read
                .lock()
                .expect("lock")
                .extend_from_slice(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.written
                .lock()
                .expect("lock")
                .extend_from_slice(&buf[..n]);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A [`Recorder`] that also keeps every refusal the session made by itself
/// (a STARTTLS on an encrypted session is one: `TlsAlreadyActive`), and
/// counts the events it saw.
#[derive(Default)]
struct Watcher {
    inner: Recorder,
    rejections: Vec<Rejection>,
    events: usize,
}

impl ServerHandler for Watcher {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> io::Result<()> {
        self.events += 1;
        if let ServerEvent::Rejected { reason, .. } = &event {
            self.rejections.push(reason.clone());
        }
        self.inner.on_event(session, event).await
    }
}

/// A client application that authenticates (when given credentials),
/// sends `body` from `alice@example.com` to `bob@example.org`, then quits.
fn submit(auth: Option<AuthCredentials>, body: &[u8]) -> OneMessage {
    let mut app = OneMessage::new("alice@example.com", ["bob@example.org".to_owned()], body);
    app.auth = auth;
    app
}

/// Spawns a task that greets and serves `stream` with `config`, the
/// acceptor and the handshake time-out; it returns how `serve` ended and
/// the [`Watcher`].
fn spawn_server<S>(
    stream: S,
    config: ServerConfig,
    acceptor: Option<TlsAcceptor>,
    handshake_timeout: Duration,
) -> tokio::task::JoinHandle<(Result<ServeEnd, ServeError>, Watcher, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut watcher = Watcher::default();
        let mut opts = ServeOptions::default();
        opts.tls = acceptor;
        opts.handshake_timeout = handshake_timeout;
        let end = serve(stream, &mut session, &mut watcher, &opts).await;
        (end, watcher, session.is_tls())
    })
}

#[tokio::test]
async fn implicit_tls_client_and_server_deliver_with_auth_and_nothing_in_the_clear() {
    let (server_tls, client_tls) = tls_configs();
    let (c, s) = pair().await;
    let wire_in = Arc::new(Mutex::new(Vec::new()));
    let wire_out = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap {
        inner: s,
        read: Arc::clone(&wire_in),
        written: Arc::clone(&wire_out),
    };
    let mut cfg = implicit_config();
    // STARTTLS is configured too: an encrypted session must not offer it.
    cfg.starttls = true;
    cfg.auth_mechanisms = vec![SaslMechanism::Plain];
    cfg.auth_requires_tls = true;
    let server = spawn_server(
        tap,
        cfg,
        Some(TlsAcceptor::from(server_tls)),
        Duration::from_secs(30),
    );

    let body = b"Subject: over port 465\r\n\r\nhello\r\n";
    let mut app = submit(Some(AuthCredentials::password("alice", "secret")), body);
    // Required: a client that wanted STARTTLS would have to send it.
    let mut client = Client::new(client_config(TlsPolicy::Required).with_implicit_tls(true));
    run_bounded(c, &mut client, &mut app, &tls_options(client_tls))
        .await
        .expect("client run");
    assert!(app.greeted);
    assert_eq!(app.delivered, Some(true));
    assert!(client.is_tls() && client.is_authenticated());

    let (end, watcher, server_tls_on) = join(server).await;
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert!(server_tls_on);
    assert_eq!(watcher.inner.auth_user.as_deref(), Some("alice"));
    assert_eq!(watcher.inner.messages, vec![body.to_vec()]);
    // A STARTTLS would have been refused as TlsAlreadyActive; nothing was
    // refused at all.
    assert_eq!(watcher.rejections, Vec::new());

    // On the wire: TLS records both ways from the first octet, and none of
    // the session in the clear.
    let wire_in = wire_in.lock().expect("lock").clone();
    let wire_out = wire_out.lock().expect("lock").clone();
    assert_eq!(wire_in.first(), Some(&TLS_HANDSHAKE_RECORD), "{wire_in:?}");
    assert_eq!(
        wire_out.first(),
        Some(&TLS_HANDSHAKE_RECORD),
        "{wire_out:?}"
    );
    // AGFsaWNlAHNlY3JldA== is the base64 of "\0alice\0secret", the PLAIN
    // response.
    for clear in [
        &b"EHLO"[..],
        b"STARTTLS",
        b"AUTH",
        b"AGFsaWNlAHNlY3JldA==",
        b"MAIL FROM",
        b"over port 465",
    ] {
        assert!(
            !contains(&wire_in, clear),
            "{:?} in the clear",
            String::from_utf8_lossy(clear)
        );
    }
    for clear in [&b"220 "[..], b"mx.example.net", b"250", b"235"] {
        assert!(
            !contains(&wire_out, clear),
            "{:?} in the clear",
            String::from_utf8_lossy(clear)
        );
    }
}

#[tokio::test]
async fn plaintext_client_gets_no_greeting_from_an_implicit_tls_server() {
    let (server_tls, _) = tls_configs();
    let (mut c, s) = pair().await;
    let server = spawn_server(
        s,
        implicit_config(),
        Some(TlsAcceptor::from(server_tls)),
        Duration::from_secs(30),
    );
    // A plaintext client: its EHLO is no TLS record, so the handshake
    // fails on it.
    c.write_all(b"EHLO plain.example\r\n").await.expect("write");
    let got = read_to_close(&mut c).await;
    assert!(!got.starts_with(b"220"), "{got:?}");
    assert!(!contains(&got, b"mx.example.net"), "{got:?}");
    assert!(!contains(&got, b"250"), "{got:?}");

    let (end, watcher, _) = join(server).await;
    assert!(
        matches!(end, Err(ServeError::StartTls(StartTlsError::Handshake(_)))),
        "{end:?}"
    );
    assert_eq!(watcher.events, 0);
}

#[tokio::test]
async fn serve_refuses_implicit_tls_without_an_acceptor_and_sends_nothing() {
    // With STARTTLS configured as well, the implicit-TLS check still
    // comes first.
    for starttls in [false, true] {
        let (mut c, s) = pair().await;
        let mut cfg = implicit_config();
        cfg.starttls = starttls;
        let server = spawn_server(s, cfg, None, Duration::from_secs(30));
        let (end, watcher, _) = join(server).await;
        assert!(
            matches!(end, Err(ServeError::ImplicitTlsNotConfigured)),
            "starttls {starttls}: {end:?}"
        );
        assert_eq!(watcher.events, 0);
        // Not even the greeting went out, in plaintext or otherwise.
        assert_eq!(read_to_close(&mut c).await, b"", "starttls {starttls}");
    }
}

#[tokio::test]
async fn run_refuses_implicit_tls_without_a_connector_and_sends_nothing() {
    let (c, mut s) = pair().await;
    // A plaintext server that greets at once: a client that took it for
    // encrypted would answer with EHLO.
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("greeting");
    let mut app = submit(Some(AuthCredentials::password("alice", "secret")), b"x\r\n");
    let mut client = Client::new(client_config(TlsPolicy::Off).with_implicit_tls(true));
    let end = run_bounded(c, &mut client, &mut app, &RunOptions::default()).await;
    assert!(
        matches!(end, Err(RunError::ImplicitTlsNotConfigured)),
        "{end:?}"
    );
    assert!(!app.greeted);
    // `run` dropped the connection without a byte.
    assert_eq!(read_to_close(&mut s).await, b"");
}

#[tokio::test]
async fn a_handshake_that_never_starts_ends_the_server_after_the_handshake_timeout() {
    let (server_tls, _) = tls_configs();
    let (mut c, s) = pair().await;
    // The session's own timeout is far longer: only the handshake
    // time-out can end this connection within the test's bound.
    let mut cfg = implicit_config();
    cfg.timeouts.server = Duration::from_secs(3600);
    let server = spawn_server(s, cfg, Some(TlsAcceptor::from(server_tls)), SHORT_HANDSHAKE);
    // The client connects and sends nothing.
    let got = read_to_close(&mut c).await;
    assert_eq!(got, b"", "nothing is sent before the handshake");
    let (end, watcher, _) = join(server).await;
    match end {
        Err(ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        }
        other => panic!("expected a handshake time-out, got {other:?}"),
    }
    assert_eq!(watcher.events, 0);
}

#[tokio::test]
async fn implicit_tls_client_refuses_a_plaintext_server() {
    let (_, client_tls) = tls_configs();
    let (c, mut s) = pair().await;
    // A plaintext server greets at once and reads whatever comes.
    let server = tokio::spawn(async move {
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        read_to_close(&mut s).await
    });
    let mut app = submit(Some(AuthCredentials::password("alice", "secret")), b"x\r\n");
    let mut client = Client::new(client_config(TlsPolicy::Off).with_implicit_tls(true));
    let end = run_bounded(c, &mut client, &mut app, &tls_options(client_tls)).await;
    assert!(
        matches!(end, Err(RunError::StartTls(StartTlsError::Handshake(_)))),
        "{end:?}"
    );
    assert!(!app.greeted, "a plaintext greeting must not be taken");
    let got = join(server).await;
    // The client sent its ClientHello, and no SMTP command.
    assert_eq!(got.first(), Some(&TLS_HANDSHAKE_RECORD), "{got:?}");
    assert!(!contains(&got, b"EHLO"), "{got:?}");
    assert!(!contains(&got, b"AUTH"), "{got:?}");
}

/// A hello domain in UTF-8 (U-labels) cannot go out in EHLO (RFC 5321
/// §4.1.1.1): `run` refuses the configuration before anything is sent,
/// not even the ClientHello of implicit TLS.
#[tokio::test]
async fn run_refuses_a_utf8_hello_domain_before_the_handshake() {
    let (_, client_tls) = tls_configs();
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move { read_to_close(&mut s).await });
    let mut app = submit(None, b"x\r\n");
    let config = smtp_proto_tokio::smtp_proto::client::ClientConfig::new(
        smtp_proto_tokio::smtp_proto::command::Domain::new("b\u{fc}cher.example").expect("domain"),
    )
    .with_implicit_tls(true);
    let mut client = Client::new(config);
    let end = run_bounded(c, &mut client, &mut app, &tls_options(client_tls)).await;
    assert!(
        matches!(
            end,
            Err(RunError::Client(ClientError::Config(
                ConfigError::NonAsciiHelloDomain
            )))
        ),
        "{end:?}"
    );
    assert!(!app.greeted);
    assert_eq!(join(server).await, b"", "nothing sent");
}

#[tokio::test]
async fn implicit_tls_client_gives_up_after_the_handshake_timeout() {
    let (_, client_tls) = tls_configs();
    let (c, mut s) = pair().await;
    // The server reads the ClientHello and never answers.
    let server = tokio::spawn(async move { read_to_close(&mut s).await });
    let mut app = submit(None, b"x\r\n");
    let mut client = Client::new(client_config(TlsPolicy::Off).with_implicit_tls(true));
    let mut opts = tls_options(client_tls);
    opts.handshake_timeout = SHORT_HANDSHAKE;
    let end = run_bounded(c, &mut client, &mut app, &opts).await;
    match end {
        Err(RunError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        }
        other => panic!("expected a handshake time-out, got {other:?}"),
    }
    assert!(!app.greeted);
    let got = join(server).await;
    assert_eq!(got.first(), Some(&TLS_HANDSHAKE_RECORD), "{got:?}");
}

/// A server that goes away in the middle of a reply, over TLS and without
/// TLS's close_notify: the client reports the server's close
/// ([`RunError::PeerClosed`], as over plaintext), not the TLS layer's
/// "unexpected end of file" as an I/O error.
#[tokio::test]
async fn implicit_tls_server_gone_without_close_notify_is_peer_closed() {
    let (server_tls, client_tls) = tls_configs();
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server_tls)
            .accept(s)
            .await
            .expect("handshake");
        tls.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        tokio::time::timeout(BOUND, async {
            while !contains(&got, b"\r\n") {
                let n = tls.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the client closed");
                got.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("bounded");
        // Half of an EHLO reply, then the connection goes away: the TLS
        // session is dropped without close_notify, and the socket closes.
        tls.write_all(b"250-mx.example.net\r\n")
            .await
            .expect("partial reply");
        tls.flush().await.expect("flush");
        let (tcp, _) = tls.into_inner();
        drop(tcp);
        got
    });
    let mut app = submit(None, b"x\r\n");
    let mut client = Client::new(client_config(TlsPolicy::Off).with_implicit_tls(true));
    let end = run_bounded(c, &mut client, &mut app, &tls_options(client_tls)).await;
    assert!(matches!(end, Err(RunError::PeerClosed)), "{end:?}");
    assert!(app.greeted);
    assert!(!app.sent, "no transaction began");
    assert!(join(server).await.starts_with(b"EHLO "));
}
