//! What the client machine reports: events, verdicts and errors.

use super::auth::AuthFailure;
use super::config::ConfigError;
use crate::reply::{OwnedReply, Reply, ReplyError};
use crate::sasl::{CustomMechanism, SaslError};
use crate::status::ReplyCode;

/// How a reply ends the request it answers, for the caller's retry logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// 2yz: done.
    Success,
    /// 4yz: not done now; the same request may succeed later (queue and
    /// retry).
    RetryLater,
    /// 5yz: not done, and repeating it will not help (bounce). (A 3yz
    /// gives this from [`Verdict::of`] too, but the client machine never
    /// reports one: a 3yz where a completion reply is due ends the session
    /// with [`ClientError::UnexpectedReply`].)
    Permanent,
}

impl Verdict {
    /// The verdict of a reply code.
    ///
    /// ```
    /// use smtp_proto::client::Verdict;
    /// use smtp_proto::status::ReplyCode;
    /// assert_eq!(Verdict::of(ReplyCode::OK), Verdict::Success);
    /// assert_eq!(Verdict::of(ReplyCode::MAILBOX_BUSY), Verdict::RetryLater);
    /// assert_eq!(Verdict::of(ReplyCode::MAILBOX_UNAVAILABLE), Verdict::Permanent);
    /// ```
    #[must_use]
    pub fn of(code: ReplyCode) -> Self {
        if code.is_positive_completion() {
            Verdict::Success
        } else if code.is_transient_negative() {
            Verdict::RetryLater
        } else {
            Verdict::Permanent
        }
    }

    /// True for [`Verdict::Success`].
    #[must_use]
    pub fn is_success(self) -> bool {
        self == Verdict::Success
    }
}

/// What happened to one recipient in a finished transaction.
///
/// The two fields keep apart what the server said to this recipient and
/// what became of the message for it; [`RecipientStatus::verdict`] decides
/// from both.
///
/// After a refused MAIL there is no transaction, so the MAIL reply decides
/// for every recipient (RFC 5321 §4.2.1: after a 4yz "the action may be
/// requested again", after a 5yz the client "SHOULD NOT repeat the exact
/// request"). A pipelined RCPT that follows it is usually answered `503`
/// (bad sequence of commands: no MAIL in effect): that reply stays in
/// `rcpt` but only echoes the MAIL refusal, and `delivery` holds the MAIL
/// verdict. In the
/// same way a refused DATA, a refused BDAT chunk (RFC 3030 §2: the
/// transaction has failed) or the reply after the body decides for every
/// recipient RCPT accepted; in LMTP each accepted recipient has its own
/// reply after the body (RFC 2033 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecipientStatus {
    /// The verdict of this recipient's RCPT reply, as the server gave it;
    /// `None` when RCPT was not answered (not sent without PIPELINING
    /// after a refused MAIL, or the transaction stopped first).
    pub rcpt: Option<Verdict>,
    /// The verdict of the transaction for this recipient, once something
    /// decided it: the refused MAIL (for every recipient), the refusal of
    /// DATA or of a BDAT chunk, or the reply after the body (SMTP: shared
    /// by all accepted recipients; LMTP: one reply each). `None` when
    /// nothing did: MAIL succeeded and this RCPT was refused, or the
    /// transaction stopped before its end.
    pub delivery: Option<Verdict>,
}

impl RecipientStatus {
    /// True when the server took responsibility for the message for this
    /// recipient.
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        self.rcpt == Some(Verdict::Success) && self.delivery == Some(Verdict::Success)
    }

    /// What to do about this recipient: success, retry later or bounce.
    ///
    /// [`RecipientStatus::delivery`] decides when set (a refused MAIL, a
    /// refused message, or the reply after the body); otherwise a refused
    /// RCPT decides by its own reply; a recipient never answered, or
    /// accepted by a transaction that stopped before its end, counts as
    /// retry later.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        match (self.rcpt, self.delivery) {
            (_, Some(d)) => d,
            (Some(Verdict::Success) | None, None) => Verdict::RetryLater,
            (Some(r), None) => r,
        }
    }
}

/// The summary of one transaction, reported when it is over: in
/// [`ClientEvent::TransactionEnd`] when the client is ready for the next
/// one (or QUIT), or in [`ClientEvent::ServiceClosing`] when a 421 cut it
/// short and the session is over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionSummary {
    /// The verdict of the MAIL reply (`None` if it never came).
    pub sender: Option<Verdict>,
    /// One status per recipient, in the envelope's order.
    pub recipients: Vec<RecipientStatus>,
    /// The verdict of the message as a whole: the final reply after the
    /// body in SMTP (or the refusal of DATA / a BDAT chunk); in LMTP, the
    /// worst of the per-recipient replies. `None` when no message was
    /// transferred.
    pub message: Option<Verdict>,
}

impl TransactionSummary {
    /// Indices of the recipients the message was delivered to.
    pub fn delivered(&self) -> impl Iterator<Item = usize> + '_ {
        self.recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_delivered())
            .map(|(i, _)| i)
    }

    /// True when every recipient got the message.
    #[must_use]
    pub fn all_delivered(&self) -> bool {
        !self.recipients.is_empty() && self.recipients.iter().all(RecipientStatus::is_delivered)
    }
}

/// Something the client machine reports. Replies borrow the caller's input
/// buffer; use [`Reply::into_owned`] to keep one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent<'a> {
    /// The server's 220 greeting (or another 2yz: RFC 5321 §4.2 has the
    /// client read a code it does not know by its first digit); the
    /// client has queued EHLO (or LHLO).
    Greeting {
        /// The greeting.
        reply: Reply<'a>,
    },
    /// The server refused the session in its greeting (554, or any other
    /// code but a 2yz and 421). The client has queued QUIT; the session ends
    /// after its reply.
    GreetingRejected {
        /// The greeting.
        reply: Reply<'a>,
    },
    /// The server refused EHLO and HELO (or LHLO). The client has queued
    /// QUIT.
    HelloRejected {
        /// The refusal.
        reply: Reply<'a>,
    },
    /// The server answered STARTTLS with 220 (or another 2yz, read by its
    /// first digit as RFC 5321 §4.2 asks): start the TLS handshake on
    /// the connection now, then call
    /// [`Client::tls_established`](super::Client::tls_established). No
    /// byte may come from the server before the handshake.
    StartTls,
    /// TLS could not be started: the server does not offer STARTTLS, or
    /// the caller cannot run the handshake
    /// ([`Client::set_can_start_tls`](super::Client::set_can_start_tls))
    /// (`reply` is `None` for both), or the server refused it. Under
    /// [`TlsPolicy::Required`](super::TlsPolicy::Required) the client has
    /// queued QUIT; otherwise the session goes on in plain text.
    TlsUnavailable {
        /// The refusal of STARTTLS, if the command was sent.
        reply: Option<Reply<'a>>,
    },
    /// The session is ready: EHLO (and STARTTLS, if any) is done. Call
    /// [`Client::authenticate`](super::Client::authenticate),
    /// [`Client::send_mail`](super::Client::send_mail) or
    /// [`Client::quit`](super::Client::quit).
    Ready,
    /// The server sent a `334` challenge (or another 3yz, read by its
    /// first digit, RFC 5321 §4.2) in the exchange of a custom
    /// mechanism ([`AuthCredentials::Custom`](super::AuthCredentials::Custom)).
    /// The client waits for the application's answer: call
    /// [`Client::auth_response`](super::Client::auth_response) with the
    /// response, or [`Client::cancel_auth`](super::Client::cancel_auth).
    /// Until then [`Client::handle_input`](super::Client::handle_input)
    /// returns `Paused` and reads nothing.
    AuthChallenge {
        /// The mechanism in use.
        mechanism: CustomMechanism,
        /// The challenge, base64-decoded (possibly empty).
        challenge: Vec<u8>,
        /// Which `334` of the exchange this is, from 1 (the server
        /// machine's `round` for the answer to it). A `334` the client
        /// answered by itself with an initial response too long for the
        /// AUTH line counts too.
        round: usize,
    },
    /// AUTH succeeded (235).
    Authenticated {
        /// The 235 reply.
        reply: Reply<'a>,
    },
    /// AUTH failed; the session is still usable (unauthenticated).
    AuthFailed {
        /// The failure reply.
        reply: Reply<'a>,
        /// Why, from the reply code.
        failure: AuthFailure,
    },
    /// The reply to MAIL FROM.
    Sender {
        /// The reply.
        reply: Reply<'a>,
        /// Its verdict.
        verdict: Verdict,
    },
    /// The reply to one RCPT TO.
    Recipient {
        /// The recipient's index in the envelope.
        index: usize,
        /// The reply.
        reply: Reply<'a>,
        /// Its verdict: [`Verdict::of`] its code, except that a `552`
        /// with the enhanced status code X.5.3 (too many recipients) is
        /// [`Verdict::RetryLater`], as RFC 5321 §4.5.3.1.10 asks of
        /// clients.
        verdict: Verdict,
    },
    /// The client is ready for (more of) the message body: call
    /// [`Client::send_body`](super::Client::send_body) and finally
    /// [`Client::end_body`](super::Client::end_body) or
    /// [`Client::send_last`](super::Client::send_last).
    SendBody,
    /// The server's verdict on the message: the reply after the body, or
    /// the refusal of DATA or of a BDAT chunk. In LMTP there is one per
    /// accepted recipient. The text usually carries the queue id.
    Message {
        /// The recipient this reply is for (LMTP), or `None` for all.
        recipient: Option<usize>,
        /// The reply.
        reply: Reply<'a>,
        /// Its verdict.
        verdict: Verdict,
    },
    /// The transaction is over; the client is ready for the next one.
    TransactionEnd(TransactionSummary),
    /// The server is shutting down (421, RFC 5321 §3.8): the session is
    /// over. A transaction in progress ends here, with its summary in
    /// `transaction` instead of a [`ClientEvent::TransactionEnd`]. Nothing
    /// more is sent: what the client had queued and
    /// [`Client::poll_transmit`](super::Client::poll_transmit) had not yet
    /// handed out (a command queued while earlier replies were read, body
    /// bytes) is dropped.
    ServiceClosing {
        /// The 421 reply.
        reply: Reply<'a>,
        /// The summary of the transaction the 421 cut short, if one was in
        /// progress: which recipients have the message (in LMTP some may,
        /// from their replies before the 421) and which to retry later
        /// (every recipient not decided by then).
        transaction: Option<TransactionSummary>,
    },
    /// The reply to a NOOP sent by [`Client::noop`](super::Client::noop):
    /// normally 250. The client is idle again, as after
    /// [`ClientEvent::Ready`].
    Noop {
        /// The reply.
        reply: Reply<'a>,
        /// What the reply code says.
        verdict: Verdict,
    },
    /// The server answered QUIT: the session is over.
    Closed {
        /// The reply to QUIT (normally 221).
        reply: Reply<'a>,
    },
}

impl<'a> ClientEvent<'a> {
    /// The reply the event carries, if any.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply<'a>> {
        match self {
            ClientEvent::Greeting { reply }
            | ClientEvent::GreetingRejected { reply }
            | ClientEvent::HelloRejected { reply }
            | ClientEvent::Authenticated { reply }
            | ClientEvent::AuthFailed { reply, .. }
            | ClientEvent::Sender { reply, .. }
            | ClientEvent::Recipient { reply, .. }
            | ClientEvent::Message { reply, .. }
            | ClientEvent::ServiceClosing { reply, .. }
            | ClientEvent::Noop { reply, .. }
            | ClientEvent::Closed { reply } => Some(reply),
            ClientEvent::TlsUnavailable { reply } => reply.as_ref(),
            ClientEvent::StartTls
            | ClientEvent::Ready
            | ClientEvent::AuthChallenge { .. }
            | ClientEvent::SendBody
            | ClientEvent::TransactionEnd(_) => None,
        }
    }
}

impl ClientEvent<'_> {
    /// A copy that owns its reply text, for callers that queue events or
    /// hand them across an `await`.
    ///
    /// ```
    /// use smtp_proto::client::{ClientEvent, OwnedClientEvent, Verdict};
    /// use smtp_proto::reply::Reply;
    ///
    /// let input = b"250 2.0.0 Ok: queued as 4BXq3\r\n".to_vec();
    /// let event = ClientEvent::Message {
    ///     recipient: None,
    ///     reply: Reply::parse(&input).unwrap(),
    ///     verdict: Verdict::Success,
    /// };
    /// let owned = event.into_owned();
    /// drop(input);
    /// let OwnedClientEvent::Message { reply, .. } = owned else { panic!() };
    /// assert_eq!(reply.text(), b"Ok: queued as 4BXq3");
    /// ```
    #[must_use]
    pub fn into_owned(self) -> OwnedClientEvent {
        use OwnedClientEvent as O;
        match self {
            ClientEvent::Greeting { reply } => O::Greeting {
                reply: reply.into_owned(),
            },
            ClientEvent::GreetingRejected { reply } => O::GreetingRejected {
                reply: reply.into_owned(),
            },
            ClientEvent::HelloRejected { reply } => O::HelloRejected {
                reply: reply.into_owned(),
            },
            ClientEvent::StartTls => O::StartTls,
            ClientEvent::TlsUnavailable { reply } => O::TlsUnavailable {
                reply: reply.map(Reply::into_owned),
            },
            ClientEvent::Ready => O::Ready,
            ClientEvent::AuthChallenge {
                mechanism,
                challenge,
                round,
            } => O::AuthChallenge {
                mechanism,
                challenge,
                round,
            },
            ClientEvent::Authenticated { reply } => O::Authenticated {
                reply: reply.into_owned(),
            },
            ClientEvent::AuthFailed { reply, failure } => O::AuthFailed {
                reply: reply.into_owned(),
                failure,
            },
            ClientEvent::Sender { reply, verdict } => O::Sender {
                reply: reply.into_owned(),
                verdict,
            },
            ClientEvent::Recipient {
                index,
                reply,
                verdict,
            } => O::Recipient {
                index,
                reply: reply.into_owned(),
                verdict,
            },
            ClientEvent::SendBody => O::SendBody,
            ClientEvent::Message {
                recipient,
                reply,
                verdict,
            } => O::Message {
                recipient,
                reply: reply.into_owned(),
                verdict,
            },
            ClientEvent::TransactionEnd(s) => O::TransactionEnd(s),
            ClientEvent::ServiceClosing { reply, transaction } => O::ServiceClosing {
                reply: reply.into_owned(),
                transaction,
            },
            ClientEvent::Noop { reply, verdict } => O::Noop {
                reply: reply.into_owned(),
                verdict,
            },
            ClientEvent::Closed { reply } => O::Closed {
                reply: reply.into_owned(),
            },
        }
    }
}

/// [`ClientEvent`] with owned replies; see [`ClientEvent::into_owned`].
/// Each variant means the same as in [`ClientEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedClientEvent {
    /// See [`ClientEvent::Greeting`].
    Greeting {
        /// The reply.
        reply: OwnedReply,
    },
    /// See [`ClientEvent::GreetingRejected`].
    GreetingRejected {
        /// The reply.
        reply: OwnedReply,
    },
    /// See [`ClientEvent::HelloRejected`].
    HelloRejected {
        /// The reply.
        reply: OwnedReply,
    },
    /// See [`ClientEvent::StartTls`].
    StartTls,
    /// See [`ClientEvent::TlsUnavailable`].
    TlsUnavailable {
        /// The reply.
        reply: Option<OwnedReply>,
    },
    /// See [`ClientEvent::Ready`].
    Ready,
    /// See [`ClientEvent::AuthChallenge`].
    AuthChallenge {
        /// The mechanism in use.
        mechanism: CustomMechanism,
        /// The challenge, base64-decoded.
        challenge: Vec<u8>,
        /// Which `334` of the exchange this is, from 1.
        round: usize,
    },
    /// See [`ClientEvent::Authenticated`].
    Authenticated {
        /// The reply.
        reply: OwnedReply,
    },
    /// See [`ClientEvent::AuthFailed`].
    AuthFailed {
        /// The reply.
        reply: OwnedReply,
        /// Why AUTH failed.
        failure: AuthFailure,
    },
    /// See [`ClientEvent::Sender`].
    Sender {
        /// The reply.
        reply: OwnedReply,
        /// The reply's verdict.
        verdict: Verdict,
    },
    /// See [`ClientEvent::Recipient`].
    Recipient {
        /// The recipient's index in the envelope.
        index: usize,
        /// The reply.
        reply: OwnedReply,
        /// The reply's verdict.
        verdict: Verdict,
    },
    /// See [`ClientEvent::SendBody`].
    SendBody,
    /// See [`ClientEvent::Message`].
    Message {
        /// The recipient this reply is for (LMTP), or `None` for all.
        recipient: Option<usize>,
        /// The reply.
        reply: OwnedReply,
        /// The reply's verdict.
        verdict: Verdict,
    },
    /// See [`ClientEvent::TransactionEnd`].
    TransactionEnd(TransactionSummary),
    /// See [`ClientEvent::ServiceClosing`].
    ServiceClosing {
        /// The reply.
        reply: OwnedReply,
        /// The summary of the transaction the 421 cut short, if any.
        transaction: Option<TransactionSummary>,
    },
    /// See [`ClientEvent::Noop`].
    Noop {
        /// The reply.
        reply: OwnedReply,
        /// What the reply code says.
        verdict: Verdict,
    },
    /// See [`ClientEvent::Closed`].
    Closed {
        /// The reply.
        reply: OwnedReply,
    },
}

/// The last AUTH tried on a session, when it did not authenticate the
/// session and no AUTH did since: see [`Client::failed_auth`].
///
/// [`Client::failed_auth`]: super::Client::failed_auth
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedAuth {
    /// The server refused it ([`ClientEvent::AuthFailed`]: wrong
    /// credentials, a mechanism too weak, a cancelled exchange...): its
    /// reply.
    Refused(OwnedReply),
    /// It could not start, and nothing was sent: no mechanism both sides
    /// support, no TLS, or credentials the mechanism cannot carry (the
    /// error [`Client::authenticate`](super::Client::authenticate)
    /// returned).
    Unavailable(UsageError),
}

/// A message the client refuses to send, before sending anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// `BODY=8BITMIME` but the server does not offer 8BITMIME (RFC 6152).
    #[error("the message is 8-bit but the server does not offer 8BITMIME")]
    EightBitMime,
    /// `BODY=BINARYMIME` but the server does not offer BINARYMIME and
    /// CHUNKING, or BDAT is forbidden by the configuration (RFC 3030).
    #[error("the message is binary but BINARYMIME with CHUNKING is not available")]
    BinaryMime,
    /// The message needs SMTPUTF8 but the server does not offer it
    /// (RFC 6531).
    #[error("the message needs SMTPUTF8 but the server does not offer it")]
    SmtpUtf8,
    /// REQUIRETLS was asked for, but the connection is not encrypted or the
    /// server does not offer REQUIRETLS (RFC 8689).
    #[error("REQUIRETLS is not available on this connection")]
    RequireTls,
    /// The declared size is above the server's SIZE limit (RFC 1870).
    #[error("message of {size} octets exceeds the server's limit of {limit}")]
    TooLarge {
        /// The declared size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// More recipients than the server's `LIMITS RCPTMAX` allows in one
    /// transaction (RFC 9422 §4.2): send them in several.
    #[error("{count} recipients exceed the server's limit of {limit} per transaction")]
    TooManyRecipients {
        /// Recipients in the envelope.
        count: usize,
        /// The server's `RCPTMAX`.
        limit: u32,
    },
    /// Recipients in more domains than the server's `LIMITS RCPTDOMAINMAX`
    /// allows in one transaction (RFC 9422 §4.3), domains compared without
    /// regard to case.
    #[error("recipients in {count} domains exceed the server's limit of {limit} per transaction")]
    TooManyDomains {
        /// Distinct recipient domains in the envelope.
        count: usize,
        /// The server's `RCPTDOMAINMAX`.
        limit: u32,
    },
    /// This connection has had as many transactions as the server's
    /// `LIMITS MAILMAX` allows (RFC 9422 §4.1, which counts every MAIL,
    /// accepted or not): quit and open another connection.
    #[error("the server allows {limit} transactions per connection")]
    TransactionLimit {
        /// The server's `MAILMAX`.
        limit: u32,
    },
}

/// A call that does not fit the client's state. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The call needs the session to be ready and idle (after
    /// [`ClientEvent::Ready`] or [`ClientEvent::TransactionEnd`]).
    #[error("the session is not idle")]
    NotIdle,
    /// Body calls need a [`ClientEvent::SendBody`] first.
    #[error("the client is not waiting for the message body")]
    NotInBody,
    /// `tls_established` without a pending [`ClientEvent::StartTls`].
    #[error("no TLS handshake was requested")]
    NoTlsRequested,
    /// `cancel_auth` without an AUTH exchange in progress.
    #[error("no AUTH exchange in progress")]
    NoAuthInProgress,
    /// `auth_response` without a pending [`ClientEvent::AuthChallenge`].
    #[error("no AUTH challenge awaits an answer")]
    NoAuthChallenge,
    /// An envelope without recipients.
    #[error("the envelope has no recipients")]
    NoRecipients,
    /// No mechanism both the server and the credentials support, or a
    /// forced mechanism that does not suit the credentials (password
    /// credentials with an authzid other than the user name and a server,
    /// or a forced mechanism, with LOGIN but not PLAIN; custom credentials
    /// whose mechanism the server does not advertise, too).
    #[error("no usable SASL mechanism")]
    NoMechanism,
    /// AUTH on a plain-text connection while
    /// [`ClientConfig::allow_auth_without_tls`](super::ClientConfig::allow_auth_without_tls)
    /// is off.
    #[error("authentication needs TLS")]
    AuthNeedsTls,
    /// AUTH after a successful AUTH (RFC 4954 §4 forbids it).
    #[error("already authenticated")]
    AlreadyAuthenticated,
    /// A SASL response whose line (base64 text and CRLF) would pass the
    /// 12288 octets RFC 4954 §4 allows: more than 9213 raw octets. Nothing
    /// was sent.
    #[error("the SASL response does not fit on a 12288-octet line")]
    ResponseTooLong,
    /// The credentials cannot be encoded for the mechanism.
    #[error("credentials cannot be encoded: {0}")]
    Credentials(SaslError),
    /// The session is over.
    #[error("the session is closed")]
    Closed,
}

/// Errors of the client machine.
///
/// [`ClientError::Refused`] and [`ClientError::Usage`] change nothing;
/// [`ClientError::Config`] means the session could not start (closed
/// before anything was sent); the others mean the server broke the
/// protocol: the session is closed and the caller should drop the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A reply that is not well-formed.
    #[error("malformed reply: {0}")]
    BadReply(ReplyError),
    /// A reply when none was due (the server spoke while the client sent
    /// the message body, for one, or answered a command
    /// [`Client::poll_transmit`](super::Client::poll_transmit) had not yet
    /// handed out: see
    /// [`Client::handle_input`](super::Client::handle_input)), or a code
    /// that makes no sense here: a
    /// 3yz where a completion reply is due, a 2yz to DATA, anything but a
    /// 2yz (or 421) to the RSET the client sends before a MAIL (RFC 5321
    /// §4.1.1.5), a `354` (any 3yz) to DATA in LMTP when no RCPT was accepted (RFC
    /// 2033 §4.2 requires a 503 there). The whole reply is kept, its text
    /// too, for logs and bounces.
    ///
    /// ```
    /// use smtp_proto::client::ClientError;
    /// use smtp_proto::reply::Reply;
    ///
    /// let reply = Reply::parse(b"554 5.7.1 Rejected as spam\r\n").unwrap();
    /// let e = ClientError::UnexpectedReply(reply.into_owned());
    /// assert_eq!(e.to_string(), "unexpected reply: 554 5.7.1 Rejected as spam");
    /// ```
    #[error("unexpected reply: {}", ReplyLine(.0))]
    UnexpectedReply(OwnedReply),
    /// The server sent bytes after its 220 to STARTTLS, before the TLS
    /// handshake: a response injection (CVE-2011-0411 class).
    #[error("data after the STARTTLS 220 reply, before the TLS handshake")]
    ResponseInjection,
    /// The message was refused locally before anything was sent.
    #[error("message refused: {0}")]
    Refused(Refusal),
    /// The call does not fit the client's state.
    #[error("usage error: {0}")]
    Usage(UsageError),
    /// The [`ClientConfig`](super::ClientConfig) cannot be used (see
    /// [`ClientConfig::check`](super::ClientConfig::check)): the first
    /// [`Client::handle_input`](super::Client::handle_input) returns this
    /// and closes the session, before anything is sent.
    #[error("unusable configuration: {0}")]
    Config(ConfigError),
}

/// The first line of a reply as the server wrote it (code, enhanced code,
/// text), with `(N lines)` for a longer reply, for error messages.
///
/// The text is the server's: octets that are not UTF-8 are replaced, and
/// control characters but the tab (ESC, BEL, DEL, the C1 codes: the reply
/// decoder lets them through) are written as `\u{..}` escapes, so that
/// printing an error cannot drive the terminal it is printed on.
pub(crate) struct ReplyLine<'r>(pub(crate) &'r OwnedReply);

impl std::fmt::Display for ReplyLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let r = self.0;
        write!(f, "{}", r.code())?;
        if let Some(esc) = r.enhanced_code() {
            write!(f, " {esc}")?;
        }
        if !r.text().is_empty() {
            f.write_char(' ')?;
            for c in String::from_utf8_lossy(r.text()).chars() {
                if c.is_control() && c != '\t' {
                    write!(f, "{}", c.escape_unicode())?;
                } else {
                    f.write_char(c)?;
                }
            }
        }
        if r.line_count() > 1 {
            write!(f, " ({} lines)", r.line_count())?;
        }
        Ok(())
    }
}

impl ClientError {
    /// True when the server broke the protocol and the session is closed.
    #[must_use]
    pub fn is_remote(&self) -> bool {
        !matches!(
            self,
            ClientError::Refused(_) | ClientError::Usage(_) | ClientError::Config(_)
        )
    }
}

impl From<UsageError> for ClientError {
    fn from(e: UsageError) -> Self {
        ClientError::Usage(e)
    }
}

impl From<Refusal> for ClientError {
    fn from(e: Refusal) -> Self {
        ClientError::Refused(e)
    }
}
