//! The server driver's graceful stop (`serve_until`): an idle client gets
//! `421 4.3.2` at once; a message under way is read to its end, decided
//! and acknowledged before the 421. Over an in-memory stream on tokio's
//! paused clock, every wait bounded.

mod support;

use support::{join, read_to_close, read_until, Recorder};

use smtp_proto_tokio::server::{serve_until, ServeEnd, ServeError, ServeOptions};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

type ServerTask = JoinHandle<(Result<ServeEnd, ServeError>, Recorder)>;

const SHUT_DOWN: &str = "421 4.3.2 mx.example.net Service shutting down, closing connection\r\n";

/// Serves the server end of an in-memory stream until `true` is sent on
/// the returned channel; returns the client end too.
fn spawn_server() -> (DuplexStream, watch::Sender<bool>, ServerTask) {
    spawn_server_with(ServerConfig::new("mx.example.net"))
}

/// [`spawn_server`] with a configuration of its own.
fn spawn_server_with(config: ServerConfig) -> (DuplexStream, watch::Sender<bool>, ServerTask) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let end = serve_until(
            server,
            &mut session,
            &mut rec,
            &ServeOptions::default(),
            shutdown,
        )
        .await;
        (end, rec)
    });
    (client, stop, task)
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_gets_421_4_3_2_and_the_connection_ends() {
    let (mut c, stop, server) = spawn_server();
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO client.example.com\r\n")
        .await
        .expect("write");
    read_until(&mut c, &mut got, b"250 ").await;
    read_until(&mut c, &mut got, b"\r\n").await;
    let before = got.len();
    stop.send(true).expect("send");
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    assert_eq!(String::from_utf8_lossy(&got[before..]), SHUT_DOWN);
    assert!(matches!(end, Ok(ServeEnd::ShutDown)), "{end:?}");
    assert!(rec.messages.is_empty());
}

/// Sends EHLO, MAIL, RCPT and DATA in one write and reads up to the end
/// of the 354 reply: the body is under way.
async fn start_body(c: &mut DuplexStream, got: &mut Vec<u8>) {
    c.write_all(
        b"EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n\
          RCPT TO:<b@example.org>\r\nDATA\r\n",
    )
    .await
    .expect("write");
    read_until(c, got, b"354 ").await;
    read_until(c, got, b"\r\n").await;
}

#[tokio::test(start_paused = true)]
async fn a_message_under_way_is_finished_and_acknowledged_first() {
    let (mut c, stop, server) = spawn_server();
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    start_body(&mut c, &mut got).await;
    c.write_all(b"Subject: half\r\n").await.expect("write");
    // Let the server take the first part before the stop.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stop.send(true).expect("send");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!server.is_finished(), "the server waits for the body's end");
    let before = got.len();
    // The rest of the body, and a command pipelined behind it.
    c.write_all(b"\r\nsecond half\r\n.\r\nMAIL FROM:<c@example.com>\r\n")
        .await
        .expect("write");
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(server).await;

    let text = String::from_utf8_lossy(&got[before..]).into_owned();
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(lines[0].starts_with("250 "), "{text:?}");
    assert_eq!(lines[1], SHUT_DOWN);
    assert!(matches!(end, Ok(ServeEnd::ShutDown)), "{end:?}");
    assert_eq!(
        rec.messages,
        vec![b"Subject: half\r\n\r\nsecond half\r\n".to_vec()]
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_stop_the_session_runs_to_quit() {
    let (mut c, stop, server) = spawn_server();
    let mut got = Vec::new();
    c.write_all(b"EHLO client.example.com\r\nQUIT\r\n")
        .await
        .expect("write");
    read_to_close(&mut c, &mut got).await;
    let (end, _) = join(server).await;
    drop(stop);
    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text}");
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
}

/// A client that always has more commands ready and takes our replies
/// only after a wait: every write first waits once (and is woken at
/// once), and meanwhile the next `NOOP`s are there to read, up to
/// `noops` of them; after those it is silent. What the server writes is
/// kept.
struct StreamingClient {
    noops: usize,
    /// Offset into `NOOP\r\n` of the next byte to give.
    pos: usize,
    wait_next_write: bool,
    written: Vec<u8>,
}

impl tokio::io::AsyncRead for StreamingClient {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        const NOOP: &[u8] = b"NOOP\r\n";
        let this = self.get_mut();
        if this.noops == 0 {
            // Silent, not closed: nothing wakes this read.
            return std::task::Poll::Pending;
        }
        while buf.remaining() > 0 && this.noops > 0 {
            buf.put_slice(&NOOP[this.pos..this.pos + 1]);
            this.pos += 1;
            if this.pos == NOOP.len() {
                this.pos = 0;
                this.noops -= 1;
            }
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for StreamingClient {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.wait_next_write {
            this.wait_next_write = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        this.wait_next_write = true;
        this.written.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_always_has_more_commands_ready_still_gets_the_421() {
    const NOOPS: usize = 20_000;
    let mut client = StreamingClient {
        noops: NOOPS,
        pos: 0,
        wait_next_write: true,
        written: Vec::new(),
    };
    let mut session = ServerSession::new(ServerConfig::new("mx.example.net")).expect("session");
    session.greet().expect("greet");
    let mut rec = Recorder::default();
    let mut options = ServeOptions::default();
    // A small read buffer: each read takes a few hundred commands.
    options.read_buffer = 1024;
    options.linger_time = std::time::Duration::ZERO;
    // The stop has come before the first command.
    let end = tokio::time::timeout(
        support::BOUND,
        serve_until(&mut client, &mut session, &mut rec, &options, async {}),
    )
    .await
    .expect("bounded");
    assert!(matches!(end, Ok(ServeEnd::ShutDown)), "{end:?}");
    let text = String::from_utf8_lossy(&client.written).into_owned();
    assert!(
        text.ends_with(SHUT_DOWN),
        "{:?}",
        &text[text.len().saturating_sub(200)..]
    );
    // The stop is heeded once the commands in hand are answered, not
    // once the client runs out of commands to send.
    let answered = text.matches("250 ").count();
    assert!(
        answered < NOOPS / 10,
        "{answered} of {NOOPS} commands answered before the 421"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_trickled_after_the_stop_must_end_within_one_timeout() {
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
    let mut config = ServerConfig::new("mx.example.net");
    config.timeouts.server = TIMEOUT;
    let (mut c, stop, task) = spawn_server_with(config);
    let mut got = Vec::new();
    start_body(&mut c, &mut got).await;
    stop.send(true).expect("send");
    // The client goes on with its body, one line every 40 seconds: each
    // comes within the session's timeout of the one before, so without
    // the stop the body could go on for ever.
    let before = got.len();
    for i in 0..10 {
        tokio::time::sleep(std::time::Duration::from_secs(40)).await;
        if task.is_finished() {
            break;
        }
        let line = format!("line {i}\r\n");
        if c.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = c.write_all(b".\r\n").await;
    read_to_close(&mut c, &mut got).await;
    let (end, rec) = join(task).await;

    assert!(matches!(end, Ok(ServeEnd::TimedOut)), "{end:?}");
    let text = String::from_utf8_lossy(&got[before..]).into_owned();
    assert!(text.starts_with("421 4.4.2 "), "{text:?}");
    assert!(rec.messages.is_empty(), "the message was not finished");
}
