//! What a hostile peer costs the drivers in memory, over loopback TCP:
//! the process's peak resident size (`VmHWM`, Linux) may grow by no more
//! than [`GROWTH`] while a peer sends many times that. One test in this
//! file, so that no other test's allocations move the peak; each attack
//! runs in turn and is measured on its own. Every wait is bounded.

mod support;

/// The core's memory test helpers (`peak_resident`).
#[path = "../../smtp-proto/tests/memory/mod.rs"]
#[allow(dead_code)]
mod memory;

use memory::peak_resident;

use support::{client_config, envelope, pair, read_until, BOUND};

use std::io;
use std::time::Duration;

use smtp_proto_tokio::client::{self, ClientHandler, RunError, RunOptions};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{Client, ClientError, ClientEvent, TlsPolicy};
use smtp_proto_tokio::smtp_proto::reply::ReplyErrorKind;
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How much the peak resident size may grow during one attack: far less
/// than what each attack sends ([`VOLUME`]).
const GROWTH: usize = 16 * 1024 * 1024;

/// What each attack tries to send.
const VOLUME: usize = 256 * 1024 * 1024;

/// Accepts every decision, and keeps nothing.
struct AcceptAll;

impl ServerHandler for AcceptAll {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        _event: ServerEvent<'_>,
    ) -> io::Result<()> {
        if session.pending_decision().is_some() {
            session.accept().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// A client application that does nothing but quit when it can.
struct Quitter;

impl ClientHandler for Quitter {
    async fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        if matches!(event, ClientEvent::Ready) {
            client.quit().map_err(io::Error::other)?;
        }
        Ok(())
    }

    async fn next_body_piece(&mut self, _piece: &mut Vec<u8>) -> io::Result<bool> {
        Ok(false)
    }
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.example.net");
    config.timeouts.server = Duration::from_millis(500);
    config
}

/// A client that pipelines NOOP after NOOP and never reads a reply: the
/// server stops reading once its replies back up (it sends them before it
/// takes more), so the client gets only what the socket buffers hold
/// written, and the server ends on its write timeout.
async fn pipelining_client_that_never_reads() {
    let (mut c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(server_config()).expect("session");
        session.greet().expect("greet");
        serve(s, &mut session, &mut AcceptAll, &ServeOptions::default()).await
    });
    let writer = tokio::spawn(async move {
        let block = b"NOOP\r\n".repeat(64 * 1024 / 6);
        let mut written = 0usize;
        while written < VOLUME {
            match c.write(&block).await {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        (c, written)
    });
    let end = tokio::time::timeout(BOUND, server)
        .await
        .expect("the server ends although the client never reads")
        .expect("join");
    assert!(matches!(end, Err(ServeError::WriteTimedOut)), "{end:?}");
    // The server is gone: the writer's next writes fail, or stall until
    // the connection is reset; either way it is stopped here.
    let written = match tokio::time::timeout(Duration::from_secs(2), writer).await {
        Ok(joined) => joined.expect("join").1,
        Err(_) => 0,
    };
    assert!(written < VOLUME / 4, "the server read {written} octets");
}

/// A client that sends one line of [`VOLUME`] octets without a line end,
/// then ends it and quits: the server drops the line as it comes, answers
/// `500` and `221`. (The whole line must come within the server's
/// timeout, which is long here: dropped bytes do not restart it.)
async fn endless_line() {
    let (mut c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut config = server_config();
        config.timeouts.server = BOUND;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        serve(s, &mut session, &mut AcceptAll, &ServeOptions::default()).await
    });
    let block = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < VOLUME {
        tokio::time::timeout(BOUND, c.write_all(&block))
            .await
            .expect("the server keeps reading the line")
            .expect("write");
        sent += block.len();
    }
    c.write_all(b"\r\nQUIT\r\n").await.expect("write");
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, c.read_to_end(&mut got))
        .await
        .expect("bounded")
        .expect("read");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.ends_with("500 5.5.2 line too long\r\n221 2.0.0 Bye\r\n"),
        "{got}"
    );
    let end = tokio::time::timeout(BOUND, server)
        .await
        .expect("bounded")
        .expect("join");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
}

/// A server that answers EHLO with continuation lines that never end:
/// the client refuses the reply once it passes the reply limit, having
/// held no more than its read buffer, and closes.
async fn endless_ehlo_reply() {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        let mut line = [0u8; 512];
        let n = s.read(&mut line).await.expect("EHLO");
        assert!(line[..n].starts_with(b"EHLO "));
        s.write_all(b"250-mx.example.net\r\n").await.expect("write");
        let block = b"250-X-UNKNOWN-CAPABILITY with some words\r\n".repeat(64 * 1024 / 42);
        let mut sent = 0usize;
        while sent < VOLUME {
            match s.write(&block).await {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        sent
    });
    let mut client = Client::new(client_config(TlsPolicy::Off));
    let end = tokio::time::timeout(
        BOUND,
        client::run(c, &mut client, &mut Quitter, &RunOptions::default()),
    )
    .await
    .expect("the client ends although the reply never does");
    let Err(RunError::Client(ClientError::BadReply(e))) = end else {
        panic!("{end:?}");
    };
    assert_eq!(e.kind(), ReplyErrorKind::ReplyTooLong);
    let sent = tokio::time::timeout(BOUND, server)
        .await
        .expect("bounded")
        .expect("join");
    assert!(sent < VOLUME / 4, "the client read {sent} octets");
}

/// A client application that sends one message of [`VOLUME`] octets of
/// text, made piece by piece from one reused block.
struct Streamer {
    sent: usize,
    block: Vec<u8>,
}

impl ClientHandler for Streamer {
    async fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        match event {
            ClientEvent::Ready => client
                .send_mail(&envelope("a@example.com", ["b@example.org"]))
                .map_err(io::Error::other),
            _ => Ok(()),
        }
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        if self.sent >= VOLUME {
            return Ok(false);
        }
        piece.extend_from_slice(&self.block);
        self.sent += self.block.len();
        Ok(true)
    }
}

/// A server that answers up to DATA, then reads nothing more: the client
/// writes each piece of the body before it asks for the next, so it holds
/// one piece at a time, and ends on its timeout for a data block.
async fn server_that_never_reads_the_body() {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        s.write_all(b"220 mx.example.net ready\r\n")
            .await
            .expect("write");
        // Each reply once its command was read (no PIPELINING: the client
        // sends one at a time).
        for reply in [
            &b"250 mx.example.net\r\n"[..],
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ] {
            let mut line = Vec::new();
            read_until(&mut s, &mut line, b"\r\n").await;
            s.write_all(reply).await.expect("write");
        }
        // Holds the connection open, unread, until the client is done.
        tokio::time::sleep(BOUND).await;
        drop(s);
    });
    let mut timeouts = client_config(TlsPolicy::Off).timeouts;
    timeouts.data_block = Duration::from_millis(500);
    let mut client = Client::new(client_config(TlsPolicy::Off).with_timeouts(timeouts));
    let mut app = Streamer {
        sent: 0,
        block: b"a line of the message body\r\n".repeat(64 * 1024 / 28),
    };
    let end = tokio::time::timeout(
        BOUND,
        client::run(c, &mut client, &mut app, &RunOptions::default()),
    )
    .await
    .expect("the client ends although the server never reads");
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
    assert!(
        app.sent < VOLUME / 4,
        "the client wrote {} octets",
        app.sent
    );
    server.abort();
}

#[test]
fn hostile_peers_cost_the_drivers_bounded_memory() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up: the runtime, the first sockets and tasks.
    rt.block_on(async {
        let (_c, _s) = pair().await;
    });
    let measure = |name: &str, attack: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>| {
        let before = peak_resident();
        rt.block_on(attack);
        let growth = peak_resident().saturating_sub(before);
        assert!(
            growth < GROWTH,
            "{name}: peak resident size grew by {growth} octets"
        );
    };
    measure(
        "pipelining client that never reads",
        Box::pin(pipelining_client_that_never_reads()),
    );
    measure("endless command line", Box::pin(endless_line()));
    measure("endless EHLO reply", Box::pin(endless_ehlo_reply()));
    measure(
        "server that never reads the body",
        Box::pin(server_that_never_reads_the_body()),
    );
}
