//! Delivery status notifications (bounces): a `multipart/report;
//! report-type=delivery-status` message (RFC 6522) with a
//! `message/delivery-status` part (RFC 3464), written from checked values.
//!
//! A [`Bounce`] names the reporting host, the original envelope sender (the
//! bounce goes to it), the date and a unique token for the `Message-ID:`;
//! each [`Recipient`] gives the address, the [`Action`] taken, the status,
//! and usually the remote server's reply ([`Recipient::from_reply`]).
//! [`Bounce::write`] adds the original message and writes:
//!
//! 1. the header: `From:` (`Delivery Reports <MAILER-DAEMON@host>`
//!    unless [`Bounce::from`] sets another), `To:` the sender, `Subject:`,
//!    `Date:`, `Message-ID:`, `Auto-Submitted: auto-replied` (RFC 3834 §5),
//!    `MIME-Version:` and `Content-Type:`;
//! 2. a `text/plain` explanation, one paragraph per recipient with the
//!    remote server's reply;
//! 3. the `message/delivery-status` fields (`message/global-delivery-status`
//!    in an internationalized bounce): `Original-Envelope-Id`,
//!    `Reporting-MTA`, `Received-From-MTA`, `Arrival-Date`, then per
//!    recipient `Original-Recipient`, `Final-Recipient`, `Action`,
//!    `Status`, `Remote-MTA`, `Diagnostic-Code`, `Last-Attempt-Date` and
//!    `Will-Retry-Until`;
//! 4. the original message: whole (`message/rfc822`, or `message/global`)
//!    or its header section only (`text/rfc822-headers`, or
//!    `message/global-headers`), see [`Bounce::ret`], byte for byte but
//!    for its line ends: a CR or LF outside a CRLF pair (a bare LF of a
//!    message stored with Unix line ends, a bare CR) is written CRLF, as
//!    every line end of a message must be (RFC 5322 §2.1, §2.3; RFC 5321
//!    §2.3.8), before the header section is cut and the size limit of
//!    [`Bounce::max_returned_len`] is applied; the
//!    part ends with a CRLF of its own before the delimiter that follows
//!    it (whose CRLF is the delimiter's, RFC 2046 §5.1.1), so that a
//!    reader gets the original's last line end too.
//!
//! The bounce is sent with the null reverse path, `MAIL FROM:<>` (RFC 5321
//! §4.5.5), so that no bounce is ever sent back for it; for the same
//! reason [`Bounce::new`] refuses to address one to `<>`
//! ([`DsnError::NullSender`]). Send it with the `BODY=` of
//! [`Report::body_type`] (everything but a returned 8-bit or binary
//! original and the UTF-8 of an internationalized report is 7-bit), and
//! with `SMTPUTF8` when [`Report::requires_smtputf8`] says so (see
//! [Internationalized bounces](#internationalized-bounces-rfc-6533)).
//!
//! ```
//! use smtp_proto::command::{Atom, Domain, ForwardPath, Mailbox, ReversePath};
//! use smtp_proto::dsn::{Action, Bounce, Recipient};
//! use smtp_proto::reply::Reply;
//! use smtp_proto::trace::Timestamp;
//!
//! let host = Domain::new("mx.example.org").unwrap();
//! let sender = ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap());
//! let rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap());
//! let remote = Domain::new("mx.example.net").unwrap();
//! let reply = Reply::parse(b"550 5.1.1 No such user\r\n").unwrap();
//! let token = Atom::new("4F1A2B").unwrap();
//! let when = Timestamp::new(1_795_723_722, 0).unwrap();
//!
//! let bounce = Bounce::new(&host, &sender, when, &token)
//!     .unwrap()
//!     .recipient(
//!         Recipient::from_reply(&rcpt, Action::Failed, &reply)
//!             .unwrap()
//!             .remote_mta(&remote)
//!             .unwrap(),
//!     );
//! let report = bounce
//!     .write(b"Subject: hello\r\n\r\nHi Bob\r\n")
//!     .unwrap();
//! let text = String::from_utf8(report.into_bytes()).unwrap();
//! assert!(text.starts_with(
//!     "From: Delivery Reports <MAILER-DAEMON@mx.example.org>\r\n\
//!      To: <alice@example.org>\r\n\
//!      Subject: Delivery failed: your message is returned\r\n"
//! ));
//! assert!(text.contains(
//!     "Final-Recipient: rfc822; bob@example.net\r\n\
//!      Action: failed\r\n\
//!      Status: 5.1.1\r\n\
//!      Remote-MTA: dns; mx.example.net\r\n\
//!      Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"
//! ));
//! assert!(text.contains("Content-Type: message/rfc822\r\n\r\nSubject: hello\r\n"));
//! ```
//!
//! # Values and limits
//!
//! * Nothing reaches a header line unchecked: addresses, hosts and ids are
//!   checked types, the subject and `Message-ID:` are checked by their
//!   setters, and the text of a remote reply (which may hold UTF-8, RFC
//!   6531) is made 7-bit: tabs become spaces, every other control or
//!   non-ASCII character is written as `\x{HEX}` (the RFC 6533
//!   `EmbeddedUnicodeChar` form; an octet that is not UTF-8 as
//!   `\x{FFFD}`), and so is a `\` of the reply (`\x{5C}`), so that
//!   the text `\x{FC}` in a reply is not read as `ü`. A multi-line reply
//!   is joined on one field: the code, the first line's enhanced code,
//!   and the text of each line, separated by spaces.
//! * Every field is folded at spaces to keep its lines within 78 octets
//!   where it can, and always within 998 (RFC 5322 §2.1.1); a run of
//!   over 997 octets without a space is cut, which adds a space when the
//!   field is unfolded, and what of a run of spaces (from a reply's text)
//!   does not fit on its line is written as one space, so that no line
//!   holds spaces alone.
//! * `Original-Envelope-Id` and the address of `Original-Recipient` are
//!   written decoded from their xtext, the value the sender gave: RFC 3461
//!   §4.4 and §4.2 require that value to be printable US-ASCII "due to
//!   limitations in the Delivery Status Notification format". A value
//!   that decodes to anything else (a control character, CR or LF,
//!   8-bit) is written in its xtext form, which always is. So is an
//!   `Original-Recipient` address that a reader would change: one with
//!   a parenthesis outside a quoted string (`a(b)@example.net`, read as
//!   `a` and a comment), or a space at either end. An ORCPT of
//!   the type `utf-8` (RFC 6533) whose address is an internationalized
//!   mailbox is written as that mailbox in UTF-8 (see below); any other
//!   is written in its `utf-8-addr-xtext` form as sent, with each
//!   non-ASCII character of a `utf-8-addr-unitext` value as `\x{HEX}`.
//!   In the xtext forms of `Original-Recipient`, `(` and `)` are written
//!   `+28` and `+29` (the same xtext), for the same reason.
//! * A recipient given as `<Postmaster>` (RFC 5321 §4.1.1.3) has no
//!   domain, and `rfc822; Postmaster` is not an `addr-spec`, so it is
//!   written as the postmaster of the host that took the `RCPT`:
//!   `Postmaster@<remote host>` when the recipient names one
//!   ([`Recipient::remote_mta`]: the address went to that server), else
//!   `Postmaster@<reporting host>` (the address was this host's own).
//!   It is an `addr-spec` that parses, with the local part every SMTP
//!   server must take (RFC 5321 §4.5.1), naming the mailbox the `RCPT`
//!   was for.
//!
//! # Internationalized bounces (RFC 6533)
//!
//! A bounce carries UTF-8 when the sender or the [`Bounce::from`] address
//! is an internationalized mailbox (RFC 6531), a recipient's address is
//! one, an ORCPT of the type `utf-8` names one, or the returned original
//! (whole or its header section) has UTF-8 in its header section (RFC
//! 6532 header fields). Other 8-bit octets in it (a Latin-1 `Subject:`)
//! are no UTF-8 header field, which the global types hold (RFC 6532
//! §3.7): such an original goes back as `message/rfc822` or
//! `text/rfc822-headers`, in 8-bit, as it came. The writer then picks the internationalized
//! types by itself, and [`Report::is_global`] says it did:
//!
//! * the header of the bounce holds the UTF-8 address as it is (`To:
//!   <ñoño@example.com>`, RFC 6532); the other fields stay ASCII;
//! * part 1 is `text/plain; charset=utf-8` (with
//!   `Content-Transfer-Encoding: 8bit`) when it names a UTF-8 address;
//! * the top-level `multipart/report` says
//!   `report-type=global-delivery-status`, the subtype of part 2 (RFC
//!   6522 §3);
//! * part 2 is `message/global-delivery-status` (RFC 6533), where a
//!   UTF-8 address is written in UTF-8 as its `utf-8-address` form:
//!   `Final-Recipient: utf-8; josé@example.com`,
//!   `Original-Recipient: utf-8; 用户@example.com` (with
//!   `Content-Transfer-Encoding: 8bit`); ASCII addresses keep the
//!   `rfc822` type, and the remote reply in `Diagnostic-Code` stays 7-bit
//!   as above;
//! * part 3 is `message/global` (RFC 6532 §3.7), or
//!   `message/global-headers` (RFC 6533) for the header section.
//!
//! Without any of these, the bounce is the 7-bit `message/delivery-status`
//! report described above, with none of these changes. Every address written in UTF-8 is a
//! checked [`Mailbox`]: an ORCPT that does not decode to one keeps its
//! 7-bit xtext form and does not make the report internationalized.
//!
//! No control character is written raw: a checked [`Mailbox`] holds none
//! (the C1 controls U+0080 to U+009F, which RFC 6531's grammar would let
//! into a local part, are refused there, as RFC 5198 §2 wants), and an
//! ORCPT whose xtext decodes to one keeps the 7-bit form it was sent in.
//!
//! Sending it: an address in UTF-8 in the envelope (`RCPT TO:` the sender)
//! or in the header of the message needs the `SMTPUTF8` extension (RFC
//! 6531, RFC 6532): [`Report::requires_smtputf8`] is true when the
//! sender or the `From:` address holds UTF-8, and such a bounce must be
//! sent with `MAIL FROM:<> SMTPUTF8`, to a server that offers it. UTF-8 in
//! the parts only is body content: `message/global`,
//! `message/global-headers` and `message/global-delivery-status` may be
//! sent with any content transfer encoding, 8-bit recommended (RFC 6532
//! §3.7, RFC 6533), so such a bounce needs only `BODY=8BITMIME`
//! ([`Report::body_type`]); a caller that wants to send every
//! internationalized report with SMTPUTF8 anyway checks
//! [`Report::is_global`].
//!
//! The RFC 6533 rules above (the `utf-8-address` form in
//! `message/global-delivery-status`, `utf-8-addr-xtext` in
//! `message/delivery-status`, the encodings of the global types) follow
//! RFC 6533 as recalled, not checked against its text line by line; check
//! them there before relying on a detail. `dns;` MTA names stay ASCII,
//! so a host given in U-labels is still refused ([`DsnError::Utf8`]): give
//! its A-labels.
//!
//! # Reading bounces
//!
//! A sender learns from the bounces that come back which recipients
//! failed and why. [`parse_report`] reads a whole bounce message, and
//! [`parse_delivery_status`] the fields of its status part alone:
//!
//! ```
//! use smtp_proto::dsn::{parse_report, Action};
//!
//! let bounce = b"From: MAILER-DAEMON@mx.example.org\r\n\
//!     Content-Type: multipart/report; report-type=delivery-status;\r\n\
//!     \tboundary=\"b1\"\r\n\
//!     \r\n\
//!     --b1\r\n\
//!     Content-Type: text/plain\r\n\
//!     \r\n\
//!     Your message could not be delivered.\r\n\
//!     --b1\r\n\
//!     Content-Type: message/delivery-status\r\n\
//!     \r\n\
//!     Reporting-MTA: dns; mx.example.org\r\n\
//!     \r\n\
//!     Final-Recipient: rfc822; bob@example.net\r\n\
//!     Action: failed\r\n\
//!     Status: 5.1.1 (bad mailbox)\r\n\
//!     Diagnostic-Code: smtp; 550 5.1.1 No such\r\n\
//!     \x20user\r\n\
//!     \r\n\
//!     --b1\r\n\
//!     Content-Type: text/rfc822-headers\r\n\
//!     \r\n\
//!     Message-ID: <m1@example.org>\r\n\
//!     Subject: hello\r\n\
//!     --b1--\r\n";
//! let report = parse_report(bounce).unwrap();
//! let r = &report.status.recipients[0];
//! assert_eq!(r.address(), "bob@example.net");
//! assert_eq!(r.action, Action::Failed);
//! assert_eq!(r.status.to_string(), "5.1.1");
//! assert_eq!(r.reply_code().map(|c| c.get()), Some(550));
//! let diagnostic = r.diagnostic_code.as_ref().unwrap();
//! assert_eq!(diagnostic.value, "550 5.1.1 No such user");
//! let returned = report.returned.unwrap();
//! assert!(returned.is_headers_only());
//! assert_eq!(returned.message_id.as_deref(), Some("<m1@example.org>"));
//! ```
//!
//! The message:
//!
//! * its `Content-Type` must be `multipart/*` with a `boundary` (quoted
//!   or not, or in the forms of RFC 2231: `boundary*=''b%31`, or cut
//!   into `boundary*0=`, `boundary*1=`, ...; names of types and
//!   parameters in any case, parameters in any order, comments
//!   removed; the first of a repeated parameter is taken); the parts are
//!   cut at the lines `--boundary` and the closing `--boundary--`, each
//!   matched exactly (case counts) at the start of a line and followed by
//!   transport padding (spaces, tabs) alone (RFC 2046 §5.1.1), CRLF or LF
//!   line ends; the preamble and the epilogue are skipped;
//! * the first part of the type `message/delivery-status` or
//!   `message/global-delivery-status` is read, in the multipart or, when
//!   it has none, in a multipart part one level inside it; its
//!   `Content-Transfer-Encoding` may be `7bit`, `8bit`, `binary`,
//!   `base64` or `quoted-printable` (in any case). Decoding is lenient, as
//!   RFC 2045 asks: in base64 (§6.8) every character outside its
//!   alphabet is skipped and the data ends at the first `=`; in
//!   quoted-printable (§6.7) an `=` that starts neither an `=XX` octet
//!   (hex digits in either case) nor a soft line break (`=` at the end
//!   of a line) is kept as it is, and whitespace at the end of a line is
//!   dropped;
//! * a message cut short after the status part is read
//!   ([`ParsedReport::complete`] is `false`); one that ends inside it is
//!   [`ReadError::Unterminated`];
//! * the first part after it of a returned type (`message/rfc822`,
//!   `text/rfc822-headers`, `message/global`, `message/global-headers`)
//!   is [`ParsedReport::returned`]: its byte range, and the `Message-ID`
//!   of the returned message, to match the bounce to the message sent.
//!
//! The fields (RFC 3464 §2):
//!
//! * blocks are separated by one or more empty lines (a line of spaces
//!   alone continues the field before it, RFC 5322's obsolete folding);
//!   the first is the per-message block, the others recipient
//!   blocks. A first block that holds a recipient field is cut there,
//!   and a block with a second `Final-Recipient` before it, as some
//!   hosts leave out the empty line; so a status that starts with its
//!   recipient fields has an empty [`PerMessage`];
//! * folded lines are unfolded (the line ends removed), names match in any
//!   case, values are trimmed; lines that are not fields are skipped;
//!   fields the reader does not know, and a repeated field, are kept in
//!   `extensions` ([`Fields`]: [`PerMessage::extensions`],
//!   [`RecipientStatus::extensions`]), in order;
//! * comments (`(...)`) are removed from `Action`, `Status`, the
//!   addresses and the MTA names; a `Diagnostic-Code` and the dates are
//!   kept as written;
//! * `Final-Recipient`, `Action` (`failed`, `delayed`, `delivered`,
//!   `relayed`, `expanded`) and `Status` (`class.subject.detail`, leading
//!   zeros taken) are required in a recipient block; a block without them,
//!   or where they do not parse, is left out of
//!   [`DeliveryStatus::recipients`] and named in
//!   [`DeliveryStatus::problems`] with its [`ReadError`], so that one
//!   bad block does not hide the others. Only when no block is read is
//!   the status an error;
//! * a recipient whose status class does not go with its action
//!   (`delivered`, `relayed` and `expanded` take `2.x.x`, `delayed`
//!   `4.x.x`, `failed` `4.x.x` or `5.x.x`: RFC 3464 §2.3.3, §2.3.4, as
//!   the writer checks) is read all the same, as some hosts get this
//!   wrong, and named in [`DeliveryStatus::problems`] with
//!   [`ReadError::StatusMismatch`] and its place in
//!   [`DeliveryStatus::recipients`] ([`BlockProblem::recipient`]);
//! * a `type; value` field whose text before the first `;` is not an atom
//!   (`"a;b"@example.net`), or that has no `;`, is read as a value
//!   without its type ([`TypedValue::kind`] empty): some hosts write a
//!   `Final-Recipient` as the address alone;
//! * [`TypedValue::address`] gives an address: `rfc822` as written, `utf-8`
//!   (RFC 6533) with its xtext and `\x{HEX}` decoded;
//! * an address or an MTA name that holds a control character (but a
//!   tab, which folding may leave; its comments removed) is not read, as
//!   no address or host name holds one (RFC 5321 §4.1.2, RFC 6533 §3):
//!   a `Final-Recipient` with one leaves its block out, as an empty one
//!   does, with [`ReadError::InvalidField`]; an `Original-Recipient` or a
//!   `Remote-MTA` with one is left `None` and named in
//!   [`DeliveryStatus::problems`] with [`ReadError::InvalidField`], the
//!   block read all the same; a `Reporting-MTA`, `DSN-Gateway` or
//!   `Received-From-MTA` with one is left `None` and named in
//!   [`PerMessage::problems`]. So a value read never carries a CR, an
//!   escape sequence or a NUL into a log line or a command;
//! * the fields are text: octets that are not UTF-8 (in a
//!   `message/delivery-status`, 7-bit by RFC 3464 §2.1, or in a
//!   `message/global-delivery-status`, UTF-8 by RFC 6533) are read as
//!   U+FFFD, never silently: each field so read is named with
//!   [`ReadError::NotUtf8`], once per block, in
//!   [`DeliveryStatus::problems`] (its block read all the same) or
//!   [`PerMessage::problems`]; the octets as written are in the message
//!   ([`ParsedReport::status_range`]);
//! * the dates are kept as written, and read as times by
//!   [`PerMessage::arrival`], [`RecipientStatus::last_attempt`] and
//!   [`RecipientStatus::retry_until`] (RFC 5322 `date-time`, obsolete
//!   forms taken: see [`Timestamp::parse_date_time`]); each gives
//!   `None` without its field and [`ReadError::InvalidField`] for a date
//!   that does not parse, without making the recipient block a problem.
//!
//! Reading takes time and memory linear in the input, and never panics.
//! [`parse_report`] keeps nothing of the parts, header fields and
//! `Content-Type` parameters it passes over, so a message of many of them
//! costs a few times its size at most, and reads a status part without a
//! transfer encoding where it is, without a copy.
//! [`parse_delivery_status`] reads the status part a field at a time and
//! keeps only what it returns, all of it: the extension fields of a block
//! in one buffer ([`Fields`]), the problems encoded in another
//! ([`Problems`]), so that millions of tiny fields or bad blocks cost
//! about the part's own size; each recipient read is a
//! [`RecipientStatus`] of about 300 octets with its strings, so that a
//! part made of the smallest recipient blocks that read (47 octets) costs
//! about 8 times its size, and any other part less.

use std::fmt;

mod read;

pub use read::{
    parse_delivery_status, parse_report, BlockProblem, DeliveryStatus, Field, FieldIter, Fields,
    ParsedReport, PerMessage, ProblemIter, Problems, ReadError, RecipientStatus, ReturnedPart,
    TypedValue,
};

use crate::client::{NotAttempted, RecipientOutcome, RecipientReport, Refusal};
use crate::command::{
    Atom, BodyType, Domain, EnvId, ForwardPath, Mailbox, Notify, Orcpt, OrcptAddr, Ret, ReversePath,
};
use crate::reply::{OwnedReply, Reply};
use crate::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use crate::trace::Timestamp;

/// Why a bounce, or a part of one, cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DsnError {
    /// The original sender is the null reverse path `<>`: nothing is ever
    /// sent back to it (RFC 5321 §4.5.5, §6.1).
    #[error("no bounce is sent to the null reverse path <>")]
    NullSender,
    /// The named host is given in U-labels (UTF-8): the `dns;` names of
    /// the report (`Reporting-MTA`, `Remote-MTA`, `Received-From-MTA`),
    /// the `Message-ID:` and the default `From:` take its A-labels
    /// (`xn--...`). UTF-8 addresses are taken (see the
    /// [module](self#internationalized-bounces-rfc-6533) notes).
    #[error("{0} is a host name in U-labels; give its A-labels")]
    Utf8(&'static str),
    /// The named value holds a character not allowed there (CR, LF, a
    /// control character or 8-bit), or does not follow its syntax.
    #[error("{0} holds a character or form not allowed there")]
    Invalid(&'static str),
    /// The named value is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// The named value is over its length limit.
    #[error("{0} is too long")]
    TooLong(&'static str),
    /// The status class does not go with the action: `delivered`,
    /// `relayed` and `expanded` take a `2.x.x` status, `delayed` a
    /// `4.x.x` one, and `failed` a `4.x.x` or `5.x.x` one (RFC 3464
    /// §2.3.3, §2.3.4).
    #[error("status {status} does not go with the action {action}")]
    StatusMismatch {
        /// The action.
        action: Action,
        /// The status given or read from the reply.
        status: EnhancedStatusCode,
    },
    /// `Will-Retry-Until` was given for a recipient whose action is not
    /// `delayed` (RFC 3464 §2.3.9).
    #[error("Will-Retry-Until is only for a delayed recipient")]
    RetryNotDelayed,
    /// A `3yz` reply, which carries no delivery status.
    #[error("reply code {0} carries no delivery status")]
    NoStatus(ReplyCode),
    /// [`Bounce::write`] was called with no recipient.
    #[error("the report names no recipient")]
    NoRecipients,
}

/// The `Action` of a recipient (RFC 3464 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `failed`: the message could not be delivered and will not be tried
    /// again.
    Failed,
    /// `delayed`: not delivered yet; the reporting host keeps trying.
    Delayed,
    /// `delivered`: delivered to the recipient's mailbox.
    Delivered,
    /// `relayed`: passed on to a system that sends no further
    /// notifications.
    Relayed,
    /// `expanded`: delivered to a list or alias and sent on to its
    /// members.
    Expanded,
}

impl Action {
    /// The keyword as written in the report.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }

    fn allows(self, class: StatusClass) -> bool {
        match self {
            Action::Failed => class != StatusClass::Success,
            Action::Delayed => class == StatusClass::PersistentTransientFailure,
            Action::Delivered | Action::Relayed | Action::Expanded => class == StatusClass::Success,
        }
    }

    /// The phrase of the human-readable part.
    fn phrase(self) -> &'static str {
        match self {
            Action::Failed => "delivery failed",
            Action::Delayed => "delivery delayed, still trying",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed to a system that sends no further notifications",
            Action::Expanded => "delivered to a list or alias, which sent it on",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recipient without `NOTIFY=` is taken to have asked for:
/// `FAILURE,DELAY`.
///
/// RFC 3461 §4.1: "the absence of a NOTIFY parameter in a RCPT command may
/// be interpreted as either NOTIFY=FAILURE or NOTIFY=FAILURE,DELAY". This
/// default takes the wider one, so that [`should_notify`] answers yes to a
/// delay report and the reporting host decides whether it sends delay
/// reports at all; a host that wants `FAILURE` alone passes
/// `notify.or(Some(Notify { failure: true, ..Notify::NEVER }))`.
pub const DEFAULT_NOTIFY: Notify = Notify {
    success: false,
    failure: true,
    delay: true,
};

/// Whether a report with this action may be sent for a recipient that
/// gave this `NOTIFY=` (RFC 3461 §4.1): `failed` with `FAILURE`,
/// `delayed` with `DELAY`, `delivered`, `relayed` and `expanded` (the
/// success notifications) with `SUCCESS`, never with `NEVER`. Without
/// `NOTIFY=`, [`DEFAULT_NOTIFY`] applies.
///
/// ```
/// use smtp_proto::command::Notify;
/// use smtp_proto::dsn::{should_notify, Action};
///
/// assert!(should_notify(None, Action::Failed));
/// assert!(should_notify(None, Action::Delayed));
/// assert!(!should_notify(None, Action::Delivered));
/// assert!(!should_notify(Some(Notify::NEVER), Action::Failed));
/// let success = Notify { success: true, ..Notify::NEVER };
/// assert!(should_notify(Some(success), Action::Relayed));
/// assert!(!should_notify(Some(success), Action::Failed));
/// ```
#[must_use]
pub fn should_notify(notify: Option<Notify>, action: Action) -> bool {
    let notify = notify.unwrap_or(DEFAULT_NOTIFY);
    match action {
        Action::Failed => notify.failure,
        Action::Delayed => notify.delay,
        Action::Delivered | Action::Relayed | Action::Expanded => notify.success,
    }
}

/// The reply of a remote server, as a `Diagnostic-Code: smtp; ...` value:
/// 7-bit, on one line before folding (see the [module](self) notes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    code: ReplyCode,
    text: String,
}

impl Diagnostic {
    /// The diagnostic of a decoded reply.
    ///
    /// ```
    /// use smtp_proto::dsn::Diagnostic;
    /// use smtp_proto::reply::Reply;
    /// let reply = Reply::parse(b"550-5.1.1 No such user\r\n550 5.1.1 Try another\r\n").unwrap();
    /// assert_eq!(Diagnostic::from_reply(&reply).text(), "550 5.1.1 No such user Try another");
    /// let utf8 = Reply::parse("550 Benutzer unbekannt: Müller\r\n".as_bytes()).unwrap();
    /// assert_eq!(Diagnostic::from_reply(&utf8).text(), "550 Benutzer unbekannt: M\\x{FC}ller");
    /// ```
    #[must_use]
    pub fn from_reply(reply: &Reply<'_>) -> Self {
        Self::joined(
            reply.code(),
            reply.enhanced_code(),
            reply.lines().map(|l| l.text()),
        )
    }

    /// The diagnostic of a built or copied reply.
    #[must_use]
    pub fn from_owned_reply(reply: &OwnedReply) -> Self {
        Self::joined(
            reply.code(),
            reply.enhanced_code(),
            reply.lines().map(|(_, text)| text),
        )
    }

    fn joined<'t>(
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        lines: impl Iterator<Item = &'t [u8]>,
    ) -> Self {
        let mut text = code.to_string();
        if let Some(esc) = enhanced {
            text.push(' ');
            text.push_str(&esc.to_string());
        }
        for line in lines {
            let line = seven_bit(line);
            let line = line.trim_matches(' ');
            if !line.is_empty() {
                text.push(' ');
                text.push_str(line);
            }
        }
        Diagnostic { code, text }
    }

    /// The reply code.
    #[must_use]
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The value after `smtp; `: the code, the enhanced code if any, and
    /// the text of every line.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The status a reply stands for: its enhanced code, or `X.0.0` of its
/// class when it has none.
fn status_of(
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
) -> Result<EnhancedStatusCode, DsnError> {
    if let Some(esc) = enhanced {
        return Ok(esc);
    }
    code.status_class()
        .and_then(|class| EnhancedStatusCode::new(class, 0, 0))
        .ok_or(DsnError::NoStatus(code))
}

/// The status of an outcome that no fitting reply decided (see
/// [`Recipient::from_report`]); its class always goes with `action`.
fn outcome_status(outcome: &RecipientOutcome, action: Action) -> EnhancedStatusCode {
    let (subject, detail) = match outcome {
        RecipientOutcome::NotAttempted { reason } => match reason {
            NotAttempted::ConnectionLost | NotAttempted::SessionClosed => (4, 2),
            NotAttempted::Refused(Refusal::TooLarge { .. }) => (3, 4),
            NotAttempted::Refused(Refusal::EightBitMime | Refusal::BinaryMime) => (6, 3),
            NotAttempted::Refused(Refusal::SmtpUtf8) => (6, 7),
            NotAttempted::Refused(Refusal::RequireTls) => (7, 30),
            NotAttempted::AuthFailed { .. }
            | NotAttempted::AuthUnavailable(_)
            | NotAttempted::TlsUnavailable { .. } => (7, 0),
            NotAttempted::Refused(
                Refusal::TooManyRecipients { .. }
                | Refusal::TooManyDomains { .. }
                | Refusal::TransactionLimit { .. },
            )
            | NotAttempted::TransactionLimit { .. } => (5, 3),
            _ => (0, 0),
        },
        _ => (0, 0),
    };
    let class = if action == Action::Failed {
        StatusClass::PermanentFailure
    } else {
        StatusClass::PersistentTransientFailure
    };
    EnhancedStatusCode::known(class, subject, detail)
}

/// One recipient of a report: its per-recipient fields (RFC 3464 §2.3).
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    address: &'a ForwardPath<'a>,
    original: Option<&'a Orcpt<'a>>,
    action: Action,
    status: EnhancedStatusCode,
    remote_mta: Option<&'a Domain<'a>>,
    diagnostic: Option<Diagnostic>,
    last_attempt: Option<Timestamp>,
    retry_until: Option<Timestamp>,
}

impl<'a> Recipient<'a> {
    /// A recipient (the address of RCPT TO, written as `Final-Recipient`),
    /// what was done and its status.
    ///
    /// # Errors
    /// [`DsnError::StatusMismatch`] when the status class does not go with
    /// the action.
    pub fn new(
        address: &'a ForwardPath<'a>,
        action: Action,
        status: EnhancedStatusCode,
    ) -> Result<Self, DsnError> {
        if !action.allows(status.class()) {
            return Err(DsnError::StatusMismatch { action, status });
        }
        Ok(Recipient {
            address,
            original: None,
            action,
            status,
            remote_mta: None,
            diagnostic: None,
            last_attempt: None,
            retry_until: None,
        })
    }

    /// A recipient whose status and `Diagnostic-Code` come from the remote
    /// server's reply: its enhanced status code, or `5.0.0`, `4.0.0` or
    /// `2.0.0` from the reply code when it carries none.
    ///
    /// ```
    /// use smtp_proto::command::{ForwardPath, Mailbox};
    /// use smtp_proto::dsn::{Action, DsnError, Recipient};
    /// use smtp_proto::reply::Reply;
    ///
    /// let rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap());
    /// let reply = Reply::parse(b"452 Mailbox full\r\n").unwrap();
    /// let r = Recipient::from_reply(&rcpt, Action::Delayed, &reply).unwrap();
    /// assert_eq!(r.status().to_string(), "4.0.0");
    /// assert!(matches!(
    ///     Recipient::from_reply(&rcpt, Action::Delivered, &reply),
    ///     Err(DsnError::StatusMismatch { .. })
    /// ));
    /// ```
    ///
    /// # Errors
    /// [`DsnError::NoStatus`] for a `3yz` reply;
    /// [`DsnError::StatusMismatch`] as for [`Recipient::new`].
    pub fn from_reply(
        address: &'a ForwardPath<'a>,
        action: Action,
        reply: &Reply<'_>,
    ) -> Result<Self, DsnError> {
        let status = status_of(reply.code(), reply.enhanced_code())?;
        Ok(Self::new(address, action, status)?.diagnostic(Diagnostic::from_reply(reply)))
    }

    /// [`Recipient::from_reply`] for an [`OwnedReply`].
    ///
    /// # Errors
    /// As for [`Recipient::from_reply`].
    pub fn from_owned_reply(
        address: &'a ForwardPath<'a>,
        action: Action,
        reply: &OwnedReply,
    ) -> Result<Self, DsnError> {
        let status = status_of(reply.code(), reply.enhanced_code())?;
        Ok(Self::new(address, action, status)?.diagnostic(Diagnostic::from_owned_reply(reply)))
    }

    /// The entry for one recipient of a [`DeliveryReport`](crate::client::DeliveryReport), or `None` when
    /// it calls for no report.
    ///
    /// - [`RecipientOutcome::is_permanent_failure`] gives
    ///   [`Action::Failed`], [`RecipientOutcome::is_retry`]
    ///   [`Action::Delayed`]; a delivered recipient and an
    ///   [`Unknown`](RecipientOutcome::Unknown) one (the message may have
    ///   arrived) give `None`. A success notice depends on whether the
    ///   next hop takes over the DSN request, which only the caller knows:
    ///   build it with [`Recipient::from_owned_reply`] and
    ///   [`Action::Relayed`] or [`Action::Delivered`].
    /// - `None` too when the recipient's `NOTIFY=` does not ask for this
    ///   kind of report ([`should_notify`]).
    /// - The status is the deciding reply's (its enhanced code, or `5.0.0`
    ///   / `4.0.0` from its code) and the reply is the `Diagnostic-Code`.
    ///   Where no reply decided, or its class does not go with the action
    ///   (a `554` greeting is a reason to try again later, from elsewhere),
    ///   the status comes from the reason (RFC 3463): `4.4.2` for a lost
    ///   connection or a session already closed, `5.3.4` for a message over the server's SIZE, `5.6.3`
    ///   for 8-bit or binary content the server cannot take, `5.6.7` for
    ///   UTF-8 without SMTPUTF8 (RFC 6531 §3.5), `5.7.30` when REQUIRETLS is
    ///   not available (RFC 8689 §5), `4.7.0` for authentication or TLS
    ///   that failed, `4.5.3` for the server's per-transaction limits, and
    ///   `4.0.0` or `5.0.0` otherwise. A `3yz` reply where a completion was
    ///   due (to STARTTLS or AUTH) is quoted, with the reason's status.
    /// - `ORCPT=` becomes `Original-Recipient`.
    ///
    /// ```
    /// use smtp_proto::client::{DeliveryReport, RecipientOutcome};
    /// use smtp_proto::dsn::{Action, Recipient};
    ///
    /// fn bounce_entries(report: &DeliveryReport) -> Vec<Recipient<'_>> {
    ///     report
    ///         .recipients
    ///         .iter()
    ///         .filter_map(Recipient::from_report)
    ///         .filter(|r| r.action() == Action::Failed)
    ///         .collect()
    /// }
    /// # let _ = bounce_entries;
    /// ```
    ///
    pub fn from_report(report: &'a RecipientReport) -> Option<Self> {
        let outcome = &report.outcome;
        let action = if outcome.is_permanent_failure() {
            Action::Failed
        } else if outcome.is_retry() {
            Action::Delayed
        } else {
            return None;
        };
        if !should_notify(report.recipient.notify, action) {
            return None;
        }
        let reply = outcome.reply();
        // The reply's status where it goes with the action; a 3yz reply
        // (to the greeting or the hello, where a completion was due) has
        // none, nor a 2yz (to the `*` that cancelled AUTH).
        let status = reply
            .and_then(|r| status_of(r.code(), r.enhanced_code()).ok())
            .filter(|s| action.allows(s.class()))
            .unwrap_or_else(|| outcome_status(outcome, action));
        Some(Recipient {
            address: &report.recipient.path,
            original: report.recipient.orcpt.as_ref(),
            action,
            status,
            remote_mta: None,
            diagnostic: reply.map(Diagnostic::from_owned_reply),
            last_attempt: None,
            retry_until: None,
        })
    }

    /// The `ORCPT=` of the recipient, written as `Original-Recipient`
    /// (RFC 3461 §6.3: it appears when, and only when, ORCPT was given).
    #[must_use]
    pub fn original_recipient(mut self, orcpt: &'a Orcpt<'a>) -> Self {
        self.original = Some(orcpt);
        self
    }

    /// The remote server's reply, as `Diagnostic-Code` (set by
    /// [`Recipient::from_reply`]).
    #[must_use]
    pub fn diagnostic(mut self, diagnostic: Diagnostic) -> Self {
        self.diagnostic = Some(diagnostic);
        self
    }

    /// The host that gave the reply (`Remote-MTA: dns; <host>`).
    ///
    /// # Errors
    /// [`DsnError::Utf8`] for a name with U-labels (give its A-labels).
    pub fn remote_mta(mut self, host: &'a Domain<'a>) -> Result<Self, DsnError> {
        self.remote_mta = Some(ascii_domain(host, "Remote-MTA")?);
        Ok(self)
    }

    /// The time of the last attempt (`Last-Attempt-Date`).
    #[must_use]
    pub fn last_attempt(mut self, when: Timestamp) -> Self {
        self.last_attempt = Some(when);
        self
    }

    /// Until when the reporting host keeps trying (`Will-Retry-Until`),
    /// for a delayed recipient only.
    ///
    /// # Errors
    /// [`DsnError::RetryNotDelayed`] unless the action is
    /// [`Action::Delayed`].
    pub fn will_retry_until(mut self, until: Timestamp) -> Result<Self, DsnError> {
        if self.action != Action::Delayed {
            return Err(DsnError::RetryNotDelayed);
        }
        self.retry_until = Some(until);
        Ok(self)
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> Action {
        self.action
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> EnhancedStatusCode {
        self.status
    }
}

fn ascii_domain<'d>(host: &'d Domain<'d>, field: &'static str) -> Result<&'d Domain<'d>, DsnError> {
    if host.is_utf8() {
        Err(DsnError::Utf8(field))
    } else {
        Ok(host)
    }
}

/// What part 3 of a report holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Returned {
    /// The whole message (`message/rfc822`, or `message/global`).
    Full,
    /// Its header section (`text/rfc822-headers`, or
    /// `message/global-headers`).
    Headers,
    /// Nothing: even the header section was over the size limit, and the
    /// third part is left out (RFC 6522 §3 makes it optional).
    Nothing,
}

/// A written report: the bytes of the bounce and what to send it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    bytes: Vec<u8>,
    body: BodyType,
    returned: Returned,
    boundary: String,
    global: bool,
    smtputf8: bool,
}

impl Report {
    /// The message, header and body, every line ended by CRLF.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The message.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The body type to send it with (`BODY=` of `MAIL FROM:<>`): 7-bit
    /// unless the returned original or an internationalized report's
    /// UTF-8 parts hold 8-bit octets (`8BITMIME`), or the original holds
    /// NUL or a line over 998 octets (`BINARYMIME`; its bare CRs and LFs
    /// are written CRLF, see the [module](self) notes).
    #[must_use]
    pub fn body_type(&self) -> BodyType {
        self.body
    }

    /// Whether the bounce must be sent with `SMTPUTF8` (RFC 6531): its
    /// envelope recipient (the original sender) or a header field
    /// (`To:`, `From:`) holds a UTF-8 address. Send it as `MAIL FROM:<>
    /// SMTPUTF8`, and only to a server that offers the extension.
    ///
    /// ```
    /// use smtp_proto::command::{Atom, Domain, ForwardPath, Mailbox, ReversePath};
    /// use smtp_proto::dsn::{Action, Bounce, Recipient};
    /// use smtp_proto::status::EnhancedStatusCode;
    /// use smtp_proto::trace::Timestamp;
    ///
    /// let host = Domain::new("mx.example.org").unwrap();
    /// let sender = ReversePath::Mailbox(Mailbox::parse("ñoño@example.org").unwrap());
    /// let rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap());
    /// let when = Timestamp::new(0, 0).unwrap();
    /// let report = Bounce::new(&host, &sender, when, &Atom::new("Q1").unwrap())
    ///     .unwrap()
    ///     .recipient(Recipient::new(&rcpt, Action::Failed, EnhancedStatusCode::BAD_MAILBOX).unwrap())
    ///     .write(b"Subject: hi\r\n\r\nHi\r\n")
    ///     .unwrap();
    /// assert!(report.requires_smtputf8());
    /// assert!(report.is_global());
    /// let text = String::from_utf8(report.into_bytes()).unwrap();
    /// assert!(text.contains("\r\nTo: <ñoño@example.org>\r\n"));
    /// assert!(text.contains("Content-Type: message/global-delivery-status\r\n"));
    /// ```
    #[must_use]
    pub fn requires_smtputf8(&self) -> bool {
        self.smtputf8
    }

    /// Whether the report is internationalized (RFC 6533): part 2 is
    /// `message/global-delivery-status` and part 3 `message/global` or
    /// `message/global-headers`. See the
    /// [module](self#internationalized-bounces-rfc-6533) notes for when.
    #[must_use]
    pub fn is_global(&self) -> bool {
        self.global
    }

    /// What of the original message was returned.
    #[must_use]
    pub fn returned(&self) -> Returned {
        self.returned
    }

    /// The MIME boundary chosen: one that occurs in none of the parts.
    #[must_use]
    pub fn boundary(&self) -> &str {
        &self.boundary
    }
}

/// A delivery status notification to the original sender, for one message
/// and one or more of its recipients. See the [module](self) for the
/// layout and an example.
#[derive(Debug, Clone)]
pub struct Bounce<'a> {
    reporting_mta: &'a Domain<'a>,
    sender: &'a Mailbox<'a>,
    from: Option<&'a Mailbox<'a>>,
    date: Timestamp,
    message_id: String,
    subject: Option<String>,
    envid: Option<&'a EnvId<'a>>,
    received_from: Option<&'a Domain<'a>>,
    arrival: Option<Timestamp>,
    ret: Option<Ret>,
    max_returned: Option<usize>,
    recipients: Vec<Recipient<'a>>,
}

/// The longest subject and `Message-ID:` taken, in octets.
const MAX_HEADER_VALUE: usize = 250;

impl<'a> Bounce<'a> {
    /// A bounce written by `reporting_mta` (`Reporting-MTA: dns; <host>`,
    /// `From: MAILER-DAEMON@<host>`), to the original envelope sender, on
    /// `date`, with the `Message-ID: <token@host>`: the token must be unique
    /// to this bounce on this host (a queue id and a counter, for example).
    ///
    /// ```
    /// use smtp_proto::command::{Atom, Domain, ReversePath};
    /// use smtp_proto::dsn::{Bounce, DsnError};
    /// use smtp_proto::trace::Timestamp;
    ///
    /// let host = Domain::new("mx.example.org").unwrap();
    /// let token = Atom::new("Q1").unwrap();
    /// let at = Timestamp::new(0, 0).unwrap();
    /// let err = Bounce::new(&host, &ReversePath::Null, at, &token).unwrap_err();
    /// assert_eq!(err, DsnError::NullSender);
    /// ```
    ///
    /// A sender with a UTF-8 address makes the bounce internationalized
    /// and [`Report::requires_smtputf8`] true (see the
    /// [module](self#internationalized-bounces-rfc-6533) notes).
    ///
    /// # Errors
    /// [`DsnError::NullSender`] for `<>`; [`DsnError::Utf8`] for a host
    /// in U-labels; [`DsnError::TooLong`] for a `Message-ID:` over 250
    /// octets.
    pub fn new(
        reporting_mta: &'a Domain<'a>,
        sender: &'a ReversePath<'a>,
        date: Timestamp,
        token: &Atom<'_>,
    ) -> Result<Self, DsnError> {
        let sender = match sender {
            ReversePath::Null => return Err(DsnError::NullSender),
            ReversePath::Mailbox(m) => m,
        };
        let reporting_mta = ascii_domain(reporting_mta, "Reporting-MTA")?;
        let message_id = format!("{token}@{reporting_mta}");
        if message_id.len() > MAX_HEADER_VALUE {
            return Err(DsnError::TooLong("Message-ID"));
        }
        Ok(Bounce {
            reporting_mta,
            sender,
            from: None,
            date,
            message_id,
            subject: None,
            envid: None,
            received_from: None,
            arrival: None,
            ret: None,
            max_returned: None,
            recipients: Vec::new(),
        })
    }

    /// The `From:` address, instead of `MAILER-DAEMON@<reporting host>`.
    /// A UTF-8 address is written as it is (RFC 6532), which makes the
    /// bounce internationalized and [`Report::requires_smtputf8`] true.
    ///
    /// # Errors
    /// None today: the `Result` is kept for the checks a later version may
    /// add.
    pub fn from(mut self, from: &'a Mailbox<'a>) -> Result<Self, DsnError> {
        self.from = Some(from);
        Ok(self)
    }

    /// A `Message-ID:` of the caller's, `id-left@id-right` with or without
    /// its angle brackets (RFC 5322 §3.6.4: a dot-atom on the left, a
    /// dot-atom or a domain literal on the right), instead of the one
    /// made from the token.
    ///
    /// ```
    /// use smtp_proto::command::{Atom, Domain, Mailbox, ReversePath};
    /// use smtp_proto::dsn::Bounce;
    /// use smtp_proto::trace::Timestamp;
    ///
    /// let host = Domain::new("mx.example.org").unwrap();
    /// let sender = ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap());
    /// let b = || Bounce::new(&host, &sender, Timestamp::new(0, 0).unwrap(), &Atom::new("t").unwrap()).unwrap();
    /// assert!(b().message_id("<20261126.1@mx.example.org>").is_ok());
    /// assert!(b().message_id("x@[192.0.2.1]").is_ok());
    /// assert!(b().message_id("a b@example.org").is_err());
    /// assert!(b().message_id("a@example.org>\r\nBcc: x@example.net").is_err());
    /// ```
    ///
    /// # Errors
    /// [`DsnError::Invalid`] for anything else; [`DsnError::TooLong`] over
    /// 250 octets.
    pub fn message_id(mut self, id: &str) -> Result<Self, DsnError> {
        let inner = id
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(id);
        if inner.len() > MAX_HEADER_VALUE {
            return Err(DsnError::TooLong("Message-ID"));
        }
        let (left, right) = inner
            .rsplit_once('@')
            .ok_or(DsnError::Invalid("Message-ID"))?;
        let literal = right
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|d| d.bytes().all(|b| matches!(b, 33..=90 | 94..=126)));
        if !is_dot_atom(left) || !(literal || is_dot_atom(right)) {
            return Err(DsnError::Invalid("Message-ID"));
        }
        self.message_id = inner.to_string();
        Ok(self)
    }

    /// The `Subject:`, instead of one chosen from the actions
    /// (`Delivery failed: your message is returned` when a recipient failed,
    /// `Delivery delayed: your message is still queued` when one is delayed, else
    /// `Delivery report: your message was delivered`). Printable ASCII and spaces, at
    /// most 250 octets.
    ///
    /// # Errors
    /// [`DsnError::Invalid`] for CR, LF, another control character or
    /// 8-bit; [`DsnError::Empty`]; [`DsnError::TooLong`].
    pub fn subject(mut self, subject: &str) -> Result<Self, DsnError> {
        if subject.trim_matches(' ').is_empty() {
            return Err(DsnError::Empty("Subject"));
        }
        if !subject.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(DsnError::Invalid("Subject"));
        }
        if subject.len() > MAX_HEADER_VALUE {
            return Err(DsnError::TooLong("Subject"));
        }
        self.subject = Some(subject.to_string());
        Ok(self)
    }

    /// The `ENVID=` of the original MAIL command (`Original-Envelope-Id`,
    /// which RFC 3461 §6.3 requires when ENVID was given).
    #[must_use]
    pub fn envelope_id(mut self, envid: &'a EnvId<'a>) -> Self {
        self.envid = Some(envid);
        self
    }

    /// The host the message came from (`Received-From-MTA: dns; <host>`).
    ///
    /// # Errors
    /// [`DsnError::Utf8`] for a name with U-labels.
    pub fn received_from_mta(mut self, host: &'a Domain<'a>) -> Result<Self, DsnError> {
        self.received_from = Some(ascii_domain(host, "Received-From-MTA")?);
        Ok(self)
    }

    /// When the message arrived at the reporting host (`Arrival-Date`).
    #[must_use]
    pub fn arrival_date(mut self, when: Timestamp) -> Self {
        self.arrival = Some(when);
        self
    }

    /// The `RET=` of the original MAIL command (RFC 3461 §4.3), which
    /// chooses what part 3 holds. It asks for the whole message in a
    /// report of a failure: with `RET=FULL`, or without `RET=` (where the
    /// choice is the reporting host's), a report with a failed recipient
    /// returns the whole message, and one without returns the header
    /// section. `RET=HDRS` always returns the header section.
    #[must_use]
    pub fn ret(mut self, ret: Option<Ret>) -> Self {
        self.ret = ret;
        self
    }

    /// The largest original returned whole, in octets (counted with its
    /// line ends written CRLF): a larger one is returned as its header
    /// section, and a header section over it is left out.
    #[must_use]
    pub fn max_returned_len(mut self, octets: usize) -> Self {
        self.max_returned = Some(octets);
        self
    }

    /// Adds a recipient.
    #[must_use]
    pub fn recipient(mut self, recipient: Recipient<'a>) -> Self {
        self.recipients.push(recipient);
        self
    }

    /// Adds a recipient, in place.
    pub fn push_recipient(&mut self, recipient: Recipient<'a>) {
        self.recipients.push(recipient);
    }

    /// Writes the bounce, with the original message (its bytes as
    /// received, every line end written CRLF) in part 3 as [`Bounce::ret`] chooses.
    /// With a UTF-8 address or an original with UTF-8 header fields, the
    /// report is internationalized ([`Report::is_global`], see the
    /// [module](self#internationalized-bounces-rfc-6533) notes); send it
    /// with the `BODY=` of [`Report::body_type`], and with `SMTPUTF8` when
    /// [`Report::requires_smtputf8`].
    ///
    /// # Errors
    /// [`DsnError::NoRecipients`] without a recipient.
    pub fn write(&self, original: &[u8]) -> Result<Report, DsnError> {
        if self.recipients.is_empty() {
            return Err(DsnError::NoRecipients);
        }
        let any_failed = self.recipients.iter().any(|r| r.action == Action::Failed);
        let full = any_failed && self.ret != Some(Ret::Hdrs);
        let cap = self.max_returned.unwrap_or(usize::MAX);
        // A message has CR and LF only as CRLF (RFC 5322 §2.1, §2.3; RFC
        // 5321 §2.3.8): the bounce too, part 3 included.
        let original = crlf_line_ends(original);
        let original: &[u8] = &original;
        let header = header_section(original);
        let (returned, content) = if full && original.len() <= cap {
            (Returned::Full, original)
        } else if header.len() <= cap {
            (Returned::Headers, header)
        } else {
            (Returned::Nothing, &[][..])
        };
        // RFC 6533: UTF-8 anywhere makes the whole report internationalized.
        let smtputf8 = self.sender.is_utf8() || self.from.is_some_and(Mailbox::is_utf8);
        let global = smtputf8
            || self.recipients.iter().any(Recipient::is_utf8)
            || (returned != Returned::Nothing && is_utf8_header(header));
        let status = self.status_part();
        let human = self.human_part(returned);
        let content_type = match (returned, global) {
            (Returned::Full, false) => "message/rfc822",
            (Returned::Full, true) => "message/global",
            (_, false) => "text/rfc822-headers",
            (_, true) => "message/global-headers",
        };
        let content_body = body_type(content);
        // The multipart's encoding is the widest of its parts' (RFC 2045
        // §6.4); the first two are 8-bit only with UTF-8 addresses.
        let text_body = if human.is_ascii() && status.is_ascii() {
            BodyType::SevenBit
        } else {
            BodyType::EightBitMime
        };
        let body = if content_body == BodyType::SevenBit {
            text_body
        } else {
            content_body
        };
        let boundary = pick_boundary(&[human.as_bytes(), status.as_bytes(), content]);

        let mut out = Vec::with_capacity(2048 + content.len());
        self.write_header(&mut out, &boundary, body, global);
        out.extend_from_slice(
            b"\r\nA delivery status report in MIME multipart/report form.\r\n\r\n",
        );
        let delimiter = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"--");
            out.extend_from_slice(boundary.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        delimiter(&mut out);
        if human.is_ascii() {
            out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n");
        } else {
            out.extend_from_slice(
                b"Content-Type: text/plain; charset=utf-8\r\n\
                  Content-Transfer-Encoding: 8bit\r\n\r\n",
            );
        }
        out.extend_from_slice(human.as_bytes());
        delimiter(&mut out);
        if global {
            out.extend_from_slice(b"Content-Type: message/global-delivery-status\r\n");
            if !status.is_ascii() {
                out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
            }
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(b"Content-Type: message/delivery-status\r\n\r\n");
        }
        out.extend_from_slice(status.as_bytes());
        if returned != Returned::Nothing {
            delimiter(&mut out);
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(content_type.as_bytes());
            out.extend_from_slice(b"\r\n");
            match content_body {
                BodyType::SevenBit => {}
                BodyType::EightBitMime => {
                    out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
                }
                _ => out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n"),
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(content);
            // The CRLF before a delimiter belongs to the delimiter (RFC
            // 2046 §5.1.1): one more, always, so that the part holds the
            // original's last line end too.
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        Ok(Report {
            bytes: out,
            body,
            returned,
            boundary,
            global,
            smtputf8,
        })
    }

    fn write_header(&self, out: &mut Vec<u8>, boundary: &str, body: BodyType, global: bool) {
        let from = match self.from {
            Some(m) => format!("Delivery Reports <{m}>"),
            None => format!("Delivery Reports <MAILER-DAEMON@{}>", self.reporting_mta),
        };
        field(out, "From", &from);
        field(out, "To", &format!("<{}>", self.sender));
        let subject = self.subject.as_deref().unwrap_or_else(|| {
            let has = |a| self.recipients.iter().any(|r| r.action == a);
            if has(Action::Failed) {
                "Delivery failed: your message is returned"
            } else if has(Action::Delayed) {
                "Delivery delayed: your message is still queued"
            } else {
                "Delivery report: your message was delivered"
            }
        });
        field(out, "Subject", subject);
        field(out, "Date", &self.date.to_string());
        field(out, "Message-ID", &format!("<{}>", self.message_id));
        field(out, "Auto-Submitted", "auto-replied");
        field(out, "MIME-Version", "1.0");
        // RFC 6522 §3: `report-type` names the subtype of part 2.
        let report_type = if global {
            "global-delivery-status"
        } else {
            "delivery-status"
        };
        field(
            out,
            "Content-Type",
            &format!("multipart/report; report-type={report_type}; boundary=\"{boundary}\""),
        );
        match body {
            BodyType::SevenBit => {}
            BodyType::EightBitMime => field(out, "Content-Transfer-Encoding", "8bit"),
            _ => field(out, "Content-Transfer-Encoding", "binary"),
        }
    }

    /// Part 1, every line ended by CRLF.
    fn human_part(&self, returned: Returned) -> String {
        let has = |a| self.recipients.iter().any(|r| r.action == a);
        let mut out = Vec::new();
        let para = |out: &mut Vec<u8>, text: &str| {
            wrap(out, text, b"");
            out.extend_from_slice(b"\r\n");
        };
        para(
            &mut out,
            &format!("Delivery report from {}.", self.reporting_mta),
        );
        let summary = if has(Action::Failed) {
            match returned {
                Returned::Full => {
                    "Your message could not be delivered to one or more of its recipients. \
                     The details are below; your message is returned in the last part."
                }
                Returned::Headers => {
                    "Your message could not be delivered to one or more of its recipients. \
                     The details are below; the header of your message is returned in the \
                     last part."
                }
                Returned::Nothing => {
                    "Your message could not be delivered to one or more of its recipients. \
                     The details are below."
                }
            }
        } else if has(Action::Delayed) {
            "Your message has not been delivered yet to one or more of its recipients. \
             The mail system will keep trying; you need not send it again."
        } else {
            "Your message was delivered or passed on as listed below."
        };
        para(&mut out, summary);
        for r in &self.recipients {
            let line = format!(
                "{}: {}",
                r.address_text(self.reporting_mta),
                r.action.phrase()
            );
            wrap(&mut out, &line, b"");
            if let Some(until) = r.retry_until {
                wrap(&mut out, &format!("Will retry until {until}."), b"    ");
            }
            if let Some(d) = &r.diagnostic {
                let said = match r.remote_mta {
                    Some(host) => format!("{host} replied: {}", d.text),
                    None => format!("The reply was: {}", d.text),
                };
                wrap(&mut out, &said, b"    ");
            }
            out.extend_from_slice(b"\r\n");
        }
        // Only ASCII and UTF-8 addresses were written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Part 2: the per-message block and one block per recipient, each
    /// followed by an empty line.
    fn status_part(&self) -> String {
        let mut out = Vec::new();
        if let Some(envid) = self.envid {
            field(
                &mut out,
                "Original-Envelope-Id",
                &decoded_or_xtext(envid.as_xtext()),
            );
        }
        field(
            &mut out,
            "Reporting-MTA",
            &format!("dns; {}", self.reporting_mta),
        );
        if let Some(host) = self.received_from {
            field(&mut out, "Received-From-MTA", &format!("dns; {host}"));
        }
        if let Some(when) = self.arrival {
            field(&mut out, "Arrival-Date", &when.to_string());
        }
        out.extend_from_slice(b"\r\n");
        for r in &self.recipients {
            if let Some(orcpt) = r.original {
                field(&mut out, "Original-Recipient", &orcpt_value(orcpt));
            }
            field(
                &mut out,
                "Final-Recipient",
                &r.final_recipient(self.reporting_mta),
            );
            field(&mut out, "Action", r.action.as_str());
            field(&mut out, "Status", &r.status.to_string());
            if let Some(host) = r.remote_mta {
                field(&mut out, "Remote-MTA", &format!("dns; {host}"));
            }
            if let Some(d) = &r.diagnostic {
                field(&mut out, "Diagnostic-Code", &format!("smtp; {}", d.text));
            }
            if let Some(when) = r.last_attempt {
                field(&mut out, "Last-Attempt-Date", &when.to_string());
            }
            if let Some(when) = r.retry_until {
                field(&mut out, "Will-Retry-Until", &when.to_string());
            }
            out.extend_from_slice(b"\r\n");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Recipient<'_> {
    /// The address as a mailbox; `<Postmaster>` is the postmaster of the
    /// remote host when there is one, else of the reporting host (see the
    /// [module](self) notes).
    fn mailbox_text(&self, host: &Domain<'_>) -> String {
        match self.address {
            ForwardPath::Postmaster => {
                format!("Postmaster@{}", self.remote_mta.unwrap_or(host))
            }
            ForwardPath::Mailbox(m) => m.to_string(),
        }
    }

    /// `<address>` for the human-readable part, in UTF-8 if it is.
    fn address_text(&self, host: &Domain<'_>) -> String {
        format!("<{}>", self.mailbox_text(host))
    }

    /// `rfc822; local@domain`, or for an internationalized mailbox
    /// `utf-8; <utf-8-address>`: the mailbox in UTF-8, for
    /// `message/global-delivery-status` (RFC 6533), which a report with
    /// such a recipient always is.
    fn final_recipient(&self, host: &Domain<'_>) -> String {
        let addr = self.mailbox_text(host);
        if addr.is_ascii() {
            format!("rfc822; {addr}")
        } else {
            format!("utf-8; {addr}")
        }
    }

    /// Whether this recipient makes the report internationalized: its
    /// address, or the address of its ORCPT, is a UTF-8 mailbox.
    fn is_utf8(&self) -> bool {
        self.address.is_utf8() || self.original.and_then(utf8_orcpt_mailbox).is_some()
    }
}

/// `addr-type; address` of an ORCPT (see the [module](self) notes): an
/// internationalized mailbox of the type `utf-8` in UTF-8, as its RFC 6533
/// `utf-8-address` form (the report is `message/global-delivery-status`
/// then).
fn orcpt_value(orcpt: &Orcpt<'_>) -> String {
    let kind = orcpt.addr_type().as_str();
    if let Some(mailbox) = utf8_orcpt_mailbox(orcpt) {
        return format!("{kind}; {mailbox}");
    }
    let addr = match orcpt.addr() {
        // Unitext: QCHAR, `\x{HEX}` and non-ASCII; only the last needs
        // writing as `\x{HEX}`. With no `+` and no `=`, that is also its
        // `utf-8-addr-xtext` form.
        OrcptAddr::Unitext(u) => xtext_parens(&embed_non_ascii(u.as_str())),
        // The `utf-8` forms are written as sent (RFC 6533 §3).
        OrcptAddr::XText(x) if kind.eq_ignore_ascii_case("utf-8") => xtext_parens(x.as_str()),
        OrcptAddr::XText(x) => {
            let value = decoded_or_xtext(x);
            // A reader removes comments (`(...)` outside a quoted string)
            // from an address, and trims it: a value it would change is
            // written in its xtext form, with `+28` and `+29` for the
            // parentheses.
            if read::strip_comments(&value) == value {
                value
            } else {
                xtext_parens(x.as_str())
            }
        }
    };
    format!("{kind}; {addr}")
}

/// An xtext (or a value that is one, with no `+` and no `=`) with `(` and
/// `)` as `+28` and `+29`, the same xtext: a reader takes `(...)` in an
/// address for a comment and drops it.
fn xtext_parens(x: &str) -> String {
    x.replace('(', "+28").replace(')', "+29")
}

/// The address of an ORCPT of the type `utf-8`, decoded (`+XX` of xtext,
/// then `\x{HEX}`), when it is a mailbox (RFC 6531) with a non-ASCII
/// character; `None` for any other ORCPT.
fn utf8_orcpt_mailbox(orcpt: &Orcpt<'_>) -> Option<String> {
    if !orcpt.addr_type().as_str().eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let text = match orcpt.addr() {
        OrcptAddr::XText(x) => String::from_utf8(x.decode().into_owned()).ok()?,
        OrcptAddr::Unitext(u) => u.as_str().to_string(),
    };
    let decoded = decode_embedded(&text)?;
    let valid = !decoded.is_ascii() && Mailbox::parse(&decoded).is_ok();
    valid.then_some(decoded)
}

/// `text` with every `\x{HEXPOINT}` (RFC 6533 `EmbeddedUnicodeChar`)
/// replaced by its character; `None` when a `\` starts none as RFC 6533
/// §3 writes it (see `command::value::embedded_unicode_len`: no printable
/// ASCII but SP, `+`, `=` and `\`, no leading zero, no surrogate).
fn decode_embedded(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let len = crate::command::embedded_unicode_len(&rest.as_bytes()[at..])?;
        // `\x{` HEX `}`: the digits are ASCII, so these are char bounds.
        let hex = rest.get(at + 3..at + len - 1)?;
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The decoded value when it is printable ASCII (graphic and space, RFC
/// 3461 §4.2, §4.4), else the xtext as sent.
fn decoded_or_xtext(x: &crate::command::XText<'_>) -> String {
    let raw = x.decode();
    if !raw.is_empty() && raw.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(&raw).into_owned()
    } else {
        x.as_str().to_string()
    }
}

/// `\x{HEX}` for a character (RFC 6533 `EmbeddedUnicodeChar`).
fn push_embedded(out: &mut String, c: char) {
    out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
}

/// Every non-ASCII character as `\x{HEX}`.
fn embed_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            push_embedded(&mut out, c);
        }
    }
    out
}

/// Reply text made 7-bit: a tab as a space, printable ASCII but `\` as
/// it is, every other character as `\x{HEX}`, an octet that is not UTF-8
/// as `\x{FFFD}`. A `\` of the reply is written `\x{5C}`, so that a
/// reply holding the text `\x{FC}` does not read as one holding `ü`
/// (RFC 6533 leaves `\` out of `QCHAR` for the same reason).
fn seven_bit(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.push(' '),
                ' '..='[' | ']'..='~' => out.push(c),
                _ => push_embedded(&mut out, c),
            }
        }
        for _ in chunk.invalid() {
            push_embedded(&mut out, char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// `dot-atom-text` (RFC 5322 §3.2.3).
fn is_dot_atom(s: &str) -> bool {
    const SPECIAL: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || SPECIAL.contains(&b))
}

/// The header section of a message: the lines before the first empty one
/// (each with its line end), or the whole message when none is empty.
fn header_section(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let rest = &message[start..];
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return &message[..start];
        }
        match memchr::memchr(b'\n', rest) {
            Some(lf) => start += lf + 1,
            None => break,
        }
    }
    message
}

/// Whether a header section holds UTF-8 header fields (RFC 6532): it is
/// UTF-8 and not ASCII. Other 8-bit octets (Latin-1, ...) are no UTF-8
/// header, which `message/global` and `message/global-headers` hold.
fn is_utf8_header(header: &[u8]) -> bool {
    !header.is_ascii() && std::str::from_utf8(header).is_ok()
}

/// `bytes` with every CR or LF outside a CRLF pair, a line end of another
/// system, written CRLF; borrowed when there is none.
fn crlf_line_ends(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = |i: usize| match bytes[i] {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    };
    let Some(first) = memchr::memchr2_iter(b'\r', b'\n', bytes).find(|&i| bare(i)) else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 2);
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// The body type content needs (RFC 2045 §2.7, §2.8, RFC 6152, RFC 3030):
/// binary with NUL, a CR or LF outside CRLF, or a line over 998 octets;
/// 8-bit with an octet over 127; else 7-bit.
fn body_type(content: &[u8]) -> BodyType {
    let mut line = 0usize;
    let mut eight = false;
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            0 => return BodyType::BinaryMime,
            b'\r' if content.get(i + 1) == Some(&b'\n') => {
                line = 0;
                i += 2;
                continue;
            }
            b'\r' | b'\n' => return BodyType::BinaryMime,
            b => eight |= b > 127,
        }
        line += 1;
        if line > 998 {
            return BodyType::BinaryMime;
        }
        i += 1;
    }
    if eight {
        BodyType::EightBitMime
    } else {
        BodyType::SevenBit
    }
}

/// The boundaries tried are this prefix and a decimal number.
const BOUNDARY_PREFIX: &[u8] = b"=_smtp-proto-dsn-";

/// The first boundary `=_smtp-proto-dsn-N` (N = 0, 1, ...) that occurs in
/// none of the parts, found in two passes: after every occurrence of the
/// prefix, each leading run of the digits that follow rules out the number
/// it spells.
///
/// With `k` occurrences, N is below `2k + 20`: a number of `[L/10, L)` is
/// ruled out by an occurrence of its own (no run of one occurrence spells
/// two of them), so all of `[0, L)` ruled out takes `0.9 L` occurrences.
/// Only the numbers below that limit are marked, one bit each, so that an
/// original full of candidates costs a few bits for each, not the 18
/// numbers each could spell.
fn pick_boundary(parts: &[&[u8]]) -> String {
    let finder = memchr::memmem::Finder::new(BOUNDARY_PREFIX);
    let count: usize = parts.iter().map(|p| finder.find_iter(p).count()).sum();
    let limit = count.saturating_mul(2).saturating_add(20);
    let mut taken = vec![0u64; limit.div_ceil(64)];
    for part in parts {
        for at in finder.find_iter(part) {
            let digits = &part[at + BOUNDARY_PREFIX.len()..];
            let mut n: usize = 0;
            for (i, &d) in digits.iter().enumerate() {
                if !d.is_ascii_digit() || (i == 1 && digits[0] == b'0') {
                    break;
                }
                n = n * 10 + usize::from(d - b'0');
                if n >= limit {
                    break;
                }
                taken[n / 64] |= 1 << (n % 64);
            }
        }
    }
    // The first number not ruled out; there is one below the limit.
    let n = (0..limit)
        .find(|&n| taken[n / 64] & (1 << (n % 64)) == 0)
        .unwrap_or(limit);
    format!("{}{n}", String::from_utf8_lossy(BOUNDARY_PREFIX))
}

/// Lines are folded to this length where the text has a space (RFC 5322
/// §2.1.1 SHOULD), CRLF not counted.
const SOFT_LINE: usize = 78;
/// And never past this one (RFC 5322 §2.1.1 MUST).
const HARD_LINE: usize = 998;

/// Appends `Name: value` CRLF, folded before a space (RFC 5322 §2.2.3),
/// so the field unfolds to the value itself. `value` is printable ASCII
/// and spaces, and UTF-8 in the addresses of an internationalized report
/// (RFC 6532).
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    fold(out, name.len() + 2, value.as_bytes(), None);
}

/// Appends a paragraph of text, each line starting with `indent`, wrapped
/// at spaces (which the line breaks replace).
fn wrap(out: &mut Vec<u8>, text: &str, indent: &[u8]) {
    out.extend_from_slice(indent);
    fold(out, indent.len(), text.as_bytes(), Some(indent));
}

/// Writes `rest` from a line already `used` octets long, breaking lines
/// before spaces to keep them within [`SOFT_LINE`] where there is a space
/// to break at, and cutting them at [`HARD_LINE`] where there is not;
/// what of a run of spaces does not fit on its line is written as one
/// space.
/// With `indent` (text), a break replaces the space by CRLF and the
/// indent; without (a header field), the space starts the next line.
fn fold(out: &mut Vec<u8>, mut used: usize, mut rest: &[u8], indent: Option<&[u8]>) {
    let cont = indent.unwrap_or(b"");
    if indent.is_none() && used + rest.len() > SOFT_LINE {
        // A folded field ends with no line of spaces alone (RFC 5322
        // §3.2.2 and §4.2: obsolete); its trailing spaces carry nothing.
        let end = rest.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        rest = &rest[..end];
    }
    while !rest.is_empty() && used + rest.len() > SOFT_LINE {
        // A break leaves something other than spaces on the line.
        let min = rest
            .iter()
            .position(|&b| b != b' ')
            .map_or(rest.len(), |p| p + 1);
        let last = rest.len() - 1;
        let soft = SOFT_LINE.saturating_sub(used).min(last);
        let hard = HARD_LINE.saturating_sub(used).min(last);
        let space = |i: &usize| rest[*i] == b' ';
        let cut = (min..=soft)
            .rev()
            .find(space)
            .or_else(|| (min.max(soft + 1)..=hard).find(space));
        match cut {
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(cont);
                rest = &rest[i..];
                used = cont.len();
                if indent.is_some() {
                    rest = &rest[1..];
                }
            }
            None if used + rest.len() <= HARD_LINE => break,
            None => {
                let mut i = HARD_LINE.saturating_sub(used).max(1);
                let blanks = rest.iter().take_while(|&&b| b == b' ').count();
                if i <= blanks {
                    // Only spaces would fit on the line: a run of them
                    // longer than a line cannot be written without a line
                    // of spaces alone, which a reader takes for the empty
                    // line that ends a header or a block (RFC 5322 §3.2.2,
                    // §4.2: obsolete). One space stands for what is left
                    // of the run.
                    rest = if blanks == rest.len() {
                        &[]
                    } else {
                        &rest[blanks - 1..]
                    };
                    continue;
                }
                // Never inside a UTF-8 character.
                while i > 1 && (rest[i] & 0xC0) == 0x80 {
                    i -= 1;
                }
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"\r\n");
                let cont: &[u8] = if indent.is_some() { cont } else { b" " };
                out.extend_from_slice(cont);
                rest = &rest[i..];
                used = cont.len();
            }
        }
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_keeps_lines_short_and_unfolds_to_the_value() {
        let value = "smtp; 550 5.1.1 ".to_string() + &"word ".repeat(60) + &"x".repeat(1500);
        let mut out = Vec::new();
        field(&mut out, "Diagnostic-Code", &value);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\r\n"));
        let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 5);
        for l in &lines {
            assert!(l.len() <= HARD_LINE, "line of {}", l.len());
            assert!(!l.trim().is_empty(), "whitespace-only line");
        }
        // Lines up to the long run keep to 78 octets.
        for l in lines.iter().take_while(|l| !l.contains("xxx")) {
            assert!(l.len() <= SOFT_LINE, "{l:?}");
        }
        // Unfolding gives the value back, but for the space the cut of the
        // 1500-octet run added.
        let unfolded = text.trim_end_matches("\r\n").replace("\r\n", "");
        let want = format!("Diagnostic-Code: {value}");
        assert_eq!(unfolded.len(), want.len() + 1);
        assert_eq!(unfolded.replace(' ', ""), want.replace(' ', ""));
    }

    #[test]
    fn fold_never_leaves_a_blank_line() {
        let mut out = Vec::new();
        field(&mut out, "X", &" ".repeat(200));
        field(&mut out, "Y", &format!("a{}b", " ".repeat(300)));
        // A run longer than a line: one space stands for what does not
        // fit on its line.
        field(&mut out, "Z", &format!("a{}b", " ".repeat(1200)));
        let text = String::from_utf8(out).unwrap();
        for l in text.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(!l.trim().is_empty(), "{text:?}");
            assert!(l.len() <= HARD_LINE);
        }
        assert_eq!(text.replace("\r\n ", " ").matches("\r\n").count(), 3);
        let z = &text[text.find("Z: ").unwrap()..];
        let z = z.trim_end_matches("\r\n").replace("\r\n", "");
        assert!(z.starts_with("Z: a ") && z.ends_with(" b"), "{z:?}");
        assert!(z.len() < 1000, "{}", z.len());
    }

    #[test]
    fn a_folded_field_with_trailing_spaces_leaves_no_line_of_spaces() {
        for value in [
            format!("{} ", "x".repeat(70)),
            format!("a {}  ", "b".repeat(80)),
            format!("{}{}", "word ".repeat(30), " ".repeat(1200)),
        ] {
            let mut out = Vec::new();
            field(&mut out, "Original-Envelope-Id", &value);
            let text = String::from_utf8(out).unwrap();
            let body = text.strip_suffix("\r\n").unwrap();
            for line in body.split("\r\n") {
                assert!(!line.trim().is_empty(), "a line of spaces in {text:?}");
                assert!(line.len() <= HARD_LINE);
            }
            assert_eq!(
                body.replace("\r\n", ""),
                format!("Original-Envelope-Id: {}", value.trim_end())
            );
        }
    }

    #[test]
    fn header_section_stops_at_the_empty_line() {
        assert_eq!(
            header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_section(b"A: 1\r\n"), b"A: 1\r\n");
        assert_eq!(header_section(b"\r\nbody"), b"");
        assert_eq!(header_section(b"A: 1\n\nbody"), b"A: 1\n");
    }

    #[test]
    fn body_types() {
        assert_eq!(body_type(b"a\r\nb\r\n"), BodyType::SevenBit);
        assert_eq!(body_type("ä\r\n".as_bytes()), BodyType::EightBitMime);
        assert_eq!(body_type(b"a\nb"), BodyType::BinaryMime);
        assert_eq!(body_type(b"a\rb"), BodyType::BinaryMime);
        assert_eq!(body_type(b"a\0b"), BodyType::BinaryMime);
        assert_eq!(body_type(&[b'a'; 998]), BodyType::SevenBit);
        assert_eq!(body_type(&[b'a'; 999]), BodyType::BinaryMime);
    }

    #[test]
    fn boundary_skips_numbers_the_parts_hold() {
        assert_eq!(pick_boundary(&[b"nothing"]), "=_smtp-proto-dsn-0");
        assert_eq!(
            pick_boundary(&[b"--=_smtp-proto-dsn-0\r\n"]),
            "=_smtp-proto-dsn-1"
        );
        // "...-12" holds "...-1" too.
        let held = b"=_smtp-proto-dsn-0 =_smtp-proto-dsn-12 =_smtp-proto-dsn-3";
        let b = pick_boundary(&[held, b"=_smtp-proto-dsn-2"]);
        assert_eq!(b, "=_smtp-proto-dsn-4");
        // A leading zero spells only 0.
        assert_eq!(
            pick_boundary(&[b"=_smtp-proto-dsn-01"]),
            "=_smtp-proto-dsn-1"
        );
        // Every candidate up to 999 held: the next is 1000, and it is not
        // in the content.
        let mut many = Vec::new();
        for i in 0..1000 {
            many.extend_from_slice(format!("=_smtp-proto-dsn-{i}\r\n").as_bytes());
        }
        let b = pick_boundary(&[&many]);
        assert_eq!(b, "=_smtp-proto-dsn-1000");
        assert!(memchr::memmem::find(&many, b.as_bytes()).is_none());
        // The fewest occurrences that rule out 0 to 999 (each of 100 to
        // 999 rules out its prefixes too): 901 of them, well within the
        // limit of the numbers marked.
        let mut few = b"=_smtp-proto-dsn-0\r\n".to_vec();
        for i in 100..1000 {
            few.extend_from_slice(format!("=_smtp-proto-dsn-{i}\r\n").as_bytes());
        }
        assert_eq!(pick_boundary(&[&few]), "=_smtp-proto-dsn-1000");
        // Long runs of digits rule out their short prefixes alone.
        let long = b"=_smtp-proto-dsn-0123 =_smtp-proto-dsn-1999999999999999999999999";
        assert_eq!(pick_boundary(&[long]), "=_smtp-proto-dsn-2");
    }

    #[test]
    fn fold_never_cuts_a_utf8_character() {
        // A run of 2-octet characters with no space, over 998 octets, put
        // after an odd number of octets so that 998 falls inside one.
        let value = "é".repeat(700);
        let mut out = Vec::new();
        field(&mut out, "X-Odd", &value);
        let text = String::from_utf8(out).expect("still UTF-8");
        for line in text.split("\r\n") {
            assert!(line.len() <= HARD_LINE, "line of {}", line.len());
        }
        assert_eq!(
            text.replace("\r\n ", "").replace("\r\n", ""),
            format!("X-Odd: {value}")
        );
    }

    #[test]
    fn embedded_unicode_is_decoded() {
        assert_eq!(
            decode_embedded("\\x{7528}\\x{6237}@example.com").as_deref(),
            Some("用户@example.com")
        );
        assert_eq!(decode_embedded("a\\x{2B}b").as_deref(), Some("a+b"));
        assert_eq!(decode_embedded("plain").as_deref(), Some("plain"));
        assert_eq!(decode_embedded("a\\b"), None);
        assert_eq!(decode_embedded("a\\x{D800}"), None);
        assert_eq!(decode_embedded("a\\x{}"), None);
        // Not as RFC 6533 writes a code point: printable ASCII, a leading
        // zero, a character past U+10FFFF.
        assert_eq!(decode_embedded("a\\x{41}"), None);
        assert_eq!(decode_embedded("a\\x{00E9}"), None);
        assert_eq!(decode_embedded("a\\x{110000}"), None);
        assert_eq!(decode_embedded("a\\x{E9}").as_deref(), Some("a\u{e9}"));
    }

    #[test]
    fn seven_bit_text() {
        assert_eq!(seven_bit(b"a\tb"), "a b");
        assert_eq!(seven_bit("é".as_bytes()), "\\x{E9}");
        assert_eq!(seven_bit(b"a\xffb"), "a\\x{FFFD}b");
        assert_eq!(seven_bit(b"a\x1bb\x7f"), "a\\x{1B}b\\x{7F}");
        assert_eq!(seven_bit(b"a\\x{41}"), "a\\x{5C}x{41}");
    }
}
