//! SMTP replies: what a server sends, parsed by clients and written by servers.
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF          (RFC 5321 §4.2)
//! ```
//!
//! * [`ReplyDecoder`] frames and checks replies in a caller-owned buffer and
//!   hands out [`Reply`] values that borrow their text from it (no heap
//!   allocation).
//! * [`EhloReply`] reads the capabilities out of a 250 reply to EHLO.
//! * [`OwnedReply`] and [`EhloReplyBuilder`] build replies whose text is
//!   checked, and write them as canonical bytes.
//!
//! ```
//! use smtp_proto::reply::{Decoded, ReplyDecoder};
//! use smtp_proto::status::ReplyCode;
//!
//! let input = b"250-mx.example.org\r\n250 2.0.0 Ok\r\n220 ready\r\n";
//! let mut decoder = ReplyDecoder::new();
//! let Decoded::Reply { reply, consumed } = decoder.decode(input).unwrap() else {
//!     panic!("incomplete")
//! };
//! assert_eq!(reply.code(), ReplyCode::OK);
//! assert_eq!(reply.line_count(), 2);
//! assert_eq!(reply.text(), b"mx.example.org");
//! let last = reply.lines().last().unwrap();
//! assert_eq!(last.enhanced_code().unwrap().to_string(), "2.0.0");
//! assert_eq!(last.text(), b"Ok");
//! assert_eq!(consumed, 34);
//! ```

mod decode;
mod ehlo;
mod encode;

pub use decode::{
    Decoded, DecoderConfig, EhloDecoded, LineEndings, ReplyDecoder, ReplyError, ReplyErrorKind,
};
pub use ehlo::{
    AuthMechanism, AuthMechanisms, Capabilities, Capability, EhloError, EhloReply,
    EhloReplyBuilder, Extension, Extensions, FutureRelease, Limits,
};
pub use encode::{InvalidReply, OwnedReply, MAX_REPLY_LEN};

use crate::status::{parse_status_code, EnhancedStatusCode, ReplyCode};
use core::fmt;

/// A complete reply, borrowed from the decoder's input.
///
/// It keeps the raw bytes of all its lines; [`Reply::lines`] walks them
/// without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    code: ReplyCode,
    raw: &'a [u8],
    line_count: usize,
    enhanced: Option<EnhancedStatusCode>,
    text_start: usize,
    text_end: usize,
}

impl<'a> Reply<'a> {
    /// Parses one complete reply that fills `input` exactly, with the
    /// default [`DecoderConfig`] (a convenience over [`ReplyDecoder`]).
    ///
    /// ```
    /// use smtp_proto::reply::Reply;
    /// let reply = Reply::parse(b"354 End data with <CR><LF>.<CR><LF>\r\n").unwrap();
    /// assert_eq!(reply.code().get(), 354);
    /// assert!(Reply::parse(b"354 go\r\n250 extra\r\n").is_err());
    /// ```
    pub fn parse(input: &'a [u8]) -> Result<Self, ReplyError> {
        ReplyDecoder::new().decode_exact(input)
    }

    pub(crate) fn from_parts(
        code: ReplyCode,
        raw: &'a [u8],
        line_count: usize,
        first: &ParsedLine,
    ) -> Self {
        Self {
            code,
            raw,
            line_count,
            enhanced: first.enhanced,
            text_start: first.text_start,
            text_end: first.text_end,
        }
    }

    /// The reply code (the same on every line).
    #[must_use]
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code of the first line, when it carries one.
    #[must_use]
    pub fn enhanced_code(&self) -> Option<EnhancedStatusCode> {
        self.enhanced
    }

    /// The text of the first line, after the code, separator and enhanced
    /// status code. Empty for a bare `250`.
    #[must_use]
    pub fn text(&self) -> &'a [u8] {
        self.raw.get(self.text_start..self.text_end).unwrap_or(&[])
    }

    /// Number of lines (at least one).
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.line_count
    }

    /// True for a multi-line reply.
    #[must_use]
    pub fn is_multiline(&self) -> bool {
        self.line_count > 1
    }

    /// The raw bytes of the reply as received, every line terminator included.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The lines of the reply, in order.
    #[must_use]
    pub fn lines(&self) -> Lines<'a> {
        Lines {
            rest: self.raw,
            code: self.code,
        }
    }

    /// A copy that owns its text, for callers that queue replies.
    #[must_use]
    pub fn into_owned(self) -> OwnedReply {
        OwnedReply::from_reply(&self)
    }

    /// Appends the canonical bytes of this reply (CRLF line endings,
    /// `code SP text` on the last line, `code "-" text` before it).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let code = self.code.digits();
        for line in self.lines() {
            encode::write_line(out, code, line.is_last(), line.enhanced_code(), line.text());
        }
    }
}

impl fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code.get())
            .field("enhanced", &self.enhanced)
            .field("lines", &self.line_count)
            .field("raw", &String::from_utf8_lossy(self.raw))
            .finish()
    }
}

/// One line of a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    code: ReplyCode,
    last: bool,
    enhanced: Option<EnhancedStatusCode>,
    raw_text: &'a [u8],
    text: &'a [u8],
}

impl<'a> ReplyLine<'a> {
    /// The reply code on this line.
    #[must_use]
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// True for the final line (`code SP text` or a bare code).
    #[must_use]
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// The RFC 2034 enhanced status code at the start of this line's text.
    #[must_use]
    pub fn enhanced_code(&self) -> Option<EnhancedStatusCode> {
        self.enhanced
    }

    /// The text after the enhanced status code (if any).
    #[must_use]
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The whole text after the code and separator, enhanced code included.
    #[must_use]
    pub fn raw_text(&self) -> &'a [u8] {
        self.raw_text
    }

    /// [`ReplyLine::text`] as UTF-8, when it is.
    #[must_use]
    pub fn text_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.text).ok()
    }
}

/// Iterator over the lines of a [`Reply`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    code: ReplyCode,
}

impl<'a> Iterator for Lines<'a> {
    type Item = ReplyLine<'a>;

    fn next(&mut self) -> Option<ReplyLine<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (content, rest) = split_line(self.rest);
        self.rest = rest;
        // The decoder checked every line, so this parse cannot fail; an
        // unexpected shape ends the iteration rather than panicking.
        let parsed = parse_reply_line(content).ok()?;
        let raw_text = content.get(parsed.raw_text_start..).unwrap_or(&[]);
        let text = content
            .get(parsed.text_start..parsed.text_end)
            .unwrap_or(&[]);
        Some(ReplyLine {
            code: self.code,
            last: parsed.last,
            enhanced: parsed.enhanced,
            raw_text,
            text,
        })
    }
}

/// Splits off the first line (terminated by LF, with or without CR) and
/// returns its content and the rest.
pub(crate) fn split_line(buf: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', buf) {
        Some(lf) => {
            let (line, rest) = buf.split_at(lf);
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            (content, rest.get(1..).unwrap_or(&[]))
        }
        None => (buf, &[]),
    }
}

/// One checked reply line, as offsets into its content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParsedLine {
    pub(crate) last: bool,
    pub(crate) enhanced: Option<EnhancedStatusCode>,
    pub(crate) raw_text_start: usize,
    pub(crate) text_start: usize,
    pub(crate) text_end: usize,
}

/// Why a single line is not a reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFault {
    Code,
    Separator,
    Nul,
}

/// One line of `Reply-line` (RFC 5321 §4.2), without its CRLF:
///
/// ```text
/// Reply-code [ ( SP / "-" ) [ textstring ] ]
/// Reply-code = %x32-35 %x30-35 %x30-39
/// textstring = 1*(%d09 / %d32-126)   ; HT, SP, printable US-ASCII
/// ```
///
/// The text is taken as it comes (UTF-8 is allowed by RFC 6531), except that
/// it may not carry NUL. When the text starts with an RFC 2034 enhanced
/// status code whose class matches the reply code's first digit, followed by
/// SP or the end of the line, it is split off.
pub(crate) fn parse_reply_line(content: &[u8]) -> Result<ParsedLine, LineFault> {
    parse_reply_line_with(content, true)
}

/// [`parse_reply_line`]; `may_hold_nul` false skips the NUL scan of a line
/// already known to hold none.
pub(crate) fn parse_reply_line_with(
    content: &[u8],
    may_hold_nul: bool,
) -> Result<ParsedLine, LineFault> {
    let (code, last) = reply_line_head(content)?;
    let raw_text_start = content.len().min(4);
    let raw_text = content.get(raw_text_start..).unwrap_or(&[]);
    if may_hold_nul && memchr::memchr(0, raw_text).is_some() {
        return Err(LineFault::Nul);
    }
    let (enhanced, skip) = enhanced_prefix(code, raw_text);
    Ok(ParsedLine {
        last,
        enhanced,
        raw_text_start,
        text_start: raw_text_start + skip,
        text_end: content.len(),
    })
}

/// The `Reply-code` of a line and whether it is the last one: a code
/// followed by SP or the end of the line ends the reply, one followed by
/// `-` does not. The text is not looked at.
#[inline]
pub(crate) fn reply_line_head(content: &[u8]) -> Result<(ReplyCode, bool), LineFault> {
    let (digits, rest) = content.split_first_chunk::<3>().ok_or(LineFault::Code)?;
    let code = ReplyCode::from_digits(*digits).ok_or(LineFault::Code)?;
    match rest.first() {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        Some(_) => Err(LineFault::Separator),
    }
}

/// The RFC 2034 enhanced status code at the start of a line's text:
/// `status-code ( SP / end )`, with the class matching the reply's first
/// digit. Returns the code and the bytes to skip to reach the text.
pub(crate) fn enhanced_prefix(code: ReplyCode, text: &[u8]) -> (Option<EnhancedStatusCode>, usize) {
    let Some(class) = code.status_class() else {
        return (None, 0);
    };
    if text.first() != Some(&(b'0' + class.digit())) {
        return (None, 0);
    }
    match parse_status_code(text) {
        Some((esc, used)) => match text.get(used) {
            None => (Some(esc), used),
            Some(b' ') => (Some(esc), used + 1),
            Some(_) => (None, 0),
        },
        None => (None, 0),
    }
}
