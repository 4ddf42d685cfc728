//! `client::Connection`: several messages over one session, over loopback
//! against the server driver and scripted servers: one greeting, one EHLO
//! (two with STARTTLS), AUTH once, a message per `send`; and a session
//! that the server ends between two messages.

mod support;

use support::{
    bounded_timeouts, connect, spawn_peer, spawn_server, tls_configs, Recorder, ServerThread, BOUND,
};

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use smtp_proto_blocking::client::{Connection, ConnectionError, RunError, RunOptions};
use smtp_proto_blocking::rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{ServeEnd, ServeOptions};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, Delivery, DeliveryReport, Envelope, NotAttempted,
    RecipientOutcome, Stage, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::SaslMechanism;
use smtp_proto_blocking::smtp_proto::server::ServerConfig;

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
    ClientConfig::new(Domain::new("client.example.com").unwrap())
        .with_tls(tls)
        .with_timeouts(bounded_timeouts())
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.example.net");
    config.timeouts = bounded_timeouts();
    config
}

fn messages() -> [Vec<u8>; 3] {
    [1, 2, 3].map(|i| format!("Subject: message {i}\r\n\r\nbody {i}\r\n").into_bytes())
}

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|e| *e == name).count()
}

fn open(stream: TcpStream, client: Client, options: RunOptions) -> Connection<TcpStream> {
    Connection::open(stream, client, options).expect("open")
}

/// Opens a plaintext session to `addr` with the default options.
fn open_plain(addr: SocketAddr) -> Connection<TcpStream> {
    open(
        connect(addr),
        Client::new(config(TlsPolicy::Off)),
        RunOptions::default(),
    )
}

/// Run options that verify the server's certificate as `localhost`.
fn tls_options(client_tls: Arc<smtp_proto_blocking::rustls::ClientConfig>) -> RunOptions {
    let mut options = RunOptions::default();
    options.tls = Some((client_tls, ServerName::try_from("localhost").expect("name")));
    options
}

/// The server driver with the usual configuration, recording what it sees.
fn spawn_recording() -> (SocketAddr, ServerThread<Recorder>) {
    spawn_server(
        server_config(),
        ServeOptions::default(),
        Recorder::new(None),
    )
}

/// The server driver taking AUTH PLAIN without TLS for `alice` with the
/// password `secret`; with `auth_required` (a submission server), MAIL
/// without AUTH is refused with 530.
fn spawn_auth_plain(auth_required: bool) -> (SocketAddr, ServerThread<Recorder>) {
    let mut cfg = server_config();
    cfg.auth_mechanisms = vec![SaslMechanism::Plain];
    cfg.auth_requires_tls = false;
    cfg.auth_required = auth_required;
    spawn_server(
        cfg,
        ServeOptions::default(),
        Recorder::new(Some(("alice", "secret"))),
    )
}

/// Opens a session to `addr` that may authenticate without TLS and tries
/// a wrong password: the session and the refusal, asserted to be a `535`.
fn open_with_a_refused_password(addr: SocketAddr) -> (Connection<TcpStream>, OwnedReply) {
    let client = Client::new(config(TlsPolicy::Off).with_auth_without_tls(true));
    let mut conn = open(connect(addr), client, RunOptions::default());
    let e = conn
        .authenticate(AuthCredentials::password("alice", "wrong"))
        .expect_err("refused");
    let ConnectionError::Refused(NotAttempted::AuthFailed { reply }) = e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 535);
    (conn, reply)
}

/// Sends `message` to `to` and asserts that every recipient took it.
fn send_delivered(conn: &mut Connection<TcpStream>, to: &[&str], message: &[u8]) -> DeliveryReport {
    let report = conn.send(envelope(to), message).expect("send");
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

#[test]
fn three_messages_over_one_session_against_the_server_driver() {
    let (addr, server) = spawn_recording();
    let mut conn = open_plain(addr);
    assert!(conn.is_open());
    assert!(conn.client().is_idle());
    let to = ["bob@example.org", "carol@example.org", "dave@example.org"];
    for (to, message) in to.iter().zip(messages()) {
        let report = send_delivered(&mut conn, &[to], &message);
        assert_eq!(report.transactions, 1);
        assert!(conn.is_open());
    }
    conn.quit().expect("quit");
    let (end, rec) = server.join().expect("server");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.seen.message, messages().concat());
    assert_eq!(rec.seen.message_ends, 3);
    assert_eq!(count(&rec.seen.events, "Hello"), 1, "{:?}", rec.seen.events);
    assert_eq!(count(&rec.seen.events, "Mail"), 3);
    assert_eq!(rec.seen.rcpts.len(), 3);
}

#[test]
fn a_connection_dropped_without_quit_just_closes() {
    let (addr, server) = spawn_recording();
    let mut conn = open_plain(addr);
    let [one, ..] = messages();
    let report = conn
        .send(Delivery::new(envelope(&["bob@example.org"])), &one)
        .expect("send");
    assert!(report.all_delivered());
    drop(conn);
    let (end, rec) = server.join().expect("server");
    assert!(
        !rec.seen.events.iter().any(|e| e == "Quit"),
        "{:?}",
        rec.seen.events
    );
    assert!(!matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.seen.message, one);
}

#[test]
fn a_session_upgraded_with_starttls_and_authenticated_once_carries_every_message() {
    let (server_tls, client_tls) = tls_configs();
    let mut cfg = server_config();
    cfg.starttls = true;
    cfg.auth_mechanisms = vec![SaslMechanism::Plain];
    let mut serve_options = ServeOptions::default();
    serve_options.tls = Some(server_tls);
    let (addr, server) = spawn_server(cfg, serve_options, Recorder::new(Some(("alice", "secret"))));
    let options = tls_options(client_tls);
    let mut conn = open(
        connect(addr),
        Client::new(config(TlsPolicy::Required)),
        options,
    );
    assert!(conn.client().is_tls());
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .expect("auth");
    assert!(conn.client().is_authenticated());
    // Authenticating again does nothing.
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .expect("auth again");
    let [one, two, _] = messages();
    for (to, message) in [("bob@example.org", &one), ("carol@example.org", &two)] {
        // A delivery with its own credentials does not authenticate again.
        let delivery =
            Delivery::new(envelope(&[to])).with_auth(AuthCredentials::password("alice", "secret"));
        let report = conn.send(delivery, message).expect("send");
        assert!(report.all_delivered(), "{report:?}");
    }
    conn.quit().expect("quit");
    let (end, rec) = server.join().expect("server");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.seen.message, [one, two].concat());
    assert_eq!(rec.seen.auth_user.as_deref(), Some("alice"));
    assert_eq!(count(&rec.seen.events, "Auth"), 1, "{:?}", rec.seen.events);
    // The server hears of STARTTLS once TLS is up, once.
    assert_eq!(rec.seen.tls_at_starttls, [true]);
    // One EHLO in plaintext, one over TLS (RFC 3207 §4.2).
    assert_eq!(rec.seen.tls_at_hello, [false, true]);
    assert!(rec.seen.tls_at_end && rec.seen.auth_at_end);
}

#[test]
fn a_refused_password_leaves_the_session_open() {
    let (addr, server) = spawn_auth_plain(false);
    let (mut conn, _) = open_with_a_refused_password(addr);
    assert!(conn.is_open());
    conn.authenticate(AuthCredentials::password("alice", "secret"))
        .expect("auth");
    let [one, ..] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    conn.quit().expect("quit");
    let (end, rec) = server.join().expect("server");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.seen.message, one);
    assert_eq!(rec.seen.auth_failures, 1);
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
fn read_message(r: &mut impl BufRead) {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
            break;
        }
    }
}

/// A scripted server's end of a connection: it has sent the greeting,
/// and keeps every command line it reads.
struct Peer {
    w: TcpStream,
    r: BufReader<TcpStream>,
    seen: Vec<String>,
}

impl Peer {
    /// Sends the `220` greeting on `s`.
    fn greet(s: TcpStream) -> Peer {
        let mut w = s.try_clone().expect("clone");
        w.write_all(b"220 mx.example.net ESMTP\r\n").unwrap();
        Peer {
            w,
            r: BufReader::new(s),
            seen: Vec::new(),
        }
    }

    /// Reads the next command line and keeps it: the line as sent,
    /// without its line ending, or `None` at the end of the connection.
    fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let cmd = line.trim_end().to_owned();
        self.seen.push(cmd.clone());
        Some(cmd)
    }
}

/// A server with PIPELINING that takes one message, then acts as
/// `after`. Returns the command lines it read.
fn scripted_server(s: TcpStream, after: AfterFirst) -> Vec<String> {
    let mut peer = Peer::greet(s);
    let mut messages = 0;
    for _ in 0..100 {
        let Some(cmd) = peer.next() else {
            break;
        };
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-mx.example.net\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("MAIL") && messages == 1 {
            assert_eq!(after, AfterFirst::ClosingAtMail);
            let _ = peer.w.write_all(CLOSING.as_bytes());
            break;
        } else if upper == "DATA" {
            peer.w.write_all(b"354 go ahead\r\n").unwrap();
            read_message(&mut peer.r);
            messages += 1;
            peer.w.write_all(b"250 2.0.0 queued\r\n").unwrap();
            match after {
                AfterFirst::Close => break,
                AfterFirst::Closing => {
                    peer.w.write_all(CLOSING.as_bytes()).unwrap();
                    break;
                }
                AfterFirst::ClosingAtMail => continue,
            }
        } else {
            "250 2.0.0 Ok\r\n"
        };
        if peer.w.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
    peer.seen
}

/// Opens a connection to a [`scripted_server`], sends one message and
/// waits for the server to be done (closed; with
/// [`AfterFirst::ClosingAtMail`], after a second send got its `421`).
fn after_one_message(after: AfterFirst) -> (Connection<TcpStream>, Vec<String>) {
    let (addr, server) = spawn_peer(move |s| scripted_server(s, after));
    let mut conn = open_plain(addr);
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    if after == AfterFirst::ClosingAtMail {
        let report = conn
            .send(envelope(&["carol@example.org", "dave@example.org"]), &two)
            .expect("a 421 ends the send without an error");
        for r in &report.recipients {
            let RecipientOutcome::TemporaryFailure { stage, reply } = &r.outcome else {
                panic!("{report:?}")
            };
            assert_eq!((*stage, u16::from(reply.code())), (Stage::Mail, 421));
        }
    }
    let seen = server.join().expect("server");
    (conn, seen)
}

#[test]
fn a_server_that_closes_after_the_first_message_fails_the_second_send() {
    let (mut conn, seen) = after_one_message(AfterFirst::Close);
    let [_, two, three] = messages();
    let started = Instant::now();
    let e = conn
        .send(envelope(&["carol@example.org"]), &two)
        .expect_err("the server is gone");
    assert!(started.elapsed() < BOUND, "not hanging");
    assert!(matches!(e.error, RunError::PeerClosed), "{:?}", e.error);
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert!(!conn.is_open());
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
    // Later sends try nothing.
    let report = conn
        .send(envelope(&["dave@example.org"]), &three)
        .expect("nothing tried");
    assert_eq!(report.to_retry().count(), 1);
    assert_eq!(report.transactions, 0);
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
    conn.quit().expect("quit on an ended session just closes");
}

fn all_closing(report: &DeliveryReport) -> bool {
    report.recipients.iter().all(|r| match &r.outcome {
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::ServiceClosing { reply },
        } => u16::from(reply.code()) == 421 && reply.text() == b"shutting down",
        _ => false,
    })
}

#[test]
fn a_421_while_idle_leaves_the_next_messages_not_attempted() {
    let (mut conn, _) = after_one_message(AfterFirst::Closing);
    let [_, two, three] = messages();
    let report = conn
        .send(envelope(&["carol@example.org", "dave@example.org"]), &two)
        .expect("a 421 is no error");
    assert!(all_closing(&report), "{report:?}");
    assert_eq!(report.transactions, 0);
    assert!(!conn.is_open());
    let report = conn
        .send(envelope(&["erin@example.org"]), &three)
        .expect("nothing tried");
    assert!(all_closing(&report), "{report:?}");
}

#[test]
fn a_421_to_the_next_mail_ends_the_session() {
    let (mut conn, seen) = after_one_message(AfterFirst::ClosingAtMail);
    assert!(!conn.is_open());
    assert!(matches!(
        conn.end_reason(),
        Some(NotAttempted::ServiceClosing { .. })
    ));
    assert_eq!(commands(&seen, "EHLO"), 1, "{seen:?}");
    let [_, _, three] = messages();
    let report = conn
        .send(envelope(&["erin@example.org"]), &three)
        .expect("nothing tried");
    assert!(all_closing(&report), "{report:?}");
}

#[test]
fn a_refused_greeting_fails_the_open() {
    let (addr, server) = spawn_peer(|s| {
        let mut w = s.try_clone().expect("clone");
        w.write_all(b"554 5.7.1 go away\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    });
    let e = Connection::open(
        connect(addr),
        Client::new(config(TlsPolicy::Off)),
        RunOptions::default(),
    )
    .expect_err("refused");
    let ConnectionError::Refused(NotAttempted::SessionRefused { reply }) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 554);
    assert_eq!(server.join().expect("server"), "QUIT\r\n");
}

#[test]
fn noop_checks_the_kept_session() {
    let (addr, server) = spawn_recording();
    let mut conn = open_plain(addr);
    conn.noop().expect("the session is there");
    let [one, ..] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    conn.noop().expect("still there");
    conn.quit().expect("quit");
    let (end, rec) = server.join().expect("server");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(count(&rec.seen.events, "Noop"), 2, "{:?}", rec.seen.events);
    assert_eq!(rec.seen.message, one);
}

#[test]
fn noop_finds_a_session_the_server_ended() {
    let (mut conn, _) = after_one_message(AfterFirst::Closing);
    let e = conn.noop().expect_err("the server sent 421");
    assert!(
        matches!(
            &e,
            ConnectionError::Refused(NotAttempted::ServiceClosing { reply })
                if u16::from(reply.code()) == 421
        ),
        "{e:?}"
    );
    assert!(!conn.is_open());
    let (mut conn, _) = after_one_message(AfterFirst::Close);
    let e = conn.noop().expect_err("the server closed");
    assert!(
        matches!(e, ConnectionError::Run(RunError::PeerClosed)),
        "{e:?}"
    );
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
}

#[test]
fn quit_after_the_server_closed_the_idle_session_just_closes() {
    let (conn, seen) = after_one_message(AfterFirst::Close);
    let started = Instant::now();
    conn.quit()
        .expect("nothing to say QUIT to: the session is over, not failed");
    assert!(started.elapsed() < BOUND, "not hanging");
    assert!(!seen.iter().any(|l| l.starts_with("QUIT")), "{seen:?}");
}

/// A server with PIPELINING whose replies `reply` decides: given the
/// command line and the number of messages taken so far, the bytes to
/// send (`None` closes the connection). After DATA's `354` it reads the
/// message, counts it and answers with what `reply` gives for `.`; it
/// reads a `BDAT` chunk before answering it, and counts a `LAST` one as
/// a message. A `|` in the bytes to send is a pause of 300 ms.
fn answering_server<F>(s: TcpStream, mut reply: F) -> Vec<String>
where
    F: FnMut(&str, usize) -> Option<String>,
{
    let mut peer = Peer::greet(s);
    let mut messages = 0;
    for _ in 0..100 {
        let Some(cmd) = peer.next() else {
            break;
        };
        let upper = cmd.to_ascii_uppercase();
        if let Some(args) = upper.strip_prefix("BDAT ") {
            let size: usize = args.split(' ').next().unwrap().parse().unwrap();
            let mut chunk = vec![0; size];
            std::io::Read::read_exact(&mut peer.r, &mut chunk).unwrap();
            if args.ends_with("LAST") {
                messages += 1;
            }
        }
        let Some(out) = reply(&cmd, messages) else {
            break;
        };
        if write_paused(&mut peer.w, &out).is_err() {
            break;
        }
        if cmd.eq_ignore_ascii_case("DATA") && out.starts_with("354") {
            read_message(&mut peer.r);
            messages += 1;
            let Some(out) = reply(".", messages) else {
                break;
            };
            if write_paused(&mut peer.w, &out).is_err() {
                break;
            }
        }
    }
    peer.seen
}

/// Writes `out`, pausing 300 ms at each `|`.
fn write_paused(w: &mut TcpStream, out: &str) -> std::io::Result<()> {
    for (i, part) in out.split('|').enumerate() {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        w.write_all(part.as_bytes())?;
    }
    Ok(())
}

/// The usual replies of [`answering_server`], EHLO with `ehlo` lines.
fn usual(cmd: &str, ehlo: &str) -> String {
    let upper = cmd.to_ascii_uppercase();
    if upper.starts_with("EHLO") {
        format!("250-mx.example.net\r\n{ehlo}")
    } else if upper == "DATA" {
        "354 go ahead\r\n".into()
    } else if upper == "QUIT" {
        "221 2.0.0 bye\r\n".into()
    } else if cmd == "." {
        "250 2.0.0 queued\r\n".into()
    } else {
        "250 2.0.0 Ok\r\n".into()
    }
}

#[test]
fn a_mail_refused_with_5yz_is_not_sent_again_over_the_session() {
    let (addr, server) = spawn_peer(|s| {
        // Refuses `MAIL FROM:<alice@example.com>` without parameters, and
        // the pipelined commands after it.
        let mut refused = false;
        answering_server(s, move |cmd, _| {
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("MAIL") {
                refused = upper == "MAIL FROM:<ALICE@EXAMPLE.COM>";
            }
            Some(if upper.starts_with("MAIL") && refused {
                "550 5.7.1 sender refused\r\n".into()
            } else if refused && (upper.starts_with("RCPT") || upper == "DATA") {
                "503 5.5.1 no sender\r\n".into()
            } else {
                usual(cmd, "250-PIPELINING\r\n250 SIZE 1000000\r\n")
            })
        })
    });
    let mut conn = open_plain(addr);
    let [one, two, three] = messages();
    let report = conn
        .send(envelope(&["bob@example.org"]), &one)
        .expect("a refusal is no error");
    let RecipientOutcome::PermanentFailure { stage, reply } = &report.recipients[0].outcome else {
        panic!("{report:?}")
    };
    assert_eq!((*stage, u16::from(reply.code())), (Stage::Mail, 550));
    assert!(conn.is_open());
    assert_eq!(conn.end_reason(), None);
    // RFC 5321 §4.2.1: the same MAIL, for another message, is not sent
    // again.
    let refusal = reply.clone();
    let report = conn
        .send(envelope(&["carol@example.org"]), &two)
        .expect("nothing sent, nothing failed");
    assert_eq!(
        report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::SenderRefused { reply: refusal }
        }
    );
    assert_eq!(report.transactions, 0);
    assert!(conn.is_open());
    // Another sender is tried, and goes through; so does the same sender
    // with a parameter.
    let mut other = envelope(&["carol@example.org"]);
    other.sender = ReversePath::Mailbox(Mailbox::parse("bob@example.com").unwrap().into_owned());
    assert!(conn.send(other, &two).expect("send").all_delivered());
    let sized = envelope(&["carol@example.org"]).with_size(three.len() as u64);
    assert!(conn.send(sized, &three).expect("send").all_delivered());
    conn.quit().expect("quit");
    let seen = server.join().expect("server");
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
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
}

#[test]
fn after_a_refused_password_send_sends_nothing_until_an_authentication_succeeds() {
    // A submission server: MAIL without AUTH is refused with 530.
    let (addr, server) = spawn_auth_plain(true);
    let (mut conn, refusal) = open_with_a_refused_password(addr);
    let [one, two, _] = messages();
    let report = conn
        .send(envelope(&["bob@example.org", "carol@example.org"]), &one)
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
        .expect("auth");
    send_delivered(&mut conn, &["bob@example.org"], &two);
    conn.quit().expect("quit");
    let (end, rec) = server.join().expect("server");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.seen.message, two);
    assert_eq!(rec.seen.auth_failures, 1);
    assert_eq!(count(&rec.seen.events, "Mail"), 1, "{:?}", rec.seen.events);
}

#[test]
fn an_unsolicited_reply_while_idle_fails_the_next_send_without_a_delivery() {
    let (addr, server) = spawn_peer(|s| {
        answering_server(s, |cmd, messages| {
            Some(if cmd == "." && messages == 1 {
                "250 2.0.0 queued\r\n|250 2.0.0 one more\r\n".into()
            } else {
                usual(cmd, "250 PIPELINING\r\n")
            })
        })
    });
    let mut conn = open_plain(addr);
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let started = Instant::now();
    let second = conn.send(envelope(&["carol@example.org"]), &two);
    assert!(started.elapsed() < BOUND, "not hanging");
    let e = second.expect_err("the session is broken");
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert!(!conn.is_open());
    drop(conn);
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}

#[test]
fn mailmax_reached_in_the_second_of_three_messages() {
    let (addr, server) = spawn_peer(|s| {
        answering_server(s, |cmd, _| {
            Some(usual(
                cmd,
                "250-PIPELINING\r\n250 LIMITS MAILMAX=2 RCPTMAX=1\r\n",
            ))
        })
    });
    let mut conn = open_plain(addr);
    let [one, two, three] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    let report = conn
        .send(envelope(&["carol@example.org", "dave@example.org"]), &two)
        .expect("send");
    assert!(report.recipients[0].outcome.is_delivered(), "{report:?}");
    assert_eq!(
        report.recipients[1].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::TransactionLimit { limit: 2 }
        }
    );
    assert!(conn.client().is_idle());
    let report = conn
        .send(envelope(&["erin@example.org"]), &three)
        .expect("send");
    assert_eq!(report.transactions, 0);
    assert_eq!(
        report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::TransactionLimit { limit: 2 }
        }
    );
    // MAILMAX does not end the session.
    assert!(conn.is_open());
    conn.quit().expect("quit");
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "MAIL"), 2, "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
}

#[test]
fn a_delivery_without_recipients_sends_nothing() {
    let (addr, server) =
        spawn_peer(|s| answering_server(s, |cmd, _| Some(usual(cmd, "250 PIPELINING\r\n"))));
    let mut conn = open_plain(addr);
    let [one, ..] = messages();
    let report = conn.send(envelope(&[]), &one).expect("nothing to do");
    assert!(report.recipients.is_empty());
    assert_eq!(report.transactions, 0);
    assert!(conn.is_open());
    conn.quit().expect("quit");
    let seen = server.join().expect("server");
    assert!(!seen.iter().any(|l| l.starts_with("MAIL")), "{seen:?}");
}

/// The server driver's own idle timeout (RFC 5321 §4.5.3.2): it sends
/// `421 4.4.2` and closes, over TLS with close_notify.
fn idle_timeout_of_the_server(tls: bool) {
    let (server_tls, client_tls) = tls_configs();
    let mut cfg = server_config();
    cfg.timeouts.server = std::time::Duration::from_millis(300);
    let mut serve_options = ServeOptions::default();
    let mut options = RunOptions::default();
    let policy = if tls {
        cfg.starttls = true;
        serve_options.tls = Some(server_tls);
        options.tls = Some((client_tls, ServerName::try_from("localhost").expect("name")));
        TlsPolicy::Required
    } else {
        TlsPolicy::Off
    };
    let (addr, server) = spawn_server(cfg, serve_options, Recorder::new(None));
    let mut conn = open(connect(addr), Client::new(config(policy)), options);
    assert_eq!(conn.client().is_tls(), tls);
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    let (_end, rec) = server.join().expect("server");
    assert_eq!(rec.seen.message, one);
    let started = Instant::now();
    let report = conn
        .send(envelope(&["carol@example.org"]), &two)
        .expect("a 421 is no error");
    assert!(started.elapsed() < BOUND, "not hanging");
    let RecipientOutcome::NotAttempted {
        reason: NotAttempted::ServiceClosing { reply },
    } = &report.recipients[0].outcome
    else {
        panic!("{report:?}")
    };
    assert_eq!(u16::from(reply.code()), 421);
    assert_eq!(report.transactions, 0);
    assert!(!conn.is_open());
    conn.quit().expect("quit just closes");
}

#[test]
fn the_servers_idle_timeout_is_read_before_the_next_message() {
    idle_timeout_of_the_server(false);
}

#[test]
fn the_servers_idle_timeout_is_read_before_the_next_message_over_tls() {
    idle_timeout_of_the_server(true);
}

/// The server begins a reply nobody asked for while the session is idle,
/// and ends it a moment later: that reply must not be taken as the one to
/// the next MAIL. Here it would be, and every later reply would answer
/// the command before its own: with BDAT, the reply to RCPT would be
/// taken as the message's, and the server's refusal of the message lost.
#[test]
fn a_reply_begun_unasked_while_idle_is_not_taken_for_the_next_ones() {
    use smtp_proto_blocking::smtp_proto::client::ChunkingPolicy;
    let (addr, server) = spawn_peer(|s| {
        answering_server(s, |cmd, messages| {
            let upper = cmd.to_ascii_uppercase();
            Some(if !upper.starts_with("BDAT") || !upper.ends_with("LAST") {
                usual(cmd, "250-PIPELINING\r\n250 CHUNKING\r\n")
            } else if messages == 1 {
                "250 2.0.0 queued\r\n|250 2.0.0 sta|le\r\n".into()
            } else {
                "554 5.7.1 message refused\r\n".into()
            })
        })
    });
    let client = Client::new(config(TlsPolicy::Off).with_chunking(ChunkingPolicy::Prefer));
    let mut conn = open(connect(addr), client, RunOptions::default());
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    // Half of the reply has arrived, the rest is on its way.
    std::thread::sleep(std::time::Duration::from_millis(450));
    let started = Instant::now();
    let report = match conn.send(envelope(&["carol@example.org"]), &two) {
        Ok(report) => report,
        Err(e) => e.report,
    };
    assert!(started.elapsed() < BOUND, "not hanging");
    assert!(report.delivered().next().is_none(), "{report:?}");
    assert!(!conn.is_open());
    drop(conn);
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}

/// A `421` whose end comes a moment after its start, while the session
/// is idle: the next message is not attempted, and no MAIL goes out.
#[test]
fn a_421_split_while_idle_is_read_whole_before_the_next_message() {
    let (addr, server) = spawn_peer(|s| {
        answering_server(s, |cmd, messages| {
            if cmd == "." && messages == 1 {
                Some("250 2.0.0 queued\r\n|421 4.4.2 idle| timeout\r\n".into())
            } else if messages == 1 && cmd.to_ascii_uppercase().starts_with("MAIL") {
                None
            } else {
                Some(usual(cmd, "250 PIPELINING\r\n"))
            }
        })
    });
    let mut conn = open_plain(addr);
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    std::thread::sleep(std::time::Duration::from_millis(450));
    let report = conn
        .send(envelope(&["carol@example.org"]), &two)
        .expect("a 421 is no error");
    let RecipientOutcome::NotAttempted {
        reason: NotAttempted::ServiceClosing { reply },
    } = &report.recipients[0].outcome
    else {
        panic!("{report:?}")
    };
    assert_eq!(reply.text(), b"idle timeout");
    assert_eq!(report.transactions, 0);
    assert!(!conn.is_open());
    conn.quit().expect("quit just closes");
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}

/// The server accepts AUTH and closes the session with a `421` in the
/// same breath: the session cannot carry mail, and `authenticate` says
/// so rather than succeed.
#[test]
fn an_authentication_the_server_follows_with_421_fails() {
    let (addr, server) = spawn_peer(|s| {
        answering_server(s, |cmd, _| {
            Some(if cmd.to_ascii_uppercase().starts_with("AUTH") {
                format!("235 2.7.0 accepted\r\n{CLOSING}")
            } else {
                usual(cmd, "250-PIPELINING\r\n250 AUTH PLAIN\r\n")
            })
        })
    });
    let client = Client::new(config(TlsPolicy::Off).with_auth_without_tls(true));
    let mut conn = open(connect(addr), client, RunOptions::default());
    let e = conn
        .authenticate(AuthCredentials::password("alice", "secret"))
        .expect_err("the session is over");
    let ConnectionError::Refused(NotAttempted::ServiceClosing { reply }) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u16::from(reply.code()), 421);
    assert!(!conn.is_open());
    drop(conn);
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "AUTH"), 1, "{seen:?}");
}

/// A server on implicit TLS that takes one message, then ends TLS with
/// close_notify while the session is idle, keeping the TCP connection
/// open until `done` (or [`BOUND`]). Returns the command lines it read.
fn close_notify_server(
    s: TcpStream,
    server_tls: std::sync::Arc<smtp_proto_blocking::rustls::ServerConfig>,
    done: std::sync::mpsc::Receiver<()>,
) -> Vec<String> {
    use smtp_proto_blocking::rustls;
    let conn = rustls::ServerConnection::new(server_tls).expect("server connection");
    let mut r = BufReader::new(rustls::StreamOwned::new(conn, s));
    r.get_mut()
        .write_all(b"220 mx.example.net ESMTP\r\n")
        .expect("greeting");
    let mut seen = Vec::new();
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let cmd = line.trim_end().to_owned();
        seen.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-mx.example.net\r\n250 PIPELINING\r\n"
        } else if upper == "DATA" {
            r.get_mut().write_all(b"354 go ahead\r\n").unwrap();
            read_message(&mut r);
            r.get_mut().write_all(b"250 2.0.0 queued\r\n").unwrap();
            let tls = r.get_mut();
            tls.conn.send_close_notify();
            tls.flush().expect("close_notify");
            let _ = done.recv_timeout(BOUND);
            break;
        } else {
            "250 2.0.0 Ok\r\n"
        };
        r.get_mut().write_all(reply.as_bytes()).unwrap();
    }
    seen
}

#[test]
fn a_tls_session_ended_with_close_notify_while_idle_fails_the_next_send() {
    let (server_tls, client_tls) = tls_configs();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (addr, server) = spawn_peer(move |s| close_notify_server(s, server_tls, done_rx));
    let options = tls_options(client_tls);
    let client = Client::new(config(TlsPolicy::Required).with_implicit_tls(true));
    let mut conn = open(connect(addr), client, options);
    assert!(conn.client().is_tls());
    let [one, two, _] = messages();
    send_delivered(&mut conn, &["bob@example.org"], &one);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = Instant::now();
    let e = conn
        .send(envelope(&["carol@example.org"]), &two)
        .expect_err("TLS has ended");
    assert!(started.elapsed() < BOUND, "not hanging");
    assert!(matches!(e.error, RunError::PeerClosed), "{:?}", e.error);
    assert_eq!(e.report.recipients[0].outcome, CONNECTION_LOST);
    assert_eq!(conn.end_reason(), Some(&NotAttempted::ConnectionLost));
    done_tx.send(()).expect("server waits");
    let seen = server.join().expect("server");
    assert_eq!(commands(&seen, "MAIL"), 1, "{seen:?}");
}
