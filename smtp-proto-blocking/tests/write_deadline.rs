//! One deadline bounds a whole write: a peer that takes our bytes a few at
//! a time, each pause shorter than the timeout, cannot stretch one write
//! past the timeout, over loopback TCP.
//!
//! Every socket read has a read timeout and every loop a count and a time
//! bound. The times asserted are bounds with wide margins, not
//! measurements.

mod support;

use support::{
    bounded_timeouts, spawn_server_with_buffers, tls_configs, Recorder, ServerThread, BOUND,
};

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, ClientEvent, Envelope, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::server::ServerConfig;
use smtp_proto_blocking::smtp_proto::session::Timeouts;

/// The session's timeout in these tests: the bound on one write.
const TIMEOUT: Duration = Duration::from_millis(1000);

/// How many bytes the slow reader takes at a time.
const SIP: usize = 64;

/// The slow reader's pause between reads: far shorter than [`TIMEOUT`],
/// so each socket write makes progress well within it.
const PAUSE: Duration = Duration::from_millis(20);

/// How long the slow reader keeps reading at most. Far longer than
/// [`TIMEOUT`]: a write bounded only per socket write call goes on for
/// all of it.
const TRICKLE_FOR: Duration = Duration::from_secs(8);

/// The socket buffers of both sides, in bytes: the kernel rounds them up
/// to its least, so that few replies wait in them, and the client's
/// receive window opens again after a few of its reads (a window that
/// stays shut would stall even a single socket write).
const BUFFERS: usize = 1;

/// A loopback client whose send and receive buffers are [`BUFFERS`] bytes
/// each, with read and write timeouts of [`BOUND`].
fn connect_small(addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .set_recv_buffer_size(BUFFERS)
        .expect("receive buffer");
    socket.set_send_buffer_size(BUFFERS).expect("send buffer");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(BOUND)).expect("timeout");
    stream.set_write_timeout(Some(BOUND)).expect("timeout");
    stream
}

/// Reads `stream` [`SIP`] bytes at a time with a [`PAUSE`] after each
/// read, until the peer closes, `done` is set or [`TRICKLE_FOR`] has
/// passed; returns how many bytes it read.
fn trickle_reader(mut stream: TcpStream, done: Arc<AtomicBool>) -> usize {
    let began = Instant::now();
    let mut chunk = [0u8; SIP];
    let mut got = 0;
    let rounds = TRICKLE_FOR.as_millis() / PAUSE.as_millis();
    for _ in 0..rounds {
        if done.load(Ordering::Relaxed) || began.elapsed() > TRICKLE_FOR {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        thread::sleep(PAUSE);
    }
    got
}

#[test]
fn a_client_that_reads_a_few_bytes_at_a_time_cannot_stretch_a_server_write() {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.timeouts.server = TIMEOUT;
    let (addr, server) = spawn_server_with_buffers(
        config,
        ServeOptions::default(),
        Recorder::new(None),
        Some(BUFFERS),
    );
    let peer = connect_small(addr);
    let sender = peer.try_clone().expect("clone");
    // Each EHLO (13 bytes) draws a reply about ten times as long: the
    // pipelined flood makes replies far beyond what the socket buffers
    // hold, queued in writes of up to 16 KiB each.
    let flood = b"EHLO a.test\r\n".repeat(2_000);
    flood_slowly_until_the_write_times_out(peer, sender, flood, server);
}

/// Sends `flood` on `sender` while a slow reader takes the replies from
/// `peer`; asserts that the server's write timed out about one
/// [`TIMEOUT`] after it started, though the client read all the while
/// (without the bound on the whole write, the server keeps writing for as
/// long as the client reads, [`TRICKLE_FOR`]), and that the server took
/// some but not all of the 2,000 pipelined EHLOs.
fn flood_slowly_until_the_write_times_out(
    peer: TcpStream,
    mut sender: TcpStream,
    flood: Vec<u8>,
    server: ServerThread<Recorder>,
) {
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writer = thread::spawn(move || {
        // Fails once the server is gone; the server may not read it all.
        let _ = sender.write_all(&flood);
        sender
    });
    let reader = {
        let done = Arc::clone(&done);
        thread::spawn(move || trickle_reader(peer, done))
    };
    let (end, recorder) = server.join().expect("server thread");
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let got = reader.join().expect("reader");
    drop(writer.join().expect("writer"));

    assert!(
        matches!(end, Err(ServeError::WriteTimedOut)),
        "expected a write timeout, got {end:?}"
    );
    assert_about_one_timeout(elapsed);
    assert!(got > 0, "the client read some of what the server wrote");
    let hellos = recorder
        .seen
        .events
        .iter()
        .filter(|e| *e == "Hello")
        .count();
    assert!(hellos > 0 && hellos < 2_000, "{hellos}");
}

/// Asserts that a write that timed out took about one [`TIMEOUT`]: its
/// full time, and far less than the slow reader's [`TRICKLE_FOR`].
#[track_caller]
fn assert_about_one_timeout(elapsed: Duration) {
    assert!(
        elapsed >= TIMEOUT.mul_f32(0.9),
        "the write had its full time: {elapsed:?}"
    );
    assert!(
        elapsed < TIMEOUT * 4,
        "the write ended about one timeout after it started: {elapsed:?}"
    );
}

/// Timeouts that are all [`TIMEOUT`].
fn timeouts() -> Timeouts {
    let mut t = bounded_timeouts();
    t.initial = TIMEOUT;
    t.mail = TIMEOUT;
    t.rcpt = TIMEOUT;
    t.data_init = TIMEOUT;
    t.data_block = TIMEOUT;
    t.data_termination = TIMEOUT;
    t.server = TIMEOUT;
    t
}

/// A loopback listener whose connections have send and receive buffers of
/// [`BUFFERS`] bytes each.
fn listen_small() -> TcpListener {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .set_recv_buffer_size(BUFFERS)
        .expect("receive buffer");
    socket.set_send_buffer_size(BUFFERS).expect("send buffer");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(1).expect("listen");
    socket.into()
}

/// Reads one line a byte at a time (at most 1000 bytes).
fn read_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    for _ in 0..1000 {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
        if line.ends_with(b"\r\n") {
            break;
        }
    }
    line
}

/// Sends one message with a body of one large piece, then quits.
struct LargeBody {
    started: bool,
    body: Option<Vec<u8>>,
}

impl ClientHandler for LargeBody {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        match event {
            ClientEvent::Ready if !self.started => {
                self.started = true;
                let from = Mailbox::parse("alice@example.net").map_err(io::Error::other)?;
                let to = Mailbox::parse("bob@example.com").map_err(io::Error::other)?;
                let envelope =
                    Envelope::new(ReversePath::Mailbox(from)).recipient(ForwardPath::Mailbox(to));
                client.send_mail(&envelope).map_err(io::Error::other)
            }
            ClientEvent::Ready | ClientEvent::TransactionEnd(_) => {
                client.quit().map_err(io::Error::other)
            }
            _ => Ok(()),
        }
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        match self.body.take() {
            Some(body) => {
                piece.extend_from_slice(&body);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[test]
fn a_server_that_reads_a_few_bytes_at_a_time_cannot_stretch_a_client_write() {
    let listener = listen_small();
    let addr = listener.local_addr().expect("addr");
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let (mut peer, _) = listener.accept().expect("accept");
            peer.set_read_timeout(Some(BOUND)).expect("timeout");
            peer.set_write_timeout(Some(BOUND)).expect("timeout");
            peer.write_all(b"220 mx.test ESMTP\r\n").expect("greeting");
            // EHLO (no PIPELINING offered), MAIL, RCPT, DATA, one at a time.
            let mut commands = Vec::new();
            for reply in [
                &b"250 mx.test\r\n"[..],
                b"250 OK\r\n",
                b"250 OK\r\n",
                b"354 Go on\r\n",
            ] {
                commands.push(read_line(&mut peer));
                peer.write_all(reply).expect("reply");
            }
            (commands, trickle_reader(peer, done))
        })
    };
    let config = ClientConfig::new(Domain::new("client.test").expect("domain"))
        .with_tls(TlsPolicy::Off)
        .with_timeouts(timeouts());
    let mut client = Client::new(config);
    // One piece of 1 MiB: one write, far more than the socket buffers and
    // the server's reads in [`TRICKLE_FOR`] take.
    let body = b"Subject: big\r\n\r\n"
        .iter()
        .copied()
        .chain(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\r\n".repeat(16_384),
        )
        .collect();
    let mut handler = LargeBody {
        started: false,
        body: Some(body),
    };
    let stream = connect_small(addr);
    let started = Instant::now();
    let result = run(stream, &mut client, &mut handler, &RunOptions::default());
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (commands, got) = server.join().expect("server thread");

    assert!(
        commands.last().is_some_and(|c| c == b"DATA\r\n"),
        "the body followed DATA: {commands:?}"
    );
    assert!(
        matches!(result, Err(RunError::TimedOut)),
        "expected a time-out, got {result:?}"
    );
    // `elapsed` includes the four exchanges before the body, each a
    // fraction of a millisecond on loopback.
    assert_about_one_timeout(elapsed);
    assert!(got > 0, "the server read some of the body");
}

#[test]
fn a_tls_client_that_reads_a_few_bytes_at_a_time_cannot_stretch_a_server_write() {
    let (server_tls, client_tls) = tls_configs();
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.timeouts.server = TIMEOUT;
    config.implicit_tls = true;
    let mut options = ServeOptions::default();
    options.tls = Some(server_tls);
    let (addr, server) =
        spawn_server_with_buffers(config, options, Recorder::new(None), Some(BUFFERS));
    let mut peer = connect_small(addr);
    let mut conn =
        rustls::ClientConnection::new(client_tls, ServerName::try_from("localhost").expect("name"))
            .expect("client connection");
    // Bounded: each round moves handshake bytes, or fails.
    for _ in 0..100 {
        if !conn.is_handshaking() {
            break;
        }
        conn.complete_io(&mut peer).expect("handshake");
    }
    assert!(!conn.is_handshaking(), "handshake done");
    // The flood of the plaintext test, encrypted up front: from here on
    // the client only writes these bytes and trickle-reads the server's
    // records without decrypting them.
    conn.set_buffer_limit(None);
    conn.writer()
        .write_all(&b"EHLO a.test\r\n".repeat(2_000))
        .expect("plaintext");
    let mut flood = Vec::new();
    for _ in 0..10_000 {
        if !conn.wants_write() {
            break;
        }
        conn.write_tls(&mut flood).expect("records");
    }
    let sender = peer.try_clone().expect("clone");
    flood_slowly_until_the_write_times_out(peer, sender, flood, server);
}
