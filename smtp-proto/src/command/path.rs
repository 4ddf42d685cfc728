//! Paths and mailboxes (RFC 5321 §4.1.2).

use std::borrow::Cow;
use std::fmt;

use super::error::{PathError, ValueError};
use super::value::{
    check_address_literal, check_domain, scan_domain, scan_local_part, Domain, LocalPart,
};

/// `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 §4.1.2)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    local_part: LocalPart<'a>,
    domain: Domain<'a>,
}

impl<'a> Mailbox<'a> {
    /// Joins a local part and a domain, checking the 256-octet path limit.
    ///
    /// ```
    /// use smtp_proto::command::{Domain, LocalPart, Mailbox};
    /// let mb = Mailbox::new(LocalPart::new("bob").unwrap(), Domain::new("example.org").unwrap()).unwrap();
    /// assert_eq!(mb.to_string(), "bob@example.org");
    /// ```
    pub fn new(local_part: LocalPart<'a>, domain: Domain<'a>) -> Result<Self, ValueError> {
        // "<" local "@" domain ">" must fit in 256 octets (RFC 5321 §4.5.3.1.3).
        if local_part.as_str().len() + domain.as_str().len() + 3 > 256 {
            return Err(ValueError::TooLong);
        }
        Ok(Self { local_part, domain })
    }

    /// Parses `local@domain` without brackets. As with [`Mailbox::new`], a
    /// mailbox over 254 octets, which no 256-octet path can hold with its
    /// brackets, is refused ([`PathError::PathTooLong`]).
    ///
    /// ```
    /// use smtp_proto::command::Mailbox;
    /// let mb = Mailbox::parse("\"a b\"@[192.0.2.1]").unwrap();
    /// assert!(mb.local_part().is_quoted());
    /// assert!(mb.domain().is_address_literal());
    /// ```
    pub fn parse(s: &'a str) -> Result<Self, PathError> {
        let (mb, used) = scan_mailbox(s)?;
        if used != s.len() {
            return Err(PathError::TrailingCharacters);
        }
        Ok(mb)
    }

    /// The local part, as sent.
    #[must_use]
    pub fn local_part(&self) -> &LocalPart<'a> {
        &self.local_part
    }

    /// The domain or address literal, as sent.
    #[must_use]
    pub fn domain(&self) -> &Domain<'a> {
        &self.domain
    }

    /// True when the address needs SMTPUTF8 (RFC 6531).
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        self.local_part.is_utf8() || self.domain.is_utf8()
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            local_part: self.local_part.into_owned(),
            domain: self.domain.into_owned(),
        }
    }
}

impl fmt::Display for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.domain)
    }
}

/// `Reverse-path = Path / "<>"` (RFC 5321 §4.1.2)
///
/// `Display` writes the path as on the wire, brackets included (`<>`,
/// `<a@example.com>`); the [`Mailbox`] alone displays without them.
///
/// ```
/// use smtp_proto::command::{Command, ReversePath};
/// let Ok(Command::Mail(m)) = Command::parse(b"MAIL FROM:<a@example.com>") else { panic!() };
/// assert_eq!(m.reverse_path.to_string(), "<a@example.com>");
/// let ReversePath::Mailbox(b) = &m.reverse_path else { panic!() };
/// assert_eq!(b.to_string(), "a@example.com");
/// assert_eq!(ReversePath::Null.to_string(), "<>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath<'a> {
    /// The null reverse path `<>`, used for bounces.
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox<'a>),
}

impl ReversePath<'_> {
    /// True when the address needs SMTPUTF8.
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        matches!(self, ReversePath::Mailbox(m) if m.is_utf8())
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> ReversePath<'static> {
        match self {
            ReversePath::Null => ReversePath::Null,
            ReversePath::Mailbox(m) => ReversePath::Mailbox(m.into_owned()),
        }
    }
}

impl fmt::Display for ReversePath<'_> {
    /// Writes the path with its brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// `Forward-path = Path`, or the special `<Postmaster>` (RFC 5321 §4.1.1.3)
///
/// `Display` writes the path as on the wire, brackets included
/// (`<Postmaster>`, `<b@example.com>`); the [`Mailbox`] alone displays
/// without them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath<'a> {
    /// `<Postmaster>` without a domain (any case). After a source route
    /// (`<@relay:Postmaster>`) a domain is needed: that path is refused.
    Postmaster,
    /// A recipient mailbox.
    Mailbox(Mailbox<'a>),
}

impl ForwardPath<'_> {
    /// True when the address needs SMTPUTF8.
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        matches!(self, ForwardPath::Mailbox(m) if m.is_utf8())
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> ForwardPath<'static> {
        match self {
            ForwardPath::Postmaster => ForwardPath::Postmaster,
            ForwardPath::Mailbox(m) => ForwardPath::Mailbox(m.into_owned()),
        }
    }
}

impl fmt::Display for ForwardPath<'_> {
    /// Writes the path with its brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Scans `Mailbox` at the start of `s`; returns it and the octets used.
#[inline(always)]
fn scan_mailbox(s: &str) -> Result<(Mailbox<'_>, usize), PathError> {
    let b = s.as_bytes();
    let lp_len = scan_local_part(b).map_err(|e| match e {
        ValueError::TooLong => PathError::LocalPartTooLong,
        _ => PathError::InvalidLocalPart,
    })?;
    if b.get(lp_len) != Some(&b'@') {
        return Err(match b.get(lp_len) {
            None | Some(b'>') => PathError::MissingDomain,
            Some(_) => PathError::InvalidLocalPart,
        });
    }
    let dom_start = lp_len + 1;
    let rest = &b[dom_start..];
    let dom_len = if rest.first() == Some(&b'[') {
        let close = memchr::memchr(b']', rest).ok_or(PathError::InvalidDomain)?;
        let lit = &s[dom_start..dom_start + close + 1];
        check_address_literal(lit).map_err(|_| PathError::InvalidDomain)?;
        close + 1
    } else {
        match scan_domain(rest) {
            (n, true) if matches!(rest.get(n), None | Some(b'>' | b' ')) => n,
            _ => {
                let n = rest
                    .iter()
                    .position(|&c| c == b'>' || c == b' ')
                    .unwrap_or(rest.len());
                check_domain(&s[dom_start..dom_start + n]).map_err(|e| match e {
                    ValueError::TooLong if n > 255 => PathError::DomainTooLong,
                    _ => PathError::InvalidDomain,
                })?;
                n
            }
        }
    };
    let end = dom_start + dom_len;
    // A path holds at most 256 octets with its brackets (RFC 5321
    // §4.5.3.1.3), so no mailbox in one is longer than 254.
    if end > 254 {
        return Err(PathError::PathTooLong);
    }
    let mb = Mailbox {
        local_part: LocalPart(Cow::Borrowed(&s[..lp_len])),
        domain: Domain(Cow::Borrowed(&s[dom_start..end])),
    };
    Ok((mb, end))
}

/// What a path scan found.
pub(crate) enum ScannedPath<'a> {
    Null,
    Postmaster,
    Mailbox(Mailbox<'a>),
}

/// Scans `Path = "<" [ A-d-l ":" ] Mailbox ">"` or `"<>"` at the start of
/// `s` (RFC 5321 §4.1.2). The source route (`A-d-l`) is checked and dropped
/// (RFC 5321 §4.1.1.3, Appendix C). Returns the path and the octets used.
///
/// With `allow_unbracketed`, a bare `local@domain` is accepted too.
#[inline(always)]
pub(crate) fn scan_path(
    s: &str,
    allow_unbracketed: bool,
) -> Result<(ScannedPath<'_>, usize), PathError> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        if !allow_unbracketed || b.is_empty() {
            return Err(PathError::MissingBrackets);
        }
        let (mb, used) = scan_mailbox(s)?;
        return Ok((ScannedPath::Mailbox(mb), used));
    }
    if b.get(1) == Some(&b'>') {
        return Ok((ScannedPath::Null, 2));
    }
    let mut start = 1;
    if b.get(1) == Some(&b'@') {
        // A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain
        let colon = memchr::memchr(b':', b).ok_or(PathError::InvalidSourceRoute)?;
        for at_domain in s[1..colon].split(',') {
            let dom = at_domain
                .strip_prefix('@')
                .ok_or(PathError::InvalidSourceRoute)?;
            check_domain(dom).map_err(|_| PathError::InvalidSourceRoute)?;
        }
        start = colon + 1;
    }
    let inner = &s[start..];
    // Only `<Postmaster>` itself is special (RFC 5321 §4.1.1.3): after a
    // source route, `Path` needs a whole `Mailbox`, so a bare
    // `Postmaster` there is refused as a mailbox without a domain.
    if start == 1
        && inner.len() >= 11
        && inner.as_bytes()[0] | 0x20 == b'p'
        && inner.as_bytes()[..10].eq_ignore_ascii_case(b"postmaster")
        && inner.as_bytes().get(10) == Some(&b'>')
    {
        return Ok((ScannedPath::Postmaster, start + 11));
    }
    let (mb, used) = scan_mailbox(inner)?;
    let close = start + used;
    if b.get(close) != Some(&b'>') {
        return Err(if close >= b.len() {
            PathError::MissingBrackets
        } else {
            PathError::InvalidDomain
        });
    }
    if close + 1 > 256 {
        return Err(PathError::PathTooLong);
    }
    Ok((ScannedPath::Mailbox(mb), close + 1))
}
