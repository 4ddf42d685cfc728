//! Client configuration.

use crate::command::Domain;
use crate::reply::DecoderConfig;
use crate::session::Timeouts;

/// Which greeting command the client uses: SMTP (EHLO, falling back to
/// HELO) or LMTP (LHLO, RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// SMTP / ESMTP (RFC 5321).
    #[default]
    Smtp,
    /// LMTP (RFC 2033): LHLO, and one reply per accepted recipient after
    /// the message.
    Lmtp,
}

/// What the client does about STARTTLS (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Use STARTTLS when the server offers it and the caller can run the
    /// handshake; go on in plain text when the server does not offer it,
    /// when it refuses the command, or when the caller has no TLS
    /// configuration (see [`Client::set_can_start_tls`]: the adapters'
    /// drivers without a TLS connector). A handshake that fails after the
    /// server's `220` ends the connection, which cannot be used after it;
    /// see the adapters' `send` for sending again in plain text.
    ///
    /// [`Client::set_can_start_tls`]: super::Client::set_can_start_tls
    #[default]
    Opportunistic,
    /// Use STARTTLS; when the server does not offer it or refuses it, the
    /// client sends QUIT and the session ends.
    Required,
    /// Never send STARTTLS.
    Off,
}

/// When the client uses BDAT (RFC 3030) instead of DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChunkingPolicy {
    /// BDAT whenever the server advertises CHUNKING.
    Prefer,
    /// DATA, unless the message is `BODY=BINARYMIME`, which needs BDAT.
    #[default]
    WhenNeeded,
    /// Never BDAT; a BINARYMIME message is refused locally.
    Never,
}

/// Configuration of a [`Client`](super::Client).
///
/// [`ClientConfig::hello_domain`] must be ASCII: a domain in A-labels
/// (`xn--bcher-kva.example`, not `bücher.example`) or an address literal.
/// The core does no IDNA conversion; [`ClientConfig::check`] tells whether
/// a configuration is usable, and a [`Client`](super::Client) built from
/// one that is not refuses to start (see [`ConfigError`]).
///
/// ```
/// use smtp_proto::client::{ClientConfig, TlsPolicy};
/// use smtp_proto::command::Domain;
///
/// let config = ClientConfig::new(Domain::new("client.example.net").unwrap())
///     .with_tls(TlsPolicy::Required);
/// assert_eq!(config.hello_domain.as_str(), "client.example.net");
/// assert!(!config.allow_auth_without_tls);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The domain (or address literal) sent with EHLO, HELO or LHLO.
    ///
    /// It must be ASCII, with internationalized labels as A-labels
    /// (`xn--...`): EHLO goes out before the client can know whether the
    /// server offers SMTPUTF8, and RFC 5321 §4.1.1.1 takes an ASCII
    /// `Domain` there (RFC 6531 allows U-labels only once SMTPUTF8 is in
    /// use). A UTF-8 domain is refused with
    /// [`ConfigError::NonAsciiHelloDomain`] before anything is sent.
    ///
    /// A client without a name of its own gives an address literal
    /// (`[192.0.2.7]`, RFC 5321 §2.3.5, §4.1.3). When the server refuses
    /// EHLO (500 or 502), the same value goes with HELO, literal included,
    /// although `helo = "HELO" SP Domain CRLF` (§4.1.1.1) names no literal:
    /// the client has nothing else to send, servers take a literal there
    /// (this crate's does), and other clients (Python's `smtplib`) do the
    /// same. A server that refuses it is answered with QUIT and reported as
    /// [`ClientEvent::HelloRejected`](super::ClientEvent::HelloRejected).
    pub hello_domain: Domain<'static>,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// The connection is already encrypted (implicit TLS, RFC 8314): no
    /// STARTTLS, and authentication is allowed.
    pub implicit_tls: bool,
    /// When to use BDAT.
    pub chunking: ChunkingPolicy,
    /// Use PIPELINING (RFC 2920) when the server offers it.
    pub pipelining: bool,
    /// Allow AUTH on a connection that is not encrypted. Off by default:
    /// PLAIN and LOGIN would send the password in the clear.
    pub allow_auth_without_tls: bool,
    /// The most `334` challenges the client takes in one exchange of a
    /// custom SASL mechanism ([`AuthCredentials::Custom`]); the client
    /// answers one more with `*` and reports
    /// [`AuthFailure::TooManyRounds`]. Default 10.
    ///
    /// [`AuthCredentials::Custom`]: super::AuthCredentials::Custom
    /// [`AuthFailure::TooManyRounds`]: super::AuthFailure::TooManyRounds
    pub max_auth_rounds: usize,
    /// Limits of the reply decoder. By default a reply line may have
    /// [`DecoderConfig::DEFAULT_MAX_LINE_LEN`] octets (2048, more than the
    /// 512 of RFC 5321 §4.5.3.1.5, which servers pass), and a whole reply
    /// [`DecoderConfig::DEFAULT_MAX_REPLY_LEN`] (32 KiB). The replies of an
    /// AUTH exchange may take lines of up to 12288 octets whatever these
    /// limits say (RFC 4954 §4: a client "MUST be able to handle the
    /// maximum encoded size of challenges").
    pub replies: DecoderConfig,
    /// The RFC 5321 §4.5.3.2 timeouts reported by
    /// [`Client::timeout`](super::Client::timeout).
    pub timeouts: Timeouts,
}

impl ClientConfig {
    /// A configuration with the given hello domain and defaults for the
    /// rest.
    #[must_use]
    pub fn new(hello_domain: Domain<'static>) -> Self {
        Self {
            hello_domain,
            protocol: Protocol::Smtp,
            tls: TlsPolicy::Opportunistic,
            implicit_tls: false,
            chunking: ChunkingPolicy::WhenNeeded,
            pipelining: true,
            allow_auth_without_tls: false,
            max_auth_rounds: 10,
            replies: DecoderConfig::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Checks that the configuration can be used: the
    /// [`ClientConfig::hello_domain`] is ASCII. A [`Client`](super::Client)
    /// runs this check itself and refuses to start when it fails
    /// ([`ClientError::Config`](super::ClientError::Config)); call it to
    /// find out before connecting.
    ///
    /// ```
    /// use smtp_proto::client::{ClientConfig, ConfigError};
    /// use smtp_proto::command::Domain;
    ///
    /// let ok = ClientConfig::new(Domain::new("xn--bcher-kva.example").unwrap());
    /// assert_eq!(ok.check(), Ok(()));
    /// let utf8 = ClientConfig::new(Domain::new("bücher.example").unwrap());
    /// assert_eq!(utf8.check(), Err(ConfigError::NonAsciiHelloDomain));
    /// ```
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.hello_domain.is_utf8() {
            return Err(ConfigError::NonAsciiHelloDomain);
        }
        Ok(())
    }

    /// Sets [`ClientConfig::protocol`].
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets [`ClientConfig::tls`].
    #[must_use]
    pub fn with_tls(mut self, tls: TlsPolicy) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`ClientConfig::implicit_tls`].
    #[must_use]
    pub fn with_implicit_tls(mut self, on: bool) -> Self {
        self.implicit_tls = on;
        self
    }

    /// Sets [`ClientConfig::chunking`].
    #[must_use]
    pub fn with_chunking(mut self, chunking: ChunkingPolicy) -> Self {
        self.chunking = chunking;
        self
    }

    /// Sets [`ClientConfig::pipelining`].
    #[must_use]
    pub fn with_pipelining(mut self, on: bool) -> Self {
        self.pipelining = on;
        self
    }

    /// Sets [`ClientConfig::allow_auth_without_tls`].
    #[must_use]
    pub fn with_auth_without_tls(mut self, on: bool) -> Self {
        self.allow_auth_without_tls = on;
        self
    }

    /// Sets [`ClientConfig::max_auth_rounds`].
    #[must_use]
    pub fn with_max_auth_rounds(mut self, rounds: usize) -> Self {
        self.max_auth_rounds = rounds;
        self
    }

    /// Sets [`ClientConfig::timeouts`].
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets [`ClientConfig::replies`].
    #[must_use]
    pub fn with_reply_limits(mut self, replies: DecoderConfig) -> Self {
        self.replies = replies;
        self
    }
}

impl Default for ClientConfig {
    /// Hello domain `localhost`; set a real one with [`ClientConfig::new`].
    fn default() -> Self {
        // "localhost" is a valid Domain.
        Self::new(Domain(std::borrow::Cow::Borrowed("localhost")))
    }
}

/// A [`ClientConfig`] the client cannot use; see [`ClientConfig::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`ClientConfig::hello_domain`] holds UTF-8 (U-labels). EHLO, HELO
    /// and LHLO take an ASCII domain (RFC 5321 §4.1.1.1: `"EHLO" SP (
    /// Domain / address-literal ) CRLF`, `Domain` being letters, digits
    /// and hyphens); convert it to A-labels (`xn--...`) first.
    #[error("the hello domain must be ASCII (A-labels), not UTF-8")]
    NonAsciiHelloDomain,
}
