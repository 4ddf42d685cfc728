//! Target `body`: a message body from the client's encoders to the
//! server's decoders, over DATA and over BDAT.
//!
//! The input is an arbitrary message body. The target asserts:
//!
//! - DATA: the client's `DotStuffer`, fed the body under every cut of
//!   [`crate::split::cuts`], writes the same bytes as `dot_stuff`; those
//!   bytes hold CR and LF only as CRLF; followed by a trailer (the body
//!   itself again, so any smuggling sequence it holds is there too), they
//!   are read by the server's `DataDecoder`, under both bare line ending
//!   policies and under every cut, as exactly the body with bare CR and
//!   bare LF made CRLF and a final CRLF added when missing; the decoder
//!   consumes exactly the encoded bytes, never the trailer, and finds no
//!   bare line ending and nothing to refuse;
//! - BDAT: the body cut into chunks of sizes drawn from the input (empty
//!   chunks included) and sent as `BDAT <size>` commands written by
//!   `Command::write_to`, the last with `LAST`, then the trailer, is read
//!   by a server loop (`CommandDecoder` for the command lines,
//!   `ChunkReader` for the chunks), under every cut, as exactly the body,
//!   byte for byte, with the trailer left unread.

use smtp_proto::command::{Command, CommandDecoder};
use smtp_proto::data::{dot_stuff, BareEndingPolicy, ChunkReader, DataLimits, DotStuffer};

use crate::split::{check_split_invariance, cuts, pieces, seed};
use crate::stream::{feed, Limits, Step};

/// The fuzz target.
pub fn run(body: &[u8]) {
    let wire = check_data(body);
    check_bdat(body, &wire);
}

/// The body with bare CR and bare LF made CRLF, ending in CRLF unless empty.
pub fn normalized(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Checks the DATA path; returns the encoded body.
fn check_data(body: &[u8]) -> Vec<u8> {
    let wire = dot_stuff(body);
    for cut in cuts(body) {
        let mut enc = DotStuffer::new();
        let mut out = Vec::new();
        for piece in pieces(body, cut) {
            enc.encode(piece, &mut out);
        }
        enc.finish(&mut out);
        assert_eq!(out, wire, "the encoder's output depends on the cut {cut:?}");
    }
    assert!(wire.ends_with(b".\r\n"), "no terminator");
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert_eq!(
                i.checked_sub(1).map(|j| wire[j]),
                Some(b'\r'),
                "bare LF at {i}"
            ),
            _ => {}
        }
    }

    let mut stream = wire.clone();
    stream.extend_from_slice(body);
    let expected = normalized(body);
    for policy in [BareEndingPolicy::Reject, BareEndingPolicy::Normalize] {
        let limits = DataLimits::default()
            .with_bare_endings(policy)
            .with_max_line_len(usize::MAX);
        let got = check_split_invariance(&stream, |p| crate::data::decode(p, limits));
        assert_eq!(
            got.consumed,
            wire.len(),
            "the decoder did not stop at the terminator"
        );
        assert_eq!(
            got.content, expected,
            "the body came back changed ({policy:?})"
        );
        let end = got.end.expect("the terminator was not found");
        assert_eq!(
            (end.bare_cr, end.bare_lf),
            (0, 0),
            "the encoder sent bare endings"
        );
        assert_eq!(end.size, expected.len() as u64);
        assert_eq!(end.verdict, "Ok(())");
    }
    wire
}

/// What the BDAT reading loop reports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A `BDAT` command: its size and LAST flag.
    Command(u64, bool),
    /// Bytes of a chunk.
    Bytes(Vec<u8>),
}

/// Checks the BDAT path. The chunk sizes come from the input.
fn check_bdat(body: &[u8], trailer: &[u8]) {
    let mut state = seed(body) | 1;
    let mut sizes = Vec::new();
    let mut left = body.len();
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = match state % 8 {
            0 => 0,
            1 => left,
            _ => usize::try_from((state >> 8) % 64).unwrap_or(0),
        }
        .min(left);
        left -= n;
        sizes.push(n);
        if left == 0 && (sizes.len() > 1 || state % 3 != 0) {
            break;
        }
    }
    let mut wire = Vec::new();
    let mut offset = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let cmd = Command::Bdat {
            size: n as u64,
            last: i + 1 == sizes.len(),
        };
        cmd.write_to(&mut wire);
        wire.extend_from_slice(&body[offset..offset + n]);
        offset += n;
    }
    let sent = wire.len();
    wire.extend_from_slice(trailer);

    let got = check_split_invariance(&wire, read_bdat);
    let (events, consumed) = got;
    assert_eq!(
        consumed, sent,
        "the reader did not stop after the LAST chunk"
    );
    let mut commands = Vec::new();
    let mut received = Vec::new();
    for e in events {
        match e {
            Event::Command(size, last) => commands.push((size, last)),
            Event::Bytes(b) => received.extend_from_slice(&b),
        }
    }
    let expected: Vec<(u64, bool)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (n as u64, i + 1 == sizes.len()))
        .collect();
    assert_eq!(commands, expected, "the BDAT commands came back changed");
    assert_eq!(received, body, "the BDAT chunks came back changed");
}

/// A server's BDAT reading loop over `pieces`; returns what it saw
/// (adjacent chunk bytes merged) and the bytes it consumed.
fn read_bdat(p: &[&[u8]]) -> (Vec<Event>, usize) {
    let mut decoder = CommandDecoder::default();
    let mut reader: Option<(ChunkReader, bool)> = None;
    let mut finished = false;
    let fed = feed(
        p.iter().copied(),
        // An empty chunk is a step that consumes nothing.
        Limits {
            max_retained: usize::MAX,
            max_stalls: 1,
        },
        |buf| {
            if finished {
                return Step::NeedMore;
            }
            if let Some((r, last)) = &mut reader {
                let bytes = r.read(buf);
                let n = bytes.len();
                let bytes = bytes.to_vec();
                if r.is_done() {
                    finished = *last;
                    reader = None;
                }
                if n == 0 {
                    // An empty chunk is done at once.
                    return if reader.is_none() {
                        Step::Advance {
                            consumed: 0,
                            event: Event::Bytes(Vec::new()),
                        }
                    } else {
                        Step::NeedMore
                    };
                }
                return Step::Advance {
                    consumed: n,
                    event: Event::Bytes(bytes),
                };
            }
            let d = decoder.decode(buf);
            match d.item {
                None if d.consumed == 0 => Step::NeedMore,
                Some(Ok(Command::Bdat { size, last })) => {
                    reader = Some((ChunkReader::new(size), last));
                    Step::Advance {
                        consumed: d.consumed,
                        event: Event::Command(size, last),
                    }
                }
                other => panic!("the reader met {other:?} instead of BDAT"),
            }
        },
    );
    let mut events: Vec<Event> = Vec::new();
    for e in fed.events {
        match (events.last_mut(), e) {
            (_, Event::Bytes(b)) if b.is_empty() => {}
            (Some(Event::Bytes(a)), Event::Bytes(b)) => a.extend_from_slice(&b),
            (_, e) => events.push(e),
        }
    }
    (events, fed.consumed)
}
