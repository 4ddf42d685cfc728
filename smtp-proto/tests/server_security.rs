//! Attacks on the server machine, one test per attack.

mod support;

use smtp_proto::data::BareEndingPolicy;
use smtp_proto::server::{
    Decision, Error, Rejection, RemoteError, ServerConfig, ServerEvent, ServerSession, UsageError,
};
use smtp_proto::session::Outcome;
use support::{check, config, parse, run_all, run_pieces, RunResult, Setup, EHLO_AUTH_PLAIN};

const PROLOGUE: &str = "EHLO attacker.example\r\nMAIL FROM:<a@attacker.example>\r\nRCPT TO:<b@victim.example>\r\nDATA\r\n";
const SMUGGLED: &str =
    "MAIL FROM:<admin@victim.example>\r\nRCPT TO:<c@victim.example>\r\nDATA\r\nsmuggled\r\n";

/// Sends a DATA body holding `sequence` followed by a smuggled transaction,
/// then the real end. The smuggled commands must stay body text: exactly
/// one MAIL event and one message.
fn smuggling(sequence: &str, policy: BareEndingPolicy) -> support::RunResult {
    let mut c = config();
    c.bare_endings = policy;
    let mut client = PROLOGUE.as_bytes().to_vec();
    client.extend_from_slice(b"Subject: x\r\n\r\nbody");
    client.extend_from_slice(&support::unescape(sequence));
    client.extend_from_slice(SMUGGLED.as_bytes());
    client.extend_from_slice(b".\r\nQUIT\r\n");
    let t = support::Transcript {
        segments: vec![client],
        expected: Vec::new(),
    };
    let r = run_all(&Setup::new(c), &t);
    let mails = r.events.iter().filter(|e| e.starts_with("Mail {")).count();
    assert_eq!(mails, 1, "a smuggled MAIL was parsed: {:#?}", r.events);
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.starts_with("MessageStart"))
            .count(),
        1
    );
    assert!(r.closed, "QUIT after the real end was not reached");
    match policy {
        BareEndingPolicy::Reject => {
            assert!(
                r.output_str()
                    .contains("\r\n554 5.6.0 message contains bare CR or LF\r\n221 "),
                "{}",
                r.output_str()
            );
            assert!(r.bodies.is_empty());
        }
        _ => {
            assert!(r
                .output_str()
                .contains("250 2.0.0 OK: message accepted\r\n221 "));
            let body = String::from_utf8(r.bodies[0].clone()).unwrap();
            assert!(
                body.contains("MAIL FROM:<admin@victim.example>\r\n"),
                "{body:?}"
            );
            let without_crlf = body.replace("\r\n", "");
            assert!(
                !without_crlf.contains(['\r', '\n']),
                "bare ending left: {body:?}"
            );
        }
    }
    r
}

#[test]
fn smuggling_lf_dot_lf() {
    smuggling("\\n.\\n", BareEndingPolicy::Reject);
    smuggling("\\n.\\n", BareEndingPolicy::Normalize);
}

#[test]
fn smuggling_crlf_dot_lf() {
    smuggling("\\r\\n.\\n", BareEndingPolicy::Reject);
    smuggling("\\r\\n.\\n", BareEndingPolicy::Normalize);
}

#[test]
fn smuggling_lf_dot_crlf() {
    smuggling("\\n.\\r\\n", BareEndingPolicy::Reject);
    smuggling("\\n.\\r\\n", BareEndingPolicy::Normalize);
}

#[test]
fn smuggling_cr_dot_crlf() {
    smuggling("\\r.\\r\\n", BareEndingPolicy::Reject);
    smuggling("\\r.\\r\\n", BareEndingPolicy::Normalize);
}

#[test]
fn smuggling_crlf_dot_cr() {
    smuggling("\\r\\n.\\r", BareEndingPolicy::Reject);
    smuggling("\\r\\n.\\r", BareEndingPolicy::Normalize);
}

#[test]
fn bare_cr_and_lf_in_data_rejected_by_default() {
    let r = check(
        &Setup::new(config()),
        "
    S: 220 mx.example.com ESMTP
    C: HELO a.example
    S: 250 mx.example.com
    C: MAIL FROM:<a@a.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@b.example>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C~ one\\rtwo\\nthree\\r\\n.\\r\\n
    S: 554 5.6.0 message contains bare CR or LF
    C: NOOP
    S: 250 2.0.0 OK
",
    );
    assert!(r.events.iter().any(|e| e.contains("Data(BareLineEnding)")));
}

#[test]
fn bare_cr_and_lf_in_data_normalized() {
    let mut c = config();
    c.bare_endings = BareEndingPolicy::Normalize;
    let r = check(
        &Setup::new(c),
        "
    S: 220 mx.example.com ESMTP
    C: HELO a.example
    S: 250 mx.example.com
    C: MAIL FROM:<a@a.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<b@b.example>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C~ one\\rtwo\\nthree\\r\\n.\\r\\n
    S: 250 2.0.0 OK: message accepted
",
    );
    assert_eq!(r.bodies, vec![b"one\r\ntwo\r\nthree\r\n".to_vec()]);
}

fn tls_server() -> ServerSession {
    let mut c = config();
    c.starttls = true;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    s
}

fn drive(server: &mut ServerSession, input: &[u8]) -> Result<usize, Error> {
    let mut pos = 0;
    loop {
        let step = server.handle_input(&input[pos..])?;
        pos += step.consumed;
        match step.outcome {
            Outcome::Event(ServerEvent::StartTls) => return Ok(pos),
            Outcome::Event(_) => {
                if server.pending_decision().is_some() {
                    server.accept().unwrap();
                }
            }
            Outcome::Transmit => {
                server.poll_transmit(&mut Vec::new());
            }
            _ => return Ok(pos),
        }
    }
}

#[test]
fn starttls_plaintext_injection_in_same_packet() {
    let mut s = tls_server();
    let err = drive(
        &mut s,
        b"EHLO a.example\r\nSTARTTLS\r\nMAIL FROM:<injected@a.example>\r\n",
    )
    .unwrap_err();
    assert_eq!(err, Error::Remote(RemoteError::StartTlsInjection));
    assert!(s.is_closed());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("\r\n220 "), "220 must not be sent: {out}");
    assert!(out.ends_with("554 5.5.1 Data pipelined after STARTTLS, closing\r\n"));
    assert_eq!(s.tls_established(), Err(UsageError::NotAwaitingTls));
}

#[test]
fn starttls_plaintext_injection_before_handshake() {
    let mut s = tls_server();
    let n = drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
    assert_eq!(n, 26);
    // The handshake has not happened; plaintext arrives anyway.
    let err = s.handle_input(b"RSET\r\n").unwrap_err();
    assert_eq!(err, Error::Remote(RemoteError::StartTlsInjection));
    assert!(s.is_closed());
    // With no bytes the machine just waits for the handshake.
    let mut s = tls_server();
    drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
    let step = s.handle_input(b"").unwrap();
    assert_eq!(step.outcome, Outcome::Paused);
    s.tls_established().unwrap();
    assert!(s.is_tls());
}

#[test]
fn overlong_line_then_command_on_same_line() {
    let long = "X".repeat(2000);
    let r = check(
        &Setup::new(config()),
        &format!(
            "
    S: 220 mx.example.com ESMTP
    C: HELO a.example
    S: 250 mx.example.com
    C: MAIL FROM:<a@a.example>
    S: 250 2.1.0 OK
    C: {long}RCPT TO:<victim@b.example>
    S: 500 5.5.2 line too long
    C: RCPT TO:<b@b.example>
    S: 250 2.1.5 OK
"
        ),
    );
    assert_eq!(r.events.iter().filter(|e| e.starts_with("Rcpt")).count(), 1);
    assert!(!r.events.iter().any(|e| e.contains("victim")));
}

/// The replies of `output` whose code is `code`.
fn replies_with_code(output: &str, code: &str) -> usize {
    output.split("\r\n").filter(|l| l.starts_with(code)).count()
}

const EHLO_REPLY: &str = "
    S: 220 mx.example.com ESMTP
    C: EHLO a.example
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
";

#[test]
fn overlong_line_then_bare_lf_then_rcpt() {
    // The bare LF does not end the over-long line: it is thrown away
    // through the CRLF after the RCPT, with one 500.
    let long = "X".repeat(2000);
    let r = check(
        &Setup::new(config()),
        &format!(
            "{EHLO_REPLY}
    C: MAIL FROM:<a@a.example>
    S: 250 2.1.0 OK
    C~ {long}\\nRCPT TO:<victim@b.example>\\r\\n
    S: 500 5.5.2 line too long
"
        ),
    );
    assert_eq!(replies_with_code(&r.output_str(), "500 "), 1);
    assert!(!r.events.iter().any(|e| e.starts_with("Rcpt")), "{r:#?}");
    assert_eq!(r.leftover, 0);
}

#[test]
fn bare_lf_does_not_split_a_command_line() {
    // A front end that ends lines only at CRLF sees one line here; so does
    // the server: one 500 for the whole line, no RCPT.
    let r = check(
        &Setup::new(config()),
        &format!(
            "{EHLO_REPLY}
    C: MAIL FROM:<a@a.example>
    S: 250 2.1.0 OK
    C~ NOOP\\nRCPT TO:<x@y.example>\\r\\n
    S: 500 5.5.2 bare CR or LF in command line
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert_eq!(replies_with_code(&r.output_str(), "500 "), 1);
    assert!(!r.events.iter().any(|e| e.starts_with("Rcpt")), "{r:#?}");
}

/// An AUTH-capable configuration and its EHLO exchange.
fn auth_setup() -> (Setup, &'static str) {
    let mut c = config();
    c.auth_mechanisms = vec![
        smtp_proto::sasl::SaslMechanism::Plain,
        smtp_proto::sasl::SaslMechanism::XOAuth2,
    ];
    c.auth_requires_tls = false;
    let ehlo = "
    S: 220 mx.example.com ESMTP
    C: EHLO a.example
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN XOAUTH2
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
";
    (Setup::new(c), ehlo)
}

#[test]
fn bare_lf_in_sasl_response_is_one_refused_line() {
    let (setup, ehlo) = auth_setup();
    let r = check(
        &setup,
        &format!(
            "{ehlo}
    C: AUTH PLAIN
    S: 334 
    C~ AGFsaWNlAHNlY3JldA==\\nMAIL FROM:<a@a.example>\\r\\n
    S: 501 5.5.2 Cannot Base64-decode client response
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert!(!r.events.iter().any(|e| e.starts_with("Mail")), "{r:#?}");
    assert!(!r.events.iter().any(|e| e.starts_with("Auth(")), "{r:#?}");
}

#[test]
fn bare_lf_in_answer_to_oauth_error_challenge_is_one_line() {
    let (setup, ehlo) = auth_setup();
    let r = check(
        &setup,
        &format!(
            "{ehlo}
    C: AUTH XOAUTH2 dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB3cm9uZwEB
    S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
    C~ \\nMAIL FROM:<b@a.example>\\r\\n
    S: 535 5.7.8 Authentication credentials invalid
    C: NOOP
    S: 250 2.0.0 OK
"
        ),
    );
    assert!(!r.events.iter().any(|e| e.starts_with("Mail")), "{r:#?}");
}

/// Feeds `total` bytes of `fill` without a line end, 64 KiB at a time,
/// dropping what the machine consumes; the unconsumed tail must stay below
/// `bound` the whole time.
fn feed_endless(server: &mut ServerSession, fill: u8, total: usize, bound: usize) {
    let piece = vec![fill; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    while fed < total {
        held.extend_from_slice(&piece);
        fed += piece.len();
        loop {
            let step = server.handle_input(&held).unwrap();
            let n = step.consumed;
            match step.outcome {
                Outcome::NeedInput => {
                    held.drain(..n);
                    break;
                }
                Outcome::Event(_) | Outcome::Transmit => {}
                other => panic!("{other:?}"),
            }
            held.drain(..n);
        }
        assert!(held.len() <= bound, "caller must hold {} bytes", held.len());
        server.poll_transmit(&mut out);
        assert!(out.len() < 4096, "output grew to {}", out.len());
    }
}

#[test]
fn one_gib_without_crlf_costs_bounded_memory() {
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, b"220 mx.example.com ESMTP\r\n");
    out.clear();
    feed_endless(&mut s, b'A', 1 << 30, 1024);
    let mut held = b"\r\nNOOP\r\n".to_vec();
    let mut events = Vec::new();
    loop {
        let step = s.handle_input(&held).unwrap();
        let n = step.consumed;
        match step.outcome {
            Outcome::Event(e) => events.push(format!("{e:?}")),
            _ => break,
        }
        held.drain(..n);
    }
    s.poll_transmit(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "500 5.5.2 line too long\r\n250 2.0.0 OK\r\n"
    );
    assert_eq!(events.len(), 2);
}

/// The caller never has to hold more than one line's worth of an endless
/// line, however small the pieces it arrives in: the machine starts
/// throwing the line away once it reaches `max_line_length`, not at some
/// larger multiple of it. (Fed in 64 KiB pieces, as above, any threshold
/// up to 64 KiB looks the same; here the pieces are 100 bytes.)
#[test]
fn an_endless_line_in_small_pieces_is_held_to_the_line_limit() {
    let c = config();
    let limit = c.max_line_length;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    s.poll_transmit(&mut Vec::new());
    let piece = [b'A'; 100];
    let mut held: Vec<u8> = Vec::new();
    let mut most = 0;
    for _ in 0..10_000 {
        held.extend_from_slice(&piece);
        loop {
            let step = s.handle_input(&held).unwrap();
            let n = step.consumed;
            let more = match step.outcome {
                Outcome::NeedInput => false,
                Outcome::Event(_) | Outcome::Transmit => true,
                other => panic!("{other:?}"),
            };
            held.drain(..n);
            if !more {
                break;
            }
        }
        most = most.max(held.len());
    }
    assert!(
        most <= limit,
        "the caller had to hold {most} bytes of one line (limit {limit})"
    );
    held.extend_from_slice(b"\r\nNOOP\r\n");
    loop {
        let step = s.handle_input(&held).unwrap();
        let n = step.consumed;
        let more = matches!(step.outcome, Outcome::Event(_) | Outcome::Transmit);
        held.drain(..n);
        if !more {
            break;
        }
    }
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "500 5.5.2 line too long\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn one_gib_data_line_is_streamed_then_refused() {
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut held = PROLOGUE.as_bytes().to_vec();
    loop {
        let step = s.handle_input(&held).unwrap();
        let n = step.consumed;
        let start = matches!(
            step.outcome,
            Outcome::Event(ServerEvent::MessageStart { .. })
        );
        if s.pending_decision().is_some() {
            s.accept().unwrap();
        }
        held.drain(..n);
        if start {
            break;
        }
    }
    feed_endless(&mut s, b'B', 1 << 30, 0);
    let end = b"\r\n.\r\n";
    let mut pos = 0;
    let mut events = Vec::new();
    while pos < end.len() {
        let step = s.handle_input(&end[pos..]).unwrap();
        pos += step.consumed;
        events.push(step.into_event().map(|e| format!("{e:?}")));
    }
    assert_eq!(pos, 5);
    // The line was over the limit, so nothing more of the body is handed
    // out; the message is refused once its real end arrives.
    assert_eq!(
        events,
        vec![Some(
            "Rejected { code: ReplyCode(554), reason: Data(LineTooLong) }".to_string()
        )]
    );
}

#[test]
fn ten_thousand_rcpt_commands() {
    let mut c = config();
    c.max_errors = 10;
    let mut client = b"EHLO a.example\r\nMAIL FROM:<a@a.example>\r\n".to_vec();
    for i in 0..10_000 {
        client.extend_from_slice(format!("RCPT TO:<user{i}@b.example>\r\n").as_bytes());
    }
    client.extend_from_slice(b"QUIT\r\n");
    let setup = Setup::new(c);
    let whole = run_pieces(&setup, std::slice::from_ref(&client), &|s: &[u8]| {
        vec![s.to_vec()]
    });
    let chunked = run_pieces(&setup, std::slice::from_ref(&client), &|s: &[u8]| {
        s.chunks(1000).map(<[u8]>::to_vec).collect()
    });
    assert_eq!(whole, chunked);
    let out = whole.output_str();
    assert_eq!(out.matches("250 2.1.5 OK\r\n").count(), 100);
    assert_eq!(
        out.matches("452 4.5.3 Too many recipients\r\n").count(),
        9_900
    );
    assert!(out.ends_with("221 2.0.0 Bye\r\n"));
    assert!(whole.closed);
}

#[test]
fn pipelined_replies_are_flushed_in_bounded_pieces() {
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let input = b"NOOP\r\n".repeat(20_000);
    let mut pos = 0;
    let mut out = Vec::new();
    let mut transmits = 0;
    loop {
        let step = s.handle_input(&input[pos..]).unwrap();
        pos += step.consumed;
        match step.outcome {
            Outcome::Transmit => {
                transmits += 1;
                let before = out.len();
                s.poll_transmit(&mut out);
                assert!(out.len() - before < 32 * 1024);
            }
            Outcome::NeedInput => break,
            _ => {}
        }
    }
    s.poll_transmit(&mut out);
    assert!(transmits > 0);
    assert_eq!(pos, input.len());
    assert_eq!(
        String::from_utf8(out)
            .unwrap()
            .matches("250 2.0.0 OK\r\n")
            .count(),
        20_000
    );
}

#[test]
fn bdat_chunk_of_rejected_command_is_not_parsed() {
    // BDAT before MAIL: its 40 bytes hold commands that must not run.
    let t = parse(
        "
    C: EHLO a.example
    C: BDAT 40
    C~ MAIL FROM:<x@y.example>\\r\\nRCPT TO:<z@w>\\r\\n
    C: NOOP
",
    );
    assert_eq!(t.segments[0].len(), 16 + 9 + 40 + 6);
    let r = run_all(&Setup::new(config()), &t);
    assert!(!r
        .events
        .iter()
        .any(|e| e.starts_with("Mail") || e.starts_with("Rcpt")));
    assert!(r
        .output_str()
        .ends_with("503 5.5.1 Bad sequence of commands\r\n250 2.0.0 OK\r\n"));
}

/// A BDAT chunk of 51 octets (escaped, for a `C~` line) holding a MAIL
/// and a RCPT that must never run.
const EVIL_CHUNK: &str = "MAIL FROM:<evil@x.example>\\r\\nRCPT TO:<v@y.example>\\r\\n";

/// Runs EHLO, the BDAT command line `line` (escaped, for a `C~` line) with
/// [`EVIL_CHUNK`] right after it, and NOOP, all in one segment; checks
/// that neither command in the chunk ran, and returns the run.
fn bdat_line_then_evil_chunk(line: &str) -> RunResult {
    assert_eq!(support::unescape(EVIL_CHUNK).len(), 51);
    let t = parse(&format!(
        "
    C: EHLO a.example
    C~ {line}\\r\\n{EVIL_CHUNK}
    C: NOOP
"
    ));
    let r = run_all(&Setup::new(config()), &t);
    assert!(
        !r.events
            .iter()
            .any(|e| e.starts_with("Mail") || e.starts_with("Rcpt")),
        "{line}: commands in or after the line ran: {:#?}",
        r.events
    );
    r
}

/// Asserts that the session's last reply was `reply` and that it closed
/// on `error`.
fn assert_closed_with(r: &RunResult, reply: &str, error: RemoteError, line: &str) {
    let out = r.output_str();
    assert!(out.ends_with(&format!("\r\n{reply}\r\n")), "{line}: {out}");
    assert_eq!(r.remote_error, Some(error), "{line}");
    assert!(r.closed, "{line}");
}

/// A BDAT command with a readable size but a wrong end marker: the client
/// sends the chunk anyway, so it is read and dropped before the 501, and
/// the commands it holds never run.
#[test]
fn bdat_chunk_of_a_bdat_syntax_error_is_not_parsed() {
    for (line, reason) in [
        ("BDAT 51 NOW", "expected LAST"),
        ("BDAT 51 LAST x", "unexpected text after LAST"),
        ("bdat 0051  later", "expected LAST"),
    ] {
        let r = bdat_line_then_evil_chunk(line);
        let out = r.output_str();
        assert!(
            out.ends_with(&format!("\r\n501 5.5.4 {reason}\r\n250 2.0.0 OK\r\n")),
            "{line}: {out}"
        );
        assert_eq!(r.remote_error, None, "{line}");
    }
}

/// A BDAT command line the codec refuses before it reads the verb (a NUL
/// or a non-UTF-8 octet in it): the client sends the chunk right after it
/// all the same, so the chunk is read and dropped before the refusal, and
/// the MAIL and RCPT it holds never run. Inside a transaction the refused
/// chunk ends it (RFC 3030 §2), and the chunk pipelined after it gets 503.
#[test]
fn bdat_chunk_after_a_nul_or_non_utf8_bdat_line_is_not_parsed() {
    for (line, reply) in [
        ("BDAT 51 LAST\\0", "500 5.5.2 NUL octet in command line"),
        ("BDAT 51 \\0LAST", "500 5.5.2 NUL octet in command line"),
        (
            "bDaT 51 LAST\\xff",
            "500 5.5.2 command line is not valid UTF-8",
        ),
        (
            "BDAT 51 \\xc3\\x28",
            "500 5.5.2 command line is not valid UTF-8",
        ),
    ] {
        let r = bdat_line_then_evil_chunk(line);
        let out = r.output_str();
        assert!(
            out.ends_with(&format!("\r\n{reply}\r\n250 2.0.0 OK\r\n")),
            "{line}: {out}"
        );
        assert_eq!(r.remote_error, None, "{line}");

        // The same line in a transaction, with chunks before and after.
        let t = parse(&format!(
            "
    C: EHLO a.example
    C: MAIL FROM:<a@a.example>
    C: RCPT TO:<b@b.example>
    C: BDAT 4
    C~ abcd
    C~ {line}\\r\\n{EVIL_CHUNK}
    C: BDAT 4 LAST
    C~ RSET
    C: NOOP
"
        ));
        let r = run_all(&Setup::new(config()), &t);
        let out = r.output_str();
        assert!(
            out.ends_with(&format!(
                "\r\n250 2.0.0 4 octets received\r\n{reply}\r\n\
                 503 5.5.1 Bad sequence of commands\r\n250 2.0.0 OK\r\n"
            )),
            "{line}: {out}"
        );
        assert!(r.bodies.is_empty(), "{line}: {:?}", r.bodies);
        assert_eq!(
            r.events.iter().filter(|e| e.starts_with("Mail")).count(),
            1,
            "{line}: {:#?}",
            r.events
        );
    }
}

/// A BDAT command line with a bare CR or LF: some peers end such a line
/// at the bare LF (or CR), others at the CRLF, so they disagree on where
/// its chunk starts. The session answers and closes rather than guess, and
/// nothing after the line is parsed as commands. A NUL or non-UTF-8 octet
/// where the size should be leaves the size unreadable: the session closes
/// as for any unreadable size.
#[test]
fn bdat_line_with_a_bare_line_ending_or_unreadable_size_closes() {
    for (line, reply, error) in [
        (
            "BDAT 51\\r",
            "500 5.5.2 Bare CR or LF in BDAT command line, closing",
            RemoteError::BdatBareLineEnding,
        ),
        (
            "BDAT 51 LAST\\rX",
            "500 5.5.2 Bare CR or LF in BDAT command line, closing",
            RemoteError::BdatBareLineEnding,
        ),
        (
            // A bare LF does not end a command line here: the line runs
            // on to the CRLF.
            "bdat 51\\n",
            "500 5.5.2 Bare CR or LF in BDAT command line, closing",
            RemoteError::BdatBareLineEnding,
        ),
        (
            "BDAT 51\\0\\r",
            "500 5.5.2 Bare CR or LF in BDAT command line, closing",
            RemoteError::BdatBareLineEnding,
        ),
        (
            "BDAT 51\\0",
            "501 5.5.4 Unreadable BDAT chunk size, closing",
            RemoteError::UnreadableChunkSize,
        ),
        (
            "BDAT \\xff51",
            "501 5.5.4 Unreadable BDAT chunk size, closing",
            RemoteError::UnreadableChunkSize,
        ),
    ] {
        let r = bdat_line_then_evil_chunk(line);
        assert_closed_with(&r, reply, error, line);
    }
}

/// A line that peers which split commands at any blank (a tab, several
/// spaces, blanks before the verb) read as a BDAT command, and this session
/// cannot: such a peer reads a chunk after it, a strict one reads the
/// bytes as commands. The session answers and closes rather than guess,
/// and nothing after the line runs as a command, however long the line.
#[test]
fn bdat_line_with_a_tab_or_a_leading_blank_closes() {
    for line in [
        "BDAT\\x0951",
        "bdat\\x0951 LAST",
        " BDAT 51",
        "\\x09BDAT 51 LAST",
        "BDAT\\x0b51",
        "BDAT\\x0c51 LAST",
        // Trailing white space is dropped from other command lines (RFC
        // 5321 §4.1.1), not from a BDAT line: its chunk follows it.
        "BDAT 51\\x09",
    ] {
        let r = bdat_line_then_evil_chunk(line);
        assert_closed_with(
            &r,
            "501 5.5.4 Unreadable BDAT chunk size, closing",
            RemoteError::UnreadableChunkSize,
            line,
        );
    }
    let line = format!("BDAT\\x0951 {}", "x".repeat(1100));
    let r = bdat_line_then_evil_chunk(&line);
    assert_closed_with(
        &r,
        "500 5.5.2 BDAT command line too long, closing",
        RemoteError::BdatLineTooLong,
        &line,
    );
    // Other lines with such blanks are only refused.
    let t = parse(
        "
    C: EHLO a.example
    C~ NOOP\\x09x\\r\\n
    C~ BDATA 5\\r\\n
    C: NOOP
",
    );
    let r = run_all(&Setup::new(config()), &t);
    assert_eq!(r.remote_error, None);
    assert!(
        r.output_str().ends_with("250 2.0.0 OK\r\n"),
        "{}",
        r.output_str()
    );
}

/// A BDAT command line over the line limit: the rest of the line is thrown
/// away to find its end, so where the chunk starts rests on a framing the
/// client does not share (it sent a line no peer accepts). The session
/// answers and closes; nothing after the line runs as a command. Another
/// over-long line is still only refused.
#[test]
fn overlong_bdat_line_closes_the_session() {
    let padding = "x".repeat(1100);
    for line in [
        format!("BDAT 51 LAST {padding}"),
        format!("bdat 51{}", " ".repeat(1100)),
        format!("BdAt {padding}"),
    ] {
        let t = parse(&format!(
            "
    C: EHLO a.example
    C: MAIL FROM:<a@a.example>
    C: RCPT TO:<b@b.example>
    C~ {line}\\r\\n{EVIL_CHUNK}
    C: NOOP
"
        ));
        let r = run_all(&Setup::new(config()), &t);
        assert_eq!(
            r.events.iter().filter(|e| e.starts_with("Mail")).count(),
            1,
            "commands after the line ran: {:#?}",
            r.events
        );
        assert_closed_with(
            &r,
            "500 5.5.2 BDAT command line too long, closing",
            RemoteError::BdatLineTooLong,
            &line,
        );
        assert!(r.bodies.is_empty());
    }
    let t = parse(&format!(
        "
    C: EHLO a.example
    C~ NOOP {padding}\\r\\n
    C: NOOP
"
    ));
    let r = run_all(&Setup::new(config()), &t);
    assert!(r
        .output_str()
        .ends_with("\r\n500 5.5.2 line too long\r\n250 2.0.0 OK\r\n"));
    assert_eq!(r.remote_error, None);
}

/// A BDAT command whose size cannot be read: where its chunk ends is
/// unknown, so the session answers 501 and closes instead of reading the
/// chunk's bytes as commands.
#[test]
fn bdat_with_an_unreadable_size_closes_the_session() {
    for line in [
        "BDAT x12",
        "BDAT 12x",
        "BDAT +12",
        "BDAT",
        "BDAT 99999999999999999999999",
    ] {
        let client = format!("EHLO a.example\r\n{line}\r\nMAIL FROM:<evil@x.example>\r\nNOOP\r\n");
        let t = support::Transcript {
            segments: vec![client.into_bytes()],
            expected: Vec::new(),
        };
        let r = run_all(&Setup::new(config()), &t);
        assert!(
            !r.events.iter().any(|e| e.starts_with("Mail")),
            "{line}: {:#?}",
            r.events
        );
        assert_closed_with(
            &r,
            "501 5.5.4 Unreadable BDAT chunk size, closing",
            RemoteError::UnreadableChunkSize,
            line,
        );
    }
}

#[test]
fn usage_errors_change_nothing() {
    let mut s = ServerSession::new(ServerConfig::default()).unwrap();
    assert_eq!(
        s.handle_input(b"EHLO x\r\n").unwrap_err(),
        Error::Usage(UsageError::GreetingPending)
    );
    assert_eq!(s.accept(), Err(UsageError::GreetingPending));
    s.greet().unwrap();
    assert_eq!(s.greet(), Err(UsageError::AlreadyGreeted));
    assert_eq!(s.accept(), Err(UsageError::NoDecisionPending));
    let step = s.handle_input(b"EHLO x\r\nNOOP\r\n").unwrap();
    assert_eq!(step.consumed, 8);
    assert_eq!(
        s.handle_input(b"NOOP\r\n").unwrap_err(),
        Error::Usage(UsageError::DecisionPending)
    );
    let not_rejection =
        smtp_proto::server::OwnedReply::new(smtp_proto::status::ReplyCode::OK, "fine").unwrap();
    assert_eq!(s.reject(not_rejection), Err(UsageError::NotARejection));
    assert_eq!(s.tls_established(), Err(UsageError::NotAwaitingTls));
    assert_eq!(
        s.reply_per_recipient(&[]),
        Err(UsageError::RecipientReplies)
    );
    // Still waiting for the same decision.
    assert_eq!(
        s.pending_decision(),
        Some(smtp_proto::server::Decision::Hello)
    );
    s.accept().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, b"220 localhost ESMTP\r\n250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
}

/// An LMTP session whose message has just ended, with two accepted
/// recipients, by DATA or by BDAT LAST; its output so far is taken.
fn lmtp_message_end(chunked: bool) -> ServerSession {
    let mut c = config();
    c.lmtp = true;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let body: &[u8] = if chunked {
        b"BDAT 4 LAST\r\nHi\r\n"
    } else {
        b"DATA\r\nHi\r\n.\r\n"
    };
    let mut input = b"LHLO bar.com\r\nMAIL FROM:<a@bar.com>\r\n\
        RCPT TO:<one@foo.com>\r\nRCPT TO:<two@foo.com>\r\n"
        .to_vec();
    input.extend_from_slice(body);
    let mut pos = 0;
    loop {
        let step = s.handle_input(&input[pos..]).unwrap();
        pos += step.consumed;
        match step.outcome {
            Outcome::Event(ServerEvent::MessageEnd { recipients, .. }) => {
                assert_eq!(recipients, 2);
                break;
            }
            Outcome::Event(_) if s.pending_decision().is_some() => s.accept().unwrap(),
            Outcome::Event(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pos, input.len());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    s
}

/// RFC 2033 §4.2 and §4.3: after DATA or BDAT LAST, one reply per accepted
/// recipient, in RCPT order. An application that gives fewer or more, or a
/// 3xx among them, gets a usage error: nothing is sent and the decision is
/// still pending, so the count the client waits for is never broken.
#[test]
fn lmtp_per_recipient_replies_must_match_the_recipients() {
    let ok = support::reply(250, "2.0.0", "Delivered");
    let full = support::reply(452, "4.2.2", "Mailbox full");
    let more = smtp_proto::server::OwnedReply::new(
        smtp_proto::status::ReplyCode::START_MAIL_INPUT,
        "go on",
    )
    .unwrap();
    for chunked in [false, true] {
        let mut s = lmtp_message_end(chunked);
        assert_eq!(
            s.reply_per_recipient(std::slice::from_ref(&ok)),
            Err(UsageError::RecipientReplies)
        );
        assert_eq!(
            s.reply_per_recipient(&[ok.clone(), full.clone(), ok.clone()]),
            Err(UsageError::RecipientReplies)
        );
        assert_eq!(
            s.reply_per_recipient(&[ok.clone(), more.clone()]),
            Err(UsageError::BadReplyCode),
            "a 3xx is a bad reply code, as for `reply`"
        );
        assert_eq!(s.reply(more.clone()), Err(UsageError::BadReplyCode));
        assert!(!s.has_transmit(), "a refused answer sends nothing");
        assert_eq!(
            s.pending_decision(),
            Some(smtp_proto::server::Decision::Message)
        );
        s.reply_per_recipient(&[full.clone(), ok.clone()]).unwrap();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "452 4.2.2 Mailbox full\r\n250 2.0.0 Delivered\r\n"
        );
        assert_eq!(s.phase(), smtp_proto::session::Phase::Ready);
        assert_eq!(s.recipients(), 0);
    }
}

#[test]
fn timeouts_are_reported_per_phase() {
    let mut s = ServerSession::new(config()).unwrap();
    assert_eq!(s.timeout(), None);
    s.greet().unwrap();
    assert_eq!(s.timeout().map(|d| d.as_secs()), Some(300));
    let _ = s.handle_input(b"EHLO a\r\n").unwrap();
    assert_eq!(s.timeout(), None, "waiting for the application");
}

/// The bytes of an over-long line, thrown away before its end, complete
/// no command: they do not restart the wait for the client, for a command
/// line and for a SASL response line, while body bytes (the client's
/// progress) always do.
#[test]
fn discarded_line_bytes_do_not_restart_the_timeout() {
    let mut c = config();
    c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let long = vec![b'x'; c.max_auth_line_length + 10];
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    // A command line: bytes consumed, no line complete.
    let step = s.handle_input(&long[..2000]).unwrap();
    assert_eq!(step.consumed, 2000);
    assert!(matches!(step.outcome, Outcome::NeedInput));
    assert!(!s.restarts_timeout(&step));
    let step = s.handle_input(b"more\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Rejected { .. })
    ));
    assert!(s.restarts_timeout(&step));
    let _ = s.handle_input(b"EHLO a\r\n").unwrap();
    s.accept().unwrap();
    // A SASL command whose reply is a challenge moves the session on.
    let step = s.handle_input(b"AUTH PLAIN\r\n").unwrap();
    assert_eq!(step.consumed, 12);
    assert!(matches!(step.outcome, Outcome::NeedInput));
    assert!(s.restarts_timeout(&step));
    // An over-long response line after the 334 does not.
    let step = s.handle_input(&long).unwrap();
    assert_eq!(step.consumed, long.len());
    assert!(!s.restarts_timeout(&step));
    // Nothing consumed restarts nothing.
    let step = s.handle_input(b"").unwrap();
    assert!(!s.restarts_timeout(&step));
    // A body line of any length is content, not a line thrown away.
    let mut s = in_transaction(config());
    let step = s.handle_input(b"DATA\r\n").unwrap();
    assert_eq!(step.consumed, 6);
    let step = s.handle_input(&long).unwrap();
    assert!(step.consumed > 0);
    assert!(s.restarts_timeout(&step));
}

/// A greeted session with `config` after an accepted EHLO, MAIL and RCPT.
fn in_transaction(config: smtp_proto::server::ServerConfig) -> ServerSession {
    let mut s = ServerSession::new(config).unwrap();
    s.greet().unwrap();
    for line in [
        &b"EHLO a\r\n"[..],
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<c@d.example>\r\n",
    ] {
        let _ = s.handle_input(line).unwrap();
        s.accept().unwrap();
    }
    s
}

/// Feeds `input` to `s` until it is all consumed or a step gives more
/// than "need input"; returns whether any step with consumed bytes
/// restarted the timeout, and the last step's outcome as text.
fn feed_chunk(s: &mut ServerSession, input: &[u8]) -> (bool, String) {
    let mut pos = 0;
    let mut restarted = false;
    loop {
        let step = s.handle_input(&input[pos..]).unwrap();
        pos += step.consumed;
        if step.consumed > 0 && !matches!(step.outcome, Outcome::NeedInput) {
            return (restarted, format!("{:?}", step.outcome));
        }
        restarted |= s.restarts_timeout(&step);
        if step.consumed == 0 || pos == input.len() {
            return (restarted, format!("{:?}", step.outcome));
        }
    }
}

/// The chunk of a BDAT the server drops completes nothing: in a session
/// refused at the greeting, or out of sequence, its bytes do not restart
/// the wait for the client, so an endless chunk cannot hold the
/// connection; only the refusal at its end does. A chunk refused as too
/// large is the client's message and restarts it as body bytes do.
#[test]
fn dropped_bdat_chunks_do_not_restart_the_timeout() {
    let chunk = vec![b'z'; 5000];
    // Refused at the greeting.
    let mut s = ServerSession::new(config()).unwrap();
    s.refuse(None).unwrap();
    let (restarted, last) = feed_chunk(&mut s, b"BDAT 18446744073709551615\r\n");
    assert!(!restarted, "{last}");
    let (restarted, last) = feed_chunk(&mut s, &chunk);
    assert!(!restarted, "{last}");
    assert!(!s.is_closed());
    // Out of sequence: BDAT before MAIL, in a greeted session.
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let _ = s.handle_input(b"EHLO a\r\n").unwrap();
    s.accept().unwrap();
    let (restarted, _) = feed_chunk(&mut s, b"BDAT 6000\r\n");
    assert!(!restarted);
    let (restarted, _) = feed_chunk(&mut s, &chunk);
    assert!(!restarted);
    // The rest of the chunk ends it: the refusal restarts the wait.
    let step = s.handle_input(&chunk[..1000]).unwrap();
    assert!(
        matches!(step.outcome, Outcome::Event(ServerEvent::Rejected { .. })),
        "{step:?}"
    );
    assert!(s.restarts_timeout(&step));
    // Too large for the message size limit: body bytes, progress.
    let mut c = config();
    c.max_message_size = Some(1000);
    let mut s = in_transaction(c);
    let _ = feed_chunk(&mut s, b"BDAT 6000 LAST\r\n");
    let (restarted, last) = feed_chunk(&mut s, &chunk);
    assert!(restarted, "{last}");
}

#[test]
fn oauth_error_challenge_only_for_oauth_mechanisms() {
    let mut c = config();
    c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let input = b"EHLO a\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n";
    let step = s.handle_input(input).unwrap();
    s.accept().unwrap();
    let step2 = s.handle_input(&input[step.consumed..]).unwrap();
    assert!(matches!(
        step2.outcome,
        Outcome::Event(ServerEvent::Auth(_))
    ));
    let r = support::reply(535, "5.7.8", "no");
    assert_eq!(
        s.reject_auth_with_challenge(b"{}", r.clone()),
        Err(UsageError::NotOAuth)
    );
    // Nothing changed: the decision is still open and can be answered.
    s.reject(r).unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.ends_with(b"535 5.7.8 no\r\n"));
}

#[test]
fn disconnect_mid_message_is_visible_in_the_phase() {
    use smtp_proto::session::Phase;
    for (client, phase) in [
        (&b"BDAT 10\r\nabc"[..], Phase::Bdat),
        (b"DATA\r\nSubject: x\r\n", Phase::Data),
        (b"BDAT 3\r\nabcRSET\r\n", Phase::Ready),
    ] {
        let mut s = ServerSession::new(config()).unwrap();
        s.greet().unwrap();
        let mut input = b"EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n".to_vec();
        input.extend_from_slice(client);
        let mut pos = 0;
        loop {
            let step = s.handle_input(&input[pos..]).unwrap();
            pos += step.consumed;
            if s.pending_decision().is_some() {
                s.accept().unwrap();
            }
            if step.outcome == Outcome::NeedInput {
                break;
            }
        }
        assert_eq!(pos, input.len());
        assert_eq!(s.phase(), phase, "{:?}", String::from_utf8_lossy(client));
    }
}

#[test]
fn timed_out_sends_421_and_closes() {
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out.clear();
    s.timed_out();
    assert!(s.is_closed());
    s.poll_transmit(&mut out);
    assert_eq!(
        out,
        b"421 4.4.2 mx.example.com Timeout waiting for client input, closing connection\r\n"
    );
    s.timed_out();
    assert!(!s.has_transmit(), "nothing more once closed");
    assert_eq!(
        s.handle_input(b"NOOP\r\n").unwrap().outcome,
        Outcome::Closed
    );
}

/// Every 421 the session sends on its own before it closes names the
/// server first, as RFC 5321 shows the reply: "421 <domain> Service not
/// available, closing transmission channel" (§4.2.2, §4.2.3; §3.8 lists
/// these closes), with ENHANCEDSTATUSCODES off as on: the timeout, the
/// error limit and the limit on failed authentications, like the
/// graceful shut-down.
#[test]
fn self_initiated_421s_name_the_host() {
    for enhanced in [true, false] {
        let mut c = config();
        c.enhanced_status_codes = enhanced;
        c.max_errors = 0;
        c.max_auth_failures = 1;
        c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::Plain];
        c.auth_requires_tls = false;
        let code = |e: &str| {
            if enhanced {
                format!("{e} ")
            } else {
                String::new()
            }
        };
        let last_line = |s: &mut ServerSession| {
            let mut out = Vec::new();
            s.poll_transmit(&mut out);
            assert!(s.is_closed());
            let out = String::from_utf8(out).unwrap();
            let line = out.lines().last().unwrap_or_default().to_owned();
            line
        };

        let mut s = ServerSession::new(c.clone()).unwrap();
        s.greet().unwrap();
        s.timed_out();
        assert_eq!(
            last_line(&mut s),
            format!(
                "421 {}mx.example.com Timeout waiting for client input, closing connection",
                code("4.4.2")
            )
        );

        let mut s = ServerSession::new(c.clone()).unwrap();
        s.greet().unwrap();
        let err = s.handle_input(b"XYZZY\r\n").unwrap_err();
        assert_eq!(err, Error::Remote(RemoteError::TooManyErrors));
        assert_eq!(
            last_line(&mut s),
            format!(
                "421 {}mx.example.com Too many errors, closing connection",
                code("4.7.0")
            )
        );

        let mut s = ServerSession::new(c.clone()).unwrap();
        s.greet().unwrap();
        drive(&mut s, b"EHLO c.example\r\n").unwrap();
        let step = s.handle_input(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n").unwrap();
        assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Auth(_))));
        let no = smtp_proto::reply::OwnedReply::new(
            smtp_proto::status::ReplyCode::AUTH_CREDENTIALS_INVALID,
            "Authentication credentials invalid",
        )
        .unwrap();
        s.reject(no).unwrap();
        assert_eq!(
            last_line(&mut s),
            format!(
                "421 {}mx.example.com Too many failed authentication attempts, closing",
                code("4.7.0")
            )
        );

        let mut s = ServerSession::new(c).unwrap();
        s.greet().unwrap();
        s.shut_down().unwrap();
        assert_eq!(
            last_line(&mut s),
            format!(
                "421 {}mx.example.com Service shutting down, closing connection",
                code("4.3.2")
            )
        );
    }
}

#[test]
fn shut_down_sends_421_4_3_2_after_queued_replies_and_closes() {
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut greeting = Vec::new();
    s.poll_transmit(&mut greeting);
    // Pipelined: the replies to MAIL and RCPT are queued, not yet sent.
    drive(&mut s, b"EHLO c.example\r\n").unwrap();
    s.poll_transmit(&mut Vec::new());
    let mut pos = 0;
    let input = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n";
    while pos < input.len() {
        let step = s.handle_input(&input[pos..]).unwrap();
        pos += step.consumed;
        if s.pending_decision().is_some() {
            s.accept().unwrap();
        }
    }
    assert_eq!(s.phase(), smtp_proto::session::Phase::Rcpt);
    s.shut_down().unwrap();
    assert!(s.is_closed());
    assert_eq!(s.phase(), smtp_proto::session::Phase::Closed);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("250 "), "{text}");
    assert!(lines[1].starts_with("250 "), "{text}");
    assert_eq!(
        lines[2],
        format!(
            "421 4.3.2 {} Service shutting down, closing connection",
            config().hostname
        )
    );
    // Closed: a second call adds nothing, input is not read.
    s.shut_down().unwrap();
    assert!(!s.has_transmit());
    assert_eq!(
        s.handle_input(b"DATA\r\n").unwrap().outcome,
        Outcome::Closed
    );
}

#[test]
fn shut_down_waits_for_a_pending_decision_and_may_replace_the_greeting() {
    let mut s = ServerSession::new(config()).unwrap();
    // Before the greeting, the 421 is the greeting (RFC 5321 §3.1), so it
    // carries no enhanced code (RFC 2034 §3).
    s.shut_down().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(
        out,
        b"421 mx.example.com Service shutting down, closing connection\r\n",
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(s.is_closed());

    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let step = s.handle_input(b"EHLO c.example\r\n").unwrap();
    assert!(matches!(step.outcome, Outcome::Event(_)));
    assert!(s.pending_decision().is_some());
    assert_eq!(s.shut_down(), Err(UsageError::DecisionPending));
    assert!(!s.is_closed(), "a refused shut-down changes nothing");
    s.accept().unwrap();
    s.shut_down().unwrap();
    out.clear();
    s.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("250-"), "{text}");
    assert!(text.ends_with(" Service shutting down, closing connection\r\n"));
}

/// After the `220` to STARTTLS the next bytes on the connection are the
/// TLS handshake's (RFC 3207 §4: the client "MUST start the TLS
/// negotiation before giving any other SMTP commands"). A shut-down or a
/// timeout while the handshake is pending closes the session without a
/// plaintext `421`, which the client's TLS stack would read as a broken
/// handshake record; the `220` already queued still goes out.
#[test]
fn no_plaintext_421_while_the_starttls_handshake_is_pending() {
    type Stop = fn(&mut ServerSession);
    let stops: [(&str, Stop); 3] = [
        ("shut_down", |s| s.shut_down().unwrap()),
        ("timed_out", ServerSession::timed_out),
        ("local_error", ServerSession::local_error),
    ];
    for (name, stop) in stops {
        // The 220 already handed out: nothing follows it.
        let mut s = tls_server();
        drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert!(out.ends_with(b"220 2.0.0 Ready to start TLS\r\n"), "{name}");
        assert_eq!(
            s.timeout(),
            None,
            "{name}: the handshake is the caller's to time"
        );
        stop(&mut s);
        assert!(s.is_closed(), "{name}");
        assert!(!s.has_transmit(), "{name}: plaintext after the 220");
        assert_eq!(
            s.tls_established(),
            Err(UsageError::NotAwaitingTls),
            "{name}"
        );

        // The 220 still queued: it goes out alone.
        let mut s = tls_server();
        s.poll_transmit(&mut Vec::new());
        drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
        stop(&mut s);
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.ends_with("\r\n220 2.0.0 Ready to start TLS\r\n"),
            "{name}: {out}"
        );
        assert!(!out.contains("421"), "{name}: {out}");
        assert!(s.is_closed(), "{name}");
    }

    // Once TLS is up the 421 goes out as usual, over TLS.
    let mut s = tls_server();
    drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
    s.poll_transmit(&mut Vec::new());
    s.tls_established().unwrap();
    s.shut_down().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.starts_with(b"421 4.3.2 "), "{out:?}");
}

/// `local_error`, the application's failure (RFC 5321 §3.8): a `421 4.3.0`
/// after what is queued, in any state, a pending decision included, which
/// it drops; no enhanced code where the `421` is the greeting or the
/// answer to EHLO (RFC 2034 §3); nothing once the session is closed.
#[test]
fn local_error_closes_with_421_from_any_state() {
    const LINE: &str = "mx.example.com Local error, closing connection\r\n";
    // Before the greeting: the 421 is the greeting.
    let mut s = ServerSession::new(config()).unwrap();
    s.local_error();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(String::from_utf8(out).unwrap(), format!("421 {LINE}"));
    assert!(s.is_closed());

    // An EHLO decision pending: the 421 answers EHLO.
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    let _ = s.handle_input(b"EHLO a.example\r\n").unwrap();
    assert_eq!(s.pending_decision(), Some(Decision::Hello));
    s.local_error();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with(&format!("ESMTP\r\n421 {LINE}")), "{out}");
    assert_eq!(s.pending_decision(), None);
    assert_eq!(s.accept(), Err(UsageError::NoDecisionPending));

    // A RCPT decision pending, the reply to MAIL still queued: it goes out
    // first, then the 421 with its enhanced code.
    let mut s = ServerSession::new(config()).unwrap();
    s.greet().unwrap();
    drive(&mut s, b"EHLO a.example\r\n").unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let _ = s.handle_input(b"MAIL FROM:<a@example.net>\r\n").unwrap();
    s.accept().unwrap();
    let _ = s.handle_input(b"RCPT TO:<b@example.org>\r\n").unwrap();
    assert_eq!(s.pending_decision(), Some(Decision::Rcpt));
    s.local_error();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("250 2.1.0 "), "{out}");
    assert!(out.ends_with(&format!("\r\n421 4.3.0 {LINE}")), "{out}");
    assert!(s.is_closed());

    // Closed already: nothing more.
    s.local_error();
    assert!(!s.has_transmit());
}

/// Plaintext fed to the session after its `220` to STARTTLS, before the
/// handshake, is refused as an injection (CVE-2011-0411), but without a
/// plaintext `554`: once the `220` is out, the next bytes on the
/// connection belong to the TLS handshake (RFC 3207 §4), as for the `421`
/// of a shut-down or timeout above. The `220`, if still queued, goes out
/// alone.
#[test]
fn no_plaintext_554_for_bytes_after_the_220_to_starttls() {
    // The 220 already handed out: nothing follows it.
    let mut s = tls_server();
    drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.ends_with(b"220 2.0.0 Ready to start TLS\r\n"));
    let err = s.handle_input(b"MAIL FROM:<a@a.example>\r\n").unwrap_err();
    assert_eq!(err, Error::Remote(RemoteError::StartTlsInjection));
    assert!(s.is_closed());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(
        out,
        b"",
        "plaintext after the 220: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(s.tls_established(), Err(UsageError::NotAwaitingTls));

    // The 220 still queued: it goes out alone.
    let mut s = tls_server();
    s.poll_transmit(&mut Vec::new());
    drive(&mut s, b"EHLO a.example\r\nSTARTTLS\r\n").unwrap();
    let err = s.handle_input(b"\x16\x03\x01").unwrap_err();
    assert_eq!(err, Error::Remote(RemoteError::StartTlsInjection));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.ends_with("\r\n220 2.0.0 Ready to start TLS\r\n"),
        "{out}"
    );
    assert!(!out.contains("554"), "{out}");
}

#[test]
fn a_size_limit_of_zero_is_refused_because_size_0_means_none() {
    let mut c = config();
    c.max_message_size = Some(0);
    assert!(matches!(
        ServerSession::new(c),
        Err(smtp_proto::server::ConfigError::Limit(_))
    ));
    let mut c = config();
    c.max_message_size = Some(1);
    assert!(ServerSession::new(c).is_ok());
}

/// The greeting and the EHLO reply carry the host name before SMTPUTF8
/// can be in use: RFC 6531 §3.7.1 wants LDH labels or A-labels there.
#[test]
fn the_host_name_is_ascii() {
    let mut c = config();
    c.hostname = "b\u{fc}cher.example".to_string();
    assert_eq!(
        ServerSession::new(c).err(),
        Some(smtp_proto::server::ConfigError::Hostname)
    );
    let mut c = config();
    c.hostname = "xn--bcher-kva.example".to_string();
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.starts_with(b"220 xn--bcher-kva.example "), "{out:?}");
}

/// RFC 6531 §3.1: "Servers offering this extension MUST provide support
/// for, and announce, the 8BITMIME extension": an EHLO reply that lists
/// SMTPUTF8 without 8BITMIME cannot be built.
#[test]
fn smtputf8_is_offered_only_with_8bitmime() {
    let mut c = config();
    c.smtputf8 = true;
    c.eight_bit_mime = false;
    assert!(matches!(
        ServerSession::new(c),
        Err(smtp_proto::server::ConfigError::Extension(_))
    ));
    let mut c = config();
    c.smtputf8 = true;
    let out = ehlo_reply(c);
    assert!(
        out.contains("\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"),
        "{out}"
    );
}

/// RFC 3030 §3: "The BINARYMIME service extension can only be used with
/// the "CHUNKING" service extension." A configuration that offers
/// BINARYMIME without CHUNKING is refused, as SMTPUTF8 without 8BITMIME
/// is, rather than advertising neither silently; with CHUNKING the EHLO
/// reply lists both.
#[test]
fn binarymime_is_offered_only_with_chunking() {
    let mut c = config();
    c.binarymime = true;
    c.chunking = false;
    assert_eq!(
        ServerSession::new(c).err(),
        Some(smtp_proto::server::ConfigError::Extension(
            "binarymime needs chunking"
        ))
    );
    let mut c = config();
    c.binarymime = true;
    let out = ehlo_reply(c);
    assert!(
        out.contains("\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"),
        "{out}"
    );
}

#[test]
fn an_oauth_error_challenge_must_fit_one_reply_line() {
    use base64::Engine as _;
    let mut c = config();
    c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::XOAuth2];
    c.auth_requires_tls = false;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let ir = base64::engine::general_purpose::STANDARD
        .encode(b"user=a@b.example\x01auth=Bearer t\x01\x01");
    let input = format!("EHLO a\r\nAUTH XOAUTH2 {ir}\r\n");
    let step = s.handle_input(input.as_bytes()).unwrap();
    s.accept().unwrap();
    let step2 = s.handle_input(&input.as_bytes()[step.consumed..]).unwrap();
    assert!(matches!(
        step2.outcome,
        Outcome::Event(ServerEvent::Auth(_))
    ));
    let r = support::reply(535, "5.7.8", "no");
    assert_eq!(
        s.reject_auth_with_challenge(&[b'x'; 379], r.clone()),
        Err(UsageError::ChallengeTooLong)
    );
    // The decision is still open: the largest document that fits is sent.
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out.clear();
    s.reject_auth_with_challenge(&[b'x'; 378], r).unwrap();
    s.poll_transmit(&mut out);
    assert_eq!(out.len(), 510);
    let mut decoder = smtp_proto::reply::ReplyDecoder::default();
    let Ok(smtp_proto::reply::Decoded::Reply { reply, consumed }) = decoder.decode(&out) else {
        panic!("the 334 line does not read back");
    };
    assert_eq!((reply.code().get(), consumed), (334, 510));
}

/// Password guessing: after `max_auth_failures` (3) refused credentials on
/// one connection the session replies 421 and closes. Cancelled or
/// malformed exchanges are not guesses and do not count (they count toward
/// the error limit as before).
#[test]
fn failed_authentications_are_limited_per_connection() {
    let mut c = config();
    c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::Plain];
    c.auth_requires_tls = false;
    let r = check(
        &Setup::new(c),
        &format!(
            "{EHLO_AUTH_PLAIN}
    C: AUTH PLAIN AGFsaWNlAHdyb25n
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH PLAIN
    S: 334 
    C: *
    S: 501 5.0.0 Authentication cancelled
    C: AUTH PLAIN AGFsaWNl
    S: 501 5.5.2 Malformed authentication response
    C: AUTH PLAIN
    S: 334 
    C: AGFsaWNlAHdyb25n
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH PLAIN AGFsaWNlAHdyb25n
    S: 535 5.7.8 Authentication credentials invalid
    S: 421 4.7.0 mx.example.com Too many failed authentication attempts, closing
"
        ),
    );
    assert!(r.closed);
    assert_eq!(
        r.events.iter().filter(|e| e.starts_with("Auth(")).count(),
        3
    );
}

/// The limit through the API: temporary refusals (454) are the server's
/// trouble, not guesses, and do not count; a success before the limit
/// ends the matter; `max_auth_failures` of 0 is refused.
#[test]
fn only_permanent_auth_refusals_count_toward_the_limit() {
    use smtp_proto::reply::OwnedReply;
    use smtp_proto::sasl::SaslMechanism;
    use smtp_proto::status::{EnhancedStatusCode, ReplyCode};

    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    c.max_auth_failures = 2;
    let mut s = ServerSession::new(c.clone()).unwrap();
    s.greet().unwrap();
    let mut out = Vec::new();
    let mut feed = |s: &mut ServerSession, line: &[u8]| -> Option<String> {
        let step = s.handle_input(line).expect("no error");
        assert_eq!(step.consumed, line.len());
        let event = match step.outcome {
            Outcome::Event(e) => Some(format!("{e:?}")),
            _ => None,
        };
        s.poll_transmit(&mut out);
        event
    };
    feed(&mut s, b"EHLO bar.com\r\n");
    s.accept().unwrap();
    let busy = OwnedReply::with_enhanced(
        ReplyCode::new(454).unwrap(),
        EnhancedStatusCode::parse(b"4.7.0"),
        "Temporary authentication failure",
    )
    .unwrap();
    let bad = OwnedReply::with_enhanced(
        ReplyCode::AUTH_CREDENTIALS_INVALID,
        EnhancedStatusCode::parse(b"5.7.8"),
        "Authentication credentials invalid",
    )
    .unwrap();
    for _ in 0..5 {
        assert!(feed(&mut s, b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n").is_some());
        s.reject(busy.clone()).unwrap();
    }
    assert!(!s.is_closed(), "454 does not count");
    feed(&mut s, b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n");
    s.reject(bad.clone()).unwrap();
    assert!(!s.is_closed());
    feed(&mut s, b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n");
    s.reject(bad).unwrap();
    assert!(
        s.is_closed(),
        "the second 535 reaches max_auth_failures = 2"
    );
    s.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with(
            "535 5.7.8 Authentication credentials invalid\r\n\
             421 4.7.0 mx.example.com Too many failed authentication attempts, closing\r\n"
        ),
        "{text}"
    );
    assert!(matches!(
        s.handle_input(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .map(|st| st.outcome),
        Ok(Outcome::Closed)
    ));

    c.max_auth_failures = 0;
    assert!(ServerSession::new(c).is_err());
}

/// What a session with `c` writes up to its EHLO reply.
fn ehlo_reply(c: smtp_proto::server::ServerConfig) -> String {
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let _ = s.handle_input(b"EHLO a.example\r\n").unwrap();
    s.accept().unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    String::from_utf8(out).unwrap()
}

/// A client that does not wait for the server's `334` (RFC 4954 §4) sends
/// its SASL responses after an AUTH the server refuses, or after the
/// exchange ended: they arrive as command lines. Base64 made of letters
/// and digits only reads as an unknown verb, and the verb of an unknown
/// command is kept in [`Rejection::UnknownCommand`] for logging: such a
/// verb is kept as `<redacted>`, so no event shows the credentials.
#[test]
fn sasl_responses_read_as_commands_are_not_logged() {
    // "bob", "secret123", "ABC", "ABCDEF" and "\0bob\0secret12xy" in base64:
    // one of each case mix, and a PLAIN response.
    let secrets = [
        "Ym9i",
        "c2VjcmV0MTIz",
        "QUJD",
        "QUJDREVG",
        "AGJvYgBzZWNyZXQxMnh5",
    ];
    let lines: String = secrets
        .iter()
        .map(|s| format!("    C: {s}\n    S: 500 5.5.2 Command unrecognized\n"))
        .collect();
    let r = check(
        &Setup::new(config()),
        &format!(
            "
    S: 220 mx.example.com ESMTP
    C: EHLO a.example
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH LOGIN
    S: 502 5.5.1 Command not implemented
{lines}    C: XYZZY
    S: 500 5.5.2 Command unrecognized
    C: XClient ADDR=192.0.2.1
    S: 500 5.5.2 Command unrecognized
    C: xforward NAME=spike.example
    S: 500 5.5.2 Command unrecognized
"
        ),
    );
    for s in secrets {
        assert!(!r.events.iter().any(|e| e.contains(s)), "{s}: {r:#?}");
    }
    assert_eq!(
        r.count_events(&format!("UnknownCommand({:?})", Rejection::REDACTED)),
        secrets.len() + 1,
        "{r:#?}"
    );
    // What looks like a verb is kept; mixed case is not.
    assert_eq!(r.count_events("UnknownCommand(\"XYZZY\")"), 1, "{r:#?}");
    assert_eq!(r.count_events("UnknownCommand(\"xforward\")"), 1, "{r:#?}");
    assert_eq!(r.count_events("XClient"), 0, "{r:#?}");
}

/// The same after an exchange that ended: a LOGIN client that sends its
/// password again, or a PLAIN client that repeats its response, past the
/// `235`.
#[test]
fn sasl_response_after_the_exchange_is_not_logged() {
    let mut c = config();
    c.auth_mechanisms = vec![smtp_proto::sasl::SaslMechanism::Login];
    c.auth_requires_tls = false;
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let mut input: &[u8] = b"EHLO a.example\r\nAUTH LOGIN Ym9i\r\nc2VjcmV0MTIz\r\nc2VjcmV0MTIz\r\n";
    let mut events = Vec::new();
    while !input.is_empty() {
        let step = s.handle_input(input).unwrap();
        input = &input[step.consumed..];
        match step.outcome {
            Outcome::Event(e) => {
                let decision = matches!(e, ServerEvent::Hello { .. } | ServerEvent::Auth(_));
                events.push(format!("{e:?} {e:#?}"));
                if decision {
                    s.accept().unwrap();
                }
            }
            Outcome::NeedInput => break,
            _ => {}
        }
        events.push(format!("{s:?}"));
    }
    assert!(input.is_empty());
    assert!(
        events.iter().any(|e| e.contains("Auth(Login")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("UnknownCommand(\"<redacted>\")")),
        "{events:#?}"
    );
    assert!(!events.iter().any(|e| e.contains("c2Vj")), "{events:#?}");
}
