//! Reading the PROXY protocol header over loopback TCP
//! (`smtp_proto_blocking::proxy`): the client's bytes that follow the
//! header in the same write stay in the socket for `serve`; bad headers, a
//! silent peer and an early close are reported. Every socket has a read
//! timeout and every read loop a count bound.

#[allow(dead_code, reason = "this binary uses only some of the helpers")]
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use smtp_proto_blocking::proxy::{read_proxy_header, read_proxy_header_with, ProxyReadError};
use smtp_proto_blocking::server::{serve, ServeEnd, ServeOptions};
use smtp_proto_blocking::smtp_proto::proxy::{
    ProxyCommand, ProxyConfig, ProxyError, ProxyHeader, ProxyVersion, V2_SIGNATURE,
};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerSession};
use support::{bounded_timeouts, connect, spawn_peer, Recorder, BOUND};

const V1: &[u8] = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";

/// A v2 PROXY header for TCP over IPv4 with one TLV (authority).
fn v2_header() -> Vec<u8> {
    let mut block = vec![10, 1, 2, 3, 10, 0, 0, 1];
    block.extend_from_slice(&4000u16.to_be_bytes());
    block.extend_from_slice(&25u16.to_be_bytes());
    block.extend_from_slice(&[0x02, 0x00, 0x0a]);
    block.extend_from_slice(b"mx.example");
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[0x21, 0x11]);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&block);
    out
}

type Served = (
    Result<ProxyHeader<'static>, ProxyReadError>,
    Option<ServeEnd>,
    Recorder,
);

/// A server on a thread: reads the header, then (when it read one) serves
/// the connection with a [`Recorder`].
fn spawn_proxied_server() -> (SocketAddr, thread::JoinHandle<Served>) {
    spawn_peer(|mut socket| {
        let header = read_proxy_header(&mut socket, BOUND);
        let mut rec = Recorder::new(None);
        if header.is_err() {
            return (header, None, rec);
        }
        let mut config = ServerConfig::new("mx.example.com");
        config.timeouts = bounded_timeouts();
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let end = serve(socket, &mut session, &mut rec, &ServeOptions::default()).expect("serve");
        (header, Some(end), rec)
    })
}

/// Reads until `needle` has arrived (bounded in reads).
fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..10_000 {
        if buf.windows(needle.len()).any(|w| w == needle) {
            return buf;
        }
        let n = stream.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "closed before {:?}: {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    panic!("no {:?}", String::from_utf8_lossy(needle));
}

fn header_then_smtp(header: &[u8]) -> (ProxyHeader<'static>, String) {
    let (addr, server) = spawn_proxied_server();
    let mut client = connect(addr);
    client
        .write_all(&[header, b"EHLO client.example\r\nQUIT\r\n"].concat())
        .expect("write");
    let received = read_until(&mut client, b"221 ");
    let (header, end, _) = server.join().expect("server");
    assert_eq!(end, Some(ServeEnd::Closed));
    (
        header.expect("header"),
        String::from_utf8_lossy(&received).into_owned(),
    )
}

#[test]
fn v1_header_and_smtp_in_one_write_leaves_the_smtp_for_serve() {
    let (header, text) = header_then_smtp(V1);
    assert_eq!(header.version(), ProxyVersion::V1);
    assert_eq!(header.source(), Some("192.0.2.7:56324".parse().unwrap()));
    assert!(text.starts_with("220 "), "{text}");
    assert!(
        text.contains("250-mx.example.com"),
        "EHLO was answered: {text}"
    );
    assert!(!text.contains("500"), "no byte was lost: {text}");
}

#[test]
fn v2_header_and_smtp_in_one_write_leaves_the_smtp_for_serve() {
    let (header, text) = header_then_smtp(&v2_header());
    assert_eq!(header.version(), ProxyVersion::V2);
    assert_eq!(header.command(), ProxyCommand::Proxy);
    assert_eq!(header.source(), Some("10.1.2.3:4000".parse().unwrap()));
    assert_eq!(header.destination(), Some("10.0.0.1:25".parse().unwrap()));
    let tlvs: Vec<_> = header.tlvs().map(|t| (t.kind, t.value.to_vec())).collect();
    assert_eq!(tlvs, [(2, b"mx.example".to_vec())]);
    assert!(
        text.contains("250-mx.example.com"),
        "EHLO was answered: {text}"
    );
    assert!(!text.contains("500"), "no byte was lost: {text}");
}

#[test]
fn full_transaction_after_a_proxy_header() {
    let (addr, server) = spawn_proxied_server();
    let mut client = connect(addr);
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
        client.write_all(send).expect("write");
        read_until(&mut client, expect);
    }
    let (header, end, rec) = server.join().expect("server");
    assert_eq!(
        header.expect("header").source(),
        Some("[2001:db8::9]:5000".parse().unwrap())
    );
    assert_eq!(end, Some(ServeEnd::Closed));
    assert_eq!(rec.seen.message, b"Subject: hi\r\n\r\nhello\r\n");
    assert_eq!(rec.seen.message_ends, 1);
}

/// Sends `bytes`, closes the sending side, and returns what the server's
/// header reader said; the server sent nothing.
fn refused(bytes: &[u8]) -> ProxyReadError {
    let (addr, server) = spawn_proxied_server();
    let mut client = connect(addr);
    client.write_all(bytes).expect("write");
    let (header, end, _) = server.join().expect("server");
    assert_eq!(end, None);
    drop(client);
    header.expect_err("no header")
}

#[test]
fn garbage_instead_of_a_header_is_a_typed_error() {
    assert!(matches!(
        refused(b"EHLO client.example\r\n"),
        ProxyReadError::Invalid(ProxyError::NotProxy)
    ));
    assert!(matches!(
        refused(b"PROXY TCP4 1.2.3.4 5.6.7 1 25\r\n"),
        ProxyReadError::Invalid(ProxyError::V1BadAddress)
    ));
    let mut bad_family = v2_header();
    bad_family[13] = 0x41;
    assert!(matches!(
        refused(&bad_family),
        ProxyReadError::Invalid(ProxyError::V2BadFamily(0x41))
    ));
}

#[test]
fn a_v2_header_over_the_limit_is_refused_after_16_octets() {
    let (addr, server) = spawn_peer(|mut socket| {
        let mut config = ProxyConfig::default();
        config.max_v2_len = 256;
        read_proxy_header_with(&mut socket, BOUND, &config).map(|_| ())
    });
    let mut client = connect(addr);
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend_from_slice(&[0x21, 0x11, 0x10, 0x00]);
    client.write_all(&fixed).expect("write");
    match server.join().expect("server") {
        Err(ProxyReadError::Invalid(ProxyError::V2TooLong { length, max })) => {
            assert_eq!((length, max), (16 + 4096, 256));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silent_peer_times_out() {
    for start in [&b""[..], b"PROXY TCP4 1.2"] {
        let (addr, server) = spawn_peer(|mut socket| {
            read_proxy_header(&mut socket, Duration::from_millis(200)).map(|_| ())
        });
        let mut client = connect(addr);
        client.write_all(start).expect("write");
        match server.join().expect("server") {
            Err(ProxyReadError::TimedOut) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_close_before_the_end_of_the_header_is_reported() {
    let (addr, server) = spawn_peer(|mut socket| read_proxy_header(&mut socket, BOUND).map(|_| ()));
    let mut client = connect(addr);
    client.write_all(b"PROXY TCP4 1.2.3.4").expect("write");
    client.shutdown(Shutdown::Write).expect("shutdown");
    match server.join().expect("server") {
        Err(ProxyReadError::Closed) => {}
        other => panic!("{other:?}"),
    }
}
