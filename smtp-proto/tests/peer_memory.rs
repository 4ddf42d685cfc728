//! What a peer can make the machines hold, for the attacks the other
//! memory tests leave out: replies the server machine queues for a client
//! that pipelines and does not read (BDAT chunks, refused chunks, LMTP's
//! one reply per recipient), and an endless multi-line reply the client
//! machine reads in small pieces.

use smtp_proto::client::{Client, ClientConfig, ClientError, Outcome as ClientOutcome};
use smtp_proto::command::Domain;
use smtp_proto::reply::{DecoderConfig, ReplyErrorKind};
use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{Error, ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;

/// The pending output above which the server machine asks its caller to
/// send (`Outcome::Transmit`) before it takes another command.
const HIGH_WATER: usize = 16 * 1024;

/// What [`drive`] saw.
#[derive(Debug, Default)]
struct Seen {
    /// The most output the machine had queued at any one poll.
    max_pending: usize,
    /// Everything it sent.
    output: Vec<u8>,
    /// The most unconsumed input left in the caller's buffer.
    max_retained: usize,
    closed: bool,
    /// The protocol error the session closed on, if any.
    remote_error: Option<String>,
}

/// Feeds `input` to `s` in `piece`-octet pieces, as a caller that sends
/// only when the machine asks (`Transmit`, `NeedInput`), and accepts every
/// decision. Bounded: each call consumes input, gives an event or asks for
/// more, and the input is finite.
fn drive(s: &mut ServerSession, input: &[u8], piece: usize) -> Seen {
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    let poll = |s: &mut ServerSession, seen: &mut Seen| {
        let before = seen.output.len();
        s.poll_transmit(&mut seen.output);
        seen.max_pending = seen.max_pending.max(seen.output.len() - before);
    };
    'pieces: for p in input.chunks(piece) {
        buf.extend_from_slice(p);
        loop {
            let step = match s.handle_input(&buf) {
                Ok(step) => step,
                Err(Error::Remote(e)) => {
                    seen.remote_error = Some(format!("{e:?}"));
                    break 'pieces;
                }
                Err(e) => panic!("{e}"),
            };
            let consumed = step.consumed;
            let (decide, more, closed) = match step.outcome {
                Outcome::Event(ServerEvent::MessageChunk(_)) => (false, false, false),
                Outcome::Event(_) => (true, false, false),
                Outcome::Transmit => (false, false, false),
                Outcome::NeedInput => (false, true, false),
                Outcome::Closed => (false, false, true),
                other => panic!("{other:?}"),
            };
            buf.drain(..consumed);
            if closed {
                break 'pieces;
            }
            if decide && s.pending_decision().is_some() {
                s.accept().unwrap();
            }
            if !decide {
                poll(s, &mut seen);
            }
            if more {
                break;
            }
        }
        seen.max_retained = seen.max_retained.max(buf.len());
    }
    poll(s, &mut seen);
    seen.closed = s.is_closed();
    seen
}

fn greeted(config: ServerConfig) -> ServerSession {
    let mut s = ServerSession::new(config).unwrap();
    s.greet().unwrap();
    s
}

fn count(output: &[u8], reply: &str) -> usize {
    String::from_utf8_lossy(output).matches(reply).count()
}

/// A client that pipelines 200 000 empty BDAT chunks (each answered by
/// the machine itself, with no decision to wait for) and reads nothing
/// until asked: the machine never holds more than the high-water mark and
/// one reply, and answers every chunk.
#[test]
fn pipelined_bdat_chunk_replies_are_held_to_the_high_water_mark() {
    let mut input =
        b"EHLO a.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n".to_vec();
    input.extend(b"BDAT 0\r\n".repeat(200_000));
    let seen = drive(
        &mut greeted(ServerConfig::new("mx.example")),
        &input,
        1 << 20,
    );
    assert!(
        seen.max_pending < HIGH_WATER + 64,
        "pending output grew to {}",
        seen.max_pending
    );
    assert_eq!(
        count(&seen.output, "250 2.0.0 0 octets received\r\n"),
        200_000
    );
    assert!(seen.max_retained < 1024);
}

/// BDAT chunks out of sequence (no MAIL) are refused with 503 but, a
/// pipelining client sending them before it learns that its MAIL failed,
/// not counted as errors: 100 000 of them never close the session, and
/// their refusals are held to the high-water mark too.
#[test]
fn refused_bdat_chunks_not_counted_as_errors_are_held_to_the_high_water_mark() {
    let mut input = b"EHLO a.example\r\n".to_vec();
    input.extend(b"BDAT 4\r\nabcd".repeat(100_000));
    let seen = drive(
        &mut greeted(ServerConfig::new("mx.example")),
        &input,
        1 << 20,
    );
    assert!(!seen.closed);
    assert!(
        seen.max_pending < HIGH_WATER + 64,
        "pending output grew to {}",
        seen.max_pending
    );
    assert_eq!(count(&seen.output, "503 5.5.1 "), 100_000);
}

/// LMTP answers a message once per recipient (RFC 2033 §4.2): 200
/// pipelined transactions of `max_recipients` (100) recipients whose
/// bodies the machine refuses itself (bare LF) queue at most the
/// high-water mark and one message's replies.
#[test]
fn lmtp_replies_per_recipient_are_held_to_the_high_water_mark_and_one_message() {
    let mut config = ServerConfig::new("mx.example");
    config.lmtp = true;
    let recipients = config.max_recipients;
    let mut input = b"LHLO a.example\r\n".to_vec();
    for _ in 0..200 {
        input.extend(b"MAIL FROM:<a@b.example>\r\n");
        for i in 0..recipients {
            input.extend(format!("RCPT TO:<c{i}@d.example>\r\n").as_bytes());
        }
        input.extend(b"DATA\r\nbare\nline\r\n.\r\n");
    }
    let seen = drive(&mut greeted(config), &input, 1 << 20);
    let refusal = "554 5.6.0 message contains bare CR or LF\r\n";
    assert_eq!(count(&seen.output, refusal), 200 * recipients);
    let bound = HIGH_WATER + recipients * refusal.len() + 1024;
    assert!(
        seen.max_pending < bound,
        "pending output grew to {} (bound {bound})",
        seen.max_pending
    );
}

/// A client that starts AUTH LOGIN and cancels it with `*`, again and
/// again, pipelined: each cancel is an error (`501`), and the one past
/// `max_errors` gets `421` and closes the session, having queued a few
/// replies; the rest of the 100 000 rounds is never read.
#[test]
fn endless_cancelled_auth_rounds_end_at_the_error_limit() {
    let mut config = ServerConfig::new("mx.example");
    config.auth_mechanisms = vec![SaslMechanism::Login];
    config.auth_requires_tls = false;
    let max_errors = config.max_errors;
    let mut input = b"EHLO a.example\r\n".to_vec();
    input.extend(b"AUTH LOGIN\r\n*\r\n".repeat(100_000));
    let seen = drive(&mut greeted(config), &input, 1 << 20);
    assert!(seen.closed);
    assert_eq!(seen.remote_error.as_deref(), Some("TooManyErrors"));
    assert_eq!(
        count(&seen.output, "501 5.0.0 Authentication cancelled\r\n"),
        max_errors
    );
    assert!(seen
        .output
        .ends_with(b"421 4.7.0 mx.example Too many errors, closing connection\r\n"));
    assert!(
        seen.output.len() < 4096,
        "{} octets sent",
        seen.output.len()
    );
}

/// A server that answers EHLO with an endless run of short continuation
/// lines, sent 7 octets at a time: the client machine keeps no more than
/// one reply's worth of them and fails with `ReplyTooLong` once the reply
/// passes `max_reply_len`, having read little more than that.
#[test]
fn an_endless_multiline_reply_in_small_pieces_is_refused_at_the_reply_limit() {
    let limits = DecoderConfig::default();
    let config = ClientConfig::new(Domain::new("client.example").unwrap());
    let mut client = Client::new(config);
    let mut stream = b"220 mx.example ESMTP\r\n250-mx.example\r\n".to_vec();
    let line = b"250-X-UNKNOWN-CAPABILITY with some words\r\n";
    while stream.len() < 4 * limits.max_reply_len {
        stream.extend_from_slice(line);
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut max_retained = 0;
    let mut sink = Vec::new();
    let mut pieces = stream.chunks(7);
    let error = loop {
        match client.handle_input(&buf) {
            Ok(step) => {
                let (consumed, more) = (
                    step.consumed,
                    matches!(step.outcome, ClientOutcome::NeedInput),
                );
                buf.drain(..consumed);
                client.poll_transmit(&mut sink);
                if more {
                    let piece = pieces.next().expect("the reply is refused before it ends");
                    buf.extend_from_slice(piece);
                    fed += piece.len();
                }
            }
            Err(e) => break e,
        }
        max_retained = max_retained.max(buf.len());
    };
    let ClientError::BadReply(e) = error else {
        panic!("{error:?}");
    };
    assert_eq!(e.kind(), ReplyErrorKind::ReplyTooLong);
    assert!(client.is_closed());
    let bound = limits.max_reply_len + limits.max_line_len;
    assert!(max_retained <= bound, "held {max_retained} > {bound}");
    assert!(fed <= bound + 64, "read {fed} octets");
}
