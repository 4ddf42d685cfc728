//! Target `reply`: the streaming reply decoder
//! (`smtp_proto::reply::ReplyDecoder`, `Reply`, `OwnedReply`).
//!
//! The input is the byte stream a server might send. It is decoded under
//! every configuration of [`configs`] (the default, and one with short
//! lines, a short reply limit and bare LF accepted) and under every cut of
//! [`crate::split::cuts`], and the target asserts:
//!
//! - the caller contract of [`crate::stream::feed`]: consumed bytes within
//!   the buffer, at most a bounded number of calls in a row that consume
//!   nothing, and while waiting for input the buffer holds no more than the
//!   reply limit plus one line;
//! - the same replies, errors and skipped bytes come out however the input
//!   is cut (bytes skipped after an error counted with the error: the tail
//!   of an over-long line is skipped as it arrives);
//! - a reply's raw bytes are exactly the bytes it consumed; it has at least
//!   one line, only its last line is a last line, and every line carries its
//!   code;
//! - every reply re-encodes to canonical bytes (`Reply::write_to`, equal to
//!   the bytes of its `into_owned` copy), which decode as exactly one reply
//!   with the same code, lines, enhanced codes and texts;
//! - an `OwnedReply` built from the decoded lines with the validating
//!   constructors is accepted whenever its lines fit in 512 octets, and
//!   writes the same bytes;
//! - `Reply::parse` on the whole input does not panic.

use smtp_proto::reply::{Decoded, DecoderConfig, LineEndings, OwnedReply, Reply, ReplyDecoder};

use crate::split::check_split_invariance;
use crate::stream::{feed, Limits, Step};

/// The decoder configurations every input is decoded with.
pub fn configs() -> Vec<DecoderConfig> {
    vec![
        DecoderConfig::default(),
        DecoderConfig::default()
            .with_max_line_len(12)
            .with_max_reply_len(40)
            .with_line_endings(LineEndings::AllowBareLf),
    ]
}

/// What one call of the decoder reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A reply, its raw bytes and its owned copy.
    Reply {
        /// The bytes consumed, as the reply holds them.
        raw: Vec<u8>,
        /// The owned copy.
        owned: OwnedReply,
    },
    /// Bytes skipped (the tail of a reported over-long line or reply).
    Skipped(usize),
    /// An error, with the bytes it consumed.
    Error(String, usize),
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let _ = Reply::parse(data);
    for config in configs() {
        let got = check_split_invariance(data, |pieces| decode(pieces, config));
        for event in &got {
            if let Event::Reply { raw, owned } = event {
                check_reencoding(raw, owned, config);
            }
        }
    }
}

/// Merges `Skipped` events into the error or skip before them: an
/// over-long line is reported with the bytes that had arrived, and the
/// rest of it is skipped as it comes, so the split between the two
/// depends on how the input arrives.
fn push(events: &mut Vec<Event>, event: Event) {
    if let Event::Skipped(b) = event {
        if let Some(Event::Skipped(a) | Event::Error(_, a)) = events.last_mut() {
            *a += b;
            return;
        }
    }
    events.push(event);
}

fn decode(pieces: &[&[u8]], config: DecoderConfig) -> Vec<Event> {
    let mut decoder = ReplyDecoder::with_config(config);
    let limits = Limits {
        max_retained: config.max_reply_len + config.max_line_len,
        max_stalls: 0,
    };
    let fed = feed(pieces.iter().copied(), limits, |buf| {
        match decoder.decode(buf) {
            Ok(Decoded::Incomplete) => Step::NeedMore,
            Ok(Decoded::Reply { reply, consumed }) => {
                assert_eq!(
                    reply.as_bytes(),
                    buf.get(..consumed).expect("consumed within the buffer"),
                    "a reply's bytes are the bytes it consumed"
                );
                check_lines(&reply);
                Step::Advance {
                    consumed,
                    event: Event::Reply {
                        raw: reply.as_bytes().to_vec(),
                        owned: reply.into_owned(),
                    },
                }
            }
            Ok(Decoded::Skipped { consumed }) => {
                assert!(consumed > 0, "Skipped nothing");
                Step::Advance {
                    consumed,
                    event: Event::Skipped(consumed),
                }
            }
            Err(e) => {
                assert!(e.consumed() > 0, "an error that consumed nothing: {e:?}");
                Step::Advance {
                    consumed: e.consumed(),
                    event: Event::Error(format!("{:?}", e.kind()), e.consumed()),
                }
            }
        }
    });
    let mut events = Vec::new();
    for e in fed.events {
        push(&mut events, e);
    }
    events
}

fn check_lines(reply: &Reply<'_>) {
    let lines: Vec<_> = reply.lines().collect();
    assert_eq!(lines.len(), reply.line_count(), "line count of {reply:?}");
    assert!(!lines.is_empty(), "a reply without lines");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            line.is_last(),
            i + 1 == lines.len(),
            "last-line flag of {reply:?}"
        );
        assert_eq!(line.code(), reply.code());
        assert!(
            !line.text().iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)),
            "CR, LF or NUL in the text of {reply:?}"
        );
        assert!(line.raw_text().ends_with(line.text()));
    }
    assert_eq!(reply.text(), lines[0].text());
    assert_eq!(reply.enhanced_code(), lines[0].enhanced_code());
}

/// The canonical bytes of a decoded reply decode to the same reply.
fn check_reencoding(raw: &[u8], owned: &OwnedReply, config: DecoderConfig) {
    // Decoded again on its own, the reply is the same.
    let reply = match ReplyDecoder::with_config(config).decode(raw) {
        Ok(Decoded::Reply { reply, consumed }) if consumed == raw.len() => reply,
        other => panic!("{raw:?} decoded alone gives {other:?}"),
    };
    assert_eq!(&reply.into_owned(), owned);
    let mut canonical = Vec::new();
    reply.write_to(&mut canonical);
    assert_eq!(
        canonical,
        owned.to_bytes(),
        "Reply and OwnedReply write differently"
    );
    check_owned_round_trip(owned, &canonical, true);

    // The validating constructors accept what was decoded when each line
    // fits the RFC 5321 limit.
    let fits = owned
        .lines()
        .all(|(esc, text)| 4 + esc.map_or(0, |e| e.to_string().len() + 1) + text.len() + 2 <= 512);
    let rebuilt = OwnedReply::from_lines(owned.code(), owned.lines());
    if fits {
        let rebuilt = rebuilt
            .unwrap_or_else(|e| panic!("constructors refused a decoded reply {owned:?}: {e}"))
            .expect("at least one line");
        assert_eq!(&rebuilt, owned);
    }
}

/// `canonical` decodes as exactly one reply equal to `owned`, with CRLF
/// line ends only; with `stable`, re-encoding gives `canonical` again.
pub fn check_owned_round_trip(owned: &OwnedReply, canonical: &[u8], stable: bool) {
    let loose = DecoderConfig::default()
        .with_max_line_len(usize::MAX)
        .with_max_reply_len(usize::MAX);
    let mut decoder = ReplyDecoder::with_config(loose);
    match decoder.decode(canonical) {
        Ok(Decoded::Reply { reply, consumed }) => {
            assert_eq!(
                consumed,
                canonical.len(),
                "canonical bytes hold more than one reply"
            );
            let again = reply.into_owned();
            assert_eq!(
                &again,
                owned,
                "{:?} decodes to a different reply",
                String::from_utf8_lossy(canonical)
            );
            if stable {
                assert_eq!(again.to_bytes(), canonical, "canonical form not stable");
            }
        }
        other => panic!(
            "canonical bytes {:?} of {owned:?} do not decode: {other:?}",
            String::from_utf8_lossy(canonical)
        ),
    }
    for line in canonical.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "a canonical line without CRLF");
        assert!(!line[..line.len() - 2]
            .iter()
            .any(|&b| matches!(b, b'\r' | b'\n' | 0)));
    }
}
