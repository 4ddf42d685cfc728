//! Helpers shared by the loopback tests. Each test file uses only some of
//! them.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use smtp_proto_tokio::client::ClientHandler;
use smtp_proto_tokio::rustls::{ClientConfig as TlsClientConfig, ServerConfig as TlsServerConfig};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientEvent, Envelope, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
use smtp_proto_tokio::smtp_proto::sasl::{Credentials, SecretBytes};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::smtp_proto::status::ReplyCode;
use smtp_proto_tokio::tls;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound on each wait, so a broken test fails instead of hanging.
/// Not a performance assertion.
pub const BOUND: Duration = Duration::from_secs(30);

/// A connected client and server socket on 127.0.0.1.
pub async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

/// A rustls server config with a fresh self-signed certificate for
/// `localhost`, and a client config that trusts exactly that certificate.
pub fn tls_configs() -> (Arc<TlsServerConfig>, Arc<TlsClientConfig>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let cert_der = cert.der().clone();
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let server = tls::server_config_from_der(vec![cert_der.clone()], key_der).expect("server");
    let mut roots = smtp_proto_tokio::rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let client = tls::client_config_with_roots(roots).expect("client");
    (server, client)
}

/// Reads from `stream` into `buf` until `needle` has been seen, bounded.
pub async fn read_until<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>, needle: &[u8]) {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        while !buf.windows(needle.len()).any(|w| w == needle) {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(needle));
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("bounded read");
}

/// Reads one CRLF-ended line from `stream` (bounded by [`BOUND`]), without
/// its CRLF; `None` once the peer closed the connection. `buf` keeps what
/// was read past the line.
pub async fn read_line<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&buf[..i]).into_owned();
                buf.drain(..i + 2);
                return Some(line);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("bounded")
}

/// Reads what the peer sends until it closes, bounded in time; appends it
/// to `got`.
pub async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S, got: &mut Vec<u8>) {
    tokio::time::timeout(BOUND, stream.read_to_end(got))
        .await
        .expect("the peer closes")
        .expect("read");
}

/// Waits, bounded, for a spawned task and returns its output.
pub async fn join<T>(task: JoinHandle<T>) -> T {
    tokio::time::timeout(BOUND, task)
        .await
        .expect("bounded")
        .expect("join")
}

/// A client configuration for `client.example.com` with the given TLS
/// policy.
pub fn client_config(tls: TlsPolicy) -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.com").expect("domain")).with_tls(tls)
}

/// An envelope from `from` to each of `to`.
pub fn envelope<'a>(from: &'a str, to: impl IntoIterator<Item = &'a str>) -> Envelope<'a> {
    let mut env = Envelope::new(ReversePath::Mailbox(Mailbox::parse(from).expect("mb")));
    for r in to {
        env = env.recipient(ForwardPath::Mailbox(Mailbox::parse(r).expect("mb")));
    }
    env
}

/// A client application that authenticates (when given credentials),
/// sends one message from `from` to `recipients`, in pieces of at most
/// 1000 bytes, then quits; it records what it saw.
pub struct OneMessage {
    pub from: String,
    pub recipients: Vec<String>,
    pub body: Vec<u8>,
    pub sent: bool,
    pub offset: usize,
    pub auth: Option<AuthCredentials>,
    /// Whether the greeting reached the application.
    pub greeted: bool,
    /// Whether every recipient got the message, once the transaction ended.
    pub delivered: Option<bool>,
    /// How many recipients the server accepted.
    pub accepted: usize,
    /// The answers to the challenges of an application-run SASL
    /// mechanism, in order; the challenges seen are recorded.
    pub answers: Vec<Vec<u8>>,
    pub challenges: Vec<(Vec<u8>, usize)>,
}

impl OneMessage {
    pub fn new(from: &str, recipients: impl IntoIterator<Item = String>, body: &[u8]) -> Self {
        Self {
            from: from.to_owned(),
            recipients: recipients.into_iter().collect(),
            body: body.to_vec(),
            sent: false,
            offset: 0,
            auth: None,
            greeted: false,
            delivered: None,
            accepted: 0,
            answers: Vec::new(),
            challenges: Vec::new(),
        }
    }
}

impl ClientHandler for OneMessage {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        let r = match event {
            ClientEvent::Greeting { .. } => {
                self.greeted = true;
                Ok(())
            }
            ClientEvent::Ready | ClientEvent::Authenticated { .. } => {
                if let Some(creds) = self.auth.take() {
                    client.authenticate(creds, None).map(|_| ())
                } else if self.sent {
                    client.quit()
                } else {
                    self.sent = true;
                    let env = envelope(&self.from, self.recipients.iter().map(String::as_str));
                    client.send_mail(&env)
                }
            }
            ClientEvent::Recipient { verdict, .. } => {
                if verdict.is_success() {
                    self.accepted += 1;
                }
                Ok(())
            }
            ClientEvent::AuthChallenge {
                challenge, round, ..
            } => {
                self.challenges.push((challenge, round));
                if self.answers.is_empty() {
                    client.cancel_auth()
                } else {
                    let answer = self.answers.remove(0);
                    client.auth_response(&answer)
                }
            }
            ClientEvent::AuthFailed { .. } => client.quit(),
            ClientEvent::TransactionEnd(summary) => {
                self.delivered = Some(summary.all_delivered());
                client.quit()
            }
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        // Small pieces, so a long body crosses many writes.
        let rest = &self.body[self.offset..];
        if rest.is_empty() {
            return Ok(false);
        }
        let n = rest.len().min(1000);
        piece.extend_from_slice(&rest[..n]);
        self.offset += n;
        Ok(true)
    }
}

/// A server application that accepts everything (checking one password)
/// and records what it saw.
#[derive(Default)]
pub struct Recorder {
    pub messages: Vec<Vec<u8>>,
    pub current: Vec<u8>,
    pub recipients: usize,
    pub auth_user: Option<String>,
    pub saw_end: bool,
    /// For an application-run SASL mechanism: the challenge to send to the
    /// AUTH command, and the answer accepted (as `tim`) after it.
    pub exchange: Option<(Vec<u8>, Vec<u8>)>,
    /// The name of every event, in order, with whether the session was on
    /// TLS when it came.
    pub events: Vec<(String, bool)>,
}

/// The name of an event, without its fields.
pub fn event_name(event: &ServerEvent<'_>) -> String {
    format!("{event:?}")
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("")
        .to_owned()
}

impl ServerHandler for Recorder {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        self.events.push((event_name(&event), session.is_tls()));
        let r = match event {
            ServerEvent::Hello { .. } | ServerEvent::Mail { .. } => session.accept(),
            ServerEvent::Rcpt { .. } => {
                self.recipients += 1;
                session.accept()
            }
            ServerEvent::Auth(Credentials::Plain {
                authcid, password, ..
            }) => {
                if password.expose() == "secret" {
                    self.auth_user = Some(authcid);
                    session.accept()
                } else {
                    let reply =
                        OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "no").expect("reply");
                    session.reject(reply)
                }
            }
            ServerEvent::Auth(_) => session.accept(),
            ServerEvent::AuthExchange {
                response, round, ..
            } => match (&self.exchange, round) {
                (Some((challenge, _)), 0) => session.auth_challenge(challenge).map(|_| ()),
                (Some((_, answer)), 1)
                    if response.as_ref().map(SecretBytes::expose) == Some(&answer[..]) =>
                {
                    self.auth_user = Some("tim".to_owned());
                    session.accept_auth("tim")
                }
                _ => session.reject(
                    OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "no").expect("reply"),
                ),
            },
            ServerEvent::MessageChunk(b) => {
                self.current.extend_from_slice(b);
                Ok(())
            }
            ServerEvent::MessageEnd { .. } => {
                self.saw_end = true;
                self.messages.push(std::mem::take(&mut self.current));
                session.accept()
            }
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }
}

/// What a task spawned by [`spawn_recorder`] returns: how `serve` ended
/// (the error as text) and the [`Recorder`].
pub type RecorderTask = JoinHandle<(Result<ServeEnd, String>, Recorder)>;

/// Spawns a task that greets, then serves `stream` with `config`, default
/// options and a [`Recorder`].
pub fn spawn_recorder(stream: TcpStream, config: ServerConfig) -> RecorderTask {
    tokio::spawn(async move {
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let end = serve(stream, &mut session, &mut rec, &ServeOptions::default()).await;
        (end.map_err(|e| e.to_string()), rec)
    })
}

/// Spawns a task that greets, then serves `stream` offering STARTTLS with
/// `server_tls` (a certificate for `localhost`), with a [`Recorder`].
pub fn spawn_starttls_server(stream: TcpStream, server_tls: Arc<TlsServerConfig>) -> RecorderTask {
    tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.net");
        config.starttls = true;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = Some(smtp_proto_tokio::tokio_rustls::TlsAcceptor::from(
            server_tls,
        ));
        let mut rec = Recorder::default();
        let end = serve(stream, &mut session, &mut rec, &options).await;
        (end.map_err(|e| e.to_string()), rec)
    })
}
