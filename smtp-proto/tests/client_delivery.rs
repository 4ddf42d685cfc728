//! [`Delivery`] driving the client machine against scripted servers: the
//! calls it makes (what goes on the wire) and the report it ends with.
//!
//! The servers advertise no PIPELINING, so the client sends one command
//! and waits for its reply: the script gives one reply per read, in order,
//! and a script that runs out is a connection that broke there.

mod delivery_support;

use delivery_support::{config, envelope, reply};

use std::sync::{Arc, Mutex};

use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientEvent, CustomCredentials,
    Delivery, DeliveryReport, Envelope, NotAttempted, Outcome, Protocol, RecipientOutcome, Refusal,
    SaslAnswer, SaslResponder, Stage, TlsPolicy,
};
use smtp_proto::command::{Base64, Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::Limits;
use smtp_proto::sasl::CustomMechanism;

const MESSAGE: &[u8] = b"Subject: test\r\n\r\nhello\r\n";

/// What a run gave: the report, the client's bytes, and whether the
/// session ended (QUIT answered, or closed by the server).
struct Run {
    report: DeliveryReport,
    wire: String,
    closed: bool,
}

impl Run {
    /// The client's command lines (the message lines left out).
    fn commands(&self) -> Vec<&str> {
        let mut in_body = false;
        let mut out = Vec::new();
        for line in self.wire.split("\r\n") {
            if in_body {
                in_body = line != ".";
                continue;
            }
            if line.is_empty() {
                continue;
            }
            out.push(line);
            in_body = line == "DATA";
        }
        out
    }

    fn count(&self, prefix: &str) -> usize {
        self.commands()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    fn outcome(&self, i: usize) -> &RecipientOutcome {
        &self.report.recipients[i].outcome
    }
}

/// Runs `delivery` against the server replies `script`, one per read;
/// when the script runs out while the client waits, the connection is
/// lost.
fn run(config: ClientConfig, delivery: Delivery, script: &[&str]) -> Run {
    run_client(Client::new(config), delivery, script)
}

/// [`run`] with a client made by the caller.
fn run_client(mut client: Client, mut delivery: Delivery, script: &[&str]) -> Run {
    let mut script = script.iter();
    let mut inbuf: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let mut error = None;
    for _ in 0..10_000 {
        let step = match client.handle_input(&inbuf) {
            Ok(step) => step,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        let consumed = step.consumed;
        let mut done = false;
        match step.outcome {
            Outcome::Event(event) => {
                delivery.on_event(&mut client, &event).expect("delivery");
                if event == ClientEvent::SendBody {
                    loop {
                        match delivery.next_piece(MESSAGE, 8) {
                            Some(piece) => {
                                client.send_body(piece).unwrap();
                                if !client.wants_body() {
                                    break;
                                }
                            }
                            None => {
                                client.end_body().unwrap();
                                break;
                            }
                        }
                    }
                }
            }
            Outcome::NeedInput => match script.next() {
                Some(reply) => inbuf.extend_from_slice(reply.as_bytes()),
                None => {
                    error = Some("connection lost".to_owned());
                    done = true;
                }
            },
            Outcome::Closed => done = true,
            Outcome::Transmit => {}
            other => panic!("unexpected {other:?}"),
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
        if done {
            break;
        }
    }
    let closed = client.is_closed();
    Run {
        report: delivery.finish(error),
        wire: String::from_utf8(wire).unwrap(),
        closed,
    }
}

/// [`run`] with the default configuration, delivering to `to`.
fn send(to: &[&str], script: &[&str]) -> Run {
    run(config(), Delivery::new(envelope(to)), script)
}

const BOB_CAROL_DAVE: [&str; 3] = ["bob@example.org", "carol@example.org", "dave@example.org"];

const GREETING: &str = "220 mx.example.org ESMTP\r\n";
const EHLO: &str = "250 mx.example.org\r\n";
const OK: &str = "250 2.0.0 Ok\r\n";
const GO: &str = "354 go ahead\r\n";
const QUEUED: &str = "250 2.0.0 queued as 42\r\n";
const BYE: &str = "221 2.0.0 bye\r\n";
/// The EHLO reply of a server that takes one recipient per transaction.
const RCPTMAX_1: &str = "250-mx.example.org\r\n250 LIMITS RCPTMAX=1\r\n";

fn ehlo(lines: &str) -> String {
    format!("250-mx.example.org\r\n{lines}")
}

fn delivered(text: &str) -> RecipientOutcome {
    RecipientOutcome::Delivered { reply: reply(text) }
}

fn permanent(stage: Stage, text: &str) -> RecipientOutcome {
    RecipientOutcome::PermanentFailure {
        stage,
        reply: reply(text),
    }
}

fn temporary(stage: Stage, text: &str) -> RecipientOutcome {
    RecipientOutcome::TemporaryFailure {
        stage,
        reply: reply(text),
    }
}

fn not_attempted(reason: NotAttempted) -> RecipientOutcome {
    RecipientOutcome::NotAttempted { reason }
}

fn paths(it: impl Iterator<Item = String>) -> Vec<String> {
    it.collect()
}

fn names<'r>(it: impl Iterator<Item = &'r smtp_proto::client::RecipientReport>) -> Vec<String> {
    paths(it.map(|r| match &r.recipient.path {
        ForwardPath::Mailbox(m) => m.to_string(),
        other => format!("{other:?}"),
    }))
}

#[test]
fn every_recipient_delivered_in_one_transaction() {
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[GREETING, EHLO, OK, OK, OK, GO, QUEUED, BYE],
    );
    assert_eq!(
        r.commands(),
        [
            "EHLO client.example.net",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@example.org>",
            "RCPT TO:<carol@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert!(r.wire.contains("Subject: test\r\n\r\nhello\r\n.\r\n"));
    assert!(r.closed);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert_eq!(r.outcome(1), &delivered(QUEUED));
    assert!(r.report.all_delivered());
    assert_eq!(r.report.transactions, 1);
    assert_eq!(r.report.error, None);
    assert_eq!(r.report.to_retry().count(), 0);
}

/// Three recipients: delivered, refused with `refused`, refused for now
/// with `busy`.
fn mixed_run(refused: &str, busy: &str) -> Run {
    send(
        &["bob@example.org", "nobody@example.org", "busy@example.org"],
        &[GREETING, EHLO, OK, OK, refused, busy, GO, QUEUED, BYE],
    )
}

#[test]
fn one_recipient_refused_for_good_and_one_for_now() {
    let refused = "550 5.1.1 no such user\r\n";
    let busy = "450 4.2.1 mailbox busy\r\n";
    let r = mixed_run(refused, busy);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert_eq!(r.outcome(1), &permanent(Stage::Rcpt, refused));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, busy));
    assert!(!r.report.all_delivered());
    assert_eq!(names(r.report.delivered()), ["bob@example.org"]);
    assert_eq!(names(r.report.permanent_failures()), ["nobody@example.org"]);
    assert_eq!(names(r.report.to_retry()), ["busy@example.org"]);
    // The reply a bounce quotes: code, enhanced code and text.
    let quoted = r.outcome(1).reply().unwrap();
    assert_eq!(quoted.enhanced_code().unwrap().to_string(), "5.1.1");
    assert_eq!(quoted.text(), b"no such user");
}

#[test]
fn a_sender_refused_for_good_refuses_all_and_is_not_repeated() {
    let refused = "550 5.7.1 sender refused\r\n";
    // RCPTMAX=1: three transactions would be needed.
    let r = send(&BOB_CAROL_DAVE, &[GREETING, RCPTMAX_1, refused, BYE]);
    assert_eq!(
        r.commands(),
        [
            "EHLO client.example.net",
            "MAIL FROM:<alice@example.net>",
            "QUIT"
        ]
    );
    assert_eq!(r.outcome(0), &permanent(Stage::Mail, refused));
    let reason = NotAttempted::SenderRefused {
        reply: reply(refused),
    };
    assert_eq!(r.outcome(1), &not_attempted(reason.clone()));
    assert_eq!(r.outcome(2), &not_attempted(reason));
    assert_eq!(r.report.permanent_failures().count(), 3);
    assert_eq!(r.report.to_retry().count(), 0);
}

/// The sender of a run to two recipients was refused with `refused`: one
/// MAIL, both recipients failed there, the session ended.
fn assert_both_refused_at_mail(r: &Run, refused: &str) {
    assert_eq!(r.count("MAIL "), 1);
    assert_eq!(r.outcome(0), &permanent(Stage::Mail, refused));
    assert_eq!(r.outcome(1), &permanent(Stage::Mail, refused));
    assert!(r.closed);
}

#[test]
fn a_sender_refused_in_one_transaction_refuses_every_recipient() {
    let refused = "553 5.1.8 bad sender domain\r\n";
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[GREETING, EHLO, refused, BYE],
    );
    assert_eq!(r.count("RCPT "), 0);
    assert_both_refused_at_mail(&r, refused);
}

#[test]
fn a_sender_refused_for_now_is_tried_again_for_the_next_transaction() {
    let later = "451 4.3.0 try later\r\n";
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[GREETING, RCPTMAX_1, later, OK, OK, GO, QUEUED, BYE],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.outcome(0), &temporary(Stage::Mail, later));
    assert_eq!(r.outcome(1), &delivered(QUEUED));
    assert_eq!(names(r.report.to_retry()), ["bob@example.org"]);
}

#[test]
fn rcptmax_splits_the_recipients_into_transactions() {
    let first = "250 2.0.0 queued as A\r\n";
    let second = "250 2.0.0 queued as B\r\n";
    let limits = ehlo("250 LIMITS RCPTMAX=2\r\n");
    let r = send(
        &BOB_CAROL_DAVE,
        &[
            GREETING, &limits, OK, OK, OK, GO, first, OK, OK, GO, second, BYE,
        ],
    );
    assert_eq!(
        r.commands(),
        [
            "EHLO client.example.net",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@example.org>",
            "RCPT TO:<carol@example.org>",
            "DATA",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<dave@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    // The whole message went out once per transaction.
    assert_eq!(r.wire.matches("hello\r\n.\r\n").count(), 2);
    assert_eq!(r.outcome(0), &delivered(first));
    assert_eq!(r.outcome(1), &delivered(first));
    assert_eq!(r.outcome(2), &delivered(second));
    assert_eq!(r.report.transactions, 2);
    assert!(r.report.all_delivered());
}

/// `LIMITS RCPTMAX=0` (or `MAILMAX=0`, `RCPTDOMAINMAX=0`) is out of
/// range: taken at its word, no transaction could carry a recipient and
/// every one would be retried forever. The limit is ignored and the
/// message goes to every recipient; the other limits still hold.
#[test]
fn limits_of_zero_are_ignored_and_the_message_goes_out() {
    for line in [
        "250 LIMITS RCPTMAX=0\r\n",
        "250 LIMITS MAILMAX=0\r\n",
        "250 LIMITS RCPTDOMAINMAX=0\r\n",
    ] {
        let limits = ehlo(line);
        let r = send(
            &["bob@example.org", "carol@example.org"],
            &[GREETING, &limits, OK, OK, OK, GO, QUEUED, BYE],
        );
        assert_eq!(r.count("MAIL "), 1, "{line}");
        assert_eq!(r.count("RCPT "), 2, "{line}");
        assert!(r.report.all_delivered(), "{line}: {:?}", r.report);
        assert_eq!(r.report.to_retry().count(), 0, "{line}");
    }
    // A zero next to a usable limit: the usable one splits the envelope.
    let limits = ehlo("250 LIMITS RCPTMAX=0 RCPTDOMAINMAX=1\r\n");
    let r = send(
        &["bob@example.org", "carol@example.net"],
        &[
            GREETING, &limits, OK, OK, GO, QUEUED, OK, OK, GO, QUEUED, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert!(r.report.all_delivered(), "{:?}", r.report);
}

/// A known limit the client cannot use (`RCPTMAX=lots`, a number past
/// `u32::MAX`, no value) is ignored alone (RFC 9422 §3): the valid limits
/// beside it still split the envelope and stop at MAILMAX. Before, the
/// whole LIMITS line was lost, and both recipients went in one transaction.
#[test]
fn an_unusable_limit_does_not_hide_the_others_from_the_delivery() {
    for line in [
        "250 LIMITS RCPTMAX=lots MAILMAX=1 RCPTDOMAINMAX=1\r\n",
        "250 LIMITS MAILMAX=1 RCPTMAX=99999999999 RCPTDOMAINMAX=1\r\n",
        "250 LIMITS MAILMAX=1 RCPTDOMAINMAX=1 RCPTMAX\r\n",
    ] {
        let limits = ehlo(line);
        let r = send(
            &["bob@example.org", "carol@example.net"],
            &[GREETING, &limits, OK, OK, GO, QUEUED, BYE],
        );
        assert_eq!(r.count("MAIL "), 1, "{line}");
        assert_eq!(r.count("RCPT "), 1, "{line}");
        assert_eq!(r.outcome(0), &delivered(QUEUED), "{line}");
        assert_eq!(
            r.outcome(1),
            &not_attempted(NotAttempted::TransactionLimit { limit: 1 }),
            "{line}"
        );
    }
}

#[test]
fn mailmax_leaves_the_rest_not_attempted_and_quits() {
    let limits = ehlo("250 LIMITS RCPTMAX=1 MAILMAX=1\r\n");
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[GREETING, &limits, OK, OK, GO, QUEUED, BYE],
    );
    assert_eq!(r.count("MAIL "), 1);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    assert!(r.closed);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert_eq!(
        r.outcome(1),
        &not_attempted(NotAttempted::TransactionLimit { limit: 1 })
    );
    assert_eq!(names(r.report.to_retry()), ["carol@example.org"]);
    assert_eq!(r.report.error, None);
}

#[test]
fn a_421_in_the_middle_ends_the_session() {
    let closing = "421 4.3.2 shutting down\r\n";
    // Second transaction: MAIL and RCPT accepted, then 421 to DATA.
    let r = send(
        &BOB_CAROL_DAVE,
        &[GREETING, RCPTMAX_1, OK, OK, GO, QUEUED, OK, OK, closing],
    );
    assert!(r.closed);
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.count("QUIT"), 0);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert_eq!(r.outcome(1), &temporary(Stage::Data, closing));
    assert_eq!(
        r.outcome(2),
        &not_attempted(NotAttempted::ServiceClosing {
            reply: reply(closing)
        })
    );
    assert_eq!(
        names(r.report.to_retry()),
        ["carol@example.org", "dave@example.org"]
    );
}

#[test]
fn a_421_to_mail_decides_the_transaction_at_mail() {
    let closing = "421 4.7.0 too many connections\r\n";
    let r = send(&["bob@example.org"], &[GREETING, EHLO, closing]);
    assert_eq!(r.outcome(0), &temporary(Stage::Mail, closing));
}

#[test]
fn a_421_greeting_leaves_everyone_not_attempted() {
    let closing = "421 4.3.2 not now\r\n";
    let r = send(&["bob@example.org"], &[closing]);
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(
        r.outcome(0),
        &not_attempted(NotAttempted::ServiceClosing {
            reply: reply(closing)
        })
    );
    assert_eq!(r.report.transactions, 0);
}

#[test]
fn a_connection_lost_after_the_body_leaves_the_outcome_unknown() {
    // The whole message and its end went out; no reply came.
    let r = send(
        &["bob@example.org", "nobody@example.org"],
        &[GREETING, EHLO, OK, OK, "550 5.1.1 no such user\r\n", GO],
    );
    assert!(r.wire.contains("hello\r\n.\r\n"));
    assert_eq!(r.outcome(0), &RecipientOutcome::Unknown);
    // Refused at RCPT: that is known.
    assert_eq!(
        r.outcome(1),
        &permanent(Stage::Rcpt, "550 5.1.1 no such user\r\n")
    );
    assert_eq!(names(r.report.unknown()), ["bob@example.org"]);
    assert_eq!(r.report.to_retry().count(), 0);
    assert_eq!(r.report.error.as_deref(), Some("connection lost"));
}

#[test]
fn a_connection_lost_before_the_body_leaves_the_message_unsent() {
    // RCPT accepted, DATA unanswered: nothing of the message went out.
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[GREETING, RCPTMAX_1, OK, OK],
    );
    assert!(!r.wire.contains("hello"));
    assert_eq!(r.commands().last(), Some(&"DATA"));
    let lost = not_attempted(NotAttempted::ConnectionLost);
    assert_eq!(r.outcome(0), &lost);
    assert_eq!(r.outcome(1), &lost);
    assert_eq!(r.report.unknown().count(), 0);
    assert_eq!(
        names(r.report.to_retry()),
        ["bob@example.org", "carol@example.org"]
    );
}

/// Drives a delivery to bob against the server replies `script` for a
/// caller that streams the body itself: at `SendBody` it calls `on_body`
/// (which tells the delivery what it chooses to) instead of sending the
/// delivery's pieces. Stops when the script runs out or the session
/// closes; any other outcome than an event or a wait for input panics.
fn stream_body_by_hand(
    script: &[&str],
    mut on_body: impl FnMut(&mut Client, &mut Delivery),
) -> (Client, Delivery) {
    let mut delivery = Delivery::new(envelope(&["bob@example.org"]));
    let mut client = Client::new(config());
    let mut script = script.iter();
    let mut inbuf = Vec::new();
    let mut wire = Vec::new();
    for _ in 0..100 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ClientEvent::SendBody) => on_body(&mut client, &mut delivery),
            Outcome::Event(event) => delivery.on_event(&mut client, &event).unwrap(),
            Outcome::NeedInput => match script.next() {
                Some(s) => inbuf.extend_from_slice(s.as_bytes()),
                None => break,
            },
            Outcome::Closed => break,
            other => panic!("{other:?}"),
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
    }
    (client, delivery)
}

#[test]
fn a_body_ended_by_the_caller_counts_as_sent() {
    // A caller that streams the body itself says when its end goes out.
    let (client, delivery) =
        stream_body_by_hand(&[GREETING, EHLO, OK, OK, GO], |client, delivery| {
            delivery.on_event(client, &ClientEvent::SendBody).unwrap();
            client.send_body(MESSAGE).unwrap();
            delivery.body_ended();
            client.end_body().unwrap();
        });
    // The script ran out: the session is open, waiting for the reply.
    assert!(!client.is_closed());
    let report = delivery.finish(Some("reset".into()));
    assert_eq!(report.recipients[0].outcome, RecipientOutcome::Unknown);
}

#[test]
fn a_failed_auth_sends_no_transaction() {
    let failed = "535 5.7.8 authentication failed\r\n";
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org", "carol@example.org"]))
            .with_auth(AuthCredentials::password("alice", "secret")),
        &[GREETING, &ehlo("250 AUTH PLAIN\r\n"), failed, BYE],
    );
    assert_eq!(r.count("AUTH PLAIN"), 1);
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    let reason = not_attempted(NotAttempted::AuthFailed {
        reply: reply(failed),
    });
    assert_eq!(r.outcome(0), &reason);
    assert_eq!(r.outcome(1), &reason);
    assert_eq!(r.report.to_retry().count(), 2);
}

#[test]
fn a_successful_auth_comes_before_the_transaction() {
    let auth = ehlo("250 AUTH PLAIN\r\n");
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(AuthCredentials::password("alice", "secret")),
        &[GREETING, &auth, "235 2.7.0 ok\r\n", OK, OK, GO, QUEUED, BYE],
    );
    let commands = r.commands();
    assert!(commands[1].starts_with("AUTH PLAIN "), "{commands:?}");
    assert_eq!(commands[2], "MAIL FROM:<alice@example.net>");
    assert!(r.report.all_delivered());
}

#[test]
fn auth_without_a_common_mechanism_is_not_attempted() {
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(AuthCredentials::password("alice", "secret")),
        &[GREETING, &ehlo("250 AUTH GSSAPI\r\n"), BYE],
    );
    assert_eq!(r.count("AUTH"), 0);
    assert_eq!(r.count("MAIL "), 0);
    assert!(matches!(
        r.outcome(0),
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::AuthUnavailable(_)
        }
    ));
    assert!(r.closed);
}

/// Credentials the server would refuse with 501 (here a NUL in a LOGIN
/// password) are refused before AUTH is sent: the recipients are not
/// attempted, for the reason the client gave, and the session ends.
#[test]
fn unencodable_login_credentials_are_not_sent() {
    use smtp_proto::client::UsageError;
    use smtp_proto::sasl::SaslError;
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(AuthCredentials::password("alice", "s3cret\0admin")),
        &[GREETING, &ehlo("250 AUTH LOGIN\r\n"), BYE],
    );
    assert_eq!(r.commands(), ["EHLO client.example.net", "QUIT"]);
    assert_eq!(
        r.outcome(0),
        &RecipientOutcome::NotAttempted {
            reason: NotAttempted::AuthUnavailable(UsageError::Credentials(SaslError::Unencodable(
                "NUL in password"
            )))
        }
    );
    assert!(r.closed);
}

#[test]
fn lmtp_gives_each_recipient_its_own_reply() {
    let full = "452 4.2.2 mailbox full\r\n";
    let stored = "250 2.0.0 stored\r\n";
    let unknown = "550 5.1.1 unknown\r\n";
    let r = run(
        config().with_protocol(Protocol::Lmtp),
        Delivery::new(envelope(&[
            "bob@example.org",
            "nobody@example.org",
            "carol@example.org",
        ])),
        &[GREETING, EHLO, OK, OK, unknown, OK, GO, stored, full, BYE],
    );
    assert_eq!(r.commands()[0], "LHLO client.example.net");
    assert_eq!(r.outcome(0), &delivered(stored));
    assert_eq!(r.outcome(1), &permanent(Stage::Rcpt, unknown));
    assert_eq!(r.outcome(2), &temporary(Stage::EndOfData, full));
}

#[test]
fn lmtp_connection_lost_between_the_replies_after_the_body() {
    let stored = "250 2.0.0 stored\r\n";
    let r = run(
        config().with_protocol(Protocol::Lmtp),
        Delivery::new(envelope(&["bob@example.org", "carol@example.org"])),
        &[GREETING, EHLO, OK, OK, OK, GO, stored],
    );
    assert_eq!(r.outcome(0), &delivered(stored));
    assert_eq!(r.outcome(1), &RecipientOutcome::Unknown);
}

#[test]
fn a_refused_message_is_decided_after_the_body() {
    let spam = "554 5.7.1 looks like spam\r\n";
    let r = send(
        &["bob@example.org"],
        &[GREETING, EHLO, OK, OK, GO, spam, BYE],
    );
    assert_eq!(r.outcome(0), &permanent(Stage::EndOfData, spam));
}

#[test]
fn a_refused_data_is_decided_at_data() {
    let no = "451 4.3.0 no DATA now\r\n";
    let r = send(&["bob@example.org"], &[GREETING, EHLO, OK, OK, no, BYE]);
    assert!(!r.wire.contains("hello"));
    assert_eq!(r.outcome(0), &temporary(Stage::Data, no));
}

#[test]
fn a_refused_greeting_or_hello_is_reported() {
    let refused = "554 5.7.1 no service\r\n";
    let r = send(&["bob@example.org"], &[refused, BYE]);
    assert_eq!(
        r.outcome(0),
        &not_attempted(NotAttempted::SessionRefused {
            reply: reply(refused)
        })
    );
    let r = send(
        &["bob@example.org"],
        &[GREETING, "550 no\r\n", "550 no\r\n", BYE],
    );
    assert!(matches!(
        r.outcome(0),
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::SessionRefused { .. }
        }
    ));
}

#[test]
fn required_tls_that_is_unavailable_is_reported() {
    let r = run(
        config().with_tls(TlsPolicy::Required),
        Delivery::new(envelope(&["bob@example.org"])),
        &[GREETING, EHLO, BYE],
    );
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(
        r.outcome(0),
        &not_attempted(NotAttempted::TlsUnavailable { reply: None })
    );
}

/// Opportunistic TLS is TLS when it can be had: a caller that cannot run
/// the handshake (no TLS configuration) does not send STARTTLS, even when
/// the server offers it, and the message goes in plain text. Required TLS
/// still sends it (and fails at the handshake the caller cannot run).
#[test]
fn opportunistic_tls_without_a_handshake_goes_on_in_plain_text() {
    let offer = ehlo("250 STARTTLS\r\n");
    let mut client = Client::new(config().with_tls(TlsPolicy::Opportunistic));
    client.set_can_start_tls(false);
    let r = run_client(
        client,
        Delivery::new(envelope(&["bob@example.org"])),
        &[GREETING, &offer, OK, OK, GO, QUEUED, BYE],
    );
    assert_eq!(r.count("STARTTLS"), 0);
    assert_eq!(r.count("MAIL "), 1);
    assert_eq!(r.outcome(0), &delivered(QUEUED));

    let mut client = Client::new(config().with_tls(TlsPolicy::Required));
    client.set_can_start_tls(false);
    let input = format!("{GREETING}{offer}");
    let mut buf = input.as_bytes();
    let mut wire = Vec::new();
    while !buf.is_empty() {
        let step = client.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        client.poll_transmit(&mut wire);
    }
    assert_eq!(wire, b"EHLO client.example.net\r\nSTARTTLS\r\n");
    let step = client.handle_input(b"220 2.0.0 go ahead\r\n").unwrap();
    assert_eq!(step.outcome, Outcome::Event(ClientEvent::StartTls));
}

/// A message that needs REQUIRETLS (RFC 8689), under opportunistic TLS,
/// on a server that refused STARTTLS: nothing is sent in plain text. A
/// `454` is a temporary refusal of TLS (RFC 3207 §4): the message is to be
/// sent again later, not bounced. A 5yz, or a server that does not offer
/// STARTTLS, is for good.
#[test]
fn requiretls_after_a_temporary_starttls_refusal_is_retried_not_bounced() {
    let mut env = envelope(&["bob@example.org"]);
    env.require_tls = true;
    let offer = ehlo("250-STARTTLS\r\n250 REQUIRETLS\r\n");
    let opportunistic = config().with_tls(TlsPolicy::Opportunistic);
    let temporary = "454 4.7.0 TLS not available due to temporary reason\r\n";
    let r = run(
        opportunistic.clone(),
        Delivery::new(env.clone()),
        &[GREETING, &offer, temporary, BYE],
    );
    assert_eq!(
        r.commands(),
        ["EHLO client.example.net", "STARTTLS", "QUIT"]
    );
    let outcome = r.outcome(0);
    assert_eq!(
        outcome,
        &not_attempted(NotAttempted::TlsUnavailable {
            reply: Some(reply(temporary))
        })
    );
    assert!(outcome.is_retry() && !outcome.is_permanent_failure());
    assert_eq!(names(r.report.to_retry()), ["bob@example.org"]);

    for script in [
        &[GREETING, &offer, "554 5.7.0 no TLS for you\r\n", BYE][..],
        &[GREETING, &ehlo("250 REQUIRETLS\r\n"), BYE],
    ] {
        let r = run(opportunistic.clone(), Delivery::new(env.clone()), script);
        assert_eq!(r.count("MAIL "), 0);
        let outcome = r.outcome(0);
        assert_eq!(
            outcome,
            &not_attempted(NotAttempted::Refused(Refusal::RequireTls))
        );
        assert!(outcome.is_permanent_failure());
    }
}

#[test]
fn a_message_above_the_servers_size_is_refused_locally() {
    let r = run(
        config(),
        Delivery::new(envelope(&["bob@example.org"]).with_size(10_000)),
        &[GREETING, &ehlo("250 SIZE 1000\r\n"), BYE],
    );
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    let outcome = r.outcome(0);
    assert_eq!(
        outcome,
        &not_attempted(NotAttempted::Refused(Refusal::TooLarge {
            size: 10_000,
            limit: 1000
        }))
    );
    assert!(outcome.is_permanent_failure());
}

#[test]
fn bdat_without_pipelining_sends_the_pieces_as_chunks() {
    let r = run(
        config().with_chunking(ChunkingPolicy::Prefer),
        Delivery::new(envelope(&["bob@example.org"])),
        &[
            GREETING,
            &ehlo("250 CHUNKING\r\n"),
            OK,
            OK,
            // One reply per chunk of at most 8 octets (CR LF kept
            // together: 8, 9 and 7), then the one to `BDAT 0 LAST`.
            OK,
            OK,
            OK,
            QUEUED,
            BYE,
        ],
    );
    assert_eq!(r.wire.matches("BDAT ").count(), 4, "{}", r.wire);
    assert!(r.wire.contains("BDAT 8\r\nSubject:"), "{}", r.wire);
    assert!(r.wire.contains("BDAT 0 LAST\r\n"), "{}", r.wire);
    assert_eq!(r.outcome(0), &delivered(QUEUED), "{}", r.wire);
}

#[test]
fn outcomes_are_visible_while_the_run_goes_on() {
    let mut delivery = Delivery::new(envelope(&["bob@example.org", "carol@example.org"]));
    assert_eq!(delivery.outcome(0), None);
    assert!(delivery.current_transaction().is_empty());
    assert_eq!(delivery.envelope_index(0), None);
    let mut client = Client::new(config());
    let mut inbuf = b"220 mx\r\n250 mx\r\n".to_vec();
    for _ in 0..10 {
        client.poll_transmit(&mut Vec::new());
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(event) => delivery.on_event(&mut client, &event).unwrap(),
            _ => break,
        }
        inbuf.drain(..consumed);
    }
    assert_eq!(delivery.current_transaction(), [0, 1]);
    assert_eq!(delivery.envelope_index(1), Some(1));
    assert_eq!(delivery.envelope_index(2), None);
    assert_eq!(delivery.transactions(), 1);
    assert_eq!(delivery.outcome(0), None);
    let report = delivery.finish(Some("stopped".into()));
    assert_eq!(report.error.as_deref(), Some("stopped"));
    assert!(report
        .recipients
        .iter()
        .all(|r| r.outcome == not_attempted(NotAttempted::ConnectionLost)));
}

#[test]
fn pipelined_replies_after_a_refused_sender_do_not_change_the_outcome() {
    let refused = "550 5.7.1 sender refused\r\n";
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[
            GREETING,
            &ehlo("250 PIPELINING\r\n"),
            // MAIL, both RCPTs and DATA went in one group.
            &format!("{refused}503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n"),
            BYE,
        ],
    );
    assert_eq!(r.count("RCPT "), 2);
    assert_both_refused_at_mail(&r, refused);
}

#[test]
fn rcptdomainmax_splits_the_recipients_by_domain() {
    let limits = ehlo("250 LIMITS RCPTDOMAINMAX=1\r\n");
    let r = send(
        &["bob@one.example", "carol@ONE.example", "dave@two.example"],
        &[
            GREETING, &limits, OK, OK, OK, GO, QUEUED, OK, OK, GO, QUEUED, BYE,
        ],
    );
    let rcpts: Vec<&str> = r
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("MAIL ") || c.starts_with("RCPT "))
        .collect();
    assert_eq!(
        rcpts,
        [
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@one.example>",
            "RCPT TO:<carol@ONE.example>",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<dave@two.example>",
        ]
    );
    assert!(r.report.all_delivered());
}

/// The MAIL commands and the outcomes of a run to `to` split one
/// recipient per transaction, against a server whose EHLO has `ehlo`.
fn utf8_split_run(to: &[&str], ehlo_lines: &str, replies: &[&str]) -> Run {
    let limits = ehlo(&format!("250-LIMITS RCPTMAX=1\r\n{ehlo_lines}"));
    let mut script = vec![GREETING, &limits];
    script.extend_from_slice(replies);
    send(to, &script)
}

#[test]
fn a_utf8_recipient_refuses_the_message_whatever_its_place_in_the_split() {
    // RFC 6531 §3.4: the "envelope or message" needs SMTPUTF8, which this
    // server lacks. Split one recipient per transaction, the ASCII
    // recipient went out (without SMTPUTF8) when it came first, and was
    // refused when it came after the UTF-8 one.
    let refused = not_attempted(NotAttempted::Refused(Refusal::SmtpUtf8));
    for to in [
        ["bob@example.org", "jösé@example.org"],
        ["jösé@example.org", "bob@example.org"],
    ] {
        let r = utf8_split_run(&to, "250 8BITMIME\r\n", &[BYE]);
        assert_eq!(r.count("MAIL "), 0, "{to:?}: {:?}", r.commands());
        assert_eq!(r.outcome(0), &refused, "{to:?}");
        assert_eq!(r.outcome(1), &refused, "{to:?}");
        assert!(r.closed);
    }
    // Unsplit, the same.
    let r = send(
        &["bob@example.org", "jösé@example.org"],
        &[GREETING, EHLO, BYE],
    );
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(r.outcome(0), &refused);
}

#[test]
fn every_transaction_of_a_utf8_message_asks_for_smtputf8() {
    let r = utf8_split_run(
        &["bob@example.org", "jösé@example.org"],
        "250-8BITMIME\r\n250 SMTPUTF8\r\n",
        &[OK, OK, GO, QUEUED, OK, OK, GO, QUEUED, BYE],
    );
    let mails: Vec<&str> = r
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("MAIL "))
        .collect();
    assert_eq!(
        mails,
        [
            "MAIL FROM:<alice@example.net> SMTPUTF8",
            "MAIL FROM:<alice@example.net> SMTPUTF8"
        ]
    );
    assert!(r.report.all_delivered());
    // A message of ASCII addresses does not ask for it.
    let r = utf8_split_run(
        &["bob@example.org", "carol@example.org"],
        "250-8BITMIME\r\n250 SMTPUTF8\r\n",
        &[OK, OK, GO, QUEUED, OK, OK, GO, QUEUED, BYE],
    );
    assert!(!r.wire.contains("SMTPUTF8"));
    assert!(r.report.all_delivered());
}

#[test]
fn a_utf8_orcpt_in_a_later_transaction_refuses_the_whole_message_where_dsn_is_offered() {
    // RFC 6533 §3: an ORCPT in UTF-8 needs SMTPUTF8 where DSN sends it.
    // The first recipient's transaction carries none, the second's does;
    // the server offers DSN and no SMTPUTF8: neither goes, whatever the
    // split, as when the envelope goes unsplit.
    let mut env = envelope(&["bob@example.org", "carol@example.org"]);
    let addr = smtp_proto::command::Unitext::new("用户@example.com").unwrap();
    env.recipients[1].orcpt = Some(smtp_proto::command::Orcpt::utf8(addr).unwrap());
    let limits = ehlo("250-LIMITS RCPTMAX=1\r\n250 DSN\r\n");
    let r = run(
        config(),
        Delivery::new(env.clone()),
        &[GREETING, &limits, BYE],
    );
    assert_eq!(r.count("MAIL "), 0, "{:?}", r.commands());
    let refused = not_attempted(NotAttempted::Refused(Refusal::SmtpUtf8));
    assert_eq!(r.outcome(0), &refused);
    assert_eq!(r.outcome(1), &refused);
    // Without DSN the ORCPT does not go out, and nor does SMTPUTF8.
    let limits = ehlo("250 LIMITS RCPTMAX=1\r\n");
    let r = run(
        config(),
        Delivery::new(env),
        &[
            GREETING, &limits, OK, OK, GO, QUEUED, OK, OK, GO, QUEUED, BYE,
        ],
    );
    assert!(r.report.all_delivered());
    assert!(!r.wire.contains("SMTPUTF8"));
}

#[test]
fn split_to_fit_keeps_smtputf8_for_every_part() {
    let mut env = envelope(&["bob@example.org", "jösé@example.org"]);
    assert!(!env.smtputf8);
    let limits = Limits {
        rcpt_max: Some(1),
        ..Limits::default()
    };
    let rest = env.split_to_fit(&limits).unwrap();
    // The part of ASCII addresses still needs SMTPUTF8: its message does.
    assert!(env.needs_smtputf8());
    assert!(rest.needs_smtputf8());
    // An ASCII envelope is left as it was.
    let mut env = envelope(&["bob@example.org", "carol@example.org"]);
    let rest = env.split_to_fit(&limits).unwrap();
    assert!(!env.needs_smtputf8() && !rest.needs_smtputf8());
}

#[test]
fn splitting_a_long_envelope_is_one_pass() {
    // 100 000 recipients in as many domains. Without LIMITS they all fit;
    // under RCPTDOMAINMAX the first 60 000 do. (The split counts domains
    // in one pass; comparing every domain with each one before it took
    // 42 s for this envelope in a debug build. Speed is not asserted
    // here: the result is.)
    let mut env = Envelope::new(ReversePath::Null);
    for i in 0..100_000 {
        let address = format!("u@d{i}.example");
        let mailbox = Mailbox::parse(&address).unwrap().into_owned();
        env = env.recipient(ForwardPath::Mailbox(mailbox));
    }
    assert!(env.split_to_fit(&Limits::default()).is_none());
    let limits = Limits {
        rcpt_domain_max: Some(60_000),
        ..Limits::default()
    };
    let rest = env.split_to_fit(&limits).unwrap();
    assert_eq!(env.recipients.len(), 60_000);
    assert_eq!(rest.recipients.len(), 40_000);
    assert_eq!(env.recipient_domains(), 60_000);
    assert_eq!(rest.recipient_domains(), 40_000);
}

#[test]
fn one_reply_that_decides_many_recipients_is_held_once() {
    // The reply after the message decides every recipient of the
    // transaction, and a 421 every recipient left: each outcome holds the
    // same reply text, not a copy of it per recipient (with a reply of up
    // to 32 KiB, a copy each for a long envelope is a server's way to make
    // the client hold gigabytes).
    let long = format!("250 2.0.0 {}\r\n", "x".repeat(400));
    let closing = format!("421 4.3.2 {}\r\n", "y".repeat(400));
    let r = send(
        &BOB_CAROL_DAVE,
        &[
            GREETING,
            "250-mx.example.org\r\n250 LIMITS RCPTMAX=2\r\n",
            OK,
            OK,
            OK,
            GO,
            &long,
            &closing,
        ],
    );
    let text = |r: &Run, i: usize| r.outcome(i).reply().unwrap().text().as_ptr();
    assert_eq!(r.outcome(0), &delivered(&long));
    assert_eq!(r.outcome(1), &delivered(&long));
    assert!(std::ptr::eq(text(&r, 0), text(&r, 1)));
    let mut many = Vec::new();
    for i in 0..50 {
        many.push(format!("u{i}@example.org"));
    }
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = send(&many, &[GREETING, EHLO, &closing]);
    assert_eq!(r.outcome(0), &temporary(Stage::Mail, &closing));
    assert!(r
        .report
        .recipients
        .iter()
        .all(|x| x.outcome.reply().is_some()));
    for i in 1..many.len() {
        assert!(std::ptr::eq(text(&r, 0), text(&r, i)), "recipient {i}");
    }
}

#[test]
fn a_421_to_the_end_of_the_message_is_a_temporary_failure_there() {
    let closing = "421 4.3.0 queue trouble\r\n";
    let r = send(&["bob@example.org"], &[GREETING, EHLO, OK, OK, GO, closing]);
    assert!(r.wire.contains("hello\r\n.\r\n"));
    assert!(r.closed);
    // The server answered the message: not unknown.
    assert_eq!(r.outcome(0), &temporary(Stage::EndOfData, closing));
    assert_eq!(r.report.unknown().count(), 0);
}

/// One recipient to a server with PIPELINING and CHUNKING: MAIL and RCPT
/// accepted, then `chunk_replies` answer the chunks and `BDAT 0 LAST`,
/// which all go out before any reply is read.
fn pipelined_bdat(chunk_replies: &str) -> Run {
    run(
        config().with_chunking(ChunkingPolicy::Prefer),
        Delivery::new(envelope(&["bob@example.org"])),
        &[
            GREETING,
            &ehlo("250-PIPELINING\r\n250 CHUNKING\r\n"),
            &format!("{OK}{OK}"),
            chunk_replies,
            BYE,
        ],
    )
}

#[test]
fn a_pipelined_chunk_refused_after_the_last_one_went_out_is_decided_at_data() {
    // The second chunk is refused; the reply to LAST only confirms it. The
    // refusal answers a chunk, not the end of the message.
    let full = "452 4.3.1 no room for this chunk\r\n";
    let r = pipelined_bdat(&format!(
        "{OK}{full}503 5.5.1 no transaction\r\n503 5.5.1 no transaction\r\n"
    ));
    assert!(r.wire.contains("BDAT 0 LAST\r\n"), "{}", r.wire);
    assert!(r.closed);
    assert_eq!(r.outcome(0), &temporary(Stage::Data, full));
}

#[test]
fn a_pipelined_refusal_of_bdat_last_is_decided_at_the_end_of_data() {
    let spam = "554 5.7.1 looks like spam\r\n";
    let r = pipelined_bdat(&format!("{OK}{OK}{OK}{spam}"));
    assert_eq!(r.outcome(0), &permanent(Stage::EndOfData, spam));
}

#[test]
fn an_accepted_message_is_delivered_even_without_body_ended() {
    // A caller that streams the body and forgets `body_ended`: the
    // server's acceptance still decides.
    let (client, delivery) =
        stream_body_by_hand(&[GREETING, EHLO, OK, OK, GO, QUEUED, BYE], |client, _| {
            client.send_body(MESSAGE).unwrap();
            client.end_body().unwrap();
        });
    assert!(client.is_closed());
    let report = delivery.finish(None);
    assert_eq!(report.recipients[0].outcome, delivered(QUEUED));
}

/// The `Action` and `Status` lines of each recipient block of a bounce.
fn status_lines(bounce: &[u8]) -> Vec<(String, String, String)> {
    let text = String::from_utf8_lossy(bounce);
    let part = text
        .split("Content-Type: message/delivery-status\r\n\r\n")
        .nth(1)
        .expect("a delivery-status part");
    let part = part.split("\r\n--").next().unwrap();
    part.split("\r\n\r\n")
        .skip(1)
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let get = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                get("Final-Recipient: rfc822; "),
                get("Action: "),
                get("Status: "),
            )
        })
        .collect()
}

#[test]
fn a_report_gives_the_bounce_entries_of_its_failed_and_delayed_recipients() {
    use smtp_proto::dsn::{Action, Bounce, Recipient};
    use smtp_proto::trace::Timestamp;

    let r = mixed_run("550 5.1.1 no such user\r\n", "450 mailbox busy\r\n");
    let entries: Vec<Recipient<'_>> = r
        .report
        .recipients
        .iter()
        .filter_map(Recipient::from_report)
        .collect();
    // The delivered recipient gives no entry.
    let actions: Vec<(Action, String)> = entries
        .iter()
        .map(|e| (e.action(), e.status().to_string()))
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Failed, "5.1.1".to_owned()),
            // No enhanced code in the reply: the class of its code.
            (Action::Delayed, "4.0.0".to_owned())
        ]
    );

    let host = Domain::new("relay.example.net").unwrap();
    let sender = ReversePath::Mailbox(Mailbox::parse("alice@example.net").unwrap());
    let token = smtp_proto::command::Atom::new("Q7").unwrap();
    let mut bounce = Bounce::new(&host, &sender, Timestamp::new(0, 0).unwrap(), &token).unwrap();
    for e in entries {
        bounce.push_recipient(e);
    }
    let written = bounce.write(MESSAGE).unwrap();
    assert_eq!(
        status_lines(written.as_bytes()),
        [
            ("nobody@example.org".into(), "failed".into(), "5.1.1".into()),
            ("busy@example.org".into(), "delayed".into(), "4.0.0".into()),
        ]
    );
    let text = String::from_utf8_lossy(written.as_bytes());
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
    assert!(text.contains("Diagnostic-Code: smtp; 450 mailbox busy\r\n"));
}

#[test]
fn report_entries_without_a_fitting_reply_take_their_status_from_the_reason() {
    use smtp_proto::dsn::{Action, Recipient};

    let entry = |run: &Run, i: usize| {
        Recipient::from_report(&run.report.recipients[i])
            .map(|e| (e.action(), e.status().to_string()))
    };
    // Lost before the body: retry, 4.4.2 (bad connection).
    let lost = send(&["bob@example.org"], &[GREETING, EHLO, OK, OK]);
    assert_eq!(entry(&lost, 0), Some((Action::Delayed, "4.4.2".into())));
    // Lost after the body: the message may have arrived, no entry.
    let unknown = send(&["bob@example.org"], &[GREETING, EHLO, OK, OK, GO]);
    assert_eq!(
        unknown.report.recipients[0].outcome,
        RecipientOutcome::Unknown
    );
    assert_eq!(entry(&unknown, 0), None);
    // Over the server's SIZE: failed, 5.3.4, with no reply to quote.
    let big = run(
        config(),
        Delivery::new(envelope(&["bob@example.org"]).with_size(1_000_000)),
        &[GREETING, &ehlo("250 SIZE 1000\r\n"), BYE],
    );
    assert!(matches!(
        big.report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::Refused(Refusal::TooLarge { .. })
        }
    ));
    assert_eq!(entry(&big, 0), Some((Action::Failed, "5.3.4".into())));
    // A 554 greeting is a reason to try again (later, or from elsewhere):
    // delayed, with a 4.x.x status and the greeting quoted.
    let refused = send(&["bob@example.org"], &["554 5.7.1 go away\r\n", BYE]);
    assert!(refused.report.recipients[0].outcome.is_retry());
    assert_eq!(entry(&refused, 0), Some((Action::Delayed, "4.0.0".into())));
    // A 3yz where a completion was due (here to EHLO, which the client
    // answers with QUIT) carries no status: the reason's (4.0.0, the
    // session refused), with the reply quoted.
    let odd = run(
        config(),
        Delivery::new(envelope(&["bob@example.org"])),
        &[GREETING, "354 go\r\n", BYE],
    );
    assert!(
        matches!(
            &odd.report.recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::SessionRefused { reply: r }
            } if r.code().get() == 354
        ),
        "{:?}",
        odd.report.recipients[0].outcome
    );
    assert_eq!(entry(&odd, 0), Some((Action::Delayed, "4.0.0".into())));
    // The reason's status again where the reply's class does not go with
    // the action: a 2yz to the `*` that cancelled AUTH is a failed AUTH
    // (4.7.0), not a success.
    let cram = smtp_proto::sasl::CustomMechanism::new("CRAM-MD5").unwrap();
    let cancelled = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(smtp_proto::client::AuthCredentials::custom(cram, None)),
        &[
            GREETING,
            &ehlo("250 AUTH CRAM-MD5\r\n"),
            "334 PDE4OTY+\r\n",
            "250 2.0.0 fine\r\n",
            BYE,
        ],
    );
    assert!(
        matches!(
            &cancelled.report.recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::AuthFailed { reply: r }
            } if r.code().get() == 250
        ),
        "{:?}",
        cancelled.report.recipients[0].outcome
    );
    assert_eq!(
        entry(&cancelled, 0),
        Some((Action::Delayed, "4.7.0".into()))
    );
}

#[test]
fn report_entries_follow_notify() {
    use smtp_proto::client::Recipient as EnvelopeRecipient;
    use smtp_proto::command::Notify;
    use smtp_proto::dsn::Recipient;

    let path = |s: &str| ForwardPath::Mailbox(Mailbox::parse(s).unwrap().into_owned());
    let env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.net").unwrap().into_owned(),
    ))
    .with_recipient(EnvelopeRecipient::new(path("never@example.org")).with_notify(Notify::NEVER))
    .with_recipient(
        EnvelopeRecipient::new(path("success@example.org")).with_notify(Notify {
            success: true,
            ..Notify::NEVER
        }),
    )
    .with_recipient(EnvelopeRecipient::new(path("default@example.org")));
    let refused = "550 5.1.1 no such user\r\n";
    let dsn = ehlo("250 DSN\r\n");
    let r = run(
        config(),
        Delivery::new(env),
        &[GREETING, &dsn, OK, refused, refused, refused, BYE],
    );
    let has_entry: Vec<bool> = r
        .report
        .recipients
        .iter()
        .map(|rr| Recipient::from_report(rr).is_some())
        .collect();
    // NEVER and SUCCESS alone ask for no failure report; no NOTIFY does.
    assert_eq!(has_entry, [false, false, true]);
}

#[test]
fn a_noop_the_application_sent_first_does_not_stall_the_delivery() {
    // The application checks the connection with NOOP at Ready, and
    // hands the delivery the events from then on: the NOOP's reply (the
    // client idle again) starts the transaction.
    let mut client = Client::new(config());
    let mut delivery = Delivery::new(envelope(&["bob@example.org"]));
    let mut script = [GREETING, EHLO, OK, OK, OK, GO, QUEUED, BYE].into_iter();
    let (mut inbuf, mut wire) = (Vec::new(), Vec::new());
    let mut noop_sent = false;
    for _ in 0..1_000 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ClientEvent::Ready) if !noop_sent => {
                client.noop().unwrap();
                noop_sent = true;
            }
            Outcome::Event(event) => {
                delivery.on_event(&mut client, &event).unwrap();
                if event == ClientEvent::SendBody {
                    let mut piece = Vec::new();
                    while delivery.fill_piece(MESSAGE, 64, &mut piece) {}
                    client.send_body(&piece).unwrap();
                    client.end_body().unwrap();
                }
            }
            Outcome::NeedInput => match script.next() {
                Some(reply) => inbuf.extend_from_slice(reply.as_bytes()),
                None => break,
            },
            Outcome::Closed => break,
            _ => {}
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
    }
    let wire = String::from_utf8(wire).unwrap();
    assert!(
        wire.starts_with("EHLO client.example.net\r\nNOOP\r\nMAIL FROM:<alice@example.net>"),
        "{wire}"
    );
    assert!(wire.ends_with("QUIT\r\n"), "{wire}");
    let report = delivery.finish(None);
    assert_eq!(report.recipients[0].outcome, delivered(QUEUED));
}

// ----- AUTH with a mechanism the application runs (a SaslResponder) -----

/// RFC 2195 §2's CRAM-MD5 example: the challenge and tim's answer (the
/// HMAC-MD5 of the challenge keyed with his password, in hex).
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const CRAM_ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";
const CRAM_EHLO: &str = "250-mx.example.org\r\n250 AUTH CRAM-MD5\r\n";
const AUTH_OK: &str = "235 2.7.0 Authentication successful\r\n";
const CANCELLED: &str = "501 5.7.0 AUTH cancelled\r\n";

fn b64(raw: &[u8]) -> String {
    Base64::encode(raw).as_str().to_owned()
}

/// A `334` carrying `challenge`.
fn challenge(raw: &[u8]) -> String {
    format!("334 {}\r\n", b64(raw))
}

fn cram() -> AuthCredentials {
    AuthCredentials::custom(CustomMechanism::new("CRAM-MD5").unwrap(), None)
}

/// Every challenge a responder was asked, shared with its clones.
type Asked = Arc<Mutex<Vec<(String, Vec<u8>, usize)>>>;

/// A responder that records what it is asked and answers with `answer`.
fn recording(
    answer: impl Fn(&[u8], usize) -> SaslAnswer + Clone + Send + Sync + 'static,
) -> (impl SaslResponder + Clone + Send + Sync + 'static, Asked) {
    let asked = Asked::default();
    let log = Arc::clone(&asked);
    let responder = move |m: CustomMechanism, c: &[u8], round: usize| {
        log.lock()
            .unwrap()
            .push((m.as_str().to_owned(), c.to_vec(), round));
        answer(c, round)
    };
    (responder, asked)
}

/// Delivers to bob with CRAM-MD5 answered by `responder`.
/// A CRAM-MD5 delivery answered by `responder`: the server sends
/// [`CRAM_CHALLENGE`], then `after` (its reply to the answer and what
/// follows).
fn cram_run(responder: impl SaslResponder + Clone + Send + Sync + 'static, after: &[&str]) -> Run {
    let challenge = challenge(CRAM_CHALLENGE);
    let mut script = vec![GREETING, CRAM_EHLO, &challenge];
    script.extend_from_slice(after);
    run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(cram())
            .with_auth_responder(responder),
        &script,
    )
}

/// After an accepted AUTH: one transaction delivered, then QUIT.
const DELIVERED_AFTER_AUTH: [&str; 6] = [AUTH_OK, OK, OK, GO, QUEUED, BYE];

fn auth_failed(text: &str) -> RecipientOutcome {
    not_attempted(NotAttempted::AuthFailed { reply: reply(text) })
}

#[test]
fn a_responder_answers_the_cram_md5_challenge_and_the_message_follows() {
    let (responder, asked) = recording(|c, round| {
        if c == CRAM_CHALLENGE && round == 1 {
            SaslAnswer::respond(CRAM_ANSWER)
        } else {
            SaslAnswer::Cancel
        }
    });
    let r = cram_run(responder, &DELIVERED_AFTER_AUTH);
    assert_eq!(
        r.commands(),
        [
            "EHLO client.example.net",
            "AUTH CRAM-MD5",
            // base64 of "tim b913a602c7eda7a495b4e6e7334d3890" (RFC 2195 §2)
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [("CRAM-MD5".to_owned(), CRAM_CHALLENGE.to_vec(), 1)]
    );
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert!(r.report.all_delivered());
    assert_eq!(r.report.error, None);
    assert!(r.closed);
}

/// A SCRAM-like exchange: an initial response, two challenges answered,
/// and the server's final message answered with an empty response.
#[test]
fn a_responder_answers_every_round_of_a_longer_exchange() {
    let (responder, asked) = recording(|c, round| match (round, c) {
        (1, b"r=nonce,s=salt,i=4096") => SaslAnswer::respond(&b"c=biws,r=nonce,p=proof"[..]),
        (2, b"v=signature") => SaslAnswer::respond(Vec::new()),
        _ => SaslAnswer::Cancel,
    });
    let scram = CustomCredentials::new(CustomMechanism::new("SCRAM-SHA-256").unwrap())
        .with_initial_response(&b"n,,n=tim,r=nonce"[..]);
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(scram.into())
            .with_auth_responder(responder),
        &[
            GREETING,
            "250-mx.example.org\r\n250 AUTH SCRAM-SHA-256\r\n",
            &challenge(b"r=nonce,s=salt,i=4096"),
            &challenge(b"v=signature"),
            AUTH_OK,
            OK,
            OK,
            GO,
            QUEUED,
            BYE,
        ],
    );
    let expected = format!(
        "EHLO client.example.net\r\nAUTH SCRAM-SHA-256 {}\r\n{}\r\n\r\nMAIL FROM:<alice@example.net>\r\n",
        b64(b"n,,n=tim,r=nonce"),
        b64(b"c=biws,r=nonce,p=proof"),
    );
    assert!(r.wire.starts_with(&expected), "{}", r.wire);
    let rounds: Vec<usize> = asked.lock().unwrap().iter().map(|a| a.2).collect();
    assert_eq!(rounds, [1, 2]);
    assert!(r.report.all_delivered(), "{:?}", r.report);
}

/// A server that challenges for ever: the responder is asked up to
/// `max_auth_rounds`, then the client cancels by itself.
#[test]
fn a_responder_is_asked_no_more_than_max_auth_rounds() {
    let (responder, asked) = recording(|_, _| SaslAnswer::respond(&b"more"[..]));
    let more = challenge(b"again");
    let r = run(
        config().with_auth_without_tls(true).with_max_auth_rounds(3),
        Delivery::new(envelope(&["bob@example.org"]))
            .with_auth(cram())
            .with_auth_responder(responder),
        &[
            GREETING, CRAM_EHLO, &more, &more, &more, &more, CANCELLED, BYE,
        ],
    );
    assert_eq!(asked.lock().unwrap().len(), 3);
    assert_eq!(r.count("bW9yZQ=="), 3, "{:?}", r.commands());
    assert_eq!(r.count("*"), 1);
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(r.outcome(0), &auth_failed(CANCELLED));
    assert_eq!(r.commands().last(), Some(&"QUIT"));
}

#[test]
fn a_responder_that_cancels_ends_the_auth_and_sends_nothing() {
    let (responder, asked) = recording(|_, _| SaslAnswer::Cancel);
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org", "carol@example.org"]))
            .with_auth(cram())
            .with_auth_responder(responder),
        &[
            GREETING,
            CRAM_EHLO,
            &challenge(CRAM_CHALLENGE),
            CANCELLED,
            BYE,
        ],
    );
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert_eq!(
        r.commands(),
        ["EHLO client.example.net", "AUTH CRAM-MD5", "*", "QUIT"]
    );
    assert_eq!(r.outcome(0), &auth_failed(CANCELLED));
    assert_eq!(r.outcome(1), &auth_failed(CANCELLED));
    assert_eq!(r.report.to_retry().count(), 2);
    assert_eq!(r.report.error, None);
    assert!(r.closed);
}

/// RFC 4954 §4's 12288-octet line holds 9213 raw octets: one more cannot
/// be sent, so the exchange is cancelled, without a panic or a stall.
#[test]
fn a_response_too_long_for_the_line_cancels_the_auth() {
    let (responder, _) = recording(|_, _| SaslAnswer::respond(vec![b'x'; 9214]));
    let r = cram_run(responder, &[CANCELLED, BYE]);
    assert_eq!(
        r.commands(),
        ["EHLO client.example.net", "AUTH CRAM-MD5", "*", "QUIT"]
    );
    assert_eq!(r.outcome(0), &auth_failed(CANCELLED));
    assert!(r.closed);

    // The longest response that fits goes out.
    let (responder, _) = recording(|_, _| SaslAnswer::respond(vec![b'x'; 9213]));
    let r = cram_run(responder, &DELIVERED_AFTER_AUTH);
    let line = b64(&[b'x'; 9213]);
    // 12284 octets of base64 and CRLF; 9214 raw octets would take 12290.
    assert_eq!(line.len(), 12284);
    assert_eq!(b64(&[b'x'; 9214]).len() + 2, 12290);
    assert_eq!(r.commands()[2], line);
    assert!(r.report.all_delivered());
}

#[test]
fn a_refusal_after_the_response_is_a_failed_auth() {
    let refused = "535 5.7.8 Authentication credentials invalid\r\n";
    let (responder, asked) = recording(|_, _| SaslAnswer::respond(CRAM_ANSWER));
    let r = cram_run(responder, &[refused, BYE]);
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert_eq!(r.count("MAIL "), 0);
    assert_eq!(r.count("*"), 0);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    assert_eq!(r.outcome(0), &auth_failed(refused));
    assert!(r.closed);
}

#[test]
fn without_a_responder_a_custom_challenge_is_cancelled() {
    let r = run(
        config().with_auth_without_tls(true),
        Delivery::new(envelope(&["bob@example.org"])).with_auth(cram()),
        &[
            GREETING,
            CRAM_EHLO,
            &challenge(CRAM_CHALLENGE),
            CANCELLED,
            BYE,
        ],
    );
    assert_eq!(
        r.commands(),
        ["EHLO client.example.net", "AUTH CRAM-MD5", "*", "QUIT"]
    );
    assert_eq!(r.outcome(0), &auth_failed(CANCELLED));
}

/// A responder's state is cloned with the delivery, and `Debug` shows
/// neither the responder nor a response.
#[test]
fn a_delivery_with_a_responder_clones_and_hides_it() {
    #[derive(Clone)]
    struct Counting {
        secret: String,
        asked: usize,
    }
    impl SaslResponder for Counting {
        fn respond(&mut self, _: CustomMechanism, _: &[u8], round: usize) -> SaslAnswer {
            self.asked += 1;
            SaslAnswer::respond(format!("{} {round} {}", self.secret, self.asked))
        }
    }
    let delivery = Delivery::new(envelope(&["bob@example.org"]))
        .with_auth(cram())
        .with_auth_responder(Counting {
            secret: "hunter2".to_owned(),
            asked: 0,
        });
    let shown = format!("{delivery:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("SaslResponder(..)"), "{shown}");
    assert!(!format!("{:?}", SaslAnswer::respond(&b"hunter2"[..])).contains("hunter2"));

    fn is_send_sync<T: Send + Sync>(_: &T) {}
    is_send_sync(&delivery);

    let script = [
        GREETING,
        CRAM_EHLO,
        &challenge(b"1"),
        &challenge(b"2"),
        AUTH_OK,
        OK,
        OK,
        GO,
        QUEUED,
        BYE,
    ];
    let copy = delivery.clone();
    let a = run(config().with_auth_without_tls(true), delivery, &script);
    let b = run(config().with_auth_without_tls(true), copy, &script);
    // Each run counts from the same state: the clone did not share it.
    for r in [&a, &b] {
        assert_eq!(r.commands()[2], b64(b"hunter2 1 1"));
        assert_eq!(r.commands()[3], b64(b"hunter2 2 2"));
        assert!(r.report.all_delivered());
    }
}

/// RFC 5321 §4.5.3.1.10: the server's reply to a RCPT above the number of
/// recipients it takes in one transaction.
const TOO_MANY: &str = "452 4.5.3 too many recipients\r\n";

fn queued(id: &str) -> String {
    format!("250 2.0.0 queued as {id}\r\n")
}

#[test]
fn recipients_refused_as_too_many_go_in_the_next_transactions() {
    // A server that takes two recipients per transaction and does not say
    // so in LIMITS.
    let (a, b, c) = (queued("A"), queued("B"), queued("C"));
    let to = [
        "r1@example.org",
        "r2@example.org",
        "r3@example.org",
        "r4@example.org",
        "r5@example.org",
    ];
    let r = send(
        &to,
        &[
            GREETING, EHLO, // first transaction: r1, r2
            OK, OK, OK, TOO_MANY, TOO_MANY, TOO_MANY, GO, &a, // r3, r4
            OK, OK, OK, TOO_MANY, GO, &b, // r5
            OK, OK, GO, &c, BYE,
        ],
    );
    let mut expected = vec!["EHLO client.example.net".to_owned()];
    for batch in [&[1, 2, 3, 4, 5][..], &[3, 4, 5], &[5]] {
        expected.push("MAIL FROM:<alice@example.net>".to_owned());
        expected.extend(batch.iter().map(|i| format!("RCPT TO:<r{i}@example.org>")));
        expected.push("DATA".to_owned());
    }
    expected.push("QUIT".to_owned());
    assert_eq!(r.commands(), expected);
    assert_eq!(r.wire.matches("hello\r\n.\r\n").count(), 3);
    assert!(r.closed);
    assert_eq!(r.report.transactions, 3);
    assert_eq!(r.report.error, None);
    // One entry per recipient, in the envelope's order, each delivered
    // once, by the transaction that carried it.
    assert_eq!(names(r.report.recipients.iter()), to);
    for (i, reply) in [&a, &a, &b, &b, &c].into_iter().enumerate() {
        assert_eq!(r.outcome(i), &delivered(reply), "recipient {i}");
    }
    assert!(r.report.all_delivered());
    assert_eq!(r.report.to_retry().count(), 0);
}

#[test]
fn a_retried_recipient_goes_before_the_ones_not_tried_yet() {
    // RCPTMAX=3 splits four recipients; the server takes r1 and r3 but
    // answers "too many" to r2: the next transaction carries r2, then r4.
    let limits = ehlo("250 LIMITS RCPTMAX=3\r\n");
    let (a, b) = (queued("A"), queued("B"));
    let too_many = "452 too many recipients\r\n";
    let r = send(
        &[
            "r1@example.org",
            "r2@example.org",
            "r3@example.org",
            "r4@example.org",
        ],
        &[
            GREETING, &limits, OK, OK, too_many, OK, GO, &a, OK, OK, OK, GO, &b, BYE,
        ],
    );
    let rcpts: Vec<&str> = r
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("RCPT"))
        .collect();
    assert_eq!(
        rcpts,
        [
            "RCPT TO:<r1@example.org>",
            "RCPT TO:<r2@example.org>",
            "RCPT TO:<r3@example.org>",
            "RCPT TO:<r2@example.org>",
            "RCPT TO:<r4@example.org>",
        ]
    );
    assert_eq!(r.outcome(0), &delivered(&a));
    assert_eq!(r.outcome(1), &delivered(&b));
    assert_eq!(r.outcome(2), &delivered(&a));
    assert_eq!(r.outcome(3), &delivered(&b));
    assert_eq!(r.report.transactions, 2);
}

#[test]
fn the_current_transaction_names_the_retried_recipients() {
    let limits = ehlo("250 LIMITS RCPTMAX=3\r\n");
    let too_many = "452 too many recipients\r\n";
    let mut delivery = Delivery::new(envelope(&[
        "r1@example.org",
        "r2@example.org",
        "r3@example.org",
        "r4@example.org",
    ]));
    let mut client = Client::new(config());
    let mut inbuf =
        format!("{GREETING}{limits}{OK}{OK}{too_many}{OK}{GO}{QUEUED}{OK}{OK}").into_bytes();
    let mut batches = vec![delivery.current_transaction().to_vec()];
    for _ in 0..100 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(event) => {
                delivery.on_event(&mut client, &event).unwrap();
                if batches.last().map(Vec::as_slice) != Some(delivery.current_transaction()) {
                    batches.push(delivery.current_transaction().to_vec());
                }
                if event == ClientEvent::SendBody {
                    while let Some(piece) = delivery.next_piece(MESSAGE, 64) {
                        client.send_body(piece).unwrap();
                    }
                    client.end_body().unwrap();
                }
            }
            Outcome::Transmit => {}
            _ => break,
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut Vec::new());
    }
    assert_eq!(batches, [vec![], vec![0, 1, 2], vec![1, 3]]);
    // The events of the second transaction number r2 and r4 0 and 1.
    assert_eq!(delivery.envelope_index(0), Some(1));
    assert_eq!(delivery.envelope_index(1), Some(3));
    assert_eq!(delivery.envelope_index(2), None);
    assert_eq!(delivery.outcome(1), None);
    assert_eq!(delivery.outcome(0), Some(&delivered(QUEUED)));
}

#[test]
fn a_transaction_where_every_recipient_is_too_many_ends_the_retrying() {
    let a = queued("A");
    let r = send(
        &["r1@example.org", "r2@example.org", "r3@example.org"],
        &[
            GREETING, EHLO, OK, OK, TOO_MANY, TOO_MANY, GO, &a, // r2, r3 again
            OK, TOO_MANY, TOO_MANY, OK, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.count("DATA"), 1);
    assert_eq!(r.count("RCPT "), 5);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    assert!(r.closed);
    assert_eq!(r.outcome(0), &delivered(&a));
    assert_eq!(r.outcome(1), &temporary(Stage::Rcpt, TOO_MANY));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, TOO_MANY));
    assert_eq!(
        names(r.report.to_retry()),
        ["r2@example.org", "r3@example.org"]
    );
    assert_eq!(r.report.transactions, 2);
}

#[test]
fn a_first_transaction_where_every_recipient_is_too_many_is_not_repeated() {
    let r = send(
        &["r1@example.org", "r2@example.org"],
        &[GREETING, EHLO, OK, TOO_MANY, TOO_MANY, OK, BYE],
    );
    assert_eq!(r.count("MAIL "), 1);
    assert_eq!(r.outcome(0), &temporary(Stage::Rcpt, TOO_MANY));
    assert_eq!(r.outcome(1), &temporary(Stage::Rcpt, TOO_MANY));
}

#[test]
fn mailmax_leaves_the_recipients_refused_as_too_many_temporary_failures() {
    let limits = ehlo("250 LIMITS MAILMAX=1\r\n");
    let r = send(
        &BOB_CAROL_DAVE,
        &[
            GREETING, &limits, OK, OK, TOO_MANY, TOO_MANY, GO, QUEUED, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 1);
    assert_eq!(r.commands().last(), Some(&"QUIT"));
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    assert_eq!(r.outcome(1), &temporary(Stage::Rcpt, TOO_MANY));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, TOO_MANY));
    assert_eq!(r.report.transactions, 1);
}

#[test]
fn mailmax_stops_the_retrying_after_the_transactions_it_allows() {
    let limits = ehlo("250 LIMITS MAILMAX=2\r\n");
    let (a, b) = (queued("A"), queued("B"));
    let r = send(
        &["r1@example.org", "r2@example.org", "r3@example.org"],
        &[
            GREETING, &limits, OK, OK, TOO_MANY, TOO_MANY, GO, &a, OK, OK, TOO_MANY, GO, &b, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.outcome(0), &delivered(&a));
    assert_eq!(r.outcome(1), &delivered(&b));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, TOO_MANY));
}

#[test]
fn a_421_while_retrying_ends_the_session() {
    let closing = "421 4.3.2 shutting down\r\n";
    let r = send(
        &BOB_CAROL_DAVE,
        &[
            GREETING, EHLO, OK, OK, TOO_MANY, TOO_MANY, GO, QUEUED, OK, OK, closing,
        ],
    );
    assert!(r.closed);
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.count("QUIT"), 0);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    // Carol's RCPT was accepted again, Dave's answered with the 421.
    assert_eq!(r.outcome(1), &temporary(Stage::Data, closing));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, closing));
    assert_eq!(
        names(r.report.to_retry()),
        ["carol@example.org", "dave@example.org"]
    );
}

#[test]
fn a_552_too_many_is_retried_and_other_4yz_are_not() {
    let too_many = "552 5.5.3 too many recipients\r\n";
    let full = "452 4.2.2 mailbox full\r\n";
    let busy = "450 4.2.1 busy\r\n";
    let (a, b) = (queued("A"), queued("B"));
    let r = send(
        &[
            "r1@example.org",
            "r2@example.org",
            "r3@example.org",
            "r4@example.org",
        ],
        &[
            GREETING, EHLO, OK, OK, too_many, full, busy, GO, &a, OK, OK, GO, &b, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.count("RCPT TO:<r2@"), 2);
    assert_eq!(r.count("RCPT TO:<r3@"), 1);
    assert_eq!(r.count("RCPT TO:<r4@"), 1);
    assert_eq!(r.outcome(0), &delivered(&a));
    assert_eq!(r.outcome(1), &delivered(&b));
    assert_eq!(r.outcome(2), &temporary(Stage::Rcpt, full));
    assert_eq!(r.outcome(3), &temporary(Stage::Rcpt, busy));
}

#[test]
fn a_retried_transaction_whose_message_is_refused_decides_its_recipients() {
    let spam = "554 5.7.1 looks like spam\r\n";
    let r = send(
        &["r1@example.org", "r2@example.org"],
        &[
            GREETING, EHLO, OK, OK, TOO_MANY, GO, spam, OK, OK, GO, spam, BYE,
        ],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.outcome(0), &permanent(Stage::EndOfData, spam));
    assert_eq!(r.outcome(1), &permanent(Stage::EndOfData, spam));
}

#[test]
fn lmtp_sends_the_recipients_refused_as_too_many_in_the_next_transaction() {
    let stored = "250 2.0.0 stored\r\n";
    let full = "452 4.2.2 mailbox full\r\n";
    let r = run(
        config().with_protocol(Protocol::Lmtp),
        Delivery::new(envelope(&[
            "bob@example.org",
            "carol@example.org",
            "dave@example.org",
        ])),
        &[
            GREETING, EHLO, OK, OK, TOO_MANY, TOO_MANY, GO, stored, // carol, dave
            OK, OK, OK, GO, stored, full, BYE,
        ],
    );
    assert_eq!(r.commands()[0], "LHLO client.example.net");
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.outcome(0), &delivered(stored));
    assert_eq!(r.outcome(1), &delivered(stored));
    assert_eq!(r.outcome(2), &temporary(Stage::EndOfData, full));
}

#[test]
fn a_connection_lost_during_the_retry_leaves_the_recipient_unsent() {
    let r = send(
        &["r1@example.org", "r2@example.org"],
        &[GREETING, EHLO, OK, OK, TOO_MANY, GO, QUEUED],
    );
    assert_eq!(r.count("MAIL "), 2);
    assert_eq!(r.outcome(0), &delivered(QUEUED));
    // Its second MAIL went out unanswered.
    assert_eq!(r.outcome(1), &not_attempted(NotAttempted::ConnectionLost));
    assert!(r.report.error.is_some());
}

/// RFC 5321 §4.1.1.5: a server answers RSET with `250`. One that refuses
/// it still holds the failed transaction, and answers the MAIL after it
/// `503` (nested MAIL): that is no refusal of the sender, and the
/// recipient is not bounced for it (nor the sender's MAIL kept from the
/// rest of the session). The refusal ends the run: the recipient it cut
/// off is to be sent again, the one refused before keeps its refusal.
#[test]
fn a_refused_rset_is_not_taken_for_a_refused_sender() {
    let no_user = "550 5.1.1 no such user\r\n";
    let r = send(
        &["bob@example.org", "carol@example.org"],
        &[
            GREETING,
            RCPTMAX_1,
            OK,
            no_user,
            "502 5.5.1 RSET not implemented\r\n",
            "503 5.5.1 nested MAIL command\r\n",
        ],
    );
    assert_eq!(
        r.commands(),
        [
            "EHLO client.example.net",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@example.org>",
            "RSET",
        ]
    );
    assert_eq!(r.outcome(0), &permanent(Stage::Rcpt, no_user));
    assert_eq!(r.outcome(1), &not_attempted(NotAttempted::ConnectionLost));
    assert_eq!(r.report.permanent_failures().count(), 1);
    assert!(r.report.error.as_deref().unwrap().contains("502"));
}

/// The server's words in an error message cannot drive the terminal it is
/// printed on: control characters in a reply (the decoder lets ESC, BEL
/// and the C1 codes through) are written as escapes, the tab as it is.
#[test]
fn control_characters_in_replies_are_escaped_in_error_messages() {
    let hostile = "550 5.7.1 no\u{1b}]0;owned\u{7}\u{1b}[2J\tmore\u{9b}x\r\n";
    let reason = NotAttempted::SenderRefused {
        reply: reply(hostile),
    };
    let shown = reason.to_string();
    assert_eq!(
        shown,
        "the server refused the sender: 550 5.7.1 no\\u{1b}]0;owned\\u{7}\\u{1b}[2J\tmore\\u{9b}x"
    );
    let error = smtp_proto::client::ClientError::UnexpectedReply(reply(hostile));
    let shown = error.to_string();
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\t'),
        "{shown:?}"
    );
    assert!(
        shown.ends_with("no\\u{1b}]0;owned\\u{7}\\u{1b}[2J\tmore\\u{9b}x"),
        "{shown:?}"
    );
}
