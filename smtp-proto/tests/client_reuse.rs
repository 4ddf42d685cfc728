//! Several messages over one session: [`Delivery::keep_open`] ends a
//! delivery without QUIT, and [`Delivery::start`] starts the next one on
//! the idle client (RFC 5321 §3.3: any number of transactions in one
//! session).
//!
//! The servers advertise no PIPELINING: the client sends one command and
//! waits for its reply, and the script gives one reply per read, in order.

mod delivery_support;

use delivery_support::{config, envelope, reply};

use std::collections::VecDeque;

use smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientEvent, Delivery, DeliveryReport, FailedAuth,
    NotAttempted, Outcome, RecipientOutcome, Stage, UsageError,
};
use smtp_proto::command::{Mailbox, ReversePath};

const GREETING: &str = "220 mx.example.org ESMTP\r\n";
const EHLO: &str = "250 mx.example.org\r\n";
const OK: &str = "250 2.0.0 Ok\r\n";
const GO: &str = "354 go ahead\r\n";
const BYE: &str = "221 2.0.0 bye\r\n";
const CLOSING: &str = "421 4.3.2 shutting down\r\n";

fn queued(id: &str) -> String {
    format!("250 2.0.0 queued as {id}\r\n")
}

/// One session: the client machine, the server's replies still to come
/// (one per read), and the bytes the client sent.
struct Session {
    client: Client,
    script: VecDeque<String>,
    inbuf: Vec<u8>,
    wire: Vec<u8>,
}

/// What one delivery gave: its report, whether it said it was finished,
/// and the client's command lines while it ran (message lines left out).
struct Sent {
    report: DeliveryReport,
    finished: bool,
    commands: Vec<String>,
    /// Everything the client sent while it ran.
    wire: String,
    /// [`Delivery::session_end`] when it ended.
    session_end: Option<NotAttempted>,
    /// [`Delivery::stopped_by`] when it ended.
    stopped_by: Option<NotAttempted>,
}

impl Session {
    fn new<S: AsRef<str>>(config: ClientConfig, script: &[S]) -> Self {
        Self {
            client: Client::new(config),
            script: script.iter().map(|s| s.as_ref().to_owned()).collect(),
            inbuf: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Hands the machine's events to `delivery` until the machine waits
    /// for a call (idle), closes, or needs input: then the next reply of
    /// the script is read when `read` is set, and the run stops
    /// otherwise. Returns the error that ended the run, if any.
    fn pump(&mut self, delivery: &mut Delivery, read: bool, message: &[u8]) -> Option<String> {
        for _ in 0..10_000 {
            let step = match self.client.handle_input(&self.inbuf) {
                Ok(step) => step,
                Err(e) => return Some(e.to_string()),
            };
            let consumed = step.consumed;
            let mut stop = false;
            match step.outcome {
                Outcome::Event(event) => {
                    delivery
                        .on_event(&mut self.client, &event)
                        .expect("delivery");
                    if event == ClientEvent::SendBody {
                        while let Some(piece) = delivery.next_piece(message, 8) {
                            self.client.send_body(piece).unwrap();
                        }
                        self.client.end_body().unwrap();
                    }
                }
                Outcome::NeedInput if read => match self.script.pop_front() {
                    Some(reply) => self.inbuf.extend_from_slice(reply.as_bytes()),
                    None => {
                        self.inbuf.drain(..consumed);
                        return Some("connection lost".to_owned());
                    }
                },
                Outcome::Transmit => {}
                _ => stop = true,
            }
            self.inbuf.drain(..consumed);
            self.client.poll_transmit(&mut self.wire);
            if stop {
                return None;
            }
        }
        panic!("the run does not end");
    }

    /// Runs `delivery` of `message`: on a new session from the greeting,
    /// or (`start`) on the idle session, first with the replies that
    /// arrived while it was idle, then from [`Delivery::start`].
    fn deliver(&mut self, mut delivery: Delivery, start: bool, message: &[u8]) -> Sent {
        self.wire.clear();
        let mut error = None;
        if start {
            error = self.pump(&mut delivery, false, message);
            if error.is_none() && !delivery.is_finished() {
                delivery.start(&mut self.client).expect("start");
                self.client.poll_transmit(&mut self.wire);
            }
        }
        if error.is_none() {
            error = self.pump(&mut delivery, true, message);
        }
        let finished = delivery.is_finished();
        let session_end = delivery.session_end(&self.client);
        let stopped_by = delivery.stopped_by().cloned();
        let wire = String::from_utf8(std::mem::take(&mut self.wire)).unwrap();
        let mut commands = Vec::new();
        let mut in_body = false;
        for line in wire.split("\r\n").filter(|l| !l.is_empty()) {
            if in_body {
                in_body = line != ".";
                continue;
            }
            commands.push(line.to_owned());
            in_body = line == "DATA";
        }
        Sent {
            report: delivery.finish(error),
            finished,
            commands,
            wire,
            session_end,
            stopped_by,
        }
    }
}

fn delivered(text: &str) -> RecipientOutcome {
    RecipientOutcome::Delivered { reply: reply(text) }
}

/// The server's `421` as the reason a session ended.
fn reason_421() -> NotAttempted {
    NotAttempted::ServiceClosing {
        reply: reply(CLOSING),
    }
}

fn not_attempted(reason: NotAttempted) -> RecipientOutcome {
    RecipientOutcome::NotAttempted { reason }
}

/// The replies to one transaction for one recipient, without PIPELINING.
fn transaction(id: &str) -> [String; 4] {
    [OK.into(), OK.into(), GO.into(), queued(id)]
}

/// A server's replies: the greeting, `ehlo`, then one [`transaction`]
/// for each of `ids`.
fn script(ehlo: &str, ids: &[&str]) -> Vec<String> {
    let mut script = vec![GREETING.to_owned(), ehlo.to_owned()];
    for id in ids {
        script.extend(transaction(id));
    }
    script
}

/// A delivery to `to` that leaves the session open.
fn kept_open(to: &[&str]) -> Delivery {
    Delivery::new(envelope(to)).keep_open()
}

#[test]
fn a_kept_open_delivery_ends_without_quit_and_leaves_the_client_idle() {
    let mut s = Session::new(config(), &script(EHLO, &["A"]));
    let sent = s.deliver(kept_open(&["bob@example.org"]), false, b"one\r\n");
    assert!(sent.finished);
    assert_eq!(
        sent.commands,
        [
            "EHLO client.example.net",
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<bob@example.org>",
            "DATA",
        ]
    );
    assert_eq!(sent.report.recipients[0].outcome, delivered(&queued("A")));
    assert_eq!(sent.report.error, None);
    assert!(s.client.is_idle());
    assert!(!s.client.is_closed());
    assert_eq!(sent.session_end, None);
    assert!(s.script.is_empty());
}

#[test]
fn the_next_deliveries_start_on_the_idle_client_and_the_last_one_quits() {
    let mut script = script(EHLO, &["A", "B", "C"]);
    script.push(BYE.to_owned());
    let mut s = Session::new(config(), &script);
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"one\r\n");
    let second = s.deliver(kept_open(&["carol@example.org"]), true, b"two\r\n");
    assert!(second.finished);
    assert_eq!(
        second.commands,
        [
            "MAIL FROM:<alice@example.net>",
            "RCPT TO:<carol@example.org>",
            "DATA",
        ]
    );
    assert_eq!(second.report.recipients[0].outcome, delivered(&queued("B")));
    assert_eq!(second.report.transactions, 1);
    assert!(s.client.is_idle());
    // A delivery that is not kept open ends the session.
    let third = s.deliver(
        Delivery::new(envelope(&["dave@example.org"])),
        true,
        b"3\r\n",
    );
    assert_eq!(third.commands.last().map(String::as_str), Some("QUIT"));
    assert_eq!(third.report.recipients[0].outcome, delivered(&queued("C")));
    assert!(s.client.is_closed());
    // Ended by QUIT: a message for this session now has no session.
    assert_eq!(third.session_end, Some(NotAttempted::SessionClosed));
    assert!(first.report.all_delivered());
    assert_eq!(third.report.error, None);
}

#[test]
fn the_message_of_each_delivery_goes_out_whole() {
    let mut s = Session::new(config(), &script(EHLO, &["A", "B"]));
    let env = || kept_open(&["bob@example.org"]);
    let first = s.deliver(env(), false, b"Subject: one\r\n\r\nfirst body\r\n");
    let second = s.deliver(env(), true, b"Subject: two\r\n\r\nsecond body\r\n");
    assert!(
        first
            .wire
            .ends_with("DATA\r\nSubject: one\r\n\r\nfirst body\r\n.\r\n"),
        "{:?}",
        first.wire
    );
    assert_eq!(
        second.wire,
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
         DATA\r\nSubject: two\r\n\r\nsecond body\r\n.\r\n"
    );
}

#[test]
fn a_421_between_deliveries_leaves_the_next_one_not_attempted() {
    let mut s = Session::new(config(), &script(EHLO, &["A"]));
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"one\r\n");
    assert!(first.report.all_delivered());
    // The server gives up on the idle session.
    s.inbuf.extend_from_slice(CLOSING.as_bytes());
    let second = s.deliver(
        kept_open(&["carol@example.org", "dave@example.org"]),
        true,
        b"two\r\n",
    );
    assert!(second.finished);
    assert!(second.commands.is_empty(), "{:?}", second.commands);
    let reason = not_attempted(reason_421());
    assert_eq!(second.report.recipients[0].outcome, reason);
    assert_eq!(second.report.recipients[1].outcome, reason);
    assert_eq!(second.report.transactions, 0);
    assert_eq!(second.report.to_retry().count(), 2);
    assert!(s.client.is_closed());
    assert_eq!(second.session_end, Some(reason_421()));
    // And a delivery started on the closed client after that sends
    // nothing either.
    let third = s.deliver(kept_open(&["erin@example.org"]), true, b"3\r\n");
    assert!(third.finished);
    assert!(third.commands.is_empty());
    assert_eq!(
        third.report.recipients[0].outcome,
        not_attempted(NotAttempted::SessionClosed)
    );
    assert!(third.report.recipients[0].outcome.is_retry());
    // Its bounce entry, if the sender gives up: delayed, 4.4.2 (bad
    // connection), as for a connection lost before the message.
    let entry = smtp_proto::dsn::Recipient::from_report(&third.report.recipients[0])
        .map(|e| (e.action(), e.status().to_string()));
    assert_eq!(
        entry,
        Some((smtp_proto::dsn::Action::Delayed, "4.4.2".into()))
    );
}

#[test]
fn a_421_that_ends_a_kept_open_delivery_closes_the_session() {
    let script = [GREETING, EHLO, OK, OK, GO, CLOSING];
    let mut s = Session::new(config(), &script);
    let sent = s.deliver(kept_open(&["bob@example.org"]), false, b"one\r\n");
    assert!(sent.finished);
    assert_eq!(
        sent.report.recipients[0].outcome,
        RecipientOutcome::TemporaryFailure {
            stage: Stage::EndOfData,
            reply: reply(CLOSING),
        }
    );
    assert!(s.client.is_closed());
    // The 421 is why the session ended, though every recipient of the
    // delivery had a transaction (no recipient was left not attempted).
    assert_eq!(sent.session_end, Some(reason_421()));
}

#[test]
fn the_session_authenticates_once_for_all_deliveries() {
    let auth = "250-mx.example.org\r\n250 AUTH PLAIN\r\n";
    let mut script = vec![
        GREETING.to_owned(),
        auth.to_owned(),
        "235 2.7.0 ok\r\n".to_owned(),
    ];
    script.extend(transaction("A"));
    script.extend(transaction("B"));
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    let with_auth = |to: &str| {
        Delivery::new(envelope(&[to]))
            .with_auth(AuthCredentials::password("alice", "secret"))
            .keep_open()
    };
    let first = s.deliver(with_auth("bob@example.org"), false, b"one\r\n");
    assert!(
        first.commands[1].starts_with("AUTH PLAIN "),
        "{:?}",
        first.commands
    );
    assert!(s.client.is_authenticated());
    let second = s.deliver(with_auth("carol@example.org"), true, b"two\r\n");
    assert_eq!(second.commands[0], "MAIL FROM:<alice@example.net>");
    assert!(!second.commands.iter().any(|c| c.starts_with("AUTH")));
    assert!(first.report.all_delivered() && second.report.all_delivered());
}

#[test]
fn a_failed_auth_kept_open_sends_no_quit() {
    let failed = "535 5.7.8 authentication failed\r\n";
    let script = [GREETING, "250-mx.example.org\r\n250 AUTH PLAIN\r\n", failed];
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    let d = Delivery::new(envelope(&["bob@example.org"]))
        .with_auth(AuthCredentials::password("alice", "wrong"))
        .keep_open();
    let sent = s.deliver(d, false, b"one\r\n");
    assert!(sent.finished);
    assert!(
        !sent.commands.iter().any(|c| c == "QUIT"),
        "{:?}",
        sent.commands
    );
    let reason = NotAttempted::AuthFailed {
        reply: reply(failed),
    };
    assert_eq!(sent.report.recipients[0].outcome, not_attempted(reason));
    assert!(s.client.is_idle());
}

#[test]
fn mailmax_counts_the_transactions_of_the_whole_session() {
    let limits = "250-mx.example.org\r\n250 LIMITS MAILMAX=2\r\n";
    let mut s = Session::new(config(), &script(limits, &["A", "B"]));
    let d = |to: &str| kept_open(&[to]);
    assert!(s
        .deliver(d("bob@example.org"), false, b"1\r\n")
        .report
        .all_delivered());
    assert!(s
        .deliver(d("carol@example.org"), true, b"2\r\n")
        .report
        .all_delivered());
    let mut third = d("dave@example.org");
    third.start(&mut s.client).unwrap();
    assert!(third.is_finished());
    assert_eq!(
        third.stopped_by(),
        Some(&NotAttempted::TransactionLimit { limit: 2 })
    );
    assert!(!s.client.has_transmit(), "nothing is sent, not even QUIT");
    let report = third.finish(None);
    assert_eq!(
        report.recipients[0].outcome,
        not_attempted(NotAttempted::TransactionLimit { limit: 2 })
    );
    assert!(s.client.is_idle());
}

#[test]
fn a_noop_on_the_idle_session_starts_the_next_delivery() {
    let mut script = script(EHLO, &["A"]);
    script.push(OK.to_owned());
    script.extend(transaction("B"));
    let mut s = Session::new(config(), &script);
    let d = |to: &str| kept_open(&[to]);
    s.deliver(d("bob@example.org"), false, b"1\r\n");
    s.client.noop().unwrap();
    let second = s.deliver(d("carol@example.org"), false, b"2\r\n");
    assert_eq!(second.commands[0], "NOOP");
    assert_eq!(second.commands[1], "MAIL FROM:<alice@example.net>");
    assert!(second.report.all_delivered());
}

#[test]
fn start_on_a_busy_client_is_refused() {
    let mut s = Session::new(config(), &[GREETING, EHLO]);
    let mut first = kept_open(&["bob@example.org"]);
    s.pump(&mut first, true, b"");
    // The first delivery's MAIL waits for its reply.
    assert!(!s.client.is_idle());
    let mut second = kept_open(&["carol@example.org"]);
    assert!(second.start(&mut s.client).is_err());
    assert!(!second.is_finished());
}

#[test]
fn a_start_refused_on_a_busy_client_keeps_the_credentials_for_the_next_one() {
    // The application checks the kept connection with NOOP, and starts the
    // delivery before its reply came: refused, nothing sent. Started again
    // once the client is idle, the delivery still authenticates first: its
    // MAIL does not go out without the authentication asked for.
    let mut script = vec![GREETING.to_owned(), AUTH_PLAIN.to_owned(), OK.to_owned()];
    script.push("235 2.7.0 ok\r\n".to_owned());
    script.extend(transaction("A"));
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    let mut idle = kept_open(&[]);
    s.pump(&mut idle, true, b"");
    assert!(s.client.is_idle());
    s.client.noop().unwrap();
    let mut d = with_password(&["bob@example.org"], "secret");
    assert_eq!(
        d.start(&mut s.client).unwrap_err().to_string(),
        smtp_proto::client::ClientError::from(UsageError::NotIdle).to_string()
    );
    assert!(!d.is_finished());
    s.client.poll_transmit(&mut s.wire);
    // The NOOP's reply: the client is idle again.
    s.pump(&mut idle, true, b"");
    assert!(s.client.is_idle());
    let sent = s.deliver(d, true, b"one\r\n");
    assert!(
        sent.commands[0].starts_with("AUTH PLAIN "),
        "{:?}",
        sent.commands
    );
    assert_eq!(sent.commands[1], "MAIL FROM:<alice@example.net>");
    assert!(s.client.is_authenticated());
    assert!(sent.report.all_delivered());
}

#[test]
fn abandon_reports_every_recipient_not_attempted() {
    let reason = NotAttempted::ServiceClosing {
        reply: reply(CLOSING),
    };
    let report =
        Delivery::new(envelope(&["bob@example.org", "carol@example.org"])).abandon(reason.clone());
    assert_eq!(report.transactions, 0);
    for r in &report.recipients {
        assert_eq!(r.outcome, not_attempted(reason.clone()));
    }
    let d: Delivery = envelope(&["bob@example.org"]).into();
    assert_eq!(d.envelope().recipients.len(), 1);
    assert!(!d.is_finished());
    assert_eq!(d.stopped_by(), None);
}

#[test]
fn a_421_after_the_last_transaction_is_why_the_delivery_stopped() {
    // The 421 comes in the same read as the reply to the message.
    let last = format!("{}{CLOSING}", queued("A"));
    let script = [GREETING, EHLO, OK, OK, GO, &last];
    let mut s = Session::new(config(), &script);
    let delivery = kept_open(&["bob@example.org"]);
    assert_eq!(delivery.stopped_by(), None);
    let sent = s.deliver(delivery, false, b"one\r\n");
    // Every recipient had its transaction, and the message reached it.
    assert_eq!(sent.report.recipients[0].outcome, delivered(&queued("A")));
    assert!(sent.finished);
    assert!(s.client.is_closed());
    assert_eq!(sent.stopped_by, Some(reason_421()));
    assert_eq!(sent.session_end, Some(reason_421()));
    // Started on the closed session, even without recipients.
    let mut delivery = kept_open(&[]);
    delivery.start(&mut s.client).expect("start");
    assert_eq!(delivery.stopped_by(), Some(&NotAttempted::SessionClosed));
    assert!(delivery.is_finished());
}

const AUTH_PLAIN: &str = "250-mx.example.org\r\n250 AUTH PLAIN\r\n";
const AUTH_REFUSED: &str = "535 5.7.8 authentication failed\r\n";
const AUTH_REQUIRED: &str = "530 5.7.0 authentication required\r\n";

/// A kept-open delivery to `to` authenticating with `password`.
fn with_password(to: &[&str], password: &str) -> Delivery {
    kept_open(to).with_auth(AuthCredentials::password("alice", password))
}

#[test]
fn after_a_refused_auth_a_delivery_without_credentials_sends_nothing() {
    // What `Connection::authenticate` and then `send` do: a delivery
    // without recipients that only authenticates, then the messages.
    let mut script = vec![GREETING.to_owned(), AUTH_PLAIN.to_owned()];
    script.push(AUTH_REFUSED.to_owned());
    // Were MAIL sent without AUTH, a submission server would refuse it.
    script.push(AUTH_REQUIRED.to_owned());
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    let login = s.deliver(with_password(&[], "wrong"), false, b"");
    assert!(login.commands[1].starts_with("AUTH PLAIN "));
    assert_eq!(
        login.stopped_by,
        Some(NotAttempted::AuthFailed {
            reply: reply(AUTH_REFUSED)
        })
    );
    assert!(!s.client.is_authenticated());

    let sent = s.deliver(
        kept_open(&["bob@example.org", "carol@example.org"]),
        true,
        b"one\r\n",
    );
    assert!(sent.finished);
    assert!(sent.commands.is_empty(), "{:?}", sent.commands);
    let reason = NotAttempted::AuthFailed {
        reply: reply(AUTH_REFUSED),
    };
    for r in &sent.report.recipients {
        assert_eq!(r.outcome, not_attempted(reason.clone()));
        // Not a bounce: the recipients are not at fault.
        assert!(r.outcome.is_retry() && !r.outcome.is_permanent_failure());
    }
    assert_eq!(sent.report.transactions, 0);
    assert_eq!(sent.stopped_by, Some(reason));
    assert!(s.client.is_idle());
    assert_eq!(s.script.len(), 1, "the 530 was never asked for");
}

#[test]
fn a_later_successful_auth_lets_the_deliveries_through_again() {
    let mut script = vec![
        GREETING.to_owned(),
        AUTH_PLAIN.to_owned(),
        AUTH_REFUSED.to_owned(),
        "235 2.7.0 ok\r\n".to_owned(),
    ];
    script.extend(transaction("A"));
    script.extend(transaction("B"));
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    // The refused password: this delivery's recipient is not attempted.
    let first = s.deliver(
        with_password(&["bob@example.org"], "wrong"),
        false,
        b"1\r\n",
    );
    assert!(matches!(
        first.report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::AuthFailed { .. }
        }
    ));
    // Other credentials of a delivery of its own are tried.
    let second = s.deliver(
        with_password(&["carol@example.org"], "secret"),
        true,
        b"2\r\n",
    );
    assert!(second.commands[0].starts_with("AUTH PLAIN "));
    assert_eq!(second.commands[1], "MAIL FROM:<alice@example.net>");
    assert_eq!(second.report.recipients[0].outcome, delivered(&queued("A")));
    assert!(s.client.is_authenticated());
    assert_eq!(s.client.failed_auth(), None);
    // And the session carries messages without credentials again.
    let third = s.deliver(kept_open(&["dave@example.org"]), true, b"3\r\n");
    assert_eq!(third.commands[0], "MAIL FROM:<alice@example.net>");
    assert_eq!(third.report.recipients[0].outcome, delivered(&queued("B")));
}

#[test]
fn after_an_auth_that_could_not_start_a_delivery_without_credentials_sends_nothing() {
    // No TLS and AUTH not allowed without it: the first delivery's AUTH
    // cannot start.
    let mut s = Session::new(config(), &[GREETING, AUTH_PLAIN, AUTH_REQUIRED]);
    let first = s.deliver(
        with_password(&["bob@example.org"], "secret"),
        false,
        b"1\r\n",
    );
    let reason = NotAttempted::AuthUnavailable(UsageError::AuthNeedsTls);
    assert_eq!(
        first.report.recipients[0].outcome,
        not_attempted(reason.clone())
    );
    assert_eq!(
        s.client.failed_auth(),
        Some(&FailedAuth::Unavailable(UsageError::AuthNeedsTls))
    );
    let second = s.deliver(kept_open(&["carol@example.org"]), true, b"2\r\n");
    assert!(second.commands.is_empty(), "{:?}", second.commands);
    assert_eq!(second.report.recipients[0].outcome, not_attempted(reason));
}

#[test]
fn a_session_never_asked_to_authenticate_sends_mail_without_auth() {
    let mut s = Session::new(
        config().with_auth_without_tls(true),
        &script(AUTH_PLAIN, &["A", "B"]),
    );
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"1\r\n");
    let second = s.deliver(kept_open(&["carol@example.org"]), true, b"2\r\n");
    assert!(first.report.all_delivered() && second.report.all_delivered());
    assert!(!first.commands.iter().any(|c| c.starts_with("AUTH")));
    assert_eq!(s.client.failed_auth(), None);
}

const SENDER_REFUSED: &str = "550 5.7.1 sender not allowed\r\n";

/// A delivery from `from` to `to`, kept open.
fn from(from: &str, to: &str) -> Delivery {
    let mut env = envelope(&[to]);
    env.sender = ReversePath::Mailbox(Mailbox::parse(from).unwrap().into_owned());
    Delivery::new(env).keep_open()
}

#[test]
fn a_mail_refused_with_a_5yz_is_not_repeated_by_the_next_delivery() {
    let ehlo = "250-mx.example.org\r\n250 SIZE 1000000\r\n";
    let mut script = vec![GREETING.to_owned(), ehlo.to_owned(), SENDER_REFUSED.into()];
    script.extend(transaction("A"));
    script.extend(transaction("B"));
    let mut s = Session::new(config(), &script);
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"1\r\n");
    let refused = RecipientOutcome::PermanentFailure {
        stage: Stage::Mail,
        reply: reply(SENDER_REFUSED),
    };
    assert_eq!(first.report.recipients[0].outcome, refused);
    assert_eq!(first.commands[1], "MAIL FROM:<alice@example.net>");

    // The same MAIL, for other recipients: not sent.
    let second = s.deliver(
        kept_open(&["carol@example.org", "dave@example.org"]),
        true,
        b"2\r\n",
    );
    assert!(second.finished);
    assert!(second.commands.is_empty(), "{:?}", second.commands);
    let reason = NotAttempted::SenderRefused {
        reply: reply(SENDER_REFUSED),
    };
    for r in &second.report.recipients {
        assert_eq!(r.outcome, not_attempted(reason.clone()));
        assert!(r.outcome.is_permanent_failure());
    }
    assert_eq!(second.report.transactions, 0);
    assert_eq!(second.stopped_by, Some(reason));
    assert!(s.client.is_idle());

    // Another sender is tried.
    let third = s.deliver(from("bob@example.net", "carol@example.org"), true, b"3\r\n");
    assert_eq!(third.commands[0], "MAIL FROM:<bob@example.net>");
    assert_eq!(third.report.recipients[0].outcome, delivered(&queued("A")));
    // So is the same sender with other parameters.
    let sized = Delivery::new(envelope(&["carol@example.org"]).with_size(4)).keep_open();
    let fourth = s.deliver(sized, true, b"4\r\n");
    assert_eq!(fourth.commands[0], "MAIL FROM:<alice@example.net> SIZE=4");
    assert_eq!(fourth.report.recipients[0].outcome, delivered(&queued("B")));
    // And the refusal is still remembered.
    let mut fifth = kept_open(&["erin@example.org"]);
    fifth.start(&mut s.client).unwrap();
    assert!(fifth.is_finished());
    assert!(!s.client.has_transmit());
}

#[test]
fn a_mail_refused_with_a_4yz_is_tried_again() {
    let busy = "451 4.3.0 try later\r\n";
    let mut script = vec![GREETING.to_owned(), EHLO.to_owned(), busy.to_owned()];
    script.extend(transaction("A"));
    let mut s = Session::new(config(), &script);
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"1\r\n");
    assert!(first.report.recipients[0].outcome.is_retry());
    let second = s.deliver(kept_open(&["bob@example.org"]), true, b"1\r\n");
    assert_eq!(second.commands[0], "MAIL FROM:<alice@example.net>");
    assert!(second.report.all_delivered());
}

#[test]
fn a_successful_auth_forgets_the_refused_mail() {
    let mut script = vec![
        GREETING.to_owned(),
        AUTH_PLAIN.to_owned(),
        AUTH_REQUIRED.to_owned(),
        "235 2.7.0 ok\r\n".to_owned(),
    ];
    script.extend(transaction("A"));
    let mut s = Session::new(config().with_auth_without_tls(true), &script);
    let first = s.deliver(kept_open(&["bob@example.org"]), false, b"1\r\n");
    assert!(first.report.recipients[0].outcome.is_permanent_failure());
    assert!(s
        .client
        .mail_refusal(&envelope(&["x@example.org"]))
        .is_some());
    // RFC 4954 §6: the 530 asked for AUTH; once it succeeded, the same
    // MAIL is another request.
    let second = s.deliver(
        with_password(&["bob@example.org"], "secret"),
        true,
        b"1\r\n",
    );
    assert_eq!(second.commands[1], "MAIL FROM:<alice@example.net>");
    assert!(second.report.all_delivered());
    assert!(s
        .client
        .mail_refusal(&envelope(&["x@example.org"]))
        .is_none());
}

#[test]
fn the_session_remembers_a_bounded_number_of_refused_mails() {
    let senders: Vec<String> = (0..9).map(|i| format!("s{i}@example.net")).collect();
    let mut script = vec![GREETING.to_owned(), EHLO.to_owned()];
    script.extend(senders.iter().map(|_| SENDER_REFUSED.to_owned()));
    script.push(SENDER_REFUSED.to_owned());
    let mut s = Session::new(config(), &script);
    for (i, sender) in senders.iter().enumerate() {
        let sent = s.deliver(from(sender, "bob@example.org"), i > 0, b"1\r\n");
        assert_eq!(sent.report.transactions, 1, "{sender}");
    }
    // The oldest refusal was forgotten: its MAIL goes out again; the
    // others do not.
    let again = s.deliver(from(&senders[0], "bob@example.org"), true, b"1\r\n");
    assert_eq!(again.commands, [format!("MAIL FROM:<{}>", senders[0])]);
    let not_again = s.deliver(from(&senders[8], "bob@example.org"), true, b"1\r\n");
    assert!(not_again.commands.is_empty());
    assert!(s.script.is_empty());
}
