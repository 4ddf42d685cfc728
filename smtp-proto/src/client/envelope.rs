//! What one mail transaction carries: the sender, the recipients and the
//! MAIL / RCPT parameters the caller asks for.

use crate::command::{BodyType, EnvId, ForwardPath, Notify, Orcpt, Ret, ReversePath};
use std::collections::HashSet;

use crate::reply::Limits;

/// One recipient and its DSN parameters (RFC 3461), sent only when the
/// server advertises DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recipient<'a> {
    /// The forward path.
    pub path: ForwardPath<'a>,
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<Orcpt<'a>>,
}

impl<'a> Recipient<'a> {
    /// A recipient without DSN parameters.
    #[must_use]
    pub fn new(path: ForwardPath<'a>) -> Self {
        Self {
            path,
            notify: None,
            orcpt: None,
        }
    }

    /// Sets `NOTIFY=`.
    #[must_use]
    pub fn with_notify(mut self, notify: Notify) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Sets `ORCPT=`.
    #[must_use]
    pub fn with_orcpt(mut self, orcpt: Orcpt<'a>) -> Self {
        self.orcpt = Some(orcpt);
        self
    }
}

/// The envelope of one message.
///
/// The client sends only the parameters the server advertised: SIZE with
/// SIZE, BODY with 8BITMIME / BINARYMIME, SMTPUTF8, the DSN parameters with
/// DSN, REQUIRETLS with REQUIRETLS. A message whose [`Envelope::body`] or
/// addresses need an extension the server lacks is refused locally before
/// anything is sent.
///
/// ```
/// use smtp_proto::client::Envelope;
/// use smtp_proto::command::{BodyType, ForwardPath, Mailbox, ReversePath};
///
/// let env = Envelope::new(ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap()))
///     .recipient(ForwardPath::Mailbox(Mailbox::parse("b@example.net").unwrap()))
///     .with_body(BodyType::EightBitMime)
///     .with_size(1024);
/// assert_eq!(env.recipients.len(), 1);
/// assert!(!env.needs_smtputf8());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope<'a> {
    /// The reverse path (`<>` for bounces).
    pub sender: ReversePath<'a>,
    /// The recipients, in order; events name them by index.
    pub recipients: Vec<Recipient<'a>>,
    /// The body type. `None` sends no BODY parameter (7-bit content).
    pub body: Option<BodyType>,
    /// The message size in octets, sent as `SIZE=` and checked against the
    /// server's limit. RFC 1870 §5 counts the message as it goes out, CRLF
    /// line ends included, but not the dots DATA adds (dot-stuffing) nor
    /// its final `.`: the length of the message with CRLF line ends. The
    /// client does not count it: a bare LF or CR in the body, sent as
    /// CRLF, adds one octet, and a last line without CRLF gets one (two
    /// octets).
    pub size: Option<u64>,
    /// The message needs SMTPUTF8 (RFC 6531) even though no address does,
    /// for example for UTF-8 header fields.
    pub smtputf8: bool,
    /// `RET=` (DSN).
    pub ret: Option<Ret>,
    /// `ENVID=` (DSN).
    pub envid: Option<EnvId<'a>>,
    /// `REQUIRETLS` (RFC 8689): the message may only travel over TLS; it is
    /// refused locally unless the connection is encrypted and the server
    /// offers REQUIRETLS.
    pub require_tls: bool,
}

impl<'a> Envelope<'a> {
    /// An envelope with a sender and no recipients yet.
    #[must_use]
    pub fn new(sender: ReversePath<'a>) -> Self {
        Self {
            sender,
            recipients: Vec::new(),
            body: None,
            size: None,
            smtputf8: false,
            ret: None,
            envid: None,
            require_tls: false,
        }
    }

    /// Adds a recipient without DSN parameters.
    #[must_use]
    pub fn recipient(mut self, path: ForwardPath<'a>) -> Self {
        self.recipients.push(Recipient::new(path));
        self
    }

    /// Adds a recipient with its parameters.
    #[must_use]
    pub fn with_recipient(mut self, recipient: Recipient<'a>) -> Self {
        self.recipients.push(recipient);
        self
    }

    /// Sets [`Envelope::body`].
    #[must_use]
    pub fn with_body(mut self, body: BodyType) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets [`Envelope::size`].
    #[must_use]
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets [`Envelope::smtputf8`].
    #[must_use]
    pub fn with_smtputf8(mut self, on: bool) -> Self {
        self.smtputf8 = on;
        self
    }

    /// Sets the DSN `RET=` and `ENVID=` parameters.
    #[must_use]
    pub fn with_dsn(mut self, ret: Option<Ret>, envid: Option<EnvId<'a>>) -> Self {
        self.ret = ret;
        self.envid = envid;
        self
    }

    /// Sets [`Envelope::require_tls`].
    #[must_use]
    pub fn with_require_tls(mut self, on: bool) -> Self {
        self.require_tls = on;
        self
    }

    /// The number of distinct recipient domains, compared without regard
    /// to ASCII case: what `LIMITS RCPTDOMAINMAX` (RFC 9422 §4.3) limits.
    /// `<Postmaster>` names no domain and is not counted.
    ///
    /// ```
    /// use smtp_proto::client::Envelope;
    /// use smtp_proto::command::{ForwardPath, Mailbox, ReversePath};
    /// let to = |s| ForwardPath::Mailbox(Mailbox::parse(s).unwrap());
    /// let env = Envelope::new(ReversePath::Null)
    ///     .recipient(to("a@example.org"))
    ///     .recipient(to("b@EXAMPLE.org"))
    ///     .recipient(to("c@example.net"))
    ///     .recipient(ForwardPath::Postmaster);
    /// assert_eq!(env.recipient_domains(), 2);
    /// ```
    #[must_use]
    pub fn recipient_domains(&self) -> usize {
        let mut domains: Vec<String> = self.recipients.iter().filter_map(domain_key).collect();
        domains.sort_unstable();
        domains.dedup();
        domains.len()
    }

    /// Keeps in this envelope the recipients, from the first, that one
    /// transaction can carry under the server's `limits` (at most
    /// `RCPTMAX`, in at most `RCPTDOMAINMAX` domains as
    /// [`Envelope::recipient_domains`] counts them, and always at least
    /// one), and returns the others in an envelope with the same sender and
    /// parameters, or `None` when they all fit. Send this one, then the
    /// rest (split again) in the transactions that follow; the events of
    /// each transaction number its recipients from 0.
    ///
    /// The parts are one message: when the whole envelope needs SMTPUTF8
    /// ([`Envelope::needs_smtputf8`]: a UTF-8 address in any part), both
    /// parts ask for it ([`Envelope::smtputf8`] is set), as RFC 6531 §3.4
    /// asks of an "envelope or message" that needs it. A part of ASCII
    /// addresses is thus never sent without SMTPUTF8 while another part of
    /// the same message needs it, and a server without SMTPUTF8 refuses the
    /// message for all its recipients, as it does unsplit.
    ///
    /// ```
    /// use smtp_proto::client::Envelope;
    /// use smtp_proto::command::{ForwardPath, Mailbox, ReversePath};
    /// use smtp_proto::reply::Limits;
    ///
    /// let to = |s| ForwardPath::Mailbox(Mailbox::parse(s).unwrap());
    /// let mut env = Envelope::new(ReversePath::Null)
    ///     .recipient(to("a@one.example"))
    ///     .recipient(to("b@one.example"))
    ///     .recipient(to("c@two.example"))
    ///     .recipient(to("d@two.example"));
    /// let limits = Limits { rcpt_max: Some(3), rcpt_domain_max: Some(1), ..Limits::default() };
    /// let rest = env.split_to_fit(&limits).unwrap();
    /// assert_eq!(env.recipients.len(), 2); // a@ and b@: one domain
    /// assert_eq!(rest.recipients.len(), 2); // c@ and d@
    /// assert!(rest.clone().split_to_fit(&limits).is_none());
    /// ```
    #[must_use]
    pub fn split_to_fit(&mut self, limits: &Limits) -> Option<Envelope<'a>> {
        let fit = fitting(&self.recipients, limits);
        if fit >= self.recipients.len() {
            return None;
        }
        let smtputf8 = self.needs_smtputf8();
        self.smtputf8 = smtputf8;
        let rest = self.recipients.split_off(fit);
        Some(Envelope {
            sender: self.sender.clone(),
            recipients: rest,
            body: self.body,
            size: self.size,
            smtputf8,
            ret: self.ret,
            envid: self.envid.clone(),
            require_tls: self.require_tls,
        })
    }

    /// True when the message needs SMTPUTF8: asked for, or an address is
    /// UTF-8.
    #[must_use]
    pub fn needs_smtputf8(&self) -> bool {
        self.smtputf8 || self.sender.is_utf8() || self.recipients.iter().any(|r| r.path.is_utf8())
    }
}

/// How many of `recipients`, from the first, one transaction can carry
/// under `limits` (see [`Envelope::split_to_fit`]): at least one when there
/// is one. One pass, whatever the number of domains.
pub(crate) fn fitting<'r, 'a: 'r>(
    recipients: impl IntoIterator<Item = &'r Recipient<'a>>,
    limits: &Limits,
) -> usize {
    let most = |limit: Option<u32>| {
        limit.map_or(usize::MAX, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).max(1)
        })
    };
    let max_rcpts = most(limits.rcpt_max);
    let Some(max_domains) = limits.rcpt_domain_max.map(|n| most(Some(n))) else {
        return recipients.into_iter().take(max_rcpts).count();
    };
    let mut domains: HashSet<String> = HashSet::new();
    let mut fit = 0;
    for r in recipients.into_iter().take(max_rcpts) {
        if let Some(domain) = domain_key(r) {
            if !domains.contains(&domain) {
                if domains.len() == max_domains && fit > 0 {
                    break;
                }
                domains.insert(domain);
            }
        }
        fit += 1;
    }
    fit
}

/// The domain of a recipient as `RCPTDOMAINMAX` counts it: ASCII case
/// folded; `<Postmaster>` has none.
fn domain_key(r: &Recipient<'_>) -> Option<String> {
    match &r.path {
        ForwardPath::Mailbox(mb) => Some(mb.domain().as_str().to_ascii_lowercase()),
        _ => None,
    }
}
