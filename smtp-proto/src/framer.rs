//! Line framing: finds the end of each SMTP line in a caller-owned buffer.
//!
//! The framer is the only part of the codecs that can say "need more
//! input". It finds the first CR or LF of each line (short lines word by
//! word inline, longer ones with `memchr`), remembers how far it has
//! already scanned so that a line arriving one byte at a time still costs
//! O(n), enforces a maximum line length, and after an over-long line throws
//! the rest of that line away (through its end) so that the tail is never
//! parsed as a command (RFC 5321 §4.5.3.1.4).
//!
//! A framer works in one of two modes, chosen when it is made:
//!
//! - [`LineFramer::crlf_only`]: only CR LF ends a line (RFC 5321 §2.3.8).
//!   A bare LF is part of the line, which runs on to the next CR LF and is
//!   reported with [`Line::bare_lf`] set; an over-long line is thrown away
//!   through the next CR LF. A peer and a front end that both end lines
//!   only at CR LF then see the same lines. The command decoder uses this
//!   mode under [`LineEndingPolicy::Strict`](crate::command::LineEndingPolicy::Strict).
//! - [`LineFramer::new`]: any LF ends a line, with or without a CR before
//!   it, and an over-long line is thrown away through the next LF. For
//!   peers that may end lines with a bare LF
//!   ([`LineEndingPolicy::AllowBareLf`](crate::command::LineEndingPolicy::AllowBareLf),
//!   and the reply decoder).
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

/// How a complete line ended, and whether it carried a stray CR or LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Length of the line's content, without its terminator.
    pub content_len: usize,
    /// Bytes the line takes in the buffer, terminator included.
    pub consumed: usize,
    /// A line feed without a carriage return before it. For a framer made
    /// with [`LineFramer::new`]: the line ended with such an LF (its
    /// terminator is that one octet). For a [`LineFramer::crlf_only`]
    /// framer: the content holds such an LF (the line still ends in CR LF).
    pub bare_lf: bool,
    /// The content holds a carriage return that is not followed by a line feed.
    pub bare_cr: bool,
}

impl Line {
    /// True when the line holds or ended in a bare LF, or carries a bare CR.
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

/// A resumable line framer with a length limit.
///
/// [`LineFramer::new`] (and `Default`) ends lines at any LF;
/// [`LineFramer::crlf_only`] only at CR LF (see the [module](self) docs).
#[derive(Debug, Clone, Default)]
pub struct LineFramer {
    /// Bytes at the front of the buffer already scanned, holding no line
    /// end. Whenever `bare_cr` or `bare_lf` is set this is above zero.
    scanned: usize,
    /// Inside an over-long line, discarding until its end.
    discarding: bool,
    /// The scanned bytes hold a CR that is not followed by LF.
    bare_cr: bool,
    /// CRLF-only mode: the scanned bytes hold an LF without CR before it.
    bare_lf: bool,
    /// CRLF-only mode, while discarding: the last byte thrown away was a
    /// CR, so an LF at the start of the next input ends the line.
    after_cr: bool,
    /// Only CR LF ends a line.
    crlf_only: bool,
}

impl LineFramer {
    /// A framer at the start of a line that ends lines at any LF, bare or
    /// after a CR ([`Line::bare_lf`] tells which).
    #[must_use]
    pub const fn new() -> Self {
        Self::with_mode(false)
    }

    /// A framer at the start of a line that ends lines only at CR LF.
    ///
    /// A bare LF is content: the line runs on to the next CR LF and is
    /// reported with [`Line::bare_lf`] set. The length limit counts the
    /// whole line, so a peer that only ever sends bare LFs gets an over-long
    /// line, thrown away through the next CR LF.
    ///
    /// ```
    /// use smtp_proto::framer::{Frame, LineFramer};
    ///
    /// let mut framer = LineFramer::crlf_only();
    /// let buf = b"NOOP\nRCPT TO:<x@y.example>\r\nQUIT\r\n";
    /// let Frame::Line(line) = framer.next_frame(buf, 512) else {
    ///     panic!("a whole line")
    /// };
    /// // One line, up to the CR LF, flagged for its bare LF.
    /// assert_eq!(&buf[..line.content_len], b"NOOP\nRCPT TO:<x@y.example>");
    /// assert!(line.bare_lf);
    /// let rest = &buf[line.consumed..];
    /// assert!(matches!(framer.next_frame(rest, 512), Frame::Line(l) if !l.bare_lf));
    ///
    /// // An over-long line is thrown away through the next CR LF, past any
    /// // bare LF.
    /// let mut framer = LineFramer::crlf_only();
    /// let frame = framer.next_frame(b"XXXXXXXX\nRCPT TO:<x@y>\r\nQUIT\r\n", 8);
    /// assert_eq!(frame, Frame::Discarded { consumed: 24, end: true });
    /// ```
    #[must_use]
    pub const fn crlf_only() -> Self {
        Self::with_mode(true)
    }

    const fn with_mode(crlf_only: bool) -> Self {
        Self {
            scanned: 0,
            discarding: false,
            bare_cr: false,
            bare_lf: false,
            after_cr: false,
            crlf_only,
        }
    }

    /// True when only CR LF ends a line ([`LineFramer::crlf_only`]).
    #[must_use]
    pub fn is_crlf_only(&self) -> bool {
        self.crlf_only
    }

    /// Forget any partial scan (for example after the buffer was replaced).
    /// The mode stays.
    pub fn reset(&mut self) {
        *self = Self::with_mode(self.crlf_only);
    }

    /// True while the rest of an over-long line is being thrown away.
    #[must_use]
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// At the start of a line, with nothing scanned or being discarded.
    #[inline(always)]
    pub(crate) fn is_fresh(&self) -> bool {
        // `bare_cr` and `bare_lf` are only set with `scanned` above zero.
        !self.discarding && self.scanned == 0
    }

    /// The line at the front of `buf` when it is plain and ends in CR LF
    /// within `max_len` octets: `(content length, consumed)`. This is
    /// exactly the line [`LineFramer::next_plain_frame`] reports as plain
    /// and CR LF terminated when the framer [`is_fresh`](Self::is_fresh),
    /// in either mode; it changes no state, so a caller may use it instead
    /// for such lines.
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
        if self.is_fresh() {
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
                    // In CRLF-only mode a bare LF is content: the general
                    // scan below takes the line.
                    b'\n' if !self.crlf_only => {
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
    ///
    /// An over-long line is thrown away as it arrives, across calls, and
    /// the line after it is framed as usual:
    ///
    /// ```
    /// use smtp_proto::framer::{Frame, LineFramer};
    ///
    /// let mut framer = LineFramer::new();
    /// // 10 octets with no line end, over the limit of 8.
    /// let frame = framer.next_frame(b"AAAAAAAAAA", 8);
    /// assert_eq!(frame, Frame::Discarded { consumed: 10, end: false });
    /// assert!(framer.is_discarding());
    /// // The rest of that line, its end, and a new line.
    /// let buf = b"AAAA\r\nNOOP\r\n";
    /// let frame = framer.next_frame(buf, 8);
    /// assert_eq!(frame, Frame::Discarded { consumed: 6, end: true });
    /// let Frame::Line(line) = framer.next_frame(&buf[6..], 8) else {
    ///     panic!("a whole line");
    /// };
    /// assert_eq!((line.content_len, line.consumed), (4, 6));
    /// ```
    pub fn next_frame(&mut self, buf: &[u8], max_len: usize) -> Frame {
        if self.discarding {
            if buf.is_empty() {
                return Frame::Incomplete;
            }
            return self.discard(buf, 0);
        }
        // One pass finds CR or LF: a CR directly followed by LF ends the
        // line, any other CR is remembered as a bare CR, and an LF reached
        // first is a bare LF, which ends the line unless the framer is
        // CRLF-only. Only look as far as a line may reach: one past the
        // limit is enough to know the line is too long.
        let window_end = buf.len().min(max_len.max(1));
        let mut at = self.scanned.min(buf.len());
        loop {
            let found = match buf.get(at..window_end) {
                Some(window) => find_cr_or_lf(window).map(|p| p + at),
                None => None,
            };
            let Some(pos) = found else { break };
            if buf.get(pos) == Some(&b'\n') {
                // Bare: a CR before it would have been found first.
                if !self.crlf_only {
                    return self.line(pos, pos + 1, true);
                }
                self.bare_lf = true;
                at = pos + 1;
                continue;
            }
            match buf.get(pos + 1) {
                Some(b'\n') if pos + 1 < window_end => {
                    let bare_lf = self.bare_lf;
                    return self.line(pos, pos + 2, bare_lf);
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
            // what we hold and keep dropping through the line's end, which
            // lies at or after `window_end` (in CRLF-only mode its CR may be
            // the last byte before it).
            self.scanned = 0;
            self.bare_cr = false;
            self.bare_lf = false;
            self.discarding = true;
            self.after_cr = self.crlf_only
                && window_end
                    .checked_sub(1)
                    .and_then(|i| buf.get(i))
                    .is_some_and(|&b| b == b'\r');
            self.discard(buf, window_end)
        } else {
            self.scanned = buf.len();
            Frame::Incomplete
        }
    }

    /// Throws away `buf` from `from` through the end of the over-long line
    /// (the next LF, or in CRLF-only mode the next LF after a CR, that CR
    /// possibly the byte before `from` or the last byte of an earlier call,
    /// as `after_cr` tells), or all of `buf` when the end is not in it.
    fn discard(&mut self, buf: &[u8], from: usize) -> Frame {
        let rest = buf.get(from..).unwrap_or_default();
        let end = if self.crlf_only {
            let after_cr = self.after_cr;
            memchr::memchr_iter(b'\n', rest).find(|&p| match p.checked_sub(1) {
                Some(cr) => rest.get(cr) == Some(&b'\r'),
                None => after_cr,
            })
        } else {
            memchr::memchr(b'\n', rest)
        };
        match end {
            Some(pos) => {
                self.discarding = false;
                self.after_cr = false;
                self.scanned = 0;
                Frame::Discarded {
                    consumed: from + pos + 1,
                    end: true,
                }
            }
            None => {
                if let Some(&last) = rest.last() {
                    self.after_cr = self.crlf_only && last == b'\r';
                }
                Frame::Discarded {
                    consumed: buf.len(),
                    end: false,
                }
            }
        }
    }

    fn line(&mut self, content_len: usize, consumed: usize, bare_lf: bool) -> Frame {
        let bare_cr = self.bare_cr;
        self.scanned = 0;
        self.bare_cr = false;
        self.bare_lf = false;
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

    /// The frame of `consumed` discarded octets, `end` when they reach the
    /// end of the over-long line.
    fn discarded(consumed: usize, end: bool) -> Frame {
        Frame::Discarded { consumed, end }
    }

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
        assert_eq!(f.next_frame(b"yy\r\nQUIT\r\n", 512), discarded(4, true));
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
            b"NOOP\nQUIT\r\n",
            b"\nQUIT\r\n",
            b"NOOP\n\r\n",
        ];
        for mode in [LineFramer::new(), LineFramer::crlf_only()] {
            for &case in cases {
                for max in [1, 4, 5, 6, 7, 9, 10, 12, 512] {
                    let (frame, plain) = mode.clone().next_plain_frame(case, max);
                    assert_eq!(
                        frame,
                        mode.clone().next_frame(case, max),
                        "{case:?} {max} {mode:?}"
                    );
                    if let (Frame::Line(l), true) = (frame, plain) {
                        let content = &case[..l.content_len];
                        assert!(content.iter().all(|&c| (14..0x80).contains(&c)));
                        // The plain CR LF lines are exactly these.
                        if !l.bare_lf {
                            assert_eq!(
                                LineFramer::plain_crlf_line(case, max),
                                Some((l.content_len, l.consumed))
                            );
                        }
                    }
                }
            }
            // A line cut short by the read goes the resuming way afterwards.
            let mut f = mode.clone();
            assert_eq!(f.next_plain_frame(b"NOO", 512), (Frame::Incomplete, false));
            let (frame, _) = f.next_plain_frame(b"NOOP\r\n", 512);
            assert!(matches!(frame, Frame::Line(Line { content_len: 4, .. })));
        }
    }

    /// One item of a framing: a line, or an over-long line thrown away
    /// through its end (`TooLong`) or to the end of the input (`Open`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Item {
        Line {
            content: Vec<u8>,
            bare_lf: bool,
            bare_cr: bool,
        },
        TooLong,
        Open,
    }

    fn line_item(content: &[u8], bare_lf: bool) -> Item {
        Item::Line {
            content: content.to_vec(),
            bare_lf,
            bare_cr: content.contains(&b'\r'),
        }
    }

    /// Frames `input` delivered in pieces cut at `cuts` (ascending), the
    /// way a reader does: the buffer grows until something is consumed.
    /// Returns the items and the bytes still held at the end.
    fn feed(mut f: LineFramer, input: &[u8], cuts: &[usize], max: usize) -> (Vec<Item>, Vec<u8>) {
        let mut items = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        for &end in cuts.iter().chain([&input.len()]) {
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            loop {
                match f.next_frame(&buf, max) {
                    Frame::Line(l) => {
                        items.push(Item::Line {
                            content: buf[..l.content_len].to_vec(),
                            bare_lf: l.bare_lf,
                            bare_cr: l.bare_cr,
                        });
                        buf.drain(..l.consumed);
                    }
                    Frame::Discarded { consumed, end } => {
                        assert!(consumed > 0 || buf.is_empty());
                        if end {
                            items.push(Item::TooLong);
                        }
                        buf.drain(..consumed);
                        if consumed == 0 {
                            break;
                        }
                    }
                    Frame::Incomplete => break,
                }
            }
        }
        if f.is_discarding() {
            assert!(buf.is_empty());
            items.push(Item::Open);
        }
        (items, buf)
    }

    /// The framing rules over the whole input: a line ends at the first
    /// LF (`crlf_only == false`) or at the first CR LF; a line whose end
    /// lies beyond `max` octets, or with `max` octets and no end yet, is
    /// over-long and thrown away through that same end.
    fn model(input: &[u8], max: usize, crlf_only: bool) -> (Vec<Item>, Vec<u8>) {
        let mut items = Vec::new();
        let mut rest = input;
        loop {
            // The index of the terminator's first octet and its length.
            let end = if crlf_only {
                rest.windows(2).position(|w| w == b"\r\n").map(|i| (i, 2))
            } else {
                rest.iter().position(|&b| b == b'\n').map(|i| {
                    if i > 0 && rest[i - 1] == b'\r' {
                        (i - 1, 2)
                    } else {
                        (i, 1)
                    }
                })
            };
            match end {
                Some((i, n)) if i + n <= max => {
                    let content = &rest[..i];
                    let bare_lf = if crlf_only {
                        content.contains(&b'\n')
                    } else {
                        n == 1
                    };
                    items.push(line_item(content, bare_lf));
                    rest = &rest[i + n..];
                }
                Some((i, n)) => {
                    items.push(Item::TooLong);
                    rest = &rest[i + n..];
                }
                None if !rest.is_empty() && rest.len() >= max => {
                    items.push(Item::Open);
                    return (items, Vec::new());
                }
                None => return (items, rest.to_vec()),
            }
        }
    }

    /// Frames `input` whole, cut at every offset, and byte by byte; every
    /// run must agree with the model.
    fn check_splits(input: &[u8], max: usize, crlf_only: bool) {
        let framer = if crlf_only {
            LineFramer::crlf_only()
        } else {
            LineFramer::new()
        };
        let want = model(input, max, crlf_only);
        assert_eq!(
            feed(framer.clone(), input, &[], max),
            want,
            "whole {input:?} max {max} crlf_only {crlf_only}"
        );
        for cut in 0..=input.len() {
            assert_eq!(
                feed(framer.clone(), input, &[cut], max),
                want,
                "cut at {cut}: {input:?} max {max} crlf_only {crlf_only}"
            );
        }
        let every: Vec<usize> = (0..input.len()).collect();
        assert_eq!(
            feed(framer, input, &every, max),
            want,
            "byte by byte: {input:?} max {max} crlf_only {crlf_only}"
        );
    }

    #[test]
    fn crlf_only_keeps_bare_lfs_inside_the_line() {
        let input = b"NOOP\nRCPT TO:<x@y.example>\r\n\n\r\nQUIT\r\na\n\rb\r\n";
        let (items, tail) = feed(LineFramer::crlf_only(), input, &[], 512);
        assert_eq!(
            items,
            vec![
                line_item(b"NOOP\nRCPT TO:<x@y.example>", true),
                line_item(b"\n", true),
                line_item(b"QUIT", false),
                line_item(b"a\n\rb", true),
            ]
        );
        assert!(tail.is_empty());
        assert!(matches!(&items[3], Item::Line { bare_cr: true, .. }));
        // A bare LF at the end of the input is not a line end: more is needed.
        let mut f = LineFramer::crlf_only();
        assert_eq!(f.next_frame(b"NOOP\n", 512), Frame::Incomplete);
        assert_eq!(f.next_frame(b"NOOP\n\n", 512), Frame::Incomplete);
        assert_eq!(
            f.next_frame(b"NOOP\n\n\r\n", 512),
            Frame::Line(Line {
                content_len: 6,
                consumed: 8,
                bare_lf: true,
                bare_cr: false
            })
        );
        assert!(!f.is_discarding());
    }

    #[test]
    fn crlf_only_line_length_counts_the_bare_lfs() {
        // Bare LFs only: the line reaches the limit and is thrown away
        // through the next CR LF, never held whole.
        let mut f = LineFramer::crlf_only();
        let piece = b"NOOP\n".repeat(200);
        assert_eq!(f.next_frame(&piece, 512), discarded(1000, false));
        for _ in 0..100 {
            assert_eq!(f.next_frame(&piece, 512), discarded(1000, false));
        }
        assert_eq!(f.next_frame(b"x\r\nQUIT\r\n", 512), discarded(3, true));
        assert!(matches!(f.next_frame(b"QUIT\r\n", 512), Frame::Line(_)));
        // Exactly at the limit, terminator included: accepted.
        let mut line = b"a\n".repeat(255);
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), 512);
        let (items, _) = feed(LineFramer::crlf_only(), &line, &[], 512);
        assert_eq!(items, vec![line_item(&line[..510], true)]);
        let (items, _) = feed(LineFramer::crlf_only(), &line, &[], 511);
        assert_eq!(items, vec![Item::TooLong]);
    }

    #[test]
    fn crlf_only_overlong_line_is_discarded_through_crlf_past_bare_lfs() {
        let mut input = vec![b'X'; 600];
        input.extend_from_slice(b"\nRCPT TO:<victim@example.com>\n\rMAIL\nRCPT\r\nNOOP\r\n");
        assert_eq!(
            feed(LineFramer::crlf_only(), &input, &[], 512).0,
            vec![Item::TooLong, line_item(b"NOOP", false)]
        );
        check_splits(&input, 512, true);
        // The LF framer stops at the first LF, as before.
        assert_eq!(
            feed(LineFramer::new(), &input, &[], 512).0,
            vec![
                Item::TooLong,
                line_item(b"RCPT TO:<victim@example.com>", true),
                line_item(b"\rMAIL", true),
                line_item(b"RCPT", false),
                line_item(b"NOOP", false),
            ]
        );
    }

    #[test]
    fn crlf_only_discard_ends_at_a_crlf_split_across_calls() {
        // While discarding: CR at the end of one call, LF at the start of
        // the next.
        let mut f = LineFramer::crlf_only();
        let mut first = vec![b'X'; 600];
        first.push(b'\r');
        assert_eq!(f.next_frame(&first, 512), discarded(601, false));
        assert_eq!(f.next_frame(b"\nNOOP\r\n", 512), discarded(1, true));
        assert!(!f.is_discarding());
        assert!(matches!(
            f.next_frame(b"NOOP\r\n", 512),
            Frame::Line(Line { content_len: 4, .. })
        ));

        // The CR ends a call while discarding goes on: it counts only for
        // an LF right at the start of the next call.
        let mut f = LineFramer::crlf_only();
        assert!(matches!(
            f.next_frame(&first, 512),
            Frame::Discarded { end: false, .. }
        ));
        assert_eq!(
            f.next_frame(b"X\nNOOP\r\nQUIT\r\n", 512),
            discarded(8, true)
        );
        let mut f = LineFramer::crlf_only();
        assert!(matches!(
            f.next_frame(&first, 512),
            Frame::Discarded { end: false, .. }
        ));
        assert!(matches!(
            f.next_frame(b"XX", 512),
            Frame::Discarded { end: false, .. }
        ));
        assert_eq!(f.next_frame(b"\nNOOP\r\nQUIT\r\n", 512), discarded(7, true));

        // First detection: the line reaches the limit with a CR as its last
        // octet within it; the LF comes with the next call.
        let mut f = LineFramer::crlf_only();
        let mut at_limit = vec![b'X'; 511];
        at_limit.push(b'\r');
        assert_eq!(f.next_frame(&at_limit, 512), discarded(512, false));
        assert_eq!(f.next_frame(b"\nNOOP\r\n", 512), discarded(1, true));
        // ... or in the same call, just past the window.
        let mut f = LineFramer::crlf_only();
        let mut same = at_limit.clone();
        same.extend_from_slice(b"\nNOOP\r\n");
        assert_eq!(f.next_frame(&same, 512), discarded(513, true));
        // A bare CR just before the window end followed by another octet
        // is no line end.
        let mut f = LineFramer::crlf_only();
        let mut bare = at_limit.clone();
        bare.extend_from_slice(b"X\nRCPT\r\nNOOP\r\n");
        assert_eq!(f.next_frame(&bare, 512), discarded(512 + 8, true));
        for input in [&first, &same, &bare] {
            let mut input = input.clone();
            input.extend_from_slice(b"\nX\r\nNOOP\r\n");
            check_splits(&input, 512, true);
            check_splits(&input, 512, false);
        }
    }

    #[test]
    fn crlf_only_resumes_where_it_stopped() {
        // Fed byte by byte, each call scans only the new byte (a trailing
        // CR is looked at again once its successor arrives).
        let input = b"RCPT TO:<a@b.example>\n\rNOTIFY=NEVER\n\r\n";
        let mut f = LineFramer::crlf_only();
        let mut buf = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            buf.push(b);
            match f.next_frame(&buf, 512) {
                Frame::Incomplete => {
                    let expect = if b == b'\r' { buf.len() - 1 } else { buf.len() };
                    assert_eq!(f.scanned, expect, "after {i} bytes");
                }
                Frame::Line(l) => {
                    assert_eq!(i, input.len() - 1);
                    assert_eq!(l.consumed, input.len());
                    assert!(l.bare_lf && l.bare_cr);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn reset_keeps_the_mode() {
        let mut f = LineFramer::crlf_only();
        assert_eq!(f.next_frame(b"NOOP\nQU", 512), Frame::Incomplete);
        f.reset();
        assert!(f.is_crlf_only());
        assert!(matches!(
            f.next_frame(b"a\nb\r\n", 512),
            Frame::Line(Line {
                content_len: 3,
                bare_lf: true,
                ..
            })
        ));
        let mut f = LineFramer::new();
        f.reset();
        assert!(!f.is_crlf_only());
        assert!(!LineFramer::default().is_crlf_only());
        assert!(matches!(
            f.next_frame(b"a\nb\r\n", 512),
            Frame::Line(Line {
                content_len: 1,
                bare_lf: true,
                ..
            })
        ));
    }

    #[test]
    fn lf_framer_is_unchanged() {
        let input = b"NOOP\nRCPT TO:<x@y.example>\r\nQU";
        assert_eq!(
            feed(LineFramer::new(), input, &[], 512),
            (
                vec![
                    line_item(b"NOOP", true),
                    line_item(b"RCPT TO:<x@y.example>", false)
                ],
                b"QU".to_vec()
            )
        );
        check_splits(input, 512, false);
        let mut long = vec![b'X'; 600];
        long.extend_from_slice(b"\nRCPT TO:<x@y.example>\r\n");
        assert_eq!(
            feed(LineFramer::new(), &long, &[], 512).0,
            vec![Item::TooLong, line_item(b"RCPT TO:<x@y.example>", false)]
        );
    }

    #[test]
    fn every_short_input_frames_as_the_model_says_however_cut() {
        // Every input of up to seven octets over `a`, CR and LF, under
        // small limits, in both modes, whole, cut once, byte by byte.
        let alphabet = [b'a', b'\r', b'\n'];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..7 {
            let mut next = Vec::new();
            for s in &last {
                for &c in &alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            inputs.extend(next.iter().cloned());
            last = next;
        }
        for input in &inputs {
            for max in 1..=6 {
                check_splits(input, max, true);
                check_splits(input, max, false);
            }
        }
    }

    /// Long inputs (lines past the inline search, near and over the
    /// limit, bare CR and LF) under limits around the word, inline and
    /// command sizes, fed whole, in random pieces and in tiny pieces:
    /// always what the model says.
    #[test]
    fn long_inputs_frame_as_the_model_says_however_cut() {
        let mut rnd = crate::xorshift(0x2545_f491_4f6c_dd1d);
        let maxes = [
            1usize, 2, 7, 8, 9, 31, 32, 33, 34, 40, 64, 510, 511, 512, 513, 1000,
        ];
        for round in 0..1500 {
            let target = (rnd() % 3000) as usize;
            let mut input = Vec::new();
            while input.len() < target {
                match rnd() % 8 {
                    0..=2 => input.extend(std::iter::repeat_n(b'x', (rnd() % 80) as usize)),
                    3 => input.extend(std::iter::repeat_n(b'y', 500 + (rnd() % 30) as usize)),
                    4 | 5 => input.extend_from_slice(b"\r\n"),
                    6 => input.push(b'\n'),
                    _ => input.push(b'\r'),
                }
            }
            let max = maxes[(rnd() % maxes.len() as u64) as usize];
            let crlf_only = rnd() % 2 == 0;
            let framer = if crlf_only {
                LineFramer::crlf_only()
            } else {
                LineFramer::new()
            };
            let tiny = rnd() % 2 == 0;
            let mut cuts = Vec::new();
            let mut at = 0;
            while at < input.len() {
                cuts.push(at);
                at += if tiny {
                    1 + (rnd() % 5) as usize
                } else {
                    1 + (rnd() % 700) as usize
                };
            }
            assert_eq!(
                feed(framer.clone(), &input, &[], max),
                model(&input, max, crlf_only),
                "round {round}, max {max}, crlf_only {crlf_only}, whole"
            );
            assert_eq!(
                feed(framer, &input, &cuts, max),
                model(&input, max, crlf_only),
                "round {round}, max {max}, crlf_only {crlf_only}, cuts {cuts:?}"
            );
        }
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
