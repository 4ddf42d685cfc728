//! The `deliver` example's `deliver` (the README's "Sending a message")
//! against scripted peers over loopback: what it sends for the message it
//! is given.

#[allow(dead_code, reason = "this binary uses the peer helper only")]
mod support;

#[path = "../../smtp-proto-tokio/tests/support/serve_example.rs"]
#[allow(dead_code, reason = "this binary runs the example binaries only")]
mod serve_example;

#[path = "../../smtp-proto-tokio/tests/support/send_process.rs"]
#[allow(dead_code, reason = "this binary runs the hostile peer only")]
mod send_process;

#[path = "../examples/deliver.rs"]
#[allow(dead_code, reason = "the example's main and printing are not run here")]
mod deliver_example;

use support::spawn_peer;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use smtp_proto_blocking::smtp_proto::client::{NotAttempted, RecipientOutcome, Refusal};

/// A peer without PIPELINING whose EHLO reply is `ehlo`: it accepts what
/// it is sent, reads the message after DATA, and answers QUIT. Returns the
/// command lines it read, and whether a message line had an octet above
/// 0x7F. Bounded: at most 100 commands and 1000 message lines, each read
/// within the support module's read timeout.
fn peer(socket: TcpStream, ehlo: &'static str) -> (Vec<String>, bool) {
    let mut out = socket.try_clone().expect("clone");
    let mut lines = BufReader::new(socket);
    let (mut seen, mut eight_bit) = (Vec::new(), false);
    out.write_all(b"220 mx.test ESMTP\r\n").expect("greeting");
    for _ in 0..100 {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        seen.push(line.clone());
        let reply: &[u8] = match line.as_str() {
            l if l.starts_with("EHLO") => ehlo.as_bytes(),
            "DATA" => {
                out.write_all(b"354 go ahead\r\n").expect("354");
                for _ in 0..1000 {
                    let mut body = Vec::new();
                    if lines.read_until(b'\n', &mut body).unwrap_or(0) == 0 || body == b".\r\n" {
                        break;
                    }
                    eight_bit |= body.iter().any(|&b| b >= 0x80);
                }
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 2.0.0 bye\r\n").expect("221");
                break;
            }
            _ => b"250 2.0.0 Ok\r\n",
        };
        out.write_all(reply).expect("reply");
    }
    (seen, eight_bit)
}

const EIGHT_BIT: &[u8] = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes();

fn deliver(ehlo: &'static str, message: &'static [u8]) -> (Vec<String>, bool, RecipientOutcome) {
    let (addr, peer) = spawn_peer(move |socket| peer(socket, ehlo));
    let report = deliver_example::deliver(
        &addr.to_string(),
        "alice@example.net",
        &["bob@example.org".to_owned()],
        message,
    )
    .expect("deliver");
    let (seen, eight_bit) = peer.join().expect("peer thread");
    let outcome = report.recipients[0].outcome.clone();
    (seen, eight_bit, outcome)
}

#[test]
fn an_8bit_message_does_not_go_to_a_server_without_8bitmime() {
    // RFC 6152 §3: without 8BITMIME the client "must not, under any
    // circumstances, attempt to transfer a content that contains
    // characters outside of the US-ASCII octet range".
    let (seen, eight_bit, outcome) = deliver("250 mx.test\r\n", EIGHT_BIT);
    assert!(!eight_bit, "8-bit octets sent: {seen:?}");
    assert_refused_before_mail(&seen, &outcome, Refusal::EightBitMime);
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"), "{seen:?}");
}

/// No transaction was started (no MAIL), and the recipient is refused
/// for good with `refusal`.
fn assert_refused_before_mail(seen: &[String], outcome: &RecipientOutcome, refusal: Refusal) {
    assert!(
        !seen.iter().any(|c| c.starts_with("MAIL ")),
        "a transaction was started: {seen:?}"
    );
    assert_eq!(
        outcome,
        &RecipientOutcome::NotAttempted {
            reason: NotAttempted::Refused(refusal)
        }
    );
    assert!(outcome.is_permanent_failure());
}

#[test]
fn an_8bit_message_is_declared_to_a_server_with_8bitmime() {
    // 8-bit octets in the body only: a UTF-8 header field would need
    // SMTPUTF8 as well.
    let (seen, eight_bit, outcome) = deliver("250-mx.test\r\n250 8BITMIME\r\n", EIGHT_BIT_BODY);
    assert!(eight_bit);
    let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
    assert!(mail.ends_with(" BODY=8BITMIME"), "{mail}");
    assert!(outcome.is_delivered(), "{outcome:?}");
}

#[test]
fn a_7bit_message_is_sent_without_a_body_parameter() {
    let (seen, _, outcome) = deliver("250 mx.test\r\n", b"Subject: hi\r\n\r\nhello\r\n");
    let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
    assert!(!mail.contains("BODY="), "{mail}");
    assert!(outcome.is_delivered(), "{outcome:?}");
}

/// A server that cannot be reached is a temporary failure: nothing was
/// sent, every recipient is to be tried again, so the exit status is 75
/// (`EX_TEMPFAIL`), as the example documents for recipients to retry. A
/// wrapper that bounces on any other status would bounce mail that only
/// met a server down for a moment. A bad address, or a server not given
/// as `HOST:PORT`, stays a usage error (2): no retry mends it.
#[test]
fn an_unreachable_server_exits_tempfail_and_a_bad_address_exits_2() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let to = ["bob@example.org".to_owned()];
    let message = b"Subject: hi\r\n\r\nhello\r\n";
    let unreachable =
        deliver_example::deliver(&addr.to_string(), "alice@example.net", &to, message)
            .expect_err("nothing listens there");
    assert_eq!(
        deliver_example::failure_status(unreachable.as_ref()),
        75,
        "{unreachable}"
    );
    let bad = deliver_example::deliver(&addr.to_string(), "not an address", &to, message)
        .expect_err("a bad sender");
    assert_eq!(deliver_example::failure_status(bad.as_ref()), 2, "{bad}");
    let no_port = deliver_example::deliver("127.0.0.1", "alice@example.net", &to, message)
        .expect_err("no port");
    assert_eq!(
        deliver_example::failure_status(no_port.as_ref()),
        2,
        "{no_port}"
    );
}

/// RFC 6531 §3.4: a message that requires SMTPUTF8 (here a UTF-8
/// `Subject:`, RFC 6532) goes with the SMTPUTF8 parameter, with LF or
/// CRLF line ends; 8-bit octets in the body alone do not ask for it.
#[test]
fn a_utf8_header_field_is_declared_with_smtputf8() {
    let ehlo = "250-mx.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
    for message in [
        "Subject: caf\u{e9}\r\n\r\nhello\r\n",
        "Subject: caf\u{e9}\n\nhello\n",
    ] {
        let message: &'static [u8] = message.as_bytes();
        let (seen, _, outcome) = deliver(ehlo, message);
        let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
        assert!(mail.contains(" SMTPUTF8"), "{mail}");
        assert!(mail.contains(" BODY=8BITMIME"), "{mail}");
        assert!(outcome.is_delivered(), "{outcome:?}");
    }
    let (seen, _, outcome) = deliver(ehlo, EIGHT_BIT_BODY);
    let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
    assert!(!mail.contains("SMTPUTF8"), "{mail}");
    assert!(outcome.is_delivered(), "{outcome:?}");
}

/// UTF-8 header fields do not go to a server without SMTPUTF8: no
/// transaction, a permanent failure (exit status 1).
#[test]
fn a_utf8_header_field_does_not_go_to_a_server_without_smtputf8() {
    let (seen, _, outcome) = deliver("250-mx.test\r\n250 8BITMIME\r\n", EIGHT_BIT);
    assert_refused_before_mail(&seen, &outcome, Refusal::SmtpUtf8);
}

const EIGHT_BIT_BODY: &[u8] = "Subject: hi\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes();

/// Delivers a two-line message for bob@example.org through `server`
/// (`localhost:PORT`: a server named by a domain, which the bounce may
/// name as `Remote-MTA`), then writes its bounce; returns the bounce,
/// `None` when none was written.
fn bounce_through(port: u16) -> (Option<String>, bool) {
    let server = format!("localhost:{port}");
    let message = b"Subject: hi\r\n\r\nhello\r\n";
    let report = deliver_example::deliver(
        &server,
        "alice@example.net",
        &["bob@example.org".to_owned()],
        message,
    )
    .expect("deliver");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bounce.eml");
    let path = path.to_str().expect("a UTF-8 path");
    let written =
        deliver_example::write_bounce(path, &server, "alice@example.net", &report, message)
            .expect("write_bounce");
    let bounce = written.then(|| std::fs::read_to_string(path).expect("the bounce"));
    (bounce, deliver_example::remote_answered(&report))
}

/// RFC 3464 §2.3.5: `Remote-MTA` "MUST NOT be included if no remote MTA
/// was involved". A connection that the far end closes before any
/// greeting reached no MTA: the delay notice for the recipient names
/// none (it named the server given on the command line).
#[test]
fn a_bounce_names_no_remote_mta_when_none_answered() {
    let (addr, peer) = spawn_peer(drop);
    let (bounce, answered) = bounce_through(addr.port());
    peer.join().expect("peer thread");
    assert!(!answered);
    let bounce = bounce.expect("a delay notice for the recipient");
    assert!(bounce.contains("Action: delayed"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: rfc822; bob@example.org"),
        "{bounce}"
    );
    assert!(!bounce.contains("Remote-MTA"), "{bounce}");
}

/// A server that greeted and refused the recipient is named: it gave
/// the reply the bounce quotes.
#[test]
fn a_bounce_names_the_remote_mta_that_refused() {
    let (addr, peer) = spawn_peer(|socket| {
        let mut out = socket.try_clone().expect("clone");
        let mut lines = BufReader::new(socket);
        out.write_all(b"220 mx.test ESMTP\r\n").expect("greeting");
        for _ in 0..20 {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let reply: &[u8] = match line.trim_end() {
                l if l.starts_with("RCPT") => b"550 5.1.1 no such user\r\n",
                "QUIT" => {
                    let _ = out.write_all(b"221 2.0.0 bye\r\n");
                    break;
                }
                _ => b"250 mx.test\r\n",
            };
            out.write_all(reply).expect("reply");
        }
    });
    let (bounce, answered) = bounce_through(addr.port());
    peer.join().expect("peer thread");
    assert!(answered);
    let bounce = bounce.expect("a bounce for the refused recipient");
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(bounce.contains("Remote-MTA: dns; localhost"), "{bounce}");
    assert!(
        bounce.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"),
        "{bounce}"
    );
}

/// A hostile or broken server's reply text goes to the terminal escaped:
/// `deliver` run as a process prints the server's `250` text with its
/// control characters (an escape sequence that clears the screen and
/// backspaces that would write over the line) written out as escapes,
/// never as the raw octets a terminal would obey.
#[cfg(unix)]
#[test]
fn control_characters_in_server_replies_are_printed_escaped() {
    let (status, output) = send_process::run_against_hostile_peer("deliver", |server| {
        [server, "alice@example.net", "bob@example.org"]
            .map(String::from)
            .to_vec()
    });
    let text = String::from_utf8_lossy(&output);
    assert_eq!(status.code(), Some(0), "{status}: {text:?}");
    assert!(text.contains("delivered: queued"), "{text:?}");
    serve_example::assert_no_raw_controls(&output);
    assert!(text.contains(r"\u{1b}[2J\u{8}\u{8}forged"), "{text:?}");
}
