//! Reply decoding: known answers, real-server transcripts, limits, error
//! recovery and split invariance.

use smtp_proto::reply::{
    Decoded, DecoderConfig, LineEndings, Reply, ReplyDecoder, ReplyError, ReplyErrorKind,
};
use smtp_proto::status::{
    EnhancedStatusCode, ReplyAction, ReplyClass, ReplyCode, StatusClass, StatusSubject,
};

/// What a decoded stream produced, in owned form for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Reply {
        code: u16,
        /// Each line: enhanced code as text (or "-") and text.
        lines: Vec<(String, String)>,
    },
    Error(ReplyErrorKind),
}

fn event_of(reply: &Reply<'_>) -> Event {
    Event::Reply {
        code: reply.code().get(),
        lines: reply
            .lines()
            .map(|l| {
                (
                    l.enhanced_code()
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    String::from_utf8_lossy(l.text()).into_owned(),
                )
            })
            .collect(),
    }
}

/// Feeds `input` to a decoder in the given pieces, dropping consumed bytes
/// as a caller would, and returns the events and the bytes left over.
fn decode_pieces(config: DecoderConfig, pieces: &[&[u8]]) -> (Vec<Event>, usize) {
    let mut decoder = ReplyDecoder::with_config(config);
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Reply { reply, consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    events.push(event_of(&reply));
                    buf.drain(..consumed);
                }
                Ok(Decoded::Skipped { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    assert!(e.consumed() > 0 && e.consumed() <= buf.len());
                    events.push(Event::Error(e.kind()));
                    buf.drain(..e.consumed());
                }
            }
        }
    }
    (events, buf.len())
}

fn decode_all(input: &[u8]) -> Vec<Event> {
    decode_pieces(DecoderConfig::default(), &[input]).0
}

fn one(input: &[u8]) -> Reply<'_> {
    Reply::parse(input).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)))
}

fn err(input: &[u8]) -> ReplyError {
    Reply::parse(input).expect_err("should be rejected")
}

fn esc(s: &str) -> EnhancedStatusCode {
    s.parse().expect("enhanced code")
}

// ---------------------------------------------------------------- Reply-line

#[test]
fn reply_line_single_known_answers() {
    // (input, code, enhanced, text)
    type Case = (&'static [u8], u16, Option<&'static str>, &'static [u8]);
    let table: &[Case] = &[
        (b"250 OK\r\n", 250, None, b"OK"),
        (b"250\r\n", 250, None, b""),
        (b"250 \r\n", 250, None, b""),
        (
            b"220 mx.example.org ESMTP\r\n",
            220,
            None,
            b"mx.example.org ESMTP",
        ),
        (b"250 2.1.0 Ok\r\n", 250, Some("2.1.0"), b"Ok"),
        (
            b"550 5.7.1 Relaying denied\r\n",
            550,
            Some("5.7.1"),
            b"Relaying denied",
        ),
        (
            b"452 4.5.3 Too many recipients\r\n",
            452,
            Some("4.5.3"),
            b"Too many recipients",
        ),
        (b"250 2.0.0\r\n", 250, Some("2.0.0"), b""),
        (
            b"550 5.1.10 RESOLVER.ADR.RecipientNotFound\r\n",
            550,
            Some("5.1.10"),
            b"RESOLVER.ADR.RecipientNotFound",
        ),
        // The class must match the reply's first digit (RFC 2034 §4).
        (b"250 5.0.0 odd\r\n", 250, None, b"5.0.0 odd"),
        // 3yz replies carry no enhanced code; AUTH challenges are base64.
        (b"334 VXNlcm5hbWU6\r\n", 334, None, b"VXNlcm5hbWU6"),
        (b"354 2.0.0 go ahead\r\n", 354, None, b"2.0.0 go ahead"),
        // Not an enhanced code: no separator after it.
        (b"250 2.0.0.1 text\r\n", 250, None, b"2.0.0.1 text"),
        (b"250 2.0.0x\r\n", 250, None, b"2.0.0x"),
        (b"250 Tab\there\r\n", 250, None, b"Tab\there"),
        (
            "250 UTF-8 text: caf\u{e9}\r\n".as_bytes(),
            250,
            None,
            "UTF-8 text: caf\u{e9}".as_bytes(),
        ),
        (b"599 highest\r\n", 599, None, b"highest"),
        (b"200 lowest\r\n", 200, None, b"lowest"),
    ];
    for (input, code, enhanced, text) in table {
        let reply = one(input);
        assert_eq!(reply.code().get(), *code, "{input:?}");
        assert_eq!(reply.enhanced_code(), enhanced.map(esc), "{input:?}");
        assert_eq!(reply.text(), *text, "{input:?}");
        assert_eq!(reply.line_count(), 1);
        assert!(!reply.is_multiline());
        assert_eq!(reply.as_bytes(), *input);
    }
}

#[test]
fn reply_line_multi_known_answers() {
    let input = b"250-first line\r\n250-2.0.0 second\r\n250-\r\n250 last\r\n";
    let reply = one(input);
    assert_eq!(reply.code(), ReplyCode::OK);
    assert_eq!(reply.line_count(), 4);
    assert!(reply.is_multiline());
    let lines: Vec<_> = reply.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0].text(), b"first line");
    assert!(!lines[0].is_last());
    assert_eq!(lines[1].enhanced_code(), Some(esc("2.0.0")));
    assert_eq!(lines[1].text(), b"second");
    assert_eq!(lines[1].raw_text(), b"2.0.0 second");
    assert_eq!(lines[2].text(), b"");
    assert_eq!(lines[3].text(), b"last");
    assert!(lines[3].is_last());
    assert!(lines.iter().all(|l| l.code() == ReplyCode::OK));
}

#[test]
fn reply_codes_outside_200_to_599_are_rejected() {
    for input in [
        &b"099 nope\r\n"[..],
        b"100 nope\r\n",
        b"199 nope\r\n",
        b"600 nope\r\n",
        b"999 nope\r\n",
        b"2x0 nope\r\n",
        b"25 nope\r\n",
        b"abc\r\n",
        b"\r\n",
        b" 250 ok\r\n",
    ] {
        assert_eq!(err(input).kind(), ReplyErrorKind::InvalidCode, "{input:?}");
    }
}

#[test]
fn reply_code_followed_by_other_than_sp_dash_or_end_is_rejected() {
    for input in [
        &b"2500 x\r\n"[..],
        b"250x\r\n",
        b"250_ok\r\n",
        b"250\tok\r\n",
    ] {
        assert_eq!(
            err(input).kind(),
            ReplyErrorKind::InvalidSeparator,
            "{input:?}"
        );
    }
}

#[test]
fn multiline_reply_with_different_codes_is_an_error() {
    let e = err(b"250-first\r\n251 second\r\n");
    assert_eq!(
        e.kind(),
        ReplyErrorKind::CodeMismatch {
            expected: ReplyCode::OK,
            found: ReplyCode::USER_NOT_LOCAL_WILL_FORWARD,
        }
    );
    assert_eq!(e.consumed(), 23);
}

#[test]
fn bare_lf_is_an_error_by_default_and_allowed_by_policy() {
    assert_eq!(err(b"250 ok\n").kind(), ReplyErrorKind::BareLf);
    assert_eq!(err(b"250-a\n250 b\r\n").kind(), ReplyErrorKind::BareLf);
    let lenient = DecoderConfig::default().with_line_endings(LineEndings::AllowBareLf);
    let (events, left) = decode_pieces(lenient, &[b"250-a\n250 b\r\n220 c\n"]);
    assert_eq!(left, 0);
    assert_eq!(
        events,
        vec![
            Event::Reply {
                code: 250,
                lines: vec![("-".into(), "a".into()), ("-".into(), "b".into())],
            },
            Event::Reply {
                code: 220,
                lines: vec![("-".into(), "c".into())],
            },
        ]
    );
}

#[test]
fn bare_cr_is_an_error_even_when_bare_lf_is_allowed() {
    assert_eq!(err(b"250 o\rk\r\n").kind(), ReplyErrorKind::BareCr);
    let lenient = DecoderConfig::default().with_line_endings(LineEndings::AllowBareLf);
    let (events, _) = decode_pieces(lenient, &[b"250 o\rk\n"]);
    assert_eq!(events, vec![Event::Error(ReplyErrorKind::BareCr)]);
}

#[test]
fn nul_in_text_is_an_error() {
    assert_eq!(err(b"250 a\0b\r\n").kind(), ReplyErrorKind::Nul);
    assert_eq!(err(b"250-a\0\r\n250 b\r\n").kind(), ReplyErrorKind::Nul);
}

#[test]
fn reply_parse_wants_exactly_one_reply() {
    assert_eq!(
        err(b"250 a\r\n250 b\r\n").kind(),
        ReplyErrorKind::TrailingData
    );
    assert_eq!(err(b"250-a\r\n").kind(), ReplyErrorKind::Incomplete);
    assert_eq!(err(b"250 a").kind(), ReplyErrorKind::Incomplete);
}

// ------------------------------------------------------------------- limits

/// The default line limit is 2048 octets, CRLF included: more than the
/// 512 of RFC 5321 §4.5.3.1.5, which servers pass (§4.5.3.1 asks
/// receivers to avoid such limits where they can).
#[test]
fn line_of_2048_octets_is_accepted_and_2049_is_not() {
    let line = |len: usize| {
        let mut l = b"250 ".to_vec();
        l.resize(len - 2, b'x');
        l.extend_from_slice(b"\r\n");
        l
    };
    assert_eq!(one(&line(513)).text().len(), 507);
    let ok = line(2048);
    assert_eq!(one(&ok).text().len(), 2042);
    assert_eq!(err(&line(2049)).kind(), ReplyErrorKind::LineTooLong);
}

#[test]
fn line_limit_is_configurable() {
    let config = DecoderConfig::default().with_max_line_len(4000);
    let mut input = b"250 ".to_vec();
    input.resize(3000, b'x');
    input.extend_from_slice(b"\r\n");
    let (events, left) = decode_pieces(config, &[&input]);
    assert_eq!(left, 0);
    assert!(matches!(&events[..], [Event::Reply { code: 250, .. }]));
    let (events, _) = decode_pieces(DecoderConfig::default(), &[&input]);
    assert_eq!(events, vec![Event::Error(ReplyErrorKind::LineTooLong)]);
    // The strict RFC 5321 limit, for callers that want it.
    let strict = DecoderConfig::default().with_max_line_len(512);
    let mut input = b"250 ".to_vec();
    input.resize(511, b'x');
    input.extend_from_slice(b"\r\n");
    let (events, _) = decode_pieces(strict, &[&input]);
    assert_eq!(events, vec![Event::Error(ReplyErrorKind::LineTooLong)]);
    let (events, _) = decode_pieces(DecoderConfig::default(), &[&input]);
    assert!(matches!(&events[..], [Event::Reply { code: 250, .. }]));
}

#[test]
fn over_long_line_is_dropped_then_decoding_resumes() {
    let mut input = b"250-".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(
        b"\r\n250-more of the bad reply\r\n250 tail of the bad reply\r\n221 bye\r\n",
    );
    let events = decode_all(&input);
    assert_eq!(
        events,
        vec![
            // The whole reply is the error: its other lines are dropped,
            // not handed out as a reply of their own.
            Event::Error(ReplyErrorKind::LineTooLong),
            Event::Reply {
                code: 221,
                lines: vec![("-".into(), "bye".into())],
            },
        ]
    );
    // An over-long last line: the next line starts the next reply.
    let mut input = b"250 ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"\r\n354 go ahead\r\n");
    assert_eq!(
        decode_all(&input),
        vec![
            Event::Error(ReplyErrorKind::LineTooLong),
            Event::Reply {
                code: 354,
                lines: vec![("-".into(), "go ahead".into())],
            },
        ]
    );
    // An over-long line in the middle of a reply.
    let mut input = b"250-first\r\n250-".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"\r\n250 last\r\n221 bye\r\n");
    assert_eq!(
        decode_all(&input),
        vec![
            Event::Error(ReplyErrorKind::LineTooLong),
            Event::Reply {
                code: 221,
                lines: vec![("-".into(), "bye".into())],
            },
        ]
    );
}

#[test]
fn endless_line_costs_bounded_memory() {
    // A peer sends megabytes without a line feed: the decoder reports the
    // error once and then lets the caller drop every piece.
    let mut decoder = ReplyDecoder::new();
    let chunk = vec![b'7'; 64 * 1024];
    let mut errors = 0;
    for _ in 0..64 {
        let mut buf = &chunk[..];
        while !buf.is_empty() {
            match decoder.decode(buf) {
                Ok(Decoded::Skipped { consumed }) => buf = &buf[consumed..],
                Err(e) => {
                    errors += 1;
                    buf = &buf[e.consumed()..];
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(errors, 1);
    let Ok(Decoded::Skipped { consumed: 2 }) = decoder.decode(b"\r\n220 ok\r\n") else {
        panic!("the end of the long line is skipped")
    };
    let Ok(Decoded::Reply { reply, .. }) = decoder.decode(b"220 ok\r\n") else {
        panic!("decoding resumes")
    };
    assert_eq!(reply.code(), ReplyCode::SERVICE_READY);
}

#[test]
fn over_long_reply_is_an_error_and_its_remaining_lines_are_skipped() {
    let config = DecoderConfig::default().with_max_reply_len(100);
    let mut input = Vec::new();
    for i in 0..20 {
        input.extend_from_slice(format!("250-line {i}\r\n").as_bytes());
    }
    input.extend_from_slice(b"250 end\r\n221 bye\r\n");
    let (events, left) = decode_pieces(config, &[&input]);
    assert_eq!(left, 0);
    assert_eq!(
        events,
        vec![
            Event::Error(ReplyErrorKind::ReplyTooLong),
            Event::Reply {
                code: 221,
                lines: vec![("-".into(), "bye".into())],
            },
        ]
    );
}

/// One bad reply is one error, whatever else is wrong in its tail: a
/// second over-long line of a reply already refused (for an over-long
/// line, or for being too long) is dropped with the rest of it rather
/// than reported again, which would count as the answer to the next
/// pipelined command.
#[test]
fn a_refused_reply_is_one_error_however_many_long_lines_it_has() {
    let long = "x".repeat(3000);
    let bye = Event::Reply {
        code: 221,
        lines: vec![("-".into(), "bye".into())],
    };
    for input in [
        format!("250-{long}\r\n250-{long}\r\n250 end\r\n221 bye\r\n"),
        format!("250-{long}\r\n250-a\r\n250-{long}\r\n250 end\r\n221 bye\r\n"),
        format!("250-{long}\r\n250 {long}\r\n221 bye\r\n"),
    ] {
        for pieces in [
            vec![input.as_bytes()],
            input.as_bytes().chunks(700).collect::<Vec<_>>(),
        ] {
            let (events, left) = decode_pieces(DecoderConfig::default(), &pieces);
            assert_eq!(left, 0);
            assert_eq!(
                events,
                vec![Event::Error(ReplyErrorKind::LineTooLong), bye.clone()]
            );
        }
    }
    let config = DecoderConfig::default().with_max_reply_len(100);
    let mut input = Vec::new();
    for i in 0..20 {
        input.extend_from_slice(format!("250-line {i}\r\n").as_bytes());
    }
    input.extend_from_slice(format!("250-{long}\r\n250 end\r\n221 bye\r\n").as_bytes());
    let (events, left) = decode_pieces(config, &[&input]);
    assert_eq!(left, 0);
    assert_eq!(
        events,
        vec![Event::Error(ReplyErrorKind::ReplyTooLong), bye]
    );
}

/// A line refused for a bare CR, a bare LF, a NUL or a code other than its
/// reply's, that says more lines of its reply follow (`NNN-`), has them
/// dropped too, as an over-long line does: the error stands for the whole
/// reply, and its tail is not handed out as a reply of its own (which a
/// pipelining client would take as the answer to its next command).
#[test]
fn the_tail_of_a_reply_refused_for_a_bad_line_is_not_a_reply() {
    let bye = Event::Reply {
        code: 221,
        lines: vec![("-".into(), "bye".into())],
    };
    let strict = DecoderConfig::default();
    let lenient = DecoderConfig::default().with_line_endings(LineEndings::AllowBareLf);
    let mismatch = ReplyErrorKind::CodeMismatch {
        expected: ReplyCode::OK,
        found: ReplyCode::USER_NOT_LOCAL_WILL_FORWARD,
    };
    let cases: [(&[u8], DecoderConfig, ReplyErrorKind); 7] = [
        (
            b"250-a\rx\r\n250-b\r\n250 end\r\n",
            strict,
            ReplyErrorKind::BareCr,
        ),
        (
            b"250-a\r\n250-b\rx\r\n250 end\r\n",
            strict,
            ReplyErrorKind::BareCr,
        ),
        (
            b"250-a\rx\n250-b\n250 end\n",
            lenient,
            ReplyErrorKind::BareCr,
        ),
        (
            b"250-a\n250-b\r\n250 end\r\n",
            strict,
            ReplyErrorKind::BareLf,
        ),
        (
            b"250-a\r\n250-b\n250 end\r\n",
            strict,
            ReplyErrorKind::BareLf,
        ),
        (
            b"250-a\0\r\n250-b\r\n250 end\r\n",
            strict,
            ReplyErrorKind::Nul,
        ),
        (b"250-a\r\n251-b\r\n251 end\r\n", strict, mismatch),
    ];
    for (reply, config, kind) in cases {
        let mut input = reply.to_vec();
        input.extend_from_slice(b"221 bye\r\n");
        for step in [input.len(), 1] {
            let pieces: Vec<&[u8]> = input.chunks(step).collect();
            let (events, left) = decode_pieces(config, &pieces);
            assert_eq!(left, 0);
            assert_eq!(
                events,
                vec![Event::Error(kind), bye.clone()],
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }
    // A bad last line ends its reply: the next line is the next reply.
    let (events, _) = decode_pieces(strict, &[b"250-a\r\n250 b\rx\r\n250 next\r\n"]);
    assert_eq!(
        events,
        vec![
            Event::Error(ReplyErrorKind::BareCr),
            Event::Reply {
                code: 250,
                lines: vec![("-".into(), "next".into())],
            },
        ]
    );
}

#[test]
fn default_limits_take_more_than_the_rfc_5321_line() {
    let config = DecoderConfig::default();
    assert_eq!(config.max_line_len, 2048);
    assert_eq!(config.max_line_len, DecoderConfig::DEFAULT_MAX_LINE_LEN);
    assert_eq!(config.max_reply_len, 32 * 1024);
    assert!(config.max_reply_len > config.max_line_len);
    assert_eq!(config.line_endings, LineEndings::Strict);
}

// ----------------------------------------------------------- classification

#[test]
fn classification_tells_continue_retry_or_give_up() {
    let table: &[(&[u8], ReplyClass, ReplyAction)] = &[
        (
            b"220 ready\r\n",
            ReplyClass::PositiveCompletion,
            ReplyAction::Continue,
        ),
        (
            b"250 ok\r\n",
            ReplyClass::PositiveCompletion,
            ReplyAction::Continue,
        ),
        (
            b"334 \r\n",
            ReplyClass::PositiveIntermediate,
            ReplyAction::Continue,
        ),
        (
            b"354 go\r\n",
            ReplyClass::PositiveIntermediate,
            ReplyAction::Continue,
        ),
        (
            b"421 4.3.2 bye\r\n",
            ReplyClass::TransientNegative,
            ReplyAction::RetryLater,
        ),
        (
            b"451 4.3.0 later\r\n",
            ReplyClass::TransientNegative,
            ReplyAction::RetryLater,
        ),
        (
            b"550 5.1.1 unknown\r\n",
            ReplyClass::PermanentNegative,
            ReplyAction::GiveUp,
        ),
        (
            b"554 5.7.1 no\r\n",
            ReplyClass::PermanentNegative,
            ReplyAction::GiveUp,
        ),
    ];
    for (input, class, action) in table {
        let code = one(input).code();
        assert_eq!(code.class(), *class, "{input:?}");
        assert_eq!(code.action(), *action, "{input:?}");
        assert_eq!(code.is_positive(), code.get() < 400);
        assert_eq!(code.is_negative(), code.get() >= 400);
        assert_eq!(code.is_transient_negative(), code.get() / 100 == 4);
        assert_eq!(code.is_permanent_negative(), code.get() / 100 == 5);
        assert_eq!(code.is_positive_intermediate(), code.get() / 100 == 3);
        assert_eq!(code.is_positive_completion(), code.get() / 100 == 2);
    }
    assert!(ReplyCode::SERVICE_NOT_AVAILABLE.is_service_shutdown());
    assert!(!ReplyCode::LOCAL_ERROR.is_service_shutdown());
}

#[test]
fn named_reply_codes_have_their_numbers() {
    let table = [
        (ReplyCode::SERVICE_READY, 220),
        (ReplyCode::SERVICE_CLOSING, 221),
        (ReplyCode::AUTH_SUCCEEDED, 235),
        (ReplyCode::OK, 250),
        (ReplyCode::USER_NOT_LOCAL_WILL_FORWARD, 251),
        (ReplyCode::CANNOT_VRFY, 252),
        (ReplyCode::AUTH_CONTINUE, 334),
        (ReplyCode::START_MAIL_INPUT, 354),
        (ReplyCode::SERVICE_NOT_AVAILABLE, 421),
        (ReplyCode::MAILBOX_BUSY, 450),
        (ReplyCode::LOCAL_ERROR, 451),
        (ReplyCode::INSUFFICIENT_STORAGE, 452),
        (ReplyCode::PARAMETERS_NOT_ACCOMMODATED, 455),
        (ReplyCode::SYNTAX_ERROR, 500),
        (ReplyCode::PARAMETER_SYNTAX_ERROR, 501),
        (ReplyCode::COMMAND_NOT_IMPLEMENTED, 502),
        (ReplyCode::BAD_SEQUENCE, 503),
        (ReplyCode::PARAMETER_NOT_IMPLEMENTED, 504),
        (ReplyCode::HOST_DOES_NOT_ACCEPT_MAIL, 521),
        (ReplyCode::AUTH_REQUIRED, 530),
        (ReplyCode::AUTH_MECHANISM_TOO_WEAK, 534),
        (ReplyCode::AUTH_CREDENTIALS_INVALID, 535),
        (ReplyCode::ENCRYPTION_REQUIRED, 538),
        (ReplyCode::MAILBOX_UNAVAILABLE, 550),
        (ReplyCode::USER_NOT_LOCAL, 551),
        (ReplyCode::EXCEEDED_STORAGE, 552),
        (ReplyCode::MAILBOX_NAME_NOT_ALLOWED, 553),
        (ReplyCode::TRANSACTION_FAILED, 554),
        (ReplyCode::PARAMETERS_NOT_RECOGNIZED, 555),
        (ReplyCode::DOMAIN_DOES_NOT_ACCEPT_MAIL, 556),
    ];
    for (code, n) in table {
        assert_eq!(code.get(), n);
        assert_eq!(ReplyCode::new(n), Some(code));
        assert_eq!(code.to_string(), n.to_string());
    }
}

#[test]
fn enhanced_codes_are_typed() {
    let reply = one(b"550 5.7.1 Relaying denied\r\n");
    let code = reply.enhanced_code().expect("enhanced");
    assert_eq!(code.class(), StatusClass::PermanentFailure);
    assert_eq!(code.subject(), 7);
    assert_eq!(code.subject_kind(), StatusSubject::SecurityPolicy);
    assert_eq!(code.detail(), 1);
    let reply = one(b"452 4.2.2 Mailbox full\r\n");
    let code = reply.enhanced_code().expect("enhanced");
    assert_eq!(code.class(), StatusClass::PersistentTransientFailure);
    assert_eq!(code.subject_kind(), StatusSubject::Mailbox);
}

// ------------------------------------------------------ real-server replies

const POSTFIX_GREETING: &[u8] = b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n";
const EXIM_GREETING: &[u8] =
    b"220 mx.example.net ESMTP Exim 4.96 Thu, 26 Nov 2026 04:00:00 +0000\r\n";
const GMAIL_EHLO: &[u8] = b"250-smtp.gmail.com at your service, [203.0.113.5]\r\n\
250-SIZE 35882577\r\n\
250-8BITMIME\r\n\
250-STARTTLS\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n\
250-CHUNKING\r\n\
250 SMTPUTF8\r\n";
const GMAIL_421: &[u8] =
    b"421-4.7.0 [203.0.113.5      15] Our system has detected an unusual rate of\r\n\
421-4.7.0 unsolicited mail originating from your IP address. To protect our\r\n\
421-4.7.0 users from spam, mail sent from your IP address has been temporarily\r\n\
421-4.7.0 rate limited. Please visit\r\n\
421-4.7.0  https://support.google.com/mail/?p=UnsolicitedRateLimitError to\r\n\
421 4.7.0 review our Bulk Email Senders Guidelines. a1-20020a170906b1c1si1 - gsmtp\r\n";
const GMAIL_550: &[u8] =
    b"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n\
550-5.1.1 double-checking the recipient's email address for typos or\r\n\
550-5.1.1 unnecessary spaces. For more information, go to\r\n\
550 5.1.1  https://support.google.com/mail/?p=NoSuchUser b2si3 - gsmtp\r\n";
const BLOCKLIST_554: &[u8] =
    b"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org\r\n";
const EXIM_554_GREETING: &[u8] = b"554-mx.example.net\r\n\
554 Your host is not allowed to connect to this server\r\n";
const POSTFIX_DATA: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
const POSTFIX_QUEUED: &[u8] = b"250 2.0.0 Ok: queued as 4XbTqK1Zm7z9vQ\r\n";
const POSTFIX_QUIT: &[u8] = b"221 2.0.0 Bye\r\n";

#[test]
fn real_server_replies_decode() {
    let r = one(POSTFIX_GREETING);
    assert_eq!(
        (r.code(), r.text()),
        (
            ReplyCode::SERVICE_READY,
            &b"mail.example.org ESMTP Postfix (Debian/GNU)"[..]
        )
    );
    let r = one(EXIM_GREETING);
    assert_eq!(r.code(), ReplyCode::SERVICE_READY);
    let r = one(GMAIL_EHLO);
    assert_eq!((r.code(), r.line_count()), (ReplyCode::OK, 8));
    assert_eq!(r.text(), b"smtp.gmail.com at your service, [203.0.113.5]");

    let r = one(GMAIL_421);
    assert_eq!(r.code(), ReplyCode::SERVICE_NOT_AVAILABLE);
    assert_eq!(r.line_count(), 6);
    assert_eq!(r.code().action(), ReplyAction::RetryLater);
    assert!(r.lines().all(|l| l.enhanced_code() == Some(esc("4.7.0"))));
    assert_eq!(
        r.lines().nth(4).map(|l| l.text()),
        Some(&b" https://support.google.com/mail/?p=UnsolicitedRateLimitError to"[..])
    );

    let r = one(GMAIL_550);
    assert_eq!(
        (r.code(), r.line_count()),
        (ReplyCode::MAILBOX_UNAVAILABLE, 4)
    );
    assert_eq!(r.enhanced_code(), Some(EnhancedStatusCode::BAD_MAILBOX));
    assert_eq!(r.code().action(), ReplyAction::GiveUp);

    let r = one(BLOCKLIST_554);
    assert_eq!(r.code(), ReplyCode::TRANSACTION_FAILED);
    assert_eq!(r.enhanced_code(), Some(EnhancedStatusCode::NOT_AUTHORIZED));
    let r = one(EXIM_554_GREETING);
    assert_eq!(
        (r.code(), r.line_count()),
        (ReplyCode::TRANSACTION_FAILED, 2)
    );
    assert_eq!(r.enhanced_code(), None);

    assert_eq!(one(POSTFIX_DATA).code(), ReplyCode::START_MAIL_INPUT);
    let r = one(POSTFIX_QUEUED);
    assert_eq!(r.enhanced_code(), Some(EnhancedStatusCode::SUCCESS));
    assert_eq!(r.text(), b"Ok: queued as 4XbTqK1Zm7z9vQ");
    assert_eq!(one(POSTFIX_QUIT).code(), ReplyCode::SERVICE_CLOSING);
}

fn transcript() -> Vec<u8> {
    let mut t = Vec::new();
    for part in [
        POSTFIX_GREETING,
        GMAIL_EHLO,
        b"250 2.1.0 Ok\r\n",
        GMAIL_550,
        b"099 garbage from a broken peer\r\n",
        b"250 2.1.5 Ok\r\n",
        POSTFIX_DATA,
        POSTFIX_QUEUED,
        b"250-a\r\n251 mismatched\r\n",
        GMAIL_421,
        b"250 bare lf\n",
        BLOCKLIST_554,
        EXIM_554_GREETING,
        POSTFIX_QUIT,
    ] {
        t.extend_from_slice(part);
    }
    t
}

#[test]
fn transcript_known_answer() {
    let events = decode_all(&transcript());
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Reply { code, lines } => format!("{code}x{}", lines.len()),
            Event::Error(kind) => format!("{kind:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "220x1",
            "250x8",
            "250x1",
            "550x4",
            "InvalidCode",
            "250x1",
            "354x1",
            "250x1",
            "CodeMismatch { expected: ReplyCode(250), found: ReplyCode(251) }",
            "421x6",
            "BareLf",
            "554x1",
            "554x2",
            "221x1",
        ]
    );
}

// --------------------------------------------------------- split invariance

#[test]
fn split_invariance_at_every_offset_and_byte_by_byte() {
    let input = transcript();
    let (whole, left) = decode_pieces(DecoderConfig::default(), &[&input]);
    assert_eq!(left, 0);
    for cut in 0..=input.len() {
        let (head, tail) = input.split_at(cut);
        let (events, left) = decode_pieces(DecoderConfig::default(), &[head, tail]);
        assert_eq!(events, whole, "cut at {cut}");
        assert_eq!(left, 0);
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (events, left) = decode_pieces(DecoderConfig::default(), &bytes);
    assert_eq!(events, whole);
    assert_eq!(left, 0);
}

#[test]
fn split_invariance_with_long_lines_and_small_limits() {
    let config = DecoderConfig::default()
        .with_max_line_len(40)
        .with_max_reply_len(120);
    let mut input = transcript();
    for i in 0..15 {
        input.extend_from_slice(format!("250-line {i:02}\r\n").as_bytes());
    }
    input.extend_from_slice(b"250 last\r\n250 after\r\n");
    let (whole, _) = decode_pieces(config, &[&input]);
    assert!(whole.contains(&Event::Error(ReplyErrorKind::LineTooLong)));
    assert!(whole.contains(&Event::Error(ReplyErrorKind::ReplyTooLong)));
    assert_eq!(
        whole.last(),
        Some(&Event::Reply {
            code: 250,
            lines: vec![("-".into(), "after".into())],
        })
    );
    for cut in 0..=input.len() {
        let (head, tail) = input.split_at(cut);
        let (events, _) = decode_pieces(config, &[head, tail]);
        assert_eq!(events, whole, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_pieces(config, &bytes).0, whole);
}

#[test]
fn incomplete_input_consumes_nothing_and_resumes() {
    let mut decoder = ReplyDecoder::new();
    let input = b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
    for end in 0..input.len() {
        assert_eq!(
            decoder.decode(&input[..end]),
            Ok(Decoded::Incomplete),
            "at {end}"
        );
    }
    let Ok(Decoded::Reply { reply, consumed }) = decoder.decode(input) else {
        panic!("complete")
    };
    assert_eq!(consumed, input.len());
    assert_eq!(reply.line_count(), 3);
}
