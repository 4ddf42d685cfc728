//! The std-only client side of the lingering-close tests, shared by the
//! blocking and the tokio adapters (the tokio tests include this file by
//! `#[path]`): a blocking loopback TCP client, bounded in count and time,
//! that sends, reads to the end of the stream and checks how it ended.
//! Each test file keeps its own server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A raw loopback client whose reads and writes wait at most `bound`.
pub fn connect(addr: SocketAddr, bound: Duration) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(bound)).expect("timeout");
    stream.set_write_timeout(Some(bound)).expect("timeout");
    stream
}

/// The commands a client pipelines behind the end of the session: the
/// server must drop them unparsed (no event reaches the handler).
pub fn tail(bytes: usize) -> Vec<u8> {
    let line = b"MAIL FROM:<tail@client.test>\r\n";
    line.repeat(bytes / line.len() + 1)
}

/// Joins `server`, waiting at most `limit` for it to finish (a bounded
/// loop of short sleeps): `None` when it is still running.
pub fn join_within<T>(server: JoinHandle<T>, limit: Duration) -> Option<T> {
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
pub struct Seen {
    /// How writing the whole script went.
    pub sent: io::Result<()>,
    /// Everything read.
    pub got: String,
    /// How the reads ended: `Ok` for a clean end of stream (a read of 0).
    pub end: io::Result<()>,
}

/// Reads `stream` to its end (bounded by the read timeout and a count).
pub fn read_to_end(stream: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
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

/// Sends `script` in one burst (flushed), then reads `stream` to its end.
pub fn send_then_read(stream: &mut (impl Read + Write), script: &[u8]) -> Seen {
    let sent = stream.write_all(script).and_then(|()| stream.flush());
    let (got, end) = read_to_end(stream);
    let got = String::from_utf8_lossy(&got).into_owned();
    Seen { sent, got, end }
}

/// Sends `script` in one burst on `stream`, then reads to the end, then
/// shuts its own write side down (which ends the server's lingering
/// close).
pub fn burst_then_read(mut stream: TcpStream, script: &[u8]) -> (TcpStream, Seen) {
    let seen = send_then_read(&mut stream, script);
    let _ = stream.shutdown(Shutdown::Write);
    (stream, seen)
}

/// Asserts that the client saw a clean end: its burst went out whole,
/// the last thing it read was `last`, then the end of the stream, and
/// (checked once the server has closed) no reset came.
#[track_caller]
pub fn assert_clean_end(stream: &TcpStream, seen: &Seen, last: &str) {
    assert!(seen.sent.is_ok(), "{seen:?}");
    assert!(seen.got.ends_with(last), "{seen:?}");
    assert!(seen.end.is_ok(), "{seen:?}");
    // A reset after the end of stream is kept as the socket's error.
    let error = stream.take_error().expect("SO_ERROR");
    assert!(error.is_none(), "the connection was reset: {error:?}");
}

/// Asserts that after the TLS close_notify the TCP stream under it ends
/// cleanly too.
#[track_caller]
pub fn assert_tcp_ends(mut sock: &TcpStream) {
    let mut rest = [0u8; 64];
    assert_eq!(sock.read(&mut rest).expect("read after close_notify"), 0);
}

/// Sends QUIT on `stream`, then sends without end (from another thread,
/// until a write fails or a bound of a minute) while it reads to the
/// end: what it read, how the reads ended, and the writer, which returns
/// how the writes ended.
pub fn quit_then_send_forever(mut stream: TcpStream) -> (Seen, JoinHandle<io::Result<()>>) {
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

/// Asserts what a client that never stops sending saw: the 221 and then
/// a clean end of stream (with the shutdown, before the drain).
#[track_caller]
pub fn assert_221_then_end(seen: &Seen) {
    assert!(seen.got.ends_with("221 2.0.0 Bye\r\n"), "{seen:?}");
    assert!(seen.end.is_ok(), "{seen:?}");
}

/// Sends QUIT on `stream`, reads the 221 and then the end of stream, and
/// asserts the 221 came; the stream stays open, silent, until dropped.
#[track_caller]
pub fn quit_and_read_221(stream: &mut TcpStream) {
    stream.write_all(b"QUIT\r\n").expect("send QUIT");
    let (got, _) = read_to_end(stream);
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(got.ends_with("221 2.0.0 Bye\r\n"), "{got:?}");
}
