//! TLS configuration helpers, checked with real handshakes over loopback TCP
//! and certificates generated per test.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::rustls::{self, CertificateError, ClientConfig, ServerConfig};
use smtp_proto_tokio::tls::{self, TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound on any one handshake or exchange, so a broken test fails
/// instead of hanging. Not a performance assertion.
const BOUND: Duration = Duration::from_secs(20);

struct Pem {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as
/// PEM files into a fresh temporary directory.
fn self_signed(names: &[&str]) -> Pem {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).expect("rcgen");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, signing_key.serialize_pem()).expect("write key");
    Pem {
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

/// Serves one TLS connection: reads one line-sized chunk, answers with a
/// fixed reply, returns what it read.
async fn serve_once(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<Vec<u8>> {
    let (tcp, _) = listener.accept().await?;
    let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
    let mut buf = vec![0u8; 64];
    let n = tls.read(&mut buf).await?;
    buf.truncate(n);
    tls.write_all(b"250 over TLS\r\n").await?;
    tls.shutdown().await?;
    Ok(buf)
}

/// Connects, handshakes as `name`, sends `EHLO`, returns the server's
/// answer and the negotiated protocol version.
async fn client_once(
    port: u16,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<(Vec<u8>, Option<rustls::ProtocolVersion>)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    let version = tls.get_ref().1.protocol_version();
    tls.write_all(b"EHLO client.test\r\n").await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok((answer, version))
}

/// Runs server and client against each other on a loopback port.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> (
    io::Result<Vec<u8>>,
    io::Result<(Vec<u8>, Option<rustls::ProtocolVersion>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server_task = tokio::spawn(serve_once(listener, server));
    let client_result = tokio::time::timeout(BOUND, client_once(port, client, name))
        .await
        .expect("client bounded");
    let server_result = tokio::time::timeout(BOUND, server_task)
        .await
        .expect("server bounded")
        .expect("server task");
    (server_result, client_result)
}

/// The rustls error carried inside an I/O error from a failed handshake.
fn rustls_error(err: &io::Error) -> &rustls::Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {err:?}"))
}

#[tokio::test]
async fn handshake_with_self_signed_cert_by_dns_name() {
    let pem = self_signed(&["localhost", "127.0.0.1"]);
    let server = tls::server_config(&pem.cert, &pem.key).expect("server config");
    let client = tls::client_config_trusting(&pem.cert).expect("client config");

    let (served, answered) = handshake(server, client, "localhost").await;
    assert_eq!(served.expect("server side"), b"EHLO client.test\r\n");
    let (answer, version) = answered.expect("client side");
    assert_eq!(answer, b"250 over TLS\r\n");
    assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn handshake_with_self_signed_cert_by_ip_address() {
    let pem = self_signed(&["localhost", "127.0.0.1"]);
    let server = tls::server_config(&pem.cert, &pem.key).expect("server config");
    let client = tls::client_config_trusting(&pem.cert).expect("client config");

    let (served, answered) = handshake(server, client, "127.0.0.1").await;
    assert_eq!(served.expect("server side"), b"EHLO client.test\r\n");
    assert_eq!(answered.expect("client side").0, b"250 over TLS\r\n");
}

#[tokio::test]
async fn client_refuses_certificate_it_does_not_trust() {
    let served_pem = self_signed(&["localhost"]);
    let other_pem = self_signed(&["localhost"]);
    let server = tls::server_config(&served_pem.cert, &served_pem.key).expect("server config");
    let client = tls::client_config_trusting(&other_pem.cert).expect("client config");

    let (served, answered) = handshake(server, client, "localhost").await;
    let err = answered.expect_err("untrusted certificate must fail");
    // rcgen gives both certificates the same subject name, so the trusted
    // one is found as the would-be issuer and its signature check fails.
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(
                CertificateError::BadSignature | CertificateError::UnknownIssuer
            )
        ),
        "{err:?}"
    );
    assert!(served.is_err(), "server must not complete the handshake");
}

#[tokio::test]
async fn client_refuses_certificate_for_another_name() {
    let pem = self_signed(&["localhost"]);
    let server = tls::server_config(&pem.cert, &pem.key).expect("server config");
    let client = tls::client_config_trusting(&pem.cert).expect("client config");

    let (_, answered) = handshake(server, client, "mail.example.org").await;
    let err = answered.expect_err("wrong name must fail");
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn webpki_roots_client_refuses_self_signed_cert() {
    let pem = self_signed(&["localhost"]);
    let server = tls::server_config(&pem.cert, &pem.key).expect("server config");
    let client = tls::client_config_webpki_roots().expect("client config");

    let (_, answered) = handshake(server, client, "localhost").await;
    let err = answered.expect_err("self-signed is not under a public root");
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
}

#[test]
fn load_certs_keeps_chain_order() {
    let first = self_signed(&["first.test"]);
    let second = self_signed(&["second.test"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = dir.path().join("chain.pem");
    let mut text = std::fs::read_to_string(&first.cert).expect("read");
    // A key block between the certificates is skipped, not an error.
    text.push_str(&std::fs::read_to_string(&first.key).expect("read"));
    text.push_str(&std::fs::read_to_string(&second.cert).expect("read"));
    std::fs::write(&chain, text).expect("write");

    let certs = tls::load_certs(&chain).expect("load");
    let expect_first = tls::load_certs(&first.cert).expect("load");
    let expect_second = tls::load_certs(&second.cert).expect("load");
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0], expect_first[0]);
    assert_eq!(certs[1], expect_second[0]);
}

#[test]
fn missing_file_is_a_pem_error_naming_the_path() {
    let path = Path::new("/nonexistent/smtp-proto-tokio/cert.pem");
    match tls::load_certs(path) {
        Err(TlsError::Pem { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    match tls::load_private_key(path) {
        Err(TlsError::Pem { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_file_given_as_certificate_file_is_refused() {
    let pem = self_signed(&["localhost"]);
    assert!(matches!(
        tls::load_certs(&pem.key),
        Err(TlsError::NoCertificates { .. })
    ));
    assert!(matches!(
        tls::load_private_key(&pem.cert),
        Err(TlsError::NoPrivateKey { .. })
    ));
    assert!(matches!(
        tls::client_config_trusting(&pem.key),
        Err(TlsError::NoCertificates { .. })
    ));
}

#[test]
fn key_that_does_not_match_the_certificate_is_refused() {
    let one = self_signed(&["localhost"]);
    let other = self_signed(&["localhost"]);
    match tls::server_config(&one.cert, &other.key) {
        Err(TlsError::Rustls(_)) => {}
        other => panic!("{other:?}"),
    }
}
