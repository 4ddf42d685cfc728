//! Target `delivery`: a [`Delivery`] driving the client machine
//! (`smtp_proto::client`) against arbitrary server bytes, every call
//! the delivery's own.
//!
//! Input: byte 0 picks the client configuration as in the `client` target
//! ([`crate::client::config`]; bit 7 is not used there); byte 1 the
//! delivery: bits 0-2 the number of recipients (1 to 6, in three domains),
//! bits 3-4 the body (one of [`BODIES`], the 8-bit one sent as
//! `BODY=8BITMIME`), bit 5 `SIZE=`, bits 6-7 AUTH (none, a password, a
//! token, or a mechanism run by the application, whose challenges
//! [`responder`] answers); byte 2
//! the size of the body pieces (1 to 256 octets); the rest is what the
//! server sends.
//!
//! Under every cut of [`crate::split::cuts`] the target asserts:
//!
//! - never a panic, and [`Delivery::on_event`] never fails: the delivery
//!   only makes calls the machine takes after the event at hand;
//! - the machine never waits for a call (`Paused`) the delivery did not
//!   make;
//! - each transaction carries the recipients that follow the last one's,
//!   in order, at least one and at most the server's `RCPTMAX`;
//! - no MAIL after a MAIL refused with a 5yz; QUIT written at most once;
//! - the report has one entry per recipient, in the envelope's order; a
//!   recipient is delivered only if the server accepted a message; when
//!   the server answered QUIT, no recipient is left unknown or lost;
//!   unknown recipients belong to the last transaction;
//! - each failed or delayed recipient, and only those, gives a bounce
//!   entry (`dsn::Recipient::from_report`), of the same action and a
//!   status class that goes with it;
//! - everything written holds CR and LF only as CRLF;
//! - the report and the bytes written are the same under every cut (up
//!   to STARTTLS: after its 220, server bytes in the same read are an
//!   injection, so the rest depends on the cut by design).

use smtp_proto::client::{
    AuthCredentials, Client, ClientError, ClientEvent, CustomCredentials, Delivery, DeliveryReport,
    Envelope, NotAttempted, Outcome, RecipientOutcome, RecipientReport, SaslAnswer, Verdict,
};
use smtp_proto::command::{BodyType, ForwardPath, Mailbox, ReversePath};
use smtp_proto::dsn;
use smtp_proto::sasl::CustomMechanism;
use smtp_proto::status::StatusClass;

use crate::client::{assert_crlf_only, config, error_name};
use crate::split::check_split_invariance;
use crate::stream::{replies_end, Progress};

/// The recipients, in three domains (for `RCPTDOMAINMAX`).
pub const RECIPIENTS: [&str; 6] = [
    "bob@one.example",
    "carol@one.example",
    "dave@two.example",
    "erin@two.example",
    "frank@three.example",
    "grace@one.example",
];

/// The bodies: plain, dots at line starts with bare line ends, empty, and
/// 8-bit (sent as `BODY=8BITMIME`, index 3). None holds a line that
/// starts with `MAIL` or `QUIT`, so the commands can be counted in what
/// the client writes.
pub const BODIES: &[&[u8]] = &[
    b"Subject: hi\r\n\r\nHello.\r\n",
    b".\r\n..\r\n.x\n\r\n.",
    b"",
    b"Subject: \xc3\xa9t\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n",
];

/// What one run gave, compared across cuts.
type Result = (Option<DeliveryReport>, Vec<u8>);

/// The envelope and delivery picked by `params`.
pub(crate) fn delivery(params: u8, body: &[u8]) -> Delivery {
    let n = 1 + usize::from(params & 7) % RECIPIENTS.len();
    let from = Mailbox::parse("alice@example.net").expect("valid mailbox");
    let mut env = Envelope::new(ReversePath::Mailbox(from.into_owned()));
    for to in &RECIPIENTS[..n] {
        let to = Mailbox::parse(to).expect("valid mailbox").into_owned();
        env = env.recipient(ForwardPath::Mailbox(to));
    }
    if (params >> 3) & 3 == 3 {
        env = env.with_body(BodyType::EightBitMime);
    }
    if params & 32 != 0 {
        env = env.with_size(body.len() as u64);
    }
    let d = Delivery::new(env);
    match params >> 6 {
        0 => d,
        1 => d.with_auth(AuthCredentials::password("alice", "s3cret")),
        2 => d.with_auth(AuthCredentials::oauth2("alice@example.net", "tok3n")),
        _ => d
            .with_auth(
                CustomCredentials::new(CustomMechanism::new("CRAM-MD5").expect("valid name"))
                    .into(),
            )
            .with_auth_responder(responder),
    }
}

/// The answer of the application's mechanism, from the challenge alone
/// (so the same under every cut): by its first octet, the challenge
/// echoed, an empty response, a cancel, or a response one octet too long
/// for RFC 4954's line (which the delivery must cancel, not send); an
/// empty challenge gets the round's number.
pub fn responder(_: CustomMechanism, challenge: &[u8], round: usize) -> SaslAnswer {
    match challenge.first().map(|b| b % 4) {
        None => SaslAnswer::respond(round.to_string()),
        Some(0) => SaslAnswer::respond(challenge),
        Some(1) => SaslAnswer::respond(Vec::new()),
        Some(2) => SaslAnswer::Cancel,
        _ => SaslAnswer::respond(vec![b'x'; 9214]),
    }
}

/// Runs a fresh client and delivery over `pieces`.
fn drive(bits: u8, params: u8, piece_size: usize, pieces: &[&[u8]]) -> Result {
    let cfg = config(bits);
    let body = BODIES[usize::from((params >> 3) & 3)];
    let mut delivery = delivery(params, body);
    let n = delivery.envelope().recipients.len();
    let mut client = Client::new(cfg.clone());
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let max_buffered = cfg.replies.max_reply_len + cfg.replies.max_line_len;
    let mut out: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut progress = Progress::for_input(total);
    let mut error: Option<String> = None;
    let mut accepted_messages = 0usize;
    let mut quit_answered = false;
    let mut refused_for_good_after: Option<usize> = None;
    let mut last_batch: Vec<usize> = Vec::new();
    let mut tried = 0usize;
    // The output once the last event other than a 421 was handled; see
    // the end.
    let mut after_last_event = 0usize;
    let mut before_421: Option<usize> = None;
    // Replies past the first complete one given too (see `replies_end`).
    let mut more = 0;
    'outer: for piece in pieces {
        buf.extend_from_slice(piece);
        progress.next_piece();
        loop {
            progress.call();
            let limit = replies_end(&buf, 1 + more);
            let step = match client.handle_input(buf.get(..limit).unwrap_or_default()) {
                Ok(step) => step,
                Err(ClientError::Usage(e)) => panic!("handle_input refused the caller: {e:?}"),
                Err(e) => {
                    assert!(client.is_closed(), "open after the protocol error {e:?}");
                    error = Some(error_name(&e));
                    break 'outer;
                }
            };
            let consumed = step.consumed;
            progress.consumed(consumed, limit);
            if consumed > 0 {
                more = 0;
            }
            match step.outcome {
                Outcome::Event(event) => {
                    match &event {
                        ClientEvent::Sender {
                            verdict: Verdict::Permanent,
                            ..
                        } => refused_for_good_after = Some(delivery.transactions()),
                        ClientEvent::Message {
                            verdict: Verdict::Success,
                            ..
                        } => accepted_messages += 1,
                        ClientEvent::Closed { .. } => quit_answered = true,
                        ClientEvent::ServiceClosing { .. } => {
                            before_421 = Some(after_last_event);
                        }
                        _ => {}
                    }
                    let before = delivery.transactions();
                    delivery
                        .on_event(&mut client, &event)
                        .expect("the delivery's call fits the event");
                    if delivery.transactions() > before {
                        assert_eq!(delivery.transactions(), before + 1);
                        assert!(
                            refused_for_good_after.is_none(),
                            "MAIL repeated after a 5yz"
                        );
                        let batch = delivery.current_transaction();
                        tried = check_batch(batch, &last_batch, tried, n, &client);
                        last_batch = batch.to_vec();
                    }
                    if event == ClientEvent::SendBody {
                        send_body(&mut client, &mut delivery, body, piece_size);
                    }
                    if event == ClientEvent::StartTls {
                        client.poll_transmit(&mut out);
                        if let Some(rest) = buf.get(consumed..).filter(|r| !r.is_empty()) {
                            // Bytes after the 220 in the same read: the
                            // machine refuses them before the handshake.
                            let e = client
                                .handle_input(rest)
                                .expect_err("bytes after the STARTTLS 220 are refused");
                            error = Some(error_name(&e));
                            break 'outer;
                        }
                        client.tls_established().expect("the handshake was awaited");
                    }
                }
                Outcome::NeedInput if consumed == 0 && limit < buf.len() => {
                    // The reply goes on past the line taken for its end.
                    more += 1;
                    continue;
                }
                Outcome::NeedInput => {
                    assert!(
                        buf.len() - consumed <= max_buffered,
                        "asked for input while {} bytes are buffered",
                        buf.len() - consumed
                    );
                    client.poll_transmit(&mut out);
                    buf.drain(..consumed);
                    if consumed == 0 {
                        continue 'outer;
                    }
                    continue;
                }
                Outcome::Paused => {
                    panic!("the machine waits for a call the delivery did not make: {client:?}")
                }
                Outcome::Closed => {
                    buf.drain(..consumed);
                    client.poll_transmit(&mut out);
                    break 'outer;
                }
                Outcome::Transmit => {}
                other => panic!("unexpected outcome {other:?}"),
            }
            buf.drain(..consumed);
            client.poll_transmit(&mut out);
            if before_421.is_none() {
                after_last_event = out.len();
            }
        }
    }
    client.poll_transmit(&mut out);
    if !client.is_closed() && error.is_none() {
        error = Some("connection lost".into());
    }
    let report = delivery.finish(error);
    check_report(&report, n, accepted_messages, quit_answered, &last_batch);
    assert_crlf_only(&out);
    let lines = || out.split(|&b| b == b'\n');
    let mails = lines().filter(|l| l.starts_with(b"MAIL FROM:")).count();
    assert!(
        mails <= report.transactions && mails + 1 >= report.transactions,
        "{mails} MAIL written for {} transactions",
        report.transactions
    );
    let quits = lines().filter(|l| *l == b"QUIT\r").count();
    assert!(quits <= 1, "QUIT written {quits} times");
    // A command queued on a reply without an event (the next RCPT
    // without PIPELINING, the HELO fallback) goes out when that reply
    // came in a read of its own, and is dropped unsent when a 421 came in
    // the same read (RFC 5321 §3.8).
    if let Some(n) = before_421 {
        out.truncate(n);
    }
    // The 220 to STARTTLS makes the rest depend on the cut.
    if let Some(at) = out.windows(10).position(|w| w == b"STARTTLS\r\n") {
        out.truncate(at + 10);
        return (None, out);
    }
    (Some(report), out)
}

/// Hands the body to the machine as the delivery gives it out.
pub(crate) fn send_body(
    client: &mut Client,
    delivery: &mut Delivery,
    body: &[u8],
    piece_size: usize,
) {
    for _ in 0..=body.len() + 1 {
        if !client.wants_body() {
            return;
        }
        match delivery.next_piece(body, piece_size) {
            Some(p) => client.send_body(p).expect("send_body while wanted"),
            None => {
                client.end_body().expect("end_body while wanted");
                return;
            }
        }
    }
    panic!("the body did not end");
}

/// A new transaction's recipients `batch`, after the last one's `last`,
/// when the ones before `tried` had one: in envelope order, at least one
/// and at most the server's `RCPTMAX`; first the ones of the last
/// transaction sent again (refused there with "too many recipients"),
/// then the ones from `tried` on, none skipped. Gives the new `tried`.
pub(crate) fn check_batch(
    batch: &[usize],
    last: &[usize],
    tried: usize,
    n: usize,
    client: &Client,
) -> usize {
    assert!(!batch.is_empty(), "an empty transaction");
    assert!(
        batch.windows(2).all(|w| w[0] < w[1]),
        "{batch:?} not in envelope order"
    );
    let (again, new) = batch.split_at(batch.partition_point(|&i| i < tried));
    for i in again {
        assert!(last.contains(i), "{i} sent again, not from {last:?}");
    }
    for (k, &i) in new.iter().enumerate() {
        assert_eq!(i, tried + k, "recipients skipped");
    }
    assert!(batch.iter().all(|&i| i < n), "{batch:?}");
    if let Some(max) = client.limits().rcpt_max {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        assert!(batch.len() <= max, "{batch:?} above RCPTMAX {max}");
    }
    tried + new.len()
}

/// True for a `552 X.5.3`, which the client takes for "too many
/// recipients" (RFC 5321 §4.5.3.1.10) and so for a temporary failure.
fn too_many_552(reply: &smtp_proto::reply::OwnedReply) -> bool {
    u16::from(reply.code()) == 552
        && reply
            .enhanced_code()
            .is_some_and(|e| e.subject() == 5 && e.detail() == 3)
}

pub(crate) fn check_report(
    report: &DeliveryReport,
    n: usize,
    accepted_messages: usize,
    quit_answered: bool,
    last_batch: &[usize],
) {
    assert_eq!(report.recipients.len(), n);
    for (r, want) in report.recipients.iter().zip(RECIPIENTS) {
        let ForwardPath::Mailbox(m) = &r.recipient.path else {
            panic!("{r:?}")
        };
        assert_eq!(m.to_string(), want, "the report's order");
    }
    for (i, r) in report.recipients.iter().enumerate() {
        match &r.outcome {
            RecipientOutcome::Delivered { reply } => {
                assert!(
                    accepted_messages > 0,
                    "delivered without an accepted message"
                );
                assert!(reply.code().is_positive_completion());
            }
            RecipientOutcome::PermanentFailure { reply, .. } => {
                assert!(u16::from(reply.code()) >= 500, "{reply:?}");
            }
            RecipientOutcome::TemporaryFailure { reply, .. } => {
                assert!(
                    (400..500).contains(&u16::from(reply.code())) || too_many_552(reply),
                    "{reply:?}"
                );
            }
            RecipientOutcome::Unknown => {
                assert!(!quit_answered, "unknown after QUIT was answered");
                assert!(
                    last_batch.contains(&i),
                    "unknown outside the last transaction"
                );
            }
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::ConnectionLost,
            } => assert!(!quit_answered, "lost after QUIT was answered"),
            _ => {}
        }
        check_bounce_entry(r);
    }
}

/// The bounce entry of a report entry: one exactly for a failure or a
/// delay (the envelope asks for no NOTIFY, so both are reported), failed
/// or delayed as the outcome says, with a status of a class that goes with
/// it, and the deciding reply quoted.
pub(crate) fn check_bounce_entry(r: &RecipientReport) {
    let entry = dsn::Recipient::from_report(r);
    let want = if r.outcome.is_permanent_failure() {
        Some(dsn::Action::Failed)
    } else if r.outcome.is_retry() {
        Some(dsn::Action::Delayed)
    } else {
        None
    };
    assert_eq!(entry.as_ref().map(dsn::Recipient::action), want, "{r:?}");
    if let Some(entry) = entry {
        let class = entry.status().class();
        match entry.action() {
            dsn::Action::Delayed => assert_eq!(class, StatusClass::PersistentTransientFailure),
            _ => assert_ne!(class, StatusClass::Success),
        }
    }
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let [bits, params, size, stream @ ..] = data else {
        return;
    };
    let piece_size = 1 + usize::from(*size);
    let _ = check_split_invariance(stream, |pieces| drive(*bits, *params, piece_size, pieces));
}

#[cfg(test)]
mod tests {
    use super::{drive, run};
    use smtp_proto::client::{NotAttempted, RecipientOutcome};

    const SESSION: &[u8] = b"220 mx\r\n250-mx\r\n250 LIMITS RCPTMAX=1\r\n250 ok\r\n250 ok\r\n\
        354 go\r\n250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";

    /// Two recipients, `RCPTMAX=1`, no PIPELINING: two transactions, both
    /// delivered, then QUIT.
    #[test]
    fn a_clean_session_delivers_in_two_transactions() {
        let (report, out) = drive(32, 1, 4, &[SESSION]);
        let report = report.expect("no STARTTLS");
        assert_eq!(report.transactions, 2);
        assert!(report.all_delivered(), "{report:?}");
        assert!(out.ends_with(b"QUIT\r\n"));
        let mut input = vec![32, 1, 3];
        input.extend_from_slice(SESSION);
        run(&input);
    }

    /// Two recipients in one transaction, the second refused as too many
    /// (RFC 5321 §4.5.3.1.10): it goes in a second transaction, and both
    /// are delivered, the same under every cut.
    #[test]
    fn a_recipient_refused_as_too_many_goes_in_the_next_transaction() {
        let session = b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n\
            354 go\r\n250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
        let (report, out) = drive(32, 1, 4, &[session]);
        let report = report.expect("no STARTTLS");
        assert_eq!(report.transactions, 2);
        assert!(report.all_delivered(), "{report:?}");
        assert!(out.ends_with(b"QUIT\r\n"));
        let mut input = vec![32, 1, 3];
        input.extend_from_slice(session);
        run(&input);
    }

    /// CRAM-MD5 run by the application: a challenge answered (with an
    /// empty line), and one answered too long (cancelled with `*`: a
    /// failed AUTH).
    #[test]
    fn a_custom_mechanism_is_answered_or_cancelled() {
        // `A` (65 % 4 == 1) is answered with an empty line.
        let session = b"220 mx\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 QQ==\r\n235 ok\r\n\
            250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
        let (report, out) = drive(64, 192, 255, &[session]);
        let report = report.expect("no STARTTLS");
        assert!(report.all_delivered(), "{report:?}");
        let out = String::from_utf8(out).expect("ASCII");
        assert!(out.contains("AUTH CRAM-MD5\r\n\r\nMAIL FROM:"), "{out}");
        let mut input = vec![64, 192, 255];
        input.extend_from_slice(session);
        run(&input);

        // `C` (67 % 4 == 3) gets a response too long to send.
        let session = b"220 mx\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 Qw==\r\n501 no\r\n\
            221 bye\r\n";
        let (report, out) = drive(64, 192, 255, &[session]);
        let report = report.expect("no STARTTLS");
        assert!(matches!(
            &report.recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::AuthFailed { .. }
            }
        ));
        assert!(out.ends_with(b"AUTH CRAM-MD5\r\n*\r\nQUIT\r\n"));
        let mut input = vec![64, 192, 255];
        input.extend_from_slice(session);
        run(&input);
    }

    /// The server stops after the message: unknown, the same under every
    /// cut.
    #[test]
    fn a_session_cut_after_the_message_is_unknown() {
        let session = b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n";
        let (report, _) = drive(32, 0, 255, &[session]);
        let report = report.expect("no STARTTLS");
        assert_eq!(report.unknown().count(), 1, "{report:?}");
        let mut input = vec![32, 0, 255];
        input.extend_from_slice(session);
        run(&input);
    }
}
