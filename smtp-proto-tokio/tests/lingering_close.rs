//! The lingering close: once the session has ended and its last reply is
//! out, the server shuts its write side down and reads and drops what the
//! client still sends, for a bounded time and a bounded number of bytes,
//! before it closes. A client that pipelined QUIT and more, or that is
//! still sending when the session ends, then reads the last reply and a
//! clean end of stream, and the connection is not reset; a client that
//! never stops sending is still closed within the bounds. The server runs
//! on its own runtime on a thread, the client is a blocking loopback TCP
//! client; every loop is bounded in count and time.

mod support;

/// The std-only client side, shared with the blocking adapter's tests.
#[path = "../../smtp-proto-blocking/tests/support/linger_client.rs"]
mod linger_client;

use linger_client::{
    assert_221_then_end, assert_clean_end, assert_tcp_ends, burst_then_read, connect, join_within,
    quit_and_read_221, quit_then_send_forever, send_then_read, tail,
};
use support::{tls_configs, Recorder, BOUND};

use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smtp_proto_tokio::rustls::{self, pki_types::ServerName};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions};
use smtp_proto_tokio::smtp_proto::server::{RemoteError, ServerConfig, ServerSession};
use smtp_proto_tokio::tokio_rustls::TlsAcceptor;

/// The server thread of [`spawn_server`]: how `serve` ended and the
/// handler.
type ServerThread = JoinHandle<(Result<ServeEnd, ServeError>, Recorder)>;

/// Serves one loopback connection with `config` and `options` and a
/// [`Recorder`], on a runtime of its own on a thread.
fn spawn_server(config: ServerConfig, options: ServeOptions) -> (SocketAddr, ServerThread) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let (stream, _) = tokio::time::timeout(BOUND, listener.accept())
                .await
                .expect("a client within the bound")
                .expect("accept");
            let mut session = ServerSession::new(config).expect("session");
            session.greet().expect("greet");
            let mut recorder = Recorder::default();
            let end = serve(stream, &mut session, &mut recorder, &options).await;
            (end, recorder)
        })
    });
    (addr, server)
}

/// True when the handler saw a MAIL command.
fn saw_mail(recorder: &Recorder) -> bool {
    recorder.events.iter().any(|(name, _)| name == "Mail")
}

fn config() -> ServerConfig {
    ServerConfig::new("mx.test")
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
    let (addr, server) = spawn_server(config(), lingering_long());
    let mut script = b"EHLO client.test\r\nQUIT\r\n".to_vec();
    // Far more than one read of the server takes.
    script.extend_from_slice(&tail(256 * 1024));
    let (stream, seen) = burst_then_read(connect(addr, BOUND), &script);
    let (end, recorder) = join_within(server, BOUND * 2).expect("the server ends");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_clean_end(&stream, &seen, "221 2.0.0 Bye\r\n");
    // The tail was dropped unparsed.
    assert!(!saw_mail(&recorder), "{:?}", recorder.events);
}

#[test]
fn too_many_errors_with_a_tail_get_the_421_and_a_clean_end() {
    let (addr, server) = spawn_server(config(), lingering_long());
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
    assert!(!saw_mail(&recorder), "{:?}", recorder.events);
}

#[test]
fn quit_with_a_pipelined_tail_over_tls_gets_its_221_close_notify_and_a_clean_end() {
    let (server_tls, client_tls) = tls_configs();
    let mut config = config();
    config.implicit_tls = true;
    let mut options = lingering_long();
    options.tls = Some(TlsAcceptor::from(server_tls));
    let (addr, server) = spawn_server(config, options);
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
    let (addr, server) = spawn_server(config(), options);
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
    let (addr, server) = spawn_server(config(), options);
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
        let (addr, server) = spawn_server(config(), options);
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
