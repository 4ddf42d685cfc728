//! Lines and replies longer than the configured `read_buffer`, but within
//! the session's own limits, over loopback TCP: the drivers must hold them
//! whole and answer, never take a full buffer for the peer's close.
//!
//! Every wait is bounded in time (`BOUND`) and every read loop in count, so
//! a broken driver fails a test instead of hanging it.

mod support;

use support::{client_config, join, pair, BOUND};

use base64::Engine as _;
use smtp_proto_tokio::client::{self, ClientHandler, RunError, RunOptions};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{
    AuthCredentials, Client, ClientError, ClientEvent, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::reply::{DecoderConfig, OwnedReply, ReplyErrorKind};
use smtp_proto_tokio::smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::smtp_proto::status::ReplyCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The most reads one helper makes before it gives up.
const MAX_READS: usize = 10_000;

/// The most bytes one helper collects before it gives up.
const MAX_BYTES: usize = 256 * 1024;

/// A `read_buffer` well below the longest AUTH line the session accepts.
const SMALL: usize = 2048;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The end of the first complete reply at the front of `buf` (through the
/// CRLF of its `NNN ` line), if `buf` holds one.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') {
        let end = start + lf + 1;
        if buf.get(start + 3) == Some(&b' ') {
            return Some(end);
        }
        start = end;
    }
    None
}

/// Reads until `pending` holds one complete reply, takes it off the front
/// and returns it; panics when the peer closes first.
async fn read_reply<R: AsyncRead + Unpin>(stream: &mut R, pending: &mut Vec<u8>) -> Vec<u8> {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        for _ in 0..MAX_READS {
            if let Some(end) = reply_end(pending) {
                return pending.drain(..end).collect();
            }
            assert!(pending.len() < MAX_BYTES, "no reply in {} bytes", MAX_BYTES);
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed before a complete reply; got {:?}",
                String::from_utf8_lossy(pending)
            );
            pending.extend_from_slice(&chunk[..n]);
        }
        panic!("no complete reply after {MAX_READS} reads");
    })
    .await
    .expect("bounded read")
}

/// Reads one line (through LF) from `stream`; panics when the peer closes
/// first.
async fn read_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Vec<u8> {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        for _ in 0..MAX_READS {
            if let Some(lf) = pending.iter().position(|&b| b == b'\n') {
                return pending.drain(..=lf).collect();
            }
            assert!(pending.len() < MAX_BYTES, "no line in {} bytes", MAX_BYTES);
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before a complete line");
            pending.extend_from_slice(&chunk[..n]);
        }
        panic!("no complete line after {MAX_READS} reads");
    })
    .await
    .expect("bounded read")
}

/// A server application that accepts HELO/EHLO and checks AUTH against
/// one user and one secret (password or bearer token).
struct AuthChecker {
    user: String,
    secret: String,
    seen: Vec<(SaslMechanism, String, bool)>,
}

impl AuthChecker {
    fn new(user: &str, secret: &str) -> Self {
        Self {
            user: user.to_owned(),
            secret: secret.to_owned(),
            seen: Vec::new(),
        }
    }
}

impl ServerHandler for AuthChecker {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        let r = match event {
            ServerEvent::Hello { .. } => session.accept(),
            ServerEvent::Auth(creds) => {
                let (user, secret) = match &creds {
                    Credentials::Plain {
                        authcid, password, ..
                    } => (authcid.as_str(), password.expose()),
                    Credentials::Login { username, password } => {
                        (username.as_str(), password.expose())
                    }
                    Credentials::XOAuth2 { user, token } => (user.as_str(), token.expose()),
                    _ => ("", ""),
                };
                let ok = user == self.user && secret == self.secret;
                self.seen.push((creds.mechanism(), user.to_owned(), ok));
                if ok {
                    session.accept()
                } else {
                    let reply = OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "no")
                        .map_err(std::io::Error::other)?;
                    session.reject(reply)
                }
            }
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }
}

type ServerTask = JoinHandle<(Result<ServeEnd, String>, AuthChecker)>;

/// Serves one connection with `read_buffer`, AUTH PLAIN, LOGIN and XOAUTH2
/// offered in plaintext, and an [`AuthChecker`] for `user` / `secret`.
fn spawn_server(stream: TcpStream, read_buffer: usize, user: &str, secret: &str) -> ServerTask {
    let mut config = ServerConfig::new("mx.example.net");
    config.auth_mechanisms = vec![
        SaslMechanism::Plain,
        SaslMechanism::Login,
        SaslMechanism::XOAuth2,
    ];
    config.auth_requires_tls = false;
    let mut handler = AuthChecker::new(user, secret);
    tokio::spawn(async move {
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.read_buffer = read_buffer;
        let end = serve(stream, &mut session, &mut handler, &options).await;
        (end.map_err(|e| e.to_string()), handler)
    })
}

/// Reads the greeting and says EHLO; returns what is left unread.
async fn greet_and_ehlo(c: &mut TcpStream) -> Vec<u8> {
    let mut pending = Vec::new();
    let greeting = read_reply(c, &mut pending).await;
    assert!(greeting.starts_with(b"220 "), "{greeting:?}");
    c.write_all(b"EHLO client.example.com\r\n")
        .await
        .expect("write");
    let ehlo = String::from_utf8(read_reply(c, &mut pending).await).expect("utf-8");
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN XOAUTH2\r\n"),
        "{ehlo:?}"
    );
    pending
}

/// Sends QUIT, expects the `221`, then the server's close and
/// `ServeEnd::Closed`.
async fn quit_and_join(mut c: TcpStream, mut pending: Vec<u8>, server: ServerTask) -> AuthChecker {
    c.write_all(b"QUIT\r\n").await.expect("write");
    let bye = read_reply(&mut c, &mut pending).await;
    assert!(
        bye.starts_with(b"221 "),
        "{:?}",
        String::from_utf8_lossy(&bye)
    );
    let (end, handler) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    handler
}

/// `AUTH XOAUTH2 <initial response>` carrying a token of `token_len`
/// octets, for user `bob`.
fn xoauth2_line(token: &str) -> Vec<u8> {
    let raw = format!("user=bob\x01auth=Bearer {token}\x01\x01");
    format!("AUTH XOAUTH2 {}\r\n", b64(raw.as_bytes())).into_bytes()
}

#[tokio::test]
async fn long_xoauth2_line_fits_a_small_read_buffer_and_is_answered() {
    // A bearer token of 3,000 octets: a line of about 4 KB, twice the
    // configured read buffer and well within the session's AUTH line limit.
    let token = "t".repeat(3000);
    let (mut c, s) = pair().await;
    let server = spawn_server(s, SMALL, "bob", &token);
    let mut pending = greet_and_ehlo(&mut c).await;
    let line = xoauth2_line(&token);
    assert!(line.len() > 3000 && line.len() < 12288, "{}", line.len());
    c.write_all(&line).await.expect("write");
    let reply = read_reply(&mut c, &mut pending).await;
    assert_eq!(reply, b"235 2.7.0 Authentication successful\r\n");
    let handler = quit_and_join(c, pending, server).await;
    assert_eq!(
        handler.seen,
        vec![(SaslMechanism::XOAuth2, "bob".to_owned(), true)]
    );
}

#[tokio::test]
async fn long_plain_line_is_answered_not_taken_for_a_close() {
    // `AUTH PLAIN` lines of about 3.3 KB: over the configured read buffer,
    // within the AUTH line limit. The 2500-octet passwords are longer than
    // the 255 octets RFC 4616 §2 asks a server to accept at least, and are
    // decoded whole: the application judges them.
    let good = "p".repeat(2500);
    let plain_line = |password: &str| {
        let raw = format!("\0alice\0{password}");
        format!("AUTH PLAIN {}\r\n", b64(raw.as_bytes())).into_bytes()
    };
    let wrong = plain_line(&"q".repeat(2500));
    assert!(wrong.len() > 3000 && wrong.len() < 12288, "{}", wrong.len());
    let (mut c, s) = pair().await;
    let server = spawn_server(s, SMALL, "alice", &good);
    let mut pending = greet_and_ehlo(&mut c).await;
    c.write_all(&wrong).await.expect("write");
    let reply = read_reply(&mut c, &mut pending).await;
    assert!(
        reply.starts_with(b"535 "),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    // The session is still in step: the right long password works next.
    c.write_all(&plain_line(&good)).await.expect("write");
    let reply = read_reply(&mut c, &mut pending).await;
    assert_eq!(reply, b"235 2.7.0 Authentication successful\r\n");
    let handler = quit_and_join(c, pending, server).await;
    assert_eq!(
        handler.seen,
        vec![
            (SaslMechanism::Plain, "alice".to_owned(), false),
            (SaslMechanism::Plain, "alice".to_owned(), true)
        ]
    );
}

#[tokio::test]
async fn long_sasl_continuation_line_fits_a_small_read_buffer() {
    // LOGIN: the password comes as a continuation line of about 6.7 KB.
    let password = "w".repeat(5000);
    let (mut c, s) = pair().await;
    let server = spawn_server(s, SMALL, "carol", &password);
    let mut pending = greet_and_ehlo(&mut c).await;
    c.write_all(b"AUTH LOGIN\r\n").await.expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending).await,
        b"334 VXNlcm5hbWU6\r\n"
    );
    c.write_all(format!("{}\r\n", b64(b"carol")).as_bytes())
        .await
        .expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending).await,
        b"334 UGFzc3dvcmQ6\r\n"
    );
    let line = format!("{}\r\n", b64(password.as_bytes()));
    assert!(line.len() > 3 * SMALL, "{}", line.len());
    c.write_all(line.as_bytes()).await.expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending).await,
        b"235 2.7.0 Authentication successful\r\n"
    );
    let handler = quit_and_join(c, pending, server).await;
    assert_eq!(
        handler.seen,
        vec![(SaslMechanism::Login, "carol".to_owned(), true)]
    );
}

#[tokio::test]
async fn auth_lines_up_to_the_session_limit_fit_any_read_buffer() {
    // The tiniest read buffer; the session's AUTH line limit decides.
    let limit = ServerConfig::default().max_auth_line_length;
    let prefix = "AUTH XOAUTH2 ".len();
    // The longest base64 text that keeps the line (CRLF included) within
    // the limit: a multiple of four octets.
    let b64_len = (limit - prefix - 2) / 4 * 4;
    let raw_len = b64_len / 4 * 3;
    let overhead = "user=bob\x01auth=Bearer \x01\x01".len();
    let token = "k".repeat(raw_len - overhead);
    let line = xoauth2_line(&token);
    assert!(
        line.len() <= limit && line.len() > limit - 4,
        "{}",
        line.len()
    );

    let (mut c, s) = pair().await;
    let server = spawn_server(s, 1, "bob", &token);
    let mut pending = greet_and_ehlo(&mut c).await;
    // One line past the limit first: refused as too long (RFC 4954 §6,
    // 5.5.6), and the session stays in step.
    let too_long = xoauth2_line(&"k".repeat(raw_len));
    assert!(too_long.len() > limit);
    c.write_all(&too_long).await.expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending).await,
        b"500 5.5.6 Authentication exchange line is too long\r\n"
    );
    c.write_all(&line).await.expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending).await,
        b"235 2.7.0 Authentication successful\r\n"
    );
    let handler = quit_and_join(c, pending, server).await;
    assert_eq!(
        handler.seen,
        vec![(SaslMechanism::XOAuth2, "bob".to_owned(), true)]
    );
}

/// A multi-line EHLO reply of exactly `total` octets: `250-mx.example.net`,
/// filler capability lines of at most 400 octets, and `250 SIZE 1000000`.
fn ehlo_reply(total: usize) -> Vec<u8> {
    let first = b"250-mx.example.net\r\n";
    let last = b"250 SIZE 1000000\r\n";
    let mut out = first.to_vec();
    let mut rest = total - first.len() - last.len();
    let mut n = 0;
    while rest > 0 {
        // "250-X-FILL " + a parameter of at least one octet + CRLF.
        let len = if rest > 512 { 400 } else { rest };
        assert!(len >= 14, "cannot fill {rest} octets");
        out.extend_from_slice(b"250-X-FILL ");
        out.resize(out.len() + len - 13, b'a' + (n % 26) as u8);
        out.extend_from_slice(b"\r\n");
        rest -= len;
        n += 1;
    }
    out.extend_from_slice(last);
    assert_eq!(out.len(), total);
    out
}

/// A client application that quits as soon as the session is ready, and
/// notes what the server offered.
#[derive(Default)]
struct QuitWhenReady {
    ready: bool,
    max_size: Option<u64>,
    fill_lines: usize,
}

impl ClientHandler for QuitWhenReady {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        if let ClientEvent::Ready = event {
            self.ready = true;
            let caps = client.capabilities().expect("EHLO capabilities");
            self.max_size = caps.max_size();
            self.fill_lines = caps.unknown().filter(|c| c.keyword() == "X-FILL").count();
            client.quit().map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    async fn next_body_piece(&mut self, _piece: &mut Vec<u8>) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// A scripted server: greeting, `ehlo` as the answer to EHLO, `221` to
/// QUIT. Returns the lines the client sent.
async fn scripted_server(mut s: TcpStream, ehlo: Vec<u8>) -> Vec<Vec<u8>> {
    let mut pending = Vec::new();
    let mut lines = Vec::new();
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("write");
    let hello = read_line(&mut s, &mut pending).await;
    lines.push(hello);
    s.write_all(&ehlo).await.expect("write");
    // The client either quits or, after a bad reply, closes.
    let mut chunk = [0u8; 4096];
    let got_more = tokio::time::timeout(BOUND, async {
        for _ in 0..MAX_READS {
            if pending.contains(&b'\n') {
                return true;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        }
        false
    })
    .await
    .expect("bounded read");
    if got_more {
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(b"221 2.0.0 Bye\r\n").await.expect("write");
    }
    lines
}

async fn run_client(
    read_buffer: usize,
    ehlo: Vec<u8>,
) -> (Result<(), RunError>, QuitWhenReady, Vec<Vec<u8>>) {
    let (c, s) = pair().await;
    let server = tokio::spawn(scripted_server(s, ehlo));
    let mut client = Client::new(client_config(TlsPolicy::Off));
    let mut app = QuitWhenReady::default();
    let mut options = RunOptions::default();
    options.read_buffer = read_buffer;
    let result = tokio::time::timeout(BOUND, client::run(c, &mut client, &mut app, &options))
        .await
        .expect("bounded");
    let lines = join(server).await;
    (result, app, lines)
}

#[tokio::test]
async fn long_multiline_ehlo_reply_fits_a_small_read_buffer() {
    // About 8 KB of EHLO reply against a 1 KB read buffer.
    let reply = ehlo_reply(8000);
    let lines = reply.iter().filter(|&&b| b == b'\n').count();
    let (result, app, sent) = run_client(1024, reply).await;
    result.expect("client run");
    assert!(app.ready);
    assert_eq!(app.max_size, Some(1_000_000));
    assert_eq!(app.fill_lines, lines - 2);
    assert_eq!(
        sent,
        vec![
            b"EHLO client.example.com\r\n".to_vec(),
            b"QUIT\r\n".to_vec()
        ]
    );
}

#[tokio::test]
async fn ehlo_reply_of_the_longest_accepted_length_fits_any_read_buffer() {
    let max = DecoderConfig::DEFAULT_MAX_REPLY_LEN;
    assert_eq!(client_config(TlsPolicy::Off).replies.max_reply_len, max);
    let (result, app, sent) = run_client(1, ehlo_reply(max)).await;
    result.expect("client run");
    assert_eq!(app.max_size, Some(1_000_000));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1], b"QUIT\r\n");
}

#[tokio::test]
async fn ehlo_reply_one_octet_too_long_is_a_bad_reply_not_a_close() {
    let max = DecoderConfig::DEFAULT_MAX_REPLY_LEN;
    let (result, app, sent) = run_client(1, ehlo_reply(max + 1)).await;
    match result {
        Err(RunError::Client(ClientError::BadReply(e))) => {
            assert_eq!(e.kind(), ReplyErrorKind::ReplyTooLong);
        }
        other => panic!("expected a too-long reply, got {other:?}"),
    }
    assert!(!app.ready);
    assert_eq!(sent, vec![b"EHLO client.example.com\r\n".to_vec()]);
}

/// A client application that authenticates with LOGIN once the session is
/// ready, then quits.
#[derive(Default)]
struct LoginThenQuit {
    authenticated: bool,
}

impl ClientHandler for LoginThenQuit {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ClientEvent::Ready if !client.is_authenticated() => {
                client
                    .authenticate(
                        AuthCredentials::password("alice", "s3cret"),
                        Some(SaslMechanism::Login),
                    )
                    .map_err(std::io::Error::other)?;
            }
            ClientEvent::Authenticated { .. } => {
                self.authenticated = true;
                client.quit().map_err(std::io::Error::other)?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn next_body_piece(&mut self, _piece: &mut Vec<u8>) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// RFC 4954 §4: the machine reads a challenge line of up to 12288 octets
/// during AUTH, whatever its reply limits. The read buffer holds it too,
/// when the reply limits and `read_buffer` are both set below it.
#[tokio::test]
async fn long_auth_challenge_fits_with_small_reply_limits_and_read_buffer() {
    let (c, mut s) = pair().await;
    // LOGIN's prompt, 8006 octets: over the reply limits below, within
    // the 12288 of an AUTH exchange.
    let prompt = format!("334 {}\r\n", b64(&[b'U'; 6000]));
    let server = tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut lines = Vec::new();
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("write");
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(b"250-mx.example.net\r\n250 AUTH LOGIN\r\n")
            .await
            .expect("write");
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(prompt.as_bytes()).await.expect("write");
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(b"334 UGFzc3dvcmQ6\r\n").await.expect("write");
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(b"235 2.7.0 ok\r\n").await.expect("write");
        lines.push(read_line(&mut s, &mut pending).await);
        s.write_all(b"221 2.0.0 Bye\r\n").await.expect("write");
        lines
    });
    let mut config = client_config(TlsPolicy::Off);
    config.allow_auth_without_tls = true;
    config.replies = DecoderConfig::default()
        .with_max_line_len(512)
        .with_max_reply_len(1024);
    let mut client = Client::new(config);
    let mut app = LoginThenQuit::default();
    let mut options = RunOptions::default();
    options.read_buffer = 1024;
    let result = tokio::time::timeout(BOUND, client::run(c, &mut client, &mut app, &options))
        .await
        .expect("bounded");
    result.expect("client run");
    assert!(app.authenticated);
    let lines = join(server).await;
    assert_eq!(
        lines,
        [
            &b"EHLO client.example.com\r\n"[..],
            b"AUTH LOGIN\r\n",
            b"YWxpY2U=\r\n",
            b"czNjcmV0\r\n",
            b"QUIT\r\n",
        ]
    );
}
