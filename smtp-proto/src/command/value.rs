//! Validated string values that appear in commands.
//!
//! Each type can only be built through a constructor that checks it, so a
//! value that exists cannot carry CR, LF or NUL onto the wire.

use std::borrow::Cow;
use std::fmt;

use super::error::ValueError;
use super::owned;

/// Byte classes used by the grammar rules, one table lookup per byte.
pub(crate) mod class {
    /// `atext` (RFC 5322 §3.2.3, as used by RFC 5321 `Atom`).
    pub const ATEXT: u16 = 1;
    /// `Let-dig` / `Ldh-str` letters, digits and hyphen.
    pub const LDH: u16 = 2;
    /// `dcontent` (RFC 5321 §4.1.3): %d33-90 / %d94-126.
    pub const DCONTENT: u16 = 4;
    /// `qtextSMTP` (RFC 5321 §4.1.2): %d32-33 / %d35-91 / %d93-126.
    pub const QTEXT: u16 = 8;
    /// `xchar` (RFC 3461 §4): "!" to "~" except "+" and "=".
    pub const XCHAR: u16 = 16;
    /// Characters of an ESMTP keyword or SASL mechanism: letters, digits, "-", "_".
    pub const KEYWORD: u16 = 32;
    /// Base64 alphabet and padding.
    pub const BASE64: u16 = 64;
    /// `atext` or a non-ASCII octet but 0xC2: what an atom of a UTF-8
    /// local part (RFC 6531 §3.3) is made of. 0xC2 starts U+0080 to
    /// U+00BF: the local part scanner takes U+00A0 to U+00BF after it,
    /// not the C1 controls U+0080 to U+009F.
    pub const ATEXT_UTF8: u16 = 128;
    /// `Let-dig`, `-`, or a non-ASCII octet but 0xC2: a label of a domain
    /// that may hold U-labels (RFC 6531 §3.3). 0xC2 starts U+0080 to
    /// U+00BF, the C1 controls (which RFC 5198 §2 says "MUST NOT appear")
    /// and Latin-1 signs and spaces, all of them DISALLOWED in an IDNA2008
    /// U-label (RFC 5892).
    pub const LDH_UTF8: u16 = 256;
    /// `esmtp-value` octets: %d33-60 / %d62-126, or non-ASCII (RFC 5321
    /// §4.1.2, RFC 6531 §3.3).
    pub const ESMTP_VALUE: u16 = 512;

    const fn build() -> [u16; 256] {
        let mut t = [0u16; 256];
        let mut i = 0;
        while i < 256 {
            let c = i as u8;
            let mut v = 0;
            let alnum = c.is_ascii_alphanumeric();
            if alnum
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'/'
                        | b'='
                        | b'?'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                        | b'~'
                )
            {
                v |= ATEXT;
            }
            if alnum || c == b'-' {
                v |= LDH;
            }
            if (c >= 33 && c <= 90) || (c >= 94 && c <= 126) {
                v |= DCONTENT;
            }
            if c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126) {
                v |= QTEXT;
            }
            if c >= 33 && c <= 126 && c != b'+' && c != b'=' {
                v |= XCHAR;
            }
            if alnum || c == b'-' || c == b'_' {
                v |= KEYWORD;
            }
            if alnum || c == b'+' || c == b'/' || c == b'=' {
                v |= BASE64;
            }
            if v & ATEXT != 0 || (c >= 0x80 && c != 0xC2) {
                v |= ATEXT_UTF8;
            }
            if v & LDH != 0 || (c >= 0x80 && c != 0xC2) {
                v |= LDH_UTF8;
            }
            if (c >= 33 && c <= 126 && c != b'=') || c >= 0x80 {
                v |= ESMTP_VALUE;
            }
            t[i] = v;
            i += 1;
        }
        t
    }

    /// The lookup table.
    pub static TABLE: [u16; 256] = build();

    /// True when `b` belongs to class `c`.
    #[inline(always)]
    pub fn is(b: u8, c: u16) -> bool {
        TABLE[b as usize] & c != 0
    }

    /// The end of the run of octets of class `c` in `b` that starts at
    /// `i`: four octets a step while four are left, then one at a time.
    #[inline(always)]
    pub fn run_end(b: &[u8], mut i: usize, c: u16) -> usize {
        while let Some(&[w, x, y, z]) = b.get(i..i + 4) {
            if !is(w, c) {
                return i;
            }
            if !is(x, c) {
                return i + 1;
            }
            if !is(y, c) {
                return i + 2;
            }
            if !is(z, c) {
                return i + 3;
            }
            i += 4;
        }
        while i < b.len() && is(b[i], c) {
            i += 1;
        }
        i
    }
}

macro_rules! string_value {
    // A value whose `Debug` shows `<redacted>` instead of its text (a
    // secret; `Display` and `as_str` still give it).
    (@redacted $(#[$m:meta])* $name:ident) => {
        string_value!(@common $(#[$m])* $name);

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
    };
    ($(#[$m:meta])* $name:ident) => {
        string_value!(@common $(#[$m])* $name);

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
    };
    (@common $(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub(crate) Cow<'a, str>);

        impl<'a> $name<'a> {
            /// The value as it appears on the wire.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Copies a borrowed value so it no longer refers to the input.
            #[must_use]
            pub fn into_owned(self) -> $name<'static> {
                $name(owned(self.0))
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name<'_> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'a> TryFrom<&'a str> for $name<'a> {
            type Error = ValueError;
            fn try_from(s: &'a str) -> Result<Self, ValueError> {
                Self::new(s)
            }
        }
    };
}

fn cow_new<'a, T>(
    s: impl Into<Cow<'a, str>>,
    check: impl Fn(&str) -> Result<(), ValueError>,
    wrap: impl Fn(Cow<'a, str>) -> T,
) -> Result<T, ValueError> {
    let s = s.into();
    check(&s)?;
    Ok(wrap(s))
}

string_value!(
    /// Free text of a command argument (VRFY, EXPN, HELP, NOOP, or an
    /// unknown verb's arguments): anything but CR, LF and NUL, not empty,
    /// with no space at either end and no tab at its end (the parser drops
    /// those, so they could not be read back), and at most
    /// [`Text::MAX_LEN`] octets when built.
    Text
);

impl<'a> Text<'a> {
    /// The most octets [`Text::new`] takes: 505, so that `VRFY`, `EXPN`,
    /// `HELP` or `NOOP`, a space, the text and CRLF fit in the 512 octets
    /// of a command line (RFC 5321 §4.5.3.1.4). Text read from a line is
    /// kept whatever its length.
    pub const MAX_LEN: usize = 505;

    /// Checks and wraps free text.
    ///
    /// ```
    /// use smtp_proto::command::Text;
    /// assert!(Text::new("postmaster").is_ok());
    /// assert!(Text::new("two words").is_ok());
    /// assert!(Text::new("a\r\nRCPT TO:<x@y>").is_err());
    /// assert!(Text::new(" padded ").is_err());
    /// assert!(Text::new("tab\t").is_err());
    /// assert!(Text::new("x".repeat(Text::MAX_LEN)).is_ok());
    /// assert!(Text::new("x".repeat(Text::MAX_LEN + 1)).is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_text, Text)
    }
}

pub(crate) fn check_text(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(ValueError::ForbiddenCharacter);
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return Err(ValueError::Syntax("space at the start or end of text"));
    }
    // The end of a command line: RFC 5321 §4.1.1 has receivers drop the
    // white space there.
    if s.ends_with('\t') {
        return Err(ValueError::Syntax("tab at the end of text"));
    }
    if s.len() > Text::MAX_LEN {
        return Err(ValueError::TooLong);
    }
    Ok(())
}

string_value!(
    /// The node name of `ETRN` (RFC 1985 §3): `domain`, `"@" domain` or
    /// `"#" queue-name`, kept as sent.
    NodeName
);

impl<'a> NodeName<'a> {
    /// The most octets [`NodeName::new`] takes: 505, so that `ETRN`, a
    /// space, the node name and CRLF fit in the 512 octets of a command
    /// line (RFC 5321 §4.5.3.1.4). Only a queue name can be that long; a
    /// node name read from a line is kept whatever its length.
    pub const MAX_LEN: usize = 505;

    /// Checks and wraps a node name: a domain or address literal, the same
    /// after `@`, or `#` and a queue name of printable ASCII, in all at
    /// most [`NodeName::MAX_LEN`] octets.
    ///
    /// ```
    /// use smtp_proto::command::NodeName;
    /// assert!(NodeName::new("@example.org").is_ok());
    /// assert!(NodeName::new("#queue-7").is_ok());
    /// assert!(NodeName::new("example.org").is_ok());
    /// assert!(NodeName::new("two words").is_err());
    /// assert!(NodeName::new("#").is_err());
    /// assert!(NodeName::new(format!("#{}", "q".repeat(NodeName::MAX_LEN))).is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(
            s,
            |s| {
                check_node_name(s)?;
                if s.len() > Self::MAX_LEN {
                    return Err(ValueError::TooLong);
                }
                Ok(())
            },
            NodeName,
        )
    }
}

/// `node-name = domain / "@" domain / "#" queue-name` (RFC 1985 §3); a
/// queue name is taken as one or more printable ASCII characters.
pub(crate) fn check_node_name(s: &str) -> Result<(), ValueError> {
    match s.strip_prefix('#') {
        Some("") => Err(ValueError::Empty),
        Some(q) if q.bytes().all(|c| c > 32 && c < 127) => Ok(()),
        Some(_) => Err(ValueError::Syntax("invalid queue name")),
        None => check_domain_or_literal(s.strip_prefix('@').unwrap_or(s)),
    }
}

string_value!(
    /// An RFC 3339 `date-time` (§5.6), as `HOLDUNTIL=` (RFC 4865) and
    /// `RRVS=` (RFC 7293) carry it, kept as sent.
    DateTime
);

impl<'a> DateTime<'a> {
    /// The most octets [`DateTime::new`] takes: 35, room for nine digits
    /// of fraction (nanoseconds) before a numeric offset
    /// (`2026-11-26T15:00:00.123456789+01:00`). RFC 3339 sets no limit to
    /// the fraction; this one keeps a `HOLDUNTIL=` or `RRVS=` parameter
    /// from making its command line as long as it likes. A date-time read
    /// from a line keeps the fraction as sent.
    pub const MAX_LEN: usize = 35;

    /// Checks and wraps a date-time:
    /// `YYYY-MM-DDTHH:MM:SS[.frac](Z / (+/-)HH:MM)`, each field within its
    /// RFC 3339 §5.6 range (month 01-12, day 01-31, hour 00-23, minute
    /// 00-59, second 00-60, offset up to 23:59), at most
    /// [`DateTime::MAX_LEN`] octets; whether the day exists in its month
    /// is not checked.
    ///
    /// ```
    /// use smtp_proto::command::DateTime;
    /// assert!(DateTime::new("2026-11-26T15:00:00Z").is_ok());
    /// assert!(DateTime::new("2026-11-26T15:00:00.25+01:00").is_ok());
    /// assert!(DateTime::new("2026-11-26T15:00:00.123456789+01:00").is_ok());
    /// assert!(DateTime::new("2026-11-26T15:00:00.1234567890+01:00").is_err());
    /// assert!(DateTime::new("2026-11-26 15:00:00Z").is_err());
    /// assert!(DateTime::new("2026-13-26T15:00:00Z").is_err());
    /// assert!(DateTime::new("tomorrow").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(
            s,
            |s| {
                if !is_date_time(s) {
                    Err(ValueError::Syntax("invalid RFC 3339 date-time"))
                } else if s.len() > Self::MAX_LEN {
                    Err(ValueError::TooLong)
                } else {
                    Ok(())
                }
            },
            DateTime,
        )
    }
}

/// `date-time` of RFC 3339 §5.6:
/// `YYYY-MM-DDTHH:MM:SS[.frac](Z / (+/-)HH:MM)`, each field in the range
/// its rule gives (`date-month` 01-12, `date-mday` 01-31, `time-hour`
/// 00-23, `time-minute` 00-59, `time-second` 00-60 for a leap second).
/// Whether the day exists in its month (the restriction of RFC 3339
/// §5.7) is not checked.
pub(crate) fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    // The two-digit number at `i` (both digits checked by the caller).
    let num = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    if !((0..4).all(d) && at(4, b'-') && d(5) && d(6) && at(7, b'-') && d(8) && d(9)) {
        return false;
    }
    if !(at(10, b'T') && d(11) && d(12) && at(13, b':') && d(14) && d(15) && at(16, b':'))
        || !(d(17) && d(18))
    {
        return false;
    }
    if !((1..=12).contains(&num(5))
        && (1..=31).contains(&num(8))
        && num(11) <= 23
        && num(14) <= 59
        && num(17) <= 60)
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while d(i) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if at(i, b'Z') {
        return i + 1 == b.len();
    }
    (at(i, b'+') || at(i, b'-'))
        && d(i + 1)
        && d(i + 2)
        && at(i + 3, b':')
        && d(i + 4)
        && d(i + 5)
        && i + 6 == b.len()
        && num(i + 1) <= 23
        && num(i + 4) <= 59
}

string_value!(
    /// A keyword: a verb, an ESMTP parameter keyword or a SASL mechanism name;
    /// letters, digits, `-` and `_`, starting with a letter or digit.
    Atom
);

impl<'a> Atom<'a> {
    /// Checks and wraps a keyword.
    ///
    /// ```
    /// use smtp_proto::command::Atom;
    /// assert!(Atom::new("XCLIENT").is_ok());
    /// assert!(Atom::new("X CLIENT").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_atom, Atom)
    }
}

pub(crate) fn check_atom(s: &str) -> Result<(), ValueError> {
    let b = s.as_bytes();
    match b.first() {
        None => Err(ValueError::Empty),
        Some(f) if !f.is_ascii_alphanumeric() => Err(ValueError::ForbiddenCharacter),
        _ if class::run_end(b, 0, class::KEYWORD) == b.len() => Ok(()),
        _ => Err(ValueError::ForbiddenCharacter),
    }
}

string_value!(
    /// A domain name or an address literal (RFC 5321 §4.1.2, §4.1.3), kept as
    /// sent. Internationalized domain names (RFC 6531 U-labels) are accepted;
    /// [`Domain::is_utf8`] tells when SMTPUTF8 is needed. EHLO, HELO and
    /// LHLO take ASCII only (A-labels, `xn--...`): the parser refuses a
    /// UTF-8 domain there.
    Domain
);

impl<'a> Domain<'a> {
    /// Checks and wraps a domain or address literal.
    ///
    /// ```
    /// use smtp_proto::command::Domain;
    /// assert!(Domain::new("mail.example.com").is_ok());
    /// assert!(Domain::new("[192.0.2.1]").unwrap().is_address_literal());
    /// assert!(Domain::new("[IPv6:2001:db8::1]").is_ok());
    /// assert!(Domain::new("-bad.example").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_domain_or_literal, Domain)
    }

    /// True for an address literal such as `[192.0.2.1]`.
    #[must_use]
    pub fn is_address_literal(&self) -> bool {
        self.0.starts_with('[')
    }

    /// True when the domain holds non-ASCII (UTF-8) labels.
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

/// Scans `Domain = sub-domain *("." sub-domain)` (RFC 5321 §4.1.2, with
/// `sub-domain =/ U-label` of RFC 6531 §3.3) at the start of `b`, up to the
/// first octet that is not a letter, digit, `-`, `.` or non-ASCII. Returns
/// where it stopped and whether the octets before make a valid domain (no
/// empty label, none over 63 octets or with `-` at either end, at most 255
/// octets in all).
#[inline(always)]
pub(crate) fn scan_domain(b: &[u8]) -> (usize, bool) {
    let mut i = 0;
    let mut ok = true;
    loop {
        let start = i;
        i = class::run_end(b, i, class::LDH_UTF8);
        ok &= match b.get(start..i) {
            Some([first, .., last]) => *first != b'-' && *last != b'-' && i - start <= 63,
            Some([only]) => *only != b'-',
            _ => false,
        };
        if b.get(i) != Some(&b'.') {
            break;
        }
        i += 1;
    }
    (i, ok && i <= 255)
}

/// `Domain = sub-domain *("." sub-domain)` (RFC 5321 §4.1.2), with
/// `sub-domain =/ U-label` (RFC 6531 §3.3).
pub(crate) fn check_domain(s: &str) -> Result<(), ValueError> {
    match scan_domain(s.as_bytes()) {
        (n, true) if n == s.len() => Ok(()),
        _ => domain_error(s),
    }
}

/// Why `s` is not a domain, label by label (the error of its first fault).
#[cold]
fn domain_error(s: &str) -> Result<(), ValueError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(ValueError::Empty);
    }
    if b.len() > 255 {
        return Err(ValueError::TooLong);
    }
    for label in b.split(|&c| c == b'.') {
        let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
            return Err(ValueError::Syntax("empty domain label"));
        };
        if label.len() > 63 {
            return Err(ValueError::TooLong);
        }
        if first == b'-' || last == b'-' {
            return Err(ValueError::Syntax("domain label starts or ends with '-'"));
        }
        if !label.iter().all(|&c| class::is(c, class::LDH_UTF8)) {
            return Err(ValueError::Syntax("invalid character in domain"));
        }
    }
    Ok(())
}

/// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
/// General-address-literal ) "]"` (RFC 5321 §4.1.3).
pub(crate) fn check_address_literal(s: &str) -> Result<(), ValueError> {
    // RFC 5321 §4.5.3.1.2: "The maximum total length of a domain name or
    // number is 255 octets."
    if s.len() > 255 {
        return Err(ValueError::TooLong);
    }
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or(ValueError::Syntax("address literal without brackets"))?;
    if inner.is_empty() {
        return Err(ValueError::Syntax("empty address literal"));
    }
    if let Some(v6) = strip_prefix_ignore_case(inner, "IPv6:") {
        return if is_ipv6_addr(v6) {
            Ok(())
        } else {
            Err(ValueError::Syntax("invalid IPv6 address literal"))
        };
    }
    // A General-address-literal's tag (an Ldh-str) may start with a digit
    // too; only its colon tells it apart.
    if inner.as_bytes()[0].is_ascii_digit() && !inner.contains(':') {
        return if is_ipv4_addr(inner) {
            Ok(())
        } else {
            Err(ValueError::Syntax("invalid IPv4 address literal"))
        };
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    let (tag, content) = inner
        .split_once(':')
        .ok_or(ValueError::Syntax("invalid address literal"))?;
    let tag_ok =
        !tag.is_empty() && tag.bytes().all(|c| class::is(c, class::LDH)) && !tag.ends_with('-');
    let content_ok = !content.is_empty() && content.bytes().all(|c| class::is(c, class::DCONTENT));
    if tag_ok && content_ok {
        Ok(())
    } else {
        Err(ValueError::Syntax("invalid general address literal"))
    }
}

/// `IPv4-address-literal = Snum 3("." Snum)`, `Snum = 1*3DIGIT` with a
/// value of 0 to 255 (RFC 5321 §4.1.3).
fn is_ipv4_addr(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('.') {
        parts += 1;
        let snum = !part.is_empty() && part.len() <= 3 && part.bytes().all(|c| c.is_ascii_digit());
        if !snum || part.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    parts == 4
}

/// `IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp`
/// (RFC 5321 §4.1.3). In the compressed forms "::" stands for at least two
/// groups, so at most six groups (four beside an IPv4 tail) may appear
/// with it; the full forms have eight (six and an IPv4 tail).
fn is_ipv6_addr(s: &str) -> bool {
    // An IPv4 tail follows the last colon.
    let (head, groups_for_v4) = match s.rfind(':') {
        Some(i) if s[i + 1..].contains('.') => {
            if !is_ipv4_addr(&s[i + 1..]) {
                return false;
            }
            // Keep "::" whole when it ends the head; drop a lone ':'.
            let head = &s[..=i];
            let head = if head.ends_with("::") {
                head
            } else {
                &head[..i]
            };
            (head, 2)
        }
        _ => (s, 0),
    };
    let Some((groups, compressed)) = ipv6_groups(head) else {
        return false;
    };
    if compressed {
        groups + groups_for_v4 <= 6
    } else {
        groups + groups_for_v4 == 8
    }
}

/// The `IPv6-hex` groups of `s` (`1*4HEXDIG` separated by single colons,
/// with at most one "::" among them): how many, and whether "::" was there.
fn ipv6_groups(s: &str) -> Option<(usize, bool)> {
    let run = |part: &str| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut n = 0;
        for g in part.split(':') {
            if g.is_empty() || g.len() > 4 || !g.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            n += 1;
        }
        Some(n)
    };
    match s.split_once("::") {
        Some((left, right)) if !right.contains("::") => Some((run(left)? + run(right)?, true)),
        Some(_) => None,
        None if s.is_empty() => None,
        None => Some((run(s)?, false)),
    }
}

/// A domain or an address literal.
pub(crate) fn check_domain_or_literal(s: &str) -> Result<(), ValueError> {
    if s.starts_with('[') {
        check_address_literal(s)
    } else {
        check_domain(s)
    }
}

pub(crate) fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let n = prefix.len();
    if s.len() >= n && s.as_bytes()[..n].eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(n..)
    } else {
        None
    }
}

string_value!(
    /// An RFC 3461 xtext value (ENVID, ORCPT address, AUTH= mailbox), kept in
    /// its encoded wire form; [`XText::decode`] gives the original bytes.
    XText
);

impl<'a> XText<'a> {
    /// Checks and wraps an already encoded xtext value.
    ///
    /// `xtext = *( xchar / hexchar )`, `hexchar = "+" 2(%x30-39 / %x41-46)`
    /// (RFC 3461 §4).
    ///
    /// ```
    /// use smtp_proto::command::XText;
    /// assert_eq!(XText::new("a+2Bb").unwrap().decode(), b"a+b".as_slice());
    /// assert!(XText::new("+A").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_xtext, XText)
    }

    /// Encodes arbitrary bytes as xtext.
    ///
    /// ```
    /// use smtp_proto::command::XText;
    /// assert_eq!(XText::encode(b"a=b c").as_str(), "a+3Db+20c");
    /// ```
    #[must_use]
    pub fn encode(raw: &[u8]) -> XText<'static> {
        let mut s = String::with_capacity(raw.len());
        for &b in raw {
            if class::is(b, class::XCHAR) {
                s.push(b as char);
            } else {
                s.push('+');
                s.push(HEX[(b >> 4) as usize] as char);
                s.push(HEX[(b & 15) as usize] as char);
            }
        }
        XText(Cow::Owned(s))
    }

    /// The decoded bytes (borrowed when the value holds no `+XX` escapes).
    #[must_use]
    pub fn decode(&self) -> Cow<'_, [u8]> {
        let b = self.0.as_bytes();
        if !b.contains(&b'+') {
            return Cow::Borrowed(b);
        }
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'+' {
                let hi = hex_val(b.get(i + 1).copied());
                let lo = hex_val(b.get(i + 2).copied());
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        Cow::Owned(out)
    }
}

string_value!(
    /// An RFC 6533 `utf-8-addr-unitext` value: an internationalized address
    /// as UTF-8, for an ORCPT of type `utf-8` sent with SMTPUTF8. Printable
    /// ASCII but `+`, `=` and `\`, any non-ASCII character, and
    /// `\x{HEX}` (`EmbeddedUnicodeChar`) for a character written as its
    /// code point.
    Unitext
);

impl<'a> Unitext<'a> {
    /// Checks and wraps a unitext value.
    ///
    /// ```
    /// use smtp_proto::command::Unitext;
    /// assert!(Unitext::new("用户@例子.广告").is_ok());
    /// assert!(Unitext::new("a\\x{2B}b@example.com").is_ok());
    /// assert!(Unitext::new("a+2Bb@example.com").is_err());
    /// // RFC 6533 HEXPOINT: no printable ASCII but SP, `+`, `=` and `\`,
    /// // no leading zero, no surrogate, nothing past U+10FFFF.
    /// assert!(Unitext::new("a\\x{41}b@example.com").is_err());
    /// assert!(Unitext::new("a\\x{0E9}@example.com").is_err());
    /// assert!(Unitext::new("a\\x{D800}@example.com").is_err());
    /// assert!(Unitext::new("a\\x{110000}@example.com").is_err());
    /// // No control character, raw or written as its code point: the
    /// // address is a mailbox when decoded.
    /// assert!(Unitext::new("a\\x{01}@example.com").is_err());
    /// assert!(Unitext::new("a\u{85}@example.com").is_err());
    /// assert!(Unitext::new("a\\x{85}@example.com").is_err());
    /// assert!(Unitext::new("").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_unitext, Unitext)
    }
}

/// `utf-8-addr-unitext = 1*(QUCHAR / EmbeddedUnicodeChar)`, `QUCHAR =
/// QCHAR / UTF8-2 / UTF8-3 / UTF8-4`, `QCHAR = %x21-2a / %x2c-3c /
/// %x3e-5b / %x5d-7e`, `EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"`
/// (RFC 6533 §3); see [`embedded_unicode_len`] for `HEXPOINT`. No C1
/// control, raw or as `\x{HEX}` (see [`embedded_unicode_len`]).
pub(crate) fn check_unitext(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += embedded_unicode_len(&b[i..]).ok_or(BAD_EMBEDDED)?,
            b'+' | b'=' => return Err(ValueError::ForbiddenCharacter),
            // A C1 control (U+0080 to U+009F, `C2 80` to `C2 9F`): UTF8-2
            // takes it, but the address, a mailbox when dequoted, cannot
            // hold it (RFC 5198 §2), as `Mailbox` refuses it.
            0xc2 if b.get(i + 1).is_some_and(|&c| c <= 0x9f) => {
                return Err(ValueError::ForbiddenCharacter)
            }
            0x21..=0x7e | 0x80.. => i += 1,
            _ => return Err(ValueError::ForbiddenCharacter),
        }
    }
    Ok(())
}

const BAD_EMBEDDED: ValueError = ValueError::Syntax("invalid \\x{HEXPOINT} (RFC 6533 §3)");

/// Checks that every `\` of an address of type `utf-8` starts an
/// `EmbeddedUnicodeChar` (RFC 6533 §3): `QCHAR` and `QUCHAR` leave `\` out,
/// so in `utf-8-addr-xtext` and `utf-8-addr-unitext` it never stands for
/// itself.
pub(crate) fn check_embedded_unicode(s: &str) -> Result<(), ValueError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\\', &b[i..]) {
        i += p;
        i += embedded_unicode_len(&b[i..]).ok_or(BAD_EMBEDDED)?;
    }
    Ok(())
}

/// The length of the `EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"` at
/// the start of `b`, if one is there (RFC 6533 §3):
///
/// ```text
/// HEXPOINT = ( ( "0"/"1" ) %x31-39 ) / "10" / "20" /
///            "2B" / "3D" / "7F" /         ; all xtext-specials
///            "5C" / (HEXDIG8 HEXDIG) /    ; 2-digit forms
///            ( NZHEXDIG 2(HEXDIG) ) /     ; 3-digit forms
///            ( NZDHEXDIG 3(HEXDIG) ) /    ; 4-digit forms excluding
///            ( "D" %x30-37 2(HEXDIG) ) /  ; ... surrogate
///            ( NZHEXDIG 4(HEXDIG) ) /     ; 5-digit forms
///            ( "10" 4*HEXDIG )            ; 6-digit forms
/// ```
///
/// So a code point is written with as few digits as its rule allows (no
/// leading zero), printable ASCII other than `SP`, `+`, `=` and `\` is
/// never written this way, surrogates (U+D800-DFFF) are refused, and
/// nothing goes past U+10FFFF: the 6-digit form is read as
/// `"10" 4HEXDIG`, since its `4*HEXDIG` would pass the last code point
/// the rule says it stands for. Hex digits may be either case (ABNF
/// strings are case-insensitive); the `x` is `%x78`, lower case only.
///
/// The control characters HEXPOINT also lists (`01`-`19`, `7F`, and
/// `80`-`9F` among `HEXDIG8 HEXDIG`) are refused: the address they are
/// part of "MUST follow utf-8-address ABNF when dequoted" (RFC 6533 §3),
/// a mailbox, and no mailbox holds a C0 control or DEL (RFC 5321 §4.1.2)
/// or a C1 control (RFC 5198 §2; [`Mailbox`](super::Mailbox) refuses
/// them).
pub(crate) fn embedded_unicode_len(b: &[u8]) -> Option<usize> {
    let hex = b.strip_prefix(b"\\x{")?;
    let n = hex.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if hex.get(n) != Some(&b'}') || !(2..=6).contains(&n) {
        return None;
    }
    let mut d = [0u8; 6];
    for (to, from) in d.iter_mut().zip(&hex[..n]) {
        *to = from.to_ascii_uppercase();
    }
    let ok = match &d[..n] {
        // Of the 2-digit forms, SP, `+`, `=`, `\` and U+00A0 to U+00FF:
        // not the C0 controls, DEL and C1 controls HEXPOINT lists too.
        [b'2', b'0'] | [b'2', b'B'] | [b'3', b'D'] | [b'5', b'C'] => true,
        [b'A'..=b'F', _] => true,
        [first, _, _] | [first, _, _, _, _] => *first != b'0',
        [b'D', second, _, _] => (b'0'..=b'7').contains(second),
        [first, _, _, _] => *first != b'0',
        [b'1', b'0', _, _, _, _] => true,
        _ => false,
    };
    ok.then_some(3 + n + 1)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn check_xtext(s: &str) -> Result<(), ValueError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'+' {
            if hex_val(b.get(i + 1).copied()).is_none() || hex_val(b.get(i + 2).copied()).is_none()
            {
                return Err(ValueError::Syntax("invalid xtext escape"));
            }
            i += 3;
        } else if class::is(c, class::XCHAR) {
            i += 1;
        } else {
            return Err(ValueError::Syntax("invalid xtext character"));
        }
    }
    Ok(())
}

/// [`check_xtext`] of an `esmtp-value` (RFC 5321 §4.1.2: no control,
/// space, `=` or DEL in it), as the parameter splitter hands them out. Of
/// the octets that are not `xchar`, only `+` (which must start a `hexchar`)
/// and non-ASCII octets can then be left, so the value is looked at eight
/// octets at a time for those two alone.
pub(crate) fn check_xtext_value(s: &str) -> Result<(), ValueError> {
    let b = s.as_bytes();
    debug_assert!(!b.iter().any(|&c| c <= b' ' || c == b'=' || c == 0x7f));
    let mut i = 0;
    loop {
        i = super::scan::plus_or_non_ascii(b, i);
        match b.get(i) {
            None => return Ok(()),
            Some(b'+') => {
                if hex_val(b.get(i + 1).copied()).is_none()
                    || hex_val(b.get(i + 2).copied()).is_none()
                {
                    return Err(ValueError::Syntax("invalid xtext escape"));
                }
                i += 3;
            }
            Some(_) => return Err(ValueError::Syntax("invalid xtext character")),
        }
    }
}

string_value!(
    @redacted
    /// A base64 SASL response as sent (RFC 4954). The empty value is written
    /// as `=` on the wire.
    ///
    /// It carries credentials (a `PLAIN` password is read from it at
    /// sight), so `Debug` prints `<redacted>`; `Display` and
    /// [`as_str`](Self::as_str) give the text.
    Base64
);

/// Checks base64 text as `base64`'s standard engine decodes it, without
/// allocating: the text is decoded piece by piece into a buffer on the
/// stack and the bytes are dropped. Every piece but the last is whole
/// groups, and padding there would be padding in the middle of the text.
fn check_base64(text: &[u8]) -> Result<(), ValueError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::{DecodeError, DecodeSliceError, Engine as _};
    /// Text octets per piece: whole groups of four.
    const PIECE: usize = 256;
    let mut buf = [0u8; PIECE / 4 * 3];
    let mut rest = text;
    loop {
        let (piece, after) = rest.split_at(rest.len().min(PIECE));
        if !after.is_empty() && memchr::memchr(b'=', piece).is_some() {
            return Err(ValueError::Syntax("malformed base64"));
        }
        match STANDARD.decode_slice(piece, &mut buf) {
            Ok(_) => {}
            Err(DecodeSliceError::DecodeError(DecodeError::InvalidByte(_, c)))
                if !class::is(c, class::BASE64) =>
            {
                return Err(ValueError::Syntax("invalid base64 character"));
            }
            Err(_) => return Err(ValueError::Syntax("malformed base64")),
        }
        if after.is_empty() {
            return Ok(());
        }
        rest = after;
    }
}

impl<'a> Base64<'a> {
    /// Checks and wraps base64 text: base64 of RFC 4648 §4 as RFC 4954 §4
    /// asks, so the text is what [`decode`](Self::decode) takes. Its
    /// length is a multiple of four, `=` padding comes only at its end
    /// (RFC 4648 §3.3), and the bits the padding leaves over are zero
    /// (§3.5), so each value has one spelling.
    ///
    /// ```
    /// use smtp_proto::command::Base64;
    /// assert_eq!(Base64::new("AGFsaWNlAHNlY3JldA==").unwrap().decode().unwrap(), b"\0alice\0secret");
    /// assert!(Base64::new("not base64!").is_err());
    /// // Padding in the middle, missing padding, padding past a group.
    /// assert!(Base64::new("QQ==QQ==").is_err());
    /// assert!(Base64::new("QQ").is_err());
    /// assert!(Base64::new("QUJD=").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(
            s,
            |s| {
                // A lone `=` is how the empty response is written: as a
                // value it would read back as `Base64::empty()`.
                if s == "=" {
                    return Err(ValueError::Syntax("a lone '=' is the empty response"));
                }
                check_base64(s.as_bytes())
            },
            Base64,
        )
    }

    /// Encodes raw bytes.
    #[must_use]
    pub fn encode(raw: &[u8]) -> Base64<'static> {
        use base64::Engine as _;
        Base64(Cow::Owned(
            base64::engine::general_purpose::STANDARD.encode(raw),
        ))
    }

    /// The empty response (`=` on the wire).
    #[must_use]
    pub fn empty() -> Base64<'static> {
        Base64(Cow::Borrowed(""))
    }

    /// Decodes the value. A value built by [`new`](Self::new),
    /// [`encode`](Self::encode) or [`empty`](Self::empty) always decodes.
    pub fn decode(&self) -> Result<Vec<u8>, ValueError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(self.0.as_bytes())
            .map_err(|_| ValueError::Syntax("malformed base64"))
    }
}

/// A SASL mechanism name (RFC 4422 §3.1: `sasl-mech = 1*20mech-char`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism<'a> {
    /// `PLAIN` (RFC 4616)
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login)
    Login,
    /// `XOAUTH2` (Google's OAuth 2.0 bearer mechanism)
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628)
    OAuthBearer,
    /// `CRAM-MD5` (RFC 2195)
    CramMd5,
    /// `EXTERNAL` (RFC 4422 Appendix A)
    External,
    /// `SCRAM-SHA-1` (RFC 5802)
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677)
    ScramSha256,
    /// Any other mechanism, as sent.
    Other(MechanismName<'a>),
}

string_value!(
    /// The name of a SASL mechanism that [`Mechanism`] has no variant for:
    /// `sasl-mech = 1*20mech-char` (RFC 4422 §3.1; letters of either case,
    /// digits, `-` and `_`), not the name of a known mechanism.
    MechanismName
);

impl<'a> MechanismName<'a> {
    /// Checks and wraps a mechanism name. A known name is refused: it
    /// reads back as its own variant, so [`Mechanism::parse`] is the way
    /// to take any name.
    ///
    /// ```
    /// use smtp_proto::command::MechanismName;
    /// assert!(MechanismName::new("X-TOKEN").is_ok());
    /// assert!(MechanismName::new("PLAIN").is_err());
    /// assert!(MechanismName::new("A-NAME-LONGER-THAN-20").is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(s, check_mechanism_name, MechanismName)
    }
}

/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / HYPHEN
/// / UNDERSCORE` (RFC 4422 §3.1), read as the command parser reads it:
/// letters of either case, and any of them first.
pub(crate) fn check_sasl_mech(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if s.len() > 20 {
        return Err(ValueError::TooLong);
    }
    if class::run_end(s.as_bytes(), 0, class::KEYWORD) == s.len() {
        Ok(())
    } else {
        Err(ValueError::ForbiddenCharacter)
    }
}

fn check_mechanism_name(s: &str) -> Result<(), ValueError> {
    check_sasl_mech(s)?;
    if Mechanism::known(s.as_bytes()).is_some() {
        return Err(ValueError::Syntax("a known mechanism name"));
    }
    Ok(())
}

impl<'a> Mechanism<'a> {
    /// Recognises a mechanism name, ignoring case.
    ///
    /// ```
    /// use smtp_proto::command::Mechanism;
    /// assert_eq!(Mechanism::parse("plain").unwrap(), Mechanism::Plain);
    /// assert!(Mechanism::parse("X-CUSTOM").is_ok());
    /// assert!(Mechanism::parse("BAD MECH").is_err());
    /// ```
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        match Mechanism::known(s.as_bytes()) {
            Some(m) => Ok(m),
            None => Mechanism::other(s),
        }
    }

    /// The known mechanism named `s` (ignoring case), if any.
    pub(crate) fn known(s: &[u8]) -> Option<Mechanism<'static>> {
        let is = |name: &str| s.eq_ignore_ascii_case(name.as_bytes());
        Some(match s.len() {
            5 if is("PLAIN") => Mechanism::Plain,
            5 if is("LOGIN") => Mechanism::Login,
            7 if is("XOAUTH2") => Mechanism::XOAuth2,
            11 if is("OAUTHBEARER") => Mechanism::OAuthBearer,
            8 if is("CRAM-MD5") => Mechanism::CramMd5,
            8 if is("EXTERNAL") => Mechanism::External,
            11 if is("SCRAM-SHA-1") => Mechanism::ScramSha1,
            13 if is("SCRAM-SHA-256") => Mechanism::ScramSha256,
            _ => return None,
        })
    }

    /// A mechanism that is not one of the known ones:
    /// `sasl-mech = 1*20mech-char`.
    pub(crate) fn other(s: &'a str) -> Result<Self, ValueError> {
        check_sasl_mech(s)?;
        Ok(Mechanism::Other(MechanismName(Cow::Borrowed(s))))
    }

    /// The mechanism name as written on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::External => "EXTERNAL",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Other(a) => a.as_str(),
        }
    }

    /// Copies a borrowed name.
    #[must_use]
    pub fn into_owned(self) -> Mechanism<'static> {
        match self {
            Mechanism::Plain => Mechanism::Plain,
            Mechanism::Login => Mechanism::Login,
            Mechanism::XOAuth2 => Mechanism::XOAuth2,
            Mechanism::OAuthBearer => Mechanism::OAuthBearer,
            Mechanism::CramMd5 => Mechanism::CramMd5,
            Mechanism::External => Mechanism::External,
            Mechanism::ScramSha1 => Mechanism::ScramSha1,
            Mechanism::ScramSha256 => Mechanism::ScramSha256,
            Mechanism::Other(a) => Mechanism::Other(a.into_owned()),
        }
    }
}

impl fmt::Display for Mechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_value!(
    /// The local part of a mailbox (RFC 5321 §4.1.2 `Local-part = Dot-string /
    /// Quoted-string`), kept exactly as sent, quotes included. UTF-8 is
    /// accepted (RFC 6531); [`LocalPart::is_utf8`] tells when SMTPUTF8 is needed.
    LocalPart
);

impl<'a> LocalPart<'a> {
    /// Checks and wraps a local part in its wire form.
    ///
    /// ```
    /// use smtp_proto::command::LocalPart;
    /// assert!(LocalPart::new("first.last").is_ok());
    /// assert!(LocalPart::new("\"with space\"").is_ok());
    /// assert!(LocalPart::new("two..dots").is_err());
    /// assert!(LocalPart::new("x".repeat(65)).is_err());
    /// ```
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, ValueError> {
        cow_new(
            s,
            |s| match scan_local_part(s.as_bytes()) {
                Ok(n) if n == s.len() => Ok(()),
                Ok(_) => Err(ValueError::Syntax("invalid local part")),
                Err(e) => Err(e),
            },
            LocalPart,
        )
    }

    /// True for a `Quoted-string` local part.
    #[must_use]
    pub fn is_quoted(&self) -> bool {
        self.0.starts_with('"')
    }

    /// True when the local part holds non-ASCII (UTF-8) characters.
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }

    /// The local part in its wire form for the mailbox name `raw`: `raw`
    /// itself when it is a `Dot-string`, else a `Quoted-string` with each
    /// `"` and `\` escaped (RFC 5321 §4.1.2: a sender "SHOULD NOT" quote
    /// what needs no quoting). [`LocalPart::unquoted`] gives `raw` back.
    ///
    /// # Errors
    /// [`ValueError`] when `raw` holds a control character (a quoted
    /// string cannot carry one) or its wire form passes 64 octets.
    ///
    /// ```
    /// use smtp_proto::command::LocalPart;
    /// assert_eq!(LocalPart::from_unquoted("first.last").unwrap().as_str(), "first.last");
    /// assert_eq!(LocalPart::from_unquoted("john doe").unwrap().as_str(), "\"john doe\"");
    /// assert_eq!(LocalPart::from_unquoted("a\"b").unwrap().as_str(), r#""a\"b""#);
    /// assert_eq!(LocalPart::from_unquoted("..").unwrap().as_str(), "\"..\"");
    /// assert!(LocalPart::from_unquoted("tab\there").is_err());
    /// ```
    pub fn from_unquoted(raw: &str) -> Result<LocalPart<'static>, ValueError> {
        if !raw.starts_with('"') {
            if let Ok(dot_string) = LocalPart::new(raw) {
                return Ok(dot_string.into_owned());
            }
        }
        let mut quoted = String::with_capacity(raw.len() + 2);
        quoted.push('"');
        for c in raw.chars() {
            match c {
                '"' | '\\' => {
                    quoted.push('\\');
                    quoted.push(c);
                }
                ' '..='~' => quoted.push(c),
                c if c.is_control() => {
                    return Err(ValueError::Syntax("control character in local part"))
                }
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        LocalPart::new(quoted)
    }

    /// The mailbox name the local part stands for: a `Quoted-string`
    /// without its quotes and with each quoted pair `\x` read as `x`, a
    /// `Dot-string` as it is. `"john.doe"` and `john.doe` name the same
    /// mailbox (RFC 5321 §4.1.2); compare local parts by this value (and
    /// the case as the receiving system treats it, §2.4).
    ///
    /// ```
    /// use smtp_proto::command::LocalPart;
    /// assert_eq!(LocalPart::new("\"john.doe\"").unwrap().unquoted(), "john.doe");
    /// assert_eq!(LocalPart::new(r#""a\"b\\c""#).unwrap().unquoted(), r#"a"b\c"#);
    /// assert_eq!(LocalPart::new("plain").unwrap().unquoted(), "plain");
    /// ```
    #[must_use]
    pub fn unquoted(&self) -> Cow<'_, str> {
        let s: &str = &self.0;
        let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
            return Cow::Borrowed(s);
        };
        if !inner.contains('\\') {
            return Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            // A checked quoted string has a character after each `\`.
            out.push(if c == '\\' {
                chars.next().unwrap_or(c)
            } else {
                c
            });
        }
        Cow::Owned(out)
    }
}

/// True when `b[i..]` starts with a C1 control character (U+0080 to
/// U+009F, UTF-8 0xC2 0x80 to 0xC2 0x9F), which RFC 5198 §2 says "MUST
/// NOT appear" in text on the wire: RFC 6531 §3.3 would let one into a
/// local part, and a `Received:` field or a log would then carry it raw
/// (U+0085 ends a line for some readers, U+009B starts a terminal
/// sequence).
#[inline]
fn c1_at(b: &[u8], i: usize) -> bool {
    matches!(b.get(i..), Some([0xC2, 0x80..=0x9F, ..]))
}

/// Scans a `Local-part = Dot-string / Quoted-string` (RFC 5321 §4.1.2) at
/// the start of `b`, with RFC 6531 UTF-8 but the C1 controls. Returns the
/// octets it takes. Stops at the first octet that cannot continue it.
#[inline(always)]
pub(crate) fn scan_local_part(b: &[u8]) -> Result<usize, ValueError> {
    let n = if b.first() == Some(&b'"') {
        // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        let mut i = 1;
        loop {
            match b.get(i) {
                None => return Err(ValueError::Syntax("unterminated quoted string")),
                Some(b'"') => break i + 1,
                Some(b'\\') => match b.get(i + 1) {
                    // quoted-pairSMTP = %d92 %d32-126
                    Some(&c) if (32..=126).contains(&c) => i += 2,
                    _ => return Err(ValueError::Syntax("invalid quoted pair")),
                },
                Some(0xC2) if c1_at(b, i) => {
                    return Err(ValueError::Syntax("control character in quoted string"))
                }
                Some(&c) if c >= 0x80 || class::is(c, class::QTEXT) => i += 1,
                Some(_) => return Err(ValueError::Syntax("invalid character in quoted string")),
            }
        }
    } else {
        // Dot-string = Atom *("."  Atom)
        let mut i = 0;
        loop {
            let start = i;
            i = class::run_end(b, i, class::ATEXT_UTF8);
            // 0xC2 is left out of the class: U+00A0 to U+00BF go on, a C1
            // control ends the local part (and so fails the path).
            while b.get(i) == Some(&0xC2) && !c1_at(b, i) && b.len() > i + 1 {
                i = class::run_end(b, i + 2, class::ATEXT_UTF8);
            }
            if i == start {
                return Err(ValueError::Syntax("empty atom in local part"));
            }
            if b.get(i) != Some(&b'.') {
                break i;
            }
            i += 1;
        }
    };
    if n > 64 {
        return Err(ValueError::TooLong);
    }
    Ok(n)
}
