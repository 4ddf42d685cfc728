//! What the `send` examples declare for the message they are given: the
//! MAIL parameters its content calls for.

// The examples use the rest of it.
#[allow(dead_code)]
#[path = "../examples/support/send_app.rs"]
mod send_app;
#[path = "../examples/support/send_tokio.rs"]
mod send_tokio;

#[path = "support/send_run.rs"]
mod send_run;
mod support;

use send_run::{ehlo_server, run_send, send_args};
use support::{join, pair};

use send_app::{exit, has_8bit_header, outgoing, Exit};

/// Sends `message` to `bob@example.org` through [`ehlo_server`]: the commands
/// the server read, and the exit.
async fn send(ehlo: &'static str, message: &[u8]) -> (Vec<String>, Exit) {
    let (c, s) = pair().await;
    let server = tokio::spawn(ehlo_server(s, ehlo));
    let args = send_args(
        &["bob@example.org"],
        &["--starttls", "off", "--chunking", "off"],
    );
    let (end, sender) = run_send(c, &args, message).await;
    let seen = join(server).await;
    (seen, exit(sender.delivered, end))
}

const UTF8_SUBJECT: &str = "Subject: Gr\u{fc}\u{df}e\r\n\r\nhello\r\n";
const UTF8_BODY: &str = "Subject: greetings\r\n\r\nGr\u{fc}\u{df}e\r\n";

#[test]
fn only_8bit_octets_before_the_first_empty_line_are_in_the_header() {
    assert!(has_8bit_header(UTF8_SUBJECT.as_bytes()));
    assert!(!has_8bit_header(UTF8_BODY.as_bytes()));
    // No empty line: all of it is the header section.
    assert!(has_8bit_header("Subject: \u{e9}\r\n".as_bytes()));
    // An empty first line: no header section at all.
    assert!(!has_8bit_header("\r\n\u{e9}\r\n".as_bytes()));
    assert!(!has_8bit_header(b""));
    // Line ends are made CRLF before the check: a LF-only file too.
    let args = send_args(&["bob@example.org"], &[]);
    let lf = "Subject: Gr\u{fc}\u{df}e\n\nhello\n";
    let (_, envelope) = outgoing(&args, lf.as_bytes()).expect("outgoing");
    assert!(envelope.smtputf8);
    let (_, envelope) = outgoing(&args, UTF8_BODY.as_bytes()).expect("outgoing");
    assert!(!envelope.smtputf8);
}

/// RFC 6531 §3.4: when the message requires SMTPUTF8 (here a UTF-8
/// `Subject:`, RFC 6532) the client "MUST supply the SMTPUTF8 parameter";
/// 8-bit octets in the body alone need only `BODY=8BITMIME`.
#[tokio::test]
async fn a_utf8_header_field_is_sent_with_smtputf8() {
    let ehlo = "250-mx.example.net\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
    let (seen, exit) = send(ehlo, UTF8_SUBJECT.as_bytes()).await;
    let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
    assert!(mail.contains(" SMTPUTF8"), "{mail}");
    assert!(mail.contains(" BODY=8BITMIME"), "{mail}");
    assert_eq!(exit.status, 0, "{exit:?}");
    let (seen, exit) = send(ehlo, UTF8_BODY.as_bytes()).await;
    let mail = seen.iter().find(|c| c.starts_with("MAIL ")).expect("MAIL");
    assert!(!mail.contains("SMTPUTF8"), "{mail}");
    assert!(mail.contains(" BODY=8BITMIME"), "{mail}");
    assert_eq!(exit.status, 0, "{exit:?}");
}

/// A server without SMTPUTF8 is not sent UTF-8 header fields (RFC 6531
/// §3.2 leaves the client to bounce or downgrade, never to send them as
/// they are): no transaction, the recipient `NOT SENT`, exit 1.
#[tokio::test]
async fn a_utf8_header_field_does_not_go_to_a_server_without_smtputf8() {
    let (seen, exit) = send(
        "250-mx.example.net\r\n250 8BITMIME\r\n",
        UTF8_SUBJECT.as_bytes(),
    )
    .await;
    assert_eq!(seen, ["EHLO localhost", "QUIT"]);
    assert_eq!(
        exit,
        Exit {
            status: 1,
            message: None
        }
    );
}
