//! Stream plumbing shared by the server and client drivers: a stream that
//! can switch to TLS in place, and a flush that keeps reading while it
//! writes so that neither peer can block the other with a large pipelined
//! group.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A stream that is plaintext until STARTTLS, then TLS (or TLS from the
/// start, with implicit TLS).
#[derive(Debug)]
pub enum MaybeTls<S, T> {
    /// Before STARTTLS.
    Plain(S),
    /// After a successful handshake.
    Tls(Box<T>),
    /// Only while the handshake runs; never observed by callers.
    Upgrading,
}

impl<S, T> MaybeTls<S, T> {
    /// True once the stream carries TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }
}

fn upgrading() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream is being upgraded to TLS",
    )
}

impl<S, T> AsyncRead for MaybeTls<S, T>
where
    S: AsyncRead + Unpin,
    T: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl<S, T> AsyncWrite for MaybeTls<S, T>
where
    S: AsyncWrite + Unpin,
    T: AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

/// What [`flush_reading`] saw of the peer while it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    Open,
    /// The peer closed its side (end of stream).
    Eof,
}

/// Writes all of `out` and flushes it. While the peer does not take our
/// bytes, reads what it sends into `inbuf` (up to `cap` bytes held), so a
/// peer that pipelines more than the socket buffers hold while we answer
/// cannot deadlock the two sides.
pub(crate) async fn flush_reading<S>(
    stream: &mut S,
    out: &mut Vec<u8>,
    inbuf: &mut Vec<u8>,
    cap: usize,
    mut peer: PeerState,
) -> io::Result<PeerState>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut written = 0;
    let result = poll_fn(|cx| {
        while written < out.len() {
            match Pin::new(&mut *stream).poll_write(cx, &out[written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => match read_while_blocked(stream, cx, inbuf, cap, &mut peer) {
                    Ok(true) => continue,
                    Ok(false) => return Poll::Pending,
                    Err(e) => return Poll::Ready(Err(e)),
                },
            }
        }
        // The flush may wait too: a TLS stream takes the bytes into its
        // own buffer (so `poll_write` succeeds) and only sends them from
        // `poll_flush`. Keep reading here as well.
        loop {
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Pending => match read_while_blocked(stream, cx, inbuf, cap, &mut peer) {
                    Ok(true) => continue,
                    Ok(false) => return Poll::Pending,
                    Err(e) => return Poll::Ready(Err(e)),
                },
                other => return other,
            }
        }
    })
    .await;
    out.clear();
    result.map(|()| peer)
}

/// While a write or flush of [`flush_reading`] waits, reads what the peer
/// sends into `inbuf` (up to `cap` bytes held). `Ok(true)`: bytes came, so
/// try the write or flush again; `Ok(false)`: nothing to do but wait (no
/// bytes yet, the peer has closed, or no room). A close seen here sets
/// `peer` to [`PeerState::Eof`].
fn read_while_blocked<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    inbuf: &mut Vec<u8>,
    cap: usize,
    peer: &mut PeerState,
) -> io::Result<bool> {
    if *peer != PeerState::Open {
        return Ok(false);
    }
    match poll_read_some(stream, cx, inbuf, cap) {
        Poll::Ready(Ok(Filled::Bytes(_))) => Ok(true),
        Poll::Ready(Ok(Filled::Eof)) => {
            *peer = PeerState::Eof;
            Ok(false)
        }
        // No room: the peer's next bytes wait in the socket until the
        // session has taken some.
        Poll::Ready(Ok(Filled::Full)) | Poll::Pending => Ok(false),
        Poll::Ready(Err(e)) => Err(e),
    }
}

/// The payload of the error [`flush_within`] and [`write_within`] return
/// when the peer took too long to take our bytes; see
/// [`is_write_timeout`].
#[derive(Debug)]
struct WriteTimeout(std::time::Duration);

impl std::fmt::Display for WriteTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the peer did not take our bytes within {:?}", self.0)
    }
}

impl std::error::Error for WriteTimeout {}

fn write_timeout(wait: std::time::Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, WriteTimeout(wait))
}

/// True for the error of a write that timed out (not for a read that
/// timed out, nor for an operating system's time-out).
pub(crate) fn is_write_timeout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteTimeout>())
}

/// [`flush_reading`], given at most `wait`; after that, `out` is dropped
/// and the error is a write timeout ([`is_write_timeout`]).
pub(crate) async fn flush_within<S>(
    stream: &mut S,
    out: &mut Vec<u8>,
    inbuf: &mut Vec<u8>,
    cap: usize,
    peer: PeerState,
    wait: std::time::Duration,
) -> io::Result<PeerState>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(wait, flush_reading(stream, out, inbuf, cap, peer)).await {
        Ok(r) => r,
        Err(_) => {
            out.clear();
            Err(write_timeout(wait))
        }
    }
}

/// Writes all of `out` and flushes it without reading, given at most
/// `wait` (then the error is a write timeout); `out` is cleared.
pub(crate) async fn write_within<S>(
    stream: &mut S,
    out: &mut Vec<u8>,
    wait: std::time::Duration,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let result = tokio::time::timeout(wait, async {
        stream.write_all(out).await?;
        stream.flush().await
    })
    .await;
    out.clear();
    result.unwrap_or_else(|_| Err(write_timeout(wait)))
}

/// Shuts the write side down (a TLS close_notify, then the FIN), given at
/// most `wait`. `true` when the shutdown completed; an error or a time-out
/// is otherwise of no use at the end of a connection.
pub(crate) async fn shutdown_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    wait: std::time::Duration,
) -> bool {
    matches!(
        tokio::time::timeout(wait, stream.shutdown()).await,
        Ok(Ok(()))
    )
}

/// The lingering close: once the write side is shut down, reads and
/// drops what the peer still sends, until it closes its side, a read
/// fails, `max` bytes have been dropped or `wait` has passed, whichever
/// comes first. Closing a socket with bytes of the peer's still unread
/// makes the kernel reset the connection, and a reset can make the peer
/// lose our last reply before it reads it; reading those bytes first
/// lets the close be a clean end of stream. Returns how many bytes were
/// dropped. Nothing read here is looked at.
pub(crate) async fn drain_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: std::time::Duration,
    max: usize,
) -> usize {
    if wait.is_zero() || max == 0 {
        return 0;
    }
    let until = wait_until(tokio::time::Instant::now(), wait);
    let mut scratch = vec![0u8; max.min(8 * 1024)];
    let mut dropped = 0usize;
    while dropped < max {
        // Checked before each read too: a peer that always has more ready
        // still sees the time run out.
        if tokio::time::Instant::now() >= until {
            break;
        }
        let room = (max - dropped).min(scratch.len());
        match tokio::time::timeout_at(until, stream.read(&mut scratch[..room])).await {
            Ok(Ok(n)) if n > 0 => dropped += n,
            // The end of the stream, an error (a reset, or over TLS the
            // end without close_notify) or the time-out.
            _ => break,
        }
    }
    dropped
}

/// When a wait of `wait` from `now` ends: at least a millisecond, so a
/// zero timeout still lets the driver read what has arrived, and a wait
/// too long to be an `Instant` (`Duration::MAX` for "no timeout") ends
/// in a hundred years.
pub(crate) fn wait_until(
    now: tokio::time::Instant,
    wait: std::time::Duration,
) -> tokio::time::Instant {
    let wait = wait.max(std::time::Duration::from_millis(1));
    now.checked_add(wait)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// What one read into the connection's buffer gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filled {
    /// This many bytes (at least one) were added.
    Bytes(usize),
    /// The peer closed its side (end of stream).
    Eof,
    /// The buffer already holds `cap` bytes, so nothing was read. This is
    /// not the end of the stream: the peer may well have more to send.
    Full,
}

/// Reads once into the spare room of `inbuf` (at most `cap` bytes held).
fn poll_read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    inbuf: &mut Vec<u8>,
    cap: usize,
) -> Poll<io::Result<Filled>> {
    let room = cap.saturating_sub(inbuf.len()).min(64 * 1024);
    if room == 0 {
        return Poll::Ready(Ok(Filled::Full));
    }
    let start = inbuf.len();
    inbuf.resize(start + room, 0);
    let mut rb = ReadBuf::new(&mut inbuf[start..]);
    let res = Pin::new(stream).poll_read(cx, &mut rb);
    let n = match &res {
        Poll::Ready(Ok(())) => rb.filled().len(),
        _ => 0,
    };
    inbuf.truncate(start + n);
    match res {
        Poll::Ready(Ok(())) if n == 0 => Poll::Ready(Ok(Filled::Eof)),
        Poll::Ready(Ok(())) => Poll::Ready(Ok(Filled::Bytes(n))),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// Reads at least one byte into `inbuf` (at most `cap` held), or reports
/// the end of the stream, or that the buffer is already full.
pub(crate) async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    inbuf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Filled> {
    poll_fn(|cx| poll_read_some(stream, cx, inbuf, cap)).await
}

/// [`read_some`] before `until`: `None` when it passes first. It is also
/// checked before the read, so a peer that always has another byte ready
/// still sees it pass.
pub(crate) async fn read_some_by<S: AsyncRead + Unpin>(
    stream: &mut S,
    inbuf: &mut Vec<u8>,
    cap: usize,
    until: tokio::time::Instant,
) -> Option<io::Result<Filled>> {
    if tokio::time::Instant::now() >= until {
        return None;
    }
    tokio::time::timeout_at(until, read_some(stream, inbuf, cap))
        .await
        .ok()
}

/// Reads what the peer has already sent, without waiting for more: at
/// most `rounds` reads, stopping at the first that would wait, at the end
/// of the stream, at a full buffer or at an error (which is dropped: this
/// gathers what is left after the connection failed). Returns `true`
/// when it saw the end of the stream (over TLS also without
/// close_notify).
pub(crate) async fn read_ready<S: AsyncRead + Unpin>(
    stream: &mut S,
    inbuf: &mut Vec<u8>,
    cap: usize,
    rounds: usize,
) -> bool {
    for _ in 0..rounds {
        let r = poll_fn(|cx| Poll::Ready(poll_read_some(stream, cx, inbuf, cap))).await;
        match r {
            Poll::Ready(Ok(Filled::Bytes(_))) => {}
            Poll::Ready(Ok(Filled::Eof)) => return true,
            Poll::Ready(Err(e)) => return e.kind() == io::ErrorKind::UnexpectedEof,
            _ => return false,
        }
    }
    false
}

/// Drops the bytes before `*start` from `buf` (those the machine has
/// consumed) and resets `start`. The drivers advance `start` past each
/// step's consumed bytes and compact only before they read or write, so
/// the rest of the buffer moves once per read, not once per event.
pub(crate) fn compact(buf: &mut Vec<u8>, start: &mut usize) {
    buf.drain(..(*start).min(buf.len()));
    *start = 0;
}

/// The error for a session that waits for more input while the read
/// buffer is full. The drivers size the buffer so that the longest line
/// or reply their session accepts fits, so this means a session and a
/// buffer size that do not match; it is never reported as the peer's
/// close.
pub(crate) fn buffer_full(cap: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("read buffer full ({cap} bytes) while the session still waits for more input"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// Bounds each read, so a broken helper fails instead of hanging.
    const BOUND: Duration = Duration::from_secs(10);

    async fn read(stream: &mut tokio::io::DuplexStream, buf: &mut Vec<u8>, cap: usize) -> Filled {
        tokio::time::timeout(BOUND, read_some(stream, buf, cap))
            .await
            .expect("bounded")
            .expect("read")
    }

    #[tokio::test]
    async fn a_full_buffer_is_reported_apart_from_the_end_of_the_stream() {
        let (mut peer, mut ours) = tokio::io::duplex(64);
        peer.write_all(b"0123456789").await.expect("write");
        let mut buf = Vec::new();
        assert_eq!(read(&mut ours, &mut buf, 4).await, Filled::Bytes(4));
        // The peer is still open and has more to send: full, not closed.
        assert_eq!(read(&mut ours, &mut buf, 4).await, Filled::Full);
        assert_eq!(buf, b"0123");
        buf.clear();
        assert_eq!(read(&mut ours, &mut buf, 64).await, Filled::Bytes(6));
        drop(peer);
        assert_eq!(read(&mut ours, &mut buf, 64).await, Filled::Eof);
        assert_eq!(buf, b"456789");
    }

    /// A stream that takes every write into its own buffer (as a TLS
    /// stream does) and only completes a flush once everything its peer
    /// sent has been read: the peer reads nothing until its own write is
    /// through.
    struct BufferingStream {
        incoming: Vec<u8>,
        read_pos: usize,
        written: Vec<u8>,
        flush_waker: Option<std::task::Waker>,
    }

    impl AsyncRead for BufferingStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let rest = &this.incoming[this.read_pos..];
            if rest.is_empty() {
                // Open, with nothing more to send until it is answered.
                return Poll::Pending;
            }
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read_pos += n;
            if this.read_pos == this.incoming.len() {
                if let Some(w) = this.flush_waker.take() {
                    w.wake();
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for BufferingStream {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.read_pos == this.incoming.len() {
                Poll::Ready(Ok(()))
            } else {
                this.flush_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_flush_keeps_reading_while_the_stream_holds_our_bytes() {
        let incoming = b"NOOP\r\n".repeat(100);
        let mut stream = BufferingStream {
            incoming: incoming.clone(),
            read_pos: 0,
            written: Vec::new(),
            flush_waker: None,
        };
        let mut out = b"250 2.0.0 Ok\r\n".to_vec();
        let mut inbuf = Vec::new();
        let peer = tokio::time::timeout(
            BOUND,
            flush_reading(&mut stream, &mut out, &mut inbuf, 4096, PeerState::Open),
        )
        .await
        .expect("the flush completes once the peer's bytes are read")
        .expect("flush");
        assert_eq!(peer, PeerState::Open);
        assert_eq!(inbuf, incoming);
        assert_eq!(stream.written, b"250 2.0.0 Ok\r\n");
        assert!(out.is_empty());
    }

    #[test]
    fn the_full_buffer_error_is_invalid_data_naming_the_size() {
        let e = buffer_full(2048);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("2048 bytes"), "{e}");
    }
}
