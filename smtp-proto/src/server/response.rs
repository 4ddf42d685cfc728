//! The reply an application gives for a decision, and the one function that
//! writes replies onto the wire.

use crate::status::EnhancedStatusCode;

/// A reply the application chooses (to reject MAIL, answer VRFY, ...).
///
/// The constructor validates, so a `Response` cannot put CR, LF or NUL on
/// the wire.
///
/// ```
/// use smtp_proto::server::Response;
/// use smtp_proto::status::EnhancedStatusCode;
///
/// let r = Response::new(550, Some(EnhancedStatusCode::new(5, 1, 1)), "No such user").unwrap();
/// assert_eq!(r.code(), 550);
/// assert!(Response::new(550, None, "a\r\nRCPT TO:<x@y>").is_err());
/// assert!(Response::new(199, None, "x").is_err());
/// assert!(Response::new(550, Some(EnhancedStatusCode::new(2, 0, 0)), "x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    code: u16,
    enhanced: Option<EnhancedStatusCode>,
    lines: Vec<String>,
}

/// Why a [`Response`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The code is outside 200–599.
    #[error("reply code must be 200-599")]
    Code,
    /// The enhanced code's class differs from the reply's first digit, or
    /// its parts are out of range.
    #[error("enhanced status code does not match the reply code")]
    Enhanced,
    /// The text holds CR, LF or NUL, or a line is longer than 500 octets
    /// (RFC 5321 §4.5.3.1.5 limits reply lines to 512 with the code).
    #[error("reply text holds CR, LF or NUL, or is too long")]
    Text,
}

fn check_text(s: &str) -> Result<(), ResponseError> {
    if s.len() > 500 || s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(ResponseError::Text)
    } else {
        Ok(())
    }
}

impl Response {
    /// A one-line reply.
    pub fn new(
        code: u16,
        enhanced: Option<EnhancedStatusCode>,
        text: impl Into<String>,
    ) -> Result<Self, ResponseError> {
        if !(200..=599).contains(&code) {
            return Err(ResponseError::Code);
        }
        if let Some(e) = enhanced {
            if u16::from(e.class) != code / 100 || e.subject > 999 || e.detail > 999 {
                return Err(ResponseError::Enhanced);
            }
        }
        let text = text.into();
        check_text(&text)?;
        Ok(Self {
            code,
            enhanced,
            lines: vec![text],
        })
    }

    /// Adds a line (for a multi-line reply).
    pub fn with_line(mut self, text: impl Into<String>) -> Result<Self, ResponseError> {
        let text = text.into();
        check_text(&text)?;
        self.lines.push(text);
        Ok(self)
    }

    /// The reply code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code.
    #[must_use]
    pub fn enhanced(&self) -> Option<EnhancedStatusCode> {
        self.enhanced
    }

    /// True for 2xx and 3xx replies.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        write_reply(out, self.code, self.enhanced, &lines);
    }
}

/// Writes one reply: `code [-| ] [enhanced ]text CRLF` per line.
///
/// Every reply the server sends goes through here.
pub(crate) fn write_reply(
    out: &mut Vec<u8>,
    code: u16,
    enhanced: Option<EnhancedStatusCode>,
    lines: &[&str],
) {
    let last = lines.len().saturating_sub(1);
    let one = [""];
    let lines = if lines.is_empty() { &one[..] } else { lines };
    for (i, line) in lines.iter().enumerate() {
        let sep = if i < last { '-' } else { ' ' };
        out.extend_from_slice(format!("{code:03}{sep}").as_bytes());
        if let Some(e) = enhanced {
            out.extend_from_slice(e.to_string().as_bytes());
            if !line.is_empty() {
                out.push(b' ');
            }
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
