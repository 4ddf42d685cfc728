//! The server's last words: the reply that closes the session, then (over
//! TLS) `close_notify`, whichever way the session ends; and a last reply
//! the client does not take is reported as the write timeout it is.
//! Over loopback TCP with implicit TLS, and over an in-memory transport
//! for the write that times out. Every read is bounded.

#[allow(dead_code, reason = "this binary uses only some of the helpers")]
mod support;

use support::{bounded_timeouts, connect, spawn_server, tls_configs, Recorder};

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{serve, ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::server::{RemoteError, ServerConfig, ServerSession};
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
