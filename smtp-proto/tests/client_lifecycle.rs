//! The client machine as an application sees it across a connection: a
//! `421` wherever it comes (RFC 5321 §3.8), several messages over one
//! session, calls made while replies are still due, and unexpected reply
//! codes (RFC 5321 §4.2, §4.3), and replies that come before the command
//! they would answer was handed out. Each test drives the machine by hand
//! against scripted replies, each read given once the commands it answers
//! were written; a `421`, which may come unasked, can arrive in the same
//! read as the reply before it, before the client has written what it
//! queued.

use smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientError, ClientEvent, Envelope, Outcome, Protocol,
    TlsPolicy, TransactionSummary, UsageError, Verdict,
};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::Extension;

const GREET: &str = "220 mx.example.org ESMTP\r\n";

fn config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.net").unwrap()).with_tls(TlsPolicy::Off)
}

fn envelope(to: &[&str]) -> Envelope<'static> {
    let mut env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.net").unwrap(),
    ));
    for t in to {
        env = env.recipient(ForwardPath::Mailbox(
            Mailbox::parse(t).unwrap().into_owned(),
        ));
    }
    env
}

/// What one `feed` saw: the events (as Debug text), the transaction
/// summaries they carried, and how the feed stopped.
#[derive(Debug, Default)]
struct Fed {
    events: Vec<String>,
    summaries: Vec<TransactionSummary>,
    last: Option<Outcome<()>>,
}

/// Feeds `input` (one read) to the client until it needs more input,
/// pauses or closes, without writing anything: what the client queued
/// stays queued, as in a driver that hands the events of one read to the
/// application before it writes. The read must hold only replies to
/// commands handed out before it (or a 421).
fn feed(c: &mut Client, input: &[u8]) -> Fed {
    let mut fed = Fed::default();
    let mut buf = input;
    for _ in 0..1000 {
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        match step.outcome {
            Outcome::Event(ev) => {
                if let ClientEvent::TransactionEnd(s)
                | ClientEvent::ServiceClosing {
                    transaction: Some(s),
                    ..
                } = &ev
                {
                    fed.summaries.push(s.clone());
                }
                fed.events.push(format!("{ev:?}"));
            }
            Outcome::NeedInput => {
                fed.last = Some(Outcome::NeedInput);
                break;
            }
            Outcome::Paused => {
                fed.last = Some(Outcome::Paused);
                break;
            }
            Outcome::Closed => {
                fed.last = Some(Outcome::Closed);
                break;
            }
            _ => {}
        }
    }
    assert!(buf.is_empty() || c.is_closed(), "input left: {buf:?}");
    fed
}

fn take(c: &mut Client) -> String {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    String::from_utf8(out).unwrap()
}

/// A client that has read the greeting and this EHLO reply, its EHLO
/// written.
fn ready(cfg: ClientConfig, ehlo: &str) -> Client {
    let mut c = Client::new(cfg);
    let fed = feed(&mut c, GREET.as_bytes());
    assert!(fed.events[0].starts_with("Greeting"), "{fed:?}");
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
    let fed = feed(&mut c, ehlo.as_bytes());
    assert!(fed.events.iter().any(|e| e == "Ready"), "{fed:?}");
    assert!(c.is_idle());
    c
}

fn closing(fed: &Fed) -> bool {
    fed.events
        .last()
        .is_some_and(|e| e.starts_with("ServiceClosing"))
}

// ----- 421: nothing more is sent -----

/// RFC 5321 §3.8: after a `421` the client sends nothing more. A LOGIN
/// challenge and the `421` that follows it in the same read must not leave
/// the user name queued for the driver to write after the `421`.
#[test]
fn a_421_during_auth_drops_the_queued_response() {
    let mut c = ready(
        config().with_auth_without_tls(true),
        "250-mx.example.org\r\n250 AUTH LOGIN\r\n",
    );
    c.authenticate(AuthCredentials::password("alice", "s3cret"), None)
        .unwrap();
    assert_eq!(take(&mut c), "AUTH LOGIN\r\n");
    let fed = feed(&mut c, b"334 VXNlcm5hbWU6\r\n421 4.3.2 shutting down\r\n");
    assert!(closing(&fed), "{fed:?}");
    assert!(c.is_closed());
    assert!(!c.is_authenticated());
    assert_eq!(take(&mut c), "", "nothing may follow the 421");
}

/// The same for the HELO fallback queued on a `502` to EHLO, when a `421`
/// follows it in the same read (right after the greeting).
#[test]
fn a_421_after_the_ehlo_refusal_drops_the_queued_helo() {
    let mut c = Client::new(config());
    let fed = feed(&mut c, GREET.as_bytes());
    assert!(fed.events[0].starts_with("Greeting"));
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
    let fed = feed(&mut c, b"502 5.5.1 no EHLO\r\n421 4.3.2 going down\r\n");
    assert!(closing(&fed), "{fed:?}");
    assert_eq!(take(&mut c), "");
}

/// The application starts a message while the server's `421` already waits
/// in the read buffer: the `421` ends the session, every recipient is to
/// be retried later, and the pipelined MAIL / RCPT / DATA the call queued
/// is never written.
#[test]
fn a_421_waiting_when_a_message_starts_drops_the_message() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
        .unwrap();
    let fed = feed(&mut c, b"421 4.4.2 idle too long\r\n");
    assert!(closing(&fed), "{fed:?}");
    assert_eq!(take(&mut c), "");
    let sum = &fed.summaries[0];
    assert_eq!(sum.sender, None);
    assert_eq!(sum.message, None);
    assert_eq!(sum.recipients.len(), 2);
    for r in &sum.recipients {
        assert_eq!(r.verdict(), Verdict::RetryLater);
        assert!(!r.is_delivered());
    }
}

/// Without PIPELINING each RCPT waits for the reply before it; a `421`
/// in the same read as the MAIL reply leaves the first RCPT unsent.
#[test]
fn a_421_without_pipelining_drops_the_held_rcpt() {
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.send_mail(&envelope(&["bob@example.org"])).unwrap();
    assert_eq!(take(&mut c), "MAIL FROM:<alice@example.net>\r\n");
    let fed = feed(&mut c, b"250 2.1.0 Ok\r\n421 4.3.2 going down\r\n");
    assert!(fed.events[0].starts_with("Sender"));
    assert!(closing(&fed), "{fed:?}");
    assert_eq!(take(&mut c), "");
    let sum = &fed.summaries[0];
    assert_eq!(sum.sender, Some(Verdict::Success));
    assert_eq!(sum.recipients[0].rcpt, None);
    assert_eq!(sum.recipients[0].verdict(), Verdict::RetryLater);
}

/// A `421` after DATA's `354`, while the application sends the body: the
/// body not yet written is dropped, and the accepted recipients are left
/// to retry (the message was not delivered).
#[test]
fn a_421_during_the_body_drops_the_rest_of_it() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org", "nobody@example.org"]))
        .unwrap();
    take(&mut c);
    let fed = feed(
        &mut c,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go\r\n",
    );
    assert_eq!(fed.events.last().unwrap(), "SendBody");
    assert!(c.wants_body());
    c.send_body(b"Subject: hi\r\n\r\n").unwrap();
    let fed = feed(&mut c, b"421 4.4.2 timeout\r\n");
    assert!(closing(&fed), "{fed:?}");
    assert_eq!(take(&mut c), "");
    let sum = &fed.summaries[0];
    assert_eq!(sum.message, None);
    assert_eq!(sum.recipients[0].verdict(), Verdict::RetryLater);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(sum.delivered().count(), 0);
    assert_eq!(
        c.send_body(b"more"),
        Err(ClientError::Usage(UsageError::NotInBody))
    );
}

// ----- several messages over one connection -----

/// A message started while the previous one's replies are still due is a
/// usage error that changes nothing: during the envelope, during the body,
/// and between the message's reply and the `TransactionEnd` that follows
/// it. Once that has been reported, the next message goes out, and a
/// failed one is followed by RSET before the next MAIL.
#[test]
fn a_message_waits_for_the_end_of_the_previous_one() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    let first = envelope(&["bob@example.org"]);
    let second = envelope(&["carol@example.org"]);
    c.send_mail(&first).unwrap();
    let not_idle = Err(ClientError::Usage(UsageError::NotIdle));
    assert_eq!(c.send_mail(&second), not_idle);
    assert_eq!(c.quit(), not_idle);
    assert_eq!(
        take(&mut c),
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
    );
    let fed = feed(&mut c, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    assert_eq!(fed.events.last().unwrap(), "SendBody");
    assert_eq!(c.send_mail(&second), not_idle);
    c.send_last(b"hi").unwrap();
    assert_eq!(take(&mut c), "hi\r\n.\r\n");
    assert_eq!(c.send_mail(&second), not_idle);

    // The message's reply, then (on the next call) the summary.
    let step = c.handle_input(b"250 2.0.0 queued as A\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Message { .. })
    ));
    assert!(!c.is_idle());
    assert_eq!(c.send_mail(&second), not_idle);
    assert!(!c.has_transmit());
    let step = c.handle_input(b"").unwrap();
    let Outcome::Event(ClientEvent::TransactionEnd(sum)) = step.outcome else {
        panic!("{:?}", step.outcome)
    };
    assert!(sum.all_delivered());
    assert!(c.is_idle());

    // The second message is refused at DATA: RSET goes before the third.
    c.send_mail(&second).unwrap();
    assert_eq!(
        take(&mut c),
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
    );
    let fed = feed(
        &mut c,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n451 4.3.0 try later\r\n",
    );
    let sum = &fed.summaries[0];
    assert_eq!(sum.message, Some(Verdict::RetryLater));
    assert_eq!(sum.recipients[0].verdict(), Verdict::RetryLater);
    assert!(c.is_idle());
    c.send_mail(&first).unwrap();
    assert_eq!(
        take(&mut c),
        "RSET\r\nMAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
    );
    let fed = feed(
        &mut c,
        b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n",
    );
    assert_eq!(fed.events.last().unwrap(), "SendBody");
    c.end_body().unwrap();
    assert_eq!(take(&mut c), ".\r\n");
    let fed = feed(&mut c, b"250 2.0.0 queued as C\r\n");
    assert!(fed.summaries[0].all_delivered());
    c.quit().unwrap();
    assert_eq!(take(&mut c), "QUIT\r\n");
}

// ----- reply codes the client does not expect -----

/// RFC 5321 §4.2.1: a 3yz means the command was accepted and the server
/// waits for more; §4.3.2 gives MAIL, RCPT and the end of the message no
/// 3yz reply. Where a completion reply is due a 3yz leaves the server's
/// state unknown, as a 2yz to DATA does: the session ends with the reply
/// as a protocol error. It is neither taken for success nor reported as a
/// permanent refusal, which would have the application bounce the
/// message (the accepted recipients stay to be retried).
#[test]
fn a_3yz_where_a_completion_reply_is_due_ends_the_session() {
    let cases: [(&str, &[u8]); 4] = [
        ("MAIL", b"354 go ahead\r\n"),
        ("RCPT", b"250 2.1.0 Ok\r\n334 what now\r\n"),
        ("second RCPT", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
        (
            "end of the message",
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n",
        ),
    ];
    for (what, replies) in cases {
        let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
        c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
            .unwrap();
        take(&mut c);
        let mut buf: &[u8] = replies;
        let mut events = Vec::new();
        let mut tail: &[u8] = b"";
        if what == "end of the message" {
            tail = b"354 and more\r\n";
        }
        let err = loop {
            match c.handle_input(buf) {
                Ok(step) => {
                    buf = &buf[step.consumed..];
                    match step.outcome {
                        Outcome::Event(ClientEvent::SendBody) => {
                            c.send_last(b"hi").unwrap();
                            buf = tail;
                        }
                        Outcome::Event(ev) => events.push(format!("{ev:?}")),
                        other => panic!("{what}: {other:?} after {events:?}"),
                    }
                }
                Err(e) => break e,
            }
        };
        let ClientError::UnexpectedReply(r) = &err else {
            panic!("{what}: {err:?}")
        };
        assert!(r.code().is_positive_intermediate(), "{what}");
        assert!(err.is_remote());
        assert!(c.is_closed(), "{what}");
        assert!(
            !events.iter().any(|e| e.contains("Permanent")
                || e.starts_with("TransactionEnd")
                || e.starts_with("Message")),
            "{what}: {events:?}"
        );
    }
}

/// RFC 5321 §4.3.2: 251 (will forward) and 252 (cannot verify, will try)
/// accept a recipient, and a 2yz reply after the message other than 250
/// delivers it all the same (the first digit decides, §4.2.1).
#[test]
fn other_2yz_replies_accept_recipients_and_the_message() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
        .unwrap();
    take(&mut c);
    let fed = feed(
        &mut c,
        b"250 2.1.0 Ok\r\n251 2.1.5 User not local; will forward\r\n\
          252 2.1.5 Cannot VRFY user, but will accept\r\n354 go\r\n",
    );
    assert_eq!(fed.events.last().unwrap(), "SendBody");
    c.end_body().unwrap();
    assert_eq!(take(&mut c), ".\r\n");
    let fed = feed(&mut c, b"251 2.0.0 accepted\r\n");
    let sum = &fed.summaries[0];
    assert!(sum.all_delivered(), "{sum:?}");
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0, 1]);
}

// ----- NOOP between transactions -----

/// RFC 5321 §4.1.1.9: NOOP between messages, to check a connection kept
/// open. The reply comes as its own event and the client is idle again;
/// a refusal is reported, not an error; a 421 closes as anywhere else.
#[test]
fn noop_between_transactions_reports_its_reply() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.noop().unwrap();
    // Nothing else fits while its reply is due.
    assert_eq!(
        c.send_mail(&envelope(&["bob@example.org"])),
        Err(ClientError::Usage(UsageError::NotIdle))
    );
    assert_eq!(c.noop(), Err(ClientError::Usage(UsageError::NotIdle)));
    assert_eq!(take(&mut c), "NOOP\r\n");
    let fed = feed(&mut c, b"250 2.0.0 Ok\r\n");
    assert_eq!(fed.events.len(), 1, "{fed:?}");
    assert!(
        fed.events[0].starts_with("Noop {") && fed.events[0].ends_with("verdict: Success }"),
        "{fed:?}"
    );
    assert_eq!(fed.last, Some(Outcome::Paused));
    assert!(c.is_idle());

    // A message goes out after it as after Ready.
    c.send_mail(&envelope(&["bob@example.org"])).unwrap();
    assert_eq!(
        take(&mut c),
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
    );

    // A server that refuses NOOP (500) leaves the session as it was.
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.noop().unwrap();
    take(&mut c);
    let fed = feed(&mut c, b"502 5.5.1 not here\r\n");
    assert!(fed.events[0].ends_with("verdict: Permanent }"), "{fed:?}");
    assert!(c.is_idle() && !c.is_closed());

    // A 421 to NOOP: the server is closing.
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.noop().unwrap();
    take(&mut c);
    let fed = feed(&mut c, b"421 4.3.2 mx.example.org shutting down\r\n");
    assert!(closing(&fed), "{fed:?}");
    assert!(fed.summaries.is_empty());
    assert_eq!(take(&mut c), "");
}

/// A 3yz to NOOP is no reply RFC 5321 §4.3.2 allows for it: the session
/// ends as for any unexpected reply.
#[test]
fn a_3yz_to_noop_ends_the_session() {
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.noop().unwrap();
    take(&mut c);
    let r = c.handle_input(b"354 go ahead\r\n");
    assert!(matches!(r, Err(ClientError::UnexpectedReply(_))), "{r:?}");
    assert!(c.is_closed());
}

/// Feeds `input` until the client needs more, pauses, closes or fails;
/// the events (as Debug text) and the error, if any.
fn feed_until_error(c: &mut Client, input: &[u8]) -> (Vec<String>, Option<ClientError>) {
    let mut events = Vec::new();
    let mut buf = input;
    for _ in 0..1000 {
        match c.handle_input(buf) {
            Ok(step) => {
                buf = &buf[step.consumed..];
                match step.outcome {
                    Outcome::Event(ev) => events.push(format!("{ev:?}")),
                    _ => return (events, None),
                }
            }
            Err(e) => return (events, Some(e)),
        }
    }
    panic!("no end: {events:?}")
}

/// RFC 5321 §4.1.1.5: the server "MUST send a '250 OK' reply" to RSET.
/// A refusal leaves the failed transaction open on the server, so the
/// MAIL pipelined after the RSET is answered `503` (nested MAIL), the
/// RCPT after it may still be taken into the old transaction and DATA
/// answered `354`. The refusal ends the session as a protocol error:
/// the `503` is not read as a refusal of the sender (a bounce, and a MAIL
/// the session would never send again), and no lone `.` goes out to end a
/// message on the old transaction.
#[test]
fn a_refused_rset_ends_the_session() {
    for rset in [
        "502 5.5.1 RSET not implemented",
        "451 4.3.0 try later",
        "354 what",
    ] {
        let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
        c.send_mail(&envelope(&["bob@example.org"])).unwrap();
        take(&mut c);
        // MAIL accepted, the recipient refused, DATA refused: the server
        // still holds the transaction, and RSET goes first next time.
        let fed = feed(
            &mut c,
            b"250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n",
        );
        assert_eq!(fed.summaries.len(), 1, "{fed:?}");
        c.send_mail(&envelope(&["carol@example.org"])).unwrap();
        assert_eq!(
            take(&mut c),
            "RSET\r\nMAIL FROM:<alice@example.net>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
        );
        let replies =
            format!("{rset}\r\n503 5.5.1 nested MAIL command\r\n250 2.1.5 Ok\r\n354 go ahead\r\n");
        let (events, err) = feed_until_error(&mut c, replies.as_bytes());
        let Some(ClientError::UnexpectedReply(r)) = &err else {
            panic!("{rset}: {err:?} after {events:?}")
        };
        assert_eq!(r.code().get().to_string(), rset[..3], "{rset}");
        assert!(events.is_empty(), "{rset}: {events:?}");
        assert!(c.is_closed(), "{rset}");
        assert_eq!(take(&mut c), "", "{rset}: nothing may follow");
        assert!(
            c.mail_refusal(&envelope(&["carol@example.org"])).is_none(),
            "{rset}"
        );
    }
}

/// RFC 2920 §3.1: every RCPT refused but DATA answered `354`, the client
/// ends the empty message with a lone `.`. That `.` ends the message, and
/// RFC 5321 §4.3.2 gives the end of the message no 3yz reply: a `354` to
/// it leaves the server waiting for more data, where the client's next
/// commands would be read as a message. It ends the session, as a 3yz to
/// the end of a message with recipients does.
#[test]
fn a_3yz_to_the_lone_dot_ends_the_session() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org"])).unwrap();
    take(&mut c);
    let (events, err) = feed_until_error(
        &mut c,
        b"250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n354 and more\r\n",
    );
    let Some(ClientError::UnexpectedReply(r)) = &err else {
        panic!("{err:?} after {events:?}")
    };
    assert_eq!(r.code().get(), 354);
    assert_eq!(take(&mut c), ".\r\n");
    assert!(c.is_closed());
    assert!(
        !events.iter().any(|e| e.starts_with("TransactionEnd")),
        "{events:?}"
    );
}

/// RFC 2033 §4.2: in LMTP, DATA without a successful RCPT "MUST fail with
/// a 503 reply code", and the end of a message gets one reply per
/// successful RCPT, none here. The lone `.` RFC 2920 §3.1 has an SMTP
/// client send after such a `354` would wait for a reply an LMTP server
/// does not give (or take a stray one for it): the `354` ends the
/// session, with every recipient decided by its RCPT reply.
#[test]
fn lmtp_354_without_an_accepted_recipient_ends_the_session() {
    let mut c = Client::new(config().with_protocol(Protocol::Lmtp));
    feed(&mut c, GREET.as_bytes());
    assert_eq!(take(&mut c), "LHLO client.example.net\r\n");
    let fed = feed(&mut c, b"250-mx.example.org\r\n250 PIPELINING\r\n");
    assert_eq!(fed.events.last().unwrap(), "Ready");
    c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
        .unwrap();
    assert_eq!(
        take(&mut c),
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
         RCPT TO:<carol@example.org>\r\nDATA\r\n"
    );
    let (events, err) = feed_until_error(
        &mut c,
        b"250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n452 4.2.2 mailbox full\r\n354 go ahead\r\n",
    );
    let Some(ClientError::UnexpectedReply(r)) = &err else {
        panic!("{err:?} after {events:?}")
    };
    assert_eq!(r.code().get(), 354);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[1].contains("Permanent") && events[2].contains("RetryLater"));
    assert!(c.is_closed());
    assert_eq!(take(&mut c), "", "no lone dot");
}

// ----- reply codes the client does not know: the first digit decides -----

/// RFC 5321 §4.2: "a sender-SMTP MUST be prepared to handle codes not
/// specified in this document and MUST do so by interpreting the first
/// digit only". A 2yz greeting other than 220 opens the session, and a
/// 2yz to EHLO, HELO or LHLO other than 250 accepts the hello. Its lines
/// are no EHLO reply (RFC 5321 §4.1.1.1 gives that 250): the session
/// goes on without extensions, as after HELO.
#[test]
fn an_unknown_2yz_greeting_or_hello_reply_opens_the_session() {
    // The replies, each read once the command it answers is written.
    let cases: [(ClientConfig, &[&str], &str, &str); 4] = [
        (
            config(),
            &[
                "200 mx.example.org ready\r\n",
                "250-mx.example.org\r\n250 PIPELINING\r\n",
            ],
            "EHLO client.example.net\r\n",
            "a 2yz greeting",
        ),
        (
            config(),
            &[
                "220 mx.example.org ESMTP\r\n",
                "251-mx.example.org\r\n251 PIPELINING\r\n",
            ],
            "EHLO client.example.net\r\n",
            "a 2yz to EHLO",
        ),
        (
            config(),
            &[
                "220 mx.example.org\r\n",
                "502 5.5.1 no EHLO\r\n",
                "299 mx.example.org\r\n",
            ],
            "EHLO client.example.net\r\nHELO client.example.net\r\n",
            "a 2yz to HELO",
        ),
        (
            config().with_protocol(Protocol::Lmtp),
            &[
                "220 mx.example.org LMTP\r\n",
                "251-mx.example.org\r\n251 PIPELINING\r\n",
            ],
            "LHLO client.example.net\r\n",
            "a 2yz to LHLO",
        ),
    ];
    for (cfg, reads, hello, what) in cases {
        let mut c = Client::new(cfg);
        let mut wire = String::new();
        let mut fed = Fed::default();
        for read in reads {
            wire.push_str(&take(&mut c));
            fed = feed(&mut c, read.as_bytes());
        }
        assert_eq!(
            fed.events.last().map(String::as_str),
            Some("Ready"),
            "{what}: {fed:?}"
        );
        assert!(c.is_idle(), "{what}");
        wire.push_str(&take(&mut c));
        assert_eq!(wire, hello, "{what}: no QUIT");
        // An EHLO reply is a 250; another 2yz gives no extension.
        let ehlo_250 = what == "a 2yz greeting";
        assert_eq!(c.capabilities().is_some(), ehlo_250, "{what}");
        assert_eq!(c.has(Extension::Pipelining), ehlo_250, "{what}");
        c.send_mail(&envelope(&["bob@example.org"])).unwrap();
        assert!(
            take(&mut c).starts_with("MAIL FROM:<alice@example.net>\r\n"),
            "{what}"
        );
    }
}

/// The same for STARTTLS (RFC 3207 §4 gives it 220): another 2yz means
/// the server starts TLS, so the client runs the handshake rather than
/// going on in plain text with a server that waits for it.
#[test]
fn an_unknown_2yz_to_starttls_starts_tls() {
    let cfg = config().with_tls(TlsPolicy::Opportunistic);
    let mut c = Client::new(cfg);
    feed(&mut c, GREET.as_bytes());
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
    let fed = feed(&mut c, b"250-mx.example.org\r\n250 STARTTLS\r\n");
    assert!(fed.events.iter().all(|e| e != "Ready"), "{fed:?}");
    assert_eq!(take(&mut c), "STARTTLS\r\n");
    let fed = feed(&mut c, b"230 2.0.0 go ahead\r\n");
    assert_eq!(fed.events, ["StartTls"], "{fed:?}");
    assert!(c.starttls_refusal().is_none());
    c.tls_established().unwrap();
    assert!(c.is_tls());
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
}

/// DATA (RFC 5321 §4.3.2 gives it 354): another 3yz asks for the message
/// as 354 does; the message goes out and its reply decides it.
#[test]
fn an_unknown_3yz_to_data_starts_the_message() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org"])).unwrap();
    take(&mut c);
    let fed = feed(&mut c, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n355 send it\r\n");
    assert_eq!(
        fed.events.last().map(String::as_str),
        Some("SendBody"),
        "{fed:?}"
    );
    c.send_last(b"hi").unwrap();
    assert_eq!(take(&mut c), "hi\r\n.\r\n");
    let fed = feed(&mut c, b"250 2.0.0 queued\r\n");
    assert!(fed.summaries[0].all_delivered(), "{fed:?}");
    assert!(c.is_idle());
}

/// AUTH (RFC 4954 §4 gives its continuation 334): another 3yz is the
/// server waiting for the next line of the exchange, not a failure. Taken
/// for one, the session would go on as if idle while the server reads its
/// next command (a MAIL, a QUIT) as a SASL response.
#[test]
fn an_unknown_3yz_to_auth_continues_the_exchange() {
    let mut c = ready(
        config().with_auth_without_tls(true),
        "250-mx.example.org\r\n250 AUTH LOGIN\r\n",
    );
    c.authenticate(AuthCredentials::password("alice", "s3cret"), None)
        .unwrap();
    assert_eq!(take(&mut c), "AUTH LOGIN\r\n");
    let fed = feed(&mut c, b"335 VXNlcm5hbWU6\r\n");
    assert!(fed.events.is_empty(), "{fed:?}");
    assert!(!c.is_idle());
    // The user name, base64.
    assert_eq!(take(&mut c), "YWxpY2U=\r\n");
    let fed = feed(&mut c, b"335 UGFzc3dvcmQ6\r\n");
    assert!(fed.events.is_empty(), "{fed:?}");
    assert_eq!(take(&mut c), "czNjcmV0\r\n");
    let fed = feed(&mut c, b"235 2.7.0 ok\r\n");
    assert!(fed.events[0].starts_with("Authenticated"), "{fed:?}");
    assert!(c.is_authenticated() && c.is_idle());

    // After a cancel, any 3yz is one challenge too many, as a 334 is.
    let mut c = ready(
        config().with_auth_without_tls(true),
        "250-mx.example.org\r\n250 AUTH LOGIN\r\n",
    );
    c.authenticate(AuthCredentials::password("alice", "s3cret"), None)
        .unwrap();
    c.cancel_auth().unwrap();
    take(&mut c);
    let (events, err) = feed_until_error(&mut c, b"335 VXNlcm5hbWU6\r\n");
    assert!(events.is_empty() && err.is_none(), "{events:?} {err:?}");
    assert_eq!(take(&mut c), "*\r\n");
    // The next 3yz, read once the `*` is written.
    let (events, err) = feed_until_error(&mut c, b"335 more\r\n");
    assert!(events.is_empty(), "{events:?}");
    assert!(
        matches!(&err, Some(ClientError::UnexpectedReply(r)) if r.code().get() == 335),
        "{err:?}"
    );
    assert!(c.is_closed());
}

/// A 3yz to STARTTLS (RFC 3207 §4 gives it 220, or a refusal: 454, 501)
/// says the server took the command and waits for more, where there is
/// nothing more to send: a 3yz where a completion reply is due, which ends
/// the session as for MAIL or RCPT. It is no refusal of TLS: the session
/// does not go on in plain text with a server in an unknown state, and
/// the reply is not kept as the STARTTLS refusal a REQUIRETLS message is
/// judged by.
#[test]
fn a_3yz_to_starttls_ends_the_session() {
    for tls in [TlsPolicy::Opportunistic, TlsPolicy::Required] {
        let mut c = Client::new(config().with_tls(tls));
        feed(&mut c, GREET.as_bytes());
        assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
        let fed = feed(&mut c, b"250-mx.example.org\r\n250 STARTTLS\r\n");
        assert!(fed.events.iter().all(|e| e != "Ready"), "{fed:?}");
        assert_eq!(take(&mut c), "STARTTLS\r\n");
        let (events, err) = feed_until_error(&mut c, b"354 go ahead\r\n");
        assert!(events.is_empty(), "{tls:?}: {events:?}");
        assert!(
            matches!(&err, Some(ClientError::UnexpectedReply(r)) if r.code().get() == 354),
            "{tls:?}: {err:?}"
        );
        assert!(c.is_closed(), "{tls:?}");
        assert!(c.starttls_refusal().is_none(), "{tls:?}");
        assert_eq!(take(&mut c), "", "{tls:?}: nothing more is sent");
    }
}

// ----- a reply comes after its command was handed out -----

/// RFC 5321 §4.2: a server answers each command with one reply, so it
/// cannot answer a command it was not sent, and the client cannot have
/// sent what `poll_transmit` has not handed out. A reply in the same read
/// as the greeting, before the EHLO went out, is no EHLO reply: taken for
/// one, every later reply would answer the command before its own (a
/// refused RCPT read as accepted). The session ends instead.
#[test]
fn a_reply_in_the_greetings_read_is_refused() {
    let mut c = Client::new(config());
    let input = b"220 hi\r\n250 extra\r\n";
    let step = c.handle_input(input).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Greeting { .. })
    ));
    assert_eq!(step.consumed, 8);
    // The EHLO is queued, not handed out.
    let err = c.handle_input(&input[step.consumed..]).unwrap_err();
    let ClientError::UnexpectedReply(r) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(r.as_bytes(), b"250 extra\r\n");
    assert!(err.is_remote());
    assert!(c.is_closed());
    assert!(c.capabilities().is_none());
}

/// The same when the reply began before the command was handed out and
/// ends after: its first bytes were read before the server could have
/// seen the command.
#[test]
fn a_reply_begun_before_its_command_was_handed_out_is_refused() {
    let mut c = Client::new(config());
    let fed = feed(&mut c, GREET.as_bytes());
    assert!(fed.events[0].starts_with("Greeting"));
    let step = c.handle_input(b"250 ex").unwrap();
    assert_eq!((step.consumed, step.outcome), (0, Outcome::NeedInput));
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
    let err = c.handle_input(b"250 extra\r\n").unwrap_err();
    assert!(
        matches!(&err, ClientError::UnexpectedReply(r) if r.as_bytes() == b"250 extra\r\n"),
        "{err:?}"
    );
    assert!(c.is_closed());

    // Begun once the EHLO was handed out, the same reply is the EHLO's.
    let mut c = Client::new(config());
    feed(&mut c, GREET.as_bytes());
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
    let step = c.handle_input(b"250 ex").unwrap();
    assert_eq!((step.consumed, step.outcome), (0, Outcome::NeedInput));
    let fed = feed(&mut c, b"250 extra\r\n");
    assert_eq!(fed.events, ["Ready"], "{fed:?}");
}

/// A 421 may come unasked (RFC 5321 §3.8): ahead of the command it
/// follows, it still closes the session, and the queued command is not
/// sent.
#[test]
fn a_421_before_the_command_was_handed_out_closes_the_session() {
    let mut c = Client::new(config());
    let fed = feed(&mut c, b"220 hi\r\n421 4.3.2 shutting down\r\n");
    assert_eq!(fed.events.len(), 2, "{fed:?}");
    assert!(fed.events[0].starts_with("Greeting"));
    assert!(closing(&fed), "{fed:?}");
    assert!(c.is_closed());
    assert_eq!(take(&mut c), "", "nothing may follow the 421");
}

/// Without PIPELINING each RCPT goes out once the reply before it came.
/// Replies to RCPTs read with the MAIL reply, before the first RCPT was
/// released and handed out, answer nothing the client sent: the session
/// ends, and no recipient is reported accepted.
#[test]
fn replies_to_held_rcpts_read_before_they_were_sent_are_refused() {
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
        .unwrap();
    assert_eq!(take(&mut c), "MAIL FROM:<alice@example.net>\r\n");
    let (events, err) = feed_until_error(
        &mut c,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n",
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("Sender"), "{events:?}");
    assert!(
        matches!(&err, Some(ClientError::UnexpectedReply(r)) if r.as_bytes() == b"250 2.1.5 Ok\r\n"),
        "{err:?}"
    );
    assert!(c.is_closed());

    // Each reply read once its RCPT went out is that RCPT's.
    let mut c = ready(config(), "250 mx.example.org\r\n");
    c.send_mail(&envelope(&["bob@example.org", "carol@example.org"]))
        .unwrap();
    assert_eq!(take(&mut c), "MAIL FROM:<alice@example.net>\r\n");
    let fed = feed(&mut c, b"250 2.1.0 Ok\r\n");
    assert!(fed.events[0].starts_with("Sender"), "{fed:?}");
    assert_eq!(take(&mut c), "RCPT TO:<bob@example.org>\r\n");
    let fed = feed(&mut c, b"250 2.1.5 Ok\r\n");
    assert!(fed.events[0].contains("verdict: Success"), "{fed:?}");
    assert_eq!(take(&mut c), "RCPT TO:<carol@example.org>\r\n");
    let fed = feed(&mut c, b"550 5.1.1 no such user\r\n");
    assert!(fed.events[0].contains("verdict: Permanent"), "{fed:?}");
    assert_eq!(take(&mut c), "DATA\r\n");
}

/// With PIPELINING, MAIL, the RCPTs and DATA are handed out together, and
/// their replies may all come in one read.
#[test]
fn pipelined_replies_in_one_read_answer_the_group_handed_out() {
    let mut c = ready(config(), "250-mx.example.org\r\n250 PIPELINING\r\n");
    c.send_mail(&envelope(&["bob@example.org", "nobody@example.org"]))
        .unwrap();
    assert_eq!(
        take(&mut c),
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
         RCPT TO:<nobody@example.org>\r\nDATA\r\n"
    );
    let fed = feed(
        &mut c,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go\r\n",
    );
    assert_eq!(fed.events.len(), 4, "{fed:?}");
    assert!(fed.events[0].starts_with("Sender"));
    assert!(fed.events[1].starts_with("Recipient { index: 0") && fed.events[1].contains("Success"));
    assert!(
        fed.events[2].starts_with("Recipient { index: 1") && fed.events[2].contains("Permanent")
    );
    assert_eq!(fed.events[3], "SendBody");
    c.send_last(b"hi").unwrap();
    assert_eq!(take(&mut c), "hi\r\n.\r\n");
    let fed = feed(&mut c, b"250 2.0.0 queued\r\n");
    assert_eq!(fed.summaries[0].delivered().collect::<Vec<_>>(), [0]);
    assert!(c.is_idle());
}
