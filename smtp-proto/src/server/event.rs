//! What the server machine reports, and how it fails.

use crate::command::{
    CommandError, Domain, ForwardPath, MailParameters, RcptParameters, ReversePath, Text,
};
use crate::data::DataError;
use crate::sasl::{Credentials, CustomMechanism, SaslError, SecretBytes};
use crate::session::SequenceError;
use crate::status::ReplyCode;

/// Which greeting command the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HelloKind {
    /// `EHLO` (extended SMTP).
    Ehlo,
    /// `HELO` (no extensions).
    Helo,
    /// `LHLO` (LMTP).
    Lhlo,
}

/// Something that happened in the session.
///
/// Events marked **decision** pause the machine until the application calls
/// [`accept`](super::ServerSession::accept),
/// [`reject`](super::ServerSession::reject) or
/// [`reply`](super::ServerSession::reply) (or, for an LMTP message,
/// [`reply_per_recipient`](super::ServerSession::reply_per_recipient); for
/// AUTH, [`accept_auth`](super::ServerSession::accept_auth), and for a
/// custom mechanism's step,
/// [`auth_challenge`](super::ServerSession::auth_challenge)). The others
/// are information: the machine has already answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent<'a> {
    /// **Decision.** EHLO, HELO or LHLO. Accepting sends the greeting
    /// reply with the capabilities and resets any transaction as RSET
    /// would (RFC 5321 §4.1.4: when the EHLO "is acceptable to the SMTP
    /// server"); refusing leaves the transaction and the earlier greeting
    /// as they were.
    Hello {
        /// The command used.
        kind: HelloKind,
        /// The client's name for itself.
        domain: Domain<'a>,
    },
    /// **Decision.** MAIL FROM. The machine has checked order, syntax,
    /// advertised parameters, SIZE and SMTPUTF8; parameters this crate
    /// does not know are in `params.other` for the application to judge
    /// (RFC 5321 §4.1.1.11 answers `555` to one the server does not
    /// implement), unless
    /// [`ServerConfig::unknown_parameters`](super::ServerConfig::unknown_parameters)
    /// is off and the machine answered `555 5.5.4` itself.
    /// Before a successful AUTH, an `AUTH=` parameter comes as
    /// [`AuthParam::Null`](crate::command::AuthParam::Null) whatever was
    /// sent: RFC 4954 §5 has a server that has not authenticated the
    /// client "behave as if the AUTH=<> parameter was supplied".
    Mail {
        /// The sender.
        from: ReversePath<'a>,
        /// ESMTP parameters.
        params: MailParameters<'a>,
    },
    /// **Decision.** RCPT TO. The machine has checked order, syntax,
    /// advertised parameters (NOTIFY and ORCPT need DSN), SMTPUTF8 and the
    /// recipient limits; parameters this crate does not know are in
    /// `params.other` for the application to judge, as for MAIL.
    Rcpt {
        /// The recipient.
        to: ForwardPath<'a>,
        /// ESMTP parameters.
        params: RcptParameters<'a>,
    },
    /// **Decision.** VRFY. Accepting answers `252 2.5.0` (cannot verify,
    /// will attempt delivery); use `reply` to answer otherwise.
    Vrfy(Text<'a>),
    /// **Decision.** EXPN. Accepting answers `502 5.5.1` (not available);
    /// use `reply` to answer otherwise.
    Expn(Text<'a>),
    /// **Decision.** A SASL exchange finished: judge the credentials.
    /// Accepting answers `235 2.7.0`, and the session is then authenticated
    /// as the PLAIN or LOGIN user name whose password was checked (never a
    /// PLAIN authorization identity, which is only a claim), or as the
    /// identity given to
    /// [`accept_auth`](super::ServerSession::accept_auth): use it to act
    /// as a PLAIN `authzid` the credentials permit (RFC 4616 §2), or as the
    /// user a token names; see
    /// [`auth_identity`](super::ServerSession::auth_identity). To refuse,
    /// `reject` with the reply to send (usually `535 5.7.8`,
    /// authentication credentials invalid, RFC 4954 §6).
    Auth(Credentials),
    /// **Decision.** A step of an exchange of a
    /// [`SaslMechanism::Custom`](crate::sasl::SaslMechanism::Custom)
    /// mechanism, which the application runs. The machine has checked
    /// what it checks for every AUTH (order, TLS requirement, already
    /// authenticated, mechanism advertised, base64, line length, `*`
    /// cancel). Answer with
    /// [`auth_challenge`](super::ServerSession::auth_challenge) (send a
    /// `334` challenge and wait for the next response),
    /// [`accept_auth`](super::ServerSession::accept_auth) (`235 2.7.0`) or
    /// [`reject`](super::ServerSession::reject) (usually `535 5.7.8`).
    AuthExchange {
        /// The mechanism the client chose, as advertised.
        mechanism: CustomMechanism,
        /// The client's data, base64-decoded: the AUTH command's initial
        /// response when `round` is 0 (`None` when it sent none,
        /// `Some(empty)` for `=`, RFC 4954 §4), else the answer to the
        /// last challenge (possibly empty). Its `Debug` shows no byte of
        /// it (it may be a password, a digest or a token): read it with
        /// [`SecretBytes::expose`](crate::sasl::SecretBytes::expose).
        response: Option<SecretBytes>,
        /// How many challenges were sent before this response.
        round: usize,
    },
    /// A message body begins (after the 354 to DATA, or with the first
    /// accepted BDAT chunk).
    MessageStart {
        /// True when the body comes in BDAT chunks.
        chunked: bool,
    },
    /// Bytes of the message body, in order, borrowed from the input (DATA
    /// bodies arrive dot-unstuffed; BDAT chunks as sent). Not reported once
    /// the body is known to be refused (for example over the size limit).
    /// The machine does not check them against the `BODY=` type of the
    /// MAIL command (see [Message bodies](super#message-bodies)).
    MessageChunk(&'a [u8]),
    /// **Decision.** The whole message has arrived. In LMTP mode the reply
    /// is one per accepted recipient.
    MessageEnd {
        /// Octets of the message: for DATA the octets handed out (after
        /// dot-unstuffing and, under
        /// [`BareEndingPolicy::Normalize`](crate::data::BareEndingPolicy::Normalize),
        /// with each bare CR or LF written as CRLF); for BDAT the sum of
        /// the chunk sizes.
        size: u64,
        /// Recipients accepted for this message.
        recipients: usize,
    },
    /// The client sent STARTTLS and the machine answered 220: send what
    /// `poll_transmit` gives, run the TLS handshake, then call
    /// [`tls_established`](super::ServerSession::tls_established).
    ///
    /// The adapters do this themselves and then hand the event on to the
    /// application, once the handshake has succeeded: the session has
    /// forgotten everything from before TLS, and the application should
    /// do the same with what it learned then (RFC 3207 §4.2).
    StartTls,
    /// RSET: the transaction was dropped (a partial message too).
    Reset,
    /// NOOP was answered.
    Noop,
    /// HELP was answered.
    Help(Option<Text<'a>>),
    /// QUIT was answered with 221; the session is closed.
    Quit,
    /// The machine refused a command or a message by itself.
    ///
    /// A refused message (DATA body read to its end) or a refused BDAT
    /// command (any reason) ends the mail transaction: the message, and
    /// any chunks of it already handed out, are void, and
    /// [`phase`](super::ServerSession::phase) is no longer inside a
    /// transaction (RFC 3030 §2 for BDAT).
    Rejected {
        /// The reply code sent. An LMTP BDAT LAST that meets no accepted
        /// recipient is refused without a reply (RFC 2033 §4.3 gives it
        /// "zero replies"): this is then the code it would have had.
        code: ReplyCode,
        /// Why.
        reason: Rejection,
    },
}

/// Why the machine refused something without asking the application.
///
/// It comes in [`ServerEvent::Rejected`], after the reply was queued; the
/// session goes on unless the reply was a `421`.
///
/// ```
/// use smtp_proto::server::{Rejection, ServerConfig, ServerEvent, ServerSession};
/// use smtp_proto::session::{Outcome, SequenceError};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
/// server.greet()?;
/// let step = server.handle_input(b"XYZZY magic\r\n")?;
/// let Some(ServerEvent::Rejected { code, reason }) = step.into_event() else {
///     panic!("refused by the machine");
/// };
/// assert_eq!((code.get(), reason), (500, Rejection::UnknownCommand("XYZZY".into())));
///
/// let step = server.handle_input(b"MAIL FROM:<a@example.org>\r\n")?;
/// let Some(ServerEvent::Rejected { code, reason }) = step.into_event() else {
///     panic!("refused by the machine");
/// };
/// let reason_wanted = Rejection::Sequence(SequenceError::NeedHello);
/// assert_eq!((code.get(), reason), (503, reason_wanted));
///
/// let mut wire = Vec::new();
/// server.poll_transmit(&mut wire);
/// let wire = String::from_utf8(wire)?;
/// assert!(wire.contains("\r\n500 5.5.2 "));
/// assert!(wire.ends_with("\r\n503 5.5.1 send EHLO/HELO first\r\n"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The command line did not parse (500, 501 or 553; for a HELO, EHLO
    /// or LHLO line, without an enhanced code, RFC 2034 §3).
    Syntax(CommandError),
    /// The command came out of order (503; 554 for DATA or BDAT without
    /// recipients in SMTP, 503 in LMTP, where a BDAT LAST that has no
    /// accepted recipient to answer for gets no reply, RFC 2033 §4.3).
    Sequence(SequenceError),
    /// An unknown verb (500 5.5.2, RFC 3463 §3.6: X.5.2 covers a command
    /// that "is unrecognized"), kept for logging; LHLO in SMTP is one,
    /// whatever its argument. The arguments are never kept, and a verb
    /// that does not look like one is kept as [`Rejection::REDACTED`]: a
    /// client that pipelines its SASL responses after an AUTH the server
    /// refused, or after the exchange ended, has its base64 credentials
    /// read as command lines (see
    /// [`Command::verb_is_loggable`](crate::command::Command::verb_is_loggable)
    /// for the rule).
    UnknownCommand(String),
    /// A command the configuration does not offer, or one of the SMTP
    /// specifications this crate knows but does not implement (`TURN`,
    /// `SEND`, `SOML`, `SAML`, `ATRN`, `ETRN`; RFC 5321 §4.2.4): 502 5.5.1.
    NotImplemented(&'static str),
    /// A parameter of an extension that was not advertised (555 5.5.4).
    ParameterNotAdvertised(&'static str),
    /// A MAIL or RCPT parameter this crate does not know, with
    /// [`ServerConfig::unknown_parameters`](super::ServerConfig::unknown_parameters)
    /// off (555 5.5.4, RFC 5321 §4.1.1.11): its keyword as sent, kept for
    /// logging (the reply does not repeat it).
    UnknownParameter(String),
    /// A UTF-8 address without SMTPUTF8 (553 5.6.7, RFC 6531 §3.5).
    Utf8AddressWithoutSmtputf8,
    /// Over the recipient limit (452 4.5.3).
    TooManyRecipients,
    /// A MAIL past
    /// [`ServerConfig::max_transactions`](super::ServerConfig::max_transactions)
    /// on this connection (421 4.7.0; the session is closed).
    TooManyTransactions,
    /// A RCPT in one domain more than
    /// [`ServerConfig::max_recipient_domains`](super::ServerConfig::max_recipient_domains)
    /// allows in a message (452 4.5.3).
    TooManyDomains,
    /// MAIL declared a SIZE over the limit, or BDAT chunks went over it
    /// (552 5.3.4).
    MessageTooLarge,
    /// The body was read to its end and refused (552 or 554).
    Data(DataError),
    /// DATA for a BINARYMIME message (503 5.5.1, RFC 3030 §3).
    BinaryMimeNeedsBdat,
    /// EHLO or HELO in LMTP mode, whatever its argument (500, RFC 2033
    /// §4.1; like every reply to HELO or EHLO, without an enhanced code,
    /// RFC 2034 §3).
    WrongHello,
    /// STARTTLS while TLS is already up (503 5.5.1).
    TlsAlreadyActive,
    /// STARTTLS while the application declines it for now (454 4.7.0, RFC
    /// 3207 §4; see
    /// [`ServerSession::set_starttls_available`](super::ServerSession::set_starttls_available)).
    /// The session goes on in plaintext.
    TlsNotAvailable,
    /// AUTH after a successful AUTH (503 5.5.1, RFC 4954 §4).
    AlreadyAuthenticated,
    /// AUTH with a mechanism that was not advertised (504 5.5.4).
    UnsupportedMechanism,
    /// AUTH before TLS when the configuration requires it (538 5.7.11).
    AuthNeedsTls,
    /// MAIL, VRFY or EXPN before a successful AUTH when
    /// [`ServerConfig::auth_required`](super::ServerConfig::auth_required)
    /// is set (530 5.7.0, RFC 4954 §6).
    AuthRequired,
    /// The client answered `*` to a challenge (501 5.0.0).
    AuthCancelled,
    /// A SASL response line after a `334` was not valid base64 (501
    /// 5.5.2). An AUTH command's initial response that is not base64 is
    /// refused with the command instead, as [`Rejection::Syntax`] of
    /// [`CommandError::InvalidInitialResponse`](crate::command::CommandError::InvalidInitialResponse)
    /// (where no AUTH may come, it is refused as a well-formed AUTH is,
    /// with `503` or `502`).
    AuthBadBase64,
    /// A SASL response did not follow its mechanism (501 5.5.2).
    AuthMalformed(SaslError),
    /// An AUTH command line or a SASL response line was over
    /// [`ServerConfig::max_auth_line_length`](super::ServerConfig::max_auth_line_length)
    /// (500 5.5.6, RFC 4954 §6).
    AuthLineTooLong,
    /// The application refused the connection: everything but QUIT gets
    /// 503 (RFC 5321 §3.1), a BDAT command once its chunk was read and
    /// dropped; a HELO, EHLO or LHLO gets it without an enhanced code (RFC
    /// 2034 §3).
    SessionRefused,
}

impl Rejection {
    /// What [`Rejection::UnknownCommand`] holds in place of a verb that
    /// may be a credential; no verb is spelt so.
    pub const REDACTED: &'static str = "<redacted>";
}

/// How the server machine fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The application called a method that does not fit the state; nothing
    /// changed.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The peer broke the protocol beyond recovery. The machine has queued
    /// its last reply, if it has one (none for plaintext after the `220`
    /// to STARTTLS, see [`RemoteError::StartTlsInjection`]), and is
    /// closed: send what `poll_transmit` gives, then close the connection.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// A method was called in a state that does not allow it.
///
/// Nothing changes when one is returned: the session waits for the call
/// that fits.
///
/// ```
/// use smtp_proto::server::{Error, ServerConfig, ServerSession, UsageError};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
/// let early = server.handle_input(b"EHLO client.example\r\n");
/// assert_eq!(early, Err(Error::Usage(UsageError::GreetingPending)));
/// server.greet()?;
/// assert_eq!(server.accept(), Err(UsageError::NoDecisionPending));
/// assert_eq!(server.auth_challenge(b""), Err(UsageError::NoDecisionPending));
///
/// let _ = server.handle_input(b"EHLO client.example\r\n")?; // the EHLO waits
/// let more = server.handle_input(b"NOOP\r\n");
/// assert_eq!(more, Err(Error::Usage(UsageError::DecisionPending)));
/// assert_eq!(server.shut_down(), Err(UsageError::DecisionPending));
/// assert_eq!(server.auth_challenge(b""), Err(UsageError::NoAuthExchange));
/// server.accept()?; // still the EHLO's decision
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// `handle_input` or `shut_down` was called while a decision is
    /// pending.
    #[error("a decision is pending")]
    DecisionPending,
    /// A decision method was called with no decision pending.
    #[error("no decision is pending")]
    NoDecisionPending,
    /// The greeting was not sent yet (call `greet` or `refuse`).
    #[error("the greeting has not been sent")]
    GreetingPending,
    /// The greeting was already sent.
    #[error("the greeting was already sent")]
    AlreadyGreeted,
    /// `reject`, `refuse` or `reject_auth_with_challenge` was given a
    /// positive (2xx or 3xx) reply.
    #[error("a rejection needs a 4xx or 5xx reply")]
    NotARejection,
    /// `reply_per_recipient` outside an LMTP message end, or with the wrong
    /// number of replies.
    #[error("one reply per accepted recipient is needed (LMTP message end only)")]
    RecipientReplies,
    /// A reply code that makes no sense for this decision (for example 3xx).
    #[error("reply code not allowed for this decision")]
    BadReplyCode,
    /// `reject_auth_with_challenge` for a mechanism other than
    /// OAUTHBEARER or XOAUTH2.
    #[error("an error challenge needs OAUTHBEARER or XOAUTH2")]
    NotOAuth,
    /// A challenge whose `334` line would be too long:
    /// `reject_auth_with_challenge` with an error document, or
    /// `auth_challenge` with a challenge, over 378 octets (the line must
    /// fit in a reply line's 512 octets, RFC 5321 §4.5.3.1.5). Nothing was
    /// sent.
    #[error("the challenge would not fit on one 334 line")]
    ChallengeTooLong,
    /// `auth_challenge` or `accept_auth` while a decision other than AUTH
    /// is pending (`auth_challenge` needs a custom mechanism's
    /// [`ServerEvent::AuthExchange`]). With no decision pending at all
    /// they fail with [`UsageError::NoDecisionPending`] instead (or
    /// [`UsageError::GreetingPending`] before the greeting).
    #[error("no SASL exchange of an application mechanism is pending")]
    NoAuthExchange,
    /// `tls_established` without a STARTTLS in progress.
    #[error("no STARTTLS in progress")]
    NotAwaitingTls,
}

/// The peer broke the protocol and the session was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// Bytes followed the STARTTLS command before the TLS handshake
    /// (CVE-2011-0411 command injection). When they came in the same
    /// input as the STARTTLS line, the session answers `554 5.5.1`
    /// instead of `220`; after the `220` it sends nothing more.
    ///
    /// ```
    /// use smtp_proto::server::{Error, RemoteError, ServerConfig, ServerSession};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.starttls = true;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// let _ = server.handle_input(b"EHLO client.example\r\n")?;
    /// server.accept()?;
    /// let injected = server.handle_input(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n");
    /// assert_eq!(injected, Err(Error::Remote(RemoteError::StartTlsInjection)));
    /// assert!(server.is_closed());
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// let wire = String::from_utf8(wire)?;
    /// assert!(wire.starts_with("220 mx.example.com ESMTP\r\n"));
    /// assert!(!wire.contains("Ready to start TLS")); // no 220 to STARTTLS
    /// assert!(wire.ends_with("\r\n554 5.5.1 Data pipelined after STARTTLS, closing\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    #[error("data pipelined after STARTTLS")]
    StartTlsInjection,
    /// The error limit was reached (421 4.7.0).
    #[error("too many errors")]
    TooManyErrors,
    /// A BDAT command whose chunk size could not be read (501 5.5.4): where
    /// its chunk ends, and so where the next command starts, is unknown.
    /// Also a line that only a peer splitting commands at any blank takes
    /// for a BDAT command (`BDAT` then a tab, or blanks before it): whether
    /// a chunk follows it at all is unknown.
    #[error("BDAT chunk size unreadable")]
    UnreadableChunkSize,
    /// A BDAT command line holding a bare CR or LF (500 5.5.2): peers
    /// disagree on where such a line ends, so where its chunk starts, and
    /// where the next command starts, is unknown.
    #[error("bare CR or LF in a BDAT command line")]
    BdatBareLineEnding,
    /// A BDAT command line over the line limit (500 5.5.2): its end, so
    /// where its chunk starts, is only found by throwing the rest of the
    /// line away, and a client that sends one is not framing BDAT as its
    /// peer does.
    #[error("BDAT command line too long")]
    BdatLineTooLong,
}
