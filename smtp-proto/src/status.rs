//! Reply codes and RFC 3463 enhanced status codes.

use core::fmt;

/// An RFC 3463 enhanced mail system status code, `class.subject.detail`.
///
/// ```
/// use smtp_proto::status::EnhancedStatusCode;
/// let code = EnhancedStatusCode::new(5, 1, 3);
/// assert_eq!(code.to_string(), "5.1.3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedStatusCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, 0 to 999.
    pub subject: u16,
    /// The detail, 0 to 999.
    pub detail: u16,
}

impl EnhancedStatusCode {
    /// Builds a code from its three parts (no range check; see the parser for
    /// validated input).
    #[must_use]
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}
