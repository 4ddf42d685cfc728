//! The example dialogues of the SMTP RFCs, replayed against the server with
//! the client's bytes exactly as the RFC prints them. Replies the
//! application chooses use the RFC's own text; the session's own replies
//! (greeting, EHLO greeting line, 354, 221) carry text the RFCs call
//! illustrative, so `S~` lines compare only the reply code and the
//! separator. `S:` lines compare the whole line. Every replay also runs
//! split at every byte offset and byte by byte (`support::run_all`).

mod support;

use smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent};
use smtp_proto::status::ReplyCode;
use support::{Action, AppState, RunResult, Setup};

/// A reply without an enhanced status code.
fn plain(code: u16, text: &str) -> OwnedReply {
    OwnedReply::new(ReplyCode::new(code).unwrap(), text).unwrap()
}

/// Runs `text` and compares the server's output line by line: `S:` lines
/// whole, `S~` lines by their first four octets (code and separator).
fn replay(setup: &Setup, text: &str) -> RunResult {
    let mut loose = Vec::new();
    let mut normalized = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("S~ ") {
            loose.push(true);
            normalized.push_str("S: ");
            normalized.push_str(rest);
        } else {
            if t.starts_with("S: ") {
                loose.push(false);
            }
            normalized.push_str(t);
        }
        normalized.push('\n');
    }
    let t = support::parse(&normalized);
    let r = support::run_all(setup, &t);
    let want = String::from_utf8(t.expected.clone()).unwrap();
    let got = r.output_str();
    let want: Vec<&str> = want.split_terminator("\r\n").collect();
    let got_lines: Vec<&str> = got.split_terminator("\r\n").collect();
    assert!(got.ends_with("\r\n"), "unterminated output {got:?}");
    assert_eq!(
        got_lines.len(),
        want.len(),
        "reply line count differs\ngot:\n{got}\nevents: {:#?}",
        r.events
    );
    for (i, ((g, w), l)) in got_lines.iter().zip(&want).zip(&loose).enumerate() {
        if *l {
            assert!(
                g.len() >= 4 && w.len() >= 4 && g[..4] == w[..4],
                "line {i}: got {g:?}, want code of {w:?}\nfull output:\n{got}"
            );
        } else {
            assert_eq!(g, w, "line {i} differs\nfull output:\n{got}");
        }
    }
    r
}

/// Answers with the replies of the RFC 5321 Appendix D scenarios: `250 OK`
/// for senders, recipients and messages, `550 No such user here` for
/// Green, and the VRFY answer of D.4.
fn rfc5321_policy(event: &ServerEvent<'_>, app: &mut AppState) -> Action {
    match event {
        ServerEvent::Mail { .. } => Action::Reply(plain(250, "OK")),
        ServerEvent::Rcpt { to, .. } => {
            let to = to.to_string();
            if to.starts_with("<Green@") {
                Action::Reply(plain(550, "No such user here"))
            } else {
                app.rcpts.push(to);
                Action::Reply(plain(250, "OK"))
            }
        }
        ServerEvent::MessageEnd { .. } => Action::Reply(plain(250, "OK")),
        ServerEvent::Vrfy(who) if who.as_str() == "Crispin" => {
            Action::Reply(plain(250, "Mark Crispin <Admin.MRC@foo.com>"))
        }
        _ => Action::Accept,
    }
}

/// The server of the Appendix D scenarios: 8BITMIME, SIZE and DSN, no
/// pipelining, chunking or enhanced codes. The keywords come in the
/// session's order (RFC 5321 §4.1.1.1 gives none); the RFC's HELP and VRFY
/// keywords name no service extension and are not advertised.
fn foo_com() -> ServerConfig {
    let mut c = ServerConfig::new("foo.com");
    c.pipelining = false;
    c.chunking = false;
    c.enhanced_status_codes = false;
    c.max_message_size = Some(10_000_000);
    c.dsn = true;
    c
}

const FOO_COM_EHLO: &str = "
      S~ 250-foo.com greets bar.com
      S: 250-SIZE 10000000
      S: 250-8BITMIME
      S: 250 DSN
";

fn d(text: &str) -> String {
    text.replace("      S: EHLO-REPLY\n", FOO_COM_EHLO)
}

fn foo_setup() -> Setup {
    let mut s = Setup::new(foo_com());
    s.policy = rfc5321_policy;
    s
}

/// RFC 5321 Appendix D.1, byte for byte: Green is refused, Jones and Brown
/// get the message; the line `...etc. etc. etc.` is dot-stuffed on the wire
/// and arrives as `..etc. etc. etc.`.
#[test]
fn rfc5321_d1_typical_transaction_exact() {
    let r = replay(
        &foo_setup(),
        &d("
      S~ 220 foo.com Simple Mail Transfer Service Ready
      C: EHLO bar.com
      S: EHLO-REPLY
      C: MAIL FROM:<Smith@bar.com>
      S: 250 OK
      C: RCPT TO:<Jones@foo.com>
      S: 250 OK
      C: RCPT TO:<Green@foo.com>
      S: 550 No such user here
      C: RCPT TO:<Brown@foo.com>
      S: 250 OK
      C: DATA
      S~ 354 Start mail input; end with <CRLF>.<CRLF>
      C: Blah blah blah...
      C: ...etc. etc. etc.
      C: .
      S: 250 OK
      C: QUIT
      S~ 221 foo.com Service closing transmission channel
"),
    );
    assert!(r.closed);
    assert_eq!(
        r.bodies,
        vec![b"Blah blah blah...\r\n..etc. etc. etc.\r\n".to_vec()]
    );
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 37, recipients: 2 }"));
    let rcpts = r.events.iter().filter(|e| e.starts_with("Rcpt")).count();
    assert_eq!(rcpts, 3);
}

/// RFC 5321 Appendix D.2, byte for byte: RSET after a refused recipient
/// ends the transaction without a message.
#[test]
fn rfc5321_d2_aborted_transaction_exact() {
    let r = replay(
        &foo_setup(),
        &d("
      S~ 220 foo.com Simple Mail Transfer Service Ready
      C: EHLO bar.com
      S: EHLO-REPLY
      C: MAIL FROM:<Smith@bar.com>
      S: 250 OK
      C: RCPT TO:<Jones@foo.com>
      S: 250 OK
      C: RCPT TO:<Green@foo.com>
      S: 550 No such user here
      C: RSET
      S: 250 OK
      C: QUIT
      S~ 221 foo.com Service closing transmission channel
"),
    );
    assert!(r.closed);
    assert!(r.bodies.is_empty());
    assert!(r.events.contains(&"Reset".to_string()), "{:#?}", r.events);
    assert!(!r.events.iter().any(|e| e.starts_with("Message")));
}

/// RFC 5321 Appendix D.3 step 1 (source host to relay host), byte for
/// byte, including the empty line between header and body.
#[test]
fn rfc5321_d3_relayed_mail_step1() {
    let r = replay(
        &foo_setup(),
        &d("
      S~ 220 foo.com Simple Mail Transfer Service Ready
      C: EHLO bar.com
      S: EHLO-REPLY
      C: MAIL FROM:<JQP@bar.com>
      S: 250 OK
      C: RCPT TO:<Jones@XYZ.COM>
      S: 250 OK
      C: DATA
      S~ 354 Start mail input; end with <CRLF>.<CRLF>
      C: Date: Thu, 21 May 1998 05:33:29 -0700
      C: From: John Q. Public <JQP@bar.com>
      C: Subject: The Next Meeting of the Board
      C: To: Jones@xyz.com
      C:
      C: Bill:
      C: The next meeting of the board of directors will be
      C: on Tuesday.
      C: John.
      C: .
      S: 250 OK
      C: QUIT
      S~ 221 foo.com Service closing transmission channel
"),
    );
    assert!(r.closed);
    assert_eq!(
        r.bodies,
        vec![concat!(
            "Date: Thu, 21 May 1998 05:33:29 -0700\r\n",
            "From: John Q. Public <JQP@bar.com>\r\n",
            "Subject: The Next Meeting of the Board\r\n",
            "To: Jones@xyz.com\r\n",
            "\r\n",
            "Bill:\r\n",
            "The next meeting of the board of directors will be\r\n",
            "on Tuesday.\r\n",
            "John.\r\n",
        )
        .as_bytes()
        .to_vec()]
    );
    // The domain's case is kept as sent (RFC 5321 §2.4).
    assert!(r
        .events
        .iter()
        .any(|e| e.contains(r#"local_part: "Jones", domain: "XYZ.COM""#)));
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 215, recipients: 1 }"));
}

/// RFC 5321 Appendix D.3 step 2 (relay host to destination host): a
/// server with no extensions at all answers EHLO with one line; the relay
/// prepends a folded `Received:` field whose continuation line starts with
/// spaces, and the indented signature line is kept as sent.
#[test]
fn rfc5321_d3_relayed_mail_step2() {
    let mut c = ServerConfig::new("xyz.com");
    c.pipelining = false;
    c.chunking = false;
    c.enhanced_status_codes = false;
    c.eight_bit_mime = false;
    let mut s = Setup::new(c);
    s.policy = rfc5321_policy;
    let r = replay(
        &s,
        "
           S~ 220 xyz.com Simple Mail Transfer Service Ready
           C: EHLO foo.com
           S~ 250 xyz.com is on the air
           C: MAIL FROM:<JQP@bar.com>
           S: 250 OK
           C: RCPT TO:<Jones@XYZ.COM>
           S: 250 OK
           C: DATA
           S~ 354 Start mail input; end with <CRLF>.<CRLF>
           C: Received: from bar.com by foo.com ; Thu, 21 May 1998
           C~      05:33:29 -0700\\r\\n
           C: Date: Thu, 21 May 1998 05:33:22 -0700
           C: From: John Q. Public <JQP@bar.com>
           C: Subject:  The Next Meeting of the Board
           C: To: Jones@xyz.com
           C:
           C: Bill:
           C: The next meeting of the board of directors will be
           C: on Tuesday.
           C~                          John.\\r\\n
           C: .
           S: 250 OK
           C: QUIT
           S~ 221 foo.com Service closing transmission channel
",
    );
    assert!(r.closed);
    let body = String::from_utf8(r.bodies[0].clone()).unwrap();
    assert!(body.starts_with(
        "Received: from bar.com by foo.com ; Thu, 21 May 1998\r\n     05:33:29 -0700\r\n"
    ));
    assert!(body.contains("Subject:  The Next Meeting of the Board\r\n"));
    assert!(body.ends_with("on Tuesday.\r\n                         John.\r\n"));
}

/// RFC 5321 Appendix D.4, byte for byte: the application answers VRFY
/// and the message follows.
#[test]
fn rfc5321_d4_verifying_and_sending_exact() {
    let r = replay(
        &foo_setup(),
        &d("
      S~ 220 foo.com Simple Mail Transfer Service Ready
      C: EHLO bar.com
      S: EHLO-REPLY
      C: VRFY Crispin
      S: 250 Mark Crispin <Admin.MRC@foo.com>
      C: MAIL FROM:<EAK@bar.com>
      S: 250 OK
      C: RCPT TO:<Admin.MRC@foo.com>
      S: 250 OK
      C: DATA
      S~ 354 Start mail input; end with <CRLF>.<CRLF>
      C: Blah blah blah...
      C: ...etc. etc. etc.
      C: .
      S: 250 OK
      C: QUIT
      S~ 221 foo.com Service closing transmission channel
"),
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.starts_with("Vrfy") && e.contains("Crispin")));
    assert_eq!(r.bodies.len(), 1);
}

/// RFC 2034 §6: enhanced status codes from the application, a two-line
/// 551 among them; the session's own replies carry codes too.
#[test]
fn rfc2034_usage_example() {
    fn policy(event: &ServerEvent<'_>, _: &mut AppState) -> Action {
        let r = support::reply;
        match event {
            ServerEvent::Mail { .. } => {
                Action::Reply(r(250, "2.1.0", "Originator <ned@ymir.claremont.edu> ok"))
            }
            ServerEvent::Rcpt { to, .. } => match to.to_string().as_str() {
                "<nosuchuser@dbc.mtview.ca.us>" => {
                    Action::Reply(r(550, "5.1.1", "Mailbox \"nosuchuser\" does not exist"))
                }
                "<remoteuser@isi.edu>" => {
                    let mut x = r(551, "5.7.1", "Forwarding to remote hosts disabled");
                    x.push_line(
                        Some("5.7.1".parse().unwrap()),
                        "Select another host to act as your forwarder",
                    )
                    .unwrap();
                    Action::Reply(x)
                }
                _ => Action::Reply(r(250, "2.1.5", "Recipient <mrose@dbc.mtview.ca.us> ok")),
            },
            ServerEvent::MessageEnd { .. } => Action::Reply(r(250, "2.6.0", "Message accepted")),
            _ => Action::Accept,
        }
    }
    let mut c = ServerConfig::new("dbc.mtview.ca.us");
    c.pipelining = false;
    c.chunking = false;
    c.eight_bit_mime = false;
    let mut s = Setup::new(c);
    s.policy = policy;
    let r = replay(
        &s,
        r#"
   S~ 220 dbc.mtview.ca.us SMTP service ready
   C: EHLO ymir.claremont.edu
   S~ 250-dbc.mtview.ca.us says hello
   S: 250 ENHANCEDSTATUSCODES
   C: MAIL FROM:<ned@ymir.claremont.edu>
   S: 250 2.1.0 Originator <ned@ymir.claremont.edu> ok
   C: RCPT TO:<mrose@dbc.mtview.ca.us>
   S: 250 2.1.5 Recipient <mrose@dbc.mtview.ca.us> ok
   C: RCPT TO:<nosuchuser@dbc.mtview.ca.us>
   S: 550 5.1.1 Mailbox "nosuchuser" does not exist
   C: RCPT TO:<remoteuser@isi.edu>
   S: 551-5.7.1 Forwarding to remote hosts disabled
   S: 551 5.7.1 Select another host to act as your forwarder
   C: DATA
   S~ 354 Send message, ending in CRLF.CRLF.
   C: Hi
   C: .
   S: 250 2.6.0 Message accepted
   C: QUIT
   S~ 221 2.0.0 Goodbye
"#,
    );
    // The session's 221 carries an enhanced code as the RFC's does.
    assert!(r.output_str().ends_with("\r\n221 2.0.0 Bye\r\n"));
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 4, recipients: 1 }"));
}

/// RFC 2033 §4.2: after the final dot, one reply per successful RCPT in
/// RCPT order; the refused `jones` gets none. SIZE and PIPELINING are
/// advertised as in the example.
#[test]
fn rfc2033_lmtp_example() {
    fn policy(event: &ServerEvent<'_>, app: &mut AppState) -> Action {
        match event {
            ServerEvent::Mail { .. } => Action::Reply(plain(250, "OK")),
            ServerEvent::Rcpt { to, .. } => {
                let to = to.to_string();
                if to == "<jones@foo.edu>" {
                    Action::Reply(plain(550, "No such user here"))
                } else {
                    app.rcpts.push(to);
                    Action::Reply(plain(250, "OK"))
                }
            }
            ServerEvent::MessageEnd { .. } => Action::PerRecipient(
                app.rcpts
                    .drain(..)
                    .map(|r| {
                        if r == "<green@foo.edu>" {
                            plain(452, "<green@foo.edu> is temporarily over quota")
                        } else {
                            plain(250, "OK")
                        }
                    })
                    .collect(),
            ),
            _ => Action::Accept,
        }
    }
    let mut c = ServerConfig::new("foo.edu");
    c.lmtp = true;
    c.chunking = false;
    c.eight_bit_mime = false;
    c.enhanced_status_codes = false;
    c.max_message_size = Some(1_000_000);
    let mut s = Setup::new(c);
    s.policy = policy;
    let r = replay(
        &s,
        "
S~ 220 foo.edu LMTP server ready
C: LHLO foo.edu
S~ 250-foo.edu
S: 250-PIPELINING
S: 250 SIZE 1000000
C: MAIL FROM:<chris@bar.com>
S: 250 OK
C: RCPT TO:<pat@foo.edu>
S: 250 OK
C: RCPT TO:<jones@foo.edu>
S: 550 No such user here
C: RCPT TO:<green@foo.edu>
S: 250 OK
C: DATA
S~ 354 Start mail input; end with <CRLF>.<CRLF>
C: Blah blah blah...
C: ...etc. etc. etc.
C: .
S: 250 OK
S: 452 <green@foo.edu> is temporarily over quota
C: QUIT
S~ 221 foo.edu closing connection
",
    );
    assert!(r.closed);
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 37, recipients: 2 }"));
}

/// RFC 4954 §4, first example: STARTTLS, then AUTH PLAIN with an initial
/// response. The credentials are `test`, `test`, `1234`.
#[test]
fn rfc4954_auth_plain_with_initial_response_after_starttls() {
    fn policy(event: &ServerEvent<'_>, _: &mut AppState) -> Action {
        match event {
            ServerEvent::Auth(Credentials::Plain {
                authzid,
                authcid,
                password,
            }) if authzid.as_deref() == Some("test")
                && authcid == "test"
                && password.expose() == "1234" =>
            {
                Action::AcceptAs("test".into())
            }
            ServerEvent::Auth(_) => Action::Reply(support::reply(535, "5.7.8", "Bad")),
            _ => Action::Accept,
        }
    }
    let mut c = ServerConfig::new("smtp.example.com");
    c.pipelining = false;
    c.chunking = false;
    c.eight_bit_mime = false;
    c.starttls = true;
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = true;
    let mut s = Setup::new(c);
    s.policy = policy;
    let r = replay(
        &s,
        "
# The RFC's greeting is the first line of a multi-line 220; one line here.
S~ 220 smtp.example.com ESMTP Server
C: EHLO client.example.com
S~ 250-smtp.example.com Hello client.example.com
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: STARTTLS
S~ 220 Ready to start TLS
-- TLS --
C: EHLO client.example.com
S~ 250-smtp.example.com Hello client.example.com
S: 250-AUTH PLAIN
S: 250 ENHANCEDSTATUSCODES
C: AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=
S: 235 2.7.0 Authentication successful
",
    );
    assert_eq!(r.identity.as_deref(), Some("test"));
}

/// RFC 4954 §4, second example: AUTH PLAIN without an initial response
/// gets an empty challenge, `334` followed by a single space.
#[test]
fn rfc4954_auth_plain_empty_challenge() {
    fn policy(event: &ServerEvent<'_>, _: &mut AppState) -> Action {
        match event {
            ServerEvent::Auth(Credentials::Plain { password, .. })
                if password.expose() == "1234" =>
            {
                Action::AcceptAs("test".into())
            }
            ServerEvent::Auth(_) => Action::Reply(support::reply(535, "5.7.8", "Bad")),
            _ => Action::Accept,
        }
    }
    let mut c = ServerConfig::new("smtp.example.com");
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let mut s = Setup::new(c);
    s.policy = policy;
    let r = replay(
        &s,
        "
S~ 220 smtp.example.com ESMTP Server
C: EHLO client.example.com
S~ 250-smtp.example.com Hello client.example.com
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-AUTH PLAIN
S: 250-CHUNKING
S: 250 ENHANCEDSTATUSCODES
C: AUTH PLAIN
S: 334 
C: dGVzdAB0ZXN0ADEyMzQ=
S: 235 2.7.0 Authentication successful
",
    );
    assert_eq!(r.identity.as_deref(), Some("test"));
}

/// RFC 4954 §4: "If the client wishes to cancel an authentication
/// exchange, it issues a line with a single \"*\". If the server receives
/// such a response, it MUST reject the AUTH command by sending a 501
/// reply." A later AUTH starts afresh; an initial response of zero length
/// is sent as a single `=`.
#[test]
fn rfc4954_cancel_and_empty_initial_response() {
    let mut c = ServerConfig::new("smtp.example.com");
    c.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    c.auth_requires_tls = false;
    let r = replay(
        &Setup::new(c),
        "
S~ 220 smtp.example.com ESMTP Server
C: EHLO client.example.com
S~ 250-smtp.example.com Hello client.example.com
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-AUTH PLAIN LOGIN
S: 250-CHUNKING
S: 250 ENHANCEDSTATUSCODES
C: AUTH LOGIN
S~ 334 VXNlcm5hbWU6
C: *
S~ 501 5.0.0 Authentication cancelled
C: AUTH PLAIN =
S~ 501 5.5.2 Malformed authentication response
C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
S~ 235 2.7.0 Authentication successful
",
    );
    let auths = r.events.iter().filter(|e| e.starts_with("Auth(")).count();
    assert_eq!(auths, 1, "{:#?}", r.events);
}

/// RFC 3207 §5: the client starts TLS and says EHLO again; the second EHLO
/// no longer offers STARTTLS (RFC 3207 §4.2).
#[test]
fn rfc3207_starttls_example() {
    let mut c = ServerConfig::new("mail.imc.org");
    c.pipelining = false;
    c.chunking = false;
    c.enhanced_status_codes = false;
    c.starttls = true;
    c.dsn = true;
    let r = replay(
        &Setup::new(c),
        "
S~ 220 mail.imc.org SMTP service ready
C: EHLO mail.example.com
S~ 250-mail.imc.org offers a warm hug of welcome
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 DSN
C: STARTTLS
S~ 220 Go ahead
-- TLS --
C: EHLO mail.example.com
S~ 250-mail.imc.org touches your hand gently for a moment
S: 250-8BITMIME
S: 250 DSN
",
    );
    let hellos = r.events.iter().filter(|e| e.starts_with("Hello")).count();
    assert_eq!(hellos, 2);
}

/// RFC 3207 §4: STARTTLS takes no parameters ("501 Syntax error (no
/// parameters allowed)").
#[test]
fn rfc3207_starttls_with_a_parameter_is_501() {
    let mut c = ServerConfig::new("mail.imc.org");
    c.starttls = true;
    c.pipelining = false;
    c.chunking = false;
    c.eight_bit_mime = false;
    replay(
        &Setup::new(c),
        "
S~ 220 mail.imc.org SMTP service ready
C: EHLO mail.example.com
S~ 250-mail.imc.org
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: STARTTLS now
S~ 501 5.5.4 Syntax error (no parameters allowed)
C: QUIT
S~ 221 2.0.0 Bye
",
    );
}

/// RFC 1870 §4 and §6: SIZE with the fixed maximum, a declared size above
/// it refused with 552 at MAIL, one within it accepted, and a message
/// larger than the maximum refused with 552 at its end even when its
/// declared size was lower.
#[test]
fn rfc1870_size_examples() {
    let mut c = ServerConfig::new("mx.example.com");
    c.pipelining = false;
    c.chunking = false;
    c.max_message_size = Some(10);
    let r = replay(
        &Setup::new(c),
        "
S~ 220 mx.example.com ESMTP
C: EHLO bar.com
S~ 250-mx.example.com
S: 250-SIZE 10
S: 250-8BITMIME
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<a@bar.com> SIZE=11
S~ 552 5.3.4 message size exceeds fixed maximium message size
C: MAIL FROM:<a@bar.com> SIZE=10
S~ 250 2.1.0 OK
C: RCPT TO:<b@foo.com>
S~ 250 2.1.5 OK
C: DATA
S~ 354 Start mail input
C: 0123456789
C: .
S~ 552 5.3.4 message size exceeds fixed maximium message size
C: QUIT
S~ 221 2.0.0 Bye
",
    );
    let out = r.output_str();
    assert_eq!(out.matches("552 5.3.4 ").count(), 2, "{out}");
    assert!(!r.events.iter().any(|e| e.starts_with("MessageEnd")));
}

/// RFC 3461 §4.1-§4.4 (the parameters as its examples write them): RET
/// and ENVID on MAIL, NOTIFY and ORCPT on RCPT, carried to the events;
/// NOTIFY=NEVER with another keyword is refused with 501.
#[test]
fn rfc3461_dsn_parameters() {
    let mut c = ServerConfig::new("mx.example.com");
    c.pipelining = false;
    c.chunking = false;
    c.dsn = true;
    let r = replay(
        &Setup::new(c),
        "
S~ 220 mx.example.com ESMTP
C: EHLO bar.com
S~ 250-mx.example.com
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 DSN
C: MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159
S~ 250 2.1.0 OK
C: RCPT TO:<Bob@Example.COM> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM
S~ 250 2.1.5 OK
C: RCPT TO:<Carol@Ivory.EDU> NOTIFY=NEVER,SUCCESS
S~ 501 5.5.4 bad
C: RCPT TO:<Carol@Ivory.EDU> NOTIFY=NEVER
S~ 250 2.1.5 OK
",
    );
    let mail = r.events.iter().find(|e| e.starts_with("Mail")).unwrap();
    assert!(mail.contains("ret: Some(Hdrs)"), "{mail}");
    assert!(mail.contains("QQ314159"), "{mail}");
    let rcpt = r.events.iter().find(|e| e.starts_with("Rcpt")).unwrap();
    assert!(
        rcpt.contains("Bob@Example.COM") && rcpt.contains("rfc822"),
        "{rcpt}"
    );
}

/// RFC 2920 §3.1: a pipelined DATA is accepted when at least one RCPT
/// succeeded, whatever the last RCPT's fate; the replies come in command
/// order.
#[test]
fn rfc2920_failed_rcpt_then_data() {
    let r = replay(
        &Setup::new(ServerConfig::new("innosoft.com")),
        "
S~ 220 innosoft.com SMTP service ready
C: EHLO dbc.mtview.ca.us
S~ 250-innosoft.com
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-CHUNKING
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<mrose@dbc.mtview.ca.us>
C: RCPT TO:<ned@innosoft.com>
C: RCPT TO:<reject.dan@innosoft.com>
C: DATA
S~ 250 2.1.0 Sender ok
S~ 250 2.1.5 Recipient ok
S~ 550 5.1.1 No such user
S~ 354 Enter mail, end with line containing only \".\"
C: Subject: Pipelining
C: .
C: QUIT
S~ 250 2.0.0 Message accepted
S~ 221 2.0.0 Goodbye
",
    );
    assert!(r
        .events
        .iter()
        .any(|e| e == "MessageEnd { size: 21, recipients: 1 }"));
}

/// RFC 8689: REQUIRETLS is offered, and the MAIL FROM parameter taken,
/// only on a session protected by TLS.
#[test]
fn rfc8689_requiretls_needs_tls() {
    let mut c = ServerConfig::new("mx.example.com");
    c.pipelining = false;
    c.chunking = false;
    c.starttls = true;
    c.requiretls = true;
    let r = replay(
        &Setup::new(c),
        "
S~ 220 mx.example.com ESMTP
C: EHLO bar.com
S~ 250-mx.example.com
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<roger@example.org> REQUIRETLS
S~ 555 5.5.4 REQUIRETLS not available
C: STARTTLS
S~ 220 2.0.0 Ready to start TLS
-- TLS --
C: EHLO bar.com
S~ 250-mx.example.com
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 REQUIRETLS
C: MAIL FROM:<roger@example.org> REQUIRETLS
S~ 250 2.1.0 OK
",
    );
    let mails: Vec<_> = r.events.iter().filter(|e| e.starts_with("Mail")).collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("requiretls: true"));
}

/// RFC 4954 §5's example: the AUTH parameter of MAIL FROM is an xtext, so
/// `e+3Dmc2@example.com` names `e=mc2@example.com`; `AUTH=<>` says the
/// submitter is unknown. Both are accepted where AUTH is offered. Before
/// the client has authenticated, the server "MUST behave as if the
/// AUTH=<> parameter was supplied": the application gets `Null`.
#[test]
fn rfc4954_mail_auth_parameter() {
    let mut c = ServerConfig::new("mx.example.com");
    c.pipelining = false;
    c.chunking = false;
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let r = replay(
        &Setup::new(c),
        "
S~ 220 mx.example.com ESMTP
C: EHLO bar.com
S~ 250-mx.example.com
S: 250-8BITMIME
S: 250-AUTH PLAIN
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com
S~ 250 OK
C: RSET
S~ 250 OK
C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
S~ 235 2.7.0 Authentication successful
C: MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com
S~ 250 OK
C: RSET
S~ 250 OK
C: MAIL FROM:<e=mc2@example.com> AUTH=<>
S~ 250 OK
",
    );
    let mails: Vec<_> = r.events.iter().filter(|e| e.starts_with("Mail")).collect();
    assert_eq!(mails.len(), 3, "{:#?}", r.events);
    assert!(mails[0].contains("auth: Some(Null)"), "{}", mails[0]);
    // Once authenticated, the event keeps the xtext as sent; decoding it
    // gives the identity.
    assert!(
        mails[1].contains(r#"auth: Some(Identity("e+3Dmc2@example.com"))"#),
        "{}",
        mails[1]
    );
    let x = smtp_proto::command::XText::new("e+3Dmc2@example.com").unwrap();
    assert_eq!(&*x.decode(), b"e=mc2@example.com");
    assert!(mails[2].contains("auth: Some(Null)"), "{}", mails[2]);
}

/// RFC 4954 §5 nulls the `AUTH=` parameter only for a client the server
/// has not authenticated. A client authenticated with a token (XOAUTH2)
/// or a custom mechanism, accepted without naming an identity, is
/// authenticated all the same: its `AUTH=` parameter reaches the
/// application as sent, as after PLAIN.
#[test]
fn rfc4954_mail_auth_parameter_after_token_or_custom_auth() {
    use base64::Engine as _;
    use smtp_proto::command::AuthParam;
    use smtp_proto::session::Outcome;

    let token = base64::engine::general_purpose::STANDARD
        .encode(b"user=e=mc2@example.com\x01auth=Bearer t\x01\x01");
    let xoauth2 = format!("AUTH XOAUTH2 {token}\r\n");
    for (mechanism, auth) in [
        (SaslMechanism::XOAuth2, xoauth2.as_str()),
        (
            SaslMechanism::custom("X-TOKEN").unwrap(),
            "AUTH X-TOKEN dA==\r\n",
        ),
    ] {
        let mut c = ServerConfig::new("mx.example.com");
        c.auth_mechanisms = vec![mechanism];
        c.auth_requires_tls = false;
        let mut s = support::after_ehlo(c);
        let step = s.handle_input(auth.as_bytes()).unwrap();
        assert!(
            matches!(
                step.outcome,
                Outcome::Event(ServerEvent::Auth(_) | ServerEvent::AuthExchange { .. })
            ),
            "{mechanism:?}: {:?}",
            step.outcome
        );
        // The application checked the token, and names no identity.
        s.accept().unwrap();
        assert!(s.is_authenticated());
        assert_eq!(s.auth_identity(), None);
        let step = s
            .handle_input(b"MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com\r\n")
            .unwrap();
        let Outcome::Event(ServerEvent::Mail { params, .. }) = step.outcome else {
            panic!("{mechanism:?}: {:?}", step.outcome);
        };
        let Some(AuthParam::Identity(id)) = params.auth else {
            panic!("{mechanism:?}: AUTH= was {:?}", params.auth);
        };
        assert_eq!(&*id.decode(), b"e=mc2@example.com", "{mechanism:?}");
    }
}
