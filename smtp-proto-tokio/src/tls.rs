//! TLS configuration for STARTTLS and implicit TLS, built on rustls with
//! the *ring* provider.
//!
//! The helpers here turn PEM files into ready [`ServerConfig`] and
//! [`ClientConfig`] values:
//!
//! - [`server_config`] loads a certificate chain and its private key.
//! - [`client_config_trusting`] trusts only the certificates in one PEM file,
//!   for talking to a peer with a self-signed or private-CA certificate
//!   (the interop tests do this).
//! - [`client_config_webpki_roots`] trusts the Mozilla root set shipped in
//!   the `webpki-roots` crate, for public servers.
//!
//! [`accept_starttls`] and [`connect_starttls`] upgrade a connection after
//! the STARTTLS exchange, refusing to when plaintext is already waiting in
//! the caller's read buffer (RFC 3207 §5, CVE-2011-0411). For implicit TLS
//! (RFC 8314, the submissions port 465), [`server::serve`] and
//! [`client::run`] run the handshake themselves at the start of the
//! connection, with the same acceptor or connector.
//!
//! [`server::serve`]: crate::server::serve
//! [`client::run`]: crate::client::run
//!
//! Every config is built with an explicit [`CryptoProvider`] (see
//! [`crypto_provider`]), so nothing depends on a process-wide default
//! provider having been installed.
//!
//! ```no_run
//! use smtp_proto_tokio::tls;
//!
//! # fn main() -> Result<(), tls::TlsError> {
//! let server = tls::server_config("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let acceptor = tokio_rustls::TlsAcceptor::from(server);
//! let client = tls::client_config_trusting("cert.pem".as_ref())?;
//! let connector = tokio_rustls::TlsConnector::from(client);
//! # let _ = (acceptor, connector);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds malformed PEM.
    #[error("cannot read PEM from {path}: {source}")]
    Pem {
        /// The file that was read.
        path: PathBuf,
        /// What went wrong (I/O errors are reported here too).
        #[source]
        source: pem::Error,
    },
    /// A PEM file that should hold certificates holds none.
    #[error("no CERTIFICATE block in {path}")]
    NoCertificates {
        /// The file that was read.
        path: PathBuf,
    },
    /// A PEM file that should hold a private key holds none.
    #[error("no private key (PKCS#8, PKCS#1 or SEC1) in {path}")]
    NoPrivateKey {
        /// The file that was read.
        path: PathBuf,
    },
    /// A certificate from a trust file was refused as a trust anchor.
    #[error("certificate in {path} is not usable as a trust anchor: {source}")]
    TrustAnchor {
        /// The file that was read.
        path: PathBuf,
        /// The reason rustls gave.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the configuration (for example a key that does not
    /// match the certificate, or an unsupported key type).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every config from this module uses: rustls' *ring*
/// provider with its default cipher suites and key exchange groups.
#[must_use]
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every `CERTIFICATE` block of a PEM file, in file order (leaf
/// first for a chain). Other PEM blocks in the file are skipped.
///
/// # Errors
/// [`TlsError::Pem`] when the file cannot be read or holds malformed PEM,
/// [`TlsError::NoCertificates`] when it holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
///
/// # Errors
/// [`TlsError::Pem`] when the file cannot be read or holds malformed PEM,
/// [`TlsError::NoPrivateKey`] when it holds no private key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// Builds a server config from a PEM certificate chain (leaf first) and a
/// PEM private key, with no client authentication.
///
/// # Errors
/// Any [`TlsError`] from loading the files, or [`TlsError::Rustls`] when
/// the key does not fit the certificate.
pub fn server_config(cert_chain: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_from_der(load_certs(cert_chain)?, load_private_key(key)?)
}

/// Builds a server config from an already loaded chain and key.
///
/// # Errors
/// [`TlsError::Rustls`] when the key does not fit the certificate or is of
/// an unsupported type.
pub fn server_config_from_der(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    Ok(Arc::new(config))
}

/// Builds a client config that trusts exactly the certificates in a PEM
/// file: a CA certificate, or the peer's own self-signed certificate.
///
/// The server's name is still checked against the certificate, so the
/// certificate must name the host the client connects to (for loopback
/// tests: `localhost` or the IP address `127.0.0.1`).
///
/// A self-signed certificate trusted this way must be an end-entity
/// certificate (`basicConstraints` `CA:FALSE`, or no such extension):
/// one marked as a CA, which `openssl req -x509` makes by default, is
/// refused at the handshake with rustls' `CaUsedAsEndEntity`. For
/// example:
///
/// ```text
/// openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
///     -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
///     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
///     -addext basicConstraints=critical,CA:FALSE
/// ```
///
/// # Errors
/// Any [`TlsError`] from loading the file, or [`TlsError::TrustAnchor`] when
/// a certificate cannot serve as a trust anchor.
pub fn client_config_trusting(ca_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots.add(cert).map_err(|source| TlsError::TrustAnchor {
            path: ca_file.to_owned(),
            source,
        })?;
    }
    client_config_with_roots(roots)
}

/// Builds a client config that trusts the Mozilla root certificates
/// compiled into the `webpki-roots` crate.
///
/// # Errors
/// [`TlsError::Rustls`] if the provider offers no safe protocol version,
/// which the *ring* provider always does.
pub fn client_config_webpki_roots() -> Result<Arc<ClientConfig>, TlsError> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_config_with_roots(roots)
}

/// Builds a client config that trusts the given root store.
///
/// # Errors
/// [`TlsError::Rustls`] if the provider offers no safe protocol version.
pub fn client_config_with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why a STARTTLS upgrade, or the handshake at the start of an
/// implicit-TLS connection, did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// Bytes were already buffered after the STARTTLS exchange, before the
    /// handshake: a plaintext injection (RFC 3207 §5, CVE-2011-0411). They
    /// must not be processed as if they had come over TLS; close the
    /// connection.
    #[error("{0} bytes of plaintext arrived after STARTTLS, before the TLS handshake")]
    PlaintextAfterStartTls(usize),
    /// The TLS handshake failed (including when the peer sent plaintext
    /// instead of a TLS record), or did not complete in time (the drivers'
    /// `handshake_timeout`; the error's kind is then
    /// [`io::ErrorKind::TimedOut`]).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
}

/// Server side of STARTTLS: after the `220` reply to `STARTTLS` has been
/// written and flushed, runs the TLS handshake on `stream`.
///
/// `buffered` is whatever the caller has read from `stream` but not yet
/// processed. It must be empty: a client may not send anything after
/// `STARTTLS` before the handshake, so buffered bytes are an injection
/// attempt and the upgrade is refused. Bytes that arrive on the socket
/// later are read by the handshake itself and fail it, as they are not a
/// TLS record, so nothing sent in plaintext is ever taken as protected.
///
/// # Errors
/// [`StartTlsError::PlaintextAfterStartTls`] when `buffered` is not empty
/// (no byte is read or written then), [`StartTlsError::Handshake`] when the
/// handshake fails.
///
/// ```
/// use smtp_proto_tokio::tls::{accept_starttls, server_config_from_der, StartTlsError};
/// use smtp_proto_tokio::tokio_rustls::TlsAcceptor;
/// # use smtp_proto_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let generated = rcgen::generate_simple_self_signed(vec!["mx.example.com".to_owned()])?;
/// # let cert: CertificateDer<'static> = generated.cert.der().clone();
/// # let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
/// let acceptor = TlsAcceptor::from(server_config_from_der(vec![cert], key)?);
/// let (socket, _client) = tokio::io::duplex(1024);
/// // The client pipelined a command after STARTTLS: it was read with the
/// // STARTTLS line and is still in the caller's buffer.
/// let buffered = b"MAIL FROM:<a@example.org>\r\n";
/// let refused = accept_starttls(&acceptor, socket, buffered).await;
/// assert!(matches!(refused, Err(StartTlsError::PlaintextAfterStartTls(27))));
/// # Ok(())
/// # }
/// ```
pub async fn accept_starttls<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    buffered: &[u8],
) -> Result<server::TlsStream<S>, StartTlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !buffered.is_empty() {
        tracing::warn!(
            bytes = buffered.len(),
            "client sent plaintext after STARTTLS; refusing the TLS upgrade"
        );
        return Err(StartTlsError::PlaintextAfterStartTls(buffered.len()));
    }
    acceptor
        .accept(stream)
        .await
        .map_err(StartTlsError::Handshake)
}

/// Client side of STARTTLS: after the server's `220` reply to `STARTTLS`
/// has been read, runs the TLS handshake on `stream`, checking the server's
/// certificate against `server_name`.
///
/// `buffered` is whatever the caller has read from `stream` beyond that
/// `220` reply. It must be empty: a server may send nothing between its
/// `220` and the handshake, so buffered bytes (for example a forged reply
/// meant to be read as if it came over TLS) refuse the upgrade.
///
/// # Errors
/// [`StartTlsError::PlaintextAfterStartTls`] when `buffered` is not empty,
/// [`StartTlsError::Handshake`] when the handshake or the certificate check
/// fails.
pub async fn connect_starttls<S>(
    connector: &TlsConnector,
    server_name: ServerName<'static>,
    stream: S,
    buffered: &[u8],
) -> Result<client::TlsStream<S>, StartTlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !buffered.is_empty() {
        tracing::warn!(
            bytes = buffered.len(),
            "server sent data after its STARTTLS reply; refusing the TLS upgrade"
        );
        return Err(StartTlsError::PlaintextAfterStartTls(buffered.len()));
    }
    connector
        .connect(server_name, stream)
        .await
        .map_err(StartTlsError::Handshake)
}

/// Runs a TLS handshake given at most `limit`; past it, the handshake is
/// dropped (and with it the stream it owns, which closes the connection)
/// and the error is [`StartTlsError::Handshake`] of kind
/// [`io::ErrorKind::TimedOut`].
pub(crate) async fn handshake_within<T>(
    limit: Duration,
    handshake: impl Future<Output = Result<T, StartTlsError>>,
) -> Result<T, StartTlsError> {
    match tokio::time::timeout(limit, handshake).await {
        Ok(result) => result,
        Err(_) => Err(StartTlsError::Handshake(io::ErrorKind::TimedOut.into())),
    }
}
