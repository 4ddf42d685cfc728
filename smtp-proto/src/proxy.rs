//! The PROXY protocol header (versions 1 and 2) that TCP load balancers
//! (HAProxy, AWS NLB, ...) send before the client's own bytes, to tell the
//! server the real client address.
//!
//! Pure parsing: [`decode`] looks at the bytes received so far on a fresh
//! connection and answers one of
//!
//! - [`Decoded::Incomplete`]: not enough bytes yet, with the number of octets
//!   that are certainly still part of the header. A reader that reads exactly
//!   that many before asking again never reads past the header, so the
//!   client's first SMTP or TLS bytes, which may arrive in the same TCP
//!   segment, stay in the socket for the session;
//! - [`Decoded::Complete`]: a whole header, with the number of octets it took;
//! - a [`ProxyError`]: not a PROXY header at all, or a malformed one. The
//!   connection should be closed without a greeting.
//!
//! Memory is bounded: a version 1 header is at most [`V1_MAX_LEN`] octets, a
//! version 2 header at most [`ProxyConfig::max_v2_len`] octets, and decoding
//! allocates nothing.
//!
//! Version 1 (text):
//!
//! ```text
//! "PROXY" SP ( "TCP4" / "TCP6" ) SP src-address SP dst-address SP src-port SP dst-port CRLF
//! "PROXY" SP "UNKNOWN" [ ( SP / CR ) *OCTET ] CRLF
//!                                   at most 107 octets, CRLF included
//! port = "0" / ( %x31-39 *4DIGIT )  from 0 to 65535, no leading zero
//! ```
//!
//! The family is the octets after `PROXY ` up to the first SP or CR. An
//! `UNKNOWN` header ends at its first CRLF, and the octets between the
//! family and that CRLF are ignored, whatever they are: a CR not followed
//! by LF and a bare LF are part of them. A `TCP4` or `TCP6` header ends at
//! its first CR, which must be followed by LF; a LF before that CR is an
//! error.
//!
//! Version 2 (binary):
//!
//! ```text
//! signature   12 octets  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//! ver_cmd      1 octet   high nibble: version (2); low nibble: command
//!                        (0 LOCAL, 1 PROXY)
//! fam          1 octet   high nibble: address family (0 UNSPEC, 1 INET,
//!                        2 INET6, 3 UNIX); low nibble: transport
//!                        (0 UNSPEC, 1 STREAM, 2 DGRAM)
//! len          2 octets  length of what follows, network byte order
//! addresses    INET: src 4, dst 4, src port 2, dst port 2       (12 octets)
//!              INET6: src 16, dst 16, src port 2, dst port 2    (36 octets)
//!              UNIX: src path 108, dst path 108                 (216 octets)
//! TLVs         the rest: type 1 octet, length 2 octets, value
//! ```
//!
//! A v1 `UNKNOWN` header and a v2 `LOCAL` header carry no client address:
//! the connection's own peer address is the one to use
//! ([`ProxyHeader::client_address`] does that choice).
//!
//! ```
//! use smtp_proto::proxy::{decode, Decoded, ProxyVersion};
//!
//! let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO client.example\r\n";
//! let Decoded::Complete { header, consumed } = decode(input).unwrap() else {
//!     panic!("incomplete")
//! };
//! assert_eq!(header.version(), ProxyVersion::V1);
//! assert_eq!(header.source().unwrap().to_string(), "192.0.2.7:56324");
//! assert_eq!(&input[consumed..], b"EHLO client.example\r\n");
//!
//! // The first octets of a v2 header: 13 of the 16 fixed octets, so read 3 more.
//! let start = b"\r\n\r\n\0\r\nQUIT\n!";
//! match decode(start).unwrap() {
//!     Decoded::Incomplete { needed } => assert_eq!(needed.get(), 3),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroUsize;

/// The most octets a version 1 header may take, CRLF included.
pub const V1_MAX_LEN: usize = 107;

/// The shortest possible version 1 header, `PROXY UNKNOWN` CRLF: 15 octets.
/// It is one octet shorter than the fixed part of a version 2 header, which
/// is why [`decode`] asks for 15 octets, not 16, on an empty input.
pub const V1_MIN_LEN: usize = 15;

/// The 12-octet signature that starts every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a version 2 header (signature, `ver_cmd`, `fam`, `len`):
/// after these 16 octets the length of the whole header is known.
pub const V2_FIXED_LEN: usize = 16;

/// The default of [`ProxyConfig::max_v2_len`].
pub const DEFAULT_V2_MAX_LEN: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V1_UNKNOWN: &[u8] = b"UNKNOWN";
const INET_LEN: usize = 12;
const INET6_LEN: usize = 36;
const UNIX_LEN: usize = 216;

/// Settings of [`decode_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The longest version 2 header accepted, fixed part included, in octets.
    /// Longer ones (the format allows 16 + 65535) are refused with
    /// [`ProxyError::V2TooLong`] as soon as their length is known, so a
    /// reader never buffers more than this. Default [`DEFAULT_V2_MAX_LEN`].
    pub max_v2_len: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_v2_len: DEFAULT_V2_MAX_LEN,
        }
    }
}

/// The protocol version a header was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyVersion {
    /// The text form.
    V1,
    /// The binary form.
    V2,
}

/// What the proxy says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyCommand {
    /// The connection was relayed for a client (v1 always, v2 `PROXY`).
    Proxy,
    /// v2 `LOCAL`: the proxy opened the connection on its own behalf (a
    /// health check); the connection's own endpoints are the real ones.
    Local,
}

/// The address family a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyFamily {
    /// v1 `UNKNOWN`, v2 `AF_UNSPEC`, and every v2 `LOCAL` header (whose
    /// address block the receiver must ignore): no address.
    Unspecified,
    /// v1 `TCP4`, v2 `AF_INET`.
    Inet,
    /// v1 `TCP6`, v2 `AF_INET6`.
    Inet6,
    /// v2 `AF_UNIX`: socket paths, which carry no IP address.
    Unix,
}

/// A complete PROXY header.
///
/// Borrows the v2 TLV block from the input; [`ProxyHeader::into_owned`]
/// copies it for callers that keep the header after the buffer moves on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyHeader<'a> {
    version: ProxyVersion,
    command: ProxyCommand,
    family: ProxyFamily,
    datagram: bool,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
    /// Well-formed TLVs (checked by the decoder).
    tlvs: Cow<'a, [u8]>,
}

impl<'a> ProxyHeader<'a> {
    /// The version the header was written in.
    #[must_use]
    pub fn version(&self) -> ProxyVersion {
        self.version
    }

    /// `PROXY` (relayed) or `LOCAL` (the proxy's own connection).
    #[must_use]
    pub fn command(&self) -> ProxyCommand {
        self.command
    }

    /// The address family announced ([`ProxyFamily::Unspecified`] for
    /// `LOCAL`, whose address block is ignored).
    #[must_use]
    pub fn family(&self) -> ProxyFamily {
        self.family
    }

    /// Whether a v2 header announced a datagram (UDP) transport; `false` for
    /// stream (TCP) and unspecified transports and for every v1 header.
    #[must_use]
    pub fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// The real client's address and port, when the header gives one (v1
    /// `TCP4`/`TCP6`, v2 `PROXY` over `AF_INET`/`AF_INET6`).
    #[must_use]
    pub fn source(&self) -> Option<SocketAddr> {
        self.source
    }

    /// The address and port the client connected to (the proxy's listener),
    /// when the header gives one.
    #[must_use]
    pub fn destination(&self) -> Option<SocketAddr> {
        self.destination
    }

    /// The client address to use for a connection whose socket peer is
    /// `peer`: the header's [`source`](Self::source) when it has one, else
    /// `peer` (v1 `UNKNOWN`, v2 `LOCAL`, `AF_UNSPEC`, `AF_UNIX`).
    ///
    /// ```
    /// use smtp_proto::proxy::{decode, Decoded};
    ///
    /// let peer = "127.0.0.1:40000".parse().unwrap();
    /// let Decoded::Complete { header, .. } = decode(b"PROXY UNKNOWN\r\n").unwrap() else {
    ///     panic!()
    /// };
    /// assert_eq!(header.client_address(peer), peer);
    /// ```
    #[must_use]
    pub fn client_address(&self, peer: SocketAddr) -> SocketAddr {
        self.source.unwrap_or(peer)
    }

    /// The v2 TLVs (type-length-value extensions) after the addresses, in
    /// order; none for v1 and for `LOCAL` or `AF_UNSPEC` headers.
    pub fn tlvs(&self) -> Tlvs<'_> {
        Tlvs { rest: &self.tlvs }
    }

    /// The same header, owning its TLV block.
    #[must_use]
    pub fn into_owned(self) -> ProxyHeader<'static> {
        ProxyHeader {
            version: self.version,
            command: self.command,
            family: self.family,
            datagram: self.datagram,
            source: self.source,
            destination: self.destination,
            tlvs: Cow::Owned(self.tlvs.into_owned()),
        }
    }
}

/// One v2 TLV: a type octet and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// The type (`PP2_TYPE_ALPN` = 0x01, `PP2_TYPE_AUTHORITY` = 0x02, ...).
    pub kind: u8,
    /// The value.
    pub value: &'a [u8],
}

/// The TLVs of a v2 header, walked without allocating.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let (tlv, rest) = split_tlv(self.rest)?;
        self.rest = rest;
        Some(tlv)
    }
}

/// `TLV = type (1) length (2, network order) value (length)`; `None` when
/// `input` is empty or too short for the TLV it starts.
fn split_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&kind, rest) = input.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((Tlv { kind, value }, rest))
}

/// The answer of [`decode`].
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): a reader has to handle
/// both cases to know how many octets to read or to hand on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decoded<'a> {
    /// More octets are needed. The next `needed` octets are certainly part
    /// of the header (so reading exactly that many never reads past it);
    /// the header may need more after them.
    Incomplete {
        /// Octets that must still arrive, at least.
        needed: NonZeroUsize,
    },
    /// A complete header.
    Complete {
        /// The header.
        header: ProxyHeader<'a>,
        /// Octets the header took from the front of the input; what follows
        /// belongs to the client's session.
        consumed: usize,
    },
}

/// Why a reader of the first octets of a connection (the adapters'
/// `read_proxy_header`) got no PROXY header. The core reads nothing itself;
/// this is the error such readers share.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyReadError {
    /// The connection's first octets are not an acceptable PROXY header.
    #[error("bad PROXY header: {0}")]
    Invalid(#[from] ProxyError),
    /// The peer closed the connection before the header was complete.
    #[error("connection closed before the end of the PROXY header")]
    Closed,
    /// The header was not complete within the time limit.
    #[error("timed out reading the PROXY header")]
    TimedOut,
    /// Reading the socket failed.
    #[error("i/o error reading the PROXY header: {0}")]
    Io(#[source] std::io::Error),
}

/// Why a connection's first octets are not an acceptable PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The input starts with neither `PROXY ` nor the v2 signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// v1: no CRLF within the first 107 octets.
    #[error("PROXY v1 header longer than 107 octets")]
    V1TooLong,
    /// v1: the family is not `TCP4`, `TCP6` or `UNKNOWN`.
    #[error("PROXY v1 header with an unknown address family")]
    V1BadFamily,
    /// v1: a field is missing, there are too many, the separators are not
    /// single spaces, or a `TCP4`/`TCP6` header has a LF before its first
    /// CR or a CR not followed by LF.
    #[error("PROXY v1 header with a malformed field list")]
    V1Syntax,
    /// v1: an address is not a valid address of the announced family.
    #[error("PROXY v1 header with a bad address")]
    V1BadAddress,
    /// v1: a port is not a decimal number from 0 to 65535 written without
    /// leading zeros.
    #[error("PROXY v1 header with a bad port")]
    V1BadPort,
    /// v2: the version nibble is not 2.
    #[error("PROXY v2 header with version {0}")]
    V2BadVersion(u8),
    /// v2: the command nibble is neither LOCAL (0) nor PROXY (1).
    #[error("PROXY v2 header with unknown command {0}")]
    V2BadCommand(u8),
    /// v2: the family/transport octet is not one of the defined values.
    #[error("PROXY v2 header with unknown family/transport {0:#04x}")]
    V2BadFamily(u8),
    /// v2: the length is shorter than the address block of the family.
    #[error(
        "PROXY v2 header length {length} is too short for its address family ({needed} octets)"
    )]
    V2LengthTooShort {
        /// The `len` field.
        length: u16,
        /// The size of the family's address block.
        needed: u16,
    },
    /// v2: the whole header would be longer than [`ProxyConfig::max_v2_len`].
    #[error("PROXY v2 header of {length} octets is over the limit of {max}")]
    V2TooLong {
        /// The whole header's length (16 + `len`).
        length: usize,
        /// The configured limit.
        max: usize,
    },
    /// v2: the TLVs after the addresses do not fill the block exactly.
    #[error("PROXY v2 header with a truncated TLV")]
    V2BadTlv,
}

/// Decodes the PROXY header at the start of `input` with the default
/// [`ProxyConfig`]. See the [module documentation](self).
///
/// ```
/// use smtp_proto::proxy::{decode, ProxyError};
///
/// // A client that speaks SMTP at once, without the header it should send.
/// assert_eq!(decode(b"EHLO client.example\r\n"), Err(ProxyError::NotProxy));
/// // A port with a leading zero.
/// let bad = b"PROXY TCP4 192.0.2.7 198.51.100.1 056324 25\r\n";
/// assert_eq!(decode(bad), Err(ProxyError::V1BadPort));
/// ```
pub fn decode(input: &[u8]) -> Result<Decoded<'_>, ProxyError> {
    decode_with(input, &ProxyConfig::default())
}

/// Decodes the PROXY header at the start of `input`.
///
/// `input` holds the octets received so far on the connection, from its
/// first octet. The answer depends only on `input` (call again with the
/// longer input when more octets arrive), and is the same however the
/// octets were split on the way.
///
/// When errors are reported:
///
/// - as soon as the octets that show them have arrived: an input that
///   starts with neither `PROXY ` nor the v2 signature; a v1 family that is
///   not `TCP4`, `TCP6` or `UNKNOWN` (known once the octets after `PROXY `
///   can no longer be the start of one of them followed by SP or CR); a CR
///   right after `TCP4` or `TCP6`; the v2 version, command, family and
///   length, each once its octet(s) arrived; a LF before the first CR of
///   a `TCP4` or `TCP6` line, once it arrived;
/// - once the header is complete: a v1 `TCP4`/`TCP6` line's fields
///   (addresses, ports, their number and separators) when its CR and the
///   octet after it have arrived, and the v2 TLVs when the whole block has;
/// - [`ProxyError::V1TooLong`] once 107 octets hold no end of line.
///
/// A version 2 header with an `AUTHORITY` TLV (type 0x02), then the same
/// header refused under a lower [`ProxyConfig::max_v2_len`]:
///
/// ```
/// use smtp_proto::proxy::{decode_with, Decoded, ProxyConfig, ProxyError, Tlv, V2_SIGNATURE};
///
/// let mut input = V2_SIGNATURE.to_vec();
/// input.extend_from_slice(&[0x21, 0x11, 0, 17]); // v2 PROXY, TCP over IPv4, 17 octets
/// input.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1]); // source, destination
/// input.extend_from_slice(&[0xdc, 0x04, 0, 25]); // ports 56324 and 25
/// input.extend_from_slice(&[0x02, 0, 2, b'm', b'x']); // AUTHORITY "mx"
/// input.extend_from_slice(b"EHLO");
///
/// let config = ProxyConfig::default();
/// let Decoded::Complete { header, consumed } = decode_with(&input, &config).unwrap() else {
///     panic!("the header is complete");
/// };
/// assert_eq!(consumed, 33);
/// assert_eq!(header.source(), Some("192.0.2.7:56324".parse().unwrap()));
/// assert_eq!(header.destination(), Some("198.51.100.1:25".parse().unwrap()));
/// let tlvs: Vec<Tlv<'_>> = header.tlvs().collect();
/// assert_eq!(tlvs, [Tlv { kind: 0x02, value: b"mx" }]);
///
/// let mut small = ProxyConfig::default();
/// small.max_v2_len = 32;
/// assert_eq!(
///     decode_with(&input, &small),
///     Err(ProxyError::V2TooLong { length: 33, max: 32 })
/// );
/// ```
pub fn decode_with<'a>(input: &'a [u8], config: &ProxyConfig) -> Result<Decoded<'a>, ProxyError> {
    match input.first() {
        None => Ok(incomplete(V1_MIN_LEN)),
        Some(b'P') => decode_v1(input),
        Some(b'\r') => decode_v2(input, config),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

fn incomplete(needed: usize) -> Decoded<'static> {
    Decoded::Incomplete {
        needed: NonZeroUsize::new(needed).unwrap_or(NonZeroUsize::MIN),
    }
}

/// Whether `input` and `prefix` agree on their common length.
fn agrees(input: &[u8], prefix: &[u8]) -> bool {
    let n = input.len().min(prefix.len());
    input[..n] == prefix[..n]
}

fn decode_v1(input: &[u8]) -> Result<Decoded<'_>, ProxyError> {
    if !agrees(input, V1_PREFIX) {
        return Err(ProxyError::NotProxy);
    }
    let window = &input[..input.len().min(V1_MAX_LEN)];
    let Some(family) = v1_family(window)? else {
        return Ok(v1_incomplete(window));
    };
    if family == ProxyFamily::Unspecified {
        // "the receiver must ignore anything presented before the CRLF is
        // found": the first CRLF after the family ends the header, and a
        // lone CR or LF before it is part of what is ignored.
        let from = V1_PREFIX.len() + V1_UNKNOWN.len();
        let rest = window.get(from..).unwrap_or_default();
        return match memchr::memmem::find(rest, b"\r\n") {
            Some(at) => Ok(Decoded::Complete {
                header: ProxyHeader {
                    version: ProxyVersion::V1,
                    command: ProxyCommand::Proxy,
                    family: ProxyFamily::Unspecified,
                    datagram: false,
                    source: None,
                    destination: None,
                    tlvs: Cow::Borrowed(&[]),
                },
                consumed: from + at + 2,
            }),
            None if window.len() >= V1_MAX_LEN => Err(ProxyError::V1TooLong),
            None => Ok(v1_incomplete(window)),
        };
    }
    // The first CR or LF: a LF before the CR is a line ended the wrong way
    // ("the receiver must not tolerate a single CR or LF character to end
    // the line"), refused at once rather than after a wait for a CRLF that
    // may never come.
    let Some(cr) = memchr::memchr2(b'\r', b'\n', window) else {
        if window.len() >= V1_MAX_LEN {
            return Err(ProxyError::V1TooLong);
        }
        return Ok(v1_incomplete(window));
    };
    if window[cr] == b'\n' {
        return Err(ProxyError::V1Syntax);
    }
    match window.get(cr + 1) {
        None if cr + 1 >= V1_MAX_LEN => return Err(ProxyError::V1TooLong),
        None => return Ok(v1_incomplete(window)),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::V1Syntax),
    }
    // `v1_family` found `TCP4 ` or `TCP6 `: the fields start after it.
    let fields = window
        .get(V1_PREFIX.len() + 5..cr)
        .ok_or(ProxyError::V1Syntax)?;
    let header = parse_v1_fields(fields, family)?;
    Ok(Decoded::Complete {
        header,
        consumed: cr + 2,
    })
}

/// The answer for a v1 header whose end has not arrived: the end of line
/// is at least two octets away (one when the last octet is a CR), and the
/// header is at least [`V1_MIN_LEN`] long and at most [`V1_MAX_LEN`].
/// `input` is shorter than [`V1_MAX_LEN`].
fn v1_incomplete(input: &[u8]) -> Decoded<'static> {
    let to_end = if input.last() == Some(&b'\r') { 1 } else { 2 };
    incomplete(
        V1_MIN_LEN
            .saturating_sub(input.len())
            .max(to_end)
            .min(V1_MAX_LEN.saturating_sub(input.len())),
    )
}

/// The family of a v1 header that starts with `PROXY `: the octets after it
/// up to the first SP or CR. `Ok(None)` while they may still become one of
/// `TCP4`, `TCP6` or `UNKNOWN`; an error as soon as they cannot.
/// `TCP4`/`TCP6` must be followed by SP (their fields come next), `UNKNOWN`
/// by SP or CR.
fn v1_family(input: &[u8]) -> Result<Option<ProxyFamily>, ProxyError> {
    const FAMILIES: [(&[u8], ProxyFamily); 3] = [
        (b"TCP4", ProxyFamily::Inet),
        (b"TCP6", ProxyFamily::Inet6),
        (V1_UNKNOWN, ProxyFamily::Unspecified),
    ];
    let after = input.get(V1_PREFIX.len()..).unwrap_or_default();
    // The longest family and its separator.
    let after = &after[..after.len().min(V1_UNKNOWN.len() + 1)];
    let Some(end) = memchr::memchr2(b' ', b'\r', after) else {
        // Eight octets without SP or CR are never the start of one.
        return if FAMILIES.iter().any(|(name, _)| name.starts_with(after)) {
            Ok(None)
        } else {
            Err(ProxyError::V1BadFamily)
        };
    };
    let (token, separator) = (&after[..end], after[end]);
    let family = FAMILIES
        .iter()
        .find(|(name, _)| *name == token)
        .map(|&(_, family)| family)
        .ok_or(ProxyError::V1BadFamily)?;
    if family != ProxyFamily::Unspecified && separator != b' ' {
        // `PROXY TCP4` CR: the four fields are missing.
        return Err(ProxyError::V1Syntax);
    }
    Ok(Some(family))
}

/// `line` is a `TCP4`/`TCP6` header after `PROXY TCP4 ` and before CRLF.
fn parse_v1_fields(line: &[u8], family: ProxyFamily) -> Result<ProxyHeader<'static>, ProxyError> {
    let mut fields = line.split(|&b| b == b' ');
    let mut next = || fields.next().ok_or(ProxyError::V1Syntax);
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(ProxyError::V1Syntax);
    }
    let src = v1_address(src, family)?;
    let dst = v1_address(dst, family)?;
    let sport = v1_port(sport)?;
    let dport = v1_port(dport)?;
    Ok(ProxyHeader {
        version: ProxyVersion::V1,
        command: ProxyCommand::Proxy,
        family,
        datagram: false,
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
        tlvs: Cow::Borrowed(&[]),
    })
}

fn v1_address(field: &[u8], family: ProxyFamily) -> Result<IpAddr, ProxyError> {
    if field.is_empty() {
        return Err(ProxyError::V1Syntax);
    }
    let text = std::str::from_utf8(field).map_err(|_| ProxyError::V1BadAddress)?;
    match family {
        ProxyFamily::Inet => text.parse::<Ipv4Addr>().map(IpAddr::V4),
        _ => text.parse::<Ipv6Addr>().map(IpAddr::V6),
    }
    .map_err(|_| ProxyError::V1BadAddress)
}

/// A decimal number from 0 to 65535 (at most five digits), without leading
/// zeros: the format forbids them, `0` alone excepted.
fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    if field.is_empty() {
        return Err(ProxyError::V1Syntax);
    }
    if field.len() > 5 || !field.iter().all(u8::is_ascii_digit) {
        return Err(ProxyError::V1BadPort);
    }
    if field.len() > 1 && field.starts_with(b"0") {
        return Err(ProxyError::V1BadPort);
    }
    let value = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| ProxyError::V1BadPort)
}

fn decode_v2<'a>(input: &'a [u8], config: &ProxyConfig) -> Result<Decoded<'a>, ProxyError> {
    if !agrees(input, &V2_SIGNATURE) {
        return Err(ProxyError::NotProxy);
    }
    let command = match input.get(12) {
        None => return Ok(incomplete(V2_FIXED_LEN - input.len())),
        Some(&ver_cmd) => {
            if ver_cmd >> 4 != 2 {
                return Err(ProxyError::V2BadVersion(ver_cmd >> 4));
            }
            match ver_cmd & 0x0f {
                0 => ProxyCommand::Local,
                1 => ProxyCommand::Proxy,
                other => return Err(ProxyError::V2BadCommand(other)),
            }
        }
    };
    let Some(&fam) = input.get(13) else {
        return Ok(incomplete(V2_FIXED_LEN - input.len()));
    };
    // LOCAL: "the receiver must ... discard the protocol block including the
    // family", so its family is not checked.
    let (family, datagram, address_len) = match (command, fam) {
        (ProxyCommand::Local, _) | (_, 0x00) => (ProxyFamily::Unspecified, false, 0),
        (_, 0x11 | 0x12) => (ProxyFamily::Inet, fam == 0x12, INET_LEN),
        (_, 0x21 | 0x22) => (ProxyFamily::Inet6, fam == 0x22, INET6_LEN),
        (_, 0x31 | 0x32) => (ProxyFamily::Unix, fam == 0x32, UNIX_LEN),
        _ => return Err(ProxyError::V2BadFamily(fam)),
    };
    let Some(len) = input.get(14..16) else {
        return Ok(incomplete(V2_FIXED_LEN - input.len()));
    };
    let length = u16::from_be_bytes([len[0], len[1]]);
    let total = V2_FIXED_LEN + usize::from(length);
    if total > config.max_v2_len {
        return Err(ProxyError::V2TooLong {
            length: total,
            max: config.max_v2_len,
        });
    }
    if usize::from(length) < address_len {
        return Err(ProxyError::V2LengthTooShort {
            length,
            needed: u16::try_from(address_len).unwrap_or(u16::MAX),
        });
    }
    let Some(block) = input.get(V2_FIXED_LEN..total) else {
        return Ok(incomplete(total - input.len()));
    };
    let (addresses, tlvs) = block.split_at(address_len);
    let (source, destination) = match family {
        ProxyFamily::Inet => {
            let ip = |at: usize| {
                Ipv4Addr::new(
                    addresses[at],
                    addresses[at + 1],
                    addresses[at + 2],
                    addresses[at + 3],
                )
            };
            let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
            (
                Some(SocketAddr::V4(SocketAddrV4::new(ip(0), port(8)))),
                Some(SocketAddr::V4(SocketAddrV4::new(ip(4), port(10)))),
            )
        }
        ProxyFamily::Inet6 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addresses[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
            (
                Some(SocketAddr::V6(SocketAddrV6::new(ip(0), port(32), 0, 0))),
                Some(SocketAddr::V6(SocketAddrV6::new(ip(16), port(34), 0, 0))),
            )
        }
        _ => (None, None),
    };
    // LOCAL and AF_UNSPEC blocks are opaque: nothing in them is read.
    let tlvs: &[u8] = if family == ProxyFamily::Unspecified {
        &[]
    } else {
        let mut rest = tlvs;
        while !rest.is_empty() {
            rest = split_tlv(rest).ok_or(ProxyError::V2BadTlv)?.1;
        }
        tlvs
    };
    Ok(Decoded::Complete {
        header: ProxyHeader {
            version: ProxyVersion::V2,
            command,
            family,
            datagram,
            source,
            destination,
            tlvs: Cow::Borrowed(tlvs),
        },
        consumed: total,
    })
}
