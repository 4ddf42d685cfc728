//! Client side of SMTP AUTH (RFC 4954): credentials, mechanism choice and
//! the 334 exchange.

use crate::command::Base64;
use crate::reply::{AuthMechanism, EhloReply};
use crate::sasl::{self, LoginClient, SaslMechanism, Secret};
use core::fmt;

/// What the client authenticates with. `Debug` never shows a password or
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthCredentials {
    /// A user name and password: PLAIN (preferred) or LOGIN.
    Password {
        /// Act as this identity (PLAIN only), when different from the user.
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

    /// The mechanisms these credentials can use, best first.
    #[must_use]
    pub fn mechanisms(&self) -> &'static [SaslMechanism] {
        match self {
            AuthCredentials::Password { .. } => &[SaslMechanism::Plain, SaslMechanism::Login],
            AuthCredentials::OAuth2 { .. } => &[SaslMechanism::OAuthBearer, SaslMechanism::XOAuth2],
        }
    }
}

/// Picks the mechanism: the forced one when it suits the credentials, else
/// the best one both sides support.
pub(crate) fn choose(
    credentials: &AuthCredentials,
    forced: Option<SaslMechanism>,
    ehlo: Option<&EhloReply<'_>>,
) -> Option<SaslMechanism> {
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
    /// Responses sent after 334 challenges.
    answered: u8,
    pub(crate) cancel_requested: bool,
    pub(crate) cancelled: bool,
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
            // name (its first answer): refuse it here instead.
            (AuthCredentials::Password { username, .. }, SaslMechanism::Login)
                if username.is_empty() =>
            {
                Err(sasl::SaslError::Unencodable("empty user name"))
            }
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
            _ => Ok(None),
        }
    }

    /// The line answering a 334 challenge (base64 text of the reply),
    /// CRLF included: a response, or `*` to cancel.
    pub(crate) fn answer(&mut self, challenge_b64: &[u8], out: &mut Vec<u8>) {
        let decoded = core::str::from_utf8(challenge_b64)
            .ok()
            .and_then(|s| Base64::new(s.trim()).ok())
            .and_then(|b| b.decode().ok());
        let response: Option<Vec<u8>> = if self.cancel_requested || self.cancelled {
            None
        } else if let Some(initial) = self.delayed_initial.take() {
            // RFC 4954 §4: the response that did not fit on the AUTH line.
            Some(initial)
        } else {
            match self.mechanism {
                SaslMechanism::Login if self.answered < 2 => match (&mut self.login, decoded) {
                    (Some(login), Some(challenge)) => Some(login.respond(&challenge)),
                    _ => None,
                },
                // A challenge after the initial response carries an error
                // description; the client answers with an empty response
                // (XOAUTH2) or %x01 (RFC 7628 §3.2.3) and the server then
                // sends its failure reply.
                SaslMechanism::XOAuth2 if self.answered == 0 => Some(Vec::new()),
                SaslMechanism::OAuthBearer if self.answered == 0 => Some(vec![0x01]),
                _ => None,
            }
        };
        self.answered = self.answered.saturating_add(1);
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
