//! Trace header fields (RFC 5321 §4.4): the `Received:` line a server puts
//! in front of every message it takes, and the `Return-Path:` line of final
//! delivery.
//!
//! The core has no clock: the caller gives the time as a [`Timestamp`]
//! (from `SystemTime::now()` in a real server). Every part of a field is a
//! checked value ([`Domain`], [`Atom`], [`ForwardPath`], an IP address), so
//! nothing a client sent can add a header line.
//!
//! ```
//! use smtp_proto::command::{Atom, Domain, ForwardPath, Mailbox};
//! use smtp_proto::trace::{Received, Timestamp, WithProtocol};
//!
//! let by = Domain::new("mx.example.org").unwrap();
//! let helo = Domain::new("client.example.net").unwrap();
//! let id = Atom::new("4F1A2B").unwrap();
//! let rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.org").unwrap());
//! let when = Timestamp::new(1_795_723_722, 60).unwrap();
//! let received = Received::new(&helo, "192.0.2.7".parse().unwrap(), &by, when)
//!     .with(WithProtocol::esmtp().tls(true))
//!     .id(&id)
//!     .unwrap()
//!     .recipient(&rcpt);
//! assert_eq!(
//!     String::from_utf8(received.to_bytes()).unwrap(),
//!     "Received: from client.example.net ([192.0.2.7])\r\n\
//!      \tby mx.example.org with ESMTPS id 4F1A2B\r\n\
//!      \tfor <bob@example.org>;\r\n\
//!      \tThu, 26 Nov 2026 21:08:42 +0100\r\n"
//! );
//! ```

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::command::{Atom, DateTime, Domain, ForwardPath, ReversePath};

/// Why a [`Timestamp`] or a [`Received`] clause cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The zone offset is over 99 hours 59 minutes either way, which the
    /// four digits of an RFC 5322 zone cannot write.
    #[error("zone offset outside -9959..=+9959")]
    Offset,
    /// The date, in UTC or at the offset, is before the year 1900 or after
    /// 9999 (RFC 5322 §3.3 wants a four-digit year from 1900; RFC 3339
    /// `date-fullyear` is four digits).
    #[error("date outside the years 1900 to 9999")]
    Year,
    /// A `Received:` id over [`Received::MAX_ID_LEN`] octets, which would
    /// not leave its line within 998 octets (RFC 5322 §2.1.1).
    #[error("Received id longer than 255 octets")]
    IdTooLong,
    /// Text given to [`Timestamp::parse_date_time`] is not an RFC 5322
    /// `date-time`, or names a day, hour, minute, second or zone offset
    /// out of range.
    #[error("not an RFC 5322 date-time")]
    Date,
}

/// A second in time and the zone offset to show it in.
///
/// It writes itself ([`fmt::Display`]) as an RFC 5322 `date-time`, the
/// form of a trace field's date, and as an RFC 3339 date-time with
/// [`Timestamp::to_date_time`], the form of `HOLDUNTIL=` and `RRVS=`.
///
/// ```
/// use smtp_proto::trace::Timestamp;
/// let t = Timestamp::new(0, 0).unwrap();
/// assert_eq!(t.to_string(), "Thu, 1 Jan 1970 00:00:00 +0000");
/// let t = Timestamp::new(951_782_400, -330).unwrap();
/// assert_eq!(t.to_string(), "Mon, 28 Feb 2000 18:30:00 -0530");
/// assert_eq!(t.to_date_time().as_str(), "2000-02-28T18:30:00-05:30");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    unix: i64,
    offset: i16,
}

/// The largest zone offset in minutes, `+9959`.
const MAX_OFFSET: i16 = 99 * 60 + 59;

/// Local date and time fields.
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Timestamp {
    /// A time in seconds since 1970-01-01T00:00:00Z (leap seconds not
    /// counted), shown at `offset_minutes` east of UTC.
    ///
    /// # Errors
    /// [`TraceError::Offset`] or [`TraceError::Year`] when the offset, or
    /// the year in UTC or at the offset, cannot be written.
    ///
    /// ```
    /// use smtp_proto::trace::{Timestamp, TraceError};
    /// let t = Timestamp::new(1_795_723_722, 60).unwrap();
    /// assert_eq!(t.to_string(), "Thu, 26 Nov 2026 21:08:42 +0100");
    /// assert_eq!(Timestamp::new(0, 100 * 60), Err(TraceError::Offset));
    /// assert_eq!(Timestamp::new(-2_300_000_000, 0), Err(TraceError::Year)); // 1897
    /// ```
    pub fn new(unix_seconds: i64, offset_minutes: i16) -> Result<Self, TraceError> {
        if !(-MAX_OFFSET..=MAX_OFFSET).contains(&offset_minutes) {
            return Err(TraceError::Offset);
        }
        let t = Timestamp {
            unix: unix_seconds,
            offset: offset_minutes,
        };
        let local = unix_seconds.checked_add(i64::from(offset_minutes) * 60);
        let writable =
            |secs: Option<i64>| secs.is_some_and(|s| (1900..=9999).contains(&civil(s).year));
        // The UTC form is what `to_date_time` writes for a large offset.
        if !writable(local) || !writable(Some(unix_seconds)) {
            return Err(TraceError::Year);
        }
        Ok(t)
    }

    /// A system time, shown in UTC (`+0000`); fractions of a second are
    /// dropped.
    ///
    /// ```
    /// use smtp_proto::trace::Timestamp;
    /// let now = Timestamp::from_system_time(std::time::SystemTime::now()).unwrap();
    /// assert!(now.unix_seconds() > 1_700_000_000);
    /// ```
    ///
    /// # Errors
    /// [`TraceError::Year`] outside the years 1900 to 9999.
    pub fn from_system_time(time: SystemTime) -> Result<Self, TraceError> {
        let secs = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()),
            // Before 1970: round down to the whole second.
            Err(e) => {
                let before = e.duration();
                let whole = before.as_secs() + u64::from(before.subsec_nanos() > 0);
                i64::try_from(whole).map(|s| -s)
            }
        };
        Self::new(secs.map_err(|_| TraceError::Year)?, 0)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    #[must_use]
    pub fn unix_seconds(&self) -> i64 {
        self.unix
    }

    /// The zone offset, in minutes east of UTC.
    #[must_use]
    pub fn offset_minutes(&self) -> i16 {
        self.offset
    }

    /// The same time as an RFC 3339 date-time in its zone (`Z` for UTC),
    /// for `HOLDUNTIL=` (RFC 4865) and `RRVS=` (RFC 7293). RFC 3339 offsets
    /// stop at 23:59; a larger one is written in UTC.
    ///
    /// ```
    /// use smtp_proto::trace::Timestamp;
    /// let t = Timestamp::new(1_795_723_722, 0).unwrap();
    /// assert_eq!(t.to_date_time().as_str(), "2026-11-26T20:08:42Z");
    /// ```
    #[must_use]
    pub fn to_date_time(&self) -> DateTime<'static> {
        let shown = if self.offset.abs() < 24 * 60 {
            *self
        } else {
            Timestamp { offset: 0, ..*self }
        };
        let c = shown.local();
        let zone = if shown.offset == 0 {
            "Z".to_string()
        } else {
            let (sign, hh, mm) = shown.zone();
            format!("{sign}{hh:02}:{mm:02}")
        };
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
            c.year,
            c.month + 1,
            c.day,
            c.hour,
            c.minute,
            c.second
        );
        DateTime(text.into())
    }

    /// Reads an RFC 5322 `date-time` (§3.3, with the obsolete forms of
    /// §4.3), the form [`fmt::Display`] writes and the form of a trace
    /// field's date or of the dates of a delivery status notification.
    ///
    /// Taken: comments (`(...)`, nested) and any whitespace between the
    /// parts; an optional day of the week (`Mon,`, any case, not checked
    /// against the date); a day of one or two digits; a month name in
    /// any case; a year of four or more digits, or an obsolete one of two
    /// (`50` to `99` are 1950 to 1999, `00` to `49` 2000 to 2049) or three
    /// (1900 added); `hh:mm` or `hh:mm:ss` (whitespace around the colons
    /// taken); a zone `+hhmm` / `-hhmm` or an
    /// obsolete one: `UT`, `GMT`, `EST`, `EDT`, `CST`, `CDT`, `MST`,
    /// `MDT`, `PST`, `PDT`, or a military letter, which RFC 5322 §4.3
    /// says to take as `-0000` (UTC). A leap second (`:60`) is the
    /// first second of the next minute.
    ///
    /// ```
    /// use smtp_proto::trace::Timestamp;
    /// let t = Timestamp::parse_date_time("Thu, 26 Nov 2026 21:08:42 +0100").unwrap();
    /// assert_eq!((t.unix_seconds(), t.offset_minutes()), (1_795_723_722, 60));
    /// let t = Timestamp::parse_date_time("26 nov 26 15:08 EST (New York)").unwrap();
    /// assert_eq!((t.unix_seconds(), t.offset_minutes()), (1_795_723_680, -300));
    /// assert!(Timestamp::parse_date_time("Thu, 31 Nov 2026 21:08:42 +0100").is_err());
    /// ```
    ///
    /// # Errors
    /// [`TraceError::Date`] when the text is not of that form or a field
    /// is out of range (month, day of that month, leap years counted,
    /// hour below 24, minute below 60, second at most 60, zone minutes
    /// below 60); [`TraceError::Year`] for a year outside 1900 to 9999.
    pub fn parse_date_time(text: &str) -> Result<Self, TraceError> {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let text = without_comments(text).ok_or(TraceError::Date)?;
        // Obsolete: whitespace (and comments) around the colons of the time.
        let text = text
            .split(':')
            .map(str::trim_ascii)
            .collect::<Vec<_>>()
            .join(":");
        let rest = match text.split_once(',') {
            Some((day, rest)) => {
                let day = day.trim_ascii();
                if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(day)) {
                    return Err(TraceError::Date);
                }
                rest
            }
            None => text.as_str(),
        };
        let mut words = rest.split_ascii_whitespace();
        let mut word = || words.next().ok_or(TraceError::Date);
        let day = number(word()?, 1, 2)?;
        let month_name = word()?;
        let month = MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(month_name))
            .ok_or(TraceError::Date)?;
        let year_text = word()?;
        let year = number(year_text, 2, 9)?;
        let year = match year_text.len() {
            2 if year < 50 => year + 2000,
            2 | 3 => year + 1900,
            _ => year,
        };
        if !(1900..=9999).contains(&year) {
            return Err(TraceError::Year);
        }
        let mut clock = word()?.split(':');
        let mut part = |max: i64| -> Result<Option<i64>, TraceError> {
            clock
                .next()
                .map(|p| {
                    number(p, 2, 2).and_then(|n| (n <= max).then_some(n).ok_or(TraceError::Date))
                })
                .transpose()
        };
        let hour = part(23)?.ok_or(TraceError::Date)?;
        let minute = part(59)?.ok_or(TraceError::Date)?;
        let second = part(60)?.unwrap_or(0);
        if part(0)?.is_some() {
            return Err(TraceError::Date);
        }
        let offset = zone(word()?)?;
        if words.next().is_some() {
            return Err(TraceError::Date);
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if day == 0 || day > month_days[month] {
            return Err(TraceError::Date);
        }
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Self::new(local - i64::from(offset) * 60, offset)
    }

    fn local(&self) -> Civil {
        // `new` checked that this neither overflows nor leaves 1900-9999.
        civil(self.unix + i64::from(self.offset) * 60)
    }

    fn zone(&self) -> (char, i16, i16) {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let abs = self.offset.abs();
        (sign, abs / 60, abs % 60)
    }
}

impl fmt::Display for Timestamp {
    /// `day-name, day month year hh:mm:ss zone` (RFC 5322 §3.3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let c = self.local();
        let (sign, hh, mm) = self.zone();
        write!(
            f,
            "{}, {} {} {} {:02}:{:02}:{:02} {sign}{hh:02}{mm:02}",
            DAYS[c.weekday], c.day, MONTHS[c.month], c.year, c.hour, c.minute, c.second
        )
    }
}

/// `text` with its comments (`(...)`, nested, `\` quoting a character)
/// made spaces; `None` for a comment left open.
fn without_comments(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            '\\' if depth > 0 => {
                chars.next();
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    (depth == 0).then_some(out)
}

/// A number of `min` to `max` ASCII digits.
fn number(text: &str, min: usize, max: usize) -> Result<i64, TraceError> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TraceError::Date);
    }
    text.parse().map_err(|_| TraceError::Date)
}

/// A zone in minutes east of UTC: `+hhmm`, `-hhmm`, or an obsolete name
/// (RFC 5322 §4.3).
fn zone(text: &str) -> Result<i16, TraceError> {
    if let Some(digits) = text.strip_prefix(['+', '-']) {
        let negative = text.starts_with('-');
        let n = number(digits, 4, 4)?;
        let (hh, mm) = (n / 100, n % 100);
        if mm >= 60 {
            return Err(TraceError::Date);
        }
        let minutes = i16::try_from(hh * 60 + mm).map_err(|_| TraceError::Date)?;
        return Ok(if negative { -minutes } else { minutes });
    }
    const NAMES: [(&str, i16); 10] = [
        ("UT", 0),
        ("GMT", 0),
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
    ];
    if let Some((_, hours)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
        return Ok(hours * 60);
    }
    // Military zones: any letter but J, taken as -0000.
    match text.as_bytes() {
        [c] if c.is_ascii_alphabetic() && !c.eq_ignore_ascii_case(&b'j') => Ok(0),
        _ => Err(TraceError::Date),
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar
/// (`month` from 0; the days-from-civil method of H. Hinnant).
fn days_from_civil(year: i64, month: usize, day: i64) -> i64 {
    // March-based: January and February count in the year before.
    let month = month as i64 + 1;
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar fields of a count of seconds since the epoch (proleptic
/// Gregorian calendar; the civil-from-days method of H. Hinnant). Months
/// count from 0, weekdays from Sunday.
fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7) as usize;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    // March-based month `mp` (0 = March) to January-based.
    let month = if mp < 10 { mp + 2 } else { mp - 10 } as usize;
    let year = yoe + era * 400 + i64::from(month <= 1);
    Civil {
        year,
        month,
        day,
        weekday,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// What the service is, for the base of the `with` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Service {
    Smtp,
    Esmtp,
    Lmtp,
}

/// The `with` protocol of a `Received:` line: one of the mail transmission
/// types registered by RFC 3848 and RFC 6531 (`ESMTP`, `ESMTPS`, `ESMTPA`,
/// `ESMTPSA`, the `LMTP` forms, the `UTF8SMTP` and `UTF8LMTP` forms, and
/// `SMTP` for a HELO session).
///
/// [`ServerSession::with_protocol`](crate::server::ServerSession::with_protocol)
/// gives the one of the session's current message.
///
/// ```
/// use smtp_proto::trace::WithProtocol;
/// assert_eq!(WithProtocol::esmtp().keyword(), "ESMTP");
/// assert_eq!(WithProtocol::esmtp().tls(true).auth(true).keyword(), "ESMTPSA");
/// assert_eq!(WithProtocol::lmtp().utf8(true).auth(true).keyword(), "UTF8LMTPA");
/// // HELO has no extensions: TLS (implicit) and UTF-8 leave it `SMTP`.
/// assert_eq!(WithProtocol::smtp().tls(true).keyword(), "SMTP");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WithProtocol {
    service: Service,
    utf8: bool,
    tls: bool,
    auth: bool,
}

impl WithProtocol {
    /// SMTP after HELO.
    #[must_use]
    pub fn smtp() -> Self {
        Self::of(Service::Smtp)
    }

    /// SMTP after EHLO.
    #[must_use]
    pub fn esmtp() -> Self {
        Self::of(Service::Esmtp)
    }

    /// LMTP (RFC 2033).
    #[must_use]
    pub fn lmtp() -> Self {
        Self::of(Service::Lmtp)
    }

    fn of(service: Service) -> Self {
        WithProtocol {
            service,
            utf8: false,
            tls: false,
            auth: false,
        }
    }

    /// The message was sent with `SMTPUTF8` (RFC 6531 §3.7.3).
    #[must_use]
    pub fn utf8(mut self, on: bool) -> Self {
        self.utf8 = on;
        self
    }

    /// The session was encrypted (STARTTLS or implicit TLS).
    #[must_use]
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The client had authenticated (AUTH).
    #[must_use]
    pub fn auth(mut self, on: bool) -> Self {
        self.auth = on;
        self
    }

    /// The registered keyword. HELO sessions are `SMTP` whatever else
    /// holds: the registry has no other form for them.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        const ESMTP: [&str; 8] = [
            "ESMTP",
            "ESMTPA",
            "ESMTPS",
            "ESMTPSA",
            "UTF8SMTP",
            "UTF8SMTPA",
            "UTF8SMTPS",
            "UTF8SMTPSA",
        ];
        const LMTP: [&str; 8] = [
            "LMTP",
            "LMTPA",
            "LMTPS",
            "LMTPSA",
            "UTF8LMTP",
            "UTF8LMTPA",
            "UTF8LMTPS",
            "UTF8LMTPSA",
        ];
        let form =
            usize::from(self.auth) | usize::from(self.tls) << 1 | usize::from(self.utf8) << 2;
        match self.service {
            Service::Smtp => "SMTP",
            Service::Esmtp => ESMTP[form],
            Service::Lmtp => LMTP[form],
        }
    }
}

impl fmt::Display for WithProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A `Received:` trace field (RFC 5321 §4.4 `Time-stamp-line`).
///
/// Built from the client's HELO name and address, the receiving host's
/// name and the time, with optional clauses; written as one header field
/// folded before `by`, before `for` and before the date:
///
/// ```text
/// Received: from <helo> (<peer name> [<peer address>])
///     by <host> with <protocol> id <id>
///     for <recipient>;
///     <date>
/// ```
///
/// The `from` and `by` parts are RFC 5321's `Extended-Domain`: the peer's
/// address always follows the HELO name as `TCP-info`, an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`; an IPv4-mapped IPv6 address as
/// IPv4), and a `by` host named by an address literal is followed by it
/// again, since the grammar never lets a literal stand alone. Inside those
/// comments, the `(` and `)` a General-address-literal may hold are
/// written as quoted-pairs (`\(`, `\)`, RFC 5322 §3.2.2). Every part is
/// at most 255 octets (RFC 5321 §4.5.3.1.2 for names, [`Self::MAX_ID_LEN`]
/// for the id), so every line stays within the 998 octets of RFC 5322
/// §2.1.1. Lines are also kept to the 78 octets that section advises
/// where the grammar lets them fold: the peer's `TCP-info` comment, and
/// each of the `by` line's clauses (a `by` literal's comment, `with`,
/// `id`), go on a line of their own when they would take their line past
/// 78. The `for` clause names one recipient; RFC 5321 §7.2 advises
/// leaving it out when there are several.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    from: &'a Domain<'a>,
    peer: IpAddr,
    peer_name: Option<&'a Domain<'a>>,
    by: &'a Domain<'a>,
    date: Timestamp,
    with: Option<WithProtocol>,
    id: Option<&'a Atom<'a>>,
    recipient: Option<&'a ForwardPath<'a>>,
}

impl<'a> Received<'a> {
    /// The longest id [`Received::id`] takes, in octets.
    pub const MAX_ID_LEN: usize = 255;

    /// A field with the parts RFC 5321 §4.4 requires: the name the client
    /// gave in EHLO, HELO or LHLO, its address, the receiving host (`by`)
    /// and the date.
    #[must_use]
    pub fn new(from: &'a Domain<'a>, peer: IpAddr, by: &'a Domain<'a>, date: Timestamp) -> Self {
        Received {
            from,
            peer: peer.to_canonical(),
            peer_name: None,
            by,
            date,
            with: None,
            id: None,
            recipient: None,
        }
    }

    /// The name the reverse lookup of the client's address gave (checked
    /// forward, for the name to mean anything). An address literal is no
    /// such name, and `TCP-info` (RFC 5321 §4.4: `address-literal /
    /// ( Domain FWS address-literal )`) has no room for a second one: it is
    /// left out, and the address stands alone.
    ///
    /// Give the name as DNS returns it, in A-labels (`xn--...`): a name in
    /// U-labels is written as it is, and 8-bit text belongs only in the
    /// header of a message sent with SMTPUTF8 (RFC 6532 §3; the same holds
    /// for the `from` and `by` names of [`Received::new`]).
    ///
    /// ```
    /// use smtp_proto::command::Domain;
    /// use smtp_proto::trace::{Received, Timestamp};
    ///
    /// let (helo, by) = (Domain::new("client.example").unwrap(), Domain::new("mx.example.org").unwrap());
    /// let literal = Domain::new("[192.0.2.9]").unwrap();
    /// let at = Timestamp::new(0, 0).unwrap();
    /// let received = Received::new(&helo, "192.0.2.7".parse().unwrap(), &by, at).peer_name(&literal);
    /// assert!(received.to_string().starts_with("Received: from client.example ([192.0.2.7])\r\n"));
    /// ```
    #[must_use]
    pub fn peer_name(mut self, name: &'a Domain<'a>) -> Self {
        self.peer_name = Some(name);
        self
    }

    /// The protocol (`with` clause).
    #[must_use]
    pub fn with(mut self, protocol: WithProtocol) -> Self {
        self.with = Some(protocol);
        self
    }

    /// The receiver's identifier for the message (`id` clause).
    ///
    /// # Errors
    /// [`TraceError::IdTooLong`] over [`Self::MAX_ID_LEN`] octets.
    ///
    /// ```
    /// use smtp_proto::command::{Atom, Domain};
    /// use smtp_proto::trace::{Received, Timestamp, TraceError};
    ///
    /// let (helo, by) = (Domain::new("client.example").unwrap(), Domain::new("mx.example.org").unwrap());
    /// let at = Timestamp::new(0, 0).unwrap();
    /// let received = Received::new(&helo, "192.0.2.7".parse().unwrap(), &by, at);
    /// let long = "x".repeat(Received::MAX_ID_LEN + 1);
    /// let long = Atom::new(&long).unwrap();
    /// assert_eq!(received.id(&long).unwrap_err(), TraceError::IdTooLong);
    /// let id = Atom::new("4F1A2B").unwrap();
    /// assert!(received.id(&id).unwrap().to_string().contains("\tby mx.example.org id 4F1A2B;"));
    /// ```
    pub fn id(mut self, id: &'a Atom<'a>) -> Result<Self, TraceError> {
        if id.as_str().len() > Self::MAX_ID_LEN {
            return Err(TraceError::IdTooLong);
        }
        self.id = Some(id);
        Ok(self)
    }

    /// The recipient (`for` clause). `<Postmaster>` without a domain,
    /// which RFC 5321 §4.4 (`For = CFWS "FOR" FWS ( Path / Mailbox )`)
    /// cannot carry, names the postmaster of the receiving host and is
    /// written with its name: `for <Postmaster@mx.example.org>`.
    ///
    /// ```
    /// use smtp_proto::command::{Domain, ForwardPath};
    /// use smtp_proto::trace::{Received, Timestamp};
    ///
    /// let (helo, by) = (Domain::new("client.example").unwrap(), Domain::new("mx.example.org").unwrap());
    /// let at = Timestamp::new(0, 0).unwrap();
    /// let received = Received::new(&helo, "192.0.2.7".parse().unwrap(), &by, at)
    ///     .recipient(&ForwardPath::Postmaster);
    /// assert!(received.to_string().contains("\tfor <Postmaster@mx.example.org>;"));
    /// ```
    #[must_use]
    pub fn recipient(mut self, path: &'a ForwardPath<'a>) -> Self {
        self.recipient = Some(path);
        self
    }

    /// Appends the header field, every line ended by CRLF.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{self}");
    }

    /// The header field, every line ended by CRLF.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.write_to(&mut out);
        out
    }
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
struct AddressLiteral(IpAddr);

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "[{a}]"),
            IpAddr::V6(a) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// An address literal written inside a comment: `(` and `)`, which
/// `ctext` leaves out (RFC 5322 §3.2.2) but the `dcontent` of a
/// General-address-literal lets in (RFC 5321 §4.1.3), are written as
/// quoted-pairs (`\(`, `\)`; `\` too, though no literal holds one), so the
/// comment ends where it should.
struct InComment<'a>(&'a str);

impl InComment<'_> {
    const SPECIAL: [char; 3] = ['(', ')', '\\'];

    /// The octets written.
    fn len(&self) -> usize {
        self.0.len() + self.0.matches(Self::SPECIAL).count()
    }
}

impl fmt::Display for InComment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(Self::SPECIAL) {
            let (before, special) = rest.split_at(at);
            f.write_str(before)?;
            f.write_str("\\")?;
            f.write_str(&special[..1])?;
            rest = &special[1..];
        }
        f.write_str(rest)
    }
}

/// The line length RFC 5322 §2.1.1 says a line SHOULD keep to, CRLF not
/// counted: the writer folds before a clause that would pass it, where the
/// grammar has folding white space (before the TCP-info comment of `from`,
/// and before each clause of the `by` line).
const FOLD_AT: usize = 78;

impl fmt::Display for Received<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Extended-Domain = Domain FWS "(" TCP-info ")"` (RFC 5321
        // §4.4): the comment may go on a line of its own.
        let name = self.peer_name.filter(|n| !n.is_address_literal());
        let comment = match name {
            // A name, not a literal: no `(`, `)` or `\` to quote.
            Some(name) => format!("({name} {})", AddressLiteral(self.peer)),
            None => format!("({})", AddressLiteral(self.peer)),
        };
        let head = format!("Received: from {}", self.from);
        if head.len() + 1 + comment.len() <= FOLD_AT {
            write!(f, "{head} {comment}")?;
        } else {
            write!(f, "{head}\r\n\t{comment}")?;
        }
        write!(f, "\r\n\tby {}", self.by)?;
        // The `by` line's length so far, its tab counted as one octet.
        let mut line = "\tby ".len() + self.by.as_str().len();
        // Each clause goes on the line when it fits with the `;` that may
        // follow it, else on a line of its own (`CFWS` before each).
        let mut clause = |f: &mut fmt::Formatter<'_>, text: fmt::Arguments<'_>, len: usize| {
            // The space, the clause, and room for the `;`.
            if line + 1 + len < FOLD_AT {
                line += 1 + len;
                write!(f, " {text}")
            } else {
                line = 1 + len;
                write!(f, "\r\n\t{text}")
            }
        };
        if self.by.is_address_literal() {
            let by = InComment(self.by.as_str());
            clause(f, format_args!("({by})"), 2 + by.len())?;
        }
        if let Some(with) = self.with {
            clause(
                f,
                format_args!("with {with}"),
                "with ".len() + with.keyword().len(),
            )?;
        }
        if let Some(id) = self.id {
            clause(f, format_args!("id {id}"), "id ".len() + id.as_str().len())?;
        }
        match self.recipient {
            Some(ForwardPath::Postmaster) => write!(f, "\r\n\tfor <Postmaster@{}>", self.by)?,
            Some(path) => write!(f, "\r\n\tfor {path}")?,
            None => {}
        }
        write!(f, ";\r\n\t{}\r\n", self.date)
    }
}

/// Appends the `Return-Path:` line of final delivery (RFC 5321 §4.4): the
/// reverse path of MAIL FROM, `<>` for the null sender.
///
/// ```
/// use smtp_proto::command::{Mailbox, ReversePath};
/// use smtp_proto::trace::write_return_path;
/// let mut out = Vec::new();
/// write_return_path(&ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap()), &mut out);
/// write_return_path(&ReversePath::Null, &mut out);
/// assert_eq!(out, b"Return-Path: <a@example.org>\r\nReturn-Path: <>\r\n");
/// ```
pub fn write_return_path(path: &ReversePath<'_>, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "Return-Path: {path}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<(i64, i16), TraceError> {
        Timestamp::parse_date_time(text).map(|t| (t.unix_seconds(), t.offset_minutes()))
    }

    #[test]
    fn date_time_written_reads_back() {
        // Every day of 1900..=2100 and around, at several offsets.
        for day in (-25_567..47_482).step_by(7) {
            for (secs, offset) in [(0, 0), (86_399, 60), (45_296, -330), (3_723, 5999)] {
                let Ok(t) = Timestamp::new(day * 86_400 + secs, offset) else {
                    continue;
                };
                assert_eq!(Timestamp::parse_date_time(&t.to_string()), Ok(t), "{t}");
            }
        }
        let last = Timestamp::new(253_402_300_799, 0).unwrap();
        assert_eq!(Timestamp::parse_date_time(&last.to_string()), Ok(last));
    }

    #[test]
    fn date_time_obsolete_and_lenient_forms() {
        let noon = 1_795_780_800; // 2026-11-27T12:00:00Z
        assert_eq!(parsed("Fri, 27 Nov 2026 12:00:00 +0000"), Ok((noon, 0)));
        assert_eq!(parsed("27 Nov 2026 12:00 +0000"), Ok((noon, 0)));
        assert_eq!(parsed("fri,27 NOV 2026 13:00:00 +0100"), Ok((noon, 60)));
        assert_eq!(
            parsed(" (c) Fri (d) , 27 (e\\) (f)) Nov\r\n 2026 12:00:00 (g) -0000 (UTC)"),
            Ok((noon, 0))
        );
        assert_eq!(parsed("Fri, 27 Nov 26 07:00:00 EST"), Ok((noon, -300)));
        assert_eq!(
            parsed("27 Nov 2026 12 : 00 (c) :\r\n 00 +0000"),
            Ok((noon, 0))
        );
        assert_eq!(parsed("27 Nov 126 08:00:00 edt"), Ok((noon, -240)));
        assert_eq!(parsed("27 Nov 2026 12:00:00 GMT"), Ok((noon, 0)));
        assert_eq!(parsed("27 Nov 2026 12:00:00 UT"), Ok((noon, 0)));
        assert_eq!(parsed("27 Nov 2026 04:00:00 PST"), Ok((noon, -480)));
        assert_eq!(parsed("27 Nov 2026 12:00:00 Z"), Ok((noon, 0)));
        assert_eq!(parsed("27 Nov 2026 12:00:00 a"), Ok((noon, 0)));
        assert_eq!(parsed("1 Jan 70 00:00:00 +0000"), Ok((0, 0)));
        assert_eq!(parsed("1 Jan 49 00:00:00 +0000"), Ok((2_493_072_000, 0)));
        assert_eq!(parsed("01 Jan 1950 00:00:00 +0000"), Ok((-631_152_000, 0)));
        // Leap days and a leap second.
        assert_eq!(parsed("29 Feb 2000 00:00:00 +0000"), Ok((951_782_400, 0)));
        assert_eq!(parsed("29 Feb 2024 00:00:00 +0000"), Ok((1_709_164_800, 0)));
        assert_eq!(parsed("31 Dec 2016 23:59:60 +0000"), Ok((1_483_228_800, 0)));
        assert_eq!(parsed("1 Jan 1900 00:00:00 +0000"), Ok((-2_208_988_800, 0)));
    }

    #[test]
    fn date_time_out_of_range_or_malformed() {
        for bad in [
            "",
            "Fri, 27 Nov 2026",
            "Fri, 27 Nov 2026 12:00:00",
            "Fri, 27 Nov 2026 12:00:00 +0000 extra",
            "Fri 27 Nov 2026 12:00:00 +0000",
            "Xyz, 27 Nov 2026 12:00:00 +0000",
            "27 Novem 2026 12:00:00 +0000",
            "0 Nov 2026 12:00:00 +0000",
            "31 Nov 2026 12:00:00 +0000",
            "29 Feb 2100 00:00:00 +0000",
            "29 Feb 2023 00:00:00 +0000",
            "123 Nov 2026 12:00:00 +0000",
            "27 Nov 2026 24:00:00 +0000",
            "27 Nov 2026 12:60:00 +0000",
            "27 Nov 2026 12:00:61 +0000",
            "27 Nov 2026 12:00:00:00 +0000",
            "27 Nov 2026 1:00:00 +0000",
            "27 Nov 2026 12 +0000",
            "27 Nov 2026 12:00:00 +060",
            "27 Nov 2026 12:00:00 +0060",
            "27 Nov 2026 12:00:00 0100",
            "27 Nov 2026 12:00:00 +-100",
            "27 Nov 2026 12:00:00 J",
            "27 Nov 2026 12:00:00 CET",
            "27 Nov 2026 12:00:00 +0000 (open",
            "27 Nov 1 12:00:00 +0000",
            "27 Nov +026 12:00:00 +0000",
            "٢٧ Nov 2026 12:00:00 +0000",
        ] {
            assert_eq!(parsed(bad), Err(TraceError::Date), "{bad:?}");
        }
        assert_eq!(parsed("31 Dec 1899 23:59:59 +0000"), Err(TraceError::Year));
        assert_eq!(parsed("1 Jan 10000 00:00:00 +0000"), Err(TraceError::Year));
        // The year at the offset and in UTC must both be written.
        assert_eq!(parsed("1 Jan 1900 00:00:00 +0100"), Err(TraceError::Year));
        assert_eq!(
            parsed("1 Jan 2026 00:00:00 +9959"),
            Ok((1_767_225_600 - 359_940, 5999))
        );
    }

    /// The same fields counted day by day from 1970, both ways.
    fn walk(days: i64) -> (i64, usize, i64) {
        let month_len = |y: i64, m: usize| {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][m]
        };
        let (mut y, mut m, mut d) = (1970i64, 0usize, 1i64);
        if days >= 0 {
            for _ in 0..days {
                d += 1;
                if d > month_len(y, m) {
                    d = 1;
                    m += 1;
                    if m == 12 {
                        m = 0;
                        y += 1;
                    }
                }
            }
        } else {
            for _ in 0..-days {
                d -= 1;
                if d == 0 {
                    if m == 0 {
                        m = 11;
                        y -= 1;
                    } else {
                        m -= 1;
                    }
                    d = month_len(y, m);
                }
            }
        }
        (y, m, d)
    }

    #[test]
    fn civil_dates_match_counting_day_by_day() {
        for days in (-30_000..30_000)
            .step_by(7)
            .chain([-25_567, 10_956, 11_016, 11_017])
        {
            let c = civil(days * 86_400 + 3_661);
            assert_eq!((c.year, c.month, c.day), walk(days), "day {days}");
            assert_eq!((c.hour, c.minute, c.second), (1, 1, 1));
        }
    }

    #[test]
    fn known_dates() {
        let t = |secs, off| Timestamp::new(secs, off).unwrap().to_string();
        assert_eq!(t(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
        // 2000-02-29, a leap day of a century leap year.
        assert_eq!(t(951_782_400, 0), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(t(951_782_399, 0), "Mon, 28 Feb 2000 23:59:59 +0000");
        // The offset moves the date shown, not the time meant.
        assert_eq!(t(951_782_400, -1), "Mon, 28 Feb 2000 23:59:00 -0001");
        assert_eq!(t(-1, 0), "Wed, 31 Dec 1969 23:59:59 +0000");
        assert_eq!(t(1_795_723_722, 0), "Thu, 26 Nov 2026 20:08:42 +0000");
        assert_eq!(
            t(1_795_723_722, MAX_OFFSET),
            "Tue, 1 Dec 2026 00:07:42 +9959"
        );
        assert_eq!(t(-2_208_988_800, 0), "Mon, 1 Jan 1900 00:00:00 +0000");
        assert_eq!(t(253_402_300_799, 0), "Fri, 31 Dec 9999 23:59:59 +0000");
    }

    #[test]
    fn timestamps_out_of_range_are_refused() {
        assert_eq!(Timestamp::new(0, MAX_OFFSET + 1), Err(TraceError::Offset));
        assert_eq!(Timestamp::new(0, -MAX_OFFSET - 1), Err(TraceError::Offset));
        assert_eq!(Timestamp::new(-2_208_988_801, 0), Err(TraceError::Year));
        assert!(Timestamp::new(-2_208_988_800 + 60, 1).is_ok());
        assert_eq!(Timestamp::new(-2_208_988_800, -1), Err(TraceError::Year));
        assert_eq!(Timestamp::new(253_402_300_800, 0), Err(TraceError::Year));
        assert_eq!(Timestamp::new(253_402_300_799, 1), Err(TraceError::Year));
        for secs in [i64::MIN, i64::MAX, i64::MAX - 1, i64::MIN + 1] {
            for off in [-MAX_OFFSET, 0, MAX_OFFSET] {
                assert_eq!(Timestamp::new(secs, off), Err(TraceError::Year));
            }
        }
    }

    #[test]
    fn system_times_before_and_after_the_epoch() {
        use std::time::Duration;
        let t = |d: SystemTime| Timestamp::from_system_time(d).map(|t| t.unix_seconds());
        assert_eq!(t(UNIX_EPOCH), Ok(0));
        assert_eq!(t(UNIX_EPOCH + Duration::from_millis(1_500)), Ok(1));
        assert_eq!(t(UNIX_EPOCH - Duration::from_millis(1_500)), Ok(-2));
        assert_eq!(t(UNIX_EPOCH - Duration::from_secs(2)), Ok(-2));
    }

    #[test]
    fn rfc3339_forms_are_valid_date_times() {
        for (secs, off, want) in [
            (0, 0, "1970-01-01T00:00:00Z"),
            (0, 90, "1970-01-01T01:30:00+01:30"),
            (0, -(24 * 60 - 1), "1969-12-31T00:01:00-23:59"),
            // Past RFC 3339's offsets: the same time in UTC.
            (0, -(24 * 60), "1970-01-01T00:00:00Z"),
            (0, MAX_OFFSET, "1970-01-01T00:00:00Z"),
        ] {
            let dt = Timestamp::new(secs, off).unwrap().to_date_time();
            assert_eq!(dt.as_str(), want);
            assert_eq!(
                DateTime::new(want).unwrap(),
                dt,
                "the checked constructor agrees"
            );
        }
    }
}
