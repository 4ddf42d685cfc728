//! A real SMTP (or LMTP) server that stores every accepted message in a
//! Maildir, one thread per connection.
//!
//! ```text
//! cargo run --release -p smtp-proto-blocking --example serve-blocking -- \
//!     [--listen 127.0.0.1:2525] [--maildir ./maildir] \
//!     [--tls-cert cert.pem --tls-key key.pem [--implicit-tls]] \
//!     [--auth USER:PASS [--auth-plaintext]] \
//!     [--max-size BYTES] [--lmtp] [--hostname NAME] [--max-connections N] \
//!     [--session-timeout SECONDS] [--proxy-protocol] \
//!     [--max-recipients N] [--max-messages N] [--greeting-delay MILLISECONDS] \
//!     [--shutdown-grace SECONDS]
//! ```
//!
//! Each message is written to `tmp/` and renamed into `new/` only once it is
//! complete, with `Return-Path:` and `Received:` lines in front of it; a
//! connection holds at most 1 MiB of a message in memory, the rest goes on
//! to its file as it arrives. At
//! most `--max-connections` connections are served at once (0 is taken as
//! 1); the ones beyond get `421 4.3.2` and are closed (with
//! `--implicit-tls` closed without it: their client waits for a TLS
//! handshake, not for plaintext). A connection lasts
//! at most `--session-timeout` seconds (default 1800, half an hour), however
//! busy: then it gets `421 4.4.2` and is closed, so a client trickling a
//! message byte by byte cannot hold its place for ever; `0` removes the
//! limit. With `--proxy-protocol`, each connection
//! must start with a PROXY header (v1 or v2) from a load balancer, whose
//! client address is the one logged and written in `Received:`; a
//! connection without one is closed without a greeting.
//!
//! On SIGTERM or Ctrl-C the server stops accepting connections (the port
//! closes) and stops the open ones gracefully: an idle client gets
//! `421 4.3.2` within about 200 ms, a message under way is received,
//! stored and acknowledged first. After `--shutdown-grace` seconds
//! (default 60) the connections still open are dropped (their messages
//! were not acknowledged, so their clients send them again), the messages
//! they were sending are removed from `tmp/`, and the server exits with
//! status 0. A second SIGTERM or Ctrl-C during the grace (a second or
//! more after the first: one that comes sooner is taken for the same
//! request, as `timeout` and process-group kills deliver it twice) cuts
//! the connections off at once in the same way and the server exits with
//! status 128 plus the signal's number (130 after Ctrl-C). Either way the
//! log names the connections cut off and counts the messages removed.
//!
//! A server that cannot start (its Maildir cannot be created, its address
//! is taken, its certificate cannot be read) says why on one line of
//! standard error, naming the path or address, and exits with status 1;
//! a bad option is a usage error, status 2.

#[path = "../../smtp-proto-tokio/examples/support/maildir.rs"]
#[allow(dead_code)]
mod maildir;
#[path = "../../smtp-proto-tokio/examples/support/serve_app.rs"]
mod serve_app;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serve_app::{Args, Envelope, Login, Next, Spool, SAME_SHUTDOWN_REQUEST};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use smtp_proto_blocking::proxy::read_proxy_header;
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::pem::PemObject;
use smtp_proto_blocking::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smtp_proto_blocking::server::{serve_until, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::trace::Timestamp;

/// How long the accept loop sleeps when no connection is waiting, and so
/// how late it may see the stop flag; the listener is non-blocking, since
/// a blocking `accept` would not return on a signal.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

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
    let now = SystemTime::now();
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    match Timestamp::from_system_time(now) {
        Ok(t) => {
            let seconds = t.to_date_time();
            let seconds = seconds.as_str().trim_end_matches('Z');
            format!("{seconds}.{millis:03}Z")
        }
        Err(_) => "-".to_string(),
    }
}

struct Shared {
    maildir: maildir::Maildir,
    config: ServerConfig,
    login: Login,
    options: ServeOptions,
    proxy_protocol: bool,
    greeting_delay: Option<std::time::Duration>,
    ids: AtomicU64,
    active: AtomicUsize,
    max_connections: usize,
    /// Set by the first SIGTERM or SIGINT: stops the accept loop and every
    /// connection.
    stop: Arc<AtomicBool>,
}

struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    envelope: Envelope,
    spool: Spool,
}

impl Connection {
    /// The message's file in `tmp/` and queue id, started with its trace
    /// lines when there is none yet.
    fn file(&mut self) -> std::io::Result<(String, maildir::Delivery)> {
        if let Some(started) = self.spool.take_file()? {
            return Ok(started);
        }
        let id = serve_app::queue_id(&self.shared.ids);
        let trace = self
            .envelope
            .trace(&id, self.peer.ip(), &self.shared.config.hostname)?;
        let delivery = self.shared.maildir.begin(&trace)?;
        Ok((id, delivery))
    }

    /// Moves the message held in memory on to its file.
    fn spill(&mut self) -> std::io::Result<()> {
        let (id, mut delivery) = self.file()?;
        delivery.write_all(&self.envelope.message)?;
        self.envelope.message.clear();
        self.spool = Spool::File(id, delivery);
        Ok(())
    }

    /// Stores the message and returns its queue id.
    fn deliver(&mut self) -> std::io::Result<String> {
        let (id, mut delivery) = self.file()?;
        delivery.write_all(&self.envelope.message)?;
        self.envelope.message.clear();
        let path = delivery.commit()?;
        log!(
            "INFO",
            "message stored",
            id = id,
            peer = self.peer,
            recipients = self.envelope.rcpts.len(),
            file = path.display(),
        );
        Ok(id)
    }
}

impl ServerHandler for Connection {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match self.envelope.on_event(session, event, &self.shared.login)? {
            Next::Deliver => {
                let stored = self.deliver();
                if let Err(e) = &stored {
                    log!("ERROR", "delivery failed", peer = self.peer, error = e);
                }
                self.envelope
                    .finish(session, stored.as_deref().map_err(|_| ()))?;
            }
            // After a failed write the rest of the message is dropped.
            Next::Spill if matches!(self.spool, Spool::Failed) => self.envelope.message.clear(),
            Next::Spill => {
                if let Err(e) = self.spill() {
                    log!(
                        "ERROR",
                        "writing the message failed",
                        peer = self.peer,
                        error = e
                    );
                    self.spool = Spool::Failed;
                    self.envelope.message.clear();
                }
            }
            // Dropping a started file removes it from `tmp/`.
            Next::Discard => self.spool = Spool::InMemory,
            Next::Authenticated(user) => {
                log!("INFO", "authenticated", peer = self.peer, user = user)
            }
            Next::AuthFailed => log!("WARN", "authentication failed", peer = self.peer),
            Next::Refused(code, reason) => log!(
                "INFO",
                "refused",
                peer = self.peer,
                code = code.get(),
                reason = format!("{reason:?}"),
            ),
            Next::MessageRefused(code, reason) => {
                log!(
                    "INFO",
                    "message refused",
                    peer = self.peer,
                    code = code.get(),
                    reason = format!("{reason:?}"),
                );
                // Dropping a started file removes it from `tmp/`.
                self.spool = Spool::InMemory;
            }
            Next::Done => {}
        }
        Ok(())
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
/// The listener is non-blocking (see [`ACCEPT_POLL`]); the address it got
/// (the port chosen for port 0) comes with it.
fn listen(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let listener: TcpListener = socket.into();
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Counts a connection thread for as long as it lives.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether the client sends something within `delay` (without taking it
/// from the socket): `Some(true)` if it did, `Some(false)` if it stayed
/// quiet, `None` if it closed the connection.
fn talks_within(socket: &TcpStream, delay: std::time::Duration) -> std::io::Result<Option<bool>> {
    socket.set_read_timeout(Some(delay))?;
    let mut probe = [0u8; 1];
    let talked = match socket.peek(&mut probe) {
        Ok(0) => None,
        Ok(_) => Some(true),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Some(false),
        Err(e) => return Err(e),
    };
    socket.set_read_timeout(None)?;
    Ok(talked)
}

/// Serves one connection to its end, on the calling thread.
fn connection(shared: Arc<Shared>, mut socket: TcpStream, mut peer: SocketAddr) {
    let _ = socket.set_nodelay(true);
    if shared.proxy_protocol {
        match read_proxy_header(&mut socket, serve_app::PROXY_HEADER_TIMEOUT) {
            Ok(header) => peer = header.client_address(peer),
            Err(e) => {
                return log!(
                    "WARN",
                    "no valid PROXY header, closed",
                    peer = peer,
                    error = e
                );
            }
        }
    }
    let mut session = match ServerSession::new(shared.config.clone()) {
        Ok(s) => s,
        Err(e) => return log!("ERROR", "session", error = e),
    };
    let talked_first = match shared.greeting_delay {
        Some(delay) => match talks_within(&socket, delay) {
            Ok(Some(talked)) => talked,
            // Gone before the greeting, or the socket failed.
            Ok(None) | Err(_) => return,
        },
        None => false,
    };
    let greeted = if talked_first {
        log!("WARN", "input before the greeting, refused", peer = peer);
        session.refuse(serve_app::early_talker(&shared.config.hostname))
    } else {
        session.greet()
    };
    if let Err(e) = greeted {
        return log!("ERROR", "greet", error = e);
    }
    let mut conn = Connection {
        shared: Arc::clone(&shared),
        peer,
        envelope: Envelope::default(),
        spool: Spool::InMemory,
    };
    match serve_until(
        socket,
        &mut session,
        &mut conn,
        &shared.options,
        &shared.stop,
    ) {
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
/// session's refusal, then close. On implicit TLS the client waits for a
/// TLS handshake, to which a plaintext 421 would only be garbage, so the
/// connection just closes.
fn refuse(config: &ServerConfig, mut socket: TcpStream, peer: SocketAddr) {
    log!("WARN", "too many connections, refusing", peer = peer);
    if config.implicit_tls {
        return;
    }
    let Ok(mut session) = ServerSession::new(config.clone()) else {
        return;
    };
    if session
        .refuse(serve_app::too_many_connections(&config.hostname))
        .is_ok()
    {
        let mut out = Vec::new();
        session.poll_transmit(&mut out);
        let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = socket.write_all(&out);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    serve(&args).unwrap_or_else(|e| serve_app::failed_to_start(&e))
}

/// Serves until a shutdown signal; an error if the server cannot start.
fn serve(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (mut config, login) = serve_app::server_config(args)?;
    let mut options = ServeOptions::default();
    options.session_timeout = args.session_timeout();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options.tls = Some(tls_config(cert, key)?);
        serve_app::enable_tls(args, &mut config);
    }
    // Fail early on a bad configuration.
    ServerSession::new(config.clone())?;
    let shared = Arc::new(Shared {
        maildir: maildir::Maildir::create(&args.maildir)
            .map_err(serve_app::starting(format!(
                "cannot create the Maildir {}",
                args.maildir.display()
            )))?
            .with_hostname(&args.hostname),
        config,
        login,
        options,
        proxy_protocol: args.proxy_protocol,
        greeting_delay: args.greeting_delay(),
        ids: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        max_connections: args.max_connections(),
        stop: Arc::new(AtomicBool::new(false)),
    });
    // Before the port opens: SIGTERM stops the server gracefully from its
    // first connection on, not by the signal's default action.
    let again = shutdown_signals(Arc::clone(&shared.stop))
        .map_err(serve_app::starting("cannot handle SIGTERM and SIGINT"))?;
    let (listener, listening) = listen(args.listen).map_err(serve_app::starting(format!(
        "cannot listen on {}",
        args.listen
    )))?;
    log!(
        "INFO",
        "serving",
        listen = listening,
        maildir = args.maildir.display(),
    );
    let mut connections = Vec::new();
    // The finished threads are reaped when no connection is waiting, or
    // once the list has doubled: bounded under a steady stream of
    // connections, at little cost per connection.
    let mut reap_at = 64;
    while !shared.stop.load(Ordering::Relaxed) {
        let idle = match listener.accept() {
            Ok((socket, peer)) => {
                accepted(&shared, socket, peer, &mut connections);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
            Err(e) => {
                // Out of file descriptors and the like: wait a little.
                log!("ERROR", "accept failed", error = e);
                std::thread::sleep(ACCEPT_POLL);
                true
            }
        };
        if idle || connections.len() >= reap_at {
            connections.retain(|c: &JoinHandle<()>| !c.is_finished());
            reap_at = (2 * connections.len()).max(64);
        }
    }
    // Closed at once: a new connection is refused from here on.
    drop(listener);
    connections.retain(|c| !c.is_finished());
    log!("INFO", "shutting down", open = connections.len());
    let deadline = Instant::now() + args.shutdown_grace();
    // A second signal during the grace cuts the connections off at once.
    let mut second = None;
    while !connections.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Ok(signal) = again.recv_timeout(left.min(ACCEPT_POLL)) {
            second = Some(signal);
            break;
        }
        connections.retain(|c| !c.is_finished());
    }
    if connections.is_empty() {
        log!("INFO", "stopped");
        return Ok(ExitCode::SUCCESS);
    }
    match second {
        Some(signal) => log!(
            "WARN",
            "second shutdown signal: closing the connections still open now",
            signal = signal,
            open = connections.len(),
        ),
        None => log!(
            "WARN",
            "grace period over: closing the connections still open",
            open = connections.len(),
        ),
    }
    for c in &connections {
        let name = c.thread().name().unwrap_or("-");
        log!(
            "WARN",
            "connection cut off",
            peer = name.strip_prefix("smtp ").unwrap_or(name)
        );
    }
    // Returning from `main` ends the process and these connections with
    // it, without dropping the messages they were receiving: their files
    // are removed from `tmp/` here, and no new one is started.
    let removed = shared.maildir.abandon();
    log!(
        "WARN",
        "messages cut off were not stored: their files in tmp/ are removed",
        files = removed
    );
    log!("INFO", "stopped");
    Ok(match second {
        Some(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX)),
        None => ExitCode::SUCCESS,
    })
}

/// Installs the handlers of SIGTERM and SIGINT (at once: a signal from
/// here on no longer ends the process by its default action) and starts
/// the thread that reads them. The first sets `stop`; each later one is
/// sent on the returned channel, but for those within
/// [`SAME_SHUTDOWN_REQUEST`] of the first (the same request delivered
/// twice).
fn shutdown_signals(stop: Arc<AtomicBool>) -> std::io::Result<mpsc::Receiver<i32>> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let (again, signalled) = mpsc::channel();
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let mut first = None;
            for signal in signals.forever() {
                if !stop.swap(true, Ordering::AcqRel) {
                    first = Some(Instant::now());
                    continue;
                }
                if first.is_some_and(|at: Instant| at.elapsed() < SAME_SHUTDOWN_REQUEST) {
                    log!(
                        "INFO",
                        "the same shutdown signal again: still in the grace",
                        signal = signal
                    );
                    continue;
                }
                if again.send(signal).is_err() {
                    break;
                }
            }
        })?;
    Ok(signalled)
}

/// Starts a thread for a new connection, or refuses it beyond
/// `--max-connections`.
fn accepted(
    shared: &Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    connections: &mut Vec<JoinHandle<()>>,
) {
    // A socket accepted from a non-blocking listener is non-blocking on
    // some systems (not on Linux); the connection's reads block.
    if let Err(e) = socket.set_nonblocking(false) {
        return log!(
            "ERROR",
            "cannot make the socket blocking",
            peer = peer,
            error = e
        );
    }
    if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        return refuse(&shared.config, socket, peer);
    }
    let slot = Slot(Arc::clone(shared));
    let spawned = std::thread::Builder::new()
        .name(format!("smtp {peer}"))
        .spawn(move || {
            let slot = slot;
            connection(Arc::clone(&slot.0), socket, peer);
        });
    match spawned {
        Ok(handle) => connections.push(handle),
        // The closure (and its slot) was dropped with the error.
        Err(e) => log!("ERROR", "cannot start a connection thread", error = e),
    }
}
