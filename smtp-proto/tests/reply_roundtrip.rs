//! Reply encoding: canonical bytes, validating constructors, and round trips.

use proptest::prelude::*;
use smtp_proto::reply::{Decoded, InvalidReply, OwnedReply, Reply, ReplyDecoder, MAX_REPLY_LEN};
use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};

fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).expect("valid code")
}

#[test]
fn canonical_bytes_known_answers() {
    let ok = OwnedReply::new(ReplyCode::OK, "").expect("valid");
    assert_eq!(ok.to_bytes(), b"250\r\n");
    let ok = OwnedReply::new(ReplyCode::OK, "Ok").expect("valid");
    assert_eq!(ok.to_bytes(), b"250 Ok\r\n");
    let r = OwnedReply::with_enhanced(ReplyCode::OK, Some(EnhancedStatusCode::SUCCESS), "")
        .expect("valid");
    assert_eq!(r.to_bytes(), b"250 2.0.0\r\n");
    let r = OwnedReply::from_lines(
        ReplyCode::SERVICE_NOT_AVAILABLE,
        [
            (Some(EnhancedStatusCode::TRANSIENT_SYSTEM), "first"),
            (None, ""),
            (Some(EnhancedStatusCode::TRANSIENT_SYSTEM), "last"),
        ],
    )
    .expect("valid")
    .expect("non-empty");
    assert_eq!(
        r.to_bytes(),
        b"421-4.3.0 first\r\n421-\r\n421 4.3.0 last\r\n"
    );
    assert_eq!(r.line_count(), 3);
    assert_eq!(
        r.enhanced_code(),
        Some(EnhancedStatusCode::TRANSIENT_SYSTEM)
    );
    assert_eq!(r.text(), b"first");
    assert_eq!(
        OwnedReply::from_lines::<&str>(ReplyCode::OK, []).expect("valid"),
        None
    );
}

#[test]
fn text_with_cr_lf_or_nul_cannot_be_built() {
    for bad in ["a\r\n250 injected", "a\rb", "a\nb", "a\0b"] {
        assert!(
            matches!(
                OwnedReply::new(ReplyCode::OK, bad),
                Err(InvalidReply::ForbiddenByte(_))
            ),
            "{bad:?}"
        );
        let mut r = OwnedReply::new(ReplyCode::OK, "fine").expect("valid");
        assert!(r.push_line(None, bad).is_err());
        assert_eq!(r.line_count(), 1, "a rejected line is not added");
    }
}

#[test]
fn enhanced_code_must_match_the_reply_class() {
    let e550 = EnhancedStatusCode::new(StatusClass::PermanentFailure, 1, 1).expect("valid");
    assert_eq!(
        OwnedReply::with_enhanced(ReplyCode::OK, Some(e550), "x"),
        Err(InvalidReply::EnhancedClassMismatch)
    );
    assert_eq!(
        OwnedReply::with_enhanced(
            ReplyCode::START_MAIL_INPUT,
            Some(EnhancedStatusCode::SUCCESS),
            "go"
        ),
        Err(InvalidReply::EnhancedClassMismatch)
    );
    assert!(OwnedReply::with_enhanced(ReplyCode::MAILBOX_UNAVAILABLE, Some(e550), "x").is_ok());
}

#[test]
fn lines_longer_than_512_octets_cannot_be_built() {
    assert!(OwnedReply::new(ReplyCode::OK, "x".repeat(506)).is_ok());
    assert_eq!(
        OwnedReply::new(ReplyCode::OK, "x".repeat(507)),
        Err(InvalidReply::LineTooLong)
    );
}

/// The longest reply that can be built is read back whole by a decoder
/// with the default limits; one octet more is refused when it is built.
#[test]
fn replies_over_the_decoder_limit_cannot_be_built() {
    // 500-octet lines ("250-" or "250 ", 494 octets of text, CRLF), then
    // one line that brings the total to the limit exactly.
    let full = "x".repeat(494);
    let lines = MAX_REPLY_LEN / 500;
    let rest = MAX_REPLY_LEN - lines * 500 - 6;
    let mut texts = vec![full.clone(); lines];
    texts.push("y".repeat(rest));
    let reply = OwnedReply::from_lines(ReplyCode::OK, texts.iter().map(|t| (None, t)))
        .expect("at the limit")
        .expect("non-empty");
    let bytes = reply.to_bytes();
    assert_eq!(bytes.len(), MAX_REPLY_LEN);
    match ReplyDecoder::new().decode(&bytes) {
        Ok(Decoded::Reply {
            reply: read,
            consumed,
        }) => {
            assert_eq!(consumed, bytes.len());
            assert_eq!(read.into_owned(), reply);
        }
        other => panic!("the default decoder should read it: {other:?}"),
    }

    // One octet more, built either way, is refused.
    let mut over = texts.clone();
    over.last_mut().expect("has lines").push('y');
    assert_eq!(
        OwnedReply::from_lines(ReplyCode::OK, over.iter().map(|t| (None, t))),
        Err(InvalidReply::ReplyTooLong)
    );
    let mut grown = reply.clone();
    assert_eq!(grown.push_line(None, ""), Err(InvalidReply::ReplyTooLong));
    assert_eq!(grown, reply, "a refused line leaves the reply as it was");
    // The decoder refuses the same bytes with one more line.
    let mut longer = bytes[..bytes.len() - rest - 6].to_vec();
    longer.extend_from_slice(format!("250-{}\r\n250 z\r\n", "y".repeat(rest)).as_bytes());
    assert!(ReplyDecoder::new().decode(&longer).is_err());
}

/// A reply of exactly [`MAX_REPLY_LEN`] octets can be built whatever its
/// last line: one that is empty (the bare code, `250\r\n`) or only an
/// enhanced code (`250 2.0.0\r\n`, no space after it) is counted as the
/// octets it is written as.
#[test]
fn a_reply_of_exactly_the_limit_ends_with_any_line() {
    let full = "x".repeat(494); // 500 octets a line
    let lines = MAX_REPLY_LEN / 500;
    for last in [None, Some(EnhancedStatusCode::SUCCESS)] {
        // "250" CRLF, or "250 2.0.0" CRLF.
        let last_len = if last.is_some() { 11 } else { 5 };
        let filler = "y".repeat(MAX_REPLY_LEN - lines * 500 - last_len - 6);
        let mut texts: Vec<(Option<EnhancedStatusCode>, &str)> = vec![(None, &full); lines];
        texts.push((None, &filler));
        texts.push((last, ""));
        let reply = OwnedReply::from_lines(ReplyCode::OK, texts.iter().copied())
            .unwrap_or_else(|e| panic!("{last:?}: {e}"))
            .expect("non-empty");
        let bytes = reply.to_bytes();
        assert_eq!(bytes.len(), MAX_REPLY_LEN, "{last:?}");
        match ReplyDecoder::new().decode(&bytes) {
            Ok(Decoded::Reply {
                reply: read,
                consumed,
            }) => {
                assert_eq!(consumed, MAX_REPLY_LEN);
                assert_eq!(read.into_owned(), reply);
            }
            other => panic!("{last:?}: {other:?}"),
        }
        // One more line, even an empty one, is over.
        let mut grown = reply.clone();
        assert_eq!(grown.push_line(None, ""), Err(InvalidReply::ReplyTooLong));
        assert_eq!(grown, reply);
    }
}

#[test]
fn decoded_reply_writes_canonical_bytes() {
    // Bare codes, enhanced codes and multi-line replies come back unchanged
    // when already canonical; a trailing space after a bare code is not.
    for canonical in [
        &b"250\r\n"[..],
        b"250 Ok\r\n",
        b"250-a\r\n250-\r\n250 2.0.0 b\r\n",
        b"550 5.1.1 <x@example.org>: Recipient address rejected\r\n",
        b"334 \r\n",
    ] {
        let reply = Reply::parse(canonical).expect("valid");
        let mut out = Vec::new();
        reply.write_to(&mut out);
        if canonical == b"334 \r\n" {
            assert_eq!(out, b"334\r\n");
        } else {
            assert_eq!(out, canonical);
        }
        assert_eq!(reply.into_owned().to_bytes(), out);
    }
    let reply = Reply::parse(b"250 \r\n").expect("valid");
    let mut out = Vec::new();
    reply.write_to(&mut out);
    assert_eq!(out, b"250\r\n");
}

fn any_code() -> impl Strategy<Value = ReplyCode> {
    (200u16..=599).prop_map(code)
}

/// Reply text that does not itself start with a digit, so that it cannot be
/// mistaken for an enhanced status code when read back.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z<(\\[ \t][ -~\t]{0,60}",
        "[a-z][a-z \u{e9}\u{4e2d}]{0,20}",
    ]
}

fn owned_reply() -> impl Strategy<Value = OwnedReply> {
    any_code().prop_flat_map(|code| {
        let enhanced = match code.status_class() {
            Some(class) => {
                proptest::option::of((0u16..1000, 0u16..1000).prop_map(move |(s, d)| {
                    EnhancedStatusCode::new(class, s, d).expect("in range")
                }))
                .boxed()
            }
            None => Just(None).boxed(),
        };
        proptest::collection::vec((enhanced, text()), 1..6).prop_map(move |lines| {
            OwnedReply::from_lines(code, lines)
                .expect("valid lines")
                .expect("non-empty")
        })
    })
}

/// The written form of `lines`, line by line (RFC 5321 §4.2): a model of
/// what `OwnedReply` keeps.
fn written(code: ReplyCode, lines: &[(Option<EnhancedStatusCode>, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (esc, text)) in lines.iter().enumerate() {
        out.extend_from_slice(code.get().to_string().as_bytes());
        let last = i + 1 == lines.len();
        if !last {
            out.push(b'-');
        } else if esc.is_some() || !text.is_empty() {
            out.push(b' ');
        }
        if let Some(esc) = esc {
            out.extend_from_slice(esc.to_string().as_bytes());
            if !text.is_empty() {
                out.push(b' ');
            }
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

proptest! {
    #[test]
    fn pushed_lines_come_back_and_write_as_the_line_by_line_form(
        code in prop_oneof![Just(250u16), Just(421), Just(550)].prop_map(code),
        lines in proptest::collection::vec(
            (any::<bool>(), prop_oneof![Just(String::new()), "[a-z ]{1,8}"]),
            1..8,
        ),
    ) {
        let class = code.status_class().expect("2yz, 4yz or 5yz");
        let lines: Vec<_> = lines
            .into_iter()
            .map(|(esc, text)| (esc.then(|| EnhancedStatusCode::new(class, 1, 2).expect("valid")), text))
            .collect();
        // Built one line at a time, each step written in full.
        let mut reply = OwnedReply::with_enhanced(code, lines[0].0, &lines[0].1).expect("valid");
        for n in 1..=lines.len() {
            if n > 1 {
                reply.push_line(lines[n - 1].0, &lines[n - 1].1).expect("valid");
            }
            let model = written(code, &lines[..n]);
            prop_assert_eq!(reply.to_bytes(), model.clone());
            prop_assert_eq!(reply.as_bytes(), &model[..]);
            let mut out = b"x".to_vec();
            reply.write_to(&mut out);
            prop_assert_eq!(&out[1..], &model[..]);
            let back: Vec<_> = reply.lines().map(|(e, t)| (e, t.to_vec())).collect();
            let want: Vec<_> = lines[..n].iter().map(|(e, t)| (*e, t.as_bytes().to_vec())).collect();
            prop_assert_eq!(back, want);
        }
        // A clone shares the lines until it is changed; the original keeps its own.
        let before = reply.to_bytes();
        let mut copy = reply.clone();
        copy.push_line(None, "more").expect("valid");
        prop_assert_eq!(reply.to_bytes(), before);
        prop_assert_eq!(copy.line_count(), reply.line_count() + 1);
    }
}

proptest! {
    /// `push_line` refuses a line exactly when the reply written with it
    /// would pass [`MAX_REPLY_LEN`] octets.
    #[test]
    fn push_line_refuses_exactly_what_would_pass_the_limit(
        lines in proptest::collection::vec(
            (any::<bool>(), prop_oneof![Just(0usize), Just(1), 400usize..=500]),
            60..90,
        ),
    ) {
        let code = ReplyCode::OK;
        let mut reply: Option<OwnedReply> = None;
        let mut kept: Vec<(Option<EnhancedStatusCode>, String)> = Vec::new();
        for (esc, len) in lines {
            let esc = esc.then_some(EnhancedStatusCode::SUCCESS);
            let text = "z".repeat(len);
            let mut with = kept.clone();
            with.push((esc, text.clone()));
            let fits = written(code, &with).len() <= MAX_REPLY_LEN;
            let pushed = match reply.as_mut() {
                Some(r) => r.push_line(esc, &text).map(|_| ()),
                None => OwnedReply::with_enhanced(code, esc, &text).map(|r| reply = Some(r)),
            };
            match pushed {
                Ok(()) => {
                    prop_assert!(fits);
                    kept = with;
                }
                Err(e) => {
                    prop_assert_eq!(e, InvalidReply::ReplyTooLong);
                    prop_assert!(!fits);
                }
            }
            let bytes = reply.as_ref().map(OwnedReply::to_bytes).unwrap_or_default();
            prop_assert_eq!(&bytes, &written(code, &kept));
            prop_assert!(bytes.len() <= MAX_REPLY_LEN);
        }
    }
}

proptest! {
    #[test]
    fn any_valid_reply_encodes_and_decodes_to_itself(reply in owned_reply()) {
        let bytes = reply.to_bytes();
        let decoded = Reply::parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.code(), reply.code());
        prop_assert_eq!(decoded.line_count(), reply.line_count());
        prop_assert_eq!(decoded.enhanced_code(), reply.enhanced_code());
        prop_assert_eq!(decoded.text(), reply.text());
        prop_assert_eq!(decoded.as_bytes(), &bytes[..]);
        let mut rewritten = Vec::new();
        decoded.write_to(&mut rewritten);
        prop_assert_eq!(&rewritten, &bytes);
        prop_assert_eq!(decoded.into_owned(), reply);
    }

    #[test]
    fn enhanced_codes_round_trip(class in prop_oneof![
        Just(StatusClass::Success),
        Just(StatusClass::PersistentTransientFailure),
        Just(StatusClass::PermanentFailure),
    ], subject in 0u16..1000, detail in 0u16..1000) {
        let code = EnhancedStatusCode::new(class, subject, detail).expect("in range");
        let text = code.to_string();
        prop_assert_eq!(EnhancedStatusCode::parse(text.as_bytes()), Some(code));
        prop_assert_eq!(text.parse::<EnhancedStatusCode>().ok(), Some(code));
    }

    #[test]
    fn decoding_never_panics_and_consumes_within_bounds(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        use smtp_proto::reply::{Decoded, ReplyDecoder};
        let mut decoder = ReplyDecoder::new();
        let mut rest = &input[..];
        for _ in 0..400 {
            let consumed = match decoder.decode(rest) {
                Ok(Decoded::Incomplete) => break,
                Ok(d) => d.consumed(),
                Err(e) => e.consumed(),
            };
            prop_assert!(consumed > 0 && consumed <= rest.len());
            rest = &rest[consumed..];
        }
    }

    #[test]
    fn ehlo_decoding_never_panics_and_agrees_with_two_pass(
        lines in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    6 => proptest::sample::select(b"AUTHSIZEPIPELINGauthsize=- 0123456789".to_vec()),
                    1 => any::<u8>(),
                ],
                0..40,
            ),
            1..6,
        ),
    ) {
        use smtp_proto::reply::{EhloDecoded, EhloReply, ReplyDecoder};
        let mut input = Vec::new();
        let n = lines.len();
        for (i, line) in lines.iter().enumerate() {
            input.extend_from_slice(if i + 1 == n { b"250 " } else { b"250-" });
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n");
        }
        let mut decoder = ReplyDecoder::new();
        if let Ok(EhloDecoded::Reply { reply, ehlo, .. }) = decoder.decode_ehlo(&input) {
            prop_assert_eq!(ehlo, EhloReply::parse(&reply));
            if let Ok(ehlo) = ehlo {
                // Capabilities come from the lines after the first.
                prop_assert!(ehlo.capabilities().count() < n);
            }
        }
    }
}
