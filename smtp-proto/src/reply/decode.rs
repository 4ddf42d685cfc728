//! The streaming reply decoder.

use super::ehlo::EhloSummary;
use super::{
    parse_reply_line_with, reply_line_head, EhloError, EhloReply, LineFault, ParsedLine, Reply,
};
use crate::framer::{Frame, LineFramer};
use crate::status::ReplyCode;

/// How bare line endings in replies are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LineEndings {
    /// Every line must end in CRLF (RFC 5321 §2.3.8); a bare LF is an error.
    #[default]
    Strict,
    /// A line may also end in a bare LF. A bare CR inside a line is still an
    /// error.
    AllowBareLf,
}

/// Limits and policies of a [`ReplyDecoder`].
///
/// ```
/// use smtp_proto::reply::{DecoderConfig, LineEndings};
/// let config = DecoderConfig::default()
///     .with_max_line_len(1000)
///     .with_line_endings(LineEndings::AllowBareLf);
/// assert_eq!(config.max_line_len, 1000);
/// assert_eq!(config.max_reply_len, DecoderConfig::DEFAULT_MAX_REPLY_LEN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// Longest reply line accepted, reply code and CRLF included.
    pub max_line_len: usize,
    /// Longest whole reply accepted, all lines included.
    pub max_reply_len: usize,
    /// What to do with bare LF line endings.
    pub line_endings: LineEndings,
}

impl DecoderConfig {
    /// 2048 octets, reply code and CRLF included.
    ///
    /// RFC 5321 §4.5.3.1.5 sets 512 octets as the most a server should
    /// write on one reply line, but §4.5.3.1 adds: "To the maximum extent
    /// possible, implementation techniques that impose no limits on the
    /// length of these objects should be used." Servers do write longer
    /// lines (a queue id with a long text after the message, a verbose
    /// refusal), and refusing one turns a delivered message into a failed
    /// one the client then sends again. So the reader takes four times the
    /// limit by default; [`DecoderConfig::with_max_line_len`] sets another
    /// (512 for the strict RFC limit). Replies this crate writes keep to
    /// 512 octets a line ([`OwnedReply`](super::OwnedReply)).
    pub const DEFAULT_MAX_LINE_LEN: usize = 2048;
    /// 32 KiB for a whole multi-line reply.
    pub const DEFAULT_MAX_REPLY_LEN: usize = 32 * 1024;

    /// Sets [`DecoderConfig::max_line_len`].
    #[must_use]
    pub fn with_max_line_len(mut self, len: usize) -> Self {
        self.max_line_len = len;
        self
    }

    /// Sets [`DecoderConfig::max_reply_len`].
    #[must_use]
    pub fn with_max_reply_len(mut self, len: usize) -> Self {
        self.max_reply_len = len;
        self
    }

    /// Sets [`DecoderConfig::line_endings`].
    #[must_use]
    pub fn with_line_endings(mut self, policy: LineEndings) -> Self {
        self.line_endings = policy;
        self
    }
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            max_reply_len: Self::DEFAULT_MAX_REPLY_LEN,
            line_endings: LineEndings::Strict,
        }
    }
}

/// What went wrong in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyErrorKind {
    /// The line does not start with a reply code in 200–599.
    #[error("invalid reply code")]
    InvalidCode,
    /// The code is followed by something other than SP, `-` or the line end.
    #[error("invalid separator after reply code")]
    InvalidSeparator,
    /// The text carries a NUL byte.
    #[error("NUL in reply text")]
    Nul,
    /// A line of a multi-line reply carries a different code than the first.
    #[error("reply code {found} in a multi-line {expected} reply")]
    CodeMismatch {
        /// The code of the first line.
        expected: ReplyCode,
        /// The code of the offending line.
        found: ReplyCode,
    },
    /// A line is longer than [`DecoderConfig::max_line_len`].
    #[error("reply line too long")]
    LineTooLong,
    /// The reply is longer than [`DecoderConfig::max_reply_len`].
    #[error("reply too long")]
    ReplyTooLong,
    /// A line ends in a bare LF under [`LineEndings::Strict`].
    #[error("bare LF line ending")]
    BareLf,
    /// A line carries a CR that is not followed by LF.
    #[error("bare CR in reply line")]
    BareCr,
    /// The input ends before the reply does ([`Reply::parse`] only).
    #[error("incomplete reply")]
    Incomplete,
    /// Bytes follow the reply ([`Reply::parse`] only).
    #[error("data after the reply")]
    TrailingData,
}

/// A reply the decoder rejected, with the bytes to drop to resynchronise.
///
/// The decoder has already reset itself: the caller drops
/// [`ReplyError::consumed`] bytes from the front of its buffer and calls
/// [`ReplyDecoder::decode`] again, which resumes at the next line. When the
/// refused line says more lines of its reply follow (`NNN-`), or the reply
/// was too long, those lines come back as [`Decoded::Skipped`]: one bad
/// reply is one error, and no part of it is handed out as a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ReplyError {
    kind: ReplyErrorKind,
    consumed: usize,
}

impl ReplyError {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ReplyErrorKind {
        self.kind
    }

    /// Bytes to drop from the front of the buffer (the bad line and the
    /// lines of the same reply before it).
    #[must_use]
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

/// A successful step of [`ReplyDecoder::decode`].
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): a decode loop has to
/// handle every case to drop the right number of bytes, and a new case
/// should break it at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Decoded<'a> {
    /// A complete reply at the front of the buffer; drop `consumed` bytes.
    Reply {
        /// The reply, borrowing from the buffer.
        reply: Reply<'a>,
        /// Bytes the reply took, terminators included.
        consumed: usize,
    },
    /// More input is needed; nothing was consumed. Call again with the same
    /// buffer extended.
    Incomplete,
    /// Bytes of an already reported bad reply were thrown away while
    /// resynchronising; drop `consumed` bytes and call again.
    Skipped {
        /// Bytes to drop from the front of the buffer.
        consumed: usize,
    },
}

impl Decoded<'_> {
    /// Bytes to drop from the front of the buffer (0 for `Incomplete`).
    #[must_use]
    pub fn consumed(&self) -> usize {
        match *self {
            Self::Reply { consumed, .. } | Self::Skipped { consumed } => consumed,
            Self::Incomplete => 0,
        }
    }
}

/// The code of a refused line that says more lines of its reply follow
/// (`NNN-`): those lines are skipped, so that the error stands for the
/// whole reply and its tail is not handed out as a reply of its own.
fn continued_code(head: Option<Result<(ReplyCode, bool), LineFault>>) -> Option<ReplyCode> {
    match head {
        Some(Ok((code, false))) => Some(code),
        _ => None,
    }
}

fn fault_kind(fault: LineFault) -> ReplyErrorKind {
    match fault {
        LineFault::Code => ReplyErrorKind::InvalidCode,
        LineFault::Separator => ReplyErrorKind::InvalidSeparator,
        LineFault::Nul => ReplyErrorKind::Nul,
    }
}

/// A streaming decoder of replies in a caller-owned buffer.
///
/// The caller keeps the unconsumed bytes at the front of its buffer and
/// calls [`ReplyDecoder::decode`] with them. Lines already checked are not
/// scanned again when the buffer grows. After every result that reports
/// consumed bytes the caller drops exactly that many.
///
/// ```
/// use smtp_proto::reply::{Decoded, ReplyDecoder, ReplyErrorKind};
///
/// let mut decoder = ReplyDecoder::new();
/// let mut buf: Vec<u8> = Vec::new();
/// let mut codes = Vec::new();
/// let mut errors = Vec::new();
/// for chunk in [&b"250-a\r\n25"[..], b"0 b\r\n099 bad\r\n", b"221 bye\r\n"] {
///     buf.extend_from_slice(chunk);
///     loop {
///         match decoder.decode(&buf) {
///             Ok(Decoded::Reply { reply, consumed }) => {
///                 codes.push(reply.code().get());
///                 buf.drain(..consumed);
///             }
///             Ok(Decoded::Skipped { consumed }) => { buf.drain(..consumed); }
///             Ok(Decoded::Incomplete) => break,
///             Err(e) => {
///                 errors.push(e.kind());
///                 buf.drain(..e.consumed());
///             }
///         }
///     }
/// }
/// assert_eq!(codes, [250, 221]);
/// assert_eq!(errors, [ReplyErrorKind::InvalidCode]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplyDecoder {
    config: DecoderConfig,
    framer: LineFramer,
    /// Bytes of the current reply already checked.
    pos: usize,
    /// Lines of the current reply already checked.
    lines: usize,
    /// The code of the current reply, once its first line is checked.
    code: Option<ReplyCode>,
    /// The three digits of `code`, as sent.
    code_digits: [u8; 3],
    /// The first line of the current reply, once checked.
    first: Option<ParsedLine>,
    /// An over-long line was reported and its tail is being thrown away.
    overlong_reported: bool,
    /// A reply was refused at a line that says more lines follow (or for
    /// being too long): its remaining lines, which carry this code, are
    /// skipped up to its last one.
    skip_code: Option<ReplyCode>,
    /// Capabilities recorded while decoding with [`ReplyDecoder::decode_ehlo`].
    ehlo: EhloSummary,
    /// Every line of the current reply so far went into `ehlo`.
    ehlo_complete: bool,
    /// A line of the current reply was not plain ASCII free of control
    /// octets below 14, so it may hold a NUL.
    maybe_nul: bool,
}

/// A successful step of [`ReplyDecoder::decode_ehlo`] (exhaustive, like
/// [`Decoded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum EhloDecoded<'a> {
    /// A complete reply at the front of the buffer; drop `consumed` bytes.
    Reply {
        /// The reply, borrowing from the buffer.
        reply: Reply<'a>,
        /// The reply read as an EHLO reply (an error for a refusal such as
        /// `502`, or a 250 without domain).
        ehlo: Result<EhloReply<'a>, EhloError>,
        /// Bytes the reply took, terminators included.
        consumed: usize,
    },
    /// More input is needed; nothing was consumed.
    Incomplete,
    /// Bytes of an already reported bad reply were thrown away; drop
    /// `consumed` bytes and call again.
    Skipped {
        /// Bytes to drop from the front of the buffer.
        consumed: usize,
    },
}

impl ReplyDecoder {
    /// A decoder with the default limits.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given limits and policies.
    #[must_use]
    pub fn with_config(config: DecoderConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The decoder's configuration.
    #[must_use]
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Sets the limits and policies the next lines are read with (the
    /// client machine reads the lines of an AUTH exchange with a larger
    /// line limit). A partial reply already checked stays accepted.
    pub(crate) fn set_config(&mut self, config: DecoderConfig) {
        self.config = config;
    }

    /// Forgets any partial reply (for example when the connection restarts,
    /// or after STARTTLS).
    pub fn reset(&mut self) {
        let config = self.config;
        *self = Self::with_config(config);
    }

    fn start_over(&mut self) {
        self.pos = 0;
        self.lines = 0;
        self.code = None;
        self.first = None;
        self.maybe_nul = false;
    }

    fn fail(&mut self, kind: ReplyErrorKind, consumed: usize) -> ReplyError {
        self.start_over();
        ReplyError { kind, consumed }
    }

    /// Decodes the next reply at the front of `buf`.
    ///
    /// `buf` must start at the first byte not yet consumed; after
    /// [`Decoded::Incomplete`] it must hold the same bytes as before, possibly
    /// followed by more.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<'a>, ReplyError> {
        self.decode_inner::<false>(buf)
    }

    /// Decodes the next reply as the answer to EHLO: the capabilities are
    /// read while the lines are checked, in the same pass, which is faster
    /// than [`ReplyDecoder::decode`] followed by [`EhloReply::parse`] (the
    /// result is the same).
    ///
    /// ```
    /// use smtp_proto::reply::{EhloDecoded, Extension, ReplyDecoder};
    ///
    /// let mut decoder = ReplyDecoder::new();
    /// let input = b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n";
    /// let EhloDecoded::Reply { ehlo, consumed, .. } = decoder.decode_ehlo(input).unwrap() else {
    ///     panic!("incomplete")
    /// };
    /// let ehlo = ehlo.unwrap();
    /// assert!(ehlo.has(Extension::Pipelining));
    /// assert_eq!(ehlo.max_size(), Some(1_000_000));
    /// assert_eq!(consumed, input.len());
    /// ```
    pub fn decode_ehlo<'a>(&mut self, buf: &'a [u8]) -> Result<EhloDecoded<'a>, ReplyError> {
        Ok(match self.decode_inner::<true>(buf)? {
            Decoded::Reply { reply, consumed } => {
                let ehlo = if self.ehlo_complete {
                    EhloReply::with_summary(&reply, self.ehlo)
                } else {
                    EhloReply::parse(&reply)
                };
                EhloDecoded::Reply {
                    reply,
                    ehlo,
                    consumed,
                }
            }
            Decoded::Incomplete => EhloDecoded::Incomplete,
            Decoded::Skipped { consumed } => EhloDecoded::Skipped { consumed },
        })
    }

    fn decode_inner<'a, const EHLO: bool>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Decoded<'a>, ReplyError> {
        loop {
            if EHLO {
                if let Some(line_end) = self.ehlo_run(buf) {
                    // The last line has the first line's digits.
                    let Some(code) = self.code else {
                        return Err(self.fail(ReplyErrorKind::InvalidCode, line_end));
                    };
                    return self.finish(buf, code, line_end);
                }
            }
            let rest = buf.get(self.pos..).unwrap_or(&[]);
            let (frame, plain) = self.framer.next_plain_frame(rest, self.config.max_line_len);
            let line = match frame {
                Frame::Incomplete => return Ok(Decoded::Incomplete),
                Frame::Discarded { consumed, end } => {
                    if self.overlong_reported {
                        self.overlong_reported = !end;
                        return Ok(Decoded::Skipped { consumed });
                    }
                    self.overlong_reported = !end;
                    let head = rest.get(..4).map(reply_line_head);
                    // An over-long line of a reply whose error was already
                    // reported is dropped with the rest of that reply, not
                    // reported a second time.
                    if let Some(skip) = self.skip_code {
                        if let Some(Ok((code, last))) = head {
                            if code == skip {
                                if last {
                                    self.skip_code = None;
                                }
                                return Ok(Decoded::Skipped { consumed });
                            }
                        }
                    }
                    // When the dropped line says more lines of its reply
                    // follow (`NNN-`), they are dropped too: the error stands
                    // for the whole reply, and its tail is not handed out as
                    // a reply of its own.
                    self.skip_code = continued_code(head);
                    let total = self.pos + consumed;
                    return Err(self.fail(ReplyErrorKind::LineTooLong, total));
                }
                Frame::Line(line) => line,
            };
            self.maybe_nul |= !plain;
            let line_end = self.pos + line.consumed;
            let content = rest.get(..line.content_len).unwrap_or(&[]);
            // A line that repeats the first line's digits has its code:
            // only the separator is left to check.
            let head = match (self.code, content) {
                (Some(code), [a, b, c, rest @ ..]) if [*a, *b, *c] == self.code_digits => {
                    match rest.first() {
                        None | Some(b' ') => Ok((code, true)),
                        Some(b'-') => Ok((code, false)),
                        Some(_) => Err(LineFault::Separator),
                    }
                }
                _ => reply_line_head(content),
            };

            if let Some(skip) = self.skip_code {
                match head {
                    Ok((code, last)) if code == skip => {
                        if last {
                            self.skip_code = None;
                        }
                        return Ok(Decoded::Skipped {
                            consumed: line.consumed,
                        });
                    }
                    _ => self.skip_code = None,
                }
            }

            // A line refused for its ending that says more lines of its
            // reply follow has them dropped too, as an over-long one.
            if line.bare_cr {
                self.skip_code = continued_code(Some(head));
                return Err(self.fail(ReplyErrorKind::BareCr, line_end));
            }
            if line.bare_lf && self.config.line_endings == LineEndings::Strict {
                self.skip_code = continued_code(Some(head));
                return Err(self.fail(ReplyErrorKind::BareLf, line_end));
            }
            let (code, last) = match head {
                Ok(head) => head,
                Err(fault) => return Err(self.fail(fault_kind(fault), line_end)),
            };
            match self.code {
                Some(expected) if expected != code => {
                    let kind = ReplyErrorKind::CodeMismatch {
                        expected,
                        found: code,
                    };
                    // The refused line's own reply continues after it
                    // (`NNN-`): those lines go with the error.
                    self.skip_code = continued_code(Some(head));
                    return Err(self.fail(kind, line_end));
                }
                Some(_) => {
                    // In EHLO mode each capability line is recorded as it
                    // is checked; a line of an unusual shape leaves the
                    // whole reply to `EhloReply::parse`.
                    if self.ehlo_complete && !(EHLO && self.ehlo.fast_line(rest).is_some()) {
                        self.ehlo_complete = false;
                    }
                }
                None => match parse_reply_line_with(content, !plain) {
                    Ok(parsed) => {
                        self.code = Some(code);
                        if let [a, b, c, ..] = *content {
                            self.code_digits = [a, b, c];
                        }
                        self.first = Some(parsed);
                        self.ehlo = EhloSummary::default();
                        self.ehlo_complete = EHLO;
                    }
                    Err(fault) => {
                        // A NUL in a first line that says more lines
                        // follow: they are dropped with it.
                        self.skip_code = continued_code(Some(head));
                        return Err(self.fail(fault_kind(fault), line_end));
                    }
                },
            }
            self.lines += 1;
            if line_end > self.config.max_reply_len {
                if !last {
                    self.skip_code = Some(code);
                }
                return Err(self.fail(ReplyErrorKind::ReplyTooLong, line_end));
            }
            if last {
                return self.finish(buf, code, line_end);
            }
            self.pos = line_end;
        }
    }

    /// Takes, in EHLO mode, the run of capability lines at `self.pos` that
    /// the general loop of [`ReplyDecoder::decode_inner`] would accept with
    /// no other effect than recording them: plain lines ending in CR LF
    /// within the line limit, with the first line's digits and `-` or SP,
    /// inside the reply limit, and of a shape [`EhloSummary::fast_line`]
    /// records. It stops at the first other line, which the general loop
    /// then handles with every check, or after the last line of the reply,
    /// whose end it returns.
    #[inline(always)]
    fn ehlo_run(&mut self, buf: &[u8]) -> Option<usize> {
        if !self.ehlo_complete
            || self.code.is_none()
            || self.skip_code.is_some()
            || !self.framer.is_fresh()
        {
            return None;
        }
        let [a, b, c] = self.code_digits;
        let code = u32::from_le_bytes([a, b, c, 0]);
        // The framer accepts a line of at least one octet whatever the limit.
        let max_line = self.config.max_line_len.max(1);
        let max_reply = self.config.max_reply_len;
        let mut pos = self.pos;
        let mut lines = self.lines;
        let mut last = None;
        while let Some(rest) = buf.get(pos..) {
            // The line must fit both the line and the reply limit.
            let limit = max_line.min(max_reply.saturating_sub(pos));
            let Some(consumed) = self.ehlo.plain_crlf_line(rest, code, limit) else {
                // The general loop looks at this line again, with every
                // check.
                break;
            };
            // The line is the one the framer would report as plain and
            // CR LF terminated.
            debug_assert_eq!(
                LineFramer::plain_crlf_line(rest, limit).map(|(_, n)| n),
                Some(consumed)
            );
            pos += consumed;
            lines += 1;
            if rest.get(3) == Some(&b' ') {
                last = Some(pos);
                break;
            }
        }
        self.pos = pos;
        self.lines = lines;
        last
    }

    /// Ends the reply whose last line ends at `line_end`.
    #[inline(always)]
    fn finish<'a>(
        &mut self,
        buf: &'a [u8],
        code: ReplyCode,
        line_end: usize,
    ) -> Result<Decoded<'a>, ReplyError> {
        let raw = buf.get(..line_end).unwrap_or(&[]);
        // One scan of the whole reply for NUL, rather than one per line,
        // and none when every line was found plain as it was framed.
        if self.maybe_nul && memchr::memchr(0, raw).is_some() {
            return Err(self.fail(ReplyErrorKind::Nul, line_end));
        }
        let Some(first) = self.first else {
            // Unreachable: the first line of every reply is recorded.
            return Err(self.fail(ReplyErrorKind::InvalidCode, line_end));
        };
        let reply = Reply::from_parts(code, raw, self.lines, &first);
        self.start_over();
        Ok(Decoded::Reply {
            reply,
            consumed: line_end,
        })
    }

    /// Decodes a buffer that must hold exactly one complete reply.
    pub(crate) fn decode_exact<'a>(&mut self, buf: &'a [u8]) -> Result<Reply<'a>, ReplyError> {
        match self.decode(buf)? {
            Decoded::Reply { reply, consumed } if consumed == buf.len() => Ok(reply),
            Decoded::Reply { consumed, .. } => Err(ReplyError {
                kind: ReplyErrorKind::TrailingData,
                consumed,
            }),
            Decoded::Incomplete | Decoded::Skipped { .. } => Err(ReplyError {
                kind: ReplyErrorKind::Incomplete,
                consumed: 0,
            }),
        }
    }
}
