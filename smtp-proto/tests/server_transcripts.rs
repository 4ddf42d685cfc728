//! Transcripts from RFC 5321 Appendix D, RFC 2920 and RFC 3030, and one per
//! sequencing rule. Every transcript runs whole, split at every byte offset
//! and byte by byte, with identical results (see `support::run_all`).

mod support;

use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{Rejection, ServerEvent, ServerSession};
use smtp_proto::session::{Outcome, Phase, Step};
use support::{check, config, Setup, EHLO_AUTH_PLAIN};

const EHLO_DEFAULT: &str = "
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
";

fn with_ehlo(t: &str) -> String {
    t.replace("    S: EHLO-REPLY\n", EHLO_DEFAULT)
}

/// The greeting, HELO and an accepted sender and recipient: a transcript
/// that starts with it goes on inside the transaction.
const HELO_TRANSACTION: &str = "
    S: 220 mx.example.com ESMTP
    C: HELO bar.com
    S: 250 mx.example.com
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
";

/// RFC 5321 Appendix D.1: a typical transaction, one recipient refused.
#[test]
fn rfc5321_d1_typical_transaction() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<Smith@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<Jones@foo.com>
    S: 250 2.1.5 OK
    C: RCPT TO:<reject.Green@foo.com>
    S: 550 5.1.1 No such user
    C: RCPT TO:<Brown@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Blah blah blah...
    C: ...etc. etc. etc.
    C: .
    S: 250 2.0.0 OK: message accepted
    C: QUIT
    S: 221 2.0.0 Bye
",
        ),
    );
    assert!(r.closed);
    assert_eq!(
        r.bodies,
        vec![b"Blah blah blah...\r\n..etc. etc. etc.\r\n".to_vec()]
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.starts_with("MessageEnd { size: 37, recipients: 2")));
}

/// RFC 5321 Appendix D.2: a transaction aborted with RSET.
#[test]
fn rfc5321_d2_aborted_transaction() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<Smith@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<Jones@foo.com>
    S: 250 2.1.5 OK
    C: RSET
    S: 250 2.0.0 OK
    C: DATA
    S: 503 5.5.1 need MAIL command
    C: QUIT
    S: 221 2.0.0 Bye
",
        ),
    );
    assert!(r.events.contains(&"Reset".to_string()));
}

/// RFC 5321 Appendix D.4: verifying (the default answer is 252) and then
/// sending.
#[test]
fn rfc5321_d4_verify_and_send() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: VRFY Crispin
    S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    C: EXPN staff
    S: 502 5.5.1 EXPN not available
    C: MAIL FROM:<EAK@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<Admin.MRC@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Hi
    C: .
    S: 250 2.0.0 OK: message accepted
    C: QUIT
    S: 221 2.0.0 Bye
",
        ),
    );
}

/// RFC 2920 §3.1 example: everything through DATA in one batch; the next
/// transaction pipelined right after the final dot.
#[test]
fn rfc2920_pipelined_transaction() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO dbc.mtview.ca.us
    S: EHLO-REPLY
    C: MAIL FROM:<mrose@dbc.mtview.ca.us>
    C: RCPT TO:<ned@innosoft.com>
    C: RCPT TO:<dan@innosoft.com>
    C: RCPT TO:<kvc@innosoft.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Date: Thu, 21 May 1998 05:33:29 -0700
    C: Subject: Pipelining
    C:
    C: MAIL FROM:<not-a-command@example.com>
    C: .
    C: MAIL FROM:<mrose@dbc.mtview.ca.us>
    S: 250 2.0.0 OK: message accepted
    C: RCPT TO:<fred@innosoft.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: .
    C: QUIT
    S: 250 2.0.0 OK: message accepted
    S: 221 2.0.0 Bye
",
        ),
    );
    assert_eq!(r.bodies.len(), 2);
    assert!(r.bodies[0].ends_with(b"\r\nMAIL FROM:<not-a-command@example.com>\r\n"));
    assert_eq!(r.bodies[1], b"");
}

/// RFC 2920 §3.1: every RCPT refused, so the pipelined DATA gets 554 and the
/// client ends there.
#[test]
fn rfc2920_all_recipients_refused() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO dbc.mtview.ca.us
    S: EHLO-REPLY
    C: MAIL FROM:<mrose@dbc.mtview.ca.us>
    C: RCPT TO:<reject.ned@innosoft.com>
    C: RCPT TO:<reject.dan@innosoft.com>
    C: DATA
    C: QUIT
    S: 250 2.1.0 OK
    S: 550 5.1.1 No such user
    S: 550 5.1.1 No such user
    S: 554 5.5.1 no valid recipients
    S: 221 2.0.0 Bye
",
        ),
    );
}

/// RFC 3030 §4.1: a single BDAT LAST chunk (86 octets).
#[test]
fn rfc3030_single_chunk() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO ymir.claremont.edu
    S: EHLO-REPLY
    C: MAIL FROM:<Sam@Random.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<Susan@Random.com>
    S: 250 2.1.5 OK
    C: BDAT 86 LAST
    C: To: Susan@random.com
    C: From: Sam@random.com
    C: Subject: This is a bodyless test message
    S: 250 2.0.0 OK: message accepted
    C: QUIT
    S: 221 2.0.0 Bye
",
        ),
    );
    assert_eq!(r.bodies[0].len(), 86);
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 86, recipients: 1 }"));
}

/// RFC 3030 §4.2: pipelined BINARYMIME in several chunks (sizes reduced),
/// ending with `BDAT 0 LAST`. The chunks hold bare LF, NUL and a lone dot
/// line: BDAT content is binary and taken as is.
#[test]
fn rfc3030_pipelined_binarymime() {
    let mut c = config();
    c.binarymime = true;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO ymir.claremont.edu
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-BINARYMIME
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<ned@ymir.claremont.edu> BODY=BINARYMIME
    C: RCPT TO:<gvaudre@cnri.reston.va.us>
    C: RCPT TO:<jstewart@cnri.reston.va.us>
    C: BDAT 10
    C~ \\0\\n.\\r\\n\\xffabcd
    C: BDAT 3
    C~ \\r\\n.
    C: BDAT 0 LAST
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 250 2.0.0 10 octets received
    S: 250 2.0.0 3 octets received
    S: 250 2.0.0 OK: message accepted
    C: QUIT
    S: 221 2.0.0 Bye
",
    );
    assert_eq!(r.bodies, vec![b"\0\n.\r\n\xffabcd\r\n.".to_vec()]);
}

#[test]
fn helo_gets_no_extensions_and_params_get_555() {
    check(
        &Setup::new(config()),
        "
    S: 220 mx.example.com ESMTP
    C: HELO bar.com
    S: 250 mx.example.com
    C: MAIL FROM:<a@bar.com> BODY=8BITMIME
    S: 555 5.5.4 ESMTP parameter not supported
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: BDAT 3 LAST
    C~ abc
    S: 502 5.5.1 Command not implemented
    # The refused chunk ended the transaction (RFC 3030 §2): no message
    # can go on without it.
    C: DATA
    S: 503 5.5.1 need MAIL command
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: .
    S: 250 2.0.0 OK: message accepted
",
    );
}

#[test]
fn commands_out_of_order_get_503() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: EHLO-REPLY
    C: RCPT TO:<b@foo.com>
    S: 503 5.5.1 need MAIL command
    C: DATA
    S: 503 5.5.1 need MAIL command
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 nested MAIL command
    C: DATA
    S: 554 5.5.1 no valid recipients
    C: NOOP
    S: 250 2.0.0 OK
    C: HELP
    S: 214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN
    C: QUIT
    S: 221 2.0.0 Bye
",
        ),
    );
}

#[test]
fn ehlo_resets_the_transaction() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: EHLO bar.com
    S: EHLO-REPLY
    C: DATA
    S: 503 5.5.1 need MAIL command
",
        ),
    );
}

/// RFC 5321 §4.1.4: "If it is issued after the session begins and the EHLO
/// command is acceptable to the SMTP server, the SMTP server MUST clear all
/// buffers and reset the state exactly as if a RSET command had been
/// issued." An EHLO the application refuses is not acceptable: the
/// transaction goes on, and so does the earlier greeting (here HELO, so
/// ESMTP parameters stay refused).
#[test]
fn refused_ehlo_keeps_the_transaction_and_the_greeting() {
    let r = check(
        &Setup::new(config()),
        &format!(
            "{HELO_TRANSACTION}
    C: EHLO reject.bar.com
    S: 550 5.7.1 Go away
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Hi
    C: .
    S: 250 2.0.0 OK: message accepted
    C: MAIL FROM:<a@bar.com> BODY=8BITMIME
    S: 555 5.5.4 ESMTP parameter not supported
    C: EHLO reject.bar.com
    S: 550 5.7.1 Go away
    C: RCPT TO:<b@foo.com>
    S: 503 5.5.1 need MAIL command
"
        ),
    );
    assert_eq!(r.bodies, [b"Hi\r\n".to_vec()]);
}

/// A refused EHLO as the first command leaves the session waiting for a
/// greeting it accepts.
#[test]
fn refused_first_ehlo_still_needs_a_greeting() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO reject.bar.com
    S: 550 5.7.1 Go away
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
",
        ),
    );
}

#[test]
fn syntax_errors_and_unknown_commands() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<>>>>
    S: 501 5.1.7 invalid sender address: unexpected characters after the path
    C: MAIL FROM:<a@b> SIZE=rabbit
    S: 501 5.5.4 invalid SIZE parameter
    C: XYZZY plugh
    S: 500 5.5.2 Command unrecognized
    C: ETRN example.com
    S: 502 5.5.1 Command not implemented
    C: STARTTLS
    S: 502 5.5.1 Command not implemented
    C: AUTH PLAIN
    S: 502 5.5.1 Command not implemented
    C: LHLO bar.com
    S: 500 5.5.2 Command unrecognized
",
        ),
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("UnknownCommand(\"XYZZY\")")));
}

/// RFC 5321 §4.2.4: "502 SHOULD be used when the command is actually
/// recognized by the SMTP server, but not implemented. If the command is
/// not recognized, code 500 SHOULD be returned." TURN (RFC 821 §3.8: "To
/// refuse to change roles the receiver sends the 502 reply"; RFC 5321
/// Appendix F.1), SEND, SOML and SAML (RFC 821 §3.4, RFC 5321 Appendix
/// F.6) and ATRN (RFC 2645) are commands of the SMTP specifications that
/// the session knows and does not implement, in any case; a verb that
/// only starts like one is still unknown. None of them is advertised.
#[test]
fn known_but_unimplemented_commands_get_502() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: TURN
    S: 502 5.5.1 Command not implemented
    C: SEND FROM:<a@bar.com>
    S: 502 5.5.1 Command not implemented
    C: soml FROM:<a@bar.com>
    S: 502 5.5.1 Command not implemented
    C: Saml FROM:<a@bar.com>
    S: 502 5.5.1 Command not implemented
    C: ATRN example.com
    S: 502 5.5.1 Command not implemented
    C: TURNS
    S: 500 5.5.2 Command unrecognized
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
",
        ),
    );
    for verb in ["TURN", "SEND", "SOML", "SAML", "ATRN"] {
        let event = format!("NotImplemented(\"{verb}\")");
        assert!(
            r.events.iter().any(|e| e.contains(&event)),
            "no {event} in {:?}",
            r.events
        );
    }
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("UnknownCommand(\"TURNS\")")));
}

#[test]
fn extension_parameters_need_advertising() {
    let mut c = config();
    c.max_message_size = Some(1000);
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com> RET=HDRS
    S: 555 5.5.4 RET parameter not supported
    C: MAIL FROM:<a@bar.com> SMTPUTF8
    S: 555 5.5.4 SMTPUTF8 parameter not supported
    C: MAIL FROM:<a@bar.com> BODY=BINARYMIME
    S: 555 5.5.4 BODY parameter not supported
    C: MAIL FROM:<a@bar.com> SIZE=1001
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    C: MAIL FROM:<a@bar.com> SIZE=1000 BODY=8BITMIME XUNKNOWN=1
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com> NOTIFY=NEVER
    S: 555 5.5.4 NOTIFY parameter not supported
",
    );
}

/// RFC 5321 §4.1.1.11: a server that does not implement a MAIL or RCPT
/// parameter answers 555. Parameters this crate does not know go to the
/// application to judge, or, with `unknown_parameters` off, are refused
/// by the machine.
#[test]
fn unknown_parameters_go_to_the_application_or_are_refused() {
    let exchange = "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com> XVERP
    S: {mail}
    C: MAIL FROM:<a@bar.com>
    S: {again}
    C: RCPT TO:<b@foo.com> X-FOO=bar
    S: {rcpt}
";
    let mut strict = config();
    strict.unknown_parameters = false;
    let refused = check(
        &Setup::new(strict),
        &exchange
            .replace("{mail}", "555 5.5.4 Unrecognized parameter")
            .replace("{again}", "250 2.1.0 OK")
            .replace("{rcpt}", "555 5.5.4 Unrecognized parameter"),
    );
    let rejected: Vec<_> = refused
        .events
        .iter()
        .filter(|e| e.contains("UnknownParameter"))
        .collect();
    assert_eq!(rejected.len(), 2, "{:?}", refused.events);
    assert!(rejected[0].contains("\"XVERP\""), "{rejected:?}");
    assert!(rejected[1].contains("\"X-FOO\""), "{rejected:?}");
    assert!(!refused.events.iter().any(|e| e.starts_with("Rcpt")));

    let handed = check(
        &Setup::new(config()),
        &exchange
            .replace("{mail}", "250 2.1.0 OK")
            .replace("{again}", "503 5.5.1 nested MAIL command")
            .replace("{rcpt}", "250 2.1.5 OK"),
    );
    let mail = handed
        .events
        .iter()
        .find(|e| e.starts_with("Mail"))
        .unwrap();
    assert!(mail.contains("XVERP"), "{mail}");
    let rcpt = handed
        .events
        .iter()
        .find(|e| e.starts_with("Rcpt"))
        .unwrap();
    assert!(rcpt.contains("X-FOO") && rcpt.contains("bar"), "{rcpt}");
    assert!(!handed.events.iter().any(|e| e.contains("UnknownParameter")));
}

#[test]
fn dsn_parameters_when_advertised() {
    let mut c = config();
    c.dsn = true;
    c.pipelining = false;
    c.chunking = false;
    c.eight_bit_mime = false;
    c.enhanced_status_codes = false;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250 DSN
    C: MAIL FROM:<a@bar.com> RET=HDRS ENVID=QQ314159
    S: 250 OK
    C: RCPT TO:<b@foo.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@foo.com
    S: 250 OK
",
    );
}

/// RFC 3461 §4: each DSN parameter may appear once in a command; a
/// repeat is refused with `501 5.5.4`, the transaction left as it was.
#[test]
fn dsn_parameters_given_twice_get_501() {
    let mut c = config();
    c.dsn = true;
    c.pipelining = false;
    c.chunking = false;
    c.eight_bit_mime = false;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-ENHANCEDSTATUSCODES
    S: 250 DSN
    C: MAIL FROM:<a@bar.com> RET=HDRS RET=FULL
    S: 501 5.5.4 duplicate RET parameter
    C: MAIL FROM:<a@bar.com> ENVID=A envid=B
    S: 501 5.5.4 duplicate ENVID parameter
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com> NOTIFY=NEVER NOTIFY=SUCCESS
    S: 501 5.5.4 duplicate NOTIFY parameter
    C: RCPT TO:<b@foo.com> ORCPT=rfc822;b@foo.com ORCPT=rfc822;c@foo.com
    S: 501 5.5.4 duplicate ORCPT parameter
    C: RCPT TO:<b@foo.com> NOTIFY=DELAY ORCPT=rfc822;b@foo.com
    S: 250 2.1.5 OK
",
    );
}

#[test]
fn utf8_addresses_need_smtputf8() {
    // Not advertised: 553 5.6.7 for the address (the keyword itself 555).
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<jöran@bär.example>
    S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
",
        ),
    );
    let mut c = config();
    c.smtputf8 = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<jöran@bär.example>
    S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
    C: MAIL FROM:<a@bar.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<δοκιμή@παράδειγμα.example>
    S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
    C: RSET
    S: 250 2.0.0 OK
    C: MAIL FROM:<jöran@bär.example> SMTPUTF8
    S: 250 2.1.0 OK
    C: RCPT TO:<δοκιμή@παράδειγμα.example>
    S: 250 2.1.5 OK
",
    );
    // RFC 6533 §3: an ORCPT address in UTF-8 (`utf-8-addr-unitext`) needs
    // SMTPUTF8 as an address does; its xtext form does not.
    let mut c = config();
    c.smtputf8 = true;
    c.dsn = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 DSN
    C: MAIL FROM:<a@bar.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@bar.example> ORCPT=utf-8;用户@example.com
    S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
    C: RCPT TO:<b@bar.example> ORCPT=utf-8;\\x{7528}\\x{6237}@example.com
    S: 250 2.1.5 OK
    C: RSET
    S: 250 2.0.0 OK
    C: MAIL FROM:<a@bar.example> SMTPUTF8
    S: 250 2.1.0 OK
    C: RCPT TO:<b@bar.example> ORCPT=utf-8;用户@example.com
    S: 250 2.1.5 OK
",
    );
}

/// A limit past what `LIMITS` can carry (`u32`) is advertised as
/// `u32::MAX`, more than any client sends, rather than left out: left out,
/// `max_recipients` alone made a bare `LIMITS`, which `limits-param` (one
/// limit at least, RFC 9422 §3) does not allow, and a huge
/// `max_transactions` went unadvertised.
#[cfg(target_pointer_width = "64")]
#[test]
fn limits_past_u32_are_advertised_as_u32_max() {
    let mut c = config();
    c.max_recipients = usize::MAX;
    c.limits = true;
    check(
        &Setup::new(c.clone()),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=4294967295
",
    );
    c.max_recipients = 100;
    c.max_transactions = Some(u32::MAX as usize + 1);
    c.max_recipient_domains = Some(usize::MAX);
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=100 MAILMAX=4294967295 RCPTDOMAINMAX=4294967295
",
    );
}

#[test]
fn recipient_limit_gives_452() {
    let mut c = config();
    c.max_recipients = 2;
    c.limits = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=2
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b1@foo.com>
    C: RCPT TO:<b2@foo.com>
    C: RCPT TO:<b3@foo.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 452 4.5.3 Too many recipients
    S: 354 End data with <CR><LF>.<CR><LF>
    C: .
    S: 250 2.0.0 OK: message accepted
",
    );
}

#[test]
fn error_limit_closes_with_421() {
    let mut c = config();
    c.max_errors = 2;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: BAD1
    S: 500 5.5.2 Command unrecognized
    C: BAD2
    S: 500 5.5.2 Command unrecognized
    C: BAD3
    S: 421 4.7.0 mx.example.com Too many errors, closing connection
    C: NOOP
",
    );
    assert!(r.closed);
    assert_eq!(
        r.remote_error,
        Some(smtp_proto::server::RemoteError::TooManyErrors)
    );
}

/// The 503 to EHLO carries no enhanced code: RFC 2034 §3 leaves "any
/// response to HELO or EHLO" without one.
#[test]
fn refused_connection_answers_503_until_quit() {
    let mut setup = Setup::new(config());
    setup.refuse = true;
    let r = check(
        &setup,
        "
    S: 554 mx.example.com No SMTP service here
    C: EHLO bar.com
    S: 503 No SMTP service here, send QUIT
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: QUIT
    S: 221 2.0.0 Bye
",
    );
    assert!(r.closed);
}

/// A refused session acts on QUIT alone, but a BDAT command there is
/// followed by its chunk all the same: the chunk is read and dropped (the
/// QUIT and the lines in it are not commands), and the command gets one
/// 503 once the chunk is in. Then the real QUIT is answered.
#[test]
fn refused_connection_reads_and_drops_a_bdat_chunk() {
    let setup = Setup {
        refuse: true,
        ..Setup::new(config())
    };
    let r = check(
        &setup,
        "
    S: 554 mx.example.com No SMTP service here
    C: BDAT 12
    C~ QUIT\\r\\nNOOP\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: NOOP
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: QUIT
    S: 221 2.0.0 Bye
",
    );
    assert!(r.closed);
    assert_eq!(r.remote_error, None);
    assert_eq!(r.leftover, 0);
    assert_eq!(r.events.iter().filter(|e| *e == "Quit").count(), 1);
    assert_eq!(r.events.len(), 3, "{:#?}", r.events);
    assert!(r.bodies.is_empty());
}

/// The same for a last chunk of many lines, for a BDAT line refused for
/// its end marker or a NUL octet (its size is readable, so its chunk is
/// read as in a greeted session), and for an empty chunk: one 503 each,
/// and the chunks' lines never answered. A BDAT line without a readable
/// size, or with a bare LF, has no chunk to place: 503 at once, and the
/// next line is a command.
#[test]
fn refused_connection_answers_each_bdat_once() {
    let setup = Setup {
        refuse: true,
        ..Setup::new(config())
    };
    let lines = "RSET\\r\\n".repeat(50);
    let r = check(
        &setup,
        &format!(
            "
    S: 554 mx.example.com No SMTP service here
    C: BDAT 300 LAST
    C~ {lines}
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: BDAT 12 NOW
    C~ QUIT\\r\\nQUIT\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: BDAT 0
    S: 503 5.5.1 No SMTP service here, send QUIT
    C~ BDAT 6 LAST\\0\\r\\nNOOP\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: BDAT x
    S: 503 5.5.1 No SMTP service here, send QUIT
    C~ BDAT 6\\nx\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: NOOP
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: QUIT
    S: 221 2.0.0 Bye
"
        ),
    );
    assert!(r.closed);
    assert_eq!(r.remote_error, None);
    assert_eq!(r.leftover, 0);
}

/// The 503 to a BDAT in a refused session counts toward the error limit
/// once, for the command and its chunk: with a limit of one error the
/// QUIT after it is still answered, and the next BDAT reaches the limit
/// (421) once its chunk is in.
#[test]
fn refused_connection_bdat_counts_one_error() {
    let mut c = config();
    c.max_errors = 1;
    let setup = Setup {
        refuse: true,
        ..Setup::new(c)
    };
    let r = check(
        &setup,
        "
    S: 554 mx.example.com No SMTP service here
    C: BDAT 6
    C~ NOOP\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: QUIT
    S: 221 2.0.0 Bye
",
    );
    assert_eq!(r.remote_error, None);
    let r = check(
        &setup,
        "
    S: 554 mx.example.com No SMTP service here
    C: BDAT 6
    C~ NOOP\\r\\n
    S: 503 5.5.1 No SMTP service here, send QUIT
    C: BDAT 6
    C~ NOOP\\r\\n
    S: 421 4.7.0 mx.example.com Too many errors, closing connection
    C: QUIT
",
    );
    assert!(r.closed);
    assert_eq!(
        r.remote_error,
        Some(smtp_proto::server::RemoteError::TooManyErrors)
    );
}

/// RFC 5321 §4.2.3: 421 is "Service not available, closing transmission
/// channel" (and §3.8: the server closes after sending it). A greeting
/// refused with 421 ends the session: nothing more is read, and the caller
/// is told to close. A 554 refusal waits for QUIT (above, RFC 5321 §3.1).
#[test]
fn refused_connection_with_421_closes_at_once() {
    let mut s = ServerSession::new(config()).unwrap();
    s.refuse(Some(support::reply(421, "4.3.2", "Try again later")))
        .unwrap();
    assert!(s.is_closed());
    assert_eq!(s.phase(), Phase::Closed);
    assert_eq!(s.timeout(), None);
    let step = s.handle_input(b"EHLO bar.com\r\nQUIT\r\n").unwrap();
    assert_eq!(step, Step::closed(0));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, b"421 4.3.2 Try again later\r\n");

    let mut s = ServerSession::new(config()).unwrap();
    s.refuse(Some(support::reply(554, "5.7.1", "Not from you")))
        .unwrap();
    assert!(!s.is_closed());
    let step = s.handle_input(b"EHLO bar.com\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Rejected {
            reason: Rejection::SessionRefused,
            ..
        })
    ));
}

/// Answers 421 to recipients whose local part starts with `busy`, else
/// as [`support::default_policy`].
fn busy_policy(event: &ServerEvent<'_>, app: &mut support::AppState) -> support::Action {
    match event {
        ServerEvent::Rcpt { to, .. } if to.to_string().starts_with("<busy") => {
            support::Action::Reply(support::reply(421, "4.7.0", "Rate limited, closing"))
        }
        _ => support::default_policy(event, app),
    }
}

/// RFC 5321 §3.8: a server that answers 421 closes the channel. A 421 the
/// application gives to a decision ends the session like the machine's
/// own: the pipelined commands after it are not read or answered.
#[test]
fn application_421_closes_the_session() {
    let mut setup = Setup::new(config());
    setup.policy = busy_policy;
    let r = check(
        &setup,
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<busy@foo.com>
    S: 421 4.7.0 Rate limited, closing
    C: RCPT TO:<b@foo.com>
    C: DATA
",
        ),
    );
    assert!(r.closed);
    assert!(r.bodies.is_empty());
    assert!(!r.events.iter().any(|e| e.contains("b@foo.com")));
}

/// The same for LMTP: a 421 among the replies at the end of a message
/// closes the session once every recipient has its reply.
#[test]
fn lmtp_421_for_a_recipient_closes_the_session() {
    let mut c = config();
    c.lmtp = true;
    let mut setup = Setup::new(c);
    setup.policy = |event, app| match event {
        ServerEvent::MessageEnd { .. } => support::Action::PerRecipient(vec![
            support::reply(250, "2.0.0", "Delivered"),
            support::reply(421, "4.3.0", "Shutting down"),
        ]),
        _ => support::default_policy(event, app),
    };
    let r = check(
        &setup,
        "
    S: 220 mx.example.com LMTP
    C: LHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: RCPT TO:<c@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Hi
    C: .
    S: 250 2.0.0 Delivered
    S: 421 4.3.0 Shutting down
    C: QUIT
",
    );
    assert!(r.closed);
    assert_eq!(r.bodies, [b"Hi\r\n".to_vec()]);
}

#[test]
fn data_size_limit_is_checked_at_the_end() {
    let mut c = config();
    c.max_message_size = Some(10);
    let r = check(
        &Setup::new(c),
        &format!(
            "{HELO_TRANSACTION}
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: 0123456789
    C: RCPT TO:<smuggled@foo.com>
    C: .
    S: 552 5.3.4 message exceeds fixed maximum message size
    C: RCPT TO:<b@foo.com>
    S: 503 5.5.1 need MAIL command
"
        ),
    );
    assert!(r.events.iter().any(|e| e.contains("Data(TooLarge)")));
}

/// The limit is exact and counts the body after unstuffing: a body of
/// exactly `max_message_size` octets (its leading dot removed) is
/// accepted, one octet more is refused.
#[test]
fn data_size_limit_is_exact_and_counts_unstuffed_octets() {
    let mut c = config();
    c.max_message_size = Some(10);
    let r = check(
        &Setup::new(c),
        &format!(
            "{HELO_TRANSACTION}
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: ..2345678
    C: .
    S: 250 2.0.0 OK: message accepted
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: 123456789
    C: .
    S: 552 5.3.4 message exceeds fixed maximum message size
"
        ),
    );
    assert_eq!(r.bodies, [b".2345678\r\n".to_vec()]);
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.contains("Data(TooLarge)"))
            .count(),
        1
    );
}

#[test]
fn long_data_lines_are_read_then_refused() {
    let line = "x".repeat(999);
    let r = check(
        &Setup::new(config()),
        &format!(
            "{HELO_TRANSACTION}
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: {line}
    C: .
    S: 554 5.6.0 message contains over-long lines
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert!(r.events.iter().any(|e| e.contains("Data(LineTooLong)")));
}

/// RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including
/// the <CRLF> is 1000 octets (not counting the leading dot duplicated for
/// transparency)." A 998-octet line that starts with a dot goes out as 999
/// octets plus CRLF and is accepted; one octet more is refused.
#[test]
fn stuffed_dot_does_not_count_toward_the_line_limit() {
    for (line, reply) in [
        (
            format!(".{}", "x".repeat(997)),
            "250 2.0.0 OK: message accepted",
        ),
        (
            format!(".{}", "x".repeat(998)),
            "554 5.6.0 message contains over-long lines",
        ),
    ] {
        let r = check(
            &Setup::new(config()),
            &format!(
                "{HELO_TRANSACTION}
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: .{line}
    C: .
    S: {reply}
"
            ),
        );
        if reply.starts_with("250") {
            assert_eq!(r.bodies, [format!("{line}\r\n").into_bytes()]);
        }
    }
}

#[test]
fn bdat_rules() {
    let mut c = config();
    c.max_message_size = Some(10);
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-SIZE 10
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    # BDAT without MAIL: the chunk is still consumed.
    C: BDAT 5
    C~ QUIT\\n
    S: 503 5.5.1 Bad sequence of commands
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: BDAT 4
    C~ NOOP
    S: 554 5.5.1 No valid recipients
    # The refused chunk ended the transaction (RFC 3030 §2).
    C: RCPT TO:<b@foo.com>
    S: 503 5.5.1 need MAIL command
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: BDAT 4
    C~ abcd
    S: 250 2.0.0 4 octets received
    # DATA after BDAT in the same transaction.
    C: DATA
    S: 503 5.5.1 command not allowed after BDAT
    # Size limit across chunks: 4 + 7 > 10; the chunk is consumed.
    C: BDAT 7 LAST
    C~ RSET\\r\\n.
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    C: BDAT 2 LAST
    C~ xy
    S: 503 5.5.1 Bad sequence of commands
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: BDAT 3
    C~ abc
    S: 250 2.0.0 3 octets received
    # RSET between chunks drops the partial message.
    C: RSET
    S: 250 2.0.0 OK
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: BDAT 0 LAST
    S: 250 2.0.0 OK: message accepted
",
    );
}

/// RFC 3030 §2: "If a 5XX or 4XX code is received by the sender-SMTP in
/// response to a BDAT chunk, the transaction should be considered failed
/// [...]. If the receiver-SMTP has declined the transaction, it MUST reply
/// with a failure code to any BDAT commands that the sender-SMTP
/// pipelines." Every refused chunk (here a wrong end marker, in the
/// middle and at the start of a message; see also
/// `helo_gets_no_extensions_and_params_get_555` and `bdat_rules`) ends the
/// transaction: the chunks pipelined after it get 503, their
/// bytes are read and dropped, and no message with a chunk missing is
/// ever delivered.
#[test]
fn refused_bdat_chunk_ends_the_transaction() {
    let r = check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: EHLO-REPLY
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: BDAT 6
    C~ AAAA\\r\\n
    C: BDAT 6 NOW
    C~ BBBB\\r\\n
    C: BDAT 6 LAST
    C~ RSET\\r\\n
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.0.0 6 octets received
    S: 501 5.5.4 expected LAST
    S: 503 5.5.1 Bad sequence of commands
    C: RCPT TO:<c@foo.com>
    S: 503 5.5.1 need MAIL command
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: BDAT 6 LAST junk
    C~ AAAA\\r\\n
    C: BDAT 6 LAST
    C~ NOOP\\r\\n
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 501 5.5.4 unexpected text after LAST
    S: 503 5.5.1 Bad sequence of commands
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<b@foo.com>
    C: BDAT 3 LAST
    C~ abc
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.0.0 OK: message accepted
",
        ),
    );
    assert_eq!(r.bodies, [b"abc".to_vec()]);
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.starts_with("MessageEnd"))
            .count(),
        1
    );
}

#[test]
fn binarymime_needs_bdat() {
    let mut c = config();
    c.binarymime = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-BINARYMIME
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com> BODY=BINARYMIME
    S: 250 2.1.0 OK
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: DATA
    S: 503 5.5.1 BINARYMIME requires BDAT
",
    );
}

fn tls_config() -> smtp_proto::server::ServerConfig {
    let mut c = config();
    c.starttls = true;
    c.requiretls = true;
    c.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    c.auth_requires_tls = true;
    c
}

/// RFC 3207 §4.2: after the TLS handshake the server forgets what the
/// client told it before, the AUTH state included, so an identity
/// established in the clear does not carry over: AUTH is allowed again.
#[test]
fn starttls_forgets_an_earlier_auth() {
    let mut c = tls_config();
    c.auth_requires_tls = false;
    c.requiretls = false;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 Already authenticated
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
",
    );
    let auths = r.events.iter().filter(|e| e.starts_with("Auth(")).count();
    assert_eq!(auths, 2, "{:#?}", r.events);
}

/// AUTH needs TLS by default (RFC 4954 §4, RFC 8314): a server given
/// mechanisms offers none of them in the clear and answers AUTH with
/// `538 5.7.11`, so a PLAIN password never crosses a plain-text
/// connection; after STARTTLS they are offered and accepted.
#[test]
fn auth_needs_tls_by_default() {
    let mut c = config();
    c.starttls = true;
    c.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    assert!(c.auth_requires_tls);
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: AUTH LOGIN
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
",
    );
    let auths: Vec<_> = r.events.iter().filter(|e| e.starts_with("Auth(")).collect();
    assert_eq!(auths.len(), 1, "{:#?}", r.events);
}

/// With the default `auth_requires_tls`, implicit TLS counts as TLS: AUTH
/// is offered and accepted from the first EHLO. (Without any way to TLS the
/// configuration is refused: `auth_over_tls_needs_a_way_to_tls`.)
#[test]
fn auth_needs_tls_by_default_with_implicit_tls() {
    let mut c = config();
    c.implicit_tls = true;
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    let r = check(
        &Setup::new(c),
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
"
        ),
    );
    assert!(
        r.events.iter().any(|e| e.starts_with("Auth(")),
        "{:#?}",
        r.events
    );
}

#[test]
fn starttls_forgets_everything_and_stops_advertising() {
    let r = check(
        &Setup::new(tls_config()),
        "
    S: 220 mx.example.com ESMTP
    C: STARTTLS
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: STARTTLS now
    S: 501 5.5.4 STARTTLS takes no argument
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: STARTTLS
    S: 503 5.5.1 not allowed inside a mail transaction
    C: RSET
    S: 250 2.0.0 OK
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 REQUIRETLS
    C: STARTTLS
    S: 503 5.5.1 TLS already active
    C: MAIL FROM:<a@bar.com> REQUIRETLS
    S: 250 2.1.0 OK
",
    );
    assert!(r.events.contains(&"StartTls".to_string()));
}

/// RFC 8314 §3.3: on implicit TLS the session starts encrypted. Nothing
/// offers STARTTLS (even with `starttls` set, as a server that also has a
/// plain port would configure it), AUTH and REQUIRETLS are there from the
/// first EHLO, and STARTTLS is refused as on any encrypted session.
#[test]
fn implicit_tls_starts_encrypted() {
    let mut c = tls_config();
    c.implicit_tls = true;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 REQUIRETLS
    C: STARTTLS
    S: 503 5.5.1 TLS already active
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
    C: MAIL FROM:<a@bar.com> REQUIRETLS
    S: 250 2.1.0 OK
",
    );
    assert!(
        !r.events.contains(&"StartTls".to_string()),
        "{:#?}",
        r.events
    );
    assert!(
        r.events.iter().any(|e| e.starts_with("Auth(")),
        "{:#?}",
        r.events
    );
}

/// Without STARTTLS in the configuration, an implicit-TLS session still
/// answers STARTTLS with why it cannot start (TLS is up), not with 502.
#[test]
fn implicit_tls_without_starttls_says_tls_is_up() {
    let mut c = config();
    c.implicit_tls = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: STARTTLS
    S: 503 5.5.1 TLS already active
",
    );
}

/// The EHLO reply of [`tls_config`] before TLS while STARTTLS is
/// declined: no STARTTLS, and no AUTH (it needs TLS).
const EHLO_TLS_DECLINED: &str = "
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
";

/// RFC 3207 §4: a server that cannot run TLS for now answers STARTTLS
/// with "454 TLS not available due to temporary reason". EHLO does not
/// offer it, the sequence checks still come first, no handshake follows,
/// so the MAIL pipelined after the declined STARTTLS is an ordinary
/// command, and the session goes on in plaintext (AUTH still needs TLS).
#[test]
fn starttls_declined_at_run_time_gets_454_and_stays_plaintext() {
    let setup = Setup {
        starttls_available: false,
        ..Setup::new(tls_config())
    };
    let r = check(
        &setup,
        &format!(
            "
    S: 220 mx.example.com ESMTP
    C: STARTTLS
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    {EHLO_TLS_DECLINED}
    C: STARTTLS
    C: MAIL FROM:<a@bar.com>
    S: 454 4.7.0 TLS not available due to temporary reason
    S: 250 2.1.0 OK
    C: STARTTLS
    S: 503 5.5.1 not allowed inside a mail transaction
    C: RSET
    S: 250 2.0.0 OK
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: STARTTLS
    S: 454 4.7.0 TLS not available due to temporary reason
    C: QUIT
    S: 221 2.0.0 Bye
"
        ),
    );
    assert!(r.closed);
    assert_eq!(r.remote_error, None);
    assert!(
        !r.events.contains(&"StartTls".to_string()),
        "{:#?}",
        r.events
    );
    let declined = r
        .events
        .iter()
        .filter(|e| e.starts_with("Rejected") && e.contains("reason: TlsNotAvailable"))
        .count();
    assert_eq!(declined, 2, "{:#?}", r.events);
    assert!(r.events.iter().any(|e| e.starts_with("Mail")));
}

/// A declined STARTTLS is the server's condition, not the client's error:
/// it does not count toward `max_errors`.
#[test]
fn declined_starttls_does_not_count_as_an_error() {
    let mut c = tls_config();
    c.max_errors = 1;
    check(
        &Setup {
            starttls_available: false,
            ..Setup::new(c)
        },
        &format!(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    {EHLO_TLS_DECLINED}
    C: STARTTLS
    S: 454 4.7.0 TLS not available due to temporary reason
    C: STARTTLS
    S: 454 4.7.0 TLS not available due to temporary reason
    C: STARTTLS
    S: 454 4.7.0 TLS not available due to temporary reason
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
}

/// Declining STARTTLS changes no other answer to it: 503 while TLS is
/// up (implicit TLS), 502 when the configuration has no STARTTLS or the
/// client greeted with HELO.
#[test]
fn declined_starttls_keeps_the_other_answers_first() {
    let declined = |c| Setup {
        starttls_available: false,
        ..Setup::new(c)
    };
    let mut implicit = tls_config();
    implicit.implicit_tls = true;
    let r = check(
        &declined(implicit),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 REQUIRETLS
    C: STARTTLS
    S: 503 5.5.1 TLS already active
",
    );
    assert!(r.events.iter().any(|e| e.contains("TlsAlreadyActive")));
    let r = check(
        &declined(config()),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: STARTTLS
    S: 502 5.5.1 Command not implemented
",
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("NotImplemented(\"STARTTLS\")")));
    check(
        &declined(tls_config()),
        "
    S: 220 mx.example.com ESMTP
    C: HELO bar.com
    S: 250 mx.example.com
    C: STARTTLS
    S: 502 5.5.1 Command not implemented
",
    );
}

/// The switch works at any time: declined, then allowed again (EHLO lists
/// STARTTLS and STARTTLS gets 220), and a STARTTLS already answered with
/// 220 is not undone by declining afterwards.
#[test]
fn starttls_can_be_declined_and_allowed_again() {
    let mut s = ServerSession::new(tls_config()).unwrap();
    assert!(s.starttls_available());
    s.set_starttls_available(false);
    assert!(!s.starttls_available());
    s.greet().unwrap();
    let mut out = Vec::new();

    let step = s.handle_input(b"EHLO bar.com\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Hello { .. })
    ));
    s.accept().unwrap();
    let step = s.handle_input(b"STARTTLS\r\n").unwrap();
    assert_eq!(step.consumed, 10);
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Rejected {
            reason: Rejection::TlsNotAvailable,
            ..
        })
    ));
    assert_eq!(s.phase(), Phase::Ready);
    s.poll_transmit(&mut out);
    let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
    assert!(!text.contains("STARTTLS"), "{text}");
    assert!(text.ends_with("\r\n454 4.7.0 TLS not available due to temporary reason\r\n"));

    s.set_starttls_available(true);
    let step = s.handle_input(b"EHLO bar.com\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Hello { .. })
    ));
    s.accept().unwrap();
    let step = s.handle_input(b"STARTTLS\r\n").unwrap();
    assert_eq!(step.outcome, Outcome::Event(ServerEvent::StartTls));
    s.set_starttls_available(false);
    s.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\r\n250-STARTTLS\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n220 2.0.0 Ready to start TLS\r\n"),
        "{text}"
    );
    s.tls_established().unwrap();
    assert!(s.is_tls());
}

#[test]
fn auth_exchanges() {
    let mut c = config();
    c.auth_mechanisms = vec![
        SaslMechanism::Plain,
        SaslMechanism::Login,
        SaslMechanism::XOAuth2,
    ];
    c.auth_requires_tls = false;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN XOAUTH2
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH CRAM-MD5
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH PLAIN not!base64
    S: 501 5.5.2 AUTH initial response is not base64
    C: AUTH PLAIN AGFsaWNl
    S: 501 5.5.2 Malformed authentication response
    C: AUTH PLAIN
    S: 334 
    C: *
    S: 501 5.0.0 Authentication cancelled
    C: AUTH PLAIN
    S: 334 
    C: %%%
    S: 501 5.5.2 Cannot Base64-decode client response
    C: AUTH LOGIN
    S: 334 VXNlcm5hbWU6
    C: YWxpY2U=
    S: 334 UGFzc3dvcmQ6
    C: d3Jvbmc=
    S: 535 5.7.8 Authentication credentials invalid
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 not allowed inside a mail transaction
    C: RSET
    S: 250 2.0.0 OK
    C: AUTH PLAIN
    S: 334 
    C: AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 Already authenticated
",
    );
    let auths: Vec<&String> = r.events.iter().filter(|e| e.starts_with("Auth(")).collect();
    assert_eq!(auths.len(), 2);
    for e in &r.events {
        assert!(
            !e.contains("secret") && !e.contains("wrong"),
            "credential leaked: {e}"
        );
    }
}

/// RFC 4954 §4: "An AUTH command issued during a mail transaction MUST be
/// rejected with a 503 reply", and "After a successful AUTH command
/// completes, a server MUST reject any further AUTH commands with a 503
/// reply": an AUTH command whose arguments do not parse (an initial
/// response that is not base64, no mechanism, a malformed mechanism name)
/// is such a command too, and gets the 503 a well-formed one gets, not the
/// 501 of its syntax; so it does before EHLO. Where AUTH is not offered it
/// gets the 502 of a well-formed one. Elsewhere its syntax is refused.
#[test]
fn malformed_auth_out_of_place_is_refused_as_a_well_formed_one() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    // Every refusal counts toward the error limit: room for all of them.
    c.max_errors = 20;
    check(
        &Setup::new(c.clone()),
        &format!(
            "
    S: 220 mx.example.com ESMTP
    C: AUTH PLAIN not!base64
    S: 503 5.5.1 send EHLO/HELO first
{}
    C: AUTH PLAIN not!base64
    S: 501 5.5.2 AUTH initial response is not base64
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: AUTH PLAIN not!base64
    S: 503 5.5.1 not allowed inside a mail transaction
    C: AUTH
    S: 503 5.5.1 not allowed inside a mail transaction
    C: AUTH =
    S: 503 5.5.1 not allowed inside a mail transaction
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 not allowed inside a mail transaction
    C: RSET
    S: 250 2.0.0 OK
    C: AUTH
    S: 501 5.5.4 AUTH requires an argument
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
    C: AUTH PLAIN not!base64
    S: 503 5.5.1 Already authenticated
    C: AUTH
    S: 503 5.5.1 Already authenticated
    C: AUTH =
    S: 503 5.5.1 Already authenticated
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 503 5.5.1 Already authenticated
",
            EHLO_AUTH_PLAIN.replace("S: 220 mx.example.com ESMTP", "")
        ),
    );
    // A HELO session, and a server without AUTH: not implemented.
    for (helo, server_config) in [
        ("C: HELO bar.com\n    S: 250 mx.example.com", c.clone()),
        (
            "C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES",
            config(),
        ),
    ] {
        check(
            &Setup::new(server_config),
            &format!(
                "
    S: 220 mx.example.com ESMTP
    {helo}
    C: AUTH PLAIN not!base64
    S: 502 5.5.1 Command not implemented
    C: AUTH
    S: 502 5.5.1 Command not implemented
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 502 5.5.1 Command not implemented
"
            ),
        );
    }
}

/// RFC 4954 §4 and RFC 4648 §3.3: base64 has `=` padding only at its end.
/// An initial response with padding inside is refused as the command's
/// syntax (501 5.5.2, before the mechanism is looked at), as any other
/// text that is not base64; the same text after a 334 is refused as a
/// response that does not decode.
#[test]
fn auth_response_with_padding_inside_is_not_base64() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let r = check(
        &Setup::new(c),
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN AGFsaWNl=AHNlY3JldA==
    S: 501 5.5.2 AUTH initial response is not base64
    C: AUTH CRAM-MD5 QQ==QQ==
    S: 501 5.5.2 AUTH initial response is not base64
    C: AUTH PLAIN
    S: 334 
    C: QQ==QQ==
    S: 501 5.5.2 Cannot Base64-decode client response
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
"
        ),
    );
    let syntax = r.count_events("InvalidInitialResponse");
    assert_eq!(syntax, 2, "{:?}", r.events);
    let bad = r.count_events("AuthBadBase64");
    assert_eq!(bad, 1, "{:?}", r.events);
}

/// RFC 5321 §4.1.1.3: only `<Postmaster>` is the postmaster without a
/// domain. A source route needs a whole mailbox after it (§4.1.2), so
/// `<@route:Postmaster>` is refused as a recipient without a domain, and
/// `<@route:Postmaster@domain>` is that mailbox (the route dropped).
#[test]
fn routed_bare_postmaster_is_not_the_postmaster() {
    let r = check(
        &Setup::new(config()),
        &format!(
            "{HELO_TRANSACTION}
    C: RCPT TO:<@relay.example:Postmaster>
    S: 501 5.1.3 invalid recipient address: mailbox has no domain
    C: RCPT TO:<@relay.example:Postmaster@foo.com>
    S: 250 2.1.5 OK
    C: RCPT TO:<Postmaster>
    S: 250 2.1.5 OK
"
        ),
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.contains("InvalidForwardPath(MissingDomain)")),
        "{:?}",
        r.events
    );
}

/// Accepts PLAIN credentials whose password is `secret` as their
/// authentication identity; otherwise as `default_policy`.
fn accept_as_authcid(event: &ServerEvent<'_>, app: &mut support::AppState) -> support::Action {
    match event {
        ServerEvent::Auth(smtp_proto::sasl::Credentials::Plain {
            authcid, password, ..
        }) if password.expose() == "secret" => support::Action::AcceptAs(authcid.clone()),
        _ => support::default_policy(event, app),
    }
}

/// A submission server (RFC 6409 §4.3: the MSA "MUST by default issue an
/// error response to the MAIL command if the session has not been
/// authenticated") with `auth_required`: MAIL, VRFY and EXPN get `530
/// 5.7.0 Authentication required` (RFC 4954 §6) until AUTH succeeds,
/// while EHLO, NOOP, RSET, HELP, STARTTLS, AUTH and QUIT work. Before TLS
/// AUTH is not offered (RFC 4954 §4: 538 5.7.11). The identity accepted
/// is the session's, and stays across a new EHLO.
#[test]
fn submission_requires_auth_before_mail() {
    let mut c = tls_config();
    c.requiretls = false;
    c.auth_required = true;
    let mut setup = Setup::new(c);
    setup.policy = accept_as_authcid;
    let r = check(
        &setup,
        "
    S: 220 mx.example.com ESMTP
    C: MAIL FROM:<alice@bar.com>
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<alice@bar.com>
    S: 530 5.7.0 Authentication required
    C: RCPT TO:<bob@foo.com>
    S: 503 5.5.1 need MAIL command
    C: VRFY bob
    S: 530 5.7.0 Authentication required
    C: EXPN staff
    S: 530 5.7.0 Authentication required
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: NOOP
    S: 250 2.0.0 OK
    C: RSET
    S: 250 2.0.0 OK
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<alice@bar.com>
    S: 530 5.7.0 Authentication required
    C: AUTH PLAIN AGFsaWNlAHdyb25n
    S: 535 5.7.8 Authentication credentials invalid
    C: MAIL FROM:<alice@bar.com>
    S: 530 5.7.0 Authentication required
    C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    S: 235 2.7.0 Authentication successful
    C: MAIL FROM:<alice@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<bob@foo.com>
    S: 250 2.1.5 OK
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN LOGIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: VRFY bob
    S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    C: MAIL FROM:<alice@bar.com>
    S: 250 2.1.0 OK
",
    );
    let refusals = r
        .events
        .iter()
        .filter(|e| e.as_str() == "Rejected { code: ReplyCode(530), reason: AuthRequired }")
        .count();
    assert_eq!(refusals, 5, "{:#?}", r.events);
    // Only the VRFY after AUTH reaches the application.
    let vrfys = r.events.iter().filter(|e| e.starts_with("Vrfy(")).count();
    assert_eq!(vrfys, 1, "{:#?}", r.events);
    assert_eq!(r.identity.as_deref(), Some("alice"));
}

/// Without ENHANCEDSTATUSCODES the 530 is bare, and a configuration that
/// requires AUTH but offers no mechanism is refused.
#[test]
fn auth_required_without_enhanced_codes_and_without_mechanisms() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    c.auth_required = true;
    c.enhanced_status_codes = false;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN
    S: 250 CHUNKING
    C: MAIL FROM:<alice@bar.com>
    S: 530 Authentication required
",
    );
    let mut c = config();
    c.auth_required = true;
    assert_eq!(
        ServerSession::new(c).err(),
        Some(smtp_proto::server::ConfigError::Extension(
            "auth_required needs auth_mechanisms"
        ))
    );
}

/// A server that offers AUTH only over TLS and has no way to TLS (neither
/// STARTTLS nor implicit TLS) could never use its mechanisms, and with
/// `auth_required` never take mail: the configuration is refused. Any way
/// to TLS, or AUTH allowed in the clear, makes it usable.
#[test]
fn auth_over_tls_needs_a_way_to_tls() {
    for required in [false, true] {
        let mut c = config();
        c.auth_mechanisms = vec![SaslMechanism::Plain];
        c.auth_required = required;
        assert!(c.auth_requires_tls, "the default");
        assert_eq!(
            ServerSession::new(c.clone()).err(),
            Some(smtp_proto::server::ConfigError::Extension(
                "auth_mechanisms with auth_requires_tls needs starttls or implicit_tls"
            )),
            "auth_required {required}"
        );
        let mut starttls = c.clone();
        starttls.starttls = true;
        assert!(ServerSession::new(starttls).is_ok());
        let mut implicit = c.clone();
        implicit.implicit_tls = true;
        assert!(ServerSession::new(implicit).is_ok());
        let mut clear = c;
        clear.auth_requires_tls = false;
        assert!(ServerSession::new(clear).is_ok());
    }
}

/// A server offering AUTH PLAIN, with SASL lines up to 2048 octets.
fn auth_lines_up_to_2048() -> Setup {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    c.max_auth_line_length = 2048;
    Setup::new(c)
}

#[test]
fn auth_line_too_long_is_500() {
    let long = "A".repeat(3000);
    check(
        &auth_lines_up_to_2048(),
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN
    S: 334 
    C: {long}
    S: 500 5.5.6 Authentication exchange line is too long
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
}

/// RFC 4954 §6: "500 5.5.6 Authentication Exchange line is too long" when
/// the client sends a BASE64 response longer than the server's buffer. The
/// initial response on the AUTH line is such a response: an AUTH line over
/// the limit gets the same reply as a SASL response line over it (above),
/// and is thrown away to its end. Other over-long lines keep 5.5.2.
#[test]
fn overlong_auth_command_line_gets_5_5_6() {
    let long = "A".repeat(3000);
    let r = check(
        &auth_lines_up_to_2048(),
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN {long}
    S: 500 5.5.6 Authentication exchange line is too long
    C: auth plain {long}RSET
    S: 500 5.5.6 Authentication exchange line is too long
    C: NOOP {long}
    S: 500 5.5.2 line too long
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert_eq!(
        r.count_events("reason: AuthLineTooLong"),
        2,
        "{:#?}",
        r.events
    );
}

/// A PLAIN password of `len` octets: `p` repeated.
fn long_password(len: usize) -> String {
    "p".repeat(len)
}

/// Accepts PLAIN credentials of `alice` whose password is exactly one of
/// [`long_password`]'s (of 1000 or 1400 octets); refuses any other with
/// 535, so a 235 shows the whole password reached the application.
fn long_password_app(event: &ServerEvent<'_>, app: &mut support::AppState) -> support::Action {
    match event {
        ServerEvent::Auth(smtp_proto::sasl::Credentials::Plain {
            authzid: None,
            authcid,
            password,
        }) if authcid == "alice"
            && [1000, 1400]
                .iter()
                .any(|&n| password.expose() == long_password(n)) =>
        {
            support::Action::Accept
        }
        ServerEvent::Auth(_) => support::Action::Reply(support::reply(
            535,
            "5.7.8",
            "Authentication credentials invalid",
        )),
        _ => support::default_policy(event, app),
    }
}

/// The base64 of PLAIN's `NUL alice NUL password` for a password of
/// `len` octets.
fn plain_b64(len: usize) -> String {
    use base64::Engine as _;
    let raw = smtp_proto::sasl::plain_response(None, "alice", &long_password(len)).unwrap();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// RFC 4616 §2's 255 octets per PLAIN field are what a server must accept
/// at least: a 1000-octet password (an application password, a token used
/// as one) authenticates, as the initial response on the AUTH line and as
/// the response after the empty `334`. The AUTH line limit (12288 octets
/// by default, RFC 4954 §4) is what bounds it.
#[test]
fn auth_plain_with_a_1000_octet_password_succeeds() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let setup = Setup {
        policy: long_password_app,
        ..Setup::new(c)
    };
    let b64 = plain_b64(1000);
    assert!(b64.len() > 1300 && b64.len() < 12288, "{}", b64.len());
    for r in plain_logins(
        &setup,
        &b64,
        "    C: MAIL FROM:<alice@bar.com>\n    S: 250 2.1.0 OK\n",
    ) {
        let auth = r.events.iter().find(|e| e.starts_with("Auth(")).unwrap();
        assert!(!auth.contains("ppp"), "{auth}");
    }
    // A password one octet shorter is the application's to refuse.
    let other = plain_b64(999);
    let r = check(
        &setup,
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN {other}
    S: 535 5.7.8 Authentication credentials invalid
"
        ),
    );
    assert_eq!(r.identity, None);
}

/// Authenticates with the base64 PLAIN response `b64` on each path a
/// response takes (the AUTH line, and the line after an empty `334`),
/// each run followed by `then` (transcript lines); checks that the
/// session authenticated as alice and returns the runs.
fn plain_logins(setup: &Setup, b64: &str, then: &str) -> Vec<support::RunResult> {
    [
        format!("C: AUTH PLAIN {b64}\n"),
        format!("C: AUTH PLAIN\n    S: 334 \n    C: {b64}\n"),
    ]
    .iter()
    .map(|exchange| {
        let r = check(
            setup,
            &format!(
                "{EHLO_AUTH_PLAIN}
    {exchange}    S: 235 2.7.0 Authentication successful
{then}"
            ),
        );
        assert_eq!(r.identity.as_deref(), Some("alice"));
        r
    })
    .collect()
}

/// Long PLAIN values are held to the session's AUTH line limit on every
/// path a response takes: with 2048-octet lines, a 1400-octet password
/// (1876 octets of base64) authenticates on the AUTH line and after the
/// `334`, and a 1600-octet one (2144 octets) gets `500 5.5.6` on either.
#[test]
fn long_plain_responses_are_bounded_by_the_auth_line_limit() {
    let setup = Setup {
        policy: long_password_app,
        ..auth_lines_up_to_2048()
    };
    let fits = plain_b64(1400);
    let over = plain_b64(1600);
    assert!("AUTH PLAIN ".len() + fits.len() + 2 <= 2048);
    assert!(over.len() + 2 > 2048);
    plain_logins(&setup, &fits, "");
    let r = check(
        &setup,
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN {over}
    S: 500 5.5.6 Authentication exchange line is too long
    C: AUTH PLAIN
    S: 334 
    C: {over}
    S: 500 5.5.6 Authentication exchange line is too long
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert_eq!(r.identity, None);
    assert!(
        !r.events.iter().any(|e| e.starts_with("Auth(")),
        "{:#?}",
        r.events
    );
}

#[test]
fn lmtp_one_reply_per_recipient() {
    let mut c = config();
    c.lmtp = true;
    c.chunking = false;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: EHLO bar.com
    S: 500 Use LHLO in LMTP
    C: LHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: RCPT TO:<reject.two@foo.com>
    C: RCPT TO:<lmtpfail.three@foo.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 550 5.1.1 No such user
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Hi
    C: .
    S: 250 2.0.0 Delivered
    S: 452 4.2.2 Mailbox full
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: RCPT TO:<four@foo.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C~ bare\\nLF\\r\\n.\\r\\n
    S: 554 5.6.0 message contains bare CR or LF
    S: 554 5.6.0 message contains bare CR or LF
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: .
    S: 250 2.0.0 OK: message accepted
",
    );
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 4, recipients: 2 }"));
}

/// HELP names the commands the session takes: LHLO and not HELO/EHLO in
/// LMTP (RFC 2033 §4.1: those get 500), BDAT only with CHUNKING and after
/// EHLO (502 otherwise).
#[test]
fn help_lists_the_commands_the_session_takes() {
    let mut c = config();
    c.lmtp = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: HELP
    S: 214 2.0.0 See RFC 2033: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN
    C: EHLO bar.com
    S: 500 Use LHLO in LMTP
",
    );
    let mut c = config();
    c.chunking = false;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: HELP
    S: 214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN
",
    );
    check(
        &Setup::new(config()),
        "
    S: 220 mx.example.com ESMTP
    C: HELP
    S: 214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN
    C: HELO bar.com
    S: 250 mx.example.com
    C: HELP
    S: 214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN
    C: BDAT 1 LAST
    C~ x
    S: 502 5.5.1 Command not implemented
",
    );
}

/// RFC 2033 §4.2: "when there have been no successful RCPT commands in
/// the mail transaction, the DATA command MUST fail with a 503 reply
/// code." SMTP keeps 554 (RFC 5321 §3.3 allows either; see
/// `rfc2920_all_recipients_refused`). A BDAT LAST in the same state gets
/// no reply (RFC 2033 §4.3, see
/// `lmtp_bdat_last_without_recipients_gets_no_reply`), and its bytes
/// are read and dropped.
#[test]
fn lmtp_data_without_recipients_gets_503() {
    let mut c = config();
    c.lmtp = true;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: LHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<reject.one@foo.com>
    S: 550 5.1.1 No such user
    C: DATA
    S: 503 5.5.1 no valid recipients
    C: BDAT 6 LAST
    C~ QUIT\\r\\n
    C: NOOP
    S: 250 2.0.0 OK
",
    );
    assert!(!r.closed);
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.contains("code: ReplyCode(503), reason: Sequence(NoRecipients)"))
            .count(),
        2,
        "{:#?}",
        r.events
    );
}

/// A command before LHLO sends an LMTP client to LHLO, not to EHLO or
/// HELO, which an LMTP server answers with 500 (RFC 2033 §4.1).
#[test]
fn lmtp_commands_before_lhlo_ask_for_lhlo() {
    let mut c = config();
    c.lmtp = true;
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 send LHLO first
    C: RCPT TO:<b@foo.com>
    S: 503 5.5.1 send LHLO first
    C: BDAT 4
    C~ NOOP
    S: 503 5.5.1 Send LHLO first
    C: QUIT
    S: 221 2.0.0 Bye
",
    );
}

/// A greeting command of the other protocol gets one reply whatever its
/// argument: in SMTP LHLO is an unknown verb (500 5.5.2), with or without
/// a valid domain; in LMTP HELO and EHLO get 500 (RFC 2033 §4.1, without
/// an enhanced code, RFC 2034 §3), not a 501 about their syntax, which
/// would tell the client they are commands this server takes.
#[test]
fn greeting_commands_of_the_other_protocol_get_500_whatever_their_argument() {
    let r = check(
        &Setup::new(config()),
        "
    S: 220 mx.example.com ESMTP
    C: LHLO
    S: 500 5.5.2 Command unrecognized
    C: LHLO -bad-
    S: 500 5.5.2 Command unrecognized
    C: LHLO bar.com
    S: 500 5.5.2 Command unrecognized
",
    );
    let unknown = r.count_events("reason: UnknownCommand(\"LHLO\")");
    assert_eq!(unknown, 3, "{:#?}", r.events);

    let mut c = config();
    c.lmtp = true;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: EHLO
    S: 500 Use LHLO in LMTP
    C: HELO -bad-
    S: 500 Use LHLO in LMTP
    C: EHLO bar.com
    S: 500 Use LHLO in LMTP
    C: LHLO
    S: 501 LHLO requires an argument
",
    );
    let wrong = r.count_events("reason: WrongHello");
    assert_eq!(wrong, 3, "{:#?}", r.events);
}

#[test]
fn quit_closes_and_ignores_the_rest() {
    let r = check(
        &Setup::new(config()),
        "
    S: 220 mx.example.com ESMTP
    C: QUIT
    S: 221 2.0.0 Bye
    C: NOOP
",
    );
    assert!(r.closed);
    assert_eq!(r.leftover, 6);
}

#[test]
fn oauth_failure_uses_an_error_challenge() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::XOAuth2, SaslMechanism::OAuthBearer];
    c.auth_requires_tls = false;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH XOAUTH2 OAUTHBEARER
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    # RFC 7628 §3.2.2: error challenge, dummy answer, final failure.
    C: AUTH OAUTHBEARER bixhPWFsaWNlQGV4YW1wbGUuY29tLAFob3N0PW14LmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHdyb25nAQE=
    S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
    C: AQ==
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH XOAUTH2 dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB3cm9uZwEB
    S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
    C:
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH XOAUTH2
    S: 334 
    C: dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciBzZWNyZXQBAQ==
    S: 235 2.7.0 Authentication successful
",
    );
    assert_eq!(
        r.events.iter().filter(|e| e.starts_with("Auth(")).count(),
        3
    );
    assert!(r
        .events
        .iter()
        .all(|e| !e.contains("wrong") && !e.contains("secret")));
}

/// RFC 7628 §3.2.2: the client answers the error challenge with %x01 "or
/// a SASL abort message", which in SMTP is `*`, and RFC 4954 §4: "If the
/// server receives such a response, it MUST reject the AUTH command by
/// sending a 501 reply". The token was refused all the same: the failure
/// counts toward `max_auth_failures`, so cancelling is no way round it.
#[test]
fn oauth_error_challenge_answered_with_a_cancel_is_501() {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::XOAuth2, SaslMechanism::OAuthBearer];
    c.auth_requires_tls = false;
    c.max_auth_failures = 2;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH XOAUTH2 OAUTHBEARER
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH OAUTHBEARER bixhPWFsaWNlQGV4YW1wbGUuY29tLAFob3N0PW14LmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHdyb25nAQE=
    S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
    C: *
    S: 501 5.0.0 Authentication cancelled
    C: AUTH XOAUTH2 dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB3cm9uZwEB
    S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
    C: *
    S: 501 5.0.0 Authentication cancelled
    S: 421 4.7.0 mx.example.com Too many failed authentication attempts, closing
",
    );
    assert!(r.closed);
}

/// RFC 2920 §3: the replies to a pipelined batch are queued in order and
/// handed out together once the whole batch is processed.
#[test]
fn pipelined_batch_replies_come_out_together() {
    use smtp_proto::server::{ServerEvent, ServerSession};
    use smtp_proto::session::Outcome;
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let batch = b"EHLO a.example\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nRCPT TO:<c@b.example>\r\nDATA\r\n";
    let mut pos = 0;
    let mut events = 0;
    loop {
        let step = s.handle_input(&batch[pos..]).unwrap();
        pos += step.consumed;
        match step.outcome {
            Outcome::Event(ServerEvent::MessageStart { .. }) => break,
            Outcome::Event(_) => {
                events += 1;
                s.accept().unwrap();
                // Nothing is sent in between: the caller flushes at the end.
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((events, pos), (4, batch.len()));
    let step = s.handle_input(b"").unwrap();
    assert_eq!(step.outcome, Outcome::NeedInput);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out.lines().map(|l| &l[..3]).collect::<Vec<_>>(),
        ["250", "250", "250", "250", "250", "250", "250", "250", "354"]
    );
}

#[test]
fn application_answers_hello_vrfy_and_expn() {
    check(
        &Setup::new(config()),
        &with_ehlo(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO reject.example
    S: 550 5.7.1 Go away
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 send EHLO/HELO first
    C: EHLO bar.com
    S: EHLO-REPLY
    C: VRFY known
    S: 250 2.1.5 Known User <known@mx.example.com>
    C: VRFY unknown
    S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    C: EXPN list
    S: 250-2.1.5 One <one@mx.example.com>
    S: 250 2.1.5 Two <two@mx.example.com>
",
        ),
    );
}

/// LMTP with CHUNKING: a last chunk refused for size gets one reply per
/// accepted recipient, as the message end would (RFC 2033 §4.2), so the
/// client's count of replies stays in step; an earlier chunk's refusal is a
/// single reply.
#[test]
fn lmtp_bdat_last_refused_for_size_answers_each_recipient() {
    let mut c = config();
    c.lmtp = true;
    c.max_message_size = Some(10);
    check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: LHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-SIZE 10
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: RCPT TO:<two@foo.com>
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    C: BDAT 12 LAST
    C~ 0123456789\\r\\n
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    C: BDAT 12
    C~ 0123456789\\r\\n
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    C: NOOP
    S: 250 2.0.0 OK
",
    );
}

/// RFC 2033 §4.3: in LMTP, "if there were no previously successful RCPT
/// commands in the mail transaction, then the BDAT LAST command returns
/// zero replies". The client counts its replies so: one more puts every
/// later reply out of step. After a refused chunk of a transaction with
/// recipients, the BDAT LAST gets its one refusal (RFC 3030 §2). Each
/// chunk is read and dropped all the same.
#[test]
fn lmtp_bdat_last_without_recipients_gets_no_reply() {
    let mut c = config();
    c.lmtp = true;
    c.max_message_size = Some(10);
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com LMTP
    C: LHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-SIZE 10
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    # Every recipient refused: the last chunk gets no reply.
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<reject.one@foo.com>
    C: BDAT 6 LAST
    C~ QUIT\\r\\n
    C: NOOP
    S: 250 2.1.0 OK
    S: 550 5.1.1 No such user
    S: 250 2.0.0 OK
    # The sender refused: nor does it then.
    C: MAIL FROM:<reject@bar.com>
    C: RCPT TO:<one@foo.com>
    C: BDAT 3 LAST
    C~ abc
    C: NOOP
    S: 550 5.7.1 Sender refused
    S: 503 5.5.1 need MAIL command
    S: 250 2.0.0 OK
    # An earlier chunk refused: the last one gets the refusal.
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: RCPT TO:<two@foo.com>
    C: BDAT 12
    C~ 0123456789\\r\\n
    C: BDAT 2
    C~ ab
    C: BDAT 0 LAST
    C: NOOP
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    S: 503 5.5.1 Bad sequence of commands
    S: 503 5.5.1 Bad sequence of commands
    S: 250 2.0.0 OK
    # Every recipient refused, the first chunk with them: no reply again.
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<reject.one@foo.com>
    C: BDAT 2
    C~ ab
    C: BDAT 0 LAST
    C: NOOP
    S: 250 2.1.0 OK
    S: 550 5.1.1 No such user
    S: 503 5.5.1 No valid recipients
    S: 250 2.0.0 OK
    # After RSET no transaction is left: no reply.
    C: MAIL FROM:<a@bar.com>
    C: RCPT TO:<one@foo.com>
    C: BDAT 12
    C~ 0123456789\\r\\n
    C: RSET
    C: BDAT 0 LAST
    C: NOOP
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 552 5.3.4 Message size exceeds fixed maximum message size
    S: 250 2.0.0 OK
    S: 250 2.0.0 OK
",
    );
    assert!(!r.closed);
    // The application hears of every refused chunk, answered or not.
    let refused = |what: &str| r.count_events(what);
    assert_eq!(
        refused("reason: Sequence(NoRecipients)"),
        2,
        "{:#?}",
        r.events
    );
    assert_eq!(refused("reason: Sequence(NeedMail)"), 6, "{:#?}", r.events);
    assert_eq!(refused("reason: MessageTooLarge"), 2, "{:#?}", r.events);
}

/// `phase()` walks the shared sequencing table, and stays `Data` (or
/// `Bdat`) while the decision on a complete message is pending: the client
/// has not been told the message was accepted, so a connection lost then
/// drops it.
#[test]
fn phase_follows_the_transaction_and_holds_until_the_message_decision() {
    /// Feeds `input` whole, accepting every decision, up to the end of
    /// the message; returns each event's name and the phase it came in.
    fn feed(s: &mut ServerSession, input: &[u8]) -> Vec<(String, Phase)> {
        let mut seen = Vec::new();
        let mut pos = 0;
        for _ in 0..100 {
            let step = s.handle_input(&input[pos..]).unwrap();
            pos += step.consumed;
            match step.outcome {
                Outcome::Event(e) => {
                    let name = format!("{e:?}");
                    let name = name.split([' ', '(', '{']).next().unwrap().to_string();
                    let end = matches!(e, ServerEvent::MessageEnd { .. });
                    seen.push((name, s.phase()));
                    if end {
                        break;
                    }
                    if s.pending_decision().is_some() {
                        s.accept().unwrap();
                    }
                }
                _ => break,
            }
        }
        assert_eq!(pos, input.len());
        seen
    }
    let mut s = ServerSession::new(config()).unwrap();
    assert_eq!(s.phase(), Phase::Greeting);
    s.greet().unwrap();
    assert_eq!(s.phase(), Phase::NeedHello);
    let seen = feed(
        &mut s,
        b"EHLO bar.com\r\nMAIL FROM:<a@bar.com>\r\nRCPT TO:<b@foo.com>\r\nDATA\r\nhi\r\n.\r\n",
    );
    let phases: Vec<Phase> = seen.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        phases,
        [
            Phase::NeedHello, // Hello, before it is accepted
            Phase::Ready,     // Mail, before it is accepted
            Phase::Mail,      // Rcpt
            Phase::Data,      // MessageStart
            Phase::Data,      // MessageChunk
            Phase::Data,      // MessageEnd: the decision is pending
        ],
        "{seen:?}"
    );
    assert_eq!(
        s.pending_decision(),
        Some(smtp_proto::server::Decision::Message)
    );
    assert_eq!(s.phase(), Phase::Data);
    s.accept().unwrap();
    assert_eq!(s.phase(), Phase::Ready);

    // BDAT: `Bdat` from the first chunk until the decision on the last.
    let seen = feed(
        &mut s,
        b"MAIL FROM:<a@bar.com>\r\nRCPT TO:<b@foo.com>\r\nBDAT 2\r\nhiBDAT 0 LAST\r\n",
    );
    assert!(seen.iter().any(|(n, _)| n == "MessageEnd"), "{seen:?}");
    assert_eq!(seen.last().map(|(_, p)| *p), Some(Phase::Bdat), "{seen:?}");
    assert_eq!(s.phase(), Phase::Bdat);
    s.accept().unwrap();
    assert_eq!(s.phase(), Phase::Ready);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text.matches("250 2.0.0 OK: message accepted").count(),
        2,
        "{text}"
    );
}

/// Credentials of a built-in password mechanism accepted with `accept` or
/// a `235` through `reply` authenticate the session as the user whose
/// password was checked: PLAIN's authcid, LOGIN's user name. A PLAIN
/// authorization identity is never taken on its own (RFC 4616 §2: the
/// server must also verify "that the authentication credentials permit
/// the client to act as the (presented or derived) authorization identity
/// (authzid)"), only through `accept_auth`. The token mechanisms (XOAUTH2,
/// OAUTHBEARER) give none, whatever user they name; `accept_auth` gives
/// one in any case; a refusal leaves the session without.
#[test]
fn accepted_builtin_credentials_give_the_auth_identity() {
    use base64::Engine as _;
    use smtp_proto::sasl::{oauthbearer_response, plain_response, xoauth2_response};
    use smtp_proto::server::OwnedReply;
    use smtp_proto::status::{EnhancedStatusCode, ReplyCode};

    #[derive(Clone, Copy)]
    enum Answer {
        Accept,
        Reply235,
        AcceptAs(&'static str),
        Reject,
    }
    let b64 = |raw: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(raw);
    let plain = |authzid, authcid| b64(plain_response(authzid, authcid, "secret").unwrap());
    let cases = [
        (
            format!("AUTH PLAIN {}\r\n", plain(None, "alice")),
            Answer::Accept,
            Some("alice"),
        ),
        // An authorization identity is only a claim: the session is the
        // user whose password was checked, unless `accept_auth` says more.
        (
            format!("AUTH PLAIN {}\r\n", plain(Some("bob"), "alice")),
            Answer::Accept,
            Some("alice"),
        ),
        (
            format!("AUTH PLAIN {}\r\n", plain(Some("bob"), "alice")),
            Answer::AcceptAs("bob"),
            Some("bob"),
        ),
        (
            format!("AUTH PLAIN {}\r\n", plain(None, "alice")),
            Answer::Reply235,
            Some("alice"),
        ),
        (
            format!(
                "AUTH LOGIN {}\r\n{}\r\n",
                b64(b"carol".to_vec()),
                b64(b"secret".to_vec())
            ),
            Answer::Accept,
            Some("carol"),
        ),
        (
            format!(
                "AUTH XOAUTH2 {}\r\n",
                b64(xoauth2_response("dave@example.com", "token").unwrap())
            ),
            Answer::Accept,
            None,
        ),
        (
            format!(
                "AUTH OAUTHBEARER {}\r\n",
                b64(oauthbearer_response(Some("erin"), None, None, "token").unwrap())
            ),
            Answer::Reply235,
            None,
        ),
        (
            format!(
                "AUTH OAUTHBEARER {}\r\n",
                b64(oauthbearer_response(None, None, None, "token").unwrap())
            ),
            Answer::Accept,
            None,
        ),
        (
            format!("AUTH PLAIN {}\r\n", plain(None, "alice")),
            Answer::AcceptAs("uid=42"),
            Some("uid=42"),
        ),
        (
            format!("AUTH PLAIN {}\r\n", plain(None, "alice")),
            Answer::Reject,
            None,
        ),
    ];
    for (input, answer, identity) in cases {
        let mut c = config();
        c.auth_mechanisms = vec![
            SaslMechanism::Plain,
            SaslMechanism::Login,
            SaslMechanism::XOAuth2,
            SaslMechanism::OAuthBearer,
        ];
        c.auth_requires_tls = false;
        let mut s = support::after_ehlo(c);
        let mut rest = input.as_bytes();
        loop {
            let step = s.handle_input(rest).unwrap();
            rest = &rest[step.consumed..];
            match step.outcome {
                Outcome::Event(ServerEvent::Auth(_)) => break,
                Outcome::NeedInput => assert!(!rest.is_empty(), "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        assert_eq!(s.auth_identity(), None, "none before the decision");
        match answer {
            Answer::Accept => s.accept().unwrap(),
            Answer::Reply235 => s
                .reply(
                    OwnedReply::with_enhanced(
                        ReplyCode::AUTH_SUCCEEDED,
                        EnhancedStatusCode::parse(b"2.7.0"),
                        "Welcome",
                    )
                    .unwrap(),
                )
                .unwrap(),
            Answer::AcceptAs(who) => s.accept_auth(who).unwrap(),
            Answer::Reject => s
                .reject(
                    OwnedReply::with_enhanced(
                        ReplyCode::AUTH_CREDENTIALS_INVALID,
                        EnhancedStatusCode::parse(b"5.7.8"),
                        "Authentication credentials invalid",
                    )
                    .unwrap(),
                )
                .unwrap(),
        }
        assert_eq!(s.auth_identity(), identity, "{input:?}");
        assert_eq!(
            s.is_authenticated(),
            !matches!(answer, Answer::Reject),
            "{input:?}"
        );
    }
}

/// RFC 9422 §4.1: `max_transactions` is advertised as `LIMITS MAILMAX`, and
/// every MAIL of the connection counts, a refused one too, and across
/// STARTTLS; the MAIL after the last gets a 421 and the session closes.
#[test]
fn mail_past_max_transactions_gets_421_and_closes() {
    let mut c = config();
    c.starttls = true;
    c.limits = true;
    c.max_transactions = Some(2);
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=100 MAILMAX=2
    C: MAIL FROM:<a@bar.com> BODY=8BITMIME
    S: 250 2.1.0 OK
    C: MAIL FROM:<a@bar.com>
    S: 503 5.5.1 nested MAIL command
    C: RSET
    S: 250 2.0.0 OK
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=100 MAILMAX=2
    C: MAIL FROM:<a@bar.com>
    S: 421 4.7.0 mx.example.com Too many messages on this connection, closing
    C: RCPT TO:<b@foo.com>
",
    );
    assert!(r.closed);
    assert_eq!(r.remote_error, None);
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("reason: TooManyTransactions")));
}

#[test]
fn max_transactions_of_zero_is_refused() {
    let mut c = config();
    c.max_transactions = Some(0);
    assert_eq!(
        ServerSession::new(c).err(),
        Some(smtp_proto::server::ConfigError::Limit(
            "max_transactions is 0"
        ))
    );
}

/// RFC 9422 §4.3: `max_recipient_domains` is advertised as `LIMITS
/// RCPTDOMAINMAX`; a RCPT in one domain more than it allows gets 452 4.5.3,
/// while more recipients in the domains already there (compared without
/// regard to case) and `<Postmaster>` go on. A refused recipient's
/// domain does not count, and a new transaction starts afresh.
#[test]
fn rcpt_past_max_recipient_domains_gets_452() {
    let mut c = config();
    c.limits = true;
    c.max_recipient_domains = Some(1);
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 LIMITS RCPTMAX=100 RCPTDOMAINMAX=1
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<reject@first.example>
    S: 550 5.1.1 No such user
    C: RCPT TO:<b@foo.com>
    S: 250 2.1.5 OK
    C: RCPT TO:<c@FOO.com>
    S: 250 2.1.5 OK
    C: RCPT TO:<d@other.example>
    S: 452 4.5.3 Too many recipient domains
    C: RCPT TO:<postmaster>
    S: 250 2.1.5 OK
    C: RSET
    S: 250 2.0.0 OK
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
    C: RCPT TO:<d@other.example>
    S: 250 2.1.5 OK
",
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("reason: TooManyDomains")));
    let mut c = config();
    c.max_recipient_domains = Some(0);
    assert_eq!(
        ServerSession::new(c).err(),
        Some(smtp_proto::server::ConfigError::Limit(
            "max_recipient_domains is 0"
        ))
    );
}
