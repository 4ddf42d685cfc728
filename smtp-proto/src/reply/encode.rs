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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OwnedLine {
    enhanced: Option<EnhancedStatusCode>,
    text: Vec<u8>,
}

/// A reply that owns its text: built by a server, or copied from a decoded
/// [`Reply`] with [`Reply::into_owned`].
///
/// The constructors validate, so an `OwnedReply` always writes as valid
/// reply lines. A text that itself starts with an enhanced status code
/// (`"2.0.0 Ok"` without a separate enhanced code) is written as is and read
/// back with the code split off.
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
    lines: Arc<Vec<OwnedLine>>,
    /// An upper bound of the octets [`OwnedReply::write_to`] writes (an
    /// empty last line is written one octet shorter).
    len: usize,
}

/// Longest line written: RFC 5321 §4.5.3.1.5, CRLF included.
const MAX_LINE: usize = 512;

/// The octets of one written line, CRLF included: code, separator, the
/// enhanced code and a space when there is one, the text.
fn line_len(enhanced: Option<EnhancedStatusCode>, text: &[u8]) -> usize {
    4 + enhanced.map_or(0, |esc| esc.text_len() + 1) + text.len() + 2
}

/// Checks one line and returns its written length, CRLF included.
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
            lines: Arc::new(Vec::with_capacity(1)),
            len: 0,
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
            lines: Arc::new(Vec::new()),
            len: 0,
        };
        for (enhanced, text) in lines {
            reply.push_line(enhanced, text)?;
        }
        Ok((!reply.lines.is_empty()).then_some(reply))
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
        let len = self.len + check_line(self.code, enhanced, text)?;
        if len > MAX_REPLY_LEN {
            return Err(InvalidReply::ReplyTooLong);
        }
        self.len = len;
        Arc::make_mut(&mut self.lines).push(OwnedLine {
            enhanced,
            text: text.to_vec(),
        });
        Ok(self)
    }

    /// A copy of a decoded reply. It is as long as the decoder allowed,
    /// which may be over [`MAX_REPLY_LEN`].
    pub(crate) fn from_reply(reply: &Reply<'_>) -> Self {
        let lines: Vec<OwnedLine> = reply
            .lines()
            .map(|l| OwnedLine {
                enhanced: l.enhanced_code(),
                text: l.text().to_vec(),
            })
            .collect();
        Self {
            code: reply.code(),
            len: lines.iter().map(|l| line_len(l.enhanced, &l.text)).sum(),
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
        self.lines.first().and_then(|l| l.enhanced)
    }

    /// The text of the first line.
    #[must_use]
    pub fn text(&self) -> &[u8] {
        self.lines.first().map_or(&[], |l| &l.text)
    }

    /// Number of lines.
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Each line's enhanced status code and text.
    pub fn lines(&self) -> impl Iterator<Item = (Option<EnhancedStatusCode>, &[u8])> + '_ {
        self.lines.iter().map(|l| (l.enhanced, l.text.as_slice()))
    }

    /// Appends the canonical bytes of the reply to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let digits = self.code.digits();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            write_line(out, digits, i + 1 == n, line.enhanced, &line.text);
        }
    }

    /// The canonical bytes of the reply.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.write_to(&mut out);
        out
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
