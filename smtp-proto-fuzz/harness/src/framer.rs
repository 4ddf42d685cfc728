//! Target `framer`: the resumable line framer
//! (`smtp_proto::framer::LineFramer`), in both its modes: [`Mode::Lf`]
//! (`LineFramer::new`, any LF ends a line) and [`Mode::CrlfOnly`]
//! (`LineFramer::crlf_only`, only CR LF ends a line).
//!
//! The input is raw bytes as a peer would send them. For each mode and each
//! line length limit in [`MAX_LENS`] (plus one derived from the input) the
//! target frames the input under every cut of [`crate::split::cuts`] and
//! asserts:
//!
//! - every call consumes no more than the buffer holds, and a `Line` or
//!   `Discarded` frame consumes at least one byte;
//! - a `Line` is at most the limit long, terminator included; its content
//!   holds no line end; `bare_cr` is set exactly when the content holds a
//!   CR. In LF mode the content holds no LF, and the terminator is CRLF, or
//!   a bare LF exactly when `bare_lf` is set. In CRLF-only mode the
//!   terminator is always CRLF and `bare_lf` is set exactly when the content
//!   holds an LF;
//! - an over-long line never yields a `Line`: discarded runs are longer than
//!   the limit and end at the first line end, LF or CR LF by the mode, that
//!   CR possibly thrown away by an earlier call (or are still open at the
//!   end);
//! - the frames, lines with their terminators and discarded bytes, put back
//!   together reproduce the consumed prefix of the input exactly, and the
//!   unconsumed tail is the rest;
//! - memory stays bounded: when the framer asks for more input the buffer
//!   holds fewer bytes than the limit (none while discarding) and no line
//!   end; asking again with the same buffer gives `Incomplete` again;
//! - `is_discarding` tells the truth after every call, and `is_crlf_only`
//!   keeps the mode;
//! - the frames are the same under every cut, and equal to those of
//!   [`model`], a direct statement of the framing rules.

use smtp_proto::framer::{Frame, LineFramer};

use crate::split::{check_split_invariance, seed};
use crate::stream::{feed, Limits, Step};

/// Line length limits every input is framed with (terminator included).
/// Small limits make over-long lines reachable from short inputs; 512 is
/// the RFC 5321 command line limit.
pub const MAX_LENS: &[usize] = &[1, 2, 5, 16, 512];

/// Which line ends a framer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `LineFramer::new`: any LF ends a line.
    Lf,
    /// `LineFramer::crlf_only`: only CR LF ends a line.
    CrlfOnly,
}

/// Both modes, in the order the target runs them.
pub const MODES: &[Mode] = &[Mode::Lf, Mode::CrlfOnly];

impl Mode {
    /// A fresh framer of this mode.
    #[must_use]
    pub fn framer(self) -> LineFramer {
        match self {
            Mode::Lf => LineFramer::new(),
            Mode::CrlfOnly => LineFramer::crlf_only(),
        }
    }

    /// The index of the LF that ends the first line of `b`, if any.
    #[must_use]
    pub fn line_end(self, b: &[u8]) -> Option<usize> {
        match self {
            Mode::Lf => b.iter().position(|&c| c == b'\n'),
            Mode::CrlfOnly => b.windows(2).position(|w| w == b"\r\n").map(|i| i + 1),
        }
    }
}

/// One frame, with the bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A complete line within the limit.
    Line {
        /// The content, without its terminator.
        content: Vec<u8>,
        /// An LF without a CR before it: the terminator (LF mode), or in
        /// the content (CRLF-only mode).
        bare_lf: bool,
        /// The content holds a CR.
        bare_cr: bool,
    },
    /// An over-long line, thrown away.
    Overlong {
        /// Every byte thrown away, the line end included.
        bytes: Vec<u8>,
        /// The line's end was reached (otherwise the input ended first).
        ended: bool,
    },
}

impl Framed {
    /// The line's terminator as it was on the wire.
    fn terminator(&self, mode: Mode) -> &'static [u8] {
        match self {
            Framed::Line { bare_lf: true, .. } if mode == Mode::Lf => b"\n",
            Framed::Line { .. } => b"\r\n",
            Framed::Overlong { .. } => b"",
        }
    }

    fn wire_len(&self, mode: Mode) -> usize {
        match self {
            Framed::Line { content, .. } => content.len() + self.terminator(mode).len(),
            Framed::Overlong { bytes, .. } => bytes.len(),
        }
    }

    fn extend_wire(&self, mode: Mode, out: &mut Vec<u8>) {
        match self {
            Framed::Line { content, .. } => {
                out.extend_from_slice(content);
                out.extend_from_slice(self.terminator(mode));
            }
            Framed::Overlong { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
}

/// Everything framing one input produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The frames, in order.
    pub frames: Vec<Framed>,
    /// The unconsumed tail: an incomplete line.
    pub tail: Vec<u8>,
}

/// The fuzz target: checks `data` in both modes under every limit of
/// [`MAX_LENS`] and one limit derived from the input.
pub fn run(data: &[u8]) {
    let derived = 1 + usize::try_from(seed(data) % 97).unwrap_or(0);
    for &mode in MODES {
        for &max_len in MAX_LENS.iter().chain([&derived]) {
            check(data, max_len, mode);
        }
    }
}

/// Checks `data` with one line length limit (at least 1) in one mode.
pub fn check(data: &[u8], max_len: usize, mode: Mode) {
    let got = check_split_invariance(data, |pieces| frame(pieces, max_len, mode));
    assert_eq!(
        got,
        model(data, max_len, mode),
        "the framer disagrees with the model (limit {max_len}, {mode:?})"
    );
}

/// One call's result, before the pieces of a discarded line are merged.
enum Raw {
    Line(Framed),
    Discarded { bytes: Vec<u8>, end: bool },
}

/// Frames `pieces` with a fresh [`LineFramer`] of `mode` the way a reader
/// would, checking every call.
fn frame(pieces: &[&[u8]], max_len: usize, mode: Mode) -> Framing {
    assert!(max_len >= 1, "limits start at 1");
    let mut framer = mode.framer();
    let limits = Limits {
        max_retained: max_len - 1,
        max_stalls: 0,
    };
    // Length of the buffer prefix already seen to hold no line end while
    // the framer asked for more; the buffer only grows until something is
    // consumed, so each byte is checked about once.
    let mut no_lf_checked: usize = 0;
    // The last byte thrown away by the previous call, while discarding.
    let mut discarded_cr = false;
    let fed = feed(pieces.iter().copied(), limits, |buf| {
        let frame = framer.next_frame(buf, max_len);
        assert_eq!(framer.is_crlf_only(), mode == Mode::CrlfOnly);
        if frame != Frame::Incomplete {
            no_lf_checked = 0;
        }
        match frame {
            Frame::Line(line) => {
                assert!(
                    line.consumed <= max_len,
                    "a {}-byte line passed a limit of {max_len}",
                    line.consumed
                );
                let wire = buf
                    .get(..line.consumed)
                    .unwrap_or_else(|| panic!("{frame:?} beyond a {}-byte buffer", buf.len()));
                assert!(line.content_len <= line.consumed, "{frame:?}");
                let (content, terminator) = wire.split_at(line.content_len);
                let expected: &[u8] = if line.bare_lf && mode == Mode::Lf {
                    b"\n"
                } else {
                    b"\r\n"
                };
                assert_eq!(terminator, expected, "{frame:?} on {wire:?}");
                match mode {
                    Mode::Lf => assert!(!content.contains(&b'\n'), "LF inside {frame:?}"),
                    Mode::CrlfOnly => {
                        assert_eq!(mode.line_end(content), None, "CR LF inside {frame:?}");
                        assert_eq!(line.bare_lf, content.contains(&b'\n'), "{frame:?}");
                    }
                }
                assert_eq!(line.bare_cr, content.contains(&b'\r'), "{frame:?}");
                assert_eq!(line.bare_line_ending(), line.bare_lf || line.bare_cr);
                assert!(!framer.is_discarding(), "discarding after {frame:?}");
                Step::Advance {
                    consumed: line.consumed,
                    event: Raw::Line(Framed::Line {
                        content: content.to_vec(),
                        bare_lf: line.bare_lf,
                        bare_cr: line.bare_cr,
                    }),
                }
            }
            Frame::Discarded { consumed, end } => {
                let bytes = buf
                    .get(..consumed)
                    .unwrap_or_else(|| panic!("{frame:?} beyond a {}-byte buffer", buf.len()));
                // In CRLF-only mode a CR thrown away by the previous call
                // pairs with an LF at the start of this one.
                let ending = match (mode, bytes.first()) {
                    (Mode::CrlfOnly, Some(b'\n')) if discarded_cr => Some(0),
                    _ => mode.line_end(bytes),
                };
                if end {
                    assert_eq!(
                        ending,
                        Some(consumed - 1),
                        "{frame:?} must end at the first line end"
                    );
                } else {
                    assert_eq!(ending, None, "{frame:?} swallowed a line end");
                }
                discarded_cr = !end && bytes.last() == Some(&b'\r');
                assert_eq!(framer.is_discarding(), !end, "after {frame:?}");
                Step::Advance {
                    consumed,
                    event: Raw::Discarded {
                        bytes: bytes.to_vec(),
                        end,
                    },
                }
            }
            Frame::Incomplete => {
                assert_eq!(
                    framer.next_frame(buf, max_len),
                    Frame::Incomplete,
                    "asking again with the same buffer"
                );
                // One byte back, so that a CR LF across the mark is seen.
                let from = no_lf_checked.saturating_sub(1);
                let unchecked = buf.get(from..).unwrap_or_default();
                assert_eq!(
                    mode.line_end(unchecked),
                    None,
                    "Incomplete with a line end in the buffer"
                );
                no_lf_checked = buf.len();
                if framer.is_discarding() {
                    assert!(
                        buf.is_empty(),
                        "Incomplete while discarding with bytes left"
                    );
                }
                Step::NeedMore
            }
        }
    });

    // Merge the pieces of each discarded line into one frame.
    let mut frames = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    for raw in fed.events {
        match raw {
            Raw::Line(line) => {
                assert!(open.is_none(), "a line inside a discarded line");
                frames.push(line);
            }
            Raw::Discarded { bytes, end } => {
                let mut all = open.take().unwrap_or_default();
                all.extend_from_slice(&bytes);
                if end {
                    frames.push(Framed::Overlong {
                        bytes: all,
                        ended: true,
                    });
                } else {
                    open = Some(all);
                }
            }
        }
    }
    if let Some(bytes) = open {
        assert!(fed.retained.is_empty());
        frames.push(Framed::Overlong {
            bytes,
            ended: false,
        });
    }
    for f in &frames {
        if let Framed::Overlong { bytes, ended } = f {
            // An ended over-long line has more than `max_len` bytes before
            // its LF was even looked for; an open one has at least `max_len`.
            let min = if *ended { max_len + 1 } else { max_len };
            assert!(
                bytes.len() >= min,
                "a {}-byte line was thrown away under a limit of {max_len}",
                bytes.len()
            );
            let end = ended.then(|| bytes.len() - 1);
            assert_eq!(
                mode.line_end(bytes),
                end,
                "an over-long line thrown away past or short of its end"
            );
        }
    }

    // Accounting: the frames and the tail are exactly the input.
    let input = pieces.concat();
    let mut wire = Vec::with_capacity(input.len());
    for f in &frames {
        f.extend_wire(mode, &mut wire);
    }
    assert_eq!(
        wire.len(),
        fed.consumed,
        "frames and consumed bytes disagree"
    );
    wire.extend_from_slice(&fed.retained);
    assert!(wire == input, "the frames do not reproduce the input");

    Framing {
        frames,
        tail: fed.retained,
    }
}

/// The framing rules stated directly over the whole input.
///
/// From each line start: if the LF ending the line (any LF in LF mode, the
/// LF of the first CR LF in CRLF-only mode) lies within the first `max_len`
/// bytes, the bytes through it are a line (CRLF or, in LF mode only, bare LF
/// terminated). Otherwise, if at least `max_len` bytes are there, the line
/// is over-long and is thrown away through that same line end (or to the
/// end of the input). Otherwise the rest is an incomplete line.
#[must_use]
pub fn model(data: &[u8], max_len: usize, mode: Mode) -> Framing {
    let mut frames = Vec::new();
    let mut rest = data;
    loop {
        let lf = mode.line_end(rest);
        match lf {
            Some(i) if i < max_len => {
                let crlf = i > 0 && rest[i - 1] == b'\r';
                let content = &rest[..if crlf { i - 1 } else { i }];
                let bare_lf = match mode {
                    Mode::Lf => !crlf,
                    Mode::CrlfOnly => content.contains(&b'\n'),
                };
                frames.push(Framed::Line {
                    content: content.to_vec(),
                    bare_lf,
                    bare_cr: content.contains(&b'\r'),
                });
            }
            _ if !rest.is_empty() && rest.len() >= max_len => {
                let end = lf.map_or(rest.len(), |i| i + 1);
                frames.push(Framed::Overlong {
                    bytes: rest[..end].to_vec(),
                    ended: lf.is_some(),
                });
            }
            _ => {
                return Framing {
                    frames,
                    tail: rest.to_vec(),
                }
            }
        }
        let used = frames.last().map_or(0, |f| f.wire_len(mode));
        rest = &rest[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(content: &[u8]) -> Framed {
        Framed::Line {
            content: content.to_vec(),
            bare_lf: false,
            bare_cr: content.contains(&b'\r'),
        }
    }

    #[test]
    fn model_frames_crlf_lines_and_keeps_the_tail() {
        let m = model(b"EHLO a\r\nNOOP\r\nQU", 512, Mode::Lf);
        assert_eq!(m.frames, vec![line(b"EHLO a"), line(b"NOOP")]);
        assert_eq!(m.tail, b"QU");
    }

    #[test]
    fn model_throws_away_an_overlong_line_through_its_lf() {
        let m = model(b"XXXXXXXXRCPT\r\nNOOP\r\n", 8, Mode::Lf);
        assert_eq!(
            m.frames,
            vec![
                Framed::Overlong {
                    bytes: b"XXXXXXXXRCPT\r\n".to_vec(),
                    ended: true
                },
                line(b"NOOP"),
            ]
        );
        assert!(m.tail.is_empty());
    }

    #[test]
    fn model_flags_bare_endings_and_knows_dot_lf_is_a_bare_line() {
        let m = model(b"a\n.\nb\r.\r\n", 512, Mode::Lf);
        let bare = |c: &[u8]| Framed::Line {
            content: c.to_vec(),
            bare_lf: true,
            bare_cr: false,
        };
        assert_eq!(
            m.frames,
            vec![
                bare(b"a"),
                bare(b"."),
                Framed::Line {
                    content: b"b\r.".to_vec(),
                    bare_lf: false,
                    bare_cr: true
                }
            ]
        );
    }

    #[test]
    fn model_limit_counts_the_terminator() {
        assert_eq!(model(b"abc\r\n", 5, Mode::Lf).frames, vec![line(b"abc")]);
        assert_eq!(
            model(b"abcd\r\n", 5, Mode::Lf).frames,
            vec![Framed::Overlong {
                bytes: b"abcd\r\n".to_vec(),
                ended: true
            }]
        );
        // Four bytes without an LF under a limit of five may still become a line.
        assert_eq!(model(b"abcd", 5, Mode::Lf).tail, b"abcd");
        assert_eq!(
            model(b"abcde", 5, Mode::Lf).frames,
            vec![Framed::Overlong {
                bytes: b"abcde".to_vec(),
                ended: false
            }]
        );
    }

    #[test]
    fn crlf_only_model_keeps_bare_lfs_in_the_line() {
        let m = model(b"NOOP\nRCPT TO:<x@y>\r\na\nb", 512, Mode::CrlfOnly);
        assert_eq!(
            m.frames,
            vec![Framed::Line {
                content: b"NOOP\nRCPT TO:<x@y>".to_vec(),
                bare_lf: true,
                bare_cr: false
            }]
        );
        assert_eq!(m.tail, b"a\nb");
    }

    #[test]
    fn crlf_only_model_throws_away_an_overlong_line_through_its_crlf() {
        let m = model(b"XXXXXXXX\nRCPT\n\r\nNOOP\r\n", 8, Mode::CrlfOnly);
        assert_eq!(
            m.frames,
            vec![
                Framed::Overlong {
                    bytes: b"XXXXXXXX\nRCPT\n\r\n".to_vec(),
                    ended: true
                },
                line(b"NOOP"),
            ]
        );
        // The CR LF may straddle the limit.
        let m = model(b"XXXXXXX\r\nNOOP\r\n", 8, Mode::CrlfOnly);
        assert_eq!(
            m.frames,
            vec![
                Framed::Overlong {
                    bytes: b"XXXXXXX\r\n".to_vec(),
                    ended: true
                },
                line(b"NOOP"),
            ]
        );
        // Bare LFs only: over-long once the limit is reached.
        let m = model(b"a\na\na\na\n", 8, Mode::CrlfOnly);
        assert_eq!(
            m.frames,
            vec![Framed::Overlong {
                bytes: b"a\na\na\na\n".to_vec(),
                ended: false
            }]
        );
    }

    #[test]
    fn target_accepts_the_dangerous_sequences() {
        for input in [
            &b"DATA\r\nbody\r\n.\r\nQUIT\r\n"[..],
            b"body\n.\nMAIL FROM:<a@b>\r\n",
            b"body\r\n.\rRCPT TO:<x@y>\r\n",
            b"\r\r\n\n\r",
            b"",
        ] {
            run(input);
        }
        let mut long = vec![b'X'; 700];
        long.extend_from_slice(b"RCPT TO:<victim@example.com>\r\nNOOP\r\n");
        run(&long);
        let mut long = vec![b'X'; 700];
        long.extend_from_slice(b"\nRCPT TO:<victim@example.com>\r\nNOOP\nQUIT\r\n");
        run(&long);
        // A CR as the last octet within the limit, its LF just past it.
        let mut at_limit = vec![b'X'; 511];
        at_limit.extend_from_slice(b"\r\nNOOP\r\n");
        run(&at_limit);
        at_limit[512] = b'Y';
        run(&at_limit);
    }
}
