//! STARTTLS upgrades over loopback TCP: the clean case, plaintext
//! injected before the handshake on either side (CVE-2011-0411), and the
//! server driver around the upgrade (what its handler hears, a client that
//! goes away over TLS).

mod support;

use support::{
    client_config, join, pair, read_until, spawn_starttls_server, tls_configs as configs,
    OneMessage,
};

use std::time::Duration;

use smtp_proto_tokio::client::{self, RunOptions};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::server::ServeEnd;
use smtp_proto_tokio::smtp_proto::client::{Client, TlsPolicy};
use smtp_proto_tokio::tls::{self, StartTlsError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound on each step, so a broken test fails instead of hanging.
/// Not a performance assertion.
const BOUND: Duration = Duration::from_secs(20);

/// Reads until `buf` holds at least `want` bytes (bounded).
async fn read_at_least(stream: &mut TcpStream, buf: &mut Vec<u8>, want: usize) {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 512];
        while buf.len() < want {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "peer closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("bounded read");
}

/// Splits off the first CRLF-terminated line; returns (line, rest).
fn first_line(buf: &[u8]) -> (&[u8], &[u8]) {
    let end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a complete line")
        + 2;
    buf.split_at(end)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

#[tokio::test]
async fn clean_upgrade_then_talk_over_tls() {
    let (server_cfg, client_cfg) = configs();
    let (mut client, mut server) = pair().await;

    let server_side = tokio::spawn(async move {
        let mut buf = Vec::new();
        read_at_least(&mut server, &mut buf, b"STARTTLS\r\n".len()).await;
        let (line, rest) = first_line(&buf);
        assert_eq!(line, b"STARTTLS\r\n");
        let rest = rest.to_vec();
        server.write_all(b"220 2.0.0 Ready\r\n").await.expect("220");
        let acceptor = TlsAcceptor::from(server_cfg);
        let mut tls = tls::accept_starttls(&acceptor, server, &rest)
            .await
            .expect("upgrade");
        let mut ehlo = [0u8; 17];
        tls.read_exact(&mut ehlo).await.expect("read over TLS");
        tls.write_all(b"250 tls ok\r\n").await.expect("write");
        tls.shutdown().await.expect("shutdown");
        ehlo
    });

    client.write_all(b"STARTTLS\r\n").await.expect("write");
    let mut buf = Vec::new();
    read_at_least(&mut client, &mut buf, b"220 2.0.0 Ready\r\n".len()).await;
    let (line, rest) = first_line(&buf);
    assert_eq!(line, b"220 2.0.0 Ready\r\n");
    let connector = TlsConnector::from(client_cfg);
    let mut tls = tokio::time::timeout(
        BOUND,
        tls::connect_starttls(&connector, localhost(), client, rest),
    )
    .await
    .expect("bounded")
    .expect("upgrade");
    tls.write_all(b"EHLO again.test\r\n").await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(BOUND, tls.read_to_end(&mut reply))
        .await
        .expect("bounded")
        .expect("read");
    assert_eq!(reply, b"250 tls ok\r\n");
    let ehlo = tokio::time::timeout(BOUND, server_side)
        .await
        .expect("bounded")
        .expect("server");
    assert_eq!(&ehlo, b"EHLO again.test\r\n");
}

#[tokio::test]
async fn server_refuses_commands_pipelined_after_starttls() {
    let (server_cfg, _) = configs();
    let (mut client, mut server) = pair().await;
    let injected: &[u8] = b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n";
    client.write_all(injected).await.expect("write");

    let mut buf = Vec::new();
    read_at_least(&mut server, &mut buf, injected.len()).await;
    let (line, rest) = first_line(&buf);
    assert_eq!(line, b"STARTTLS\r\n");
    let acceptor = TlsAcceptor::from(server_cfg);
    match tls::accept_starttls(&acceptor, server, rest).await {
        Err(StartTlsError::PlaintextAfterStartTls(n)) => {
            assert_eq!(n, b"MAIL FROM:<evil@attacker.test>\r\n".len());
        }
        other => panic!("expected refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn client_refuses_reply_injected_after_220() {
    let (_, client_cfg) = configs();
    let (mut client, mut server) = pair().await;
    let injected: &[u8] = b"220 Ready\r\n250-forged.test\r\n250 AUTH PLAIN\r\n";
    server.write_all(injected).await.expect("write");

    let mut buf = Vec::new();
    read_at_least(&mut client, &mut buf, injected.len()).await;
    let (line, rest) = first_line(&buf);
    assert_eq!(line, b"220 Ready\r\n");
    let connector = TlsConnector::from(client_cfg);
    match tls::connect_starttls(&connector, localhost(), client, rest).await {
        Err(StartTlsError::PlaintextAfterStartTls(n)) => {
            assert_eq!(n, b"250-forged.test\r\n250 AUTH PLAIN\r\n".len());
        }
        other => panic!("expected refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn plaintext_arriving_during_the_handshake_fails_it() {
    let (server_cfg, _) = configs();
    let (mut client, mut server) = pair().await;

    client.write_all(b"STARTTLS\r\n").await.expect("write");
    let mut buf = Vec::new();
    read_at_least(&mut server, &mut buf, b"STARTTLS\r\n".len()).await;
    assert_eq!(buf, b"STARTTLS\r\n");
    server.write_all(b"220 Ready\r\n").await.expect("220");

    // The client answers the 220 with plaintext instead of a ClientHello.
    let client_side = tokio::spawn(async move {
        let mut buf = Vec::new();
        read_at_least(&mut client, &mut buf, b"220 Ready\r\n".len()).await;
        client
            .write_all(b"MAIL FROM:<evil@attacker.test>\r\n")
            .await
            .expect("write");
        // Stay connected until the server gives up.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(BOUND, client.read_to_end(&mut rest)).await;
    });

    let acceptor = TlsAcceptor::from(server_cfg);
    let result = tokio::time::timeout(BOUND, tls::accept_starttls(&acceptor, server, &[]))
        .await
        .expect("bounded");
    assert!(
        matches!(result, Err(StartTlsError::Handshake(_))),
        "plaintext must not pass as TLS: {:?}",
        result.map(|_| ())
    );
    tokio::time::timeout(BOUND, client_side)
        .await
        .expect("bounded")
        .expect("client");
}

/// The handler hears of STARTTLS once the handshake is through, before
/// the next command (the EHLO over TLS), with the session on TLS: the
/// point where it must forget what it learned in plaintext (RFC 3207
/// §4.2).
#[tokio::test]
async fn the_handler_sees_starttls_once_tls_is_up() {
    let (server_tls, client_tls) = configs();
    let (c, s) = pair().await;
    let server = spawn_starttls_server(s, server_tls);
    let mut app = OneMessage::new(
        "a@example.com",
        ["b@example.org".to_owned()],
        b"Subject: tls\r\n\r\nhi\r\n",
    );
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let mut options = RunOptions::default();
    options.tls = Some((TlsConnector::from(client_tls), localhost()));
    tokio::time::timeout(BOUND, client::run(c, &mut client, &mut app, &options))
        .await
        .expect("bounded")
        .expect("client run");
    let (end, rec) = join(server).await;

    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(app.delivered, Some(true));
    let events: Vec<(&str, bool)> = rec.events.iter().map(|(e, t)| (e.as_str(), *t)).collect();
    assert_eq!(
        events[..4],
        [
            ("Hello", false),
            ("StartTls", true),
            ("Hello", true),
            ("Mail", true)
        ],
        "{events:?}"
    );
    assert_eq!(events.iter().filter(|(e, _)| *e == "StartTls").count(), 1);
}

/// Reads over TLS until `text` holds `needle` (bounded).
async fn read_tls_until<S: AsyncRead + Unpin>(tls: &mut S, text: &mut String, needle: &str) {
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 1024];
        while !text.contains(needle) {
            let n = tls.read(&mut chunk).await.expect("read over TLS");
            assert!(n > 0, "server closed early: {text:?}");
            text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
    .await
    .expect("bounded read");
}

/// A client that goes away in the middle of a body over STARTTLS, without
/// TLS's close_notify, has closed the connection: `serve` ends with
/// `PeerClosed`, as when it closes cleanly, and the message is void.
#[tokio::test]
async fn tls_client_gone_mid_data_is_peer_closed() {
    let (server_tls, client_tls) = configs();
    let (mut c, s) = pair().await;
    let server = spawn_starttls_server(s, server_tls);
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO tls.example\r\nSTARTTLS\r\n")
        .await
        .expect("write");
    read_until(&mut c, &mut got, b"\r\n220 2.0.0 Ready to start TLS\r\n").await;
    let connector = TlsConnector::from(client_tls);
    let mut tls = tokio::time::timeout(BOUND, connector.connect(localhost(), c))
        .await
        .expect("bounded")
        .expect("handshake");
    tls.write_all(
        b"EHLO tls.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    )
    .await
    .expect("envelope over TLS");
    let mut text = String::new();
    read_tls_until(&mut tls, &mut text, "\r\n354 ").await;
    tls.write_all(b"Subject: cut\r\n\r\nhalf a message\r\n")
        .await
        .expect("body");
    tls.flush().await.expect("flush");
    // Gone without close_notify: only the TCP stream is ended.
    let (mut tcp, _) = tls.into_inner();
    tcp.shutdown().await.expect("shutdown");
    let (end, rec) = join(server).await;

    assert_eq!(end, Ok(ServeEnd::PeerClosed));
    assert!(!rec.saw_end);
    assert!(rec.messages.is_empty());
    assert_eq!(rec.current, b"Subject: cut\r\n\r\nhalf a message\r\n");
}

/// A TLS record header and the first bytes of its body: a handshake that
/// starts and is never finished.
const PARTIAL_RECORD: &[u8] = b"\x16\x03\x01\x00\x40\x01\x00\x00";

/// A client that goes away in the middle of the handshake after STARTTLS
/// (a partial ClientHello, then the end of the stream) ends `serve` with
/// a handshake error, not a panic or a wait; the handler never hears of
/// TLS.
#[tokio::test]
async fn a_client_gone_mid_starttls_handshake_ends_serve_with_a_handshake_error() {
    let (server_tls, _) = configs();
    let (mut c, s) = pair().await;
    let server = spawn_starttls_server(s, server_tls);
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO tls.example\r\nSTARTTLS\r\n")
        .await
        .expect("write");
    read_until(&mut c, &mut got, b"\r\n220 2.0.0 Ready to start TLS\r\n").await;
    c.write_all(PARTIAL_RECORD).await.expect("partial record");
    c.shutdown().await.expect("shutdown");
    let (end, rec) = join(server).await;

    let end = end.expect_err("the handshake cannot have completed");
    assert!(end.starts_with("TLS handshake failed"), "{end}");
    assert!(
        rec.events.iter().all(|(e, _)| e != "StartTls"),
        "{:?}",
        rec.events
    );
}

/// The client's side of the same: a server that answers STARTTLS with
/// `220`, starts its part of the handshake and goes away ends `run` with
/// [`StartTlsError::Handshake`].
#[tokio::test]
async fn a_server_gone_mid_starttls_handshake_ends_run_with_a_handshake_error() {
    let (_, client_tls) = configs();
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        let mut got = Vec::new();
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        read_until(&mut s, &mut got, b"\r\n").await;
        s.write_all(b"250-mx.example.net\r\n250 STARTTLS\r\n")
            .await
            .expect("ehlo");
        read_until(&mut s, &mut got, b"STARTTLS\r\n").await;
        s.write_all(b"220 2.0.0 Ready to start TLS\r\n")
            .await
            .expect("220");
        // Wait for the ClientHello's first bytes, answer with a partial
        // record, and go.
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).await.expect("client hello");
        assert_eq!(hello[0], 0x16, "a TLS handshake record");
        s.write_all(PARTIAL_RECORD).await.expect("partial record");
        s.shutdown().await.expect("shutdown");
        got
    });
    let mut app = OneMessage::new(
        "a@example.com",
        ["b@example.org".to_owned()],
        b"Subject: tls\r\n\r\nhi\r\n",
    );
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let mut options = RunOptions::default();
    options.tls = Some((TlsConnector::from(client_tls), localhost()));
    let end = tokio::time::timeout(BOUND, client::run(c, &mut client, &mut app, &options))
        .await
        .expect("bounded");
    assert!(
        matches!(
            end,
            Err(client::RunError::StartTls(StartTlsError::Handshake(_)))
        ),
        "{end:?}"
    );
    let got = join(server).await;
    assert!(!String::from_utf8_lossy(&got).contains("MAIL"));
}

/// A client that sends nothing after the `220` to STARTTLS ends `serve`
/// after `ServeOptions::handshake_timeout`, with a handshake error of kind
/// `TimedOut`.
#[tokio::test]
async fn a_silent_client_after_starttls_ends_serve_after_the_handshake_timeout() {
    let (server_tls, _) = configs();
    let (mut c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut config = smtp_proto_tokio::smtp_proto::server::ServerConfig::new("mx.example.net");
        config.starttls = true;
        let mut session =
            smtp_proto_tokio::smtp_proto::server::ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut options = smtp_proto_tokio::server::ServeOptions::default();
        options.tls = Some(TlsAcceptor::from(server_tls));
        options.handshake_timeout = Duration::from_millis(300);
        let mut rec = support::Recorder::default();
        smtp_proto_tokio::server::serve(s, &mut session, &mut rec, &options).await
    });
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO tls.example\r\nSTARTTLS\r\n")
        .await
        .expect("write");
    read_until(&mut c, &mut got, b"\r\n220 2.0.0 Ready to start TLS\r\n").await;
    match join(server).await {
        Err(smtp_proto_tokio::server::ServeError::StartTls(StartTlsError::Handshake(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        }
        other => panic!("expected a handshake time-out, got {other:?}"),
    }
}
