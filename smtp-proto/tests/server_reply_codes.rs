//! Every reply the server machine writes itself carries an RFC 3463
//! enhanced status code of its own class when ENHANCEDSTATUSCODES is on
//! (RFC 2034 §4: all replies but the greeting and the answers to HELO and
//! EHLO), and none when it is off. The transcripts walk every refusal the
//! machine makes; the application only accepts, so every other reply is
//! the machine's.

mod support;

use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use support::{config, parse, run_pieces, Action, AppState, Setup};

/// Accepts everything, AUTH included.
fn accept_all(_: &ServerEvent<'_>, _: &mut AppState) -> Action {
    Action::Accept
}

/// Checks each reply in `wire`: with `enhanced`, every reply but the
/// greeting, the HELO/EHLO/LHLO answer, 354 and 334 starts its text with
/// an enhanced code whose class is the reply's; without, none does.
/// Returns how many replies were checked.
fn check_codes(wire: &str, enhanced: bool) -> usize {
    let mut checked = 0;
    let mut in_multiline = false;
    for line in wire.split_terminator("\r\n") {
        let (code, sep, text) = (&line[..3], &line[3..4], line.get(4..).unwrap_or(""));
        // The machine's only multi-line reply is the EHLO/LHLO answer.
        if sep == "-" || in_multiline {
            in_multiline = sep == "-";
            continue;
        }
        let exempt = (code == "220" && text.starts_with("mx.example.com"))
            || (code == "250" && text == "mx.example.com")
            || code == "354"
            || code == "334";
        if exempt {
            continue;
        }
        let first = text.split(' ').next().unwrap_or("");
        let parts: Vec<&str> = first.split('.').collect();
        let is_code = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if enhanced {
            assert!(is_code, "no enhanced code in {line:?}");
            assert_eq!(
                &first[..1],
                &code[..1],
                "enhanced code of another class in {line:?}"
            );
        } else {
            assert!(
                !is_code,
                "enhanced code while the extension is off: {line:?}"
            );
        }
        checked += 1;
    }
    checked
}

/// Runs `client` (transcript `C:` lines) against `config` with
/// ENHANCEDSTATUSCODES on and off, and checks both outputs.
fn both_ways(config: ServerConfig, client: &str, at_least: usize) {
    for enhanced in [true, false] {
        let mut c = config.clone();
        c.enhanced_status_codes = enhanced;
        let mut setup = Setup::new(c);
        setup.policy = accept_all;
        let t = parse(client);
        let r = run_pieces(&setup, &t.segments, &|s: &[u8]| vec![s.to_vec()]);
        let wire = r.output_str();
        let n = check_codes(&wire, enhanced);
        assert!(n >= at_least, "only {n} replies checked:\n{wire}");
    }
}

#[test]
fn command_refusals_and_acceptances() {
    let mut c = config();
    c.max_message_size = Some(20);
    c.max_recipients = 1;
    c.max_errors = 100;
    c.binarymime = true;
    c.max_data_line_length = 30;
    both_ways(
        c,
        "
    C: MAIL FROM:<a@bar.com>
    C: RSET
    C: NOOP
    C: HELP
    C: VRFY someone
    C: EXPN list
    C: EHLO bar.com
    C: RCPT TO:<b@foo.com>
    C: DATA
    C: MAIL FROM:<a@bar.com> SIZE=21
    C: MAIL FROM:<a@bar.com> RET=HDRS
    C: MAIL FROM:<jöran@bär.example>
    C: MAIL FROM:<>>>
    C: MAIL FROM:<a@b> SIZE=rabbit
    C: XYZZY
    C: ETRN example.com
    C: STARTTLS
    C: AUTH PLAIN
    C: QUIT now
    C: MAIL FROM:<a@bar.com>
    C: MAIL FROM:<a@bar.com>
    C: DATA
    C: RCPT TO:<b@foo.com> NOTIFY=NEVER
    C: RCPT TO:<>
    C: RCPT TO:<b@foo.com>
    C: RCPT TO:<c@foo.com>
    C: DATA
    C: 0123456789012345678901234567890123456789
    C: .
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: DATA
    C~ bare\\nline\\r\\n.\\r\\n
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: DATA
    C: short
    C: .
    C: MAIL FROM:<a@bar.com> BODY=BINARYMIME
    C: RCPT TO:<b@foo.com>
    C: DATA
    C: BDAT 3
    C~ abc
    C: BDAT 30 LAST
    C~ 012345678901234567890123456789
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: BDAT 2 LAST
    C~ ok
    C: BDAT 5 NOW
    C~ abcde
    C: HELO bar.com
    C: BDAT 1 LAST
    C~ x
    C: QUIT
",
        40,
    );
}

#[test]
fn error_limit_421() {
    let mut c = config();
    c.max_errors = 1;
    both_ways(c, "C: EHLO bar.com\nC: BAD1\nC: BAD2\n", 2);
}

#[test]
fn auth_refusals() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    c.auth_requires_tls = false;
    c.auth_required = true;
    c.max_auth_line_length = 2048;
    c.max_errors = 100;
    let long = "A".repeat(2100);
    both_ways(
        c,
        &format!(
            "
    C: EHLO bar.com
    C: MAIL FROM:<a@bar.com>
    C: VRFY someone
    C: AUTH CRAM-MD5
    C: AUTH PLAIN not!base64
    C: AUTH PLAIN AGFsaWNl
    C: AUTH PLAIN
    C: *
    C: AUTH LOGIN
    C: %%%
    C: AUTH PLAIN
    C: {long}
    C: AUTH PLAIN {long}
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    C: MAIL FROM:<a@bar.com>
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
"
        ),
        13,
    );
}

#[test]
fn tls_refusals() {
    let mut c = config();
    c.starttls = true;
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = true;
    both_ways(
        c.clone(),
        "
    C: EHLO bar.com
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    C: MAIL FROM:<a@bar.com>
    C: STARTTLS
    C: RSET
    C: STARTTLS
    -- TLS --
    C: EHLO bar.com
    C: STARTTLS
    C: QUIT
",
        7,
    );
    // STARTTLS declined at run time, and a command pipelined after an
    // accepted STARTTLS.
    for available in [false, true] {
        for enhanced in [true, false] {
            let mut c = c.clone();
            c.enhanced_status_codes = enhanced;
            let mut setup = Setup::new(c);
            setup.policy = accept_all;
            setup.starttls_available = available;
            let t = parse("C: EHLO bar.com\nC: STARTTLS\nC: NOOP\n");
            let r = run_pieces(&setup, &t.segments, &|s: &[u8]| vec![s.to_vec()]);
            let wire = r.output_str();
            assert!(check_codes(&wire, enhanced) >= 1, "{wire}");
        }
    }
}

#[test]
fn closing_replies() {
    let mut c = config();
    c.max_auth_failures = 1;
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    // An over-long BDAT line, an unreadable chunk size, a bare LF in a
    // BDAT line: each closes the session with its reply.
    both_ways(
        c.clone(),
        &format!("C: EHLO bar.com\nC: BDAT {}\n", "1".repeat(1100)),
        1,
    );
    both_ways(c.clone(), "C: EHLO bar.com\nC: BDAT x\n", 1);
    both_ways(c.clone(), "C: EHLO bar.com\nC~ BDAT 1\\nx\\r\\n", 1);
    for enhanced in [true, false] {
        let mut c = c.clone();
        c.enhanced_status_codes = enhanced;
        // Timeout, shutdown, refusal.
        let mut s = ServerSession::new(c.clone()).unwrap();
        s.greet().unwrap();
        s.timed_out();
        let mut s2 = ServerSession::new(c.clone()).unwrap();
        s2.greet().unwrap();
        s2.shut_down().unwrap();
        let mut s3 = ServerSession::new(c.clone()).unwrap();
        s3.refuse(None).unwrap();
        let step = s3.handle_input(b"NOOP\r\n").unwrap();
        assert!(step.consumed > 0);
        let mut wire = Vec::new();
        s.poll_transmit(&mut wire);
        s2.poll_transmit(&mut wire);
        let mut refused = Vec::new();
        s3.poll_transmit(&mut refused);
        // The refusal greeting is a greeting: only the 503 after it counts.
        let refused = String::from_utf8(refused).unwrap();
        let after_greeting = refused.split_once("\r\n").unwrap().1;
        let wire = String::from_utf8(wire).unwrap() + after_greeting;
        assert_eq!(check_codes(&wire, enhanced), 3, "{wire}");
    }
}

/// Every reply `client` gets from a session of `config` (greeted, or
/// refused at the greeting when `refuse`), ENHANCEDSTATUSCODES on, the
/// greeting left out.
fn replies_after_greeting(config: ServerConfig, refuse: bool, client: &str) -> String {
    let mut setup = Setup::new(config);
    setup.policy = accept_all;
    setup.refuse = refuse;
    let t = parse(client);
    let r = run_pieces(&setup, &t.segments, &|s: &[u8]| vec![s.to_vec()]);
    let wire = r.output_str();
    wire.split_once("\r\n").unwrap().1.to_owned()
}

/// RFC 2034 §3: the text of "all 2xx, 4xx, and 5xx SMTP responses other
/// than the initial greeting and any response to HELO or EHLO" starts with
/// an enhanced code. The client learns of ENHANCEDSTATUSCODES from the EHLO
/// reply, so the replies the machine gives to a HELO, EHLO or LHLO line it
/// refuses, the 421 that replaces such a reply at the error limit, and a
/// 421 sent in place of the greeting carry none.
#[test]
fn no_enhanced_code_in_replies_to_hello_or_for_the_greeting() {
    let mut c = config();
    c.max_errors = 100;
    assert_eq!(
        replies_after_greeting(
            c.clone(),
            false,
            "
    C: HELO
    C: EHLO -bad-
    C: EHLO
    C: MAIL FROM:<a@bar.com>
    C: EHLO bar.com
    C: LHLO
    C: QUIT
",
        ),
        "501 HELO requires an argument\r\n\
         501 invalid EHLO argument: invalid domain\r\n\
         501 EHLO requires an argument\r\n\
         503 5.5.1 send EHLO/HELO first\r\n\
         250-mx.example.com\r\n\
         250-PIPELINING\r\n\
         250-8BITMIME\r\n\
         250-CHUNKING\r\n\
         250 ENHANCEDSTATUSCODES\r\n\
         500 5.5.2 Command unrecognized\r\n\
         221 2.0.0 Bye\r\n",
        "in SMTP, LHLO is an unknown command and keeps its enhanced code"
    );

    let mut lmtp = c.clone();
    lmtp.lmtp = true;
    assert_eq!(
        replies_after_greeting(
            lmtp,
            false,
            "
    C: EHLO bar.com
    C: HELO bar.com
    C: LHLO
    C: NOOP
",
        ),
        "500 Use LHLO in LMTP\r\n\
         500 Use LHLO in LMTP\r\n\
         501 LHLO requires an argument\r\n\
         250 2.0.0 OK\r\n",
    );

    // A session refused at the greeting: the 503 to EHLO has no code, the
    // 503 to any other command has one.
    assert_eq!(
        replies_after_greeting(
            c.clone(),
            true,
            "
    C: EHLO bar.com
    C: HELO
    C: NOOP
",
        ),
        "503 No SMTP service here, send QUIT\r\n\
         503 No SMTP service here, send QUIT\r\n\
         503 5.5.1 No SMTP service here, send QUIT\r\n",
    );

    // The error limit reached by a refused EHLO: the 421 that answers it.
    let mut limit = c.clone();
    limit.max_errors = 1;
    assert_eq!(
        replies_after_greeting(limit.clone(), false, "C: BAD1\nC: EHLO\n"),
        "500 5.5.2 Command unrecognized\r\n\
         421 mx.example.com Too many errors, closing connection\r\n",
    );
    assert_eq!(
        replies_after_greeting(limit, false, "C: EHLO\nC: BAD1\n"),
        "501 EHLO requires an argument\r\n\
         421 4.7.0 mx.example.com Too many errors, closing connection\r\n",
    );

    // A 421 in place of the greeting is the greeting (RFC 5321 §3.1).
    type Stop = fn(&mut ServerSession);
    let stops: [(Stop, &str); 2] = [
        (
            |s| s.shut_down().unwrap(),
            "421 mx.example.com Service shutting down, closing connection\r\n",
        ),
        (
            ServerSession::timed_out,
            "421 mx.example.com Timeout waiting for client input, closing connection\r\n",
        ),
    ];
    for (stop, want) in stops {
        let mut s = ServerSession::new(c.clone()).unwrap();
        stop(&mut s);
        assert!(s.is_closed());
        let mut wire = Vec::new();
        s.poll_transmit(&mut wire);
        assert_eq!(String::from_utf8(wire).unwrap(), want);
    }
}

/// RFC 3463 §3.6: X.5.2 "Syntax error" is for a command that "could not be
/// interpreted, either because the syntax was wrong or the command is
/// unrecognized"; X.5.1 "Invalid command" for one "out of sequence or
/// unsupported". An unknown verb is `500 5.5.2`, as a malformed one is; a
/// known but unimplemented one `502 5.5.1`, one out of order `503 5.5.1`.
#[test]
fn unknown_verb_is_500_5_5_2() {
    let mut c = config();
    c.max_errors = 100;
    assert_eq!(
        replies_after_greeting(
            c,
            false,
            "
    C: XYZZY plugh
    C: EHLO bar.com
    C: LHLO bar.com
    C: TURN
    C: M@IL FROM:<a@bar.com>
    C: ETRN example.com
    C: RCPT TO:<b@foo.com>
",
        ),
        "500 5.5.2 Command unrecognized\r\n\
         250-mx.example.com\r\n\
         250-PIPELINING\r\n\
         250-8BITMIME\r\n\
         250-CHUNKING\r\n\
         250 ENHANCEDSTATUSCODES\r\n\
         500 5.5.2 Command unrecognized\r\n\
         502 5.5.1 Command not implemented\r\n\
         500 5.5.2 syntax error, command unrecognized\r\n\
         502 5.5.1 Command not implemented\r\n\
         503 5.5.1 need MAIL command\r\n",
    );
}

/// RFC 5321 §4.1.1: "SMTP receivers SHOULD tolerate trailing white space
/// before the terminating <CRLF>". A tab is white space as a space is, so
/// `DATA`, a tab and CRLF is `DATA`. A known verb followed by a tab and
/// more text is still no command (the verb ends at a space, §4.1.1), nor
/// is one followed by a vertical tab: `500 5.5.2`.
#[test]
fn trailing_white_space_is_tolerated() {
    let mut c = config();
    c.max_errors = 100;
    let out = replies_after_greeting(
        c,
        false,
        "
    C~ EHLO bar.com\\x09\\r\\n
    C~ MAIL FROM:<a@bar.com>\\x09\\r\\n
    C~ RCPT TO:<b@foo.com> \\x09 \\r\\n
    C~ DATA\\x09\\r\\n
    C: hello
    C: .
    C~ NOOP\\x09\\r\\n
    C~ HELP \\x09\\r\\n
    C~ RSET\\x09\\x09\\r\\n
    C~ DATA\\x09now\\r\\n
    C~ RSET\\x0b\\r\\n
    C~ XYZZY\\x09\\r\\n
    C~ QUIT\\x09\\r\\n
",
    );
    assert_eq!(
        out,
        "250-mx.example.com\r\n\
         250-PIPELINING\r\n\
         250-8BITMIME\r\n\
         250-CHUNKING\r\n\
         250 ENHANCEDSTATUSCODES\r\n\
         250 2.1.0 OK\r\n\
         250 2.1.5 OK\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n\
         250 2.0.0 OK: message accepted\r\n\
         250 2.0.0 OK\r\n\
         214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN\r\n\
         250 2.0.0 OK\r\n\
         500 5.5.2 syntax error, command unrecognized\r\n\
         500 5.5.2 syntax error, command unrecognized\r\n\
         500 5.5.2 Command unrecognized\r\n\
         221 2.0.0 Bye\r\n",
    );
}
