//! Recorded-style sessions with real server software (Postfix, Exim, a
//! Gmail-like front end) and the RFC examples (RFC 5321 Appendix D.1 and
//! D.3, RFC 2920, RFC 3030, RFC 2033), replayed
//! against the client. Each replay checks the exact bytes the client
//! writes, the events, and split invariance.

mod client_support;

use client_support::{config, run_split_invariant, Actor, Job};
use smtp_proto::client::{AuthCredentials, TlsPolicy, Verdict};

#[test]
fn postfix_submission_with_starttls_and_auth() {
    let before_tls = concat!(
        "220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n",
        "250-mail.example.org\r\n",
        "250-PIPELINING\r\n",
        "250-SIZE 10240000\r\n",
        "250-VRFY\r\n",
        "250-ETRN\r\n",
        "250-STARTTLS\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-8BITMIME\r\n",
        "250-DSN\r\n",
        "250-SMTPUTF8\r\n",
        "250 CHUNKING\r\n",
        "220 2.0.0 Ready to start TLS\r\n",
    );
    let after_tls = concat!(
        "250-mail.example.org\r\n",
        "250-PIPELINING\r\n",
        "250-SIZE 10240000\r\n",
        "250-VRFY\r\n",
        "250-ETRN\r\n",
        "250-AUTH PLAIN LOGIN\r\n",
        "250-AUTH=PLAIN LOGIN\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-8BITMIME\r\n",
        "250-DSN\r\n",
        "250-SMTPUTF8\r\n",
        "250 CHUNKING\r\n",
        "235 2.7.0 Authentication successful\r\n",
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "554 5.7.1 <eve@example.com>: Relay access denied\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
        "250 2.0.0 Ok: queued as 4Zx1Bq0Ygmz9sWQ\r\n",
        "221 2.0.0 Bye\r\n",
    );
    let job = Job::new(
        "alice@example.org",
        &["bob@example.net", "eve@example.com"],
        &[
            b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: report\r\n\r\n",
            b"Numbers attached.\r\n",
        ],
    )
    .with_envelope(|e| e.with_size(96));
    let mut actor = Actor::new(vec![job]);
    actor.auth = Some((AuthCredentials::password("alice", "correct horse"), None));
    let cfg = config().with_tls(TlsPolicy::Required);
    let run = run_split_invariant(cfg, &actor, &[before_tls.as_bytes(), after_tls.as_bytes()]);
    assert_eq!(run.error, None);
    assert_eq!(
        run.wire_str(),
        concat!(
            "EHLO client.example.net\r\n",
            "STARTTLS\r\n",
            "<TLS>",
            "EHLO client.example.net\r\n",
            "AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n",
            "MAIL FROM:<alice@example.org> SIZE=96\r\n",
            "RCPT TO:<bob@example.net>\r\n",
            "RCPT TO:<eve@example.com>\r\n",
            "DATA\r\n",
            "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: report\r\n\r\n",
            "Numbers attached.\r\n",
            ".\r\n",
            "QUIT\r\n",
        )
    );
    assert!(run.has_event("Authenticated"));
    let msg = run
        .events
        .iter()
        .find(|e| e.starts_with("Message"))
        .unwrap();
    assert!(msg.contains("queued as 4Zx1Bq0Ygmz9sWQ"));
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert!(run.closed);
    assert_eq!(run.leftover, 0);
}

#[test]
fn exim_relay_without_tls_two_messages() {
    let server = concat!(
        "220 mx.example.com ESMTP Exim 4.96 Thu, 26 Nov 2026 04:00:00 +0000\r\n",
        "250-mx.example.com Hello client.example.net [192.0.2.10]\r\n",
        "250-SIZE 52428800\r\n",
        "250-8BITMIME\r\n",
        "250-PIPELINING\r\n",
        "250-PIPE_CONNECT\r\n",
        "250-CHUNKING\r\n",
        "250-PRDR\r\n",
        "250 HELP\r\n",
        // First message: one recipient unroutable.
        "250 OK\r\n",
        "250 Accepted\r\n",
        "550 Unrouteable address\r\n",
        "354 Enter message, ending with \".\" on a line by itself\r\n",
        "250 OK id=1tFxyz-000ABC-1x\r\n",
        // Second message: the only recipient deferred.
        "250 OK\r\n",
        "451 Temporary local problem - please try later\r\n",
        "503-All RCPT commands were rejected with this error:\r\n",
        "503-451 Temporary local problem - please try later\r\n",
        "503 Valid RCPT command must precede DATA\r\n",
        // Third message, after RSET.
        "250 Reset OK\r\n",
        "250 OK\r\n",
        "250 Accepted\r\n",
        "354 Enter message, ending with \".\" on a line by itself\r\n",
        "250 OK id=1tFxyz-000ABD-2y\r\n",
        "221 mx.example.com closing connection\r\n",
    );
    let jobs = vec![
        Job::new(
            "bounces@example.net",
            &["a@example.com", "ghost@nowhere.invalid"],
            &[b"Subject: one\r\n\r\n.\r\n"],
        ),
        Job::new("", &["b@example.com"], &[b"Subject: two\n\nbare LF body"]),
        Job::new(
            "bounces@example.net",
            &["c@example.com"],
            &[b"Subject: three\r\n\r\nok"],
        ),
    ];
    let run = run_split_invariant(config(), &Actor::new(jobs), &[server.as_bytes()]);
    assert_eq!(run.error, None);
    assert_eq!(
        run.wire_str(),
        concat!(
            "EHLO client.example.net\r\n",
            "MAIL FROM:<bounces@example.net>\r\n",
            "RCPT TO:<a@example.com>\r\n",
            "RCPT TO:<ghost@nowhere.invalid>\r\n",
            "DATA\r\n",
            "Subject: one\r\n\r\n..\r\n.\r\n",
            "MAIL FROM:<>\r\n",
            "RCPT TO:<b@example.com>\r\n",
            "DATA\r\n",
            "RSET\r\n",
            "MAIL FROM:<bounces@example.net>\r\n",
            "RCPT TO:<c@example.com>\r\n",
            "DATA\r\n",
            "Subject: three\r\n\r\nok\r\n.\r\n",
            "QUIT\r\n",
        )
    );
    assert_eq!(run.summaries.len(), 3);
    assert_eq!(run.summaries[0].delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(run.summaries[0].recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(run.summaries[1].message, None);
    assert_eq!(
        run.summaries[1].recipients[0].verdict(),
        Verdict::RetryLater
    );
    assert!(run.summaries[2].all_delivered());
    assert!(run.events.iter().any(|e| e.contains("id=1tFxyz-000ABD-2y")));
    assert!(run.closed);
}

#[test]
fn gmail_style_long_multiline_replies_with_oauth() {
    let before_tls = concat!(
        "220 smtp.gmail.com ESMTP a640c23a62f3a-abc123.45 - gsmtp\r\n",
        "250-smtp.gmail.com at your service, [203.0.113.5]\r\n",
        "250-SIZE 35882577\r\n",
        "250-8BITMIME\r\n",
        "250-STARTTLS\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-PIPELINING\r\n",
        "250-CHUNKING\r\n",
        "250 SMTPUTF8\r\n",
        "220 2.0.0 Ready to start TLS\r\n",
    );
    let after_tls = concat!(
        "250-smtp.gmail.com at your service, [203.0.113.5]\r\n",
        "250-SIZE 35882577\r\n",
        "250-8BITMIME\r\n",
        "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-PIPELINING\r\n",
        "250-CHUNKING\r\n",
        "250 SMTPUTF8\r\n",
        "235 2.7.0 Accepted\r\n",
        // First message.
        "250 2.1.0 OK a640c23a62f3a-abc123.45 - gsmtp\r\n",
        "250 2.1.5 OK a640c23a62f3a-abc123.45 - gsmtp\r\n",
        "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n",
        "550-5.1.1 double-checking the recipient's email address for typos or\r\n",
        "550-5.1.1 unnecessary spaces. For more information, go to\r\n",
        "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-abc123.45 - gsmtp\r\n",
        "354  Go ahead a640c23a62f3a-abc123.45 - gsmtp\r\n",
        "250 2.0.0 OK  1764129600 a640c23a62f3a-abc123.45 - gsmtp\r\n",
        // Second message: refused after the body.
        "250 2.1.0 OK a640c23a62f3a-abc123.46 - gsmtp\r\n",
        "250 2.1.5 OK a640c23a62f3a-abc123.46 - gsmtp\r\n",
        "354  Go ahead a640c23a62f3a-abc123.46 - gsmtp\r\n",
        "550-5.7.1 [203.0.113.5] Our system has detected that this message is\r\n",
        "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n",
        "550-5.7.1 this message has been blocked. For more information, go to\r\n",
        "550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError a640c23a62f3a-abc123.46 - gsmtp\r\n",
        "221 2.0.0 closing connection a640c23a62f3a-abc123.46 - gsmtp\r\n",
    );
    let jobs = vec![
        Job::new(
            "me@gmail.com",
            &["friend@gmail.com", "typo@gmial.com"],
            &[b"Subject: hi\r\n\r\nhello"],
        )
        .with_envelope(|e| e.with_body(smtp_proto::command::BodyType::EightBitMime)),
        Job::new(
            "me@gmail.com",
            &["friend@gmail.com"],
            &[b"Subject: BUY NOW\r\n\r\n!!!"],
        ),
    ];
    let mut actor = Actor::new(jobs);
    actor.auth = Some((AuthCredentials::oauth2("me@gmail.com", "ya29.a0Af"), None));
    let run = run_split_invariant(
        config().with_tls(TlsPolicy::Required),
        &actor,
        &[before_tls.as_bytes(), after_tls.as_bytes()],
    );
    assert_eq!(run.error, None);
    let w = run.wire_str();
    // OAUTHBEARER is preferred over XOAUTH2 when both are offered.
    assert!(
        w.contains("<TLS>EHLO client.example.net\r\nAUTH OAUTHBEARER "),
        "{w}"
    );
    assert!(w.contains(
        "MAIL FROM:<me@gmail.com> BODY=8BITMIME\r\nRCPT TO:<friend@gmail.com>\r\nRCPT TO:<typo@gmial.com>\r\nDATA\r\n"
    ));
    assert!(w.ends_with("Subject: BUY NOW\r\n\r\n!!!\r\n.\r\nQUIT\r\n"));
    // The four-line rejection reaches the caller whole.
    let rcpt = run
        .events
        .iter()
        .find(|e| e.starts_with("Recipient { index: 1"))
        .unwrap();
    assert!(
        rcpt.contains("lines: 4") && rcpt.contains("p=NoSuchUser"),
        "{rcpt}"
    );
    let spam = run
        .events
        .iter()
        .filter(|e| e.starts_with("Message"))
        .nth(1)
        .unwrap();
    assert!(spam.contains("UnsolicitedMessageError") && spam.ends_with("verdict: Permanent }"));
    assert_eq!(run.summaries[0].delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(run.summaries[1].message, Some(Verdict::Permanent));
    assert_eq!(run.summaries[1].delivered().count(), 0);
    assert!(run.closed);
}

#[test]
fn rfc5321_appendix_d1_typical_transaction() {
    let server = concat!(
        "220 foo.com Simple Mail Transfer Service Ready\r\n",
        "250-foo.com greets bar.com\r\n",
        "250-8BITMIME\r\n",
        "250-SIZE\r\n",
        "250-DSN\r\n",
        "250 HELP\r\n",
        "250 OK\r\n",
        "250 OK\r\n",
        "550 No such user here\r\n",
        "250 OK\r\n",
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        "250 OK\r\n",
        "221 foo.com Service closing transmission channel\r\n",
    );
    let job = Job::new(
        "Smith@bar.com",
        &["Jones@foo.com", "Green@foo.com", "Brown@foo.com"],
        &[b"Blah blah blah...\r\n", b"...etc. etc. etc.\r\n"],
    );
    let cfg =
        smtp_proto::client::ClientConfig::new(smtp_proto::command::Domain::new("bar.com").unwrap());
    let run = run_split_invariant(cfg, &Actor::new(vec![job]), &[server.as_bytes()]);
    assert_eq!(
        run.wire_str(),
        concat!(
            "EHLO bar.com\r\n",
            "MAIL FROM:<Smith@bar.com>\r\n",
            "RCPT TO:<Jones@foo.com>\r\n",
            "RCPT TO:<Green@foo.com>\r\n",
            "RCPT TO:<Brown@foo.com>\r\n",
            "DATA\r\n",
            "Blah blah blah...\r\n",
            "....etc. etc. etc.\r\n",
            ".\r\n",
            "QUIT\r\n",
        )
    );
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0, 2]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
}

#[test]
fn rfc2920_pipelining_examples() {
    // RFC 2920 §3.2: everything accepted.
    let server = concat!(
        "220 innosoft.com SMTP service ready\r\n",
        "250-innosoft.com\r\n",
        "250 PIPELINING\r\n",
        "250 sender <mrose@dbc.mtview.ca.us> OK\r\n",
        "250 recipient <ned@innosoft.com> OK\r\n",
        "250 recipient <dan@innosoft.com> OK\r\n",
        "250 recipient <kvc@innosoft.com> OK\r\n",
        "354 enter mail, end with line containing only \".\"\r\n",
        "250 message sent\r\n",
        "221 goodbye\r\n",
    );
    let to = ["ned@innosoft.com", "dan@innosoft.com", "kvc@innosoft.com"];
    let job = Job::new(
        "mrose@dbc.mtview.ca.us",
        &to,
        &[b"Subject: test\r\n\r\nbody\r\n"],
    );
    let cfg = smtp_proto::client::ClientConfig::new(
        smtp_proto::command::Domain::new("dbc.mtview.ca.us").unwrap(),
    );
    let run = run_split_invariant(
        cfg.clone(),
        &Actor::new(vec![job.clone()]),
        &[server.as_bytes()],
    );
    assert_eq!(
        run.wire_str(),
        concat!(
            "EHLO dbc.mtview.ca.us\r\n",
            "MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n",
            "RCPT TO:<ned@innosoft.com>\r\n",
            "RCPT TO:<dan@innosoft.com>\r\n",
            "RCPT TO:<kvc@innosoft.com>\r\n",
            "DATA\r\n",
            "Subject: test\r\n\r\nbody\r\n.\r\n",
            "QUIT\r\n",
        )
    );
    assert!(run.summaries[0].all_delivered());

    // RFC 2920 §3.3: every recipient refused, DATA refused.
    let server = concat!(
        "220 innosoft.com SMTP service ready\r\n",
        "250-innosoft.com\r\n",
        "250 PIPELINING\r\n",
        "250 sender <mrose@dbc.mtview.ca.us> OK\r\n",
        "550 remote mail to <ned@innosoft.com> not allowed\r\n",
        "550 remote mail to <dan@innosoft.com> not allowed\r\n",
        "550 remote mail to <kvc@innosoft.com> not allowed\r\n",
        "554 no valid recipients given\r\n",
        "221 goodbye\r\n",
    );
    let run = run_split_invariant(cfg, &Actor::new(vec![job]), &[server.as_bytes()]);
    assert!(run
        .wire_str()
        .ends_with("RCPT TO:<kvc@innosoft.com>\r\nDATA\r\nQUIT\r\n"));
    assert!(!run.wire_str().contains("body"));
    let sum = &run.summaries[0];
    assert_eq!(sum.message, None);
    assert!(sum
        .recipients
        .iter()
        .all(|r| r.verdict() == Verdict::Permanent));
    assert_eq!(run.count("Message"), 0);
}

#[test]
fn rfc3030_chunking_examples() {
    // RFC 3030 §4.2: one BDAT LAST chunk, no pipelining.
    let server = concat!(
        "220 cnri.reston.va.us SMTP service ready\r\n",
        "250-cnri.reston.va.us says hello\r\n",
        "250 CHUNKING\r\n",
        "250 <Sam@Random.com>... Sender ok\r\n",
        "250 <Susan@random.com>... Recipient ok\r\n",
        "250 Message OK, 86 octets received\r\n",
        "221 goodbye\r\n",
    );
    let body: &[u8] = b"To: Susan@random.com\r\nFrom: Sam@random.com\r\nSubject: This is a bodyless test message\r\n";
    assert_eq!(body.len(), 86);
    let job = Job::new("Sam@Random.com", &["Susan@Random.com"], &[body]);
    let cfg = smtp_proto::client::ClientConfig::new(
        smtp_proto::command::Domain::new("ymir.claremont.edu").unwrap(),
    )
    .with_chunking(smtp_proto::client::ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg.clone(), &Actor::new(vec![job]), &[server.as_bytes()]);
    let mut expect = b"EHLO ymir.claremont.edu\r\nMAIL FROM:<Sam@Random.com>\r\nRCPT TO:<Susan@Random.com>\r\nBDAT 86 LAST\r\n".to_vec();
    expect.extend_from_slice(body);
    expect.extend_from_slice(b"QUIT\r\n");
    assert_eq!(run.wire, expect);
    assert!(run.events.iter().any(|e| e.contains("86 octets received")));

    // RFC 3030 §4.3: pipelined BINARYMIME in chunks, then BDAT 0 LAST.
    let server = concat!(
        "220 cnri.reston.va.us SMTP service ready\r\n",
        "250-cnri.reston.va.us says hello\r\n",
        "250-PIPELINING\r\n",
        "250-BINARYMIME\r\n",
        "250 CHUNKING\r\n",
        "250 <ned@ymir.claremont.edu>... Sender and BINARYMIME ok\r\n",
        "250 <gvaudre@cnri.reston.va.us>... Recipient ok\r\n",
        "250 <jstewart@cnri.reston.va.us>... Recipient ok\r\n",
        "250 100000 bytes received\r\n",
        "250 324 bytes received\r\n",
        "250 Message OK, 100324 octets received\r\n",
        "221 Goodbye\r\n",
    );
    let first: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let second = vec![0u8; 324];
    let job = Job::new(
        "ned@ymir.claremont.edu",
        &["gvaudre@cnri.reston.va.us", "jstewart@cnri.reston.va.us"],
        &[&first, &second, b""],
    )
    .with_envelope(|e| e.with_body(smtp_proto::command::BodyType::BinaryMime));
    let run = run_split_invariant(cfg, &Actor::new(vec![job]), &[server.as_bytes()]);
    let mut expect = b"EHLO ymir.claremont.edu\r\nMAIL FROM:<ned@ymir.claremont.edu> BODY=BINARYMIME\r\nRCPT TO:<gvaudre@cnri.reston.va.us>\r\nRCPT TO:<jstewart@cnri.reston.va.us>\r\nBDAT 100000\r\n".to_vec();
    expect.extend_from_slice(&first);
    expect.extend_from_slice(b"BDAT 324\r\n");
    expect.extend_from_slice(&second);
    expect.extend_from_slice(b"BDAT 0 LAST\r\nQUIT\r\n");
    assert!(run.wire == expect, "wire differs");
    assert!(run.summaries[0].all_delivered());
    assert!(run
        .events
        .iter()
        .any(|e| e.contains("100324 octets received")));
}

/// RFC 2033 §4.2, the server's side byte for byte: the client says LHLO,
/// pipelines the envelope (PIPELINING is offered), and reads one reply per
/// accepted recipient after the dot: pat delivered, green over quota
/// (a 452, so retry later), jones refused at RCPT.
#[test]
fn rfc2033_lmtp_example() {
    let server = concat!(
        "220 foo.edu LMTP server ready\r\n",
        "250-foo.edu\r\n",
        "250-PIPELINING\r\n",
        "250 SIZE\r\n",
        "250 OK\r\n",
        "250 OK\r\n",
        "550 No such user here\r\n",
        "250 OK\r\n",
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        "250 OK\r\n",
        "452 <green@foo.edu> is temporarily over quota\r\n",
        "221 foo.edu closing connection\r\n",
    );
    let job = Job::new(
        "chris@bar.com",
        &["pat@foo.edu", "jones@foo.edu", "green@foo.edu"],
        &[b"Blah blah blah...\r\n", b"...etc. etc. etc.\r\n"],
    );
    let mut cfg =
        smtp_proto::client::ClientConfig::new(smtp_proto::command::Domain::new("foo.edu").unwrap());
    cfg.protocol = smtp_proto::client::Protocol::Lmtp;
    let run = run_split_invariant(cfg, &Actor::new(vec![job]), &[server.as_bytes()]);
    assert_eq!(
        run.wire_str(),
        concat!(
            "LHLO foo.edu\r\n",
            "MAIL FROM:<chris@bar.com>\r\n",
            "RCPT TO:<pat@foo.edu>\r\n",
            "RCPT TO:<jones@foo.edu>\r\n",
            "RCPT TO:<green@foo.edu>\r\n",
            "DATA\r\n",
            "Blah blah blah...\r\n",
            "....etc. etc. etc.\r\n",
            ".\r\n",
            "QUIT\r\n",
        )
    );
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(sum.recipients[2].verdict(), Verdict::RetryLater);
    assert!(run.closed);
}

/// RFC 5321 Appendix D.3 step 2, the server's side byte for byte: a
/// one-line EHLO reply with no extensions, so no pipelining: each command
/// waits for its reply.
#[test]
fn rfc5321_appendix_d3_relay_to_destination() {
    let server = concat!(
        "220 xyz.com Simple Mail Transfer Service Ready\r\n",
        "250 xyz.com is on the air\r\n",
        "250 OK\r\n",
        "250 OK\r\n",
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        "250 OK\r\n",
        "221 foo.com Service closing transmission channel\r\n",
    );
    let body: &[&[u8]] = &[
        b"Received: from bar.com by foo.com ; Thu, 21 May 1998\r\n",
        b"    05:33:29 -0700\r\n",
        b"Date: Thu, 21 May 1998 05:33:22 -0700\r\n",
        b"\r\n",
        b"Bill:\r\n",
    ];
    let job = Job::new("JQP@bar.com", &["Jones@XYZ.COM"], body);
    let cfg =
        smtp_proto::client::ClientConfig::new(smtp_proto::command::Domain::new("foo.com").unwrap());
    let run = run_split_invariant(cfg, &Actor::new(vec![job]), &[server.as_bytes()]);
    assert_eq!(
        run.wire_str(),
        concat!(
            "EHLO foo.com\r\n",
            "MAIL FROM:<JQP@bar.com>\r\n",
            "RCPT TO:<Jones@XYZ.COM>\r\n",
            "DATA\r\n",
            "Received: from bar.com by foo.com ; Thu, 21 May 1998\r\n",
            "    05:33:29 -0700\r\n",
            "Date: Thu, 21 May 1998 05:33:22 -0700\r\n",
            "\r\n",
            "Bill:\r\n",
            ".\r\n",
            "QUIT\r\n",
        )
    );
    assert_eq!(run.summaries[0].delivered().collect::<Vec<_>>(), [0]);
    assert!(run.closed);
}
