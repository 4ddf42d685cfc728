//! Target `command`: the command decoder
//! (`smtp_proto::command::CommandDecoder`, `Command::parse`, `Command::write_to`).
//!
//! The input is the byte stream a client might send. It is decoded under
//! every configuration of [`CONFIGS`] (the default, the default line
//! ending policy with short lines, and a permissive one with short lines,
//! bare LF accepted and paths without brackets) and under every cut of
//! [`crate::split::cuts`], and the target asserts:
//!
//! - the caller contract of [`crate::stream::feed`]: consumed bytes within
//!   the buffer, no loop, and while waiting for input the buffer holds less
//!   than the longest line allowed;
//! - the same commands and errors, with the same bytes each, come out
//!   however the input is cut (the pieces of one over-long line are merged
//!   first: the decoder reports them as they arrive);
//! - each item covers exactly one line: the bytes through the first CRLF
//!   under `LineEndingPolicy::Strict` (bare LFs inside), through the first
//!   LF under `AllowBareLf`; an over-long line is reported once, only
//!   when it is longer than the limit, as `AuthLineTooLong` when it is an
//!   `AUTH` command line and as `LineTooLong` otherwise;
//! - a line holding a bare CR, or under `Strict` a bare LF, is refused as
//!   a whole with `BareLineEnding`;
//! - every command decoded encodes to canonical bytes (one line, CRLF at the
//!   end, no other CR, LF or NUL), which parse back to the same command with
//!   the default options and encode to the same bytes again; `into_owned`
//!   keeps it equal;
//! - every item equals what `Command::parse_with` says about the line alone;
//! - `Command::parse` on the raw input as one line does not panic, and
//!   refuses an input holding CR, LF or NUL.

use smtp_proto::command::{
    Command, CommandDecoder, CommandError, DecoderConfig, LineEndingPolicy, ParseOptions,
};

use crate::split::check_split_invariance;
use crate::stream::{feed, Limits, Step};

/// The decoder configurations every input is decoded with.
pub fn configs() -> Vec<DecoderConfig> {
    let mut short = DecoderConfig::default();
    short.max_line_length = 24;
    short.max_auth_line_length = 40;
    let mut small = short.clone();
    small.line_endings = LineEndingPolicy::AllowBareLf;
    small.parse = ParseOptions::default().allow_unbracketed_paths(true);
    vec![DecoderConfig::default(), short, small]
}

/// Names the configurations of [`configs`] in messages.
pub const CONFIGS: &[&str] = &[
    "default",
    "short lines",
    "short lines, bare LF, unbracketed paths",
];

/// One item of the decoder, with the bytes it consumed (the pieces of an
/// over-long line merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Every byte the item consumed.
    pub wire: Vec<u8>,
    /// The command or the error.
    pub result: Result<Command<'static>, CommandError>,
}

/// Everything decoding one input produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoding {
    /// The items, in order.
    pub items: Vec<Item>,
    /// Bytes of an over-long line thrown away at the end, not yet reported.
    pub discarding: Vec<u8>,
    /// The unconsumed tail.
    pub tail: Vec<u8>,
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    // The whole input as one line: never a panic; CR, LF and NUL refused.
    let direct = Command::parse(data);
    if data.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        assert!(
            direct.is_err(),
            "a line holding CR/LF/NUL parsed: {direct:?}"
        );
    }
    for (config, name) in configs().into_iter().zip(CONFIGS) {
        let got = check_split_invariance(data, |pieces| decode(pieces, &config));
        check_items(data, &got, &config, name);
    }
}

fn decode(pieces: &[&[u8]], config: &DecoderConfig) -> Decoding {
    let mut decoder = CommandDecoder::new(config.clone());
    let limits = Limits {
        max_retained: config.max_line_length.max(config.max_auth_line_length),
        max_stalls: 0,
    };
    let fed = feed(pieces.iter().copied(), limits, |buf| {
        let d = decoder.decode(buf);
        if d.consumed == 0 && d.item.is_none() {
            return Step::NeedMore;
        }
        assert!(d.consumed > 0, "an item without consuming anything: {d:?}");
        let wire = buf
            .get(..d.consumed)
            .unwrap_or_else(|| panic!("consumed {} of {} bytes", d.consumed, buf.len()))
            .to_vec();
        Step::Advance {
            consumed: d.consumed,
            event: (wire, d.item.map(|r| r.map(Command::into_owned))),
        }
    });
    let mut items = Vec::new();
    let mut pending = Vec::new();
    for (wire, item) in fed.events {
        pending.extend_from_slice(&wire);
        if let Some(result) = item {
            items.push(Item {
                wire: std::mem::take(&mut pending),
                result,
            });
        }
    }
    Decoding {
        items,
        discarding: pending,
        tail: fed.retained,
    }
}

/// Asserts the per-item properties of one decoding of `data`.
fn check_items(data: &[u8], got: &Decoding, config: &DecoderConfig, name: &str) {
    let mut rebuilt = Vec::new();
    for item in &got.items {
        rebuilt.extend_from_slice(&item.wire);
    }
    rebuilt.extend_from_slice(&got.discarding);
    rebuilt.extend_from_slice(&got.tail);
    assert_eq!(
        rebuilt, data,
        "[{name}] items and tail do not cover the input"
    );
    // Under `Strict` only CRLF ends a line; otherwise any LF does.
    let strict = config.line_endings == LineEndingPolicy::Strict;
    let line_end = |b: &[u8]| {
        if strict {
            b.windows(2).position(|w| w == b"\r\n").map(|i| i + 1)
        } else {
            b.iter().position(|&c| c == b'\n')
        }
    };
    assert_eq!(
        line_end(&got.discarding),
        None,
        "[{name}] a line end inside a discarded tail"
    );
    assert_eq!(
        line_end(&got.tail),
        None,
        "[{name}] a line end left in the tail"
    );

    for item in &got.items {
        let wire = &item.wire;
        assert_eq!(
            line_end(wire),
            Some(wire.len() - 1),
            "[{name}] an item must cover one line through its end: {item:?}"
        );
        let is_auth = wire.len() >= 5 && wire[..5].eq_ignore_ascii_case(b"AUTH ");
        let limit = if is_auth {
            config.max_auth_line_length
        } else {
            config.max_line_length
        };
        if let Err(e @ (CommandError::LineTooLong | CommandError::AuthLineTooLong)) = item.result {
            assert!(wire.len() > limit, "[{name}] {e:?} for {wire:?}");
            assert_eq!(
                e == CommandError::AuthLineTooLong,
                is_auth,
                "[{name}] {e:?} for {wire:?}"
            );
            continue;
        }
        assert!(
            wire.len() <= limit,
            "[{name}] over-long line decoded: {item:?}"
        );
        let content = wire
            .strip_suffix(b"\n")
            .map(|c| c.strip_suffix(b"\r").unwrap_or(c))
            .unwrap_or(wire);
        // Under `Strict` every item ends in CRLF, and a bare LF can only
        // be inside it.
        let bad_ending = content.contains(&b'\r') || (strict && content.contains(&b'\n'));
        if bad_ending {
            assert_eq!(
                item.result,
                Err(CommandError::BareLineEnding),
                "[{name}] {wire:?}"
            );
            continue;
        }
        let direct = Command::parse_with(content, &config.parse).map(Command::into_owned);
        assert_eq!(
            item.result, direct,
            "[{name}] the decoder and Command::parse_with disagree on {content:?}"
        );
        if let Ok(cmd) = &item.result {
            check_round_trip(cmd);
        }
    }
}

/// A decoded or built command encodes to one canonical line that parses
/// back to the same command.
pub fn check_round_trip(cmd: &Command<'_>) {
    let wire = cmd.to_bytes();
    let line = wire
        .strip_suffix(b"\r\n")
        .unwrap_or_else(|| panic!("{cmd:?} encoded without CRLF: {wire:?}"));
    assert!(
        !line.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)),
        "{cmd:?} encoded CR, LF or NUL inside its line: {wire:?}"
    );
    let mut appended = b"prefix".to_vec();
    cmd.write_to(&mut appended);
    assert_eq!(&appended[6..], &wire[..], "write_to and to_bytes differ");
    let again = Command::parse(line).unwrap_or_else(|e| {
        panic!(
            "{cmd:?} encoded as {:?}, which does not parse: {e:?}",
            String::from_utf8_lossy(&wire)
        )
    });
    assert_eq!(
        &again,
        cmd,
        "{:?} parsed back to a different command",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(again.to_bytes(), wire, "the encoding is not canonical");
    assert_eq!(&cmd.clone().into_owned(), cmd, "into_owned changed {cmd:?}");
}
