//! The byte streams the drivers run over, and the switch to TLS (after
//! STARTTLS, or before the greeting on implicit TLS).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A stream whose reads can time out: what the drivers need to apply the
/// session's per-phase timeouts.
pub trait Transport: Read + Write {
    /// Sets how long a read may block; `None` blocks without limit.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a write may block, so a peer that stops reading
    /// cannot hold the connection forever; `None` blocks without limit.
    /// The default does nothing (writes block as long as the stream lets
    /// them).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// The write timeout set now (`None`: writes block without limit).
    /// [`MaybeTls::start_tls`] bounds the handshake's writes by what is
    /// left of its timeout and then sets this one again; a transport whose
    /// writes can time out should implement it along with
    /// [`Transport::set_write_timeout`]. The default returns an
    /// [`io::ErrorKind::Unsupported`] error, and the handshake's writes
    /// then keep whatever bound the transport has.
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Makes reads and writes return [`io::ErrorKind::WouldBlock`] instead
    /// of waiting (`true`), or wait again (`false`). The client driver uses
    /// it between BDAT body pieces to take the replies to pipelined chunks
    /// that have already arrived, so they cannot fill the socket buffers
    /// while the body is written. The default returns an
    /// [`io::ErrorKind::Unsupported`] error; the driver then reads those
    /// replies only after the body, which holds for as many chunks as the
    /// socket buffers can take replies for. [`Connection`] also uses it
    /// before each message, to read what the server sent while the
    /// session was idle (a `421`, its close); without it, that is found
    /// only once the next command is sent.
    ///
    /// [`Connection`]: crate::client::Connection
    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        let _ = nonblocking;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Shuts the write side down (for TCP, sends the FIN) while reads go
    /// on. The server driver does this after its last reply, before the
    /// lingering close (see
    /// [`ServeOptions::linger_time`](crate::server::ServeOptions::linger_time)):
    /// the client learns that the end has come, and what it still sends
    /// is read and dropped so that the close does not reset the
    /// connection. The default returns an [`io::ErrorKind::Unsupported`]
    /// error; the driver then closes without lingering, as it did before.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::write_timeout(self)
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// Plaintext until STARTTLS, then TLS over the same stream. On implicit
/// TLS the drivers switch before anything is sent, so the plaintext side
/// carries only the handshake.
pub enum MaybeTls<S: Read + Write, C> {
    /// Before STARTTLS.
    Plain(S),
    /// After the handshake.
    Tls(Box<rustls::StreamOwned<C, S>>),
    /// Only while switching; never seen by callers.
    Switching,
}

impl<S: Read + Write, C> std::fmt::Debug for MaybeTls<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MaybeTls::Plain(_) => "MaybeTls::Plain",
            MaybeTls::Tls(_) => "MaybeTls::Tls",
            MaybeTls::Switching => "MaybeTls::Switching",
        })
    }
}

fn switching() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream is switching to TLS")
}

impl<S, C, D> Read for MaybeTls<S, C>
where
    S: Read + Write,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => s.read(buf),
            MaybeTls::Tls(t) => t.read(buf),
            MaybeTls::Switching => Err(switching()),
        }
    }
}

impl<S, C, D> Write for MaybeTls<S, C>
where
    S: Read + Write,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => s.write(buf),
            MaybeTls::Tls(t) => t.write(buf),
            MaybeTls::Switching => Err(switching()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.flush(),
            MaybeTls::Tls(t) => t.flush(),
            MaybeTls::Switching => Err(switching()),
        }
    }
}

impl<S, C, D> MaybeTls<S, C>
where
    S: Transport,
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    /// Sets the read timeout of the underlying stream.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.set_read_timeout(timeout),
            MaybeTls::Tls(t) => t.sock.set_read_timeout(timeout),
            MaybeTls::Switching => Err(switching()),
        }
    }

    /// Sets the write timeout of the underlying stream (see
    /// [`Transport::set_write_timeout`]).
    pub(crate) fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.set_write_timeout(timeout),
            MaybeTls::Tls(t) => t.sock.set_write_timeout(timeout),
            MaybeTls::Switching => Err(switching()),
        }
    }

    /// Sets the underlying stream non-blocking or blocking again (see
    /// [`Transport::set_nonblocking`]).
    pub(crate) fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.set_nonblocking(nonblocking),
            MaybeTls::Tls(t) => t.sock.set_nonblocking(nonblocking),
            MaybeTls::Switching => Err(switching()),
        }
    }

    /// True once the stream carries TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// Reads once, done by `deadline`: before each read of the underlying
    /// stream its read timeout is set to the time left, so over TLS the
    /// deadline bounds the whole read, however many socket reads rustls
    /// needs to complete a record (and any write rustls makes meanwhile).
    /// Fails with [`io::ErrorKind::TimedOut`] once the deadline has passed,
    /// before or during the read.
    pub(crate) fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let read = match self {
            MaybeTls::Plain(s) => Deadline {
                sock: s,
                deadline,
                bound_writes: true,
            }
            .read(buf),
            MaybeTls::Tls(t) => {
                let t = &mut **t;
                // rustls may write while it reads (what a flush left
                // unsent): those writes end by the deadline too.
                let mut sock = Deadline {
                    sock: &mut t.sock,
                    deadline,
                    bound_writes: true,
                };
                rustls::Stream::new(&mut t.conn, &mut sock).read(buf)
            }
            MaybeTls::Switching => Err(switching()),
        };
        read.map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "read timed out"),
            _ => e,
        })
    }

    /// Writes all of `bytes` and flushes them, done by `deadline`: before
    /// each write of the underlying stream its write timeout is set to the
    /// time left, so a peer that takes our bytes a few at a time cannot
    /// stretch the write past the deadline, however many socket writes it
    /// takes (over TLS, however many records rustls makes of them). Fails
    /// with [`io::ErrorKind::TimedOut`] once the deadline has passed, or
    /// with the kind of a socket write timeout (`WouldBlock` on Unix); the
    /// drivers make either a write timeout ([`on_write_timeout`]). A
    /// transport that cannot set its write timeout
    /// ([`Transport::set_write_timeout`] does nothing) is bounded only
    /// between its writes.
    pub(crate) fn write_all_by(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => {
                let mut sock = Deadline {
                    sock: s,
                    deadline,
                    bound_writes: true,
                };
                sock.write_all(bytes)?;
                sock.flush()
            }
            MaybeTls::Tls(t) => {
                let t = &mut **t;
                let mut sock = Deadline {
                    sock: &mut t.sock,
                    deadline,
                    bound_writes: true,
                };
                let mut tls = rustls::Stream::new(&mut t.conn, &mut sock);
                tls.write_all(bytes)?;
                tls.flush()
            }
            MaybeTls::Switching => Err(switching()),
        }
    }

    /// [`MaybeTls::close_notify`], with its write done by `deadline` (see
    /// [`MaybeTls::write_all_by`]). Fails when the write did (in
    /// plaintext there is nothing to write).
    pub(crate) fn close_notify_by(&mut self, deadline: Instant) -> io::Result<()> {
        if let MaybeTls::Tls(t) = self {
            let t = &mut **t;
            t.conn.send_close_notify();
            let mut sock = Deadline {
                sock: &mut t.sock,
                deadline,
                bound_writes: true,
            };
            rustls::Stream::new(&mut t.conn, &mut sock).flush()?;
        }
        Ok(())
    }

    /// Shuts the write side of the underlying stream down (see
    /// [`Transport::shutdown_write`]). Over TLS, `close_notify` goes
    /// first ([`MaybeTls::close_notify_by`]).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.shutdown_write(),
            MaybeTls::Tls(t) => t.sock.shutdown_write(),
            MaybeTls::Switching => Err(switching()),
        }
    }

    /// The lingering close, once the write side is shut down: reads and
    /// drops what the peer still sends, from the underlying stream (over
    /// TLS undecrypted: nothing read here is looked at), until the peer
    /// closes its side, a read fails, `max` bytes have been dropped or
    /// `deadline` has passed, whichever comes first. Closing a socket
    /// with bytes of the peer's still unread makes the kernel reset the
    /// connection, and a reset can make the peer lose our last reply
    /// before it reads it. Returns how many bytes were dropped.
    pub(crate) fn drain_by(&mut self, deadline: Instant, max: usize) -> usize {
        let sock: &mut S = match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(t) => &mut t.sock,
            MaybeTls::Switching => return 0,
        };
        let mut timed = Deadline {
            sock,
            deadline,
            bound_writes: false,
        };
        let mut scratch = vec![0u8; max.min(8 * 1024)];
        let mut dropped = 0usize;
        while dropped < max {
            let room = (max - dropped).min(scratch.len());
            // Each read waits at most until the deadline, and one that
            // starts after it fails at once.
            match timed.read(&mut scratch[..room]) {
                Ok(0) => break,
                Ok(n) => dropped += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset, or the deadline.
                Err(_) => break,
            }
        }
        dropped
    }

    /// Ends TLS cleanly: sends `close_notify` so the peer can tell the end
    /// of the session from a truncation. Does nothing in plaintext;
    /// write errors are ignored (the peer may already be gone).
    pub fn close_notify(&mut self) {
        if let MaybeTls::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
    }

    /// Runs the TLS handshake with `conn` over the plaintext stream, within
    /// `timeout` in all: each read of the handshake may wait only for what
    /// is left of it, so a peer that trickles its bytes cannot stretch the
    /// handshake, and so may each write when the stream tells its write
    /// timeout ([`Transport::write_timeout`]; the one it had is set again
    /// after the handshake), so a peer that does not read cannot either.
    /// Running out of time fails with
    /// [`StartTlsError::Handshake`](crate::StartTlsError::Handshake) of kind
    /// [`io::ErrorKind::TimedOut`]. `buffered` must be empty: bytes read
    /// before the handshake are plaintext injected after STARTTLS
    /// (CVE-2011-0411), and the switch is refused. For implicit TLS, call
    /// it on a new stream before anything is read or written, with
    /// `buffered` 0.
    ///
    /// A client that read more than the server's `220` to STARTTLS:
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use smtp_proto_blocking::rustls::{self, ClientConfig, ClientConnection, RootCertStore};
    /// use smtp_proto_blocking::{MaybeTls, StartTlsError};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let socket = TcpStream::connect(listener.local_addr()?)?;
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let conn = ClientConnection::new(Arc::new(config), "mx.example.com".try_into()?)?;
    /// let mut stream = MaybeTls::Plain(socket);
    /// // 30 octets were read after the `220` line, before the handshake.
    /// let refused = stream.start_tls(conn, 30, Duration::from_secs(10));
    /// assert!(matches!(refused, Err(StartTlsError::PlaintextAfterStartTls(30))));
    /// assert!(!stream.is_tls());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_tls(
        &mut self,
        mut conn: C,
        buffered: usize,
        timeout: Duration,
    ) -> Result<(), crate::StartTlsError> {
        if buffered > 0 {
            return Err(crate::StartTlsError::PlaintextAfterStartTls(buffered));
        }
        let MaybeTls::Plain(mut sock) = std::mem::replace(self, MaybeTls::Switching) else {
            return Err(crate::StartTlsError::Handshake(io::Error::other(
                "TLS already active",
            )));
        };
        // The write timeout to set again after the handshake; a stream
        // that does not tell it keeps its own.
        let write_timeout = sock.write_timeout().ok();
        let mut timed = Deadline {
            sock: &mut sock,
            deadline: instant_after(Instant::now(), timeout),
            bound_writes: write_timeout.is_some(),
        };
        let mut done = Ok(());
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut timed) {
                done = Err(e);
                break;
            }
        }
        if let Some(restore) = write_timeout {
            let restored = sock.set_write_timeout(restore);
            done = done.and(restored);
        }
        done.map_err(crate::StartTlsError::Handshake)?;
        *self = MaybeTls::Tls(Box::new(rustls::StreamOwned::new(conn, sock)));
        Ok(())
    }
}

/// A stream whose reads (and writes, with `bound_writes`) all end by one
/// instant: before each, the stream's timeout is set to the time left,
/// and one that runs out of time, or starts after the instant, fails with
/// [`io::ErrorKind::TimedOut`] (a socket read timeout is
/// [`io::ErrorKind::WouldBlock`] on Unix).
struct Deadline<'a, S> {
    sock: &'a mut S,
    deadline: Instant,
    bound_writes: bool,
}

impl<S> Deadline<'_, S> {
    /// The time left, or a [`io::ErrorKind::TimedOut`] error once none is.
    fn left(&self) -> io::Result<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(timed_out)
    }
}

/// When a wait of `wait` from `now` ends: at least a millisecond, so a
/// zero timeout still lets the driver read what has arrived, and a wait
/// too long to be an `Instant` (`Duration::MAX` for "no timeout") ends
/// in a hundred years.
pub(crate) fn instant_after(now: Instant, wait: Duration) -> Instant {
    let wait = wait.max(Duration::from_millis(1));
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
}

/// A socket timeout (`WouldBlock` or `TimedOut`) as [`timed_out`].
fn on_timeout<T>(r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        _ => e,
    })
}

impl<S: Transport> Read for Deadline<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_read_timeout(Some(left))?;
        on_timeout(self.sock.read(buf))
    }
}

impl<S: Transport> Write for Deadline<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bound_writes {
            let left = self.left()?;
            self.sock.set_write_timeout(Some(left))?;
        }
        on_timeout(self.sock.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        // A TCP stream's flush sends nothing; a buffering transport's may.
        if self.bound_writes {
            let left = self.left()?;
            self.sock.set_write_timeout(Some(left))?;
        }
        on_timeout(self.sock.flush())
    }
}

/// The payload of the error a write gives when the peer did not take all
/// of the bytes within the write's time; see [`is_write_timeout`].
#[derive(Debug)]
struct WriteTimeout(Duration);

impl std::fmt::Display for WriteTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the peer did not take our bytes within {:?}", self.0)
    }
}

impl std::error::Error for WriteTimeout {}

/// The error of a write that ran into the socket's write timeout `wait`
/// (`WouldBlock` on Unix, `TimedOut` on Windows) as a write timeout, of
/// kind [`io::ErrorKind::TimedOut`] ([`is_write_timeout`]); any other
/// error as it is.
pub(crate) fn on_write_timeout(e: io::Error, wait: Duration) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, WriteTimeout(wait))
        }
        _ => e,
    }
}

/// True for the error of a write that timed out, as [`on_write_timeout`]
/// makes it; not for a read that timed out.
pub(crate) fn is_write_timeout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteTimeout>())
}
