//! EHLO replies: the server's domain, greeting and capabilities.
//!
//! ```text
//! ehlo-ok-rsp  = ( "250" SP Domain [ SP ehlo-greet ] CRLF )
//!              / ( "250-" Domain [ SP ehlo-greet ] CRLF
//!                *( "250-" ehlo-line CRLF )
//!                "250" SP ehlo-line CRLF )            (RFC 5321 §4.1.1.1)
//! ehlo-line    = ehlo-keyword *( SP ehlo-param )
//! ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! ehlo-param   = 1*(%d33-126)
//! ```

use super::{split_line, InvalidReply, OwnedReply, Reply};
use crate::framer::visible_run;
use crate::status::ReplyCode;
use core::fmt;

/// A keyword of up to 24 bytes, upper-cased and zero-padded, as three
/// words: matching it against the known keywords costs a few integer
/// compares and no allocation.
type Key = (u64, u64, u64);

const KEY_LEN: usize = 24;

const fn word(buf: &[u8; KEY_LEN], at: usize) -> u64 {
    u64::from_le_bytes([
        buf[at],
        buf[at + 1],
        buf[at + 2],
        buf[at + 3],
        buf[at + 4],
        buf[at + 5],
        buf[at + 6],
        buf[at + 7],
    ])
}

/// The key of a keyword already in upper case (for constants).
const fn key(keyword: &[u8]) -> Key {
    let mut buf = [0u8; KEY_LEN];
    let mut i = 0;
    while i < keyword.len() && i < KEY_LEN {
        buf[i] = keyword[i];
        i += 1;
    }
    (word(&buf, 0), word(&buf, 8), word(&buf, 16))
}

/// The key of `token` compared without regard to ASCII case; `None` when
/// it is empty or too long to be a known keyword.
fn key_upper(token: &[u8]) -> Option<Key> {
    key_upper_in(token, token.len())
}

/// The key of the first `len` bytes of `buf`, compared without regard to
/// ASCII case. The words the key needs are read whole and masked when
/// `buf` holds them, which is faster than assembling the key byte by byte.
#[inline(always)]
fn key_upper_in(buf: &[u8], len: usize) -> Option<Key> {
    if len == 0 || len > KEY_LEN || len > buf.len() {
        return None;
    }
    // Only the words the keyword reaches into are loaded and folded.
    let word = |at: usize| {
        buf.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|w| u64::from_le_bytes(*w))
    };
    let partial = |w: u64, n: usize| upper_word(w) & (u64::MAX >> (64 - 8 * n));
    let fast = match len {
        1..=8 => word(0).map(|a| (partial(a, len), 0, 0)),
        9..=16 => word(0)
            .zip(word(8))
            .map(|(a, b)| (upper_word(a), partial(b, len - 8), 0)),
        _ => word(0)
            .zip(word(8))
            .zip(word(16))
            .map(|((a, b), c)| (upper_word(a), upper_word(b), partial(c, len - 16))),
    };
    if fast.is_some() {
        return fast;
    }
    // Assembled in registers: writing bytes to a buffer and reading it back
    // as words would stall on store forwarding.
    let (mut a, mut b, mut c) = (0u64, 0u64, 0u64);
    for (i, &byte) in buf.iter().take(len).enumerate() {
        let v = u64::from(byte.to_ascii_uppercase()) << (8 * (i % 8));
        match i / 8 {
            0 => a |= v,
            1 => b |= v,
            _ => c |= v,
        }
    }
    Some((a, b, c))
}

/// Whether a byte may appear in an `ehlo-keyword`.
fn is_keyword_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// The `ehlo-keyword` at the start of `line`: its length (the keyword is
/// followed by SP, CR or LF, else `None`; within the first 24 bytes it may
/// also end at another octet below 14, which the caller refuses) and its key when it can be a known
/// one. Keywords within the first 24 bytes are found eight bytes at a time
/// (as far as the line holds whole words).
#[inline(always)]
fn keyword_token(line: &[u8]) -> Option<(usize, Option<Extension>)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // SP, or any octet below 14 (CR and LF among them; the caller refuses
    // a keyword that ends in any other): two borrow tests instead of three.
    let ends = |w: u64| -> u64 {
        let sp = w ^ (ONES * u64::from(b' '));
        // The lowest high bit marks the first such byte exactly.
        ((sp.wrapping_sub(ONES) & !sp) | (w.wrapping_sub(ONES * 14) & !w)) & HIGH
    };
    {
        // As many whole words as the line holds, up to three, each loaded
        // only when the keyword has not ended in the ones before.
        let mut words = [0u64; 3];
        let mut len = None;
        for (i, slot) in words.iter_mut().enumerate() {
            let Some(w) = line.get(i * 8..).and_then(<[u8]>::first_chunk::<8>) else {
                break;
            };
            *slot = u64::from_le_bytes(*w);
            let e = ends(*slot);
            if e != 0 {
                len = Some(i * 8 + (e.trailing_zeros() / 8) as usize);
                break;
            }
        }
        if let Some(len) = len {
            // Only the words the keyword reaches into are looked at.
            let partial = |w: u64, n: usize| upper_word(w) & (u64::MAX >> (64 - 8 * n));
            let key = match len {
                0 => (0, 0, 0),
                1..=7 => (partial(words[0], len), 0, 0),
                8 => (upper_word(words[0]), 0, 0),
                9..=15 => (upper_word(words[0]), partial(words[1], len - 8), 0),
                16 => (upper_word(words[0]), upper_word(words[1]), 0),
                _ => (
                    upper_word(words[0]),
                    upper_word(words[1]),
                    partial(words[2], len - 16),
                ),
            };
            let known = if len > 0 {
                Extension::from_key(key)
            } else {
                None
            };
            // A known keyword is made of keyword bytes; anything else is
            // checked byte by byte.
            if known.is_some() || line.get(..len)?.iter().all(|&b| is_keyword_byte(b)) {
                return Some((len, known));
            }
            return None;
        }
    }
    let len = line.iter().position(|&b| !is_keyword_byte(b))?;
    if !matches!(line.get(len), Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    Some((len, key_upper_in(line, len).and_then(Extension::from_key)))
}

/// Slots in the keyword hash tables.
const SLOTS: usize = 64;

/// A multiplicative hash of a key into [`SLOTS`] slots. The constants were
/// chosen so that the known extension keywords, and the known mechanism
/// names, each land in distinct slots; the tables below check this when
/// they are built, at compile time.
const fn slot(k: Key) -> usize {
    let x = k.0 ^ k.1.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.2.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (x.wrapping_mul(0xb955_9250_d09d_fa6d) >> 58) as usize
}

/// Builds a slot table from names; entry `i` of `names` is stored as `i`.
const fn table(names: &[&str]) -> [Option<(Key, u8)>; SLOTS] {
    let mut t = [None; SLOTS];
    let mut i = 0;
    while i < names.len() {
        let k = key(names[i].as_bytes());
        let at = slot(k);
        assert!(t[at].is_none(), "keyword hash collision");
        t[at] = Some((k, i as u8));
        i += 1;
    }
    t
}

/// The index of `k` in the table's names.
fn lookup(t: &[Option<(Key, u8)>; SLOTS], k: Key) -> Option<usize> {
    match t.get(slot(k)) {
        Some(Some((known, index))) if *known == k => Some(usize::from(*index)),
        _ => None,
    }
}

/// ASCII upper case of eight bytes at once; bytes that are not `a`-`z`
/// are left alone.
const fn upper_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = x & !HIGH;
    // The high bit of each byte says: low 7 bits >= 'a', and > 'z'.
    let ge_a = low7 + ONES * (0x80 - b'a' as u64);
    let gt_z = low7 + ONES * (0x80 - b'z' as u64 - 1);
    let is_lower = ge_a & !gt_z & !x & HIGH;
    x - (is_lower >> 2)
}

macro_rules! extensions {
    ($( $(#[$doc:meta])* $variant:ident = $keyword:literal, )*) => {
        /// An SMTP service extension that has a typed representation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Extension {
            $( $(#[$doc])* $variant, )*
        }

        impl Extension {
            /// Every extension with a typed representation.
            pub const ALL: &'static [Extension] = &[ $( Extension::$variant, )* ];

            /// The EHLO keyword, in upper case.
            #[must_use]
            pub const fn keyword(self) -> &'static str {
                match self {
                    $( Extension::$variant => $keyword, )*
                }
            }

            /// The extension for an EHLO keyword, compared without regard to
            /// ASCII case.
            #[must_use]
            pub fn from_keyword(keyword: &[u8]) -> Option<Self> {
                // A zero byte would be confused with the key's padding.
                if keyword.contains(&0) {
                    return None;
                }
                Self::from_key(key_upper(keyword)?)
            }

            fn from_key(k: Key) -> Option<Self> {
                const TABLE: [Option<(Key, u8)>; SLOTS] = table(&[ $( $keyword, )* ]);
                Self::ALL.get(lookup(&TABLE, k)?).copied()
            }
        }
    };
}

extensions! {
    /// `SIZE` message size declaration (RFC 1870).
    Size = "SIZE",
    /// `8BITMIME` (RFC 6152).
    EightBitMime = "8BITMIME",
    /// `PIPELINING` command pipelining (RFC 2920).
    Pipelining = "PIPELINING",
    /// `STARTTLS` (RFC 3207).
    StartTls = "STARTTLS",
    /// `AUTH` authentication (RFC 4954).
    Auth = "AUTH",
    /// `CHUNKING`, the BDAT command (RFC 3030).
    Chunking = "CHUNKING",
    /// `BINARYMIME` (RFC 3030).
    BinaryMime = "BINARYMIME",
    /// `SMTPUTF8` internationalized email (RFC 6531).
    SmtpUtf8 = "SMTPUTF8",
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    EnhancedStatusCodes = "ENHANCEDSTATUSCODES",
    /// `DSN` delivery status notifications (RFC 3461).
    Dsn = "DSN",
    /// `DELIVERBY` (RFC 2852).
    DeliverBy = "DELIVERBY",
    /// `FUTURERELEASE` (RFC 4865).
    FutureRelease = "FUTURERELEASE",
    /// `MT-PRIORITY` (RFC 6710).
    MtPriority = "MT-PRIORITY",
    /// `REQUIRETLS` (RFC 8689).
    RequireTls = "REQUIRETLS",
    /// `RRVS` require recipient valid since (RFC 7293).
    Rrvs = "RRVS",
    /// `NO-SOLICITING` (RFC 3865).
    NoSoliciting = "NO-SOLICITING",
    /// `LIMITS` (RFC 9422).
    Limits = "LIMITS",
    /// `ETRN` remote queue starting (RFC 1985).
    Etrn = "ETRN",
    /// `VRFY` (RFC 5321).
    Vrfy = "VRFY",
    /// `HELP` (RFC 5321).
    Help = "HELP",
    /// `XCLIENT` (Postfix).
    XClient = "XCLIENT",
}

impl Extension {
    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A set of [`Extension`]s (a bit set, no allocation).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Extensions(u32);

impl Extensions {
    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self(0)
    }

    /// True when `ext` is in the set.
    #[must_use]
    pub const fn contains(self, ext: Extension) -> bool {
        self.0 & ext.bit() != 0
    }

    /// Adds `ext`.
    pub fn insert(&mut self, ext: Extension) {
        self.0 |= ext.bit();
    }

    /// Removes `ext`.
    pub fn remove(&mut self, ext: Extension) {
        self.0 &= !ext.bit();
    }

    /// True when the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The extensions in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Extension> {
        Extension::ALL
            .iter()
            .copied()
            .filter(move |e| self.contains(*e))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Extension> for Extensions {
    fn from_iter<I: IntoIterator<Item = Extension>>(iter: I) -> Self {
        let mut set = Self::new();
        for e in iter {
            set.insert(e);
        }
        set
    }
}

macro_rules! mechanisms {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// A SASL mechanism named in an `AUTH` capability (RFC 4954).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum AuthMechanism<'a> {
            $( $(#[$doc])* $variant, )*
            /// Any other mechanism, as the server spelled it.
            Other(&'a str),
        }

        impl<'a> AuthMechanism<'a> {
            /// The mechanism's name (upper case for the known ones).
            #[must_use]
            pub fn name(&self) -> &'a str {
                match *self {
                    $( AuthMechanism::$variant => $name, )*
                    AuthMechanism::Other(name) => name,
                }
            }

            /// The mechanism for a name, compared without regard to ASCII case.
            #[must_use]
            pub fn from_name(name: &'a str) -> Self {
                if !name.as_bytes().contains(&0) {
                    if let Some(i) = key_upper(name.as_bytes()).and_then(|k| lookup(&Self::TABLE, k)) {
                        if let Some(known) = Self::KNOWN.get(i) {
                            return *known;
                        }
                    }
                }
                AuthMechanism::Other(name)
            }

            const KNOWN: &'static [AuthMechanism<'static>] = &[ $( AuthMechanism::$variant, )* ];
            const TABLE: [Option<(Key, u8)>; SLOTS] = table(&[ $( $name, )* ]);

            /// The bit of a known mechanism's key, 0 for any other.
            fn bit_of_key(k: Option<Key>) -> u32 {
                match k.and_then(|k| lookup(&Self::TABLE, k)) {
                    Some(i) => 1 << i,
                    None => 0,
                }
            }

            const fn bit(&self) -> u32 {
                let mut i = 0u32;
                $(
                    if matches!(self, AuthMechanism::$variant) { return 1 << i; }
                    i += 1;
                )*
                let _ = i;
                0
            }
        }
    };
}

mechanisms! {
    /// `PLAIN` (RFC 4616).
    Plain = "PLAIN",
    /// `LOGIN` (obsolete, widely deployed).
    Login = "LOGIN",
    /// `CRAM-MD5` (RFC 2195).
    CramMd5 = "CRAM-MD5",
    /// `DIGEST-MD5` (RFC 2831, historic).
    DigestMd5 = "DIGEST-MD5",
    /// `XOAUTH2` (Google, Microsoft).
    XOAuth2 = "XOAUTH2",
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer = "OAUTHBEARER",
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1 = "SCRAM-SHA-1",
    /// `SCRAM-SHA-1-PLUS` (RFC 5802).
    ScramSha1Plus = "SCRAM-SHA-1-PLUS",
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256 = "SCRAM-SHA-256",
    /// `SCRAM-SHA-256-PLUS` (RFC 7677).
    ScramSha256Plus = "SCRAM-SHA-256-PLUS",
    /// `GSSAPI` (RFC 4752).
    Gssapi = "GSSAPI",
    /// `NTLM`.
    Ntlm = "NTLM",
    /// `ANONYMOUS` (RFC 4505).
    Anonymous = "ANONYMOUS",
    /// `EXTERNAL` (RFC 4422).
    External = "EXTERNAL",
}

impl fmt::Display for AuthMechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The mechanism list of one `AUTH` capability: `"AUTH" 1*(SP mechanism)`
/// (RFC 4954 §3), kept as the borrowed space-separated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthMechanisms<'a>(&'a str);

impl<'a> AuthMechanisms<'a> {
    /// A list from its space-separated text (checked when written by
    /// [`EhloReplyBuilder`]).
    #[must_use]
    pub const fn new(list: &'a str) -> Self {
        Self(list)
    }

    /// The mechanisms, in order.
    pub fn iter(&self) -> impl Iterator<Item = AuthMechanism<'a>> + 'a {
        words(self.0).map(AuthMechanism::from_name)
    }

    /// True when `mechanism` is in the list (case-insensitive).
    #[must_use]
    pub fn contains(&self, mechanism: AuthMechanism<'_>) -> bool {
        self.iter().any(|m| same_mechanism(m, mechanism))
    }

    /// The list as received.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Whether two mechanisms are the same, by name without regard to ASCII
/// case: a known one spelled as [`AuthMechanism::Other`] (`Other("plain")`)
/// is the known one.
fn same_mechanism(a: AuthMechanism<'_>, b: AuthMechanism<'_>) -> bool {
    match (a.bit(), b.bit()) {
        (0, _) | (_, 0) => a.name().eq_ignore_ascii_case(b.name()),
        (x, y) => x == y,
    }
}

/// The limits advertised by `LIMITS` (RFC 9422 §4). Limits this type does
/// not know are ignored, as RFC 9422 asks, whether they come with a value
/// or without one (`limit-name ["=" limit-value]`, RFC 9422 §3). A known
/// limit advertised with the value 0 is out of range (a server allows at
/// least one transaction, recipient, domain) and ignored as well:
/// `LIMITS RCPTMAX=0 MAILMAX=10` reads as `MAILMAX` 10 and no `RCPTMAX`.
/// So is a known limit without a usable number (`RCPTMAX`, `RCPTMAX=lots`):
/// `LIMITS RCPTMAX=lots MAILMAX=10` reads as `MAILMAX` 10, and the line is
/// still a [`Capability::Limits`]. A number past `u32::MAX` reads as
/// `u32::MAX`; a limit given more than once keeps its lowest value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// `RCPTMAX`: recipients per transaction.
    pub rcpt_max: Option<u32>,
    /// `MAILMAX`: transactions per session.
    pub mail_max: Option<u32>,
    /// `RCPTDOMAINMAX`: distinct recipient domains per transaction.
    pub rcpt_domain_max: Option<u32>,
}

/// The parameters of `FUTURERELEASE` (RFC 4865 §3):
/// `"FUTURERELEASE" SP max-future-release-interval SP max-future-release-date-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FutureRelease<'a> {
    /// Longest hold, in seconds.
    pub max_interval: u64,
    /// Latest release time, as RFC 3339 `date-time` text.
    pub max_datetime: &'a str,
}

/// One capability line of an EHLO reply, typed when its keyword is known.
///
/// A known keyword whose parameters do not follow its RFC (`SIZE big`) is
/// kept as [`Capability::Other`], so nothing the server said is lost. The
/// one exception: parameters after a keyword whose RFC gives it none
/// (`STARTTLS x`, `PIPELINING x`) are ignored, and the extension is read
/// as advertised, so that such a line does not hide STARTTLS from a
/// client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability<'a> {
    /// `"SIZE" [ SP size-param ]`; the number is the largest message size
    /// accepted, 0 meaning no fixed limit (RFC 1870 §3). It may have any
    /// number of digits; one past `u64::MAX` reads as `u64::MAX`.
    Size(Option<u64>),
    /// `8BITMIME`.
    EightBitMime,
    /// `PIPELINING`.
    Pipelining,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH` with its mechanisms; the old `AUTH=LOGIN PLAIN` form reads the same.
    Auth(AuthMechanisms<'a>),
    /// `CHUNKING`.
    Chunking,
    /// `BINARYMIME`.
    BinaryMime,
    /// `SMTPUTF8`.
    SmtpUtf8,
    /// `ENHANCEDSTATUSCODES`.
    EnhancedStatusCodes,
    /// `DSN`.
    Dsn,
    /// `"DELIVERBY" [ SP min-by-time ]`, in seconds (RFC 2852 §4).
    DeliverBy(Option<u64>),
    /// `FUTURERELEASE` with its two limits.
    FutureRelease(FutureRelease<'a>),
    /// `"MT-PRIORITY" [ SP priority-profile ]` (RFC 6710 §3).
    MtPriority(Option<&'a str>),
    /// `REQUIRETLS`.
    RequireTls,
    /// `RRVS`.
    Rrvs,
    /// `"NO-SOLICITING" [ SP solicitation-keywords ]` (RFC 3865 §2).
    NoSoliciting(Option<&'a str>),
    /// `LIMITS` with the limits this type knows.
    Limits(Limits),
    /// `ETRN`.
    Etrn,
    /// `VRFY`.
    Vrfy,
    /// `HELP`.
    Help,
    /// `XCLIENT` with its attribute names, space-separated.
    XClient(&'a str),
    /// Any other capability, with its parameters as received.
    Other {
        /// The keyword as the server spelled it.
        keyword: &'a str,
        /// The parameters after the keyword, space-separated.
        params: &'a str,
    },
}

/// Space-separated words of `s`, empty ones skipped.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|w| !w.is_empty())
}

/// `1*DIGIT` as a `u64`, `None` for anything else or on overflow.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `size-param ::= [1*DIGIT]` (RFC 1870 §3) as a `u64`: any number of
/// digits, leading zeros included; a number past `u64::MAX` is over any
/// message and reads as `u64::MAX` (as `SIZE=` of MAIL does). `None` for
/// anything but digits.
fn size_number(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then(|| n.saturating_mul(10).saturating_add(u64::from(d)))
    })
}

/// Zero or one parameter: `Some(None)` / `Some(Some(p))`; `None` for more.
fn optional_one(params: &str) -> Option<Option<&str>> {
    let mut w = words(params);
    match (w.next(), w.next()) {
        (None, _) => Some(None),
        (Some(p), None) => Some(Some(p)),
        _ => None,
    }
}

/// `limits-param = limit-name-value 0*[SP limit-name-value]`,
/// `limit-name-value = limit-name ["=" limit-value]` (RFC 9422 §3): the
/// known limits, each with its number; any other limit, with a value or
/// without, is skipped, as RFC 9422 §3 asks of a client for limits it does
/// not understand.
///
/// Each limit is read on its own, so one the client cannot use never costs
/// it the others on the line:
/// - a known limit without a number (`RCPTMAX`, `RCPTMAX=lots`,
///   `RCPTMAX=-1`) fits the `limit-value` of §3 but not the value syntax
///   of §4, so the client does not understand it and ignores it;
/// - a number past `u32::MAX` is more than a client can ever use, and reads
///   as `u32::MAX` (as `SIZE` saturates);
/// - a known limit whose value is 0 is skipped, as if it had not been
///   advertised: each of the three is the most of something a server that
///   takes mail allows at least one of (RFC 9422 §4.1 to §4.3), so 0 is out
///   of range, and taken at its word it would have the client send nothing
///   at all (no transaction, or no recipient in one) and retry forever;
/// - a limit given more than once (which a server should not do) keeps
///   its lowest usable value: a client that keeps to it keeps to every one
///   the server may enforce.
fn parse_limits(params: &str) -> Limits {
    let mut limits = Limits::default();
    for word in words(params) {
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        let slot = if name.eq_ignore_ascii_case("RCPTMAX") {
            &mut limits.rcpt_max
        } else if name.eq_ignore_ascii_case("MAILMAX") {
            &mut limits.mail_max
        } else if name.eq_ignore_ascii_case("RCPTDOMAINMAX") {
            &mut limits.rcpt_domain_max
        } else {
            continue;
        };
        let Some(value) = size_number(value) else {
            continue;
        };
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        if value > 0 {
            *slot = Some(slot.map_or(value, |old| old.min(value)));
        }
    }
    limits
}

impl<'a> Capability<'a> {
    /// Parses one `ehlo-line` (RFC 5321 §4.1.1.1), the text after `250-` or
    /// `250 `. Keywords are compared without regard to ASCII case. Never
    /// fails: what is not understood becomes [`Capability::Other`].
    ///
    /// ```
    /// use smtp_proto::reply::{AuthMechanism, Capability};
    /// assert_eq!(Capability::parse("size 10240000"), Capability::Size(Some(10240000)));
    /// let Capability::Auth(mechs) = Capability::parse("AUTH=LOGIN PLAIN") else { panic!() };
    /// assert!(mechs.contains(AuthMechanism::Plain));
    /// assert!(matches!(Capability::parse("X-EXPS GSSAPI"), Capability::Other { keyword: "X-EXPS", .. }));
    /// ```
    #[must_use]
    pub fn parse(line: &'a str) -> Self {
        let line = line.trim_matches(|c| c == ' ' || c == '\t');
        let (keyword, params) = match line.split_once(' ') {
            Some((k, p)) => (k, p.trim_start_matches(' ')),
            None => (line, ""),
        };
        let other = Capability::Other { keyword, params };
        let ext = match Extension::from_keyword(keyword.as_bytes()) {
            Some(ext) => ext,
            None => {
                // The pre-RFC 4954 form `AUTH=mech1 mech2`.
                return match keyword.split_at_checked(5) {
                    Some((head, first)) if head.eq_ignore_ascii_case("AUTH=") => {
                        match line.get(5..) {
                            Some(list) if !first.is_empty() => {
                                Capability::Auth(AuthMechanisms(list))
                            }
                            _ => other,
                        }
                    }
                    _ => other,
                };
            }
        };
        let typed = match ext {
            Extension::Size => match optional_one(params) {
                Some(None) => Some(Capability::Size(None)),
                Some(Some(n)) => size_number(n).map(|n| Capability::Size(Some(n))),
                None => None,
            },
            Extension::EightBitMime => Some(Capability::EightBitMime),
            Extension::Pipelining => Some(Capability::Pipelining),
            Extension::StartTls => Some(Capability::StartTls),
            Extension::Auth => Some(Capability::Auth(AuthMechanisms(params))),
            Extension::Chunking => Some(Capability::Chunking),
            Extension::BinaryMime => Some(Capability::BinaryMime),
            Extension::SmtpUtf8 => Some(Capability::SmtpUtf8),
            Extension::EnhancedStatusCodes => Some(Capability::EnhancedStatusCodes),
            Extension::Dsn => Some(Capability::Dsn),
            Extension::DeliverBy => match optional_one(params) {
                Some(None) => Some(Capability::DeliverBy(None)),
                Some(Some(n)) => number(n).map(|n| Capability::DeliverBy(Some(n))),
                None => None,
            },
            Extension::FutureRelease => {
                let mut w = words(params);
                match (w.next(), w.next(), w.next()) {
                    (Some(interval), Some(datetime), None) => {
                        number(interval).map(|max_interval| {
                            Capability::FutureRelease(FutureRelease {
                                max_interval,
                                max_datetime: datetime,
                            })
                        })
                    }
                    _ => None,
                }
            }
            Extension::MtPriority => optional_one(params).map(Capability::MtPriority),
            Extension::RequireTls => Some(Capability::RequireTls),
            Extension::Rrvs => Some(Capability::Rrvs),
            Extension::NoSoliciting => optional_one(params).map(Capability::NoSoliciting),
            Extension::Limits => Some(Capability::Limits(parse_limits(params))),
            Extension::Etrn => Some(Capability::Etrn),
            Extension::Vrfy => Some(Capability::Vrfy),
            Extension::Help => Some(Capability::Help),
            Extension::XClient => Some(Capability::XClient(params)),
        };
        typed.unwrap_or(other)
    }

    /// The typed extension, `None` for [`Capability::Other`].
    #[must_use]
    pub fn extension(&self) -> Option<Extension> {
        Some(match self {
            Self::Size(_) => Extension::Size,
            Self::EightBitMime => Extension::EightBitMime,
            Self::Pipelining => Extension::Pipelining,
            Self::StartTls => Extension::StartTls,
            Self::Auth(_) => Extension::Auth,
            Self::Chunking => Extension::Chunking,
            Self::BinaryMime => Extension::BinaryMime,
            Self::SmtpUtf8 => Extension::SmtpUtf8,
            Self::EnhancedStatusCodes => Extension::EnhancedStatusCodes,
            Self::Dsn => Extension::Dsn,
            Self::DeliverBy(_) => Extension::DeliverBy,
            Self::FutureRelease(_) => Extension::FutureRelease,
            Self::MtPriority(_) => Extension::MtPriority,
            Self::RequireTls => Extension::RequireTls,
            Self::Rrvs => Extension::Rrvs,
            Self::NoSoliciting(_) => Extension::NoSoliciting,
            Self::Limits(_) => Extension::Limits,
            Self::Etrn => Extension::Etrn,
            Self::Vrfy => Extension::Vrfy,
            Self::Help => Extension::Help,
            Self::XClient(_) => Extension::XClient,
            Self::Other { .. } => return None,
        })
    }

    /// The keyword: upper case for typed capabilities, as received for
    /// [`Capability::Other`].
    #[must_use]
    pub fn keyword(&self) -> &'a str {
        match (self, self.extension()) {
            (Self::Other { keyword, .. }, _) => keyword,
            (_, Some(ext)) => ext.keyword(),
            (_, None) => "",
        }
    }
}

/// Writes the canonical `ehlo-line`: the keyword, then each parameter after
/// a single SP.
impl fmt::Display for Capability<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())?;
        let list = |f: &mut fmt::Formatter<'_>, s: &str| -> fmt::Result {
            for w in words(s) {
                write!(f, " {w}")?;
            }
            Ok(())
        };
        match self {
            Self::Size(Some(n)) | Self::DeliverBy(Some(n)) => write!(f, " {n}"),
            Self::Auth(m) => list(f, m.as_str()),
            Self::FutureRelease(fr) => write!(f, " {} {}", fr.max_interval, fr.max_datetime),
            Self::MtPriority(Some(p)) | Self::NoSoliciting(Some(p)) => write!(f, " {p}"),
            Self::Limits(l) => {
                for (name, value) in [
                    ("RCPTMAX", l.rcpt_max),
                    ("MAILMAX", l.mail_max),
                    ("RCPTDOMAINMAX", l.rcpt_domain_max),
                ] {
                    if let Some(v) = value {
                        write!(f, " {name}={v}")?;
                    }
                }
                Ok(())
            }
            Self::XClient(p) | Self::Other { params: p, .. } => list(f, p),
            _ => Ok(()),
        }
    }
}

/// Why a reply is not a usable EHLO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EhloError {
    /// The reply code is not 250: the server refused EHLO.
    #[error("EHLO refused with {0}")]
    NotOk(ReplyCode),
    /// The first line has no domain.
    #[error("EHLO reply without domain")]
    MissingDomain,
    /// The domain is not UTF-8.
    #[error("EHLO reply domain is not UTF-8")]
    InvalidUtf8,
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn skip_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

/// The bytes after the next LF.
#[inline(always)]
fn after_lf(s: &[u8]) -> Option<&[u8]> {
    // The usual case: `s` starts with the line's terminator.
    match s {
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => return Some(rest),
        _ => {}
    }
    let lf = s.iter().position(|&b| b == b'\n')?;
    s.get(lf + 1..)
}

/// Iterator over the capabilities of an [`EhloReply`], in the order sent.
#[derive(Debug, Clone)]
pub struct Capabilities<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Capabilities<'a> {
    type Item = Capability<'a>;

    fn next(&mut self) -> Option<Capability<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (content, tail) = split_line(self.rest);
            self.rest = tail;
            let text = trim(content.get(4..).unwrap_or(&[]));
            if text.is_empty() {
                continue;
            }
            // A line that is not UTF-8 was skipped (and counted) when the
            // reply was parsed.
            if let Ok(line) = core::str::from_utf8(text) {
                return Some(Capability::parse(line));
            }
        }
    }
}

/// A parsed reply to EHLO, borrowing from the decoder's input.
///
/// Known capabilities are recorded in a compact typed form while parsing;
/// all capabilities, unknown ones included, can be walked again with
/// [`EhloReply::capabilities`]. Nothing here allocates.
///
/// ```
/// use smtp_proto::reply::{AuthMechanism, EhloReply, Extension, Reply};
///
/// let reply = Reply::parse(
///     b"250-mx.example.org Hello\r\n250-SIZE 35882577\r\n250-AUTH LOGIN PLAIN\r\n\
///       250-X-CUSTOM a b\r\n250 pipelining\r\n",
/// ).unwrap();
/// let ehlo = EhloReply::parse(&reply).unwrap();
/// assert_eq!(ehlo.domain(), "mx.example.org");
/// assert_eq!(ehlo.greeting(), b"Hello");
/// assert!(ehlo.has(Extension::Pipelining));
/// assert_eq!(ehlo.max_size(), Some(35882577));
/// assert!(ehlo.supports_auth(AuthMechanism::Plain));
/// let unknown: Vec<_> = ehlo.unknown().map(|c| c.to_string()).collect();
/// assert_eq!(unknown, ["X-CUSTOM a b"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EhloReply<'a> {
    domain: &'a str,
    greeting: &'a [u8],
    body: &'a [u8],
    summary: EhloSummary,
}

/// The capabilities of the common shapes, as recorded in one pass over the
/// lines; it borrows nothing, so a decoder can carry it between calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EhloSummary {
    extensions: Extensions,
    auth: u32,
    size: Option<u64>,
    unknown: usize,
    /// Capability lines skipped because they are not UTF-8.
    invalid: usize,
}

impl<'a> EhloReply<'a> {
    /// Reads an EHLO reply out of a decoded reply (`ehlo-ok-rsp`, RFC 5321
    /// §4.1.1.1). Empty capability lines (some servers end with `250 `)
    /// are skipped, and so is a capability line that is not UTF-8 (an
    /// `ehlo-line` is ASCII): each line stands alone, so one bad line does
    /// not cost the others. [`EhloReply::invalid_lines`] counts them.
    ///
    /// ```
    /// use smtp_proto::reply::{EhloReply, Extension, Reply};
    ///
    /// let reply = Reply::parse(b"250-mx.example.org\r\n250-X-NOTE caf\xe9\r\n250 STARTTLS\r\n").unwrap();
    /// let ehlo = EhloReply::parse(&reply).unwrap();
    /// assert!(ehlo.has(Extension::StartTls));
    /// assert_eq!(ehlo.invalid_lines(), 1);
    /// ```
    pub fn parse(reply: &Reply<'a>) -> Result<Self, EhloError> {
        let ehlo = Self::first_line(reply)?;
        Ok(ehlo.with_capabilities())
    }

    /// Reads the capabilities even when the first line is unusable (no
    /// domain, or a domain that is not UTF-8): the domain is then empty and
    /// the greeting is the first line's text. A client still learns what
    /// the server offers (STARTTLS above all) from such a reply.
    pub(crate) fn parse_lenient(reply: &Reply<'a>) -> Result<Self, EhloError> {
        let ehlo = match Self::first_line(reply) {
            Err(EhloError::MissingDomain | EhloError::InvalidUtf8) => {
                let (first, body) = Self::split_first(reply);
                Self {
                    domain: "",
                    greeting: trim(first.get(4..).unwrap_or(&[])),
                    body,
                    summary: EhloSummary::default(),
                }
            }
            other => other?,
        };
        Ok(ehlo.with_capabilities())
    }

    /// Records every capability line of the body.
    fn with_capabilities(mut self) -> Self {
        let mut rest = self.body;
        while !rest.is_empty() {
            if let Some(next) = self.summary.fast_line(rest) {
                rest = next;
                continue;
            }
            let (content, tail) = split_line(rest);
            rest = tail;
            let text = trim(content.get(4..).unwrap_or(&[]));
            if text.is_empty() {
                continue;
            }
            match core::str::from_utf8(text) {
                Ok(line) => self.record(Capability::parse(line)),
                Err(_) => self.summary.invalid += 1,
            }
        }
        self
    }

    /// An EHLO reply from a decoded reply whose capability lines were all
    /// recorded in `summary` as they were decoded.
    pub(crate) fn with_summary(reply: &Reply<'a>, summary: EhloSummary) -> Result<Self, EhloError> {
        let mut ehlo = Self::first_line(reply)?;
        ehlo.summary = summary;
        Ok(ehlo)
    }

    /// `"250" ( SP / "-" ) Domain [ SP ehlo-greet ]`, with no capabilities
    /// recorded yet.
    #[inline(always)]
    fn first_line(reply: &Reply<'a>) -> Result<Self, EhloError> {
        if reply.code() != ReplyCode::OK {
            return Err(EhloError::NotOk(reply.code()));
        }
        let (first, body) = Self::split_first(reply);
        let first = trim(first.get(4..).unwrap_or(&[]));
        let (domain, greeting) = match find_space(first) {
            Some(sp) => (
                first.get(..sp).unwrap_or(&[]),
                trim(first.get(sp + 1..).unwrap_or(&[])),
            ),
            None => (first, &[][..]),
        };
        if domain.is_empty() {
            return Err(EhloError::MissingDomain);
        }
        let domain = core::str::from_utf8(domain).map_err(|_| EhloError::InvalidUtf8)?;
        Ok(Self {
            domain,
            greeting,
            body,
            summary: EhloSummary::default(),
        })
    }

    /// The first line's content and the lines after it.
    #[inline(always)]
    fn split_first(reply: &Reply<'a>) -> (&'a [u8], &'a [u8]) {
        // The decoder recorded where the first line's content ends; its
        // terminator follows (CR LF, or LF where bare LF is allowed).
        let raw = reply.as_bytes();
        let end = reply.text_end;
        match (raw.get(..end), raw.get(end..)) {
            (Some(first), Some([b'\r', b'\n', body @ ..] | [b'\n', body @ ..])) => (first, body),
            _ => split_line(raw),
        }
    }

    fn record(&mut self, cap: Capability<'a>) {
        let Some(ext) = cap.extension() else {
            self.summary.unknown += 1;
            return;
        };
        self.summary.extensions.insert(ext);
        match cap {
            Capability::Size(n) => self.summary.size = n,
            Capability::Auth(list) => {
                for m in list.iter() {
                    self.summary.auth |= m.bit();
                }
            }
            _ => {}
        }
    }

    /// The server's domain (or address literal) from the first line.
    #[must_use]
    pub fn domain(&self) -> &'a str {
        self.domain
    }

    /// The greeting text after the domain (may be empty).
    #[must_use]
    pub fn greeting(&self) -> &'a [u8] {
        self.greeting
    }

    /// The typed extensions advertised.
    #[must_use]
    pub fn extensions(&self) -> Extensions {
        self.summary.extensions
    }

    /// True when `ext` is advertised.
    #[must_use]
    pub fn has(&self, ext: Extension) -> bool {
        self.summary.extensions.contains(ext)
    }

    /// The number given with `SIZE`, as sent (`Some(0)` means no fixed
    /// limit); `None` when SIZE came without a number or not at all.
    #[must_use]
    pub fn size(&self) -> Option<u64> {
        self.summary.size
    }

    /// The largest message the server accepts: `Some(n)` when SIZE declared
    /// a non-zero limit.
    #[must_use]
    pub fn max_size(&self) -> Option<u64> {
        self.summary.size.filter(|&n| n > 0)
    }

    /// True when an `AUTH` line names `mechanism` (case-insensitive).
    #[must_use]
    pub fn supports_auth(&self, mechanism: AuthMechanism<'_>) -> bool {
        match mechanism.bit() {
            0 => self.auth_mechanisms().any(|m| same_mechanism(m, mechanism)),
            bit => self.summary.auth & bit != 0,
        }
    }

    /// All mechanisms of all `AUTH` lines, in order (a mechanism named on
    /// both an `AUTH` and an `AUTH=` line appears twice).
    pub fn auth_mechanisms(&self) -> impl Iterator<Item = AuthMechanism<'a>> + 'a {
        self.capabilities().flat_map(|c| {
            match c {
                Capability::Auth(list) => Some(list.iter()),
                _ => None,
            }
            .into_iter()
            .flatten()
        })
    }

    /// The last capability of the kind `pick` selects, found by walking
    /// the lines again (these extensions are rare, so their values are not
    /// kept in the parsed reply).
    fn find<T>(&self, pick: impl Fn(Capability<'a>) -> Option<T>) -> Option<T> {
        self.capabilities().filter_map(pick).last()
    }

    /// The `DELIVERBY` minimum, in seconds.
    #[must_use]
    pub fn deliver_by(&self) -> Option<u64> {
        self.find(|c| match c {
            Capability::DeliverBy(n) => Some(n),
            _ => None,
        })
        .flatten()
    }

    /// The `FUTURERELEASE` limits.
    #[must_use]
    pub fn future_release(&self) -> Option<FutureRelease<'a>> {
        self.find(|c| match c {
            Capability::FutureRelease(fr) => Some(fr),
            _ => None,
        })
    }

    /// The `MT-PRIORITY` profile name, when one was given.
    #[must_use]
    pub fn mt_priority_profile(&self) -> Option<&'a str> {
        self.find(|c| match c {
            Capability::MtPriority(p) => Some(p),
            _ => None,
        })
        .flatten()
    }

    /// The `NO-SOLICITING` keywords, when given.
    #[must_use]
    pub fn no_soliciting_keywords(&self) -> Option<&'a str> {
        self.find(|c| match c {
            Capability::NoSoliciting(p) => Some(p),
            _ => None,
        })
        .flatten()
    }

    /// The `XCLIENT` attribute names, space-separated (empty when XCLIENT
    /// was not advertised).
    #[must_use]
    pub fn xclient_attributes(&self) -> &'a str {
        self.find(|c| match c {
            Capability::XClient(p) => Some(p),
            _ => None,
        })
        .unwrap_or("")
    }

    /// The `LIMITS` values (all `None` when LIMITS was not advertised).
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.find(|c| match c {
            Capability::Limits(l) => Some(l),
            _ => None,
        })
        .unwrap_or_default()
    }

    /// Number of capabilities that have no typed form.
    #[must_use]
    pub fn unknown_count(&self) -> usize {
        self.summary.unknown
    }

    /// Capability lines that were skipped because they are not UTF-8 (an
    /// `ehlo-line` is ASCII, RFC 5321 §4.1.1.1). They are not typed, not
    /// counted as unknown and not walked by [`EhloReply::capabilities`].
    #[must_use]
    pub fn invalid_lines(&self) -> usize {
        self.summary.invalid
    }

    /// Every capability line, in the order sent.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities<'a> {
        Capabilities { rest: self.body }
    }

    /// The capabilities without a typed form, with their parameters.
    pub fn unknown(&self) -> impl Iterator<Item = Capability<'a>> + 'a {
        self.capabilities()
            .filter(|c| matches!(c, Capability::Other { .. }))
    }
}

impl EhloSummary {
    /// Records a known capability that came without parameters. `None`
    /// (nothing recorded) for the ones whose line the full parser reads.
    #[inline(always)]
    fn record_bare(&mut self, ext: Extension) -> Option<()> {
        if matches!(
            ext,
            Extension::DeliverBy
                | Extension::FutureRelease
                | Extension::MtPriority
                | Extension::NoSoliciting
                | Extension::Limits
                | Extension::XClient
        ) {
            return None;
        }
        if ext == Extension::Size {
            self.size = None;
        }
        self.extensions.insert(ext);
        Some(())
    }

    /// Records the capability at the start of `rest` (a checked reply line
    /// with its code) when it has one of the common shapes, and returns the
    /// bytes after it; `None` leaves the line to [`Capability::parse`],
    /// which reads every shape the same way, only slower.
    #[inline(always)]
    pub(crate) fn fast_line<'b>(&mut self, rest: &'b [u8]) -> Option<&'b [u8]> {
        let line = rest.get(4..)?;
        let (kw_len, ext) = keyword_token(line)?;
        let after = line.get(kw_len..)?;
        match after.first()? {
            b'\r' | b'\n' => {
                match ext {
                    None if kw_len > 0 => self.unknown += 1,
                    // An empty line (`250 ` at the end of some replies).
                    None => {}
                    Some(ext) => self.record_bare(ext)?,
                }
                after_lf(after)
            }
            b' ' => match ext {
                None if kw_len > 0 => {
                    let lf = memchr::memchr(b'\n', after)?;
                    core::str::from_utf8(after.get(..lf)?).ok()?;
                    self.unknown += 1;
                    after.get(lf + 1..)
                }
                Some(Extension::Size) => {
                    let digits = skip_spaces(after);
                    let len = digits.iter().position(|b| !b.is_ascii_digit())?;
                    // Longer numbers, and overflow, are left to
                    // `Capability::parse`, which saturates.
                    if len == 0 || len > 20 {
                        return None;
                    }
                    let mut n: u64 = 0;
                    for &d in digits.get(..len)? {
                        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                    }
                    let tail = skip_spaces(digits.get(len..)?);
                    if !matches!(tail.first(), Some(b'\r' | b'\n')) {
                        return None;
                    }
                    self.size = Some(n);
                    self.extensions.insert(Extension::Size);
                    after_lf(tail)
                }
                Some(Extension::Auth) => {
                    let mut bits = 0;
                    let mut words = after;
                    loop {
                        words = skip_spaces(words);
                        let len = visible_run(words);
                        if len == words.len() {
                            // No line end after the last mechanism.
                            return None;
                        }
                        if len == 0 {
                            break;
                        }
                        bits |= AuthMechanism::bit_of_key(key_upper_in(words, len));
                        words = words.get(len..)?;
                    }
                    if !matches!(words.first(), Some(b'\r' | b'\n')) {
                        return None;
                    }
                    self.auth |= bits;
                    self.extensions.insert(Extension::Auth);
                    after_lf(words)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Records the capability line at the start of `line` when it is plain
    /// (octets 14 to 127 only), starts with `code` (the reply code's three
    /// digits as a little-endian word) and `-` or SP, ends in CR LF within
    /// `limit` octets, and
    /// has a shape [`EhloSummary::fast_line`] records; returns the octets
    /// it takes. It records exactly what `fast_line` records for such a
    /// line, but frames the line and finds its keyword in the same scan.
    /// `None` records nothing.
    #[inline(always)]
    pub(crate) fn plain_crlf_line(
        &mut self,
        line: &[u8],
        code: u32,
        limit: usize,
    ) -> Option<usize> {
        // The line must end within the limit: nothing past it is looked at.
        let line = line.get(..line.len().min(limit))?;
        let head = load(line, 0) as u32;
        if head & 0x00FF_FFFF != code || !matches!((head >> 24) as u8, b'-' | b' ') {
            return None;
        }
        // The keyword ends at the first SP or octet below 14 (the CR of a
        // plain line); a known keyword is at most 24 octets long.
        let k0 = load(line, 4);
        let (len, key) = match ends(k0) {
            0 => {
                let k1 = load(line, 12);
                match ends(k1) {
                    0 => {
                        let k2 = load(line, 20);
                        let e = ends(k2);
                        if e == 0 {
                            return None;
                        }
                        (16 + first_flag(e), (k0, k1, below_flag(k2, e)))
                    }
                    e => (8 + first_flag(e), (k0, below_flag(k1, e), 0)),
                }
            }
            e => (first_flag(e), (below_flag(k0, e), 0, 0)),
        };
        let after = 4 + len;
        let ext = if len == 0 {
            None
        } else {
            extension_of_raw_key(len, key)
        };
        // An unknown keyword must be made of keyword octets (a known one is).
        let unknown_ok = || {
            line.get(4..after)
                .is_some_and(|k| k.iter().all(|&b| is_keyword_byte(b)))
        };
        match line.get(after)? {
            b'\r' => {
                if line.get(after + 1) != Some(&b'\n') {
                    return None;
                }
                match ext {
                    None if len > 0 => {
                        if !unknown_ok() {
                            return None;
                        }
                        self.unknown += 1;
                    }
                    // An empty line (`250-` alone).
                    None => {}
                    Some(ext) => self.record_bare(ext)?,
                }
                Some(after + 2)
            }
            b' ' => {
                let (end, record) = match ext {
                    None if len > 0 => {
                        if !unknown_ok() {
                            return None;
                        }
                        let cr = after + crate::framer::first_special(line.get(after..)?)?;
                        (cr, Record::Unknown)
                    }
                    Some(Extension::Size) => {
                        let (n, end) = size_param(line, after)?;
                        (end, Record::Size(n))
                    }
                    Some(Extension::Auth) => {
                        let (bits, end) = auth_param(line, after)?;
                        (end, Record::Auth(bits))
                    }
                    _ => return None,
                };
                if line.get(end..end + 2) != Some(b"\r\n") {
                    return None;
                }
                match record {
                    Record::Unknown => self.unknown += 1,
                    Record::Size(n) => {
                        self.size = Some(n);
                        self.extensions.insert(Extension::Size);
                    }
                    Record::Auth(bits) => {
                        self.auth |= bits;
                        self.extensions.insert(Extension::Auth);
                    }
                }
                Some(end + 2)
            }
            _ => None,
        }
    }
}

/// The index of the first SP in `s`, eight octets at a time (a domain is
/// too short for `memchr` to pay for its set-up).
#[inline(always)]
fn find_space(s: &[u8]) -> Option<usize> {
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let Ok(w) = <[u8; 8]>::try_from(w) else {
            break;
        };
        let sp = u64::from_le_bytes(w) ^ (ONES * u64::from(b' '));
        // Only an SP octet becomes 0; the lowest flag is exact.
        let flags = sp.wrapping_sub(ONES) & !sp & HIGH;
        if flags != 0 {
            return Some(base + first_flag(flags));
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b' ')
        .map(|p| base + p)
}

/// What [`EhloSummary::plain_crlf_line`] records once the line's end is
/// found.
enum Record {
    Unknown,
    Size(u64),
    Auth(u32),
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight octets of `buf` from `at` as a little-endian word; octets past
/// its end read as 0, which no plain line holds before its CR.
#[inline(always)]
fn load(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        Some(w) => u64::from_le_bytes(*w),
        None => load_tail(buf, at),
    }
}

#[cold]
#[inline(never)]
fn load_tail(buf: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(buf.get(at..).unwrap_or(&[])) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

/// The high bit of each octet of `w` that is SP or below 14; the lowest
/// one marks the first such octet exactly (a borrow only runs upwards).
#[inline(always)]
fn ends(w: u64) -> u64 {
    let sp = w ^ (ONES * u64::from(b' '));
    ((sp.wrapping_sub(ONES) & !sp) | (w.wrapping_sub(ONES * 14) & !w)) & HIGH
}

/// The high bit of each octet of `w` that is not a visible character
/// (`!` to `~`), the lowest one exact.
#[inline(always)]
fn invisible(w: u64) -> u64 {
    let below = w.wrapping_sub(ONES * u64::from(b'!')) & !w;
    let above = ((w & !HIGH) + ONES) | w;
    (below | above) & HIGH
}

/// The high bit of each octet of `w` that is not an ASCII digit, the
/// lowest one exact.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    let below = w.wrapping_sub(ONES * u64::from(b'0')) & !w;
    let above = ((w & !HIGH) + ONES * (0x80 - u64::from(b'9') - 1)) | w;
    (below | above) & HIGH
}

/// The index of the octet a non-zero flag mask marks first.
#[inline(always)]
fn first_flag(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

/// The octets of `w` below the first one `flags` (non-zero) marks.
#[inline(always)]
fn below_flag(w: u64, flags: u64) -> u64 {
    w & ((flags & flags.wrapping_neg()) >> 7).wrapping_sub(1)
}

/// The known extension of a keyword of `len` octets whose key, as sent,
/// is `raw`: most servers send upper case, which is compared as it is;
/// any other is folded first.
#[inline(always)]
fn extension_of_raw_key(len: usize, raw: Key) -> Option<Extension> {
    extension_by_len(len, raw).or_else(|| {
        let upper = (upper_word(raw.0), upper_word(raw.1), upper_word(raw.2));
        if upper == raw {
            None
        } else {
            extension_by_len(len, upper)
        }
    })
}

/// The known extension whose keyword is `len` octets long and has the key
/// `k`: a match on the length and a few word compares. Only the words the
/// keyword reaches into are compared, the others of a key being 0.
#[inline(always)]
fn extension_by_len(len: usize, (a, b, c): Key) -> Option<Extension> {
    use Extension as E;
    macro_rules! pick {
        ($( $kw:literal => $ext:expr ),* $(,)?) => {{
            $(
                let k = const { key($kw) };
                let same = match len {
                    0..=8 => a == k.0,
                    9..=16 => a == k.0 && b == k.1,
                    _ => a == k.0 && b == k.1 && c == k.2,
                };
                if same {
                    return Some($ext);
                }
            )*
        }};
    }
    match len {
        3 => pick!(b"DSN" => E::Dsn),
        4 => pick!(
            b"SIZE" => E::Size,
            b"AUTH" => E::Auth,
            b"ETRN" => E::Etrn,
            b"VRFY" => E::Vrfy,
            b"HELP" => E::Help,
            b"RRVS" => E::Rrvs,
        ),
        6 => pick!(b"LIMITS" => E::Limits),
        7 => pick!(b"XCLIENT" => E::XClient),
        8 => pick!(
            b"STARTTLS" => E::StartTls,
            b"8BITMIME" => E::EightBitMime,
            b"SMTPUTF8" => E::SmtpUtf8,
            b"CHUNKING" => E::Chunking,
        ),
        9 => pick!(b"DELIVERBY" => E::DeliverBy),
        10 => pick!(
            b"PIPELINING" => E::Pipelining,
            b"BINARYMIME" => E::BinaryMime,
            b"REQUIRETLS" => E::RequireTls,
        ),
        11 => pick!(b"MT-PRIORITY" => E::MtPriority),
        13 => pick!(
            b"FUTURERELEASE" => E::FutureRelease,
            b"NO-SOLICITING" => E::NoSoliciting,
        ),
        19 => pick!(b"ENHANCEDSTATUSCODES" => E::EnhancedStatusCodes),
        _ => {}
    }
    None
}

/// The bit of a known mechanism of up to eight octets whose first key
/// word, as sent, is `raw` (0 for any other); upper case is compared as it
/// is, any other folded first.
#[inline(always)]
fn short_mechanism_bit(raw: u64) -> u32 {
    #[inline(always)]
    fn by_key(a: u64) -> u32 {
        use AuthMechanism as M;
        macro_rules! pick {
            ($( $name:literal => $m:expr ),* $(,)?) => {{
                $(
                    if a == const { key($name).0 } {
                        return const { $m.bit() };
                    }
                )*
            }};
        }
        pick!(
            b"PLAIN" => M::Plain,
            b"LOGIN" => M::Login,
            b"XOAUTH2" => M::XOAuth2,
            b"CRAM-MD5" => M::CramMd5,
            b"GSSAPI" => M::Gssapi,
            b"NTLM" => M::Ntlm,
            b"EXTERNAL" => M::External,
        );
        0
    }
    match by_key(raw) {
        0 => {
            let upper = upper_word(raw);
            if upper == raw {
                0
            } else {
                by_key(upper)
            }
        }
        bit => bit,
    }
}

/// The value of eight decimal digits, one per octet with the most
/// significant in the lowest octet (digit values, not ASCII).
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xFFFF_FFFF
}

/// The value of the first `n` (1 to 8) ASCII digits of `w`.
#[inline(always)]
fn digits_value(w: u64, n: usize) -> u64 {
    // The low `n` octets are digits, so no borrow reaches them.
    let v = w.wrapping_sub(ONES * u64::from(b'0'));
    let v = v & (u64::MAX >> (64 - 8 * n));
    eight_digits(v << (64 - 8 * n))
}

/// `SP *SP 1*20DIGIT *SP` from `at` (the SP after `SIZE`), as
/// [`EhloSummary::fast_line`] reads it: the number and where the octets
/// after it start. `None` for more digits or a number past `u64::MAX`,
/// which [`Capability::parse`] reads (saturating), as for any other shape.
#[inline(always)]
fn size_param(line: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut p = at;
    while line.get(p) == Some(&b' ') {
        p += 1;
    }
    let w0 = load(line, p);
    let (n, len) = match non_digits(w0) {
        0 => {
            let w1 = load(line, p + 8);
            match non_digits(w1) {
                0 => {
                    let digits = line.get(p..)?;
                    let len = digits.iter().position(|b| !b.is_ascii_digit())?;
                    if len > 20 {
                        return None;
                    }
                    let mut n: u64 = 0;
                    for &d in digits.get(..len)? {
                        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                    }
                    (n, len)
                }
                f => {
                    // 8 to 15 digits: no overflow.
                    let high = digits_value(w0, 8);
                    match first_flag(f) {
                        0 => (high, 8),
                        m => (high * POW10[m] + digits_value(w1, m), 8 + m),
                    }
                }
            }
        }
        f => match first_flag(f) {
            0 => return None,
            len => (digits_value(w0, len), len),
        },
    };
    p += len;
    while line.get(p) == Some(&b' ') {
        p += 1;
    }
    Some((n, p))
}

/// Powers of ten for up to seven digits.
const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// `*( 1*SP mechanism )` from `at` (the SP after `AUTH`), as
/// [`EhloSummary::fast_line`] reads it: the bits of the known mechanisms
/// and where the first octet that is neither SP nor visible is.
#[inline(always)]
fn auth_param(line: &[u8], at: usize) -> Option<(u32, usize)> {
    let mut bits = 0;
    let mut p = at;
    loop {
        while line.get(p) == Some(&b' ') {
            p += 1;
        }
        // Mechanisms of up to 15 octets are read a word at a time.
        let w0 = load(line, p);
        let (len, key) = match invisible(w0) {
            0 => {
                let w1 = load(line, p + 8);
                match invisible(w1) {
                    0 => {
                        let words = line.get(p..)?;
                        let len = visible_run(words);
                        (len, key_upper_in(words, len))
                    }
                    f => (
                        8 + first_flag(f),
                        Some((upper_word(w0), upper_word(below_flag(w1, f)), 0)),
                    ),
                }
            }
            f => match first_flag(f) {
                0 => return Some((bits, p)),
                len => {
                    bits |= short_mechanism_bit(below_flag(w0, f));
                    p += len;
                    continue;
                }
            },
        };
        bits |= AuthMechanism::bit_of_key(key);
        p += len;
    }
}

/// Builds the reply a server sends to EHLO.
///
/// ```
/// use smtp_proto::reply::{AuthMechanism, Capability, EhloReplyBuilder};
///
/// let reply = EhloReplyBuilder::new("mx.example.org", "greets client.example.net")
///     .unwrap()
///     .capability(&Capability::Pipelining).unwrap()
///     .capability(&Capability::Size(Some(10_485_760))).unwrap()
///     .auth(&[AuthMechanism::Plain, AuthMechanism::Login]).unwrap()
///     .build();
/// assert_eq!(
///     reply.to_bytes(),
///     b"250-mx.example.org greets client.example.net\r\n\
///       250-PIPELINING\r\n250-SIZE 10485760\r\n250 AUTH PLAIN LOGIN\r\n",
/// );
/// ```
#[derive(Debug, Clone)]
pub struct EhloReplyBuilder {
    reply: OwnedReply,
}

impl EhloReplyBuilder {
    /// Starts with the first line: `Domain [ SP ehlo-greet ]`. The domain
    /// may not be empty nor hold spaces or control characters; the greeting
    /// may be empty.
    pub fn new(domain: &str, greeting: &str) -> Result<Self, InvalidReply> {
        if domain.is_empty() {
            return Err(InvalidReply::Empty);
        }
        if domain.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(InvalidReply::InvalidEhloLine);
        }
        let reply = if greeting.is_empty() {
            OwnedReply::new(ReplyCode::OK, domain)?
        } else {
            let mut first = String::with_capacity(domain.len() + 1 + greeting.len());
            first.push_str(domain);
            first.push(' ');
            first.push_str(greeting);
            OwnedReply::new(ReplyCode::OK, first)?
        };
        Ok(Self { reply })
    }

    /// Adds a capability line. Its keyword must be an `ehlo-keyword` and its
    /// parameters `ehlo-param`s (printable US-ASCII without spaces); an
    /// `AUTH` list is held to the rules of [`auth`](Self::auth).
    ///
    /// A [`Capability::Other`] whose keyword is a known one is held to the
    /// rules of the typed form it reads back as: `AUTH` with no mechanism,
    /// or `SIZE big`, is refused as [`Capability::Auth`] and
    /// [`Capability::Size`] would be; one that fits is written as given.
    pub fn capability(mut self, cap: &Capability<'_>) -> Result<Self, InvalidReply> {
        if let Capability::Auth(list) = cap {
            check_auth_list(list)?;
        }
        let line = cap.to_string();
        let keyword = cap.keyword().as_bytes();
        match keyword.first() {
            None => return Err(InvalidReply::Empty),
            Some(b) if !b.is_ascii_alphanumeric() => return Err(InvalidReply::InvalidEhloLine),
            Some(_) => {}
        }
        if !keyword
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        {
            return Err(InvalidReply::InvalidEhloLine);
        }
        if !line.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(InvalidReply::InvalidEhloLine);
        }
        // The line must read back as what was given: a typed capability
        // whose parameter is empty or holds a space (`MT-PRIORITY a b`)
        // would come back as another capability, or another text.
        let again = Capability::parse(&line);
        if again.to_string() != line
            || (cap.extension().is_some() && again.extension() != cap.extension())
        {
            return Err(InvalidReply::InvalidEhloLine);
        }
        // An `Other` with a known keyword reads back as that extension: its
        // parameters must follow the extension's rules, as the typed form's.
        if let Some(ext) = Extension::from_keyword(keyword) {
            if again.extension() != Some(ext) {
                return Err(InvalidReply::InvalidEhloLine);
            }
            if let Capability::Auth(list) = again {
                check_auth_list(&list)?;
            }
        }
        self.reply.push_line(None, line)?;
        Ok(self)
    }

    /// Adds an `AUTH` line naming `mechanisms`: at least one, each a
    /// `sasl-mech` (RFC 4422 §3.1: 1 to 20 letters, digits, `-` or `_`).
    ///
    /// ```
    /// use smtp_proto::reply::{AuthMechanism, EhloReplyBuilder};
    /// let b = EhloReplyBuilder::new("mx.example.org", "").unwrap();
    /// assert!(b.clone().auth(&[AuthMechanism::Plain, AuthMechanism::Other("X-TOKEN")]).is_ok());
    /// assert!(b.clone().auth(&[AuthMechanism::Other("TWO WORDS")]).is_err());
    /// assert!(b.auth(&[]).is_err());
    /// ```
    pub fn auth(self, mechanisms: &[AuthMechanism<'_>]) -> Result<Self, InvalidReply> {
        if mechanisms.is_empty() {
            return Err(InvalidReply::Empty);
        }
        let mut list = String::new();
        for m in mechanisms {
            let name = m.name();
            if !is_mechanism_name(name) {
                return Err(InvalidReply::InvalidEhloLine);
            }
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(name);
        }
        self.capability(&Capability::Auth(AuthMechanisms(&list)))
    }

    /// The finished reply.
    #[must_use]
    pub fn build(self) -> OwnedReply {
        self.reply
    }
}

/// The rules of [`EhloReplyBuilder::auth`] for an `AUTH` line: RFC 4954
/// §3 names at least one mechanism, each a SASL mechanism name.
fn check_auth_list(list: &AuthMechanisms<'_>) -> Result<(), InvalidReply> {
    let mut names = list.iter().map(|m| m.name()).peekable();
    if names.peek().is_none() {
        return Err(InvalidReply::Empty);
    }
    if !names.all(is_mechanism_name) {
        return Err(InvalidReply::InvalidEhloLine);
    }
    Ok(())
}

/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / HYPHEN /
/// UNDERSCORE` (RFC 4422 §3.1); lower case is accepted as written, since
/// mechanism names compare without regard to case.
fn is_mechanism_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of `k` as the one-pass decoder builds it: the octets as
    /// sent, zero-padded.
    fn raw_key(k: &[u8]) -> Key {
        let mut buf = [0u8; KEY_LEN];
        buf[..k.len()].copy_from_slice(k);
        (word(&buf, 0), word(&buf, 8), word(&buf, 16))
    }

    #[test]
    fn keywords_found_by_length_agree_with_the_hash_table() {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for ext in Extension::ALL {
            let k = ext.keyword().as_bytes();
            names.push(k.to_vec());
            names.push(k.to_ascii_lowercase());
            // The same length with one octet changed, and one octet more
            // or less.
            for i in 0..k.len() {
                let mut changed = k.to_vec();
                changed[i] ^= 0x01;
                names.push(changed);
            }
            names.push([k, b"S"].concat());
            names.push(k[..k.len() - 1].to_vec());
        }
        for name in &names {
            let expected = Extension::from_keyword(name);
            assert_eq!(
                extension_of_raw_key(name.len(), raw_key(name)),
                expected,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        for ext in Extension::ALL {
            let k = ext.keyword().as_bytes();
            assert_eq!(extension_of_raw_key(k.len(), raw_key(k)), Some(*ext));
        }
    }

    #[test]
    fn short_mechanisms_agree_with_the_hash_table() {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for m in AuthMechanism::KNOWN {
            let n = m.name().as_bytes();
            if n.len() > 8 {
                continue;
            }
            names.push(n.to_vec());
            names.push(n.to_ascii_lowercase());
            for i in 0..n.len() {
                let mut changed = n.to_vec();
                changed[i] ^= 0x01;
                names.push(changed);
            }
            names.push(n[..n.len() - 1].to_vec());
            assert_ne!(short_mechanism_bit(raw_key(n).0), 0, "{m}");
        }
        for name in &names {
            let expected = AuthMechanism::bit_of_key(key_upper(name));
            assert_eq!(
                short_mechanism_bit(raw_key(name).0),
                expected,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn digits_are_read_eight_at_a_time() {
        for n in 1..=8 {
            for start in [0u64, 1, 9, 12_345_678, 98_765_432] {
                let text = format!("{start:08}");
                let digits = &text.as_bytes()[8 - n..];
                let mut w = [b' '; 8];
                w[..n].copy_from_slice(digits);
                let expected: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap();
                assert_eq!(
                    digits_value(u64::from_le_bytes(w), n),
                    expected,
                    "{text} {n}"
                );
            }
        }
    }
}
