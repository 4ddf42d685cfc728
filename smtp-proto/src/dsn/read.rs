//! Reading bounces: the delivery status fields of a `message/delivery-status`
//! or `message/global-delivery-status` part ([`parse_delivery_status`]), and
//! that part found in a whole bounce message ([`parse_report`]).
//!
//! See the [module](super#reading-bounces) notes for the rules and an
//! example.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::Action;
use crate::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use crate::trace::Timestamp;

/// Why a bounce, or a recipient block of one, cannot be read; or, for
/// [`ReadError::StatusMismatch`], what is wrong with a recipient block read
/// all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The message's `Content-Type` is missing or not `multipart/*`.
    #[error("the message is not a multipart message")]
    NotMultipart,
    /// The multipart `Content-Type` has no `boundary` parameter, or one
    /// that is empty or over 200 octets.
    #[error("the multipart content type has no usable boundary")]
    NoBoundary,
    /// No line of the body is a delimiter of the boundary.
    #[error("no delimiter of the boundary is in the body")]
    NoDelimiter,
    /// The delivery status part is the last one and no closing delimiter
    /// ends it: the message was cut short.
    #[error("the multipart body ends before the delivery status part does")]
    Unterminated,
    /// No part is `message/delivery-status` or
    /// `message/global-delivery-status`.
    #[error("no delivery status part")]
    NoStatusPart,
    /// The delivery status part has a `Content-Transfer-Encoding` other
    /// than `7bit`, `8bit`, `binary`, `base64` and `quoted-printable`.
    #[error("unknown content transfer encoding")]
    UnknownEncoding,
    /// The delivery status part is `base64` that does not decode.
    #[error("the base64 of the delivery status part does not decode")]
    BadBase64,
    /// A recipient block lacks the named required field.
    #[error("the {0} field is missing")]
    MissingField(&'static str),
    /// The named field's value does not parse; or, for an address or an
    /// MTA name (`Final-Recipient`, `Original-Recipient`, `Reporting-MTA`,
    /// `DSN-Gateway`, `Received-From-MTA`, `Remote-MTA`), it holds a
    /// control character (but a tab), which none holds (RFC 5321 §4.1.2,
    /// RFC 6533 §3): such a value is not read (see the
    /// [module](super#reading-bounces) notes).
    #[error("the {0} field does not parse")]
    InvalidField(&'static str),
    /// The named field (`extension field` for one the reader does not
    /// know) holds octets that are not UTF-8. The field is read all the
    /// same, each such octet as U+FFFD: its value is not the one written
    /// (the octets are in the message, at [`ParsedReport::status_range`]).
    #[error("the {0} field holds octets that are not UTF-8")]
    NotUtf8(&'static str),
    /// The delivery status fields hold no recipient block.
    #[error("the delivery status names no recipient")]
    NoRecipients,
    /// A recipient block's `Status` class does not go with its `Action`:
    /// `delivered`, `relayed` and `expanded` take a `2.x.x` status,
    /// `delayed` a `4.x.x` one, and `failed` a `4.x.x` or `5.x.x` one
    /// (RFC 3464 §2.3.3, §2.3.4; the note of §2.3.3 gives `failed` with a
    /// `4.x.x` status, for a temporary failure given up on). The block is
    /// read all the same: see [`BlockProblem::recipient`].
    #[error("the status {status} does not go with the action {action}")]
    StatusMismatch {
        /// The `Action` read.
        action: Action,
        /// The `Status` read.
        status: EnhancedStatusCode,
    },
}

/// A field kept as it was: an extension field (`X-Postfix-Queue-ID`,
/// `X-Display-Name`, ...), or a known one the reader does not interpret.
/// Octets that are not UTF-8 are read as U+FFFD, and the block's problems
/// name the field ([`ReadError::NotUtf8`]).
/// Borrowed from the [`Fields`] that keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field<'a> {
    /// The name, as written.
    pub name: &'a str,
    /// The value, unfolded (line ends of folding removed) and trimmed.
    pub value: &'a str,
}

/// The fields of a block kept as they were ([`PerMessage::extensions`],
/// [`RecipientStatus::extensions`]), in order.
///
/// They are kept in one buffer, the text of each field and two octets
/// more, so that a status part of millions of tiny fields costs about its
/// own size: read them with [`Fields::iter`] (or `for field in &fields`).
/// [`Fields::get`] and [`Fields::find`] walk the fields before the one
/// they give.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Fields {
    /// Each field's name, a line feed, its value, a line feed: neither a
    /// name nor a value read holds a line feed.
    text: String,
    len: usize,
}

impl Fields {
    /// How many fields there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fields, in order.
    #[must_use]
    pub fn iter(&self) -> FieldIter<'_> {
        FieldIter {
            rest: &self.text,
            left: self.len,
        }
    }

    /// The field at `index`, counted from 0 in order.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<Field<'_>> {
        self.iter().nth(index)
    }

    /// The first field named `name`, ignoring case.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<Field<'_>> {
        self.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Adds a field: the name as written, the value trimmed; each read as
    /// UTF-8, lossily.
    fn push(&mut self, name: &[u8], value: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(name));
        self.text.push('\n');
        self.text
            .push_str(String::from_utf8_lossy(value).trim_ascii());
        self.text.push('\n');
        self.len += 1;
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = Field<'a>;
    type IntoIter = FieldIter<'a>;

    fn into_iter(self) -> FieldIter<'a> {
        self.iter()
    }
}

/// The fields of a [`Fields`], in order ([`Fields::iter`]).
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    rest: &'a str,
    left: usize,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let (name, rest) = self.rest.split_once('\n')?;
        let (value, rest) = rest.split_once('\n')?;
        self.rest = rest;
        self.left = self.left.saturating_sub(1);
        Some(Field { name, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

/// A value of the form `type; value` (RFC 3464 §2.1.2): an address
/// (`rfc822; bob@example.net`), an MTA name (`dns; mx.example.net`) or a
/// diagnostic (`smtp; 550 5.1.1 No such user`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypedValue {
    /// The type before the `;`, as written, trimmed; empty when the value
    /// has no `;` or when its text before the first `;` is not an atom
    /// (an address written without its type, `"a;b"@example.net`).
    pub kind: String,
    /// What follows the `;`, trimmed. For addresses and MTA names, the
    /// comments (`(...)`) are removed; a `Diagnostic-Code` is kept as it is.
    pub value: String,
}

impl TypedValue {
    /// Whether the type is `kind`, ignoring case.
    #[must_use]
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }

    /// The address of an `Original-Recipient` or `Final-Recipient`:
    /// the value without enclosing `<` `>`; for the type `utf-8` (RFC
    /// 6533), with the `+XX` of its xtext form (when it is ASCII) and its
    /// `\x{HEXPOINT}` decoded. A value that does not decode is returned as
    /// it is: a `\` that starts no `\x{HEXPOINT}` as RFC 6533 §3 writes it
    /// (`\x{41}`, `\x{00E9}`), or a value that would decode to a control
    /// character (`\x{D}`, `+0A`, C1 controls), which no mailbox holds.
    /// An `rfc822` address is written decoded (RFC 3461 §6.3), and is not
    /// decoded again (`+` is common in local parts).
    #[must_use]
    pub fn address(&self) -> String {
        let v = self.value.trim_ascii();
        let v = v
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(v);
        if !self.is_kind("utf-8") {
            return v.to_string();
        }
        let unxtext = if v.is_ascii() {
            let raw = crate::command::XText::new(v).map(|x| x.decode().into_owned());
            raw.ok().and_then(|r| String::from_utf8(r).ok())
        } else {
            None
        };
        let text = unxtext.as_deref().unwrap_or(v);
        // The decoded value is a mailbox (`utf-8-address`, RFC 6533 §3),
        // which holds no control character: one that decodes to any is
        // not decoded, so none is made up from `\x{D}` or `+0A`.
        match super::decode_embedded(text) {
            Some(decoded) if !decoded.chars().any(char::is_control) => decoded,
            _ => v.to_string(),
        }
    }
}

/// The per-message fields of a delivery status (RFC 3464 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessage {
    /// `Original-Envelope-Id`: the `ENVID=` the message was sent with.
    pub original_envelope_id: Option<String>,
    /// `Reporting-MTA` (required by RFC 3464, not by this reader).
    pub reporting_mta: Option<TypedValue>,
    /// `DSN-Gateway`.
    pub dsn_gateway: Option<TypedValue>,
    /// `Received-From-MTA`.
    pub received_from_mta: Option<TypedValue>,
    /// `Arrival-Date`, as written ([`PerMessage::arrival`] reads it).
    pub arrival_date: Option<String>,
    /// Every other field, in order.
    pub extensions: Fields,
    /// What is wrong with the per-message fields, each named once, in
    /// the order found: [`ReadError::InvalidField`] for an MTA name with a
    /// control character (left `None`), [`ReadError::NotUtf8`] for a field
    /// read with U+FFFD for octets that are not UTF-8.
    pub problems: Vec<ReadError>,
}

impl PerMessage {
    /// `Arrival-Date` read as a time: `None` without the field, and
    /// [`ReadError::InvalidField`] when it is not an RFC 5322 `date-time`
    /// (see [`Timestamp::parse_date_time`] for the forms taken).
    #[must_use]
    pub fn arrival(&self) -> Option<Result<Timestamp, ReadError>> {
        self.arrival_date
            .as_deref()
            .map(|d| date(d, "Arrival-Date"))
    }
}

/// A date field's value as a time.
fn date(text: &str, field: &'static str) -> Result<Timestamp, ReadError> {
    Timestamp::parse_date_time(text).map_err(|_| ReadError::InvalidField(field))
}

/// The fields of one recipient (RFC 3464 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecipientStatus {
    /// `Original-Recipient`: the `ORCPT=` the recipient was given with.
    pub original_recipient: Option<TypedValue>,
    /// `Final-Recipient`: the address the report is about.
    pub final_recipient: TypedValue,
    /// `Action`.
    pub action: Action,
    /// `Status`.
    pub status: EnhancedStatusCode,
    /// `Remote-MTA`.
    pub remote_mta: Option<TypedValue>,
    /// `Diagnostic-Code`, usually `smtp; <the remote reply>`.
    pub diagnostic_code: Option<TypedValue>,
    /// `Last-Attempt-Date`, as written ([`RecipientStatus::last_attempt`]
    /// reads it).
    pub last_attempt_date: Option<String>,
    /// `Final-Log-ID`, as written.
    pub final_log_id: Option<String>,
    /// `Will-Retry-Until`, as written ([`RecipientStatus::retry_until`]
    /// reads it).
    pub will_retry_until: Option<String>,
    /// Every other field, in order.
    pub extensions: Fields,
}

impl RecipientStatus {
    /// `Last-Attempt-Date` read as a time: `None` without the field, and
    /// [`ReadError::InvalidField`] when it is not an RFC 5322 `date-time`
    /// (see [`Timestamp::parse_date_time`] for the forms taken).
    #[must_use]
    pub fn last_attempt(&self) -> Option<Result<Timestamp, ReadError>> {
        self.last_attempt_date
            .as_deref()
            .map(|d| date(d, "Last-Attempt-Date"))
    }

    /// `Will-Retry-Until` read as a time, as
    /// [`RecipientStatus::last_attempt`] reads its field.
    #[must_use]
    pub fn retry_until(&self) -> Option<Result<Timestamp, ReadError>> {
        self.will_retry_until
            .as_deref()
            .map(|d| date(d, "Will-Retry-Until"))
    }

    /// The address of `Final-Recipient` (see [`TypedValue::address`]).
    #[must_use]
    pub fn address(&self) -> String {
        self.final_recipient.address()
    }

    /// The reply code at the start of an `smtp` `Diagnostic-Code`: three
    /// digits, then the end, a space, a tab or `-` (RFC 5321 §4.2).
    #[must_use]
    pub fn reply_code(&self) -> Option<ReplyCode> {
        let d = self
            .diagnostic_code
            .as_ref()
            .filter(|d| d.is_kind("smtp"))?;
        let digits = d.value.as_bytes().get(..3)?;
        if !digits.iter().all(u8::is_ascii_digit)
            || matches!(d.value.as_bytes().get(3), Some(b) if !matches!(b, b' ' | b'\t' | b'-'))
        {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        ReplyCode::new(n)
    }
}

/// A recipient block with something wrong: one left out of
/// [`DeliveryStatus::recipients`], or one read in spite of a
/// [`ReadError::StatusMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockProblem {
    /// Which recipient block, counted from 0 in the order written.
    pub block: usize,
    /// What is wrong with it.
    pub error: ReadError,
    /// Where the recipient read from the block is in
    /// [`DeliveryStatus::recipients`]: `Some` for a problem of a block read
    /// all the same: a [`ReadError::StatusMismatch`] (some hosts write,
    /// say, `Action: failed` with `Status: 2.0.0`), an
    /// `Original-Recipient` or a `Remote-MTA` not read
    /// ([`ReadError::InvalidField`]), a field read with U+FFFD for octets
    /// that are not UTF-8 ([`ReadError::NotUtf8`]); `None` for a block left
    /// out, and for each problem of it.
    pub recipient: Option<usize>,
}

/// The fields of a delivery status part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryStatus {
    /// The per-message fields.
    pub message: PerMessage,
    /// The recipients read, in order.
    pub recipients: Vec<RecipientStatus>,
    /// The recipient blocks that could not be read, and those read with
    /// something wrong (see [`BlockProblem::recipient`]), in the order
    /// written; a block may be named more than once, its own error first.
    pub problems: Problems,
}

/// The problems of a delivery status ([`DeliveryStatus::problems`]), in
/// the order of their blocks.
///
/// They are kept encoded in one buffer (a few octets for each), so that a
/// status part of millions of tiny bad blocks costs about its own size:
/// read them with [`Problems::iter`] (or `for problem in &problems`),
/// which gives each as a [`BlockProblem`]. [`Problems::get`] walks the
/// problems before the one it gives.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Each problem: its block (less the block of the one before) as a
    /// variable-length number, then a [`Fault`] code, then, for a status
    /// mismatch, the action, the status and the recipient; for a field
    /// flagged (codes 7 and 8), the field's [`Known`] code and the
    /// recipient plus one (0 for none).
    code: Vec<u8>,
    len: usize,
    /// The block of the last problem.
    last_block: usize,
}

impl Problems {
    /// How many problems there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The problems, in order.
    #[must_use]
    pub fn iter(&self) -> ProblemIter<'_> {
        ProblemIter {
            code: &self.code,
            block: 0,
            left: self.len,
        }
    }

    /// The problem at `index`, counted from 0 in order.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<BlockProblem> {
        self.iter().nth(index)
    }

    /// The first problem.
    #[must_use]
    pub fn first(&self) -> Option<BlockProblem> {
        self.iter().next()
    }

    /// Adds the problem of `block`, a block after that of the last one.
    fn push(&mut self, block: usize, fault: Fault, recipient: Option<usize>) {
        write_number(&mut self.code, block.saturating_sub(self.last_block));
        self.last_block = block;
        match fault {
            Fault::Missing(field) => self.code.push(field as u8),
            Fault::Invalid(field) => self.code.push(3 + field as u8),
            Fault::Mismatch(action, status) => {
                let action = ACTIONS.iter().position(|a| *a == action).unwrap_or(0);
                self.code
                    .extend([6, u8::try_from(action).unwrap_or(0), status.class().digit()]);
                write_number(&mut self.code, usize::from(status.subject()));
                write_number(&mut self.code, usize::from(status.detail()));
                write_number(&mut self.code, recipient.unwrap_or(0));
            }
            Fault::Flag(flag, known) => {
                self.code.extend([7 + flag as u8, known as u8]);
                write_number(&mut self.code, recipient.map_or(0, |r| r.saturating_add(1)));
            }
        }
        self.len += 1;
    }
}

impl fmt::Debug for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = BlockProblem;
    type IntoIter = ProblemIter<'a>;

    fn into_iter(self) -> ProblemIter<'a> {
        self.iter()
    }
}

/// The problems of a [`Problems`], in order ([`Problems::iter`]).
#[derive(Debug, Clone)]
pub struct ProblemIter<'a> {
    code: &'a [u8],
    block: usize,
    left: usize,
}

impl ProblemIter<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.code.split_first()?;
        self.code = rest;
        Some(b)
    }

    fn number(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

impl Iterator for ProblemIter<'_> {
    type Item = BlockProblem;

    fn next(&mut self) -> Option<BlockProblem> {
        self.block = self.block.checked_add(self.number()?)?;
        let code = self.byte()?;
        let (error, recipient) = match code {
            0..=2 => (
                ReadError::MissingField(Required::from_code(code)?.name()),
                None,
            ),
            3..=5 => (
                ReadError::InvalidField(Required::from_code(code - 3)?.name()),
                None,
            ),
            7 | 8 => {
                let name = Known::from_code(self.byte()?)?.name();
                let error = if code == 7 {
                    ReadError::InvalidField(name)
                } else {
                    ReadError::NotUtf8(name)
                };
                (error, self.number()?.checked_sub(1))
            }
            _ => {
                let action = *ACTIONS.get(usize::from(self.byte()?))?;
                let class = StatusClass::from_digit(self.byte()?)?;
                let subject = u16::try_from(self.number()?).ok()?;
                let detail = u16::try_from(self.number()?).ok()?;
                let status = EnhancedStatusCode::new(class, subject, detail)?;
                (
                    ReadError::StatusMismatch { action, status },
                    Some(self.number()?),
                )
            }
        };
        self.left = self.left.saturating_sub(1);
        Some(BlockProblem {
            block: self.block,
            error,
            recipient,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for ProblemIter<'_> {}

/// `n` in seven-bit groups, the low first, each but the last with its
/// high bit set.
fn write_number(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(u8::try_from(n & 0x7f).unwrap_or(0) | 0x80);
        n >>= 7;
    }
    out.push(u8::try_from(n).unwrap_or(0));
}

/// A field a recipient block requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Required {
    FinalRecipient = 0,
    Action = 1,
    Status = 2,
}

impl Required {
    fn name(self) -> &'static str {
        match self {
            Self::FinalRecipient => "Final-Recipient",
            Self::Action => "Action",
            Self::Status => "Status",
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [Self::FinalRecipient, Self::Action, Self::Status]
            .get(usize::from(code))
            .copied()
    }
}

/// What is wrong with a recipient block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// [`ReadError::MissingField`].
    Missing(Required),
    /// [`ReadError::InvalidField`].
    Invalid(Required),
    /// [`ReadError::StatusMismatch`].
    Mismatch(Action, EnhancedStatusCode),
    /// A field of a block, read or not.
    Flag(Flag, Known),
}

/// What is wrong with one field of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    /// [`ReadError::InvalidField`]: an address or an MTA name with a
    /// control character, not read.
    Invalid = 0,
    /// [`ReadError::NotUtf8`].
    NotUtf8 = 1,
}

/// The fields of a block flagged, one bit for each [`Known`], as
/// [`Flag::Invalid`] and [`Flag::NotUtf8`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags([u16; 2]);

impl Flags {
    fn set(&mut self, flag: Flag, known: Known) {
        self.0[flag as usize] |= 1 << known as u16;
    }

    /// The flags of `known` alone, taken out of `self`.
    fn take(&mut self, known: Known) -> Flags {
        let bit = 1 << known as u16;
        let taken = Flags(self.0.map(|m| m & bit));
        for m in &mut self.0 {
            *m &= !bit;
        }
        taken
    }

    /// Each flag set, [`Flag::Invalid`] ones first, in the order of
    /// [`Known`].
    fn iter(self) -> impl Iterator<Item = (Flag, Known)> {
        [Flag::Invalid, Flag::NotUtf8]
            .into_iter()
            .flat_map(move |flag| {
                Known::ALL
                    .into_iter()
                    .filter(move |&k| self.0[flag as usize] & (1 << k as u16) != 0)
                    .map(move |k| (flag, k))
            })
    }
}

/// Whether a value read holds a control character other than a tab
/// (which folding may leave): no address or host name holds one.
fn has_control(value: &TypedValue) -> bool {
    let control = |c: char| c.is_control() && c != '\t';
    value.kind.chars().any(control) || value.value.chars().any(control)
}

const ACTIONS: [Action; 5] = [
    Action::Failed,
    Action::Delayed,
    Action::Delivered,
    Action::Relayed,
    Action::Expanded,
];

/// One field of a header section as read: its unfolded value.
struct RawField {
    value: Vec<u8>,
}

impl RawField {
    fn text(&self) -> String {
        text(&self.value)
    }
}

/// The lines of `bytes`: each line's start and its content without the
/// line end (LF, or CRLF).
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        let rest = &bytes[start..];
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(lf) => (&rest[..lf], start + lf + 1),
            None => (rest, bytes.len()),
        };
        at = next;
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    })
}

fn is_wsp(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// The header section of `bytes`: the first field of each name in
/// `names` (read as [`parse_delivery_status`] reads fields: continuation
/// lines unfolded into it), and where the body starts (after the empty line;
/// the end when there is none). The other fields are passed over, not
/// kept, so a header of many fields costs no memory.
fn header_fields<const N: usize>(bytes: &[u8], names: [&str; N]) -> ([Option<RawField>; N], usize) {
    let mut found: [Option<RawField>; N] = std::array::from_fn(|_| None);
    // Which of `found` the last field read is, when it is one kept:
    // continuation lines go to it.
    let mut last: Option<usize> = None;
    for (start, line) in lines(bytes) {
        if line.is_empty() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |l| start + l + 1);
            return (found, end);
        }
        if line.first().is_some_and(is_wsp) {
            if let Some(field) = last.and_then(|i| found[i].as_mut()) {
                field.value.extend_from_slice(line);
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.is_empty() {
            continue;
        }
        last = names
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            .filter(|&i| found[i].is_none());
        if let Some(i) = last {
            found[i] = Some(RawField {
                value: line[colon + 1..].to_vec(),
            });
        }
    }
    (found, bytes.len())
}

/// `text` without its comments (`(...)`, nested, with `\` quoting),
/// quoted strings kept.
pub(super) fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted || depth > 0 => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    out.extend(next);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out.trim_ascii().to_string()
}

fn typed(text: &str, comments: bool) -> TypedValue {
    let text = if comments {
        strip_comments(text)
    } else {
        text.trim_ascii().to_string()
    };
    // The type is an atom (RFC 3464 §2.1.2), or left out before the `;`: a
    // value whose text before the `;` is neither is an address or name
    // written without its type (`"a;b"@example.net`).
    let is_atom = |kind: &str| {
        kind.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
    };
    match text
        .split_once(';')
        .filter(|(kind, _)| is_atom(kind.trim_ascii()))
    {
        Some((kind, value)) => TypedValue {
            kind: kind.trim_ascii().to_string(),
            value: value.trim_ascii().to_string(),
        },
        None => TypedValue {
            kind: String::new(),
            value: text,
        },
    }
}

fn parse_action(text: &str) -> Option<Action> {
    let text = strip_comments(text);
    let word = text.split_ascii_whitespace().next()?;
    ACTIONS
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(word))
}

/// The first word of the value as `class.subject.detail`, leading zeros
/// taken (RFC 3463 forbids them; some hosts write them).
fn parse_status(text: &str) -> Option<EnhancedStatusCode> {
    let text = strip_comments(text);
    let word = text.split_ascii_whitespace().next()?;
    let mut numbers = word.split('.');
    let mut next = || -> Option<u16> {
        let n = numbers.next()?;
        if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok()
    };
    let class = StatusClass::from_digit(u8::try_from(next()?).ok()?)?;
    let (subject, detail) = (next()?, next()?);
    if numbers.next().is_some() {
        return None;
    }
    EnhancedStatusCode::new(class, subject, detail)
}

/// The fields of a delivery status part, as bytes already decoded from its
/// transfer encoding: a per-message block, then one block per recipient,
/// separated by empty lines. See the [module](super#reading-bounces) notes.
///
/// A recipient whose `Status` does not go with its `Action` is read, and
/// named in [`DeliveryStatus::problems`] with
/// [`ReadError::StatusMismatch`].
///
/// The part is read in one pass, a field at a time: what is kept is what
/// is returned, the extension fields and the problems each in one buffer
/// ([`Fields`], [`Problems`]).
///
/// # Errors
/// When no recipient block is read: the error of the first block that
/// could not be, or [`ReadError::NoRecipients`] when there is none.
pub fn parse_delivery_status(bytes: &[u8]) -> Result<DeliveryStatus, ReadError> {
    let mut reader = StatusReader::default();
    // The field under way: its name, and its value unfolded so far (one
    // buffer for every field). A line that is not a field leaves it open:
    // a continuation line after it still belongs to it.
    let mut name: Option<&[u8]> = None;
    let mut value: Vec<u8> = Vec::new();
    for (_, line) in lines(bytes) {
        // A line of spaces alone continues the field before it (RFC 5322
        // §4.2, obsolete folding); it separates nothing.
        if line.is_empty() {
            if let Some(name) = name.take() {
                reader.field(name, &value);
            }
            reader.end_block();
            continue;
        }
        if line.first().is_some_and(is_wsp) {
            if name.is_some() {
                value.extend_from_slice(line);
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let new = line[..colon].trim_ascii();
        if new.is_empty() {
            continue;
        }
        if let Some(done) = name.replace(new) {
            reader.field(done, &value);
        }
        value.clear();
        value.extend_from_slice(&line[colon + 1..]);
    }
    if let Some(name) = name {
        reader.field(name, &value);
    }
    reader.end_block();
    reader.finish()
}

/// The fields the reader knows, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    OriginalEnvelopeId,
    ReportingMta,
    DsnGateway,
    ReceivedFromMta,
    ArrivalDate,
    OriginalRecipient,
    FinalRecipient,
    Action,
    Status,
    RemoteMta,
    DiagnosticCode,
    LastAttemptDate,
    FinalLogId,
    WillRetryUntil,
    Other,
}

impl Known {
    /// Every one, in the order of their codes.
    const ALL: [Known; 15] = [
        Known::OriginalEnvelopeId,
        Known::ReportingMta,
        Known::DsnGateway,
        Known::ReceivedFromMta,
        Known::ArrivalDate,
        Known::OriginalRecipient,
        Known::FinalRecipient,
        Known::Action,
        Known::Status,
        Known::RemoteMta,
        Known::DiagnosticCode,
        Known::LastAttemptDate,
        Known::FinalLogId,
        Known::WillRetryUntil,
        Known::Other,
    ];

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The name as RFC 3464 writes it; `extension field` for
    /// [`Known::Other`].
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("extension field", |&(n, _)| n)
    }

    const NAMES: [(&'static str, Known); 14] = [
        ("Original-Envelope-Id", Known::OriginalEnvelopeId),
        ("Reporting-MTA", Known::ReportingMta),
        ("DSN-Gateway", Known::DsnGateway),
        ("Received-From-MTA", Known::ReceivedFromMta),
        ("Arrival-Date", Known::ArrivalDate),
        ("Original-Recipient", Known::OriginalRecipient),
        ("Final-Recipient", Known::FinalRecipient),
        ("Action", Known::Action),
        ("Status", Known::Status),
        ("Remote-MTA", Known::RemoteMta),
        ("Diagnostic-Code", Known::DiagnosticCode),
        ("Last-Attempt-Date", Known::LastAttemptDate),
        ("Final-Log-ID", Known::FinalLogId),
        ("Will-Retry-Until", Known::WillRetryUntil),
    ];

    fn of(name: &[u8]) -> Self {
        Self::NAMES
            .iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
            .map_or(Known::Other, |&(_, k)| k)
    }

    /// Whether a field of this name starts the recipient blocks in the
    /// first block.
    fn is_recipient(self) -> bool {
        matches!(
            self,
            Self::FinalRecipient | Self::OriginalRecipient | Self::Action | Self::Status
        )
    }
}

/// A field's value as text: read as UTF-8 (lossily) and trimmed.
fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_ascii().to_string()
}

/// The state of [`parse_delivery_status`] between fields.
struct StatusReader {
    message: PerMessage,
    /// Whether the fields read are still the per-message ones: in the
    /// first block, before its first recipient field.
    in_message: bool,
    /// Whether a field was read since the last empty line.
    in_block: bool,
    /// The recipient block under way.
    block: Option<RecipientBlock>,
    /// How many recipient blocks were done.
    blocks: usize,
    recipients: Vec<RecipientStatus>,
    problems: Problems,
}

impl Default for StatusReader {
    fn default() -> Self {
        Self {
            message: PerMessage::default(),
            in_message: true,
            in_block: false,
            block: None,
            blocks: 0,
            recipients: Vec::new(),
            problems: Problems::default(),
        }
    }
}

impl StatusReader {
    /// A field read whole. A block is a recipient block from its first
    /// recipient field on: a first block holding one is cut there (a
    /// report without the empty line after the per-message fields); a
    /// block is cut before a second `Final-Recipient` (or before the
    /// `Original-Recipient` just ahead of it) or a second
    /// `Original-Recipient`. Either may come first.
    fn field(&mut self, name: &[u8], value: &[u8]) {
        self.in_block = true;
        let known = Known::of(name);
        if self.in_message {
            if !known.is_recipient() {
                self.message.add(known, name, value);
                return;
            }
            self.in_message = false;
        }
        let cut = match &mut self.block {
            // An `Original-Recipient` just before it is its own, with its
            // flags.
            Some(b) if known == Known::FinalRecipient && b.has_final => Some(if b.original_last {
                RecipientBlock {
                    has_original: true,
                    original_recipient: b.original_recipient.take(),
                    flags: b.flags.take(Known::OriginalRecipient),
                    ..RecipientBlock::default()
                }
            } else {
                RecipientBlock::default()
            }),
            Some(b) if known == Known::OriginalRecipient && b.has_original => {
                Some(RecipientBlock::default())
            }
            _ => None,
        };
        if let Some(next) = cut {
            self.end_recipient();
            self.block = Some(next);
        }
        self.block
            .get_or_insert_with(RecipientBlock::default)
            .add(known, name, value);
    }

    /// An empty line, or the end: the block under way is done.
    fn end_block(&mut self) {
        if std::mem::take(&mut self.in_block) {
            self.in_message = false;
            self.end_recipient();
        }
    }

    /// The recipient block under way is done.
    fn end_recipient(&mut self) {
        let Some(block) = self.block.take() else {
            return;
        };
        let at = self.blocks;
        self.blocks += 1;
        let (read, flags) = block.finish();
        let recipient = match read {
            Ok(r) => {
                let index = self.recipients.len();
                if !r.action.allows(r.status.class()) {
                    self.problems
                        .push(at, Fault::Mismatch(r.action, r.status), Some(index));
                }
                self.recipients.push(r);
                Some(index)
            }
            Err(fault) => {
                self.problems.push(at, fault, None);
                None
            }
        };
        for (flag, known) in flags.iter() {
            self.problems.push(at, Fault::Flag(flag, known), recipient);
        }
    }

    fn finish(mut self) -> Result<DeliveryStatus, ReadError> {
        if self.recipients.is_empty() {
            return Err(self
                .problems
                .first()
                .map_or(ReadError::NoRecipients, |p| p.error));
        }
        self.message.extensions.text.shrink_to_fit();
        self.problems.code.shrink_to_fit();
        self.recipients.shrink_to_fit();
        Ok(DeliveryStatus {
            message: self.message,
            recipients: self.recipients,
            problems: self.problems,
        })
    }
}

impl PerMessage {
    /// Adds a per-message field: to its place, the first of each name;
    /// to the extensions, the others.
    fn add(&mut self, known: Known, name: &[u8], value: &[u8]) {
        if !is_utf8(name, value) {
            self.problem(ReadError::NotUtf8(known.name()));
        }
        let typed_slot = match known {
            Known::ReportingMta => Some(&mut self.reporting_mta),
            Known::DsnGateway => Some(&mut self.dsn_gateway),
            Known::ReceivedFromMta => Some(&mut self.received_from_mta),
            _ => None,
        };
        if let Some(slot) = typed_slot.filter(|s| s.is_none()) {
            let v = typed(&text(value), true);
            if has_control(&v) {
                self.problem(ReadError::InvalidField(known.name()));
            } else {
                *slot = Some(v);
            }
            return;
        }
        let text_slot = match known {
            Known::OriginalEnvelopeId => Some(&mut self.original_envelope_id),
            Known::ArrivalDate => Some(&mut self.arrival_date),
            _ => None,
        };
        if let Some(slot) = text_slot.filter(|s| s.is_none()) {
            *slot = Some(text(value));
            return;
        }
        self.extensions.push(name, value);
    }

    /// Adds a problem, unless it is named already (so that there are a
    /// few at most).
    fn problem(&mut self, error: ReadError) {
        if !self.problems.contains(&error) {
            self.problems.push(error);
        }
    }
}

/// Whether a field's name and value are UTF-8.
fn is_utf8(name: &[u8], value: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok() && std::str::from_utf8(value).is_ok()
}

/// A recipient block under way.
#[derive(Default)]
struct RecipientBlock {
    original_recipient: Option<TypedValue>,
    final_recipient: Option<TypedValue>,
    action: Option<Action>,
    status: Option<EnhancedStatusCode>,
    remote_mta: Option<TypedValue>,
    diagnostic_code: Option<TypedValue>,
    last_attempt_date: Option<String>,
    final_log_id: Option<String>,
    will_retry_until: Option<String>,
    extensions: Fields,
    /// The first `Action` or `Status` that does not parse: the rest of the
    /// block is not read.
    fault: Option<Fault>,
    /// Whether a `Final-Recipient`, an `Original-Recipient` was read.
    has_final: bool,
    has_original: bool,
    /// Whether the last field read is an `Original-Recipient`.
    original_last: bool,
    /// The fields not read, or read with U+FFFD.
    flags: Flags,
}

impl RecipientBlock {
    fn add(&mut self, known: Known, name: &[u8], value: &[u8]) {
        self.has_final |= known == Known::FinalRecipient;
        self.has_original |= known == Known::OriginalRecipient;
        self.original_last = known == Known::OriginalRecipient;
        // Kept even in a block that does not read: it moves to the next
        // block when a second `Final-Recipient` follows.
        if known == Known::OriginalRecipient && self.original_recipient.is_none() {
            if !is_utf8(name, value) {
                self.flags.set(Flag::NotUtf8, known);
            }
            let v = typed(&text(value), true);
            if has_control(&v) {
                self.flags.set(Flag::Invalid, known);
            } else {
                self.original_recipient = Some(v);
            }
            return;
        }
        if self.fault.is_some() {
            return;
        }
        if !is_utf8(name, value) {
            self.flags.set(Flag::NotUtf8, known);
        }
        let typed_slot = match known {
            Known::FinalRecipient => Some((&mut self.final_recipient, true)),
            Known::RemoteMta => Some((&mut self.remote_mta, true)),
            Known::DiagnosticCode => Some((&mut self.diagnostic_code, false)),
            _ => None,
        };
        if let Some((slot, comments)) = typed_slot.filter(|(s, _)| s.is_none()) {
            let v = typed(&text(value), comments);
            // A `Final-Recipient` with one makes the block a problem, in
            // `finish`; a `Remote-MTA` with one is not read.
            if known == Known::RemoteMta && has_control(&v) {
                self.flags.set(Flag::Invalid, known);
            } else {
                *slot = Some(v);
            }
            return;
        }
        match known {
            Known::Action if self.action.is_none() => {
                self.action = parse_action(&text(value));
                if self.action.is_none() {
                    self.fault = Some(Fault::Invalid(Required::Action));
                }
                return;
            }
            Known::Status if self.status.is_none() => {
                self.status = parse_status(&text(value));
                if self.status.is_none() {
                    self.fault = Some(Fault::Invalid(Required::Status));
                }
                return;
            }
            _ => {}
        }
        let text_slot = match known {
            Known::LastAttemptDate => Some(&mut self.last_attempt_date),
            Known::FinalLogId => Some(&mut self.final_log_id),
            Known::WillRetryUntil => Some(&mut self.will_retry_until),
            _ => None,
        };
        if let Some(slot) = text_slot.filter(|s| s.is_none()) {
            *slot = Some(text(value));
            return;
        }
        self.extensions.push(name, value);
    }

    /// The block's recipient, or why it is left out; and its flags.
    fn finish(self) -> (Result<RecipientStatus, Fault>, Flags) {
        let flags = self.flags;
        (self.read(), flags)
    }

    fn read(mut self) -> Result<RecipientStatus, Fault> {
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        let final_recipient = self
            .final_recipient
            .ok_or(Fault::Missing(Required::FinalRecipient))?;
        if final_recipient.value.is_empty() || has_control(&final_recipient) {
            return Err(Fault::Invalid(Required::FinalRecipient));
        }
        self.extensions.text.shrink_to_fit();
        Ok(RecipientStatus {
            original_recipient: self.original_recipient,
            final_recipient,
            action: self.action.ok_or(Fault::Missing(Required::Action))?,
            status: self.status.ok_or(Fault::Missing(Required::Status))?,
            remote_mta: self.remote_mta,
            diagnostic_code: self.diagnostic_code,
            last_attempt_date: self.last_attempt_date,
            final_log_id: self.final_log_id,
            will_retry_until: self.will_retry_until,
            extensions: self.extensions,
        })
    }
}

/// A `Content-Type` value: the lowercased `type/subtype` and the
/// parameters (names lowercased).
#[derive(Debug, Default)]
struct ContentType {
    mime: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_multipart(&self) -> bool {
        self.mime.starts_with("multipart/")
    }
}

/// Whether a `Content-Type` parameter of this (lowercased) name is kept:
/// one [`ContentType::param`] is asked for (`boundary`, `report-type`),
/// written plainly or as a section of RFC 2231 that [`join_extended`]
/// reads (`name*`, `name*0`, `name*1*`, ...).
fn is_kept_param(name: &str) -> bool {
    let (base, rest) = name.split_once('*').unwrap_or((name, ""));
    if !matches!(base, "boundary" | "report-type") {
        return false;
    }
    if !name.contains('*') {
        return true;
    }
    let digits = rest.strip_suffix('*').unwrap_or(rest);
    rest.is_empty()
        || ((1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `type/subtype *(";" attribute "=" value)` (RFC 2045 §5.1), comments
/// removed, a value a token or a quoted string.
fn parse_content_type(value: &[u8]) -> ContentType {
    let text = strip_comments(&String::from_utf8_lossy(value));
    let mut parts = split_params(&text);
    let mime = parts
        .next()
        .unwrap_or_default()
        .trim_ascii()
        .to_ascii_lowercase();
    let mut params = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in parts {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        let name = name.trim_ascii().to_ascii_lowercase();
        // Only the parameters the reader looks at are kept, in the forms
        // `join_extended` reads, and each name once (the first: the one
        // `param` and `join_extended` take), so a value of many parameters
        // costs no memory.
        if !is_kept_param(&name) || !seen.insert(name.clone()) {
            continue;
        }
        let value = value.trim_ascii();
        let value = match value.strip_prefix('"') {
            Some(q) => {
                let mut out = String::new();
                let mut chars = q.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => out.push(c),
                    }
                }
                out
            }
            None => value.to_string(),
        };
        params.push((name, value));
    }
    join_extended(&mut params);
    ContentType { mime, params }
}

/// Adds the parameters written in the forms of RFC 2231 (`name*=charset'
/// lang'%XX...`, and continuations `name*0=`, `name*1*=`, ...) under their
/// plain name, when no parameter of that name is written plainly. The
/// octets are read as UTF-8 (lossily, whatever the charset); continuations
/// that do not run from 0 without a gap are left out.
fn join_extended(params: &mut Vec<(String, String)>) {
    // (base name, section, encoded, value) of each extended parameter.
    let mut sections: Vec<(&str, u32, bool, &str)> = Vec::new();
    for (name, value) in params.iter() {
        let Some((base, rest)) = name.split_once('*') else {
            continue;
        };
        let (digits, encoded) = match rest.strip_suffix('*') {
            Some(d) => (d, true),
            None => (rest, false),
        };
        let section = if rest.is_empty() {
            // `name*=`: one section, encoded.
            Some((0, true))
        } else if (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok().map(|n| (n, encoded))
        } else {
            None
        };
        if let Some((n, encoded)) = section {
            sections.push((base, n, encoded, value));
        }
    }
    if sections.is_empty() {
        return;
    }
    // Stable: the first of a repeated section comes first.
    sections.sort_by_key(|&(base, n, _, _)| (base, n));
    let mut plain: Vec<&str> = params
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.contains('*'))
        .collect();
    plain.sort_unstable();
    let mut joined: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < sections.len() {
        let base = sections[i].0;
        let mut octets = Vec::new();
        let mut next = 0;
        let mut whole = true;
        while i < sections.len() && sections[i].0 == base {
            let (_, n, encoded, value) = sections[i];
            i += 1;
            if n != next {
                whole &= n < next;
                continue;
            }
            next += 1;
            let mut value = value.as_bytes();
            if encoded && n == 0 {
                // charset'language' before the octets.
                let mut quotes = memchr::memchr_iter(b'\'', value);
                if let (Some(_), Some(second)) = (quotes.next(), quotes.next()) {
                    value = &value[second + 1..];
                }
            }
            if encoded {
                percent_decode(value, &mut octets);
            } else {
                octets.extend_from_slice(value);
            }
        }
        if whole && plain.binary_search(&base).is_err() {
            joined.push((
                base.to_string(),
                String::from_utf8_lossy(&octets).into_owned(),
            ));
        }
    }
    params.extend(joined);
}

/// `%XX` made octets, the rest kept.
fn percent_decode(value: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hi = value.get(i + 1).copied().and_then(hex_digit);
            let lo = value.get(i + 2).copied().and_then(hex_digit);
            if let (Some(h), Some(l)) = (hi, lo) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
}

/// `text` cut at the `;` outside quoted strings, one piece at a time.
fn split_params(text: &str) -> impl Iterator<Item = &str> + '_ {
    let mut chars = text.char_indices();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in chars.by_ref() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ';' if !quoted => {
                    start = Some(i + 1);
                    return Some(&text[from..i]);
                }
                _ => {}
            }
        }
        start = None;
        Some(&text[from..])
    })
}

/// The parts of a multipart body (RFC 2046 §5.1.1), one at a time: the
/// byte range of each (in `bytes`, without the line end before the next
/// delimiter). Once it has given the last, [`Parts::closed`] tells
/// whether the closing delimiter was found. Nothing is kept of the parts
/// given, so a body of many small parts costs no memory.
struct Parts<'a> {
    bytes: &'a [u8],
    body: Range<usize>,
    boundary: &'a [u8],
    /// Where the next line starts, in the body.
    at: usize,
    /// Where the part under way starts, in the body.
    open: Option<usize>,
    closed: bool,
}

impl<'a> Parts<'a> {
    fn new(bytes: &'a [u8], body: Range<usize>, boundary: &'a str) -> Self {
        Self {
            bytes,
            body,
            boundary: boundary.as_bytes(),
            at: 0,
            open: None,
            closed: false,
        }
    }
}

impl Iterator for Parts<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let region = &self.bytes[self.body.clone()];
        let base = self.body.start;
        while !self.closed {
            let start = self.at;
            if start >= region.len() {
                // Unterminated: the last part runs to the end.
                return self.open.take().map(|from| base + from..self.body.end);
            }
            let rest = &region[start..];
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(lf) => (&rest[..lf], start + lf + 1),
                None => (rest, region.len()),
            };
            self.at = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(rest) = line
                .strip_prefix(b"--")
                .and_then(|l| l.strip_prefix(self.boundary))
            else {
                continue;
            };
            // `--boundary` or `--boundary--`, then transport padding alone.
            let (close, padding) = match rest.strip_prefix(b"--") {
                Some(after) => (true, after),
                None => (false, rest),
            };
            if !padding.iter().all(is_wsp) {
                continue;
            }
            let done = self.open.take().map(|from| {
                // The line end before the delimiter belongs to it.
                let mut end = start.max(from);
                if end > from && region[end - 1] == b'\n' {
                    end -= 1;
                    if end > from && region[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                base + from..base + end
            });
            if close {
                self.closed = true;
            } else {
                self.open = Some(next);
            }
            if done.is_some() {
                return done;
            }
        }
        None
    }
}

/// The part of a returned original message (RFC 6522 §3, the third part).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReturnedPart {
    /// Its content type, lowercased: `message/rfc822`,
    /// `text/rfc822-headers`, `message/global` or `message/global-headers`.
    pub content_type: String,
    /// Where its body (after the part's own header) is in the message
    /// read, still in its transfer encoding.
    pub range: Range<usize>,
    /// The `Message-ID` of the returned message, when its header holds
    /// one: to match the bounce to the message sent.
    pub message_id: Option<String>,
}

impl ReturnedPart {
    /// Whether only the header section was returned
    /// (`text/rfc822-headers` or `message/global-headers`).
    #[must_use]
    pub fn is_headers_only(&self) -> bool {
        self.content_type.ends_with("-headers")
    }
}

/// A bounce read by [`parse_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParsedReport {
    /// The `report-type` parameter of the multipart, lowercased, when
    /// there is one (`delivery-status` for a bounce).
    pub report_type: Option<String>,
    /// Whether the status part is `message/global-delivery-status`
    /// (RFC 6533).
    pub global: bool,
    /// Where the delivery status part's body is in the message, still in
    /// its transfer encoding.
    pub status_range: Range<usize>,
    /// The delivery status fields.
    pub status: DeliveryStatus,
    /// The returned original, when a part after the status part holds it.
    pub returned: Option<ReturnedPart>,
    /// Whether the multipart holding the status part ends with its
    /// closing delimiter; `false` for a message cut short after it.
    pub complete: bool,
}

/// A part: its header's content type and encoding, and its body.
struct Part {
    content_type: ContentType,
    encoding: Option<String>,
    body: Range<usize>,
}

fn part(bytes: &[u8], range: Range<usize>) -> Part {
    let ([content_type, encoding], body) = header_fields(
        &bytes[range.clone()],
        ["Content-Type", "Content-Transfer-Encoding"],
    );
    let content_type = content_type
        .map(|f| parse_content_type(&f.value))
        .unwrap_or_default();
    let encoding = encoding.map(|f| strip_comments(&f.text()).to_ascii_lowercase());
    Part {
        content_type,
        encoding,
        body: range.start + body..range.end,
    }
}

fn multipart_boundary(ct: &ContentType) -> Result<&str, ReadError> {
    match ct.param("boundary") {
        Some(b) if !b.is_empty() && b.len() <= 200 => Ok(b),
        _ => Err(ReadError::NoBoundary),
    }
}

fn is_status_type(mime: &str) -> bool {
    mime == "message/delivery-status" || mime == "message/global-delivery-status"
}

fn is_returned_type(mime: &str) -> bool {
    matches!(
        mime,
        "message/rfc822" | "text/rfc822-headers" | "message/global" | "message/global-headers"
    )
}

/// Reads a whole bounce message: finds the `message/delivery-status` or
/// `message/global-delivery-status` part of its `multipart/report` (or of
/// a multipart one level inside it), decodes its transfer encoding and
/// reads its fields ([`parse_delivery_status`]), and locates the returned
/// original after it. See the [module](super#reading-bounces) notes.
///
/// # Errors
/// [`ReadError::NotMultipart`], [`ReadError::NoBoundary`],
/// [`ReadError::NoDelimiter`], [`ReadError::NoStatusPart`],
/// [`ReadError::Unterminated`] for the structure;
/// [`ReadError::UnknownEncoding`] and [`ReadError::BadBase64`] for the
/// status part's encoding; the errors of [`parse_delivery_status`].
pub fn parse_report(message: &[u8]) -> Result<ParsedReport, ReadError> {
    let top = part(message, 0..message.len());
    if !top.content_type.is_multipart() {
        return Err(ReadError::NotMultipart);
    }
    let report_type = top
        .content_type
        .param("report-type")
        .map(str::to_ascii_lowercase);
    let boundary = multipart_boundary(&top.content_type)?;
    if Parts::new(message, top.body.clone(), boundary)
        .next()
        .is_none()
    {
        return Err(ReadError::NoDelimiter);
    }
    let mut found = find_status(message, Parts::new(message, top.body.clone(), boundary));
    if found.is_none() {
        // One level down: a multipart part holding the report.
        for range in Parts::new(message, top.body.clone(), boundary) {
            let p = part(message, range);
            let Ok(b) = multipart_boundary(&p.content_type) else {
                continue;
            };
            found = find_status(message, Parts::new(message, p.body.clone(), b));
            if found.is_some() {
                break;
            }
        }
    }
    let (status_part, returned, complete, last) = found.ok_or(ReadError::NoStatusPart)?;
    if last && !complete {
        return Err(ReadError::Unterminated);
    }
    let decoded = decode(
        &message[status_part.body.clone()],
        status_part.encoding.as_deref(),
    )?;
    let status = parse_delivery_status(&decoded)?;
    Ok(ParsedReport {
        report_type,
        global: status_part.content_type.mime == "message/global-delivery-status",
        status_range: status_part.body,
        status,
        returned,
        complete,
    })
}

/// The status part of `parts`, the returned part after it, whether the
/// multipart was closed, and whether the status part is the last one.
fn find_status(
    message: &[u8],
    mut parts: Parts<'_>,
) -> Option<(Part, Option<ReturnedPart>, bool, bool)> {
    let status = parts
        .by_ref()
        .map(|r| part(message, r))
        .find(|p| is_status_type(&p.content_type.mime))?;
    let mut last = true;
    let mut returned = None;
    for range in parts.by_ref() {
        last = false;
        if returned.is_some() {
            continue;
        }
        let p = part(message, range);
        if !is_returned_type(&p.content_type.mime) {
            continue;
        }
        let message_id = decode(&message[p.body.clone()], p.encoding.as_deref())
            .ok()
            .and_then(|content| {
                let ([id], _) = header_fields(&content, ["Message-ID"]);
                id.map(|f| f.text())
            });
        returned = Some(ReturnedPart {
            content_type: p.content_type.mime,
            range: p.body,
            message_id,
        });
    }
    Some((status, returned, parts.closed, last))
}

/// A part's body decoded from its `Content-Transfer-Encoding`: borrowed
/// when it is not encoded.
fn decode<'a>(body: &'a [u8], encoding: Option<&str>) -> Result<Cow<'a, [u8]>, ReadError> {
    match encoding.unwrap_or("7bit") {
        "7bit" | "8bit" | "binary" | "" => Ok(Cow::Borrowed(body)),
        "base64" => decode_base64(body).map(Cow::Owned),
        "quoted-printable" => Ok(Cow::Owned(decode_quoted_printable(body))),
        _ => Err(ReadError::UnknownEncoding),
    }
}

/// Base64 (RFC 2045 §6.8): line ends and every other character outside
/// the base64 alphabet skipped, the data ending at the first `=`, padding
/// optional.
fn decode_base64(body: &[u8]) -> Result<Vec<u8>, ReadError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let data = memchr::memchr(b'=', body).map_or(body, |end| &body[..end]);
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    ENGINE.decode(clean).map_err(|_| ReadError::BadBase64)
}

/// A hexadecimal digit of either case (RFC 2045 §6.7 and RFC 2231 take
/// lower case too, unlike xtext).
fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` is an octet, `=` at the end of
/// a line (after optional whitespace) a soft line break, whitespace at the
/// end of a line dropped; an `=` that starts neither is kept as it is.
/// Line ends are written CRLF.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let ends_with_lf = body.ends_with(b"\n");
    let mut lines = lines(body).peekable();
    while let Some((_, line)) = lines.next() {
        let line = line.trim_ascii_end();
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                let hi = line.get(i + 1).copied().and_then(hex_digit);
                let lo = line.get(i + 2).copied().and_then(hex_digit);
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if !soft && (lines.peek().is_some() || ends_with_lf) {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_spaces_continues_the_field() {
        let s = parse_delivery_status(
            b"Original-Envelope-Id: QQ\r\n \r\nReporting-MTA: dns; mx\r\n\r\n\
              Final-Recipient: rfc822; a@b\r\n\t\r\nAction: failed\r\nStatus: 5.0.0\r\n",
        )
        .unwrap();
        assert_eq!(s.message.original_envelope_id.as_deref(), Some("QQ"));
        assert_eq!(s.message.reporting_mta.unwrap().value, "mx");
        assert_eq!(s.recipients.len(), 1);
        assert!(s.problems.is_empty());
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(decode_quoted_printable(b"a=3Db=\r\nc\r\n"), b"a=bc\r\n");
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9  \nx"),
            "café\r\nx".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"soft= \t\r\nend"), b"softend");
        // Lowercase hex taken; a broken escape kept as it is.
        assert_eq!(decode_quoted_printable(b"=3d=ZZ=4"), b"==ZZ=4");
        assert_eq!(decode_quoted_printable(b"="), b"");
        assert_eq!(decode_quoted_printable(b""), b"");
    }

    #[test]
    fn base64_with_line_breaks_and_without_padding() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVsbG8").unwrap(), b"hello");
        // Characters outside the alphabet skipped; the data ends at `=`.
        assert_eq!(decode_base64(b"a*G-V\x00s!bG8").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGk=\r\n--=\r\nxx").unwrap(), b"hi");
        assert_eq!(decode_base64(b"a*b").unwrap(), b"i");
        assert_eq!(decode_base64(b"aGVsb"), Err(ReadError::BadBase64));
    }

    #[test]
    fn comments_are_removed_outside_quotes() {
        assert_eq!(strip_comments("5.1.1 (bad (nested) mailbox)"), "5.1.1");
        assert_eq!(strip_comments("dns; mx (1.2.3.4\\) x)"), "dns; mx");
        assert_eq!(strip_comments("\"a (b)\"@x (c"), "\"a (b)\"@x");
        assert_eq!(strip_comments(")x"), ")x");
    }

    #[test]
    fn content_type_parameters() {
        let ct = parse_content_type(
            b"Multipart/Report; Report-Type=delivery-status;\r\n\tBOUNDARY=\"a;b \\\"c\\\"\" (note)",
        );
        assert_eq!(ct.mime, "multipart/report");
        assert_eq!(ct.param("report-type"), Some("delivery-status"));
        assert_eq!(ct.param("boundary"), Some("a;b \"c\""));
        let ct = parse_content_type(b"multipart/mixed; boundary=simple");
        assert_eq!(ct.param("boundary"), Some("simple"));
    }

    #[test]
    fn status_codes_leniently() {
        assert_eq!(parse_status("5.1.1").unwrap().to_string(), "5.1.1");
        assert_eq!(parse_status(" 5.1.10 (x)").unwrap().to_string(), "5.1.10");
        assert_eq!(parse_status("4.07.01").unwrap().to_string(), "4.7.1");
        assert_eq!(parse_status("5.1.1 extra").unwrap().to_string(), "5.1.1");
        for bad in [
            "", "550", "3.1.1", "5.1", "5.1.1.1", "5.1000.1", "5.a.1", "(5.1.1)",
        ] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    /// The parts of `body` with the boundary `b`, and whether the closing
    /// delimiter was found.
    fn split_parts(body: &[u8]) -> (Vec<Range<usize>>, bool) {
        let mut parts = Parts::new(body, 0..body.len(), "b");
        let ranges: Vec<Range<usize>> = parts.by_ref().collect();
        (ranges, parts.closed)
    }

    #[test]
    fn parts_split_on_delimiter_lines_only() {
        let body = b"preamble\r\n--b\r\nA\r\n--bx\r\n--b  \r\nB\n--b--\r\nepilogue";
        let (parts, closed) = split_parts(body);
        assert!(closed);
        let got: Vec<&[u8]> = parts.iter().map(|r| &body[r.clone()]).collect();
        assert_eq!(got, [&b"A\r\n--bx"[..], b"B"]);
        // Unterminated: the last part runs to the end.
        let body = b"--b\r\nA\r\n--b\r\nB";
        let (parts, closed) = split_parts(body);
        assert!(!closed);
        assert_eq!(&body[parts[1].clone()], b"B");
        // A close delimiter is followed by padding alone.
        let body = b"--b\r\nA\r\n--b--x\r\n--b-- \t\r\n--b\r\n";
        let (parts, closed) = split_parts(body);
        assert!(closed);
        assert_eq!(parts.len(), 1);
        assert_eq!(&body[parts[0].clone()], b"A\r\n--b--x");
        // Empty parts between adjacent delimiters.
        let body = b"--b\r\n--b\r\n--b--";
        let (parts, _) = split_parts(body);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|r| r.is_empty()));
    }
}
