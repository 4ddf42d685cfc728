//! A real SMTP (or LMTP) server that stores every accepted message in a
//! Maildir, one thread per connection.
//!
//! ```text
//! cargo run --release -p smtp-proto-blocking --example serve-blocking -- \
//!     [--listen 127.0.0.1:2525] [--maildir ./maildir] \
//!     [--tls-cert cert.pem --tls-key key.pem] [--auth USER:PASS [--auth-plaintext]] \
//!     [--max-size BYTES] [--lmtp] [--hostname NAME] [--max-connections N]
//! ```
//!
//! Each message is written to `tmp/` and renamed into `new/` only once it is
//! complete, with `Return-Path:` and `Received:` lines in front of it. At
//! most `--max-connections` connections are served at once; the ones beyond
//! get `421 4.3.2` and are closed.

#[path = "../../smtp-proto-tokio/examples/support/maildir.rs"]
#[allow(dead_code)]
mod maildir;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::pem::PemObject;
use smtp_proto_blocking::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smtp_proto_blocking::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::command::ReversePath;
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto_blocking::smtp_proto::server::{
    HelloKind, ServerConfig, ServerEvent, ServerSession,
};
use smtp_proto_blocking::smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};

/// Command line of the example server.
#[derive(Debug, Parser)]
#[command(about = "SMTP server that stores accepted messages in a Maildir")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// The Maildir to deliver into (created if missing).
    #[arg(long, default_value = "./maildir")]
    maildir: PathBuf,
    /// Certificate chain (PEM) for STARTTLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for STARTTLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Accept AUTH PLAIN and LOGIN with this user name and password.
    #[arg(long, value_name = "USER:PASS")]
    auth: Option<String>,
    /// Offer AUTH before TLS too.
    #[arg(long)]
    auth_plaintext: bool,
    /// Largest message accepted, in octets.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    max_size: u64,
    /// Speak LMTP instead of SMTP.
    #[arg(long)]
    lmtp: bool,
    /// The name the server gives itself.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Connections served at once; more are refused with 421.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
}

/// Logs one line to standard error: a level, a message and `key=value`
/// fields.
macro_rules! log {
    ($level:literal, $msg:literal $(, $key:ident = $value:expr)* $(,)?) => {
        eprintln!(
            concat!("{} ", $level, " serve: ", $msg $(, " ", stringify!($key), "={}")*),
            timestamp() $(, $value)*
        )
    };
}

/// The current time in UTC, RFC 3339 with milliseconds.
fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, day) = civil_date(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month (1-12) and day of the month of a count of days since
/// 1970-01-01 (Howard Hinnant's civil-from-days algorithm).
fn civil_date(days: u64) -> (i64, u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (y, mo as u64, d as u64)
}

struct Shared {
    maildir: maildir::Maildir,
    config: ServerConfig,
    auth: Option<(String, String)>,
    options: ServeOptions,
    ids: AtomicU64,
    active: AtomicUsize,
    max_connections: usize,
}

/// One connection's view: the envelope and the message being received.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    helo: String,
    protocol: &'static str,
    from: String,
    rcpts: Vec<String>,
    message: Vec<u8>,
    user: Option<String>,
}

fn code(class: StatusClass, subject: u16, detail: u16) -> Option<EnhancedStatusCode> {
    EnhancedStatusCode::new(class, subject, detail)
}

fn rfc2822_now() -> String {
    // Seconds since the epoch, written as an RFC 5322 date in UTC.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let (y, mo, d) = civil_date(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {d} {} {y} {h:02}:{m:02}:{s:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(mo - 1) as usize]
    )
}

impl Connection {
    fn reset(&mut self) {
        self.from.clear();
        self.rcpts.clear();
        self.message.clear();
    }

    fn deliver(&mut self) -> std::io::Result<String> {
        let id = format!(
            "{:X}{:04X}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            self.shared.ids.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        // One header line: the maildir writer takes the value unfolded.
        let for_clause = match self.rcpts.as_slice() {
            [one] => format!(" for <{one}>"),
            _ => String::new(),
        };
        let received = format!(
            "from {} ([{}]) by {} with {} id {id}{for_clause}; {}",
            self.helo,
            self.peer.ip(),
            self.shared.config.hostname,
            self.protocol,
            rfc2822_now()
        );
        let path = self.shared.maildir.deliver(
            maildir::Trace {
                return_path: &self.from,
                received: &received,
            },
            &self.message,
        )?;
        log!(
            "INFO",
            "message stored",
            id = id,
            peer = self.peer,
            recipients = self.rcpts.len(),
            file = path.display(),
        );
        Ok(id)
    }

    /// RFC 3848 protocol names: S for TLS, A for authenticated.
    fn name_protocol(&mut self, session: &ServerSession) {
        if self.protocol == "SMTP" {
            return;
        }
        self.protocol = match (
            self.protocol.starts_with("LMTP"),
            session.is_tls(),
            session.is_authenticated(),
        ) {
            (true, false, false) => "LMTP",
            (true, true, false) => "LMTPS",
            (true, false, true) => "LMTPA",
            (true, true, true) => "LMTPSA",
            (false, false, false) => "ESMTP",
            (false, true, false) => "ESMTPS",
            (false, false, true) => "ESMTPA",
            (false, true, true) => "ESMTPSA",
        };
    }
}

impl ServerHandler for Connection {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        let decided = match event {
            ServerEvent::Hello { kind, domain } => {
                self.helo = domain.to_string();
                self.protocol = match kind {
                    HelloKind::Helo => "SMTP",
                    HelloKind::Lhlo => "LMTP",
                    _ => "ESMTP",
                };
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
                let ok = match (&credentials, &self.shared.auth) {
                    (
                        Credentials::Plain {
                            authcid, password, ..
                        },
                        Some((u, p)),
                    )
                    | (
                        Credentials::Login {
                            username: authcid,
                            password,
                        },
                        Some((u, p)),
                    ) => authcid == u && password.expose() == p,
                    _ => false,
                };
                if ok {
                    self.user = credentials.identity().map(str::to_string);
                    log!(
                        "INFO",
                        "authenticated",
                        peer = self.peer,
                        user = authcid_of(&credentials)
                    );
                    session.accept()
                } else {
                    log!("WARN", "authentication failed", peer = self.peer);
                    session.reject(
                        OwnedReply::with_enhanced(
                            ReplyCode::AUTH_CREDENTIALS_INVALID,
                            code(StatusClass::PermanentFailure, 7, 8),
                            "Authentication credentials invalid",
                        )
                        .map_err(std::io::Error::other)?,
                    )
                }
            }
            ServerEvent::MessageStart { .. } => {
                self.message.clear();
                Ok(())
            }
            ServerEvent::MessageChunk(bytes) => {
                self.message.extend_from_slice(bytes);
                Ok(())
            }
            ServerEvent::MessageEnd { .. } => {
                self.name_protocol(session);
                let outcome = self.deliver();
                let reply = match &outcome {
                    Ok(id) => OwnedReply::with_enhanced(
                        ReplyCode::OK,
                        code(StatusClass::Success, 0, 0),
                        format!("OK queued as {id}"),
                    ),
                    Err(e) => {
                        log!("ERROR", "delivery failed", peer = self.peer, error = e);
                        OwnedReply::with_enhanced(
                            ReplyCode::LOCAL_ERROR,
                            code(StatusClass::PersistentTransientFailure, 3, 0),
                            "Local error in processing",
                        )
                    }
                }
                .map_err(std::io::Error::other)?;
                let n = self.rcpts.len();
                self.reset();
                if self.shared.config.lmtp {
                    session.reply_per_recipient(&vec![reply; n])
                } else if outcome.is_ok() {
                    session.reply(reply)
                } else {
                    session.reject(reply)
                }
            }
            ServerEvent::Rejected { code, reason } => {
                log!(
                    "INFO",
                    "refused",
                    peer = self.peer,
                    code = code.get(),
                    reason = format!("{reason:?}"),
                );
                Ok(())
            }
            ServerEvent::Reset => {
                self.reset();
                Ok(())
            }
            _ => Ok(()),
        };
        decided.map_err(std::io::Error::other)
    }
}

fn authcid_of(credentials: &Credentials) -> &str {
    match credentials {
        Credentials::Plain { authcid, .. } => authcid,
        Credentials::Login { username, .. } => username,
        _ => "?",
    }
}

/// Loads a server TLS configuration (the *ring* provider) from a PEM
/// certificate chain and a PEM private key.
fn tls_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE block", cert.display()).into());
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Binds `addr` with a listen queue of 1024 (`TcpListener::bind` asks for
/// 128). A burst of connections larger than the queue overflows it; the
/// kernel then drops the client's handshake ACK while the client believes
/// it is connected and waits for a greeting that may never come.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Counts a connection thread for as long as it lives.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection to its end, on the calling thread.
fn connection(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let _ = socket.set_nodelay(true);
    let mut session = match ServerSession::new(shared.config.clone()) {
        Ok(s) => s,
        Err(e) => return log!("ERROR", "session", error = e),
    };
    if let Err(e) = session.greet() {
        return log!("ERROR", "greet", error = e);
    }
    let mut conn = Connection {
        shared: Arc::clone(&shared),
        peer,
        helo: String::new(),
        protocol: "ESMTP",
        from: String::new(),
        rcpts: Vec::new(),
        message: Vec::new(),
        user: None,
    };
    match serve(socket, &mut session, &mut conn, &shared.options) {
        Ok(ServeEnd::Closed | ServeEnd::PeerClosed) => {}
        Ok(end) => log!(
            "INFO",
            "connection ended",
            peer = peer,
            end = format!("{end:?}")
        ),
        Err(e) => log!("WARN", "connection error", peer = peer, error = e),
    }
}

/// Refuses a connection beyond the limit: `421 4.3.2` through the
/// session's refusal, then close.
fn refuse(config: &ServerConfig, mut socket: TcpStream, peer: SocketAddr) {
    log!("WARN", "too many connections, refusing", peer = peer);
    let Ok(mut session) = ServerSession::new(config.clone()) else {
        return;
    };
    let reply = OwnedReply::with_enhanced(
        ReplyCode::SERVICE_NOT_AVAILABLE,
        code(StatusClass::PersistentTransientFailure, 3, 2),
        format!("{} Too many connections, try again later", config.hostname),
    );
    if let Ok(reply) = reply {
        if session.refuse(Some(reply)).is_ok() {
            let mut out = Vec::new();
            session.poll_transmit(&mut out);
            let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = socket.write_all(&out);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut config = ServerConfig::new(args.hostname.clone());
    config.lmtp = args.lmtp;
    config.max_message_size = Some(args.max_size);
    config.smtputf8 = true;
    config.chunking = true;
    config.binarymime = true;
    config.dsn = true;
    let mut options = ServeOptions::default();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options.tls = Some(tls_config(cert, key)?);
        config.starttls = true;
    }
    let auth = match &args.auth {
        Some(s) => {
            let (u, p) = s.split_once(':').ok_or("--auth takes USER:PASS")?;
            config.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
            config.auth_requires_tls = !args.auth_plaintext;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    // Fail early on a bad configuration.
    ServerSession::new(config.clone())?;
    let shared = Arc::new(Shared {
        maildir: maildir::Maildir::create(&args.maildir)?.with_hostname(&args.hostname),
        config,
        auth,
        options,
        ids: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        max_connections: args.max_connections.max(1),
    });
    let listener = listen(args.listen)?;
    log!(
        "INFO",
        "serving",
        listen = listener.local_addr()?,
        maildir = args.maildir.display(),
    );
    loop {
        let (socket, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little.
                log!("ERROR", "accept failed", error = e);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            refuse(&shared.config, socket, peer);
            continue;
        }
        let slot = Slot(Arc::clone(&shared));
        let spawned = std::thread::Builder::new()
            .name(format!("smtp {peer}"))
            .spawn(move || {
                let slot = slot;
                connection(Arc::clone(&slot.0), socket, peer);
            });
        if let Err(e) = spawned {
            // The closure (and its slot) was dropped with the error.
            log!("ERROR", "cannot start a connection thread", error = e);
        }
    }
}
