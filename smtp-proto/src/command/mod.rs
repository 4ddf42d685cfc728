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
pub(crate) use value::check_sasl_mech;
pub use value::{
    Atom, Base64, DateTime, Domain, LocalPart, Mechanism, MechanismName, NodeName, Text, Unitext,
    XText,
};

use std::borrow::Cow;

/// One SMTP command line.
///
/// Every variant borrows from the input line; [`Command::into_owned`] gives a
/// `Command<'static>` for callers that keep commands around.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// Writes the command as canonical bytes, CRLF included.
    ///
    /// The line is written whatever its length. Every value has a checked
    /// length, so only [`MailParameters::other`] and [`RcptParameters::other`]
    /// can make it long: RFC 5321 §4.5.3.1.4 allows 512 octets, extensions
    /// add to it, and [`DecoderConfig::max_line_length`] is 1024 by default.
    /// The client machine never sends `other` parameters; its longest MAIL
    /// and RCPT lines are 446 and 802 octets.
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

pub(crate) fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}
