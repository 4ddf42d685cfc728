//! Client side of SMTP AUTH (RFC 4954): credentials, mechanism choice and
//! the 334 exchange.

use crate::command::Base64;
use crate::reply::{AuthMechanism, EhloReply};
use crate::sasl::{self, CustomMechanism, LoginClient, SaslMechanism, Secret, SecretBytes};
use core::fmt;

/// What the client authenticates with. `Debug` never shows a password or
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthCredentials {
    /// A user name and password: PLAIN (preferred) or LOGIN. With an
    /// `authzid` other than the user name, PLAIN only: LOGIN has no field
    /// for it, and would authenticate the session as the user itself.
    Password {
        /// Act as this identity, when different from the user (PLAIN's
        /// authorization identity, RFC 4616 §2). An empty one is the same
        /// as none; PLAIN sends one equal to the user name as it is, and
        /// LOGIN may serve it.
        authzid: Option<String>,
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth 2.0 bearer token: OAUTHBEARER (preferred) or XOAUTH2.
    OAuth2 {
        /// The user (mailbox) the token belongs to.
        user: String,
        /// The bearer token.
        token: Secret,
        /// The server's host name, sent in OAUTHBEARER.
        host: Option<String>,
        /// The server's port, sent in OAUTHBEARER.
        port: Option<u16>,
    },
    /// A mechanism the application runs itself (CRAM-MD5, SCRAM-SHA-256,
    /// EXTERNAL...): the machine frames the exchange and hands each
    /// challenge to the application in
    /// [`ClientEvent::AuthChallenge`](super::ClientEvent::AuthChallenge)
    /// (a [`Delivery`](super::Delivery) hands them to its
    /// [`SaslResponder`](super::SaslResponder), see
    /// [`Delivery::with_auth_responder`](super::Delivery::with_auth_responder)).
    Custom(CustomCredentials),
}

/// Credentials for a SASL mechanism the application runs itself: the
/// mechanism and, when it has one, the initial response sent with the AUTH
/// command (RFC 4954 §4). `Debug` never shows the initial response.
///
/// ```
/// use smtp_proto::client::{AuthCredentials, CustomCredentials};
/// use smtp_proto::sasl::CustomMechanism;
///
/// // EXTERNAL with an empty initial response: `AUTH EXTERNAL =`.
/// let external = CustomCredentials::new(CustomMechanism::new("EXTERNAL").unwrap())
///     .with_initial_response(Vec::new());
/// assert_eq!(external.initial_response(), Some(&b""[..]));
/// let creds = AuthCredentials::from(external);
/// assert_eq!(creds.mechanisms()[0].as_str(), "EXTERNAL");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CustomCredentials {
    mechanism: CustomMechanism,
    /// `mechanism` as a [`SaslMechanism`], for
    /// [`AuthCredentials::mechanisms`].
    as_sasl: SaslMechanism,
    initial_response: Option<SecretBytes>,
}

impl CustomCredentials {
    /// Credentials for `mechanism`, without an initial response: the AUTH
    /// command names the mechanism only and the server speaks first.
    #[must_use]
    pub fn new(mechanism: CustomMechanism) -> Self {
        Self {
            mechanism,
            as_sasl: SaslMechanism::Custom(mechanism),
            initial_response: None,
        }
    }

    /// Sends `response` (raw bytes; the machine base64-encodes them) with
    /// the AUTH command. An empty response goes out as `=` (RFC 4954 §4);
    /// one too long for the AUTH line, which keeps to the 512 octets of a
    /// command line (RFC 4954 §4, RFC 5321 §4.5.3.1.4), is sent after the
    /// server's first, empty, `334` instead, on a line of its own that
    /// must fit in 12288 octets (base64 and CRLF: at most 9213 raw
    /// octets), or
    /// [`Client::authenticate`](super::Client::authenticate) refuses it
    /// with [`UsageError::ResponseTooLong`](super::UsageError::ResponseTooLong).
    #[must_use]
    pub fn with_initial_response(mut self, response: impl Into<Vec<u8>>) -> Self {
        self.initial_response = Some(SecretBytes::new(response));
        self
    }

    /// The mechanism.
    #[must_use]
    pub fn mechanism(&self) -> CustomMechanism {
        self.mechanism
    }

    /// The initial response, if any.
    #[must_use]
    pub fn initial_response(&self) -> Option<&[u8]> {
        self.initial_response.as_ref().map(SecretBytes::expose)
    }
}

impl fmt::Debug for CustomCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomCredentials")
            .field("mechanism", &self.mechanism)
            .field("initial_response", &self.initial_response)
            .finish()
    }
}

impl From<CustomCredentials> for AuthCredentials {
    fn from(c: CustomCredentials) -> Self {
        AuthCredentials::Custom(c)
    }
}

impl AuthCredentials {
    /// Password credentials.
    #[must_use]
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        AuthCredentials::Password {
            authzid: None,
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// OAuth 2.0 bearer token credentials.
    #[must_use]
    pub fn oauth2(user: impl Into<String>, token: impl Into<String>) -> Self {
        AuthCredentials::OAuth2 {
            user: user.into(),
            token: Secret::new(token),
            host: None,
            port: None,
        }
    }

    /// Credentials for a mechanism the application runs itself, with the
    /// initial response to send with the AUTH command, if any (see
    /// [`CustomCredentials`]).
    #[must_use]
    pub fn custom(mechanism: CustomMechanism, initial_response: Option<&[u8]>) -> Self {
        let c = CustomCredentials::new(mechanism);
        AuthCredentials::Custom(match initial_response {
            Some(r) => c.with_initial_response(r),
            None => c,
        })
    }

    /// The mechanisms these credentials can use, best first. Password
    /// credentials with an authorization identity (not empty, and not the
    /// user name itself) can use PLAIN only, the one of the two that
    /// carries it.
    ///
    /// ```
    /// use smtp_proto::client::AuthCredentials;
    /// use smtp_proto::sasl::{SaslMechanism, Secret};
    ///
    /// let own = AuthCredentials::password("alice", "s3cret");
    /// assert_eq!(own.mechanisms(), &[SaslMechanism::Plain, SaslMechanism::Login]);
    /// let acting = AuthCredentials::Password {
    ///     authzid: Some("bob".into()),
    ///     username: "alice".into(),
    ///     password: Secret::new("s3cret"),
    /// };
    /// assert_eq!(acting.mechanisms(), &[SaslMechanism::Plain]);
    /// ```
    #[must_use]
    pub fn mechanisms(&self) -> &[SaslMechanism] {
        match self {
            AuthCredentials::Password {
                authzid: Some(authzid),
                username,
                ..
            } if !authzid.is_empty() && authzid != username => &[SaslMechanism::Plain],
            AuthCredentials::Password { .. } => &[SaslMechanism::Plain, SaslMechanism::Login],
            AuthCredentials::OAuth2 { .. } => &[SaslMechanism::OAuthBearer, SaslMechanism::XOAuth2],
            AuthCredentials::Custom(c) => core::slice::from_ref(&c.as_sasl),
        }
    }
}

/// Picks the mechanism: the forced one when it suits the credentials, else
/// the best one both sides support. A custom mechanism is used only when
/// the server advertises it (the name is compared without regard to case),
/// forced or not.
pub(crate) fn choose(
    credentials: &AuthCredentials,
    forced: Option<SaslMechanism>,
    ehlo: Option<&EhloReply<'_>>,
) -> Option<SaslMechanism> {
    if let AuthCredentials::Custom(c) = credentials {
        if forced.is_some_and(|f| f != c.as_sasl) {
            return None;
        }
        return ehlo?
            .supports_auth(AuthMechanism::from_name(c.mechanism.as_str()))
            .then_some(c.as_sasl);
    }
    let usable = credentials.mechanisms();
    if let Some(m) = forced {
        return usable.contains(&m).then_some(m);
    }
    let ehlo = ehlo?;
    usable
        .iter()
        .copied()
        .find(|m| ehlo.supports_auth(AuthMechanism::from_name(m.as_str())))
}

/// How an authentication attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// 535: the credentials are wrong (RFC 4954 §6).
    InvalidCredentials,
    /// 534: the mechanism is too weak for this account.
    MechanismTooWeak,
    /// 538: the mechanism needs an encrypted connection.
    EncryptionRequired,
    /// 454 or another 4xx: try again later.
    Temporary,
    /// The exchange was cancelled with `*` (the server answers 501).
    Cancelled,
    /// A challenge was not valid base64 (RFC 4954 §4: the client "MUST
    /// cancel the authentication using the "*" response"), or came as a
    /// multi-line 334 reply where RFC 4954 §4 allows one line: the client
    /// cancelled the exchange with `*`, whatever the mechanism.
    BadChallenge,
    /// The server sent more challenges than
    /// [`ClientConfig::max_auth_rounds`](super::ClientConfig::max_auth_rounds)
    /// allows: the client cancelled the exchange with `*`.
    TooManyRounds,
    /// Any other refusal (for example 504 unknown mechanism).
    Other,
}

impl AuthFailure {
    pub(crate) fn of(code: u16, cancelled: bool) -> Self {
        match code {
            535 => AuthFailure::InvalidCredentials,
            534 => AuthFailure::MechanismTooWeak,
            538 => AuthFailure::EncryptionRequired,
            _ if cancelled => AuthFailure::Cancelled,
            400..=499 => AuthFailure::Temporary,
            _ => AuthFailure::Other,
        }
    }
}

/// One running AUTH exchange.
pub(crate) struct Exchange {
    pub(crate) mechanism: SaslMechanism,
    credentials: AuthCredentials,
    login: Option<LoginClient>,
    /// 334 challenges answered (a delayed initial response not counted).
    answered: u8,
    pub(crate) cancel_requested: bool,
    pub(crate) cancelled: bool,
    /// Why the machine cancelled a custom mechanism's exchange by itself.
    pub(crate) cancel_reason: Option<AuthFailure>,
    /// `334` challenges received (custom mechanisms).
    round: usize,
    /// An initial response too long for the AUTH line, sent after the
    /// server's first (empty) 334 instead.
    pub(crate) delayed_initial: Option<Vec<u8>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .field("credentials", &self.credentials)
            .field("answered", &self.answered)
            .field("round", &self.round)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

impl Exchange {
    pub(crate) fn new(mechanism: SaslMechanism, credentials: AuthCredentials) -> Self {
        let login = match (&credentials, mechanism) {
            (
                AuthCredentials::Password {
                    username, password, ..
                },
                SaslMechanism::Login,
            ) => Some(LoginClient::new(username, password.expose())),
            _ => None,
        };
        Self {
            mechanism,
            credentials,
            login,
            answered: 0,
            cancel_requested: false,
            cancelled: false,
            cancel_reason: None,
            round: 0,
            delayed_initial: None,
        }
    }

    /// The initial response for mechanisms that send one (RFC 4954 §4):
    /// PLAIN, XOAUTH2 and OAUTHBEARER. LOGIN waits for its challenges.
    pub(crate) fn initial_response(&self) -> Result<Option<Vec<u8>>, sasl::SaslError> {
        match (&self.credentials, self.mechanism) {
            (
                AuthCredentials::Password {
                    authzid,
                    username,
                    password,
                },
                SaslMechanism::Plain,
            ) => sasl::plain_response(authzid.as_deref(), username, password.expose()).map(Some),
            // LOGIN sends nothing yet, but a server refuses an empty user
            // name or password (its answers), or a NUL in either, as PLAIN
            // does: refuse them here instead.
            (
                AuthCredentials::Password {
                    username, password, ..
                },
                SaslMechanism::Login,
            ) => sasl::check_login(username, password.expose()).map(|()| None),
            (AuthCredentials::OAuth2 { user, token, .. }, SaslMechanism::XOAuth2) => {
                sasl::xoauth2_response(user, token.expose()).map(Some)
            }
            (
                AuthCredentials::OAuth2 {
                    user,
                    token,
                    host,
                    port,
                },
                SaslMechanism::OAuthBearer,
            ) => sasl::oauthbearer_response(Some(user), host.as_deref(), *port, token.expose())
                .map(Some),
            (AuthCredentials::Custom(c), _) => Ok(c.initial_response().map(<[u8]>::to_vec)),
            _ => Ok(None),
        }
    }

    /// The longest response LOGIN will send after a `334` (its user name
    /// or its password), in octets; 0 for other mechanisms.
    pub(crate) fn longest_login_response(&self) -> usize {
        match (&self.credentials, self.mechanism) {
            (
                AuthCredentials::Password {
                    username, password, ..
                },
                SaslMechanism::Login,
            ) => username.len().max(password.expose().len()),
            _ => 0,
        }
    }

    /// A `334` challenge (`text`, the reply's base64 text, or `None` for a
    /// multi-line reply) in the exchange of a custom mechanism, or `None`
    /// for a built-in one. The machine answers by itself (writing the line
    /// to `out`) a cancel asked for before the challenge came, a
    /// multi-line 334 (RFC 4954 §4 allows one line only), the initial
    /// response that did not fit on the AUTH line, a challenge past
    /// `max_rounds` and one that is not base64; any other challenge is
    /// the application's to answer.
    pub(crate) fn custom_challenge(
        &mut self,
        text: Option<&[u8]>,
        max_rounds: usize,
        out: &mut Vec<u8>,
    ) -> Option<CustomStep> {
        let SaslMechanism::Custom(mechanism) = self.mechanism else {
            return None;
        };
        self.round = self.round.saturating_add(1);
        if self.cancel_requested || self.cancelled {
            return Some(self.cancel(None, out));
        }
        let Some(challenge) = text.and_then(decode_challenge) else {
            return Some(self.cancel(Some(AuthFailure::BadChallenge), out));
        };
        if let Some(initial) = self.delayed_initial.take() {
            out.extend_from_slice(Base64::encode(&initial).as_str().as_bytes());
            out.extend_from_slice(b"\r\n");
            return Some(CustomStep::Answered);
        }
        if self.round > max_rounds {
            return Some(self.cancel(Some(AuthFailure::TooManyRounds), out));
        }
        Some(CustomStep::Ask {
            mechanism,
            challenge,
            round: self.round,
        })
    }

    /// Cancels the exchange: writes `*` (RFC 4954 §4) and keeps the first
    /// reason the machine had.
    pub(crate) fn cancel(&mut self, reason: Option<AuthFailure>, out: &mut Vec<u8>) -> CustomStep {
        self.cancelled = true;
        if self.cancel_reason.is_none() {
            self.cancel_reason = reason;
        }
        out.extend_from_slice(b"*\r\n");
        CustomStep::Answered
    }

    /// The line answering a 334 challenge of a built-in mechanism (the
    /// base64 text of the reply, or `None` for a multi-line reply), CRLF
    /// included: a response, or `*` to cancel. A challenge that does not
    /// decode is cancelled (RFC 4954 §4: the client "MUST cancel the
    /// authentication using the "*" response"), so is a multi-line one.
    pub(crate) fn answer(&mut self, challenge_b64: Option<&[u8]>, out: &mut Vec<u8>) {
        let decoded = challenge_b64.and_then(decode_challenge);
        if !(self.cancel_requested || self.cancelled) && decoded.is_none() {
            self.cancel(Some(AuthFailure::BadChallenge), out);
            return;
        }
        let response: Option<Vec<u8>> = if self.cancel_requested || self.cancelled {
            None
        } else if let Some(initial) = self.delayed_initial.take() {
            // RFC 4954 §4: the response that did not fit on the AUTH line.
            // It is the initial response, not an answer to a challenge, so
            // it is not counted: an XOAUTH2 or OAUTHBEARER error challenge
            // after it still gets its empty (or %x01) line.
            Some(initial)
        } else {
            self.answered = self.answered.saturating_add(1);
            match self.mechanism {
                SaslMechanism::Login if self.answered <= 2 => match (&mut self.login, decoded) {
                    (Some(login), Some(challenge)) => Some(login.respond(&challenge)),
                    _ => None,
                },
                // A challenge after the initial response carries an error
                // description; the client answers with an empty response
                // (XOAUTH2) or %x01 (RFC 7628 §3.2.3) and the server then
                // sends its failure reply.
                SaslMechanism::XOAuth2 if self.answered == 1 => Some(Vec::new()),
                SaslMechanism::OAuthBearer if self.answered == 1 => Some(vec![0x01]),
                _ => None,
            }
        };
        match response {
            Some(raw) => {
                out.extend_from_slice(Base64::encode(&raw).as_str().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => {
                self.cancelled = true;
                out.extend_from_slice(b"*\r\n");
            }
        }
    }
}

/// The raw bytes of a `334` challenge's base64 text, or `None` when it is
/// not base64 (RFC 4954 §4: characters outside the alphabet and padding
/// inside the text are refused, not ignored). Only ASCII white space
/// around the text is let pass; other characters, non-ASCII white space
/// included, are not base64. The empty text, the empty challenge, decodes
/// to nothing.
fn decode_challenge(text: &[u8]) -> Option<Vec<u8>> {
    let text = core::str::from_utf8(text.trim_ascii()).ok()?;
    Base64::new(text).ok()?.decode().ok()
}

/// What the machine does with a custom mechanism's `334` challenge.
#[derive(Debug)]
pub(crate) enum CustomStep {
    /// The machine answered it by itself.
    Answered,
    /// The application answers this decoded challenge.
    Ask {
        mechanism: CustomMechanism,
        challenge: Vec<u8>,
        round: usize,
    },
}
