//! ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 `esmtp-param`).

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::error::{CommandError, ValueError};
use super::scan::{token_end, Folded};
use super::value::{
    check_atom, check_embedded_unicode, check_unitext, check_xtext_value, is_date_time, Atom,
    DateTime, Text, Unitext, XText,
};

/// `BODY=` (RFC 6152, RFC 3030 §3)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyType {
    /// `7BIT`
    SevenBit,
    /// `8BITMIME` (RFC 6152)
    EightBitMime,
    /// `BINARYMIME` (RFC 3030): the message must be sent with BDAT.
    BinaryMime,
}

impl BodyType {
    /// The value as written on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
            BodyType::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` (RFC 3461 §4.3)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: return the whole message in a DSN.
    Full,
    /// `HDRS`: return only the headers.
    Hdrs,
}

/// `NOTIFY=` (RFC 3461 §4.1): `NEVER` or a set of conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Notify {
    /// `SUCCESS`
    pub success: bool,
    /// `FAILURE`
    pub failure: bool,
    /// `DELAY`
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// True for `NEVER`.
    #[must_use]
    pub fn is_never(&self) -> bool {
        *self == Self::NEVER
    }
}

/// `ORCPT=addr-type ";" xtext` (RFC 3461 §4.2), and with the address type
/// `utf-8` the RFC 6533 forms: xtext, or UTF-8 as it is (`unitext`, with
/// SMTPUTF8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Orcpt<'a> {
    addr_type: Atom<'a>,
    addr: OrcptAddr<'a>,
}

/// The original recipient of an [`Orcpt`], in its encoded wire form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrcptAddr<'a> {
    /// `xtext` (RFC 3461 §4.2), and RFC 6533's `utf-8-addr-xtext` with
    /// the type `utf-8`. [`XText::decode`] undoes the `+XX` escapes; the
    /// `\x{HEX}` code points of the `utf-8` forms stay as they are.
    XText(XText<'a>),
    /// `utf-8-addr-unitext` (RFC 6533 §3), with the address type `utf-8`,
    /// when it is not xtext too: the address in UTF-8, with at least one
    /// non-ASCII character. A server takes it only in a transaction with
    /// SMTPUTF8.
    Unitext(Unitext<'a>),
}

impl<'a> OrcptAddr<'a> {
    /// The value as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            OrcptAddr::XText(x) => x.as_str(),
            OrcptAddr::Unitext(u) => u.as_str(),
        }
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> OrcptAddr<'static> {
        match self {
            OrcptAddr::XText(x) => OrcptAddr::XText(x.into_owned()),
            OrcptAddr::Unitext(u) => OrcptAddr::Unitext(u.into_owned()),
        }
    }
}

impl<'a> Orcpt<'a> {
    /// The longest `orcpt-value` (address type, `;` and address) RFC 3461
    /// §4.2 allows: 500 characters.
    pub const MAX_LEN: usize = 500;

    /// Builds an original-recipient value, checking that the address is
    /// not empty and that the whole value fits in [`Orcpt::MAX_LEN`].
    /// With the type `utf-8`, every `\` must start an RFC 6533
    /// `\x{HEXPOINT}`.
    ///
    /// ```
    /// use smtp_proto::command::{Atom, Orcpt, OrcptAddr, XText};
    /// let o = Orcpt::new(Atom::new("rfc822").unwrap(), XText::encode(b"a@example.org")).unwrap();
    /// let OrcptAddr::XText(addr) = o.addr() else { unreachable!() };
    /// assert_eq!(addr.decode().as_ref(), b"a@example.org");
    /// assert!(Orcpt::new(Atom::new("rfc822").unwrap(), XText::encode(b"")).is_err());
    /// let utf8 = || Atom::new("utf-8").unwrap();
    /// assert!(Orcpt::new(utf8(), XText::new("\\x{7528}@example.com").unwrap()).is_ok());
    /// assert!(Orcpt::new(utf8(), XText::new("\\x{41}@example.com").unwrap()).is_err());
    /// ```
    pub fn new(addr_type: Atom<'a>, addr: XText<'a>) -> Result<Self, ValueError> {
        Self::checked(addr_type, OrcptAddr::XText(addr))
    }

    /// An original recipient with an internationalized address, sent as
    /// it is (RFC 6533 §3: `utf-8;` and `utf-8-addr-unitext`, for a
    /// transaction with SMTPUTF8). An address in plain ASCII is xtext as
    /// well, and is kept as [`OrcptAddr::XText`], as the parser reads it.
    ///
    /// ```
    /// use smtp_proto::command::{Orcpt, OrcptAddr, Unitext};
    /// let o = Orcpt::utf8(Unitext::new("用户@example.com").unwrap()).unwrap();
    /// assert_eq!(o.addr_type().as_str(), "utf-8");
    /// assert!(o.is_utf8());
    /// let ascii = Orcpt::utf8(Unitext::new("a@example.com").unwrap()).unwrap();
    /// assert!(matches!(ascii.addr(), OrcptAddr::XText(_)));
    /// ```
    pub fn utf8(addr: Unitext<'a>) -> Result<Self, ValueError> {
        let addr = if check_xtext_value(addr.as_str()).is_ok() {
            OrcptAddr::XText(XText(addr.0))
        } else {
            OrcptAddr::Unitext(addr)
        };
        Self::checked(Atom(Cow::Borrowed("utf-8")), addr)
    }

    fn checked(addr_type: Atom<'a>, addr: OrcptAddr<'a>) -> Result<Self, ValueError> {
        if addr.as_str().is_empty() {
            return Err(ValueError::Empty);
        }
        if addr_type.as_str().eq_ignore_ascii_case("utf-8") {
            check_embedded_unicode(addr.as_str())?;
        }
        if addr_type.as_str().len() + 1 + addr.as_str().len() > Self::MAX_LEN {
            return Err(ValueError::TooLong);
        }
        Ok(Orcpt { addr_type, addr })
    }

    /// The address type, usually `rfc822`.
    #[must_use]
    pub fn addr_type(&self) -> &Atom<'a> {
        &self.addr_type
    }

    /// The original recipient, in its encoded form.
    #[must_use]
    pub fn addr(&self) -> &OrcptAddr<'a> {
        &self.addr
    }

    /// True when the address is UTF-8 as it is ([`OrcptAddr::Unitext`],
    /// which always holds a non-ASCII character), which needs SMTPUTF8.
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        matches!(self.addr, OrcptAddr::Unitext(_))
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> Orcpt<'static> {
        Orcpt {
            addr_type: self.addr_type.into_owned(),
            addr: self.addr.into_owned(),
        }
    }
}

/// `ENVID=` (RFC 3461 §4.4): the envelope identifier, xtext-encoded, 1 to
/// 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvId<'a>(XText<'a>);

impl<'a> EnvId<'a> {
    /// The longest `envid-value` RFC 3461 §4.4 allows: 100 characters.
    pub const MAX_LEN: usize = 100;

    /// Checks the length of an xtext value for use as `ENVID=`.
    ///
    /// ```
    /// use smtp_proto::command::{EnvId, XText};
    /// let id = EnvId::new(XText::encode(b"QQ314159")).unwrap();
    /// assert_eq!(id.as_str(), "QQ314159");
    /// assert!(EnvId::new(XText::encode(b"")).is_err());
    /// assert!(EnvId::new(XText::encode(&[b'x'; 101])).is_err());
    /// ```
    pub fn new(id: XText<'a>) -> Result<Self, ValueError> {
        match id.as_str().len() {
            0 => Err(ValueError::Empty),
            n if n > Self::MAX_LEN => Err(ValueError::TooLong),
            _ => Ok(EnvId(id)),
        }
    }

    /// The value, xtext-encoded, as on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The value as xtext; [`XText::decode`] gives the original bytes.
    #[must_use]
    pub fn as_xtext(&self) -> &XText<'a> {
        &self.0
    }

    /// Copies a borrowed value so it no longer refers to the input.
    #[must_use]
    pub fn into_owned(self) -> EnvId<'static> {
        EnvId(self.0.into_owned())
    }
}

/// `AUTH=` on MAIL (RFC 4954 §5)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthParam<'a> {
    /// `AUTH=<>`: the submitter is not trusted to have authenticated.
    Null,
    /// The authenticated identity, xtext-encoded. `<>` is not one: that
    /// text is the null identity on the wire (RFC 4954 §5), so an
    /// `Identity` holding it is written as `AUTH=<>` and reads back as
    /// [`AuthParam::Null`]. So is an empty identity, which has no wire
    /// form (an `esmtp-value` is at least one character).
    Identity(XText<'a>),
}

/// `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865, FUTURERELEASE)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hold<'a> {
    /// `HOLDFOR=` seconds to hold the message.
    For(HoldFor),
    /// `HOLDUNTIL=` an RFC 3339 date-time, as sent.
    Until(DateTime<'a>),
}

/// The seconds of `HOLDFOR=`: `holdfor-value = 1*9DIGIT` (RFC 4865 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldFor(u32);

impl HoldFor {
    /// The largest value nine digits can write.
    pub const MAX: u32 = 999_999_999;

    /// Checks that `seconds` fits in nine digits.
    ///
    /// ```
    /// use smtp_proto::command::HoldFor;
    /// assert_eq!(HoldFor::new(3600).unwrap().seconds(), 3600);
    /// assert!(HoldFor::new(1_000_000_000).is_err());
    /// ```
    pub fn new(seconds: u32) -> Result<Self, ValueError> {
        if seconds > Self::MAX {
            return Err(ValueError::TooLong);
        }
        Ok(HoldFor(seconds))
    }

    /// The number of seconds.
    #[must_use]
    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// The value of `MT-PRIORITY=` (RFC 6710 §3): -9 to 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MtPriority(i8);

impl MtPriority {
    /// The lowest priority.
    pub const MIN: MtPriority = MtPriority(-9);
    /// The highest priority.
    pub const MAX: MtPriority = MtPriority(9);

    /// Checks that `priority` is in -9 to 9.
    ///
    /// ```
    /// use smtp_proto::command::MtPriority;
    /// assert_eq!(MtPriority::new(-3).unwrap().get(), -3);
    /// assert!(MtPriority::new(10).is_err());
    /// ```
    pub fn new(priority: i8) -> Result<Self, ValueError> {
        if !(Self::MIN.0..=Self::MAX.0).contains(&priority) {
            return Err(ValueError::Syntax("MT-PRIORITY is -9 to 9"));
        }
        Ok(MtPriority(priority))
    }

    /// The priority, -9 to 9.
    #[must_use]
    pub fn get(self) -> i8 {
        self.0
    }
}

/// The mode of a `BY=` parameter (RFC 2852 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByMode {
    /// `N`: notify if the deadline passes.
    Notify,
    /// `R`: return the message if the deadline passes.
    Return,
}

/// `BY=by-time ";" by-mode [by-trace]` (RFC 2852 §4, DELIVERBY)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliverBy {
    time: i64,
    mode: ByMode,
    trace: bool,
}

impl DeliverBy {
    /// The largest `by-time` nine digits can write, either sign.
    pub const MAX_TIME: i64 = 999_999_999;

    /// Builds a deliver-by request, checking `by-time = ["-" / "+"]
    /// 1*9digit` and that a time for the mode `R` is positive: RFC 2852 §4
    /// says of `by-time` "a negative or zero value is not allowed with a
    /// by-mode of "R"" (a message to return once its time is up could
    /// only be returned at once). `N` takes any time.
    ///
    /// ```
    /// use smtp_proto::command::{ByMode, DeliverBy};
    /// let by = DeliverBy::new(-120, ByMode::Notify, true).unwrap();
    /// assert_eq!((by.time(), by.mode(), by.trace()), (-120, ByMode::Notify, true));
    /// assert!(DeliverBy::new(1_000_000_000, ByMode::Return, false).is_err());
    /// assert!(DeliverBy::new(0, ByMode::Return, false).is_err());
    /// assert!(DeliverBy::new(1, ByMode::Return, false).is_ok());
    /// ```
    pub fn new(time: i64, mode: ByMode, trace: bool) -> Result<Self, ValueError> {
        if time.unsigned_abs() > Self::MAX_TIME.unsigned_abs() {
            return Err(ValueError::TooLong);
        }
        if mode == ByMode::Return && time <= 0 {
            return Err(ValueError::Syntax("BY with mode R needs a positive time"));
        }
        Ok(DeliverBy { time, mode, trace })
    }

    /// Seconds, possibly negative.
    #[must_use]
    pub fn time(&self) -> i64 {
        self.time
    }

    /// What to do when the time passes.
    #[must_use]
    pub fn mode(&self) -> ByMode {
        self.mode
    }

    /// `T`: trace the message.
    #[must_use]
    pub fn trace(&self) -> bool {
        self.trace
    }
}

/// `RRVS=date-time [";" ( "C" / "R" )]` (RFC 7293 §3)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rrvs<'a> {
    /// The RFC 3339 date-time, as sent.
    pub time: DateTime<'a>,
    /// What to do if the mailbox cannot be checked.
    pub mode: Option<RrvsMode>,
}

/// The optional mode of `RRVS=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RrvsMode {
    /// `C`: continue.
    Continue,
    /// `R`: reject.
    Reject,
}

/// An ESMTP parameter this crate does not interpret, kept for the
/// application to judge: `esmtp-keyword ["=" esmtp-value]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parameter<'a> {
    keyword: Atom<'a>,
    value: Option<Text<'a>>,
}

/// The keywords the parameter parsers interpret, MAIL's and RCPT's.
const INTERPRETED: [Folded; 14] = [
    kw::SIZE,
    kw::BODY,
    kw::SMTPUTF8,
    kw::RET,
    kw::ENVID,
    kw::AUTH,
    kw::REQUIRETLS,
    kw::MT_PRIORITY,
    kw::HOLDFOR,
    kw::HOLDUNTIL,
    kw::BY,
    kw::NOTIFY,
    kw::ORCPT,
    kw::RRVS,
];

/// True when `k`, a valid keyword, is one of [`INTERPRETED`] in any case.
fn is_interpreted(k: &str) -> bool {
    // A valid keyword is letters, digits and `-`, which fold exactly.
    INTERPRETED.contains(&Folded::at(k.as_bytes(), 0, k.len()))
}

fn is_esmtp_keyword(k: &str) -> bool {
    check_atom(k).is_ok() && !k.contains('_')
}

fn is_esmtp_value(v: &str) -> bool {
    !v.is_empty() && !v.bytes().any(|c| c < 33 || c == b'=' || c == 127)
}

impl<'a> Parameter<'a> {
    /// Builds a parameter, checking `esmtp-keyword = (ALPHA / DIGIT)
    /// *(ALPHA / DIGIT / "-")` and `esmtp-value = 1*(%d33-60 / %d62-126)`
    /// (UTF-8 allowed, RFC 6531).
    ///
    /// ```
    /// use smtp_proto::command::Parameter;
    /// assert!(Parameter::new("X-TAG", Some("blue")).is_ok());
    /// assert!(Parameter::new("X-TAG", Some("two words")).is_err());
    /// // Keywords this crate interprets have their own fields.
    /// assert!(Parameter::new("size", Some("100")).is_err());
    /// ```
    pub fn new(keyword: &'a str, value: Option<&'a str>) -> Result<Self, ValueError> {
        if !is_esmtp_keyword(keyword) {
            return Err(ValueError::Syntax("invalid ESMTP keyword"));
        }
        if is_interpreted(keyword) {
            return Err(ValueError::Syntax(
                "a keyword with its own field in MailParameters or RcptParameters",
            ));
        }
        if let Some(v) = value {
            if !is_esmtp_value(v) {
                return Err(ValueError::Syntax("invalid ESMTP value"));
            }
        }
        Ok(Parameter {
            keyword: Atom(Cow::Borrowed(keyword)),
            value: value.map(|v| Text(Cow::Borrowed(v))),
        })
    }

    /// The keyword, as sent.
    #[must_use]
    pub fn keyword(&self) -> &str {
        self.keyword.as_str()
    }

    /// The value, if any.
    #[must_use]
    pub fn value(&self) -> Option<&str> {
        self.value.as_ref().map(Text::as_str)
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> Parameter<'static> {
        Parameter {
            keyword: self.keyword.into_owned(),
            value: self.value.map(Text::into_owned),
        }
    }
}

/// Parameters of `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MailParameters<'a> {
    /// `SIZE=` (RFC 1870): the declared message size. A 20-digit size
    /// over `u64::MAX` (the grammar allows one) reads as `u64::MAX`.
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461).
    pub envid: Option<EnvId<'a>>,
    /// `AUTH=` (RFC 4954).
    pub auth: Option<AuthParam<'a>>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `MT-PRIORITY=` (RFC 6710).
    pub mt_priority: Option<MtPriority>,
    /// `HOLDFOR=` or `HOLDUNTIL=` (RFC 4865).
    pub hold: Option<Hold<'a>>,
    /// `BY=` (RFC 2852).
    pub by: Option<DeliverBy>,
    /// Parameters this crate does not interpret, in the order sent. Add to
    /// it with [`MailParameters::push_other`], which refuses a keyword
    /// already there: a line with one twice does not read back.
    pub other: Vec<Parameter<'a>>,
}

/// Parameters of `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RcptParameters<'a> {
    /// `NOTIFY=` (RFC 3461).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461).
    pub orcpt: Option<Orcpt<'a>>,
    /// `RRVS=` (RFC 7293).
    pub rrvs: Option<Rrvs<'a>>,
    /// Parameters this crate does not interpret, in the order sent. Add to
    /// it with [`RcptParameters::push_other`], which refuses a keyword
    /// already there: a line with one twice does not read back.
    pub other: Vec<Parameter<'a>>,
}

/// True when `other` holds a parameter named `k` (ignoring case).
fn has_keyword(other: &[Parameter<'_>], k: &str) -> bool {
    other.iter().any(|p| p.keyword().eq_ignore_ascii_case(k))
}

/// Appends `p` to `other` unless its keyword is there already (ignoring
/// case; the parser refuses a parameter given twice) or is one the
/// parameter parsers interpret. [`Parameter::new`] refuses those, but a
/// parameter read into `other` of the one command may hold a keyword the
/// other interprets (`NOTIFY` read on MAIL): written on that command, it
/// would read back into its own field.
fn push_built<'a>(other: &mut Vec<Parameter<'a>>, p: Parameter<'a>) -> Result<(), ValueError> {
    if is_interpreted(p.keyword()) {
        return Err(ValueError::Syntax(
            "a keyword with its own field in MailParameters or RcptParameters",
        ));
    }
    if has_keyword(other, p.keyword()) {
        return Err(ValueError::Syntax("ESMTP keyword given twice"));
    }
    other.push(p);
    Ok(())
}

impl<'a> MailParameters<'a> {
    /// Adds a parameter this crate does not interpret, refusing a keyword
    /// already in [`MailParameters::other`] (ignoring case), and one of
    /// those this crate interprets on MAIL or RCPT (which a parameter read
    /// from a RCPT line's `other` may hold).
    ///
    /// ```
    /// use smtp_proto::command::{MailParameters, Parameter};
    /// let mut params = MailParameters::default();
    /// params.push_other(Parameter::new("X-TAG", Some("blue")).unwrap()).unwrap();
    /// assert!(params.push_other(Parameter::new("x-tag", None).unwrap()).is_err());
    /// assert_eq!(params.other.len(), 1);
    /// ```
    pub fn push_other(&mut self, p: Parameter<'a>) -> Result<(), ValueError> {
        push_built(&mut self.other, p)
    }
}

impl<'a> RcptParameters<'a> {
    /// Adds a parameter this crate does not interpret, refusing a keyword
    /// already in [`RcptParameters::other`] (ignoring case), and one of
    /// those this crate interprets on MAIL or RCPT (which a parameter read
    /// from a MAIL line's `other` may hold).
    pub fn push_other(&mut self, p: Parameter<'a>) -> Result<(), ValueError> {
        push_built(&mut self.other, p)
    }
}

impl MailParameters<'_> {
    /// True when no parameter is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == MailParameters::default()
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> MailParameters<'static> {
        MailParameters {
            size: self.size,
            body: self.body,
            smtputf8: self.smtputf8,
            ret: self.ret,
            envid: self.envid.map(EnvId::into_owned),
            auth: self.auth.map(|a| match a {
                AuthParam::Null => AuthParam::Null,
                AuthParam::Identity(x) => AuthParam::Identity(x.into_owned()),
            }),
            requiretls: self.requiretls,
            mt_priority: self.mt_priority,
            hold: self.hold.map(|h| match h {
                Hold::For(s) => Hold::For(s),
                Hold::Until(t) => Hold::Until(t.into_owned()),
            }),
            by: self.by,
            other: self.other.into_iter().map(Parameter::into_owned).collect(),
        }
    }
}

impl RcptParameters<'_> {
    /// True when no parameter is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == RcptParameters::default()
    }

    /// Copies the borrowed parts.
    #[must_use]
    pub fn into_owned(self) -> RcptParameters<'static> {
        RcptParameters {
            notify: self.notify,
            orcpt: self.orcpt.map(Orcpt::into_owned),
            rrvs: self.rrvs.map(|r| Rrvs {
                time: r.time.into_owned(),
                mode: r.mode,
            }),
            other: self.other.into_iter().map(Parameter::into_owned).collect(),
        }
    }
}

/// One `esmtp-param` as split by [`split_params`].
struct RawParam<'a> {
    keyword: &'a str,
    /// The keyword folded, to compare with [`kw`].
    key: Folded,
    value: Option<&'a str>,
    /// The value folded, to compare with constants such as `8BITMIME`.
    value_key: Folded,
}

/// Splits `esmtp-param *(SP esmtp-param)` into keyword and value, checking
/// `esmtp-value = 1*(%d33-60 / %d62-126)` (RFC 5321 §4.1.2; UTF-8 allowed
/// by RFC 6531 §3.3). Parameters are separated by one or more spaces.
///
/// The keyword and the value each end at the first control, space, `=` or
/// DEL, found eight octets at a time. A keyword equal to one this crate
/// knows is thereby valid; any other is checked against `esmtp-keyword =
/// (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` before it is kept (see
/// [`push_other`]).
struct SplitParams<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for SplitParams<'a> {
    type Item = Result<RawParam<'a>, CommandError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let b = s.as_bytes();
        let mut start = self.pos;
        while b.get(start) == Some(&b' ') {
            start += 1;
        }
        if start >= b.len() {
            return None;
        }
        let key_end = token_end(b, start);
        let (value, value_key, end) = match b.get(key_end) {
            None | Some(b' ') => (None, Folded::NONE, key_end),
            Some(b'=') => {
                let value_start = key_end + 1;
                let value_end = token_end(b, value_start);
                if value_end == value_start || !matches!(b.get(value_end), None | Some(b' ')) {
                    return self.invalid();
                }
                match s.get(value_start..value_end) {
                    Some(v) => (
                        Some(v),
                        Folded::at(b, value_start, value_end - value_start),
                        value_end,
                    ),
                    None => return self.invalid(),
                }
            }
            Some(_) => return self.invalid(),
        };
        let Some(keyword) = s.get(start..key_end) else {
            return self.invalid();
        };
        self.pos = end;
        Some(Ok(RawParam {
            keyword,
            key: Folded::at(b, start, key_end - start),
            value,
            value_key,
        }))
    }
}

impl SplitParams<'_> {
    #[cold]
    fn invalid<T>(&mut self) -> Option<Result<T, CommandError>> {
        self.pos = self.s.len();
        Some(Err(CommandError::InvalidParameter { keyword: "ESMTP" }))
    }
}

fn split_params(s: &str) -> SplitParams<'_> {
    SplitParams { s, pos: 0 }
}

/// The parameter keywords this crate interprets, and some of their values.
mod kw {
    use super::Folded;
    pub const SIZE: Folded = Folded::new("SIZE");
    pub const BODY: Folded = Folded::new("BODY");
    pub const SMTPUTF8: Folded = Folded::new("SMTPUTF8");
    pub const REQUIRETLS: Folded = Folded::new("REQUIRETLS");
    pub const RET: Folded = Folded::new("RET");
    pub const ENVID: Folded = Folded::new("ENVID");
    pub const AUTH: Folded = Folded::new("AUTH");
    pub const MT_PRIORITY: Folded = Folded::new("MT-PRIORITY");
    pub const HOLDFOR: Folded = Folded::new("HOLDFOR");
    pub const HOLDUNTIL: Folded = Folded::new("HOLDUNTIL");
    pub const BY: Folded = Folded::new("BY");
    pub const NOTIFY: Folded = Folded::new("NOTIFY");
    pub const ORCPT: Folded = Folded::new("ORCPT");
    pub const RRVS: Folded = Folded::new("RRVS");

    pub const SEVEN_BIT: Folded = Folded::new("7BIT");
    pub const EIGHT_BIT_MIME: Folded = Folded::new("8BITMIME");
    pub const BINARY_MIME: Folded = Folded::new("BINARYMIME");
    pub const FULL: Folded = Folded::new("FULL");
    pub const HDRS: Folded = Folded::new("HDRS");
    pub const NEVER: Folded = Folded::new("NEVER");
    pub const SUCCESS: Folded = Folded::new("SUCCESS");
    pub const FAILURE: Folded = Folded::new("FAILURE");
    pub const DELAY: Folded = Folded::new("DELAY");
}

/// A keyword ordered without regard to ASCII case.
#[derive(Debug, Clone, Copy)]
struct Caseless<'a>(&'a str);

impl Ord for Caseless<'_> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.iter().map(u8::to_ascii_lowercase))
    }
}

impl PartialOrd for Caseless<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Caseless<'_> {}

/// Unknown parameters up to this many are checked for a repeated keyword
/// by a scan of those before them; past it, by a set of their keywords.
const SCAN_MAX: usize = 16;

/// Appends a parameter this crate does not interpret, refusing a keyword
/// given twice. The first [`SCAN_MAX`] are checked by a scan (no set to
/// build or drop for the usual line); from then on `seen` holds the
/// keywords of `other`, where a repeat is found in O(log n), so a line of
/// many parameters is read in O(n log n), not O(n²).
fn push_other<'a>(
    other: &mut Vec<Parameter<'a>>,
    seen: &mut Option<BTreeSet<Caseless<'a>>>,
    k: &'a str,
    v: Option<&'a str>,
) -> Result<(), CommandError> {
    if !is_esmtp_keyword(k) {
        return Err(CommandError::InvalidParameter { keyword: "ESMTP" });
    }
    let repeated = match seen {
        Some(set) => !set.insert(Caseless(k)),
        None if other.len() < SCAN_MAX => has_keyword(other, k),
        None => start_keyword_set(other, seen, k),
    };
    if repeated {
        return Err(CommandError::DuplicateParameter { keyword: "ESMTP" });
    }
    other.push(Parameter {
        keyword: Atom(Cow::Borrowed(k)),
        value: v.map(|v| Text(Cow::Borrowed(v))),
    });
    Ok(())
}

/// Builds `seen` from the keywords of `other` (all borrowed from the line
/// being read) and adds `k`; true when `k` was there already.
#[cold]
#[inline(never)]
fn start_keyword_set<'a>(
    other: &[Parameter<'a>],
    seen: &mut Option<BTreeSet<Caseless<'a>>>,
    k: &'a str,
) -> bool {
    let mut set: BTreeSet<Caseless<'a>> = other
        .iter()
        .filter_map(|p| match &p.keyword.0 {
            Cow::Borrowed(s) => Some(Caseless(s)),
            // Not while reading a line: `other` starts empty.
            Cow::Owned(_) => None,
        })
        .collect();
    let repeated = !set.insert(Caseless(k));
    *seen = Some(set);
    repeated
}

fn no_value(keyword: &'static str, v: Option<&str>) -> Result<(), CommandError> {
    match v {
        None => Ok(()),
        Some(_) => Err(CommandError::InvalidParameter { keyword }),
    }
}

fn value<'a>(keyword: &'static str, v: Option<&'a str>) -> Result<&'a str, CommandError> {
    v.ok_or(CommandError::InvalidParameter { keyword })
}

fn digits(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// `size-value = 1*20DIGIT`, saturating at `u64::MAX`.
fn size_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then(|| n.saturating_mul(10).saturating_add(u64::from(d)))
    })
}

macro_rules! set_once {
    ($field:expr, $kw:literal, $val:expr) => {{
        if $field.is_some() {
            return Err(CommandError::DuplicateParameter { keyword: $kw });
        }
        $field = Some($val);
    }};
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 §4.1.2)
#[inline(always)]
pub(crate) fn parse_mail_parameters<'a>(
    s: &'a str,
    p: &mut MailParameters<'a>,
) -> Result<(), CommandError> {
    debug_assert!(p.other.is_empty());
    let mut seen = None;
    for item in split_params(s) {
        let RawParam {
            keyword: k,
            key,
            value: v,
            value_key,
        } = item?;
        if key == kw::SIZE {
            // size-value = 1*20DIGIT (RFC 1870 §3): 20 digits may be more
            // than a u64 holds; such a size is over any limit, so it reads
            // as u64::MAX (the server then answers 552, RFC 1870 §6).
            let n = size_digits(value("SIZE", v)?)
                .ok_or(CommandError::InvalidParameter { keyword: "SIZE" })?;
            set_once!(p.size, "SIZE", n);
        } else if key == kw::BODY {
            value("BODY", v)?;
            let body = if value_key == kw::SEVEN_BIT {
                BodyType::SevenBit
            } else if value_key == kw::EIGHT_BIT_MIME {
                BodyType::EightBitMime
            } else if value_key == kw::BINARY_MIME {
                BodyType::BinaryMime
            } else {
                return Err(CommandError::InvalidParameter { keyword: "BODY" });
            };
            set_once!(p.body, "BODY", body);
        } else if key == kw::SMTPUTF8 {
            no_value("SMTPUTF8", v)?;
            if p.smtputf8 {
                return Err(CommandError::DuplicateParameter {
                    keyword: "SMTPUTF8",
                });
            }
            p.smtputf8 = true;
        } else if key == kw::REQUIRETLS {
            no_value("REQUIRETLS", v)?;
            if p.requiretls {
                return Err(CommandError::DuplicateParameter {
                    keyword: "REQUIRETLS",
                });
            }
            p.requiretls = true;
        } else if key == kw::RET {
            value("RET", v)?;
            let ret = if value_key == kw::FULL {
                Ret::Full
            } else if value_key == kw::HDRS {
                Ret::Hdrs
            } else {
                return Err(CommandError::InvalidParameter { keyword: "RET" });
            };
            set_once!(p.ret, "RET", ret);
        } else if key == kw::ENVID {
            // envid-value = xtext, at most 100 characters (RFC 3461 §4.4)
            let v = value("ENVID", v)?;
            if v.len() > 100 || check_xtext_value(v).is_err() {
                return Err(CommandError::InvalidParameter { keyword: "ENVID" });
            }
            set_once!(p.envid, "ENVID", EnvId(XText(Cow::Borrowed(v))));
        } else if key == kw::AUTH {
            let v = value("AUTH", v)?;
            let a = if v == "<>" {
                AuthParam::Null
            } else if check_xtext_value(v).is_ok() {
                AuthParam::Identity(XText(Cow::Borrowed(v)))
            } else {
                return Err(CommandError::InvalidParameter { keyword: "AUTH" });
            };
            set_once!(p.auth, "AUTH", a);
        } else if key == kw::MT_PRIORITY {
            // priority-value = [priority-sign] NZDIGIT / "0",
            // priority-sign = "-" / "+", NZDIGIT = %x31-39 (RFC 6710's
            // formal syntax; a priority is an integer from -9 to 9): zero
            // is "0" alone, never "-0" or "+0".
            let n = match value("MT-PRIORITY", v)?.as_bytes() {
                [b'0'] => 0,
                [b'-', d @ b'1'..=b'9'] => -((d - b'0') as i8),
                [b'+', d @ b'1'..=b'9'] | [d @ b'1'..=b'9'] => (d - b'0') as i8,
                _ => {
                    return Err(CommandError::InvalidParameter {
                        keyword: "MT-PRIORITY",
                    })
                }
            };
            set_once!(p.mt_priority, "MT-PRIORITY", MtPriority(n));
        } else if key == kw::HOLDFOR {
            // holdfor-value = 1*9DIGIT (RFC 4865 §5.1)
            let n = digits(value("HOLDFOR", v)?, 9)
                .ok_or(CommandError::InvalidParameter { keyword: "HOLDFOR" })?;
            set_once!(p.hold, "HOLDFOR", Hold::For(HoldFor(n as u32)));
        } else if key == kw::HOLDUNTIL {
            let v = value("HOLDUNTIL", v)?;
            if !is_date_time(v) {
                return Err(CommandError::InvalidParameter {
                    keyword: "HOLDUNTIL",
                });
            }
            set_once!(p.hold, "HOLDUNTIL", Hold::Until(DateTime(Cow::Borrowed(v))));
        } else if key == kw::BY {
            let by = parse_by(value("BY", v)?)
                .ok_or(CommandError::InvalidParameter { keyword: "BY" })?;
            set_once!(p.by, "BY", by);
        } else {
            push_other(&mut p.other, &mut seen, k, v)?;
        }
    }
    Ok(())
}

/// `by-value = by-time ";" by-mode [by-trace]`,
/// `by-time = ["-" / "+"] 1*9digit`, `by-mode = "N" / "R"`, `by-trace = "T"`
/// (RFC 2852 §4), where a zero or negative `by-time` is "not allowed with a
/// by-mode of "R"" (the comment on `by-time` in the same ABNF).
fn parse_by(v: &str) -> Option<DeliverBy> {
    let (time, mode) = v.split_once(';')?;
    let (neg, digits_part) = match time.as_bytes().first()? {
        b'-' => (true, &time[1..]),
        b'+' => (false, &time[1..]),
        _ => (false, time),
    };
    let t = digits(digits_part, 9)? as i64;
    let mb = mode.as_bytes();
    let m = match mb.first()?.to_ascii_uppercase() {
        b'N' => ByMode::Notify,
        b'R' => ByMode::Return,
        _ => return None,
    };
    let trace = match mb.get(1..)? {
        [] => false,
        [t] if t.eq_ignore_ascii_case(&b'T') => true,
        _ => return None,
    };
    let time = if neg { -t } else { t };
    if m == ByMode::Return && time <= 0 {
        return None;
    }
    Some(DeliverBy {
        time,
        mode: m,
        trace,
    })
}

/// `Rcpt-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 §4.1.2)
#[inline(always)]
pub(crate) fn parse_rcpt_parameters<'a>(
    s: &'a str,
    p: &mut RcptParameters<'a>,
) -> Result<(), CommandError> {
    debug_assert!(p.other.is_empty());
    let mut seen = None;
    for item in split_params(s) {
        let RawParam {
            keyword: k,
            key,
            value: v,
            value_key,
        } = item?;
        if key == kw::NOTIFY {
            // notify-esmtp-value = "NEVER" / 1#notify-list-element (RFC 3461 §4.1)
            let v = value("NOTIFY", v)?;
            let n = if value_key == kw::NEVER {
                Notify::NEVER
            } else {
                let mut n = Notify::default();
                let b = v.as_bytes();
                let mut start = 0;
                loop {
                    let end = b[start..]
                        .iter()
                        .position(|&c| c == b',')
                        .map_or(b.len(), |p| start + p);
                    let el = Folded::at(b, start, end - start);
                    let flag = if el == kw::SUCCESS {
                        &mut n.success
                    } else if el == kw::FAILURE {
                        &mut n.failure
                    } else if el == kw::DELAY {
                        &mut n.delay
                    } else {
                        return Err(CommandError::InvalidParameter { keyword: "NOTIFY" });
                    };
                    if *flag {
                        return Err(CommandError::InvalidParameter { keyword: "NOTIFY" });
                    }
                    *flag = true;
                    if end == b.len() {
                        break;
                    }
                    start = end + 1;
                }
                n
            };
            set_once!(p.notify, "NOTIFY", n);
        } else if key == kw::ORCPT {
            // orcpt-value = addr-type ";" xtext, at most 500 characters (RFC 3461 §4.2)
            let v = value("ORCPT", v)?;
            let semi = v
                .bytes()
                .position(|c| c == b';')
                .ok_or(CommandError::InvalidParameter { keyword: "ORCPT" })?;
            let (t, a) = (&v[..semi], &v[semi + 1..]);
            if v.len() > 500 || check_atom(t).is_err() || a.is_empty() {
                return Err(CommandError::InvalidParameter { keyword: "ORCPT" });
            }
            // RFC 6533 §3: with the type `utf-8`, a `\` only starts a
            // `\x{HEXPOINT}`, in the xtext form as in the UTF-8 one.
            let utf8_type = t.eq_ignore_ascii_case("utf-8");
            let addr = if check_xtext_value(a).is_ok()
                && (!utf8_type || check_embedded_unicode(a).is_ok())
            {
                OrcptAddr::XText(XText(Cow::Borrowed(a)))
            } else if utf8_type && check_unitext(a).is_ok() {
                // RFC 6533 §3: `utf-8-addr-unitext`, UTF-8 as it is.
                OrcptAddr::Unitext(Unitext(Cow::Borrowed(a)))
            } else {
                return Err(CommandError::InvalidParameter { keyword: "ORCPT" });
            };
            set_once!(
                p.orcpt,
                "ORCPT",
                Orcpt {
                    addr_type: Atom(Cow::Borrowed(t)),
                    addr,
                }
            );
        } else if key == kw::RRVS {
            let v = value("RRVS", v)?;
            let (time, mode) = match v.split_once(';') {
                Some((t, "C" | "c")) => (t, Some(RrvsMode::Continue)),
                Some((t, "R" | "r")) => (t, Some(RrvsMode::Reject)),
                Some(_) => return Err(CommandError::InvalidParameter { keyword: "RRVS" }),
                None => (v, None),
            };
            if !is_date_time(time) {
                return Err(CommandError::InvalidParameter { keyword: "RRVS" });
            }
            set_once!(
                p.rrvs,
                "RRVS",
                Rrvs {
                    time: DateTime(Cow::Borrowed(time)),
                    mode,
                }
            );
        } else {
            push_other(&mut p.other, &mut seen, k, v)?;
        }
    }
    Ok(())
}
