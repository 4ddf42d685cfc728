//! SASL mechanisms for SMTP AUTH (RFC 4954): server-side decoders that turn
//! client responses into typed [`Credentials`], and client-side encoders
//! that build those responses.
//!
//! Both sides work on raw (already base64-decoded) bytes; the session
//! machines do the base64 framing. Secrets are held in [`Secret`], whose
//! `Debug` output is redacted, so logging an event never leaks a password
//! or token.
//!
//! ```
//! use smtp_proto::sasl::{self, Credentials, SaslMechanism, SaslServer, SaslStep};
//!
//! // Client side: build the PLAIN initial response.
//! let response = sasl::plain_response(None, "alice", "s3cret").unwrap();
//! assert_eq!(response, b"\0alice\0s3cret");
//!
//! // Server side: decode it.
//! let mut server = SaslServer::new(SaslMechanism::Plain);
//! let SaslStep::Done(creds) = server.start(Some(&response)).unwrap() else { panic!() };
//! let Credentials::Plain { authcid, password, .. } = &creds else { panic!() };
//! assert_eq!(authcid, "alice");
//! assert_eq!(password.expose(), "s3cret");
//! assert!(!format!("{creds:?}").contains("s3cret"));
//! ```

use core::fmt;

use crate::command::{Mechanism, MechanismName, ValueError};

/// A password or token. `Debug` prints `<redacted>`; read it with
/// [`Secret::expose`].
///
/// Two things it does not do. Its `==` is the plain comparison of two
/// strings, which stops at the first octet that differs: a server should
/// not compare a received password with a stored one by `==` (the time
/// taken tells an attacker how much of a guess was right) but check it
/// against a stored hash with a password-hashing function. And its memory
/// is freed, not wiped, when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Secret bytes, such as a SASL initial response computed by the
/// application. `Debug` prints `<redacted>`; read them with
/// [`SecretBytes::expose`]. As for [`Secret`], `==` is not a
/// constant-time comparison and the bytes are not wiped when dropped.
///
/// ```
/// use smtp_proto::sasl::SecretBytes;
/// let s = SecretBytes::new(b"hunter2".to_vec());
/// assert_eq!(s.expose(), b"hunter2");
/// assert_eq!(format!("{s:?}"), "<redacted>");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    #[must_use]
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        SecretBytes(value.into())
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials decoded from a finished SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// `PLAIN` (RFC 4616 §2): `[authzid] NUL authcid NUL passwd`.
    Plain {
        /// The identity to act as, when different from `authcid`.
        authzid: Option<String>,
        /// The authentication identity (user name).
        authcid: String,
        /// The password.
        password: Secret,
    },
    /// `LOGIN` (draft-murchison-sasl-login): user name, then password,
    /// each UTF-8, not empty and without NUL, as in `PLAIN`.
    Login {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `XOAUTH2`: `user=... ^A auth=Bearer token ^A ^A`.
    XOAuth2 {
        /// The user.
        user: String,
        /// The OAuth 2.0 bearer token: one or more printable ASCII
        /// characters (no space, control character or non-ASCII).
        token: Secret,
    },
    /// `OAUTHBEARER` (RFC 7628 §3.1).
    OAuthBearer {
        /// The `a=` authorization identity from the GS2 header.
        authzid: Option<String>,
        /// The `host` key, when sent.
        host: Option<String>,
        /// The `port` key, when sent.
        port: Option<u16>,
        /// The OAuth 2.0 bearer token, printable ASCII as for `XOAUTH2`.
        token: Secret,
    },
}

impl Credentials {
    /// The identity the client claims: the authorization identity when
    /// one was given, else the user (PLAIN's `authcid`, LOGIN's user name,
    /// XOAUTH2's `user`); `None` for OAUTHBEARER without `a=`. A claim
    /// only: the application checks that the credentials permit it.
    ///
    /// ```
    /// use smtp_proto::sasl::{SaslMechanism, SaslServer, SaslStep};
    ///
    /// let mut server = SaslServer::new(SaslMechanism::Plain);
    /// let Ok(SaslStep::Done(creds)) = server.start(Some(b"admin\0alice\0s3cret")) else {
    ///     panic!("PLAIN is done at once");
    /// };
    /// assert_eq!(creds.identity(), Some("admin"));
    /// assert_eq!(creds.mechanism(), SaslMechanism::Plain);
    /// ```
    #[must_use]
    pub fn identity(&self) -> Option<&str> {
        match self {
            Credentials::Plain {
                authzid, authcid, ..
            } => Some(authzid.as_deref().unwrap_or(authcid)),
            Credentials::Login { username, .. } => Some(username),
            Credentials::XOAuth2 { user, .. } => Some(user),
            Credentials::OAuthBearer { authzid, .. } => authzid.as_deref(),
        }
    }

    /// The mechanism the credentials came from.
    #[must_use]
    pub fn mechanism(&self) -> SaslMechanism {
        match self {
            Credentials::Plain { .. } => SaslMechanism::Plain,
            Credentials::Login { .. } => SaslMechanism::Login,
            Credentials::XOAuth2 { .. } => SaslMechanism::XOAuth2,
            Credentials::OAuthBearer { .. } => SaslMechanism::OAuthBearer,
        }
    }
}

/// A SASL mechanism: one this module can decode and encode, or one the
/// application runs ([`SaslMechanism::Custom`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616). The authorization identity, the authentication
    /// identity and the password may each be longer than the
    /// [`PLAIN_MAX_LEN`] octets RFC 4616 §2 says a server must accept at
    /// least: neither the decoder nor [`plain_response`] limits them, and
    /// what bounds a response is the line that carries it (see
    /// [`plain_response`]).
    Plain,
    /// `LOGIN`
    Login,
    /// `XOAUTH2`
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628)
    OAuthBearer,
    /// A mechanism the application runs itself (CRAM-MD5, SCRAM-SHA-256,
    /// EXTERNAL, GSSAPI...). The server machine frames the exchange and
    /// hands each client response to the application in
    /// [`ServerEvent::AuthExchange`](crate::server::ServerEvent::AuthExchange);
    /// [`SaslServer`] and the client have no decoder or encoder for it.
    Custom(CustomMechanism),
}

impl SaslMechanism {
    /// The name as advertised in EHLO and sent in AUTH.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Login => "LOGIN",
            SaslMechanism::XOAuth2 => "XOAUTH2",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::Custom(c) => c.as_str(),
        }
    }

    /// An application-run mechanism named `name`; see
    /// [`CustomMechanism::new`] for the names refused.
    ///
    /// ```
    /// use smtp_proto::sasl::SaslMechanism;
    /// let cram = SaslMechanism::custom("CRAM-MD5").unwrap();
    /// assert_eq!(cram.as_str(), "CRAM-MD5");
    /// assert!(SaslMechanism::custom("PLAIN").is_err());
    /// ```
    pub fn custom(name: &str) -> Result<Self, ValueError> {
        CustomMechanism::new(name).map(SaslMechanism::Custom)
    }

    /// Looks a built-in mechanism's name up, ignoring case.
    ///
    /// ```
    /// use smtp_proto::sasl::SaslMechanism;
    /// assert_eq!(SaslMechanism::from_name("xoauth2"), Some(SaslMechanism::XOAuth2));
    /// assert_eq!(SaslMechanism::from_name("CRAM-MD5"), None); // not built in
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Mechanism::parse(name)
            .ok()
            .as_ref()
            .and_then(Self::from_mechanism)
    }

    /// The built-in mechanism a wire-level [`Mechanism`] names, if any
    /// (never [`SaslMechanism::Custom`]).
    ///
    /// ```
    /// use smtp_proto::command::Mechanism;
    /// use smtp_proto::sasl::SaslMechanism;
    /// assert_eq!(SaslMechanism::from_mechanism(&Mechanism::Login), Some(SaslMechanism::Login));
    /// assert_eq!(SaslMechanism::from_mechanism(&Mechanism::CramMd5), None);
    /// ```
    #[must_use]
    pub fn from_mechanism(mechanism: &Mechanism<'_>) -> Option<Self> {
        match mechanism {
            Mechanism::Plain => Some(Self::Plain),
            Mechanism::Login => Some(Self::Login),
            Mechanism::XOAuth2 => Some(Self::XOAuth2),
            Mechanism::OAuthBearer => Some(Self::OAuthBearer),
            _ => None,
        }
    }
}

impl From<SaslMechanism> for Mechanism<'static> {
    fn from(m: SaslMechanism) -> Self {
        match m {
            SaslMechanism::Plain => Mechanism::Plain,
            SaslMechanism::Login => Mechanism::Login,
            SaslMechanism::XOAuth2 => Mechanism::XOAuth2,
            SaslMechanism::OAuthBearer => Mechanism::OAuthBearer,
            SaslMechanism::Custom(c) => Mechanism::known(c.as_str().as_bytes())
                .unwrap_or_else(|| Mechanism::Other(MechanismName(c.as_str().to_owned().into()))),
        }
    }
}

/// The longest SASL mechanism name (RFC 4422 §3.1: `1*20mech-char`).
const MECH_MAX: usize = 20;

/// The validated name of a SASL mechanism run by the application:
/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / "-" /
/// "_"` (RFC 4422 §3.1; any of them may come first, and the AUTH command
/// parser takes such names too), and not the name of a built-in mechanism
/// (`PLAIN`, `LOGIN`, `XOAUTH2`, `OAUTHBEARER`), so each name advertised
/// has one meaning.
///
/// The name is kept inline (no allocation), so the type is `Copy`.
/// Clients may send it in any case: the server compares it without regard
/// to ASCII case.
///
/// ```
/// use smtp_proto::sasl::CustomMechanism;
/// assert_eq!(CustomMechanism::new("SCRAM-SHA-256").unwrap().as_str(), "SCRAM-SHA-256");
/// assert!(CustomMechanism::new("EXTERNAL").is_ok());
/// assert!(CustomMechanism::new("cram-md5").is_err()); // upper case only
/// assert!(CustomMechanism::new("LOGIN").is_err()); // built in
/// assert!(CustomMechanism::new("A-NAME-LONGER-THAN-20").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomMechanism {
    len: u8,
    name: [u8; MECH_MAX],
}

impl CustomMechanism {
    /// Checks and stores a mechanism name.
    pub fn new(name: &str) -> Result<Self, ValueError> {
        crate::command::check_sasl_mech(name)?;
        if name.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(ValueError::ForbiddenCharacter);
        }
        if SaslMechanism::from_name(name).is_some() {
            return Err(ValueError::Syntax("the name of a built-in mechanism"));
        }
        let mut buf = [0u8; MECH_MAX];
        let (Some(slot), Ok(len)) = (buf.get_mut(..name.len()), u8::try_from(name.len())) else {
            return Err(ValueError::TooLong);
        };
        slot.copy_from_slice(name.as_bytes());
        Ok(Self { len, name: buf })
    }

    /// The name, as advertised in EHLO.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let bytes = self.name.get(..usize::from(self.len)).unwrap_or_default();
        // Only ASCII was stored.
        core::str::from_utf8(bytes).unwrap_or_default()
    }

    /// True when the client's AUTH command names this mechanism (ASCII
    /// case is ignored).
    #[must_use]
    pub fn matches(&self, mechanism: &Mechanism<'_>) -> bool {
        mechanism.as_str().eq_ignore_ascii_case(self.as_str())
    }
}

impl fmt::Debug for CustomMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CustomMechanism")
            .field(&self.as_str())
            .finish()
    }
}

impl fmt::Display for CustomMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SASL response that cannot be decoded, or a value that cannot be
/// encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The response does not follow the mechanism's format.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    /// A name or secret is not valid UTF-8.
    #[error("SASL response is not valid UTF-8")]
    NotUtf8,
    /// A value to encode holds a byte the mechanism cannot carry.
    #[error("value cannot be encoded: {0}")]
    Unencodable(&'static str),
    /// A response arrived after the exchange had finished.
    #[error("SASL exchange already finished")]
    Finished,
    /// [`SaslServer::respond`] was called before [`SaslServer::start`].
    #[error("SASL exchange not started")]
    NotStarted,
    /// [`SaslServer`] was given a [`SaslMechanism::Custom`] mechanism,
    /// which only the application can run.
    #[error("the mechanism is run by the application")]
    NotBuiltIn,
}

/// What the server sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SaslStep {
    /// Send this challenge (raw bytes; the session base64-encodes it in a
    /// `334` reply) and wait for the client's response.
    Challenge(&'static [u8]),
    /// The exchange is complete: the application judges the credentials.
    Done(Credentials),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    Start,
    /// Waiting for the full response (PLAIN, XOAUTH2, OAUTHBEARER after an
    /// empty challenge).
    Response,
    LoginUser,
    LoginPassword {
        username: String,
    },
    Finished,
}

/// The server side of one SASL exchange.
///
/// [`start`](Self::start) it with the AUTH command's initial response,
/// answer each [`SaslStep::Challenge`] with the client's next response
/// through [`respond`](Self::respond), and judge the credentials of
/// [`SaslStep::Done`]. A response that does not follow the mechanism is an
/// error, and so is one after the end.
///
/// ```
/// use smtp_proto::sasl::{SaslError, SaslMechanism, SaslServer, SaslStep};
///
/// let mut server = SaslServer::new(SaslMechanism::Login);
/// assert_eq!(server.start(None), Ok(SaslStep::Challenge(b"Username:")));
/// assert_eq!(server.respond(b"alice"), Ok(SaslStep::Challenge(b"Password:")));
/// let Ok(SaslStep::Done(creds)) = server.respond(b"s3cret") else {
///     panic!("LOGIN is done after the password");
/// };
/// assert_eq!(creds.identity(), Some("alice"));
/// assert_eq!(server.respond(b"more"), Err(SaslError::Finished));
///
/// // PLAIN needs two NULs.
/// let mut server = SaslServer::new(SaslMechanism::Plain);
/// assert!(matches!(server.start(Some(b"alice s3cret")), Err(SaslError::Malformed(_))));
/// ```
#[derive(Debug, Clone)]
pub struct SaslServer {
    mechanism: SaslMechanism,
    state: ServerState,
}

impl SaslServer {
    /// An exchange for `mechanism`.
    #[must_use]
    pub fn new(mechanism: SaslMechanism) -> Self {
        Self {
            mechanism,
            state: ServerState::Start,
        }
    }

    /// The mechanism in use.
    #[must_use]
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Starts the exchange with the AUTH command's initial response, if any
    /// (`Some(b"")` for the empty response `=`).
    pub fn start(&mut self, initial: Option<&[u8]>) -> Result<SaslStep, SaslError> {
        if self.state != ServerState::Start {
            return Err(SaslError::Finished);
        }
        match (self.mechanism, initial) {
            (SaslMechanism::Custom(_), _) => Err(SaslError::NotBuiltIn),
            (SaslMechanism::Login, None) => {
                self.state = ServerState::LoginUser;
                Ok(SaslStep::Challenge(b"Username:"))
            }
            (SaslMechanism::Login, Some(user)) => {
                self.state = ServerState::LoginUser;
                self.respond(user)
            }
            (_, None) => {
                self.state = ServerState::Response;
                Ok(SaslStep::Challenge(b""))
            }
            (_, Some(response)) => {
                self.state = ServerState::Response;
                self.respond(response)
            }
        }
    }

    /// Feeds the client's next (decoded) response.
    ///
    /// Before [`start`](Self::start) this is a usage error
    /// ([`SaslError::NotStarted`]) that leaves the exchange as it was.
    pub fn respond(&mut self, response: &[u8]) -> Result<SaslStep, SaslError> {
        let state = core::mem::replace(&mut self.state, ServerState::Finished);
        match state {
            ServerState::Start => {
                self.state = ServerState::Start;
                Err(SaslError::NotStarted)
            }
            ServerState::Finished => Err(SaslError::Finished),
            ServerState::LoginUser => {
                let username = utf8(response)?;
                if username.is_empty() {
                    return Err(SaslError::Malformed("empty user name"));
                }
                // PLAIN's `authcid = 1*SAFE` (RFC 4616 §2, SAFE being any
                // UTF-8 character but NUL), which the other built-in
                // decoders keep too: a NUL would cut the name short in
                // C-string back ends.
                if username.contains('\0') {
                    return Err(SaslError::Malformed("NUL in LOGIN user name"));
                }
                self.state = ServerState::LoginPassword {
                    username: username.to_owned(),
                };
                Ok(SaslStep::Challenge(b"Password:"))
            }
            ServerState::LoginPassword { username } => {
                // As for PLAIN (RFC 4616: `passwd = 1*SAFE`).
                let password = utf8(response)?;
                if password.is_empty() {
                    return Err(SaslError::Malformed("empty password"));
                }
                if password.contains('\0') {
                    return Err(SaslError::Malformed("NUL in LOGIN password"));
                }
                Ok(SaslStep::Done(Credentials::Login {
                    username,
                    password: Secret::new(password),
                }))
            }
            ServerState::Response => match self.mechanism {
                SaslMechanism::Plain => decode_plain(response).map(SaslStep::Done),
                SaslMechanism::XOAuth2 => decode_xoauth2(response).map(SaslStep::Done),
                SaslMechanism::OAuthBearer => decode_oauthbearer(response).map(SaslStep::Done),
                SaslMechanism::Login => Err(SaslError::Finished),
                SaslMechanism::Custom(_) => Err(SaslError::NotBuiltIn),
            },
        }
    }
}

fn utf8(b: &[u8]) -> Result<&str, SaslError> {
    core::str::from_utf8(b).map_err(|_| SaslError::NotUtf8)
}

/// The length, in octets, up to which a server must accept each `PLAIN`
/// field (RFC 4616 §2: "MUST accept up to 255 octets").
///
/// A floor, not a ceiling: longer authorization identities, user names and
/// passwords (application passwords, tokens used as passwords) are decoded
/// and encoded too, as other servers accept them. What bounds a `PLAIN`
/// response is the line that carries it: the server machine reads an AUTH
/// line or SASL response line of at most
/// [`ServerConfig::max_auth_line_length`](crate::server::ServerConfig::max_auth_line_length)
/// octets (12288 by default, RFC 4954 §4), and the client machine sends
/// none longer than 12288 octets. Any conforming server takes values of up
/// to this length; many take longer ones.
pub const PLAIN_MAX_LEN: usize = 255;

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 §2).
///
/// No field is limited to [`PLAIN_MAX_LEN`] octets (a minimum, not a
/// maximum); the credentials hold no more than `msg`, whose length the
/// caller bounds (the server machine, by its AUTH line limit).
fn decode_plain(msg: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN needs authzid NUL authcid NUL passwd",
        ));
    };
    if passwd.contains(&0) {
        return Err(SaslError::Malformed("NUL inside PLAIN password"));
    }
    if authcid.is_empty() || passwd.is_empty() {
        return Err(SaslError::Malformed("empty PLAIN authcid or password"));
    }
    Ok(Credentials::Plain {
        authzid: (!authzid.is_empty())
            .then(|| utf8(authzid).map(str::to_owned))
            .transpose()?,
        authcid: utf8(authcid)?.to_owned(),
        password: Secret::new(utf8(passwd)?),
    })
}

/// Splits `key=value ^A` pairs; the list ends with an empty element (the
/// final `^A`).
fn kv_pairs(body: &[u8]) -> Result<Vec<(&str, &str)>, SaslError> {
    let body = body
        .strip_suffix(b"\x01")
        .ok_or(SaslError::Malformed("missing final ^A"))?;
    let mut out = Vec::new();
    if body.is_empty() {
        return Ok(out);
    }
    // Each pair is itself terminated by ^A.
    let body = body
        .strip_suffix(b"\x01")
        .ok_or(SaslError::Malformed("key/value pair without ^A"))?;
    for item in body.split(|&b| b == 1) {
        if item.is_empty() {
            return Err(SaslError::Malformed("empty key/value pair"));
        }
        // The encoders never send NUL here (RFC 7628 §3.1 values are
        // VCHAR, SP, HTAB, CR, LF).
        if item.contains(&0) {
            return Err(SaslError::Malformed("NUL in key/value pair"));
        }
        let item = utf8(item)?;
        let (k, v) = item
            .split_once('=')
            .ok_or(SaslError::Malformed("key/value pair without '='"))?;
        out.push((k, v));
    }
    Ok(out)
}

/// The token of an `auth` value (RFC 7628 §3.1: what would be in the HTTP
/// `Authorization` header), `credentials = "Bearer" 1*SP b64token`
/// (RFC 6750 §2.1): the scheme in any case, then one or more spaces, then
/// the token (see [`is_bearer_token`]).
fn bearer(auth: &str) -> Result<Secret, SaslError> {
    let scheme = auth.get(..7).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("Bearer ") {
        return Err(SaslError::Malformed("auth is not a Bearer token"));
    }
    let token = auth[7..].trim_start_matches(' ');
    if token.is_empty() {
        return Err(SaslError::Malformed("empty bearer token"));
    }
    if !is_bearer_token(token) {
        return Err(SaslError::Malformed("bad bearer token"));
    }
    Ok(Secret::new(token))
}

/// A bearer token as decoded and encoded: `1*VCHAR`, printable ASCII.
///
/// RFC 6750 §2.1's `b64token` (letters, digits, `-._~+/`, then `=`
/// padding) is a subset, so every conforming token passes, and so do the
/// other printable characters some issuers put in tokens. What is refused
/// can be in no `b64token`: SP and HTAB (after the token, or splitting it
/// in two), CR and LF (a token forwarded in an HTTP request, to check it,
/// would add header lines of the client's choosing), any other control
/// character, and non-ASCII characters.
fn is_bearer_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// `"user=" user ^A "auth=Bearer " token ^A ^A`.
fn decode_xoauth2(msg: &[u8]) -> Result<Credentials, SaslError> {
    let mut user = None;
    let mut token = None;
    for (k, v) in kv_pairs(msg)? {
        match k {
            "user" if user.is_none() => user = Some(v.to_owned()),
            "auth" if token.is_none() => token = Some(bearer(v)?),
            "user" | "auth" => return Err(SaslError::Malformed("duplicate XOAUTH2 key")),
            _ => {}
        }
    }
    match (user, token) {
        (Some(user), Some(token)) if !user.is_empty() => Ok(Credentials::XOAuth2 { user, token }),
        _ => Err(SaslError::Malformed("XOAUTH2 needs user and auth")),
    }
}

/// `gs2-header kvsep *(kvpair) kvsep` (RFC 7628 §3.1), where
/// `gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","` (RFC 5801 §4).
fn decode_oauthbearer(msg: &[u8]) -> Result<Credentials, SaslError> {
    let (flag, rest) = match msg {
        [b'n', b',', rest @ ..] | [b'y', b',', rest @ ..] => (msg[0], rest),
        _ => return Err(SaslError::Malformed("bad GS2 header")),
    };
    let _ = flag;
    let comma = memchr::memchr(b',', rest).ok_or(SaslError::Malformed("bad GS2 header"))?;
    let authz = &rest[..comma];
    let authzid = if authz.is_empty() {
        None
    } else {
        let name = authz
            .strip_prefix(b"a=")
            .ok_or(SaslError::Malformed("bad GS2 authzid"))?;
        // `saslname` is at least one character (RFC 5801 §4); an empty
        // `a=` is read as no authorization identity.
        Some(decode_saslname(utf8(name)?)?).filter(|n| !n.is_empty())
    };
    let kvs = rest[comma + 1..]
        .strip_prefix(b"\x01")
        .ok_or(SaslError::Malformed("missing ^A after GS2 header"))?;
    let mut host = None;
    let mut port = None;
    let mut token = None;
    for (k, v) in kv_pairs(kvs)? {
        if !is_oauth_key(k) || !is_oauth_value(v) {
            return Err(SaslError::Malformed("bad OAUTHBEARER key/value pair"));
        }
        match k {
            "host" if host.is_none() => host = Some(v.to_owned()),
            "port" if port.is_none() => port = Some(oauth_port(v)?),
            "auth" if token.is_none() => token = Some(bearer(v)?),
            "host" | "port" | "auth" => {
                return Err(SaslError::Malformed("duplicate OAUTHBEARER key"))
            }
            _ => {}
        }
    }
    let token = token.ok_or(SaslError::Malformed("OAUTHBEARER needs auth"))?;
    Ok(Credentials::OAuthBearer {
        authzid,
        host,
        port,
        token,
    })
}

/// `key = 1*(ALPHA)` (RFC 7628 §3.1).
fn is_oauth_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic())
}

/// `value = *(VCHAR / SP / HTAB / CR / LF)` (RFC 7628 §3.1): printable
/// ASCII and those four, so no other control octet and no UTF-8.
fn is_oauth_value(v: &str) -> bool {
    v.bytes()
        .all(|b| matches!(b, b'!'..=b'~' | b' ' | b'\t' | b'\r' | b'\n'))
}

/// The `port` value: "a decimal positive integer string without leading
/// zeros" (RFC 7628 §3.1), so no sign, no `0` and nothing over 65535.
fn oauth_port(v: &str) -> Result<u16, SaslError> {
    let digits = v.as_bytes();
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(SaslError::Malformed("bad port"));
    }
    v.parse::<u16>()
        .map_err(|_| SaslError::Malformed("bad port"))
}

/// `saslname`: `,` is sent as `=2C` and `=` as `=3D` (RFC 5801 §4).
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    // UTF8-char-safe excludes NUL (RFC 5801 §4).
    if s.contains('\0') {
        return Err(SaslError::Malformed("NUL in saslname"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        match rest.get(pos..pos + 3) {
            Some("=2C") | Some("=2c") => out.push(','),
            Some("=3D") | Some("=3d") => out.push('='),
            _ => return Err(SaslError::Malformed("bad saslname escape")),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

fn no_ctl(s: &str, what: &'static str) -> Result<(), SaslError> {
    if s.bytes().any(|b| b == 0 || b == 1) {
        Err(SaslError::Unencodable(what))
    } else {
        Ok(())
    }
}

/// The `PLAIN` response: `[authzid] NUL authcid NUL password`.
///
/// Refused ([`SaslError::Unencodable`]): a NUL in any value and an empty
/// authcid or password, which the server side refuses too. An empty
/// `authzid` is the same as none.
///
/// Values longer than [`PLAIN_MAX_LEN`] octets (the least a server must
/// accept, RFC 4616 §2) are encoded: many servers take longer passwords
/// and tokens. The response is as long as its values; the client machine
/// sends it on the AUTH line when it fits there, else after the server's
/// empty `334`, and refuses one whose line would pass the 12288 octets of
/// RFC 4954 §4 (more than 9213 octets) with
/// [`UsageError::ResponseTooLong`](crate::client::UsageError::ResponseTooLong).
///
/// ```
/// use smtp_proto::sasl::{plain_response, SaslError, PLAIN_MAX_LEN};
/// assert_eq!(plain_response(Some("admin"), "bob", "pw").unwrap(), b"admin\0bob\0pw");
/// let long = "p".repeat(PLAIN_MAX_LEN + 45);
/// assert_eq!(plain_response(None, "bob", &long).unwrap().len(), 5 + 300);
/// assert!(matches!(plain_response(None, "bob", "p\0w"), Err(SaslError::Unencodable(_))));
/// ```
pub fn plain_response(
    authzid: Option<&str>,
    authcid: &str,
    password: &str,
) -> Result<Vec<u8>, SaslError> {
    // Only NUL separates PLAIN's fields (RFC 4616 §2): every other octet,
    // ^A included, is content the decoder reads back as sent.
    for (v, what) in [
        (authzid.unwrap_or_default(), "authzid"),
        (authcid, "authcid"),
        (password, "password"),
    ] {
        if v.contains('\0') {
            return Err(SaslError::Unencodable(what));
        }
    }
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::Unencodable("empty authcid or password"));
    }
    let mut out = Vec::with_capacity(
        authzid
            .unwrap_or_default()
            .len()
            .saturating_add(authcid.len())
            .saturating_add(password.len())
            .saturating_add(2),
    );
    out.extend_from_slice(authzid.unwrap_or_default().as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    Ok(out)
}

/// The `XOAUTH2` response: `user=U ^A auth=Bearer T ^A ^A`. Refused
/// ([`SaslError::Unencodable`]), as the decoder refuses them: a NUL or ^A
/// in the user, an empty user or token, and a token with an octet other
/// than printable ASCII (a space, a control character such as CR or LF, a
/// non-ASCII character; RFC 6750 §2.1 `b64token` has none of them).
///
/// ```
/// use smtp_proto::sasl::{xoauth2_response, SaslError};
/// assert_eq!(
///     xoauth2_response("alice@example.com", "ya29.vF9dft4q").unwrap(),
///     b"user=alice@example.com\x01auth=Bearer ya29.vF9dft4q\x01\x01"
/// );
/// assert_eq!(xoauth2_response("alice", "two words"), Err(SaslError::Unencodable("token")));
/// ```
pub fn xoauth2_response(user: &str, token: &str) -> Result<Vec<u8>, SaslError> {
    no_ctl(user, "user")?;
    // The decoder refuses an empty user or token: never send one.
    if user.is_empty() || token.is_empty() {
        return Err(SaslError::Unencodable("empty user or token"));
    }
    // Spaces after `Bearer` are the separator (`1*SP`), never the token's.
    if !is_bearer_token(token) {
        return Err(SaslError::Unencodable("token"));
    }
    Ok(format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes())
}

/// The `OAUTHBEARER` response (RFC 7628 §3.1):
/// `n,a=AUTHZID, ^A host=H ^A port=P ^A auth=Bearer T ^A ^A`. An empty
/// `authzid` is left out, like none. Refused ([`SaslError::Unencodable`]),
/// as the decoder refuses them: a host with an octet other than printable
/// ASCII, SP, HTAB, CR and LF (RFC 7628 §3.1 `value`), an empty token, a
/// token with an octet other than printable ASCII (a space, a control
/// character such as CR or LF, a non-ASCII character; RFC 6750 §2.1
/// `b64token` has none of them), and port 0 (the port is a positive
/// integer).
///
/// ```
/// use smtp_proto::sasl::{oauthbearer_response, SaslError};
/// let response = oauthbearer_response(
///     Some("user@example.com"),
///     Some("server.example.com"),
///     Some(587),
///     "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
/// )
/// .unwrap();
/// assert_eq!(
///     response,
///     b"n,a=user@example.com,\x01host=server.example.com\x01port=587\x01\
///       auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
/// );
/// assert_eq!(
///     oauthbearer_response(None, None, Some(0), "token"),
///     Err(SaslError::Unencodable("port 0"))
/// );
/// ```
pub fn oauthbearer_response(
    authzid: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    token: &str,
) -> Result<Vec<u8>, SaslError> {
    // The decoder refuses an empty bearer token: never send one.
    if token.is_empty() {
        return Err(SaslError::Unencodable("empty token"));
    }
    // Spaces after `Bearer` are the separator (`1*SP`), never the token's.
    if !is_bearer_token(token) {
        return Err(SaslError::Unencodable("token"));
    }
    if port == Some(0) {
        return Err(SaslError::Unencodable("port 0"));
    }
    let mut s = String::from("n,");
    // `saslname = 1*(...)` (RFC 5801 §4): an empty authzid is left out.
    if let Some(a) = authzid.filter(|a| !a.is_empty()) {
        // A saslname may hold any UTF-8 but NUL (RFC 5801 §4); `,` and `=`
        // are escaped below.
        if a.contains('\0') {
            return Err(SaslError::Unencodable("authzid"));
        }
        s.push_str("a=");
        s.push_str(&encode_saslname(a));
    }
    s.push_str(",\x01");
    if let Some(h) = host {
        if !is_oauth_value(h) {
            return Err(SaslError::Unencodable("host"));
        }
        s.push_str("host=");
        s.push_str(h);
        s.push('\x01');
    }
    if let Some(p) = port {
        s.push_str(&format!("port={p}\x01"));
    }
    s.push_str("auth=Bearer ");
    s.push_str(token);
    s.push_str("\x01\x01");
    Ok(s.into_bytes())
}

/// The client side of `LOGIN`: answers the server's `Username:` and
/// `Password:` challenges.
///
/// [`LoginClient::try_new`] refuses the values a server's decoder refuses
/// (an empty one, a NUL in either); [`LoginClient::new`] takes any.
///
/// ```
/// use smtp_proto::sasl::{LoginClient, SaslError};
/// let mut login = LoginClient::try_new("alice", "s3cret").unwrap();
/// assert_eq!(login.respond(b"Username:"), b"alice");
/// assert_eq!(login.respond(b"Password:"), b"s3cret");
/// assert_eq!(
///     LoginClient::try_new("alice", "s3\0cret").unwrap_err(),
///     SaslError::Unencodable("NUL in password")
/// );
/// ```
#[derive(Clone)]
pub struct LoginClient {
    username: String,
    password: Secret,
    sent_user: bool,
}

impl fmt::Debug for LoginClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginClient")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// The `LOGIN` values a server decodes: each is `1*SAFE`, as PLAIN's
/// authcid and passwd (RFC 4616 §2, SAFE being any UTF-8 character but
/// NUL), so neither is empty nor holds a NUL, which [`SaslServer`] refuses
/// (a NUL would cut the value short in C-string back ends).
pub(crate) fn check_login(username: &str, password: &str) -> Result<(), SaslError> {
    if username.is_empty() {
        return Err(SaslError::Unencodable("empty user name"));
    }
    if password.is_empty() {
        return Err(SaslError::Unencodable("empty password"));
    }
    if username.contains('\0') {
        return Err(SaslError::Unencodable("NUL in user name"));
    }
    if password.contains('\0') {
        return Err(SaslError::Unencodable("NUL in password"));
    }
    Ok(())
}

impl LoginClient {
    /// A LOGIN exchange for these credentials, whatever they are (see
    /// [`LoginClient::try_new`] for one that refuses what a server
    /// refuses).
    #[must_use]
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: Secret::new(password),
            sent_user: false,
        }
    }

    /// A LOGIN exchange for these credentials, refused
    /// ([`SaslError::Unencodable`]) when the server's decoder would refuse
    /// them: an empty user name or password, or a NUL in either (LOGIN's
    /// values are PLAIN's authcid and passwd, `1*SAFE`, RFC 4616 §2). No
    /// length is refused: a line carries each value (see
    /// [`plain_response`] for the limit of that line).
    pub fn try_new(username: &str, password: &str) -> Result<Self, SaslError> {
        check_login(username, password)?;
        Ok(Self::new(username, password))
    }

    /// The initial response to send with `AUTH LOGIN` (the user name).
    pub fn initial_response(&mut self) -> Vec<u8> {
        self.sent_user = true;
        self.username.as_bytes().to_vec()
    }

    /// The answer to a decoded challenge: the password when the server asks
    /// for it (or once the user name was sent), else the user name.
    pub fn respond(&mut self, challenge: &[u8]) -> Vec<u8> {
        let asks_password = challenge
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"pass"));
        let asks_user = challenge
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"user"));
        if asks_password || (self.sent_user && !asks_user) {
            self.password.expose().as_bytes().to_vec()
        } else {
            self.sent_user = true;
            self.username.as_bytes().to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(step: Result<SaslStep, SaslError>) -> Credentials {
        match step {
            Ok(SaslStep::Done(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_known_answers() {
        let c = done(SaslServer::new(SaslMechanism::Plain).start(Some(b"admin\0alice\0pw")));
        assert_eq!(
            c,
            Credentials::Plain {
                authzid: Some("admin".into()),
                authcid: "alice".into(),
                password: Secret::new("pw")
            }
        );
        assert_eq!(c.identity(), Some("admin"));
        for bad in [
            &b"alice\0pw"[..],
            b"\0\0pw",
            b"\0alice\0",
            b"\0a\0p\0q",
            b"",
        ] {
            assert!(SaslServer::new(SaslMechanism::Plain)
                .start(Some(bad))
                .is_err());
        }
        let mut s = SaslServer::new(SaslMechanism::Plain);
        assert_eq!(s.start(None), Ok(SaslStep::Challenge(b"")));
        assert!(matches!(s.respond(b"\0u\0p"), Ok(SaslStep::Done(_))));
        assert_eq!(s.respond(b"\0u\0p"), Err(SaslError::Finished));
    }

    #[test]
    fn respond_before_start_changes_nothing() {
        let mut s = SaslServer::new(SaslMechanism::Plain);
        assert_eq!(s.respond(b"\0u\0p"), Err(SaslError::NotStarted));
        // The exchange can still start and finish.
        assert!(matches!(
            s.start(Some(b"\0u\0p")),
            Ok(SaslStep::Done(Credentials::Plain { .. }))
        ));
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(s.respond(b"bob"), Err(SaslError::NotStarted));
        assert_eq!(s.start(None), Ok(SaslStep::Challenge(b"Username:")));
    }

    /// RFC 4616 §2's 255 octets are the least a server must accept per
    /// field: longer passwords (application passwords, tokens used as
    /// passwords) and identities are encoded and decoded on both sides,
    /// whether the response comes as the initial response or after the
    /// empty challenge.
    #[test]
    fn plain_values_longer_than_255_octets_round_trip() {
        let pw300 = "p".repeat(300);
        let pw4000 = "\u{e9}".repeat(2000);
        let id1000 = "i".repeat(1000);
        let at = "x".repeat(PLAIN_MAX_LEN);
        for (authzid, authcid, password) in [
            (None, "alice", pw300.as_str()),
            (None, "alice", pw4000.as_str()),
            (Some(id1000.as_str()), id1000.as_str(), pw300.as_str()),
            (Some(at.as_str()), at.as_str(), at.as_str()),
        ] {
            let msg = plain_response(authzid, authcid, password).unwrap();
            let len = authzid.map_or(0, str::len) + authcid.len() + password.len() + 2;
            assert_eq!(msg.len(), len);
            let want = Credentials::Plain {
                authzid: authzid.map(str::to_owned),
                authcid: authcid.to_owned(),
                password: Secret::new(password),
            };
            assert_eq!(
                done(SaslServer::new(SaslMechanism::Plain).start(Some(&msg))),
                want
            );
            let mut s = SaslServer::new(SaslMechanism::Plain);
            assert_eq!(s.start(None), Ok(SaslStep::Challenge(b"")));
            assert_eq!(done(s.respond(&msg)), want);
        }
        assert_eq!(pw4000.len(), 4000);
    }

    /// What PLAIN still refuses, on both sides, whatever the length: a NUL
    /// inside a value (NUL separates the fields, so the password would
    /// read differently) and an empty authcid or password (`1*SAFE`).
    #[test]
    fn plain_refuses_nul_and_empty_values_at_any_length() {
        let long = "p".repeat(4000);
        let nul_in_long = format!("{long}\0{long}");
        for (authzid, authcid, password, what) in [
            (None, "alice", nul_in_long.as_str(), "password"),
            (None, nul_in_long.as_str(), "pw", "authcid"),
            (Some(nul_in_long.as_str()), "alice", "pw", "authzid"),
        ] {
            assert_eq!(
                plain_response(authzid, authcid, password),
                Err(SaslError::Unencodable(what))
            );
        }
        assert_eq!(
            SaslServer::new(SaslMechanism::Plain)
                .start(Some(format!("\0alice\0{nul_in_long}").as_bytes())),
            Err(SaslError::Malformed("NUL inside PLAIN password"))
        );
        for (authcid, password) in [("", long.as_str()), (long.as_str(), "")] {
            assert_eq!(
                plain_response(None, authcid, password),
                Err(SaslError::Unencodable("empty authcid or password"))
            );
            assert_eq!(
                SaslServer::new(SaslMechanism::Plain)
                    .start(Some(format!("\0{authcid}\0{password}").as_bytes())),
                Err(SaslError::Malformed("empty PLAIN authcid or password"))
            );
        }
        // Long values must still be UTF-8.
        let mut not_utf8 = format!("\0alice\0{long}").into_bytes();
        not_utf8.push(0xff);
        assert_eq!(
            SaslServer::new(SaslMechanism::Plain).start(Some(&not_utf8)),
            Err(SaslError::NotUtf8)
        );
    }

    /// `LoginClient::try_new` refuses what the LOGIN decoder refuses, so
    /// the client never sends a value the server answers with 501.
    #[test]
    fn login_client_refuses_what_the_login_decoder_refuses() {
        for (user, password, why) in [
            ("", "pw", "empty user name"),
            ("alice", "", "empty password"),
            ("alice\0admin", "pw", "NUL in user name"),
            ("alice", "s3cret\0x", "NUL in password"),
            ("\0", "\0", "NUL in user name"),
        ] {
            assert_eq!(
                LoginClient::try_new(user, password).map(|_| ()),
                Err(SaslError::Unencodable(why)),
                "{user:?} {password:?}"
            );
            // The server refuses the same values.
            let mut s = SaslServer::new(SaslMechanism::Login);
            let step = s
                .start(Some(user.as_bytes()))
                .and_then(|_| s.respond(password.as_bytes()));
            assert!(matches!(step, Err(SaslError::Malformed(_))), "{step:?}");
        }
        // Any other value, long ones and control characters included.
        let long = "w".repeat(4000);
        for (user, password) in [("al\x01ice", "p\x01w"), ("carol", long.as_str())] {
            let mut login = LoginClient::try_new(user, password).unwrap();
            let mut s = SaslServer::new(SaslMechanism::Login);
            let step = s
                .start(Some(&login.initial_response()))
                .and_then(|_| s.respond(&login.respond(b"Password:")));
            assert_eq!(
                done(step),
                Credentials::Login {
                    username: user.to_owned(),
                    password: Secret::new(password),
                }
            );
        }
    }

    #[test]
    fn login_two_steps_and_initial_response() {
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(s.start(None), Ok(SaslStep::Challenge(b"Username:")));
        assert_eq!(s.respond(b"bob"), Ok(SaslStep::Challenge(b"Password:")));
        let c = done(s.respond(b"pw"));
        assert_eq!(c.identity(), Some("bob"));
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(s.start(Some(b"bob")), Ok(SaslStep::Challenge(b"Password:")));
        assert!(SaslServer::new(SaslMechanism::Login)
            .start(Some(b""))
            .is_err());
        // An empty password is refused, as PLAIN refuses one.
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(s.start(Some(b"bob")), Ok(SaslStep::Challenge(b"Password:")));
        assert_eq!(s.respond(b""), Err(SaslError::Malformed("empty password")));
    }

    /// LOGIN's user name and password are PLAIN's authcid and passwd
    /// (`1*SAFE`, RFC 4616 §2: any UTF-8 character but NUL): a NUL is
    /// refused, as PLAIN, XOAUTH2 and OAUTHBEARER refuse one, rather than
    /// handed to the application, whose back end may stop at it.
    #[test]
    fn login_refuses_nul_in_user_name_and_password() {
        for initial in [Some(&b"alice\0admin"[..]), None] {
            let mut s = SaslServer::new(SaslMechanism::Login);
            let step = match initial {
                Some(user) => s.start(Some(user)),
                None => s.start(None).and_then(|_| s.respond(b"\0alice")),
            };
            assert_eq!(step, Err(SaslError::Malformed("NUL in LOGIN user name")));
            assert_eq!(s.respond(b"pw"), Err(SaslError::Finished));
        }
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(
            s.start(Some(b"alice")),
            Ok(SaslStep::Challenge(b"Password:"))
        );
        assert_eq!(
            s.respond(b"s3cret\0anything"),
            Err(SaslError::Malformed("NUL in LOGIN password"))
        );
        // Other control characters are content, as in PLAIN.
        let mut s = SaslServer::new(SaslMechanism::Login);
        assert_eq!(
            s.start(Some(b"al\x01ice")),
            Ok(SaslStep::Challenge(b"Password:"))
        );
        let c = done(s.respond(b"p\x01w"));
        assert_eq!(c.identity(), Some("al\x01ice"));
    }

    /// `credentials = "Bearer" 1*SP b64token` (RFC 6750 §2.1, the form of
    /// the `auth` value): the spaces after the scheme separate it from the
    /// token and are no part of it.
    #[test]
    fn bearer_token_follows_one_or_more_spaces() {
        for (mechanism, msg) in [
            (
                SaslMechanism::OAuthBearer,
                &b"n,,\x01auth=Bearer   vF9dft4qmTc2\x01\x01"[..],
            ),
            (
                SaslMechanism::XOAuth2,
                b"user=u@example.com\x01auth=bearer  vF9dft4qmTc2\x01\x01",
            ),
        ] {
            let c = done(SaslServer::new(mechanism).start(Some(msg)));
            let (Credentials::OAuthBearer { token, .. } | Credentials::XOAuth2 { token, .. }) = &c
            else {
                panic!("{c:?}")
            };
            assert_eq!(token.expose(), "vF9dft4qmTc2", "{mechanism:?}");
        }
        assert_eq!(
            SaslServer::new(SaslMechanism::OAuthBearer)
                .start(Some(b"n,,\x01auth=Bearer   \x01\x01")),
            Err(SaslError::Malformed("empty bearer token"))
        );
        // A token starting with a space would not read back: not written.
        assert_eq!(
            oauthbearer_response(None, None, None, " t"),
            Err(SaslError::Unencodable("token"))
        );
        assert_eq!(
            xoauth2_response("u", " t"),
            Err(SaslError::Unencodable("token"))
        );
    }

    /// The token is what would follow `Bearer ` in an HTTP `Authorization`
    /// header (RFC 7628 §3.1, RFC 6750 §2.1 `b64token`): no CR or LF (an
    /// application that forwards it in an HTTP request to check it would
    /// write a header of the client's choosing), no SP or HTAB inside or
    /// after it, no other control character and no non-ASCII character.
    #[test]
    fn bearer_token_is_printable_ascii_only() {
        let bad_tokens = [
            "t\r\nX-Injected: 1",
            "t\n",
            "t\r",
            "t\tu",
            "t u",
            "t ",
            "t\x1b",
            "t\x7f",
            "t\u{e9}",
        ];
        for bad in bad_tokens {
            let oauthbearer = format!("n,,\x01auth=Bearer {bad}\x01\x01");
            let xoauth2 = format!("user=u@example.com\x01auth=Bearer {bad}\x01\x01");
            for (mechanism, msg) in [
                (SaslMechanism::OAuthBearer, oauthbearer),
                (SaslMechanism::XOAuth2, xoauth2),
            ] {
                let step = SaslServer::new(mechanism).start(Some(msg.as_bytes()));
                assert!(
                    matches!(step, Err(SaslError::Malformed(_))),
                    "{mechanism:?} {bad:?}: {step:?}"
                );
            }
            // The encoders do not write what the decoders refuse.
            assert_eq!(
                xoauth2_response("u@example.com", bad),
                Err(SaslError::Unencodable("token")),
                "{bad:?}"
            );
            assert_eq!(
                oauthbearer_response(None, None, None, bad),
                Err(SaslError::Unencodable("token")),
                "{bad:?}"
            );
        }
        // Tokens of `b64token` characters and other printable ASCII pass.
        for good in ["ya29.a0Af-_~+/x==", "EAAB|x!y:z"] {
            for msg in [
                oauthbearer_response(None, None, None, good).unwrap(),
                xoauth2_response("u@example.com", good).unwrap(),
            ] {
                let mechanism = if msg.starts_with(b"n,") {
                    SaslMechanism::OAuthBearer
                } else {
                    SaslMechanism::XOAuth2
                };
                let c = done(SaslServer::new(mechanism).start(Some(&msg)));
                let (Credentials::OAuthBearer { token, .. } | Credentials::XOAuth2 { token, .. }) =
                    &c
                else {
                    panic!("{c:?}")
                };
                assert_eq!(token.expose(), good);
            }
        }
    }

    #[test]
    fn xoauth2_round_trip() {
        let raw = xoauth2_response(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        )
        .unwrap();
        assert_eq!(
            raw,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        let c = done(SaslServer::new(SaslMechanism::XOAuth2).start(Some(&raw)));
        let Credentials::XOAuth2 { user, token } = &c else {
            panic!()
        };
        assert_eq!(user, "someuser@example.com");
        assert!(token.expose().starts_with("ya29."));
        assert!(SaslServer::new(SaslMechanism::XOAuth2)
            .start(Some(b"user=a\x01auth=Basic x\x01\x01"))
            .is_err());
        assert!(SaslServer::new(SaslMechanism::XOAuth2)
            .start(Some(b"user=a\x01auth=Bearer x\x01"))
            .is_err());
    }

    #[test]
    fn oauthbearer_rfc7628_example() {
        // RFC 7628 §4.1 (with the port key).
        let raw = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        let c = done(SaslServer::new(SaslMechanism::OAuthBearer).start(Some(raw)));
        assert_eq!(
            c,
            Credentials::OAuthBearer {
                authzid: Some("user@example.com".into()),
                host: Some("server.example.com".into()),
                port: Some(143),
                token: Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
            }
        );
        let enc = oauthbearer_response(
            Some("user@example.com"),
            Some("server.example.com"),
            Some(143),
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
        .unwrap();
        assert_eq!(enc, raw);
        let odd = oauthbearer_response(Some("a=b,c"), None, None, "t").unwrap();
        assert_eq!(odd, b"n,a=a=3Db=2Cc,\x01auth=Bearer t\x01\x01");
        let c = done(SaslServer::new(SaslMechanism::OAuthBearer).start(Some(&odd)));
        assert_eq!(c.identity(), Some("a=b,c"));
        assert!(SaslServer::new(SaslMechanism::OAuthBearer)
            .start(Some(b"p=tls-unique,,\x01auth=Bearer t\x01\x01"))
            .is_err());
    }

    #[test]
    fn oauthbearer_port_is_a_positive_integer_without_leading_zeros() {
        let with_port = |port: &str| {
            let msg = format!("n,,\x01port={port}\x01auth=Bearer t\x01\x01");
            SaslServer::new(SaslMechanism::OAuthBearer).start(Some(msg.as_bytes()))
        };
        for (port, want) in [("1", 1), ("587", 587), ("65535", 65535)] {
            let Credentials::OAuthBearer { port: got, .. } = done(with_port(port)) else {
                panic!("{port}")
            };
            assert_eq!(got, Some(want));
        }
        for bad in ["+587", "0587", "0", "00", "", "65536", "-1", " 587", "587 "] {
            assert_eq!(
                with_port(bad),
                Err(SaslError::Malformed("bad port")),
                "{bad:?}"
            );
        }
        // What the decoder refuses, the encoder does not write.
        assert_eq!(
            oauthbearer_response(None, None, Some(0), "t"),
            Err(SaslError::Unencodable("port 0"))
        );
        let r = oauthbearer_response(None, None, Some(25), "t").unwrap();
        assert!(matches!(
            done(SaslServer::new(SaslMechanism::OAuthBearer).start(Some(&r))),
            Credentials::OAuthBearer { port: Some(25), .. }
        ));
    }

    #[test]
    fn oauthbearer_keys_are_letters_and_values_printable_ascii() {
        let start = |kvs: &[u8]| {
            let msg = [&b"n,,\x01"[..], kvs, b"auth=Bearer t\x01\x01"].concat();
            SaslServer::new(SaslMechanism::OAuthBearer).start(Some(&msg))
        };
        // SP, HTAB, CR and LF are part of `value`; unknown keys are skipped.
        let c = done(start(b"host=a b\tc\r\nd\x01xyz=~!\x01"));
        let Credentials::OAuthBearer { host, .. } = &c else {
            panic!("{c:?}")
        };
        assert_eq!(host.as_deref(), Some("a b\tc\r\nd"));
        for bad in [
            &b"host=mx\x1b[2J\x01"[..],
            b"host=mx\x7f\x01",
            b"host=b\xc3\xbccher.example\x01",
            b"=x\x01",
            b"h0st=x\x01",
            b"ho-st=x\x01",
        ] {
            assert_eq!(
                start(bad),
                Err(SaslError::Malformed("bad OAUTHBEARER key/value pair")),
                "{bad:?}"
            );
        }
        let token = b"n,,\x01auth=Bearer t\x02\x01\x01";
        assert_eq!(
            SaslServer::new(SaslMechanism::OAuthBearer).start(Some(token)),
            Err(SaslError::Malformed("bad OAUTHBEARER key/value pair"))
        );
        // The encoder refuses the same values.
        assert_eq!(
            oauthbearer_response(None, Some("b\u{fc}cher.example"), None, "t"),
            Err(SaslError::Unencodable("host"))
        );
        assert_eq!(
            oauthbearer_response(None, Some("mx\x1b"), None, "t"),
            Err(SaslError::Unencodable("host"))
        );
        assert_eq!(
            oauthbearer_response(None, None, None, "t\x7f"),
            Err(SaslError::Unencodable("token"))
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let all = [
            done(SaslServer::new(SaslMechanism::Plain).start(Some(b"\0u\0hunter2"))),
            Credentials::Login {
                username: "u".into(),
                password: Secret::new("hunter2"),
            },
            done(
                SaslServer::new(SaslMechanism::XOAuth2)
                    .start(Some(&xoauth2_response("u", "hunter2").unwrap())),
            ),
            done(SaslServer::new(SaslMechanism::OAuthBearer).start(Some(
                &oauthbearer_response(None, None, None, "hunter2").unwrap(),
            ))),
        ];
        for c in all {
            let dbg = format!("{c:?} {c:#?}");
            assert!(!dbg.contains("hunter2"), "{dbg}");
            assert!(dbg.contains("<redacted>"));
        }
        let login = LoginClient::new("u", "hunter2");
        assert!(!format!("{login:?}").contains("hunter2"));
    }

    #[test]
    fn encoders_refuse_control_bytes() {
        assert!(plain_response(None, "a\0b", "p").is_err());
        assert!(xoauth2_response("u", "t\x01").is_err());
        assert!(oauthbearer_response(None, Some("h\x01"), None, "t").is_err());
        assert_eq!(plain_response(Some("z"), "u", "p").unwrap(), b"z\0u\0p");
    }

    #[test]
    fn nul_is_refused_both_ways_and_ctrl_a_carried_in_authzid() {
        let nul_user = b"user=a\0b\x01auth=Bearer t\x01\x01";
        assert!(SaslServer::new(SaslMechanism::XOAuth2)
            .start(Some(nul_user))
            .is_err());
        assert!(SaslServer::new(SaslMechanism::OAuthBearer)
            .start(Some(b"n,a=a\0b,\x01auth=Bearer t\x01\x01"))
            .is_err());
        assert!(oauthbearer_response(Some("a\0b"), None, None, "t").is_err());
        let r = oauthbearer_response(Some("a\x01b"), None, None, "t").unwrap();
        let Credentials::OAuthBearer { authzid, .. } =
            done(SaslServer::new(SaslMechanism::OAuthBearer).start(Some(&r)))
        else {
            panic!()
        };
        assert_eq!(authzid.as_deref(), Some("a\x01b"));
    }

    #[test]
    fn encoders_refuse_what_the_decoders_refuse() {
        assert!(xoauth2_response("", "t").is_err());
        assert!(xoauth2_response("u", "").is_err());
        assert!(oauthbearer_response(None, None, None, "").is_err());
    }

    #[test]
    fn plain_round_trips_control_a() {
        // ^A is a separator of XOAUTH2 and OAUTHBEARER, not of PLAIN: what
        // the PLAIN decoder accepts, the PLAIN encoder writes back.
        let creds = done(SaslServer::new(SaslMechanism::Plain).start(Some(b"\0al\x01ice\0p\x01w")));
        let Credentials::Plain {
            authcid, password, ..
        } = &creds
        else {
            panic!("{creds:?}")
        };
        let again = plain_response(None, authcid, password.expose()).unwrap();
        assert_eq!(again, b"\0al\x01ice\0p\x01w");
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            SaslMechanism::from_name("xoauth2"),
            Some(SaslMechanism::XOAuth2)
        );
        assert_eq!(SaslMechanism::from_name("CRAM-MD5"), None);
    }
}
