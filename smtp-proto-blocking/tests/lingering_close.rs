//! The lingering close: once the session has ended and its last reply is
//! out, the server shuts its write side down and reads and drops what the
//! client still sends, for a bounded time and a bounded number of bytes,
//! before it closes. A client that pipelined QUIT and more, or that is
//! still sending when the session ends, then reads the last reply and a
//! clean end of stream, and the connection is not reset; a client that
//! never stops sending is still closed within the bounds. Over loopback
//! TCP; every loop is bounded in count and time.

#[allow(dead_code, reason = "this binary uses only some of the helpers")]
mod support;

use support::{bounded_timeouts, connect, spawn_server, tls_configs, Recorder, BOUND};

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::server::{ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::server::{RemoteError, ServerConfig};

/// The commands a client pipelines behind the end of the session: the
/// server must drop them unparsed (no event reaches the handler).
fn tail(bytes: usize) -> Vec<u8> {
    let line = b"MAIL FROM:<tail@client.test>\r\n";
    line.repeat(bytes / line.len() + 1)
}

fn config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config
}

/// Options whose lingering close outlasts any test's exchange: it ends
/// when the client closes its side.
fn lingering_long() -> ServeOptions {
    let mut options = ServeOptions::default();
    options.linger_time = BOUND;
    options.linger_bytes = 4 * 1024 * 1024;
    options
}

/// Joins `server`, waiting at most `limit` for it to finish (a bounded
/// loop of short sleeps): `None` when it is still running.
fn join_within<T>(server: JoinHandle<T>, limit: Duration) -> Option<T> {
    let start = Instant::now();
    for _ in 0..100_000 {
        if server.is_finished() {
            return Some(server.join().expect("server thread"));
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// What a client saw of the end of a connection.
#[derive(Debug)]
struct Seen {
    /// How writing the whole script went.
    sent: io::Result<()>,
    /// Everything read.
    got: String,
    /// How the reads ended: `Ok` for a clean end of stream (a read of 0).
    end: io::Result<()>,
}

/// Reads `stream` to its end (bounded by the read timeout and a count).
fn read_to_end(stream: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..10_000 {
        match stream.read(&mut chunk) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
    (got, Err(io::Error::other("no end within the bound")))
}

/// Sends `script` in one burst, then reads to the end, then shuts its
/// own write side down (which ends the server's lingering close).
fn burst_then_read(addr: SocketAddr, script: &[u8]) -> (TcpStream, Seen) {
    let mut stream = connect(addr);
    stream.set_write_timeout(Some(BOUND)).expect("timeout");
    let sent = stream.write_all(script);
    let (got, end) = read_to_end(&mut stream);
    let _ = stream.shutdown(Shutdown::Write);
    let got = String::from_utf8_lossy(&got).into_owned();
    (stream, Seen { sent, got, end })
}

/// Asserts that the client saw a clean end: its burst went out whole,
/// the last thing it read was `last`, then the end of the stream, and
/// (checked once the server has closed) no reset came.
#[track_caller]
fn assert_clean_end(stream: &TcpStream, seen: &Seen, last: &str) {
    assert!(seen.sent.is_ok(), "{seen:?}");
    assert!(seen.got.ends_with(last), "{seen:?}");
    assert!(seen.end.is_ok(), "{seen:?}");
    // A reset after the end of stream is kept as the socket's error.
    let error = stream.take_error().expect("SO_ERROR");
    assert!(error.is_none(), "the connection was reset: {error:?}");
}

#[test]
fn quit_with_a_pipelined_tail_gets_its_221_and_a_clean_end() {
    let (addr, server) = spawn_server(config(), lingering_long(), Recorder::new(None));
    let mut script = b"EHLO client.test\r\nQUIT\r\n".to_vec();
    // Far more than one read of the server takes.
    script.extend_from_slice(&tail(256 * 1024));
    let (stream, seen) = burst_then_read(addr, &script);
    let (end, recorder) = join_within(server, BOUND * 2).expect("the server ends");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_clean_end(&stream, &seen, "221 2.0.0 Bye\r\n");
    // The tail was dropped unparsed.
    assert!(recorder.seen.from.is_none(), "{:?}", recorder.seen.events);
}

#[test]
fn too_many_errors_with_a_tail_get_the_421_and_a_clean_end() {
    let (addr, server) = spawn_server(config(), lingering_long(), Recorder::new(None));
    let mut script = b"FOO\r\n".repeat(12);
    script.extend_from_slice(&tail(256 * 1024));
    let (stream, seen) = burst_then_read(addr, &script);
    let (end, recorder) = join_within(server, BOUND * 2).expect("the server ends");
    assert!(
        matches!(end, Err(ServeError::Remote(RemoteError::TooManyErrors))),
        "{end:?}"
    );
    assert_clean_end(
        &stream,
        &seen,
        "421 4.7.0 mx.test Too many errors, closing connection\r\n",
    );
    assert!(recorder.seen.from.is_none(), "{:?}", recorder.seen.events);
}

#[test]
fn quit_with_a_pipelined_tail_over_tls_gets_its_221_close_notify_and_a_clean_end() {
    let (server_tls, client_tls) = tls_configs();
    let mut config = config();
    config.implicit_tls = true;
    let mut options = lingering_long();
    options.tls = Some(server_tls);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let sock = connect(addr);
    sock.set_write_timeout(Some(BOUND)).expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(client_tls, name).expect("client connection");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut script = b"QUIT\r\n".to_vec();
    script.extend_from_slice(&tail(256 * 1024));
    let sent = tls.write_all(&script).and_then(|()| tls.flush());
    // Ends at the server's close_notify.
    let (got, end) = read_to_end(&mut tls);
    let got = String::from_utf8_lossy(&got).into_owned();
    let _ = tls.sock.shutdown(Shutdown::Write);
    let (served, _) = join_within(server, BOUND * 2).expect("the server ends");
    assert!(matches!(served, Ok(ServeEnd::Closed)), "{served:?}");
    let seen = Seen { sent, got, end };
    assert_clean_end(&tls.sock, &seen, "221 2.0.0 Bye\r\n");
    // After close_notify, the TCP stream ends cleanly too.
    let mut rest = [0u8; 64];
    assert_eq!(
        tls.sock.read(&mut rest).expect("read after close_notify"),
        0
    );
}

/// Connects, sends QUIT, then sends without end (from another thread,
/// until a write fails or a bound of a minute) while it reads to the
/// end: what it read, how the reads ended, and the writer, which returns
/// how the writes ended.
fn quit_then_send_forever(addr: SocketAddr) -> (Seen, JoinHandle<io::Result<()>>) {
    let mut stream = connect(addr);
    stream.set_write_timeout(Some(BOUND)).expect("timeout");
    let sent = stream.write_all(b"QUIT\r\n");
    let mut writer = stream.try_clone().expect("clone");
    let writing = thread::spawn(move || {
        let chunk = tail(16 * 1024);
        let until = Instant::now() + Duration::from_secs(60);
        for _ in 0..10_000_000 {
            writer.write_all(&chunk)?;
            if Instant::now() > until {
                break;
            }
        }
        Ok(())
    });
    let (got, end) = read_to_end(&mut stream);
    let got = String::from_utf8_lossy(&got).into_owned();
    (Seen { sent, got, end }, writing)
}

#[test]
fn a_client_that_never_stops_sending_is_closed_after_the_linger_time() {
    let mut options = ServeOptions::default();
    options.linger_time = Duration::from_secs(1);
    // No byte bound to speak of: only the time ends the drain.
    options.linger_bytes = usize::MAX;
    let started = Instant::now();
    let (addr, server) = spawn_server(config(), options, Recorder::new(None));
    let (seen, writing) = quit_then_send_forever(addr);
    assert!(seen.sent.is_ok(), "{seen:?}");
    assert!(seen.got.ends_with("221 2.0.0 Bye\r\n"), "{seen:?}");
    // The end of stream came with the shutdown, before the drain.
    assert!(seen.end.is_ok(), "{seen:?}");
    // A correctness bound, not a speed claim: the linger time and then
    // several seconds of slack.
    let (end, _) = join_within(server, Duration::from_secs(1 + 15)).expect("closed in time");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(1 + 15));
    // The server closed while the client still sent: its writes failed.
    let written = writing.join().expect("writer");
    assert!(written.is_err(), "the client could send for a minute");
}

#[test]
fn a_client_that_never_stops_sending_is_closed_after_the_linger_bytes() {
    let mut options = ServeOptions::default();
    // Longer than any bound of the test: only the bytes end the drain.
    options.linger_time = Duration::from_secs(600);
    options.linger_bytes = 64 * 1024;
    let (addr, server) = spawn_server(config(), options, Recorder::new(None));
    let (seen, writing) = quit_then_send_forever(addr);
    assert!(seen.got.ends_with("221 2.0.0 Bye\r\n"), "{seen:?}");
    assert!(seen.end.is_ok(), "{seen:?}");
    let (end, _) = join_within(server, BOUND).expect("closed within the bound");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    let written = writing.join().expect("writer");
    assert!(written.is_err(), "the client could send for a minute");
}

#[test]
fn a_zero_linger_time_or_byte_count_turns_the_lingering_close_off() {
    for (time, bytes) in [(Duration::ZERO, usize::MAX), (Duration::from_secs(600), 0)] {
        let mut options = ServeOptions::default();
        options.linger_time = time;
        options.linger_bytes = bytes;
        let (addr, server) = spawn_server(config(), options, Recorder::new(None));
        // The client reads the 221 and then holds the connection open,
        // silent: without the lingering close the server ends at once.
        let mut stream = connect(addr);
        stream.write_all(b"QUIT\r\n").expect("send QUIT");
        let (got, _) = read_to_end(&mut stream);
        let got = String::from_utf8_lossy(&got).into_owned();
        assert!(got.ends_with("221 2.0.0 Bye\r\n"), "{got:?}");
        let (end, _) = join_within(server, BOUND).expect("no lingering");
        assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
        drop(stream);
    }
}

#[test]
fn the_lingering_close_defaults_to_two_seconds_and_64_kib() {
    let options = ServeOptions::default();
    assert_eq!(options.linger_time, Duration::from_secs(2));
    assert_eq!(options.linger_bytes, 64 * 1024);
}
