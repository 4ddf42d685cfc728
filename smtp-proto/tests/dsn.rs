//! Delivery status notifications (`smtp_proto::dsn`): the bytes written,
//! the choices of part 3, the encodings of the DSN fields, folding, the
//! boundary, and the values refused.

mod dsn_support;
use dsn_support::{at, host, rcpt, sender};

use smtp_proto::command::{
    Atom, BodyType, Domain, EnvId, ForwardPath, Mailbox, Notify, Orcpt, Ret, ReversePath, Unitext,
    XText,
};
use smtp_proto::dsn::{
    should_notify, Action, Bounce, Diagnostic, DsnError, Recipient, Report, Returned,
};
use smtp_proto::reply::{OwnedReply, Reply};
use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use smtp_proto::trace::Timestamp;

const MESSAGE: &[u8] = b"From: <alice@example.org>\r\n\
To: <bob@example.net>\r\n\
Subject: lunch\r\n\
\r\n\
See you at noon.\r\n";

fn when(secs: i64) -> Timestamp {
    at(secs, 0)
}

fn token() -> Atom<'static> {
    Atom::new("Q1").unwrap()
}

fn text(report: &Report) -> String {
    String::from_utf8(report.as_bytes().to_vec()).unwrap()
}

/// The parts between the boundary lines: (header, body) of each.
fn parts(report: &Report) -> Vec<(String, String)> {
    let t = text(report);
    let delimiter = format!("\r\n--{}", report.boundary());
    let mut pieces: Vec<&str> = t.split(&delimiter).collect();
    assert_eq!(pieces.pop(), Some("--\r\n"), "close delimiter last");
    pieces
        .into_iter()
        .skip(1)
        .map(|p| {
            let p = p.strip_prefix("\r\n").unwrap();
            let (head, body) = p.split_once("\r\n\r\n").unwrap_or((p, ""));
            (head.to_string(), body.to_string())
        })
        .collect()
}

/// The blocks of the `message/delivery-status` part (or
/// `message/global-delivery-status`, as the report says), as (name,
/// value) fields with the folding undone.
fn status_blocks(report: &Report) -> Vec<Vec<(String, String)>> {
    let parts = parts(report);
    let (head, body) = &parts[1];
    if report.is_global() {
        assert!(
            head == "Content-Type: message/global-delivery-status"
                || head
                    == "Content-Type: message/global-delivery-status\r\n\
                        Content-Transfer-Encoding: 8bit",
            "{head:?}"
        );
    } else {
        assert_eq!(head, "Content-Type: message/delivery-status");
    }
    body.split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            block
                .replace("\r\n ", " ")
                .replace("\r\n\t", "\t")
                .split("\r\n")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (n, v) = l.split_once(": ").unwrap();
                    (n.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn get<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn known_answer_for_one_failed_recipient() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let remote = Domain::new("mx.example.net").unwrap();
    let reply = Reply::parse(b"550 5.1.1 <bob@example.net>: No such user\r\n").unwrap();
    let write = || {
        Bounce::new(&host, &sender, when(1_795_723_722), &token())
            .unwrap()
            .arrival_date(when(1_795_723_000))
            .recipient(
                Recipient::from_reply(&bob, Action::Failed, &reply)
                    .unwrap()
                    .remote_mta(&remote)
                    .unwrap()
                    .last_attempt(when(1_795_723_700)),
            )
            .write(MESSAGE)
            .unwrap()
    };
    let report = write();
    let want = "From: Delivery Reports <MAILER-DAEMON@mx.example.org>\r\n\
To: <alice@example.org>\r\n\
Subject: Delivery failed: your message is returned\r\n\
Date: Thu, 26 Nov 2026 20:08:42 +0000\r\n\
Message-ID: <Q1@mx.example.org>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n \
boundary=\"=_smtp-proto-dsn-0\"\r\n\
\r\n\
A delivery status report in MIME multipart/report form.\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Delivery report from mx.example.org.\r\n\
\r\n\
Your message could not be delivered to one or more of its recipients. The\r\n\
details are below; your message is returned in the last part.\r\n\
\r\n\
<bob@example.net>: delivery failed\r\n    \
mx.example.net replied: 550 5.1.1 <bob@example.net>: No such user\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.org\r\n\
Arrival-Date: Thu, 26 Nov 2026 19:56:40 +0000\r\n\
\r\n\
Final-Recipient: rfc822; bob@example.net\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; mx.example.net\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: No such user\r\n\
Last-Attempt-Date: Thu, 26 Nov 2026 20:08:20 +0000\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: <alice@example.org>\r\n\
To: <bob@example.net>\r\n\
Subject: lunch\r\n\
\r\n\
See you at noon.\r\n\
\r\n\
--=_smtp-proto-dsn-0--\r\n";
    assert_eq!(text(&report), want);
    assert_eq!(report.body_type(), BodyType::SevenBit);
    assert_eq!(report.returned(), Returned::Full);
    assert_eq!(report.boundary(), "=_smtp-proto-dsn-0");
    // The same values write the same bytes.
    let again = write();
    assert_eq!(again, report);
}

/// A bounce from `host` to `sender`, dated 0, with the test token.
fn bounce<'a>(host: &'a Domain<'a>, sender: &'a ReversePath<'a>) -> Bounce<'a> {
    Bounce::new(host, sender, when(0), &token()).unwrap()
}

/// 5.1.1, bad destination mailbox.
fn bad_mailbox() -> EnhancedStatusCode {
    EnhancedStatusCode::new(StatusClass::PermanentFailure, 1, 1).unwrap()
}

/// [`bounce`] with one recipient, `bob`, failed with [`bad_mailbox`].
fn failed_bounce<'a>(
    host: &'a Domain<'a>,
    sender: &'a ReversePath<'a>,
    bob: &'a ForwardPath<'a>,
) -> Bounce<'a> {
    bounce(host, sender).recipient(Recipient::new(bob, Action::Failed, bad_mailbox()).unwrap())
}

#[test]
fn ret_full_returns_the_message_and_ret_hdrs_its_header_section() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let header = "From: <alice@example.org>\r\nTo: <bob@example.net>\r\nSubject: lunch";

    for ret in [Some(Ret::Full), None] {
        let report = failed_bounce(&host, &sender, &bob)
            .ret(ret)
            .write(MESSAGE)
            .unwrap();
        let parts = parts(&report);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].0, "Content-Type: message/rfc822");
        assert_eq!(
            parts[2].1,
            format!("{header}\r\n\r\nSee you at noon.\r\n"),
            "{ret:?}"
        );
        assert_eq!(report.returned(), Returned::Full);
    }

    let report = failed_bounce(&host, &sender, &bob)
        .ret(Some(Ret::Hdrs))
        .write(MESSAGE)
        .unwrap();
    let parts = parts(&report);
    assert_eq!(parts[2].0, "Content-Type: text/rfc822-headers");
    assert_eq!(parts[2].1, format!("{header}\r\n"));
    let whole = text(&report);
    assert!(whole.contains(&format!(
        "Content-Type: text/rfc822-headers\r\n\r\n{header}\r\n\r\n--="
    )));
    assert!(!whole.contains("See you at noon."));
    assert_eq!(report.returned(), Returned::Headers);
    // The text part says what came back.
    let said = |whole: &str| whole.replace("\r\n", " ");
    assert!(said(&whole).contains("the header of your message is returned in the last part"));
    assert!(!said(&whole).contains("below; your message is returned"));
}

#[test]
fn size_limit_and_reports_without_a_failure_return_less() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    // Over the limit: the header section only.
    let report = failed_bounce(&host, &sender, &bob)
        .ret(Some(Ret::Full))
        .max_returned_len(MESSAGE.len() - 1)
        .write(MESSAGE)
        .unwrap();
    assert_eq!(report.returned(), Returned::Headers);
    assert!(!text(&report).contains("See you at noon."));
    // Even the header section over it: no third part.
    let report = failed_bounce(&host, &sender, &bob)
        .max_returned_len(10)
        .write(MESSAGE)
        .unwrap();
    assert_eq!(report.returned(), Returned::Nothing);
    assert_eq!(parts(&report).len(), 2);
    assert!(!text(&report).contains("Subject: lunch"));
    assert!(!text(&report).contains("returned in the last part"));
    // A delay report returns the header section, RET=FULL or not.
    let reply = Reply::parse(b"451 4.4.1 No answer\r\n").unwrap();
    let report = bounce(&host, &sender)
        .ret(Some(Ret::Full))
        .recipient(Recipient::from_reply(&bob, Action::Delayed, &reply).unwrap())
        .write(MESSAGE)
        .unwrap();
    assert_eq!(report.returned(), Returned::Headers);
    assert!(text(&report).contains("Subject: Delivery delayed: your message is still queued\r\n"));
}

#[test]
fn failed_and_delayed_recipients_each_get_a_block() {
    let (host, sender) = (host(), sender());
    let (bob, carol) = (rcpt("bob@example.net"), rcpt("carol@example.com"));
    let remote = Domain::new("mx.example.net").unwrap();
    let failed = OwnedReply::with_enhanced(
        ReplyCode::MAILBOX_UNAVAILABLE,
        Some(EnhancedStatusCode::BAD_MAILBOX),
        "No such user",
    )
    .unwrap();
    let later = Reply::parse(b"421 Too busy, try later\r\n").unwrap();
    let report = bounce(&host, &sender)
        .recipient(
            Recipient::from_owned_reply(&bob, Action::Failed, &failed)
                .unwrap()
                .remote_mta(&remote)
                .unwrap(),
        )
        .recipient(
            Recipient::from_reply(&carol, Action::Delayed, &later)
                .unwrap()
                .last_attempt(when(3_600))
                .will_retry_until(when(432_000))
                .unwrap(),
        )
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        get(&blocks[0], "Reporting-MTA"),
        Some("dns; mx.example.org")
    );
    assert_eq!(get(&blocks[0], "Original-Envelope-Id"), None);

    let b = &blocks[1];
    assert_eq!(get(b, "Final-Recipient"), Some("rfc822; bob@example.net"));
    assert_eq!(get(b, "Action"), Some("failed"));
    assert_eq!(get(b, "Status"), Some("5.1.1"));
    assert_eq!(get(b, "Remote-MTA"), Some("dns; mx.example.net"));
    assert_eq!(
        get(b, "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 No such user")
    );
    assert_eq!(get(b, "Will-Retry-Until"), None);
    assert_eq!(get(b, "Original-Recipient"), None);

    let c = &blocks[2];
    assert_eq!(get(c, "Final-Recipient"), Some("rfc822; carol@example.com"));
    assert_eq!(get(c, "Action"), Some("delayed"));
    // No enhanced code in the reply: the class of 421, X.0.0.
    assert_eq!(get(c, "Status"), Some("4.0.0"));
    assert_eq!(
        get(c, "Diagnostic-Code"),
        Some("smtp; 421 Too busy, try later")
    );
    assert_eq!(
        get(c, "Last-Attempt-Date"),
        Some("Thu, 1 Jan 1970 01:00:00 +0000")
    );
    assert_eq!(
        get(c, "Will-Retry-Until"),
        Some("Tue, 6 Jan 1970 00:00:00 +0000")
    );
    assert_eq!(get(c, "Remote-MTA"), None);

    let human = &parts(&report)[0].1;
    assert!(human.contains(
        "<bob@example.net>: delivery failed\r\n    mx.example.net replied: 550 5.1.1 No such user\r\n"
    ));
    assert!(human.contains(
        "<carol@example.com>: delivery delayed, still trying\r\n    \
         Will retry until Tue, 6 Jan 1970 00:00:00 +0000.\r\n    \
         The reply was: 421 Too busy, try later\r\n"
    ));
    // A failure among them: the failure subject, the whole message back.
    assert!(text(&report).contains("Subject: Delivery failed: your message is returned\r\n"));
    assert_eq!(report.returned(), Returned::Full);
}

#[test]
fn orcpt_and_envid_are_written_decoded_from_xtext() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let envid = EnvId::new(XText::new("QQ+2B314159").unwrap()).unwrap();
    let orcpt = Orcpt::new(
        Atom::new("rfc822").unwrap(),
        XText::new("bob+2Balias@example.net").unwrap(),
    )
    .unwrap();
    // Decoded, this one holds CR LF: it stays xtext.
    let crlf_envid = EnvId::new(XText::encode(b"id\r\nBcc: x@example.com")).unwrap();
    let crlf_orcpt = Orcpt::new(
        Atom::new("rfc822").unwrap(),
        XText::encode(b"a\r\nBcc: x@example.com"),
    )
    .unwrap();
    let utf8_orcpt = Orcpt::utf8(Unitext::new("用户@example.com").unwrap()).unwrap();
    let failed = |to| Recipient::new(to, Action::Failed, bad_mailbox()).unwrap();

    let report = bounce(&host, &sender)
        .envelope_id(&envid)
        .recipient(failed(&bob).original_recipient(&orcpt))
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(get(&blocks[0], "Original-Envelope-Id"), Some("QQ+314159"));
    assert_eq!(
        get(&blocks[1], "Original-Recipient"),
        Some("rfc822; bob+alias@example.net")
    );
    // Original-Envelope-Id comes first in its block (RFC 3464 §2.2).
    assert_eq!(blocks[0][0].0, "Original-Envelope-Id");

    let report = bounce(&host, &sender)
        .envelope_id(&crlf_envid)
        .recipient(failed(&bob).original_recipient(&crlf_orcpt))
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[0], "Original-Envelope-Id"),
        Some("id+0D+0ABcc:+20x@example.com")
    );
    assert_eq!(
        get(&blocks[1], "Original-Recipient"),
        Some("rfc822; a+0D+0ABcc:+20x@example.com")
    );
    assert!(!text(&report).contains("\r\nBcc:"));
    assert!(report.as_bytes().is_ascii());
    assert!(!report.is_global());

    // A UTF-8 ORCPT makes the report internationalized: the address in
    // UTF-8 (RFC 6533 utf-8-address), whichever form it was sent in.
    let report = bounce(&host, &sender)
        .envelope_id(&crlf_envid)
        .recipient(failed(&bob).original_recipient(&crlf_orcpt))
        .recipient(failed(&bob).original_recipient(&utf8_orcpt))
        .write(MESSAGE)
        .unwrap();
    assert!(report.is_global());
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Original-Recipient"),
        Some("rfc822; a+0D+0ABcc:+20x@example.com")
    );
    assert_eq!(
        get(&blocks[2], "Original-Recipient"),
        Some("utf-8; 用户@example.com")
    );
    assert!(!text(&report).contains("\r\nBcc:"));
}

#[test]
fn a_utf8_recipient_makes_a_global_report_without_smtputf8() {
    let (host, sender) = (host(), sender());
    let jose = rcpt("josé+x@example.com");
    let report = bounce(&host, &sender)
        .recipient(Recipient::new(&jose, Action::Failed, bad_mailbox()).unwrap())
        .write(MESSAGE)
        .unwrap();
    assert!(report.is_global());
    // The envelope and the header are ASCII: 8BITMIME is enough.
    assert!(!report.requires_smtputf8());
    assert_eq!(report.body_type(), BodyType::EightBitMime);
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Final-Recipient"),
        Some("utf-8; josé+x@example.com")
    );
    let parts = parts(&report);
    assert_eq!(
        parts[0].0,
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
    );
    assert!(parts[0].1.contains("<josé+x@example.com>: delivery failed"));
    // The original is returned as message/global, 7-bit as it is.
    assert_eq!(parts[2].0, "Content-Type: message/global");
    let whole = text(&report);
    let (head, _) = whole.split_once("\r\n\r\n").unwrap();
    assert!(head.is_ascii());
    assert!(head.ends_with("\r\nContent-Transfer-Encoding: 8bit"));
}

#[test]
fn a_long_diagnostic_is_folded_and_unfolds_to_the_reply() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let lines: Vec<String> = (0..12)
        .map(|i| format!("line {i} of a policy explanation that goes on for a while"))
        .collect();
    let reply = OwnedReply::from_lines(
        ReplyCode::MAILBOX_UNAVAILABLE,
        lines
            .iter()
            .map(|l| (Some(EnhancedStatusCode::NOT_AUTHORIZED), l.as_str())),
    )
    .unwrap()
    .unwrap();
    // And one line with a run of 600 octets and no space, twice over 78.
    let mut long = reply.clone();
    long.push_line(None, "y".repeat(480)).unwrap();
    let report = bounce(&host, &sender)
        .recipient(Recipient::from_owned_reply(&bob, Action::Failed, &reply).unwrap())
        .recipient(Recipient::from_owned_reply(&bob, Action::Failed, &long).unwrap())
        .write(MESSAGE)
        .unwrap();
    let whole = text(&report);
    for line in whole.split("\r\n") {
        assert!(line.len() <= 998);
    }
    let start = whole.find("Diagnostic-Code: ").unwrap();
    let field: Vec<&str> = whole[start..]
        .split("\r\n")
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
        .map(|(_, l)| l)
        .collect();
    assert!(field.len() > 5, "{field:?}");
    for line in &field {
        assert!(line.len() <= 78, "{line:?}");
    }
    let want = format!("smtp; 550 5.7.1 {}", lines.join(" "));
    let blocks = status_blocks(&report);
    assert_eq!(get(&blocks[1], "Diagnostic-Code"), Some(want.as_str()));
    // The long run fits in 998: it is not cut, only put on its own line.
    let want_long = format!("{want} {}", "y".repeat(480));
    assert_eq!(get(&blocks[2], "Diagnostic-Code"), Some(want_long.as_str()));
    assert!(whole.contains(&format!("\r\n {}\r\n", "y".repeat(480))));
    // In the human part, wrapped and indented.
    for line in parts(&report)[0].1.split("\r\n") {
        assert!(
            line.len() <= 78 || !line.trim_start().contains(' '),
            "{line:?}"
        );
    }
}

#[test]
fn the_boundary_is_one_the_parts_do_not_hold() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let original = b"Subject: boundaries\r\n\r\n--=_smtp-proto-dsn-0\r\n\
--=_smtp-proto-dsn-1--\r\nnot a part\r\n";
    // The reply text holds the next candidate.
    let reply = Reply::parse(b"550 5.7.1 refused =_smtp-proto-dsn-2\r\n").unwrap();
    let report = bounce(&host, &sender)
        .recipient(Recipient::from_reply(&bob, Action::Failed, &reply).unwrap())
        .write(original)
        .unwrap();
    assert_eq!(report.boundary(), "=_smtp-proto-dsn-3");
    let whole = text(&report);
    assert!(whole.contains("boundary=\"=_smtp-proto-dsn-3\""));
    // Three opening delimiters and the closing one, nothing else.
    let delimiters = whole
        .split("\r\n")
        .filter(|l| l.starts_with("--=_smtp-proto-dsn-3"))
        .count();
    assert_eq!(delimiters, 4);
    let parts = parts(&report);
    assert_eq!(parts.len(), 3);
    assert!(parts[2]
        .1
        .contains("--=_smtp-proto-dsn-0\r\n--=_smtp-proto-dsn-1--\r\nnot a part"));
}

#[test]
fn values_that_could_add_header_lines_are_refused_or_escaped() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let b = || failed_bounce(&host, &sender, &bob);
    for bad in [
        "Oops\r\nBcc: x@example.com",
        "Oops\nX: y",
        "tab\there",
        "8-bit é",
    ] {
        assert_eq!(b().subject(bad).unwrap_err(), DsnError::Invalid("Subject"));
    }
    assert_eq!(b().subject("  ").unwrap_err(), DsnError::Empty("Subject"));
    assert_eq!(
        b().subject(&"s".repeat(251)).unwrap_err(),
        DsnError::TooLong("Subject")
    );
    for bad in [
        "<a@example.org>\r\nBcc: x@example.com",
        "a@example.org\r\n",
        "no-at-sign",
        "a..b@example.org",
        "a@[1.2.3.4\r\n]",
        "<a b@example.org>",
    ] {
        assert_eq!(
            b().message_id(bad).unwrap_err(),
            DsnError::Invalid("Message-ID"),
            "{bad:?}"
        );
    }
    // A reply cannot hold CR or LF; other control characters and 8-bit
    // text are written as \x{HEX}.
    assert!(OwnedReply::new(ReplyCode::MAILBOX_UNAVAILABLE, "a\r\nBcc: x").is_err());
    let nasty = Reply::parse(b"550 5.1.1 a\x0bb\x1b[31m \xff Bcc: x\r\n").unwrap();
    let report = b()
        .recipient(Recipient::from_reply(&bob, Action::Failed, &nasty).unwrap())
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[2], "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 a\\x{B}b\\x{1B}[31m \\x{FFFD} Bcc: x")
    );
    // Every header line of the bounce is one the writer made.
    let whole = text(&report);
    let (head, _) = whole.split_once("\r\n\r\n").unwrap();
    let names: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_once(':').unwrap().0)
        .collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "MIME-Version",
            "Content-Type"
        ]
    );
    // A host name in U-labels, where only A-labels go.
    let utf8_host = Domain::new("correo.españa.example").unwrap();
    assert_eq!(
        Bounce::new(&utf8_host, &sender, when(0), &token()).unwrap_err(),
        DsnError::Utf8("Reporting-MTA")
    );
    assert_eq!(
        Recipient::new(&bob, Action::Failed, bad_mailbox())
            .unwrap()
            .remote_mta(&utf8_host)
            .unwrap_err(),
        DsnError::Utf8("Remote-MTA")
    );
    assert_eq!(
        b().received_from_mta(&utf8_host).unwrap_err(),
        DsnError::Utf8("Received-From-MTA")
    );
    // A token too long for a Message-ID line.
    let long = Atom::new("t".repeat(240)).unwrap();
    assert_eq!(
        Bounce::new(&host, &sender, when(0), &long).unwrap_err(),
        DsnError::TooLong("Message-ID")
    );
}

#[test]
fn no_bounce_to_the_null_sender() {
    let host = host();
    assert_eq!(
        Bounce::new(&host, &ReversePath::Null, when(0), &token()).unwrap_err(),
        DsnError::NullSender
    );
}

#[test]
fn statuses_must_go_with_their_actions() {
    let bob = rcpt("bob@example.net");
    let ok = EnhancedStatusCode::SUCCESS;
    let temp = EnhancedStatusCode::TRANSIENT_SYSTEM;
    let perm = EnhancedStatusCode::BAD_MAILBOX;
    for (action, status, fine) in [
        (Action::Failed, perm, true),
        (Action::Failed, temp, true),
        (Action::Failed, ok, false),
        (Action::Delayed, temp, true),
        (Action::Delayed, perm, false),
        (Action::Delivered, ok, true),
        (Action::Relayed, ok, true),
        (Action::Expanded, ok, true),
        (Action::Delivered, perm, false),
        (Action::Relayed, temp, false),
    ] {
        let r = Recipient::new(&bob, action, status);
        if fine {
            assert!(r.is_ok(), "{action} {status}");
        } else {
            assert_eq!(
                r.unwrap_err(),
                DsnError::StatusMismatch { action, status },
                "{action} {status}"
            );
        }
    }
    let go_on = Reply::parse(b"354 go on\r\n").unwrap();
    assert_eq!(
        Recipient::from_reply(&bob, Action::Failed, &go_on).unwrap_err(),
        DsnError::NoStatus(ReplyCode::START_MAIL_INPUT)
    );
    assert_eq!(
        Recipient::new(&bob, Action::Failed, perm)
            .unwrap()
            .will_retry_until(when(0))
            .unwrap_err(),
        DsnError::RetryNotDelayed
    );
    let (host, sender) = (host(), sender());
    assert_eq!(
        bounce(&host, &sender).write(MESSAGE).unwrap_err(),
        DsnError::NoRecipients
    );
    // A success report.
    let report = bounce(&host, &sender)
        .recipient(Recipient::new(&bob, Action::Delivered, ok).unwrap())
        .write(MESSAGE)
        .unwrap();
    assert!(text(&report).contains("Subject: Delivery report: your message was delivered\r\n"));
    assert_eq!(report.returned(), Returned::Headers);
}

#[test]
fn eight_bit_and_international_originals() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let body8 = "Subject: hi\r\n\r\nGrüße\r\n".as_bytes();
    let report = failed_bounce(&host, &sender, &bob).write(body8).unwrap();
    assert_eq!(report.body_type(), BodyType::EightBitMime);
    let whole = String::from_utf8_lossy(report.as_bytes()).into_owned();
    assert!(whole.contains("MIME-Version: 1.0\r\nContent-Type: multipart/report"));
    let (head, _) = whole.split_once("\r\n\r\n").unwrap();
    assert!(head.ends_with("\r\nContent-Transfer-Encoding: 8bit"));
    assert!(whole.contains(
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: hi"
    ));
    // RET=HDRS: the header section is 7-bit, so is the bounce.
    let report = failed_bounce(&host, &sender, &bob)
        .ret(Some(Ret::Hdrs))
        .write(body8)
        .unwrap();
    assert_eq!(report.body_type(), BodyType::SevenBit);
    assert!(report.as_bytes().is_ascii());

    // A header with UTF-8 (RFC 6532): message/global, message/global-headers.
    let intl = "Subject: Grüße\r\n\r\nHallo\r\n".as_bytes();
    let report = failed_bounce(&host, &sender, &bob).write(intl).unwrap();
    assert!(String::from_utf8_lossy(report.as_bytes()).contains("Content-Type: message/global\r\n"));
    let report = failed_bounce(&host, &sender, &bob)
        .ret(Some(Ret::Hdrs))
        .write(intl)
        .unwrap();
    assert!(String::from_utf8_lossy(report.as_bytes())
        .contains("Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n"));

    // NUL: binary.
    let report = failed_bounce(&host, &sender, &bob)
        .write(b"Subject: x\r\n\r\nbo\0dy\r\n")
        .unwrap();
    assert_eq!(report.body_type(), BodyType::BinaryMime);
    assert!(text(&report).contains("Content-Transfer-Encoding: binary\r\n"));
}

#[test]
fn an_8bit_header_that_is_not_utf8_is_returned_as_message_rfc822() {
    // message/global and message/global-headers hold UTF-8 header fields
    // (RFC 6532 §3.7, RFC 6533 §6): a Latin-1 header is none, and makes no
    // internationalized report; it goes back as it is, in 8-bit.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let latin1 = b"Subject: caf\xe9\r\n\r\nhi\r\n";
    for (ret, part3) in [
        (Ret::Full, "Content-Type: message/rfc822"),
        (Ret::Hdrs, "Content-Type: text/rfc822-headers"),
    ] {
        let report = failed_bounce(&host, &sender, &bob)
            .ret(Some(ret))
            .write(latin1)
            .unwrap();
        assert!(!report.is_global(), "{ret:?}");
        assert_eq!(report.body_type(), BodyType::EightBitMime);
        let bytes = report.as_bytes();
        let find = |s: &str| memmem(bytes, s.as_bytes());
        assert!(find("report-type=delivery-status;"));
        assert!(find("Content-Type: message/delivery-status\r\n"));
        let at = bytes
            .windows(part3.len())
            .position(|w| w == part3.as_bytes())
            .expect("part 3");
        let tail = &bytes[at + part3.len()..];
        assert!(
            tail.starts_with(b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: caf\xe9\r\n")
        );
    }
    // A UTF-8 one still does.
    let report = failed_bounce(&host, &sender, &bob)
        .write("Subject: caf\u{e9}\r\n\r\nhi\r\n".as_bytes())
        .unwrap();
    assert!(report.is_global());
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn bare_line_ends_of_the_original_are_written_crlf() {
    // RFC 5322 §2.1, §2.3 and RFC 5321 §2.3.8: CR and LF only as CRLF.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let original = b"Subject: x\nX-Old: mac\rX-Mixed: y\r\n\nbody\nline\r\rend";
    let report = failed_bounce(&host, &sender, &bob).write(original).unwrap();
    let bytes = report.as_bytes();
    let crs = bytes.iter().filter(|&&b| b == b'\r').count();
    let lfs = bytes.iter().filter(|&&b| b == b'\n').count();
    let crlfs = bytes.windows(2).filter(|w| w == b"\r\n").count();
    assert_eq!((crs, lfs), (crlfs, crlfs), "a bare CR or LF in the bounce");
    let whole = "Subject: x\r\nX-Old: mac\r\nX-Mixed: y\r\n\r\nbody\r\nline\r\n\r\nend";
    assert_eq!(parts(&report)[2].1, whole);
    // Nothing else calls for BINARYMIME.
    assert_eq!(report.body_type(), BodyType::SevenBit);
    assert!(!text(&report).contains("Content-Transfer-Encoding"));
    // The header section is cut where a reader of the CRLF form cuts it.
    let report = failed_bounce(&host, &sender, &bob)
        .ret(Some(Ret::Hdrs))
        .write(original)
        .unwrap();
    assert_eq!(report.returned(), Returned::Headers);
    assert_eq!(
        parts(&report)[2].1,
        "Subject: x\r\nX-Old: mac\r\nX-Mixed: y\r\n"
    );
    // The size limit counts what is written.
    let report = failed_bounce(&host, &sender, &bob)
        .max_returned_len(original.len())
        .write(original)
        .unwrap();
    assert_eq!(report.returned(), Returned::Headers);
    // A line of the original that, its line ends made CRLF, is a
    // delimiter of a boundary the writer could pick: that boundary is not
    // picked, and part 3 holds the line.
    let original = b"Subject: x\n\nbody\r--=_smtp-proto-dsn-0\r--=_smtp-proto-dsn-1--\nend\n";
    let report = failed_bounce(&host, &sender, &bob).write(original).unwrap();
    assert_eq!(report.boundary(), "=_smtp-proto-dsn-2");
    let parts = parts(&report);
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts[2].1,
        "Subject: x\r\n\r\nbody\r\n--=_smtp-proto-dsn-0\r\n--=_smtp-proto-dsn-1--\r\nend\r\n"
    );
}

#[test]
fn notify_semantics() {
    let all = [
        Action::Failed,
        Action::Delayed,
        Action::Delivered,
        Action::Relayed,
        Action::Expanded,
    ];
    let failure = Notify {
        failure: true,
        ..Notify::NEVER
    };
    let delay = Notify {
        delay: true,
        ..Notify::NEVER
    };
    let success = Notify {
        success: true,
        ..Notify::NEVER
    };
    for action in all {
        assert!(!should_notify(Some(Notify::NEVER), action));
        assert_eq!(
            should_notify(Some(failure), action),
            action == Action::Failed
        );
        assert_eq!(
            should_notify(Some(delay), action),
            action == Action::Delayed
        );
        assert_eq!(
            should_notify(Some(success), action),
            !matches!(action, Action::Failed | Action::Delayed)
        );
        // Absent: FAILURE,DELAY.
        assert_eq!(
            should_notify(None, action),
            matches!(action, Action::Failed | Action::Delayed)
        );
    }
}

#[test]
fn diagnostics_from_both_reply_types_agree() {
    let wire = b"550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n";
    let reply = Reply::parse(wire).unwrap();
    let owned = reply.into_owned();
    assert_eq!(
        Diagnostic::from_reply(&reply),
        Diagnostic::from_owned_reply(&owned)
    );
    assert_eq!(
        Diagnostic::from_reply(&reply).text(),
        "550 5.7.1 first second third"
    );
    assert_eq!(
        Diagnostic::from_reply(&reply).code(),
        ReplyCode::MAILBOX_UNAVAILABLE
    );
    let bare = Reply::parse(b"554\r\n").unwrap();
    assert_eq!(Diagnostic::from_reply(&bare).text(), "554");
}

#[test]
fn postmaster_is_the_reporting_hosts() {
    let (host, sender) = (host(), sender());
    let pm = ForwardPath::Postmaster;
    let report = bounce(&host, &sender)
        .recipient(Recipient::new(&pm, Action::Delivered, EnhancedStatusCode::SUCCESS).unwrap())
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Final-Recipient"),
        Some("rfc822; Postmaster@mx.example.org")
    );
    assert_eq!(get(&blocks[1], "Action"), Some("delivered"));
    assert!(parts(&report)[0]
        .1
        .contains("<Postmaster@mx.example.org>: delivered\r\n"));
}

/// An original sent with SMTPUTF8: a UTF-8 header section.
const INTL_MESSAGE: &str = "From: <ñoño@example.org>\r\n\
To: <用户@example.com>\r\n\
Subject: Grüße\r\n\
\r\n\
Hallo\r\n";

#[test]
fn known_answer_for_a_utf8_sender_recipient_and_orcpt() {
    let host = host();
    let sender = ReversePath::Mailbox(Mailbox::parse("ñoño@example.org").unwrap());
    let yonghu = rcpt("用户@example.com");
    // ORCPT=utf-8;\x{7528}\x{6237}@example.com, the xtext form.
    let orcpt = Orcpt::new(
        Atom::new("utf-8").unwrap(),
        XText::new("\\x{7528}\\x{6237}@example.com").unwrap(),
    )
    .unwrap();
    let reply = Reply::parse("550 5.1.1 <用户@example.com>: unknown\r\n".as_bytes()).unwrap();
    let report = Bounce::new(&host, &sender, when(1_795_723_722), &token())
        .unwrap()
        .ret(Some(Ret::Hdrs))
        .recipient(
            Recipient::from_reply(&yonghu, Action::Failed, &reply)
                .unwrap()
                .original_recipient(&orcpt),
        )
        .write(INTL_MESSAGE.as_bytes())
        .unwrap();
    let want = "From: Delivery Reports <MAILER-DAEMON@mx.example.org>\r\n\
To: <ñoño@example.org>\r\n\
Subject: Delivery failed: your message is returned\r\n\
Date: Thu, 26 Nov 2026 20:08:42 +0000\r\n\
Message-ID: <Q1@mx.example.org>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=global-delivery-status;\r\n \
boundary=\"=_smtp-proto-dsn-0\"\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
A delivery status report in MIME multipart/report form.\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Delivery report from mx.example.org.\r\n\
\r\n\
Your message could not be delivered to one or more of its recipients. The\r\n\
details are below; the header of your message is returned in the last part.\r\n\
\r\n\
<用户@example.com>: delivery failed\r\n    \
The reply was: 550 5.1.1 <\\x{7528}\\x{6237}@example.com>: unknown\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: message/global-delivery-status\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Reporting-MTA: dns; mx.example.org\r\n\
\r\n\
Original-Recipient: utf-8; 用户@example.com\r\n\
Final-Recipient: utf-8; 用户@example.com\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <\\x{7528}\\x{6237}@example.com>: unknown\r\n\
\r\n\
--=_smtp-proto-dsn-0\r\n\
Content-Type: message/global-headers\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
From: <ñoño@example.org>\r\n\
To: <用户@example.com>\r\n\
Subject: Grüße\r\n\
\r\n\
--=_smtp-proto-dsn-0--\r\n";
    assert_eq!(text(&report), want);
    assert!(report.is_global());
    assert!(report.requires_smtputf8());
    assert_eq!(report.body_type(), BodyType::EightBitMime);
    assert_eq!(report.returned(), Returned::Headers);
}

#[test]
fn what_makes_a_report_global_and_what_needs_smtputf8() {
    let (host, ascii_sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let utf8_sender = ReversePath::Mailbox(Mailbox::parse("ñoño@example.org").unwrap());
    let utf8_from = Mailbox::parse("postmaster@españa.example").unwrap();
    let jose = rcpt("josé@example.com");
    let unitext_orcpt = Orcpt::utf8(Unitext::new("josé@example.com").unwrap()).unwrap();
    let failed = |to| Recipient::new(to, Action::Failed, bad_mailbox()).unwrap();
    let intl = INTL_MESSAGE.as_bytes();

    // (report, is_global, requires_smtputf8, part 3's type)
    let cases: Vec<(&str, Report, bool, bool, Option<&str>)> = vec![
        (
            "all ASCII",
            failed_bounce(&host, &ascii_sender, &bob)
                .write(MESSAGE)
                .unwrap(),
            false,
            false,
            Some("message/rfc822"),
        ),
        (
            "UTF-8 sender",
            failed_bounce(&host, &utf8_sender, &bob)
                .write(MESSAGE)
                .unwrap(),
            true,
            true,
            Some("message/global"),
        ),
        (
            "UTF-8 From:",
            failed_bounce(&host, &ascii_sender, &bob)
                .from(&utf8_from)
                .unwrap()
                .write(MESSAGE)
                .unwrap(),
            true,
            true,
            Some("message/global"),
        ),
        (
            "UTF-8 recipient",
            bounce(&host, &ascii_sender)
                .recipient(failed(&jose))
                .write(MESSAGE)
                .unwrap(),
            true,
            false,
            Some("message/global"),
        ),
        (
            "UTF-8 ORCPT",
            bounce(&host, &ascii_sender)
                .recipient(failed(&bob).original_recipient(&unitext_orcpt))
                .write(MESSAGE)
                .unwrap(),
            true,
            false,
            Some("message/global"),
        ),
        (
            "UTF-8 header returned whole",
            failed_bounce(&host, &ascii_sender, &bob)
                .write(intl)
                .unwrap(),
            true,
            false,
            Some("message/global"),
        ),
        (
            "UTF-8 header section returned",
            failed_bounce(&host, &ascii_sender, &bob)
                .ret(Some(Ret::Hdrs))
                .write(intl)
                .unwrap(),
            true,
            false,
            Some("message/global-headers"),
        ),
        (
            "UTF-8 header section not returned",
            failed_bounce(&host, &ascii_sender, &bob)
                .max_returned_len(10)
                .write(intl)
                .unwrap(),
            false,
            false,
            None,
        ),
        (
            "ASCII header section returned",
            failed_bounce(&host, &ascii_sender, &bob)
                .ret(Some(Ret::Hdrs))
                .write(MESSAGE)
                .unwrap(),
            false,
            false,
            Some("text/rfc822-headers"),
        ),
    ];
    for (what, report, global, smtputf8, returned_type) in cases {
        assert_eq!(report.is_global(), global, "{what}");
        assert_eq!(report.requires_smtputf8(), smtputf8, "{what}");
        let parts = parts(&report);
        let status_type = if global {
            "Content-Type: message/global-delivery-status"
        } else {
            "Content-Type: message/delivery-status"
        };
        assert!(
            parts[1].0.starts_with(status_type),
            "{what}: {:?}",
            parts[1].0
        );
        match returned_type {
            Some(t) => assert!(
                parts[2].0.starts_with(&format!("Content-Type: {t}")),
                "{what}: {:?}",
                parts[2].0
            ),
            None => assert_eq!(parts.len(), 2, "{what}"),
        }
        // The header section holds UTF-8 exactly when SMTPUTF8 is needed.
        let (head, _) = report
            .as_bytes()
            .split_at(memchr_crlfcrlf(report.as_bytes()));
        assert_eq!(!head.is_ascii(), smtputf8, "{what}");
        // Nothing else than the returned message is 8-bit in a report
        // that is not global.
        if !global {
            let whole = text(&report);
            let cut = whole.rfind("\r\n--=_smtp-proto-dsn-0\r\n").unwrap();
            assert!(whole[..cut].is_ascii(), "{what}");
        }
    }
    // The UTF-8 From: and To: as they are, the other fields ASCII.
    let report = failed_bounce(&host, &utf8_sender, &bob)
        .from(&utf8_from)
        .unwrap()
        .write(MESSAGE)
        .unwrap();
    let whole = text(&report);
    assert!(whole.starts_with(
        "From: Delivery Reports <postmaster@españa.example>\r\nTo: <ñoño@example.org>\r\n"
    ));
    // The whole message is returned 7-bit as it was: the report is 8-bit
    // for nothing, so 7BIT.
    assert_eq!(report.body_type(), BodyType::SevenBit);
}

/// Where the header section of `bytes` ends.
fn memchr_crlfcrlf(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap()
}

#[test]
fn an_orcpt_that_is_no_mailbox_keeps_its_7bit_form() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    // UTF-8, but no domain: not a mailbox, written as utf-8-addr-xtext.
    let no_domain = Orcpt::utf8(Unitext::new("用户").unwrap()).unwrap();
    // Plain ASCII of the type utf-8: as sent.
    let ascii = Orcpt::new(
        Atom::new("utf-8").unwrap(),
        XText::new("bob@example.net").unwrap(),
    )
    .unwrap();
    let failed = || Recipient::new(&bob, Action::Failed, bad_mailbox()).unwrap();
    let report = bounce(&host, &sender)
        .recipient(failed().original_recipient(&no_domain))
        .recipient(failed().original_recipient(&ascii))
        .write(MESSAGE)
        .unwrap();
    assert!(!report.is_global());
    assert!(report.as_bytes().is_ascii());
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Original-Recipient"),
        Some("utf-8; \\x{7528}\\x{6237}")
    );
    assert_eq!(
        get(&blocks[2], "Original-Recipient"),
        Some("utf-8; bob@example.net")
    );
}

#[test]
fn postmaster_at_a_remote_host_is_that_hosts() {
    let (host, sender) = (host(), sender());
    let pm = ForwardPath::Postmaster;
    let remote = Domain::new("mx.example.net").unwrap();
    let report = bounce(&host, &sender)
        .recipient(
            Recipient::new(&pm, Action::Failed, bad_mailbox())
                .unwrap()
                .remote_mta(&remote)
                .unwrap(),
        )
        .write(MESSAGE)
        .unwrap();
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Final-Recipient"),
        Some("rfc822; Postmaster@mx.example.net")
    );
    assert!(parts(&report)[0]
        .1
        .contains("<Postmaster@mx.example.net>: delivery failed\r\n"));
}

#[test]
fn a_long_utf8_to_is_folded_at_spaces_and_unfolds_to_the_address() {
    let host = host();
    let addr =
        "\"José María de la Cruz Pérez\"@correo-electronico.departamento-de-sistemas.example.org";
    let sender = ReversePath::Mailbox(Mailbox::parse(addr).unwrap());
    let bob = rcpt("bob@example.net");
    let report = failed_bounce(&host, &sender, &bob).write(MESSAGE).unwrap();
    assert!(report.requires_smtputf8());
    let whole = text(&report);
    let (head, _) = whole.split_once("\r\n\r\n").unwrap();
    let to: Vec<&str> = head
        .split("\r\n")
        .skip_while(|l| !l.starts_with("To: "))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
        .map(|(_, l)| l)
        .collect();
    assert!(to.len() > 1, "{to:?}");
    for line in &to {
        assert!(line.len() <= 78, "{line:?}");
    }
    assert_eq!(to.join(""), format!("To: <{addr}>"));
}

#[test]
fn a_reply_with_a_run_of_blanks_longer_than_a_line_leaves_no_blank_line() {
    // A reply line may hold up to 2048 octets: here a run of 1200 tabs,
    // written as spaces, longer than a line can hold.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let wire = format!("550 5.7.1 before{}after\r\n", "\t".repeat(1200));
    let reply = Reply::parse(wire.as_bytes()).unwrap();
    let report = bounce(&host, &sender)
        .recipient(Recipient::from_reply(&bob, Action::Failed, &reply).unwrap())
        .write(MESSAGE)
        .unwrap();
    let whole = text(&report);
    let status = &parts(&report)[1].1;
    // A line of blanks alone in a field would read as the empty line that
    // ends the recipient block (RFC 5322 §3.2.2: obsolete; RFC 3464 §2.1).
    for line in status.split("\r\n") {
        assert!(
            line.is_empty() || !line.trim().is_empty(),
            "a line of {} blanks in the status part",
            line.len()
        );
    }
    for line in whole.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    let blocks = status_blocks(&report);
    assert_eq!(blocks.len(), 2, "{status:?}");
    let code = get(&blocks[1], "Diagnostic-Code").unwrap();
    assert!(code.starts_with("smtp; 550 5.7.1 before "), "{code:?}");
    assert!(code.ends_with(" after"), "{code:?}");
    assert_eq!(code.replace(' ', ""), "smtp;5505.7.1beforeafter");
    assert_eq!(get(&blocks[1], "Action"), Some("failed"));
    // The human-readable part has no line of blanks either.
    for line in parts(&report)[0].1.split("\r\n") {
        assert!(line.is_empty() || !line.trim().is_empty());
    }
}

#[test]
fn a_backslash_in_the_reply_is_escaped_so_the_diagnostic_is_not_ambiguous() {
    // The diagnostic writes a non-ASCII character as `\x{HEX}`; a reply
    // that holds that text itself must not read the same, so a `\` of the
    // reply is written `\x{5C}` (RFC 6533 leaves `\` out of QCHAR for the
    // same reason).
    let literal = Reply::parse(b"550 5.1.1 M\\x{FC}ller C:\\dir\r\n").unwrap();
    let utf8 = Reply::parse("550 5.1.1 Müller C:\\dir\r\n".as_bytes()).unwrap();
    let a = Diagnostic::from_reply(&literal);
    let b = Diagnostic::from_reply(&utf8);
    assert_eq!(a.text(), "550 5.1.1 M\\x{5C}x{FC}ller C:\\x{5C}dir");
    assert_eq!(b.text(), "550 5.1.1 M\\x{FC}ller C:\\x{5C}dir");
    assert_ne!(a.text(), b.text());
    let owned = OwnedReply::new(ReplyCode::MAILBOX_UNAVAILABLE, "a\\b").unwrap();
    assert_eq!(Diagnostic::from_owned_reply(&owned).text(), "550 a\\x{5C}b");
}

#[test]
fn c1_control_characters_are_never_written_raw() {
    // A checked mailbox holds no C1 control (U+0080 to U+009F: U+0085 NEL
    // is a line break to some readers, U+009B CSI starts a terminal
    // sequence), though RFC 6531's grammar would let one into a local
    // part: RFC 5198 §2 says they "MUST NOT appear". So no recipient,
    // sender or From: of a bounce can carry one.
    assert!(Mailbox::parse("a\u{85}b@example.com").is_err());
    assert!(Mailbox::parse("z\u{9B}@example.org").is_err());
    // Nor can an ORCPT of the type `utf-8`, whose address is a mailbox
    // when decoded (RFC 6533 §3), in either form.
    assert!(Orcpt::new(
        Atom::new("utf-8").unwrap(),
        XText::new("c\\x{9B}d@example.com").unwrap(),
    )
    .is_err());
    assert!(Unitext::new("c\u{9B}d@example.com").is_err());
    // An `rfc822` ORCPT whose xtext decodes to one keeps the 7-bit form it
    // was sent in.
    let (host, sender) = (host(), sender());
    let to = rcpt("c\u{e9}d@example.com");
    let orcpt = Orcpt::new(
        Atom::new("rfc822").unwrap(),
        XText::encode("c\u{9B}d@example.com".as_bytes()),
    )
    .unwrap();
    let report = Bounce::new(&host, &sender, when(0), &token())
        .unwrap()
        .recipient(
            Recipient::new(&to, Action::Failed, EnhancedStatusCode::BAD_MAILBOX)
                .unwrap()
                .original_recipient(&orcpt),
        )
        .write(MESSAGE)
        .unwrap();
    let whole = text(&report);
    for c in whole.chars() {
        assert!(
            !c.is_control() || c == '\r' || c == '\n',
            "{c:?} written in {whole:?}"
        );
    }
    let blocks = status_blocks(&report);
    assert_eq!(
        get(&blocks[1], "Original-Recipient"),
        Some("rfc822; c+C2+9Bd@example.com")
    );
}
