//! SMTP commands: what a client sends, parsed without copying and written
//! back as canonical bytes.
//!
//! ```
//! use smtp_proto::command::{Command, ReversePath};
//!
//! let cmd = Command::parse(b"MAIL FROM:<alice@example.com> SIZE=1024").unwrap();
//! let Command::Mail(mail) = &cmd else { panic!() };
//! assert_eq!(mail.params.size, Some(1024));
//! let ReversePath::Mailbox(mb) = &mail.reverse_path else { panic!() };
//! assert_eq!(mb.domain().as_str(), "example.com");
//!
//! let mut wire = Vec::new();
//! cmd.write_to(&mut wire);
//! assert_eq!(wire, b"MAIL FROM:<alice@example.com> SIZE=1024\r\n");
//! ```

mod decode;
mod encode;
mod error;
mod params;
mod path;
mod scan;
mod value;

pub(crate) use decode::read_chunk_size;
pub use decode::{CommandDecoder, Decoded, DecoderConfig, LineEndingPolicy, ParseOptions};
pub use error::{CommandError, PathError, ValueError};
pub use params::{
    AuthParam, BodyType, ByMode, DeliverBy, EnvId, Hold, HoldFor, MailParameters, MtPriority,
    Notify, Orcpt, OrcptAddr, Parameter, RcptParameters, Ret, Rrvs, RrvsMode,
};
pub use path::{ForwardPath, Mailbox, ReversePath};
pub(crate) use value::{check_sasl_mech, embedded_unicode_len};
pub use value::{
    Atom, Base64, DateTime, Domain, LocalPart, Mechanism, MechanismName, NodeName, Text, Unitext,
    XText,
};

use std::borrow::Cow;
use std::fmt;

/// One SMTP command line.
///
/// Every variant borrows from the input line; [`Command::into_owned`] gives a
/// `Command<'static>` for callers that keep commands around.
///
/// `Debug` shows no credentials: the initial response of `AUTH` prints as
/// `<redacted>` ([`Base64`]), and so do an `AUTH` mechanism name of mixed
/// case (a client that sent base64 where the name goes), and the verb and
/// arguments of an
/// [`Unknown`](Command::Unknown) command whose verb does not look like one
/// (see [`Command::verb_is_loggable`]): a client that sends its SASL
/// responses without waiting for the server's `334` has them read as
/// command lines.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `EHLO SP ( Domain / address-literal )` (RFC 5321 §4.1.1.1). The
    /// domain is ASCII, an internationalized name in A-labels (RFC 6531
    /// §3.7.1); one with U-labels is written as it is, but not read.
    Ehlo(Domain<'a>),
    /// `HELO SP Domain` (RFC 5321 §4.1.1.1), ASCII as for EHLO.
    Helo(Domain<'a>),
    /// `LHLO SP ( Domain / address-literal )` (RFC 2033 §4.1), ASCII as for
    /// EHLO.
    Lhlo(Domain<'a>),
    /// `MAIL FROM:Reverse-path [SP Mail-parameters]` (RFC 5321 §4.1.1.2)
    Mail(MailFrom<'a>),
    /// `RCPT TO:( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
    /// [SP Rcpt-parameters]` (RFC 5321 §4.1.1.3)
    Rcpt(RcptTo<'a>),
    /// `DATA` (RFC 5321 §4.1.1.4)
    Data,
    /// `BDAT SP chunk-size [SP end-marker]` (RFC 3030 §2)
    Bdat {
        /// Octets in the chunk that follows the command line.
        size: u64,
        /// `LAST`: this chunk ends the message.
        last: bool,
    },
    /// `RSET` (RFC 5321 §4.1.1.5)
    Rset,
    /// `NOOP [SP String]` (RFC 5321 §4.1.1.9)
    Noop(Option<Text<'a>>),
    /// `QUIT` (RFC 5321 §4.1.1.10)
    Quit,
    /// `VRFY SP String` (RFC 5321 §4.1.1.6)
    Vrfy(Text<'a>),
    /// `EXPN SP String` (RFC 5321 §4.1.1.7)
    Expn(Text<'a>),
    /// `HELP [SP String]` (RFC 5321 §4.1.1.8)
    Help(Option<Text<'a>>),
    /// `STARTTLS` (RFC 3207 §4)
    StartTls,
    /// `AUTH SP sasl-mech [SP initial-response]` (RFC 4954 §4)
    Auth {
        /// The SASL mechanism name.
        mechanism: Mechanism<'a>,
        /// The initial response: `None` when absent, `Some` with an empty
        /// [`Base64`] for `=` (an empty response).
        initial_response: Option<Base64<'a>>,
    },
    /// `ETRN SP node` (RFC 1985 §3): `@domain`, `#queue` or a domain.
    Etrn(NodeName<'a>),
    /// A verb this crate does not know (for example `XCLIENT`), with its
    /// arguments, so the application can implement it or reply 500.
    ///
    /// When building one, use a verb that is not a known one: `MAIL` or
    /// `data` here would be written as is and read back as that command.
    Unknown {
        /// The verb, as sent.
        verb: Atom<'a>,
        /// Everything after the first space, if anything.
        args: Option<Text<'a>>,
    },
}

/// The `MAIL FROM` command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom<'a> {
    /// The sender, or the null path `<>`.
    pub reverse_path: ReversePath<'a>,
    /// ESMTP parameters.
    pub params: MailParameters<'a>,
}

/// The `RCPT TO` command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo<'a> {
    /// The recipient.
    pub forward_path: ForwardPath<'a>,
    /// ESMTP parameters.
    pub params: RcptParameters<'a>,
}

impl<'a> Command<'a> {
    /// Parses one command line (without its CRLF) with the default options.
    ///
    /// ```
    /// use smtp_proto::command::Command;
    /// assert_eq!(Command::parse(b"quit").unwrap(), Command::Quit);
    /// assert!(Command::parse(b"MAIL FROM:<>>>>").is_err());
    /// ```
    pub fn parse(line: &'a [u8]) -> Result<Self, CommandError> {
        decode::parse_command(line, &ParseOptions::default())
    }

    /// Parses one command line (without its CRLF) with the given options.
    pub fn parse_with(line: &'a [u8], options: &ParseOptions) -> Result<Self, CommandError> {
        decode::parse_command(line, options)
    }

    /// The command's verb in upper case (`"MAIL"`, `"XCLIENT"`, ...).
    #[must_use]
    pub fn verb(&self) -> &str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::Lhlo(_) => "LHLO",
            Command::Mail(_) => "MAIL",
            Command::Rcpt(_) => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop(_) => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Etrn(_) => "ETRN",
            Command::Unknown { verb, .. } => verb.as_str(),
        }
    }

    /// True when [`verb`](Self::verb) may be logged: always for a verb this
    /// crate knows, and for an [`Unknown`](Command::Unknown) one when it
    /// looks like a verb rather than a SASL response.
    ///
    /// A client that pipelines its SASL responses (base64 credentials)
    /// after an `AUTH` the server refuses, or after the exchange ended,
    /// has them read as command lines, and a response made of letters and
    /// digits only is read as an unknown verb. So an unknown verb counts
    /// as a verb when it is 1 to 16 octets of ASCII letters, digits and
    /// hyphens, starting with a letter, its letters all upper case or all
    /// lower case (base64 mixes them), and, on a line without arguments,
    /// its length is not a multiple of four (the length of every base64
    /// text of RFC 4648 §4, which RFC 4954 §4 asks of a SASL response).
    /// Such a shape rule hides some real verbs too (`VERB` alone, `XClient`):
    /// a verb that is hidden shows as `<redacted>`.
    ///
    /// ```
    /// use smtp_proto::command::Command;
    /// assert!(Command::parse(b"XCLIENT ADDR=192.0.2.1").unwrap().verb_is_loggable());
    /// assert!(Command::parse(b"xexch50").unwrap().verb_is_loggable());
    /// // Base64 of "secret123", sent where a command was expected.
    /// assert!(!Command::parse(b"c2VjcmV0MTIz").unwrap().verb_is_loggable());
    /// assert!(!format!("{:?}", Command::parse(b"c2VjcmV0MTIz").unwrap()).contains("c2Vj"));
    /// ```
    #[must_use]
    pub fn verb_is_loggable(&self) -> bool {
        match self {
            Command::Unknown { verb, args } => loggable_verb(verb.as_str(), args.is_some()),
            _ => true,
        }
    }

    /// Writes the command as canonical bytes, CRLF included.
    ///
    /// The line is written whatever its length. RFC 5321 §4.5.3.1.4 allows
    /// 512 octets, extensions add to it, and
    /// [`DecoderConfig::max_line_length`] is 1024 by default. The values
    /// the constructors check keep a line within those: a command of RFC
    /// 5321 with [`Text`] or a [`NodeName`] fits in 512 octets, and MAIL
    /// and RCPT with the parameters this crate interprets in 1024. What
    /// has no checked length can make a line longer: the parameters of
    /// [`MailParameters::other`] and [`RcptParameters::other`], an
    /// [`AuthParam::Identity`] (RFC 4954 §3 adds 500 characters for it), the
    /// initial response of `AUTH` (RFC 4954 §4 keeps it to the 512-octet
    /// line, or to 12288 octets on a line of its own), and the verb of an
    /// [`Unknown`](Command::Unknown) command, whose line is the verb, a
    /// space, the text and CRLF. Values read from a line are written as
    /// read, whatever their length. The client machine never sends
    /// `other` parameters or `AUTH=`, and moves an initial response that
    /// does not fit to a line of its own; its longest MAIL and RCPT lines
    /// are 446 and 802 octets.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        encode::write_command(self, out);
    }

    /// The command as canonical bytes, CRLF included.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Copies every borrowed part, detaching the command from the input.
    #[must_use]
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Command::Ehlo(d) => Command::Ehlo(d.into_owned()),
            Command::Helo(d) => Command::Helo(d.into_owned()),
            Command::Lhlo(d) => Command::Lhlo(d.into_owned()),
            Command::Mail(m) => Command::Mail(MailFrom {
                reverse_path: m.reverse_path.into_owned(),
                params: m.params.into_owned(),
            }),
            Command::Rcpt(r) => Command::Rcpt(RcptTo {
                forward_path: r.forward_path.into_owned(),
                params: r.params.into_owned(),
            }),
            Command::Data => Command::Data,
            Command::Bdat { size, last } => Command::Bdat { size, last },
            Command::Rset => Command::Rset,
            Command::Noop(t) => Command::Noop(t.map(Text::into_owned)),
            Command::Quit => Command::Quit,
            Command::Vrfy(t) => Command::Vrfy(t.into_owned()),
            Command::Expn(t) => Command::Expn(t.into_owned()),
            Command::Help(t) => Command::Help(t.map(Text::into_owned)),
            Command::StartTls => Command::StartTls,
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: mechanism.into_owned(),
                initial_response: initial_response.map(Base64::into_owned),
            },
            Command::Etrn(t) => Command::Etrn(t.into_owned()),
            Command::Unknown { verb, args } => Command::Unknown {
                verb: verb.into_owned(),
                args: args.map(Text::into_owned),
            },
        }
    }
}

/// The longest unknown verb [`Command::verb_is_loggable`] keeps: the
/// longest verbs in use (`X-ANONYMOUSTLS`, `XSESSIONPARAMS`) have 14
/// octets.
const MAX_LOGGABLE_VERB: usize = 16;

/// See [`Command::verb_is_loggable`]: `verb` is an unknown command's verb,
/// `has_args` whether arguments followed it.
pub(crate) fn loggable_verb(verb: &str, has_args: bool) -> bool {
    let b = verb.as_bytes();
    let shape = (1..=MAX_LOGGABLE_VERB).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-');
    shape && one_case(verb) && (has_args || b.len() % 4 != 0)
}

/// True when the letters of `s` are all upper case or all lower case.
fn one_case(s: &str) -> bool {
    let b = s.as_bytes();
    !b.iter().any(u8::is_ascii_uppercase) || !b.iter().any(u8::is_ascii_lowercase)
}

/// What `Debug` shows instead of a value that may be a credential.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What `Debug` shows instead of [`Mechanism::Other`] with a name that may
/// be a credential.
struct RedactedOther;

impl fmt::Debug for RedactedOther {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Other").field(&Redacted).finish()
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(d) => f.debug_tuple("Ehlo").field(d).finish(),
            Command::Helo(d) => f.debug_tuple("Helo").field(d).finish(),
            Command::Lhlo(d) => f.debug_tuple("Lhlo").field(d).finish(),
            Command::Mail(m) => f.debug_tuple("Mail").field(m).finish(),
            Command::Rcpt(r) => f.debug_tuple("Rcpt").field(r).finish(),
            Command::Data => f.write_str("Data"),
            Command::Bdat { size, last } => f
                .debug_struct("Bdat")
                .field("size", size)
                .field("last", last)
                .finish(),
            Command::Rset => f.write_str("Rset"),
            Command::Noop(t) => f.debug_tuple("Noop").field(t).finish(),
            Command::Quit => f.write_str("Quit"),
            Command::Vrfy(t) => f.debug_tuple("Vrfy").field(t).finish(),
            Command::Expn(t) => f.debug_tuple("Expn").field(t).finish(),
            Command::Help(t) => f.debug_tuple("Help").field(t).finish(),
            Command::StartTls => f.write_str("StartTls"),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let mut s = f.debug_struct("Auth");
                match mechanism {
                    // A client that sent its credentials where the name
                    // goes: mechanism names are upper case (RFC 4422
                    // §3.1), base64 mixes cases.
                    Mechanism::Other(name) if !one_case(name.as_str()) => {
                        s.field("mechanism", &RedactedOther)
                    }
                    _ => s.field("mechanism", mechanism),
                };
                s.field("initial_response", initial_response).finish()
            }
            Command::Etrn(n) => f.debug_tuple("Etrn").field(n).finish(),
            Command::Unknown { verb, args } if self.verb_is_loggable() => f
                .debug_struct("Unknown")
                .field("verb", verb)
                .field("args", args)
                .finish(),
            Command::Unknown { args, .. } => f
                .debug_struct("Unknown")
                .field("verb", &Redacted)
                .field("args", &args.as_ref().map(|_| Redacted))
                .finish(),
        }
    }
}

pub(crate) fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}
