//! Behaviours the fuzz targets once found broken, each kept by a test.

use smtp_proto::data::{DataDecoder, DataLimits};
use smtp_proto::reply::OwnedReply;
use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;
use smtp_proto::status::ReplyCode;

/// `usize::MAX` as the line limit means "no limit"; the block scanner must
/// not overflow computing with it.
#[test]
fn data_decoder_takes_an_unlimited_line_length() {
    let mut body = Vec::new();
    for i in 0..400 {
        body.extend_from_slice(format!("line {i} of a long enough body\r\n").as_bytes());
    }
    let mut wire = body.clone();
    wire.extend_from_slice(b".\r\n");
    let mut dec = DataDecoder::new(DataLimits::default().with_max_line_len(usize::MAX));
    let mut out = Vec::new();
    let (n, end) = dec.decode_into(&wire, &mut out);
    assert_eq!(n, wire.len());
    assert_eq!(out, body);
    assert!(end.expect("the terminator ends it").verdict().is_ok());
}

/// Feeds `input` whole; answers every decision with `decide`; returns the
/// replies written and whether the session ended with a remote error.
fn run_server(
    config: ServerConfig,
    input: &[u8],
    mut decide: impl FnMut(&ServerEvent<'_>) -> Option<OwnedReply>,
) -> (String, bool) {
    let mut server = ServerSession::new(config).unwrap();
    server.greet().unwrap();
    let mut pos = 0;
    let mut out = Vec::new();
    let mut failed = false;
    for _ in 0..1000 {
        let step = match server.handle_input(&input[pos..]) {
            Ok(step) => step,
            Err(_) => {
                failed = true;
                break;
            }
        };
        pos += step.consumed;
        match step.outcome {
            Outcome::Event(ev) if server.pending_decision().is_some() => match decide(&ev) {
                Some(r) => server.reject(r).unwrap(),
                None => server.accept().unwrap(),
            },
            Outcome::NeedInput | Outcome::Closed => break,
            _ => {}
        }
        server.poll_transmit(&mut out);
    }
    server.poll_transmit(&mut out);
    (String::from_utf8(out).unwrap(), failed)
}

/// RFC 2920 §3.1: a pipelining client sends RCPT and DATA before it knows
/// MAIL failed; the 503s it then gets are expected, and must not close the
/// session as "too many errors".
#[test]
fn pipelined_commands_after_a_refused_mail_are_not_errors() {
    let mut config = ServerConfig::new("mx.example.org");
    config.max_errors = 2;
    let mut input = b"EHLO client.example\r\n".to_vec();
    for _ in 0..3 {
        input.extend_from_slice(
            b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n\
              RCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n",
        );
    }
    input.extend_from_slice(b"QUIT\r\n");
    let refuse = |ev: &ServerEvent<'_>| {
        matches!(ev, ServerEvent::Mail { .. })
            .then(|| OwnedReply::new(ReplyCode::new(451).unwrap(), "4.7.1 try later").unwrap())
    };
    let (replies, failed) = run_server(config.clone(), &input, refuse);
    assert!(!failed, "{replies}");
    assert_eq!(replies.matches("503 ").count(), 12, "{replies}");
    assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");

    // Without PIPELINING advertised, the same commands are errors.
    config.pipelining = false;
    let (_, failed) = run_server(config, &input, refuse);
    assert!(failed);
}

/// The same for BDAT: chunks pipelined after every RCPT was refused, or
/// after MAIL was refused, get 554 or 503 (and their data is read and
/// dropped), but with PIPELINING they do not count toward the error limit.
/// A refused chunk ends the transaction (RFC 3030 §2), so the chunk after
/// a 554 gets 503.
#[test]
fn pipelined_chunks_after_refused_recipients_are_not_errors() {
    let mut config = ServerConfig::new("mx.example.org");
    config.max_errors = 2;
    let mut input = b"EHLO client.example\r\n".to_vec();
    for _ in 0..4 {
        input.extend_from_slice(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
        input.extend_from_slice(b"BDAT 3\r\nabcBDAT 2 LAST\r\ndeRSET\r\n");
    }
    input.extend_from_slice(b"QUIT\r\n");
    // Every recipient is refused: the first chunk of each message gets
    // 554, which ends the transaction, and the second one 503.
    let refuse_rcpt = |ev: &ServerEvent<'_>| {
        matches!(ev, ServerEvent::Rcpt { .. })
            .then(|| OwnedReply::new(ReplyCode::new(550).unwrap(), "5.1.1 no such user").unwrap())
    };
    let (replies, failed) = run_server(config.clone(), &input, refuse_rcpt);
    assert!(!failed, "{replies}");
    assert_eq!(
        replies
            .matches("554 5.5.1 No valid recipients\r\n503 5.5.1 Bad sequence of commands\r\n")
            .count(),
        4,
        "{replies}"
    );
    assert_eq!(replies.matches("554 ").count(), 4, "{replies}");
    assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");
    // MAIL refused: both chunks get 503.
    let refuse_mail = |ev: &ServerEvent<'_>| {
        matches!(ev, ServerEvent::Mail { .. })
            .then(|| OwnedReply::new(ReplyCode::new(451).unwrap(), "4.7.1 try later").unwrap())
    };
    let (replies, failed) = run_server(config.clone(), &input, refuse_mail);
    assert!(!failed, "{replies}");
    assert_eq!(replies.matches("503 ").count(), 12, "{replies}");
    assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");

    // Without PIPELINING advertised, the same chunks are errors.
    config.pipelining = false;
    let (replies, failed) = run_server(config, &input, refuse_rcpt);
    assert!(failed, "{replies}");
}
