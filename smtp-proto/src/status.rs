//! Reply codes and RFC 3463 enhanced status codes.
//!
//! ```
//! use smtp_proto::status::{EnhancedStatusCode, ReplyAction, ReplyCode, StatusClass};
//!
//! let code = ReplyCode::new(451).unwrap();
//! assert_eq!(code, ReplyCode::LOCAL_ERROR);
//! assert_eq!(code.action(), ReplyAction::RetryLater);
//! assert!(ReplyCode::new(600).is_none());
//!
//! let enhanced = EnhancedStatusCode::new(StatusClass::PermanentFailure, 7, 1).unwrap();
//! assert_eq!(enhanced.to_string(), "5.7.1");
//! assert_eq!(EnhancedStatusCode::parse(b"5.7.1"), Some(enhanced));
//! ```

use core::fmt;

/// A three-digit SMTP reply code, always in the range 200–599.
///
/// `Reply-code = %x32-35 %x30-35 %x30-39` (RFC 5321 §4.2). The second digit
/// is accepted in the full range 0–9: RFC 5321 §4.2 asks clients to act on
/// the first digit of a code they do not know, and some servers use such
/// codes.
///
/// ```
/// use smtp_proto::status::{InvalidReplyCode, ReplyCategory, ReplyClass, ReplyCode};
///
/// let code = ReplyCode::from_digits(*b"452").unwrap();
/// assert_eq!(code, ReplyCode::INSUFFICIENT_STORAGE);
/// assert_eq!(code.class(), ReplyClass::TransientNegative);
/// assert_eq!(code.category(), ReplyCategory::MailSystem);
/// assert!(code.is_negative() && !code.is_permanent_negative());
/// assert_eq!(code.digits(), *b"452");
/// assert_eq!(code.to_string(), "452");
///
/// assert_eq!(ReplyCode::from_digits(*b"199"), None);
/// assert_eq!(ReplyCode::from_digits(*b"2x0"), None);
/// assert_eq!(ReplyCode::try_from(600), Err(InvalidReplyCode(600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// 220 `<domain>` Service ready.
    pub const SERVICE_READY: Self = Self(220);
    /// 221 `<domain>` Service closing transmission channel.
    pub const SERVICE_CLOSING: Self = Self(221);
    /// 235 Authentication succeeded (RFC 4954).
    pub const AUTH_SUCCEEDED: Self = Self(235);
    /// 250 Requested mail action okay, completed.
    pub const OK: Self = Self(250);
    /// 251 User not local; will forward.
    pub const USER_NOT_LOCAL_WILL_FORWARD: Self = Self(251);
    /// 252 Cannot VRFY user, but will accept message and attempt delivery.
    pub const CANNOT_VRFY: Self = Self(252);
    /// 334 Server challenge during AUTH (RFC 4954).
    pub const AUTH_CONTINUE: Self = Self(334);
    /// 354 Start mail input; end with `<CRLF>.<CRLF>`.
    pub const START_MAIL_INPUT: Self = Self(354);
    /// 421 `<domain>` Service not available, closing transmission channel.
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    /// 450 Requested mail action not taken: mailbox unavailable (transient).
    pub const MAILBOX_BUSY: Self = Self(450);
    /// 451 Requested action aborted: local error in processing.
    pub const LOCAL_ERROR: Self = Self(451);
    /// 452 Requested action not taken: insufficient system storage.
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    /// 455 Server unable to accommodate parameters.
    pub const PARAMETERS_NOT_ACCOMMODATED: Self = Self(455);
    /// 500 Syntax error, command unrecognized (also: line too long).
    pub const SYNTAX_ERROR: Self = Self(500);
    /// 501 Syntax error in parameters or arguments.
    pub const PARAMETER_SYNTAX_ERROR: Self = Self(501);
    /// 502 Command not implemented.
    pub const COMMAND_NOT_IMPLEMENTED: Self = Self(502);
    /// 503 Bad sequence of commands.
    pub const BAD_SEQUENCE: Self = Self(503);
    /// 504 Command parameter not implemented.
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// 521 Host does not accept mail (RFC 7504).
    pub const HOST_DOES_NOT_ACCEPT_MAIL: Self = Self(521);
    /// 530 Authentication required (RFC 4954), or must issue STARTTLS first (RFC 3207).
    pub const AUTH_REQUIRED: Self = Self(530);
    /// 534 Authentication mechanism is too weak (RFC 4954).
    pub const AUTH_MECHANISM_TOO_WEAK: Self = Self(534);
    /// 535 Authentication credentials invalid (RFC 4954).
    pub const AUTH_CREDENTIALS_INVALID: Self = Self(535);
    /// 538 Encryption required for requested authentication mechanism (RFC 4954).
    pub const ENCRYPTION_REQUIRED: Self = Self(538);
    /// 550 Requested action not taken: mailbox unavailable.
    pub const MAILBOX_UNAVAILABLE: Self = Self(550);
    /// 551 User not local; please try `<forward-path>`.
    pub const USER_NOT_LOCAL: Self = Self(551);
    /// 552 Requested mail action aborted: exceeded storage allocation.
    pub const EXCEEDED_STORAGE: Self = Self(552);
    /// 553 Requested action not taken: mailbox name not allowed.
    pub const MAILBOX_NAME_NOT_ALLOWED: Self = Self(553);
    /// 554 Transaction failed (or, as a greeting, no SMTP service here).
    pub const TRANSACTION_FAILED: Self = Self(554);
    /// 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
    pub const PARAMETERS_NOT_RECOGNIZED: Self = Self(555);
    /// 556 Domain does not accept mail (RFC 7504).
    pub const DOMAIN_DOES_NOT_ACCEPT_MAIL: Self = Self(556);

    /// A reply code from its number, `None` outside 200–599.
    #[must_use]
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 200 && code <= 599 {
            Some(Self(code))
        } else {
            None
        }
    }

    /// Parses the three ASCII digits of a reply code (`"250"`).
    #[must_use]
    pub const fn from_digits(digits: [u8; 3]) -> Option<Self> {
        let [a, b, c] = digits;
        if a < b'2' || a > b'5' || !b.is_ascii_digit() || !c.is_ascii_digit() {
            return None;
        }
        Some(Self(
            (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16,
        ))
    }

    /// The code as a number.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The three ASCII digits of the code.
    #[must_use]
    pub const fn digits(self) -> [u8; 3] {
        let n = self.0;
        [
            b'0' + (n / 100) as u8,
            b'0' + (n / 10 % 10) as u8,
            b'0' + (n % 10) as u8,
        ]
    }

    /// The class given by the first digit (RFC 5321 §4.2.1).
    #[must_use]
    pub const fn class(self) -> ReplyClass {
        match self.0 / 100 {
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            _ => ReplyClass::PermanentNegative,
        }
    }

    /// The category given by the second digit (RFC 5321 §4.2.1).
    #[must_use]
    pub const fn category(self) -> ReplyCategory {
        match self.0 / 10 % 10 {
            0 => ReplyCategory::Syntax,
            1 => ReplyCategory::Information,
            2 => ReplyCategory::Connections,
            3 => ReplyCategory::Unspecified3,
            4 => ReplyCategory::Unspecified4,
            5 => ReplyCategory::MailSystem,
            _ => ReplyCategory::Other,
        }
    }

    /// What a client should do after this reply (see [`ReplyAction`]).
    #[must_use]
    pub const fn action(self) -> ReplyAction {
        match self.class() {
            ReplyClass::PositiveCompletion | ReplyClass::PositiveIntermediate => {
                ReplyAction::Continue
            }
            ReplyClass::TransientNegative => ReplyAction::RetryLater,
            ReplyClass::PermanentNegative => ReplyAction::GiveUp,
        }
    }

    /// 2yz: the requested action was completed.
    #[must_use]
    pub const fn is_positive_completion(self) -> bool {
        self.0 / 100 == 2
    }

    /// 3yz: accepted, the server waits for more (DATA content, AUTH response).
    #[must_use]
    pub const fn is_positive_intermediate(self) -> bool {
        self.0 / 100 == 3
    }

    /// 2yz or 3yz.
    #[must_use]
    pub const fn is_positive(self) -> bool {
        self.0 < 400
    }

    /// 4yz: not done now, the same request may succeed later.
    #[must_use]
    pub const fn is_transient_negative(self) -> bool {
        self.0 / 100 == 4
    }

    /// 5yz: not done, and repeating the same request will not help.
    #[must_use]
    pub const fn is_permanent_negative(self) -> bool {
        self.0 / 100 == 5
    }

    /// 4yz or 5yz.
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.0 >= 400
    }

    /// 421: the server is closing the connection (RFC 5321 §3.8); the
    /// client should retry the whole session later.
    #[must_use]
    pub const fn is_service_shutdown(self) -> bool {
        self.0 == 421
    }

    /// The enhanced status class that matches this reply's first digit, or
    /// `None` for 3yz replies (which carry no enhanced code, RFC 2034 §4).
    #[must_use]
    pub const fn status_class(self) -> Option<StatusClass> {
        match self.0 / 100 {
            2 => Some(StatusClass::Success),
            4 => Some(StatusClass::PersistentTransientFailure),
            5 => Some(StatusClass::PermanentFailure),
            _ => None,
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<ReplyCode> for u16 {
    fn from(code: ReplyCode) -> u16 {
        code.0
    }
}

impl TryFrom<u16> for ReplyCode {
    type Error = InvalidReplyCode;

    fn try_from(code: u16) -> Result<Self, Self::Error> {
        Self::new(code).ok_or(InvalidReplyCode(code))
    }
}

/// A number outside 200–599 was given as a reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reply code {0} is outside 200-599")]
pub struct InvalidReplyCode(pub u16);

/// The class of a reply, from its first digit (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyClass {
    /// 2yz: the requested action has been successfully completed.
    PositiveCompletion,
    /// 3yz: accepted, but held pending further information.
    PositiveIntermediate,
    /// 4yz: not accepted, the error condition is temporary.
    TransientNegative,
    /// 5yz: not accepted, and will not be.
    PermanentNegative,
}

/// The category of a reply, from its second digit (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyCategory {
    /// x0z: syntax errors, commands that fit no functional category.
    Syntax,
    /// x1z: replies to requests for information (status, help).
    Information,
    /// x2z: replies about the transmission channel.
    Connections,
    /// x3z: unspecified (used by AUTH, RFC 4954).
    Unspecified3,
    /// x4z: unspecified.
    Unspecified4,
    /// x5z: the status of the receiver mail system.
    MailSystem,
    /// x6z–x9z: outside RFC 5321's categories.
    Other,
}

/// The decision a client takes after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyAction {
    /// 2yz/3yz: go on with the next step of the transaction.
    Continue,
    /// 4yz: the request failed for now; try again later (for a 421, the
    /// whole session is closing).
    RetryLater,
    /// 5yz: the request failed for good; do not repeat it unchanged.
    GiveUp,
}

/// The class of an enhanced status code (RFC 3463 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StatusClass {
    /// `2.X.X` Success.
    Success,
    /// `4.X.X` Persistent transient failure.
    PersistentTransientFailure,
    /// `5.X.X` Permanent failure.
    PermanentFailure,
}

impl StatusClass {
    /// The class digit (2, 4 or 5).
    #[must_use]
    pub const fn digit(self) -> u8 {
        match self {
            Self::Success => 2,
            Self::PersistentTransientFailure => 4,
            Self::PermanentFailure => 5,
        }
    }

    /// The class for a digit, `None` unless 2, 4 or 5.
    #[must_use]
    pub const fn from_digit(digit: u8) -> Option<Self> {
        match digit {
            2 => Some(Self::Success),
            4 => Some(Self::PersistentTransientFailure),
            5 => Some(Self::PermanentFailure),
            _ => None,
        }
    }
}

/// The subject of an enhanced status code (RFC 3463 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusSubject {
    /// `X.0.XXX` Other or undefined status.
    Other,
    /// `X.1.XXX` Addressing status.
    Addressing,
    /// `X.2.XXX` Mailbox status.
    Mailbox,
    /// `X.3.XXX` Mail system status.
    MailSystem,
    /// `X.4.XXX` Network and routing status.
    NetworkRouting,
    /// `X.5.XXX` Mail delivery protocol status.
    DeliveryProtocol,
    /// `X.6.XXX` Message content or media status.
    MessageContent,
    /// `X.7.XXX` Security or policy status.
    SecurityPolicy,
    /// A subject number that RFC 3463 does not define.
    Unassigned(u16),
}

impl StatusSubject {
    /// The subject for its number.
    #[must_use]
    pub const fn from_number(n: u16) -> Self {
        match n {
            0 => Self::Other,
            1 => Self::Addressing,
            2 => Self::Mailbox,
            3 => Self::MailSystem,
            4 => Self::NetworkRouting,
            5 => Self::DeliveryProtocol,
            6 => Self::MessageContent,
            7 => Self::SecurityPolicy,
            n => Self::Unassigned(n),
        }
    }
}

/// An RFC 3463 enhanced mail system status code, `class.subject.detail`.
///
/// Values are validated: the class is 2, 4 or 5 and subject and detail are
/// at most 999, so every value writes as valid RFC 3463 text.
///
/// ```
/// use smtp_proto::status::{EnhancedStatusCode, StatusClass, StatusSubject};
/// let code = EnhancedStatusCode::new(StatusClass::PermanentFailure, 1, 3).unwrap();
/// assert_eq!(code.to_string(), "5.1.3");
/// assert_eq!(code.subject_kind(), StatusSubject::Addressing);
/// assert!(EnhancedStatusCode::new(StatusClass::Success, 1000, 0).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedStatusCode {
    class: StatusClass,
    subject: u16,
    detail: u16,
}

impl EnhancedStatusCode {
    /// `2.0.0` Other or undefined success.
    pub const SUCCESS: Self = Self::known(StatusClass::Success, 0, 0);
    /// `2.1.0`: X.1.0 is "other address status" (RFC 3463 §3.2), the code
    /// servers commonly send for an accepted sender.
    pub const SENDER_OK: Self = Self::known(StatusClass::Success, 1, 0);
    /// `2.1.5` Destination address valid.
    pub const RECIPIENT_OK: Self = Self::known(StatusClass::Success, 1, 5);
    /// `2.6.0`: X.6.0 is "other or undefined media error" (RFC 3463 §3.7);
    /// some servers still answer an accepted message with `250 2.6.0`.
    /// [`SUCCESS`](Self::SUCCESS) (`2.0.0`) is the usual code for that.
    pub const MESSAGE_ACCEPTED: Self = Self::known(StatusClass::Success, 6, 0);
    /// `4.3.0` Other or undefined mail system status (transient).
    pub const TRANSIENT_SYSTEM: Self = Self::known(StatusClass::PersistentTransientFailure, 3, 0);
    /// `5.1.1` Bad destination mailbox address.
    pub const BAD_MAILBOX: Self = Self::known(StatusClass::PermanentFailure, 1, 1);
    /// `5.5.1` Invalid command.
    pub const INVALID_COMMAND: Self = Self::known(StatusClass::PermanentFailure, 5, 1);
    /// `5.5.2` Syntax error.
    pub const SYNTAX_ERROR: Self = Self::known(StatusClass::PermanentFailure, 5, 2);
    /// `5.7.1` Delivery not authorized, message refused.
    pub const NOT_AUTHORIZED: Self = Self::known(StatusClass::PermanentFailure, 7, 1);

    pub(crate) const fn known(class: StatusClass, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }

    /// Builds a code from its three parts; `None` when subject or detail
    /// exceeds 999 (RFC 3463 allows at most three digits).
    #[must_use]
    pub const fn new(class: StatusClass, subject: u16, detail: u16) -> Option<Self> {
        if subject > 999 || detail > 999 {
            return None;
        }
        Some(Self::known(class, subject, detail))
    }

    /// The class.
    #[must_use]
    pub const fn class(self) -> StatusClass {
        self.class
    }

    /// The subject number.
    #[must_use]
    pub const fn subject(self) -> u16 {
        self.subject
    }

    /// The subject, typed.
    #[must_use]
    pub const fn subject_kind(self) -> StatusSubject {
        StatusSubject::from_number(self.subject)
    }

    /// The detail number.
    #[must_use]
    pub const fn detail(self) -> u16 {
        self.detail
    }

    /// Parses a whole code: `status-code = class "." subject "." detail`,
    /// `class = "2" / "4" / "5"`, `subject = 1*3digit`, `detail = 1*3digit`,
    /// each number without leading zeros (RFC 3463 §2).
    ///
    /// ```
    /// use smtp_proto::status::EnhancedStatusCode;
    ///
    /// assert_eq!(EnhancedStatusCode::parse(b"5.1.1"), Some(EnhancedStatusCode::BAD_MAILBOX));
    /// assert_eq!(EnhancedStatusCode::parse(b"5.01.1"), None); // a leading zero
    /// assert_eq!(EnhancedStatusCode::parse(b"3.0.0"), None); // no class 3
    /// assert_eq!(EnhancedStatusCode::parse(b"5.1.1 "), None); // the whole input
    /// let code: EnhancedStatusCode = "4.7.0".parse().unwrap();
    /// let mut out = Vec::new();
    /// code.write_to(&mut out);
    /// assert_eq!(out, b"4.7.0");
    /// ```
    #[must_use]
    pub fn parse(input: &[u8]) -> Option<Self> {
        match parse_status_code(input) {
            Some((code, used)) if used == input.len() => Some(code),
            _ => None,
        }
    }

    /// Appends the code's text to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        out.push(b'0' + self.class.digit());
        out.push(b'.');
        push_number(out, self.subject);
        out.push(b'.');
        push_number(out, self.detail);
    }
}

fn push_number(out: &mut Vec<u8>, n: u16) {
    if n >= 100 {
        out.push(b'0' + (n / 100) as u8);
    }
    if n >= 10 {
        out.push(b'0' + (n / 10 % 10) as u8);
    }
    out.push(b'0' + (n % 10) as u8);
}

/// `1*3digit` without a leading zero (RFC 3463 §2: "Each numeric sub-code
/// within the status-code MUST be expressed without leading zero digits"):
/// returns the number and the digits used.
fn parse_1_3_digit(input: &[u8]) -> Option<(u16, usize)> {
    let mut n: u16 = 0;
    let mut used = 0;
    for &b in input.iter().take(3) {
        if !b.is_ascii_digit() {
            break;
        }
        n = n * 10 + u16::from(b - b'0');
        used += 1;
    }
    match input {
        [b'0', d, ..] if used > 1 && d.is_ascii_digit() => None,
        _ => (used > 0).then_some((n, used)),
    }
}

/// `status-code = class "." subject "." detail` (RFC 3463 §2) at the start
/// of `input`; returns the code and the bytes it took. A fourth digit right
/// after the subject or detail is not part of a code.
pub(crate) fn parse_status_code(input: &[u8]) -> Option<(EnhancedStatusCode, usize)> {
    let (&c, rest) = input.split_first()?;
    let class = StatusClass::from_digit(c.wrapping_sub(b'0'))?;
    let rest = rest.strip_prefix(b".")?;
    let (subject, s_len) = parse_1_3_digit(rest)?;
    let rest = rest.get(s_len..)?.strip_prefix(b".")?;
    let (detail, d_len) = parse_1_3_digit(rest)?;
    if rest.get(d_len).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((
        EnhancedStatusCode::known(class, subject, detail),
        1 + 1 + s_len + 1 + d_len,
    ))
}

impl EnhancedStatusCode {
    /// The octets its text form (`class.subject.detail`) takes, without
    /// writing it.
    pub(crate) fn text_len(&self) -> usize {
        let digits = |n: u16| n.checked_ilog10().map_or(1, |d| d as usize + 1);
        1 + 1 + digits(self.subject) + 1 + digits(self.detail)
    }
}

impl fmt::Display for EnhancedStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class.digit(), self.subject, self.detail)
    }
}

impl core::str::FromStr for EnhancedStatusCode {
    type Err = InvalidStatusCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes()).ok_or(InvalidStatusCode)
    }
}

/// Text that is not an RFC 3463 enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an enhanced status code (class.subject.detail)")]
pub struct InvalidStatusCode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_table() {
        type Case = (&'static [u8], (u8, u16, u16));
        let ok: &[Case] = &[
            (b"2.0.0", (2, 0, 0)),
            (b"5.7.1", (5, 7, 1)),
            (b"4.4.7", (4, 4, 7)),
            (b"5.1.10", (5, 1, 10)),
            (b"5.999.999", (5, 999, 999)),
        ];
        for (input, (c, s, d)) in ok {
            let code = EnhancedStatusCode::parse(input).expect("valid");
            assert_eq!(
                (code.class().digit(), code.subject(), code.detail()),
                (*c, *s, *d)
            );
            assert_eq!(code.to_string().as_bytes(), *input);
        }
        for bad in [
            &b"3.0.0"[..],
            b"1.0.0",
            b"2.0",
            b"2..0",
            b"2.0.",
            b"2.1000.0",
            b"2.0.1000",
            b"x.0.0",
            b"",
            b"25.0.0",
            // RFC 3463 §2: no leading zero digits.
            b"5.01.1",
            b"5.1.01",
            b"5.00.0",
            b"5.0.000",
            b"2.001.1",
        ] {
            assert_eq!(EnhancedStatusCode::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reply_code_range_and_class() {
        assert!(ReplyCode::new(199).is_none());
        assert!(ReplyCode::new(600).is_none());
        assert_eq!(ReplyCode::from_digits(*b"099"), None);
        assert_eq!(ReplyCode::from_digits(*b"600"), None);
        assert_eq!(ReplyCode::from_digits(*b"2a0"), None);
        assert_eq!(
            ReplyCode::from_digits(*b"354"),
            Some(ReplyCode::START_MAIL_INPUT)
        );
        assert_eq!(ReplyCode::OK.digits(), *b"250");
        assert_eq!(
            ReplyCode::START_MAIL_INPUT.class(),
            ReplyClass::PositiveIntermediate
        );
        assert_eq!(
            ReplyCode::SERVICE_NOT_AVAILABLE.action(),
            ReplyAction::RetryLater
        );
        assert_eq!(ReplyCode::MAILBOX_UNAVAILABLE.action(), ReplyAction::GiveUp);
        assert_eq!(ReplyCode::AUTH_CONTINUE.action(), ReplyAction::Continue);
        assert_eq!(ReplyCode::AUTH_CONTINUE.status_class(), None);
        assert_eq!(ReplyCode::OK.category(), ReplyCategory::MailSystem);
    }

    #[test]
    fn text_len_is_the_written_length() {
        for subject in [0u16, 9, 10, 99, 100, 999] {
            for detail in [0u16, 7, 10, 100, 999] {
                let esc = EnhancedStatusCode::new(StatusClass::PermanentFailure, subject, detail)
                    .expect("in range");
                assert_eq!(esc.text_len(), esc.to_string().len(), "{esc}");
            }
        }
    }
}
