//! The application's answers to the challenges of a SASL mechanism it runs
//! itself, for a [`Delivery`](super::Delivery): [`SaslResponder`] and
//! [`SaslAnswer`].

use core::fmt;

use crate::sasl::{CustomMechanism, SecretBytes};

/// How a [`SaslResponder`] answers one challenge. `Debug` never shows the
/// response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslAnswer {
    /// Send this response (raw bytes; the client base64-encodes them on a
    /// line of their own, an empty response as an empty line). A response
    /// whose line would pass the 12288 octets of RFC 4954 §4 (more than
    /// 9213 raw octets) cannot be sent: the exchange is cancelled instead.
    Respond(SecretBytes),
    /// Cancel the exchange: the client answers the challenge with `*`
    /// (RFC 4954 §4), and the server ends it with its failure reply
    /// (usually `501`).
    Cancel,
}

impl SaslAnswer {
    /// [`SaslAnswer::Respond`] with `response` (raw bytes).
    #[must_use]
    pub fn respond(response: impl Into<Vec<u8>>) -> Self {
        SaslAnswer::Respond(SecretBytes::new(response))
    }
}

/// Answers the challenges of a SASL mechanism the application runs itself
/// (CRAM-MD5, SCRAM-SHA-256, EXTERNAL...,
/// [`AuthCredentials::Custom`](super::AuthCredentials::Custom)) for a
/// [`Delivery`](super::Delivery): see
/// [`Delivery::with_auth_responder`](super::Delivery::with_auth_responder).
/// The mechanism's computation (a keyed digest, a SCRAM proof and the
/// check of the server's signature...) is the responder's; the client
/// frames the exchange, decodes each `334` challenge and encodes each
/// response.
///
/// Closures `FnMut(CustomMechanism, &[u8], usize) -> SaslAnswer` are
/// responders (write the challenge's type, `|_, challenge: &[u8], round|`,
/// for the closure to take any lifetime); a type that keeps state between
/// rounds (SCRAM's nonce and salted password) implements the trait.
///
/// ```
/// use smtp_proto::client::{SaslAnswer, SaslResponder};
/// use smtp_proto::sasl::CustomMechanism;
///
/// /// A two-step mechanism: a user name, then a one-time code.
/// #[derive(Clone)]
/// struct TwoStep {
///     code: Vec<u8>,
/// }
///
/// impl SaslResponder for TwoStep {
///     fn respond(&mut self, _: CustomMechanism, challenge: &[u8], round: usize) -> SaslAnswer {
///         match (round, challenge) {
///             (1, b"user?") => SaslAnswer::respond(&b"tim"[..]),
///             (2, b"code?") => SaslAnswer::respond(self.code.clone()),
///             _ => SaslAnswer::Cancel,
///         }
///     }
/// }
///
/// let mut responder = TwoStep { code: b"123456".to_vec() };
/// let mechanism = CustomMechanism::new("X-TWO-STEP").unwrap();
/// assert_eq!(responder.respond(mechanism, b"user?", 1), SaslAnswer::respond(&b"tim"[..]));
/// assert_eq!(responder.respond(mechanism, b"what?", 3), SaslAnswer::Cancel);
/// // `Debug` hides the response.
/// assert_eq!(format!("{:?}", SaslAnswer::respond(&b"123456"[..])), "Respond(<redacted>)");
/// ```
pub trait SaslResponder {
    /// Answers `challenge` (base64-decoded by the client, possibly empty),
    /// the server's `round`-th `334` in the exchange of `mechanism` (the
    /// first is round 1). A `334` the client answered by itself (with an
    /// initial response too long for the AUTH line) counts as a round but
    /// is not handed to the responder. The client asks no more than
    /// [`ClientConfig::max_auth_rounds`](super::ClientConfig::max_auth_rounds)
    /// rounds; past them it cancels by itself.
    fn respond(&mut self, mechanism: CustomMechanism, challenge: &[u8], round: usize)
        -> SaslAnswer;
}

impl<F> SaslResponder for F
where
    F: FnMut(CustomMechanism, &[u8], usize) -> SaslAnswer,
{
    fn respond(
        &mut self,
        mechanism: CustomMechanism,
        challenge: &[u8],
        round: usize,
    ) -> SaslAnswer {
        self(mechanism, challenge, round)
    }
}

/// A [`SaslResponder`] a [`Delivery`](super::Delivery) holds: boxed, so
/// that the delivery stays one type, and cloned with it.
pub(crate) struct Responder(Box<dyn ErasedResponder>);

impl Responder {
    pub(crate) fn new<R>(responder: R) -> Self
    where
        R: SaslResponder + Clone + Send + Sync + 'static,
    {
        Responder(Box::new(responder))
    }

    pub(crate) fn respond(
        &mut self,
        mechanism: CustomMechanism,
        challenge: &[u8],
        round: usize,
    ) -> SaslAnswer {
        self.0.answer(mechanism, challenge, round)
    }
}

impl Clone for Responder {
    fn clone(&self) -> Self {
        Responder(self.0.clone_box())
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The responder's state may hold a password or keys.
        f.write_str("SaslResponder(..)")
    }
}

/// [`SaslResponder`] with the clone a boxed one needs.
trait ErasedResponder: Send + Sync {
    fn answer(&mut self, mechanism: CustomMechanism, challenge: &[u8], round: usize) -> SaslAnswer;
    fn clone_box(&self) -> Box<dyn ErasedResponder>;
}

impl<R> ErasedResponder for R
where
    R: SaslResponder + Clone + Send + Sync + 'static,
{
    fn answer(&mut self, mechanism: CustomMechanism, challenge: &[u8], round: usize) -> SaslAnswer {
        SaslResponder::respond(self, mechanism, challenge, round)
    }

    fn clone_box(&self) -> Box<dyn ErasedResponder> {
        Box::new(self.clone())
    }
}
