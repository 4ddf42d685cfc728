//! Helpers shared by the loopback tests: bounded timeouts, loopback
//! servers and peers on threads, raw clients, a recording server handler,
//! and TLS configurations.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::command::ReversePath;
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::session::Timeouts;
use smtp_proto_blocking::smtp_proto::status::ReplyCode;

/// Bounds every wait in the tests, so a broken driver fails instead of
/// hanging.
pub const BOUND: Duration = Duration::from_secs(20);

/// Session timeouts that are all [`BOUND`].
pub fn bounded_timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    t.initial = BOUND;
    t.mail = BOUND;
    t.rcpt = BOUND;
    t.data_init = BOUND;
    t.data_block = BOUND;
    t.data_termination = BOUND;
    t.server = BOUND;
    t
}

/// The server thread of [`spawn_server`]: the driver's result and the
/// handler.
pub type ServerThread<H> = JoinHandle<(Result<ServeEnd, ServeError>, H)>;

/// Binds a loopback listener and runs `peer` on a thread with the one
/// connection it accepts, which has a read timeout of [`BOUND`] (a driver
/// that gets it sets its own before each read).
pub fn spawn_peer<T, F>(peer: F) -> (SocketAddr, JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(TcpStream) -> T + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let join = thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        socket.set_read_timeout(Some(BOUND)).expect("timeout");
        peer(socket)
    });
    (addr, join)
}

/// Serves one loopback connection on a thread with `handler`; the thread
/// returns the driver's result and the handler.
#[allow(dead_code, reason = "not every test binary serves with it")]
pub fn spawn_server<H: ServerHandler + Send + 'static>(
    config: ServerConfig,
    options: ServeOptions,
    handler: H,
) -> (SocketAddr, ServerThread<H>) {
    spawn_server_with_buffers(config, options, handler, None)
}

/// [`spawn_server`], with the server socket's send and receive buffers
/// set to `buffers` bytes each (the kernel may round them).
pub fn spawn_server_with_buffers<H: ServerHandler + Send + 'static>(
    config: ServerConfig,
    options: ServeOptions,
    mut handler: H,
    buffers: Option<usize>,
) -> (SocketAddr, ServerThread<H>) {
    spawn_peer(move |socket| {
        if let Some(size) = buffers {
            let s = socket2::SockRef::from(&socket);
            s.set_send_buffer_size(size).expect("send buffer");
            s.set_recv_buffer_size(size).expect("receive buffer");
        }
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let end = serve(socket, &mut session, &mut handler, &options);
        (end, handler)
    })
}

/// A raw loopback client with a read timeout of [`BOUND`].
#[allow(dead_code, reason = "not every test binary connects a raw client")]
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(BOUND)).expect("timeout");
    s
}

/// Reads everything until the peer closes (bounded); returns whether it
/// closed (a clean end or a reset, rather than another read error or a
/// timeout).
#[allow(dead_code, reason = "not every test binary reads to the close")]
pub fn read_to_close(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 1024];
    for _ in 0..10_000 {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A peer that closes with bytes of ours still unread resets
            // the connection instead of ending it cleanly: closed too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Asserts that the peer closed the connection (`closed`, as returned by
/// [`read_to_close`]) without sending a byte; `closer` names the side that
/// closed it, for the failure message.
#[allow(dead_code, reason = "not every test binary expects a silent peer")]
#[track_caller]
pub fn assert_nothing_sent(closed: bool, got: &[u8], closer: &str) {
    assert!(closed, "the {closer} closed the connection");
    assert!(
        got.is_empty(),
        "nothing sent: {:?}",
        String::from_utf8_lossy(got)
    );
}

/// The name of an event, without its fields.
#[allow(dead_code, reason = "not every test binary records events")]
pub fn event_name<T: std::fmt::Debug>(event: &T) -> String {
    format!("{event:?}")
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("")
        .to_owned()
}

/// What the server side saw of a connection, as a [`Recorder`] keeps it.
#[allow(dead_code, reason = "each test binary reads only some fields")]
#[derive(Debug, Default)]
pub struct Seen {
    /// The domain of the last EHLO or HELO.
    pub hello: Option<String>,
    /// Whether the session was on TLS, at each EHLO or HELO.
    pub tls_at_hello: Vec<bool>,
    /// Whether the session was on TLS, at each `StartTls` event.
    pub tls_at_starttls: Vec<bool>,
    /// The reverse path of the last MAIL (empty for the null path).
    pub from: Option<String>,
    /// The accepted recipients, in order.
    pub rcpts: Vec<String>,
    /// Every message byte, all messages together.
    pub message: Vec<u8>,
    pub message_starts: usize,
    /// For each message start, whether it came by BDAT.
    pub chunked: Vec<bool>,
    pub message_ends: usize,
    /// Whether the session was on TLS at the last message end.
    pub tls_at_end: bool,
    /// Whether the session was authenticated at the last message end.
    pub auth_at_end: bool,
    /// The identity of the accepted AUTH.
    pub auth_user: Option<String>,
    /// The mechanism of the accepted AUTH.
    pub auth_mechanism: Option<SaslMechanism>,
    pub auth_failures: usize,
    /// The name of every event, in order.
    pub events: Vec<String>,
}

/// A server handler that accepts everything except recipients starting
/// with `nobody`, checks AUTH PLAIN and LOGIN against one user name and
/// password (rejecting every AUTH when it has none), and records what it
/// saw.
#[allow(dead_code, reason = "not every test binary serves with it")]
#[derive(Debug)]
pub struct Recorder {
    pub seen: Seen,
    auth: Option<(String, String)>,
}

#[allow(dead_code, reason = "not every test binary serves with it")]
impl Recorder {
    /// A recorder that accepts AUTH as `auth` (user name, password) only.
    pub fn new(auth: Option<(&str, &str)>) -> Self {
        Recorder {
            seen: Seen::default(),
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        }
    }
}

impl ServerHandler for Recorder {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        self.seen.events.push(event_name(&event));
        let decided = match event {
            ServerEvent::Hello { domain, .. } => {
                self.seen.hello = Some(domain.to_string());
                self.seen.tls_at_hello.push(session.is_tls());
                session.accept()
            }
            ServerEvent::Mail { from, .. } => {
                self.seen.from = Some(match from {
                    ReversePath::Null => String::new(),
                    ReversePath::Mailbox(m) => m.to_string(),
                });
                session.accept()
            }
            ServerEvent::Rcpt { to, .. } => {
                let to = to.to_string();
                if to.trim_start_matches('<').starts_with("nobody") {
                    session.reject(
                        OwnedReply::new(ReplyCode::MAILBOX_UNAVAILABLE, "No such user")
                            .map_err(std::io::Error::other)?,
                    )
                } else {
                    self.seen.rcpts.push(to);
                    session.accept()
                }
            }
            ServerEvent::Auth(credentials) => {
                let ok = match (&credentials, &self.auth) {
                    (
                        Credentials::Plain {
                            authcid, password, ..
                        },
                        Some((u, p)),
                    )
                    | (
                        Credentials::Login {
                            username: authcid,
                            password,
                        },
                        Some((u, p)),
                    ) => authcid == u && password.expose() == p,
                    _ => false,
                };
                if ok {
                    self.seen.auth_user = credentials.identity().map(str::to_owned);
                    self.seen.auth_mechanism = Some(credentials.mechanism());
                    session.accept()
                } else {
                    self.seen.auth_failures += 1;
                    session.reject(
                        OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "Invalid")
                            .map_err(std::io::Error::other)?,
                    )
                }
            }
            ServerEvent::StartTls => {
                self.seen.tls_at_starttls.push(session.is_tls());
                Ok(())
            }
            ServerEvent::MessageStart { chunked } => {
                self.seen.message_starts += 1;
                self.seen.chunked.push(chunked);
                Ok(())
            }
            ServerEvent::MessageChunk(bytes) => {
                self.seen.message.extend_from_slice(bytes);
                Ok(())
            }
            ServerEvent::MessageEnd { .. } => {
                self.seen.message_ends += 1;
                self.seen.tls_at_end = session.is_tls();
                self.seen.auth_at_end = session.is_authenticated();
                session.accept()
            }
            _ => Ok(()),
        };
        decided.map_err(std::io::Error::other)
    }
}

/// A self-signed certificate for `localhost`, as a server config and a
/// client config that trusts exactly it.
#[allow(dead_code, reason = "not every test binary runs TLS")]
pub fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    tls_configs_with_copies(1)
}

/// [`tls_configs`] with the server's certificate chain repeating its
/// certificate `copies` times, so that the server's first flight is that
/// many times larger.
#[allow(dead_code, reason = "not every test binary runs TLS")]
pub fn tls_configs_with_copies(
    copies: usize,
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone(); copies], key_der)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// The timeout methods of [`smtp_proto_blocking::Transport`] for a
/// wrapper whose socket is its field `$sock`, each passed on to the
/// socket. Impl items: expand it inside `impl Transport for ...`.
#[allow(unused_macros, reason = "not every test binary wraps a socket")]
macro_rules! socket_timeouts {
    ($sock:ident) => {
        fn set_read_timeout(
            &mut self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            self.$sock.set_read_timeout(timeout)
        }

        fn set_write_timeout(
            &mut self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            self.$sock.set_write_timeout(timeout)
        }

        fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.$sock.write_timeout()
        }
    };
}
#[allow(unused_imports, reason = "not every test binary wraps a socket")]
pub(crate) use socket_timeouts;
