//! After a last reply the client did not take in time (the `421` to a
//! handler error, or the replies before a protocol error ends the
//! session), the server driver sends nothing more: no shutdown, whose TLS
//! `close_notify` would wait as long again behind the bytes not taken.
//! Over an in-memory stream that stops taking bytes, on tokio's paused
//! clock, so the write timeout passes in no time.

mod support;

use support::{Recorder, BOUND};

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::server::{RemoteError, ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A client that sends `input` at once, then nothing (its reads wait
/// for ever), and takes the first `open` bytes written, then none.
struct Stalling {
    input: Vec<u8>,
    sent: bool,
    open: usize,
    written: Vec<u8>,
    shutdowns: usize,
}

impl Stalling {
    fn new(input: &[u8], open: usize) -> Self {
        Stalling {
            input: input.to_vec(),
            sent: false,
            open,
            written: Vec::new(),
            shutdowns: 0,
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.sent || buf.remaining() < this.input.len() {
            return Poll::Pending;
        }
        buf.put_slice(&this.input);
        this.sent = true;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let room = this.open.saturating_sub(this.written.len()).min(buf.len());
        if room == 0 {
            return Poll::Pending;
        }
        this.written.extend_from_slice(&buf[..room]);
        Poll::Ready(Ok(room))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().shutdowns += 1;
        Poll::Ready(Ok(()))
    }
}

/// Fails on the first event.
struct Failing;

impl ServerHandler for Failing {
    async fn on_event(
        &mut self,
        _session: &mut ServerSession,
        _event: ServerEvent<'_>,
    ) -> io::Result<()> {
        Err(io::Error::other("the application failed"))
    }
}

const GREETING: &[u8] = b"220 mx.example.net ESMTP\r\n";

async fn serve_stalling<H: ServerHandler>(
    stream: &mut Stalling,
    handler: &mut H,
) -> Result<ServeEnd, ServeError> {
    let mut session = ServerSession::new(ServerConfig::new("mx.example.net")).expect("session");
    session.greet().expect("greet");
    let options = ServeOptions::default();
    let serving = serve(stream, &mut session, handler, &options);
    // The session's timeout (five minutes) passes on the paused clock.
    tokio::time::timeout(BOUND * 100, serving)
        .await
        .expect("bounded")
}

#[tokio::test(start_paused = true)]
async fn a_421_to_a_handler_error_not_taken_is_followed_by_nothing() {
    let mut stream = Stalling::new(b"EHLO client.example\r\n", GREETING.len());
    let end = serve_stalling(&mut stream, &mut Failing).await;
    assert!(matches!(end, Err(ServeError::Io(_))), "{end:?}");
    assert_eq!(stream.written, GREETING);
    assert_eq!(stream.shutdowns, 0);
}

#[tokio::test(start_paused = true)]
async fn a_421_to_a_handler_error_that_is_taken_is_followed_by_the_shutdown() {
    let mut stream = Stalling::new(b"EHLO client.example\r\n", 4096);
    let end = serve_stalling(&mut stream, &mut Failing).await;
    assert!(matches!(end, Err(ServeError::Io(_))), "{end:?}");
    let text = String::from_utf8_lossy(&stream.written).into_owned();
    assert!(
        text.ends_with("Local error, closing connection\r\n"),
        "{text:?}"
    );
    assert_eq!(stream.shutdowns, 1);
}

#[tokio::test(start_paused = true)]
async fn replies_before_a_protocol_error_not_taken_are_followed_by_nothing() {
    let mut stream = Stalling::new(&b"FOO\r\n".repeat(12), GREETING.len());
    let end = serve_stalling(&mut stream, &mut Recorder::default()).await;
    assert!(
        matches!(end, Err(ServeError::Remote(RemoteError::TooManyErrors))),
        "{end:?}"
    );
    assert_eq!(stream.written, GREETING);
    assert_eq!(stream.shutdowns, 0);
}
