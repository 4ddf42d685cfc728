//! The `tls` module against real TLS stacks: exim (GnuTLS) as a STARTTLS
//! server, `openssl s_client -starttls smtp` (OpenSSL) as a STARTTLS client,
//! and certificates made by `openssl req` (tests/interop/peers/make-cert.sh).
//!
//! These need the peers from `tests/interop/install.sh` and root (exim), so
//! they are ignored by `cargo test --workspace`; `.ci/run` runs them right
//! after the interop suite has installed the peers:
//!
//! ```sh
//! sudo bash tests/interop/install.sh
//! cargo test -p smtp-proto-tokio --test interop_tls -- --ignored
//! ```
//!
//! The SMTP exchanges below are fixed scripts, just enough to reach the
//! STARTTLS point; they are not a session implementation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::tls;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound on each step, so a broken peer fails the test instead of
/// hanging it. Not a performance assertion.
const BOUND: Duration = Duration::from_secs(30);

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/peers")
}

/// A peer started through a script that `exec`s `timeout`: stopped with
/// SIGTERM when the test ends, which `timeout` passes on to the peer
/// (SIGKILL would kill `timeout` alone and leave the peer running).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh certificate from make-cert.sh, in a directory exim can read.
fn openssl_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert_dir = dir.join("cert");
    let status = Command::new("bash")
        .arg(peers_dir().join("make-cert.sh"))
        .arg(&cert_dir)
        .stdout(Stdio::null())
        .status()
        .expect("run make-cert.sh");
    assert!(status.success(), "make-cert.sh failed");
    (cert_dir.join("cert.pem"), cert_dir.join("key.pem"))
}

/// A work directory whose parents the exim user can traverse.
fn world_traversable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("smtp-proto-tokio-interop")
        .tempdir_in("/tmp")
        .expect("tempdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    dir
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe port")
        .port()
}

async fn connect_with_retries(port: u16) -> TcpStream {
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// The most lines one reply may have in these scripts.
const MAX_REPLY_LINES: usize = 100;

/// The most octets one reply line may have (RFC 5321 §4.5.3.1.5: 512).
const MAX_LINE_LEN: usize = 512;

/// Reads one SMTP reply (through its final `NNN ` line); returns its lines.
/// The whole reply must arrive within `BOUND`, in at most
/// `MAX_REPLY_LINES` lines of at most `MAX_LINE_LEN` octets each.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Vec<String> {
    tokio::time::timeout(BOUND, async {
        let mut lines = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = String::new();
            // One octet over the limit is enough to tell a line too long.
            let n = (&mut *reader)
                .take(MAX_LINE_LEN as u64 + 1)
                .read_line(&mut line)
                .await
                .expect("read");
            assert!(n > 0, "peer closed; reply so far: {lines:?}");
            assert!(
                n <= MAX_LINE_LEN && line.ends_with('\n'),
                "reply line over {MAX_LINE_LEN} octets: {line:?}"
            );
            let done = line.as_bytes().get(3) == Some(&b' ') || line.trim_end().len() == 3;
            lines.push(line.trim_end().to_owned());
            if done {
                return lines;
            }
        }
        panic!("reply longer than {MAX_REPLY_LINES} lines: {lines:?}");
    })
    .await
    .expect("bounded reply")
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, line: &str) {
    writer.write_all(line.as_bytes()).await.expect("write");
    writer.flush().await.expect("flush");
}

#[tokio::test]
#[ignore = "needs tests/interop/install.sh peers and root"]
async fn our_client_config_completes_starttls_with_exim() {
    let work = world_traversable_tempdir();
    let (cert, key) = openssl_cert(work.path());
    let port = free_port();
    let _exim = Peer(
        Command::new("bash")
            .arg(peers_dir().join("start-exim-server.sh"))
            .arg(port.to_string())
            .arg(work.path().join("exim"))
            .arg(&cert)
            .arg(&key)
            .arg("alice")
            .arg("s3cret")
            .env("EXIM_SECONDS", "60")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start exim"),
    );

    let mut plain = BufReader::new(connect_with_retries(port).await);
    assert!(read_reply(&mut plain).await[0].starts_with("220 "));
    send(plain.get_mut(), "EHLO client.test\r\n").await;
    let ehlo = read_reply(&mut plain).await;
    assert!(ehlo.iter().any(|l| l == "250-STARTTLS"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    send(plain.get_mut(), "STARTTLS\r\n").await;
    assert!(read_reply(&mut plain).await[0].starts_with("220 "));

    let pending = plain.buffer().to_vec();
    let connector = TlsConnector::from(tls::client_config_trusting(&cert).expect("trust"));
    let name = ServerName::try_from("localhost").expect("name");
    let stream = tokio::time::timeout(
        BOUND,
        tls::connect_starttls(&connector, name, plain.into_inner(), &pending),
    )
    .await
    .expect("bounded")
    .expect("STARTTLS with exim");

    let mut secure = BufReader::new(stream);
    send(secure.get_mut(), "EHLO client.test\r\n").await;
    let ehlo = read_reply(&mut secure).await;
    // exim offers AUTH only over TLS: proof the session is now protected.
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    send(secure.get_mut(), "QUIT\r\n").await;
    assert!(read_reply(&mut secure).await[0].starts_with("221 "));
}

#[tokio::test]
#[ignore = "needs openssl and tests/interop/peers/make-cert.sh"]
async fn openssl_client_completes_starttls_with_our_server_config() {
    let work = world_traversable_tempdir();
    let (cert, key) = openssl_cert(work.path());
    let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key).expect("server config"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();

    // s_client speaks EHLO/STARTTLS itself, verifies our certificate, then
    // sends what it reads on stdin over TLS.
    let mut child = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-quiet",
            "-verify_return_error",
        ])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(&cert)
        .args(["-verify_hostname", "localhost", "-name", "client.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");

    let (tcp, _) = tokio::time::timeout(BOUND, listener.accept())
        .await
        .expect("bounded accept")
        .expect("accept");
    let mut plain = BufReader::new(tcp);
    send(plain.get_mut(), "220 test.server ESMTP\r\n").await;
    let mut line = String::new();
    tokio::time::timeout(BOUND, plain.read_line(&mut line))
        .await
        .expect("bounded")
        .expect("read EHLO");
    assert!(line.starts_with("EHLO "), "{line:?}");
    send(plain.get_mut(), "250-test.server\r\n250 STARTTLS\r\n").await;
    line.clear();
    tokio::time::timeout(BOUND, plain.read_line(&mut line))
        .await
        .expect("bounded")
        .expect("read STARTTLS");
    assert_eq!(line, "STARTTLS\r\n");
    send(plain.get_mut(), "220 2.0.0 Ready to start TLS\r\n").await;

    let pending = plain.buffer().to_vec();
    let stream = tokio::time::timeout(
        BOUND,
        tls::accept_starttls(&acceptor, plain.into_inner(), &pending),
    )
    .await
    .expect("bounded")
    .expect("handshake with openssl");

    // A line typed into s_client arrives over TLS (s_client sends LF).
    stdin
        .write_all(b"EHLO over.tls\n")
        .await
        .expect("write stdin");
    stdin.flush().await.expect("flush");
    let mut secure = BufReader::new(stream);
    line.clear();
    tokio::time::timeout(BOUND, secure.read_line(&mut line))
        .await
        .expect("bounded")
        .expect("read over TLS");
    assert_eq!(line.trim_end(), "EHLO over.tls");
    drop(stdin);
}
