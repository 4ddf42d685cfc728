//! One message to its recipients, decided from the client machine's
//! events: [`Delivery`] and the [`DeliveryReport`] it ends with.
//!
//! [`Delivery`] makes the calls a mail sender makes after each
//! [`ClientEvent`]: AUTH after [`ClientEvent::Ready`] when it has
//! credentials, then MAIL / RCPT / DATA (or BDAT) for as many recipients
//! as one transaction may carry under the server's `LIMITS` (RFC 9422),
//! again for the rest, and QUIT at the end. It records for every recipient
//! what became of the message, and the reply that decided it, so that an
//! MTA knows whom to bounce, whom to retry and whom the message reached.

use core::fmt;

use super::auth::AuthCredentials;
use super::config::TlsPolicy;
use super::envelope::{fitting, Envelope, Recipient};
use super::event::{ClientError, ClientEvent, FailedAuth, Refusal, ReplyLine, UsageError, Verdict};
use super::machine::Client;
use super::responder::{Responder, SaslAnswer, SaslResponder};
use crate::command::Orcpt;
use crate::reply::{Extension, OwnedReply, Reply};
use crate::session::Phase;
use crate::status::ReplyCode;

/// Which part of a transaction decided a recipient's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The reply to `MAIL FROM` (a refused sender decides for every
    /// recipient of the transaction).
    Mail,
    /// The reply to this recipient's `RCPT TO`.
    Rcpt,
    /// The reply to `DATA` or to a BDAT chunk that is not the last (also
    /// when PIPELINING sent the last chunk before that reply came).
    Data,
    /// The reply after the whole message was sent (the one to the final
    /// `.` or to `BDAT ... LAST`; in LMTP, this recipient's reply).
    EndOfData,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Mail => "MAIL",
            Stage::Rcpt => "RCPT",
            Stage::Data => "DATA",
            Stage::EndOfData => "end of data",
        })
    }
}

/// Why no transaction was tried for a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotAttempted {
    /// The server's `LIMITS MAILMAX` (RFC 9422 §4.1) was reached on this
    /// connection: send to this recipient over another one.
    TransactionLimit {
        /// The server's `MAILMAX`.
        limit: u32,
    },
    /// An earlier transaction's `MAIL FROM` was refused with a 5yz, and
    /// RFC 5321 §4.2.1 says the client "SHOULD NOT repeat the exact
    /// request": this recipient's transaction would have sent the same
    /// MAIL. The earlier transaction is this delivery's, or, on a session
    /// kept for several messages, an earlier message's with the same
    /// reverse path and parameters ([`Client::mail_refusal`]).
    SenderRefused {
        /// The refusal of MAIL.
        reply: OwnedReply,
    },
    /// The server closed the session with a `421` (RFC 5321 §3.8) before
    /// this recipient's transaction.
    ServiceClosing {
        /// The 421 reply.
        reply: OwnedReply,
    },
    /// Authentication failed, so nothing was sent: this delivery's AUTH
    /// ([`Delivery::with_auth`]), or, for a delivery without credentials
    /// of its own on a session kept for several messages, the session's
    /// last AUTH, when none succeeded since ([`Client::failed_auth`]).
    AuthFailed {
        /// The refusal of AUTH.
        reply: OwnedReply,
    },
    /// Authentication could not start: no mechanism both sides support,
    /// or the connection is not encrypted (see [`UsageError`]). As for
    /// [`NotAttempted::AuthFailed`], the AUTH is this delivery's or the
    /// session's last one.
    AuthUnavailable(UsageError),
    /// The server refused the session: its greeting, or EHLO and HELO
    /// (or LHLO).
    SessionRefused {
        /// The greeting or the refusal of the hello.
        reply: OwnedReply,
    },
    /// The configuration requires TLS ([`TlsPolicy::Required`]) and the
    /// server does not offer STARTTLS or refused it; or the message
    /// requires TLS ([`Envelope::require_tls`], REQUIRETLS, RFC 8689) and
    /// the server refused STARTTLS with a 4yz (`454`, "TLS not available
    /// due to temporary reason", RFC 3207 §4), so the session went on in
    /// plain text: TLS may be available later, and the message is to be
    /// sent again then, not bounced.
    TlsUnavailable {
        /// The refusal of STARTTLS, if it was sent.
        reply: Option<OwnedReply>,
    },
    /// The client refused the message for this server before sending
    /// anything: it needs an extension the server lacks (8BITMIME,
    /// SMTPUTF8, REQUIRETLS, ...) or is above its SIZE.
    Refused(Refusal),
    /// The connection ended (an IO error, a timeout, a reply that broke
    /// the protocol) before the whole message was sent for this
    /// recipient. The server cannot have taken it: send it again.
    ConnectionLost,
    /// The transaction ended with no reply that decided this recipient.
    /// The client machine always decides every recipient of a transaction
    /// it ends; this is kept for completeness.
    Unanswered,
    /// The session was already over when the delivery was started on it
    /// ([`Delivery::start`] on a closed [`Client`]: after QUIT, a `421`
    /// or an error). Nothing was sent: send the message over another
    /// connection.
    SessionClosed,
}

impl NotAttempted {
    /// True when sending again to this server will fail the same way: the
    /// sender was refused with a 5yz, or the message needs what the server
    /// lacks. The others may succeed later or over another connection.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            NotAttempted::SenderRefused { .. }
                | NotAttempted::Refused(
                    Refusal::EightBitMime
                        | Refusal::BinaryMime
                        | Refusal::SmtpUtf8
                        | Refusal::RequireTls
                        | Refusal::TooLarge { .. }
                )
        )
    }
}

impl fmt::Display for NotAttempted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAttempted::TransactionLimit { limit } => {
                write!(f, "{}", Refusal::TransactionLimit { limit: *limit })
            }
            NotAttempted::SenderRefused { reply } => {
                write!(f, "the server refused the sender: {}", ReplyLine(reply))
            }
            NotAttempted::ServiceClosing { reply } => {
                write!(f, "the server closed the session: {}", ReplyLine(reply))
            }
            NotAttempted::AuthFailed { reply } => {
                write!(f, "authentication failed: {}", ReplyLine(reply))
            }
            NotAttempted::AuthUnavailable(e) => write!(f, "authentication unavailable: {e}"),
            NotAttempted::SessionRefused { reply } => {
                write!(f, "the server refused the session: {}", ReplyLine(reply))
            }
            NotAttempted::TlsUnavailable { reply: Some(reply) } => {
                write!(f, "TLS is required but unavailable: {}", ReplyLine(reply))
            }
            NotAttempted::TlsUnavailable { reply: None } => {
                f.write_str("TLS is required but the server does not offer STARTTLS")
            }
            NotAttempted::Refused(r) => write!(f, "{r}"),
            NotAttempted::ConnectionLost => {
                f.write_str("the connection ended before the message was sent")
            }
            NotAttempted::Unanswered => f.write_str("the transaction ended without a reply"),
            NotAttempted::SessionClosed => {
                f.write_str("the session was over before the delivery started")
            }
        }
    }
}

/// What became of the message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecipientOutcome {
    /// The server took responsibility for the message (RFC 5321 §6.1).
    Delivered {
        /// The reply after the message (its text usually carries the
        /// queue id).
        reply: OwnedReply,
    },
    /// Refused with a 5yz: bounce.
    PermanentFailure {
        /// The command the reply answered.
        stage: Stage,
        /// The refusal, to quote in the bounce.
        reply: OwnedReply,
    },
    /// Refused with a 4yz (a `421` that cut the transaction short
    /// included): retry later.
    TemporaryFailure {
        /// The command the reply answered (for a `421`: where the
        /// transaction stood for this recipient).
        stage: Stage,
        /// The refusal.
        reply: OwnedReply,
    },
    /// No transaction carried the message to this recipient.
    NotAttempted {
        /// Why.
        reason: NotAttempted,
    },
    /// The whole message was sent, and the connection ended before the
    /// server's reply to it (RFC 5321 §6.1, RFC 1047): the server may have
    /// taken it or not. The caller decides; sending again (usually right)
    /// risks a duplicate.
    Unknown,
}

impl RecipientOutcome {
    /// True for [`RecipientOutcome::Delivered`].
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self, RecipientOutcome::Delivered { .. })
    }

    /// True when the message must be bounced for this recipient: a 5yz,
    /// or a reason not to try that sending again will not change (see
    /// [`NotAttempted::is_permanent`]).
    #[must_use]
    pub fn is_permanent_failure(&self) -> bool {
        match self {
            RecipientOutcome::PermanentFailure { .. } => true,
            RecipientOutcome::NotAttempted { reason } => reason.is_permanent(),
            _ => false,
        }
    }

    /// True when the message should be sent to this recipient again later
    /// (a 4yz, or no attempt for a reason that may pass). Not for
    /// [`RecipientOutcome::Unknown`], which the caller decides.
    #[must_use]
    pub fn is_retry(&self) -> bool {
        match self {
            RecipientOutcome::TemporaryFailure { .. } => true,
            RecipientOutcome::NotAttempted { reason } => !reason.is_permanent(),
            _ => false,
        }
    }

    /// The reply that decided this outcome, if one did.
    #[must_use]
    pub fn reply(&self) -> Option<&OwnedReply> {
        match self {
            RecipientOutcome::Delivered { reply }
            | RecipientOutcome::PermanentFailure { reply, .. }
            | RecipientOutcome::TemporaryFailure { reply, .. } => Some(reply),
            RecipientOutcome::NotAttempted { reason } => match reason {
                NotAttempted::SenderRefused { reply }
                | NotAttempted::ServiceClosing { reply }
                | NotAttempted::AuthFailed { reply }
                | NotAttempted::SessionRefused { reply } => Some(reply),
                NotAttempted::TlsUnavailable { reply } => reply.as_ref(),
                _ => None,
            },
            RecipientOutcome::Unknown => None,
        }
    }
}

/// One recipient of a [`DeliveryReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecipientReport {
    /// The recipient, as in the envelope.
    pub recipient: Recipient<'static>,
    /// What became of the message for it.
    pub outcome: RecipientOutcome,
}

/// What [`Delivery::finish`] returns: one entry per recipient, in the
/// envelope's order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Every recipient and its outcome, in the envelope's order.
    pub recipients: Vec<RecipientReport>,
    /// The transactions started (MAIL commands sent).
    pub transactions: usize,
    /// The error the run ended with, as text, if it failed.
    pub error: Option<String>,
}

impl DeliveryReport {
    /// True when the envelope had recipients and the message reached
    /// every one of them.
    #[must_use]
    pub fn all_delivered(&self) -> bool {
        !self.recipients.is_empty() && self.recipients.iter().all(|r| r.outcome.is_delivered())
    }

    /// The recipients the message reached.
    pub fn delivered(&self) -> impl Iterator<Item = &RecipientReport> + '_ {
        self.recipients.iter().filter(|r| r.outcome.is_delivered())
    }

    /// The recipients to bounce (see
    /// [`RecipientOutcome::is_permanent_failure`]).
    pub fn permanent_failures(&self) -> impl Iterator<Item = &RecipientReport> + '_ {
        self.recipients
            .iter()
            .filter(|r| r.outcome.is_permanent_failure())
    }

    /// The recipients to send to again later (see
    /// [`RecipientOutcome::is_retry`]).
    pub fn to_retry(&self) -> impl Iterator<Item = &RecipientReport> + '_ {
        self.recipients.iter().filter(|r| r.outcome.is_retry())
    }

    /// The recipients whose outcome is [`RecipientOutcome::Unknown`]: the
    /// message may have reached them.
    pub fn unknown(&self) -> impl Iterator<Item = &RecipientReport> + '_ {
        self.recipients
            .iter()
            .filter(|r| r.outcome == RecipientOutcome::Unknown)
    }
}

/// A run of a [`Delivery`] that failed, with its report all the same:
/// which recipients have the message, which do not, and which are
/// [`RecipientOutcome::Unknown`] because the connection broke after the
/// message was sent and before the server's reply to it. The adapters'
/// `send` functions return it with their run errors.
///
/// An error after every recipient was decided (a server that closes
/// without answering QUIT) leaves the report as it was: the report
/// decides what to do with the message, the error is for the log.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct SendFailure<E: std::error::Error + 'static> {
    /// How the run ended.
    #[source]
    pub error: E,
    /// The outcome for each recipient, with [`DeliveryReport::error`] set
    /// to `error`'s text.
    pub report: DeliveryReport,
}

/// Where one recipient stands during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// No reply decided it yet (and RCPT was not accepted).
    Pending,
    /// RCPT accepted; the message's fate is not known yet.
    Accepted,
    /// RCPT refused with "too many recipients" (the reply): sent again in
    /// the next transaction, or [`RecipientOutcome::TemporaryFailure`]
    /// when there is none.
    Deferred(OwnedReply),
    Done(RecipientOutcome),
}

/// Sends one message to the recipients of one envelope over one
/// connection, deciding every call from the client machine's events.
///
/// Hand it every [`ClientEvent`] with [`Delivery::on_event`]. After
/// [`ClientEvent::Ready`] (or the [`ClientEvent::Noop`] of a NOOP the
/// application sent first) it authenticates (when given credentials), then
/// starts a transaction for as many recipients, from the first, as the
/// server's `LIMITS RCPTMAX` and `RCPTDOMAINMAX` allow in one (RFC 9422;
/// see [`Envelope::split_to_fit`]), and after each
/// [`ClientEvent::TransactionEnd`] the next one, until every recipient had
/// one; then it sends QUIT. It stops early, leaving the recipients without
/// a transaction [`RecipientOutcome::NotAttempted`] with the reason, and
/// sends QUIT when the session is still usable:
///
/// * the server's `MAILMAX` is reached ([`NotAttempted::TransactionLimit`]);
/// * a MAIL refused with a 5yz, which must not be repeated
///   ([`NotAttempted::SenderRefused`]); a 4yz is tried again for the next
///   transaction;
/// * a `421` ([`NotAttempted::ServiceClosing`]), a failed AUTH, a refused
///   greeting or hello, a required TLS that is not available, or a message
///   the client refuses to send to this server ([`Refusal`]).
///
/// A server without `LIMITS` may take fewer recipients in a transaction
/// than it was given, and refuse the others as too many: a `452` to their
/// RCPT (without an enhanced code, or with `X.5.3`), or a `552 X.5.3`,
/// which RFC 821 used. RFC 5321 §4.5.3.1.10 has the client send those in
/// a following transaction, and so the delivery does, over the same
/// session, once the message went to the ones accepted: the next
/// transaction carries them first, in envelope order, then the recipients
/// no transaction carried yet, as many as `LIMITS` allow
/// ([`Delivery::current_transaction`]). Each recipient has one entry in
/// the report all the same, in the envelope's order, with the outcome of
/// its last transaction. The retrying ends, and those recipients are
/// [`RecipientOutcome::TemporaryFailure`] with the refusal, when the
/// transaction accepted none of its recipients (the next one could fare no
/// better, so this cannot loop), when `MAILMAX` allows no more
/// transactions, or when the session ends (a `421`). A recipient refused
/// with any other 4yz is a [`RecipientOutcome::TemporaryFailure`] at once.
///
/// On a session kept for several messages ([`Delivery::keep_open`],
/// [`Delivery::start`]) it also starts no transaction, and sends nothing,
/// when the session says so:
///
/// * an AUTH of the session failed and none succeeded since
///   ([`Client::failed_auth`]), and this delivery has no credentials of
///   its own to try ([`NotAttempted::AuthFailed`],
///   [`NotAttempted::AuthUnavailable`]): MAIL without the authentication
///   the application asked for would be refused (`530`, RFC 4954 §6) as
///   if the recipients were bad. A session never asked to authenticate
///   sends MAIL without AUTH;
/// * the MAIL it would send, the same reverse path with the same
///   parameters, was refused with a 5yz earlier in the session
///   ([`Client::mail_refusal`], [`NotAttempted::SenderRefused`]).
///
/// The body is the caller's: at [`ClientEvent::SendBody`] pass it to the
/// machine, with [`Delivery::next_piece`] (which also tells the delivery
/// when the end of the message goes out) or with your own pieces and a
/// call to [`Delivery::body_ended`] before [`Client::end_body`]. That is
/// how, when the connection breaks after the end of the message and
/// before its reply, [`Delivery::finish`] reports
/// [`RecipientOutcome::Unknown`] rather than
/// [`NotAttempted::ConnectionLost`].
///
/// With [`Delivery::keep_open`] it ends without QUIT, leaving the client
/// idle, and the next message goes over the same session: start its
/// delivery with [`Delivery::start`] (RFC 5321 §3.3: any number of
/// transactions in one session; see the example there).
///
/// When the run is over, [`Delivery::finish`] gives the
/// [`DeliveryReport`]. The delivery holds at most one reply per recipient
/// (and one per transaction), so its memory is bounded by the envelope
/// and the machine's reply limits.
///
/// The challenges of a SASL mechanism the application runs itself
/// ([`AuthCredentials::Custom`], [`ClientEvent::AuthChallenge`]) go to the
/// [`SaslResponder`] given with [`Delivery::with_auth_responder`]; without
/// one, the delivery cancels the exchange. A cancelled exchange (by the
/// responder, or because its response is too long to send) is a failed
/// AUTH: nothing is sent and the recipients are
/// [`NotAttempted::AuthFailed`] with the server's reply to the `*`.
///
/// ```
/// use smtp_proto::client::{
///     Client, ClientConfig, ClientEvent, Delivery, Envelope, Outcome, RecipientOutcome, Stage,
///     TlsPolicy,
/// };
/// use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
///
/// let to = |s| ForwardPath::Mailbox(Mailbox::parse(s).unwrap());
/// let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net").unwrap()))
///     .recipient(to("bob@example.org"))
///     .recipient(to("nobody@example.org"));
/// let mut delivery = Delivery::new(envelope);
/// let message = b"Subject: hi\r\n\r\nhello\r\n";
///
/// // What the server says, as it arrives on the socket.
/// let mut server: std::collections::VecDeque<&[u8]> = [
///     &b"220 mx.example.org ESMTP\r\n"[..],
///     b"250-mx.example.org\r\n250 PIPELINING\r\n",
///     b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n",
///     b"250 2.0.0 Ok: queued as 4BXq3\r\n",
///     b"221 2.0.0 Bye\r\n",
/// ]
/// .into();
///
/// let config = ClientConfig::new(Domain::new("client.example.net").unwrap())
///     .with_tls(TlsPolicy::Off);
/// let mut client = Client::new(config);
/// let (mut inbuf, mut wire) = (Vec::new(), Vec::new());
/// for _ in 0..100 {
///     let step = client.handle_input(&inbuf).unwrap();
///     let consumed = step.consumed;
///     match step.outcome {
///         Outcome::Event(event) => {
///             delivery.on_event(&mut client, &event).unwrap();
///             // While the client wants body bytes: with BDAT to a server
///             // without PIPELINING each chunk waits for its reply, and
///             // `SendBody` comes again for the next one.
///             if event == ClientEvent::SendBody {
///                 while client.wants_body() {
///                     match delivery.next_piece(message, 64 * 1024) {
///                         Some(piece) => client.send_body(piece).unwrap(),
///                         None => client.end_body().unwrap(),
///                     }
///                 }
///             }
///         }
///         Outcome::NeedInput => match server.pop_front() {
///             Some(bytes) => inbuf.extend_from_slice(bytes),
///             None => break,
///         },
///         _ => break,
///     }
///     inbuf.drain(..consumed);
///     client.poll_transmit(&mut wire);
/// }
/// assert!(client.is_closed());
/// assert!(String::from_utf8(wire).unwrap().ends_with("\r\n.\r\nQUIT\r\n"));
///
/// let report = delivery.finish(None);
/// let RecipientOutcome::Delivered { reply } = &report.recipients[0].outcome else { panic!() };
/// assert_eq!(reply.text(), b"Ok: queued as 4BXq3");
/// let RecipientOutcome::PermanentFailure { stage, reply } = &report.recipients[1].outcome
/// else {
///     panic!()
/// };
/// assert_eq!((*stage, u16::from(reply.code())), (Stage::Rcpt, 550));
/// assert_eq!(report.permanent_failures().count(), 1);
/// assert!(!report.all_delivered());
/// ```
#[derive(Debug, Clone)]
pub struct Delivery {
    envelope: Envelope<'static>,
    auth: Option<AuthCredentials>,
    /// Answers the challenges of a custom mechanism.
    responder: Option<Responder>,
    slots: Vec<Slot>,
    /// The envelope indices of the recipients of the transaction under
    /// way, or of the last one, in envelope order.
    batch: Vec<usize>,
    /// The envelope index of the first recipient no transaction carried
    /// yet: the ones after it had none either.
    untried: usize,
    /// A transaction is under way.
    in_transaction: bool,
    /// Its MAIL was accepted.
    sender_accepted: bool,
    /// One of its RCPT was accepted.
    rcpt_accepted: bool,
    /// Its MAIL's refusal, kept until the transaction ends.
    sender_refusal: Option<OwnedReply>,
    /// The end of its message was handed to the machine.
    body_ended: bool,
    /// Octets of the message [`Delivery::next_piece`] gave out for it.
    body_offset: usize,
    /// The message needs SMTPUTF8 ([`Envelope::needs_smtputf8`] of the
    /// whole envelope): every transaction asks for it, whichever
    /// recipients it carries (RFC 6531 §3.4).
    smtputf8: bool,
    /// A recipient's ORCPT is in UTF-8 (RFC 6533 §3): where DSN is
    /// offered, and the ORCPT goes out, the message needs SMTPUTF8 too.
    utf8_orcpt: bool,
    transactions: usize,
    /// QUIT was asked for (or, kept open, no more calls are due), or the
    /// session ended on its own.
    stopped: bool,
    /// End without QUIT, the client left idle.
    keep_open: bool,
    /// Why the delivery stopped before every recipient had a transaction.
    stop_reason: Option<NotAttempted>,
    /// The server's `421`, when it ended the session.
    closing: Option<OwnedReply>,
}

impl From<Envelope<'static>> for Delivery {
    /// [`Delivery::new`].
    fn from(envelope: Envelope<'static>) -> Self {
        Delivery::new(envelope)
    }
}

fn owned(reply: &Reply<'_>) -> OwnedReply {
    reply.into_owned()
}

/// True for a refusal of RCPT that says the transaction has as many
/// recipients as the server takes (RFC 5321 §4.5.3.1.10): a `452` whose
/// enhanced code, if any, is `X.5.3` (RFC 3463 "too many recipients";
/// a `452 4.2.2` mailbox full or `4.3.1` out of storage is not it), or a
/// `552 X.5.3`, which RFC 821 gave this meaning.
fn too_many_recipients(reply: &Reply<'_>) -> bool {
    let code = reply.code();
    let esc = reply.enhanced_code();
    let too_many = esc.is_some_and(|e| e.subject() == 5 && e.detail() == 3);
    (code == ReplyCode::INSUFFICIENT_STORAGE && (esc.is_none() || too_many))
        || (code == ReplyCode::EXCEEDED_STORAGE && too_many)
}

/// A recipient refused with "too many recipients" that no transaction
/// will carry again keeps that refusal.
fn give_up(slot: &mut Slot) {
    if !matches!(slot, Slot::Deferred(_)) {
        return;
    }
    if let Slot::Deferred(reply) = core::mem::replace(slot, Slot::Pending) {
        *slot = Slot::Done(RecipientOutcome::TemporaryFailure {
            stage: Stage::Rcpt,
            reply,
        });
    }
}

impl Delivery {
    /// A delivery of one message to `envelope`'s recipients, in order.
    ///
    /// Set [`Envelope::size`] (and [`Envelope::body`] for 8-bit content):
    /// the delivery sends the envelope's parameters as they are. When
    /// `LIMITS` split the recipients over several transactions, each one
    /// asks for SMTPUTF8 if the whole message needs it (a UTF-8 address
    /// or ORCPT in any of them, RFC 6531 §3.4), so that every recipient
    /// has the outcome it would have unsplit.
    #[must_use]
    pub fn new(envelope: Envelope<'static>) -> Self {
        let slots = vec![Slot::Pending; envelope.recipients.len()];
        let smtputf8 = envelope.needs_smtputf8();
        let utf8_orcpt = envelope
            .recipients
            .iter()
            .any(|r| r.orcpt.as_ref().is_some_and(Orcpt::is_utf8));
        Self {
            envelope,
            auth: None,
            responder: None,
            slots,
            batch: Vec::new(),
            untried: 0,
            in_transaction: false,
            sender_accepted: false,
            rcpt_accepted: false,
            sender_refusal: None,
            body_ended: false,
            body_offset: 0,
            smtputf8,
            utf8_orcpt,
            transactions: 0,
            stopped: false,
            keep_open: false,
            stop_reason: None,
            closing: None,
        }
    }

    /// Ends the delivery without QUIT: once every recipient had its
    /// transaction (or the delivery stopped early for a reason that leaves
    /// the session usable: a refused sender, `MAILMAX`, a refused message,
    /// a failed AUTH), the client is left idle for the next delivery over
    /// the same connection ([`Delivery::start`]) or for [`Client::quit`].
    /// RFC 5321 §3.3 allows any number of transactions in one session.
    /// [`Delivery::is_finished`] tells when it is done.
    ///
    /// The machine still ends the session itself when the server refuses
    /// it (greeting, EHLO, a required TLS) or answers `421`. A kept-open
    /// delivery never ends a run of the adapters' `run` functions, which
    /// wait for the session's end: send it with their `Connection`.
    #[must_use]
    pub fn keep_open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// True when the delivery has no more calls to make: every recipient
    /// had its transaction, or it stopped early (see
    /// [`Delivery::stopped_by`]), and no transaction is under way. Without
    /// [`Delivery::keep_open`] the reply to its QUIT may still be due; with
    /// it, the client is idle (or closed, when the server ended the
    /// session) and the report is complete.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.stopped && !self.in_transaction
    }

    /// Why the delivery stopped before every recipient had a transaction
    /// (the reason given to those left [`RecipientOutcome::NotAttempted`]),
    /// or `None` while it did not. The server's `421` is such a reason
    /// even when it comes after every recipient had its transaction (then
    /// no recipient carries it), and so is [`Delivery::start`] on a closed
    /// client ([`NotAttempted::SessionClosed`]), recipients or not.
    #[must_use]
    pub fn stopped_by(&self) -> Option<&NotAttempted> {
        self.stop_reason.as_ref()
    }

    /// Why the session the delivery ran on is over, once `client` is
    /// closed (`None` while it is not): the server's `421`
    /// ([`NotAttempted::ServiceClosing`]) when it sent one, else the
    /// reason the delivery stopped ([`Delivery::stopped_by`]: a refused
    /// greeting or EHLO, TLS required and unavailable...), else
    /// [`NotAttempted::SessionClosed`] (QUIT). A session kept open for
    /// several messages gives this reason to the messages it can no longer
    /// carry; a failed connection is [`NotAttempted::ConnectionLost`]
    /// instead, which the caller knows from its IO.
    #[must_use]
    pub fn session_end(&self, client: &Client) -> Option<NotAttempted> {
        if !client.is_closed() {
            return None;
        }
        Some(match &self.closing {
            Some(reply) => NotAttempted::ServiceClosing {
                reply: reply.clone(),
            },
            None => self
                .stop_reason
                .clone()
                .unwrap_or(NotAttempted::SessionClosed),
        })
    }

    /// Starts the delivery on a client that is idle now: a session whose
    /// previous delivery was [`Delivery::keep_open`] and is finished.
    /// There is no event to wait for: this makes the first call (AUTH
    /// when given credentials and the client is not authenticated yet,
    /// else the first MAIL), and the delivery goes on from the events as
    /// after [`ClientEvent::Ready`]. (Sending `NOOP` with [`Client::noop`]
    /// first, to check a kept connection, and handing its
    /// [`ClientEvent::Noop`] to [`Delivery::on_event`] does the same.)
    ///
    /// On a closed client nothing is sent and every recipient is
    /// [`NotAttempted::SessionClosed`]; the delivery is finished. What
    /// the session learnt before holds: after a failed AUTH (none
    /// succeeded since), a delivery without credentials of its own sends
    /// nothing ([`NotAttempted::AuthFailed`]), nor one whose MAIL was
    /// refused with a 5yz before ([`NotAttempted::SenderRefused`]); see
    /// [`Delivery`].
    ///
    /// # Errors
    /// [`UsageError::NotIdle`] when the client is not idle (a transaction
    /// or a reply is under way), and the errors of [`Client::send_mail`]
    /// the delivery cannot turn into an outcome.
    ///
    /// Two messages over one session:
    ///
    /// ```
    /// use smtp_proto::client::{Client, ClientConfig, ClientEvent, Delivery, Envelope, Outcome, TlsPolicy};
    /// use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let envelope = |to: &str| -> Result<Envelope<'static>, Box<dyn std::error::Error>> {
    ///     Ok(Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net")?.into_owned()))
    ///         .recipient(ForwardPath::Mailbox(Mailbox::parse(to)?.into_owned())))
    /// };
    /// let config = ClientConfig::new(Domain::new("client.example.net")?).with_tls(TlsPolicy::Off);
    /// let mut client = Client::new(config);
    /// let mut input: &[u8] = b"220 mx ESMTP\r\n250 mx\r\n\
    ///     250 Ok\r\n250 Ok\r\n354 Go\r\n250 Ok: queued as A\r\n\
    ///     250 Ok\r\n250 Ok\r\n354 Go\r\n250 Ok: queued as B\r\n";
    /// let mut wire = Vec::new();
    /// // Each delivery runs until it is finished; the client stays idle.
    /// let mut reports = Vec::new();
    /// for (to, started) in [("bob@example.org", false), ("carol@example.org", true)] {
    ///     let mut delivery = Delivery::new(envelope(to)?).keep_open();
    ///     if started {
    ///         // The session is ready: no event to wait for.
    ///         delivery.start(&mut client)?;
    ///     }
    ///     while !delivery.is_finished() {
    ///         client.poll_transmit(&mut wire);
    ///         let step = client.handle_input(input)?;
    ///         input = &input[step.consumed..];
    ///         let Outcome::Event(event) = step.outcome else { panic!("{:?}", step.outcome) };
    ///         delivery.on_event(&mut client, &event)?;
    ///         if event == ClientEvent::SendBody {
    ///             while client.wants_body() {
    ///                 match delivery.next_piece(b"Hi\r\n", 1024) {
    ///                     Some(piece) => client.send_body(piece)?,
    ///                     None => client.end_body()?,
    ///                 }
    ///             }
    ///         }
    ///     }
    ///     reports.push(delivery.finish(None));
    /// }
    /// assert!(reports.iter().all(|r| r.all_delivered()));
    /// assert!(client.is_idle());
    /// let wire = String::from_utf8(wire)?;
    /// assert_eq!(wire.matches("MAIL FROM").count(), 2);
    /// assert!(!wire.contains("QUIT"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(&mut self, client: &mut Client) -> Result<(), ClientError> {
        if client.is_closed() {
            self.stop(&NotAttempted::SessionClosed);
            return Ok(());
        }
        self.next(client)
    }

    /// Gives up on a delivery that was not started (or stopped) and gives
    /// its report: every recipient no transaction carried yet is
    /// [`RecipientOutcome::NotAttempted`] for `reason`. For a connection
    /// known to be over (a `421` came, or it failed), so that the message
    /// is reported as not sent without trying. The recipients of a
    /// transaction under way, if any, are reported as by
    /// [`Delivery::finish`]: [`RecipientOutcome::Unknown`] once the whole
    /// message was sent to them, [`NotAttempted::ConnectionLost`] before;
    /// one refused as "too many recipients" and waiting for the next
    /// transaction keeps that refusal
    /// ([`RecipientOutcome::TemporaryFailure`]).
    #[must_use]
    pub fn abandon(mut self, reason: NotAttempted) -> DeliveryReport {
        self.stop(&reason);
        self.report(None)
    }

    /// Authenticates with `credentials` after [`ClientEvent::Ready`],
    /// before the first transaction. If AUTH fails, nothing is sent
    /// ([`NotAttempted::AuthFailed`]). On a session already authenticated
    /// the credentials are not used; on one whose last AUTH failed they
    /// are tried (and a delivery without them sends nothing there).
    #[must_use]
    pub fn with_auth(mut self, credentials: AuthCredentials) -> Self {
        self.auth = Some(credentials);
        self
    }

    /// Answers the challenges of the custom SASL mechanism of the
    /// credentials given with [`Delivery::with_auth`]
    /// ([`AuthCredentials::Custom`]) with `responder`: at each
    /// [`ClientEvent::AuthChallenge`] the delivery asks it for the answer
    /// and sends it with [`Client::auth_response`], or cancels the exchange
    /// with `*` ([`Client::cancel_auth`]) when it answers
    /// [`SaslAnswer::Cancel`] or a response too long for the line of
    /// RFC 4954 §4 ([`UsageError::ResponseTooLong`]). A cancelled exchange
    /// ends as a failed AUTH ([`NotAttempted::AuthFailed`], with the
    /// server's reply to the `*`), as does a refusal after the last
    /// response (a `535`). Built-in mechanisms (PLAIN, LOGIN, XOAUTH2,
    /// OAUTHBEARER) never ask it.
    ///
    /// The responder is cloned with the delivery, and `Send` and `Sync` so
    /// that the delivery is too (the tokio adapter's `send` runs it in a
    /// future that may move between threads). `Debug` does not show it.
    ///
    /// A CRAM-MD5 exchange (RFC 2195 §2's example; the keyed digest is the
    /// application's to compute):
    ///
    /// ```
    /// use smtp_proto::client::{
    ///     AuthCredentials, Client, ClientConfig, Delivery, Envelope, NotAttempted, Outcome,
    ///     SaslAnswer, TlsPolicy,
    /// };
    /// use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
    /// use smtp_proto::sasl::CustomMechanism;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cram = CustomMechanism::new("CRAM-MD5")?;
    /// let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("tim@example.net")?))
    ///     .recipient(ForwardPath::Mailbox(Mailbox::parse("bob@example.org")?));
    /// let mut delivery = Delivery::new(envelope)
    ///     .with_auth(AuthCredentials::custom(cram, None))
    ///     .with_auth_responder(|_, challenge: &[u8], round| {
    ///         if round == 1 && challenge == b"<1896.697170952@postoffice.reston.mci.net>" {
    ///             // HMAC-MD5 of the challenge keyed with the password, in hex.
    ///             SaslAnswer::respond(&b"tim b913a602c7eda7a495b4e6e7334d3890"[..])
    ///         } else {
    ///             SaslAnswer::Cancel
    ///         }
    ///     });
    ///
    /// let config = ClientConfig::new(Domain::new("client.example.net")?)
    ///     .with_tls(TlsPolicy::Off)
    ///     .with_auth_without_tls(true);
    /// let mut client = Client::new(config);
    /// let mut server: std::collections::VecDeque<&[u8]> = [
    ///     &b"220 mx.example.org ESMTP\r\n"[..],
    ///     b"250-mx.example.org\r\n250 AUTH CRAM-MD5\r\n",
    ///     b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
    ///     b"535 5.7.8 authentication failed\r\n",
    ///     b"221 2.0.0 bye\r\n",
    /// ]
    /// .into();
    /// let (mut inbuf, mut wire) = (Vec::new(), Vec::new());
    /// for _ in 0..100 {
    ///     let step = client.handle_input(&inbuf)?;
    ///     let consumed = step.consumed;
    ///     match step.outcome {
    ///         Outcome::Event(event) => delivery.on_event(&mut client, &event)?,
    ///         Outcome::NeedInput => match server.pop_front() {
    ///             Some(bytes) => inbuf.extend_from_slice(bytes),
    ///             None => break,
    ///         },
    ///         _ => break,
    ///     }
    ///     inbuf.drain(..consumed);
    ///     client.poll_transmit(&mut wire);
    /// }
    /// let wire = String::from_utf8(wire)?;
    /// assert!(wire.contains("AUTH CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"));
    /// assert!(wire.ends_with("QUIT\r\n"));
    /// // The server refused the answer: nothing was sent.
    /// let report = delivery.finish(None);
    /// let reason = match &report.recipients[0].outcome {
    ///     smtp_proto::client::RecipientOutcome::NotAttempted { reason } => reason,
    ///     other => panic!("{other:?}"),
    /// };
    /// assert!(matches!(reason, NotAttempted::AuthFailed { reply } if u16::from(reply.code()) == 535));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_auth_responder<R>(mut self, responder: R) -> Self
    where
        R: SaslResponder + Clone + Send + Sync + 'static,
    {
        self.responder = Some(Responder::new(responder));
        self
    }

    /// The envelope.
    #[must_use]
    pub fn envelope(&self) -> &Envelope<'static> {
        &self.envelope
    }

    /// The envelope indices of the recipients of the transaction under
    /// way (or of the last one), in envelope order, which is the order of
    /// their RCPT commands; empty before the first. A transaction that
    /// sends again the recipients the last one refused with "too many
    /// recipients" (see [`Delivery`]) carries them first, then the ones
    /// no transaction carried yet: its indices need not be contiguous.
    #[must_use]
    pub fn current_transaction(&self) -> &[usize] {
        &self.batch
    }

    /// The transactions started so far.
    #[must_use]
    pub fn transactions(&self) -> usize {
        self.transactions
    }

    /// The envelope index of the recipient that the events of the
    /// transaction under way number `index` ([`ClientEvent::Recipient`],
    /// [`ClientEvent::Message`]), or `None` when there is none.
    #[must_use]
    pub fn envelope_index(&self, index: usize) -> Option<usize> {
        self.batch.get(index).copied()
    }

    /// The outcome of the recipient at envelope index `index` once
    /// decided, `None` while it is not (or for an index out of range).
    #[must_use]
    pub fn outcome(&self, index: usize) -> Option<&RecipientOutcome> {
        match self.slots.get(index)? {
            Slot::Done(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Handles one event of the client machine, making the call it needs
    /// (AUTH, MAIL, QUIT, or the answer to a custom SASL mechanism's
    /// challenge: see [`Delivery::with_auth_responder`]), and
    /// records what the event decides. Events that need no call from it
    /// (the body, STARTTLS) are left to the caller.
    ///
    /// # Errors
    ///
    /// An error of a call to the machine that the delivery cannot turn into
    /// an outcome (a usage error, which the delivery's own sequencing never
    /// causes with the events of one machine given in order).
    pub fn on_event(
        &mut self,
        client: &mut Client,
        event: &ClientEvent<'_>,
    ) -> Result<(), ClientError> {
        match event {
            // A NOOP the application sent (to check a kept connection)
            // leaves the client idle again, as Ready does.
            ClientEvent::Ready | ClientEvent::Authenticated { .. } | ClientEvent::Noop { .. } => {
                self.next(client)
            }
            ClientEvent::TransactionEnd(_) => {
                self.end_transaction();
                if let Some(reply) = self.sender_refusal.take() {
                    if Verdict::of(reply.code()) == Verdict::Permanent {
                        self.stop(&NotAttempted::SenderRefused { reply });
                        return self.quit(client);
                    }
                }
                self.next(client)
            }
            ClientEvent::AuthFailed { reply, .. } => {
                self.stop(&NotAttempted::AuthFailed {
                    reply: owned(reply),
                });
                self.quit(client)
            }
            ClientEvent::AuthChallenge {
                mechanism,
                challenge,
                round,
            } => {
                let answer = match self.responder.as_mut() {
                    Some(r) => r.respond(*mechanism, challenge, *round),
                    None => SaslAnswer::Cancel,
                };
                match answer {
                    SaslAnswer::Respond(response) => {
                        match client.auth_response(response.expose()) {
                            // RFC 4954 §4: no line can carry it.
                            Err(ClientError::Usage(UsageError::ResponseTooLong)) => {
                                client.cancel_auth()
                            }
                            other => other,
                        }
                    }
                    SaslAnswer::Cancel => client.cancel_auth(),
                }
            }
            ClientEvent::GreetingRejected { reply } | ClientEvent::HelloRejected { reply } => {
                // The machine sends QUIT itself.
                self.stop(&NotAttempted::SessionRefused {
                    reply: owned(reply),
                });
                Ok(())
            }
            ClientEvent::TlsUnavailable { reply } => {
                if client.config().tls == TlsPolicy::Required {
                    // The machine sends QUIT itself.
                    self.stop(&NotAttempted::TlsUnavailable {
                        reply: reply.as_ref().map(owned),
                    });
                }
                Ok(())
            }
            ClientEvent::Sender { reply, verdict } => {
                if !self.in_transaction {
                    return Ok(());
                }
                if verdict.is_success() {
                    self.sender_accepted = true;
                } else {
                    let reply = owned(reply);
                    let batch = core::mem::take(&mut self.batch);
                    for &i in &batch {
                        self.decide(i, Stage::Mail, *verdict, &reply);
                    }
                    self.batch = batch;
                    self.sender_refusal = Some(reply);
                }
                Ok(())
            }
            ClientEvent::Recipient {
                index,
                reply,
                verdict,
            } => {
                if let Some(i) = self.envelope_index(*index).filter(|_| self.in_transaction) {
                    if let Some(slot @ Slot::Pending) = self.slots.get_mut(i) {
                        if verdict.is_success() {
                            *slot = Slot::Accepted;
                            self.rcpt_accepted = true;
                        } else if *verdict == Verdict::RetryLater && too_many_recipients(reply) {
                            *slot = Slot::Deferred(owned(reply));
                        } else {
                            self.decide(i, Stage::Rcpt, *verdict, &owned(reply));
                        }
                    }
                }
                Ok(())
            }
            ClientEvent::Message {
                recipient,
                reply,
                verdict,
            } => {
                if !self.in_transaction {
                    return Ok(());
                }
                // The reply to the end of the message ends the
                // transaction (SMTP) or is one recipient's (LMTP). A
                // refusal for all that leaves the transaction open answers
                // a BDAT chunk, even when pipelining sent `BDAT ... LAST`
                // before it came: its reply, still due, only confirms it.
                let answers_end = recipient.is_some() || client.phase() == Phase::Ready;
                let stage = if self.body_ended && answers_end {
                    Stage::EndOfData
                } else {
                    Stage::Data
                };
                let reply = owned(reply);
                match recipient {
                    Some(index) => {
                        if let Some(i) = self.envelope_index(*index) {
                            if self.slots.get(i) == Some(&Slot::Accepted) {
                                self.decide(i, stage, *verdict, &reply);
                            }
                        }
                    }
                    None => {
                        let batch = core::mem::take(&mut self.batch);
                        for &i in &batch {
                            if self.slots.get(i) == Some(&Slot::Accepted) {
                                self.decide(i, stage, *verdict, &reply);
                            }
                        }
                        self.batch = batch;
                    }
                }
                Ok(())
            }
            ClientEvent::ServiceClosing { reply, .. } => {
                let reply = owned(reply);
                if self.in_transaction {
                    let batch = core::mem::take(&mut self.batch);
                    for &i in &batch {
                        let stage = match self.slots.get(i) {
                            Some(Slot::Pending) if !self.sender_accepted => Stage::Mail,
                            Some(Slot::Pending) => Stage::Rcpt,
                            Some(Slot::Accepted) if self.body_ended => Stage::EndOfData,
                            Some(Slot::Accepted) => Stage::Data,
                            _ => continue,
                        };
                        self.set(
                            i,
                            RecipientOutcome::TemporaryFailure {
                                stage,
                                reply: reply.clone(),
                            },
                        );
                    }
                    self.batch = batch;
                    self.in_transaction = false;
                }
                self.closing = Some(reply.clone());
                self.stop(&NotAttempted::ServiceClosing { reply });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The next piece of `message` for the transaction under way, at most
    /// `max` octets (at least one), or `None` once all of it was given
    /// out: then call [`Client::end_body`], as the delivery counts the end
    /// of the message as sent (see [`Delivery::body_ended`]). Each
    /// transaction sends the whole message from its start.
    ///
    /// ```
    /// use smtp_proto::client::{Delivery, Envelope};
    /// use smtp_proto::command::ReversePath;
    ///
    /// let mut delivery = Delivery::new(Envelope::new(ReversePath::Null));
    /// let message = b"0123456789";
    /// assert_eq!(delivery.next_piece(message, 4), Some(&b"0123"[..]));
    /// assert_eq!(delivery.next_piece(message, 4), Some(&b"4567"[..]));
    /// assert_eq!(delivery.next_piece(message, 4), Some(&b"89"[..]));
    /// assert_eq!(delivery.next_piece(message, 4), None);
    /// ```
    pub fn next_piece<'m>(&mut self, message: &'m [u8], max: usize) -> Option<&'m [u8]> {
        let rest = message.get(self.body_offset..).unwrap_or_default();
        if rest.is_empty() {
            self.body_ended();
            return None;
        }
        let n = rest.len().min(max.max(1));
        self.body_offset += n;
        rest.get(..n)
    }

    /// [`Delivery::next_piece`] of at most `max` octets, appended to
    /// `piece`; `false` at the end of the message. This is what a
    /// driver's body callback does.
    ///
    /// ```
    /// use smtp_proto::client::{Delivery, Envelope};
    /// use smtp_proto::command::ReversePath;
    ///
    /// let mut delivery = Delivery::new(Envelope::new(ReversePath::Null));
    /// let mut piece = Vec::new();
    /// assert!(delivery.fill_piece(b"0123456789", 6, &mut piece));
    /// assert!(delivery.fill_piece(b"0123456789", 6, &mut piece));
    /// assert!(!delivery.fill_piece(b"0123456789", 6, &mut piece));
    /// assert_eq!(piece, b"0123456789");
    /// ```
    pub fn fill_piece(&mut self, message: &[u8], max: usize, piece: &mut Vec<u8>) -> bool {
        match self.next_piece(message, max) {
            Some(p) => {
                piece.extend_from_slice(p);
                true
            }
            None => false,
        }
    }

    /// Records that the end of the message of the transaction under way is
    /// handed to the machine now ([`Client::end_body`] or
    /// [`Client::send_last`] follows): from here on, a connection that
    /// breaks before the reply leaves its accepted recipients
    /// [`RecipientOutcome::Unknown`]. [`Delivery::next_piece`] calls it
    /// when it runs out of message.
    pub fn body_ended(&mut self) {
        self.body_ended = true;
    }

    /// Ends the run and gives the report. `error` is the run's error (as
    /// text) when it failed. A recipient still undecided is
    /// [`RecipientOutcome::Unknown`] when the whole message was sent for
    /// it (RCPT accepted, [`Delivery::body_ended`]) and no reply to it
    /// came, and [`NotAttempted::ConnectionLost`] otherwise.
    #[must_use]
    pub fn finish(self, error: Option<String>) -> DeliveryReport {
        self.report(error)
    }

    /// Ends the run with how it ended: the report when the run succeeded,
    /// or the run's error with the report all the same (its
    /// [`DeliveryReport::error`] set to the error's text). The adapters'
    /// `send` functions end with it.
    ///
    /// # Errors
    /// [`SendFailure`] when `end` is an error.
    pub fn conclude<E>(self, end: Result<(), E>) -> Result<DeliveryReport, SendFailure<E>>
    where
        E: std::error::Error + 'static,
    {
        match end {
            Ok(()) => Ok(self.report(None)),
            Err(error) => {
                let report = self.report(Some(error.to_string()));
                Err(SendFailure { error, report })
            }
        }
    }

    fn report(self, error: Option<String>) -> DeliveryReport {
        // Only the transaction under way has accepted recipients.
        let sent = self.in_transaction && self.body_ended;
        let recipients = self
            .envelope
            .recipients
            .into_iter()
            .zip(self.slots)
            .map(|(recipient, slot)| {
                let outcome = match slot {
                    Slot::Done(outcome) => outcome,
                    Slot::Deferred(reply) => RecipientOutcome::TemporaryFailure {
                        stage: Stage::Rcpt,
                        reply,
                    },
                    Slot::Accepted if sent => RecipientOutcome::Unknown,
                    _ => RecipientOutcome::NotAttempted {
                        reason: NotAttempted::ConnectionLost,
                    },
                };
                RecipientReport { recipient, outcome }
            })
            .collect();
        DeliveryReport {
            recipients,
            transactions: self.transactions,
            error,
        }
    }

    /// Starts the next step: AUTH, the next transaction, or QUIT.
    fn next(&mut self, client: &mut Client) -> Result<(), ClientError> {
        if self.stopped {
            return Ok(());
        }
        if self.auth.is_some()
            && !client.is_authenticated()
            && !client.is_idle()
            && !client.is_closed()
        {
            // Refused before the credentials are handed over: a later
            // call (once the client is idle) still authenticates, and
            // does not send MAIL without the authentication asked for.
            return Err(UsageError::NotIdle.into());
        }
        if let Some(credentials) = self.auth.take().filter(|_| !client.is_authenticated()) {
            // A session already authenticated (by an earlier delivery
            // over it) is not authenticated again.
            return match client.authenticate(credentials, None) {
                Err(ClientError::Usage(e)) if e != UsageError::NotIdle => {
                    self.stop(&NotAttempted::AuthUnavailable(e));
                    self.quit(client)
                }
                other => other.map(|_| ()),
            };
        }
        // The recipients still due, in envelope order: the ones the last
        // transaction refused with "too many recipients" (RFC 5321
        // §4.5.3.1.10), then the ones no transaction carried yet.
        let untried = self.untried.min(self.slots.len());
        let deferred: Vec<usize> = self
            .batch
            .iter()
            .copied()
            .filter(|&i| matches!(self.slots.get(i), Some(Slot::Deferred(_))))
            .collect();
        if deferred.is_empty() && untried >= self.slots.len() {
            return self.quit(client);
        }
        // As many of them, from the first, as one transaction may carry
        // (RCPTMAX, RCPTDOMAINMAX), and only those are copied, so that a
        // long envelope is not copied whole for each transaction; the
        // rest goes in the next transactions.
        let limits = client.limits();
        let all = std::mem::take(&mut self.envelope.recipients);
        let candidates = deferred.iter().copied().chain(untried..all.len());
        let fit = fitting(candidates.clone().filter_map(|i| all.get(i)), &limits);
        let batch: Vec<usize> = candidates.take(fit).collect();
        let mut envelope = self.envelope.clone();
        envelope.recipients = batch.iter().filter_map(|&i| all.get(i).cloned()).collect();
        // One message: a transaction of ASCII addresses asks for SMTPUTF8
        // too when another recipient of the message needs it (RFC 6531
        // §3.4), so that the outcome for a recipient does not depend on
        // how LIMITS split the envelope, nor on its place in it.
        envelope.smtputf8 = self.smtputf8 || (self.utf8_orcpt && client.has(Extension::Dsn));
        self.envelope.recipients = all;
        if !client.is_authenticated() {
            // An AUTH of this session failed (this delivery's own
            // credentials were tried above): the application asked for
            // authentication and did not get it, and MAIL without it
            // would be refused (530, RFC 4954 §6) as if the recipients
            // were bad.
            let reason = match client.failed_auth() {
                Some(FailedAuth::Refused(reply)) => Some(NotAttempted::AuthFailed {
                    reply: reply.clone(),
                }),
                Some(FailedAuth::Unavailable(e)) => Some(NotAttempted::AuthUnavailable(*e)),
                None => None,
            };
            if let Some(reason) = reason {
                self.stop(&reason);
                return self.quit(client);
            }
        }
        if let Some(reply) = client.mail_refusal(&envelope) {
            // RFC 5321 §4.2.1: the same MAIL was refused with a 5yz
            // earlier in this session, and is not repeated.
            let reason = NotAttempted::SenderRefused {
                reply: reply.clone(),
            };
            self.stop(&reason);
            return self.quit(client);
        }
        match client.send_mail(&envelope) {
            Ok(()) => {
                for &i in &batch {
                    // Pending again: its RCPT goes out in this transaction.
                    if let Some(slot @ Slot::Deferred(_)) = self.slots.get_mut(i) {
                        *slot = Slot::Pending;
                    }
                }
                self.untried = batch.last().map_or(untried, |&i| (i + 1).max(untried));
                self.batch = batch;
                self.in_transaction = true;
                self.sender_accepted = false;
                self.rcpt_accepted = false;
                self.sender_refusal = None;
                self.body_ended = false;
                self.body_offset = 0;
                self.transactions += 1;
                Ok(())
            }
            Err(ClientError::Refused(Refusal::TransactionLimit { limit })) => {
                self.stop(&NotAttempted::TransactionLimit { limit });
                self.quit(client)
            }
            Err(ClientError::Refused(Refusal::RequireTls)) => {
                // A message that may only travel over TLS (RFC 8689) on a
                // session without it: for good when the server does not
                // offer STARTTLS or refused it with a 5yz, but a 4yz is a
                // temporary refusal of TLS (RFC 3207 §4), so the message
                // is sent again later rather than bounced.
                let reason = match client.starttls_refusal() {
                    Some(reply)
                        if !client.is_tls() && Verdict::of(reply.code()) == Verdict::RetryLater =>
                    {
                        NotAttempted::TlsUnavailable {
                            reply: Some(reply.clone()),
                        }
                    }
                    _ => NotAttempted::Refused(Refusal::RequireTls),
                };
                self.stop(&reason);
                self.quit(client)
            }
            Err(ClientError::Refused(refusal)) => {
                self.stop(&NotAttempted::Refused(refusal));
                self.quit(client)
            }
            Err(e) => Err(e),
        }
    }

    /// The transaction is over: a recipient of it that no event decided
    /// is [`NotAttempted::Unanswered`]. When it accepted no recipient, the
    /// ones refused with "too many recipients" are not sent again (the
    /// next transaction could fare no better): they are
    /// [`RecipientOutcome::TemporaryFailure`].
    fn end_transaction(&mut self) {
        if !self.in_transaction {
            return;
        }
        self.in_transaction = false;
        let batch = core::mem::take(&mut self.batch);
        for &i in &batch {
            match self.slots.get_mut(i) {
                Some(slot @ (Slot::Pending | Slot::Accepted)) => {
                    // The machine decides every recipient of a transaction
                    // it ends, in an event with the reply; this is a
                    // fallback.
                    *slot = Slot::Done(RecipientOutcome::NotAttempted {
                        reason: NotAttempted::Unanswered,
                    });
                }
                Some(slot @ Slot::Deferred(_)) if !self.rcpt_accepted => give_up(slot),
                _ => {}
            }
        }
        self.batch = batch;
    }

    /// Decides recipient `i` by a refusal or acceptance `verdict` given in
    /// `reply` at `stage`, unless already decided.
    fn decide(&mut self, i: usize, stage: Stage, verdict: Verdict, reply: &OwnedReply) {
        if !matches!(self.slots.get(i), Some(Slot::Pending | Slot::Accepted)) {
            return;
        }
        let reply = reply.clone();
        let outcome = match verdict {
            Verdict::Success if stage >= Stage::Data => RecipientOutcome::Delivered { reply },
            // A success anywhere else decides nothing.
            Verdict::Success => return,
            Verdict::RetryLater => RecipientOutcome::TemporaryFailure { stage, reply },
            Verdict::Permanent => RecipientOutcome::PermanentFailure { stage, reply },
        };
        self.set(i, outcome);
    }

    fn set(&mut self, i: usize, outcome: RecipientOutcome) {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Slot::Done(outcome);
        }
    }

    /// No more transactions: every recipient not yet in one is not
    /// attempted, for `reason`, and one refused with "too many recipients"
    /// keeps that refusal ([`RecipientOutcome::TemporaryFailure`]).
    fn stop(&mut self, reason: &NotAttempted) {
        self.stopped = true;
        if self.stop_reason.is_none() {
            self.stop_reason = Some(reason.clone());
        }
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot {
                Slot::Pending if i >= self.untried => {
                    *slot = Slot::Done(RecipientOutcome::NotAttempted {
                        reason: reason.clone(),
                    });
                }
                Slot::Deferred(_) => give_up(slot),
                _ => {}
            }
        }
    }

    fn quit(&mut self, client: &mut Client) -> Result<(), ClientError> {
        self.stopped = true;
        if self.keep_open || client.is_closed() {
            return Ok(());
        }
        client.quit()
    }
}
