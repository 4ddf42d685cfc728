//! Line framing: finds the end of each SMTP line in a caller-owned buffer.
//!
//! The framer is the only part of the codecs that can say "need more
//! input". It finds the first CR or LF of each line (short lines word by
//! word inline, longer ones with `memchr`), remembers how far it has
//! already scanned so that a line arriving one byte at a time still costs
//! O(n), enforces a maximum line length, and after an over-long line throws
//! the rest of that line away (through its line feed) so that the tail is
//! never parsed as a command (RFC 5321 §4.5.3.1.4).
//!
//! ```
//! use smtp_proto::framer::{Frame, LineFramer};
//!
//! let mut framer = LineFramer::new();
//! let buf = b"NOOP\r\nQUI";
//! match framer.next_frame(buf, 512) {
//!     Frame::Line(line) => {
//!         assert_eq!(&buf[..line.content_len], b"NOOP");
//!         assert_eq!(line.consumed, 6);
//!         assert!(!line.bare_line_ending());
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! // The caller drops the 6 consumed bytes; "QUI" needs more input.
//! assert_eq!(framer.next_frame(&buf[6..], 512), Frame::Incomplete);
//! ```

/// How a complete line ended, and whether it carried a stray CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Length of the line's content, without its terminator.
    pub content_len: usize,
    /// Bytes the line takes in the buffer, terminator included.
    pub consumed: usize,
    /// The line ended with a line feed that had no carriage return before it.
    pub bare_lf: bool,
    /// The content holds a carriage return that is not followed by a line feed.
    pub bare_cr: bool,
}

impl Line {
    /// True when the line ended in a bare LF or carries a bare CR.
    #[must_use]
    pub fn bare_line_ending(&self) -> bool {
        self.bare_lf || self.bare_cr
    }
}

/// What [`LineFramer::next_frame`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Frame {
    /// A complete line is at the start of the buffer.
    Line(Line),
    /// Bytes of an over-long line were thrown away: the caller drops
    /// `consumed` bytes from the front of its buffer. When `end` is true the
    /// line's terminator was reached and the caller reports the error (once);
    /// otherwise more of the same line is still to come and will be
    /// discarded too.
    Discarded {
        /// Bytes to drop from the front of the buffer.
        consumed: usize,
        /// The over-long line ended within these bytes.
        end: bool,
    },
    /// No complete line yet: read more bytes and call again with the same
    /// buffer extended (nothing was consumed).
    Incomplete,
}

/// A resumable CRLF line framer with a length limit.
#[derive(Debug, Clone, Default)]
pub struct LineFramer {
    /// Bytes at the front of the buffer already known to hold no LF.
    scanned: usize,
    /// Inside an over-long line, discarding until its LF.
    discarding: bool,
    /// The scanned bytes hold a CR that is not followed by LF.
    bare_cr: bool,
}

impl LineFramer {
    /// A framer at the start of a line.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            scanned: 0,
            discarding: false,
            bare_cr: false,
        }
    }

    /// Forget any partial scan (for example after the buffer was replaced).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// True while the rest of an over-long line is being thrown away.
    #[must_use]
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// At the start of a line, with nothing scanned or being discarded.
    #[inline(always)]
    pub(crate) fn is_fresh(&self) -> bool {
        !self.discarding && self.scanned == 0 && !self.bare_cr
    }

    /// The line at the front of `buf` when it is plain and ends in CR LF
    /// within `max_len` octets: `(content length, consumed)`. This is
    /// exactly the line [`LineFramer::next_plain_frame`] reports as plain
    /// and CR LF terminated when the framer [`is_fresh`](Self::is_fresh);
    /// it changes no state, so a caller may use it instead for such lines.
    #[inline(always)]
    pub(crate) fn plain_crlf_line(buf: &[u8], max_len: usize) -> Option<(usize, usize)> {
        let window = buf.get(..buf.len().min(max_len.max(1)))?;
        let p = first_special(window)?;
        match window.get(p..p + 2) {
            Some([b'\r', b'\n']) => Some((p, p + 2)),
            _ => None,
        }
    }

    /// [`LineFramer::next_frame`], and whether the line is plain: ASCII
    /// without any octet below 14 (so no NUL, CR or LF) in its content.
    ///
    /// A fresh line (no earlier partial scan) is looked at word by word, once,
    /// for its end and for such octets together. A line that is not plain, or
    /// not complete within the limit, goes through [`LineFramer::next_frame`]
    /// (which resumes, so a line fed byte by byte still costs O(n)).
    #[inline(always)]
    pub(crate) fn next_plain_frame(&mut self, buf: &[u8], max_len: usize) -> (Frame, bool) {
        if !self.discarding && self.scanned == 0 && !self.bare_cr {
            let window = &buf[..buf.len().min(max_len.max(1))];
            if let Some(p) = first_special(window) {
                match window[p] {
                    b'\r' if window.get(p + 1) == Some(&b'\n') => {
                        let line = Line {
                            content_len: p,
                            consumed: p + 2,
                            bare_lf: false,
                            bare_cr: false,
                        };
                        return (Frame::Line(line), true);
                    }
                    b'\n' => {
                        let line = Line {
                            content_len: p,
                            consumed: p + 1,
                            bare_lf: true,
                            bare_cr: false,
                        };
                        return (Frame::Line(line), true);
                    }
                    _ => {}
                }
            }
        }
        (self.next_frame(buf, max_len), false)
    }

    /// Looks for the next line at the start of `buf`.
    ///
    /// `max_len` is the longest line accepted, terminator included. `buf`
    /// must start where the previous call's consumed bytes ended; when the
    /// previous call returned [`Frame::Incomplete`], `buf` must start with
    /// the same bytes as before (it may have grown).
    pub fn next_frame(&mut self, buf: &[u8], max_len: usize) -> Frame {
        if self.discarding {
            return match memchr::memchr(b'\n', buf) {
                Some(pos) => {
                    self.discarding = false;
                    self.scanned = 0;
                    Frame::Discarded {
                        consumed: pos + 1,
                        end: true,
                    }
                }
                None if buf.is_empty() => Frame::Incomplete,
                None => Frame::Discarded {
                    consumed: buf.len(),
                    end: false,
                },
            };
        }
        // One pass finds CR or LF: a CR directly followed by LF ends the
        // line, any other CR is remembered as a bare CR, and an LF reached
        // first is a bare LF. Only look as far as a line may reach: one past
        // the limit is enough to know the line is too long.
        let window_end = buf.len().min(max_len.max(1));
        let mut at = self.scanned.min(buf.len());
        loop {
            let found = match buf.get(at..window_end) {
                Some(window) => find_cr_or_lf(window).map(|p| p + at),
                None => None,
            };
            let Some(pos) = found else { break };
            if buf.get(pos) == Some(&b'\n') {
                return self.line(pos, pos + 1, true);
            }
            match buf.get(pos + 1) {
                Some(b'\n') if pos + 1 < window_end => {
                    return self.line(pos, pos + 2, false);
                }
                // The LF lies past the limit: the line is too long.
                Some(b'\n') => break,
                Some(_) => {
                    self.bare_cr = true;
                    at = pos + 1;
                }
                // A CR ends the input: whether an LF follows is not known
                // yet, so scanning resumes at this CR.
                None if buf.len() < max_len => {
                    self.scanned = pos;
                    return Frame::Incomplete;
                }
                None => break,
            }
        }
        if buf.len() >= max_len {
            // No terminator within the limit: the line is too long. Drop
            // what we hold and keep dropping through the next LF.
            self.scanned = 0;
            self.bare_cr = false;
            self.discarding = true;
            match memchr::memchr(b'\n', &buf[window_end..]) {
                Some(pos) => {
                    self.discarding = false;
                    Frame::Discarded {
                        consumed: window_end + pos + 1,
                        end: true,
                    }
                }
                None => Frame::Discarded {
                    consumed: buf.len(),
                    end: false,
                },
            }
        } else {
            self.scanned = buf.len();
            Frame::Incomplete
        }
    }

    fn line(&mut self, content_len: usize, consumed: usize, bare_lf: bool) -> Frame {
        let bare_cr = self.bare_cr;
        self.scanned = 0;
        self.bare_cr = false;
        Frame::Line(Line {
            content_len,
            consumed,
            bare_lf,
            bare_cr,
        })
    }
}

/// The first CR or LF in `hay`.
///
/// Most SMTP lines are short, and for them the set-up cost of a SIMD search
/// is larger than the search: the first 32 bytes are looked at inline, eight
/// at a time, and only a longer line is handed to `memchr2`.
fn find_cr_or_lf(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const INLINE: usize = 32;
    let mut off = 0;
    while off < INLINE {
        let Some(chunk) = hay.get(off..).and_then(<[u8]>::first_chunk::<8>) else {
            // Fewer than eight bytes left.
            let tail = hay.get(off..)?;
            return tail
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .map(|p| p + off);
        };
        let w = u64::from_le_bytes(*chunk);
        let cr = w ^ (ONES * u64::from(b'\r'));
        let lf = w ^ (ONES * u64::from(b'\n'));
        // The lowest high bit marks the first zero byte exactly (borrows
        // only make false marks above a true one).
        let found = ((cr.wrapping_sub(ONES) & !cr) | (lf.wrapping_sub(ONES) & !lf)) & HIGH;
        if found != 0 {
            return Some(off + (found.trailing_zeros() / 8) as usize);
        }
        off += 8;
    }
    memchr::memchr2(b'\r', b'\n', hay.get(off..)?).map(|p| p + off)
}

/// The position of the first octet of `b` that is below 14 (NUL, TAB, LF,
/// CR and the like) or not ASCII.
///
/// Eight octets at a time: for a word `x`, `(x - 0x0e * LO) | x` has the
/// high bit of an octet set where that octet is below 14 or has its own
/// high bit set. A borrow can only carry past an octet below 14, so the
/// lowest flagged octet is always a true one.
#[inline]
pub(crate) fn first_special(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let m = (x.wrapping_sub(LO * 14) | x) & HI;
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| !(14..0x80).contains(&c))
        .map(|p| base + p)
}

/// The length of the run of visible ASCII octets (`!` to `~`) at the start
/// of `b`, eight octets at a time.
///
/// For a word `x`, an octet is outside the run when it is below `!` (the
/// borrow test of [`first_special`]) or at least DEL (adding one to its low
/// seven bits, or its own high bit, sets the high bit; no carry leaves the
/// octet). The lowest flagged octet is always a true one.
#[inline]
pub(crate) fn visible_run(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let below = x.wrapping_sub(LO * u64::from(b'!')) & !x;
        let above = ((x & !HI) + LO) | x;
        let m = (below | above) & HI;
        if m != 0 {
            return base + (m.trailing_zeros() / 8) as usize;
        }
        base += 8;
    }
    base + words
        .remainder()
        .iter()
        .take_while(|&&c| (b'!'..=b'~').contains(&c))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut f = LineFramer::new();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            match f.next_frame(&input[pos..], max) {
                Frame::Line(l) => {
                    out.push(Ok(input[pos..pos + l.content_len].to_vec()));
                    pos += l.consumed;
                }
                Frame::Discarded { consumed, end } => {
                    if end {
                        out.push(Err("too long"));
                    }
                    pos += consumed;
                }
                Frame::Incomplete => return out,
            }
        }
    }

    #[test]
    fn finds_crlf_lines() {
        assert_eq!(
            lines(b"A\r\nBB\r\nC", 512),
            vec![Ok(b"A".to_vec()), Ok(b"BB".to_vec())]
        );
    }

    #[test]
    fn overlong_line_tail_is_discarded_not_parsed() {
        let mut input = vec![b'X'; 600];
        input.extend_from_slice(b"RCPT TO:<victim@example.com>\r\nNOOP\r\n");
        assert_eq!(
            lines(&input, 512),
            vec![Err("too long"), Ok(b"NOOP".to_vec())]
        );
    }

    #[test]
    fn line_of_exactly_max_is_accepted() {
        let mut input = vec![b'a'; 510];
        input.extend_from_slice(b"\r\n");
        assert_eq!(lines(&input, 512).len(), 1);
        assert!(lines(&input, 512)[0].is_ok());
        let mut input = vec![b'a'; 511];
        input.extend_from_slice(b"\r\n");
        assert_eq!(lines(&input, 512), vec![Err("too long")]);
    }

    #[test]
    fn bare_endings_are_flagged() {
        let mut f = LineFramer::new();
        let Frame::Line(l) = f.next_frame(b"NOOP\n", 512) else {
            panic!()
        };
        assert!(l.bare_lf && !l.bare_cr);
        let Frame::Line(l) = f.next_frame(b"NO\rOP\r\n", 512) else {
            panic!()
        };
        assert!(!l.bare_lf && l.bare_cr);
    }

    #[test]
    fn resumes_byte_by_byte_with_same_result() {
        let input = b"EHLO a\r\nMAIL FROM:<>\r\n";
        let mut f = LineFramer::new();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in input {
            buf.push(b);
            if let Frame::Line(l) = f.next_frame(&buf, 512) {
                got.push(buf[..l.content_len].to_vec());
                buf.drain(..l.consumed);
            }
        }
        assert_eq!(got, vec![b"EHLO a".to_vec(), b"MAIL FROM:<>".to_vec()]);
    }

    #[test]
    fn endless_line_is_dropped_in_bounded_pieces() {
        let mut f = LineFramer::new();
        let chunk = vec![b'x'; 4096];
        let mut dropped = 0;
        for _ in 0..1000 {
            match f.next_frame(&chunk, 512) {
                Frame::Discarded { consumed, end } => {
                    assert!(!end);
                    dropped += consumed;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(dropped, 4096 * 1000);
        assert_eq!(
            f.next_frame(b"yy\r\nQUIT\r\n", 512),
            Frame::Discarded {
                consumed: 4,
                end: true
            }
        );
        assert!(matches!(f.next_frame(b"QUIT\r\n", 512), Frame::Line(_)));
    }

    #[test]
    fn first_special_finds_the_first_low_or_non_ascii_octet() {
        let naive = |b: &[u8]| b.iter().position(|&c| !(14..0x80).contains(&c));
        for len in 0..24 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[pos] = c;
                    // A second special octet further on must not hide the first.
                    if pos + 1 < len {
                        b[len - 1] = 0x0d;
                    }
                    assert_eq!(first_special(&b), naive(&b), "{b:?}");
                }
            }
            assert_eq!(first_special(&vec![b'~'; len]), None);
        }
        // Octets just above the limits do not count; 13 and 0x80 do.
        assert_eq!(
            first_special(b"\x0e\x7f\x0e\x7f\x0e\x7f\x0e\x7f\x0d"),
            Some(8)
        );
        assert_eq!(first_special(b"\x0e\x7f\x0e\x7f\x0e\x80"), Some(5));
    }

    #[test]
    fn plain_frames_agree_with_next_frame() {
        let cases: &[&[u8]] = &[
            b"NOOP\r\n",
            b"NOOP\n",
            b"\r\n",
            b"\n",
            b"NO\rOP\r\n",
            b"N\tOOP\r\n",
            b"caf\xc3\xa9\r\n",
            b"NOOP\r",
            b"NOOP",
            b"",
            b"AAAAAAAAAA\r\n",
            b"AAAAAAAA\r\n",
            b"AAAAAAA\r\n",
        ];
        for &case in cases {
            for max in [1, 4, 5, 6, 7, 9, 10, 12, 512] {
                let (frame, plain) = LineFramer::new().next_plain_frame(case, max);
                assert_eq!(
                    frame,
                    LineFramer::new().next_frame(case, max),
                    "{case:?} {max}"
                );
                if let (Frame::Line(l), true) = (frame, plain) {
                    let content = &case[..l.content_len];
                    assert!(content.iter().all(|&c| (14..0x80).contains(&c)));
                }
            }
        }
        // A line cut short by the read goes the resuming way afterwards.
        let mut f = LineFramer::new();
        assert_eq!(f.next_plain_frame(b"NOO", 512), (Frame::Incomplete, false));
        let (frame, _) = f.next_plain_frame(b"NOOP\r\n", 512);
        assert!(matches!(frame, Frame::Line(Line { content_len: 4, .. })));
    }

    #[test]
    fn visible_run_stops_at_the_first_space_control_del_or_non_ascii() {
        let naive = |b: &[u8]| {
            b.iter()
                .take_while(|&&c| (b'!'..=b'~').contains(&c))
                .count()
        };
        for len in 0..24 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[pos] = c;
                    if pos + 1 < len {
                        b[len - 1] = 0x7f;
                    }
                    assert_eq!(visible_run(&b), naive(&b), "{b:?}");
                }
            }
            assert_eq!(visible_run(&vec![b'~'; len]), len);
            assert_eq!(visible_run(&vec![b'!'; len]), len);
        }
    }
}
