//! The SMTP (and LMTP) server session machine.
//!
//! The machine takes the bytes the client sent and gives back
//! [`ServerEvent`]s and the bytes to send. It never touches a socket, a
//! clock or a TLS library: the caller owns the read buffer, drops the bytes
//! each [`Step`] says were consumed, and writes what
//! [`ServerSession::poll_transmit`] hands out.
//!
//! The application decides what policy decides (accept or reject MAIL, each
//! RCPT, VRFY/EXPN, AUTH credentials, the message); the machine sequences
//! the session and answers syntax errors (500/501), unknown commands
//! (500), commands it knows but does not implement (502: `TURN`, `SEND`,
//! `SOML`, `SAML`, `ATRN`, `ETRN`, and extensions it does not offer),
//! commands out of order (503), parameters of extensions it did
//! not advertise (555; parameters it does not know reach the application,
//! or get 555 too with [`ServerConfig::unknown_parameters`] off) and
//! UTF-8 addresses without SMTPUTF8 (553) by itself, telling the
//! application with [`ServerEvent::Rejected`].
//!
//! # A complete run loop
//!
//! ```
//! use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession};
//! use smtp_proto::session::Outcome;
//! use smtp_proto::status::{EnhancedStatusCode, ReplyCode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
//! server.greet()?;
//!
//! // What a pipelining client sends, arriving in 7-byte reads.
//! let client: &[u8] = b"EHLO client.example\r\n\
//!     MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n\
//!     RCPT TO:<nobody@example.com>\r\nDATA\r\n\
//!     Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
//! let mut reads = client.chunks(7);
//!
//! let mut buf: Vec<u8> = Vec::new(); // the caller owns the read buffer
//! let mut wire = Vec::new(); // what we would write to the socket
//! let mut message = Vec::new();
//! loop {
//!     let step = server.handle_input(&buf)?;
//!     let consumed = step.consumed;
//!     match step.outcome {
//!         Outcome::Event(event) => match event {
//!             ServerEvent::Rcpt { to, .. } if to.to_string().starts_with("<nobody") => {
//!                 let no = Some(EnhancedStatusCode::BAD_MAILBOX);
//!                 let code = ReplyCode::MAILBOX_UNAVAILABLE;
//!                 server.reject(OwnedReply::with_enhanced(code, no, "No such user")?)?;
//!             }
//!             ServerEvent::MessageChunk(bytes) => message.extend_from_slice(bytes),
//!             ServerEvent::Hello { .. }
//!             | ServerEvent::Mail { .. }
//!             | ServerEvent::Rcpt { .. }
//!             | ServerEvent::MessageEnd { .. } => server.accept()?,
//!             _ => {} // information only
//!         },
//!         Outcome::NeedInput => {
//!             // Everything buffered is processed: send the replies together
//!             // (RFC 2920), then read.
//!             server.poll_transmit(&mut wire);
//!             match reads.next() {
//!                 Some(bytes) => buf.extend_from_slice(bytes),
//!                 None => break,
//!             }
//!         }
//!         Outcome::Transmit => {
//!             server.poll_transmit(&mut wire);
//!         }
//!         Outcome::Closed => {
//!             server.poll_transmit(&mut wire);
//!             break;
//!         }
//!         _ => unreachable!("no STARTTLS in this example"),
//!     }
//!     buf.drain(..consumed);
//! }
//! assert_eq!(message, b"Subject: hi\r\n\r\n.leading dot\r\n");
//! let wire = String::from_utf8(wire)?;
//! assert!(wire.starts_with("220 mx.example.com ESMTP\r\n250-mx.example.com\r\n"));
//! assert!(wire.contains("250 2.1.5 OK\r\n550 5.1.1 No such user\r\n354 "));
//! assert!(wire.ends_with("250 2.0.0 OK: message accepted\r\n221 2.0.0 Bye\r\n"));
//! assert!(server.is_closed());
//! # Ok(())
//! # }
//! ```
//!
//! # STARTTLS
//!
//! After [`ServerEvent::StartTls`] the caller sends the pending 220, runs
//! the handshake and calls [`ServerSession::tls_established`]; the session
//! then starts over at EHLO. Bytes that follow the STARTTLS line in the same
//! buffer, or that are passed in before `tls_established`, close the
//! session with [`RemoteError::StartTlsInjection`]: in the same buffer no
//! `220` is queued but a `554 5.5.1`; after the `220`, nothing
//! more is queued, since the bytes after the `220` belong to the TLS
//! handshake (RFC 3207 §4).
//!
//! When TLS cannot be offered for a while (the certificate failed to
//! load, handshakes are shed under load), the application declines
//! STARTTLS with [`ServerSession::set_starttls_available`]: EHLO stops
//! listing it, and a STARTTLS gets `454 4.7.0` (RFC 3207 §4) while the
//! session goes on in plaintext.
//!
//! # Message bodies
//!
//! A DATA body is read to its `CRLF.CRLF` and nowhere else (so none of the
//! SMTP smuggling sequences ends it early; see [`crate::data`]),
//! dot-unstuffed, and checked as it streams against
//! [`ServerConfig::max_message_size`] (after unstuffing),
//! [`ServerConfig::bare_endings`] and
//! [`ServerConfig::max_data_line_length`]. A body that fails a check is
//! still read to its end and only then refused, `552 5.3.4` for its size
//! (RFC 1870 §6.3) or `554 5.6.0` ([`Rejection::Data`]), so the session
//! stays in step. BDAT chunks are binary and handed out as sent: only the
//! size is checked, when a BDAT command would take the message over the
//! limit, and that refusal too is sent once its chunk has been read.
//!
//! The limit is the one checked, not the `SIZE=` a MAIL command declared
//! (refused at once with `552 5.3.4` when over the limit): a message larger
//! than its declared size but within the limit is accepted, as RFC 1870
//! §6.3 allows ("A server may also choose to accept a message which is
//! somewhat larger than the declared message size"). An application that
//! holds the client to its declaration compares `params.size` of
//! [`ServerEvent::Mail`] with `size` of [`ServerEvent::MessageEnd`].
//!
//! Neither path looks at the octets for the body type declared with
//! `BODY=` on MAIL: octets above 127 in a body sent as `7BIT` (or without
//! `BODY=`), a NUL, or long lines and bare CR or LF in BDAT chunks of a
//! `7BIT` or `8BITMIME` body all pass. RFC 6152 and RFC 3030 put that
//! conformance on the client, and RFC 3030 §3 has a message with binary
//! content but no `BODY=BINARYMIME` accepted (then returned with a
//! delivery status notification). An application that wants to refuse
//! such a message reads `params.body` in [`ServerEvent::Mail`], checks the
//! [`ServerEvent::MessageChunk`]s and refuses at [`ServerEvent::MessageEnd`].
//!
//! # BDAT
//!
//! The chunk of a BDAT command is always read, also when the command is
//! refused (no transaction, no valid recipients, too large, or a wrong end
//! marker such as `BDAT 100 NOW`), so its bytes are never taken for
//! commands; the refusal is sent once the chunk is in. A refused chunk
//! ends the mail transaction (RFC 3030 §2: the client "should consider the
//! transaction failed", and the server "MUST reply with a failure code to
//! any BDAT commands that the sender-SMTP pipelines"): the
//! [`ServerEvent::Rejected`] that reports it tells the application to drop
//! the message and the chunks it received of it, and the chunks pipelined
//! after it get 503, their bytes read and dropped too. This holds for a
//! BDAT command line refused before its verb is read (a NUL octet or
//! invalid UTF-8 in it): its chunk is read and dropped all the same. In a
//! session refused at the greeting ([`ServerSession::refuse`]) the chunk
//! of a BDAT command is read and dropped too, before its 503.
//!
//! In LMTP a BDAT LAST that follows a failed MAIL, or a MAIL whose
//! recipients all failed, gets no reply at all: RFC 2033 §4.3 gives it
//! "zero replies", one per successful RCPT, and the client waits for none.
//! Its chunk is read and dropped, and [`ServerEvent::Rejected`] still
//! reports it.
//!
//! A BDAT command whose chunk size cannot be read leaves where the next
//! command starts unknown: the session answers 501 and closes with
//! [`RemoteError::UnreadableChunkSize`]. So does a line that a peer which
//! splits commands at any blank (Postfix does) reads as a BDAT command
//! while this session refuses its verb: a tab, vertical tab or form feed
//! after `BDAT`, or blanks before it. Such a peer reads a chunk after the
//! line, a strict one reads commands there. So does one whose line holds a
//! bare CR or LF, since peers disagree on where such a line (and so its
//! chunk) starts: 500 and [`RemoteError::BdatBareLineEnding`]. And so
//! does a BDAT command line over the line limit: 500 and
//! [`RemoteError::BdatLineTooLong`]. (Spaces and tabs at the end of any
//! other command line are dropped before it is parsed, as RFC 5321 §4.1.1
//! has receivers "tolerate trailing white space": `DATA`, a tab and CRLF
//! is `DATA`. A BDAT line keeps its end, and a trailing tab after its
//! size closes the session as above.)

mod config;
mod event;
mod response;

pub use crate::reply::OwnedReply;
pub use crate::session::{Outcome, Step, Timeouts};
pub use config::ServerConfig;
pub use event::{Error, HelloKind, Rejection, RemoteError, ServerEvent, UsageError};

use core::time::Duration;

use base64::Engine as _;

use crate::command::{loggable_verb, read_chunk_size};
use crate::command::{
    AuthParam, BodyType, Command, CommandDecoder, CommandError, DecoderConfig, ForwardPath,
    MailFrom, MailParameters, RcptParameters, RcptTo,
};
use crate::data::{ChunkReader, DataDecoder, DataLimits, DataOutput};
use crate::framer::{Frame, Line, LineFramer};
use crate::reply::{AuthMechanism, Capability, EhloReplyBuilder, Limits};
use crate::sasl::{Credentials, CustomMechanism, SaslMechanism, SaslServer, SaslStep, SecretBytes};
use crate::session::{CommandKind, Phase, SequenceError};
use crate::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use crate::trace::WithProtocol;
use response::{rc, write_reply};

/// The 503 text of a session refused at the greeting.
const REFUSED_SESSION_TEXT: &str = "No SMTP service here, send QUIT";

/// Pending output above which [`Outcome::Transmit`] asks the caller to send.
const TRANSMIT_HIGH_WATER: usize = 16 * 1024;

const fn esc(class: u8, subject: u16, detail: u16) -> EnhancedStatusCode {
    let class = match class {
        2 => StatusClass::Success,
        4 => StatusClass::PersistentTransientFailure,
        _ => StatusClass::PermanentFailure,
    };
    EnhancedStatusCode::known(class, subject, detail)
}

/// The decision the machine waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Accept the EHLO/HELO/LHLO.
    Hello,
    /// Accept the sender.
    Mail,
    /// Accept the recipient.
    Rcpt,
    /// Answer VRFY.
    Vrfy,
    /// Answer EXPN.
    Expn,
    /// Accept the credentials.
    Auth,
    /// Answer a step of a custom SASL mechanism's exchange: challenge,
    /// accept or reject ([`ServerEvent::AuthExchange`]).
    AuthExchange,
    /// Accept the message.
    Message,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Hello(HelloKind),
    Mail {
        body: Option<BodyType>,
        smtputf8: bool,
    },
    Rcpt,
    Vrfy,
    Expn,
    Auth(SaslMechanism),
    /// A custom mechanism's step; `round` challenges were sent so far.
    AuthExchange {
        mechanism: CustomMechanism,
        round: usize,
    },
    Message,
}

#[derive(Debug, Clone, Copy)]
struct Refusal {
    code: ReplyCode,
    enhanced: EnhancedStatusCode,
    text: &'static str,
    reason: RefusalReason,
}

#[derive(Debug, Clone, Copy)]
enum RefusalReason {
    Sequence(SequenceError),
    TooLarge,
    NotImplemented,
    /// The BDAT command line did not parse (a wrong end marker, or a NUL
    /// or non-UTF-8 octet in the line); its chunk size was readable, so
    /// the chunk is read and dropped.
    Syntax(CommandError),
    /// A BDAT command in a session refused at the greeting: its chunk is
    /// read and dropped, then the usual 503 is sent and the session stays
    /// refused.
    SessionRefused,
}

#[derive(Debug, Clone)]
enum State {
    AwaitGreeting,
    Refused,
    Command,
    Decision(Pending),
    Data {
        decoder: DataDecoder,
        refused: bool,
    },
    Bdat {
        reader: ChunkReader,
        size: u64,
        last: bool,
        refusal: Option<Refusal>,
        /// How many times a refusal is sent: once per accepted recipient
        /// when LMTP refuses the last chunk for its size (RFC 2033 §4.2),
        /// never when LMTP refuses a last chunk that has no recipient to
        /// answer for (RFC 2033 §4.3), else once.
        replies: usize,
    },
    /// A `334` challenge was sent; the client's response is read.
    Sasl {
        run: SaslRun,
        framer: LineFramer,
    },
    /// An OAuth error challenge was sent; the client's answer to it is
    /// read and then `reply` is sent (RFC 7628 §3.2.2).
    SaslFailing {
        framer: LineFramer,
        reply: OwnedReply,
    },
    AwaitTls,
    Closed,
}

/// What [`ServerSession::auth_challenge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Challenge {
    /// The `334` challenge was sent; the client's response comes in the
    /// next [`ServerEvent::AuthExchange`].
    Sent,
    /// [`ServerConfig::max_auth_rounds`] challenges had been sent already:
    /// the machine ended the exchange with `535 5.7.8` instead, and no
    /// further [`ServerEvent::AuthExchange`] comes for it. The failure
    /// counts toward [`ServerConfig::max_auth_failures`]: at the limit the
    /// session has sent `421 4.7.0` too and is closed.
    TooManyRounds,
}

/// Whether a `334` line carrying `challenge` in base64 fits in a reply
/// line: `334 `, the base64 text and CRLF within 512 octets (RFC 5321
/// §4.5.3.1.5), so at most 378 octets of challenge.
fn challenge_fits(challenge: &[u8]) -> bool {
    4 + challenge.len().div_ceil(3) * 4 + 2 <= 512
}

/// Who runs the SASL exchange in progress.
#[derive(Debug, Clone)]
enum SaslRun {
    /// A built-in mechanism, decoded by the machine.
    BuiltIn(SaslServer),
    /// A custom mechanism: each response goes to the application, which
    /// has sent `round` challenges so far.
    App {
        mechanism: CustomMechanism,
        round: usize,
    },
}

/// Per-transaction facts.
#[derive(Debug, Clone, Default)]
struct Transaction {
    recipients: usize,
    /// The domains of the accepted recipients, ASCII lower case, kept only
    /// with `max_recipient_domains` (at most `max_recipients` of them).
    domains: Vec<String>,
    /// The domain of the RCPT waiting for its decision, with
    /// `max_recipient_domains`.
    pending_domain: Option<String>,
    body: Option<BodyType>,
    smtputf8: bool,
    size: u64,
    chunked: bool,
}

/// One server-side SMTP/LMTP session.
#[derive(Debug, Clone)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    phase: Phase,
    decoder: CommandDecoder,
    out: Vec<u8>,
    hello: Option<HelloKind>,
    tls: bool,
    /// Whether a STARTTLS would be answered with 220 now (see
    /// [`ServerSession::set_starttls_available`]).
    starttls_available: bool,
    authenticated: bool,
    identity: Option<String>,
    /// While an AUTH decision is pending: the identity the session takes
    /// if it is accepted (the PLAIN or LOGIN user whose password is being
    /// checked, or what was given to [`ServerSession::accept_auth`]).
    claimed_identity: Option<String>,
    errors: usize,
    auth_failures: usize,
    /// MAIL commands on this connection, for `max_transactions`.
    transactions: usize,
    txn: Transaction,
    /// The last refused BDAT chunk ended a transaction with an accepted
    /// recipient, and the client has not started over since (MAIL, RSET,
    /// a new greeting, TLS) nor sent its BDAT LAST: in LMTP that BDAT LAST
    /// gets its one refusal (see [`Self::bdat_last_replies`]).
    declined_with_recipients: bool,
}

/// The configuration cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The host name is not a valid domain or address literal, or it is
    /// not ASCII: the greeting and the EHLO reply name the server before
    /// SMTPUTF8 can be in use, so an internationalized name goes in
    /// A-labels (`xn--...`, RFC 6531 §3.7.1).
    #[error("invalid server host name")]
    Hostname,
    /// A limit is zero or too small to work.
    #[error("invalid limit: {0}")]
    Limit(&'static str),
    /// An extension is offered without one it requires, or AUTH could
    /// never be offered: required with no mechanism, or mechanisms with
    /// [`ServerConfig::auth_requires_tls`] and no way to TLS.
    #[error("invalid extensions: {0}")]
    Extension(&'static str),
}

type Handled<'a> = Result<Step<ServerEvent<'a>>, Error>;

impl ServerSession {
    /// A session waiting for [`greet`](Self::greet) or
    /// [`refuse`](Self::refuse).
    ///
    /// Fails with a [`ConfigError`] when the configuration cannot work: a
    /// host name that is not an ASCII domain or address literal, a limit
    /// that is zero or too small (`max_line_length` below 512), or
    /// extensions that need one another (SMTPUTF8 without 8BITMIME,
    /// BINARYMIME without CHUNKING, AUTH that could never be offered).
    ///
    /// ```
    /// use smtp_proto::server::{ConfigError, ServerConfig, ServerSession};
    ///
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com")).unwrap();
    /// server.greet().unwrap();
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert_eq!(wire, b"220 mx.example.com ESMTP\r\n");
    ///
    /// let err = ServerSession::new(ServerConfig::new("mx example com")).unwrap_err();
    /// assert_eq!(err, ConfigError::Hostname);
    ///
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.smtputf8 = true;
    /// config.eight_bit_mime = false;
    /// let err = ServerSession::new(config).unwrap_err();
    /// assert_eq!(err, ConfigError::Extension("smtputf8 needs eight_bit_mime"));
    /// ```
    pub fn new(config: ServerConfig) -> Result<Self, ConfigError> {
        crate::command::Domain::new(config.hostname.as_str()).map_err(|_| ConfigError::Hostname)?;
        if !config.hostname.is_ascii() {
            return Err(ConfigError::Hostname);
        }
        if config.max_line_length < 512 {
            return Err(ConfigError::Limit("max_line_length below 512"));
        }
        if config.max_auth_line_length < config.max_line_length {
            return Err(ConfigError::Limit(
                "max_auth_line_length below max_line_length",
            ));
        }
        if config.max_recipients == 0 {
            return Err(ConfigError::Limit("max_recipients is 0"));
        }
        if config.max_auth_failures == 0 {
            return Err(ConfigError::Limit("max_auth_failures is 0"));
        }
        if config.max_transactions == Some(0) {
            return Err(ConfigError::Limit("max_transactions is 0"));
        }
        if config.max_recipient_domains == Some(0) {
            return Err(ConfigError::Limit("max_recipient_domains is 0"));
        }
        if config.auth_required && config.auth_mechanisms.is_empty() {
            // No client could ever send mail.
            return Err(ConfigError::Extension(
                "auth_required needs auth_mechanisms",
            ));
        }
        if !config.auth_mechanisms.is_empty()
            && config.auth_requires_tls
            && !config.starttls
            && !config.implicit_tls
        {
            // AUTH is offered only over TLS, and TLS never comes up: the
            // mechanisms could never be used (and with `auth_required` no
            // client could ever send mail).
            return Err(ConfigError::Extension(
                "auth_mechanisms with auth_requires_tls needs starttls or implicit_tls",
            ));
        }
        if config.smtputf8 && !config.eight_bit_mime {
            // RFC 6531 §3.1: "Servers offering this extension MUST provide
            // support for, and announce, the 8BITMIME extension".
            return Err(ConfigError::Extension("smtputf8 needs eight_bit_mime"));
        }
        if config.binarymime && !config.chunking {
            // RFC 3030 §3: "The BINARYMIME service extension can only be
            // used with the "CHUNKING" service extension."
            return Err(ConfigError::Extension("binarymime needs chunking"));
        }
        if config.max_message_size == Some(0) {
            // `SIZE 0` tells clients there is no fixed limit (RFC 1870 §4).
            return Err(ConfigError::Limit(
                "max_message_size is 0, which SIZE advertises as no limit",
            ));
        }
        let dc = DecoderConfig {
            max_line_length: config.max_line_length,
            max_auth_line_length: config.max_auth_line_length,
            ..DecoderConfig::default()
        };
        let config_tls = config.implicit_tls;
        Ok(Self {
            decoder: CommandDecoder::new(dc),
            config,
            state: State::AwaitGreeting,
            phase: Phase::Greeting,
            out: Vec::new(),
            hello: None,
            tls: config_tls,
            starttls_available: true,
            authenticated: false,
            identity: None,
            claimed_identity: None,
            errors: 0,
            auth_failures: 0,
            transactions: 0,
            txn: Transaction::default(),
            declined_with_recipients: false,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Where the transaction stands. When the connection ends while this
    /// is [`Phase::Data`] or [`Phase::Bdat`], the client was not told the
    /// message was accepted: either it was not complete, or it was and the
    /// decision on it ([`Decision::Message`]) was still pending. Either
    /// way the application drops what it received of it (the client sends
    /// it again; RFC 5321 §6.1 forbids losing it, not keeping it twice).
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The decision the machine waits for, if any.
    ///
    /// ```
    /// use smtp_proto::server::{Decision, ServerConfig, ServerSession};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
    /// server.greet()?;
    /// assert_eq!(server.pending_decision(), None);
    /// let _ = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert_eq!(server.pending_decision(), Some(Decision::Hello));
    /// server.accept()?;
    /// assert_eq!(server.pending_decision(), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pending_decision(&self) -> Option<Decision> {
        match self.state {
            State::Decision(p) => Some(match p {
                Pending::Hello(_) => Decision::Hello,
                Pending::Mail { .. } => Decision::Mail,
                Pending::Rcpt => Decision::Rcpt,
                Pending::Vrfy => Decision::Vrfy,
                Pending::Expn => Decision::Expn,
                Pending::Auth(_) => Decision::Auth,
                Pending::AuthExchange { .. } => Decision::AuthExchange,
                Pending::Message => Decision::Message,
            }),
            _ => None,
        }
    }

    /// True once the session is over.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True once TLS is up.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Declines or allows STARTTLS from now on (allowed when the session
    /// is created). Use it when TLS cannot be offered for a while, for
    /// example because the certificate failed to load or the server sheds
    /// TLS handshakes under load.
    ///
    /// While STARTTLS is declined, an EHLO reply does not list `STARTTLS`,
    /// and a STARTTLS command is answered `454 4.7.0 TLS not available due
    /// to temporary reason` (RFC 3207 §4) and reported as
    /// [`ServerEvent::Rejected`] with [`Rejection::TlsNotAvailable`]. The
    /// session goes on in plaintext: the client may send more commands or
    /// QUIT, and bytes it pipelined after the STARTTLS line are ordinary
    /// commands, since no handshake follows. Such a 454 does not count
    /// toward [`ServerConfig::max_errors`].
    ///
    /// The other answers to STARTTLS keep their order and come first: `503
    /// 5.5.1` while TLS is up, `502 5.5.1` when
    /// [`ServerConfig::starttls`] is off (the switch then changes nothing),
    /// and `503` for a STARTTLS out of sequence (before EHLO, inside a
    /// transaction). The EHLO reply follows the switch as it stands when
    /// the application accepts the EHLO; a STARTTLS already answered with
    /// `220` is not undone.
    ///
    /// ```
    /// use smtp_proto::server::{Rejection, ServerConfig, ServerEvent, ServerSession};
    /// use smtp_proto::session::Outcome;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.starttls = true;
    /// let mut server = ServerSession::new(config)?;
    /// // The certificate could not be loaded: decline TLS for now.
    /// server.set_starttls_available(false);
    /// server.greet()?;
    ///
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    ///
    /// let input = b"STARTTLS\r\nMAIL FROM:<a@client.example>\r\n";
    /// let step = server.handle_input(input)?;
    /// let Outcome::Event(ServerEvent::Rejected { code, reason }) = step.outcome else {
    ///     panic!("STARTTLS is declined");
    /// };
    /// assert_eq!((code.get(), reason), (454, Rejection::TlsNotAvailable));
    /// // The session goes on in plaintext with the pipelined MAIL.
    /// let rest = &input[step.consumed..];
    /// let step = server.handle_input(rest)?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Mail { .. })));
    ///
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// let wire = String::from_utf8(wire)?;
    /// assert!(!wire.contains("STARTTLS"));
    /// assert!(wire.ends_with("454 4.7.0 TLS not available due to temporary reason\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_starttls_available(&mut self, available: bool) {
        self.starttls_available = available;
    }

    /// False while STARTTLS is declined with
    /// [`set_starttls_available`](Self::set_starttls_available). It says
    /// nothing of the configuration: STARTTLS is offered when
    /// [`ServerConfig::starttls`] is on, this is true and TLS is not up.
    #[must_use]
    pub fn starttls_available(&self) -> bool {
        self.starttls_available
    }

    /// True after a successful AUTH.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The identity the session is authenticated as, while it is.
    ///
    /// With [`accept_auth`](Self::accept_auth) it is the identity given.
    /// When PLAIN or LOGIN credentials ([`ServerEvent::Auth`]) are accepted
    /// with [`accept`](Self::accept) or a `235` through
    /// [`reply`](Self::reply), it is the user name whose password the
    /// application checked: PLAIN's authentication identity (`authcid`),
    /// LOGIN's user name. A PLAIN authorization identity (`authzid`) is
    /// only a claim (RFC 4616 §2: the server must verify that the
    /// credentials "permit the client to act as" it): to let the session
    /// act as it, check that and pass it to `accept_auth`. A token
    /// (XOAUTH2, OAUTHBEARER) names its user only to whoever checks it,
    /// and a custom mechanism's outcome is the application's, so those
    /// leave it `None` unless `accept_auth` gives one.
    ///
    /// ```
    /// use smtp_proto::sasl::SaslMechanism;
    /// use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
    /// use smtp_proto::session::Outcome;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.auth_mechanisms = vec![SaslMechanism::Plain];
    /// // This example runs without TLS.
    /// config.auth_requires_tls = false;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    /// // PLAIN: no authorization identity, user "alice", password "secret".
    /// let step = server.handle_input(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Auth(_))));
    /// assert_eq!(server.auth_identity(), None);
    /// server.accept()?; // the application checked the password
    /// assert_eq!(server.auth_identity(), Some("alice"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn auth_identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The `with` protocol for the `Received:` line of the current message
    /// (RFC 3848, RFC 6531 §3.7.3): `LMTP`, `SMTP` after HELO or else
    /// `ESMTP`; with `S` once TLS is up, `A` once authenticated and `UTF8`
    /// when MAIL FROM carried `SMTPUTF8`. See [`crate::trace::Received`].
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerSession};
    /// let session = ServerSession::new(ServerConfig::new("mx.example.org")).unwrap();
    /// assert_eq!(session.with_protocol().keyword(), "ESMTP");
    /// ```
    #[must_use]
    pub fn with_protocol(&self) -> WithProtocol {
        let base = if self.config.lmtp {
            WithProtocol::lmtp()
        } else if self.hello == Some(HelloKind::Helo) {
            WithProtocol::smtp()
        } else {
            WithProtocol::esmtp()
        };
        base.tls(self.tls)
            .auth(self.authenticated)
            .utf8(self.txn.smtputf8)
    }

    /// Recipients accepted in the current transaction.
    #[must_use]
    pub fn recipients(&self) -> usize {
        self.txn.recipients
    }

    /// How long to wait for the client before giving up, or `None` while
    /// the machine waits for the application or the TLS handshake. When it
    /// expires the adapter may send `421 4.4.2` and close (RFC 5321
    /// §4.5.3.2.7).
    ///
    /// The server timeout applies "while it is awaiting the next command",
    /// so for a command (or a SASL response) it is a deadline: it starts
    /// when the adapter begins to wait, after the replies are sent, and
    /// only a step for which [`restarts_timeout`](Self::restarts_timeout)
    /// is true restarts it; the unconsumed bytes of a partial line do not.
    /// Inside a message body every step that consumes bytes restarts it,
    /// which makes it a limit on the client's silence.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        match self.state {
            State::Refused
            | State::Command
            | State::Data { .. }
            | State::Bdat { .. }
            | State::Sasl { .. }
            | State::SaslFailing { .. } => Some(self.config.timeouts.server),
            State::AwaitGreeting | State::Decision(_) | State::AwaitTls | State::Closed => None,
        }
    }

    /// Whether `step`, just returned by [`handle_input`](Self::handle_input),
    /// restarts the wait for the client ([`timeout`](Self::timeout)).
    ///
    /// RFC 5321 §4.5.3.2.7 times the server "awaiting the next command",
    /// so a step restarts the wait when it gives more than
    /// [`Outcome::NeedInput`] (a command was taken, body bytes came out),
    /// or when it consumed bytes that move the session on. Bytes that
    /// complete nothing do not: the rest of an over-long line being thrown
    /// away (a command, or a SASL response), and the chunk of a BDAT
    /// command refused for a reason other than its size (in a session
    /// refused at the greeting, out of sequence, without CHUNKING, or with
    /// a bad line). So a client cannot hold the connection by trickling an
    /// endless line, or an endless chunk the server drops; such a command
    /// and its chunk must arrive within one timeout. The chunk of a BDAT
    /// refused as too large is the client's message and restarts it, as
    /// every body byte does.
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerSession};
    /// let mut session = ServerSession::new(ServerConfig::new("mx.example.org")).unwrap();
    /// session.greet().unwrap();
    /// // A line longer than `max_line_length` (1024), with no end yet.
    /// let step = session.handle_input(&[b'x'; 2000]).unwrap();
    /// assert!(step.consumed > 0);
    /// assert!(!session.restarts_timeout(&step));
    /// // Its end: the line is answered with 500 and the next can start.
    /// let step = session.handle_input(b"\r\n").unwrap();
    /// assert_eq!(step.consumed, 2);
    /// assert!(session.restarts_timeout(&step));
    /// ```
    #[must_use]
    pub fn restarts_timeout(&self, step: &Step<ServerEvent<'_>>) -> bool {
        !matches!(step.outcome, Outcome::NeedInput) || (step.consumed > 0 && !self.drops_input())
    }

    /// True while the bytes the machine consumes complete nothing: the
    /// rest of an over-long line, or a refused BDAT chunk (see
    /// [`restarts_timeout`](Self::restarts_timeout)).
    fn drops_input(&self) -> bool {
        match &self.state {
            State::Command | State::Refused => self.decoder.is_discarding(),
            State::Sasl { framer, .. } | State::SaslFailing { framer, .. } => {
                framer.is_discarding()
            }
            State::Bdat {
                refusal: Some(r), ..
            } => !matches!(r.reason, RefusalReason::TooLarge),
            _ => false,
        }
    }

    /// Appends the bytes to send to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has bytes.
    #[must_use]
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    // ----- writing ---------------------------------------------------------

    /// The client stayed silent past [`timeout`](Self::timeout): queues
    /// `421 4.4.2 <hostname> Timeout waiting for client input, closing
    /// connection` (RFC 5321 §4.5.3.2, RFC 3463 X.4.2 "bad connection")
    /// and closes the session. Send what `poll_transmit` gives, then close
    /// the connection. Does nothing once the session is closed. Before the
    /// greeting the 421 is the greeting, so it has no enhanced code (RFC
    /// 2034 §3), as with [`shut_down`](Self::shut_down).
    ///
    /// While a STARTTLS handshake is pending (after
    /// [`ServerEvent::StartTls`], before
    /// [`tls_established`](Self::tls_established)) the session closes
    /// without the `421`: once the `220` is out, the next bytes on the
    /// connection belong to the TLS handshake (RFC 3207 §4), and a
    /// plaintext reply there would only break it. [`timeout`](Self::timeout)
    /// is `None` then: the caller times the handshake itself.
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerSession};
    ///
    /// let mut s = ServerSession::new(ServerConfig::new("mx.example.org")).unwrap();
    /// s.greet().unwrap();
    /// s.timed_out();
    /// let mut wire = Vec::new();
    /// s.poll_transmit(&mut wire);
    /// assert_eq!(
    ///     wire,
    ///     b"220 mx.example.org ESMTP\r\n\
    ///       421 4.4.2 mx.example.org Timeout waiting for client input, closing connection\r\n"
    /// );
    /// assert!(s.is_closed());
    /// ```
    pub fn timed_out(&mut self) {
        match self.state {
            State::Closed => return,
            // No plaintext after the 220 to STARTTLS (RFC 3207 §4).
            State::AwaitTls => {}
            _ => self.send_closing(
                self.closing_code(esc(4, 4, 2)),
                "Timeout waiting for client input, closing connection",
            ),
        }
        self.close();
    }

    /// The server is going away: queues `421 4.3.2 <hostname> Service
    /// shutting down, closing connection` and closes the session. Send what
    /// `poll_transmit` gives, then close the connection.
    ///
    /// RFC 5321 §3.8 lets a server send this 421 after any command or on
    /// its own, while the client waits for nothing (it reads the reply
    /// after its next command). Replies already queued go out first.
    /// Before the greeting the 421 takes the greeting's place (RFC 5321
    /// §3.1), without an enhanced code: RFC 2034 §3 puts none in the
    /// greeting. Inside a message body ([`Phase::Data`] or [`Phase::Bdat`])
    /// the message is lost to the client, which sends it again later: to
    /// lose nothing, call this between transactions or once the body has
    /// ended, as the `serve_until` functions of both adapters do. While a
    /// STARTTLS handshake is pending (after [`ServerEvent::StartTls`],
    /// before [`tls_established`](Self::tls_established)) the session
    /// closes without the `421`, as [`timed_out`](Self::timed_out) does:
    /// the bytes after the `220` belong to the TLS handshake (RFC 3207 §4).
    ///
    /// Fails with [`UsageError::DecisionPending`] while a decision is
    /// pending (make it first); does nothing once the session is closed.
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerSession};
    ///
    /// let mut s = ServerSession::new(ServerConfig::new("mx.example.org")).unwrap();
    /// s.greet().unwrap();
    /// s.shut_down().unwrap();
    /// let mut wire = Vec::new();
    /// s.poll_transmit(&mut wire);
    /// assert_eq!(
    ///     wire,
    ///     b"220 mx.example.org ESMTP\r\n\
    ///       421 4.3.2 mx.example.org Service shutting down, closing connection\r\n"
    /// );
    /// assert!(s.is_closed());
    /// ```
    pub fn shut_down(&mut self) -> Result<(), UsageError> {
        match self.state {
            State::Closed => return Ok(()),
            State::Decision(_) => return Err(UsageError::DecisionPending),
            // No plaintext after the 220 to STARTTLS (RFC 3207 §4).
            State::AwaitTls => {}
            _ => self.send_closing(
                self.closing_code(esc(4, 3, 2)),
                "Service shutting down, closing connection",
            ),
        }
        self.close();
        Ok(())
    }

    /// The application failed (its handler returned an error, or left a
    /// decision open where the driver cannot go on): queues `421 4.3.0
    /// <hostname> Local error, closing connection` (RFC 5321 §3.8, RFC
    /// 3463 X.3.0 "other or undefined mail system status") and closes the
    /// session. Send what `poll_transmit` gives, then close the
    /// connection.
    ///
    /// Unlike [`shut_down`](Self::shut_down) it works while a decision is
    /// pending: the decision is dropped. Replies already queued go out
    /// first. Before the greeting the `421` takes the greeting's place, and
    /// with a HELO, EHLO or LHLO decision pending it is that command's
    /// reply: both without an enhanced code (RFC 2034 §3). While a
    /// STARTTLS handshake is pending the
    /// session closes without the `421` (RFC 3207 §4), as with
    /// [`timed_out`](Self::timed_out). Does nothing once the session is
    /// closed.
    ///
    /// ```
    /// use smtp_proto::server::{Decision, ServerConfig, ServerSession};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut s = ServerSession::new(ServerConfig::new("mx.example.org"))?;
    /// s.greet()?;
    /// let _ = s.handle_input(b"EHLO client.example.net\r\n")?;
    /// s.accept()?;
    /// let _ = s.handle_input(b"MAIL FROM:<alice@example.net>\r\n")?;
    /// assert_eq!(s.pending_decision(), Some(Decision::Mail));
    /// // The application's policy store is down: it cannot decide.
    /// s.local_error();
    /// let mut wire = Vec::new();
    /// s.poll_transmit(&mut wire);
    /// assert!(wire.ends_with(b"\r\n421 4.3.0 mx.example.org Local error, closing connection\r\n"));
    /// assert!(s.is_closed());
    /// assert_eq!(s.pending_decision(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_error(&mut self) {
        match self.state {
            State::Closed => return,
            // No plaintext after the 220 to STARTTLS (RFC 3207 §4).
            State::AwaitTls => {}
            State::Decision(Pending::Hello(_)) => {
                self.send_closing(None, "Local error, closing connection");
            }
            _ => self.send_closing(
                self.closing_code(esc(4, 3, 0)),
                "Local error, closing connection",
            ),
        }
        self.close();
    }

    /// A `421` the session sends on its own before it closes: the host
    /// name comes first in the text, as in RFC 5321's "421 <domain>
    /// Service not available, closing transmission channel" (§4.2.2,
    /// §4.2.3; §3.8 lists the closes it allows), so every one of them reads
    /// `421 [enhanced] <hostname> <text>`; `None` sends no enhanced code
    /// (see [`closing_code`](Self::closing_code)).
    fn send_closing(&mut self, enhanced: Option<EnhancedStatusCode>, text: &str) {
        let text = format!("{} {text}", self.config.hostname);
        self.send_maybe(ReplyCode::SERVICE_NOT_AVAILABLE, enhanced, &text);
    }

    /// The enhanced code of a `421` the session sends on its own: none
    /// while the greeting is still to be sent, since that `421` is the
    /// greeting, and RFC 2034 §3 puts enhanced codes in "all 2xx, 4xx, and
    /// 5xx SMTP responses other than the initial greeting and any response
    /// to HELO or EHLO" (the client cannot know of ENHANCEDSTATUSCODES
    /// before it has read the EHLO reply).
    fn closing_code(&self, enhanced: EnhancedStatusCode) -> Option<EnhancedStatusCode> {
        (!matches!(self.state, State::AwaitGreeting)).then_some(enhanced)
    }

    fn send(&mut self, code: ReplyCode, enhanced: EnhancedStatusCode, text: &str) {
        self.send_maybe(code, Some(enhanced), text);
    }

    /// [`send`](Self::send), without an enhanced code when `enhanced` is
    /// `None` (a reply to HELO, EHLO or LHLO, or one in place of the
    /// greeting: RFC 2034 §3).
    fn send_maybe(&mut self, code: ReplyCode, enhanced: Option<EnhancedStatusCode>, text: &str) {
        let e = enhanced.filter(|_| self.config.enhanced_status_codes);
        write_reply(&mut self.out, code, e, text);
    }

    fn send_plain(&mut self, code: ReplyCode, text: &str) {
        write_reply(&mut self.out, code, None, text);
    }

    fn send_ehlo(&mut self) {
        let c = &self.config;
        let mut caps: Vec<Capability<'_>> = Vec::new();
        if c.pipelining {
            caps.push(Capability::Pipelining);
        }
        if let Some(max) = c.max_message_size {
            caps.push(Capability::Size(Some(max)));
        }
        if c.eight_bit_mime {
            caps.push(Capability::EightBitMime);
        }
        if c.smtputf8 {
            caps.push(Capability::SmtpUtf8);
        }
        if c.starttls && self.starttls_available && !self.tls {
            caps.push(Capability::StartTls);
        }
        let auth: Vec<AuthMechanism<'_>> = if self.auth_offered() {
            c.auth_mechanisms
                .iter()
                .map(|m| AuthMechanism::from_name(m.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        let mut after_auth: Vec<Capability<'_>> = Vec::new();
        if c.chunking {
            after_auth.push(Capability::Chunking);
            if c.binarymime {
                after_auth.push(Capability::BinaryMime);
            }
        }
        if c.enhanced_status_codes {
            after_auth.push(Capability::EnhancedStatusCodes);
        }
        if c.dsn {
            after_auth.push(Capability::Dsn);
        }
        if c.requiretls && self.tls {
            after_auth.push(Capability::RequireTls);
        }
        if c.limits {
            // A limit past `u32` is advertised as `u32::MAX`, more than any
            // client sends; left out, `max_recipients` alone would make a
            // bare `LIMITS`, which `limits-param` (RFC 9422 §3) forbids.
            let most = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            after_auth.push(Capability::Limits(Limits {
                rcpt_max: Some(most(c.max_recipients)),
                mail_max: c.max_transactions.map(most),
                rcpt_domain_max: c.max_recipient_domains.map(most),
            }));
        }
        let built = EhloReplyBuilder::new(&c.hostname, "").and_then(|mut b| {
            for cap in &caps {
                b = b.capability(cap)?;
            }
            if !auth.is_empty() {
                b = b.auth(&auth)?;
            }
            for cap in &after_auth {
                b = b.capability(cap)?;
            }
            Ok(b.build())
        });
        match built {
            Ok(reply) => reply.write_to(&mut self.out),
            // The host name was checked when the session was built.
            Err(_) => write_reply(&mut self.out, ReplyCode::OK, None, ""),
        }
    }

    fn auth_offered(&self) -> bool {
        !self.config.auth_mechanisms.is_empty() && (self.tls || !self.config.auth_requires_tls)
    }

    fn ehlo_session(&self) -> bool {
        matches!(self.hello, Some(HelloKind::Ehlo | HelloKind::Lhlo))
    }

    /// The machine refuses something itself; counts toward the error limit
    /// when `counts` is set.
    fn machine_reject<'a>(
        &mut self,
        consumed: usize,
        code: ReplyCode,
        enhanced: EnhancedStatusCode,
        text: &str,
        reason: Rejection,
        counts: bool,
    ) -> Handled<'a> {
        self.machine_reject_maybe(consumed, code, Some(enhanced), text, reason, counts)
    }

    /// [`machine_reject`](Self::machine_reject) of a HELO, EHLO or LHLO
    /// line: no enhanced code, neither in the refusal nor in a `421` that
    /// takes its place. RFC 2034 §3 leaves "any response to HELO or EHLO"
    /// without one: the client learns of ENHANCEDSTATUSCODES from the EHLO
    /// reply, so it cannot expect the codes before it has read one.
    fn hello_reject<'a>(
        &mut self,
        consumed: usize,
        code: ReplyCode,
        text: &str,
        reason: Rejection,
    ) -> Handled<'a> {
        self.machine_reject_maybe(consumed, code, None, text, reason, true)
    }

    fn machine_reject_maybe<'a>(
        &mut self,
        consumed: usize,
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        text: &str,
        reason: Rejection,
        counts: bool,
    ) -> Handled<'a> {
        if counts {
            self.errors += 1;
            if self.errors > self.config.max_errors {
                let closing = enhanced.map(|_| esc(4, 7, 0));
                self.send_closing(closing, "Too many errors, closing connection");
                self.close();
                return Err(RemoteError::TooManyErrors.into());
            }
        }
        self.send_maybe(code, enhanced, text);
        Ok(Step::event(
            consumed,
            ServerEvent::Rejected { code, reason },
        ))
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.phase = Phase::Closed;
    }

    /// Counts an authentication that failed for good (a 5xx once the
    /// exchange was run): at [`ServerConfig::max_auth_failures`] the
    /// session replies `421 4.7.0` after the refusal and closes, so a
    /// password guesser gets that many tries per connection.
    fn auth_failed(&mut self, code: ReplyCode) {
        if code.status_class() != Some(StatusClass::PermanentFailure) {
            return;
        }
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures {
            self.send_closing(
                Some(esc(4, 7, 0)),
                "Too many failed authentication attempts, closing",
            );
            self.close();
        }
    }

    fn reset_transaction(&mut self) {
        self.txn = Transaction::default();
        if self.phase.in_transaction() {
            self.phase = Phase::Ready;
        }
    }

    /// A refused BDAT chunk ends the transaction (RFC 3030 §2); whether it
    /// had an accepted recipient is kept for a BDAT LAST the client
    /// pipelined after it (see [`Self::bdat_last_replies`]).
    fn decline_transaction(&mut self) {
        if self.phase.in_transaction() {
            self.declined_with_recipients = self.txn.recipients > 0;
        }
        self.reset_transaction();
    }

    /// How many replies a BDAT LAST refused with `e` gets. RFC 2033 §4.3:
    /// in LMTP, "if there were no previously successful RCPT commands in
    /// the mail transaction, then the BDAT LAST command returns zero
    /// replies", and a client that pipelined it after its MAIL or every
    /// RCPT failed waits for none. After a refused chunk of a transaction
    /// with recipients it gets its one refusal (RFC 3030 §2), as this
    /// crate's client expects. SMTP answers once.
    fn bdat_last_replies(&self, e: SequenceError) -> usize {
        match e {
            SequenceError::NeedMail | SequenceError::NoRecipients if self.config.lmtp => {
                usize::from(!self.phase.in_transaction() && self.declined_with_recipients)
            }
            _ => 1,
        }
    }

    // ----- greeting --------------------------------------------------------

    /// Queues the `220` greeting (`220 <hostname> ESMTP`, or `LMTP` with
    /// [`ServerConfig::lmtp`]); the session then waits for EHLO.
    /// Fails with [`UsageError::AlreadyGreeted`] once the greeting, or a
    /// [`refuse`](Self::refuse), was sent.
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerSession, UsageError};
    ///
    /// let mut config = ServerConfig::new("lmtp.example.com");
    /// config.lmtp = true;
    /// let mut server = ServerSession::new(config).unwrap();
    /// server.greet().unwrap();
    /// assert_eq!(server.greet(), Err(UsageError::AlreadyGreeted));
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert_eq!(wire, b"220 lmtp.example.com LMTP\r\n");
    /// ```
    pub fn greet(&mut self) -> Result<(), UsageError> {
        if !matches!(self.state, State::AwaitGreeting) {
            return Err(UsageError::AlreadyGreeted);
        }
        let kind = if self.config.lmtp { "LMTP" } else { "ESMTP" };
        let text = format!("{} {kind}", self.config.hostname);
        self.send_plain(rc(220), &text);
        self.state = State::Command;
        self.phase = Phase::NeedHello;
        Ok(())
    }

    /// Refuses the connection: `554` (or the given 4xx/5xx reply) instead
    /// of 220. The session then answers 503 to everything until QUIT
    /// (RFC 5321 §3.1); these count as errors, so after
    /// [`ServerConfig::max_errors`] of them it replies 421 and closes. A
    /// BDAT command gets its 503 once its chunk has been read and dropped,
    /// so the chunk's bytes are never taken for commands (a BDAT line
    /// whose chunk cannot be placed, with no readable size, gets it at
    /// once).
    ///
    /// A `421` reply closes the session at once: 421 is "Service not
    /// available, closing transmission channel" (RFC 5321 §4.2.3, §3.8),
    /// so nothing more is read; [`is_closed`](Self::is_closed) is true and
    /// [`handle_input`](Self::handle_input) reports [`Outcome::Closed`].
    /// Send what [`poll_transmit`](Self::poll_transmit) gives, then close
    /// the connection.
    ///
    /// ```
    /// use smtp_proto::server::{OwnedReply, ServerConfig, ServerSession};
    /// use smtp_proto::session::Outcome;
    /// use smtp_proto::status::ReplyCode;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
    /// let busy = OwnedReply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "Too busy, try later")?;
    /// server.refuse(Some(busy))?;
    /// assert!(server.is_closed());
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert_eq!((step.consumed, step.outcome), (0, Outcome::Closed));
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert_eq!(wire, b"421 Too busy, try later\r\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn refuse(&mut self, reply: Option<OwnedReply>) -> Result<(), UsageError> {
        if !matches!(self.state, State::AwaitGreeting) {
            return Err(UsageError::AlreadyGreeted);
        }
        match reply {
            Some(r) if r.code().is_positive() => return Err(UsageError::NotARejection),
            Some(r) if r.code() == ReplyCode::SERVICE_NOT_AVAILABLE => {
                r.write_to(&mut self.out);
                self.close();
                return Ok(());
            }
            Some(r) => r.write_to(&mut self.out),
            None => {
                let text = format!("{} No SMTP service here", self.config.hostname);
                self.send_plain(rc(554), &text);
            }
        }
        self.state = State::Refused;
        Ok(())
    }

    // ----- decisions -------------------------------------------------------

    fn take_pending(&mut self) -> Result<Pending, UsageError> {
        match self.state {
            State::Decision(p) => Ok(p),
            State::AwaitGreeting => Err(UsageError::GreetingPending),
            _ => Err(UsageError::NoDecisionPending),
        }
    }

    /// Accepts what the pending decision is about, with the standard reply:
    /// the capability list for EHLO (the host name for HELO), `250 2.1.0
    /// OK` for MAIL, `250 2.1.5 OK` for RCPT, `252 2.5.0` for VRFY, `502
    /// 5.5.1` for EXPN, `235 2.7.0` for AUTH and `250 2.0.0 OK: message
    /// accepted` for a message (once per accepted recipient in LMTP). Fails
    /// with [`UsageError::NoDecisionPending`] when no decision is pending.
    ///
    /// ```
    /// use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession, UsageError};
    /// use smtp_proto::session::Outcome;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
    /// server.greet()?;
    /// let step = server.handle_input(b"HELO client.example\r\nMAIL FROM:<a@example.org>\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    /// assert_eq!(server.accept(), Err(UsageError::NoDecisionPending));
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert_eq!(wire, b"220 mx.example.com ESMTP\r\n250 mx.example.com\r\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept(&mut self) -> Result<(), UsageError> {
        let pending = self.take_pending()?;
        self.state = State::Command;
        match pending {
            Pending::Hello(kind) => {
                // RFC 5321 §4.1.4: an EHLO that "is acceptable to the SMTP
                // server" resets the state "exactly as if a RSET command
                // had been issued"; a refused one changes nothing.
                self.reset_transaction();
                self.declined_with_recipients = false;
                self.hello = Some(kind);
                self.phase = Phase::Ready;
                if kind == HelloKind::Helo {
                    let text = self.config.hostname.clone();
                    self.send_plain(rc(250), &text);
                } else {
                    self.send_ehlo();
                }
            }
            Pending::Mail { body, smtputf8 } => {
                self.mail_accepted(body, smtputf8);
                self.send(rc(250), esc(2, 1, 0), "OK");
            }
            Pending::Rcpt => {
                self.rcpt_accepted();
                self.send(rc(250), esc(2, 1, 5), "OK");
            }
            Pending::Vrfy => self.send(
                rc(252),
                esc(2, 5, 0),
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Pending::Expn => self.send(rc(502), esc(5, 5, 1), "EXPN not available"),
            Pending::Auth(_) | Pending::AuthExchange { .. } => {
                self.authenticated = true;
                self.identity = self.claimed_identity.take();
                self.send(rc(235), esc(2, 7, 0), "Authentication successful");
            }
            Pending::Message => {
                let n = self.message_replies();
                for _ in 0..n {
                    self.send(rc(250), esc(2, 0, 0), "OK: message accepted");
                }
                self.message_done();
            }
        }
        Ok(())
    }

    /// Rejects what the pending decision is about with `reply` (4xx/5xx).
    /// For an LMTP message the reply is sent once per recipient. A `421`
    /// closes the session (see [`reply`](Self::reply)). A 2xx or 3xx
    /// `reply` fails with [`UsageError::NotARejection`] and the decision
    /// stays pending.
    ///
    /// ```
    /// use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession, UsageError};
    /// use smtp_proto::session::Outcome;
    /// use smtp_proto::status::{EnhancedStatusCode, ReplyCode};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
    /// server.greet()?;
    /// let input = b"EHLO client.example\r\nMAIL FROM:<spam@example.net>\r\n";
    /// let step = server.handle_input(input)?;
    /// server.accept()?; // the EHLO
    /// let step = server.handle_input(&input[step.consumed..])?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Mail { .. })));
    ///
    /// let ok = OwnedReply::new(ReplyCode::OK, "OK")?;
    /// assert_eq!(server.reject(ok), Err(UsageError::NotARejection));
    /// let no = Some(EnhancedStatusCode::NOT_AUTHORIZED);
    /// server.reject(OwnedReply::with_enhanced(ReplyCode::MAILBOX_UNAVAILABLE, no, "Go away")?)?;
    ///
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert!(wire.ends_with(b"\r\n550 5.7.1 Go away\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reject(&mut self, reply: OwnedReply) -> Result<(), UsageError> {
        if reply.code().is_positive() {
            return Err(UsageError::NotARejection);
        }
        self.reply(reply)
    }

    /// Answers the pending decision with `reply`: a 2xx reply accepts (for
    /// EHLO the capability list is sent instead of the text), 4xx/5xx
    /// rejects. VRFY and EXPN take any code but 3xx.
    ///
    /// A `421` reply also closes the session, as [`refuse`](Self::refuse)
    /// does: 421 is "Service not available, closing transmission channel"
    /// (RFC 5321 §3.8, §4.2.3), so nothing the client sends after it is
    /// read. Send what [`poll_transmit`](Self::poll_transmit) gives, then
    /// close the connection.
    ///
    /// ```
    /// use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession};
    /// use smtp_proto::session::Outcome;
    /// use smtp_proto::status::ReplyCode;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = ServerSession::new(ServerConfig::new("mx.example.com"))?;
    /// server.greet()?;
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// // Rate limited: the application answers 421 and the session ends.
    /// let busy = OwnedReply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "Too many connections")?;
    /// server.reject(busy)?;
    /// assert!(server.is_closed());
    /// let step = server.handle_input(b"MAIL FROM:<a@example.com>\r\n")?;
    /// assert_eq!((step.consumed, step.outcome), (0, Outcome::Closed));
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert!(wire.ends_with(b"\r\n421 Too many connections\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reply(&mut self, reply: OwnedReply) -> Result<(), UsageError> {
        let closes = reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE;
        self.answer(reply)?;
        if closes {
            self.close();
        }
        Ok(())
    }

    /// [`reply`](Self::reply) without the close after a 421.
    fn answer(&mut self, reply: OwnedReply) -> Result<(), UsageError> {
        let pending = self.take_pending()?;
        let code = reply.code();
        if code.is_positive_intermediate() {
            return Err(UsageError::BadReplyCode);
        }
        if matches!(pending, Pending::Auth(_) | Pending::AuthExchange { .. })
            && code.is_positive_completion()
            && code != ReplyCode::AUTH_SUCCEEDED
        {
            return Err(UsageError::BadReplyCode);
        }
        let positive = code.is_positive_completion();
        if positive && matches!(pending, Pending::Hello(_)) {
            return self.accept();
        }
        self.state = State::Command;
        match pending {
            Pending::Message => {
                for _ in 0..self.message_replies() {
                    reply.write_to(&mut self.out);
                }
                self.message_done();
                return Ok(());
            }
            Pending::Mail { body, smtputf8 } if positive => {
                self.mail_accepted(body, smtputf8);
            }
            Pending::Rcpt if positive => self.rcpt_accepted(),
            Pending::Auth(_) | Pending::AuthExchange { .. } if positive => {
                self.authenticated = true;
                self.identity = self.claimed_identity.take();
            }
            Pending::Auth(_) | Pending::AuthExchange { .. } => {
                self.claimed_identity = None;
                reply.write_to(&mut self.out);
                self.auth_failed(code);
                return Ok(());
            }
            _ => {}
        }
        reply.write_to(&mut self.out);
        Ok(())
    }

    /// OAUTHBEARER and XOAUTH2 only: refuses the credentials as RFC 7628
    /// §3.2.2 asks. The machine sends `error` (the JSON status document) in
    /// a `334` challenge, reads the client's answer to it (`^A`, or an empty
    /// line for XOAUTH2), then sends `reply` (4xx/5xx, typically
    /// `535 5.7.8`); to a `*` cancel it sends `501 5.0.0` instead (RFC 4954
    /// §4), but for a `421` `reply`, and the failure counts toward
    /// [`ServerConfig::max_auth_failures`] all the same. The `334` line must fit in 512 octets, so `error` may
    /// hold at most 378 octets. A `421` reply closes the session once it is
    /// sent, as with [`reply`](Self::reply).
    ///
    /// ```
    /// use smtp_proto::sasl::SaslMechanism;
    /// use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession};
    /// use smtp_proto::session::Outcome;
    /// use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.auth_mechanisms = vec![SaslMechanism::OAuthBearer];
    /// // This example runs without TLS.
    /// config.auth_requires_tls = false;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    ///
    /// // n,a=user@example.com,^Aauth=Bearer vF9d...^A^A
    /// let auth = b"AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIHZGOWRmd\
    ///     DRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB\r\n";
    /// let step = server.handle_input(auth)?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Auth(_))));
    /// // The token is not valid: tell the client why, then refuse.
    /// let bad = EnhancedStatusCode::new(StatusClass::PermanentFailure, 7, 8);
    /// let reply = OwnedReply::with_enhanced(ReplyCode::AUTH_CREDENTIALS_INVALID, bad, "No")?;
    /// server.reject_auth_with_challenge(br#"{"status":"invalid_token"}"#, reply)?;
    ///
    /// // The client answers the error challenge with ^A.
    /// let step = server.handle_input(b"AQ==\r\n")?;
    /// assert_eq!(step.outcome, Outcome::NeedInput);
    /// assert!(!server.is_authenticated());
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// let wire = String::from_utf8(wire)?;
    /// assert!(wire.ends_with("334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n535 5.7.8 No\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reject_auth_with_challenge(
        &mut self,
        error: &[u8],
        reply: OwnedReply,
    ) -> Result<(), UsageError> {
        if !challenge_fits(error) {
            return Err(UsageError::ChallengeTooLong);
        }
        let pending = self.take_pending()?;
        let Pending::Auth(SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2) = pending else {
            return Err(UsageError::NotOAuth);
        };
        if !reply.code().is_negative() {
            return Err(UsageError::NotARejection);
        }
        self.claimed_identity = None;
        self.write_challenge(error);
        self.state = State::SaslFailing {
            framer: self.decoder.line_framer(),
            reply,
        };
        Ok(())
    }

    /// Answers a [`ServerEvent::AuthExchange`] with a challenge: the
    /// machine sends `334` and `challenge` in base64 (RFC 4954 §4), reads
    /// the client's response and reports it in the next
    /// [`ServerEvent::AuthExchange`] (or answers a `*` cancel, bad base64
    /// or an over-long line itself, as for the built-in mechanisms).
    ///
    /// The `334` line is kept to a reply line's 512 octets (RFC 5321
    /// §4.5.3.1.5; clients may refuse longer ones, though RFC 4954 §4 asks
    /// them to take what their mechanisms need, and this crate's client
    /// reads `334` lines of up to
    /// [`client::AUTH_LINE_MAX`](crate::client::AUTH_LINE_MAX) octets):
    /// `challenge` may hold at most 378 octets. A longer one is refused
    /// with [`UsageError::ChallengeTooLong`] and nothing is sent.
    /// When [`ServerConfig::max_auth_rounds`] challenges were already sent
    /// in this exchange, the machine ends it instead with `535 5.7.8` and
    /// returns [`Challenge::TooManyRounds`]: the client is not
    /// authenticated, the failure counts toward
    /// [`ServerConfig::max_auth_failures`] (reaching it, the session also
    /// sends `421 4.7.0` and closes), and otherwise the session waits for
    /// its next command.
    ///
    /// A two-step exchange (a CRAM-MD5-style challenge, then the
    /// application's verdict on the answer):
    ///
    /// ```
    /// use smtp_proto::sasl::SaslMechanism;
    /// use smtp_proto::server::{Challenge, ServerConfig, ServerEvent, ServerSession};
    /// use smtp_proto::session::Outcome;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.auth_mechanisms = vec![SaslMechanism::custom("CRAM-MD5")?];
    /// // This example runs without TLS.
    /// config.auth_requires_tls = false;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// let mut wire = Vec::new();
    ///
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    ///
    /// let step = server.handle_input(b"AUTH CRAM-MD5\r\n")?;
    /// let Outcome::Event(ServerEvent::AuthExchange { response: None, round: 0, .. }) =
    ///     step.outcome
    /// else {
    ///     panic!("expected the first step");
    /// };
    /// let sent = server.auth_challenge(b"<1896.697170952@mx.example.com>")?;
    /// assert_eq!(sent, Challenge::Sent);
    ///
    /// // The client answers with its user name and keyed digest.
    /// let answer = b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n";
    /// let step = server.handle_input(answer)?;
    /// let Outcome::Event(ServerEvent::AuthExchange { response: Some(data), round: 1, .. }) =
    ///     step.outcome
    /// else {
    ///     panic!("expected the answer");
    /// };
    /// // The application checks the digest with its own crypto here.
    /// assert!(data.expose().starts_with(b"tim "));
    /// server.accept_auth("tim")?;
    ///
    /// server.poll_transmit(&mut wire);
    /// let wire = String::from_utf8(wire)?;
    /// assert!(wire.contains("AUTH CRAM-MD5\r\n"));
    /// assert!(wire.contains("334 PDE4OTYuNjk3MTcwOTUyQG14LmV4YW1wbGUuY29tPg==\r\n"));
    /// assert!(wire.ends_with("235 2.7.0 Authentication successful\r\n"));
    /// assert_eq!(server.auth_identity(), Some("tim"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<Challenge, UsageError> {
        let Pending::AuthExchange { mechanism, round } = self.take_pending()? else {
            return Err(UsageError::NoAuthExchange);
        };
        if !challenge_fits(challenge) {
            return Err(UsageError::ChallengeTooLong);
        }
        if round >= self.config.max_auth_rounds {
            self.state = State::Command;
            self.send(
                rc(535),
                esc(5, 7, 8),
                "Authentication failed: too many exchange steps",
            );
            self.auth_failed(rc(535));
            return Ok(Challenge::TooManyRounds);
        }
        self.write_challenge(challenge);
        self.state = State::Sasl {
            run: SaslRun::App {
                mechanism,
                round: round + 1,
            },
            framer: self.decoder.line_framer(),
        };
        Ok(Challenge::Sent)
    }

    /// Accepts a pending AUTH decision ([`ServerEvent::Auth`] or
    /// [`ServerEvent::AuthExchange`]) as `identity`: sends `235 2.7.0` and
    /// keeps `identity` for [`auth_identity`](Self::auth_identity), in place
    /// of the PLAIN or LOGIN user: a PLAIN authorization identity the
    /// credentials permit, or the user a token names.
    pub fn accept_auth(&mut self, identity: impl Into<String>) -> Result<(), UsageError> {
        let (Pending::Auth(_) | Pending::AuthExchange { .. }) = self.take_pending()? else {
            return Err(UsageError::NoAuthExchange);
        };
        self.claimed_identity = Some(identity.into());
        self.accept()
    }

    /// `continue-req = "334" SP [base64] CRLF` (RFC 4954 §4): the space
    /// stays even when the challenge is empty, so this line is written
    /// here rather than as a generic reply.
    fn write_challenge(&mut self, challenge: &[u8]) {
        self.out.extend_from_slice(b"334 ");
        let text = base64::engine::general_purpose::STANDARD.encode(challenge);
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// LMTP only: answers the end of a message with one reply per accepted
    /// recipient, in RCPT order (RFC 2033 §4.2). When any of them is a
    /// `421`, the session closes after the replies, as with
    /// [`reply`](Self::reply).
    ///
    /// Fails, sending nothing and leaving the decision pending, with
    /// [`UsageError::RecipientReplies`] outside an LMTP message end or when
    /// `replies` does not hold exactly one reply per accepted recipient
    /// (fewer or more), and with [`UsageError::BadReplyCode`] when one of
    /// them is a 3xx reply, as [`reply`](Self::reply) does.
    ///
    /// ```
    /// use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession, UsageError};
    /// use smtp_proto::session::Outcome;
    /// use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("lmtp.example.com");
    /// config.lmtp = true;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// let input: &[u8] = b"LHLO client.example\r\nMAIL FROM:<a@example.org>\r\n\
    ///     RCPT TO:<bob@example.com>\r\nRCPT TO:<full@example.com>\r\nDATA\r\nHi\r\n.\r\n";
    /// let mut pos = 0;
    /// loop {
    ///     let step = server.handle_input(&input[pos..])?;
    ///     pos += step.consumed;
    ///     match step.outcome {
    ///         Outcome::Event(ServerEvent::MessageEnd { recipients, .. }) => {
    ///             assert_eq!(recipients, 2);
    ///             break;
    ///         }
    ///         Outcome::Event(ServerEvent::MessageStart { .. } | ServerEvent::MessageChunk(_)) => {}
    ///         Outcome::Event(_) => server.accept()?, // LHLO, MAIL, each RCPT
    ///         other => panic!("unexpected {other:?}"),
    ///     }
    /// }
    ///
    /// let ok = OwnedReply::with_enhanced(ReplyCode::OK, Some(EnhancedStatusCode::SUCCESS), "Delivered")?;
    /// // One reply for two recipients is refused, and nothing is sent.
    /// let one = [ok.clone()];
    /// assert_eq!(server.reply_per_recipient(&one), Err(UsageError::RecipientReplies));
    /// let full_code = EnhancedStatusCode::new(StatusClass::PersistentTransientFailure, 2, 2);
    /// let full = OwnedReply::with_enhanced(ReplyCode::INSUFFICIENT_STORAGE, full_code, "Mailbox full")?;
    /// server.reply_per_recipient(&[ok, full])?;
    ///
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire);
    /// assert!(wire.ends_with(b"\r\n250 2.0.0 Delivered\r\n452 4.2.2 Mailbox full\r\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reply_per_recipient(&mut self, replies: &[OwnedReply]) -> Result<(), UsageError> {
        if !matches!(self.state, State::Decision(Pending::Message))
            || !self.config.lmtp
            || replies.len() != self.txn.recipients
        {
            return Err(UsageError::RecipientReplies);
        }
        if replies.iter().any(|r| r.code().is_positive_intermediate()) {
            return Err(UsageError::BadReplyCode);
        }
        for r in replies {
            r.write_to(&mut self.out);
        }
        self.state = State::Command;
        self.message_done();
        if replies
            .iter()
            .any(|r| r.code() == ReplyCode::SERVICE_NOT_AVAILABLE)
        {
            // The server is going away (RFC 5321 §3.8): a 421 for any
            // recipient ends the session, as it does in `reply`.
            self.close();
        }
        Ok(())
    }

    /// After the TLS handshake: forgets the session (RFC 3207 §4.2) and
    /// waits for a new EHLO. Fails with [`UsageError::NotAwaitingTls`]
    /// unless a STARTTLS was answered with `220` and the session waits for
    /// the handshake ([`Outcome::Paused`]).
    ///
    /// ```
    /// use smtp_proto::server::{Rejection, ServerConfig, ServerEvent, ServerSession, UsageError};
    /// use smtp_proto::session::Outcome;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ServerConfig::new("mx.example.com");
    /// config.starttls = true;
    /// let mut server = ServerSession::new(config)?;
    /// server.greet()?;
    /// assert_eq!(server.tls_established(), Err(UsageError::NotAwaitingTls));
    /// let step = server.handle_input(b"EHLO client.example\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Hello { .. })));
    /// server.accept()?;
    ///
    /// let step = server.handle_input(b"STARTTLS\r\n")?;
    /// assert_eq!(step.outcome, Outcome::Event(ServerEvent::StartTls));
    /// let step = server.handle_input(b"")?;
    /// assert_eq!(step.outcome, Outcome::Paused);
    /// let mut wire = Vec::new();
    /// server.poll_transmit(&mut wire); // ends with the 220; send it, then
    /// // run the TLS handshake over the connection, then:
    /// server.tls_established()?;
    /// assert!(server.is_tls());
    ///
    /// // Everything from before TLS is forgotten: EHLO comes first again.
    /// let step = server.handle_input(b"MAIL FROM:<a@client.example>\r\n")?;
    /// let Outcome::Event(ServerEvent::Rejected { code, reason }) = step.outcome else {
    ///     panic!("MAIL before EHLO is refused");
    /// };
    /// assert_eq!(code.get(), 503);
    /// assert!(matches!(reason, Rejection::Sequence(_)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_established(&mut self) -> Result<(), UsageError> {
        if !matches!(self.state, State::AwaitTls) {
            return Err(UsageError::NotAwaitingTls);
        }
        self.tls = true;
        self.hello = None;
        self.authenticated = false;
        self.identity = None;
        self.txn = Transaction::default();
        self.declined_with_recipients = false;
        self.phase = Phase::NeedHello;
        self.decoder.reset();
        self.state = State::Command;
        Ok(())
    }

    fn mail_accepted(&mut self, body: Option<BodyType>, smtputf8: bool) {
        self.txn = Transaction {
            body,
            smtputf8,
            ..Transaction::default()
        };
        self.phase = self.phase.after(CommandKind::Mail);
    }

    fn rcpt_accepted(&mut self) {
        self.txn.recipients += 1;
        if let Some(domain) = self.txn.pending_domain.take() {
            if !self.txn.domains.contains(&domain) {
                self.txn.domains.push(domain);
            }
        }
        self.phase = self.phase.after(CommandKind::Rcpt);
    }

    fn message_replies(&self) -> usize {
        if self.config.lmtp {
            self.txn.recipients.max(1)
        } else {
            1
        }
    }

    fn message_done(&mut self) {
        self.txn = Transaction::default();
        self.phase = Phase::Ready;
    }

    // ----- input -----------------------------------------------------------

    /// Feeds bytes from the client.
    ///
    /// `input` is everything received and not yet consumed. The returned
    /// step says how many bytes to drop and what happened; at most one event
    /// comes out per call, so call again until the outcome is
    /// [`Outcome::NeedInput`] (send what [`poll_transmit`](Self::poll_transmit)
    /// gives, then read), [`Outcome::Paused`] (after
    /// [`ServerEvent::StartTls`]: run the handshake) or [`Outcome::Closed`].
    /// On [`Outcome::Transmit`], send what `poll_transmit` gives and call
    /// again with the same unconsumed input. Decision events must be
    /// answered before the next call. An event borrows from `input`: use
    /// it (or copy what you keep) before dropping the consumed bytes.
    pub fn handle_input<'a>(&mut self, input: &'a [u8]) -> Handled<'a> {
        let mut pos = 0;
        loop {
            match &mut self.state {
                State::AwaitGreeting => return Err(UsageError::GreetingPending.into()),
                State::Decision(_) => return Err(UsageError::DecisionPending.into()),
                State::Closed => return Ok(Step::closed(pos)),
                State::AwaitTls => {
                    if pos < input.len() {
                        // CVE-2011-0411, but the 220 is out: no plaintext
                        // reply after it (RFC 3207 §4), as for a timeout.
                        self.close();
                        return Err(RemoteError::StartTlsInjection.into());
                    }
                    return Ok(Step::paused(pos));
                }
                State::Data { decoder, refused } => {
                    let step = decoder.decode(&input[pos..]);
                    pos += step.consumed;
                    match step.output {
                        DataOutput::NeedMore => return Ok(Step::need_input(pos)),
                        DataOutput::Chunk(chunk) => {
                            // Once the message is known to be refused (too
                            // large, bare line ends, long lines) its bytes
                            // are consumed but not handed out.
                            if !*refused && decoder.summary().verdict().is_err() {
                                *refused = true;
                            }
                            if !*refused {
                                return Ok(Step::event(pos, ServerEvent::MessageChunk(chunk)));
                            }
                        }
                        DataOutput::End(summary) => {
                            self.state = State::Command;
                            return match summary.verdict() {
                                Ok(()) => {
                                    self.state = State::Decision(Pending::Message);
                                    Ok(Step::event(
                                        pos,
                                        ServerEvent::MessageEnd {
                                            size: summary.size,
                                            recipients: self.txn.recipients,
                                        },
                                    ))
                                }
                                Err(e) => {
                                    let text = e.to_string();
                                    for _ in 0..self.message_replies() {
                                        self.send(e.reply_code(), e.enhanced_code(), &text);
                                    }
                                    self.message_done();
                                    Ok(Step::event(
                                        pos,
                                        ServerEvent::Rejected {
                                            code: e.reply_code(),
                                            reason: Rejection::Data(e),
                                        },
                                    ))
                                }
                            };
                        }
                    }
                }
                State::Bdat {
                    reader,
                    size,
                    last,
                    refusal,
                    replies,
                } => {
                    if !reader.is_done() {
                        let chunk = reader.read(&input[pos..]);
                        pos += chunk.len();
                        if chunk.is_empty() {
                            return Ok(Step::need_input(pos));
                        }
                        if refusal.is_none() {
                            return Ok(Step::event(pos, ServerEvent::MessageChunk(chunk)));
                        }
                        continue;
                    }
                    let (size, last, refusal, replies) = (*size, *last, *refusal, *replies);
                    self.state = match refusal {
                        Some(Refusal {
                            reason: RefusalReason::SessionRefused,
                            ..
                        }) => State::Refused,
                        _ => State::Command,
                    };
                    if let Some(r) = refusal {
                        let reason = match r.reason {
                            RefusalReason::Sequence(e) => Rejection::Sequence(e),
                            RefusalReason::TooLarge => Rejection::MessageTooLarge,
                            RefusalReason::NotImplemented => Rejection::NotImplemented("BDAT"),
                            RefusalReason::Syntax(e) => Rejection::Syntax(e),
                            RefusalReason::SessionRefused => Rejection::SessionRefused,
                        };
                        if replies == 0 {
                            // An LMTP BDAT LAST with no recipient to answer
                            // for gets no reply at all (RFC 2033 §4.3), as
                            // the client expects: nothing is sent or counted.
                            return Ok(Step::event(
                                pos,
                                ServerEvent::Rejected {
                                    code: r.code,
                                    reason,
                                },
                            ));
                        }
                        for _ in 1..replies {
                            self.send(r.code, r.enhanced, r.text);
                        }
                        // As in `sequence`: a pipelining client sends its
                        // chunks before it learns that MAIL, every RCPT or an
                        // earlier chunk (552) failed, so those refusals are
                        // expected and do not count toward the error limit.
                        let counts = match r.reason {
                            RefusalReason::TooLarge => false,
                            RefusalReason::Sequence(e) => {
                                !pipelined_sequence_error(&self.config, e)
                            }
                            RefusalReason::NotImplemented
                            | RefusalReason::Syntax(_)
                            | RefusalReason::SessionRefused => true,
                        };
                        return self
                            .machine_reject(pos, r.code, r.enhanced, r.text, reason, counts);
                    }
                    if last {
                        self.state = State::Decision(Pending::Message);
                        return Ok(Step::event(
                            pos,
                            ServerEvent::MessageEnd {
                                size: self.txn.size,
                                recipients: self.txn.recipients,
                            },
                        ));
                    }
                    let text = format!("{size} octets received");
                    self.send(rc(250), esc(2, 0, 0), &text);
                }
                State::Sasl { .. } => {
                    if let Some(step) = self.sasl_input(input, &mut pos)? {
                        return Ok(step);
                    }
                }
                State::SaslFailing { framer, .. } => {
                    let max = self.config.max_auth_line_length;
                    match framer.next_frame(&input[pos..], max) {
                        Frame::Incomplete => return Ok(Step::need_input(pos)),
                        Frame::Discarded {
                            consumed,
                            end: false,
                        } => {
                            pos += consumed;
                            return Ok(Step::need_input(pos));
                        }
                        Frame::Discarded { consumed, .. } | Frame::Line(Line { consumed, .. }) => {
                            let cancelled = input
                                .get(pos..pos + consumed)
                                .is_some_and(|line| matches!(line, b"*\r\n" | b"*\n"));
                            pos += consumed;
                            // Whatever the client answered, the exchange
                            // ends with the application's reply, but for a
                            // `*` cancel (RFC 7628 §3.2.2 allows one), which
                            // "MUST" get 501 (RFC 4954 §4). The refused
                            // credentials count as a failure either way.
                            if let State::SaslFailing { reply, .. } =
                                core::mem::replace(&mut self.state, State::Command)
                            {
                                if cancelled && reply.code() != ReplyCode::SERVICE_NOT_AVAILABLE {
                                    self.send(rc(501), esc(5, 0, 0), "Authentication cancelled");
                                } else {
                                    reply.write_to(&mut self.out);
                                }
                                self.auth_failed(reply.code());
                                if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
                                    self.close();
                                }
                            }
                        }
                    }
                }
                State::Refused | State::Command => {
                    if self.out.len() >= TRANSMIT_HIGH_WATER {
                        return Ok(Step {
                            consumed: pos,
                            outcome: Outcome::Transmit,
                        });
                    }
                    let was_discarding = self.decoder.is_discarding();
                    let decoded = self.decoder.decode(&input[pos..]);
                    if decoded.consumed == 0 && decoded.item.is_none() {
                        return Ok(Step::need_input(pos));
                    }
                    let line = &input[pos..pos + decoded.consumed];
                    pos += decoded.consumed;
                    // An over-long line that starts as a BDAT command: its
                    // chunk cannot be placed with confidence (see
                    // `bad_bdat`), so the session ends here.
                    let overlong = match &decoded.item {
                        None => self.decoder.is_discarding(),
                        Some(item) => matches!(
                            item,
                            Err(CommandError::LineTooLong | CommandError::AuthLineTooLong)
                        ),
                    };
                    if overlong
                        && !was_discarding
                        && matches!(self.state, State::Command)
                        && is_bdat_line(line)
                    {
                        self.send(rc(500), esc(5, 5, 2), "BDAT command line too long, closing");
                        self.close();
                        return Err(RemoteError::BdatLineTooLong.into());
                    }
                    let Some(item) = decoded.item else { continue };
                    if matches!(self.state, State::Refused) {
                        let step = self.refused_session(pos, line, item)?;
                        if matches!(step.outcome, Outcome::NeedInput) {
                            // A BDAT chunk follows: read it before the 503.
                            continue;
                        }
                        return Ok(step);
                    }
                    return match item {
                        Err(
                            e @ (CommandError::InvalidArgument { verb: "BDAT", .. }
                            | CommandError::MissingArgument { verb: "BDAT" }),
                        ) => {
                            let step = self.bad_bdat(pos, line, &e)?;
                            if matches!(step.outcome, Outcome::NeedInput) {
                                // The chunk follows: go on with its bytes.
                                continue;
                            }
                            Ok(step)
                        }
                        // A line refused before its verb was parsed: when it
                        // is a BDAT command, its chunk follows all the same.
                        // A line whose verb is refused may still be a BDAT
                        // command to a peer that splits at any blank (see
                        // `is_bdat_line`): it closes the session in
                        // `bad_bdat`, as its size is not read here.
                        Err(
                            e @ (CommandError::NulOctet
                            | CommandError::InvalidUtf8
                            | CommandError::BareLineEnding
                            | CommandError::InvalidVerb),
                        ) if is_bdat_line(line) => {
                            let step = self.bad_bdat(pos, line, &e)?;
                            if matches!(step.outcome, Outcome::NeedInput) {
                                // The chunk follows: go on with its bytes.
                                continue;
                            }
                            Ok(step)
                        }
                        // The same reply as for a SASL response line
                        // over the limit (RFC 4954 §6): the AUTH line's
                        // initial response is one.
                        Err(CommandError::AuthLineTooLong) => self.auth_line_too_long(pos),
                        // A greeting command of the other protocol gets
                        // the same reply whatever its argument: LHLO is
                        // unknown to SMTP (500 5.5.2, as `LHLO x.example`
                        // gets), and LMTP answers HELO and EHLO with 500
                        // (RFC 2033 §4.1), not with a 501 about their syntax.
                        Err(e) if syntax_error_verb(&e) == Some("LHLO") && !self.config.lmtp => {
                            self.unknown(pos, "LHLO")
                        }
                        Err(e)
                            if self.config.lmtp
                                && matches!(syntax_error_verb(&e), Some("EHLO" | "HELO")) =>
                        {
                            self.hello_reject(
                                pos,
                                rc(500),
                                "Use LHLO in LMTP",
                                Rejection::WrongHello,
                            )
                        }
                        // RFC 4954 §4: an AUTH command in a mail
                        // transaction or after a successful AUTH "MUST be
                        // rejected with a 503 reply", one whose arguments
                        // do not parse too; without AUTH it is not
                        // implemented (502), as a well-formed one is.
                        Err(e) if is_auth_syntax_error(&e) => match self.auth_out_of_place(pos) {
                            Some(refused) => refused,
                            None => self.machine_reject(
                                pos,
                                e.reply_code(),
                                e.enhanced_code(),
                                &e.to_string(),
                                Rejection::Syntax(e),
                                true,
                            ),
                        },
                        // RFC 2034 §3: no enhanced code in a reply to HELO,
                        // EHLO or LHLO, a refusal of its syntax included.
                        Err(e) if is_hello_error(&e, self.config.lmtp) => self.hello_reject(
                            pos,
                            e.reply_code(),
                            &e.to_string(),
                            Rejection::Syntax(e),
                        ),
                        Err(e) => self.machine_reject(
                            pos,
                            e.reply_code(),
                            e.enhanced_code(),
                            &e.to_string(),
                            Rejection::Syntax(e),
                            true,
                        ),
                        Ok(cmd) => {
                            let step = self.command(cmd, input, pos)?;
                            if matches!(step.outcome, Outcome::NeedInput) {
                                // The command produced no event (a BDAT
                                // chunk or a SASL challenge follows): go on.
                                continue;
                            }
                            Ok(step)
                        }
                    };
                }
            }
        }
    }

    fn injection(&mut self) -> Error {
        self.send(
            rc(554),
            esc(5, 5, 1),
            "Data pipelined after STARTTLS, closing",
        );
        self.close();
        RemoteError::StartTlsInjection.into()
    }

    /// A session refused at the greeting acts on QUIT alone and answers
    /// 503 to the rest (RFC 5321 §3.1). A BDAT command is followed by its
    /// chunk all the same, so when the line names a chunk size that can be
    /// read (as in `bad_bdat`, a line refused for its end marker, a NUL or
    /// invalid UTF-8 too), the chunk is read and dropped first, as for any
    /// refused chunk, and its bytes are never taken for commands: one 503
    /// for the command and its chunk. A BDAT line whose chunk cannot be
    /// placed (no readable size, a bare CR or LF) gets its 503 at once.
    fn refused_session<'a>(
        &mut self,
        pos: usize,
        line: &[u8],
        item: Result<Command<'a>, CommandError>,
    ) -> Handled<'a> {
        let hello = match &item {
            Ok(Command::Ehlo(_) | Command::Helo(_)) => true,
            Ok(Command::Lhlo(_)) => self.config.lmtp,
            Err(e) => is_hello_error(e, self.config.lmtp),
            Ok(_) => false,
        };
        if hello {
            // No enhanced code in a reply to HELO or EHLO (RFC 2034 §3).
            return self.hello_reject(
                pos,
                rc(503),
                REFUSED_SESSION_TEXT,
                Rejection::SessionRefused,
            );
        }
        let chunk = match item {
            Ok(Command::Quit) => {
                self.send(rc(221), esc(2, 0, 0), "Bye");
                self.close();
                return Ok(Step::event(pos, ServerEvent::Quit));
            }
            Ok(Command::Bdat { size, .. }) => Some(size),
            Err(
                CommandError::InvalidArgument { verb: "BDAT", .. }
                | CommandError::MissingArgument { verb: "BDAT" }
                | CommandError::NulOctet
                | CommandError::InvalidUtf8,
            ) if is_bdat_line(line) => bdat_line_chunk_size(line),
            _ => None,
        };
        if let Some(size) = chunk {
            self.state = State::Bdat {
                reader: ChunkReader::new(size),
                size,
                last: false,
                refusal: Some(Refusal {
                    code: rc(503),
                    enhanced: esc(5, 5, 1),
                    text: REFUSED_SESSION_TEXT,
                    reason: RefusalReason::SessionRefused,
                }),
                replies: 1,
            };
            // No event: the caller's loop goes on with the chunk's bytes.
            return Ok(Step::need_input(pos));
        }
        self.machine_reject(
            pos,
            rc(503),
            esc(5, 5, 1),
            REFUSED_SESSION_TEXT,
            Rejection::SessionRefused,
            true,
        )
    }

    /// The reply code for a command out of sequence. RFC 2033 §4.2: in
    /// LMTP, "when there have been no successful RCPT commands in the mail
    /// transaction, the DATA command MUST fail with a 503 reply code"; a
    /// BDAT chunk there gets the same. SMTP keeps 554 "no valid
    /// recipients" (RFC 5321 §3.3 allows 503 or 554, RFC 2920 §3.1).
    fn sequence_code(&self, e: SequenceError) -> ReplyCode {
        match e {
            SequenceError::NoRecipients if self.config.lmtp => ReplyCode::BAD_SEQUENCE,
            _ => e.reply_code(),
        }
    }

    /// The text of a `503` for a command before the greeting: an LMTP
    /// client is sent to LHLO, since EHLO and HELO get 500 there (RFC 2033
    /// §4.1).
    fn need_hello_text(&self) -> &'static str {
        if self.config.lmtp {
            "send LHLO first"
        } else {
            "send EHLO/HELO first"
        }
    }

    fn sequence<'a>(&mut self, pos: usize, e: SequenceError) -> Handled<'a> {
        // A pipelining client sends RCPT and DATA before it learns that MAIL
        // (or every RCPT) failed; the 503s that follow are expected (RFC 2920
        // §3.1) and do not count toward the error limit.
        let expected = pipelined_sequence_error(&self.config, e);
        let text = match e {
            SequenceError::NeedHello => self.need_hello_text().to_owned(),
            _ => e.to_string(),
        };
        self.machine_reject(
            pos,
            self.sequence_code(e),
            e.enhanced_code(),
            &text,
            Rejection::Sequence(e),
            !expected,
        )
    }

    fn not_advertised<'a>(&mut self, pos: usize, keyword: &'static str) -> Handled<'a> {
        let text = format!("{keyword} parameter not supported");
        self.machine_reject(
            pos,
            rc(555),
            esc(5, 5, 4),
            &text,
            Rejection::ParameterNotAdvertised(keyword),
            true,
        )
    }

    /// A MAIL or RCPT parameter this crate does not know, which the
    /// configuration does not hand to the application. The keyword is
    /// not repeated in the reply: it may be up to a line long.
    fn unknown_parameter<'a>(&mut self, pos: usize, keyword: &str) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(555),
            esc(5, 5, 4),
            "Unrecognized parameter",
            Rejection::UnknownParameter(keyword.to_owned()),
            true,
        )
    }

    fn not_implemented<'a>(&mut self, pos: usize, verb: &'static str) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(502),
            esc(5, 5, 1),
            "Command not implemented",
            Rejection::NotImplemented(verb),
            true,
        )
    }

    /// MAIL, VRFY or EXPN before a successful AUTH in a session that
    /// requires one ([`ServerConfig::auth_required`]): RFC 4954 §6, "530
    /// 5.7.0 Authentication required".
    fn auth_required<'a>(&mut self, pos: usize) -> Option<Handled<'a>> {
        if !self.config.auth_required || self.authenticated {
            return None;
        }
        Some(self.machine_reject(
            pos,
            rc(530),
            esc(5, 7, 0),
            "Authentication required",
            Rejection::AuthRequired,
            true,
        ))
    }

    fn utf8_refused<'a>(&mut self, pos: usize) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(553),
            esc(5, 6, 7),
            "Non-ASCII address requires SMTPUTF8",
            Rejection::Utf8AddressWithoutSmtputf8,
            true,
        )
    }

    /// The first MAIL parameter the session did not advertise.
    fn unadvertised_mail_param(&self, p: &MailParameters<'_>) -> Option<&'static str> {
        let c = &self.config;
        let ehlo = self.ehlo_session();
        if !ehlo && !p.is_empty() {
            return Some("ESMTP");
        }
        if p.size.is_some() && c.max_message_size.is_none() {
            return Some("SIZE");
        }
        match p.body {
            Some(BodyType::BinaryMime) if !(c.binarymime && c.chunking) => return Some("BODY"),
            Some(BodyType::SevenBit | BodyType::EightBitMime) if !c.eight_bit_mime => {
                return Some("BODY")
            }
            _ => {}
        }
        if p.smtputf8 && !c.smtputf8 {
            return Some("SMTPUTF8");
        }
        if (p.ret.is_some() || p.envid.is_some()) && !c.dsn {
            return Some(if p.ret.is_some() { "RET" } else { "ENVID" });
        }
        if p.auth.is_some() && !self.auth_offered() {
            return Some("AUTH");
        }
        if p.requiretls && !(c.requiretls && self.tls) {
            return Some("REQUIRETLS");
        }
        if p.mt_priority.is_some() {
            return Some("MT-PRIORITY");
        }
        if p.hold.is_some() {
            return Some("HOLDFOR");
        }
        if p.by.is_some() {
            return Some("BY");
        }
        None
    }

    fn unadvertised_rcpt_param(&self, p: &RcptParameters<'_>) -> Option<&'static str> {
        if !self.ehlo_session() && !p.is_empty() {
            return Some("ESMTP");
        }
        if p.notify.is_some() && !self.config.dsn {
            return Some("NOTIFY");
        }
        if p.orcpt.is_some() && !self.config.dsn {
            return Some("ORCPT");
        }
        if p.rrvs.is_some() {
            return Some("RRVS");
        }
        None
    }

    fn command<'a>(&mut self, cmd: Command<'a>, input: &'a [u8], pos: usize) -> Handled<'a> {
        let lmtp = self.config.lmtp;
        match cmd {
            // A reply to HELO or EHLO: no enhanced code (RFC 2034 §3).
            Command::Ehlo(_) | Command::Helo(_) if lmtp => {
                self.hello_reject(pos, rc(500), "Use LHLO in LMTP", Rejection::WrongHello)
            }
            Command::Lhlo(_) if !lmtp => self.unknown(pos, "LHLO"),
            Command::Ehlo(domain) => Ok(self.hello(pos, HelloKind::Ehlo, domain)),
            Command::Helo(domain) => Ok(self.hello(pos, HelloKind::Helo, domain)),
            Command::Lhlo(domain) => Ok(self.hello(pos, HelloKind::Lhlo, domain)),
            Command::Mail(MailFrom {
                reverse_path,
                params,
            }) => {
                // The client starts a new transaction: what a refused chunk
                // ended is no longer counted (see `bdat_last_replies`).
                self.declined_with_recipients = false;
                // RFC 9422 §4.1: every MAIL counts, whatever comes of it.
                self.transactions = self.transactions.saturating_add(1);
                if self
                    .config
                    .max_transactions
                    .is_some_and(|max| self.transactions > max)
                {
                    self.send_closing(
                        Some(esc(4, 7, 0)),
                        "Too many messages on this connection, closing",
                    );
                    self.close();
                    return Ok(Step::event(
                        pos,
                        ServerEvent::Rejected {
                            code: rc(421),
                            reason: Rejection::TooManyTransactions,
                        },
                    ));
                }
                if let Err(e) = self.phase.check(CommandKind::Mail) {
                    return self.sequence(pos, e);
                }
                if let Some(refused) = self.auth_required(pos) {
                    return refused;
                }
                if let Some(k) = self.unadvertised_mail_param(&params) {
                    return self.not_advertised(pos, k);
                }
                if let Some(p) = params
                    .other
                    .first()
                    .filter(|_| !self.config.unknown_parameters)
                {
                    return self.unknown_parameter(pos, p.keyword());
                }
                if reverse_path.is_utf8() && !(self.config.smtputf8 && params.smtputf8) {
                    return self.utf8_refused(pos);
                }
                if let (Some(declared), Some(max)) = (params.size, self.config.max_message_size) {
                    if declared > max {
                        return self.machine_reject(
                            pos,
                            rc(552),
                            esc(5, 3, 4),
                            "Message size exceeds fixed maximum message size",
                            Rejection::MessageTooLarge,
                            false,
                        );
                    }
                }
                // RFC 4954 §5: a server that has not authenticated the
                // client "MUST behave as if the AUTH=<> parameter was
                // supplied": the application is not handed an identity it
                // could take for a checked one. A client authenticated
                // without a known identity (a token, a custom mechanism)
                // is authenticated all the same.
                let mut params = params;
                if !self.authenticated && params.auth.is_some() {
                    params.auth = Some(AuthParam::Null);
                }
                self.state = State::Decision(Pending::Mail {
                    body: params.body,
                    smtputf8: params.smtputf8,
                });
                Ok(Step::event(
                    pos,
                    ServerEvent::Mail {
                        from: reverse_path,
                        params,
                    },
                ))
            }
            Command::Rcpt(RcptTo {
                forward_path,
                params,
            }) => {
                if let Err(e) = self.phase.check(CommandKind::Rcpt) {
                    return self.sequence(pos, e);
                }
                if let Some(k) = self.unadvertised_rcpt_param(&params) {
                    return self.not_advertised(pos, k);
                }
                if let Some(p) = params
                    .other
                    .first()
                    .filter(|_| !self.config.unknown_parameters)
                {
                    return self.unknown_parameter(pos, p.keyword());
                }
                let utf8_orcpt = params.orcpt.as_ref().is_some_and(|o| o.is_utf8());
                if (forward_path.is_utf8() || utf8_orcpt) && !self.txn.smtputf8 {
                    return self.utf8_refused(pos);
                }
                if self.txn.recipients >= self.config.max_recipients {
                    return self.machine_reject(
                        pos,
                        rc(452),
                        esc(4, 5, 3),
                        "Too many recipients",
                        Rejection::TooManyRecipients,
                        false,
                    );
                }
                if let Some(max) = self.config.max_recipient_domains {
                    let domain = match &forward_path {
                        ForwardPath::Mailbox(mb) => Some(mb.domain().as_str().to_ascii_lowercase()),
                        _ => None,
                    };
                    if let Some(d) = &domain {
                        if !self.txn.domains.contains(d) && self.txn.domains.len() >= max {
                            return self.machine_reject(
                                pos,
                                rc(452),
                                esc(4, 5, 3),
                                "Too many recipient domains",
                                Rejection::TooManyDomains,
                                false,
                            );
                        }
                    }
                    self.txn.pending_domain = domain;
                }
                self.state = State::Decision(Pending::Rcpt);
                Ok(Step::event(
                    pos,
                    ServerEvent::Rcpt {
                        to: forward_path,
                        params,
                    },
                ))
            }
            Command::Data => {
                if let Err(e) = self.phase.check(CommandKind::Data) {
                    return self.sequence(pos, e);
                }
                if self.txn.body == Some(BodyType::BinaryMime) {
                    return self.machine_reject(
                        pos,
                        rc(503),
                        esc(5, 5, 1),
                        "BINARYMIME requires BDAT",
                        Rejection::BinaryMimeNeedsBdat,
                        true,
                    );
                }
                self.send_plain(rc(354), "End data with <CR><LF>.<CR><LF>");
                self.phase = self.phase.after(CommandKind::Data);
                let limits = DataLimits::default()
                    .with_bare_endings(self.config.bare_endings)
                    .with_max_line_len(self.config.max_data_line_length)
                    .with_max_size(self.config.max_message_size);
                self.state = State::Data {
                    decoder: DataDecoder::new(limits),
                    refused: false,
                };
                Ok(Step::event(
                    pos,
                    ServerEvent::MessageStart { chunked: false },
                ))
            }
            Command::Bdat { size, last } => self.bdat(pos, size, last),
            Command::Rset => {
                self.reset_transaction();
                self.declined_with_recipients = false;
                self.phase = self.phase.after(CommandKind::Rset);
                self.send(rc(250), esc(2, 0, 0), "OK");
                Ok(Step::event(pos, ServerEvent::Reset))
            }
            Command::Noop(_) => {
                self.send(rc(250), esc(2, 0, 0), "OK");
                Ok(Step::event(pos, ServerEvent::Noop))
            }
            Command::Quit => {
                self.send(rc(221), esc(2, 0, 0), "Bye");
                self.close();
                Ok(Step::event(pos, ServerEvent::Quit))
            }
            Command::Help(topic) => {
                let text = self.help_text();
                self.send(rc(214), esc(2, 0, 0), text);
                Ok(Step::event(pos, ServerEvent::Help(topic)))
            }
            Command::Vrfy(text) => {
                if let Err(e) = self.phase.check(CommandKind::Neutral) {
                    return self.sequence(pos, e);
                }
                if let Some(refused) = self.auth_required(pos) {
                    return refused;
                }
                self.state = State::Decision(Pending::Vrfy);
                Ok(Step::event(pos, ServerEvent::Vrfy(text)))
            }
            Command::Expn(text) => {
                if let Err(e) = self.phase.check(CommandKind::Neutral) {
                    return self.sequence(pos, e);
                }
                if let Some(refused) = self.auth_required(pos) {
                    return refused;
                }
                self.state = State::Decision(Pending::Expn);
                Ok(Step::event(pos, ServerEvent::Expn(text)))
            }
            Command::StartTls => {
                // Checked first, so a session on implicit TLS that does not
                // offer STARTTLS still says why it cannot start.
                if self.tls {
                    return self.machine_reject(
                        pos,
                        rc(503),
                        esc(5, 5, 1),
                        "TLS already active",
                        Rejection::TlsAlreadyActive,
                        true,
                    );
                }
                if !self.config.starttls {
                    return self.not_implemented(pos, "STARTTLS");
                }
                if let Err(e) = self.phase.check(CommandKind::StartTls) {
                    return self.sequence(pos, e);
                }
                if !self.ehlo_session() {
                    return self.not_implemented(pos, "STARTTLS");
                }
                if !self.starttls_available {
                    // RFC 3207 §4: "454 TLS not available due to temporary
                    // reason". No handshake follows, so what the client
                    // pipelined after the line is read as commands. The
                    // server's own condition, not the client's error.
                    return self.machine_reject(
                        pos,
                        rc(454),
                        esc(4, 7, 0),
                        "TLS not available due to temporary reason",
                        Rejection::TlsNotAvailable,
                        false,
                    );
                }
                if pos < input.len() {
                    // CVE-2011-0411: nothing may follow STARTTLS before the
                    // handshake.
                    return Err(self.injection());
                }
                self.send(rc(220), esc(2, 0, 0), "Ready to start TLS");
                self.state = State::AwaitTls;
                self.phase = self.phase.after(CommandKind::StartTls);
                Ok(Step::event(pos, ServerEvent::StartTls))
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                if let Some(refused) = self.auth_out_of_place(pos) {
                    return refused;
                }
                let mech = SaslMechanism::from_mechanism(&mechanism)
                    .filter(|m| self.config.auth_mechanisms.contains(m))
                    .or_else(|| {
                        self.config.auth_mechanisms.iter().copied().find(
                            |m| matches!(m, SaslMechanism::Custom(c) if c.matches(&mechanism)),
                        )
                    });
                let Some(mech) = mech else {
                    return self.machine_reject(
                        pos,
                        rc(504),
                        esc(5, 5, 4),
                        "Unrecognized authentication type",
                        Rejection::UnsupportedMechanism,
                        true,
                    );
                };
                if !self.auth_offered() {
                    return self.machine_reject(
                        pos,
                        rc(538),
                        esc(5, 7, 11),
                        "Encryption required for requested authentication mechanism",
                        Rejection::AuthNeedsTls,
                        true,
                    );
                }
                let initial = match initial_response.map(|b| b.decode()) {
                    None => None,
                    Some(Ok(raw)) => Some(raw),
                    Some(Err(_)) => return self.auth_bad_base64(pos),
                };
                if let SaslMechanism::Custom(mechanism) = mech {
                    self.state = State::Decision(Pending::AuthExchange {
                        mechanism,
                        round: 0,
                    });
                    return Ok(Step::event(
                        pos,
                        ServerEvent::AuthExchange {
                            mechanism,
                            response: initial.map(SecretBytes::new),
                            round: 0,
                        },
                    ));
                }
                let mut sasl = SaslServer::new(mech);
                let step = sasl.start(initial.as_deref());
                self.sasl_step(pos, sasl, step)
            }
            Command::Etrn(_) => self.not_implemented(pos, "ETRN"),
            Command::Unknown { verb, args } => match recognized_unimplemented(verb.as_str()) {
                Some(verb) => self.not_implemented(pos, verb),
                // The verb is kept for logging only when it cannot be a
                // SASL response sent where a command was expected.
                None if loggable_verb(verb.as_str(), args.is_some()) => {
                    self.unknown(pos, verb.as_str())
                }
                None => self.unknown(pos, Rejection::REDACTED),
            },
        }
    }

    /// The refusal of an AUTH command whatever its arguments: `502` when
    /// this session offers no AUTH (none configured, or no EHLO or LHLO),
    /// `503` before the greeting is answered, inside a mail transaction or
    /// after a successful AUTH (RFC 4954 §4); `None` when AUTH may come now.
    fn auth_out_of_place<'a>(&mut self, pos: usize) -> Option<Handled<'a>> {
        let phase = self.phase.check(CommandKind::Auth);
        if self.config.auth_mechanisms.is_empty() || !self.ehlo_session() {
            return Some(match phase {
                Err(e) => self.sequence(pos, e),
                Ok(()) => self.not_implemented(pos, "AUTH"),
            });
        }
        if let Err(e) = phase {
            return Some(self.sequence(pos, e));
        }
        if self.authenticated {
            return Some(self.machine_reject(
                pos,
                rc(503),
                esc(5, 5, 1),
                "Already authenticated",
                Rejection::AlreadyAuthenticated,
                true,
            ));
        }
        None
    }

    /// The HELP reply: the commands this session takes now. LMTP takes
    /// LHLO alone (RFC 2033 §4.1, EHLO and HELO get 500); BDAT needs
    /// CHUNKING and an EHLO or LHLO session (502 otherwise).
    fn help_text(&self) -> &'static str {
        let bdat = self.config.chunking && self.hello != Some(HelloKind::Helo);
        match (self.config.lmtp, bdat) {
            (true, true) => "See RFC 2033: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN",
            (true, false) => "See RFC 2033: LHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN",
            (false, true) => {
                "See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN"
            }
            (false, false) => {
                "See RFC 5321: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN"
            }
        }
    }

    fn hello<'a>(
        &mut self,
        pos: usize,
        kind: HelloKind,
        domain: crate::command::Domain<'a>,
    ) -> Step<ServerEvent<'a>> {
        // The transaction is reset once the application accepts the
        // greeting (see `accept`).
        self.state = State::Decision(Pending::Hello(kind));
        Step::event(pos, ServerEvent::Hello { kind, domain })
    }

    /// BDAT: the chunk is always read, even when the command is refused
    /// (RFC 3030 §2), so its bytes are never taken for commands.
    ///
    /// A refused chunk ends the transaction. RFC 3030 §2: "If a 5XX or 4XX
    /// code is received by the sender-SMTP in response to a BDAT chunk, the
    /// transaction should be considered failed [...]. If the
    /// receiver-SMTP has declined the transaction, it MUST reply with a
    /// failure code to any BDAT commands that the sender-SMTP pipelines."
    /// Later chunks then meet no transaction and get 503, and no message
    /// with a chunk missing can be completed.
    fn bdat<'a>(&mut self, pos: usize, size: u64, last: bool) -> Handled<'a> {
        let kind = if last {
            CommandKind::BdatLast
        } else {
            CommandKind::Bdat
        };
        let refusal = if !self.config.chunking || self.hello == Some(HelloKind::Helo) {
            Some(Refusal {
                code: rc(502),
                enhanced: esc(5, 5, 1),
                text: "Command not implemented",
                reason: RefusalReason::NotImplemented,
            })
        } else {
            match self.phase.check(kind) {
                Err(e) => Some(Refusal {
                    code: self.sequence_code(e),
                    enhanced: e.enhanced_code(),
                    text: match e {
                        SequenceError::NoRecipients => "No valid recipients",
                        SequenceError::NeedHello if self.config.lmtp => "Send LHLO first",
                        SequenceError::NeedHello => "Send EHLO first",
                        _ => "Bad sequence of commands",
                    },
                    reason: RefusalReason::Sequence(e),
                }),
                Ok(()) => {
                    let total = self.txn.size.saturating_add(size);
                    if self.config.max_message_size.is_some_and(|max| total > max) {
                        Some(Refusal {
                            code: rc(552),
                            enhanced: esc(5, 3, 4),
                            text: "Message size exceeds fixed maximum message size",
                            reason: RefusalReason::TooLarge,
                        })
                    } else {
                        None
                    }
                }
            }
        };
        let first = !self.txn.chunked;
        let replies = match refusal {
            Some(Refusal {
                reason: RefusalReason::TooLarge,
                ..
            }) if last => self.message_replies(),
            Some(Refusal {
                reason: RefusalReason::Sequence(e),
                ..
            }) if last => self.bdat_last_replies(e),
            _ => 1,
        };
        match refusal {
            None => {
                self.txn.size = self.txn.size.saturating_add(size);
                self.txn.chunked = true;
                self.phase = Phase::Bdat;
            }
            // Whatever the reason, the transaction is over (RFC 3030 §2).
            Some(_) => self.decline_transaction(),
        }
        if last {
            // The BDAT LAST ends what a refused chunk declined.
            self.declined_with_recipients = false;
        }
        self.state = State::Bdat {
            reader: ChunkReader::new(size),
            size,
            last,
            refusal,
            replies,
        };
        if refusal.is_none() && first {
            return Ok(Step::event(
                pos,
                ServerEvent::MessageStart { chunked: true },
            ));
        }
        // No event: the caller's loop goes on with the chunk's bytes.
        Ok(Step::need_input(pos))
    }

    /// A BDAT command line that did not parse: a wrong end marker (`BDAT
    /// 100 NOW`), a missing or malformed size, or a line the codec refused
    /// before its verb was parsed (a NUL octet, invalid UTF-8, a bare CR or
    /// LF). Its client sends the chunk right after it all the same, so
    /// when the chunk size can be read the chunk is read and dropped
    /// before the error is answered, and its bytes are never taken for
    /// commands (else they could smuggle commands past a front end that
    /// saw a chunk). As for any refused chunk, the transaction ends (RFC
    /// 3030 §2, see `bdat`).
    ///
    /// The session answers and closes rather than guess when where the
    /// chunk lies is unknown: when the size cannot be read, when the line
    /// holds a bare CR or LF, and when the line is a BDAT command only to
    /// a peer that splits commands at any blank (see [`is_bdat_line`]).
    /// Peers disagree on where a line with a bare CR or LF ends (some end
    /// it at the bare LF), so they disagree on where its chunk starts; RFC
    /// 5321 §2.3.8 lets CR and LF appear only together as the line's CRLF.
    fn bad_bdat<'a>(&mut self, pos: usize, line: &[u8], e: &CommandError) -> Handled<'a> {
        if has_bare_line_ending(line) {
            self.send(
                rc(500),
                esc(5, 5, 2),
                "Bare CR or LF in BDAT command line, closing",
            );
            self.close();
            return Err(RemoteError::BdatBareLineEnding.into());
        }
        let text = match e {
            CommandError::InvalidArgument { reason, .. } => Some(*reason),
            CommandError::NulOctet => Some("NUL octet in command line"),
            CommandError::InvalidUtf8 => Some("command line is not valid UTF-8"),
            _ => None,
        };
        match (bdat_line_chunk_size(line), text) {
            (Some(size), Some(text)) => {
                // A refused chunk ends the transaction, as in `bdat`.
                self.decline_transaction();
                self.state = State::Bdat {
                    reader: ChunkReader::new(size),
                    size,
                    last: false,
                    refusal: Some(Refusal {
                        code: e.reply_code(),
                        enhanced: e.enhanced_code(),
                        text,
                        reason: RefusalReason::Syntax(*e),
                    }),
                    replies: 1,
                };
                // No event: the caller's loop goes on with the chunk's bytes.
                Ok(Step::need_input(pos))
            }
            _ => {
                self.send(rc(501), esc(5, 5, 4), "Unreadable BDAT chunk size, closing");
                self.close();
                Err(RemoteError::UnreadableChunkSize.into())
            }
        }
    }

    /// An AUTH command line or a SASL response line over
    /// [`ServerConfig::max_auth_line_length`], thrown away to its end:
    /// RFC 4954 §6, "500 5.5.6 Authentication Exchange line is too long".
    fn auth_line_too_long<'a>(&mut self, pos: usize) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(500),
            esc(5, 5, 6),
            "Authentication exchange line is too long",
            Rejection::AuthLineTooLong,
            true,
        )
    }

    fn auth_bad_base64<'a>(&mut self, pos: usize) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(501),
            esc(5, 5, 2),
            "Cannot Base64-decode client response",
            Rejection::AuthBadBase64,
            true,
        )
    }

    fn sasl_step<'a>(
        &mut self,
        pos: usize,
        sasl: SaslServer,
        step: Result<SaslStep, crate::sasl::SaslError>,
    ) -> Handled<'a> {
        match step {
            Ok(SaslStep::Challenge(c)) => {
                self.write_challenge(c);
                self.state = State::Sasl {
                    run: SaslRun::BuiltIn(sasl),
                    framer: self.decoder.line_framer(),
                };
                Ok(Step::need_input(pos))
            }
            Ok(SaslStep::Done(creds)) => {
                self.claimed_identity = password_identity(&creds);
                self.state = State::Decision(Pending::Auth(sasl.mechanism()));
                Ok(Step::event(pos, ServerEvent::Auth(creds)))
            }
            Err(e) => {
                self.state = State::Command;
                self.machine_reject(
                    pos,
                    rc(501),
                    esc(5, 5, 2),
                    "Malformed authentication response",
                    Rejection::AuthMalformed(e),
                    true,
                )
            }
        }
    }

    /// A verb the session does not know: `500 5.5.2`. RFC 3463 §3.6 gives
    /// X.5.2 "Syntax error" to a command that "could not be interpreted,
    /// either because the syntax was wrong or the command is
    /// unrecognized", and keeps X.5.1 "Invalid command" for one "out of
    /// sequence or unsupported" (the 503s and 502s); a line whose verb is
    /// malformed gets the same `500 5.5.2` ([`CommandError::InvalidVerb`]).
    fn unknown<'a>(&mut self, pos: usize, verb: &str) -> Handled<'a> {
        self.machine_reject(
            pos,
            rc(500),
            esc(5, 5, 2),
            "Command unrecognized",
            Rejection::UnknownCommand(verb.to_owned()),
            true,
        )
    }

    /// Reads one SASL response line. `Ok(None)` means keep going.
    fn sasl_input<'a>(
        &mut self,
        input: &'a [u8],
        pos: &mut usize,
    ) -> Result<Option<Step<ServerEvent<'a>>>, Error> {
        let max = self.config.max_auth_line_length;
        let State::Sasl { framer, .. } = &mut self.state else {
            return Ok(None);
        };
        let rest = &input[*pos..];
        match framer.next_frame(rest, max) {
            Frame::Incomplete => Ok(Some(Step::need_input(*pos))),
            Frame::Discarded { consumed, end } => {
                *pos += consumed;
                if !end {
                    return Ok(Some(Step::need_input(*pos)));
                }
                self.state = State::Command;
                self.auth_line_too_long(*pos).map(Some)
            }
            Frame::Line(line) => {
                *pos += line.consumed;
                let content = &rest[..line.content_len];
                let State::Sasl { run, .. } = core::mem::replace(&mut self.state, State::Command)
                else {
                    return Ok(None);
                };
                if content == b"*" {
                    return self
                        .machine_reject(
                            *pos,
                            rc(501),
                            esc(5, 0, 0),
                            "Authentication cancelled",
                            Rejection::AuthCancelled,
                            true,
                        )
                        .map(Some);
                }
                let decoded = if line.bare_line_ending() {
                    None
                } else {
                    base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .ok()
                };
                let Some(raw) = decoded else {
                    return self.auth_bad_base64(*pos).map(Some);
                };
                let mut sasl = match run {
                    SaslRun::BuiltIn(sasl) => sasl,
                    SaslRun::App { mechanism, round } => {
                        self.state = State::Decision(Pending::AuthExchange { mechanism, round });
                        return Ok(Some(Step::event(
                            *pos,
                            ServerEvent::AuthExchange {
                                mechanism,
                                response: Some(SecretBytes::new(raw)),
                                round,
                            },
                        )));
                    }
                };
                let step = sasl.respond(&raw);
                let result = self.sasl_step(*pos, sasl, step)?;
                if matches!(result.outcome, Outcome::NeedInput) {
                    // Another challenge was sent; read its answer.
                    return Ok(None);
                }
                Ok(Some(result))
            }
        }
    }
}

/// Commands of the SMTP specifications this session knows but does not
/// implement, so they get 502, not the 500 of a verb it does not know (RFC
/// 5321 §4.2.4: "502 SHOULD be used when the command is actually recognized
/// by the SMTP server, but not implemented. If the command is not
/// recognized, code 500 SHOULD be returned"; §4.2.1: "The reply is 502
/// when the command requests an unimplemented non-site-specific action"):
///
/// - `TURN` (RFC 821 §3.8: "To refuse to change roles the receiver sends
///   the 502 reply"; deprecated by RFC 5321 Appendix F.1);
/// - `SEND`, `SOML` and `SAML` (RFC 821 §3.4; RFC 5321 Appendix F.6:
///   "Servers MAY implement them", and then must list them in the EHLO
///   reply, which this session never does);
/// - `ATRN` (RFC 2645, On-Demand Mail Relay), an extension command like
///   `ETRN`, which gets 502 as well.
///
/// None of them is advertised, as RFC 5321 §4.2.4 requires of a command
/// answered with 502.
const RECOGNIZED_UNIMPLEMENTED: [&str; 5] = ["TURN", "SEND", "SOML", "SAML", "ATRN"];

/// The name of `verb` in [`RECOGNIZED_UNIMPLEMENTED`], in any case.
fn recognized_unimplemented(verb: &str) -> Option<&'static str> {
    RECOGNIZED_UNIMPLEMENTED
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(verb))
}

/// True when `e` refuses the syntax of a HELO or EHLO line, or, in LMTP
/// (`lmtp`), of an LHLO line: the replies RFC 2034 §3 leaves without an
/// enhanced code. In SMTP, LHLO is a command like any other.
fn is_hello_error(e: &CommandError, lmtp: bool) -> bool {
    match syntax_error_verb(e) {
        Some(verb) => matches!(verb, "EHLO" | "HELO") || (lmtp && verb == "LHLO"),
        None => false,
    }
}

/// The verb whose arguments `e` refuses, when it refuses a command's
/// arguments (not the line or the verb).
fn syntax_error_verb(e: &CommandError) -> Option<&'static str> {
    match e {
        CommandError::MissingArgument { verb }
        | CommandError::UnexpectedArgument { verb }
        | CommandError::InvalidArgument { verb, .. } => Some(*verb),
        _ => None,
    }
}

/// True when `e` refuses the arguments of an AUTH command line: its
/// verb was read, so the line is an AUTH command all the same.
fn is_auth_syntax_error(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::InvalidInitialResponse
            | CommandError::MissingArgument { verb: "AUTH" }
            | CommandError::InvalidArgument { verb: "AUTH", .. }
            | CommandError::UnexpectedArgument { verb: "AUTH" }
    )
}

/// The octets a peer that splits command lines at any white space (C's
/// `isspace`, as Postfix's command tokenizer does) takes for a blank,
/// but for CR and LF: space, tab, vertical tab and form feed.
fn is_blank(octet: u8) -> bool {
    matches!(octet, b' ' | b'\t' | 0x0b | 0x0c)
}

/// True when `line` is a BDAT command line as far as its first octets
/// tell, to this session or to a peer that splits command lines at any
/// blank ([`is_blank`]): after any blanks, the verb in any case, then a
/// blank. The codec refuses a line with a NUL, a non-UTF-8 octet or a
/// bare CR or LF before it looks at the verb; such a BDAT line is still
/// followed by its chunk. A line with a tab, vertical tab or form feed
/// after the verb, or blanks before it, is refused as an invalid verb here
/// but followed by a chunk for such a peer: where the next command starts
/// is then unknown ([`bdat_line_chunk_size`] does not read its size).
fn is_bdat_line(line: &[u8]) -> bool {
    let start = line
        .iter()
        .position(|&c| !is_blank(c))
        .unwrap_or(line.len());
    matches!(line.get(start..), Some([b, d, a, t, sep, ..])
        if is_blank(*sep) && [*b, *d, *a, *t].eq_ignore_ascii_case(b"BDAT"))
}

/// True when `line` starts with the BDAT verb and a space, as RFC 3030 §4
/// writes the command (`"BDAT" SP chunk-size`).
fn starts_with_bdat_verb(line: &[u8]) -> bool {
    matches!(line, [b, d, a, t, b' ', ..] if [*b, *d, *a, *t].eq_ignore_ascii_case(b"BDAT"))
}

/// The content of a command line without its line ending.
fn line_content(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line)
}

/// True when a CR or LF stands alone in `line`, its ending aside.
fn has_bare_line_ending(line: &[u8]) -> bool {
    memchr::memchr2(b'\r', b'\n', line_content(line)).is_some()
}

/// The chunk size a BDAT command line names (see [`is_bdat_line`]), read
/// as far as it goes, whatever follows it; `None` when it cannot be read,
/// when the line holds a bare CR or LF, so that where its chunk starts is
/// unknown, or when the line does not start with the verb and a space
/// (peers disagree on whether a chunk follows such a line at all).
fn bdat_line_chunk_size(line: &[u8]) -> Option<u64> {
    if has_bare_line_ending(line) || !starts_with_bdat_verb(line) {
        return None;
    }
    // After the four letters of the verb and the spaces that follow.
    let mut args = line_content(line).get(4..).unwrap_or_default();
    while let [b' ', rest @ ..] = args {
        args = rest;
    }
    read_chunk_size(args).map(|(size, _)| size)
}

/// True for a sequence error a pipelining client meets in the normal course
/// of things: commands sent after MAIL, or every RCPT, failed, before their
/// replies arrived (RFC 2920 §3.1).
fn pipelined_sequence_error(config: &ServerConfig, e: SequenceError) -> bool {
    config.pipelining && matches!(e, SequenceError::NeedMail | SequenceError::NoRecipients)
}

/// The user name a password was checked for, for [`ServerSession::auth_identity`]
/// when built-in credentials are accepted without an identity: PLAIN's
/// `authcid` (never its `authzid`, which is only a claim) and LOGIN's user
/// name. Token mechanisms give none.
fn password_identity(creds: &Credentials) -> Option<String> {
    match creds {
        Credentials::Plain { authcid, .. } => Some(authcid.clone()),
        Credentials::Login { username, .. } => Some(username.clone()),
        _ => None,
    }
}
