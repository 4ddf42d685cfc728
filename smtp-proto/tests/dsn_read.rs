//! Reading bounces (`smtp_proto::dsn::parse_report`,
//! `parse_delivery_status`): round trips through the crate's own writer,
//! samples in the shapes common mail servers write, and malformed input.

mod dsn_support;
use dsn_support::{at, host, rcpt, sender};

use smtp_proto::command::{
    Atom, Domain, EnvId, ForwardPath, Orcpt, Ret, ReversePath, Unitext, XText,
};
use smtp_proto::dsn::{
    parse_delivery_status, parse_report, Action, Bounce, DeliveryStatus, Diagnostic, ParsedReport,
    ReadError, Recipient,
};
use smtp_proto::reply::Reply;
use smtp_proto::status::{EnhancedStatusCode, StatusClass};
use smtp_proto::trace::Timestamp;

const MESSAGE: &[u8] = b"From: <alice@example.org>\r\n\
To: <bob@example.net>\r\n\
Message-ID: <lunch.42@example.org>\r\n\
Subject: lunch\r\n\
\r\n\
See you at noon.\r\n";

fn when(secs: i64) -> Timestamp {
    at(secs, 60)
}

fn code(s: &str) -> EnhancedStatusCode {
    EnhancedStatusCode::parse(s.as_bytes()).unwrap()
}

fn bounce<'a>(host: &'a Domain<'a>, sender: &'a ReversePath<'a>) -> Bounce<'a> {
    Bounce::new(host, sender, when(1_795_723_722), &Atom::new("Q1").unwrap()).unwrap()
}

/// (address, action, status) of every recipient read.
fn summary(report: &ParsedReport) -> Vec<(String, Action, String)> {
    status_summary(&report.status)
}

/// (address, action, status) of every recipient of `status`.
fn status_summary(status: &DeliveryStatus) -> Vec<(String, Action, String)> {
    status
        .recipients
        .iter()
        .map(|r| (r.address(), r.action, r.status.to_string()))
        .collect()
}

#[test]
fn every_action_round_trips_with_its_fields() {
    let (host, sender) = (host(), sender());
    let remote = Domain::new("mx.example.net").unwrap();
    let from = Domain::new("client.example.org").unwrap();
    let envid = EnvId::new(XText::new("QQ+2B314159").unwrap()).unwrap();
    let addrs = [
        "failed@example.net",
        "delayed@example.net",
        "delivered@example.net",
        "relayed@example.net",
        "expanded@example.net",
    ];
    let paths: Vec<ForwardPath<'_>> = addrs.iter().map(|a| rcpt(a)).collect();
    let reply = Reply::parse(b"550 5.1.1 No such user\r\n").unwrap();
    let report = bounce(&host, &sender)
        .envelope_id(&envid)
        .received_from_mta(&from)
        .unwrap()
        .arrival_date(when(1_795_723_000))
        .recipient(
            Recipient::from_reply(&paths[0], Action::Failed, &reply)
                .unwrap()
                .remote_mta(&remote)
                .unwrap()
                .last_attempt(when(1_795_723_700)),
        )
        .recipient(
            Recipient::new(&paths[1], Action::Delayed, code("4.4.1"))
                .unwrap()
                .will_retry_until(when(1_796_000_000))
                .unwrap(),
        )
        .recipient(Recipient::new(&paths[2], Action::Delivered, code("2.0.0")).unwrap())
        .recipient(Recipient::new(&paths[3], Action::Relayed, code("2.1.5")).unwrap())
        .recipient(Recipient::new(&paths[4], Action::Expanded, code("2.0.0")).unwrap())
        .write(MESSAGE)
        .unwrap();
    let read = parse_report(report.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![
            (addrs[0].to_string(), Action::Failed, "5.1.1".to_string()),
            (addrs[1].to_string(), Action::Delayed, "4.4.1".to_string()),
            (addrs[2].to_string(), Action::Delivered, "2.0.0".to_string()),
            (addrs[3].to_string(), Action::Relayed, "2.1.5".to_string()),
            (addrs[4].to_string(), Action::Expanded, "2.0.0".to_string()),
        ]
    );
    assert!(read.status.problems.is_empty());
    assert_eq!(read.report_type.as_deref(), Some("delivery-status"));
    assert!(!read.global);
    assert!(read.complete);

    let m = &read.status.message;
    assert_eq!(m.original_envelope_id.as_deref(), Some("QQ+314159"));
    let mta = m.reporting_mta.as_ref().unwrap();
    assert!(mta.is_kind("DNS"));
    assert_eq!(mta.value, "mx.example.org");
    assert_eq!(
        m.received_from_mta.as_ref().unwrap().value,
        "client.example.org"
    );
    assert_eq!(
        m.arrival_date.as_deref(),
        Some(when(1_795_723_000).to_string().as_str())
    );
    assert!(m.extensions.is_empty());

    let failed = &read.status.recipients[0];
    assert!(failed.final_recipient.is_kind("rfc822"));
    assert_eq!(failed.remote_mta.as_ref().unwrap().value, "mx.example.net");
    let diag = failed.diagnostic_code.as_ref().unwrap();
    assert!(diag.is_kind("smtp"));
    assert_eq!(diag.value, Diagnostic::from_reply(&reply).text());
    assert_eq!(failed.reply_code().map(|c| c.get()), Some(550));
    assert_eq!(
        failed.last_attempt_date.as_deref(),
        Some(when(1_795_723_700).to_string().as_str())
    );
    assert_eq!(failed.will_retry_until, None);
    let delayed = &read.status.recipients[1];
    assert_eq!(
        delayed.will_retry_until.as_deref(),
        Some(when(1_796_000_000).to_string().as_str())
    );
    assert_eq!(delayed.diagnostic_code, None);
    assert_eq!(delayed.reply_code(), None);
    // The dates read back as the times written.
    assert_eq!(m.arrival(), Some(Ok(when(1_795_723_000))));
    assert_eq!(failed.last_attempt(), Some(Ok(when(1_795_723_700))));
    assert_eq!(failed.retry_until(), None);
    assert_eq!(delayed.retry_until(), Some(Ok(when(1_796_000_000))));
    assert_eq!(delayed.last_attempt(), None);

    // The whole original was returned, and names its Message-ID.
    let returned = read.returned.unwrap();
    assert_eq!(returned.content_type, "message/rfc822");
    assert!(!returned.is_headers_only());
    assert_eq!(
        returned.message_id.as_deref(),
        Some("<lunch.42@example.org>")
    );
    // The part holds the original whole, its last CRLF too.
    assert_eq!(&report.as_bytes()[returned.range], MESSAGE);
    let status_part = &report.as_bytes()[read.status_range];
    assert!(status_part.starts_with(b"Original-Envelope-Id: QQ+314159\r\n"));
}

#[test]
fn header_only_and_nothing_returned() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let failed = || Recipient::new(&bob, Action::Failed, code("5.1.1")).unwrap();
    let report = bounce(&host, &sender)
        .ret(Some(Ret::Hdrs))
        .recipient(failed())
        .write(MESSAGE)
        .unwrap();
    let read = parse_report(report.as_bytes()).unwrap();
    let returned = read.returned.unwrap();
    assert_eq!(returned.content_type, "text/rfc822-headers");
    assert!(returned.is_headers_only());
    assert_eq!(
        returned.message_id.as_deref(),
        Some("<lunch.42@example.org>")
    );

    let report = bounce(&host, &sender)
        .max_returned_len(10)
        .recipient(failed())
        .write(MESSAGE)
        .unwrap();
    let read = parse_report(report.as_bytes()).unwrap();
    assert_eq!(read.returned, None);
    assert_eq!(summary(&read).len(), 1);
}

#[test]
fn global_reports_round_trip_with_utf8_addresses() {
    let (host, sender) = (host(), sender());
    let yonghu = rcpt("用户@example.com");
    let jose = rcpt("jose@example.com");
    // ORCPT=utf-8;\x{7528}\x{6237}@example.com (the xtext form) and the
    // unitext form.
    let xtext_orcpt = Orcpt::new(
        Atom::new("utf-8").unwrap(),
        XText::new("\\x{7528}\\x{6237}@example.com").unwrap(),
    )
    .unwrap();
    let unitext_orcpt = Orcpt::utf8(Unitext::new("josé@example.com").unwrap()).unwrap();
    let reply = Reply::parse("550 5.1.1 <用户@example.com>: unknown\r\n".as_bytes()).unwrap();
    let report = bounce(&host, &sender)
        .recipient(
            Recipient::from_reply(&yonghu, Action::Failed, &reply)
                .unwrap()
                .original_recipient(&xtext_orcpt),
        )
        .recipient(
            Recipient::new(&jose, Action::Delayed, code("4.2.2"))
                .unwrap()
                .original_recipient(&unitext_orcpt),
        )
        .write("Subject: héllo\r\nMessage-ID: <ü@example.org>\r\n\r\nhi\r\n".as_bytes())
        .unwrap();
    assert!(report.is_global());
    let read = parse_report(report.as_bytes()).unwrap();
    assert!(read.global);
    let r = &read.status.recipients;
    assert!(r[0].final_recipient.is_kind("utf-8"));
    assert_eq!(r[0].address(), "用户@example.com");
    assert_eq!(
        r[0].original_recipient.as_ref().unwrap().address(),
        "用户@example.com"
    );
    // The reply's UTF-8 is written as \x{HEX} in Diagnostic-Code, and read
    // as written.
    assert_eq!(
        r[0].diagnostic_code.as_ref().unwrap().value,
        Diagnostic::from_reply(&reply).text()
    );
    assert_eq!(r[1].address(), "jose@example.com");
    assert_eq!(
        r[1].original_recipient.as_ref().unwrap().address(),
        "josé@example.com"
    );
    let returned = read.returned.unwrap();
    assert_eq!(returned.content_type, "message/global");
    assert_eq!(returned.message_id.as_deref(), Some("<ü@example.org>"));
}

#[test]
fn orcpt_of_rfc822_and_a_utf8_one_that_is_no_mailbox() {
    let (host, sender, bob, carol) = (
        host(),
        sender(),
        rcpt("bob@example.net"),
        rcpt("carol@example.net"),
    );
    let plus = Orcpt::new(
        Atom::new("rfc822").unwrap(),
        XText::new("bob+2Balias@example.net").unwrap(),
    )
    .unwrap();
    // No domain: it stays 7-bit, `utf-8; \x{7528}\x{6237}`.
    let no_domain = Orcpt::utf8(Unitext::new("用户").unwrap()).unwrap();
    let report = bounce(&host, &sender)
        .recipient(
            Recipient::new(&bob, Action::Failed, code("5.1.1"))
                .unwrap()
                .original_recipient(&plus),
        )
        .recipient(
            Recipient::new(&carol, Action::Failed, code("5.2.2"))
                .unwrap()
                .original_recipient(&no_domain),
        )
        .write(MESSAGE)
        .unwrap();
    assert!(!report.is_global());
    let read = parse_report(report.as_bytes()).unwrap();
    let r = &read.status.recipients;
    assert_eq!(
        r[0].original_recipient.as_ref().unwrap().address(),
        "bob+alias@example.net"
    );
    let o = r[1].original_recipient.as_ref().unwrap();
    assert_eq!(o.value, "\\x{7528}\\x{6237}");
    assert_eq!(o.address(), "用户");
    assert_eq!(r[1].status.to_string(), "5.2.2");
}

#[test]
fn a_long_folded_diagnostic_unfolds_to_the_reply() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let mut wire = Vec::new();
    for i in 0..6 {
        wire.extend_from_slice(
            format!("550-5.7.1 line {i} of a long explanation of the policy that refused it\r\n")
                .as_bytes(),
        );
    }
    wire.extend_from_slice(b"550 5.7.1 see https://example.net/policy\r\n");
    let reply = Reply::parse(&wire).unwrap();
    let report = bounce(&host, &sender)
        .recipient(Recipient::from_reply(&bob, Action::Failed, &reply).unwrap())
        .write(MESSAGE)
        .unwrap();
    let text = String::from_utf8(report.as_bytes().to_vec()).unwrap();
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.7.1 line 0"));
    let field = &text[text.find("Diagnostic-Code:").unwrap()..];
    let field = &field[..field.find("\r\n\r\n").unwrap()];
    assert!(field.matches("\r\n ").count() >= 3, "folded: {field:?}");
    let read = parse_report(report.as_bytes()).unwrap();
    let d = read.status.recipients[0].diagnostic_code.as_ref().unwrap();
    assert_eq!(d.value, Diagnostic::from_reply(&reply).text());
    assert_eq!(read.status.recipients[0].status.to_string(), "5.7.1");
}

const POSTFIX: &str = "Return-Path: <>\r
Date: Mon,  2 Nov 2026 10:00:05 +0100 (CET)
From: MAILER-DAEMON@mail.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: alice@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"4ABCD1234.1793610005/mail.example.org\"
Message-Id: <20261102090005.5F00A1234@mail.example.org>

This is a MIME-encapsulated message.

--4ABCD1234.1793610005/mail.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--4ABCD1234.1793610005/mail.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org
X-Postfix-Queue-ID: 4ABCD1234
X-Postfix-Sender: rfc822; alice@example.org
Arrival-Date: Mon,  2 Nov 2026 10:00:00 +0100 (CET)

Final-Recipient: rfc822; nobody@example.net
Original-Recipient: rfc822;nobody@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient address
    rejected: User unknown in virtual mailbox table

Final-Recipient: rfc822; slow@example.com
Original-Recipient: rfc822;slow@example.com
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.com[192.0.2.7]:25: Connection
    timed out
Will-Retry-Until: Mon,  7 Nov 2026 10:00:00 +0100 (CET)

--4ABCD1234.1793610005/mail.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: alice@example.org
To: nobody@example.net, slow@example.com
Subject: news
Message-Id: <news-17@example.org>

--4ABCD1234.1793610005/mail.example.org--
";

#[test]
fn postfix_shape() {
    let read = parse_report(POSTFIX.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![
            ("nobody@example.net".into(), Action::Failed, "5.1.1".into()),
            ("slow@example.com".into(), Action::Delayed, "4.4.1".into()),
        ]
    );
    let m = &read.status.message;
    assert_eq!(m.reporting_mta.as_ref().unwrap().value, "mail.example.org");
    assert_eq!(m.extensions.len(), 2);
    assert_eq!(m.extensions.get(0).unwrap().name, "X-Postfix-Queue-ID");
    assert_eq!(m.extensions.get(0).unwrap().value, "4ABCD1234");
    assert_eq!(
        m.arrival_date.as_deref(),
        Some("Mon,  2 Nov 2026 10:00:00 +0100 (CET)")
    );
    let r = &read.status.recipients;
    // Final-Recipient before Original-Recipient, as Postfix writes them.
    assert_eq!(
        r[0].original_recipient.as_ref().unwrap().address(),
        "nobody@example.net"
    );
    // Unfolding keeps the whitespace of the continuation line.
    assert_eq!(
        r[0].diagnostic_code.as_ref().unwrap().value,
        "550 5.1.1 <nobody@example.net>: Recipient address    rejected: User unknown in virtual mailbox table"
    );
    let d = r[1].diagnostic_code.as_ref().unwrap();
    assert!(d.is_kind("x-postfix"));
    assert_eq!(r[1].reply_code(), None);
    assert!(r[1].will_retry_until.is_some());
    // `Mon,  2 Nov 2026 10:00:00 +0100 (CET)`: two spaces, a comment.
    assert_eq!(m.arrival(), Some(Ok(at(1_793_610_000, 60))));
    let returned = read.returned.unwrap();
    assert!(returned.is_headers_only());
    assert_eq!(
        returned.message_id.as_deref(),
        Some("<news-17@example.org>")
    );
}

const EXIM: &str = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: alice@example.org
Subject: Mail delivery failed: returning message to sender
Content-Type: multipart/report; report-type=delivery-status; boundary=1793610005-eximdsn-1234567890
MIME-Version: 1.0
Auto-Submitted: auto-replied

--1793610005-eximdsn-1234567890
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

  nobody@example.net
    host mx.example.net [192.0.2.25]
    SMTP error from remote mail server after RCPT TO:<nobody@example.net>:
    550 5.1.1 User unknown

--1793610005-eximdsn-1234567890
Content-type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Action: failed
Final-Recipient: rfc822;nobody@example.net
Status: 5.0.0
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 User unknown

Action: failed
Final-Recipient: rfc822;other@example.net
Status: 5.0.0

--1793610005-eximdsn-1234567890
Content-type: message/rfc822

Received: from alice by mx.example.org with local (Exim 4.97)
Message-Id: <E1abcde-000123-AB@mx.example.org>
From: alice@example.org
Subject: news

Hello.

--1793610005-eximdsn-1234567890--
";

#[test]
fn exim_shape() {
    let read = parse_report(EXIM.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![
            ("nobody@example.net".into(), Action::Failed, "5.0.0".into()),
            ("other@example.net".into(), Action::Failed, "5.0.0".into()),
        ]
    );
    assert_eq!(
        read.status.recipients[0]
            .diagnostic_code
            .as_ref()
            .unwrap()
            .value,
        "550 5.1.1 User unknown"
    );
    let returned = read.returned.unwrap();
    assert_eq!(returned.content_type, "message/rfc822");
    assert_eq!(
        returned.message_id.as_deref(),
        Some("<E1abcde-000123-AB@mx.example.org>")
    );
    assert!(EXIM[returned.range].ends_with("Hello.\n"));
}

const SENDMAIL: &str = "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.example.org>\r
To: <alice@example.org>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"A12BCD3456.1793610005/mail.example.org\"\r
Subject: Returned mail: see transcript for details\r
Auto-Submitted: auto-generated (failure)\r
\r
This is a MIME-encapsulated message\r
\r
--A12BCD3456.1793610005/mail.example.org\r
\r
The original message was received at Mon, 2 Nov 2026 10:00:00 +0100\r
\r
   ----- The following addresses had permanent fatal errors -----\r
<nobody@example.net>\r
\r
--A12BCD3456.1793610005/mail.example.org\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mail.example.org\r
Received-From-MTA: DNS; localhost\r
Arrival-Date: Mon, 2 Nov 2026 10:00:00 +0100\r
\r
Final-Recipient: RFC822; nobody@example.net\r
X-Actual-Recipient: RFC822; nobody@example.net\r
Action: failed\r
Status: 5.1.1\r
Remote-MTA: DNS; mx.example.net\r
Diagnostic-Code: SMTP; 550 5.1.1 <nobody@example.net>... User unknown\r
Last-Attempt-Date: Mon, 2 Nov 2026 10:00:01 +0100\r
\r
--A12BCD3456.1793610005/mail.example.org\r
Content-Type: message/rfc822\r
\r
Return-Path: <alice@example.org>\r
Message-Id: <202611020900.A12BCD3456@mail.example.org>\r
Subject: news\r
\r
Hello.\r
\r
--A12BCD3456.1793610005/mail.example.org--\r
\r
";

#[test]
fn sendmail_shape() {
    let read = parse_report(SENDMAIL.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![("nobody@example.net".into(), Action::Failed, "5.1.1".into())]
    );
    let r = &read.status.recipients[0];
    assert!(r.final_recipient.is_kind("rfc822"));
    assert_eq!(r.final_recipient.kind, "RFC822");
    assert_eq!(r.reply_code().map(|c| c.get()), Some(550));
    assert_eq!(r.extensions.len(), 1);
    assert_eq!(r.extensions.get(0).unwrap().name, "X-Actual-Recipient");
    assert_eq!(
        read.status
            .message
            .received_from_mta
            .as_ref()
            .unwrap()
            .value,
        "localhost"
    );
    let returned = read.returned.unwrap();
    assert_eq!(
        returned.message_id.as_deref(),
        Some("<202611020900.A12BCD3456@mail.example.org>")
    );
    // The empty line before the delimiter is the message's own.
    assert!(SENDMAIL[returned.range].ends_with("Hello.\r\n"));
}

const EXCHANGE: &str =
    "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@example.org>\r
To: <alice@example.org>\r
Subject: Undeliverable: news\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"b1_00000000-1111-2222-3333-444444444444\"\r
MIME-Version: 1.0\r
\r
--b1_00000000-1111-2222-3333-444444444444\r
Content-Type: multipart/alternative; differences=Content-Type;\r
\tboundary=\"b2_00000000-1111-2222-3333-444444444444\"\r
\r
--b2_00000000-1111-2222-3333-444444444444\r
Content-Type: text/plain; charset=\"us-ascii\"\r
Content-Transfer-Encoding: quoted-printable\r
\r
Your message to nobody@example.net couldn't be delivered.=0D=0A\r
--b2_00000000-1111-2222-3333-444444444444\r
Content-Type: text/html; charset=\"us-ascii\"\r
\r
<html><body>Your message couldn't be delivered.</body></html>\r
--b2_00000000-1111-2222-3333-444444444444--\r
\r
--b1_00000000-1111-2222-3333-444444444444\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r
Received-From-MTA: dns;AM0PR01MB5678.eurprd01.prod.exchangelabs.com\r
Arrival-Date: Mon, 2 Nov 2026 09:00:00 +0000\r
\r
Final-Recipient: rfc822;nobody@example.net\r
Action: failed\r
Status: 5.1.10\r
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not\r
 found by SMTP address lookup\r
Remote-MTA: dns;mx.example.net\r
X-Display-Name: Nobody\r
\r
\r
--b1_00000000-1111-2222-3333-444444444444\r
Content-Type: text/rfc822-headers\r
\r
From: Alice <alice@example.org>\r
To: Nobody <nobody@example.net>\r
Subject: news\r
Message-ID:\r
 <AM0PR01MB5678ABCDEF@AM0PR01MB5678.eurprd01.prod.exchangelabs.com>\r
\r
--b1_00000000-1111-2222-3333-444444444444--\r
";

#[test]
fn exchange_shape() {
    let read = parse_report(EXCHANGE.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![("nobody@example.net".into(), Action::Failed, "5.1.10".into())]
    );
    let r = &read.status.recipients[0];
    assert_eq!(
        r.diagnostic_code.as_ref().unwrap().value,
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    );
    assert_eq!(r.remote_mta.as_ref().unwrap().value, "mx.example.net");
    assert_eq!(r.extensions.get(0).unwrap().value, "Nobody");
    assert_eq!(
        read.returned.unwrap().message_id.as_deref(),
        Some("<AM0PR01MB5678ABCDEF@AM0PR01MB5678.eurprd01.prod.exchangelabs.com>")
    );
}

const GMAIL: &str = "Delivered-To: alice@example.org\r
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r
To: alice@example.org\r
Auto-Submitted: auto-replied\r
Subject: Delivery Status Notification (Failure)\r
Content-Type: multipart/report; boundary=\"000000000000abcdef0123456789\"; report-type=delivery-status\r
\r
--000000000000abcdef0123456789\r
Content-Type: multipart/related; boundary=\"000000000000fedcba9876543210\"\r
\r
--000000000000fedcba9876543210\r
Content-Type: text/plain; charset=\"UTF-8\"\r
\r
Address not found\r
--000000000000fedcba9876543210--\r
--000000000000abcdef0123456789\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; googlemail.com\r
Received-From-MTA: dns; alice@example.org\r
Arrival-Date: Mon, 02 Nov 2026 01:02:03 -0800 (PST)\r
X-Original-Message-ID: <CAabc123@mail.gmail.com>\r
\r
Final-Recipient: rfc822; nobody@example.net\r
Action: failed\r
Status: 5.1.1\r
Remote-MTA: dns; mx.example.net. (192.0.2.1, the server for the domain\r
 example.net.)\r
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does\r
 not exist.\r
Last-Attempt-Date: Mon, 02 Nov 2026 01:02:04 -0800 (PST)\r
\r
--000000000000abcdef0123456789\r
Content-Type: message/rfc822\r
\r
Message-ID: <CAabc123@mail.gmail.com>\r
Subject: news\r
\r
Hi\r
\r
--000000000000abcdef0123456789--\r
";

#[test]
fn gmail_shape() {
    let read = parse_report(GMAIL.as_bytes()).unwrap();
    assert_eq!(
        summary(&read),
        vec![("nobody@example.net".into(), Action::Failed, "5.1.1".into())]
    );
    let r = &read.status.recipients[0];
    // The comment after the host name is removed.
    assert_eq!(r.remote_mta.as_ref().unwrap().value, "mx.example.net.");
    assert_eq!(
        read.status.message.extensions.get(0).unwrap().value,
        "<CAabc123@mail.gmail.com>"
    );
    assert_eq!(
        read.returned.unwrap().message_id.as_deref(),
        Some("<CAabc123@mail.gmail.com>")
    );
}

/// The sample with its status part encoded by `encode`, under the
/// `Content-Transfer-Encoding` named.
fn reencoded(sample: &str, encoding: &str, encode: impl Fn(&[u8]) -> String) -> String {
    let read = parse_report(sample.as_bytes()).unwrap();
    let range = read.status_range;
    let head = &sample[..range.start];
    let head = head.replacen(
        "Content-Type: message/delivery-status\r\n",
        &format!(
            "Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: {encoding}\r\n"
        ),
        1,
    );
    format!(
        "{head}{}{}",
        encode(sample[range.clone()].as_bytes()),
        &sample[range.end..]
    )
}

#[test]
fn status_part_in_base64_and_quoted_printable() {
    use base64::Engine as _;
    let plain = parse_report(SENDMAIL.as_bytes()).unwrap().status;
    let b64 = reencoded(SENDMAIL, "Base64", |b| {
        let text = base64::engine::general_purpose::STANDARD.encode(b);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        lines.join("\r\n") + "\r\n"
    });
    assert_eq!(parse_report(b64.as_bytes()).unwrap().status, plain);
    let qp = reencoded(SENDMAIL, "quoted-printable", |b| {
        let mut out = String::new();
        for (i, &c) in b.iter().enumerate() {
            // Every '=', ';' and 'e' encoded, and a soft break now and then.
            match c {
                b'=' | b';' | b'e' => out.push_str(&format!("={c:02X}")),
                _ => out.push(c as char),
            }
            if i % 50 == 49 && c != b'\r' && c != b'\n' && b.get(i + 1) != Some(&b'\n') {
                out.push_str("=\r\n");
            }
        }
        out
    });
    assert!(qp.contains("=3B"));
    assert_eq!(parse_report(qp.as_bytes()).unwrap().status, plain);

    let bad = SENDMAIL.replacen(
        "Content-Type: message/delivery-status\r\n",
        "Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n",
        1,
    );
    // Plain fields taken for base64 (characters outside its alphabet
    // skipped) decode to no fields.
    assert!(parse_report(bad.as_bytes()).is_err());
    let unknown = SENDMAIL.replacen(
        "Content-Type: message/delivery-status\r\n",
        "Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: x-uuencode\r\n",
        1,
    );
    assert_eq!(
        parse_report(unknown.as_bytes()),
        Err(ReadError::UnknownEncoding)
    );
}

#[test]
fn lf_line_ends_and_sloppy_fields() {
    // LF only, names in any case, no empty line after the per-message
    // block, several empty lines (one with spaces) between blocks, tabs,
    // comments, angle brackets, a field without a type.
    let status = b"reporting-mta:dns;mx.example.org\n\
        FINAL-RECIPIENT:  rfc822; <a@example.net> (first)\n\
        action: FAILED (permanently)\n\
        status:\t5.1.1 (unknown user)\n\
        \n\
        \n   \n\n\
        Final-Recipient: b@example.net\n\
        Action: delayed\n\
        Status: 4.04.07\n\
        Final-Recipient: rfc822; c@example.net\n\
        Action: delivered\n\
        Status: 2.0.0\n\
        this line is no field\n\
        Status: 5.0.0\n";
    let s = parse_delivery_status(status).unwrap();
    assert_eq!(
        s.message.reporting_mta.as_ref().unwrap().value,
        "mx.example.org"
    );
    let got = status_summary(&s);
    assert_eq!(
        got,
        vec![
            ("a@example.net".into(), Action::Failed, "5.1.1".into()),
            ("b@example.net".into(), Action::Delayed, "4.4.7".into()),
            ("c@example.net".into(), Action::Delivered, "2.0.0".into()),
        ]
    );
    assert_eq!(s.recipients[1].final_recipient.kind, "");
    // The repeated Status is kept as an extension.
    assert_eq!(s.recipients[2].extensions.get(0).unwrap().name, "Status");
    assert!(s.problems.is_empty());
}

#[test]
fn bad_recipient_blocks_are_recorded_and_the_others_read() {
    let status = b"Reporting-MTA: dns; mx.example.org\r\n\r\n\
        Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: five\r\n\r\n\
        Final-Recipient: rfc822; c@example.net\r\nAction: bounced\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822; d@example.net\r\nStatus: 5.1.1\r\n\r\n\
        Action: failed\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822;\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822; e@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n";
    let s = parse_delivery_status(status).unwrap();
    let addrs: Vec<String> = s.recipients.iter().map(|r| r.address()).collect();
    assert_eq!(addrs, ["a@example.net", "e@example.net"]);
    let problems: Vec<(usize, ReadError)> = s.problems.iter().map(|p| (p.block, p.error)).collect();
    assert_eq!(
        problems,
        vec![
            (1, ReadError::InvalidField("Status")),
            (2, ReadError::InvalidField("Action")),
            (3, ReadError::MissingField("Action")),
            (4, ReadError::MissingField("Final-Recipient")),
            (5, ReadError::InvalidField("Final-Recipient")),
        ]
    );
    // With no good block, the first block's error.
    assert_eq!(
        parse_delivery_status(b"Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 9.9.9\r\n"),
        Err(ReadError::InvalidField("Status"))
    );
    assert_eq!(
        parse_delivery_status(b"Reporting-MTA: dns; x\r\n\r\n"),
        Err(ReadError::NoRecipients)
    );
    assert_eq!(parse_delivery_status(b""), Err(ReadError::NoRecipients));
}

#[test]
fn malformed_messages_give_typed_errors() {
    assert_eq!(parse_report(b""), Err(ReadError::NotMultipart));
    assert_eq!(
        parse_report(b"Content-Type: text/plain\r\n\r\nhi\r\n"),
        Err(ReadError::NotMultipart)
    );
    assert_eq!(
        parse_report(b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--x\r\n"),
        Err(ReadError::NoBoundary)
    );
    assert_eq!(
        parse_report(b"Content-Type: multipart/report; boundary=\"\"\r\n\r\n--\r\n"),
        Err(ReadError::NoBoundary)
    );
    let long = format!(
        "Content-Type: multipart/mixed; boundary={}\r\n\r\n",
        "b".repeat(201)
    );
    assert_eq!(parse_report(long.as_bytes()), Err(ReadError::NoBoundary));
    // A boundary named but never used.
    let wrong = POSTFIX.replace("--4ABCD1234", "--5ABCD1234");
    assert_eq!(parse_report(wrong.as_bytes()), Err(ReadError::NoDelimiter));
    // No status part.
    let no_status = POSTFIX.replace("message/delivery-status", "text/plain");
    assert_eq!(
        parse_report(no_status.as_bytes()),
        Err(ReadError::NoStatusPart)
    );
    // Cut inside the status part: unterminated.
    let cut = &POSTFIX[..POSTFIX.find("Will-Retry-Until").unwrap()];
    assert_eq!(parse_report(cut.as_bytes()), Err(ReadError::Unterminated));
    // Cut inside the returned part: the status is read, marked incomplete.
    let cut = &POSTFIX[..POSTFIX.find("Subject: news").unwrap()];
    let read = parse_report(cut.as_bytes()).unwrap();
    assert!(!read.complete);
    assert_eq!(read.status.recipients.len(), 2);
    assert_eq!(read.returned.unwrap().message_id, None);
    // Garbage status in the only block.
    let garbage = POSTFIX
        .replace("Status: 5.1.1", "Status: 5.1.1.1.1")
        .replace("Status: 4.4.1", "Status: x");
    assert_eq!(
        parse_report(garbage.as_bytes()),
        Err(ReadError::InvalidField("Status"))
    );
}

#[test]
fn huge_and_hostile_inputs_are_read_without_panic() {
    // A Diagnostic-Code folded over 200 000 lines.
    let mut status = b"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; 550".to_vec();
    for _ in 0..200_000 {
        status.extend_from_slice(b"\r\n more");
    }
    status.extend_from_slice(b"\r\n");
    let s = parse_delivery_status(&status).unwrap();
    let d = s.recipients[0].diagnostic_code.as_ref().unwrap();
    assert_eq!(d.value.len(), 3 + 200_000 * 5);
    // Deeply nested comments and an unclosed one.
    let mut status = b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0 ".to_vec();
    status.extend_from_slice(&[b'('; 100_000]);
    status.extend_from_slice(b"\r\n");
    assert_eq!(parse_delivery_status(&status).unwrap().recipients.len(), 1);
    // Many recipient blocks without empty lines.
    let mut status = Vec::new();
    for i in 0..10_000 {
        status.extend_from_slice(
            format!("Final-Recipient: rfc822; r{i}@x\nAction: failed\nStatus: 5.0.0\n").as_bytes(),
        );
    }
    assert_eq!(
        parse_delivery_status(&status).unwrap().recipients.len(),
        10_000
    );
    // A multipart nested in itself many times over, and binary junk.
    let mut msg = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n".to_vec();
    for _ in 0..1000 {
        msg.extend_from_slice(b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n");
    }
    assert_eq!(parse_report(&msg), Err(ReadError::NoStatusPart));
    let junk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    assert!(parse_report(&junk).is_err());
    assert!(parse_delivery_status(&junk).is_err());
}

#[test]
fn the_status_part_one_multipart_down() {
    // A report forwarded inside a multipart/mixed.
    let inner = EXIM.split_once("\n\n").unwrap();
    let msg = format!(
        "Content-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\nContent-Type: text/plain\n\nsee below\n--outer\n{}\n\n{}\n--outer--\n",
        inner.0.lines().find(|l| l.starts_with("Content-Type")).unwrap(),
        inner.1
    );
    let read = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(read.report_type, None);
    assert_eq!(read.status.recipients.len(), 2);
    assert!(read.returned.is_some());
}

#[test]
fn a_status_that_does_not_go_with_its_action_is_read_and_named() {
    let status = b"Reporting-MTA: dns; mx.example.org\r\n\r\n\
        Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 2.0.0\r\n\r\n\
        Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: 4.4.7\r\n\r\n\
        Final-Recipient: rfc822; c@example.net\r\nAction: bounced\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822; d@example.net\r\nAction: delayed\r\nStatus: 5.4.7\r\n\r\n\
        Final-Recipient: rfc822; e@example.net\r\nAction: Delivered\r\nStatus: 5.1.1 (x)\r\n\r\n\
        Final-Recipient: rfc822; f@example.net\r\nAction: relayed\r\nStatus: 4.0.0\r\n\r\n\
        Final-Recipient: rfc822; g@example.net\r\nAction: expanded\r\nStatus: 5.0.0\r\n\r\n\
        Final-Recipient: rfc822; h@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n";
    let s = parse_delivery_status(status).unwrap();
    // Every block that parses is read, whatever its status.
    let got = status_summary(&s);
    assert_eq!(
        got,
        vec![
            ("a@example.net".into(), Action::Failed, "2.0.0".into()),
            ("b@example.net".into(), Action::Failed, "4.4.7".into()),
            ("d@example.net".into(), Action::Delayed, "5.4.7".into()),
            ("e@example.net".into(), Action::Delivered, "5.1.1".into()),
            ("f@example.net".into(), Action::Relayed, "4.0.0".into()),
            ("g@example.net".into(), Action::Expanded, "5.0.0".into()),
            ("h@example.net".into(), Action::Delayed, "4.4.1".into()),
        ]
    );
    let mismatch = |action, status: &str| ReadError::StatusMismatch {
        action,
        status: code(status),
    };
    let problems: Vec<(usize, ReadError, Option<usize>)> = s
        .problems
        .iter()
        .map(|p| (p.block, p.error, p.recipient))
        .collect();
    // `failed` with 4.4.7 goes (RFC 3464 §2.3.3's note); the block that
    // does not parse is left out and the others keep their place.
    assert_eq!(
        problems,
        vec![
            (0, mismatch(Action::Failed, "2.0.0"), Some(0)),
            (2, ReadError::InvalidField("Action"), None),
            (3, mismatch(Action::Delayed, "5.4.7"), Some(2)),
            (4, mismatch(Action::Delivered, "5.1.1"), Some(3)),
            (5, mismatch(Action::Relayed, "4.0.0"), Some(4)),
            (6, mismatch(Action::Expanded, "5.0.0"), Some(5)),
        ]
    );
    for p in &s.problems {
        if let Some(i) = p.recipient {
            let r = &s.recipients[i];
            assert_eq!(
                p.error,
                ReadError::StatusMismatch {
                    action: r.action,
                    status: r.status
                }
            );
        }
    }
    assert_eq!(
        s.problems.first().unwrap().error.to_string(),
        "the status 2.0.0 does not go with the action failed"
    );

    // A status whose only recipient disagrees is still read.
    let s =
        parse_delivery_status(b"Final-Recipient: rfc822; a@b\nAction: delivered\nStatus: 4.2.2\n")
            .unwrap();
    assert_eq!(s.recipients.len(), 1);
    assert_eq!(s.problems.len(), 1);
    assert_eq!(
        s.problems.first().unwrap().error,
        mismatch(Action::Delivered, "4.2.2")
    );
}

#[test]
fn a_whole_bounce_names_a_status_that_does_not_go_with_its_action() {
    let report = b"Content-Type: multipart/report; report-type=delivery-status;\r\n\
        \tboundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nYour message was delivered.\r\n\
        --b\r\nContent-Type: message/delivery-status\r\n\r\n\
        Reporting-MTA: dns; mx.example.org\r\n\r\n\
        Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\n\
        Status: 2.0.0\r\n\r\n--b--\r\n";
    let read = parse_report(report).unwrap();
    assert_eq!(read.status.recipients[0].action, Action::Failed);
    let p = read.status.problems.first().unwrap();
    assert_eq!((p.block, p.recipient), (0, Some(0)));
    assert_eq!(
        p.error,
        ReadError::StatusMismatch {
            action: Action::Failed,
            status: code("2.0.0")
        }
    );
}

#[test]
fn statuses_keep_their_class() {
    let s = parse_delivery_status(b"Final-Recipient: rfc822; a@b\nAction: failed\nStatus: 4.2.2\n")
        .unwrap();
    assert_eq!(
        s.recipients[0].status.class(),
        StatusClass::PersistentTransientFailure
    );
}

#[test]
fn a_long_envid_ending_in_a_space_reads_back() {
    // Folded by the writer; once it ended with a line of one space, which
    // was read as the end of the per-message block.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let raw = format!("{} ", "E".repeat(70));
    let envid = EnvId::new(XText::encode(raw.as_bytes())).unwrap();
    let report = bounce(&host, &sender)
        .envelope_id(&envid)
        .recipient(Recipient::new(&bob, Action::Failed, code("5.1.1")).unwrap())
        .write(MESSAGE)
        .unwrap();
    let read = parse_report(report.as_bytes()).unwrap();
    assert!(
        read.status.problems.is_empty(),
        "{:?}",
        read.status.problems
    );
    let m = &read.status.message;
    assert_eq!(m.original_envelope_id.as_deref(), Some(raw.trim_end()));
    assert_eq!(m.reporting_mta.as_ref().unwrap().value, "mx.example.org");
}

#[test]
fn only_ascii_whitespace_is_trimmed() {
    // U+00A0 is a UTF-8 local part (RFC 6531), not space to trim.
    let (host, sender, nbsp) = (host(), sender(), rcpt("\u{a0}@example.net"));
    let report = bounce(&host, &sender)
        .recipient(Recipient::new(&nbsp, Action::Failed, code("5.1.1")).unwrap())
        .write(MESSAGE)
        .unwrap();
    let read = parse_report(report.as_bytes()).unwrap();
    assert_eq!(read.status.recipients[0].address(), "\u{a0}@example.net");
    let s = parse_delivery_status(
        "Final-Recipient: rfc822;\u{2003}x@y\u{2003}\nAction: failed\nStatus: 5.0.0\n".as_bytes(),
    )
    .unwrap();
    assert_eq!(s.recipients[0].final_recipient.value, "\u{2003}x@y\u{2003}");
}

#[test]
fn dates_of_any_offset_and_year_read_back() {
    let (host, sender) = (host(), sender());
    let path = rcpt("slow@example.net");
    for (secs, offset) in [
        (-2_208_988_800, 0),
        (0, -720),
        (951_782_400, 330),
        (1_709_164_799, -5999),
        (253_402_300_799, 0),
    ] {
        let t = at(secs, offset);
        let report = Bounce::new(&host, &sender, t, &Atom::new("Q1").unwrap())
            .unwrap()
            .arrival_date(t)
            .recipient(
                Recipient::new(&path, Action::Delayed, code("4.4.1"))
                    .unwrap()
                    .last_attempt(t)
                    .will_retry_until(t)
                    .unwrap(),
            )
            .write(MESSAGE)
            .unwrap();
        let read = parse_report(report.as_bytes()).unwrap().status;
        assert_eq!(read.message.arrival(), Some(Ok(t)), "{t}");
        assert_eq!(read.recipients[0].last_attempt(), Some(Ok(t)), "{t}");
        assert_eq!(read.recipients[0].retry_until(), Some(Ok(t)), "{t}");
    }
}

#[test]
fn dates_in_obsolete_forms_and_bad_dates() {
    let status = b"Reporting-MTA: dns; mx\r\n\
        Arrival-Date: 2 nov 26 04:00 EST\r\n\
        \r\n\
        Final-Recipient: rfc822; a@example.net\r\n\
        Action: delayed\r\n\
        Status: 4.4.1\r\n\
        Last-Attempt-Date: Mon, 2 Nov 2026 (noon) 12:00:00\r\n\t-0000 (UTC)\r\n\
        Will-Retry-Until: Mon, 31 Nov 2026 12:00:00 +0000\r\n";
    let s = parse_delivery_status(status).unwrap();
    assert_eq!(s.message.arrival(), Some(Ok(at(1_793_610_000, -300))));
    let r = &s.recipients[0];
    assert_eq!(r.last_attempt(), Some(Ok(at(1_793_620_800, 0))));
    assert_eq!(
        r.retry_until(),
        Some(Err(ReadError::InvalidField("Will-Retry-Until")))
    );
    // The text stays as written.
    assert_eq!(
        r.will_retry_until.as_deref(),
        Some("Mon, 31 Nov 2026 12:00:00 +0000")
    );
}

/// A bounce with `body` after a header of `Content-Type: multipart/report;
/// boundary=b`.
fn with_body(body: &str) -> String {
    format!("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n{body}")
}

const STATUS_PART: &str = "Content-Type: message/delivery-status\r\n\r\n\
    Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n";

#[test]
fn a_close_delimiter_is_followed_by_padding_alone() {
    // `--b--x` is no delimiter (RFC 2046 §5.1.1): the status part after it
    // is still in the multipart.
    let msg = with_body(&format!(
        "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--x\r\n--b\r\n{STATUS_PART}--b-- \t\r\nepilogue --b\r\n"
    ));
    let read = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(read.status.recipients[0].address(), "a@example.net");
    assert!(read.complete);
    // Delimiters in another case, or longer, do not split either.
    let msg = with_body(&format!(
        "--b\r\nContent-Type: text/plain\r\n\r\n--B\r\n--bb\r\n x --b\r\n--b\r\n{STATUS_PART}--b--\r\n"
    ));
    let read = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(read.status.recipients.len(), 1);
}

#[test]
fn base64_skips_characters_outside_its_alphabet() {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode("Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n");
    // RFC 2045 §6.8: characters outside the alphabet are ignored, and the
    // data ends at the padding.
    let mut noisy = String::new();
    for (i, c) in encoded.chars().enumerate() {
        noisy.push(c);
        if i % 10 == 9 {
            noisy.push_str(if i % 20 == 9 { "*\r\n" } else { "!\x07 " });
        }
    }
    let msg = with_body(&format!(
        "--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{noisy}\r\n-- trailer --\r\n--b--\r\n"
    ));
    assert!(noisy.contains('*'));
    let read = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(read.status.recipients[0].address(), "a@example.net");
    // One character too many is still no base64.
    let msg = with_body("--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAAA\r\n--b--\r\n");
    assert_eq!(parse_report(msg.as_bytes()), Err(ReadError::BadBase64));
}

#[test]
fn rfc2231_boundaries() {
    let part = format!("--b1c\r\n{STATUS_PART}--b1c--\r\n");
    for ct in [
        "multipart/report; boundary*=us-ascii'en'b%31c",
        "multipart/report; boundary*=''b1c",
        "multipart/report; boundary*1=1c; boundary*0=b",
        "multipart/report; boundary*0*=utf-8''b; boundary*1*=%31c",
        // A plain `boundary` wins over the extended forms.
        "multipart/report; boundary*=''zz; boundary=\"b1c\"",
    ] {
        let msg = format!("Content-Type: {ct}\r\n\r\n{part}");
        let read = parse_report(msg.as_bytes()).unwrap_or_else(|e| panic!("{ct}: {e:?}"));
        assert_eq!(read.status.recipients.len(), 1, "{ct}");
    }
    // Continuations with a gap are not joined.
    let msg = format!("Content-Type: multipart/report; boundary*0=b; boundary*2=c\r\n\r\n{part}");
    assert_eq!(parse_report(msg.as_bytes()), Err(ReadError::NoBoundary));
}

#[test]
fn a_recipient_without_its_type() {
    // Some hosts write the address alone; an address may hold a `;`.
    let s = parse_delivery_status(
        b"Final-Recipient: \"a;b\"@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
          Final-Recipient: <c;d@example.net> (x)\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
          Final-Recipient: e@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n",
    )
    .unwrap();
    let r = &s.recipients;
    assert_eq!(r[0].final_recipient.kind, "");
    assert_eq!(r[0].address(), "\"a;b\"@example.net");
    assert_eq!(r[1].address(), "c;d@example.net");
    assert_eq!(r[2].address(), "e@example.net");
}

#[test]
fn many_tiny_parts_and_long_lines() {
    // 2 MB of empty parts: each part is looked at a bounded number of
    // times (no scan from the start of the body per delimiter; time grows
    // linearly: about 0.2 s for 1 MB and 1.6 s for 10 MB in a debug build).
    let mut msg = b"Content-Type: multipart/report; boundary=b\r\n\r\n".to_vec();
    while msg.len() < 2_000_000 {
        msg.extend_from_slice(b"--b\r\n");
    }
    assert_eq!(parse_report(&msg), Err(ReadError::NoStatusPart));
    // A 10 MB header line folded a million times, before the status part.
    let mut msg = b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nX-Long: a".to_vec();
    while msg.len() < 10_000_000 {
        msg.extend_from_slice(b"\r\n\tfold");
    }
    msg.extend_from_slice(format!("\r\n\r\n--b\r\n{STATUS_PART}--b--\r\n").as_bytes());
    assert_eq!(parse_report(&msg).unwrap().status.recipients.len(), 1);
}

#[test]
fn many_parameters_are_read_in_linear_time() {
    // 100 000 extended parameters of distinct names, and as many plain
    // ones: each name is looked up once in a sorted list, not in all the
    // others.
    let mut ct = String::from("multipart/report");
    for i in 0..100_000 {
        ct.push_str(&format!("; p{i}*0=x; q{i}=y"));
    }
    ct.push_str("; boundary*0=b; boundary*1=1c");
    let msg = format!("Content-Type: {ct}\r\n\r\n--b1c\r\n{STATUS_PART}--b1c--\r\n");
    assert_eq!(
        parse_report(msg.as_bytes())
            .unwrap()
            .status
            .recipients
            .len(),
        1
    );
}

#[test]
fn a_report_among_many_parts_and_fields_is_found() {
    // The status part after many empty parts and a header of many fields,
    // the returned message after many parts too: found and read.
    let mut msg = b"Content-Type: multipart/report; report-type=delivery-status;".to_vec();
    for i in 0..1000 {
        msg.extend_from_slice(format!(" x{i}=y;").as_bytes());
    }
    msg.extend_from_slice(b" boundary=b\r\n");
    for _ in 0..1000 {
        msg.extend_from_slice(b"X-Noise: 1\r\n");
    }
    msg.extend_from_slice(b"\r\n");
    for _ in 0..1000 {
        msg.extend_from_slice(b"--b\r\n");
    }
    msg.extend_from_slice(b"--b\r\n");
    for _ in 0..1000 {
        msg.extend_from_slice(b"X-Noise: 1\r\n");
    }
    msg.extend_from_slice(
        b"Content-Type: message/delivery-status\r\n\r\n\
          Reporting-MTA: dns; mx.example.org\r\n\r\n\
          Final-Recipient: rfc822; bob@example.net\r\n\
          Action: failed\r\nStatus: 5.1.1\r\n\r\n",
    );
    for _ in 0..1000 {
        msg.extend_from_slice(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    msg.extend_from_slice(
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
          X-Noise: 1\r\nMessage-ID: <m@example.org>\r\n\r\n--b--\r\n",
    );
    let read = parse_report(&msg).unwrap();
    assert_eq!(read.report_type.as_deref(), Some("delivery-status"));
    assert_eq!(read.status.recipients.len(), 1);
    assert!(read.complete);
    let returned = read.returned.unwrap();
    assert_eq!(returned.content_type, "text/rfc822-headers");
    assert_eq!(returned.message_id.as_deref(), Some("<m@example.org>"));
}

#[test]
fn extension_fields_are_kept_in_order_however_many() {
    let mut part = String::from("Reporting-MTA: dns; mx.example.org\r\n");
    for i in 0..20_000 {
        part += &format!("X-N{i}: value {i}\r\n");
    }
    // Folded, repeated, with a colon and UTF-8 in the value, and written
    // in another case than a known field's.
    part +=
        "X-Folded: one\r\n\ttwo\r\nreporting-mta: dns; again\r\nX-Utf8:  caf\u{e9}: ok \r\n\r\n";
    part += "Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n";
    for i in 0..5_000 {
        part += &format!("X-R{i}:{i}\r\n");
    }
    part += "Status: 4.0.0\r\n";
    let s = parse_delivery_status(part.as_bytes()).unwrap();

    let m = &s.message.extensions;
    assert_eq!(m.len(), 20_003);
    assert_eq!(m.iter().len(), 20_003);
    for (i, f) in m.iter().take(20_000).enumerate() {
        assert_eq!(f.name, format!("X-N{i}"));
        assert_eq!(f.value, format!("value {i}"));
    }
    let last: Vec<(&str, &str)> = m.iter().skip(20_000).map(|f| (f.name, f.value)).collect();
    assert_eq!(
        last,
        [
            ("X-Folded", "one\ttwo"),
            ("reporting-mta", "dns; again"),
            ("X-Utf8", "caf\u{e9}: ok"),
        ]
    );
    assert_eq!(m.get(12_345).unwrap().value, "value 12345");
    assert_eq!(m.get(20_003), None);
    assert_eq!(m.find("x-folded").unwrap().value, "one\ttwo");
    assert_eq!(m.find("X-Absent"), None);
    assert_eq!(
        s.message.reporting_mta.as_ref().unwrap().value,
        "mx.example.org"
    );

    let r = &s.recipients[0].extensions;
    assert_eq!(r.len(), 5_001);
    let mut n = 0;
    for f in r {
        if n < 5_000 {
            assert_eq!((f.name, f.value), (&*format!("X-R{n}"), &*n.to_string()));
        } else {
            assert_eq!((f.name, f.value), ("Status", "4.0.0"));
        }
        n += 1;
    }
    assert_eq!(n, 5_001);
    assert!(format!("{:?}", r).starts_with(r#"[Field { name: "X-R0", value: "0" }, "#));
}

#[test]
fn extension_fields_not_in_utf8_are_read_lossily() {
    let s = parse_delivery_status(
        b"X-\xff: a\xfeb\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n",
    )
    .unwrap();
    let f = s.message.extensions.get(0).unwrap();
    assert_eq!((f.name, f.value), ("X-\u{fffd}", "a\u{fffd}b"));
    assert!(s.recipients[0].extensions.is_empty());
    assert_eq!(format!("{:?}", s.recipients[0].extensions), "[]");
}

#[test]
fn problems_are_kept_in_order_however_many() {
    let good = "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n\n";
    let bad = [
        (
            "Action: failed\nStatus: 5.0.0\n\n",
            ReadError::MissingField("Final-Recipient"),
        ),
        (
            "Final-Recipient: rfc822; a@b\nStatus: 5.0.0\n\n",
            ReadError::MissingField("Action"),
        ),
        (
            "Final-Recipient: rfc822; a@b\nAction: failed\n\n",
            ReadError::MissingField("Status"),
        ),
        (
            "Final-Recipient: (x)\nAction: failed\nStatus: 5.0.0\n\n",
            ReadError::InvalidField("Final-Recipient"),
        ),
        (
            "Final-Recipient: rfc822; a@b\nAction: gone\nStatus: 5.0.0\n\n",
            ReadError::InvalidField("Action"),
        ),
        (
            "Final-Recipient: rfc822; a@b\nAction: failed\nStatus: 9\n\n",
            ReadError::InvalidField("Status"),
        ),
    ];
    let mut part = String::from("Reporting-MTA: dns; mx\n\n");
    let mut want: Vec<(usize, ReadError, Option<usize>)> = Vec::new();
    let (mut block, mut recipients) = (0, 0);
    // Runs of good blocks between the problems, some long, so that the
    // block numbers and recipient indices take several octets.
    for round in 0..40 {
        for _ in 0..(round * round * 13) {
            part += good;
            block += 1;
            recipients += 1;
        }
        let (text, error) = bad[round % bad.len()];
        part += text;
        want.push((block, error, None));
        block += 1;
        // A recipient read in spite of its problem.
        let status = code(&format!("2.{}.{}", round * 25, 999 - round));
        part += &format!(
            "Final-Recipient: rfc822; m@example.net\nAction: failed\nStatus: {status}\n\n"
        );
        want.push((
            block,
            ReadError::StatusMismatch {
                action: Action::Failed,
                status,
            },
            Some(recipients),
        ));
        block += 1;
        recipients += 1;
    }
    let s = parse_delivery_status(part.as_bytes()).unwrap();
    assert_eq!(s.recipients.len(), recipients);
    assert!(block > 20_000 && recipients > 20_000);
    let got: Vec<(usize, ReadError, Option<usize>)> = s
        .problems
        .iter()
        .map(|p| (p.block, p.error, p.recipient))
        .collect();
    assert_eq!(got, want);
    assert_eq!(s.problems.len(), 80);
    assert!(!s.problems.is_empty());
    assert_eq!(s.problems.first().unwrap().block, want[0].0);
    let p = s.problems.get(79).unwrap();
    assert_eq!((p.block, p.error, p.recipient), want[79]);
    assert_eq!(s.problems.get(80), None);
    assert_eq!((&s.problems).into_iter().len(), 80);
    assert_eq!(s.problems.iter().count(), 80);
    assert!(format!("{:?}", s.problems).starts_with(
        "[BlockProblem { block: 0, error: MissingField(\"Final-Recipient\"), recipient: None }, "
    ));
}

#[test]
fn the_returned_part_reads_back_byte_for_byte() {
    // The CRLF before a delimiter is the delimiter's (RFC 2046 §5.1.1):
    // the writer adds one of its own, so that the original's last line
    // end is still in the part.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    let failed = || Recipient::new(&bob, Action::Failed, code("5.1.1")).unwrap();
    let cases: [(&[u8], Option<Ret>, &[u8]); 5] = [
        (MESSAGE, None, MESSAGE),
        (
            MESSAGE,
            Some(Ret::Hdrs),
            b"From: <alice@example.org>\r\nTo: <bob@example.net>\r\n\
              Message-ID: <lunch.42@example.org>\r\nSubject: lunch\r\n",
        ),
        (
            b"Subject: x\r\n\r\nno line end",
            None,
            b"Subject: x\r\n\r\nno line end",
        ),
        (
            b"Subject: x\r\n\r\nend\r\n\r\n",
            None,
            b"Subject: x\r\n\r\nend\r\n\r\n",
        ),
        (b"", None, b""),
    ];
    for (original, ret, want) in cases {
        let report = bounce(&host, &sender)
            .ret(ret)
            .recipient(failed())
            .write(original)
            .unwrap();
        let read = parse_report(report.as_bytes()).unwrap();
        let returned = read.returned.unwrap();
        assert_eq!(
            &report.as_bytes()[returned.range],
            want,
            "{:?}",
            String::from_utf8_lossy(original)
        );
    }
}

#[test]
fn an_original_recipient_with_parentheses_reads_back() {
    // A reader takes `(...)` outside a quoted string for a comment and
    // drops it: such an address keeps its xtext form, `+28` and `+29`.
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    fn rfc822(x: &str) -> Orcpt<'_> {
        Orcpt::new(Atom::new("rfc822").unwrap(), XText::new(x).unwrap()).unwrap()
    }
    fn utf8(x: &str) -> Orcpt<'_> {
        Orcpt::new(Atom::new("utf-8").unwrap(), XText::new(x).unwrap()).unwrap()
    }
    let orcpts = [
        // (the ORCPT, the value written, the address read back)
        (
            rfc822("a+28b+29@example.net"),
            "a+28b+29@example.net",
            "a+28b+29@example.net",
        ),
        (
            rfc822("a(b)@example.net"),
            "a+28b+29@example.net",
            "a+28b+29@example.net",
        ),
        (
            rfc822("+20a@example.net"),
            "+20a@example.net",
            "+20a@example.net",
        ),
        // In a quoted string they are no comment: written decoded.
        (
            rfc822("\"a(b)\"@example.net"),
            "\"a(b)\"@example.net",
            "\"a(b)\"@example.net",
        ),
        // The utf-8 forms decode back to the address.
        (utf8("a(b)"), "a+28b+29", "a(b)"),
        (
            Orcpt::utf8(Unitext::new("a(\u{7528})").unwrap()).unwrap(),
            "a+28\\x{7528}+29",
            "a(\u{7528})",
        ),
    ];
    for (orcpt, written, address) in &orcpts {
        let report = bounce(&host, &sender)
            .recipient(
                Recipient::new(&bob, Action::Failed, code("5.1.1"))
                    .unwrap()
                    .original_recipient(orcpt),
            )
            .write(MESSAGE)
            .unwrap();
        let read = parse_report(report.as_bytes()).unwrap();
        let o = read.status.recipients[0]
            .original_recipient
            .clone()
            .unwrap();
        assert_eq!(o.value, *written, "{orcpt:?}");
        assert_eq!(o.address(), *address, "{orcpt:?}");
        assert!(!report.is_global());
    }
}

/// The address of a `utf-8` recipient field (RFC 6533) is decoded only
/// from `\x{HEXPOINT}` as RFC 6533 §3 writes it, and only to a value with
/// no control character: the decoded value is a `utf-8-address`, a mailbox,
/// which holds none. A hostile bounce could otherwise have the reader hand
/// out CR, LF or NUL (`\x{D}\x{A}`, `+0D+0A`, `\x{0}`) that were never
/// in the field, to a caller that writes the address into a log or a
/// header. Such a value is returned as it is, as one that does not decode.
#[test]
fn utf8_addresses_never_decode_to_control_characters() {
    use smtp_proto::dsn::TypedValue;
    let address = |value: &str| {
        TypedValue {
            kind: "utf-8".into(),
            value: value.into(),
        }
        .address()
    };
    for value in [
        "a\\x{D}\\x{A}b@example.com",
        "a\\x{0D}\\x{0A}b@example.com",
        "a\\x{0}b@example.com",
        "a\\x{1}b@example.com",
        "a\\x{01}b@example.com",
        "a\\x{7F}b@example.com",
        "a\\x{85}b@example.com",
        "a\\x{9F}b@example.com",
        "a+0D+0Ab@example.com",
        "a+00b@example.com",
        "a+C2+85b@example.com",
        "a\u{7528}\\x{1B}b@example.com",
        // Not an EmbeddedUnicodeChar: printable ASCII is never written so,
        // nor a code point with a leading zero.
        "a\\x{41}b@example.com",
        "a\\x{00E9}b@example.com",
    ] {
        let got = address(value);
        assert_eq!(got, value, "{value:?}");
        assert!(!got.contains(['\r', '\n', '\0']), "{value:?}");
    }
    // What RFC 6533 allows still decodes, in both forms.
    assert_eq!(
        address("\\x{7528}\\x{6237}@example.com"),
        "用户@example.com"
    );
    assert_eq!(
        address("<a\\x{2B}b\\x{E9}@example.com>"),
        "a+bé@example.com"
    );
    assert_eq!(address("\"a\\x{20}b\"@example.com"), "\"a b\"@example.com");
    assert_eq!(address("jos\u{e9}@example.com"), "josé@example.com");
}

#[test]
fn control_characters_in_addresses_and_mta_names_are_not_read() {
    // No address or host name holds a control character (RFC 5321 §4.1.2,
    // RFC 6533 §3): a value with one (here CR, ESC, NUL, DEL) is not read
    // as one, as an empty `Final-Recipient` is not.
    let status = b"Reporting-MTA: dns; mx.example.org\x1b[2J\r\n\
        Received-From-MTA: dns; in\x7f.example.org\r\n\r\n\
        Final-Recipient: rfc822; a@example.net\rBcc: x@example.net\r\n\
        Action: failed\r\nStatus: 5.1.1\r\n\r\n\
        Original-Recipient: rfc822; o\x01@example.net\r\n\
        Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        Remote-MTA: dns; mx\x00.example.net\r\n\r\n\
        Final-Recipient: utf-8; c\x1b@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822;\r\n\td@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n";
    let s = parse_delivery_status(status).unwrap();
    assert_eq!(s.message.reporting_mta, None);
    assert_eq!(s.message.received_from_mta, None);
    let addrs: Vec<String> = s.recipients.iter().map(|r| r.address()).collect();
    // A tab of folding is whitespace, not a control character to refuse.
    assert_eq!(addrs, ["b@example.net", "d@example.net"]);
    assert_eq!(s.recipients[0].original_recipient, None);
    assert_eq!(s.recipients[0].remote_mta, None);
    for r in &s.recipients {
        assert!(!r.address().chars().any(char::is_control));
    }
    let problems: Vec<(usize, ReadError)> = s.problems.iter().map(|p| (p.block, p.error)).collect();
    assert_eq!(
        problems,
        [
            (0, ReadError::InvalidField("Final-Recipient")),
            (1, ReadError::InvalidField("Original-Recipient")),
            (1, ReadError::InvalidField("Remote-MTA")),
            (2, ReadError::InvalidField("Final-Recipient")),
        ]
    );
    // Block 1 is read all the same; blocks 0 and 2 are left out.
    let recipients: Vec<Option<usize>> = s.problems.iter().map(|p| p.recipient).collect();
    assert_eq!(recipients, [None, Some(0), Some(0), None]);
    assert_eq!(
        s.message.problems,
        [
            ReadError::InvalidField("Reporting-MTA"),
            ReadError::InvalidField("Received-From-MTA"),
        ]
    );
    // A control character in a comment is removed with it.
    let s = parse_delivery_status(
        b"Reporting-MTA: dns; mx (\x01)\r\n\r\n\
          Final-Recipient: rfc822; a@b (\x1b)\r\nAction: failed\r\nStatus: 5.0.0\r\n",
    )
    .unwrap();
    assert_eq!(s.message.reporting_mta.unwrap().value, "mx");
    assert_eq!(s.recipients[0].address(), "a@b");
    assert!(s.problems.is_empty() && s.message.problems.is_empty());
    // An `Original-Recipient` not read moves to the block of the
    // `Final-Recipient` after it, as one read does.
    let s = parse_delivery_status(
        b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n\
          Original-Recipient: rfc822; \x7f@c\r\n\
          Final-Recipient: rfc822; c@d\r\nAction: failed\r\nStatus: 5.0.0\r\n",
    )
    .unwrap();
    let problems: Vec<(usize, ReadError, Option<usize>)> = s
        .problems
        .iter()
        .map(|p| (p.block, p.error, p.recipient))
        .collect();
    assert_eq!(
        problems,
        [(1, ReadError::InvalidField("Original-Recipient"), Some(1))]
    );
}

#[test]
fn octets_that_are_not_utf8_are_named_not_changed_silently() {
    let status = b"Reporting-MTA: dns; mx.example.org\r\n\
        X-Note: caf\xe9\r\n\r\n\
        Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
        Final-Recipient: rfc822; m\xfcller@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        Diagnostic-Code: smtp; 550 M\xfcller unknown\r\nX-\xff: y\r\n\r\n\
        Final-Recipient: rfc822; c@example.net\r\nAction: f\xe4iled\r\nStatus: 5.1.1\r\n";
    let s = parse_delivery_status(status).unwrap();
    // Read, as far as it goes.
    assert_eq!(s.recipients.len(), 2);
    assert_eq!(s.recipients[1].address(), "m\u{FFFD}ller@example.net");
    // But not silently: each field read with U+FFFD is named.
    assert!(!s.problems.is_empty(), "octets changed silently");
    let problems: Vec<(usize, ReadError, Option<usize>)> = s
        .problems
        .iter()
        .map(|p| (p.block, p.error, p.recipient))
        .collect();
    assert_eq!(
        problems,
        [
            (1, ReadError::NotUtf8("Final-Recipient"), Some(1)),
            (1, ReadError::NotUtf8("Diagnostic-Code"), Some(1)),
            (1, ReadError::NotUtf8("extension field"), Some(1)),
            (2, ReadError::InvalidField("Action"), None),
            (2, ReadError::NotUtf8("Action"), None),
        ]
    );
    assert_eq!(s.message.problems, [ReadError::NotUtf8("extension field")]);
    // A field named once per block, however many are wrong.
    let mut many = b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n".to_vec();
    for _ in 0..1000 {
        many.extend_from_slice(b"X-A: \xff\r\nX-B: \xfe\r\n");
    }
    let s = parse_delivery_status(&many).unwrap();
    assert_eq!(s.problems.len(), 1);
    assert_eq!(s.recipients[0].extensions.len(), 2000);
}

#[test]
fn the_reply_code_of_a_diagnostic_is_three_digits_alone() {
    let code = |diagnostic: &str| {
        let status = format!(
            "Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n\
             Diagnostic-Code: {diagnostic}\r\n"
        );
        let s = parse_delivery_status(status.as_bytes()).unwrap();
        s.recipients[0].reply_code().map(|c| c.get())
    };
    assert_eq!(code("smtp; 550 5.1.1 No such user"), Some(550));
    assert_eq!(code("smtp; 550-5.1.1 No such user"), Some(550));
    assert_eq!(code("smtp;550"), Some(550));
    assert_eq!(code("smtp; 550\tx"), Some(550));
    // Four digits are no reply code (RFC 5321 §4.2: three, then SP or -).
    assert_eq!(code("smtp; 5501 x"), None);
    assert_eq!(code("smtp; 550.1"), None);
    assert_eq!(code("x-unix; 550 x"), None);
}
