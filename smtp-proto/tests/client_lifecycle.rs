//! The client machine as an application sees it across a connection: a
//! `421` wherever it comes (RFC 5321 §3.8), several messages over one
//! session, calls made while replies are still due, and unexpected reply
//! codes (RFC 5321 §4.2, §4.3). Each test drives the machine by hand
//! against scripted replies, so a reply can arrive in the same read as the
//! one before it, before the client has written what it queued.

use smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientError, ClientEvent, Envelope, Outcome, TlsPolicy,
    TransactionSummary, UsageError, Verdict,
};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};

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

/// Feeds `input` to the client until it needs more input, pauses or
/// closes, without writing anything: what the client queued stays queued,
/// as in a driver that hands the events of one read to the application
/// before it writes.
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
    let fed = feed(&mut c, format!("{GREET}{ehlo}").as_bytes());
    assert!(fed.events.iter().any(|e| e == "Ready"), "{fed:?}");
    assert!(c.is_idle());
    assert_eq!(take(&mut c), "EHLO client.example.net\r\n");
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
