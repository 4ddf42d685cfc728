//! Constructed replies and their canonical bytes.

use std::sync::Arc;

use super::Reply;
use crate::status::{EnhancedStatusCode, ReplyCode};

/// Why a reply could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReply {
    /// The text holds CR, LF or NUL, which would break the framing.
    #[error("reply text contains a forbidden byte 0x{0:02x}")]
    ForbiddenByte(u8),
    /// A written line would exceed 512 octets (RFC 5321 §4.5.3.1.5).
    #[error("reply line longer than 512 octets")]
    LineTooLong,
    /// The enhanced status code's class does not match the reply code's
    /// first digit (RFC 2034 §4), or the reply is a 3yz one, which carries
    /// no enhanced code.
    #[error("enhanced status code class does not match the reply code")]
    EnhancedClassMismatch,
    /// A value that must not be empty was empty (an EHLO domain, a
    /// capability keyword).
    #[error("empty value")]
    Empty,
    /// An EHLO capability keyword or parameter has a character RFC 5321
    /// §4.1.1.1 does not allow there.
    #[error("invalid EHLO keyword or parameter")]
    InvalidEhloLine,
    /// The written reply would exceed [`MAX_REPLY_LEN`] octets, the most a
    /// [`ReplyDecoder`](super::ReplyDecoder) reads by default.
    #[error("reply longer than {MAX_REPLY_LEN} octets")]
    ReplyTooLong,
}

/// The longest reply [`OwnedReply`] builds, every line with its CRLF:
/// [`DecoderConfig::DEFAULT_MAX_REPLY_LEN`](super::DecoderConfig::DEFAULT_MAX_REPLY_LEN),
/// so that a client with the default limits reads back any reply a server
/// writes.
pub const MAX_REPLY_LEN: usize = super::DecoderConfig::DEFAULT_MAX_REPLY_LEN;

/// One line of an [`OwnedReply`]: its enhanced status code and where its
/// text stands in the reply's written bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LineSpan {
    enhanced: Option<EnhancedStatusCode>,
    /// Where the line starts in the written bytes.
    start: usize,
    /// The text: `text_start..text_end` of the written bytes.
    text_start: usize,
    text_end: usize,
}

/// The lines of an [`OwnedReply`] and the bytes they are written as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Lines {
    /// The canonical bytes of the whole reply, kept up to date as lines
    /// are added, so that writing the reply is one copy.
    wire: Vec<u8>,
    lines: Vec<LineSpan>,
}

impl Lines {
    /// Appends a line as the new last one: the line that was last until now
    /// gets the `-` of a line that is followed by another.
    fn push(&mut self, code: [u8; 3], enhanced: Option<EnhancedStatusCode>, text: &[u8]) {
        if let Some(prev) = self.lines.last_mut() {
            let sep = prev.start + 3;
            if self.wire.get(sep) == Some(&b' ') {
                self.wire[sep] = b'-';
            } else {
                // An empty last line was written as the bare code.
                self.wire.insert(sep, b'-');
                prev.text_start = sep + 1;
                prev.text_end = sep + 1;
            }
        }
        let start = self.wire.len();
        write_line(&mut self.wire, code, true, enhanced, text);
        let text_end = self.wire.len() - 2;
        self.lines.push(LineSpan {
            enhanced,
            start,
            text_start: text_end - text.len(),
            text_end,
        });
    }

    /// The octets written, counting an empty last line as if it had its
    /// separator: what the reply takes once another line follows.
    fn written_bound(&self) -> usize {
        let bare_last = self
            .lines
            .last()
            .is_some_and(|l| self.wire.get(l.start + 3) == Some(&b'\r'));
        self.wire.len() + usize::from(bare_last)
    }

    fn text(&self, line: &LineSpan) -> &[u8] {
        self.wire
            .get(line.text_start..line.text_end)
            .unwrap_or_default()
    }
}

/// A reply that owns its text: built by a server, or copied from a decoded
/// [`Reply`] with [`Reply::into_owned`].
///
/// The constructors validate, so an `OwnedReply` always writes as valid
/// reply lines. A text that itself starts with an enhanced status code
/// (`"2.0.0 Ok"` without a separate enhanced code) is written as is and read
/// back with the code split off. The reply keeps the bytes it writes, so
/// [`OwnedReply::write_to`] is one copy.
///
/// ```
/// use smtp_proto::reply::OwnedReply;
/// use smtp_proto::status::{EnhancedStatusCode, ReplyCode};
///
/// let mut reply = OwnedReply::new(ReplyCode::OK, "mx.example.org greets you").unwrap();
/// reply.push_line(Some(EnhancedStatusCode::SUCCESS), "Ok").unwrap();
/// assert_eq!(reply.to_bytes(), b"250-mx.example.org greets you\r\n250 2.0.0 Ok\r\n");
///
/// assert!(OwnedReply::new(ReplyCode::OK, "a\r\n250 injected").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedReply {
    code: ReplyCode,
    /// Shared by the clones: one reply that decides many recipients (of a
    /// client's delivery, say) is held once.
    lines: Arc<Lines>,
}

/// Longest line written: RFC 5321 §4.5.3.1.5, CRLF included.
const MAX_LINE: usize = 512;

/// The octets of one line written before the last, CRLF included: code,
/// `-`, the enhanced code when there is one (and a space when text
/// follows it), the text. As the last line it is one octet shorter when
/// it is empty (the bare code).
fn line_len(enhanced: Option<EnhancedStatusCode>, text: &[u8]) -> usize {
    4 + enhanced.map_or(0, |esc| esc.text_len() + usize::from(!text.is_empty())) + text.len() + 2
}

/// Checks one line and returns its length written before the last line,
/// CRLF included.
fn check_line(
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    text: &[u8],
) -> Result<usize, InvalidReply> {
    if let Some(&b) = text.iter().find(|&&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(InvalidReply::ForbiddenByte(b));
    }
    if let Some(esc) = enhanced {
        if code.status_class() != Some(esc.class()) {
            return Err(InvalidReply::EnhancedClassMismatch);
        }
    }
    let len = line_len(enhanced, text);
    if len > MAX_LINE {
        return Err(InvalidReply::LineTooLong);
    }
    Ok(len)
}

impl OwnedReply {
    /// A one-line reply without enhanced status code. The text may be empty.
    pub fn new(code: ReplyCode, text: impl AsRef<[u8]>) -> Result<Self, InvalidReply> {
        Self::with_enhanced(code, None, text)
    }

    /// A one-line reply, with an enhanced status code when given.
    ///
    /// ```
    /// use smtp_proto::reply::OwnedReply;
    /// use smtp_proto::status::{EnhancedStatusCode, ReplyCode};
    /// let r = OwnedReply::with_enhanced(
    ///     ReplyCode::MAILBOX_UNAVAILABLE,
    ///     Some(EnhancedStatusCode::BAD_MAILBOX),
    ///     "No such user",
    /// ).unwrap();
    /// assert_eq!(r.to_bytes(), b"550 5.1.1 No such user\r\n");
    /// ```
    pub fn with_enhanced(
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        text: impl AsRef<[u8]>,
    ) -> Result<Self, InvalidReply> {
        let mut reply = Self {
            code,
            lines: Arc::default(),
        };
        reply.push_line(enhanced, text)?;
        Ok(reply)
    }

    /// A reply with one line per item; `None` when `lines` is empty.
    pub fn from_lines<T: AsRef<[u8]>>(
        code: ReplyCode,
        lines: impl IntoIterator<Item = (Option<EnhancedStatusCode>, T)>,
    ) -> Result<Option<Self>, InvalidReply> {
        let mut reply = Self {
            code,
            lines: Arc::default(),
        };
        for (enhanced, text) in lines {
            reply.push_line(enhanced, text)?;
        }
        Ok((!reply.lines.lines.is_empty()).then_some(reply))
    }

    /// Appends a line (it becomes the last line of the reply).
    ///
    /// The whole reply may not pass [`MAX_REPLY_LEN`] octets:
    ///
    /// ```
    /// use smtp_proto::reply::{InvalidReply, OwnedReply, MAX_REPLY_LEN};
    /// use smtp_proto::status::ReplyCode;
    ///
    /// let line = "x".repeat(400); // 406 octets written
    /// let mut reply = OwnedReply::new(ReplyCode::OK, &line).unwrap();
    /// for _ in 1..MAX_REPLY_LEN / 406 {
    ///     reply.push_line(None, &line).unwrap();
    /// }
    /// assert_eq!(reply.push_line(None, &line).unwrap_err(), InvalidReply::ReplyTooLong);
    /// assert!(reply.to_bytes().len() <= MAX_REPLY_LEN);
    /// ```
    pub fn push_line(
        &mut self,
        enhanced: Option<EnhancedStatusCode>,
        text: impl AsRef<[u8]>,
    ) -> Result<&mut Self, InvalidReply> {
        let text = text.as_ref();
        // The new line is written as the last one: the bare code when it
        // is empty. `written_bound` counts the `-` the line that is last
        // now takes once this one follows it.
        let bare = enhanced.is_none() && text.is_empty();
        let last_len = check_line(self.code, enhanced, text)? - usize::from(bare);
        let len = self.lines.written_bound() + last_len;
        if len > MAX_REPLY_LEN {
            return Err(InvalidReply::ReplyTooLong);
        }
        Arc::make_mut(&mut self.lines).push(self.code.digits(), enhanced, text);
        Ok(self)
    }

    /// A copy of a decoded reply. It is as long as the decoder allowed,
    /// which may be over [`MAX_REPLY_LEN`].
    pub(crate) fn from_reply(reply: &Reply<'_>) -> Self {
        let code = reply.code();
        let mut lines = Lines {
            wire: Vec::with_capacity(reply.as_bytes().len()),
            lines: Vec::with_capacity(reply.line_count()),
        };
        for line in reply.lines() {
            lines.push(code.digits(), line.enhanced_code(), line.text());
        }
        Self {
            code,
            lines: Arc::new(lines),
        }
    }

    /// The reply code.
    #[must_use]
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code of the first line.
    #[must_use]
    pub fn enhanced_code(&self) -> Option<EnhancedStatusCode> {
        self.lines.lines.first().and_then(|l| l.enhanced)
    }

    /// The text of the first line.
    #[must_use]
    pub fn text(&self) -> &[u8] {
        self.lines.lines.first().map_or(&[], |l| self.lines.text(l))
    }

    /// Number of lines.
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.lines.lines.len()
    }

    /// Each line's enhanced status code and text.
    pub fn lines(&self) -> impl Iterator<Item = (Option<EnhancedStatusCode>, &[u8])> + '_ {
        self.lines
            .lines
            .iter()
            .map(|l| (l.enhanced, self.lines.text(l)))
    }

    /// The canonical bytes of the reply: CRLF line endings, `code SP text`
    /// on the last line (the bare code when it is empty), `code "-" text`
    /// before it.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.lines.wire
    }

    /// Appends the canonical bytes of the reply to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.lines.wire);
    }

    /// The canonical bytes of the reply.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lines.wire.clone()
    }
}

/// Writes one `Reply-line` (RFC 5321 §4.2): `Reply-code "-" [ textstring ]`
/// before the last line, `Reply-code [ SP textstring ]` on the last one, each
/// ended by CRLF. A bare code is written for an empty last line.
pub(crate) fn write_line(
    out: &mut Vec<u8>,
    code: [u8; 3],
    last: bool,
    enhanced: Option<EnhancedStatusCode>,
    text: &[u8],
) {
    out.extend_from_slice(&code);
    let empty = enhanced.is_none() && text.is_empty();
    if !last {
        out.push(b'-');
    } else if !empty {
        out.push(b' ');
    }
    if let Some(esc) = enhanced {
        esc.write_to(out);
        if !text.is_empty() {
            out.push(b' ');
        }
    }
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}
