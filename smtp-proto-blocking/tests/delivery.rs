//! `client::send`: one message to its recipients over loopback, against
//! the blocking server driver and against scripted peers, and the report
//! it returns, the run failed or not.

mod support;

use support::{bounded_timeouts, connect, spawn_peer, spawn_server, Recorder, Seen, BOUND};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use smtp_proto_blocking::client::{send, RunError, RunOptions, SendError};
use smtp_proto_blocking::server::{ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, Delivery, DeliveryReport, Envelope, NotAttempted,
    RecipientOutcome, SaslAnswer, SaslResponder, Stage, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::{CustomMechanism, SaslMechanism};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::status::ReplyCode;

const MESSAGE: &[u8] = b"Subject: hello\r\n\r\nhello\r\n";

fn envelope(to: &[&str]) -> Envelope<'static> {
    let mut env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.net").unwrap().into_owned(),
    ))
    .with_size(MESSAGE.len() as u64);
    for t in to {
        env = env.recipient(ForwardPath::Mailbox(
            Mailbox::parse(t).unwrap().into_owned(),
        ));
    }
    env
}

fn client_config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.test").expect("domain"))
        .with_tls(TlsPolicy::Off)
        .with_timeouts(bounded_timeouts())
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config
}

/// Sends `delivery` (AUTH without TLS allowed) to the blocking server,
/// which takes PLAIN for `user`/`secret` without TLS, its configuration
/// changed by `adjust`. Checks that the run and the server both end with
/// QUIT; returns the report and what the server saw.
fn send_to_auth_server(
    adjust: impl FnOnce(&mut ServerConfig),
    delivery: Delivery,
) -> (DeliveryReport, Seen) {
    let mut config = server_config();
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    config.auth_requires_tls = false;
    adjust(&mut config);
    let (addr, server) = spawn_server(
        config,
        ServeOptions::default(),
        Recorder::new(Some(("user", "secret"))),
    );
    let mut client = Client::new(client_config().with_auth_without_tls(true));
    let report = send(
        connect(addr),
        &mut client,
        delivery,
        MESSAGE,
        &RunOptions::default(),
    )
    .expect("the run ends with QUIT");
    let (end, recorder) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    (report, recorder.seen)
}

/// Against the blocking server: AUTH, then the recipients in transactions
/// of at most two (`LIMITS RCPTMAX=2`); the server refuses `nobody@`.
#[test]
fn auth_then_two_transactions_against_the_server_driver() {
    let delivery = Delivery::new(envelope(&[
        "bob@example.com",
        "nobody@example.com",
        "carol@example.com",
    ]))
    .with_auth(AuthCredentials::password("user", "secret"));
    let (report, seen) = send_to_auth_server(
        |config| {
            config.limits = true;
            config.max_recipients = 2;
        },
        delivery,
    );

    assert_eq!(seen.auth_user.as_deref(), Some("user"));
    assert_eq!(seen.message_ends, 2, "one message per transaction");
    assert_eq!(seen.rcpts, ["<bob@example.com>", "<carol@example.com>"]);
    assert_eq!(report.transactions, 2);
    assert!(report.recipients[0].outcome.is_delivered(), "{report:?}");
    let RecipientOutcome::PermanentFailure { stage, reply } = &report.recipients[1].outcome else {
        panic!("{report:?}")
    };
    assert_eq!((*stage, u16::from(reply.code())), (Stage::Rcpt, 550));
    assert!(report.recipients[2].outcome.is_delivered(), "{report:?}");
    assert_eq!(report.error, None);
}

#[test]
fn a_failed_auth_sends_nothing_and_quits() {
    let delivery = Delivery::new(envelope(&["bob@example.com"]))
        .with_auth(AuthCredentials::password("user", "wrong"));
    let (report, seen) = send_to_auth_server(|_| {}, delivery);
    assert_eq!(seen.auth_failures, 1);
    assert_eq!(seen.message_starts, 0);
    assert!(matches!(
        &report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::AuthFailed { reply }
        } if u16::from(reply.code()) == 535
    ));
}

/// A peer without PIPELINING that accepts the envelope, reads the message
/// after DATA, and closes without a reply (`close_at_data`: closes at DATA
/// instead). Returns the command lines it read.
fn closing_peer(socket: TcpStream, close_at_data: bool) -> Vec<String> {
    let mut out = socket.try_clone().expect("clone");
    let mut lines = BufReader::new(socket);
    let mut seen = Vec::new();
    out.write_all(b"220 mx.test ESMTP\r\n").expect("greeting");
    for _ in 0..100 {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end().to_owned();
        seen.push(line.clone());
        let reply: &[u8] = match line.as_str() {
            "DATA" if close_at_data => break,
            "DATA" => {
                out.write_all(b"354 go ahead\r\n").expect("354");
                for _ in 0..100 {
                    let mut body = String::new();
                    if lines.read_line(&mut body).unwrap_or(0) == 0 || body == ".\r\n" {
                        break;
                    }
                }
                // The message is in; the connection breaks before the reply.
                break;
            }
            l if l.starts_with("EHLO") => b"250 mx.test\r\n",
            _ => b"250 2.0.0 Ok\r\n",
        };
        out.write_all(reply).expect("reply");
    }
    seen
}

fn send_to_closing_peer(close_at_data: bool) -> (Vec<String>, SendError) {
    let (addr, peer) = spawn_peer(move |socket| closing_peer(socket, close_at_data));
    let stream = connect(addr);
    stream.set_read_timeout(Some(BOUND)).expect("timeout");
    let mut client = Client::new(client_config());
    let result: Result<DeliveryReport, SendError> = send(
        stream,
        &mut client,
        Delivery::new(envelope(&["bob@example.com", "carol@example.com"])),
        MESSAGE,
        &RunOptions::default(),
    );
    let seen = peer.join().expect("peer thread");
    (seen, result.expect_err("the peer closed"))
}

#[test]
fn a_connection_closed_after_the_message_leaves_the_outcome_unknown() {
    let (seen, e) = send_to_closing_peer(false);
    assert_eq!(seen.last().map(String::as_str), Some("DATA"), "{seen:?}");
    assert!(matches!(e.error, RunError::PeerClosed), "{:?}", e.error);
    for r in &e.report.recipients {
        assert_eq!(r.outcome, RecipientOutcome::Unknown);
    }
    assert_eq!(e.report.unknown().count(), 2);
    assert!(e.report.error.is_some());
}

#[test]
fn a_connection_closed_before_the_message_leaves_it_unsent() {
    let (seen, e) = send_to_closing_peer(true);
    assert_eq!(seen.last().map(String::as_str), Some("DATA"), "{seen:?}");
    for r in &e.report.recipients {
        assert_eq!(
            r.outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::ConnectionLost
            }
        );
    }
    assert_eq!(e.report.to_retry().count(), 2);
    assert_eq!(e.report.unknown().count(), 0);
}

/// The README's "Sending a message" example is the `deliver` example's
/// code, which `cargo build --examples` compiles.
#[test]
fn the_readme_shows_the_deliver_example() {
    let example = include_str!("../examples/deliver.rs");
    let readme = include_str!("../../README.md");
    let start = "// README: sending a message (start)\n";
    let from = example.find(start).expect("start marker") + start.len();
    let to = example
        .find("// README: sending a message (end)")
        .expect("end marker");
    let code = &example[from..to];
    assert!(code.contains("send(stream, &mut client, delivery, message, &options)"));
    assert!(
        readme.contains(&format!("```rust,ignore\n{code}```")),
        "README.md does not show examples/deliver.rs between its markers"
    );
}

/// The server side of a two-step mechanism run by the application:
/// `user?`, then `code?`, then accepts `tim` with the code `123456`;
/// everything else goes to the [`Recorder`].
struct TwoStepServer {
    recorder: Recorder,
    /// The responses to the challenges, in order.
    responses: Vec<Vec<u8>>,
}

impl ServerHandler for TwoStepServer {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        let ServerEvent::AuthExchange {
            response, round, ..
        } = &event
        else {
            return self.recorder.on_event(session, event);
        };
        let response = response.as_ref().map(|r| r.expose().to_vec());
        if *round > 0 {
            self.responses.push(response.clone().unwrap_or_default());
        }
        let r = match (*round, response.as_deref()) {
            (0, None) => session.auth_challenge(b"user?").map(|_| ()),
            (1, Some(b"tim")) => session.auth_challenge(b"code?").map(|_| ()),
            (2, Some(b"123456")) => {
                self.recorder.seen.auth_user = Some("tim".to_owned());
                session.accept_auth("tim")
            }
            _ => session.reject(
                OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "Invalid")
                    .map_err(std::io::Error::other)?,
            ),
        };
        r.map_err(std::io::Error::other)
    }
}

/// The client side: the user name, then `code`.
#[derive(Clone)]
struct TwoStepClient {
    code: &'static [u8],
}

impl SaslResponder for TwoStepClient {
    fn respond(&mut self, _: CustomMechanism, challenge: &[u8], round: usize) -> SaslAnswer {
        match (round, challenge) {
            (1, b"user?") => SaslAnswer::respond(&b"tim"[..]),
            (2, b"code?") => SaslAnswer::respond(self.code),
            _ => SaslAnswer::Cancel,
        }
    }
}

/// Sends to `bob@` with the two-step mechanism answered by `responder`,
/// against the blocking server driver; both end with QUIT.
fn send_two_step(responder: TwoStepClient) -> (DeliveryReport, TwoStepServer) {
    let mut config = server_config();
    config.auth_mechanisms = vec![SaslMechanism::custom("X-TWO-STEP").expect("name")];
    config.auth_requires_tls = false;
    let handler = TwoStepServer {
        recorder: Recorder::new(None),
        responses: Vec::new(),
    };
    let (addr, server) = spawn_server(config, ServeOptions::default(), handler);
    let mechanism = CustomMechanism::new("X-TWO-STEP").expect("name");
    let delivery = Delivery::new(envelope(&["bob@example.com"]))
        .with_auth(AuthCredentials::custom(mechanism, None))
        .with_auth_responder(responder);
    let mut client = Client::new(client_config().with_auth_without_tls(true));
    let report = send(
        connect(addr),
        &mut client,
        delivery,
        MESSAGE,
        &RunOptions::default(),
    )
    .expect("the run ends with QUIT");
    let (end, handler) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    (report, handler)
}

#[test]
fn a_custom_mechanism_answered_by_a_responder_against_the_server_driver() {
    let (report, server) = send_two_step(TwoStepClient { code: b"123456" });
    assert_eq!(server.responses, [b"tim".to_vec(), b"123456".to_vec()]);
    let seen = &server.recorder.seen;
    assert_eq!(seen.auth_user.as_deref(), Some("tim"));
    assert!(seen.auth_at_end);
    assert_eq!(seen.rcpts, ["<bob@example.com>"]);
    assert_eq!(seen.message, MESSAGE);
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(report.error, None);
}

#[test]
fn a_wrong_answer_from_the_responder_is_a_failed_auth() {
    let (report, server) = send_two_step(TwoStepClient { code: b"000000" });
    assert_eq!(server.responses, [b"tim".to_vec(), b"000000".to_vec()]);
    assert_eq!(server.recorder.seen.auth_user, None);
    assert_eq!(server.recorder.seen.message_starts, 0);
    assert!(matches!(
        &report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::AuthFailed { reply }
        } if u16::from(reply.code()) == 535
    ));
}

/// Against the blocking server taking two recipients per transaction
/// without saying so in `LIMITS`: it answers `452 4.5.3` to the others,
/// and the client sends them in the next transactions over the same
/// session (RFC 5321 §4.5.3.1.10), until every one has the message.
#[test]
fn recipients_refused_as_too_many_go_in_the_next_transactions_over_the_session() {
    let to = [
        "r1@example.com",
        "r2@example.com",
        "r3@example.com",
        "r4@example.com",
        "r5@example.com",
    ];
    let (report, seen) = send_to_auth_server(
        |config| {
            config.limits = false;
            config.max_recipients = 2;
        },
        Delivery::new(envelope(&to)),
    );
    assert_eq!(report.transactions, 3);
    assert_eq!(seen.message_ends, 3, "one message per transaction");
    let want: Vec<String> = to.iter().map(|t| format!("<{t}>")).collect();
    assert_eq!(seen.rcpts, want, "each recipient accepted once, in order");
    assert!(report.all_delivered(), "{report:?}");
    for (r, t) in report.recipients.iter().zip(to) {
        let ForwardPath::Mailbox(m) = &r.recipient.path else {
            panic!("{r:?}")
        };
        assert_eq!(m.to_string(), t, "the report's order");
    }
    assert_eq!(report.error, None);
}
