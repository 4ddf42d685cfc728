//! Errors of the command codec, each mapped to the reply a server sends.

use crate::status::{EnhancedStatusCode, ReplyCode, StatusClass};

const fn perm(subject: u16, detail: u16) -> EnhancedStatusCode {
    EnhancedStatusCode::known(StatusClass::PermanentFailure, subject, detail)
}

/// A value failed validation (a constructor or a parser rejected it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty where something is required.
    #[error("empty value")]
    Empty,
    /// The value is longer than its rule allows.
    #[error("value too long")]
    TooLong,
    /// The value holds CR, LF, NUL or another character its rule forbids.
    #[error("forbidden character")]
    ForbiddenCharacter,
    /// The value does not follow its grammar rule.
    #[error("{0}")]
    Syntax(&'static str),
}

/// Why a path (`<local@domain>`) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is not enclosed in `<` and `>`.
    #[error("path must be enclosed in angle brackets")]
    MissingBrackets,
    /// Characters follow the closing `>` (for example `<a@b>>>`).
    #[error("unexpected characters after the path")]
    TrailingCharacters,
    /// A required mailbox is empty or has no `@domain`.
    #[error("mailbox has no domain")]
    MissingDomain,
    /// The local part breaks `Dot-string / Quoted-string`.
    #[error("invalid local part")]
    InvalidLocalPart,
    /// The domain or address literal is malformed.
    #[error("invalid domain")]
    InvalidDomain,
    /// The source route before `:` is malformed.
    #[error("invalid source route")]
    InvalidSourceRoute,
    /// Local part over 64 octets (RFC 5321 §4.5.3.1.1).
    #[error("local part longer than 64 octets")]
    LocalPartTooLong,
    /// Domain over 255 octets (RFC 5321 §4.5.3.1.2).
    #[error("domain longer than 255 octets")]
    DomainTooLong,
    /// Path over 256 octets (RFC 5321 §4.5.3.1.3).
    #[error("path longer than 256 octets")]
    PathTooLong,
}

/// A command line the server cannot accept, with the reply it calls for.
///
/// ```
/// use smtp_proto::command::{Command, CommandError};
/// let err = Command::parse(b"MAIL FROM:<a@b> SIZE=rabbit").unwrap_err();
/// assert_eq!(err.reply_code().get(), 501);
/// assert_eq!(err.enhanced_code().to_string(), "5.5.4");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line exceeded the maximum length; it was discarded through its end.
    #[error("line too long")]
    LineTooLong,
    /// An `AUTH` command line exceeded the longer limit of such lines; it
    /// was discarded through its end. Its initial response is a SASL
    /// response longer than the server's buffer: RFC 4954 §6 answers
    /// `500 5.5.6 Authentication Exchange line is too long`.
    #[error("authentication exchange line is too long")]
    AuthLineTooLong,
    /// The line holds a bare CR, or, under
    /// [`LineEndingPolicy::Strict`](super::LineEndingPolicy::Strict), an LF
    /// without CR before it anywhere before the CRLF that ends the line.
    #[error("bare CR or LF in command line")]
    BareLineEnding,
    /// The line holds a NUL octet.
    #[error("NUL octet in command line")]
    NulOctet,
    /// The line is not valid UTF-8.
    #[error("command line is not valid UTF-8")]
    InvalidUtf8,
    /// The verb is missing or malformed.
    #[error("syntax error, command unrecognized")]
    InvalidVerb,
    /// AUTH's initial response is not base64: 501 5.5.2, as for any SASL
    /// response that cannot be decoded (RFC 4954 §4).
    #[error("AUTH initial response is not base64")]
    InvalidInitialResponse,
    /// The command needs an argument and got none.
    #[error("{verb} requires an argument")]
    MissingArgument {
        /// The command's verb.
        verb: &'static str,
    },
    /// The command takes no argument and got one.
    #[error("{verb} takes no argument")]
    UnexpectedArgument {
        /// The command's verb.
        verb: &'static str,
    },
    /// The argument breaks the command's syntax.
    #[error("invalid {verb} argument: {reason}")]
    InvalidArgument {
        /// The command's verb.
        verb: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The sender path of MAIL is malformed.
    #[error("invalid sender address: {0}")]
    InvalidReversePath(PathError),
    /// The recipient path of RCPT is malformed.
    #[error("invalid recipient address: {0}")]
    InvalidForwardPath(PathError),
    /// An ESMTP parameter is malformed (bad keyword or value).
    #[error("invalid {keyword} parameter")]
    InvalidParameter {
        /// The parameter's keyword (`"SIZE"`, ...), or `"ESMTP"` for an
        /// unknown keyword that is itself malformed.
        keyword: &'static str,
    },
    /// The same ESMTP parameter was given twice.
    #[error("duplicate {keyword} parameter")]
    DuplicateParameter {
        /// The parameter's keyword, or `"ESMTP"` for an unknown one.
        keyword: &'static str,
    },
}

impl CommandError {
    /// The SMTP reply code a server answers this error with.
    #[must_use]
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            CommandError::LineTooLong
            | CommandError::AuthLineTooLong
            | CommandError::BareLineEnding
            | CommandError::NulOctet
            | CommandError::InvalidUtf8
            | CommandError::InvalidVerb => ReplyCode::SYNTAX_ERROR,
            CommandError::InvalidReversePath(PathError::LocalPartTooLong)
            | CommandError::InvalidForwardPath(PathError::LocalPartTooLong)
            | CommandError::InvalidReversePath(PathError::DomainTooLong)
            | CommandError::InvalidForwardPath(PathError::DomainTooLong) => {
                ReplyCode::MAILBOX_NAME_NOT_ALLOWED
            }
            _ => ReplyCode::PARAMETER_SYNTAX_ERROR,
        }
    }

    /// The RFC 3463 enhanced status code for the reply.
    #[must_use]
    pub fn enhanced_code(&self) -> EnhancedStatusCode {
        match self {
            // 5.5.2: syntax error (RFC 3463 §3.6).
            CommandError::LineTooLong
            | CommandError::BareLineEnding
            | CommandError::NulOctet
            | CommandError::InvalidUtf8
            | CommandError::InvalidVerb
            | CommandError::InvalidInitialResponse => perm(5, 2),
            // RFC 4954 §6 registers 5.5.6 for one thing only: "500 5.5.6
            // Authentication Exchange line is too long".
            CommandError::AuthLineTooLong => perm(5, 6),
            // 5.1.7: bad sender's mailbox address syntax.
            CommandError::InvalidReversePath(_) => perm(1, 7),
            // 5.1.3: bad destination mailbox address syntax.
            CommandError::InvalidForwardPath(_) => perm(1, 3),
            // 5.5.4: invalid command arguments.
            CommandError::MissingArgument { .. }
            | CommandError::UnexpectedArgument { .. }
            | CommandError::InvalidArgument { .. }
            | CommandError::InvalidParameter { .. }
            | CommandError::DuplicateParameter { .. } => perm(5, 4),
        }
    }
}
