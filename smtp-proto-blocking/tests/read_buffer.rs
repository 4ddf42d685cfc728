//! Lines and replies many times longer than one read (`read_size`), within
//! the session's own limits, over loopback TCP: the drivers must gather
//! them whole and answer, never take a partial line for the peer's close.
//!
//! Every socket has a read timeout (`BOUND`) and every read loop a count
//! bound, so a broken driver fails a test instead of hanging it.

mod support;

use support::{bounded_timeouts, connect, spawn_peer, spawn_server, ServerThread};

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::server::{ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, ClientError, ClientEvent, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::Domain;
use smtp_proto_blocking::smtp_proto::reply::{DecoderConfig, OwnedReply, ReplyErrorKind};
use smtp_proto_blocking::smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::status::ReplyCode;

/// The most reads one helper makes before it gives up.
const MAX_READS: usize = 10_000;

/// The most bytes one helper collects before it gives up.
const MAX_BYTES: usize = 256 * 1024;

/// The smallest read the drivers make.
const SMALL: usize = 512;

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
fn read_reply(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Vec<u8> {
    let mut chunk = [0u8; 4096];
    for _ in 0..MAX_READS {
        if let Some(end) = reply_end(pending) {
            return pending.drain(..end).collect();
        }
        assert!(pending.len() < MAX_BYTES, "no reply in {MAX_BYTES} bytes");
        let n = stream.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "closed before a complete reply; got {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&chunk[..n]);
    }
    panic!("no complete reply after {MAX_READS} reads");
}

/// Reads one line (through LF); `None` when the peer closes first.
fn read_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    for _ in 0..MAX_READS {
        if let Some(lf) = pending.iter().position(|&b| b == b'\n') {
            return Some(pending.drain(..=lf).collect());
        }
        assert!(pending.len() < MAX_BYTES, "no line in {MAX_BYTES} bytes");
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
    panic!("no complete line after {MAX_READS} reads");
}

/// A server application that accepts HELO/EHLO and checks AUTH against
/// one user and one secret (password or bearer token).
struct AuthChecker {
    user: String,
    secret: String,
    seen: Vec<(SaslMechanism, String, bool)>,
}

impl ServerHandler for AuthChecker {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        let r = match event {
            ServerEvent::Hello { .. } => session.accept(),
            ServerEvent::Auth(creds) => {
                let (user, secret) = match &creds {
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

/// Serves one loopback connection with `read_size`, AUTH LOGIN and XOAUTH2
/// offered in plaintext, checking `user` / `secret`; returns a connected
/// raw client (with a read timeout) and the server thread.
fn start(read_size: usize, user: &str, secret: &str) -> (TcpStream, ServerThread<AuthChecker>) {
    let mut config = ServerConfig::new("mx.example.net");
    config.auth_mechanisms = vec![SaslMechanism::Login, SaslMechanism::XOAuth2];
    config.auth_requires_tls = false;
    config.timeouts = bounded_timeouts();
    let handler = AuthChecker {
        user: user.to_owned(),
        secret: secret.to_owned(),
        seen: Vec::new(),
    };
    let mut options = ServeOptions::default();
    options.read_size = read_size;
    let (addr, server) = spawn_server(config, options, handler);
    (connect(addr), server)
}

/// Reads the greeting and says EHLO; returns what is left unread.
fn greet_and_ehlo(c: &mut TcpStream) -> Vec<u8> {
    let mut pending = Vec::new();
    let greeting = read_reply(c, &mut pending);
    assert!(greeting.starts_with(b"220 "), "{greeting:?}");
    c.write_all(b"EHLO client.example.com\r\n").expect("write");
    let ehlo = String::from_utf8(read_reply(c, &mut pending)).expect("utf-8");
    assert!(ehlo.contains("250-AUTH LOGIN XOAUTH2\r\n"), "{ehlo:?}");
    pending
}

/// Sends QUIT, expects the `221` and `ServeEnd::Closed`.
fn quit_and_join(
    mut c: TcpStream,
    mut pending: Vec<u8>,
    server: ServerThread<AuthChecker>,
) -> AuthChecker {
    c.write_all(b"QUIT\r\n").expect("write");
    let bye = read_reply(&mut c, &mut pending);
    assert!(
        bye.starts_with(b"221 "),
        "{:?}",
        String::from_utf8_lossy(&bye)
    );
    let (end, handler) = server.join().expect("server thread");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    handler
}

fn xoauth2_line(token: &str) -> Vec<u8> {
    let raw = format!("user=bob\x01auth=Bearer {token}\x01\x01");
    format!("AUTH XOAUTH2 {}\r\n", b64(raw.as_bytes())).into_bytes()
}

#[test]
fn long_xoauth2_line_spanning_many_reads_is_answered() {
    let token = "t".repeat(3000);
    let (mut c, server) = start(SMALL, "bob", &token);
    let mut pending = greet_and_ehlo(&mut c);
    let line = xoauth2_line(&token);
    assert!(line.len() > 3000 && line.len() < 12288, "{}", line.len());
    c.write_all(&line).expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending),
        b"235 2.7.0 Authentication successful\r\n"
    );
    let handler = quit_and_join(c, pending, server);
    assert_eq!(
        handler.seen,
        vec![(SaslMechanism::XOAuth2, "bob".to_owned(), true)]
    );
}

#[test]
fn long_sasl_continuation_line_spanning_many_reads_is_answered() {
    let password = "w".repeat(5000);
    let (mut c, server) = start(SMALL, "carol", &password);
    let mut pending = greet_and_ehlo(&mut c);
    c.write_all(b"AUTH LOGIN\r\n").expect("write");
    assert_eq!(read_reply(&mut c, &mut pending), b"334 VXNlcm5hbWU6\r\n");
    c.write_all(format!("{}\r\n", b64(b"carol")).as_bytes())
        .expect("write");
    assert_eq!(read_reply(&mut c, &mut pending), b"334 UGFzc3dvcmQ6\r\n");
    c.write_all(format!("{}\r\n", b64(password.as_bytes())).as_bytes())
        .expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending),
        b"235 2.7.0 Authentication successful\r\n"
    );
    let handler = quit_and_join(c, pending, server);
    assert_eq!(
        handler.seen,
        vec![(SaslMechanism::Login, "carol".to_owned(), true)]
    );
}

#[test]
fn auth_lines_at_and_past_the_session_limit() {
    let limit = ServerConfig::default().max_auth_line_length;
    let b64_len = (limit - "AUTH XOAUTH2 ".len() - 2) / 4 * 4;
    let raw_len = b64_len / 4 * 3;
    let overhead = "user=bob\x01auth=Bearer \x01\x01".len();
    let token = "k".repeat(raw_len - overhead);
    let line = xoauth2_line(&token);
    assert!(
        line.len() <= limit && line.len() > limit - 4,
        "{}",
        line.len()
    );
    let too_long = xoauth2_line(&"k".repeat(raw_len));
    assert!(too_long.len() > limit);

    let (mut c, server) = start(SMALL, "bob", &token);
    let mut pending = greet_and_ehlo(&mut c);
    c.write_all(&too_long).expect("write");
    // RFC 4954 §6: an over-long AUTH line is answered 5.5.6.
    assert_eq!(
        read_reply(&mut c, &mut pending),
        b"500 5.5.6 Authentication exchange line is too long\r\n"
    );
    c.write_all(&line).expect("write");
    assert_eq!(
        read_reply(&mut c, &mut pending),
        b"235 2.7.0 Authentication successful\r\n"
    );
    let handler = quit_and_join(c, pending, server);
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
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        if let ClientEvent::Ready = event {
            self.ready = true;
            let caps = client.capabilities().expect("EHLO capabilities");
            self.max_size = caps.max_size();
            self.fill_lines = caps.unknown().filter(|c| c.keyword() == "X-FILL").count();
            client.quit().map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    fn next_body_piece(&mut self, _piece: &mut Vec<u8>) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// Runs the client with `read_size` against a scripted server that sends
/// a greeting, `ehlo` as the answer to EHLO and `221` to QUIT; returns the
/// client's result, its handler and the lines it sent.
fn run_client(
    read_size: usize,
    ehlo: Vec<u8>,
) -> (Result<(), RunError>, QuitWhenReady, Vec<Vec<u8>>) {
    let (addr, server) = spawn_peer(move |mut s| {
        let mut pending = Vec::new();
        let mut lines = Vec::new();
        s.write_all(b"220 mx.example.net ESMTP\r\n").expect("write");
        lines.extend(read_line(&mut s, &mut pending));
        s.write_all(&ehlo).expect("write");
        // The client either quits or, after a bad reply, closes.
        if let Some(quit) = read_line(&mut s, &mut pending) {
            lines.push(quit);
            s.write_all(b"221 2.0.0 Bye\r\n").expect("write");
        }
        lines
    });
    let config = ClientConfig::new(Domain::new("client.example.com").expect("domain"))
        .with_tls(TlsPolicy::Off)
        .with_timeouts(bounded_timeouts());
    let mut client = Client::new(config);
    let mut app = QuitWhenReady::default();
    let mut options = RunOptions::default();
    options.read_size = read_size;
    let result = run(connect(addr), &mut client, &mut app, &options);
    let lines = server.join().expect("server thread");
    (result, app, lines)
}

#[test]
fn long_multiline_ehlo_reply_spanning_many_reads_is_read() {
    let reply = ehlo_reply(8000);
    let lines = reply.iter().filter(|&&b| b == b'\n').count();
    let (result, app, sent) = run_client(SMALL, reply);
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

#[test]
fn ehlo_reply_of_the_longest_accepted_length_is_read() {
    let max = DecoderConfig::DEFAULT_MAX_REPLY_LEN;
    let (result, app, sent) = run_client(SMALL, ehlo_reply(max));
    result.expect("client run");
    assert_eq!(app.max_size, Some(1_000_000));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1], b"QUIT\r\n");
}

#[test]
fn ehlo_reply_one_octet_too_long_is_a_bad_reply_not_a_close() {
    let max = DecoderConfig::DEFAULT_MAX_REPLY_LEN;
    let (result, app, sent) = run_client(SMALL, ehlo_reply(max + 1));
    match result {
        Err(RunError::Client(ClientError::BadReply(e))) => {
            assert_eq!(e.kind(), ReplyErrorKind::ReplyTooLong);
        }
        other => panic!("expected a too-long reply, got {other:?}"),
    }
    assert!(!app.ready);
    assert_eq!(sent, vec![b"EHLO client.example.com\r\n".to_vec()]);
}
