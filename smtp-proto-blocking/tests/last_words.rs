//! The server's last words: the reply that closes the session, then (over
//! TLS) `close_notify`, whichever way the session ends; and a last reply
//! the client does not take is reported as the write timeout it is.
//! After a last reply the client did not take in time, nothing more is
//! written (not even `close_notify`, which would wait as long again).
//! Over loopback TCP with implicit TLS, and over an in-memory transport
//! for the write that times out. Every read is bounded.

#[allow(dead_code, reason = "this binary uses only some of the helpers")]
mod support;

use support::{bounded_timeouts, connect, spawn_server, tls_configs, Recorder};

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::server::{
    RemoteError, ServerConfig, ServerEvent, ServerSession,
};
use smtp_proto_blocking::{rustls, Transport};

/// Serves one implicit-TLS connection, sends `script` over TLS and reads
/// to the end: what the server sent, how the TLS stream ended (`Ok` for
/// a clean `close_notify`) and how `serve` ended.
fn over_tls(script: &[u8]) -> (String, io::Result<()>, Result<ServeEnd, ServeError>) {
    let (server_tls, client_tls) = tls_configs();
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.implicit_tls = true;
    config.chunking = true;
    let mut options = ServeOptions::default();
    options.tls = Some(server_tls);
    let (addr, server) = spawn_server(config, options, Recorder::new(None));
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(client_tls, name).expect("client connection");
    let mut tls = rustls::StreamOwned::new(conn, connect(addr));
    tls.write_all(script).expect("send the script");
    tls.flush().expect("flush");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut ended = Err(io::Error::other("no end within the bound"));
    // Bounded: each read waits at most the socket's read timeout.
    for _ in 0..1000 {
        match tls.read(&mut chunk) {
            Ok(0) => {
                ended = Ok(());
                break;
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => {
                ended = Err(e);
                break;
            }
        }
    }
    let (end, _) = server.join().expect("server thread");
    (String::from_utf8_lossy(&got).into_owned(), ended, end)
}

#[test]
fn quit_over_tls_ends_with_close_notify() {
    let (got, ended, end) = over_tls(b"QUIT\r\n");
    assert!(got.ends_with("221 2.0.0 Bye\r\n"), "{got:?}");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
}

#[test]
fn too_many_errors_over_tls_end_with_the_421_then_close_notify() {
    let (got, ended, end) = over_tls(&b"FOO\r\n".repeat(12));
    assert!(
        got.ends_with("421 4.7.0 mx.test Too many errors, closing connection\r\n"),
        "{got:?}"
    );
    // The client can tell the end of the session from a cut connection.
    assert!(ended.is_ok(), "{ended:?}");
    assert!(
        matches!(end, Err(ServeError::Remote(RemoteError::TooManyErrors))),
        "{end:?}"
    );
}

#[test]
fn an_unreadable_chunk_size_over_tls_ends_with_the_501_then_close_notify() {
    let (got, ended, end) = over_tls(b"EHLO client.test\r\nBDAT x\r\n");
    assert!(
        got.ends_with("501 5.5.4 Unreadable BDAT chunk size, closing\r\n"),
        "{got:?}"
    );
    assert!(ended.is_ok(), "{ended:?}");
    assert!(matches!(end, Err(ServeError::Remote(_))), "{end:?}");
}

/// A transport whose client is silent (every read is a read timeout) and
/// stops taking bytes after the first `open` writes (a write then fails
/// as a socket write timeout does on Unix, with `WouldBlock`).
struct StopsReading {
    open: usize,
    written: Vec<u8>,
    writes: usize,
}

impl Read for StopsReading {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(ErrorKind::WouldBlock.into())
    }
}

impl Write for StopsReading {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        if self.writes > self.open {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for &mut StopsReading {
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_timeout_421_the_client_does_not_take_is_a_write_timeout() {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    let mut session = ServerSession::new(config).expect("session");
    session.greet().expect("greet");
    // The greeting goes out; the 421 after the silent client's timeout
    // does not.
    let mut transport = StopsReading {
        open: 1,
        written: Vec::new(),
        writes: 0,
    };
    let end = serve(
        &mut transport,
        &mut session,
        &mut Recorder::new(None),
        &ServeOptions::default(),
    );
    assert_eq!(transport.written, b"220 mx.test ESMTP\r\n");
    // Not `TimedOut`, which tells that the 421 was sent.
    assert!(matches!(end, Err(ServeError::WriteTimedOut)), "{end:?}");
}

/// A loopback socket whose client stops taking bytes once `stalled` is
/// set: each write then fails as a socket write timeout does on Unix
/// (`WouldBlock`), and is counted in `refused`.
struct Stallable {
    sock: TcpStream,
    stalled: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Read for Stallable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
}

impl Write for Stallable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.stalled.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(ErrorKind::WouldBlock.into());
        }
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl Transport for Stallable {
    support::socket_timeouts!(sock);
}

/// Tells the client to stop reading at the first event; fails it too
/// with `fail`.
struct Stalls {
    stalled: Arc<AtomicBool>,
    fail: bool,
}

impl ServerHandler for Stalls {
    fn on_event(
        &mut self,
        _session: &mut ServerSession,
        _event: ServerEvent<'_>,
    ) -> io::Result<()> {
        self.stalled.store(true, Ordering::SeqCst);
        if self.fail {
            return Err(io::Error::other("the application failed"));
        }
        Ok(())
    }
}

/// Serves one implicit-TLS connection over a [`Stallable`] socket with a
/// [`Stalls`] handler and sends `script`: how `serve` ended, and the
/// socket writes it attempted once the client stopped reading.
fn stalled_over_tls(script: &[u8], fail: bool) -> (Result<ServeEnd, ServeError>, usize) {
    let (server_tls, client_tls) = tls_configs();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stalled = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let offered = Arc::clone(&refused);
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let stream = Stallable {
            sock,
            stalled: Arc::clone(&stalled),
            refused: offered,
        };
        let mut config = ServerConfig::new("mx.test");
        config.timeouts = bounded_timeouts();
        config.implicit_tls = true;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = Some(server_tls);
        serve(
            stream,
            &mut session,
            &mut Stalls { stalled, fail },
            &options,
        )
    });
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(client_tls, name).expect("client connection");
    let mut tls = rustls::StreamOwned::new(conn, connect(addr));
    tls.write_all(script).expect("send the script");
    tls.flush().expect("flush");
    // Read to the close (bounded by the socket's read timeout).
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if matches!(tls.read(&mut chunk), Ok(0) | Err(_)) {
            break;
        }
    }
    let end = server.join().expect("server thread");
    (end, refused.load(Ordering::SeqCst))
}

#[test]
fn a_421_to_a_handler_error_not_taken_over_tls_is_followed_by_nothing() {
    // The replies before a protocol error ends the session, not taken:
    // the attempts of one write that times out, and nothing after it.
    let (end, one_write) = stalled_over_tls(&b"FOO\r\n".repeat(12), false);
    assert!(matches!(end, Err(ServeError::Remote(_))), "{end:?}");
    assert!(one_write > 0, "the replies were offered");
    // The 421 to a handler error, not taken: as many attempts, so no
    // close_notify was tried after the write had timed out.
    let (end, attempts) = stalled_over_tls(b"EHLO client.test\r\n", true);
    assert!(matches!(end, Err(ServeError::Io(_))), "{end:?}");
    assert_eq!(attempts, one_write);
}
