//! Target `data`: the server's DATA body decoder
//! (`smtp_proto::data::DataDecoder`) on arbitrary bytes.
//!
//! The input is what a client sends after the `354` reply. It is decoded
//! under both bare line ending policies, with a short and the default line
//! limit and a small size limit, under every cut of
//! [`crate::split::cuts`], and the target asserts:
//!
//! - the caller contract of [`crate::stream::feed`]; chunks are never
//!   empty; `NeedMore` consumes everything it was given; after the end,
//!   calls consume nothing and report the same end again;
//! - the same content, end and summary come out however the input is cut;
//! - all of it equals [`model`], a direct statement of RFC 5321 §4.1.1.4:
//!   the message ends at the first `.` CRLF that starts a line, a line
//!   starting only after a real CRLF (or at the very start); a leading dot
//!   of a line is removed when other characters follow it (a dot followed
//!   by a bare CR or LF is kept); nothing else ends the message (bare LF
//!   or CR never starts a line for the end, so `\n.\n`, `\r\n.\n`,
//!   `\n.\r\n`, `\r.\r\n` and `\r\n.\r` are content); under `Normalize`
//!   every bare CR and bare LF becomes CRLF and the line after it is
//!   un-stuffed like any other, under `Reject` the bytes pass through and
//!   are counted; the size, bare CR / LF counts and over-long line count of the
//!   summary match (a line's removed leading dot does not count toward its
//!   length, RFC 5321 §4.5.3.1.6), and so does the verdict;
//! - the bytes after the terminator are never consumed.

use smtp_proto::data::{BareEndingPolicy, DataDecoder, DataLimits, DataOutput, DataSummary};

use crate::split::check_split_invariance;
use crate::stream::{feed, Limits, Step};

/// The limits every input is decoded with.
pub fn limits() -> Vec<DataLimits> {
    let mut out = Vec::new();
    for policy in [BareEndingPolicy::Reject, BareEndingPolicy::Normalize] {
        out.push(DataLimits::default().with_bare_endings(policy));
        out.push(
            DataLimits::default()
                .with_bare_endings(policy)
                .with_max_line_len(4)
                .with_max_size(Some(16)),
        );
    }
    out
}

/// What decoding one input gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The content handed out.
    pub content: Vec<u8>,
    /// The summary, when the terminator was reached.
    pub end: Option<Summary>,
    /// Input bytes consumed.
    pub consumed: usize,
}

/// The comparable fields of a [`DataSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Content octets.
    pub size: u64,
    /// Bare CRs.
    pub bare_cr: u64,
    /// Bare LFs.
    pub bare_lf: u64,
    /// Lines over the limit.
    pub long_lines: u64,
    /// The verdict, printed.
    pub verdict: String,
}

fn summary(s: &DataSummary) -> Summary {
    Summary {
        size: s.size,
        bare_cr: s.bare_cr,
        bare_lf: s.bare_lf,
        long_lines: s.long_lines,
        verdict: format!("{:?}", s.verdict()),
    }
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    for limits in limits() {
        let got = check_split_invariance(data, |pieces| decode(pieces, limits));
        assert_eq!(
            got,
            model(data, limits),
            "decoder and model disagree ({limits:?})"
        );
    }
}

/// Decodes `pieces` with a fresh decoder, the way a server reads a body.
pub fn decode(pieces: &[&[u8]], limits: DataLimits) -> Body {
    let mut decoder = DataDecoder::new(limits);
    let mut ended: Option<DataSummary> = None;
    let fed = feed(
        pieces.iter().copied(),
        // `NeedMore` is checked to consume everything above; after the end
        // the rest stays in the buffer for the next command.
        Limits {
            max_retained: usize::MAX,
            max_stalls: 1,
        },
        |buf| {
            if let Some(end) = ended {
                // After the end: nothing more is consumed, the end repeats.
                let step = decoder.decode(buf);
                assert_eq!(step.consumed, 0, "consumed after the end");
                assert_eq!(step.output, DataOutput::End(end), "a different end");
                assert!(decoder.is_done());
                return Step::NeedMore;
            }
            let step = decoder.decode(buf);
            match step.output {
                DataOutput::Chunk(c) => {
                    assert!(!c.is_empty(), "an empty chunk");
                    Step::Advance {
                        consumed: step.consumed,
                        event: Some(c.to_vec()),
                    }
                }
                DataOutput::NeedMore => {
                    assert_eq!(step.consumed, buf.len(), "NeedMore left bytes behind");
                    assert!(!decoder.is_done());
                    if step.consumed == 0 {
                        Step::NeedMore
                    } else {
                        Step::Advance {
                            consumed: step.consumed,
                            event: None,
                        }
                    }
                }
                DataOutput::End(s) => {
                    assert!(decoder.is_done());
                    assert_eq!(decoder.summary(), s);
                    ended = Some(s);
                    Step::Advance {
                        consumed: step.consumed,
                        event: None,
                    }
                }
            }
        },
    );
    Body {
        content: fed.events.into_iter().flatten().flatten().collect(),
        end: ended.as_ref().map(summary),
        consumed: fed.consumed,
    }
}

/// The body a server must see for `input`, stated directly.
pub fn model(input: &[u8], limits: DataLimits) -> Body {
    // The end: the first `.` CRLF at the start of the input or right
    // after a CRLF.
    let mut end = None;
    let mut p = 0;
    loop {
        if input.get(p..p + 3) == Some(b".\r\n") {
            end = Some(p);
            break;
        }
        match memchr_crlf(input, p) {
            Some(q) => p = q + 2,
            None => break,
        }
    }
    let region = &input[..end.unwrap_or(input.len())];
    let normalize = limits.bare_endings == BareEndingPolicy::Normalize;

    // One walk over the region. A line starts at the start, after each
    // CRLF, and under Normalize after each bare CR or LF (written out as
    // CRLF). A leading dot is removed when other characters follow it on
    // the line, kept when a bare CR or LF follows it (the line is only the
    // dot, and it is not the end), and held back while the input ends
    // before that is known. Line lengths are counted between line ends
    // (CRLF, bare LF, and under Normalize bare CR) without a removed dot
    // (RFC 5321 §4.5.3.1.6: "not counting the leading dot duplicated for
    // transparency"); a line still open at the end is not counted.
    #[derive(Clone, Copy, PartialEq)]
    enum Start {
        Real,
        Bare,
    }
    let mut content = Vec::with_capacity(region.len());
    let (mut bare_cr, mut bare_lf, mut long_lines) = (0u64, 0u64, 0u64);
    let mut len = 0usize;
    let mut end_line = |len: &mut usize| {
        if *len > limits.max_line_len {
            long_lines += 1;
        }
        *len = 0;
    };
    let mut start = Some(Start::Real);
    let mut i = 0;
    while i < region.len() {
        if let (Some(kind), b'.') = (start.take(), region[i]) {
            let kept = match (kind, region.get(i + 1), region.get(i + 2)) {
                (_, None, _) | (Start::Real, Some(b'\r'), None) => break,
                (_, Some(b'\n'), _) | (Start::Bare, Some(b'\r'), _) => true,
                (Start::Real, Some(b'\r'), Some(_)) => true,
                _ => false,
            };
            if !kept {
                i += 1;
                continue;
            }
        }
        match region[i] {
            b'\r' if region.get(i + 1) == Some(&b'\n') => {
                content.extend_from_slice(b"\r\n");
                end_line(&mut len);
                start = Some(Start::Real);
                i += 2;
                continue;
            }
            // A CR at the end of the input: not yet known to be bare.
            b'\r' if i + 1 == region.len() && end.is_none() => break,
            b'\r' if normalize => {
                bare_cr += 1;
                content.extend_from_slice(b"\r\n");
                end_line(&mut len);
                start = Some(Start::Bare);
            }
            b'\r' => {
                bare_cr += 1;
                content.push(b'\r');
                len += 1;
            }
            b'\n' => {
                bare_lf += 1;
                content.extend_from_slice(if normalize { b"\r\n" } else { b"\n" });
                end_line(&mut len);
                if normalize {
                    start = Some(Start::Bare);
                }
            }
            b => {
                content.push(b);
                len += 1;
            }
        }
        i += 1;
    }

    match end {
        Some(p) => {
            let s = Summary {
                size: content.len() as u64,
                bare_cr,
                bare_lf,
                long_lines,
                verdict: String::new(),
            };
            let mut real = DataSummary::default();
            real.size = s.size;
            real.bare_cr = bare_cr;
            real.bare_lf = bare_lf;
            real.long_lines = long_lines;
            real.policy = limits.bare_endings;
            real.max_size = limits.max_size;
            Body {
                content,
                end: Some(summary(&real)),
                consumed: p + 3,
            }
        }
        None => Body {
            content,
            end: None,
            consumed: input.len(),
        },
    }
}

/// The index of the first CRLF at or after `from`.
fn memchr_crlf(input: &[u8], from: usize) -> Option<usize> {
    input
        .get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| i + from)
}
