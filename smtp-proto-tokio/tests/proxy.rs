//! Reading the PROXY protocol header over loopback TCP
//! (`smtp_proto_tokio::proxy`): the client's bytes that follow the header
//! in the same write stay in the socket for `serve`; bad headers, a
//! silent peer and an early close are reported. Every wait is bounded.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use smtp_proto_tokio::proxy::{read_proxy_header, read_proxy_header_with, ProxyReadError};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions};
use smtp_proto_tokio::smtp_proto::proxy::{
    ProxyCommand, ProxyConfig, ProxyError, ProxyVersion, V2_SIGNATURE,
};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use support::{join, pair, read_until, Recorder, BOUND};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const V1: &[u8] = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";

/// A v2 PROXY header for TCP over IPv6 with one TLV (ALPN "smtp").
fn v2_header() -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    block.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    block.extend_from_slice(&4000u16.to_be_bytes());
    block.extend_from_slice(&25u16.to_be_bytes());
    block.extend_from_slice(&[0x01, 0x00, 0x04]);
    block.extend_from_slice(b"smtp");
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[0x21, 0x21]);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&block);
    out
}

/// Sends `header` and `smtp` in one write, reads the header on the server
/// side, then serves the rest; returns the header, what the client
/// received, and the recorder.
async fn header_then_serve(
    header: &[u8],
    smtp: &[u8],
) -> (
    Result<smtp_proto_tokio::smtp_proto::proxy::ProxyHeader<'static>, ProxyReadError>,
    Vec<u8>,
    Recorder,
) {
    let (mut client, mut server) = pair().await;
    client
        .write_all(&[header, smtp].concat())
        .await
        .expect("write");
    let got = read_proxy_header(&mut server, BOUND).await;
    let task = tokio::spawn(async move {
        let mut session = ServerSession::new(ServerConfig::new("mx.example.com")).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let end = serve(server, &mut session, &mut rec, &ServeOptions::default()).await;
        assert_eq!(end.expect("serve"), ServeEnd::Closed);
        rec
    });
    let mut received = Vec::new();
    read_until(&mut client, &mut received, b"221 ").await;
    (got, received, join(task).await)
}

#[tokio::test]
async fn v1_header_and_smtp_in_one_write_leaves_the_smtp_for_serve() {
    let (header, received, _) = header_then_serve(V1, b"EHLO client.example\r\nQUIT\r\n").await;
    let header = header.expect("header");
    assert_eq!(header.version(), ProxyVersion::V1);
    assert_eq!(header.source(), Some("192.0.2.7:56324".parse().unwrap()));
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("220 "), "{text}");
    assert!(
        text.contains("250-mx.example.com"),
        "EHLO was answered: {text}"
    );
    assert!(!text.contains("500"), "no byte was lost: {text}");
}

#[tokio::test]
async fn v2_header_and_smtp_in_one_write_leaves_the_smtp_for_serve() {
    let (header, received, _) =
        header_then_serve(&v2_header(), b"EHLO client.example\r\nQUIT\r\n").await;
    let header = header.expect("header");
    assert_eq!(header.version(), ProxyVersion::V2);
    assert_eq!(header.command(), ProxyCommand::Proxy);
    assert_eq!(header.source(), Some("[2001:db8::7]:4000".parse().unwrap()));
    assert_eq!(
        header.destination(),
        Some("[2001:db8::1]:25".parse().unwrap())
    );
    let tlvs: Vec<_> = header.tlvs().map(|t| (t.kind, t.value.to_vec())).collect();
    assert_eq!(tlvs, [(1, b"smtp".to_vec())]);
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("250-mx.example.com"),
        "EHLO was answered: {text}"
    );
    assert!(!text.contains("500"), "no byte was lost: {text}");
}

#[tokio::test]
async fn full_transaction_after_a_proxy_header() {
    let (mut client, mut server) = pair().await;
    let peer: SocketAddr = client.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let header = read_proxy_header(&mut server, BOUND).await.expect("header");
        let mut session = ServerSession::new(ServerConfig::new("mx.example.com")).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let end = serve(server, &mut session, &mut rec, &ServeOptions::default()).await;
        (header, end.map_err(|e| e.to_string()), rec)
    });
    let mut buf = Vec::new();
    // The header and EHLO in one write; the greeting comes after the header.
    let steps: [(&[u8], &[u8]); 6] = [
        (
            b"PROXY TCP6 2001:db8::9 2001:db8::1 5000 25\r\nEHLO c.example\r\n",
            b"250 ",
        ),
        (b"MAIL FROM:<a@example.net>\r\n", b"250 "),
        (b"RCPT TO:<b@example.com>\r\n", b"250 "),
        (b"DATA\r\n", b"354 "),
        (b"Subject: hi\r\n\r\nhello\r\n.\r\n", b"250 "),
        (b"QUIT\r\n", b"221 "),
    ];
    for (send, expect) in steps {
        client.write_all(send).await.expect("write");
        buf.clear();
        read_until(&mut client, &mut buf, expect).await;
    }
    let (header, end, rec) = join(task).await;
    assert_eq!(header.source(), Some("[2001:db8::9]:5000".parse().unwrap()));
    assert_ne!(header.client_address(peer), peer);
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, [b"Subject: hi\r\n\r\nhello\r\n".to_vec()]);
}

async fn read_after(bytes: &[u8]) -> Result<(), ProxyReadError> {
    let (mut client, mut server) = pair().await;
    client.write_all(bytes).await.expect("write");
    read_proxy_header(&mut server, BOUND).await.map(|_| ())
}

#[tokio::test]
async fn garbage_instead_of_a_header_is_a_typed_error() {
    match read_after(b"EHLO client.example\r\n").await {
        Err(ProxyReadError::Invalid(ProxyError::NotProxy)) => {}
        other => panic!("{other:?}"),
    }
    match read_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 25\r\n").await {
        Err(ProxyReadError::Invalid(ProxyError::V1BadPort)) => {}
        other => panic!("{other:?}"),
    }
    let mut bad_version = v2_header();
    bad_version[12] = 0x11;
    match read_after(&bad_version).await {
        Err(ProxyReadError::Invalid(ProxyError::V2BadVersion(1))) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_v2_header_over_the_limit_is_refused_after_16_octets() {
    let (mut client, mut server) = pair().await;
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend_from_slice(&[0x21, 0x11, 0x10, 0x00]);
    client.write_all(&fixed).await.expect("write");
    let mut config = ProxyConfig::default();
    config.max_v2_len = 256;
    match read_proxy_header_with(&mut server, BOUND, &config).await {
        Err(ProxyReadError::Invalid(ProxyError::V2TooLong { length, max })) => {
            assert_eq!((length, max), (16 + 4096, 256));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let (client, mut server) = pair().await;
    // Half a header, then silence.
    let mut client: TcpStream = client;
    client.write_all(b"PROXY TCP4 1.2").await.expect("write");
    match read_proxy_header(&mut server, Duration::from_millis(200)).await {
        Err(ProxyReadError::TimedOut) => {}
        other => panic!("{other:?}"),
    }
    let (_client, mut server) = pair().await;
    match read_proxy_header(&mut server, Duration::from_millis(200)).await {
        Err(ProxyReadError::TimedOut) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_close_before_the_end_of_the_header_is_reported() {
    let (mut client, mut server) = pair().await;
    client
        .write_all(b"PROXY TCP4 1.2.3.4")
        .await
        .expect("write");
    client.shutdown().await.expect("shutdown");
    match read_proxy_header(&mut server, BOUND).await {
        Err(ProxyReadError::Closed) => {}
        other => panic!("{other:?}"),
    }
}
