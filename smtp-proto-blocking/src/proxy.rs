//! Reads the PROXY protocol header (v1 or v2) that a TCP load balancer
//! (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, ...) sends at the start
//! of each connection, before the client's own bytes.
//!
//! [`read_proxy_header`] reads exactly the header and nothing after it: it
//! asks the core ([`smtp_proto::proxy::decode_with`]) how many octets are
//! certainly still part of the header and reads only those, so the
//! client's first SMTP (or TLS) bytes, even when they arrived in the same
//! TCP segment, stay in the socket for [`serve`](crate::server::serve).
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! use smtp_proto_blocking::proxy::read_proxy_header;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:2525")?;
//! let (mut socket, peer) = listener.accept()?;
//! let header = read_proxy_header(&mut socket, Duration::from_secs(10))?;
//! let client = header.client_address(peer);
//! println!("connection from {client}");
//! // ... then serve(socket, ...) as usual.
//! # Ok(())
//! # }
//! ```

use std::io;
use std::time::{Duration, Instant};

pub use smtp_proto::proxy::ProxyReadError;
use smtp_proto::proxy::{decode_with, Decoded, ProxyConfig, ProxyHeader};

use crate::client::is_timeout;
use crate::transport::Transport;

/// Reads one PROXY header from the start of `stream` within `timeout`, with
/// the default [`ProxyConfig`]. See [`read_proxy_header_with`].
pub fn read_proxy_header<S: Transport>(
    stream: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader<'static>, ProxyReadError> {
    read_proxy_header_with(stream, timeout, &ProxyConfig::default())
}

/// Reads one PROXY header from the start of `stream`, which must not have
/// been read from yet, within `timeout` in all (before each read, the
/// stream's read timeout is set to the time left; it is left at its last
/// value, and [`serve`](crate::server::serve) sets its own).
///
/// Never reads past the header; on success the stream's next octet is the
/// client's first. Memory is bounded by the header limits (107 octets for
/// v1, `config.max_v2_len` for v2). On an error the connection should be
/// closed without a greeting.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
///
/// use smtp_proto_blocking::proxy::{read_proxy_header_with, ProxyReadError};
/// use smtp_proto_blocking::smtp_proto::proxy::ProxyConfig;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut balancer = TcpStream::connect(listener.local_addr()?)?;
/// let (mut socket, peer) = listener.accept()?;
/// // The header and the client's first command arrive together.
/// balancer.write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n")?;
///
/// let config = ProxyConfig::default();
/// let header = read_proxy_header_with(&mut socket, Duration::from_secs(5), &config)?;
/// assert_eq!(header.client_address(peer).to_string(), "192.0.2.7:56324");
/// // Nothing past the header was read: the command is still in the socket.
/// let mut first = [0; 8];
/// socket.read_exact(&mut first)?;
/// assert_eq!(&first, b"EHLO x\r\n");
///
/// // The balancer goes away in the middle of a header.
/// let mut balancer = TcpStream::connect(listener.local_addr()?)?;
/// let (mut socket, _) = listener.accept()?;
/// balancer.write_all(b"PROXY TCP4 192.0.2.7")?;
/// drop(balancer);
/// let cut = read_proxy_header_with(&mut socket, Duration::from_secs(5), &config);
/// assert!(matches!(cut, Err(ProxyReadError::Closed)));
/// # Ok(())
/// # }
/// ```
pub fn read_proxy_header_with<S: Transport>(
    stream: &mut S,
    timeout: Duration,
    config: &ProxyConfig,
) -> Result<ProxyHeader<'static>, ProxyReadError> {
    let deadline = crate::transport::instant_after(Instant::now(), timeout);
    let mut buf = Vec::new();
    loop {
        let want = match decode_with(&buf, config)? {
            Decoded::Complete { header, .. } => return Ok(header.into_owned()),
            Decoded::Incomplete { needed } => needed.get(),
        };
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ProxyReadError::TimedOut)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(ProxyReadError::Io)?;
        let filled = buf.len();
        buf.resize(filled + want, 0);
        let n = match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ProxyReadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) if is_timeout(&e) => return Err(ProxyReadError::TimedOut),
            Err(e) => return Err(ProxyReadError::Io(e)),
        };
        buf.truncate(filled + n);
    }
}
