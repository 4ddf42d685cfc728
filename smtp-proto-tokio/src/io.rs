//! Stream plumbing shared by the server and client drivers: a stream that
//! can switch to TLS in place, and a flush that keeps reading while it
//! writes so that neither peer can block the other with a large pipelined
//! group.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream that is plaintext until STARTTLS, then TLS.
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
                Poll::Pending => {
                    if peer == PeerState::Open && inbuf.len() < cap {
                        match poll_read_some(stream, cx, inbuf, cap) {
                            Poll::Ready(Ok(0)) => peer = PeerState::Eof,
                            Poll::Ready(Ok(_)) => continue,
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => {}
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
        Pin::new(&mut *stream).poll_flush(cx)
    })
    .await;
    out.clear();
    result.map(|()| peer)
}

/// Reads once into the spare room of `inbuf` (at most `cap` bytes held).
fn poll_read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    inbuf: &mut Vec<u8>,
    cap: usize,
) -> Poll<io::Result<usize>> {
    let room = cap.saturating_sub(inbuf.len()).min(64 * 1024);
    if room == 0 {
        return Poll::Ready(Ok(0));
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
        Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// Reads at least one byte into `inbuf` (at most `cap` held); `Ok(0)` at
/// end of stream.
pub(crate) async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    inbuf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<usize> {
    poll_fn(|cx| poll_read_some(stream, cx, inbuf, cap)).await
}
