//! Target `proxy`: the PROXY protocol header decoder
//! (`smtp_proto::proxy::decode_with`).
//!
//! The input is the first octets of a connection. It is decoded with the
//! default limits and with a small v2 limit (64 octets), and the target
//! asserts:
//!
//! - the outcome (header and octets consumed, or the error) is the same
//!   under every cut of [`crate::split::cuts`], for a caller that appends
//!   each piece to its buffer and decodes again;
//! - a reader that reads exactly the octets `Incomplete` asks for reaches
//!   the same outcome and never reads past the end of the header;
//! - a complete header takes at most 107 octets (v1) or the v2 limit, and
//!   is decided by its own octets: decoding just them gives the same
//!   header, and any octets after it change nothing;
//! - a header has addresses only for the IP families, and they are of the
//!   announced family; `client_address` falls back to the peer otherwise;
//!   the TLVs fill the rest of a v2 header exactly;
//! - a v1 header with addresses, written back in canonical form, decodes
//!   to the same addresses.

use std::net::SocketAddr;

use smtp_proto::proxy::{
    decode_with, Decoded, ProxyConfig, ProxyError, ProxyFamily, ProxyHeader, ProxyVersion,
    V1_MAX_LEN, V2_FIXED_LEN,
};

use crate::split::check_split_invariance;

/// What decoding a connection's first octets came to, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A header and the octets it took.
    Header(ProxyHeader<'static>, usize),
    /// The header is refused.
    Error(ProxyError),
    /// The input ended before the header did.
    Incomplete,
}

/// Appends each piece to a buffer and decodes after each, as a caller that
/// reads whatever arrives does.
fn decode_pieces(pieces: &[&[u8]], config: &ProxyConfig) -> Outcome {
    let mut buf = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        match decode_with(&buf, config) {
            Ok(Decoded::Incomplete { .. }) => {}
            Ok(Decoded::Complete { header, consumed }) => {
                return Outcome::Header(header.into_owned(), consumed)
            }
            Err(e) => return Outcome::Error(e),
        }
    }
    if buf.is_empty() {
        // The empty input must be answered too.
        assert!(matches!(
            decode_with(&buf, config),
            Ok(Decoded::Incomplete { .. })
        ));
    }
    Outcome::Incomplete
}

/// Reads `data` exactly as `Incomplete` asks (or what is left of it, when
/// less); returns the outcome and the octets read.
fn read_as_asked(data: &[u8], config: &ProxyConfig) -> (Outcome, usize) {
    let mut read = 0;
    // Each round reads at least one octet, so this ends.
    for _ in 0..=data.len() {
        match decode_with(&data[..read], config) {
            Ok(Decoded::Incomplete { needed }) => {
                if read == data.len() {
                    return (Outcome::Incomplete, read);
                }
                // At the end of the input, a socket hands over what is left.
                read = (read + needed.get()).min(data.len());
            }
            Ok(Decoded::Complete { header, consumed }) => {
                return (Outcome::Header(header.into_owned(), consumed), read)
            }
            Err(e) => return (Outcome::Error(e), read),
        }
    }
    panic!("the reader did not finish in {} rounds", data.len() + 1);
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let mut small = ProxyConfig::default();
    small.max_v2_len = 64;
    for config in [ProxyConfig::default(), small] {
        let whole = check_split_invariance(data, |pieces| decode_pieces(pieces, &config));
        let (asked, read) = read_as_asked(data, &config);
        match &whole {
            Outcome::Header(header, consumed) => {
                assert_eq!(asked, whole, "the exact reader disagrees");
                assert_eq!(read, *consumed, "the exact reader read past the header");
                check_header(data, header, *consumed, &config);
            }
            Outcome::Error(_) => assert_eq!(asked, whole, "the exact reader disagrees"),
            Outcome::Incomplete => {
                assert_eq!(asked, Outcome::Incomplete);
                assert!(data.len() < V1_MAX_LEN.max(config.max_v2_len));
            }
        }
    }
}

/// Asserts the properties of one complete header.
fn check_header(data: &[u8], header: &ProxyHeader<'_>, consumed: usize, config: &ProxyConfig) {
    assert!(consumed <= data.len());
    let own = &data[..consumed];
    match decode_with(own, config) {
        Ok(Decoded::Complete {
            header: again,
            consumed: n,
        }) => {
            assert_eq!(n, consumed);
            assert_eq!(&again, header, "the header alone decodes differently");
        }
        other => panic!("the header alone gives {other:?}"),
    }
    let peer: SocketAddr = "127.0.0.1:25".parse().expect("an address");
    match header.family() {
        ProxyFamily::Inet | ProxyFamily::Inet6 => {
            let v4 = header.family() == ProxyFamily::Inet;
            let (src, dst) = (
                header.source().expect("an IP family has a source"),
                header
                    .destination()
                    .expect("an IP family has a destination"),
            );
            assert_eq!(src.is_ipv4(), v4);
            assert_eq!(dst.is_ipv4(), v4);
            assert_eq!(header.client_address(peer), src);
        }
        _ => {
            assert_eq!(header.source(), None);
            assert_eq!(header.destination(), None);
            assert_eq!(header.client_address(peer), peer);
        }
    }
    match header.version() {
        ProxyVersion::V1 => {
            assert!(consumed <= V1_MAX_LEN);
            assert!(own.starts_with(b"PROXY ") && own.ends_with(b"\r\n"));
            assert_eq!(header.tlvs().count(), 0);
            if let (Some(src), Some(dst)) = (header.source(), header.destination()) {
                let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
                let line = format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    src.ip(),
                    dst.ip(),
                    src.port(),
                    dst.port()
                );
                match decode_with(line.as_bytes(), config) {
                    Ok(Decoded::Complete {
                        header: again,
                        consumed,
                    }) => {
                        assert_eq!(consumed, line.len());
                        assert_eq!(again.source(), Some(src));
                        assert_eq!(again.destination(), Some(dst));
                    }
                    other => panic!("canonical {line:?} gives {other:?}"),
                }
            }
        }
        ProxyVersion::V2 => {
            assert!(consumed >= V2_FIXED_LEN && consumed <= config.max_v2_len);
            let address_len = match header.family() {
                ProxyFamily::Inet => 12,
                ProxyFamily::Inet6 => 36,
                ProxyFamily::Unix => 216,
                _ => consumed - V2_FIXED_LEN,
            };
            let tlv_len: usize = header.tlvs().map(|t| 3 + t.value.len()).sum();
            if header.family() == ProxyFamily::Unspecified {
                assert_eq!(tlv_len, 0);
            } else {
                assert_eq!(V2_FIXED_LEN + address_len + tlv_len, consumed);
            }
        }
        _ => panic!("unknown version"),
    }
}
