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

use support::{bounded_timeouts, connect, spawn_peer, spawn_server, BOUND};

use std::io::{self, Read, Write};
use std::thread;
use std::time::Duration;

use smtp_proto_blocking::client::{self, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::server::{ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::Envelope;
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, ClientError, ClientEvent, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::reply::ReplyErrorKind;
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};

/// How much the peak resident size may grow during one attack: far less
/// than what each attack sends ([`VOLUME`]).
const GROWTH: usize = 16 * 1024 * 1024;

/// What each attack tries to send.
const VOLUME: usize = 256 * 1024 * 1024;

/// Accepts every decision, and keeps nothing.
struct AcceptAll;

impl ServerHandler for AcceptAll {
    fn on_event(&mut self, session: &mut ServerSession, _event: ServerEvent<'_>) -> io::Result<()> {
        if session.pending_decision().is_some() {
            session.accept().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// A client application that does nothing but quit when it can.
struct Quitter;

impl ClientHandler for Quitter {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        if matches!(event, ClientEvent::Ready) {
            client.quit().map_err(io::Error::other)?;
        }
        Ok(())
    }

    fn next_body_piece(&mut self, _piece: &mut Vec<u8>) -> io::Result<bool> {
        Ok(false)
    }
}

/// A client that pipelines NOOP after NOOP and never reads a reply: the
/// server sends its replies before it takes more, so it stops reading
/// once they back up; the client gets only what the socket buffers hold
/// written, and the server ends on its write timeout.
fn pipelining_client_that_never_reads() {
    let mut config = ServerConfig::new("mx.example.net");
    config.timeouts.server = Duration::from_millis(500);
    let (addr, server) = spawn_server(config, ServeOptions::default(), AcceptAll);
    let mut c = connect(addr);
    c.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let writer = thread::spawn(move || {
        let block = b"NOOP\r\n".repeat(64 * 1024 / 6);
        let mut written = 0usize;
        while written < VOLUME {
            // Fails once the server is gone (or stalls past the write
            // timeout while it still waits).
            match c.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        written
    });
    let (end, _) = server.join().expect("join");
    assert!(matches!(end, Err(ServeError::WriteTimedOut)), "{end:?}");
    let written = writer.join().expect("join");
    assert!(written < VOLUME / 4, "the server read {written} octets");
}

/// A client that sends one line of [`VOLUME`] octets without a line end,
/// then ends it and quits: the server drops the line as it comes, answers
/// `500` and `221`. (The whole line must come within the server's
/// timeout, which is long here: dropped bytes do not restart it.)
fn endless_line() {
    let mut config = ServerConfig::new("mx.example.net");
    config.timeouts = bounded_timeouts();
    let (addr, server) = spawn_server(config, ServeOptions::default(), AcceptAll);
    let mut c = connect(addr);
    c.set_write_timeout(Some(BOUND)).expect("timeout");
    let block = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < VOLUME {
        c.write_all(&block)
            .expect("the server keeps reading the line");
        sent += block.len();
    }
    c.write_all(b"\r\nQUIT\r\n").expect("write");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("read");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.ends_with("500 5.5.2 line too long\r\n221 2.0.0 Bye\r\n"),
        "{got}"
    );
    let (end, _) = server.join().expect("join");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
}

/// A server that answers EHLO with continuation lines that never end:
/// the client refuses the reply once it passes the reply limit, having
/// held no more than its read buffer, and closes.
fn endless_ehlo_reply() {
    let (addr, server) = spawn_peer(|mut s| {
        s.set_write_timeout(Some(BOUND)).expect("timeout");
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .expect("greeting");
        let mut line = [0u8; 512];
        let n = s.read(&mut line).expect("EHLO");
        assert!(line[..n].starts_with(b"EHLO "));
        s.write_all(b"250-mx.example.net\r\n").expect("write");
        let block = b"250-X-UNKNOWN-CAPABILITY with some words\r\n".repeat(64 * 1024 / 42);
        let mut sent = 0usize;
        while sent < VOLUME {
            match s.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        sent
    });
    let config = ClientConfig::new(Domain::new("client.example.com").expect("domain"))
        .with_tls(TlsPolicy::Off);
    let mut client = Client::new(config);
    let end = client::run(
        connect(addr),
        &mut client,
        &mut Quitter,
        &RunOptions::default(),
    );
    let Err(RunError::Client(ClientError::BadReply(e))) = end else {
        panic!("{end:?}");
    };
    assert_eq!(e.kind(), ReplyErrorKind::ReplyTooLong);
    let sent = server.join().expect("join");
    assert!(sent < VOLUME / 4, "the client read {sent} octets");
}

/// A client application that sends one message of [`VOLUME`] octets of
/// text, made piece by piece from one reused block.
struct Streamer {
    sent: usize,
    block: Vec<u8>,
}

impl ClientHandler for Streamer {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        match event {
            ClientEvent::Ready => {
                let mut envelope = Envelope::new(ReversePath::Mailbox(
                    Mailbox::parse("a@example.com").expect("mailbox"),
                ));
                envelope = envelope.recipient(ForwardPath::Mailbox(
                    Mailbox::parse("b@example.org").expect("mailbox"),
                ));
                client.send_mail(&envelope).map_err(io::Error::other)
            }
            _ => Ok(()),
        }
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
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
fn server_that_never_reads_the_body() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (addr, server) = spawn_peer(move |mut s| {
        s.write_all(b"220 mx.example.net ready\r\n").expect("write");
        // Each reply once its command was read (no PIPELINING: the client
        // sends one at a time).
        for reply in [
            &b"250 mx.example.net\r\n"[..],
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ] {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).expect("command");
                line.push(byte[0]);
            }
            s.write_all(reply).expect("write");
        }
        // Holds the connection open, unread, until the client is done.
        let _ = done_rx.recv_timeout(BOUND);
        drop(s);
    });
    let mut config = ClientConfig::new(Domain::new("client.example.com").expect("domain"))
        .with_tls(TlsPolicy::Off);
    let mut timeouts = config.timeouts;
    timeouts.data_block = Duration::from_millis(500);
    config = config.with_timeouts(timeouts);
    let mut client = Client::new(config);
    let mut app = Streamer {
        sent: 0,
        block: b"a line of the message body\r\n".repeat(64 * 1024 / 28),
    };
    let end = client::run(connect(addr), &mut client, &mut app, &RunOptions::default());
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
    assert!(
        app.sent < VOLUME / 4,
        "the client wrote {} octets",
        app.sent
    );
    done_tx.send(()).expect("send");
    server.join().expect("join");
}

#[test]
fn hostile_peers_cost_the_drivers_bounded_memory() {
    let attacks: [(&str, fn()); 4] = [
        (
            "pipelining client that never reads",
            pipelining_client_that_never_reads,
        ),
        ("endless command line", endless_line),
        ("endless EHLO reply", endless_ehlo_reply),
        (
            "server that never reads the body",
            server_that_never_reads_the_body,
        ),
    ];
    // Warm up: the first threads and sockets.
    let (addr, peer) = spawn_peer(drop);
    drop(connect(addr));
    peer.join().expect("join");
    for (name, attack) in attacks {
        let before = peak_resident();
        attack();
        let growth = peak_resident().saturating_sub(before);
        assert!(
            growth < GROWTH,
            "{name}: peak resident size grew by {growth} octets"
        );
    }
}
