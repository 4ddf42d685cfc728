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

#[path = "support/linger_client.rs"]
mod linger_client;

use linger_client::{
    assert_221_then_end, assert_clean_end, assert_tcp_ends, burst_then_read, connect, join_within,
    quit_and_read_221, quit_then_send_forever, send_then_read, tail,
};
use support::{bounded_timeouts, spawn_server, tls_configs, Recorder, BOUND};

use std::net::Shutdown;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::server::{ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::server::{RemoteError, ServerConfig};

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

#[test]
fn quit_with_a_pipelined_tail_gets_its_221_and_a_clean_end() {
    let (addr, server) = spawn_server(config(), lingering_long(), Recorder::new(None));
    let mut script = b"EHLO client.test\r\nQUIT\r\n".to_vec();
    // Far more than one read of the server takes.
    script.extend_from_slice(&tail(256 * 1024));
    let (stream, seen) = burst_then_read(connect(addr, BOUND), &script);
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
    let (stream, seen) = burst_then_read(connect(addr, BOUND), &script);
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
    let sock = connect(addr, BOUND);
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(client_tls, name).expect("client connection");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut script = b"QUIT\r\n".to_vec();
    script.extend_from_slice(&tail(256 * 1024));
    // Ends at the server's close_notify.
    let seen = send_then_read(&mut tls, &script);
    let _ = tls.sock.shutdown(Shutdown::Write);
    let (served, _) = join_within(server, BOUND * 2).expect("the server ends");
    assert!(matches!(served, Ok(ServeEnd::Closed)), "{served:?}");
    assert_clean_end(&tls.sock, &seen, "221 2.0.0 Bye\r\n");
    // After close_notify, the TCP stream ends cleanly too.
    assert_tcp_ends(&tls.sock);
}

#[test]
fn a_client_that_never_stops_sending_is_closed_after_the_linger_time() {
    let mut options = ServeOptions::default();
    options.linger_time = Duration::from_secs(1);
    // No byte bound to speak of: only the time ends the drain.
    options.linger_bytes = usize::MAX;
    let started = Instant::now();
    let (addr, server) = spawn_server(config(), options, Recorder::new(None));
    let (seen, writing) = quit_then_send_forever(connect(addr, BOUND));
    assert!(seen.sent.is_ok(), "{seen:?}");
    // The end of stream came with the shutdown, before the drain.
    assert_221_then_end(&seen);
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
    let (seen, writing) = quit_then_send_forever(connect(addr, BOUND));
    assert_221_then_end(&seen);
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
        let mut stream = connect(addr, BOUND);
        quit_and_read_221(&mut stream);
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
