//! A real SMTP (or LMTP) server that stores every accepted message in a
//! Maildir.
//!
//! ```text
//! cargo run --release -p smtp-proto-tokio --example serve -- \
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
//! On SIGTERM or Ctrl-C the server stops accepting connections and stops
//! the open ones gracefully: an idle client gets `421 4.3.2` at once, a
//! message under way is received, stored and acknowledged first. After
//! `--shutdown-grace` seconds (default 60) the connections still open are
//! dropped (their messages were not acknowledged, so their clients send
//! them again), the messages they were sending are removed from `tmp/`,
//! and the server exits with status 0. A second SIGTERM or Ctrl-C during
//! the grace (a second or more after the first: one that comes sooner is
//! taken for the same request, as `timeout` and process-group kills
//! deliver it twice) cuts the connections off at once in the same way and
//! the
//! server exits with status 128 plus the signal's number (130 after
//! Ctrl-C). Either way the log names the connections cut off and counts
//! the messages removed.
//!
//! A server that cannot start (its Maildir cannot be created, its address
//! is taken, its certificate cannot be read) says why on one line of
//! standard error, naming the path or address, and exits with status 1;
//! a bad option is a usage error, status 2.

#[path = "support/maildir.rs"]
#[allow(dead_code)]
mod maildir;
#[path = "support/serve_app.rs"]
mod serve_app;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use clap::Parser;
use serve_app::{Args, Envelope, Login, Next, Spool, SAME_SHUTDOWN_REQUEST};
use smtp_proto_tokio::proxy::read_proxy_header;
use smtp_proto_tokio::server::{serve_until, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::tls;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

struct Shared {
    maildir: maildir::Maildir,
    config: ServerConfig,
    login: Login,
    tls: ServeOptions,
    proxy_protocol: bool,
    greeting_delay: Option<std::time::Duration>,
    ids: AtomicU64,
    active: AtomicUsize,
    max_connections: usize,
}

struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    envelope: Envelope,
    spool: Spool,
}

impl Connection {
    /// The message's file in `tmp/` and queue id, started with its trace
    /// lines (blocking file IO, off the async threads) when there is none
    /// yet.
    async fn file(&mut self) -> std::io::Result<(String, maildir::Delivery)> {
        if let Some(started) = self.spool.take_file()? {
            return Ok(started);
        }
        let id = serve_app::queue_id(&self.shared.ids);
        let trace = self
            .envelope
            .trace(&id, self.peer.ip(), &self.shared.config.hostname)?;
        let shared = Arc::clone(&self.shared);
        let delivery = tokio::task::spawn_blocking(move || shared.maildir.begin(&trace))
            .await
            .map_err(std::io::Error::other)??;
        Ok((id, delivery))
    }

    /// Moves the message held in memory on to its file (off the async
    /// threads). The message's buffer is kept for reuse.
    async fn spill(&mut self) -> std::io::Result<()> {
        let (id, delivery) = self.file().await?;
        let mut bytes = std::mem::take(&mut self.envelope.message);
        let (delivery, written) = tokio::task::spawn_blocking(move || {
            let mut delivery = delivery;
            let written = delivery.write_all(&bytes);
            bytes.clear();
            (delivery, written.map(|()| bytes))
        })
        .await
        .map_err(std::io::Error::other)?;
        self.envelope.message = written?;
        self.spool = Spool::File(id, delivery);
        Ok(())
    }

    /// Stores the message and returns its queue id.
    async fn deliver(&mut self) -> std::io::Result<String> {
        let (id, delivery) = self.file().await?;
        let message = std::mem::take(&mut self.envelope.message);
        let path = tokio::task::spawn_blocking(move || {
            let mut delivery = delivery;
            delivery.write_all(&message)?;
            delivery.commit()
        })
        .await
        .map_err(std::io::Error::other)??;
        tracing::info!(
            id,
            peer = %self.peer,
            recipients = self.envelope.rcpts.len(),
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
        match self.envelope.on_event(session, event, &self.shared.login)? {
            Next::Deliver => {
                let stored = self.deliver().await;
                if let Err(e) = &stored {
                    tracing::error!(peer = %self.peer, error = %e, "delivery failed");
                }
                self.envelope
                    .finish(session, stored.as_deref().map_err(|_| ()))?;
            }
            // After a failed write the rest of the message is dropped.
            Next::Spill if matches!(self.spool, Spool::Failed) => self.envelope.message.clear(),
            Next::Spill => {
                if let Err(e) = self.spill().await {
                    tracing::error!(peer = %self.peer, error = %e, "writing the message failed");
                    self.spool = Spool::Failed;
                    self.envelope.message.clear();
                }
            }
            // Dropping a started file removes it from `tmp/`.
            Next::Discard => self.spool = Spool::InMemory,
            Next::Authenticated(user) => tracing::info!(peer = %self.peer, user, "authenticated"),
            Next::AuthFailed => tracing::warn!(peer = %self.peer, "authentication failed"),
            Next::Refused(code, reason) => {
                tracing::info!(peer = %self.peer, code = code.get(), reason = ?reason, "refused");
            }
            Next::MessageRefused(code, reason) => {
                tracing::info!(peer = %self.peer, code = code.get(), reason = ?reason, "message refused");
                // Dropping a started file removes it from `tmp/`.
                self.spool = Spool::InMemory;
            }
            Next::Done => {}
        }
        Ok(())
    }
}

/// Frees a connection's place when the connection ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(
    shared: Arc<Shared>,
    mut socket: tokio::net::TcpStream,
    mut peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let mut session = match ServerSession::new(shared.config.clone()) {
        Ok(s) => s,
        Err(e) => return tracing::error!(error = %e, "session"),
    };
    if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(%peer, "too many connections, refused");
        // On implicit TLS the client waits for a TLS handshake: a plaintext
        // 421 would only be garbage to it, so the connection just closes.
        if !shared.config.implicit_tls
            && session
                .refuse(serve_app::too_many_connections(&shared.config.hostname))
                .is_ok()
        {
            let mut out = Vec::new();
            session.poll_transmit(&mut out);
            let _ = socket.write_all(&out).await;
            let _ = socket.shutdown().await;
        }
        return;
    }
    let _slot = Slot(Arc::clone(&shared));
    if shared.proxy_protocol {
        match read_proxy_header(&mut socket, serve_app::PROXY_HEADER_TIMEOUT).await {
            Ok(header) => {
                let client = header.client_address(peer);
                tracing::debug!(%peer, %client, version = ?header.version(), "PROXY header");
                peer = client;
            }
            Err(e) => {
                return tracing::warn!(%peer, error = %e, "no valid PROXY header, closed");
            }
        }
    }
    let talked_first = match shared.greeting_delay {
        Some(delay) => {
            let mut probe = [0u8; 1];
            match tokio::time::timeout(delay, socket.peek(&mut probe)).await {
                Ok(Ok(0) | Err(_)) => return, // gone before the greeting
                Ok(Ok(_)) => true,
                Err(_) => false, // quiet for the whole delay
            }
        }
        None => false,
    };
    let greeted = if talked_first {
        tracing::warn!(%peer, "input before the greeting, refused");
        session.refuse(serve_app::early_talker(&shared.config.hostname))
    } else {
        session.greet()
    };
    if let Err(e) = greeted {
        return tracing::error!(error = %e, "greet");
    }
    let mut conn = Connection {
        shared: Arc::clone(&shared),
        peer,
        envelope: Envelope::default(),
        spool: Spool::InMemory,
    };
    // A closed channel (the sender gone) stops the connection too.
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    match serve_until(socket, &mut session, &mut conn, &shared.tls, shutdown).await {
        Ok(ServeEnd::Closed | ServeEnd::PeerClosed) => {}
        Ok(end) => tracing::info!(%peer, ?end, "connection ended"),
        Err(e) => tracing::warn!(%peer, error = %e, "connection error"),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    serve(args)
        .await
        .unwrap_or_else(|e| serve_app::failed_to_start(&e))
}

/// Serves until a shutdown signal; an error if the server cannot start.
async fn serve(args: Args) -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let (mut config, login) = serve_app::server_config(&args)?;
    let mut options = ServeOptions::default();
    options.session_timeout = args.session_timeout();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options.tls = Some(TlsAcceptor::from(tls::server_config(cert, key)?));
        serve_app::enable_tls(&args, &mut config);
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
        tls: options,
        proxy_protocol: args.proxy_protocol,
        greeting_delay: args.greeting_delay(),
        ids: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        max_connections: args.max_connections(),
    });
    // Before the port opens: SIGTERM stops the server gracefully from its
    // first connection on.
    let mut signals =
        ShutdownSignals::new().map_err(serve_app::starting("cannot handle SIGTERM and SIGINT"))?;
    // A listen queue of 1024 (TcpListener::bind asks for 128): a burst of
    // connections larger than the queue overflows it, and the kernel then
    // drops the client's handshake ACK while the client believes it is
    // connected, so it waits for a greeting that may never come.
    let (listener, listening) = listen(args.listen).map_err(serve_app::starting(format!(
        "cannot listen on {}",
        args.listen
    )))?;
    tracing::info!(listen = %listening, maildir = %args.maildir.display(), "serving");
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    // The peer of each connection task, to name the ones cut off.
    let mut peers = HashMap::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let task = connections.spawn(connection(Arc::clone(&shared), socket, peer, stopped.clone()));
                    peers.insert(task.id(), peer);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Finished connections are reaped as they end.
            Some(ended) = connections.join_next_with_id(), if !connections.is_empty() => {
                peers.remove(&ended_id(ended));
            }
            signal = signals.recv() => {
                tracing::info!(signal, "shutdown signal");
                break;
            }
        }
    }
    let first_signal = std::time::Instant::now();
    drop(listener);
    tracing::info!(open = connections.len(), "shutting down");
    let _ = stop.send(true);
    let grace = tokio::time::sleep(args.shutdown_grace());
    let mut grace = std::pin::pin!(grace);
    // `None` once every connection has ended; else why they are cut off.
    let forced = loop {
        tokio::select! {
            ended = connections.join_next_with_id() => match ended {
                Some(ended) => {
                    peers.remove(&ended_id(ended));
                }
                None => break None,
            },
            () = &mut grace => break Some(None),
            signal = signals.recv() => {
                if first_signal.elapsed() < SAME_SHUTDOWN_REQUEST {
                    tracing::info!(signal, "the same shutdown signal again: still in the grace");
                    continue;
                }
                break Some(Some(signal));
            }
        }
    };
    let Some(signal) = forced else {
        tracing::info!("stopped");
        return Ok(std::process::ExitCode::SUCCESS);
    };
    match signal {
        Some(signal) => tracing::warn!(
            signal,
            open = connections.len(),
            "second shutdown signal: closing the connections still open now"
        ),
        None => tracing::warn!(
            open = connections.len(),
            "grace period over: closing the connections still open"
        ),
    }
    for peer in peers.values() {
        tracing::warn!(%peer, "connection cut off");
    }
    // Aborted, each connection drops the message it was receiving, which
    // removes its file from `tmp/`; the Maildir removes any left (one
    // that a blocking write still holds) and starts no new one.
    let partial = shared.maildir.in_progress();
    connections.shutdown().await;
    shared.maildir.abandon();
    tracing::warn!(
        files = partial,
        "messages cut off were not stored: their files in tmp/ are removed"
    );
    tracing::info!("stopped");
    Ok(match signal {
        Some(signal) => std::process::ExitCode::from(128u8.saturating_add(signal)),
        None => std::process::ExitCode::SUCCESS,
    })
}

/// A listener on `addr` with a listen queue of 1024, and the address it
/// got (the port chosen for port 0).
fn listen(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(1024)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// The task id of a connection task that ended.
fn ended_id(ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match ended {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    }
}

/// SIGTERM and Ctrl-C (SIGINT). The handlers are installed at once (not
/// when first awaited), so a signal that comes as soon as the port is
/// open stops the server gracefully too, not by the signal's default
/// action; they stay installed, so a second signal is seen as well.
#[cfg(unix)]
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl ShutdownSignals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's number: 15 for SIGTERM, 2 for SIGINT.
    async fn recv(&mut self) -> u8 {
        tokio::select! {
            _ = self.term.recv() => 15,
            _ = self.interrupt.recv() => 2,
        }
    }
}

/// Ctrl-C.
#[cfg(not(unix))]
struct ShutdownSignals;

#[cfg(not(unix))]
impl ShutdownSignals {
    fn new() -> std::io::Result<Self> {
        Ok(ShutdownSignals)
    }

    /// The next Ctrl-C, as 2 (SIGINT's number).
    async fn recv(&mut self) -> u8 {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}
