//! Target `dsn`: bounces written from what peers sent.
//!
//! A server that bounces a message writes its report from values its peers
//! chose: the sender and `ENVID` of the client's `MAIL`, the recipient,
//! `ORCPT` and `NOTIFY` of its `RCPT`, the remote server's reply, and the
//! message itself. The input drives [`arbitrary::Unstructured`]:
//!
//! - the argument of a `MAIL FROM:` line, the argument of a `RCPT TO:`
//!   line and a reply's wire bytes, each parsed as the session would
//!   (a line that does not parse falls back to a fixed sender, recipient
//!   or `550` reply, so the rest of the input still counts);
//! - `RET` taken from the `MAIL` line or overridden, a size limit for the
//!   returned message now and then, a second recipient with another
//!   action now and then;
//! - the rest of the input is the original message.
//!
//! Properties:
//!
//! - the null sender is refused with `NullSender`, a `3yz` reply with
//!   `NoStatus`, and nothing panics;
//! - a written report ends with its closing delimiter, every delimiter
//!   line is one of its two or three parts, and the boundary occurs
//!   nowhere in the original message;
//! - everything before the returned message (the header section and the
//!   first two parts) is 7-bit text with CRLF line ends only and no line
//!   over 998 octets (RFC 5322 §2.1.1), so no peer value can break a
//!   header line or add one;
//! - the third part holds the whole original (`Returned::Full`), its
//!   header section (`Returned::Headers`), or is absent
//!   (`Returned::Nothing`), as the report says.

use arbitrary::{Result, Unstructured};
use smtp_proto::command::{Atom, Command, Domain, ForwardPath, Mailbox, Ret, ReversePath};
use smtp_proto::dsn::{Action, Bounce, DsnError, Recipient, Returned};
use smtp_proto::reply::Reply;
use smtp_proto::status::EnhancedStatusCode;
use smtp_proto::trace::Timestamp;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let _ = one(Unstructured::new(data));
}

fn parse_with_prefix<'a>(prefix: &[u8], arg: &[u8], line: &'a mut Vec<u8>) -> Option<Command<'a>> {
    line.clear();
    line.extend_from_slice(prefix);
    line.extend_from_slice(arg);
    Command::parse(line).ok()
}

fn one(mut u: Unstructured<'_>) -> Result<()> {
    let flags: u16 = u.arbitrary()?;
    let (mail_arg, rcpt_arg, reply_wire): (&[u8], &[u8], &[u8]) =
        (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
    let max_returned: u16 = u.arbitrary()?;
    let original = u.take_rest();

    let (mut mail_line, mut rcpt_line) = (Vec::new(), Vec::new());
    let fallback_sender = ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap());
    let (sender, envid, ret) = match parse_with_prefix(b"MAIL FROM:", mail_arg, &mut mail_line) {
        Some(Command::Mail(m)) => (m.reverse_path, m.params.envid, m.params.ret),
        _ => (fallback_sender, None, None),
    };
    let fallback_rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap());
    let (rcpt, orcpt) = match parse_with_prefix(b"RCPT TO:", rcpt_arg, &mut rcpt_line) {
        Some(Command::Rcpt(r)) => (r.forward_path, r.params.orcpt),
        _ => (fallback_rcpt, None),
    };
    let fallback_reply = Reply::parse(b"550 5.1.1 no such user\r\n").unwrap();
    let reply = Reply::parse(reply_wire).unwrap_or(fallback_reply);

    let host = Domain::new("mx.example.org").unwrap();
    let remote = Domain::new("mx.example.net").unwrap();
    let token = Atom::new("Q1").unwrap();
    let date = Timestamp::new(1_795_723_722, 60).unwrap();

    let bounce = match Bounce::new(&host, &sender, date, &token) {
        Ok(b) => b,
        Err(e) => {
            match (&sender, e) {
                (ReversePath::Null, DsnError::NullSender) => {}
                (ReversePath::Mailbox(m), DsnError::Utf8(_)) if m.is_utf8() => {}
                (s, e) => panic!("Bounce::new({s:?}) refused with {e:?}"),
            }
            return Ok(());
        }
    };
    let mut bounce = bounce.arrival_date(date);
    if let Some(e) = &envid {
        bounce = bounce.envelope_id(e);
    }
    bounce = match flags & 3 {
        0 => bounce.ret(ret),
        1 => bounce.ret(Some(Ret::Full)),
        2 => bounce.ret(Some(Ret::Hdrs)),
        _ => bounce.ret(None),
    };
    if flags & 4 != 0 {
        bounce = bounce.max_returned_len(usize::from(max_returned));
    }

    // The action the reply stands for; a 2yz one as any of the three.
    let action = match reply.code().get() / 100 {
        5 => Action::Failed,
        4 if flags & 8 != 0 => Action::Failed,
        4 => Action::Delayed,
        2 => [Action::Delivered, Action::Relayed, Action::Expanded][usize::from(flags >> 4) % 3],
        _ => {
            let refused = Recipient::from_reply(&rcpt, Action::Failed, &reply);
            assert!(
                matches!(refused, Err(DsnError::NoStatus(c)) if c == reply.code()),
                "a {} reply gave {refused:?}",
                reply.code()
            );
            return Ok(());
        }
    };
    let mut recipient = match Recipient::from_reply(&rcpt, action, &reply) {
        Ok(r) => r,
        // The reply's enhanced code may be of another class than its code.
        Err(DsnError::StatusMismatch { .. }) => return Ok(()),
        Err(e) => panic!("from_reply({action:?}, {reply:?}) refused with {e:?}"),
    };
    if let Some(o) = &orcpt {
        recipient = recipient.original_recipient(o);
    }
    recipient = recipient.remote_mta(&remote).unwrap().last_attempt(date);
    if action == Action::Delayed {
        recipient = recipient.will_retry_until(date).unwrap();
    }
    bounce = bounce.recipient(recipient);
    if flags & 0x100 != 0 {
        let status = EnhancedStatusCode::parse(b"4.4.1").unwrap();
        let delayed = Recipient::new(&rcpt, Action::Delayed, status).unwrap();
        bounce = bounce.recipient(delayed.will_retry_until(date).unwrap());
    }

    let report = match bounce.write(original) {
        Ok(r) => r,
        // A UTF-8 sender or a recipient the header cannot carry.
        Err(DsnError::Utf8(_) | DsnError::Invalid(_)) => return Ok(()),
        Err(e) => panic!("write refused with {e:?}"),
    };
    check_report(
        report.as_bytes(),
        report.boundary(),
        report.returned(),
        original,
    );
    Ok(())
}

/// The header section of `message` as the writer returns it: the lines
/// before the first empty one (each with its line end), or all of it.
/// Written apart from the writer's own scan: the end is the earliest of
/// an empty first line, `LF CR LF` and `LF LF`.
fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") || message.starts_with(b"\n") {
        return &message[..0];
    }
    let crlf = memchr::memmem::find(message, b"\n\r\n");
    let lflf = memchr::memmem::find(message, b"\n\n");
    match (crlf, lflf) {
        (Some(a), Some(b)) => &message[..a.min(b) + 1],
        (Some(a), None) | (None, Some(a)) => &message[..a + 1],
        (None, None) => message,
    }
}

/// What part 3 holds of `returned`: the writer ends the part with CRLF,
/// which is the start of the delimiter after it (RFC 2046 §5.1.1), so a
/// final CRLF of the returned bytes is not part of the content.
fn in_part(returned: &[u8]) -> &[u8] {
    returned.strip_suffix(b"\r\n").unwrap_or(returned)
}

fn check_report(bytes: &[u8], boundary: &str, returned: Returned, original: &[u8]) {
    let delimiter = format!("\r\n--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--\r\n");
    assert!(
        !boundary.is_empty() && memchr::memmem::find(original, boundary.as_bytes()).is_none(),
        "boundary {boundary:?} occurs in the original"
    );
    assert!(
        bytes.ends_with(close.as_bytes()),
        "no closing delimiter at the end"
    );
    let body_end = bytes.len() - close.len();
    let starts: Vec<usize> = memchr::memmem::find_iter(&bytes[..body_end], delimiter.as_bytes())
        .map(|at| at + delimiter.len())
        .collect();
    let want_parts = if returned == Returned::Nothing { 2 } else { 3 };
    assert_eq!(starts.len(), want_parts, "parts of the report");

    // The header section, the first two parts and the header of the third:
    // everything the writer made itself.
    let (text, content) = if want_parts == 3 {
        let part = &bytes[starts[2]..body_end];
        let Some(blank) = memchr::memmem::find(part, b"\r\n\r\n") else {
            panic!("part 3 has no header");
        };
        (&bytes[..starts[2] + blank + 4], Some(&part[blank + 4..]))
    } else {
        (bytes, None)
    };
    assert!(text.is_ascii(), "8-bit octets in the report's own text");
    let Some(text) = text.strip_suffix(b"\r\n") else {
        panic!("the report's text does not end with CRLF");
    };
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r'), "a bare CR in the report's text");
        assert!(!line.contains(&0), "NUL in the report's text");
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    // Every LF of the text ends a CRLF pair.
    let lfs = memchr::memchr_iter(b'\n', text).count();
    let crlfs = memchr::memmem::find_iter(text, b"\r\n").count();
    assert_eq!(lfs, crlfs, "a bare LF in the report's text");

    match (returned, content) {
        (Returned::Full, Some(c)) => assert_eq!(c, in_part(original), "the returned message"),
        (Returned::Headers, Some(c)) => {
            assert_eq!(
                c,
                in_part(header_section(original)),
                "the returned header section"
            );
        }
        (Returned::Nothing, None) => {}
        (r, c) => panic!("{r:?} with part 3 {c:?}"),
    }
}
