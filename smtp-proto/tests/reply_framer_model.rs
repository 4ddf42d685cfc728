//! The line framer (which the reply decoder uses to find lines) checked
//! against a plain model, for any input and any way of cutting it.

use proptest::prelude::*;
use smtp_proto::framer::{Frame, LineFramer};

/// What the framer reports for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Line {
        content: Vec<u8>,
        bare_lf: bool,
        bare_cr: bool,
    },
    TooLong,
}

/// The model: split at each LF; a line whose LF lies at index `max` or
/// beyond (terminator included, the line is longer than `max`) is too long.
fn model(input: &[u8], max: usize) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(lf) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..pos + lf];
        if lf + 1 > max {
            items.push(Item::TooLong);
        } else {
            let (content, bare_lf) = match line.strip_suffix(b"\r") {
                Some(c) => (c, false),
                None => (line, true),
            };
            items.push(Item::Line {
                content: content.to_vec(),
                bare_lf,
                bare_cr: content.contains(&b'\r'),
            });
        }
        pos += lf + 1;
    }
    // A pending tail at or over the limit is reported as too long at once.
    let tail = input.len() - pos;
    if tail >= max {
        items.push(Item::TooLong);
    }
    (items, pos)
}

fn frame(input: &[u8], max: usize, cuts: &[usize]) -> Vec<Item> {
    let mut framer = LineFramer::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut items = Vec::new();
    let mut fed = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    for end in points {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match framer.next_frame(&buf, max) {
                Frame::Line(l) => {
                    items.push(Item::Line {
                        content: buf[..l.content_len].to_vec(),
                        bare_lf: l.bare_lf,
                        bare_cr: l.bare_cr,
                    });
                    buf.drain(..l.consumed);
                }
                Frame::Discarded { consumed, end } => {
                    // Report a too-long line once, when it is first dropped.
                    if !framer_was_discarding(&items) {
                        items.push(Item::TooLong);
                    }
                    buf.drain(..consumed);
                    if end {
                        items.push(Item::Line {
                            content: b"<end>".to_vec(),
                            bare_lf: false,
                            bare_cr: false,
                        });
                    }
                }
                Frame::Incomplete => break,
            }
        }
    }
    // Remove the end markers used to know when a dropped line finished.
    items.retain(|i| !matches!(i, Item::Line { content, .. } if content == b"<end>"));
    items
}

fn framer_was_discarding(items: &[Item]) -> bool {
    matches!(items.last(), Some(Item::TooLong))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => Just(b'a'),
            2 => Just(b'\r'),
            2 => Just(b'\n'),
            1 => Just(b' '),
            1 => any::<u8>(),
        ],
        0..200,
    )
}

proptest! {
    #[test]
    fn framer_matches_model_for_any_cuts(
        input in bytes(),
        max in 1usize..40,
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let (expected, _) = model(&input, max);
        prop_assert_eq!(frame(&input, max, &[]), expected.clone());
        prop_assert_eq!(frame(&input, max, &cuts), expected.clone());
        let every: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(frame(&input, max, &every), expected);
    }
}

#[test]
fn crlf_split_between_reads_is_one_line_ending() {
    let mut framer = LineFramer::new();
    assert_eq!(framer.next_frame(b"250 ok\r", 512), Frame::Incomplete);
    let Frame::Line(line) = framer.next_frame(b"250 ok\r\n", 512) else {
        panic!("line expected")
    };
    assert_eq!((line.content_len, line.consumed), (6, 8));
    assert!(!line.bare_cr && !line.bare_lf);
}

#[test]
fn bare_cr_seen_before_a_pause_is_remembered() {
    let mut framer = LineFramer::new();
    assert_eq!(framer.next_frame(b"250 o\rk", 512), Frame::Incomplete);
    let Frame::Line(line) = framer.next_frame(b"250 o\rk\r\n", 512) else {
        panic!("line expected")
    };
    assert!(line.bare_cr);
}
