//! Server configuration: what EHLO advertises and every limit.

use crate::data::BareEndingPolicy;
use crate::sasl::SaslMechanism;
use crate::session::Timeouts;

/// What the server offers and enforces.
///
/// Build it with [`ServerConfig::new`] (or `Default`, hostname
/// `localhost`) and adjust the public fields.
///
/// ```
/// use smtp_proto::server::ServerConfig;
/// use smtp_proto::sasl::SaslMechanism;
///
/// let mut config = ServerConfig::new("mx.example.com");
/// config.max_message_size = Some(10 * 1024 * 1024);
/// config.starttls = true;
/// config.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
/// // AUTH is offered only once STARTTLS has run (the default).
/// assert!(config.auth_requires_tls);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The server's host name, used in the greeting and the EHLO reply.
    pub hostname: String,
    /// Speak LMTP (RFC 2033): LHLO instead of EHLO/HELO, one reply per
    /// recipient after the message. RFC 2033 §5 requires an LMTP server to
    /// implement PIPELINING and ENHANCEDSTATUSCODES: keep `pipelining` and
    /// `enhanced_status_codes` on (the defaults). The session does not
    /// refuse a configuration without them, as the example session of RFC
    /// 2033 §4.2 advertises no ENHANCEDSTATUSCODES.
    pub lmtp: bool,
    /// Advertise PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Advertise `SIZE n` (RFC 1870) and refuse larger messages; `None`
    /// advertises nothing and sets no limit, and then the `SIZE=`
    /// parameter of MAIL, being of an extension not advertised, gets
    /// `555 5.5.4` ([`Rejection::ParameterNotAdvertised`](super::Rejection::ParameterNotAdvertised)).
    /// `Some(0)` is refused by
    /// [`ServerSession::new`](super::ServerSession::new): `SIZE 0` tells
    /// clients there is no fixed limit. Other small limits are taken as
    /// given, though RFC 5321 §4.5.3.1.7 wants a server to take messages
    /// of "at least 64K octets": below 65536, conforming mail is refused.
    pub max_message_size: Option<u64>,
    /// Advertise 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// Advertise SMTPUTF8 (RFC 6531); needs `eight_bit_mime`, which RFC
    /// 6531 §3.1 requires with it ([`ServerSession::new`](super::ServerSession::new)
    /// refuses the configuration otherwise).
    pub smtputf8: bool,
    /// Advertise STARTTLS (RFC 3207) while TLS is not yet up. Set it only
    /// when the caller can run a TLS handshake. While the handshake cannot
    /// be run for a time, decline it per session with
    /// [`ServerSession::set_starttls_available`](super::ServerSession::set_starttls_available)
    /// (`454 4.7.0`) rather than turning this off (`502 5.5.1`).
    pub starttls: bool,
    /// The connection is encrypted from its first byte (implicit TLS, RFC
    /// 8314 §3.3, the submissions port 465): the session starts with TLS
    /// up, so it never offers STARTTLS, answers a STARTTLS command with
    /// `503 5.5.1`, and offers AUTH and REQUIRETLS as it would after
    /// STARTTLS. The caller runs the handshake before the greeting (the
    /// adapters' `serve` does, with their TLS acceptor).
    pub implicit_tls: bool,
    /// SASL mechanisms advertised with AUTH (RFC 4954); empty for no AUTH.
    pub auth_mechanisms: Vec<SaslMechanism>,
    /// Offer AUTH only once TLS is up: after STARTTLS, or from the start
    /// with [`implicit_tls`](Self::implicit_tls). Before, EHLO advertises no
    /// AUTH and an AUTH command gets `538 5.7.11 Encryption required for
    /// requested authentication mechanism` (RFC 4954 §6), reported as
    /// [`Rejection::AuthNeedsTls`](super::Rejection::AuthNeedsTls), and a
    /// MAIL `AUTH=` parameter is refused as for a server without AUTH.
    ///
    /// On by default: PLAIN and LOGIN carry the password in the clear, and
    /// RFC 4954 §4 and RFC 8314 advise against accepting it over a
    /// connection without TLS. Set it to `false` to offer AUTH over plain
    /// text too (a test, a loopback relay, a mechanism that sends no
    /// password). With `auth_mechanisms`, this on and no way to TLS
    /// (neither [`starttls`](Self::starttls) nor `implicit_tls`),
    /// [`ServerSession::new`](super::ServerSession::new) refuses the
    /// configuration: AUTH could never be offered (and with
    /// [`auth_required`](Self::auth_required) no client could ever send
    /// mail).
    pub auth_requires_tls: bool,
    /// Require a successful AUTH before mail is accepted, as a submission
    /// server does (RFC 6409 §4.3): until then MAIL, VRFY and EXPN get
    /// `530 5.7.0 Authentication required` (RFC 4954 §6), reported as
    /// [`Rejection::AuthRequired`](super::Rejection::AuthRequired) and
    /// counted toward [`max_errors`](Self::max_errors); RCPT, DATA and
    /// BDAT then find no transaction (503). EHLO, HELO, NOOP, RSET, HELP,
    /// STARTTLS, AUTH and QUIT work as usual. Needs `auth_mechanisms`
    /// ([`ServerSession::new`](super::ServerSession::new) refuses the
    /// configuration otherwise), and, with
    /// [`auth_requires_tls`](Self::auth_requires_tls) (the default),
    /// [`starttls`](Self::starttls) or [`implicit_tls`](Self::implicit_tls).
    pub auth_required: bool,
    /// Challenges the application may send in one exchange of a
    /// [`SaslMechanism::Custom`] mechanism; asking for one more ends the
    /// exchange with `535 5.7.8` (see
    /// [`ServerSession::auth_challenge`](super::ServerSession::auth_challenge)).
    pub max_auth_rounds: usize,
    /// Advertise CHUNKING (BDAT, RFC 3030).
    pub chunking: bool,
    /// Advertise BINARYMIME (RFC 3030 §3); needs `chunking`, which RFC
    /// 3030 §3 requires with it ([`ServerSession::new`](super::ServerSession::new)
    /// refuses the configuration otherwise).
    pub binarymime: bool,
    /// Advertise ENHANCEDSTATUSCODES (RFC 2034) and put the codes in the
    /// replies the machine writes, but for 3xx replies, the greeting (or a
    /// 421 sent in its place) and any reply to HELO, EHLO or LHLO, a
    /// refusal too (RFC 2034 §3). Replies the application gives are sent
    /// as given.
    pub enhanced_status_codes: bool,
    /// Advertise DSN (RFC 3461) and accept its parameters.
    pub dsn: bool,
    /// Advertise REQUIRETLS (RFC 8689) once TLS is up.
    pub requiretls: bool,
    /// Advertise `LIMITS` (RFC 9422): `RCPTMAX=n` from `max_recipients`,
    /// `MAILMAX=n` from `max_transactions` and `RCPTDOMAINMAX=n` from
    /// `max_recipient_domains` when they are set; a value past `u32::MAX`
    /// is advertised as `u32::MAX`.
    pub limits: bool,
    /// Recipients accepted per message; more get 452 4.5.3 (RFC 5321
    /// §4.5.3.1.8 requires at least 100; §4.5.3.1.10 gives the 452).
    pub max_recipients: usize,
    /// MAIL commands accepted per connection, every one counted whatever
    /// its outcome (RFC 9422 §4.1), STARTTLS or not. The one after the
    /// last gets `421 4.7.0 <hostname> Too many messages on this
    /// connection, closing` and the session closes, so the client goes on
    /// over a new connection. `None` (the default): no limit. At least 1.
    pub max_transactions: Option<usize>,
    /// Distinct domains among a message's accepted recipients (RFC 9422
    /// §4.3), compared without regard to ASCII case (`<Postmaster>` names
    /// none): a RCPT in one more domain gets `452 4.5.3 Too many recipient
    /// domains`, and the client sends it in another transaction. `None`
    /// (the default): no limit. At least 1.
    pub max_recipient_domains: Option<usize>,
    /// Errors answered by the machine before it replies 421 and closes.
    pub max_errors: usize,
    /// Failed authentications per connection (AUTH exchanges the
    /// application refused with a 5xx, or that ran out of rounds) before
    /// the session replies `421 4.7.0` and closes: a password guesser gets
    /// this many tries per connection. At least 1.
    pub max_auth_failures: usize,
    /// Longest command line, CRLF included.
    pub max_line_length: usize,
    /// Longest AUTH command or SASL response line (RFC 4954 §4: 12288).
    pub max_auth_line_length: usize,
    /// Longest DATA body line without CRLF (998, RFC 5322 §2.1.1), not
    /// counting the leading dot doubled for transparency (RFC 5321
    /// §4.5.3.1.6). RFC 5321 §4.5.3.1 wants every implementation to
    /// receive lines of that length: a lower value refuses conforming
    /// mail. BDAT chunks are not checked.
    pub max_data_line_length: usize,
    /// Bare CR / LF policy inside DATA (BDAT chunks are handed out as
    /// sent).
    pub bare_endings: BareEndingPolicy,
    /// Hand MAIL and RCPT parameters this crate does not know (`XVERP`,
    /// `X-FOO=bar`) to the application, in `params.other` of
    /// [`ServerEvent::Mail`](super::ServerEvent::Mail) and
    /// [`ServerEvent::Rcpt`](super::ServerEvent::Rcpt), to judge (on by
    /// default): it answers `555` to one it does not implement (RFC 5321
    /// §4.1.1.11). Off, the machine answers such a command `555 5.5.4`
    /// itself ([`Rejection::UnknownParameter`](super::Rejection::UnknownParameter)),
    /// for an application that implements no parameter of its own and
    /// should not have to look.
    pub unknown_parameters: bool,
    /// Timeouts reported by [`ServerSession::timeout`](super::ServerSession::timeout).
    pub timeouts: Timeouts,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::new("localhost")
    }
}

impl ServerConfig {
    /// The defaults: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, CHUNKING on;
    /// no SIZE (neither a limit nor the extension: a MAIL with a `SIZE=`
    /// parameter gets `555 5.5.4` until
    /// [`max_message_size`](Self::max_message_size) is set), no STARTTLS,
    /// no AUTH (nor any required); AUTH, once `auth_mechanisms` are set,
    /// only over TLS ([`auth_requires_tls`](Self::auth_requires_tls)); 100
    /// recipients, 10 errors, 3 failed authentications, 1024-octet command
    /// lines, 10 challenges per custom SASL exchange.
    #[must_use]
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            lmtp: false,
            pipelining: true,
            max_message_size: None,
            eight_bit_mime: true,
            smtputf8: false,
            starttls: false,
            implicit_tls: false,
            auth_mechanisms: Vec::new(),
            auth_requires_tls: true,
            auth_required: false,
            max_auth_rounds: 10,
            chunking: true,
            binarymime: false,
            enhanced_status_codes: true,
            dsn: false,
            requiretls: false,
            limits: false,
            max_recipients: 100,
            max_transactions: None,
            max_recipient_domains: None,
            max_errors: 10,
            max_auth_failures: 3,
            max_line_length: 1024,
            max_auth_line_length: 12288,
            max_data_line_length: 998,
            bare_endings: BareEndingPolicy::Reject,
            unknown_parameters: true,
            timeouts: Timeouts::default(),
        }
    }
}
