//! `client::Connection`: several messages over one session, over loopback
//! against the server driver and scripted servers: one greeting, one EHLO
//! (two with STARTTLS), AUTH once, a message per `send`; and a session
//! that the server ends between two messages.

mod support;

use support::{join, pair, read_line, spawn_recorder, tls_configs, Recorder, BOUND};

use std::sync::Arc;

use smtp_proto_tokio::client::{Connection, ConnectionError, RunError, RunOptions, SendError};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::rustls::ServerConfig as TlsServerConfig;
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions};
use smtp_proto_tokio::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, Delivery, DeliveryReport, Envelope, NotAttempted,
    RecipientOutcome, Stage, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
use smtp_proto_tokio::smtp_proto::sasl::SaslMechanism;
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use smtp_proto_tokio::tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn envelope(to: &[&str]) -> Envelope<'static> {
    let mut env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.com").unwrap().into_owned(),
    ));
    for t in to {
        env = env.recipient(ForwardPath::Mailbox(
            Mailbox::parse(t).unwrap().into_owned(),
        ));
    }
    env
}

fn config(tls: TlsPolicy) -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.com").unwrap()).with_tls(tls)
}

fn messages() -> [Vec<u8>; 3] {
    [1, 2, 3].map(|i| format!("Subject: message {i}\r\n\r\nbody {i}\r\n").into_bytes())
}

/// The names of the server's events, in order.
fn names(rec: &Recorder) -> Vec<&str> {
    rec.events.iter().map(|(e, _)| e.as_str()).collect()
}

fn assert_send<T: Send>(_: &T) {}

fn count(rec: &Recorder, name: &str) -> usize {
    names(rec).iter().filter(|e| **e == name).count()
}

async fn open(stream: TcpStream, client: Client, options: RunOptions) -> Connection<TcpStream> {
    let opening = Connection::open(stream, client, options);
    assert_send(&opening);
    tokio::time::timeout(BOUND, opening)
        .await
        .expect("bounded")
        .expect("open")
}

/// Opens a plaintext session over `stream` with the default options.
async fn open_plain(stream: TcpStream) -> Connection<TcpStream> {
    open(
        stream,
        Client::new(config(TlsPolicy::Off)),
        RunOptions::default(),
    )
    .await
}

/// Opens a session over `stream` that may authenticate without TLS and
/// tries a wrong password: the session and the refusal, asserted to be a
/// `535`.
async fn open_with_a_refused_password(stream: TcpStream) -> (Connection<TcpStream>, OwnedReply) {
    let client = Client::new(config(TlsPolicy::Off).with_auth_without_tls(true));
    let mut conn = open(stream, client, RunOptions::default()).await;
    let e = conn
        .authenticate(AuthCredentials::password("alice", "wrong"))
        .await
        .expect_err("refused");
    let ConnectionError::Refused(NotAttempted::AuthFailed { reply }) = e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 535);
    (conn, reply)
}

/// Sends `message` to `to`, waiting at most [`BOUND`] for the send.
async fn send_bounded(
    conn: &mut Connection<TcpStream>,
    to: &[&str],
    message: &[u8],
) -> Result<DeliveryReport, SendError> {
    tokio::time::timeout(BOUND, conn.send(envelope(to), message))
        .await
        .expect("bounded, not hanging")
}

/// Sends `message` to `to` within [`BOUND`] and asserts that every
/// recipient took it.
async fn send_delivered(
    conn: &mut Connection<TcpStream>,
    to: &[&str],
    message: &[u8],
) -> DeliveryReport {
    let report = send_bounded(conn, to, message).await.expect("send");
    assert!(report.all_delivered(), "{report:?}");
    report
}

/// How many of the command lines in `seen` begin with `verb`.
fn commands(seen: &[String], verb: &str) -> usize {
    seen.iter().filter(|l| l.starts_with(verb)).count()
}

/// The outcome of a recipient not tried because the connection was lost.
const CONNECTION_LOST: RecipientOutcome = RecipientOutcome::NotAttempted {
    reason: NotAttempted::ConnectionLost,
};

#[tokio::test]
async fn three_messages_over_one_session_against_the_server_driver() {
    let (c, s) = pair().await;
    let server = spawn_recorder(s, ServerConfig::new("mx.example.net"));
    let mut conn = open_plain(c).await;
    assert!(conn.is_open());
    assert!(conn.client().is_idle());
    let to = ["bob@example.org", "carol@example.org", "dave@example.org"];
    for (to, message) in to.iter().zip(messages()) {
        let sending = conn.send(envelope(&[to]), &message);
        // The future may move between threads (tokio::spawn).
        assert_send(&sending);
        let report = tokio::time::timeout(BOUND, sending)
            .await
            .expect("bounded")
            .expect("send");
        assert!(report.all_delivered(), "{report:?}");
        assert_eq!(report.transactions, 1);
        assert!(conn.is_open());
    }
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("quit");
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, messages());
    assert_eq!(count(&rec, "Hello"), 1, "{:?}", names(&rec));
    assert_eq!(count(&rec, "Mail"), 3);
    assert_eq!(rec.recipients, 3);
}

#[tokio::test]
async fn a_connection_dropped_without_quit_just_closes() {
    let (c, s) = pair().await;
    let server = spawn_recorder(s, ServerConfig::new("mx.example.net"));
    let mut conn = open_plain(c).await;
    let [one, ..] = messages();
    let report = conn
        .send(Delivery::new(envelope(&["bob@example.org"])), &one)
        .await
        .expect("send");
    assert!(report.all_delivered());
    drop(conn);
    let (end, rec) = join(server).await;
    // No QUIT came: the server saw the connection close.
    assert!(!names(&rec).contains(&"Quit"), "{:?}", names(&rec));
    assert_ne!(end, Ok(ServeEnd::Closed), "{end:?}");
    assert_eq!(rec.messages, [one]);
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

/// The server driver offering STARTTLS and AUTH PLAIN (over TLS only).
fn spawn_tls_server(
    s: TcpStream,
    server_tls: Arc<TlsServerConfig>,
) -> tokio::task::JoinHandle<(Result<ServeEnd, String>, Recorder)> {
    tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.net");
        config.starttls = true;
        config.auth_mechanisms = vec![SaslMechanism::Plain];
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = Some(TlsAcceptor::from(server_tls));
        let mut rec = Recorder::default();
        let end = serve(s, &mut session, &mut rec, &options).await;
        (end.map_err(|e| e.to_string()), rec)
    })
}

#[tokio::test]
async fn a_session_upgraded_with_starttls_and_authenticated_once_carries_every_message() {
    let (server_tls, client_tls) = tls_configs();
    let (c, s) = pair().await;
    let server = spawn_tls_server(s, server_tls);
    let mut options = RunOptions::default();
    options.tls = Some((TlsConnector::from(client_tls), localhost()));
    let mut conn = open(c, Client::new(config(TlsPolicy::Required)), options).await;
    assert!(conn.client().is_tls());
    let auth = conn.authenticate(AuthCredentials::password("alice", "secret"));
    assert_send(&auth);
    tokio::time::timeout(BOUND, auth)
        .await
        .expect("bounded")
        .expect("auth");
    assert!(conn.client().is_authenticated());
    // Authenticating again does nothing.
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .await
        .expect("auth again");
    let [one, two, _] = messages();
    for (to, message) in [("bob@example.org", &one), ("carol@example.org", &two)] {
        // A delivery with its own credentials does not authenticate again.
        let delivery =
            Delivery::new(envelope(&[to])).with_auth(AuthCredentials::password("alice", "secret"));
        let report = tokio::time::timeout(BOUND, conn.send(delivery, message))
            .await
            .expect("bounded")
            .expect("send");
        assert!(report.all_delivered(), "{report:?}");
    }
    let quit = conn.quit();
    assert_send(&quit);
    quit.await.expect("quit");
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, [one, two]);
    assert_eq!(rec.auth_user.as_deref(), Some("alice"));
    assert_eq!(count(&rec, "StartTls"), 1);
    assert_eq!(count(&rec, "Auth"), 1, "{:?}", names(&rec));
    // One EHLO in plaintext, one over TLS (RFC 3207 §4.2).
    assert_eq!(count(&rec, "Hello"), 2);
    // Everything after STARTTLS went over TLS.
    let after: Vec<&(String, bool)> = rec
        .events
        .iter()
        .skip_while(|(e, _)| e != "StartTls")
        .collect();
    assert!(after.iter().all(|(_, tls)| *tls), "{:?}", rec.events);
    assert!(after.iter().any(|(e, _)| e == "MessageEnd"));
}

#[tokio::test]
async fn a_refused_password_leaves_the_session_open() {
    let (c, s) = pair().await;
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.auth_mechanisms = vec![SaslMechanism::Plain];
    cfg.auth_requires_tls = false;
    let server = spawn_recorder(s, cfg);
    let (mut conn, _) = open_with_a_refused_password(c).await;
    assert!(conn.is_open());
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .await
        .expect("auth");
    let [one, ..] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    conn.quit().await.expect("quit");
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, [one]);
    assert_eq!(rec.auth_user.as_deref(), Some("alice"));
}

/// What the scripted server does once it has answered the first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFirst {
    /// Closes the connection.
    Close,
    /// Sends `421` and closes.
    Closing,
    /// Answers the next MAIL with `421` and closes.
    ClosingAtMail,
}

const CLOSING: &str = "421 4.3.2 shutting down\r\n";

/// Reads the lines of a message after DATA's `354`, up to its ending `.`
/// (or the end of the connection).
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) {
    while let Some(line) = read_line(s, buf).await {
        if line == "." {
            break;
        }
    }
}

/// The server side of a scripted exchange: the stream, what is buffered
/// of it and the command lines read so far.
struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
    seen: Vec<String>,
}

impl Peer {
    /// Sends the `220` greeting on `s`.
    async fn greet(mut s: TcpStream) -> Peer {
        s.write_all(b"220 mx.example.net ESMTP\r\n").await.unwrap();
        Peer {
            s,
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Reads the next command line and keeps it: the line in upper case,
    /// or `None` at the end of the connection.
    async fn next(&mut self) -> Option<String> {
        let cmd = read_line(&mut self.s, &mut self.buf).await?;
        let upper = cmd.to_ascii_uppercase();
        self.seen.push(cmd);
        Some(upper)
    }

    /// Answers DATA with `354` and reads the message up to its ending `.`.
    async fn take_message(&mut self) {
        self.s.write_all(b"354 go ahead\r\n").await.unwrap();
        read_message(&mut self.s, &mut self.buf).await;
    }

    /// Writes `reply`: false when the write failed.
    async fn reply(&mut self, reply: &str) -> bool {
        self.s.write_all(reply.as_bytes()).await.is_ok()
    }
}

/// A server with PIPELINING that takes one message, then acts as
/// `after`. Returns the command lines it read.
async fn scripted_server(s: TcpStream, after: AfterFirst) -> Vec<String> {
    let mut peer = Peer::greet(s).await;
    let mut messages = 0;
    for _ in 0..100 {
        let Some(upper) = peer.next().await else {
            break;
        };
        let reply = if upper.starts_with("EHLO") {
            "250-mx.example.net\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("MAIL") && messages == 1 {
            assert_eq!(after, AfterFirst::ClosingAtMail);
            peer.reply(CLOSING).await;
            break;
        } else if upper == "DATA" {
            peer.take_message().await;
            messages += 1;
            assert!(peer.reply("250 2.0.0 queued\r\n").await);
            match after {
                AfterFirst::Close => break,
                AfterFirst::Closing => {
                    assert!(peer.reply(CLOSING).await);
                    break;
                }
                AfterFirst::ClosingAtMail => continue,
            }
        } else {
            "250 2.0.0 Ok\r\n"
        };
        if !peer.reply(reply).await {
            break;
        }
    }
    peer.seen
}

/// Opens a connection to a [`scripted_server`], sends one message and
/// waits for the server to be done (closed; with
/// [`AfterFirst::ClosingAtMail`], after a second send got its `421`).
async fn after_one_message(after: AfterFirst) -> (Connection<TcpStream>, Vec<String>) {
    let (c, s) = pair().await;
    let server = tokio::spawn(scripted_server(s, after));
    let mut conn = open_plain(c).await;
    let [one, ..] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    if after == AfterFirst::ClosingAtMail {
        // The server waits for the next command.
        let [_, two, _] = messages();
        let report = send_bounded(&mut conn, &["carol@example.org", "dave@example.org"], &two)
            .await
            .expect("a 421 ends the send without an error");
        for r in &report.recipients {
            let RecipientOutcome::TemporaryFailure { stage, reply } = &r.outcome else {
                panic!("{report:?}")
            };
            assert_eq!((*stage, u16::from(reply.code())), (Stage::Mail, 421));
        }
    }
    let seen = join(server).await;
    (conn, seen)
}

#[tokio::test]
async fn a_server_that_closes_after_the_first_message_fails_the_second_send() {
    let (mut conn, seen) = after_one_message(AfterFirst::Close).await;
    let [_, two, three] = messages();
    let e = send_bounded(&mut conn, &["carol@example.org"], &two)
        .await
        .expect_err("the server is gone");
    assert!(matches!(e.error, RunError::PeerClosed), "{:?}", e.error);
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert!(!conn.is_open());
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
    // Later sends try nothing.
    let report = send_bounded(&mut conn, &["dave@example.org"], &three)
        .await
        .expect("nothing tried");
    assert_eq!(report.to_retry().count(), 1);
    assert_eq!(report.transactions, 0);
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("quit on an ended session just closes");
}

#[tokio::test]
async fn quit_after_the_server_closed_the_idle_session_just_closes() {
    let (conn, seen) = after_one_message(AfterFirst::Close).await;
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("nothing to say QUIT to: the session is over, not failed");
    assert!(!seen.iter().any(|l| l.starts_with("QUIT")), "{seen:?}");
}

#[tokio::test]
async fn a_421_while_idle_leaves_the_next_messages_not_attempted() {
    let (mut conn, _) = after_one_message(AfterFirst::Closing).await;
    let [_, two, three] = messages();
    let closing = |report: &smtp_proto_tokio::smtp_proto::client::DeliveryReport| {
        report.recipients.iter().all(|r| match &r.outcome {
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::ServiceClosing { reply },
            } => u16::from(reply.code()) == 421 && reply.text() == b"shutting down",
            _ => false,
        })
    };
    let report = send_bounded(&mut conn, &["carol@example.org", "dave@example.org"], &two)
        .await
        .expect("a 421 is no error");
    assert!(closing(&report), "{report:?}");
    assert_eq!(report.transactions, 0);
    assert!(!conn.is_open());
    let report = conn
        .send(envelope(&["erin@example.org"]), &three)
        .await
        .expect("nothing tried");
    assert!(closing(&report), "{report:?}");
}

#[tokio::test]
async fn a_421_to_the_next_mail_ends_the_session() {
    let (mut conn, seen) = after_one_message(AfterFirst::ClosingAtMail).await;
    assert!(!conn.is_open());
    assert!(matches!(
        conn.end_reason(),
        Some(NotAttempted::ServiceClosing { .. })
    ));
    assert_eq!(commands(&seen, "EHLO"), 1, "{seen:?}");
    let [_, _, three] = messages();
    let report = conn
        .send(envelope(&["erin@example.org"]), &three)
        .await
        .expect("nothing tried");
    assert!(matches!(
        &report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::ServiceClosing { .. }
        }
    ));
}

#[tokio::test]
async fn a_refused_greeting_fails_the_open() {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        s.write_all(b"554 5.7.1 go away\r\n").await.unwrap();
        let mut buf = Vec::new();
        read_line(&mut s, &mut buf).await
    });
    let e = tokio::time::timeout(
        BOUND,
        Connection::open(
            c,
            Client::new(config(TlsPolicy::Off)),
            RunOptions::default(),
        ),
    )
    .await
    .expect("bounded")
    .expect_err("refused");
    let ConnectionError::Refused(NotAttempted::SessionRefused { reply }) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 554);
    assert_eq!(join(server).await.as_deref(), Some("QUIT"));
}

#[tokio::test]
async fn noop_checks_the_kept_session() {
    let (c, s) = pair().await;
    let server = spawn_recorder(s, ServerConfig::new("mx.example.net"));
    let mut conn = open_plain(c).await;
    tokio::time::timeout(BOUND, conn.noop())
        .await
        .expect("bounded")
        .expect("the session is there");
    let [one, ..] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    conn.noop().await.expect("still there");
    conn.quit().await.expect("quit");
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(count(&rec, "Noop"), 2, "{:?}", names(&rec));
    assert_eq!(rec.messages, [one]);
}

#[tokio::test]
async fn noop_finds_a_session_the_server_ended() {
    let (mut conn, _) = after_one_message(AfterFirst::Closing).await;
    let e = tokio::time::timeout(BOUND, conn.noop())
        .await
        .expect("bounded")
        .expect_err("the server sent 421");
    assert!(
        matches!(
            &e,
            ConnectionError::Refused(NotAttempted::ServiceClosing { reply })
                if u16::from(reply.code()) == 421
        ),
        "{e:?}"
    );
    assert!(!conn.is_open());
    let (mut conn, _) = after_one_message(AfterFirst::Close).await;
    let e = tokio::time::timeout(BOUND, conn.noop())
        .await
        .expect("bounded")
        .expect_err("the server closed");
    assert!(
        matches!(e, ConnectionError::Run(RunError::PeerClosed)),
        "{e:?}"
    );
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
}

/// A server with PIPELINING that takes messages with DATA; after the
/// first one's reply it writes each of `after`, 300 ms apart, while the
/// session is idle. Returns the command lines it read.
async fn pausing_server(s: TcpStream, after: &'static [&'static str]) -> Vec<String> {
    let mut peer = Peer::greet(s).await;
    let mut messages = 0;
    for _ in 0..100 {
        let Some(upper) = peer.next().await else {
            break;
        };
        let reply = if upper.starts_with("EHLO") {
            "250-mx.example.net\r\n250 PIPELINING\r\n"
        } else if upper == "DATA" {
            peer.take_message().await;
            messages += 1;
            if !peer.reply("250 2.0.0 queued\r\n").await {
                break;
            }
            if messages == 1 {
                for piece in after {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    peer.reply(piece).await;
                }
            }
            continue;
        } else if upper == "QUIT" {
            "221 2.0.0 bye\r\n"
        } else {
            "250 2.0.0 Ok\r\n"
        };
        if !peer.reply(reply).await {
            break;
        }
    }
    peer.seen
}

/// Sends a message to a [`pausing_server`] writing `after`, waits until
/// the first of `after` has arrived and the rest has not, and sends a
/// second message. Returns whether the session is still open after it,
/// its result, and the server's command lines once the connection is
/// dropped.
async fn second_send_while_a_reply_arrives(
    after: &'static [&'static str],
) -> (bool, Result<DeliveryReport, SendError>, Vec<String>) {
    let (c, s) = pair().await;
    let server = tokio::spawn(pausing_server(s, after));
    let mut conn = open_plain(c).await;
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let second = send_bounded(&mut conn, &["carol@example.org"], &two).await;
    let open = conn.is_open();
    drop(conn);
    (open, second, join(server).await)
}

/// The server begins a reply nobody asked for while the session is idle,
/// and ends it a moment later: that reply must not be taken as the one to
/// the next MAIL (every later reply would then answer the command before
/// its own).
#[tokio::test]
async fn a_reply_begun_unasked_while_idle_is_not_taken_for_the_next_ones() {
    let (open, second, seen) =
        second_send_while_a_reply_arrives(&["250 2.0.0 sta", "le\r\n"]).await;
    let e = second.expect_err("the server broke the protocol");
    assert!(matches!(e.error, RunError::Client(_)), "{:?}", e.error);
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert!(!open);
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}

/// A `421` whose end comes a moment after its start, while the session
/// is idle: the next message is not attempted, and no MAIL goes out.
#[tokio::test]
async fn a_421_split_while_idle_is_read_whole_before_the_next_message() {
    let (open, second, seen) =
        second_send_while_a_reply_arrives(&["421 4.4.2 idle", " timeout\r\n"]).await;
    let report = second.expect("a 421 is no error");
    let RecipientOutcome::NotAttempted {
        reason: NotAttempted::ServiceClosing { reply },
    } = &report.recipients[0].outcome
    else {
        panic!("{report:?}")
    };
    assert_eq!(reply.text(), b"idle timeout");
    assert_eq!(report.transactions, 0);
    assert!(!open);
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}

/// The server accepts AUTH and closes the session with a `421` in the
/// same breath: the session cannot carry mail, and `authenticate` says
/// so rather than succeed.
#[tokio::test]
async fn an_authentication_the_server_follows_with_421_fails() {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut peer = Peer::greet(s).await;
        while let Some(upper) = peer.next().await {
            let reply = if upper.starts_with("EHLO") {
                "250-mx.example.net\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n".to_owned()
            } else if upper.starts_with("AUTH") {
                format!("235 2.7.0 accepted\r\n{CLOSING}")
            } else {
                "250 2.0.0 Ok\r\n".to_owned()
            };
            if !peer.reply(&reply).await {
                break;
            }
        }
        peer.seen
    });
    let client = Client::new(config(TlsPolicy::Off).with_auth_without_tls(true));
    let mut conn = open(c, client, RunOptions::default()).await;
    let e = tokio::time::timeout(
        BOUND,
        conn.authenticate(AuthCredentials::password("alice", "secret")),
    )
    .await
    .expect("bounded")
    .expect_err("the session is over");
    let ConnectionError::Refused(NotAttempted::ServiceClosing { reply }) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 421);
    assert!(!conn.is_open());
    drop(conn);
    let seen = join(server).await;
    assert_eq!(commands(&seen, "AUTH"), 1, "{seen:?}");
}

/// The server driver's own idle timeout (RFC 5321 §4.5.3.2) after one
/// message: it sends `421 4.4.2` and ends the connection (over TLS with
/// close_notify). The next send reads the 421 and tries nothing.
async fn idle_timeout_of_the_server(tls: bool) {
    let (server_tls, client_tls) = tls_configs();
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.net");
        config.starttls = tls;
        config.timeouts.server = std::time::Duration::from_millis(300);
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = Some(TlsAcceptor::from(server_tls));
        let mut rec = Recorder::default();
        let end = serve(s, &mut session, &mut rec, &options).await;
        (end.map_err(|e| e.to_string()), rec)
    });
    let mut options = RunOptions::default();
    options.tls = Some((TlsConnector::from(client_tls), localhost()));
    let policy = if tls {
        TlsPolicy::Required
    } else {
        TlsPolicy::Off
    };
    let mut conn = open(c, Client::new(config(policy)), options).await;
    assert_eq!(conn.client().is_tls(), tls);
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    let (_end, rec) = join(server).await;
    assert_eq!(rec.messages, [one]);
    let report = send_bounded(&mut conn, &["carol@example.org"], &two)
        .await
        .expect("a 421 is no error");
    let RecipientOutcome::NotAttempted {
        reason: NotAttempted::ServiceClosing { reply },
    } = &report.recipients[0].outcome
    else {
        panic!("{report:?}")
    };
    assert_eq!(u16::from(reply.code()), 421);
    assert_eq!(report.transactions, 0);
    assert!(!conn.is_open());
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("quit just closes");
}

#[tokio::test]
async fn the_servers_idle_timeout_is_read_before_the_next_message() {
    idle_timeout_of_the_server(false).await;
}

#[tokio::test]
async fn the_servers_idle_timeout_is_read_before_the_next_message_over_tls() {
    idle_timeout_of_the_server(true).await;
}

/// The server resets the connection while the session is idle: the next
/// send's write of MAIL fails (or its read does), and the send reports
/// it with every recipient not attempted, without hanging or panicking.
#[tokio::test]
async fn a_connection_reset_while_idle_fails_the_next_send() {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut peer = Peer::greet(s).await;
        while let Some(upper) = peer.next().await {
            let reply = if upper.starts_with("EHLO") {
                "250-mx.example.net\r\n250 PIPELINING\r\n"
            } else if upper == "DATA" {
                peer.take_message().await;
                assert!(peer.reply("250 2.0.0 queued\r\n").await);
                // A reset rather than a close.
                peer.s.set_zero_linger().expect("linger");
                break;
            } else {
                "250 2.0.0 Ok\r\n"
            };
            assert!(peer.reply(reply).await);
        }
        drop(peer.s);
        peer.seen
    });
    let mut conn = open_plain(c).await;
    let [one, two, three] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one).await;
    let seen = join(server).await;
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
    let e = send_bounded(&mut conn, &["carol@example.org"], &two)
        .await
        .expect_err("the connection is gone");
    assert!(
        matches!(e.error, RunError::Io(_) | RunError::PeerClosed),
        "{:?}",
        e.error
    );
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
    let report = send_bounded(&mut conn, &["dave@example.org"], &three)
        .await
        .expect("nothing tried");
    assert_eq!(report.transactions, 0);
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("quit on an ended session just closes");
}

/// A submission server: AUTH PLAIN without TLS, and MAIL refused with
/// `530` until AUTH succeeds (RFC 4954 §6).
fn submission_config() -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.auth_mechanisms = vec![SaslMechanism::Plain];
    cfg.auth_requires_tls = false;
    cfg.auth_required = true;
    cfg
}

#[tokio::test]
async fn after_a_refused_password_send_sends_nothing_until_an_authentication_succeeds() {
    let (c, s) = pair().await;
    let server = spawn_recorder(s, submission_config());
    let (mut conn, refusal) = open_with_a_refused_password(c).await;
    let [one, two, _] = messages();
    let report = send_bounded(&mut conn, &["bob@example.org", "carol@example.org"], &one)
        .await
        .expect("nothing sent, nothing failed");
    // Not refused as if the recipients were bad: not attempted, to retry.
    let not_attempted = RecipientOutcome::NotAttempted {
        reason: NotAttempted::AuthFailed {
            reply: refusal.clone(),
        },
    };
    for r in &report.recipients {
        assert_eq!(r.outcome, not_attempted, "{report:?}");
        assert!(r.outcome.is_retry());
    }
    assert_eq!(report.transactions, 0);
    assert!(conn.is_open());
    // Other credentials: the session carries mail again.
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .await
        .expect("auth");
    send_delivered(&mut conn, &["bob@example.org"], &two).await;
    conn.quit().await.expect("quit");
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, [two]);
    assert_eq!(count(&rec, "Mail"), 1, "{:?}", names(&rec));
    assert_eq!(count(&rec, "Auth"), 2, "{:?}", names(&rec));
}

/// A server without PIPELINING that refuses `MAIL FROM:<alice@example.com>`
/// (without parameters) with `550` and takes everything else. Returns the
/// command lines it read.
async fn sender_refusing_server(s: TcpStream) -> Vec<String> {
    let mut peer = Peer::greet(s).await;
    while let Some(upper) = peer.next().await {
        let reply = if upper.starts_with("EHLO") {
            "250-mx.example.net\r\n250 SIZE 1000000\r\n"
        } else if upper == "MAIL FROM:<ALICE@EXAMPLE.COM>" {
            "550 5.7.1 sender refused\r\n"
        } else if upper == "DATA" {
            peer.take_message().await;
            "250 2.0.0 queued\r\n"
        } else if upper == "QUIT" {
            peer.reply("221 2.0.0 bye\r\n").await;
            break;
        } else {
            "250 2.0.0 Ok\r\n"
        };
        if !peer.reply(reply).await {
            break;
        }
    }
    peer.seen
}

#[tokio::test]
async fn a_mail_refused_with_5yz_is_not_sent_again_over_the_session() {
    let (c, s) = pair().await;
    let server = tokio::spawn(sender_refusing_server(s));
    let mut conn = open_plain(c).await;
    let [one, two, three] = messages();
    let report = conn
        .send(envelope(&["bob@example.org"]), &one)
        .await
        .expect("a refusal is no error");
    let RecipientOutcome::PermanentFailure { stage, reply } = &report.recipients[0].outcome else {
        panic!("{report:?}")
    };
    assert_eq!((*stage, u16::from(reply.code())), (Stage::Mail, 550));
    let refusal = reply.clone();
    // RFC 5321 §4.2.1: the same MAIL is not sent again.
    let report = send_bounded(&mut conn, &["carol@example.org"], &two)
        .await
        .expect("nothing sent, nothing failed");
    assert_eq!(
        report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::SenderRefused { reply: refusal }
        }
    );
    assert!(report.recipients[0].outcome.is_permanent_failure());
    assert_eq!(report.transactions, 0);
    assert!(conn.is_open());
    // Another sender is tried, and so is the same one with a parameter.
    let mut other = envelope(&["carol@example.org"]);
    other.sender = ReversePath::Mailbox(Mailbox::parse("bob@example.com").unwrap().into_owned());
    let report = conn.send(other, &two).await.expect("send");
    assert!(report.all_delivered(), "{report:?}");
    let sized = envelope(&["carol@example.org"]).with_size(three.len() as u64);
    let report = conn.send(sized, &three).await.expect("send");
    assert!(report.all_delivered(), "{report:?}");
    conn.quit().await.expect("quit");
    let seen = join(server).await;
    let mails: Vec<&String> = seen.iter().filter(|l| l.starts_with("MAIL")).collect();
    assert_eq!(
        mails,
        [
            "MAIL FROM:<alice@example.com>",
            "MAIL FROM:<bob@example.com>",
            &format!("MAIL FROM:<alice@example.com> SIZE={}", three.len()),
        ],
        "{seen:?}"
    );
}

/// A server that greets, answers EHLO and then reads without answering
/// until the client closes. Returns the command lines it read.
async fn server_silent_after_ehlo(s: TcpStream) -> Vec<String> {
    let mut peer = Peer::greet(s).await;
    for _ in 0..100 {
        let Some(upper) = peer.next().await else {
            break;
        };
        if upper.starts_with("EHLO") {
            assert!(peer.reply("250-mx.example.net\r\n250 PIPELINING\r\n").await);
        }
    }
    peer.seen
}

#[tokio::test]
async fn a_send_given_up_by_the_caller_ends_the_session() {
    let (c, s) = pair().await;
    let server = tokio::spawn(server_silent_after_ehlo(s));
    let mut conn = open_plain(c).await;
    assert!(conn.is_open());
    // The caller gives the send up (its own time limit) while the client
    // waits for the reply to MAIL: the future is dropped, and with it the
    // connection it was using.
    let msg = messages();
    let given_up = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        conn.send(envelope(&["bob@example.org"]), &msg[0]),
    )
    .await;
    assert!(given_up.is_err(), "the server never answers MAIL");
    assert!(!conn.is_open(), "the connection went with the send");
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
    // The next message is not attempted, and says why.
    let report = tokio::time::timeout(BOUND, conn.send(envelope(&["carol@example.org"]), &msg[1]))
        .await
        .expect("bounded")
        .expect("nothing to fail: nothing is sent");
    assert_eq!(report.recipients.len(), 1);
    assert!(
        matches!(
            &report.recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::ConnectionLost
            }
        ),
        "{report:?}"
    );
    tokio::time::timeout(BOUND, conn.quit())
        .await
        .expect("bounded")
        .expect("quit over a lost connection just closes");
    let seen = join(server).await;
    assert!(seen.iter().any(|l| l.starts_with("MAIL")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("carol")), "{seen:?}");
}
