//! The drivers' clocks: for the server, a deadline per command that bytes
//! trickled into an unfinished line do not extend, a limit on silence
//! inside a message body, and the optional cap on the whole connection;
//! for the client, a deadline per reply. Over an
//! in-memory stream, on tokio's paused clock (time moves on only while
//! every task waits), so minutes pass in no time and nothing here depends
//! on the machine's speed.

mod support;

use support::{client_config, join, read_to_close, read_until, OneMessage, Recorder, BOUND};

use std::time::Duration;

use smtp_proto_tokio::client::{run, RunError, RunOptions};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions};
use smtp_proto_tokio::smtp_proto::client::{Client, TlsPolicy};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

/// The session's timeout in these tests.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The pause before each trickled byte: within the timeout of the one
/// before, so a timeout that restarts on every byte never runs out.
const STEP: Duration = Duration::from_secs(9);

/// How `serve` ended, and the handler.
type ServerTask = JoinHandle<(Result<ServeEnd, ServeError>, Recorder)>;

/// Serves the server end of an in-memory stream with a session whose
/// timeout is [`TIMEOUT`], `options` and a [`Recorder`]; returns the
/// client end.
fn spawn_server(options: ServeOptions) -> (DuplexStream, ServerTask) {
    spawn_server_with(TIMEOUT, options)
}

/// [`spawn_server`] with the session's timeout at `timeout`.
fn spawn_server_with(timeout: Duration, options: ServeOptions) -> (DuplexStream, ServerTask) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.net");
        config.timeouts.server = timeout;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let end = serve(server, &mut session, &mut rec, &options).await;
        (end, rec)
    });
    (client, task)
}

/// Sends `bytes` one at a time, [`STEP`] apart, while the server runs;
/// returns how many were sent.
async fn trickle(client: &mut DuplexStream, bytes: &[u8], server: &ServerTask) -> usize {
    let mut sent = 0;
    for byte in bytes {
        tokio::time::sleep(STEP).await;
        if server.is_finished() || client.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

/// Asserts that the server's last words, after `from` in `got`, are the
/// timeout's `421 4.4.2`, alone, and that `serve` ended timed out.
#[track_caller]
fn assert_timed_out(got: &[u8], from: usize, end: &Result<ServeEnd, ServeError>) {
    let text = String::from_utf8_lossy(&got[from..]);
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
    assert!(matches!(end, Ok(ServeEnd::TimedOut)), "{end:?}");
}

/// A client that sends its command a byte at a time, each byte within the
/// timeout of the one before, does not hold the connection: the deadline
/// for the command runs from when the server began to wait for it, so the
/// 421 comes before the line is complete.
#[tokio::test(start_paused = true)]
async fn a_trickled_command_times_out_at_its_deadline() {
    let (mut c, server) = spawn_server(ServeOptions::default());
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    let greeting = got.len();
    let line = b"EHLO client.example.com\r\n";
    let sent = trickle(&mut c, line, &server).await;
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    // One byte came 9 s into the 10 s deadline, the next would have come
    // at 18 s.
    assert!(sent < line.len(), "the whole line went through");
    assert_eq!(sent, 1);
    assert_timed_out(&got, greeting, &end);
    assert!(rec.events.is_empty(), "{:?}", rec.events);
}

/// The same for an over-long line: its bytes are thrown away (consumed)
/// as they come, but they complete no command, so they do not restart the
/// deadline either.
#[tokio::test(start_paused = true)]
async fn a_trickled_over_long_line_times_out_at_its_deadline() {
    let (mut c, server) = spawn_server(ServeOptions::default());
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    let greeting = got.len();
    // Longer than the session's 1024-octet line limit, with no end.
    c.write_all(&[b'x'; 2000]).await.expect("write");
    let sent = trickle(&mut c, &[b'x'; 50], &server).await;
    read_to_close(&mut c, &mut got).await;
    let (end, _) = join(server).await;

    assert!(sent < 50, "the server waited for all of it");
    assert_eq!(sent, 1);
    assert_timed_out(&got, greeting, &end);
}

/// Each command the server takes starts the deadline again: a client
/// that sends its commands whole, each within the timeout, is served.
#[tokio::test(start_paused = true)]
async fn each_command_gets_the_whole_timeout() {
    let (mut c, server) = spawn_server(ServeOptions::default());
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    for _ in 0..5 {
        tokio::time::sleep(STEP).await;
        c.write_all(b"NOOP\r\n").await.expect("write");
        let mut reply = Vec::new();
        read_until(&mut c, &mut reply, b"\r\n").await;
        got.extend_from_slice(&reply);
    }
    c.write_all(b"QUIT\r\n").await.expect("write");
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("250 2.0.0 OK\r\n").count(), 5, "{text}");
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text}");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(
        rec.events.iter().filter(|(e, _)| e == "Noop").count(),
        5,
        "{:?}",
        rec.events
    );
}

/// Sends EHLO, MAIL, RCPT and DATA at once and reads to the end of the
/// 354.
async fn start_data(c: &mut DuplexStream, got: &mut Vec<u8>) {
    read_until(c, got, b"\r\n").await;
    c.write_all(
        b"EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n\
          RCPT TO:<b@example.org>\r\nDATA\r\n",
    )
    .await
    .expect("write");
    read_until(c, got, b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
}

/// Inside a message body the timeout limits the client's silence, not
/// the length of the message (RFC 5321 §4.5.3.2.7 is about waiting for a
/// command): a body trickled within the timeout per byte is taken whole.
#[tokio::test(start_paused = true)]
async fn a_slow_body_is_limited_by_silence_only() {
    let (mut c, server) = spawn_server(ServeOptions::default());
    let mut got = Vec::new();
    start_data(&mut c, &mut got).await;
    let body = b"Subject: slow\r\n\r\nhello\r\n";
    let sent = trickle(&mut c, body, &server).await;
    assert_eq!(
        sent,
        body.len(),
        "the server gave up on a body still coming"
    );
    c.write_all(b".\r\nQUIT\r\n").await.expect("write");
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text}");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert_eq!(rec.messages, vec![body.to_vec()]);
}

/// `session_timeout` bounds the whole connection, a trickled body too:
/// the client gets the timeout's 421 once it has passed, and the message
/// is void.
#[tokio::test(start_paused = true)]
async fn the_session_timeout_bounds_a_trickled_body() {
    let mut options = ServeOptions::default();
    options.session_timeout = Some(Duration::from_secs(60));
    let (mut c, server) = spawn_server(options);
    let mut got = Vec::new();
    start_data(&mut c, &mut got).await;
    let from = got.len();
    let body = [b'y'; 100];
    let sent = trickle(&mut c, &body, &server).await;
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    // 60 s hold six bytes 9 s apart, and not the seventh.
    assert_eq!(sent, 6);
    assert_timed_out(&got, from, &end);
    assert!(!rec.saw_end);
}

/// Timeouts too long to be an `Instant` (`Duration::MAX`, for "no limit")
/// mean no limit: the session runs as usual instead of the driver's clock
/// overflowing.
#[tokio::test(start_paused = true)]
async fn timeouts_too_long_for_the_clock_mean_no_limit() {
    let mut options = ServeOptions::default();
    options.session_timeout = Some(Duration::MAX);
    let (mut c, server) = spawn_server_with(Duration::MAX, options);
    c.write_all(b"EHLO client.example.com\r\nQUIT\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    read_to_close(&mut c, &mut got).await;
    let (end, _) = join(server).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text:?}");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
}

/// A client stream that always has more pipelined copies of `line` ready
/// to read and takes the server's replies slowly: 4 KiB a second. The
/// server never runs out of input (each write it waits on reads more), so
/// only `session_timeout`, checked after such writes too, can end it.
struct NoopFlood {
    line: &'static [u8],
    offset: usize,
    /// The next write waits for this.
    next_write: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl tokio::io::AsyncRead for NoopFlood {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        while buf.remaining() > 0 {
            let byte = self.line[self.offset % self.line.len()];
            buf.put_slice(&[byte]);
            self.offset += 1;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for NoopFlood {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(sleep) = self.next_write.as_mut() {
            std::task::ready!(std::future::Future::poll(sleep.as_mut(), cx));
        }
        self.next_write = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
        std::task::Poll::Ready(Ok(buf.len().min(4096)))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `session_timeout` ends a session that never waits for input: the
/// client pipelines commands without end and reads the replies just fast
/// enough that no write times out. Short `NOOP`s make replies pile up
/// (the session stops to have them sent); long ones make few replies, so
/// the server waits for the client's next bytes after each write.
#[tokio::test(start_paused = true)]
async fn session_timeout_ends_a_client_that_always_has_more_commands() {
    let long_noop: &'static [u8] = format!("NOOP {}\r\n", "x".repeat(900)).leak().as_bytes();
    for line in [&b"NOOP\r\n"[..], long_noop] {
        let mut config = ServerConfig::new("mx.example.net");
        config.timeouts.server = TIMEOUT;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.session_timeout = Some(Duration::from_secs(30));
        let stream = NoopFlood {
            line,
            offset: 0,
            next_write: None,
        };
        let started = tokio::time::Instant::now();
        let end = tokio::time::timeout(
            Duration::from_secs(600),
            serve(stream, &mut session, &mut Recorder::default(), &options),
        )
        .await
        .expect("session_timeout ended the session");
        assert!(matches!(end, Ok(ServeEnd::TimedOut)), "{end:?}");
        // Within the limit, plus at most one write's wait. `elapsed` is on
        // tokio's paused clock (`start_paused`): it counts the timers the
        // server ran, not how fast this machine is, so this checks the
        // limit's logic and is no timing assertion.
        assert!(started.elapsed() <= Duration::from_secs(30) + TIMEOUT);
    }
}

/// The client's wait for a reply is a deadline too: a server that sends
/// its greeting a byte at a time, each byte within the timeout of the one
/// before, does not hold the client; the run ends timed out before the
/// reply is complete.
#[tokio::test(start_paused = true)]
async fn a_trickled_reply_times_out_at_its_deadline() {
    let (ours, mut server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let mut config = client_config(TlsPolicy::Off);
        config.timeouts.initial = TIMEOUT;
        let mut client = Client::new(config);
        let mut handler = OneMessage::new("a@example.com", ["b@example.com".to_owned()], b"x\r\n");
        let end = run(ours, &mut client, &mut handler, &RunOptions::default()).await;
        (end, handler.greeted)
    });
    let greeting = b"220 mx.example.net ESMTP\r\n";
    let mut sent = 0;
    for byte in greeting {
        tokio::time::sleep(STEP).await;
        if task.is_finished() || server.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
    }
    let (end, greeted) = tokio::time::timeout(BOUND, task)
        .await
        .expect("bounded")
        .expect("join");

    // One byte came 9 s into the 10 s deadline, the next would have come
    // at 18 s.
    assert!(matches!(end, Err(RunError::TimedOut)), "{end:?}");
    assert_eq!(sent, 1);
    assert!(!greeted);
}
