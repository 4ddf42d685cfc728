//! Target `dsn_read`: bounces read back.
//!
//! The same input is used twice:
//!
//! - as it is, a whole message for `dsn::parse_report` and a status part
//!   for `dsn::parse_delivery_status`: nothing panics; a report read has
//!   at least one recipient, each with a `Final-Recipient` value holding
//!   no control character (but a tab), and no MTA name read holds one; a
//!   `Final-Recipient` read with U+FFFD for octets that are not UTF-8 is
//!   named in the problems; the byte
//!   ranges it gives lie in the input, the returned part after the status
//!   part; reading does not depend on CRLF or LF line ends (for an input
//!   with no CR outside CRLF, the status read with every CRLF made LF is
//!   the same); a date field read as a time writes a `date-time` that
//!   reads back as the same time;
//! - through [`arbitrary::Unstructured`], as the choices of a bounce the
//!   crate's writer writes: one to four recipients (an address from the
//!   input or a fixed one, ASCII or UTF-8; an action; a status of its
//!   class; now and then a remote reply as the `Diagnostic-Code`; now and
//!   then a `Last-Attempt-Date` and, when delayed, a `Will-Retry-Until`),
//!   an `ENVID`, now and then an `Arrival-Date`, `RET` and a size limit
//!   for the returned message, and the rest of the input as the original
//!   message; the dates at any second and zone offset of the years 1900
//!   to 9999. The report read back has the same recipients, actions and
//!   statuses in the same order, no problem (per-message or of a block),
//!   the diagnostics (but for the
//!   spaces folding may add), the same dates as times, the
//!   `ENVID` when it is printable, the global types when the writer chose
//!   them, the closing delimiter, and the returned part as
//!   `Report::returned` says, holding the original when it is whole (its
//!   bare CRs and LFs written CRLF).

use arbitrary::{Result, Unstructured};
use smtp_proto::command::{Atom, Domain, EnvId, ForwardPath, Mailbox, Ret, ReversePath, XText};
use smtp_proto::dsn::{
    parse_delivery_status, parse_report, Action, Bounce, Diagnostic, ReadError, Recipient, Returned,
};
use smtp_proto::reply::Reply;
use smtp_proto::status::{EnhancedStatusCode, StatusClass};
use smtp_proto::trace::Timestamp;

/// The fuzz target.
pub fn run(data: &[u8]) {
    read_raw(data);
    let _ = round_trip(Unstructured::new(data));
}

fn read_raw(data: &[u8]) {
    if let Ok(report) = parse_report(data) {
        assert!(
            !report.status.recipients.is_empty(),
            "a report without recipients"
        );
        let r = &report.status_range;
        assert!(
            r.start <= r.end && r.end <= data.len(),
            "status range {r:?}"
        );
        if let Some(returned) = &report.returned {
            let p = &returned.range;
            assert!(
                p.start <= p.end && p.end <= data.len(),
                "returned range {p:?}"
            );
            assert!(p.start >= r.end, "returned part before the status part");
        }
    }
    let status = parse_delivery_status(data);
    if let Ok(s) = &status {
        assert!(!s.recipients.is_empty(), "a status without recipients");
        dates_reread(s.message.arrival());
        let control = |c: char| c.is_control() && c != '\t';
        let mtas = [&s.message.reporting_mta, &s.message.received_from_mta];
        for m in mtas.into_iter().flatten() {
            assert!(
                !m.value.chars().any(control),
                "a control character in {m:?}"
            );
        }
        for r in &s.recipients {
            assert!(!r.final_recipient.value.is_empty(), "empty Final-Recipient");
            assert!(
                !r.final_recipient.value.chars().any(control),
                "a control character in {:?}",
                r.final_recipient
            );
            if s.problems.is_empty() {
                // A U+FFFD read for octets that are not UTF-8 is named: with
                // no problem, one read was written so.
                assert!(
                    !r.final_recipient.value.contains('\u{FFFD}')
                        || data.windows(3).any(|w| w == "\u{FFFD}".as_bytes()),
                    "a Final-Recipient changed without a problem"
                );
            }
            dates_reread(r.last_attempt());
            dates_reread(r.retry_until());
        }
    }
    let crs = memchr::memchr_iter(b'\r', data).count();
    let crlfs = memchr::memmem::find_iter(data, b"\r\n").count();
    if crs > 0 && crs == crlfs {
        let lf: Vec<u8> = data.iter().copied().filter(|&b| b != b'\r').collect();
        assert_eq!(parse_delivery_status(&lf), status, "CRLF and LF read apart");
    }
}

/// A date read as a time writes a `date-time` that reads back the same.
fn dates_reread(date: Option<std::result::Result<Timestamp, ReadError>>) {
    if let Some(Ok(t)) = date {
        assert_eq!(
            Timestamp::parse_date_time(&t.to_string()),
            Ok(t),
            "{t} reread"
        );
    }
}

/// A time of the years 1900 to 9999 from any numbers, when the offset
/// keeps it there.
fn stamp(choice: Option<(i64, i16)>) -> Option<Timestamp> {
    const FIRST: i64 = -2_208_988_800; // 1900-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let (secs, offset) = choice?;
    Timestamp::new(FIRST + secs.rem_euclid(LAST - FIRST + 1), offset % 6000).ok()
}

const ACTIONS: [Action; 5] = [
    Action::Failed,
    Action::Delayed,
    Action::Delivered,
    Action::Relayed,
    Action::Expanded,
];

fn class_of(action: Action, permanent: bool) -> StatusClass {
    match action {
        Action::Failed if permanent => StatusClass::PermanentFailure,
        Action::Failed | Action::Delayed => StatusClass::PersistentTransientFailure,
        _ => StatusClass::Success,
    }
}

fn round_trip(mut u: Unstructured<'_>) -> Result<()> {
    let flags: u16 = u.arbitrary()?;
    let count = 1 + usize::from(flags & 3);
    let mut paths = Vec::new();
    let mut choices = Vec::new();
    for i in 0..count {
        let local: &str = u.arbitrary()?;
        let (action, subject, detail): (u8, u16, u16) =
            (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
        let reply: &[u8] = u.arbitrary()?;
        let fallback = if flags & (0x10 << i) != 0 {
            format!("用户{i}@例子.广告")
        } else {
            format!("r{i}@example.net")
        };
        let mailbox = Mailbox::parse(&format!("{local}@example.net"))
            .map(|m| m.to_string())
            .unwrap_or(fallback);
        paths.push(mailbox);
        choices.push((
            ACTIONS[usize::from(action) % 5],
            subject % 1000,
            detail % 1000,
            reply,
        ));
    }
    let envid_raw: &[u8] = u.arbitrary()?;
    let max_returned: u16 = u.arbitrary()?;
    let arrival = stamp(u.arbitrary()?);
    let mut dates = Vec::new();
    for _ in 0..count {
        dates.push((stamp(u.arbitrary()?), stamp(u.arbitrary()?)));
    }
    let original = u.take_rest();

    let forward: Vec<ForwardPath<'_>> = paths
        .iter()
        .map(|p| ForwardPath::Mailbox(Mailbox::parse(p).expect("a mailbox written parses")))
        .collect();
    let host = Domain::new("mx.example.org").unwrap();
    let sender = ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap());
    let date = Timestamp::new(1_795_723_722, 60).unwrap();
    let envid = EnvId::new(XText::encode(envid_raw)).ok();
    let mut bounce = Bounce::new(&host, &sender, date, &Atom::new("Q1").unwrap()).unwrap();
    if let Some(e) = &envid {
        bounce = bounce.envelope_id(e);
    }
    if let Some(t) = arrival {
        bounce = bounce.arrival_date(t);
    }
    bounce = bounce.ret(match flags >> 8 & 3 {
        0 => None,
        1 => Some(Ret::Full),
        _ => Some(Ret::Hdrs),
    });
    if flags & 0x400 != 0 {
        bounce = bounce.max_returned_len(usize::from(max_returned));
    }
    let mut want = Vec::new();
    let mut want_dates = Vec::new();
    for ((path, &(action, subject, detail, reply)), &(last, retry)) in
        forward.iter().zip(&choices).zip(&dates)
    {
        let class = class_of(action, flags & 0x800 == 0);
        let status = EnhancedStatusCode::new(class, subject, detail).expect("in range");
        let from_reply = Reply::parse(reply)
            .ok()
            .and_then(|r| Some((Recipient::from_reply(path, action, &r).ok()?, r)));
        let recipient = match from_reply {
            Some((recipient, r)) => {
                let d = Diagnostic::from_reply(&r);
                want.push((recipient.status(), Some(d.text().to_string())));
                recipient
            }
            None => {
                want.push((status, None));
                Recipient::new(path, action, status).expect("the class goes with the action")
            }
        };
        let recipient = match last {
            Some(t) => recipient.last_attempt(t),
            None => recipient,
        };
        let (recipient, retry) = match retry.filter(|_| action == Action::Delayed) {
            Some(t) => (
                recipient
                    .will_retry_until(t)
                    .expect("a delayed recipient takes a retry date"),
                Some(t),
            ),
            None => (recipient, None),
        };
        want_dates.push((last, retry));
        bounce = bounce.recipient(recipient);
    }
    let report = bounce.write(original).expect("a bounce with recipients");
    let read = match parse_report(report.as_bytes()) {
        Ok(read) => read,
        Err(e) => panic!("the writer's report does not read: {e:?}"),
    };
    // Up to the end of the status part, no line of spaces alone (RFC 5322
    // §4.2: obsolete folding, which a reader may take for an empty line).
    for line in report.as_bytes()[..read.status_range.end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.is_empty() || !line.iter().all(|&b| b == b' ' || b == b'\t'),
            "a line of spaces alone in {}",
            String::from_utf8_lossy(report.as_bytes())
        );
    }
    assert!(read.complete, "no closing delimiter read");
    assert!(
        read.status.message.problems.is_empty(),
        "{:?}",
        read.status.message.problems
    );
    assert!(
        read.status.problems.is_empty(),
        "{:?} in {}",
        read.status.problems,
        String::from_utf8_lossy(report.as_bytes())
    );
    assert_eq!(read.global, report.is_global(), "global");
    let report_type = if report.is_global() {
        "global-delivery-status"
    } else {
        "delivery-status"
    };
    assert_eq!(read.report_type.as_deref(), Some(report_type));
    assert_eq!(read.status.message.arrival(), arrival.map(Ok), "arrival");
    assert_eq!(read.status.recipients.len(), count, "recipients read");
    for (i, r) in read.status.recipients.iter().enumerate() {
        let (status, diagnostic) = &want[i];
        // `\x{HEX}` in a UTF-8 address is decoded: compare those that
        // hold no backslash.
        if !paths[i].contains('\\') {
            assert_eq!(r.address(), paths[i], "address of recipient {i}");
        }
        assert_eq!(r.action, choices[i].0, "action of recipient {i}");
        let (last, retry) = want_dates[i];
        assert_eq!(r.last_attempt(), last.map(Ok), "last attempt of {i}");
        assert_eq!(r.retry_until(), retry.map(Ok), "retry until of {i}");
        assert_eq!(r.status, *status, "status of recipient {i}");
        let got = r.diagnostic_code.as_ref().map(|d| d.value.replace(' ', ""));
        assert_eq!(
            got,
            diagnostic.as_ref().map(|d| d.replace(' ', "")),
            "diagnostic {i}"
        );
    }
    if let Some(e) = &envid {
        let raw = e.as_xtext().decode();
        if raw.iter().all(|b| (0x20..0x7f).contains(b)) {
            let want = String::from_utf8_lossy(&raw);
            assert_eq!(
                read.status.message.original_envelope_id.as_deref(),
                Some(want.trim()),
                "ENVID"
            );
        }
    }
    match (report.returned(), &read.returned) {
        (Returned::Nothing, None) => {}
        (Returned::Full, Some(p)) => {
            assert!(!p.is_headers_only(), "a whole message read as headers");
            let content = &report.as_bytes()[p.range.clone()];
            let want = crate::dsn::crlf_line_ends(original);
            assert_eq!(
                content, want,
                "the returned message, byte for byte but CRLF"
            );
        }
        (Returned::Headers, Some(p)) => assert!(p.is_headers_only(), "headers read as whole"),
        (r, p) => panic!("returned {r:?} read as {p:?}"),
    }
    Ok(())
}
