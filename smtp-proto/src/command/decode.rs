//! Command decoding: framing plus one parser per RFC 5321 command rule.

use std::borrow::Cow;

use super::error::{CommandError, PathError};
use super::params::{parse_mail_parameters, parse_rcpt_parameters};
use super::path::{scan_path, ForwardPath, ReversePath, ScannedPath};
use super::value::{check_domain_or_literal, class, Atom, Base64, Domain, Mechanism, Text};
use super::{Command, MailFrom, RcptTo};
use crate::framer::{Frame, LineFramer};

/// How strictly command lines must end in CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LineEndingPolicy {
    /// CRLF only: a bare LF or a bare CR in a command line is a syntax error
    /// (500 5.5.2).
    #[default]
    Strict,
    /// A bare LF also ends a command line (some old clients send it). A bare
    /// CR inside a line is still an error.
    AllowBareLf,
}

/// Options of the line parser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Accept `MAIL FROM:user@example.com` without angle brackets.
    pub allow_unbracketed_paths: bool,
}

impl ParseOptions {
    /// Accepts paths without angle brackets when `allow` is true.
    #[must_use]
    pub fn allow_unbracketed_paths(mut self, allow: bool) -> Self {
        self.allow_unbracketed_paths = allow;
        self
    }
}

/// Limits and policies of a [`CommandDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// The longest command line accepted, CRLF included. RFC 5321
    /// §4.5.3.1.4 sets 512 octets; ESMTP parameters may raise it (RFC 1869
    /// §4.1.2, RFC 3461 §5 adds up to 500 for DSN parameters), so the default
    /// is 1024.
    pub max_line_length: usize,
    /// The longest `AUTH` command line accepted (RFC 4954 §4: 12288).
    pub max_auth_line_length: usize,
    /// Bare CR / LF handling.
    pub line_endings: LineEndingPolicy,
    /// Parser options.
    pub parse: ParseOptions,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_line_length: 1024,
            max_auth_line_length: 12288,
            line_endings: LineEndingPolicy::Strict,
            parse: ParseOptions::default(),
        }
    }
}

/// What one [`CommandDecoder::decode`] call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decoded<'a> {
    /// Bytes to drop from the front of the buffer.
    pub consumed: usize,
    /// A command, an error for one bad line, or `None`: with `consumed == 0`
    /// more input is needed; with `consumed > 0` part of an over-long line
    /// was thrown away and the caller calls again.
    pub item: Option<Result<Command<'a>, CommandError>>,
}

/// Splits a byte stream into command lines and parses each.
///
/// ```
/// use smtp_proto::command::{Command, CommandDecoder, CommandError};
///
/// let mut dec = CommandDecoder::default();
/// let mut buf: &[u8] = b"HELO client.example\r\nBOGUS<\r\nQUIT\r\n";
/// let mut seen = Vec::new();
/// loop {
///     let d = dec.decode(buf);
///     if d.consumed == 0 && d.item.is_none() {
///         break; // need more input
///     }
///     if let Some(item) = d.item {
///         seen.push(item.map(|c| c.verb().to_string()));
///     }
///     buf = &buf[d.consumed..];
/// }
/// assert_eq!(seen, vec![Ok("HELO".into()), Err(CommandError::InvalidVerb), Ok("QUIT".into())]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CommandDecoder {
    framer: LineFramer,
    config: DecoderConfig,
}

impl CommandDecoder {
    /// A decoder with the given configuration.
    #[must_use]
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            framer: LineFramer::new(),
            config,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Forgets any partial line (for example when the connection switches
    /// to TLS and the plaintext buffer is dropped).
    pub fn reset(&mut self) {
        self.framer.reset();
    }

    /// True while the rest of an over-long line is being thrown away.
    #[must_use]
    pub fn is_discarding(&self) -> bool {
        self.framer.is_discarding()
    }

    /// Frames and parses the next command at the start of `buf`.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Decoded<'a> {
        let max = if buf.len() >= 5 && buf[..5].eq_ignore_ascii_case(b"AUTH ") {
            self.config.max_auth_line_length
        } else {
            self.config.max_line_length
        };
        match self.framer.next_frame(buf, max) {
            Frame::Incomplete => Decoded {
                consumed: 0,
                item: None,
            },
            Frame::Discarded { consumed, end } => Decoded {
                consumed,
                item: end.then_some(Err(CommandError::LineTooLong)),
            },
            Frame::Line(line) => {
                let bad_ending = line.bare_cr
                    || (line.bare_lf && self.config.line_endings == LineEndingPolicy::Strict);
                let item = if bad_ending {
                    Err(CommandError::BareLineEnding)
                } else {
                    parse_command(&buf[..line.content_len], &self.config.parse)
                };
                Decoded {
                    consumed: line.consumed,
                    item: Some(item),
                }
            }
        }
    }
}

#[inline]
fn verb_code(v: &[u8]) -> u32 {
    u32::from_le_bytes([v[0], v[1], v[2], v[3]]) | 0x2020_2020
}

const fn code(v: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*v) | 0x2020_2020
}

/// `command = verb [SP arguments]`: parses one line, without its CRLF.
pub(crate) fn parse_command<'a>(
    line: &'a [u8],
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    if memchr::memchr(0, line).is_some() {
        return Err(CommandError::NulOctet);
    }
    if memchr::memchr2(b'\r', b'\n', line).is_some() {
        return Err(CommandError::BareLineEnding);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::InvalidUtf8)?;
    let (verb, args) = match memchr::memchr(b' ', line.as_bytes()) {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    // Arguments: surrounding spaces are not significant.
    let args = args.map(|a| a.trim_matches(' ')).filter(|a| !a.is_empty());
    let vb = verb.as_bytes();
    if vb.is_empty() || !vb.iter().all(|&c| class::is(c, class::KEYWORD)) {
        return Err(CommandError::InvalidVerb);
    }
    if vb.len() == 4 {
        const EHLO: u32 = code(b"ehlo");
        const HELO: u32 = code(b"helo");
        const LHLO: u32 = code(b"lhlo");
        const MAIL: u32 = code(b"mail");
        const RCPT: u32 = code(b"rcpt");
        const DATA: u32 = code(b"data");
        const BDAT: u32 = code(b"bdat");
        const RSET: u32 = code(b"rset");
        const NOOP: u32 = code(b"noop");
        const QUIT: u32 = code(b"quit");
        const VRFY: u32 = code(b"vrfy");
        const EXPN: u32 = code(b"expn");
        const HELP: u32 = code(b"help");
        const AUTH: u32 = code(b"auth");
        const ETRN: u32 = code(b"etrn");
        // OR-ing 0x20 folds letters to lower case; the other octets a verb
        // may hold (digits, '-', '_' -> 0x7f) cannot land on a letter, so a
        // match is exact and case-insensitive.
        let c = verb_code(vb);
        let known = match c {
            EHLO => Some("EHLO"),
            HELO => Some("HELO"),
            LHLO => Some("LHLO"),
            MAIL => Some("MAIL"),
            RCPT => Some("RCPT"),
            DATA => Some("DATA"),
            BDAT => Some("BDAT"),
            RSET => Some("RSET"),
            NOOP => Some("NOOP"),
            QUIT => Some("QUIT"),
            VRFY => Some("VRFY"),
            EXPN => Some("EXPN"),
            HELP => Some("HELP"),
            AUTH => Some("AUTH"),
            ETRN => Some("ETRN"),
            _ => None,
        };
        if let Some(name) = known {
            return parse_known(name, args, opts);
        }
    } else if vb.len() == 8 && vb.eq_ignore_ascii_case(b"STARTTLS") {
        return match args {
            None => Ok(Command::StartTls),
            Some(_) => Err(CommandError::UnexpectedArgument { verb: "STARTTLS" }),
        };
    }
    Ok(Command::Unknown {
        verb: Atom(Cow::Borrowed(verb)),
        args: args.map(|a| Text(Cow::Borrowed(a))),
    })
}

fn parse_known<'a>(
    verb: &'static str,
    args: Option<&'a str>,
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    let required = || args.ok_or(CommandError::MissingArgument { verb });
    let none = |cmd: Command<'a>| match args {
        None => Ok(cmd),
        Some(_) => Err(CommandError::UnexpectedArgument { verb }),
    };
    let text = |a: &'a str| Text(Cow::Borrowed(a));
    match verb {
        "EHLO" => Ok(Command::Ehlo(parse_helo_domain(verb, required()?)?)),
        "HELO" => Ok(Command::Helo(parse_helo_domain(verb, required()?)?)),
        "LHLO" => Ok(Command::Lhlo(parse_helo_domain(verb, required()?)?)),
        "MAIL" => parse_mail(required()?, opts),
        "RCPT" => parse_rcpt(required()?, opts),
        "DATA" => none(Command::Data),
        "BDAT" => parse_bdat(required()?),
        "RSET" => none(Command::Rset),
        "QUIT" => none(Command::Quit),
        "NOOP" => Ok(Command::Noop(args.map(text))),
        "HELP" => Ok(Command::Help(args.map(text))),
        "VRFY" => Ok(Command::Vrfy(text(required()?))),
        "EXPN" => Ok(Command::Expn(text(required()?))),
        "ETRN" => parse_etrn(required()?),
        "AUTH" => parse_auth(required()?),
        _ => Err(CommandError::InvalidVerb),
    }
}

/// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF`,
/// `helo = "HELO" SP Domain CRLF` (RFC 5321 §4.1.1.1). Address literals are
/// accepted after HELO too, as widely sent.
fn parse_helo_domain<'a>(verb: &'static str, args: &'a str) -> Result<Domain<'a>, CommandError> {
    // Anything after the domain is ignored, as RFC 5321 §4.1.1.1 lets
    // servers do for historic clients that append text.
    let dom = args.split(' ').next().unwrap_or(args);
    check_domain_or_literal(dom).map_err(|_| CommandError::InvalidArgument {
        verb,
        reason: "invalid domain",
    })?;
    Ok(Domain(Cow::Borrowed(dom)))
}

/// Strips `prefix` (`FROM:` / `TO:`) and the optional spaces after it.
fn after_prefix<'a>(
    args: &'a str,
    prefix: &str,
    verb: &'static str,
) -> Result<&'a str, CommandError> {
    let rest = super::value::strip_prefix_ignore_case(args, prefix).ok_or(
        CommandError::InvalidArgument {
            verb,
            reason: if verb == "MAIL" {
                "expected FROM:"
            } else {
                "expected TO:"
            },
        },
    )?;
    Ok(rest.trim_start_matches(' '))
}

/// Splits what follows a path: nothing, or `SP` parameters.
fn params_after(rest: &str) -> Result<&str, PathError> {
    match rest.as_bytes().first() {
        None => Ok(""),
        Some(b' ') => Ok(&rest[1..]),
        Some(_) => Err(PathError::TrailingCharacters),
    }
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
/// (RFC 5321 §4.1.1.2)
fn parse_mail<'a>(args: &'a str, opts: &ParseOptions) -> Result<Command<'a>, CommandError> {
    let s = after_prefix(args, "FROM:", "MAIL")?;
    let (path, used) =
        scan_path(s, opts.allow_unbracketed_paths).map_err(CommandError::InvalidReversePath)?;
    let reverse_path = match path {
        ScannedPath::Null => ReversePath::Null,
        ScannedPath::Mailbox(m) => ReversePath::Mailbox(m),
        ScannedPath::Postmaster => {
            return Err(CommandError::InvalidReversePath(PathError::MissingDomain))
        }
    };
    let params = params_after(&s[used..]).map_err(CommandError::InvalidReversePath)?;
    Ok(Command::Mail(MailFrom {
        reverse_path,
        params: parse_mail_parameters(params)?,
    }))
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
/// Forward-path ) [SP Rcpt-parameters] CRLF` (RFC 5321 §4.1.1.3)
fn parse_rcpt<'a>(args: &'a str, opts: &ParseOptions) -> Result<Command<'a>, CommandError> {
    let s = after_prefix(args, "TO:", "RCPT")?;
    let (path, used) =
        scan_path(s, opts.allow_unbracketed_paths).map_err(CommandError::InvalidForwardPath)?;
    let forward_path = match path {
        ScannedPath::Postmaster => ForwardPath::Postmaster,
        ScannedPath::Mailbox(m) => ForwardPath::Mailbox(m),
        ScannedPath::Null => {
            return Err(CommandError::InvalidForwardPath(PathError::MissingDomain))
        }
    };
    let params = params_after(&s[used..]).map_err(CommandError::InvalidForwardPath)?;
    Ok(Command::Rcpt(RcptTo {
        forward_path,
        params: parse_rcpt_parameters(params)?,
    }))
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF`,
/// `chunk-size = 1*DIGIT`, `end-marker = "LAST"` (RFC 3030 §4)
fn parse_bdat(args: &str) -> Result<Command<'_>, CommandError> {
    let invalid = |reason| CommandError::InvalidArgument {
        verb: "BDAT",
        reason,
    };
    let mut parts = args.split(' ').filter(|p| !p.is_empty());
    let size = parts.next().unwrap_or("");
    // Up to 20 digits: every u64 (the writer's range) reads back; larger
    // values fail the parse below.
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|c| c.is_ascii_digit()) {
        return Err(invalid("invalid chunk size"));
    }
    let size: u64 = size.parse().map_err(|_| invalid("invalid chunk size"))?;
    let last = match parts.next() {
        None => false,
        Some(m) if m.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(invalid("expected LAST")),
    };
    if parts.next().is_some() {
        return Err(invalid("unexpected text after LAST"));
    }
    Ok(Command::Bdat { size, last })
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response]`,
/// `initial-response = base64 / "="` (RFC 4954 §4)
fn parse_auth(args: &str) -> Result<Command<'_>, CommandError> {
    let (mech, ir) = match args.split_once(' ') {
        Some((m, r)) => (m, Some(r.trim_matches(' '))),
        None => (args, None),
    };
    let mechanism = Mechanism::parse(mech).map_err(|_| CommandError::InvalidArgument {
        verb: "AUTH",
        reason: "invalid mechanism name",
    })?;
    let initial_response = match ir {
        None => None,
        Some("=") => Some(Base64::empty()),
        Some(r) => Some(Base64::new(r).map_err(|_| CommandError::InvalidArgument {
            verb: "AUTH",
            reason: "initial response is not base64",
        })?),
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

/// `etrn = "ETRN" SP node-name`, `node-name = domain / "@" domain /
/// "#" queue-name` (RFC 1985 §3)
fn parse_etrn(args: &str) -> Result<Command<'_>, CommandError> {
    let ok = if let Some(q) = args.strip_prefix('#') {
        !q.is_empty() && q.bytes().all(|c| c > 32 && c < 127)
    } else {
        check_domain_or_literal(args.strip_prefix('@').unwrap_or(args)).is_ok()
    };
    if ok {
        Ok(Command::Etrn(Text(Cow::Borrowed(args))))
    } else {
        Err(CommandError::InvalidArgument {
            verb: "ETRN",
            reason: "invalid node name",
        })
    }
}
