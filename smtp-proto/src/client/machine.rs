//! The client session machine.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::auth::{self, AuthCredentials, AuthFailure, CustomStep, Exchange};
use super::body::LineEnds;
use super::config::{ChunkingPolicy, ClientConfig, ConfigError, Protocol, TlsPolicy};
use super::envelope::Envelope;
use super::event::{
    ClientError, ClientEvent, FailedAuth, RecipientStatus, Refusal, TransactionSummary, UsageError,
    Verdict,
};
use crate::command::Base64;
use crate::command::{
    BodyType, Command, MailFrom, MailParameters, Mechanism, Orcpt, RcptParameters, RcptTo,
};
use crate::data::DotStuffer;
use crate::reply::{
    Decoded, DecoderConfig, EhloReply, Extension, Extensions, Limits, OwnedReply, Reply,
    ReplyDecoder,
};
use crate::sasl::SaslMechanism;
use crate::session::{Phase, Step};
use crate::status::ReplyCode;

/// Longest line of the AUTH exchange after the command, CRLF included: a
/// SASL response after a 334 challenge, and the challenge the client
/// reads (RFC 4954 §4: 12288 octets are "a sufficient line length limit
/// for handling of deployed authentication mechanisms").
///
/// While an AUTH exchange waits for the server, a reply line and a whole
/// reply may take this many octets, whatever
/// [`ClientConfig::replies`](super::ClientConfig::replies) sets (the
/// larger of the two counts): a driver's read buffer must hold such a
/// reply too.
pub const AUTH_LINE_MAX: usize = 12288;

/// Most MAIL requests refused with a 5yz that a session remembers
/// ([`Client::mail_refusal`]); past it, the oldest is forgotten.
const REFUSED_MAIL_MAX: usize = 8;

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4). RFC 4954 §4
/// holds the AUTH command to it, initial response included: "If use of
/// the initial response argument would cause the AUTH command to exceed
/// this length, the client MUST NOT use the initial response parameter".
const COMMAND_LINE_MAX: usize = 512;

/// The length of the line that carries the SASL response `raw`:
/// its base64 text and CRLF.
fn response_line_len(raw: &[u8]) -> usize {
    line_len_of(raw.len())
}

/// The length of the line that carries a SASL response of `len` octets:
/// its base64 text and CRLF.
fn line_len_of(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4).saturating_add(2)
}

/// A command whose reply is awaited, in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Greeting,
    Ehlo,
    Helo,
    Lhlo,
    StartTls,
    Auth,
    Rset,
    Mail,
    Rcpt(usize),
    Data,
    /// The lone `.` sent after a 354 when no recipient was accepted.
    EmptyDot,
    /// A BDAT chunk without LAST.
    Bdat,
    /// The end of the message (`.` or BDAT LAST): one reply, or in LMTP
    /// the reply for this accepted recipient.
    BodyEnd(Option<usize>),
    /// A NOOP the caller asked for.
    Noop,
    Quit,
}

/// Where the client stands, as far as the caller is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for replies; the caller has nothing to do but read.
    Busy,
    /// STARTTLS got its 220: waiting for the caller's handshake.
    AwaitTls,
    /// A custom mechanism's challenge was reported: waiting for the
    /// caller's answer.
    AuthChallenge,
    /// Ready for AUTH, MAIL or QUIT.
    Idle,
    /// Waiting for body bytes from the caller.
    Body,
    /// Over.
    Closed,
}

/// Events that carry no reply, given out on the next call.
#[derive(Debug, Clone)]
enum Deferred {
    Ready,
    SendBody,
    TransactionEnd(TransactionSummary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnPhase {
    /// MAIL / RCPT (/ DATA) replies outstanding.
    Envelope,
    /// The caller sends the body.
    Body,
    /// The end of the body was sent; final replies outstanding.
    Ending,
    /// The transaction failed; remaining replies are drained.
    Failed,
}

#[derive(Debug, Clone)]
struct Txn {
    /// The MAIL command line sent, CRLF included.
    mail: Vec<u8>,
    bdat: bool,
    phase: TxnPhase,
    sender: Option<Verdict>,
    recipients: Vec<RecipientStatus>,
    accepted: Vec<usize>,
    message: Option<Verdict>,
    stuffer: Option<DotStuffer>,
    /// BDAT of a body that is not BINARYMIME: its line ends are made
    /// CRLF; `None` sends the chunks byte for byte.
    lines: Option<LineEnds>,
    /// The encoded chunk, whose length its BDAT line carries.
    chunk: Vec<u8>,
    /// BDAT chunks sent.
    chunks: u32,
    /// The server holds transaction state that needs RSET when this
    /// transaction ends without a message reply.
    needs_rset: bool,
}

impl Txn {
    /// Records `verdict` as the outcome for every recipient RCPT
    /// accepted: the refusal of DATA or of a BDAT chunk, or the one reply
    /// after the body in SMTP.
    fn decide_accepted(&mut self, verdict: Verdict) {
        for &i in &self.accepted {
            if let Some(r) = self.recipients.get_mut(i) {
                r.delivery = Some(verdict);
            }
        }
    }

    fn summary(&self) -> TransactionSummary {
        TransactionSummary {
            sender: self.sender,
            recipients: self.recipients.clone(),
            message: self.message,
        }
    }
}

/// The sans-IO SMTP / LMTP client session.
///
/// Feed the server's bytes to [`Client::handle_input`], act on the events,
/// and send what [`Client::poll_transmit`] gives. See the
/// [module documentation](super) for a complete run loop.
pub struct Client {
    config: ClientConfig,
    /// Why the configuration cannot be used, reported by the first
    /// `handle_input`.
    unusable: Option<ConfigError>,
    decoder: ReplyDecoder,
    state: State,
    out: Vec<u8>,
    pending: VecDeque<Pending>,
    /// How many of the first `pending` entries [`Client::poll_transmit`]
    /// has handed out (the greeting counts as handed out). A reply can
    /// only answer one of these: the server cannot answer a command it
    /// has not been sent.
    sent: usize,
    /// Bytes of a reply came while no command it could answer had been
    /// handed out (a reply begun before it, ended after).
    early_input: bool,
    /// Commands written only once the replies before them came (no
    /// PIPELINING).
    held: VecDeque<(Pending, Vec<u8>)>,
    deferred: VecDeque<Deferred>,
    /// The raw EHLO / LHLO reply, kept for the session.
    ehlo_raw: Vec<u8>,
    extensions: Extensions,
    max_size: Option<u64>,
    /// The server's `LIMITS` (RFC 9422), from the last EHLO or LHLO.
    limits: Limits,
    /// MAIL commands sent on this connection: `MAILMAX` counts every one,
    /// accepted or not (RFC 9422 §4.1).
    transactions: u32,
    tls: bool,
    /// The caller can run a TLS handshake after STARTTLS; see
    /// [`Client::set_can_start_tls`].
    can_start_tls: bool,
    /// EHLO, HELO or LHLO succeeded (since the last TLS start).
    hello_done: bool,
    authenticated: bool,
    /// The last AUTH, when it failed and none succeeded since.
    failed_auth: Option<FailedAuth>,
    /// The server's refusal of STARTTLS in this session.
    starttls_refusal: Option<OwnedReply>,
    auth: Option<Exchange>,
    txn: Option<Txn>,
    /// MAIL command lines refused with a 5yz in this session, with the
    /// refusal, oldest first; at most [`REFUSED_MAIL_MAX`].
    refused_mail: VecDeque<(Vec<u8>, OwnedReply)>,
    /// A failed transaction left state on the server: RSET goes before the
    /// next MAIL.
    needs_rset: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The output buffer may hold an AUTH response: show its length only.
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("pending", &self.pending)
            .field("held", &self.held.len())
            .field("out_len", &self.out.len())
            .field("extensions", &self.extensions)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn write(cmd: &Command<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    cmd.write_to(&mut v);
    v
}

impl Client {
    /// A client at the start of a connection, waiting for the greeting.
    ///
    /// A configuration that [`ClientConfig::check`] refuses (a UTF-8
    /// hello domain) gives a client whose first
    /// [`Client::handle_input`] returns [`ClientError::Config`] and
    /// closes the session, before anything is sent.
    #[must_use]
    pub fn new(config: ClientConfig) -> Self {
        let unusable = config.check().err();
        let decoder = ReplyDecoder::with_config(config.replies);
        let tls = config.implicit_tls;
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Greeting);
        Self {
            config,
            unusable,
            decoder,
            state: State::Busy,
            out: Vec::new(),
            pending,
            sent: 1,
            early_input: false,
            held: VecDeque::new(),
            deferred: VecDeque::new(),
            ehlo_raw: Vec::new(),
            extensions: Extensions::new(),
            max_size: None,
            limits: Limits::default(),
            transactions: 0,
            tls,
            can_start_tls: true,
            hello_done: false,
            authenticated: false,
            failed_auth: None,
            starttls_refusal: None,
            auth: None,
            txn: None,
            refused_mail: VecDeque::new(),
            needs_rset: false,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    // ----- caller-facing queries -----

    /// The server's capabilities from the last EHLO / LHLO reply, or `None`
    /// before it (and after HELO, after STARTTLS until the new EHLO, and
    /// after a hello accepted with a 2yz other than 250, which lists none).
    /// A capability line that is not UTF-8 is skipped
    /// ([`EhloReply::invalid_lines`] counts it); when the first line has
    /// no usable domain, [`EhloReply::domain`] is empty and the
    /// capabilities are read all the same.
    #[must_use]
    pub fn capabilities(&self) -> Option<EhloReply<'_>> {
        if self.ehlo_raw.is_empty() {
            return None;
        }
        let mut dec = ReplyDecoder::with_config(self.config.replies);
        match dec.decode(&self.ehlo_raw) {
            Ok(Decoded::Reply { reply, .. }) => EhloReply::parse_lenient(&reply).ok(),
            _ => None,
        }
    }

    /// The typed extensions the server advertised (empty before EHLO).
    #[must_use]
    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    /// The limits of the last EHLO / LHLO reply's `LIMITS` line (RFC 9422;
    /// none before EHLO or without the line). [`Client::send_mail`]
    /// refuses an envelope over `RCPTMAX` or `RCPTDOMAINMAX`, and a
    /// transaction past `MAILMAX` on this connection, with a [`Refusal`]:
    /// split the recipients into several transactions, or open another
    /// connection.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True when `ext` was advertised in the last EHLO / LHLO reply.
    #[must_use]
    pub fn has(&self, ext: Extension) -> bool {
        self.extensions.contains(ext)
    }

    /// True once the connection is encrypted (implicit TLS, or after
    /// [`Client::tls_established`]).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Tells the client whether its caller can run the TLS handshake that
    /// follows a `220` to STARTTLS (it has a TLS configuration); `true`
    /// for a new client. Without it, [`TlsPolicy::Opportunistic`] does
    /// not send STARTTLS, as when the server does not offer it: the
    /// session goes on in plain text after [`ClientEvent::TlsUnavailable`]
    /// without a reply (whether the server offered STARTTLS is in
    /// [`Client::has`]). [`TlsPolicy::Required`] still sends it, and the
    /// session fails at the handshake the caller cannot run. Decided when
    /// the reply to EHLO comes: set it before.
    ///
    /// The adapters' drivers set it to `false` when they are given no TLS
    /// configuration.
    pub fn set_can_start_tls(&mut self, can: bool) {
        self.can_start_tls = can;
    }

    /// True after a successful AUTH.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The last AUTH tried on this session, when it did not authenticate
    /// the session: the server's refusal ([`ClientEvent::AuthFailed`]), or
    /// the error of a [`Client::authenticate`] that could not start it.
    /// `None` before any AUTH, and again once one succeeds or TLS starts
    /// (RFC 3207 §4.2: the session starts over).
    ///
    /// The machine still lets MAIL go out after it: a relay may take mail
    /// without AUTH. [`Delivery`](super::Delivery) sends none then for a
    /// delivery without credentials of its own
    /// ([`NotAttempted::AuthFailed`](super::NotAttempted::AuthFailed)): on
    /// a session kept for several messages, the application asked for
    /// authentication and did not get it.
    #[must_use]
    pub fn failed_auth(&self) -> Option<&FailedAuth> {
        self.failed_auth.as_ref()
    }

    /// The server's refusal of STARTTLS in this session: its 4yz or 5yz
    /// reply (a `454 4.7.0` "TLS not available due to temporary reason",
    /// RFC 3207 §4, or a `501`); `None` when STARTTLS was not sent or was
    /// accepted (a 2yz; a 3yz ends the session as a protocol error). Under
    /// [`TlsPolicy::Opportunistic`] the session goes on in plain text
    /// after it; [`Delivery`](super::Delivery) reads it to tell a message
    /// that needs TLS (REQUIRETLS, RFC 8689) to retry later after a 4yz
    /// rather than to bounce.
    #[must_use]
    pub fn starttls_refusal(&self) -> Option<&OwnedReply> {
        self.starttls_refusal.as_ref()
    }

    /// The server's 5yz refusal of an earlier MAIL in this session that
    /// was the very request [`Client::send_mail`] would send for
    /// `envelope` now: the same reverse path and the same parameters
    /// (those the envelope gives and the server's extensions let through,
    /// `SIZE=` included). RFC 5321 §4.2.1: after a 5yz, "the SMTP client
    /// SHOULD NOT repeat the exact request". `None` when there is none, or
    /// when `send_mail` would refuse the envelope anyway.
    ///
    /// The machine still sends what `send_mail` is given;
    /// [`Delivery`](super::Delivery) asks this first and sends nothing
    /// for such a message
    /// ([`NotAttempted::SenderRefused`](super::NotAttempted::SenderRefused)).
    /// The session remembers the last 8 such refusals; a successful AUTH
    /// or the start of TLS forgets them, as the same MAIL may be taken
    /// then (a `530` "Authentication required", RFC 4954 §6).
    #[must_use]
    pub fn mail_refusal(&self, envelope: &Envelope<'_>) -> Option<&OwnedReply> {
        if self.refused_mail.is_empty() {
            return None;
        }
        let line = write(&Command::Mail(self.mail_from(envelope).ok()?));
        self.refused_mail
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, reply)| reply)
    }

    /// True when the client waits for a call: AUTH, MAIL or QUIT.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle && self.deferred.is_empty()
    }

    /// True when the client waits for body bytes.
    #[must_use]
    pub fn wants_body(&self) -> bool {
        self.state == State::Body
    }

    /// Where the session stands, in the terms of the sequencing table
    /// shared with the server machine.
    #[must_use]
    pub fn phase(&self) -> Phase {
        if self.state == State::Closed {
            return Phase::Closed;
        }
        if self.pending.front() == Some(&Pending::Greeting) {
            return Phase::Greeting;
        }
        if !self.hello_done {
            return Phase::NeedHello;
        }
        let Some(t) = self.txn.as_ref() else {
            return Phase::Ready;
        };
        match t.phase {
            TxnPhase::Body | TxnPhase::Ending if t.bdat => {
                if t.chunks > 0 || t.phase == TxnPhase::Ending {
                    Phase::Bdat
                } else {
                    Phase::Rcpt
                }
            }
            TxnPhase::Body | TxnPhase::Ending => Phase::Data,
            _ if !t.accepted.is_empty() => Phase::Rcpt,
            _ if t.sender == Some(Verdict::Success) => Phase::Mail,
            _ => Phase::Ready,
        }
    }

    /// True once the session is over.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The RFC 5321 §4.5.3.2 timeout for what the client waits on now, or
    /// `None` when it waits for nothing from the server. While the caller
    /// sends the body this is the limit for sending each block.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        let t = &self.config.timeouts;
        if matches!(
            self.state,
            State::Closed | State::AwaitTls | State::AuthChallenge
        ) {
            return None;
        }
        match self.pending.front() {
            Some(Pending::Greeting) => Some(t.initial),
            Some(Pending::Mail | Pending::Rset) => Some(t.mail),
            Some(Pending::Rcpt(_)) => Some(t.rcpt),
            Some(Pending::Data) => Some(t.data_init),
            Some(Pending::Bdat) => Some(t.data_block),
            Some(Pending::BodyEnd(_) | Pending::EmptyDot) => Some(t.data_termination),
            Some(_) => Some(t.mail),
            None if self.state == State::Body => Some(t.data_block),
            None => None,
        }
    }

    /// Appends the bytes to send to `out` and returns how many. Call after
    /// every event and every successful method call.
    ///
    /// The commands in those bytes count as sent from then on: only their
    /// replies may follow in [`Client::handle_input`]. Write the bytes
    /// before reading the replies to them (the bytes already read may
    /// answer only commands handed out before).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.sent = self.pending.len();
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    /// True when [`Client::poll_transmit`] has bytes to give.
    #[must_use]
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    // ----- input -----

    /// Feeds the server's bytes. `input` starts at the first byte not yet
    /// consumed; after the step, drop [`Step::consumed`] bytes from the
    /// front of the buffer and call again until the outcome is
    /// `NeedInput`, `Paused` or `Closed`.
    ///
    /// An `Err` other than [`ClientError::Usage`] means the server broke
    /// the protocol, or for [`ClientError::Config`] on the first call that
    /// the configuration cannot be used; the session is then closed.
    ///
    /// A reply can only answer a command [`Client::poll_transmit`] has
    /// handed out (the greeting answers the connection): a server cannot
    /// answer a command it was not sent (RFC 5321 §4.2). A reply that
    /// comes, or begins, while every command waiting for one is still
    /// queued (the bytes after the greeting in the same read, before the
    /// EHLO went out; replies read with the MAIL reply to RCPTs that,
    /// without PIPELINING, had not been released yet; bytes read while a
    /// [`ClientEvent::AuthChallenge`] waits for its answer) ends the
    /// session with [`ClientError::UnexpectedReply`], rather than being
    /// taken for the reply to the next command and every later reply for
    /// the one before its own. A `421` is the exception: it may come
    /// unasked (RFC 5321 §3.8) and gives [`ClientEvent::ServiceClosing`]
    /// wherever it comes. So a driver writes what `poll_transmit` gives
    /// before it reads again, and hands the machine only bytes read after
    /// that, as any driver that writes before it waits for replies does.
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<Step<ClientEvent<'a>>, ClientError> {
        if let Some(e) = self.unusable.take() {
            return Err(self.fail(ClientError::Config(e)));
        }
        if let Some(d) = self.deferred.pop_front() {
            return Ok(Step::event(0, self.deferred_event(d)));
        }
        let mut consumed = 0;
        // Each round consumes one whole reply or returns.
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match self.state {
                State::Closed => return Ok(Step::closed(consumed)),
                State::AwaitTls => {
                    if rest.is_empty() {
                        return Ok(Step::paused(consumed));
                    }
                    return Err(self.fail(ClientError::ResponseInjection));
                }
                // The application answers first; what the server sent
                // meanwhile stays in the caller's buffer. It came before
                // the answer was handed out, so it cannot be the reply to
                // it (a 421 excepted).
                State::AuthChallenge => {
                    if !rest.is_empty() {
                        self.early_input = true;
                    }
                    return Ok(Step::paused(consumed));
                }
                _ => {}
            }
            let waiting_for_caller = matches!(self.state, State::Idle | State::Body);
            if self.pending.is_empty() && (rest.is_empty() || !waiting_for_caller) {
                return Ok(if waiting_for_caller {
                    Step::paused(consumed)
                } else {
                    Step::need_input(consumed)
                });
            }
            let limits = self.reply_limits();
            self.decoder.set_config(limits);
            let (reply, used) = match self.decoder.decode(rest) {
                Ok(Decoded::Reply { reply, consumed }) => (reply, consumed),
                Ok(Decoded::Incomplete) => {
                    if !rest.is_empty() && self.awaiting_unsent() {
                        self.early_input = true;
                    }
                    return Ok(if waiting_for_caller {
                        Step::paused(consumed)
                    } else {
                        Step::need_input(consumed)
                    });
                }
                Ok(Decoded::Skipped { consumed: c }) => {
                    if c == 0 {
                        return Ok(Step::need_input(consumed));
                    }
                    consumed += c;
                    continue;
                }
                Err(e) => return Err(self.fail(ClientError::BadReply(e))),
            };
            let early = std::mem::take(&mut self.early_input) || self.awaiting_unsent();
            if early && reply.code() != ReplyCode::SERVICE_NOT_AVAILABLE {
                // The server answered a command before it was sent: the
                // reply is not the command's (RFC 5321 §4.2: one reply to
                // each command), and every reply after it would be taken
                // for the one before. Only a 421 may come unasked (§3.8).
                return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
            }
            consumed += used;
            let after = input.get(consumed..).unwrap_or_default();
            if let Some(event) = self.on_reply(reply, after)? {
                return Ok(Step::event(consumed, event));
            }
            if let Some(d) = self.deferred.pop_front() {
                return Ok(Step::event(consumed, self.deferred_event(d)));
            }
        }
    }

    /// The limits the next reply is read with: the configured ones, but
    /// while an AUTH exchange waits for the server a `334` challenge line
    /// may take 12288 octets (RFC 4954 §4: "Clients and servers MUST be
    /// able to handle the maximum encoded size of challenges", 12288
    /// octets being enough for the deployed mechanisms).
    fn reply_limits(&self) -> DecoderConfig {
        let limits = self.config.replies;
        if self.pending.front() == Some(&Pending::Auth) {
            limits
                .with_max_line_len(limits.max_line_len.max(AUTH_LINE_MAX))
                .with_max_reply_len(limits.max_reply_len.max(AUTH_LINE_MAX))
        } else {
            limits
        }
    }

    fn deferred_event<'a>(&mut self, d: Deferred) -> ClientEvent<'a> {
        match d {
            Deferred::Ready => ClientEvent::Ready,
            Deferred::SendBody => ClientEvent::SendBody,
            Deferred::TransactionEnd(s) => ClientEvent::TransactionEnd(s),
        }
    }

    /// A command waits for its reply, but none of those waiting has been
    /// handed out yet.
    fn awaiting_unsent(&self) -> bool {
        self.sent == 0 && !self.pending.is_empty()
    }

    fn fail(&mut self, e: ClientError) -> ClientError {
        self.close();
        e
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.pending.clear();
        self.sent = 0;
        self.early_input = false;
        self.held.clear();
        self.deferred.clear();
        self.auth = None;
        self.txn = None;
    }

    /// A 421 (RFC 5321 §3.8): the session is over. The event carries the
    /// summary of a transaction in progress: in LMTP some recipients may
    /// have their message already, and the others count as retry later.
    ///
    /// Nothing more goes to the server: what was queued and not yet handed
    /// out by `poll_transmit` is dropped, even a command queued before the
    /// 421 was read (the HELO fallback, an AUTH response, the next RCPT
    /// without PIPELINING, a message the application started, body
    /// bytes). The server did not see it and is closing the connection.
    fn service_closing<'a>(&mut self, reply: Reply<'a>) -> ClientEvent<'a> {
        let transaction = self.txn.take().map(|t| t.summary());
        self.close();
        self.out.clear();
        ClientEvent::ServiceClosing { reply, transaction }
    }

    fn send(&mut self, cmd: &Command<'_>, pending: Pending) {
        cmd.write_to(&mut self.out);
        self.pending.push_back(pending);
    }

    fn send_quit(&mut self) {
        self.held.clear();
        self.send(&Command::Quit, Pending::Quit);
        self.state = State::Busy;
    }

    fn send_hello(&mut self) {
        let domain = self.config.hello_domain.clone();
        match self.config.protocol {
            Protocol::Smtp => self.send(&Command::Ehlo(domain), Pending::Ehlo),
            Protocol::Lmtp => self.send(&Command::Lhlo(domain), Pending::Lhlo),
        }
        self.state = State::Busy;
    }

    /// Handles one reply; returns the event it produces, if any.
    fn on_reply<'a>(
        &mut self,
        reply: Reply<'a>,
        after: &[u8],
    ) -> Result<Option<ClientEvent<'a>>, ClientError> {
        let code = reply.code();
        let popped = self.pending.pop_front();
        self.sent = self.sent.saturating_sub(1);
        let Some(what) = popped else {
            // Nothing was asked: only a 421 shutdown notice is acceptable.
            if code == ReplyCode::SERVICE_NOT_AVAILABLE {
                return Ok(Some(self.service_closing(reply)));
            }
            return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
        };
        if code == ReplyCode::SERVICE_NOT_AVAILABLE && what != Pending::Quit {
            return Ok(Some(self.service_closing(reply)));
        }
        if code.is_positive_intermediate()
            && matches!(
                what,
                Pending::Mail
                    | Pending::Rcpt(_)
                    | Pending::Bdat
                    | Pending::BodyEnd(_)
                    | Pending::EmptyDot
                    | Pending::Noop
                    | Pending::StartTls
            )
        {
            // RFC 5321 §4.2.1: a 3yz accepts the command and waits for
            // more; §4.3.2 has none for MAIL, RCPT, NOOP or the end of the
            // message (the lone `.` of an empty one included; nor RFC 3030
            // for BDAT, nor RFC 3207 §4 for STARTTLS). The server's state
            // is unknown, as after a 2yz to DATA: neither a success nor a
            // refusal to report (a bounce; for STARTTLS, a session going
            // on in plain text), but a broken protocol.
            return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
        }
        if what == Pending::Rset && !code.is_positive_completion() {
            // RFC 5321 §4.1.1.5: the server "MUST send a '250 OK' reply"
            // to RSET. Any other leaves the failed transaction open there:
            // a MAIL after it (pipelined already) would be refused as
            // nested, a refusal the client would take for one of the
            // sender, and the RCPT and DATA after it could add to the old
            // transaction. The session ends instead.
            return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
        }
        let verdict = Verdict::of(code);
        match what {
            // RFC 5321 §4.2: "a sender-SMTP MUST be prepared to handle
            // codes not specified in this document and MUST do so by
            // interpreting the first digit only". The greeting, the hello
            // and STARTTLS are accepted by any 2yz, not only by the 220 or
            // 250 the RFCs give them; DATA and AUTH go on after any 3yz.
            Pending::Greeting => {
                if code.is_positive_completion() {
                    self.send_hello();
                    Ok(Some(ClientEvent::Greeting { reply }))
                } else {
                    self.send_quit();
                    Ok(Some(ClientEvent::GreetingRejected { reply }))
                }
            }
            Pending::Ehlo | Pending::Lhlo if code.is_positive_completion() => {
                self.ehlo_raw.clear();
                // A line that is not UTF-8, or a first line without a
                // usable domain, costs nothing else: the capabilities on
                // the other lines (STARTTLS above all) still count. A 2yz
                // other than 250 accepts the hello but is no EHLO reply
                // (RFC 5321 §4.1.1.1): no extension is taken from it.
                match EhloReply::parse_lenient(&reply) {
                    Ok(ehlo) => {
                        self.extensions = ehlo.extensions();
                        self.max_size = ehlo.max_size();
                        self.limits = ehlo.limits();
                        self.ehlo_raw.extend_from_slice(reply.as_bytes());
                    }
                    Err(_) => self.forget_capabilities(),
                }
                Ok(self.after_hello(None))
            }
            Pending::Ehlo
                if code == ReplyCode::SYNTAX_ERROR
                    || code == ReplyCode::COMMAND_NOT_IMPLEMENTED =>
            {
                let domain = self.config.hello_domain.clone();
                self.send(&Command::Helo(domain), Pending::Helo);
                Ok(None)
            }
            Pending::Helo if code.is_positive_completion() => {
                self.forget_capabilities();
                Ok(self.after_hello(None))
            }
            Pending::Ehlo | Pending::Lhlo | Pending::Helo => {
                self.send_quit();
                Ok(Some(ClientEvent::HelloRejected { reply }))
            }
            Pending::StartTls => {
                if code.is_positive_completion() {
                    if !after.is_empty() {
                        return Err(self.fail(ClientError::ResponseInjection));
                    }
                    self.state = State::AwaitTls;
                    Ok(Some(ClientEvent::StartTls))
                } else {
                    Ok(self.after_hello(Some(reply)))
                }
            }
            Pending::Auth => self.on_auth_reply(reply),
            Pending::Quit => {
                self.close();
                Ok(Some(ClientEvent::Closed { reply }))
            }
            Pending::Rset => {
                self.release_held();
                Ok(None)
            }
            Pending::Noop => {
                self.state = State::Idle;
                Ok(Some(ClientEvent::Noop { reply, verdict }))
            }
            Pending::Mail => {
                if let Some(t) = self.txn.as_mut() {
                    t.sender = Some(verdict);
                    if verdict.is_success() {
                        t.needs_rset = true;
                    } else {
                        // No transaction: the MAIL refusal decides for
                        // every recipient (RFC 5321 §4.2.1), whatever the
                        // pipelined RCPTs are answered (a 503 echoes it).
                        for r in &mut t.recipients {
                            r.delivery = Some(verdict);
                        }
                        t.phase = TxnPhase::Failed;
                        t.needs_rset = false;
                        self.held.clear();
                        if verdict == Verdict::Permanent {
                            // RFC 5321 §4.2.1: not to be repeated.
                            let line = std::mem::take(&mut t.mail);
                            self.refused_mail.retain(|(l, _)| *l != line);
                            if self.refused_mail.len() >= REFUSED_MAIL_MAX {
                                self.refused_mail.pop_front();
                            }
                            self.refused_mail.push_back((line, reply.into_owned()));
                        }
                    }
                }
                self.advance_txn();
                Ok(Some(ClientEvent::Sender { reply, verdict }))
            }
            Pending::Rcpt(index) => {
                let verdict = rcpt_verdict(&reply);
                if let Some(t) = self.txn.as_mut() {
                    if let Some(r) = t.recipients.get_mut(index) {
                        r.rcpt = Some(verdict);
                    }
                    if verdict.is_success() && t.sender == Some(Verdict::Success) {
                        t.accepted.push(index);
                    }
                }
                self.advance_txn();
                Ok(Some(ClientEvent::Recipient {
                    index,
                    reply,
                    verdict,
                }))
            }
            Pending::Data => self.on_data_reply(reply),
            Pending::EmptyDot => {
                if let Some(t) = self.txn.as_mut() {
                    t.needs_rset = false;
                }
                self.advance_txn();
                Ok(None)
            }
            Pending::Bdat => {
                let pipelining = self.pipelining();
                let event = match self.txn.as_mut() {
                    Some(t) if !verdict.is_success() && t.phase != TxnPhase::Failed => {
                        // RFC 3030 §2: after a 4xx or 5xx to a chunk "the
                        // transaction should be considered failed and the
                        // sender-SMTP MUST NOT send any additional BDAT
                        // segments": the refusal is every accepted
                        // recipient's.
                        t.phase = TxnPhase::Failed;
                        t.message = Some(verdict);
                        t.decide_accepted(verdict);
                        t.needs_rset = true;
                        // The caller sends no more of the body; the replies
                        // to the chunks already sent are still due, so the
                        // client reads (NeedInput), and the transaction
                        // ends once they are in.
                        self.state = State::Busy;
                        // A BDAT LAST already sent after the refused chunk
                        // is answered once (503, RFC 3030 §2), not once per
                        // recipient as a final chunk in LMTP would be.
                        let last = |p: &Pending| matches!(p, Pending::BodyEnd(Some(_)));
                        if let Some(first) = self.pending.iter().position(last) {
                            let sent_last = self
                                .pending
                                .iter()
                                .take(self.sent)
                                .filter(|p| last(p))
                                .count();
                            let was_sent = first < self.sent;
                            self.pending.retain(|p| !last(p));
                            self.pending.insert(first, Pending::BodyEnd(None));
                            self.sent = self.sent - sent_last + usize::from(was_sent);
                        }
                        Some(ClientEvent::Message {
                            recipient: None,
                            reply,
                            verdict,
                        })
                    }
                    Some(t) if t.phase == TxnPhase::Body && !pipelining => {
                        self.state = State::Body;
                        Some(ClientEvent::SendBody)
                    }
                    _ => None,
                };
                self.advance_txn();
                Ok(event)
            }
            Pending::BodyEnd(recipient) => {
                if let Some(t) = self.txn.as_mut() {
                    if t.phase == TxnPhase::Failed {
                        // A BDAT chunk was refused and reported: the reply
                        // to LAST only confirms it.
                        self.advance_txn();
                        return Ok(None);
                    }
                    t.needs_rset = false;
                    match recipient {
                        Some(i) => {
                            if let Some(r) = t.recipients.get_mut(i) {
                                r.delivery = Some(verdict);
                            }
                            t.message = Some(worst(t.message, verdict));
                        }
                        None => {
                            t.decide_accepted(verdict);
                            t.message = Some(verdict);
                        }
                    }
                }
                self.advance_txn();
                Ok(Some(ClientEvent::Message {
                    recipient,
                    reply,
                    verdict,
                }))
            }
        }
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining && self.extensions.contains(Extension::Pipelining)
    }

    /// After a successful EHLO / HELO / LHLO, or a refused STARTTLS.
    fn after_hello<'a>(&mut self, starttls_refusal: Option<Reply<'a>>) -> Option<ClientEvent<'a>> {
        self.hello_done = true;
        let refused = starttls_refusal.is_some();
        if let Some(reply) = &starttls_refusal {
            self.starttls_refusal = Some(reply.into_owned());
        }
        if !self.tls && self.config.tls != TlsPolicy::Off {
            // Opportunistic TLS is TLS when it can be had: not when the
            // caller cannot run the handshake.
            let can = self.can_start_tls || self.config.tls == TlsPolicy::Required;
            if !refused && can && self.extensions.contains(Extension::StartTls) {
                self.send(&Command::StartTls, Pending::StartTls);
                self.state = State::Busy;
                return None;
            }
            if self.config.tls == TlsPolicy::Required {
                self.send_quit();
                return Some(ClientEvent::TlsUnavailable {
                    reply: starttls_refusal,
                });
            }
            // Opportunistic: the session goes on in plain text, and the
            // application hears why first (not offered, refused, or no
            // handshake possible).
            self.state = State::Idle;
            self.deferred.push_back(Deferred::Ready);
            return Some(ClientEvent::TlsUnavailable {
                reply: starttls_refusal,
            });
        }
        self.state = State::Idle;
        Some(ClientEvent::Ready)
    }

    // ----- TLS -----

    /// Tells the client the TLS handshake requested by
    /// [`ClientEvent::StartTls`] is done. Everything learnt before is
    /// forgotten (RFC 3207 §4.2) and EHLO is sent again.
    pub fn tls_established(&mut self) -> Result<(), ClientError> {
        if self.state != State::AwaitTls {
            return Err(UsageError::NoTlsRequested.into());
        }
        self.tls = true;
        self.hello_done = false;
        self.decoder.reset();
        self.forget_capabilities();
        self.authenticated = false;
        self.failed_auth = None;
        self.refused_mail.clear();
        self.send_hello();
        Ok(())
    }

    // ----- AUTH -----

    /// Starts AUTH with `credentials`, using `mechanism` when given (even
    /// if the server does not list it) or else the best mechanism both
    /// sides support: PLAIN, then LOGIN for a password (PLAIN only with an
    /// authzid other than the user name, which LOGIN cannot carry);
    /// OAUTHBEARER, then XOAUTH2 for a token. [`AuthCredentials::Custom`]
    /// use their own mechanism, and only when the server advertises it (in
    /// any case); otherwise this returns [`UsageError::NoMechanism`] and
    /// sends nothing. The reply comes as [`ClientEvent::Authenticated`] or
    /// [`ClientEvent::AuthFailed`], after any number of
    /// [`ClientEvent::AuthChallenge`] for a custom mechanism.
    ///
    /// An initial response goes on the AUTH line when that line fits in
    /// the 512 octets of a command line (RFC 5321 §4.5.3.1.4; RFC 4954 §4:
    /// "the AUTH command is still subject to the line length limitations
    /// defined in \[SMTP\]"), else alone on the line after the server's
    /// empty `334`, where RFC 4954 §4 allows 12288 octets. A response too
    /// long for even that line (its base64 and CRLF past 12288 octets: more
    /// than 9213 raw octets) is refused with
    /// [`UsageError::ResponseTooLong`] and nothing is sent.
    /// LOGIN's user name and password, each sent on a line of its own,
    /// are held to the same limit.
    ///
    /// Credentials the mechanism cannot carry, or that the server's
    /// decoder refuses, are refused with [`UsageError::Credentials`] and
    /// nothing is sent: for a password (PLAIN and LOGIN), an empty user
    /// name or password and a NUL in the user name, password or authzid;
    /// for a token, the values
    /// [`sasl::xoauth2_response`](crate::sasl::xoauth2_response) and
    /// [`sasl::oauthbearer_response`](crate::sasl::oauthbearer_response)
    /// refuse. PLAIN values are not limited to the 255 octets RFC 4616 §2
    /// asks a server to accept at least; the line limit above applies.
    ///
    /// An AUTH that fails, refused by the server or unable to start
    /// ([`UsageError::AuthNeedsTls`], [`UsageError::NoMechanism`],
    /// [`UsageError::Credentials`], [`UsageError::ResponseTooLong`]; not
    /// a call on a session that is busy, closed or already
    /// authenticated), is remembered until one succeeds: see
    /// [`Client::failed_auth`].
    ///
    /// After a transaction that failed once its MAIL was accepted (every
    /// recipient refused, DATA refused), the server still holds it, and
    /// RFC 4954 §4 does not permit AUTH during a mail transaction: RSET
    /// goes first, and AUTH once it is answered.
    pub fn authenticate(
        &mut self,
        credentials: AuthCredentials,
        mechanism: Option<SaslMechanism>,
    ) -> Result<SaslMechanism, ClientError> {
        self.check_idle()?;
        if self.authenticated {
            return Err(UsageError::AlreadyAuthenticated.into());
        }
        self.start_auth(credentials, mechanism).map_err(|e| {
            self.failed_auth = Some(FailedAuth::Unavailable(e));
            e.into()
        })
    }

    /// [`Client::authenticate`] on an idle session not authenticated yet.
    fn start_auth(
        &mut self,
        credentials: AuthCredentials,
        mechanism: Option<SaslMechanism>,
    ) -> Result<SaslMechanism, UsageError> {
        if !self.tls && !self.config.allow_auth_without_tls {
            return Err(UsageError::AuthNeedsTls);
        }
        let ehlo = self.capabilities();
        let chosen =
            auth::choose(&credentials, mechanism, ehlo.as_ref()).ok_or(UsageError::NoMechanism)?;
        let mut exchange = Exchange::new(chosen, credentials);
        let mut initial = exchange
            .initial_response()
            .map_err(UsageError::Credentials)?;
        // LOGIN answers each 334 with a value on a line of its own.
        if line_len_of(exchange.longest_login_response()) > AUTH_LINE_MAX {
            return Err(UsageError::ResponseTooLong);
        }
        // RFC 4954 §4: the AUTH command keeps to the 512 octets of a
        // command line; a longer initial response waits for the server's
        // empty 334 and goes alone on a line of up to 12288 octets, and one
        // that does not fit there either is refused.
        if let Some(raw) = initial.as_deref() {
            let on_auth_line =
                (5 + chosen.as_str().len() + 1).saturating_add(response_line_len(raw));
            if on_auth_line > COMMAND_LINE_MAX {
                if response_line_len(raw) > AUTH_LINE_MAX {
                    return Err(UsageError::ResponseTooLong);
                }
                exchange.delayed_initial = initial.take();
            }
        }
        let cmd = Command::Auth {
            mechanism: Mechanism::from(chosen),
            initial_response: initial.as_deref().map(|raw| {
                if raw.is_empty() {
                    Base64::empty()
                } else {
                    Base64::encode(raw)
                }
            }),
        };
        if self.needs_rset {
            // RFC 4954 §4: "The AUTH command is not permitted during a mail
            // transaction" (the server answers 503). A failed transaction
            // the server still holds is reset first; AUTH waits for the
            // RSET reply.
            self.needs_rset = false;
            self.send(&Command::Rset, Pending::Rset);
            self.held.push_back((Pending::Auth, write(&cmd)));
        } else {
            self.send(&cmd, Pending::Auth);
        }
        self.auth = Some(exchange);
        self.state = State::Busy;
        Ok(chosen)
    }

    /// Cancels the AUTH exchange in progress: the next 334 challenge is
    /// answered with `*` (RFC 4954 §4), and the result is reported as
    /// [`AuthFailure::Cancelled`]. After a [`ClientEvent::AuthChallenge`]
    /// the `*` answers that challenge and goes out at once.
    pub fn cancel_auth(&mut self) -> Result<(), ClientError> {
        let Some(x) = self.auth.as_mut() else {
            return Err(UsageError::NoAuthInProgress.into());
        };
        if self.state == State::AuthChallenge {
            let _ = x.cancel(None, &mut self.out);
            self.pending.push_back(Pending::Auth);
            self.state = State::Busy;
        } else {
            x.cancel_requested = true;
        }
        Ok(())
    }

    /// Answers the challenge of a [`ClientEvent::AuthChallenge`] with
    /// `response` (raw bytes): the client sends it base64-encoded on a
    /// line of its own (an empty response is an empty line, RFC 4954 §4)
    /// and reads the server's next reply: another challenge, or the end of
    /// the exchange as [`ClientEvent::Authenticated`] or
    /// [`ClientEvent::AuthFailed`].
    ///
    /// The line must fit in the 12288 octets RFC 4954 §4 allows (and
    /// servers enforce), so `response` is at most 9213 octets (12284 of
    /// base64 and CRLF); a longer one is refused with
    /// [`UsageError::ResponseTooLong`], nothing is sent and the challenge
    /// still awaits its answer.
    ///
    /// The mechanism's computation (a keyed digest, a SCRAM proof...) is
    /// the application's; here it is a CRAM-MD5 exchange with the answer
    /// of RFC 2195's example:
    ///
    /// ```
    /// use smtp_proto::client::{AuthCredentials, Client, ClientConfig, ClientEvent, Outcome, TlsPolicy};
    /// use smtp_proto::command::Domain;
    /// use smtp_proto::sasl::CustomMechanism;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = ClientConfig::new(Domain::new("client.example.net")?)
    ///     .with_tls(TlsPolicy::Off)
    ///     .with_auth_without_tls(true);
    /// let mut client = Client::new(config);
    /// let mut wire = Vec::new();
    ///
    /// let step = client.handle_input(b"220 mx.example.org ESMTP\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ClientEvent::Greeting { .. })));
    /// client.poll_transmit(&mut wire); // EHLO: write it before reading its reply
    /// let step = client.handle_input(b"250-mx.example.org\r\n250 AUTH CRAM-MD5\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ClientEvent::Ready)));
    ///
    /// let cram = CustomMechanism::new("CRAM-MD5")?;
    /// client.authenticate(AuthCredentials::custom(cram, None), None)?;
    /// client.poll_transmit(&mut wire);
    ///
    /// // The server's challenge: <1896.697170952@postoffice.reston.mci.net>
    /// let challenge = b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n";
    /// let step = client.handle_input(challenge)?;
    /// let Outcome::Event(ClientEvent::AuthChallenge { challenge, round: 1, .. }) = step.outcome
    /// else {
    ///     panic!("expected the challenge");
    /// };
    /// assert_eq!(challenge, b"<1896.697170952@postoffice.reston.mci.net>");
    /// // The application computes the keyed digest with its own crypto.
    /// client.auth_response(b"tim b913a602c7eda7a495b4e6e7334d3890")?;
    /// client.poll_transmit(&mut wire);
    ///
    /// let step = client.handle_input(b"235 2.7.0 Authentication successful\r\n")?;
    /// assert!(matches!(step.outcome, Outcome::Event(ClientEvent::Authenticated { .. })));
    /// assert!(client.is_authenticated());
    ///
    /// let wire = String::from_utf8(wire)?;
    /// assert!(wire.ends_with(
    ///     "AUTH CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn auth_response(&mut self, response: &[u8]) -> Result<(), ClientError> {
        if self.state != State::AuthChallenge || self.auth.is_none() {
            return Err(UsageError::NoAuthChallenge.into());
        }
        if response_line_len(response) > AUTH_LINE_MAX {
            return Err(UsageError::ResponseTooLong.into());
        }
        self.out
            .extend_from_slice(Base64::encode(response).as_str().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.pending.push_back(Pending::Auth);
        self.state = State::Busy;
        Ok(())
    }

    fn on_auth_reply<'a>(
        &mut self,
        reply: Reply<'a>,
    ) -> Result<Option<ClientEvent<'a>>, ClientError> {
        let code = reply.code();
        // RFC 5321 §4.2: a 3yz other than 334 is read by its first digit,
        // as a continuation: the server waits for the next line.
        if code.is_positive_intermediate() {
            let max_rounds = self.config.max_auth_rounds;
            if self.auth.as_ref().is_some_and(|x| x.cancelled) {
                // RFC 4954 §4: the server answers the client's `*` with
                // 501; another challenge would go on for as long as the
                // server likes.
                return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
            }
            if let Some(x) = self.auth.as_mut() {
                // RFC 4954 §4: a continuation is one line; a multi-line
                // 334 is no challenge at all.
                let text = (!reply.is_multiline()).then(|| reply.text());
                match x.custom_challenge(text, max_rounds, &mut self.out) {
                    Some(CustomStep::Ask {
                        mechanism,
                        challenge,
                        round,
                    }) => {
                        self.state = State::AuthChallenge;
                        return Ok(Some(ClientEvent::AuthChallenge {
                            mechanism,
                            challenge,
                            round,
                        }));
                    }
                    Some(CustomStep::Answered) => {}
                    None => x.answer(text, &mut self.out),
                }
                self.pending.push_back(Pending::Auth);
                return Ok(None);
            }
        }
        let (cancelled, reason) = self
            .auth
            .take()
            .map_or((false, None), |x| (x.cancelled, x.cancel_reason));
        self.state = State::Idle;
        if code == ReplyCode::AUTH_SUCCEEDED || (code.is_positive_completion() && !cancelled) {
            self.authenticated = true;
            self.failed_auth = None;
            // The session's state changed: a MAIL refused before (a `530`
            // "Authentication required", RFC 4954 §6) is another request
            // now.
            self.refused_mail.clear();
            Ok(Some(ClientEvent::Authenticated { reply }))
        } else {
            self.failed_auth = Some(FailedAuth::Refused(reply.into_owned()));
            Ok(Some(ClientEvent::AuthFailed {
                reply,
                failure: reason.unwrap_or_else(|| AuthFailure::of(code.get(), cancelled)),
            }))
        }
    }

    /// Forgets what the last EHLO or LHLO said: after TLS starts, after a
    /// HELO, or when the reply could not be read.
    fn forget_capabilities(&mut self) {
        self.ehlo_raw.clear();
        self.extensions = Extensions::new();
        self.max_size = None;
        self.limits = Limits::default();
    }

    // ----- transactions -----

    fn check_idle(&self) -> Result<(), ClientError> {
        match self.state {
            State::Idle if self.txn.is_none() && self.deferred.is_empty() => Ok(()),
            State::Closed => Err(UsageError::Closed.into()),
            _ => Err(UsageError::NotIdle.into()),
        }
    }

    /// The server's `LIMITS` (RFC 9422): `MAILMAX` for the connection so
    /// far, `RCPTMAX` and `RCPTDOMAINMAX` for this envelope.
    fn check_limits(&self, envelope: &Envelope<'_>) -> Result<(), Refusal> {
        let Limits {
            rcpt_max,
            mail_max,
            rcpt_domain_max,
        } = self.limits;
        if let Some(limit) = mail_max {
            if self.transactions >= limit {
                return Err(Refusal::TransactionLimit { limit });
            }
        }
        let count = envelope.recipients.len();
        if let Some(limit) = rcpt_max {
            if count > limit as usize {
                return Err(Refusal::TooManyRecipients { count, limit });
            }
        }
        if let Some(limit) = rcpt_domain_max {
            let count = envelope.recipient_domains();
            if count > limit as usize {
                return Err(Refusal::TooManyDomains { count, limit });
            }
        }
        Ok(())
    }

    /// The MAIL command [`Client::send_mail`] sends for `envelope`: its
    /// reverse path, and the parameters the envelope asks for that the
    /// server's extensions let through; a [`Refusal`] when the message
    /// needs an extension the server lacks or is above its SIZE.
    fn mail_from<'e>(&self, envelope: &Envelope<'e>) -> Result<MailFrom<'e>, Refusal> {
        let ext = self.extensions;
        let chunking_ok =
            ext.contains(Extension::Chunking) && self.config.chunking != ChunkingPolicy::Never;
        let mut params = MailParameters::default();
        match envelope.body {
            Some(BodyType::EightBitMime) => {
                if !ext.contains(Extension::EightBitMime) {
                    return Err(Refusal::EightBitMime);
                }
                params.body = Some(BodyType::EightBitMime);
            }
            Some(BodyType::BinaryMime) => {
                if !(chunking_ok && ext.contains(Extension::BinaryMime)) {
                    return Err(Refusal::BinaryMime);
                }
                params.body = Some(BodyType::BinaryMime);
            }
            Some(BodyType::SevenBit)
                if ext.contains(Extension::EightBitMime) || ext.contains(Extension::BinaryMime) =>
            {
                params.body = Some(BodyType::SevenBit);
            }
            Some(_) | None => {}
        }
        // An ORCPT address in UTF-8 (RFC 6533 §3), sent where DSN is
        // offered, needs SMTPUTF8 as an address in UTF-8 does.
        let utf8_orcpt = ext.contains(Extension::Dsn)
            && envelope
                .recipients
                .iter()
                .any(|r| r.orcpt.as_ref().is_some_and(Orcpt::is_utf8));
        if envelope.needs_smtputf8() || utf8_orcpt {
            if !ext.contains(Extension::SmtpUtf8) {
                return Err(Refusal::SmtpUtf8);
            }
            params.smtputf8 = true;
        }
        if envelope.require_tls {
            if !(self.tls && ext.contains(Extension::RequireTls)) {
                return Err(Refusal::RequireTls);
            }
            params.requiretls = true;
        }
        if let Some(size) = envelope.size {
            if let Some(limit) = self.max_size {
                if size > limit {
                    return Err(Refusal::TooLarge { size, limit });
                }
            }
            if ext.contains(Extension::Size) {
                params.size = Some(size);
            }
        }
        if ext.contains(Extension::Dsn) {
            params.ret = envelope.ret;
            params.envid = envelope.envid.clone();
        }
        Ok(MailFrom {
            reverse_path: envelope.sender.clone(),
            params,
        })
    }

    /// Starts a mail transaction. Everything is checked before anything is
    /// sent: a message that needs an extension the server lacks is
    /// refused with [`ClientError::Refused`] and nothing changes.
    ///
    /// With PIPELINING, MAIL, every RCPT and DATA (and a needed RSET
    /// before them) go out in one write; without it, one at a time.
    ///
    /// A MAIL refused with a 5yz is remembered for the session, and this
    /// sends it again all the same: ask [`Client::mail_refusal`] first
    /// (RFC 5321 §4.2.1), as [`Delivery`](super::Delivery) does.
    pub fn send_mail(&mut self, envelope: &Envelope<'_>) -> Result<(), ClientError> {
        self.check_idle()?;
        if envelope.recipients.is_empty() {
            return Err(UsageError::NoRecipients.into());
        }
        let mail = self.mail_from(envelope)?;
        self.check_limits(envelope)?;
        let ext = self.extensions;
        let chunking_ok =
            ext.contains(Extension::Chunking) && self.config.chunking != ChunkingPolicy::Never;
        let dsn = ext.contains(Extension::Dsn);
        let bdat = chunking_ok
            && (self.config.chunking == ChunkingPolicy::Prefer
                || envelope.body == Some(BodyType::BinaryMime));

        let mut cmds: Vec<(Pending, Vec<u8>)> = Vec::with_capacity(envelope.recipients.len() + 3);
        if self.needs_rset {
            cmds.push((Pending::Rset, write(&Command::Rset)));
        }
        let mail = write(&Command::Mail(mail));
        cmds.push((Pending::Mail, mail.clone()));
        for (i, r) in envelope.recipients.iter().enumerate() {
            let mut p = RcptParameters::default();
            if dsn {
                p.notify = r.notify;
                p.orcpt = r.orcpt.clone();
            }
            cmds.push((
                Pending::Rcpt(i),
                write(&Command::Rcpt(RcptTo {
                    forward_path: r.path.clone(),
                    params: p,
                })),
            ));
        }
        if !bdat {
            cmds.push((Pending::Data, write(&Command::Data)));
        }

        self.needs_rset = false;
        self.transactions = self.transactions.saturating_add(1);
        self.txn = Some(Txn {
            mail,
            bdat,
            phase: TxnPhase::Envelope,
            sender: None,
            recipients: vec![
                RecipientStatus {
                    rcpt: None,
                    delivery: None
                };
                envelope.recipients.len()
            ],
            accepted: Vec::new(),
            message: None,
            stuffer: None,
            lines: (bdat && envelope.body != Some(BodyType::BinaryMime)).then(LineEnds::new),
            chunk: Vec::new(),
            chunks: 0,
            needs_rset: false,
        });
        self.state = State::Busy;
        if self.pipelining() {
            for (p, bytes) in cmds {
                self.out.extend_from_slice(&bytes);
                self.pending.push_back(p);
            }
        } else {
            self.held.extend(cmds);
            self.release_held();
        }
        Ok(())
    }

    /// Writes the next held command (no PIPELINING), unless the
    /// transaction already decided not to send it.
    fn release_held(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        let Some((p, bytes)) = self.held.pop_front() else {
            return;
        };
        if let (Pending::Data, Some(t)) = (p, self.txn.as_ref()) {
            if t.accepted.is_empty() {
                // No recipient: DATA is not sent (RFC 5321 §3.3).
                self.held.clear();
                self.advance_txn();
                return;
            }
        }
        self.out.extend_from_slice(&bytes);
        self.pending.push_back(p);
    }

    fn txn_pending(&self) -> bool {
        !self.pending.is_empty() || !self.held.is_empty()
    }

    /// Moves the transaction on once the replies it waits for are in.
    fn advance_txn(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        if !self.held.is_empty() {
            self.release_held();
            if self.txn_pending() {
                return;
            }
        }
        let Some(t) = self.txn.as_mut() else { return };
        match t.phase {
            TxnPhase::Envelope => {
                if t.bdat && !t.accepted.is_empty() {
                    t.phase = TxnPhase::Body;
                    self.state = State::Body;
                    self.deferred.push_back(Deferred::SendBody);
                    return;
                }
                // No DATA reply is due here, so no recipient was accepted
                // (or MAIL failed): the transaction is over.
                if t.sender == Some(Verdict::Success) {
                    t.needs_rset = true;
                }
            }
            TxnPhase::Body => return,
            TxnPhase::Ending | TxnPhase::Failed => {}
        }
        self.end_txn();
    }

    fn end_txn(&mut self) {
        if let Some(t) = self.txn.take() {
            self.needs_rset = t.needs_rset;
            self.deferred
                .push_back(Deferred::TransactionEnd(t.summary()));
        }
        self.state = State::Idle;
    }

    fn on_data_reply<'a>(
        &mut self,
        reply: Reply<'a>,
    ) -> Result<Option<ClientEvent<'a>>, ClientError> {
        let code = reply.code();
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let Some(t) = self.txn.as_mut() else {
            return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
        };
        // RFC 5321 §4.2: any 3yz is read as 354 is, by its first digit.
        if code.is_positive_intermediate() {
            if t.accepted.is_empty() && lmtp {
                // RFC 2033 §4.2: without a successful RCPT, DATA "MUST
                // fail with a 503 reply code", and the end of a message
                // gets one reply per successful RCPT: none. A lone `.`
                // would wait for a reply that does not come, and leave the
                // next commands out of step if one did. The recipients are
                // all decided by their RCPT replies.
                return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
            }
            if t.accepted.is_empty() {
                // RFC 2920 §3.1: every RCPT failed but DATA got 354; end
                // the empty message at once.
                self.out.extend_from_slice(b".\r\n");
                self.pending.push_back(Pending::EmptyDot);
                t.phase = TxnPhase::Failed;
                return Ok(None);
            }
            t.phase = TxnPhase::Body;
            t.stuffer = Some(DotStuffer::new());
            self.state = State::Body;
            return Ok(Some(ClientEvent::SendBody));
        }
        if code.is_positive() {
            // Only a 3yz starts the body; a 2yz leaves the server's state
            // unknown.
            return Err(self.fail(ClientError::UnexpectedReply(reply.into_owned())));
        }
        let verdict = Verdict::of(code);
        let had_recipients = !t.accepted.is_empty();
        t.phase = TxnPhase::Failed;
        if t.sender == Some(Verdict::Success) {
            t.needs_rset = true;
        }
        if had_recipients {
            // The message is refused for every accepted recipient.
            t.message = Some(verdict);
            t.decide_accepted(verdict);
        }
        self.advance_txn();
        Ok(had_recipients.then_some(ClientEvent::Message {
            recipient: None,
            reply,
            verdict,
        }))
    }

    /// Sends a piece of the message body. With DATA the bytes are
    /// dot-stuffed and line ends made CRLF, so nothing in them can end the
    /// message early; with BDAT the piece becomes one chunk.
    ///
    /// Line ends go out as CRLF either way (RFC 5321 §2.3.8: CR and LF
    /// "MUST" only be sent "as a `<CRLF>` sequence"): a bare CR or bare LF
    /// becomes CRLF, a CR at the end of one piece and an LF at the start
    /// of the next make one CRLF, and the last line gets a CRLF when it
    /// lacks one, so a server stores the same bytes over DATA and over
    /// BDAT. BDAT chunks are not dot-stuffed, and their `BDAT` size counts
    /// the bytes actually sent. Only a `BODY=BINARYMIME` body
    /// ([`Envelope::body`]) goes out byte for byte, each piece one chunk
    /// unchanged (RFC 3030 §3).
    ///
    /// Empty pieces send nothing (nor does a piece that is only the LF
    /// completing a CRLF over BDAT).
    ///
    /// Without PIPELINING, a BDAT chunk must be answered before the next
    /// one: wait for the next [`ClientEvent::SendBody`].
    pub fn send_body(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.write_body(data, false)
    }

    /// Ends the message: `CRLF.CRLF` with DATA (adding the last CRLF when
    /// the body lacks it), `BDAT 0 LAST` with BDAT (`BDAT 2 LAST` and the
    /// last line's missing CRLF, unless the body is BINARYMIME).
    pub fn end_body(&mut self) -> Result<(), ClientError> {
        self.write_body(&[], true)
    }

    /// Sends the last piece of the body and ends the message; with BDAT it
    /// goes out as `BDAT n LAST` (line ends as for
    /// [`Client::send_body`]).
    pub fn send_last(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.write_body(data, true)
    }

    fn write_body(&mut self, data: &[u8], last: bool) -> Result<(), ClientError> {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let pipelining = self.pipelining();
        let out = &mut self.out;
        let t = match self.txn.as_mut() {
            Some(t) if self.state == State::Body && t.phase == TxnPhase::Body => t,
            _ => return Err(UsageError::NotInBody.into()),
        };
        if t.bdat {
            // The chunk as sent: its line ends made CRLF unless the body is
            // BINARYMIME, so the BDAT size counts the bytes that go out.
            let chunk = match t.lines.as_mut() {
                Some(lines) => {
                    t.chunk.clear();
                    lines.encode(data, &mut t.chunk);
                    if last {
                        lines.finish(&mut t.chunk);
                    }
                    &t.chunk[..]
                }
                None => data,
            };
            if !chunk.is_empty() || last {
                Command::Bdat {
                    size: chunk.len() as u64,
                    last,
                }
                .write_to(out);
                t.chunks = t.chunks.saturating_add(1);
                out.extend_from_slice(chunk);
                if !last {
                    self.pending.push_back(Pending::Bdat);
                    if !pipelining {
                        self.state = State::Busy;
                    }
                }
            }
        } else if let Some(stuffer) = t.stuffer.as_mut() {
            stuffer.encode(data, out);
            if last {
                if let Some(s) = t.stuffer.take() {
                    s.finish(out);
                }
            }
        }
        if last {
            t.phase = TxnPhase::Ending;
            if lmtp {
                for &i in &t.accepted {
                    self.pending.push_back(Pending::BodyEnd(Some(i)));
                }
            } else {
                self.pending.push_back(Pending::BodyEnd(None));
            }
            self.state = State::Busy;
        }
        Ok(())
    }

    /// Sends NOOP (RFC 5321 §4.1.1.9) between transactions, to check
    /// that a connection kept open is still answered before the next
    /// message goes out on it, or to keep it from timing out. The reply
    /// comes as [`ClientEvent::Noop`]; the client is idle again after it.
    ///
    /// ```
    /// use smtp_proto::client::{Client, ClientConfig, ClientEvent, Outcome, TlsPolicy};
    /// use smtp_proto::command::Domain;
    ///
    /// let config = ClientConfig::new(Domain::new("client.example").unwrap()).with_tls(TlsPolicy::Off);
    /// let mut client = Client::new(config);
    /// let mut input: &[u8] = b"220 mx ESMTP\r\n250 mx\r\n250 2.0.0 Ok\r\n";
    /// let mut out = Vec::new();
    /// loop {
    ///     let step = client.handle_input(input).unwrap();
    ///     input = &input[step.consumed..];
    ///     match step.outcome {
    ///         Outcome::Event(ClientEvent::Ready) => client.noop().unwrap(),
    ///         Outcome::Event(ClientEvent::Noop { verdict, .. }) => {
    ///             assert!(verdict.is_success());
    ///             break;
    ///         }
    ///         Outcome::Event(_) => {}
    ///         _ => unreachable!("the replies are all in the input"),
    ///     }
    ///     client.poll_transmit(&mut out);
    /// }
    /// assert!(client.is_idle());
    /// assert_eq!(out, b"EHLO client.example\r\nNOOP\r\n");
    /// ```
    pub fn noop(&mut self) -> Result<(), ClientError> {
        self.check_idle()?;
        self.send(&Command::Noop(None), Pending::Noop);
        self.state = State::Busy;
        Ok(())
    }

    /// Ends the session: sends QUIT (no RSET is needed before it). The
    /// reply comes as [`ClientEvent::Closed`].
    pub fn quit(&mut self) -> Result<(), ClientError> {
        self.check_idle()?;
        self.send_quit();
        Ok(())
    }
}

/// The verdict of a reply to RCPT. RFC 5321 §4.5.3.1.10: RFC 821 gave
/// "too many recipients" the code 552, the right one being 452, and
/// "Clients SHOULD treat a 552 code in this case as a temporary, rather
/// than permanent, failure". A 552 whose enhanced status code is X.5.3
/// ("Too many recipients", RFC 3463 §3.6: the other recipients go "on a
/// subsequent delivery attempt") is that case; any other 552 (a full
/// mailbox, 5.2.2) keeps its permanent verdict.
fn rcpt_verdict(reply: &Reply<'_>) -> Verdict {
    let code = reply.code();
    let too_many = reply
        .enhanced_code()
        .is_some_and(|e| e.subject() == 5 && e.detail() == 3);
    if code == ReplyCode::EXCEEDED_STORAGE && too_many {
        Verdict::RetryLater
    } else {
        Verdict::of(code)
    }
}

/// The worse of two verdicts (for the LMTP message summary).
fn worst(a: Option<Verdict>, b: Verdict) -> Verdict {
    match (a, b) {
        (Some(Verdict::Permanent), _) | (_, Verdict::Permanent) => Verdict::Permanent,
        (Some(Verdict::RetryLater), _) | (_, Verdict::RetryLater) => Verdict::RetryLater,
        _ => Verdict::Success,
    }
}
