//! The graceful stop of `serve_until` over loopback TCP: an idle client
//! gets `421 4.3.2` soon after the flag is set, a message under way is
//! finished and acknowledged first, and without the flag the session runs
//! as with `serve`.
//!
//! Every socket read has a read timeout and every loop a count bound. The
//! times asserted are bounds with wide margins, not measurements.

mod support;

use support::{bounded_timeouts, connect, read_to_close, Recorder, BOUND};

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smtp_proto_blocking::server::{serve_until, ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerSession};

/// What the driver sends on the stop.
const SHUTTING_DOWN: &str = "421 4.3.2 mx.test Service shutting down, closing connection\r\n";

/// How soon after the flag is set an idle connection must have ended: the
/// driver looks at the flag at least every 200 ms; the rest is margin.
const STOP_BOUND: Duration = Duration::from_secs(3);

/// The server thread: the driver's result, the handler, and when the
/// driver returned.
type Server = JoinHandle<(Result<ServeEnd, ServeError>, Recorder, Instant)>;

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config
}

/// Serves one loopback connection with `serve_until` on a thread, with a
/// [`Recorder`]; returns the address, the stop flag and the thread.
fn spawn_stoppable(config: ServerConfig) -> (SocketAddr, Arc<AtomicBool>, Server) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let join = thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut handler = Recorder::new(None);
        let options = ServeOptions::default();
        let end = serve_until(socket, &mut session, &mut handler, &options, &flag);
        (end, handler, Instant::now())
    });
    (addr, stop, join)
}

/// Reads until one more complete reply (a final line `NNN ...`) has
/// arrived after what `buf` holds now; returns its text.
fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let start = buf.len();
    let mut chunk = [0u8; 1024];
    for _ in 0..1_000 {
        let text = String::from_utf8_lossy(&buf[start..]).into_owned();
        if text
            .split_inclusive("\r\n")
            .any(|l| l.ends_with("\r\n") && l.as_bytes().get(3) == Some(&b' '))
        {
            return text;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return text,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf[start..]).into_owned()
}

/// Sends `command` and reads its reply; asserts that it starts with
/// `code`.
#[track_caller]
fn exchange(stream: &mut TcpStream, buf: &mut Vec<u8>, command: &str, code: &str) {
    stream.write_all(command.as_bytes()).expect("send");
    let reply = read_reply(stream, buf);
    assert!(reply.starts_with(code), "{command:?} got {reply:?}");
}

/// A client that has read the greeting and sent EHLO.
fn hello(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut peer = connect(addr);
    let mut buf = Vec::new();
    let greeting = read_reply(&mut peer, &mut buf);
    assert!(greeting.starts_with("220 "), "greeting {greeting:?}");
    exchange(&mut peer, &mut buf, "EHLO client.test\r\n", "250");
    (peer, buf)
}

/// Asserts that nothing arrives on `peer` for `wait` (and that it is
/// still open).
#[track_caller]
fn assert_silent(peer: &mut TcpStream, wait: Duration) {
    peer.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    match peer.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected nothing, got {other:?} ({:?})", byte),
    }
    peer.set_read_timeout(Some(BOUND)).expect("timeout");
}

#[test]
fn an_idle_client_gets_421_soon_after_the_stop() {
    let (addr, stop, server) = spawn_stoppable(server_config());
    let (mut peer, _) = hello(addr);
    // Longer than a slice of the wait: the driver is in its sliced wait.
    assert_silent(&mut peer, Duration::from_millis(500));

    let stopped = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let seen = stopped.elapsed();
    let (end, recorder, returned) = server.join().expect("server thread");

    assert!(closed, "the server closed the connection");
    assert_eq!(String::from_utf8_lossy(&got), SHUTTING_DOWN);
    assert_eq!(end.expect("server result"), ServeEnd::ShutDown);
    assert!(seen < STOP_BOUND, "421 after {seen:?}");
    let took = returned.duration_since(stopped);
    assert!(took < STOP_BOUND, "the driver returned after {took:?}");
    assert_eq!(recorder.seen.events, ["Hello"]);
}

#[test]
fn a_message_under_way_is_finished_and_acknowledged_before_the_421() {
    let (addr, stop, server) = spawn_stoppable(server_config());
    let (mut peer, mut buf) = hello(addr);
    exchange(&mut peer, &mut buf, "MAIL FROM:<a@client.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "RCPT TO:<b@mx.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "DATA\r\n", "354");
    peer.write_all(b"Subject: stop\r\n\r\nfirst half\r\n")
        .expect("body");

    stop.store(true, Ordering::Relaxed);
    // Several slices of the wait: the driver has seen the flag, and keeps
    // reading the body instead of closing.
    assert_silent(&mut peer, Duration::from_millis(700));
    peer.write_all(b"second half\r\n.\r\n").expect("body end");
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let (end, recorder, _) = server.join().expect("server thread");

    assert!(closed, "the server closed the connection");
    let text = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[0].starts_with("250 "),
        "the message is accepted: {text:?}"
    );
    assert_eq!(lines[1], SHUTTING_DOWN);
    assert_eq!(end.expect("server result"), ServeEnd::ShutDown);
    assert_eq!(recorder.seen.message_ends, 1);
    assert_eq!(
        recorder.seen.message,
        b"Subject: stop\r\n\r\nfirst half\r\nsecond half\r\n"
    );
}

#[test]
fn without_the_stop_the_session_runs_to_quit() {
    let (addr, stop, server) = spawn_stoppable(server_config());
    let (mut peer, mut buf) = hello(addr);
    // Idle for several slices of the wait between commands.
    assert_silent(&mut peer, Duration::from_millis(500));
    exchange(&mut peer, &mut buf, "MAIL FROM:<a@client.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "RCPT TO:<b@mx.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "DATA\r\n", "354");
    exchange(
        &mut peer,
        &mut buf,
        "Subject: go\r\n\r\nbody\r\n.\r\n",
        "250",
    );
    assert_silent(&mut peer, Duration::from_millis(500));
    exchange(&mut peer, &mut buf, "QUIT\r\n", "221");
    let mut rest = Vec::new();
    assert!(read_to_close(&mut peer, &mut rest), "closed after QUIT");
    let (end, recorder, _) = server.join().expect("server thread");

    assert!(!stop.load(Ordering::Relaxed));
    assert!(rest.is_empty(), "nothing after the 221: {rest:?}");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert_eq!(recorder.seen.message_ends, 1);
    assert_eq!(recorder.seen.message, b"Subject: go\r\n\r\nbody\r\n");
}

#[test]
fn the_sliced_wait_keeps_the_session_timeout() {
    let timeout = Duration::from_millis(900);
    let mut config = server_config();
    config.timeouts.server = timeout;
    let (addr, _stop, server) = spawn_stoppable(config);
    let (mut peer, _) = hello(addr);
    let waited = Instant::now();
    let mut got = Vec::new();
    let closed = read_to_close(&mut peer, &mut got);
    let elapsed = waited.elapsed();
    let (end, _, _) = server.join().expect("server thread");

    assert!(closed, "the server closed the connection");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
    // Neither cut short by a slice nor extended by the slicing.
    assert!(
        elapsed >= timeout.mul_f32(0.9),
        "timed out after {elapsed:?}"
    );
    assert!(elapsed < timeout * 3, "timed out after {elapsed:?}");
}

#[test]
fn a_body_trickled_after_the_stop_must_end_within_one_timeout() {
    let timeout = Duration::from_millis(1500);
    let mut config = server_config();
    config.timeouts.server = timeout;
    let (addr, stop, server) = spawn_stoppable(config);
    let (mut peer, mut buf) = hello(addr);
    exchange(&mut peer, &mut buf, "MAIL FROM:<a@client.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "RCPT TO:<b@mx.test>\r\n", "250");
    exchange(&mut peer, &mut buf, "DATA\r\n", "354");
    stop.store(true, Ordering::Relaxed);
    // The body goes on, a line every 500 ms (well within the session's
    // timeout of the one before): without the stop it could go on for
    // ever. Twelve lines take six seconds, four timeouts.
    for i in 0..12 {
        thread::sleep(Duration::from_millis(500));
        if server.is_finished() || peer.write_all(format!("line {i}\r\n").as_bytes()).is_err() {
            break;
        }
    }
    let _ = peer.write_all(b".\r\n");
    let mut got = Vec::new();
    read_to_close(&mut peer, &mut got);
    let (end, recorder, _) = server.join().expect("server thread");

    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(end.expect("server result"), ServeEnd::TimedOut);
    assert_eq!(recorder.seen.message_ends, 0, "the message is void");
}
