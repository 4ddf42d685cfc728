//! What the two `serve` examples (tokio and blocking) share: the command
//! line, the server configuration it gives, and the application logic that
//! answers the server machine's events. Each example adds its IO, its way of
//! storing the message (async or blocking) and its logging.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use smtp_proto::command::{Atom, Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::OwnedReply;
use smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto::server::{Rejection, ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Phase;
use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use smtp_proto::trace::{Received, Timestamp, WithProtocol};
use subtle::ConstantTimeEq;

use crate::maildir::Trace;

/// Command line of the example servers.
// A value the server would refuse at start (`--auth` without a colon,
// `--max-recipients 0`, a host name that is no domain, `--auth` with no
// channel to offer it on) is a usage error, exit status 2, as for any other
// bad option.
#[derive(Debug, Parser)]
#[command(about = "SMTP server that stores accepted messages in a Maildir")]
#[command(group = clap::ArgGroup::new("auth_channel").args(["tls_cert", "auth_plaintext"]).multiple(true))]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: SocketAddr,
    /// The Maildir to deliver into (created if missing).
    #[arg(long, default_value = "./maildir")]
    pub maildir: PathBuf,
    /// Certificate chain (PEM) for STARTTLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for STARTTLS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Speak TLS from the first byte (implicit TLS, RFC 8314, as on the
    /// submissions port 465) instead of offering STARTTLS.
    #[arg(long, requires = "tls_cert")]
    pub implicit_tls: bool,
    /// Accept AUTH PLAIN and LOGIN with this user name and password.
    /// AUTH is offered only over TLS: give --tls-cert and --tls-key, or
    /// --auth-plaintext to offer it without TLS too.
    #[arg(long, value_name = "USER:PASS", value_parser = UserPass, requires = "auth_channel")]
    pub auth: Option<String>,
    /// Offer AUTH before TLS too (with --auth).
    #[arg(long, requires = "auth")]
    pub auth_plaintext: bool,
    /// Largest message accepted, in octets; 0 for no limit.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub max_size: u64,
    /// Speak LMTP instead of SMTP.
    #[arg(long)]
    pub lmtp: bool,
    /// The name the server gives itself: a domain or address literal, in
    /// ASCII.
    #[arg(long, default_value = "localhost", value_parser = server_hostname)]
    pub hostname: String,
    /// Connections served at once; more are refused with 421. 0 is taken
    /// as 1.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// The longest a connection may last, in seconds, however busy it is;
    /// when it runs out the server sends 421 4.4.2 and closes. 0 for no
    /// limit (a client trickling a message then holds its place for as
    /// long as it keeps sending).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SESSION_TIMEOUT)]
    pub session_timeout: u64,
    /// Every connection starts with a PROXY protocol header (v1 or v2, as
    /// a load balancer such as HAProxy with `send-proxy` sends it); the
    /// client address it gives goes into the `Received:` line. A
    /// connection without one is closed without a greeting.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Recipients accepted per transaction, advertised in the EHLO reply
    /// as `LIMITS RCPTMAX=N` (RFC 9422); further RCPTs get 452 4.5.3.
    /// Without it the limit is 100, advertised (as `RCPTMAX=100`) only
    /// along with `--max-messages`.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_recipients: Option<usize>,
    /// Messages (MAIL commands) accepted per connection, advertised as
    /// `LIMITS MAILMAX=N` (RFC 9422); the MAIL after the last gets 421
    /// 4.7.0 and the connection closes. Without it there is no limit.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_messages: Option<usize>,
    /// Wait this long before the greeting. The session opens with the
    /// server's greeting (RFC 5321 §3.1), so a client that sends anything
    /// before it is refused with `554 5.5.1` (then 503 until QUIT): spam
    /// software that talks first gives itself away. 0 (the default)
    /// greets at once; with --implicit-tls the client speaks first (the
    /// TLS handshake) and there is no wait.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 0)]
    pub greeting_delay: u64,
    /// After SIGTERM or Ctrl-C, how long the open connections may take to
    /// end, in seconds; then they are cut off and the messages still
    /// being received are removed. A second SIGTERM or Ctrl-C cuts them
    /// off at once.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SHUTDOWN_GRACE)]
    pub shutdown_grace: u64,
}

/// `--auth`'s value: `USER:PASS`, the user name not empty (the password
/// may hold colons). A bad value is not repeated in the error, since it
/// may be a password.
#[derive(Debug, Clone, Copy)]
struct UserPass;

impl clap::builder::TypedValueParser for UserPass {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        match value.to_str().and_then(|v| v.split_once(':')) {
            Some((user, _)) if !user.is_empty() => Ok(value.to_string_lossy().into_owned()),
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                "--auth takes USER:PASS, with a user name\n",
            )
            .with_cmd(cmd)),
        }
    }
}

/// `--hostname`'s value: a name the session takes (a domain or address
/// literal, ASCII).
fn server_hostname(value: &str) -> Result<String, String> {
    ServerSession::new(ServerConfig::new(value))
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

/// A count that must be at least 1 (`--max-recipients`, `--max-messages`).
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The default of `--session-timeout`, in seconds: half an hour, ample
/// for any message a client sends at a useful speed.
pub const DEFAULT_SESSION_TIMEOUT: u64 = 30 * 60;

/// The default of `--shutdown-grace`, in seconds.
pub const DEFAULT_SHUTDOWN_GRACE: u64 = 60;

impl Args {
    /// The connections served at once (`--max-connections`, at least 1).
    pub fn max_connections(&self) -> usize {
        self.max_connections.max(1)
    }

    /// The wait before the greeting (`--greeting-delay`), `None` for none
    /// (0, or implicit TLS).
    pub fn greeting_delay(&self) -> Option<std::time::Duration> {
        (self.greeting_delay > 0 && !self.implicit_tls)
            .then(|| std::time::Duration::from_millis(self.greeting_delay))
    }

    /// The limit on a whole connection (`--session-timeout`), `None` for
    /// none (0).
    pub fn session_timeout(&self) -> Option<std::time::Duration> {
        (self.session_timeout > 0).then(|| std::time::Duration::from_secs(self.session_timeout))
    }

    /// How long the open connections may take to end after a shutdown
    /// signal (`--shutdown-grace`).
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace)
    }
}

/// Shutdown signals that come within this time of the first are the same
/// request, not a second one: `timeout` passes a SIGTERM on to the server
/// and then to its whole process group, and a supervisor that signals a
/// process group does the same, so one request can arrive twice. Only a
/// signal after this cuts the connections off during the grace.
pub const SAME_SHUTDOWN_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a connection may take to send its PROXY header
/// (`--proxy-protocol`).
pub const PROXY_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The user name and password `--auth` accepts.
pub type Login = Option<(String, String)>;

/// The session configuration the command line asks for (STARTTLS or
/// implicit TLS is switched on by the caller once its TLS configuration is
/// loaded, see [`enable_tls`]), and the accepted login.
pub fn server_config(args: &Args) -> Result<(ServerConfig, Login), Box<dyn std::error::Error>> {
    let mut config = ServerConfig::new(args.hostname.clone());
    config.lmtp = args.lmtp;
    config.max_message_size = (args.max_size > 0).then_some(args.max_size);
    config.smtputf8 = true;
    config.chunking = true;
    config.binarymime = true;
    config.dsn = true;
    if let Some(n) = args.max_recipients {
        config.max_recipients = n;
        config.limits = true;
    }
    if let Some(n) = args.max_messages {
        config.max_transactions = Some(n);
        config.limits = true;
    }
    let login = match &args.auth {
        Some(s) => {
            let (u, p) = s.split_once(':').ok_or("--auth takes USER:PASS")?;
            config.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
            config.auth_requires_tls = !args.auth_plaintext;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    Ok((config, login))
}

/// Whether a name or password the client sent is the configured one, in
/// time that does not depend on where they differ (only on their lengths),
/// so that timing the replies does not reveal a password octet by octet.
pub fn same_secret(sent: &str, expected: &str) -> bool {
    bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// Switches TLS on in `config` once the caller holds a TLS configuration:
/// implicit TLS with `--implicit-tls`, STARTTLS otherwise.
pub fn enable_tls(args: &Args, config: &mut ServerConfig) {
    if args.implicit_tls {
        config.implicit_tls = true;
    } else {
        config.starttls = true;
    }
}

/// The reply to a connection beyond `--max-connections`: `421 4.3.2
/// <hostname> Too many connections, try again later`, the host name first
/// as in RFC 5321's "421 <domain> Service not available, closing
/// transmission channel" (§4.2.3), like the 421s the session sends itself.
pub fn too_many_connections(hostname: &str) -> Option<OwnedReply> {
    OwnedReply::with_enhanced(
        ReplyCode::SERVICE_NOT_AVAILABLE,
        EnhancedStatusCode::new(StatusClass::PersistentTransientFailure, 3, 2),
        format!("{hostname} Too many connections, try again later"),
    )
    .ok()
}

/// The refusal of a client that talked before the greeting
/// (`--greeting-delay`): `554 5.5.1 <hostname> Protocol error: input before
/// the greeting`.
pub fn early_talker(hostname: &str) -> Option<OwnedReply> {
    OwnedReply::with_enhanced(
        ReplyCode::TRANSACTION_FAILED,
        EnhancedStatusCode::new(StatusClass::PermanentFailure, 5, 1),
        format!("{hostname} Protocol error: input before the greeting"),
    )
    .ok()
}

/// Says on standard error why the server could not start (`serve: ` and
/// the error as a person reads it: what failed, with the path or address
/// it concerns) and gives exit status 1.
pub fn failed_to_start(error: &dyn std::fmt::Display) -> std::process::ExitCode {
    eprintln!("serve: {error}");
    std::process::ExitCode::FAILURE
}

/// The error of `what` (a step of the start, naming its path or address),
/// for [`failed_to_start`].
pub fn starting<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Seconds since the epoch.
pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an event asks of the example after [`Envelope::on_event`].
#[derive(Debug)]
pub enum Next {
    /// Nothing more.
    Done,
    /// The message is complete: store it, then call [`Envelope::finish`].
    Deliver,
    /// The message held in memory reached [`SPILL_AT`]: write it to the
    /// message's file in `tmp/` (started on the first spill) and clear it.
    Spill,
    /// A new message or a reset: drop any file started for the last one.
    Discard,
    /// A login was accepted.
    Authenticated(String),
    /// A login was refused.
    AuthFailed,
    /// The session refused something by itself (for the log).
    Refused(ReplyCode, Rejection),
    /// The session refused the message being received by itself (over the
    /// size limit, or a body it could not take) and the transaction is
    /// over: log it, and drop any file started for the message, as for
    /// [`Next::Discard`], so no part of a refused message stays in `tmp/`.
    MessageRefused(ReplyCode, Rejection),
}

/// Where the message being received stands on disk.
#[derive(Debug, Default)]
pub enum Spool {
    /// All of it is in memory (so far).
    #[default]
    InMemory,
    /// Part of it is in its file in `tmp/`, under this queue id.
    File(String, crate::maildir::Delivery),
    /// Writing it failed: the rest is dropped and the message refused.
    Failed,
}

impl Spool {
    /// Takes the started file and its queue id (`None` while all of the
    /// message is in memory), leaving `InMemory`; an error after a failed
    /// write.
    pub fn take_file(&mut self) -> std::io::Result<Option<(String, crate::maildir::Delivery)>> {
        match std::mem::take(self) {
            Spool::File(id, delivery) => Ok(Some((id, delivery))),
            Spool::Failed => Err(std::io::Error::other("writing the message failed")),
            Spool::InMemory => Ok(None),
        }
    }
}

/// A queue id: the time and a per-process counter, in hexadecimal.
pub fn queue_id(counter: &std::sync::atomic::AtomicU64) -> String {
    format!(
        "{:X}{:04X}",
        epoch_seconds(),
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff
    )
}

/// The most of a message held in memory: past it, the message goes on to
/// its file in `tmp/` as it arrives, so a connection holds at most this
/// much of it, whatever the message size.
pub const SPILL_AT: usize = 1 << 20;

/// One connection's view: the envelope and the message being received.
#[derive(Debug, Default)]
pub struct Envelope {
    /// The EHLO/HELO/LHLO name.
    pub helo: String,
    /// The `with` protocol for `Received:`, named when the message starts.
    pub protocol: Option<WithProtocol>,
    /// The sender, empty for `<>`.
    pub from: String,
    /// The accepted recipients.
    pub rcpts: Vec<String>,
    /// The message received since the last spill (at most about
    /// [`SPILL_AT`] octets).
    pub message: Vec<u8>,
    /// A message has started and has been neither delivered nor dropped.
    in_message: bool,
}

impl Envelope {
    fn reset(&mut self) {
        self.from.clear();
        self.rcpts.clear();
        self.message.clear();
        self.in_message = false;
    }

    /// Answers one event; decisions are taken here, except storing the
    /// message ([`Next::Deliver`]).
    pub fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
        login: &Login,
    ) -> std::io::Result<Next> {
        let mut next = Next::Done;
        let decided = match event {
            ServerEvent::Hello { domain, .. } => {
                self.helo = domain.to_string();
                self.reset();
                session.accept()
            }
            ServerEvent::Mail { from, .. } => {
                self.reset();
                self.from = match from {
                    ReversePath::Null => String::new(),
                    ReversePath::Mailbox(m) => m.to_string(),
                };
                session.accept()
            }
            ServerEvent::Rcpt { to, .. } => {
                let to = to.to_string();
                self.rcpts
                    .push(to.trim_start_matches('<').trim_end_matches('>').to_string());
                session.accept()
            }
            ServerEvent::Auth(credentials) => {
                // A PLAIN authorization identity asks to act as someone
                // else; the server must check that the credentials permit
                // it, and fail the AUTH if not (RFC 4616 §2). The one
                // login of `--auth` may act only as itself.
                let acts_as_itself = match &credentials {
                    Credentials::Plain {
                        authzid: Some(authzid),
                        authcid,
                        ..
                    } => authzid == authcid,
                    _ => true,
                };
                let user = match &credentials {
                    Credentials::Plain {
                        authcid, password, ..
                    }
                    | Credentials::Login {
                        username: authcid,
                        password,
                    } => login
                        .as_ref()
                        .filter(|(u, p)| {
                            same_secret(authcid, u)
                                & same_secret(password.expose(), p)
                                & acts_as_itself
                        })
                        .map(|(u, _)| u.clone()),
                    _ => None,
                };
                match user {
                    Some(user) => {
                        next = Next::Authenticated(user);
                        session.accept()
                    }
                    None => {
                        next = Next::AuthFailed;
                        session.reject(
                            OwnedReply::with_enhanced(
                                ReplyCode::AUTH_CREDENTIALS_INVALID,
                                EnhancedStatusCode::new(StatusClass::PermanentFailure, 7, 8),
                                "Authentication credentials invalid",
                            )
                            .map_err(std::io::Error::other)?,
                        )
                    }
                }
            }
            ServerEvent::MessageStart { .. } => {
                self.message.clear();
                self.in_message = true;
                // The `Received:` line may be written at the first spill:
                // name the protocol now (TLS and login cannot change during
                // a message).
                self.protocol = Some(session.with_protocol());
                next = Next::Discard;
                Ok(())
            }
            ServerEvent::MessageChunk(bytes) => {
                self.message.extend_from_slice(bytes);
                if self.message.len() >= SPILL_AT {
                    next = Next::Spill;
                }
                Ok(())
            }
            // Verifying and expanding are not offered: the standard answers
            // (252 2.5.0 and 502 5.5.1).
            ServerEvent::Vrfy(_) | ServerEvent::Expn(_) => session.accept(),
            ServerEvent::MessageEnd { .. } => return Ok(Next::Deliver),
            ServerEvent::Rejected { code, reason } => {
                // A refusal that ends the transaction while a message was
                // being received voids the message (its file included).
                let in_transaction = matches!(
                    session.phase(),
                    Phase::Mail | Phase::Rcpt | Phase::Data | Phase::Bdat
                );
                next = if self.in_message && !in_transaction {
                    self.message.clear();
                    self.in_message = false;
                    Next::MessageRefused(code, reason)
                } else {
                    Next::Refused(code, reason)
                };
                Ok(())
            }
            ServerEvent::Reset => {
                self.reset();
                next = Next::Discard;
                Ok(())
            }
            // TLS is up and the session has forgotten the plaintext phase;
            // so does the example (RFC 3207 §4.2): a new EHLO comes next.
            ServerEvent::StartTls => {
                self.helo.clear();
                self.protocol = None;
                self.reset();
                next = Next::Discard;
                Ok(())
            }
            _ => Ok(()),
        };
        decided.map_err(std::io::Error::other)?;
        Ok(next)
    }

    /// The trace fields for the message being delivered: `Return-Path:`
    /// and a `Received:` naming the client's HELO name and address, this
    /// host, the protocol, the queue id and, for a single recipient, the
    /// recipient.
    pub fn trace(&self, id: &str, peer: IpAddr, hostname: &str) -> std::io::Result<Trace> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
        let by = Domain::new(hostname).map_err(|_| bad("host name"))?;
        let id = Atom::new(id).map_err(|_| bad("queue id"))?;
        // Both were read by the session, so they parse again.
        let helo = Domain::new(self.helo.as_str()).map_err(|_| bad("HELO name"))?;
        let sender = match self.from.as_str() {
            "" => Some(ReversePath::Null),
            from => Mailbox::parse(from).ok().map(ReversePath::Mailbox),
        };
        let sender = sender.ok_or_else(|| bad("sender"))?;
        let recipient = match self.rcpts.as_slice() {
            [one] => Mailbox::parse(one).ok().map(ForwardPath::Mailbox),
            _ => None,
        };
        let now = Timestamp::from_system_time(SystemTime::now()).map_err(std::io::Error::other)?;
        let mut received = Received::new(&helo, peer, &by, now)
            .id(&id)
            .map_err(std::io::Error::other)?;
        if let Some(protocol) = self.protocol {
            received = received.with(protocol);
        }
        if let Some(path) = &recipient {
            received = received.recipient(path);
        }
        Ok(Trace::new(&sender, &received))
    }

    /// Answers the end of the message once storing it succeeded (the queue
    /// id) or failed, and starts over.
    pub fn finish(
        &mut self,
        session: &mut ServerSession,
        stored: Result<&str, ()>,
    ) -> std::io::Result<()> {
        let reply = match stored {
            Ok(id) => OwnedReply::with_enhanced(
                ReplyCode::OK,
                EnhancedStatusCode::new(StatusClass::Success, 0, 0),
                format!("OK queued as {id}"),
            ),
            Err(()) => OwnedReply::with_enhanced(
                ReplyCode::LOCAL_ERROR,
                EnhancedStatusCode::new(StatusClass::PersistentTransientFailure, 3, 0),
                "Local error in processing",
            ),
        }
        .map_err(std::io::Error::other)?;
        let n = self.rcpts.len();
        self.reset();
        let decided = if session.config().lmtp {
            session.reply_per_recipient(&vec![reply; n])
        } else if stored.is_ok() {
            session.reply(reply)
        } else {
            session.reject(reply)
        };
        decided.map_err(std::io::Error::other)
    }
}
