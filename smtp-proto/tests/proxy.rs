//! The PROXY protocol header decoder (`smtp_proto::proxy`): known answers
//! for v1 and v2, every error kind, the "needed" counts that keep a reader
//! from reading past the header, and split invariance.

use std::net::SocketAddr;

use proptest::prelude::*;
use smtp_proto::proxy::{
    decode, decode_with, Decoded, ProxyCommand, ProxyConfig, ProxyError, ProxyFamily, ProxyHeader,
    ProxyVersion, Tlv, V1_MAX_LEN, V1_MIN_LEN, V2_SIGNATURE,
};

/// A v2 header: signature, the two type octets, the length, the block.
fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(block);
    out
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The address block of an INET or INET6 header.
fn inet_block(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    for a in [src, dst] {
        match a {
            SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
            SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Decodes a complete header; panics on anything else.
fn complete(input: &[u8]) -> (ProxyHeader<'_>, usize) {
    match decode(input) {
        Ok(Decoded::Complete { header, consumed }) => (header, consumed),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

fn error(input: &[u8]) -> ProxyError {
    match decode(input) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

fn needed(input: &[u8]) -> usize {
    match decode(input) {
        Ok(Decoded::Incomplete { needed }) => needed.get(),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

/// Reads `stream` the way an adapter does: exactly the octets `needed`
/// asks for, then decodes again. Returns the result and how many octets
/// were read.
fn read_as_asked(stream: &[u8], config: &ProxyConfig) -> (Result<usize, ProxyError>, usize) {
    let mut read = 0;
    loop {
        match decode_with(&stream[..read], config) {
            Ok(Decoded::Incomplete { needed }) => {
                if read + needed.get() > stream.len() {
                    return (Ok(usize::MAX), read);
                }
                read += needed.get();
            }
            Ok(Decoded::Complete { consumed, .. }) => return (Ok(consumed), read),
            Err(e) => return (Err(e), read),
        }
    }
}

/// Every prefix of `input` either is incomplete without asking for octets
/// past the header, or gives the same error as the whole input; the whole
/// gives `whole`.
fn check_prefixes(input: &[u8]) {
    let whole = decode(input);
    let end = match &whole {
        Ok(Decoded::Complete { consumed, .. }) => Some(*consumed),
        _ => None,
    };
    for n in 0..input.len() {
        match decode(&input[..n]) {
            Ok(Decoded::Incomplete { needed }) => {
                if let Some(end) = end {
                    assert!(
                        n + needed.get() <= end,
                        "{:?}: prefix {n} asks for {needed} octets, past the header end {end}",
                        String::from_utf8_lossy(input)
                    );
                }
            }
            Ok(Decoded::Complete { consumed, header }) => {
                assert_eq!(
                    whole,
                    Ok(Decoded::Complete { consumed, header }),
                    "prefix {n}"
                );
            }
            Err(e) => assert_eq!(
                whole,
                Err(e),
                "prefix {n} of {:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }
}

const SMTP: &[u8] = b"EHLO client.example\r\n";

#[test]
fn v1_tcp4_header_followed_by_smtp() {
    let mut input = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n".to_vec();
    let len = input.len();
    input.extend_from_slice(SMTP);
    let (h, consumed) = complete(&input);
    assert_eq!(consumed, len);
    assert_eq!(h.version(), ProxyVersion::V1);
    assert_eq!(h.command(), ProxyCommand::Proxy);
    assert_eq!(h.family(), ProxyFamily::Inet);
    assert_eq!(h.source(), Some(addr("192.0.2.7:56324")));
    assert_eq!(h.destination(), Some(addr("198.51.100.1:25")));
    assert_eq!(
        h.client_address(addr("127.0.0.1:9")),
        addr("192.0.2.7:56324")
    );
    assert_eq!(h.tlvs().count(), 0);
    assert!(!h.is_datagram());
    check_prefixes(&input);
}

#[test]
fn v1_tcp6_header() {
    let input = b"PROXY TCP6 2001:db8::7 ::ffff:198.51.100.1 0 65535\r\n";
    let (h, consumed) = complete(input);
    assert_eq!(consumed, input.len());
    assert_eq!(h.family(), ProxyFamily::Inet6);
    assert_eq!(h.source(), Some(addr("[2001:db8::7]:0")));
    assert_eq!(h.destination(), Some(addr("[::ffff:198.51.100.1]:65535")));
    check_prefixes(input);
}

#[test]
fn v1_unknown_means_the_connection_address() {
    let peer = addr("127.0.0.1:4000");
    for input in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        b"PROXY UNKNOWN anything \x01 at all\r\n",
    ] {
        let (h, consumed) = complete(input);
        assert_eq!(consumed, input.len());
        assert_eq!(h.family(), ProxyFamily::Unspecified);
        assert_eq!(h.source(), None);
        assert_eq!(h.destination(), None);
        assert_eq!(h.client_address(peer), peer);
        check_prefixes(input);
    }
}

#[test]
fn v1_header_of_exactly_107_octets_is_accepted() {
    let mut input = b"PROXY UNKNOWN ".to_vec();
    input.resize(V1_MAX_LEN - 2, b'x');
    input.extend_from_slice(b"\r\n");
    assert_eq!(input.len(), 107);
    assert_eq!(complete(&input).1, 107);
    let longest_tcp6 = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(complete(longest_tcp6).1, longest_tcp6.len());
}

#[test]
fn v1_over_107_octets_without_crlf_is_refused() {
    let mut input = b"PROXY UNKNOWN ".to_vec();
    input.resize(V1_MAX_LEN, b'x');
    assert_eq!(error(&input), ProxyError::V1TooLong);
    // The CR as the 107th octet: its LF would be the 108th.
    input[V1_MAX_LEN - 1] = b'\r';
    assert_eq!(error(&input), ProxyError::V1TooLong);
    input.extend_from_slice(b"\n");
    assert_eq!(error(&input), ProxyError::V1TooLong);
    // One octet shorter, the same line fits.
    let mut fits = input[..V1_MAX_LEN - 2].to_vec();
    fits.extend_from_slice(b"\r\n");
    assert_eq!(complete(&fits).1, V1_MAX_LEN);
    // 1 MiB of it costs nothing more.
    for start in [&b"PROXY UNKNOWN "[..], b"PROXY TCP4 ", b"PROXY UNKNOWN\r"] {
        let big = [start, &vec![b'a'; 1 << 20]].concat();
        assert_eq!(error(&big), ProxyError::V1TooLong);
    }
}

#[test]
fn not_a_proxy_header() {
    for input in [
        &b"EHLO client.example\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"PROXZ TCP4",
        b"PROXY\r\n",
        b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"\r\n\r\n\0\r\nQUIx\n!\x11\0\x0c",
        b"\r\nEHLO",
        b"Q",
    ] {
        assert_eq!(error(input), ProxyError::NotProxy, "{input:?}");
        check_prefixes(input);
    }
}

#[test]
fn v1_bad_family() {
    for input in [
        &b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"[..],
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY \r\n",
        b"PROXY UNKNOWNX\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1BadFamily, "{input:?}");
        check_prefixes(input);
    }
}

#[test]
fn v1_syntax() {
    for input in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rEHLO",
        b"PROXY TCP4\r\n",
        b"PROXY TCP6\r",
        b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1Syntax, "{input:?}");
        check_prefixes(input);
    }
}

/// "The receiver must not tolerate a single CR or LF character to end the
/// line when a complete CRLF sequence is expected", and "it is recommended
/// to abort the connection as soon as possible": a `TCP4`/`TCP6` line with
/// a LF before its CR (typically one ended by a bare LF, after which the
/// client waits for the greeting and sends nothing more) is refused as soon
/// as the LF arrives, not after a wait for octets that never come.
#[test]
fn v1_bare_lf_in_a_tcp_line_is_refused_at_once() {
    for input in [
        &b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n"[..],
        b"PROXY TCP6 2001:db8::7 2001:db8::1 56324 25\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n\r\n",
        b"PROXY TCP4 192.0.2.7\n198.51.100.1 56324 25\r\n",
        b"PROXY TCP4 \n",
    ] {
        assert_eq!(error(input), ProxyError::V1Syntax, "{input:?}");
        check_prefixes(input);
    }
    // The reader that reads what `needed` asks stops at the LF.
    let stream = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n";
    assert_eq!(
        read_as_asked(stream, &ProxyConfig::default()),
        (Err(ProxyError::V1Syntax), stream.len())
    );
    // In an UNKNOWN line a bare LF is still part of what is ignored.
    let (h, consumed) = complete(b"PROXY UNKNOWN \nx\r\nEHLO");
    assert_eq!((h.family(), consumed), (ProxyFamily::Unspecified, 18));
}

#[test]
fn v1_bad_address() {
    for input in [
        &b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"[..],
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n",
        b"PROXY TCP6 [::1] ::1 1 2\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1BadAddress, "{input:?}");
        check_prefixes(input);
    }
}

/// "IPv4 addresses must be indicated as a series of exactly 4 integers in
/// the range [0..255] inclusive written in decimal representation ...
/// Heading zeroes are not permitted in front of numbers in order to avoid
/// any possible confusion with octal numbers": `07` or `051` is refused,
/// in a `TCP4` line and in the IPv4 tail of a `TCP6` address, while `0`
/// alone and zeros inside a number are taken. IPv6 groups are hexadecimal
/// "sets of 4 hexadecimal digits", so `0db8` is no leading-zero fault.
#[test]
fn v1_ipv4_numbers_with_leading_zeros_are_refused() {
    for input in [
        &b"PROXY TCP4 192.0.2.07 198.51.100.1 56324 25\r\n"[..],
        b"PROXY TCP4 192.0.2.7 198.051.100.1 56324 25\r\n",
        b"PROXY TCP4 00.0.2.7 198.51.100.1 56324 25\r\n",
        b"PROXY TCP4 192.0.2.000 198.51.100.1 56324 25\r\n",
        b"PROXY TCP6 ::ffff:192.0.2.07 2001:db8::1 56324 25\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1BadAddress, "{input:?}");
        check_prefixes(input);
    }
    let (h, _) = complete(b"PROXY TCP4 0.0.0.0 10.0.100.200 56324 25\r\n");
    assert_eq!(h.source(), Some(addr("0.0.0.0:56324")));
    assert_eq!(h.destination(), Some(addr("10.0.100.200:25")));
    let (h, _) = complete(b"PROXY TCP6 2001:0db8:0000::0007 2001:DB8::1 56324 25\r\n");
    assert_eq!(h.source(), Some(addr("[2001:db8::7]:56324")));
    assert_eq!(h.destination(), Some(addr("[2001:db8::1]:25")));
}

#[test]
fn v1_bad_port() {
    for input in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1BadPort, "{input:?}");
        check_prefixes(input);
    }
}

#[test]
fn v1_port_with_leading_zeros_is_refused() {
    for input in [
        &b"PROXY TCP4 192.0.2.7 198.51.100.1 0025 025\r\n"[..],
        b"PROXY TCP4 192.0.2.7 198.51.100.1 25 025\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 00 25\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 25 00000\r\n",
        b"PROXY TCP6 2001:db8::7 2001:db8::1 01 2\r\n",
        b"PROXY TCP6 2001:db8::7 2001:db8::1 1 065535\r\n",
    ] {
        assert_eq!(error(input), ProxyError::V1BadPort, "{input:?}");
        check_prefixes(input);
    }
    // "0" alone is a port.
    let (h, _) = complete(b"PROXY TCP4 192.0.2.7 198.51.100.1 0 0\r\n");
    assert_eq!(h.source(), Some(addr("192.0.2.7:0")));
    assert_eq!(h.destination(), Some(addr("198.51.100.1:0")));
    let (h, _) = complete(b"PROXY TCP4 192.0.2.7 198.51.100.1 10 100\r\n");
    assert_eq!(h.source().map(|a| a.port()), Some(10));
    assert_eq!(h.destination().map(|a| a.port()), Some(100));
}

#[test]
fn v1_unknown_ignores_lone_cr_and_lf_up_to_the_crlf() {
    let peer = addr("127.0.0.1:4000");
    for header in [
        &b"PROXY UNKNOWN a\rb\r\n"[..],
        b"PROXY UNKNOWN\rX\r\n",
        b"PROXY UNKNOWN\r\r\n",
        b"PROXY UNKNOWN \r\r\r\n",
        b"PROXY UNKNOWN a\nb\r\n",
        b"PROXY UNKNOWN \n\r\r\n",
    ] {
        let input = [header, SMTP].concat();
        let (h, consumed) = complete(&input);
        assert_eq!(consumed, header.len(), "{header:?}");
        assert_eq!(h.family(), ProxyFamily::Unspecified);
        assert_eq!(h.client_address(peer), peer);
        check_prefixes(&input);
        for tail in [&b""[..], b"\r\n", b"\n", SMTP] {
            let stream = [header, tail].concat();
            let (result, read) = read_as_asked(&stream, &ProxyConfig::default());
            assert_eq!(result, Ok(header.len()), "{header:?}");
            assert_eq!(read, header.len(), "read past the header {header:?}");
        }
    }
    // The first CRLF ends the header.
    assert_eq!(complete(b"PROXY UNKNOWN\r\n\r\n").1, 15);
    assert_eq!(complete(b"PROXY UNKNOWN \r\r\nX\r\n").1, 17);
    // Lone CRs count toward the 107 octets: one that fits, one that does not.
    let mut input = b"PROXY UNKNOWN ".to_vec();
    input.resize(V1_MAX_LEN - 2, b'\r');
    input.extend_from_slice(b"\r\n");
    assert_eq!(input.len(), V1_MAX_LEN);
    assert_eq!(complete(&input).1, V1_MAX_LEN);
    let mut over = b"PROXY UNKNOWN ".to_vec();
    over.resize(V1_MAX_LEN - 1, b'\r');
    over.extend_from_slice(b"\r\n");
    assert_eq!(error(&over), ProxyError::V1TooLong);
    check_prefixes(&over);
}

#[test]
fn v1_family_is_refused_as_soon_as_it_is_known() {
    for input in [
        &b"PROXY FOO "[..],
        b"PROXY F",
        b"PROXY TCP5",
        b"PROXY TCP44",
        b"PROXY tcp4",
        b"PROXY UNKNOWNX",
        b"PROXY UNKNOWN\n",
        b"PROXY UNKNOW ",
        b"PROXY TCP\r",
        b"PROXY \r",
        b"PROXY  ",
    ] {
        assert_eq!(error(input), ProxyError::V1BadFamily, "{input:?}");
        check_prefixes(input);
    }
    // A reader is told at its first read (the shortest header's length),
    // not after 107 octets.
    let stream = [&b"PROXY FOO "[..], &[b'x'; 200]].concat();
    let (result, read) = read_as_asked(&stream, &ProxyConfig::default());
    assert_eq!(result, Err(ProxyError::V1BadFamily));
    assert_eq!(read, V1_MIN_LEN);
    // Starts of a valid family are not refused.
    for input in [
        &b"PROXY "[..],
        b"PROXY T",
        b"PROXY TCP",
        b"PROXY TCP4",
        b"PROXY TCP6 ",
        b"PROXY U",
        b"PROXY UNKNOWN",
        b"PROXY UNKNOWN ",
        b"PROXY UNKNOWN\r",
    ] {
        assert!(needed(input) > 0);
    }
}

#[test]
fn v2_proxy_ipv4_with_tlvs_followed_by_smtp() {
    let src = addr("192.0.2.7:56324");
    let dst = addr("198.51.100.1:25");
    let tlvs = [tlv(0x01, b"smtp"), tlv(0x04, &[0; 3]), tlv(0xe0, b"")].concat();
    let header = v2(0x21, 0x11, &[inet_block(src, dst), tlvs].concat());
    let mut input = header.clone();
    input.extend_from_slice(SMTP);
    let (h, consumed) = complete(&input);
    assert_eq!(consumed, header.len());
    assert_eq!(h.version(), ProxyVersion::V2);
    assert_eq!(h.command(), ProxyCommand::Proxy);
    assert_eq!(h.family(), ProxyFamily::Inet);
    assert_eq!(h.source(), Some(src));
    assert_eq!(h.destination(), Some(dst));
    assert!(!h.is_datagram());
    let got: Vec<Tlv<'_>> = h.tlvs().collect();
    assert_eq!(
        got,
        [
            Tlv {
                kind: 1,
                value: b"smtp"
            },
            Tlv {
                kind: 4,
                value: &[0, 0, 0]
            },
            Tlv {
                kind: 0xe0,
                value: b""
            },
        ]
    );
    let owned = h.clone().into_owned();
    assert_eq!(owned, h);
    check_prefixes(&input);
}

#[test]
fn v2_proxy_ipv6_and_datagram() {
    let src = addr("[2001:db8::7]:1");
    let dst = addr("[2001:db8::1]:587");
    let input = v2(0x21, 0x21, &inet_block(src, dst));
    let (h, consumed) = complete(&input);
    assert_eq!(consumed, 16 + 36);
    assert_eq!(h.family(), ProxyFamily::Inet6);
    assert_eq!((h.source(), h.destination()), (Some(src), Some(dst)));
    check_prefixes(&input);

    let input = v2(0x21, 0x22, &inet_block(src, dst));
    assert!(complete(&input).0.is_datagram());
    let input = v2(
        0x21,
        0x12,
        &inet_block(addr("1.2.3.4:5"), addr("5.6.7.8:9")),
    );
    assert!(complete(&input).0.is_datagram());
}

#[test]
fn v2_unix_has_no_address_but_keeps_its_tlvs() {
    let mut block = vec![b'/'; 216];
    block.extend_from_slice(&tlv(0x02, b"mx.example"));
    let input = v2(0x21, 0x31, &block);
    let (h, consumed) = complete(&input);
    assert_eq!(consumed, 16 + 216 + 13);
    assert_eq!(h.family(), ProxyFamily::Unix);
    assert_eq!(h.source(), None);
    assert_eq!(h.client_address(addr("127.0.0.1:1")), addr("127.0.0.1:1"));
    assert_eq!(
        h.tlvs().collect::<Vec<_>>(),
        [Tlv {
            kind: 2,
            value: b"mx.example"
        }]
    );
    check_prefixes(&input);
}

#[test]
fn v2_local_ignores_family_and_block() {
    let peer = addr("[::1]:2525");
    // An INET family, a short garbage block: LOCAL discards it all.
    for input in [
        v2(0x20, 0x11, b"\x01\x02\x03"),
        v2(0x20, 0x00, b""),
        v2(0x20, 0xff, &[0xff; 40]),
    ] {
        let (h, consumed) = complete(&input);
        assert_eq!(consumed, input.len());
        assert_eq!(h.command(), ProxyCommand::Local);
        assert_eq!(h.family(), ProxyFamily::Unspecified);
        assert_eq!(h.source(), None);
        assert_eq!(h.tlvs().count(), 0);
        assert_eq!(h.client_address(peer), peer);
        check_prefixes(&input);
    }
    // PROXY with AF_UNSPEC: no address either.
    let input = v2(0x21, 0x00, b"opaque");
    let (h, _) = complete(&input);
    assert_eq!((h.command(), h.source()), (ProxyCommand::Proxy, None));
}

#[test]
fn v2_errors() {
    let block = inet_block(addr("1.2.3.4:5"), addr("5.6.7.8:9"));
    assert_eq!(error(&v2(0x11, 0x11, &block)), ProxyError::V2BadVersion(1));
    assert_eq!(error(&v2(0x31, 0x11, &block)), ProxyError::V2BadVersion(3));
    assert_eq!(error(&v2(0x22, 0x11, &block)), ProxyError::V2BadCommand(2));
    assert_eq!(error(&v2(0x2f, 0x11, &block)), ProxyError::V2BadCommand(15));
    for fam in [0x01, 0x10, 0x13, 0x41, 0xff] {
        assert_eq!(error(&v2(0x21, fam, &block)), ProxyError::V2BadFamily(fam));
    }
    assert_eq!(
        error(&v2(0x21, 0x11, &block[..11])),
        ProxyError::V2LengthTooShort {
            length: 11,
            needed: 12
        }
    );
    assert_eq!(
        error(&v2(0x21, 0x21, &block)),
        ProxyError::V2LengthTooShort {
            length: 12,
            needed: 36
        }
    );
    assert_eq!(
        error(&v2(0x21, 0x31, &[0; 108])),
        ProxyError::V2LengthTooShort {
            length: 108,
            needed: 216
        }
    );
    // A truncated TLV: type and one length octet only; a length past the end.
    assert_eq!(
        error(&v2(0x21, 0x11, &[&block[..], &[1, 0]].concat())),
        ProxyError::V2BadTlv
    );
    assert_eq!(
        error(&v2(0x21, 0x11, &[&block[..], &[1, 0, 5, b'a']].concat())),
        ProxyError::V2BadTlv
    );
    for input in [
        v2(0x11, 0x11, &block),
        v2(0x21, 0x41, &block),
        v2(0x21, 0x11, &[&block[..], &[1]].concat()),
    ] {
        check_prefixes(&input);
    }
}

#[test]
fn v2_length_over_the_limit_is_refused_after_16_octets() {
    // Only the fixed part: the length alone decides.
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(
        error(&fixed),
        ProxyError::V2TooLong {
            length: 16 + 65535,
            max: 4096
        }
    );
    let mut config = ProxyConfig::default();
    config.max_v2_len = 16 + 12;
    let block = inet_block(addr("1.2.3.4:5"), addr("5.6.7.8:9"));
    let exact = v2(0x21, 0x11, &block);
    assert!(matches!(
        decode_with(&exact, &config),
        Ok(Decoded::Complete { consumed: 28, .. })
    ));
    let over = v2(0x21, 0x11, &[&block[..], &tlv(4, b"")].concat());
    assert_eq!(
        decode_with(&over[..16], &config),
        Err(ProxyError::V2TooLong {
            length: 31,
            max: 28
        })
    );
}

#[test]
fn needed_counts() {
    assert_eq!(needed(b""), 15);
    assert_eq!(needed(b"P"), 14);
    assert_eq!(needed(b"PROXY UNKNOWN"), 2);
    assert_eq!(needed(b"PROXY UNKNOWN\r"), 1);
    assert_eq!(needed(b"PROXY TCP4 1.2.3.4"), 2);
    assert_eq!(needed(b"PROXY TCP4 1.2.3.4\r"), 1);
    assert_eq!(needed(b"PROXY UNKNOWN\rX"), 2);
    assert_eq!(needed(b"PROXY UNKNOWN x\r"), 1);
    assert_eq!(needed(b"PROXY UNKNOWN\r\r"), 1);
    assert_eq!(needed(b"\r"), 15);
    assert_eq!(needed(&V2_SIGNATURE[..5]), 11);
    assert_eq!(needed(&[&V2_SIGNATURE[..], &[0x21, 0x11, 0]].concat()), 1);
    let fixed = [&V2_SIGNATURE[..], &[0x21, 0x11, 0, 12]].concat();
    assert_eq!(needed(&fixed), 12);
    assert_eq!(needed(&[&fixed[..], &[1, 2, 3]].concat()), 9);
    // The longest v1 line still has room for its CRLF.
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX_LEN - 1, b'x');
    assert_eq!(needed(&long), 1);
}

/// Headers used by the reader and split tests, each followed by client bytes.
fn samples() -> Vec<Vec<u8>> {
    let inet = inet_block(addr("10.1.2.3:4000"), addr("10.0.0.1:25"));
    let inet6 = inet_block(addr("[2001:db8::7]:1"), addr("[2001:db8::1]:587"));
    vec![
        b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n".to_vec(),
        b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        b"PROXY UNKNOWN x\r\n".to_vec(),
        b"PROXY UNKNOWN a\rb\nc\r\r\n".to_vec(),
        b"PROXY UNKNOWN\r\r\n".to_vec(),
        b"PROXY TCP4 192.0.2.7 198.51.100.1 0 10\r\n".to_vec(),
        v2(0x21, 0x11, &inet),
        v2(0x21, 0x11, &[&inet[..], &tlv(1, b"h2")].concat()),
        v2(0x21, 0x21, &inet6),
        v2(0x21, 0x31, &[0; 216]),
        v2(0x20, 0x00, b""),
        v2(0x20, 0x11, &inet),
    ]
}

#[test]
fn reading_what_incomplete_asks_never_passes_the_header() {
    let config = ProxyConfig::default();
    for header in samples() {
        for tail in [&b""[..], b"\r\n", SMTP, b"\x16\x03\x01\x00\xa5\x01\x00"] {
            let stream = [&header[..], tail].concat();
            let (result, read) = read_as_asked(&stream, &config);
            assert_eq!(result, Ok(header.len()), "{header:?}");
            assert_eq!(read, header.len(), "read past the header {header:?}");
        }
    }
}

#[test]
fn split_at_every_offset_gives_the_same_header() {
    for header in samples() {
        let stream = [&header[..], SMTP].concat();
        let whole = decode(&stream).unwrap();
        for cut in 0..=stream.len() {
            // A caller with a buffer holding the first piece, then both.
            let mut buf = stream[..cut].to_vec();
            if !matches!(decode(&buf).unwrap(), Decoded::Complete { .. }) {
                buf.extend_from_slice(&stream[cut..]);
            }
            let result = decode(&buf).unwrap();
            assert_eq!(result, whole, "cut at {cut} of {header:?}");
        }
        check_prefixes(&stream);
    }
}

fn arb_socket_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (SocketAddr::from((a, p)), SocketAddr::from((b, q)))),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (SocketAddr::from((a, p)), SocketAddr::from((b, q)))),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_prefixes_agree(
        prefix in prop_oneof![Just(b"PROXY ".to_vec()), Just(V2_SIGNATURE.to_vec()), Just(Vec::new())],
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let input = [&prefix[..], &rest[..]].concat();
        check_prefixes(&input);
    }

    #[test]
    fn v1_headers_from_addresses_decode_to_them((src, dst) in arb_socket_pair(), tail in proptest::collection::vec(any::<u8>(), 0..40)) {
        let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
        let line = format!("PROXY {family} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port());
        prop_assert!(line.len() <= V1_MAX_LEN);
        let input = [line.as_bytes(), &tail[..]].concat();
        let (h, consumed) = complete(&input);
        prop_assert_eq!(consumed, line.len());
        prop_assert_eq!((h.source(), h.destination()), (Some(src), Some(dst)));
        let (result, read) = read_as_asked(&input, &ProxyConfig::default());
        prop_assert_eq!(result, Ok(line.len()));
        prop_assert_eq!(read, line.len());
    }

    #[test]
    fn v1_unknown_ends_at_its_first_crlf(
        rest in proptest::collection::vec(any::<u8>(), 0..=(V1_MAX_LEN - 16)),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        prop_assume!(!rest.windows(2).any(|w| w == b"\r\n"));
        let header = [&b"PROXY UNKNOWN "[..], &rest[..], b"\r\n"].concat();
        prop_assert!(header.len() <= V1_MAX_LEN);
        let input = [&header[..], &tail[..]].concat();
        let (h, consumed) = complete(&input);
        prop_assert_eq!(consumed, header.len());
        prop_assert_eq!(h.family(), ProxyFamily::Unspecified);
        let (result, read) = read_as_asked(&input, &ProxyConfig::default());
        prop_assert_eq!(result, Ok(header.len()));
        prop_assert_eq!(read, header.len());
        check_prefixes(&input);
    }

    #[test]
    fn v2_headers_from_addresses_decode_to_them(
        (src, dst) in arb_socket_pair(),
        tlvs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..4),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let fam = if src.is_ipv4() { 0x11 } else { 0x21 };
        let block: Vec<u8> = std::iter::once(inet_block(src, dst))
            .chain(tlvs.iter().map(|(k, v)| tlv(*k, v)))
            .flatten()
            .collect();
        let header = v2(0x21, fam, &block);
        let input = [&header[..], &tail[..]].concat();
        let (h, consumed) = complete(&input);
        prop_assert_eq!(consumed, header.len());
        prop_assert_eq!((h.source(), h.destination()), (Some(src), Some(dst)));
        let got: Vec<(u8, Vec<u8>)> = h.tlvs().map(|t| (t.kind, t.value.to_vec())).collect();
        prop_assert_eq!(got, tlvs);
        let (result, read) = read_as_asked(&input, &ProxyConfig::default());
        prop_assert_eq!(result, Ok(header.len()));
        prop_assert_eq!(read, header.len());
    }
}
