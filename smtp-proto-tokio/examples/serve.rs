//! A real SMTP (or LMTP) server that stores every accepted message in a
//! Maildir.
//!
//! ```text
//! cargo run --release -p smtp-proto-tokio --example serve -- \
//!     [--listen 127.0.0.1:2525] [--maildir ./maildir] \
//!     [--tls-cert cert.pem --tls-key key.pem] [--auth USER:PASS [--auth-plaintext]] \
//!     [--max-size BYTES] [--lmtp] [--hostname NAME]
//! ```
//!
//! Each message is written to `tmp/` and renamed into `new/` only once it is
//! complete, with `Return-Path:` and `Received:` lines in front of it.

#[path = "support/maildir.rs"]
#[allow(dead_code)]
mod maildir;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
use smtp_proto_tokio::smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto_tokio::smtp_proto::server::{HelloKind, ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};
use smtp_proto_tokio::tls;
use tokio::net::TcpSocket;
use tokio_rustls::TlsAcceptor;

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
}

struct Shared {
    maildir: maildir::Maildir,
    config: ServerConfig,
    auth: Option<(String, String)>,
    tls: ServeOptions,
    ids: AtomicU64,
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
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
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

    async fn deliver(&mut self) -> Result<String, std::io::Error> {
        let id = format!(
            "{:X}{:04X}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            self.shared.ids.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        let for_clause = match self.rcpts.as_slice() {
            [one] => format!("\r\n\tfor <{one}>"),
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
        // The maildir writer takes one header line; fold the `for` clause
        // onto the same line instead.
        let received = received.replace("\r\n\t", " ");
        let shared = Arc::clone(&self.shared);
        let from = std::mem::take(&mut self.from);
        let message = std::mem::take(&mut self.message);
        let path = tokio::task::spawn_blocking(move || {
            shared.maildir.deliver(
                maildir::Trace {
                    return_path: &from,
                    received: &received,
                },
                &message,
            )
        })
        .await
        .map_err(std::io::Error::other)??;
        tracing::info!(
            id,
            peer = %self.peer,
            recipients = self.rcpts.len(),
            file = %path.display(),
            "message stored"
        );
        Ok(id)
    }
}

impl ServerHandler for Connection {
    async fn on_event(
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
                    smtp_proto_tokio::smtp_proto::command::ReversePath::Null => String::new(),
                    smtp_proto_tokio::smtp_proto::command::ReversePath::Mailbox(m) => m.to_string(),
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
                    session.accept()
                } else {
                    tracing::warn!(peer = %self.peer, "authentication failed");
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
                // RFC 3848 protocol names: S for TLS, A for authenticated.
                if self.protocol != "SMTP" {
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
                let outcome = self.deliver().await;
                let reply = match &outcome {
                    Ok(id) => OwnedReply::with_enhanced(
                        ReplyCode::OK,
                        code(StatusClass::Success, 0, 0),
                        format!("OK queued as {id}"),
                    ),
                    Err(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "delivery failed");
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
                tracing::info!(peer = %self.peer, code = code.get(), reason = ?reason, "refused");
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
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
        options.tls = Some(TlsAcceptor::from(tls::server_config(cert, key)?));
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
        tls: options,
        ids: AtomicU64::new(0),
    });
    // A listen queue of 1024 (TcpListener::bind asks for 128): a burst of
    // connections larger than the queue overflows it, and the kernel then
    // drops the client's handshake ACK while the client believes it is
    // connected, so it waits for a greeting that may never come.
    let socket = if args.listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(args.listen)?;
    let listener = socket.listen(1024)?;
    tracing::info!(listen = %listener.local_addr()?, maildir = %args.maildir.display(), "serving");
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            let mut session = match ServerSession::new(shared.config.clone()) {
                Ok(s) => s,
                Err(e) => return tracing::error!(error = %e, "session"),
            };
            if let Err(e) = session.greet() {
                return tracing::error!(error = %e, "greet");
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
            match serve(socket, &mut session, &mut conn, &shared.tls).await {
                Ok(ServeEnd::Closed | ServeEnd::PeerClosed) => {}
                Ok(end) => tracing::info!(%peer, ?end, "connection ended"),
                Err(e) => tracing::warn!(%peer, error = %e, "connection error"),
            }
        });
    }
}
