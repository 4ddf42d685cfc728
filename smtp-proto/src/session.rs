//! What the server and client session machines share: the [`Step`] /
//! [`Outcome`] contract, the transaction sequencing table and the RFC 5321
//! timeouts.
//!
//! The sequencing table does not care which role it serves: the server asks
//! it whether a command the peer sent may come now, the client asks whether
//! it may send one, and both move on with [`Phase::after`] once the command
//! succeeded.
//!
//! ```
//! use smtp_proto::session::{CommandKind, Phase, SequenceError};
//!
//! let phase = Phase::NeedHello;
//! assert_eq!(phase.check(CommandKind::Mail), Err(SequenceError::NeedHello));
//! let phase = phase.after(CommandKind::Hello);
//! assert_eq!(phase, Phase::Ready);
//! assert!(phase.check(CommandKind::Mail).is_ok());
//! let phase = phase.after(CommandKind::Mail);
//! assert_eq!(phase.check(CommandKind::Data), Err(SequenceError::NoRecipients));
//! ```

use core::time::Duration;

use crate::status::{EnhancedStatusCode, ReplyCode};

/// The result of feeding input to a session machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Step<E> {
    /// Bytes of the input consumed: the caller drops them from the front of
    /// its buffer before the next call.
    pub consumed: usize,
    /// What happened.
    pub outcome: Outcome<E>,
}

impl<E> Step<E> {
    /// A step with an event.
    pub fn event(consumed: usize, event: E) -> Self {
        Self {
            consumed,
            outcome: Outcome::Event(event),
        }
    }

    /// A step that needs more input.
    pub fn need_input(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::NeedInput,
        }
    }

    /// A step that waits for the application.
    pub fn paused(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::Paused,
        }
    }

    /// A step after which the session is over.
    pub fn closed(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::Closed,
        }
    }

    /// The event, if one came out.
    #[must_use]
    pub fn into_event(self) -> Option<E> {
        match self.outcome {
            Outcome::Event(e) => Some(e),
            _ => None,
        }
    }
}

/// What a [`Step`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<E> {
    /// Something happened; some events wait for a decision (see the
    /// machine's documentation), the others are information.
    Event(E),
    /// Every byte given was consumed or is held for later: read more and
    /// call again with the unconsumed bytes plus the new ones.
    NeedInput,
    /// The machine waits for the application (a decision, or the TLS
    /// handshake) and reads nothing until it gets it.
    Paused,
    /// Replies have piled up (the peer pipelines faster than it reads):
    /// send what `poll_transmit` gives, then call again with the same
    /// unconsumed input. This keeps the machine's output buffer bounded.
    Transmit,
    /// The session is over: send what `poll_transmit` still has, then close
    /// the connection.
    Closed,
}

/// Where an SMTP session stands, seen from either end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Before the server's greeting.
    Greeting,
    /// Greeted (or just after TLS started): EHLO, HELO or LHLO comes next.
    NeedHello,
    /// Between transactions.
    Ready,
    /// MAIL accepted, no recipient accepted yet.
    Mail,
    /// At least one RCPT accepted.
    Rcpt,
    /// Inside a DATA body.
    Data,
    /// BDAT chunks sent, the one with LAST not yet.
    Bdat,
    /// The session is over.
    Closed,
}

/// The command classes the sequencing table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandKind {
    /// EHLO, HELO or LHLO.
    Hello,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA.
    Data,
    /// BDAT without LAST.
    Bdat,
    /// BDAT ... LAST.
    BdatLast,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
    /// STARTTLS.
    StartTls,
    /// AUTH.
    Auth,
    /// The end of a DATA body (`CRLF.CRLF`) was answered.
    DataEnd,
    /// NOOP, HELP, VRFY, EXPN and other commands that do not move the
    /// transaction.
    Neutral,
}

/// Why a command may not come now; each maps to its reply.
///
/// ```
/// use smtp_proto::session::{CommandKind, Phase, SequenceError};
///
/// let err = Phase::Ready.check(CommandKind::Rcpt).unwrap_err();
/// assert_eq!(err, SequenceError::NeedMail);
/// assert_eq!(err.reply_code().get(), 503);
/// assert_eq!(err.enhanced_code().to_string(), "5.5.1");
/// // No recipient: 554 in SMTP (an LMTP server sends 503).
/// let err = Phase::Mail.check(CommandKind::Data).unwrap_err();
/// assert_eq!(err.reply_code().get(), 554);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SequenceError {
    /// No EHLO/HELO yet: `503 5.5.1`.
    #[error("send EHLO/HELO first")]
    NeedHello,
    /// MAIL inside a transaction: `503 5.5.1`.
    #[error("nested MAIL command")]
    NestedMail,
    /// RCPT, DATA or BDAT without MAIL: `503 5.5.1`.
    #[error("need MAIL command")]
    NeedMail,
    /// DATA or BDAT with no accepted recipient: `554 5.5.1` (RFC 5321
    /// §3.3, RFC 2920 §3.1 "no valid recipients"). An LMTP server answers
    /// `503 5.5.1` instead (RFC 2033 §4.2: such a DATA "MUST fail with a
    /// 503 reply code"); [`reply_code`](Self::reply_code) gives the SMTP
    /// code.
    #[error("no valid recipients")]
    NoRecipients,
    /// DATA after BDAT, or RCPT after BDAT in one transaction: `503 5.5.1`
    /// (RFC 3030 §2).
    #[error("command not allowed after BDAT")]
    AfterBdat,
    /// STARTTLS or AUTH inside a transaction: `503 5.5.1`.
    #[error("not allowed inside a mail transaction")]
    InTransaction,
    /// A command while a body is being transferred, or before the
    /// greeting, or after the session closed.
    #[error("no command allowed now")]
    NotNow,
}

impl SequenceError {
    /// The reply code for this refusal in SMTP (see
    /// [`NoRecipients`](Self::NoRecipients) for LMTP).
    #[must_use]
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            SequenceError::NoRecipients => ReplyCode::TRANSACTION_FAILED,
            _ => ReplyCode::BAD_SEQUENCE,
        }
    }

    /// The RFC 3463 enhanced status code (5.5.1 "invalid command").
    #[must_use]
    pub fn enhanced_code(&self) -> EnhancedStatusCode {
        EnhancedStatusCode::INVALID_COMMAND
    }
}

impl Phase {
    /// True inside a mail transaction (after MAIL, before its end).
    #[must_use]
    pub fn in_transaction(self) -> bool {
        matches!(self, Phase::Mail | Phase::Rcpt | Phase::Data | Phase::Bdat)
    }

    /// Whether `kind` may come in this phase.
    pub fn check(self, kind: CommandKind) -> Result<(), SequenceError> {
        use CommandKind as K;
        use Phase as P;
        match (self, kind) {
            (P::Greeting | P::Data | P::Closed, _) => Err(SequenceError::NotNow),
            (_, K::Quit | K::Rset | K::Neutral | K::Hello) => Ok(()),
            (P::NeedHello, _) => Err(SequenceError::NeedHello),
            (P::Ready, K::Mail | K::StartTls | K::Auth) => Ok(()),
            (P::Ready, K::Rcpt | K::Data | K::Bdat | K::BdatLast) => Err(SequenceError::NeedMail),
            (P::Mail | P::Rcpt | P::Bdat, K::Mail) => Err(SequenceError::NestedMail),
            (P::Mail | P::Rcpt | P::Bdat, K::StartTls | K::Auth) => {
                Err(SequenceError::InTransaction)
            }
            (P::Mail | P::Rcpt, K::Rcpt) => Ok(()),
            (P::Mail, K::Data | K::Bdat | K::BdatLast) => Err(SequenceError::NoRecipients),
            (P::Rcpt, K::Data | K::Bdat | K::BdatLast) => Ok(()),
            (P::Bdat, K::Bdat | K::BdatLast) => Ok(()),
            (P::Bdat, K::Data | K::Rcpt) => Err(SequenceError::AfterBdat),
            (_, K::DataEnd) => Err(SequenceError::NotNow),
        }
    }

    /// The phase after `kind` succeeded in this phase.
    ///
    /// For DATA this is [`Phase::Data`] (after the 354); the body's end is
    /// [`CommandKind::DataEnd`]. STARTTLS leads to [`Phase::NeedHello`]:
    /// once TLS is up everything is forgotten (RFC 3207 §4.2).
    #[must_use]
    pub fn after(self, kind: CommandKind) -> Phase {
        use CommandKind as K;
        use Phase as P;
        match (self, kind) {
            (_, K::Quit) => P::Closed,
            (P::Greeting | P::Closed, _) => self,
            (_, K::Hello) => P::Ready,
            (_, K::StartTls) => P::NeedHello,
            (P::NeedHello, _) => P::NeedHello,
            (_, K::Rset) => P::Ready,
            (_, K::Mail) => P::Mail,
            (_, K::Rcpt) => P::Rcpt,
            (_, K::Data) => P::Data,
            (_, K::Bdat) => P::Bdat,
            (_, K::BdatLast | K::DataEnd) => P::Ready,
            (_, K::Auth | K::Neutral) => self,
        }
    }
}

/// Timeouts of RFC 5321 §4.5.3.2, as values: the adapter runs the clock.
///
/// The struct is `#[non_exhaustive]`: start from `Default` (the RFC's
/// values) or [`Timeouts::uniform`] and change the fields you need.
///
/// ```
/// use smtp_proto::server::{ServerConfig, ServerSession};
/// use smtp_proto::session::Timeouts;
/// use std::time::Duration;
///
/// let mut timeouts = Timeouts::default();
/// assert_eq!(timeouts.server, Duration::from_secs(300));
/// timeouts.server = Duration::from_secs(60);
/// let mut config = ServerConfig::new("mx.example.com");
/// config.timeouts = timeouts;
/// let mut server = ServerSession::new(config).unwrap();
/// assert_eq!(server.timeout(), None); // no greeting yet: nothing to wait for
/// server.greet().unwrap();
/// assert_eq!(server.timeout(), Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Client waiting for the 220 greeting (§4.5.3.2.1): 5 minutes.
    pub initial: Duration,
    /// Client waiting for the reply to MAIL (§4.5.3.2.2): 5 minutes.
    pub mail: Duration,
    /// Client waiting for the reply to RCPT (§4.5.3.2.3): 5 minutes.
    pub rcpt: Duration,
    /// Client waiting for the 354 after DATA (§4.5.3.2.4): 2 minutes.
    pub data_init: Duration,
    /// Client sending one block of the body (§4.5.3.2.5): 3 minutes.
    pub data_block: Duration,
    /// Client waiting for the reply after `.` (§4.5.3.2.6): 10 minutes.
    pub data_termination: Duration,
    /// Server waiting for the next command or body bytes (§4.5.3.2.7): 5
    /// minutes.
    pub server: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            initial: Duration::from_secs(5 * MIN),
            mail: Duration::from_secs(5 * MIN),
            rcpt: Duration::from_secs(5 * MIN),
            data_init: Duration::from_secs(2 * MIN),
            data_block: Duration::from_secs(3 * MIN),
            data_termination: Duration::from_secs(10 * MIN),
            server: Duration::from_secs(5 * MIN),
        }
    }
}

impl Timeouts {
    /// The same `limit` for every phase, client and server: for tests,
    /// and for callers that bound every wait alike.
    ///
    /// ```
    /// use smtp_proto::session::Timeouts;
    /// use std::time::Duration;
    /// let t = Timeouts::uniform(Duration::from_secs(20));
    /// assert_eq!(t.rcpt, Duration::from_secs(20));
    /// assert_eq!(t.server, Duration::from_secs(20));
    /// assert_ne!(t, Timeouts::default());
    /// ```
    #[must_use]
    pub fn uniform(limit: Duration) -> Self {
        Self {
            initial: limit,
            mail: limit,
            rcpt: limit,
            data_init: limit,
            data_block: limit,
            data_termination: limit,
            server: limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandKind as K;

    #[test]
    fn full_transaction_walk() {
        let mut p = Phase::NeedHello;
        for k in [K::Hello, K::Mail, K::Rcpt, K::Rcpt, K::Data, K::DataEnd] {
            if k != K::DataEnd {
                assert_eq!(p.check(k), Ok(()), "{k:?} in {p:?}");
            }
            p = p.after(k);
        }
        assert_eq!(p, Phase::Ready);
        for k in [K::Mail, K::Rcpt, K::Bdat, K::Bdat, K::BdatLast] {
            assert_eq!(p.check(k), Ok(()), "{k:?} in {p:?}");
            p = p.after(k);
        }
        assert_eq!(p, Phase::Ready);
    }

    #[test]
    fn out_of_order_commands() {
        assert_eq!(Phase::Ready.check(K::Rcpt), Err(SequenceError::NeedMail));
        assert_eq!(Phase::Ready.check(K::Data), Err(SequenceError::NeedMail));
        assert_eq!(Phase::Rcpt.check(K::Mail), Err(SequenceError::NestedMail));
        assert_eq!(Phase::Bdat.check(K::Data), Err(SequenceError::AfterBdat));
        assert_eq!(
            Phase::Rcpt.check(K::Auth),
            Err(SequenceError::InTransaction)
        );
        assert_eq!(
            Phase::Mail.check(K::StartTls),
            Err(SequenceError::InTransaction)
        );
        assert_eq!(Phase::Data.check(K::Quit), Err(SequenceError::NotNow));
        assert_eq!(SequenceError::NoRecipients.reply_code().get(), 554);
        assert_eq!(SequenceError::NeedMail.reply_code().get(), 503);
    }

    #[test]
    fn hello_and_rset_reset_the_transaction() {
        assert_eq!(Phase::Rcpt.after(K::Hello), Phase::Ready);
        assert_eq!(Phase::Bdat.after(K::Rset), Phase::Ready);
        assert_eq!(Phase::NeedHello.after(K::Rset), Phase::NeedHello);
        assert_eq!(Phase::Ready.after(K::StartTls), Phase::NeedHello);
        assert_eq!(Phase::Rcpt.after(K::Quit), Phase::Closed);
    }

    #[test]
    fn rfc_default_timeouts() {
        let t = Timeouts::default();
        assert_eq!(t.initial.as_secs(), 300);
        assert_eq!(t.data_init.as_secs(), 120);
        assert_eq!(t.data_block.as_secs(), 180);
        assert_eq!(t.data_termination.as_secs(), 600);
        assert_eq!(t.server.as_secs(), 300);
    }
}
