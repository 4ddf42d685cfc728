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
//! use std::time::Duration;
//!
//! use smtp_proto_tokio::proxy::read_proxy_header;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
//! let (mut socket, peer) = listener.accept().await?;
//! let header = read_proxy_header(&mut socket, Duration::from_secs(10)).await?;
//! let client = header.client_address(peer);
//! println!("connection from {client}");
//! // ... then serve(socket, ...) as usual.
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub use smtp_proto::proxy::ProxyReadError;
use smtp_proto::proxy::{decode_with, Decoded, ProxyConfig, ProxyHeader};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads one PROXY header from the start of `stream` within `timeout`, with
/// the default [`ProxyConfig`]. See [`read_proxy_header_with`].
pub async fn read_proxy_header<S>(
    stream: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader<'static>, ProxyReadError>
where
    S: AsyncRead + Unpin,
{
    read_proxy_header_with(stream, timeout, &ProxyConfig::default()).await
}

/// Reads one PROXY header from the start of `stream`, which must not have
/// been read from yet, within `timeout` in all.
///
/// Never reads past the header; on success the stream's next octet is the
/// client's first. Memory is bounded by the header limits (107 octets for
/// v1, `config.max_v2_len` for v2). On an error the connection should be
/// closed without a greeting.
///
/// ```
/// use std::time::Duration;
/// use smtp_proto_tokio::proxy::{read_proxy_header_with, ProxyReadError};
/// use smtp_proto_tokio::smtp_proto::proxy::{ProxyConfig, ProxyError};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProxyConfig::default();
/// let (mut balancer, mut socket) = tokio::io::duplex(1024);
/// // The header and the client's first command arrive together.
/// balancer.write_all(b"PROXY TCP6 2001:db8::7 2001:db8::1 56324 25\r\nEHLO x\r\n").await?;
/// let header = read_proxy_header_with(&mut socket, Duration::from_secs(5), &config).await?;
/// assert_eq!(header.source().unwrap().to_string(), "[2001:db8::7]:56324");
/// // Nothing past the header was read: the command is still in the stream.
/// let mut first = [0; 8];
/// socket.read_exact(&mut first).await?;
/// assert_eq!(&first, b"EHLO x\r\n");
///
/// // A client that connects directly, without the header.
/// let (mut direct, mut socket) = tokio::io::duplex(1024);
/// direct.write_all(b"EHLO x\r\n").await?;
/// let err = read_proxy_header_with(&mut socket, Duration::from_secs(5), &config).await;
/// assert!(matches!(err, Err(ProxyReadError::Invalid(ProxyError::NotProxy))));
/// # Ok(())
/// # }
/// ```
pub async fn read_proxy_header_with<S>(
    stream: &mut S,
    timeout: Duration,
    config: &ProxyConfig,
) -> Result<ProxyHeader<'static>, ProxyReadError>
where
    S: AsyncRead + Unpin,
{
    tokio::time::timeout(timeout, read_header(stream, config))
        .await
        .map_err(|_| ProxyReadError::TimedOut)?
}

async fn read_header<S>(
    stream: &mut S,
    config: &ProxyConfig,
) -> Result<ProxyHeader<'static>, ProxyReadError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let want = match decode_with(&buf, config)? {
            Decoded::Complete { header, .. } => return Ok(header.into_owned()),
            Decoded::Incomplete { needed } => needed.get(),
        };
        let filled = buf.len();
        buf.resize(filled + want, 0);
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(ProxyReadError::Io)?;
        if n == 0 {
            return Err(ProxyReadError::Closed);
        }
        buf.truncate(filled + n);
    }
}
