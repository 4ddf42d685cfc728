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
//!   or `550` reply, so the rest of the input still counts; setting bits
//!   make the fallback sender and recipient UTF-8 mailboxes, and add a
//!   UTF-8 ORCPT in either of its forms, so internationalized reports are
//!   written often);
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
//!   nowhere in what part 3 holds of the original message;
//! - everything before the returned message (the header section and the
//!   first two parts) is UTF-8 text with CRLF line ends only, no ASCII
//!   control character and no line over 998 octets (RFC 5322 §2.1.1), so
//!   no peer value can break a header line or add one;
//! - that text is 7-bit unless the report is internationalized
//!   (`Report::is_global`), and its header section is 7-bit unless
//!   `Report::requires_smtputf8`, which is true exactly for a UTF-8
//!   sender, and then only the `To:` field holds 8-bit octets;
//! - the report is global when the sender or the recipient is a UTF-8
//!   mailbox or a returned header section holds UTF-8 (not ASCII, not
//!   other 8-bit octets), and is not
//!   when none of these nor a `utf-8` ORCPT is there; a global report
//!   has the types `message/global-delivery-status` and
//!   `message/global` or `message/global-headers`, and writes a UTF-8
//!   recipient as `Final-Recipient: utf-8; <mailbox>`; one that is not
//!   has `message/delivery-status` and `message/rfc822` or
//!   `text/rfc822-headers`;
//! - the report holds CR and LF only as CRLF, the returned original too;
//! - the third part holds the whole original (`Returned::Full`), its
//!   header section (`Returned::Headers`), byte for byte with its last
//!   line end but for its bare CRs and LFs, written CRLF, or is absent
//!   (`Returned::Nothing`), as the report says.

use arbitrary::{Result, Unstructured};
use smtp_proto::command::{
    Atom, Command, Domain, ForwardPath, Mailbox, Orcpt, Ret, ReversePath, Unitext, XText,
};
use smtp_proto::dsn::{Action, Bounce, DsnError, Recipient, Report, Returned};
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
    let fallback_sender = ReversePath::Mailbox(
        Mailbox::parse(if flags & 0x200 != 0 {
            "ñoño@españa.example"
        } else {
            "alice@example.org"
        })
        .unwrap(),
    );
    let (sender, envid, ret) = match parse_with_prefix(b"MAIL FROM:", mail_arg, &mut mail_line) {
        Some(Command::Mail(m)) => (m.reverse_path, m.params.envid, m.params.ret),
        _ => (fallback_sender, None, None),
    };
    let fallback_rcpt = ForwardPath::Mailbox(
        Mailbox::parse(if flags & 0x400 != 0 {
            "用户@例子.广告"
        } else {
            "bob@example.net"
        })
        .unwrap(),
    );
    let (rcpt, mut orcpt) = match parse_with_prefix(b"RCPT TO:", rcpt_arg, &mut rcpt_line) {
        Some(Command::Rcpt(r)) => (r.forward_path, r.params.orcpt),
        _ => (fallback_rcpt, None),
    };
    // A UTF-8 ORCPT where the RCPT gave none: the unitext or the xtext form.
    if orcpt.is_none() && flags & 0x800 != 0 {
        orcpt = Some(if flags & 0x1000 != 0 {
            Orcpt::utf8(Unitext::new("josé@example.com").unwrap()).unwrap()
        } else {
            let addr = XText::new("jos\\x{E9}@example.com").unwrap();
            Orcpt::new(Atom::new("utf-8").unwrap(), addr).unwrap()
        });
    }
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
        Err(e) => panic!("write refused with {e:?}"),
    };
    // The original as returned: every line end CRLF.
    let original = &crlf_line_ends(original);
    check_report(
        report.as_bytes(),
        report.boundary(),
        report.returned(),
        report.is_global(),
        original,
    );
    check_global(&report, &sender, &rcpt, orcpt.as_ref(), original);
    Ok(())
}

/// The choice of the internationalized types and of SMTPUTF8, and what
/// they mean for the bytes.
fn check_global(
    report: &Report,
    sender: &ReversePath<'_>,
    rcpt: &ForwardPath<'_>,
    orcpt: Option<&Orcpt<'_>>,
    original: &[u8],
) {
    let bytes = report.as_bytes();
    // UTF-8 header fields (RFC 6532); other 8-bit octets are none.
    let header = header_section(original);
    let utf8_header = report.returned() != Returned::Nothing
        && !header.is_ascii()
        && std::str::from_utf8(header).is_ok();
    let utf8_orcpt = orcpt.is_some_and(|o| o.addr_type().as_str().eq_ignore_ascii_case("utf-8"));
    assert_eq!(
        report.requires_smtputf8(),
        sender.is_utf8(),
        "requires_smtputf8"
    );
    if sender.is_utf8() || rcpt.is_utf8() || utf8_header {
        assert!(report.is_global(), "UTF-8 without the global types");
    }
    if report.is_global() {
        assert!(
            sender.is_utf8() || rcpt.is_utf8() || utf8_header || utf8_orcpt,
            "global types without UTF-8"
        );
    }
    // The header section: 7-bit but for the UTF-8 sender in To: (which
    // may be folded, at the spaces of a quoted local part).
    let head_end = memchr::memmem::find(bytes, b"\r\n\r\n").expect("a header section");
    let mut in_to = false;
    for line in bytes[..head_end].split(|&b| b == b'\n') {
        if !line.starts_with(b" ") {
            in_to = line.starts_with(b"To: <");
        }
        if !line.is_ascii() {
            assert!(report.requires_smtputf8(), "8-bit header without SMTPUTF8");
            assert!(in_to, "8-bit in {line:?}");
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let (status_type, returned_types): (&str, &[&str]) = if report.is_global() {
        (
            "\r\nContent-Type: message/global-delivery-status\r\n",
            &[
                "\r\nContent-Type: message/global\r\n",
                "\r\nContent-Type: message/global-headers\r\n",
            ],
        )
    } else {
        (
            "\r\nContent-Type: message/delivery-status\r\n",
            &[
                "\r\nContent-Type: message/rfc822\r\n",
                "\r\nContent-Type: text/rfc822-headers\r\n",
            ],
        )
    };
    let boundary_line = format!("\r\n--{}\r\n", report.boundary());
    let part = |n: usize| {
        let at = text
            .match_indices(&boundary_line)
            .nth(n)
            .map(|(at, _)| at)?;
        Some(&text[at + boundary_line.len() - 2..])
    };
    assert!(
        part(1).is_some_and(|p| p.starts_with(status_type)),
        "part 2 is not {status_type:?}"
    );
    if report.returned() != Returned::Nothing {
        let want = if report.returned() == Returned::Full {
            returned_types[0]
        } else {
            returned_types[1]
        };
        assert!(
            part(2).is_some_and(|p| p.starts_with(want)),
            "part 3 is not {want:?}"
        );
    }
    if let ForwardPath::Mailbox(m) = rcpt {
        if m.is_utf8() {
            let part2 = part(1).and_then(|p| p.split(&boundary_line).next());
            let status = part2.unwrap_or_default().replace("\r\n ", " ");
            let want = format!("\r\nFinal-Recipient: utf-8; {m}\r\n");
            assert!(status.contains(&want), "no {want:?}");
        }
    }
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

/// `bytes` with each CR or LF outside a CRLF pair made CRLF.
pub(crate) fn crlf_line_ends(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut cr = false;
    for &b in bytes {
        match b {
            b'\n' if cr => out.push(b'\n'),
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ if cr => {
                out.push(b'\n');
                if b != b'\r' {
                    out.push(b);
                }
            }
            _ if b != b'\r' => out.push(b),
            _ => {}
        }
        if b == b'\r' {
            out.push(b'\r');
        }
        cr = b == b'\r';
    }
    if cr {
        out.push(b'\n');
    }
    out
}

fn check_report(bytes: &[u8], boundary: &str, returned: Returned, global: bool, original: &[u8]) {
    // CR and LF only as CRLF, everywhere (RFC 5322 §2.3, RFC 5321 §2.3.8).
    let crs = memchr::memchr_iter(b'\r', bytes).count();
    let lfs = memchr::memchr_iter(b'\n', bytes).count();
    let pairs = memchr::memmem::find_iter(bytes, b"\r\n").count();
    assert_eq!((crs, lfs), (pairs, pairs), "a bare CR or LF in the report");
    let delimiter = format!("\r\n--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--\r\n");
    // The boundary occurs in none of the parts (RFC 2046 §5.1.1): in what
    // part 3 holds of the original, the rest of it not being sent.
    let returned_content = match returned {
        Returned::Full => original,
        Returned::Headers => header_section(original),
        _ => &[][..],
    };
    assert!(
        !boundary.is_empty()
            && memchr::memmem::find(returned_content, boundary.as_bytes()).is_none(),
        "boundary {boundary:?} occurs in the returned original"
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
    assert!(
        std::str::from_utf8(text).is_ok(),
        "the report's own text is not UTF-8"
    );
    assert!(
        global || text.is_ascii(),
        "8-bit octets in the own text of a report that is not global"
    );
    let Some(text) = text.strip_suffix(b"\r\n") else {
        panic!("the report's text does not end with CRLF");
    };
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r'), "a bare CR in the report's text");
        assert!(!line.contains(&0), "NUL in the report's text");
        assert!(
            !line.iter().any(|&b| b < 0x20 || b == 0x7f),
            "a control character in the report's text"
        );
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    // Every LF of the text ends a CRLF pair.
    let lfs = memchr::memchr_iter(b'\n', text).count();
    let crlfs = memchr::memmem::find_iter(text, b"\r\n").count();
    assert_eq!(lfs, crlfs, "a bare LF in the report's text");

    match (returned, content) {
        (Returned::Full, Some(c)) => assert_eq!(c, original, "the returned message"),
        (Returned::Headers, Some(c)) => {
            assert_eq!(c, header_section(original), "the returned header section");
        }
        (Returned::Nothing, None) => {}
        (r, c) => panic!("{r:?} with part 3 {c:?}"),
    }
}
