//! The inspector example's `commands`, `replies` and `ehlo` modes, run
//! through the same code the example binary runs.

#[allow(dead_code)]
#[path = "../examples/inspect.rs"]
mod inspect;

fn run(mode: &str, input: &[u8]) -> String {
    let mut out = Vec::new();
    inspect::run(mode, input, &mut out).expect("known mode");
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn replies_mode_prints_one_line_per_reply_and_resynchronises() {
    let input = b"220 mail.example.org ESMTP Postfix\r\n\
250-mail.example.org\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n\
099 broken\r\n\
250 2.1.0 Ok\r\n\
250-a\r\n251 b\r\n\
250\r\n\
421-4.7.0 Try again later,\r\n421 4.7.0 closing connection\r\n\
354";
    assert_eq!(
        run("replies", input),
        "OK 220 - 1 mail.example.org ESMTP Postfix\n\
OK 250 - 3 mail.example.org\n\
ERR invalid reply code\n\
OK 250 2.1.0 1 Ok\n\
ERR reply code 251 in a multi-line 250 reply\n\
OK 250 - 1\n\
OK 421 4.7.0 2 Try again later,\n\
ERR incomplete reply\n"
    );
}

#[test]
fn replies_mode_reports_long_lines_once() {
    let mut input = b"250 ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3000));
    input.extend_from_slice(b"\r\n221 2.0.0 Bye\r\n");
    assert_eq!(
        run("replies", &input),
        "ERR reply line too long\nOK 221 2.0.0 1 Bye\n"
    );
}

#[test]
fn ehlo_mode_prints_domain_and_capabilities() {
    let input = b"250-mail.example.com Hello client.example.net [192.0.2.1]\r\n\
250-PIPELINING\r\n250-SIZE 52428800\r\n250-ETRN\r\n250-STARTTLS\r\n\
250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n\
250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
    assert_eq!(
        run("ehlo", input),
        "OK mail.example.com\n\
CAP PIPELINING\n\
CAP SIZE 52428800\n\
CAP ETRN\n\
CAP STARTTLS\n\
CAP AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\n\
CAP ENHANCEDSTATUSCODES\n\
CAP 8BITMIME\n\
CAP DSN\n\
CAP SMTPUTF8\n\
CAP CHUNKING\n"
    );
}

#[test]
fn ehlo_mode_keeps_unknown_capabilities_and_reports_errors() {
    assert_eq!(
        run(
            "ehlo",
            b"250-mx.example\r\n250-x-custom  a   b\r\n250-auth=login plain\r\n250 \r\n"
        ),
        "OK mx.example\nCAP x-custom a b\nCAP AUTH login plain\n"
    );
    assert_eq!(
        run("ehlo", b"502 5.5.1 Command not implemented\r\n"),
        "ERR EHLO refused with 502\n"
    );
    assert_eq!(run("ehlo", b"250-mx\r\n"), "ERR incomplete reply\n");
    assert_eq!(run("ehlo", b"250 mx\n"), "ERR bare LF line ending\n");
}

#[test]
fn unknown_mode_is_an_error() {
    let mut out = Vec::new();
    assert!(inspect::run("nonsense", b"", &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn commands_mode_prints_one_line_per_input_line() {
    let mut input = b"ehlo client.example\r\nMAIL FROM:<>>>>\r\nRCPT TO:<postmaster>\r\n\
MAIL FROM:<a@b.example> size=10 SIZE=20\r\nXCLIENT ADDR=192.0.2.1\r\nNOOP\nQUIT\r\n"
        .to_vec();
    // A bare LF does not end a line: `NOOP\nQUIT` is one line, one error.
    // An over-long line whose tail looks like a command, after a bare LF
    // too: one error, no RCPT.
    input.extend(std::iter::repeat_n(b'A', 2000));
    input.push(b'\n');
    input.extend_from_slice(b"RCPT TO:<victim@example.com>\r\nQUIT\r\nNOOP");
    assert_eq!(
        run("commands", &input),
        "OK EHLO client.example\n\
ERR 501 5.1.7 invalid sender address: unexpected characters after the path\n\
OK RCPT TO:<Postmaster>\n\
ERR 501 5.5.4 duplicate SIZE parameter\n\
OK XCLIENT ADDR=192.0.2.1\n\
ERR 500 5.5.2 bare CR or LF in command line\n\
ERR 500 5.5.2 line too long\n\
OK QUIT\n\
ERR 500 5.5.2 incomplete line at end of input\n"
    );
}
